/* policy: registration and admin permissions, as pure functions. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

bool policy_cgroup_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 0 || path[0] != '/')
		return false; /* unknown cgroup, or no prefix: no match */
	while (n > 1 && prefix[n - 1] == '/')
		n--; /* "/a/b/" is "/a/b" */
	if (n == 1 && prefix[0] == '/')
		return true;
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

/* Which allow_* key lets this (non-root) peer serve svc, or NULL. The
 * keys are ORed: any one match is enough. Unknown (empty) unit, cgroup or
 * label never match, even an empty entry. */
static const char *matching_key(const struct cfg_service *svc, const struct peer_ident *id)
{
	if (!svc->has_allow)
		return NULL;
	for (int i = 0; i < svc->nallow_uids; i++)
		if (svc->allow_uids[i] == id->uid)
			return "allow_users";
	for (int i = 0; i < svc->nallow_gids; i++)
		if (policy_in_group(id, svc->allow_gids[i]))
			return "allow_groups";
	for (int i = 0; id->unit[0] && i < svc->nallow_units; i++)
		if (strcmp(id->unit, svc->allow_units[i]) == 0)
			return "allow_units";
	for (int i = 0; id->cgroup[0] && i < svc->nallow_cgroups; i++)
		if (policy_cgroup_under(id->cgroup, svc->allow_cgroups[i]))
			return "allow_cgroups";
	for (int i = 0; id->label[0] && i < svc->nallow_labels; i++)
		if (strcmp(id->label, svc->allow_labels[i]) == 0)
			return "allow_labels";
	return NULL;
}

bool policy_may_serve(const struct cfg_service *svc, const struct peer_ident *id)
{
	return id->uid == 0 || matching_key(svc, id) != NULL;
}

/* Bounded appending for policy_describe(): truncates, always terminates. */
struct sbuf {
	char *p;
	size_t size, len;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->len + 1 >= b->size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len = b->len + (size_t)n < b->size ? b->len + (size_t)n : b->size - 1;
}

/* A string the peer's environment chose (a cgroup name can be picked by
 * whoever owns a delegated subtree): printable ASCII only. */
static void sb_safe(struct sbuf *b, const char *s)
{
	for (; *s && b->len + 1 < b->size; s++) {
		unsigned char c = (unsigned char)*s;
		b->p[b->len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	b->p[b->len] = '\0';
}

static void sb_sep(struct sbuf *b, bool *first, const char *sep)
{
	if (!*first)
		sb_printf(b, "%s", sep);
	*first = false;
}

void policy_describe(const struct cfg_service *svc, const struct peer_ident *id, char *buf, size_t size)
{
	struct sbuf b = {buf, size, 0};
	if (size == 0)
		return;
	buf[0] = '\0';
	if (id->uid == 0) {
		sb_printf(&b, "uid 0 is root");
		return;
	}
	const char *key = matching_key(svc, id);
	if (key) {
		sb_printf(&b, "uid %u is allowed by %s", (unsigned)id->uid, key);
		return;
	}
	if (!svc->has_allow) {
		sb_printf(&b, "uid %u is not root and no allow_* key is set (only root may serve)", (unsigned)id->uid);
		return;
	}

	bool groups = svc->nallow_gids > 0, where = svc->nallow_units > 0 || svc->nallow_cgroups > 0,
	     label = svc->nallow_labels > 0, first = true;
	sb_printf(&b, "uid %u", (unsigned)id->uid);
	if (groups || where || label)
		sb_printf(&b, " (");
	if (groups) {
		sb_sep(&b, &first, ", ");
		sb_printf(&b, "gid %u", (unsigned)id->gid);
		if (id->ngroups > 0)
			sb_printf(&b, " and %d supplementary group%s", id->ngroups, id->ngroups == 1 ? "" : "s");
	}
	if (where) {
		sb_sep(&b, &first, ", ");
		if (id->unit[0]) {
			sb_printf(&b, "unit ");
			sb_safe(&b, id->unit);
		} else {
			sb_printf(&b, id->cgroup[0] ? "no unit" : "unit unknown");
		}
		sb_printf(&b, ", cgroup ");
		if (id->cgroup[0])
			sb_safe(&b, id->cgroup);
		else
			sb_printf(&b, "unknown");
	}
	if (label) {
		sb_sep(&b, &first, ", ");
		if (id->label[0]) {
			sb_printf(&b, "label ");
			sb_safe(&b, id->label);
		} else {
			sb_printf(&b, "no label");
		}
	}
	if (groups || where || label)
		sb_printf(&b, ")");

	const struct {
		const char *name;
		int n;
	} keys[] = {
		{"allow_users", svc->nallow_uids},     {"allow_groups", svc->nallow_gids},
		{"allow_units", svc->nallow_units},    {"allow_cgroups", svc->nallow_cgroups},
		{"allow_labels", svc->nallow_labels},
	};
	first = true;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].n <= 0)
			continue;
		sb_printf(&b, "%s%s", first ? " matches none of " : "/", keys[i].name);
		first = false;
	}
	if (first)
		sb_printf(&b, " matches nothing: the allow_* keys are empty");
}

bool policy_is_admin(const struct config *c, const struct peer_ident *id)
{
	if (id->uid == 0)
		return true;
	return c->admin_group != (gid_t)-1 && policy_in_group(id, c->admin_group);
}
