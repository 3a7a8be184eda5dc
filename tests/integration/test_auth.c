/* Integration: who may register for a service, decided from the kernel's
 * peer credentials (SO_PEERCRED, SO_PEERGROUPS). Backends run as nobody by
 * dropping privileges in the forked child before exec. */
#define _GNU_SOURCE
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(auth, .init = h_init, .fini = h_fini);

static gid_t group_id(const char *name)
{
	struct group *g = getgrnam(name);
	cr_assert(g, "group %s does not exist on this system", name);
	return g->gr_gid;
}

/* Start a backend that must be refused: exit 1 with code and text. */
static struct h_proc *refused(const char *service, const struct h_cred *cred, int code, const char *text)
{
	struct h_proc *p = h_backend_try(service, 1, cred, NULL);
	int st = h_proc_wait_exit(p, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "backend for %s: status 0x%x, stdout '%s'",
	          service, st, p->out);
	char want[32];
	snprintf(want, sizeof(want), "refused: code=%d ", code);
	cr_assert(strncmp(p->out, want, strlen(want)) == 0, "expected '%s...', got '%s'", want, p->out);
	if (text)
		cr_assert(strstr(p->out, text), "refusal does not say '%s': %s", text, p->out);
	return p;
}

/* A registered backend answers a client. */
static void serves(int port, struct h_proc *b)
{
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	char buf[512];
	struct h_answer ans;
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert(h_parse_answer(buf, &ans), "'%s'", buf);
	cr_assert_eq(ans.pid, b->pid);
}

Test(auth, uid_not_allowed_is_refused, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service authsvc]\nlisten = tcp://127.0.0.1:%d\nallow_groups = daemon\n", port);
	h_start_daemon();
	struct h_cred nobody = h_nobody();
	struct h_proc *p = refused("authsvc", &nobody, -5004, "uid 65534 (nobody) is not allowed to serve 'authsvc'");

	/* One log line names the peer (pid, uid) and the service. */
	char pid[32];
	snprintf(pid, sizeof(pid), "pid=%d", (int)p->pid);
	cr_assert(h_log_wait(H_DEADLINE_MS, pid, "65534", "authsvc", NULL), "no log line names %s, uid 65534 and authsvc",
	          pid);
	cr_assert_eq(h_log_count(pid, "65534", "authsvc", NULL), 1, "expected one log line for the refusal");

	/* Root still may. */
	struct h_proc *root = h_backend("authsvc", 1, NULL, NULL);
	serves(port, root);
	h_finish();
}

Test(auth, supplementary_group_is_allowed, .timeout = 15)
{
	gid_t staff = group_id("staff");
	int port = h_free_port(AF_INET);
	h_config("[service grp]\nlisten = tcp://127.0.0.1:%d\nallow_groups = staff\n", port);
	h_start_daemon();

	/* nobody without the group: refused. */
	struct h_cred plain = h_nobody();
	refused("grp", &plain, -5004, "is not allowed to serve 'grp'");

	/* nobody with staff as a supplementary group (SO_PEERGROUPS): allowed. */
	struct h_cred member = h_nobody_with_group(staff);
	struct h_proc *b = h_backend("grp", 2, &member, NULL);
	serves(port, b);
	h_finish();
}

Test(auth, primary_group_is_allowed, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service pgrp]\nlisten = tcp://127.0.0.1:%d\nallow_groups = nogroup\n", port);
	h_start_daemon();
	struct h_cred nobody = h_nobody(); /* primary group nogroup, no others */
	struct h_proc *b = h_backend("pgrp", 2, &nobody, NULL);
	serves(port, b);
	h_finish();
}

Test(auth, allow_users_by_name, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service byname]\nlisten = tcp://127.0.0.1:%d\nallow_users = daemon, nobody\n", port);
	h_start_daemon();
	struct h_cred nobody = h_nobody();
	struct h_proc *b = h_backend("byname", 2, &nobody, NULL);
	serves(port, b);
	/* A uid not on the list is still refused. */
	struct h_cred other = {.uid = 65533, .gid = 65533, .ngroups = 0};
	refused("byname", &other, -5004, "uid 65533");
	h_finish();
}

Test(auth, no_allow_key_means_root_only, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service rootonly]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_cred nobody = h_nobody();
	refused("rootonly", &nobody, -5004, "uid 65534 (nobody) is not allowed to serve 'rootonly'");
	struct h_proc *b = h_backend("rootonly", 2, NULL, NULL);
	serves(port, b);
	h_finish();
}

Test(auth, unknown_service, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service known]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	refused("nosuch", NULL, -5003, "nosuch");
	h_finish();
}

/* What this machine can show of trust by cgroup and unit: the backend's
 * cgroup, read by handoffd from /proc (a kernel fact, not a claim). */
static bool own_cgroup(char *buf, size_t size)
{
	char *t = h_read_file("/proc/self/cgroup");
	const char *p = t ? strstr(t, "0::") : NULL;
	if (!p || (p != t && p[-1] != '\n')) {
		free(t);
		return false;
	}
	p += 3;
	size_t n = strcspn(p, "\n");
	snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), p);
	free(t);
	return buf[0] == '/';
}

Test(auth, allow_cgroups_and_units, .timeout = 15)
{
	char cg[512];
	if (!own_cgroup(cg, sizeof(cg)))
		H_SKIP("no cgroup v2 path in /proc/self/cgroup on this machine");
	int port = h_free_port(AF_INET);
	/* The backend (nobody) is in our cgroup: allowed by allow_cgroups. */
	h_config("[service cg]\nlisten = tcp://127.0.0.1:%d\nallow_cgroups = %s\n"
	         "[service other]\nlisten = tcp://127.0.0.1:%d\nallow_cgroups = /handoffd-test-none.slice\n"
	         "allow_units = handoffd-test-none.service\n",
	         port, cg, h_free_port(AF_INET));
	h_start_daemon();
	struct h_cred nobody = h_nobody();
	struct h_proc *b = h_backend("cg", 2, &nobody, NULL);
	cr_assert(b->backend_id > 0);
	/* Another cgroup and a unit it is not in: refused. */
	refused("other", &nobody, -5004, "is not allowed to serve 'other'");
	h_finish();
}
