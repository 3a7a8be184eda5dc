/* fdcheck: what did this process inherit? A test helper run as a spawned
 * program (libc only).
 *
 *   fdcheck [--echo] [--report FILE]
 *
 * Writes a report to FILE (created or truncated, mode 0644, opened only
 * after everything is measured so it is not part of the report) or else
 * to fd 1, one item per line, in this order:
 *
 *   fd N TYPE        every open fd, ascending (not the one reading
 *                    /proc/self/fd). TYPE: socket, pipe, anon_inode, file
 *                    (regular), chardev, blockdev, dir, fifo, other.
 *   fdid N DEV:INO   the identity of fd N (fstat st_dev:st_ino, decimal),
 *                    to match an fd with one the parent holds.
 *   sigblocked N     each blocked signal
 *   sigignored N     each signal whose disposition is SIG_IGN
 *   env NAME=VALUE   each environment entry, in order
 *   uid N / euid N / gid N / egid N
 *   groups A,B,C     supplementary groups (nothing after the space if none)
 *   pid N / sid N    process and session ids
 *   cwd PATH
 *   umask NNNN       octal
 *   nofile SOFT HARD RLIMIT_NOFILE ("inf" for no limit)
 *   argv0 X          (empty when argc is 0)
 *   argc N
 *   end
 *
 * With --echo it then copies stdin to stdout until EOF, so it can serve as
 * a per-connection program. Exits 0, or 1 (with a message on stderr) when
 * it cannot measure or write something, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char *out;
static size_t out_len, out_cap;

static void fail(const char *what)
{
	fprintf(stderr, "fdcheck: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail("vsnprintf");
	if (out_len + (size_t)n + 2 > out_cap) {
		size_t cap = out_cap ? out_cap : 4096;
		while (out_len + (size_t)n + 2 > cap)
			cap *= 2;
		char *p = realloc(out, cap);
		if (!p)
			fail("realloc");
		out = p;
		out_cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(out + out_len, out_cap - out_len, fmt, ap);
	va_end(ap);
	out_len += (size_t)n;
	out[out_len++] = '\n';
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static const char *fd_type(int fd)
{
	char link[64], target[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return "other";
	target[n] = '\0';
	if (strncmp(target, "socket:", 7) == 0)
		return "socket";
	if (strncmp(target, "pipe:", 5) == 0)
		return "pipe";
	if (strncmp(target, "anon_inode:", 11) == 0)
		return "anon_inode";
	struct stat st;
	if (fstat(fd, &st) < 0)
		return "other";
	if (S_ISREG(st.st_mode))
		return "file";
	if (S_ISCHR(st.st_mode))
		return "chardev";
	if (S_ISBLK(st.st_mode))
		return "blockdev";
	if (S_ISDIR(st.st_mode))
		return "dir";
	if (S_ISFIFO(st.st_mode))
		return "fifo";
	if (S_ISSOCK(st.st_mode))
		return "socket";
	return "other";
}

static void report_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		fail("/proc/self/fd");
	int self = dirfd(d);
	int fds[4096], n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		if (fd != self && n < (int)(sizeof(fds) / sizeof(fds[0])))
			fds[n++] = fd;
	}
	qsort(fds, (size_t)n, sizeof(fds[0]), cmp_int);
	for (int i = 0; i < n; i++)
		add("fd %d %s", fds[i], fd_type(fds[i]));
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (fstat(fds[i], &st) == 0)
			add("fdid %d %llu:%llu", fds[i], (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	}
	closedir(d);
}

static void report_signals(void)
{
	sigset_t cur;
	if (sigprocmask(SIG_BLOCK, NULL, &cur) < 0)
		fail("sigprocmask");
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&cur, sig) == 1)
			add("sigblocked %d", sig);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			add("sigignored %d", sig);
	}
}

static void report_ids(void)
{
	add("uid %lu", (unsigned long)getuid());
	add("euid %lu", (unsigned long)geteuid());
	add("gid %lu", (unsigned long)getgid());
	add("egid %lu", (unsigned long)getegid());
	int n = getgroups(0, NULL);
	if (n < 0)
		fail("getgroups");
	gid_t *g = calloc((size_t)n + 1, sizeof(*g));
	if (!g)
		fail("calloc");
	n = getgroups(n, g);
	if (n < 0)
		fail("getgroups");
	char list[65536];
	size_t len = 0;
	list[0] = '\0';
	for (int i = 0; i < n && len + 24 < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%lu", i ? "," : "", (unsigned long)g[i]);
	add("groups %s", list);
	free(g);
	add("pid %ld", (long)getpid());
	add("sid %ld", (long)getsid(0));
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fail("write");
		p += w;
		len -= (size_t)w;
	}
}

static void echo(void)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(0, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("read stdin");
		if (r == 0)
			return;
		write_all(1, buf, (size_t)r);
	}
}

int main(int argc, char **argv)
{
	int do_echo = 0;
	const char *report = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--echo") == 0)
			do_echo = 1;
		else if (strcmp(argv[i], "--report") == 0 && i + 1 < argc)
			report = argv[++i];
		else {
			fprintf(stderr, "usage: fdcheck [--echo] [--report FILE]\n");
			return 2;
		}
	}

	report_fds();
	report_signals();
	for (char **e = environ; e && *e; e++)
		add("env %s", *e);
	report_ids();
	char cwd[4096];
	add("cwd %s", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
	mode_t mask = umask(022);
	umask(mask);
	add("umask %04o", (unsigned)mask);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		char a[32], b[32];
		snprintf(a, sizeof(a), rl.rlim_cur == RLIM_INFINITY ? "inf" : "%llu", (unsigned long long)rl.rlim_cur);
		snprintf(b, sizeof(b), rl.rlim_max == RLIM_INFINITY ? "inf" : "%llu", (unsigned long long)rl.rlim_max);
		add("nofile %s %s", a, b);
	}
	add("argv0 %s", argc > 0 && argv[0] ? argv[0] : "");
	add("argc %d", argc);
	add("end");

	int fd = 1;
	if (report) {
		fd = open(report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			fail(report);
	}
	write_all(fd, out, out_len);
	if (report && close(fd) < 0)
		fail(report);
	free(out);

	if (do_echo)
		echo();
	return 0;
}
