/* Integration: connections reach backends, with their metadata, under every
 * listener kind and balance mode, within capacity, and wait (never fail)
 * while no backend has room. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(delivery, .init = h_init, .fini = h_fini);

/* "127.0.0.1:5000" / "[::1]:5000" for our end of a TCP connection. */
static void own_addr(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	cr_assert(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%d", ip, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%d", ip, ntohs(s4->sin_port));
	} else {
		snprintf(buf, size, "unix");
	}
}

/* One request; asserts it is answered with exactly one line. Our own
 * address goes to me (if not NULL). */
static void ask(const struct h_addr *a, struct h_answer *ans, char *me, size_t mesize)
{
	char buf[512];
	int fd = h_connect(a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect %s: %s", a->text, strerror(-fd));
	if (me)
		own_addr(fd, me, mesize);
	cr_assert(h_send(fd, "hello\n") == 0);
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "no answer from %s (%zd: %s)", a->text, n, n < 0 ? strerror((int)-n) : "EOF");
	cr_assert(h_parse_answer(buf, ans), "bad answer from %s: '%s'", a->text, buf);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

Test(delivery, tcp_v4, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("web", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_answer ans;
	char me[128];
	ask(&a, &ans, me, sizeof(me));
	cr_assert_str_eq(ans.tag, "b1");
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "web");
	cr_assert_str_eq(ans.peer, me, "peer address: backend saw %s, client is %s", ans.peer, me);
	cr_assert_str_eq(ans.local, a.text, "listener address: backend saw %s, expected %s", ans.local, a.text);
	cr_assert(!ans.has_cred, "TCP connections carry no credentials");
	cr_assert(ans.conn > 0);
	h_finish();
}

Test(delivery, tcp_v6, .timeout = 15)
{
	if (!h_have_ipv6())
		H_SKIP("IPv6 loopback (::1) is not available here");
	int port = h_free_port(AF_INET6);
	h_config("[service web6]\nlisten = tcp://[::1]:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("web6", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("::1", port);
	struct h_answer ans;
	char me[128];
	ask(&a, &ans, me, sizeof(me));
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "web6");
	cr_assert_str_eq(ans.peer, me);
	cr_assert_str_eq(ans.local, a.text);
	cr_assert(!ans.has_cred);
	h_finish();
}

Test(delivery, tcp_dual_stack, .timeout = 15)
{
	if (!h_have_ipv6())
		H_SKIP("IPv6 loopback (::1) is not available here");
	int port = h_free_port(AF_INET6);
	h_config("[service any]\nlisten = tcp://*:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("any", 4, NULL, NULL);
	char portsfx[16], me[128];
	snprintf(portsfx, sizeof(portsfx), ":%d", port);

	struct h_addr a4 = h_addr_tcp("127.0.0.1", port);
	struct h_answer ans;
	ask(&a4, &ans, me, sizeof(me));
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "any");
	/* One AF_INET6 socket takes IPv4 too: addresses may show as ::ffff:127.0.0.1. */
	cr_assert(strstr(ans.peer, "127.0.0.1") && ends_with(ans.peer, strrchr(me, ':')),
	          "peer %s, client %s", ans.peer, me);
	/* local is the listener's address ([::]:PORT), or the address the
	 * client reached; either names the port. */
	char wild[32];
	snprintf(wild, sizeof(wild), "[::]:%d", port);
	cr_assert(strcmp(ans.local, wild) == 0 || (strstr(ans.local, "127.0.0.1") && ends_with(ans.local, portsfx)),
	          "local %s, port %d", ans.local, port);

	struct h_addr a6 = h_addr_tcp("::1", port);
	ask(&a6, &ans, me, sizeof(me));
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.peer, me);
	cr_assert(strcmp(ans.local, wild) == 0 || strcmp(ans.local, a6.text) == 0, "local %s, port %d", ans.local,
	          port);
	h_finish();
}

Test(delivery, unix_path_with_credentials, .timeout = 15)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/web.sock", h.dir);
	h_config("[service local]\nlisten = unix:%s\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("local", 2, NULL, NULL);
	struct h_addr a = h_addr_unix(path);
	struct h_answer ans;
	ask(&a, &ans, NULL, 0);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "local");
	cr_assert_str_eq(ans.local, a.text);
	cr_assert(strcmp(ans.peer, "-") == 0 || strcmp(ans.peer, "unix:(unnamed)") == 0, "peer %s", ans.peer);
	cr_assert(ans.has_cred, "a Unix listener must pass the client's credentials");
	cr_assert_eq(ans.cpid, (long)getpid(), "cred pid %ld, the client is %d", ans.cpid, (int)getpid());
	cr_assert_eq(ans.cuid, (long)getuid());
	cr_assert_eq(ans.cgid, (long)getgid());
	h_finish();
}

Test(delivery, unix_abstract, .timeout = 15)
{
	char name[64];
	snprintf(name, sizeof(name), "@handoffd-test-%d-%s", (int)getpid(), strrchr(h.dir, '-') + 1);
	h_config("[service abs]\nlisten = unix:%s\n", name);
	h_start_daemon();
	struct h_proc *b = h_backend("abs", 2, NULL, NULL);
	struct h_addr a = h_addr_unix(name);
	struct h_answer ans;
	ask(&a, &ans, NULL, 0);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "abs");
	cr_assert_str_eq(ans.local, a.text);
	cr_assert(ans.has_cred);
	cr_assert_eq(ans.cpid, (long)getpid());
	cr_assert_eq(ans.cuid, (long)getuid());
	cr_assert_eq(ans.cgid, (long)getgid());
	h_finish();
}

Test(delivery, round_robin_two_backends, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rr]\nlisten = tcp://127.0.0.1:%d\nbalance = round-robin\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("rr", 4, NULL, NULL);
	struct h_proc *b2 = h_backend("rr", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int n1 = 0, n2 = 0;
	char prev[32] = "";
	for (int i = 0; i < 10; i++) {
		struct h_answer ans;
		ask(&a, &ans, NULL, 0);
		if (ans.pid == b1->pid)
			n1++;
		else if (ans.pid == b2->pid)
			n2++;
		else
			cr_assert_fail("answer from an unknown pid %d", ans.pid);
		cr_assert_str_neq(ans.tag, prev, "request %d went to %s again", i, ans.tag);
		snprintf(prev, sizeof(prev), "%s", ans.tag);
	}
	cr_assert(n1 == 5 && n2 == 5, "split %d/%d, expected 5/5", n1, n2);
	h_finish();
}

/* The inflight=K values a backend printed never exceed max. */
static int max_inflight(struct h_proc *p)
{
	h_proc_pump(p);
	int max = 0;
	for (const char *s = strstr(p->out, "inflight="); s; s = strstr(s + 1, "inflight=")) {
		int k = atoi(s + 9);
		if (k > max)
			max = k;
	}
	return max;
}

Test(delivery, capacity_is_respected, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service cap]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("cap", 2, NULL, "--hold", "2", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char line[128];
	cr_assert(h_proc_line(b, "registered ", line, sizeof(line)));
	cr_assert(ends_with(line, " 2"), "granted capacity: %s", line);

	int c1 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0);
	cr_assert(h_send(c1, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(b, "held ", 1, H_DEADLINE_MS));
	int c2 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c2 >= 0);
	cr_assert(h_send(c2, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(b, "held ", 2, H_DEADLINE_MS));

	/* The backend is full: the third client connects (kernel backlog)
	 * but must not be handed over while two are in flight. */
	int c3 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c3 >= 0, "the third client could not even connect: %s", strerror(-c3));
	cr_assert(h_send(c3, "hello\n") == 0);
	cr_assert(!h_readable(c3, 300), "the third client was answered beyond the backend's capacity");
	cr_assert_eq(h_proc_count(b, "conn "), 2, "backend received %d connections with capacity 2:\n%s",
	             h_proc_count(b, "conn "), b->out);

	/* Release one: the first is answered, then the third is served. */
	char buf[512];
	struct h_answer ans;
	cr_assert(h_send(c1, "release\n") == 0);
	cr_assert(h_read_all(c1, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert(h_parse_answer(buf, &ans), "c1: '%s'", buf);
	cr_assert(h_read_all(c3, buf, sizeof(buf), H_DEADLINE_MS) > 0, "the third client was never served");
	cr_assert(h_parse_answer(buf, &ans), "c3: '%s'", buf);
	cr_assert(h_send(c2, "release\n") == 0);
	cr_assert(h_read_all(c2, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert(h_parse_answer(buf, &ans), "c2: '%s'", buf);
	close(c1);
	close(c2);
	close(c3);
	cr_assert_eq(h_proc_count(b, "conn "), 3);
	cr_assert(max_inflight(b) <= 2, "backend had %d in flight with capacity 2", max_inflight(b));
	h_finish();
}

Test(delivery, deferred_done_frees_capacity, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service dd]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	/* Capacity 1 and handoff_done(HANDOFF_DEFER): each next connection
	 * needs the deferred record, sent by the next handoff_accept(). */
	struct h_proc *b = h_backend("dd", 1, NULL, "--defer", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	for (int i = 0; i < 8; i++) {
		struct h_answer ans;
		ask(&a, &ans, NULL, 0);
		cr_assert_eq(ans.pid, b->pid);
	}
	cr_assert(max_inflight(b) <= 1);
	h_finish();
}

Test(delivery, least_loaded, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service ll]\nlisten = tcp://127.0.0.1:%d\nbalance = least-loaded\n", port);
	h_start_daemon();
	struct h_proc *busy = h_backend("ll", 4, NULL, "--hold", "2", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int held[2];
	for (int i = 0; i < 2; i++) {
		held[i] = h_connect(&a, NULL, H_DEADLINE_MS);
		cr_assert(held[i] >= 0);
		cr_assert(h_send(held[i], "hello\n") == 0);
		cr_assert(h_proc_wait_lines(busy, "held ", i + 1, H_DEADLINE_MS));
	}
	struct h_proc *idle = h_backend("ll", 4, NULL, NULL);
	for (int i = 0; i < 6; i++) {
		struct h_answer ans;
		ask(&a, &ans, NULL, 0);
		cr_assert_eq(ans.pid, idle->pid, "request %d went to the loaded backend (%s)", i, ans.tag);
	}
	char buf[512];
	struct h_answer ans;
	for (int i = 0; i < 2; i++) {
		cr_assert(h_send(held[i], "release\n") == 0);
		cr_assert(h_read_all(held[i], buf, sizeof(buf), H_DEADLINE_MS) > 0);
		cr_assert(h_parse_answer(buf, &ans));
		cr_assert_eq(ans.pid, busy->pid);
		close(held[i]);
	}
	h_finish();
}

Test(delivery, source_hash_sticks, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	/* Clients bind 127.0.0.1..16 as their source: all reach 127.0.0.1. */
	h_config("[service sh]\nlisten = tcp://127.0.0.1:%d\nbalance = source-hash\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("sh", 8, NULL, NULL);
	struct h_proc *b2 = h_backend("sh", 8, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int used1 = 0, used2 = 0;
	for (int ip = 1; ip <= 16; ip++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", ip);
		pid_t first = 0;
		for (int k = 0; k < 3; k++) {
			char buf[512];
			struct h_answer ans;
			ssize_t n = h_request(&a, src, buf, sizeof(buf), H_DEADLINE_MS);
			cr_assert(n > 0, "request from %s: %zd", src, n);
			cr_assert(h_parse_answer(buf, &ans), "'%s'", buf);
			cr_assert(strncmp(ans.peer, src, strlen(src)) == 0 && ans.peer[strlen(src)] == ':',
			          "peer %s, expected %s", ans.peer, src);
			if (k == 0)
				first = ans.pid;
			cr_assert_eq(ans.pid, first, "client %s moved from pid %d to %d", src, (int)first, ans.pid);
		}
		if (first == b1->pid)
			used1++;
		else if (first == b2->pid)
			used2++;
	}
	cr_assert_eq(used1 + used2, 16);
	cr_assert(used1 > 0 && used2 > 0, "16 source addresses all hashed to one backend (%d/%d)", used1, used2);
	h_finish();
}

Test(delivery, clients_wait_for_a_backend, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service late]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 5);
	for (int i = 0; i < cs.n; i++)
		cr_assert_eq(cs.c[i].err, 0, "client %d could not connect: %s", i, strerror(-cs.c[i].err));
	h_clients_run(&cs, 300);
	for (int i = 0; i < cs.n; i++)
		cr_assert(!cs.c[i].eof && cs.c[i].len == 0 && cs.c[i].err == 0,
		          "client %d got an answer or EOF without any backend (err %d, '%s')", i, cs.c[i].err,
		          cs.c[i].buf);

	struct h_proc *b = h_backend("late", 2, NULL, NULL);
	int eofs = h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(eofs, 5, "only %d of 5 waiting clients were served", eofs);
	for (int i = 0; i < cs.n; i++) {
		struct h_answer ans;
		cr_assert(h_parse_answer(cs.c[i].buf, &ans), "client %d: '%s'", i, cs.c[i].buf);
		cr_assert_eq(ans.pid, b->pid);
	}
	h_clients_close(&cs);
	h_finish();
}

Test(delivery, drain_moves_new_connections, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service dr]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *old = h_backend("dr", 4, NULL, "--hold", "1", "--drain-on-sigterm", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int c1 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0);
	cr_assert(h_send(c1, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(old, "held ", 1, H_DEADLINE_MS));
	struct h_proc *fresh = h_backend("dr", 4, NULL, NULL);

	h_proc_kill(old, SIGTERM);
	cr_assert(h_proc_wait_lines(old, "draining", 1, H_DEADLINE_MS));
	cr_assert(h_proc_wait_lines(old, "drained", 1, H_DEADLINE_MS), "no DRAINED for a draining backend:\n%s",
	          old->out);
	cr_assert(!h_proc_exited(old), "the draining backend exited with a connection still open");

	for (int i = 0; i < 6; i++) {
		struct h_answer ans;
		ask(&a, &ans, NULL, 0);
		cr_assert_eq(ans.pid, fresh->pid, "request %d went to the draining backend", i);
	}
	/* The held connection is still the drained backend's to finish. */
	char buf[512];
	struct h_answer ans;
	cr_assert(h_send(c1, "release\n") == 0);
	cr_assert(h_read_all(c1, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert(h_parse_answer(buf, &ans));
	cr_assert_eq(ans.pid, old->pid);
	close(c1);
	int st = h_proc_wait_exit(old, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "drained backend status 0x%x", st);
	h_finish();
}
