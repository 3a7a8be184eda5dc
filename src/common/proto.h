/* proto: the handoffd control protocol, shared by the daemon, libhandoff and
 * handoffctl so the two ends cannot drift. man/handoff-protocol.7 is the
 * prose version of this file.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET. One message is one datagram; file
 * descriptors travel as SCM_RIGHTS on the message that declares them.
 *
 * Message = 16-byte header + attributes. All integers little-endian.
 *   off 0  u16 magic    0x4F48 (bytes 'H' 'O')
 *   off 2  u8  version  PROTO_VERSION
 *   off 3  u8  type     enum proto_type
 *   off 4  u32 length   whole message, header included, 16..PROTO_MAX_MSG
 *   off 8  u16 nfds     number of SCM_RIGHTS fds attached (exactly)
 *   off 10 u16 flags    0 (reserved)
 *   off 12 u32 seq      request number; a reply echoes its request's seq
 * Attribute = u16 type, u16 len, len bytes of value, no padding. Attributes
 * fill the message exactly. Unknown attribute types are skipped (forward
 * compatibility); a known one with a wrong size, a duplicate, or a missing
 * required one makes the message malformed.
 *
 * Ownership: proto_recv() hands received fds to the caller only when the
 * message decodes and carries exactly as many fds as its header declares
 * and its type allows; on every other path it closes them itself.
 */
#ifndef HANDOFF_PROTO_H
#define HANDOFF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAGIC 0x4F48u
#define PROTO_VERSION 1
#define PROTO_HDR_LEN 16
#define PROTO_MAX_MSG 4096
#define PROTO_MAX_FDS 1
#define PROTO_MAX_NAME 63     /* service names */
#define PROTO_MAX_TEXT 1024   /* free text (error messages, addresses) */
#define PROTO_MAX_DONE_IDS 256 /* connection ids in one PA_DONE_IDS */

/* Message types. Numbers are never reused. */
enum proto_type {
	PROTO_REGISTER = 1,       /* B->D  SERVICE, CAPACITY */
	PROTO_REGISTERED = 2,     /* D->B  BACKEND_ID, CAPACITY; opt. COUNT (shared sockets that follow) */
	PROTO_ERROR = 3,          /* D->*  ERRCODE, TEXT; opt. UID, SERVICE */
	PROTO_DELIVER = 4,        /* D->B  1 fd; CONN_ID, SERVICE, LOCAL_ADDR, PEER_ADDR; opt PEER_PID/UID/GID */
	PROTO_ACK = 5,            /* B->D  RECEIVED, DONE (counts) */
	PROTO_DRAIN = 6,          /* B->D  no more connections please */
	PROTO_DRAINED = 7,        /* D->B  nothing more will be delivered */
	PROTO_STATUS = 8,         /* A->D  status request */
	PROTO_ST_DAEMON = 9,      /* D->A  PID, UPTIME_MS, NFDS, counters */
	PROTO_ST_SERVICE = 10,    /* D->A  SERVICE, BALANCE, counters, PENDING, PAUSED */
	PROTO_ST_LISTENER = 11,   /* D->A  SERVICE, TEXT (address), PAUSED */
	PROTO_ST_BACKEND = 12,    /* D->A  BACKEND_ID, SERVICE, PID, UID, GID, CAPACITY, INFLIGHT, UNACKED, DELIVERED, DRAINING */
	PROTO_ST_END = 13,        /* D->A  end of a status reply */
	PROTO_ADMIN_DRAIN = 14,   /* A->D  BACKEND_ID or PID */
	PROTO_ADMIN_RELOAD = 15,  /* A->D  */
	PROTO_OK = 16,            /* D->A  COUNT (optional) */
	PROTO_SOCKET = 17,        /* D->B  1 fd; SERVICE, LOCAL_ADDR, SOCKTYPE, LISTENING: a shared socket */
	PROTO_ADMIN_UPGRADE = 18, /* A->D  re-execute handoffd; OK (PID of the new one) or ERROR when decided */
	PROTO_TYPE_MAX = 18,
};

/* Attribute types. Numbers are never reused. */
enum proto_attr {
	PA_SERVICE = 1,     /* str, 1..PROTO_MAX_NAME */
	PA_CAPACITY = 2,    /* u32 */
	PA_BACKEND_ID = 3,  /* u64 */
	PA_ERRCODE = 4,     /* u32, enum proto_err */
	PA_TEXT = 5,        /* str, 0..PROTO_MAX_TEXT */
	PA_UID = 6,         /* u32 */
	PA_CONN_ID = 7,     /* u64 */
	PA_LOCAL_ADDR = 8,  /* sockaddr bytes, 2..128 */
	PA_PEER_ADDR = 9,   /* sockaddr bytes, 0..128 */
	PA_PEER_PID = 10,   /* u32 */
	PA_PEER_UID = 11,   /* u32 */
	PA_PEER_GID = 12,   /* u32 */
	PA_RECEIVED = 13,   /* u32 */
	PA_DONE = 14,       /* u32 */
	PA_PID = 15,        /* u32 */
	PA_GID = 16,        /* u32 */
	PA_UPTIME_MS = 17,  /* u64 */
	PA_NFDS = 18,       /* u32 */
	PA_ACCEPTED = 19,   /* u64 */
	PA_DELIVERED = 20,  /* u64 */
	PA_REDELIVERED = 21,/* u64 */
	PA_REFUSED = 22,    /* u64 */
	PA_PENDING = 23,    /* u32 */
	PA_PAUSED = 24,     /* u32, 0/1 */
	PA_BALANCE = 25,    /* str */
	PA_INFLIGHT = 26,   /* u32 */
	PA_UNACKED = 27,    /* u32 */
	PA_DRAINING = 28,   /* u32, 0/1 */
	PA_COUNT = 29,      /* u32 */
	PA_BACKENDS = 30,   /* u32 */
	PA_CONTROL = 31,    /* u32: open control connections */
	PA_SOCKTYPE = 32,   /* u32: SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
	PA_LISTENING = 33,  /* u32, 0/1: a listening socket (accept on it) or a datagram socket */
	PA_DONE_IDS = 34,   /* u64 LE array: ids of the connections DONE counts, 0..PROTO_MAX_DONE_IDS */
	PA_MODE = 35,       /* str: ST_SERVICE: accept, listen or datagram (+datagram, ", spawn", ", tcpmux NAME"),
	                     * or "builtin NAME"; ST_LISTENER: its state (accepting, paused, shared, ...) */
	PA_REFUSED_ACCESS = 36,  /* u64: closed by allow_from/deny_from/allow_client_* */
	PA_REFUSED_RATE = 37,    /* u64: closed by rate_per_source */
	PA_REFUSED_SOURCE = 38,  /* u64: closed by max_per_source */
	PA_REFUSED_NOBACKEND = 39, /* u64: closed by on_no_backend = reject */
	PA_REFUSED_SPAWN = 40,   /* u64: closed because a program could not be started */
	PA_SPAWNED = 41,    /* u64: programs started */
	PA_CHILDREN = 42,   /* u32: spawned programs running */
	PA_LIVE = 43,       /* u32: live connections counted for max_connections */
	PA_LIMITED = 44,    /* u32, 0/1: paused for a while (rate, spawn_rate, or a program that could not start) */
	PA_ATTR_MAX = 44,
};

/* Error codes carried in PA_ERRCODE (libhandoff maps n to -5000-n). */
enum proto_err {
	PE_PROTOCOL = 1,
	PE_VERSION = 2,
	PE_NO_SERVICE = 3,
	PE_NOT_ALLOWED = 4,
	PE_LIMIT = 5,
	PE_NOT_ADMIN = 6,
	PE_NOT_FOUND = 7,
	PE_CONFIG = 8,
	PE_STATE = 9,
	PE_SHUTDOWN = 10,
	PE_MAX = 10,
};

/* Who may send a message type. */
enum proto_dir {
	PROTO_FROM_DAEMON = 1,
	PROTO_FROM_CLIENT = 2,
};

/* ---- encoding ---- */

struct proto_buf {
	uint8_t data[PROTO_MAX_MSG];
	size_t len;
	int err; /* first error (-EMSGSIZE), sticky */
};

void proto_begin(struct proto_buf *b, enum proto_type type, uint32_t seq);
void proto_put_u32(struct proto_buf *b, enum proto_attr a, uint32_t v);
void proto_put_u64(struct proto_buf *b, enum proto_attr a, uint64_t v);
void proto_put_str(struct proto_buf *b, enum proto_attr a, const char *s);
void proto_put_bytes(struct proto_buf *b, enum proto_attr a, const void *p, size_t n);
/* Seal the header (length, nfds). Returns the message length or -EMSGSIZE. */
int proto_finish(struct proto_buf *b, unsigned nfds);

/* ---- decoding ---- */

struct proto_val {
	const uint8_t *p; /* NULL when absent */
	uint16_t len;
};

struct proto_msg {
	uint8_t type;
	uint8_t version;
	uint16_t nfds;
	uint32_t seq;
	struct proto_val attr[PA_ATTR_MAX + 1];
};

/* Decode and validate one message: header, exact length, known type sent in
 * the right direction (from = who sent it), attribute bounds and sizes,
 * required attributes, declared fd count allowed for the type, and that
 * nfds_received equals the declared count. Pure function, no allocation.
 * Returns 0, or -EBADMSG (malformed), -EPROTONOSUPPORT (version),
 * -EOPNOTSUPP (unknown type or wrong direction), -EMSGSIZE (too long). On
 * failure *ret_why (if not NULL) gets a static phrase for the log. */
int proto_decode(const void *buf, size_t len, unsigned nfds_received,
                 enum proto_dir from, struct proto_msg *ret, const char **ret_why);

bool proto_has(const struct proto_msg *m, enum proto_attr a);
uint32_t proto_u32(const struct proto_msg *m, enum proto_attr a);  /* 0 if absent */
uint64_t proto_u64(const struct proto_msg *m, enum proto_attr a);  /* 0 if absent */
/* Copy a string attribute into buf (NUL-terminated); "" if absent. */
void proto_str(const struct proto_msg *m, enum proto_attr a, char *buf, size_t size);

const char *proto_type_name(unsigned type);

/* ---- I/O ---- */

/* Send one message with fds (nfds may be 0) with MSG_NOSIGNAL|MSG_DONTWAIT
 * unless blocking. Retries EINTR. Returns 0 or -errno (-EAGAIN). The fds stay
 * owned by the caller. */
int proto_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds, bool blocking);

/* One message of a batch: buf/len, and one fd to attach (or -1). */
struct proto_out {
	const void *buf;
	size_t len;
	int fd;
};

#define PROTO_BATCH_MAX 32

/* Send up to PROTO_BATCH_MAX messages in one sendmmsg(2), non-blocking,
 * MSG_NOSIGNAL, retrying EINTR. Returns how many were sent (> 0; fewer than
 * n when the socket filled up), or -errno (-EAGAIN when none fit). The fds
 * stay owned by the caller. */
int proto_send_batch(int sock, const struct proto_out *v, unsigned n);

/* Receive up to n (<= PROTO_BATCH_MAX) messages in one recvmmsg(2),
 * non-blocking, MSG_CMSG_CLOEXEC, on a channel that carries no fds. bufs are
 * n buffers of PROTO_MAX_MSG + 1 bytes; lens[i] gets each length, 0 meaning
 * end of stream (it is then the last one counted). Returns the count (> 0),
 * or -errno (-EAGAIN: none waiting). A message that carries fds or was
 * truncated is not counted: every fd from it on is closed, *ret_bad is set
 * and the messages before it are returned (so a peer's last good messages,
 * its acknowledgements, are still honoured); -EBADMSG if it was the first. */
int proto_recv_batch(int sock, uint8_t (*bufs)[PROTO_MAX_MSG + 1], size_t *lens, unsigned n, bool *ret_bad);

/* Receive one message into buf (size PROTO_MAX_MSG + 1 recommended) with
 * MSG_CMSG_CLOEXEC. Retries EINTR. Returns the message length (> 0), 0 at
 * end of stream, or -errno. fds from SCM_RIGHTS go to ret_fds (room for
 * PROTO_MAX_FDS) and their count to *ret_nfds; if the kernel truncated
 * control data (MSG_CTRUNC), the message was truncated (MSG_TRUNC), or more
 * than max_fds fds came, every fd is closed and -EBADMSG returned. max_fds 0
 * means the channel takes no fds at all. */
ssize_t proto_recv(int sock, void *buf, size_t size, int *ret_fds, unsigned max_fds,
                   unsigned *ret_nfds, bool blocking);

/* Close n fds in v and set each slot to -1. */
void proto_close_fds(int *v, unsigned n);

#endif
