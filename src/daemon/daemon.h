/* daemon: the runtime objects every daemon module shares, and who owns what.
 *
 *   struct hd        the one context, owned by main.c: loop, current config,
 *                    services, listeners, control connections.
 *   struct service   one per [service NAME]; survives reloads while the name
 *                    stays. Owns its pending queue of connections.
 *   struct listener  one listening socket; owned by hd (keyed by address
 *                    text so reloads keep it open); points at its service.
 *   struct ctlconn   one control connection (backend or admin); owns its
 *                    socket and its outgoing queue.
 *   struct backend   the registration of a ctlconn for a service; owns the
 *                    connections sent to it and not yet acknowledged.
 *   struct conn      one accepted client connection that handoffd still
 *                    holds. Exactly one queue owns it at a time: a service's
 *                    pending queue, a ctlconn's outgoing queue (inside a
 *                    DELIVER message), or a backend's unacked queue. Its fd
 *                    is closed when the backend acknowledges it (the backend
 *                    then has its own copy) or when it is dropped.
 */
#ifndef HANDOFF_DAEMON_H
#define HANDOFF_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"
#include "limit.h"
#include "policy.h"

struct hd;
struct service;
struct backend;
struct ctlconn;
struct spawner;   /* spawn.c */
struct builtins;  /* builtin.c */
struct uid_count; /* ctl.c */

struct conn {
	TAILQ_ENTRY(conn) link;
	int fd;
	uint64_t id;
	struct service *svc;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct sockaddr_storage local;
	socklen_t local_len;
	bool has_cred;
	pid_t cred_pid;
	uid_t cred_uid;
	gid_t cred_gid;
	unsigned deliveries; /* how many times it was sent to a backend */
	int socktype;        /* SOCK_STREAM or SOCK_SEQPACKET */
	/* Limits: a counted connection holds one unit of svc->live (and of
	 * src->live when src is set) until service_conn_closed(). */
	bool counted;
	struct srcent *src;
	pid_t pid;           /* the program spawned for it (nowait), 0 if none */
	uint64_t stored_id;  /* in systemd's fd store as "conn.SERVICE.ID" (a restart kept it), 0 if not */
};
TAILQ_HEAD(conn_q, conn);

struct listener {
	TAILQ_ENTRY(listener) link;     /* hd->listeners */
	TAILQ_ENTRY(listener) svc_link; /* svc->listeners */
	struct hd *hd;
	struct service *svc;
	char text[ADDR_TEXT_MAX];       /* config address text (identity across reloads) */
	int index;                      /* which resolved address of that text */
	char display[ADDR_TEXT_MAX];    /* the bound address, for status and logs */
	int fd;
	uv_poll_t poll;
	bool polling;
	bool mark;                      /* reload bookkeeping */
	struct sockaddr_storage addr;   /* bound address (getsockname) */
	socklen_t addr_len;
	char unix_path[108];            /* file to unlink when closed; "" if none */
	int socktype;                   /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	bool shared;                    /* the socket itself goes to backends (listen mode, datagram) */
	bool fresh;                     /* opened by this reload: backends do not have it yet */
	bool adopted;                   /* passed in (LISTEN_FDS): its file is not ours to unlink */
	char store_name[96];            /* its name in systemd's fd store ("svc.HASH") */
};

struct service {
	TAILQ_ENTRY(service) link;
	struct hd *hd;
	char name[PROTO_MAX_NAME + 1];
	const struct cfg_service *cfg;  /* points into hd->cfg */
	TAILQ_HEAD(, listener) listeners;
	TAILQ_HEAD(, backend) backends;
	unsigned nbackends;
	unsigned nready;                /* backends that can take a connection now */
	struct backend *rr_next;        /* round-robin cursor (NULL: start at head) */
	struct conn_q pending;          /* accepted, waiting for a backend */
	unsigned npending;
	bool paused;                    /* listeners stopped for lack of capacity */
	bool mark;
	uint64_t accepted, delivered, redelivered, refused, dropped;

	/* Limits (issue 3): live connections, rate, per source. */
	unsigned live;                  /* counted connections (max_connections) */
	struct bucket rate_bucket;      /* rate */
	struct srctab *sources;         /* max_per_source, rate_per_source; NULL if neither */
	uint64_t limited_until;         /* rate or spawn_rate pause: accept nothing before this */
	char limited_why[160];
	bool retiring;                  /* being removed: nothing new starts */
	uint64_t refused_access, refused_rate, refused_source, refused_nobackend, refused_spawn;
	uint64_t refusal_log_ms;        /* rate-limits refusal log lines */
	unsigned refusals_unlogged;

	/* Spawning (inetd style). */
	struct conn_q children;         /* nowait: one record per running program (fd closed) */
	unsigned nchildren;             /* nowait and wait programs running */
	pid_t wait_pid;                 /* wait mode: the program holding the sockets, 0 if none */
	struct bucket spawn_bucket;
	bool spawn_paused;              /* the pause is spawn_rate's: refill when it ends */
	uint64_t spawned;
};

struct backend {
	TAILQ_ENTRY(backend) link;      /* svc->backends */
	struct service *svc;
	struct ctlconn *cc;
	uint64_t id;
	unsigned capacity;
	struct conn_q unacked;          /* sent; fd still ours until ACK */
	unsigned nunacked;
	unsigned nqueued;               /* DELIVERs still in cc's outgoing queue */
	unsigned nacked;                /* acknowledged, not yet done */
	struct conn_q live;             /* max_per_source: acknowledged connections' records (fd closed) */
	unsigned nlive;
	bool ready;                     /* counted in svc->nready */
	bool draining;
	uint64_t delivered;
};

struct outmsg {
	STAILQ_ENTRY(outmsg) link;
	struct conn *conn;              /* DELIVER: the connection whose fd goes along */
	int fd;                         /* SOCKET: our duplicate of a shared socket, -1 if none */
	size_t len;
	uint8_t data[];
};

enum cc_state { CC_NEW = 0, CC_BACKEND, CC_ADMIN };

struct ctlconn {
	TAILQ_ENTRY(ctlconn) link;      /* hd->ctlconns */
	TAILQ_ENTRY(ctlconn) dirty_link; /* hd->dirty, while in_dirty */
	bool in_dirty;                  /* DELIVERs queued, to send at the end of this loop turn */
	struct hd *hd;
	int fd;
	uv_poll_t poll;
	int poll_events;
	struct peer_ident id;
	char who[96];                   /* "pid=1 uid=0" for logs */
	enum cc_state state;
	uint64_t deadline_ms;           /* CC_NEW: must speak before this */
	struct backend *backend;
	STAILQ_HEAD(, outmsg) outq;
	size_t outq_bytes;
	bool closing;                   /* close once the outgoing queue is empty */
	bool broken;                    /* a send failed: drop at the next reap */
	bool dead;                      /* closed; waiting for the poll handle's close callback */
};

#define RECV_BATCH 16 /* control messages taken per recvmmsg */

struct hd {
	uv_loop_t *loop;
	/* Scratch space for reading control messages (one loop, one reader at
	 * a time; too big for a callback's stack). */
	uint8_t recv_buf[RECV_BATCH][PROTO_MAX_MSG + 1];
	size_t recv_len[RECV_BATCH];
	struct config *cfg;
	const char *config_path;
	bool config_is_inetd;           /* --inetd: config_path is an inetd.conf */
	const char *ctl_override;       /* --control-socket, or NULL */
	TAILQ_HEAD(, service) services;
	TAILQ_HEAD(, listener) listeners;
	TAILQ_HEAD(, ctlconn) ctlconns;
	TAILQ_HEAD(, ctlconn) dirty;    /* connections with DELIVERs to send this loop turn */
	uv_check_t flush_check;         /* sends them, batched, after the turn's I/O callbacks */
	unsigned nctl;
	struct uid_count *uid_counts;   /* ctl.c: open control connections per uid (max_control_per_uid) */
	unsigned nuid_counts, uid_counts_cap;
	int ctl_fd;
	char ctl_path[108];
	uv_poll_t ctl_poll;
	bool ctl_polling;
	uv_timer_t sweep_timer;
	uv_timer_t starve_timer;
	uv_timer_t shutdown_timer;
	uv_timer_t reap_timer;          /* drops broken control connections outside any iteration */
	uv_timer_t limit_timer;         /* ends rate and spawn_rate pauses */
	uv_timer_t watchdog_timer;      /* WATCHDOG=1 to systemd */
	uv_signal_t sig_hup, sig_term, sig_int, sig_usr2;
	bool fd_starved;                /* EMFILE/ENFILE: accepting paused */
	uint64_t starve_since_ms;       /* start of the episode (0: none), logged once */
	unsigned starve_retries;        /* retries in this episode */
	bool shutting_down;
	bool finishing;                 /* closing every handle; the loop ends next */
	bool privileges_dropped;
	uint64_t next_conn_id;
	uint64_t next_backend_id;
	uint64_t start_ms;
	uint64_t reloads;
	int exit_code;
	struct spawner *spawner;        /* spawn.c: running children, SIGCHLD */
	struct activation *activation;  /* sockets passed in at start-up (LISTEN_FDS), NULL if none */
	bool ctl_adopted;               /* the control socket was passed in: never unlink its file */
	bool keep_socket_files;         /* handing over to a new handoffd: unlink no socket file */
	bool handing_over;              /* an upgrade's new handoffd is ready: drain into it */
	bool fdstore_used;              /* sockets went to systemd's fd store: keep their files at exit */
	struct upgrade *upgrade;        /* upgrade.c: an upgrade in progress (old side) */
	struct upgrade_in *upgrade_in;  /* upgrade.c: connections coming from the old handoffd */
	char **argv;                    /* how we were started, for an upgrade */
	char exe[4096];                 /* /proc/self/exe at start-up */
	struct builtins *builtins;      /* builtin.c: connections served by handoffd itself */
};

uint64_t hd_now_ms(struct hd *hd);

/* main.c: re-read the configuration and apply it; on error keep the old one
 * and put the reason in err. Returns 0 or negative. */
int hd_reload(struct hd *hd, char *err, size_t errlen);

/* main.c: called when something that shutdown waits for has finished. */
void hd_shutdown_check(struct hd *hd);

/* main.c: stop accepting and exit once what is queued is delivered
 * (SIGTERM, or an upgrade handing over). */
void hd_stop(struct hd *hd);

#endif
