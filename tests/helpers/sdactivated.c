/* sdactivated: a socket-activated test server that knows nothing of
 * handoffd, nor of libsystemd. It reads systemd's socket-activation
 * variables itself, checks what the protocol promises and writes a report:
 *
 *   pid P                    our pid
 *   listen_pid_ok 0|1        LISTEN_PID is our own pid
 *   nfds N                   LISTEN_FDS (0 when unset or not a number)
 *   fd K TYPE STATE          each passed fd 3..3+N-1: TYPE stream, dgram,
 *                            seqpacket, other or notsocket; STATE listening or -
 *   names K                  how many LISTEN_FDNAMES entries there are
 *   name I NAME              each of them
 *   extra_fds none|F...      other open fds above 2 (there must be none)
 *   stdio T0 T1 T2           what fds 0-2 are: chr, fifo, reg, sock, dir,
 *                            other, closed
 *   sigmask_empty 0|1        no signal blocked
 *   sigdfl 1 | sigdfl 0 S... every signal at its default disposition, or
 *                            the numbers of those that are not
 *   pidfdid VALUE|-          LISTEN_PIDFDID as we got it
 *   end
 *
 * to stdout, or with --report FILE to FILE (written whole under a temporary
 * name and renamed, so a reader never sees half a report; opened after the
 * fd scan, so it does not count as an extra fd).
 *
 * Then it serves: each listening stream socket's connections get
 * "sdactivated PID fd K\n" and are closed (after the client's EOF, or
 * LINGER_MS); each datagram gets the same text
 * back; a passed connection (systemd's Accept=yes) gets it once and the
 * program exits 0. It runs until SIGTERM and then exits with --term-exit N
 * (default 0). Exit 3 (after the report and a line on stderr) when
 * LISTEN_PID is not our pid, 4 when a passed fd is not a socket, 1 when a
 * passed socket fails, 2 for a usage error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 64
#define MAX_LINGER 256
#define LINGER_MS 2000

struct lingering {
	int fd;
	uint64_t until;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* The report, built in memory before anything is written. */
static char report[16384];
static size_t report_len;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(report + report_len, sizeof(report) - report_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		report_len += (size_t)n < sizeof(report) - report_len ? (size_t)n : sizeof(report) - report_len - 1;
}

/* A whole decimal number in [lo, hi], or -1. */
static long parse_num(const char *s, long lo, long hi)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	return v;
}

static const char *fd_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return "closed";
	switch (st.st_mode & S_IFMT) {
	case S_IFCHR:
		return "chr";
	case S_IFIFO:
		return "fifo";
	case S_IFREG:
		return "reg";
	case S_IFSOCK:
		return "sock";
	case S_IFDIR:
		return "dir";
	default:
		return "other";
	}
}

static int report_write(const char *path)
{
	if (!path) {
		fwrite(report, 1, report_len, stdout);
		return fflush(stdout) == 0 ? 0 : -1;
	}
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	bool ok = write(fd, report, report_len) == (ssize_t)report_len;
	ok &= close(fd) == 0;
	return ok && rename(tmp, path) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *report_path = NULL;
	int term_exit = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
			report_path = argv[++i];
		} else if (strcmp(argv[i], "--term-exit") == 0 && i + 1 < argc) {
			long v = parse_num(argv[++i], 0, 255);
			if (v < 0) {
				fprintf(stderr, "sdactivated: --term-exit: 0..255\n");
				return 2;
			}
			term_exit = (int)v;
		} else {
			fprintf(stderr, "usage: sdactivated [--report FILE] [--term-exit N]\n");
			return 2;
		}
	}

	/* Everything is looked at before we open anything ourselves. */
	const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES"), *pidfdid = getenv("LISTEN_PIDFDID");
	long lpid = parse_num(spid, 1, 0x7fffffff);
	bool pid_ok = lpid == (long)getpid();
	long n = parse_num(sfds, 0, MAX_FDS);
	if (n < 0)
		n = 0;
	say("pid %d\nlisten_pid_ok %d\nnfds %ld\n", (int)getpid(), pid_ok, n);

	int types[MAX_FDS], listening[MAX_FDS];
	bool all_sockets = true;
	for (int i = 0; i < n; i++) {
		int fd = 3 + i, t = 0, acc = 0;
		socklen_t l = sizeof(t);
		types[i] = listening[i] = 0;
		if (strcmp(fd_kind(fd), "sock") != 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) < 0) {
			say("fd %d notsocket -\n", fd);
			all_sockets = false;
			continue;
		}
		l = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0)
			acc = 0;
		types[i] = t;
		listening[i] = acc;
		say("fd %d %s %s\n", fd,
		    t == SOCK_STREAM      ? "stream"
		    : t == SOCK_DGRAM     ? "dgram"
		    : t == SOCK_SEQPACKET ? "seqpacket"
		                          : "other",
		    acc ? "listening" : "-");
	}

	int nnames = 0;
	char namebuf[4096] = "";
	if (names) {
		snprintf(namebuf, sizeof(namebuf), "%s", names);
		/* Empty entries count: "a::b" is three names, the middle one empty. */
		nnames = 1;
		for (const char *p = names; *p; p++)
			nnames += *p == ':';
	}
	say("names %d\n", nnames);
	if (names) {
		char *p = namebuf;
		for (int i = 0; i < nnames; i++) {
			char *colon = strchr(p, ':');
			if (colon)
				*colon = '\0';
			say("name %d %s\n", i, p);
			p = colon ? colon + 1 : p + strlen(p);
		}
	}

	say("extra_fds");
	int nextra = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		for (struct dirent *e; (e = readdir(d));) {
			long fd = parse_num(e->d_name, 0, 1 << 30);
			if (fd > 2 + n && fd != dirfd(d)) {
				say(" %ld", fd);
				nextra++;
			}
		}
		closedir(d);
	} else {
		say(" unknown");
		nextra = 1;
	}
	say("%s\n", nextra ? "" : " none");
	say("stdio %s %s %s\n", fd_kind(0), fd_kind(1), fd_kind(2));

	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	bool mask_empty = true;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&mask, s) == 1)
			mask_empty = false;
	say("sigmask_empty %d\n", mask_empty);
	char notdfl[512] = "";
	size_t nd = 0;
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;
		if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) < 0)
			continue;
		if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
			continue;
		nd += (size_t)snprintf(notdfl + nd, sizeof(notdfl) - nd, " %d", s);
		if (nd >= sizeof(notdfl))
			break;
	}
	say("sigdfl %s\n", notdfl[0] ? "0" : "1");
	if (notdfl[0])
		say("sigdfl_not%s\n", notdfl);
	say("pidfdid %s\nend\n", pidfdid ? pidfdid : "-");

	if (report_write(report_path) < 0) {
		fprintf(stderr, "sdactivated: cannot write the report to %s: %s\n", report_path ? report_path : "stdout",
		        strerror(errno));
		return 1;
	}
	if (!pid_ok) {
		fprintf(stderr, "sdactivated: LISTEN_PID is %s, not our pid %d: these sockets are not for us\n",
		        spid ? spid : "unset", (int)getpid());
		return 3;
	}
	if (!all_sockets) {
		fprintf(stderr, "sdactivated: a passed fd is not a socket\n");
		return 4;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Answered connections wait here for the client's EOF (up to
	 * LINGER_MS) before we close them: closing with a request still unread
	 * would send the client a reset, which can destroy our answer. */
	struct pollfd p[MAX_FDS + MAX_LINGER];
	struct lingering lg[MAX_LINGER];
	int nl = 0;
	for (int i = 0; i < n; i++) {
		bool conn = !listening[i] && types[i] != SOCK_DGRAM;
		p[i] = (struct pollfd){.fd = 3 + i, .events = (short)(conn ? POLLOUT : POLLIN)};
	}
	while (!stop) {
		uint64_t now = now_ms();
		int timeout = -1;
		for (int k = 0; k < nl;) {
			if (lg[k].until <= now) {
				close(lg[k].fd);
				lg[k] = lg[--nl];
				continue;
			}
			int left = (int)(lg[k].until - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
			p[n + k] = (struct pollfd){.fd = lg[k].fd, .events = POLLIN};
			k++;
		}
		if (poll(p, (nfds_t)(n + nl), timeout) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int k = nl - 1; k >= 0; k--) {
			if (!p[n + k].revents)
				continue;
			char buf[4096];
			ssize_t r = recv(lg[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			close(lg[k].fd); /* EOF or an error: done with it */
			lg[k] = lg[--nl];
		}
		for (int i = 0; i < n; i++) {
			if (p[i].revents & (POLLERR | POLLNVAL))
				return 1;
			if (!p[i].revents)
				continue;
			char msg[64];
			int len = snprintf(msg, sizeof(msg), "sdactivated %d fd %d\n", (int)getpid(), 3 + i);
			if (!listening[i] && types[i] != SOCK_DGRAM) {
				/* A connection of its own: answer once and go. */
				ssize_t w = send(3 + i, msg, (size_t)len, MSG_NOSIGNAL);
				(void)w;
				return 0;
			}
			if (listening[i]) {
				int c = accept4(3 + i, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (c < 0)
					continue;
				ssize_t w = send(c, msg, (size_t)len, MSG_NOSIGNAL);
				(void)w;
				shutdown(c, SHUT_WR);
				if (nl == MAX_LINGER) { /* full: the oldest goes */
					close(lg[0].fd);
					lg[0] = lg[--nl];
				}
				lg[nl++] = (struct lingering){.fd = c, .until = now_ms() + LINGER_MS};
			} else {
				char buf[512];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				if (recvfrom(3 + i, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) >= 0)
					(void)sendto(3 + i, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&from, fl);
			}
		}
	}
	for (int k = 0; k < nl; k++)
		close(lg[k].fd);
	return term_exit;
}
