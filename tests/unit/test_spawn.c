/* Unit tests for src/daemon/spawn.c: real children on a real libuv loop.
 *
 * Each test builds a loop and a struct hd with only the loop set, calls
 * spawn_init(), starts children, runs the loop until what it waits for has
 * happened (a uv_check tests the condition after every poll, a uv_timer is
 * the deadline: no fixed sleeps), then spawn_close() and uv_loop_close()
 * must return 0. What a child got is read from the report of
 * tests/helpers/fdcheck ($FDCHECK, exported by make check; the tests that
 * need it skip when it is unset). fds are identified across processes by
 * st_dev:st_ino (fdcheck's "fdid" lines). Every test checks that it leaves
 * no fd open (TEST()).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "log.h"
#include "spawn.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* libuv opens a process-wide pipe (its signal lock) on the first
 * uv_loop_init(); open it before any test counts fds. */
__attribute__((constructor)) static void warm_libuv(void)
{
	uv_loop_t l;
	if (uv_loop_init(&l) == 0)
		uv_loop_close(&l);
}

/* ---- the rig: a loop, a bare hd, a spawner ---- */

static struct {
	uv_loop_t loop;
	struct hd hd;
} rig;

static void rig_open(void)
{
	memset(&rig, 0, sizeof(rig));
	cr_assert_eq(uv_loop_init(&rig.loop), 0);
	rig.hd.loop = &rig.loop;
	cr_assert_eq(spawn_init(&rig.hd), 0);
	cr_assert_not_null(rig.hd.spawner);
}

static void rig_close(void)
{
	spawn_close(&rig.hd);
	cr_assert_null(rig.hd.spawner, "spawn_close() must clear hd->spawner");
	uv_run(&rig.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&rig.loop), 0, "a handle was left open on the loop");
}

struct waiter {
	bool (*cond)(void *);
	void *arg;
	bool timed_out;
};

static void on_check(uv_check_t *c)
{
	struct waiter *w = c->data;
	if (w->cond(w->arg))
		uv_stop(c->loop);
}

static void on_deadline(uv_timer_t *t)
{
	struct waiter *w = t->data;
	w->timed_out = true;
	uv_stop(t->loop);
}

/* Run the loop until cond(arg) holds; false if timeout_ms passed first. */
static bool run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms)
{
	if (cond(arg))
		return true;
	struct waiter w = {cond, arg, false};
	uv_check_t chk;
	uv_timer_t tm;
	uv_check_init(&rig.loop, &chk);
	uv_timer_init(&rig.loop, &tm);
	chk.data = tm.data = &w;
	uv_check_start(&chk, on_check);
	uv_timer_start(&tm, on_deadline, timeout_ms, 0);
	uv_run(&rig.loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&chk, NULL);
	uv_close((uv_handle_t *)&tm, NULL);
	uv_run(&rig.loop, UV_RUN_NOWAIT);
	return !w.timed_out && cond(arg);
}

/* What an exit callback saw. */
struct exit_rec {
	int calls;
	pid_t pid;
	int wstatus;
};

static void on_exit_rec(void *data, pid_t pid, int wstatus)
{
	struct exit_rec *e = data;
	e->calls++;
	e->pid = pid;
	e->wstatus = wstatus;
}

static bool exited(void *arg)
{
	return ((struct exit_rec *)arg)->calls > 0;
}

static bool none_running(void *arg)
{
	(void)arg;
	return spawn_running(&rig.hd) == 0;
}

static void wait_exit(struct exit_rec *e)
{
	cr_assert(run_until(exited, e, 10000), "the exit callback did not fire within 10 s");
	cr_assert_eq(e->calls, 1, "the exit callback fired %d times", e->calls);
}

static char *const no_env[] = {NULL};

/* ---- scratch directory, stderr capture, fdcheck reports ---- */

static char tmpdir[64];
static char report_path[128];

static void tmp_open(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_spawn.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	snprintf(report_path, sizeof(report_path), "%s/report", tmpdir);
}

static void tmp_close(void)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/report", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/stderr", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/fdcheck", tmpdir);
	unlink(p);
	cr_assert_eq(rmdir(tmpdir), 0, "rmdir %s: %s", tmpdir, strerror(errno));
}

static const char *fdcheck_path(void)
{
	const char *p = getenv("FDCHECK");
	if (!p || !*p)
		cr_skip_test("FDCHECK is not set (make check sets it; or FDCHECK=$PWD/tests/helpers/fdcheck)");
	return p;
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, size - 1 - len);
		cr_assert_geq(r, 0, "read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
		cr_assert_lt(len, size - 1, "%s is too big", path);
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

static struct {
	char text[65536];
	char *line[2048];
	int n;
} rep;

static void report_load(void)
{
	read_file(report_path, rep.text, sizeof(rep.text));
	rep.n = 0;
	for (char *s = rep.text, *nl; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		cr_assert_not_null(nl, "fdcheck report ends in the middle of a line:\n%s", rep.text);
		*nl = '\0';
		cr_assert_lt(rep.n, (int)N_ELEMENTS(rep.line));
		rep.line[rep.n++] = s;
	}
	cr_assert(rep.n > 0 && strcmp(rep.line[rep.n - 1], "end") == 0, "fdcheck report incomplete");
}

/* The value of the first "KEY value" line, or NULL. */
static const char *report_get(const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < rep.n; i++)
		if (strncmp(rep.line[i], key, kl) == 0 && rep.line[i][kl] == ' ')
			return rep.line[i] + kl + 1;
	return NULL;
}

static int report_count(const char *key)
{
	size_t kl = strlen(key);
	int n = 0;
	for (int i = 0; i < rep.n; i++)
		if (strncmp(rep.line[i], key, kl) == 0 && rep.line[i][kl] == ' ')
			n++;
	return n;
}

static bool report_has(const char *line)
{
	for (int i = 0; i < rep.n; i++)
		if (strcmp(rep.line[i], line) == 0)
			return true;
	return false;
}

/* All report lines, for failure messages. */
static const char *report_dump(void)
{
	static char all[65536];
	size_t len = 0;
	all[0] = '\0';
	for (int i = 0; i < rep.n && len + 2 < sizeof(all); i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n", rep.line[i]);
	return all;
}

/* st_dev:st_ino of an fd, as fdcheck prints it. */
static void fd_ident(int fd, char *buf, size_t size)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0, "fstat %d: %s", fd, strerror(errno));
	snprintf(buf, size, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

static void assert_fd_is(int child_fd, const char *ident, const char *what)
{
	char want[128];
	snprintf(want, sizeof(want), "fdid %d %s", child_fd, ident);
	cr_assert(report_has(want), "child fd %d is not %s (want '%s'):\n%s", child_fd, what, want, report_dump());
}

/* Exactly fds 0..n-1 open in the child. */
static void assert_fds_exactly(int n)
{
	cr_assert_eq(report_count("fd"), n, "child has %d fds, want exactly %d:\n%s", report_count("fd"), n,
	             report_dump());
	for (int i = 0; i < n; i++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "fdid %d ", i);
		bool found = false;
		for (int j = 0; j < rep.n; j++)
			if (strncmp(rep.line[j], prefix, strlen(prefix)) == 0)
				found = true;
		cr_assert(found, "child has no fd %d:\n%s", i, report_dump());
	}
}

/* Run fdcheck --report with req (path, argv and envp filled in when NULL),
 * wait for it, require exit 0, load its report. */
static pid_t run_fdcheck(const struct spawn_req *req)
{
	char *argv[] = {"fdcheck", "--report", report_path, NULL};
	char *env[] = {"FOO=bar", NULL};
	struct spawn_req r = *req;
	if (!r.path)
		r.path = fdcheck_path();
	if (!r.argv)
		r.argv = argv;
	if (!r.envp)
		r.envp = env;
	if (!r.label)
		r.label = "fdcheck";
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &r, on_exit_rec, &e);
	cr_assert_gt(pid, 0, "spawn_start: %s", strerror(-pid));
	wait_exit(&e);
	cr_assert_eq(e.pid, pid);
	cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 0, "fdcheck failed: wstatus 0x%x", e.wstatus);
	report_load();
	return pid;
}

static struct spawn_req null_stdio(void)
{
	struct spawn_req r;
	memset(&r, 0, sizeof(r));
	r.stdio[0] = r.stdio[1] = r.stdio[2] = -1;
	return r;
}

/* ---- exit status ---- */

TEST(spawn, exit_status_delivered)
{
	rig_open();
	char *argv[] = {"sh", "-c", "exit 7", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/sh";
	req.argv = argv;
	req.envp = no_env;
	req.label = "seven";
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	cr_assert_gt(pid, 0, "spawn_start: %s", strerror(-pid));
	cr_assert_eq(spawn_running(&rig.hd), 1);
	cr_assert_eq(e.calls, 0, "the exit callback must come from the loop, not from spawn_start");
	wait_exit(&e);
	cr_assert_eq(e.pid, pid);
	cr_assert(WIFEXITED(e.wstatus), "wstatus 0x%x", e.wstatus);
	cr_assert_eq(WEXITSTATUS(e.wstatus), 7);
	cr_assert_eq(spawn_running(&rig.hd), 0);
	rig_close();
}

TEST(spawn, killed_by_signal_delivered)
{
	rig_open();
	char *argv[] = {"sh", "-c", "kill -TERM $$; exit 0", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/sh";
	req.argv = argv;
	req.envp = no_env;
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	cr_assert_gt(pid, 0);
	wait_exit(&e);
	cr_assert(WIFSIGNALED(e.wstatus), "wstatus 0x%x", e.wstatus);
	cr_assert_eq(WTERMSIG(e.wstatus), SIGTERM);
	rig_close();
}

/* Twenty children exiting together: SIGCHLDs coalesce, every one is reaped
 * and reported with its own status. */
TEST(spawn, many_children_all_reaped)
{
	rig_open();
	enum { N = 20 };
	struct exit_rec e[N];
	pid_t pids[N];
	char cmd[N][32];
	memset(e, 0, sizeof(e));
	for (int i = 0; i < N; i++) {
		snprintf(cmd[i], sizeof(cmd[i]), "exit %d", i + 1);
		char *argv[] = {"sh", "-c", cmd[i], NULL};
		struct spawn_req req = null_stdio();
		req.path = "/bin/sh";
		req.argv = argv;
		req.envp = no_env;
		pids[i] = spawn_start(&rig.hd, &req, on_exit_rec, &e[i]);
		cr_assert_gt(pids[i], 0);
	}
	cr_assert_eq(spawn_running(&rig.hd), N);
	cr_assert(run_until(none_running, NULL, 10000), "%u children not reaped", spawn_running(&rig.hd));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(e[i].calls, 1, "child %d: %d callbacks", i, e[i].calls);
		cr_assert_eq(e[i].pid, pids[i]);
		cr_assert(WIFEXITED(e[i].wstatus) && WEXITSTATUS(e[i].wstatus) == i + 1, "child %d: wstatus 0x%x", i,
		          e[i].wstatus);
	}
	rig_close();
}

/* ---- exec failure ---- */

static int stderr_capture_begin(void)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/stderr", tmpdir);
	int f = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(f, 0);
	int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	cr_assert_geq(saved, 0);
	cr_assert_eq(dup2(f, STDERR_FILENO), STDERR_FILENO);
	close(f);
	return saved;
}

static void stderr_capture_end(int saved, char *buf, size_t size)
{
	cr_assert_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	char p[192];
	snprintf(p, sizeof(p), "%s/stderr", tmpdir);
	read_file(p, buf, size);
}

static int count_substr(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

TEST(spawn, exec_missing_path_logged_once_and_exit_127)
{
	tmp_open();
	rig_open();
	log_set_level(LOG_LVL_NOTICE);
	char *argv[] = {"nothing", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/nonexistent/handoffd-test-program";
	req.argv = argv;
	req.envp = no_env;
	req.label = "svc1";
	struct exit_rec e = {0};
	int saved = stderr_capture_begin();
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	bool ok = pid > 0 && run_until(exited, &e, 10000);
	char log[8192];
	stderr_capture_end(saved, log, sizeof(log));
	cr_assert_gt(pid, 0, "spawn_start: %s", strerror(-pid));
	cr_assert(ok, "the exit callback did not fire within 10 s");
	cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 127, "wstatus 0x%x", e.wstatus);
	const char *want = "service svc1: cannot execute /nonexistent/handoffd-test-program: No such file or directory";
	cr_assert_eq(count_substr(log, want), 1, "want '%s' logged once; log:\n%s", want, log);
	char exitmsg[96];
	snprintf(exitmsg, sizeof(exitmsg), "service svc1: pid %d exited with status 127", (int)pid);
	cr_assert_eq(count_substr(log, exitmsg), 1, "want '%s' logged once; log:\n%s", exitmsg, log);
	cr_assert_lt(strstr(log, want), strstr(log, exitmsg), "the exec failure must be logged before the exit");
	rig_close();
	tmp_close();
}

TEST(spawn, clean_exit_logged_at_debug_only)
{
	tmp_open();
	rig_open();
	log_set_level(LOG_LVL_NOTICE);
	char *argv[] = {"sh", "-c", "exit 0", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/sh";
	req.argv = argv;
	req.envp = no_env;
	req.label = "quiet";
	struct exit_rec e = {0};
	int saved = stderr_capture_begin();
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	bool ok = pid > 0 && run_until(exited, &e, 10000);
	char log[8192];
	stderr_capture_end(saved, log, sizeof(log));
	cr_assert(ok);
	cr_assert_eq(log[0], '\0', "nothing should be logged at notice level for exit 0:\n%s", log);
	rig_close();
	tmp_close();
}

/* ---- refused requests ---- */

TEST(spawn, bad_requests_refused_without_a_child)
{
	rig_open();
	char *argv[] = {"true", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/true";
	req.argv = argv;
	req.envp = no_env;

	struct spawn_req r = req;
	r.path = NULL;
	cr_assert_eq(spawn_start(&rig.hd, &r, NULL, NULL), -EINVAL);
	r = req;
	r.envp = NULL;
	cr_assert_eq(spawn_start(&rig.hd, &r, NULL, NULL), -EINVAL);
	r = req;
	int extra[SPAWN_MAX_EXTRA + 1];
	for (int i = 0; i < SPAWN_MAX_EXTRA + 1; i++)
		extra[i] = 0;
	r.extra = extra;
	r.nextra = SPAWN_MAX_EXTRA + 1;
	cr_assert_eq(spawn_start(&rig.hd, &r, NULL, NULL), -EINVAL);
	r = req;
	r.stdio[1] = 1000; /* not open */
	cr_assert_lt(fcntl(1000, F_GETFD), 0);
	cr_assert_eq(spawn_start(&rig.hd, &r, NULL, NULL), -EBADF);
	r = req;
	r.stdio[2] = -2;
	cr_assert_eq(spawn_start(&rig.hd, &r, NULL, NULL), -EINVAL);
	cr_assert_eq(spawn_running(&rig.hd), 0);
	rig_close();
	/* Without a spawner. */
	cr_assert_eq(spawn_start(&rig.hd, &req, NULL, NULL), -EINVAL);
	cr_assert_eq(spawn_running(&rig.hd), 0);
	spawn_close(&rig.hd); /* NULL-safe */
}

/* pipe2() for the exec-error pipe fails: -EMFILE, no child, nothing leaked. */
TEST(spawn, emfile_returned)
{
	rig_open();
	struct rlimit old;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	int fill[1100], nfill = 0;
	struct rlimit low = old;
	int hi = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			hi = fd;
	low.rlim_cur = (rlim_t)hi + 1 + 4;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (;;) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		cr_assert_lt(nfill, (int)N_ELEMENTS(fill));
		fill[nfill++] = fd;
	}
	char *argv[] = {"true", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/true";
	req.argv = argv;
	req.envp = no_env;
	pid_t pid = spawn_start(&rig.hd, &req, NULL, NULL);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	setrlimit(RLIMIT_NOFILE, &old);
	cr_assert_eq(pid, -EMFILE, "spawn_start with no fd left returned %d", (int)pid);
	cr_assert_eq(spawn_running(&rig.hd), 0);
	rig_close();
}

/* ---- fds ---- */

/* The parent holds fds with and without close-on-exec: the child gets
 * exactly 0, 1, 2, all /dev/null here. */
TEST(spawn, child_gets_exactly_stdio)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	int p[2], s[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	int file = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(file, 0);
	/* Clear close-on-exec on some, as a careless library would leave them. */
	cr_assert_eq(fcntl(p[0], F_SETFD, 0), 0);
	cr_assert_eq(fcntl(s[1], F_SETFD, 0), 0);
	cr_assert_eq(fcntl(file, F_SETFD, 0), 0);
	cr_assert_eq(fcntl(file, F_GETFD) & FD_CLOEXEC, 0);

	struct spawn_req req = null_stdio();
	run_fdcheck(&req);
	assert_fds_exactly(3);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char id[64];
	fd_ident(nullfd, id, sizeof(id));
	close(nullfd);
	for (int i = 0; i < 3; i++)
		assert_fd_is(i, id, "/dev/null");

	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
	close(file);
	rig_close();
	tmp_close();
}

/* stdio = {a, a, 1}: the child's 2 is the parent's 1 even though the
 * child's 1 is filled from a. The parent's fd 1 is replaced by a pipe of
 * ours for the duration, so its identity is known. */
TEST(spawn, stdio_overlapping_sources)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	int s[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int saved1 = fcntl(1, F_DUPFD_CLOEXEC, 3);
	cr_assert_geq(saved1, 0);
	cr_assert_eq(dup2(p[1], 1), 1);
	char id_s[64], id_p[64];
	fd_ident(s[0], id_s, sizeof(id_s));
	fd_ident(p[1], id_p, sizeof(id_p));

	struct spawn_req req = null_stdio();
	req.stdio[0] = s[0];
	req.stdio[1] = s[0];
	req.stdio[2] = 1;
	char *argv[] = {"fdcheck", "--report", report_path, NULL};
	req.path = fdcheck_path();
	req.argv = argv;
	req.envp = no_env;
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	/* The child has its copies: restore our stdout at once. */
	dup2(saved1, 1);
	close(saved1);
	cr_assert_gt(pid, 0, "spawn_start: %s", strerror(-pid));
	wait_exit(&e);
	cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 0);
	report_load();

	assert_fds_exactly(3);
	assert_fd_is(0, id_s, "the socket");
	assert_fd_is(1, id_s, "the socket");
	assert_fd_is(2, id_p, "the parent's fd 1 (our pipe)");
	cr_assert(report_has("fd 0 socket") && report_has("fd 2 pipe"), "%s", report_dump());

	close(s[0]);
	close(s[1]);
	close(p[0]);
	close(p[1]);
	rig_close();
	tmp_close();
}

/* stdio = {1, 2, 0}: a rotation, which any in-place order of dup2() gets
 * wrong. Our own three objects sit on 0, 1, 2 for the duration. */
TEST(spawn, stdio_rotation)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	int s[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int obj[3] = {s[0], p[0], p[1]};
	char id[3][64];
	for (int i = 0; i < 3; i++)
		fd_ident(obj[i], id[i], sizeof(id[i]));
	int saved[3];
	for (int i = 0; i < 3; i++) {
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
		cr_assert_geq(saved[i], 0, "fd %d of the test is not open", i);
	}
	for (int i = 0; i < 3; i++)
		cr_assert_eq(dup2(obj[i], i), i);

	struct spawn_req req = null_stdio();
	req.stdio[0] = 1;
	req.stdio[1] = 2;
	req.stdio[2] = 0;
	char *argv[] = {"fdcheck", "--report", report_path, NULL};
	req.path = fdcheck_path();
	req.argv = argv;
	req.envp = no_env;
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	for (int i = 0; i < 3; i++) {
		dup2(saved[i], i);
		close(saved[i]);
	}
	cr_assert_gt(pid, 0, "spawn_start: %s", strerror(-pid));
	wait_exit(&e);
	cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 0);
	report_load();
	assert_fds_exactly(3);
	assert_fd_is(0, id[1], "the parent's fd 1");
	assert_fd_is(1, id[2], "the parent's fd 2");
	assert_fd_is(2, id[0], "the parent's fd 0");

	close(s[0]);
	close(s[1]);
	close(p[0]);
	close(p[1]);
	rig_close();
	tmp_close();
}

/* Extra fds land on 3, 4, ...; the target range is made to cover every
 * source, each going to another number than its own. */
TEST(spawn, extra_fds_land_on_3_and_up)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	int s[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int obj[3] = {s[0], p[0], p[1]};
	int hi = obj[0];
	for (int i = 1; i < 3; i++)
		if (obj[i] > hi)
			hi = obj[i];
	int nextra = hi - 2;
	if (nextra > SPAWN_MAX_EXTRA)
		cr_skip_test("the test process already has %d fds open", hi);
	if (nextra < 3)
		nextra = 3;
	int extra[SPAWN_MAX_EXTRA];
	for (int i = 0; i < nextra; i++) {
		extra[i] = obj[(i + 1) % 3];
		if (extra[i] == 3 + i) /* never its own number */
			extra[i] = obj[(i + 2) % 3];
	}
	struct spawn_req req = null_stdio();
	req.stdio[0] = s[0];
	req.extra = extra;
	req.nextra = nextra;
	run_fdcheck(&req);

	assert_fds_exactly(3 + nextra);
	char id[64];
	fd_ident(s[0], id, sizeof(id));
	assert_fd_is(0, id, "the socket");
	for (int i = 0; i < nextra; i++) {
		fd_ident(extra[i], id, sizeof(id));
		char what[32];
		snprintf(what, sizeof(what), "the parent's fd %d", extra[i]);
		assert_fd_is(3 + i, id, what);
	}

	close(s[0]);
	close(s[1]);
	close(p[0]);
	close(p[1]);
	rig_close();
	tmp_close();
}

/* The spawned program serves a connection on 0 and 1 (fdcheck --echo). */
TEST(spawn, connection_on_stdin_stdout)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	int s[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	char *argv[] = {"fdcheck", "--echo", "--report", report_path, NULL};
	struct spawn_req req = null_stdio();
	req.stdio[0] = req.stdio[1] = s[1];
	req.argv = argv;
	req.path = fdcheck_path();
	req.envp = no_env;
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	cr_assert_gt(pid, 0);
	close(s[1]); /* the caller keeps ownership and may close at once */
	const char msg[] = "hello, spawned world\n";
	cr_assert_eq(write(s[0], msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
	cr_assert_eq(shutdown(s[0], SHUT_WR), 0);
	char buf[256];
	size_t len = 0;
	for (;;) { /* a test may block: the child answers or exits */
		ssize_t r = read(s[0], buf + len, sizeof(buf) - 1 - len);
		cr_assert_geq(r, 0);
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	cr_assert_str_eq(buf, msg);
	wait_exit(&e);
	cr_assert(WIFEXITED(e.wstatus) && WEXITSTATUS(e.wstatus) == 0);
	close(s[0]);
	rig_close();
	tmp_close();
}

/* ---- signals, session, directory, umask ---- */

TEST(spawn, signals_mask_and_dispositions_reset)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	sigset_t block, oldmask;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGRTMIN + 2);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &block, &oldmask), 0);
	struct sigaction ign, old_usr2, old_pipe;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	cr_assert_eq(sigaction(SIGUSR2, &ign, &old_usr2), 0);
	cr_assert_eq(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	mode_t oldmask_file = umask(027);

	struct spawn_req req = null_stdio();
	run_fdcheck(&req);

	umask(oldmask_file);
	sigaction(SIGUSR2, &old_usr2, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);

	cr_assert_eq(report_count("sigblocked"), 0, "signals still blocked in the child:\n%s", report_dump());
	cr_assert_eq(report_count("sigignored"), 0, "signals still ignored in the child:\n%s", report_dump());
	const char *pid = report_get("pid"), *sid = report_get("sid");
	cr_assert(pid && sid && strcmp(pid, sid) == 0, "the child is not a session leader:\n%s", report_dump());
	cr_assert_str_eq(report_get("cwd"), "/");
	cr_assert_str_eq(report_get("umask"), "0027", "the umask is the daemon's");
	rig_close();
	tmp_close();
}

/* ---- environment and argv ---- */

TEST(spawn, environment_exactly_as_given)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	char *env[] = {"A=1", "B=two words", "EMPTY=", "PATH=/nowhere", NULL};
	char *argv[] = {"in.fdcheck", "--report", report_path, NULL};
	struct spawn_req req = null_stdio();
	req.envp = env;
	req.argv = argv;
	run_fdcheck(&req);
	cr_assert_eq(report_count("env"), 4, "%s", report_dump());
	int k = 0;
	for (int i = 0; i < rep.n; i++)
		if (strncmp(rep.line[i], "env ", 4) == 0) {
			cr_assert_str_eq(rep.line[i] + 4, env[k], "env entry %d", k);
			k++;
		}
	cr_assert_str_eq(report_get("argv0"), "in.fdcheck");
	cr_assert_str_eq(report_get("argc"), "3");
	rig_close();
	tmp_close();
}

TEST(spawn, connection_environment_reaches_the_child)
{
	fdcheck_path();
	tmp_open();
	rig_open();
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
	inet_pton(AF_INET, "192.0.2.10", &peer.sin_addr);
	static struct spawn_env env;
	cr_assert_gt(spawn_env_build(&env, "svc", SOCK_STREAM, (struct sockaddr *)&peer, sizeof(peer), NULL, 0, false,
	                             0, 0, 0),
	             0);
	struct spawn_req req = null_stdio();
	req.envp = env.envp;
	run_fdcheck(&req);
	cr_assert(report_has("env REMOTE_ADDR=192.0.2.10"), "%s", report_dump());
	cr_assert(report_has("env REMOTE_PORT=40000"), "%s", report_dump());
	cr_assert(report_has("env HANDOFF_SERVICE=svc"), "%s", report_dump());
	rig_close();
	tmp_close();
}

/* ---- identity ---- */

static int cmp_ul(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return (x > y) - (x < y);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "open %s: %s", from, strerror(errno));
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	cr_assert_geq(out, 0, "open %s: %s", to, strerror(errno));
	char buf[65536];
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		cr_assert_geq(r, 0);
		if (r == 0)
			break;
		cr_assert_eq(write(out, buf, (size_t)r), r);
	}
	close(in);
	cr_assert_eq(fchmod(out, mode), 0);
	close(out);
}

TEST(spawn, set_ids_as_nobody)
{
	const char *fdcheck = fdcheck_path();
	if (geteuid() != 0)
		cr_skip_test("set_ids needs root (setgroups/setgid/setuid); run as root to test it");
	struct passwd *pw = getpwnam("nobody");
	if (!pw)
		cr_skip_test("no user 'nobody' on this system");
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	struct group *gr = getgrnam("users");
	gid_t extra_gid = gr ? gr->gr_gid : 100;
	tmp_open();
	rig_open();
	/* nobody must reach the program and write its report: a copy of
	 * fdcheck in a world-searchable directory, a report file it owns. */
	cr_assert_eq(chmod(tmpdir, 0755), 0);
	char prog[192];
	snprintf(prog, sizeof(prog), "%s/fdcheck", tmpdir);
	copy_file(fdcheck, prog, 0755);
	int rf = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(rf, 0);
	cr_assert_eq(fchown(rf, uid, gid), 0);
	close(rf);

	gid_t groups[2] = {gid, extra_gid};
	struct spawn_req req = null_stdio();
	req.path = prog;
	req.set_ids = true;
	req.uid = uid;
	req.gid = gid;
	req.groups = groups;
	req.ngroups = 2;
	run_fdcheck(&req);

	char want[32];
	snprintf(want, sizeof(want), "%lu", (unsigned long)uid);
	cr_assert_str_eq(report_get("uid"), want, "%s", report_dump());
	cr_assert_str_eq(report_get("euid"), want, "%s", report_dump());
	snprintf(want, sizeof(want), "%lu", (unsigned long)gid);
	cr_assert_str_eq(report_get("gid"), want, "%s", report_dump());
	cr_assert_str_eq(report_get("egid"), want, "%s", report_dump());
	/* groups, in any order */
	const char *g = report_get("groups");
	cr_assert_not_null(g);
	unsigned long got[8];
	int n = 0;
	for (const char *s = g; *s && n < 8;) {
		char *end;
		got[n++] = strtoul(s, &end, 10);
		cr_assert(end != s, "bad groups line '%s'", g);
		s = *end == ',' ? end + 1 : end;
	}
	unsigned long exp[2] = {gid, extra_gid};
	int nexp = gid == extra_gid ? 1 : 2;
	qsort(got, (size_t)n, sizeof(got[0]), cmp_ul);
	qsort(exp, 2, sizeof(exp[0]), cmp_ul);
	cr_assert_eq(n, nexp, "groups '%s'", g);
	for (int i = 0; i < n; i++)
		cr_assert_eq(got[i], exp[nexp == 1 ? 0 : i], "groups '%s'", g);

	/* ngroups = 0 clears the supplementary groups (root's are not kept). */
	req.ngroups = 0;
	req.groups = NULL;
	run_fdcheck(&req);
	cr_assert_str_eq(report_get("groups"), "", "%s", report_dump());

	rig_close();
	tmp_close();
}

/* ---- forget, close ---- */

TEST(spawn, forget_still_reaps_without_callback)
{
	rig_open();
	char *argv[] = {"sh", "-c", "exit 3", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/sh";
	req.argv = argv;
	req.envp = no_env;
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	cr_assert_gt(pid, 0);
	spawn_forget(&rig.hd, pid);
	spawn_forget(&rig.hd, pid + 100000); /* unknown: ignored */
	cr_assert_eq(spawn_running(&rig.hd), 1);
	cr_assert(run_until(none_running, NULL, 10000), "the forgotten child was not reaped");
	cr_assert_eq(e.calls, 0, "a forgotten child's callback fired");
	cr_assert_lt(waitpid(pid, NULL, WNOHANG), 0, "the child was not reaped");
	rig_close();
}

/* spawn_close() with a child still running (its exec perhaps not yet
 * confirmed): the loop closes cleanly, the child keeps running. */
TEST(spawn, close_leaves_children_running)
{
	rig_open();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	char *argv[] = {"cat", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/cat";
	req.argv = argv;
	req.envp = no_env;
	req.stdio[0] = p[0];
	struct exit_rec e = {0};
	pid_t pid = spawn_start(&rig.hd, &req, on_exit_rec, &e);
	cr_assert_gt(pid, 0);
	close(p[0]);
	rig_close();
	cr_assert_eq(e.calls, 0);
	cr_assert_eq(kill(pid, 0), 0, "the child did not survive spawn_close()");
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the child should still be running");
	close(p[1]); /* cat sees EOF and exits */
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cat: wstatus 0x%x", st);
}

static void close_in_callback(void *data, pid_t pid, int wstatus)
{
	on_exit_rec(data, pid, wstatus);
	spawn_close(&rig.hd);
}

TEST(spawn, close_from_exit_callback)
{
	rig_open();
	char *argv[] = {"true", NULL};
	struct spawn_req req = null_stdio();
	req.path = "/bin/true";
	req.argv = argv;
	req.envp = no_env;
	struct exit_rec e = {0};
	cr_assert_gt(spawn_start(&rig.hd, &req, close_in_callback, &e), 0);
	cr_assert_gt(spawn_start(&rig.hd, &req, close_in_callback, &e), 0);
	cr_assert(run_until(exited, &e, 10000));
	cr_assert_null(rig.hd.spawner);
	uv_run(&rig.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&rig.loop), 0);
	cr_assert_eq(e.calls, 1, "no callback after spawn_close()");
	/* The other child may be left unreaped: reap it here. */
	while (waitpid(-1, NULL, 0) > 0)
		;
}

/* ---- spawn_env_build ---- */

static void assert_env(const struct spawn_env *env, int n, const char *const *want)
{
	for (int i = 0; i < n; i++)
		cr_assert(i < env->n && strcmp(env->envp[i], want[i]) == 0, "entry %d: got '%s', want '%s'", i,
		          i < env->n ? env->envp[i] : "(none)", want[i]);
	cr_assert_eq(env->n, n, "%d entries, want %d", env->n, n);
	cr_assert_null(env->envp[n], "envp not NULL-terminated");
}

TEST(spawn_env, ipv4_tcp)
{
	static struct spawn_env env;
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(1234)};
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &peer.sin_addr);
	inet_pton(AF_INET, "198.51.100.7", &local.sin_addr);
	int n = spawn_env_build(&env, "web", SOCK_STREAM, (struct sockaddr *)&peer, sizeof(peer),
	                        (struct sockaddr *)&local, sizeof(local), false, 0, 0, 0);
	const char *want[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                      "PROTO=TCP",
	                      "REMOTE_ADDR=192.0.2.1",
	                      "REMOTE_PORT=1234",
	                      "TCPREMOTEIP=192.0.2.1",
	                      "TCPREMOTEPORT=1234",
	                      "TCPLOCALIP=198.51.100.7",
	                      "TCPLOCALPORT=80",
	                      "HANDOFF_SERVICE=web"};
	cr_assert_eq(n, (int)N_ELEMENTS(want));
	assert_env(&env, n, want);
}

TEST(spawn_env, ipv6_udp)
{
	static struct spawn_env env;
	struct sockaddr_in6 peer = {.sin6_family = AF_INET6, .sin6_port = htons(5555)};
	struct sockaddr_in6 local = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
	inet_pton(AF_INET6, "2001:db8::1", &peer.sin6_addr);
	inet_pton(AF_INET6, "::1", &local.sin6_addr);
	int n = spawn_env_build(&env, "dns", SOCK_DGRAM, (struct sockaddr *)&peer, sizeof(peer),
	                        (struct sockaddr *)&local, sizeof(local), false, 0, 0, 0);
	const char *want[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                      "PROTO=UDP",
	                      "REMOTE_ADDR=2001:db8::1",
	                      "REMOTE_PORT=5555",
	                      "TCPREMOTEIP=2001:db8::1",
	                      "TCPREMOTEPORT=5555",
	                      "TCPLOCALIP=::1",
	                      "TCPLOCALPORT=53",
	                      "HANDOFF_SERVICE=dns"};
	cr_assert_eq(n, (int)N_ELEMENTS(want));
	assert_env(&env, n, want);
}

TEST(spawn_env, v4_mapped_appears_as_ipv4)
{
	static struct spawn_env env;
	struct sockaddr_in6 peer = {.sin6_family = AF_INET6, .sin6_port = htons(40001)};
	struct sockaddr_in6 local = {.sin6_family = AF_INET6, .sin6_port = htons(7)};
	inet_pton(AF_INET6, "::ffff:203.0.113.9", &peer.sin6_addr);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &local.sin6_addr);
	int n = spawn_env_build(&env, "echo", SOCK_STREAM, (struct sockaddr *)&peer, sizeof(peer),
	                        (struct sockaddr *)&local, sizeof(local), false, 0, 0, 0);
	const char *want[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                      "PROTO=TCP",
	                      "REMOTE_ADDR=203.0.113.9",
	                      "REMOTE_PORT=40001",
	                      "TCPREMOTEIP=203.0.113.9",
	                      "TCPREMOTEPORT=40001",
	                      "TCPLOCALIP=127.0.0.1",
	                      "TCPLOCALPORT=7",
	                      "HANDOFF_SERVICE=echo"};
	cr_assert_eq(n, (int)N_ELEMENTS(want));
	assert_env(&env, n, want);
}

TEST(spawn_env, unix_with_credentials)
{
	static struct spawn_env env;
	struct sockaddr_un peer = {.sun_family = AF_UNIX}; /* unnamed, as accept() gives */
	struct sockaddr_un local = {.sun_family = AF_UNIX, .sun_path = "/run/x.sock"};
	socklen_t local_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(local.sun_path) + 1);
	int n = spawn_env_build(&env, "x", SOCK_STREAM, (struct sockaddr *)&peer, sizeof(sa_family_t),
	                        (struct sockaddr *)&local, local_len, true, 4242, 1000, 100);
	const char *want[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                      "PROTO=UNIX",
	                      "UNIXREMOTEPID=4242",
	                      "UNIXREMOTEEUID=1000",
	                      "UNIXREMOTEEGID=100",
	                      "HANDOFF_SERVICE=x"};
	cr_assert_eq(n, (int)N_ELEMENTS(want));
	assert_env(&env, n, want);

	/* Without credentials (a datagram peer): PROTO only. */
	n = spawn_env_build(&env, "x", SOCK_DGRAM, (struct sockaddr *)&peer, sizeof(sa_family_t), NULL, 0, false, 0, 0,
	                    0);
	const char *want2[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PROTO=UNIX",
	                       "HANDOFF_SERVICE=x"};
	cr_assert_eq(n, (int)N_ELEMENTS(want2));
	assert_env(&env, n, want2);
}

TEST(spawn_env, no_or_truncated_addresses)
{
	static struct spawn_env env;
	int n = spawn_env_build(&env, "svc", SOCK_STREAM, NULL, 0, NULL, 0, false, 0, 0, 0);
	const char *want[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	                      "HANDOFF_SERVICE=svc"};
	cr_assert_eq(n, 2);
	assert_env(&env, n, want);

	/* An AF_INET address cut short is ignored, not read past its end. */
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(1)};
	n = spawn_env_build(&env, "svc", SOCK_STREAM, (struct sockaddr *)&peer, 4, NULL, 0, false, 0, 0, 0);
	cr_assert_eq(n, 2);
	assert_env(&env, n, want);
}

TEST(spawn_env, enospc)
{
	static struct spawn_env env;
	static char name[SPAWN_ENV_BUF + 1];
	memset(name, 'x', sizeof(name) - 1);
	cr_assert_eq(spawn_env_build(&env, name, SOCK_STREAM, NULL, 0, NULL, 0, false, 0, 0, 0), -ENOSPC);
	cr_assert_eq(env.n, 0);
	cr_assert_null(env.envp[0]);

	/* A name that just fits. */
	size_t path_len = strlen("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") + 1;
	size_t fit = SPAWN_ENV_BUF - path_len - strlen("HANDOFF_SERVICE=") - 1;
	name[fit] = '\0';
	cr_assert_eq(spawn_env_build(&env, name, SOCK_STREAM, NULL, 0, NULL, 0, false, 0, 0, 0), 2);
	cr_assert_eq(env.used, (size_t)SPAWN_ENV_BUF);
	name[fit] = 'x';
	name[fit + 1] = '\0';
	cr_assert_eq(spawn_env_build(&env, name, SOCK_STREAM, NULL, 0, NULL, 0, false, 0, 0, 0), -ENOSPC);

	/* The entry count is bounded too, and a refused add changes nothing. */
	cr_assert_eq(spawn_env_build(&env, "s", SOCK_STREAM, NULL, 0, NULL, 0, false, 0, 0, 0), 2);
	for (int i = 2; i < SPAWN_ENV_MAX; i++)
		cr_assert_eq(spawn_env_add(&env, "K", "v"), i + 1);
	size_t used = env.used;
	cr_assert_eq(spawn_env_add(&env, "K", "v"), -ENOSPC);
	cr_assert_eq(env.n, SPAWN_ENV_MAX);
	cr_assert_eq(env.used, used);
	cr_assert_null(env.envp[SPAWN_ENV_MAX]);
}
