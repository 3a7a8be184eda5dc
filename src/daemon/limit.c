/* limit: token buckets and the client source table. See limit.h for the
 * contract; this file only implements it. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "limit.h"

/* ---- token bucket ----
 *
 * credit is in units of 1/per_ms token: one token costs per_ms units, a
 * full bucket holds count * per_ms units (< 2^64 for any two unsigned
 * values), and each millisecond adds count units. Integer arithmetic
 * throughout, so the state after t ms is exact however t is sliced. */

static bool rate_unlimited(const struct cfg_rate *r)
{
	return r->count == 0 || r->per_ms == 0;
}

static uint64_t rate_capacity(const struct cfg_rate *r)
{
	return (uint64_t)r->count * r->per_ms;
}

/* The bucket's credit at now_ms (no state changed). */
static uint64_t bucket_credit(const struct bucket *b, const struct cfg_rate *r, uint64_t now_ms)
{
	uint64_t cap = rate_capacity(r);
	uint64_t credit = b->credit < cap ? b->credit : cap;
	uint64_t dt = now_ms > b->last_ms ? now_ms - b->last_ms : 0;

	/* per_ms or more fills any bucket; below that dt * count < cap fits. */
	if (dt >= r->per_ms)
		return cap;
	uint64_t add = dt * r->count;
	return add >= cap - credit ? cap : credit + add;
}

void bucket_init(struct bucket *b, const struct cfg_rate *r, uint64_t now_ms)
{
	b->credit = rate_unlimited(r) ? 0 : rate_capacity(r);
	b->last_ms = now_ms;
}

bool bucket_take(struct bucket *b, const struct cfg_rate *r, uint64_t now_ms)
{
	if (rate_unlimited(r))
		return true;
	b->credit = bucket_credit(b, r, now_ms);
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
	if (b->credit < r->per_ms)
		return false;
	b->credit -= r->per_ms;
	return true;
}

uint64_t bucket_wait_ms(const struct bucket *b, const struct cfg_rate *r, uint64_t now_ms)
{
	if (rate_unlimited(r))
		return 0;
	uint64_t credit = bucket_credit(b, r, now_ms);
	if (credit >= r->per_ms)
		return 0;
	uint64_t need = r->per_ms - credit;
	return (need + r->count - 1) / r->count;
}

bool bucket_full(const struct bucket *b, const struct cfg_rate *r, uint64_t now_ms)
{
	if (rate_unlimited(r))
		return true;
	return bucket_credit(b, r, now_ms) == rate_capacity(r);
}

/* ---- client sources ---- */

_Static_assert(sizeof(struct srckey) == 24, "struct srckey must have no padding: it is hashed as bytes");

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int srckey_from(const struct sockaddr *sa, socklen_t len, bool has_cred, uid_t uid, struct srckey *ret)
{
	struct srckey k;

	memset(&k, 0, sizeof(k));
	sa_family_t family = sa && len >= (socklen_t)sizeof(sa_family_t) ? sa->sa_family : AF_UNSPEC;
	if (family == AF_INET) {
		if (len < (socklen_t)sizeof(struct sockaddr_in))
			return -EINVAL;
		k.kind = SRCKEY_IPV4;
		memcpy(k.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (family == AF_INET6) {
		if (len < (socklen_t)sizeof(struct sockaddr_in6))
			return -EINVAL;
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
			k.kind = SRCKEY_IPV4;
			memcpy(k.addr, a + 12, 4);
		} else {
			k.kind = SRCKEY_IPV6;
			memcpy(k.addr, a, 16);
		}
	} else if (has_cred) {
		k.kind = SRCKEY_UID;
		k.uid = (uint32_t)uid;
	} else {
		return -EINVAL;
	}
	*ret = k;
	return 0;
}

int srckey_format(const struct srckey *k, char *buf, size_t size)
{
	char text[SRCKEY_TEXT_MAX];
	int n;

	if (size > 0)
		buf[0] = '\0';
	switch (k->kind) {
	case SRCKEY_IPV4:
	case SRCKEY_IPV6:
		if (!inet_ntop(k->kind == SRCKEY_IPV4 ? AF_INET : AF_INET6, k->addr, text, sizeof(text)))
			return -EINVAL;
		n = (int)strlen(text);
		break;
	case SRCKEY_UID:
		n = snprintf(text, sizeof(text), "uid %u", (unsigned)k->uid);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= size)
		return n < 0 ? -EINVAL : -ENOSPC;
	memcpy(buf, text, (size_t)n + 1);
	return n;
}

bool srckey_equal(const struct srckey *a, const struct srckey *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein), for the table's keyed hash ---- */

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = rotl64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl64(s->v2, 32);
}

static inline void sip_word(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

static uint64_t load_le64(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t *p = data;
	struct sip s = {
		.v0 = k0 ^ 0x736f6d6570736575ull,
		.v1 = k1 ^ 0x646f72616e646f6dull,
		.v2 = k0 ^ 0x6c7967656e657261ull,
		.v3 = k1 ^ 0x7465646279746573ull,
	};
	size_t left = len;

	for (; left >= 8; left -= 8, p += 8)
		sip_word(&s, load_le64(p, 8));
	sip_word(&s, load_le64(p, left) | (uint64_t)(len & 0xff) << 56);
	s.v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/* ---- source table ----
 *
 * Entries live in one array allocated at srctab_new(); dropped ones are
 * on a free list for reuse. The hash index is an array of chain heads (a power of two,
 * at least max, so chains average under one entry). Entries that had
 * live == 0 when last touched sit on the idle list in least recently used
 * order; eviction scans it from the oldest end, and drops from the list
 * any entry the caller has since made live (it returns at srctab_put), so
 * busy entries cost the scan nothing after one visit. */

struct srctab {
	uint64_t k0, k1;    /* SipHash key */
	unsigned max;
	unsigned count;
	uint32_t mask;      /* chain heads - 1 */
	uint32_t *heads;    /* index + 1 of the first entry of each chain, 0 = none */
	uint32_t free_head; /* index + 1 of the first dropped entry to reuse, 0 = none */
	unsigned used;      /* entries [0, used) have been handed out at least once */
	TAILQ_HEAD(srcent_list, srcent) idle;
	struct srcent ents[];
};

/* A hash key that does not block: getrandom(2) if the pool is ready, else
 * whatever varies between runs and hosts, mixed. */
static void srctab_seed(struct srctab *t)
{
	uint64_t k[2];

	if (getrandom(k, sizeof(k), GRND_NONBLOCK) == (ssize_t)sizeof(k)) {
		t->k0 = k[0];
		t->k1 = k[1];
		return;
	}
	struct timespec rt = {0}, mono = {0};
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	uint64_t mix[5] = {
		(uint64_t)rt.tv_sec, (uint64_t)rt.tv_nsec, (uint64_t)mono.tv_sec << 32 ^ (uint64_t)mono.tv_nsec,
		(uint64_t)getpid(), (uint64_t)(uintptr_t)t,
	};
	t->k0 = siphash24(0x0123456789abcdefull, 0xfedcba9876543210ull, mix, sizeof(mix));
	mix[0] ^= t->k0;
	t->k1 = siphash24(0x0f1e2d3c4b5a6978ull, 0x8796a5b4c3d2e1f0ull, mix, sizeof(mix));
}

struct srctab *srctab_new(unsigned max)
{
	if (max == 0 || max > SRCTAB_MAX_ENTRIES) {
		errno = EINVAL;
		return NULL;
	}
	struct srctab *t = calloc(1, sizeof(*t) + (size_t)max * sizeof(struct srcent));
	if (!t)
		return NULL;
	uint32_t nheads = 1;
	while (nheads < max)
		nheads <<= 1;
	t->heads = calloc(nheads, sizeof(*t->heads));
	if (!t->heads) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	t->mask = nheads - 1;
	t->max = max;
	TAILQ_INIT(&t->idle);
	/* Entries are taken from the front of the array as needed (dropped
	 * ones first), so a large table costs memory only as it fills. */
	srctab_seed(t);
	return t;
}

void srctab_free(struct srctab *t)
{
	if (!t)
		return;
	free(t->heads);
	free(t);
}

static uint32_t *srctab_chain(struct srctab *t, const struct srckey *k)
{
	return &t->heads[siphash24(t->k0, t->k1, k, sizeof(*k)) & t->mask];
}

struct srcent *srctab_find(struct srctab *t, const struct srckey *k)
{
	for (uint32_t i = *srctab_chain(t, k); i; i = t->ents[i - 1].next_)
		if (srckey_equal(&t->ents[i - 1].key, k))
			return &t->ents[i - 1];
	return NULL;
}

static void idle_remove(struct srctab *t, struct srcent *e)
{
	if (e->idle_) {
		TAILQ_REMOVE(&t->idle, e, idle_link_);
		e->idle_ = false;
	}
}

/* Mark e used at now_ms: the newest end of the idle list if it is idle,
 * off the list if it is live. */
static void srctab_touch(struct srctab *t, struct srcent *e, uint64_t now_ms)
{
	e->last_ms = now_ms;
	idle_remove(t, e);
	if (e->live == 0) {
		TAILQ_INSERT_TAIL(&t->idle, e, idle_link_);
		e->idle_ = true;
	}
}

static void srctab_drop(struct srctab *t, struct srcent *e)
{
	uint32_t idx = (uint32_t)(e - t->ents) + 1;
	for (uint32_t *pp = srctab_chain(t, &e->key); *pp; pp = &t->ents[*pp - 1].next_) {
		if (*pp == idx) {
			*pp = e->next_;
			break;
		}
	}
	idle_remove(t, e);
	memset(e, 0, sizeof(*e));
	e->next_ = t->free_head;
	t->free_head = idx;
	t->count--;
}

/* The least recently used entry that carries no state, or NULL. */
static struct srcent *srctab_victim(struct srctab *t, const struct cfg_rate *r, uint64_t now_ms)
{
	struct srcent *e, *next;

	for (e = TAILQ_FIRST(&t->idle); e; e = next) {
		next = TAILQ_NEXT(e, idle_link_);
		if (e->live > 0) {
			idle_remove(t, e); /* live now; srctab_put brings it back */
			continue;
		}
		if (bucket_full(&e->bucket, r, now_ms))
			return e;
	}
	return NULL;
}

struct srcent *srctab_get(struct srctab *t, const struct srckey *k, const struct cfg_rate *r, uint64_t now_ms)
{
	struct srcent *e = srctab_find(t, k);
	if (e) {
		srctab_touch(t, e, now_ms);
		return e;
	}
	if (t->count == t->max) {
		struct srcent *victim = srctab_victim(t, r, now_ms);
		if (!victim)
			return NULL;
		srctab_drop(t, victim);
	}
	uint32_t idx = t->free_head;
	if (idx) {
		e = &t->ents[idx - 1];
		t->free_head = e->next_;
	} else {
		idx = ++t->used;
		e = &t->ents[idx - 1];
	}
	memset(e, 0, sizeof(*e));
	e->key = *k;
	bucket_init(&e->bucket, r, now_ms);
	uint32_t *head = srctab_chain(t, k);
	e->next_ = *head;
	*head = idx;
	t->count++;
	srctab_touch(t, e, now_ms);
	return e;
}

void srctab_put(struct srctab *t, struct srcent *e, const struct cfg_rate *r, uint64_t now_ms)
{
	if (e->live == 0 && bucket_full(&e->bucket, r, now_ms))
		srctab_drop(t, e);
	else
		srctab_touch(t, e, now_ms);
}

unsigned srctab_count(const struct srctab *t)
{
	return t->count;
}
