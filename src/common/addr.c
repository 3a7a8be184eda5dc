/* addr: listen address parsing, resolution and formatting. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int addr_numeric_only;

static int why(const char **ret_why, const char *w)
{
	if (ret_why)
		*ret_why = w;
	return -EINVAL;
}

static int parse_port(const char *s, uint16_t *ret)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535 || end - s > 5)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int addr_parse(const char *text, struct addr_spec *ret, const char **ret_why)
{
	memset(ret, 0, sizeof(*ret));
	if (!text)
		return why(ret_why, "empty address");

	static const struct {
		const char *prefix;
		int socktype;
	} unix_forms[] = {
		{"unix:", SOCK_STREAM},
		{"unix-dgram:", SOCK_DGRAM},
		{"unix-seqpacket:", SOCK_SEQPACKET},
	};
	for (size_t i = 0; i < sizeof(unix_forms) / sizeof(unix_forms[0]); i++) {
		size_t plen = strlen(unix_forms[i].prefix);
		if (strncmp(text, unix_forms[i].prefix, plen) != 0)
			continue;
		const char *p = text + plen;
		ret->kind = ADDR_UNIX;
		ret->socktype = unix_forms[i].socktype;
		if (*p == '@') {
			ret->abstract = 1;
			p++;
			if (!*p)
				return why(ret_why, "abstract socket name is empty");
		} else if (*p != '/') {
			return why(ret_why, "unix socket path must be absolute (unix:/path) or abstract (unix:@name)");
		}
		/* Abstract names need one byte for the leading NUL. */
		if (strlen(p) + (ret->abstract ? 1 : 0) >= sizeof(ret->path))
			return why(ret_why, "unix socket path too long (107 bytes at most)");
		memcpy(ret->path, p, strlen(p) + 1);
		return 0;
	}

	if (strncmp(text, "tcp://", 6) == 0) {
		ret->kind = ADDR_TCP;
		ret->socktype = SOCK_STREAM;
	} else if (strncmp(text, "udp://", 6) == 0) {
		ret->kind = ADDR_UDP;
		ret->socktype = SOCK_DGRAM;
	} else {
		return why(ret_why, "address must start with tcp://, udp://, unix:, unix-dgram: or unix-seqpacket:");
	}
	const char *p = text + 6;
	const char *colon;
	size_t hlen;
	if (*p == '[') {
		const char *rb = strchr(p, ']');
		if (!rb)
			return why(ret_why, "missing ']' after IPv6 address");
		if (rb[1] != ':')
			return why(ret_why, "missing :PORT after ']'");
		hlen = (size_t)(rb - p - 1);
		if (hlen == 0 || hlen >= sizeof(ret->host))
			return why(ret_why, "bad IPv6 address length");
		memcpy(ret->host, p + 1, hlen);
		ret->host[hlen] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, ret->host, &a6) != 1)
			return why(ret_why, "not an IPv6 address inside [...]");
		colon = rb + 1;
	} else {
		colon = strrchr(p, ':');
		if (!colon)
			return why(ret_why, "missing :PORT");
		hlen = (size_t)(colon - p);
		if (hlen == 0)
			return why(ret_why, "missing host (use * for every address)");
		if (hlen >= sizeof(ret->host))
			return why(ret_why, "host name too long");
		memcpy(ret->host, p, hlen);
		ret->host[hlen] = '\0';
		if (strchr(ret->host, ':'))
			return why(ret_why, "IPv6 addresses need brackets: tcp://[::1]:80");
		for (const char *h = ret->host; *h; h++) {
			if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
			      *h == '.' || *h == '-' || *h == '_' || (*h == '*' && hlen == 1)))
				return why(ret_why, "bad character in host name");
		}
	}
	if (parse_port(colon + 1, &ret->port) < 0)
		return why(ret_why, "port must be a number 0..65535");
	return 0;
}

int addr_spec_format(const struct addr_spec *s, char *buf, size_t size)
{
	int n;
	if (s->kind == ADDR_UNIX) {
		const char *scheme = s->socktype == SOCK_DGRAM       ? "unix-dgram"
		                     : s->socktype == SOCK_SEQPACKET ? "unix-seqpacket"
		                                                     : "unix";
		n = snprintf(buf, size, "%s:%s%s", scheme, s->abstract ? "@" : "", s->path);
	} else {
		const char *scheme = s->kind == ADDR_UDP ? "udp" : "tcp";
		if (strchr(s->host, ':'))
			n = snprintf(buf, size, "%s://[%s]:%u", scheme, s->host, s->port);
		else
			n = snprintf(buf, size, "%s://%s:%u", scheme, s->host, s->port);
	}
	return (n < 0 || (size_t)n >= size) ? -ENOSPC : n;
}

int addr_resolve(const struct addr_spec *s, struct addr_bound *ret, int max, const char **ret_why)
{
	if (max < 1)
		return why(ret_why, "no room");
	memset(ret, 0, sizeof(*ret) * (size_t)max);
	if (s->kind == ADDR_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ret[0].ss;
		size_t n = strlen(s->path);
		un->sun_family = AF_UNIX;
		if (s->abstract) {
			un->sun_path[0] = '\0';
			memcpy(un->sun_path + 1, s->path, n);
			ret[0].len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
		} else {
			memcpy(un->sun_path, s->path, n + 1);
			ret[0].len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		}
		return 1;
	}
	if (s->kind != ADDR_TCP && s->kind != ADDR_UDP)
		return why(ret_why, "unknown address kind");
	if (strcmp(s->host, "*") == 0) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ret[0].ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		a6->sin6_port = htons(s->port);
		ret[0].len = sizeof(*a6);
		ret[0].dual_stack = 1;
		return 1;
	}
	struct addrinfo hints = {.ai_socktype = s->socktype,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV | (addr_numeric_only ? AI_NUMERICHOST : 0)};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", s->port);
	int rc = getaddrinfo(s->host, port, &hints, &res);
	if (rc != 0) {
		if (ret_why)
			*ret_why = gai_strerror(rc);
		return -ENOENT;
	}
	int n = 0;
	for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_addrlen > sizeof(ret[n].ss))
			continue;
		int dup = 0;
		for (int i = 0; i < n; i++)
			if (ret[i].len == ai->ai_addrlen && memcmp(&ret[i].ss, ai->ai_addr, ai->ai_addrlen) == 0)
				dup = 1;
		if (dup)
			continue;
		memcpy(&ret[n].ss, ai->ai_addr, ai->ai_addrlen);
		ret[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		if (ret_why)
			*ret_why = "name has no IPv4 or IPv6 address";
		return -ENOENT;
	}
	return n;
}

int addr_unix(const char *path, struct sockaddr_un *ret, socklen_t *ret_len)
{
	size_t n = strlen(path);
	bool abstract = path[0] == '@';
	memset(ret, 0, sizeof(*ret));
	ret->sun_family = AF_UNIX;
	if (n < (abstract ? 2 : 1))
		return -EINVAL;
	/* A path needs room for its NUL; an abstract name puts a NUL where the
	 * '@' is and has no terminator. */
	if (n > sizeof(ret->sun_path) - (abstract ? 0 : 1))
		return -ENAMETOOLONG;
	memcpy(ret->sun_path, path, n);
	if (abstract)
		ret->sun_path[0] = '\0';
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 0 : 1));
	return 0;
}

int addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char h[INET6_ADDRSTRLEN];
	int n;
	if (!sa || len < (socklen_t)sizeof(sa_family_t)) {
		n = snprintf(buf, size, "(unknown)");
	} else if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		n = snprintf(buf, size, "%s:%u", h, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			/* An IPv4 client of a dual-stack listener: show it as IPv4. */
			inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, h, sizeof(h));
			n = snprintf(buf, size, "%s:%u", h, ntohs(a->sin6_port));
		} else {
			inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
			n = snprintf(buf, size, "[%s]:%u", h, ntohs(a->sin6_port));
		}
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *u = (const struct sockaddr_un *)sa;
		size_t plen = len - offsetof(struct sockaddr_un, sun_path);
		if (len <= (socklen_t)offsetof(struct sockaddr_un, sun_path) || plen == 0) {
			n = snprintf(buf, size, "unix:(unnamed)");
		} else if (u->sun_path[0] == '\0') {
			n = snprintf(buf, size, "unix:@%.*s", (int)(plen - 1), u->sun_path + 1);
		} else {
			n = snprintf(buf, size, "unix:%.*s", (int)strnlen(u->sun_path, plen), u->sun_path);
		}
	} else {
		n = snprintf(buf, size, "(family %d)", sa->sa_family);
	}
	return (n < 0 || (size_t)n >= size) ? -ENOSPC : n;
}

uint64_t addr_hash_source(const struct sockaddr *sa, socklen_t len)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	if (sa && len >= (socklen_t)sizeof(sa_family_t)) {
		if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
			p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
			n = 4;
		} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
			const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
			/* An IPv4 client on a dual-stack socket hashes like plain IPv4. */
			if (IN6_IS_ADDR_V4MAPPED(a)) {
				p = a->s6_addr + 12;
				n = 4;
			} else {
				p = a->s6_addr;
				n = 16;
			}
		} else if (sa->sa_family == AF_UNIX) {
			p = (const uint8_t *)((const struct sockaddr_un *)sa)->sun_path;
			n = len - offsetof(struct sockaddr_un, sun_path);
		}
	}
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}
