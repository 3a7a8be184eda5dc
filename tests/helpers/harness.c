/* harness: see harness.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/hooks.h>
#include <criterion/internal/ordered-set.h>

#include "handoff.h"
#include "harness.h"
#include "proto.h"

struct h_ctx h;

/* LeakSanitizer (--enable-sanitizers) reads this hook from the program:
 * criterion's runner leaks a small allocation of its own at exit, which
 * would otherwise fail every test program. Our own code is not covered. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}

/* ---- slow runs: time scale and valgrind (see harness.h) ---- */

/* HANDOFF_TEST_TIME_SCALE, read once: a whole number from 1 to 100. */
static int time_scale(void)
{
	static int scale;
	if (!scale) {
		const char *v = getenv("HANDOFF_TEST_TIME_SCALE");
		char *end = NULL;
		unsigned long n = v && *v ? strtoul(v, &end, 10) : 1;
		scale = (end && *end) || n < 1 || n > 100 ? 1 : (int)n;
	}
	return scale;
}

int h_ms(int ms)
{
	return ms * time_scale();
}

/* Criterion's runner reports PRE_ALL before it starts any test and reads a
 * test's .timeout only when it starts that test, so the timeouts are scaled
 * here (its --timeout option can only lower them). */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	int k = time_scale();
	if (k == 1 || !set || !set->suites)
		return;
	for (struct criterion_ordered_set_node *sn = set->suites->first; sn; sn = sn->next) {
		struct criterion_suite_set *ss = (struct criterion_suite_set *)(void *)(sn + 1);
		if (ss->suite.data)
			ss->suite.data->timeout *= k;
		for (struct criterion_ordered_set_node *tn = ss->tests ? ss->tests->first : NULL; tn; tn = tn->next) {
			struct criterion_test *t = (struct criterion_test *)(void *)(tn + 1);
			if (t->data)
				t->data->timeout *= k;
		}
	}
}

static const char *vg_dir(void)
{
	const char *d = getenv("HANDOFF_TEST_VALGRIND");
	return d && *d ? d : NULL;
}

bool h_valgrind(void)
{
	return vg_dir() != NULL;
}

/* The tests are built with the same flags as handoffd. */
bool h_asan(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#endif
#endif
	return false;
}

/* Our own programs run under valgrind: handoffd, handoffctl, test-backend
 * and handoff-exec, by base name (a copy in DIR/priv counts too). */
static bool vg_wraps(const char *path)
{
	static const char *const vars[] = {"HANDOFFD", "HANDOFFCTL", "TEST_BACKEND", "HANDOFF_EXEC"};
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		const char *vbase = v && strrchr(v, '/') ? strrchr(v, '/') + 1 : v;
		if (vbase && strcmp(base, vbase) == 0)
			return true;
	}
	return false;
}

/* The valgrind command line for one program, built before fork. */
struct vg_cmd {
	bool on;
	char *argv[64];
	char valgrind[256];
	char logpath[512];   /* DIR/SUITE.TEST.PROGRAM. (the child adds PID.vg) */
	size_t prefix_len;
	int logfd;
	char logopt[32];
};

/* The fd valgrind logs to, opened by the harness in the child: 500, or
 * half the soft RLIMIT_NOFILE when that is lower. Not --log-file: valgrind
 * 3.19 leaves the file it opens for that at the lowest free fd of the
 * program, without close-on-exec, where it shifts the fds the program opens
 * next and is inherited by the programs it execs; a high fd disturbs
 * neither (handoffd closes it in what it spawns). */
#define VG_LOG_FD 500

/* $VALGRIND (default valgrind), looked up in $PATH unless it has a '/'. */
static bool vg_find(char *buf, size_t size)
{
	const char *v = getenv("VALGRIND");
	if (!v || !*v)
		v = "valgrind";
	if (strchr(v, '/')) {
		snprintf(buf, size, "%s", v);
		return access(buf, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, size, "%.*s/%s", (int)n, p, v);
		if (n && access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/* With HANDOFF_TEST_VALGRIND set and prog one of ours: fill cmd and return
 * the program to exec (valgrind) with cmd->argv; else prog and argv as they
 * are. The child calls vg_child_log() just before exec. */
static const char *vg_wrap(const char *prog, char *const argv[], struct vg_cmd *cmd, char *const **ret_argv)
{
	*ret_argv = argv;
	cmd->on = false;
	const char *dir = vg_dir();
	if (!dir || !vg_wraps(prog))
		return prog;
	cr_assert(vg_find(cmd->valgrind, sizeof(cmd->valgrind)),
	          "HANDOFF_TEST_VALGRIND is set but valgrind is not found");
	if (mkdir(dir, 0777) == 0)
		chmod(dir, 01777); /* children running as nobody write their logs too */
	const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
	int len = snprintf(cmd->logpath, sizeof(cmd->logpath) - 24, "%s/%s.%s.%s.", dir,
	                   criterion_current_suite ? criterion_current_suite->name : "suite",
	                   criterion_current_test ? criterion_current_test->name : "test", base);
	cr_assert(len > 0 && (size_t)len < sizeof(cmd->logpath) - 24, "valgrind log path too long");
	cmd->prefix_len = (size_t)len;
	static const char *const opts[] = {
		"--tool=memcheck", "--vgdb=no", "--trace-children=no", "--child-silent-after-fork=yes",
		"--leak-check=full", "--errors-for-leak-kinds=definite", "--track-fds=yes", "--num-callers=30",
		"--error-exitcode=" H_VALGRIND_EXIT_STR,
	};
	struct rlimit rl;
	cmd->logfd = VG_LOG_FD;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * VG_LOG_FD)
		cmd->logfd = (int)(rl.rlim_cur / 2);
	snprintf(cmd->logopt, sizeof(cmd->logopt), "--log-fd=%d", cmd->logfd);
	size_t n = 0, max = sizeof(cmd->argv) / sizeof(cmd->argv[0]);
	cmd->argv[n++] = cmd->valgrind;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cmd->argv[n++] = (char *)opts[i];
	cmd->argv[n++] = cmd->logopt;
	cmd->argv[n++] = (char *)prog;
	for (size_t i = 1; argv[i]; i++) {
		cr_assert(n < max - 1, "too many arguments to run under valgrind");
		cmd->argv[n++] = argv[i];
	}
	cmd->argv[n] = NULL;
	cmd->on = true;
	*ret_argv = cmd->argv;
	return cmd->valgrind;
}

/* In the forked child, after its fds are in place: open the log,
 * DIR/SUITE.TEST.PROGRAM.PID.vg (valgrind keeps the pid), as cmd->logfd.
 * Only async-signal-safe calls. */
static void vg_child_log(struct vg_cmd *cmd)
{
	if (!cmd->on)
		return;
	char digits[24], *d = cmd->logpath + cmd->prefix_len;
	int n = 0;
	for (unsigned long v = (unsigned long)getpid(); v || !n; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	while (n)
		*d++ = digits[--n];
	memcpy(d, ".vg", 4);
	/* Not close-on-exec: valgrind, exec'd next, writes to it. */
	int fd = open(cmd->logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (fd != cmd->logfd && (dup2(fd, cmd->logfd) < 0 || close(fd) < 0)))
		_exit(127);
}

/* ---- small utilities ---- */

uint64_t h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_nap(void)
{
	struct timespec ts = {0, 3 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int ms_left(uint64_t end)
{
	uint64_t now = h_now_ms();
	return now >= end ? 0 : (int)(end - now);
}

static const char *env_path(const char *var)
{
	const char *v = getenv(var);
	cr_assert(v && *v, "environment variable %s is not set (run the tests with `make check`)", var);
	return v;
}

int h_count_fds(pid_t pid)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/fd");
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (!pid)
		n--; /* the directory stream's own fd */
	closedir(d);
	return n;
}

int h_nofile_leaving(pid_t pid, int nfree)
{
	enum { MAXFD = 65536 };
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	static unsigned char used[MAXFD / 8];
	memset(used, 0, sizeof(used));
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long n = strtol(e->d_name, &end, 10);
		if (e->d_name[0] != '.' && !*end && n >= 0 && n < MAXFD)
			used[n / 8] |= (unsigned char)(1u << (n % 8));
	}
	closedir(d);
	int limit = 0;
	for (int seen = 0; limit < MAXFD && seen < nfree; limit++)
		if (!(used[limit / 8] & (1u << (limit % 8))))
			seen++;
	return limit;
}

char *h_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	cr_assert(buf);
	if (f) {
		size_t n;
		while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
			len += n;
			if (cap - len < 1024) {
				cap *= 2;
				buf = realloc(buf, cap);
				cr_assert(buf);
			}
		}
		fclose(f);
	}
	buf[len] = '\0';
	return buf;
}

/* Print text, eliding the middle of a long one (a failing load test can
 * log thousands of lines): the start shows the setup, the end the failure. */
static void dump_text(const char *title, const char *text)
{
	enum { HEAD = 40, TAIL = 150 };
	int lines = 0;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	fprintf(stderr, "----- %s -----\n", title);
	if (lines <= HEAD + TAIL + 10) {
		fputs(text, stderr);
	} else {
		const char *p = text;
		for (int n = 0; n < HEAD; n++)
			p = strchr(p, '\n') + 1;
		fwrite(text, 1, (size_t)(p - text), stderr);
		fprintf(stderr, "[... %d lines ...]\n", lines - HEAD - TAIL);
		for (int n = 0; n < lines - HEAD - TAIL; n++)
			p = strchr(p, '\n') + 1;
		fputs(p, stderr);
	}
	if (*text && text[strlen(text) - 1] != '\n')
		fputc('\n', stderr);
}

static void dump_file(const char *title, const char *path)
{
	char *s = h_read_file(path);
	char t[300];
	snprintf(t, sizeof(t), "%s (%s)", title, path);
	dump_text(t, s);
	free(s);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* ---- init / fini ---- */

void h_init(void)
{
	memset(&h, 0, sizeof(h));
	signal(SIGPIPE, SIG_IGN);
	h.fds_at_start = h_count_fds(0);
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	int n = snprintf(h.dir, sizeof(h.dir), "%s/handoffd-test-XXXXXX", tmp);
	cr_assert(n > 0 && (size_t)n < sizeof(h.dir), "TMPDIR is too long: %s", tmp);
	cr_assert(mkdtemp(h.dir), "mkdtemp %s: %s", h.dir, strerror(errno));
	/* A child running as nobody must reach the control socket inside. */
	cr_assert(chmod(h.dir, 0755) == 0);
	snprintf(h.conf, sizeof(h.conf), "%s/handoffd.conf", h.dir);
	snprintf(h.ctl, sizeof(h.ctl), "%s/control.sock", h.dir);
	snprintf(h.daemon_log, sizeof(h.daemon_log), "%s/handoffd.log", h.dir);
}

static void proc_release(struct h_proc *p)
{
	if (p->out_fd >= 0) {
		close(p->out_fd);
		p->out_fd = -1;
	}
}

static void stop_all(bool daemon_first)
{
	if (daemon_first && h.daemon && !h.daemon->exited)
		h_proc_stop(h.daemon, h_ms(8000));
	for (int i = 0; i < h.nprocs; i++)
		if (!h.procs[i].exited)
			h_proc_stop(&h.procs[i], h_ms(2000));
	for (int i = 0; i < h.nprocs; i++)
		proc_release(&h.procs[i]);
}

/* Children the table does not know: with h_subreaper(), a new handoffd an
 * upgrade left behind when the test failed before h_adopt_daemon(). Stopped
 * like the others (SIGTERM, then SIGKILL), so none outlives the test. */
static void stop_strays(void)
{
	pid_t pids[32];
	int n = h_children(getpid(), NULL, pids, 32);
	for (int i = 0; i < n && i < 32; i++) {
		kill(pids[i], SIGTERM);
		uint64_t end = h_now_ms() + (uint64_t)h_ms(2000);
		int st;
		pid_t r;
		while ((r = waitpid(pids[i], &st, WNOHANG)) == 0 && h_now_ms() < end)
			h_nap();
		if (r == 0) {
			kill(pids[i], SIGKILL);
			while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
				;
		}
		fprintf(stderr, "stopped pid %d, a child of the test it did not track\n", (int)pids[i]);
	}
}

void h_fini(void)
{
	if (!h.dir[0])
		return;
	if (!h.finished) {
		/* The test failed (or was skipped): stop everything first, then
		 * show what each process said. */
		stop_all(false);
		fprintf(stderr, "===== test did not finish: logs from %s =====\n", h.dir);
		for (int i = 0; i < h.nprocs; i++) {
			struct h_proc *p = &h.procs[i];
			if (p->forgotten)
				continue;
			h_proc_pump(p);
			char t[160];
			snprintf(t, sizeof(t), "%s pid %d: status 0x%x, stdout", p->name, (int)p->pid, p->status);
			dump_text(t, p->out ? p->out : "");
			snprintf(t, sizeof(t), "%s stderr", p->name);
			dump_file(t, p->log);
		}
	}
	stop_all(false);
	stop_strays();
	for (int i = 0; i < h.nprocs; i++)
		free(h.procs[i].out);
	if (!getenv("HANDOFF_TEST_KEEP"))
		nftw(h.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "keeping %s\n", h.dir);
	h.dir[0] = '\0';
}

void h_finish(void)
{
	if (h.daemon && !h.daemon->exited) {
		h_proc_kill(h.daemon, SIGTERM);
		int st = h_proc_wait_exit(h.daemon, h_ms(8000));
		cr_assert(st != -1, "handoffd did not exit within %d s of SIGTERM", h_ms(8));
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "handoffd did not exit 0 on SIGTERM (status 0x%x)%s", st,
		          h_valgrind() && WIFEXITED(st) && WEXITSTATUS(st) == H_VALGRIND_EXIT
		                  ? ": valgrind found errors (its log is in $HANDOFF_TEST_VALGRIND)"
		                  : "");
	}
	stop_all(false);
	int now = h_count_fds(0);
	cr_assert_eq(now, h.fds_at_start, "the test process leaked fds: %d open at start, %d at the end",
	             h.fds_at_start, now);
	h.finished = true;
}

/* ---- ports and config ---- */

/* Is port free on the wildcard address of family (for AF_INET6, on both
 * stacks when the host has IPv6)? A plain bind, no SO_REUSEADDR: a port in
 * any use, TIME_WAIT included, counts as taken. */
static bool port_free(int family, int port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		int off = 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	}
	bool ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

/* Ports are drawn at random from below the kernel's ephemeral range, so
 * the many client connections of parallel tests (which take ephemeral
 * ports) can never grab a port between our check and handoffd's bind. */
int h_free_port(int family)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)h_now_ms();
	int lo = 10000, hi = 32767;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (f) {
		int elo, ehi;
		if (fscanf(f, "%d %d", &elo, &ehi) == 2) {
			if (elo - 1 - lo >= 2000)
				hi = elo - 1;                   /* below the range */
			else if (65535 - (ehi + 1) >= 2000)
				lo = ehi + 1, hi = 65535;       /* or above it */
		}
		fclose(f);
	}
	for (int tries = 0; tries < 500; tries++) {
		int port = lo + (int)(rand_r(&seed) % (unsigned)(hi - lo + 1));
		if (port_free(family, port))
			return port;
	}
	cr_assert_fail("no free TCP port found in %d..%d", lo, hi);
	return -1;
}

bool h_have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	close(fd);
	return ok;
}

void h_config_raw(const char *text)
{
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", h.conf);
	FILE *f = fopen(tmp, "we");
	cr_assert(f, "%s: %s", tmp, strerror(errno));
	fputs(text, f);
	cr_assert(fclose(f) == 0);
	/* rename: a reload never reads a half-written file */
	cr_assert(rename(tmp, h.conf) == 0);
}

void h_config(const char *fmt, ...)
{
	char *body = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&body, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0);
	char *text = NULL;
	n = asprintf(&text,
	             "[handoffd]\n"
	             "control_socket = %s\n"
	             "control_mode = 0666\n"
	             "log_level = debug\n"
	             "%s"
	             "%s",
	             h.ctl, strstr(body, "shutdown_timeout") ? "" : "shutdown_timeout = 2s\n", body);
	cr_assert(n >= 0);
	h_config_raw(text);
	free(text);
	free(body);
}

/* ---- processes ---- */

struct h_cred h_nobody(void)
{
	struct h_cred c = {.uid = H_NOBODY_UID, .gid = H_NOGROUP_GID, .ngroups = 0};
	return c;
}

struct h_cred h_nobody_with_group(gid_t extra)
{
	struct h_cred c = h_nobody();
	c.groups[c.ngroups++] = extra;
	return c;
}

/* In a forked child: become cred. Only async-signal-safe calls. */
static void child_become(const struct h_cred *cred)
{
	if (!cred)
		return;
	if (setgroups((size_t)cred->ngroups, cred->groups) < 0 || setgid(cred->gid) < 0 ||
	    setuid(cred->uid) < 0)
		_exit(126);
}

/* In a forked child: die with the test, restore default signal state. */
static void child_common(pid_t parent)
{
	/* After any setuid: a credential change clears the death signal. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Can a uid other than root run (or, for a library, read) path? Every
 * directory on the way needs o+x. */
static bool others_can_use(const char *path, mode_t need)
{
	char buf[4096];
	struct stat st;
	if (!realpath(path, buf) || stat(buf, &st) < 0 || (st.st_mode & need) != need)
		return false;
	for (char *slash = strrchr(buf, '/'); slash && slash != buf; slash = strrchr(buf, '/')) {
		*slash = '\0';
		if (stat(buf, &st) < 0 || !(st.st_mode & S_IXOTH))
			return false;
	}
	return true;
}

static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	cr_assert(in >= 0, "%s: %s", src, strerror(errno));
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	cr_assert(out >= 0, "%s: %s", dst, strerror(errno));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert(write(out, buf, (size_t)n) == n);
	cr_assert(n == 0);
	close(in);
	cr_assert(close(out) == 0);
}

/* The program to exec for a child that will run as cred. A build tree
 * under a private directory (a clone in /root, say) is out of reach for
 * nobody: then run copies from the 0755 temp dir, with libhandoff beside
 * them on LD_LIBRARY_PATH (*ret_libpath). */
static const char *exec_path(const struct h_cred *cred, const char *path, char *buf, size_t size,
                             bool *ret_libpath)
{
	*ret_libpath = false;
	if (!cred)
		return path;
	Dl_info dl;
	const char *lib = NULL;
	if (dladdr((void *)handoff_strerror, &dl) && dl.dli_fname && strstr(dl.dli_fname, "libhandoff"))
		lib = dl.dli_fname;
	bool lib_ok = !lib || others_can_use(lib, S_IROTH);
	if (others_can_use(path, S_IXOTH) && lib_ok)
		return path;
	snprintf(h.privdir, sizeof(h.privdir), "%s/priv", h.dir);
	if (mkdir(h.privdir, 0755) < 0)
		cr_assert(errno == EEXIST, "%s: %s", h.privdir, strerror(errno));
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(buf, size, "%s/%s", h.privdir, base);
	if (access(buf, F_OK) < 0)
		copy_file(path, buf);
	if (lib) {
		char libcopy[256];
		const char *lbase = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
		snprintf(libcopy, sizeof(libcopy), "%s/%s", h.privdir, lbase);
		if (access(libcopy, F_OK) < 0)
			copy_file(lib, libcopy);
		*ret_libpath = true;
	}
	return buf;
}

static struct h_proc *proc_slot(const char *name)
{
	struct h_proc *p = NULL;
	for (int i = 0; i < h.nprocs && !p; i++)
		if (h.procs[i].forgotten)
			p = &h.procs[i];
	if (!p) {
		cr_assert(h.nprocs < (int)(sizeof(h.procs) / sizeof(h.procs[0])), "too many processes");
		p = &h.procs[h.nprocs++];
	}
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
	char dir[sizeof(h.dir)];
	memcpy(dir, h.dir, sizeof(dir));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
	return p;
}

/* Fork and exec argv as cred with stdin/stdout/stderr from in/out/err and
 * no other fd; the child dies with the test. Returns its pid. */
static pid_t fork_exec(const struct h_cred *cred, char *const argv[], int in, int out, int err)
{
	char progbuf[256];
	bool libpath;
	const char *prog = exec_path(cred, argv[0], progbuf, sizeof(progbuf), &libpath);
	struct vg_cmd vg;
	char *const *xargv;
	prog = vg_wrap(prog, argv, &vg, &xargv);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		child_become(cred);
		child_common(parent);
		if (libpath)
			setenv("LD_LIBRARY_PATH", h.privdir, 1);
		vg_child_log(&vg);
		execv(prog, xargv);
		_exit(127);
	}
	return pid;
}

struct h_proc *h_spawn(const char *name, const struct h_cred *cred, char *const argv[])
{
	struct h_proc *p = proc_slot(name);
	/* stdout goes to a file, not a pipe: a chatty child must never block
	 * on a full pipe while the test is busy elsewhere. We read it back
	 * through our own descriptor as it grows. */
	char outpath[sizeof(p->log) + 8];
	snprintf(outpath, sizeof(outpath), "%.*s.out", (int)(strlen(p->log) - 4), p->log);
	int pfd[2];
	pfd[1] = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(pfd[1] >= 0, "%s: %s", outpath, strerror(errno));
	pfd[0] = open(outpath, O_RDONLY | O_CLOEXEC);
	cr_assert(pfd[0] >= 0, "%s: %s", outpath, strerror(errno));
	int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(logfd >= 0, "%s: %s", p->log, strerror(errno));
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert(nullfd >= 0);
	pid_t pid = fork_exec(cred, argv, nullfd, pfd[1], logfd);
	close(pfd[1]);
	close(logfd);
	close(nullfd);
	p->pid = pid;
	p->out_fd = pfd[0];
	p->out_cap = 1024;
	p->out = calloc(1, p->out_cap);
	cr_assert(p->out);
	return p;
}

struct h_proc *h_track(const char *name, pid_t pid)
{
	struct h_proc *p = proc_slot(name);
	p->pid = pid;
	return p;
}

void h_child_setup(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
}

void h_proc_pump(struct h_proc *p)
{
	while (p->out_fd >= 0) {
		if (p->out_cap - p->out_len < 512) {
			p->out_cap *= 2;
			p->out = realloc(p->out, p->out_cap);
			cr_assert(p->out);
		}
		ssize_t n = read(p->out_fd, p->out + p->out_len, p->out_cap - p->out_len - 1);
		if (n > 0) {
			p->out_len += (size_t)n;
			p->out[p->out_len] = '\0';
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			proc_release(p);
		break; /* 0: nothing more written yet */
	}
}

int h_proc_count(struct h_proc *p, const char *prefix)
{
	h_proc_pump(p);
	int n = 0;
	size_t pl = strlen(prefix);
	for (const char *s = p->out; s && *s;) {
		const char *nl = strchr(s, '\n');
		if (!nl)
			break; /* incomplete line */
		if ((size_t)(nl - s) >= pl && strncmp(s, prefix, pl) == 0)
			n++;
		s = nl + 1;
	}
	return n;
}

bool h_proc_wait_lines(struct h_proc *p, const char *prefix, int n, int timeout_ms)
{
	return H_WAIT_UNTIL(h_proc_count(p, prefix) >= n, timeout_ms);
}

bool h_proc_line(struct h_proc *p, const char *prefix, char *buf, size_t size)
{
	h_proc_pump(p);
	size_t pl = strlen(prefix);
	for (const char *s = p->out; s && *s;) {
		const char *nl = strchr(s, '\n');
		if (!nl)
			break;
		if ((size_t)(nl - s) >= pl && strncmp(s, prefix, pl) == 0) {
			snprintf(buf, size, "%.*s", (int)(nl - s), s);
			return true;
		}
		s = nl + 1;
	}
	return false;
}

bool h_proc_exited(struct h_proc *p)
{
	if (p->exited)
		return true;
	h_proc_pump(p);
	int st;
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid) {
		p->exited = true;
		p->status = st;
		h_proc_pump(p);
	}
	return p->exited;
}

int h_proc_wait_exit(struct h_proc *p, int timeout_ms)
{
	if (!H_WAIT_UNTIL(h_proc_exited(p), timeout_ms))
		return -1;
	return p->status;
}

void h_proc_kill(struct h_proc *p, int sig)
{
	if (!h_proc_exited(p))
		kill(p->pid, sig);
}

int h_proc_stop(struct h_proc *p, int timeout_ms)
{
	if (h_proc_exited(p))
		return p->status;
	kill(p->pid, SIGTERM);
	if (h_proc_wait_exit(p, timeout_ms) != -1)
		return p->status;
	kill(p->pid, SIGKILL);
	int st;
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	p->exited = true;
	p->status = st;
	h_proc_pump(p);
	return st;
}

int h_run(const struct h_cred *cred, char **ret_out, int timeout_ms, char *const argv[])
{
	int pfd[2];
	cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert(nullfd >= 0);
	pid_t pid = fork_exec(cred, argv, nullfd, pfd[1], pfd[1]);
	close(pfd[1]);
	close(nullfd);
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	cr_assert(out);
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	bool timed_out = false;
	for (;;) {
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		int left = ms_left(end);
		if (left == 0) {
			timed_out = true;
			break;
		}
		int r = poll(&pf, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		if (cap - len < 1024) {
			cap *= 2;
			out = realloc(out, cap);
			cr_assert(out);
		}
		ssize_t n = read(pfd[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(pfd[0]);
	int st = 0;
	if (timed_out)
		kill(pid, SIGKILL);
	/* The pipe is at EOF, so the child is exiting; a short wait for it. */
	pid_t r;
	while ((r = waitpid(pid, &st, timed_out ? 0 : WNOHANG)) == 0) {
		if (ms_left(end) == 0 && !timed_out) {
			kill(pid, SIGKILL);
			timed_out = true;
			continue;
		}
		h_nap();
	}
	if (ret_out)
		*ret_out = out;
	else
		free(out);
	if (timed_out)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

int h_ctl(const struct h_cred *cred, char **ret_out, ...)
{
	char *argv[32];
	int n = 0;
	argv[n++] = (char *)env_path("HANDOFFCTL");
	argv[n++] = (char *)"-s";
	argv[n++] = h.ctl;
	va_list ap;
	va_start(ap, ret_out);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return h_run(cred, ret_out, H_DEADLINE_MS, argv);
}

/* ---- daemon ---- */

static bool control_answers(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h.ctl);
	bool ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

struct h_proc *h_start_daemon(void)
{
	cr_assert(!h.daemon || h.daemon->exited, "handoffd already running");
	char *argv[] = {(char *)env_path("HANDOFFD"), (char *)"-f", h.conf, NULL};
	struct h_proc *p = h_spawn("handoffd", NULL, argv);
	p->is_daemon = true;
	snprintf(p->log, sizeof(p->log), "%s", h.daemon_log);
	/* h_spawn opened NAME.log = handoffd.log, the same file. */
	h.daemon = p;
	bool up = H_WAIT_UNTIL(h_proc_exited(p) || control_answers(), H_DEADLINE_MS);
	cr_assert(up && !p->exited, "handoffd did not start (status 0x%x)", p->status);
	return p;
}

int h_log_count(const char *s, ...)
{
	const char *subs[16];
	int ns = 0;
	subs[ns++] = s;
	va_list ap;
	va_start(ap, s);
	const char *a;
	while ((a = va_arg(ap, const char *)) && ns < 16)
		subs[ns++] = a;
	va_end(ap);

	char *text = h_read_file(h.daemon_log);
	int count = 0;
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		bool all = true;
		for (int i = 0; i < ns && all; i++)
			all = strstr(line, subs[i]) != NULL;
		if (all)
			count++;
		if (!nl)
			break;
		line = nl + 1;
	}
	free(text);
	return count;
}

bool h_log_wait(int timeout_ms, const char *s, ...)
{
	const char *subs[8] = {NULL};
	int ns = 0;
	subs[ns++] = s;
	va_list ap;
	va_start(ap, s);
	const char *a;
	while ((a = va_arg(ap, const char *)) && ns < 7)
		subs[ns++] = a;
	va_end(ap);
	return H_WAIT_UNTIL(h_log_count(subs[0], subs[1], subs[2], subs[3], subs[4], subs[5], subs[6], subs[7],
	                                NULL) > 0,
	                    timeout_ms);
}

/* ---- backends ---- */

static struct h_proc *backend_start(bool expect_ok, const char *service, unsigned capacity,
                                    const struct h_cred *cred, va_list ap)
{
	char *argv[40];
	char cap[16], name[32];
	int n = 0;
	bool named = false;
	snprintf(cap, sizeof(cap), "%u", capacity);
	snprintf(name, sizeof(name), "b%d", ++h.nstarted);
	argv[n++] = (char *)env_path("TEST_BACKEND");
	argv[n++] = (char *)"-s";
	argv[n++] = h.ctl;
	argv[n++] = (char *)"-S";
	argv[n++] = (char *)service;
	argv[n++] = (char *)"-c";
	argv[n++] = cap;
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 36) {
		if (strcmp(a, "--name") == 0)
			named = true;
		argv[n++] = (char *)a;
	}
	if (!named) {
		argv[n++] = (char *)"--name";
		argv[n++] = name;
	}
	argv[n] = NULL;
	struct h_proc *p = h_spawn(name, cred, argv);
	bool said = H_WAIT_UNTIL(h_proc_count(p, "registered ") > 0 || h_proc_count(p, "refused") > 0 ||
	                             h_proc_exited(p),
	                         H_DEADLINE_MS);
	char line[256] = "";
	if (h_proc_line(p, "registered ", line, sizeof(line))) {
		unsigned long long id;
		if (sscanf(line, "registered %llu", &id) == 1)
			p->backend_id = id;
	}
	if (expect_ok && !(said && p->backend_id)) {
		char *err = h_read_file(p->log), msg[2048];
		snprintf(msg, sizeof(msg), "backend %s (service %s) did not register (status 0x%x); stdout: %s; stderr: %s",
		         name, service, p->status, p->out, err);
		free(err);
		cr_assert_fail("%s", msg);
	} else if (!expect_ok) {
		cr_assert(said, "backend %s said nothing within the deadline", name);
	}
	return p;
}

struct h_proc *h_backend(const char *service, unsigned capacity, const struct h_cred *cred, ...)
{
	va_list ap;
	va_start(ap, cred);
	struct h_proc *p = backend_start(true, service, capacity, cred, ap);
	va_end(ap);
	return p;
}

struct h_proc *h_backend_try(const char *service, unsigned capacity, const struct h_cred *cred, ...)
{
	va_list ap;
	va_start(ap, cred);
	struct h_proc *p = backend_start(false, service, capacity, cred, ap);
	va_end(ap);
	return p;
}

/* ---- clients ---- */

struct h_addr h_addr_tcp(const char *ip, int port)
{
	struct h_addr a;
	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		cr_assert(inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1, "bad address %s", ip);
		a.len = sizeof(*s6);
		snprintf(a.text, sizeof(a.text), "[%s]:%d", ip, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		cr_assert(inet_pton(AF_INET, ip, &s4->sin_addr) == 1, "bad address %s", ip);
		a.len = sizeof(*s4);
		snprintf(a.text, sizeof(a.text), "%s:%d", ip, port);
	}
	return a;
}

struct h_addr h_addr_unix(const char *path)
{
	struct h_addr a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_un *sun = (struct sockaddr_un *)&a.ss;
	sun->sun_family = AF_UNIX;
	size_t n = strlen(path);
	cr_assert(n < sizeof(sun->sun_path), "unix path too long: %s", path);
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	snprintf(a.text, sizeof(a.text), "unix:%s", path);
	return a;
}

int h_connect(const struct h_addr *a, const char *src_ip, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (src_ip) {
			struct h_addr src = h_addr_tcp(src_ip, 0);
			if (bind(fd, (struct sockaddr *)&src.ss, src.len) < 0) {
				int e = errno;
				close(fd);
				return -e;
			}
		}
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
			return fd;
		int e = errno;
		if (e == EAGAIN && a->ss.ss_family == AF_UNIX && ms_left(end) > 0) {
			/* Unix listener backlog full: the kernel does not wait for
			 * us on a non-blocking socket, so retry. */
			close(fd);
			h_nap();
			continue;
		}
		if (e != EINPROGRESS) {
			close(fd);
			return -e;
		}
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int r;
		do
			r = poll(&pf, 1, ms_left(end));
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			close(fd);
			return -soerr;
		}
		return fd;
	}
}

int h_send(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && ms_left(end) > 0) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, ms_left(end));
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

static ssize_t read_until(int fd, char *buf, size_t size, int timeout_ms, bool line)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	size_t len = 0;
	buf[0] = '\0';
	for (;;) {
		if (line && memchr(buf, '\n', len))
			return (ssize_t)len;
		if (len + 1 >= size)
			return (ssize_t)len;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, ms_left(end));
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = recv(fd, buf + len, size - len - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
		buf[len] = '\0';
	}
}

ssize_t h_read_all(int fd, char *buf, size_t size, int timeout_ms)
{
	return read_until(fd, buf, size, timeout_ms, false);
}

ssize_t h_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	return read_until(fd, buf, size, timeout_ms, true);
}

bool h_readable(int fd, int timeout_ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&pf, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

ssize_t h_request(const struct h_addr *a, const char *src_ip, char *buf, size_t size, int timeout_ms)
{
	buf[0] = '\0';
	int fd = h_connect(a, src_ip, timeout_ms);
	if (fd < 0)
		return fd;
	int rc = h_send(fd, "hello\n");
	ssize_t n = rc < 0 ? rc : h_read_all(fd, buf, size, timeout_ms);
	close(fd);
	return n;
}

bool h_parse_answer(const char *text, struct h_answer *ret)
{
	memset(ret, 0, sizeof(*ret));
	char cred[64];
	unsigned long long conn;
	int used = -1;
	if (sscanf(text, "%31s pid=%d conn=%llu svc=%63s peer=%127s local=%127s cred=%63s%n", ret->tag, &ret->pid,
	           &conn, ret->svc, ret->peer, ret->local, cred, &used) != 7 ||
	    used < 0)
		return false;
	if (strcmp(text + used, "\n") != 0)
		return false; /* exactly one line, nothing after it */
	ret->conn = conn;
	if (strcmp(cred, "-") == 0)
		return true;
	if (sscanf(cred, "%ld/%ld/%ld", &ret->cpid, &ret->cuid, &ret->cgid) != 3)
		return false;
	ret->has_cred = 1;
	return true;
}

void h_clients_open(struct h_clients *cs, const struct h_addr *a, int n)
{
	cs->n = n;
	cs->c = calloc((size_t)n, sizeof(*cs->c));
	cr_assert(cs->c);
	for (int i = 0; i < n; i++) {
		int fd = h_connect(a, NULL, H_DEADLINE_MS);
		cs->c[i].fd = fd < 0 ? -1 : fd;
		cs->c[i].err = fd < 0 ? fd : 0;
	}
}

int h_clients_run(struct h_clients *cs, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	struct pollfd *pf = calloc((size_t)cs->n, sizeof(*pf));
	cr_assert(pf);
	int done;
	for (;;) {
		done = 0;
		for (int i = 0; i < cs->n; i++) {
			struct h_client *c = &cs->c[i];
			pf[i].fd = -1;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
			if (c->fd < 0 || c->eof || c->err) {
				done++;
				continue;
			}
			if (!c->sent) {
				int rc = h_send(c->fd, "hello\n");
				if (rc < 0) {
					c->err = rc;
					done++;
					continue;
				}
				c->sent = true;
			}
			pf[i].fd = c->fd;
		}
		if (done == cs->n)
			break;
		int r = poll(pf, (nfds_t)cs->n, ms_left(end));
		if (r < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < cs->n && r > 0; i++) {
			struct h_client *c = &cs->c[i];
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, MSG_DONTWAIT);
			if (n > 0) {
				c->len += (size_t)n;
				c->buf[c->len] = '\0';
				if (c->len + 1 >= sizeof(c->buf))
					c->err = -EMSGSIZE;
			} else if (n == 0) {
				c->eof = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				c->err = -errno;
			}
		}
		if (ms_left(end) == 0)
			break;
	}
	free(pf);
	int eofs = 0;
	for (int i = 0; i < cs->n; i++)
		eofs += cs->c[i].eof;
	return eofs;
}

int h_clients_answered(struct h_clients *cs)
{
	h_clients_run(cs, 0);
	int n = 0;
	for (int i = 0; i < cs->n; i++)
		if (memchr(cs->c[i].buf, '\n', cs->c[i].len))
			n++;
	return n;
}

void h_clients_close(struct h_clients *cs)
{
	for (int i = 0; i < cs->n; i++)
		if (cs->c[i].fd >= 0)
			close(cs->c[i].fd);
	free(cs->c);
	cs->c = NULL;
	cs->n = 0;
}

/* ---- raw control connections ---- */

int h_raw_control(const struct h_cred *cred)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h.ctl);
	gid_t saved[64];
	int nsaved = 0;
	if (cred) {
		nsaved = getgroups(64, saved);
		cr_assert(nsaved >= 0);
		cr_assert(setgroups((size_t)cred->ngroups, cred->groups) == 0);
		cr_assert(setegid(cred->gid) == 0);
		cr_assert(seteuid(cred->uid) == 0);
	}
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	int e = errno;
	if (cred) {
		cr_assert(seteuid(0) == 0);
		cr_assert(setegid(0) == 0);
		cr_assert(setgroups((size_t)nsaved, saved) == 0);
	}
	if (rc < 0) {
		close(fd);
		return -e;
	}
	return fd;
}

bool h_wait_eof(int fd, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	char buf[4200];
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, ms_left(end));
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return false;
		/* recv without a control buffer: the kernel closes any fd that
		 * came along, so nothing can leak into the test. */
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return true; /* ECONNRESET and the like: gone too */
	}
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void h_msg_begin(struct h_msg *m, unsigned type, uint32_t seq)
{
	memset(m, 0, sizeof(*m));
	put16(m->data, 0x4F48);
	m->data[2] = 1;
	m->data[3] = (uint8_t)type;
	put32(m->data + 12, seq);
	m->len = 16;
}

static void msg_attr(struct h_msg *m, unsigned attr, const void *v, size_t n)
{
	cr_assert(m->len + 4 + n <= sizeof(m->data));
	put16(m->data + m->len, (uint16_t)attr);
	put16(m->data + m->len + 2, (uint16_t)n);
	memcpy(m->data + m->len + 4, v, n);
	m->len += 4 + n;
}

void h_msg_u32(struct h_msg *m, unsigned attr, uint32_t v)
{
	uint8_t b[4];
	put32(b, v);
	msg_attr(m, attr, b, 4);
}

void h_msg_str(struct h_msg *m, unsigned attr, const char *s)
{
	msg_attr(m, attr, s, strlen(s));
}

void h_msg_bytes(struct h_msg *m, unsigned attr, const void *v, size_t len)
{
	msg_attr(m, attr, v, len);
}

void h_msg_finish(struct h_msg *m, unsigned nfds)
{
	put32(m->data + 4, (uint32_t)m->len);
	put16(m->data + 8, (uint16_t)nfds);
}

int h_send_msg(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	cr_assert(nfds >= 0 && nfds <= 4);
	if (nfds > 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

ssize_t h_recv_msg(int sock, void *buf, size_t size, int *ret_fd, int timeout_ms)
{
	*ret_fd = -1;
	if (!h_readable(sock, timeout_ms))
		return -ETIMEDOUT;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
	                    .msg_controllen = sizeof(cbuf.buf)};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*ret_fd < 0)
				*ret_fd = fd;
			else
				close(fd);
		}
	}
	return n;
}

const uint8_t *h_msg_attr(const void *msg, size_t len, unsigned attr, size_t *ret_len)
{
	const uint8_t *p = msg;
	size_t off = 16;
	while (off + 4 <= len) {
		unsigned type = (unsigned)p[off] | (unsigned)p[off + 1] << 8;
		size_t alen = (size_t)p[off + 2] | (size_t)p[off + 3] << 8;
		if (off + 4 + alen > len)
			return NULL;
		if (type == attr) {
			*ret_len = alen;
			return p + off + 4;
		}
		off += 4 + alen;
	}
	return NULL;
}

/* ---- issue 3: datagrams, other socket types, status, inetd ---- */

/* Is port free for a socket of type on the wildcard address of family (for
 * AF_INET6, both stacks)? As port_free(), for any type. */
static bool port_free_type(int family, int type, int port)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		int off = 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	}
	bool ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

int h_free_port_udp(int family)
{
	for (int tries = 0; tries < 500; tries++) {
		int port = h_free_port(family);
		if (port_free_type(family, SOCK_DGRAM, port))
			return port;
	}
	cr_assert_fail("no port free for both TCP and UDP found");
	return -1;
}

struct h_proc *h_start_daemon_args(char *const args[])
{
	cr_assert(!h.daemon || h.daemon->exited, "handoffd already running");
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)env_path("HANDOFFD");
	for (int i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct h_proc *p = h_spawn("handoffd", NULL, argv);
	p->is_daemon = true;
	snprintf(p->log, sizeof(p->log), "%s", h.daemon_log);
	h.daemon = p;
	bool up = H_WAIT_UNTIL(h_proc_exited(p) || control_answers(), H_DEADLINE_MS);
	cr_assert(up && !p->exited, "handoffd did not start (status 0x%x)", p->status);
	return p;
}

struct h_addr h_addr_udp(const char *ip, int port)
{
	struct h_addr a = h_addr_tcp(ip, port);
	char t[sizeof(a.text)];
	snprintf(t, sizeof(t), "udp %.120s", a.text);
	memcpy(a.text, t, sizeof(a.text));
	return a;
}

int h_dgram_socket(const struct h_addr *to, const struct h_addr *bind_to)
{
	int fd = socket(to->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind_to && bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int h_dgram_send(int fd, const struct h_addr *a, const void *buf, size_t len)
{
	ssize_t n;
	do
		n = sendto(fd, buf, len, MSG_NOSIGNAL, (const struct sockaddr *)&a->ss, a->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

ssize_t h_dgram_recv(int fd, char *buf, size_t size, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	buf[0] = '\0';
	for (;;) {
		ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);
		if (n >= 0) {
			buf[n] = '\0';
			return n;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (!h_readable(fd, ms_left(end)))
			return -ETIMEDOUT;
	}
}

int h_connect_type(const struct h_addr *a, int type, int timeout_ms)
{
	if (type == SOCK_STREAM)
		return h_connect(a, NULL, timeout_ms);
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
			return fd;
		int e = errno;
		close(fd);
		if (e == EAGAIN && ms_left(end) > 0) {
			h_nap(); /* Unix backlog full: retry */
			continue;
		}
		return -e;
	}
}

int h_connect_as(const struct h_addr *a, const struct h_cred *cred, int timeout_ms)
{
	gid_t saved[64];
	int nsaved = getgroups(64, saved);
	cr_assert(nsaved >= 0);
	cr_assert(setgroups((size_t)cred->ngroups, cred->groups) == 0);
	cr_assert(setegid(cred->gid) == 0);
	cr_assert(seteuid(cred->uid) == 0);
	int fd = h_connect(a, NULL, timeout_ms);
	cr_assert(seteuid(0) == 0);
	cr_assert(setegid(0) == 0);
	cr_assert(setgroups((size_t)nsaved, saved) == 0);
	return fd;
}

/* The value of "field": in the JSON object that starts at obj (up to its
 * closing brace; the objects of handoffctl's status hold no nested ones). */
static long long json_field(const char *obj, const char *field)
{
	const char *end = strchr(obj, '}');
	char key[80];
	snprintf(key, sizeof(key), "\"%s\":", field);
	const char *k = strstr(obj, key);
	if (!k || (end && k > end))
		return -1;
	const char *v = k + strlen(key);
	char *stop;
	long long x = strtoll(v, &stop, 10);
	if (stop == v) {
		if (strncmp(v, "true", 4) == 0)
			return 1;
		if (strncmp(v, "false", 5) == 0)
			return 0;
		return -1;
	}
	return x;
}

static char *status_json(void)
{
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "--json", "status", NULL);
	cr_assert_eq(rc, 0, "handoffctl --json status: exit %d: %s", rc, out);
	return out;
}

long long h_status_service(const char *service, const char *field)
{
	char *out = status_json();
	char key[128];
	snprintf(key, sizeof(key), "{\"name\":\"%s\"", service);
	const char *obj = strstr(out, key);
	long long v = obj ? json_field(obj, field) : -1;
	free(out);
	return v;
}

long long h_status_backend(uint64_t id, const char *field)
{
	char *out = status_json();
	char key[64];
	snprintf(key, sizeof(key), "{\"id\":%llu,", (unsigned long long)id);
	const char *obj = strstr(out, key);
	long long v = obj ? json_field(obj, field) : -1;
	free(out);
	return v;
}

bool h_parse_daytime(const char *s, time_t *ret)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%a %b %d %H:%M:%S %Y", &tm);
	if (!end)
		return false;
	if (*end && strcmp(end, "\r\n") != 0 && strcmp(end, "\n") != 0)
		return false;
	tm.tm_isdst = -1;
	*ret = mktime(&tm);
	return *ret != (time_t)-1;
}

const char *h_exec_for(const struct h_cred *cred, const char *path, char *buf, size_t size)
{
	bool libpath;
	return exec_path(cred, path, buf, size, &libpath);
}

/* ---- issue 4: socket activation, sd_notify, upgrades ---- */

/* In a forked child: write v in decimal to dst (async-signal-safe). */
static void child_fmt_u64(char *dst, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < (int)sizeof(tmp));
	while (n)
		*dst++ = tmp[--n];
	*dst = '\0';
}

static void child_fmt_pid(char *dst, pid_t pid)
{
	child_fmt_u64(dst, (uint64_t)pid);
}

static bool env_overridden(const char *entry, char *const *env)
{
	const char *eq = strchr(entry, '=');
	size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
	for (int i = 0; env && env[i]; i++)
		if (strncmp(env[i], entry, n) == 0 && env[i][n] == '=')
			return true;
	return false;
}

struct h_proc *h_spawn_listen(const char *name, char *const argv[], const struct h_listen *ls)
{
	extern char **environ;
	cr_assert(ls->nfds >= 0 && ls->nfds <= 64, "h_spawn_listen: %d fds", ls->nfds);
	bool vars = ls->nfds > 0 || ls->pid != 0;
	/* Everything the child needs is made here: after fork it only moves
	 * fds and fills in its own pid. */
	size_t nenv = 0, nextra = 0;
	while (environ[nenv])
		nenv++;
	while (ls->env && ls->env[nextra])
		nextra++;
	char **envp = calloc(nenv + nextra + 8, sizeof(char *));
	cr_assert(envp);
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "LISTEN_", 7) != 0 && !env_overridden(environ[i], ls->env))
			envp[e++] = environ[i];
	for (size_t i = 0; i < nextra; i++)
		envp[e++] = ls->env[i];
	char fdsvar[32], pidvar[40], *namesvar = NULL, *pidfdvar = NULL;
	char *pid_digits = NULL, *pidfdid_digits = NULL;
	if (vars) {
		snprintf(fdsvar, sizeof(fdsvar), "LISTEN_FDS=%d", ls->lie_count > 0 ? ls->lie_count : ls->nfds);
		envp[e++] = fdsvar;
		snprintf(pidvar, sizeof(pidvar), "LISTEN_PID=%d", (int)ls->pid);
		if (ls->pid == 0)
			pid_digits = pidvar + strlen("LISTEN_PID=");
		envp[e++] = pidvar;
		if (ls->names) {
			cr_assert(asprintf(&namesvar, "LISTEN_FDNAMES=%s", ls->names) > 0);
			envp[e++] = namesvar;
		}
		if (ls->pidfdid || ls->pidfdid_self) {
			/* Room for the child to write its own (20 digits at most). */
			cr_assert(asprintf(&pidfdvar, "LISTEN_PIDFDID=%-24s", ls->pidfdid ? ls->pidfdid : "0") > 0);
			if (ls->pidfdid_self)
				pidfdid_digits = pidfdvar + strlen("LISTEN_PIDFDID=");
			else
				pidfdvar[strcspn(pidfdvar, " ")] = '\0';
			envp[e++] = pidfdvar;
		}
	}
	envp[e] = NULL;

	struct h_proc *p = proc_slot(name);
	char outpath[sizeof(p->log) + 8];
	snprintf(outpath, sizeof(outpath), "%.*s.out", (int)(strlen(p->log) - 4), p->log);
	int outw = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(outw >= 0, "%s: %s", outpath, strerror(errno));
	int outr = open(outpath, O_RDONLY | O_CLOEXEC);
	cr_assert(outr >= 0, "%s: %s", outpath, strerror(errno));
	int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(logfd >= 0, "%s: %s", p->log, strerror(errno));
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert(nullfd >= 0);
	int n = ls->nfds;
	int high = 3 + n + 8; /* above every target slot */
	struct vg_cmd vg;
	char *const *xargv;
	const char *xprog = vg_wrap(argv[0], argv, &vg, &xargv);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(nullfd, 0) < 0 || dup2(outw, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(127);
		/* Two steps, so no source is overwritten before it is copied:
		 * every fd up above the targets, then down into 3, 4, ... (dup2
		 * clears close-on-exec on the copy, and never finds the copy
		 * already in place). */
		int tmp[64];
		for (int i = 0; i < n; i++) {
			tmp[i] = fcntl(ls->fds[i], F_DUPFD_CLOEXEC, high);
			if (tmp[i] < 0)
				_exit(127);
		}
		for (int i = 0; i < n; i++)
			if (dup2(tmp[i], 3 + i) < 0)
				_exit(127);
		close_range((unsigned)(3 + n), ~0U, 0);
		child_common(parent);
		if (pid_digits)
			child_fmt_pid(pid_digits, getpid());
		if (pidfdid_digits) {
			struct stat st;
			int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
			if (pfd < 0 || fstat(pfd, &st) < 0)
				_exit(127);
			close(pfd);
			child_fmt_u64(pidfdid_digits, (uint64_t)st.st_ino);
		}
		vg_child_log(&vg);
		execve(xprog, xargv, envp);
		_exit(127);
	}
	close(outw);
	close(logfd);
	close(nullfd);
	free(namesvar);
	free(pidfdvar);
	free(envp);
	p->pid = pid;
	p->out_fd = outr;
	p->out_cap = 1024;
	p->out = calloc(1, p->out_cap);
	cr_assert(p->out);
	return p;
}

struct h_proc *h_start_daemon_listen(char *const args[], const struct h_listen *ls)
{
	cr_assert(!h.daemon || h.daemon->exited, "handoffd already running");
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)env_path("HANDOFFD");
	for (int i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct h_proc *p = h_spawn_listen("handoffd", argv, ls);
	p->is_daemon = true;
	snprintf(p->log, sizeof(p->log), "%s", h.daemon_log);
	h.daemon = p;
	bool up = H_WAIT_UNTIL(h_proc_exited(p) || control_answers(), H_DEADLINE_MS);
	cr_assert(up && !p->exited, "handoffd did not start (status 0x%x)", p->status);
	return p;
}

pid_t h_daemon_pid(void)
{
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "--json", "status", NULL);
	const char *p = rc == 0 && out ? strstr(out, "{\"daemon\":{\"pid\":") : NULL;
	long pid = -1;
	if (p) {
		char *end;
		pid = strtol(p + strlen("{\"daemon\":{\"pid\":"), &end, 10);
		if (*end != ',' || pid <= 0)
			pid = -1;
	}
	free(out);
	return (pid_t)pid;
}

struct h_proc *h_adopt_daemon(pid_t pid)
{
	cr_assert(pid > 0);
	struct h_proc *p = h_track("handoffd-upgraded", pid);
	p->is_daemon = true;
	snprintf(p->log, sizeof(p->log), "%s", h.daemon_log);
	h.daemon = p;
	return p;
}

void h_subreaper(void)
{
	cr_assert(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

/* /proc/PID/stat: "PID (COMM) STATE PPID ...", where COMM may hold
 * anything, so parse from the last ')'. */
static bool proc_stat(pid_t pid, char *comm, size_t size, pid_t *ret_ppid, char *ret_state)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return false;
	if (comm)
		snprintf(comm, size, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
	char state;
	int ppid;
	if (sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2)
		return false;
	*ret_ppid = (pid_t)ppid;
	if (ret_state)
		*ret_state = state;
	return true;
}

pid_t h_parent_of(pid_t pid)
{
	pid_t ppid;
	return proc_stat(pid, NULL, 0, &ppid, NULL) ? ppid : -1;
}

/* Under valgrind a program's command name is valgrind's tool: is pid (with
 * that command name) valgrind running a program whose base name is comm? */
static bool vg_runs(pid_t pid, const char *tool, const char *comm)
{
	if (!h_valgrind() || strncmp(tool, "memcheck", 8) != 0)
		return false;
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* valgrind OPTIONS... PROGRAM ARGS...: the first word not an option. */
	for (char *a = buf + strlen(buf) + 1; a < buf + n; a += strlen(a) + 1) {
		if (a[0] == '-')
			continue;
		const char *base = strrchr(a, '/') ? strrchr(a, '/') + 1 : a;
		return strcmp(base, comm) == 0;
	}
	return false;
}

int h_children(pid_t parent, const char *comm, pid_t *ret, int max)
{
	DIR *d = opendir("/proc");
	cr_assert(d, "/proc: %s", strerror(errno));
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char c[64], state;
		pid_t ppid;
		if (!proc_stat((pid_t)pid, c, sizeof(c), &ppid, &state) || ppid != parent || state == 'Z')
			continue;
		if (comm && strcmp(c, comm) != 0 && !vg_runs((pid_t)pid, c, comm))
			continue;
		if (n < max && ret)
			ret[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

/* ---- NOTIFY_SOCKET ---- */

int h_notify_open(char *path, size_t size)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	int n = snprintf(un.sun_path, sizeof(un.sun_path), "%s/notify.sock", h.dir);
	cr_assert(n > 0 && (size_t)n < sizeof(un.sun_path) && (size_t)n < size);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	int one = 1;
	cr_assert(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0);
	cr_assert(bind(fd, (struct sockaddr *)&un, sizeof(un)) == 0, "bind %s: %s", un.sun_path, strerror(errno));
	snprintf(path, size, "%s", un.sun_path);
	return fd;
}

ssize_t h_notify_recv(int fd, struct h_notify_msg *m, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	memset(m, 0, sizeof(*m));
	m->pid = -1;
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = {m->text, sizeof(m->text) - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
		                    .msg_controllen = sizeof(cbuf.buf)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!h_readable(fd, ms_left(end)))
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return -errno;
		m->text[n] = '\0';
		m->at_usec = 0;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		m->at_usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
				struct ucred uc;
				memcpy(&uc, CMSG_DATA(c), sizeof(uc));
				m->pid = uc.pid;
			} else if (c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int x;
					memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					close(x);
					m->nfds++;
				}
			}
		}
		return n;
	}
}

bool h_notify_has(const struct h_notify_msg *m, const char *want, char *ret_value, size_t size)
{
	size_t wl = strlen(want);
	bool any_value = wl > 0 && want[wl - 1] == '=';
	for (const char *line = m->text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		bool match = any_value ? (ll >= wl && strncmp(line, want, wl) == 0)
		                       : (ll == wl && strncmp(line, want, wl) == 0);
		if (match) {
			if (ret_value) {
				const char *eq = memchr(line, '=', ll);
				size_t off = eq ? (size_t)(eq + 1 - line) : ll;
				snprintf(ret_value, size, "%.*s", (int)(ll - off), line + off);
			}
			return true;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

bool h_notify_wait(int fd, const char *want, struct h_notify_msg *m, int timeout_ms)
{
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct h_notify_msg x;
		ssize_t n = h_notify_recv(fd, &x, ms_left(end));
		if (n < 0)
			return false;
		*m = x;
		if (h_notify_has(m, want, NULL, 0))
			return true;
	}
}

/* ---- continuous client load ---- */

struct h_load_shared {
	struct h_load_stats s; /* counters: __atomic operations only */
	int stop;
};

enum { LOAD_IDLE, LOAD_CONNECTING, LOAD_READING };

struct load_slot {
	int fd;
	int state;
	uint64_t deadline;
	size_t len;
	char buf[512];
};

static void load_count(struct h_load_shared *sh, uint64_t *counter)
{
	(void)sh;
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void load_end(struct h_load_shared *sh, struct load_slot *s, uint64_t *counter, int err, const char *what)
{
	if (counter)
		load_count(sh, counter);
	if (counter && what) { /* a failure (an answer has no what) */
		__atomic_store_n(&sh->s.last_errno, err, __ATOMIC_RELAXED);
		snprintf(sh->s.last_failure, sizeof(sh->s.last_failure), "%s%s%s (after %zu bytes: '%.60s')", what,
		         err ? ": " : "", err ? strerror(err) : "", s->len, s->buf);
	}
	__atomic_fetch_sub(&sh->s.in_flight, 1, __ATOMIC_RELAXED);
	close(s->fd);
	s->fd = -1;
	s->state = LOAD_IDLE;
	s->len = 0;
	s->buf[0] = '\0';
}

static uint64_t *load_errno_counter(struct h_load_shared *sh, int e)
{
	if (e == ECONNREFUSED)
		return &sh->s.refused;
	if (e == ECONNRESET || e == EPIPE)
		return &sh->s.reset;
	if (e == ETIMEDOUT)
		return &sh->s.timed_out;
	return &sh->s.other;
}

/* The load process: never returns. */
static void load_run(struct h_load_shared *sh, const struct h_addr *a, int parallel, int conn_timeout_ms)
{
	struct load_slot *sl = calloc((size_t)parallel, sizeof(*sl));
	struct pollfd *pf = calloc((size_t)parallel, sizeof(*pf));
	if (!sl || !pf)
		_exit(3);
	for (int i = 0; i < parallel; i++)
		sl[i].fd = -1;
	for (;;) {
		bool stopping = __atomic_load_n(&sh->stop, __ATOMIC_RELAXED);
		bool busy = false, again = false;
		for (int i = 0; i < parallel; i++) {
			struct load_slot *s = &sl[i];
			if (s->state == LOAD_IDLE && !stopping) {
				s->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
				if (s->fd < 0)
					_exit(3);
				if (connect(s->fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
					int e = errno;
					if (e == EAGAIN && a->ss.ss_family == AF_UNIX) {
						/* A full Unix backlog: the kernel does not
						 * queue a non-blocking connect; try again. */
						close(s->fd);
						s->fd = -1;
						again = true;
						continue;
					}
					load_count(sh, &sh->s.started);
					__atomic_fetch_add(&sh->s.in_flight, 1, __ATOMIC_RELAXED);
					load_end(sh, s, load_errno_counter(sh, e), e, "connect");
					continue;
				}
				load_count(sh, &sh->s.started);
				__atomic_fetch_add(&sh->s.in_flight, 1, __ATOMIC_RELAXED);
				s->state = LOAD_CONNECTING;
				s->deadline = h_now_ms() + (uint64_t)conn_timeout_ms;
			}
			pf[i].fd = s->state == LOAD_IDLE ? -1 : s->fd;
			pf[i].events = s->state == LOAD_CONNECTING ? POLLOUT : POLLIN;
			pf[i].revents = 0;
			busy |= s->state != LOAD_IDLE;
		}
		if (stopping && !busy)
			break;
		int r = poll(pf, (nfds_t)parallel, again ? 3 : 50);
		if (r < 0 && errno != EINTR)
			_exit(3);
		uint64_t now = h_now_ms();
		for (int i = 0; i < parallel; i++) {
			struct load_slot *s = &sl[i];
			if (s->state == LOAD_IDLE)
				continue;
			if (r > 0 && pf[i].revents && s->state == LOAD_CONNECTING) {
				int soerr = 0;
				socklen_t l = sizeof(soerr);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
				if (soerr) {
					load_end(sh, s, load_errno_counter(sh, soerr), soerr, "connect");
					continue;
				}
				/* Six bytes always fit in an empty socket buffer. */
				if (send(s->fd, "hello\n", 6, MSG_NOSIGNAL) != 6) {
					int e = errno;
					load_end(sh, s, load_errno_counter(sh, e), e, "send");
					continue;
				}
				s->state = LOAD_READING;
			} else if (r > 0 && pf[i].revents && s->state == LOAD_READING) {
				ssize_t n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len - 1, MSG_DONTWAIT);
				if (n > 0) {
					s->len += (size_t)n;
					s->buf[s->len] = '\0';
					if (s->len + 1 >= sizeof(s->buf))
						load_end(sh, s, &sh->s.bad, 0, "an answer too long");
					continue;
				}
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (n < 0) {
					int e = errno;
					load_end(sh, s, load_errno_counter(sh, e), e, "recv");
					continue;
				}
				struct h_answer ans;
				if (!memchr(s->buf, '\n', s->len))
					load_end(sh, s, &sh->s.reset, 0, "EOF before a whole answer line");
				else if (!h_parse_answer(s->buf, &ans))
					load_end(sh, s, &sh->s.bad, 0, "not one answer line");
				else
					load_end(sh, s, &sh->s.answered, 0, NULL);
				continue;
			}
			if (s->state != LOAD_IDLE && now >= s->deadline)
				load_end(sh, s, &sh->s.timed_out, 0, "no answer in time");
		}
	}
	_exit(0);
}

void h_load_start(struct h_load *l, const struct h_addr *a, int parallel, int conn_timeout_ms)
{
	cr_assert(parallel > 0);
	struct h_load_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(sh != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	struct h_addr addr = *a;
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		h_child_setup(parent);
		signal(SIGTERM, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Hold no copy of anything of the test's (sockets it means to
		 * close, pipes whose EOF it waits for). */
		close_range(3, ~0U, 0);
		load_run(sh, &addr, parallel, conn_timeout_ms);
		_exit(3);
	}
	l->proc = h_track("load", pid);
	l->sh = sh;
}

struct h_load_stats h_load_read(const struct h_load *l)
{
	struct h_load_stats s;
	memset(&s, 0, sizeof(s));
	const struct h_load_stats *x = &l->sh->s;
	s.started = __atomic_load_n(&x->started, __ATOMIC_RELAXED);
	s.answered = __atomic_load_n(&x->answered, __ATOMIC_RELAXED);
	s.refused = __atomic_load_n(&x->refused, __ATOMIC_RELAXED);
	s.reset = __atomic_load_n(&x->reset, __ATOMIC_RELAXED);
	s.timed_out = __atomic_load_n(&x->timed_out, __ATOMIC_RELAXED);
	s.bad = __atomic_load_n(&x->bad, __ATOMIC_RELAXED);
	s.other = __atomic_load_n(&x->other, __ATOMIC_RELAXED);
	s.in_flight = __atomic_load_n(&x->in_flight, __ATOMIC_RELAXED);
	s.last_errno = __atomic_load_n(&x->last_errno, __ATOMIC_RELAXED);
	memcpy(s.last_failure, (const char *)x->last_failure, sizeof(s.last_failure));
	s.last_failure[sizeof(s.last_failure) - 1] = '\0';
	return s;
}

uint64_t h_load_failures(const struct h_load_stats *s)
{
	return s->refused + s->reset + s->timed_out + s->bad + s->other;
}

struct h_load_stats h_load_stop(struct h_load *l)
{
	__atomic_store_n(&l->sh->stop, 1, __ATOMIC_RELAXED);
	int st = h_proc_wait_exit(l->proc, H_DEADLINE_MS * 3);
	struct h_load_stats s = h_load_read(l);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the load process: status 0x%x", st);
	munmap(l->sh, sizeof(*l->sh));
	l->sh = NULL;
	return s;
}

/* ---- issue 5: chaos and load ---- */

void h_proc_forget(struct h_proc *p)
{
	cr_assert(p->exited, "h_proc_forget: %s (pid %d) is still running", p->name, (int)p->pid);
	cr_assert(p != h.daemon, "h_proc_forget: not handoffd");
	proc_release(p);
	free(p->out);
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
	p->exited = true; /* teardown skips it */
	p->forgotten = true;
	snprintf(p->name, sizeof(p->name), "(forgotten)");
}

long long h_status_daemon(const char *field)
{
	char *out = status_json();
	const char *obj = strstr(out, "{\"daemon\":{");
	long long v = obj ? json_field(obj + strlen("{\"daemon\":"), field) : -1;
	free(out);
	return v;
}

long h_proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long h_proc_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Fields after "(comm)": state is field 3, utime 14, stime 15. */
	const char *p = strrchr(buf, ')');
	unsigned long ut, st;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return (long)((ut + st) * 1000 / (unsigned long)(hz > 0 ? hz : 100));
}

static uint64_t get_u64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int h_raw_register(const char *service, unsigned capacity, uint64_t *ret_backend_id)
{
	struct h_msg m;
	uint8_t buf[4200];
	int fd = -1;
	int raw = h_raw_control(NULL);
	cr_assert(raw >= 0, "raw control connection: %s", strerror(-raw));
	h_msg_begin(&m, PROTO_REGISTER, 1);
	h_msg_str(&m, PA_SERVICE, service);
	h_msg_u32(&m, PA_CAPACITY, capacity);
	h_msg_finish(&m, 0);
	cr_assert(h_send_msg(raw, m.data, m.len, NULL, 0) == 0);
	ssize_t n = h_recv_msg(raw, buf, sizeof(buf), &fd, H_DEADLINE_MS);
	cr_assert(n >= 16 && buf[3] == PROTO_REGISTERED && fd < 0, "raw REGISTER: %zd bytes, type %d", n,
	          n >= 4 ? buf[3] : -1);
	if (ret_backend_id) {
		size_t len = 0;
		const uint8_t *p = h_msg_attr(buf, (size_t)n, PA_BACKEND_ID, &len);
		cr_assert(p && len == 8, "REGISTERED without a backend id");
		*ret_backend_id = get_u64le(p);
	}
	return raw;
}

int h_raw_delivery(int raw, uint64_t *ret_conn_id)
{
	uint8_t buf[4200];
	int fd = -1;
	ssize_t n = h_recv_msg(raw, buf, sizeof(buf), &fd, H_DEADLINE_MS);
	cr_assert(n >= 16 && buf[3] == PROTO_DELIVER && fd >= 0, "expected a DELIVER with an fd (%zd bytes, type %d)", n,
	          n >= 4 ? buf[3] : -1);
	if (ret_conn_id) {
		size_t len = 0;
		const uint8_t *p = h_msg_attr(buf, (size_t)n, PA_CONN_ID, &len);
		cr_assert(p && len == 8, "DELIVER without a connection id");
		*ret_conn_id = get_u64le(p);
	}
	return fd;
}

void h_raw_ack(int raw, uint32_t received, uint32_t done)
{
	struct h_msg m;
	h_msg_begin(&m, PROTO_ACK, 0);
	h_msg_u32(&m, PA_RECEIVED, received);
	h_msg_u32(&m, PA_DONE, done);
	h_msg_finish(&m, 0);
	cr_assert(h_send_msg(raw, m.data, m.len, NULL, 0) == 0);
}
