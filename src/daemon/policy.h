/* policy: who may do what. Pure functions over a peer identity that the
 * kernel reported (registry.c reads it at accept) and the configuration. */
#ifndef HANDOFF_POLICY_H
#define HANDOFF_POLICY_H

#include <stdbool.h>
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
};

/* May this peer register as a backend of svc? Root always may. With no
 * allow_users/allow_groups key only root may. Otherwise the peer's uid must
 * be in allow_users, or its primary or any supplementary group in
 * allow_groups. */
bool policy_may_serve(const struct cfg_service *svc, const struct peer_ident *id);

/* May this peer use admin commands (status, drain, reload)? Root, or a
 * member (primary or supplementary) of admin_group. */
bool policy_is_admin(const struct config *c, const struct peer_ident *id);

/* Is gid the peer's primary group or one of its supplementary groups? */
bool policy_in_group(const struct peer_ident *id, gid_t gid);

#endif
