/* harness: run the real handoffd, test backends and clients for the
 * integration tests.
 *
 * One test = one criterion test process. h_init() (criterion .init) makes a
 * temp dir and records the test's own fd count; everything the test starts
 * is recorded in one table and h_fini() (criterion .fini) stops it all by
 * pid, whether the test passed or not (then any other child of the test
 * process too: a new handoffd an upgrade left to a subreaper test that
 * failed before adopting it), prints the logs of a test that did not reach
 * h_finish(), and removes the temp dir. A test body ends with
 * h_finish(), which stops everything, checks handoffd exited 0 on SIGTERM
 * and checks the test process leaked no fd.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL), so even a test killed by its
 * criterion timeout leaves no process behind.
 *
 * Nothing here waits with a fixed sleep: every wait polls a condition with a
 * deadline (short sleeps inside the loop are only the polling interval).
 *
 * Binaries come from $HANDOFFD, $HANDOFFCTL and $TEST_BACKEND (absolute
 * paths, set by `make check`). The temp dir is $TMPDIR/handoffd-test-XXXXXX
 * ($TMPDIR: /tmp by default; a short path, mode 1777 like /tmp: children
 * running as nobody, and valgrind, write there too).
 *
 * Slow runs (`make check-valgrind` sets both):
 * - HANDOFF_TEST_TIME_SCALE=K (1-100, default 1) multiplies every criterion
 *   .timeout, H_DEADLINE_MS (h_ms()) and the harness's own waits by K.
 * - HANDOFF_TEST_VALGRIND=DIR runs handoffd, handoffctl, test-backend and
 *   handoff-exec under valgrind memcheck (leak check, --track-fds=yes,
 *   forked children silent until they exec, exec'd programs not traced;
 *   $VALGRIND names the program), one log per process in DIR (made 1777 if
 *   missing) named SUITE.TEST.PROGRAM.PID.vg; errors and definite leaks
 *   make the process exit H_VALGRIND_EXIT. Valgrind keeps the pid, so pid
 *   bookkeeping is unchanged; the command name (/proc/PID/comm) is
 *   valgrind's, so h_children() also matches the program's path.
 *   tests/check-valgrind.sh DIR judges the logs.
 */
#ifndef HANDOFF_TEST_HARNESS_H
#define HANDOFF_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <criterion/criterion.h>

#define H_NOBODY_UID 65534
#define H_NOGROUP_GID 65534

/* ms times HANDOFF_TEST_TIME_SCALE. */
int h_ms(int ms);
/* Are our programs running under valgrind (HANDOFF_TEST_VALGRIND)? */
bool h_valgrind(void);
/* Were they built with AddressSanitizer (./configure --enable-sanitizers)?
 * Its shadow memory and quarantine make RSS no measure of handoffd's own. */
bool h_asan(void);
/* Exit status of a program in which valgrind found errors or definite leaks. */
#define H_VALGRIND_EXIT 99
#define H_VALGRIND_EXIT_STR "99"

/* Default deadline for "this should happen soon" waits. Generous so a
 * loaded CI machine does not fail tests; a passing test never waits it out.
 * Scaled by HANDOFF_TEST_TIME_SCALE. */
#define H_DEADLINE_MS h_ms(5000)

/* ---- processes ---- */

/* Who a child runs as. NULL everywhere means "stay as the test (root)". */
struct h_cred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[8];
};

/* nobody/nogroup with no supplementary groups, or with one extra group. */
struct h_cred h_nobody(void);
struct h_cred h_nobody_with_group(gid_t extra);

struct h_proc {
	pid_t pid;           /* 0 once reaped */
	char name[32];
	int out_fd;          /* reads the child's stdout file (DIR/NAME.out), -1 if none */
	char *out;           /* everything read from stdout so far, NUL-terminated */
	size_t out_len, out_cap;
	char log[200];       /* file with the child's stderr */
	bool exited;
	int status;          /* waitpid status once exited */
	bool is_daemon;
	uint64_t backend_id; /* test-backend: id from "registered ID" */
	bool forgotten;      /* h_proc_forget(): the slot is free for reuse */
};

/* ---- the test's context (one per test process) ---- */

struct h_ctx {
	char dir[64];        /* temp dir, 0755 */
	char conf[128];      /* DIR/handoffd.conf */
	char ctl[100];       /* DIR/control.sock */
	char daemon_log[128];
	struct h_proc *daemon;
	struct h_proc procs[32];
	int nprocs;
	int fds_at_start;
	bool finished;       /* h_finish() ran to its end: the test passed */
	int nstarted;        /* backends started, for unique names */
	char privdir[96];    /* DIR/priv: copies of binaries for other uids, if needed */
};

extern struct h_ctx h;

/* criterion hooks: .init = h_init, .fini = h_fini */
void h_init(void);
void h_fini(void);

/* End of a passing test: stop everything (handoffd by SIGTERM, which must
 * exit 0), then assert no fd of the test process leaked. */
void h_finish(void);

/* Skip the test with a reason (no log dump for a skipped test). Criterion
 * 2.4.1 runs no .fini after cr_skip_test(), so h_fini() runs here: what the
 * test started is stopped and its temp dir removed. */
#define H_SKIP(...) \
	do { \
		h.finished = true; \
		h_fini(); \
		cr_skip_test(__VA_ARGS__); \
	} while (0)

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t h_now_ms(void);
/* Polling interval inside deadline loops. */
void h_nap(void);

/* Poll cond every few ms until it is true or timeout_ms pass; evaluates to
 * the final value of cond. */
#define H_WAIT_UNTIL(cond, timeout_ms) \
	({ \
		uint64_t h_wu_end_ = h_now_ms() + (uint64_t)(timeout_ms); \
		bool h_wu_ok_; \
		while (!(h_wu_ok_ = (cond)) && h_now_ms() < h_wu_end_) \
			h_nap(); \
		h_wu_ok_; \
	})

/* A TCP port free on every address of family (AF_INET, or AF_INET6 which
 * checks both stacks), drawn at random outside the ephemeral port range so
 * no client connection can take it before handoffd binds it. */
int h_free_port(int family);

/* Can the test bind and connect on ::1? */
bool h_have_ipv6(void);

/* Write DIR/handoffd.conf: a [handoffd] section with control_socket,
 * control_mode = 0666, log_level = debug and (unless the text sets them)
 * shutdown_timeout = 2s, followed by the formatted text, which may continue
 * the [handoffd] section with more keys and then add services. */
void h_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Overwrite the config file with exactly this text (for broken configs). */
void h_config_raw(const char *text);

/* Start handoffd -f DIR/handoffd.conf and wait until its control socket
 * accepts connections. Asserts. */
struct h_proc *h_start_daemon(void);

/* Start test-backend for service with capacity and extra NULL-terminated
 * options, as cred (NULL: root). Waits for its first line: "registered ID
 * CAP" (returns it) or "refused: ..." (if expect_ok, that fails the test).
 * The tag is "b1", "b2"... in start order unless --name is among the
 * options. */
struct h_proc *h_backend(const char *service, unsigned capacity, const struct h_cred *cred, ...)
	__attribute__((sentinel));
/* Same, for tests that expect a refusal: returns once the first line came. */
struct h_proc *h_backend_try(const char *service, unsigned capacity, const struct h_cred *cred, ...)
	__attribute__((sentinel));

/* Start any program with argv; stdout to DIR/NAME.out, read into p->out, stderr to
 * DIR/NAME.log. */
struct h_proc *h_spawn(const char *name, const struct h_cred *cred, char *const argv[]);

/* Record a child the test forked itself, so teardown stops it. The child
 * should call h_child_setup() first thing. */
struct h_proc *h_track(const char *name, pid_t pid);
/* In a child forked by the test: die with the test (PR_SET_PDEATHSIG). */
void h_child_setup(pid_t parent);

/* Read what the child printed so far (non-blocking). */
void h_proc_pump(struct h_proc *p);
/* Number of stdout lines starting with prefix (pumps first). */
int h_proc_count(struct h_proc *p, const char *prefix);
/* Wait until at least n lines start with prefix. */
bool h_proc_wait_lines(struct h_proc *p, const char *prefix, int n, int timeout_ms);
/* Copy the first line starting with prefix (without newline); false if none. */
bool h_proc_line(struct h_proc *p, const char *prefix, char *buf, size_t size);
/* Reap if exited (non-blocking); true once it has exited. */
bool h_proc_exited(struct h_proc *p);
/* Wait for exit; returns the waitpid status or -1 on timeout. */
int h_proc_wait_exit(struct h_proc *p, int timeout_ms);
/* Send a signal (no-op once exited). */
void h_proc_kill(struct h_proc *p, int sig);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; returns the status. */
int h_proc_stop(struct h_proc *p, int timeout_ms);

/* Run a program to completion, collecting stdout+stderr (NUL-terminated,
 * malloc'd, caller frees) and returning the exit code (128+sig if killed,
 * -1 on timeout, after which it was killed). */
int h_run(const struct h_cred *cred, char **ret_out, int timeout_ms, char *const argv[]);

/* Run handoffctl -s DIR/control.sock ARGS... as cred; like h_run. */
int h_ctl(const struct h_cred *cred, char **ret_out, ...) __attribute__((sentinel));

/* Whole file (malloc'd, NUL-terminated; "" when missing). */
char *h_read_file(const char *path);
/* Number of lines of the daemon log containing every one of the given
 * NULL-terminated substrings. */
int h_log_count(const char *s, ...) __attribute__((sentinel));
/* Wait until the daemon log has a line with every substring. */
bool h_log_wait(int timeout_ms, const char *s, ...) __attribute__((sentinel));

/* Number of open fds of this process, or of another pid. */
int h_count_fds(pid_t pid);
/* The RLIMIT_NOFILE that leaves another process pid exactly nfree
 * descriptors to open: nfree numbers below it are free (the kernel hands out
 * the lowest free number, and none at or above the limit). Not a count of
 * open fds, so holes, and descriptors far above (valgrind's own), are
 * accounted for. Returns it, or -errno. */
int h_nofile_leaving(pid_t pid, int nfree);

/* ---- clients ---- */

struct h_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[128];
};

struct h_addr h_addr_tcp(const char *ip, int port);
/* path, or "@name" for the abstract namespace */
struct h_addr h_addr_unix(const char *path);

/* Connect (non-blocking fd, close-on-exec) within timeout_ms. src_ip, if
 * not NULL, is bound first (e.g. "127.0.0.2"). Returns fd or -errno. */
int h_connect(const struct h_addr *a, const char *src_ip, int timeout_ms);

/* Send all of s. Returns 0 or -errno. */
int h_send(int fd, const char *s);
/* Read until EOF within timeout_ms. Returns bytes read (buf NUL-terminated),
 * or -ETIMEDOUT with what came so far in buf, or -errno. */
ssize_t h_read_all(int fd, char *buf, size_t size, int timeout_ms);
/* Read until a newline or EOF within timeout_ms; like h_read_all. */
ssize_t h_read_line(int fd, char *buf, size_t size, int timeout_ms);
/* Is there something to read (or EOF) on fd within timeout_ms? */
bool h_readable(int fd, int timeout_ms);

/* connect, send "hello\n", read the answer until EOF. Returns the answer
 * length, or -errno (-ECONNREFUSED, -ETIMEDOUT...). */
ssize_t h_request(const struct h_addr *a, const char *src_ip, char *buf, size_t size, int timeout_ms);

/* What test-backend answers: "TAG pid=P conn=ID svc=S peer=A local=A
 * cred=PID/UID/GID\n" (cred=- without credentials). */
struct h_answer {
	char tag[32];
	int pid;
	uint64_t conn;
	char svc[64];
	char peer[128];
	char local[128];
	int has_cred;
	long cpid, cuid, cgid;
};

/* Parse exactly one answer line (and nothing after it). */
bool h_parse_answer(const char *text, struct h_answer *ret);

/* Many concurrent clients to one address: connect all, send "hello\n" on
 * each, read each until EOF. */
struct h_client {
	int fd;
	int err;         /* connect/IO error (-errno), 0 if none */
	bool sent;
	bool eof;
	char buf[512];
	size_t len;
};
struct h_clients {
	int n;
	struct h_client *c;
};
/* Open n connections (connect errors recorded per client). */
void h_clients_open(struct h_clients *cs, const struct h_addr *a, int n);
/* Drive all clients for up to timeout_ms or until all saw EOF; returns how
 * many saw EOF. */
int h_clients_run(struct h_clients *cs, int timeout_ms);
/* How many have a complete answer line so far (non-blocking pump). */
int h_clients_answered(struct h_clients *cs);
void h_clients_close(struct h_clients *cs);

/* ---- raw control connections (hostile-peer tests) ---- */

/* A SOCK_SEQPACKET connection to the control socket, as euid/egid if
 * cred is not NULL (the kernel records the effective ids at connect).
 * Returns fd or -errno. */
int h_raw_control(const struct h_cred *cred);
/* Wait until the peer closed fd (recv returns 0 or ECONNRESET, after
 * draining any messages). */
bool h_wait_eof(int fd, int timeout_ms);

/* Minimal message builder for proto.h's format. */
struct h_msg {
	uint8_t data[4096];
	size_t len;
};
void h_msg_begin(struct h_msg *m, unsigned type, uint32_t seq);
void h_msg_u32(struct h_msg *m, unsigned attr, uint32_t v);
void h_msg_str(struct h_msg *m, unsigned attr, const char *s);
void h_msg_bytes(struct h_msg *m, unsigned attr, const void *v, size_t len);
/* Fill in the length and nfds fields. */
void h_msg_finish(struct h_msg *m, unsigned nfds);
/* Send with optional fds (SCM_RIGHTS). Returns 0 or -errno. */
int h_send_msg(int sock, const void *buf, size_t len, const int *fds, int nfds);
/* Receive one message within timeout_ms; an fd that came with it goes to
 * *ret_fd (else -1; any further fds are closed). Returns the length, 0 at
 * EOF, -ETIMEDOUT or -errno. */
ssize_t h_recv_msg(int sock, void *buf, size_t size, int *ret_fd, int timeout_ms);
/* Find attribute attr in a received message; returns its value and length
 * in *ret_len, or NULL. */
const uint8_t *h_msg_attr(const void *msg, size_t len, unsigned attr, size_t *ret_len);
/* A raw backend (root) on its own control connection: REGISTER for
 * service with capacity, assert REGISTERED; its backend id to
 * *ret_backend_id when not NULL. Returns the control fd. */
int h_raw_register(const char *service, unsigned capacity, uint64_t *ret_backend_id);
/* Receive one DELIVER on raw (asserted, with an fd); its CONN_ID to
 * *ret_conn_id when not NULL. Returns the connection fd. */
int h_raw_delivery(int raw, uint64_t *ret_conn_id);
/* Send an ACK with these RECEIVED and DONE counts (no DONE_IDS). */
void h_raw_ack(int raw, uint32_t received, uint32_t done);

/* ---- issue 3: datagrams, other socket types, status, inetd ---- */

/* A port free for both TCP and UDP on every address of family (so one port
 * number can carry a tcp:// and a udp:// listener), drawn like
 * h_free_port(). */
int h_free_port_udp(int family);

/* Start handoffd with these arguments after the program name
 * (NULL-terminated, e.g. {"--inetd", path, NULL}) and wait until the control
 * socket at h.ctl accepts connections (set h.ctl first if the arguments
 * name another one). Asserts, like h_start_daemon(). */
struct h_proc *h_start_daemon_args(char *const args[]);

/* An address for the udp:// scheme (same as h_addr_tcp, "udp " text). */
struct h_addr h_addr_udp(const char *ip, int port);

/* A datagram socket (non-blocking, close-on-exec) of to's family, bound to
 * bind_to if not NULL (an IP address with port, or a Unix path). Returns the
 * fd or -errno. */
int h_dgram_socket(const struct h_addr *to, const struct h_addr *bind_to);
/* Send one datagram of len bytes to a. Returns 0 or -errno. */
int h_dgram_send(int fd, const struct h_addr *a, const void *buf, size_t len);
/* Wait up to timeout_ms for one datagram. Returns its length (buf
 * NUL-terminated; a datagram longer than size - 1 is cut), -ETIMEDOUT or
 * -errno. */
ssize_t h_dgram_recv(int fd, char *buf, size_t size, int timeout_ms);

/* Like h_connect (no source address) for a socket type of AF_UNIX or IP:
 * SOCK_STREAM or SOCK_SEQPACKET. Returns fd or -errno. */
int h_connect_type(const struct h_addr *a, int type, int timeout_ms);
/* Connect with effective ids cred (the kernel records them for
 * SO_PEERCRED), then switch back. Returns fd or -errno. */
int h_connect_as(const struct h_addr *a, const struct h_cred *cred, int timeout_ms);

/* `handoffctl --json status`: the numeric field of the service's object
 * (e.g. "accepted", "refused_access"), or -1 when the service or the field
 * is not there. Asserts that handoffctl succeeded. */
long long h_status_service(const char *service, const char *field);
/* The same for a backend's object, by its id. */
long long h_status_backend(uint64_t id, const char *field);

/* Parse a daytime line (RFC 867 as ctime() lays it out: "Mon Nov 23
 * 12:00:00 2026", optional "\r\n") as local time. */
bool h_parse_daytime(const char *s, time_t *ret);

/* A path to program path that cred may execute: path itself, or a copy in
 * DIR/priv when the build tree is out of reach for that uid (only for
 * programs that need no library of the build tree, such as fdcheck). */
const char *h_exec_for(const struct h_cred *cred, const char *path, char *buf, size_t size);

/* ---- issue 4: socket activation, sd_notify, upgrades ---- */

/* How h_spawn_listen() starts a program, as systemd starts a socket-activated
 * service: fds[0..nfds) become fds 3, 4, ... of the child, in that order and
 * inheritable (the test's own copies stay open: close them when done), with
 * LISTEN_FDS = nfds (or lie_count when it is > 0), LISTEN_PID = pid (0: the
 * child's own pid, as systemd sets it), LISTEN_FDNAMES = names unless NULL,
 * and LISTEN_PIDFDID = pidfdid unless NULL, or with pidfdid_self the inode
 * number of a pidfd for the child itself (what systemd sets where pidfds
 * have their own inodes). With nfds == 0 and pid == 0
 * no LISTEN_* variable is set at all. env: more NAME=VALUE entries
 * (NULL-terminated, or NULL), which replace the test's variables of the same
 * name. */
struct h_listen {
	const int *fds;
	int nfds;
	int lie_count;
	pid_t pid;
	const char *names;
	const char *pidfdid;
	bool pidfdid_self;
	char *const *env;
};
/* Like h_spawn() (root, stdout to DIR/NAME.out, stderr to DIR/NAME.log),
 * with the sockets and environment of ls. */
struct h_proc *h_spawn_listen(const char *name, char *const argv[], const struct h_listen *ls);
/* handoffd with these arguments (like h_start_daemon_args()) started that
 * way; waits until the control socket at h.ctl accepts connections. */
struct h_proc *h_start_daemon_listen(char *const args[], const struct h_listen *ls);

/* handoffd's pid as `handoffctl --json status` gives it, or -1 (no
 * assertion: for polling while an upgrade is going on). */
pid_t h_daemon_pid(void);
/* A handoffd the test did not start (the new one after an upgrade: the old
 * one's child, ours once the old one exits if the test is a child
 * subreaper, see h_subreaper()): tracked as h.daemon, its log is the daemon
 * log, teardown stops it by pid and h_finish() checks it exits 0. */
struct h_proc *h_adopt_daemon(pid_t pid);
/* Make the test process a child subreaper (PR_SET_CHILD_SUBREAPER), so the
 * processes its children leave behind become its own and can be waited
 * for. Call from the suite's .init after h_init(). */
void h_subreaper(void);
/* pid's parent according to /proc, or -1. */
pid_t h_parent_of(pid_t pid);
/* The live processes whose parent is parent (and, unless comm is NULL,
 * whose command name is comm, or that valgrind runs program comm): up to
 * max of them in ret; returns how many there are. */
int h_children(pid_t parent, const char *comm, pid_t *ret, int max);

/* A NOTIFY_SOCKET of the test's own: an AF_UNIX datagram socket (close-on-
 * exec, non-blocking, SO_PASSCRED so each message says who sent it) bound at
 * DIR/notify.sock; its path goes to path (size >= 108). Returns the fd. */
int h_notify_open(char *path, size_t size);
/* One sd_notify message: "KEY=VALUE" lines. */
struct h_notify_msg {
	char text[1024];    /* NUL-terminated */
	pid_t pid;          /* sender (SCM_CREDENTIALS), -1 if unknown */
	int nfds;           /* fds that came with it (FDSTORE=1): closed */
	uint64_t at_usec;   /* CLOCK_MONOTONIC when the test read it */
};
/* Wait up to timeout_ms for one message. Returns its length, -ETIMEDOUT or
 * -errno. */
ssize_t h_notify_recv(int fd, struct h_notify_msg *m, int timeout_ms);
/* Does the message have a line KEY=VALUE (want "KEY=VALUE": that exact
 * line; want "KEY=": any value)? If ret_value is not NULL, the value of the
 * first such line goes there (size bytes). */
bool h_notify_has(const struct h_notify_msg *m, const char *want, char *ret_value, size_t size);
/* Read messages until one has want (see h_notify_has) or timeout_ms pass;
 * false on timeout. Messages read on the way are dropped, and the last one
 * read stays in *m. */
bool h_notify_wait(int fd, const char *want, struct h_notify_msg *m, int timeout_ms);

/* Continuous client load from a child process of the test (forked, no exec,
 * dies with the test): `parallel` connections to one address in flight at
 * all times, each connecting, sending "hello\n" and reading until EOF, then
 * replaced by a new one at once, until h_load_stop(). The counters live in
 * shared memory and can be read while it runs. A connection "answered"
 * got exactly one test-backend answer line and then EOF; every other ending
 * is counted as one failure below. */
struct h_load_stats {
	uint64_t started;      /* connections attempted */
	uint64_t answered;
	uint64_t refused;      /* ECONNREFUSED at connect */
	uint64_t reset;        /* ECONNRESET/EPIPE, or EOF before a whole answer line */
	uint64_t timed_out;    /* no answer within conn_timeout_ms */
	uint64_t bad;          /* something else than one answer line */
	uint64_t other;        /* any other error */
	uint64_t in_flight;
	int last_errno;        /* of the last failure, 0 if none */
	char last_failure[160];/* what the last failure saw */
};
struct h_load {
	struct h_proc *proc;
	struct h_load_shared *sh;
};
void h_load_start(struct h_load *l, const struct h_addr *a, int parallel, int conn_timeout_ms);
/* A snapshot of the counters. */
struct h_load_stats h_load_read(const struct h_load *l);
/* Start no new connection, let those in flight finish (each has its
 * deadline), wait for the process to exit and return the final counters. */
struct h_load_stats h_load_stop(struct h_load *l);
/* Failures counted so far (everything but answered and in flight). */
uint64_t h_load_failures(const struct h_load_stats *s);

/* ---- issue 5: chaos and load ---- */

/* Free the table slot of a process that has exited and been reaped (for
 * tests that start more processes over their run than the table holds:
 * backends killed and restarted). p must not be used afterwards; its
 * output files stay in the temp dir. */
void h_proc_forget(struct h_proc *p);

/* `handoffctl --json status`: a numeric field of the daemon object (e.g.
 * "control", "nfds"), or -1. Asserts that handoffctl succeeded. */
long long h_status_daemon(const char *field);

/* VmRSS of pid in KiB (/proc/PID/status), or -1. */
long h_proc_rss_kib(pid_t pid);
/* CPU time (user + system) pid has used, in milliseconds, or -1. */
long h_proc_cpu_ms(pid_t pid);

#endif
