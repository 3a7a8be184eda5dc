/* log: leveled stderr logging with a rate limit for peer-triggered lines. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_BURST 50

static int cur_level = LOG_LVL_NOTICE;
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

static void vlog(int level, const char *fmt, va_list ap)
{
	char buf[2048];
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

void log_msg(int level, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void log_peer(int level, const char *fmt, ...)
{
	if (level > cur_level)
		return;
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
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
