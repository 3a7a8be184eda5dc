/* acl: address and peer-credential access rules. See acl.h for the rules;
 * this file only implements them. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : -1;
}

/* Are the first bits bits of a and b equal? */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* Is any bit from bit number bits on set in addr (nbits long)? */
static bool host_bits_set(const uint8_t *addr, int bits, int nbits)
{
	for (int i = bits; i < nbits; i++)
		if (addr[i / 8] & (0x80 >> (i % 8)))
			return true;
	return false;
}

int acl_cidr_parse(const char *text, struct cfg_cidr *ret, const char **ret_why)
{
	char host[INET6_ADDRSTRLEN];
	struct cfg_cidr c;
	const char *why;

	memset(&c, 0, sizeof(c));
	if (!text || !*text) {
		why = "empty address: expected a network such as 192.0.2.0/24 or 2001:db8::/32";
		goto fail;
	}
	if (strpbrk(text, "[]")) {
		why = "brackets are not used here: write an IPv6 network as 2001:db8::/32";
		goto fail;
	}
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	if (hlen == 0) {
		why = "no address before the '/'";
		goto fail;
	}
	if (hlen >= sizeof(host)) {
		why = "not an IPv4 or IPv6 address";
		goto fail;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (strchr(host, '%')) {
		why = "IPv6 zones ('%') are not used here";
		goto fail;
	}
	if (inet_pton(AF_INET, host, c.addr) == 1) {
		c.family = AF_INET;
	} else if (inet_pton(AF_INET6, host, c.addr) == 1) {
		c.family = AF_INET6;
	} else {
		why = "not an IPv4 or IPv6 address (host names are not allowed here)";
		goto fail;
	}
	int max = family_bits(c.family);
	c.prefix = max;
	if (slash) {
		const char *p = slash + 1;
		size_t n = strlen(p);
		if (n == 0) {
			why = "no prefix length after the '/'";
			goto fail;
		}
		if (strspn(p, "0123456789") != n || (n > 1 && p[0] == '0')) {
			why = "the prefix length must be a plain decimal number";
			goto fail;
		}
		c.prefix = 0;
		for (size_t i = 0; i < n && c.prefix <= max; i++)
			c.prefix = c.prefix * 10 + (p[i] - '0');
		if (c.prefix > max) {
			why = c.family == AF_INET ? "the prefix length of an IPv4 network must be 0..32"
			                          : "the prefix length of an IPv6 network must be 0..128";
			goto fail;
		}
	}
	if (host_bits_set(c.addr, c.prefix, max)) {
		why = "host bits set after the prefix length: write the network's first address "
		      "(192.0.2.0/24, not 192.0.2.1/24), or the address alone for one host";
		goto fail;
	}
	*ret = c;
	return 0;

fail:
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

static bool cidr_valid(const struct cfg_cidr *c)
{
	int max = family_bits(c->family);
	return max > 0 && c->prefix >= 0 && c->prefix <= max;
}

int acl_cidr_format(const struct cfg_cidr *c, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (size > 0)
		buf[0] = '\0';
	if (!cidr_valid(c))
		return -EINVAL;
	if (!inet_ntop(c->family, c->addr, host, sizeof(host)))
		return -EINVAL;
	char full[ACL_CIDR_TEXT_MAX];
	int n = snprintf(full, sizeof(full), "%s/%d", host, c->prefix);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENOSPC;
	memcpy(buf, full, (size_t)n + 1);
	return n;
}

/* The client's IP address in IPv6 form (an IPv4 client as v4-mapped), and
 * whether it is an IPv4 client. False when sa is not an IP address. */
static bool client_addr(const struct sockaddr *sa, socklen_t len, uint8_t ret[16], bool *ret_v4)
{
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return false;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memcpy(ret, v4mapped_prefix, sizeof(v4mapped_prefix));
		memcpy(ret + 12, &sin->sin_addr, 4);
		*ret_v4 = true;
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(ret, &sin6->sin6_addr, 16);
		*ret_v4 = memcmp(ret, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0;
		return true;
	}
	return false;
}

/* The prefix length of c in the IPv6 form of the client address when c
 * contains it (an IPv4 /n counts as /(96 + n)), else -1. */
static int match_bits(const struct cfg_cidr *c, const uint8_t addr[16], bool v4)
{
	if (!cidr_valid(c))
		return -1;
	if (c->family == AF_INET) {
		if (!v4 || !prefix_equal(c->addr, addr + 12, c->prefix))
			return -1;
		return 96 + c->prefix;
	}
	/* An IPv6 entry reaches IPv4 clients only from inside ::ffff:0:0/96. */
	if (v4 && c->prefix < 96)
		return -1;
	return prefix_equal(c->addr, addr, c->prefix) ? c->prefix : -1;
}

bool acl_cidr_match(const struct cfg_cidr *c, const struct sockaddr *sa, socklen_t len)
{
	uint8_t addr[16];
	bool v4;

	return client_addr(sa, len, addr, &v4) && match_bits(c, addr, v4) >= 0;
}

enum acl_verdict acl_check_addr(const struct cfg_service *s, const struct sockaddr *sa, socklen_t len)
{
	uint8_t addr[16];
	bool v4;

	if (!client_addr(sa, len, addr, &v4)) {
		/* Not an IP client; but an IP family with a short length is
		 * garbage, and garbage does not pass an allow list. */
		bool ip = sa && len >= (socklen_t)sizeof(sa_family_t) &&
		          (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
		return ip && s->nallow_from > 0 ? ACL_NOT_ALLOWED : ACL_ALLOW;
	}

	int best = -1;
	enum acl_verdict verdict = ACL_ALLOW;
	for (int i = 0; i < s->nallow_from; i++) {
		int bits = match_bits(&s->allow_from[i], addr, v4);
		if (bits > best) {
			best = bits;
			verdict = ACL_ALLOW;
		}
	}
	for (int i = 0; i < s->ndeny_from; i++) {
		int bits = match_bits(&s->deny_from[i], addr, v4);
		if (bits >= 0 && bits >= best) { /* >=: on a tie, deny wins */
			best = bits;
			verdict = ACL_DENIED;
		}
	}
	if (best < 0)
		return s->nallow_from > 0 ? ACL_NOT_ALLOWED : ACL_ALLOW;
	return verdict;
}

const char *acl_verdict_name(enum acl_verdict v)
{
	switch (v) {
	case ACL_ALLOW:
		return "allowed";
	case ACL_DENIED:
		return "denied by deny_from";
	case ACL_NOT_ALLOWED:
		return "not in allow_from";
	}
	return "unknown verdict";
}

bool acl_check_client(const struct cfg_service *s, uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	if (!s->has_client_allow)
		return true;
	for (int i = 0; i < s->nclient_uids; i++)
		if (s->client_uids[i] == uid)
			return true;
	for (int i = 0; i < s->nclient_gids; i++) {
		if (s->client_gids[i] == gid)
			return true;
		for (int j = 0; groups && j < ngroups; j++)
			if (s->client_gids[i] == groups[j])
				return true;
	}
	return false;
}
