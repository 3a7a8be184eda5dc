/* Integration: replacing a running handoffd with a new process (SIGUSR2,
 * `handoffctl upgrade`) refuses and loses nothing.
 *
 * - continuous client load (a child process keeping several connections in
 *   flight) through two upgrades in a row, by signal and by handoffctl: every
 *   connection answered, none refused or reset, the old handoffd exits 0,
 *   the new pid is what status says, the backends (libhandoff with
 *   handoff_set_reconnect) register again with the new process;
 * - an upgrade that cannot work (a broken configuration, a new executable
 *   that exits at once) is refused with the reason, the old handoffd keeps
 *   serving under load and no second handoffd stays behind; a good new
 *   executable installed afterwards takes over;
 * - connections waiting for a backend (in handoffd's queue and in the
 *   kernel's backlog) move to the new handoffd and are served by a backend
 *   that registers with it; so are those a stalled backend never
 *   acknowledged;
 * - the files of Unix listeners and of the control socket stay (the same
 *   sockets) when the old process exits;
 * - not an upgrade but a restart (handoffd killed, a new one started): a
 *   backend with handoff_set_reconnect() registers with the new one.
 *
 * The new handoffd is the old one's child. The test process is a child
 * subreaper, so the new one becomes the test's child when the old one exits:
 * the test waits for it and stops it by pid like any other process. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void init(void)
{
	h_init();
	h_subreaper();
}

TestSuite(upgrade, .init = init, .fini = h_fini);

enum how { BY_SIGNAL, BY_HANDOFFCTL };

/* Does handoffd's status list a registered backend with this pid? */
static bool status_has_backend(pid_t pid)
{
	char *out = NULL;
	if (h_ctl(NULL, &out, "--json", "status", NULL) != 0) {
		free(out);
		return false;
	}
	char key[48];
	snprintf(key, sizeof(key), "\"pid\":%d,\"uid\"", (int)pid);
	const char *backends = out ? strstr(out, "\"backends\":[") : NULL;
	bool found = backends && strstr(backends, key);
	free(out);
	return found;
}

/* Wait until handoffd (whichever runs now) lists exactly these backends. */
static void wait_backends(const char *svc, struct h_proc *b1, struct h_proc *b2)
{
	int want = b2 ? 2 : 1;
	bool ok = H_WAIT_UNTIL(h_status_service(svc, "backends") == want && status_has_backend(b1->pid) &&
	                           (!b2 || status_has_backend(b2->pid)),
	                       H_DEADLINE_MS);
	cr_assert(ok, "the backends did not register again with handoffd pid %d (status: %lld backends)",
	          (int)h_daemon_pid(), h_status_service(svc, "backends"));
}

static void assert_no_failure(const struct h_load_stats *s, const char *when)
{
	cr_assert(h_load_failures(s) == 0,
	          "%s: %llu connections, %llu answered, %llu refused, %llu reset/closed early, %llu timed out, %llu bad "
	          "answers, %llu other errors; last: %s",
	          when, (unsigned long long)s->started, (unsigned long long)s->answered,
	          (unsigned long long)s->refused, (unsigned long long)s->reset, (unsigned long long)s->timed_out,
	          (unsigned long long)s->bad, (unsigned long long)s->other, s->last_failure);
}

/* Wait until the load has had n more answers than in *since. */
static void wait_answers(struct h_load *load, const struct h_load_stats *since, uint64_t n)
{
	struct h_load_stats s;
	bool ok = H_WAIT_UNTIL(((s = h_load_read(load)), s.answered >= since->answered + n || h_load_failures(&s)),
	                       H_DEADLINE_MS * 2);
	assert_no_failure(&s, "client load");
	cr_assert(ok, "the load got %llu answers, not %llu more than %llu",
	          (unsigned long long)s.answered, (unsigned long long)n, (unsigned long long)since->answered);
}

/* Upgrade the running handoffd (h.daemon) and wait for the old process to
 * exit 0. Returns the new one, now h.daemon. With a load, asserts that
 * connections were being made while the upgrade went on. */
static struct h_proc *upgrade(enum how how, struct h_load *load)
{
	struct h_proc *old = h.daemon;
	pid_t oldpid = old->pid;
	struct h_load_stats before = {0}, after;
	if (load)
		before = h_load_read(load);
	long said = -1;
	if (how == BY_SIGNAL) {
		cr_assert_eq(kill(oldpid, SIGUSR2), 0);
	} else {
		char *out = NULL;
		int rc = h_ctl(NULL, &out, "upgrade", NULL);
		cr_assert_eq(rc, 0, "handoffctl upgrade exited %d: %s", rc, out);
		const char *p = strstr(out, "upgraded: the new handoffd is pid ");
		cr_assert(p, "handoffctl upgrade said: %s", out);
		said = strtol(p + strlen("upgraded: the new handoffd is pid "), NULL, 10);
		free(out);
	}
	int st = h_proc_wait_exit(old, H_DEADLINE_MS * 2);
	cr_assert(st != -1, "the old handoffd (pid %d) did not exit after the upgrade", (int)oldpid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the old handoffd (pid %d): status 0x%x", (int)oldpid, st);
	if (load) {
		after = h_load_read(load);
		cr_assert(after.started > before.started, "no client connection was made while the upgrade went on");
	}
	pid_t npid = h_daemon_pid();
	cr_assert(npid > 0 && npid != oldpid, "status after the upgrade: pid %d (the old one was %d)", (int)npid,
	          (int)oldpid);
	if (said > 0)
		cr_assert_eq(npid, said, "handoffctl upgrade said pid %ld, status says %d", said, (int)npid);
	struct h_proc *n = h_adopt_daemon(npid);
	cr_assert_eq(h_parent_of(npid), getpid(), "the new handoffd (pid %d) is not the test's child now", (int)npid);
	char who[32];
	snprintf(who, sizeof(who), "handoffd[%d]", (int)npid);
	cr_assert(h_log_wait(H_DEADLINE_MS, who, "upgrade: took over from the old handoffd", NULL));
	snprintf(who, sizeof(who), "handoffd[%d]", (int)oldpid);
	cr_assert_eq(h_log_count(who, "no backend acknowledged", NULL), 0, "the old handoffd dropped connections");
	return n;
}

/* Two upgrades in a row under continuous load, with two backends that ride
 * through them. */
static void upgrades_under_load(enum how how)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_proc *b2 = h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_load load;
	h_load_start(&load, &a, 6, H_DEADLINE_MS);
	struct h_load_stats mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);

	for (int round = 0; round < 2; round++) {
		mark = h_load_read(&load);
		upgrade(how, &load);
		wait_backends("web", b1, b2);
		wait_answers(&load, &mark, 100);
	}
	mark.answered = 0;
	wait_answers(&load, &mark, 300);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "after two upgrades");
	cr_assert_eq(s.answered, s.started, "%llu connections made, %llu answered", (unsigned long long)s.started,
	             (unsigned long long)s.answered);
	cr_assert(s.answered >= 300);
	/* The backends never lost their registration for good, and both served. */
	cr_assert(!h_proc_exited(b1) && !h_proc_exited(b2), "a backend exited: 0x%x 0x%x", b1->status, b2->status);
	cr_assert_eq(h_proc_count(b1, "lost"), 0, "%s", b1->out);
	cr_assert_eq(h_proc_count(b2, "lost"), 0, "%s", b2->out);
	cr_assert(h_proc_count(b1, "answered ") > 0 && h_proc_count(b2, "answered ") > 0);
	cr_assert_eq(h_proc_count(b1, "answered ") + h_proc_count(b2, "answered "), (int)s.answered);
	h_finish();
}

Test(upgrade, sigusr2_twice_under_load, .timeout = 60)
{
	upgrades_under_load(BY_SIGNAL);
}

Test(upgrade, handoffctl_upgrade_twice_under_load, .timeout = 60)
{
	upgrades_under_load(BY_HANDOFFCTL);
}

Test(upgrade, broken_config_is_refused_and_the_old_one_serves_on, .timeout = 60)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_load load;
	h_load_start(&load, &a, 4, H_DEADLINE_MS);
	struct h_load_stats mark = h_load_read(&load);
	wait_answers(&load, &mark, 20);

	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nbalance = sideways\n", port);
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "upgrade", NULL);
	cr_assert_eq(rc, 1, "handoffctl upgrade with a broken configuration: exit %d: %s", rc, out);
	cr_assert(strstr(out, "balance") && strstr(out, "sideways") && strstr(out, "handoffd.conf"),
	          "the error does not name the problem: %s", out);
	free(out);
	cr_assert(h_log_wait(H_DEADLINE_MS, "upgrade refused", "balance", NULL));
	/* No new process was started, or it is gone. */
	cr_assert_eq(h_log_count("upgrade: started", NULL), 0);
	cr_assert_eq(h_children(d->pid, NULL, NULL, 0), 0, "the old handoffd has a child after a refused upgrade");
	cr_assert_eq(h_children(getpid(), "handoffd", NULL, 0), 1, "a second handoffd is running");
	cr_assert(!h_proc_exited(d), "the old handoffd exited (status 0x%x)", d->status);
	cr_assert_eq(h_daemon_pid(), d->pid);
	mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);

	/* The configuration fixed: the upgrade goes through. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	upgrade(BY_HANDOFFCTL, &load);
	mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "refused upgrade, then a good one");
	h_finish();
}

/* Write text to path atomically (a new file renamed over the old one, as
 * a package manager installs a binary) with mode 0755. */
static void install(const char *path, const void *data, size_t len)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	cr_assert(fd >= 0, "%s: %s", tmp, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", tmp, strerror(errno));
}

static void install_handoffd(const char *path)
{
	char *bin = NULL;
	const char *src = getenv("HANDOFFD");
	cr_assert(src);
	FILE *f = fopen(src, "re");
	cr_assert(f, "%s: %s", src, strerror(errno));
	size_t cap = 1 << 20, len = 0, n;
	bin = malloc(cap);
	cr_assert(bin);
	while ((n = fread(bin + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			bin = realloc(bin, cap);
			cr_assert(bin);
		}
	}
	fclose(f);
	cr_assert(len > 4 && memcmp(bin, "\177ELF", 4) == 0, "%s is not an ELF executable (a libtool wrapper?)", src);
	install(path, bin, len);
	free(bin);
}

Test(upgrade, a_new_executable_that_fails_leaves_the_old_one_serving, .timeout = 60)
{
	/* handoffd runs from a copy in the temp dir, so the test can install
	 * "new versions" of it. */
	char sbin[128], exe[160];
	snprintf(sbin, sizeof(sbin), "%s/sbin", h.dir);
	cr_assert_eq(mkdir(sbin, 0755), 0);
	snprintf(exe, sizeof(exe), "%s/handoffd", sbin);
	install_handoffd(exe);
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	char *saved = strdup(getenv("HANDOFFD"));
	setenv("HANDOFFD", exe, 1);
	struct h_proc *d = h_start_daemon();
	setenv("HANDOFFD", saved, 1);
	free(saved);
	h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_load load;
	h_load_start(&load, &a, 4, H_DEADLINE_MS);
	struct h_load_stats mark = h_load_read(&load);
	wait_answers(&load, &mark, 20);

	/* A broken build: exits at once, before it could say READY. */
	const char *broken = "#!/bin/sh\necho 'broken build' >&2\nexit 3\n";
	install(exe, broken, strlen(broken));
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "upgrade", NULL);
	cr_assert_eq(rc, 1, "handoffctl upgrade to a broken executable: exit %d: %s", rc, out);
	cr_assert(strstr(out, "exited with status 3 before it was ready"), "handoffctl upgrade said: %s", out);
	free(out);
	cr_assert(h_log_wait(H_DEADLINE_MS, "upgrade failed", "keeps serving", NULL));
	cr_assert(H_WAIT_UNTIL(h_children(d->pid, NULL, NULL, 0) == 0, H_DEADLINE_MS),
	          "the failed new process is still there");
	cr_assert(!h_proc_exited(d), "the old handoffd exited (status 0x%x)", d->status);
	cr_assert_eq(h_daemon_pid(), d->pid);
	mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);

	/* A good build installed over it: the upgrade runs that one. */
	install_handoffd(exe);
	struct h_proc *n = upgrade(BY_HANDOFFCTL, &load);
	char link[64], target[256];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)n->pid);
	ssize_t tl = readlink(link, target, sizeof(target) - 1);
	cr_assert(tl > 0);
	target[tl] = '\0';
	cr_assert_str_eq(target, exe);
	mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "failed upgrade, then a good one");
	h_finish();
}

/* Send each client's request now (h_clients_run with no time to wait). */
static void clients_send(struct h_clients *cs)
{
	h_clients_run(cs, 0);
	for (int i = 0; i < cs->n; i++)
		cr_assert(cs->c[i].fd >= 0 && cs->c[i].sent && !cs->c[i].err, "client %d: %s", i,
		          strerror(-cs->c[i].err));
}

static void assert_all_waiting(struct h_clients *cs, const char *when)
{
	h_clients_run(cs, 0);
	for (int i = 0; i < cs->n; i++)
		cr_assert(!cs->c[i].eof && !cs->c[i].err && cs->c[i].len == 0, "%s: client %d %s (%s)", when, i,
		          cs->c[i].eof ? "was closed" : "failed", cs->c[i].err ? strerror(-cs->c[i].err) : cs->c[i].buf);
}

Test(upgrade, waiting_connections_move_to_the_new_handoffd, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	/* A backend that serves one connection, then takes 5 more and never
	 * acknowledges them, then dies: handoffd queues them again (pending),
	 * with no backend left. */
	struct h_proc *b1 = h_backend("web", 8, NULL, "--stall-after", "1", NULL);
	char buf[512];
	ssize_t r = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(r > 0, "%s", strerror((int)-r));
	struct h_clients queued;
	h_clients_open(&queued, &a, 5);
	clients_send(&queued);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "delivered") == 6, H_DEADLINE_MS), "delivered: %lld",
	          h_status_service("web", "delivered"));
	h_proc_kill(b1, SIGKILL);
	cr_assert(h_proc_wait_exit(b1, H_DEADLINE_MS) != -1);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "pending") == 5, H_DEADLINE_MS), "pending: %lld",
	          h_status_service("web", "pending"));
	/* More clients: they wait in the kernel's backlog (handoffd does not
	 * accept while connections are queued). */
	struct h_clients backlog;
	h_clients_open(&backlog, &a, 3);
	clients_send(&backlog);
	assert_all_waiting(&queued, "before the upgrade");
	assert_all_waiting(&backlog, "before the upgrade");

	upgrade(BY_HANDOFFCTL, NULL);
	/* The queued connections were handed over: the new handoffd has them. */
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "pending") == 5, H_DEADLINE_MS),
	          "pending in the new handoffd: %lld", h_status_service("web", "pending"));
	assert_all_waiting(&queued, "after the upgrade");
	assert_all_waiting(&backlog, "after the upgrade");

	struct h_proc *b2 = h_backend("web", 8, NULL, NULL);
	h_clients_run(&queued, H_DEADLINE_MS);
	h_clients_run(&backlog, H_DEADLINE_MS);
	cr_assert_eq(h_clients_answered(&queued), 5, "queued clients lost in the upgrade");
	cr_assert_eq(h_clients_answered(&backlog), 3, "clients in the backlog lost in the upgrade");
	for (int i = 0; i < 5; i++) {
		struct h_answer ans;
		cr_assert(h_parse_answer(queued.c[i].buf, &ans), "%s", queued.c[i].buf);
		cr_assert_eq(ans.pid, b2->pid);
	}
	h_clients_close(&queued);
	h_clients_close(&backlog);
	h_finish();
}

/* A backend holds unacknowledged connections when the upgrade starts: the
 * old handoffd waits for it. kill_it: it dies while the old one waits;
 * otherwise it stays stalled until the old one's shutdown_timeout. Either
 * way its clients must be served through the new handoffd. */
static void stalled_backend(bool kill_it)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_proc *b1 = h_backend("web", 4, NULL, "--reconnect", "--stall-after", "1", NULL);
	char buf[512];
	ssize_t r = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(r > 0, "%s", strerror((int)-r));
	struct h_clients stuck;
	h_clients_open(&stuck, &a, 3);
	clients_send(&stuck);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "delivered") == 4, H_DEADLINE_MS), "delivered: %lld",
	          h_status_service("web", "delivered"));
	struct h_proc *b2 = h_backend("web", 8, NULL, "--reconnect", NULL);

	char *out = NULL;
	int rc = h_ctl(NULL, &out, "upgrade", NULL);
	cr_assert_eq(rc, 0, "handoffctl upgrade: %d: %s", rc, out);
	free(out);
	if (kill_it) {
		cr_assert(!h_proc_exited(d), "the old handoffd did not wait for the stalled backend");
		h_proc_kill(b1, SIGKILL);
	}
	/* shutdown_timeout is 2 s. */
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "old handoffd: status 0x%x", st);
	h_adopt_daemon(h_daemon_pid());
	wait_backends("web", b2, NULL);
	h_clients_run(&stuck, H_DEADLINE_MS);
	int answered = h_clients_answered(&stuck);
	char who[32];
	snprintf(who, sizeof(who), "handoffd[%d]", (int)d->pid);
	cr_assert_eq(answered, 3,
	             "%d of the 3 connections the stalled backend never acknowledged were served after the upgrade "
	             "(the old handoffd logged %d 'no backend acknowledged' lines)",
	             answered, h_log_count(who, "no backend acknowledged", NULL));
	h_clients_close(&stuck);
	h_finish();
}

Test(upgrade, a_backend_that_dies_during_the_handover_loses_nothing, .timeout = 40)
{
	stalled_backend(true);
}

Test(upgrade, a_backend_that_stalls_through_the_handover_loses_nothing, .timeout = 40)
{
	stalled_backend(false);
}

Test(upgrade, socket_files_stay, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	char path[160];
	snprintf(path, sizeof(path), "%s/web.sock", h.dir);
	h_config("[service web]\nlisten = unix:%s, tcp://127.0.0.1:%d\n", path, port);
	h_start_daemon();
	h_backend("web", 8, NULL, "--reconnect", NULL);
	struct stat u0, c0, u1, c1;
	cr_assert_eq(stat(path, &u0), 0);
	cr_assert_eq(stat(h.ctl, &c0), 0);
	struct h_addr u = h_addr_unix(path);
	struct h_load load;
	h_load_start(&load, &u, 4, H_DEADLINE_MS);
	struct h_load_stats mark = h_load_read(&load);
	wait_answers(&load, &mark, 20);

	upgrade(BY_SIGNAL, &load);
	/* The old process is gone: the files are there, and are the same
	 * sockets (not made anew by the new process). */
	cr_assert_eq(stat(path, &u1), 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(stat(h.ctl, &c1), 0, "%s: %s", h.ctl, strerror(errno));
	cr_assert(S_ISSOCK(u1.st_mode) && S_ISSOCK(c1.st_mode));
	cr_assert(u0.st_ino == u1.st_ino && c0.st_ino == c1.st_ino, "a socket file was made anew");
	cr_assert_eq(u0.st_mode, u1.st_mode);
	cr_assert_eq(c0.st_mode, c1.st_mode);
	mark = h_load_read(&load);
	wait_answers(&load, &mark, 50);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "unix listener through an upgrade");
	cr_assert(h_daemon_pid() > 0, "the control socket does not answer");
	h_finish();
}

/* Not an upgrade: handoffd dies and a new one is started by hand (what a
 * service manager does). A backend with handoff_set_reconnect() registers
 * with the new one, even when one of its attempts reached a control socket
 * that accepted the connection and then went away before answering (a
 * handoffd on its way out). The test plays that handoffd: a listener at the
 * control socket's path that never accepts and is then closed. */
Test(upgrade, backends_ride_through_a_restart, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	struct h_proc *b1 = h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char buf[512];
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);

	/* handoffd dies: the control socket's file stays, nobody listens. */
	h_proc_kill(d, SIGKILL);
	cr_assert(h_proc_wait_exit(d, H_DEADLINE_MS) != -1);
	cr_assert_eq(unlink(h.ctl), 0);
	int fake = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(fake >= 0);
	struct h_addr c = h_addr_unix(h.ctl);
	cr_assert_eq(bind(fake, (struct sockaddr *)&c.ss, c.len), 0);
	cr_assert_eq(listen(fake, 4), 0);
	/* The backend's next attempt connects (into the backlog) and waits for
	 * an answer to its registration; then this "handoffd" goes away. */
	bool tried = h_readable(fake, H_DEADLINE_MS);
	char line[256] = "";
	h_proc_line(b1, "lost", line, sizeof(line));
	cr_assert(tried, "the backend did not try to reconnect (%s, status 0x%x)", line[0] ? line : "no 'lost' line",
	          b1->status);
	close(fake);
	cr_assert_eq(unlink(h.ctl), 0);

	h_start_daemon();
	bool ok = H_WAIT_UNTIL(status_has_backend(b1->pid) || h_proc_exited(b1), H_DEADLINE_MS);
	h_proc_line(b1, "lost", line, sizeof(line));
	cr_assert(ok && !h_proc_exited(b1), "the backend did not register with the new handoffd (%s, status 0x%x)",
	          line[0] ? line : "no 'lost' line", b1->status);
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	struct h_answer ans;
	cr_assert(h_parse_answer(buf, &ans) && ans.pid == b1->pid, "%s", buf);
	h_finish();
}
