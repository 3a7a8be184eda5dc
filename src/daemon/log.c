/* log: leveled logging to stderr, the journal (through sdnotify.c) or
 * syslog, with a rate limit for peer-triggered lines. */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

#define LOG_BURST 50
#define LOG_MSG_MAX 2048 /* a formatted message; longer ones are cut */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int cur_level = LOG_LVL_NOTICE;
static int cur_target = LOG_TARGET_STDERR;
static int warned_for = -1; /* configured target whose fallback was reported */
static bool syslog_open;
static struct {
	time_t sec;
	unsigned count;
	unsigned long suppressed;
} rl;

static const char *const names[] = {"error", "warning", "notice", "info", "debug"};
static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

int log_target_parse(const char *s)
{
	static const char *const t[] = {"auto", "journal", "syslog", "stderr"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, t[i]) == 0)
			return i;
	return -1;
}

void log_set_level(int level)
{
	cur_level = level;
}

int log_get_level(void)
{
	return cur_level;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return LOG_LVL_WARNING;
	return -1;
}

/* An unsigned decimal that fills [s, end) exactly. */
static bool parse_ull(const char *s, const char *end, unsigned long long *ret)
{
	char *e;
	if (s == end || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*ret = strtoull(s, &e, 10);
	return errno == 0 && e == end;
}

/* systemd sets JOURNAL_STREAM=DEV:INO for a service whose stdout/stderr is
 * a stream to journald; it is ours only if fd 2 is still that file (a
 * child whose stderr was redirected inherits the variable). */
bool log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	const char *colon = v ? strchr(v, ':') : NULL;
	unsigned long long dev, ino;
	struct stat st;
	if (!colon || !parse_ull(v, colon, &dev) || !parse_ull(colon + 1, colon + 1 + strlen(colon + 1), &ino))
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_target(int want)
{
	int target = want;
	const char *why = NULL;
	if (target == LOG_TARGET_AUTO)
		target = log_stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
	/* sd_journal_send() and syslog() drop lines silently when nobody
	 * listens: say so once and use stderr. For AUTO, stderr is the journal
	 * stream anyway, so there is nothing to say. */
	if (target == LOG_TARGET_JOURNAL && access(JOURNAL_SOCKET, W_OK) < 0) {
		if (want == LOG_TARGET_JOURNAL)
			why = "log = journal, but journald is not running here (no " JOURNAL_SOCKET "): logging to stderr";
		target = LOG_TARGET_STDERR;
	} else if (target == LOG_TARGET_SYSLOG && access(_PATH_LOG, W_OK) < 0) {
		why = "log = syslog, but nothing listens on " _PATH_LOG ": logging to stderr";
		target = LOG_TARGET_STDERR;
	} else if (target != LOG_TARGET_JOURNAL && target != LOG_TARGET_SYSLOG) {
		target = LOG_TARGET_STDERR;
	}
	if (target != LOG_TARGET_SYSLOG && syslog_open) {
		closelog();
		syslog_open = false;
	}
	/* LOG_NDELAY: connect now, before privileges are dropped. */
	if (target == LOG_TARGET_SYSLOG && !syslog_open) {
		openlog("handoffd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		syslog_open = true;
	}
	cur_target = target;
	if (why && warned_for != want)
		log_msg(LOG_LVL_WARNING, "%s", why);
	warned_for = why ? want : -1;
}

int log_get_target(void)
{
	return cur_target;
}

/* Copy src to dst (size > 0) so that no peer-supplied byte can end the
 * line early or forge another: control characters become '?', a newline
 * becomes a continuation "\n\t", trailing newlines go. Returns the length. */
static size_t sanitize(char *dst, size_t size, const char *src)
{
	size_t n = 0, end = strlen(src);
	while (end > 0 && src[end - 1] == '\n')
		end--;
	for (size_t i = 0; i < end && n + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\n') {
			if (n + 2 >= size)
				break;
			dst[n++] = '\n';
			dst[n++] = '\t';
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			dst[n++] = '?';
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

/* handoffd[PID]: LEVEL: MESSAGE\n in one write. */
static void write_stderr(int level, const char *msg)
{
	char line[2 * LOG_MSG_MAX + 64];
	int n = snprintf(line, sizeof(line), "handoffd[%d]: %s: ", (int)getpid(), names[level]);
	if (n < 0)
		return;
	size_t len = (size_t)n + sanitize(line + n, sizeof(line) - (size_t)n - 1, msg);
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

static void vlog(int level, const struct log_fields *f, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX];
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	if (cur_target == LOG_TARGET_STDERR) {
		write_stderr(level, msg);
		return;
	}
	char clean[2 * LOG_MSG_MAX];
	sanitize(clean, sizeof(clean), msg);
	if (cur_target == LOG_TARGET_SYSLOG) {
		syslog(prio[level], "%s", clean);
		return;
	}
	if (sdnotify_journal(prio[level], clean, f ? f->service : NULL, f ? f->peer : NULL, f ? f->backend_pid : 0,
	                     f ? f->backend_uid : -1) < 0)
		write_stderr(level, msg); /* journald went away: keep the line */
}

void log_with(int level, const struct log_fields *f, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, f, fmt, ap);
	va_end(ap);
}

void log_svc(int level, const char *service, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	struct log_fields f = {.service = service, .backend_uid = -1};
	va_list ap;
	va_start(ap, fmt);
	vlog(level, &f, fmt, ap);
	va_end(ap);
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

/* The limiter for peer-triggered lines: at most LOG_BURST per second. */
static bool peer_rate_ok(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != rl.sec) {
		if (rl.suppressed)
			log_msg(LOG_LVL_WARNING, "%lu peer messages suppressed (more than %d per second)",
			        rl.suppressed, LOG_BURST);
		rl.sec = ts.tv_sec;
		rl.count = 0;
		rl.suppressed = 0;
	}
	if (++rl.count > LOG_BURST) {
		rl.suppressed++;
		return false;
	}
	return true;
}

void log_peer(int level, const char *fmt, ...)
{
	if (level > cur_level || !peer_rate_ok())
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

void log_peer_with(int level, const struct log_fields *f, const char *fmt, ...)
{
	if (level > cur_level || !peer_rate_ok())
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, f, fmt, ap);
	va_end(ap);
}
