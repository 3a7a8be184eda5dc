/* sdnotify: the only includer of <systemd/...>. Tells a supervising
 * systemd (or anything speaking $NOTIFY_SOCKET) about readiness, reloads
 * and shutdown; does nothing when NOTIFY_SOCKET is unset. */
#ifndef HANDOFF_SDNOTIFY_H
#define HANDOFF_SDNOTIFY_H

#include <sys/types.h>

void sdnotify_ready(void);
void sdnotify_reloading(void);
void sdnotify_stopping(void);
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An upgrade hands over to pid: MAINPID=pid (the old main process may say
 * it; with NotifyAccess=main only it may). */
void sdnotify_mainpid(pid_t pid);

#endif
