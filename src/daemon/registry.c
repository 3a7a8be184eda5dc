/* registry: backends, their identity, capacity and drain. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "dispatch.h"
#include "log.h"
#include "registry.h"
#include "service.h"

/* Older headers lack these; the kernel answers ENOPROTOOPT where it lacks them. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* A pidfd for the process that connected on sockfd (the kernel keeps it
 * from connect time), close-on-exec; -errno on kernels without
 * SO_PEERPIDFD (-ENOPROTOOPT) or when that process is gone (-ESRCH on
 * some kernels). */
static int peer_pidfd(int sockfd)
{
	int pidfd = -1;
	socklen_t len = sizeof(pidfd);
	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		return -errno;
	if (pidfd < 0)
		return -EBADF;
	/* pidfds are born close-on-exec; make sure. */
	int fl = fcntl(pidfd, F_GETFD);
	if (fl >= 0 && !(fl & FD_CLOEXEC))
		fcntl(pidfd, F_SETFD, fl | FD_CLOEXEC);
	return pidfd;
}

int registry_read_identity(int fd, struct peer_ident *ret)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	memset(ret, 0, sizeof(*ret));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	ret->pid = uc.pid;
	ret->uid = uc.uid;
	ret->gid = uc.gid;

	len = sizeof(ret->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ret->groups, &len) == 0) {
		ret->ngroups = (int)(len / sizeof(gid_t));
	} else if (errno == ERANGE && len > sizeof(ret->groups)) {
		/* More groups than we keep: read them all, keep the first ones
		 * (a group past the limit can only fail to match, never match
		 * wrongly). */
		gid_t *all = malloc(len);
		if (all && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == 0) {
			memcpy(ret->groups, all, sizeof(ret->groups));
			ret->ngroups = POLICY_MAX_GROUPS;
		}
		free(all);
	}

	/* A pidfd only for as long as this takes: keeping one per control
	 * connection would cost a second descriptor per backend, and the kernel
	 * gives a fresh one whenever one is needed (registry_drain_pid). */
	int pidfd = peer_pidfd(fd);

	/* What allow_labels, allow_cgroups and allow_units look at (peerid.h):
	 * the LSM label, and the cgroup from /proc (a short procfs read, once
	 * per control connection) with the unit derived from it. The cgroup is
	 * trusted only while the pidfd shows the process that connected still
	 * running, so a reused pid cannot lend another process's cgroup;
	 * without a pidfd it is not read. Whatever cannot be read stays "" and
	 * matches nothing. */
	(void)peerid_read_label(fd, ret->label, sizeof(ret->label));
	if (peerid_read_cgroup(ret->pid, pidfd, ret->cgroup, sizeof(ret->cgroup)) == 0)
		(void)peerid_unit_from_cgroup(ret->cgroup, ret->unit, sizeof(ret->unit));
	if (pidfd >= 0)
		close(pidfd);
	return 0;
}

static unsigned inflight(const struct backend *b)
{
	return b->nunacked + b->nqueued + b->nacked;
}

void registry_update_ready(struct backend *b)
{
	bool r = !b->draining && !b->cc->broken && !b->cc->closing && inflight(b) < b->capacity;
	if (r == b->ready)
		return;
	b->ready = r;
	if (r)
		b->svc->nready++;
	else
		b->svc->nready--;
}

static void refuse(struct ctlconn *cc, const struct proto_msg *m, enum proto_err code, const char *svcname,
                   const char *text)
{
	struct proto_buf b;
	proto_begin(&b, PROTO_ERROR, m->seq);
	proto_put_u32(&b, PA_ERRCODE, code);
	proto_put_str(&b, PA_TEXT, text);
	proto_put_u32(&b, PA_UID, cc->id.uid);
	if (svcname && *svcname)
		proto_put_str(&b, PA_SERVICE, svcname);
	if (ctl_send(cc, &b) == 0)
		cc->closing = true;
	if (cc->backend)
		registry_update_ready(cc->backend);
}

void registry_register(struct ctlconn *cc, const struct proto_msg *m)
{
	struct hd *hd = cc->hd;
	char name[PROTO_MAX_NAME + 1], text[256];
	uint32_t cap = proto_u32(m, PA_CAPACITY);

	proto_str(m, PA_SERVICE, name, sizeof(name));
	if (cc->backend) {
		snprintf(text, sizeof(text), "this control connection is already registered for '%s'",
		         cc->backend->svc->name);
		refuse(cc, m, PE_STATE, name, text);
		return;
	}
	struct service *svc = service_find(hd, name);
	if (!svc) {
		log_peer(LOG_LVL_WARNING, "refused registration: %s for service '%s': no such service", cc->who, name);
		snprintf(text, sizeof(text), "no service '%s' in handoffd's configuration", name);
		refuse(cc, m, PE_NO_SERVICE, name, text);
		return;
	}
	if (svc->cfg->builtin != BUILTIN_NONE) {
		log_peer(LOG_LVL_WARNING, "refused registration: %s for service '%s': it is the builtin %s", cc->who,
		         name, config_builtin_name(svc->cfg->builtin));
		snprintf(text, sizeof(text), "service '%s' is served by handoffd itself (builtin %s)", name,
		         config_builtin_name(svc->cfg->builtin));
		refuse(cc, m, PE_NO_SERVICE, name, text);
		return;
	}
	if (cap < 1 || cap > 65535) {
		log_peer(LOG_LVL_WARNING, "refused registration: %s for service '%s': capacity %u not in 1..65535",
		         cc->who, name, cap);
		snprintf(text, sizeof(text), "capacity %u is not in 1..65535", cap);
		refuse(cc, m, PE_PROTOCOL, name, text);
		return;
	}
	if (!policy_may_serve(svc->cfg, &cc->id)) {
		svc->refused++;
		struct log_fields lf = {.service = name, .backend_pid = cc->id.pid, .backend_uid = (long)cc->id.uid};
		char why[512];
		policy_describe(svc->cfg, &cc->id, why, sizeof(why));
		log_peer_with(LOG_LVL_WARNING, &lf, "refused registration: %s for service '%s': %s", cc->who, name, why);
		snprintf(text, sizeof(text), "uid %u is not allowed to serve '%s'", (unsigned)cc->id.uid, name);
		refuse(cc, m, PE_NOT_ALLOWED, name, text);
		return;
	}
	if (svc->nbackends >= svc->cfg->max_backends) {
		svc->refused++;
		log_peer(LOG_LVL_WARNING, "refused registration: %s for service '%s': max_backends (%u) reached",
		         cc->who, name, svc->cfg->max_backends);
		snprintf(text, sizeof(text), "service '%s' already has max_backends (%u) backends", name,
		         svc->cfg->max_backends);
		refuse(cc, m, PE_LIMIT, name, text);
		return;
	}

	struct backend *b = calloc(1, sizeof(*b));
	if (!b) {
		refuse(cc, m, PE_LIMIT, name, "handoffd is out of memory");
		return;
	}
	b->svc = svc;
	b->cc = cc;
	b->id = ++hd->next_backend_id;
	b->capacity = cap < svc->cfg->max_capacity ? cap : svc->cfg->max_capacity;
	TAILQ_INIT(&b->unacked);
	TAILQ_INIT(&b->live);
	TAILQ_INSERT_TAIL(&svc->backends, b, link);
	svc->nbackends++;
	cc->backend = b;
	cc->state = CC_BACKEND;

	struct proto_buf out;
	proto_begin(&out, PROTO_REGISTERED, m->seq);
	proto_put_u64(&out, PA_BACKEND_ID, b->id);
	proto_put_u32(&out, PA_CAPACITY, b->capacity);
	unsigned nshared = 0;
	struct listener *l;
	TAILQ_FOREACH(l, &svc->listeners, svc_link)
		nshared += l->shared;
	proto_put_u32(&out, PA_COUNT, nshared); /* SOCKET messages that follow at once */
	if (ctl_send(cc, &out) < 0)
		return; /* being dropped */
	struct log_fields lf = {.service = name, .backend_pid = cc->id.pid, .backend_uid = (long)cc->id.uid};
	log_with(LOG_LVL_INFO, &lf, "backend %llu registered for '%s': %s, capacity %u", (unsigned long long)b->id,
	         name, cc->who, b->capacity);
	if (service_send_sockets(b, false) < 0)
		return; /* being dropped */
	registry_update_ready(b);
	service_kick(svc);
}

void registry_remove(struct backend *b)
{
	struct service *svc = b->svc;

	dispatch_requeue(b);
	dispatch_release(b);
	if (svc->rr_next == b)
		svc->rr_next = TAILQ_NEXT(b, link);
	if (b->ready)
		svc->nready--;
	TAILQ_REMOVE(&svc->backends, b, link);
	svc->nbackends--;
	struct log_fields lf = {.service = svc->name, .backend_pid = b->cc->id.pid, .backend_uid = (long)b->cc->id.uid};
	log_with(LOG_LVL_INFO, &lf, "backend %llu left '%s' (%s); %llu delivered", (unsigned long long)b->id,
	         svc->name, b->cc->who, (unsigned long long)b->delivered);
	b->cc->backend = NULL;
	free(b);
	service_kick(svc);
}

void registry_drain(struct backend *b)
{
	if (b->draining)
		return;
	b->draining = true;
	registry_update_ready(b);
	log_info("backend %llu of '%s' (%s) draining", (unsigned long long)b->id, b->svc->name, b->cc->who);
	struct proto_buf out;
	proto_begin(&out, PROTO_DRAINED, 0);
	ctl_send(b->cc, &out);
}

/* Is the process that connected on cc still running? (Not a process that
 * got its pid since: the pidfd is for the connecting process itself.) */
static bool peer_alive(const struct ctlconn *cc)
{
	int pidfd = peer_pidfd(cc->fd);
	if (pidfd < 0)
		return pidfd != -ESRCH; /* no pidfds here: trust the open socket */
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	/* A pidfd becomes readable when its process exits. */
	bool alive = poll(&p, 1, 0) == 0;
	close(pidfd);
	return alive;
}

struct backend *registry_find(struct hd *hd, uint64_t id)
{
	struct service *svc;
	struct backend *b;
	TAILQ_FOREACH(svc, &hd->services, link) {
		TAILQ_FOREACH(b, &svc->backends, link) {
			if (b->cc->broken)
				continue;
			if (id && b->id == id)
				return b;
		}
	}
	return NULL;
}

unsigned registry_drain_pid(struct hd *hd, pid_t pid)
{
	struct service *svc;
	struct backend *b;
	unsigned n = 0;
	TAILQ_FOREACH(svc, &hd->services, link) {
		TAILQ_FOREACH(b, &svc->backends, link) {
			if (!b->cc->broken && b->cc->id.pid == pid && peer_alive(b->cc)) {
				registry_drain(b);
				n++;
			}
		}
	}
	return n;
}

void registry_drop_backend(struct backend *b, enum proto_err code, const char *text, const char *why)
{
	struct ctlconn *cc = b->cc;
	struct proto_buf out;
	proto_begin(&out, PROTO_ERROR, 0);
	proto_put_u32(&out, PA_ERRCODE, code);
	proto_put_str(&out, PA_TEXT, text);
	if (code == PE_NOT_ALLOWED)
		proto_put_u32(&out, PA_UID, cc->id.uid);
	proto_put_str(&out, PA_SERVICE, b->svc->name);
	ctl_send(cc, &out);
	ctl_drop(cc, why);
}

void registry_recheck(struct hd *hd)
{
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		struct backend *b = TAILQ_FIRST(&svc->backends), *next;
		for (; b; b = next) {
			next = TAILQ_NEXT(b, link);
			if (svc->cfg->builtin != BUILTIN_NONE) {
				/* A reload made the service a builtin: handoffd serves it
				 * now, so its backends would wait for nothing. */
				char text[256];
				log_warning("backend %llu (%s) of '%s': the service is now the builtin %s after reload: "
				            "dropping it",
				            (unsigned long long)b->id, b->cc->who, svc->name, config_builtin_name(svc->cfg->builtin));
				snprintf(text, sizeof(text), "service '%s' is served by handoffd itself (builtin %s) after a reload",
				         svc->name, config_builtin_name(svc->cfg->builtin));
				registry_drop_backend(b, PE_NO_SERVICE, text, "service became a builtin");
				continue;
			}
			if (policy_may_serve(svc->cfg, &b->cc->id))
				continue;
			struct ctlconn *cc = b->cc;
			char text[256], why[512];
			policy_describe(svc->cfg, &cc->id, why, sizeof(why));
			log_warning("backend %llu (%s) no longer allowed to serve '%s' after reload (%s): dropping it",
			            (unsigned long long)b->id, cc->who, svc->name, why);
			snprintf(text, sizeof(text), "uid %u is not allowed to serve '%s' (policy changed by a reload)",
			         (unsigned)cc->id.uid, svc->name);
			registry_drop_backend(b, PE_NOT_ALLOWED, text, "no longer allowed after reload");
		}
	}
}
