/* sdnotify: sd_notify wrappers. */
#include "autoconf.h"

#include <stdarg.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "sdnotify.h"

void sdnotify_ready(void)
{
	sd_notify(0, "READY=1");
}

void sdnotify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	           (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

void sdnotify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void sdnotify_status(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

void sdnotify_mainpid(pid_t pid)
{
	sd_notifyf(0, "MAINPID=%d", (int)pid);
}

int sdnotify_fdstore(int fd, const char *name)
{
	char msg[320];
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	return sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
}

int sdnotify_fdstore_remove(const char *name)
{
	return sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

unsigned long long sdnotify_watchdog_usec(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return (unsigned long long)usec;
}

void sdnotify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

int sdnotify_journal(int priority, const char *msg, const char *service, const char *peer, long backend_pid,
                     long backend_uid)
{
	char f[7][2200];
	struct iovec iov[7];
	int n = 0;
	snprintf(f[n], sizeof(f[n]), "MESSAGE=%s", msg);
	n++;
	snprintf(f[n++], sizeof(f[0]), "PRIORITY=%d", priority);
	snprintf(f[n++], sizeof(f[0]), "SYSLOG_IDENTIFIER=handoffd");
	if (service)
		snprintf(f[n++], sizeof(f[0]), "HANDOFF_SERVICE=%s", service);
	if (peer)
		snprintf(f[n++], sizeof(f[0]), "HANDOFF_PEER=%s", peer);
	if (backend_pid > 0)
		snprintf(f[n++], sizeof(f[0]), "HANDOFF_BACKEND_PID=%ld", backend_pid);
	if (backend_uid >= 0)
		snprintf(f[n++], sizeof(f[0]), "HANDOFF_BACKEND_UID=%ld", backend_uid);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = f[i];
		iov[i].iov_len = strlen(f[i]);
	}
	return sd_journal_sendv(iov, n);
}
