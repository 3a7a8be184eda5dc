/* limit: the arithmetic of connection limits: a token bucket for rates
 * (rate, rate_per_source, spawn_rate) and a bounded table of client
 * sources for the per-source limits (max_per_source, rate_per_source).
 *
 * Time is always passed in (now_ms, a monotonic millisecond clock such as
 * uv_now()); nothing here reads a clock, logs, or does I/O. Only
 * srctab_new() allocates (once, for the table's full size) and reads
 * getrandom(2) once for its hash key.
 *
 * Token bucket. A struct cfg_rate {count, per_ms} allows at most count
 * events per per_ms: the bucket holds up to count tokens, starts full, and
 * refills continuously at count tokens per per_ms. count 0 (or per_ms 0)
 * means no limit: every take succeeds and the bucket is always full.
 * Precision: the bucket counts in units of 1/per_ms token, gaining exactly
 * count units per millisecond, all in 64-bit integers: no rounding, no
 * drift however the time is sliced, and no overflow for any count, per_ms
 * or time jump (a gap of per_ms or more simply fills the bucket). The clock
 * is never assumed to go backwards: a now_ms earlier than the bucket's last
 * update counts as no time passing. A bucket belongs to one rate; use the
 * same r on every call (after a reload that changes the rate, bucket_init
 * it again; a bucket used with a smaller rate is only clamped to it).
 *
 * Source table. One per service that has max_per_source or
 * rate_per_source. An entry per client source (struct srckey: an IPv4
 * address, an IPv6 address, or the uid of a Unix client) holds the
 * caller-maintained count of the source's live connections and its
 * rate_per_source bucket. The table never grows past the maximum given to
 * srctab_new(); when it is full, srctab_get() reuses the least recently
 * used entry that carries no state (live == 0 and a full bucket, so
 * forgetting it changes nothing), and when no entry can be reused it
 * returns NULL: the caller then refuses the connection (counted as
 * refused by source), since admitting it would mean forgetting a source
 * that is still limited. Lookups use a keyed hash (SipHash-2-4 with a key
 * from getrandom(2)) so remote clients cannot choose addresses that
 * collide; expected O(1) per operation.
 *
 * Use: e = srctab_get(t, &key, rate, now); refuse if !e, if e->live has
 * reached max_per_source, or if !bucket_take(&e->bucket, rate, now);
 * else e->live++ and keep e (valid until srctab_put or srctab_free) with the
 * connection; when it ends, e->live-- and srctab_put(t, e, rate, now).
 */
#ifndef HANDOFF_LIMIT_H
#define HANDOFF_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

/* ---- token bucket ---- */

struct bucket {
	uint64_t credit;  /* tokens * per_ms: a token is per_ms units; count units accrue per ms */
	uint64_t last_ms; /* when credit was last brought up to date */
};

/* Start full at now_ms. */
void bucket_init(struct bucket *b, const struct cfg_rate *r, uint64_t now_ms);

/* Refill up to now_ms and take one token. True if there was one (and it is
 * taken), false if the bucket is empty (nothing changes but the refill). */
bool bucket_take(struct bucket *b, const struct cfg_rate *r, uint64_t now_ms);

/* Milliseconds from now_ms until a take would succeed: 0 if it would now,
 * else at least 1 (rounded up, so a take at now_ms + the result succeeds). */
uint64_t bucket_wait_ms(const struct bucket *b, const struct cfg_rate *r, uint64_t now_ms);

/* Is the bucket full at now_ms (so it carries no state)? */
bool bucket_full(const struct bucket *b, const struct cfg_rate *r, uint64_t now_ms);

/* ---- client sources ---- */

enum srckey_kind {
	SRCKEY_IPV4 = 1, /* addr[0..3]; also IPv4 clients of dual-stack sockets (v4-mapped) */
	SRCKEY_IPV6 = 2, /* addr[0..15] */
	SRCKEY_UID = 3,  /* uid: a Unix client, by its peer credentials */
};

/* Compared and hashed as raw bytes: every unused byte is zero (srckey_from
 * zeroes the whole struct), and the layout has no padding. */
struct srckey {
	uint32_t kind;    /* enum srckey_kind */
	uint32_t uid;     /* SRCKEY_UID, else 0 */
	uint8_t addr[16]; /* network byte order; zero beyond the address */
};

/* The source of a client: its IP address (port ignored; ::ffff:a.b.c.d folds
 * to the IPv4 a.b.c.d) for AF_INET/AF_INET6 addresses, else, when has_cred,
 * the uid from its peer credentials (Unix clients, named or not). Returns
 * 0, or -EINVAL when there is no key: a non-IP client without credentials,
 * or an IP address shorter than its family's sockaddr. sa may be NULL when
 * len is 0. */
int srckey_from(const struct sockaddr *sa, socklen_t len, bool has_cred, uid_t uid, struct srckey *ret);

/* "192.0.2.1", "2001:db8::1", "uid 1000". Returns the length, -ENOSPC if it
 * does not fit (buf then holds "" if size > 0), -EINVAL for a bad kind.
 * SRCKEY_TEXT_MAX always fits. */
#define SRCKEY_TEXT_MAX 46
int srckey_format(const struct srckey *k, char *buf, size_t size);

bool srckey_equal(const struct srckey *a, const struct srckey *b);

/* One source. key, live, bucket and last_ms are the caller's to read;
 * live and bucket are the caller's to change (live++ when it admits a
 * connection, live-- before srctab_put; bucket_take on bucket). The fields
 * after them are the table's. */
struct srcent {
	struct srckey key;
	unsigned live;         /* live connections from this source */
	struct bucket bucket;  /* rate_per_source; a new entry's starts full */
	uint64_t last_ms;      /* last srctab_get or srctab_put of this entry */
	/* private to limit.c */
	uint32_t next_;        /* hash chain, or free list: index + 1, 0 = none */
	bool idle_;            /* on the idle list */
	TAILQ_ENTRY(srcent) idle_link_;
};

struct srctab;

/* Largest max srctab_new() accepts. */
#define SRCTAB_MAX_ENTRIES (1u << 24)

/* A table for at most max entries (1..SRCTAB_MAX_ENTRIES), allocated at
 * once. Returns NULL with errno ENOMEM, or EINVAL for a max out of range.
 * If the kernel's random pool is not ready yet (early boot), the hash key
 * is derived from clocks and addresses instead of blocking. */
struct srctab *srctab_new(unsigned max);

/* Free the table and every entry in it; NULL is fine. Entry pointers die
 * with it. */
void srctab_free(struct srctab *t);

/* The entry for k, created (live 0, bucket full by r at now_ms) if there is
 * none, and marked used at now_ms. When the table is full, the least
 * recently used entry with live == 0 and a full bucket is reused; if there
 * is none, NULL: refuse the connection (see above). The pointer stays valid
 * until srctab_put() drops the entry or the table is freed; an entry with
 * live > 0 is never dropped or reused. */
struct srcent *srctab_get(struct srctab *t, const struct srckey *k, const struct cfg_rate *r, uint64_t now_ms);

/* The entry for k, or NULL. Changes nothing. */
struct srcent *srctab_find(struct srctab *t, const struct srckey *k);

/* Hand e back after a connection ended (live already decremented) or after
 * srctab_get() when the connection was refused: if e is idle (live == 0 and
 * its bucket full at now_ms) it is dropped at once and the pointer dies;
 * otherwise it stays (and is marked used at now_ms). */
void srctab_put(struct srctab *t, struct srcent *e, const struct cfg_rate *r, uint64_t now_ms);

/* Entries in the table now. */
unsigned srctab_count(const struct srctab *t);

#endif
