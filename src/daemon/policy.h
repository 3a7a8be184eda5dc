/* policy: who may do what. Pure functions over a peer identity that the
 * kernel reported (registry.c reads it at accept) and the configuration. */
#ifndef HANDOFF_POLICY_H
#define HANDOFF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define POLICY_MAX_GROUPS 256

/* A control peer as the kernel describes it; never what the peer says. */
struct peer_ident {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int ngroups;                      /* supplementary groups (SO_PEERGROUPS) */
	gid_t groups[POLICY_MAX_GROUPS];
	char cgroup[256];                 /* cgroup v2 path, "" when unknown */
	char unit[128];                   /* systemd unit derived from it, "" when none */
	char label[128];                  /* SO_PEERSEC, "" when none */
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

/* The systemd unit a cgroup path belongs to, as sd_pid_get_unit(3) finds
 * it: the first path component, after any *.slice ones, that names a
 * .service or .scope unit (/system.slice/web.service/x -> web.service;
 * /user.slice/user-1000.slice/session-3.scope -> session-3.scope;
 * .../user@1000.service/app.slice/a.service -> user@1000.service). Returns
 * 0 with buf set, or -ENOENT (none, e.g. "/" or a slice). Pure. */
int policy_unit_from_cgroup(const char *path, char *buf, size_t size);

/* Is cgroup path equal to prefix or below it (at a '/' boundary)? */
bool policy_cgroup_under(const char *path, const char *prefix);

/* Is gid the peer's primary group or one of its supplementary groups? */
bool policy_in_group(const struct peer_ident *id, gid_t gid);

#endif
