/* Integration: client access control and limits. Each rule refuses exactly
 * what it should (closed at once, counted), and the limits that slow a
 * service down make clients wait instead of refusing them. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

TestSuite(limits, .init = h_init, .fini = h_fini);

/* A request from src_ip; true if answered by pid (asserts an answer
 * line when it was answered). */
static bool served(const struct h_addr *a, const char *src_ip, int pid)
{
	char buf[512];
	ssize_t n = h_request(a, src_ip, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n != -ETIMEDOUT, "a request from %s was neither answered nor closed", src_ip ? src_ip : "127.0.0.1");
	if (n <= 0)
		return false;
	struct h_answer ans;
	cr_assert(h_parse_answer(buf, &ans), "answer '%s'", buf);
	cr_assert_eq(ans.pid, pid);
	return true;
}

/* A refused connection: closed at once, without a byte. */
static void refused(const struct h_addr *a, const char *src_ip, const char *why)
{
	char buf[512];
	uint64_t t0 = h_now_ms();
	ssize_t n = h_request(a, src_ip, buf, sizeof(buf), H_DEADLINE_MS);
	/* EOF, a reset, or EPIPE when the close came before our request. */
	cr_assert(n == 0 || n == -ECONNRESET || n == -EPIPE, "%s: a client from %s got %zd ('%s') instead of being closed", why,
	          src_ip ? src_ip : "127.0.0.1", n, buf);
	cr_assert(h_now_ms() - t0 < 2000, "%s: the refusal took %llu ms", why, (unsigned long long)(h_now_ms() - t0));
}

/* The service's refused_<reason> counter in `handoffctl --json status`. */
static void check_counter(const char *svc, const char *field, long long want)
{
	long long v = h_status_service(svc, field);
	cr_assert(v != -1, "handoffctl status shows no %s for '%s'", field, svc);
	cr_assert(v == want, "%s of '%s' is %lld, expected %lld", field, svc, v, want);
}

Test(limits, allow_and_deny_cidr, .timeout = 15)
{
	int port = h_free_port(AF_INET), port2 = h_free_port(AF_INET);
	h_config("[service acl]\nlisten = tcp://127.0.0.1:%d\nallow_from = 127.0.0.0/8\ndeny_from = 127.0.0.2/32\n"
	         "[service only1]\nlisten = tcp://127.0.0.1:%d\nallow_from = 127.0.0.1/32, ::1\n",
	         port, port2);
	h_start_daemon();
	struct h_proc *b = h_backend("acl", 8, NULL, NULL);
	struct h_proc *b2 = h_backend("only1", 8, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port), a2 = h_addr_tcp("127.0.0.1", port2);

	cr_assert(served(&a, "127.0.0.1", b->pid), "127.0.0.1 is allowed");
	cr_assert(served(&a, "127.0.0.3", b->pid), "127.0.0.3 is in 127.0.0.0/8");
	refused(&a, "127.0.0.2", "deny_from 127.0.0.2/32");
	cr_assert(served(&a, "127.0.0.1", b->pid), "refusing one client must not disturb the others");
	check_counter("acl", "refused_access", 1);
	cr_assert_eq(h_proc_count(b, "conn "), 3, "the backend saw a denied client:\n%s", b->out);

	cr_assert(served(&a2, "127.0.0.1", b2->pid));
	refused(&a2, "127.0.0.4", "not in allow_from");
	check_counter("only1", "refused_access", 1);
	cr_assert(h_log_wait(H_DEADLINE_MS, "'acl'", "127.0.0.2", NULL), "the refusal was not logged");
	h_finish();
}

Test(limits, max_per_source, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service mps]\nlisten = tcp://127.0.0.1:%d\nmax_per_source = 2\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("mps", 16, NULL, "--hold", "2", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int c1 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS), c2 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
	cr_assert(c1 >= 0 && c2 >= 0);
	cr_assert(h_send(c1, "hello\n") == 0 && h_send(c2, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(b, "held ", 2, H_DEADLINE_MS), "backend:\n%s", b->out);

	/* A third at once from the same address: refused. */
	refused(&a, "127.0.0.1", "max_per_source = 2");
	check_counter("mps", "refused_source", 1);
	/* Another address has its own count. */
	cr_assert(served(&a, "127.0.0.3", b->pid), "127.0.0.3 is another source");

	/* One of the first two ends (answered and done): room again. */
	char buf[512];
	cr_assert(h_send(c1, "release\n") == 0);
	cr_assert(h_read_all(c1, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	close(c1);
	/* handoff_done() is what frees the place; wait until handoffd has it. */
	cr_assert(H_WAIT_UNTIL(h_status_backend(b->backend_id, "inflight") == 1, H_DEADLINE_MS),
	          "backend in flight: %lld", h_status_backend(b->backend_id, "inflight"));
	cr_assert(served(&a, "127.0.0.1", b->pid), "a place under max_per_source was freed");
	close(c2);
	h_finish();
}

Test(limits, rate_makes_a_burst_wait, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service rt]\nlisten = tcp://127.0.0.1:%d\nrate = 10/s\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("rt", 64, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	enum { N = 25 };
	struct h_clients cs;
	uint64_t t0 = h_now_ms();
	h_clients_open(&cs, &a, N);
	/* The bucket holds 10: those are served at once... */
	cr_assert(H_WAIT_UNTIL(h_clients_answered(&cs) >= 10, H_DEADLINE_MS), "only %d answered",
	          h_clients_answered(&cs));
	uint64_t first = h_now_ms() - t0;
	int early = h_clients_answered(&cs);
	/* ...the rest at 10 per second (15 more: about 1.5 s), none refused. */
	cr_assert(early < N, "all %d served at once (after %llu ms): no rate limit", N, (unsigned long long)first);
	cr_assert_eq(h_clients_run(&cs, 5000), N);
	uint64_t all = h_now_ms() - t0;
	for (int i = 0; i < N; i++) {
		struct h_answer ans;
		cr_assert(cs.c[i].err == 0, "client %d: %s", i, strerror(-cs.c[i].err));
		cr_assert(h_parse_answer(cs.c[i].buf, &ans), "client %d was refused or not answered: '%s'", i,
		          cs.c[i].buf);
		cr_assert_eq(ans.pid, b->pid);
	}
	cr_assert(all >= 1000, "25 connections at rate 10/s took only %llu ms", (unsigned long long)all);
	h_clients_close(&cs);
	check_counter("rt", "refused_rate", 0);
	h_finish();
}

Test(limits, rate_per_source_refuses_the_excess, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rps]\nlisten = tcp://127.0.0.1:%d\nrate_per_source = 3/s\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("rps", 64, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	/* Five at once from 127.0.0.1: three pass, two are refused. */
	int fds[5];
	for (int i = 0; i < 5; i++) {
		fds[i] = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
		cr_assert(fds[i] >= 0);
		cr_assert(h_send(fds[i], "hello\n") == 0);
	}
	int ok = 0, closed = 0;
	for (int i = 0; i < 5; i++) {
		char buf[512];
		ssize_t n = h_read_all(fds[i], buf, sizeof(buf), H_DEADLINE_MS);
		close(fds[i]);
		cr_assert(n != -ETIMEDOUT, "client %d neither served nor closed", i);
		struct h_answer ans;
		if (n > 0) {
			cr_assert(h_parse_answer(buf, &ans) && ans.pid == b->pid, "'%s'", buf);
			ok++;
		} else {
			closed++;
		}
	}
	cr_assert(ok == 3 && closed == 2, "rate_per_source = 3/s: %d served, %d refused of a burst of 5", ok, closed);
	check_counter("rps", "refused_rate", 2);
	/* Another source is not limited by 127.0.0.1's rate. */
	cr_assert(served(&a, "127.0.0.3", b->pid), "127.0.0.3 has its own bucket");
	h_finish();
}

Test(limits, max_connections_makes_clients_wait, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service mc]\nlisten = tcp://127.0.0.1:%d\nmax_connections = 2\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("mc", 16, NULL, "--hold", "2", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int c1 = h_connect(&a, NULL, H_DEADLINE_MS), c2 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0 && c2 >= 0);
	cr_assert(h_send(c1, "hello\n") == 0 && h_send(c2, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(b, "held ", 2, H_DEADLINE_MS));
	/* The third waits in the backlog: not answered, not closed. */
	int c3 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c3 >= 0);
	cr_assert(h_send(c3, "hello\n") == 0);
	cr_assert(!h_readable(c3, 300), "the third connection was served or closed with max_connections = 2");
	cr_assert_eq(h_proc_count(b, "conn "), 2);
	/* One ends: the third is served. */
	char buf[512];
	cr_assert(h_send(c1, "release\n") == 0);
	cr_assert(h_read_all(c1, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	close(c1);
	ssize_t n = h_read_all(c3, buf, sizeof(buf), H_DEADLINE_MS);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.pid == b->pid, "third client: %zd '%s'", n, buf);
	close(c3);
	close(c2);
	check_counter("mc", "refused_source", 0);
	check_counter("mc", "refused_rate", 0);
	h_finish();
}

Test(limits, allow_client_users_and_groups, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("connecting as another uid needs root");
	char p1[128], p2[128];
	snprintf(p1, sizeof(p1), "%s/root-only.sock", h.dir);
	snprintf(p2, sizeof(p2), "%s/nogroup.sock", h.dir);
	h_config("[service ru]\nlisten = unix:%s\nsocket_mode = 0666\nallow_client_users = root\n"
	         "[service ng]\nlisten = unix:%s\nsocket_mode = 0666\nallow_client_groups = nogroup\n",
	         p1, p2);
	h_start_daemon();
	struct h_proc *b1 = h_backend("ru", 4, NULL, NULL);
	struct h_proc *b2 = h_backend("ng", 4, NULL, NULL);
	struct h_addr a1 = h_addr_unix(p1), a2 = h_addr_unix(p2);
	struct h_cred nob = h_nobody();
	char buf[512];

	/* root: allowed on ru, refused on ng. */
	cr_assert(served(&a1, NULL, b1->pid));
	refused(&a2, NULL, "root is not in nogroup");
	/* nobody: refused on ru, allowed on ng (primary group nogroup). */
	int fd = h_connect_as(&a1, &nob, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect as nobody: %s", strerror(-fd));
	int rc = h_send(fd, "hello\n");
	ssize_t n = rc < 0 ? rc : h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n == 0 || n == -ECONNRESET || n == -EPIPE, "nobody was served by a root-only service: %zd '%s'", n, buf);
	fd = h_connect_as(&a2, &nob, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(h_send(fd, "hello\n") == 0);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans), "nobody (group nogroup) was not served: %zd '%s'", n, buf);
	cr_assert_eq(ans.cuid, H_NOBODY_UID);
	cr_assert_eq(ans.pid, b2->pid);
	check_counter("ru", "refused_access", 1);
	check_counter("ng", "refused_access", 1);
	h_finish();
}

Test(limits, limits_on_a_builtin, .timeout = 15)
{
	/* Builtins are limited like any other service. */
	int port = h_free_port(AF_INET);
	h_config("[service echo]\nbuiltin = echo\nlisten = tcp://127.0.0.1:%d\ndeny_from = 127.0.0.2\n"
	         "max_per_source = 1\n",
	         port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	refused(&a, "127.0.0.2", "deny_from on a builtin");
	int c1 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
	cr_assert(c1 >= 0);
	char buf[64];
	cr_assert(h_send(c1, "one\n") == 0);
	cr_assert(h_read_line(c1, buf, sizeof(buf), H_DEADLINE_MS) > 0 && strcmp(buf, "one\n") == 0);
	refused(&a, "127.0.0.1", "max_per_source = 1 on a builtin");
	close(c1);
	/* The echo connection ended: room again (poll: the close reaches
	 * handoffd asynchronously). */
	bool again = false;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (!again && h_now_ms() < end) {
		int fd = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
		cr_assert(fd >= 0);
		h_send(fd, "two\n");
		ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
		close(fd);
		again = n > 0 && strcmp(buf, "two\n") == 0;
		if (!again)
			h_nap();
	}
	cr_assert(again, "max_per_source never freed the place of a finished echo connection");
	h_finish();
}

Test(limits, max_per_source_counts_unix_clients_by_uid, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("connecting as another uid needs root");
	char path[128];
	snprintf(path, sizeof(path), "%s/per-uid.sock", h.dir);
	h_config("[service pu]\nlisten = unix:%s\nsocket_mode = 0666\nmax_per_source = 1\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("pu", 8, NULL, "--hold", "1", NULL);
	struct h_addr a = h_addr_unix(path);
	int c1 = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(c1 >= 0);
	cr_assert(h_send(c1, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(b, "held ", 1, H_DEADLINE_MS));
	/* root again: over its limit of one. */
	refused(&a, NULL, "max_per_source = 1 for uid 0");
	/* nobody is another source. */
	struct h_cred nob = h_nobody();
	int fd = h_connect_as(&a, &nob, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(h_send(fd, "hello\n") == 0);
	char buf[512];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.cuid == H_NOBODY_UID, "nobody: %zd '%s'", n, buf);
	check_counter("pu", "refused_source", 1);
	close(c1);
	h_finish();
}

/* A backend that reports two connections done but names only one of them
 * (the protocol asks for all or none; a peer may still do it): each unit
 * of DONE still ends exactly one connection, so neither max_per_source nor
 * max_connections keeps a place for a connection that is gone, and the
 * counts do not go wrong when the backend leaves. */
Test(limits, done_naming_fewer_ids_than_it_counts, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service few]\nlisten = tcp://127.0.0.1:%d\nmax_per_source = 2\nmax_connections = 2\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int raw = h_raw_register("few", 8, NULL);
	struct h_msg m;

	int c1 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS), c2 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
	cr_assert(c1 >= 0 && c2 >= 0);
	uint64_t id1, id2;
	int f1 = h_raw_delivery(raw, &id1), f2 = h_raw_delivery(raw, &id2);
	close(f1);
	close(f2);
	uint8_t ids[8];
	for (int i = 0; i < 8; i++)
		ids[i] = (uint8_t)(id1 >> (8 * i));
	h_msg_begin(&m, PROTO_ACK, 0);
	h_msg_u32(&m, PA_RECEIVED, 2);
	h_msg_u32(&m, PA_DONE, 2);
	h_msg_bytes(&m, PA_DONE_IDS, ids, sizeof(ids));
	h_msg_finish(&m, 0);
	cr_assert(h_send_msg(raw, m.data, m.len, NULL, 0) == 0);
	cr_assert(H_WAIT_UNTIL(h_status_service("few", "live") == 0, H_DEADLINE_MS), "live: %lld",
	          h_status_service("few", "live"));
	close(c1);
	close(c2);

	/* Both places are free: two more clients from the same address reach
	 * the backend (a leftover record would refuse the second). */
	int c3 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS), c4 = h_connect(&a, "127.0.0.1", H_DEADLINE_MS);
	cr_assert(c3 >= 0 && c4 >= 0);
	uint64_t id3, id4;
	int f3 = h_raw_delivery(raw, &id3), f4 = h_raw_delivery(raw, &id4);
	check_counter("few", "refused_source", 0);
	cr_assert_eq(h_status_service("few", "live"), 2);
	/* The backend leaves with both acknowledged and not done: both places
	 * come back, no more, no fewer. */
	h_raw_ack(raw, 2, 0);
	close(raw);
	cr_assert(H_WAIT_UNTIL(h_status_service("few", "live") == 0, H_DEADLINE_MS), "live: %lld",
	          h_status_service("few", "live"));
	close(f3);
	close(f4);
	close(c3);
	close(c4);
	h_finish();
}
