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

/* One journal entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=handoffd and the
 * structured fields given (NULL / 0 / -1: left out). Returns >= 0, or -errno
 * when the journal cannot be reached. */
int sdnotify_journal(int priority, const char *msg, const char *service, const char *peer, long backend_pid,
                     long backend_uid);

/* systemd's fd store (FileDescriptorStoreMax=): keep fd under name across
 * restarts (FDSTORE=1, FDNAME=name), or drop every fd of that name
 * (FDSTOREREMOVE=1). Return > 0 when sent, 0 without $NOTIFY_SOCKET,
 * -errno on failure (nothing is logged: the caller knows the context). */
int sdnotify_fdstore(int fd, const char *name);
int sdnotify_fdstore_remove(const char *name);

/* The watchdog interval systemd asked for (WATCHDOG_USEC, for this pid), in
 * microseconds, or 0 when none; and the keep-alive (WATCHDOG=1). */
unsigned long long sdnotify_watchdog_usec(void);
void sdnotify_watchdog(void);

#endif
