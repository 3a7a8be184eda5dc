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

TEST(unit, from_cgroup_paths)
{
	static const struct {
		const char *path, *unit; /* NULL: none */
	} cases[] = {
		{"/system.slice/nginx.service", "nginx.service"},
		{"/system.slice/nginx.service/worker", "nginx.service"},
		{"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"},
		{"/user.slice/user-1000.slice/session-3.scope", "session-3.scope"},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "user@1000.service"},
		{"/init.scope", "init.scope"},
		{"/machine.slice/libpod-0123abcd.scope/container", "libpod-0123abcd.scope"},
		{"/system.slice/docker-0123abcd.scope", "docker-0123abcd.scope"},
		{"/", NULL},
		{"/system.slice", NULL},
		{"/kubepods/besteffort/pod1/abc", NULL},
		{"", NULL},
		{"/.service", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[128] = "x";
		int rc = policy_unit_from_cgroup(cases[i].path, buf, sizeof(buf));
		if (cases[i].unit) {
			cr_assert_eq(rc, 0, "%s", cases[i].path);
			cr_assert_str_eq(buf, cases[i].unit, "%s", cases[i].path);
		} else {
			cr_assert_eq(rc, -ENOENT, "%s gave %s", cases[i].path, buf);
		}
	}
	char tiny[4];
	cr_assert_eq(policy_unit_from_cgroup("/system.slice/nginx.service", tiny, sizeof(tiny)), -ENOENT);
}

TEST(unit, cgroup_prefix_at_a_slash)
{
	cr_assert(policy_cgroup_under("/system.slice/web", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/system.slice/web/worker", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/system.slice/web/worker", "/system.slice/web/"));
	cr_assert(!policy_cgroup_under("/system.slice/webby", "/system.slice/web"));
	cr_assert(!policy_cgroup_under("/system.slice", "/system.slice/web"));
	cr_assert(policy_cgroup_under("/anything", "/"));
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
	cr_assert_eq(config_load_string("[service web]\nlisten = tcp://127.0.0.1:1\nallow_cgroups = system.slice\n",
	                                "t.conf", &c, err, sizeof(err)),
	             -EINVAL);
	cr_assert(strstr(err, "t.conf:3: allow_cgroups: 'system.slice' must be an absolute cgroup path"), "%s", err);
}

TEST(identity, own_cgroup_through_a_socketpair)
{
	/* What this machine can show: our own cgroup and unit, read the way
	 * handoffd reads a peer's. */
	char self[1024] = "";
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (f) {
		char line[1024];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(self, sizeof(self), "%s", line + 3);
			}
		fclose(f);
	}
	if (!self[0])
		cr_skip_test("no cgroup v2 line in /proc/self/cgroup on this machine");
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct peer_ident id;
	int pidfd = -1;
	cr_assert_eq(registry_read_identity(sv[0], &id, &pidfd), 0);
	bool have_pidfd = pidfd >= 0;
	if (pidfd >= 0)
		close(pidfd);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(id.pid, getpid());
	if (!have_pidfd) {
		cr_assert_str_eq(id.cgroup, "", "no pidfd: the cgroup is not trusted");
		cr_skip_test("kernel without SO_PEERPIDFD: cgroup not read");
	}
	cr_assert_str_eq(id.cgroup, self);
	char unit[128];
	if (policy_unit_from_cgroup(self, unit, sizeof(unit)) == 0)
		cr_assert_str_eq(id.unit, unit);
	else
		cr_assert_str_eq(id.unit, "");
}
