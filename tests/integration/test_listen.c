/* Integration: mode = listen (backends get the listening socket and accept
 * themselves; handoffd keeps its copy so no client is refused while no
 * backend runs), and seqpacket listeners. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

TestSuite(listen, .init = h_init, .fini = h_fini);

/* One request over a stream or seqpacket connection; asserts one answer
 * line. */
static void ask(const struct h_addr *a, int type, struct h_answer *ans)
{
	char buf[512];
	int fd = h_connect_type(a, type, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect %s: %s", a->text, strerror(-fd));
	cr_assert(h_send(fd, "hello\n") == 0);
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "no answer from %s (%zd: %s)", a->text, n, n < 0 ? strerror((int)-n) : "EOF");
	cr_assert(h_parse_answer(buf, ans), "bad answer from %s: '%s'", a->text, buf);
}

/* ask() on 127.0.0.1:port over TCP. */
static void ask_data(int port, struct h_answer *ans)
{
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	ask(&a, SOCK_STREAM, ans);
}

Test(listen, backend_accepts_by_itself, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service ls]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("ls", 4, NULL, "--listen-mode", NULL);
	cr_assert(h_proc_wait_lines(b, "socket listener type=stream", 1, H_DEADLINE_MS), "backend output:\n%s", b->out);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	for (int i = 0; i < 5; i++) {
		struct h_answer ans;
		ask(&a, SOCK_STREAM, &ans);
		cr_assert_eq(ans.pid, b->pid);
		cr_assert_eq(ans.conn, 0, "connection %llu came from handoffd, not from the backend's own accept",
		             (unsigned long long)ans.conn);
		cr_assert_str_eq(ans.svc, "ls");
		cr_assert_str_eq(ans.local, a.text);
	}
	cr_assert_eq(h_proc_count(b, "lconn "), 5, "backend output:\n%s", b->out);
	cr_assert_eq(h_proc_count(b, "conn "), 0, "handoffd delivered connections in listen mode:\n%s", b->out);
	/* handoffd never touched a connection. */
	cr_assert_eq(h_status_service("ls", "accepted"), 0);
	cr_assert_eq(h_status_service("ls", "delivered"), 0);
	h_finish();
}

Test(listen, backend_restart_refuses_no_client, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service ls]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("ls", 64, NULL, "--listen-mode", NULL);
	cr_assert(h_proc_wait_lines(b1, "socket listener", 1, H_DEADLINE_MS));
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_answer ans;
	for (int i = 0; i < 3; i++) {
		ask(&a, SOCK_STREAM, &ans);
		cr_assert_eq(ans.pid, b1->pid);
	}

	/* b1 has nothing in flight now. Freeze it, so what follows queues in
	 * the backlog rather than in b1's hands, then kill it and start b2,
	 * with clients connecting all along. */
	h_proc_kill(b1, SIGSTOP);
	enum { N = 30 };
	struct h_clients cs = {.n = N, .c = calloc(N, sizeof(struct h_client))};
	cr_assert(cs.c);
	struct h_proc *b2 = NULL;
	for (int i = 0; i < N; i++) {
		if (i == 10) {
			h_proc_kill(b1, SIGKILL);
			cr_assert(h_proc_wait_exit(b1, H_DEADLINE_MS) != -1);
		}
		if (i == 20)
			b2 = h_backend("ls", 64, NULL, "--listen-mode", NULL);
		int fd = h_connect(&a, NULL, H_DEADLINE_MS);
		cs.c[i].fd = fd < 0 ? -1 : fd;
		cs.c[i].err = fd < 0 ? fd : 0;
		cr_assert(fd != -ECONNREFUSED, "client %d was refused (%s)", i,
		          i < 10 ? "b1 frozen" : i < 20 ? "no backend running" : "b2 registered");
		cr_assert(fd >= 0, "client %d: connect: %s", i, strerror(-fd));
		cr_assert(h_send(fd, "hello\n") == 0);
		cs.c[i].sent = true;
	}
	int done = h_clients_run(&cs, H_DEADLINE_MS);
	for (int i = 0; i < N; i++) {
		struct h_client *c = &cs.c[i];
		cr_assert(c->err == 0, "client %d: %s", i, strerror(-c->err));
		cr_assert(h_parse_answer(c->buf, &ans), "client %d: no answer ('%s'); %d of %d done", i, c->buf, done, N);
		cr_assert_eq(ans.pid, b2->pid, "client %d answered by pid %d", i, ans.pid);
	}
	h_clients_close(&cs);
	cr_assert_eq(h_status_service("ls", "accepted"), 0, "handoffd accepted connections in listen mode");
	h_finish();
}

Test(listen, two_backends_share_the_listener, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service ls]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("ls", 8, NULL, "--listen-mode", NULL);
	struct h_proc *b2 = h_backend("ls", 8, NULL, "--listen-mode", NULL);
	cr_assert(h_proc_wait_lines(b1, "socket listener", 1, H_DEADLINE_MS));
	cr_assert(h_proc_wait_lines(b2, "socket listener", 1, H_DEADLINE_MS));
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	/* Whoever wakes first takes a connection; with enough of them both
	 * serve some. Each one is answered exactly once. */
	int n1 = 0, n2 = 0, total = 0;
	uint64_t end = h_now_ms() + 8000;
	while ((n1 == 0 || n2 == 0) && h_now_ms() < end) {
		struct h_clients cs;
		h_clients_open(&cs, &a, 16);
		cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), 16);
		for (int i = 0; i < cs.n; i++) {
			struct h_answer ans;
			cr_assert(h_parse_answer(cs.c[i].buf, &ans), "client %d: '%s'", i, cs.c[i].buf);
			n1 += ans.pid == b1->pid;
			n2 += ans.pid == b2->pid;
			total++;
		}
		h_clients_close(&cs);
	}
	cr_assert_eq(n1 + n2, total);
	cr_assert(n1 > 0 && n2 > 0, "b1 served %d, b2 %d of %d", n1, n2, total);
	h_finish();
}

Test(listen, reload_adds_a_listener, .timeout = 15)
{
	int p1 = h_free_port(AF_INET), p2 = h_free_port(AF_INET);
	h_config("[service ls]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", p1);
	h_start_daemon();
	struct h_proc *b = h_backend("ls", 4, NULL, "--listen-mode", NULL);
	cr_assert(h_proc_wait_lines(b, "socket listener", 1, H_DEADLINE_MS));
	h_config("[service ls]\nlisten = tcp://127.0.0.1:%d, tcp://127.0.0.1:%d\nmode = listen\n", p1, p2);
	h_proc_kill(h.daemon, SIGHUP);
	/* The registered backend gets the new socket, and only that one. */
	cr_assert(h_proc_wait_lines(b, "socket listener", 2, H_DEADLINE_MS), "no second socket after reload:\n%s",
	          b->out);
	struct h_addr a2 = h_addr_tcp("127.0.0.1", p2);
	char want[160];
	snprintf(want, sizeof(want), "local=%s\n", a2.text);
	cr_assert(strstr(b->out, want), "the new socket is not %s:\n%s", a2.text, b->out);
	struct h_answer ans;
	ask(&a2, SOCK_STREAM, &ans);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_eq(ans.conn, 0);
	cr_assert_str_eq(ans.local, a2.text);
	/* By now a duplicate of the old socket would have come before it. */
	cr_assert_eq(h_proc_count(b, "socket listener"), 2, "backend output:\n%s", b->out);
	h_finish();
}

Test(listen, seqpacket_accept_mode, .timeout = 15)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/sp.sock", h.dir);
	h_config("[service sp]\nlisten = unix-seqpacket:%s\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("sp", 2, NULL, NULL);
	struct h_addr a = h_addr_unix(path);
	struct h_answer ans;
	ask(&a, SOCK_SEQPACKET, &ans);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert(ans.conn > 0, "in accept mode handoffd delivers the connection");
	cr_assert(ans.has_cred, "a Unix seqpacket connection carries the client's credentials");
	cr_assert_eq(ans.cpid, (long)getpid());
	char line[160];
	cr_assert(h_proc_line(b, "conn ", line, sizeof(line)));
	cr_assert(strstr(line, " type=seqpacket"), "the backend's connection is not SOCK_SEQPACKET: '%s'", line);
	cr_assert(!strstr(line, "socktype-mismatch"), "handoff_conn.socktype disagrees with the kernel: '%s'", line);
	cr_assert_eq(h_status_service("sp", "delivered"), 1);
	h_finish();
}

Test(listen, seqpacket_listen_mode, .timeout = 15)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/spl.sock", h.dir);
	h_config("[service spl]\nlisten = unix-seqpacket:%s\nmode = listen\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("spl", 2, NULL, "--listen-mode", NULL);
	cr_assert(h_proc_wait_lines(b, "socket listener type=seqpacket", 1, H_DEADLINE_MS), "backend output:\n%s",
	          b->out);
	struct h_addr a = h_addr_unix(path);
	struct h_answer ans;
	ask(&a, SOCK_SEQPACKET, &ans);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_eq(ans.conn, 0);
	cr_assert(ans.has_cred);
	char line[160];
	cr_assert(h_proc_line(b, "lconn ", line, sizeof(line)));
	cr_assert(strstr(line, " type=seqpacket"), "'%s'", line);
	cr_assert_eq(h_status_service("spl", "accepted"), 0);
	h_finish();
}

/* ---- socket options ---- */

/* The value of "key=" in line, or -2 if absent. */
static long opt_of(const char *line, const char *key)
{
	char k[40];
	snprintf(k, sizeof(k), " %s=", key);
	const char *p = strstr(line, k);
	return p ? strtol(p + strlen(k), NULL, 10) : -2;
}

Test(listen, tcp_socket_options, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("bind_device needs root");
	int port = h_free_port(AF_INET);
	/* mode = listen: the backend gets the listening socket itself, so it
	 * can see every option handoffd set on it. */
	h_config("[service so]\nlisten = tcp://127.0.0.1:%d\nmode = listen\nreuseport = yes\nnodelay = yes\n"
	         "keepalive = yes\ndefer_accept = 5s\nreceive_buffer = 64K\nsend_buffer = 96K\nbind_device = lo\n",
	         port);
	h_start_daemon();
	struct h_proc *b = h_backend("so", 4, NULL, "--listen-mode", "--sockopts", NULL);
	cr_assert(h_proc_wait_lines(b, "sockopt listener", 1, H_DEADLINE_MS), "backend:\n%s", b->out);
	char line[300];
	cr_assert(h_proc_line(b, "sockopt listener", line, sizeof(line)));
	cr_assert_eq(opt_of(line, "reuseport"), 1, "%s", line);
	cr_assert_eq(opt_of(line, "nodelay"), 1, "%s", line);
	cr_assert_eq(opt_of(line, "keepalive"), 1, "%s", line);
	cr_assert(opt_of(line, "defer_accept") > 0, "%s", line);
	/* The kernel doubles what was asked for (and caps it at rmem_max/wmem_max). */
	cr_assert(opt_of(line, "rcvbuf") >= 65536, "%s", line);
	cr_assert(opt_of(line, "sndbuf") >= 96 * 1024, "%s", line);
	cr_assert(strstr(line, " device=lo"), "%s", line);

	/* Accepted connections inherit nodelay and keepalive. */
	struct h_answer ans;
	ask_data(port, &ans);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert(h_proc_line(b, "sockopt lconn", line, sizeof(line)), "backend:\n%s", b->out);
	cr_assert_eq(opt_of(line, "nodelay"), 1, "%s", line);
	cr_assert_eq(opt_of(line, "keepalive"), 1, "%s", line);

	/* reuseport: another socket of the same uid may bind the same port. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	int one = 1;
	cr_assert(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert(bind(fd, (struct sockaddr *)&a.ss, a.len) == 0, "bind beside a reuseport listener: %s",
	          strerror(errno));
	close(fd);
	h_finish();
}

Test(listen, accept_mode_connections_inherit_options, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service so]\nlisten = tcp://127.0.0.1:%d\nnodelay = yes\nkeepalive = yes\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("so", 4, NULL, "--sockopts", NULL);
	struct h_answer ans;
	ask_data(port, &ans);
	cr_assert_eq(ans.pid, b->pid);
	char line[300];
	cr_assert(h_proc_line(b, "sockopt conn", line, sizeof(line)), "backend:\n%s", b->out);
	cr_assert_eq(opt_of(line, "nodelay"), 1, "%s", line);
	cr_assert_eq(opt_of(line, "keepalive"), 1, "%s", line);
	h_finish();
}

Test(listen, ipv6only, .timeout = 15)
{
	if (!h_have_ipv6())
		H_SKIP("IPv6 loopback (::1) is not available here");
	int port = h_free_port(AF_INET6);
	h_config("[service v6]\nlisten = tcp://[::]:%d\nipv6only = yes\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("v6", 4, NULL, NULL);
	struct h_addr a6 = h_addr_tcp("::1", port), a4 = h_addr_tcp("127.0.0.1", port);
	struct h_answer ans;
	ask(&a6, SOCK_STREAM, &ans);
	cr_assert_eq(ans.pid, b->pid);
	int fd = h_connect(&a4, NULL, H_DEADLINE_MS);
	if (fd >= 0)
		close(fd);
	cr_assert_eq(fd, -ECONNREFUSED, "an IPv4 client reached an ipv6only listener (%d)", fd);
	h_finish();
}

Test(listen, freebind, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("needs root (IP_FREEBIND is not needed otherwise, but the negative case must not depend on "
		       "ip_nonlocal_bind)");
	FILE *f = fopen("/proc/sys/net/ipv4/ip_nonlocal_bind", "re");
	int nonlocal = 0;
	if (f) {
		if (fscanf(f, "%d", &nonlocal) != 1)
			nonlocal = 0;
		fclose(f);
	}
	if (nonlocal)
		H_SKIP("net.ipv4.ip_nonlocal_bind is on: every bind is free");
	int port = h_free_port(AF_INET);
	/* 192.0.2.0/24 (TEST-NET-1) is on no interface here. */
	h_config("[service fb]\nlisten = tcp://192.0.2.77:%d\n", port);
	char *out = NULL;
	char *argv[] = {(char *)getenv("HANDOFFD"), (char *)"-f", h.conf, NULL};
	int rc = h_run(NULL, &out, H_DEADLINE_MS, argv);
	cr_assert(rc != 0 && rc != -1, "handoffd bound a foreign address without freebind (exit %d)", rc);
	free(out);
	h_config("[service fb]\nlisten = tcp://192.0.2.77:%d\nfreebind = yes\n", port);
	h_start_daemon();
	cr_assert(h_log_count("192.0.2.77", NULL) > 0, "no listener on 192.0.2.77");
	h_finish();
}
