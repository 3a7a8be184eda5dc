/* libhandoff: receive connections handed over by handoffd.
 *
 * A backend connects to handoffd's control socket, registers for one service
 * with a capacity (the most connections it wants in flight at once), and then
 * receives each client connection as a ready, connected file descriptor with
 * its metadata. The library depends on libc alone and works from any event
 * loop: handoff_fd() is the descriptor to watch for POLLIN.
 *
 * Contract, for every function below:
 *   - returns >= 0 on success, or a negative value on failure: either -errno
 *     (a system error) or one of the HANDOFF_E_* codes (a refusal or protocol
 *     condition reported by handoffd). handoff_strerror() names both.
 *   - every descriptor the library creates or receives is close-on-exec.
 *   - blocking calls retry EINTR; non-blocking calls return -EAGAIN.
 *   - a handle is not thread-safe: use it from one thread at a time.
 *
 * Delivery guarantee: handoff_accept() acknowledges each connection to
 * handoffd before it returns it. Until that acknowledgement reaches handoffd,
 * handoffd keeps its own reference and will give the connection to another
 * backend if this one dies; after it, the connection belongs to the caller.
 * So a backend that crashes never loses a connection it had not received,
 * and never receives a connection twice.
 *
 * Ownership: the fd in struct handoff_conn belongs to the caller, who closes
 * it. Call handoff_done() once per connection when finished with it; that is
 * what frees capacity for the next one.
 */
#ifndef HANDOFF_H
#define HANDOFF_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HANDOFF_VERSION_MAJOR 0
#define HANDOFF_VERSION_MINOR 1

/* Default control socket path; $HANDOFF_SOCKET overrides it when the path
 * argument of handoff_connect() is NULL. */
#define HANDOFF_DEFAULT_SOCKET "/run/handoffd/control.sock"

/* Error codes beyond errno. They are negative and below -4096, so they never
 * collide with -errno values. */
enum handoff_error {
	HANDOFF_E_PROTOCOL = -5001,    /* handoffd sent something malformed, or said we did */
	HANDOFF_E_VERSION = -5002,     /* protocol version not supported */
	HANDOFF_E_NO_SERVICE = -5003,  /* no such service in handoffd's configuration */
	HANDOFF_E_NOT_ALLOWED = -5004, /* the policy does not allow this uid to serve it */
	HANDOFF_E_LIMIT = -5005,       /* a limit was hit (backends per service, connections per uid) */
	HANDOFF_E_NOT_ADMIN = -5006,   /* an admin command from a peer that is not an admin */
	HANDOFF_E_NOT_FOUND = -5007,   /* the target of an admin command does not exist */
	HANDOFF_E_CONFIG = -5008,      /* a reload was refused: the new configuration is broken */
	HANDOFF_E_STATE = -5009,       /* the call does not fit the handle's state */
	HANDOFF_E_SHUTDOWN = -5010,    /* handoffd is shutting down */
	HANDOFF_E_DRAINED = -5011,     /* drained: no more connections will come */
	HANDOFF_E_CLOSED = -5012,      /* handoffd closed the control connection */
	HANDOFF_E_DAEMON_UID = -5013,  /* the control socket's peer is not the expected uid */
};

/* Flags for handoff_connect(), handoff_accept() and handoff_done(). */
#define HANDOFF_NONBLOCK 0x1 /* do not wait: return -EAGAIN instead */
#define HANDOFF_DEFER 0x2    /* handoff_done(): send with the next message (see there) */

typedef struct handoff handoff_t;

/* What handoff_accept() returned (struct handoff_conn.kind). */
#define HANDOFF_CONNECTION 0 /* one accepted client connection: serve it, close it, handoff_done() */
#define HANDOFF_LISTENER 1   /* a listening socket (mode = listen): accept() on it yourself */
#define HANDOFF_DATAGRAM 2   /* a datagram socket shared by the service's backends: recvfrom/sendto */

/* One handed-over connection or socket. Addresses are in the kernel's
 * sockaddr form. */
struct handoff_conn {
	int fd;                          /* the descriptor, close-on-exec, owned by the caller */
	uint64_t id;                     /* connection id, unique for handoffd's lifetime */
	char service[64];                /* service name, NUL-terminated */
	struct sockaddr_storage local;   /* the listener's address */
	socklen_t local_len;             /* 0 when unknown */
	struct sockaddr_storage peer;    /* the client's address */
	socklen_t peer_len;              /* 0 when unknown (e.g. unnamed Unix client) */
	int has_cred;                    /* 1 when the next three are set (Unix listeners) */
	pid_t pid;                       /* client's pid (SO_PEERCRED at accept) */
	uid_t uid;                       /* client's uid */
	gid_t gid;                       /* client's gid */
	int kind;                        /* HANDOFF_CONNECTION, HANDOFF_LISTENER or HANDOFF_DATAGRAM */
	int socktype;                    /* SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET */
	uint32_t generation;             /* which connection to handoffd it came over (reconnects) */
	uint8_t reserved[52];            /* room for later fields; zeroed */
};

/* Connect to handoffd's control socket. path NULL means $HANDOFF_SOCKET, or
 * HANDOFF_DEFAULT_SOCKET when that is unset; a path beginning with '@' names
 * an abstract socket. flags: HANDOFF_NONBLOCK makes the descriptor
 * non-blocking (calls then default to non-blocking behaviour where noted).
 * On success stores a new handle in *ret and returns 0. */
int handoff_connect(const char *path, int flags, handoff_t **ret);

/* Check that handoffd's end of the control socket runs as uid (from the
 * kernel's SO_PEERCRED, not from anything handoffd says). Returns 0, or
 * HANDOFF_E_DAEMON_UID. Call it before handoff_register() to trust nothing
 * but the expected daemon. */
int handoff_verify_daemon(handoff_t *h, uid_t uid);

/* Register for a service, wanting at most capacity connections in flight
 * (received and not yet handoff_done()). capacity is 1..65535; handoffd may
 * grant less (handoff_capacity() tells). Waits for handoffd's answer, even on
 * a non-blocking handle. Returns 0, or HANDOFF_E_NO_SERVICE,
 * HANDOFF_E_NOT_ALLOWED, HANDOFF_E_LIMIT, HANDOFF_E_STATE (already
 * registered), HANDOFF_E_CLOSED, or -errno. On a refusal
 * handoff_last_error() has a full sentence such as
 * "uid 1000 (alice) is not allowed to serve 'http'". */
int handoff_register(handoff_t *h, const char *service, unsigned capacity);

/* Ride through handoffd restarts and upgrades: when handoffd closes the
 * control connection or shuts down, handoff_accept() connects again to the
 * same socket and registers again for the same service and capacity,
 * retrying with a backoff from 10 ms up to 1 s between attempts, for at
 * most max_wait_ms in all (0: until it works). Meanwhile a blocking
 * handoff_accept() waits; a non-blocking one returns -EAGAIN, and
 * handoff_fd() (the same descriptor number throughout) turns readable when
 * the next attempt is due, so an event loop needs no change. Connections
 * received before stay the caller's; handoff_done() for them returns 0 and
 * does nothing. Shared sockets that the new handoffd sends again are
 * recognized and not returned twice. A refusal (the service is gone, the
 * policy no longer allows us) or a drain ends it. Returns 0 or -EINVAL. */
int handoff_set_reconnect(handoff_t *h, unsigned max_wait_ms);

/* Capacity handoffd granted at registration; 0 before. */
unsigned handoff_capacity(const handoff_t *h);

/* Backend id handoffd assigned at registration (what `handoffctl status`
 * shows and `handoffctl drain` takes); 0 before. */
uint64_t handoff_backend_id(const handoff_t *h);

/* How many shared sockets (mode = listen or datagram listeners) handoffd
 * announced at registration: the first that many handoff_accept() results
 * are those sockets, already on their way when handoff_register() returns.
 * 0 before registering. */
unsigned handoff_shared_count(const handoff_t *h);

/* The descriptor to watch for POLLIN when using an external event loop. It
 * stays owned by the handle. */
int handoff_fd(const handoff_t *h);

/* Receive the next connection into *ret_conn. For a service whose sockets
 * are shared (mode = listen, or datagram listeners), it also returns, once
 * per socket (right after registering, and when a reload adds one), the
 * socket itself with kind HANDOFF_LISTENER or HANDOFF_DATAGRAM: the caller
 * owns that descriptor, serves it (accept(2) or recvfrom(2)), and does not
 * call handoff_done() for it; handoffd keeps its own copy, so the socket and
 * its backlog outlive the backend. Blocks unless flags has
 * HANDOFF_NONBLOCK (or the handle was opened with it), in which case it
 * returns -EAGAIN when none is ready. Before blocking or returning -EAGAIN,
 * it sends any deferred handoff_done() records. Returns 0 with *ret_conn
 * filled (ret_conn->fd is the caller's), HANDOFF_E_DRAINED once a drain is
 * complete, HANDOFF_E_CLOSED or HANDOFF_E_SHUTDOWN when handoffd went away,
 * HANDOFF_E_NOT_ALLOWED or HANDOFF_E_NO_SERVICE when a reload revoked the
 * registration, or -errno. */
int handoff_accept(handoff_t *h, struct handoff_conn *ret_conn, int flags);

/* How many connections handoff_accept() may take from the socket at once,
 * 1..256 (default 1). With more than 1, when several are waiting it takes
 * them all (up to max), acknowledges them in one message and returns them
 * one per call. That saves two system calls per connection under load, at a
 * price: connections taken this way are the backend's, so if it dies before
 * handoff_accept() returned them they are closed, not given to another
 * backend. handoff_close() closes any still held. Returns 0, -EINVAL,
 * -ENOMEM, or HANDOFF_E_STATE while connections are held. */
int handoff_set_batch(handoff_t *h, unsigned max);

/* Tell handoffd that one connection is finished; frees one unit of capacity
 * (and its place under max_per_source). It does not close conn->fd. Without HANDOFF_DEFER the record is sent at
 * once (a non-blocking send; if the socket is full it is kept and sent with
 * the next message). With HANDOFF_DEFER it is only counted and travels with
 * the next acknowledgement, which saves a message per connection in a loop
 * that calls handoff_accept() again right away; handoff_accept() always
 * sends deferred records before it waits, so capacity is never stuck.
 * Returns 0, HANDOFF_E_STATE if more connections are done than were
 * received, -EINVAL for a shared socket (kind other than
 * HANDOFF_CONNECTION), or -errno. */
int handoff_done(handoff_t *h, const struct handoff_conn *conn, int flags);

/* Send any deferred handoff_done() records now. Returns 0 or -errno
 * (-EAGAIN if the socket is full; the records are kept). */
int handoff_flush(handoff_t *h);

/* Ask for no more connections (graceful shutdown). Connections already on
 * their way are still returned by handoff_accept(), which then returns
 * HANDOFF_E_DRAINED. Returns 0 or -errno. */
int handoff_drain(handoff_t *h);

/* Close the control connection and free the handle (NULL is fine).
 * Connections received and not yet done stay the caller's; handoffd stops
 * counting them. */
void handoff_close(handoff_t *h);

/* A static string for any value returned by this library. */
const char *handoff_strerror(int err);

/* A sentence about the last refusal or protocol error on h ("" if none).
 * Valid until the next call on h. */
const char *handoff_last_error(const handoff_t *h);

/* Format an address from struct handoff_conn ("192.0.2.1:80", "[::1]:80",
 * "unix:/path", "unix:@name"; "(unknown)" when len is 0, as for an unnamed
 * Unix client) into buf. An IPv4 client of a dual-stack listener prints as
 * IPv4. Returns the length
 * written (excluding NUL) or -ENOSPC. */
int handoff_addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
