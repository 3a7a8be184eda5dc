/* handoffctl: the administration tool for handoffd.
 *
 *   handoffctl [-s PATH] [--json] status
 *   handoffctl [-s PATH] drain ID | drain id:N | drain pid:N
 *   handoffctl [-s PATH] reload
 *
 * It speaks the control protocol (src/common/proto.h) directly, one request
 * per run over one SOCK_SEQPACKET connection, and links the shared wire code
 * rather than libhandoff: an admin is not a backend.
 *
 * Exit codes (documented in handoffctl(8)):
 *   0 done; 1 handoffd refused or failed the request, or replied with
 *   something malformed, or not in time; 2 usage error; 3 cannot connect.
 *
 * Nothing here trusts the reply more than it must: every message goes
 * through proto_decode(), the channel takes no fds (proto_recv closes any
 * that come), the status reply is capped in size, strings are escaped
 * before they reach a terminal or a JSON document, and the whole exchange
 * has a deadline so a wedged daemon cannot hang a script.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "proto.h"

#define DEFAULT_SOCKET "/run/handoffd/control.sock"
#define REPLY_TIMEOUT_MS 10000
#define REQUEST_SEQ 1u
/* The most status records we collect: far above any real daemon's count,
 * low enough that a broken one cannot make us eat the machine. */
#define MAX_RECORDS 1000000u

enum exit_code {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

/* ---- messages ---- */

static void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void verrmsg(const char *fmt, va_list ap)
{
	fputs("handoffctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void errmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrmsg(fmt, ap);
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: handoffctl [-s PATH] [--json] status\n"
	        "       handoffctl [-s PATH] drain ID | id:N | pid:N\n"
	        "       handoffctl [-s PATH] reload\n"
	        "       handoffctl [-s PATH] upgrade\n"
	        "\n"
	        "Administer a running handoffd over its control socket.\n"
	        "\n"
	        "Commands:\n"
	        "  status         show the daemon, its services, listeners and backends\n"
	        "  drain TARGET   stop sending connections to a backend; TARGET is id:N\n"
	        "                 (backend id, as status shows), pid:N (every backend of\n"
	        "                 that process), or N (a backend id, else a pid)\n"
	        "  reload         re-read the configuration (like SIGHUP); a broken\n"
	        "                 configuration is refused and its errors printed\n"
	        "  upgrade        start a new handoffd (the executable now installed)\n"
	        "                 that takes over every socket without refusing a\n"
	        "                 connection; waits until it serves\n"
	        "\n"
	        "Options:\n"
	        "  -s, --socket PATH  control socket (default: $HANDOFF_SOCKET, else\n"
	        "                     %s); @NAME is an abstract socket\n"
	        "      --json         status as one JSON object\n"
	        "  -h, --help         show this help and exit\n"
	        "  -V, --version      show the version and exit\n"
	        "\n"
	        "Exit status: 0 ok, 1 refused or failed, 2 usage error, 3 cannot connect.\n",
	        DEFAULT_SOCKET);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrmsg(fmt, ap);
	va_end(ap);
	fputs("Try 'handoffctl --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if the
 * bytes there are not one (overlong forms, surrogates and values above
 * U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0; /* a continuation byte, or not UTF-8 at all */
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Copy s into buf (size > 0) with every control character and every byte
 * that is not valid UTF-8 replaced by '?', so that text from the daemon
 * cannot drive the terminal. Newlines and tabs are kept only when
 * keep_lines is set (multi-line error texts). */
static const char *printable(const char *s, char *buf, size_t size, bool keep_lines)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n = 0;

	while (left && n + 1 < size) {
		unsigned char c = *p;
		size_t len = utf8_seq(p, left);
		/* U+0080..U+009F are control characters too (C1: CSI and such). */
		bool c1 = len == 2 && c == 0xc2 && p[1] < 0xa0;
		if (len > 1 && !c1 && n + len < size) {
			memcpy(buf + n, p, len);
			n += len;
		} else {
			bool ok = len == 1 && c >= 0x20 && c != 0x7f;
			if (keep_lines && (c == '\n' || c == '\t'))
				ok = true;
			buf[n++] = ok ? (char)c : '?';
			len = len ? len : 1;
		}
		p += len;
		left -= len;
	}
	buf[n] = '\0';
	return buf;
}

/* Columns a printable() string takes on a terminal: one per code point. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* ---- the connection ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct ctl {
	int fd;
	const char *path;
	uint64_t deadline_ms; /* the whole exchange must finish by then */
	uint8_t buf[PROTO_MAX_MSG + 1];
	struct proto_msg msg; /* the last message received; points into buf */
};

/* Connect to the control socket. Returns 0 or an exit code (message
 * printed). */
static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sa;
	socklen_t salen;

	c->fd = -1;
	int rc = addr_unix(c->path, &sa, &salen);
	if (rc < 0) {
		errmsg("cannot connect to %s: %s", c->path, strerror(-rc));
		return EXIT_CONNECT;
	}

	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		errmsg("cannot connect to %s: socket: %s", c->path, strerror(errno));
		return EXIT_CONNECT;
	}
	/* A daemon that stopped reading must not hang us: the send timeout
	 * bounds both connect() (a full listen backlog makes a Unix connect
	 * wait) and the send of the request. */
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_MS / 1000};
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->deadline_ms = now_ms() + REPLY_TIMEOUT_MS;
	if (connect(c->fd, (struct sockaddr *)&sa, salen) < 0) {
		if (errno == EAGAIN)
			errmsg("cannot connect to %s: handoffd did not accept the connection within %d seconds",
			       c->path, REPLY_TIMEOUT_MS / 1000);
		else
			errmsg("cannot connect to %s: %s", c->path, strerror(errno));
		close(c->fd);
		c->fd = -1;
		return EXIT_CONNECT;
	}
	return 0;
}

static void ctl_close(struct ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void print_refusal(const struct proto_msg *m);

/* After a failed send: handoffd may have refused the connection at accept
 * (a limit) and closed; its ERROR is still readable and says why. Prints
 * it and returns true if so. */
static bool refusal_pending(struct ctl *c)
{
	uint8_t buf[PROTO_MAX_MSG + 1];
	int fds[PROTO_MAX_FDS];
	unsigned nfds = 0;
	struct proto_msg m;
	ssize_t n = proto_recv(c->fd, buf, sizeof(buf), fds, 0, &nfds, false);
	if (n <= 0 || proto_decode(buf, (size_t)n, nfds, PROTO_FROM_DAEMON, &m, NULL) < 0 || m.type != PROTO_ERROR)
		return false;
	print_refusal(&m);
	return true;
}

/* Send a finished request. Returns 0 or EXIT_FAIL (message printed). */
static int ctl_request(struct ctl *c, struct proto_buf *b)
{
	int len = proto_finish(b, 0);
	if (len < 0) {
		errmsg("cannot build the request: %s", strerror(-len));
		return EXIT_FAIL;
	}
	int r = proto_send(c->fd, b->data, (size_t)len, NULL, 0, true);
	if (r < 0) {
		if (r == -EAGAIN || r == -EWOULDBLOCK)
			errmsg("handoffd did not take the request within %d seconds", REPLY_TIMEOUT_MS / 1000);
		else if (!refusal_pending(c))
			errmsg("cannot send the request to handoffd: %s", strerror(-r));
		return EXIT_FAIL;
	}
	return 0;
}

/* Print a PROTO_ERROR reply the way every command reports a refusal. */
static void print_refusal(const struct proto_msg *m)
{
	char text[PROTO_MAX_TEXT + 1], safe[PROTO_MAX_TEXT + 1];
	uint32_t code = proto_u32(m, PA_ERRCODE);

	proto_str(m, PA_TEXT, text, sizeof(text));
	if (text[0]) {
		errmsg("%s", printable(text, safe, sizeof(safe), true));
		return;
	}
	/* The daemon always sends a text; this is only a fallback. */
	switch (code) {
	case PE_NOT_ADMIN:
		errmsg("permission denied: not an administrator of handoffd");
		break;
	case PE_NOT_FOUND:
		errmsg("no such backend");
		break;
	case PE_CONFIG:
		errmsg("the new configuration was refused");
		break;
	case PE_SHUTDOWN:
		errmsg("handoffd is shutting down");
		break;
	default:
		errmsg("handoffd refused the request (error code %" PRIu32 ")", code);
		break;
	}
}

/* Receive and decode the next reply into c->msg. A PROTO_ERROR is printed
 * and reported as EXIT_FAIL, whatever seq it carries (the daemon may refuse
 * before it has read ours). Returns 0 or an exit code (message printed);
 * what names the exchange for messages ("status reply"). */
static int ctl_reply(struct ctl *c, const char *what)
{
	int fds[PROTO_MAX_FDS];
	unsigned nfds = 0;
	const char *why = NULL;

	uint64_t now = now_ms();
	if (now >= c->deadline_ms)
		goto timeout;
	uint64_t left = c->deadline_ms - now;
	struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		errmsg("cannot set a receive timeout: %s", strerror(errno));
		return EXIT_FAIL;
	}

	/* max_fds 0: this channel takes no descriptors; proto_recv closes any
	 * that arrive and reports the message as malformed. */
	ssize_t n = proto_recv(c->fd, c->buf, sizeof(c->buf), fds, 0, &nfds, true);
	if (n == -EAGAIN || n == -EWOULDBLOCK)
		goto timeout;
	if (n == 0 || n == -ECONNRESET) {
		errmsg("handoffd closed the connection before the %s was complete", what);
		return EXIT_FAIL;
	}
	if (n == -EBADMSG) {
		errmsg("malformed %s from handoffd: message truncated or carrying file descriptors", what);
		return EXIT_FAIL;
	}
	if (n < 0) {
		errmsg("cannot receive the %s from handoffd: %s", what, strerror((int)-n));
		return EXIT_FAIL;
	}
	int r = proto_decode(c->buf, (size_t)n, nfds, PROTO_FROM_DAEMON, &c->msg, &why);
	if (r < 0) {
		/* Name the message type when the header got that far. */
		char type[48] = "";
		if (c->msg.type && strcmp(proto_type_name(c->msg.type), "unknown") != 0)
			snprintf(type, sizeof(type), " (in a %s message)", proto_type_name(c->msg.type));
		else if (c->msg.type)
			snprintf(type, sizeof(type), " (message type %u)", c->msg.type);
		errmsg("malformed %s from handoffd: %s%s", what, why ? why : strerror(-r), type);
		return EXIT_FAIL;
	}
	if (c->msg.type == PROTO_ERROR) {
		print_refusal(&c->msg);
		return EXIT_FAIL;
	}
	if (c->msg.seq != REQUEST_SEQ) {
		errmsg("malformed %s from handoffd: %s message answers request %" PRIu32 ", not %u",
		       what, proto_type_name(c->msg.type), c->msg.seq, REQUEST_SEQ);
		return EXIT_FAIL;
	}
	return 0;

timeout:
	errmsg("no complete %s from handoffd within %d seconds", what, REPLY_TIMEOUT_MS / 1000);
	return EXIT_FAIL;
}

/* ---- status: collecting ---- */

struct st_daemon {
	uint32_t pid, nfds, control;
	uint64_t uptime_ms, accepted, delivered, redelivered, refused;
};

/* Service attributes added with the inetd/xinetd work (PA_MODE..PA_LIMITED).
 * A daemon that predates them does not send them: has records which came,
 * so the table shows "-" and the JSON leaves the field out rather than
 * claim a 0. */
#define SVC_HAS(e, attr) (((e)->has >> ((attr) - PA_MODE)) & 1u)

struct st_service {
	char name[PROTO_MAX_NAME + 1];
	char balance[PROTO_MAX_NAME + 1];
	char mode[128];
	uint64_t accepted, delivered, redelivered, refused; /* refused: backend registrations */
	uint32_t pending, paused, backends;
	/* Connections refused, by reason. */
	uint64_t refused_access, refused_rate, refused_source, refused_nobackend, refused_spawn;
	uint64_t spawned;
	uint32_t children, live, limited;
	uint32_t has; /* bit (attr - PA_MODE) for each of PA_MODE..PA_LIMITED received */
};

struct st_listener {
	char service[PROTO_MAX_NAME + 1];
	char address[PROTO_MAX_TEXT + 1];
	uint32_t paused;
	char state[32]; /* from PA_MODE when the daemon sends it */
};

struct st_backend {
	uint64_t id, delivered;
	char service[PROTO_MAX_NAME + 1];
	uint32_t pid, uid, gid, capacity, inflight, unacked, draining;
	bool has_uid;
	char user[64]; /* name for uid, "" when it has none */
};

struct status {
	struct st_daemon daemon;
	struct st_service *services;
	size_t nservices, services_cap;
	struct st_listener *listeners;
	size_t nlisteners, listeners_cap;
	struct st_backend *backends;
	size_t nbackends, backends_cap;
};

static void status_free(struct status *s)
{
	free(s->services);
	free(s->listeners);
	free(s->backends);
	memset(s, 0, sizeof(*s));
}

/* Append one zeroed element of size elem to *v (count *n, capacity *cap).
 * Returns the new element, or NULL when out of memory. */
static void *grow(void *v, size_t *n, size_t *cap, size_t elem)
{
	void **vp = v;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void *nv = reallocarray(*vp, ncap, elem);
		if (!nv)
			return NULL;
		*vp = nv;
		*cap = ncap;
	}
	void *e = (char *)*vp + *n * elem;
	memset(e, 0, elem);
	(*n)++;
	return e;
}

static int status_add(struct status *s, const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_ST_SERVICE: {
		struct st_service *e = grow(&s->services, &s->nservices, &s->services_cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		proto_str(m, PA_SERVICE, e->name, sizeof(e->name));
		proto_str(m, PA_BALANCE, e->balance, sizeof(e->balance));
		e->accepted = proto_u64(m, PA_ACCEPTED);
		e->delivered = proto_u64(m, PA_DELIVERED);
		e->redelivered = proto_u64(m, PA_REDELIVERED);
		e->refused = proto_u64(m, PA_REFUSED);
		e->pending = proto_u32(m, PA_PENDING);
		e->paused = proto_u32(m, PA_PAUSED);
		e->backends = proto_u32(m, PA_BACKENDS);
		proto_str(m, PA_MODE, e->mode, sizeof(e->mode));
		e->refused_access = proto_u64(m, PA_REFUSED_ACCESS);
		e->refused_rate = proto_u64(m, PA_REFUSED_RATE);
		e->refused_source = proto_u64(m, PA_REFUSED_SOURCE);
		e->refused_nobackend = proto_u64(m, PA_REFUSED_NOBACKEND);
		e->refused_spawn = proto_u64(m, PA_REFUSED_SPAWN);
		e->spawned = proto_u64(m, PA_SPAWNED);
		e->children = proto_u32(m, PA_CHILDREN);
		e->live = proto_u32(m, PA_LIVE);
		e->limited = proto_u32(m, PA_LIMITED);
		for (unsigned a = PA_MODE; a <= PA_LIMITED; a++)
			if (proto_has(m, (enum proto_attr)a))
				e->has |= 1u << (a - PA_MODE);
		return 0;
	}
	case PROTO_ST_LISTENER: {
		struct st_listener *e = grow(&s->listeners, &s->nlisteners, &s->listeners_cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		proto_str(m, PA_SERVICE, e->service, sizeof(e->service));
		proto_str(m, PA_TEXT, e->address, sizeof(e->address));
		e->paused = proto_u32(m, PA_PAUSED);
		proto_str(m, PA_MODE, e->state, sizeof(e->state));
		return 0;
	}
	case PROTO_ST_BACKEND: {
		struct st_backend *e = grow(&s->backends, &s->nbackends, &s->backends_cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->id = proto_u64(m, PA_BACKEND_ID);
		proto_str(m, PA_SERVICE, e->service, sizeof(e->service));
		e->pid = proto_u32(m, PA_PID);
		e->has_uid = proto_has(m, PA_UID);
		e->uid = proto_u32(m, PA_UID);
		e->gid = proto_u32(m, PA_GID);
		e->capacity = proto_u32(m, PA_CAPACITY);
		e->inflight = proto_u32(m, PA_INFLIGHT);
		e->unacked = proto_u32(m, PA_UNACKED);
		e->delivered = proto_u64(m, PA_DELIVERED);
		e->draining = proto_u32(m, PA_DRAINING);
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/* Read the whole status reply into *s: ST_DAEMON first, then services,
 * listeners and backends in any order, then ST_END. Returns 0 or an exit
 * code (message printed). */
static int status_collect(struct ctl *c, struct status *s)
{
	static const char what[] = "status reply";
	size_t records = 0;
	int r;

	if ((r = ctl_reply(c, what)))
		return r;
	if (c->msg.type != PROTO_ST_DAEMON) {
		errmsg("malformed %s from handoffd: it begins with %s instead of ST_DAEMON", what,
		       proto_type_name(c->msg.type));
		return EXIT_FAIL;
	}
	s->daemon.pid = proto_u32(&c->msg, PA_PID);
	s->daemon.uptime_ms = proto_u64(&c->msg, PA_UPTIME_MS);
	s->daemon.nfds = proto_u32(&c->msg, PA_NFDS);
	s->daemon.control = proto_u32(&c->msg, PA_CONTROL);
	s->daemon.accepted = proto_u64(&c->msg, PA_ACCEPTED);
	s->daemon.delivered = proto_u64(&c->msg, PA_DELIVERED);
	s->daemon.redelivered = proto_u64(&c->msg, PA_REDELIVERED);
	s->daemon.refused = proto_u64(&c->msg, PA_REFUSED);

	for (;;) {
		if ((r = ctl_reply(c, what)))
			return r;
		switch (c->msg.type) {
		case PROTO_ST_END:
			return 0;
		case PROTO_ST_SERVICE:
		case PROTO_ST_LISTENER:
		case PROTO_ST_BACKEND:
			if (++records > MAX_RECORDS) {
				errmsg("malformed %s from handoffd: more than %u records", what, MAX_RECORDS);
				return EXIT_FAIL;
			}
			if (status_add(s, &c->msg) < 0) {
				errmsg("out of memory reading the %s", what);
				return EXIT_FAIL;
			}
			break;
		default:
			errmsg("malformed %s from handoffd: unexpected %s message", what,
			       proto_type_name(c->msg.type));
			return EXIT_FAIL;
		}
	}
}

/* Fill in the user name of every backend's uid (once per distinct uid). */
static void status_resolve_users(struct status *s)
{
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t bufsize = sz > 0 ? (size_t)sz : 16384;
	char *buf = NULL;

	for (size_t i = 0; i < s->nbackends; i++) {
		struct st_backend *b = &s->backends[i];
		if (!b->has_uid)
			continue;
		bool cached = false;
		for (size_t j = 0; j < i && !cached; j++) {
			if (s->backends[j].has_uid && s->backends[j].uid == b->uid) {
				memcpy(b->user, s->backends[j].user, sizeof(b->user));
				cached = true;
			}
		}
		if (cached)
			continue;
		for (;;) {
			if (!buf && !(buf = malloc(bufsize)))
				break;
			struct passwd pw, *res = NULL;
			int e = getpwuid_r(b->uid, &pw, buf, bufsize, &res);
			if (e == ERANGE && bufsize < (1u << 20)) {
				free(buf);
				buf = NULL;
				bufsize *= 2;
				continue;
			}
			if (e == 0 && res && res->pw_name && strlen(res->pw_name) < sizeof(b->user))
				memcpy(b->user, res->pw_name, strlen(res->pw_name) + 1);
			break;
		}
	}
	free(buf);
}

/* ---- status: tables ---- */

#define MAX_COLS 12

struct table {
	unsigned ncols;
	const char *head[MAX_COLS];
	bool right[MAX_COLS]; /* right-align (numbers) */
	char **cells;         /* nrows * ncols, row-major */
	char **notes;         /* nrows: a line printed under the row, from the second column; or NULL */
	size_t nrows, cap;
	bool oom;
};

static void table_init(struct table *t, unsigned ncols, const char *const *head, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	for (unsigned i = 0; i < ncols; i++) {
		t->head[i] = head[i];
		t->right[i] = align[i] == 'r';
	}
}

/* Add one row; the variadic arguments are ncols format strings' results,
 * given as already formatted strings (NULL counts as ""). */
static void table_row(struct table *t, ...)
{
	if (t->oom)
		return;
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = reallocarray(t->cells, ncap * t->ncols, sizeof(char *));
		if (!nc) {
			t->oom = true;
			return;
		}
		t->cells = nc;
		char **nn = reallocarray(t->notes, ncap, sizeof(char *));
		if (!nn) {
			t->oom = true;
			return;
		}
		t->notes = nn;
		t->cap = ncap;
	}
	t->notes[t->nrows] = NULL;
	va_list ap;
	va_start(ap, t);
	char **row = t->cells + t->nrows * t->ncols;
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		char safe[PROTO_MAX_TEXT + 1];
		row[i] = strdup(printable(s ? s : "", safe, sizeof(safe), false));
		if (!row[i])
			t->oom = true;
	}
	va_end(ap);
	t->nrows++;
}

/* Set the note of the last row (text as printable() makes it). */
static void table_note(struct table *t, const char *note)
{
	if (t->oom || t->nrows == 0 || !note || !*note)
		return;
	char safe[PROTO_MAX_TEXT + 1];
	free(t->notes[t->nrows - 1]);
	t->notes[t->nrows - 1] = strdup(printable(note, safe, sizeof(safe), false));
	if (!t->notes[t->nrows - 1])
		t->oom = true;
}

static void table_print(struct table *t, const char *title)
{
	size_t width[MAX_COLS];

	printf("%s\n", title);
	if (t->nrows == 0) {
		printf("  (none)\n");
		return;
	}
	for (unsigned i = 0; i < t->ncols; i++)
		width[i] = text_width(t->head[i]);
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];
			size_t w = cell ? text_width(cell) : 0;
			if (w > width[i])
				width[i] = w;
		}
	for (size_t r = 0; r <= t->nrows; r++) {
		fputs("  ", stdout);
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *cell = r == 0 ? t->head[i] : t->cells[(r - 1) * t->ncols + i];
			bool last = i + 1 == t->ncols;
			if (!cell)
				cell = "";
			size_t pad = width[i] - text_width(cell);
			if (t->right[i])
				printf("%*s%s", (int)pad, "", cell);
			else if (last)
				fputs(cell, stdout);
			else
				printf("%s%*s", cell, (int)pad, "");
			if (!last)
				fputs("  ", stdout);
		}
		fputc('\n', stdout);
		if (r > 0 && t->notes[r - 1])
			printf("  %*s  %s\n", (int)width[0], "", t->notes[r - 1]);
	}
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	for (size_t i = 0; i < t->nrows; i++)
		free(t->notes[i]);
	free(t->cells);
	free(t->notes);
	memset(t, 0, sizeof(*t));
}

/* Small fixed-size number cells for table rows. */
struct num {
	char s[24];
};

static struct num u64s(uint64_t v)
{
	struct num n;
	snprintf(n.s, sizeof(n.s), "%" PRIu64, v);
	return n;
}

static void format_uptime(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = ms / 1000;
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
	if (d)
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", d, h, m);
	else if (h)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", h, m, s % 60);
	else if (m)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
}

/* Connections a service refused, all reasons together. */
static uint64_t svc_refused_conns(const struct st_service *e)
{
	return e->refused_access + e->refused_rate + e->refused_source + e->refused_nobackend + e->refused_spawn;
}

/* Append "; " (unless first) and a formatted part to buf (size > 0);
 * a part that does not fit is cut, never overrun. */
static void note_add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note_add(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n && n + 2 < size) {
		memcpy(buf + n, "; ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* The line under a service's row: whatever is not zero among programs
 * started, connections refused (by reason), redeliveries and refused
 * registrations. "" when all are zero. */
static void svc_note(const struct st_service *e, char *buf, size_t size)
{
	buf[0] = '\0';
	if (e->spawned || e->children)
		note_add(buf, size, "spawned %" PRIu64 " (%" PRIu32 " running)", e->spawned, e->children);
	uint64_t refused = svc_refused_conns(e);
	if (refused) {
		const uint64_t count[] = {e->refused_access, e->refused_rate, e->refused_source, e->refused_nobackend,
		                          e->refused_spawn};
		static const char *const why[] = {"access", "rate", "per source", "no backend", "spawn failed"};
		note_add(buf, size, "refused %" PRIu64 " connection%s:", refused, refused == 1 ? "" : "s");
		for (size_t i = 0; i < sizeof(count) / sizeof(count[0]); i++) {
			size_t n = strlen(buf);
			if (count[i])
				snprintf(buf + n, size - n, "%s %" PRIu64 " %s", buf[n - 1] == ':' ? "" : ",", count[i],
				         why[i]);
		}
	}
	if (e->redelivered)
		note_add(buf, size, "redelivered %" PRIu64, e->redelivered);
	if (e->refused)
		note_add(buf, size, "%" PRIu64 " backend registration%s refused", e->refused, e->refused == 1 ? "" : "s");
}

static int status_print_text(const struct status *s)
{
	const struct st_daemon *d = &s->daemon;
	char up[32];
	bool oom = false;
	uint64_t refused = 0;

	for (size_t i = 0; i < s->nservices; i++)
		refused += svc_refused_conns(&s->services[i]);
	format_uptime(d->uptime_ms, up, sizeof(up));
	printf("handoffd pid %" PRIu32 ", up %s, %" PRIu32 " open fds, %" PRIu32 " control connection%s\n",
	       d->pid, up, d->nfds, d->control, d->control == 1 ? "" : "s");
	printf("connections: %" PRIu64 " accepted, %" PRIu64 " delivered, %" PRIu64 " redelivered, %" PRIu64
	       " refused\n",
	       d->accepted, d->delivered, d->redelivered, refused);
	if (d->refused)
		printf("backend registrations refused: %" PRIu64 "\n", d->refused);
	putchar('\n');

	static const char *const svc_head[] = {"SERVICE", "MODE", "BALANCE", "BACKENDS", "LIVE", "PENDING",
	                                       "STATE", "ACCEPTED", "DELIVERED"};
	struct table t;
	table_init(&t, 9, svc_head, "lllrrrlrr");
	for (size_t i = 0; i < s->nservices; i++) {
		const struct st_service *e = &s->services[i];
		char note[PROTO_MAX_TEXT + 1];
		/* limited: paused by a limit, for a bounded time; paused: no
		 * backend has room (clients wait in the backlog). */
		const char *state = e->limited ? "limited" : e->paused ? "paused" : "accepting";
		struct num live = {"-"};
		if (SVC_HAS(e, PA_LIVE))
			live = u64s(e->live);
		table_row(&t, e->name, e->mode[0] ? e->mode : "-", e->balance, u64s(e->backends).s, live.s,
		          u64s(e->pending).s, state, u64s(e->accepted).s, u64s(e->delivered).s);
		svc_note(e, note, sizeof(note));
		table_note(&t, note);
	}
	oom |= t.oom;
	table_print(&t, "SERVICES");
	table_free(&t);
	putchar('\n');

	static const char *const lis_head[] = {"SERVICE", "ADDRESS", "STATE"};
	table_init(&t, 3, lis_head, "lll");
	for (size_t i = 0; i < s->nlisteners; i++) {
		const struct st_listener *e = &s->listeners[i];
		table_row(&t, e->service, e->address, e->state[0] ? e->state : e->paused ? "paused" : "accepting");
	}
	oom |= t.oom;
	table_print(&t, "LISTENERS");
	table_free(&t);
	putchar('\n');

	static const char *const be_head[] = {"ID", "SERVICE", "PID", "USER", "CAPACITY", "INFLIGHT",
	                                      "UNACKED", "DELIVERED", "STATE"};
	table_init(&t, 9, be_head, "rlrlrrrrl");
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct st_backend *e = &s->backends[i];
		/* The user name, else the bare uid, else nothing. */
		struct num uid = {""};
		if (e->has_uid)
			uid = u64s(e->uid);
		const char *user = e->user[0] ? e->user : uid.s;
		table_row(&t, u64s(e->id).s, e->service, u64s(e->pid).s, user, u64s(e->capacity).s,
		          u64s(e->inflight).s, u64s(e->unacked).s, u64s(e->delivered).s,
		          e->draining ? "draining" : "active");
	}
	oom |= t.oom;
	table_print(&t, "BACKENDS");
	table_free(&t);

	if (oom) {
		errmsg("out of memory formatting the status");
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- status: JSON ---- */

/* Print s as a JSON string. Bytes that are not valid UTF-8 (a Unix socket
 * path can hold any) become U+FFFD so the document stays valid. */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	putchar('"');
	while (n) {
		unsigned char c = *p;
		size_t len;
		if (c == '"' || c == '\\') {
			putchar('\\');
			putchar(c);
			len = 1;
		} else if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n': fputs("\\n", stdout); break;
			case '\t': fputs("\\t", stdout); break;
			case '\r': fputs("\\r", stdout); break;
			default: printf("\\u%04x", c); break;
			}
			len = 1;
		} else if ((len = utf8_seq(p, n)) > 0) {
			fwrite(p, 1, len, stdout);
		} else {
			fputs("\\ufffd", stdout);
			len = 1;
		}
		p += len;
		n -= len;
	}
	putchar('"');
}

static const char *json_bool(uint32_t v)
{
	return v ? "true" : "false";
}

static int status_print_json(const struct status *s)
{
	const struct st_daemon *d = &s->daemon;

	printf("{\"daemon\":{\"pid\":%" PRIu32 ",\"uptime_ms\":%" PRIu64 ",\"nfds\":%" PRIu32
	       ",\"control\":%" PRIu32 ",\"accepted\":%" PRIu64 ",\"delivered\":%" PRIu64
	       ",\"redelivered\":%" PRIu64 ",\"refused\":%" PRIu64 "},\n",
	       d->pid, d->uptime_ms, d->nfds, d->control, d->accepted, d->delivered, d->redelivered,
	       d->refused);

	fputs("\"services\":[", stdout);
	for (size_t i = 0; i < s->nservices; i++) {
		const struct st_service *e = &s->services[i];
		fputs(i ? ",\n  {\"name\":" : "\n  {\"name\":", stdout);
		json_str(e->name);
		fputs(",\"balance\":", stdout);
		json_str(e->balance);
		if (SVC_HAS(e, PA_MODE)) {
			fputs(",\"mode\":", stdout);
			json_str(e->mode);
		}
		printf(",\"backends\":%" PRIu32 ",\"pending\":%" PRIu32 ",\"paused\":%s,\"accepted\":%" PRIu64
		       ",\"delivered\":%" PRIu64 ",\"redelivered\":%" PRIu64 ",\"refused\":%" PRIu64,
		       e->backends, e->pending, json_bool(e->paused), e->accepted, e->delivered,
		       e->redelivered, e->refused);
		/* The newer attributes: each only when the daemon sent it. */
		const struct {
			enum proto_attr a;
			const char *key;
			uint64_t v;
		} extra[] = {
			{PA_LIVE, "live", e->live},
			{PA_REFUSED_ACCESS, "refused_access", e->refused_access},
			{PA_REFUSED_RATE, "refused_rate", e->refused_rate},
			{PA_REFUSED_SOURCE, "refused_source", e->refused_source},
			{PA_REFUSED_NOBACKEND, "refused_nobackend", e->refused_nobackend},
			{PA_REFUSED_SPAWN, "refused_spawn", e->refused_spawn},
			{PA_SPAWNED, "spawned", e->spawned},
			{PA_CHILDREN, "children", e->children},
		};
		for (size_t j = 0; j < sizeof(extra) / sizeof(extra[0]); j++)
			if (SVC_HAS(e, extra[j].a))
				printf(",\"%s\":%" PRIu64, extra[j].key, extra[j].v);
		if (SVC_HAS(e, PA_LIMITED))
			printf(",\"limited\":%s", json_bool(e->limited));
		putchar('}');
	}
	fputs("],\n\"listeners\":[", stdout);
	for (size_t i = 0; i < s->nlisteners; i++) {
		const struct st_listener *e = &s->listeners[i];
		fputs(i ? ",\n  {\"service\":" : "\n  {\"service\":", stdout);
		json_str(e->service);
		fputs(",\"address\":", stdout);
		json_str(e->address);
		printf(",\"paused\":%s", json_bool(e->paused));
		if (e->state[0]) {
			printf(",\"state\":");
			json_str(e->state);
		}
		printf("}");
	}
	fputs("],\n\"backends\":[", stdout);
	for (size_t i = 0; i < s->nbackends; i++) {
		const struct st_backend *e = &s->backends[i];
		printf("%s{\"id\":%" PRIu64 ",\"service\":", i ? ",\n  " : "\n  ", e->id);
		json_str(e->service);
		printf(",\"pid\":%" PRIu32 ",\"uid\":%" PRIu32 ",\"user\":", e->pid, e->uid);
		if (e->user[0])
			json_str(e->user);
		else
			fputs("null", stdout);
		printf(",\"gid\":%" PRIu32 ",\"capacity\":%" PRIu32 ",\"inflight\":%" PRIu32
		       ",\"unacked\":%" PRIu32 ",\"delivered\":%" PRIu64 ",\"draining\":%s}",
		       e->gid, e->capacity, e->inflight, e->unacked, e->delivered, json_bool(e->draining));
	}
	fputs("]}\n", stdout);
	return 0;
}

/* ---- commands ---- */

static int cmd_status(struct ctl *c, bool json)
{
	struct proto_buf b;
	struct status s = {0};
	int r;

	proto_begin(&b, PROTO_STATUS, REQUEST_SEQ);
	if ((r = ctl_request(c, &b)))
		return r;
	if ((r = status_collect(c, &s)))
		goto out;
	status_resolve_users(&s);
	r = json ? status_print_json(&s) : status_print_text(&s);
out:
	status_free(&s);
	return r;
}

/* A drain target as the user wrote it. */
struct target {
	bool by_id, by_pid;
	uint64_t id;
	uint32_t pid;
	char text[48]; /* for messages: "id 5", "pid 1234", "5" */
};

/* Parse a positive decimal number no larger than max. */
static bool parse_num(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return false;
	*ret = v;
	return true;
}

static int parse_target(const char *arg, struct target *t)
{
	uint64_t v;

	memset(t, 0, sizeof(*t));
	if (strncmp(arg, "id:", 3) == 0) {
		if (!parse_num(arg + 3, UINT64_MAX, &v))
			return usage_error("bad backend id in '%s': expected id:N with N a positive number", arg);
		t->by_id = true;
		t->id = v;
		snprintf(t->text, sizeof(t->text), "id %" PRIu64, v);
	} else if (strncmp(arg, "pid:", 4) == 0) {
		if (!parse_num(arg + 4, INT32_MAX, &v))
			return usage_error("bad pid in '%s': expected pid:N with N a positive process id", arg);
		t->by_pid = true;
		t->pid = (uint32_t)v;
		snprintf(t->text, sizeof(t->text), "pid %" PRIu64, v);
	} else {
		if (!parse_num(arg, UINT64_MAX, &v))
			return usage_error("bad drain target '%s': expected N, id:N or pid:N", arg);
		t->by_id = true;
		t->id = v;
		/* A bare number may be either; the daemon tries the id first. */
		if (v <= INT32_MAX) {
			t->by_pid = true;
			t->pid = (uint32_t)v;
		}
		snprintf(t->text, sizeof(t->text), "%" PRIu64, v);
	}
	return 0;
}

/* Expect a PROTO_OK as the whole reply. */
static int expect_ok(struct ctl *c, const char *what)
{
	int r = ctl_reply(c, what);
	if (r)
		return r;
	if (c->msg.type != PROTO_OK) {
		errmsg("malformed %s from handoffd: unexpected %s message", what, proto_type_name(c->msg.type));
		return EXIT_FAIL;
	}
	return 0;
}

static int cmd_drain(struct ctl *c, const struct target *t)
{
	struct proto_buf b;
	int r;

	proto_begin(&b, PROTO_ADMIN_DRAIN, REQUEST_SEQ);
	if (t->by_id)
		proto_put_u64(&b, PA_BACKEND_ID, t->id);
	if (t->by_pid)
		proto_put_u32(&b, PA_PID, t->pid);
	if ((r = ctl_request(c, &b)) || (r = expect_ok(c, "drain reply")))
		return r;
	if (proto_has(&c->msg, PA_COUNT)) {
		uint32_t n = proto_u32(&c->msg, PA_COUNT);
		printf("drained %" PRIu32 " backend%s (%s)\n", n, n == 1 ? "" : "s", t->text);
	} else {
		printf("drained backend %s\n", t->text);
	}
	return 0;
}

static int cmd_reload(struct ctl *c)
{
	struct proto_buf b;
	int r;

	proto_begin(&b, PROTO_ADMIN_RELOAD, REQUEST_SEQ);
	if ((r = ctl_request(c, &b)) || (r = expect_ok(c, "reload reply")))
		return r;
	printf("reloaded\n");
	return 0;
}

static int cmd_upgrade(struct ctl *c)
{
	struct proto_buf b;
	int r;

	/* The answer comes once the new handoffd serves (or failed to). */
	proto_begin(&b, PROTO_ADMIN_UPGRADE, REQUEST_SEQ);
	if ((r = ctl_request(c, &b)) || (r = expect_ok(c, "upgrade reply")))
		return r;
	if (proto_has(&c->msg, PA_PID))
		printf("upgraded: the new handoffd is pid %" PRIu32 "\n", proto_u32(&c->msg, PA_PID));
	else
		printf("upgraded\n");
	return 0;
}

/* ---- main ---- */

enum { OPT_JSON = 0x100 };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	bool json = false;
	int opt, r;

	opterr = 0; /* we name the bad option ourselves */
	while ((opt = getopt_long(argc, argv, ":s:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
		case 'V':
			printf("handoffctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
		case ':':
			/* A missing argument can only be at the end of argv. */
			return usage_error("option '%s' needs an argument", argv[argc - 1]);
		default:
			/* getopt sets optopt to the letter of a bad short option, and
			 * to 0 (unknown) or the option's value (an argument it does
			 * not take) for a bad long one. */
			if (optopt > 0 && optopt < 0x80)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}

	if (optind >= argc)
		return usage_error("no command given (status, drain, reload or upgrade)");
	const char *cmd = argv[optind++];
	int nargs = argc - optind;
	struct target target;

	if (strcmp(cmd, "status") == 0) {
		if (nargs > 0)
			return usage_error("unexpected argument '%s' after status", argv[optind]);
	} else if (strcmp(cmd, "drain") == 0) {
		if (nargs == 0)
			return usage_error("drain needs a target: N, id:N or pid:N");
		if (nargs > 1)
			return usage_error("unexpected argument '%s' after drain %s", argv[optind + 1], argv[optind]);
		if ((r = parse_target(argv[optind], &target)))
			return r;
	} else if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "upgrade") == 0) {
		if (nargs > 0)
			return usage_error("unexpected argument '%s' after %s", argv[optind], cmd);
	} else {
		return usage_error("unknown command '%s'", cmd);
	}
	if (json && strcmp(cmd, "status") != 0)
		return usage_error("--json only applies to status");

	if (!path) {
		path = getenv("HANDOFF_SOCKET");
		if (!path || !*path)
			path = DEFAULT_SOCKET;
	} else if (!*path) {
		return usage_error("option '--socket' needs a non-empty path");
	}

	struct ctl *c = calloc(1, sizeof(*c));
	if (!c) {
		errmsg("out of memory");
		return EXIT_FAIL;
	}
	c->fd = -1;
	c->path = path;
	if ((r = ctl_connect(c)))
		goto out;
	if (strcmp(cmd, "status") == 0)
		r = cmd_status(c, json);
	else if (strcmp(cmd, "drain") == 0)
		r = cmd_drain(c, &target);
	else if (strcmp(cmd, "upgrade") == 0)
		r = cmd_upgrade(c);
	else
		r = cmd_reload(c);
out:
	ctl_close(c);
	free(c);
	/* Report a failed write of the output (full disk, closed pipe). */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (r == EXIT_OK) {
			errmsg("cannot write the output: %s", strerror(errno));
			r = EXIT_FAIL;
		}
	}
	return r;
}
