/* log: leveled stderr logging with a rate limit for peer-triggered lines. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

#include "log.h"
#include "sdnotify.h"

#define LOG_BURST 50

static int cur_level = LOG_LVL_NOTICE;
static int cur_target = LOG_TARGET_STDERR;
static bool syslog_open;
static struct {
	time_t sec;
	unsigned count;
	unsigned long suppressed;
} rl;

static const char *names[] = {"error", "warning", "notice", "info", "debug"};

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

/* systemd sets JOURNAL_STREAM=DEV:INO for a service whose stderr is the
 * journal: then stderr is connected to it. */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_target(int target)
{
	if (target == LOG_TARGET_AUTO)
		target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
	/* The journal library drops entries silently when journald is not
	 * running: say so once and keep using stderr. */
	if (target == LOG_TARGET_JOURNAL && access("/run/systemd/journal/socket", W_OK) < 0) {
		if (cur_target != LOG_TARGET_STDERR || target != cur_target)
			log_msg(LOG_LVL_WARNING, "log = journal, but journald is not running here: logging to stderr");
		target = LOG_TARGET_STDERR;
	}
	if (target == LOG_TARGET_SYSLOG && !syslog_open) {
		openlog("handoffd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		syslog_open = true;
	}
	cur_target = target;
}

static void vlog(int level, const struct log_fields *f, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};
	char buf[2048];
	if (cur_target == LOG_TARGET_JOURNAL || cur_target == LOG_TARGET_SYSLOG) {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		if (cur_target == LOG_TARGET_SYSLOG) {
			syslog(prio[level], "%s", buf);
			return;
		}
		if (sdnotify_journal(prio[level], buf, f ? f->service : NULL, f ? f->peer : NULL,
		                     f ? f->backend_pid : 0, f ? f->backend_uid : -1) >= 0)
			return;
		/* No journal after all: fall back to stderr, with the prefix. */
		char line[2200];
		int n = snprintf(line, sizeof(line), "handoffd[%d]: %s: %s\n", (int)getpid(), names[level], buf);
		if (n > 0) {
			ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
			(void)w;
		}
		return;
	}
	int n = snprintf(buf, sizeof(buf), "handoffd[%d]: %s: ", (int)getpid(), names[level]);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = strlen(buf);
	buf[len++] = '\n';
	/* One write per line so lines from concurrent writers do not mix. */
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
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
