/* builtin: echo, discard, chargen, daytime, time and tcpmux served by
 * handoffd itself. See builtin.h for the contract. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "builtin.h"
#include "dispatch.h"
#include "log.h"
#include "service.h"

#define DGRAM_BUF 65536     /* largest datagram echoed (UDP's own limit is 65507) */
#define IO_ROUNDS 16        /* read/write rounds per event, so one busy peer cannot hog the loop */
#define GUARD_PORTS_MAX 64  /* answering builtin datagram ports the loop guard knows */
#define CHARGEN_TABLE (BUILTIN_CHARGEN_PERIOD + BUILTIN_BUF)
#define LINGER_MAX (64 * 1024) /* bytes read and dropped after a final reply */

struct bconn;

struct builtins {
	TAILQ_HEAD(, bconn) conns;
	unsigned nconns;
	uint32_t idle_ms;            /* BUILTIN_IDLE_MS, but for tests */
	uint32_t tcpmux_ms;          /* BUILTIN_TCPMUX_TIMEOUT_MS, but for tests */
	uint64_t rng;                /* xorshift64 state: UDP chargen lengths */
	uint64_t guard_dropped;      /* loop-guard drops since the last report */
	uint64_t guard_log_ms;       /* loop time of the last report */
	bool guard_logged;
	/* The chargen stream from position 0, long enough that BUILTIN_BUF bytes
	 * follow every position of one period: chargen sends straight from it. */
	uint8_t chargen[CHARGEN_TABLE];
	uint8_t dgram[DGRAM_BUF];    /* one datagram at a time (one loop, no threads) */
};

enum tcpmux_phase {
	TM_REQUEST = 0, /* reading the request line */
	TM_REPLY,       /* sending a one-line answer, then close */
	TM_HELP,        /* sending the list of names, a buffer at a time, then close */
};

/* One stream connection. Freed when both handles have closed. */
struct bconn {
	TAILQ_ENTRY(bconn) link;     /* hd->builtins->conns, while listed */
	struct hd *hd;
	struct conn *c;              /* NULL once ended or handed over */
	enum builtin kind;
	int socktype;                /* SOCK_STREAM or SOCK_SEQPACKET */
	bool listed;
	bool has_poll, has_timer;
	int open_handles;            /* close callbacks still to come */
	uv_poll_t poll;
	uv_timer_t timer;
	int events;                  /* what poll watches now */
	uint64_t last_ms;            /* loop time of the last progress */
	uint32_t timeout_ms;
	bool rd_eof;
	bool lingering;              /* final reply sent: waiting for the client's EOF */
	size_t linger_bytes;
	enum tcpmux_phase phase;
	size_t help_next;            /* next hd->cfg->services index to list */
	bool help_done;
	uint32_t chargen_pos;
	size_t off, len;             /* buf[off..len) is still to be sent */
	uint8_t buf[BUILTIN_BUF];
};

/* ---- pure pieces ---- */

void builtin_chargen_fill(uint32_t *pos, uint8_t *buf, size_t len)
{
	uint32_t p = *pos % BUILTIN_CHARGEN_PERIOD;
	for (size_t i = 0; i < len; i++) {
		uint32_t line = p / (BUILTIN_CHARGEN_LINE + 2), col = p % (BUILTIN_CHARGEN_LINE + 2);
		if (col < BUILTIN_CHARGEN_LINE)
			buf[i] = (uint8_t)(' ' + (line + col) % 95);
		else
			buf[i] = col == BUILTIN_CHARGEN_LINE ? '\r' : '\n';
		if (++p == BUILTIN_CHARGEN_PERIOD)
			p = 0;
	}
	*pos = p;
}

uint32_t builtin_time_value(time_t t)
{
	/* Unsigned arithmetic: the result is modulo 2^32 for any t, before
	 * 1970 included. */
	return (uint32_t)((uint64_t)(int64_t)t + BUILTIN_TIME_OFFSET);
}

int builtin_daytime_format(const struct tm *tm, char *buf, size_t size)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	if (tm->tm_wday < 0 || tm->tm_wday > 6 || tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 ||
	    tm->tm_mday > 31 || tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 ||
	    tm->tm_sec < 0 || tm->tm_sec > 60)
		return -EINVAL;
	int n = snprintf(buf, size, "%s %s %2d %02d:%02d:%02d %lld\r\n", days[tm->tm_wday], months[tm->tm_mon],
	                 tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec, (long long)tm->tm_year + 1900);
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENOSPC : n;
}

/* An IP address as 16 bytes (IPv4 as v4-mapped) and its port. */
static bool ip_of(const struct sockaddr *sa, socklen_t len, uint8_t ret_addr[16], uint16_t *ret_port)
{
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		memset(ret_addr, 0, 10);
		ret_addr[10] = ret_addr[11] = 0xff;
		memcpy(ret_addr + 12, &a->sin_addr, 4);
		*ret_port = ntohs(a->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		memcpy(ret_addr, &a->sin6_addr, 16);
		*ret_port = ntohs(a->sin6_port);
		return true;
	}
	return false;
}

/* :: or 0.0.0.0 (as ::ffff:0.0.0.0). */
static bool ip_is_any(const uint8_t a[16])
{
	static const uint8_t any[16], any4[16] = {[10] = 0xff, [11] = 0xff};
	return memcmp(a, any, 16) == 0 || memcmp(a, any4, 16) == 0;
}

/* A Unix address as its significant bytes: a path without its NUL
 * padding, or an abstract name ("\0name") of its exact length. Returns the
 * length, 0 for an unnamed socket. */
static size_t unix_name(const struct sockaddr *sa, socklen_t len, const char **ret)
{
	const size_t off = offsetof(struct sockaddr_un, sun_path);
	const struct sockaddr_un *u = (const struct sockaddr_un *)sa;
	if ((size_t)len <= off)
		return 0;
	size_t plen = (size_t)len - off;
	if (plen > sizeof(u->sun_path))
		plen = sizeof(u->sun_path);
	*ret = u->sun_path;
	if (u->sun_path[0] == '\0')
		return plen > 1 ? plen : 0;
	return strnlen(u->sun_path, plen);
}

static bool is_ip_family(int f)
{
	return f == AF_INET || f == AF_INET6;
}

enum builtin_guard builtin_dgram_guard(const struct sockaddr *src, socklen_t src_len, const struct sockaddr *self,
                                       socklen_t self_len, const uint16_t *ports, size_t nports)
{
	bool have_self = self && self_len >= (socklen_t)sizeof(sa_family_t);
	if (!src || src_len < (socklen_t)sizeof(sa_family_t))
		/* Linux gives no address at all for an unbound Unix sender. */
		return have_self && self->sa_family == AF_UNIX && src_len == 0 ? BUILTIN_GUARD_UNNAMED
		                                                               : BUILTIN_GUARD_FAMILY;

	if (is_ip_family(src->sa_family)) {
		uint8_t a[16], s[16];
		uint16_t port, self_port;
		if (!ip_of(src, src_len, a, &port))
			return BUILTIN_GUARD_FAMILY;
		if (have_self && !is_ip_family(self->sa_family))
			return BUILTIN_GUARD_FAMILY;
		if (port < 1024)
			return BUILTIN_GUARD_LOW_PORT;
		if (have_self && ip_of(self, self_len, s, &self_port) && port == self_port)
			return ip_is_any(s) || memcmp(a, s, 16) == 0 ? BUILTIN_GUARD_SELF : BUILTIN_GUARD_SERVICE_PORT;
		for (size_t i = 0; i < nports; i++)
			if (ports[i] == port)
				return BUILTIN_GUARD_SERVICE_PORT;
		return BUILTIN_GUARD_OK;
	}
	if (src->sa_family == AF_UNIX) {
		if (have_self && self->sa_family != AF_UNIX)
			return BUILTIN_GUARD_FAMILY;
		const char *sn = NULL, *mn = NULL;
		size_t sl = unix_name(src, src_len, &sn);
		if (sl == 0)
			return BUILTIN_GUARD_UNNAMED;
		size_t ml = have_self ? unix_name(self, self_len, &mn) : 0;
		if (ml == sl && memcmp(sn, mn, sl) == 0)
			return BUILTIN_GUARD_SELF;
		return BUILTIN_GUARD_OK;
	}
	return BUILTIN_GUARD_FAMILY;
}

const char *builtin_guard_name(enum builtin_guard g)
{
	switch (g) {
	case BUILTIN_GUARD_OK:
		return "answered";
	case BUILTIN_GUARD_LOW_PORT:
		return "source port below 1024";
	case BUILTIN_GUARD_SELF:
		return "source is the service's own address";
	case BUILTIN_GUARD_SERVICE_PORT:
		return "source port is that of an answering builtin service";
	case BUILTIN_GUARD_UNNAMED:
		return "client socket has no address to answer to";
	case BUILTIN_GUARD_FAMILY:
		return "unexpected address family";
	}
	return "?";
}

int builtin_tcpmux_parse(const uint8_t *buf, size_t len, bool final, char *ret_name, size_t name_size,
                         size_t *ret_used)
{
	size_t scan = len < BUILTIN_TCPMUX_LINE_MAX ? len : BUILTIN_TCPMUX_LINE_MAX;
	const uint8_t *nl = memchr(buf, '\n', scan);
	size_t n;

	if (nl) {
		n = (size_t)(nl - buf);
		*ret_used = n + 1;
	} else if (final && len <= BUILTIN_TCPMUX_LINE_MAX) {
		n = len;
		*ret_used = len;
	} else if (len >= BUILTIN_TCPMUX_LINE_MAX) {
		*ret_used = scan;
		return -EMSGSIZE;
	} else {
		return BUILTIN_TCPMUX_INCOMPLETE;
	}
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (n == 0)
		return -ENOMSG;
	for (size_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			return -EINVAL;
	if (n == 4 && strncasecmp((const char *)buf, "help", 4) == 0)
		return BUILTIN_TCPMUX_HELP;
	if (n >= name_size)
		return -ENAMETOOLONG;
	memcpy(ret_name, buf, n);
	ret_name[n] = '\0';
	return BUILTIN_TCPMUX_SERVICE;
}

/* ---- stream connections ---- */

static void on_timer(uv_timer_t *t);

static const char *kind_name(enum builtin k)
{
	return config_builtin_name(k);
}

/* The client for logs: its address, and its credentials on Unix. */
static void conn_who(const struct conn *c, char *buf, size_t size)
{
	char a[ADDR_TEXT_MAX];
	if (c->peer_len > 0) {
		if (addr_format((const struct sockaddr *)&c->peer, c->peer_len, a, sizeof(a)) < 0)
			snprintf(a, sizeof(a), "(address too long)");
	} else {
		snprintf(a, sizeof(a), "unix:(unnamed)");
	}
	if (c->has_cred)
		snprintf(buf, size, "%s pid=%d uid=%u", a, (int)c->cred_pid, (unsigned)c->cred_uid);
	else
		snprintf(buf, size, "%s", a);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct bconn *b = h->data;
	if (--b->open_handles == 0)
		free(b);
}

/* Unlist b and close its handles; b is freed when they have closed (at
 * once if it has none). Polling stops here, synchronously, so the fd may be
 * closed or given away right after. */
static void bconn_release(struct bconn *b)
{
	struct builtins *bs = b->hd->builtins;
	if (b->listed && bs) {
		TAILQ_REMOVE(&bs->conns, b, link);
		bs->nconns--;
	}
	b->listed = false;
	b->open_handles = (int)b->has_poll + (int)b->has_timer;
	if (b->open_handles == 0) {
		free(b);
		return;
	}
	if (b->has_poll)
		uv_close((uv_handle_t *)&b->poll, on_handle_closed);
	if (b->has_timer)
		uv_close((uv_handle_t *)&b->timer, on_handle_closed);
}

/* End the connection: log why (unless why is NULL), release b and give c
 * back to the service and free it. b must not be used afterwards except to
 * see that b->c is NULL (its memory lives until the close callbacks). */
static void bconn_end(struct bconn *b, int level, const char *why)
{
	struct conn *c = b->c;
	if (!c)
		return;
	if (why) {
		char who[ADDR_TEXT_MAX + 48];
		conn_who(c, who, sizeof(who));
		log_peer(level, "builtin %s '%s': client %s: %s, closing", kind_name(b->kind), c->svc->name, who,
		         why);
	}
	b->c = NULL;
	bconn_release(b);
	service_conn_closed(c->svc, c);
	conn_free(c);
}

/* Same, with an errno value in the message. */
static void bconn_fail(struct bconn *b, const char *what, int err)
{
	char why[128];
	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	/* A client going away is ordinary; anything else deserves a note. */
	bool ordinary = err == EPIPE || err == ECONNRESET || err == ETIMEDOUT || err == EHOSTUNREACH;
	bconn_end(b, ordinary ? LOG_LVL_DEBUG : LOG_LVL_INFO, why);
}

static void bconn_progress(struct bconn *b)
{
	b->last_ms = uv_now(b->hd->loop);
}

/* recv with EINTR retried. Returns bytes (0 = EOF) or -errno (-EAGAIN: nothing now). */
static ssize_t bconn_recv(struct bconn *b, void *p, size_t n, int flags)
{
	for (;;) {
		ssize_t r = recv(b->c->fd, p, n, flags | MSG_DONTWAIT);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static ssize_t bconn_send(struct bconn *b, const void *p, size_t n)
{
	for (;;) {
		ssize_t r = send(b->c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* Send what buf holds. Returns bytes sent now (>= 0; all of it when
 * b->off == b->len afterwards, and then both are reset to 0) or -errno. */
static ssize_t bconn_flush(struct bconn *b)
{
	size_t sent = 0;
	while (b->off < b->len) {
		ssize_t n = bconn_send(b, b->buf + b->off, b->len - b->off);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return n;
		b->off += (size_t)n;
		sent += (size_t)n;
	}
	if (sent > 0)
		bconn_progress(b);
	if (b->off == b->len)
		b->off = b->len = 0;
	return (ssize_t)sent;
}

/* Room to read into: on seqpacket only an empty buffer (one record at a
 * time, so each goes back as one record). */
static bool echo_has_room(const struct bconn *b)
{
	if (b->socktype == SOCK_SEQPACKET)
		return b->len == 0;
	return b->len - b->off < BUILTIN_BUF;
}

static void echo_io(struct bconn *b)
{
	for (int round = 0; round < IO_ROUNDS; round++) {
		bool moved = false;
		if (!b->rd_eof && echo_has_room(b)) {
			if (b->off > 0) {
				memmove(b->buf, b->buf + b->off, b->len - b->off);
				b->len -= b->off;
				b->off = 0;
			}
			size_t room = BUILTIN_BUF - b->len;
			bool seq = b->socktype == SOCK_SEQPACKET;
			ssize_t n = bconn_recv(b, b->buf + b->len, room, seq ? MSG_TRUNC : 0);
			if (n > 0 && seq && (size_t)n > room) {
				char why[96];
				snprintf(why, sizeof(why), "record of %zd bytes, larger than %d", n, BUILTIN_BUF);
				bconn_end(b, LOG_LVL_INFO, why);
				return;
			}
			if (n > 0) {
				b->len += (size_t)n;
				bconn_progress(b);
				moved = true;
			} else if (n == 0) {
				b->rd_eof = true;
				moved = true;
			} else if (n != -EAGAIN) {
				bconn_fail(b, "read", (int)-n);
				return;
			}
		}
		if (b->len > b->off) {
			ssize_t n = bconn_flush(b);
			if (n < 0) {
				bconn_fail(b, "write", (int)-n);
				return;
			}
			moved = moved || n > 0;
		}
		if (b->rd_eof && b->len == b->off) {
			bconn_end(b, LOG_LVL_DEBUG, "end of input, all echoed");
			return;
		}
		if (!moved)
			return;
	}
}

static void discard_io(struct bconn *b)
{
	for (int round = 0; round < IO_ROUNDS; round++) {
		ssize_t n = bconn_recv(b, b->buf, BUILTIN_BUF, 0);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			bconn_fail(b, "read", (int)-n);
			return;
		}
		if (n == 0) {
			bconn_end(b, LOG_LVL_DEBUG, "end of input");
			return;
		}
		bconn_progress(b);
	}
}

static void chargen_io(struct bconn *b, int events)
{
	const uint8_t *table = b->hd->builtins->chargen;

	/* Input is read and dropped, so the client's sends never stall; after
	 * its EOF the stream goes on until it closes for good. */
	for (int round = 0; (events & UV_READABLE) && !b->rd_eof && round < IO_ROUNDS; round++) {
		ssize_t n = bconn_recv(b, b->buf, BUILTIN_BUF, 0);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			bconn_fail(b, "read", (int)-n);
			return;
		}
		if (n == 0)
			b->rd_eof = true;
		else
			bconn_progress(b);
	}
	for (int round = 0; (events & UV_WRITABLE) && round < IO_ROUNDS; round++) {
		ssize_t n = bconn_send(b, table + b->chargen_pos, BUILTIN_BUF);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			bconn_fail(b, "write", (int)-n);
			return;
		}
		b->chargen_pos = (uint32_t)((b->chargen_pos + (size_t)n) % BUILTIN_CHARGEN_PERIOD);
		bconn_progress(b);
		if (n < BUILTIN_BUF)
			return;
	}
}

/* Read and drop until the client's EOF, then close. */
static void linger_io(struct bconn *b)
{
	for (int round = 0; round < IO_ROUNDS; round++) {
		ssize_t n = bconn_recv(b, b->buf, BUILTIN_BUF, 0);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			bconn_end(b, LOG_LVL_DEBUG, NULL); /* EOF, or the client is gone anyway */
			return;
		}
		b->linger_bytes += (size_t)n;
		if (b->linger_bytes > LINGER_MAX) {
			bconn_end(b, LOG_LVL_DEBUG, "still sending after the reply");
			return;
		}
	}
}

/* The final reply is out: end our side and wait a little for the
 * client's EOF before closing. Closing a socket with unread input resets
 * the connection (TCP sends RST, a Unix peer gets ECONNRESET), and the
 * client may then lose the reply it has not read yet: the answer to a
 * tcpmux request followed at once by data, or a daytime line to a client
 * that typed something. Bounded by BUILTIN_LINGER_MS and LINGER_MAX. */
static void bconn_linger(struct bconn *b)
{
	if (shutdown(b->c->fd, SHUT_WR) < 0) {
		bconn_end(b, LOG_LVL_DEBUG, NULL);
		return;
	}
	b->lingering = true;
	b->timeout_ms = BUILTIN_LINGER_MS;
	b->last_ms = uv_now(b->hd->loop);
	uv_timer_start(&b->timer, on_timer, b->timeout_ms, 0);
	linger_io(b);
}

/* daytime, time, and tcpmux replies: send buf, then close. */
static void reply_io(struct bconn *b)
{
	ssize_t n = bconn_flush(b);
	if (n < 0) {
		bconn_fail(b, "write", (int)-n);
		return;
	}
	if (b->len == 0)
		bconn_linger(b);
}

/* tcpmux help: fill buf with the next names that fit. */
static void help_fill(struct bconn *b)
{
	const struct config *cfg = b->hd->cfg;
	size_t n = cfg ? cfg->nservices : 0;
	while (b->help_next < n) {
		const char *name = cfg->services[b->help_next].tcpmux_name;
		size_t l = strnlen(name, sizeof(cfg->services[0].tcpmux_name));
		if (l > 0) {
			if (b->len + l + 2 > BUILTIN_BUF)
				return;
			memcpy(b->buf + b->len, name, l);
			memcpy(b->buf + b->len + l, "\r\n", 2);
			b->len += l + 2;
		}
		b->help_next++;
	}
	b->help_done = true;
}

static void help_io(struct bconn *b)
{
	for (int round = 0; round < IO_ROUNDS; round++) {
		if (b->len == 0) {
			if (b->help_done) {
				bconn_linger(b);
				return;
			}
			help_fill(b);
			continue;
		}
		ssize_t n = bconn_flush(b);
		if (n < 0) {
			bconn_fail(b, "write", (int)-n);
			return;
		}
		if (b->len > 0)
			return; /* wait until writable */
	}
}

static void tcpmux_reply(struct bconn *b, const char *text)
{
	b->phase = TM_REPLY;
	b->off = 0;
	b->len = strlen(text);
	memcpy(b->buf, text, b->len);
	bconn_progress(b); /* the reply gets its own timeout */
	reply_io(b);
}

/* Give the connection to target: tcpmux's part is over. */
static void tcpmux_handover(struct bconn *b, const struct cfg_service *cs, struct service *target)
{
	struct conn *c = b->c;
	char who[ADDR_TEXT_MAX + 48];

	/* The target's access rules come before any "+": a refused client
	 * hears "-" (RFC 1078), not "+Go" followed by a close. */
	if (service_access_denied(target, c)) {
		tcpmux_reply(b, "-Access denied\r\n");
		return;
	}
	if (cs->tcpmux_plus) {
		ssize_t n = bconn_send(b, "+Go\r\n", 5);
		if (n < 0) {
			bconn_fail(b, "sending +Go", (int)-n);
			return;
		}
		if (n != 5) {
			/* Five bytes do not fit a fresh socket's buffer: not a
			 * client worth waiting for. */
			bconn_end(b, LOG_LVL_INFO, "socket full while sending +Go");
			return;
		}
	}
	conn_who(c, who, sizeof(who));
	log_debug("builtin tcpmux '%s': client %s -> service '%s'", c->svc->name, who, target->name);
	b->c = NULL;
	bconn_release(b); /* stops polling before the fd changes hands */
	/* Back to blocking: the flag belongs to the open file, which the
	 * backend or the spawned program shares, and they expect what accept()
	 * gives them. */
	int fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fl = fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	if (fl < 0)
		log_warning("builtin tcpmux '%s': client %s: cannot make the socket blocking again: %s", c->svc->name,
		            who, strerror(errno));
	/* dispatch_tcpmux() moves the connection's accounting from the tcpmux
	 * service to target. */
	dispatch_tcpmux(target, c);
}

static void tcpmux_request(struct bconn *b, int rc, const char *name)
{
	struct hd *hd = b->hd;
	char who[ADDR_TEXT_MAX + 48];

	switch (rc) {
	case BUILTIN_TCPMUX_HELP:
		b->phase = TM_HELP;
		b->off = b->len = 0;
		b->help_next = 0;
		b->help_done = false;
		bconn_progress(b);
		help_io(b);
		return;
	case BUILTIN_TCPMUX_SERVICE: {
		const struct cfg_service *cs = hd->cfg ? config_find_tcpmux(hd->cfg, name) : NULL;
		struct service *target = cs && cs->builtin != BUILTIN_TCPMUX ? service_find(hd, cs->name) : NULL;
		if (target) {
			tcpmux_handover(b, cs, target);
			return;
		}
		conn_who(b->c, who, sizeof(who));
		log_peer(LOG_LVL_INFO, "builtin tcpmux '%s': client %s asked for unknown service '%s'", b->c->svc->name,
		         who, name);
		tcpmux_reply(b, "-Service not available\r\n");
		return;
	}
	case -ENAMETOOLONG:
		tcpmux_reply(b, "-Service not available\r\n");
		return;
	case -EMSGSIZE:
		tcpmux_reply(b, "-Request too long\r\n");
		return;
	case -ENOMSG:
		tcpmux_reply(b, "-Empty request\r\n");
		return;
	default:
		conn_who(b->c, who, sizeof(who));
		log_peer(LOG_LVL_INFO, "builtin tcpmux '%s': client %s sent a malformed request", b->c->svc->name, who);
		tcpmux_reply(b, "-Bad request\r\n");
		return;
	}
}

/* Read the request without taking a byte past its line: peek, then take
 * exactly up to the LF (or all that was there, into buf, which never holds
 * more than BUILTIN_TCPMUX_LINE_MAX bytes). Bytes left in the socket are
 * the target service's. */
static void tcpmux_read(struct bconn *b)
{
	char name[PROTO_MAX_NAME + 1];
	size_t used;

	if (b->socktype == SOCK_SEQPACKET) {
		ssize_t n = bconn_recv(b, b->buf, BUILTIN_TCPMUX_LINE_MAX, MSG_TRUNC);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			bconn_fail(b, "read", (int)-n);
			return;
		}
		if (n == 0) {
			bconn_end(b, LOG_LVL_DEBUG, "closed before its request");
			return;
		}
		if (n > BUILTIN_TCPMUX_LINE_MAX) {
			tcpmux_request(b, -EMSGSIZE, NULL);
			return;
		}
		int rc = builtin_tcpmux_parse(b->buf, (size_t)n, true, name, sizeof(name), &used);
		/* The record is the request: anything after its line would be
		 * lost with the record, so refuse it. */
		if (rc > 0 && used != (size_t)n)
			rc = -EINVAL;
		tcpmux_request(b, rc, name);
		return;
	}
	for (int round = 0; round < IO_ROUNDS; round++) {
		ssize_t n = bconn_recv(b, b->buf + b->len, BUILTIN_TCPMUX_LINE_MAX - b->len, MSG_PEEK);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			bconn_fail(b, "read", (int)-n);
			return;
		}
		if (n == 0) {
			bconn_end(b, LOG_LVL_DEBUG, "closed before its request");
			return;
		}
		const uint8_t *nl = memchr(b->buf + b->len, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - (b->buf + b->len)) + 1 : (size_t)n;
		n = bconn_recv(b, b->buf + b->len, take, 0);
		if (n <= 0) {
			/* The bytes just peeked are there: only a dying socket fails. */
			bconn_fail(b, "read", n == 0 ? ECONNRESET : (int)-n);
			return;
		}
		b->len += (size_t)n;
		int rc = builtin_tcpmux_parse(b->buf, b->len, false, name, sizeof(name), &used);
		if (rc != BUILTIN_TCPMUX_INCOMPLETE) {
			tcpmux_request(b, rc, name);
			return;
		}
	}
}

static void tcpmux_io(struct bconn *b)
{
	switch (b->phase) {
	case TM_REQUEST:
		tcpmux_read(b);
		return;
	case TM_REPLY:
		reply_io(b);
		return;
	case TM_HELP:
		help_io(b);
		return;
	}
}

static void bconn_io(struct bconn *b, int events)
{
	if (b->lingering) {
		linger_io(b);
		return;
	}
	switch (b->kind) {
	case BUILTIN_ECHO:
		echo_io(b);
		return;
	case BUILTIN_DISCARD:
		discard_io(b);
		return;
	case BUILTIN_CHARGEN:
		chargen_io(b, events);
		return;
	case BUILTIN_DAYTIME:
	case BUILTIN_TIME:
		reply_io(b);
		return;
	case BUILTIN_TCPMUX:
		tcpmux_io(b);
		return;
	case BUILTIN_NONE:
		break;
	}
	bconn_end(b, LOG_LVL_ERROR, "no builtin (internal error)");
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watch what the connection's state needs. */
static void bconn_watch(struct bconn *b)
{
	int want = 0;
	switch (b->lingering ? BUILTIN_DISCARD : b->kind) {
	case BUILTIN_ECHO:
		if (!b->rd_eof && echo_has_room(b))
			want |= UV_READABLE;
		if (b->len > b->off)
			want |= UV_WRITABLE;
		break;
	case BUILTIN_DISCARD:
		want = UV_READABLE;
		break;
	case BUILTIN_CHARGEN:
		want = UV_WRITABLE | (b->rd_eof ? 0 : UV_READABLE);
		break;
	case BUILTIN_TCPMUX:
		want = b->phase == TM_REQUEST ? UV_READABLE : UV_WRITABLE;
		break;
	default:
		want = UV_WRITABLE;
		break;
	}
	if (want == b->events)
		return;
	int rc = want ? uv_poll_start(&b->poll, want, on_poll) : uv_poll_stop(&b->poll);
	if (rc < 0) {
		bconn_fail(b, "poll", -rc);
		return;
	}
	b->events = want;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct bconn *b = h->data;
	if (!b->c)
		return;
	if (status < 0) {
		bconn_fail(b, "poll", -status);
		return;
	}
	bconn_io(b, events);
	if (b->c)
		bconn_watch(b);
}

static void on_timer(uv_timer_t *t)
{
	struct bconn *b = t->data;
	if (!b->c)
		return;
	uint64_t idle = uv_now(b->hd->loop) - b->last_ms;
	if (idle < b->timeout_ms) {
		/* There was traffic since the timer was armed: wait for the rest. */
		uv_timer_start(&b->timer, on_timer, b->timeout_ms - idle, 0);
		return;
	}
	char why[64];
	if (b->lingering) {
		bconn_end(b, LOG_LVL_DEBUG, NULL);
		return;
	}
	if (b->kind == BUILTIN_TCPMUX && b->phase == TM_REQUEST)
		snprintf(why, sizeof(why), "no request within %u s", b->timeout_ms / 1000);
	else
		snprintf(why, sizeof(why), "idle for %u s", b->timeout_ms / 1000);
	bconn_end(b, LOG_LVL_INFO, why);
}

/* What daytime and time send. */
static void prepare_reply(struct bconn *b)
{
	time_t now = time(NULL);
	if (b->kind == BUILTIN_DAYTIME) {
		struct tm tm;
		int n = localtime_r(&now, &tm) ? builtin_daytime_format(&tm, (char *)b->buf, BUILTIN_BUF) : -EINVAL;
		b->len = n > 0 ? (size_t)n : 0;
	} else if (b->kind == BUILTIN_TIME) {
		uint32_t v = htonl(builtin_time_value(now));
		memcpy(b->buf, &v, 4);
		b->len = 4;
	}
}

static void refuse_conn(struct conn *c, const char *why)
{
	char who[ADDR_TEXT_MAX + 48];
	conn_who(c, who, sizeof(who));
	log_peer(LOG_LVL_WARNING, "builtin service '%s': client %s: %s, closing", c->svc ? c->svc->name : "?", who,
	         why);
	if (c->svc)
		service_conn_closed(c->svc, c);
	conn_free(c);
}

void builtin_stream_take(struct hd *hd, struct conn *c)
{
	struct builtins *bs = hd->builtins;
	enum builtin kind = c->svc && c->svc->cfg ? c->svc->cfg->builtin : BUILTIN_NONE;
	char why[96];

	if (!bs) {
		refuse_conn(c, "builtins not initialised (internal error)");
		return;
	}
	if (kind <= BUILTIN_NONE || kind > BUILTIN_TCPMUX) {
		refuse_conn(c, "service has no builtin (internal error)");
		return;
	}
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(why, sizeof(why), "cannot make the socket non-blocking: %s", strerror(errno));
		refuse_conn(c, why);
		return;
	}
	struct bconn *b = malloc(sizeof(*b));
	if (!b) {
		refuse_conn(c, "out of memory");
		return;
	}
	memset(b, 0, offsetof(struct bconn, buf));
	b->hd = hd;
	b->c = c;
	b->kind = kind;
	int type = c->socktype;
	socklen_t tl = sizeof(type);
	if (type != SOCK_STREAM && type != SOCK_SEQPACKET &&
	    (getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET))
		type = SOCK_STREAM;
	b->socktype = type;
	TAILQ_INSERT_TAIL(&bs->conns, b, link);
	bs->nconns++;
	b->listed = true;

	int rc = uv_timer_init(hd->loop, &b->timer);
	if (rc == 0) {
		b->has_timer = true;
		b->timer.data = b;
		rc = uv_poll_init(hd->loop, &b->poll, c->fd);
	}
	if (rc < 0) {
		bconn_fail(b, "cannot watch the socket", -rc);
		return;
	}
	b->has_poll = true;
	b->poll.data = b;
	b->timeout_ms = kind == BUILTIN_TCPMUX ? bs->tcpmux_ms : bs->idle_ms;
	bconn_progress(b);
	uv_timer_start(&b->timer, on_timer, b->timeout_ms, 0);
	prepare_reply(b);
	if (kind == BUILTIN_DAYTIME && b->len == 0) {
		bconn_end(b, LOG_LVL_ERROR, "cannot format the local time");
		return;
	}
	/* Try at once: daytime and time usually finish here, and echo or
	 * tcpmux may find their first bytes already waiting. */
	bconn_io(b, UV_READABLE | UV_WRITABLE);
	if (b->c)
		bconn_watch(b);
}

unsigned builtin_count(const struct hd *hd, const struct service *svc)
{
	const struct builtins *bs = hd->builtins;
	const struct bconn *b;
	unsigned n = 0;
	if (!bs)
		return 0;
	TAILQ_FOREACH(b, &bs->conns, link)
		if (b->c && b->c->svc == svc)
			n++;
	return n;
}

void builtin_service_gone(struct hd *hd, struct service *svc)
{
	struct builtins *bs = hd->builtins;
	if (!bs)
		return;
	for (struct bconn *b = TAILQ_FIRST(&bs->conns), *next; b; b = next) {
		next = TAILQ_NEXT(b, link);
		if (b->c && b->c->svc == svc)
			bconn_end(b, LOG_LVL_INFO, "service removed from the configuration");
	}
}

/* ---- datagrams ---- */

static bool answers(enum builtin k)
{
	return k == BUILTIN_ECHO || k == BUILTIN_CHARGEN || k == BUILTIN_DAYTIME || k == BUILTIN_TIME;
}

/* Is l a UDP listener? Its config entry says; when there is none (cannot
 * happen), assume it is, so the guard errs on the side of silence. */
static bool listener_is_udp(const struct listener *l)
{
	const struct cfg_service *cs = l->svc->cfg;
	if (!is_ip_family(l->addr.ss_family))
		return false;
	for (int i = 0; i < cs->nlisten; i++)
		if (strcmp(cs->listen[i].text, l->text) == 0)
			return cs->listen[i].spec.kind == ADDR_UDP;
	return true;
}

/* Ports of every answering builtin UDP listener, for the loop guard. */
static size_t guard_ports(struct hd *hd, uint16_t *ports, size_t max)
{
	struct listener *x;
	size_t n = 0;
	TAILQ_FOREACH(x, &hd->listeners, link) {
		if (!x->svc || !x->svc->cfg || !answers(x->svc->cfg->builtin) || !listener_is_udp(x))
			continue;
		uint8_t a[16];
		uint16_t port;
		if (!ip_of((const struct sockaddr *)&x->addr, x->addr_len, a, &port))
			continue;
		size_t i = 0;
		while (i < n && ports[i] != port)
			i++;
		if (i == n && n < max)
			ports[n++] = port;
	}
	return n;
}

static uint64_t rng_next(struct builtins *bs)
{
	uint64_t x = bs->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return bs->rng = x;
}

static void guard_note(struct listener *l, enum builtin_guard g, const struct sockaddr *src, socklen_t src_len)
{
	struct builtins *bs = l->hd->builtins;
	uint64_t now = uv_now(l->hd->loop);
	bs->guard_dropped++;
	if (bs->guard_logged && now - bs->guard_log_ms < BUILTIN_GUARD_LOG_MS)
		return;
	char a[ADDR_TEXT_MAX];
	if (g == BUILTIN_GUARD_UNNAMED)
		snprintf(a, sizeof(a), "unix:(unnamed)"); /* recvfrom() gave no address at all */
	else if (addr_format(src, src_len, a, sizeof(a)) < 0)
		snprintf(a, sizeof(a), "(address too long)");
	log_peer(LOG_LVL_NOTICE,
	         "builtin %s '%s' on %s: %llu datagram(s) left unanswered since the last report (last from %s: %s)",
	         kind_name(l->svc->cfg->builtin), l->svc->name, l->display, (unsigned long long)bs->guard_dropped, a,
	         builtin_guard_name(g));
	bs->guard_dropped = 0;
	bs->guard_log_ms = now;
	bs->guard_logged = true;
}

/* Read and drop what is queued (nothing to answer with). */
static void dgram_drain(struct listener *l)
{
	uint8_t b;
	for (int i = 0; i < BUILTIN_DGRAM_BATCH; i++)
		if (recv(l->fd, &b, 1, MSG_DONTWAIT) < 0 && errno != EINTR && errno != ECONNREFUSED)
			return;
}

void builtin_dgram_readable(struct listener *l)
{
	struct hd *hd = l->hd;
	struct builtins *bs = hd->builtins;
	enum builtin kind = l->svc && l->svc->cfg ? l->svc->cfg->builtin : BUILTIN_NONE;
	uint16_t ports[GUARD_PORTS_MAX];
	size_t nports = 0;

	if (!bs || !answers(kind)) {
		/* discard, or nothing sensible to do: the datagrams still have to
		 * go, or the level-triggered poll would spin. */
		if (!bs || kind != BUILTIN_DISCARD)
			log_peer(LOG_LVL_ERROR, "listener %s: datagrams for builtin %s cannot be answered (internal error)",
			         l->display, kind_name(kind));
		dgram_drain(l);
		return;
	}
	nports = guard_ports(hd, ports, GUARD_PORTS_MAX);
	for (int i = 0; i < BUILTIN_DGRAM_BATCH; i++) {
		struct sockaddr_storage src;
		socklen_t src_len = sizeof(src);
		ssize_t n = recvfrom(l->fd, bs->dgram, sizeof(bs->dgram), MSG_DONTWAIT | MSG_TRUNC,
		                     (struct sockaddr *)&src, &src_len);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
				continue; /* an ICMP error for an earlier reply: that client is gone */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_peer(LOG_LVL_WARNING, "builtin %s '%s' on %s: read: %s", kind_name(kind), l->svc->name,
				         l->display, strerror(errno));
			return;
		}
		enum builtin_guard g =
			builtin_dgram_guard((struct sockaddr *)&src, src_len, (struct sockaddr *)&l->addr, l->addr_len, ports,
		                        nports);
		if (g != BUILTIN_GUARD_OK) {
			guard_note(l, g, (struct sockaddr *)&src, src_len);
			continue;
		}
		/* The service's access rules and rates, per datagram. */
		if (!service_admit_datagram(l->svc, (struct sockaddr *)&src, src_len))
			continue;
		const void *reply = bs->dgram;
		size_t rlen = 0;
		char line[BUILTIN_DAYTIME_MAX];
		uint32_t tv;
		time_t now;
		struct tm tm;
		switch (kind) {
		case BUILTIN_ECHO:
			if ((size_t)n > sizeof(bs->dgram))
				continue; /* truncated: cannot be returned as it came */
			rlen = (size_t)n;
			break;
		case BUILTIN_CHARGEN:
			reply = bs->chargen;
			rlen = (size_t)(rng_next(bs) % (BUILTIN_DGRAM_CHARGEN_MAX + 1));
			break;
		case BUILTIN_DAYTIME: {
			now = time(NULL);
			int k = localtime_r(&now, &tm) ? builtin_daytime_format(&tm, line, sizeof(line)) : -EINVAL;
			if (k <= 0)
				continue;
			reply = line;
			rlen = (size_t)k;
			break;
		}
		case BUILTIN_TIME:
			tv = htonl(builtin_time_value(time(NULL)));
			reply = &tv;
			rlen = 4;
			break;
		default:
			continue;
		}
		if (sendto(l->fd, reply, rlen, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&src, src_len) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			/* The reply is lost, as a datagram may be; the client is
			 * gone or unreachable. */
			char a[ADDR_TEXT_MAX];
			int e = errno;
			if (addr_format((struct sockaddr *)&src, src_len, a, sizeof(a)) < 0)
				snprintf(a, sizeof(a), "(address too long)");
			log_peer(LOG_LVL_DEBUG, "builtin %s '%s' on %s: reply to %s: %s", kind_name(kind), l->svc->name,
			         l->display, a, strerror(e));
		}
	}
}

/* ---- life cycle ---- */

int builtin_init(struct hd *hd)
{
	struct builtins *bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	TAILQ_INIT(&bs->conns);
	bs->idle_ms = BUILTIN_IDLE_MS;
	bs->tcpmux_ms = BUILTIN_TCPMUX_TIMEOUT_MS;
	uint32_t pos = 0;
	builtin_chargen_fill(&pos, bs->chargen, sizeof(bs->chargen));
	bs->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	if (bs->rng == 0)
		bs->rng = 1;
	/* Read the time zone now: localtime_r() then never opens
	 * /etc/localtime on the loop (nor after a chroot). */
	tzset();
	hd->builtins = bs;
	return 0;
}

void builtin_set_timeouts(struct hd *hd, unsigned idle_ms, unsigned tcpmux_ms)
{
	if (!hd->builtins)
		return;
	if (idle_ms)
		hd->builtins->idle_ms = idle_ms;
	if (tcpmux_ms)
		hd->builtins->tcpmux_ms = tcpmux_ms;
}

void builtin_close_all(struct hd *hd)
{
	struct builtins *bs = hd->builtins;
	if (!bs)
		return;
	if (bs->nconns)
		log_info("closing %u builtin connection(s)", bs->nconns);
	struct bconn *b;
	while ((b = TAILQ_FIRST(&bs->conns)))
		bconn_end(b, LOG_LVL_DEBUG, NULL);
	free(bs);
	hd->builtins = NULL;
}
