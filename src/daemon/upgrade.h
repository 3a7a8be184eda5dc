/* upgrade: replace the running handoffd with a new process (a new binary,
 * or the same one) without refusing a connection.
 *
 * The old process (SIGUSR2 or `handoffctl upgrade`):
 *   1. checks that the configuration loads, else refuses and keeps serving;
 *   2. starts its own executable (the path /proc/self/exe had at start-up)
 *      with the same arguments, passing every listening socket, the control
 *      socket and one end of a socketpair as LISTEN_FDS (names: the
 *      service, "handoffd-control", "handoffd-upgrade"; LISTEN_PID is the
 *      new process's own pid);
 *   3. waits for "READY" on the socketpair (the new process sends it once
 *      it serves: listeners and control socket up, privileges dropped). If
 *      the new process exits or stays silent for UPGRADE_TIMEOUT_MS, the
 *      upgrade failed and the old one simply keeps serving;
 *   4. hands over: tells systemd the new MAINPID, stops accepting (the
 *      kernel queues new clients on the shared sockets, which the new
 *      process accepts), sends every connection still waiting for a backend
 *      to the new process over the socketpair (DELIVER messages with the
 *      fd), lets its backends acknowledge what is on its way to them, and
 *      exits. Socket files are not unlinked: the new process uses them.
 * Backends then reconnect to the new process (libhandoff does it by itself
 * with handoff_set_reconnect()).
 *
 * The new process finds the socketpair among its passed sockets
 * (activation), says READY when it is up and imports the connections that
 * come until the old process closes its end.
 *
 * Ownership: struct upgrade (old side) and struct upgrade_in (new side) own
 * their socket, poll and timer handles and free themselves in the handles'
 * close callbacks.
 */
#ifndef HANDOFF_UPGRADE_H
#define HANDOFF_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

#define UPGRADE_TIMEOUT_MS 30000
#define UPGRADE_FD_NAME "handoffd-upgrade"

/* Old side: start an upgrade. requester (may be NULL) gets OK once the new
 * process took over, or an ERROR; seq is its request's. Returns 0 (started)
 * or -errno with the reason in err (-EBUSY: one is in progress; -EINVAL:
 * the configuration does not load; -ESHUTDOWN). */
int upgrade_start(struct hd *hd, struct ctlconn *requester, uint32_t seq, char *err, size_t errlen);

/* Old side, while handing over: send waiting connections to the new
 * process (as many as its socket takes now; the rest when it has room). */
void upgrade_forward_pending(struct hd *hd);

/* The old handoffd exits now: send every waiting connection, waiting for
 * room in the socket if need be (a blocking send, at exit only). */
void upgrade_forward_pending_now(struct hd *hd);

/* cc is going away: do not answer it. */
void upgrade_forget_requester(struct hd *hd, struct ctlconn *cc);

/* New side: fd is the passed "handoffd-upgrade" socket (ownership moves).
 * Call once this process serves: says READY and imports connections. */
void upgrade_adopt(struct hd *hd, int fd);

/* Teardown: close every upgrade handle (both sides). */
void upgrade_close(struct hd *hd);

#endif
