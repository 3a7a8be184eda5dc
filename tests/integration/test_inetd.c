/* Integration: inetd.conf. A file in the Debian openbsd-inetd layout with
 * one entry of each kind handoffd serves is converted (--convert-inetd),
 * checked, and served three ways: the conversion, `inetd_conf = PATH` and
 * `handoffd --inetd PATH`; SIGHUP re-reads it; every entry handoffd cannot
 * honour is an error naming FILE:LINE. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(inetd, .init = h_init, .fini = h_fini);

/* The fixture's placeholders, filled in per test. */
struct fixture {
	char host[32];  /* 127.A.B.C: the internal services' well-known ports on it are ours */
	int catport, envport, waitport, listenport;
	char path[160]; /* the inetd.conf written */
};

static const char *env_or_fail(const char *var)
{
	const char *v = getenv(var);
	cr_assert(v && *v, "%s is not set (run the tests with `make check`)", var);
	return v;
}

/* text with every "@NAME@" of names[] replaced by values[] (malloc'd). */
static char *substitute(const char *text, const char *const *names, const char *const *values, int n)
{
	size_t cap = strlen(text) * 2 + 4096, len = 0;
	char *out = malloc(cap);
	cr_assert(out);
	for (const char *p = text; *p;) {
		int hit = -1;
		for (int i = 0; i < n && hit < 0; i++)
			if (strncmp(p, names[i], strlen(names[i])) == 0)
				hit = i;
		const char *add = hit >= 0 ? values[hit] : p;
		size_t al = hit >= 0 ? strlen(values[hit]) : 1;
		if (len + al + 1 > cap) {
			cap = (len + al + 1) * 2;
			out = realloc(out, cap);
			cr_assert(out);
		}
		memcpy(out + len, add, al);
		len += al;
		p += hit >= 0 ? strlen(names[hit]) : 1;
	}
	out[len] = '\0';
	return out;
}

static void write_file(const char *path, const char *text)
{
	char tmp[200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	cr_assert(f, "%s: %s", tmp, strerror(errno));
	fputs(text, f);
	cr_assert(fclose(f) == 0);
	cr_assert(rename(tmp, path) == 0);
}

/* A random loopback address other than 127.0.0.1. */
static void random_host(char *buf, size_t size)
{
	unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)h_now_ms();
	snprintf(buf, size, "127.%u.%u.%u", 1 + rand_r(&seed) % 254, rand_r(&seed) % 256, 1 + rand_r(&seed) % 254);
}

/* Write DIR/inetd.conf from tests/data/integration/inetd.conf. */
static void fixture_write(struct fixture *f)
{
	if (geteuid() != 0)
		H_SKIP("the internal services bind their well-known ports (below 1024): needs root");
	random_host(f->host, sizeof(f->host));
	f->catport = h_free_port(AF_INET);
	f->envport = h_free_port(AF_INET);
	f->listenport = h_free_port(AF_INET);
	f->waitport = h_free_port_udp(AF_INET);
	char tpath[512];
	snprintf(tpath, sizeof(tpath), "%s/tests/data/integration/inetd.conf", env_or_fail("TOP_SRCDIR"));
	char *tmpl = h_read_file(tpath);
	cr_assert(tmpl[0], "cannot read the fixture %s", tpath);
	char cat[16], env[16], wait[16], lis[16];
	snprintf(cat, sizeof(cat), "%d", f->catport);
	snprintf(env, sizeof(env), "%d", f->envport);
	snprintf(wait, sizeof(wait), "%d", f->waitport);
	snprintf(lis, sizeof(lis), "%d", f->listenport);
	const char *names[] = {"@HOST@", "@CATPORT@", "@ENVPORT@", "@WAITPORT@", "@LISTENPORT@", "@DIR@", "@FDCHECK@",
	                       "@TEST_BACKEND@"};
	const char *values[] = {f->host, cat, env, wait, lis, h.dir, env_or_fail("FDCHECK"), env_or_fail("TEST_BACKEND")};
	char *text = substitute(tmpl, names, values, 8);
	for (int i = 0; i < 8; i++)
		cr_assert(!strstr(text, names[i]), "placeholder %s left in the fixture", names[i]);
	snprintf(f->path, sizeof(f->path), "%s/inetd.conf", h.dir);
	write_file(f->path, text);
	free(text);
	free(tmpl);
}

/* ---- what serving the fixture means ---- */

static int connect_to(const char *host, int port)
{
	struct h_addr a = h_addr_tcp(host, port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect %s: %s", a.text, strerror(-fd));
	return fd;
}

static void expect_line(int fd, const char *send, const char *want, const char *what)
{
	char buf[256];
	if (send)
		cr_assert(h_send(fd, send) == 0, "%s: send", what);
	ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, want) == 0, "%s: expected '%s', got %zd '%s'", what, want, n, buf);
}

static void serve_checks(const struct fixture *f)
{
	char buf[16384];
	ssize_t n;
	int fd;

	/* internal echo, tcp and udp */
	fd = connect_to(f->host, 7);
	expect_line(fd, "echo me\n", "echo me\n", "echo/tcp");
	close(fd);
	struct h_addr ua = h_addr_udp(f->host, 7);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	cr_assert(h_dgram_send(u, &ua, "udp echo", 8) == 0);
	n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n == 8 && memcmp(buf, "udp echo", 8) == 0, "echo/udp: %zd '%s'", n, buf);
	close(u);

	/* internal daytime, time, discard */
	fd = connect_to(f->host, 13);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	time_t t;
	cr_assert(n > 0 && h_parse_daytime(buf, &t) && labs((long)(t - time(NULL))) <= 5, "daytime: '%s'", buf);
	fd = connect_to(f->host, 37);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert_eq(n, 4, "time: %zd bytes", n);
	fd = connect_to(f->host, 9);
	cr_assert(h_send(fd, "into the void\n") == 0);
	cr_assert(!h_readable(fd, 100), "discard answered or closed");
	close(fd);

	/* tcpmux: help lists the tcpmux/ entries; +hello answers +Go and
	 * reaches /bin/cat; plain reaches it without +Go. */
	fd = connect_to(f->host, 1);
	cr_assert(h_send(fd, "help\r\n") == 0);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && strstr(buf, "hello") && strstr(buf, "plain"), "tcpmux help: '%s'", buf);
	fd = connect_to(f->host, 1);
	expect_line(fd, "hello\r\n", "+Go\r\n", "tcpmux/+hello");
	expect_line(fd, "via tcpmux\n", "via tcpmux\n", "tcpmux/+hello then cat");
	close(fd);
	fd = connect_to(f->host, 1);
	expect_line(fd, "plain\r\nno plus\n", "no plus\n", "tcpmux/plain then cat");
	close(fd);

	/* a nowait program (as nobody) */
	fd = connect_to(f->host, f->catport);
	expect_line(fd, "meow\n", "meow\n", "cat nowait");
	close(fd);

	/* a nowait program with its own argv[0]: fds and environment */
	fd = connect_to(f->host, f->envport);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && strstr(buf, "\nend\n"), "fdcheck report: '%s'", buf);
	cr_assert(strstr(buf, "argv0 fdcheck-argv0\n"), "argv[0] from the entry:\n%s", buf);
	cr_assert(strstr(buf, "fd 0 socket\nfd 1 socket\nfd 2 socket\nfdid"), "fds:\n%s", buf);
	char want[64];
	snprintf(want, sizeof(want), "env TCPLOCALPORT=%d\n", f->envport);
	cr_assert(strstr(buf, "env REMOTE_ADDR=") && strstr(buf, want), "environment:\n%s", buf);

	/* a wait dgram program: one per datagram, in turn */
	struct h_addr wa = h_addr_udp(f->host, f->waitport);
	u = h_dgram_socket(&wa, NULL);
	cr_assert(u >= 0);
	int pid1 = 0, pid2 = 0;
	cr_assert(h_dgram_send(u, &wa, "w1", 2) == 0);
	n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && sscanf(buf, "inetd-wait pid=%d got w1", &pid1) == 1, "wait dgram: %zd '%s'", n, buf);
	cr_assert(h_dgram_send(u, &wa, "w2", 2) == 0);
	n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && sscanf(buf, "inetd-wait pid=%d got w2", &pid2) == 1, "wait dgram again: %zd '%s'", n, buf);
	cr_assert_neq(pid1, pid2);
	close(u);

	/* a wait stream program: it gets the listening socket */
	struct h_addr la = h_addr_tcp(f->host, f->listenport);
	n = h_request(&la, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans), "wait stream: %zd '%s'", n, buf);
	cr_assert_str_eq(ans.tag, "inetd-listen");
	cr_assert_eq(ans.conn, 0);

	/* unix stream and seqpacket programs */
	char path[200];
	snprintf(path, sizeof(path), "%s/inetd-unix.sock", h.dir);
	struct h_addr xa = h_addr_unix(path);
	fd = h_connect(&xa, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "%s: %s", path, strerror(-fd));
	expect_line(fd, "over unix\n", "over unix\n", "unix stream cat");
	close(fd);
	snprintf(path, sizeof(path), "%s/inetd-seq.sock", h.dir);
	struct h_addr sa = h_addr_unix(path);
	fd = h_connect_type(&sa, SOCK_SEQPACKET, H_DEADLINE_MS);
	cr_assert(fd >= 0, "%s: %s", path, strerror(-fd));
	cr_assert(send(fd, "record", 6, 0) == 6);
	cr_assert(h_readable(fd, H_DEADLINE_MS));
	n = recv(fd, buf, sizeof(buf), 0);
	cr_assert(n == 6 && memcmp(buf, "record", 6) == 0, "seqpacket cat: %zd", n);
	close(fd);
}

/* Run handoffd with args; returns its exit code and output (caller frees). */
static int run_handoffd(char **out, const char *a1, const char *a2, const char *a3)
{
	char *argv[] = {(char *)env_or_fail("HANDOFFD"), (char *)a1, (char *)a2, (char *)a3, NULL};
	return h_run(NULL, out, H_DEADLINE_MS, argv);
}

/* The N of "configuration OK (N services)". */
static int ok_count(const char *out)
{
	const char *p = strstr(out, "configuration OK (");
	return p ? atoi(p + strlen("configuration OK (")) : -1;
}

Test(inetd, convert_check_and_serve, .timeout = 30)
{
	struct fixture f;
	fixture_write(&f);
	char *conv = NULL;
	int rc = run_handoffd(&conv, "--convert-inetd", f.path, NULL);
	cr_assert_eq(rc, 0, "--convert-inetd exit %d:\n%s", rc, conv);
	cr_assert(strstr(conv, "[service "), "no services in the conversion:\n%s", conv);
	char from[220];
	snprintf(from, sizeof(from), "; from %s:", f.path);
	cr_assert(strstr(conv, from), "sections do not name their inetd.conf lines:\n%s", conv);

	/* The conversion as it is passes handoffd -t ... */
	char cpath[200];
	snprintf(cpath, sizeof(cpath), "%s/converted.conf", h.dir);
	write_file(cpath, conv);
	char *out = NULL;
	rc = run_handoffd(&out, "-t", "-f", cpath);
	cr_assert_eq(rc, 0, "handoffd -t rejects the conversion (%d):\n%s\n--- conversion ---\n%s", rc, out, conv);
	int nconv = ok_count(out);
	free(out);
	/* ... with as many services as loading the file directly. */
	rc = run_handoffd(&out, "-t", "--inetd", f.path);
	cr_assert_eq(rc, 0, "handoffd -t --inetd (%d):\n%s", rc, out);
	cr_assert_eq(ok_count(out), nconv, "--inetd: %s; conversion: %d services", out, nconv);
	cr_assert(nconv >= 13, "only %d services from the fixture", nconv);
	free(out);

	/* And it serves every entry. */
	h_config("%s", conv);
	free(conv);
	h_start_daemon();
	serve_checks(&f);
	h_finish();
}

Test(inetd, inetd_conf_key_serves, .timeout = 30)
{
	struct fixture f;
	fixture_write(&f);
	h_config("inetd_conf = %s\n", f.path);
	h_start_daemon();
	serve_checks(&f);
	h_finish();
}

Test(inetd, inetd_flag_serves, .timeout = 30)
{
	struct fixture f;
	fixture_write(&f);
	char *out = NULL;
	int rc = run_handoffd(&out, "-t", "--inetd", f.path);
	cr_assert_eq(rc, 0, "handoffd -t --inetd (%d):\n%s", rc, out);
	free(out);
	/* --inetd runs with default settings, so the control socket is the
	 * default one: only when nobody else uses it. */
	const char *def = "/run/handoffd/control.sock";
	struct stat st;
	if (stat(def, &st) == 0)
		H_SKIP("%s exists (a handoffd runs here?): cannot run handoffd --inetd with defaults", def);
	bool made_dir = stat("/run/handoffd", &st) < 0;
	snprintf(h.ctl, sizeof(h.ctl), "%s", def);
	char *args[] = {(char *)"--inetd", f.path, NULL};
	h_start_daemon_args(args);
	serve_checks(&f);

	/* SIGHUP re-reads the inetd.conf given with --inetd: drop the cat entry. */
	char *text = h_read_file(f.path);
	char entry[64];
	snprintf(entry, sizeof(entry), "%d\tstream\ttcp\tnowait\tnobody\t/bin/cat", f.catport);
	char *e = strstr(text, entry);
	cr_assert(e, "the cat entry is not in %s", f.path);
	e[0] = '#';
	write_file(f.path, text);
	free(text);
	h_proc_kill(h.daemon, SIGHUP);
	cr_assert(h_log_wait(H_DEADLINE_MS, "configuration reloaded", NULL), "no reload after SIGHUP");
	struct h_addr ca = h_addr_tcp(f.host, f.catport);
	/* The listener's fd is closed on the loop's turn after the one that
	 * logged the reload (libuv's close callback): wait for the refusal. */
	int fd = -1;
	bool refused = H_WAIT_UNTIL((fd = h_connect(&ca, NULL, H_DEADLINE_MS)) == -ECONNREFUSED ||
	                                (fd >= 0 && close(fd) < 0),
	                            H_DEADLINE_MS);
	cr_assert(refused && fd == -ECONNREFUSED, "the entry commented out still listens (%d)", fd);
	fd = connect_to(f.host, 7);
	expect_line(fd, "still\n", "still\n", "echo after the reload");
	close(fd);
	h_finish();
	if (made_dir)
		rmdir("/run/handoffd");
}

Test(inetd, sighup_rereads_inetd_conf, .timeout = 20)
{
	if (geteuid() != 0)
		H_SKIP("the internal services bind their well-known ports (below 1024): needs root");
	char host[32], path[200], text[512];
	random_host(host, sizeof(host));
	snprintf(path, sizeof(path), "%s/inetd.conf", h.dir);
	snprintf(text, sizeof(text), "# version 1\n%s:echo\tstream\ttcp\tnowait\troot\tinternal\n", host);
	write_file(path, text);
	h_config("inetd_conf = %s\n", path);
	h_start_daemon();
	int fd = connect_to(host, 7);
	expect_line(fd, "v1\n", "v1\n", "echo before the reload");
	close(fd);
	struct h_addr day = h_addr_tcp(host, 13), echo = h_addr_tcp(host, 7);
	fd = h_connect(&day, NULL, H_DEADLINE_MS);
	cr_assert_eq(fd, -ECONNREFUSED, "daytime listens before it is configured");

	/* Version 2: daytime instead of echo. */
	snprintf(text, sizeof(text), "# version 2\n%s:daytime\tstream\ttcp\tnowait\troot\tinternal\n", host);
	write_file(path, text);
	h_proc_kill(h.daemon, SIGHUP);
	cr_assert(h_log_wait(H_DEADLINE_MS, "configuration reloaded", NULL), "no reload");
	fd = h_connect(&day, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "daytime added by the reload: %s", strerror(-fd));
	char buf[128];
	time_t t;
	cr_assert(h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS) > 0 && h_parse_daytime(buf, &t), "'%s'", buf);
	close(fd);
	fd = h_connect(&echo, NULL, H_DEADLINE_MS);
	if (fd >= 0)
		close(fd);
	cr_assert_eq(fd, -ECONNREFUSED, "echo was removed from inetd.conf but still listens");

	/* Version 3 is broken: the reload is refused, naming the line, and
	 * version 2 keeps running. */
	snprintf(text, sizeof(text), "# version 3\n\nrstatd/1-3\tdgram\trpc/udp\twait\troot\t/usr/sbin/rpc.rstatd\n");
	write_file(path, text);
	h_proc_kill(h.daemon, SIGHUP);
	char where[240];
	snprintf(where, sizeof(where), "%s:3:", path);
	cr_assert(h_log_wait(H_DEADLINE_MS, "reload refused", where, NULL), "the refused reload does not name %s", where);
	fd = h_connect(&day, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "a broken inetd.conf took the running service down");
	close(fd);
	h_finish();
}

/* Each kind of entry handoffd cannot honour: the entry, a word the error
 * must contain, and whether --convert-inetd sees it too (a user name is
 * only resolved when the configuration is loaded: the conversion may be
 * meant for another machine). */
static const struct {
	const char *entry, *word;
	bool load_only;
} bad_entries[] = {
	{"rstatd/1-3\tdgram\trpc/udp\twait\troot\t/usr/sbin/rpc.rstatd\trpc.rstatd", "RPC", false},
	{"4000\traw\ttcp\tnowait\troot\t/bin/cat\tcat", "raw", false},
	{"4001\tdgram\tudp\tnowait\troot\t/bin/cat\tcat", "nowait", false},
	{"4002\tstream\ttcp\tsometimes\troot\t/bin/cat\tcat", "sometimes", false},
	{"4003\tstream\tddp\tnowait\troot\t/bin/cat\tcat", "ddp", false},
	{"ssh\tstream\ttcp\tnowait\troot\tinternal", "ssh", false},
	{"4004\tseqpacket\ttcp\tnowait\troot\t/bin/cat\tcat", "seqpacket", false},
	{"4005\tstream\ttcp\tnowait\troot", "field", false},
	{"4006\tstream\ttcp\tnowait\troot\tcat\tcat", "absolute", false},
	{"4007\tstream\ttcp\tnowait\tno-such-user-here\t/bin/cat\tcat", "no-such-user-here", true},
	{"no-such-service-here\tstream\ttcp\tnowait\troot\t/bin/cat\tcat", "no-such-service-here", false},
};

Test(inetd, unsupported_entries_name_their_line, .timeout = 30)
{
	char path[200], text[1024], where[240];
	snprintf(path, sizeof(path), "%s/bad-inetd.conf", h.dir);
	for (size_t i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++) {
		/* A good entry first, then the bad one on line 6. */
		snprintf(text, sizeof(text),
		         "# inetd.conf with one bad entry\n#\n#:INTERNAL: Internal services\n"
		         "echo\tstream\ttcp\tnowait\troot\tinternal\n\n%s\n# end\n",
		         bad_entries[i].entry);
		write_file(path, text);
		snprintf(where, sizeof(where), "%s:6:", path);
		char *out = NULL;
		int rc = run_handoffd(&out, "-t", "--inetd", path);
		cr_assert_eq(rc, 1, "'%s': handoffd -t --inetd exit %d (want 1):\n%s", bad_entries[i].entry, rc, out);
		cr_assert(strstr(out, where), "'%s': the error does not name %s:\n%s", bad_entries[i].entry, where, out);
		cr_assert(strcasestr(out, bad_entries[i].word), "'%s': the error does not say '%s':\n%s",
		          bad_entries[i].entry, bad_entries[i].word, out);
		free(out);

		/* The same through --convert-inetd, and through inetd_conf =. */
		if (!bad_entries[i].load_only) {
			rc = run_handoffd(&out, "--convert-inetd", path, NULL);
			cr_assert_eq(rc, 1, "'%s': --convert-inetd exit %d:\n%s", bad_entries[i].entry, rc, out);
			cr_assert(strstr(out, where), "'%s': --convert-inetd does not name %s:\n%s", bad_entries[i].entry,
			          where, out);
			free(out);
		}
		h_config("inetd_conf = %s\n", path);
		rc = run_handoffd(&out, "-t", "-f", h.conf);
		cr_assert_eq(rc, 1, "'%s': inetd_conf = : exit %d:\n%s", bad_entries[i].entry, rc, out);
		cr_assert(strstr(out, where), "'%s': inetd_conf = does not name %s:\n%s", bad_entries[i].entry, where, out);
		free(out);
	}
	h_finish();
}

Test(inetd, missing_inetd_conf_is_an_error, .timeout = 15)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/no-such-inetd.conf", h.dir);
	h_config("inetd_conf = %s\n[service x]\nlisten = tcp://127.0.0.1:%d\n", path, h_free_port(AF_INET));
	char *out = NULL;
	int rc = run_handoffd(&out, "-t", "-f", h.conf);
	cr_assert_eq(rc, 1, "exit %d:\n%s", rc, out);
	cr_assert(strstr(out, path), "the error does not name the missing file:\n%s", out);
	free(out);
	h_finish();
}

Test(inetd, convert_debian_layout, .timeout = 15)
{
	char src[512];
	snprintf(src, sizeof(src), "%s/tests/data/inetd/debian.conf", env_or_fail("TOP_SRCDIR"));
	char *conv = NULL, *out = NULL;
	int rc = run_handoffd(&conv, "--convert-inetd", src, NULL);
	cr_assert_eq(rc, 0, "--convert-inetd %s: exit %d:\n%s", src, rc, conv);
	char cpath[200];
	snprintf(cpath, sizeof(cpath), "%s/debian-converted.conf", h.dir);
	write_file(cpath, conv);
	rc = run_handoffd(&out, "-t", "-f", cpath);
	cr_assert_eq(rc, 0, "the conversion of %s does not pass -t (%d):\n%s\n--- conversion ---\n%s", src, rc, out, conv);
	int n = ok_count(out);
	free(out);
	rc = run_handoffd(&out, "-t", "--inetd", src);
	cr_assert_eq(rc, 0, "-t --inetd %s: %d:\n%s", src, rc, out);
	cr_assert_eq(ok_count(out), n, "--inetd: %s, conversion: %d services", out, n);
	free(out);
	free(conv);
	h_finish();
}
