/* bulkserver: a bulk-transfer server for the handoffd benchmark
 * (tests/bench/bulk).
 *
 * The same transfer code runs in two settings, so that the benchmark measures
 * nothing but the way a connection reached the server:
 *
 *   bulkserver --direct HOST:PORT            binds, listens and accept4()s
 *   bulkserver --handoff SERVICE [--socket PATH]
 *                                            registers with handoffd through
 *                                            libhandoff and takes each
 *                                            connection with handoff_accept()
 *
 * Protocol (one request per connection). The client sends one line of at
 * most 63 bytes:
 *
 *   "GET <n>\n"   the server writes n bytes, as fast as it can, from one
 *                 buffer, then closes;
 *   "PUT <n>\n"   the client writes n bytes; the server reads and counts
 *                 them, answers "OK <n>\n" when it has them all and closes.
 *
 * Anything else, or a connection that ends early, is closed without an
 * answer. One process, one poll() loop, at most MAX_CONNS connections at
 * once (in handoff mode that is also the capacity it registers with, so
 * handoffd never sends more). Sockets are used with MSG_DONTWAIT and their
 * flags are never changed: in handoff mode the open file description is
 * shared with handoffd until it closes its copy.
 *
 * Stops on SIGTERM or SIGINT (exit 0), or when handoffd shuts down or drains
 * the backend (exit 0). Exit codes: 0 stopped, 1 error, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

#define MAX_CONNS 64
#define REQ_MAX 64
#define IO_CHUNK (1024 * 1024) /* bytes per send()/recv() call at most */
#define LISTEN_BACKLOG 4096

enum conn_state { ST_REQUEST, ST_SEND, ST_RECV, ST_REPLY };

struct conn {
	int fd; /* -1: free slot */
	enum conn_state state;
	char req[REQ_MAX];
	size_t req_len;
	uint64_t left;    /* bytes still to send (GET) or to receive (PUT) */
	uint64_t total;   /* n from the request */
	char reply[40];
	size_t reply_len, reply_off;
	bool handed;      /* came from handoffd: handoff_done() when finished */
	struct handoff_conn hc;
};

struct server {
	bool handoff;
	int lfd;              /* --direct: our listening socket; -1 otherwise */
	handoff_t *h;         /* --handoff */
	struct conn conns[MAX_CONNS];
	unsigned nconns;
	bool verbose;
	unsigned long served, failed;
};

static char io_buf[IO_CHUNK];
static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bulkserver --direct HOST:PORT [-v]\n"
	           "       bulkserver --handoff SERVICE [--socket PATH] [-v]\n");
}

/* Parse HOST:PORT (numeric host, [v6] allowed) and return a non-blocking
 * listening socket, or -errno. */
static int listen_on(const char *spec)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	const char *hp = spec;
	size_t hlen = (size_t)(colon - spec);
	if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') {
		hp++;
		hlen -= 2;
	}
	memcpy(host, hp, hlen);
	host[hlen] = '\0';

	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	int fd = -1, err = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
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
	return fd >= 0 ? fd : err;
}

/* Take ownership of fd into a free slot. The caller has checked there is
 * one. */
static void conn_add_take(struct server *s, int fd, const struct handoff_conn *hc)
{
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &s->conns[i];
		if (c->fd >= 0)
			continue;
		*c = (struct conn){ .fd = fd, .state = ST_REQUEST };
		if (hc) {
			c->handed = true;
			c->hc = *hc;
		}
		s->nconns++;
		return;
	}
	close(fd); /* not reached: callers check nconns first */
}

/* Close a connection and free its slot; in handoff mode tell handoffd. */
static int conn_close(struct server *s, struct conn *c, bool ok)
{
	int r = 0;
	close(c->fd);
	c->fd = -1;
	s->nconns--;
	if (ok)
		s->served++;
	else
		s->failed++;
	if (c->handed) {
		c->hc.fd = -1;
		r = handoff_done(s->h, &c->hc, 0);
		if (r < 0)
			fprintf(stderr, "bulkserver: handoff_done: %s\n", handoff_strerror(r));
	}
	return r;
}

/* Parse "GET <n>" / "PUT <n>" (the line without its newline). */
static int request_parse(struct conn *c)
{
	char *end;
	const char *num = c->req + 4;
	bool get = strncmp(c->req, "GET ", 4) == 0;
	if (!get && strncmp(c->req, "PUT ", 4) != 0)
		return -EINVAL;
	if (*num < '0' || *num > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(num, &end, 10);
	if (errno || *end != '\0')
		return -EINVAL;
	c->total = c->left = n;
	c->state = get ? ST_SEND : ST_RECV;
	return 0;
}

/* PUT: every byte is in; queue the answer. */
static void reply_set(struct conn *c)
{
	c->reply_len = (size_t)snprintf(c->reply, sizeof(c->reply), "OK %llu\n", (unsigned long long)c->total);
	c->state = ST_REPLY;
}

/* Make progress on one connection. Returns 1 when it is finished well, 0 to
 * go on, -1 when it failed. */
static int conn_step(struct conn *c)
{
	for (;;) {
		ssize_t n = 0;
		switch (c->state) {
		case ST_REQUEST:
			n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len, MSG_DONTWAIT);
			if (n <= 0)
				break;
			c->req_len += (size_t)n;
			c->req[c->req_len] = '\0';
			char *nl = memchr(c->req, '\n', c->req_len);
			if (!nl) {
				if (c->req_len == sizeof(c->req) - 1)
					return -1;
				continue;
			}
			/* The client sends nothing after the line before we
			 * answer (GET), or only the body (PUT): body bytes
			 * that came with the line count towards it. */
			size_t extra = c->req_len - (size_t)(nl - c->req) - 1;
			*nl = '\0';
			if (request_parse(c) < 0)
				return -1;
			if (extra) {
				if (c->state != ST_RECV || extra > c->left)
					return -1;
				c->left -= extra;
			}
			if (c->state == ST_RECV && c->left == 0)
				reply_set(c);
			continue;
		case ST_SEND:
			if (c->left == 0)
				return 1;
			n = send(c->fd, io_buf, c->left < IO_CHUNK ? (size_t)c->left : IO_CHUNK,
			         MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n <= 0)
				break;
			c->left -= (uint64_t)n;
			continue;
		case ST_RECV:
			n = recv(c->fd, io_buf, c->left < IO_CHUNK ? (size_t)c->left : IO_CHUNK, MSG_DONTWAIT);
			if (n <= 0)
				break;
			c->left -= (uint64_t)n;
			if (c->left == 0)
				reply_set(c);
			continue;
		case ST_REPLY:
			if (c->reply_off == c->reply_len)
				return 1;
			n = send(c->fd, c->reply + c->reply_off, c->reply_len - c->reply_off,
			         MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n <= 0)
				break;
			c->reply_off += (size_t)n;
			continue;
		}
		/* n <= 0: EOF or error, unless it would block. */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

/* Take what is waiting on the listening socket or the control connection,
 * while there is room. Returns 0, 1 when handoffd ended the registration, or
 * -1 on an error. */
static int take_new(struct server *s)
{
	while (s->nconns < MAX_CONNS) {
		if (!s->handoff) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				fprintf(stderr, "bulkserver: accept4: %s\n", strerror(errno));
				return -1;
			}
			conn_add_take(s, fd, NULL);
			continue;
		}
		struct handoff_conn hc;
		int r = handoff_accept(s->h, &hc, HANDOFF_NONBLOCK);
		if (r == -EAGAIN || r == -EINTR)
			return 0;
		if (r == HANDOFF_E_DRAINED || r == HANDOFF_E_SHUTDOWN || r == HANDOFF_E_CLOSED)
			return 1;
		if (r < 0) {
			fprintf(stderr, "bulkserver: handoff_accept: %s\n", handoff_strerror(r));
			return -1;
		}
		if (hc.kind != HANDOFF_CONNECTION) {
			fprintf(stderr, "bulkserver: handoffd sent a shared socket (kind %d): "
			        "the service must be in mode = accept\n", hc.kind);
			close(hc.fd);
			return -1;
		}
		int fd = hc.fd;
		conn_add_take(s, fd, &hc);
	}
	return 0;
}

static int serve(struct server *s)
{
	struct pollfd pfd[1 + MAX_CONNS];
	struct conn *map[1 + MAX_CONNS];

	while (!stop_flag) {
		nfds_t n = 0;
		if (s->nconns < MAX_CONNS) {
			pfd[n] = (struct pollfd){ .fd = s->handoff ? handoff_fd(s->h) : s->lfd, .events = POLLIN };
			map[n++] = NULL;
		}
		for (unsigned i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &s->conns[i];
			if (c->fd < 0)
				continue;
			short ev = (c->state == ST_SEND || c->state == ST_REPLY) ? POLLOUT : POLLIN;
			pfd[n] = (struct pollfd){ .fd = c->fd, .events = ev };
			map[n++] = c;
		}
		int k = poll(pfd, n, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "bulkserver: poll: %s\n", strerror(errno));
			return 1;
		}
		for (nfds_t i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (!map[i]) {
				int r = take_new(s);
				if (r < 0)
					return 1;
				if (r > 0)
					return 0; /* handoffd is gone or drained us */
				continue;
			}
			int r = conn_step(map[i]);
			if (r != 0 && conn_close(s, map[i], r > 0) < 0)
				return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *direct = NULL, *service = NULL, *sock = NULL;
	struct server s = { .lfd = -1 };
	int ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--direct") == 0 && v) {
			direct = v;
			i++;
		} else if (strcmp(a, "--handoff") == 0 && v) {
			service = v;
			i++;
		} else if (strcmp(a, "--socket") == 0 && v) {
			sock = v;
			i++;
		} else if (strcmp(a, "-v") == 0) {
			s.verbose = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "bulkserver: bad or incomplete argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!direct == !service) {
		fprintf(stderr, "bulkserver: exactly one of --direct or --handoff is required\n");
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		s.conns[i].fd = -1;
	memset(io_buf, 'x', sizeof(io_buf));

	struct sigaction sa = { .sa_handler = on_term }; /* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (direct) {
		s.lfd = listen_on(direct);
		if (s.lfd < 0) {
			fprintf(stderr, "bulkserver: cannot listen on '%s': %s\n", direct, strerror(-s.lfd));
			return 1;
		}
	} else {
		s.handoff = true;
		int r = handoff_connect(sock, 0, &s.h);
		if (r < 0) {
			fprintf(stderr, "bulkserver: cannot connect to handoffd at %s: %s\n",
			        sock ? sock : "(default)", handoff_strerror(r));
			goto out;
		}
		r = handoff_register(s.h, service, MAX_CONNS);
		if (r < 0) {
			const char *why = handoff_last_error(s.h);
			fprintf(stderr, "bulkserver: cannot register for '%s': %s%s%s\n", service,
			        handoff_strerror(r), *why ? ": " : "", why);
			goto out;
		}
	}
	if (s.verbose)
		fprintf(stderr, "bulkserver[%d]: %s %s\n", getpid(), direct ? "direct on" : "handoff for",
		        direct ? direct : service);
	ret = serve(&s);
out:
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (s.conns[i].fd >= 0)
			conn_close(&s, &s.conns[i], false);
	if (s.h) {
		(void)handoff_flush(s.h);
		handoff_close(s.h);
	}
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.verbose)
		fprintf(stderr, "bulkserver[%d]: stopping, %lu transfers served, %lu failed\n", getpid(), s.served,
		        s.failed);
	return ret;
}
