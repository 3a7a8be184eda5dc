/* listener: bind, accept, pause/resume. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "ctl.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "service.h"

#define ACCEPT_BATCH 32 /* connections taken per wake-up, so one busy listener cannot starve the loop */

/* Create the socket file's directory if it is missing (e.g. /run/handoffd
 * after a reboot); one level only, mode 0755. */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0)
		return errno == EEXIST ? 0 : -errno;
	/* The caller may have a tight umask for the socket itself. */
	if (chmod(dir, 0755) < 0)
		return -errno;
	return 0;
}

int listener_bind_unix(int fd, const struct sockaddr *sa, socklen_t len, int type)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	if (un->sun_path[0] != '\0') {
		int rc = make_parent(un->sun_path);
		if (rc < 0)
			return rc;
	}
	if (bind(fd, sa, len) == 0)
		return 0;
	if (errno != EADDRINUSE || un->sun_path[0] == '\0')
		return -errno;

	/* A file is there. Replace it only if it is a socket nobody answers on. */
	struct stat st;
	if (lstat(un->sun_path, &st) < 0)
		return -EADDRINUSE;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* Non-blocking: a live server with a full backlog says EAGAIN at once
	 * instead of holding up the loop (this also runs on reload). */
	int probe = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return -errno;
	int rc = connect(probe, sa, len);
	int e = errno;
	close(probe);
	if (rc < 0 && (e == EACCES || e == EPERM))
		return -EACCES; /* cannot tell whether anyone answers: keep it */
	if (rc == 0 || (e != ECONNREFUSED && e != ENOENT))
		return -EADDRINUSE; /* answered, busy (EAGAIN) or of another type */
	if (unlink(un->sun_path) < 0 && errno != ENOENT)
		return -errno;
	if (bind(fd, sa, len) < 0)
		return -errno;
	return 0;
}

static void on_ready(uv_poll_t *h, int status, int events);

/* Socket options of the service that apply before bind. */
static int set_prebind(int fd, int family, const struct cfg_sockopts *o, bool dual_stack, char *err, size_t errlen,
                       const char *text)
{
	int one = 1;
#define SETOPT(level, name, val, what)                                                                          \
	do {                                                                                                       \
		int v_ = (val);                                                                                    \
		if (setsockopt(fd, level, name, &v_, sizeof(v_)) < 0) {                                            \
			int e_ = errno;                                                                            \
			snprintf(err, errlen, "%s: %s: %s", text, what, strerror(e_));                             \
			return -e_;                                                                                \
		}                                                                                                  \
	} while (0)
	if (family != AF_UNIX)
		SETOPT(SOL_SOCKET, SO_REUSEADDR, one, "SO_REUSEADDR");
	if (family == AF_INET6) {
		int v6only = o->ipv6only >= 0 ? o->ipv6only : (dual_stack ? 0 : 1);
		SETOPT(IPPROTO_IPV6, IPV6_V6ONLY, v6only, "ipv6only");
	}
	if (o->reuseport && family != AF_UNIX)
		SETOPT(SOL_SOCKET, SO_REUSEPORT, one, "reuseport");
	if (o->freebind && family == AF_INET)
		SETOPT(IPPROTO_IP, IP_FREEBIND, one, "freebind");
	if (o->freebind && family == AF_INET6)
		SETOPT(IPPROTO_IPV6, IPV6_FREEBIND, one, "freebind");
	if (o->rcvbuf)
		SETOPT(SOL_SOCKET, SO_RCVBUF, o->rcvbuf, "receive_buffer");
	if (o->sndbuf)
		SETOPT(SOL_SOCKET, SO_SNDBUF, o->sndbuf, "send_buffer");
	if (o->bind_device[0] && family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->bind_device, (socklen_t)strlen(o->bind_device)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: bind_device %s: %s", text, o->bind_device, strerror(e));
		return -e;
	}
	return 0;
}

/* Options for TCP listeners that accepted connections inherit. */
static int set_tcp(int fd, const struct cfg_sockopts *o, char *err, size_t errlen, const char *text)
{
	int one = 1;
	if (o->defer_accept)
		SETOPT(IPPROTO_TCP, TCP_DEFER_ACCEPT, (int)o->defer_accept, "defer_accept");
	if (o->nodelay)
		SETOPT(IPPROTO_TCP, TCP_NODELAY, one, "nodelay");
	if (o->keepalive)
		SETOPT(SOL_SOCKET, SO_KEEPALIVE, one, "keepalive");
	return 0;
#undef SETOPT
}

/* A bound IP socket for sa (IPv6 also taking IPv4 when dual_stack), or
 * -errno with err set. */
static int ip_bind(const struct sockaddr *sa, socklen_t len, int type, bool dual_stack, const struct cfg_sockopts *o,
                   char *err, size_t errlen, const char *text)
{
	int fd = socket(sa->sa_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: socket: %s", text, strerror(e));
		return -e;
	}
	int rc = set_prebind(fd, sa->sa_family, o, dual_stack, err, errlen, text);
	if (rc == 0 && type == SOCK_STREAM)
		rc = set_tcp(fd, o, err, errlen, text);
	if (rc == 0 && bind(fd, sa, len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: bind: %s", text, strerror(-rc));
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int listener_open(struct hd *hd, const struct cfg_service *cs, const struct cfg_listen *cl, int idx,
                  struct listener **ret, char *err, size_t errlen)
{
	const struct addr_bound *ab = &cl->bound[idx];
	int family = ab->ss.ss_family;
	int type = cl->spec.socktype ? cl->spec.socktype : SOCK_STREAM;
	int fd = -1, rc;
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->fd = -1;
	l->hd = hd;
	l->index = idx;
	l->socktype = type;
	snprintf(l->text, sizeof(l->text), "%s", cl->text);
	/* A stable name for systemd's fd store: the service and a hash of the
	 * address text and index (':' is not allowed in those names). */
	uint64_t hsh = 1469598103934665603ULL;
	for (const char *q = cl->text; *q; q++)
		hsh = (hsh ^ (uint8_t)*q) * 1099511628211ULL;
	hsh = (hsh ^ (uint64_t)idx) * 1099511628211ULL;
	snprintf(l->store_name, sizeof(l->store_name), "%s.%016llx", cs->name, (unsigned long long)hsh);

	fd = activation_claim(hd->activation, cs->name, (const struct sockaddr *)&ab->ss, ab->len, type);
	if (fd >= 0) {
		/* Passed in: bound (and for Unix, its file made) by whoever
		 * passed it; we only make sure it does not block us. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		l->adopted = true;
	} else if (family == AF_INET || family == AF_INET6) {
		fd = ip_bind((const struct sockaddr *)&ab->ss, ab->len, type, ab->dual_stack, &cs->opt, err, errlen,
		             cl->text);
		if (fd < 0 && ab->dual_stack && (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)) {
			/* A star host where the kernel has no IPv6: IPv4 any. */
			struct sockaddr_in a4 = {.sin_family = AF_INET,
			                         .sin_port = ((const struct sockaddr_in6 *)&ab->ss)->sin6_port};
			fd = ip_bind((const struct sockaddr *)&a4, sizeof(a4), type, false, &cs->opt, err, errlen,
			             cl->text);
		}
		if (fd < 0) {
			rc = fd;
			fd = -1;
			goto fail;
		}
	} else {
		fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: socket: %s", cl->text, strerror(-rc));
			goto fail;
		}
		rc = set_prebind(fd, AF_UNIX, &cs->opt, false, err, errlen, cl->text);
		if (rc < 0)
			goto fail;
		mode_t old = 0;
		if (cs->socket_mode)
			old = umask(0777); /* no window where the file has a wider mode */
		rc = listener_bind_unix(fd, (const struct sockaddr *)&ab->ss, ab->len, type);
		if (cs->socket_mode)
			umask(old);
		if (rc < 0) {
			snprintf(err, errlen, "%s: bind: %s%s", cl->text, strerror(-rc),
			         rc == -EADDRINUSE ? " (a live process is listening there)"
			         : rc == -EEXIST  ? " (the path exists and is not a socket)"
			         : rc == -EACCES  ? " (cannot check whether the socket file there is in use)"
			                          : "");
			goto fail;
		}
		const struct sockaddr_un *un = (const struct sockaddr_un *)&ab->ss;
		if (un->sun_path[0] != '\0') {
			snprintf(l->unix_path, sizeof(l->unix_path), "%s", un->sun_path);
			if (cs->socket_mode && chmod(l->unix_path, cs->socket_mode) < 0) {
				rc = -errno;
				snprintf(err, errlen, "%s: chmod: %s", cl->text, strerror(-rc));
				goto fail;
			}
			if ((cs->socket_owner != (uid_t)-1 || cs->socket_group != (gid_t)-1) &&
			    chown(l->unix_path, cs->socket_owner, cs->socket_group) < 0) {
				rc = -errno;
				snprintf(err, errlen, "%s: chown: %s", cl->text, strerror(-rc));
				goto fail;
			}
		}
	}
	if (type != SOCK_DGRAM && listen(fd, cs->backlog) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: listen: %s", cl->text, strerror(-rc));
		goto fail;
	}
	l->addr_len = sizeof(l->addr);
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addr_len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: getsockname: %s", cl->text, strerror(-rc));
		goto fail;
	}
	addr_format((struct sockaddr *)&l->addr, l->addr_len, l->display, sizeof(l->display));
	if (type == SOCK_DGRAM) {
		/* Show the scheme: "udp 127.0.0.1:53", "unix-dgram:/run/x". */
		char d[ADDR_TEXT_MAX];
		snprintf(d, sizeof(d), "%s", l->display);
		if (family == AF_UNIX)
			snprintf(l->display, sizeof(l->display), "unix-dgram:%.140s", d + 5);
		else
			snprintf(l->display, sizeof(l->display), "udp %.150s", d);
	} else if (type == SOCK_SEQPACKET) {
		char d[ADDR_TEXT_MAX];
		snprintf(d, sizeof(d), "%s", l->display);
		snprintf(l->display, sizeof(l->display), "unix-seqpacket:%.140s", d + 5);
	}
	rc = uv_poll_init_socket(hd->loop, &l->poll, fd);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", cl->text, uv_strerror(rc));
		goto fail;
	}
	l->poll.data = l;
	l->fd = fd;
	*ret = l;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	if (l->unix_path[0])
		unlink(l->unix_path);
	free(l);
	return rc;
}

void listener_reapply_file(struct listener *l, const struct cfg_service *cs)
{
	struct stat st;
	if (!l->unix_path[0] || l->adopted || lstat(l->unix_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	if (cs->socket_mode && (st.st_mode & 07777) != cs->socket_mode && chmod(l->unix_path, cs->socket_mode) < 0)
		log_warning("listener %s: socket_mode %04o: chmod: %s (the file keeps %04o)", l->display,
		            (unsigned)cs->socket_mode, strerror(errno), (unsigned)(st.st_mode & 07777));
	uid_t u = cs->socket_owner != (uid_t)-1 && cs->socket_owner != st.st_uid ? cs->socket_owner : (uid_t)-1;
	gid_t g = cs->socket_group != (gid_t)-1 && cs->socket_group != st.st_gid ? cs->socket_group : (gid_t)-1;
	if ((u != (uid_t)-1 || g != (gid_t)-1) && chown(l->unix_path, u, g) < 0)
		log_warning("listener %s: socket_owner/socket_group: chown: %s", l->display, strerror(errno));
}

void listener_update(struct listener *l)
{
	struct hd *hd = l->hd;
	bool want = l->svc && !hd->fd_starved && !hd->shutting_down && service_wants_events(l->svc, l);
	if (want == l->polling)
		return;
	if (want)
		uv_poll_start(&l->poll, UV_READABLE, on_ready);
	else
		uv_poll_stop(&l->poll);
	l->polling = want;
}

static void on_close(uv_handle_t *h)
{
	struct listener *l = h->data;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

void listener_close(struct listener *l)
{
	if (l->polling)
		uv_poll_stop(&l->poll);
	l->polling = false;
	if (l->unix_path[0] && !l->hd->keep_socket_files)
		unlink(l->unix_path);
	uv_close((uv_handle_t *)&l->poll, on_close);
}

static void on_starve_timer(uv_timer_t *t)
{
	struct hd *hd = t->data;
	struct listener *l;
	hd->fd_starved = false;
	hd->starve_retries++;
	log_debug("retrying accept after running out of file descriptors (retry %u)", hd->starve_retries);
	TAILQ_FOREACH(l, &hd->listeners, link)
		listener_update(l);
	ctl_update(hd);
}

void listener_fds_ok(struct hd *hd)
{
	if (!hd->starve_since_ms)
		return;
	log_notice("file descriptors available again: accepting after %llu ms paused (%u retries)",
	           (unsigned long long)(hd_now_ms(hd) - hd->starve_since_ms), hd->starve_retries);
	hd->starve_since_ms = 0;
}

void listener_starve(struct hd *hd, int err)
{
	struct listener *l;
	if (hd->fd_starved)
		return;
	hd->fd_starved = true;
	/* One message per episode: the retries every 250 ms are not news. */
	if (!hd->starve_since_ms) {
		hd->starve_since_ms = hd_now_ms(hd);
		hd->starve_retries = 0;
		log_error("accept: %s: pausing all listeners, retrying every 250 ms (raise RLIMIT_NOFILE or lower "
		          "capacities)",
		          strerror(err));
	}
	TAILQ_FOREACH(l, &hd->listeners, link)
		listener_update(l);
	ctl_update(hd);
	hd->starve_timer.data = hd;
	uv_timer_start(&hd->starve_timer, on_starve_timer, 250, 0);
}

static void on_ready(uv_poll_t *h, int status, int events)
{
	struct listener *l = h->data;
	struct service *svc = l->svc;
	struct hd *hd = l->hd;

	(void)events;
	if (status < 0) {
		/* libuv stopped the handle; accept4 below reports the real error. */
		log_peer(LOG_LVL_WARNING, "listener %s: poll error: %s", l->display, uv_strerror(status));
		l->polling = false;
		listener_update(l);
	}
	if (!svc)
		return;
	if (l->shared) {
		/* A datagram or listen-mode socket: a builtin reads it, or no
		 * backend has it and the service spawns or rejects. */
		service_shared_ready(svc, l);
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		/* Take a connection only when someone can have it: otherwise it
		 * stays in the kernel backlog, at no cost to us. */
		if (!service_accepting(svc)) {
			listener_update(l);
			return;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			log_error("out of memory accepting on %s", l->display);
			return;
		}
		c->peer_len = sizeof(c->peer);
		/* Blocking socket for the backend: O_NONBLOCK would be shared with
		 * its copy. Close-on-exec is per descriptor. */
		int fd = accept4(l->fd, (struct sockaddr *)&c->peer, &c->peer_len, SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			free(c);
			if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
				return;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				listener_starve(hd, e);
				return;
			}
			/* ECONNABORTED, EPROTO, network errors: that client is gone. */
			log_debug("accept on %s: %s", l->display, strerror(e));
			continue;
		}
		listener_fds_ok(hd);
		if (c->peer_len <= (socklen_t)sizeof(sa_family_t))
			c->peer_len = 0; /* unnamed Unix client: no address */
		c->fd = fd;
		c->socktype = l->socktype;
		c->id = ++hd->next_conn_id;
		c->svc = svc;
		memcpy(&c->local, &l->addr, l->addr_len);
		c->local_len = l->addr_len;
		if (l->addr.ss_family == AF_UNIX) {
			struct ucred uc;
			socklen_t ul = sizeof(uc);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
				c->has_cred = true;
				c->cred_pid = uc.pid;
				c->cred_uid = uc.uid;
				c->cred_gid = uc.gid;
			}
		}
		svc->accepted++;
		service_take_conn(svc, c);
	}
}
