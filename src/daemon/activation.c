/* activation: LISTEN_FDS sockets from systemd or a previous handoffd. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "addr.h"
#include "log.h"

static void clear_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("LISTEN_PIDFDID");
}

static int parse_ulong(const char *s, unsigned long long *ret)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* LISTEN_PIDFDID: the inode of a pidfd for the intended process (pidfs).
 * Returns true when it names us or cannot be checked on this kernel. */
static bool pidfdid_is_us(const char *v)
{
	unsigned long long want;
	if (parse_ulong(v, &want) < 0)
		return false;
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pfd < 0)
		return true; /* no pidfds: LISTEN_PID already matched */
	struct stat st;
	int rc = fstat(pfd, &st);
	close(pfd);
	if (rc < 0)
		return true;
	return (unsigned long long)st.st_ino == want;
#else
	return true;
#endif
}

int activation_take(struct activation *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES"), *pidfdid = getenv("LISTEN_PIDFDID");
	unsigned long long pid, n;

	if (!spid && !sfds)
		return 0;
	if (parse_ulong(spid, &pid) < 0 || (pid_t)pid != getpid()) {
		log_info("LISTEN_FDS present but LISTEN_PID=%s is not us (pid %d): ignoring them", spid ? spid : "(unset)",
		         (int)getpid());
		clear_env();
		return 0;
	}
	if (pidfdid && !pidfdid_is_us(pidfdid)) {
		log_info("LISTEN_PIDFDID=%s does not name this process: ignoring the passed sockets", pidfdid);
		clear_env();
		return 0;
	}
	if (parse_ulong(sfds, &n) < 0 || n > ACTIVATION_MAX_FDS) {
		snprintf(err, errlen, "LISTEN_FDS=%s is not a number 0..%d", sfds ? sfds : "(unset)", ACTIVATION_MAX_FDS);
		clear_env();
		return -EINVAL;
	}
	if (n == 0) {
		clear_env();
		return 0;
	}
	a->v = calloc((size_t)n, sizeof(*a->v));
	if (!a->v) {
		snprintf(err, errlen, "out of memory");
		clear_env();
		return -ENOMEM;
	}
	const char *np = names;
	for (unsigned long long i = 0; i < n; i++) {
		struct activation_fd *f = &a->v[a->n];
		int fd = ACTIVATION_FD_START + (int)i;
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0) {
			snprintf(err, errlen, "LISTEN_FDS=%llu but fd %d is not open", n, fd);
			activation_free(a);
			clear_env();
			return -EBADF;
		}
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
		f->fd = fd;
		/* Names are separated by ':'; a missing one is "unknown". */
		size_t len = 0;
		if (np) {
			const char *colon = strchr(np, ':');
			len = colon ? (size_t)(colon - np) : strlen(np);
			if (len > ACTIVATION_NAME_MAX)
				len = ACTIVATION_NAME_MAX;
			memcpy(f->name, np, len);
			np = colon ? colon + 1 : NULL;
		}
		f->name[len] = '\0';
		if (!f->name[0])
			snprintf(f->name, sizeof(f->name), "unknown");
		socklen_t tl = sizeof(f->socktype);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &f->socktype, &tl) < 0)
			f->socktype = -1; /* not a socket: nothing will claim it */
		f->addr_len = sizeof(f->addr);
		if (f->socktype < 0 || getsockname(fd, (struct sockaddr *)&f->addr, &f->addr_len) < 0)
			f->addr_len = 0;
		a->n++;
	}
	clear_env();
	log_info("%d socket%s passed in (LISTEN_FDS)", a->n, a->n == 1 ? "" : "s");
	return a->n;
}

bool activation_addr_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b, socklen_t blen)
{
	if (alen < (socklen_t)sizeof(sa_family_t) || blen < (socklen_t)sizeof(sa_family_t) ||
	    a->sa_family != b->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		if (alen < (socklen_t)sizeof(*x) || blen < (socklen_t)sizeof(*y))
			return false;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		if (alen < (socklen_t)sizeof(*x) || blen < (socklen_t)sizeof(*y))
			return false;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX: {
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (alen <= (socklen_t)off || blen <= (socklen_t)off)
			return false;
		const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
		size_t xl = (size_t)alen - off, yl = (size_t)blen - off;
		if (x->sun_path[0] != '\0') /* a path: compare up to its NUL */
			xl = strnlen(x->sun_path, xl);
		if (y->sun_path[0] != '\0')
			yl = strnlen(y->sun_path, yl);
		return xl == yl && memcmp(x->sun_path, y->sun_path, xl) == 0;
	}
	}
	return false;
}

static int claim(struct activation_fd *f)
{
	int fd = f->fd;
	f->fd = -1;
	return fd;
}

int activation_claim(struct activation *a, const char *svcname, const struct sockaddr *addr, socklen_t len,
                     int socktype)
{
	if (!a)
		return -1;
	for (int i = 0; i < a->n; i++) {
		struct activation_fd *f = &a->v[i];
		if (f->fd >= 0 && f->socktype == socktype &&
		    activation_addr_equal((const struct sockaddr *)&f->addr, f->addr_len, addr, len))
			return claim(f);
	}
	for (int i = 0; i < a->n; i++) {
		struct activation_fd *f = &a->v[i];
		if (f->fd >= 0 && f->socktype == socktype && f->addr_len && strcmp(f->name, svcname) == 0) {
			char have[ADDR_TEXT_MAX], want[ADDR_TEXT_MAX];
			addr_format((const struct sockaddr *)&f->addr, f->addr_len, have, sizeof(have));
			addr_format(addr, len, want, sizeof(want));
			log_notice("service '%s': using the passed socket named '%s' (%s) instead of binding %s", svcname,
			           f->name, have, want);
			return claim(f);
		}
	}
	return -1;
}

int activation_claim_name(struct activation *a, const char *name, int socktype)
{
	if (!a)
		return -1;
	for (int i = 0; i < a->n; i++) {
		struct activation_fd *f = &a->v[i];
		if (f->fd >= 0 && f->socktype == socktype && strcmp(f->name, name) == 0)
			return claim(f);
	}
	return -1;
}

int activation_claim_prefix(struct activation *a, const char *prefix, char *name)
{
	if (!a)
		return -1;
	for (int i = 0; i < a->n; i++) {
		struct activation_fd *f = &a->v[i];
		if (f->fd >= 0 && strncmp(f->name, prefix, strlen(prefix)) == 0) {
			memcpy(name, f->name, sizeof(f->name));
			return claim(f);
		}
	}
	return -1;
}

void activation_close_unused(struct activation *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->n; i++) {
		struct activation_fd *f = &a->v[i];
		if (f->fd < 0)
			continue;
		char where[ADDR_TEXT_MAX] = "not a socket";
		if (f->addr_len)
			addr_format((const struct sockaddr *)&f->addr, f->addr_len, where, sizeof(where));
		log_warning("passed socket fd %d named '%s' (%s) matches no listener of the configuration: closing it",
		            f->fd, f->name, where);
		close(f->fd);
		f->fd = -1;
	}
}

void activation_free(struct activation *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->n; i++)
		if (a->v[i].fd >= 0)
			close(a->v[i].fd);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}
