/* sdnotify: sd_notify, the fd store, the watchdog and sd_journal_send. */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
/* Without this, sd-journal.h adds CODE_FILE/CODE_LINE/CODE_FUNC of the one
 * call below to every entry: the same place each time, so noise. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define FDNAME_MAX 255 /* systemd's limit on FDNAME= */

int sdnotify_ready(void)
{
	return sd_notify(0, "READY=1");
}

int sdnotify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	                  (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

int sdnotify_stopping(void)
{
	return sd_notify(0, "STOPPING=1");
}

int sdnotify_status(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* One line: a newline would start an assignment of its own. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return sd_notifyf(0, "STATUS=%s", buf);
}

int sdnotify_mainpid(pid_t pid)
{
	if (pid <= 0)
		return -EINVAL;
	return sd_notifyf(0, "MAINPID=%d", (int)pid);
}

/* What systemd accepts as FDNAME= (fdname_is_valid): printable ASCII, no
 * ':' (the separator of LISTEN_FDNAMES), 1-255 characters. */
static bool fdname_ok(const char *name)
{
	size_t n = 0;
	if (!name)
		return false;
	for (const char *p = name; *p; p++, n++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e || *p == ':')
			return false;
	return n > 0 && n <= FDNAME_MAX;
}

int sdnotify_fdstore(int fd, const char *name)
{
	char msg[32 + FDNAME_MAX];
	if (fd < 0)
		return -EBADF;
	if (!fdname_ok(name))
		return -EINVAL;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	return sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
}

int sdnotify_fdstore_remove(const char *name)
{
	if (!fdname_ok(name))
		return -EINVAL;
	return sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

unsigned long long sdnotify_watchdog_usec(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return (unsigned long long)usec;
}

int sdnotify_watchdog(void)
{
	return sd_notify(0, "WATCHDOG=1");
}

int sdnotify_journal(int priority, const char *msg, const char *service, const char *peer, long backend_pid,
                     long backend_uid)
{
	/* sd_journal_sendv() takes each field as one "NAME=value" iovec
	 * (values may hold newlines: it encodes them). */
	char m[2048 + sizeof("MESSAGE=")];
	char f[6][FDNAME_MAX + 32];
	struct iovec iov[7];
	int n = 0, k = 0;
	if (priority < 0 || priority > 7)
		priority = 3; /* LOG_ERR */
	snprintf(m, sizeof(m), "MESSAGE=%s", msg ? msg : "");
	iov[n].iov_base = m;
	iov[n++].iov_len = strlen(m);
	snprintf(f[k++], sizeof(f[0]), "PRIORITY=%d", priority);
	snprintf(f[k++], sizeof(f[0]), "SYSLOG_IDENTIFIER=handoffd");
	if (service)
		snprintf(f[k++], sizeof(f[0]), "HANDOFF_SERVICE=%.255s", service);
	if (peer)
		snprintf(f[k++], sizeof(f[0]), "HANDOFF_PEER=%.255s", peer);
	if (backend_pid > 0)
		snprintf(f[k++], sizeof(f[0]), "HANDOFF_BACKEND_PID=%ld", backend_pid);
	if (backend_uid >= 0)
		snprintf(f[k++], sizeof(f[0]), "HANDOFF_BACKEND_UID=%ld", backend_uid);
	for (int i = 0; i < k; i++) {
		iov[n].iov_base = f[i];
		iov[n++].iov_len = strlen(f[i]);
	}
	/* libsystemd drops an entry silently (and returns 0) when the socket
	 * does not exist: look first, so that the caller can keep the line. */
	if (access(JOURNAL_SOCKET, W_OK) < 0)
		return -errno;
	return sd_journal_sendv(iov, n);
}
