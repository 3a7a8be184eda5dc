/* hello-backend: the smallest useful handoffd backend.
 *
 * Start handoffd with a service (say "hello", listening on port 8080), then run
 *
 *     hello-backend -S hello        # answers HTTP: try curl http://127.0.0.1:8080/
 *     hello-backend -S echo -e      # echoes whatever a client sends
 *
 * Each instance registers with handoffd for one service and receives client
 * connections as ready, connected sockets. Run two instances for the same
 * service and handoffd spreads the connections between them; kill one and
 * the connections it had not yet received go to the other: none is lost.
 *
 * The shape of every libhandoff backend is here:
 *
 *     handoff_connect()     reach handoffd's control socket
 *     handoff_register()    ask for a service, with a capacity
 *     loop:
 *         handoff_accept()  get the next connection (an fd you now own)
 *         ...serve it, close it...
 *         handoff_done()    tell handoffd, which frees one unit of capacity
 *     handoff_drain()       on SIGTERM: "no more, please"; keep accepting
 *                           until handoff_accept() says HANDOFF_E_DRAINED
 *     handoff_close()
 *
 * For a service with shared sockets (mode = listen, or udp:// and
 * unix-dgram: listeners), handoff_accept() also returns each socket itself,
 * once: a listening socket (kind HANDOFF_LISTENER) that we accept() on, or a
 * datagram socket (HANDOFF_DATAGRAM) that we answer each datagram on. We
 * watch those with the control socket in one poll().
 *
 * This program serves one connection at a time, which keeps it short.
 * Connections handoffd sends while one is being served simply wait in the
 * control socket (up to the capacity) and are served in turn.
 *
 * Build outside the source tree with:
 *     cc -o hello-backend hello-backend.c $(pkg-config --cflags --libs libhandoff)
 */
#define _GNU_SOURCE /* ppoll() */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <handoff.h>

#define HEAD_MAX 8192       /* the most of an HTTP request head we read */
#define HTTP_TIMEOUT_S 5    /* how long a client may take to send its request */
#define ECHO_IDLE_S 60      /* how long an echo client may stay silent */
#define MAX_SHARED 16       /* shared sockets we watch */

/* Set by the signal handler, read by the main loop: the number of
 * SIGTERM/SIGINT received so far. */
static volatile sig_atomic_t signals_received;

static void on_signal(int sig)
{
	(void)sig;
	signals_received++;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: hello-backend [-s SOCKET] [-S SERVICE] [-c CAPACITY] [-e] [-h]\n"
	        "\n"
	        "An example handoffd backend: answers HTTP requests with a greeting\n"
	        "(or, with -e, echoes what clients send).\n"
	        "\n"
	        "  -s SOCKET    handoffd's control socket (default: $HANDOFF_SOCKET, else\n"
	        "               %s)\n"
	        "  -S SERVICE   the service to serve (default: hello)\n"
	        "  -c CAPACITY  connections in flight at once, 1..65535 (default: 16)\n"
	        "  -e           echo mode instead of HTTP\n"
	        "  -h           show this help\n",
	        HANDOFF_DEFAULT_SOCKET);
}

/* Messages go to stderr with our name and pid, so that several instances
 * running side by side (as in the demo) can be told apart. */
#define say(...)                                                       \
	do {                                                               \
		fprintf(stderr, "hello-backend[%ld]: ", (long)getpid());       \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
	} while (0)

/* A read or write on a client failed with errno: should we try again? Yes
 * after a signal (EINTR), unless it was the second one, which means "quit
 * now" and so cuts the current connection short. */
static bool retry(void)
{
	return errno == EINTR && signals_received < 2;
}

/* Write all of buf, retrying short writes and EINTR. MSG_NOSIGNAL: a client
 * that hung up gives EPIPE here instead of killing us with SIGPIPE. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (retry())
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Give a client at most `seconds` for each read and each write, so one slow
 * or stuck client cannot hold this one-at-a-time server forever. */
static void set_timeouts(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Describe the client: its address as handoffd saw it at accept time, plus
 * its process credentials when it came through a Unix socket. */
static void describe_peer(const struct handoff_conn *conn, char *buf, size_t size)
{
	char addr[128];

	if (conn->peer_len == 0 ||
	    handoff_addr_format((const struct sockaddr *)&conn->peer, conn->peer_len, addr, sizeof(addr)) < 0)
		snprintf(addr, sizeof(addr), "an unnamed socket");
	if (conn->has_cred)
		snprintf(buf, size, "%s (pid %ld, uid %lu)", addr, (long)conn->pid, (unsigned long)conn->uid);
	else
		snprintf(buf, size, "%s", addr);
}

/* HTTP mode: read the request head, answer with a greeting, done. We do not
 * parse the request at all: every path gets the same answer. */
static void serve_http(const struct handoff_conn *conn)
{
	char head[HEAD_MAX];
	size_t got = 0;
	bool complete = false;

	set_timeouts(conn->fd, HTTP_TIMEOUT_S);

	/* Read until the blank line that ends the head, EOF, the size limit,
	 * or the timeout, whichever comes first. */
	while (!complete && got < sizeof(head) - 1) {
		ssize_t n = recv(conn->fd, head + got, sizeof(head) - 1 - got, 0);
		if (n < 0 && retry())
			continue;
		if (n <= 0)
			break; /* EOF, timeout (EAGAIN) or error */
		got += (size_t)n;
		head[got] = '\0';
		complete = strstr(head, "\r\n\r\n") || strstr(head, "\n\n");
	}

	const char *status = "200 OK";
	char body[512], who[256];
	if (!complete) {
		if (got < sizeof(head) - 1)
			return; /* the client went away or stalled: nothing to answer */
		status = "431 Request Header Fields Too Large";
		snprintf(body, sizeof(body), "Request head too large (more than %d bytes).\n", HEAD_MAX - 1);
	} else {
		describe_peer(conn, who, sizeof(who));
		snprintf(body, sizeof(body),
		         "Hello from backend pid %ld via handoffd: connection %llu on service %s from %s\n",
		         (long)getpid(), (unsigned long long)conn->id, conn->service, who);
	}

	char reply[1024];
	int len = snprintf(reply, sizeof(reply),
	                   "HTTP/1.1 %s\r\n"
	                   "Content-Type: text/plain; charset=utf-8\r\n"
	                   "Content-Length: %zu\r\n"
	                   "Connection: close\r\n"
	                   "\r\n"
	                   "%s",
	                   status, strlen(body), body);
	if (len > 0 && (size_t)len < sizeof(reply))
		(void)send_all(conn->fd, reply, (size_t)len); /* a client that left is not our problem */
}

/* Echo mode: send every byte back until the client closes its side. */
static void serve_echo(const struct handoff_conn *conn)
{
	char buf[16384];

	set_timeouts(conn->fd, ECHO_IDLE_S);
	for (;;) {
		ssize_t n = recv(conn->fd, buf, sizeof(buf), 0);
		if (n < 0 && retry())
			continue;
		if (n <= 0)
			return; /* EOF, idle timeout or error */
		if (send_all(conn->fd, buf, (size_t)n) < 0)
			return;
	}
}

/* A datagram socket is readable: answer each waiting datagram (echo: the
 * same bytes; HTTP mode: a greeting line). Never blocks. */
static void serve_datagrams(int fd, bool echo)
{
	for (int i = 0; i < 64; i++) {
		char buf[2048];
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return; /* EAGAIN: done for now */
		if (flen <= sizeof(sa_family_t))
			continue; /* an unbound Unix client: nowhere to answer */
		if (!echo)
			n = snprintf(buf, sizeof(buf), "Hello from backend pid %ld via a shared datagram socket\n",
			             (long)getpid());
		(void)sendto(fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
	}
}

/* Parse the -c argument: a whole number in 1..65535. */
static bool parse_capacity(const char *s, unsigned *ret)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return false;
	*ret = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	const char *socket_path = NULL; /* NULL: $HANDOFF_SOCKET or the default */
	const char *service = "hello";
	unsigned capacity = 16;
	bool echo = false;
	int opt, r;

	while ((opt = getopt(argc, argv, "s:S:c:eh")) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'S':
			service = optarg;
			break;
		case 'c':
			if (!parse_capacity(optarg, &capacity)) {
				fprintf(stderr, "hello-backend: bad capacity '%s' (expected 1..65535)\n", optarg);
				return 2;
			}
			break;
		case 'e':
			echo = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hello-backend: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* A client that hangs up mid-reply must not kill the whole backend. */
	struct sigaction sa = {.sa_handler = SIG_IGN};
	sigaction(SIGPIPE, &sa, NULL);

	/* 1. Connect to handoffd. Until we are registered, Ctrl-C simply kills
	 *    us: nothing can be lost yet. */
	handoff_t *h = NULL;
	r = handoff_connect(socket_path, 0, &h);
	if (r < 0) {
		const char *where = socket_path ? socket_path : getenv("HANDOFF_SOCKET");
		say("cannot connect to handoffd at %s: %s", where && *where ? where : HANDOFF_DEFAULT_SOCKET,
		    handoff_strerror(r));
		return 1;
	}

	/* If handoffd restarts or is upgraded, connect and register again by
	 * ourselves (the library does it inside handoff_accept()). */
	handoff_set_reconnect(h, 10000); /* for at most 10 s */

	/* 2. Register for the service. handoffd checks who we are (from the
	 *    kernel, not from anything we say) against the service's
	 *    allow_users/allow_groups, and may grant less capacity than asked. */
	r = handoff_register(h, service, capacity);
	if (r < 0) {
		const char *why = handoff_last_error(h);
		say("handoffd refused to register us for '%s': %s", service, *why ? why : handoff_strerror(r));
		handoff_close(h);
		return 1;
	}
	say("serving '%s' in %s mode as backend %llu (capacity %u)", service, echo ? "echo" : "HTTP",
	    (unsigned long long)handoff_backend_id(h), handoff_capacity(h));

	/* 3. From now on SIGTERM/SIGINT must not kill us mid-connection: the
	 *    first starts a graceful drain, a second one quits at once. The
	 *    handler only counts; the loop below acts. The signals are blocked
	 *    from the moment we check the count until ppoll() unblocks them
	 *    atomically while it waits, so none can slip in between "check"
	 *    and "wait" and leave us asleep with a signal unseen. */
	sigset_t term, waitmask;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigprocmask(SIG_BLOCK, &term, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sa.sa_handler = on_signal; /* no SA_RESTART: ppoll must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	bool draining = false;
	int exit_code = 0;
	struct handoff_conn shared[MAX_SHARED];
	int nshared = 0;
	for (;;) {
		if (signals_received >= 2) {
			say("second signal: exiting without waiting for the drain");
			exit_code = 1;
			break;
		}
		if (signals_received == 1 && !draining) {
			/* Graceful shutdown: handoffd sends nothing new, but whatever
			 * is already on its way still arrives and is served below. */
			say("draining: serving what is on its way, then exiting (signal again to quit now)");
			/* If this fails, the control connection is broken and the
			 * handoff_accept() below says how. */
			(void)handoff_drain(h);
			draining = true;
		}

		/* Wait for handoffd to send something. handoff_accept() on its own
		 * would block just as well, but it retries EINTR (as the library
		 * promises), so a blocking call would not notice SIGTERM until
		 * the next connection arrived. ppoll() does notice it. */
		struct pollfd pfd[1 + MAX_SHARED];
		pfd[0] = (struct pollfd){.fd = handoff_fd(h), .events = POLLIN};
		for (int i = 0; i < nshared; i++)
			pfd[1 + i] = (struct pollfd){.fd = shared[i].fd, .events = POLLIN};
		if (ppoll(pfd, (nfds_t)(1 + nshared), NULL, &waitmask) < 0) {
			if (errno == EINTR)
				continue; /* a signal: the top of the loop handles it */
			say("ppoll: %s", strerror(errno));
			exit_code = 1;
			break;
		}
		/* Shared sockets first: we accept or read them ourselves. */
		for (int i = 0; i < nshared; i++) {
			if (!(pfd[1 + i].revents & POLLIN))
				continue;
			if (shared[i].kind == HANDOFF_DATAGRAM) {
				serve_datagrams(shared[i].fd, echo);
				continue;
			}
			struct handoff_conn c = shared[i];
			c.peer_len = sizeof(c.peer);
			c.fd = accept4(shared[i].fd, (struct sockaddr *)&c.peer, &c.peer_len, SOCK_CLOEXEC);
			if (c.fd < 0)
				continue; /* another backend took it, or the client left */
			c.kind = HANDOFF_CONNECTION;
			c.id = 0;
			sigprocmask(SIG_SETMASK, &waitmask, NULL);
			if (echo)
				serve_echo(&c);
			else
				serve_http(&c);
			sigprocmask(SIG_BLOCK, &term, NULL);
			close(c.fd); /* no handoff_done(): handoffd never saw this one */
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;

		/* Something is there: take it without blocking. It may be a
		 * connection, the end of a drain, or word that handoffd left. */
		struct handoff_conn conn;
		r = handoff_accept(h, &conn, HANDOFF_NONBLOCK);
		if (r == -EAGAIN || r == -EINTR)
			continue; /* nothing for us after all; wait again */
		if (r == HANDOFF_E_DRAINED) {
			say("drained: every connection sent to us was served; exiting");
			break;
		}
		if (r == HANDOFF_E_CLOSED || r == HANDOFF_E_SHUTDOWN) {
			say("handoffd went away (%s); exiting", handoff_strerror(r));
			break;
		}
		if (r < 0) {
			const char *why = handoff_last_error(h);
			say("cannot receive a connection: %s", *why ? why : handoff_strerror(r));
			exit_code = 1;
			break;
		}

		if (conn.kind != HANDOFF_CONNECTION) {
			/* A shared socket: ours to watch from now on. */
			if (nshared == MAX_SHARED) {
				say("too many shared sockets; closing one");
				close(conn.fd);
				continue;
			}
			char where[128];
			if (handoff_addr_format((const struct sockaddr *)&conn.local, conn.local_len, where,
			                        sizeof(where)) < 0)
				snprintf(where, sizeof(where), "?");
			say("got the %s socket %s of '%s'", conn.kind == HANDOFF_LISTENER ? "listening" : "datagram",
			    where, conn.service);
			shared[nshared++] = conn;
			continue;
		}

		/* 4. The connection is ours now: handoffd already has our
		 *    acknowledgement and has let go of its copy. Serve it, close
		 *    it, and report it done so handoffd can send the next one.
		 *    Signals are let in while we serve, so a second one can cut
		 *    a long connection short (its reads fail with EINTR). */
		sigprocmask(SIG_SETMASK, &waitmask, NULL);
		if (echo)
			serve_echo(&conn);
		else
			serve_http(&conn);
		sigprocmask(SIG_BLOCK, &term, NULL);
		close(conn.fd);
		r = handoff_done(h, &conn, 0);
		if (r == HANDOFF_E_STATE) {
			say("connection %llu reported done twice: %s", (unsigned long long)conn.id,
			    handoff_strerror(r));
			exit_code = 1;
			break;
		}
		/* Any other failure means the control connection broke; the
		 * next handoff_accept() says how. */
	}

	/* 5. Closing the handle tells handoffd we are gone; anything it had
	 *    sent and we had not acknowledged goes to another backend. */
	for (int i = 0; i < nshared; i++)
		close(shared[i].fd);
	handoff_close(h);
	return exit_code;
}
