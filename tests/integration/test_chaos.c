/* Integration: faults and load (issue 5, section 2).
 *
 * - chaos: four backends under continuous client load are killed with
 *   SIGKILL and restarted at random (some take their connections in
 *   batches; now and then a SIGHUP reloads another balance mode meanwhile):
 *   every connection handoffd's listener took (connect() succeeded at the
 *   client) is answered exactly once, except the ones a killed backend held
 *   itself (see below), and none is refused;
 * - a backend that acknowledged connections and went while handoffd still
 *   had more queued for it: what it acknowledged is not delivered again;
 * - stalling backends (one that never reports a connection done, one that
 *   never acknowledges, one that never reads its control socket, one that
 *   registers and then stops): the others serve everything else meanwhile,
 *   and when the bad one goes its share comes back (its unacknowledged
 *   connections are redelivered and answered, the service's counts return
 *   to 0);
 * - 1,000 control connections opened at once and left idle, and slowloris
 *   peers on the control socket: handoffd's memory stays within a small
 *   bound per peer, its fds come back, registered backends keep serving;
 * - fd exhaustion: handoffd pauses instead of spinning, logs it once for
 *   the episode, and serves everything once fds free up;
 * - reload under load: SIGHUP twenty times in a row while clients connect
 *   continuously: nothing refused, nothing lost.
 *
 * What "exactly once" means under SIGKILL. libhandoff acknowledges a
 * connection before handoff_accept() returns it; from then on the backend
 * alone holds it (handoff-protocol(7), "Delivery"), so a backend killed
 * while serving it takes it along: that client sees its connection closed
 * with no answer, by design. Connections handoffd delivered and the backend
 * had not acknowledged, and those still queued in handoffd or in the
 * kernel's backlog, must all be served by another backend. Half of the
 * victims are stopped (SIGSTOP) just before the kill, and the test reads
 * which client connections the process holds at that moment (its socket
 * fds, copied with pidfd_getfd(), or matched in /proc/net/tcp): only those
 * may end unanswered. The other half are killed where they stand; each of
 * those may take at most its capacity of the connections in flight at that
 * moment. Every other accepted connection must get exactly one answer line,
 * carrying the unique token its client sent (test-backend --echo). The
 * client half-closes after its token, so a second backend handed the same
 * connection reads EOF and answers "req=-": a connection served twice shows
 * up as two answer lines, never as a silent hang.
 *
 * A slowloris on the control socket. The control socket is SOCK_SEQPACKET:
 * a message arrives whole or not at all, so there is no "rest of the
 * header" for handoffd to wait for. What a slow peer can do is (a) connect
 * and never complete its handshake (a REGISTER or an admin request), many
 * times over, and (b) send messages that promise more than they carry (a
 * header alone with a larger length, one byte at a time, a REGISTER split
 * over two messages). (a) must be capped per uid and reaped after
 * handshake_timeout; (b) must be refused at the first message, not
 * buffered.
 *
 * HANDOFF_STRESS=1 (make check-stress) scales every count up (1,000 kills,
 * 4,000 idle control connections, 300 reloads...); the default counts keep
 * this file to a few seconds for make check. The chaos seed is printed;
 * HANDOFF_CHAOS_SEED=N replays its choices (not its timing). Memory and CPU
 * bounds are not checked under valgrind (HANDOFF_TEST_VALGRIND). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

TestSuite(chaos, .init = h_init, .fini = h_fini);

static bool stress(void)
{
	const char *s = getenv("HANDOFF_STRESS");
	return s && *s && strcmp(s, "0") != 0;
}

/* The count for make check, or for make check-stress. */
static int scaled(int normal, int stressed)
{
	return stress() ? stressed : normal;
}

static void assert_no_failure(const struct h_load_stats *s, const char *when)
{
	cr_assert(h_load_failures(s) == 0,
	          "%s: %llu connections, %llu answered, %llu refused, %llu reset/closed early, %llu timed out, %llu bad "
	          "answers, %llu other errors; last: %s",
	          when, (unsigned long long)s->started, (unsigned long long)s->answered,
	          (unsigned long long)s->refused, (unsigned long long)s->reset, (unsigned long long)s->timed_out,
	          (unsigned long long)s->bad, (unsigned long long)s->other, s->last_failure);
}

/* Wait until the load has n more answers than it had in *since; asserts
 * that nothing failed meanwhile. */
static void wait_answers(struct h_load *load, const struct h_load_stats *since, uint64_t n, const char *when)
{
	struct h_load_stats s;
	bool ok = H_WAIT_UNTIL(((s = h_load_read(load)), s.answered >= since->answered + n || h_load_failures(&s)),
	                       H_DEADLINE_MS * 2);
	assert_no_failure(&s, when);
	cr_assert(ok, "%s: the load got %llu answers, not %llu more than %llu", when, (unsigned long long)s.answered,
	          (unsigned long long)n, (unsigned long long)since->answered);
}

/* Is pid stopped (state T in /proc/PID/stat)? */
static bool is_stopped(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *t = h_read_file(path);
	const char *p = strrchr(t, ')'); /* the command name may hold anything */
	bool stopped = p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
	free(t);
	return stopped;
}

/* Wait until pid is stopped: SIGSTOP is delivered asynchronously. */
static bool wait_stopped(pid_t pid)
{
	return H_WAIT_UNTIL(is_stopped(pid), H_DEADLINE_MS);
}

/* ---- token clients: every connection sends its own token ---- */

enum tl_outcome {
	TL_OPEN = 0, /* in flight */
	TL_ONCE,     /* exactly one answer line, with our token, then EOF */
	TL_DOUBLE,   /* more than one answer line */
	TL_WRONG,    /* one line, not an answer carrying our token */
	TL_NONE,     /* closed (EOF or reset) before a whole answer line */
	TL_REFUSED,  /* ECONNREFUSED at connect */
	TL_CONNERR,  /* any other connect error, or connect timed out */
	TL_TIMEOUT,  /* connected, no EOF within the deadline */
	TL_IOERR,    /* send failed, or another read error */
	TL_N
};

static const char *const tl_names[TL_N] = {"open",    "answered once", "answered twice", "wrong answer", "unanswered",
                                           "refused", "connect error", "timed out",      "I/O error"};

struct tl_rec {
	uint64_t start_ms, end_ms;
	uint32_t seq;
	uint16_t port;   /* the client's local port, 0 before connect */
	uint8_t outcome;
	int32_t err;
	char got[64];    /* what came, for failures */
};

struct tl_shared {
	int stop;
	uint64_t count[TL_N]; /* __atomic only */
	uint32_t nrec;        /* records used (written by the load process only) */
	uint32_t maxrec;
	struct tl_rec rec[];
};

struct tl_load {
	struct h_proc *proc;
	struct tl_shared *sh;
	size_t size;
};

enum { TL_CONNECTING = 1, TL_READING };

struct tl_slot {
	int fd;
	int state;
	uint64_t deadline;
	struct tl_rec *r;
	size_t len;
	char buf[512];
	char token[24];
};

static void tl_end(struct tl_shared *sh, struct tl_slot *s, enum tl_outcome o, int err)
{
	s->r->outcome = (uint8_t)o;
	s->r->err = err;
	s->r->end_ms = h_now_ms();
	if (o != TL_ONCE)
		snprintf(s->r->got, sizeof(s->r->got), "%.63s", s->buf);
	__atomic_fetch_add(&sh->count[o], 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&sh->count[TL_OPEN], 1, __ATOMIC_RELAXED);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = 0;
	s->len = 0;
	s->buf[0] = '\0';
}

/* What the client saw at EOF. */
static enum tl_outcome tl_judge(const struct tl_slot *s)
{
	int lines = 0;
	for (size_t i = 0; i < s->len; i++)
		lines += s->buf[i] == '\n';
	if (lines == 0)
		return TL_NONE;
	if (lines > 1)
		return TL_DOUBLE;
	if (s->buf[s->len - 1] != '\n')
		return TL_WRONG; /* a line, then more */
	char want[48], tag[32], svc[64];
	int pid;
	unsigned long long conn;
	int wl = snprintf(want, sizeof(want), " req=%s\n", s->token);
	if (s->len < (size_t)wl || strcmp(s->buf + s->len - (size_t)wl, want) != 0 ||
	    sscanf(s->buf, "%31s pid=%d conn=%llu svc=%63s", tag, &pid, &conn, svc) != 4)
		return TL_WRONG;
	return TL_ONCE;
}

/* The load process: never returns. */
static void tl_run(struct tl_shared *sh, const struct h_addr *a, int parallel, int conn_timeout_ms)
{
	struct tl_slot *sl = calloc((size_t)parallel, sizeof(*sl));
	struct pollfd *pf = calloc((size_t)parallel, sizeof(*pf));
	if (!sl || !pf)
		_exit(3);
	for (int i = 0; i < parallel; i++)
		sl[i].fd = -1;
	for (;;) {
		bool stopping = __atomic_load_n(&sh->stop, __ATOMIC_RELAXED) || sh->nrec >= sh->maxrec;
		bool busy = false;
		for (int i = 0; i < parallel; i++) {
			struct tl_slot *s = &sl[i];
			if (!s->state && !stopping && sh->nrec < sh->maxrec) {
				struct tl_rec *r = &sh->rec[sh->nrec];
				memset(r, 0, sizeof(*r));
				r->seq = sh->nrec;
				r->start_ms = h_now_ms();
				__atomic_store_n(&sh->nrec, sh->nrec + 1, __ATOMIC_RELEASE);
				__atomic_fetch_add(&sh->count[TL_OPEN], 1, __ATOMIC_RELAXED);
				s->r = r;
				snprintf(s->token, sizeof(s->token), "tok%u", (unsigned)r->seq);
				s->deadline = r->start_ms + (uint64_t)conn_timeout_ms;
				s->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
				if (s->fd < 0)
					_exit(3);
				s->state = TL_CONNECTING;
				if (connect(s->fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
					int e = errno;
					tl_end(sh, s, e == ECONNREFUSED ? TL_REFUSED : TL_CONNERR, e);
					continue;
				}
			}
			pf[i].fd = s->state ? s->fd : -1;
			pf[i].events = s->state == TL_CONNECTING ? POLLOUT : POLLIN;
			pf[i].revents = 0;
			busy |= s->state != 0;
		}
		if (stopping && !busy)
			break;
		int r = poll(pf, (nfds_t)parallel, 50);
		if (r < 0 && errno != EINTR)
			_exit(3);
		uint64_t now = h_now_ms();
		for (int i = 0; i < parallel; i++) {
			struct tl_slot *s = &sl[i];
			if (!s->state)
				continue;
			if (r > 0 && pf[i].revents && s->state == TL_CONNECTING) {
				int soerr = 0;
				socklen_t l = sizeof(soerr);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
				if (soerr) {
					tl_end(sh, s, soerr == ECONNREFUSED ? TL_REFUSED : TL_CONNERR, soerr);
					continue;
				}
				/* Accepted: the kernel completed the handshake on
				 * handoffd's listening socket. */
				struct sockaddr_in me;
				socklen_t ml = sizeof(me);
				if (getsockname(s->fd, (struct sockaddr *)&me, &ml) == 0)
					s->r->port = ntohs(me.sin_port);
				char line[32];
				int n = snprintf(line, sizeof(line), "%s\n", s->token);
				/* A few bytes always fit in an empty socket buffer. */
				if (send(s->fd, line, (size_t)n, MSG_NOSIGNAL) != n || shutdown(s->fd, SHUT_WR) < 0) {
					/* Closed before we spoke (a victim that held it
					 * died): reset at our first byte. */
					int e = errno;
					bool closed = e == EPIPE || e == ECONNRESET || e == ENOTCONN;
					tl_end(sh, s, closed ? TL_NONE : TL_IOERR, e);
					continue;
				}
				s->state = TL_READING;
			} else if (r > 0 && pf[i].revents && s->state == TL_READING) {
				ssize_t n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len - 1, MSG_DONTWAIT);
				if (n > 0) {
					s->len += (size_t)n;
					s->buf[s->len] = '\0';
					if (s->len + 1 >= sizeof(s->buf))
						tl_end(sh, s, TL_DOUBLE, 0); /* far more than one answer */
					continue;
				}
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (n < 0 && errno != ECONNRESET) {
					tl_end(sh, s, TL_IOERR, errno);
					continue;
				}
				/* EOF, or reset: judge what came before it. */
				tl_end(sh, s, tl_judge(s), n < 0 ? errno : 0);
				continue;
			}
			if (s->state && now >= s->deadline)
				tl_end(sh, s, s->state == TL_CONNECTING ? TL_CONNERR : TL_TIMEOUT, ETIMEDOUT);
		}
	}
	_exit(0);
}

static void tl_start(struct tl_load *l, const struct h_addr *a, int parallel, uint32_t maxrec, int conn_timeout_ms)
{
	l->size = sizeof(struct tl_shared) + (size_t)maxrec * sizeof(struct tl_rec);
	struct tl_shared *sh = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(sh != MAP_FAILED, "mmap: %s", strerror(errno));
	sh->maxrec = maxrec;
	struct h_addr addr = *a;
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		h_child_setup(parent);
		signal(SIGTERM, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close_range(3, ~0U, 0);
		tl_run(sh, &addr, parallel, conn_timeout_ms);
		_exit(3);
	}
	l->proc = h_track("token-load", pid);
	l->sh = sh;
}

static uint64_t tl_count(const struct tl_load *l, enum tl_outcome o)
{
	return __atomic_load_n(&l->sh->count[o], __ATOMIC_RELAXED);
}

static uint64_t tl_failed(const struct tl_load *l)
{
	uint64_t n = 0;
	for (int o = TL_DOUBLE; o < TL_N; o++)
		n += tl_count(l, (enum tl_outcome)o);
	return n;
}

/* Stop starting connections and wait for those in flight to end. */
static void tl_stop(struct tl_load *l)
{
	__atomic_store_n(&l->sh->stop, 1, __ATOMIC_RELAXED);
	int st = h_proc_wait_exit(l->proc, H_DEADLINE_MS * 6);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the token load process: status 0x%x", st);
}

static void tl_free(struct tl_load *l)
{
	munmap(l->sh, l->size);
	l->sh = NULL;
}

/* Wait until n more connections were answered once than since. (Failures
 * are judged at the end: under chaos some may be a victim's.) */
static void tl_wait_answers(struct tl_load *l, uint64_t since, uint64_t n, const char *when)
{
	bool ok = H_WAIT_UNTIL(tl_count(l, TL_ONCE) >= since + n, H_DEADLINE_MS * 2);
	cr_assert(ok, "%s: %llu answered, waited for %llu more than %llu (%llu failed so far%s)", when,
	          (unsigned long long)tl_count(l, TL_ONCE), (unsigned long long)n, (unsigned long long)since,
	          (unsigned long long)tl_failed(l),
	          __atomic_load_n(&l->sh->nrec, __ATOMIC_ACQUIRE) >= l->sh->maxrec ? "; the record table is full" : "");
}

/* ---- which client connections a process holds ---- */

/* The client port of fd number target of process pidfd, if it is a TCP
 * connection accepted on local port svc_port: a copy of the fd
 * (pidfd_getfd), asked and closed at once. Returns the port, 0 if the fd
 * is something else, -errno if it cannot be copied. */
static int client_port_of(int pidfd, int target, int svc_port)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in local, peer;
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	int port = 0;
	if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0 && local.sin_family == AF_INET &&
	    ntohs(local.sin_port) == svc_port && getpeername(fd, (struct sockaddr *)&peer, &pl) == 0)
		port = ntohs(peer.sin_port);
	close(fd);
	return port;
}

/* Ports of the clients whose connection to local port svc_port (IPv4
 * loopback) process pid (stopped) has open. Returns how many (at most max
 * kept). Reads the process's fds with pidfd_getfd() where the kernel has it,
 * else matches its socket inodes in /proc/net/tcp (slow with many sockets
 * in TIME_WAIT). */
static int held_client_ports(pid_t pid, int svc_port, uint16_t *ret, int max)
{
	unsigned long inodes[1024];
	int ni = 0, n = 0;
	char path[64];
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	bool getfd = pidfd >= 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	cr_assert(d, "%s: %s", path, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) && ni < (int)(sizeof(inodes) / sizeof(inodes[0]))) {
		char lpath[600], target[64];
		if (e->d_name[0] == '.')
			continue;
		snprintf(lpath, sizeof(lpath), "%s/%s", path, e->d_name);
		ssize_t len = readlink(lpath, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		unsigned long ino;
		if (sscanf(target, "socket:[%lu]", &ino) != 1)
			continue;
		inodes[ni++] = ino;
		if (getfd) {
			int port = client_port_of(pidfd, (int)strtol(e->d_name, NULL, 10), svc_port);
			if (port < 0) {
				getfd = false; /* ENOSYS, EPERM: fall back */
			} else if (port > 0) {
				if (n < max)
					ret[n] = (uint16_t)port;
				n++;
			}
		}
	}
	closedir(d);
	if (pidfd >= 0)
		close(pidfd);
	if (getfd)
		return n;

	n = 0;
	char *tcp = h_read_file("/proc/net/tcp");
	for (char *line = strchr(tcp, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		unsigned lport, rport;
		unsigned long ino;
		if (sscanf(line + 1, " %*d: %*x:%x %*x:%x %*x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport, &rport, &ino) != 3)
			continue;
		if ((int)lport != svc_port)
			continue;
		for (int i = 0; i < ni; i++) {
			if (inodes[i] == ino) {
				if (n < max)
					ret[n] = (uint16_t)rport;
				n++;
				break;
			}
		}
	}
	free(tcp);
	return n;
}

/* ---- 1. chaos ---- */

/* One kill: of a stopped victim, with the client ports it held; or
 * straight away, with only a budget (its capacity) of connections it may
 * have held. */
struct kill_ev {
	uint64_t from_ms, to_ms; /* around the kill (or the stop) */
	bool direct;
	pid_t pid;               /* the victim */
	int budget;              /* direct: unanswered connections it may still take */
	int nports;
	uint16_t ports[64];
};

/* Did a stopped victim hold record r's connection when it was killed? */
static bool held_by_stopped(const struct tl_rec *r, const struct kill_ev *kills, int nkills)
{
	for (int k = 0; k < nkills && r->port; k++) {
		if (kills[k].direct || kills[k].to_ms < r->start_ms || kills[k].from_ms > r->end_ms)
			continue;
		for (int i = 0; i < kills[k].nports; i++)
			if (kills[k].ports[i] == r->port)
				return true;
	}
	return false;
}

/* Unanswered connections that no stopped victim held, to be matched with
 * the direct kills in flight during their lifetime, each kill taking at
 * most its budget (a bipartite matching by augmenting paths: a greedy
 * choice could give one kill's slots to another's connections). */
struct direct_match {
	const struct tl_rec **recs;
	int nrecs;
	struct kill_ev *kills;
	int nkills;
	int *owner;      /* kill k's slot j: index into recs, or -1 (nkills * 8) */
	bool *seen;      /* kills visited in this search */
};

enum { MATCH_SLOTS = 8 }; /* >= the largest capacity the test gives */

static bool overlaps(const struct kill_ev *k, const struct tl_rec *r)
{
	return k->direct && k->to_ms >= r->start_ms && k->from_ms <= r->end_ms;
}

static bool match_try(struct direct_match *m, int ri)
{
	for (int k = 0; k < m->nkills; k++) {
		if (m->seen[k] || !overlaps(&m->kills[k], m->recs[ri]))
			continue;
		m->seen[k] = true;
		int *slot = &m->owner[k * MATCH_SLOTS];
		for (int j = 0; j < m->kills[k].budget; j++)
			if (slot[j] < 0) {
				slot[j] = ri;
				return true;
			}
		for (int j = 0; j < m->kills[k].budget; j++)
			if (match_try(m, slot[j])) {
				slot[j] = ri;
				return true;
			}
	}
	return false;
}

/* Match as many of recs as possible; unmatched ones are marked NULL in
 * recs. Returns how many were matched. */
static int match_direct(const struct tl_rec **recs, int nrecs, struct kill_ev *kills, int nkills)
{
	struct direct_match m = {recs, nrecs, kills, nkills, NULL, NULL};
	m.owner = malloc(sizeof(int) * MATCH_SLOTS * (size_t)(nkills ? nkills : 1));
	m.seen = calloc((size_t)(nkills ? nkills : 1), sizeof(bool));
	cr_assert(m.owner && m.seen);
	for (int i = 0; i < MATCH_SLOTS * nkills; i++)
		m.owner[i] = -1;
	int matched = 0;
	bool *ok = calloc((size_t)(nrecs ? nrecs : 1), sizeof(bool));
	cr_assert(ok);
	for (int ri = 0; ri < nrecs; ri++) {
		memset(m.seen, 0, sizeof(bool) * (size_t)nkills);
		if (match_try(&m, ri))
			matched++;
	}
	for (int i = 0; i < MATCH_SLOTS * nkills; i++)
		if (m.owner[i] >= 0)
			ok[m.owner[i]] = true;
	for (int ri = 0; ri < nrecs; ri++)
		if (!ok[ri])
			recs[ri] = NULL;
	free(ok);
	free(m.owner);
	free(m.seen);
	return matched;
}

/* A backend for the chaos test; one in three takes its connections in
 * batches (libhandoff's handoff_set_batch: one acknowledgement for all
 * that wait). */
static struct h_proc *chaos_backend(int capacity, unsigned *seed)
{
	char batch[16];
	snprintf(batch, sizeof(batch), "%u", 2 + rand_r(seed) % 3);
	if (rand_r(seed) % 3 == 0)
		return h_backend("chaos", (unsigned)capacity, NULL, "--echo", "--batch", batch, NULL);
	return h_backend("chaos", (unsigned)capacity, NULL, "--echo", NULL);
}

static const char *const balances[] = {"round-robin", "least-loaded", "source-hash"};

/* The chaos configuration: written whole, so that the stress run can log
 * at info level (a debug line per connection makes a log of hundreds of
 * megabytes); HANDOFF_CHAOS_LOG_LEVEL chooses another. */
static void chaos_config(int port, unsigned *seed, int generation)
{
	const char *level = getenv("HANDOFF_CHAOS_LOG_LEVEL");
	if (!level || !*level)
		level = stress() ? "info" : "debug";
	char *text = NULL;
	int n = asprintf(&text,
	                 "[handoffd]\ncontrol_socket = %s\ncontrol_mode = 0666\nlog_level = %s\nshutdown_timeout = 2s\n"
	                 "[service chaos]\nlisten = tcp://127.0.0.1:%d\nbalance = %s\n# generation %d\n",
	                 h.ctl, level, port, balances[rand_r(seed) % 3], generation);
	cr_assert(n > 0);
	h_config_raw(text);
	free(text);
}

Test(chaos, sigkill_and_restart_backends_at_random, .timeout = 240)
{
	enum { NB = 4 };
	const int kills_wanted = scaled(10, 1000);
	const int parallel = scaled(12, 32);
	unsigned seed = (unsigned)getpid() ^ (unsigned)h_now_ms();
	if (getenv("HANDOFF_CHAOS_SEED"))
		seed = (unsigned)strtoul(getenv("HANDOFF_CHAOS_SEED"), NULL, 10);
	fprintf(stderr, "chaos: seed %u (HANDOFF_CHAOS_SEED=%u replays it), %d kills, %d clients in flight\n", seed, seed,
	        kills_wanted, parallel);

	int port = h_free_port(AF_INET);
	chaos_config(port, &seed, 0);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_proc *b[NB];
	int cap[NB];
	for (int i = 0; i < NB; i++) {
		cap[i] = 2 + (int)(rand_r(&seed) % 5); /* 2..6 */
		b[i] = chaos_backend(cap[i], &seed);
	}
	long long base_nfds = h_status_daemon("nfds");

	struct tl_load load;
	tl_start(&load, &a, parallel, (uint32_t)scaled(300000, 1500000), h_ms(15000));
	tl_wait_answers(&load, 0, 30, "warm-up");

	struct kill_ev *kills = calloc((size_t)kills_wanted, sizeof(*kills));
	cr_assert(kills);
	int nkills = 0, held_total = 0, reloads = 0;
	while (nkills < kills_wanted) {
		/* A random stretch of work between events, counted in answers
		 * rather than in time. */
		uint64_t since = tl_count(&load, TL_ONCE);
		tl_wait_answers(&load, since, 1 + rand_r(&seed) % 150, "between kills");
		/* Now and then a reload too (another balance mode, maybe). */
		if (rand_r(&seed) % 5 == 0) {
			chaos_config(port, &seed, ++reloads);
			h_proc_kill(h.daemon, SIGHUP);
			cr_assert(H_WAIT_UNTIL(h_log_count("configuration reloaded", NULL) >= reloads, H_DEADLINE_MS),
			          "reload %d did not apply", reloads);
		}

		int live = 0;
		for (int i = 0; i < NB; i++)
			live += b[i] != NULL;
		/* Dead slots come back at random, and always before the last
		 * live backend would go. */
		for (int i = 0; i < NB; i++)
			if (!b[i] && (live <= 1 || rand_r(&seed) % 2 == 0)) {
				b[i] = chaos_backend(cap[i], &seed);
				live++;
			}
		int pick = (int)(rand_r(&seed) % (unsigned)live), v = -1;
		for (int i = 0; i < NB && v < 0; i++)
			if (b[i] && pick-- == 0)
				v = i;
		struct h_proc *victim = b[v];

		struct kill_ev *k = &kills[nkills++];
		k->direct = rand_r(&seed) % 2 == 0;
		k->pid = victim->pid;
		if (k->direct) {
			/* Killed where it stands. */
			k->budget = cap[v];
			k->from_ms = h_now_ms();
			cr_assert(kill(victim->pid, SIGKILL) == 0);
			k->to_ms = h_now_ms();
		} else {
			/* Stopped where it stands, looked at, then killed. */
			cr_assert(kill(victim->pid, SIGSTOP) == 0);
			cr_assert(wait_stopped(victim->pid), "backend pid %d did not stop", (int)victim->pid);
			k->from_ms = k->to_ms = h_now_ms();
			int n = held_client_ports(victim->pid, port, k->ports,
			                          (int)(sizeof(k->ports) / sizeof(k->ports[0])));
			cr_assert(n <= cap[v], "backend pid %d (capacity %d) holds %d client connections", (int)victim->pid,
			          cap[v], n);
			k->nports = n;
			held_total += n;
			cr_assert(kill(victim->pid, SIGKILL) == 0);
		}
		int st = h_proc_wait_exit(victim, H_DEADLINE_MS);
		cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "victim status 0x%x", st);
		h_proc_forget(victim);
		b[v] = NULL;
		if (rand_r(&seed) % 2 == 0)
			b[v] = chaos_backend(cap[v], &seed);
	}
	for (int i = 0; i < NB; i++)
		if (!b[i])
			b[i] = chaos_backend(cap[i], &seed);
	tl_wait_answers(&load, tl_count(&load, TL_ONCE), 30, "after the last kill");
	tl_stop(&load);

	/* Every accepted connection: exactly one answer with its own token,
	 * or held by a victim when it died. */
	struct tl_shared *sh = load.sh;
	uint64_t by[TL_N] = {0};
	int lost_held = 0, ncand = 0, shown = 0;
	const struct tl_rec **cand = calloc(sh->nrec ? sh->nrec : 1, sizeof(*cand));
	cr_assert(cand);
	for (uint32_t i = 0; i < sh->nrec; i++) {
		const struct tl_rec *r = &sh->rec[i];
		by[r->outcome]++;
		if (r->outcome == TL_NONE && held_by_stopped(r, kills, nkills))
			lost_held++;
		else if (r->outcome == TL_NONE)
			cand[ncand++] = r;
	}
	int lost_direct = match_direct(cand, ncand, kills, nkills);
	int lost_excused = lost_held + lost_direct;
	char unexcused[4096] = "";
	size_t ul = 0;
	for (uint32_t i = 0, c = 0; i < sh->nrec; i++) {
		const struct tl_rec *r = &sh->rec[i];
		bool failed = r->outcome != TL_ONCE && r->outcome != TL_NONE;
		if (r->outcome == TL_NONE && !held_by_stopped(r, kills, nkills))
			failed = !cand[c++]; /* NULL: no direct kill could have taken it */
		if (failed && shown < 8 && ul < sizeof(unexcused) - 300) {
			/* The kill nearest to its end, for the diagnosis. */
			int near = -1;
			for (int k = 0; k < nkills; k++)
				if (near < 0 || llabs((long long)kills[k].from_ms - (long long)r->end_ms) <
				                    llabs((long long)kills[near].from_ms - (long long)r->end_ms))
					near = k;
			ul += (size_t)snprintf(unexcused + ul, sizeof(unexcused) - ul,
			                       "\n  #%u port %u: %s (errno %d) after %llu ms: '%.60s'", (unsigned)r->seq,
			                       (unsigned)r->port, tl_names[r->outcome], (int)r->err,
			                       (unsigned long long)(r->end_ms - r->start_ms), r->got);
			if (near >= 0)
				ul += (size_t)snprintf(unexcused + ul, sizeof(unexcused) - ul,
				                       " (nearest: kill %d of pid %d, %s %d, %+lld ms after its start)", near + 1,
				                       (int)kills[near].pid, kills[near].direct ? "direct, capacity" : "holding",
				                       kills[near].direct ? kills[near].budget : kills[near].nports,
				                       (long long)kills[near].from_ms - (long long)r->start_ms);
			shown++;
		}
	}
	long long redelivered = h_status_service("chaos", "redelivered");
	fprintf(stderr,
	        "chaos: %u connections, %llu answered once, %d closed unanswered by a victim holding them "
	        "(%d of them with a direct kill; stopped victims held %d in all), %lld redelivered by handoffd, "
	        "%d kills, %d reloads\n",
	        (unsigned)sh->nrec, (unsigned long long)by[TL_ONCE], lost_excused, lost_direct, held_total, redelivered,
	        nkills, reloads);
	cr_assert_eq(by[TL_REFUSED], 0, "%llu connections refused", (unsigned long long)by[TL_REFUSED]);
	cr_assert_eq(by[TL_DOUBLE], 0, "%llu connections answered more than once:%s", (unsigned long long)by[TL_DOUBLE],
	             unexcused);
	cr_assert_eq(by[TL_ONCE] + (uint64_t)lost_excused, sh->nrec,
	             "%u connections: %llu answered once, %d lost with their victim; the others:%s", (unsigned)sh->nrec,
	             (unsigned long long)by[TL_ONCE], lost_excused, unexcused);
	cr_assert(lost_held <= held_total);
	free(cand);
	cr_assert_eq(nkills, kills_wanted);

	/* handoffd is left as it was: nothing pending or counted live, no fd
	 * kept from any of it (the same number of backends is registered). */
	cr_assert(H_WAIT_UNTIL(h_status_service("chaos", "live") == 0 && h_status_service("chaos", "pending") == 0,
	                       H_DEADLINE_MS),
	          "after the load: live %lld, pending %lld", h_status_service("chaos", "live"),
	          h_status_service("chaos", "pending"));
	cr_assert(H_WAIT_UNTIL(h_status_daemon("nfds") == base_nfds, H_DEADLINE_MS), "handoffd has %lld fds, had %lld",
	          h_status_daemon("nfds"), base_nfds);
	free(kills);
	tl_free(&load);
	h_finish();
}

static void raise_nofile(int n);

/* ---- 2. stalling backends ---- */

enum bad_kind {
	BAD_NO_DONE, /* acknowledges and answers, never reports a connection done */
	BAD_NO_ACK,  /* reads its DELIVERs, never acknowledges one (raw protocol) */
	BAD_NO_READ, /* registers, never reads its control socket */
	BAD_STOPPED, /* registers, then the whole process stops (SIGSTOP) */
};

/* Every client saw one answer line and EOF, and no two the same connection
 * id. Returns how many were answered by process pid. */
static int check_exactly_once(struct h_clients *cs, pid_t pid)
{
	int from_pid = 0;
	uint64_t *ids = calloc((size_t)cs->n, sizeof(*ids));
	cr_assert(ids);
	for (int i = 0; i < cs->n; i++) {
		struct h_client *c = &cs->c[i];
		struct h_answer ans;
		cr_assert(c->err == 0, "client %d: error %s", i, strerror(-c->err));
		cr_assert(c->eof, "client %d never saw EOF (got '%s')", i, c->buf);
		cr_assert(h_parse_answer(c->buf, &ans), "client %d: not exactly one answer: '%s'", i, c->buf);
		from_pid += ans.pid == pid;
		for (int j = 0; j < i; j++)
			cr_assert(ids[j] != ans.conn, "clients %d and %d both got connection %llu", j, i,
			          (unsigned long long)ans.conn);
		ids[i] = ans.conn;
	}
	free(ids);
	return from_pid;
}

static void stalling_backend(enum bad_kind kind)
{
	enum { CB = 3 };
	const int n = scaled(60, 1000);
	raise_nofile(2 * n);
	int port = h_free_port(AF_INET);
	h_config("[service st]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_proc *g1 = h_backend("st", 4, NULL, NULL);
	struct h_proc *g2 = h_backend("st", 4, NULL, NULL);
	struct h_proc *bad = NULL;
	int raw = -1;
	uint64_t bad_id = 0;
	switch (kind) {
	case BAD_NO_DONE:
		bad = h_backend("st", CB, NULL, "--no-done", NULL);
		break;
	case BAD_NO_READ:
		bad = h_backend("st", CB, NULL, "--no-read", NULL);
		break;
	case BAD_STOPPED:
		bad = h_backend("st", CB, NULL, NULL);
		cr_assert(kill(bad->pid, SIGSTOP) == 0);
		cr_assert(wait_stopped(bad->pid));
		break;
	case BAD_NO_ACK:
		raw = h_raw_register("st", CB, &bad_id);
		break;
	}
	if (bad)
		bad_id = bad->backend_id;

	/* The bad backend takes its share (CB connections) and then no more:
	 * the two others answer everything else. */
	struct h_clients cs;
	h_clients_open(&cs, &a, n);
	int first = kind == BAD_NO_DONE ? n : n - CB; /* BAD_NO_DONE answers its CB too */
	bool ok = H_WAIT_UNTIL(h_clients_answered(&cs) >= first, H_DEADLINE_MS * 3);
	cr_assert(ok, "%d of %d clients answered while the bad backend held its share (want %d)",
	          h_clients_answered(&cs), n, first);
	if (kind == BAD_NO_ACK) {
		/* It reads what it is sent, and closes its copies: handoffd
		 * holds the connections until they are acknowledged. */
		for (int i = 0; i < CB; i++) {
			uint8_t buf[4200];
			int fd = -1;
			ssize_t len = h_recv_msg(raw, buf, sizeof(buf), &fd, H_DEADLINE_MS);
			cr_assert(len >= 16 && buf[3] == PROTO_DELIVER && fd >= 0, "DELIVER %d: %zd bytes, type %d", i,
			          len, len >= 4 ? buf[3] : -1);
			close(fd);
		}
		cr_assert(!h_readable(raw, 0), "more DELIVERs than the capacity (%d)", CB);
	}
	/* (What the backends said may reach handoffd a moment after their
	 * clients saw it: wait for the counts to settle.) */
	long long want_unacked = kind == BAD_NO_DONE ? 0 : CB;
	cr_assert(H_WAIT_UNTIL(h_status_backend(bad_id, "inflight") == CB &&
	                           h_status_backend(bad_id, "unacked") == want_unacked &&
	                           h_status_service("st", "live") == CB,
	                       H_DEADLINE_MS),
	          "the bad backend: %lld in flight, %lld unacknowledged (want %d, %lld); service: %lld live",
	          h_status_backend(bad_id, "inflight"), h_status_backend(bad_id, "unacked"), CB, want_unacked,
	          h_status_service("st", "live"));
	cr_assert_eq(h_clients_answered(&cs), first, "clients held by the bad backend were answered");
	cr_assert(H_WAIT_UNTIL(h_proc_count(g1, "answered ") + h_proc_count(g2, "answered ") == n - CB, H_DEADLINE_MS),
	          "the other backends answered %d, not %d", h_proc_count(g1, "answered ") + h_proc_count(g2, "answered "),
	          n - CB);

	/* It goes: what it never acknowledged is served by the others, and
	 * what it held is released. */
	if (raw >= 0) {
		close(raw);
	} else {
		h_proc_kill(bad, SIGKILL);
		cr_assert(h_proc_wait_exit(bad, H_DEADLINE_MS) != -1);
	}
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS * 2), n, "not every client finished after the bad backend went");
	int by_bad = check_exactly_once(&cs, bad ? bad->pid : -1);
	cr_assert_eq(by_bad, kind == BAD_NO_DONE ? CB : 0);
	h_clients_close(&cs);
	cr_assert(H_WAIT_UNTIL(h_status_service("st", "live") == 0, H_DEADLINE_MS), "live %lld after the bad backend went",
	          h_status_service("st", "live"));
	cr_assert_eq(h_status_service("st", "backends"), 2);
	cr_assert_eq(h_status_service("st", "pending"), 0);
	cr_assert_eq(h_status_service("st", "redelivered"), kind == BAD_NO_DONE ? 0 : CB);
	cr_assert_eq(h_status_backend(g1->backend_id, "inflight") + h_status_backend(g2->backend_id, "inflight"), 0);

	/* And the service is whole again. */
	h_clients_open(&cs, &a, n / 2);
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS * 2), n / 2);
	check_exactly_once(&cs, -1);
	h_clients_close(&cs);
	h_finish();
}

Test(chaos, backend_that_never_reports_done, .timeout = 60)
{
	stalling_backend(BAD_NO_DONE);
}

Test(chaos, backend_that_never_acknowledges, .timeout = 60)
{
	stalling_backend(BAD_NO_ACK);
}

Test(chaos, backend_that_never_reads_its_control_socket, .timeout = 60)
{
	stalling_backend(BAD_NO_READ);
}

Test(chaos, backend_that_registers_and_stalls, .timeout = 60)
{
	stalling_backend(BAD_STOPPED);
}

/* A backend that acknowledges what it received and then goes, while
 * handoffd still has more queued for it (its socket was full): handoffd
 * finds the peer gone when it next sends (EPIPE), and must still count the
 * acknowledgement the peer sent before it went. Otherwise the connections
 * that backend took and serves are handed to another backend too. Made
 * deterministic by stopping handoffd while the raw backend reads
 * everything in its socket, acknowledges it and closes. */
Test(chaos, acknowledged_then_gone_while_handoffd_sends, .timeout = 60)
{
	enum { N = 600 };
	raise_nofile(3 * N);
	int port = h_free_port(AF_INET);
	h_config("[service ag]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	uint64_t raw_id;
	int raw = h_raw_register("ag", N, &raw_id);
	struct h_clients cs;
	h_clients_open(&cs, &a, N);
	/* Everything went to the raw backend: sent into its socket until
	 * that was full, the rest queued in handoffd. */
	cr_assert(H_WAIT_UNTIL(h_status_backend(raw_id, "unacked") == N, H_DEADLINE_MS * 2), "unacked %lld of %d",
	          h_status_backend(raw_id, "unacked"), N);
	h_proc_kill(h.daemon, SIGSTOP);
	cr_assert(wait_stopped(h.daemon->pid));

	static int fds[N];
	static uint64_t ids[N];
	int k = 0;
	uint8_t buf[4200];
	while (k < N && h_readable(raw, 0)) {
		int fd = -1;
		ssize_t n = h_recv_msg(raw, buf, sizeof(buf), &fd, 0);
		cr_assert(n >= 16 && buf[3] == PROTO_DELIVER && fd >= 0, "expected a DELIVER (%zd bytes, type %d)", n,
		          n >= 4 ? buf[3] : -1);
		size_t len = 0;
		const uint8_t *p = h_msg_attr(buf, (size_t)n, PA_CONN_ID, &len);
		cr_assert(p && len == 8);
		uint64_t id = 0;
		for (int i = 7; i >= 0; i--)
			id = id << 8 | p[i];
		ids[k] = id;
		fds[k++] = fd;
	}
	if (k == N) {
		h_proc_kill(h.daemon, SIGCONT);
		H_SKIP("the kernel took all %d DELIVERs in the socket: cannot make handoffd queue any", N);
	}
	struct h_msg m;
	h_msg_begin(&m, PROTO_ACK, 0);
	h_msg_u32(&m, PA_RECEIVED, (uint32_t)k);
	h_msg_u32(&m, PA_DONE, 0);
	h_msg_finish(&m, 0);
	cr_assert(h_send_msg(raw, m.data, m.len, NULL, 0) == 0);
	close(raw); /* nothing unread: handoffd's end sees a hang-up, not a reset */
	h_proc_kill(h.daemon, SIGCONT);

	/* The acknowledged ones are the raw backend's; only the rest wait for
	 * another backend. */
	cr_assert(H_WAIT_UNTIL(h_status_service("ag", "backends") == 0, H_DEADLINE_MS));
	long long pending = h_status_service("ag", "pending");
	cr_assert_eq(pending, N - k,
	             "%lld connections wait for a backend, but the backend that went had acknowledged %d of %d: "
	             "its acknowledgement was not counted",
	             pending, k, N);

	/* Served: the acknowledged ones by "us", the rest by a new backend. */
	h_clients_run(&cs, 0);
	for (int i = 0; i < k; i++) {
		char line[200];
		cr_assert(h_read_line(fds[i], line, sizeof(line), H_DEADLINE_MS) > 0);
		snprintf(line, sizeof(line), "raw pid=%d conn=%llu svc=ag peer=- local=- cred=-\n", (int)getpid(),
		         (unsigned long long)ids[i]);
		cr_assert(h_send(fds[i], line) == 0);
		close(fds[i]);
	}
	struct h_proc *g = h_backend("ag", 16, NULL, NULL);
	cr_assert_eq(h_clients_run(&cs, H_DEADLINE_MS * 2), N);
	cr_assert_eq(check_exactly_once(&cs, g->pid), N - k);
	h_clients_close(&cs);
	h_finish();
}

/* ---- 3. control connections: many idle ones, slowloris ---- */

/* Bound on handoffd's memory per control peer: a ctlconn and its poll
 * handle are a few hundred bytes; a buffer per peer (a 4 KiB message
 * buffer, say, or anything that grows with what a peer sends) breaks it. */
#define KIB_PER_PEER 16

/* Make room for n more descriptors in this process (and so in handoffd,
 * started afterwards, which inherits the limit). */
static void raise_nofile(int n)
{
	struct rlimit rl;
	cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	rlim_t need = (rlim_t)n + 256;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		H_SKIP("RLIMIT_NOFILE hard limit %llu is below the %llu this test needs", (unsigned long long)rl.rlim_max,
		       (unsigned long long)need);
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = need;
	cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
}

Test(chaos, thousand_idle_control_connections, .timeout = 120)
{
	const int nctl = scaled(1000, 4000);
	raise_nofile(nctl);
	int port = h_free_port(AF_INET);
	h_config("max_control = %d\nmax_control_per_uid = %d\nhandshake_timeout = 600s\n"
	         "[service fl]\nlisten = tcp://127.0.0.1:%d\nallow_users = nobody\n",
	         nctl + 64, nctl + 8, port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	h_backend("fl", 4, NULL, NULL);
	h_backend("fl", 4, NULL, NULL);
	int fds_before = h_count_fds(h.daemon->pid);
	long long ctl0 = h_status_daemon("control");
	struct h_load load;
	h_load_start(&load, &a, 4, H_DEADLINE_MS);
	struct h_load_stats mark = {0};
	wait_answers(&load, &mark, 100, "warm-up");
	long rss0 = h_proc_rss_kib(h.daemon->pid);
	cr_assert(rss0 > 0);

	/* All at once, as one uid (root has no per-uid limit: use nobody). */
	struct h_cred nobody = h_nobody();
	int *fds = calloc((size_t)nctl, sizeof(*fds));
	cr_assert(fds);
	mark = h_load_read(&load);
	for (int i = 0; i < nctl; i++) {
		fds[i] = h_raw_control(&nobody);
		cr_assert(fds[i] >= 0, "control connection %d: %s", i, strerror(-fds[i]));
	}
	cr_assert(H_WAIT_UNTIL(h_status_daemon("control") == ctl0 + nctl, H_DEADLINE_MS * 2),
	          "handoffd counts %lld control connections, want %lld", h_status_daemon("control"), ctl0 + nctl);
	/* Registered backends kept serving, and still do. */
	wait_answers(&load, &mark, 100, "with the idle control connections open");
	long rss1 = h_proc_rss_kib(h.daemon->pid);
	fprintf(stderr, "idle control connections: %d, handoffd RSS %ld -> %ld KiB (%ld bytes each)\n", nctl, rss0, rss1,
	        (rss1 - rss0) * 1024 / nctl);
	if (!h_valgrind() && !h_asan()) /* memcheck's or ASan's own bookkeeping is no measure */
		cr_assert(rss1 - rss0 < (long)nctl * KIB_PER_PEER,
		          "handoffd grew by %ld KiB for %d idle control connections", rss1 - rss0, nctl);
	/* A backend can still register (of the uid that holds them all too). */
	/* (It drains when stopped: the load is still running, and what it
	 * took must be answered.) */
	struct h_proc *late = h_backend("fl", 2, &nobody, "--drain-on-sigterm", NULL);
	for (int i = 0; i < nctl; i++)
		cr_assert(!h_readable(fds[i], 0), "idle control connection %d was closed", i);
	for (int i = 0; i < nctl; i++)
		close(fds[i]);
	free(fds);
	int st = h_proc_stop(late, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the late backend: status 0x%x", st);
	cr_assert(H_WAIT_UNTIL(h_status_daemon("control") == ctl0, H_DEADLINE_MS), "%lld control connections, want %lld",
	          h_status_daemon("control"), ctl0);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "after the idle control connections");
	cr_assert_eq(s.answered, s.started);
	cr_assert(H_WAIT_UNTIL(h_count_fds(h.daemon->pid) == fds_before, H_DEADLINE_MS), "handoffd has %d fds, had %d",
	          h_count_fds(h.daemon->pid), fds_before);
	h_finish();
}

/* How a control peer ended: the ERROR code it was sent (>0), 0 for a plain
 * close, -1 if it was still open at the deadline. */
static int peer_end(int fd, int timeout_ms)
{
	uint8_t buf[4200];
	int got = 0;
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = h_now_ms();
		int extra = -1;
		ssize_t n = h_recv_msg(fd, buf, sizeof(buf), &extra, now >= end ? 0 : (int)(end - now));
		if (extra >= 0)
			close(extra);
		if (n == -ETIMEDOUT)
			return -1;
		if (n <= 0)
			return got; /* EOF, or reset */
		size_t len = 0;
		const uint8_t *p = n >= 16 && buf[3] == PROTO_ERROR ? h_msg_attr(buf, (size_t)n, PA_ERRCODE, &len) : NULL;
		if (p && len == 4)
			got = p[0] | p[1] << 8 | p[2] << 16 | p[3] << 24;
	}
}

Test(chaos, slowloris_partial_handshakes, .timeout = 120)
{
	enum { PER_UID = 64, PEERS = 200 };
	const int waves = scaled(2, 20);
	raise_nofile(PEERS);
	int port = h_free_port(AF_INET);
	h_config("max_control_per_uid = %d\nhandshake_timeout = 1s\n"
	         "[service sl]\nlisten = tcp://127.0.0.1:%d\nallow_users = nobody\n",
	         PER_UID, port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	h_backend("sl", 4, NULL, NULL);
	h_backend("sl", 4, NULL, NULL);
	int fds_before = h_count_fds(h.daemon->pid);
	long long ctl0 = h_status_daemon("control");
	struct h_load load;
	h_load_start(&load, &a, 4, H_DEADLINE_MS);
	struct h_load_stats mark = {0};
	wait_answers(&load, &mark, 100, "warm-up");
	long rss0 = h_proc_rss_kib(h.daemon->pid), rss_max = rss0;

	/* Waves of peers that connect and never say a word, all as one uid:
	 * PER_UID of them are kept (until handshake_timeout), the rest are
	 * refused at once with PE_LIMIT. */
	struct h_cred nobody = h_nobody();
	int fds[PEERS];
	for (int w = 0; w < waves; w++) {
		mark = h_load_read(&load);
		for (int i = 0; i < PEERS; i++) {
			fds[i] = h_raw_control(&nobody);
			cr_assert(fds[i] >= 0, "wave %d, peer %d: %s", w, i, strerror(-fds[i]));
		}
		long long ctl = h_status_daemon("control");
		cr_assert(ctl <= ctl0 + PER_UID, "wave %d: %lld control connections, at most %lld expected", w, ctl,
		          ctl0 + PER_UID);
		long rss = h_proc_rss_kib(h.daemon->pid);
		rss_max = rss > rss_max ? rss : rss_max;
		int limited = 0, reaped = 0;
		for (int i = 0; i < PEERS; i++) {
			int how = peer_end(fds[i], h_ms(1000) + H_DEADLINE_MS);
			cr_assert(how == 0 || how == PE_LIMIT, "wave %d, peer %d: %s", w, i,
			          how < 0 ? "never closed" : "closed with an unexpected error");
			limited += how == PE_LIMIT;
			reaped += how == 0;
			close(fds[i]);
		}
		cr_assert(reaped >= PER_UID && limited >= 1, "wave %d: %d refused at the limit, %d closed at the timeout", w,
		          limited, reaped);
		cr_assert(H_WAIT_UNTIL(h_status_daemon("control") == ctl0, H_DEADLINE_MS));
		wait_answers(&load, &mark, 20, "during the slowloris");
	}
	fprintf(stderr, "slowloris: %d waves of %d silent peers, handoffd RSS %ld KiB, at most %ld KiB\n", waves, PEERS,
	        rss0, rss_max);
	if (!h_valgrind() && !h_asan())
		cr_assert(rss_max - rss0 < (long)PEERS * KIB_PER_PEER, "handoffd grew by %ld KiB", rss_max - rss0);
	/* The uid's slots are free again. */
	struct h_proc *late = h_backend("sl", 1, &nobody, "--drain-on-sigterm", NULL);
	int st = h_proc_stop(late, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the late backend: status 0x%x", st);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "after the slowloris");
	cr_assert(H_WAIT_UNTIL(h_count_fds(h.daemon->pid) == fds_before, H_DEADLINE_MS), "handoffd has %d fds, had %d",
	          h_count_fds(h.daemon->pid), fds_before);
	h_finish();
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

Test(chaos, slowloris_messages_are_refused_at_once, .timeout = 60)
{
	enum { PEERS = 20 };
	int port = h_free_port(AF_INET);
	/* A long handshake_timeout: a peer closed within the test's deadline
	 * was refused for its message, not reaped for its silence. */
	h_config("handshake_timeout = 600s\n[service sl]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	h_backend("sl", 4, NULL, NULL);
	h_backend("sl", 4, NULL, NULL);
	int fds_before = h_count_fds(h.daemon->pid);
	struct h_load load;
	h_load_start(&load, &a, 4, H_DEADLINE_MS);
	struct h_load_stats mark = {0};
	wait_answers(&load, &mark, 50, "warm-up");
	long rss0 = h_proc_rss_kib(h.daemon->pid), rss_max = rss0;
	struct h_cred nobody = h_nobody();

	struct h_msg reg;
	h_msg_begin(&reg, PROTO_REGISTER, 1);
	h_msg_str(&reg, PA_SERVICE, "sl");
	h_msg_u32(&reg, PA_CAPACITY, 1);
	h_msg_finish(&reg, 0);
	static const char *const what[] = {
		"one byte",
		"a header alone that announces a 4096-byte message",
		"the first 10 bytes of a REGISTER (the rest to follow)",
		"a header with no attributes claiming to be a whole REGISTER",
	};
	for (int kind = 0; kind < (int)(sizeof(what) / sizeof(what[0])); kind++) {
		int fds[PEERS];
		mark = h_load_read(&load);
		for (int i = 0; i < PEERS; i++) {
			fds[i] = h_raw_control(&nobody);
			cr_assert(fds[i] >= 0, "%s: %s", what[kind], strerror(-fds[i]));
			uint8_t m[16];
			size_t len = sizeof(m);
			memcpy(m, reg.data, sizeof(m));
			switch (kind) {
			case 0:
				len = 1;
				break;
			case 1:
				put32le(m + 4, PROTO_MAX_MSG);
				break;
			case 2:
				len = 10;
				break;
			case 3:
				put32le(m + 4, 16);
				break;
			}
			cr_assert(h_send_msg(fds[i], m, len, NULL, 0) == 0);
		}
		long rss = h_proc_rss_kib(h.daemon->pid);
		rss_max = rss > rss_max ? rss : rss_max;
		for (int i = 0; i < PEERS; i++) {
			cr_assert(h_wait_eof(fds[i], H_DEADLINE_MS), "handoffd kept a peer that sent %s", what[kind]);
			/* The rest of the message, too late: nobody reads it. */
			if (kind == 2)
				h_send_msg(fds[i], reg.data + 10, reg.len - 10, NULL, 0);
			close(fds[i]);
		}
		cr_assert(!h_proc_exited(h.daemon), "handoffd died after %s", what[kind]);
		wait_answers(&load, &mark, 20, what[kind]);
	}
	if (!h_valgrind() && !h_asan())
		cr_assert(rss_max - rss0 < (long)PEERS * KIB_PER_PEER, "handoffd grew by %ld KiB", rss_max - rss0);
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "after the slow messages");
	cr_assert(H_WAIT_UNTIL(h_count_fds(h.daemon->pid) == fds_before, H_DEADLINE_MS), "handoffd has %d fds, had %d",
	          h_count_fds(h.daemon->pid), fds_before);
	h_finish();
}

/* ---- 4. fd exhaustion ---- */

Test(chaos, fd_exhaustion_logs_once_and_recovers, .timeout = 60)
{
	int port = h_free_port(AF_INET);
	h_config("[service fx]\nlisten = tcp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	/* A backend with room for many that stops: handoffd keeps every
	 * connection it sends there until it is acknowledged, one fd each. */
	struct h_proc *b = h_backend("fx", 64, NULL, NULL);
	cr_assert(kill(b->pid, SIGSTOP) == 0);
	cr_assert(wait_stopped(b->pid));
	pid_t dpid = h.daemon->pid;
	struct rlimit old, low;
	cr_assert(prlimit(dpid, RLIMIT_NOFILE, NULL, &old) == 0);
	low = old;
	low.rlim_cur = (rlim_t)h_count_fds(dpid) + 4;
	cr_assert(prlimit(dpid, RLIMIT_NOFILE, &low, NULL) == 0, "prlimit: %s", strerror(errno));

	/* A flood: clients wait in the backlog while handoffd has no fd. */
	struct h_load load;
	h_load_start(&load, &a, 20, h_ms(30000));
	cr_assert(h_log_wait(H_DEADLINE_MS, "Too many open files", NULL), "no EMFILE message in the log");
	long cpu0 = h_proc_cpu_ms(dpid);
	uint64_t t0 = h_now_ms();
	/* Several retries, all of them still out of fds. */
	cr_assert(H_WAIT_UNTIL(h_log_count("retrying accept", NULL) >= 4, H_DEADLINE_MS),
	          "handoffd did not retry accepting (%d retries logged)", h_log_count("retrying accept", NULL));
	long cpu = h_proc_cpu_ms(dpid) - cpu0;
	uint64_t wall = h_now_ms() - t0;
	struct h_load_stats s = h_load_read(&load);
	cr_assert(h_load_failures(&s) == 0, "a client failed while handoffd was out of fds: %s", s.last_failure);
	/* Paused, not spinning: a small share of a CPU while it waits. */
	if (!h_valgrind())
		cr_assert(cpu * 4 <= (long)wall + 40, "handoffd used %ld ms of CPU in %llu ms out of fds: spinning?", cpu,
		          (unsigned long long)wall);
	int said = h_log_count("Too many open files", NULL);
	cr_assert_eq(said, 1, "EMFILE logged %d times for one episode of %d retries", said,
	             h_log_count("retrying accept", NULL));

	/* fds free up: every waiting client is served, nothing lost. */
	cr_assert(prlimit(dpid, RLIMIT_NOFILE, &old, NULL) == 0);
	cr_assert(kill(b->pid, SIGCONT) == 0);
	struct h_load_stats mark = h_load_read(&load);
	wait_answers(&load, &mark, 100, "after fds freed up");
	s = h_load_stop(&load);
	assert_no_failure(&s, "fd exhaustion");
	cr_assert_eq(s.answered, s.started);
	cr_assert_eq(h_log_count("Too many open files", NULL), said, "EMFILE logged again after recovery");
	cr_assert(H_WAIT_UNTIL(h_status_service("fx", "live") == 0, H_DEADLINE_MS));
	h_finish();
}

/* ---- 5. reload under load ---- */

/* Send SIGHUP and wait until handoffd logged the n-th reload. */
static void sighup(int n)
{
	h_proc_kill(h.daemon, SIGHUP);
	bool done = H_WAIT_UNTIL(h_log_count("configuration reloaded", NULL) >= n || h_log_count("reload refused", NULL),
	                         H_DEADLINE_MS);
	cr_assert(done && h_log_count("reload refused", NULL) == 0, "reload %d did not apply", n);
}

Test(chaos, sighup_repeatedly_under_load, .timeout = 240)
{
	const int reloads = scaled(20, 300);
	unsigned seed = (unsigned)getpid();
	int port = h_free_port(AF_INET), port2 = h_free_port(AF_INET);
	/* Every reload changes something: the balance mode, a limit, and a
	 * second service whose listener comes and goes; the loaded service's
	 * listener stays. */
#define RL_EVEN "[service rl]\nlisten = tcp://127.0.0.1:%d\nbalance = round-robin\n# generation %d\n"
#define RL_ODD                                                                                                       \
	"[service rl]\nlisten = tcp://127.0.0.1:%d\nbalance = least-loaded\nmax_backends = 16\n# generation %d\n"      \
	"[service extra]\nlisten = tcp://127.0.0.1:%d\n"
	h_config(RL_EVEN, port, 0);
	h_start_daemon();
	struct h_addr a = h_addr_tcp("127.0.0.1", port);
	struct h_proc *b1 = h_backend("rl", 4, NULL, NULL);
	struct h_proc *b2 = h_backend("rl", 4, NULL, NULL);
	struct h_load load;
	h_load_start(&load, &a, 6, H_DEADLINE_MS);
	struct h_load_stats mark = {0};
	wait_answers(&load, &mark, 30, "warm-up");
	struct h_load_stats before = h_load_read(&load);
	for (int r = 1; r <= reloads; r++) {
		if (r % 2)
			h_config(RL_ODD, port, r, port2);
		else
			h_config(RL_EVEN, port, r);
		sighup(r);
		mark = h_load_read(&load);
		unsigned more = rand_r(&seed) % 6;
		if (more)
			wait_answers(&load, &mark, more, "between reloads");
	}
	mark = h_load_read(&load);
	cr_assert(mark.started > before.started + (uint64_t)reloads / 2, "few connections were made during the reloads");
	wait_answers(&load, &mark, 30, "after the reloads");
	struct h_load_stats s = h_load_stop(&load);
	assert_no_failure(&s, "reloads under load");
	cr_assert_eq(s.answered, s.started, "%llu connections, %llu answered", (unsigned long long)s.started,
	             (unsigned long long)s.answered);
	cr_assert_eq(h_log_count("configuration reloaded", NULL), reloads);
	cr_assert(!h_proc_exited(b1) && !h_proc_exited(b2), "a backend lost its registration");
	cr_assert_eq(h_status_service("rl", "backends"), 2);
	h_finish();
}
