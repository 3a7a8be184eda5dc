/* proto: wire format and fd-carrying I/O for the control protocol.
 * See proto.h for the format and the ownership rules. */
#include "autoconf.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

#define BIT(a) (UINT64_C(1) << (a))

enum kind { K_NONE, K_U32, K_U64, K_STR, K_BYTES };

struct attr_rule {
	enum kind kind;
	uint16_t min, max; /* for K_STR and K_BYTES */
};

/* Every known attribute and the shape its value must have. */
static const struct attr_rule attr_rules[PA_ATTR_MAX + 1] = {
	[PA_SERVICE] = {K_STR, 1, PROTO_MAX_NAME},
	[PA_CAPACITY] = {K_U32, 0, 0},
	[PA_BACKEND_ID] = {K_U64, 0, 0},
	[PA_ERRCODE] = {K_U32, 0, 0},
	[PA_TEXT] = {K_STR, 0, PROTO_MAX_TEXT},
	[PA_UID] = {K_U32, 0, 0},
	[PA_CONN_ID] = {K_U64, 0, 0},
	[PA_LOCAL_ADDR] = {K_BYTES, 2, 128},
	[PA_PEER_ADDR] = {K_BYTES, 0, 128},
	[PA_PEER_PID] = {K_U32, 0, 0},
	[PA_PEER_UID] = {K_U32, 0, 0},
	[PA_PEER_GID] = {K_U32, 0, 0},
	[PA_RECEIVED] = {K_U32, 0, 0},
	[PA_DONE] = {K_U32, 0, 0},
	[PA_PID] = {K_U32, 0, 0},
	[PA_GID] = {K_U32, 0, 0},
	[PA_UPTIME_MS] = {K_U64, 0, 0},
	[PA_NFDS] = {K_U32, 0, 0},
	[PA_ACCEPTED] = {K_U64, 0, 0},
	[PA_DELIVERED] = {K_U64, 0, 0},
	[PA_REDELIVERED] = {K_U64, 0, 0},
	[PA_REFUSED] = {K_U64, 0, 0},
	[PA_PENDING] = {K_U32, 0, 0},
	[PA_PAUSED] = {K_U32, 0, 0},
	[PA_BALANCE] = {K_STR, 1, 32},
	[PA_INFLIGHT] = {K_U32, 0, 0},
	[PA_UNACKED] = {K_U32, 0, 0},
	[PA_DRAINING] = {K_U32, 0, 0},
	[PA_COUNT] = {K_U32, 0, 0},
	[PA_BACKENDS] = {K_U32, 0, 0},
	[PA_CONTROL] = {K_U32, 0, 0},
	[PA_SOCKTYPE] = {K_U32, 0, 0},
	[PA_LISTENING] = {K_U32, 0, 0},
	[PA_DONE_IDS] = {K_BYTES, 0, 8 * PROTO_MAX_DONE_IDS},
	[PA_MODE] = {K_STR, 1, 80},
	[PA_REFUSED_ACCESS] = {K_U64, 0, 0},
	[PA_REFUSED_RATE] = {K_U64, 0, 0},
	[PA_REFUSED_SOURCE] = {K_U64, 0, 0},
	[PA_REFUSED_NOBACKEND] = {K_U64, 0, 0},
	[PA_REFUSED_SPAWN] = {K_U64, 0, 0},
	[PA_SPAWNED] = {K_U64, 0, 0},
	[PA_CHILDREN] = {K_U32, 0, 0},
	[PA_LIVE] = {K_U32, 0, 0},
	[PA_LIMITED] = {K_U32, 0, 0},
};

struct type_rule {
	const char *name;
	enum proto_dir from;
	uint8_t nfds;      /* exact number of fds the type carries */
	uint64_t required; /* attributes that must be present */
};

/* Every message type: who may send it, how many fds it carries, what it
 * must contain. The decoder enforces this table and nothing else. */
static const struct type_rule type_rules[PROTO_TYPE_MAX + 1] = {
	[PROTO_REGISTER] = {"REGISTER", PROTO_FROM_CLIENT, 0, BIT(PA_SERVICE) | BIT(PA_CAPACITY)},
	[PROTO_REGISTERED] = {"REGISTERED", PROTO_FROM_DAEMON, 0, BIT(PA_BACKEND_ID) | BIT(PA_CAPACITY)},
	[PROTO_ERROR] = {"ERROR", PROTO_FROM_DAEMON, 0, BIT(PA_ERRCODE) | BIT(PA_TEXT)},
	[PROTO_DELIVER] = {"DELIVER", PROTO_FROM_DAEMON, 1,
	                   BIT(PA_CONN_ID) | BIT(PA_SERVICE) | BIT(PA_LOCAL_ADDR) | BIT(PA_PEER_ADDR)},
	[PROTO_ACK] = {"ACK", PROTO_FROM_CLIENT, 0, BIT(PA_RECEIVED) | BIT(PA_DONE)},
	[PROTO_DRAIN] = {"DRAIN", PROTO_FROM_CLIENT, 0, 0},
	[PROTO_DRAINED] = {"DRAINED", PROTO_FROM_DAEMON, 0, 0},
	[PROTO_STATUS] = {"STATUS", PROTO_FROM_CLIENT, 0, 0},
	[PROTO_ST_DAEMON] = {"ST_DAEMON", PROTO_FROM_DAEMON, 0, BIT(PA_PID)},
	[PROTO_ST_SERVICE] = {"ST_SERVICE", PROTO_FROM_DAEMON, 0, BIT(PA_SERVICE)},
	[PROTO_ST_LISTENER] = {"ST_LISTENER", PROTO_FROM_DAEMON, 0, BIT(PA_SERVICE) | BIT(PA_TEXT)},
	[PROTO_ST_BACKEND] = {"ST_BACKEND", PROTO_FROM_DAEMON, 0, BIT(PA_BACKEND_ID) | BIT(PA_SERVICE)},
	[PROTO_ST_END] = {"ST_END", PROTO_FROM_DAEMON, 0, 0},
	[PROTO_ADMIN_DRAIN] = {"ADMIN_DRAIN", PROTO_FROM_CLIENT, 0, 0},
	[PROTO_ADMIN_RELOAD] = {"ADMIN_RELOAD", PROTO_FROM_CLIENT, 0, 0},
	[PROTO_ADMIN_UPGRADE] = {"ADMIN_UPGRADE", PROTO_FROM_CLIENT, 0, 0},
	[PROTO_OK] = {"OK", PROTO_FROM_DAEMON, 0, 0},
	[PROTO_SOCKET] = {"SOCKET", PROTO_FROM_DAEMON, 1,
	                  BIT(PA_SERVICE) | BIT(PA_LOCAL_ADDR) | BIT(PA_SOCKTYPE) | BIT(PA_LISTENING)},
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void proto_begin(struct proto_buf *b, enum proto_type type, uint32_t seq)
{
	memset(b->data, 0, PROTO_HDR_LEN);
	put16(b->data, PROTO_MAGIC);
	b->data[2] = PROTO_VERSION;
	b->data[3] = (uint8_t)type;
	put32(b->data + 12, seq);
	b->len = PROTO_HDR_LEN;
	b->err = 0;
}

void proto_put_bytes(struct proto_buf *b, enum proto_attr a, const void *p, size_t n)
{
	if (b->err)
		return;
	if (n > UINT16_MAX || b->len + 4 + n > PROTO_MAX_MSG) {
		b->err = -EMSGSIZE;
		return;
	}
	put16(b->data + b->len, (uint16_t)a);
	put16(b->data + b->len + 2, (uint16_t)n);
	if (n)
		memcpy(b->data + b->len + 4, p, n);
	b->len += 4 + n;
}

void proto_put_u32(struct proto_buf *b, enum proto_attr a, uint32_t v)
{
	uint8_t tmp[4];
	put32(tmp, v);
	proto_put_bytes(b, a, tmp, sizeof(tmp));
}

void proto_put_u64(struct proto_buf *b, enum proto_attr a, uint64_t v)
{
	uint8_t tmp[8];
	put64(tmp, v);
	proto_put_bytes(b, a, tmp, sizeof(tmp));
}

void proto_put_str(struct proto_buf *b, enum proto_attr a, const char *s)
{
	proto_put_bytes(b, a, s, strlen(s));
}

int proto_finish(struct proto_buf *b, unsigned nfds)
{
	if (b->err)
		return b->err;
	if (nfds > PROTO_MAX_FDS)
		return -EINVAL;
	put32(b->data + 4, (uint32_t)b->len);
	put16(b->data + 8, (uint16_t)nfds);
	return (int)b->len;
}

static int fail(const char **ret_why, const char *why, int err)
{
	if (ret_why)
		*ret_why = why;
	return err;
}

int proto_decode(const void *buf, size_t len, unsigned nfds_received,
                 enum proto_dir from, struct proto_msg *ret, const char **ret_why)
{
	const uint8_t *p = buf;

	memset(ret, 0, sizeof(*ret));
	if (len < PROTO_HDR_LEN)
		return fail(ret_why, "message shorter than the header", -EBADMSG);
	if (len > PROTO_MAX_MSG)
		return fail(ret_why, "message longer than the maximum", -EMSGSIZE);
	if (get16(p) != PROTO_MAGIC)
		return fail(ret_why, "bad magic", -EBADMSG);
	ret->version = p[2];
	ret->type = p[3];
	ret->nfds = get16(p + 8);
	ret->seq = get32(p + 12);
	if (ret->version != PROTO_VERSION)
		return fail(ret_why, "unsupported protocol version", -EPROTONOSUPPORT);
	if (get32(p + 4) != len)
		return fail(ret_why, "length field does not match the message size", -EBADMSG);
	if (get16(p + 10) != 0)
		return fail(ret_why, "reserved flags set", -EBADMSG);
	if (ret->type == 0 || ret->type > PROTO_TYPE_MAX || !type_rules[ret->type].name)
		return fail(ret_why, "unknown message type", -EOPNOTSUPP);

	const struct type_rule *tr = &type_rules[ret->type];
	if (tr->from != from)
		return fail(ret_why, "message type not valid in this direction", -EOPNOTSUPP);
	if (ret->nfds != tr->nfds)
		return fail(ret_why, "declared fd count wrong for the message type", -EBADMSG);
	if (nfds_received != ret->nfds)
		return fail(ret_why, "received fd count differs from the declared count", -EBADMSG);

	uint64_t seen = 0;
	size_t off = PROTO_HDR_LEN;
	while (off < len) {
		if (len - off < 4)
			return fail(ret_why, "truncated attribute header", -EBADMSG);
		uint16_t at = get16(p + off), alen = get16(p + off + 2);
		off += 4;
		if (alen > len - off)
			return fail(ret_why, "attribute runs past the end of the message", -EBADMSG);
		if (at >= 1 && at <= PA_ATTR_MAX && attr_rules[at].kind != K_NONE) {
			const struct attr_rule *ar = &attr_rules[at];
			if (seen & BIT(at))
				return fail(ret_why, "duplicate attribute", -EBADMSG);
			seen |= BIT(at);
			switch (ar->kind) {
			case K_U32:
				if (alen != 4)
					return fail(ret_why, "integer attribute of wrong size", -EBADMSG);
				break;
			case K_U64:
				if (alen != 8)
					return fail(ret_why, "integer attribute of wrong size", -EBADMSG);
				break;
			case K_STR:
				if (alen < ar->min || alen > ar->max)
					return fail(ret_why, "string attribute of bad length", -EBADMSG);
				if (memchr(p + off, '\0', alen))
					return fail(ret_why, "string attribute contains NUL", -EBADMSG);
				break;
			case K_BYTES:
				if (alen < ar->min || alen > ar->max)
					return fail(ret_why, "byte attribute of bad length", -EBADMSG);
				if (at == PA_DONE_IDS && alen % 8 != 0)
					return fail(ret_why, "id list not a multiple of 8 bytes", -EBADMSG);
				break;
			case K_NONE:
				break;
			}
			ret->attr[at].p = p + off;
			ret->attr[at].len = alen;
		}
		off += alen;
	}
	if ((seen & tr->required) != tr->required)
		return fail(ret_why, "required attribute missing", -EBADMSG);
	return 0;
}

bool proto_has(const struct proto_msg *m, enum proto_attr a)
{
	return a <= PA_ATTR_MAX && m->attr[a].p != NULL;
}

uint32_t proto_u32(const struct proto_msg *m, enum proto_attr a)
{
	return proto_has(m, a) && m->attr[a].len == 4 ? get32(m->attr[a].p) : 0;
}

uint64_t proto_u64(const struct proto_msg *m, enum proto_attr a)
{
	return proto_has(m, a) && m->attr[a].len == 8 ? get64(m->attr[a].p) : 0;
}

void proto_str(const struct proto_msg *m, enum proto_attr a, char *buf, size_t size)
{
	size_t n = 0;
	if (size == 0)
		return;
	if (proto_has(m, a)) {
		n = m->attr[a].len;
		if (n > size - 1)
			n = size - 1;
		memcpy(buf, m->attr[a].p, n);
	}
	buf[n] = '\0';
}

const char *proto_type_name(unsigned type)
{
	if (type >= 1 && type <= PROTO_TYPE_MAX && type_rules[type].name)
		return type_rules[type].name;
	return "unknown";
}

void proto_close_fds(int *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (v[i] >= 0)
			close(v[i]);
		v[i] = -1;
	}
}

int proto_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds, bool blocking)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cm;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > PROTO_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	int flags = MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, flags);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EMSGSIZE;
		if (errno != EINTR)
			return -errno;
	}
}

int proto_send_batch(int sock, const struct proto_out *v, unsigned n)
{
	struct mmsghdr mm[PROTO_BATCH_MAX];
	struct iovec iov[PROTO_BATCH_MAX];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm[PROTO_BATCH_MAX];

	if (n == 0 || n > PROTO_BATCH_MAX)
		return -EINVAL;
	memset(mm, 0, sizeof(mm[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = (void *)v[i].buf;
		iov[i].iov_len = v[i].len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		if (v[i].fd >= 0) {
			memset(&cm[i], 0, sizeof(cm[i]));
			mm[i].msg_hdr.msg_control = cm[i].buf;
			mm[i].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int));
			struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &v[i].fd, sizeof(int));
		}
	}
	for (;;) {
		int r = sendmmsg(sock, mm, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			/* SEQPACKET sends whole messages; anything else is a bug. */
			for (int i = 0; i < r; i++)
				if (mm[i].msg_len != v[i].len)
					return -EMSGSIZE;
			return r;
		}
		if (r == 0)
			return -EAGAIN;
		if (errno != EINTR)
			return -errno;
	}
}

int proto_recv_batch(int sock, uint8_t (*bufs)[PROTO_MAX_MSG + 1], size_t *lens, unsigned n, bool *ret_bad)
{
	struct mmsghdr mm[PROTO_BATCH_MAX];
	struct iovec iov[PROTO_BATCH_MAX];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm[PROTO_BATCH_MAX];
	int r;

	*ret_bad = false;
	if (n == 0 || n > PROTO_BATCH_MAX)
		return -EINVAL;
	memset(mm, 0, sizeof(mm[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = PROTO_MAX_MSG + 1;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = cm[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof(cm[i].buf);
	}
	do
		r = recvmmsg(sock, mm, n, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	int good = r;
	for (int i = 0; i < r; i++) {
		struct msghdr *mh = &mm[i].msg_hdr;
		bool fds = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t k = 0; k < cnt; k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				close(fd);
			}
			fds = true;
		}
		if (i < good && (fds || (mh->msg_flags & (MSG_CTRUNC | MSG_TRUNC))))
			good = i;
		lens[i] = mm[i].msg_len;
		if (i < good && lens[i] == 0)
			good = i + 1; /* end of stream: nothing after it counts */
	}
	if (good < r && (good == 0 || lens[good - 1] != 0))
		*ret_bad = true;
	if (good == 0 && *ret_bad)
		return -EBADMSG;
	return good;
}

ssize_t proto_recv(int sock, void *buf, size_t size, int *ret_fds, unsigned max_fds,
                   unsigned *ret_nfds, bool blocking)
{
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	union {
		struct cmsghdr h;
		/* Room for more than we accept, so a peer sending too many fds
		 * is seen as such rather than as a truncation. */
		char buf[CMSG_SPACE(sizeof(int) * (PROTO_MAX_FDS + 8))];
	} cm;
	struct msghdr mh;
	ssize_t n;
	*ret_nfds = 0;
	for (;;) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | (blocking ? 0 : MSG_DONTWAIT));
		if (n >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}

	/* Collect every fd first, so that each refusal path closes all. */
	int got[PROTO_MAX_FDS + 8];
	unsigned ngot = 0;
	bool bad = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *d = CMSG_DATA(c);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, d + i * sizeof(int), sizeof(int));
			if (ngot < PROTO_MAX_FDS + 8)
				got[ngot++] = fd;
			else
				close(fd);
		}
	}
	if ((mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || ngot > max_fds || (n == 0 && ngot > 0))
		bad = true;
	if (bad) {
		proto_close_fds(got, ngot);
		return -EBADMSG;
	}
	for (unsigned i = 0; i < ngot; i++)
		ret_fds[i] = got[i];
	*ret_nfds = ngot;
	return n;
}
