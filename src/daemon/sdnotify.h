/* sdnotify: the only includer of <systemd/...>. Tells a supervising
 * systemd (or anything speaking $NOTIFY_SOCKET) about readiness, reloads,
 * shutdown and the watchdog; keeps fds in its fd store; and sends journal
 * entries for log.c (which is why journal code lives here: the house rule
 * keeps every libsystemd call in this one file).
 *
 * The notify calls return > 0 when the message was sent, 0 when
 * $NOTIFY_SOCKET is unset (no supervisor: nothing to do), -errno on
 * failure. They never log (log.c logs through this file) and never take
 * ownership of an fd: the store gets a copy (SCM_RIGHTS), the caller keeps
 * and closes its own. Each is one datagram on a fresh close-on-exec socket;
 * the environment is left as it is, so a re-executed handoffd (upgrade)
 * can still notify. */
#ifndef HANDOFF_SDNOTIFY_H
#define HANDOFF_SDNOTIFY_H

#include <sys/types.h>

/* READY=1: every listener and the control socket are up (also after a
 * reload, refused or not). */
int sdnotify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs> (systemd >= 253
 * needs it for Type=notify-reload; older ones ignore it). */
int sdnotify_reloading(void);
/* STOPPING=1. */
int sdnotify_stopping(void);
/* STATUS=<one line>: at most 255 bytes; newlines and other control
 * characters become spaces, so the text cannot add assignments. */
int sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An upgrade hands over to pid: MAINPID=pid (the old main process may say
 * it; with NotifyAccess=main only it may). */
int sdnotify_mainpid(pid_t pid);

/* systemd's fd store (FileDescriptorStoreMax=): keep a copy of fd under
 * name across restarts (FDSTORE=1, FDNAME=name), or drop every fd of that
 * name (FDSTOREREMOVE=1, FDNAME=name). A name is 1-255 printable ASCII
 * characters without ':' (-EINVAL otherwise, as systemd would refuse it);
 * fd < 0 is -EBADF. Same returns as above. */
int sdnotify_fdstore(int fd, const char *name);
int sdnotify_fdstore_remove(const char *name);

/* The watchdog interval systemd asked for (WATCHDOG_USEC, and
 * WATCHDOG_PID = this pid when set), in microseconds, or 0 when none or
 * malformed. unsigned long long: WatchdogSec=1h is 3.6e9 µs. main.c sends
 * the keep-alive (WATCHDOG=1) from a timer at half that interval. */
unsigned long long sdnotify_watchdog_usec(void);
int sdnotify_watchdog(void);

/* One journal entry: MESSAGE=msg, PRIORITY=priority (syslog's 0-7),
 * SYSLOG_IDENTIFIER=handoffd and the structured fields given: HANDOFF_SERVICE
 * (NULL: left out), HANDOFF_PEER (NULL: left out), HANDOFF_BACKEND_PID
 * (<= 0: left out), HANDOFF_BACKEND_UID (< 0: left out). Values are cut at
 * 2 KiB (message) or 255 bytes (fields). Returns >= 0, or -errno when the
 * journal cannot be reached: no /run/systemd/journal/socket (-ENOENT; checked
 * here, as libsystemd would drop the entry and return 0) or nobody behind it
 * (-ECONNREFUSED). log.c then writes the line to stderr. */
int sdnotify_journal(int priority, const char *msg, const char *service, const char *peer, long backend_pid,
                     long backend_uid);

#endif
