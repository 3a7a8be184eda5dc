/* Unit tests for src/daemon/acl.c: every CIDR form and error, formatting,
 * matching across IPv4, IPv6 and v4-mapped clients, the precedence rules
 * of acl_check_addr() and the peer-credential rule acl_check_client().
 * Pure functions: no sockets, no files; TEST() still checks for fd leaks. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "acl.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

struct client {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* A client address from text: "192.0.2.1" (AF_INET), "2001:db8::1"
 * (AF_INET6, which includes "::ffff:192.0.2.1" as a dual-stack socket sees
 * an IPv4 client), "unix:/path", "unix:" (unnamed), or "none" (length 0). */
static struct client cl(const char *text)
{
	struct client c;
	memset(&c, 0, sizeof(c));
	if (strcmp(text, "none") == 0)
		return c;
	if (strncmp(text, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&c.ss;
		sun->sun_family = AF_UNIX;
		size_t n = strlen(text + 5);
		cr_assert_lt(n, sizeof(sun->sun_path));
		memcpy(sun->sun_path, text + 5, n);
		c.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (n ? 1 : 0));
		return c;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&c.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c.ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
		c.len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(40000);
		c.len = sizeof(*sin6);
	} else {
		cr_assert_fail("bad test client address '%s'", text);
	}
	return c;
}

#define SA(c) ((const struct sockaddr *)&(c).ss), (c).len

static struct cfg_cidr cidr(const char *text)
{
	struct cfg_cidr c;
	const char *why = NULL;
	int rc = acl_cidr_parse(text, &c, &why);
	cr_assert_eq(rc, 0, "acl_cidr_parse('%s') = %d (%s)", text, rc, why ? why : "no reason");
	return c;
}

/* A service with allow_from and deny_from from comma-separated lists
 * ("" = none). Storage is static: one service at a time. */
static struct cfg_cidr allow_store[16], deny_store[16];

static int fill(const char *list, struct cfg_cidr *v)
{
	char buf[512];
	int n = 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
		cr_assert_lt(n, 16);
		v[n++] = cidr(w);
	}
	return n;
}

static struct cfg_service svc(const char *allow, const char *deny)
{
	struct cfg_service s;
	memset(&s, 0, sizeof(s));
	s.nallow_from = fill(allow, allow_store);
	s.allow_from = s.nallow_from ? allow_store : NULL;
	s.ndeny_from = fill(deny, deny_store);
	s.deny_from = s.ndeny_from ? deny_store : NULL;
	return s;
}

static const char *verdict_text(enum acl_verdict v)
{
	return v == ACL_ALLOW ? "ALLOW" : v == ACL_DENIED ? "DENIED" : v == ACL_NOT_ALLOWED ? "NOT_ALLOWED" : "?";
}

/* ---- parsing ---- */

TEST(acl, parse_every_form)
{
	static const struct {
		const char *text;
		int family;
		int prefix;
		const char *canon; /* acl_cidr_format() of the result */
		uint8_t first, last; /* addr[0] and the address's last byte */
	} cases[] = {
		{"192.0.2.0/24", AF_INET, 24, "192.0.2.0/24", 192, 0},
		{"192.0.2.7", AF_INET, 32, "192.0.2.7/32", 192, 7},
		{"192.0.2.7/32", AF_INET, 32, "192.0.2.7/32", 192, 7},
		{"10.0.0.0/8", AF_INET, 8, "10.0.0.0/8", 10, 0},
		{"128.0.0.0/1", AF_INET, 1, "128.0.0.0/1", 128, 0},
		{"10.0.0.0/7", AF_INET, 7, "10.0.0.0/7", 10, 0},
		{"0.0.0.0/0", AF_INET, 0, "0.0.0.0/0", 0, 0},
		{"2001:db8::/32", AF_INET6, 32, "2001:db8::/32", 0x20, 0},
		{"2001:DB8::/32", AF_INET6, 32, "2001:db8::/32", 0x20, 0},
		{"::1", AF_INET6, 128, "::1/128", 0, 1},
		{"::1/128", AF_INET6, 128, "::1/128", 0, 1},
		{"::/0", AF_INET6, 0, "::/0", 0, 0},
		{"fe80::/10", AF_INET6, 10, "fe80::/10", 0xfe, 0},
		{"::ffff:0:0/96", AF_INET6, 96, "::ffff:0.0.0.0/96", 0, 0},
		{"::ffff:192.0.2.0/120", AF_INET6, 120, "::ffff:192.0.2.0/120", 0, 0},
		{"2001:db8:0:0:0:0:0:1", AF_INET6, 128, "2001:db8::1/128", 0x20, 1},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_cidr c;
		memset(&c, 0xaa, sizeof(c));
		const char *why = NULL;
		int rc = acl_cidr_parse(cases[i].text, &c, &why);
		cr_assert_eq(rc, 0, "'%s' refused: %s", cases[i].text, why ? why : "(no reason)");
		cr_assert_eq(c.family, cases[i].family, "'%s': family %d", cases[i].text, c.family);
		cr_assert_eq(c.prefix, cases[i].prefix, "'%s': prefix %d, expected %d", cases[i].text, c.prefix,
		             cases[i].prefix);
		size_t alen = c.family == AF_INET ? 4 : 16;
		cr_assert_eq(c.addr[0], cases[i].first, "'%s': addr[0] = %u", cases[i].text, c.addr[0]);
		cr_assert_eq(c.addr[alen - 1], cases[i].last, "'%s': last byte %u", cases[i].text, c.addr[alen - 1]);
		for (size_t j = alen; j < 16; j++)
			cr_assert_eq(c.addr[j], 0, "'%s': addr[%zu] beyond the IPv4 address is %u", cases[i].text, j,
			             c.addr[j]);
		char buf[ACL_CIDR_TEXT_MAX];
		rc = acl_cidr_format(&c, buf, sizeof(buf));
		cr_assert_eq(rc, (int)strlen(cases[i].canon), "format '%s': %d ('%s')", cases[i].text, rc, buf);
		cr_assert_str_eq(buf, cases[i].canon);
		/* The canonical text reads back to the same entry. */
		struct cfg_cidr again;
		memset(&again, 0xaa, sizeof(again));
		cr_assert_eq(acl_cidr_parse(buf, &again, NULL), 0, "'%s' does not parse back", buf);
		cr_assert_eq(memcmp(&again, &c, sizeof(c)), 0, "'%s' parses back differently", buf);
	}
}

TEST(acl, parse_every_error)
{
	static const struct {
		const char *text;
		const char *why; /* a word the reason must contain */
	} cases[] = {
		{"", "empty"},
		{"[::1]", "brackets"},
		{"[2001:db8::]/32", "brackets"},
		{"192.0.2.0]", "brackets"},
		{"/24", "no address"},
		{"192.0.2.0/", "no prefix"},
		{"192.0.2.0/33", "0..32"},
		{"192.0.2.0/1000", "0..32"},
		{"192.0.2.0/99999999999999999999", "0..32"},
		{"::/129", "0..128"},
		{"192.0.2.0/-1", "decimal"},
		{"192.0.2.0/+8", "decimal"},
		{"192.0.2.0/08", "decimal"},
		{"192.0.2.0/00", "decimal"},
		{"192.0.2.0/24x", "decimal"},
		{"192.0.2.0/ 24", "decimal"},
		{"192.0.2.0/24/8", "decimal"},
		{"192.0.2.0/0x18", "decimal"},
		{"192.0.2.1/24", "bits set"},
		{"192.0.2.128/24", "bits set"},
		{"11.0.0.0/7", "bits set"},
		{"0.0.0.1/0", "bits set"},
		{"2001:db8::1/32", "bits set"},
		{"::1/0", "bits set"},
		{"fe80::1%eth0", "zone"},
		{"localhost", "not an IPv4 or IPv6 address"},
		{"example.invalid/24", "not an IPv4 or IPv6 address"},
		{"192.0.2", "not an IPv4 or IPv6 address"},
		{"192.0.2.256", "not an IPv4 or IPv6 address"},
		{"1.2.3.4.5", "not an IPv4 or IPv6 address"},
		{"192.0.2.01", "not an IPv4 or IPv6 address"},
		{" 192.0.2.1", "not an IPv4 or IPv6 address"},
		{"192.0.2.1 ", "not an IPv4 or IPv6 address"},
		{"2001:db8:::1", "not an IPv4 or IPv6 address"},
		{"*", "not an IPv4 or IPv6 address"},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123/8", "not an IPv4 or IPv6 address"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_cidr c, before;
		memset(&c, 0x5a, sizeof(c));
		before = c;
		const char *why = NULL;
		int rc = acl_cidr_parse(cases[i].text, &c, &why);
		cr_assert_eq(rc, -EINVAL, "'%s' accepted (%d)", cases[i].text, rc);
		cr_assert_not_null(why, "'%s' refused without a reason", cases[i].text);
		cr_assert(strstr(why, cases[i].why), "'%s': reason '%s' does not say '%s'", cases[i].text, why,
		          cases[i].why);
		cr_assert_eq(memcmp(&c, &before, sizeof(c)), 0, "'%s': *ret changed on error", cases[i].text);
		/* ret_why may be NULL. */
		cr_assert_eq(acl_cidr_parse(cases[i].text, &c, NULL), -EINVAL);
	}
	const char *why = NULL;
	struct cfg_cidr c;
	cr_assert_eq(acl_cidr_parse(NULL, &c, &why), -EINVAL);
	cr_assert(why && strstr(why, "empty"));
}

TEST(acl, format_sizes_and_bad_entries)
{
	struct cfg_cidr c = cidr("192.0.2.0/24");
	char buf[64];
	/* "192.0.2.0/24" is 12 characters: 13 bytes fit, 12 do not. */
	cr_assert_eq(acl_cidr_format(&c, buf, 13), 12);
	cr_assert_str_eq(buf, "192.0.2.0/24");
	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(acl_cidr_format(&c, buf, 12), -ENOSPC);
	cr_assert_str_eq(buf, "", "a failed format leaves a non-empty buffer");
	cr_assert_eq(acl_cidr_format(&c, buf, 0), -ENOSPC);

	/* The longest text fits in ACL_CIDR_TEXT_MAX. */
	struct cfg_cidr longest = cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	int n = acl_cidr_format(&longest, buf, ACL_CIDR_TEXT_MAX);
	cr_assert(n > 0 && n < ACL_CIDR_TEXT_MAX, "%d", n);

	struct cfg_cidr bad = c;
	bad.prefix = 33;
	cr_assert_eq(acl_cidr_format(&bad, buf, sizeof(buf)), -EINVAL);
	bad.prefix = -1;
	cr_assert_eq(acl_cidr_format(&bad, buf, sizeof(buf)), -EINVAL);
	bad = c;
	bad.family = AF_UNIX;
	cr_assert_eq(acl_cidr_format(&bad, buf, sizeof(buf)), -EINVAL);
}

/* ---- matching ---- */

TEST(acl, match_table)
{
	static const struct {
		const char *entry, *client;
		bool match;
	} cases[] = {
		/* IPv4 entries, IPv4 clients */
		{"192.0.2.0/24", "192.0.2.1", true},
		{"192.0.2.0/24", "192.0.2.255", true},
		{"192.0.2.0/24", "192.0.3.1", false},
		{"192.0.2.0/25", "192.0.2.127", true},
		{"192.0.2.0/25", "192.0.2.128", false},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.6", false},
		{"192.0.2.7/32", "192.0.2.8", false},
		{"128.0.0.0/1", "200.1.1.1", true},
		{"128.0.0.0/1", "127.255.255.255", false},
		{"0.0.0.0/0", "192.0.2.1", true},
		{"0.0.0.0/0", "0.0.0.0", true},
		{"0.0.0.0/0", "255.255.255.255", true},
		/* IPv4 entries, v4-mapped clients of a dual-stack socket */
		{"192.0.2.0/24", "::ffff:192.0.2.1", true},
		{"192.0.2.0/24", "::ffff:192.0.3.1", false},
		{"192.0.2.7", "::ffff:192.0.2.7", true},
		{"0.0.0.0/0", "::ffff:10.0.0.1", true},
		/* IPv4 entries never match IPv6 clients */
		{"0.0.0.0/0", "2001:db8::1", false},
		{"0.0.0.0/0", "::1", false},
		{"192.0.2.7", "::192.0.2.7", false}, /* IPv4-compatible, not mapped */
		{"192.0.2.7", "64:ff9b::192.0.2.7", false},
		/* IPv6 entries, IPv6 clients */
		{"2001:db8::/32", "2001:db8::1", true},
		{"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"2001:db8::/33", "2001:db8:8000::1", false},
		{"2001:db8::/33", "2001:db8:7fff::1", true},
		{"::1", "::1", true},
		{"::1/128", "::2", false},
		{"::/0", "2001:db8::1", true},
		{"::/0", "::", true},
		{"fe80::/10", "febf::1", true},
		{"fe80::/10", "fec0::1", false},
		/* IPv6 entries and IPv4 clients: only from inside ::ffff:0:0/96 */
		{"::/0", "192.0.2.1", false},
		{"::/0", "::ffff:192.0.2.1", false},
		{"::/8", "::ffff:192.0.2.1", false},
		{"::ffff:0:0/96", "::ffff:192.0.2.1", true},
		{"::ffff:0:0/96", "192.0.2.1", true},
		{"::ffff:0:0/96", "2001:db8::1", false},
		{"::ffff:192.0.2.0/120", "192.0.2.9", true},
		{"::ffff:192.0.2.0/120", "::ffff:192.0.2.9", true},
		{"::ffff:192.0.2.0/120", "192.0.3.9", false},
		{"::ffff:192.0.2.9", "192.0.2.9", true},
		/* Non-IP clients match nothing */
		{"0.0.0.0/0", "unix:/run/x.sock", false},
		{"::/0", "unix:/run/x.sock", false},
		{"0.0.0.0/0", "unix:", false},
		{"0.0.0.0/0", "none", false},
		{"::/0", "none", false},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_cidr c = cidr(cases[i].entry);
		struct client a = cl(cases[i].client);
		cr_assert_eq(acl_cidr_match(&c, SA(a)), cases[i].match, "%s %s %s", cases[i].entry,
		             cases[i].match ? "should match" : "should not match", cases[i].client);
	}
}

TEST(acl, match_refuses_short_and_null_addresses)
{
	struct cfg_cidr any4 = cidr("0.0.0.0/0"), any6 = cidr("::/0");
	struct client a = cl("192.0.2.1"), b = cl("2001:db8::1");
	cr_assert(acl_cidr_match(&any4, SA(a)));
	cr_assert_not(acl_cidr_match(&any4, (struct sockaddr *)&a.ss, a.len - 1));
	cr_assert(acl_cidr_match(&any6, SA(b)));
	cr_assert_not(acl_cidr_match(&any6, (struct sockaddr *)&b.ss, b.len - 1));
	cr_assert_not(acl_cidr_match(&any4, NULL, 0));
	cr_assert_not(acl_cidr_match(&any4, (struct sockaddr *)&a.ss, 1));
	/* An entry with a broken prefix matches nothing rather than reading
	 * beyond the address. */
	struct cfg_cidr bad = any4;
	bad.prefix = 200;
	cr_assert_not(acl_cidr_match(&bad, SA(a)));
}

/* ---- acl_check_addr ---- */

TEST(acl, check_addr_precedence)
{
	static const struct {
		const char *allow, *deny, *client;
		enum acl_verdict v;
	} cases[] = {
		/* no rules: everyone */
		{"", "", "192.0.2.1", ACL_ALLOW},
		{"", "", "2001:db8::1", ACL_ALLOW},
		/* allow only: what matches, nothing else */
		{"192.0.2.0/24", "", "192.0.2.1", ACL_ALLOW},
		{"192.0.2.0/24", "", "::ffff:192.0.2.1", ACL_ALLOW},
		{"192.0.2.0/24", "", "192.0.3.1", ACL_NOT_ALLOWED},
		{"192.0.2.0/24", "", "2001:db8::1", ACL_NOT_ALLOWED},
		{"192.0.2.0/24, 2001:db8::/32", "", "2001:db8::1", ACL_ALLOW},
		{"::1", "", "::1", ACL_ALLOW},
		{"::1", "", "127.0.0.1", ACL_NOT_ALLOWED},
		/* deny only: what matches is kept out, everyone else in */
		{"", "192.0.2.0/24", "192.0.2.1", ACL_DENIED},
		{"", "192.0.2.0/24", "::ffff:192.0.2.1", ACL_DENIED},
		{"", "192.0.2.0/24", "192.0.3.1", ACL_ALLOW},
		{"", "192.0.2.0/24", "2001:db8::1", ACL_ALLOW},
		{"", "::/0", "2001:db8::1", ACL_DENIED},
		{"", "::/0", "192.0.2.1", ACL_ALLOW},
		{"", "0.0.0.0/0, ::/0", "192.0.2.1", ACL_DENIED},
		{"", "0.0.0.0/0, ::/0", "::ffff:192.0.2.1", ACL_DENIED},
		{"", "0.0.0.0/0, ::/0", "2001:db8::1", ACL_DENIED},
		/* a more specific allow inside a deny */
		{"192.0.2.7", "192.0.2.0/24", "192.0.2.7", ACL_ALLOW},
		{"192.0.2.7", "192.0.2.0/24", "192.0.2.8", ACL_DENIED},
		{"192.0.2.7", "192.0.2.0/24", "198.51.100.1", ACL_NOT_ALLOWED},
		{"2001:db8:1::/48", "2001:db8::/32", "2001:db8:1::5", ACL_ALLOW},
		{"2001:db8:1::/48", "2001:db8::/32", "2001:db8:2::5", ACL_DENIED},
		/* a more specific deny inside an allow */
		{"10.0.0.0/8", "10.1.0.0/16", "10.2.3.4", ACL_ALLOW},
		{"10.0.0.0/8", "10.1.0.0/16", "10.1.3.4", ACL_DENIED},
		{"10.0.0.0/8", "10.1.0.0/16", "11.0.0.1", ACL_NOT_ALLOWED},
		{"0.0.0.0/0", "192.0.2.66", "192.0.2.66", ACL_DENIED},
		{"0.0.0.0/0", "192.0.2.66", "192.0.2.67", ACL_ALLOW},
		/* three levels */
		{"10.0.0.0/8, 10.1.2.0/24", "10.1.0.0/16", "10.1.2.3", ACL_ALLOW},
		{"10.0.0.0/8, 10.1.2.0/24", "10.1.0.0/16", "10.1.3.3", ACL_DENIED},
		{"10.0.0.0/8, 10.1.2.0/24", "10.1.0.0/16", "10.9.3.3", ACL_ALLOW},
		/* order in the lists does not matter */
		{"10.1.2.0/24, 10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", ACL_ALLOW},
		/* a tie: deny wins, whichever list is longer */
		{"192.0.2.0/24", "192.0.2.0/24", "192.0.2.1", ACL_DENIED},
		{"192.0.2.0/24, 10.0.0.0/8", "192.0.2.0/24", "192.0.2.1", ACL_DENIED},
		{"192.0.2.1", "192.0.2.1", "192.0.2.1", ACL_DENIED},
		{"0.0.0.0/0", "0.0.0.0/0", "192.0.2.1", ACL_DENIED},
		/* ...and across families: ::ffff:192.0.2.0/120 is 192.0.2.0/24 */
		{"::ffff:192.0.2.0/120", "192.0.2.0/24", "192.0.2.1", ACL_DENIED},
		{"192.0.2.0/24", "::ffff:192.0.2.0/120", "::ffff:192.0.2.1", ACL_DENIED},
		/* an IPv4 /25 beats a mapped /120 (= /24) */
		{"192.0.2.0/25", "::ffff:192.0.2.0/120", "192.0.2.1", ACL_ALLOW},
		{"::ffff:192.0.2.0/121", "192.0.2.0/24", "192.0.2.1", ACL_ALLOW},
		/* non-IP clients are not subject to address rules */
		{"192.0.2.0/24", "", "unix:/run/x.sock", ACL_ALLOW},
		{"", "0.0.0.0/0, ::/0", "unix:/run/x.sock", ACL_ALLOW},
		{"192.0.2.0/24", "0.0.0.0/0", "unix:", ACL_ALLOW},
		{"192.0.2.0/24", "0.0.0.0/0", "none", ACL_ALLOW},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct cfg_service s = svc(cases[i].allow, cases[i].deny);
		struct client a = cl(cases[i].client);
		enum acl_verdict v = acl_check_addr(&s, SA(a));
		cr_assert_eq(v, cases[i].v, "allow '%s' deny '%s' client %s: %s, expected %s", cases[i].allow,
		             cases[i].deny, cases[i].client, verdict_text(v), verdict_text(cases[i].v));
	}
}

TEST(acl, check_addr_garbage_does_not_pass_an_allow_list)
{
	struct cfg_service s = svc("192.0.2.0/24", "");
	struct client a = cl("192.0.2.1");
	cr_assert_eq(acl_check_addr(&s, (struct sockaddr *)&a.ss, a.len - 1), ACL_NOT_ALLOWED);
	cr_assert_eq(acl_check_addr(&s, NULL, 0), ACL_ALLOW);
	s = svc("", "192.0.2.0/24");
	cr_assert_eq(acl_check_addr(&s, (struct sockaddr *)&a.ss, a.len - 1), ACL_ALLOW);
}

TEST(acl, verdict_names)
{
	cr_assert_str_eq(acl_verdict_name(ACL_ALLOW), "allowed");
	cr_assert(strstr(acl_verdict_name(ACL_DENIED), "deny_from"));
	cr_assert(strstr(acl_verdict_name(ACL_NOT_ALLOWED), "allow_from"));
	cr_assert_not_null(acl_verdict_name((enum acl_verdict)99));
}

/* ---- acl_check_client ---- */

TEST(acl, check_client)
{
	uid_t uids[] = {1000, 0};
	gid_t gids[] = {50, 100};
	gid_t none[] = {7, 8};
	gid_t some[] = {7, 100};
	gid_t first[] = {50, 7};
	struct cfg_service s;
	memset(&s, 0, sizeof(s));

	/* No rule: everyone, root and nobody alike. */
	cr_assert(acl_check_client(&s, 0, 0, NULL, 0));
	cr_assert(acl_check_client(&s, 65534, 65534, NULL, 0));

	/* A rule with users only. */
	s.has_client_allow = true;
	s.client_uids = uids;
	s.nclient_uids = 1;
	cr_assert(acl_check_client(&s, 1000, 1000, NULL, 0));
	cr_assert_not(acl_check_client(&s, 1001, 1000, NULL, 0));
	cr_assert_not(acl_check_client(&s, 0, 0, NULL, 0), "root passed a rule that does not name it");
	cr_assert_not(acl_check_client(&s, 1001, 50, gids, 2), "groups count without a group rule");

	/* Groups: the primary gid or any supplementary group. */
	s.client_gids = gids;
	s.nclient_gids = 2;
	cr_assert(acl_check_client(&s, 1001, 50, NULL, 0));
	cr_assert(acl_check_client(&s, 1001, 100, NULL, 0));
	cr_assert_not(acl_check_client(&s, 1001, 51, NULL, 0));
	cr_assert(acl_check_client(&s, 1001, 51, some, 2));
	cr_assert(acl_check_client(&s, 1001, 51, first, 2), "the first supplementary group is skipped");
	cr_assert_not(acl_check_client(&s, 1001, 51, none, 2));
	cr_assert_not(acl_check_client(&s, 1001, 51, some, 1), "read beyond ngroups");
	cr_assert_not(acl_check_client(&s, 1001, 51, some, -1));
	cr_assert_not(acl_check_client(&s, 0, 0, none, 2), "root passed");

	/* Root when named. */
	s.nclient_uids = 2;
	cr_assert(acl_check_client(&s, 0, 0, NULL, 0));

	/* An empty rule (has_client_allow with no entries) admits nobody. */
	s.nclient_uids = 0;
	s.nclient_gids = 0;
	cr_assert_not(acl_check_client(&s, 0, 0, NULL, 0));
	cr_assert_not(acl_check_client(&s, 1000, 50, gids, 2));
}
