/* Integration: SIGHUP reloads. Unchanged listeners never close (no client is
 * refused), a broken file is refused and the old configuration keeps
 * serving, listeners and services come and go, and a policy change drops
 * backends it no longer allows. Also `handoffd -t` and usage errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(reload, .init = h_init, .fini = h_fini);

/* Send SIGHUP and wait until handoffd logged the n-th outcome (applied or
 * refused). */
static void sighup(int n)
{
	h_proc_kill(h.daemon, SIGHUP);
	bool done = H_WAIT_UNTIL(h_log_count("configuration reloaded", NULL) + h_log_count("reload refused", NULL) >= n,
	                         H_DEADLINE_MS);
	cr_assert(done, "reload %d did not finish", n);
}

static bool answered_by(const struct h_addr *a, pid_t pid)
{
	char buf[512];
	struct h_answer ans;
	ssize_t n = h_request(a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	return n > 0 && h_parse_answer(buf, &ans) && (!pid || ans.pid == pid);
}

/* Counters shared with the load child. */
struct load {
	volatile int stop;
	volatile int ok, refused, failed;
	volatile int last_err;
};

/* The load child: sequential requests until told to stop. Uses no
 * criterion assertion (it is a plain forked process). */
static void load_loop(struct load *ld, const struct h_addr *a)
{
	while (!ld->stop) {
		char buf[512];
		struct h_answer ans;
		ssize_t n = h_request(a, NULL, buf, sizeof(buf), 3000);
		if (n == -ECONNREFUSED) {
			ld->refused++;
		} else if (n > 0 && h_parse_answer(buf, &ans)) {
			ld->ok++;
		} else {
			ld->failed++;
			ld->last_err = (int)n;
		}
	}
}

Test(reload, sighup_keeps_unchanged_listener_open, .timeout = 30)
{
	int port = h_free_port(AF_INET);
#define RL_SVC "[service rl]\nlisten = tcp://127.0.0.1:%d\nbalance = %s\n# generation %d\n"
	h_config(RL_SVC, port, "round-robin", 0);
	h_start_daemon();
	h_backend("rl", 4, NULL, NULL);
	h_backend("rl", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);

	struct load *ld = mmap(NULL, sizeof(*ld), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(ld != MAP_FAILED);
	memset((void *)ld, 0, sizeof(*ld));
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		h_child_setup(parent);
		load_loop(ld, &a);
		_exit(0);
	}
	struct h_proc *loader = h_track("load", pid);

	for (int r = 1; r <= 4; r++) {
		int before = ld->ok;
		cr_assert(H_WAIT_UNTIL(ld->ok >= before + 20 || ld->failed || ld->refused, H_DEADLINE_MS),
		          "the load made no progress");
		/* Same listener; another balance mode so the reload is real. */
		h_config(RL_SVC, port, r % 2 ? "least-loaded" : "round-robin", r);
		sighup(r);
	}
	int before = ld->ok;
	cr_assert(H_WAIT_UNTIL(ld->ok >= before + 20 || ld->failed || ld->refused, H_DEADLINE_MS));
	ld->stop = 1;
	int st = h_proc_wait_exit(loader, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 4);
	cr_assert_eq(ld->refused, 0, "%d connections refused during reloads (%d answered)", ld->refused, ld->ok);
	cr_assert_eq(ld->failed, 0, "%d connections unanswered during reloads (%d answered, last error %d)",
	             ld->failed, ld->ok, ld->last_err);
	cr_assert(ld->ok >= 100, "only %d answered", ld->ok);
	munmap((void *)ld, sizeof(*ld));
	h_finish();
}

/* Line number (1-based) of the first line of the config file containing s. */
static int conf_line(const char *s)
{
	char *text = h_read_file(h.conf);
	char *at = strstr(text, s);
	cr_assert(at, "'%s' not in the config", s);
	int line = 1;
	for (char *p = text; p < at; p++)
		line += *p == '\n';
	free(text);
	return line;
}

Test(reload, broken_config_keeps_the_old_one, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rl]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("rl", 2, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert(answered_by(&a, b->pid));

	/* Break it: an unknown key, and the listener moved, so a wrongly
	 * applied config would show. */
	int port2 = h_free_port(AF_INET);
	h_config("[service rl]\nlisten = tcp://127.0.0.1:%d\nno_such_key = 1\n", port2);
	int line = conf_line("no_such_key");
	char where[200];
	snprintf(where, sizeof(where), "%s:%d", h.conf, line);
	sighup(1);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 0, "a broken config was applied");
	cr_assert(h_log_count(where, NULL) > 0, "the log does not name %s", where);
	cr_assert(h_log_count(where, "no_such_key", NULL) > 0, "the log does not name the key");

	cr_assert(!h_proc_exited(b), "the backend was dropped by a refused reload");
	cr_assert(answered_by(&a, b->pid), "the old configuration stopped serving");
	struct h_addr a2 = h_addr_tcp("127.0.0.1", port2);
	int fd = h_connect(&a2, NULL, H_DEADLINE_MS);
	cr_assert_eq(fd, -ECONNREFUSED, "the broken config's listener was opened");
	h_finish();
}

Test(reload, listeners_and_services_come_and_go, .timeout = 20)
{
	int p1 = h_free_port(AF_INET), p2 = h_free_port(AF_INET), p3 = h_free_port(AF_INET);
	h_config("[service one]\nlisten = tcp://127.0.0.1:%d\n", p1);
	h_start_daemon();
	struct h_proc *b1 = h_backend("one", 2, NULL, NULL);
	struct h_addr a1 = h_addr_tcp("127.0.0.1", p1), a2 = h_addr_tcp("127.0.0.1", p2),
	              a3 = h_addr_tcp("127.0.0.1", p3);
	cr_assert(answered_by(&a1, b1->pid));
	cr_assert_eq(h_connect(&a3, NULL, H_DEADLINE_MS), -ECONNREFUSED);

	/* Add a listener to 'one' and a new service 'two'. */
	h_config("[service one]\nlisten = tcp://127.0.0.1:%d, tcp://127.0.0.1:%d\n"
	         "[service two]\nlisten = tcp://127.0.0.1:%d\n",
	         p1, p3, p2);
	sighup(1);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 1, "the reload was refused");
	cr_assert(answered_by(&a3, b1->pid), "the added listener does not serve");
	struct h_proc *b2 = h_backend("two", 2, NULL, NULL);
	cr_assert(answered_by(&a2, b2->pid), "the added service does not serve");
	cr_assert(answered_by(&a1, b1->pid));

	/* Remove the listener again and the whole service 'two'. */
	h_config("[service one]\nlisten = tcp://127.0.0.1:%d\n", p1);
	sighup(2);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 2, "the reload was refused");
	int fd3 = h_connect(&a3, NULL, H_DEADLINE_MS);
	cr_assert_eq(fd3, -ECONNREFUSED, "the removed listener still accepts (%d)", fd3);
	int fd2 = h_connect(&a2, NULL, H_DEADLINE_MS);
	cr_assert_eq(fd2, -ECONNREFUSED, "the removed service's listener still accepts (%d)", fd2);
	/* The backend of the removed service is told and let go. */
	int st = h_proc_wait_exit(b2, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 4, "backend of a removed service: 0x%x '%s'", st,
	          b2->out);
	cr_assert(strstr(b2->out, "lost: "), "%s", b2->out);
	cr_assert(answered_by(&a1, b1->pid), "the unchanged listener stopped serving");
	h_finish();
}

Test(reload, revoked_allow_drops_backend, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rv]\nlisten = tcp://127.0.0.1:%d\nallow_users = nobody\n", port);
	h_start_daemon();
	struct h_cred nobody = h_nobody();
	struct h_proc *nb = h_backend("rv", 2, &nobody, NULL);
	struct h_proc *root = h_backend("rv", 2, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert(answered_by(&a, 0));

	h_config("[service rv]\nlisten = tcp://127.0.0.1:%d\nallow_users = daemon\n", port);
	sighup(1);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 1, "the reload was refused");
	int st = h_proc_wait_exit(nb, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 4, "revoked backend: status 0x%x, '%s'", st,
	          nb->out);
	cr_assert(strstr(nb->out, "lost: code=-5004"), "expected HANDOFF_E_NOT_ALLOWED: %s", nb->out);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid=%d", (int)nb->pid);
	cr_assert(h_log_count(pid, "rv", NULL) > 0);
	/* Root is always allowed and keeps serving. */
	for (int i = 0; i < 4; i++)
		cr_assert(answered_by(&a, root->pid));
	h_finish();
}

Test(reload, check_mode_and_usage, .timeout = 15)
{
	const char *hd = getenv("HANDOFFD");
	cr_assert(hd);
	int port = h_free_port(AF_INET);
	h_config("[service ok]\nlisten = tcp://127.0.0.1:%d\n", port);
	char *out = NULL;
	char *good[] = {(char *)hd, (char *)"-t", (char *)"-f", h.conf, NULL};
	int rc = h_run(NULL, &out, H_DEADLINE_MS, good);
	cr_assert_eq(rc, 0, "-t on a good file: exit %d, output: %s", rc, out);
	free(out);

	h_config("[service ok]\nlisten = tcp://127.0.0.1:%d\nbalance = sideways\n", port);
	char where[200];
	snprintf(where, sizeof(where), "%s:%d:", h.conf, conf_line("sideways"));
	rc = h_run(NULL, &out, H_DEADLINE_MS, good);
	cr_assert_eq(rc, 1, "-t on a bad file: exit %d, output: %s", rc, out);
	cr_assert(strstr(out, where), "-t output does not name %s: %s", where, out);
	free(out);

	char *bad_flag[] = {(char *)hd, (char *)"--no-such-flag", NULL};
	rc = h_run(NULL, &out, H_DEADLINE_MS, bad_flag);
	cr_assert_eq(rc, 2, "a bad flag: exit %d, output: %s", rc, out);
	free(out);
	h_finish();
}

Test(reload, startup_failures_exit_3, .timeout = 20)
{
	const char *hd = getenv("HANDOFFD");
	cr_assert(hd);
	char *argv[] = {(char *)hd, (char *)"-f", h.conf, NULL};
	char *out = NULL;

	/* A listen address someone else holds. */
	int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(busy >= 0);
	int port = h_free_port(AF_INET);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert(bind(busy, (struct sockaddr *)&a.ss, a.len) == 0 && listen(busy, 1) == 0);
	h_config("[service su]\nlisten = tcp://127.0.0.1:%d\n", port);
	int rc = h_run(NULL, &out, H_DEADLINE_MS, argv);
	cr_assert_eq(rc, 3, "listen address in use: exit %d, output: %s", rc, out);
	cr_assert(strstr(out, "Address already in use"), "%s", out);
	free(out);
	close(busy);

	/* A control socket a live handoffd answers on. */
	h_config("[service su]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	int port2 = h_free_port(AF_INET);
	h_config("[service su]\nlisten = tcp://127.0.0.1:%d\n", port2);
	rc = h_run(NULL, &out, H_DEADLINE_MS, argv);
	cr_assert_eq(rc, 3, "control socket in use: exit %d, output: %s", rc, out);
	free(out);
	/* The first one is undisturbed. */
	struct h_proc *b = h_backend("su", 1, NULL, NULL);
	char buf[512];
	struct h_answer ans;
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0 && h_parse_answer(buf, &ans));
	cr_assert_eq(ans.pid, b->pid);
	h_finish();
}

/* A reload that makes a service a builtin drops its backends (handoffd
 * serves it now) with a reason they can show. */
Test(reload, service_turned_builtin_drops_backends, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service tb]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("tb", 2, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert(answered_by(&a, b->pid));

	h_config("[service tb]\nlisten = tcp://127.0.0.1:%d\nbuiltin = echo\n", port);
	sighup(1);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 1, "the reload was refused");
	int st = h_proc_wait_exit(b, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st), "backend of a service turned builtin: status 0x%x, '%s'", st, b->out);
	cr_assert(strstr(b->out, "builtin echo"), "no reason given: %s", b->out);
	cr_assert(h_log_count("now the builtin echo", NULL) == 1);
	/* The same listener now echoes. */
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(h_send(fd, "ping\n") == 0);
	char buf[64];
	cr_assert(h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS) > 0 && strcmp(buf, "ping\n") == 0, "echo: '%s'", buf);
	close(fd);
	h_finish();
}

/* mode accept -> listen by a reload: the registered backend gets the
 * listening socket (and accepts itself); a changed socket_mode reaches the
 * kept socket file. */
Test(reload, mode_and_socket_mode_reach_kept_listeners, .timeout = 20)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/ml.sock", h.dir);
	h_config("[service ml]\nlisten = unix:%s\nsocket_mode = 0600\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("ml", 4, NULL, "--listen-mode", NULL);
	struct h_addr a = h_addr_unix(path);
	cr_assert(answered_by(&a, b->pid));
	cr_assert_eq(h_status_service("ml", "accepted"), 1);
	struct stat st;
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "mode %o", st.st_mode & 07777);

	h_config("[service ml]\nlisten = unix:%s\nsocket_mode = 0666\nmode = listen\n", path);
	sighup(1);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 1, "the reload was refused");
	cr_assert(stat(path, &st) == 0 && (st.st_mode & 07777) == 0666, "socket_mode after reload: %o",
	          st.st_mode & 07777);
	/* The backend has the listening socket now: it answers with conn=0 and
	 * handoffd accepts nothing more. */
	cr_assert(h_proc_wait_lines(b, "socket listener ", 1, H_DEADLINE_MS), "the backend never got the listener:\n%s", b->out);
	char buf[512];
	struct h_answer ans;
	ssize_t n = h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.pid == b->pid && ans.conn == 0, "answer '%s'", buf);
	cr_assert_eq(h_status_service("ml", "accepted"), 1, "handoffd still accepts in listen mode");
	h_finish();
}
