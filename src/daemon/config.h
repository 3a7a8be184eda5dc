/* config: handoffd.conf -> a fresh struct config. No side effects: it opens
 * no sockets and touches no running state; names (hosts, users, groups) are
 * resolved here, once per load. Reload = load a new struct, validate it, and
 * let main.c apply the difference; a broken file never replaces a good one.
 *
 * Ownership: config_load_*() returns a struct the caller frees with
 * config_free(). Error text goes to the caller's buffer, one line per error,
 * each starting with "FILE:LINE: ".
 */
#ifndef HANDOFF_CONFIG_H
#define HANDOFF_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "proto.h"

#define CFG_MAX_BOUND 8       /* socket addresses one listen name may resolve to */
#define CFG_MAX_LISTEN 64     /* listen lines per service */
#define CFG_MAX_IDS 256       /* entries in allow_users / allow_groups */
#define CFG_MAX_SERVICES 4096
#define CFG_MAX_CIDRS 256     /* entries in allow_from / deny_from */
#define CFG_MAX_ARGS 64       /* words in exec */

enum balance { BALANCE_ROUND_ROBIN = 0, BALANCE_LEAST_LOADED = 1, BALANCE_SOURCE_HASH = 2 };

/* How a stream listener is served. Datagram listeners (udp://,
 * unix-dgram:) are always shared: their socket itself goes to every backend,
 * whatever the mode. */
enum svc_mode {
	MODE_ACCEPT = 0, /* handoffd accepts; each connection goes to one backend (inetd nowait) */
	MODE_LISTEN = 1, /* backends get the listening socket and accept themselves (inetd wait) */
};

/* What happens to a connection while no backend is registered. */
enum no_backend {
	NOB_WAIT = 0,   /* it waits in the kernel backlog */
	NOB_SPAWN = 1,  /* exec is started for it */
	NOB_REJECT = 2, /* it is closed at once */
};

enum builtin {
	BUILTIN_NONE = 0, BUILTIN_ECHO, BUILTIN_DISCARD, BUILTIN_CHARGEN, BUILTIN_DAYTIME, BUILTIN_TIME,
	BUILTIN_TCPMUX,
};

/* Socket options applied to each listener of a service. */
struct cfg_sockopts {
	bool reuseport;
	bool freebind;
	bool keepalive;     /* SO_KEEPALIVE on accepted connections (inherited) */
	bool nodelay;       /* TCP_NODELAY on accepted connections (inherited) */
	int ipv6only;       /* -1 = default (dual stack for *, v6 only otherwise), 0, 1 */
	unsigned defer_accept; /* TCP_DEFER_ACCEPT seconds, 0 = off */
	int rcvbuf;         /* SO_RCVBUF bytes, 0 = kernel default */
	int sndbuf;         /* SO_SNDBUF bytes, 0 = kernel default */
	char bind_device[IF_NAMESIZE]; /* SO_BINDTODEVICE, "" = none */
};

/* One allow_from / deny_from entry: family AF_INET or AF_INET6, the
 * network address in network byte order, and the prefix length. IPv4
 * entries also match IPv4 clients of a dual-stack listener (v4-mapped). */
struct cfg_cidr {
	int family;
	uint8_t addr[16];
	int prefix;
};

/* A rate: at most count events per per_ms, as a token bucket holding count
 * tokens that refills at count per per_ms. count 0 = no limit. */
struct cfg_rate {
	unsigned count;
	unsigned per_ms;
};

struct cfg_listen {
	char text[ADDR_TEXT_MAX]; /* canonical address text, the listener's identity */
	struct addr_spec spec;
	struct addr_bound bound[CFG_MAX_BOUND];
	int nbound;
	int line;
};

struct cfg_service {
	char name[PROTO_MAX_NAME + 1];
	int line; /* of the [service NAME] header */
	struct cfg_listen *listen; /* malloc'd, nlisten entries */
	int nlisten;
	int backlog;
	enum balance balance;
	bool has_allow; /* any allow_* key present */
	uid_t *allow_uids;
	int nallow_uids;
	gid_t *allow_gids;
	int nallow_gids;
	char **allow_units;     /* systemd units (exact names, e.g. nginx.service) */
	int nallow_units;
	char **allow_cgroups;   /* cgroup path prefixes, matched at a '/' boundary */
	int nallow_cgroups;
	char **allow_labels;    /* LSM labels (SO_PEERSEC), exact */
	int nallow_labels;
	unsigned max_backends;
	unsigned max_capacity;
	mode_t socket_mode;     /* Unix listeners; 0 = leave as umask made it */
	uid_t socket_owner;     /* (uid_t)-1 = unchanged */
	gid_t socket_group;     /* (gid_t)-1 = unchanged */

	enum svc_mode mode;
	struct cfg_sockopts opt;

	/* Spawning (inetd style). exec_argv is NULL unless exec is set; it is
	 * NULL-terminated, exec_argv[0] is what the program sees as argv[0]
	 * (exec_argv0, or the path). Groups come from getgrouplist() at load. */
	char *exec_path;
	char **exec_argv;
	int exec_argc;
	uid_t exec_uid;
	gid_t exec_gid;
	gid_t *exec_groups;
	int nexec_groups;
	char exec_user_name[64];
	char exec_argv0[128];   /* exec_argv0 = NAME, "" = the path */
	gid_t exec_user_gid;    /* exec_user's primary group */
	int exec_line;
	bool exec_systemd;      /* exec_activation = systemd: LISTEN_FDS, fds from 3 */
	enum no_backend on_no_backend;
	unsigned max_children;  /* running spawned programs, 0 = no limit */
	struct cfg_rate spawn_rate; /* inetd's nowait.max: spawns per minute */
	unsigned spawn_pause_ms; /* how long a service pauses when spawn_rate is hit */

	enum builtin builtin;
	char tcpmux_name[PROTO_MAX_NAME + 1]; /* reachable through tcpmux by this name ("" = not) */
	bool tcpmux_plus;       /* handoffd answers "+" itself before handing over */

	/* Client access control and limits. */
	struct cfg_cidr *allow_from;
	int nallow_from;
	struct cfg_cidr *deny_from;
	int ndeny_from;
	bool has_client_allow;  /* allow_client_users/groups given */
	uid_t *client_uids;
	int nclient_uids;
	gid_t *client_gids;
	int nclient_gids;
	unsigned max_connections; /* live connections of the service, 0 = no limit */
	unsigned max_per_source;  /* live connections per client IP (per uid on Unix), 0 = no limit */
	struct cfg_rate rate;     /* new connections of the service */
	struct cfg_rate rate_per_source;
	unsigned limit_pause_ms;  /* longest pause a limit imposes on the service */

	uint64_t seen;          /* bit per scalar key, for duplicate detection */
	int inetd_line;         /* > 0: the service came from inetd_conf, at this line */
};

struct config {
	char file[256];
	char control_socket[108];
	mode_t control_mode;
	gid_t control_group;   /* (gid_t)-1 = unchanged */
	gid_t admin_group;     /* (gid_t)-1 = only root is admin */
	uid_t user;            /* (uid_t)-1 = stay */
	gid_t group;           /* (gid_t)-1 = user's primary group, or stay */
	char user_name[64];    /* "" when the uid has no passwd entry */
	int user_line;
	int log_level;         /* enum log_level */
	int log_target;        /* enum log_target (log.h): log = auto|journal|syslog|stderr */
	unsigned max_control_per_uid;
	unsigned max_control;
	unsigned handshake_timeout_ms;
	unsigned shutdown_timeout_ms;
	char inetd_conf[256];  /* inetd_conf = PATH, "" = none */
	unsigned seen;
	struct cfg_service *services;
	size_t nservices;
};

/* Parse a file (opened close-on-exec). Returns 0, or -EINVAL with errors in
 * err, or -errno when the file cannot be read. */
int config_load_file(const char *path, struct config **ret, char *err, size_t errlen);

/* Parse text; name is used as the file name in messages. */
int config_load_string(const char *text, const char *name, struct config **ret, char *err, size_t errlen);

/* handoffd --inetd PATH: default [handoffd] settings plus the services of an
 * inetd.conf. Same returns as config_load_file(). */
int config_load_inetd(const char *path, struct config **ret, char *err, size_t errlen);

void config_free(struct config *c);

const struct cfg_service *config_find_service(const struct config *c, const char *name);

const char *config_balance_name(enum balance b);
const char *config_builtin_name(enum builtin b);

/* The service a tcpmux request names (case-insensitive), or NULL. */
const struct cfg_service *config_find_tcpmux(const struct config *c, const char *name);

/* Builder interface, for front ends that produce services from another
 * format (inetd.conf): each call acts exactly as the same [service NAME]
 * header or key = value line would, with errors naming file:line. */
struct cfg_builder;
void cfgb_service(struct cfg_builder *b, const char *file, int line, const char *name);
void cfgb_key(struct cfg_builder *b, const char *file, int line, const char *key, const char *value);
void cfgb_error(struct cfg_builder *b, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
