/* Integration: handoffd sends the DELIVERs of one loop turn in one
 * sendmmsg, and libhandoff with handoff_set_batch() takes several waiting
 * connections per acknowledgement. Neither may lose, double or stall a
 * connection, with drains and backend exits in the middle. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

TestSuite(batch, .init = h_init, .fini = h_fini);

/* Every client got exactly one answer; no connection id twice. Returns how
 * many answers came from pid. */
static int exactly_once(struct h_clients *cs, pid_t pid)
{
	int from = 0;
	for (int i = 0; i < cs->n; i++) {
		struct h_answer a, b;
		cr_assert(cs->c[i].err == 0 && cs->c[i].eof, "client %d: err %d eof %d '%s'", i, cs->c[i].err,
		          cs->c[i].eof, cs->c[i].buf);
		cr_assert(h_parse_answer(cs->c[i].buf, &a), "client %d: '%s'", i, cs->c[i].buf);
		from += a.pid == pid;
		for (int j = 0; j < i; j++) {
			cr_assert(h_parse_answer(cs->c[j].buf, &b));
			cr_assert(a.conn != b.conn, "clients %d and %d got connection %llu", j, i,
			          (unsigned long long)a.conn);
		}
	}
	return from;
}

Test(batch, burst_is_served_exactly_once, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service bt]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("bt", 16, NULL, "--batch", "8", NULL);
	h_backend("bt", 16, NULL, "--batch", "8", "--defer", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 60);
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), 60);
	int from1 = exactly_once(&cs, b1->pid);
	cr_assert(from1 > 0 && from1 < 60, "one backend served everything (%d of 60)", from1);
	h_clients_close(&cs);
	h_finish();
}

Test(batch, drain_after_a_batch_loses_nothing, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service bd]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	/* Holds its first 6 connections unanswered, taken in batches. */
	struct h_proc *old = h_backend("bd", 8, NULL, "--batch", "4", "--hold", "6", "--drain-on-sigterm", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients held;
	h_clients_open(&held, &a, 6);
	h_clients_run(&held, 0);
	cr_assert(h_proc_wait_lines(old, "held ", 6, H_DEADLINE_MS), "%s", old->out);
	struct h_proc *fresh = h_backend("bd", 8, NULL, NULL);

	h_proc_kill(old, SIGTERM);
	cr_assert(h_proc_wait_lines(old, "drained", 1, H_DEADLINE_MS), "%s", old->out);
	struct h_clients more;
	h_clients_open(&more, &a, 10);
	cr_assert_eq(h_clients_run(&more, H_DEADLINE_MS), 10);
	cr_assert_eq(exactly_once(&more, fresh->pid), 10, "a drained backend got new connections");

	/* The held ones are still the old backend's; release them. */
	h_proc_kill(old, SIGUSR1);
	cr_assert_eq(h_clients_run(&held, H_DEADLINE_MS), 6);
	cr_assert_eq(exactly_once(&held, old->pid), 6);
	int st = h_proc_wait_exit(old, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "drained backend status 0x%x", st);
	h_clients_close(&held);
	h_clients_close(&more);
	h_finish();
}

Test(batch, exit_with_batched_deliveries_unread, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service bx]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	/* Answers 3, then exits with whatever handoffd sent after them unread:
	 * those were never acknowledged and must reach the second backend. */
	struct h_proc *quitter = h_backend("bx", 32, NULL, "--exit-after", "3", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 30);
	h_clients_run(&cs, 0);
	cr_assert(h_proc_wait_exit(quitter, H_DEADLINE_MS) != -1);
	struct h_proc *rest = h_backend("bx", 32, NULL, "--batch", "16", NULL);
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), 30);
	int by_rest = exactly_once(&cs, rest->pid);
	cr_assert_eq(by_rest, 27, "%d of 27 went to the second backend", by_rest);
	h_clients_close(&cs);
	h_finish();
}
