/* test-backend: a scriptable backend for the integration tests.
 *
 *   test-backend -s SOCKET -S SERVICE -c CAPACITY [--name TAG] [--hold N]
 *                [--exit-after N] [--stall-after N] [--no-done] [--defer]
 *                [--reconnect] [--drain-on-sigterm] [--batch N] [--listen-mode]
 *                [--udp] [--sockopts] [--echo] [--no-read]
 *   test-backend --udp-once | --listen-once [--name TAG]
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
 *   --no-read         register, then never read the control socket (never
 *                     call handoff_accept(): deliveries pile up unread)
 *   --echo            append " req=LINE" to each answer, LINE being the
 *                     client's request line; a client that ends its side
 *                     (EOF) before sending one is answered too, with
 *                     "req=-" (so a connection served twice shows up as two
 *                     answer lines at its client)
 *   --defer           handoff_done() with HANDOFF_DEFER
 *   --reconnect       handoff_set_reconnect(h, 0): ride through handoffd restarts
 *   --batch N         handoff_set_batch(N): take up to N waiting connections
 *                     per acknowledgement
 *   --drain-on-sigterm  SIGTERM calls handoff_drain(); exit 0 once drained
 *                     and every connection is answered (plain SIGTERM: exit 0)
 *   --listen-mode     for each listening socket handoffd shares (kind
 *                     HANDOFF_LISTENER, mode = listen), accept connections on
 *                     it and serve them like delivered ones, with conn=0 in
 *                     the answer (the backend accepted it, not handoffd) and
 *                     no handoff_done() (--hold applies to them too)
 *   --udp             for each datagram socket handoffd shares (kind
 *                     HANDOFF_DATAGRAM), answer each datagram, one per wake-up
 *                     (so several backends on one socket all get some), with
 *                       TAG pid=PID got PAYLOAD
 *                     (PAYLOAD without a trailing newline) sent to its source
 *
 *   --sockopts        print the socket options of each connection and shared
 *                     socket received (a "sockopt" line, see below)
 *
 * Without --listen-mode / --udp a shared socket is kept open and not served.
 *
 * Inetd "wait" program modes (no registration; fd 0 is the socket handoffd
 * hands to the program; nothing is printed, as stdout is that socket):
 *   --udp-once        fd 0 is a datagram socket: answer one datagram as --udp
 *                     does (adding " blocking=1" or " blocking=0": the
 *                     socket's mode), then exit 0 (exit 1 if none came
 *                     within 10 s)
 *   --listen-once     fd 0 is a listening stream socket: accept one
 *                     connection, read its request line and answer it like a
 *                     delivered connection (conn=0, svc=$HANDOFF_SERVICE),
 *                     then exit 0
 * (either option serves whichever kind fd 0 turns out to be.)
 *
 * Events go to stdout, one line each, line-buffered, for the harness:
 *   registered ID CAPACITY | refused: code=N NAME: SENTENCE (exit 1)
 *   conn ID inflight=K [type=seqpacket] | held ID | answered ID |
 *   closed ID (client went away)
 *   socket listener|datagram type=stream|seqpacket|dgram local=ADDR
 *   lconn N inflight=K (accepted by the backend itself, --listen-mode)
 *   dgram from=ADDR len=N (answered, --udp) | dgram unnamed (no reply address)
 *   sockopt conn|lconn|listener|datagram nodelay=N keepalive=N rcvbuf=N
 *     sndbuf=N reuseport=N defer_accept=N device=NAME|- (--sockopts; the TCP
 *     ones are -1 on other sockets)
 *   stalled | draining | drained | lost: code=N NAME: SENTENCE (exit 4)
 * Exit codes: 0 done, 1 registration refused, 2 usage or connect error,
 * 3 internal error, 4 handoffd went away or revoked the registration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "handoff.h"

struct bconn {
	struct handoff_conn hc;
	bool own;          /* accepted by us on a shared listener: no handoff_done() */
	bool held;
	bool answered_req; /* request line seen */
	char buf[256];
	size_t len;
	char req[128];     /* --echo: the request line, "-" if none came */
};

static struct {
	handoff_t *h;
	const char *tag;
	long hold, exit_after, stall_after;
	bool no_done, defer, drain_on_term, reconnect;
	struct bconn **conns;
	size_t nconns, cap;
	long accepted, answered, held_total;
	bool stalled, draining, drained;
	bool listen_mode, udp, sockopts;
	bool echo, no_read;
	struct handoff_conn socks[16]; /* shared sockets handoffd sent (kind != CONNECTION) */
	size_t nsocks;
	long own_accepted;
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
	if (!B.no_done && !c->own) {
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
	int n = snprintf(line, sizeof(line), "%s pid=%d conn=%llu svc=%s peer=%s local=%s cred=%s%s%s\n", B.tag,
	                 (int)getpid(), (unsigned long long)c->hc.id, c->hc.service, peer, local, cred,
	                 B.echo ? " req=" : "", B.echo ? c->req : "");
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

static const char *type_name(int type)
{
	return type == SOCK_STREAM ? "stream" : type == SOCK_SEQPACKET ? "seqpacket" : type == SOCK_DGRAM ? "dgram" : "other";
}

/* --sockopts: one line with what the kernel says about fd. */
static void print_sockopts(const char *what, int fd)
{
	if (!B.sockopts)
		return;
	int nodelay = -1, keepalive = -1, rcvbuf = -1, sndbuf = -1, reuseport = -1, defer = -1;
	socklen_t l;
	l = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &l);
	l = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &l);
	char dev[64] = "";
	l = sizeof(dev) - 1;
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) < 0)
		l = 0;
	dev[l] = '\0';
	printf("sockopt %s nodelay=%d keepalive=%d rcvbuf=%d sndbuf=%d reuseport=%d defer_accept=%d device=%s\n", what,
	       nodelay, keepalive, rcvbuf, sndbuf, reuseport, defer, dev[0] ? dev : "-");
}

/* Take a connection into the table (delivered, or accepted by us when own). */
static void add_conn(const struct handoff_conn *hc, bool own)
{
	if (B.nconns == B.cap) {
		B.cap = B.cap ? B.cap * 2 : 16;
		B.conns = realloc(B.conns, B.cap * sizeof(*B.conns));
		if (!B.conns)
			die("realloc", -ENOMEM);
	}
	struct bconn *c = calloc(1, sizeof(*c));
	if (!c)
		die("calloc", -ENOMEM);
	c->hc = *hc;
	c->own = own;
	B.conns[B.nconns++] = c;
	/* The kernel's word on the socket type, not handoffd's. */
	int type = 0;
	socklen_t tl = sizeof(type);
	getsockopt(hc->fd, SOL_SOCKET, SO_TYPE, &type, &tl);
	char extra[80] = "";
	if (type != SOCK_STREAM)
		snprintf(extra, sizeof(extra), " type=%s", type_name(type));
	if (!own && hc->socktype != type)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " socktype-mismatch=%d", hc->socktype);
	if (own)
		printf("lconn %ld inflight=%zu%s\n", B.own_accepted, B.nconns, extra);
	else
		printf("conn %llu inflight=%zu%s\n", (unsigned long long)hc->id, B.nconns, extra);
	print_sockopts(own ? "lconn" : "conn", hc->fd);
}

/* A shared socket from handoffd: keep it, and serve it if asked to. */
static void add_sock(const struct handoff_conn *hc)
{
	char local[160];
	fmt_addr(&hc->local, hc->local_len, local, sizeof(local));
	printf("socket %s type=%s local=%s\n", hc->kind == HANDOFF_LISTENER ? "listener" : "datagram",
	       type_name(hc->socktype), local);
	print_sockopts(hc->kind == HANDOFF_LISTENER ? "listener" : "datagram", hc->fd);
	if (B.nsocks == sizeof(B.socks) / sizeof(B.socks[0])) {
		close(hc->fd);
		return;
	}
	/* Our copy shares handoffd's open file description, which is already
	 * non-blocking; say so anyway, as accept/recv below rely on it. */
	int fl = fcntl(hc->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(hc->fd, F_SETFL, fl | O_NONBLOCK);
	B.socks[B.nsocks++] = *hc;
}

static bool sock_served(const struct handoff_conn *s)
{
	return (s->kind == HANDOFF_LISTENER && B.listen_mode) || (s->kind == HANDOFF_DATAGRAM && B.udp);
}

/* --listen-mode: take what is waiting on shared listener s. */
static void listener_accept(const struct handoff_conn *s)
{
	for (int i = 0; i < 32 && want_more(); i++) {
		struct handoff_conn hc;
		memset(&hc, 0, sizeof(hc));
		hc.peer_len = sizeof(hc.peer);
		int fd = accept4(s->fd, (struct sockaddr *)&hc.peer, &hc.peer_len, SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: another backend was quicker, or nothing left */
		if (hc.peer_len <= (socklen_t)sizeof(sa_family_t))
			hc.peer_len = 0;
		hc.fd = fd;
		hc.id = 0;
		snprintf(hc.service, sizeof(hc.service), "%s", s->service);
		hc.local = s->local;
		hc.local_len = s->local_len;
		hc.kind = HANDOFF_CONNECTION;
		hc.socktype = s->socktype;
		if (s->local.ss_family == AF_UNIX) {
			struct ucred uc;
			socklen_t ul = sizeof(uc);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
				hc.has_cred = 1;
				hc.pid = uc.pid;
				hc.uid = uc.uid;
				hc.gid = uc.gid;
			}
		}
		B.own_accepted++;
		B.accepted++;
		add_conn(&hc, true);
	}
}

/* Answer one datagram waiting on fd with "TAG pid=PID got PAYLOAD" (and,
 * with tell_mode, " blocking=1" or " blocking=0": was fd in blocking mode).
 * Returns 1 if one was answered, 0 if none was waiting, -1 if it came
 * from an address we cannot answer. */
static int dgram_answer(int fd, bool quiet, bool tell_mode)
{
	char buf[2048], reply[2200];
	struct sockaddr_storage src;
	socklen_t slen = sizeof(src);
	ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&src, &slen);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (slen <= (socklen_t)sizeof(sa_family_t)) {
		if (!quiet)
			printf("dgram unnamed\n");
		return -1;
	}
	int len = snprintf(reply, sizeof(reply), "%s pid=%d got %s", B.tag, (int)getpid(), buf);
	if (tell_mode) {
		int fl = fcntl(fd, F_GETFL);
		len += snprintf(reply + len, sizeof(reply) - (size_t)len, " blocking=%d", fl >= 0 && !(fl & O_NONBLOCK));
	}
	sendto(fd, reply, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&src, slen);
	if (!quiet) {
		char from[160];
		fmt_addr(&src, slen, from, sizeof(from));
		printf("dgram from=%s len=%zd\n", from, n);
	}
	return 1;
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
		if (hc.kind != HANDOFF_CONNECTION) {
			add_sock(&hc);
			continue;
		}
		B.accepted++;
		add_conn(&hc, false);
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
	if (n == 0 && B.echo && !c->answered_req) {
		/* --echo: the client ended its side without a request line
		 * (another backend read it?): say so, visibly. */
		c->answered_req = true;
		snprintf(c->req, sizeof(c->req), "-");
		answer(i);
		return false;
	}
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
		if (!c->answered_req)
			snprintf(c->req, sizeof(c->req), "%.127s", c->buf[0] ? c->buf : "-");
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

/* --udp-once / --listen-once: an inetd "wait" program. fd 0 is the socket;
 * stdout is that socket too, so nothing is printed. */
static int serve_stdin_once(void)
{
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return 2;
	tl = sizeof(acc);
	getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &tl);
	for (int tries = 0; tries < 1000; tries++) {
		struct pollfd pf = {.fd = 0, .events = POLLIN};
		if (poll(&pf, 1, 10000) <= 0)
			return 1;
		if (type == SOCK_DGRAM) {
			if (dgram_answer(0, true, true) != 0)
				return 0;
			continue; /* nothing after all (or unnamed): wait again */
		}
		if (!acc)
			return 2;
		struct handoff_conn hc;
		memset(&hc, 0, sizeof(hc));
		hc.peer_len = sizeof(hc.peer);
		int fd = accept4(0, (struct sockaddr *)&hc.peer, &hc.peer_len, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (hc.peer_len <= (socklen_t)sizeof(sa_family_t))
			hc.peer_len = 0;
		/* The listening socket may be non-blocking; the connection not. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		hc.fd = fd;
		hc.local_len = sizeof(hc.local);
		getsockname(0, (struct sockaddr *)&hc.local, &hc.local_len);
		const char *svc = getenv("HANDOFF_SERVICE");
		snprintf(hc.service, sizeof(hc.service), "%s", svc && *svc ? svc : "-");
		/* Read the request line (up to 5 s), then answer. */
		char req[256];
		size_t len = 0;
		while (len < sizeof(req) - 1 && !memchr(req, '\n', len)) {
			struct pollfd cp = {.fd = fd, .events = POLLIN};
			if (poll(&cp, 1, 5000) <= 0)
				break;
			ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		char peer[160], local[160], line[600];
		fmt_addr(&hc.peer, hc.peer_len, peer, sizeof(peer));
		fmt_addr(&hc.local, hc.local_len, local, sizeof(local));
		int n = snprintf(line, sizeof(line), "%s pid=%d conn=0 svc=%s peer=%s local=%s cred=-\n", B.tag,
		                 (int)getpid(), hc.service, peer, local);
		send(fd, line, (size_t)n, MSG_NOSIGNAL);
		close(fd);
		return 0;
	}
	return 1;
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
		{"reconnect", no_argument, NULL, 'R'},
		{"drain-on-sigterm", no_argument, NULL, 'T'},
		{"batch", required_argument, NULL, 'B'},
		{"listen-mode", no_argument, NULL, 'L'},
		{"udp", no_argument, NULL, 'U'},
		{"sockopts", no_argument, NULL, 'P'},
		{"echo", no_argument, NULL, 'E'},
		{"no-read", no_argument, NULL, 'N'},
		{"udp-once", no_argument, NULL, 'O'},
		{"listen-once", no_argument, NULL, 'O'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *service = NULL;
	long capacity = 1, batch = 0;
	bool once = false;
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
		case 'R': B.reconnect = true; break;
		case 'T': B.drain_on_term = true; break;
		case 'B': batch = num(optarg); break;
		case 'L': B.listen_mode = true; break;
		case 'U': B.udp = true; break;
		case 'P': B.sockopts = true; break;
		case 'E': B.echo = true; break;
		case 'N': B.no_read = true; break;
		case 'O': once = true; break;
		default:
			fprintf(stderr, "usage: test-backend -s SOCKET -S SERVICE -c CAPACITY [options]\n");
			return 2;
		}
	}
	if (once && optind == argc)
		return serve_stdin_once();
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
	if (B.reconnect)
		handoff_set_reconnect(B.h, 0);
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
	if (B.no_read) {
		B.stalled = true;
		printf("stalled\n");
	}

	for (;;) {
		maybe_exit();
		/* [0] control, [1] signals, [2..2+nsocks) shared sockets, then connections. */
		size_t ns = B.nsocks;
		size_t n = B.nconns + 2 + ns;
		struct pollfd *pf = calloc(n, sizeof(*pf));
		if (!pf)
			die("calloc", -ENOMEM);
		pf[0].fd = want_more() ? handoff_fd(B.h) : -1;
		pf[0].events = POLLIN;
		pf[1].fd = sfd;
		pf[1].events = POLLIN;
		for (size_t i = 0; i < ns; i++) {
			bool serve = sock_served(&B.socks[i]) &&
			             (B.socks[i].kind == HANDOFF_DATAGRAM || want_more());
			pf[i + 2].fd = serve ? B.socks[i].fd : -1;
			pf[i + 2].events = POLLIN;
		}
		for (size_t i = 0; i < B.nconns; i++) {
			pf[i + 2 + ns].fd = B.conns[i]->hc.fd;
			pf[i + 2 + ns].events = POLLIN;
		}
		int r = poll(pf, (nfds_t)n, -1);
		if (r < 0 && errno != EINTR)
			die("poll", 0);
		if (r < 0) {
			free(pf);
			continue;
		}
		/* Connection fds first, from the end so slot moves do not skip one. */
		struct bconn **ready = calloc(n, sizeof(*ready));
		if (!ready)
			die("calloc", -ENOMEM);
		for (size_t i = 2 + ns; i < n; i++)
			ready[i] = pf[i].revents ? B.conns[i - 2 - ns] : NULL;
		for (size_t k = 2 + ns; k < n; k++) {
			if (!ready[k])
				continue;
			/* Find it again: earlier ones may have moved slots. */
			for (size_t i = 0; i < B.nconns; i++)
				if (B.conns[i] == ready[k]) {
					conn_input(i);
					break;
				}
		}
		free(ready);
		for (size_t i = 0; i < ns; i++) {
			if (pf[i + 2].fd < 0 || !pf[i + 2].revents)
				continue;
			if (B.socks[i].kind == HANDOFF_LISTENER)
				listener_accept(&B.socks[i]);
			else
				dgram_answer(B.socks[i].fd, false, false); /* one per wake-up: share with other backends */
		}
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
