/* Unit tests for src/daemon/limit.c: the token bucket (bursts, refill
 * times to the millisecond, no drift, no limit, extreme rates and time
 * jumps), source keys (v4-mapped folding, Unix uids) and the source table
 * (find/create, least-recently-used eviction of stateless entries only,
 * refusal when nothing can go, dropping idle entries, staying bounded
 * under 100k keys). Time is passed in, so nothing here sleeps. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "limit.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

static struct cfg_rate rate(unsigned count, unsigned per_ms)
{
	return (struct cfg_rate){.count = count, .per_ms = per_ms};
}

/* Take every token at now; returns how many there were. */
static unsigned drain(struct bucket *b, const struct cfg_rate *r, uint64_t now)
{
	unsigned n = 0;
	while (bucket_take(b, r, now)) {
		n++;
		cr_assert_lt(n, 10000000u, "bucket never empties");
	}
	return n;
}

struct client {
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct client ip(const char *text, uint16_t port)
{
	struct client c;
	memset(&c, 0, sizeof(c));
	struct sockaddr_in *sin = (struct sockaddr_in *)&c.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c.ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		c.len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		c.len = sizeof(*sin6);
	} else {
		cr_assert_fail("bad test address '%s'", text);
	}
	return c;
}

#define SA(c) ((const struct sockaddr *)&(c).ss), (c).len

static struct srckey key_ip(const char *text)
{
	struct client c = ip(text, 1234);
	struct srckey k;
	cr_assert_eq(srckey_from(SA(c), false, 0, &k), 0, "no key for %s", text);
	return k;
}

static struct srckey key_uid(uid_t uid)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct srckey k;
	cr_assert_eq(srckey_from((struct sockaddr *)&sun, sizeof(sa_family_t), true, uid, &k), 0);
	return k;
}

static struct srckey key_n(uint32_t n)
{
	struct srckey k;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(n)};
	cr_assert_eq(srckey_from((struct sockaddr *)&sin, sizeof(sin), false, 0, &k), 0);
	return k;
}

/* A small deterministic generator (xorshift64*), so failures repeat. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* ---- token bucket ---- */

TEST(bucket, burst_of_count_then_refusal)
{
	static const unsigned counts[] = {1, 2, 5, 200, 1000};
	for (size_t i = 0; i < N_ELEMENTS(counts); i++) {
		struct cfg_rate r = rate(counts[i], 1000);
		struct bucket b;
		bucket_init(&b, &r, 5000);
		cr_assert(bucket_full(&b, &r, 5000));
		cr_assert_eq(bucket_wait_ms(&b, &r, 5000), 0);
		cr_assert_eq(drain(&b, &r, 5000), counts[i], "burst of %u from a full bucket of %u", drain(&b, &r, 5000),
		             counts[i]);
		cr_assert_not(bucket_take(&b, &r, 5000));
		cr_assert_not(bucket_full(&b, &r, 5000));
		cr_assert_geq(bucket_wait_ms(&b, &r, 5000), 1);
	}
}

TEST(bucket, refill_time_and_wait_exact)
{
	static const struct {
		unsigned count, per_ms;
		uint64_t wait; /* from empty to one token: ceil(per_ms / count) */
	} cases[] = {
		{1, 1000, 1000}, {3, 1000, 334}, {7, 60000, 8572}, {200, 1000, 5},
		{1000, 1, 1},    {60, 60000, 1000}, {3, 10, 4}, {1, 1, 1},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_rate r = rate(cases[i].count, cases[i].per_ms);
		struct bucket b;
		uint64_t t0 = 123456;
		bucket_init(&b, &r, t0);
		drain(&b, &r, t0);
		uint64_t w = cases[i].wait;
		cr_assert_eq(bucket_wait_ms(&b, &r, t0), w, "%u/%ums: wait %llu, expected %llu", cases[i].count,
		             cases[i].per_ms, (unsigned long long)bucket_wait_ms(&b, &r, t0), (unsigned long long)w);
		/* The wait counts down with time. */
		for (uint64_t d = 1; d < w; d += (w / 7) + 1)
			cr_assert_eq(bucket_wait_ms(&b, &r, t0 + d), w - d, "%u/%ums at +%llu", cases[i].count,
			             cases[i].per_ms, (unsigned long long)d);
		if (w > 1) {
			cr_assert_not(bucket_take(&b, &r, t0 + w - 1), "%u/%ums: a token before its time",
			              cases[i].count, cases[i].per_ms);
			cr_assert_eq(bucket_wait_ms(&b, &r, t0 + w - 1), 1);
		}
		cr_assert_eq(bucket_wait_ms(&b, &r, t0 + w), 0);
		cr_assert(bucket_take(&b, &r, t0 + w), "%u/%ums: no token after %llu ms", cases[i].count,
		          cases[i].per_ms, (unsigned long long)w);
	}
}

TEST(bucket, full_again_after_per_ms)
{
	struct cfg_rate r = rate(3, 1000);
	struct bucket b;
	bucket_init(&b, &r, 0);
	cr_assert(bucket_take(&b, &r, 0));
	cr_assert_not(bucket_full(&b, &r, 0));
	cr_assert_not(bucket_full(&b, &r, 333));
	cr_assert(bucket_full(&b, &r, 334), "one token is back after ceil(1000/3) ms");
	drain(&b, &r, 0);
	cr_assert_not(bucket_full(&b, &r, 999));
	cr_assert(bucket_full(&b, &r, 1000), "an empty bucket is full after per_ms");
	/* Queries change nothing. */
	cr_assert_not(bucket_full(&b, &r, 999));
	/* Nor does a refill overshoot: full stays full, at capacity. */
	cr_assert_eq(drain(&b, &r, 5000), 3);
}

TEST(bucket, no_drift_over_many_small_steps)
{
	static const struct {
		unsigned count, per_ms;
	} cases[] = {{3, 1000}, {7, 1000}, {1, 3}, {200, 1000}, {13, 60000}, {1000, 7}};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_rate r = rate(cases[i].count, cases[i].per_ms);
		struct bucket b;
		bucket_init(&b, &r, 0);
		drain(&b, &r, 0);
		/* Greedy taking, one millisecond at a time, for 10 periods: exactly
		 * 10 * count tokens, the nth no earlier than n * per_ms / count. */
		uint64_t periods = 10, got = 0;
		for (uint64_t t = 1; t <= periods * r.per_ms; t++) {
			while (bucket_take(&b, &r, t)) {
				got++;
				cr_assert_geq(t * r.count, got * r.per_ms, "%u/%ums: token %llu early at %llu",
				              r.count, r.per_ms, (unsigned long long)got, (unsigned long long)t);
			}
			cr_assert_lt(t * r.count, (got + 1) * r.per_ms, "%u/%ums: token %llu late at %llu", r.count,
			             r.per_ms, (unsigned long long)got + 1, (unsigned long long)t);
		}
		cr_assert_eq(got, periods * r.count, "%u/%ums: %llu tokens in %llu periods", r.count, r.per_ms,
		             (unsigned long long)got, (unsigned long long)periods);
	}
}

TEST(bucket, count_zero_is_unlimited)
{
	struct cfg_rate zero = rate(0, 1000), nop = rate(10, 0);
	const struct cfg_rate *rs[] = {&zero, &nop};
	for (size_t i = 0; i < N_ELEMENTS(rs); i++) {
		struct bucket b;
		bucket_init(&b, rs[i], 7);
		for (int n = 0; n < 100000; n++)
			cr_assert(bucket_take(&b, rs[i], 7), "take %d refused with no limit", n);
		cr_assert(bucket_full(&b, rs[i], 7));
		cr_assert_eq(bucket_wait_ms(&b, rs[i], 7), 0);
		cr_assert(bucket_take(&b, rs[i], 0));
		cr_assert(bucket_take(&b, rs[i], UINT64_MAX));
	}
}

TEST(bucket, extreme_rates_and_time_jumps)
{
	/* The largest capacity: count * per_ms just below 2^64. */
	struct cfg_rate big = rate(UINT_MAX, UINT_MAX);
	struct bucket b;
	bucket_init(&b, &big, 0);
	cr_assert(bucket_full(&b, &big, 0));
	cr_assert(bucket_take(&b, &big, 0));
	cr_assert_not(bucket_full(&b, &big, 0));
	cr_assert_eq(bucket_wait_ms(&b, &big, 0), 0);
	cr_assert(bucket_full(&b, &big, 1), "UINT_MAX tokens per UINT_MAX ms: one per ms");
	cr_assert(bucket_full(&b, &big, UINT64_MAX));
	cr_assert(bucket_take(&b, &big, UINT64_MAX));

	/* One token per UINT_MAX ms. */
	struct cfg_rate slow = rate(1, UINT_MAX);
	bucket_init(&b, &slow, 1000);
	cr_assert(bucket_take(&b, &slow, 1000));
	cr_assert_eq(bucket_wait_ms(&b, &slow, 1000), UINT_MAX);
	cr_assert_not(bucket_take(&b, &slow, 1000 + (uint64_t)UINT_MAX - 1));
	cr_assert(bucket_take(&b, &slow, 1000 + (uint64_t)UINT_MAX));

	/* A huge number of tokens per ms (count far above per_ms). */
	struct cfg_rate fast = rate(UINT_MAX, 1);
	bucket_init(&b, &fast, 0);
	cr_assert(bucket_take(&b, &fast, 0));
	cr_assert(bucket_full(&b, &fast, 1));

	/* Time jumping to the end of the clock fills the bucket, no more. */
	struct cfg_rate r = rate(5, 1000);
	bucket_init(&b, &r, 0);
	drain(&b, &r, 0);
	cr_assert(bucket_full(&b, &r, UINT64_MAX));
	cr_assert_eq(bucket_wait_ms(&b, &r, UINT64_MAX), 0);
	cr_assert_eq(drain(&b, &r, UINT64_MAX), 5, "a jump of 2^64 ms overflowed the refill");
	cr_assert_eq(bucket_wait_ms(&b, &r, UINT64_MAX), 200);

	/* Starting near the end of the clock. */
	bucket_init(&b, &r, UINT64_MAX - 300);
	drain(&b, &r, UINT64_MAX - 300);
	cr_assert_eq(bucket_wait_ms(&b, &r, UINT64_MAX - 300), 200);
	cr_assert_not(bucket_take(&b, &r, UINT64_MAX - 101));
	cr_assert(bucket_take(&b, &r, UINT64_MAX - 100));
}

TEST(bucket, clock_going_backwards_gives_nothing)
{
	struct cfg_rate r = rate(5, 1000);
	struct bucket b;
	bucket_init(&b, &r, 10000);
	drain(&b, &r, 10000);
	cr_assert_not(bucket_take(&b, &r, 5000));
	cr_assert_not(bucket_take(&b, &r, 0));
	cr_assert_eq(bucket_wait_ms(&b, &r, 5000), 200, "an earlier now counts as no time passing");
	cr_assert_not(bucket_full(&b, &r, 0));
	/* Going back did not move the bucket's clock back either. */
	cr_assert_not(bucket_take(&b, &r, 10199));
	cr_assert(bucket_take(&b, &r, 10200));
}

TEST(bucket, smaller_rate_clamps)
{
	struct cfg_rate r10 = rate(10, 1000), r2 = rate(2, 1000);
	struct bucket b;
	bucket_init(&b, &r10, 0);
	cr_assert(bucket_full(&b, &r2, 0));
	cr_assert_eq(drain(&b, &r2, 0), 2, "a bucket used with a smaller rate holds no more than it allows");
}

/* ---- source keys ---- */

TEST(srckey, from_addresses_and_credentials)
{
	struct srckey a, b;
	char buf[SRCKEY_TEXT_MAX];

	struct client v4 = ip("192.0.2.1", 1000), v4b = ip("192.0.2.1", 2000);
	struct client mapped = ip("::ffff:192.0.2.1", 3000), v6 = ip("2001:db8::1", 1000);
	struct client other = ip("192.0.2.2", 1000), v6b = ip("2001:db8::2", 1000);

	cr_assert_eq(srckey_from(SA(v4), false, 0, &a), 0);
	cr_assert_eq(a.kind, SRCKEY_IPV4);
	cr_assert_eq(srckey_format(&a, buf, sizeof(buf)), 9);
	cr_assert_str_eq(buf, "192.0.2.1");
	/* The port is not part of the source. */
	cr_assert_eq(srckey_from(SA(v4b), false, 0, &b), 0);
	cr_assert(srckey_equal(&a, &b));
	/* A v4-mapped client folds to its IPv4 address. */
	cr_assert_eq(srckey_from(SA(mapped), false, 0, &b), 0);
	cr_assert_eq(b.kind, SRCKEY_IPV4);
	cr_assert(srckey_equal(&a, &b), "::ffff:192.0.2.1 and 192.0.2.1 are different sources");
	cr_assert_eq(srckey_from(SA(other), false, 0, &b), 0);
	cr_assert_not(srckey_equal(&a, &b));
	/* Credentials do not change an IP client's key. */
	cr_assert_eq(srckey_from(SA(v4), true, 1000, &b), 0);
	cr_assert(srckey_equal(&a, &b));

	cr_assert_eq(srckey_from(SA(v6), false, 0, &a), 0);
	cr_assert_eq(a.kind, SRCKEY_IPV6);
	cr_assert_eq(srckey_format(&a, buf, sizeof(buf)), 11);
	cr_assert_str_eq(buf, "2001:db8::1");
	cr_assert_eq(srckey_from(SA(v6b), false, 0, &b), 0);
	cr_assert_not(srckey_equal(&a, &b));

	/* Unix clients: by uid, named or not; without credentials no key. */
	struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/run/x.sock"};
	socklen_t named = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sun.sun_path) + 1);
	cr_assert_eq(srckey_from((struct sockaddr *)&sun, named, true, 1000, &a), 0);
	cr_assert_eq(a.kind, SRCKEY_UID);
	cr_assert_eq(srckey_format(&a, buf, sizeof(buf)), 8);
	cr_assert_str_eq(buf, "uid 1000");
	cr_assert_eq(srckey_from((struct sockaddr *)&sun, sizeof(sa_family_t), true, 1000, &b), 0);
	cr_assert(srckey_equal(&a, &b));
	cr_assert_eq(srckey_from(NULL, 0, true, 1000, &b), 0);
	cr_assert(srckey_equal(&a, &b));
	cr_assert_eq(srckey_from(NULL, 0, true, 0, &b), 0);
	cr_assert_not(srckey_equal(&a, &b));
	cr_assert_eq(srckey_format(&b, buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "uid 0");

	memset(&b, 0x5a, sizeof(b));
	struct srckey before = b;
	cr_assert_eq(srckey_from((struct sockaddr *)&sun, named, false, 0, &b), -EINVAL);
	cr_assert_eq(srckey_from((struct sockaddr *)&sun, sizeof(sa_family_t), false, 0, &b), -EINVAL);
	cr_assert_eq(srckey_from(NULL, 0, false, 0, &b), -EINVAL);
	/* A truncated IP address is garbage, not a Unix client. */
	cr_assert_eq(srckey_from((struct sockaddr *)&v4.ss, v4.len - 1, true, 5, &b), -EINVAL);
	cr_assert_eq(srckey_from((struct sockaddr *)&v6.ss, v6.len - 1, true, 5, &b), -EINVAL);
	cr_assert_eq(memcmp(&b, &before, sizeof(b)), 0, "*ret changed on error");
}

TEST(srckey, format_limits)
{
	char buf[SRCKEY_TEXT_MAX];
	struct srckey k = key_ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	int n = srckey_format(&k, buf, sizeof(buf));
	cr_assert(n > 0 && n < SRCKEY_TEXT_MAX);
	k = key_uid(4294967294u);
	cr_assert_gt(srckey_format(&k, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "uid 4294967294");

	k = key_ip("192.0.2.1");
	cr_assert_eq(srckey_format(&k, buf, 10), 9);
	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(srckey_format(&k, buf, 9), -ENOSPC);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(srckey_format(&k, buf, 0), -ENOSPC);
	k.kind = 77;
	cr_assert_eq(srckey_format(&k, buf, sizeof(buf)), -EINVAL);
}

/* ---- source table ---- */

TEST(srctab, new_and_free)
{
	errno = 0;
	cr_assert_null(srctab_new(0));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(srctab_new(SRCTAB_MAX_ENTRIES + 1));
	cr_assert_eq(errno, EINVAL);
	srctab_free(NULL);
	struct srctab *t = srctab_new(1);
	cr_assert_not_null(t);
	cr_assert_eq(srctab_count(t), 0);
	srctab_free(t);
}

TEST(srctab, create_and_find)
{
	struct cfg_rate r = rate(2, 1000);
	struct srctab *t = srctab_new(8);
	cr_assert_not_null(t);
	struct srckey a = key_ip("192.0.2.1"), b = key_ip("2001:db8::1"), u = key_uid(1000);

	cr_assert_null(srctab_find(t, &a));
	struct srcent *ea = srctab_get(t, &a, &r, 100);
	cr_assert_not_null(ea);
	cr_assert(srckey_equal(&ea->key, &a));
	cr_assert_eq(ea->live, 0);
	cr_assert_eq(ea->last_ms, 100);
	cr_assert(bucket_full(&ea->bucket, &r, 100), "a new entry's bucket starts full");
	cr_assert_eq(srctab_count(t), 1);
	cr_assert_eq(srctab_find(t, &a), ea);
	cr_assert_null(srctab_find(t, &b));

	ea->live++;
	cr_assert(bucket_take(&ea->bucket, &r, 100));
	struct srcent *eb = srctab_get(t, &b, &r, 101);
	struct srcent *eu = srctab_get(t, &u, &r, 102);
	cr_assert(eb && eu && eb != ea && eu != ea && eu != eb);
	cr_assert_eq(srctab_count(t), 3);
	/* Getting again finds the same entry with its state. */
	cr_assert_eq(srctab_get(t, &a, &r, 200), ea);
	cr_assert_eq(ea->live, 1);
	cr_assert_eq(ea->last_ms, 200);
	cr_assert_not(bucket_full(&ea->bucket, &r, 200));
	cr_assert_eq(srctab_count(t), 3);
	cr_assert_eq(srctab_find(t, &b), eb);
	cr_assert_eq(srctab_find(t, &u), eu);
	srctab_free(t);
}

TEST(srctab, v4_mapped_clients_share_the_ipv4_entry)
{
	struct cfg_rate r = rate(1, 1000);
	struct srctab *t = srctab_new(4);
	cr_assert_not_null(t);
	struct srckey k4, k6;
	struct client c4 = ip("198.51.100.7", 1), c6 = ip("::ffff:198.51.100.7", 2);
	cr_assert_eq(srckey_from(SA(c4), false, 0, &k4), 0);
	cr_assert_eq(srckey_from(SA(c6), false, 0, &k6), 0);
	struct srcent *e = srctab_get(t, &k4, &r, 0);
	cr_assert_not_null(e);
	cr_assert(bucket_take(&e->bucket, &r, 0));
	cr_assert_eq(srctab_get(t, &k6, &r, 1), e);
	cr_assert_not(bucket_take(&e->bucket, &r, 1), "the dual-stack client got a second bucket");
	cr_assert_eq(srctab_count(t), 1);
	srctab_free(t);
}

TEST(srctab, evicts_least_recently_used_stateless_entry)
{
	struct cfg_rate r = rate(0, 0); /* no rate: every bucket is always full */
	struct srctab *t = srctab_new(3);
	cr_assert_not_null(t);
	struct srckey a = key_n(1), b = key_n(2), c = key_n(3), d = key_n(4), e = key_n(5), f = key_n(6);

	cr_assert_not_null(srctab_get(t, &a, &r, 1));
	cr_assert_not_null(srctab_get(t, &b, &r, 2));
	cr_assert_not_null(srctab_get(t, &c, &r, 3));
	cr_assert_not_null(srctab_get(t, &a, &r, 4)); /* a is now the most recent */
	cr_assert_eq(srctab_count(t), 3);

	cr_assert_not_null(srctab_get(t, &d, &r, 5));
	cr_assert_eq(srctab_count(t), 3);
	cr_assert_null(srctab_find(t, &b), "b was the least recently used and should have gone");
	cr_assert(srctab_find(t, &a) && srctab_find(t, &c) && srctab_find(t, &d));

	cr_assert_not_null(srctab_get(t, &e, &r, 6));
	cr_assert_null(srctab_find(t, &c), "c should have gone next");
	cr_assert(srctab_find(t, &a) && srctab_find(t, &d) && srctab_find(t, &e));

	/* srctab_find does not count as use. */
	cr_assert_not_null(srctab_find(t, &a));
	cr_assert_not_null(srctab_get(t, &f, &r, 7));
	cr_assert_null(srctab_find(t, &a), "a should have gone: find must not refresh it");
	cr_assert(srctab_find(t, &d) && srctab_find(t, &e) && srctab_find(t, &f));
	srctab_free(t);
}

TEST(srctab, eviction_skips_live_and_limited_entries_and_refuses)
{
	struct cfg_rate r = rate(1, 1000);
	struct srctab *t = srctab_new(3);
	cr_assert_not_null(t);
	struct srckey a = key_n(1), b = key_n(2), c = key_n(3), d = key_n(4), e = key_n(5);

	struct srcent *ea = srctab_get(t, &a, &r, 0); /* oldest, but live */
	ea->live = 1;
	struct srcent *eb = srctab_get(t, &b, &r, 1); /* idle, but its bucket is not full */
	cr_assert(bucket_take(&eb->bucket, &r, 1));
	cr_assert_not_null(srctab_get(t, &c, &r, 2)); /* stateless */

	struct srcent *ed = srctab_get(t, &d, &r, 3);
	cr_assert_not_null(ed);
	cr_assert_null(srctab_find(t, &c), "c was the only entry without state");
	cr_assert_eq(srctab_find(t, &a), ea);
	cr_assert_eq(srctab_find(t, &b), eb);
	ed->live = 1;

	/* a live, b limited, d live: nothing can go. */
	cr_assert_null(srctab_get(t, &e, &r, 500));
	cr_assert_eq(srctab_count(t), 3);
	cr_assert(srctab_find(t, &a) && srctab_find(t, &b) && srctab_find(t, &d), "a refusal dropped an entry");
	cr_assert_null(srctab_find(t, &e));

	/* Once b's bucket is full again, b carries no state and can go. */
	cr_assert_null(srctab_get(t, &e, &r, 1000));
	cr_assert_not_null(srctab_get(t, &e, &r, 1001));
	cr_assert_null(srctab_find(t, &b));
	cr_assert(srctab_find(t, &a) && srctab_find(t, &d) && srctab_find(t, &e));
	srctab_free(t);
}

TEST(srctab, refuses_when_all_live_until_one_ends)
{
	struct cfg_rate r = rate(0, 0);
	struct srctab *t = srctab_new(4);
	cr_assert_not_null(t);
	struct srcent *ents[4];
	for (uint32_t i = 0; i < 4; i++) {
		struct srckey k = key_n(100 + i);
		ents[i] = srctab_get(t, &k, &r, i);
		cr_assert_not_null(ents[i]);
		ents[i]->live++;
	}
	struct srckey x = key_n(999);
	for (int n = 0; n < 3; n++)
		cr_assert_null(srctab_get(t, &x, &r, 10 + (uint64_t)n), "a live entry was evicted");
	for (uint32_t i = 0; i < 4; i++) {
		struct srckey k = key_n(100 + i);
		cr_assert_eq(srctab_find(t, &k), ents[i]);
		cr_assert_eq(ents[i]->live, 1);
	}
	/* A connection of entry 2 ends: it is dropped, and x fits. */
	ents[2]->live--;
	srctab_put(t, ents[2], &r, 20);
	cr_assert_eq(srctab_count(t), 3);
	struct srcent *ex = srctab_get(t, &x, &r, 21);
	cr_assert_not_null(ex);
	cr_assert_eq(srctab_count(t), 4);
	srctab_free(t);
}

TEST(srctab, put_drops_idle_entries_only)
{
	struct cfg_rate r = rate(2, 1000);
	struct srctab *t = srctab_new(8);
	cr_assert_not_null(t);
	struct srckey a = key_n(1), b = key_n(2), c = key_uid(33);

	/* Two connections from a, each taking a token. */
	struct srcent *ea = srctab_get(t, &a, &r, 0);
	cr_assert(bucket_take(&ea->bucket, &r, 0));
	ea->live++;
	cr_assert_eq(srctab_get(t, &a, &r, 10), ea);
	cr_assert(bucket_take(&ea->bucket, &r, 10));
	ea->live++;

	/* One ends: still live, kept. */
	ea->live--;
	srctab_put(t, ea, &r, 20);
	cr_assert_eq(srctab_find(t, &a), ea);
	/* The other ends while the bucket refills: kept (it still limits a). */
	ea->live--;
	srctab_put(t, ea, &r, 30);
	cr_assert_eq(srctab_find(t, &a), ea);
	cr_assert_eq(srctab_count(t), 1);
	cr_assert_not(bucket_full(&ea->bucket, &r, 30));

	/* An entry handed back when its bucket is full goes at once. */
	struct srcent *eb = srctab_get(t, &b, &r, 40);
	eb->live++;
	cr_assert_eq(srctab_count(t), 2);
	eb->live--;
	srctab_put(t, eb, &r, 50);
	cr_assert_null(srctab_find(t, &b));
	cr_assert_eq(srctab_count(t), 1);

	/* A refused connection's entry (never made live) goes back too. */
	struct srcent *ec = srctab_get(t, &c, &r, 60);
	srctab_put(t, ec, &r, 60);
	cr_assert_null(srctab_find(t, &c));

	/* a, once refilled and handed back again, goes too. */
	ea = srctab_get(t, &a, &r, 2000);
	cr_assert(bucket_full(&ea->bucket, &r, 2000));
	srctab_put(t, ea, &r, 2000);
	cr_assert_null(srctab_find(t, &a));
	cr_assert_eq(srctab_count(t), 0);

	/* The freed slots are reused: fill the table completely. */
	for (uint32_t i = 0; i < 8; i++) {
		struct srckey k = key_n(1000 + i);
		struct srcent *e = srctab_get(t, &k, &r, 3000);
		cr_assert_not_null(e);
		e->live = 1;
	}
	cr_assert_eq(srctab_count(t), 8);
	srctab_free(t);
}

TEST(srctab, every_key_findable_under_heavy_chaining)
{
	/* Keys that differ in one byte or one bit; every one findable after
	 * half of them are dropped in a scattered order. */
	enum { N = 4096 };
	struct cfg_rate r = rate(0, 0);
	struct srctab *t = srctab_new(N);
	cr_assert_not_null(t);
	static struct srcent *ents[N];
	for (uint32_t i = 0; i < N; i++) {
		struct srckey k = i % 2 ? key_n(i) : key_uid(i);
		ents[i] = srctab_get(t, &k, &r, i);
		cr_assert_not_null(ents[i]);
		ents[i]->live = 1;
	}
	cr_assert_eq(srctab_count(t), N);
	for (uint32_t i = 0; i < N; i += 3) {
		ents[i]->live = 0;
		srctab_put(t, ents[i], &r, N);
	}
	for (uint32_t i = 0; i < N; i++) {
		struct srckey k = i % 2 ? key_n(i) : key_uid(i);
		struct srcent *e = srctab_find(t, &k);
		if (i % 3 == 0)
			cr_assert_null(e, "dropped key %u still found", i);
		else
			cr_assert_eq(e, ents[i], "key %u lost", i);
	}
	srctab_free(t);
}

TEST(srctab, stays_bounded_under_100k_random_sources)
{
	enum { MAX = 1000, KEYS = 100000, OPEN = 600 };
	struct cfg_rate r = rate(2, 1000);
	struct srctab *t = srctab_new(MAX);
	cr_assert_not_null(t);
	/* A ring of open connections: each holds its entry; the oldest ends
	 * when the ring is full. */
	struct {
		struct srcent *e;
		struct srckey k;
	} open[OPEN];
	unsigned nopen = 0, head = 0, admitted = 0, refused_full = 0, refused_rate = 0;
	uint64_t now = 1;

	for (unsigned i = 0; i < KEYS; i++) {
		struct srckey k;
		uint64_t x = rnd();
		if (x & 1) {
			k = key_n((uint32_t)(x >> 32));
		} else {
			struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
			uint64_t y = rnd();
			memcpy(&s6.sin6_addr, &x, 8);
			memcpy((uint8_t *)&s6.sin6_addr + 8, &y, 8);
			s6.sin6_addr.s6_addr[0] = 0x20; /* not v4-mapped */
			cr_assert_eq(srckey_from((struct sockaddr *)&s6, sizeof(s6), false, 0, &k), 0);
		}
		/* Some sources come back often. */
		if (i % 4 == 0)
			k = key_n((uint32_t)(rnd() % 16));
		now += rnd() % 3;

		struct srcent *e = srctab_get(t, &k, &r, now);
		cr_assert_leq(srctab_count(t), MAX);
		if (!e) {
			refused_full++;
			continue;
		}
		cr_assert(srckey_equal(&e->key, &k));
		if (!bucket_take(&e->bucket, &r, now)) {
			refused_rate++;
			srctab_put(t, e, &r, now);
			continue;
		}
		admitted++;
		e->live++;
		if (nopen == OPEN) {
			struct srcent *old = open[head].e;
			cr_assert_eq(srctab_find(t, &open[head].k), old, "an open connection's entry moved");
			cr_assert_gt(old->live, 0);
			old->live--;
			srctab_put(t, old, &r, now);
			nopen--;
			head = (head + 1) % OPEN;
		}
		unsigned slot = (head + nopen) % OPEN;
		open[slot].e = e;
		open[slot].k = k;
		nopen++;
	}
	cr_assert_leq(srctab_count(t), MAX);
	cr_assert_gt(admitted, KEYS / 2, "admitted %u of %u (refused: %u table full, %u rate)", admitted, KEYS,
	             refused_full, refused_rate);
	cr_assert_gt(refused_rate, 0, "the frequent sources were never rate limited");

	/* Every open connection's entry is still there with its count. */
	unsigned live = 0;
	for (unsigned n = 0; n < nopen; n++) {
		unsigned i = (head + n) % OPEN;
		cr_assert_eq(srctab_find(t, &open[i].k), open[i].e);
		live++;
	}
	cr_assert_eq(live, nopen);
	/* Close everything well after the buckets refilled: the table empties
	 * of every entry handed back. */
	now += 2000;
	for (unsigned n = 0; n < nopen; n++) {
		unsigned i = (head + n) % OPEN;
		open[i].e->live--;
		srctab_put(t, open[i].e, &r, now);
	}
	cr_assert_leq(srctab_count(t), MAX);
	/* What is left are entries handed back with a bucket not yet full;
	 * they carry no state now, so fresh sources can replace them all. */
	for (uint32_t i = 0; i < MAX; i++) {
		struct srckey k = key_uid(1000000 + i);
		struct srcent *e = srctab_get(t, &k, &r, now);
		cr_assert_not_null(e, "fresh source %u refused while nothing is live", i);
		e->live = 1;
	}
	cr_assert_eq(srctab_count(t), MAX);
	srctab_free(t);
}
