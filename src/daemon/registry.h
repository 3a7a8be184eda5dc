/* registry: backends. Identity (from the kernel, once, at accept),
 * registration against the policy, capacity accounting, drain. */
#ifndef HANDOFF_REGISTRY_H
#define HANDOFF_REGISTRY_H

#include "daemon.h"

/* Read SO_PEERCRED, SO_PEERGROUPS, the LSM label and (checked against a
 * pidfd from SO_PEERPIDFD, closed again before returning) the cgroup and
 * unit of a connected Unix socket's peer. Returns 0 or -errno (only
 * SO_PEERCRED failing is an error). */
int registry_read_identity(int fd, struct peer_ident *ret);

/* Handle a REGISTER from cc. Replies REGISTERED or ERROR itself. */
void registry_register(struct ctlconn *cc, const struct proto_msg *m);

/* Remove b (its control connection is closing): requeue what it had not
 * acknowledged, free it, and let its service deliver the rest. */
void registry_remove(struct backend *b);

/* Recompute b->ready and its service's count after a change. */
void registry_update_ready(struct backend *b);

/* Stop sending to b; tell it DRAINED (after everything already sent). */
void registry_drain(struct backend *b);

/* Find a live backend by id. */
struct backend *registry_find(struct hd *hd, uint64_t id);

/* Drain every backend registered by process pid (checked against a pidfd
 * for the process that connected, so a recycled pid never matches).
 * Returns how many. */
unsigned registry_drain_pid(struct hd *hd, pid_t pid);

/* Tell b's backend why it is dropped (an ERROR with code and text, its
 * uid for PE_NOT_ALLOWED, the service) and drop its control connection,
 * logging why; what it had not acknowledged goes back to its service. */
void registry_drop_backend(struct backend *b, enum proto_err code, const char *text, const char *why);

/* After a reload: drop backends whose service is gone or whose uid the new
 * policy no longer allows, each with an ERROR that says why. */
void registry_recheck(struct hd *hd);

#endif
