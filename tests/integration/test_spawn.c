/* Integration: programs started the inetd way. nowait: one program per
 * connection, the connection on fds 0-2 and nothing else, a clean signal
 * state and a documented environment; wait: the socket itself goes to one
 * program at a time; spawn_rate (nowait.max) pauses a service and
 * max_children caps it; on_no_backend falls back to spawning or rejects. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

TestSuite(spawn, .init = h_init, .fini = h_fini);

static const char *fdcheck(void)
{
	const char *p = getenv("FDCHECK");
	cr_assert(p && *p, "FDCHECK is not set (run the tests with `make check`)");
	return p;
}

static const char *test_backend(void)
{
	const char *p = getenv("TEST_BACKEND");
	cr_assert(p && *p, "TEST_BACKEND is not set (run the tests with `make check`)");
	return p;
}

/* Send line, expect it back (a /bin/cat service). */
static void echo_line(int fd, const char *line)
{
	char buf[256];
	cr_assert(h_send(fd, line) == 0);
	ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0, "no echo of '%s' (%zd: %s)", line, n, n < 0 ? strerror((int)-n) : "EOF");
	cr_assert_str_eq(buf, line);
}

/* Connect, run fdcheck's report over the connection; returns it (malloc'd). */
static char *report_over(const struct h_addr *a)
{
	int fd = h_connect(a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect %s: %s", a->text, strerror(-fd));
	static char buf[16384];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "no report from fdcheck (%zd)", n);
	cr_assert(strstr(buf, "\nend\n"), "incomplete report:\n%s", buf);
	return strdup(buf);
}

/* Number of report lines starting with prefix. */
static int lines_with(const char *report, const char *prefix)
{
	int n = 0;
	size_t pl = strlen(prefix);
	for (const char *l = report; *l;) {
		if (strncmp(l, prefix, pl) == 0)
			n++;
		const char *nl = strchr(l, '\n');
		if (!nl)
			break;
		l = nl + 1;
	}
	return n;
}

static bool has_line(const char *report, const char *line)
{
	size_t len = strlen(line);
	for (const char *l = report; *l;) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) : strlen(l);
		if (ll == len && strncmp(l, line, len) == 0)
			return true;
		if (!nl)
			break;
		l = nl + 1;
	}
	return false;
}

/* The value of "env NAME=..." in the report, or NULL. */
static const char *env_of(const char *report, const char *name, char *buf, size_t size)
{
	char key[80];
	snprintf(key, sizeof(key), "env %s=", name);
	for (const char *l = report; *l;) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) : strlen(l);
		if (strncmp(l, key, strlen(key)) == 0) {
			size_t vl = ll - strlen(key);
			snprintf(buf, size, "%.*s", (int)vl, l + strlen(key));
			return buf;
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return NULL;
}

/* Every "env NAME=" line names one of allowed (NULL-terminated). */
static void only_env(const char *report, const char *const *allowed)
{
	for (const char *l = report; *l;) {
		const char *nl = strchr(l, '\n');
		if (strncmp(l, "env ", 4) == 0) {
			size_t nlen = strcspn(l + 4, "=\n");
			bool ok = false;
			for (const char *const *a = allowed; *a && !ok; a++)
				ok = strlen(*a) == nlen && strncmp(l + 4, *a, nlen) == 0;
			cr_assert(ok, "undocumented environment entry: %.*s", (int)(nl ? nl - l : (long)strlen(l)), l);
		}
		if (!nl)
			break;
		l = nl + 1;
	}
}

Test(spawn, cat_as_echo_service, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service cat]\nlisten = tcp://127.0.0.1:%d\nexec = /bin/cat\nexec_user = root\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	/* Two at once: one program each. */
	int c1 = h_connect(&a, NULL, H_DEADLINE_MS), c2 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0 && c2 >= 0);
	echo_line(c1, "first client\n");
	echo_line(c2, "second client\n");
	echo_line(c1, "first again\n");
	/* Our EOF ends cat, which closes the connection. */
	shutdown(c1, SHUT_WR);
	char buf[64];
	cr_assert_eq(h_read_all(c1, buf, sizeof(buf), H_DEADLINE_MS), 0);
	close(c1);
	echo_line(c2, "still here\n");
	close(c2);
	cr_assert_eq(h_status_service("cat", "spawned"), 2, "spawned %lld programs for 2 connections",
	             h_status_service("cat", "spawned"));
	h_finish();
}

Test(spawn, child_gets_exactly_its_connection, .timeout = 15)
{
	int port = h_free_port(AF_INET), other = h_free_port_udp(AF_INET);
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/other.sock", h.dir);
	/* handoffd holds plenty of other fds when it spawns: listeners of
	 * several kinds, control connections, a delivered connection. */
	h_config("[service fd]\nlisten = tcp://127.0.0.1:%d\nexec = %s\nexec_user = root\n"
	         "[service busy]\nlisten = unix:%s, udp://127.0.0.1:%d\n"
	         "[service busy2]\nlisten = tcp://127.0.0.1:%d\n",
	         port, fdcheck(), sock, other, other);
	h_start_daemon();
	h_backend("busy2", 1, NULL, "--hold", "1", NULL);
	struct h_addr ba = h_addr_tcp("127.0.0.1", other);
	int held = h_connect(&ba, NULL, H_DEADLINE_MS);
	cr_assert(held >= 0);
	cr_assert(h_send(held, "hello\n") == 0);
	int ctl = h_raw_control(NULL);
	cr_assert(ctl >= 0);

	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char *r = report_over(&a);
	cr_assert(has_line(r, "fd 0 socket") && has_line(r, "fd 1 socket") && has_line(r, "fd 2 socket"),
	          "fds 0-2 are not the connection:\n%s", r);
	cr_assert_eq(lines_with(r, "fd "), 3, "the program inherited more than fds 0-2:\n%s", r);
	/* 0, 1 and 2 are the same socket. */
	char id0[80] = "", id1[80] = "", id2[80] = "";
	for (const char *l = strstr(r, "fdid "); l; l = strstr(l + 1, "\nfdid ")) {
		const char *p = l[0] == '\n' ? l + 1 : l;
		int fdn;
		char id[64];
		if (sscanf(p, "fdid %d %63s", &fdn, id) == 2)
			snprintf(fdn == 0 ? id0 : fdn == 1 ? id1 : id2, 80, "%s", id);
	}
	cr_assert(id0[0] && strcmp(id0, id1) == 0 && strcmp(id0, id2) == 0, "fds 0-2 differ: %s %s %s", id0, id1, id2);
	cr_assert_eq(lines_with(r, "sigblocked "), 0, "blocked signals in the program:\n%s", r);
	cr_assert_eq(lines_with(r, "sigignored "), 0, "ignored signals in the program:\n%s", r);
	free(r);
	close(ctl);
	close(held);
	h_finish();
}

Test(spawn, environment_tcp, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	/* A wildcard listener: TCPLOCALIP is the address the client reached. */
	h_config("[service envt]\nlisten = tcp://0.0.0.0:%d\nexec = %s --echo\nexec_argv0 = my-server\n"
	         "exec_user = root\n",
	         port, fdcheck());
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.2", port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	cr_assert(getsockname(fd, (struct sockaddr *)&me, &ml) == 0);
	/* --echo copies its input after the report: end it at once. */
	shutdown(fd, SHUT_WR);
	static char buf[16384];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && strstr(buf, "\nend\n"), "report:\n%s", buf);

	char v[256], want[32];
	snprintf(want, sizeof(want), "%d", ntohs(me.sin_port));
	cr_assert(env_of(buf, "REMOTE_ADDR", v, sizeof(v)) && strcmp(v, "127.0.0.1") == 0, "REMOTE_ADDR:\n%s", buf);
	cr_assert(env_of(buf, "REMOTE_PORT", v, sizeof(v)) && strcmp(v, want) == 0, "REMOTE_PORT %s, client %s", v,
	          want);
	cr_assert(env_of(buf, "TCPREMOTEIP", v, sizeof(v)) && strcmp(v, "127.0.0.1") == 0, "TCPREMOTEIP:\n%s", buf);
	cr_assert(env_of(buf, "TCPREMOTEPORT", v, sizeof(v)) && strcmp(v, want) == 0, "TCPREMOTEPORT:\n%s", buf);
	snprintf(want, sizeof(want), "%d", port);
	cr_assert(env_of(buf, "TCPLOCALIP", v, sizeof(v)) && strcmp(v, "127.0.0.2") == 0, "TCPLOCALIP:\n%s", buf);
	cr_assert(env_of(buf, "TCPLOCALPORT", v, sizeof(v)) && strcmp(v, want) == 0, "TCPLOCALPORT:\n%s", buf);
	cr_assert(env_of(buf, "PROTO", v, sizeof(v)) && strcmp(v, "TCP") == 0, "PROTO:\n%s", buf);
	cr_assert(env_of(buf, "HANDOFF_SERVICE", v, sizeof(v)) && strcmp(v, "envt") == 0, "HANDOFF_SERVICE:\n%s", buf);
	cr_assert(env_of(buf, "PATH", v, sizeof(v)), "no PATH:\n%s", buf);
	/* Nothing of handoffd's own environment (the test's, here) leaks. */
	static const char *const allowed[] = {"PATH", "PROTO", "REMOTE_ADDR", "REMOTE_PORT", "TCPREMOTEIP",
	                                      "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT", "HANDOFF_SERVICE", NULL};
	only_env(buf, allowed);
	cr_assert(!env_of(buf, "HANDOFFD", v, sizeof(v)), "handoffd's environment leaked into the program");
	cr_assert(has_line(buf, "argv0 my-server"), "exec_argv0 not applied:\n%s", buf);
	cr_assert(has_line(buf, "argc 2"), "exec arguments:\n%s", buf);
	cr_assert(has_line(buf, "uid 0") && has_line(buf, "gid 0"), "ids:\n%s", buf);
	h_finish();
}

Test(spawn, environment_unix, .timeout = 15)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/env.sock", h.dir);
	h_config("[service envu]\nlisten = unix:%s\nexec = %s\nexec_user = root\n", path, fdcheck());
	h_start_daemon();
	struct h_addr a = h_addr_unix(path);
	char *r = report_over(&a);
	char v[256], want[32];
	cr_assert(env_of(r, "PROTO", v, sizeof(v)) && strcmp(v, "UNIX") == 0, "PROTO:\n%s", r);
	snprintf(want, sizeof(want), "%d", (int)getpid());
	cr_assert(env_of(r, "UNIXREMOTEPID", v, sizeof(v)) && strcmp(v, want) == 0, "UNIXREMOTEPID:\n%s", r);
	snprintf(want, sizeof(want), "%d", (int)geteuid());
	cr_assert(env_of(r, "UNIXREMOTEEUID", v, sizeof(v)) && strcmp(v, want) == 0, "UNIXREMOTEEUID:\n%s", r);
	snprintf(want, sizeof(want), "%d", (int)getegid());
	cr_assert(env_of(r, "UNIXREMOTEEGID", v, sizeof(v)) && strcmp(v, want) == 0, "UNIXREMOTEEGID:\n%s", r);
	cr_assert(!env_of(r, "REMOTE_ADDR", v, sizeof(v)), "REMOTE_ADDR for a Unix client:\n%s", r);
	static const char *const allowed[] = {"PATH", "PROTO", "UNIXREMOTEPID", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
	                                      "HANDOFF_SERVICE", NULL};
	only_env(r, allowed);
	cr_assert_eq(lines_with(r, "fd "), 3, "fds:\n%s", r);
	free(r);
	h_finish();
}

Test(spawn, exec_user_nobody, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("starting a program as another user needs root");
	struct h_cred nob = h_nobody();
	char prog[256];
	const char *p = h_exec_for(&nob, fdcheck(), prog, sizeof(prog));
	int port = h_free_port(AF_INET);
	h_config("[service nob]\nlisten = tcp://127.0.0.1:%d\nexec = %s\nexec_user = nobody\n", port, p);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char *r = report_over(&a);
	cr_assert(has_line(r, "uid 65534") && has_line(r, "euid 65534"), "not running as nobody:\n%s", r);
	cr_assert(has_line(r, "gid 65534") && has_line(r, "egid 65534"), "not running with nobody's group:\n%s", r);
	/* Supplementary groups are nobody's (initgroups), not root's. */
	const char *g = strstr(r, "\ngroups ");
	cr_assert(g, "no groups line:\n%s", r);
	char groups[256];
	snprintf(groups, sizeof(groups), "%.*s", (int)strcspn(g + 8, "\n"), g + 8);
	for (char *save = NULL, *t = strtok_r(groups, ",", &save); t; t = strtok_r(NULL, ",", &save))
		cr_assert_eq(strtol(t, NULL, 10), 65534, "supplementary group %s is not nogroup:\n%s", t, r);
	free(r);
	h_finish();
}

Test(spawn, wait_mode_udp_program, .timeout = 20)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service wudp]\nlisten = udp://127.0.0.1:%d\nexec = %s --udp-once --name w\nexec_user = root\n", port,
	         test_backend());
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[256];
	int pids[3];
	for (int i = 0; i < 3; i++) {
		char msg[16];
		snprintf(msg, sizeof(msg), "ping%d", i);
		cr_assert(h_dgram_send(u, &ua, msg, strlen(msg)) == 0);
		ssize_t n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
		cr_assert(n > 0, "datagram %d not answered (%s)", i, strerror((int)-n));
		char got[32];
		int blocking = -1;
		cr_assert(sscanf(buf, "w pid=%d got %31s blocking=%d", &pids[i], got, &blocking) == 3, "reply '%s'", buf);
		cr_assert_str_eq(got, msg);
		/* As inetd gives it: a blocking socket while the program holds it. */
		cr_assert_eq(blocking, 1, "the wait program got a non-blocking socket");
		/* One program per turn: each exits after one datagram and
		 * handoffd starts the next for the next datagram. */
		for (int j = 0; j < i; j++)
			cr_assert_neq(pids[i], pids[j], "datagrams %d and %d answered by the same pid", j, i);
	}
	close(u);
	h_finish();
}

Test(spawn, wait_mode_stream_program, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service wst]\nlisten = tcp://127.0.0.1:%d\nmode = listen\nexec = %s --listen-once --name ws\n"
	         "exec_user = root\n",
	         port, test_backend());
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int prev = 0;
	for (int i = 0; i < 2; i++) {
		char buf[512];
		ssize_t n = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
		struct h_answer ans;
		cr_assert(n > 0 && h_parse_answer(buf, &ans), "request %d: '%s' (%zd)", i, buf, n);
		cr_assert_str_eq(ans.tag, "ws");
		cr_assert_str_eq(ans.svc, "wst", "HANDOFF_SERVICE in the program's environment");
		cr_assert_neq(ans.pid, prev, "the same program answered twice");
		prev = ans.pid;
	}
	cr_assert_eq(h_status_service("wst", "accepted"), 0, "handoffd accepted on a wait-mode socket");
	h_finish();
}

Test(spawn, spawn_rate_pauses_then_serves_again, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service rated]\nlisten = tcp://127.0.0.1:%d\nexec = /bin/cat\nexec_user = root\n"
	         "spawn_rate = 3/min\nspawn_pause = 2s\n",
	         port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	for (int i = 0; i < 3; i++) {
		int fd = h_connect(&a, NULL, H_DEADLINE_MS);
		cr_assert(fd >= 0);
		echo_line(fd, "within the rate\n");
		close(fd);
	}
	/* The fourth within the minute: refused (closed without a program). */
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	char buf[128];
	int rc = h_send(fd, "one too many\n");
	ssize_t n = rc < 0 ? rc : h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n == 0 || n == -ECONNRESET || n == -EPIPE, "the 4th connection in a minute was served: %zd '%s'", n, buf);
	uint64_t paused_at = h_now_ms();
	cr_assert(h_log_wait(H_DEADLINE_MS, "rated", "spawn_rate", NULL), "no log line names spawn_rate");
	cr_assert_eq(h_status_service("rated", "refused_spawn"), 1);
	cr_assert_eq(h_status_service("rated", "spawned"), 3);

	/* During the pause a client waits (it is not refused)... */
	fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(h_send(fd, "after the pause\n") == 0);
	cr_assert(!h_readable(fd, 300), "served (or closed) during the pause");
	/* ...and is served once the pause is over. */
	n = h_read_line(fd, buf, sizeof(buf), 2000 + H_DEADLINE_MS);
	uint64_t waited = h_now_ms() - paused_at;
	cr_assert(n > 0 && strcmp(buf, "after the pause\n") == 0,
	          "after the 2 s pause the service did not serve again: %zd '%s' (after %llu ms)", n, buf,
	          (unsigned long long)waited);
	cr_assert(waited >= 1500, "served after %llu ms: no 2 s pause", (unsigned long long)waited);
	close(fd);
	h_finish();
}

/* A wait-style program that exits at once without reading leaves the
 * datagram waiting, so the socket stays readable: inetd's default rate
 * (256 starts a minute) stops the fork loop without any spawn_rate key. */
Test(spawn, failing_wait_program_is_stopped_by_the_default_rate, .timeout = 30)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service fails]\nlisten = udp://127.0.0.1:%d\nexec = /bin/false\nexec_user = root\n", port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	uint64_t t0 = h_now_ms();
	cr_assert(h_dgram_send(u, &ua, "never read", 10) == 0);
	cr_assert(h_log_wait(h_ms(20000), "fails", "spawn_rate", NULL), "no spawn_rate pause: spawned %lld",
	          h_status_service("fails", "spawned"));
	long long n = h_status_service("fails", "spawned");
	/* 256 at once, plus what the bucket refilled (256 a minute) while they
	 * ran: a few on a loaded machine, dozens under valgrind. */
	long long refill = (long long)((h_now_ms() - t0) * 256 / 60000);
	cr_assert(n >= 256 && n <= 257 + refill, "started %lld programs before the pause (%lld refilled)", n, refill);
	/* Paused: no more starts (a short look; the pause is 60 s). */
	uint64_t end = h_now_ms() + 300;
	while (h_now_ms() < end)
		h_nap();
	cr_assert_eq(h_status_service("fails", "spawned"), n, "programs started during the pause");
	cr_assert_eq(h_log_count("fails", "spawn_rate", NULL), 1, "the pause is logged once");
	close(u);
	h_finish();
}

Test(spawn, max_children_makes_clients_wait, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service one]\nlisten = tcp://127.0.0.1:%d\nexec = /bin/cat\nexec_user = root\nmax_children = 1\n",
	         port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int c1 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0);
	echo_line(c1, "first\n");
	int c2 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c2 >= 0, "the second client could not connect: %s", strerror(-c2));
	cr_assert(h_send(c2, "second\n") == 0);
	cr_assert(!h_readable(c2, 300), "a second program ran with max_children = 1 (or c2 was closed)");
	/* The first program ends: the second client gets its own. */
	close(c1);
	char buf[64];
	ssize_t n = h_read_line(c2, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, "second\n") == 0, "second client: %zd '%s'", n, buf);
	close(c2);
	h_finish();
}

Test(spawn, falls_back_to_program_without_backend, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service fb]\nlisten = tcp://127.0.0.1:%d\nexec = /bin/cat\nexec_user = root\non_no_backend = spawn\n",
	         port);
	h_start_daemon();
	struct h_proc *b = h_backend("fb", 2, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char buf[512];
	struct h_answer ans;
	ssize_t n = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.pid == b->pid,
	          "with a backend registered it serves: '%s'", buf);
	h_proc_stop(b, H_DEADLINE_MS);
	cr_assert(H_WAIT_UNTIL(h_status_service("fb", "backends") == 0, H_DEADLINE_MS));
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	echo_line(fd, "nobody registered\n");
	close(fd);
	h_finish();
}

Test(spawn, on_no_backend_reject, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rj]\nlisten = tcp://127.0.0.1:%d\non_no_backend = reject\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char buf[256];
	ssize_t n = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n == 0 || n == -ECONNRESET || n == -EPIPE, "no backend, on_no_backend = reject: %zd '%s'", n, buf);
	cr_assert_eq(h_status_service("rj", "refused_nobackend"), 1);
	struct h_proc *b = h_backend("rj", 1, NULL, NULL);
	struct h_answer ans;
	n = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.pid == b->pid, "with a backend: '%s'", buf);
	h_finish();
}
