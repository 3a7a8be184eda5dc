/* Integration: process-level behaviour of handoffd itself: privileges are
 * dropped after binding, SIGTERM waits for queued deliveries to be
 * acknowledged, and running out of file descriptors pauses accepting
 * (logged once per episode, no spinning) and recovers. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

TestSuite(daemon, .init = h_init, .fini = h_fini);

/* Value of a "Key:" line of /proc/PID/status (first number after it). */
static long proc_status_field(pid_t pid, const char *key)
{
	char path[64], *text, *p;
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = h_read_file(path);
	p = strstr(text, key);
	if (p)
		v = strtol(p + strlen(key), NULL, 10);
	free(text);
	return v;
}

/* Answer a client the way test-backend does, then close. */
static void raw_serve(int fd, const char *tag)
{
	char line[160];
	cr_assert(h_read_line(fd, line, sizeof(line), H_DEADLINE_MS) > 0);
	snprintf(line, sizeof(line), "%s pid=%d conn=0 svc=- peer=- local=- cred=-\n", tag, (int)getpid());
	cr_assert(h_send(fd, line) == 0);
	close(fd);
}

Test(daemon, drops_privileges_after_binding, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	/* nobody cannot create files in the 0755 root-owned test dir, so the
	 * sockets must have been made before the drop. */
	h_config("user = nobody\n[service prv]\nlisten = tcp://127.0.0.1:%d\nlisten = unix:%s/prv.sock\n", port,
	         h.dir);
	h_start_daemon();
	pid_t pid = h.daemon->pid;
	cr_assert(H_WAIT_UNTIL(proc_status_field(pid, "Uid:") == H_NOBODY_UID, H_DEADLINE_MS),
	          "handoffd still runs as uid %ld", proc_status_field(pid, "Uid:"));
	cr_assert_eq(proc_status_field(pid, "Gid:"), H_NOGROUP_GID);
	/* Groups: only nogroup (initgroups for nobody), never root's. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *st = h_read_file(path), *g = strstr(st, "Groups:");
	cr_assert(g && strtol(g + 7, NULL, 10) != 0, "supplementary groups kept root's: %.40s", g ? g : "");
	free(st);

	/* Still serves on what it bound as root, to a root backend. */
	struct h_proc *b = h_backend("prv", 4, NULL, NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char buf[512];
	struct h_answer ans;
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert(h_parse_answer(buf, &ans) && ans.pid == b->pid, "'%s'", buf);
	char upath[128];
	snprintf(upath, sizeof(upath), "%s/prv.sock", h.dir);
	struct h_addr u = h_addr_unix(upath);
	cr_assert(h_request(&u, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	h_finish();
}

Test(daemon, sigterm_waits_for_queued_deliveries, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	/* A long shutdown_timeout: the daemon must exit because everything was
	 * acknowledged, not because the timeout ran out. */
	h_config("shutdown_timeout = 30s\n[service q]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int raw = h_raw_register("q", 2, NULL);

	struct h_clients cs;
	h_clients_open(&cs, &a, 2);
	h_clients_run(&cs, 0);
	int c1 = h_raw_delivery(raw, NULL);
	int c2 = h_raw_delivery(raw, NULL);

	/* Two deliveries unacknowledged: SIGTERM must wait for them. */
	h_proc_kill(h.daemon, SIGTERM);
	cr_assert(h_log_wait(H_DEADLINE_MS, "no longer accepting", NULL));
	cr_assert(!H_WAIT_UNTIL(h_proc_exited(h.daemon), 300), "handoffd exited with deliveries unacknowledged");
	/* New connections are refused: the listener is closed. */
	cr_assert(h_connect(&a, NULL, 1000) < 0, "a connection was accepted after SIGTERM");

	h_raw_ack(raw, 2, 0);
	int st = h_proc_wait_exit(h.daemon, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "handoffd status 0x%x", st);
	cr_assert_eq(h_log_count("shutdown_timeout reached", NULL), 0);

	/* The connections are the backend's now and still work. */
	raw_serve(c1, "raw");
	raw_serve(c2, "raw");
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), 2);
	cr_assert_eq(h_clients_answered(&cs), 2);
	h_clients_close(&cs);
	close(raw);
	h_finish();
}

Test(daemon, fd_exhaustion_pauses_and_recovers, .timeout = 30)
{
	int port = h_free_port(AF_INET);
	h_config("[service fd]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int raw = h_raw_register("fd", 64, NULL);

	/* Leave handoffd room for three more descriptors only. Each connection
	 * it holds unacknowledged costs one. */
	int limit = h_nofile_leaving(h.daemon->pid, 3);
	cr_assert(limit > 0);
	struct rlimit rl = {.rlim_cur = (rlim_t)limit, .rlim_max = (rlim_t)limit};
	cr_assert(prlimit(h.daemon->pid, RLIMIT_NOFILE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));

	enum { N = 10 };
	struct h_clients cs;
	h_clients_open(&cs, &a, N);
	h_clients_run(&cs, 0);
	int fds[N], got = 0;
	while (got < 3)
		fds[got++] = h_raw_delivery(raw, NULL);
	cr_assert(h_log_wait(H_DEADLINE_MS, "Too many open files", "pausing", NULL),
	          "no EMFILE message in the log");
	/* Paused, not spinning: a few retries (every 250 ms, at debug level)
	 * in a second, and one message for the whole episode. */
	cr_assert(h_log_wait(H_DEADLINE_MS, "retrying accept", "retry 3)", NULL), "no retries");
	int retries = h_log_count("retrying accept", NULL);
	cr_assert(retries <= 12, "%d retries in about a second: spinning?", retries);
	cr_assert_eq(h_log_count("Too many open files", NULL), 1, "the episode is logged once");

	/* Acknowledge (handoffd closes its copies): accepting resumes and every
	 * other client is delivered. */
	h_raw_ack(raw, 3, 0);
	while (got < N) {
		fds[got++] = h_raw_delivery(raw, NULL);
		h_raw_ack(raw, 1, 0);
	}
	for (int i = 0; i < N; i++)
		raw_serve(fds[i], "raw");
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS), N);
	cr_assert_eq(h_clients_answered(&cs), N);
	/* Each episode (the slow acknowledgements above may cause another) has
	 * one message at its start and one at its end. */
	cr_assert(h_log_wait(H_DEADLINE_MS, "file descriptors available again", NULL));
	cr_assert(H_WAIT_UNTIL(h_log_count("Too many open files", NULL) ==
	                           h_log_count("file descriptors available again", NULL),
	                       H_DEADLINE_MS),
	          "%d episodes started, %d ended", h_log_count("Too many open files", NULL),
	          h_log_count("file descriptors available again", NULL));
	h_clients_close(&cs);
	close(raw);
	h_finish();
}

/* Run a second handoffd on h.conf to completion; its exit code and output. */
static int second_daemon(char **out)
{
	char *argv[] = {getenv("HANDOFFD"), (char *)"-f", h.conf, NULL};
	return h_run(NULL, out, H_DEADLINE_MS, argv);
}

/* Socket files: a live one (another handoffd, or any server, even one whose
 * backlog is full) is never taken over; one left behind by a killed
 * handoffd is replaced; a path that is not a socket is refused. */
Test(daemon, socket_files_live_stale_and_foreign, .timeout = 30)
{
	char lpath[128], busy[96], plain[128];
	snprintf(lpath, sizeof(lpath), "%s/svc.sock", h.dir);
	h_config("[service sf]\nlisten = unix:%s\n", lpath);
	struct h_proc *d = h_start_daemon();
	struct h_proc *b = h_backend("sf", 2, NULL, NULL);
	struct h_addr a = h_addr_unix(lpath);

	/* 1. A second handoffd on the same files: refused, the first goes on. */
	char *out = NULL;
	int rc = second_daemon(&out);
	cr_assert(rc == 3 && strstr(out, "a live process"), "second handoffd: exit %d, '%s'", rc, out);
	free(out);
	char buf[512];
	struct h_answer ans;
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0 && h_parse_answer(buf, &ans) &&
	          ans.pid == b->pid, "the first handoffd stopped serving: '%s'", buf);

	/* 2. Killed: its socket files stay behind and the next one replaces them. */
	h_proc_kill(d, SIGKILL);
	cr_assert(h_proc_wait_exit(d, H_DEADLINE_MS) != -1);
	h_proc_stop(b, H_DEADLINE_MS);
	struct stat st;
	cr_assert(stat(h.ctl, &st) == 0 && S_ISSOCK(st.st_mode) && stat(lpath, &st) == 0, "no socket files left behind");
	h_start_daemon();
	b = h_backend("sf", 2, NULL, NULL);
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0 && h_parse_answer(buf, &ans) &&
	          ans.pid == b->pid, "the restarted handoffd does not serve: '%s'", buf);

	/* 3. A foreign server whose backlog is full: the probe must not wait
	 * for it (it would block forever) and must not take it over. */
	snprintf(busy, sizeof(busy), "%s/busy.sock", h.dir);
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", busy);
	cr_assert(srv >= 0 && bind(srv, (struct sockaddr *)&un, sizeof(un)) == 0 && listen(srv, 0) == 0);
	int fill[4], nfill = 0;
	for (; nfill < 4; nfill++) {
		fill[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		cr_assert(fill[nfill] >= 0);
		if (connect(fill[nfill], (struct sockaddr *)&un, sizeof(un)) < 0) {
			cr_assert(errno == EAGAIN, "filling the backlog: %s", strerror(errno));
			close(fill[nfill]);
			break;
		}
	}
	snprintf(plain, sizeof(plain), "%s/plain.sock", h.dir);
	FILE *f = fopen(plain, "we");
	cr_assert(f);
	fclose(f);
	/* handoffd -t does not bind; the real start does, and fails at once. */
	char *save = h_read_file(h.conf);
	snprintf(h.ctl, sizeof(h.ctl), "%s/other.sock", h.dir);
	h_config("[service busy]\nlisten = unix:%s\n", busy);
	rc = second_daemon(&out);
	cr_assert(rc == 3 && strstr(out, "a live process is listening there"), "busy server: exit %d, '%s'", rc, out);
	free(out);
	h_config("[service plain]\nlisten = unix:%s\n", plain);
	rc = second_daemon(&out);
	cr_assert(rc == 3 && strstr(out, "the path exists and is not a socket"), "regular file: exit %d, '%s'", rc, out);
	free(out);
	cr_assert(stat(busy, &st) == 0 && S_ISSOCK(st.st_mode) && stat(plain, &st) == 0 && S_ISREG(st.st_mode),
	          "a file that was not handoffd's was removed");
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(srv);
	h_config_raw(save);
	free(save);
	snprintf(h.ctl, sizeof(h.ctl), "%s/control.sock", h.dir);
	h_finish();
}

/* handoffd raises its own soft descriptor limit to the hard one (every
 * backend and waiting connection is a descriptor) and gives the programs
 * it starts the soft limit it was started with. */
Test(daemon, nofile_raised_for_itself_not_for_programs, .timeout = 15)
{
	if (h_valgrind())
		H_SKIP("valgrind emulates RLIMIT_NOFILE for the program it runs (its setrlimit never reaches the kernel)");
	struct rlimit orig, low;
	cr_assert(getrlimit(RLIMIT_NOFILE, &orig) == 0);
	if (orig.rlim_max != RLIM_INFINITY && orig.rlim_max < 512)
		H_SKIP("the hard RLIMIT_NOFILE (%llu) leaves nothing to raise", (unsigned long long)orig.rlim_max);
	low = orig;
	low.rlim_cur = 256;
	cr_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
	int port = h_free_port(AF_INET);
	h_config("[service lim]\nlisten = tcp://127.0.0.1:%d\nexec = %s\nexec_user = root\n", port, getenv("FDCHECK"));
	h_start_daemon();
	cr_assert(setrlimit(RLIMIT_NOFILE, &orig) == 0);

	struct rlimit d;
	cr_assert(prlimit(h.daemon->pid, RLIMIT_NOFILE, NULL, &d) == 0);
	cr_assert_eq(d.rlim_cur, orig.rlim_max, "handoffd's soft limit %llu, hard %llu", (unsigned long long)d.rlim_cur,
	             (unsigned long long)d.rlim_max);

	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	static char buf[16384];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && strstr(buf, "\nend\n"), "report:\n%s", buf);
	char want[64];
	if (orig.rlim_max == RLIM_INFINITY)
		snprintf(want, sizeof(want), "\nnofile 256 inf\n");
	else
		snprintf(want, sizeof(want), "\nnofile 256 %llu\n", (unsigned long long)orig.rlim_max);
	cr_assert(strstr(buf, want), "the program's limit is not the one handoffd started with (%s):\n%s", want + 1, buf);
	h_finish();
}
