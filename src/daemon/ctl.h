/* ctl: the control socket server. One command table with permission flags;
 * every message is decoded by proto.c and anything malformed, unknown or
 * carrying fds closes that control connection with a logged reason. */
#ifndef HANDOFF_CTL_H
#define HANDOFF_CTL_H

#include "daemon.h"
#include "proto.h"

/* Set up the end-of-turn batch sender (once, at start-up). */
void ctl_init(struct hd *hd);

/* Bind the control socket (replacing a stale file), set its mode and group.
 * Returns 0 or -errno with the reason in err. */
int ctl_open(struct hd *hd, char *err, size_t errlen);

/* Start or stop accepting control connections (fd starvation, shutdown). */
void ctl_update(struct hd *hd);

/* Close the control socket (unlinking its file) and every connection. */
void ctl_close(struct hd *hd);

/* Queue or send a finished message without fds. Returns 0, or -errno after
 * which cc is being dropped. */
int ctl_send(struct ctlconn *cc, struct proto_buf *b);

/* Send a message carrying one fd that stays the caller's (a SOCKET: the
 * shared socket of a listener). If it must wait in the queue, the queue
 * keeps its own close-on-exec duplicate. Returns 0 or -errno (cc is then
 * being dropped). */
int ctl_send_fd(struct ctlconn *cc, struct proto_buf *b, int fd);

/* Send a DELIVER for conn (its fd attached). The first of a loop turn goes
 * at once: returns 1 and the caller appends conn to the backend's unacked
 * queue. Later ones in the same turn are queued (returns 0) and sent
 * together in one sendmmsg right after the turn's I/O callbacks, moving to
 * the unacked queue then. Returns -errno when cc cannot take it (conn stays
 * the caller's). */
int ctl_send_deliver(struct ctlconn *cc, struct conn *conn, const struct proto_buf *b);

/* Remove and return the connection of the first DELIVER still waiting in
 * cc's outgoing queue (NULL when none): for requeueing. */
struct conn *ctl_take_queued(struct ctlconn *cc);

/* Send an ERROR (best effort) and close once it is out. */
void ctl_refuse(struct ctlconn *cc, enum proto_err code, const char *text, uint32_t seq);

/* A send to cc failed: stop using it now, drop it from the loop's next
 * turn (never synchronously, callers may be iterating). */
void ctl_mark_broken(struct ctlconn *cc, int err);

/* Close cc now: its backend's unacknowledged connections are requeued. */
void ctl_drop(struct ctlconn *cc, const char *why);

/* Close unregistered connections past their handshake deadline. */
void ctl_sweep(struct hd *hd);

#endif
