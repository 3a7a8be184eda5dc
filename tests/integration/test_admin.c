/* Integration: handoffctl against a live handoffd: status (text and JSON),
 * drain, reload, who may use it; and SIGTERM exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(admin, .init = h_init, .fini = h_fini);

static bool answered_by(const struct h_addr *a, pid_t pid)
{
	char buf[512];
	struct h_answer ans;
	ssize_t n = h_request(a, NULL, buf, sizeof(buf), H_DEADLINE_MS);
	return n > 0 && h_parse_answer(buf, &ans) && (!pid || ans.pid == pid);
}

/* An executable python3 on PATH, or NULL. */
static char *find_python3(void)
{
	const char *path = getenv("PATH");
	if (!path)
		return NULL;
	char *copy = strdup(path);
	cr_assert(copy);
	char *found = NULL;
	for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		cr_assert(asprintf(&p, "%s/python3", dir) >= 0);
		if (access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

static void must_contain(const char *out, const char *what, const char *fmt_value)
{
	cr_assert(strstr(out, fmt_value), "status does not show %s ('%s'):\n%s", what, fmt_value, out);
}

Test(admin, status_text_and_json, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	char upath[128];
	snprintf(upath, sizeof(upath), "%s/web.sock", h.dir);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d, unix:%s\n", port, upath);
	h_start_daemon();
	struct h_proc *a = h_backend("web", 3, NULL, "--hold", "1", NULL);
	struct h_addr addr = h_addr_tcp("127.0.0.1", port);
	/* One connection held by a: 1 in flight there. */
	int held = h_connect(&addr, NULL, H_DEADLINE_MS);
	cr_assert(held >= 0);
	cr_assert(h_send(held, "hello\n") == 0);
	cr_assert(h_proc_wait_lines(a, "held ", 1, H_DEADLINE_MS));
	struct h_proc *b = h_backend("web", 5, NULL, NULL);
	for (int i = 0; i < 3; i++)
		cr_assert(answered_by(&addr, 0));

	char *out = NULL, s[160];
	int rc = h_ctl(NULL, &out, "status", NULL);
	cr_assert_eq(rc, 0, "handoffctl status: exit %d: %s", rc, out);
	must_contain(out, "the service", "web");
	snprintf(s, sizeof(s), "127.0.0.1:%d", port);
	must_contain(out, "the TCP listener", s);
	snprintf(s, sizeof(s), "unix:%s", upath);
	must_contain(out, "the Unix listener", s);
	snprintf(s, sizeof(s), " %d ", (int)a->pid);
	must_contain(out, "backend a's pid", s);
	snprintf(s, sizeof(s), " %d ", (int)b->pid);
	must_contain(out, "backend b's pid", s);
	must_contain(out, "the backends' user", "root");
	must_contain(out, "the accepted counter", "4 accepted");
	must_contain(out, "the delivered counter", "4 delivered");
	cr_assert(strcasestr(out, "inflight") || strcasestr(out, "in flight"), "no in-flight column:\n%s", out);
	free(out);

	rc = h_ctl(NULL, &out, "--json", "status", NULL);
	cr_assert_eq(rc, 0, "handoffctl --json status: exit %d: %s", rc, out);
	cr_assert(out[0] == '{', "not a JSON object: %s", out);
	must_contain(out, "the service", "\"name\":\"web\"");
	snprintf(s, sizeof(s), "\"address\":\"127.0.0.1:%d\"", port);
	must_contain(out, "the TCP listener", s);
	snprintf(s, sizeof(s), "\"pid\":%d,\"uid\":0,", (int)a->pid);
	must_contain(out, "backend a (pid, uid)", s);
	snprintf(s, sizeof(s), "\"pid\":%d,\"uid\":0,", (int)b->pid);
	must_contain(out, "backend b (pid, uid)", s);
	must_contain(out, "a's capacity and in-flight count", "\"capacity\":3,\"inflight\":1,");
	must_contain(out, "b's capacity", "\"capacity\":5,\"inflight\":");
	must_contain(out, "the accepted counter", "\"accepted\":4,");
	must_contain(out, "the delivered counter", "\"delivered\":4,");

	char *py = find_python3();
	if (py) {
		char jpath[160];
		snprintf(jpath, sizeof(jpath), "%s/status.json", h.dir);
		FILE *f = fopen(jpath, "we");
		cr_assert(f);
		fputs(out, f);
		fclose(f);
		char *check = NULL;
		char *argv[] = {py, (char *)"-m", (char *)"json.tool", jpath, NULL};
		rc = h_run(NULL, &check, H_DEADLINE_MS * 2, argv);
		cr_assert_eq(rc, 0, "python3 -m json.tool rejects the output (%d): %s\n%s", rc, check, out);
		free(check);
		free(py);
	}
	free(out);

	cr_assert(h_send(held, "release\n") == 0);
	char buf[512];
	cr_assert(h_read_all(held, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	close(held);
	h_finish();
}

Test(admin, drain_by_id_and_pid, .timeout = 20)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *a = h_backend("web", 2, NULL, NULL);
	struct h_proc *b = h_backend("web", 2, NULL, NULL);
	struct h_addr addr = h_addr_tcp("127.0.0.1", port);

	char *out = NULL, id[32];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)a->backend_id);
	int rc = h_ctl(NULL, &out, "drain", id, NULL);
	cr_assert_eq(rc, 0, "drain %s: exit %d: %s", id, rc, out);
	free(out);
	int st = h_proc_wait_exit(a, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "drained backend: 0x%x '%s'", st, a->out);
	cr_assert(strstr(a->out, "drained"), "%s", a->out);
	for (int i = 0; i < 5; i++)
		cr_assert(answered_by(&addr, b->pid), "request %d not served by the remaining backend", i);

	/* By pid, through the pidfd-checked lookup. */
	struct h_proc *c = h_backend("web", 2, NULL, NULL);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid:%d", (int)b->pid);
	rc = h_ctl(NULL, &out, "drain", pid, NULL);
	cr_assert_eq(rc, 0, "drain %s: exit %d: %s", pid, rc, out);
	free(out);
	st = h_proc_wait_exit(b, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "drained backend: 0x%x '%s'", st, b->out);
	for (int i = 0; i < 3; i++)
		cr_assert(answered_by(&addr, c->pid));

	/* Nothing to drain: exit 1. */
	rc = h_ctl(NULL, &out, "drain", "id:999999", NULL);
	cr_assert_eq(rc, 1, "drain of a missing backend: exit %d: %s", rc, out);
	free(out);
	h_finish();
}

Test(admin, reload_reports_errors, .timeout = 15)
{
	int port = h_free_port(AF_INET), port2 = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("web", 2, NULL, NULL);
	struct h_addr addr = h_addr_tcp("127.0.0.1", port), addr2 = h_addr_tcp("127.0.0.1", port2);

	/* A good change: a second listener, open when handoffctl returns. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d, tcp://127.0.0.1:%d\n", port, port2);
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "reload", NULL);
	cr_assert_eq(rc, 0, "reload: exit %d: %s", rc, out);
	free(out);
	cr_assert(answered_by(&addr2, b->pid), "the reloaded listener does not serve");

	/* A broken file: exit 1 naming FILE:LINE, the running config stays. */
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\nbacklog = lots\n", port);
	char where[200];
	char *text = h_read_file(h.conf);
	int line = 1;
	for (char *p = text; p < strstr(text, "backlog"); p++)
		line += *p == '\n';
	free(text);
	snprintf(where, sizeof(where), "%s:%d", h.conf, line);
	rc = h_ctl(NULL, &out, "reload", NULL);
	cr_assert_eq(rc, 1, "reload of a broken file: exit %d: %s", rc, out);
	cr_assert(strstr(out, where), "handoffctl does not name %s: %s", where, out);
	free(out);
	cr_assert(answered_by(&addr, b->pid));
	cr_assert(answered_by(&addr2, b->pid), "a refused reload closed a listener");
	h_finish();
}

Test(admin, non_admin_is_refused, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("web", 2, NULL, NULL);
	struct h_cred nobody = h_nobody();
	const char *cmds[][2] = {{"status", NULL}, {"reload", NULL}, {"drain", "1"}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *out = NULL;
		int rc = h_ctl(&nobody, &out, cmds[i][0], cmds[i][1], NULL);
		cr_assert_eq(rc, 1, "handoffctl %s as nobody: exit %d: %s", cmds[i][0], rc, out);
		cr_assert(strstr(out, "permission denied"), "handoffctl %s as nobody: %s", cmds[i][0], out);
		free(out);
	}
	cr_assert(!h_proc_exited(b), "a refused admin command touched the backend");
	cr_assert_eq(h_log_count("configuration reloaded", NULL), 0);
	h_finish();
}

Test(admin, admin_group_member_is_allowed, .timeout = 15)
{
	struct group *g = getgrnam("staff");
	cr_assert(g, "group staff does not exist here");
	int port = h_free_port(AF_INET);
	h_config("admin_group = staff\n[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("web", 2, NULL, NULL);
	struct h_cred member = h_nobody_with_group(g->gr_gid);
	char *out = NULL;
	int rc = h_ctl(&member, &out, "status", NULL);
	cr_assert_eq(rc, 0, "status as a member of admin_group: exit %d: %s", rc, out);
	char pid[32];
	snprintf(pid, sizeof(pid), " %d ", (int)b->pid);
	cr_assert(strstr(out, pid), "%s", out);
	free(out);
	rc = h_ctl(&member, &out, "reload", NULL);
	cr_assert_eq(rc, 0, "reload as a member of admin_group: exit %d: %s", rc, out);
	free(out);

	struct h_cred outsider = h_nobody();
	rc = h_ctl(&outsider, &out, "status", NULL);
	cr_assert_eq(rc, 1, "status as a non-member: exit %d: %s", rc, out);
	cr_assert(strstr(out, "permission denied"), "%s", out);
	free(out);
	h_finish();
}

Test(admin, sigterm_exits_zero, .timeout = 15)
{
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	struct h_proc *d = h_start_daemon();
	struct h_proc *b = h_backend("web", 2, NULL, NULL);
	struct h_addr addr = h_addr_tcp("127.0.0.1", port);
	for (int i = 0; i < 3; i++)
		cr_assert(answered_by(&addr, b->pid));

	h_proc_kill(d, SIGTERM);
	int st = h_proc_wait_exit(d, H_DEADLINE_MS);
	cr_assert(st != -1, "handoffd did not exit on SIGTERM");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "handoffd status 0x%x on SIGTERM", st);
	/* It cleaned up: control socket file gone, listener closed, and the
	 * backend was told. */
	struct stat sb;
	cr_assert(stat(h.ctl, &sb) < 0 && errno == ENOENT, "the control socket file is left behind");
	cr_assert_eq(h_connect(&addr, NULL, H_DEADLINE_MS), -ECONNREFUSED);
	st = h_proc_wait_exit(b, H_DEADLINE_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 4 && strstr(b->out, "lost: "),
	          "backend after handoffd exited: 0x%x '%s'", st, b->out);
	h_finish();
}
