/* policy: registration and admin permissions, as pure functions. */
#include "autoconf.h"

#include "policy.h"

bool policy_in_group(const struct peer_ident *id, gid_t gid)
{
	if (id->gid == gid)
		return true;
	for (int i = 0; i < id->ngroups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

bool policy_may_serve(const struct cfg_service *svc, const struct peer_ident *id)
{
	if (id->uid == 0)
		return true;
	if (!svc->has_allow)
		return false;
	for (int i = 0; i < svc->nallow_uids; i++)
		if (svc->allow_uids[i] == id->uid)
			return true;
	for (int i = 0; i < svc->nallow_gids; i++)
		if (policy_in_group(id, svc->allow_gids[i]))
			return true;
	return false;
}

bool policy_is_admin(const struct config *c, const struct peer_ident *id)
{
	if (id->uid == 0)
		return true;
	return c->admin_group != (gid_t)-1 && policy_in_group(id, c->admin_group);
}
