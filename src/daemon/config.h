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

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "addr.h"
#include "proto.h"

#define CFG_MAX_BOUND 8       /* socket addresses one listen name may resolve to */
#define CFG_MAX_LISTEN 64     /* listen lines per service */
#define CFG_MAX_IDS 256       /* entries in allow_users / allow_groups */
#define CFG_MAX_SERVICES 4096

enum balance { BALANCE_ROUND_ROBIN = 0, BALANCE_LEAST_LOADED = 1, BALANCE_SOURCE_HASH = 2 };

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
	unsigned max_backends;
	unsigned max_capacity;
	mode_t socket_mode;     /* Unix listeners; 0 = leave as umask made it */
	uid_t socket_owner;     /* (uid_t)-1 = unchanged */
	gid_t socket_group;     /* (gid_t)-1 = unchanged */
	unsigned seen;          /* bit per scalar key, for duplicate detection */
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
	unsigned max_control_per_uid;
	unsigned max_control;
	unsigned handshake_timeout_ms;
	unsigned shutdown_timeout_ms;
	unsigned seen;
	struct cfg_service *services;
	size_t nservices;
};

/* Parse a file (opened close-on-exec). Returns 0, or -EINVAL with errors in
 * err, or -errno when the file cannot be read. */
int config_load_file(const char *path, struct config **ret, char *err, size_t errlen);

/* Parse text; name is used as the file name in messages. */
int config_load_string(const char *text, const char *name, struct config **ret, char *err, size_t errlen);

void config_free(struct config *c);

const struct cfg_service *config_find_service(const struct config *c, const char *name);

const char *config_balance_name(enum balance b);

#endif
