/* bulkclient: the client side of the bulk-transfer benchmark
 * (tests/bench/bulk; the server and its protocol are in bulkserver.c).
 *
 *   bulkclient HOST:PORT [--connections N] [--bytes SIZE] [--direction down|up]
 *                        [--timeout S]
 *
 * Opens N connections at once (default 4) and moves SIZE bytes over each
 * (default 512M; K, M and G suffixes are powers of 1024): "down" sends
 * "GET SIZE\n" and reads SIZE bytes and the server's close; "up" sends
 * "PUT SIZE\n" and SIZE bytes and reads "OK SIZE\n" and the close. One
 * thread, one poll() loop, non-blocking sockets.
 *
 * The clock runs from the first connect() to the end of the last connection.
 * On success it prints one line to standard output,
 *
 *   bytes=B seconds=S mb_per_s=R connections=N direction=D
 *
 * (R in 10^6 bytes per second) and exits 0. A short transfer, an
 * unexpected answer, a connection error or the timeout (default 300 s)
 * prints why on standard error and exits 1; a usage error exits 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define IO_CHUNK (1024 * 1024)

enum state { CS_CONNECTING, CS_REQUEST, CS_BODY, CS_ANSWER, CS_DONE };

struct cconn {
	int fd;
	enum state state;
	char req[64];
	size_t req_len, req_off;
	uint64_t left;       /* body bytes still to receive (down) or send (up) */
	char ans[64];        /* "OK n\n" (up) */
	size_t ans_len;
};

static char io_buf[IO_CHUNK];

static void usage(FILE *f)
{
	fprintf(f, "usage: bulkclient HOST:PORT [--connections N] [--bytes SIZE] [--direction down|up] "
	           "[--timeout S]\n");
}

/* "123", "64K", "512M", "2G" (powers of 1024). */
static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return -EINVAL;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*ret = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One step for one connection; returns 1 when done, 0 to go on, -1 (with a
 * message) on failure. */
static int step(struct cconn *c, bool down, uint64_t size, unsigned idx)
{
	for (;;) {
		ssize_t n = 0;
		switch (c->state) {
		case CS_CONNECTING: {
			int err = 0;
			socklen_t len = sizeof(err);
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err) {
				fprintf(stderr, "bulkclient: connection %u: connect: %s\n", idx, strerror(err));
				return -1;
			}
			c->state = CS_REQUEST;
			continue;
		}
		case CS_REQUEST:
			if (c->req_off == c->req_len) {
				c->state = (down || c->left) ? CS_BODY : CS_ANSWER;
				continue;
			}
			n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
			if (n > 0)
				c->req_off += (size_t)n;
			break;
		case CS_BODY:
			if (down) {
				/* Read one byte more than expected to see an overlong answer. */
				size_t want = c->left < IO_CHUNK ? (size_t)c->left + 1 : IO_CHUNK;
				n = recv(c->fd, io_buf, want, 0);
				if (n == 0) {
					if (c->left) {
						fprintf(stderr, "bulkclient: connection %u: server closed with %llu "
						        "of %llu bytes missing\n", idx, (unsigned long long)c->left,
						        (unsigned long long)size);
						return -1;
					}
					c->state = CS_DONE;
					return 1;
				}
				if (n > 0) {
					if ((uint64_t)n > c->left) {
						fprintf(stderr, "bulkclient: connection %u: more than %llu bytes\n", idx,
						        (unsigned long long)size);
						return -1;
					}
					c->left -= (uint64_t)n;
				}
			} else {
				if (c->left == 0) {
					c->state = CS_ANSWER;
					continue;
				}
				n = send(c->fd, io_buf, c->left < IO_CHUNK ? (size_t)c->left : IO_CHUNK, MSG_NOSIGNAL);
				if (n > 0)
					c->left -= (uint64_t)n;
			}
			break;
		case CS_ANSWER:
			n = recv(c->fd, c->ans + c->ans_len, sizeof(c->ans) - 1 - c->ans_len, 0);
			if (n == 0) {
				char want[64];
				c->ans[c->ans_len] = '\0';
				snprintf(want, sizeof(want), "OK %llu\n", (unsigned long long)size);
				if (strcmp(c->ans, want) != 0) {
					fprintf(stderr, "bulkclient: connection %u: answer '%.20s' instead of 'OK %llu'\n",
					        idx, c->ans, (unsigned long long)size);
					return -1;
				}
				c->state = CS_DONE;
				return 1;
			}
			if (n > 0) {
				c->ans_len += (size_t)n;
				if (c->ans_len == sizeof(c->ans) - 1) {
					fprintf(stderr, "bulkclient: connection %u: answer too long\n", idx);
					return -1;
				}
			}
			break;
		case CS_DONE:
			return 1;
		}
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		fprintf(stderr, "bulkclient: connection %u: %s\n", idx, n < 0 ? strerror(errno) : "unexpected end");
		return -1;
	}
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	unsigned long nconns = 4, timeout_s = 300;
	uint64_t size = 512ull << 20;
	bool down = true;
	struct cconn conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS];
	unsigned map[MAX_CONNS];
	unsigned opened = 0;
	int ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--connections") == 0 && v) {
			if (parse_uint(v, 1, MAX_CONNS, &nconns) < 0) {
				fprintf(stderr, "bulkclient: --connections: '%s' is not 1..%d\n", v, MAX_CONNS);
				return 2;
			}
		} else if (strcmp(a, "--bytes") == 0 && v) {
			if (parse_size(v, &size) < 0) {
				fprintf(stderr, "bulkclient: --bytes: '%s' is not a size (N, NK, NM, NG)\n", v);
				return 2;
			}
		} else if (strcmp(a, "--timeout") == 0 && v) {
			if (parse_uint(v, 1, 86400, &timeout_s) < 0) {
				fprintf(stderr, "bulkclient: --timeout: '%s' is not 1..86400\n", v);
				return 2;
			}
		} else if (strcmp(a, "--direction") == 0 && v) {
			if (strcmp(v, "down") == 0)
				down = true;
			else if (strcmp(v, "up") == 0)
				down = false;
			else {
				fprintf(stderr, "bulkclient: --direction: '%s' is not down or up\n", v);
				return 2;
			}
		} else if (a[0] != '-' && !target) {
			target = a;
			continue;
		} else {
			fprintf(stderr, "bulkclient: bad or incomplete argument '%s'\n", a);
			usage(stderr);
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
		fprintf(stderr, "bulkclient: '%s' is not HOST:PORT\n", target);
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
		fprintf(stderr, "bulkclient: '%s' is not a numeric HOST:PORT\n", target);
		return 2;
	}
	memset(io_buf, 'y', sizeof(io_buf));

	double t0 = now(), deadline = t0 + (double)timeout_s;
	for (unsigned i = 0; i < nconns; i++) {
		struct cconn *c = &conns[i];
		*c = (struct cconn){ .fd = -1, .left = size };
		c->req_len = (size_t)snprintf(c->req, sizeof(c->req), "%s %llu\n", down ? "GET" : "PUT",
		                              (unsigned long long)size);
		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (c->fd < 0) {
			fprintf(stderr, "bulkclient: socket: %s\n", strerror(errno));
			goto out;
		}
		opened++;
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			fprintf(stderr, "bulkclient: connection %u: connect to %s: %s\n", i, target, strerror(errno));
			goto out;
		}
		c->state = CS_CONNECTING;
	}

	unsigned done = 0;
	while (done < nconns) {
		nfds_t n = 0;
		for (unsigned i = 0; i < nconns; i++) {
			struct cconn *c = &conns[i];
			if (c->state == CS_DONE)
				continue;
			short ev = POLLIN;
			if (c->state == CS_CONNECTING || c->state == CS_REQUEST || (c->state == CS_BODY && !down))
				ev = POLLOUT;
			pfd[n] = (struct pollfd){ .fd = c->fd, .events = ev };
			map[n++] = i;
		}
		double left = deadline - now();
		if (left <= 0) {
			fprintf(stderr, "bulkclient: timeout after %lu s with %u of %lu connections done\n", timeout_s,
			        done, nconns);
			goto out;
		}
		int k = poll(pfd, n, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "bulkclient: poll: %s\n", strerror(errno));
			goto out;
		}
		for (nfds_t j = 0; j < n; j++) {
			if (!pfd[j].revents)
				continue;
			int r = step(&conns[map[j]], down, size, map[j]);
			if (r < 0)
				goto out;
			if (r > 0) {
				close(conns[map[j]].fd);
				conns[map[j]].fd = -1;
				done++;
			}
		}
	}
	double secs = now() - t0;
	double total = (double)size * (double)nconns;
	printf("bytes=%.0f seconds=%.6f mb_per_s=%.1f connections=%lu direction=%s\n", total, secs,
	       secs > 0 ? total / secs / 1e6 : 0.0, nconns, down ? "down" : "up");
	ret = 0;
out:
	for (unsigned i = 0; i < opened; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	freeaddrinfo(ai);
	return ret;
}
