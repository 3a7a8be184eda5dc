/* Integration: systemd's fd store across a restart (FileDescriptorStoreMax),
 * with tests/helpers/fake-systemd standing in for systemd: handoffd stores
 * its listeners and control socket, and at exit the connections no backend
 * took; the restarted handoffd serves them and removes each from the store
 * once delivered (FDSTOREREMOVE), so no client hangs on a socket nobody
 * serves. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

TestSuite(fdstore, .init = h_init, .fini = h_fini);

static bool control_up(void)
{
	char *out = NULL;
	int rc = h_ctl(NULL, &out, "status", NULL);
	free(out);
	return rc == 0;
}

Test(fdstore, restart_keeps_listeners_and_waiting_connections, .timeout = 40)
{
	const char *fake = getenv("FAKE_SYSTEMD");
	cr_assert(fake && *fake, "$FAKE_SYSTEMD is not set (run under make check)");
	int port = h_free_port(AF_INET);
	h_config("[service web]\nlisten = tcp://127.0.0.1:%d\n", port);
	char npath[100];
	snprintf(npath, sizeof(npath), "%.80s/notify.sock", h.dir);
	char *argv[] = {(char *)fake, npath, "--", getenv("HANDOFFD"), "-f", h.conf, NULL};
	struct h_proc *sd = h_spawn("fake-systemd", NULL, argv);
	cr_assert(H_WAIT_UNTIL(control_up(), H_DEADLINE_MS), "handoffd did not come up:\n%s", sd->out);
	cr_assert(h_proc_wait_lines(sd, "stored handoffd-control", 1, H_DEADLINE_MS), "%s", sd->out);
	cr_assert(h_proc_wait_lines(sd, "stored web.", 1, H_DEADLINE_MS), "listener not stored:\n%s", sd->out);

	/* Four connections reach a backend that takes the first (and keeps
	 * it: lost with the backend, which had received it) and never reads
	 * the other three; it dies: those three wait in handoffd, with no
	 * backend left. */
	struct h_proc *b = h_backend("web", 8, NULL, "--stall-after", "0", NULL);
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_clients cs;
	h_clients_open(&cs, &a, 4);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "delivered") == 4, H_DEADLINE_MS), "delivered %lld",
	          h_status_service("web", "delivered"));
	h_proc_kill(b, SIGKILL);
	h_proc_wait_exit(b, H_DEADLINE_MS);
	cr_assert(H_WAIT_UNTIL(h_status_service("web", "pending") == 3, H_DEADLINE_MS), "pending %lld",
	          h_status_service("web", "pending"));

	/* systemctl restart: they go to the store, and come back. */
	h_proc_kill(sd, SIGUSR1);
	cr_assert(h_proc_wait_lines(sd, "exited ", 1, H_DEADLINE_MS), "%s", sd->out);
	cr_assert_eq(h_proc_count(sd, "stored conn.web."), 3, "waiting connections not stored:\n%s", sd->out);
	cr_assert(h_proc_wait_lines(sd, "started ", 2, H_DEADLINE_MS), "%s", sd->out);
	cr_assert(H_WAIT_UNTIL(control_up(), H_DEADLINE_MS), "restarted handoffd did not come up:\n%s", sd->out);
	/* (handoffd's stderr is fake-systemd's) */
	cr_assert(H_WAIT_UNTIL(({
		char *t = h_read_file(sd->log);
		bool ok = t && strstr(t, "took 3 waiting connections from systemd's fd store");
		free(t);
		ok;
	}), H_DEADLINE_MS), "no import logged");
	cr_assert_eq(h_status_service("web", "pending"), 3);

	/* A backend: each client is answered, and leaves the store. */
	h_backend("web", 8, NULL, NULL);
	h_clients_run(&cs, H_DEADLINE_MS);
	cr_assert_eq(h_clients_answered(&cs), 3, "clients lost across the restart (the fourth was the dead backend's)");
	h_clients_close(&cs);
	cr_assert(h_proc_wait_lines(sd, "removed conn.web.", 3, H_DEADLINE_MS), "not removed from the store:\n%s",
	          sd->out);
	/* The listener (kept open by the store all along) still serves. */
	char buf[512];
	cr_assert(h_request(&a, NULL, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	h_finish();
}
