/* log: leveled messages to stderr, the systemd journal or syslog.
 *
 * The only module state outside main.c's context: the level, the target
 * and the rate limiter, set at start-up and on reload (log_set_level,
 * log_set_target). log.c allocates nothing: each line is formatted into a
 * bounded stack buffer (longer messages are cut, at 2 KiB) and sent with
 * one call, so lines from concurrent writers never mix.
 *
 * Messages may quote what a peer sent: control characters are shown as
 * '?', and a newline is kept only as a continuation ("\n\t"), so no peer
 * can forge a line of its own.
 *
 * The journal is reached through sdnotify.c (sdnotify_journal), the only
 * includer of <systemd/...>; syslog through libc (openlog LOG_NDELAY, so
 * its socket is open, close-on-exec, before privileges are dropped). Both
 * are datagram sockets to a local daemon: one send per line, no waiting
 * for an answer (a send waits only while that daemon's queue is full, as a
 * write to stderr would when it is a pipe or the journal stream). */
#ifndef HANDOFF_LOG_H
#define HANDOFF_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARNING, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Where lines go (config key log). AUTO: the journal when stderr is
 * connected to it ($JOURNAL_STREAM matches stderr), else stderr. */
enum log_target { LOG_TARGET_AUTO = 0, LOG_TARGET_JOURNAL, LOG_TARGET_SYSLOG, LOG_TARGET_STDERR };

/* Parse "auto|journal|syslog|stderr"; returns the target or -1. */
int log_target_parse(const char *s);

void log_set_level(int level);
int log_get_level(void);
/* Parse "error|warning|notice|info|debug"; returns level or -1. */
int log_level_parse(const char *s);

/* Where lines go from now on (enum log_target); AUTO is resolved here.
 * journal without a journald (no /run/systemd/journal/socket) and syslog
 * without /dev/log fall back to stderr, with one warning per change of
 * the configured target (none for AUTO, whose stderr is the journal
 * anyway). Switching away from syslog closes its socket. Safe to call
 * again on every reload. */
void log_set_target(int target);
/* The target in use: JOURNAL, SYSLOG or STDERR (never AUTO). */
int log_get_target(void);
/* True when $JOURNAL_STREAM ("DEV:INO") names the file on fd 2. */
bool log_stderr_is_journal(void);

/* Structured fields for the journal (HANDOFF_SERVICE, HANDOFF_PEER,
 * HANDOFF_BACKEND_PID, HANDOFF_BACKEND_UID); other targets print the line
 * as usual. NULL service/peer, backend_pid <= 0 and backend_uid < 0 are
 * left out: initialise backend_uid = -1 when there is no backend (a
 * designated initialiser would otherwise leave 0, which is root). */
struct log_fields {
	const char *service;
	const char *peer;
	long backend_pid;
	long backend_uid; /* -1 = none */
};
void log_with(int level, const struct log_fields *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* log_with() with only HANDOFF_SERVICE=service. */
void log_svc(int level, const char *service, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, but for messages a peer can trigger repeatedly: at most
 * LOG_BURST per second; the count of suppressed ones is logged later. */
void log_peer(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_peer_with(int level, const struct log_fields *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
