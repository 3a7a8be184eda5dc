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
		cr_assert(fd != -ECONNREFUSED, "client %d was refused (no backend running: %s)", i,
		          i < 20 ? "yes" : "b2 up");
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
	h_nap();
	cr_assert_eq(h_proc_count(b, "socket listener"), 2, "backend output:\n%s", b->out);
	struct h_addr a2 = h_addr_tcp("127.0.0.1", p2);
	struct h_answer ans;
	ask(&a2, SOCK_STREAM, &ans);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_eq(ans.conn, 0);
	cr_assert_str_eq(ans.local, a2.text);
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
