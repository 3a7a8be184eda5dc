/* ctl: control socket server and command table. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "ctl.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "registry.h"
#include "sdnotify.h"
#include "service.h"
#include "upgrade.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

#define ACCEPT_BATCH 32
/* Descriptors kept for client connections and root's control connections:
 * unprivileged control connections cannot take the last ones. */
#define CTL_FD_RESERVE 256
#define READ_BATCH 64                   /* messages per wake-up per connection */
#define OUTQ_MAX_PEER (64u * 1024)      /* queued bytes for a peer, plus room for a backend's capacity */
#define OUTQ_MAX_ADMIN (16u * 1024 * 1024) /* a status of 10,000 backends is about 2 MiB */

static void on_cc_event(uv_poll_t *h, int status, int events);
static void read_input(struct ctlconn *cc);
static void uid_count_del(struct hd *hd, uid_t uid);

/* ---- sending ---- */

static void cc_poll_update(struct ctlconn *cc)
{
	if (cc->dead)
		return;
	int ev = UV_READABLE | UV_DISCONNECT;
	if (!STAILQ_EMPTY(&cc->outq))
		ev |= UV_WRITABLE;
	if (ev != cc->poll_events) {
		uv_poll_start(&cc->poll, ev, on_cc_event);
		cc->poll_events = ev;
	}
}

static void on_reap(uv_timer_t *t)
{
	struct hd *hd = t->data;
	struct ctlconn *cc;
	/* What a gone peer sent before it went still counts: an ACK not read
	 * now would make handoffd deliver again connections that peer took.
	 * Handling those messages can drop other connections (a reload), so
	 * look again from the start after each one. */
	for (;;) {
		TAILQ_FOREACH(cc, &hd->ctlconns, link)
			if (cc->broken)
				break;
		if (!cc)
			return;
		read_input(cc);
		if (!cc->dead)
			ctl_drop(cc, "send failed");
	}
}

/* Never drop synchronously from a send: the caller may be iterating. */
void ctl_mark_broken(struct ctlconn *cc, int err)
{
	if (cc->broken)
		return;
	cc->broken = true;
	log_peer(LOG_LVL_INFO, "control connection %s: send: %s", cc->who, strerror(-err));
	if (cc->backend)
		registry_update_ready(cc->backend);
	cc->hd->reap_timer.data = cc->hd;
	uv_timer_start(&cc->hd->reap_timer, on_reap, 0, 0);
}

static int enqueue(struct ctlconn *cc, const void *data, size_t len, struct conn *conn)
{
	/* A backend can have capacity DELIVERs queued (each at most a few
	 * hundred bytes); anything past that means it is not reading. */
	size_t max = cc->state == CC_ADMIN ? OUTQ_MAX_ADMIN
	             : OUTQ_MAX_PEER + (cc->backend ? (size_t)cc->backend->capacity * 512 : 0);
	if (cc->outq_bytes + len > max) {
		log_peer(LOG_LVL_WARNING, "control connection %s: not reading its socket (%zu bytes queued), closing",
		         cc->who, cc->outq_bytes);
		ctl_mark_broken(cc, -ENOBUFS);
		return -ENOBUFS;
	}
	struct outmsg *m = malloc(sizeof(*m) + len);
	if (!m) {
		ctl_mark_broken(cc, -ENOMEM);
		return -ENOMEM;
	}
	m->conn = conn;
	m->fd = -1;
	m->len = len;
	memcpy(m->data, data, len);
	STAILQ_INSERT_TAIL(&cc->outq, m, link);
	cc->outq_bytes += len;
	return 0;
}

int ctl_send(struct ctlconn *cc, struct proto_buf *b)
{
	int len = proto_finish(b, 0);
	if (len < 0)
		return len;
	if (cc->broken || cc->dead)
		return -EPIPE;
	if (STAILQ_EMPTY(&cc->outq)) {
		int rc = proto_send(cc->fd, b->data, (size_t)len, NULL, 0, false);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN) {
			ctl_mark_broken(cc, rc);
			return rc;
		}
	}
	int rc = enqueue(cc, b->data, (size_t)len, NULL);
	cc_poll_update(cc); /* wait for room */
	return rc;
}

int ctl_send_fd(struct ctlconn *cc, struct proto_buf *b, int fd)
{
	int len = proto_finish(b, 1);
	if (len < 0)
		return len;
	if (cc->broken || cc->dead || cc->closing)
		return -EPIPE;
	if (STAILQ_EMPTY(&cc->outq)) {
		int rc = proto_send(cc->fd, b->data, (size_t)len, &fd, 1, false);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN) {
			ctl_mark_broken(cc, rc);
			return rc;
		}
	}
	/* Queued: the message keeps its own duplicate until it is sent. */
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0) {
		int e = -errno;
		ctl_mark_broken(cc, e);
		return e;
	}
	struct outmsg *m = NULL;
	int rc = enqueue(cc, b->data, (size_t)len, NULL);
	if (rc < 0) {
		close(dup);
		return rc;
	}
	STAILQ_FOREACH(m, &cc->outq, link)
		if (!STAILQ_NEXT(m, link))
			m->fd = dup; /* the one just queued, last */
	cc_poll_update(cc);
	return 0;
}

int ctl_send_deliver(struct ctlconn *cc, struct conn *conn, const struct proto_buf *b)
{
	if (cc->broken || cc->dead || cc->closing)
		return -EPIPE;
	/* The first DELIVER of a loop turn goes out at once (latency); the
	 * ones after it in the same turn are queued and sent together in one
	 * sendmmsg right after the turn's I/O callbacks. */
	if (STAILQ_EMPTY(&cc->outq) && !cc->in_dirty) {
		int rc = proto_send(cc->fd, b->data, b->len, &conn->fd, 1, false);
		if (rc == 0) {
			cc->in_dirty = true; /* marks "sent one this turn" */
			TAILQ_INSERT_TAIL(&cc->hd->dirty, cc, dirty_link);
			return 1;
		}
		if (rc != -EAGAIN) {
			ctl_mark_broken(cc, rc);
			return rc;
		}
	}
	int rc = enqueue(cc, b->data, b->len, conn);
	if (rc < 0)
		return rc;
	if (!cc->in_dirty) {
		cc->in_dirty = true;
		TAILQ_INSERT_TAIL(&cc->hd->dirty, cc, dirty_link);
	}
	return 0;
}

struct conn *ctl_take_queued(struct ctlconn *cc)
{
	struct outmsg *m;
	STAILQ_FOREACH(m, &cc->outq, link) {
		if (m->conn) {
			struct conn *c = m->conn;
			STAILQ_REMOVE(&cc->outq, m, outmsg, link);
			cc->outq_bytes -= m->len;
			free(m);
			return c;
		}
	}
	return NULL;
}

/* Send what is queued, in order, in batches. */
static int flush(struct ctlconn *cc)
{
	struct proto_out v[PROTO_BATCH_MAX];
	struct outmsg *m;

	while (!STAILQ_EMPTY(&cc->outq)) {
		unsigned n = 0;
		STAILQ_FOREACH(m, &cc->outq, link) {
			if (n == PROTO_BATCH_MAX)
				break;
			v[n++] = (struct proto_out){m->data, m->len, m->conn ? m->conn->fd : m->fd};
		}
		int sent = proto_send_batch(cc->fd, v, n);
		if (sent == -EAGAIN)
			break;
		if (sent < 0)
			return sent;
		for (int i = 0; i < sent; i++) {
			m = STAILQ_FIRST(&cc->outq);
			STAILQ_REMOVE_HEAD(&cc->outq, link);
			cc->outq_bytes -= m->len;
			if (m->conn && cc->backend) {
				struct backend *b = cc->backend;
				b->nqueued--;
				TAILQ_INSERT_TAIL(&b->unacked, m->conn, link);
				b->nunacked++;
			} else if (m->conn) {
				conn_free(m->conn); /* cannot happen: DELIVERs go to backends */
			}
			if (m->fd >= 0)
				close(m->fd);
			free(m);
		}
		if ((unsigned)sent < n)
			break; /* socket full */
	}
	cc_poll_update(cc);
	return 0;
}

static void dirty_remove(struct ctlconn *cc)
{
	if (cc->in_dirty) {
		TAILQ_REMOVE(&cc->hd->dirty, cc, dirty_link);
		cc->in_dirty = false;
	}
}

static void on_flush_check(uv_check_t *h)
{
	struct hd *hd = h->data;
	struct ctlconn *cc;
	while ((cc = TAILQ_FIRST(&hd->dirty)) != NULL) {
		dirty_remove(cc);
		int rc = flush(cc);
		if (rc < 0)
			ctl_mark_broken(cc, rc);
	}
}

void ctl_init(struct hd *hd)
{
	TAILQ_INIT(&hd->dirty);
	uv_check_init(hd->loop, &hd->flush_check);
	hd->flush_check.data = hd;
	uv_check_start(&hd->flush_check, on_flush_check);
	uv_unref((uv_handle_t *)&hd->flush_check);
}

void ctl_refuse(struct ctlconn *cc, enum proto_err code, const char *text, uint32_t seq)
{
	struct proto_buf b;
	proto_begin(&b, PROTO_ERROR, seq);
	proto_put_u32(&b, PA_ERRCODE, code);
	proto_put_str(&b, PA_TEXT, text);
	if (ctl_send(cc, &b) == 0)
		cc->closing = true;
	if (cc->backend)
		registry_update_ready(cc->backend); /* closing: no more deliveries */
}

/* ---- lifecycle ---- */

static void on_cc_closed(uv_handle_t *h)
{
	struct ctlconn *cc = h->data;
	if (cc->fd >= 0)
		close(cc->fd);
	free(cc);
}

void ctl_drop(struct ctlconn *cc, const char *why)
{
	struct hd *hd = cc->hd;
	if (cc->dead)
		return;
	cc->dead = true;
	dirty_remove(cc);
	TAILQ_REMOVE(&hd->ctlconns, cc, link);
	hd->nctl--;
	uid_count_del(hd, cc->id.uid);
	log_debug("control connection %s closed: %s", cc->who, why);
	upgrade_forget_requester(hd, cc);
	if (cc->backend)
		registry_remove(cc->backend); /* takes the queued DELIVERs back */
	struct outmsg *m;
	while ((m = STAILQ_FIRST(&cc->outq)) != NULL) {
		STAILQ_REMOVE_HEAD(&cc->outq, link);
		conn_free(m->conn);
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	uv_close((uv_handle_t *)&cc->poll, on_cc_closed);
	hd_shutdown_check(hd);
}

void ctl_sweep(struct hd *hd)
{
	uint64_t now = hd_now_ms(hd);
	struct ctlconn *cc, *next;
	for (cc = TAILQ_FIRST(&hd->ctlconns); cc; cc = next) {
		next = TAILQ_NEXT(cc, link);
		if (cc->state == CC_NEW && now >= cc->deadline_ms) {
			log_peer(LOG_LVL_NOTICE, "control connection %s sent nothing within handshake_timeout, closing",
			         cc->who);
			ctl_drop(cc, "handshake timeout");
		}
	}
}

/* ---- commands ---- */

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* minus the directory's own fd */
}

static void cmd_register(struct ctlconn *cc, const struct proto_msg *m)
{
	registry_register(cc, m);
}

static void cmd_ack(struct ctlconn *cc, const struct proto_msg *m)
{
	struct backend *b = cc->backend;
	uint32_t r = proto_u32(m, PA_RECEIVED), d = proto_u32(m, PA_DONE);
	const uint8_t *ids = m->attr[PA_DONE_IDS].p;
	size_t nids = ids ? m->attr[PA_DONE_IDS].len / 8 : 0;
	if (dispatch_ack(b, r, d, ids, nids) < 0) {
		log_peer(LOG_LVL_WARNING,
		         "control connection %s: ACK of %u received/%u done, but only %u unacknowledged and %u open: "
		         "closing control connection",
		         cc->who, r, d, b->nunacked, b->nacked);
		ctl_drop(cc, "impossible ACK");
		return;
	}
	if (r || d) {
		service_kick(b->svc);
		hd_shutdown_check(cc->hd);
	}
}

static void cmd_drain(struct ctlconn *cc, const struct proto_msg *m)
{
	registry_drain(cc->backend);
}

static void put_counters(struct proto_buf *b, uint64_t acc, uint64_t del, uint64_t redel, uint64_t ref)
{
	proto_put_u64(b, PA_ACCEPTED, acc);
	proto_put_u64(b, PA_DELIVERED, del);
	proto_put_u64(b, PA_REDELIVERED, redel);
	proto_put_u64(b, PA_REFUSED, ref);
}

static void cmd_status(struct ctlconn *cc, const struct proto_msg *m)
{
	struct hd *hd = cc->hd;
	struct proto_buf b;
	struct service *svc;
	uint64_t acc = 0, del = 0, redel = 0, ref = 0;

	TAILQ_FOREACH(svc, &hd->services, link) {
		acc += svc->accepted;
		del += svc->delivered;
		redel += svc->redelivered;
		ref += svc->refused;
	}
	proto_begin(&b, PROTO_ST_DAEMON, m->seq);
	proto_put_u32(&b, PA_PID, (uint32_t)getpid());
	proto_put_u64(&b, PA_UPTIME_MS, hd_now_ms(hd) - hd->start_ms);
	proto_put_u32(&b, PA_NFDS, count_fds());
	proto_put_u32(&b, PA_CONTROL, hd->nctl);
	put_counters(&b, acc, del, redel, ref);
	if (ctl_send(cc, &b) < 0)
		return;
	TAILQ_FOREACH(svc, &hd->services, link) {
		proto_begin(&b, PROTO_ST_SERVICE, m->seq);
		proto_put_str(&b, PA_SERVICE, svc->name);
		proto_put_str(&b, PA_BALANCE, config_balance_name(svc->cfg->balance));
		put_counters(&b, svc->accepted, svc->delivered, svc->redelivered, svc->refused);
		proto_put_u32(&b, PA_PENDING, svc->npending);
		proto_put_u32(&b, PA_PAUSED, svc->paused);
		proto_put_u32(&b, PA_BACKENDS, svc->nbackends);
		char mode[80];
		service_mode_text(svc, mode, sizeof(mode));
		proto_put_str(&b, PA_MODE, mode);
		proto_put_u64(&b, PA_REFUSED_ACCESS, svc->refused_access);
		proto_put_u64(&b, PA_REFUSED_RATE, svc->refused_rate);
		proto_put_u64(&b, PA_REFUSED_SOURCE, svc->refused_source);
		proto_put_u64(&b, PA_REFUSED_NOBACKEND, svc->refused_nobackend);
		proto_put_u64(&b, PA_REFUSED_SPAWN, svc->refused_spawn);
		proto_put_u64(&b, PA_SPAWNED, svc->spawned);
		proto_put_u32(&b, PA_CHILDREN, svc->nchildren);
		proto_put_u32(&b, PA_LIVE, svc->live);
		proto_put_u32(&b, PA_LIMITED, svc->limited_until > hd_now_ms(hd));
		if (ctl_send(cc, &b) < 0)
			return;
		struct listener *l;
		TAILQ_FOREACH(l, &svc->listeners, svc_link) {
			proto_begin(&b, PROTO_ST_LISTENER, m->seq);
			proto_put_str(&b, PA_SERVICE, svc->name);
			proto_put_str(&b, PA_TEXT, l->display);
			proto_put_u32(&b, PA_PAUSED, !l->polling);
			/* A shared socket held by backends is neither accepting nor
			 * paused: handoffd just keeps it open for them. */
			const char *state = !l->shared            ? (l->polling ? "accepting" : "paused")
			                    : l->svc->nbackends    ? "shared"
			                    : l->svc->wait_pid     ? "with program"
			                    : l->polling           ? "watching"
			                                           : "waiting";
			proto_put_str(&b, PA_MODE, state);
			if (ctl_send(cc, &b) < 0)
				return;
		}
		struct backend *be;
		TAILQ_FOREACH(be, &svc->backends, link) {
			proto_begin(&b, PROTO_ST_BACKEND, m->seq);
			proto_put_u64(&b, PA_BACKEND_ID, be->id);
			proto_put_str(&b, PA_SERVICE, svc->name);
			proto_put_u32(&b, PA_PID, (uint32_t)be->cc->id.pid);
			proto_put_u32(&b, PA_UID, be->cc->id.uid);
			proto_put_u32(&b, PA_GID, be->cc->id.gid);
			proto_put_u32(&b, PA_CAPACITY, be->capacity);
			proto_put_u32(&b, PA_INFLIGHT, be->nunacked + be->nqueued + be->nacked);
			proto_put_u32(&b, PA_UNACKED, be->nunacked + be->nqueued);
			proto_put_u64(&b, PA_DELIVERED, be->delivered);
			proto_put_u32(&b, PA_DRAINING, be->draining);
			if (ctl_send(cc, &b) < 0)
				return;
		}
	}
	proto_begin(&b, PROTO_ST_END, m->seq);
	ctl_send(cc, &b);
}

static void cmd_admin_drain(struct ctlconn *cc, const struct proto_msg *m)
{
	struct hd *hd = cc->hd;
	uint64_t id = proto_u64(m, PA_BACKEND_ID);
	pid_t pid = (pid_t)proto_u32(m, PA_PID);
	struct backend *b = id ? registry_find(hd, id) : NULL;
	struct proto_buf out;
	unsigned n = 0;

	/* A backend id first; otherwise every registration of that process. */
	if (b) {
		registry_drain(b);
		n = 1;
	} else if (pid > 0) {
		n = registry_drain_pid(hd, pid);
	}
	if (n == 0) {
		char text[128];
		if (id && pid > 0 && (uint64_t)pid == id)
			snprintf(text, sizeof(text), "no backend with id %llu or pid %d", (unsigned long long)id, (int)pid);
		else if (id)
			snprintf(text, sizeof(text), "no backend with id %llu", (unsigned long long)id);
		else
			snprintf(text, sizeof(text), "no backend with pid %d", (int)pid);
		proto_begin(&out, PROTO_ERROR, m->seq);
		proto_put_u32(&out, PA_ERRCODE, PE_NOT_FOUND);
		proto_put_str(&out, PA_TEXT, text);
		ctl_send(cc, &out);
		return;
	}
	log_notice("%s asked to drain %u backend%s", cc->who, n, n == 1 ? "" : "s");
	proto_begin(&out, PROTO_OK, m->seq);
	proto_put_u32(&out, PA_COUNT, n);
	ctl_send(cc, &out);
}

static void cmd_admin_upgrade(struct ctlconn *cc, const struct proto_msg *m)
{
	char err[4096];
	log_notice("upgrade requested by %s", cc->who);
	int rc = upgrade_start(cc->hd, cc, m->seq, err, sizeof(err));
	if (rc < 0) {
		log_error("upgrade refused: %s", err);
		struct proto_buf b;
		proto_begin(&b, PROTO_ERROR, m->seq);
		proto_put_u32(&b, PA_ERRCODE, rc == -EINVAL ? PE_CONFIG : PE_STATE);
		err[PROTO_MAX_TEXT - 1] = '\0'; /* the attribute's limit */
		proto_put_str(&b, PA_TEXT, err);
		ctl_send(cc, &b);
	}
	/* Else the answer comes when the new handoffd is ready (or is not). */
}

static void cmd_admin_reload(struct ctlconn *cc, const struct proto_msg *m)
{
	char err[4096];
	struct proto_buf out;
	log_notice("%s asked for a reload", cc->who);
	if (hd_reload(cc->hd, err, sizeof(err)) < 0) {
		err[PROTO_MAX_TEXT] = '\0';
		proto_begin(&out, PROTO_ERROR, m->seq);
		proto_put_u32(&out, PA_ERRCODE, PE_CONFIG);
		proto_put_str(&out, PA_TEXT, err);
	} else {
		proto_begin(&out, PROTO_OK, m->seq);
	}
	if (!cc->dead)
		ctl_send(cc, &out);
}

enum perm { P_ANY, P_BACKEND, P_ADMIN };

/* What each message may do and who may send it. */
static const struct command {
	enum perm perm;
	void (*fn)(struct ctlconn *cc, const struct proto_msg *m);
} commands[PROTO_TYPE_MAX + 1] = {
	[PROTO_REGISTER] = {P_ANY, cmd_register},
	[PROTO_ACK] = {P_BACKEND, cmd_ack},
	[PROTO_DRAIN] = {P_BACKEND, cmd_drain},
	[PROTO_STATUS] = {P_ADMIN, cmd_status},
	[PROTO_ADMIN_DRAIN] = {P_ADMIN, cmd_admin_drain},
	[PROTO_ADMIN_RELOAD] = {P_ADMIN, cmd_admin_reload},
	[PROTO_ADMIN_UPGRADE] = {P_ADMIN, cmd_admin_upgrade},
};

static void handle(struct ctlconn *cc, const struct proto_msg *m)
{
	const struct command *c = &commands[m->type];
	if (!c->fn) {
		/* proto_decode only passes client-direction types, all listed. */
		log_peer(LOG_LVL_WARNING, "control connection %s: unexpected %s, closing", cc->who,
		         proto_type_name(m->type));
		ctl_drop(cc, "unexpected message");
		return;
	}
	if (c->perm == P_BACKEND && !cc->backend) {
		log_peer(LOG_LVL_WARNING, "control connection %s: %s before REGISTER, closing control connection",
		         cc->who, proto_type_name(m->type));
		ctl_drop(cc, "not registered");
		return;
	}
	if (c->perm == P_ADMIN) {
		if (!policy_is_admin(cc->hd->cfg, &cc->id)) {
			char text[160];
			log_peer(LOG_LVL_WARNING, "refused %s from %s: not root or in admin_group",
			         proto_type_name(m->type), cc->who);
			snprintf(text, sizeof(text), "permission denied: uid %u is not root or in admin_group",
			         (unsigned)cc->id.uid);
			ctl_refuse(cc, PE_NOT_ADMIN, text, m->seq);
			return;
		}
		if (cc->state == CC_NEW)
			cc->state = CC_ADMIN;
	}
	c->fn(cc, m);
}

/* Decode and handle one received message. Returns 0, or -1 when cc is
 * being closed (stop reading). */
static int handle_raw(struct ctlconn *cc, const uint8_t *buf, size_t n)
{
	if (cc->closing)
		return 0; /* refused: ignore the rest until our ERROR is out */
	struct proto_msg m;
	const char *why = "";
	int rc = proto_decode(buf, n, 0, PROTO_FROM_CLIENT, &m, &why);
	if (rc == -EPROTONOSUPPORT) {
		char text[96];
		log_peer(LOG_LVL_WARNING, "control connection %s: protocol version %u, we speak %u, closing", cc->who,
		         buf[2], PROTO_VERSION);
		snprintf(text, sizeof(text), "handoffd speaks protocol version %u, not %u", PROTO_VERSION, buf[2]);
		ctl_refuse(cc, PE_VERSION, text, 0);
		if (!cc->dead && STAILQ_EMPTY(&cc->outq))
			ctl_drop(cc, "protocol version");
		return -1;
	}
	if (rc < 0) {
		log_peer(LOG_LVL_WARNING, "control connection %s: %s (%zu bytes, type %u), closing control connection",
		         cc->who, why, n, n >= 4 ? buf[3] : 0);
		ctl_drop(cc, why);
		return -1;
	}
	handle(cc, &m);
	if (cc->dead)
		return -1;
	if (cc->closing && STAILQ_EMPTY(&cc->outq)) {
		ctl_drop(cc, "refused");
		return -1;
	}
	return 0;
}

static void on_cc_event(uv_poll_t *h, int status, int events)
{
	struct ctlconn *cc = h->data;

	if (status < 0) {
		/* libuv reports POLLERR as UV_EBADF and stops the handle. A peer
		 * that closed with our messages unread leaves ECONNRESET pending
		 * before what it sent last (an ACK, say): read that first. */
		cc->poll_events = 0;
		events = UV_READABLE;
	}
	if (events & UV_WRITABLE) {
		int rc = flush(cc);
		if (rc < 0) {
			/* The peer is gone (EPIPE): read what it sent before it
			 * went (an ACK for connections it took) before dropping. */
			read_input(cc);
			if (!cc->dead)
				ctl_drop(cc, strerror(-rc));
			return;
		}
		if (cc->closing && STAILQ_EMPTY(&cc->outq)) {
			ctl_drop(cc, "refused");
			return;
		}
	}
	if (!(events & (UV_READABLE | UV_DISCONNECT)))
		return;
	read_input(cc);
	if (!cc->dead)
		cc_poll_update(cc); /* re-arms after a POLLERR */
}

/* Read and handle what cc's peer sent. May drop cc (end of file, a bad
 * message, or what a message asked for). */
static void read_input(struct ctlconn *cc)
{
	/* One recvmmsg takes what is waiting (ACKs, mostly); a few rounds at
	 * most per wake-up so one chatty peer cannot hold the loop. */
	for (int round = 0; round < READ_BATCH / RECV_BATCH && !cc->dead; round++) {
		bool bad = false;
		uint8_t(*rbuf)[PROTO_MAX_MSG + 1] = cc->hd->recv_buf;
		size_t *rlen = cc->hd->recv_len;
		int got = proto_recv_batch(cc->fd, rbuf, rlen, RECV_BATCH, &bad);
		if (got == -EAGAIN)
			break;
		if (got == -ECONNRESET)
			continue; /* peer gone; read what it sent before EOF */
		if (got == -EBADMSG)
			goto bad_message;
		if (got < 0) {
			ctl_drop(cc, strerror(-got));
			return;
		}
		for (int i = 0; i < got && !cc->dead; i++) {
			if (rlen[i] == 0) {
				ctl_drop(cc, "closed by peer");
				return;
			}
			if (handle_raw(cc, rbuf[i], rlen[i]) < 0)
				return;
		}
		if (bad && !cc->dead)
			goto bad_message;
		if (got < RECV_BATCH)
			break; /* nothing more waiting */
	}
	return;

bad_message:
	log_peer(LOG_LVL_WARNING, "control connection %s: sent file descriptors or an oversized message, closing",
	         cc->who);
	ctl_drop(cc, "bad message");
}

/* ---- the listening control socket ---- */

/* Open control connections per uid, for max_control_per_uid: checked on
 * every accept, so it must not walk every connection (with 10,000 backends
 * registered that walk was most of handoffd's time per registration; see
 * tests/bench/README.scale). One entry per uid that has a connection open,
 * in a compact array: few distinct uids in practice, at worst max_control
 * entries of 8 bytes. */
struct uid_count {
	uid_t uid;
	unsigned n;
};

static struct uid_count *uid_count_find(struct hd *hd, uid_t uid)
{
	for (unsigned i = 0; i < hd->nuid_counts; i++)
		if (hd->uid_counts[i].uid == uid)
			return &hd->uid_counts[i];
	return NULL;
}

static unsigned count_uid(struct hd *hd, uid_t uid)
{
	struct uid_count *u = uid_count_find(hd, uid);
	return u ? u->n : 0;
}

/* One more connection for uid. Returns 0 or -ENOMEM. */
static int uid_count_add(struct hd *hd, uid_t uid)
{
	struct uid_count *u = uid_count_find(hd, uid);
	if (u) {
		u->n++;
		return 0;
	}
	if (hd->nuid_counts == hd->uid_counts_cap) {
		unsigned cap = hd->uid_counts_cap ? hd->uid_counts_cap * 2 : 16;
		struct uid_count *v = realloc(hd->uid_counts, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		hd->uid_counts = v;
		hd->uid_counts_cap = cap;
	}
	hd->uid_counts[hd->nuid_counts++] = (struct uid_count){uid, 1};
	return 0;
}

static void uid_count_del(struct hd *hd, uid_t uid)
{
	struct uid_count *u = uid_count_find(hd, uid);
	if (!u)
		return; /* cannot happen: every connection was counted */
	if (--u->n == 0)
		*u = hd->uid_counts[--hd->nuid_counts];
}

static void refuse_raw(int fd, const char *text)
{
	struct proto_buf b;
	proto_begin(&b, PROTO_ERROR, 0);
	proto_put_u32(&b, PA_ERRCODE, PE_LIMIT);
	proto_put_str(&b, PA_TEXT, text);
	if (proto_finish(&b, 0) > 0)
		proto_send(fd, b.data, b.len, NULL, 0, false);
	close(fd);
}

static void on_ctl_accept(uv_poll_t *h, int status, int events)
{
	struct hd *hd = h->data;
	if (status < 0)
		return;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(hd->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				listener_starve(hd, errno);
			return;
		}
		listener_fds_ok(hd);
		struct peer_ident id;
		int rc = registry_read_identity(fd, &id);
		if (rc < 0) {
			log_peer(LOG_LVL_WARNING, "control connection: cannot read peer credentials: %s, closing",
			         strerror(-rc));
			close(fd);
			continue;
		}
		/* No message to handoffd carries fds: make the kernel refuse them. */
		int zero = 0;
		setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));

		/* Descriptors are given lowest first, so a high number means
		 * nearly all below it are taken: control connections (which any
		 * local user may open) must not starve the listeners. */
		struct rlimit rl;
		if (id.uid != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    (rlim_t)fd + CTL_FD_RESERVE >= rl.rlim_cur) {
			log_peer(LOG_LVL_WARNING,
			         "control connection pid=%d uid=%u refused: file descriptors running low (%d of %llu in use "
			         "or more; raise RLIMIT_NOFILE or lower max_control)",
			         (int)id.pid, (unsigned)id.uid, fd, (unsigned long long)rl.rlim_cur);
			refuse_raw(fd, "handoffd is running low on file descriptors");
			continue;
		}
		if (hd->nctl >= hd->cfg->max_control) {
			log_peer(LOG_LVL_WARNING, "control connection pid=%d uid=%u refused: max_control (%u) reached",
			         (int)id.pid, (unsigned)id.uid, hd->cfg->max_control);
			refuse_raw(fd, "handoffd has too many control connections");
			continue;
		}
		if (id.uid != 0 && count_uid(hd, id.uid) >= hd->cfg->max_control_per_uid) {
			log_peer(LOG_LVL_WARNING, "control connection pid=%d uid=%u refused: max_control_per_uid (%u) reached",
			         (int)id.pid, (unsigned)id.uid, hd->cfg->max_control_per_uid);
			refuse_raw(fd, "too many control connections for this uid (max_control_per_uid)");
			continue;
		}
		struct ctlconn *cc = calloc(1, sizeof(*cc));
		if (!cc || uid_count_add(hd, id.uid) < 0) {
			free(cc);
			close(fd);
			continue;
		}
		cc->hd = hd;
		cc->fd = fd;
		cc->id = id;
		snprintf(cc->who, sizeof(cc->who), "pid=%d uid=%u", (int)id.pid, (unsigned)id.uid);
		cc->state = CC_NEW;
		cc->deadline_ms = hd_now_ms(hd) + hd->cfg->handshake_timeout_ms;
		STAILQ_INIT(&cc->outq);
		if (uv_poll_init_socket(hd->loop, &cc->poll, fd) < 0) {
			uid_count_del(hd, id.uid);
			close(fd);
			free(cc);
			continue;
		}
		cc->poll.data = cc;
		TAILQ_INSERT_TAIL(&hd->ctlconns, cc, link);
		hd->nctl++;
		cc_poll_update(cc);
		log_debug("control connection from %s", cc->who);
	}
}

int ctl_open(struct hd *hd, char *err, size_t errlen)
{
	const char *path = hd->cfg->control_socket;
	struct sockaddr_un un;
	socklen_t len;
	int fd, rc = addr_unix(path, &un, &len);

	if (rc < 0) {
		snprintf(err, errlen, "control_socket %s: %s", path, strerror(-rc));
		return rc;
	}
	fd = activation_claim(hd->activation, ACTIVATION_CONTROL_NAME, (struct sockaddr *)&un, len, SOCK_SEQPACKET);
	if (fd >= 0) {
		/* Passed in (socket unit, fd store or a previous handoffd): its
		 * file, mode and group are whoever made it's business. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		hd->ctl_adopted = true;
		log_info("control socket %s passed in", path);
		goto listening;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "control socket: %s", strerror(-rc));
		return rc;
	}
	mode_t old = umask(0177);
	rc = listener_bind_unix(fd, (struct sockaddr *)&un, len, SOCK_SEQPACKET);
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "control_socket %s: %s%s", path, strerror(-rc),
		         rc == -EADDRINUSE ? " (a live process answers there: another handoffd?)"
		         : rc == -EEXIST  ? " (the path exists and is not a socket)"
		         : rc == -EACCES  ? " (cannot check whether the socket file there is in use)"
		                          : "");
		close(fd);
		return rc;
	}
	if (path[0] == '/') {
		if (chmod(path, hd->cfg->control_mode) < 0 ||
		    (hd->cfg->control_group != (gid_t)-1 && chown(path, (uid_t)-1, hd->cfg->control_group) < 0)) {
			rc = -errno;
			snprintf(err, errlen, "control_socket %s: chmod/chown: %s", path, strerror(-rc));
			unlink(path);
			close(fd);
			return rc;
		}
	}
listening:
	if (listen(fd, 128) < 0 || uv_poll_init_socket(hd->loop, &hd->ctl_poll, fd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "control_socket %s: listen: %s", path, strerror(-rc));
		if (path[0] == '/' && !hd->ctl_adopted)
			unlink(path);
		close(fd);
		return rc;
	}
	hd->ctl_poll.data = hd;
	hd->ctl_fd = fd;
	snprintf(hd->ctl_path, sizeof(hd->ctl_path), "%s", path);
	if (sdnotify_fdstore(fd, ACTIVATION_CONTROL_NAME) > 0) /* kept across restarts */
		hd->fdstore_used = true;
	ctl_update(hd);
	return 0;
}

void ctl_update(struct hd *hd)
{
	if (hd->ctl_fd < 0)
		return;
	bool want = !hd->fd_starved && !hd->shutting_down;
	if (want == hd->ctl_polling)
		return;
	if (want)
		uv_poll_start(&hd->ctl_poll, UV_READABLE, on_ctl_accept);
	else
		uv_poll_stop(&hd->ctl_poll);
	hd->ctl_polling = want;
}

static void on_ctl_closed(uv_handle_t *h)
{
	struct hd *hd = h->data;
	if (hd->ctl_fd >= 0)
		close(hd->ctl_fd);
	hd->ctl_fd = -1;
}

void ctl_close(struct hd *hd)
{
	struct ctlconn *cc;
	while ((cc = TAILQ_FIRST(&hd->ctlconns)) != NULL) {
		if (cc->backend && !cc->broken) {
			/* Best effort: say why, so libhandoff reports HANDOFF_E_SHUTDOWN. */
			struct proto_buf b;
			proto_begin(&b, PROTO_ERROR, 0);
			proto_put_u32(&b, PA_ERRCODE, PE_SHUTDOWN);
			proto_put_str(&b, PA_TEXT, "handoffd is shutting down");
			ctl_send(cc, &b);
		}
		ctl_drop(cc, "handoffd exiting");
	}
	free(hd->uid_counts); /* every connection is gone, and so is every count */
	hd->uid_counts = NULL;
	hd->nuid_counts = hd->uid_counts_cap = 0;
	if (hd->ctl_fd >= 0) {
		if (hd->ctl_polling)
			uv_poll_stop(&hd->ctl_poll);
		hd->ctl_polling = false;
		if (hd->ctl_path[0] == '/' && !hd->ctl_adopted && !hd->keep_socket_files)
			unlink(hd->ctl_path);
		uv_close((uv_handle_t *)&hd->ctl_poll, on_ctl_closed);
	}
}
