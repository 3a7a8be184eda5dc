/* tinyserver: the smallest useful HTTP server, for the handoffd benchmark.
 *
 * The same request handling runs in three settings, so that the benchmark
 * measures nothing but the way a connection reaches the server:
 *
 *   tinyserver --direct HOST:PORT            binds, listens and accept4()s
 *   tinyserver --handoff SERVICE [--socket PATH] [--capacity N] [--defer] [--batch N]
 *                                            registers with handoffd through
 *                                            libhandoff and handoff_accept()s
 *   tinyserver --handoff SERVICE --listen [--socket PATH]
 *                                            for a service in mode = listen:
 *                                            registers, takes the listening
 *                                            socket handoffd hands over
 *                                            (HANDOFF_LISTENER) and accept4()s
 *                                            on it with the direct-mode loop
 *   tinyserver --inetd                       started per connection by an
 *                                            inetd-style super-server (xinetd,
 *                                            inetd, tcpserver,
 *                                            systemd-socket-activate --inetd):
 *                                            the connection is fd 0 (read)
 *                                            and fd 1 (write); serves that one
 *                                            request and exits
 *
 * Per connection: read the request head (up to "\r\n\r\n"), write one fixed
 * "HTTP/1.1 200 OK" response with Content-Length and "Connection: close",
 * close the socket and, in handoff mode without --listen, handoff_done()
 * (with HANDOFF_DEFER under --defer; never for the connections a worker
 * accepted itself under --listen). --workers N forks N worker processes,
 * each with its own accept loop (direct: on the one listening socket bound
 * by the parent; handoff: each with its own control connection and
 * registration, and under --listen its own descriptor for handoffd's one
 * listening socket).
 *
 * The parent only supervises: on SIGTERM or SIGINT it sends SIGTERM to each
 * worker by pid, reaps them all and exits 0. If a worker dies on its own the
 * parent stops the others and exits 1, so the benchmark notices.
 *
 * --inetd forks nothing and writes nothing to stderr unless -v (inetd and
 * xinetd put the connection on fd 2 as well, so a message would go to the
 * client).
 *
 * Exit codes: 0 stopped by a signal (--inetd: the response was written),
 * 1 a worker failed (--inetd: no response written: the client went away,
 * sent too much or nothing, or fd 0/1 is not a stream socket),
 * 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"

#define MAX_WORKERS 64
#define REQ_BUF 2048
#define CLIENT_TIMEOUT_MS 5000 /* a client silent for this long is dropped */
#define DEFAULT_CAPACITY 256
#define LISTEN_BACKLOG 4096 /* the same as handoffd's default backlog */

static const char response[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 13\r\n"
	"Connection: close\r\n"
	"\r\n"
	"Hello, world\n";

enum mode { MODE_NONE, MODE_DIRECT, MODE_HANDOFF, MODE_INETD };

struct options {
	enum mode mode;
	const char *addr;    /* --direct HOST:PORT */
	bool listen;         /* --handoff with --listen: accept on handoffd's shared socket */
	const char *service; /* --handoff SERVICE */
	const char *socket;  /* --socket PATH (NULL: $HANDOFF_SOCKET or default) */
	unsigned capacity;
	unsigned workers;
	bool defer;
	unsigned batch; /* handoff_set_batch(); 0 = library default */
	bool verbose;
};

/* Worker state the signal handler looks at. The worker sets `idle` before it
 * checks `stop` and blocks, so a SIGTERM either finds the worker blocked (and
 * ends it at once: the blocking calls restart on EINTR) or is seen at the top
 * of the next iteration. */
static volatile sig_atomic_t worker_stop;
static volatile sig_atomic_t worker_idle;
static unsigned long stats_waits; /* reads that found nothing yet and polled */

static void worker_on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
	if (worker_idle)
		_exit(0);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tinyserver --direct HOST:PORT [--workers N] [-v]\n"
		"       tinyserver --handoff SERVICE [--socket PATH] [--capacity N] [--defer] [--batch N] [--listen]\n"
		"                  [--workers N] [-v]\n"
		"       tinyserver --inetd [-v]      (the connection on fds 0 and 1; one request, then exit)\n");
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .capacity = DEFAULT_CAPACITY, .workers = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (strcmp(a, "--direct") == 0 && v) {
			o->mode = MODE_DIRECT;
			o->addr = v;
		} else if (strcmp(a, "--handoff") == 0 && v) {
			o->mode = MODE_HANDOFF;
			o->service = v;
		} else if (strcmp(a, "--inetd") == 0) {
			o->mode = MODE_INETD;
			takes = false;
		} else if (strcmp(a, "--socket") == 0 && v) {
			o->socket = v;
		} else if (strcmp(a, "--capacity") == 0 && v) {
			if (parse_uint(v, 1, 65535, &o->capacity) < 0) {
				fprintf(stderr, "tinyserver: --capacity: '%s' is not a number 1..65535\n", v);
				return -EINVAL;
			}
		} else if (strcmp(a, "--workers") == 0 && v) {
			if (parse_uint(v, 1, MAX_WORKERS, &o->workers) < 0) {
				fprintf(stderr, "tinyserver: --workers: '%s' is not a number 1..%d\n", v,
				        MAX_WORKERS);
				return -EINVAL;
			}
		} else if (strcmp(a, "--defer") == 0) {
			o->defer = true;
			takes = false;
		} else if (strcmp(a, "--listen") == 0) {
			o->listen = true;
			takes = false;
		} else if (strcmp(a, "--batch") == 0 && v) {
			if (parse_uint(v, 1, 256, &o->batch) < 0) {
				fprintf(stderr, "tinyserver: --batch: '%s' is not a number 1..256\n", v);
				return -EINVAL;
			}
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			o->verbose = true;
			takes = false;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "tinyserver: bad or incomplete argument '%s'\n", a);
			return -EINVAL;
		}
		if (takes)
			i++;
	}
	if (o->mode == MODE_NONE) {
		fprintf(stderr, "tinyserver: one of --direct, --handoff or --inetd is required\n");
		return -EINVAL;
	}
	return 0;
}

/* Wait until fd is readable, for at most CLIENT_TIMEOUT_MS. Returns 1 when
 * readable, 0 on timeout or when asked to stop, -1 on error. */
static int wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		int n = poll(&p, 1, CLIENT_TIMEOUT_MS);
		if (n < 0 && errno == EINTR) {
			if (worker_stop)
				return 0;
			continue;
		}
		return n < 0 ? -1 : n;
	}
}

/* Read the request head from rfd and write the response to wfd (the same
 * socket except under --inetd, where they are fds 0 and 1). Errors from the
 * client (reset, early close, a head that does not fit, silence for
 * CLIENT_TIMEOUT_MS) just end the connection. Closes nothing. Returns 0 when
 * a response was written, -1 otherwise.
 *
 * The sockets stay blocking (in handoff mode the file description is shared
 * with handoffd until it closes its copy, so its flags are not ours to
 * change). Reads use MSG_DONTWAIT and only poll when nothing has arrived
 * yet: usually the request is already there and this costs no extra system
 * call, yet a client that never sends cannot hold a worker forever. */
static int serve_fds(int rfd, int wfd)
{
	char buf[REQ_BUF];
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(rfd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			stats_waits++;
			if (wait_readable(rfd) <= 0)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		/* Search from a little before the new bytes: the terminator may
		 * straddle two reads. */
		size_t from = len >= 3 ? len - 3 : 0;
		len += (size_t)n;
		if (memmem(buf + from, len - from, "\r\n\r\n", 4))
			break;
		if (len == sizeof(buf) - 1)
			return -1;
	}

	size_t off = 0;
	while (off < sizeof(response) - 1) {
		ssize_t n = send(wfd, response + off, sizeof(response) - 1 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			if (worker_stop)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* serve_fds() on one connection socket, then close it. Takes ownership of
 * fd. Returns 0 when a response was written, -1 otherwise. */
static int serve_take(int fd)
{
	int ret = serve_fds(fd, fd);
	close(fd);
	return ret;
}

/* --inetd: the super-server has put the accepted connection on fd 0 and
 * fd 1 (usually dup()s of one socket; inetd and xinetd on fd 2 as well).
 * Serve one request exactly as the other modes do and return the exit
 * status. Both must be stream sockets: recv()/send() need them, and a
 * misconfigured super-server (a pipe, a datagram socket) is told so on
 * stderr only with -v, since stderr may be the client. */
static int inetd_serve(const struct options *o)
{
	for (int fd = 0; fd <= 1; fd++) {
		int type = 0;
		socklen_t len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
			if (o->verbose)
				fprintf(stderr, "tinyserver: --inetd: fd %d is not a stream socket\n", fd);
			return 1;
		}
	}
	int ret = serve_fds(0, 1) == 0 ? 0 : 1;
	/* The last of fds 0, 1 (and 2) to close sends the FIN; exit would
	 * close them too, but say so. */
	close(1);
	close(0);
	if (o->verbose)
		fprintf(stderr, "tinyserver[%d]: --inetd: %s\n", getpid(), ret ? "no response written" : "served");
	return ret;
}

/* Parse HOST:PORT or [V6]:PORT and return a listening socket, or -errno. */
static int listen_on(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
		fprintf(stderr, "tinyserver: --direct: '%s' is not HOST:PORT\n", spec);
		return -EINVAL;
	}
	const char *h = spec;
	size_t hlen = (size_t)(colon - spec);
	if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "tinyserver: --direct: cannot resolve '%s': %s\n", spec, gai_strerror(r));
		return -EINVAL;
	}
	int fd = -1, err = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "tinyserver: cannot listen on %s: %s\n", spec, strerror(-err));
	return fd;
}

/* Accept and serve on lfd until told to stop. lfd is the worker's own
 * listening socket (--direct) or handoffd's shared one (--handoff --listen).
 * The latter is non-blocking: handoffd set O_NONBLOCK on the open file
 * description that it shares with every backend, so the flag is not ours to
 * clear. accept4() then returns EAGAIN when the backlog is empty, or when
 * another worker took the connection that woke us, and the worker waits in
 * poll() for the next one. Returns 0 when stopped, 1 on an error. */
static int worker_direct(int lfd, const struct options *o)
{
	unsigned long served = 0, accept_waits = 0;
	for (;;) {
		worker_idle = 1;
		if (worker_stop)
			break;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* A client that reset before we took it, or a passing
			 * memory shortage: try the next one. (EMFILE cannot be
			 * transient here: a worker holds one connection at a
			 * time, so it is reported like any other error.) */
			if (errno == EINTR || errno == ECONNABORTED || errno == ENOBUFS || errno == ENOMEM)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* Still idle while waiting: SIGTERM ends us at once. */
				accept_waits++;
				if (wait_readable(lfd) < 0) {
					fprintf(stderr, "tinyserver[%d]: poll: %s\n", getpid(), strerror(errno));
					return 1;
				}
				continue;
			}
			fprintf(stderr, "tinyserver[%d]: accept4: %s\n", getpid(), strerror(errno));
			return 1;
		}
		worker_idle = 0;
		if (serve_take(fd) == 0)
			served++;
	}
	if (o->verbose)
		fprintf(stderr, "tinyserver[%d]: stopping, %lu served, %lu waited for the request, "
		        "%lu accept4 calls found the backlog empty\n", getpid(), served, stats_waits, accept_waits);
	return 0;
}

static int worker_handoff(const struct options *o)
{
	handoff_t *h = NULL;
	unsigned long served = 0;
	int ret = 1;

	int r = handoff_connect(o->socket, 0, &h);
	if (r < 0) {
		fprintf(stderr, "tinyserver[%d]: cannot connect to handoffd at %s: %s\n", getpid(),
		        o->socket ? o->socket : "(default)", handoff_strerror(r));
		goto out;
	}
	r = handoff_register(h, o->service, o->capacity);
	if (r < 0) {
		const char *why = handoff_last_error(h);
		fprintf(stderr, "tinyserver[%d]: cannot register for '%s': %s%s%s\n", getpid(),
		        o->service, handoff_strerror(r), *why ? ": " : "", why);
		goto out;
	}
	if (o->verbose)
		fprintf(stderr, "tinyserver[%d]: backend %llu for '%s', capacity %u\n", getpid(),
		        (unsigned long long)handoff_backend_id(h), o->service, handoff_capacity(h));

	if (o->batch && (r = handoff_set_batch(h, o->batch)) < 0) {
		fprintf(stderr, "tinyserver[%d]: handoff_set_batch: %s\n", getpid(), handoff_strerror(r));
		goto out;
	}
	if (o->listen) {
		/* mode = listen: the first thing handoffd sends is its listening
		 * socket; from then on we accept exactly as in direct mode, and
		 * handoffd takes no part in a connection (no handoff_done()). */
		struct handoff_conn c;
		r = handoff_accept(h, &c, 0);
		if (r < 0) {
			fprintf(stderr, "tinyserver[%d]: expected a listening socket from handoffd: %s\n",
			        getpid(), handoff_strerror(r));
			goto out;
		}
		if (c.kind != HANDOFF_LISTENER) {
			fprintf(stderr, "tinyserver[%d]: expected a listening socket from handoffd, got kind %d "
			        "(is the service in mode = listen?)\n", getpid(), c.kind);
			close(c.fd);
			goto out;
		}
		ret = worker_direct(c.fd, o);
		close(c.fd);
		handoff_close(h);
		return ret;
	}
	const int done_flags = o->defer ? HANDOFF_DEFER : 0;
	for (;;) {
		struct handoff_conn c;
		worker_idle = 1;
		if (worker_stop)
			break;
		r = handoff_accept(h, &c, 0);
		worker_idle = 0;
		if (r < 0) {
			if (r == -EINTR)
				continue;
			if (r == HANDOFF_E_DRAINED || r == HANDOFF_E_SHUTDOWN) {
				ret = 0;
				goto out;
			}
			fprintf(stderr, "tinyserver[%d]: handoff_accept: %s\n", getpid(), handoff_strerror(r));
			goto out;
		}
		if (serve_take(c.fd) == 0)
			served++;
		c.fd = -1;
		r = handoff_done(h, &c, done_flags);
		if (r < 0) {
			fprintf(stderr, "tinyserver[%d]: handoff_done: %s\n", getpid(), handoff_strerror(r));
			goto out;
		}
	}
	(void)handoff_flush(h);
	ret = 0;
out:
	if (o->verbose)
		fprintf(stderr, "tinyserver[%d]: stopping, %lu served, %lu waited for the request\n", getpid(),
		        served, stats_waits);
	handoff_close(h);
	return ret;
}

/* Runs in the forked child; never returns. */
static void worker_run(int lfd, const struct options *o, const sigset_t *oldmask)
{
	struct sigaction sa = { .sa_handler = worker_on_term };
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART off: a blocked accept4() returns EINTR (the handler
	 * ends the process anyway while idle). */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_SETMASK, oldmask, NULL);

	int ret = o->mode == MODE_DIRECT ? worker_direct(lfd, o) : worker_handoff(o);
	_exit(ret);
}

static void stop_workers(pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
}

int main(int argc, char **argv)
{
	struct options o;
	pid_t pids[MAX_WORKERS];
	unsigned nworkers = 0, alive = 0;
	int lfd = -1, ret = 1;

	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	if (o.mode == MODE_INETD)
		return inetd_serve(&o);

	if (o.mode == MODE_DIRECT) {
		lfd = listen_on(o.addr);
		if (lfd < 0)
			return 1;
	}

	/* The parent takes its signals synchronously with sigwaitinfo(); block
	 * them before forking so none is lost in between. */
	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);

	for (unsigned i = 0; i < o.workers; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "tinyserver: fork: %s\n", strerror(errno));
			stop_workers(pids, nworkers);
			goto reap;
		}
		if (pid == 0)
			worker_run(lfd, &o, &oldmask);
		pids[nworkers++] = pid;
		alive++;
	}
	if (o.verbose)
		fprintf(stderr, "tinyserver[%d]: %s %s with %u worker(s)\n", getpid(),
		        o.mode == MODE_DIRECT ? "direct on" : "handoff for",
		        o.mode == MODE_DIRECT ? o.addr : o.service, nworkers);

	bool stopping = false;
	while (alive > 0) {
		siginfo_t si;
		int sig = sigwaitinfo(&mask, &si);
		if (sig < 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				stopping = true;
				ret = 0;
				stop_workers(pids, nworkers);
			}
			continue;
		}
		/* SIGCHLD: reap whatever has ended. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (unsigned i = 0; i < nworkers; i++)
				if (pids[i] == pid)
					pids[i] = -1;
			alive--;
			if (!stopping) {
				fprintf(stderr, "tinyserver: worker %d %s %d; stopping the others\n", pid,
				        WIFSIGNALED(status) ? "killed by signal" : "exited with",
				        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
				stopping = true;
				ret = 1;
				stop_workers(pids, nworkers);
			}
		}
	}
reap:
	while (waitpid(-1, NULL, 0) > 0)
		;
	if (lfd >= 0)
		close(lfd);
	return ret;
}
