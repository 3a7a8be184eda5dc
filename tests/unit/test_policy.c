/* Unit tests for src/daemon/policy.c: who may register for a service and
 * who may use admin commands. Peer identities are built by hand (as the
 * kernel would report them); services and configs come from
 * config_load_string() or are built by hand. Every test checks that it
 * leaves no fd open (TEST() below). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "peerid.h"
#include "policy.h"
#include "registry.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* registry.c comes with the rest of the daemon; main.c's part of the
 * context is not needed here. */
uint64_t hd_now_ms(struct hd *hd)
{
	(void)hd;
	return 0;
}

int hd_reload(struct hd *hd, char *err, size_t errlen)
{
	(void)hd;
	snprintf(err, errlen, "no reload in unit tests");
	return -ENOTSUP;
}

void hd_shutdown_check(struct hd *hd)
{
	(void)hd;
}

void hd_stop(struct hd *hd)
{
	(void)hd;
}

/* ---- helpers ---- */

/* A peer: uid, primary gid, then ngroups supplementary gids. */
static struct peer_ident peer(uid_t uid, gid_t gid, int ngroups, ...)
{
	struct peer_ident id;
	memset(&id, 0, sizeof(id));
	id.pid = 4242;
	id.uid = uid;
	id.gid = gid;
	id.ngroups = ngroups;
	va_list ap;
	va_start(ap, ngroups);
	for (int i = 0; i < ngroups; i++)
		id.groups[i] = (gid_t)va_arg(ap, unsigned);
	va_end(ap);
	return id;
}

static struct config *load(const char *text)
{
	struct config *c = NULL;
	char err[2048];
	int rc = config_load_string(text, "t.conf", &c, err, sizeof(err));
	cr_assert_eq(rc, 0, "config refused: %s", err);
	return c;
}

/* ===================== policy_may_serve ===================== */

TEST(serve, no_allow_keys_means_only_root)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n");
	const struct cfg_service *s = config_find_service(c, "web");
	cr_assert(!s->has_allow);

	struct peer_ident root = peer(0, 0, 0);
	struct peer_ident user = peer(1000, 1000, 2, 100u, 27u);
	struct peer_ident in_root_group = peer(1000, 0, 1, 0u);
	cr_assert(policy_may_serve(s, &root));
	cr_assert(!policy_may_serve(s, &user));
	cr_assert(!policy_may_serve(s, &in_root_group), "group 0 is not root");
	config_free(c);
}

TEST(serve, allow_users_by_uid)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\nallow_users = 1000, daemon\n"
	                        "allow_users = 33\n");
	const struct cfg_service *s = config_find_service(c, "web");
	cr_assert(s->has_allow);

	struct peer_ident a = peer(1000, 1000, 0);
	struct peer_ident b = peer(1, 1, 0);      /* daemon */
	struct peer_ident w = peer(33, 33, 0);
	struct peer_ident other = peer(1001, 1000, 1, 1000u);
	cr_assert(policy_may_serve(s, &a));
	cr_assert(policy_may_serve(s, &b));
	cr_assert(policy_may_serve(s, &w));
	cr_assert(!policy_may_serve(s, &other), "a uid not listed, sharing a listed uid's group number");
	config_free(c);
}

TEST(serve, allow_groups_primary_and_supplementary)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\nallow_groups = 100, 2000\n");
	const struct cfg_service *s = config_find_service(c, "web");

	struct peer_ident primary = peer(1000, 100, 0);
	struct peer_ident supplementary = peer(1000, 1000, 3, 5u, 6u, 2000u);
	struct peer_ident neither = peer(1000, 1000, 3, 5u, 6u, 7u);
	struct peer_ident uid_equals_gid = peer(100, 1000, 0);
	cr_assert(policy_may_serve(s, &primary));
	cr_assert(policy_may_serve(s, &supplementary));
	cr_assert(!policy_may_serve(s, &neither));
	cr_assert(!policy_may_serve(s, &uid_equals_gid), "a uid is not a group");
	config_free(c);
}

TEST(serve, supplementary_groups_to_the_last_slot)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\nallow_groups = 4242\n");
	const struct cfg_service *s = config_find_service(c, "web");
	struct peer_ident id = peer(1000, 1000, 0);
	id.ngroups = POLICY_MAX_GROUPS;
	for (int i = 0; i < POLICY_MAX_GROUPS; i++)
		id.groups[i] = (gid_t)(10000 + i);
	cr_assert(!policy_may_serve(s, &id));
	id.groups[POLICY_MAX_GROUPS - 1] = 4242;
	cr_assert(policy_may_serve(s, &id));
	/* Slots past ngroups are not groups of the peer. */
	id.ngroups = POLICY_MAX_GROUPS - 1;
	cr_assert(!policy_may_serve(s, &id));
	config_free(c);
}

TEST(serve, users_and_groups_together)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\nallow_users = 1000\nallow_groups = 50\n");
	const struct cfg_service *s = config_find_service(c, "web");
	struct peer_ident by_uid = peer(1000, 1000, 0);
	struct peer_ident by_group = peer(2000, 2000, 1, 50u);
	struct peer_ident nobody = peer(65534, 65534, 0);
	cr_assert(policy_may_serve(s, &by_uid));
	cr_assert(policy_may_serve(s, &by_group));
	cr_assert(!policy_may_serve(s, &nobody));
	config_free(c);
}

TEST(serve, root_always_allowed)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\nallow_users = 1000\nallow_groups = 50\n");
	const struct cfg_service *s = config_find_service(c, "web");
	struct peer_ident root = peer(0, 0, 0);
	struct peer_ident root_other_group = peer(0, 12345, 1, 777u);
	cr_assert(policy_may_serve(s, &root));
	cr_assert(policy_may_serve(s, &root_other_group));
	config_free(c);
}

TEST(serve, services_are_separate)
{
	struct config *c = load("[service a]\nlisten = tcp://127.0.0.1:1\nallow_users = 1000\n"
	                        "[service b]\nlisten = tcp://127.0.0.1:2\nallow_users = 2000\n"
	                        "[service c]\nlisten = tcp://127.0.0.1:3\n");
	struct peer_ident u1000 = peer(1000, 1000, 0);
	struct peer_ident u2000 = peer(2000, 2000, 0);
	cr_assert(policy_may_serve(config_find_service(c, "a"), &u1000));
	cr_assert(!policy_may_serve(config_find_service(c, "a"), &u2000));
	cr_assert(!policy_may_serve(config_find_service(c, "b"), &u1000));
	cr_assert(policy_may_serve(config_find_service(c, "b"), &u2000));
	cr_assert(!policy_may_serve(config_find_service(c, "c"), &u1000));
	cr_assert(!policy_may_serve(config_find_service(c, "c"), &u2000));
	config_free(c);
}

TEST(serve, hand_built_service)
{
	uid_t uids[] = {7, 8};
	gid_t gids[] = {70};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "hand");

	struct peer_ident u7 = peer(7, 7, 0);
	struct peer_ident g70 = peer(9, 9, 1, 70u);
	struct peer_ident root = peer(0, 0, 0);

	/* No allow key. */
	cr_assert(!policy_may_serve(&s, &u7));
	cr_assert(policy_may_serve(&s, &root));

	/* An allow key present but its lists empty: still only root. */
	s.has_allow = true;
	cr_assert(!policy_may_serve(&s, &u7));
	cr_assert(!policy_may_serve(&s, &g70));
	cr_assert(policy_may_serve(&s, &root));

	s.allow_uids = uids;
	s.nallow_uids = 2;
	s.allow_gids = gids;
	s.nallow_gids = 1;
	cr_assert(policy_may_serve(&s, &u7));
	cr_assert(policy_may_serve(&s, &g70));
	struct peer_ident u8 = peer(8, 8, 0);
	struct peer_ident u9 = peer(9, 9, 1, 71u);
	cr_assert(policy_may_serve(&s, &u8));
	cr_assert(!policy_may_serve(&s, &u9));

	/* The lists are read only up to their counts. */
	s.nallow_uids = 1;
	s.nallow_gids = 0;
	cr_assert(!policy_may_serve(&s, &u8));
	cr_assert(!policy_may_serve(&s, &g70));
}

/* ===================== policy_is_admin ===================== */

TEST(admin, root_and_admin_group)
{
	struct config *c = load("[handoffd]\nadmin_group = 4\n[service web]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->admin_group, 4);
	struct peer_ident root = peer(0, 0, 0);
	struct peer_ident primary = peer(1000, 4, 0);
	struct peer_ident supplementary = peer(1000, 1000, 2, 27u, 4u);
	struct peer_ident other = peer(1000, 1000, 2, 27u, 5u);
	struct peer_ident uid4 = peer(4, 1000, 0);
	cr_assert(policy_is_admin(c, &root));
	cr_assert(policy_is_admin(c, &primary));
	cr_assert(policy_is_admin(c, &supplementary));
	cr_assert(!policy_is_admin(c, &other));
	cr_assert(!policy_is_admin(c, &uid4), "a uid is not a group");
	config_free(c);
}

TEST(admin, without_admin_group_only_root)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->admin_group, (gid_t)-1);
	struct peer_ident root = peer(0, 0, 0);
	struct peer_ident group0 = peer(1000, 0, 1, 0u);
	struct peer_ident user = peer(1000, 1000, 0);
	/* A peer whose group is the "unset" value must not match it. */
	struct peer_ident minus1 = peer(1000, (gid_t)-1, 1, (unsigned)(gid_t)-1);
	cr_assert(policy_is_admin(c, &root));
	cr_assert(!policy_is_admin(c, &group0));
	cr_assert(!policy_is_admin(c, &user));
	cr_assert(!policy_is_admin(c, &minus1));
	config_free(c);
}

TEST(admin, admin_group_does_not_grant_serving)
{
	struct config *c = load("[handoffd]\nadmin_group = 4\n[service web]\nlisten = tcp://127.0.0.1:1\n");
	struct peer_ident adm = peer(1000, 4, 0);
	cr_assert(policy_is_admin(c, &adm));
	cr_assert(!policy_may_serve(config_find_service(c, "web"), &adm));
	config_free(c);
}

/* ===================== policy_in_group ===================== */

TEST(group, membership)
{
	struct peer_ident id = peer(1000, 100, 3, 4u, 24u, 27u);
	cr_assert(policy_in_group(&id, 100));
	cr_assert(policy_in_group(&id, 4));
	cr_assert(policy_in_group(&id, 24));
	cr_assert(policy_in_group(&id, 27));
	cr_assert(!policy_in_group(&id, 1000));
	cr_assert(!policy_in_group(&id, 0));
	id.groups[3] = 50; /* past ngroups */
	cr_assert(!policy_in_group(&id, 50));
	struct peer_ident none = peer(1000, 100, 0);
	cr_assert(policy_in_group(&none, 100));
	cr_assert(!policy_in_group(&none, 0));
}

/* ===================== units, cgroups, labels (issue 4) ===================== */

/* A peer with a cgroup, unit and label ("" = unknown). */
static struct peer_ident peer_at(uid_t uid, const char *cgroup, const char *unit, const char *label)
{
	struct peer_ident id = peer(uid, uid, 0);
	snprintf(id.cgroup, sizeof(id.cgroup), "%s", cgroup);
	snprintf(id.unit, sizeof(id.unit), "%s", unit);
	snprintf(id.label, sizeof(id.label), "%s", label);
	return id;
}

TEST(cgroup, prefix_at_a_slash)
{
	cr_assert(policy_cgroup_under("/system.slice/web", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/system.slice/web/x", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/system.slice/web/x/y", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/system.slice/web/x", "/system.slice/web/"));
	cr_assert(policy_cgroup_under("/system.slice/web", "/system.slice/web//"));
	cr_assert(!policy_cgroup_under("/system.slice/webby", "/system.slice/web"));
	cr_assert(!policy_cgroup_under("/system.slice/web.service", "/system.slice/web"));
	cr_assert(!policy_cgroup_under("/system.slice", "/system.slice/web"));
	cr_assert(!policy_cgroup_under("/system.slic", "/system.slice"));
	cr_assert(!policy_cgroup_under("/other/system.slice/web", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/anything", "/"));
	cr_assert(policy_cgroup_under("/", "/"));
	/* Unknown (""), relative, or an empty prefix: no match, even for "/". */
	cr_assert(!policy_cgroup_under("", "/"));
	cr_assert(!policy_cgroup_under("", ""));
	cr_assert(!policy_cgroup_under("/x", ""));
	cr_assert(!policy_cgroup_under("system.slice/web", "/"));
}

TEST(serve, allow_units_exact)
{
	char *units[] = {"web.service", "api@1.service"};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_units = units;
	s.nallow_units = 2;
	static const struct {
		const char *unit;
		bool ok;
	} cases[] = {
		{"web.service", true},  {"api@1.service", true},   {"web.service2", false}, {"Web.service", false},
		{"web", false},         {"web.socket", false},     {"api@2.service", false}, {"api@.service", false},
		{"xweb.service", false}, {"", false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		/* The cgroup says something else: only the unit is looked at. */
		struct peer_ident p = peer_at(1000, "/system.slice/elsewhere.service", cases[i].unit, "");
		cr_assert_eq(policy_may_serve(&s, &p), cases[i].ok, "unit '%s'", cases[i].unit);
	}
}

TEST(serve, allow_cgroups_prefix)
{
	char *cgroups[] = {"/system.slice/web", "/machine.slice/libpod-ab.scope/"};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_cgroups = cgroups;
	s.nallow_cgroups = 2;
	static const struct {
		const char *cgroup;
		bool ok;
	} cases[] = {
		{"/system.slice/web", true},
		{"/system.slice/web/x", true},
		{"/system.slice/webby", false},
		{"/system.slice/web.service", false},
		{"/system.slice", false},
		{"/machine.slice/libpod-ab.scope", true},
		{"/machine.slice/libpod-ab.scope/container", true},
		{"/machine.slice/libpod-abc.scope", false},
		{"/", false},
		{"", false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct peer_ident p = peer_at(1000, cases[i].cgroup, "web.service", "");
		cr_assert_eq(policy_may_serve(&s, &p), cases[i].ok, "cgroup '%s'", cases[i].cgroup);
	}
}

TEST(serve, allow_labels_exact)
{
	char *labels[] = {"system_u:system_r:httpd_t:s0", "/usr/sbin/nginx (enforce)"};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_labels = labels;
	s.nallow_labels = 2;
	static const struct {
		const char *label;
		bool ok;
	} cases[] = {
		{"system_u:system_r:httpd_t:s0", true},
		{"/usr/sbin/nginx (enforce)", true},
		{"system_u:system_r:httpd_t:s0:c1", false},
		{"system_u:system_r:httpd_t", false},
		{"/usr/sbin/nginx (complain)", false},
		{"/usr/sbin/nginx", false},
		{"", false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct peer_ident p = peer_at(1000, "/system.slice/web.service", "web.service", cases[i].label);
		cr_assert_eq(policy_may_serve(&s, &p), cases[i].ok, "label '%s'", cases[i].label);
	}
}

TEST(serve, unknown_matches_nothing_not_even_empty_entries)
{
	/* Entries that config.c would refuse, to be sure "" is never a match. */
	char *empty[] = {""};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_units = empty;
	s.nallow_units = 1;
	s.allow_cgroups = empty;
	s.nallow_cgroups = 1;
	s.allow_labels = empty;
	s.nallow_labels = 1;
	struct peer_ident unknown = peer_at(1000, "", "", "");
	cr_assert(!policy_may_serve(&s, &unknown));
	struct peer_ident known = peer_at(1000, "/system.slice/web.service", "web.service", "lbl");
	cr_assert(!policy_may_serve(&s, &known));

	/* allow_cgroups = / admits every known cgroup, not an unknown one. */
	char *root[] = {"/"};
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_cgroups = root;
	s.nallow_cgroups = 1;
	cr_assert(policy_may_serve(&s, &known));
	cr_assert(!policy_may_serve(&s, &unknown));
}

TEST(serve, or_across_every_key)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n"
	                        "allow_users = 1000\nallow_groups = 50\n"
	                        "allow_units = web.service\n"
	                        "allow_cgroups = /machine.slice/libpod-ab.scope\n"
	                        "allow_labels = system_u:system_r:httpd_t:s0\n");
	const struct cfg_service *s = config_find_service(c, "web");
	cr_assert(s->has_allow);
	/* Each key alone is enough. */
	struct peer_ident by_uid = peer_at(1000, "/user.slice/user-1000.slice/session-1.scope", "session-1.scope", "");
	struct peer_ident by_group = peer_at(2000, "", "", "");
	by_group.ngroups = 1;
	by_group.groups[0] = 50;
	struct peer_ident by_unit = peer_at(2000, "/system.slice/web.service", "web.service", "");
	struct peer_ident by_cgroup = peer_at(2000, "/machine.slice/libpod-ab.scope/container", "libpod-ab.scope", "");
	struct peer_ident by_label = peer_at(2000, "", "", "system_u:system_r:httpd_t:s0");
	cr_assert(policy_may_serve(s, &by_uid));
	cr_assert(policy_may_serve(s, &by_group));
	cr_assert(policy_may_serve(s, &by_unit));
	cr_assert(policy_may_serve(s, &by_cgroup));
	cr_assert(policy_may_serve(s, &by_label));
	/* None of them: refused. */
	struct peer_ident none = peer_at(2000, "/system.slice/other.service", "other.service", "unconfined_t");
	cr_assert(!policy_may_serve(s, &none));
	struct peer_ident unknown = peer_at(2000, "", "", "");
	cr_assert(!policy_may_serve(s, &unknown));
	config_free(c);
}

TEST(serve, root_always_and_no_key_root_only)
{
	char *units[] = {"web.service"};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	struct peer_ident root_unknown = peer_at(0, "", "", "");
	struct peer_ident root_elsewhere = peer_at(0, "/system.slice/other.service", "other.service", "x");
	struct peer_ident web = peer_at(1000, "/system.slice/web.service", "web.service", "");
	/* No allow key: root only, whatever the unit. */
	cr_assert(policy_may_serve(&s, &root_unknown));
	cr_assert(policy_may_serve(&s, &root_elsewhere));
	cr_assert(!policy_may_serve(&s, &web));
	/* A unit list present but has_allow false (cannot come from config):
	 * still root only. */
	s.allow_units = units;
	s.nallow_units = 1;
	cr_assert(!policy_may_serve(&s, &web));
	/* With allow_units: that unit, and root anywhere. */
	s.has_allow = true;
	cr_assert(policy_may_serve(&s, &web));
	cr_assert(policy_may_serve(&s, &root_unknown));
	cr_assert(policy_may_serve(&s, &root_elsewhere));
}

/* ===================== policy_describe ===================== */

TEST(describe, refusals)
{
	char buf[512];
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n"
	                        "allow_users = 33\nallow_units = web.service\nallow_cgroups = /system.slice/web\n"
	                        "[service lbl]\nlisten = tcp://127.0.0.1:2\nallow_groups = 50\n"
	                        "allow_labels = system_u:system_r:httpd_t:s0\n"
	                        "[service none]\nlisten = tcp://127.0.0.1:3\n");
	const struct cfg_service *web = config_find_service(c, "web");
	const struct cfg_service *lbl = config_find_service(c, "lbl");
	const struct cfg_service *none = config_find_service(c, "none");

	struct peer_ident p = peer_at(1000, "/system.slice/other.service", "other.service", "unconfined");
	policy_describe(web, &p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (unit other.service, cgroup /system.slice/other.service) matches none of "
	                      "allow_users/allow_units/allow_cgroups");

	struct peer_ident unknown = peer_at(1000, "", "", "");
	policy_describe(web, &unknown, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (unit unknown, cgroup unknown) matches none of "
	                      "allow_users/allow_units/allow_cgroups");
	struct peer_ident slice = peer_at(1000, "/user.slice", "", "");
	policy_describe(web, &slice, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (no unit, cgroup /user.slice) matches none of "
	                      "allow_users/allow_units/allow_cgroups");

	struct peer_ident g = peer_at(1000, "/x", "", "unconfined");
	g.ngroups = 2;
	g.groups[0] = 4;
	g.groups[1] = 27;
	policy_describe(lbl, &g, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (gid 1000 and 2 supplementary groups, label unconfined) matches none of "
	                      "allow_groups/allow_labels");
	g.ngroups = 0;
	g.label[0] = '\0';
	policy_describe(lbl, &g, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (gid 1000, no label) matches none of allow_groups/allow_labels");

	policy_describe(none, &p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 is not root and no allow_* key is set (only root may serve)");

	struct peer_ident u = peer_at(2000, "", "", "");
	struct config *c2 = load("[service w]\nlisten = tcp://127.0.0.1:1\nallow_users = 33, 34\n");
	policy_describe(config_find_service(c2, "w"), &u, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 2000 matches none of allow_users");
	config_free(c2);

	/* has_allow with every list empty (hand-built). */
	struct cfg_service empty;
	memset(&empty, 0, sizeof(empty));
	empty.has_allow = true;
	policy_describe(&empty, &u, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 2000 matches nothing: the allow_* keys are empty");
	config_free(c);
}

TEST(describe, allowed_peers)
{
	char buf[256];
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n"
	                        "allow_users = 33\nallow_units = web.service\nallow_cgroups = /machine.slice\n"
	                        "allow_labels = L\n");
	const struct cfg_service *s = config_find_service(c, "web");
	struct peer_ident root = peer_at(0, "", "", "");
	policy_describe(s, &root, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 0 is root");
	struct peer_ident u33 = peer_at(33, "", "", "");
	policy_describe(s, &u33, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 33 is allowed by allow_users");
	struct peer_ident unit = peer_at(1000, "/system.slice/web.service", "web.service", "");
	policy_describe(s, &unit, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 is allowed by allow_units");
	struct peer_ident cg = peer_at(1000, "/machine.slice/x.scope", "x.scope", "");
	policy_describe(s, &cg, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 is allowed by allow_cgroups");
	struct peer_ident lb = peer_at(1000, "", "", "L");
	policy_describe(s, &lb, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 is allowed by allow_labels");
	/* describe and may_serve agree. */
	cr_assert(policy_may_serve(s, &lb));
	config_free(c);
}

TEST(describe, hostile_strings_and_small_buffers)
{
	char buf[512];
	char *units[] = {"web.service"};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.has_allow = true;
	s.allow_units = units;
	s.nallow_units = 1;
	/* A delegated subtree can hold any name but '/' and '\n'. */
	struct peer_ident p = peer_at(1000, "/user.slice/evil\x1b[31m\r\t\x7f\xc3\xa9", "", "");
	policy_describe(&s, &p, buf, sizeof(buf));
	cr_assert_str_eq(buf, "uid 1000 (no unit, cgroup /user.slice/evil?[31m?????"
	                      ") matches none of allow_units");

	/* Truncated, always terminated, never past size. */
	char small[24];
	memset(small, 'Z', sizeof(small));
	policy_describe(&s, &p, small, 10);
	cr_assert_eq(strlen(small), 9);
	cr_assert_str_eq(small, "uid 1000 ");
	cr_assert_eq(small[10], 'Z');
	policy_describe(&s, &p, small, 1);
	cr_assert_str_eq(small, "");
	small[0] = 'Z';
	policy_describe(&s, &p, small, 0);
	cr_assert_eq(small[0], 'Z', "size 0: nothing written");
	char full[512];
	policy_describe(&s, &p, full, sizeof(full));
	for (size_t n = 1; n < 100; n++) {
		char b[100];
		memset(b, 'Z', sizeof(b));
		policy_describe(&s, &p, b, n);
		size_t want = n - 1 < strlen(full) ? n - 1 : strlen(full);
		cr_assert_eq(strlen(b), want, "size %zu", n);
		cr_assert(strncmp(b, full, want) == 0, "size %zu: '%s'", n, b);
		cr_assert(n == sizeof(b) || b[n] == 'Z', "size %zu: wrote past the end", n);
	}

	/* The longest identity fits in a 2 KiB buffer whole. */
	struct peer_ident big = peer(1000, 1000, 0);
	memset(big.cgroup, 'c', sizeof(big.cgroup) - 1);
	big.cgroup[0] = '/';
	memset(big.unit, 'u', sizeof(big.unit) - 1);
	memset(big.label, 'l', sizeof(big.label) - 1);
	char *labels[] = {"x"};
	s.allow_labels = labels;
	s.nallow_labels = 1;
	char huge[2048];
	policy_describe(&s, &big, huge, sizeof(huge));
	cr_assert(strstr(huge, "matches none of allow_units/allow_labels"), "%s", huge);
}

TEST(serve, units_cgroups_labels)
{
	struct config *c = load("[service web]\nlisten = tcp://127.0.0.1:1\n"
	                        "allow_units = web.service, api@1.service\n"
	                        "allow_cgroups = /machine.slice/libpod-ab.scope\n"
	                        "allow_labels = system_u:system_r:httpd_t:s0\n");
	const struct cfg_service *s = config_find_service(c, "web");
	cr_assert(s->has_allow);
	struct peer_ident p = peer(1000, 1000, 0);
	cr_assert(!policy_may_serve(s, &p), "nothing known: no match");
	snprintf(p.unit, sizeof(p.unit), "web.service");
	cr_assert(policy_may_serve(s, &p));
	snprintf(p.unit, sizeof(p.unit), "web2.service");
	cr_assert(!policy_may_serve(s, &p));
	snprintf(p.unit, sizeof(p.unit), "api@1.service");
	cr_assert(policy_may_serve(s, &p));
	p.unit[0] = '\0';
	snprintf(p.cgroup, sizeof(p.cgroup), "/machine.slice/libpod-ab.scope/container");
	cr_assert(policy_may_serve(s, &p));
	snprintf(p.cgroup, sizeof(p.cgroup), "/machine.slice/libpod-abc.scope");
	cr_assert(!policy_may_serve(s, &p), "prefix stops at a '/'");
	p.cgroup[0] = '\0';
	snprintf(p.label, sizeof(p.label), "system_u:system_r:httpd_t:s0");
	cr_assert(policy_may_serve(s, &p));
	snprintf(p.label, sizeof(p.label), "system_u:system_r:httpd_t:s1");
	cr_assert(!policy_may_serve(s, &p));
	config_free(c);
}

TEST(serve, bad_unit_and_cgroup_values)
{
	struct config *c = NULL;
	char err[1024];
	cr_assert_eq(config_load_string("[service web]\nlisten = tcp://127.0.0.1:1\nallow_units = nginx\n", "t.conf", &c,
	                                err, sizeof(err)),
	             -EINVAL);
	cr_assert(strstr(err, "t.conf:3: allow_units: 'nginx' is not a unit name"), "%s", err);
	cr_assert_eq(config_load_string("[service web]\nlisten = tcp://127.0.0.1:1\nallow_units = getty@.service\n",
	                                "t.conf", &c, err, sizeof(err)),
	             -EINVAL, "a template is never a running unit");
	cr_assert(strstr(err, "t.conf:3: allow_units: 'getty@.service' is not a unit name"), "%s", err);
	cr_assert_eq(config_load_string("[service web]\nlisten = tcp://127.0.0.1:1\nallow_units = getty@tty1.service\n",
	                                "t.conf", &c, err, sizeof(err)),
	             0, "%s", err);
	config_free(c);
	c = NULL;
	cr_assert_eq(config_load_string("[service web]\nlisten = tcp://127.0.0.1:1\nallow_cgroups = system.slice\n",
	                                "t.conf", &c, err, sizeof(err)),
	             -EINVAL);
	cr_assert(strstr(err, "t.conf:3: allow_cgroups: 'system.slice' must be an absolute cgroup path"), "%s", err);
}

TEST(identity, own_cgroup_through_a_socketpair)
{
	/* What this machine can show: our own cgroup and unit, read the way
	 * handoffd reads a peer's (registry_read_identity -> peerid). The
	 * expected value is parsed here independently: the 0:: line, else the
	 * name=systemd line. */
	char v2[1024] = "", sd[1024] = ""; /* as long as a line */
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (f) {
		char line[1024];
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "0::", 3) == 0)
				snprintf(v2, sizeof(v2), "%s", line + 3);
			else if (strstr(line, ":name=systemd:"))
				snprintf(sd, sizeof(sd), "%s", strstr(line, ":name=systemd:") + strlen(":name=systemd:"));
		}
		fclose(f);
	}
	const char *self = v2[0] ? v2 : sd;
	if (!self[0])
		cr_skip_test("no cgroup v2 or name=systemd line in /proc/self/cgroup on this machine");
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct peer_ident id;
	int pidfd = -1;
	socklen_t pl = sizeof(pidfd);
	bool have_pidfd = getsockopt(sv[0], SOL_SOCKET, 77 /* SO_PEERPIDFD */, &pidfd, &pl) == 0 && pidfd >= 0;
	if (pidfd >= 0)
		close(pidfd);
	cr_assert_eq(registry_read_identity(sv[0], &id), 0);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(id.pid, getpid());
	cr_assert_eq(id.uid, getuid());
	if (!have_pidfd) {
		cr_assert_str_eq(id.cgroup, "", "no pidfd: the cgroup is not trusted");
		cr_assert_str_eq(id.unit, "");
		cr_skip_test("kernel without SO_PEERPIDFD: cgroup not read");
	}
	cr_assert_str_eq(id.cgroup, self);
	char unit[PEERID_UNIT_MAX];
	if (peerid_unit_from_cgroup(self, unit, sizeof(unit)) == 0)
		cr_assert_str_eq(id.unit, unit);
	else
		cr_assert_str_eq(id.unit, "");
	cr_log_info("own identity: cgroup '%s', unit '%s', label '%s'", id.cgroup, id.unit, id.label);
}
