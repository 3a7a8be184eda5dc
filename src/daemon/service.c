/* service: runtime services and applying a configuration to them. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "builtin.h"
#include "ctl.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "registry.h"
#include "service.h"
#include "sdnotify.h"
#include "spawn.h"

#define SHARED_BATCH 32        /* datagrams or connections rejected per wake-up */
#define REFUSAL_LOG_MS 10000   /* at most one refusal line per service per 10 s */
#define SHED_PENDING_MAX 4096  /* tcpmux hand-overs waiting for a backend */

struct service *service_find(struct hd *hd, const char *name)
{
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link)
		if (strcmp(svc->name, name) == 0)
			return svc;
	return NULL;
}

/* ---- limits ---- */

static void arm_limit_timer(struct hd *hd);

enum refusal { R_ACCESS, R_RATE, R_SOURCE, R_NOBACKEND, R_SPAWN };

/* Close a connection handoffd will not serve: counted by reason, logged at
 * most once per REFUSAL_LOG_MS per service (with how many went unlogged),
 * so a flood cannot fill the disk. */
static void refuse_note(struct service *svc, const struct sockaddr *sa, socklen_t len, bool has_cred, pid_t pid,
                        uid_t uid, enum refusal r, const char *why)
{
	uint64_t *ctr[] = {&svc->refused_access, &svc->refused_rate, &svc->refused_source, &svc->refused_nobackend,
	                   &svc->refused_spawn};
	(*ctr[r])++;
	uint64_t now = hd_now_ms(svc->hd);
	if (svc->refusal_log_ms == 0 || now - svc->refusal_log_ms >= REFUSAL_LOG_MS) {
		char peer[ADDR_TEXT_MAX];
		if (has_cred)
			snprintf(peer, sizeof(peer), "pid %d uid %u", (int)pid, (unsigned)uid);
		else
			addr_format(sa, len, peer, sizeof(peer));
		struct log_fields lf = {.service = svc->name, .peer = peer, .backend_uid = -1};
		if (svc->refusals_unlogged)
			log_with(LOG_LVL_NOTICE, &lf,
			         "service '%s': refused connection from %s: %s (%u more refused since the last message)",
			         svc->name, peer, why, svc->refusals_unlogged);
		else
			log_with(LOG_LVL_NOTICE, &lf, "service '%s': refused connection from %s: %s", svc->name, peer, why);
		svc->refusal_log_ms = now;
		svc->refusals_unlogged = 0;
	} else {
		svc->refusals_unlogged++;
	}
}

/* Close a connection handoffd will not serve: counted by reason, logged at
 * most once per REFUSAL_LOG_MS per service (with how many went unlogged),
 * so a flood cannot fill the disk. */
static void refuse_conn(struct service *svc, struct conn *c, enum refusal r, const char *why)
{
	refuse_note(svc, (const struct sockaddr *)&c->peer, c->peer_len, c->has_cred, c->cred_pid, c->cred_uid, r,
	            why);
	conn_free(c);
}

static void limit_pause(struct service *svc, uint64_t ms, const char *why)
{
	uint64_t now = hd_now_ms(svc->hd);
	if (svc->limited_until <= now)
		log_svc(LOG_LVL_NOTICE, svc->name, "service '%s': %s; not accepting for %llu ms", svc->name, why,
		        (unsigned long long)ms);
	if (now + ms > svc->limited_until)
		svc->limited_until = now + ms;
	snprintf(svc->limited_why, sizeof(svc->limited_why), "%s", why);
	arm_limit_timer(svc->hd);
}

/* A pause is over: a spawn_rate pause also refills the spawn count, like
 * inetd after its retry time. */
static void limit_expire(struct service *svc, uint64_t now)
{
	svc->limited_until = 0;
	if (svc->spawn_paused && svc->cfg) {
		svc->spawn_paused = false;
		bucket_init(&svc->spawn_bucket, &svc->cfg->spawn_rate, now);
	}
}

static bool limited(struct service *svc)
{
	if (!svc->limited_until)
		return false;
	uint64_t now = hd_now_ms(svc->hd);
	if (svc->limited_until > now)
		return true;
	limit_expire(svc, now);
	return false;
}

static void on_limit_timer(uv_timer_t *t)
{
	struct hd *hd = t->data;
	struct service *svc;
	uint64_t now = hd_now_ms(hd);
	TAILQ_FOREACH(svc, &hd->services, link) {
		if (svc->limited_until && svc->limited_until <= now) {
			limit_expire(svc, now);
			log_svc(LOG_LVL_INFO, svc->name, "service '%s': pause over, accepting again", svc->name);
			service_kick(svc);
		}
	}
	arm_limit_timer(hd);
}

static void arm_limit_timer(struct hd *hd)
{
	uint64_t now = hd_now_ms(hd), next = 0;
	struct service *svc;
	if (hd->finishing)
		return;
	TAILQ_FOREACH(svc, &hd->services, link)
		if (svc->limited_until > now && (!next || svc->limited_until < next))
			next = svc->limited_until;
	if (next)
		uv_timer_start(&hd->limit_timer, on_limit_timer, next - now, 0);
	else
		uv_timer_stop(&hd->limit_timer);
}

void service_init(struct hd *hd)
{
	uv_timer_init(hd->loop, &hd->limit_timer);
	hd->limit_timer.data = hd;
	uv_unref((uv_handle_t *)&hd->limit_timer);
}

void service_conn_closed(struct service *svc, struct conn *c)
{
	static const struct cfg_rate none;
	if (!c->counted)
		return;
	c->counted = false;
	if (svc->live)
		svc->live--;
	if (c->src) {
		if (c->src->live)
			c->src->live--;
		srctab_put(svc->sources, c->src, svc->cfg ? &svc->cfg->rate_per_source : &none, hd_now_ms(svc->hd));
		c->src = NULL;
	}
	if (svc->retiring || !svc->cfg)
		return;
	if (svc->cfg->max_connections && svc->live + 1 == svc->cfg->max_connections)
		service_kick(svc); /* room again */
}

/* ---- spawning ---- */

#define WAIT_FAIL_PAUSE_MS 10000 /* after a wait-style program could not be started */

static bool can_spawn(struct service *svc)
{
	const struct cfg_service *cs = svc->cfg;
	return cs->exec_argv && svc->nbackends == 0 && cs->on_no_backend == NOB_SPAWN &&
	       svc->nchildren < cs->max_children && !limited(svc);
}

/* spawn_rate: inetd's "too many spawns per minute" pause. */
static bool spawn_rate_ok(struct service *svc)
{
	const struct cfg_service *cs = svc->cfg;
	if (!cs->spawn_rate.count)
		return true;
	if (bucket_take(&svc->spawn_bucket, &cs->spawn_rate, hd_now_ms(svc->hd)))
		return true;
	char why[160];
	snprintf(why, sizeof(why), "more than %u programs started per %s (spawn_rate)", cs->spawn_rate.count,
	         cs->spawn_rate.per_ms == 1000 ? "second" : cs->spawn_rate.per_ms == 60000 ? "minute" : "hour");
	limit_pause(svc, cs->spawn_pause_ms, why);
	svc->spawn_paused = true;
	return false;
}

static int check_ids(struct service *svc, bool *ret_set_ids)
{
	const struct cfg_service *cs = svc->cfg;
	if (geteuid() == 0) {
		*ret_set_ids = true;
		return 0;
	}
	*ret_set_ids = false;
	if (cs->exec_uid == geteuid())
		return 0;
	/* Once per connection (nowait) or per pause (wait): rate-limited. */
	log_peer(LOG_LVL_ERROR, "service '%s': cannot start %s as uid %u: handoffd runs as uid %u", svc->name,
	         cs->exec_path, (unsigned)cs->exec_uid, (unsigned)geteuid());
	return -EPERM;
}

static void on_conn_child_exit(void *data, pid_t pid, int status)
{
	struct conn *c = data;
	struct service *svc = c->svc;
	(void)pid;
	(void)status;
	TAILQ_REMOVE(&svc->children, c, link);
	svc->nchildren--;
	c->pid = 0;
	conn_free(c); /* uncounts it */
	service_kick(svc);
}

/* inetd "nowait": one program per connection, the connection on 0, 1, 2. */
static void spawn_conn(struct service *svc, struct conn *c)
{
	const struct cfg_service *cs = svc->cfg;
	bool set_ids;
	if (!spawn_rate_ok(svc)) {
		refuse_conn(svc, c, R_SPAWN, svc->limited_why);
		return;
	}
	if (check_ids(svc, &set_ids) < 0) {
		refuse_conn(svc, c, R_SPAWN, "cannot start the program as exec_user");
		return;
	}
	/* TCPLOCALIP/TCPLOCALPORT: the connection's own address (the listener's
	 * may be a wildcard); one getsockname() per program is nothing next to
	 * the fork. */
	struct sockaddr_storage here;
	socklen_t here_len = sizeof(here);
	const struct sockaddr *local = (const struct sockaddr *)&c->local;
	socklen_t local_len = c->local_len;
	if ((local->sa_family == AF_INET || local->sa_family == AF_INET6) &&
	    getsockname(c->fd, (struct sockaddr *)&here, &here_len) == 0) {
		local = (const struct sockaddr *)&here;
		local_len = here_len;
	}
	struct spawn_env env;
	int rc = spawn_env_build(&env, svc->name, SOCK_STREAM, (const struct sockaddr *)&c->peer, c->peer_len, local,
	                         local_len, c->has_cred, c->cred_pid, c->cred_uid, c->cred_gid);
	if (rc < 0) {
		refuse_conn(svc, c, R_SPAWN, "cannot build the program's environment");
		return;
	}
	struct spawn_req req = {
		.path = cs->exec_path, .argv = cs->exec_argv, .envp = env.envp,
		.stdio = {c->fd, c->fd, c->fd},
		.set_ids = set_ids, .uid = cs->exec_uid, .gid = cs->exec_gid,
		.groups = cs->exec_groups, .ngroups = cs->nexec_groups, .label = svc->name,
	};
	if (cs->exec_systemd) {
		/* systemd Accept=yes: the connection is fd 3; stdin is /dev/null,
		 * stdout and stderr are handoffd's stderr. */
		if (spawn_env_add(&env, "LISTEN_FDS", "1") < 0 || spawn_env_listen_pid(&env) < 0 ||
		    spawn_env_add(&env, "LISTEN_FDNAMES", "connection") < 0) {
			refuse_conn(svc, c, R_SPAWN, "cannot build the program's environment");
			return;
		}
		req.stdio[0] = -1;
		req.stdio[1] = req.stdio[2] = STDERR_FILENO;
		req.extra = &c->fd;
		req.nextra = 1;
	}
	pid_t pid = spawn_start(svc->hd, &req, on_conn_child_exit, c);
	if (pid < 0) {
		log_peer(LOG_LVL_ERROR, "service '%s': cannot start %s: %s", svc->name, cs->exec_path, strerror((int)-pid));
		refuse_conn(svc, c, R_SPAWN, "the program could not be started");
		return;
	}
	/* The child has the connection; our copy goes, the record stays. */
	service_conn_delivered(c);
	close(c->fd);
	c->fd = -1;
	c->pid = pid;
	TAILQ_INSERT_TAIL(&svc->children, c, link);
	svc->nchildren++;
	svc->spawned++;
	log_debug("service '%s': connection %llu -> pid %d", svc->name, (unsigned long long)c->id, (int)pid);
}

/* inetd's wait programs expect a blocking socket (a blocking recvfrom()
 * or accept() after the first): O_NONBLOCK, which belongs to the open file
 * description and so to handoffd's copy as well, is cleared while such a
 * program holds the service's shared sockets (handoffd is not watching
 * them then) and set again when it exits. */
static void shared_set_nonblock(struct service *svc, bool on)
{
	struct listener *x;
	TAILQ_FOREACH(x, &svc->listeners, svc_link) {
		if (!x->shared || x->fd < 0)
			continue;
		int fl = fcntl(x->fd, F_GETFL);
		if (fl >= 0 && !!(fl & O_NONBLOCK) != on)
			(void)fcntl(x->fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
	}
}

static void on_wait_child_exit(void *data, pid_t pid, int status)
{
	struct service *svc = data;
	(void)pid;
	(void)status;
	shared_set_nonblock(svc, true);
	svc->wait_pid = 0;
	svc->nchildren--;
	service_kick(svc);
}

/* A wait-style program could not be started: count it and pause the
 * service (limit_pause logs why, once per pause). */
static void wait_failed(struct service *svc, const char *why)
{
	svc->refused_spawn++;
	limit_pause(svc, WAIT_FAIL_PAUSE_MS, why);
}

/* inetd "wait": the program gets the socket itself on 0, 1, 2 and handoffd
 * stops watching the service's shared sockets until it exits. */
static void spawn_wait(struct service *svc, struct listener *l)
{
	const struct cfg_service *cs = svc->cfg;
	bool set_ids;
	if (!spawn_rate_ok(svc))
		return;
	/* A failure here would fail again at once for as long as the socket
	 * stays readable: each pauses the service instead of spinning. */
	if (check_ids(svc, &set_ids) < 0) {
		wait_failed(svc, "cannot start the program as exec_user");
		return;
	}
	struct spawn_env env;
	if (spawn_env_build(&env, svc->name, l->socktype, NULL, 0, (const struct sockaddr *)&l->addr, l->addr_len,
	                    false, 0, 0, 0) < 0) {
		wait_failed(svc, "cannot build the program's environment");
		return;
	}
	struct spawn_req req = {
		.path = cs->exec_path, .argv = cs->exec_argv, .envp = env.envp,
		.stdio = {l->fd, l->fd, l->fd},
		.set_ids = set_ids, .uid = cs->exec_uid, .gid = cs->exec_gid,
		.groups = cs->exec_groups, .ngroups = cs->nexec_groups, .label = svc->name,
	};
	int fds[SPAWN_MAX_EXTRA];
	if (cs->exec_systemd) {
		/* systemd Accept=no: every shared socket of the service from fd 3,
		 * named after the service. */
		char count[16], names[SPAWN_ENV_BUF / 2];
		size_t off = 0;
		int n = 0;
		struct listener *x;
		names[0] = '\0';
		TAILQ_FOREACH(x, &svc->listeners, svc_link) {
			if (!x->shared || n == SPAWN_MAX_EXTRA)
				continue;
			int w = snprintf(names + off, sizeof(names) - off, "%s%s", n ? ":" : "", svc->name);
			if (w < 0 || (size_t)w >= sizeof(names) - off)
				break;
			off += (size_t)w;
			fds[n++] = x->fd;
		}
		snprintf(count, sizeof(count), "%d", n);
		if (spawn_env_add(&env, "LISTEN_FDS", count) < 0 || spawn_env_listen_pid(&env) < 0 ||
		    spawn_env_add(&env, "LISTEN_FDNAMES", names) < 0) {
			wait_failed(svc, "cannot build the program's environment");
			return;
		}
		req.stdio[0] = -1;
		req.stdio[1] = req.stdio[2] = STDERR_FILENO;
		req.extra = fds;
		req.nextra = n;
	}
	shared_set_nonblock(svc, false);
	pid_t pid = spawn_start(svc->hd, &req, on_wait_child_exit, svc);
	if (pid < 0) {
		shared_set_nonblock(svc, true);
		log_svc(LOG_LVL_ERROR, svc->name, "service '%s': cannot start %s: %s", svc->name, cs->exec_path,
		        strerror((int)-pid));
		wait_failed(svc, "the program could not be started");
		return;
	}
	svc->wait_pid = pid;
	svc->nchildren++;
	svc->spawned++;
	log_debug("service '%s': %s -> pid %d (wait)", svc->name, l->display, (int)pid);
}

/* ---- routing ---- */

/* Serve an admitted (counted) connection. */
static void route(struct service *svc, struct conn *c, bool front)
{
	const struct cfg_service *cs = svc->cfg;
	if (cs->builtin != BUILTIN_NONE) {
		builtin_stream_take(svc->hd, c);
		return;
	}
	if (svc->nbackends == 0 && svc->npending == 0) {
		if (cs->on_no_backend == NOB_REJECT) {
			refuse_conn(svc, c, R_NOBACKEND, "no backend registered (on_no_backend = reject)");
			return;
		}
		if (cs->on_no_backend == NOB_SPAWN && can_spawn(svc)) {
			spawn_conn(svc, c);
			return;
		}
	}
	if (!front && svc->npending >= SHED_PENDING_MAX) {
		refuse_conn(svc, c, R_NOBACKEND, "too many connections waiting for a backend");
		return;
	}
	dispatch_conn(c, front);
}

/* Why svc's access rules (allow_from/deny_from, allow_client_*) refuse
 * c, or NULL when they let it in. */
static const char *access_refusal(const struct service *svc, const struct conn *c)
{
	const struct cfg_service *cs = svc->cfg;
	if (cs->nallow_from || cs->ndeny_from) {
		enum acl_verdict v = acl_check_addr(cs, (const struct sockaddr *)&c->peer, c->peer_len);
		if (v != ACL_ALLOW)
			return v == ACL_DENIED ? "deny_from" : "not in allow_from";
	}
	if (cs->has_client_allow && c->local.ss_family == AF_UNIX) {
		gid_t groups[256];
		int ng = 0;
		socklen_t gl = sizeof(groups);
		if (c->has_cred && getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
			ng = (int)(gl / sizeof(gid_t));
		if (!c->has_cred || !acl_check_client(cs, c->cred_uid, c->cred_gid, groups, ng))
			return "client uid/groups not in allow_client_users/allow_client_groups";
	}
	return NULL;
}

bool service_access_denied(struct service *svc, const struct conn *c)
{
	const char *why = access_refusal(svc, c);
	if (why)
		refuse_note(svc, (const struct sockaddr *)&c->peer, c->peer_len, c->has_cred, c->cred_pid, c->cred_uid,
		            R_ACCESS, why);
	return why != NULL;
}

void service_take_conn(struct service *svc, struct conn *c)
{
	const struct cfg_service *cs = svc->cfg;
	uint64_t now = hd_now_ms(svc->hd);

	const char *why = access_refusal(svc, c);
	if (why) {
		refuse_conn(svc, c, R_ACCESS, why);
		return;
	}
	if (cs->max_per_source || cs->rate_per_source.count) {
		struct srckey k;
		if (!svc->sources)
			svc->sources = srctab_new(65536);
		if (svc->sources &&
		    srckey_from((const struct sockaddr *)&c->peer, c->peer_len, c->has_cred, c->cred_uid, &k) == 0) {
			struct srcent *e = srctab_get(svc->sources, &k, &cs->rate_per_source, now);
			if (!e) {
				refuse_conn(svc, c, R_SOURCE, "too many client sources tracked at once");
				return;
			}
			if (cs->max_per_source && e->live >= cs->max_per_source) {
				srctab_put(svc->sources, e, &cs->rate_per_source, now);
				refuse_conn(svc, c, R_SOURCE, "max_per_source reached");
				return;
			}
			if (cs->rate_per_source.count && !bucket_take(&e->bucket, &cs->rate_per_source, now)) {
				srctab_put(svc->sources, e, &cs->rate_per_source, now);
				refuse_conn(svc, c, R_RATE, "rate_per_source exceeded");
				return;
			}
			e->live++;
			c->src = e;
		}
	}
	if (cs->rate.count)
		bucket_take(&svc->rate_bucket, &cs->rate, now);
	c->counted = true;
	svc->live++;
	route(svc, c, false);
}

bool service_admit_datagram(struct service *svc, const struct sockaddr *sa, socklen_t len)
{
	const struct cfg_service *cs = svc->cfg;
	uint64_t now = hd_now_ms(svc->hd);
	const char *why = NULL;
	enum refusal r = R_ACCESS;

	if (cs->nallow_from || cs->ndeny_from) {
		enum acl_verdict v = acl_check_addr(cs, sa, len);
		if (v != ACL_ALLOW)
			why = v == ACL_DENIED ? "deny_from" : "not in allow_from";
	}
	if (!why && cs->rate.count && !bucket_take(&svc->rate_bucket, &cs->rate, now)) {
		why = "rate reached";
		r = R_RATE;
	}
	if (!why && cs->rate_per_source.count) {
		struct srckey k;
		if (!svc->sources)
			svc->sources = srctab_new(65536);
		if (svc->sources && srckey_from(sa, len, false, 0, &k) == 0) {
			struct srcent *e = srctab_get(svc->sources, &k, &cs->rate_per_source, now);
			if (!e || !bucket_take(&e->bucket, &cs->rate_per_source, now)) {
				why = "rate_per_source exceeded";
				r = R_RATE;
			}
			if (e)
				srctab_put(svc->sources, e, &cs->rate_per_source, now);
		}
	}
	if (!why)
		return true;
	refuse_note(svc, sa, len, false, 0, 0, r, why);
	return false;
}

bool service_accepting(struct service *svc)
{
	const struct cfg_service *cs = svc->cfg;
	if (limited(svc))
		return false;
	if (cs->max_connections && svc->live >= cs->max_connections)
		return false;
	if (cs->rate.count) {
		uint64_t now = hd_now_ms(svc->hd);
		uint64_t w = bucket_wait_ms(&svc->rate_bucket, &cs->rate, now);
		if (w) {
			limit_pause(svc, w > cs->limit_pause_ms ? w : cs->limit_pause_ms, "rate reached");
			return false;
		}
	}
	if (cs->builtin != BUILTIN_NONE)
		return true;
	if (svc->npending)
		return false;
	if (svc->nready)
		return true;
	if (svc->nbackends == 0) {
		if (cs->on_no_backend == NOB_REJECT)
			return true;
		if (cs->on_no_backend == NOB_SPAWN)
			return can_spawn(svc);
	}
	return false;
}

bool service_wants_events(struct service *svc, struct listener *l)
{
	const struct cfg_service *cs = svc->cfg;
	if (!l->shared)
		return service_accepting(svc);
	if (cs->builtin != BUILTIN_NONE)
		return true;
	if (svc->nbackends > 0 || svc->wait_pid)
		return false; /* they have the socket; handoffd costs nothing per connection */
	if (cs->on_no_backend == NOB_REJECT)
		return true;
	if (cs->on_no_backend == NOB_SPAWN)
		return can_spawn(svc);
	return false; /* wait: clients queue in the kernel until a backend registers */
}

void service_shared_ready(struct service *svc, struct listener *l)
{
	const struct cfg_service *cs = svc->cfg;
	if (cs->builtin != BUILTIN_NONE) {
		builtin_dgram_readable(l);
		return;
	}
	if (!service_wants_events(svc, l)) {
		listener_update(l);
		return;
	}
	if (cs->on_no_backend == NOB_REJECT) {
		/* Nobody to serve it: drop datagrams, close connections. */
		for (int i = 0; i < SHARED_BATCH; i++) {
			if (l->socktype == SOCK_DGRAM) {
				char buf[1];
				if (recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) < 0)
					break;
			} else {
				int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd < 0)
					break;
				close(fd);
			}
			svc->refused_nobackend++;
		}
		return;
	}
	spawn_wait(svc, l);
	struct listener *x;
	TAILQ_FOREACH(x, &svc->listeners, svc_link)
		listener_update(x);
}

int service_send_sockets(struct backend *b, bool fresh_only)
{
	struct listener *l;
	TAILQ_FOREACH(l, &b->svc->listeners, svc_link) {
		if (!l->shared || (fresh_only && !l->fresh))
			continue;
		struct proto_buf out;
		proto_begin(&out, PROTO_SOCKET, 0);
		proto_put_str(&out, PA_SERVICE, b->svc->name);
		proto_put_bytes(&out, PA_LOCAL_ADDR, &l->addr, l->addr_len);
		proto_put_u32(&out, PA_SOCKTYPE, (uint32_t)l->socktype);
		proto_put_u32(&out, PA_LISTENING, l->socktype != SOCK_DGRAM);
		int rc = ctl_send_fd(b->cc, &out, l->fd);
		if (rc < 0)
			return rc;
		log_debug("backend %llu of '%s': sent socket %s", (unsigned long long)b->id, b->svc->name, l->display);
	}
	return 0;
}

void service_mode_text(const struct service *svc, char *buf, size_t size)
{
	const struct cfg_service *cs = svc->cfg;
	if (cs->builtin != BUILTIN_NONE) {
		snprintf(buf, size, "builtin %s", config_builtin_name(cs->builtin));
		return;
	}
	bool dgram = false, stream = false;
	for (int i = 0; i < cs->nlisten; i++) {
		dgram |= cs->listen[i].spec.socktype == SOCK_DGRAM;
		stream |= cs->listen[i].spec.socktype != SOCK_DGRAM;
	}
	const char *m = !stream && dgram ? "datagram" : cs->mode == MODE_LISTEN ? "listen" : "accept";
	const char *nob = cs->on_no_backend == NOB_SPAWN ? ", spawn" : cs->on_no_backend == NOB_REJECT ? ", reject" : "";
	snprintf(buf, size, "%s%s%s%s%s", m, stream && dgram ? "+datagram" : "", nob, cs->tcpmux_name[0] ? ", tcpmux " : "",
	         cs->tcpmux_name);
}

void service_kick(struct service *svc)
{
	if (svc->retiring)
		return;
	while (svc->npending) {
		struct conn *c = TAILQ_FIRST(&svc->pending);
		if (svc->nready) {
			TAILQ_REMOVE(&svc->pending, c, link);
			svc->npending--;
			if (!dispatch_conn(c, true))
				break;
			continue;
		}
		if (svc->nbackends == 0 && svc->cfg->on_no_backend == NOB_REJECT) {
			TAILQ_REMOVE(&svc->pending, c, link);
			svc->npending--;
			refuse_conn(svc, c, R_NOBACKEND, "no backend registered (on_no_backend = reject)");
			continue;
		}
		if (can_spawn(svc)) {
			TAILQ_REMOVE(&svc->pending, c, link);
			svc->npending--;
			spawn_conn(svc, c);
			continue;
		}
		break;
	}
	bool paused = !service_accepting(svc);
	if (paused != svc->paused)
		log_debug("service '%s': %s accepting", svc->name, paused ? "pausing" : "resuming");
	svc->paused = paused;
	struct listener *l;
	TAILQ_FOREACH(l, &svc->listeners, svc_link)
		listener_update(l);
}

static struct listener *find_listener(struct hd *hd, const char *text, int index)
{
	struct listener *l;
	TAILQ_FOREACH(l, &hd->listeners, link)
		if (l->index == index && strcmp(l->text, text) == 0)
			return l;
	return NULL;
}

struct placed {
	struct listener *l;
	const char *svc_name;
	bool fresh;
};

static void service_retire(struct service *svc)
{
	struct hd *hd = svc->hd;
	struct backend *b;
	unsigned nb = 0;

	svc->retiring = true;
	/* Backends first: what they had not acknowledged comes back to pending. */
	while ((b = TAILQ_FIRST(&svc->backends)) != NULL) {
		char text[160];
		snprintf(text, sizeof(text), "service '%s' was removed from handoffd's configuration", svc->name);
		registry_drop_backend(b, PE_NO_SERVICE, text, "service removed");
		nb++;
	}
	struct conn *c;
	unsigned nc = 0;
	while ((c = TAILQ_FIRST(&svc->pending)) != NULL) {
		TAILQ_REMOVE(&svc->pending, c, link);
		conn_free(c);
		nc++;
	}
	builtin_service_gone(hd, svc);
	/* Running programs keep running (as with inetd); forget their records. */
	while ((c = TAILQ_FIRST(&svc->children)) != NULL) {
		TAILQ_REMOVE(&svc->children, c, link);
		spawn_forget(hd, c->pid);
		c->counted = false;
		c->src = NULL;
		conn_free(c);
	}
	if (svc->wait_pid)
		spawn_forget(hd, svc->wait_pid);
	srctab_free(svc->sources);
	if (nb || nc)
		log_svc(LOG_LVL_NOTICE, svc->name,
		        "service '%s' removed: dropped %u backend%s, closed %u waiting connection%s", svc->name, nb,
		        nb == 1 ? "" : "s", nc, nc == 1 ? "" : "s");
	TAILQ_REMOVE(&hd->services, svc, link);
	free(svc);
}

int service_apply(struct hd *hd, struct config *nc, char *err, size_t errlen)
{
	struct listener *l, *lnext;
	size_t total = 0, n = 0;
	int rc = 0;

	for (size_t i = 0; i < nc->nservices; i++)
		for (int j = 0; j < nc->services[i].nlisten; j++)
			total += (size_t)nc->services[i].listen[j].nbound;
	struct placed *pl = calloc(total ? total : 1, sizeof(*pl));
	if (!pl) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}

	/* 1. Find or open every listener of the new config. Nothing running
	 *    changes until all of them exist. */
	TAILQ_FOREACH(l, &hd->listeners, link)
		l->mark = false;
	for (size_t i = 0; i < nc->nservices; i++) {
		const struct cfg_service *cs = &nc->services[i];
		for (int j = 0; j < cs->nlisten; j++) {
			const struct cfg_listen *cl = &cs->listen[j];
			for (int k = 0; k < cl->nbound; k++) {
				l = find_listener(hd, cl->text, k);
				if (l && !l->mark) {
					l->mark = true;
					pl[n++] = (struct placed){l, cs->name, false};
					continue;
				}
				size_t off = (size_t)snprintf(err, errlen, "%s:%d: ", nc->file, cl->line);
				if (off >= errlen)
					off = 0;
				rc = listener_open(hd, cs, cl, k, &l, err + off, errlen - off);
				if (rc < 0)
					goto fail;
				pl[n++] = (struct placed){l, cs->name, true};
			}
		}
	}

	/* 2. Commit: services. */
	struct service *svc, *snext;
	TAILQ_FOREACH(svc, &hd->services, link)
		svc->mark = false;
	for (size_t i = 0; i < nc->nservices; i++) {
		const struct cfg_service *cs = &nc->services[i];
		svc = service_find(hd, cs->name);
		if (!svc) {
			svc = calloc(1, sizeof(*svc));
			if (!svc) {
				/* Cannot roll back safely past this point; the service
				 * simply does not run. */
				log_error("out of memory creating service '%s'", cs->name);
				continue;
			}
			svc->hd = hd;
			snprintf(svc->name, sizeof(svc->name), "%s", cs->name);
			TAILQ_INIT(&svc->listeners);
			TAILQ_INIT(&svc->backends);
			TAILQ_INIT(&svc->pending);
			TAILQ_INIT(&svc->children);
			TAILQ_INSERT_TAIL(&hd->services, svc, link);
			log_info("service '%s' added", cs->name);
		}
		svc->cfg = cs;
		svc->mark = true;
		uint64_t now = hd_now_ms(hd);
		bucket_init(&svc->rate_bucket, &cs->rate, now);
		bucket_init(&svc->spawn_bucket, &cs->spawn_rate, now);
	}

	/* 3. Listeners: unmarked ones close; the rest (re)attach to their service. */
	for (l = TAILQ_FIRST(&hd->listeners); l; l = lnext) {
		lnext = TAILQ_NEXT(l, link);
		if (l->svc)
			TAILQ_REMOVE(&l->svc->listeners, l, svc_link);
		l->svc = NULL;
		if (!l->mark) {
			TAILQ_REMOVE(&hd->listeners, l, link);
			log_info("closed listener %s", l->display);
			sdnotify_fdstore_remove(l->store_name);
			listener_close(l);
		}
	}
	for (size_t i = 0; i < n; i++) {
		l = pl[i].l;
		svc = service_find(hd, pl[i].svc_name);
		if (pl[i].fresh) {
			TAILQ_INSERT_TAIL(&hd->listeners, l, link);
			/* Kept open by systemd across a restart (FileDescriptorStoreMax). */
			if (sdnotify_fdstore(l->fd, l->store_name) > 0)
				hd->fdstore_used = true;
			log_info("listening on %s for '%s'%s", l->display, pl[i].svc_name,
			         l->adopted ? " (socket passed in)" : "");
		}
		if (!svc) {
			TAILQ_REMOVE(&hd->listeners, l, link);
			listener_close(l);
			continue;
		}
		l->svc = svc;
		bool was_shared = !pl[i].fresh && l->shared;
		l->shared = l->socktype == SOCK_DGRAM || svc->cfg->mode == MODE_LISTEN;
		/* A listener that became shared (mode accept -> listen) is sent to
		 * the registered backends like a new one. */
		l->fresh = pl[i].fresh || (l->shared && !was_shared);
		if (!pl[i].fresh)
			listener_reapply_file(l, svc->cfg);
		TAILQ_INSERT_TAIL(&svc->listeners, l, svc_link);
	}
	free(pl);

	/* 4. Retire removed services, swap the config, re-check backends. */
	for (svc = TAILQ_FIRST(&hd->services); svc; svc = snext) {
		snext = TAILQ_NEXT(svc, link);
		if (!svc->mark)
			service_retire(svc);
	}
	struct config *old = hd->cfg;
	hd->cfg = nc;
	config_free(old);
	registry_recheck(hd);
	/* Backends of services that gained shared sockets get them now. */
	TAILQ_FOREACH(svc, &hd->services, link) {
		struct backend *b, *bnext;
		for (b = TAILQ_FIRST(&svc->backends); b; b = bnext) {
			bnext = TAILQ_NEXT(b, link);
			service_send_sockets(b, true);
		}
	}
	TAILQ_FOREACH(l, &hd->listeners, link)
		l->fresh = false;
	TAILQ_FOREACH(svc, &hd->services, link)
		service_kick(svc);
	return 0;

fail:
	for (size_t i = 0; i < n; i++)
		if (pl[i].fresh)
			listener_close(pl[i].l);
	TAILQ_FOREACH(l, &hd->listeners, link)
		l->mark = false;
	free(pl);
	return rc;
}

void service_free_all(struct hd *hd)
{
	struct listener *l;
	struct service *svc;
	while ((l = TAILQ_FIRST(&hd->listeners)) != NULL) {
		TAILQ_REMOVE(&hd->listeners, l, link);
		if (l->svc)
			TAILQ_REMOVE(&l->svc->listeners, l, svc_link);
		listener_close(l);
	}
	while ((svc = TAILQ_FIRST(&hd->services)) != NULL)
		service_retire(svc);
}

/* ---- systemd's fd store: waiting connections across a restart ---- */

#define CONN_STORE_PREFIX "conn."

static void conn_store_name(const char *svc, uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, CONN_STORE_PREFIX "%s.%llu", svc, (unsigned long long)id);
}

unsigned service_store_pending(struct hd *hd)
{
	unsigned n = 0;
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		struct conn *c;
		TAILQ_FOREACH(c, &svc->pending, link) {
			char name[128];
			uint64_t id = c->stored_id ? c->stored_id : c->id;
			conn_store_name(svc->name, id, name, sizeof(name));
			if (c->stored_id || sdnotify_fdstore(c->fd, name) > 0)
				n++;
		}
	}
	return n;
}

void service_conn_delivered(struct conn *c)
{
	if (!c->stored_id)
		return;
	char name[128];
	conn_store_name(c->svc->name, c->stored_id, name, sizeof(name));
	sdnotify_fdstore_remove(name);
	c->stored_id = 0;
}

bool service_import_stored(struct hd *hd, int fd, const char *name)
{
	if (strncmp(name, CONN_STORE_PREFIX, strlen(CONN_STORE_PREFIX)) != 0)
		return false;
	const char *p = name + strlen(CONN_STORE_PREFIX);
	const char *dot = strrchr(p, '.');
	char svcname[PROTO_MAX_NAME + 1];
	unsigned long long id = 0;
	if (!dot || (size_t)(dot - p) > PROTO_MAX_NAME || sscanf(dot + 1, "%llu", &id) != 1 || id == 0) {
		log_warning("fd store: '%s' is not a connection name; closing it", name);
		sdnotify_fdstore_remove(name);
		close(fd);
		return true;
	}
	memcpy(svcname, p, (size_t)(dot - p));
	svcname[dot - p] = '\0';
	struct service *svc = service_find(hd, svcname);
	struct conn *c = svc ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		log_warning("fd store: a waiting connection of service '%s', which %s: closing it", svcname,
		            svc ? "cannot be taken (out of memory)" : "this configuration lacks");
		sdnotify_fdstore_remove(name);
		close(fd);
		return true;
	}
	c->fd = fd;
	c->svc = svc;
	c->id = ++hd->next_conn_id;
	c->stored_id = id;
	c->peer_len = sizeof(c->peer);
	if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0 || c->peer_len <= sizeof(sa_family_t))
		c->peer_len = 0;
	c->local_len = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &c->local_len) < 0)
		c->local_len = 0;
	int st = SOCK_STREAM;
	socklen_t sl = sizeof(st);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &st, &sl);
	c->socktype = st;
	if (c->local.ss_family == AF_UNIX) {
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
	c->counted = true;
	svc->live++;
	dispatch_conn(c, false);
	return true;
}
