/* scale-client: the helper program of tests/bench/scale (handoffd at scale).
 *
 *   scale-client launch --out FILE [--nofile N] [--notify] [--probe-socket CTL] -- PROGRAM [ARG...]
 *       Starts PROGRAM (handoffd) as its child with RLIMIT_NOFILE raised to
 *       N (soft and hard; raising the hard limit needs root), and times its
 *       start-up from just before the fork: with --notify it sets
 *       NOTIFY_SOCKET to an abstract datagram socket of its own and waits
 *       for READY=1 (closing any descriptor sent with FDSTORE=1, as systemd
 *       would keep them); with --probe-socket it then connects to the control
 *       socket until handoffd answers a registration for a service that does
 *       not exist (any answer from handoffd counts). Writes "pid P",
 *       "ready_us T" and "answer_us T" lines to FILE as they happen, keeps
 *       reading the notify socket, forwards SIGTERM and SIGINT to the child
 *       and exits with the child's status (128+signal when killed).
 *
 *   scale-client serve --socket CTL --services FILE --backends M [--procs P]
 *                      [--capacity C] [--user UID[:GID]] --out FILE
 *       Registers M backends, backend i for the service on line i % N of
 *       FILE (lines "NAME ADDRESS"), from P worker processes (default 4)
 *       that each open their share of the handoff connections one after the
 *       other: connect + REGISTER + REGISTERED answer, timed per
 *       registration. The workers raise RLIMIT_NOFILE to what their share
 *       needs and, when --user is given and we are root, switch to that uid
 *       (and gid) first, so that handoffd counts them against
 *       max_control_per_uid as it would real backends. Once every worker is
 *       done it writes the results ("key value" lines, then "done") to the
 *       --out FILE, and the workers serve: each connection handed to them is
 *       answered with "NAME BACKEND_ID\n" and closed, then handoff_done().
 *       On SIGTERM or SIGINT the parent stops each worker by pid, reaps them
 *       and exits 0; if a worker dies on its own it stops the rest and exits
 *       1. A worker whose handoffd goes away (all its handles closed) exits 0.
 *
 *   scale-client probe --services FILE --count K [--seed S]
 *       Connects to K services picked at random from FILE (TCP
 *       127.0.0.1:PORT, or unix:@name), reads the answer until EOF (5 s at
 *       most) and checks it names the service. Prints "probes K ok N p50_ms
 *       X max_ms Y" and one line per failure (when the first 3 all fail, it
 *       stops there); exits 0 when all K answered right, 1 otherwise.
 *
 * Exit codes: 0 success, 1 failure (as above), 2 usage or setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"

#define MAX_PROCS 256
#define MAX_BACKENDS (1u << 22)
#define MAX_SERVICES 65536
#define PROBE_TIMEOUT_MS 5000
#define NOTIFY_BUF 4096
#define FD_SLACK 64 /* descriptors a worker needs beside its handoff connections */
#define DEFAULT_STALL_S 30 /* no registration completed for this long: handoffd has stalled */

static const char *prog = "scale-client";

/* ---- small utilities ---- */

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Percentile of a sorted array (nearest rank). */
static uint32_t pct(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

/* Raise RLIMIT_NOFILE to want (soft and, if need be, hard). Returns 0 or -errno. */
static int raise_nofile(rlim_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
		return 0;
	struct rlimit nl = rl;
	nl.rlim_cur = want;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		nl.rlim_max = want; /* needs CAP_SYS_RESOURCE */
	if (setrlimit(RLIMIT_NOFILE, &nl) < 0)
		return -errno;
	return 0;
}

/* Write "key value\n" lines to an fd opened by the caller. */
static void put_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_line(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (int)w;
	}
}

/* ---- the services file ---- */

struct svc {
	char name[64];
	char addr[112]; /* "127.0.0.1:PORT", "[::1]:PORT" or "unix:@name" / "unix:/path" */
};

static int load_services(const char *path, struct svc **ret, size_t *ret_n)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	struct svc *v = NULL;
	size_t n = 0, cap = 0;
	char line[512];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char name[sizeof(v->name)], addr[sizeof(v->addr)];
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%63s %111s", name, addr) != 2) {
			fprintf(stderr, "%s: %s:%d: expected 'NAME ADDRESS'\n", prog, path, lineno);
			rc = -1;
			break;
		}
		if (n == MAX_SERVICES) {
			fprintf(stderr, "%s: %s: more than %d services\n", prog, path, MAX_SERVICES);
			rc = -1;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			struct svc *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -1;
				break;
			}
			v = nv;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", name);
		snprintf(v[n].addr, sizeof(v[n].addr), "%s", addr);
		n++;
	}
	fclose(f);
	if (rc == 0 && n == 0) {
		fprintf(stderr, "%s: %s: no services\n", prog, path);
		rc = -1;
	}
	if (rc < 0) {
		free(v);
		return -1;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- launch ---- */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void on_sigchld(int sig)
{
	(void)sig; /* only interrupts poll() */
}

/* Read every waiting notify datagram; close any fds that came along. Sets
 * *ready when one says READY=1. */
static void notify_drain(int nfd, bool *ready)
{
	for (;;) {
		char buf[NOTIFY_BUF + 1];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 253)];
		} cm;
		struct iovec iov = {buf, NOTIFY_BUF};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
		ssize_t n = recvmsg(nfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return; /* EAGAIN, mostly */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[253];
			memcpy(fds, CMSG_DATA(c), nf * sizeof(int));
			for (size_t i = 0; i < nf; i++)
				close(fds[i]);
		}
		buf[n] = '\0';
		/* Assignments are newline-separated. */
		for (char *p = buf; p && *p; ) {
			char *nl = strchr(p, '\n');
			if (nl)
				*nl = '\0';
			if (strcmp(p, "READY=1") == 0)
				*ready = true;
			p = nl ? nl + 1 : NULL;
		}
	}
}

static int cmd_launch(int argc, char **argv)
{
	const char *out = NULL, *probe = NULL;
	unsigned long nofile = 0;
	bool notify = false;
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--notify") == 0) {
			notify = true;
			continue;
		} else if (strcmp(a, "--out") == 0 && v) {
			out = v;
		} else if (strcmp(a, "--probe-socket") == 0 && v) {
			probe = v;
		} else if (strcmp(a, "--nofile") == 0 && v) {
			if (parse_ulong(v, 64, 1u << 30, &nofile) < 0) {
				fprintf(stderr, "%s: --nofile: '%s' is not a number 64..2^30\n", prog, v);
				return 2;
			}
		} else {
			fprintf(stderr, "%s launch: unknown or incomplete option '%s'\n", prog, a);
			return 2;
		}
		i++;
	}
	if (!out || i >= argc) {
		fprintf(stderr, "usage: %s launch --out FILE [--nofile N] [--notify] [--probe-socket CTL] -- PROGRAM [ARG...]\n",
		        prog);
		return 2;
	}
	int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (ofd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
		return 2;
	}

	int nfd = -1;
	char nname[64] = "";
	if (notify) {
		nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		snprintf(nname, sizeof(nname), "handoff-scale-notify-%d", (int)getpid());
		memcpy(un.sun_path + 1, nname, strlen(nname)); /* abstract: leading NUL */
		socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(nname));
		if (nfd < 0 || bind(nfd, (struct sockaddr *)&un, len) < 0) {
			fprintf(stderr, "%s: notify socket: %s\n", prog, strerror(errno));
			return 2;
		}
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);

	uint64_t t0 = now_us();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		return 2;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/* A safety net only: the script stops handoffd by pid. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (nofile) {
			struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
				fprintf(stderr, "%s: cannot set RLIMIT_NOFILE to %lu for %s: %s\n", prog, nofile, argv[i],
				        strerror(errno));
				_exit(125);
			}
		}
		if (notify) {
			char env[80];
			snprintf(env, sizeof(env), "@%s", nname);
			setenv("NOTIFY_SOCKET", env, 1);
		} else {
			unsetenv("NOTIFY_SOCKET");
		}
		execv(argv[i], argv + i);
		fprintf(stderr, "%s: exec %s: %s\n", prog, argv[i], strerror(errno));
		_exit(126);
	}
	put_line(ofd, "pid %d\n", (int)pid);

	bool ready = false, answered = false, forwarded = false;
	int status = 0;
	for (;;) {
		if (got_signal && !forwarded) {
			kill(pid, got_signal);
			forwarded = true;
		}
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (nfd >= 0) {
			bool was = ready;
			notify_drain(nfd, &ready);
			if (ready && !was)
				put_line(ofd, "ready_us %llu\n", (unsigned long long)(now_us() - t0));
		}
		if ((ready || !notify) && probe && !answered && !got_signal) {
			handoff_t *h;
			int rc = handoff_connect(probe, 0, &h);
			if (rc == 0) {
				rc = handoff_register(h, "scale-probe-no-such-service", 1);
				handoff_close(h);
				/* Any answer from handoffd (a refusal, mostly) is an answer. */
				if (rc == 0 || rc <= HANDOFF_E_PROTOCOL) {
					answered = true;
					put_line(ofd, "answer_us %llu\n", (unsigned long long)(now_us() - t0));
				}
			}
			if (!answered) {
				struct timespec ts = {0, 1000000}; /* not there yet: 1 ms */
				nanosleep(&ts, NULL);
			}
			continue;
		}
		struct pollfd p = {.fd = nfd, .events = POLLIN};
		poll(&p, nfd >= 0 ? 1 : 0, 100);
	}
	if (nfd >= 0)
		close(nfd);
	close(ofd);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- serve: register M backends, then answer what comes ---- */

struct shared {
	uint64_t t_go;          /* when the parent let the workers go */
	uint64_t t_fin[MAX_PROCS];
	uint32_t nok[MAX_PROCS]; /* registrations that succeeded so far, per worker */
	uint32_t lat_us[];       /* per backend: connect + register in us, 0 if not done;
	                          * followed by as many completion times (us since t_go) */
};

struct worker_args {
	const char *socket;
	const struct svc *svcs;
	size_t nsvcs;
	unsigned long backends, procs, capacity;
	unsigned k;               /* this worker's number */
	struct shared *sh;
	uint32_t *end_us;         /* per backend: completion time since t_go */
	int go_fd, done_fd;
};

static volatile sig_atomic_t worker_stop;

static void worker_on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
}

struct slot {
	handoff_t *h;
	const char *name;
};

static int worker_main(struct worker_args *a)
{
	struct sigaction sa = {.sa_handler = worker_on_term};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGTERM); /* a safety net; the parent stops us by pid */

	size_t mine = a->backends / a->procs + (a->k < a->backends % a->procs);
	struct slot *slots = calloc(mine ? mine : 1, sizeof(*slots));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!slots || ep < 0) {
		fprintf(stderr, "%s: worker %u: %s\n", prog, a->k, strerror(errno ? errno : ENOMEM));
		_exit(1);
	}
	/* Wait for the go: the parent closes the pipe's write end. */
	char c;
	while (read(a->go_fd, &c, 1) < 0 && errno == EINTR && !worker_stop)
		;
	close(a->go_fd);

	size_t nslots = 0;
	bool failed = false;
	for (unsigned long i = a->k; i < a->backends && !worker_stop; i += a->procs) {
		const struct svc *s = &a->svcs[i % a->nsvcs];
		handoff_t *h = NULL;
		uint64_t t1 = now_us();
		int rc = handoff_connect(a->socket, 0, &h);
		if (rc == 0)
			rc = handoff_register(h, s->name, (unsigned)a->capacity);
		uint64_t t2 = now_us();
		if (rc < 0) {
			fprintf(stderr, "%s: worker %u: backend %lu for '%s': %s%s%s\n", prog, a->k, i, s->name,
			        handoff_strerror(rc), h && *handoff_last_error(h) ? ": " : "",
			        h ? handoff_last_error(h) : "");
			handoff_close(h);
			failed = true;
			break;
		}
		a->sh->lat_us[i] = (uint32_t)(t2 - t1 ? t2 - t1 : 1);
		a->end_us[i] = (uint32_t)(t2 - a->sh->t_go);
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = nslots};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, handoff_fd(h), &ev) < 0) {
			fprintf(stderr, "%s: worker %u: epoll_ctl: %s\n", prog, a->k, strerror(errno));
			handoff_close(h);
			failed = true;
			break;
		}
		slots[nslots].h = h;
		slots[nslots].name = s->name;
		nslots++;
		__atomic_store_n(&a->sh->nok[a->k], (uint32_t)nslots, __ATOMIC_RELAXED); /* progress */
	}
	a->sh->t_fin[a->k] = now_us();
	a->sh->nok[a->k] = (uint32_t)nslots;
	c = failed ? '0' : '1';
	while (write(a->done_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(a->done_fd);

	/* Serve until told to stop, or until handoffd has closed every handle. */
	size_t live = nslots;
	while (!worker_stop && live > 0) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: worker %u: epoll_wait: %s\n", prog, a->k, strerror(errno));
			break;
		}
		for (int e = 0; e < n; e++) {
			struct slot *sl = &slots[evs[e].data.u64];
			if (!sl->h)
				continue;
			for (;;) {
				struct handoff_conn hc;
				int rc = handoff_accept(sl->h, &hc, HANDOFF_NONBLOCK);
				if (rc == -EAGAIN)
					break;
				if (rc < 0) {
					/* handoffd went away or dropped us: stop watching. */
					epoll_ctl(ep, EPOLL_CTL_DEL, handoff_fd(sl->h), NULL);
					handoff_close(sl->h);
					sl->h = NULL;
					live--;
					break;
				}
				if (hc.kind != HANDOFF_CONNECTION) {
					close(hc.fd); /* not expected: the services are in accept mode */
					continue;
				}
				char reply[128];
				int len = snprintf(reply, sizeof(reply), "%s %llu\n", sl->name,
				                   (unsigned long long)handoff_backend_id(sl->h));
				(void)send(hc.fd, reply, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
				close(hc.fd);
				handoff_done(sl->h, &hc, 0);
			}
		}
	}
	for (size_t i = 0; i < nslots; i++)
		handoff_close(slots[i].h);
	close(ep);
	free(slots);
	return 0;
}

static int drop_to(const char *spec)
{
	unsigned long uid, gid;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (parse_ulong(buf, 0, 0xfffffffe, &uid) < 0 ||
	    (colon && parse_ulong(colon + 1, 0, 0xfffffffe, &gid) < 0)) {
		fprintf(stderr, "%s: --user: '%s' is not UID[:GID]\n", prog, spec);
		return -1;
	}
	if (!colon)
		gid = uid;
	if (getuid() == (uid_t)uid)
		return 0;
	gid_t g = (gid_t)gid;
	if (setgroups(1, &g) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) {
		fprintf(stderr, "%s: cannot switch to uid %lu gid %lu: %s\n", prog, uid, gid, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	const char *sock = NULL, *list = NULL, *out = NULL, *user = NULL;
	unsigned long backends = 0, procs = 4, capacity = 16, stall_s = DEFAULT_STALL_S;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!v)
			bad = 1;
		else if (strcmp(a, "--socket") == 0)
			sock = v;
		else if (strcmp(a, "--services") == 0)
			list = v;
		else if (strcmp(a, "--out") == 0)
			out = v;
		else if (strcmp(a, "--user") == 0)
			user = v;
		else if (strcmp(a, "--backends") == 0)
			bad = parse_ulong(v, 1, MAX_BACKENDS, &backends) < 0;
		else if (strcmp(a, "--procs") == 0)
			bad = parse_ulong(v, 1, MAX_PROCS, &procs) < 0;
		else if (strcmp(a, "--capacity") == 0)
			bad = parse_ulong(v, 1, 65535, &capacity) < 0;
		else if (strcmp(a, "--stall") == 0)
			bad = parse_ulong(v, 1, 86400, &stall_s) < 0;
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "%s serve: bad or incomplete option '%s'%s%s\n", prog, a, v ? " " : "", v ? v : "");
			return 2;
		}
	}
	if (!sock || !list || !out || !backends) {
		fprintf(stderr, "usage: %s serve --socket CTL --services FILE --backends M [--procs P] [--capacity C]\n"
		                "       [--user UID[:GID]] [--stall SECONDS] --out FILE\n", prog);
		return 2;
	}
	if (procs > backends)
		procs = backends;
	struct svc *svcs;
	size_t nsvcs;
	if (load_services(list, &svcs, &nsvcs) < 0)
		return 2;
	int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (ofd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
		return 2;
	}

	/* Descriptors: each worker holds its share of the handoff connections. */
	rlim_t want = (rlim_t)(backends / procs + 1 + FD_SLACK);
	int rc = raise_nofile(want);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot raise RLIMIT_NOFILE to %llu (%s): use more --procs or raise the hard limit\n",
		        prog, (unsigned long long)want, strerror(-rc));
		return 2;
	}
	if (user && drop_to(user) < 0)
		return 2;

	size_t shsize = sizeof(struct shared) + (size_t)backends * sizeof(uint32_t) * 2;
	struct shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "%s: mmap: %s\n", prog, strerror(errno));
		return 2;
	}
	uint32_t *end_us = sh->lat_us + backends;

	int go[2], done[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);

	pid_t pids[MAX_PROCS];
	unsigned nproc = 0;
	int exit_code = 0;
	for (unsigned k = 0; k < procs; k++) {
		pid_t p = fork();
		if (p < 0) {
			fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
			exit_code = 2;
			break;
		}
		if (p == 0) {
			close(go[1]);
			close(done[0]);
			close(ofd);
			struct worker_args wa = {sock, svcs, nsvcs, backends, procs, capacity, k, sh, end_us, go[0], done[1]};
			_exit(worker_main(&wa));
		}
		pids[nproc++] = p;
	}
	close(go[0]);
	close(done[1]);

	unsigned reported = 0, nfailed = 0;
	bool stalled = false;
	if (exit_code == 0) {
		sh->t_go = now_us();
		close(go[1]); /* go */
		go[1] = -1;
		/* Wait for every worker's report; watch the progress meanwhile, so
		 * that a handoffd that stops answering (out of descriptors, say)
		 * is reported instead of waited for forever. */
		uint64_t last_progress = now_us(), last_total = 0;
		while (reported < nproc && !got_signal) {
			struct pollfd p = {.fd = done[0], .events = POLLIN};
			int pr = poll(&p, 1, 1000);
			if (pr == 0 || (pr < 0 && errno == EINTR)) {
				uint64_t total = 0;
				for (unsigned k = 0; k < nproc; k++)
					total += __atomic_load_n(&sh->nok[k], __ATOMIC_RELAXED);
				if (total != last_total) {
					last_total = total;
					last_progress = now_us();
				} else if (now_us() - last_progress > stall_s * 1000000u) {
					stalled = true;
					break;
				}
				continue;
			}
			char c;
			ssize_t n = read(done[0], &c, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* every worker has gone */
			reported++;
			nfailed += c != '1';
		}
	}
	if (go[1] >= 0)
		close(go[1]);
	close(done[0]);

	if ((reported == nproc || stalled) && nproc > 0) {
		uint64_t t_end = 0;
		unsigned long ok = 0;
		for (unsigned k = 0; k < nproc; k++) {
			if (sh->t_fin[k] > t_end)
				t_end = sh->t_fin[k];
			ok += __atomic_load_n(&sh->nok[k], __ATOMIC_RELAXED);
		}
		/* Stalled: up to the last registration that completed. */
		for (unsigned long i = 0; stalled && i < backends; i++)
			if (sh->lat_us[i] && sh->t_go + end_us[i] > t_end)
				t_end = sh->t_go + end_us[i];
		double secs = (double)(t_end - sh->t_go) / 1e6;
		uint32_t *lat = malloc(backends * sizeof(*lat)), *ends = malloc(backends * sizeof(*ends));
		size_t nl = 0;
		for (unsigned long i = 0; i < backends; i++)
			if (sh->lat_us[i]) {
				lat[nl] = sh->lat_us[i];
				ends[nl++] = end_us[i];
			}
		qsort(lat, nl, sizeof(*lat), cmp_u32);
		qsort(ends, nl, sizeof(*ends), cmp_u32);
		put_line(ofd, "backends %lu\nregistered %lu\nprocs %u\nseconds %.6f\nrate %.1f\n", backends, ok, nproc,
		         secs, secs > 0 ? (double)ok / secs : 0.0);
		put_line(ofd, "lat_p50_us %u\nlat_p99_us %u\nlat_max_us %u\n", pct(lat, nl, 0.50), pct(lat, nl, 0.99),
		         nl ? lat[nl - 1] : 0);
		/* Rate over the first and the last tenth of the registrations, by
		 * completion time: a rate that falls as the count grows means
		 * handoffd's cost per registration grows with what it holds. */
		if (nl >= 20) {
			size_t d = nl / 10;
			double first = (double)ends[d - 1] / 1e6, last = (double)(ends[nl - 1] - ends[nl - 1 - d]) / 1e6;
			put_line(ofd, "rate_first10 %.1f\nrate_last10 %.1f\n", first > 0 ? (double)d / first : 0.0,
			         last > 0 ? (double)d / last : 0.0);
		}
		put_line(ofd, "failed_workers %u\nstalled %d\n", nfailed, stalled);
		if (stalled)
			put_line(ofd, "stalled_after_s %lu\n", stall_s);
		free(lat);
		free(ends);
	} else {
		put_line(ofd, "failed_workers %u\n", nproc - reported + nfailed);
	}
	put_line(ofd, "done\n");
	close(ofd);
	if (nfailed)
		exit_code = 1;
	if (stalled)
		fprintf(stderr, "%s: no registration completed for %lu s: handoffd has stopped answering; "
		        "the workers keep what they have until told to stop\n", prog, stall_s);

	/* Serve until a signal, or until a worker dies. */
	unsigned alive = nproc;
	while (!got_signal && alive > 0 && exit_code == 0) {
		int st;
		pid_t w = waitpid(-1, &st, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		for (unsigned k = 0; k < nproc; k++)
			if (pids[k] == w)
				pids[k] = 0;
		alive--;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "%s: worker pid %d died (status 0x%x)\n", prog, (int)w, st);
			exit_code = 1;
		}
	}
	for (unsigned k = 0; k < nproc; k++)
		if (pids[k] > 0)
			kill(pids[k], SIGTERM);
	for (unsigned k = 0; k < nproc; k++) {
		if (pids[k] <= 0)
			continue;
		int st;
		while (waitpid(pids[k], &st, 0) < 0 && errno == EINTR)
			;
	}
	munmap(sh, shsize);
	free(svcs);
	return exit_code;
}

/* ---- probe ---- */

static int connect_to(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		const char *p = addr + 5;
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		size_t n = strlen(p);
		if (n == 0 || n >= sizeof(un.sun_path))
			return -EINVAL;
		memcpy(un.sun_path, p, n);
		if (p[0] == '@')
			un.sun_path[0] = '\0';
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		return fd;
	}
	const char *colon = strrchr(addr, ':');
	unsigned long port;
	if (!colon || parse_ulong(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char host[64];
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* One probe: returns 0 and the answer in buf, or -errno. */
static int probe_one(const struct svc *s, char *buf, size_t size)
{
	int fd = connect_to(s->addr);
	if (fd < 0)
		return fd;
	size_t got = 0;
	uint64_t deadline = now_us() + PROBE_TIMEOUT_MS * 1000u;
	int rc = 0;
	for (;;) {
		uint64_t now = now_us();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)((deadline - now) / 1000 + 1));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == size - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	return rc;
}

static int cmd_probe(int argc, char **argv)
{
	const char *list = NULL;
	unsigned long count = 10, seed = (unsigned long)getpid();
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = !v;
		if (!bad && strcmp(a, "--services") == 0)
			list = v;
		else if (!bad && strcmp(a, "--count") == 0)
			bad = parse_ulong(v, 1, 1000000, &count) < 0;
		else if (!bad && strcmp(a, "--seed") == 0)
			bad = parse_ulong(v, 0, 0xffffffffUL, &seed) < 0;
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "%s probe: bad or incomplete option '%s'\n", prog, a);
			return 2;
		}
	}
	if (!list) {
		fprintf(stderr, "usage: %s probe --services FILE [--count K] [--seed S]\n", prog);
		return 2;
	}
	struct svc *svcs;
	size_t nsvcs;
	if (load_services(list, &svcs, &nsvcs) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)seed);
	uint32_t *ms10 = calloc(count, sizeof(*ms10)); /* latencies in 0.01 ms */
	unsigned long ok = 0, failed_in_a_row = 0;
	for (unsigned long i = 0; i < count; i++) {
		/* Nothing answered at all: do not wait 5 s for each of the rest. */
		if (ok == 0 && failed_in_a_row == 3) {
			printf("no answer to the first 3 probes: %lu more not tried\n", count - i);
			break;
		}
		const struct svc *s = &svcs[(size_t)random() % nsvcs];
		char buf[256];
		uint64_t t1 = now_us();
		int rc = probe_one(s, buf, sizeof(buf));
		uint64_t t2 = now_us();
		size_t nl = strlen(s->name);
		if (rc == 0 && strncmp(buf, s->name, nl) == 0 && buf[nl] == ' ') {
			ms10[ok++] = (uint32_t)((t2 - t1) / 10);
			failed_in_a_row = 0;
		} else {
			failed_in_a_row++;
			char *e = strchr(buf, '\n');
			if (e)
				*e = '\0';
			printf("probe %s (%s): %s%s'%s'\n", s->name, s->addr, rc < 0 ? strerror(-rc) : "wrong answer",
			       rc < 0 ? ", answer so far " : " ", buf);
		}
	}
	qsort(ms10, ok, sizeof(*ms10), cmp_u32);
	printf("probes %lu ok %lu p50_ms %.2f max_ms %.2f\n", count, ok, pct(ms10, ok, 0.5) / 100.0,
	       ok ? ms10[ok - 1] / 100.0 : 0.0);
	free(ms10);
	free(svcs);
	return ok == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "launch") == 0)
		return cmd_launch(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "probe") == 0)
		return cmd_probe(argc - 1, argv + 1);
	fprintf(stderr, "usage: %s launch|serve|probe ... (see the comment at the top of tests/bench/scale-client.c)\n",
	        prog);
	return 2;
}
