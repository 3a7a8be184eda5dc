/* peerid: a control peer's cgroup, systemd unit and LSM label (see peerid.h
 * for the rules and where they come from). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peerid.h"

/* Older headers lack it; the kernel answers ENOPROTOOPT without an LSM. */
#ifndef SO_PEERSEC
#define SO_PEERSEC 31
#endif

/* /proc/PID/cgroup is one line per hierarchy: a dozen lines on a legacy or
 * hybrid host, one on a unified one. More than this is not a real file. */
#define PROC_CGROUP_MAX 8192

/* ---- unit names (systemd's unit_name_is_valid, PLAIN|INSTANCE) ---- */

static const char *const unit_types[] = {
	"service", "socket", "target", "device", "mount", "automount",
	"swap",    "timer",  "path",   "slice",  "scope",
};

static bool unit_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '-' ||
	       c == '_' || c == '.' || c == '\\';
}

/* The n bytes at s, as a unit name (s need not be NUL-terminated). */
static bool unit_name_valid_n(const char *s, size_t n)
{
	if (n == 0 || n >= PEERID_UNIT_MAX)
		return false;
	const char *dot = NULL;
	for (size_t i = n; i-- > 0;)
		if (s[i] == '.') {
			dot = s + i;
			break;
		}
	if (!dot || dot == s)
		return false;
	size_t tlen = n - (size_t)(dot + 1 - s);
	bool typed = false;
	for (size_t i = 0; i < sizeof(unit_types) / sizeof(unit_types[0]); i++)
		if (strlen(unit_types[i]) == tlen && memcmp(dot + 1, unit_types[i], tlen) == 0) {
			typed = true;
			break;
		}
	if (!typed)
		return false;
	const char *at = NULL;
	for (const char *p = s; p < dot; p++) {
		if (*p == '@') {
			if (!at)
				at = p;
			continue; /* further '@' belong to the instance */
		}
		if (!unit_char(*p))
			return false;
	}
	if (at == s)
		return false;         /* no prefix */
	return !at || dot > at + 1; /* plain, or an instance (not a template) */
}

bool peerid_unit_name_valid(const char *name)
{
	return name && unit_name_valid_n(name, strlen(name));
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* One path component (n bytes at p) with systemd's cgroup escape undone:
 * names that would clash with the kernel's own files, or start with '_' or
 * '.', are stored with one '_' in front. */
static void unescape(const char **p, size_t *n)
{
	if (*n > 0 && (*p)[0] == '_') {
		(*p)++;
		(*n)--;
	}
}

/* A component that skip_slices() passes over: a valid plain *.slice. */
static bool slice_component(const char *p, size_t n)
{
	if (n < strlen("x.slice") || !has_suffix(p, n, ".slice"))
		return false;
	unescape(&p, &n);
	if (!unit_name_valid_n(p, n))
		return false;
	return memchr(p, '@', n) == NULL; /* PLAIN only: slices have no instances */
}

int peerid_unit_from_cgroup(const char *cgroup_path, char *buf, size_t size)
{
	if (size > 0)
		buf[0] = '\0';
	if (!cgroup_path)
		return -ENXIO;
	const char *p = cgroup_path;
	size_t n;
	for (;;) {
		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (!slice_component(p, n))
			break;
		p += n;
	}
	if (n < 3) /* as systemd: "", ".", ".." and the like are never units */
		return -ENXIO;
	unescape(&p, &n);
	if (!unit_name_valid_n(p, n) || has_suffix(p, n, ".slice"))
		return -ENXIO;
	if (n >= size)
		return -ENOBUFS;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* ---- /proc/PID/cgroup ---- */

/* Does the comma-separated list (n bytes at s) hold word? */
static bool list_has(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);
	const char *end = s + n;
	while (s < end) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		size_t k = c ? (size_t)(c - s) : (size_t)(end - s);
		if (k == w && memcmp(s, word, w) == 0)
			return true;
		s += k + (c ? 1 : 0);
	}
	return false;
}

/* Does path (n bytes) climb out of our cgroup namespace? The kernel shows
 * a cgroup outside it as "/../..": ".." appears only there. */
static bool leaves_namespace(const char *path, size_t n)
{
	const char *p = path, *end = path + n;
	while (p < end) {
		while (p < end && *p == '/')
			p++;
		const char *c = memchr(p, '/', (size_t)(end - p));
		size_t k = c ? (size_t)(c - p) : (size_t)(end - p);
		if (k == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += k;
	}
	return false;
}

int peerid_parse_cgroup(const char *text, char *buf, size_t size)
{
	static const char deleted[] = " (deleted)";
	const char *v2 = NULL, *sd = NULL;
	size_t v2len = 0, sdlen = 0;

	if (size > 0)
		buf[0] = '\0';
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		/* ID:CONTROLLERS:PATH; the path may itself hold ':'. */
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			const char *path = c2 + 1;
			size_t plen = len - (size_t)(path - line);
			size_t clen = (size_t)(c2 - c1 - 1);
			if (c1 - line == 1 && line[0] == '0' && clen == 0) {
				if (v2)
					return -EBADMSG;
				v2 = path;
				v2len = plen;
			} else if (list_has(c1 + 1, clen, "name=systemd")) {
				if (sd)
					return -EBADMSG;
				sd = path;
				sdlen = plen;
			}
		}
		line = nl ? nl + 1 : NULL;
	}

	const char *path = v2 ? v2 : sd;
	size_t n = v2 ? v2len : sdlen;
	if (!path)
		return -ENODATA;
	if (n > strlen(deleted) && has_suffix(path, n, deleted))
		n -= strlen(deleted);
	if (n == 0 || path[0] != '/')
		return -EBADMSG;
	if (leaves_namespace(path, n))
		return -EXDEV;
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

int peerid_pidfd_alive(int pidfd)
{
	if (pidfd < 0)
		return -EBADF;
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 1;
	if (pfd.revents & POLLNVAL)
		return -EBADF;
	return 0; /* POLLIN (exited) or POLLHUP (reaped) */
}

int peerid_read_cgroup(pid_t pid, int pidfd, char *buf, size_t size)
{
	char path[64], data[PROC_CGROUP_MAX];
	size_t have = 0;
	int r;

	if (size > 0)
		buf[0] = '\0';
	if (pidfd < 0)
		return -EBADF;
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		ssize_t k = read(fd, data + have, sizeof(data) - 1 - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		if (k == 0)
			break;
		have += (size_t)k;
		if (have == sizeof(data) - 1) {
			close(fd);
			return -EFBIG; /* never cut a line: the v2 line comes last */
		}
	}
	close(fd);
	data[have] = '\0';

	r = peerid_parse_cgroup(data, buf, size);
	if (r < 0)
		return r;
	/* Only now: the process was alive after the read, so the pid named
	 * it (a pid is not reused before its process is reaped). */
	r = peerid_pidfd_alive(pidfd);
	if (r <= 0) {
		buf[0] = '\0';
		return r < 0 ? r : -ESRCH;
	}
	return 0;
}

/* ---- SO_PEERSEC ---- */

int peerid_label_from_raw(const char *raw, size_t len, char *buf, size_t size)
{
	while (len > 0 && raw[len - 1] == '\0')
		len--; /* SELinux counts the NUL, AppArmor does not */
	int r = len >= size ? -ERANGE : memchr(raw, '\0', len) ? -EBADMSG : 0;
	if (r == 0) {
		memmove(buf, raw, len);
		buf[len] = '\0';
		return len > 0;
	}
	if (size > 0)
		buf[0] = '\0';
	return r;
}

int peerid_read_label(int sockfd, char *buf, size_t size)
{
	if (size == 0)
		return -ERANGE;
	socklen_t len = size > 65536 ? 65536 : (socklen_t)size;
	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERSEC, buf, &len) < 0) {
		int e = errno;
		buf[0] = '\0';
		return e == ENOPROTOOPT ? 0 : -e; /* ENOPROTOOPT: no LSM gives labels */
	}
	if ((size_t)len > size) {
		buf[0] = '\0';
		return -ERANGE;
	}
	return peerid_label_from_raw(buf, len, buf, size);
}
