/* Integration: backends that die mid-handoff lose nothing, and hostile or
 * idle control peers are dropped without disturbing anyone else. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

TestSuite(faults, .init = h_init, .fini = h_fini);

/* Every client got exactly one well-formed answer line and then EOF; no two
 * clients got the same connection. Returns how many answers came from pid. */
static int check_exactly_once(struct h_clients *cs, pid_t pid)
{
	int from_pid = 0;
	for (int i = 0; i < cs->n; i++) {
		struct h_client *c = &cs->c[i];
		struct h_answer ans;
		cr_assert(c->err == 0, "client %d: error %s", i, strerror(-c->err));
		cr_assert(c->eof, "client %d never saw EOF (got '%s')", i, c->buf);
		cr_assert(h_parse_answer(c->buf, &ans), "client %d: not exactly one answer: '%s'", i, c->buf);
		if (ans.pid == pid)
			from_pid++;
		for (int j = 0; j < i; j++) {
			struct h_answer other;
			cr_assert(h_parse_answer(cs->c[j].buf, &other));
			cr_assert(other.conn != ans.conn, "clients %d and %d both got connection %llu", j, i,
			          (unsigned long long)ans.conn);
		}
	}
	return from_pid;
}

Test(faults, sigkill_with_connections_in_flight, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service flt]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	/* Serves two, then stops acknowledging: up to 8 deliveries pile up
	 * in its socket, received by the kernel but never acknowledged. */
	struct h_proc *dying = h_backend("flt", 8, NULL, "--stall-after", "2", NULL);
	struct h_proc *good = h_backend("flt", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 50);

	/* Settled: it answered the two it accepted (those were its own, by
	 * design lost if it died with them) and the rest is served or stuck
	 * unacknowledged in its socket. */
	bool settled = H_WAIT_UNTIL((h_clients_answered(&cs) >= 42) & (h_proc_count(dying, "answered ") == 2),
	                            H_DEADLINE_MS); /* '&': keep driving the clients every round */
	cr_assert(settled, "answered %d of 50 before the kill; dying backend:\n%s", h_clients_answered(&cs),
	          dying->out);
	int before = h_clients_answered(&cs);
	cr_assert(before < 50, "the stalled backend had nothing in flight");

	h_proc_kill(dying, SIGKILL);
	int st = h_proc_wait_exit(dying, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFSIGNALED(st));

	int eofs = h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(eofs, 50, "%d of 50 clients finished; %d answered before the kill", eofs, before);
	int by_dying = check_exactly_once(&cs, dying->pid);
	cr_assert_eq(by_dying, 2, "the killed backend answered %d (it accepted 2)", by_dying);
	cr_assert_eq(h_proc_count(good, "answered "), 48);
	h_clients_close(&cs);
	h_finish();
}

Test(faults, exit_with_unacked_deliveries, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service flt]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *quitter = h_backend("flt", 8, NULL, "--exit-after", "3", NULL);
	struct h_proc *good = h_backend("flt", 2, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 30);
	int eofs = h_clients_run(&cs, H_DEADLINE_MS * 2);
	cr_assert_eq(eofs, 30, "%d of 30 clients finished", eofs);
	int st = h_proc_wait_exit(quitter, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	cr_assert_eq(check_exactly_once(&cs, quitter->pid), 3);
	cr_assert_eq(h_proc_count(good, "answered "), 27);
	h_clients_close(&cs);
	h_finish();
}

/* A backend's last messages before it exits must count even when the
 * kernel reports its exit (POLLERR: it left deliveries unread) in the same
 * wakeup. Made deterministic by stopping handoffd while the raw backend
 * acknowledges one connection and exits with another still unread. */
Test(faults, ack_sent_just_before_exit_counts, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service flt]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);

	int raw = h_raw_register("flt", 2, NULL);
	struct h_msg m;
	uint8_t buf[4200];
	int fd = -1;
	ssize_t n;

	struct h_clients cs;
	h_clients_open(&cs, &a, 2);
	h_clients_run(&cs, 0);
	n = h_recv_msg(raw, buf, sizeof(buf), &fd, H_DEADLINE_MS);
	cr_assert(n >= 16 && buf[3] == PROTO_DELIVER && fd >= 0, "expected a DELIVER with an fd (%zd bytes)", n);
	size_t alen = 0;
	const uint8_t *idp = h_msg_attr(buf, (size_t)n, PA_CONN_ID, &alen);
	cr_assert(idp && alen == 8);
	unsigned long long id = 0;
	for (int i = 7; i >= 0; i--)
		id = id << 8 | idp[i];
	/* The second delivery is queued on our socket; leave it unread. */
	cr_assert(h_readable(raw, H_DEADLINE_MS), "no second DELIVER");

	h_proc_kill(h.daemon, SIGSTOP);
	/* Serve it like test-backend does: read the request (closing with it
	 * unread would reset the connection), answer, close. */
	char line[160];
	cr_assert(h_read_line(fd, line, sizeof(line), H_DEADLINE_MS) > 0);
	snprintf(line, sizeof(line), "raw pid=%d conn=%llu svc=flt peer=- local=- cred=-\n", (int)getpid(), id);
	cr_assert(h_send(fd, line) == 0);
	close(fd);
	h_msg_begin(&m, PROTO_ACK, 0);
	h_msg_u32(&m, PA_RECEIVED, 1);
	h_msg_u32(&m, PA_DONE, 1);
	h_msg_finish(&m, 0);
	cr_assert(h_send_msg(raw, m.data, m.len, NULL, 0) == 0);
	close(raw); /* with the second DELIVER unread: handoffd's end gets ECONNRESET */
	h_proc_kill(h.daemon, SIGCONT);

	struct h_proc *good = h_backend("flt", 4, NULL, NULL);
	int eofs = h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(eofs, 2, "%d of 2 clients finished: '%s' / '%s'", eofs, cs.c[0].buf, cs.c[1].buf);
	int by_good = check_exactly_once(&cs, good->pid);
	cr_assert_eq(by_good, 1, "the acknowledged connection was delivered again");
	h_clients_close(&cs);
	h_finish();
}

/* Baseline for the daemon's own fd count, once it settles. */
static int daemon_fds(void)
{
	return h_count_fds(h.daemon->pid);
}

/* A registered backend (pid, or any if 0) still serves. */
static void still_serves(const struct h_addr *a, pid_t pid)
{
	char buf[512];
	struct h_answer ans;
	ssize_t n = h_request(a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0, "no answer after the hostile peer (%zd)", n);
	cr_assert(h_parse_answer(buf, &ans), "'%s'", buf);
	if (pid)
		cr_assert_eq(ans.pid, pid);
	cr_assert(!h_proc_exited(h.daemon), "handoffd died");
}

static struct h_proc *setup_one(struct h_addr *ret_addr, const char *extra)
{
	int port = h_free_port(AF_INET);
	h_config("%s[service flt]\nlisten = tcp://127.0.0.1:%d\n", extra, port);
	h_start_daemon();
	*ret_addr = h_addr_tcp("127.0.0.1", port);
	return h_backend("flt", 4, NULL, NULL);
}

Test(faults, random_bytes_drop_the_peer, .timeout = 15)
{
	struct h_addr a;
	struct h_proc *b = setup_one(&a, "");
	int base = daemon_fds();
	unsigned seed = 12345;
	for (int round = 0; round < 5; round++) {
		uint8_t junk[300];
		size_t len = 1 + (size_t)(rand_r(&seed) % sizeof(junk));
		for (size_t i = 0; i < len; i++)
			junk[i] = (uint8_t)rand_r(&seed);
		int fd = h_raw_control(NULL);
		cr_assert(fd >= 0);
		cr_assert(h_send_msg(fd, junk, len, NULL, 0) == 0);
		cr_assert(h_wait_eof(fd, H_DEADLINE_MS), "handoffd kept a peer that sent %zu random bytes", len);
		close(fd);
	}
	still_serves(&a, b->pid);
	cr_assert(H_WAIT_UNTIL(daemon_fds() == base, H_DEADLINE_MS), "handoffd has %d fds, had %d", daemon_fds(),
	          base);
	h_finish();
}

/* A well-formed REGISTER for service flt. */
static void good_register(struct h_msg *m)
{
	h_msg_begin(m, PROTO_REGISTER, 1);
	h_msg_str(m, PA_SERVICE, "flt");
	h_msg_u32(m, PA_CAPACITY, 1);
	h_msg_finish(m, 0);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

Test(faults, lying_headers_drop_the_peer, .timeout = 15)
{
	struct h_addr a;
	struct h_proc *b = setup_one(&a, "");
	int base = daemon_fds();
	for (int kind = 0; kind < 9; kind++) {
		struct h_msg m;
		const char *what = "";
		good_register(&m);
		switch (kind) {
		case 0:
			what = "length larger than the datagram";
			put32(m.data + 4, (uint32_t)m.len + 100);
			break;
		case 1:
			what = "length smaller than the datagram";
			put32(m.data + 4, 16);
			break;
		case 2:
			what = "attribute longer than the message";
			m.data[16 + 2] = 60; /* PA_SERVICE claims 60 bytes */
			break;
		case 3:
			what = "bad magic";
			m.data[0] = 'X';
			break;
		case 4:
			what = "unsupported version";
			m.data[2] = 99;
			break;
		case 5:
			what = "daemon-only type from a client";
			m.data[3] = PROTO_DELIVER;
			break;
		case 6:
			what = "unknown type";
			m.data[3] = 200;
			break;
		case 7:
			what = "header declares an fd that is not there";
			m.data[8] = 1;
			break;
		case 8:
			what = "duplicate attribute";
			h_msg_str(&m, PA_SERVICE, "flt");
			h_msg_finish(&m, 0);
			break;
		}
		int fd = h_raw_control(NULL);
		cr_assert(fd >= 0);
		cr_assert(h_send_msg(fd, m.data, m.len, NULL, 0) == 0);
		cr_assert(h_wait_eof(fd, H_DEADLINE_MS), "handoffd kept a peer after: %s", what);
		close(fd);
		cr_assert(!h_proc_exited(h.daemon), "handoffd died after: %s", what);
	}
	still_serves(&a, b->pid);
	cr_assert(H_WAIT_UNTIL(daemon_fds() == base, H_DEADLINE_MS), "handoffd has %d fds, had %d", daemon_fds(),
	          base);
	h_finish();
}

/* The read end of the pipe sees EOF once every copy of the write end is
 * closed: that proves handoffd did not keep the fd it was sent. */
static bool write_end_gone(int rfd, int timeout_ms)
{
	struct pollfd pf = {.fd = rfd, .events = POLLIN};
	return poll(&pf, 1, timeout_ms) == 1 && (pf.revents & POLLHUP);
}

Test(faults, fds_on_control_channel_are_refused, .timeout = 15)
{
	struct h_addr a;
	struct h_proc *b = setup_one(&a, "");
	int base = daemon_fds();
	for (int kind = 0; kind < 4; kind++) {
		const char *what = "";
		int p[2];
		cr_assert(pipe2(p, O_CLOEXEC) == 0);
		int fd = h_raw_control(NULL);
		cr_assert(fd >= 0);
		struct h_msg m;
		good_register(&m);
		switch (kind) {
		case 0:
			what = "REGISTER with an undeclared fd";
			break;
		case 1:
			what = "REGISTER declaring the fd it carries";
			h_msg_finish(&m, 1);
			break;
		case 2:
			what = "random bytes with an fd";
			memset(m.data, 0xA5, 40);
			m.len = 40;
			break;
		case 3: {
			what = "ACK with an fd from a registered backend";
			cr_assert(h_send_msg(fd, m.data, m.len, NULL, 0) == 0);
			char reply[4200];
			cr_assert(h_readable(fd, H_DEADLINE_MS));
			ssize_t n = recv(fd, reply, sizeof(reply), 0);
			cr_assert(n >= 16 && reply[3] == PROTO_REGISTERED, "raw REGISTER was not accepted (%zd bytes, type %d)",
			          n, n >= 4 ? reply[3] : -1);
			h_msg_begin(&m, PROTO_ACK, 2);
			h_msg_u32(&m, PA_RECEIVED, 0);
			h_msg_u32(&m, PA_DONE, 0);
			h_msg_finish(&m, 0);
			break;
		}
		}
		/* handoffd turns SO_PASSRIGHTS off on control connections once
		 * it has accepted them; the kernel then refuses the fd itself
		 * (EPERM). A message sent before that reaches handoffd, which
		 * must drop the peer. Either way the fd must not stay. */
		int rc = h_send_msg(fd, m.data, m.len, &p[1], 1);
		cr_assert(rc == 0 || rc == -EPERM, "%s: send failed: %s", what, strerror(-rc));
		close(p[1]);
		if (rc == 0)
			cr_assert(h_wait_eof(fd, H_DEADLINE_MS), "handoffd kept a peer that sent: %s", what);
		close(fd);
		cr_assert(write_end_gone(p[0], H_DEADLINE_MS), "handoffd kept the fd that came with: %s", what);
		close(p[0]);
	}
	still_serves(&a, b->pid);
	cr_assert(H_WAIT_UNTIL(daemon_fds() == base, H_DEADLINE_MS), "handoffd has %d fds, had %d", daemon_fds(),
	          base);
	h_finish();
}

Test(faults, idle_control_connection_times_out, .timeout = 15)
{
	struct h_addr a;
	struct h_proc *b = setup_one(&a, "handshake_timeout = 300ms\n");
	int fd = h_raw_control(NULL);
	cr_assert(fd >= 0);
	uint64_t t0 = h_now_ms();
	cr_assert(h_wait_eof(fd, H_DEADLINE_MS), "an idle control connection was never closed");
	uint64_t took = h_now_ms() - t0;
	close(fd);
	cr_assert(took >= 250, "closed after %llu ms, before the 300 ms handshake timeout",
	          (unsigned long long)took);
	/* The registered backend is older than the timeout and must stay. */
	cr_assert(!h_proc_exited(b), "the handshake timeout closed a registered backend");
	still_serves(&a, b->pid);
	h_finish();
}

Test(faults, max_control_per_uid, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("max_control_per_uid = 3\n"
	         "[service flt]\nlisten = tcp://127.0.0.1:%d\nallow_users = nobody\n",
	         port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_cred nobody = h_nobody();
	struct h_proc *first = h_backend("flt", 2, NULL, NULL);
	int base = daemon_fds();

	int raw[4];
	for (int i = 0; i < 4; i++) {
		raw[i] = h_raw_control(&nobody);
		cr_assert(raw[i] >= 0, "connect %d: %s", i, strerror(-raw[i]));
	}
	cr_assert(h_wait_eof(raw[3], H_DEADLINE_MS), "a 4th control connection of uid 65534 was kept (limit 3)");
	for (int i = 0; i < 3; i++)
		cr_assert(!h_readable(raw[i], 0), "connection %d of 3 (within the limit) was closed", i);

	/* The same uid cannot register now, and is told why... */
	struct h_proc *extra = h_backend_try("flt", 1, &nobody, NULL);
	int st = h_proc_wait_exit(extra, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "over-the-limit backend: status 0x%x, '%s'",
	          st, extra->out);
	cr_assert(strstr(extra->out, "code=-5005"), "expected HANDOFF_E_LIMIT (-5005) over the limit, got: %s",
	          extra->out);
	/* ...while another uid can. */
	struct h_proc *second = h_backend("flt", 2, NULL, NULL);
	still_serves(&a, 0);
	h_proc_stop(second, H_DEADLINE_MS);

	/* Closing them frees the slots for uid 65534 again. */
	for (int i = 0; i < 4; i++)
		close(raw[i]);
	cr_assert(H_WAIT_UNTIL(daemon_fds() == base, H_DEADLINE_MS), "handoffd has %d fds, had %d", daemon_fds(),
	          base);
	h_proc_stop(first, H_DEADLINE_MS);
	struct h_proc *later = h_backend("flt", 1, &nobody, NULL);
	still_serves(&a, later->pid);
	h_finish();
}

/* Control connections, which any local user may open, cannot use up
 * handoffd's descriptors: past the reserve kept for clients (and root),
 * unprivileged ones are refused at once, and clients are still served. */
Test(faults, control_connections_keep_a_descriptor_reserve, .timeout = 30)
{
	if (geteuid() != 0)
		H_SKIP("connecting as another uid needs root");
	if (h_valgrind())
		H_SKIP("valgrind emulates RLIMIT_NOFILE for the program it runs: handoffd does not see the prlimit");
	int port = h_free_port(AF_INET);
	h_config("max_control_per_uid = 4096\n[service flt]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_proc *b = h_backend("flt", 4, NULL, NULL);
	/* Room for 40 more descriptors beyond the reserve of 256. */
	int base = daemon_fds();
	struct rlimit rl = {.rlim_cur = (rlim_t)base + 256 + 40, .rlim_max = (rlim_t)base + 256 + 40};
	cr_assert(prlimit(h.daemon->pid, RLIMIT_NOFILE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
	struct rlimit mine;
	cr_assert(getrlimit(RLIMIT_NOFILE, &mine) == 0 && mine.rlim_cur > 200);

	struct h_cred nobody = h_nobody();
	int raw[100], kept = 0, refused = 0;
	for (int i = 0; i < 100; i++) {
		raw[i] = h_raw_control(&nobody);
		cr_assert(raw[i] >= 0, "connect %d: %s", i, strerror(-raw[i]));
	}
	for (int i = 0; i < 100; i++) {
		if (h_wait_eof(raw[i], i < 20 ? 0 : 50))
			refused++;
		else
			kept++;
	}
	cr_assert(refused >= 50 && kept >= 20 && kept <= 45, "%d kept, %d refused", kept, refused);
	cr_assert(h_log_count("file descriptors running low", NULL) >= 1);
	/* Clients are still served, and root can still register. */
	still_serves(&a, b->pid);
	struct h_proc *b2 = h_backend("flt", 4, NULL, NULL);
	h_proc_stop(b, H_DEADLINE_MS);
	still_serves(&a, b2->pid);
	for (int i = 0; i < 100; i++)
		close(raw[i]);
	h_finish();
}
