/* Integration: upgrading handoffd in place (SIGUSR2, handoffctl upgrade)
 * under continuous client load refuses and loses nothing; a failing
 * upgrade leaves the old handoffd serving; socket activation through
 * systemd-socket-activate with a NOTIFY_SOCKET the test reads. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void init(void)
{
	h_init();
	/* The new handoffd is the old one's child: when the old one exits it
	 * becomes ours, so the harness can wait for it and stop it. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

TestSuite(upgrade, .init = init, .fini = h_fini);

/* handoffd's pid as its status says, or -1. */
static long daemon_pid(void)
{
	char *out = NULL;
	if (h_ctl(NULL, &out, "--json", "status", NULL) != 0) {
		free(out);
		return -1;
	}
	const char *p = out ? strstr(out, "\"pid\":") : NULL;
	long pid = p ? strtol(p + 6, NULL, 10) : -1;
	free(out);
	return pid;
}

/* Requests one after another until stop() says so; every one must be
 * answered. Returns how many were made. */
static int load(const struct h_addr *a, int n, int (*between)(int i))
{
	char buf[512];
	for (int i = 0; i < n; i++) {
		ssize_t r = h_request(a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
		cr_assert(r > 0, "request %d of %d: %s", i, n, r < 0 ? strerror((int)-r) : "no answer");
		struct h_answer ans;
		cr_assert(h_parse_answer(buf, &ans), "request %d: bad answer '%s'", i, buf);
		if (between)
			between(i);
	}
	return n;
}

static pid_t old_pid;

static int usr2_at_50(int i)
{
	if (i == 50)
		kill(old_pid, SIGUSR2);
	return 0;
}

Test(upgrade, sigusr2_under_load_refuses_nothing, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	old_pid = d->pid;
	h_backend("web", 8, NULL, "--reconnect", NULL);
	h_backend("web", 8, NULL, "--reconnect", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	load(&a, 300, usr2_at_50);
	/* The old one handed over and exited 0; the new one serves. */
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "old handoffd: status %#x", st);
	long npid = daemon_pid();
	cr_assert(npid > 0 && npid != old_pid, "status pid %ld (old %d)", npid, (int)old_pid);
	h.daemon = h_track("handoffd-new", (pid_t)npid);
	h.daemon->is_daemon = true;
	cr_assert(h_log_wait(H_DEADLINE_MS, "upgrade: took over from the old handoffd", NULL));
	/* Both backends registered again with the new process. */
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "backends") == 2, H_DEADLINE_MS), "backends: %lld",
	          h_status_service("web", "backends"));
	load(&a, 50, NULL);
	h_finish();
}

Test(upgrade, handoffctl_upgrade_and_a_broken_config, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/u.sock", h.dir);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d, unix:%s\n", port, sock);
	struct h_proc *d = h_start_daemon();
	h_backend("web", 8, NULL, "--reconnect", NULL);

	/* A broken configuration: refused, the old handoffd keeps serving. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nbalance = sideways\n", port);
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "upgrade", NULL);
	cr_assert_eq(rc, 1, "handoffctl upgrade: %d\n%s", rc, out ? out : "");
	cr_assert(out && strstr(out, "balance"), "%s", out ? out : "");
	free(out);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	load(&a, 5, NULL);
	cr_assert_eq(daemon_pid(), d->pid);

	/* A good one: the new handoffd takes over; the unix socket file and
	 * the control socket stay. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d, unix:%s\n", port, sock);
	out = NULL;
	rc = h_ctl(NULL, &out, "upgrade", NULL);
	cr_assert_eq(rc, 0, "handoffctl upgrade: %d\n%s", rc, out ? out : "");
	cr_assert(out && strstr(out, "upgraded: the new handoffd is pid"), "%s", out ? out : "");
	free(out);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "old handoffd: status %#x", st);
	long npid = daemon_pid();
	cr_assert(npid > 0 && npid != d->pid);
	h.daemon = h_track("handoffd-new", (pid_t)npid);
	h.daemon->is_daemon = true;
	cr_assert_eq(access(sock, F_OK), 0, "the unix listener's file was removed");
	struct h_addr u = h_addr_unix(sock);
	load(&u, 5, NULL);
	load(&a, 5, NULL);
	h_finish();
}

Test(upgrade, waiting_connections_move_to_the_new_handoffd, .timeout = 40)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	/* No backend: clients wait (in the backlog). */
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 5);
	char *out = NULL;
	cr_assert_eq(h_ctl(NULL, &out, "upgrade", NULL), 0, "%s", out ? out : "");
	free(out);
	h_proc_wait_exit(d, H_DEADLINE_MS);
	long npid = daemon_pid();
	cr_assert(npid > 0 && npid != d->pid);
	h.daemon = h_track("handoffd-new", (pid_t)npid);
	h.daemon->is_daemon = true;
	h_backend("web", 8, NULL, NULL);
	h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(h_clients_answered(&cs), 5, "waiting clients lost in the upgrade");
	h_clients_close(&cs);
	h_finish();
}

Test(upgrade, socket_activation_notify_and_upgrade, .timeout = 40)
{
	const char *sa = "/usr/bin/systemd-socket-activate";
	if (access(sa, X_OK) < 0)
		H_SKIP("%s is not installed (Debian's systemd package)", sa);
	int port = h_free_port(AF_INET), stray = h_free_port(AF_INET);
	/* NOTIFY_SOCKET: a datagram socket of our own. */
	char npath[100];
	snprintf(npath, sizeof(npath), "%.80s/notify.sock", h.dir);
	int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", npath);
	cr_assert_eq(bind(ns, (struct sockaddr *)&un, sizeof(un)), 0);
	setenv("NOTIFY_SOCKET", npath, 1);
	setenv("WATCHDOG_USEC", "400000", 1); /* keep-alives every 200 ms */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	char l1[64], l2[64];
	snprintf(l1, sizeof(l1), "127.0.0.1:%d", port);
	snprintf(l2, sizeof(l2), "127.0.0.1:%d", stray);
	char *argv[] = {(char *)sa, "-l", l1, "-l", l2, "--fdname=web:stray", "-E", "NOTIFY_SOCKET",
	                "-E", "WATCHDOG_USEC", getenv("HANDOFFD"), "-f", h.conf, NULL};
	struct h_proc *d = h_spawn("activated", NULL, argv);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	/* It listens first, and execs handoffd on the first connection. */
	cr_assert(H_WAIT_UNTIL(({
		char *t = h_read_file(d->log);
		bool ok = t && strstr(t, l2);
		free(t);
		ok;
	}), H_DEADLINE_MS), "systemd-socket-activate did not start listening");
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 1);
	char msg[512] = "";
	bool ready = false, stored = false;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (!ready && h_now_ms() < end) {
		if (!h_readable(ns, 100))
			continue;
		/* FDSTORE messages carry an fd: take it and close it. */
		char cbuf[CMSG_SPACE(sizeof(int) * 4)];
		struct iovec iov = {msg, sizeof(msg) - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(ns, &mh, MSG_CMSG_CLOEXEC);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++)
					close(((int *)CMSG_DATA(c))[k]);
		if (n > 0) {
			msg[n] = '\0';
			ready = strstr(msg, "READY=1") != NULL;
			if (strstr(msg, "FDSTORE=1") && strstr(msg, "FDNAME=handoffd-control"))
				stored = true;
		}
	}
	cr_assert(ready, "no READY=1 on NOTIFY_SOCKET (last: '%s')", msg);
	cr_assert(stored, "the control socket was not offered to the fd store");
	char *log = h_read_file(d->log);
	cr_assert(log && strstr(log, "(socket passed in)"), "the passed socket was not used:\n%s", log ? log : "");
	cr_assert(log && strstr(log, "named 'stray'") && strstr(log, "matches no listener"), "%s", log ? log : "");
	free(log);
	h_backend("web", 4, NULL, "--reconnect", NULL);
	h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(h_clients_answered(&cs), 1);
	h_clients_close(&cs);
	/* SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1. */
	h_proc_kill(d, SIGHUP);
	bool reloading = false, again = false;
	end = h_now_ms() + H_DEADLINE_MS;
	while (!(reloading && again) && h_now_ms() < end) {
		if (!h_readable(ns, 100))
			continue;
		ssize_t n = recv(ns, msg, sizeof(msg) - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = '\0';
		if (strstr(msg, "RELOADING=1") && strstr(msg, "MONOTONIC_USEC="))
			reloading = true;
		else if (reloading && strstr(msg, "READY=1"))
			again = true;
	}
	cr_assert(reloading && again, "reload notifications missing (last: '%s')", msg);

	/* An upgrade under load, still under the same NOTIFY_SOCKET: nothing
	 * refused, MAINPID= names the new process, the watchdog keeps going. */
	old_pid = d->pid;
	load(&a, 150, usr2_at_50);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "old handoffd: status %#x", st);
	long npid = daemon_pid();
	cr_assert(npid > 0 && npid != old_pid);
	struct h_proc *nd = h_track("handoffd-new", (pid_t)npid);
	bool mainpid = false, watchdog = false;
	char want[64];
	snprintf(want, sizeof(want), "MAINPID=%ld", npid);
	end = h_now_ms() + H_DEADLINE_MS;
	while (!(mainpid && watchdog) && h_now_ms() < end) {
		if (!h_readable(ns, 100))
			continue;
		char cbuf[CMSG_SPACE(sizeof(int) * 4)];
		struct iovec iov = {msg, sizeof(msg) - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(ns, &mh, MSG_CMSG_CLOEXEC);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++)
					close(((int *)CMSG_DATA(c))[k]);
		if (n <= 0)
			continue;
		msg[n] = '\0';
		mainpid |= strstr(msg, want) != NULL;
		watchdog |= strstr(msg, "WATCHDOG=1") != NULL;
	}
	cr_assert(mainpid, "no %s on NOTIFY_SOCKET", want);
	cr_assert(watchdog, "no WATCHDOG=1 although WATCHDOG_USEC was set");
	h_proc_kill(nd, SIGTERM);
	st = h_proc_wait_exit(nd, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	close(ns);
	h_finish();
}
