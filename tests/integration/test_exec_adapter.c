/* Integration: handoff-exec runs unmodified socket-activated programs as
 * handoffd backends (sockets from fd 3 in order, LISTEN_PID their own,
 * names, nothing else inherited, signals forwarded, the program's status),
 * with sdactivated (a test program that checks and reports what it got)
 * and with a real one, systemd-socket-proxyd; and exec_activation = systemd
 * does the same for programs handoffd spawns.
 *
 * The suite is a child subreaper: a program whose adapter was killed
 * becomes the test's own, so it can be waited for by pid.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

TestSuite(adapter, .init = init, .fini = h_fini);

static const char *bin(const char *var)
{
	const char *p = getenv(var);
	cr_assert(p && *p, "$%s is not set (run under make check)", var);
	return p;
}

/* ---- helpers ---- */

/* DIR/NAME.report */
static void report_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.report", h.dir, name);
}

/* handoff-exec -s CTL [opts...] -S SERVICE -- sdactivated --report DIR/NAME.report [args...]:
 * opts and args are NULL-terminated lists (or NULL). */
static struct h_proc *adapter(const char *name, const char *service, const char *const *opts,
                              const char *const *args)
{
	char rep[256];
	report_path(name, rep, sizeof(rep));
	char *argv[32];
	int n = 0;
	argv[n++] = (char *)bin("HANDOFF_EXEC");
	argv[n++] = "-s";
	argv[n++] = h.ctl;
	for (; opts && *opts; opts++)
		argv[n++] = (char *)*opts;
	argv[n++] = "-S";
	argv[n++] = (char *)service;
	argv[n++] = "--";
	argv[n++] = (char *)bin("SDACTIVATED");
	argv[n++] = "--report";
	argv[n++] = rep;
	for (; args && *args; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	return h_spawn(name, NULL, argv);
}

/* Wait for the program's whole report (or for the adapter to exit);
 * returns it (malloc'd) with a leading newline, so "\nLINE\n" finds a
 * whole line. */
static char *report_wait(const char *name, struct h_proc *a)
{
	char rep[256];
	report_path(name, rep, sizeof(rep));
	bool ok = H_WAIT_UNTIL(access(rep, F_OK) == 0 || h_proc_exited(a), H_DEADLINE_MS);
	char *log = h_read_file(a->log);
	cr_assert(ok && access(rep, F_OK) == 0, "no report from the program; handoff-exec said:\n%s", log);
	free(log);
	char *text = h_read_file(rep);
	size_t len = strlen(text);
	char *r = malloc(len + 2);
	cr_assert(r);
	r[0] = '\n';
	memcpy(r + 1, text, len + 1);
	free(text);
	cr_assert(strstr(r, "\nend\n"), "a partial report:%s", r);
	return r;
}

/* Does the report have this whole line? */
static bool has_line(const char *report, const char *line)
{
	char want[256];
	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(report, want) != NULL;
}

#define ASSERT_LINE(report, line) cr_assert(has_line(report, line), "no line '%s' in the report:%s", line, report)

static pid_t report_pid(const char *report)
{
	const char *p = strstr(report, "\npid ");
	cr_assert(p, "no pid in the report:%s", report);
	return (pid_t)strtol(p + 5, NULL, 10);
}

/* The program's pid, once its report says LISTEN_PID was right. */
static pid_t adapter_program(const char *name, struct h_proc *a)
{
	char *r = report_wait(name, a);
	ASSERT_LINE(r, "listen_pid_ok 1");
	pid_t prog = report_pid(r);
	free(r);
	return prog;
}

/* Connect to a TCP port and read everything until EOF. */
static void ask(int port, char *buf, size_t size)
{
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect to port %d: %s", port, strerror(-fd));
	ssize_t n = h_read_all(fd, buf, size, H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "no answer on port %d (%zd)", port, n);
}

/* The answer of sdactivated pid on its fd: "sdactivated PID fd FD\n". */
static void assert_answer(const char *buf, pid_t pid, int fd)
{
	char want[64];
	snprintf(want, sizeof(want), "sdactivated %d fd %d\n", (int)pid, fd);
	cr_assert_str_eq(buf, want);
}

static bool log_has(struct h_proc *p, const char *s)
{
	char *log = h_read_file(p->log);
	bool found = strstr(log, s) != NULL;
	free(log);
	return found;
}

#define ASSERT_LOG(p, s) \
	do { \
		bool ok_ = H_WAIT_UNTIL(log_has(p, s), H_DEADLINE_MS); \
		char *l_ = h_read_file((p)->log); \
		cr_assert(ok_, "%s did not say '%s'; it said:\n%s", (p)->name, s, l_); \
		free(l_); \
	} while (0)

/* ---- the protocol as systemd defines it ---- */

Test(adapter, one_listener_listen_pid_names_and_exit_status, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	/* -u 0: handoffd runs as root, as the test does. */
	const char *opts[] = {"-u", "0", NULL}, *args[] = {"--term-exit", "7", NULL};
	struct h_proc *a = adapter("a1", "web", opts, args);
	char *r = report_wait("a1", a);
	pid_t prog = report_pid(r);
	ASSERT_LINE(r, "listen_pid_ok 1");
	cr_assert_neq(prog, a->pid, "the program is handoff-exec itself");
	cr_assert_eq(h_parent_of(prog), a->pid, "the program is not handoff-exec's child");
	ASSERT_LINE(r, "nfds 1");
	ASSERT_LINE(r, "fd 3 stream listening");
	ASSERT_LINE(r, "names 1");
	ASSERT_LINE(r, "name 0 web");
	ASSERT_LINE(r, "extra_fds none");
	ASSERT_LINE(r, "stdio chr reg reg");
	ASSERT_LINE(r, "sigmask_empty 1");
	ASSERT_LINE(r, "sigdfl 1");
	ASSERT_LINE(r, "pidfdid -");
	free(r);
	/* handoffd counts it as the service's backend. */
	cr_assert_eq(h_status_service("web", "backends"), 1);
	char buf[256];
	ask(port, buf, sizeof(buf));
	assert_answer(buf, prog, 3);
	/* SIGTERM reaches the program; handoff-exec exits with its status. */
	h_proc_kill(a, SIGTERM);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status 0x%x, not the program's exit 7", st);
	cr_assert(kill(prog, 0) < 0 && errno == ESRCH, "the program (pid %d) is still there", (int)prog);
	char *log = h_read_file(a->log);
	cr_assert_str_eq(log, "", "handoff-exec said something:\n%s", log);
	free(log);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 0, H_DEADLINE_MS));
	h_finish();
}

Test(adapter, sockets_in_listen_order_with_names, .timeout = 30)
{
	/* A datagram listener first, then a stream one: fd 3 is the first
	 * listen line, whatever its type. */
	int port = h_free_port_udp(AF_INET), port2 = h_free_port(AF_INET);
	h_config("[service dns]\nlisten = udp://127.0.0.1:%d, tcp://127.0.0.1:%d\nmode = listen\n", port, port2);
	h_start_daemon();
	const char *opts[] = {"-n", "front end", NULL};
	struct h_proc *a = adapter("a2", "dns", opts, NULL);
	char *r = report_wait("a2", a);
	pid_t prog = report_pid(r);
	ASSERT_LINE(r, "listen_pid_ok 1");
	ASSERT_LINE(r, "nfds 2");
	ASSERT_LINE(r, "fd 3 dgram -");
	ASSERT_LINE(r, "fd 4 stream listening");
	ASSERT_LINE(r, "names 2");
	ASSERT_LINE(r, "name 0 front end");
	ASSERT_LINE(r, "name 1 front end");
	ASSERT_LINE(r, "extra_fds none");
	free(r);
	char buf[256];
	ask(port2, buf, sizeof(buf));
	assert_answer(buf, prog, 4);
	struct h_addr u = h_addr_udp("127.0.0.1", port);
	int d = h_dgram_socket(&u, NULL);
	cr_assert(d >= 0);
	cr_assert_eq(h_dgram_send(d, &u, "x", 1), 0);
	ssize_t n = h_dgram_recv(d, buf, sizeof(buf), H_DEADLINE_MS);
	close(d);
	cr_assert(n > 0, "no datagram answer (%zd)", n);
	assert_answer(buf, prog, 3);
	/* SIGUSR1 (forwarded) kills the program: handoff-exec dies of it too. */
	h_proc_kill(a, SIGUSR1);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1, "status 0x%x, not killed by SIGUSR1", st);
	h_finish();
}

Test(adapter, every_forwarded_signal_reaches_the_program, .timeout = 30)
{
	/* No core files from SIGQUIT (the limit is inherited). */
	struct rlimit no_core = {0, 0};
	cr_assert(setrlimit(RLIMIT_CORE, &no_core) == 0);
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	/* sdactivated catches only SIGTERM: the others kill it, and
	 * handoff-exec then dies of the same signal. SIGTERM, SIGUSR1 and
	 * SIGHUP have tests of their own. */
	const int sigs[] = {SIGINT, SIGQUIT, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "sig%d", sigs[i]);
		struct h_proc *a = adapter(name, "web", NULL, NULL);
		pid_t prog = adapter_program(name, a);
		h_proc_kill(a, sigs[i]);
		int st = h_proc_wait_exit(a, H_DEADLINE_MS);
		cr_assert(st != -1, "handoff-exec did not exit after signal %d", sigs[i]);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i], "signal %d: status 0x%x", sigs[i], st);
		cr_assert(!WCOREDUMP(st), "handoff-exec dumped core for signal %d", sigs[i]);
		cr_assert(kill(prog, 0) < 0 && errno == ESRCH, "the program (pid %d) is still there", (int)prog);
	}
	h_finish();
}

/* A caller that leaves a mess: fds 3 and 7 (a pipe) and 5 (a listening
 * socket) open without close-on-exec, stdin and stdout closed, SIGTERM,
 * SIGHUP and SIGUSR1 blocked, SIGHUP, SIGINT and SIGUSR2 ignored, LISTEN_*
 * variables of its own. None of it may reach the program. */
Test(adapter, the_callers_fds_signals_and_environment_do_not_reach_the_program, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	char rep[256], log[256];
	report_path("dirty", rep, sizeof(rep));
	snprintf(log, sizeof(log), "%s/dirty.log", h.dir);
	char *argv[] = {(char *)bin("HANDOFF_EXEC"), "-s", h.ctl, "-S", "web", "--", (char *)bin("SDACTIVATED"),
	                "--report", rep, NULL};
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		h_child_setup(parent);
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int p[2];
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (lf < 0 || dup2(lf, 2) < 0 || pipe2(p, O_CLOEXEC) < 0 || s < 0 ||
		    bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s, 1) < 0)
			_exit(120);
		/* dup2 makes them inheritable. */
		if (dup2(p[0], 3) < 0 || dup2(p[1], 7) < 0 || dup2(s, 5) < 0)
			_exit(121);
		close_range(8, ~0U, 0);
		close(0);
		close(1);
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, SIGTERM);
		sigaddset(&m, SIGHUP);
		sigaddset(&m, SIGUSR1);
		sigprocmask(SIG_SETMASK, &m, NULL);
		signal(SIGHUP, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGUSR2, SIG_IGN);
		setenv("LISTEN_FDS", "3", 1);
		setenv("LISTEN_PID", "1", 1);
		setenv("LISTEN_FDNAMES", "bogus:x:y", 1);
		setenv("LISTEN_PIDFDID", "42", 1);
		execv(argv[0], argv);
		_exit(122);
	}
	struct h_proc *a = h_track("dirty", pid);
	char *r = report_wait("dirty", a);
	ASSERT_LINE(r, "listen_pid_ok 1");
	ASSERT_LINE(r, "nfds 1");
	ASSERT_LINE(r, "fd 3 stream listening");
	ASSERT_LINE(r, "names 1");
	ASSERT_LINE(r, "name 0 web");
	ASSERT_LINE(r, "extra_fds none");
	/* Closed stdin and stdout are /dev/null, not one of our sockets. */
	ASSERT_LINE(r, "stdio chr chr reg");
	ASSERT_LINE(r, "sigmask_empty 1");
	ASSERT_LINE(r, "sigdfl 1");
	ASSERT_LINE(r, "pidfdid -");
	pid_t prog = report_pid(r);
	free(r);
	char buf[256];
	ask(port, buf, sizeof(buf));
	assert_answer(buf, prog, 3);
	/* SIGHUP, which the caller ignored and blocked, is forwarded and
	 * kills the program (its default action); handoff-exec dies of it. */
	h_proc_kill(a, SIGHUP);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(st != -1, "handoff-exec did not exit after SIGHUP");
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP, "status 0x%x, not killed by SIGHUP", st);
	h_finish();
}

/* ---- errors ---- */

static int run_adapter(char **ret_out, char *const argv[])
{
	return h_run(NULL, ret_out, H_DEADLINE_MS, argv);
}

Test(adapter, refusals_and_usage_errors, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service acc]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	const char *he = bin("HANDOFF_EXEC"), *sd = bin("SDACTIVATED");
	char *out = NULL;

	/* An accept-mode service shares nothing. */
	char *acc[] = {(char *)he, "-s", h.ctl, "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, acc), 1, "%s", out);
	cr_assert_str_eq(out, "handoff-exec: service 'acc' has no shared sockets: set mode = listen in its [service] "
	                      "section\n");
	free(out);
	cr_assert(H_WAIT_UNTIL(h_status_service("acc", "backends") == 0, H_DEADLINE_MS), "still registered");

	/* No such service: handoffd's own sentence. */
	char *nope[] = {(char *)he, "-s", h.ctl, "-S", "nope", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, nope), 1, "%s", out);
	cr_assert(strstr(out, "handoff-exec: handoffd refused to register us for 'nope': ") && strstr(out, "nope"),
	          "%s", out);
	free(out);

	/* No handoffd there. */
	char sock[200];
	snprintf(sock, sizeof(sock), "%s/nothing.sock", h.dir);
	char *nosock[] = {(char *)he, "-s", sock, "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, nosock), 1, "%s", out);
	char want[300];
	snprintf(want, sizeof(want), "handoff-exec: cannot connect to handoffd at %s: No such file or directory\n", sock);
	cr_assert_str_eq(out, want);
	free(out);

	/* The daemon is not the uid we trust. */
	char *uid[] = {(char *)he, "-s", h.ctl, "-u", "65534", "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, uid), 1, "%s", out);
	cr_assert(strstr(out, "expected uid 65534"), "%s", out);
	free(out);

	/* Usage errors: exit 2, one line that names the problem first. */
	char *nos[] = {(char *)he, "-s", h.ctl, "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, nos), 2, "%s", out);
	cr_assert(strncmp(out, "handoff-exec: -S SERVICE is required (usage: ", 45) == 0, "%s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);
	free(out);
	char *unknown[] = {(char *)he, "-x", "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, unknown), 2, "%s", out);
	cr_assert(strncmp(out, "handoff-exec: unknown option -x (usage: ", 40) == 0, "%s", out);
	free(out);
	char *noarg[] = {(char *)he, "-S", NULL};
	cr_assert_eq(run_adapter(&out, noarg), 2, "%s", out);
	cr_assert(strncmp(out, "handoff-exec: -S needs an argument", 34) == 0, "%s", out);
	free(out);
	char *noprog[] = {(char *)he, "-s", h.ctl, "-S", "acc", "--", NULL};
	cr_assert_eq(run_adapter(&out, noprog), 2, "%s", out);
	cr_assert(strstr(out, "no program to run"), "%s", out);
	free(out);
	char *cap[] = {(char *)he, "-c", "0", "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, cap), 2, "%s", out);
	cr_assert(strstr(out, "-c '0'"), "%s", out);
	free(out);
	char *name[] = {(char *)he, "-n", "a:b", "-S", "acc", "--", (char *)sd, NULL};
	cr_assert_eq(run_adapter(&out, name), 2, "%s", out);
	cr_assert(strstr(out, "-n 'a:b'"), "%s", out);
	free(out);
	h_finish();
}

Test(adapter, a_program_that_cannot_be_executed_exits_127, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	const char *he = bin("HANDOFF_EXEC");
	char *out = NULL;
	char *missing[] = {(char *)he, "-s", h.ctl, "-S", "web", "--", "/nonexistent/program", NULL};
	cr_assert_eq(run_adapter(&out, missing), 127, "%s", out);
	cr_assert_str_eq(out, "handoff-exec: cannot execute /nonexistent/program: No such file or directory\n");
	free(out);
	char *notonpath[] = {(char *)he, "-s", h.ctl, "-S", "web", "--", "no-such-program-anywhere", NULL};
	cr_assert_eq(run_adapter(&out, notonpath), 127, "%s", out);
	cr_assert_str_eq(out, "handoff-exec: cannot execute no-such-program-anywhere: No such file or directory\n");
	free(out);
	/* Not executable: the configuration file. */
	char *noexec[] = {(char *)he, "-s", h.ctl, "-S", "web", "--", h.conf, NULL};
	cr_assert_eq(run_adapter(&out, noexec), 127, "%s", out);
	char want[300];
	snprintf(want, sizeof(want), "handoff-exec: cannot execute %s: Permission denied\n", h.conf);
	cr_assert_str_eq(out, want);
	free(out);
	/* The registration ended with it. */
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 0, H_DEADLINE_MS));
	h_finish();
}

/* A service with a stream listener in accept mode and a datagram one: the
 * datagram socket is passed, and the first connection handoffd hands over
 * is closed and ends the registration (it cannot be passed on). */
Test(adapter, a_connection_handed_over_ends_the_registration, .timeout = 30)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service mix]\nlisten = udp://127.0.0.1:%d, tcp://127.0.0.1:%d\n", port, port);
	h_start_daemon();
	struct h_proc *a = adapter("mix", "mix", NULL, NULL);
	char *r = report_wait("mix", a);
	ASSERT_LINE(r, "nfds 1");
	ASSERT_LINE(r, "fd 3 dgram -");
	free(r);
	cr_assert_eq(h_status_service("mix", "backends"), 1);
	struct h_addr t = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&t, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	ASSERT_LOG(a, "handed over a single connection of 'mix'");
	cr_assert(H_WAIT_UNTIL(h_status_service("mix", "backends") == 0, H_DEADLINE_MS), "still registered");
	char buf[64];
	cr_assert(h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS) == 0, "the connection was not closed");
	close(fd);
	/* The program keeps its datagram socket. */
	cr_assert(!h_proc_exited(a));
	h_proc_kill(a, SIGTERM);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	h_finish();
}

/* ---- a real socket-activated program ---- */

/* An echo server on 127.0.0.1 in a child of the test (no thread: the
 * harness forks). Returns its port. */
static int echo_server(void)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(ls >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	cr_assert(bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(ls, 16) == 0);
	cr_assert(getsockname(ls, (struct sockaddr *)&sin, &len) == 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		h_child_setup(parent);
		signal(SIGTERM, SIG_DFL);
		for (;;) {
			int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			char buf[4096];
			ssize_t n;
			while ((n = read(c, buf, sizeof(buf))) > 0)
				if (write(c, buf, (size_t)n) != n)
					break;
			close(c);
		}
	}
	close(ls);
	h_track("echo", pid);
	return ntohs(sin.sin_port);
}

Test(adapter, real_systemd_socket_proxyd, .timeout = 30)
{
	const char *proxyd = "/lib/systemd/systemd-socket-proxyd";
	if (access(proxyd, X_OK) < 0)
		H_SKIP("%s is not installed (Debian's systemd package): no real socket-activated program to run", proxyd);
	int eport = echo_server();
	int port = h_free_port(AF_INET);
	h_config("[service px]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", eport);
	char *argv[] = {(char *)bin("HANDOFF_EXEC"), "-s", h.ctl, "-S", "px", "--", (char *)proxyd, target, NULL};
	struct h_proc *a = h_spawn("proxyd", NULL, argv);
	/* The client may come before the proxy runs: it waits in the backlog. */
	for (int i = 0; i < 3; i++) {
		struct h_addr x = h_addr_tcp("127.0.0.1", port);
		int fd = h_connect(&x, NULL, H_DEADLINE_MS);
		cr_assert(fd >= 0, "connect: %s", strerror(-fd));
		char say[64], buf[128];
		snprintf(say, sizeof(say), "hello %d through systemd-socket-proxyd\n", i);
		cr_assert_eq(h_send(fd, say), 0);
		ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
		close(fd);
		char *log = h_read_file(a->log);
		cr_assert(n > 0 && strcmp(buf, say) == 0, "echo through the proxy: '%s' (%zd); handoff-exec said:\n%s",
		          n > 0 ? buf : "", n, log);
		free(log);
	}
	cr_assert(!h_proc_exited(a), "the proxy exited (status 0x%x)", a->status);
	h_proc_kill(a, SIGTERM);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(st != -1, "handoff-exec did not exit after SIGTERM");
	h_finish();
}

/* ---- restarts that refuse nothing ---- */

/* A client that keeps connecting (a child of the test, one connection at a
 * time) and counts what happens; counters in shared memory. */
struct sdload {
	uint64_t started, answered, refused, cut, timed_out, other;
	int last_pid;
	int stop;
	char last_failure[160];
};

static struct sdload *sdload_start(int port, struct h_proc **ret_proc)
{
	struct sdload *l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(l != MAP_FAILED);
	memset(l, 0, sizeof(*l));
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		h_child_setup(parent);
		close_range(3, ~0U, 0);
		while (!__atomic_load_n(&l->stop, __ATOMIC_RELAXED)) {
			__atomic_fetch_add(&l->started, 1, __ATOMIC_RELAXED);
			int fd = h_connect(&a, NULL, H_DEADLINE_MS);
			char buf[128] = "";
			ssize_t n = fd;
			if (fd >= 0) {
				n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS * 2);
				close(fd);
			}
			int pid_got, fd_got;
			uint64_t *c;
			if (n > 0 && sscanf(buf, "sdactivated %d fd %d", &pid_got, &fd_got) == 2) {
				__atomic_store_n(&l->last_pid, pid_got, __ATOMIC_RELAXED);
				c = &l->answered;
			} else if (n == -ECONNREFUSED) {
				c = &l->refused;
			} else if (n == -ETIMEDOUT) {
				c = &l->timed_out;
			} else if (n == 0 || n == -ECONNRESET) {
				c = &l->cut; /* accepted by a program that was killed */
			} else {
				c = &l->other;
			}
			if (c != &l->answered)
				snprintf(l->last_failure, sizeof(l->last_failure), "%s (%zd): '%s'",
				         fd < 0 ? "connect" : "read", n, buf);
			__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
		}
		_exit(0);
	}
	*ret_proc = h_track("sdload", pid);
	return l;
}

static uint64_t sdload_get(struct sdload *l, uint64_t *field)
{
	(void)l;
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

Test(adapter, kill_9_and_a_new_adapter_refuse_no_client, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	struct h_proc *a = adapter("k1", "web", NULL, NULL);
	char *r = report_wait("k1", a);
	pid_t prog = report_pid(r);
	free(r);
	struct h_proc *lp;
	struct sdload *l = sdload_start(port, &lp);
	cr_assert(H_WAIT_UNTIL(sdload_get(l, &l->answered) >= 20, H_DEADLINE_MS), "the load got no answers");

	/* Both killed at once, without a chance to say anything. */
	kill(a->pid, SIGKILL);
	kill(prog, SIGKILL);
	cr_assert(h_proc_wait_exit(a, H_DEADLINE_MS) != -1);
	struct h_proc *p = h_track("k1-program", prog); /* ours now: the suite is a subreaper */
	cr_assert(h_proc_wait_exit(p, H_DEADLINE_MS) != -1, "the killed program (pid %d) did not go", (int)prog);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 0, H_DEADLINE_MS));

	/* Nobody serves the port now: clients still get in (handoffd's backlog). */
	struct h_clients cs;
	struct h_addr addr = h_addr_tcp("127.0.0.1", port);
	h_clients_open(&cs, &addr, 8);
	for (int i = 0; i < cs.n; i++)
		cr_assert_eq(cs.c[i].err, 0, "client %d while no program ran: %s", i, strerror(-cs.c[i].err));
	uint64_t before = sdload_get(l, &l->started);

	struct h_proc *a2 = adapter("k2", "web", NULL, NULL);
	r = report_wait("k2", a2);
	pid_t prog2 = report_pid(r);
	free(r);
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), cs.n, "clients that waited were not all served");
	char want[64];
	snprintf(want, sizeof(want), "sdactivated %d fd 3\n", (int)prog2);
	for (int i = 0; i < cs.n; i++)
		cr_assert(strcmp(cs.c[i].buf, want) == 0, "client %d got '%s', not '%s'", i, cs.c[i].buf, want);
	h_clients_close(&cs);
	cr_assert(H_WAIT_UNTIL(sdload_get(l, &l->started) >= before + 20 && __atomic_load_n(&l->last_pid, __ATOMIC_RELAXED) == prog2,
	                       H_DEADLINE_MS),
	          "the load did not go on with the new program");
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELAXED);
	int st = h_proc_wait_exit(lp, H_DEADLINE_MS * 3);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the load process: status 0x%x", st);
	struct sdload s = *l;
	cr_assert_eq(s.refused, 0, "%llu of %llu connections refused; last: %s", (unsigned long long)s.refused,
	             (unsigned long long)s.started, s.last_failure);
	cr_assert_eq(s.timed_out + s.other, 0, "%llu timed out, %llu other failures; last: %s",
	             (unsigned long long)s.timed_out, (unsigned long long)s.other, s.last_failure);
	/* At most the one connection the killed program had accepted. */
	cr_assert(s.cut <= 1, "%llu connections cut; last: %s", (unsigned long long)s.cut, s.last_failure);
	munmap(l, sizeof(*l));
	h_proc_kill(a2, SIGTERM);
	cr_assert(h_proc_wait_exit(a2, H_DEADLINE_MS) != -1);
	h_finish();
}

Test(adapter, handoffd_going_away_leaves_the_program_serving, .timeout = 40)
{
	int port = h_free_port(AF_INET), port2 = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	const char *args[] = {"--term-exit", "5", NULL};
	struct h_proc *a = adapter("gone", "web", NULL, args);
	pid_t prog = adapter_program("gone", a);

	/* handoffd stops: the program keeps its socket and serves on. */
	h_proc_kill(h.daemon, SIGTERM);
	int st = h_proc_wait_exit(h.daemon, 8000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "handoffd: status 0x%x", st);
	ASSERT_LOG(a, "handoffd closed the control connection");
	ASSERT_LOG(a, "keeps serving its sockets");
	char buf[256];
	ask(port, buf, sizeof(buf));
	assert_answer(buf, prog, 3);
	cr_assert(!h_proc_exited(a));

	/* A new handoffd (the old port is the program's now: the service moves
	 * to another one): handoff-exec registers again and says that the new
	 * socket did not reach the program. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port2);
	h_start_daemon();
	ASSERT_LOG(a, "registered again for 'web'");
	char want[160];
	snprintf(want, sizeof(want), "shares a socket 127.0.0.1:%d for 'web' that", port2);
	ASSERT_LOG(a, want);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 1, H_DEADLINE_MS));

	/* The service removed by a reload: the program is stopped. */
	h_config("[service other]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port2);
	char *out = NULL;
	cr_assert_eq(h_ctl(NULL, &out, "reload", NULL), 0, "%s", out);
	free(out);
	ASSERT_LOG(a, "revoked our registration for 'web'");
	st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5, "status 0x%x, not the program's 5 after SIGTERM", st);
	h_finish();
}

Test(adapter, rides_through_a_handoffd_upgrade, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	struct h_proc *d = h_start_daemon();
	struct h_proc *a = adapter("up", "web", NULL, NULL);
	pid_t prog = adapter_program("up", a);
	cr_assert_eq(h_status_service("web", "backends"), 1);
	pid_t old = d->pid;
	cr_assert_eq(kill(old, SIGUSR2), 0);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS * 2);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the old handoffd: status 0x%x", st);
	pid_t npid = -1;
	cr_assert(H_WAIT_UNTIL((npid = h_daemon_pid()) > 0 && npid != old, H_DEADLINE_MS));
	h_adopt_daemon(npid);
	ASSERT_LOG(a, "registered again for 'web'");
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 1, H_DEADLINE_MS),
	          "handoff-exec is not registered with the new handoffd");
	/* The same socket came again: nothing to say about it. */
	cr_assert(!log_has(a, "did not get"), "a socket handoffd kept looked new");
	char buf[256];
	ask(port, buf, sizeof(buf));
	assert_answer(buf, prog, 3);
	h_proc_kill(a, SIGTERM);
	st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	h_finish();
}

Test(adapter, a_drain_stops_the_program, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	const char *args[] = {"--term-exit", "9", NULL};
	struct h_proc *a = adapter("dr", "web", NULL, args);
	adapter_program("dr", a);
	char target[32], *out = NULL;
	snprintf(target, sizeof(target), "pid:%d", (int)a->pid);
	cr_assert_eq(h_ctl(NULL, &out, "drain", target, NULL), 0, "%s", out);
	free(out);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(st != -1, "handoff-exec still runs after a drain");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 9, "status 0x%x, not the program's 9 after SIGTERM", st);
	cr_assert(log_has(a, "handoffd drained our registration for 'web': stopping"));
	h_finish();
}

/* ---- exec_activation = systemd (handoffd spawns the program) ---- */

Test(adapter, exec_activation_systemd, .timeout = 30)
{
	int port = h_free_port(AF_INET), aport = h_free_port(AF_INET);
	/* Accept=no style (listen mode) and Accept=yes style (accept mode). */
	h_config("[service no]\nlisten = tcp://127.0.0.1:%d\nmode = listen\nexec = %s\nexec_user = root\n"
	         "exec_activation = systemd\n"
	         "[service yes]\nlisten = tcp://127.0.0.1:%d\nexec = %s\nexec_user = root\nexec_activation = systemd\n",
	         port, bin("SDACTIVATED"), aport, bin("SDACTIVATED"));
	h_start_daemon();
	char buf[256];
	ask(port, buf, sizeof(buf));
	cr_assert(strncmp(buf, "sdactivated ", 12) == 0 && strstr(buf, " fd 3\n"), "listen mode: '%s'", buf);
	/* handoffd leaves a wait-style program running when it exits (as
	 * inetd does): the test stops it by its pid. */
	long wpid = strtol(buf + strlen("sdactivated "), NULL, 10);
	cr_assert(wpid > 0);
	h_track("sdactivated-wait", (pid_t)wpid);
	/* Accept=yes: fd 3 is the connection itself, not listening; the
	 * program's report goes to handoffd's log (its stdout), and its first
	 * check is LISTEN_PID. */
	struct h_addr a = h_addr_tcp("127.0.0.1", aport);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(H_WAIT_UNTIL(h_log_count("fd 3 stream -", NULL) >= 1, H_DEADLINE_MS), "no report in the log");
	cr_assert(H_WAIT_UNTIL(h_log_count("end", NULL) >= 2, H_DEADLINE_MS), "no whole report in the log");
	cr_assert(h_log_count("listen_pid_ok 1", NULL) >= 2, "LISTEN_PID wrong in a spawned program");
	cr_assert(h_log_count("name 0 connection", NULL) >= 1);
	cr_assert_eq(h_log_count("extra_fds ", NULL), h_log_count("extra_fds none", NULL),
	             "fds leaked into a spawned program");
	/* It answers on the connection and exits. */
	cr_assert(h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS) > 0 && strstr(buf, "fd 3"), "'%s'", buf);
	close(fd);
	h_finish();
}
