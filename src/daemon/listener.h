/* listener: bind (or replace a stale Unix socket file), accept, pause and
 * resume. Accepting stops while the service has no capacity, while
 * handoffd is out of fds, and during shutdown; connections then wait in the
 * kernel backlog and cost handoffd nothing. */
#ifndef HANDOFF_LISTENER_H
#define HANDOFF_LISTENER_H

#include "daemon.h"

/* Open and bind the idx-th resolved address of l (a config listen entry) for
 * svc. Returns 0 with *ret, or -errno with a message in err. */
int listener_open(struct hd *hd, const struct cfg_service *cs, const struct cfg_listen *cl, int idx,
                  struct listener **ret, char *err, size_t errlen);

/* Start or stop polling according to the service, fd and shutdown state. */
void listener_update(struct listener *l);

/* A kept listener after a reload: apply cs's socket_mode, socket_owner and
 * socket_group to its socket file again (they may have changed). Logs a
 * failure; the listener stays as it is. */
void listener_reapply_file(struct listener *l, const struct cfg_service *cs);

/* Stop, close the socket (unlink its file if we made it) and free. */
void listener_close(struct listener *l);

/* Bind a Unix socket address; if the path exists and is a socket nobody
 * answers on (a non-blocking probe connect is refused), remove it and
 * retry. A live one (it answers, its backlog is full, or it is of another
 * type) gives -EADDRINUSE; one the probe may not connect to, -EACCES; a
 * path that is not a socket, -EEXIST. type is the socket's own type (for
 * the probe). */
int listener_bind_unix(int fd, const struct sockaddr *sa, socklen_t len, int type);

/* EMFILE/ENFILE: pause every listener and the control socket for 250 ms,
 * then retry; logged once per episode. */
void listener_starve(struct hd *hd, int err);
/* An accept succeeded: ends an episode, if one is under way (logs how long
 * it lasted); otherwise does nothing. */
void listener_fds_ok(struct hd *hd);

#endif
