/* dispatch: pick a backend, hand the fd off, track what is unacknowledged. */
#include "autoconf.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "dispatch.h"
#include "log.h"
#include "registry.h"
#include "service.h"

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->counted)
		service_conn_closed(c->svc, c);
	if (c->stored_id)
		service_conn_delivered(c);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

void dispatch_tcpmux(struct service *target, struct conn *c)
{
	/* It leaves the tcpmux service's count and enters target's. */
	if (c->counted)
		service_conn_closed(c->svc, c);
	c->svc = target;
	target->accepted++;
	service_take_conn(target, c);
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: a cheap, well-spread hash of a 64-bit value. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static unsigned inflight(const struct backend *b)
{
	return b->nunacked + b->nqueued + b->nacked;
}

static struct backend *next_circular(struct service *svc, struct backend *b)
{
	struct backend *n = TAILQ_NEXT(b, link);
	return n ? n : TAILQ_FIRST(&svc->backends);
}

struct backend *dispatch_pick(struct service *svc, const struct conn *conn)
{
	struct backend *start, *b, *best = NULL;
	unsigned n;

	if (svc->nready == 0)
		return NULL;
	start = svc->rr_next ? svc->rr_next : TAILQ_FIRST(&svc->backends);

	switch (svc->cfg->balance) {
	case BALANCE_ROUND_ROBIN:
		for (b = start, n = 0; n < svc->nbackends; b = next_circular(svc, b), n++) {
			if (b->ready) {
				best = b;
				break;
			}
		}
		break;
	case BALANCE_LEAST_LOADED:
		/* Lowest in-flight/capacity; ties go round-robin from the cursor. */
		for (b = start, n = 0; n < svc->nbackends; b = next_circular(svc, b), n++) {
			if (!b->ready)
				continue;
			if (!best || (uint64_t)inflight(b) * best->capacity < (uint64_t)inflight(best) * b->capacity)
				best = b;
		}
		break;
	case BALANCE_SOURCE_HASH: {
		/* Rendezvous hashing: the address's highest-scoring backend that has
		 * room. A backend keeps its addresses while it stays registered. */
		uint64_t h = addr_hash_source((const struct sockaddr *)&conn->peer, conn->peer_len), top = 0;
		TAILQ_FOREACH(b, &svc->backends, link) {
			if (!b->ready)
				continue;
			uint64_t score = mix64(h ^ mix64(b->id));
			if (!best || score > top) {
				best = b;
				top = score;
			}
		}
		break;
	}
	}
	if (best)
		svc->rr_next = TAILQ_NEXT(best, link);
	return best;
}

int dispatch_encode(const struct conn *c, struct proto_buf *b)
{
	proto_begin(b, PROTO_DELIVER, 0);
	proto_put_u64(b, PA_CONN_ID, c->id);
	proto_put_str(b, PA_SERVICE, c->svc->name);
	proto_put_bytes(b, PA_LOCAL_ADDR, &c->local, c->local_len);
	proto_put_bytes(b, PA_PEER_ADDR, &c->peer, c->peer_len);
	if (c->socktype != SOCK_STREAM)
		proto_put_u32(b, PA_SOCKTYPE, (uint32_t)c->socktype);
	if (c->has_cred) {
		proto_put_u32(b, PA_PEER_PID, (uint32_t)c->cred_pid);
		proto_put_u32(b, PA_PEER_UID, c->cred_uid);
		proto_put_u32(b, PA_PEER_GID, c->cred_gid);
	}
	return proto_finish(b, 1);
}

bool dispatch_conn(struct conn *c, bool front)
{
	struct service *svc = c->svc;
	struct proto_buf buf;

	if (dispatch_encode(c, &buf) < 0) {
		/* Cannot happen with bounded names and addresses; do not lose the
		 * client silently. */
		log_error("connection %llu: cannot encode DELIVER, closing it", (unsigned long long)c->id);
		svc->dropped++;
		conn_free(c);
		return false;
	}
	for (;;) {
		struct backend *b = dispatch_pick(svc, c);
		if (!b)
			break;
		int rc = ctl_send_deliver(b->cc, c, &buf);
		if (rc < 0) {
			/* The backend's socket is broken: it is dropped on the loop's
			 * next turn and no longer picked. Try the next one. */
			ctl_mark_broken(b->cc, rc);
			registry_update_ready(b);
			continue;
		}
		c->deliveries++;
		if (c->deliveries > 1)
			svc->redelivered++;
		svc->delivered++;
		b->delivered++;
		if (rc == 1) {
			TAILQ_INSERT_TAIL(&b->unacked, c, link);
			b->nunacked++;
		} else {
			b->nqueued++;
		}
		registry_update_ready(b);
		log_debug("connection %llu -> backend %llu (pid %d)", (unsigned long long)c->id,
		          (unsigned long long)b->id, (int)b->cc->id.pid);
		return true;
	}
	if (front)
		TAILQ_INSERT_HEAD(&svc->pending, c, link);
	else
		TAILQ_INSERT_TAIL(&svc->pending, c, link);
	svc->npending++;
	return false;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* One acknowledged connection is finished: it leaves the limits. */
static void release_live(struct backend *b, struct conn *c)
{
	TAILQ_REMOVE(&b->live, c, link);
	b->nlive--;
	conn_free(c); /* uncounts it */
}

int dispatch_ack(struct backend *b, uint32_t received, uint32_t done, const uint8_t *ids, size_t nids)
{
	struct service *svc = b->svc;
	if (received > b->nunacked || done > (uint64_t)b->nacked + received || nids > done)
		return -EPROTO;
	for (uint32_t i = 0; i < received; i++) {
		struct conn *c = TAILQ_FIRST(&b->unacked);
		TAILQ_REMOVE(&b->unacked, c, link);
		/* The backend holds its own copy now; ours can go. A connection
		 * counted per source keeps a record until it is done; the others
		 * stay counted in svc->live until the DONE count. */
		close(c->fd);
		c->fd = -1;
		if (c->src) {
			TAILQ_INSERT_TAIL(&b->live, c, link);
			b->nlive++;
		} else {
			c->counted = false;
			conn_free(c);
		}
	}
	b->nunacked -= received;
	b->nacked += received;
	uint32_t rest = done;
	/* Acknowledged connections that have no record (counted only in
	 * svc->live); a named id releases a record, never one of these. */
	unsigned untracked = b->nacked - b->nlive;
	for (size_t i = 0; i < nids && b->nlive; i++) {
		uint64_t id = get_le64(ids + 8 * i);
		struct conn *c;
		TAILQ_FOREACH(c, &b->live, link)
			if (c->id == id)
				break;
		if (c) {
			release_live(b, c);
			rest--;
		}
	}
	/* What the ids did not name: first the untracked connections, then,
	 * for a peer that named fewer ids than it counted (or none), its
	 * oldest records. Every unit of DONE thus ends exactly one counted
	 * connection, and nlive <= nacked holds (done <= nacked was checked
	 * above). */
	unsigned plain = rest < untracked ? rest : untracked;
	svc->live -= plain < svc->live ? plain : svc->live;
	rest -= plain;
	while (rest && b->nlive) {
		release_live(b, TAILQ_FIRST(&b->live));
		rest--;
	}
	b->nacked -= done;
	registry_update_ready(b);
	return 0;
}

void dispatch_release(struct backend *b)
{
	struct service *svc = b->svc;
	unsigned untracked = b->nacked > b->nlive ? b->nacked - b->nlive : 0;
	while (b->nlive)
		release_live(b, TAILQ_FIRST(&b->live));
	svc->live -= untracked < svc->live ? untracked : svc->live;
	b->nacked = 0;
}

void dispatch_requeue(struct backend *b)
{
	struct service *svc = b->svc;
	struct conn_q tmp;
	struct conn *c;
	unsigned n = 0;

	TAILQ_INIT(&tmp);
	/* Sent first, then still queued in the outgoing buffer: original order. */
	TAILQ_CONCAT(&tmp, &b->unacked, link);
	n += b->nunacked;
	b->nunacked = 0;
	while ((c = ctl_take_queued(b->cc)) != NULL) {
		TAILQ_INSERT_TAIL(&tmp, c, link);
		n++;
	}
	b->nqueued = 0;
	if (n) {
		log_notice("backend %llu (%s) went away with %u unacknowledged connection%s: redelivering",
		           (unsigned long long)b->id, b->cc->who, n, n == 1 ? "" : "s");
	}
	TAILQ_CONCAT(&tmp, &svc->pending, link);
	TAILQ_INIT(&svc->pending);
	TAILQ_CONCAT(&svc->pending, &tmp, link);
	svc->npending += n;
}
