/* Unit tests for src/common/proto.c: the wire format (encoder, decoder and
 * its type/attribute rules) and the fd-carrying sendmsg/recvmsg.
 *
 * The expectations here are written from proto.h, independently of the
 * tables in proto.c: the tables below say what each message type must carry
 * and what shape each attribute has, and a reference validator built on them
 * is compared against proto_decode() over a deterministic stream of random
 * and mutated messages.
 *
 * Every test checks that it leaves no fd open (TEST() below). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- little-endian helpers for hand-made messages ---- */

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- what proto.h says each attribute looks like ---- */

enum vkind { V_NONE, V32, V64, VSTR, VBYTES };

struct ashape {
	enum vkind kind;
	uint16_t min, max; /* VSTR, VBYTES */
};

static const struct ashape shapes[PA_ATTR_MAX + 1] = {
	[PA_SERVICE] = {VSTR, 1, PROTO_MAX_NAME},
	[PA_CAPACITY] = {V32, 0, 0},
	[PA_BACKEND_ID] = {V64, 0, 0},
	[PA_ERRCODE] = {V32, 0, 0},
	[PA_TEXT] = {VSTR, 0, PROTO_MAX_TEXT},
	[PA_UID] = {V32, 0, 0},
	[PA_CONN_ID] = {V64, 0, 0},
	[PA_LOCAL_ADDR] = {VBYTES, 2, 128},
	[PA_PEER_ADDR] = {VBYTES, 0, 128},
	[PA_PEER_PID] = {V32, 0, 0},
	[PA_PEER_UID] = {V32, 0, 0},
	[PA_PEER_GID] = {V32, 0, 0},
	[PA_RECEIVED] = {V32, 0, 0},
	[PA_DONE] = {V32, 0, 0},
	[PA_PID] = {V32, 0, 0},
	[PA_GID] = {V32, 0, 0},
	[PA_UPTIME_MS] = {V64, 0, 0},
	[PA_NFDS] = {V32, 0, 0},
	[PA_ACCEPTED] = {V64, 0, 0},
	[PA_DELIVERED] = {V64, 0, 0},
	[PA_REDELIVERED] = {V64, 0, 0},
	[PA_REFUSED] = {V64, 0, 0},
	[PA_PENDING] = {V32, 0, 0},
	[PA_PAUSED] = {V32, 0, 0},
	[PA_BALANCE] = {VSTR, 1, 32},
	[PA_INFLIGHT] = {V32, 0, 0},
	[PA_UNACKED] = {V32, 0, 0},
	[PA_DRAINING] = {V32, 0, 0},
	[PA_COUNT] = {V32, 0, 0},
	[PA_BACKENDS] = {V32, 0, 0},
	[PA_CONTROL] = {V32, 0, 0},
	[PA_SOCKTYPE] = {V32, 0, 0},
	[PA_LISTENING] = {V32, 0, 0},
	[PA_DONE_IDS] = {VBYTES, 0, 8 * PROTO_MAX_DONE_IDS}, /* and a multiple of 8 (ref_attr_len_ok) */
	[PA_MODE] = {VSTR, 1, 80},
	[PA_REFUSED_ACCESS] = {V64, 0, 0},
	[PA_REFUSED_RATE] = {V64, 0, 0},
	[PA_REFUSED_SOURCE] = {V64, 0, 0},
	[PA_REFUSED_NOBACKEND] = {V64, 0, 0},
	[PA_REFUSED_SPAWN] = {V64, 0, 0},
	[PA_SPAWNED] = {V64, 0, 0},
	[PA_CHILDREN] = {V32, 0, 0},
	[PA_LIVE] = {V32, 0, 0},
	[PA_LIMITED] = {V32, 0, 0},
};

/* Whether a value of alen bytes has the shape proto.h gives attribute at
 * (a known one). PA_DONE_IDS is an array of u64: its length must also be a
 * multiple of 8. */
static bool ref_attr_len_ok(unsigned at, unsigned alen)
{
	const struct ashape *sh = &shapes[at];
	switch (sh->kind) {
	case V32:
		return alen == 4;
	case V64:
		return alen == 8;
	case VSTR:
	case VBYTES:
		if (alen < sh->min || alen > sh->max)
			return false;
		return at != PA_DONE_IDS || alen % 8 == 0;
	case V_NONE:
		break;
	}
	return true;
}

/* ---- every message type, with a sample of its attributes ---- */

struct aval {
	uint16_t attr; /* 0 ends the list */
	bool required;
	uint64_t n;      /* V32, V64 */
	const char *s;   /* VSTR; VBYTES data */
	size_t blen;     /* VBYTES */
};

struct mspec {
	uint8_t type;
	const char *name;
	enum proto_dir from;
	unsigned nfds;
	struct aval a[24];
};

/* A struct sockaddr_in for 127.0.0.1:80 and 192.0.2.7:40000, as raw bytes. */
static const char local_sa[16] = {2, 0, 0, 80, 127, 0, 0, 1};
static const char peer_sa[16] = {2, 0, (char)0x9c, 0x40, (char)192, 0, 2, 7};
/* Three connection ids (u64 little-endian) for PA_DONE_IDS. */
static const char done_ids[24] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                                  (char)0xff, 0, 0, 0, 0, 0, 0, (char)0x80};

#define R true
#define O false
static const struct mspec specs[] = {
	{PROTO_REGISTER, "REGISTER", PROTO_FROM_CLIENT, 0,
	 {{PA_SERVICE, R, 0, "web", 0}, {PA_CAPACITY, R, 32, NULL, 0}}},
	{PROTO_REGISTERED, "REGISTERED", PROTO_FROM_DAEMON, 0,
	 {{PA_BACKEND_ID, R, 0x1122334455667788ULL, NULL, 0}, {PA_CAPACITY, R, 16, NULL, 0}}},
	{PROTO_ERROR, "ERROR", PROTO_FROM_DAEMON, 0,
	 {{PA_ERRCODE, R, PE_NOT_ALLOWED, NULL, 0},
	  {PA_TEXT, R, 0, "uid 1000 may not serve 'web'", 0},
	  {PA_UID, O, 1000, NULL, 0},
	  {PA_SERVICE, O, 0, "web", 0}}},
	{PROTO_DELIVER, "DELIVER", PROTO_FROM_DAEMON, 1,
	 {{PA_CONN_ID, R, 0xfedcba9876543210ULL, NULL, 0},
	  {PA_SERVICE, R, 0, "web", 0},
	  {PA_LOCAL_ADDR, R, 0, local_sa, sizeof(local_sa)},
	  {PA_PEER_ADDR, R, 0, peer_sa, sizeof(peer_sa)},
	  {PA_PEER_PID, O, 4242, NULL, 0},
	  {PA_PEER_UID, O, 1001, NULL, 0},
	  {PA_PEER_GID, O, 1002, NULL, 0},
	  {PA_SOCKTYPE, O, SOCK_SEQPACKET, NULL, 0}}},
	{PROTO_ACK, "ACK", PROTO_FROM_CLIENT, 0,
	 {{PA_RECEIVED, R, 7, NULL, 0}, {PA_DONE, R, 5, NULL, 0}, {PA_DONE_IDS, O, 0, done_ids, sizeof(done_ids)}}},
	{PROTO_DRAIN, "DRAIN", PROTO_FROM_CLIENT, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_DRAINED, "DRAINED", PROTO_FROM_DAEMON, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_STATUS, "STATUS", PROTO_FROM_CLIENT, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_ST_DAEMON, "ST_DAEMON", PROTO_FROM_DAEMON, 0,
	 {{PA_PID, R, 99, NULL, 0},
	  {PA_UPTIME_MS, O, 123456789012ULL, NULL, 0},
	  {PA_NFDS, O, 17, NULL, 0},
	  {PA_ACCEPTED, O, 1ULL << 40, NULL, 0},
	  {PA_DELIVERED, O, (1ULL << 40) - 3, NULL, 0},
	  {PA_REDELIVERED, O, 2, NULL, 0},
	  {PA_REFUSED, O, 1, NULL, 0},
	  {PA_CONTROL, O, 3, NULL, 0},
	  {PA_BACKENDS, O, 2, NULL, 0}}},
	{PROTO_ST_SERVICE, "ST_SERVICE", PROTO_FROM_DAEMON, 0,
	 {{PA_SERVICE, R, 0, "web", 0},
	  {PA_BALANCE, O, 0, "least-loaded", 0},
	  {PA_ACCEPTED, O, 10, NULL, 0},
	  {PA_DELIVERED, O, 9, NULL, 0},
	  {PA_PENDING, O, 1, NULL, 0},
	  {PA_PAUSED, O, 1, NULL, 0},
	  {PA_BACKENDS, O, 4, NULL, 0},
	  {PA_MODE, O, 0, "builtin echo", 0},
	  {PA_REFUSED_ACCESS, O, 11, NULL, 0},
	  {PA_REFUSED_RATE, O, 12, NULL, 0},
	  {PA_REFUSED_SOURCE, O, 13, NULL, 0},
	  {PA_REFUSED_NOBACKEND, O, 14, NULL, 0},
	  {PA_REFUSED_SPAWN, O, 1ULL << 33, NULL, 0},
	  {PA_SPAWNED, O, 0x0102030405060708ULL, NULL, 0},
	  {PA_CHILDREN, O, 3, NULL, 0},
	  {PA_LIVE, O, 70000, NULL, 0},
	  {PA_LIMITED, O, 1, NULL, 0}}},
	{PROTO_ST_LISTENER, "ST_LISTENER", PROTO_FROM_DAEMON, 0,
	 {{PA_SERVICE, R, 0, "web", 0}, {PA_TEXT, R, 0, "tcp://[::1]:8080", 0}, {PA_PAUSED, O, 0, NULL, 0}}},
	{PROTO_ST_BACKEND, "ST_BACKEND", PROTO_FROM_DAEMON, 0,
	 {{PA_BACKEND_ID, R, 5, NULL, 0},
	  {PA_SERVICE, R, 0, "web", 0},
	  {PA_PID, O, 1234, NULL, 0},
	  {PA_UID, O, 33, NULL, 0},
	  {PA_GID, O, 33, NULL, 0},
	  {PA_CAPACITY, O, 8, NULL, 0},
	  {PA_INFLIGHT, O, 3, NULL, 0},
	  {PA_UNACKED, O, 1, NULL, 0},
	  {PA_DELIVERED, O, 77, NULL, 0},
	  {PA_DRAINING, O, 1, NULL, 0}}},
	{PROTO_ST_END, "ST_END", PROTO_FROM_DAEMON, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_ADMIN_DRAIN, "ADMIN_DRAIN", PROTO_FROM_CLIENT, 0, {{PA_BACKEND_ID, O, 5, NULL, 0}, {PA_PID, O, 1234, NULL, 0}}},
	{PROTO_ADMIN_RELOAD, "ADMIN_RELOAD", PROTO_FROM_CLIENT, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_OK, "OK", PROTO_FROM_DAEMON, 0, {{PA_COUNT, O, 2, NULL, 0}}},
	{PROTO_ADMIN_UPGRADE, "ADMIN_UPGRADE", PROTO_FROM_CLIENT, 0, {{0, O, 0, NULL, 0}}},
	{PROTO_SOCKET, "SOCKET", PROTO_FROM_DAEMON, 1,
	 {{PA_SERVICE, R, 0, "dns", 0},
	  {PA_LOCAL_ADDR, R, 0, local_sa, sizeof(local_sa)},
	  {PA_SOCKTYPE, R, SOCK_DGRAM, NULL, 0},
	  {PA_LISTENING, R, 0, NULL, 0}}},
};
#undef R
#undef O

#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static const struct mspec *spec_of(unsigned type)
{
	for (size_t i = 0; i < NSPECS; i++)
		if (specs[i].type == type)
			return &specs[i];
	return NULL;
}

static enum proto_dir other_dir(enum proto_dir d)
{
	return d == PROTO_FROM_CLIENT ? PROTO_FROM_DAEMON : PROTO_FROM_CLIENT;
}

static void put_aval(struct proto_buf *b, const struct aval *v)
{
	switch (shapes[v->attr].kind) {
	case V32:
		proto_put_u32(b, v->attr, (uint32_t)v->n);
		break;
	case V64:
		proto_put_u64(b, v->attr, v->n);
		break;
	case VSTR:
		proto_put_str(b, v->attr, v->s);
		break;
	case VBYTES:
		proto_put_bytes(b, v->attr, v->s, v->blen);
		break;
	case V_NONE:
		cr_assert_fail("attribute %u has no shape", v->attr);
	}
}

/* Encode spec m; leave out attribute `skip` (0: none) and, when
 * only_required, every optional one. Returns proto_finish(). */
static int build(struct proto_buf *b, const struct mspec *m, uint32_t seq, uint16_t skip, bool only_required)
{
	proto_begin(b, m->type, seq);
	for (const struct aval *v = m->a; v->attr; v++) {
		if (v->attr == skip || (only_required && !v->required))
			continue;
		put_aval(b, v);
	}
	return proto_finish(b, m->nfds);
}

static void check_values(const struct proto_msg *msg, const struct mspec *m, bool only_required)
{
	for (const struct aval *v = m->a; v->attr; v++) {
		if (only_required && !v->required) {
			cr_assert(!proto_has(msg, v->attr), "%s: attribute %u should be absent", m->name, v->attr);
			continue;
		}
		cr_assert(proto_has(msg, v->attr), "%s: attribute %u missing after decode", m->name, v->attr);
		char s[PROTO_MAX_TEXT + 1];
		switch (shapes[v->attr].kind) {
		case V32:
			cr_assert_eq(proto_u32(msg, v->attr), (uint32_t)v->n, "%s: attr %u", m->name, v->attr);
			break;
		case V64:
			cr_assert_eq(proto_u64(msg, v->attr), v->n, "%s: attr %u", m->name, v->attr);
			break;
		case VSTR:
			proto_str(msg, v->attr, s, sizeof(s));
			cr_assert_str_eq(s, v->s, "%s: attr %u", m->name, v->attr);
			break;
		case VBYTES:
			cr_assert_eq(msg->attr[v->attr].len, v->blen);
			cr_assert(memcmp(msg->attr[v->attr].p, v->s, v->blen) == 0);
			break;
		case V_NONE:
			break;
		}
	}
}

/* ---- a reference validator written from proto.h ---- */

/* Walk the attributes; true if they fill the message exactly and every
 * known one has its shape, none repeats and all required ones are there. */
static bool ref_attrs_ok(const uint8_t *p, size_t len, const struct mspec *m)
{
	uint64_t seen = 0;
	size_t off = PROTO_HDR_LEN;
	while (off < len) {
		if (len - off < 4)
			return false;
		uint16_t at = rd16(p + off), alen = rd16(p + off + 2);
		off += 4;
		if (alen > len - off)
			return false;
		if (at >= 1 && at <= PA_ATTR_MAX) {
			const struct ashape *sh = &shapes[at];
			if (seen & (UINT64_C(1) << at))
				return false;
			seen |= UINT64_C(1) << at;
			if (!ref_attr_len_ok(at, alen))
				return false;
			if (sh->kind == VSTR && memchr(p + off, 0, alen))
				return false;
		}
		off += alen;
	}
	for (const struct aval *v = m->a; v->attr; v++)
		if (v->required && !(seen & (UINT64_C(1) << v->attr)))
			return false;
	return true;
}

static bool ref_header_ok(const uint8_t *p, size_t len, unsigned nfds_received, enum proto_dir from,
                          const struct mspec **ret_spec)
{
	if (len < PROTO_HDR_LEN || len > PROTO_MAX_MSG)
		return false;
	if (rd16(p) != PROTO_MAGIC || p[2] != PROTO_VERSION || rd32(p + 4) != len || rd16(p + 10) != 0)
		return false;
	const struct mspec *m = spec_of(p[3]);
	if (!m || m->from != from || rd16(p + 8) != m->nfds || nfds_received != m->nfds)
		return false;
	*ret_spec = m;
	return true;
}

static bool ref_valid(const uint8_t *p, size_t len, unsigned nfds_received, enum proto_dir from)
{
	const struct mspec *m;
	return ref_header_ok(p, len, nfds_received, from, &m) && ref_attrs_ok(p, len, m);
}

/* A valid, empty ST_END message in buf with room for more. */
static size_t start_st_end(uint8_t *buf)
{
	memset(buf, 0, PROTO_HDR_LEN);
	le16(buf, PROTO_MAGIC);
	buf[2] = PROTO_VERSION;
	buf[3] = PROTO_ST_END;
	return PROTO_HDR_LEN;
}

static size_t add_attr(uint8_t *buf, size_t len, uint16_t at, const void *v, uint16_t alen)
{
	le16(buf + len, at);
	le16(buf + len + 2, alen);
	if (alen)
		memcpy(buf + len + 4, v, alen);
	return len + 4 + alen;
}

static void seal(uint8_t *buf, size_t len)
{
	le32(buf + 4, (uint32_t)len);
}

static int decode(const void *buf, size_t len, unsigned nfds, enum proto_dir from, const char **why)
{
	struct proto_msg m;
	*why = NULL;
	return proto_decode(buf, len, nfds, from, &m, why);
}

/* ===================== encoding and decoding ===================== */

TEST(proto, every_type_is_covered)
{
	cr_assert_eq(NSPECS, PROTO_TYPE_MAX, "the test table must list every message type");
	for (unsigned t = 1; t <= PROTO_TYPE_MAX; t++) {
		const struct mspec *m = spec_of(t);
		cr_assert_not_null(m, "type %u missing from the test table", t);
		cr_assert_str_eq(proto_type_name(t), m->name);
	}
	cr_assert_str_eq(proto_type_name(0), "unknown");
	cr_assert_str_eq(proto_type_name(PROTO_TYPE_MAX + 1), "unknown");
	cr_assert_str_eq(proto_type_name(255), "unknown");
	cr_assert_str_eq(proto_type_name(100000), "unknown");
}

TEST(proto, round_trip_every_type)
{
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		struct proto_buf b;
		struct proto_msg msg;
		const char *why = NULL;
		uint32_t seq = 0x80000000u + (uint32_t)i;
		int len = build(&b, m, seq, 0, false);
		cr_assert_gt(len, 0, "%s: proto_finish: %d", m->name, len);
		cr_assert_eq((size_t)len, b.len);
		cr_assert_eq(rd32(b.data + 4), (uint32_t)len, "length field");
		cr_assert_eq(rd16(b.data + 8), m->nfds, "nfds field");
		int rc = proto_decode(b.data, (size_t)len, m->nfds, m->from, &msg, &why);
		cr_assert_eq(rc, 0, "%s: decode failed: %d (%s)", m->name, rc, why ? why : "?");
		cr_assert_eq(msg.type, m->type);
		cr_assert_eq(msg.version, PROTO_VERSION);
		cr_assert_eq(msg.nfds, m->nfds);
		cr_assert_eq(msg.seq, seq);
		check_values(&msg, m, false);
	}
}

TEST(proto, round_trip_required_only)
{
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		struct proto_buf b;
		struct proto_msg msg;
		const char *why = NULL;
		int len = build(&b, m, 1, 0, true);
		cr_assert_gt(len, 0);
		int rc = proto_decode(b.data, (size_t)len, m->nfds, m->from, &msg, &why);
		cr_assert_eq(rc, 0, "%s with only its required attributes: %d (%s)", m->name, rc, why ? why : "?");
		check_values(&msg, m, true);
	}
}

TEST(proto, header_layout)
{
	struct proto_buf b;
	proto_begin(&b, PROTO_ACK, 0xa1b2c3d4u);
	proto_put_u32(&b, PA_RECEIVED, 1);
	proto_put_u32(&b, PA_DONE, 2);
	int len = proto_finish(&b, 0);
	cr_assert_eq(len, PROTO_HDR_LEN + 2 * 8);
	static const uint8_t want[] = {'H', 'O', PROTO_VERSION, PROTO_ACK, 32, 0, 0, 0, 0, 0, 0, 0,
	                               0xd4, 0xc3, 0xb2, 0xa1,
	                               PA_RECEIVED, 0, 4, 0, 1, 0, 0, 0,
	                               PA_DONE, 0, 4, 0, 2, 0, 0, 0};
	cr_assert_eq(sizeof(want), (size_t)len);
	cr_assert(memcmp(b.data, want, sizeof(want)) == 0, "wire bytes differ from proto.h");
}

TEST(proto, truncated_at_every_length)
{
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		struct proto_buf b;
		int len = build(&b, m, 3, 0, false);
		for (size_t l = 0; l < (size_t)len; l++) {
			const char *why;
			int rc = decode(b.data, l, m->nfds, m->from, &why);
			cr_assert_lt(rc, 0, "%s truncated to %zu of %d bytes was accepted", m->name, l, len);
			cr_assert_eq(rc, -EBADMSG, "%s truncated to %zu: %d", m->name, l, rc);
			cr_assert_not_null(why);
		}
	}
}

/* Truncated, with the length field patched to match: the cut must still be
 * seen (it lands inside an attribute) unless it falls exactly between
 * attributes and only optional ones were cut away. */
TEST(proto, truncated_with_matching_length_field)
{
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		struct proto_buf b;
		int len = build(&b, m, 3, 0, false);
		for (size_t l = PROTO_HDR_LEN; l < (size_t)len; l++) {
			uint8_t copy[PROTO_MAX_MSG];
			memcpy(copy, b.data, l);
			seal(copy, l);
			const char *why;
			int rc = decode(copy, l, m->nfds, m->from, &why);
			bool want_ok = ref_valid(copy, l, m->nfds, m->from);
			if (want_ok)
				cr_assert_eq(rc, 0, "%s cut to %zu at an attribute boundary: %d (%s)", m->name, l, rc, why);
			else
				cr_assert_eq(rc, -EBADMSG, "%s cut to %zu: %d", m->name, l, rc);
		}
	}
}

TEST(proto, shorter_than_header)
{
	uint8_t buf[PROTO_HDR_LEN];
	start_st_end(buf);
	seal(buf, PROTO_HDR_LEN);
	const char *why;
	cr_assert_eq(decode(buf, PROTO_HDR_LEN, 0, PROTO_FROM_DAEMON, &why), 0);
	cr_assert_eq(decode(buf, PROTO_HDR_LEN - 1, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(buf, 0, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(NULL, 0, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
}

TEST(proto, largest_message_accepted)
{
	static uint8_t buf[PROTO_MAX_MSG];
	static uint8_t pad[PROTO_MAX_MSG];
	size_t len = start_st_end(buf);
	/* An unknown attribute filling the message to exactly the maximum. */
	len = add_attr(buf, len, 200, pad, (uint16_t)(PROTO_MAX_MSG - PROTO_HDR_LEN - 4));
	cr_assert_eq(len, PROTO_MAX_MSG);
	seal(buf, len);
	const char *why;
	cr_assert_eq(decode(buf, len, 0, PROTO_FROM_DAEMON, &why), 0);
}

TEST(proto, oversized)
{
	static uint8_t buf[PROTO_MAX_MSG + 64];
	static uint8_t pad[PROTO_MAX_MSG + 64];
	size_t sizes[] = {PROTO_MAX_MSG + 1, PROTO_MAX_MSG + 4, PROTO_MAX_MSG + 64};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = start_st_end(buf);
		len = add_attr(buf, len, 200, pad, (uint16_t)(sizes[i] - PROTO_HDR_LEN - 4));
		cr_assert_eq(len, sizes[i]);
		seal(buf, len);
		const char *why;
		cr_assert_eq(decode(buf, len, 0, PROTO_FROM_DAEMON, &why), -EMSGSIZE, "%zu bytes", len);
		cr_assert_not_null(why);
	}
	/* Even a header that is garbage is refused by size first. */
	memset(buf, 0xff, sizeof(buf));
	const char *why;
	cr_assert_eq(decode(buf, sizeof(buf), 0, PROTO_FROM_DAEMON, &why), -EMSGSIZE);
}

TEST(proto, lying_length_field)
{
	struct proto_buf b;
	const struct mspec *m = spec_of(PROTO_REGISTER);
	int len = build(&b, m, 1, 0, false);
	uint32_t lies[] = {0, 1, PROTO_HDR_LEN, (uint32_t)len - 1, (uint32_t)len + 1, PROTO_MAX_MSG,
	                   PROTO_MAX_MSG + 1, 0x10000u + (uint32_t)len, 0xffffffffu};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t copy[PROTO_MAX_MSG];
		memcpy(copy, b.data, (size_t)len);
		le32(copy + 4, lies[i]);
		const char *why;
		cr_assert_eq(decode(copy, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG,
		             "length field %u for a %d-byte message", lies[i], len);
		cr_assert_not_null(why);
	}
}

TEST(proto, bad_magic)
{
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_STATUS), 1, 0, false);
	uint16_t bad[] = {0, 0x484f /* byte-swapped */, 0x4f49, 0xffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t copy[PROTO_MAX_MSG];
		memcpy(copy, b.data, (size_t)len);
		le16(copy, bad[i]);
		const char *why;
		cr_assert_eq(decode(copy, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "magic %#x", bad[i]);
		cr_assert_not_null(why);
	}
}

TEST(proto, bad_version)
{
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 1, 0, false);
	uint8_t bad[] = {0, PROTO_VERSION + 1, 0x80, 0xff};
	for (size_t i = 0; i < sizeof(bad); i++) {
		uint8_t copy[PROTO_MAX_MSG];
		struct proto_msg msg;
		const char *why = NULL;
		memcpy(copy, b.data, (size_t)len);
		copy[2] = bad[i];
		cr_assert_eq(proto_decode(copy, (size_t)len, 0, PROTO_FROM_CLIENT, &msg, &why), -EPROTONOSUPPORT,
		             "version %u", bad[i]);
		cr_assert_not_null(why);
		/* The version is reported so the daemon can answer PE_VERSION. */
		cr_assert_eq(msg.version, bad[i]);
	}
}

TEST(proto, reserved_flags)
{
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 1, 0, false);
	for (int bit = 0; bit < 16; bit++) {
		uint8_t copy[PROTO_MAX_MSG];
		memcpy(copy, b.data, (size_t)len);
		le16(copy + 10, (uint16_t)(1u << bit));
		const char *why;
		cr_assert_eq(decode(copy, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "flag bit %d", bit);
	}
}

TEST(proto, unknown_type)
{
	unsigned bad[] = {0, PROTO_TYPE_MAX + 1, 100, 255};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t buf[PROTO_HDR_LEN];
		start_st_end(buf);
		buf[3] = (uint8_t)bad[i];
		seal(buf, sizeof(buf));
		const char *why;
		cr_assert_eq(decode(buf, sizeof(buf), 0, PROTO_FROM_CLIENT, &why), -EOPNOTSUPP, "type %u", bad[i]);
		cr_assert_eq(decode(buf, sizeof(buf), 0, PROTO_FROM_DAEMON, &why), -EOPNOTSUPP, "type %u", bad[i]);
		cr_assert_not_null(why);
	}
}

TEST(proto, wrong_direction)
{
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		struct proto_buf b;
		int len = build(&b, m, 1, 0, false);
		const char *why;
		cr_assert_eq(decode(b.data, (size_t)len, m->nfds, other_dir(m->from), &why), -EOPNOTSUPP,
		             "%s accepted from the wrong side", m->name);
		cr_assert_not_null(why);
	}
}

TEST(proto, declared_nfds_mismatch)
{
	const char *why;
	struct proto_buf b;

	/* DELIVER declares 1 fd; none or two came. */
	const struct mspec *d = spec_of(PROTO_DELIVER);
	int len = build(&b, d, 1, 0, false);
	cr_assert_eq(decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &why), 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(b.data, (size_t)len, 2, PROTO_FROM_DAEMON, &why), -EBADMSG);

	/* DELIVER declaring 0 (or 2) fds is wrong for the type, whatever came. */
	proto_begin(&b, PROTO_DELIVER, 1);
	for (const struct aval *v = d->a; v->attr; v++)
		put_aval(&b, v);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &why), -EBADMSG);
	le16(b.data + 8, 2);
	cr_assert_eq(decode(b.data, (size_t)len, 2, PROTO_FROM_DAEMON, &why), -EBADMSG);

	/* Every type without fds: an fd that came anyway, or a header that
	 * declares one, is refused. */
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		if (m->nfds)
			continue;
		len = build(&b, m, 1, 0, false);
		cr_assert_eq(decode(b.data, (size_t)len, 1, m->from, &why), -EBADMSG, "%s with an fd", m->name);
		le16(b.data + 8, 1);
		cr_assert_eq(decode(b.data, (size_t)len, 1, m->from, &why), -EBADMSG, "%s declaring an fd", m->name);
		cr_assert_eq(decode(b.data, (size_t)len, 0, m->from, &why), -EBADMSG, "%s declaring an fd", m->name);
	}
}

TEST(proto, attribute_runs_past_end)
{
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 1, 0, false);
	/* The last attribute is CAPACITY (4 bytes) at len - 8. */
	size_t last = (size_t)len - 8;
	cr_assert_eq(rd16(b.data + last), PA_CAPACITY);
	uint16_t lies[] = {5, 8, 0x7fff, 0xffff};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t copy[PROTO_MAX_MSG];
		memcpy(copy, b.data, (size_t)len);
		le16(copy + last + 2, lies[i]);
		const char *why;
		cr_assert_eq(decode(copy, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "alen %u", lies[i]);
	}
	/* An unknown attribute running past the end is just as bad. */
	uint8_t buf[64];
	size_t l = start_st_end(buf);
	l = add_attr(buf, l, 300, "abcd", 4);
	le16(buf + PROTO_HDR_LEN + 2, 5);
	seal(buf, l);
	const char *why;
	cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
}

TEST(proto, truncated_attribute_header)
{
	for (size_t extra = 1; extra < 4; extra++) {
		uint8_t buf[64];
		size_t l = start_st_end(buf);
		memset(buf + l, 0, extra);
		l += extra;
		seal(buf, l);
		const char *why;
		cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), -EBADMSG, "%zu stray bytes", extra);
	}
}

TEST(proto, duplicate_attribute)
{
	struct proto_buf b;
	const char *why;

	proto_begin(&b, PROTO_REGISTER, 1);
	proto_put_str(&b, PA_SERVICE, "web");
	proto_put_u32(&b, PA_CAPACITY, 1);
	proto_put_str(&b, PA_SERVICE, "other");
	int len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG);

	proto_begin(&b, PROTO_REGISTER, 1);
	proto_put_str(&b, PA_SERVICE, "web");
	proto_put_u32(&b, PA_CAPACITY, 1);
	proto_put_u32(&b, PA_CAPACITY, 1);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG);

	/* An optional attribute twice. */
	proto_begin(&b, PROTO_ERROR, 1);
	proto_put_u32(&b, PA_ERRCODE, PE_LIMIT);
	proto_put_str(&b, PA_TEXT, "x");
	proto_put_u32(&b, PA_UID, 1);
	proto_put_u32(&b, PA_UID, 2);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);

	/* Unknown attributes may repeat: they are skipped. */
	proto_begin(&b, PROTO_ST_END, 1);
	proto_put_u32(&b, 77, 1);
	proto_put_u32(&b, 77, 2);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), 0);
}

/* Every known attribute, alone in an ST_END, at each size around its rule. */
TEST(proto, attribute_shapes)
{
	/* The largest variable-length attribute is PA_DONE_IDS. */
	static uint8_t val[8 * PROTO_MAX_DONE_IDS + 2];
	cr_assert_geq(sizeof(val), (size_t)PROTO_MAX_TEXT + 2);
	memset(val, 'a', sizeof(val));
	unsigned accepted_total = 0;
	for (unsigned at = 1; at <= PA_ATTR_MAX; at++) {
		const struct ashape *sh = &shapes[at];
		cr_assert_neq(sh->kind, V_NONE, "attribute %u has no shape in the test table", at);
		for (unsigned sz = 0; sz <= (unsigned)(sh->max + 1 > 12 ? sh->max + 1 : 12); sz++) {
			bool ok = ref_attr_len_ok(at, sz);
			uint8_t buf[PROTO_MAX_MSG];
			size_t l = start_st_end(buf);
			l = add_attr(buf, l, (uint16_t)at, val, (uint16_t)sz);
			seal(buf, l);
			const char *why;
			int rc = decode(buf, l, 0, PROTO_FROM_DAEMON, &why);
			cr_assert_eq(rc, ok ? 0 : -EBADMSG, "attribute %u with %u bytes: %d (%s)", at, sz, rc,
			             why ? why : "ok");
			accepted_total += ok;
		}
	}
	/* 24 u32 and 13 u64 attributes (one size each), SERVICE 63 sizes,
	 * TEXT 1025, LOCAL_ADDR 127, PEER_ADDR 129, BALANCE 32, MODE 80,
	 * DONE_IDS 257 (0, 8, ..., 2048). */
	cr_assert_eq(accepted_total, 24u + 13u + 63u + 1025u + 127u + 129u + 32u + 80u + 257u);
}

/* PA_DONE_IDS: u64 connection ids, 0..PROTO_MAX_DONE_IDS of them; a length
 * that is not a multiple of 8 is malformed, in an ACK as anywhere. */
TEST(proto, done_ids_length)
{
	static uint8_t ids[8 * PROTO_MAX_DONE_IDS + 8];
	for (size_t i = 0; i < sizeof(ids); i++)
		ids[i] = (uint8_t)(i * 7 + 1);
	static const struct {
		unsigned len;
		bool ok;
	} cases[] = {
		{0, true}, {1, false}, {4, false}, {7, false}, {8, true}, {9, false}, {12, false},
		{15, false}, {16, true}, {24, true}, {100, false}, {8 * 100, true}, {8 * 100 + 4, false},
		{8 * PROTO_MAX_DONE_IDS - 8, true}, {8 * PROTO_MAX_DONE_IDS - 1, false},
		{8 * PROTO_MAX_DONE_IDS, true}, {8 * PROTO_MAX_DONE_IDS + 1, false},
		{8 * PROTO_MAX_DONE_IDS + 4, false}, {8 * PROTO_MAX_DONE_IDS + 8, false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct proto_buf b;
		struct proto_msg msg;
		const char *why = NULL;
		proto_begin(&b, PROTO_ACK, 9);
		proto_put_u32(&b, PA_RECEIVED, 3);
		proto_put_u32(&b, PA_DONE, cases[i].len / 8);
		proto_put_bytes(&b, PA_DONE_IDS, ids, cases[i].len);
		int len = proto_finish(&b, 0);
		cr_assert_gt(len, 0, "the encoder does not police lengths");
		int rc = proto_decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &msg, &why);
		if (!cases[i].ok) {
			cr_assert_eq(rc, -EBADMSG, "DONE_IDS of %u bytes: %d", cases[i].len, rc);
			cr_assert(why && *why);
			continue;
		}
		cr_assert_eq(rc, 0, "DONE_IDS of %u bytes: %d (%s)", cases[i].len, rc, why ? why : "?");
		cr_assert(proto_has(&msg, PA_DONE_IDS));
		cr_assert_eq(msg.attr[PA_DONE_IDS].len, cases[i].len);
		cr_assert(cases[i].len == 0 || memcmp(msg.attr[PA_DONE_IDS].p, ids, cases[i].len) == 0);
		/* It is not a u64: the accessor gives 0 unless it is exactly 8. */
		if (cases[i].len != 8)
			cr_assert_eq(proto_u64(&msg, PA_DONE_IDS), 0);
	}

	/* The ids read back little-endian, as libhandoff writes them. */
	struct proto_buf b;
	struct proto_msg msg;
	const struct mspec *ack = spec_of(PROTO_ACK);
	int len = build(&b, ack, 1, 0, false);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &msg, NULL), 0);
	cr_assert_eq(msg.attr[PA_DONE_IDS].len, 24);
	const uint8_t *p = msg.attr[PA_DONE_IDS].p;
	uint64_t want[3] = {1, 2, 0x80000000000000ffULL};
	for (int k = 0; k < 3; k++) {
		uint64_t v = 0;
		for (int j = 7; j >= 0; j--)
			v = v << 8 | p[8 * k + j];
		cr_assert_eq(v, want[k], "id %d", k);
	}

	/* Twice in one message is a duplicate. */
	proto_begin(&b, PROTO_ACK, 1);
	proto_put_u32(&b, PA_RECEIVED, 0);
	proto_put_u32(&b, PA_DONE, 2);
	proto_put_bytes(&b, PA_DONE_IDS, ids, 8);
	proto_put_bytes(&b, PA_DONE_IDS, ids + 8, 8);
	len = proto_finish(&b, 0);
	const char *why;
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG);
}

/* PROTO_SOCKET: a shared socket for a backend, from the daemon only, with
 * exactly one fd and all four of its attributes. */
TEST(proto, socket_message)
{
	const struct mspec *m = spec_of(PROTO_SOCKET);
	cr_assert_not_null(m);
	cr_assert_eq(PROTO_SOCKET, 17, "message numbers are never reused");
	cr_assert_str_eq(proto_type_name(PROTO_SOCKET), "SOCKET");
	struct proto_buf b;
	struct proto_msg msg;
	const char *why = NULL;
	int len = build(&b, m, 5, 0, false);
	cr_assert_gt(len, 0);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &msg, &why), 0, "%s", why ? why : "");
	cr_assert_eq(proto_u32(&msg, PA_SOCKTYPE), (uint32_t)SOCK_DGRAM);
	cr_assert_eq(proto_u32(&msg, PA_LISTENING), 0);
	cr_assert(proto_has(&msg, PA_LISTENING), "a LISTENING of 0 is present, not absent");
	/* No fd, two fds, or declaring none: refused. */
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(b.data, (size_t)len, 2, PROTO_FROM_DAEMON, &why), -EBADMSG);
	cr_assert_eq(decode(b.data, (size_t)len, 1, PROTO_FROM_CLIENT, &why), -EOPNOTSUPP, "a backend may not send it");
	le16(b.data + 8, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);

	/* A listening stream socket (listen mode). */
	proto_begin(&b, PROTO_SOCKET, 6);
	proto_put_str(&b, PA_SERVICE, "web");
	proto_put_bytes(&b, PA_LOCAL_ADDR, local_sa, sizeof(local_sa));
	proto_put_u32(&b, PA_SOCKTYPE, SOCK_STREAM);
	proto_put_u32(&b, PA_LISTENING, 1);
	len = proto_finish(&b, 1);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &msg, &why), 0);
	cr_assert_eq(proto_u32(&msg, PA_SOCKTYPE), (uint32_t)SOCK_STREAM);
	cr_assert_eq(proto_u32(&msg, PA_LISTENING), 1);

	/* LOCAL_ADDR needs at least a family (2 bytes). */
	proto_begin(&b, PROTO_SOCKET, 6);
	proto_put_str(&b, PA_SERVICE, "web");
	proto_put_bytes(&b, PA_LOCAL_ADDR, local_sa, 1);
	proto_put_u32(&b, PA_SOCKTYPE, SOCK_STREAM);
	proto_put_u32(&b, PA_LISTENING, 1);
	len = proto_finish(&b, 1);
	cr_assert_eq(decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &why), -EBADMSG);
	/* SOCKTYPE as a u64 is the wrong size. */
	proto_begin(&b, PROTO_SOCKET, 6);
	proto_put_str(&b, PA_SERVICE, "web");
	proto_put_bytes(&b, PA_LOCAL_ADDR, local_sa, sizeof(local_sa));
	proto_put_u64(&b, PA_SOCKTYPE, SOCK_STREAM);
	proto_put_u32(&b, PA_LISTENING, 1);
	len = proto_finish(&b, 1);
	cr_assert_eq(decode(b.data, (size_t)len, 1, PROTO_FROM_DAEMON, &why), -EBADMSG);
}

/* The status attributes added for issue 3 (MODE .. LIMITED) in an
 * ST_SERVICE: each wrong size refused, MODE's bounds and NUL rule. */
TEST(proto, service_status_attributes)
{
	static const uint16_t attrs[] = {PA_REFUSED_ACCESS, PA_REFUSED_RATE, PA_REFUSED_SOURCE, PA_REFUSED_NOBACKEND,
	                                 PA_REFUSED_SPAWN,  PA_SPAWNED,      PA_CHILDREN,       PA_LIVE,
	                                 PA_LIMITED,        PA_SOCKTYPE,     PA_LISTENING};
	static const uint8_t zeros[16];
	for (size_t i = 0; i < N_ELEMENTS(attrs); i++) {
		unsigned want = shapes[attrs[i]].kind == V64 ? 8 : 4;
		for (unsigned sz = 0; sz <= 16; sz++) {
			uint8_t buf[128];
			size_t l = start_st_end(buf);
			buf[3] = PROTO_ST_SERVICE;
			l = add_attr(buf, l, PA_SERVICE, "web", 3);
			l = add_attr(buf, l, attrs[i], zeros, (uint16_t)sz);
			seal(buf, l);
			const char *why;
			cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), sz == want ? 0 : -EBADMSG,
			             "attribute %u with %u bytes", attrs[i], sz);
		}
	}
	char mode[90];
	memset(mode, 'm', sizeof(mode));
	for (unsigned n = 0; n <= 82; n++) {
		uint8_t buf[256];
		size_t l = start_st_end(buf);
		buf[3] = PROTO_ST_SERVICE;
		l = add_attr(buf, l, PA_SERVICE, "web", 3);
		l = add_attr(buf, l, PA_MODE, mode, (uint16_t)n);
		seal(buf, l);
		const char *why;
		cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), n >= 1 && n <= 80 ? 0 : -EBADMSG,
		             "MODE of %u bytes", n);
	}
	uint8_t buf[128];
	size_t l = start_st_end(buf);
	buf[3] = PROTO_ST_SERVICE;
	l = add_attr(buf, l, PA_SERVICE, "web", 3);
	l = add_attr(buf, l, PA_MODE, "builtin\0echo", 12);
	seal(buf, l);
	const char *why;
	cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), -EBADMSG, "MODE with a NUL");
}

TEST(proto, wrong_integer_sizes)
{
	static const uint8_t zeros[16];
	uint16_t u32_sizes[] = {0, 1, 2, 3, 5, 8};
	uint16_t u64_sizes[] = {0, 4, 7, 9, 16};
	const char *why;
	for (size_t i = 0; i < sizeof(u32_sizes) / sizeof(u32_sizes[0]); i++) {
		uint8_t buf[64];
		size_t l = start_st_end(buf);
		buf[3] = PROTO_REGISTER;
		l = add_attr(buf, l, PA_SERVICE, "web", 3);
		l = add_attr(buf, l, PA_CAPACITY, zeros, u32_sizes[i]);
		seal(buf, l);
		cr_assert_eq(decode(buf, l, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "u32 of %u bytes", u32_sizes[i]);
	}
	for (size_t i = 0; i < sizeof(u64_sizes) / sizeof(u64_sizes[0]); i++) {
		uint8_t buf[64];
		size_t l = start_st_end(buf);
		buf[3] = PROTO_REGISTERED;
		l = add_attr(buf, l, PA_BACKEND_ID, zeros, u64_sizes[i]);
		l = add_attr(buf, l, PA_CAPACITY, zeros, 4);
		seal(buf, l);
		cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), -EBADMSG, "u64 of %u bytes", u64_sizes[i]);
	}
}

TEST(proto, strings_with_nul)
{
	const char *why;
	uint8_t buf[64];
	size_t l = start_st_end(buf);
	buf[3] = PROTO_REGISTER;
	l = add_attr(buf, l, PA_SERVICE, "we\0b", 4);
	l = add_attr(buf, l, PA_CAPACITY, "\1\0\0\0", 4);
	seal(buf, l);
	cr_assert_eq(decode(buf, l, 0, PROTO_FROM_CLIENT, &why), -EBADMSG);

	/* A trailing NUL counts too. */
	l = start_st_end(buf);
	buf[3] = PROTO_REGISTER;
	l = add_attr(buf, l, PA_SERVICE, "web\0", 4);
	l = add_attr(buf, l, PA_CAPACITY, "\1\0\0\0", 4);
	seal(buf, l);
	cr_assert_eq(decode(buf, l, 0, PROTO_FROM_CLIENT, &why), -EBADMSG);

	l = start_st_end(buf);
	l = add_attr(buf, l, PA_TEXT, "\0", 1);
	seal(buf, l);
	cr_assert_eq(decode(buf, l, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);
}

TEST(proto, service_name_length)
{
	char name[PROTO_MAX_NAME + 2];
	struct proto_buf b;
	const char *why;
	struct proto_msg msg;

	memset(name, 's', sizeof(name));
	name[PROTO_MAX_NAME] = '\0';
	proto_begin(&b, PROTO_REGISTER, 1);
	proto_put_str(&b, PA_SERVICE, name);
	proto_put_u32(&b, PA_CAPACITY, 1);
	int len = proto_finish(&b, 0);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &msg, &why), 0);
	char got[PROTO_MAX_NAME + 1];
	proto_str(&msg, PA_SERVICE, got, sizeof(got));
	cr_assert_str_eq(got, name);

	name[PROTO_MAX_NAME] = 's';
	name[PROTO_MAX_NAME + 1] = '\0';
	proto_begin(&b, PROTO_REGISTER, 1);
	proto_put_str(&b, PA_SERVICE, name);
	proto_put_u32(&b, PA_CAPACITY, 1);
	len = proto_finish(&b, 0);
	cr_assert_gt(len, 0, "the encoder does not police lengths");
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "a %d-byte service name",
	             PROTO_MAX_NAME + 1);

	proto_begin(&b, PROTO_REGISTER, 1);
	proto_put_str(&b, PA_SERVICE, "");
	proto_put_u32(&b, PA_CAPACITY, 1);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_CLIENT, &why), -EBADMSG, "an empty service name");
}

TEST(proto, text_length)
{
	static char text[PROTO_MAX_TEXT + 2];
	struct proto_buf b;
	const char *why;
	struct proto_msg msg;

	memset(text, 't', sizeof(text));
	text[PROTO_MAX_TEXT] = '\0';
	proto_begin(&b, PROTO_ERROR, 1);
	proto_put_u32(&b, PA_ERRCODE, PE_CONFIG);
	proto_put_str(&b, PA_TEXT, text);
	int len = proto_finish(&b, 0);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &msg, &why), 0);
	static char got[PROTO_MAX_TEXT + 1];
	proto_str(&msg, PA_TEXT, got, sizeof(got));
	cr_assert_str_eq(got, text);

	text[PROTO_MAX_TEXT] = 't';
	text[PROTO_MAX_TEXT + 1] = '\0';
	proto_begin(&b, PROTO_ERROR, 1);
	proto_put_u32(&b, PA_ERRCODE, PE_CONFIG);
	proto_put_str(&b, PA_TEXT, text);
	len = proto_finish(&b, 0);
	cr_assert_eq(decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &why), -EBADMSG);

	/* An empty TEXT is fine. */
	proto_begin(&b, PROTO_ERROR, 1);
	proto_put_u32(&b, PA_ERRCODE, PE_CONFIG);
	proto_put_str(&b, PA_TEXT, "");
	len = proto_finish(&b, 0);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &msg, &why), 0);
	cr_assert(proto_has(&msg, PA_TEXT));
	proto_str(&msg, PA_TEXT, got, sizeof(got));
	cr_assert_str_eq(got, "");
}

TEST(proto, missing_required_attribute)
{
	int checked = 0;
	for (size_t i = 0; i < NSPECS; i++) {
		const struct mspec *m = &specs[i];
		for (const struct aval *v = m->a; v->attr; v++) {
			if (!v->required)
				continue;
			struct proto_buf b;
			int len = build(&b, m, 1, v->attr, false);
			const char *why;
			cr_assert_eq(decode(b.data, (size_t)len, m->nfds, m->from, &why), -EBADMSG,
			             "%s without attribute %u was accepted", m->name, v->attr);
			cr_assert_not_null(why);
			checked++;
		}
	}
	cr_assert_gt(checked, 10);
}

TEST(proto, unknown_attributes_skipped)
{
	uint8_t buf[256];
	size_t l = start_st_end(buf);
	buf[3] = PROTO_REGISTER;
	l = add_attr(buf, l, 0, "zero", 4);
	l = add_attr(buf, l, PA_SERVICE, "web", 3);
	l = add_attr(buf, l, PA_ATTR_MAX + 1, "", 0);
	l = add_attr(buf, l, 1000, "\0\0\0\0\0\0\0\0\0", 9);
	l = add_attr(buf, l, PA_CAPACITY, "\x2a\0\0\0", 4);
	l = add_attr(buf, l, 0xffff, "\xff\xff", 2);
	seal(buf, l);
	struct proto_msg msg;
	const char *why = NULL;
	cr_assert_eq(proto_decode(buf, l, 0, PROTO_FROM_CLIENT, &msg, &why), 0, "%s", why ? why : "");
	char s[PROTO_MAX_NAME + 1];
	proto_str(&msg, PA_SERVICE, s, sizeof(s));
	cr_assert_str_eq(s, "web");
	cr_assert_eq(proto_u32(&msg, PA_CAPACITY), 42);
	cr_assert(!proto_has(&msg, (enum proto_attr)0));
}

TEST(proto, accessors)
{
	struct proto_buf b;
	struct proto_msg msg;
	const char *why;
	proto_begin(&b, PROTO_ST_END, 1);
	proto_put_u32(&b, PA_COUNT, 0xdeadbeefu);
	proto_put_u64(&b, PA_ACCEPTED, UINT64_MAX);
	proto_put_str(&b, PA_TEXT, "hello world");
	int len = proto_finish(&b, 0);
	cr_assert_eq(proto_decode(b.data, (size_t)len, 0, PROTO_FROM_DAEMON, &msg, &why), 0);

	cr_assert_eq(proto_u32(&msg, PA_COUNT), 0xdeadbeefu);
	cr_assert_eq(proto_u64(&msg, PA_ACCEPTED), UINT64_MAX);
	/* Absent attributes read as 0 / "". */
	cr_assert(!proto_has(&msg, PA_PID));
	cr_assert_eq(proto_u32(&msg, PA_PID), 0);
	cr_assert_eq(proto_u64(&msg, PA_CONN_ID), 0);
	char s[32] = "junk";
	proto_str(&msg, PA_SERVICE, s, sizeof(s));
	cr_assert_str_eq(s, "");
	/* Out-of-range attribute numbers are simply absent. */
	cr_assert(!proto_has(&msg, (enum proto_attr)(PA_ATTR_MAX + 1)));
	/* Wrong-width reads give 0, not half a value. */
	cr_assert_eq(proto_u32(&msg, PA_ACCEPTED), 0);
	cr_assert_eq(proto_u64(&msg, PA_COUNT), 0);
	/* proto_str truncates to the buffer and always terminates. */
	char small[6];
	proto_str(&msg, PA_TEXT, small, sizeof(small));
	cr_assert_str_eq(small, "hello");
	char one[1] = {'x'};
	proto_str(&msg, PA_TEXT, one, sizeof(one));
	cr_assert_eq(one[0], '\0');
	char none[1] = {'x'};
	proto_str(&msg, PA_TEXT, none, 0);
	cr_assert_eq(none[0], 'x');
}

TEST(proto, encoder_overflow)
{
	static char big[PROTO_MAX_MSG];
	struct proto_buf b;

	/* Exactly full is fine. */
	proto_begin(&b, PROTO_ST_END, 1);
	proto_put_bytes(&b, 200, big, PROTO_MAX_MSG - PROTO_HDR_LEN - 4);
	cr_assert_eq(proto_finish(&b, 0), PROTO_MAX_MSG);

	/* One byte more is not, and the error is sticky. */
	proto_begin(&b, PROTO_ST_END, 1);
	proto_put_bytes(&b, 200, big, PROTO_MAX_MSG - PROTO_HDR_LEN - 3);
	cr_assert_eq(b.err, -EMSGSIZE);
	cr_assert_leq(b.len, PROTO_MAX_MSG);
	proto_put_u32(&b, PA_COUNT, 1);
	cr_assert_eq(proto_finish(&b, 0), -EMSGSIZE);

	/* Many small attributes overflowing. */
	proto_begin(&b, PROTO_ST_END, 1);
	for (int i = 0; i < PROTO_MAX_MSG; i++)
		proto_put_u64(&b, 300, (uint64_t)i);
	cr_assert_leq(b.len, PROTO_MAX_MSG);
	cr_assert_eq(proto_finish(&b, 0), -EMSGSIZE);

	/* A string longer than a u16 length can say. */
	static char huge[70000];
	memset(huge, 'h', sizeof(huge) - 1);
	proto_begin(&b, PROTO_ST_END, 1);
	proto_put_str(&b, PA_TEXT, huge);
	cr_assert_eq(proto_finish(&b, 0), -EMSGSIZE);

	/* proto_begin clears the error. */
	proto_begin(&b, PROTO_ST_END, 1);
	cr_assert_eq(proto_finish(&b, 0), PROTO_HDR_LEN);

	/* More fds than a message may carry. */
	proto_begin(&b, PROTO_DELIVER, 1);
	cr_assert_eq(proto_finish(&b, PROTO_MAX_FDS + 1), -EINVAL);
}

/* ---- deterministic fuzzing ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void fuzz_check(const uint8_t *buf, size_t len, unsigned nfds, enum proto_dir from, const char *gen,
                       unsigned iter)
{
	struct proto_msg msg;
	const char *why = NULL;
	int rc = proto_decode(buf, len, nfds, from, &msg, &why);
	const struct mspec *m = NULL;
	bool header_ok = ref_header_ok(buf, len, nfds, from, &m);

	if (rc != 0 && rc != -EBADMSG && rc != -EPROTONOSUPPORT && rc != -EOPNOTSUPP && rc != -EMSGSIZE)
		cr_assert_fail("%s #%u: unexpected return %d", gen, iter, rc);
	if (rc != 0 && !why)
		cr_assert_fail("%s #%u: failure %d without a reason", gen, iter, rc);
	if (rc == 0 && !header_ok)
		cr_assert_fail("%s #%u: a message with an invalid header was accepted", gen, iter);
	bool want = header_ok && ref_attrs_ok(buf, len, m);
	if ((rc == 0) != want)
		cr_assert_fail("%s #%u: decode returned %d (%s), the reference validator says %s", gen, iter, rc,
		               why ? why : "ok", want ? "valid" : "invalid");
	if (rc == 0) {
		for (unsigned a = 0; a <= PA_ATTR_MAX; a++) {
			const struct proto_val *v = &msg.attr[a];
			if (v->p && (v->p < buf + PROTO_HDR_LEN || v->p + v->len > buf + len))
				cr_assert_fail("%s #%u: attribute %u points outside the message", gen, iter, a);
		}
	}
}

#define FUZZ_ITERATIONS 100000

TEST(proto, fuzz_random_bytes)
{
	static uint8_t buf[PROTO_MAX_MSG + 16];
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (unsigned it = 0; it < FUZZ_ITERATIONS; it++) {
		size_t len = rnd_below(8) == 0 ? rnd_below(sizeof(buf) + 1) : rnd_below(96);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		/* Half of them get a plausible header so the later checks run. */
		if (len >= PROTO_HDR_LEN && rnd_below(2)) {
			le16(buf, PROTO_MAGIC);
			buf[2] = rnd_below(16) ? PROTO_VERSION : (uint8_t)rnd();
			buf[3] = (uint8_t)rnd_below(PROTO_TYPE_MAX + 3);
			if (rnd_below(8))
				le32(buf + 4, (uint32_t)len);
			if (rnd_below(8))
				le16(buf + 8, (uint16_t)rnd_below(2));
			if (rnd_below(8))
				le16(buf + 10, 0);
		}
		unsigned nfds = rnd_below(8) ? rnd_below(2) : rnd_below(5);
		fuzz_check(buf, len, nfds, rnd_below(2) ? PROTO_FROM_CLIENT : PROTO_FROM_DAEMON, "random", it);
	}
}

TEST(proto, fuzz_random_attributes)
{
	static uint8_t buf[PROTO_MAX_MSG + 16];
	rng_state = 0x123456789abcdefULL;
	unsigned accepted = 0;
	for (unsigned it = 0; it < FUZZ_ITERATIONS; it++) {
		const struct mspec *m = &specs[rnd_below(NSPECS)];
		size_t len = start_st_end(buf);
		buf[3] = m->type;
		le16(buf + 8, (uint16_t)m->nfds);
		unsigned nattr = rnd_below(6), nknown = 0;
		while (m->a[nknown].attr)
			nknown++;
		for (unsigned k = 0; k < nattr; k++) {
			uint16_t at;
			unsigned pick = rnd_below(4);
			if (pick == 0)
				at = (uint16_t)rnd();
			else if (pick == 1 && nknown)
				at = m->a[rnd_below(nknown)].attr;
			else
				at = (uint16_t)rnd_below(PA_ATTR_MAX + 3);
			uint16_t alen;
			const struct ashape *sh = at <= PA_ATTR_MAX ? &shapes[at] : NULL;
			if (sh && sh->kind == V32 && rnd_below(4))
				alen = 4;
			else if (sh && sh->kind == V64 && rnd_below(4))
				alen = 8;
			else if (at == PA_DONE_IDS && rnd_below(4))
				/* Mostly whole ids, so the valid path is reached. */
				alen = (uint16_t)(rnd_below(4) ? 8 * rnd_below(PROTO_MAX_DONE_IDS / 8 + 1u)
				                               : rnd_below(8 * PROTO_MAX_DONE_IDS + 9u));
			else if (sh && (sh->kind == VSTR || sh->kind == VBYTES) && rnd_below(4))
				alen = (uint16_t)(sh->min + rnd_below(sh->max - sh->min + 1u));
			else
				alen = (uint16_t)rnd_below(140);
			if (len + 4 + alen > PROTO_MAX_MSG)
				break;
			le16(buf + len, at);
			le16(buf + len + 2, alen);
			for (unsigned i = 0; i < alen; i++)
				buf[len + 4 + i] = rnd_below(64) ? (uint8_t)('a' + rnd_below(26)) : (uint8_t)rnd();
			len += 4u + alen;
		}
		/* Now and then a ragged tail. */
		if (rnd_below(10) == 0) {
			unsigned extra = 1 + rnd_below(6);
			for (unsigned i = 0; i < extra; i++)
				buf[len++] = (uint8_t)rnd();
		}
		seal(buf, len);
		unsigned nfds = rnd_below(16) ? m->nfds : 1 - m->nfds;
		enum proto_dir from = rnd_below(16) ? m->from : other_dir(m->from);
		struct proto_msg msg;
		if (proto_decode(buf, len, nfds, from, &msg, NULL) == 0)
			accepted++;
		fuzz_check(buf, len, nfds, from, "attributes", it);
	}
	/* The generator must reach the success path, or it tests little. */
	cr_assert_gt(accepted, FUZZ_ITERATIONS / 50, "only %u accepted", accepted);
}

TEST(proto, fuzz_single_byte_mutations)
{
	rng_state = 0xdecafbadULL;
	unsigned accepted = 0;
	for (unsigned it = 0; it < FUZZ_ITERATIONS; it++) {
		const struct mspec *m = &specs[rnd_below(NSPECS)];
		struct proto_buf b;
		int len = build(&b, m, (uint32_t)rnd(), 0, rnd_below(2));
		cr_assert_gt(len, 0);
		size_t pos = rnd_below((unsigned)len);
		uint8_t val = rnd_below(4) ? (uint8_t)rnd() : (uint8_t)(b.data[pos] ^ (1u << rnd_below(8)));
		b.data[pos] = val;
		size_t dlen = (size_t)len;
		if (rnd_below(16) == 0)
			dlen = rnd_below((unsigned)len + 1);
		if (proto_decode(b.data, dlen, m->nfds, m->from, &(struct proto_msg){0}, NULL) == 0)
			accepted++;
		fuzz_check(b.data, dlen, m->nfds, m->from, "mutation", it);
	}
	cr_assert_gt(accepted, 0);
}

/* ===================== I/O over SOCK_SEQPACKET ===================== */

static void seqpacket_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %s",
	             strerror(errno));
}

/* sendmsg with any number of fds (proto_send allows only PROTO_MAX_FDS). */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 32)];
	} cm;
	cr_assert_leq(nfds, 32);
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	cr_assert_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len, "sendmsg: %s", strerror(errno));
}

static int memfd(void)
{
	int fd = memfd_create("test_proto", MFD_CLOEXEC);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	return fd;
}

TEST(io, send_and_receive_fd)
{
	int sv[2];
	seqpacket_pair(sv);
	int f = memfd();
	cr_assert_eq(write(f, "x", 1), 1);
	struct stat st_sent;
	cr_assert_eq(fstat(f, &st_sent), 0);

	struct proto_buf b;
	const struct mspec *d = spec_of(PROTO_DELIVER);
	int len = build(&b, d, 77, 0, false);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, &f, 1, true), 0);
	/* The sender keeps its fd. */
	cr_assert_eq(fcntl(f, F_GETFD), FD_CLOEXEC);
	close(f);

	uint8_t buf[PROTO_MAX_MSG + 1];
	int fds[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	ssize_t n = proto_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &nfds, true);
	cr_assert_eq(n, len);
	cr_assert_eq(nfds, 1);
	cr_assert_geq(fds[0], 0);
	int fl = fcntl(fds[0], F_GETFD);
	cr_assert(fl >= 0 && (fl & FD_CLOEXEC), "received fd is not close-on-exec");
	struct stat st_got;
	cr_assert_eq(fstat(fds[0], &st_got), 0);
	cr_assert_eq(st_got.st_ino, st_sent.st_ino, "received fd is another file");
	cr_assert_eq(st_got.st_dev, st_sent.st_dev);

	struct proto_msg msg;
	const char *why = NULL;
	cr_assert_eq(proto_decode(buf, (size_t)n, nfds, PROTO_FROM_DAEMON, &msg, &why), 0, "%s", why ? why : "");
	cr_assert_eq(msg.seq, 77);
	check_values(&msg, d, false);

	proto_close_fds(fds, nfds);
	cr_assert_eq(fds[0], -1);
	close(sv[0]);
	close(sv[1]);
}

TEST(io, send_without_fds)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 5, 0, false);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, false), 0);
	uint8_t buf[PROTO_MAX_MSG + 1];
	int fds[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), fds, 0, &nfds, false), len);
	cr_assert_eq(nfds, 0);
	cr_assert_eq(fds[0], -1, "no fd slot is touched");
	cr_assert(memcmp(buf, b.data, (size_t)len) == 0);
	close(sv[0]);
	close(sv[1]);
}

TEST(io, send_refuses_too_many_fds)
{
	int sv[2];
	seqpacket_pair(sv);
	int fds[2] = {sv[0], sv[1]};
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_STATUS), 1, 0, false);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, fds, PROTO_MAX_FDS + 1, true), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

TEST(io, more_fds_than_max_are_all_closed)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_DELIVER), 1, 0, false);
	/* 2 fds (room in the control buffer) and 12 (more than it holds:
	 * MSG_CTRUNC); both must be refused with every fd closed. */
	unsigned counts[] = {2, 12};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		int fds[12];
		for (unsigned k = 0; k < counts[i]; k++)
			fds[k] = memfd();
		send_raw(sv[0], b.data, (size_t)len, fds, counts[i]);
		for (unsigned k = 0; k < counts[i]; k++)
			close(fds[k]);
		int before = count_fds();
		uint8_t buf[PROTO_MAX_MSG + 1];
		int got[PROTO_MAX_FDS] = {-1};
		unsigned nfds = 99;
		ssize_t n = proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, true);
		cr_assert_eq(n, -EBADMSG, "%u fds: %zd", counts[i], n);
		cr_assert_eq(nfds, 0);
		cr_assert_eq(got[0], -1);
		cr_assert_eq(count_fds(), before, "%u fds: received fds left open", counts[i]);
	}
	close(sv[0]);
	close(sv[1]);
}

TEST(io, fds_on_a_channel_without_fds_are_closed)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 1, 0, false);
	int f = memfd();
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, &f, 1, true), 0);
	close(f);
	int before = count_fds();
	uint8_t buf[PROTO_MAX_MSG + 1];
	int got[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 0, &nfds, true), -EBADMSG);
	cr_assert_eq(nfds, 0);
	cr_assert_eq(count_fds(), before);
	/* The channel still works afterwards. */
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, true), 0);
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 0, &nfds, true), len);
	close(sv[0]);
	close(sv[1]);
}

TEST(io, truncated_message)
{
	int sv[2];
	seqpacket_pair(sv);
	static uint8_t big[PROTO_MAX_MSG + 100];
	memset(big, 'x', sizeof(big));

	/* Bigger than the buffer given. */
	send_raw(sv[0], big, 100, NULL, 0);
	uint8_t small[50];
	int got[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	cr_assert_eq(proto_recv(sv[1], small, sizeof(small), got, 1, &nfds, true), -EBADMSG);
	cr_assert_eq(nfds, 0);

	/* Bigger than PROTO_MAX_MSG + 1, the recommended buffer. */
	send_raw(sv[0], big, sizeof(big), NULL, 0);
	uint8_t buf[PROTO_MAX_MSG + 1];
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, true), -EBADMSG);

	/* With an fd attached, which must be closed. */
	int f = memfd();
	send_raw(sv[0], big, 100, &f, 1);
	close(f);
	int before = count_fds();
	cr_assert_eq(proto_recv(sv[1], small, sizeof(small), got, 1, &nfds, true), -EBADMSG);
	cr_assert_eq(nfds, 0);
	cr_assert_eq(got[0], -1);
	cr_assert_eq(count_fds(), before, "the fd of a truncated message was left open");
	close(sv[0]);
	close(sv[1]);
}

TEST(io, end_of_stream)
{
	int sv[2];
	seqpacket_pair(sv);
	close(sv[0]);
	uint8_t buf[PROTO_MAX_MSG + 1];
	int got[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, true), 0);
	cr_assert_eq(nfds, 0);
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, false), 0);
	close(sv[1]);
}

/* An empty datagram reads as 0, the same as end of stream; callers stop
 * there, so an fd that rode on it must not be handed out (it would leak). */
TEST(io, empty_datagram_with_fd)
{
	int sv[2];
	seqpacket_pair(sv);
	int f = memfd();
	cr_assert_eq(proto_send(sv[0], "", 0, &f, 1, true), 0);
	close(f);
	int before = count_fds();
	uint8_t buf[PROTO_MAX_MSG + 1];
	int got[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	ssize_t n = proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, true);
	cr_assert_eq(n, -EBADMSG, "an empty datagram carrying an fd gave %zd (nfds %u), not -EBADMSG", n, nfds);
	cr_assert_eq(nfds, 0);
	cr_assert_eq(count_fds(), before, "the fd that came with an empty datagram is still open");
	proto_close_fds(got, PROTO_MAX_FDS);
	close(sv[0]);
	close(sv[1]);
}

TEST(io, nonblocking_and_errors)
{
	int sv[2];
	seqpacket_pair(sv);
	uint8_t buf[PROTO_MAX_MSG + 1];
	int got[PROTO_MAX_FDS] = {-1};
	unsigned nfds = 99;
	cr_assert_eq(proto_recv(sv[1], buf, sizeof(buf), got, 1, &nfds, false), -EAGAIN);
	cr_assert_eq(nfds, 0);

	/* Fill the socket: non-blocking send reports -EAGAIN. */
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_STATUS), 1, 0, false);
	int rc;
	int sent = 0;
	while ((rc = proto_send(sv[0], b.data, (size_t)len, NULL, 0, false)) == 0 && sent < 1000000)
		sent++;
	cr_assert_eq(rc, -EAGAIN, "send into a full socket: %d after %d", rc, sent);

	/* Peer gone with our messages unread: an error, not a block. */
	close(sv[1]);
	rc = proto_send(sv[0], b.data, (size_t)len, NULL, 0, true);
	cr_assert(rc == -ECONNRESET || rc == -EPIPE, "send to a peer gone: %d", rc);
	close(sv[0]);

	/* Peer gone: -EPIPE, and no SIGPIPE kills the test. */
	seqpacket_pair(sv);
	close(sv[1]);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, true), -EPIPE);
	close(sv[0]);

	/* Not a socket. */
	cr_assert_eq(proto_recv(-1, buf, sizeof(buf), got, 1, &nfds, false), -EBADF);
	cr_assert_eq(proto_send(-1, b.data, (size_t)len, NULL, 0, false), -EBADF);
}

TEST(io, close_fds_helper)
{
	int v[3] = {memfd(), -1, memfd()};
	proto_close_fds(v, 3);
	cr_assert_eq(v[0], -1);
	cr_assert_eq(v[1], -1);
	cr_assert_eq(v[2], -1);
	proto_close_fds(NULL, 0);
}

TEST(io, send_batch_in_order_with_fds)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b[3];
	int f = memfd();
	int l0 = build(&b[0], spec_of(PROTO_DELIVER), 1, 0, false);
	int l1 = build(&b[1], spec_of(PROTO_DRAINED), 2, 0, false);
	int l2 = build(&b[2], spec_of(PROTO_DELIVER), 3, 0, false);
	struct proto_out v[3] = {
		{b[0].data, (size_t)l0, f},
		{b[1].data, (size_t)l1, -1},
		{b[2].data, (size_t)l2, f},
	};
	cr_assert_eq(proto_send_batch(sv[0], v, 3), 3);
	close(f);
	uint32_t want_seq[3] = {1, 2, 3};
	unsigned want_fds[3] = {1, 0, 1};
	for (int i = 0; i < 3; i++) {
		uint8_t buf[PROTO_MAX_MSG + 1];
		int fds[PROTO_MAX_FDS] = {-1};
		unsigned nfds = 99;
		ssize_t n = proto_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &nfds, false);
		cr_assert(n > 0, "message %d: %zd", i, n);
		struct proto_msg m;
		cr_assert_eq(proto_decode(buf, (size_t)n, nfds, PROTO_FROM_DAEMON, &m, NULL), 0);
		cr_assert_eq(m.seq, want_seq[i], "out of order");
		cr_assert_eq(nfds, want_fds[i]);
		proto_close_fds(fds, nfds);
	}
	close(sv[0]);
	close(sv[1]);
}

TEST(io, send_batch_stops_when_full)
{
	int sv[2];
	seqpacket_pair(sv);
	int small = 4096;
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_REGISTER), 9, 0, false);
	struct proto_out v[PROTO_BATCH_MAX];
	for (int i = 0; i < PROTO_BATCH_MAX; i++)
		v[i] = (struct proto_out){b.data, (size_t)len, -1};
	int total = 0, r;
	/* Partial batches, then -EAGAIN: never an error, never more than sent. */
	while ((r = proto_send_batch(sv[0], v, PROTO_BATCH_MAX)) > 0) {
		cr_assert_leq(r, PROTO_BATCH_MAX);
		total += r;
		cr_assert_lt(total, 100000, "socket never filled");
	}
	cr_assert_eq(r, -EAGAIN);
	cr_assert_gt(total, 0);
	int got = 0;
	uint8_t buf[PROTO_MAX_MSG + 1];
	int fds[PROTO_MAX_FDS];
	unsigned nfds;
	while (proto_recv(sv[1], buf, sizeof(buf), fds, 0, &nfds, false) == len)
		got++;
	cr_assert_eq(got, total, "sent %d, received %d", total, got);
	cr_assert_eq(proto_send_batch(sv[0], v, 0), -EINVAL);
	cr_assert_eq(proto_send_batch(sv[0], v, PROTO_BATCH_MAX + 1), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

static uint8_t rb[PROTO_BATCH_MAX][PROTO_MAX_MSG + 1];

TEST(io, recv_batch_takes_what_waits)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_ACK), 4, 0, false);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, false), 0);
	size_t lens[8];
	bool bad = true;
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 8, &bad), 5);
	cr_assert(!bad);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(lens[i], (size_t)len);
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 8, &bad), -EAGAIN);
	close(sv[0]);
	/* End of stream: one entry of length 0. */
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 8, &bad), 1);
	cr_assert_eq(lens[0], 0);
	cr_assert(!bad);
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 0, &bad), -EINVAL);
	close(sv[1]);
}

TEST(io, recv_batch_keeps_good_messages_before_an_fd)
{
	int sv[2];
	seqpacket_pair(sv);
	struct proto_buf b;
	int len = build(&b, spec_of(PROTO_ACK), 4, 0, false);
	int f = memfd();
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, false), 0);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, false), 0);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, &f, 1, false), 0);
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, NULL, 0, false), 0);
	close(f);
	size_t lens[8];
	bool bad = false;
	int before = count_fds();
	/* The two ACKs before the fd are honoured; the fd is closed here. */
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 8, &bad), 2);
	cr_assert(bad);
	cr_assert_eq(count_fds(), before, "the received fd was kept");
	/* A message with an fd first: nothing good. */
	f = memfd();
	cr_assert_eq(proto_send(sv[0], b.data, (size_t)len, &f, 1, false), 0);
	close(f);
	/* (The message after the bad one was read and discarded with it: the
	 * caller drops such a peer.) */
	cr_assert_eq(proto_recv_batch(sv[1], rb, lens, 8, &bad), -EBADMSG);
	cr_assert(bad);
	close(sv[0]);
	close(sv[1]);
}
