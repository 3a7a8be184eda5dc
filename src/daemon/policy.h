/* policy: who may do what. Pure functions over a peer identity that the
 * kernel reported (registry.c reads it at accept) and the configuration. */
#ifndef HANDOFF_POLICY_H
#define HANDOFF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "peerid.h"

#define POLICY_MAX_GROUPS 256

/* A control peer as the kernel describes it; never what the peer says.
 * Read once at accept (registry_read_identity, with peerid.c for the last
 * three) and kept on the control connection. */
struct peer_ident {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int ngroups;                      /* supplementary groups (SO_PEERGROUPS) */
	gid_t groups[POLICY_MAX_GROUPS];
	char cgroup[PEERID_CGROUP_MAX];   /* cgroup path (v2, or name=systemd on v1), "" when unknown */
	char unit[PEERID_UNIT_MAX];       /* systemd unit derived from it, "" when none or unknown */
	char label[PEERID_LABEL_MAX];     /* SO_PEERSEC, "" when none or unknown */
};

/* May this peer register as a backend of svc? Root always may. With no
 * allow_* key only root may. Otherwise any one key matching is enough: the
 * uid in allow_users, the primary or a supplementary group in
 * allow_groups, the unit in allow_units, the cgroup equal to or below an
 * allow_cgroups prefix (at a '/' boundary), the label in allow_labels. An
 * unknown unit, cgroup or label matches nothing. */
bool policy_may_serve(const struct cfg_service *svc, const struct peer_ident *id);

/* May this peer use admin commands (status, drain, reload)? Root, or a
 * member (primary or supplementary) of admin_group. */
bool policy_is_admin(const struct config *c, const struct peer_ident *id);

/* Why policy_may_serve() refuses this peer, for the log line and the ERROR
 * text: the peer's uid, what the service's allow_* keys look at (gid and
 * group count for allow_groups; unit and cgroup for allow_units and
 * allow_cgroups; label for allow_labels; "unknown" where it could not be
 * read) and the keys it matched none of, e.g.
 *   "uid 1000 (unit web.service, cgroup /system.slice/web.service)
 *    matches none of allow_users/allow_units/allow_cgroups"
 *   "uid 1000 is not root and no allow_* key is set (only root may serve)"
 * For a peer that may serve: "uid 0 is root", "uid 1000 is allowed by
 * allow_units" (the first key that matches, in the order above).
 * Numbers only, no NSS lookups (safe on the loop). Bytes of the cgroup,
 * unit and label outside printable ASCII are shown as '?'. Always
 * NUL-terminates when size > 0, truncating if needed. */
void policy_describe(const struct cfg_service *svc, const struct peer_ident *id, char *buf, size_t size);

/* Is cgroup path equal to prefix or below it (at a '/' boundary)?
 * "/a/b" and "/a/b/" both match /a/b and /a/b/c, not /a/bc; "/" matches
 * every absolute path; "" matches nothing. */
bool policy_cgroup_under(const char *path, const char *prefix);

/* Is gid the peer's primary group or one of its supplementary groups? */
bool policy_in_group(const struct peer_ident *id, gid_t gid);

#endif
