/* Integration: handoff-exec runs unmodified socket-activated programs as
 * handoffd backends (LISTEN_FDS from fd 3, LISTEN_PID their own, names),
 * and exec_activation = systemd does the same for spawned programs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(adapter, .init = h_init, .fini = h_fini);

static const char *bin(const char *var)
{
	const char *p = getenv(var);
	cr_assert(p && *p, "$%s is not set (run under make check)", var);
	return p;
}

/* One line from a TCP service, or "" */
static void ask(int port, char *buf, size_t size)
{
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect: %s", strerror(-fd));
	ssize_t n = h_read_all(fd, buf, size, H_DEADLINE_MS);
	close(fd);
	if (n < 0)
		buf[0] = '\0';
}

static struct h_proc *adapter(const char *service, const char *program)
{
	char *argv[] = {(char *)bin("HANDOFF_EXEC"), "-s", h.ctl, "-S", (char *)service, "--", (char *)program, NULL};
	return h_spawn("adapter", NULL, argv);
}

Test(adapter, listen_fds_for_an_unmodified_program, .timeout = 20)
{
	int port = h_free_port(AF_INET), uport = h_free_port_udp(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d, udp://127.0.0.1:%d\nmode = listen\n", port, uport);
	h_start_daemon();
	struct h_proc *a = adapter("web", bin("SDACTIVATED"));
	cr_assert(h_proc_wait_lines(a, "end", 1, H_DEADLINE_MS), "output:\n%s", a->out);
	char line[128];
	cr_assert(h_proc_line(a, "listen_pid_ok ", line, sizeof(line)));
	cr_assert_str_eq(line, "listen_pid_ok 1", "LISTEN_PID must be the program's own pid:\n%s", a->out);
	cr_assert(h_proc_line(a, "nfds ", line, sizeof(line)));
	cr_assert_str_eq(line, "nfds 2");
	cr_assert(strstr(a->out, "fd 3 stream listening\n"), "%s", a->out);
	cr_assert(strstr(a->out, "fd 4 dgram -\n"), "%s", a->out);
	cr_assert(strstr(a->out, "name 0 web\nname 1 web\n"), "%s", a->out);
	cr_assert_eq(h_proc_count(a, "extra "), 0, "fds leaked into the program:\n%s", a->out);
	char buf[256];
	ask(port, buf, sizeof(buf));
	cr_assert(strstr(buf, "sdactivated ") && strstr(buf, "fd 3"), "answer: '%s'", buf);
	struct h_addr u = h_addr_udp("127.0.0.1", uport);
	int d = h_dgram_socket(&u, NULL);
	cr_assert(d >= 0);
	cr_assert_eq(h_dgram_send(d, &u, "x", 1), 0);
	ssize_t n = h_dgram_recv(d, buf, sizeof(buf), H_DEADLINE_MS);
	close(d);
	cr_assert(n > 0 && strstr(buf, "fd 4"), "datagram answer: '%s'", n > 0 ? buf : "");
	/* SIGTERM reaches the program; the adapter exits with its status. */
	h_proc_kill(a, SIGTERM);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	h_finish();
}

Test(adapter, caller_fds_do_not_reach_the_program, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	/* The adapter starts with fds 3, 7 and 9 open (not close-on-exec): a shell
	 * opens them and execs it. */
	char *argv[] = {"/bin/sh", "-c", "exec 3</dev/null 7>/dev/null 9>/dev/null; exec \"$0\" \"$@\"", (char *)bin("HANDOFF_EXEC"),
	                "-s", h.ctl, "-S", "web", "--", (char *)bin("SDACTIVATED"), NULL};
	struct h_proc *a = h_spawn("adapter", NULL, argv);
	cr_assert(h_proc_wait_lines(a, "end", 1, H_DEADLINE_MS), "output:\n%s", a->out);
	cr_assert(strstr(a->out, "nfds 1\nfd 3 stream listening\n"), "%s", a->out);
	cr_assert_eq(h_proc_count(a, "extra "), 0, "fds leaked into the program:\n%s", a->out);
	h_proc_kill(a, SIGTERM);
	h_proc_wait_exit(a, H_DEADLINE_MS);
	h_finish();
}

Test(adapter, refusals_and_exec_failure, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service acc]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *a = adapter("acc", bin("SDACTIVATED"));
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x", st);
	char *log = h_read_file(a->log);
	cr_assert(log && strstr(log, "has no shared sockets: set mode = listen"), "%s", log ? log : "");
	free(log);
	h_finish();
}

Test(adapter, missing_program_exits_127, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n", port);
	h_start_daemon();
	struct h_proc *a = adapter("web", "/nonexistent/program");
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 127, "status %#x", st);
	char *log = h_read_file(a->log);
	cr_assert(log && strstr(log, "cannot execute /nonexistent/program"), "%s", log ? log : "");
	free(log);
	h_finish();
}

Test(adapter, real_systemd_socket_proxyd, .timeout = 20)
{
	const char *proxyd = "/lib/systemd/systemd-socket-proxyd";
	if (access(proxyd, X_OK) < 0)
		H_SKIP("%s is not installed (Debian's systemd package)", proxyd);
	int port = h_free_port(AF_INET), dport = h_free_port(AF_INET);
	h_config("[service day]\nlisten = tcp://127.0.0.1:%d\nbuiltin = daytime\n"
	         "[service px]\nlisten = tcp://127.0.0.1:%d\nmode = listen\n",
	         dport, port);
	h_start_daemon();
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", dport);
	char *argv[] = {(char *)bin("HANDOFF_EXEC"), "-s", h.ctl, "-S", "px", "--", (char *)proxyd, target, NULL};
	struct h_proc *a = h_spawn("proxyd", NULL, argv);
	char buf[128] = "";
	time_t t;
	/* The proxy starts asynchronously; the client waits in the backlog. */
	ask(port, buf, sizeof(buf));
	cr_assert(h_parse_daytime(buf, &t), "through systemd-socket-proxyd: '%s'", buf);
	h_proc_kill(a, SIGTERM);
	h_proc_wait_exit(a, H_DEADLINE_MS);
	h_finish();
}

Test(adapter, exec_activation_systemd, .timeout = 20)
{
	/* Programs handoffd leaves running become ours when it exits. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int port = h_free_port(AF_INET), aport = h_free_port(AF_INET);
	/* Accept=no style (listen mode) and Accept=yes style (accept mode). */
	h_config("[service no]\nlisten = tcp://127.0.0.1:%d\nmode = listen\nexec = %s\nexec_user = root\n"
	         "exec_activation = systemd\n"
	         "[service yes]\nlisten = tcp://127.0.0.1:%d\nexec = %s\nexec_user = root\nexec_activation = systemd\n",
	         port, bin("SDACTIVATED"), aport, bin("SDACTIVATED"));
	h_start_daemon();
	char buf[256];
	ask(port, buf, sizeof(buf));
	cr_assert(strstr(buf, "sdactivated ") && strstr(buf, "fd 3"), "listen mode: '%s'", buf);
	/* handoffd leaves a wait-style program running when it exits (as
	 * inetd does): the test stops it by its pid. */
	long wpid = strtol(buf + strlen("sdactivated "), NULL, 10);
	cr_assert(wpid > 0);
	h_track("sdactivated-wait", (pid_t)wpid);
	/* Accept=yes: fd 3 is the connection itself, not listening; the
	 * program's report goes to handoffd's stderr (fd 1 and 2), and its
	 * first check is LISTEN_PID. */
	struct h_addr a = h_addr_tcp("127.0.0.1", aport);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	cr_assert(H_WAIT_UNTIL(h_log_count("fd 3 stream -", NULL) >= 1, H_DEADLINE_MS), "no report in the log");
	cr_assert(h_log_count("listen_pid_ok 1", NULL) >= 2, "LISTEN_PID wrong in a spawned program");
	cr_assert(h_log_count("name 0 connection", NULL) >= 1);
	cr_assert_eq(h_log_count("extra ", NULL), 0, "fds leaked into a spawned program");
	/* It answers on the connection and exits. */
	cr_assert(h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS) > 0 && strstr(buf, "fd 3"), "'%s'", buf);
	close(fd);
	h_finish();
}
