/* spawn: fork/exec of inetd-style programs, SIGCHLD reaping, and the
 * environment of a connection. See spawn.h for the contract.
 *
 * Why fork() and not vfork()/clone(CLONE_VM): the daemon is small and
 * spawns are bounded (max_children, nowait.max), so copying its page tables
 * costs little; a child sharing the parent's memory could not even set
 * errno without corrupting the parent's, and one stray write between
 * vfork() and execve() would be a heap corruption in the daemon. The child
 * below makes only async-signal-safe calls (the process may have libuv
 * worker threads), and all signals are blocked across fork() so no parent
 * handler (libuv's signal pipe writer, say) can run in the child before its
 * dispositions are reset.
 *
 * Why not uv_spawn(): it cannot set supplementary groups and installs its
 * own SIGCHLD handling, which would fight with ours.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "spawn.h"

/* What the child reports on its error pipe before _exit(127). */
enum spawn_stage {
	STAGE_DEVNULL = 1,
	STAGE_FDS,
	STAGE_SETGROUPS,
	STAGE_SETGID,
	STAGE_SETUID,
	STAGE_CHDIR,
	STAGE_EXEC,
};

struct spawn_report {
	int32_t stage;
	int32_t err;
};

struct child;

/* The read end of a child's exec-error pipe and its poll handle. Freed in
 * the handle's close callback; detached from its child when closed. */
struct errpipe {
	uv_poll_t poll;
	int fd;
	struct child *child;
};

struct child {
	LIST_ENTRY(child) link;
	pid_t pid;
	spawn_exit_fn fn;
	void *data;
	struct errpipe *ep;  /* NULL once exec is confirmed or failure logged */
	const char *label;   /* point into strings */
	const char *path;
	char strings[];
};

struct spawner {
	struct hd *hd;
	uv_signal_t sigchld;
	LIST_HEAD(, child) children;
	unsigned nrunning;
	bool closed;         /* spawn_close() ran; freed in sigchld's close callback */
};

/* ---- the child (after fork: async-signal-safe calls only) ---- */

struct plan {
	const char *path;
	char *const *argv;
	char *const *envp;
	int ntargets;                    /* 3 + nextra */
	int src[3 + SPAWN_MAX_EXTRA];    /* -1 = /dev/null */
	int errfd;
	bool set_ids;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
	unsigned long nofile;            /* RLIMIT_NOFILE soft limit, for the close fallback */
	struct rlimit child_nofile;      /* the limit the program gets (rlim_cur 0: leave it) */
};

/* The soft RLIMIT_NOFILE handoffd started with (main.c raises its own). */
static rlim_t child_nofile_soft;

void spawn_set_child_nofile(unsigned long soft)
{
	child_nofile_soft = (rlim_t)soft;
}

static _Noreturn void child_fail(int errfd, int stage, int err)
{
	struct spawn_report r = {.stage = stage, .err = err};
	/* A pipe write of 8 bytes is atomic; if it fails there is no one to tell. */
	ssize_t w = write(errfd, &r, sizeof(r));
	(void)w;
	_exit(127);
}

/* Close fds first..last. close_range(2) through syscall() (one call, no
 * /proc needed); when the kernel has none (ENOSYS before 5.9) or a seccomp
 * filter refuses it, close one by one up to the RLIMIT_NOFILE soft limit
 * (read by the parent; handoffd never lowers it below an open fd). */
static void close_fds_from(unsigned first, unsigned last, unsigned long nofile)
{
	if (first > last)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned long)first, (unsigned long)last, 0UL) == 0)
		return;
#endif
	if (nofile > (unsigned long)last + 1)
		nofile = (unsigned long)last + 1;
	for (unsigned long fd = first; fd < nofile; fd++)
		close((int)fd);
}

static _Noreturn void child_run(struct plan *p)
{
	/* 1. Default dispositions first, then an empty mask (the parent blocked
	 * everything across fork, so nothing ran in between). */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL); /* EINVAL for libc-internal signals: fine */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* 2. Its own session: no controlling terminal, out of the daemon's group. */
	setsid();

	int n = p->ntargets;
	int errfd = p->errfd;

	/* 3. Keep the error pipe off the targets: dup2 below would replace it. */
	if (errfd < n) {
		int e = fcntl(errfd, F_DUPFD_CLOEXEC, n);
		if (e < 0)
			_exit(127);
		errfd = e;
	}

	/* 4. /dev/null for the -1 slots. */
	int devnull = -1;
	for (int i = 0; i < n; i++)
		if (p->src[i] < 0) {
			devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (devnull < 0)
				child_fail(errfd, STAGE_DEVNULL, errno);
			break;
		}

	/* 5. Every source that is itself a target number could be overwritten
	 * before it is used: copy those above the highest target first. Sources
	 * already above it are never touched by the dup2() calls. */
	int tmp[3 + SPAWN_MAX_EXTRA];
	for (int i = 0; i < n; i++) {
		int s = p->src[i] < 0 ? devnull : p->src[i];
		if (s < n) {
			/* Reuse a copy already made of the same source. */
			int j;
			for (j = 0; j < i; j++)
				if ((p->src[j] < 0 ? devnull : p->src[j]) == s)
					break;
			if (j < i) {
				tmp[i] = tmp[j];
				continue;
			}
			s = fcntl(s, F_DUPFD_CLOEXEC, n);
			if (s < 0)
				child_fail(errfd, STAGE_FDS, errno);
		}
		tmp[i] = s;
	}

	/* 6. Into place. dup2() gives the target a clear close-on-exec flag: the
	 * only place in handoffd where an fd survives exec. tmp[i] >= n > i, so
	 * dup2 never sees equal numbers (which would keep the flag). */
	for (int i = 0; i < n; i++)
		if (dup2(tmp[i], i) < 0)
			child_fail(errfd, STAGE_FDS, errno);

	/* 7. Close everything else but the error pipe (close-on-exec, so exec
	 * closes it and the parent sees EOF). */
	if (errfd > n)
		close_fds_from((unsigned)n, (unsigned)errfd - 1, p->nofile);
	close_fds_from((unsigned)errfd + 1, ~0U, p->nofile);

	/* 8. The descriptor limit handoffd itself started with: many programs
	 * still use select() and FD_SETSIZE. */
	if (p->child_nofile.rlim_cur)
		(void)setrlimit(RLIMIT_NOFILE, &p->child_nofile);

	/* 9. Identity: groups first, then gid, then uid (after which the others
	 * could no longer be changed). */
	if (p->set_ids) {
		if (setgroups((size_t)p->ngroups, p->groups) < 0)
			child_fail(errfd, STAGE_SETGROUPS, errno);
		if (setgid(p->gid) < 0)
			child_fail(errfd, STAGE_SETGID, errno);
		if (setuid(p->uid) < 0)
			child_fail(errfd, STAGE_SETUID, errno);
	}

	/* 10. Not pinning whatever directory the daemon runs in. The umask stays
	 * the daemon's, as inetd leaves it. */
	if (chdir("/") < 0)
		child_fail(errfd, STAGE_CHDIR, errno);

	/* 11. LISTEN_PID must be this process's own pid, known only now: fill
	 * in the placeholder spawn_env_listen_pid() made (our copy of the
	 * parent's memory; plain stores are async-signal-safe). */
	for (char *const *e = p->envp; e && *e; e++) {
		if (strncmp(*e, "LISTEN_PID=", 11) == 0) {
			char digits[16];
			int nd = 0;
			for (unsigned long v = (unsigned long)getpid(); v || nd == 0; v /= 10)
				digits[nd++] = (char)('0' + v % 10);
			char *d = *e + 11;
			size_t room = strlen(d);
			if ((size_t)nd <= room) {
				while (nd)
					*d++ = digits[--nd];
				*d = '\0';
			}
		}
	}

	execve(p->path, p->argv, p->envp);
	child_fail(errfd, STAGE_EXEC, errno);
}

/* ---- the parent ---- */

static const char *stage_name(int stage)
{
	switch (stage) {
	case STAGE_DEVNULL: return "opening /dev/null";
	case STAGE_FDS: return "setting up its file descriptors";
	case STAGE_SETGROUPS: return "setgroups";
	case STAGE_SETGID: return "setgid";
	case STAGE_SETUID: return "setuid";
	case STAGE_CHDIR: return "chdir /";
	default: return "an unknown step";
	}
}

static void on_errpipe_closed(uv_handle_t *h)
{
	free(h->data);
}

static void errpipe_close(struct errpipe *ep)
{
	if (ep->child)
		ep->child->ep = NULL;
	ep->child = NULL;
	/* uv_close() stops the watcher and drops the fd from epoll at once, so
	 * the fd can be closed now rather than in the callback. */
	uv_close((uv_handle_t *)&ep->poll, on_errpipe_closed);
	close(ep->fd);
	ep->fd = -1;
}

/* Read the child's report, if any. Returns true when the pipe is done with
 * (report read, EOF after a successful exec, or an error). */
static bool errpipe_read(struct errpipe *ep)
{
	struct spawn_report r;
	ssize_t got;
	do
		got = read(ep->fd, &r, sizeof(r));
	while (got < 0 && errno == EINTR);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	struct child *c = ep->child;
	if (got == (ssize_t)sizeof(r) && c) {
		if (r.stage == STAGE_EXEC)
			log_peer(LOG_LVL_ERROR, "service %s: cannot execute %s: %s", c->label, c->path, strerror(r.err));
		else
			log_peer(LOG_LVL_ERROR, "service %s: cannot execute %s: %s failed: %s", c->label, c->path,
			         stage_name(r.stage), strerror(r.err));
	} else if (got > 0 && c) {
		log_peer(LOG_LVL_ERROR, "service %s: cannot execute %s: short report from pid %d", c->label, c->path,
		         (int)c->pid);
	}
	return true;
}

static void on_errpipe(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	struct errpipe *ep = h->data;
	if (errpipe_read(ep))
		errpipe_close(ep);
}

static void child_free(struct spawner *sp, struct child *c)
{
	LIST_REMOVE(c, link);
	sp->nrunning--;
	if (c->ep)
		errpipe_close(c->ep);
	free(c);
}

static void child_log_exit(const struct child *c, int wstatus)
{
	if (WIFEXITED(wstatus)) {
		int st = WEXITSTATUS(wstatus);
		log_peer(st ? LOG_LVL_NOTICE : LOG_LVL_DEBUG, "service %s: pid %d exited with status %d", c->label,
		         (int)c->pid, st);
	} else if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		log_peer(LOG_LVL_NOTICE, "service %s: pid %d killed by signal %d (%s)%s", c->label, (int)c->pid, sig,
		         strsignal(sig), WCOREDUMP(wstatus) ? ", core dumped" : "");
	}
}

static void child_reaped(struct spawner *sp, pid_t pid, int wstatus)
{
	struct child *c;
	LIST_FOREACH(c, &sp->children, link)
		if (c->pid == pid)
			break;
	if (!c) {
		log_debug("reaped pid %d, which spawn did not start", (int)pid);
		return;
	}
	/* The report of a failed exec is in the pipe before the child exits:
	 * read it now so the failure is logged before the exit. */
	if (c->ep) {
		errpipe_read(c->ep);
		errpipe_close(c->ep);
	}
	child_log_exit(c, wstatus);
	spawn_exit_fn fn = c->fn;
	void *data = c->data;
	child_free(sp, c);
	if (fn)
		fn(data, pid, wstatus);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
	(void)signum;
	struct spawner *sp = h->data;
	/* Signals coalesce: reap until there is nothing left. */
	while (!sp->closed) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break; /* 0: children left but none exited; ECHILD: none at all */
		child_reaped(sp, pid, wstatus);
	}
}

static void on_spawner_closed(uv_handle_t *h)
{
	free(h->data);
}

int spawn_init(struct hd *hd)
{
	struct spawner *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->hd = hd;
	LIST_INIT(&sp->children);
	int rc = uv_signal_init(hd->loop, &sp->sigchld);
	if (rc < 0) {
		free(sp);
		return rc;
	}
	sp->sigchld.data = sp;
	rc = uv_signal_start(&sp->sigchld, on_sigchld, SIGCHLD);
	if (rc < 0) {
		sp->closed = true;
		uv_close((uv_handle_t *)&sp->sigchld, on_spawner_closed);
		return rc;
	}
	hd->spawner = sp;
	return 0;
}

void spawn_close(struct hd *hd)
{
	struct spawner *sp = hd->spawner;
	if (!sp)
		return;
	hd->spawner = NULL;
	sp->closed = true;
	if (sp->nrunning)
		log_info("leaving %u spawned program%s running", sp->nrunning, sp->nrunning == 1 ? "" : "s");
	while (!LIST_EMPTY(&sp->children))
		child_free(sp, LIST_FIRST(&sp->children));
	uv_close((uv_handle_t *)&sp->sigchld, on_spawner_closed);
}

unsigned spawn_running(const struct hd *hd)
{
	return hd->spawner ? hd->spawner->nrunning : 0;
}

void spawn_forget(struct hd *hd, pid_t pid)
{
	if (!hd->spawner)
		return;
	struct child *c;
	LIST_FOREACH(c, &hd->spawner->children, link)
		if (c->pid == pid) {
			c->fn = NULL;
			c->data = NULL;
			return;
		}
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int plan_make(const struct spawn_req *req, struct plan *p)
{
	if (!req->path || !req->argv || !req->envp)
		return -EINVAL;
	if (req->nextra < 0 || req->nextra > SPAWN_MAX_EXTRA || (req->nextra && !req->extra))
		return -EINVAL;
	if (req->set_ids && (req->ngroups < 0 || req->ngroups > NGROUPS_MAX || (req->ngroups && !req->groups)))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->path = req->path;
	p->argv = req->argv;
	p->envp = req->envp;
	p->ntargets = 3 + req->nextra;
	for (int i = 0; i < p->ntargets; i++) {
		int fd = i < 3 ? req->stdio[i] : req->extra[i - 3];
		if (fd < -1 || (fd == -1 && i >= 3))
			return -EINVAL;
		if (fd >= 0 && !fd_is_open(fd))
			return -EBADF;
		p->src[i] = fd;
	}
	p->set_ids = req->set_ids;
	p->uid = req->uid;
	p->gid = req->gid;
	p->groups = req->groups;
	p->ngroups = req->ngroups;
	struct rlimit rl;
	p->nofile = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur != RLIM_INFINITY)
			p->nofile = (unsigned long)rl.rlim_cur;
		if (child_nofile_soft && child_nofile_soft < rl.rlim_cur) {
			p->child_nofile.rlim_cur = child_nofile_soft;
			p->child_nofile.rlim_max = rl.rlim_max;
		}
	}
	return 0;
}

pid_t spawn_start(struct hd *hd, const struct spawn_req *req, spawn_exit_fn fn, void *data)
{
	struct spawner *sp = hd->spawner;
	if (!sp)
		return -EINVAL;
	struct plan plan;
	int rc = plan_make(req, &plan);
	if (rc < 0)
		return rc;

	const char *label = req->label ? req->label : "(unnamed)";
	size_t llen = strlen(label) + 1, plen = strlen(req->path) + 1;
	struct child *c = malloc(sizeof(*c) + llen + plen);
	struct errpipe *ep = malloc(sizeof(*ep));
	if (!c || !ep) {
		free(c);
		free(ep);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	memcpy(c->strings, label, llen);
	memcpy(c->strings + llen, req->path, plen);
	c->label = c->strings;
	c->path = c->strings + llen;
	c->fn = fn;
	c->data = data;

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		free(c);
		free(ep);
		return rc;
	}
	ep->fd = pfd[0];
	ep->child = NULL;
	rc = uv_poll_init(hd->loop, &ep->poll, ep->fd);
	if (rc < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(c);
		free(ep);
		return rc;
	}
	ep->poll.data = ep;
	plan.errfd = pfd[1];

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_run(&plan);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pfd[1]);
	if (pid < 0) {
		errpipe_close(ep);
		free(c);
		return -fork_errno;
	}

	c->pid = pid;
	LIST_INSERT_HEAD(&sp->children, c, link);
	sp->nrunning++;
	ep->child = c;
	c->ep = ep;
	rc = uv_poll_start(&ep->poll, UV_READABLE, on_errpipe);
	if (rc < 0) {
		log_warning("service %s: pid %d: cannot watch its exec status (%s); an exec failure shows only as exit 127",
		            c->label, (int)pid, uv_strerror(rc));
		errpipe_close(ep);
	}
	log_debug("service %s: started %s as pid %d", c->label, c->path, (int)pid);
	return pid;
}

/* ---- environment ---- */

int spawn_env_add(struct spawn_env *env, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (env->n >= SPAWN_ENV_MAX || nl + 1 + vl + 1 > SPAWN_ENV_BUF - env->used)
		return -ENOSPC;
	char *p = env->buf + env->used;
	memcpy(p, name, nl);
	p[nl] = '=';
	memcpy(p + nl + 1, value, vl + 1);
	env->used += nl + 1 + vl + 1;
	env->envp[env->n++] = p;
	env->envp[env->n] = NULL;
	return env->n;
}

/* IP text and port of sa (v4-mapped IPv6 shown as IPv4). Returns false when
 * sa is not a complete IPv4/IPv6 address. */
static bool ip_text(const struct sockaddr *sa, socklen_t len, char *ip, size_t iplen, unsigned *port)
{
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return false;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		*port = ntohs(in->sin_port);
		return inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen) != NULL;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		*port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen) != NULL;
		return inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen) != NULL;
	}
	return false;
}

static bool is_unix(const struct sockaddr *sa, socklen_t len)
{
	return sa && len >= (socklen_t)sizeof(sa_family_t) && sa->sa_family == AF_UNIX;
}

int spawn_env_build(struct spawn_env *ret, const char *service, int socktype, const struct sockaddr *peer,
                    socklen_t peer_len, const struct sockaddr *local, socklen_t local_len, bool has_cred, pid_t pid,
                    uid_t uid, gid_t gid)
{
	char rip[INET6_ADDRSTRLEN], lip[INET6_ADDRSTRLEN], num[24];
	unsigned rport = 0, lport = 0;
	bool rok = ip_text(peer, peer_len, rip, sizeof(rip), &rport);
	bool lok = ip_text(local, local_len, lip, sizeof(lip), &lport);
	bool unix_proto = !rok && !lok && (is_unix(peer, peer_len) || is_unix(local, local_len) || has_cred);
	int rc;

	ret->n = 0;
	ret->used = 0;
	ret->envp[0] = NULL;
#define ADD(name, value)                                \
	do {                                                \
		if ((rc = spawn_env_add(ret, name, value)) < 0) \
			goto fail;                                  \
	} while (0)
#define ADDNUM(name, fmt, value)                          \
	do {                                                  \
		snprintf(num, sizeof(num), fmt, value);           \
		ADD(name, num);                                   \
	} while (0)

	ADD("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (rok || lok)
		ADD("PROTO", socktype == SOCK_DGRAM ? "UDP" : "TCP");
	else if (unix_proto)
		ADD("PROTO", "UNIX");
	if (rok) {
		ADD("REMOTE_ADDR", rip);
		ADDNUM("REMOTE_PORT", "%u", rport);
		ADD("TCPREMOTEIP", rip);
		ADDNUM("TCPREMOTEPORT", "%u", rport);
	}
	if (lok) {
		ADD("TCPLOCALIP", lip);
		ADDNUM("TCPLOCALPORT", "%u", lport);
	}
	if (unix_proto && has_cred) {
		ADDNUM("UNIXREMOTEPID", "%ld", (long)pid);
		ADDNUM("UNIXREMOTEEUID", "%lu", (unsigned long)uid);
		ADDNUM("UNIXREMOTEEGID", "%lu", (unsigned long)gid);
	}
	ADD("HANDOFF_SERVICE", service ? service : "");
	return ret->n;
#undef ADD
#undef ADDNUM
fail:
	ret->n = 0;
	ret->used = 0;
	ret->envp[0] = NULL;
	return rc;
}
