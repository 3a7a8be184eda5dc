/* libhandoff: the backend side of the control protocol. libc only; never
 * logs (errors are returned and described by handoff_last_error()). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "handoff.h"
#include "proto.h"

struct handoff {
	int fd;            /* control socket, non-blocking, close-on-exec */
	bool nonblock;     /* default for calls */
	bool registered;
	bool drain_sent;
	bool drained;      /* DRAINED received */
	int dead;          /* sticky error once the daemon closed or refused us */
	unsigned capacity;
	uint64_t backend_id;
	unsigned nshared;  /* shared sockets announced by REGISTERED */
	/* Reconnecting (handoff_set_reconnect). */
	struct sockaddr_un addr;
	socklen_t addr_len;
	char service[PROTO_MAX_NAME + 1];
	unsigned want_capacity;
	bool reconnect;
	unsigned reconnect_max_ms; /* 0 = keep trying */
	bool reconnecting;         /* h->fd is a timerfd until the next attempt */
	unsigned backoff_ms;
	uint64_t lost_ms;          /* when the connection was lost */
	uint32_t gen;              /* connection generation, in struct handoff_conn */
	struct { dev_t dev; ino_t ino; } seen[64]; /* shared sockets already returned */
	unsigned nseen;
	uint32_t seq;
	uint32_t unacked;  /* DELIVERs received, not yet acknowledged */
	uint32_t done;     /* connections done, not yet reported */
	uint32_t open;     /* acknowledged and not yet done */
	uint64_t done_ids[PROTO_MAX_DONE_IDS]; /* ids of the done ones (max_per_source) */
	unsigned ndone_ids;
	char err[512];
	/* Received and acknowledged, not yet returned (handoff_set_batch). */
	struct handoff_conn *q;
	unsigned qcap, qhead, qlen;
	int after_q;       /* what to return once q is empty (DRAINED, an error), or 0 */
};

static void set_err(handoff_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(handoff_t *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
}

/* Wait until fd is ready for events; EINTR-safe. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int rc = poll(&p, 1, -1);
		if (rc >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Send one message, waiting for room if the socket is full. */
static int send_wait(handoff_t *h, struct proto_buf *b)
{
	int len = proto_finish(b, 0);
	if (len < 0)
		return len;
	for (;;) {
		int rc = proto_send(h->fd, b->data, (size_t)len, NULL, 0, false);
		if (rc != -EAGAIN)
			return rc;
		rc = wait_fd(h->fd, POLLOUT);
		if (rc < 0)
			return rc;
	}
}

static int map_code(uint32_t code)
{
	if (code >= 1 && code <= PE_MAX)
		return -5000 - (int)code;
	return HANDOFF_E_PROTOCOL;
}

/* Turn an ERROR message into a return code and a sentence. */
static int take_error(handoff_t *h, const struct proto_msg *m)
{
	char text[PROTO_MAX_TEXT + 1], svc[PROTO_MAX_NAME + 1];
	uint32_t code = proto_u32(m, PA_ERRCODE);
	proto_str(m, PA_TEXT, text, sizeof(text));
	proto_str(m, PA_SERVICE, svc, sizeof(svc));
	if (code == PE_NOT_ALLOWED && proto_has(m, PA_UID)) {
		uid_t uid = proto_u32(m, PA_UID);
		struct passwd pw, *res = NULL;
		char pwbuf[1024];
		char name[80] = "";
		if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
			snprintf(name, sizeof(name), " (%s)", res->pw_name);
		set_err(h, "uid %u%s is not allowed to serve '%s'%s", (unsigned)uid, name, svc,
		        strstr(text, "reload") ? " (policy changed by a reload)" : "");
	} else {
		set_err(h, "%s", text[0] ? text : handoff_strerror(map_code(code)));
	}
	return map_code(code);
}

int handoff_connect(const char *path, int flags, handoff_t **ret)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	socklen_t len;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!path)
		path = secure_getenv("HANDOFF_SOCKET");
	if (!path || !*path)
		path = HANDOFF_DEFAULT_SOCKET;
	int rc = addr_unix(path, &un, &len);
	if (rc < 0)
		return rc;

	handoff_t *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->nonblock = (flags & HANDOFF_NONBLOCK) != 0;
	h->addr = un;
	h->addr_len = len;
	/* Blocking connect unless asked not to: a full backlog then waits
	 * instead of failing. The socket is non-blocking afterwards; blocking
	 * calls wait with poll(). */
	h->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (h->nonblock ? SOCK_NONBLOCK : 0), 0);
	if (h->fd < 0) {
		int e = -errno;
		free(h);
		return e;
	}
	do
		rc = connect(h->fd, (struct sockaddr *)&un, len);
	while (rc < 0 && errno == EINTR && !h->nonblock);
	if (rc < 0 || (!h->nonblock && fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK) < 0)) {
		int e = -errno;
		close(h->fd);
		free(h);
		return e;
	}
	*ret = h;
	return 0;
}

int handoff_verify_daemon(handoff_t *h, uid_t uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (!h)
		return -EINVAL;
	if (getsockopt(h->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (uc.uid != uid) {
		set_err(h, "control socket peer runs as uid %u, expected uid %u", (unsigned)uc.uid, (unsigned)uid);
		return HANDOFF_E_DAEMON_UID;
	}
	return 0;
}

/* Receive one message; blocking unless nonblock. Returns the decoded type
 * (> 0) with *m filled and any fd in *ret_fd, or a negative code. */
static int recv_one(handoff_t *h, bool nonblock, uint8_t *buf, struct proto_msg *m, int *ret_fd)
{
	for (;;) {
		int fds[PROTO_MAX_FDS];
		unsigned nfds = 0;
		ssize_t n = proto_recv(h->fd, buf, PROTO_MAX_MSG + 1, fds, PROTO_MAX_FDS, &nfds, false);
		if (n == -EAGAIN) {
			if (nonblock)
				return -EAGAIN;
			int rc = wait_fd(h->fd, POLLIN);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == -ECONNRESET)
			continue; /* handoffd died; what it sent before is still readable */
		if (n == 0) {
			set_err(h, "handoffd closed the control connection");
			return HANDOFF_E_CLOSED;
		}
		if (n == -EBADMSG) {
			set_err(h, "handoffd sent a truncated message or too many file descriptors");
			return HANDOFF_E_PROTOCOL;
		}
		if (n < 0)
			return (int)n;
		const char *why = "";
		int rc = proto_decode(buf, (size_t)n, nfds, PROTO_FROM_DAEMON, m, &why);
		if (rc < 0) {
			proto_close_fds(fds, nfds);
			set_err(h, "malformed message from handoffd: %s", why);
			return HANDOFF_E_PROTOCOL;
		}
		*ret_fd = nfds ? fds[0] : -1;
		return m->type;
	}
}

/* REGISTER and wait for the answer (also used when reconnecting). */
static int do_register(handoff_t *h, const char *service, unsigned capacity)
{
	uint8_t buf[PROTO_MAX_MSG + 1];
	struct proto_buf b;
	struct proto_msg m;

	proto_begin(&b, PROTO_REGISTER, ++h->seq);
	proto_put_str(&b, PA_SERVICE, service);
	proto_put_u32(&b, PA_CAPACITY, capacity);
	int rc = send_wait(h, &b);
	if (rc < 0) {
		/* handoffd may have refused us at connect time (a limit) and
		 * closed: its ERROR is still readable and says why. */
		int fd = -1;
		if (recv_one(h, true, buf, &m, &fd) == PROTO_ERROR) {
			h->dead = take_error(h, &m);
			return h->dead;
		}
		if (fd >= 0)
			close(fd);
		set_err(h, "cannot send to handoffd: %s", strerror(-rc));
		return rc;
	}
	for (;;) {
		int fd = -1;
		int t = recv_one(h, false, buf, &m, &fd);
		if (fd >= 0)
			close(fd); /* nothing before REGISTERED carries an fd */
		if (t < 0) {
			h->dead = t;
			return t;
		}
		if (t == PROTO_REGISTERED) {
			h->registered = true;
			h->capacity = proto_u32(&m, PA_CAPACITY);
			h->backend_id = proto_u64(&m, PA_BACKEND_ID);
			h->nshared = proto_u32(&m, PA_COUNT);
			h->err[0] = '\0';
			return 0;
		}
		if (t == PROTO_ERROR) {
			h->dead = take_error(h, &m);
			return h->dead;
		}
		set_err(h, "unexpected %s from handoffd before REGISTERED", proto_type_name((unsigned)t));
		h->dead = HANDOFF_E_PROTOCOL;
		return HANDOFF_E_PROTOCOL;
	}
}

int handoff_register(handoff_t *h, const char *service, unsigned capacity)
{
	if (!h || !service)
		return -EINVAL;
	if (h->registered) {
		set_err(h, "already registered");
		return HANDOFF_E_STATE;
	}
	if (h->dead)
		return h->dead;
	size_t n = strlen(service);
	if (n < 1 || n > PROTO_MAX_NAME || capacity < 1 || capacity > 65535)
		return -EINVAL;
	memcpy(h->service, service, n + 1);
	h->want_capacity = capacity;
	return do_register(h, service, capacity);
}

int handoff_set_reconnect(handoff_t *h, unsigned max_wait_ms)
{
	if (!h)
		return -EINVAL;
	h->reconnect = true;
	h->reconnect_max_ms = max_wait_ms;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Put fd at h->fd's number (so a caller's poll set stays valid) and close
 * the original. */
static int move_to_handle_fd(handoff_t *h, int fd)
{
	if (dup3(fd, h->fd, O_CLOEXEC) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

/* One attempt: connect and register again. 0, or < 0 to retry later. */
static int reconnect_once(handoff_t *h)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&h->addr, h->addr_len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	int rc = move_to_handle_fd(h, fd);
	if (rc < 0)
		return rc;
	h->reconnecting = false;
	h->registered = false;
	h->dead = 0;
	h->unacked = h->done = h->open = 0;
	h->ndone_ids = 0;
	h->drain_sent = false;
	rc = do_register(h, h->service, h->want_capacity);
	if (rc == 0) {
		h->gen++;
		return 0;
	}
	/* Still registered as far as the caller knows: we keep trying. */
	h->registered = true;
	h->dead = 0;
	/* Refused for good (the service is gone, not allowed): stop trying. */
	if (rc == HANDOFF_E_NO_SERVICE || rc == HANDOFF_E_NOT_ALLOWED || rc == HANDOFF_E_VERSION)
		return rc;
	return -EAGAIN;
}

/* Arm h->fd as a timer that turns readable when the next attempt is due. */
static int wait_timer(handoff_t *h, unsigned ms)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		return -errno;
	struct itimerspec its = {.it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}};
	if (timerfd_settime(tfd, 0, &its, NULL) < 0) {
		int e = -errno;
		close(tfd);
		return e;
	}
	int rc = move_to_handle_fd(h, tfd);
	if (rc == 0)
		h->reconnecting = true;
	return rc;
}

/* The connection to handoffd is gone (err says how): reconnect if asked
 * to. Returns 0 once registered again, -EAGAIN (non-blocking, not yet), or
 * err when giving up. */
static int reconnect(handoff_t *h, bool nonblock, int err)
{
	if (!h->reconnect || !h->service[0] || h->drained)
		return err;
	if (!h->reconnecting && !h->lost_ms) {
		h->lost_ms = now_ms();
		h->backoff_ms = 10;
	}
	for (;;) {
		if (h->reconnecting) {
			uint64_t expirations;
			if (read(h->fd, &expirations, sizeof(expirations)) < 0) {
				if (errno != EAGAIN && errno != EINTR)
					return -errno;
				if (nonblock)
					return -EAGAIN;
				int rc = wait_fd(h->fd, POLLIN);
				if (rc < 0)
					return rc;
				continue;
			}
		}
		int rc = reconnect_once(h);
		if (rc == 0) {
			h->lost_ms = 0;
			h->err[0] = '\0';
			return 0;
		}
		if (rc < -4096) { /* refused (HANDOFF_E_*): trying again will not help */
			h->dead = rc;
			return rc;
		}
		if (h->reconnect_max_ms && now_ms() - h->lost_ms > h->reconnect_max_ms) {
			set_err(h, "handoffd did not come back within %u ms", h->reconnect_max_ms);
			h->dead = err;
			return err;
		}
		rc = wait_timer(h, h->backoff_ms);
		if (rc < 0)
			return rc;
		h->backoff_ms = h->backoff_ms >= 500 ? 1000 : h->backoff_ms * 2;
	}
}

unsigned handoff_capacity(const handoff_t *h)
{
	return h ? h->capacity : 0;
}

uint64_t handoff_backend_id(const handoff_t *h)
{
	return h ? h->backend_id : 0;
}

unsigned handoff_shared_count(const handoff_t *h)
{
	return h ? h->nshared : 0;
}

int handoff_fd(const handoff_t *h)
{
	return h ? h->fd : -EINVAL;
}

/* Send the acknowledgement and done counts; wait for room if asked. */
static int send_ack(handoff_t *h, bool wait)
{
	struct proto_buf b;
	if (!h->unacked && !h->done)
		return 0;
	proto_begin(&b, PROTO_ACK, 0);
	proto_put_u32(&b, PA_RECEIVED, h->unacked);
	proto_put_u32(&b, PA_DONE, h->done);
	if (h->ndone_ids) {
		uint8_t ids[8 * PROTO_MAX_DONE_IDS];
		for (unsigned i = 0; i < h->ndone_ids; i++)
			for (int k = 0; k < 8; k++)
				ids[8 * i + (unsigned)k] = (uint8_t)(h->done_ids[i] >> (8 * k));
		proto_put_bytes(&b, PA_DONE_IDS, ids, 8 * h->ndone_ids);
	}
	int rc;
	if (wait) {
		rc = send_wait(h, &b);
	} else {
		int len = proto_finish(&b, 0);
		rc = len < 0 ? len : proto_send(h->fd, b.data, (size_t)len, NULL, 0, false);
	}
	if (rc == 0) {
		h->unacked = 0;
		h->done = 0;
		h->ndone_ids = 0;
	}
	return rc;
}

int handoff_flush(handoff_t *h)
{
	if (!h)
		return -EINVAL;
	return send_ack(h, false);
}

static void fill_conn(handoff_t *h, struct handoff_conn *c, const struct proto_msg *m, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->generation = h->gen;
	c->id = proto_u64(m, PA_CONN_ID);
	proto_str(m, PA_SERVICE, c->service, sizeof(c->service));
	const struct proto_val *l = &m->attr[PA_LOCAL_ADDR], *p = &m->attr[PA_PEER_ADDR];
	if (l->len <= sizeof(c->local)) {
		memcpy(&c->local, l->p, l->len);
		c->local_len = l->len;
	}
	if (p->len && p->len <= sizeof(c->peer)) {
		memcpy(&c->peer, p->p, p->len);
		c->peer_len = p->len;
	}
	if (proto_has(m, PA_PEER_PID)) {
		c->has_cred = 1;
		c->pid = (pid_t)proto_u32(m, PA_PEER_PID);
		c->uid = proto_u32(m, PA_PEER_UID);
		c->gid = proto_u32(m, PA_PEER_GID);
	}
	if (m->type == PROTO_SOCKET) {
		c->socktype = (int)proto_u32(m, PA_SOCKTYPE);
		c->kind = proto_u32(m, PA_LISTENING) ? HANDOFF_LISTENER : HANDOFF_DATAGRAM;
	} else {
		c->kind = HANDOFF_CONNECTION;
		c->socktype = proto_has(m, PA_SOCKTYPE) ? (int)proto_u32(m, PA_SOCKTYPE) : SOCK_STREAM;
	}
}

/* With a batch size above 1: take the DELIVERs already waiting on the
 * socket (at most qcap), so one ACK covers them all. Something other than
 * a DELIVER ends the batch and is returned once the queue is empty. */
static void take_batch(handoff_t *h, uint8_t *buf)
{
	struct proto_msg m;
	while (h->qlen < h->qcap) {
		int fd = -1;
		int t = recv_one(h, true, buf, &m, &fd);
		if (t == -EAGAIN)
			return;
		if (t == PROTO_DELIVER) {
			fill_conn(h, &h->q[(h->qhead + h->qlen) % h->qcap], &m, fd);
			h->qlen++;
			h->unacked++;
			h->open++;
			continue;
		}
		if (t == PROTO_SOCKET) {
			fill_conn(h, &h->q[(h->qhead + h->qlen) % h->qcap], &m, fd);
			h->qlen++;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (t == PROTO_DRAINED) {
			set_err(h, "drained: handoffd sends no more connections");
			h->after_q = HANDOFF_E_DRAINED;
		} else if (t == PROTO_ERROR) {
			h->after_q = take_error(h, &m);
		} else if (t < 0) {
			h->after_q = t;
		} else {
			set_err(h, "unexpected %s from handoffd", proto_type_name((unsigned)t));
			h->after_q = HANDOFF_E_PROTOCOL;
		}
		return;
	}
}

int handoff_set_batch(handoff_t *h, unsigned max)
{
	if (!h || max < 1 || max > 256)
		return -EINVAL;
	if (h->qlen)
		return HANDOFF_E_STATE;
	struct handoff_conn *q = NULL;
	if (max > 1) {
		q = calloc(max - 1, sizeof(*q));
		if (!q)
			return -ENOMEM;
	}
	free(h->q);
	h->q = q;
	h->qcap = max - 1; /* the first one goes straight to the caller */
	h->qhead = 0;
	return 0;
}

/* Has this shared socket (by inode) been returned already? Records it. */
static bool seen_before(handoff_t *h, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return false;
	for (unsigned i = 0; i < h->nseen; i++)
		if (h->seen[i].dev == st.st_dev && h->seen[i].ino == st.st_ino)
			return true;
	if (h->nseen < sizeof(h->seen) / sizeof(h->seen[0])) {
		h->seen[h->nseen].dev = st.st_dev;
		h->seen[h->nseen].ino = st.st_ino;
		h->nseen++;
	}
	return false;
}

int handoff_accept(handoff_t *h, struct handoff_conn *ret_conn, int flags)
{
	uint8_t buf[PROTO_MAX_MSG + 1];
	struct proto_msg m;

	if (!h || !ret_conn)
		return -EINVAL;
	if (!h->registered && !h->reconnecting) {
		set_err(h, "handoff_accept() before handoff_register()");
		return HANDOFF_E_STATE;
	}
	if (h->qlen) {
		*ret_conn = h->q[h->qhead];
		h->qhead = (h->qhead + 1) % h->qcap;
		h->qlen--;
		return 0;
	}
	if (h->after_q) {
		/* A drain or an error read while taking a batch. */
		int rc = h->after_q;
		h->after_q = 0;
		if (rc == HANDOFF_E_DRAINED)
			h->drained = true;
		else
			h->dead = rc;
		return rc;
	}
	if (h->drained)
		return HANDOFF_E_DRAINED;
	bool nonblock = h->nonblock || (flags & HANDOFF_NONBLOCK);
	if (h->reconnecting) {
		int rc = reconnect(h, nonblock, HANDOFF_E_CLOSED);
		if (rc < 0)
			return rc;
	}
	if (h->dead)
		return h->dead;
	for (;;) {
		int fd = -1;
		int t = recv_one(h, true, buf, &m, &fd);
		if (t == -EAGAIN) {
			/* Nothing to read: report finished connections before waiting,
			 * so capacity can never stay stuck on our side. */
			int rc = send_ack(h, false);
			if (rc < 0 && rc != -EAGAIN)
				return rc;
			if (nonblock)
				return -EAGAIN;
			rc = wait_fd(h->fd, POLLIN);
			if (rc < 0)
				return rc;
			continue;
		}
		if (t < 0) {
			if (t == HANDOFF_E_CLOSED || t == -ECONNRESET || t == -EPIPE) {
				int rc = reconnect(h, nonblock, t);
				if (rc == 0)
					continue;
				if (rc == -EAGAIN)
					return rc;
			}
			h->dead = t;
			return t;
		}
		switch (t) {
		case PROTO_DELIVER:
			fill_conn(h, ret_conn, &m, fd);
			h->unacked++;
			h->open++;
			take_batch(h, buf);
			/* Acknowledge before the caller touches the connection: from
			 * here on it is the caller's and handoffd forgets it. If
			 * handoffd is gone the connection is still ours to serve. */
			if (send_ack(h, true) < 0)
				h->unacked = 0;
			return 0;
		case PROTO_SOCKET:
			/* A shared socket: no acknowledgement, handoffd keeps its copy.
			 * After a reconnect the same socket comes again: once is enough. */
			if (seen_before(h, fd)) {
				close(fd);
				continue;
			}
			fill_conn(h, ret_conn, &m, fd);
			return 0;
		case PROTO_DRAINED:
			h->drained = true;
			send_ack(h, false);
			set_err(h, "drained: handoffd sends no more connections");
			return HANDOFF_E_DRAINED;
		case PROTO_ERROR: {
			if (fd >= 0)
				close(fd);
			int e = take_error(h, &m);
			if (e == HANDOFF_E_SHUTDOWN) {
				int rc = reconnect(h, nonblock, e);
				if (rc == 0)
					continue;
				if (rc == -EAGAIN)
					return rc;
			}
			h->dead = e;
			return h->dead;
		}
		default:
			if (fd >= 0)
				close(fd);
			set_err(h, "unexpected %s from handoffd", proto_type_name((unsigned)t));
			h->dead = HANDOFF_E_PROTOCOL;
			return HANDOFF_E_PROTOCOL;
		}
	}
}

int handoff_done(handoff_t *h, const struct handoff_conn *conn, int flags)
{
	if (!h || (conn && conn->kind != HANDOFF_CONNECTION))
		return -EINVAL;
	if (conn && conn->generation != h->gen)
		return 0; /* from a handoffd we have since reconnected away from */
	if (h->open == 0) {
		set_err(h, "handoff_done() for more connections than were received");
		return HANDOFF_E_STATE;
	}
	if (conn && h->ndone_ids == PROTO_MAX_DONE_IDS)
		send_ack(h, false); /* the id list is full: send it first */
	h->open--;
	h->done++;
	if (conn && h->ndone_ids < PROTO_MAX_DONE_IDS)
		h->done_ids[h->ndone_ids++] = conn->id;
	if (flags & HANDOFF_DEFER)
		return 0;
	int rc = send_ack(h, false);
	return rc == -EAGAIN ? 0 : rc;
}

int handoff_drain(handoff_t *h)
{
	struct proto_buf b;
	if (!h)
		return -EINVAL;
	if (!h->registered)
		return HANDOFF_E_STATE;
	if (h->drain_sent || h->drained)
		return 0;
	send_ack(h, false);
	proto_begin(&b, PROTO_DRAIN, ++h->seq);
	int rc = send_wait(h, &b);
	if (rc == 0)
		h->drain_sent = true;
	return rc;
}

void handoff_close(handoff_t *h)
{
	if (!h)
		return;
	if (h->registered && !h->dead)
		send_ack(h, false);
	/* Connections taken in a batch and never returned: ours to close. */
	for (; h->qlen; h->qlen--, h->qhead = (h->qhead + 1) % h->qcap)
		close(h->q[h->qhead].fd);
	free(h->q);
	close(h->fd);
	free(h);
}

const char *handoff_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case HANDOFF_E_PROTOCOL:
		return "protocol error between libhandoff and handoffd";
	case HANDOFF_E_VERSION:
		return "handoffd does not speak this protocol version";
	case HANDOFF_E_NO_SERVICE:
		return "no such service in handoffd's configuration";
	case HANDOFF_E_NOT_ALLOWED:
		return "not allowed to serve this service";
	case HANDOFF_E_LIMIT:
		return "a handoffd limit was reached";
	case HANDOFF_E_NOT_ADMIN:
		return "permission denied: not a handoffd admin";
	case HANDOFF_E_NOT_FOUND:
		return "no such backend";
	case HANDOFF_E_CONFIG:
		return "the new configuration is broken; the old one keeps running";
	case HANDOFF_E_STATE:
		return "call does not fit the handle's state";
	case HANDOFF_E_SHUTDOWN:
		return "handoffd is shutting down";
	case HANDOFF_E_DRAINED:
		return "drained: no more connections will come";
	case HANDOFF_E_CLOSED:
		return "handoffd closed the control connection";
	case HANDOFF_E_DAEMON_UID:
		return "the control socket's peer is not the expected uid";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

const char *handoff_last_error(const handoff_t *h)
{
	return h ? h->err : "";
}

int handoff_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	return addr_format(sa, len, buf, size);
}
