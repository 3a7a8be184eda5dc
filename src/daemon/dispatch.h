/* dispatch: pick a backend, hand the fd off, track what is unacknowledged,
 * and give back what a dead backend never received. */
#ifndef HANDOFF_DISPATCH_H
#define HANDOFF_DISPATCH_H

#include "daemon.h"

/* Take ownership of conn: send it to a backend of its service that has room
 * or, if none has, put it on the service's pending queue (front if
 * redelivering). Returns true if it went to a backend. */
bool dispatch_conn(struct conn *conn, bool front);

/* The backend for conn under the service's balance mode, or NULL. */
struct backend *dispatch_pick(struct service *svc, const struct conn *conn);

/* An ACK from b: received more DELIVERs, done finished connections;
 * done_ids (little-endian u64s, may be NULL) name finished connections, for
 * max_per_source.
 * Returns 0, or -EPROTO when the counts are impossible (the caller drops the
 * peer). */
int dispatch_ack(struct backend *b, uint32_t received, uint32_t done, const uint8_t *done_ids, size_t ndone_ids);

/* b is being removed: release what it had acknowledged and not finished
 * (its process holds or held those connections) from the limits. */
void dispatch_release(struct backend *b);

/* b is going away: put every connection it had not acknowledged back at
 * the front of the service's pending queue, in the original order. */
void dispatch_requeue(struct backend *b);

/* tcpmux: conn (accepted by the tcpmux builtin of another service) asked
 * for target. Takes ownership: the connection is re-homed to target and
 * served as if target had accepted it (its access rules, limits,
 * backends, on_no_backend, exec). */
void dispatch_tcpmux(struct service *target, struct conn *conn);

/* The DELIVER message for c (its metadata; the fd travels beside it).
 * Returns the length or -EMSGSIZE. */
int dispatch_encode(const struct conn *c, struct proto_buf *b);

/* Close conn's fd and free it (NULL is fine). */
void conn_free(struct conn *c);

#endif
