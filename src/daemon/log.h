/* log: leveled messages on stderr. The only module state outside main.c's
 * context: the level and rate limiter, set once at start-up (or reload). */
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

/* Where lines go from now on (enum log_target); AUTO is resolved here. */
void log_set_target(int target);

/* Structured fields for the journal (HANDOFF_SERVICE, HANDOFF_PEER,
 * HANDOFF_BACKEND_PID, HANDOFF_BACKEND_UID); other targets print the line
 * as usual. NULL / 0 fields are left out. */
struct log_fields {
	const char *service;
	const char *peer;
	long backend_pid;
	long backend_uid; /* -1 = none */
};
void log_with(int level, const struct log_fields *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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
