/* activation: sockets handed to handoffd at start-up in the systemd
 * socket-activation protocol (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
 * LISTEN_PIDFDID): by systemd (a .socket unit, or the fd store on restart),
 * or by a previous handoffd handing over during an upgrade.
 *
 * Read once, before any listener is opened, without libsystemd (the format
 * is small and fixed; see sd_listen_fds(3)). Ownership: activation_take()
 * makes every passed fd close-on-exec and owns it; activation_claim*() moves
 * one to the caller; activation_close_unused() logs and closes the rest.
 *
 * Matching a listener of the configuration to a passed socket:
 *   1. a socket of the same type bound to exactly the same address;
 *   2. else a socket of the same type whose name (FileDescriptorName=) is
 *      the service's name.
 * A listener nothing matches is bound as usual.
 */
#ifndef HANDOFF_ACTIVATION_H
#define HANDOFF_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ACTIVATION_FD_START 3   /* SD_LISTEN_FDS_START */
#define ACTIVATION_MAX_FDS 4096
#define ACTIVATION_NAME_MAX 255
#define ACTIVATION_CONTROL_NAME "handoffd-control" /* the control socket, when passed */

struct activation_fd {
	int fd;                         /* -1 once claimed or closed */
	char name[ACTIVATION_NAME_MAX + 1];
	int socktype;
	struct sockaddr_storage addr;   /* getsockname() */
	socklen_t addr_len;
};

struct activation {
	struct activation_fd *v;
	int n;
};

/* Take the passed fds from the environment (and remove the variables, so
 * spawned programs do not inherit them). Returns how many (0 when none
 * were passed, or they were meant for another process: LISTEN_PID or
 * LISTEN_PIDFDID differ), or -errno with a sentence in err (a malformed
 * LISTEN_FDS, an fd that is not open). */
int activation_take(struct activation *a, char *err, size_t errlen);

/* A passed socket for listener address (addr, len) of type socktype of the
 * service svcname, or -1. The fd becomes the caller's. */
int activation_claim(struct activation *a, const char *svcname, const struct sockaddr *addr, socklen_t len,
                     int socktype);

/* A passed socket by name and type (e.g. the control socket), or -1. */
int activation_claim_name(struct activation *a, const char *name, int socktype);

/* The next passed socket whose name starts with prefix (its name copied to
 * name, size ACTIVATION_NAME_MAX + 1), or -1. */
int activation_claim_prefix(struct activation *a, const char *prefix, char *name);

/* Close every passed socket nothing claimed, logging each. */
void activation_close_unused(struct activation *a);

void activation_free(struct activation *a);

/* Pure helpers, exposed for tests. */
/* Same socket address (family, address, port; Unix path or abstract name)? */
bool activation_addr_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b, socklen_t blen);

#endif
