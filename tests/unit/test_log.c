/* Unit tests for src/daemon/log.c and src/daemon/sdnotify.c: log targets
 * (parsing, AUTO following $JOURNAL_STREAM, fallbacks), the stderr line
 * format, the peer rate limit, what reaches the journal and syslog, and
 * every sd_notify message on a NOTIFY_SOCKET the test listens on.
 *
 * stderr is captured by putting a memfd on fd 2 (and put back before
 * asserting). The journal and syslog tests run in a child with a private
 * mount namespace whose /run and /dev are empty tmpfs, so the test binds
 * /run/systemd/journal/socket and /dev/log itself and reads what handoffd
 * would have sent; where no namespace can be made they are skipped. Each
 * criterion test runs in its own process, so module state and the
 * environment start fresh. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

/* stderr into a memfd, and back. */
struct capture {
	int saved;
	int mem;
};

static int capture_start(struct capture *c)
{
	c->saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	c->mem = memfd_create("stderr", MFD_CLOEXEC);
	if (c->saved < 0 || c->mem < 0 || dup2(c->mem, STDERR_FILENO) != STDERR_FILENO)
		return -1;
	return 0;
}

/* Put stderr back; what was written goes to buf (NUL-terminated). */
static size_t capture_end(struct capture *c, char *buf, size_t size)
{
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	ssize_t n = pread(c->mem, buf, size - 1, 0);
	close(c->mem);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

static unsigned count_char(const char *s, char ch)
{
	unsigned n = 0;
	for (; *s; s++)
		n += *s == ch;
	return n;
}

/* Set JOURNAL_STREAM to the dev:ino of what is on fd 2 (plus ino_delta).
 * Returns 0 or -1. */
static int journal_stream_is_stderr(long ino_delta)
{
	struct stat st;
	char v[64];
	if (fstat(STDERR_FILENO, &st) < 0)
		return -1;
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
	return setenv("JOURNAL_STREAM", v, 1);
}

static int dgram_bind(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* One datagram (the senders here are synchronous: it is queued by the time
 * they return), NUL-terminated; an SCM_RIGHTS fd goes to *ret_fd (-1 if
 * none; more than one, or a truncated control message, is an error).
 * Returns the length or -errno (-EAGAIN: nothing was sent). */
static ssize_t dgram_recv(int sock, char *buf, size_t size, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	int nfds = 0;
	*ret_fd = -1;
	ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds++ == 0)
				*ret_fd = fd;
			else
				close(fd);
		}
	}
	if (nfds > 1 || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		if (*ret_fd >= 0)
			close(*ret_fd);
		*ret_fd = -1;
		return -EPROTO;
	}
	return n;
}

/* A field of a journal native-protocol datagram: "NAME=value\n", or
 * "NAME\n" + 64-bit little-endian length + value + "\n" for values with a
 * newline. Returns the value's length (value copied, NUL-terminated) or -1. */
static ssize_t journal_field(const char *d, size_t len, const char *name, char *val, size_t size)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		const char *line = d + i;
		const char *eq = memchr(line, '=', len - i);
		const char *lf = memchr(line, '\n', len - i);
		if (!lf)
			return -1;
		if (eq && eq < lf) { /* NAME=value\n */
			size_t vl = (size_t)(lf - eq - 1);
			if ((size_t)(eq - line) == nl && memcmp(line, name, nl) == 0 && vl < size) {
				memcpy(val, eq + 1, vl);
				val[vl] = '\0';
				return (ssize_t)vl;
			}
			i = (size_t)(lf - d) + 1;
			continue;
		}
		/* NAME\n <le64> value \n */
		size_t at = (size_t)(lf - d) + 1;
		if (at + 8 > len)
			return -1;
		uint64_t vl = 0;
		for (int b = 7; b >= 0; b--)
			vl = vl << 8 | (unsigned char)d[at + (size_t)b];
		if (vl > len - at - 8 || at + 8 + vl >= len || d[at + 8 + vl] != '\n')
			return -1;
		if ((size_t)(lf - line) == nl && memcmp(line, name, nl) == 0 && vl < size) {
			memcpy(val, d + at + 8, (size_t)vl);
			val[vl] = '\0';
			return (ssize_t)vl;
		}
		i = at + 8 + (size_t)vl + 1;
	}
	return -1;
}

/* ---- checks in a child with its own /run and /dev ---- */

static int report_fd = -1;

static void fail_at(int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail_at(int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(msg, sizeof(msg), "test_log.c:%d: ", line);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	ssize_t w = write(report_fd, msg, strlen(msg));
	(void)w;
	_exit(1);
}

/* In the child: a failed check is reported to the parent, which fails. */
#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond))                          \
			fail_at(__LINE__, __VA_ARGS__); \
	} while (0)

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, s, strlen(s));
	close(fd);
	return w == (ssize_t)strlen(s) ? 0 : -1;
}

/* A private mount namespace (in a user namespace when not root) with empty
 * tmpfs on /run and /dev. */
static int enter_ns(void)
{
	if (unshare(CLONE_NEWNS) < 0) {
		uid_t uid = geteuid();
		gid_t gid = getegid();
		char map[64];
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
		if (write_file("/proc/self/uid_map", map) < 0)
			return -1;
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
		if (write_file("/proc/self/gid_map", map) < 0)
			return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID, "mode=0755") < 0 ||
	    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755") < 0)
		return -1;
	return 0;
}

/* Run fn in a forked child inside enter_ns(); fails the test with the
 * child's report, or skips it when no namespace can be made here. */
static void run_in_ns(void (*fn)(void))
{
	int p[2];
	char msg[1100];
	size_t got = 0;
	int st;
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		report_fd = p[1];
		if (enter_ns() < 0) {
			dprintf(report_fd, "%s", strerror(errno));
			_exit(77);
		}
		fn();
		_exit(0);
	}
	close(p[1]);
	for (ssize_t n; got + 1 < sizeof(msg) && (n = read(p[0], msg + got, sizeof(msg) - 1 - got)) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	msg[got] = '\0';
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("no private mount namespace here (%s)", msg);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", got ? msg : "the checking child died");
}

/* The fds open now, as a bitmap of the first 1024. */
static void fd_snapshot(bool open_fds[1024])
{
	DIR *d = opendir("/proc/self/fd");
	memset(open_fds, 0, 1024 * sizeof(bool));
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (e->d_name[0] != '.' && *end == '\0' && fd >= 0 && fd < 1024 && fd != dirfd(d))
			open_fds[fd] = true;
	}
	closedir(d);
}

/* Every fd opened since the snapshot is close-on-exec; returns the first
 * that is not, or -1. Counts the new ones in *ret_new. */
static int new_fds_not_cloexec(const bool before[1024], int *ret_new)
{
	bool now[1024];
	fd_snapshot(now);
	*ret_new = 0;
	for (int fd = 0; fd < 1024; fd++) {
		if (!now[fd] || before[fd])
			continue;
		(*ret_new)++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			return fd;
	}
	return -1;
}

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* ---- log: targets ---- */

TEST(log, target_parse)
{
	cr_assert_eq(log_target_parse("auto"), LOG_TARGET_AUTO);
	cr_assert_eq(log_target_parse("journal"), LOG_TARGET_JOURNAL);
	cr_assert_eq(log_target_parse("syslog"), LOG_TARGET_SYSLOG);
	cr_assert_eq(log_target_parse("stderr"), LOG_TARGET_STDERR);
	cr_assert_eq(log_target_parse(""), -1);
	cr_assert_eq(log_target_parse("Journal"), -1);
	cr_assert_eq(log_target_parse("stderr "), -1);
	cr_assert_eq(log_target_parse("console"), -1);
}

TEST(log, level_parse)
{
	cr_assert_eq(log_level_parse("error"), LOG_LVL_ERROR);
	cr_assert_eq(log_level_parse("WARNING"), LOG_LVL_WARNING);
	cr_assert_eq(log_level_parse("warn"), LOG_LVL_WARNING);
	cr_assert_eq(log_level_parse("notice"), LOG_LVL_NOTICE);
	cr_assert_eq(log_level_parse("info"), LOG_LVL_INFO);
	cr_assert_eq(log_level_parse("debug"), LOG_LVL_DEBUG);
	cr_assert_eq(log_level_parse("verbose"), -1);
	cr_assert_eq(log_level_parse(""), -1);
}

/* $JOURNAL_STREAM counts only when it names the file on fd 2. */
TEST(log, stderr_is_journal)
{
	struct capture c;
	char out[256];
	cr_assert_eq(capture_start(&c), 0);
	unsetenv("JOURNAL_STREAM");
	bool unset = log_stderr_is_journal();
	int set1 = journal_stream_is_stderr(0);
	bool same = log_stderr_is_journal();
	int set2 = journal_stream_is_stderr(1);
	bool other_ino = log_stderr_is_journal();
	static const char *const bad[] = {"", ":", "12", "12:", ":34", "a:b", "1:2:3", "-1:2", "1:-2", " 1:2", "1:2 ",
	                                  "99999999999999999999999:1"};
	int bad_true = -1;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		setenv("JOURNAL_STREAM", bad[i], 1);
		if (log_stderr_is_journal() && bad_true < 0)
			bad_true = (int)i;
	}
	/* AUTO with stderr not the journal: stderr. */
	int set3 = journal_stream_is_stderr(1);
	log_set_target(LOG_TARGET_AUTO);
	int auto_target = log_get_target();
	capture_end(&c, out, sizeof(out));
	cr_assert(set1 == 0 && set2 == 0 && set3 == 0, "fstat(2) failed");
	/* fd 2 is back: the variable no longer matches it. */
	cr_assert_eq(journal_stream_is_stderr(0), 0);
	cr_assert(log_stderr_is_journal(), "JOURNAL_STREAM set from fd 2 itself");
	setenv("JOURNAL_STREAM", "1:1", 1);
	cr_assert_not(log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");

	cr_assert_not(unset, "JOURNAL_STREAM unset: not the journal");
	cr_assert(same, "JOURNAL_STREAM = dev:ino of fd 2: the journal");
	cr_assert_not(other_ino, "another inode: not the journal");
	cr_assert_eq(bad_true, -1, "JOURNAL_STREAM='%s' taken as a match", bad_true >= 0 ? bad[bad_true] : "");
	cr_assert_eq(auto_target, LOG_TARGET_STDERR);
	cr_assert_str_empty(out, "AUTO to stderr says nothing: '%s'", out);
}

/* ---- log: stderr ---- */

TEST(log, stderr_format)
{
	struct capture c;
	char out[1024], want[256];
	cr_assert_eq(capture_start(&c), 0);
	log_set_target(LOG_TARGET_STDERR);
	int target = log_get_target();
	log_set_level(LOG_LVL_NOTICE);
	log_error("x %d", 1);
	log_warning("%s", "w");
	log_notice("n");
	log_info("hidden info");
	log_debug("hidden debug");
	log_peer(LOG_LVL_INFO, "hidden peer");
	struct log_fields f = {.service = "svc", .peer = "1.2.3.4:5", .backend_pid = 7, .backend_uid = 0};
	log_with(LOG_LVL_INFO, &f, "hidden with");
	log_svc(LOG_LVL_DEBUG, "svc", "hidden svc");
	log_peer_with(LOG_LVL_INFO, &f, "hidden peer with");
	log_with(LOG_LVL_NOTICE, &f, "with fields");
	log_svc(LOG_LVL_WARNING, "svc", "svc line");
	log_peer_with(LOG_LVL_ERROR, &f, "peer with fields");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("d");
	capture_end(&c, out, sizeof(out));
	int pid = (int)getpid();
	snprintf(want, sizeof(want),
	         "handoffd[%d]: error: x 1\nhandoffd[%d]: warning: w\nhandoffd[%d]: notice: n\n"
	         "handoffd[%d]: notice: with fields\nhandoffd[%d]: warning: svc line\n"
	         "handoffd[%d]: error: peer with fields\nhandoffd[%d]: debug: d\n",
	         pid, pid, pid, pid, pid, pid, pid);
	cr_assert_eq(target, LOG_TARGET_STDERR);
	cr_assert_str_eq(out, want);
}

/* What a peer put in a message cannot end the line or forge another. */
TEST(log, stderr_sanitized)
{
	struct capture c;
	char out[512], want[256];
	cr_assert_eq(capture_start(&c), 0);
	log_set_target(LOG_TARGET_STDERR);
	log_notice("service 'x': client asked for '%s'", "a\nhandoffd[1]: error: forged\x01\x1b[31m\x7f\r");
	log_notice("tab\tkept, trailing newline dropped\n\n");
	capture_end(&c, out, sizeof(out));
	int pid = (int)getpid();
	snprintf(want, sizeof(want),
	         "handoffd[%d]: notice: service 'x': client asked for 'a\n\thandoffd[1]: error: forged?"
	         "?[31m?"
	         "?'\n"
	         "handoffd[%d]: notice: tab\tkept, trailing newline dropped\n",
	         pid, pid);
	cr_assert_str_eq(out, want);
}

/* A very long message: one line, cut, still ending in a newline. */
TEST(log, stderr_long_line)
{
	struct capture c;
	static char big[10000], out[12000];
	memset(big, 'a', sizeof(big) - 1);
	cr_assert_eq(capture_start(&c), 0);
	log_set_target(LOG_TARGET_STDERR);
	log_notice("%s", big);
	log_notice("next");
	size_t n = capture_end(&c, out, sizeof(out));
	char *first_nl = strchr(out, '\n');
	cr_assert_not_null(first_nl);
	size_t first = (size_t)(first_nl - out) + 1;
	cr_assert(first > 2000 && first < 5000, "first line %zu bytes", first);
	cr_assert_eq(count_char(out, '\n'), 2);
	cr_assert(n > first && strstr(out + first, ": notice: next\n"), "second line intact: '%s'", out + first);
}

static void wait_next_second(void)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec == t0.tv_sec);
}

/* At most 50 peer lines a second; the rest are counted and the count is
 * logged once the next second starts. log_msg is never limited. */
TEST(log, peer_rate_limit)
{
	struct capture c;
	static char out[64 * 1024];
	struct timespec a, b;
	int tries = 0;
	log_set_target(LOG_TARGET_STDERR);
	log_set_level(LOG_LVL_INFO);
	do { /* 200 calls in one second of CLOCK_MONOTONIC (retry if split) */
		wait_next_second();
		cr_assert_eq(capture_start(&c), 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < 150; i++)
			log_peer(LOG_LVL_INFO, "peer line %d", i);
		for (int i = 0; i < 50; i++)
			log_peer_with(LOG_LVL_INFO, NULL, "peer_with line %d", i);
		for (int i = 0; i < 60; i++)
			log_info("own line %d", i);
		clock_gettime(CLOCK_MONOTONIC, &b);
		capture_end(&c, out, sizeof(out));
	} while (a.tv_sec != b.tv_sec && ++tries < 3);
	cr_assert_eq(a.tv_sec, b.tv_sec, "could not log 260 lines within one second");
	cr_assert_eq(count_char(out, '\n'), 50 + 60, "%u lines", count_char(out, '\n'));
	cr_assert_not_null(strstr(out, "peer line 49\n"));
	cr_assert_null(strstr(out, "peer line 50\n"));
	cr_assert_null(strstr(out, "peer_with line"));
	cr_assert_not_null(strstr(out, "own line 59\n"));

	wait_next_second();
	cr_assert_eq(capture_start(&c), 0);
	log_peer(LOG_LVL_INFO, "a new second");
	capture_end(&c, out, sizeof(out));
	cr_assert_not_null(strstr(out, ": warning: 150 peer messages suppressed (more than 50 per second)\n"), "'%s'",
	                   out);
	cr_assert_not_null(strstr(out, ": info: a new second\n"), "'%s'", out);
}

/* ---- log: journal ---- */

/* Without a journald, log = journal says so once and uses stderr; AUTO
 * (stderr is the journal stream anyway) says nothing. */
static void ns_journal_absent(void)
{
	struct capture c;
	char out[1024];
	CHECK(capture_start(&c) == 0, "capture");
	log_set_target(LOG_TARGET_JOURNAL);
	int t1 = log_get_target();
	log_set_target(LOG_TARGET_JOURNAL); /* a reload: no second warning */
	log_notice("still here");
	int sent = sdnotify_journal(5, "m", NULL, NULL, 0, -1);
	CHECK(journal_stream_is_stderr(0) == 0, "fstat(2): %m");
	log_set_target(LOG_TARGET_AUTO);
	int t2 = log_get_target();
	log_set_target(LOG_TARGET_STDERR);
	log_set_target(LOG_TARGET_JOURNAL); /* configured again: warned again */
	capture_end(&c, out, sizeof(out));
	CHECK(t1 == LOG_TARGET_STDERR, "journal without journald: target %d", t1);
	CHECK(t2 == LOG_TARGET_STDERR, "auto without journald: target %d", t2);
	CHECK(sent < 0, "sdnotify_journal without journald returned %d", sent);
	CHECK(count_char(out, '\n') == 3, "expected 2 warnings and 1 line: '%s'", out);
	char *w = strstr(out, ": warning: log = journal, but journald is not running here");
	CHECK(w != NULL, "warning: '%s'", out);
	CHECK(strstr(w + 1, ": warning: log = journal") != NULL, "second warning after a change: '%s'", out);
	CHECK(strstr(out, ": notice: still here\n") != NULL, "line on stderr: '%s'", out);
}

TEST(log, journal_absent)
{
	run_in_ns(ns_journal_absent);
}

/* Entries reach the journal socket with MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER and the HANDOFF_* fields; when journald goes away the
 * line goes to stderr. */
static void ns_journal_fields(void)
{
	char d[8192], v[4096];
	int fd = -1;
	ssize_t n;
	bool before[1024];
	struct capture c;
	char out[1024];
	CHECK(mkdir("/run/systemd", 0755) == 0 && mkdir("/run/systemd/journal", 0755) == 0, "mkdir: %m");
	int sock = dgram_bind(JOURNAL_SOCKET);
	CHECK(sock >= 0, "bind %s: %s", JOURNAL_SOCKET, strerror(-sock));
	fd_snapshot(before);

	log_set_level(LOG_LVL_NOTICE);
	log_set_target(LOG_TARGET_JOURNAL);
	CHECK(log_get_target() == LOG_TARGET_JOURNAL, "target %d", log_get_target());

	struct log_fields f = {.service = "echo", .peer = "10.0.0.1:5", .backend_pid = 42, .backend_uid = 1000};
	log_with(LOG_LVL_NOTICE, &f, "hello %d", 7);
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0 && fd < 0, "no journal entry: %zd", n);
	CHECK(journal_field(d, (size_t)n, "MESSAGE", v, sizeof(v)) >= 0 && strcmp(v, "hello 7") == 0, "MESSAGE");
	CHECK(journal_field(d, (size_t)n, "PRIORITY", v, sizeof(v)) >= 0 && strcmp(v, "5") == 0, "PRIORITY %s", v);
	CHECK(journal_field(d, (size_t)n, "SYSLOG_IDENTIFIER", v, sizeof(v)) >= 0 && strcmp(v, "handoffd") == 0,
	      "SYSLOG_IDENTIFIER");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_SERVICE", v, sizeof(v)) >= 0 && strcmp(v, "echo") == 0,
	      "HANDOFF_SERVICE");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_PEER", v, sizeof(v)) >= 0 && strcmp(v, "10.0.0.1:5") == 0,
	      "HANDOFF_PEER");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_BACKEND_PID", v, sizeof(v)) >= 0 && strcmp(v, "42") == 0,
	      "HANDOFF_BACKEND_PID");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_BACKEND_UID", v, sizeof(v)) >= 0 && strcmp(v, "1000") == 0,
	      "HANDOFF_BACKEND_UID");
	CHECK(journal_field(d, (size_t)n, "CODE_FILE", v, sizeof(v)) < 0, "CODE_FILE=%s: the same place every time", v);

	/* uid 0 is a uid; -1, 0 pid and NULL strings are left out. */
	struct log_fields root = {.backend_pid = 0, .backend_uid = 0};
	log_peer_with(LOG_LVL_ERROR, &root, "root");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0, "no entry for log_peer_with");
	CHECK(journal_field(d, (size_t)n, "PRIORITY", v, sizeof(v)) >= 0 && strcmp(v, "3") == 0, "error is 3: %s", v);
	CHECK(journal_field(d, (size_t)n, "HANDOFF_BACKEND_UID", v, sizeof(v)) >= 0 && strcmp(v, "0") == 0, "uid 0");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_BACKEND_PID", v, sizeof(v)) < 0, "pid 0 left out");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_SERVICE", v, sizeof(v)) < 0, "no service");

	log_svc(LOG_LVL_WARNING, "dns", "svc only");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0, "no entry for log_svc");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_SERVICE", v, sizeof(v)) >= 0 && strcmp(v, "dns") == 0, "log_svc");
	CHECK(journal_field(d, (size_t)n, "PRIORITY", v, sizeof(v)) >= 0 && strcmp(v, "4") == 0, "warning is 4");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_BACKEND_UID", v, sizeof(v)) < 0, "log_svc: no uid");
	CHECK(journal_field(d, (size_t)n, "HANDOFF_PEER", v, sizeof(v)) < 0, "log_svc: no peer");

	/* Plain lines: no HANDOFF_ field; a newline is sent binary-safe, as a
	 * continuation; lines above the level are not sent. */
	log_info("not sent");
	log_msg(LOG_LVL_NOTICE, "two\nlines\x01");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0, "no entry for log_msg");
	CHECK(journal_field(d, (size_t)n, "MESSAGE", v, sizeof(v)) >= 0 && strcmp(v, "two\n\tlines?") == 0,
	      "MESSAGE '%s'", v);
	CHECK(!memmem(d, (size_t)n, "HANDOFF_", 8), "plain line with HANDOFF_ fields");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n == -EAGAIN, "a line above the level was sent (%zd)", n);

	int nnew, bad = new_fds_not_cloexec(before, &nnew);
	CHECK(bad < 0, "fd %d opened by the journal code is not close-on-exec", bad);
	CHECK(nnew <= 1, "%d fds opened to log", nnew);

	/* AUTO: the journal when $JOURNAL_STREAM is fd 2. */
	log_set_target(LOG_TARGET_STDERR);
	CHECK(journal_stream_is_stderr(0) == 0, "fstat(2): %m");
	log_set_target(LOG_TARGET_AUTO);
	CHECK(log_get_target() == LOG_TARGET_JOURNAL, "auto with JOURNAL_STREAM = fd 2: target %d",
	      log_get_target());
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_set_target(LOG_TARGET_AUTO);
	CHECK(log_get_target() == LOG_TARGET_STDERR, "auto with another JOURNAL_STREAM: target %d",
	      log_get_target());

	/* journald gone after start-up (nobody on its socket, then no socket):
	 * the line goes to stderr. */
	log_set_target(LOG_TARGET_JOURNAL);
	close(sock);
	CHECK(capture_start(&c) == 0, "capture");
	log_error("journald stopped");
	unlink(JOURNAL_SOCKET);
	log_error("journald went away");
	capture_end(&c, out, sizeof(out));
	CHECK(strstr(out, ": error: journald stopped\n") != NULL, "fallback line: '%s'", out);
	CHECK(strstr(out, ": error: journald went away\n") != NULL, "fallback line: '%s'", out);
}

TEST(log, journal_fields)
{
	run_in_ns(ns_journal_fields);
}

/* ---- log: syslog ---- */

static void ns_syslog(void)
{
	char d[4096], want[64], out[1024];
	int fd = -1;
	ssize_t n;
	bool before[1024];
	struct capture c;
	int sock = dgram_bind("/dev/log");
	CHECK(sock >= 0, "bind /dev/log: %s", strerror(-sock));
	fd_snapshot(before);

	log_set_level(LOG_LVL_NOTICE);
	log_set_target(LOG_TARGET_SYSLOG);
	CHECK(log_get_target() == LOG_TARGET_SYSLOG, "target %d", log_get_target());
	int nnew, bad = new_fds_not_cloexec(before, &nnew);
	CHECK(nnew == 1, "LOG_NDELAY: connected at once (%d new fds)", nnew);
	CHECK(bad < 0, "the syslog socket (fd %d) is not close-on-exec", bad);

	log_warning("disk %s", "x");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0, "no syslog datagram (%zd)", n);
	CHECK(strncmp(d, "<28>", 4) == 0, "daemon.warning is <28>: '%s'", d);
	snprintf(want, sizeof(want), "handoffd[%d]: disk x", (int)getpid());
	CHECK(strstr(d, want) != NULL, "'%s' in '%s'", want, d);

	struct log_fields f = {.service = "s", .peer = "p", .backend_pid = 1, .backend_uid = 2};
	log_with(LOG_LVL_ERROR, &f, "evil\nline");
	n = dgram_recv(sock, d, sizeof(d), &fd);
	CHECK(n > 0 && strncmp(d, "<27>", 4) == 0, "daemon.err is <27>: '%s'", d);
	CHECK(strstr(d, "evil\n\tline") != NULL, "sanitized: '%s'", d);
	log_info("not sent");
	CHECK(dgram_recv(sock, d, sizeof(d), &fd) == -EAGAIN, "a line above the level was sent");

	/* Away from syslog: its socket is closed. */
	log_set_target(LOG_TARGET_STDERR);
	new_fds_not_cloexec(before, &nnew);
	CHECK(nnew == 0, "syslog socket still open after switching to stderr");

	/* No /dev/log: stderr, with a warning. */
	close(sock);
	unlink("/dev/log");
	CHECK(capture_start(&c) == 0, "capture");
	log_set_target(LOG_TARGET_SYSLOG);
	int t = log_get_target();
	log_notice("to stderr");
	capture_end(&c, out, sizeof(out));
	CHECK(t == LOG_TARGET_STDERR, "syslog without /dev/log: target %d", t);
	CHECK(strstr(out, ": warning: log = syslog, but nothing listens on /dev/log") != NULL, "warning: '%s'", out);
	CHECK(strstr(out, ": notice: to stderr\n") != NULL, "line: '%s'", out);
}

TEST(log, syslog)
{
	run_in_ns(ns_syslog);
}

/* ---- sdnotify ---- */

struct notify {
	char dir[64];
	char path[128];
	int sock;
};

static void notify_open(struct notify *n)
{
	snprintf(n->dir, sizeof(n->dir), "/tmp/test_log.XXXXXX");
	cr_assert_not_null(mkdtemp(n->dir));
	snprintf(n->path, sizeof(n->path), "%s/notify", n->dir);
	n->sock = dgram_bind(n->path);
	cr_assert(n->sock >= 0, "bind %s: %s", n->path, strerror(-n->sock));
	setenv("NOTIFY_SOCKET", n->path, 1);
}

static void notify_close(struct notify *n)
{
	close(n->sock);
	unlink(n->path);
	rmdir(n->dir);
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, which must carry no fd. */
static const char *next_msg(struct notify *n, char *buf, size_t size)
{
	int fd;
	ssize_t r = dgram_recv(n->sock, buf, size, &fd);
	if (fd >= 0)
		close(fd);
	cr_assert(r >= 0, "no notify message (%s)", strerror((int)-r));
	cr_assert_lt(fd, 0, "an fd came with '%s'", buf);
	return buf;
}

static unsigned long long mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

/* No $NOTIFY_SOCKET: nothing to do, 0; bad arguments are still refused. */
TEST(sdnotify, no_socket)
{
	int fd = memfd_create("x", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	unsetenv("NOTIFY_SOCKET");
	int r[] = {sdnotify_ready(), sdnotify_reloading(), sdnotify_stopping(), sdnotify_status("s %d", 1),
	           sdnotify_mainpid(42), sdnotify_watchdog(), sdnotify_fdstore(fd, "x"), sdnotify_fdstore_remove("x")};
	int bad_name = sdnotify_fdstore(fd, "a:b");
	close(fd);
	for (size_t i = 0; i < N_ELEMENTS(r); i++)
		cr_assert_eq(r[i], 0, "call %zu returned %d", i, r[i]);
	cr_assert_eq(bad_name, -EINVAL);
	cr_assert_eq(sdnotify_fdstore(-1, "x"), -EBADF);
}

TEST(sdnotify, messages)
{
	struct notify n;
	char m[512];
	notify_open(&n);

	cr_assert_gt(sdnotify_ready(), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "READY=1");

	unsigned long long t0 = mono_usec();
	cr_assert_gt(sdnotify_reloading(), 0);
	unsigned long long t1 = mono_usec(), usec;
	next_msg(&n, m, sizeof(m));
	char tail;
	cr_assert_eq(sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%llu%c", &usec, &tail), 1, "'%s'", m);
	cr_assert(usec >= t0 && usec <= t1, "MONOTONIC_USEC=%llu not in [%llu, %llu]", usec, t0, t1);

	cr_assert_gt(sdnotify_stopping(), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "STOPPING=1");

	cr_assert_gt(sdnotify_status("%d services,\n%s", 3, "READY=1\x01"), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "STATUS=3 services, READY=1 ");

	char big[600];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_gt(sdnotify_status("%s", big), 0);
	next_msg(&n, m, sizeof(m));
	cr_assert_eq(strlen(m), strlen("STATUS=") + 255, "STATUS= cut at 255: %zu", strlen(m));

	cr_assert_gt(sdnotify_watchdog(), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "WATCHDOG=1");

	cr_assert_gt(sdnotify_mainpid(1234), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "MAINPID=1234");
	cr_assert_eq(sdnotify_mainpid(0), -EINVAL);

	int fd;
	cr_assert_eq(dgram_recv(n.sock, m, sizeof(m), &fd), -EAGAIN, "nothing else was sent");
	notify_close(&n);
}

TEST(sdnotify, fdstore)
{
	struct notify n;
	char m[512];
	struct stat a, b;
	int got = -1;
	notify_open(&n);
	int fd = memfd_create("stored", MFD_CLOEXEC);
	cr_assert(fd >= 0);

	cr_assert_gt(sdnotify_fdstore(fd, "http.0123456789abcdef"), 0);
	ssize_t r = dgram_recv(n.sock, m, sizeof(m), &got);
	cr_assert_gt(r, 0, "no FDSTORE message (%s)", strerror((int)-r));
	cr_assert_str_eq(m, "FDSTORE=1\nFDNAME=http.0123456789abcdef");
	cr_assert_geq(got, 0, "no fd with FDSTORE=1");
	cr_assert_eq(fstat(fd, &a), 0);
	cr_assert_eq(fstat(got, &b), 0);
	cr_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "the stored fd is another file");
	close(got);
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "the caller's fd was closed");

	cr_assert_gt(sdnotify_fdstore_remove("http.0123456789abcdef"), 0);
	cr_assert_str_eq(next_msg(&n, m, sizeof(m)), "FDSTOREREMOVE=1\nFDNAME=http.0123456789abcdef");

	/* Names systemd would refuse are refused here, and nothing is sent. */
	char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	static const char *const bad[] = {"", "a:b", "line\nSTOPPING=1", "tab\t", "caf\xc3\xa9"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		cr_assert_eq(sdnotify_fdstore(fd, bad[i]), -EINVAL, "name %zu", i);
		cr_assert_eq(sdnotify_fdstore_remove(bad[i]), -EINVAL, "name %zu", i);
	}
	cr_assert_eq(sdnotify_fdstore(fd, longname), -EINVAL);
	cr_assert_eq(sdnotify_fdstore(fd, NULL), -EINVAL);
	cr_assert_eq(sdnotify_fdstore(-1, "x"), -EBADF);
	longname[255] = '\0';
	cr_assert_gt(sdnotify_fdstore_remove(longname), 0, "255 characters are allowed");
	next_msg(&n, m, sizeof(m));
	cr_assert_eq(dgram_recv(n.sock, m, sizeof(m), &got), -EAGAIN, "a refused name was sent");

	close(fd);
	notify_close(&n);
}

/* A NOTIFY_SOCKET nobody listens on: an error, no crash, no fd left. */
TEST(sdnotify, socket_gone)
{
	struct notify n;
	notify_open(&n);
	close(n.sock);
	unlink(n.path);
	int fd = memfd_create("x", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	int r1 = sdnotify_ready(), r2 = sdnotify_fdstore(fd, "x");
	close(fd);
	rmdir(n.dir);
	unsetenv("NOTIFY_SOCKET");
	cr_assert_lt(r1, 0);
	cr_assert_lt(r2, 0);
}

TEST(sdnotify, watchdog_usec)
{
	char pid[32];
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	cr_assert_eq(sdnotify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	cr_assert_eq(sdnotify_watchdog_usec(), 30000000ULL);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(sdnotify_watchdog_usec(), 30000000ULL, "WATCHDOG_PID = our pid");
	setenv("WATCHDOG_USEC", "3600000000", 1);
	cr_assert_eq(sdnotify_watchdog_usec(), 3600000000ULL, "an hour does not overflow");
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(sdnotify_watchdog_usec(), 0, "for another pid");
	unsetenv("WATCHDOG_PID");
	static const char *const bad[] = {"", "0", "abc", "-5", "12x"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		setenv("WATCHDOG_USEC", bad[i], 1);
		cr_assert_eq(sdnotify_watchdog_usec(), 0, "WATCHDOG_USEC='%s'", bad[i]);
	}
	unsetenv("WATCHDOG_USEC");
}
