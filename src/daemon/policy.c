/* policy: registration and admin permissions, as pure functions. */
#include "autoconf.h"

#include <errno.h>
#include <string.h>

#include "policy.h"

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n > k && memcmp(s + n - k, suffix, k) == 0;
}

int policy_unit_from_cgroup(const char *path, char *buf, size_t size)
{
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0)
			break;
		if (ends_with(p, n, ".slice")) {
			p += n;
			continue;
		}
		if ((ends_with(p, n, ".service") || ends_with(p, n, ".scope")) && n < size) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			return 0;
		}
		break; /* a plain directory before any unit: not a unit's cgroup */
	}
	return -ENOENT;
}

bool policy_cgroup_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	while (n > 1 && prefix[n - 1] == '/')
		n--; /* "/a/b/" is "/a/b" */
	if (n == 1 && prefix[0] == '/')
		return path[0] == '/';
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

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
	for (int i = 0; id->unit[0] && i < svc->nallow_units; i++)
		if (strcmp(id->unit, svc->allow_units[i]) == 0)
			return true;
	for (int i = 0; id->cgroup[0] && i < svc->nallow_cgroups; i++)
		if (policy_cgroup_under(id->cgroup, svc->allow_cgroups[i]))
			return true;
	for (int i = 0; id->label[0] && i < svc->nallow_labels; i++)
		if (strcmp(id->label, svc->allow_labels[i]) == 0)
			return true;
	return false;
}

bool policy_is_admin(const struct config *c, const struct peer_ident *id)
{
	if (id->uid == 0)
		return true;
	return c->admin_group != (gid_t)-1 && policy_in_group(id, c->admin_group);
}
