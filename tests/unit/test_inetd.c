/* Unit tests for src/daemon/inetd.c: the inetd.conf front end.
 *
 * The fixture tests/data/inetd/debian.conf is Debian's openbsd-inetd
 * layout with one entry of each kind; it is converted (every key of every
 * section checked), loaded through the configuration builder
 * (`inetd_conf = PATH`, every struct cfg_service field that matters
 * checked), and its conversion is loaded too and compared with the direct
 * load, field by field, so the two paths cannot drift. Each kind of entry
 * handoffd cannot honour is written to a file in a mkdtemp() directory and
 * must give an error naming FILE:LINE, both when converted and when loaded.
 *
 * Fixtures are found under $TOP_SRCDIR (set by make check; "." when unset).
 * Users and groups used are Debian's base-passwd ones (root, daemon,
 * nobody, www-data; adm, tty, nogroup). Every test checks that it leaves no
 * fd open (TEST()). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "inetd.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

static char errbuf[65536];

static uid_t uid_of(const char *name)
{
	struct passwd *pw = getpwnam(name);
	cr_assert_not_null(pw, "user %s missing from this system", name);
	return pw->pw_uid;
}

static gid_t gid_of(const char *name)
{
	struct group *gr = getgrnam(name);
	cr_assert_not_null(gr, "group %s missing from this system", name);
	return gr->gr_gid;
}

/* Absolute path of a fixture (inetd_conf wants an absolute path). */
static void fixture(const char *rel, char *buf, size_t size)
{
	const char *top = getenv("TOP_SRCDIR");
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tests/data/inetd/%s", top && *top ? top : ".", rel);
	char *abs = realpath(tmp, NULL);
	cr_assert_not_null(abs, "fixture %s not found (set TOP_SRCDIR)", tmp);
	snprintf(buf, size, "%s", abs);
	free(abs);
}

/* Line number of the first line of path equal to text. */
static int line_of(const char *path, const char *text)
{
	FILE *fp = fopen(path, "re");
	cr_assert_not_null(fp);
	char line[4096];
	int n = 0, found = 0;
	while (!found && fgets(line, sizeof(line), fp)) {
		n++;
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, text) == 0)
			found = n;
	}
	fclose(fp);
	cr_assert_gt(found, 0, "'%s' not in %s", text, path);
	return found;
}

struct conv {
	int rc;
	char *out;
	char *err;
};

static struct conv convert(const char *path)
{
	struct conv c = {0};
	size_t olen = 0, elen = 0;
	FILE *out = open_memstream(&c.out, &olen);
	FILE *err = open_memstream(&c.err, &elen);
	cr_assert(out && err);
	c.rc = inetd_convert(path, out, err);
	fclose(out);
	fclose(err);
	return c;
}

static void conv_free(struct conv *c)
{
	free(c->out);
	free(c->err);
}

/* The "key = value" lines of [service name] in a conversion, joined with
 * '\n' (comments left out); NULL if there is no such section. */
static char *section(const char *out, const char *name)
{
	char hdr[128];
	snprintf(hdr, sizeof(hdr), "[service %s]\n", name);
	const char *p = strstr(out, hdr);
	if (!p)
		return NULL;
	p += strlen(hdr);
	char *ret = calloc(1, strlen(p) + 1);
	cr_assert_not_null(ret);
	size_t pos = 0;
	while (*p && *p != '[') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len && *p != ';') {
			if (pos)
				ret[pos++] = '\n';
			memcpy(ret + pos, p, len);
			pos += len;
		}
		p += len + (nl ? 1 : 0);
	}
	ret[pos] = '\0';
	return ret;
}

static void expect_section(const char *out, const char *name, const char *keys)
{
	char *s = section(out, name);
	cr_assert_not_null(s, "no [service %s] in:\n%s", name, out);
	cr_assert_str_eq(s, keys, "[service %s]: got\n%s\nwant\n%s", name, s, keys);
	free(s);
}

/* The line named by "; from PATH:LINE" right after [service name]. */
static int from_line(const char *out, const char *name, const char *path)
{
	char hdr[128], want[PATH_MAX + 16];
	snprintf(hdr, sizeof(hdr), "[service %s]\n", name);
	const char *p = strstr(out, hdr);
	cr_assert_not_null(p, "no [service %s]", name);
	p += strlen(hdr);
	snprintf(want, sizeof(want), "; from %s:", path);
	cr_assert(strncmp(p, want, strlen(want)) == 0, "[service %s] lacks '%s'", name, want);
	return atoi(p + strlen(want));
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A temporary inetd.conf holding text; tmp_done() removes it. */
struct tmp {
	char dir[64];
	char path[128];
};

static void tmp_write(struct tmp *t, const char *text)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_inetd.XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/inetd.conf", t->dir);
	FILE *fp = fopen(t->path, "we");
	cr_assert_not_null(fp);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* Replace the file's text (same directory). */
static void tmp_rewrite(struct tmp *t, const char *text)
{
	FILE *fp = fopen(t->path, "we");
	cr_assert_not_null(fp);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

static void tmp_done(struct tmp *t)
{
	unlink(t->path);
	char conv[160];
	snprintf(conv, sizeof(conv), "%s/handoffd.conf", t->dir);
	unlink(conv);
	rmdir(t->dir);
}

/* Load an inetd.conf through the builder, as `inetd_conf = PATH` does. */
static int load_inetd(const char *path, struct config **ret)
{
	char text[PATH_MAX + 64];
	snprintf(text, sizeof(text), "[handoffd]\ninetd_conf = %s\n", path);
	*ret = NULL;
	return config_load_string(text, "main.conf", ret, errbuf, sizeof(errbuf));
}

static const struct cfg_service *svc(const struct config *c, const char *name)
{
	const struct cfg_service *s = config_find_service(c, name);
	cr_assert_not_null(s, "service %s not loaded", name);
	return s;
}

static void expect_argv(const struct cfg_service *s, int argc, ...)
{
	va_list ap;
	cr_assert_eq(s->exec_argc, argc, "[service %s]: exec_argc %d, want %d", s->name, s->exec_argc, argc);
	va_start(ap, argc);
	for (int i = 0; i < argc; i++) {
		const char *w = va_arg(ap, const char *);
		cr_assert_str_eq(s->exec_argv[i], w, "[service %s]: argv[%d]", s->name, i);
	}
	va_end(ap);
	cr_assert_null(s->exec_argv[argc]);
}

/* ---- the Debian layout fixture ---- */

TEST(inetd, convert_debian_layout)
{
	char path[PATH_MAX];
	fixture("debian.conf", path, sizeof(path));
	struct conv c = convert(path);
	cr_assert_eq(c.rc, 0, "rc %d, errors:\n%s", c.rc, c.err);
	cr_assert_str_eq(c.err, "");

	char first[PATH_MAX + 64];
	snprintf(first, sizeof(first), "; handoffd.conf for the services of %s\n", path);
	cr_assert(strncmp(c.out, first, strlen(first)) == 0, "output does not start by naming the source:\n%s", c.out);
	cr_assert_null(strstr(c.out, "[handoffd]"));
	cr_assert_null(strstr(c.out, "NOT CONVERTED"));
	/* 23 entries, and the tcpmux service their tcpmux/ entry needs */
	cr_assert_eq(count_of(c.out, "[service "), 24, "%s", c.out);
	/* Nothing from the commented-out entries. */
	cr_assert_null(strstr(c.out, "rstatd"));
	cr_assert_null(strstr(c.out, "identd"));

	static const struct {
		const char *name, *proto;
		unsigned port;
	} internal[] = {{"echo", "echo", 7}, {"discard", "discard", 9}, {"chargen", "chargen", 19},
	                {"daytime", "daytime", 13}, {"time", "time", 37}};
	for (size_t i = 0; i < N_ELEMENTS(internal); i++) {
		char name[32], keys[128], entry[128];
		snprintf(name, sizeof(name), "%s-tcp", internal[i].name);
		snprintf(keys, sizeof(keys), "listen = tcp://*:%u\nbuiltin = %s", internal[i].port, internal[i].name);
		expect_section(c.out, name, keys);
		snprintf(entry, sizeof(entry), "%s\t%sstream\ttcp\tnowait\troot\tinternal", internal[i].name,
		         strlen(internal[i].name) < 8 ? "\t" : "");
		cr_assert_eq(from_line(c.out, name, path), line_of(path, entry), "%s", name);
		snprintf(name, sizeof(name), "%s-udp", internal[i].name);
		snprintf(keys, sizeof(keys), "listen = udp://*:%u\nbuiltin = %s", internal[i].port, internal[i].name);
		expect_section(c.out, name, keys);
		snprintf(entry, sizeof(entry), "%s\t%sdgram\tudp\twait\troot\tinternal", internal[i].name,
		         strlen(internal[i].name) < 8 ? "\t" : "");
		cr_assert_eq(from_line(c.out, name, path), line_of(path, entry), "%s", name);
	}

	/* stream tcp nowait with arguments and tcpd's argv[0] */
	expect_section(c.out, "ftp-tcp",
	               "listen = tcp://*:21\n"
	               "exec = /usr/sbin/tcpd -l -a\n"
	               "exec_argv0 = /usr/sbin/in.ftpd\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	cr_assert_eq(from_line(c.out, "ftp-tcp", path),
	             line_of(path, "ftp\t\tstream\ttcp\tnowait\troot\t/usr/sbin/tcpd\t/usr/sbin/in.ftpd -l -a"));
	/* tcp6: IPv6 only */
	expect_section(c.out, "telnet-tcp6",
	               "listen = tcp://[::]:23\n"
	               "ipv6only = yes\n"
	               "exec = /usr/sbin/tcpd\n"
	               "exec_argv0 = /usr/sbin/in.telnetd\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* dgram udp4 wait, user.group, argv[0] without a path */
	expect_section(c.out, "talk-udp4",
	               "listen = udp://0.0.0.0:517\n"
	               "exec = /usr/sbin/in.talkd\n"
	               "exec_argv0 = in.talkd\n"
	               "exec_user = nobody\n"
	               "exec_group = tty\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* after a bare "127.0.0.1:" line; user:group */
	expect_section(c.out, "shell-tcp",
	               "listen = tcp://127.0.0.1:514\n"
	               "exec = /usr/sbin/tcpd -h\n"
	               "exec_argv0 = /usr/sbin/in.rshd\n"
	               "exec_user = root\n"
	               "exec_group = adm\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* after "*:" reset; tcp46: both families on one socket */
	expect_section(c.out, "login-tcp46",
	               "listen = tcp://*:513\n"
	               "exec = /usr/sbin/tcpd\n"
	               "exec_argv0 = /usr/sbin/in.rlogind\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* host: prefix; stream wait = listen mode */
	expect_section(c.out, "pop3-tcp",
	               "listen = tcp://127.0.0.1:110\n"
	               "mode = listen\n"
	               "exec = /usr/local/sbin/popd --listen\n"
	               "exec_argv0 = popd\n"
	               "exec_user = nobody\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	expect_section(c.out, "finger-tcp46",
	               "listen = tcp://*:79\n"
	               "exec = /usr/sbin/tcpd\n"
	               "exec_argv0 = /usr/sbin/in.fingerd\n"
	               "exec_user = nobody\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* argv[0] equal to the path: no exec_argv0 */
	expect_section(c.out, "tftp-udp",
	               "listen = udp://*:69\n"
	               "exec = /usr/sbin/in.tftpd -s /srv/tftp\n"
	               "exec_user = nobody\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* numeric port, nowait.400 */
	expect_section(c.out, "8080-tcp",
	               "listen = tcp://*:8080\n"
	               "exec = /usr/local/sbin/webd --inetd\n"
	               "exec_argv0 = webd\n"
	               "exec_user = www-data\n"
	               "spawn_rate = 400/min\n"
	               "spawn_pause = 10m");
	/* tcpmux/+name: no listen of its own */
	expect_section(c.out, "tcpmux-hello",
	               "tcpmux = +hello\n"
	               "exec = /bin/echo hello world\n"
	               "exec_argv0 = echo\n"
	               "exec_user = nobody\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	/* ... and the tcpmux builtin it needs, added with a comment */
	expect_section(c.out, "tcpmux-tcp", "listen = tcp://*:1\nbuiltin = tcpmux");
	cr_assert_eq(from_line(c.out, "tcpmux-tcp", path),
	             line_of(path, "tcpmux/+hello\tstream\ttcp\tnowait\tnobody\t/bin/echo\techo hello world"));
	cr_assert_not_null(strstr(c.out, "; added: the tcpmux/ entries need the tcpmux service on port 1"));
	/* unix stream, dgram and seqpacket */
	expect_section(c.out, "echo.sock-unix",
	               "listen = unix:/run/handoffd-test/echo.sock\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = daemon\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	expect_section(c.out, "log.sock-unix",
	               "listen = unix-dgram:/run/handoffd-test/log.sock\n"
	               "exec = /usr/bin/logger -t inetd\n"
	               "exec_argv0 = logger\n"
	               "exec_user = daemon\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	expect_section(c.out, "seq.sock-unix",
	               "listen = unix-seqpacket:/run/handoffd-test/seq.sock\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	cr_assert_eq(from_line(c.out, "seq.sock-unix", path),
	             line_of(path, "/run/handoffd-test/seq.sock\tseqpacket\tunix\tnowait\troot\t/bin/cat\tcat"));
	conv_free(&c);
}

TEST(inetd, load_debian_layout)
{
	char path[PATH_MAX];
	fixture("debian.conf", path, sizeof(path));
	struct config *c;
	int rc = load_inetd(path, &c);
	cr_assert_eq(rc, 0, "rc %d:\n%s", rc, errbuf);
	cr_assert_eq(c->nservices, 24);

	const struct cfg_service *s = svc(c, "echo-tcp");
	cr_assert_eq(s->line, line_of(path, "echo\t\tstream\ttcp\tnowait\troot\tinternal"));
	cr_assert_eq(s->nlisten, 1);
	cr_assert_str_eq(s->listen[0].text, "tcp://*:7");
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_STREAM);
	cr_assert_eq(s->builtin, BUILTIN_ECHO);
	cr_assert_null(s->exec_argv);

	s = svc(c, "echo-udp");
	cr_assert_str_eq(s->listen[0].text, "udp://*:7");
	cr_assert_eq(s->listen[0].spec.kind, ADDR_UDP);
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_DGRAM);
	cr_assert_eq(s->builtin, BUILTIN_ECHO);
	cr_assert_eq(svc(c, "discard-tcp")->builtin, BUILTIN_DISCARD);
	cr_assert_eq(svc(c, "discard-udp")->builtin, BUILTIN_DISCARD);
	cr_assert_eq(svc(c, "chargen-udp")->builtin, BUILTIN_CHARGEN);
	cr_assert_eq(svc(c, "daytime-tcp")->builtin, BUILTIN_DAYTIME);
	cr_assert_eq(svc(c, "time-udp")->builtin, BUILTIN_TIME);
	cr_assert_str_eq(svc(c, "time-udp")->listen[0].text, "udp://*:37");

	s = svc(c, "ftp-tcp");
	cr_assert_str_eq(s->exec_path, "/usr/sbin/tcpd");
	expect_argv(s, 3, "/usr/sbin/in.ftpd", "-l", "-a");
	cr_assert_eq(s->exec_uid, 0);
	cr_assert_eq(s->exec_gid, 0);
	cr_assert_eq(s->mode, MODE_ACCEPT);
	cr_assert_eq(s->on_no_backend, NOB_SPAWN);
	cr_assert_eq(s->spawn_rate.count, 256);
	cr_assert_eq(s->spawn_rate.per_ms, 60000);
	cr_assert_eq(s->spawn_pause_ms, 600000);
	cr_assert_eq(s->builtin, BUILTIN_NONE);

	s = svc(c, "telnet-tcp6");
	cr_assert_str_eq(s->listen[0].text, "tcp://[::]:23");
	cr_assert_eq(s->opt.ipv6only, 1);
	expect_argv(s, 1, "/usr/sbin/in.telnetd");

	s = svc(c, "talk-udp4");
	cr_assert_str_eq(s->listen[0].text, "udp://0.0.0.0:517");
	cr_assert_eq(s->exec_uid, uid_of("nobody"));
	cr_assert_eq(s->exec_gid, gid_of("tty"));
	expect_argv(s, 1, "in.talkd");

	s = svc(c, "shell-tcp");
	cr_assert_str_eq(s->listen[0].text, "tcp://127.0.0.1:514");
	cr_assert_eq(s->exec_gid, gid_of("adm"));
	expect_argv(s, 2, "/usr/sbin/in.rshd", "-h");

	s = svc(c, "login-tcp46");
	cr_assert_str_eq(s->listen[0].text, "tcp://*:513");
	cr_assert_eq(s->opt.ipv6only, -1);

	s = svc(c, "pop3-tcp");
	cr_assert_str_eq(s->listen[0].text, "tcp://127.0.0.1:110");
	cr_assert_eq(s->mode, MODE_LISTEN);
	expect_argv(s, 2, "popd", "--listen");

	s = svc(c, "tftp-udp");
	expect_argv(s, 3, "/usr/sbin/in.tftpd", "-s", "/srv/tftp");
	cr_assert_eq(s->exec_uid, uid_of("nobody"));

	s = svc(c, "8080-tcp");
	cr_assert_str_eq(s->listen[0].text, "tcp://*:8080");
	cr_assert_eq(s->spawn_rate.count, 400);
	cr_assert_eq(s->spawn_rate.per_ms, 60000);
	cr_assert_eq(s->exec_uid, uid_of("www-data"));

	s = svc(c, "tcpmux-hello");
	cr_assert_eq(s->nlisten, 0);
	cr_assert_str_eq(s->tcpmux_name, "hello");
	cr_assert(s->tcpmux_plus);
	expect_argv(s, 3, "echo", "hello", "world");

	s = svc(c, "tcpmux-tcp");
	cr_assert_eq(s->builtin, BUILTIN_TCPMUX);
	cr_assert_str_eq(s->listen[0].text, "tcp://*:1");
	cr_assert_eq(config_find_tcpmux(c, "HELLO"), svc(c, "tcpmux-hello"));

	s = svc(c, "echo.sock-unix");
	cr_assert_eq(s->listen[0].spec.kind, ADDR_UNIX);
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_STREAM);
	cr_assert_str_eq(s->listen[0].spec.path, "/run/handoffd-test/echo.sock");
	cr_assert_eq(s->exec_uid, uid_of("daemon"));
	s = svc(c, "log.sock-unix");
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_DGRAM);
	expect_argv(s, 3, "logger", "-t", "inetd");
	s = svc(c, "seq.sock-unix");
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_SEQPACKET);
	cr_assert_eq(s->mode, MODE_ACCEPT);
	config_free(c);
}

/* Loading a file and loading its conversion give the same services. */
TEST(inetd, conversion_loads_like_the_file)
{
	char path[PATH_MAX];
	fixture("debian.conf", path, sizeof(path));
	struct conv cv = convert(path);
	cr_assert_eq(cv.rc, 0);
	struct tmp t;
	tmp_write(&t, "");
	char conv_path[160];
	snprintf(conv_path, sizeof(conv_path), "%s/handoffd.conf", t.dir);
	FILE *fp = fopen(conv_path, "we");
	cr_assert_not_null(fp);
	fputs(cv.out, fp);
	cr_assert_eq(fclose(fp), 0);

	struct config *a = NULL, *b = NULL;
	cr_assert_eq(load_inetd(path, &a), 0, "%s", errbuf);
	int rc = config_load_file(conv_path, &b, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, 0, "the conversion is refused (%d):\n%s\n--- conversion ---\n%s", rc, errbuf, cv.out);
	cr_assert_eq(a->nservices, b->nservices);
	for (size_t i = 0; i < a->nservices; i++) {
		const struct cfg_service *x = &a->services[i], *y = &b->services[i];
		cr_assert_str_eq(x->name, y->name);
		cr_assert_eq(x->nlisten, y->nlisten, "%s", x->name);
		for (int j = 0; j < x->nlisten; j++)
			cr_assert_str_eq(x->listen[j].text, y->listen[j].text, "%s", x->name);
		cr_assert_eq(x->mode, y->mode, "%s", x->name);
		cr_assert_eq(x->builtin, y->builtin, "%s", x->name);
		cr_assert_eq(x->opt.ipv6only, y->opt.ipv6only, "%s", x->name);
		cr_assert_eq(x->exec_argc, y->exec_argc, "%s", x->name);
		for (int j = 0; j < x->exec_argc; j++)
			cr_assert_str_eq(x->exec_argv[j], y->exec_argv[j], "%s", x->name);
		cr_assert_eq(x->exec_uid, y->exec_uid, "%s", x->name);
		cr_assert_eq(x->exec_gid, y->exec_gid, "%s", x->name);
		cr_assert_eq(x->spawn_rate.count, y->spawn_rate.count, "%s", x->name);
		cr_assert_eq(x->spawn_pause_ms, y->spawn_pause_ms, "%s", x->name);
		cr_assert_str_eq(x->tcpmux_name, y->tcpmux_name, "%s", x->name);
		cr_assert_eq(x->tcpmux_plus, y->tcpmux_plus, "%s", x->name);
	}
	config_free(a);
	config_free(b);
	conv_free(&cv);
	tmp_done(&t);
}

/* ---- entries handoffd cannot honour: FILE:LINE in both paths ---- */

/* The bad entry is line 3, after a comment and a good entry. */
static void expect_bad_entry(const char *entry, const char *phrase)
{
	char text[1024];
	snprintf(text, sizeof(text), "# test\necho stream tcp nowait root internal\n%s\n", entry);
	struct tmp t;
	tmp_write(&t, text);
	char want[256];
	snprintf(want, sizeof(want), "%s:3: ", t.path);

	struct conv c = convert(t.path);
	cr_assert_eq(c.rc, -EINVAL, "accepted: %s", entry);
	cr_assert(strncmp(c.err, want, strlen(want)) == 0, "error does not name %s:\n%s", want, c.err);
	cr_assert_not_null(strstr(c.err, phrase), "error lacks '%s':\n%s", phrase, c.err);
	cr_assert_eq(count_of(c.err, "\n"), 1, "one error expected:\n%s", c.err);
	cr_assert_not_null(strstr(c.out, "[service echo-tcp]"), "the good entry is still converted");
	cr_assert_eq(count_of(c.out, "[service "), 1, "%s", c.out);
	cr_assert_not_null(strstr(c.out, "; NOT CONVERTED "));
	conv_free(&c);

	struct config *cfg;
	int rc = load_inetd(t.path, &cfg);
	cr_assert_eq(rc, -EINVAL, "loaded: %s", entry);
	cr_assert_null(cfg);
	cr_assert_not_null(strstr(errbuf, want), "load error does not name %s:\n%s", want, errbuf);
	cr_assert_not_null(strstr(errbuf, phrase), "load error lacks '%s':\n%s", phrase, errbuf);
	tmp_done(&t);
}

TEST(inetd, error_rpc)
{
	expect_bad_entry("rstatd/1-3\tdgram\trpc/udp\twait\troot\t/usr/sbin/rpc.rstatd\trpc.rstatd",
	                 "RPC services are not supported");
	expect_bad_entry("rpc/foo stream tcp nowait root /usr/sbin/foo foo", "RPC services are not supported");
}

TEST(inetd, error_raw_socket)
{
	expect_bad_entry("echo raw tcp nowait root /bin/x x", "socket type 'raw' (field 2) is not supported");
	expect_bad_entry("echo rdm tcp nowait root /bin/x x", "socket type 'rdm' (field 2) is not supported");
	expect_bad_entry("echo seqpacket tcp nowait root /bin/x x", "seqpacket (field 2) needs protocol unix");
	expect_bad_entry("echo sometype tcp nowait root /bin/x x", "unknown socket type 'sometype' (field 2)");
}

TEST(inetd, error_dgram_nowait)
{
	expect_bad_entry("tftp dgram udp nowait nobody /usr/sbin/in.tftpd in.tftpd",
	                 "dgram nowait (field 4) is not supported: handoffd shares a datagram socket");
	expect_bad_entry("/run/x.sock dgram unix nowait root /bin/x x", "dgram nowait (field 4)");
}

TEST(inetd, error_unknown_protocol)
{
	expect_bad_entry("echo stream sctp nowait root internal", "unknown protocol 'sctp' (field 3)");
	expect_bad_entry("echo stream tcp,foo=1 nowait root internal", "unknown protocol option 'foo=1' (field 3)");
	expect_bad_entry("echo stream udp nowait root internal", "does not go with protocol udp");
}

TEST(inetd, error_unknown_service_name)
{
	expect_bad_entry("no-such-service stream tcp nowait root /bin/x x",
	                 "unknown service name 'no-such-service' (field 1)");
	/* ftp is tcp only in /etc/services */
	expect_bad_entry("ftp dgram udp wait root /bin/x x", "unknown service name 'ftp' (field 1)");
	expect_bad_entry("70000 stream tcp nowait root /bin/x x", "port '70000' (field 1) is not 1..65535");
}

TEST(inetd, error_too_few_fields)
{
	expect_bad_entry("echo stream tcp nowait root", "too few fields (5)");
	expect_bad_entry("echo", "too few fields (1)");
}

TEST(inetd, error_bad_user)
{
	expect_bad_entry("echo stream tcp nowait ro@t /bin/x x", "bad user field 'ro@t' (field 5)");
	expect_bad_entry("echo stream tcp nowait root: /bin/x x", "bad user field 'root:' (field 5)");
	expect_bad_entry("echo stream tcp nowait .wheel /bin/x x", "bad user field '.wheel' (field 5)");
	/* syntactically fine, but no such user: the builder says so, at the line */
	struct tmp t;
	tmp_write(&t, "#\n\necho stream tcp nowait no-such-user-x /bin/cat cat\n");
	struct config *c;
	cr_assert_eq(load_inetd(t.path, &c), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:3: exec_user: no such user 'no-such-user-x'", t.path);
	cr_assert_not_null(strstr(errbuf, want), "%s", errbuf);
	tmp_done(&t);
}

TEST(inetd, error_internal_unknown)
{
	expect_bad_entry("qotd stream tcp nowait root internal", "unknown internal service 'qotd' (fields 1 and 6)");
	expect_bad_entry("17 stream tcp nowait root internal", "unknown internal service 'qotd'");
	expect_bad_entry("tcpmux dgram udp wait root internal", "unknown service name 'tcpmux'");
	expect_bad_entry("/run/e.sock stream unix nowait root internal", "internal services (field 6) run over tcp");
}

TEST(inetd, error_other_fields)
{
	expect_bad_entry("echo stream tcp sometimes root internal", "bad wait field 'sometimes' (field 4)");
	expect_bad_entry("echo stream tcp nowait.0 root internal", "bad wait field 'nowait.0' (field 4)");
	expect_bad_entry("echo stream tcp nowait.x root internal", "bad wait field 'nowait.x' (field 4)");
	expect_bad_entry("echo stream tcp nowait root bin/cat cat", "server program 'bin/cat' (field 6)");
	expect_bad_entry("[::1]:echo stream tcp4 nowait root internal",
	                 "host ::1 is an IPv6 address, but protocol tcp4 is IPv4 only");
	expect_bad_entry("127.0.0.1:echo stream tcp6 nowait root internal",
	                 "host 127.0.0.1 is an IPv4 address, but protocol tcp6 is IPv6 only");
	expect_bad_entry("bad!host:echo stream tcp nowait root internal", "'bad!host' is not a host name or address");
	expect_bad_entry("bad!host:", "default host line 'bad!host:'");
	expect_bad_entry("relative.sock stream unix nowait root /bin/cat cat",
	                 "unix socket 'relative.sock' (field 1) must be an absolute path");
	expect_bad_entry("tcpmux/+x dgram udp wait root /bin/cat cat", "tcpmux service 'x' must be stream tcp");
	expect_bad_entry("tcpmux/x stream tcp wait root /bin/cat cat", "tcpmux service 'x' must be nowait");
	expect_bad_entry("tcpmux/x stream tcp nowait root internal", "cannot be internal");
	expect_bad_entry("echo stream tcp,rcvbuf=2g nowait root internal", "protocol option 'rcvbuf=2g' (field 3)");
}

TEST(inetd, error_line_too_long)
{
	char *text = malloc(6000);
	cr_assert_not_null(text);
	strcpy(text, "echo stream tcp nowait root /bin/cat cat");
	for (int i = 0; i < 600; i++)
		strcat(text, " argument");
	struct tmp t;
	char *file = malloc(7000);
	cr_assert_not_null(file);
	snprintf(file, 7000, "discard stream tcp nowait root internal\n%s\ndaytime stream tcp nowait root internal\n", text);
	tmp_write(&t, file);
	struct conv c = convert(t.path);
	char want[256];
	snprintf(want, sizeof(want), "%s:2: line too long", t.path);
	cr_assert_eq(c.rc, -EINVAL);
	cr_assert_not_null(strstr(c.err, want), "%s", c.err);
	/* the lines around it still count and convert */
	cr_assert_not_null(strstr(c.out, "[service discard-tcp]"));
	cr_assert_not_null(strstr(c.out, "[service daytime-tcp]"));
	cr_assert_eq(from_line(c.out, "daytime-tcp", t.path), 3);
	conv_free(&c);
	/* a long command that fits inetd.conf but not a handoffd.conf line */
	snprintf(file, 7000, "echo stream tcp nowait root /bin/cat cat %0300d\n", 7);
	tmp_rewrite(&t, file);
	c = convert(t.path);
	snprintf(want, sizeof(want), "%s:1: the entry does not fit handoffd.conf", t.path);
	cr_assert_not_null(strstr(c.err, want), "%s", c.err);
	conv_free(&c);
	free(text);
	free(file);
	tmp_done(&t);
}

TEST(inetd, missing_file)
{
	struct conv c = convert("/nonexistent/inetd.conf");
	cr_assert_eq(c.rc, -ENOENT);
	cr_assert_str_eq(c.err, "/nonexistent/inetd.conf: cannot read: No such file or directory\n");
	conv_free(&c);
	/* the builder reports it at the inetd_conf line of the main file */
	struct config *cfg;
	cr_assert_eq(load_inetd("/nonexistent/inetd.conf", &cfg), -EINVAL);
	cr_assert_not_null(strstr(errbuf, "main.conf:2: "), "%s", errbuf);
	cr_assert_not_null(strstr(errbuf, "/nonexistent/inetd.conf"), "%s", errbuf);
}

/* ---- the finer points of the format ---- */

TEST(inetd, hosts)
{
	struct tmp t;
	tmp_write(&t,
	          "127.0.0.1,[::1]:\n"                              /* 1 */
	          "echo stream tcp46 nowait root internal\n"       /* 2: both hosts */
	          "localhost:discard stream tcp nowait root internal\n" /* 3: explicit wins */
	          "daytime stream tcp nowait root internal\n"      /* 4: default again (v4 and v6) */
	          "*:\n"                                          /* 5 */
	          "time stream tcp nowait root internal\n"         /* 6: all addresses */
	          "::1:chargen stream tcp6 nowait root internal\n" /* 7: unbracketed v6 */
	          "*:echo dgram udp6 wait root internal\n");        /* 8 */
	struct conv c = convert(t.path);
	/* tcp is IPv4 and IPv6 (Debian's openbsd-inetd): both default hosts. */
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "daytime-tcp", "listen = tcp://127.0.0.1:13\nlisten = tcp://[::1]:13\nbuiltin = daytime");
	expect_section(c.out, "echo-tcp46", "listen = tcp://127.0.0.1:7\nlisten = tcp://[::1]:7\nbuiltin = echo");
	expect_section(c.out, "discard-tcp", "listen = tcp://localhost:9\nbuiltin = discard");
	expect_section(c.out, "time-tcp", "listen = tcp://*:37\nbuiltin = time");
	expect_section(c.out, "chargen-tcp6", "listen = tcp://[::1]:19\nbuiltin = chargen");
	expect_section(c.out, "echo-udp6", "listen = udp://[::]:7\nipv6only = yes\nbuiltin = echo");
	conv_free(&c);
	tmp_done(&t);
}

TEST(inetd, continuation_crlf_and_comments)
{
	struct tmp t;
	tmp_write(&t,
	          "  # an indented comment\r\n"
	          "ident\tstream\ttcp\tnowait\tnobody\t/usr/sbin/tcpd\r\n"
	          "\t/usr/sbin/identd -i\r\n"
	          "\r\n"
	          "   \t \r\n"
	          "echo stream tcp nowait root internal\r\n");
	struct conv c = convert(t.path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "ident-tcp",
	               "listen = tcp://*:113\n"
	               "exec = /usr/sbin/tcpd -i\n"
	               "exec_argv0 = /usr/sbin/identd\n"
	               "exec_user = nobody\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	cr_assert_eq(from_line(c.out, "ident-tcp", t.path), 2);
	cr_assert_eq(from_line(c.out, "echo-tcp", t.path), 6);
	cr_assert_eq(count_of(c.out, "[service "), 2);
	conv_free(&c);
	tmp_done(&t);
}

TEST(inetd, names_unique_and_sane)
{
	struct tmp t;
	tmp_write(&t,
	          "echo stream tcp nowait root internal\n"
	          "127.0.0.1:echo stream tcp nowait root internal\n"
	          "127.0.0.2:echo stream tcp nowait root internal\n"
	          "/run/a b.sock stream unix nowait root /bin/cat cat\n"
	          "/run/very-long-socket-name-that-goes-on-and-on-and-on-and-on-for-ever.sock stream unix nowait root "
	          "/bin/cat cat\n");
	struct conv c = convert(t.path);
	/* "/run/a" is the path (blank-separated fields): "b.sock" is the socket type */
	cr_assert_eq(c.rc, -EINVAL);
	char *first = section(c.out, "echo-tcp");
	cr_assert_not_null(first);
	free(first);
	expect_section(c.out, "echo-tcp-2", "listen = tcp://127.0.0.1:7\nbuiltin = echo");
	expect_section(c.out, "echo-tcp-3", "listen = tcp://127.0.0.2:7\nbuiltin = echo");
	const char *p = strstr(c.out, "[service very-long-socket-name");
	cr_assert_not_null(p, "%s", c.out);
	const char *end = strchr(p, ']');
	cr_assert_leq(end - p - 9, 63, "name longer than 63 bytes");
	conv_free(&c);

	struct config *cfg;
	tmp_rewrite(&t, "echo stream tcp nowait root internal\n127.0.0.1:echo stream tcp nowait root internal\n"
	              "/run/x:y.sock stream unix nowait root /bin/cat cat\n");
	cr_assert_eq(load_inetd(t.path, &cfg), 0, "%s", errbuf);
	cr_assert_not_null(config_find_service(cfg, "echo-tcp-2"));
	/* ':' is not allowed in a name: sanitised; a unix path keeps its ':' */
	const struct cfg_service *s = svc(cfg, "x_y.sock-unix");
	cr_assert_str_eq(s->listen[0].spec.path, "/run/x:y.sock");
	config_free(cfg);
	tmp_done(&t);
}

TEST(inetd, tcpmux_builtin_given_or_added)
{
	struct tmp t;
	tmp_write(&t,
	          "tcpmux/sftp stream tcp6 nowait root /usr/lib/sftp-server sftp-server\n"
	          "tcpmux stream tcp nowait root internal\n");
	struct conv c = convert(t.path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	cr_assert_eq(count_of(c.out, "[service "), 2, "no tcpmux added when the file has one:\n%s", c.out);
	expect_section(c.out, "tcpmux-tcp", "listen = tcp://*:1\nbuiltin = tcpmux");
	expect_section(c.out, "tcpmux-sftp",
	               "tcpmux = sftp\n"
	               "exec = /usr/lib/sftp-server\n"
	               "exec_argv0 = sftp-server\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	conv_free(&c);

	/* only tcp6 tcpmux entries: the added tcpmux listens on IPv6 */
	tmp_rewrite(&t, "tcpmux/+a stream tcp6 nowait root /bin/cat cat\ntcpmux/b stream tcp6 nowait root /bin/cat cat\n");
	c = convert(t.path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "tcpmux-tcp6", "listen = tcp://[::]:1\nipv6only = yes\nbuiltin = tcpmux");
	cr_assert_eq(count_of(c.out, "[service "), 3);
	cr_assert_eq(from_line(c.out, "tcpmux-tcp6", t.path), 1);
	conv_free(&c);
	/* mixed families: both */
	tmp_rewrite(&t, "tcpmux/+a stream tcp nowait root /bin/cat cat\ntcpmux/b stream tcp6 nowait root /bin/cat cat\n");
	c = convert(t.path);
	expect_section(c.out, "tcpmux-tcp", "listen = tcp://*:1\nbuiltin = tcpmux");
	conv_free(&c);
	tmp_done(&t);
}

TEST(inetd, exec_words_survive_quoting)
{
	struct tmp t;
	tmp_write(&t, "echo stream tcp nowait root /bin/printf printf %s ;semi a\"b back\\slash\n");
	struct conv c = convert(t.path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "echo-tcp",
	               "listen = tcp://*:7\n"
	               "exec = /bin/printf %s \";semi\" \"a\\\"b\" back\\slash\n"
	               "exec_argv0 = printf\n"
	               "exec_user = root\n"
	               "spawn_rate = 256/min\n"
	               "spawn_pause = 10m");
	conv_free(&c);
	struct config *cfg;
	cr_assert_eq(load_inetd(t.path, &cfg), 0, "%s", errbuf);
	expect_argv(svc(cfg, "echo-tcp"), 5, "printf", "%s", ";semi", "a\"b", "back\\slash");
	config_free(cfg);
	tmp_done(&t);
}

TEST(inetd, buffers_and_numeric_internal)
{
	struct tmp t;
	tmp_write(&t,
	          "echo stream tcp,rcvbuf=64k,sndbuf=1m nowait root internal\n"
	          "13 dgram udp wait root internal\n"
	          "sink stream tcp nowait.50 root internal\n"
	          "/run/buf.sock stream unix,rcvbuf=32k nowait root /bin/cat cat\n");
	struct conv c = convert(t.path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "echo-tcp",
	               "listen = tcp://*:7\nreceive_buffer = 64K\nsend_buffer = 1M\nbuiltin = echo");
	/* a port number resolves back to its service for internal */
	expect_section(c.out, "13-udp", "listen = udp://*:13\nbuiltin = daytime");
	/* an alias (discard's "sink") is the official service */
	expect_section(c.out, "sink-tcp", "listen = tcp://*:9\nbuiltin = discard");
	conv_free(&c);
	struct config *cfg;
	cr_assert_eq(load_inetd(t.path, &cfg), 0, "%s", errbuf);
	cr_assert_eq(svc(cfg, "echo-tcp")->opt.rcvbuf, 65536);
	cr_assert_eq(svc(cfg, "echo-tcp")->opt.sndbuf, 1048576);
	/* Unix listeners take buffer sizes as well (as openbsd-inetd sets them). */
	cr_assert_eq(svc(cfg, "buf.sock-unix")->opt.rcvbuf, 32768);
	config_free(cfg);
	tmp_done(&t);
}

/* ---- the sink interface itself ---- */

struct rec {
	char log[8192];
	size_t pos;
};

static void rec_add(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rec_add(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->log + r->pos, sizeof(r->log) - r->pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->pos += (size_t)n;
}

static void rec_service(void *ctx, const char *file, int line, const char *name)
{
	(void)file;
	rec_add(ctx, "S%d %s\n", line, name);
}

static void rec_key(void *ctx, const char *file, int line, const char *key, const char *value)
{
	(void)file;
	rec_add(ctx, "K%d %s=%s\n", line, key, value);
}

static void rec_error(void *ctx, const char *file, int line, const char *msg)
{
	(void)file;
	(void)msg;
	rec_add(ctx, "E%d\n", line);
}

TEST(inetd, sink_events)
{
	struct tmp t;
	tmp_write(&t, "echo stream tcp nowait root internal\nbogus stream tcp nowait root internal\n"
	              "echo dgram udp wait root internal\n");
	static const struct inetd_sink sink = {rec_service, rec_key, NULL, rec_error};
	struct rec r = {.pos = 0};
	cr_assert_eq(inetd_parse(t.path, &sink, &r), -EINVAL);
	cr_assert_str_eq(r.log, "S1 echo-tcp\nK1 listen=tcp://*:7\nK1 builtin=echo\n"
	                        "E2\n"
	                        "S3 echo-udp\nK3 listen=udp://*:7\nK3 builtin=echo\n");
	cr_assert_eq(inetd_parse("/nonexistent/x", &sink, &r), -ENOENT);
	tmp_done(&t);
}
