/* service: runtime services and applying a configuration to them. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "registry.h"
#include "service.h"

struct service *service_find(struct hd *hd, const char *name)
{
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link)
		if (strcmp(svc->name, name) == 0)
			return svc;
	return NULL;
}

void service_kick(struct service *svc)
{
	while (svc->npending && svc->nready) {
		struct conn *c = TAILQ_FIRST(&svc->pending);
		TAILQ_REMOVE(&svc->pending, c, link);
		svc->npending--;
		if (!dispatch_conn(c, true))
			break;
	}
	bool paused = svc->nready == 0 || svc->npending > 0;
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

	/* Backends first: what they had not acknowledged comes back to pending. */
	while ((b = TAILQ_FIRST(&svc->backends)) != NULL) {
		struct ctlconn *cc = b->cc;
		char text[160];
		struct proto_buf out;
		snprintf(text, sizeof(text), "service '%s' was removed from handoffd's configuration", svc->name);
		proto_begin(&out, PROTO_ERROR, 0);
		proto_put_u32(&out, PA_ERRCODE, PE_NO_SERVICE);
		proto_put_str(&out, PA_TEXT, text);
		proto_put_str(&out, PA_SERVICE, svc->name);
		ctl_send(cc, &out);
		ctl_drop(cc, "service removed");
		nb++;
	}
	struct conn *c;
	unsigned nc = 0;
	while ((c = TAILQ_FIRST(&svc->pending)) != NULL) {
		TAILQ_REMOVE(&svc->pending, c, link);
		conn_free(c);
		nc++;
	}
	if (nb || nc)
		log_notice("service '%s' removed: dropped %u backend%s, closed %u waiting connection%s", svc->name, nb,
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
			TAILQ_INSERT_TAIL(&hd->services, svc, link);
			log_info("service '%s' added", cs->name);
		}
		svc->cfg = cs;
		svc->mark = true;
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
			listener_close(l);
		}
	}
	for (size_t i = 0; i < n; i++) {
		l = pl[i].l;
		svc = service_find(hd, pl[i].svc_name);
		if (pl[i].fresh) {
			TAILQ_INSERT_TAIL(&hd->listeners, l, link);
			log_info("listening on %s for '%s'", l->display, pl[i].svc_name);
		}
		if (!svc) {
			TAILQ_REMOVE(&hd->listeners, l, link);
			listener_close(l);
			continue;
		}
		l->svc = svc;
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
