/* upgrade: hand the sockets over to a new handoffd. See upgrade.h. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "dispatch.h"
#include "log.h"
#include "proto.h"
#include "sdnotify.h"
#include "service.h"
#include "spawn.h"
#include "upgrade.h"

extern char **environ;

#define READY_MSG "READY"

struct upgrade {
	struct hd *hd;
	pid_t pid;
	int fd;                  /* our end of the socketpair */
	uv_poll_t poll;
	uv_timer_t timer;
	int open_handles;
	bool ready;
	bool failed;
	struct ctlconn *requester;
	uint32_t seq;
	char **envp;             /* what the new process was started with */
	char *names;
};

struct upgrade_in {
	struct hd *hd;
	int fd;
	uv_poll_t poll;
	bool closing;
};

/* ---- old side ---- */

static void reply(struct upgrade *u, enum proto_err code, const char *text)
{
	if (!u->requester)
		return;
	struct proto_buf b;
	if (code) {
		proto_begin(&b, PROTO_ERROR, u->seq);
		proto_put_u32(&b, PA_ERRCODE, code);
		proto_put_str(&b, PA_TEXT, text);
	} else {
		proto_begin(&b, PROTO_OK, u->seq);
		proto_put_u32(&b, PA_PID, (uint32_t)u->pid);
	}
	ctl_send(u->requester, &b);
	u->requester = NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct upgrade *u = h->data;
	if (--u->open_handles > 0)
		return;
	if (u->fd >= 0)
		close(u->fd);
	free(u->names);
	if (u->envp) {
		for (char **e = u->envp; *e; e++)
			if (strncmp(*e, "LISTEN_", 7) == 0)
				free(*e);
		free(u->envp);
	}
	free(u);
}

/* Close the handles; u frees itself when they are closed. */
static void upgrade_end(struct upgrade *u)
{
	struct hd *hd = u->hd;
	if (hd->upgrade == u)
		hd->upgrade = NULL;
	if (!uv_is_closing((uv_handle_t *)&u->poll))
		uv_close((uv_handle_t *)&u->poll, on_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&u->timer))
		uv_close((uv_handle_t *)&u->timer, on_handle_closed);
}

static void fail(struct upgrade *u, const char *why)
{
	if (u->failed || u->ready)
		return;
	u->failed = true;
	log_error("upgrade failed: %s; this handoffd (pid %d) keeps serving", why, (int)getpid());
	char text[256];
	snprintf(text, sizeof(text), "upgrade failed: %s", why);
	reply(u, PE_STATE, text);
	if (u->pid > 0) {
		kill(u->pid, SIGTERM);
		spawn_forget(u->hd, u->pid);
	}
	upgrade_end(u);
}

static void on_child_exit(void *data, pid_t pid, int wstatus)
{
	struct upgrade *u = data;
	char why[128];
	u->pid = 0;
	if (u->ready) {
		/* We are handing over and it died: nobody accepts now. */
		log_error("the new handoffd (pid %d) exited after taking over (status %d); this one is draining and "
		          "will exit too: restart handoffd",
		          (int)pid, WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus));
		return;
	}
	if (WIFEXITED(wstatus))
		snprintf(why, sizeof(why), "the new handoffd (pid %d) exited with status %d before it was ready", (int)pid,
		         WEXITSTATUS(wstatus));
	else
		snprintf(why, sizeof(why), "the new handoffd (pid %d) was killed by signal %d before it was ready",
		         (int)pid, WTERMSIG(wstatus));
	fail(u, why);
}

static void on_timeout(uv_timer_t *t)
{
	fail(t->data, "the new handoffd was not ready in time");
}

static void hand_over(struct upgrade *u)
{
	struct hd *hd = u->hd;
	u->ready = true;
	uv_timer_stop(&u->timer);
	log_notice("upgrade: the new handoffd (pid %d) is serving; handing over and exiting", (int)u->pid);
	reply(u, 0, NULL);
	sdnotify_mainpid(u->pid);
	/* It is the new handoffd now, not our child to report on. */
	spawn_forget(hd, u->pid);
	hd->keep_socket_files = true;
	hd->handing_over = true;
	hd_stop(hd);
}

/* Readable before READY: READY or the end; writable after: forward more. */
static void on_poll(uv_poll_t *h, int status, int events)
{
	struct upgrade *u = h->data;
	if (!u->ready) {
		char buf[16];
		ssize_t n = recv(u->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == (ssize_t)strlen(READY_MSG) && memcmp(buf, READY_MSG, (size_t)n) == 0) {
			/* May finish at once (nothing queued), closing u's handles. */
			hand_over(u);
			return;
		}
		/* EOF or garbage: the exit callback says why; stop watching. */
		uv_poll_stop(&u->poll);
		return;
	}
	(void)events;
	if (status < 0) {
		uv_poll_stop(&u->poll);
		return;
	}
	upgrade_forward_pending(u->hd);
	hd_shutdown_check(u->hd);
}

void upgrade_forward_pending(struct hd *hd)
{
	struct upgrade *u = hd->upgrade;
	if (!u || !u->ready)
		return;
	bool blocked = false;
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		struct conn *c;
		while (!blocked && (c = TAILQ_FIRST(&svc->pending)) != NULL) {
			struct proto_buf b;
			int len = dispatch_encode(c, &b);
			int rc = len < 0 ? len : proto_send(u->fd, b.data, (size_t)len, &c->fd, 1, false);
			if (rc == -EAGAIN) {
				blocked = true;
				break;
			}
			TAILQ_REMOVE(&svc->pending, c, link);
			svc->npending--;
			if (rc < 0)
				log_error("upgrade: cannot pass connection %llu to the new handoffd: %s; closing it",
				          (unsigned long long)c->id, strerror(-rc));
			conn_free(c); /* the new process has its own copy now */
		}
	}
	if (!uv_is_closing((uv_handle_t *)&u->poll))
		uv_poll_start(&u->poll, blocked ? UV_WRITABLE : 0, on_poll);
}

void upgrade_forward_pending_now(struct hd *hd)
{
	struct upgrade *u = hd->upgrade;
	if (!u || !u->ready || u->fd < 0)
		return;
	/* Blocking from here on, but never for more than 5 s per message: a
	 * new handoffd that stopped reading must not keep us forever. */
	fcntl(u->fd, F_SETFL, fcntl(u->fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(u->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		struct conn *c;
		while ((c = TAILQ_FIRST(&svc->pending)) != NULL) {
			struct proto_buf b;
			int len = dispatch_encode(c, &b);
			int rc = len < 0 ? len : proto_send(u->fd, b.data, (size_t)len, &c->fd, 1, true);
			TAILQ_REMOVE(&svc->pending, c, link);
			svc->npending--;
			if (rc < 0)
				log_error("upgrade: cannot pass connection %llu to the new handoffd: %s; closing it",
				          (unsigned long long)c->id, strerror(-rc));
			conn_free(c);
		}
	}
}

/* The names for LISTEN_FDNAMES may not contain ':'. */
static void add_name(char *buf, size_t size, size_t *off, const char *name)
{
	int n = snprintf(buf + *off, size - *off, "%s%s", *off ? ":" : "", name);
	if (n < 0 || (size_t)n >= size - *off)
		return;
	for (char *p = buf + *off + (*off ? 1 : 0); *p; p++)
		if (*p == ':')
			*p = '_';
	*off += (size_t)n;
}

int upgrade_start(struct hd *hd, struct ctlconn *requester, uint32_t seq, char *err, size_t errlen)
{
	if (hd->upgrade) {
		snprintf(err, errlen, "an upgrade is already in progress (new pid %d)", (int)hd->upgrade->pid);
		return -EBUSY;
	}
	if (hd->shutting_down) {
		snprintf(err, errlen, "handoffd is shutting down");
		return -ESHUTDOWN;
	}
	if (!hd->exe[0] || !hd->argv) {
		snprintf(err, errlen, "the path of the handoffd executable is unknown");
		return -ENOENT;
	}
	/* The new process would refuse a broken configuration; say so now. */
	struct config *nc = NULL;
	int rc = hd->config_is_inetd ? config_load_inetd(hd->config_path, &nc, err, errlen)
	                             : config_load_file(hd->config_path, &nc, err, errlen);
	config_free(nc);
	if (rc < 0)
		return -EINVAL;

	unsigned n = 0;
	struct listener *l;
	TAILQ_FOREACH(l, &hd->listeners, link)
		n++;
	if (n + 2 > SPAWN_MAX_EXTRA) {
		snprintf(err, errlen, "too many listeners to pass (%u; at most %d)", n, SPAWN_MAX_EXTRA - 2);
		return -E2BIG;
	}
	struct upgrade *u = calloc(1, sizeof(*u));
	int *fds = calloc(n + 2, sizeof(int));
	size_t names_size = (size_t)(n + 2) * (PROTO_MAX_NAME + 2) + 64;
	char *names = calloc(1, names_size);
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 4, sizeof(char *));
	int sv[2] = {-1, -1};
	if (!u || !fds || !names || !envp) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(-rc));
		goto fail;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	size_t off = 0;
	unsigned k = 0;
	TAILQ_FOREACH(l, &hd->listeners, link) {
		fds[k++] = l->fd;
		add_name(names, names_size, &off, l->svc ? l->svc->name : "unknown");
	}
	fds[k++] = hd->ctl_fd;
	add_name(names, names_size, &off, "handoffd-control");
	fds[k++] = sv[1];
	add_name(names, names_size, &off, UPGRADE_FD_NAME);

	/* Our environment, without what was passed to us, plus the new LISTEN_*. */
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[e++] = environ[i];
	char count[32], *fdnames = NULL, *pidvar = strdup("LISTEN_PID=0000000000");
	snprintf(count, sizeof(count), "LISTEN_FDS=%u", k);
	char *fdsvar = strdup(count);
	if (asprintf(&fdnames, "LISTEN_FDNAMES=%s", names) < 0)
		fdnames = NULL;
	if (!pidvar || !fdsvar || !fdnames) {
		free(pidvar);
		free(fdsvar);
		free(fdnames);
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	envp[e++] = fdsvar;
	envp[e++] = pidvar;
	envp[e++] = fdnames;
	envp[e] = NULL;

	u->hd = hd;
	u->fd = sv[0];
	u->requester = requester;
	u->seq = seq;
	u->envp = envp;
	u->names = names;
	struct spawn_req req = {
		.path = hd->exe, .argv = hd->argv, .envp = envp,
		.stdio = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO},
		.extra = fds, .nextra = (int)k, .label = "upgrade",
	};
	pid_t pid = spawn_start(hd, &req, on_child_exit, u);
	close(sv[1]);
	sv[1] = -1;
	free(fds);
	fds = NULL;
	if (pid < 0) {
		rc = (int)pid;
		snprintf(err, errlen, "cannot start %s: %s", hd->exe, strerror(-rc));
		u->fd = -1;
		goto fail;
	}
	u->pid = pid;
	uv_poll_init_socket(hd->loop, &u->poll, u->fd);
	uv_timer_init(hd->loop, &u->timer);
	u->poll.data = u->timer.data = u;
	u->open_handles = 2;
	uv_poll_start(&u->poll, UV_READABLE, on_poll);
	uv_timer_start(&u->timer, on_timeout, UPGRADE_TIMEOUT_MS, 0);
	hd->upgrade = u;
	log_notice("upgrade: started %s as pid %d with %u sockets; waiting for it to be ready", hd->exe, (int)pid, k);
	return 0;

fail:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(fds);
	if (envp) {
		for (char **x = envp; *x; x++)
			if (strncmp(*x, "LISTEN_", 7) == 0)
				free(*x);
		free(envp);
	}
	free(names);
	free(u);
	return rc;
}

void upgrade_forget_requester(struct hd *hd, struct ctlconn *cc)
{
	if (hd->upgrade && hd->upgrade->requester == cc)
		hd->upgrade->requester = NULL;
}

/* ---- new side ---- */

static void on_in_closed(uv_handle_t *h)
{
	struct upgrade_in *in = h->data;
	if (in->fd >= 0)
		close(in->fd);
	free(in);
}

static void in_end(struct upgrade_in *in)
{
	if (in->closing)
		return;
	in->closing = true;
	if (in->hd->upgrade_in == in)
		in->hd->upgrade_in = NULL;
	uv_close((uv_handle_t *)&in->poll, on_in_closed);
}

/* One connection from the old handoffd: it waits for a backend here now. */
static void import(struct hd *hd, const struct proto_msg *m, int fd)
{
	char name[PROTO_MAX_NAME + 1];
	proto_str(m, PA_SERVICE, name, sizeof(name));
	struct service *svc = service_find(hd, name);
	if (!svc) {
		log_warning("upgrade: a connection for service '%s', which this configuration lacks: closing it", name);
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->svc = svc;
	c->id = ++hd->next_conn_id;
	c->socktype = proto_has(m, PA_SOCKTYPE) ? (int)proto_u32(m, PA_SOCKTYPE) : SOCK_STREAM;
	const struct proto_val *lv = &m->attr[PA_LOCAL_ADDR], *pv = &m->attr[PA_PEER_ADDR];
	if (lv->p && lv->len <= sizeof(c->local)) {
		memcpy(&c->local, lv->p, lv->len);
		c->local_len = lv->len;
	}
	if (pv->p && pv->len <= sizeof(c->peer)) {
		memcpy(&c->peer, pv->p, pv->len);
		c->peer_len = pv->len;
	}
	if (proto_has(m, PA_PEER_PID)) {
		c->has_cred = true;
		c->cred_pid = (pid_t)proto_u32(m, PA_PEER_PID);
		c->cred_uid = proto_u32(m, PA_PEER_UID);
		c->cred_gid = proto_u32(m, PA_PEER_GID);
	}
	svc->accepted++;
	/* Admitted by the old process already: counted, not checked again. */
	c->counted = true;
	svc->live++;
	dispatch_conn(c, false);
	service_kick(svc);
}

static void on_in(uv_poll_t *h, int status, int events)
{
	struct upgrade_in *in = h->data;
	(void)events;
	for (int i = 0; i < 64 && !in->closing; i++) {
		uint8_t buf[PROTO_MAX_MSG + 1];
		int fds[PROTO_MAX_FDS];
		unsigned nfds = 0;
		ssize_t n = proto_recv(in->fd, buf, sizeof(buf), fds, PROTO_MAX_FDS, &nfds, false);
		if (n == -EAGAIN && status >= 0)
			return;
		if (n <= 0) {
			log_info("upgrade: the old handoffd has handed everything over");
			in_end(in);
			return;
		}
		struct proto_msg m;
		const char *why = "";
		if (proto_decode(buf, (size_t)n, nfds, PROTO_FROM_DAEMON, &m, &why) < 0 || m.type != PROTO_DELIVER) {
			log_warning("upgrade: unexpected message from the old handoffd (%s): ignoring the rest", why);
			proto_close_fds(fds, nfds);
			in_end(in);
			return;
		}
		import(in->hd, &m, fds[0]);
	}
}

void upgrade_adopt(struct hd *hd, int fd)
{
	struct upgrade_in *in = calloc(1, sizeof(*in));
	if (!in) {
		close(fd);
		return;
	}
	in->hd = hd;
	in->fd = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (send(fd, READY_MSG, strlen(READY_MSG), MSG_NOSIGNAL) < 0)
		log_warning("upgrade: cannot tell the old handoffd we are ready: %s", strerror(errno));
	uv_poll_init_socket(hd->loop, &in->poll, fd);
	in->poll.data = in;
	uv_poll_start(&in->poll, UV_READABLE | UV_DISCONNECT, on_in);
	hd->upgrade_in = in;
	log_notice("upgrade: took over from the old handoffd");
}

void upgrade_close(struct hd *hd)
{
	if (hd->upgrade) {
		struct upgrade *u = hd->upgrade;
		if (!u->ready)
			fail(u, "handoffd is exiting");
		else
			upgrade_end(u);
	}
	if (hd->upgrade_in)
		in_end(hd->upgrade_in);
}
