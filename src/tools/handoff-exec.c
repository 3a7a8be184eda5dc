/* handoff-exec: run an unmodified socket-activated program as a handoffd
 * backend.
 *
 *     handoff-exec [-s CONTROL] [-n FDNAME] [-c CAPACITY] [-u UID] -S SERVICE -- PROGRAM [ARGS...]
 *
 * It registers for SERVICE through libhandoff, receives the service's shared
 * sockets (mode = listen stream listeners, datagram listeners) and runs
 * PROGRAM with them the way systemd passes sockets (sd_listen_fds(3)):
 *
 *   - on fds 3, 4, ... in the order handoffd sent them (the order of the
 *     service's listen lines), whatever fds we were started with; no other
 *     fd above 2 reaches it, as with systemd: we close what our caller left
 *     open above 2 first thing (so we do not hold it either), and the child
 *     closes everything above the passed fds before exec (close_range);
 *     fds 0-2 are kept, and any of them we were started without is
 *     /dev/null (else our own sockets would land there);
 *   - FD_CLOEXEC cleared on exactly those fds (dup2 onto a different
 *     number does it; a source already on its target is moved away first,
 *     since dup2(fd, fd) would leave the flag set);
 *   - LISTEN_FDS=n, LISTEN_PID=the program's own pid (written into a
 *     string prepared before fork, by the child, after fork: the parent's
 *     pid there is the classic wrapper bug), LISTEN_FDNAMES=FDNAME:FDNAME..
 *     (default: the service name); inherited LISTEN_FDS, LISTEN_PID,
 *     LISTEN_FDNAMES and LISTEN_PIDFDID are dropped first;
 *   - every signal at its default disposition and an empty signal mask;
 *     PR_SET_PDEATHSIG(SIGTERM), so a handoff-exec killed with SIGKILL does
 *     not leave the program behind.
 *
 * The child between fork and exec touches only memory prepared before the
 * fork and makes only system calls (no malloc, no stdio).
 *
 * The parent stays registered (so handoffd knows the service is served),
 * forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2, and waits
 * for the program in one ppoll() loop: the forwarded signals and SIGCHLD are
 * blocked except inside ppoll(), so nothing races the handlers. It watches
 * the control connection too:
 *   - handoffd went away (shutdown, upgrade, crash): one line on stderr;
 *     the program keeps its sockets and keeps serving; we connect and
 *     register again with a backoff (10 ms doubling to 1 s), so after an
 *     upgrade handoffd sees the service served again. Sockets it sends
 *     again are the program's own (same inode) and are closed silently;
 *   - a socket the program did not get (a reload added a listen line, or a
 *     restarted handoffd bound new ones): one line, and closed: restart
 *     handoff-exec to pass it;
 *   - drained (handoffctl drain), the service removed, or we are no longer
 *     allowed to serve it: one line, and the program gets SIGTERM;
 *   - a single connection (a stream listener of the service in accept
 *     mode): we cannot pass it on: one line, it is closed, and we leave the
 *     service (the program keeps the shared sockets it has).
 *
 * Exit status: the program's exit code; when it was killed by signal N,
 * handoff-exec kills itself with N (default disposition, no core file of
 * its own), so whoever waits for it sees what it would have seen without
 * the adapter (systemd counts a SIGTERM death as a clean stop, and a shell
 * prints 128+N); 128+N if that somehow fails. 127: PROGRAM could not be
 * executed (reported by the child through a close-on-exec pipe); 2: usage;
 * 1: handoffd could not be reached, refused us, or shares no socket.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"

#define MAX_SOCKETS 64           /* handoffd's limit of listen lines per service */
#define SOCKETS_TIMEOUT_MS 10000 /* for the announced sockets to arrive */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
#define FDNAME_MAX 255           /* as systemd's FileDescriptorName= */

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_EXEC = 127 };

extern char **environ;

/* ---- options ---- */

struct opts {
	const char *ctl;     /* NULL: $HANDOFF_SOCKET or the default */
	const char *service;
	const char *fdname;
	unsigned capacity;
	bool check_uid;
	uid_t uid;
	char **argv;         /* PROGRAM [ARGS...] */
};

#define USAGE \
	"handoff-exec [-s CONTROL_SOCKET] [-n FDNAME] [-c CAPACITY] [-u UID] -S SERVICE -- PROGRAM [ARGS...]"

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	char line[1024];
	size_t room = sizeof(line) - 1; /* for the newline */
	int n = snprintf(line, room, "handoff-exec: ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, room - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	line[len++] = '\n';
	/* One write per line, so the lines of several processes do not mix. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

/* What systemd accepts as a FileDescriptorName=: 1..255 printable ASCII
 * characters, no ':' (the separator of LISTEN_FDNAMES). */
static bool fdname_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > FDNAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == ':')
			return false;
	return true;
}

static int parse_uid(const char *s, uid_t *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s >= '0' && *s <= '9' && !errno && !*end && v < (unsigned long)(uid_t)-1) {
		*ret = (uid_t)v;
		return 0;
	}
	struct passwd *pw = getpwnam(s);
	if (!pw)
		return -ENOENT;
	*ret = pw->pw_uid;
	return 0;
}

/* Returns 0 to go on, or the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	int opt;
	memset(o, 0, sizeof(*o));
	o->capacity = 1;
	/* '+': stop at the first non-option, so PROGRAM's options stay its own
	 * even without "--". */
	opterr = 0; /* our own messages: one line each */
	while ((opt = getopt(argc, argv, "+:s:S:n:c:u:h")) != -1) {
		char *end;
		unsigned long v;
		switch (opt) {
		case 's':
			o->ctl = optarg;
			break;
		case 'S':
			o->service = optarg;
			break;
		case 'n':
			o->fdname = optarg;
			if (!fdname_valid(optarg)) {
				msg("-n '%s': a name is 1 to %d printable ASCII characters without ':'", optarg, FDNAME_MAX);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || *optarg == '-' || v < 1 || v > 65535) {
				msg("-c '%s': the capacity is a number from 1 to 65535", optarg);
				return EXIT_USAGE;
			}
			o->capacity = (unsigned)v;
			break;
		case 'u':
			if (parse_uid(optarg, &o->uid) < 0) {
				msg("-u '%s': not a uid or a user name", optarg);
				return EXIT_USAGE;
			}
			o->check_uid = true;
			break;
		case 'h':
			printf("usage: %s\n", USAGE);
			return -1;
		case ':':
			msg("-%c needs an argument (usage: %s)", optopt, USAGE);
			return EXIT_USAGE;
		default:
			msg("unknown option -%c (usage: %s)", optopt, USAGE);
			return EXIT_USAGE;
		}
	}
	if (!o->service || !*o->service) {
		msg("-S SERVICE is required (usage: %s)", USAGE);
		return EXIT_USAGE;
	}
	if (optind >= argc || !*argv[optind]) {
		msg("no program to run: give it after -- (usage: %s)", USAGE);
		return EXIT_USAGE;
	}
	if (!o->fdname) {
		o->fdname = o->service;
		if (!fdname_valid(o->fdname)) {
			msg("the service name '%s' cannot be a LISTEN_FDNAMES name: give one with -n", o->service);
			return EXIT_USAGE;
		}
	}
	o->argv = argv + optind;
	return 0;
}

static const char *ctl_path(const struct opts *o)
{
	if (o->ctl)
		return o->ctl;
	const char *e = secure_getenv("HANDOFF_SOCKET");
	return e && *e ? e : HANDOFF_DEFAULT_SOCKET;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- registering ---- */

/* Is err handoffd telling us we may not serve the service at all (as
 * opposed to a passing condition worth retrying)? */
static bool is_revocation(int err)
{
	return err == HANDOFF_E_NO_SERVICE || err == HANDOFF_E_NOT_ALLOWED || err == HANDOFF_E_VERSION;
}

/* Connect, check handoffd's uid if asked, register. On success *ret is the
 * handle; on failure a sentence goes to why and the code is returned. */
static int registration_open(const struct opts *o, int flags, handoff_t **ret, char *why, size_t size)
{
	handoff_t *h = NULL;
	*ret = NULL;
	int r = handoff_connect(o->ctl, flags, &h);
	if (r < 0) {
		snprintf(why, size, "cannot connect to handoffd at %s: %s", ctl_path(o), handoff_strerror(r));
		return r;
	}
	if (o->check_uid && (r = handoff_verify_daemon(h, o->uid)) < 0) {
		const char *e = handoff_last_error(h);
		snprintf(why, size, "not registering with handoffd at %s: %s", ctl_path(o), *e ? e : handoff_strerror(r));
		handoff_close(h);
		return r;
	}
	r = handoff_register(h, o->service, o->capacity);
	if (r < 0) {
		const char *e = handoff_last_error(h);
		snprintf(why, size, "handoffd refused to register us for '%s': %s", o->service, *e ? e : handoff_strerror(r));
		handoff_close(h);
		return r;
	}
	*ret = h;
	return 0;
}

/* Receive the n shared sockets announced at registration, in order, within
 * SOCKETS_TIMEOUT_MS. Returns 0 with fds[0..n) ours, or -1 (said why, closed
 * everything). */
static int sockets_receive(handoff_t *h, const char *service, unsigned n, int *fds)
{
	uint64_t deadline = now_ms() + SOCKETS_TIMEOUT_MS;
	unsigned got = 0;
	while (got < n) {
		struct handoff_conn c;
		int r = handoff_accept(h, &c, HANDOFF_NONBLOCK);
		if (r == -EAGAIN) {
			uint64_t t = now_ms();
			struct pollfd p = {.fd = handoff_fd(h), .events = POLLIN};
			if (t >= deadline || (poll(&p, 1, (int)(deadline - t)) == 0 && now_ms() >= deadline)) {
				msg("handoffd announced %u shared sockets for '%s' but sent %u within %d s", n, service, got,
				    SOCKETS_TIMEOUT_MS / 1000);
				goto fail;
			}
			continue;
		}
		if (r < 0) {
			const char *e = handoff_last_error(h);
			msg("receiving the shared sockets of '%s': %s", service, *e ? e : handoff_strerror(r));
			goto fail;
		}
		if (c.kind == HANDOFF_CONNECTION) {
			/* Shared sockets come first: a connection here is handoffd
			 * breaking its word, and we have no one to serve it. */
			close(c.fd);
			handoff_done(h, &c, 0);
			msg("handoffd sent a connection for '%s' where its shared sockets were announced", service);
			goto fail;
		}
		fds[got++] = c.fd;
	}
	return 0;
fail:
	for (unsigned i = 0; i < got; i++)
		close(fds[i]);
	return -1;
}

/* ---- the child ---- */

/* Everything the child needs, prepared before fork: after fork it only
 * writes into these buffers and makes system calls. */
struct launch {
	int fds[MAX_SOCKETS];
	unsigned n;
	char **argv;
	char **envp;
	char *pid_digits;  /* inside the LISTEN_PID= string: room for 20 digits */
	int err_fd;        /* write end of the close-on-exec error pipe */
	unsigned max_fd;   /* bound for closing fds one by one without close_range */
	pid_t parent;
};

enum child_stage { STAGE_SETUP = 1, STAGE_FDS = 2, STAGE_EXEC = 3 };

struct child_error {
	int stage;
	int err;
};

static void put_decimal(char *buf, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*buf++ = tmp[--n];
	*buf = '\0';
}

static void close_above(unsigned first, unsigned last, unsigned max_fd)
{
	if (first > last)
		return;
	if (close_range(first, last, 0) == 0)
		return;
	/* Kernels before 5.9: one by one, up to the fd limit. */
	for (unsigned fd = first; fd <= last && fd < max_fd; fd++)
		close((int)fd);
}

/* Where closing fds one by one may stop: the soft RLIMIT_NOFILE. */
static unsigned fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20))
		return (unsigned)rl.rlim_cur;
	return 1u << 20;
}

static void child_fail(int fd, int stage, int err) __attribute__((noreturn));
static void child_fail(int fd, int stage, int err)
{
	struct child_error ce = {.stage = stage, .err = err};
	ssize_t w = write(fd, &ce, sizeof(ce));
	(void)w;
	_exit(EXIT_EXEC);
}

static void child_run(struct launch *L) __attribute__((noreturn));
static void child_run(struct launch *L)
{
	int ep = L->err_fd;
	unsigned top = 3 + L->n; /* first fd above the passed ones */

	/* Default dispositions for every signal (a handler would be reset by
	 * exec anyway; SIG_IGN would not be). The mask stays full until just
	 * before exec, so a signal handoff-exec forwards meanwhile is pending
	 * and acts on the program as it would after exec. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* EINVAL for SIGKILL, SIGSTOP, libc's own: fine */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		child_fail(ep, STAGE_SETUP, errno);
	if (getppid() != L->parent)
		_exit(EXIT_EXEC); /* handoff-exec is already gone: nobody to serve for */

	/* The error pipe and every source that sits on a target number (3..top)
	 * move above the targets first, so no dup2 below overwrites a fd still
	 * needed, and no source equals its target (dup2(fd, fd) would keep
	 * FD_CLOEXEC). Copies are close-on-exec; the originals left low are
	 * overwritten by the dup2s, or closed below. */
	if (ep < (int)top) {
		ep = fcntl(ep, F_DUPFD_CLOEXEC, (int)top);
		if (ep < 0)
			child_fail(L->err_fd, STAGE_FDS, errno);
	}
	for (unsigned i = 0; i < L->n; i++) {
		if (L->fds[i] >= (int)top)
			continue;
		int m = fcntl(L->fds[i], F_DUPFD_CLOEXEC, (int)top);
		if (m < 0)
			child_fail(ep, STAGE_FDS, errno);
		L->fds[i] = m;
	}
	for (unsigned i = 0; i < L->n; i++)
		if (dup2(L->fds[i], 3 + (int)i) < 0) /* the new fd is not close-on-exec */
			child_fail(ep, STAGE_FDS, errno);
	/* Nothing else above 2 reaches the program: not our control
	 * connection, not the sources, not what our caller left open. The
	 * error pipe stays until exec closes it. */
	close_above(top, (unsigned)ep - 1, L->max_fd);
	close_above((unsigned)ep + 1, ~0U, L->max_fd);

	put_decimal(L->pid_digits, (unsigned long)getpid());
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* PATH search as the shell does. glibc's execvpe builds the candidate
	 * paths on the stack, and we have no other thread to hold a lock. */
	execvpe(L->argv[0], L->argv, L->envp);
	child_fail(ep, STAGE_EXEC, errno);
}

/* The program's environment: ours without the four LISTEN_* variables
 * systemd sets, plus LISTEN_FDS, LISTEN_PID (digits filled in by the child)
 * and LISTEN_FDNAMES. The strings are the caller's (environ's own or
 * *ret_store, a single allocation to free). */
static int env_build(struct launch *L, const char *fdname, char **ret_store)
{
	static const char *const drop[] = {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "LISTEN_PIDFDID="};
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	size_t names_len = (strlen(fdname) + 1) * L->n;
	size_t store_len = 32 + 48 + sizeof("LISTEN_FDNAMES=") + names_len;
	char **envp = calloc(nenv + 4, sizeof(char *));
	char *store = malloc(store_len);
	if (!envp || !store) {
		free(envp);
		free(store);
		return -ENOMEM;
	}
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++) {
		bool keep = true;
		for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++)
			if (strncmp(environ[i], drop[k], strlen(drop[k])) == 0)
				keep = false;
		if (keep)
			envp[e++] = environ[i];
	}
	char *p = store, *end = store + store_len;
	envp[e++] = p;
	p += snprintf(p, (size_t)(end - p), "LISTEN_FDS=%u", L->n) + 1;
	envp[e++] = p;
	p += snprintf(p, (size_t)(end - p), "LISTEN_PID=0");
	L->pid_digits = p - 1;
	p += 24; /* room for 20 digits and a NUL, filled in after fork */
	envp[e++] = p;
	p += snprintf(p, (size_t)(end - p), "LISTEN_FDNAMES=");
	for (unsigned i = 0; i < L->n; i++)
		p += snprintf(p, (size_t)(end - p), "%s%s", i ? ":" : "", fdname);
	envp[e] = NULL;
	L->envp = envp;
	*ret_store = store;
	return 0;
}

/* ---- the parent ---- */

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
static volatile sig_atomic_t sig_pending[NSIG];

static void on_signal(int sig)
{
	if (sig > 0 && sig < NSIG)
		sig_pending[sig] = 1;
}

struct fileid {
	dev_t dev;
	ino_t ino;
};

struct parent {
	const struct opts *o;
	handoff_t *h;          /* NULL while not registered */
	pid_t child;
	int err_fd;            /* read end of the error pipe, -1 once read */
	struct fileid given[MAX_SOCKETS];
	unsigned ngiven;
	bool retry;            /* register again at retry_at */
	uint64_t retry_at;
	unsigned backoff_ms;
	char last_why[512];    /* the last reconnect failure reported */
	struct child_error cerr;
};

static bool socket_given(const struct parent *P, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return false;
	for (unsigned i = 0; i < P->ngiven; i++)
		if (P->given[i].dev == st.st_dev && P->given[i].ino == st.st_ino)
			return true;
	return false;
}

static void registration_drop(struct parent *P)
{
	handoff_close(P->h);
	P->h = NULL;
}

static void program_stop(struct parent *P)
{
	if (P->child > 0)
		kill(P->child, SIGTERM);
}

static void retry_schedule(struct parent *P)
{
	P->retry = true;
	P->retry_at = now_ms() + P->backoff_ms;
	P->backoff_ms = P->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : P->backoff_ms * 2;
}

/* Everything handoffd sent on the control connection. */
static void control_readable(struct parent *P)
{
	const char *prog = P->o->argv[0], *svc = P->o->service;
	for (;;) {
		struct handoff_conn c;
		int r = handoff_accept(P->h, &c, HANDOFF_NONBLOCK);
		if (r == -EAGAIN)
			return;
		if (r == 0 && c.kind == HANDOFF_CONNECTION) {
			msg("handoffd handed over a single connection of '%s' (a stream listener in accept mode): "
			    "handoff-exec passes only shared sockets; closed it and left the service (set mode = listen)",
			    svc);
			close(c.fd);
			handoff_done(P->h, &c, 0);
			registration_drop(P);
			return;
		}
		if (r == 0) {
			if (!socket_given(P, c.fd)) {
				char a[160];
				if (handoff_addr_format((const struct sockaddr *)&c.local, c.local_len, a, sizeof(a)) < 0)
					snprintf(a, sizeof(a), "(unknown)");
				msg("handoffd shares a socket %s for '%s' that %s did not get at its start: closed it; "
				    "restart handoff-exec to pass it",
				    a, svc, prog);
			}
			/* else: the program's own socket, sent again after we
			 * registered again: it has it already. */
			close(c.fd);
			continue;
		}
		const char *e = handoff_last_error(P->h);
		const char *why = *e ? e : handoff_strerror(r);
		if (r == HANDOFF_E_DRAINED) {
			msg("handoffd drained our registration for '%s': stopping %s (pid %d) with SIGTERM", svc, prog,
			    (int)P->child);
			program_stop(P);
			registration_drop(P);
		} else if (is_revocation(r)) {
			msg("handoffd revoked our registration for '%s': %s: stopping %s (pid %d) with SIGTERM", svc, why,
			    prog, (int)P->child);
			program_stop(P);
			registration_drop(P);
		} else {
			msg("handoffd closed the control connection (%s): %s (pid %d) keeps serving its sockets; "
			    "registering again when handoffd is back",
			    why, prog, (int)P->child);
			registration_drop(P);
			P->backoff_ms = BACKOFF_MIN_MS;
			P->last_why[0] = '\0';
			retry_schedule(P);
		}
		return;
	}
}

static void reregister(struct parent *P)
{
	char why[512];
	P->retry = false;
	int r = registration_open(P->o, HANDOFF_NONBLOCK, &P->h, why, sizeof(why));
	if (r == 0) {
		if (handoff_shared_count(P->h) == 0) {
			msg("service '%s' has no shared sockets any more (mode changed?): not registering again",
			    P->o->service);
			registration_drop(P);
			return;
		}
		msg("registered again for '%s' (backend %" PRIu64 ")", P->o->service, handoff_backend_id(P->h));
		return; /* the sockets it sends again arrive as control_readable() */
	}
	if (is_revocation(r)) {
		msg("%s: stopping %s (pid %d) with SIGTERM", why, P->o->argv[0], (int)P->child);
		program_stop(P);
		return;
	}
	if (strcmp(why, P->last_why) != 0) {
		/* Once per reason, not once a second. */
		msg("%s; trying again", why);
		snprintf(P->last_why, sizeof(P->last_why), "%s", why);
	}
	retry_schedule(P);
}

static void err_pipe_read(struct parent *P)
{
	ssize_t got;
	do
		got = read(P->err_fd, &P->cerr, sizeof(P->cerr));
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(P->cerr))
		memset(&P->cerr, 0, sizeof(P->cerr)); /* EOF: exec succeeded */
	close(P->err_fd);
	P->err_fd = -1;
}

/* Wait for the program, forwarding signals and serving the control
 * connection. Returns its waitpid status. */
static int parent_run(struct parent *P)
{
	sigset_t none;
	sigemptyset(&none);
	for (;;) {
		int status;
		pid_t w = waitpid(P->child, &status, WNOHANG);
		if (w == P->child)
			return status;
		if (w < 0 && errno != EINTR) {
			msg("waitpid: %s", strerror(errno));
			return -1;
		}
		for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			if (sig_pending[forwarded[i]]) {
				sig_pending[forwarded[i]] = 0;
				kill(P->child, forwarded[i]);
			}
		sig_pending[SIGCHLD] = 0;
		if (P->retry && now_ms() >= P->retry_at)
			reregister(P);

		struct pollfd pf[2];
		nfds_t npf = 0;
		int ierr = -1, ih = -1;
		if (P->err_fd >= 0) {
			ierr = (int)npf;
			pf[npf++] = (struct pollfd){.fd = P->err_fd, .events = POLLIN};
		}
		if (P->h) {
			ih = (int)npf;
			pf[npf++] = (struct pollfd){.fd = handoff_fd(P->h), .events = POLLIN};
		}
		struct timespec ts, *tsp = NULL;
		if (P->retry) {
			uint64_t t = now_ms(), left = P->retry_at > t ? P->retry_at - t : 0;
			ts.tv_sec = (time_t)(left / 1000);
			ts.tv_nsec = (long)(left % 1000) * 1000000L;
			tsp = &ts;
		}
		/* Our signals are blocked everywhere but here: a handler runs only
		 * inside ppoll(), which then returns EINTR and we act on it above. */
		int r = ppoll(pf, npf, tsp, &none);
		if (r < 0) {
			if (errno != EINTR) {
				msg("ppoll: %s", strerror(errno));
				return -1;
			}
			continue;
		}
		if (ierr >= 0 && pf[ierr].revents)
			err_pipe_read(P);
		if (ih >= 0 && pf[ih].revents && P->h)
			control_readable(P);
	}
}

/* Exit as the program did. */
static int exit_like(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (!WIFSIGNALED(status))
		return EXIT_FAIL;
	int sig = WTERMSIG(status);
	/* The program dumped its own core if it was going to: not ours too. */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	signal(sig, SIG_DFL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	fflush(NULL);
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	return 128 + sig; /* a signal that does not kill */
}

/* fds 0-2 we were started without become /dev/null, as systemd gives a
 * service: otherwise our own sockets would land there and reach the
 * program as its stdin/stdout/stderr. */
static int stdio_ensure(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nfd < 0)
			return -errno;
		if (nfd != fd) { /* cannot be: fd was the lowest free one */
			close(nfd);
			return -EBADF;
		}
		/* Meant for the program: inheritable, like the stdio we had. */
		if (fcntl(fd, F_SETFD, 0) < 0)
			return -errno;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	int r = parse_args(argc, argv, &o);
	if (r != 0)
		return r < 0 ? 0 : r;
	/* What our caller left open above 2 is not ours: gone, as systemd
	 * would never let it reach a service (and a caller waiting for EOF on
	 * a pipe it gave us gets it). */
	close_above(3, ~0U, fd_limit());
	if ((r = stdio_ensure()) < 0) {
		msg("cannot open /dev/null for a closed stdin, stdout or stderr: %s", strerror(-r));
		return EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN); /* ours only: the child resets every disposition */

	char why[512];
	handoff_t *h;
	r = registration_open(&o, 0, &h, why, sizeof(why));
	if (r < 0) {
		msg("%s", why);
		return EXIT_FAIL;
	}
	unsigned n = handoff_shared_count(h);
	if (n == 0) {
		msg("service '%s' has no shared sockets: set mode = listen in its [service] section", o.service);
		handoff_close(h);
		return EXIT_FAIL;
	}
	if (n > MAX_SOCKETS) {
		msg("service '%s' has %u shared sockets; handoff-exec passes at most %d", o.service, n, MAX_SOCKETS);
		handoff_close(h);
		return EXIT_FAIL;
	}

	struct launch L;
	struct parent P;
	memset(&L, 0, sizeof(L));
	memset(&P, 0, sizeof(P));
	P.o = &o;
	P.h = h;
	P.err_fd = -1;
	P.backoff_ms = BACKOFF_MIN_MS;
	L.n = n;
	L.argv = o.argv;
	L.parent = getpid();
	if (sockets_receive(h, o.service, n, L.fds) < 0) {
		handoff_close(h);
		return EXIT_FAIL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct stat st;
		if (fstat(L.fds[i], &st) == 0)
			P.given[P.ngiven++] = (struct fileid){st.st_dev, st.st_ino};
	}
	L.max_fd = fd_limit();
	char *env_store = NULL;
	int errpipe[2] = {-1, -1};
	if (env_build(&L, o.fdname, &env_store) < 0) {
		msg("out of memory");
		goto fail;
	}
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		msg("pipe2: %s", strerror(errno));
		goto fail;
	}
	L.err_fd = errpipe[1];

	/* Block every signal across fork: the child must not run one of our
	 * handlers, and the parent installs them before it lets any in. */
	sigset_t all, ours;
	sigfillset(&all);
	sigemptyset(&ours);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&ours, forwarded[i]);
	sigaddset(&ours, SIGCHLD);
	sigprocmask(SIG_SETMASK, &all, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		msg("fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_run(&L);

	P.child = pid;
	close(errpipe[1]);
	P.err_fd = errpipe[0];
	for (unsigned i = 0; i < n; i++)
		close(L.fds[i]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	/* Ours stay blocked outside ppoll(); everything else as systemd or the
	 * shell gave it to us, minus whatever mask our caller had. */
	sigprocmask(SIG_SETMASK, &ours, NULL);

	int status = parent_run(&P);
	if (P.err_fd >= 0)
		err_pipe_read(&P); /* the child is gone: data or EOF at once */
	registration_drop(&P);
	free(L.envp);
	free(env_store);
	if (P.cerr.stage == STAGE_EXEC)
		msg("cannot execute %s: %s", o.argv[0], strerror(P.cerr.err));
	else if (P.cerr.stage == STAGE_FDS)
		msg("cannot put the sockets on fds 3..%u for %s: %s", 2 + n, o.argv[0], strerror(P.cerr.err));
	else if (P.cerr.stage == STAGE_SETUP)
		msg("cannot prepare the process for %s: %s", o.argv[0], strerror(P.cerr.err));
	if (status == -1)
		return EXIT_FAIL;
	return exit_like(status);

fail:
	for (unsigned i = 0; i < n; i++)
		close(L.fds[i]);
	if (errpipe[0] >= 0) {
		close(errpipe[0]);
		close(errpipe[1]);
	}
	free(L.envp);
	free(env_store);
	handoff_close(h);
	return EXIT_FAIL;
}
