/* spawn: starting programs the inetd way without ever blocking the loop.
 *
 * Contract and ownership:
 *   - hd->spawner is created by spawn_init() and owned by hd (main.c calls
 *     spawn_init() at start-up and spawn_close() at teardown). It holds the
 *     SIGCHLD watcher (a uv_signal_t), the list of running children and one
 *     uv_poll_t per child whose exec has not been confirmed yet.
 *   - spawn reaps EVERY child of the process (waitpid(-1, WNOHANG)): nothing
 *     else in handoffd may fork, nor use uv_spawn(), system() or popen().
 *   - spawn_start() never takes ownership of an fd: the caller keeps every
 *     fd named in the request and may close them as soon as it returns (the
 *     child has its own duplicates). It never waits for the child: the exit
 *     callback reports the end, from the loop.
 *   - This is the only module that clears close-on-exec, and only in the
 *     child, on the fds that become 0, 1, 2, 3, ... just before execve().
 *   - Failures that spawn_start() returns are not logged here (the caller
 *     knows what happens next and says so). Exec failures, which happen in
 *     the child, are logged here once, as "service LABEL: cannot execute
 *     PATH: REASON", and child exits are logged here (status 0 at debug
 *     level, anything else at notice; rate-limited with log_peer()).
 */
#ifndef HANDOFF_SPAWN_H
#define HANDOFF_SPAWN_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

struct hd;

/* Most fds a child can get beyond 0, 1 and 2 (spawn_req.nextra). */
#define SPAWN_MAX_EXTRA 1024

/* Create hd->spawner and start watching SIGCHLD on hd->loop. Returns 0,
 * -ENOMEM, or a negative errno from libuv. */
int spawn_init(struct hd *hd);

/* Tear down hd->spawner (NULL-safe; sets hd->spawner to NULL): stops the
 * SIGCHLD watcher, closes every pending exec-error pipe and its handle and
 * frees all state once the close callbacks have run, so uv_loop_close()
 * succeeds after the next uv_run(). Running children keep running (like
 * inetd) and are neither signalled nor waited for; their exit callbacks
 * never fire. May be called from an exit callback. */
void spawn_close(struct hd *hd);

/* What to run and with what. Nothing here is retained after spawn_start()
 * returns: strings and arrays may be freed at once. */
struct spawn_req {
	const char *path;        /* executable, absolute (no PATH search) */
	char *const *argv;       /* NULL-terminated; argv[0] is what the program sees */
	char *const *envp;       /* the whole environment, NULL-terminated */
	int stdio[3];            /* fds that become 0, 1, 2 (the same fd may repeat); -1 = /dev/null */
	const int *extra;        /* fds that become 3, 4, ... (LISTEN_FDS style) */
	int nextra;              /* 0..SPAWN_MAX_EXTRA */
	bool set_ids;            /* setgroups(groups), setgid(gid), setuid(uid) in the child */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;     /* supplementary groups; ngroups == 0 clears them */
	int ngroups;
	const char *label;       /* for logs, e.g. the service name (copied) */
};

/* Called from the loop when the child has been reaped; wstatus as from
 * waitpid(). The callback may call spawn_start(), spawn_forget() and
 * spawn_close(). */
typedef void (*spawn_exit_fn)(void *data, pid_t pid, int wstatus);

/* Start a child. Returns its pid (> 0) or a negative errno: -EINVAL (bad
 * request, or no spawner), -EBADF (an fd in the request is not open),
 * -EMFILE/-ENFILE (no fd for the exec-error pipe), -EAGAIN/-ENOMEM (fork).
 * Never waits for the child.
 *
 * In the child (async-signal-safe calls only): every signal disposition is
 * reset to SIG_DFL and the signal mask emptied; setsid(); the request's fds
 * are moved to 0, 1, 2, 3.. (overlaps between sources and targets handled)
 * and every other fd is closed; when set_ids, setgroups/setgid/setuid;
 * chdir("/"); the umask is left as the daemon's (as inetd does); execve().
 * If any of that fails, the child reports errno on a close-on-exec pipe and
 * exits 127; the parent reads that pipe through a uv_poll handle (never a
 * blocking read), logs the failure once, and fn still fires on reaping. */
pid_t spawn_start(struct hd *hd, const struct spawn_req *req, spawn_exit_fn fn, void *data);

/* main.c raises handoffd's own soft RLIMIT_NOFILE to the hard limit; each
 * program started afterwards gets this soft limit back (the one handoffd
 * started with), as systemd does for its services. 0: leave it. */
void spawn_set_child_nofile(unsigned long soft);

/* Number of children started and not yet reaped (0 without a spawner). */
unsigned spawn_running(const struct hd *hd);

/* Forget the callback for pid (its owner went away); the child is still
 * reaped and its exit logged. Unknown pids are ignored. */
void spawn_forget(struct hd *hd, pid_t pid);

/* ---- the environment of an inetd-style child ---- */

#define SPAWN_ENV_MAX 24    /* entries, without the terminating NULL */
#define SPAWN_ENV_BUF 1024  /* bytes of "NAME=VALUE\0" text in all */

/* Fixed storage for an environment; envp is ready for spawn_req.envp and
 * points into buf (so the struct must not be copied once filled). */
struct spawn_env {
	char *envp[SPAWN_ENV_MAX + 1];
	int n;
	size_t used;
	char buf[SPAWN_ENV_BUF];
};

/* Fill *ret (from scratch) with the inetd/ucspi-style environment of one
 * connection or datagram service, in this order:
 *   PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
 *   PROTO=TCP (UDP when socktype is SOCK_DGRAM) when peer or local is
 *     IPv4/IPv6; PROTO=UNIX when either is AF_UNIX, or has_cred is set
 *   REMOTE_ADDR, REMOTE_PORT, TCPREMOTEIP, TCPREMOTEPORT  (peer is IP)
 *   TCPLOCALIP, TCPLOCALPORT                              (local is IP)
 *   UNIXREMOTEPID, UNIXREMOTEEUID, UNIXREMOTEEGID         (PROTO=UNIX and has_cred)
 *   HANDOFF_SERVICE=service
 * Addresses are printed without brackets or scope; an IPv4 client of a
 * dual-stack socket (::ffff:a.b.c.d) appears as a.b.c.d. peer or local may
 * be NULL (length 0); addresses shorter than their family needs are
 * ignored. Pure (no I/O, no allocation). Returns the number of entries or
 * -ENOSPC (SPAWN_ENV_MAX or SPAWN_ENV_BUF exceeded, e.g. a huge service
 * name); on -ENOSPC *ret holds an empty environment. */
int spawn_env_build(struct spawn_env *ret, const char *service, int socktype, const struct sockaddr *peer,
                    socklen_t peer_len, const struct sockaddr *local, socklen_t local_len, bool has_cred, pid_t pid,
                    uid_t uid, gid_t gid);

/* Append NAME=VALUE to env (e.g. LISTEN_FDS later). Returns the new number
 * of entries or -ENOSPC (env unchanged). */
int spawn_env_add(struct spawn_env *env, const char *name, const char *value);

/* LISTEN_PID for socket activation: add "LISTEN_PID=" with room for any
 * pid; the child writes its own pid there after fork, before exec (a
 * wrapper's pid there is the classic bug). Returns like spawn_env_add(). */
#define spawn_env_listen_pid(env) spawn_env_add((env), "LISTEN_PID", "0000000000")

#endif
