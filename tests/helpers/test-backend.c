/* test-backend: a scriptable backend for the integration tests.
 *
 *   test-backend -s SOCKET -S SERVICE -c CAPACITY [--name TAG] [--hold N]
 *                [--exit-after N] [--stall-after N] [--no-done] [--defer]
 *                [--drain-on-sigterm] [--batch N]
 *
 * It registers, then serves each handed-over connection: reads the client's
 * request line and answers one line
 *
 *   TAG pid=PID conn=ID svc=SERVICE peer=ADDR local=ADDR cred=PID/UID/GID
 *
 * (cred=- when handoffd sent no credentials; peer=- when the peer address is
 * empty), closes the connection and calls handoff_done().
 *
 *   --hold N          the first N connections are held unanswered until the
 *                     client sends a line "release" (or SIGUSR1 releases all)
 *   --exit-after N    accept N connections, answer them, then exit 0 (what
 *                     handoffd delivers after that is never acknowledged)
 *   --stall-after N   accept N connections, answer them, then never call
 *                     handoff_accept() again (deliveries pile up unacked)
 *   --no-done         never call handoff_done()
 *   --defer           handoff_done() with HANDOFF_DEFER
 *   --batch N         handoff_set_batch(N): take up to N waiting connections
 *                     per acknowledgement
 *   --drain-on-sigterm  SIGTERM calls handoff_drain(); exit 0 once drained
 *                     and every connection is answered (plain SIGTERM: exit 0)
 *
 * Events go to stdout, one line each, line-buffered, for the harness:
 *   registered ID CAPACITY | refused: code=N NAME: SENTENCE (exit 1)
 *   conn ID inflight=K | held ID | answered ID | closed ID (client went away)
 *   stalled | draining | drained | lost: code=N NAME: SENTENCE (exit 4)
 * Exit codes: 0 done, 1 registration refused, 2 usage or connect error,
 * 3 internal error, 4 handoffd went away or revoked the registration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "handoff.h"

struct bconn {
	struct handoff_conn hc;
	bool held;
	bool answered_req; /* request line seen */
	char buf[256];
	size_t len;
};

static struct {
	handoff_t *h;
	const char *tag;
	long hold, exit_after, stall_after;
	bool no_done, defer, drain_on_term;
	struct bconn **conns;
	size_t nconns, cap;
	long accepted, answered, held_total;
	bool stalled, draining, drained;
} B = {.tag = "backend", .exit_after = -1, .stall_after = -1};

static void die(const char *what, int rc)
{
	printf("error: %s: %s\n", what, rc < 0 ? handoff_strerror(rc) : strerror(errno));
	exit(3);
}

static long num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "test-backend: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void fmt_addr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size)
{
	if (len == 0) {
		snprintf(buf, size, "-");
		return;
	}
	if (handoff_addr_format((const struct sockaddr *)ss, len, buf, size) < 0)
		snprintf(buf, size, "?");
}

static void finish_conn(size_t i)
{
	struct bconn *c = B.conns[i];
	close(c->hc.fd);
	if (!B.no_done) {
		/* Not fatal: if handoffd closed on us, the next handoff_accept()
		 * says why (its ERROR is still queued on the socket). */
		int rc = handoff_done(B.h, &c->hc, B.defer ? HANDOFF_DEFER : 0);
		if (rc < 0)
			printf("done-failed: code=%d %s\n", rc, handoff_strerror(rc));
	}
	free(c);
	B.conns[i] = B.conns[--B.nconns];
}

static void maybe_exit(void)
{
	if (B.exit_after >= 0 && B.answered >= B.exit_after && B.nconns == 0) {
		printf("exiting\n");
		exit(0);
	}
	if (B.drained && B.nconns == 0) {
		handoff_close(B.h);
		exit(0);
	}
}

/* Answer connection i, close it and free its slot. */
static void answer(size_t i)
{
	struct bconn *c = B.conns[i];
	char peer[160], local[160], cred[64], line[600];
	fmt_addr(&c->hc.peer, c->hc.peer_len, peer, sizeof(peer));
	fmt_addr(&c->hc.local, c->hc.local_len, local, sizeof(local));
	if (c->hc.has_cred)
		snprintf(cred, sizeof(cred), "%ld/%ld/%ld", (long)c->hc.pid, (long)c->hc.uid, (long)c->hc.gid);
	else
		snprintf(cred, sizeof(cred), "-");
	int n = snprintf(line, sizeof(line), "%s pid=%d conn=%llu svc=%s peer=%s local=%s cred=%s\n", B.tag,
	                 (int)getpid(), (unsigned long long)c->hc.id, c->hc.service, peer, local, cred);
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t w = send(c->hc.fd, line + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = {.fd = c->hc.fd, .events = POLLOUT};
			poll(&pf, 1, 1000);
		} else {
			break; /* the client went away */
		}
	}
	printf("answered %llu\n", (unsigned long long)c->hc.id);
	B.answered++;
	finish_conn(i);
}

static bool want_more(void)
{
	if (B.stalled || B.drained)
		return false;
	if (B.exit_after >= 0 && B.accepted >= B.exit_after)
		return false;
	return true;
}

static void accept_some(void)
{
	while (want_more()) {
		struct handoff_conn hc;
		int rc = handoff_accept(B.h, &hc, HANDOFF_NONBLOCK);
		if (rc == -EAGAIN)
			return;
		if (rc == HANDOFF_E_DRAINED) {
			printf("drained\n");
			B.drained = true;
			return;
		}
		if (rc < 0) {
			printf("lost: code=%d %s: %s\n", rc, handoff_strerror(rc), handoff_last_error(B.h));
			exit(4);
		}
		if (B.nconns == B.cap) {
			B.cap = B.cap ? B.cap * 2 : 16;
			B.conns = realloc(B.conns, B.cap * sizeof(*B.conns));
			if (!B.conns)
				die("realloc", -ENOMEM);
		}
		struct bconn *c = calloc(1, sizeof(*c));
		if (!c)
			die("calloc", -ENOMEM);
		c->hc = hc;
		B.conns[B.nconns++] = c;
		B.accepted++;
		printf("conn %llu inflight=%zu\n", (unsigned long long)hc.id, B.nconns);
		if (B.stall_after >= 0 && B.accepted >= B.stall_after) {
			B.stalled = true;
			printf("stalled\n");
		}
	}
}

/* Data on connection i: process complete lines. Returns false if the slot
 * was freed. */
static bool conn_input(size_t i)
{
	struct bconn *c = B.conns[i];
	ssize_t n = recv(c->hc.fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0 || c->len + (size_t)n + 1 >= sizeof(c->buf)) {
		printf("closed %llu\n", (unsigned long long)c->hc.id);
		finish_conn(i);
		return false;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	char *nl;
	while ((nl = strchr(c->buf, '\n'))) {
		*nl = '\0';
		bool release = strcmp(c->buf, "release") == 0 || strcmp(c->buf, "release\r") == 0;
		size_t rest = c->len - (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, rest + 1);
		c->len = rest;
		if (!c->answered_req) {
			c->answered_req = true;
			if (B.held_total < B.hold) {
				B.held_total++;
				c->held = true;
				printf("held %llu\n", (unsigned long long)c->hc.id);
				continue;
			}
			answer(i);
			return false;
		}
		if (c->held && release) {
			answer(i);
			return false;
		}
	}
	return true;
}

static void release_all(void)
{
	for (size_t i = 0; i < B.nconns;) {
		if (B.conns[i]->held)
			answer(i);
		else
			i++;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"service", required_argument, NULL, 'S'},
		{"capacity", required_argument, NULL, 'c'},
		{"name", required_argument, NULL, 'n'},
		{"hold", required_argument, NULL, 'H'},
		{"exit-after", required_argument, NULL, 'x'},
		{"stall-after", required_argument, NULL, 'z'},
		{"no-done", no_argument, NULL, 'D'},
		{"defer", no_argument, NULL, 'F'},
		{"drain-on-sigterm", no_argument, NULL, 'T'},
		{"batch", required_argument, NULL, 'B'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *service = NULL;
	long capacity = 1, batch = 0;
	int o;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((o = getopt_long(argc, argv, "s:S:c:", opts, NULL)) != -1) {
		switch (o) {
		case 's': sock = optarg; break;
		case 'S': service = optarg; break;
		case 'c': capacity = num(optarg); break;
		case 'n': B.tag = optarg; break;
		case 'H': B.hold = num(optarg); break;
		case 'x': B.exit_after = num(optarg); break;
		case 'z': B.stall_after = num(optarg); break;
		case 'D': B.no_done = true; break;
		case 'F': B.defer = true; break;
		case 'T': B.drain_on_term = true; break;
		case 'B': batch = num(optarg); break;
		default:
			fprintf(stderr, "usage: test-backend -s SOCKET -S SERVICE -c CAPACITY [options]\n");
			return 2;
		}
	}
	if (!service || optind != argc) {
		fprintf(stderr, "usage: test-backend -s SOCKET -S SERVICE -c CAPACITY [options]\n");
		return 2;
	}

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
		die("sigprocmask", 0);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die("signalfd", 0);

	int rc = handoff_connect(sock, 0, &B.h);
	if (rc < 0) {
		printf("error: connect: code=%d %s\n", rc, handoff_strerror(rc));
		return 2;
	}
	rc = handoff_register(B.h, service, (unsigned)capacity);
	if (rc < 0) {
		printf("refused: code=%d %s: %s\n", rc, handoff_strerror(rc), handoff_last_error(B.h));
		handoff_close(B.h);
		return 1;
	}
	if (batch > 0 && (rc = handoff_set_batch(B.h, (unsigned)batch)) < 0) {
		printf("error: set_batch: code=%d %s\n", rc, handoff_strerror(rc));
		return 2;
	}
	printf("registered %llu %u\n", (unsigned long long)handoff_backend_id(B.h), handoff_capacity(B.h));

	for (;;) {
		maybe_exit();
		size_t n = B.nconns + 2;
		struct pollfd *pf = calloc(n, sizeof(*pf));
		if (!pf)
			die("calloc", -ENOMEM);
		pf[0].fd = want_more() ? handoff_fd(B.h) : -1;
		pf[0].events = POLLIN;
		pf[1].fd = sfd;
		pf[1].events = POLLIN;
		for (size_t i = 0; i < B.nconns; i++) {
			pf[i + 2].fd = B.conns[i]->hc.fd;
			pf[i + 2].events = POLLIN;
		}
		int r = poll(pf, (nfds_t)n, -1);
		if (r < 0 && errno != EINTR)
			die("poll", 0);
		if (r < 0) {
			free(pf);
			continue;
		}
		/* Connection fds first, from the end so slot moves do not skip one. */
		uint64_t *ids = calloc(n, sizeof(*ids));
		if (!ids)
			die("calloc", -ENOMEM);
		for (size_t i = 2; i < n; i++)
			ids[i] = pf[i].revents ? B.conns[i - 2]->hc.id : 0;
		for (size_t k = 2; k < n; k++) {
			if (!ids[k])
				continue;
			for (size_t i = 0; i < B.nconns; i++)
				if (B.conns[i]->hc.id == ids[k]) {
					conn_input(i);
					break;
				}
		}
		free(ids);
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGUSR1) {
					release_all();
				} else if (B.drain_on_term && !B.draining) {
					B.draining = true;
					rc = handoff_drain(B.h);
					if (rc < 0) {
						printf("lost: code=%d %s: drain failed\n", rc, handoff_strerror(rc));
						exit(4);
					}
					printf("draining\n");
				} else if (!B.drain_on_term) {
					printf("terminated\n");
					exit(0);
				}
			}
		}
		/* With --defer, calling handoff_accept() again is what sends
		 * the deferred done records, as in a real accept loop. */
		if ((pf[0].fd >= 0 && pf[0].revents) || (B.defer && want_more()))
			accept_some();
		free(pf);
	}
}
