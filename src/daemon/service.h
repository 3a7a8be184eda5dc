/* service: runtime state of each [service NAME] and applying a configuration
 * (start-up and reload) to the running set of services and listeners. */
#ifndef HANDOFF_SERVICE_H
#define HANDOFF_SERVICE_H

#include "daemon.h"

/* Make hd run newcfg: open listeners for new addresses (all or nothing: on
 * any bind error, close what was opened, leave everything as it was and
 * return -errno with the reason in err), keep listeners whose address is
 * unchanged, close removed ones, create and retire services, re-check
 * registered backends against the new policy. On success hd owns newcfg and
 * the old config is freed. */
int service_apply(struct hd *hd, struct config *newcfg, char *err, size_t errlen);

struct service *service_find(struct hd *hd, const char *name);

/* Deliver pending connections while backends have room, then start or stop
 * the listeners to match. Call after anything that changes capacity. */
void service_kick(struct service *svc);

/* Live-connection accounting for max_connections and max_per_source: a
 * connection of svc served by handoffd itself (a builtin) or by a spawned
 * program has ended. Frees room and resumes the service if a limit had
 * paused it. */
void service_conn_closed(struct service *svc, struct conn *c);

/* A stream listener of svc accepted c (ownership passes): apply the access
 * rules and limits (refusing closes it at once, counted and logged), then
 * serve it: a builtin, a backend, a spawned program, or the pending queue. */
void service_take_conn(struct service *svc, struct conn *c);
/* Do svc's access rules (allow_from/deny_from, allow_client_users/groups)
 * refuse c? If so the refusal is counted and logged on svc; c stays the
 * caller's (tcpmux asks before it answers "+Go"). */
bool service_access_denied(struct service *svc, const struct conn *c);

/* A datagram for a builtin of svc from (sa, len): allow_from/deny_from,
 * rate and rate_per_source apply to each datagram (refusals counted and
 * logged like connections'). Returns true when it may be answered. */
bool service_admit_datagram(struct service *svc, const struct sockaddr *sa, socklen_t len);

/* Whether svc's accept-mode listeners should accept now (capacity, limits,
 * pauses). May arm the limit timer. */
bool service_accepting(struct service *svc);

/* Whether listener l of svc should be polled at all. */
bool service_wants_events(struct service *svc, struct listener *l);

/* A shared (datagram or listen-mode) socket is readable and handoffd is
 * watching it: a builtin reads it, or no backend has it and the service
 * spawns its program (inetd "wait") or rejects. */
void service_shared_ready(struct service *svc, struct listener *l);

/* Send b the shared sockets of its service (all, or only those opened by
 * the reload in progress). Returns 0 or -errno when b is being dropped. */
int service_send_sockets(struct backend *b, bool fresh_only);

/* "accept", "listen", "builtin echo", "accept, exec /usr/sbin/x"... */
void service_mode_text(const struct service *svc, char *buf, size_t size);

/* Exiting with connections no backend took: put them in systemd's fd
 * store (FDSTORE=1, FDNAME=conn.SERVICE.ID) so the next handoffd delivers
 * them. Returns how many are kept there (0 without systemd). */
unsigned service_store_pending(struct hd *hd);

/* At start-up: a passed fd named conn.SERVICE.ID is such a connection;
 * queue it for its service. Returns false when name is not one. Takes fd. */
bool service_import_stored(struct hd *hd, int fd, const char *name);

/* c reached a backend for good: a stored connection leaves the fd store
 * (FDSTOREREMOVE), so a client never hangs on a socket nobody serves. */
void service_conn_delivered(struct conn *c);

/* Start the timer that ends rate and spawn_rate pauses (once, at start-up). */
void service_init(struct hd *hd);

/* Close everything (shutdown). */
void service_free_all(struct hd *hd);

#endif
