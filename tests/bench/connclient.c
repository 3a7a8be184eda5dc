/* connclient: an exact number of short HTTP connections, for the handoffd
 * benchmark (tests/bench/memory).
 *
 *   connclient HOST:PORT [--count N] [--concurrency C] [--timeout S]
 *
 * Makes N connections (default 100000), at most C at once (default 8): each
 * connects, sends "GET / HTTP/1.1" with "Connection: close", reads the answer
 * until the server closes, checks that it starts with "HTTP/1.1 200" and
 * closes. One thread, one poll() loop, non-blocking sockets. Unlike wrk it
 * stops after exactly N connections, so that per-connection figures (system
 * calls, memory) divide by a known count.
 *
 * Prints one line to standard output,
 *
 *   connections=N ok=K errors=E seconds=S conn_per_s=R
 *
 * and exits 0 when all N were answered with 200, 1 when any failed (or the
 * overall timeout, default 900 s, ran out), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONCURRENCY 1024
#define ANSWER_MAX 512

enum slot_state { SL_IDLE, SL_CONNECTING, SL_READING };

struct slot {
	int fd;
	enum slot_state state;
	char buf[ANSWER_MAX];
	size_t len;
};

static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: connclient HOST:PORT [--count N] [--concurrency C] [--timeout S]\n");
}

/* Open the next connection in slot s. Returns 0, or -1 when socket() or
 * connect() failed at once (counted as an error by the caller). */
static int slot_open(struct slot *s, const struct addrinfo *ai)
{
	s->len = 0;
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->state = SL_CONNECTING;
	return 0;
}

/* Progress for slot s. Returns 1 when the connection ended well, -1 when it
 * failed, 0 to go on. */
static int slot_step(struct slot *s)
{
	if (s->state == SL_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
			return -1;
		/* The request is small: one send of it fits in any socket buffer. */
		ssize_t n = send(s->fd, request, sizeof(request) - 1, MSG_NOSIGNAL);
		if (n != (ssize_t)sizeof(request) - 1)
			return -1;
		s->state = SL_READING;
		return 0;
	}
	for (;;) {
		char discard[ANSWER_MAX];
		char *into = s->len < sizeof(s->buf) ? s->buf + s->len : discard;
		size_t room = s->len < sizeof(s->buf) ? sizeof(s->buf) - s->len : sizeof(discard);
		ssize_t n = recv(s->fd, into, room, 0);
		if (n > 0) {
			if (into == s->buf + s->len)
				s->len += (size_t)n;
			continue;
		}
		if (n == 0)
			return s->len >= 12 && memcmp(s->buf, "HTTP/1.1 200", 12) == 0 ? 1 : -1;
		if (errno == EINTR)
			continue;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	}
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	unsigned long count = 100000, conc = 8, timeout_s = 900;
	static struct slot slots[MAX_CONCURRENCY];
	static struct pollfd pfd[MAX_CONCURRENCY];
	static unsigned map[MAX_CONCURRENCY];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long *dst = NULL, lo = 1, hi = 0;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--count") == 0 && v) {
			dst = &count, hi = 1000000000000ul;
		} else if (strcmp(a, "--concurrency") == 0 && v) {
			dst = &conc, hi = MAX_CONCURRENCY;
		} else if (strcmp(a, "--timeout") == 0 && v) {
			dst = &timeout_s, hi = 86400;
		} else if (a[0] != '-' && !target) {
			target = a;
			continue;
		} else {
			fprintf(stderr, "connclient: bad or incomplete argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
		if (parse_ulong(v, lo, hi, dst) < 0) {
			fprintf(stderr, "connclient: %s: '%s' is not a number %lu..%lu\n", a, v, lo, hi);
			return 2;
		}
		i++;
	}
	if (!target) {
		usage(stderr);
		return 2;
	}
	char host[128];
	const char *colon = strrchr(target, ':');
	if (!colon || colon == target || (size_t)(colon - target) >= sizeof(host)) {
		fprintf(stderr, "connclient: '%s' is not HOST:PORT\n", target);
		return 2;
	}
	const char *hp = target;
	size_t hlen = (size_t)(colon - target);
	if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') {
		hp++;
		hlen -= 2;
	}
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		fprintf(stderr, "connclient: '%s' is not a numeric HOST:PORT\n", target);
		return 2;
	}
	if (conc > count)
		conc = count;

	unsigned long started = 0, ok = 0, errors = 0;
	double t0 = now(), deadline = t0 + (double)timeout_s;
	bool timed_out = false;
	for (unsigned long i = 0; i < conc; i++)
		slots[i] = (struct slot){ .fd = -1, .state = SL_IDLE };

	while (ok + errors < count) {
		/* Fill idle slots while connections are left to start. */
		for (unsigned long i = 0; i < conc && started < count; i++) {
			if (slots[i].state != SL_IDLE)
				continue;
			started++;
			if (slot_open(&slots[i], ai) < 0)
				errors++;
		}
		nfds_t n = 0;
		for (unsigned long i = 0; i < conc; i++) {
			if (slots[i].state == SL_IDLE)
				continue;
			pfd[n] = (struct pollfd){ .fd = slots[i].fd,
			                          .events = slots[i].state == SL_CONNECTING ? POLLOUT : POLLIN };
			map[n++] = (unsigned)i;
		}
		if (n == 0)
			continue; /* every open failed at once; the loop starts more */
		double left = deadline - now();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int k = poll(pfd, n, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "connclient: poll: %s\n", strerror(errno));
			timed_out = true;
			break;
		}
		for (nfds_t j = 0; j < n; j++) {
			if (!pfd[j].revents)
				continue;
			struct slot *s = &slots[map[j]];
			int r = slot_step(s);
			if (r == 0)
				continue;
			if (r > 0)
				ok++;
			else
				errors++;
			close(s->fd);
			s->fd = -1;
			s->state = SL_IDLE;
		}
	}
	double secs = now() - t0;
	for (unsigned long i = 0; i < conc; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	freeaddrinfo(ai);
	if (timed_out)
		fprintf(stderr, "connclient: stopped after %.0f s with %lu of %lu connections done\n", secs,
		        ok + errors, count);
	printf("connections=%lu ok=%lu errors=%lu seconds=%.3f conn_per_s=%.0f\n", ok + errors, ok, errors, secs,
	       secs > 0 ? (double)(ok + errors) / secs : 0.0);
	return (ok == count && !timed_out) ? 0 : 1;
}
