/* Integration: handoffd as a systemd service.
 *
 * - socket activation by systemd's own tool (systemd-socket-activate, from
 *   Debian's systemd package): a passed socket matched by its name
 *   (FileDescriptorName= = the service) replaces the listener's address, one
 *   matched by address is used as is, one that matches nothing is logged and
 *   closed, a listener nothing was passed for is bound as usual;
 * - sd_notify on a NOTIFY_SOCKET the test listens on: READY=1 and STATUS=
 *   once it serves, RELOADING=1 with MONOTONIC_USEC= then READY=1 around a
 *   reload (a refused one included), STOPPING=1 on SIGTERM, WATCHDOG=1 when
 *   WATCHDOG_USEC is set, MAINPID= of the new process after an upgrade;
 * - the activation protocol's checks with hand-made LISTEN_FDS: LISTEN_PID
 *   or LISTEN_PIDFDID of another process (the sockets are not used: handoffd
 *   binds its own), the right LISTEN_PIDFDID, a LISTEN_FDS count that lies,
 *   the control socket passed by its name or by its address. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static void init(void)
{
	h_init();
	h_subreaper();
}

TestSuite(activation, .init = init, .fini = h_fini);

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"

/* A listening TCP socket of the test's own on 127.0.0.1:port. */
static int tcp_listener(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a.ss, a.len), 0, "bind %s: %s", a.text, strerror(errno));
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

/* A listening SOCK_SEQPACKET Unix socket at path (a control socket). */
static int seqpacket_listener(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct h_addr a = h_addr_unix(path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a.ss, a.len), 0, "bind %s: %s", path, strerror(errno));
	cr_assert_eq(chmod(path, 0666), 0);
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

/* One request to a; the answer must come from service svc through local
 * address local (NULL: any). */
static void request_ok(const struct h_addr *a, const char *svc, const char *local)
{
	char buf[512];
	ssize_t n = h_request(a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0, "request to %s: %s", a->text, n < 0 ? strerror((int)-n) : "no answer");
	struct h_answer ans;
	cr_assert(h_parse_answer(buf, &ans), "bad answer '%s'", buf);
	cr_assert_str_eq(ans.svc, svc);
	if (local)
		cr_assert_str_eq(ans.local, local);
}

static void assert_refused(int port, const char *why)
{
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	if (fd >= 0)
		close(fd);
	cr_assert_eq(fd, -ECONNREFUSED, "%s: connecting to %s: %s", why, a.text,
	             fd >= 0 ? "accepted" : strerror(-fd));
}

static uint64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Read notifications until one has want; the ones before it must not
 * have any of the keys in forbidden (NULL-terminated, or NULL). Returns the
 * one with want in *m. STATUS= lines seen on the way are copied to status
 * (if not NULL). */
static void notify_expect(int ns, const char *want, const char *const *forbidden, struct h_notify_msg *m,
                          char *status, size_t status_size)
{
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	for (;;) {
		uint64_t now = h_now_ms();
		ssize_t n = h_notify_recv(ns, m, now >= end ? 0 : (int)(end - now));
		cr_assert(n >= 0, "no %s on NOTIFY_SOCKET: %s", want, strerror((int)-n));
		if (status)
			h_notify_has(m, "STATUS=", status, status_size);
		if (h_notify_has(m, want, NULL, 0))
			return;
		for (int i = 0; forbidden && forbidden[i]; i++)
			cr_assert(!h_notify_has(m, forbidden[i], NULL, 0), "%s before %s: '%s'", forbidden[i], want, m->text);
	}
}

Test(activation, systemd_socket_activate_and_notify, .timeout = 40)
{
	if (access(SOCKET_ACTIVATE, X_OK) < 0)
		H_SKIP("%s is not installed (Debian's systemd package)", SOCKET_ACTIVATE);
	/* by_name: passed with the name "web", for web's listener on unbound;
	 * by_addr: passed with a name nothing has, at api's first address;
	 * own: api's second address, not passed: handoffd binds it;
	 * stray: passed, matches nothing. */
	int by_name = h_free_port(AF_INET), unbound = h_free_port(AF_INET), by_addr = h_free_port(AF_INET);
	int own = h_free_port(AF_INET), stray = h_free_port(AF_INET);
	char npath[128], nenv[160];
	int ns = h_notify_open(npath, sizeof(npath));
	snprintf(nenv, sizeof(nenv), "NOTIFY_SOCKET=%s", npath);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n"
	         "[service api]\nlisten = tcp://127.0.0.1:%d, tcp://127.0.0.1:%d\n",
	         unbound, by_addr, own);
	char l1[32], l2[32], l3[32];
	snprintf(l1, sizeof(l1), "127.0.0.1:%d", by_name);
	snprintf(l2, sizeof(l2), "127.0.0.1:%d", by_addr);
	snprintf(l3, sizeof(l3), "127.0.0.1:%d", stray);
	char *argv[] = {(char *)SOCKET_ACTIVATE, "-l", l1, "-l", l2, "-l", l3, "--fdname=web:whatever:stray",
	                "-E", nenv, (char *)getenv("HANDOFFD"), "-f", h.conf, NULL};
	cr_assert(argv[10]);
	/* Named "handoffd": its stderr is the daemon log the harness reads. */
	struct h_proc *d = h_spawn("handoffd", NULL, argv);
	d->is_daemon = true;
	h.daemon = d;
	/* It listens, and starts the program on the first connection. */
	char listening[64];
	snprintf(listening, sizeof(listening), "Listening on %s", l3);
	cr_assert(h_log_wait(H_DEADLINE_MS, listening, NULL), "%s does not listen", SOCKET_ACTIVATE);
	struct h_addr first = h_addr_tcp("127.0.0.1", by_name);
	struct h_clients cs;
	h_clients_open(&cs, &first, 1);
	h_clients_run(&cs, 0);

	/* READY=1, from handoffd (systemd-socket-activate execs it: same pid),
	 * with a STATUS= line before or with it. */
	struct h_notify_msg m;
	char status[256] = "";
	const char *no_ready_yet[] = {"STOPPING=1", "RELOADING=1", NULL};
	notify_expect(ns, "READY=1", no_ready_yet, &m, status, sizeof(status));
	cr_assert_eq(m.pid, d->pid, "READY=1 came from pid %d", (int)m.pid);
	cr_assert(status[0] && !strchr(status, '\n'), "STATUS= missing or not one line: '%s'", status);
	cr_assert(strstr(status, "2 services") && strstr(status, "3 listeners"), "STATUS=%s", status);
	cr_assert(h_log_wait(H_DEADLINE_MS, "3 sockets passed in (LISTEN_FDS)", NULL));

	char want[200];
	snprintf(want, sizeof(want), "using the passed socket named 'web' (127.0.0.1:%d) instead of binding 127.0.0.1:%d",
	         by_name, unbound);
	cr_assert_eq(h_log_count("service 'web'", want, NULL), 1, "web's socket was not matched by its name");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d for 'api' (socket passed in)", by_addr);
	cr_assert_eq(h_log_count(want, NULL), 1, "api's socket was not matched by its address");
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d for 'api'", own);
	cr_assert_eq(h_log_count(want, NULL), 1, "api's second listener was not bound");
	cr_assert_eq(h_log_count(want, "passed in", NULL), 0);
	snprintf(want, sizeof(want), "named 'stray' (127.0.0.1:%d) matches no listener", stray);
	cr_assert_eq(h_log_count(want, "closing it", NULL), 1, "the stray socket was not logged and closed");
	/* The stray socket is closed: nobody holds it now. Nor did handoffd
	 * bind the address the name match replaced. */
	assert_refused(stray, "the unmatched passed socket");
	assert_refused(unbound, "the address replaced by a passed socket");

	/* Served through the passed sockets and the bound one. */
	h_backend("web", 4, NULL, NULL);
	h_backend("api", 4, NULL, NULL);
	h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(h_clients_answered(&cs), 1, "the first client (the one that started handoffd) was not served");
	struct h_answer ans;
	cr_assert(h_parse_answer(cs.c[0].buf, &ans));
	cr_assert_str_eq(ans.svc, "web");
	cr_assert_str_eq(ans.local, l1);
	h_clients_close(&cs);
	struct h_addr a2 = h_addr_tcp("127.0.0.1", by_addr), a3 = h_addr_tcp("127.0.0.1", own);
	request_ok(&first, "web", l1);
	request_ok(&a2, "api", l2);
	request_ok(&a3, "api", NULL);

	/* SIGHUP: RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC, taken
	 * between our kill and our read), then READY=1 and nothing else first. */
	for (int round = 0; round < 2; round++) {
		if (round == 1) /* a configuration that does not load: refused, and still READY=1 */
			h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nbalance = sideways\n", unbound);
		uint64_t t0 = mono_usec();
		h_proc_kill(d, SIGHUP);
		const char *no_reload_yet[] = {"READY=1", "STOPPING=1", NULL};
		notify_expect(ns, "RELOADING=1", no_reload_yet, &m, NULL, 0);
		cr_assert_eq(m.pid, d->pid);
		char usec[32] = "";
		cr_assert(h_notify_has(&m, "MONOTONIC_USEC=", usec, sizeof(usec)), "RELOADING=1 without MONOTONIC_USEC: '%s'",
		          m.text);
		char *end;
		unsigned long long v = strtoull(usec, &end, 10);
		cr_assert(*usec && !*end && v >= t0 && v <= m.at_usec, "MONOTONIC_USEC=%s is not between %llu and %llu",
		          usec, (unsigned long long)t0, (unsigned long long)m.at_usec);
		status[0] = '\0';
		const char *no_ready_again[] = {"RELOADING=1", "STOPPING=1", NULL};
		notify_expect(ns, "READY=1", no_ready_again, &m, status, sizeof(status));
		if (round == 0) {
			cr_assert(strstr(status, "1 reloads"), "STATUS after the reload: '%s'", status);
		} else {
			cr_assert(h_log_wait(H_DEADLINE_MS, "reload refused", "balance", NULL));
		}
	}
	request_ok(&first, "web", l1);

	/* SIGTERM: STOPPING=1, exit 0. */
	h_proc_kill(d, SIGTERM);
	notify_expect(ns, "STOPPING=1", NULL, &m, NULL, 0);
	cr_assert_eq(m.pid, d->pid);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	close(ns);
	h_finish();
}

/* handoffd started with one passed TCP socket named "web" for web's
 * listener at another port (matched by name if used at all). */
struct passed {
	int port;     /* the passed socket's */
	int own;      /* web's configured address */
	int fd;       /* the test's copy, closed once handoffd runs */
};

static struct h_proc *start_with_passed(struct passed *p, pid_t listen_pid, const char *pidfdid, bool pidfdid_self)
{
	p->port = h_free_port(AF_INET);
	p->own = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", p->own);
	p->fd = tcp_listener(p->port);
	struct h_listen ls = {.fds = &p->fd, .nfds = 1, .pid = listen_pid, .names = "web", .pidfdid = pidfdid,
	                      .pidfdid_self = pidfdid_self};
	char *args[] = {"-f", h.conf, NULL};
	struct h_proc *d = h_start_daemon_listen(args, &ls);
	close(p->fd);
	p->fd = -1;
	h_backend("web", 4, NULL, NULL);
	return d;
}

/* The passed socket was not used: handoffd bound web's own address. */
static void assert_ignored(const struct passed *p, const char *why)
{
	cr_assert(h_log_wait(H_DEADLINE_MS, why, "ignoring", NULL), "no log line saying the sockets are ignored");
	cr_assert_eq(h_log_count("passed in", "LISTEN_FDS", NULL), 0);
	cr_assert_eq(h_log_count("using the passed socket", NULL), 0);
	cr_assert_eq(h_log_count("socket passed in", NULL), 0);
	char want[64];
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d for 'web'", p->own);
	cr_assert_eq(h_log_count(want, NULL), 1);
	struct h_addr a = h_addr_tcp("127.0.0.1", p->own);
	char local[32];
	snprintf(local, sizeof(local), "127.0.0.1:%d", p->own);
	request_ok(&a, "web", local);
}

Test(activation, listen_pid_of_another_process_is_ignored, .timeout = 30)
{
	struct passed p;
	/* The test's own pid: the sockets were meant for the test. */
	start_with_passed(&p, getpid(), NULL, false);
	char why[64];
	snprintf(why, sizeof(why), "LISTEN_PID=%d is not us", (int)getpid());
	assert_ignored(&p, why);
	h_finish();
}

/* The inode of a pidfd for pid (pidfs), or 0 when pidfds all share one
 * inode on this kernel (no pidfs: LISTEN_PIDFDID cannot tell processes apart
 * and systemd does not set it). */
static unsigned long long pidfd_inode(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return 0;
	struct stat st;
	int rc = fstat(fd, &st);
	close(fd);
	return rc == 0 ? (unsigned long long)st.st_ino : 0;
}

static bool have_pidfs(void)
{
	unsigned long long a = pidfd_inode(getpid()), b = pidfd_inode(getppid());
	return a && b && a != b;
}

Test(activation, listen_pidfdid_of_another_process_is_ignored, .timeout = 30)
{
	if (!have_pidfs())
		H_SKIP("pidfds have no per-process inode on this kernel (no pidfs)");
	if (h_valgrind())
		H_SKIP("valgrind (3.19) fails pidfd_open with ENOSYS: handoffd cannot check LISTEN_PIDFDID under it");
	char id[32];
	snprintf(id, sizeof(id), "%llu", pidfd_inode(getpid()));
	struct passed p;
	/* LISTEN_PID is handoffd's own, LISTEN_PIDFDID the test's. */
	start_with_passed(&p, 0, id, false);
	char why[96];
	snprintf(why, sizeof(why), "LISTEN_PIDFDID=%s does not name this process", id);
	cr_assert(h_log_wait(H_DEADLINE_MS, why, NULL));
	assert_ignored(&p, "LISTEN_PIDFDID");
	h_finish();
}

Test(activation, listen_pidfdid_of_handoffd_is_accepted, .timeout = 30)
{
	if (!have_pidfs())
		H_SKIP("pidfds have no per-process inode on this kernel (no pidfs)");
	struct passed p;
	start_with_passed(&p, 0, NULL, true);
	cr_assert(h_log_wait(H_DEADLINE_MS, "1 socket passed in (LISTEN_FDS)", NULL));
	char want[160];
	snprintf(want, sizeof(want), "using the passed socket named 'web' (127.0.0.1:%d) instead of binding 127.0.0.1:%d",
	         p.port, p.own);
	cr_assert_eq(h_log_count(want, NULL), 1);
	struct h_addr a = h_addr_tcp("127.0.0.1", p.port);
	char local[32];
	snprintf(local, sizeof(local), "127.0.0.1:%d", p.port);
	request_ok(&a, "web", local);
	assert_refused(p.own, "the address replaced by the passed socket");
	h_finish();
}

Test(activation, listen_fds_that_lie_about_their_count, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	int fd = tcp_listener(h_free_port(AF_INET));
	/* LISTEN_FDS=3, but only fd 3 is open. */
	struct h_listen ls = {.fds = &fd, .nfds = 1, .lie_count = 3, .names = "web"};
	char *argv[] = {(char *)getenv("HANDOFFD"), "-f", h.conf, NULL};
	cr_assert(argv[0]);
	struct h_proc *d = h_spawn_listen("handoffd", argv, &ls);
	close(fd);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 3, "handoffd: status 0x%x (want exit 3)", st);
	cr_assert_eq(h_log_count("LISTEN_FDS=3 but fd 4 is not open", NULL), 1);
	cr_assert(access(h.ctl, F_OK) < 0, "the control socket was made before the check");
	h_finish();
}

/* The control socket passed in: by its name (bound elsewhere than the
 * configuration says), or by its address (the configured path, another
 * name). */
static void control_passed(bool by_name)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	char configured[sizeof(h.ctl)];
	memcpy(configured, h.ctl, sizeof(configured));
	if (by_name)
		snprintf(h.ctl, sizeof(h.ctl), "%s/passed.sock", h.dir);
	int fd = seqpacket_listener(h.ctl);
	struct stat before;
	cr_assert_eq(stat(h.ctl, &before), 0);
	struct h_listen ls = {.fds = &fd, .nfds = 1, .names = by_name ? "handoffd-control" : "something-else"};
	char *args[] = {"-f", h.conf, NULL};
	struct h_proc *d = h_start_daemon_listen(args, &ls);
	close(fd);
	char want[200];
	snprintf(want, sizeof(want), "control socket %s passed in", configured);
	cr_assert(h_log_wait(H_DEADLINE_MS, want, NULL), "the passed control socket was not used");
	if (by_name)
		cr_assert(access(configured, F_OK) < 0, "handoffd made its own control socket %s too", configured);
	struct stat after;
	cr_assert_eq(stat(h.ctl, &after), 0);
	cr_assert(before.st_ino == after.st_ino && after.st_mode == before.st_mode,
	          "the passed control socket's file was replaced or changed");
	/* It works: status, and a backend that registers through it. */
	cr_assert_eq(h_daemon_pid(), d->pid);
	h_backend("web", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	request_ok(&a, "web", NULL);
	cr_assert_eq(h_log_count("matches no listener", NULL), 0);
	h_finish();
}

Test(activation, control_socket_passed_by_name, .timeout = 30)
{
	control_passed(true);
}

Test(activation, control_socket_passed_by_address, .timeout = 30)
{
	control_passed(false);
}

/* handoffd started with NOTIFY_SOCKET (and more environment), READY=1 read. */
static struct h_proc *start_notified(int *ret_ns, char *const extra_env[])
{
	char npath[128], nenv[160];
	int ns = h_notify_open(npath, sizeof(npath));
	snprintf(nenv, sizeof(nenv), "NOTIFY_SOCKET=%s", npath);
	char *env[8] = {nenv};
	for (int i = 0; extra_env && extra_env[i] && i < 6; i++)
		env[i + 1] = extra_env[i];
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_listen ls = {.env = env};
	char *args[] = {"-f", h.conf, NULL};
	struct h_proc *d = h_start_daemon_listen(args, &ls);
	struct h_notify_msg m;
	cr_assert(h_notify_wait(ns, "READY=1", &m, H_DEADLINE_MS), "no READY=1");
	cr_assert_eq(m.pid, d->pid);
	*ret_ns = ns;
	return d;
}

Test(activation, mainpid_after_an_upgrade, .timeout = 40)
{
	int ns;
	struct h_proc *d = start_notified(&ns, NULL);
	h_proc_kill(d, SIGUSR2);
	/* The new process says READY=1 (it serves), then the old one says
	 * MAINPID= of the new one. */
	pid_t ready_from = -1, mainpid = -1, sent_by = -1;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (mainpid < 0 && h_now_ms() < end) {
		struct h_notify_msg m;
		if (h_notify_recv(ns, &m, 100) < 0)
			continue;
		cr_assert(!h_notify_has(&m, "WATCHDOG=1", NULL, 0), "WATCHDOG=1 without WATCHDOG_USEC");
		if (h_notify_has(&m, "READY=1", NULL, 0) && m.pid != d->pid)
			ready_from = m.pid;
		char v[32];
		if (h_notify_has(&m, "MAINPID=", v, sizeof(v))) {
			mainpid = (pid_t)strtol(v, NULL, 10);
			sent_by = m.pid;
		}
	}
	cr_assert(mainpid > 0, "no MAINPID= on NOTIFY_SOCKET after SIGUSR2");
	cr_assert_eq(sent_by, d->pid, "MAINPID= came from pid %d, not from the old handoffd %d", (int)sent_by,
	             (int)d->pid);
	cr_assert_neq(mainpid, d->pid);
	cr_assert_eq(ready_from, mainpid, "READY=1 before MAINPID=%d came from pid %d", (int)mainpid, (int)ready_from);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "old handoffd: status 0x%x", st);
	cr_assert_eq(h_daemon_pid(), mainpid, "status does not show the pid MAINPID= gave");
	struct h_proc *n = h_adopt_daemon(mainpid);
	/* The new one is the service's main process now: its STOPPING=1. */
	h_proc_kill(n, SIGTERM);
	struct h_notify_msg m;
	bool stopping = false;
	while (!stopping && h_notify_recv(ns, &m, H_DEADLINE_MS) >= 0)
		stopping = h_notify_has(&m, "STOPPING=1", NULL, 0) && m.pid == mainpid;
	cr_assert(stopping, "no STOPPING=1 from the new handoffd");
	st = h_proc_wait_exit(n, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "new handoffd: status 0x%x", st);
	close(ns);
	h_finish();
}

Test(activation, watchdog_keepalives, .timeout = 30)
{
	/* 300 ms: systemd would want a keep-alive at least that often. */
	char *env[] = {"WATCHDOG_USEC=300000", NULL};
	int ns;
	struct h_proc *d = start_notified(&ns, env);
	uint64_t last = 0, worst = 0;
	int seen = 0;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (seen < 5 && h_now_ms() < end) {
		struct h_notify_msg m;
		if (h_notify_recv(ns, &m, 100) < 0 || !h_notify_has(&m, "WATCHDOG=1", NULL, 0))
			continue;
		cr_assert_eq(m.pid, d->pid);
		if (last && m.at_usec - last > worst)
			worst = m.at_usec - last;
		last = m.at_usec;
		seen++;
	}
	cr_assert_eq(seen, 5, "%d WATCHDOG=1 in %d ms with WATCHDOG_USEC=300000", seen, H_DEADLINE_MS);
	cr_assert(worst < 300000, "%llu us between two keep-alives (WATCHDOG_USEC=300000)", (unsigned long long)worst);
	cr_assert(h_log_wait(H_DEADLINE_MS, "systemd watchdog", NULL));
	close(ns);
	h_finish();
}
