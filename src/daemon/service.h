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
void service_conn_closed(struct service *svc, const struct conn *c);

/* Close everything (shutdown). */
void service_free_all(struct hd *hd);

#endif
