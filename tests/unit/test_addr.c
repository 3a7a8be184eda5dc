/* Unit tests for src/common/addr.c: the listen address syntax, its
 * canonical text, resolution into socket addresses, formatting of socket
 * addresses and the source hash used by source-hash balancing.
 *
 * Name resolution only uses "localhost" (from /etc/hosts) and names under
 * the reserved .invalid TLD, so the tests need no network. Every test checks
 * that it leaves no fd open (TEST() below). */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* "unix:/" or "unix:@" followed by n copies of c. */
static char *long_unix(char kind, size_t n)
{
	char *s = malloc(n + 7);
	cr_assert_not_null(s);
	memcpy(s, "unix:", 5);
	s[5] = kind;
	memset(s + 6, 'p', n);
	s[6 + n] = '\0';
	return s;
}

/* ===================== addr_parse ===================== */

struct good {
	const char *text;
	enum addr_kind kind;
	int socktype;
	const char *host_or_path;
	unsigned port;
	int abstract;
	const char *canonical;
};

#define ST SOCK_STREAM
#define DG SOCK_DGRAM
#define SP SOCK_SEQPACKET
static const struct good goods[] = {
	{"tcp://0.0.0.0:80", ADDR_TCP, ST, "0.0.0.0", 80, 0, "tcp://0.0.0.0:80"},
	{"tcp://192.0.2.1:443", ADDR_TCP, ST, "192.0.2.1", 443, 0, "tcp://192.0.2.1:443"},
	{"tcp://[::1]:8080", ADDR_TCP, ST, "::1", 8080, 0, "tcp://[::1]:8080"},
	{"tcp://[::]:80", ADDR_TCP, ST, "::", 80, 0, "tcp://[::]:80"},
	{"tcp://[2001:db8::1]:65535", ADDR_TCP, ST, "2001:db8::1", 65535, 0, "tcp://[2001:db8::1]:65535"},
	{"tcp://[::ffff:192.0.2.1]:1", ADDR_TCP, ST, "::ffff:192.0.2.1", 1, 0, "tcp://[::ffff:192.0.2.1]:1"},
	{"tcp://*:80", ADDR_TCP, ST, "*", 80, 0, "tcp://*:80"},
	{"tcp://localhost:80", ADDR_TCP, ST, "localhost", 80, 0, "tcp://localhost:80"},
	{"tcp://Host-1.example_x.org:22", ADDR_TCP, ST, "Host-1.example_x.org", 22, 0, "tcp://Host-1.example_x.org:22"},
	{"tcp://127.0.0.1:0", ADDR_TCP, ST, "127.0.0.1", 0, 0, "tcp://127.0.0.1:0"},
	{"tcp://127.0.0.1:65535", ADDR_TCP, ST, "127.0.0.1", 65535, 0, "tcp://127.0.0.1:65535"},
	{"tcp://127.0.0.1:00080", ADDR_TCP, ST, "127.0.0.1", 80, 0, "tcp://127.0.0.1:80"},
	{"udp://0.0.0.0:53", ADDR_UDP, DG, "0.0.0.0", 53, 0, "udp://0.0.0.0:53"},
	{"udp://192.0.2.1:0", ADDR_UDP, DG, "192.0.2.1", 0, 0, "udp://192.0.2.1:0"},
	{"udp://[::1]:53", ADDR_UDP, DG, "::1", 53, 0, "udp://[::1]:53"},
	{"udp://[2001:db8::53]:65535", ADDR_UDP, DG, "2001:db8::53", 65535, 0, "udp://[2001:db8::53]:65535"},
	{"udp://*:7", ADDR_UDP, DG, "*", 7, 0, "udp://*:7"},
	{"udp://localhost:13", ADDR_UDP, DG, "localhost", 13, 0, "udp://localhost:13"},
	{"udp://ns-1.example.org:00053", ADDR_UDP, DG, "ns-1.example.org", 53, 0, "udp://ns-1.example.org:53"},
	{"unix:/run/x.sock", ADDR_UNIX, ST, "/run/x.sock", 0, 0, "unix:/run/x.sock"},
	{"unix:/", ADDR_UNIX, ST, "/", 0, 0, "unix:/"},
	{"unix:@abstract", ADDR_UNIX, ST, "abstract", 0, 1, "unix:@abstract"},
	{"unix:@with space/and:colon", ADDR_UNIX, ST, "with space/and:colon", 0, 1, "unix:@with space/and:colon"},
	{"unix-dgram:/run/log.sock", ADDR_UNIX, DG, "/run/log.sock", 0, 0, "unix-dgram:/run/log.sock"},
	{"unix-dgram:@dg", ADDR_UNIX, DG, "dg", 0, 1, "unix-dgram:@dg"},
	{"unix-seqpacket:/run/sp.sock", ADDR_UNIX, SP, "/run/sp.sock", 0, 0, "unix-seqpacket:/run/sp.sock"},
	{"unix-seqpacket:@sp:1", ADDR_UNIX, SP, "sp:1", 0, 1, "unix-seqpacket:@sp:1"},
};
#undef ST
#undef DG
#undef SP

TEST(parse, accepted_forms)
{
	for (size_t i = 0; i < N_ELEMENTS(goods); i++) {
		const struct good *g = &goods[i];
		struct addr_spec s;
		const char *why = NULL;
		int rc = addr_parse(g->text, &s, &why);
		cr_assert_eq(rc, 0, "'%s' refused: %s", g->text, why ? why : "?");
		cr_assert_eq(s.kind, g->kind, "%s", g->text);
		cr_assert_eq(s.socktype, g->socktype, "%s: socktype %d, want %d", g->text, s.socktype, g->socktype);
		cr_assert_eq(ADDR_IS_DGRAM(&s), g->socktype == SOCK_DGRAM, "%s", g->text);
		if (g->kind == ADDR_TCP || g->kind == ADDR_UDP) {
			cr_assert_str_eq(s.host, g->host_or_path, "%s", g->text);
			cr_assert_eq(s.port, g->port, "%s", g->text);
			cr_assert_str_eq(s.path, "", "%s", g->text);
		} else {
			cr_assert_str_eq(s.path, g->host_or_path, "%s", g->text);
			cr_assert_eq(s.abstract, g->abstract, "%s", g->text);
			cr_assert_str_eq(s.host, "", "%s", g->text);
			cr_assert_eq(s.port, 0, "%s", g->text);
		}
	}
}

/* The Unix schemes share one path rule: the longest path and abstract name
 * fit after any of the three prefixes, one more byte does not. */
TEST(parse, unix_schemes_share_the_length_limits)
{
	static const struct {
		const char *prefix;
		int socktype;
	} schemes[] = {{"unix:", SOCK_STREAM}, {"unix-dgram:", SOCK_DGRAM}, {"unix-seqpacket:", SOCK_SEQPACKET}};
	for (size_t i = 0; i < N_ELEMENTS(schemes); i++) {
		char t[300];
		size_t pl = strlen(schemes[i].prefix);
		memcpy(t, schemes[i].prefix, pl);
		struct addr_spec s;
		const char *why = NULL;
		for (int abstract = 0; abstract <= 1; abstract++) {
			/* "/" + 106 bytes: a 107-byte path and its NUL fill sun_path;
			 * "@" + 106 bytes: the leading NUL and 106 name bytes, plus
			 * the terminator addr_spec keeps. */
			t[pl] = abstract ? '@' : '/';
			memset(t + pl + 1, 'q', 106);
			t[pl + 107] = '\0';
			size_t fits = abstract ? 106 : 107;
			cr_assert_eq(addr_parse(t, &s, &why), 0, "%s (%zu bytes): %s", schemes[i].prefix, strlen(t + pl),
			             why ? why : "");
			cr_assert_eq(s.kind, ADDR_UNIX);
			cr_assert_eq(s.socktype, schemes[i].socktype);
			cr_assert_eq(s.abstract, abstract);
			cr_assert_eq(strlen(s.path), fits);
			/* One byte more. */
			size_t n = strlen(t);
			t[n] = 'q';
			t[n + 1] = '\0';
			why = NULL;
			cr_assert_eq(addr_parse(t, &s, &why), -EINVAL, "%s with %zu bytes accepted", schemes[i].prefix,
			             strlen(t + pl));
			cr_assert(why && *why);
		}
	}
}

TEST(parse, longest_unix_paths)
{
	struct addr_spec s;
	const char *why = NULL;
	/* sun_path holds 108 bytes: a 107-byte path and its NUL. */
	char *t = long_unix('/', 106);
	cr_assert_eq(addr_parse(t, &s, &why), 0, "a 107-byte path: %s", why ? why : "");
	cr_assert_eq(strlen(s.path), 107);
	free(t);
	/* An abstract name, after its leading NUL. */
	t = long_unix('@', 106);
	cr_assert_eq(addr_parse(t, &s, &why), 0, "a 106-byte abstract name: %s", why ? why : "");
	cr_assert_eq(strlen(s.path), 106);
	cr_assert_eq(s.abstract, 1);
	free(t);
}

static const char *const bads[] = {
	"",
	"0.0.0.0:80",            /* no scheme */
	"/run/x.sock",
	"http://0.0.0.0:80",
	"sctp://0.0.0.0:80",     /* schemes that do not exist */
	"tcp6://[::1]:80",
	"udp4://0.0.0.0:53",
	"UDP://0.0.0.0:53",
	"udp:/0.0.0.0:53",
	"udp:0.0.0.0:53",
	"udp://",
	"udp://0.0.0.0",         /* udp:// has the tcp:// host and port rules */
	"udp://0.0.0.0:",
	"udp://0.0.0.0:65536",
	"udp://0.0.0.0:domain",
	"udp://::1:53",
	"udp://[::1]",
	"udp://[127.0.0.1]:53",
	"udp://:53",
	"udp://a*:53",
	"udp://ho st:53",
	"unix-dgram:",           /* the unix-* schemes have the unix: path rules */
	"unix-dgram:run/x.sock",
	"unix-dgram:@",
	"unix-seqpacket:",
	"unix-seqpacket:x.sock",
	"unix-seqpacket:@",
	"unix-dgram//run/x.sock",
	"unix-stream:/run/x.sock",
	"unix-datagram:/run/x.sock",
	"unix-DGRAM:/run/x.sock",
	"unix_dgram:/run/x.sock",
	"unix-seqpacket/run/x.sock",
	"TCP://0.0.0.0:80",
	"tcp:/0.0.0.0:80",
	"tcp://",
	"tcp://0.0.0.0",         /* no port */
	"tcp://0.0.0.0:",
	"tcp://localhost",
	"tcp://0.0.0.0:65536",
	"tcp://0.0.0.0:99999",
	"tcp://0.0.0.0:4294967376", /* 2^32 + 80 */
	"tcp://0.0.0.0:000080",  /* six digits */
	"tcp://0.0.0.0:8o",
	"tcp://0.0.0.0:80x",
	"tcp://0.0.0.0:0x50",
	"tcp://0.0.0.0:-1",
	"tcp://0.0.0.0:+80",
	"tcp://0.0.0.0: 80",
	"tcp://0.0.0.0:80 ",
	"tcp://0.0.0.0:http",
	"tcp://::1:80",          /* IPv6 without brackets */
	"tcp://::1",
	"tcp://2001:db8::1:80",
	"tcp://[::1:80",         /* unterminated bracket */
	"tcp://[::1",
	"tcp://[::1]",
	"tcp://[::1]80",
	"tcp://[::1]:",
	"tcp://[::1]:8o",
	"tcp://[127.0.0.1]:80",  /* not IPv6 inside brackets */
	"tcp://[localhost]:80",
	"tcp://[*]:80",
	"tcp://[]:80",
	"tcp://[[::1]]:80",
	"tcp://:80",             /* empty host */
	"tcp://ho st:80",        /* bad characters */
	"tcp://a/b:80",
	"tcp://user@host:80",
	"tcp://host;rm:80",
	"tcp://**:80",
	"tcp://a*:80",
	"tcp://*.example.org:80",
	"tcp://h\xc3\xa9llo:80",
	"tcp://]:80",
	"unix:",                 /* relative or empty unix path */
	"unix:run/x.sock",
	"unix:./x.sock",
	"unix:~/x.sock",
	"unix:@",                /* empty abstract name */
	"unix//run/x.sock",
};

TEST(parse, rejected_forms)
{
	for (size_t i = 0; i < N_ELEMENTS(bads); i++) {
		struct addr_spec s;
		const char *why = NULL;
		int rc = addr_parse(bads[i], &s, &why);
		cr_assert_eq(rc, -EINVAL, "'%s' accepted (%d)", bads[i], rc);
		cr_assert(why && *why, "'%s' refused without a reason", bads[i]);
		/* A NULL ret_why is allowed. */
		cr_assert_eq(addr_parse(bads[i], &s, NULL), -EINVAL);
	}
	struct addr_spec s;
	const char *why = NULL;
	cr_assert_eq(addr_parse(NULL, &s, &why), -EINVAL);
	cr_assert_not_null(why);
}

TEST(parse, rejected_long_forms)
{
	struct addr_spec s;
	const char *why = NULL;

	/* A 108-byte path leaves no room for the NUL. */
	char *t = long_unix('/', 107);
	cr_assert_eq(strlen(t + 5), 108);
	cr_assert_eq(addr_parse(t, &s, &why), -EINVAL, "a 108-byte unix path was accepted");
	cr_assert_not_null(why);
	free(t);
	t = long_unix('/', 4000);
	cr_assert_eq(addr_parse(t, &s, &why), -EINVAL);
	free(t);

	/* An abstract name of 107 bytes does not fit after the leading NUL
	 * and the terminator addr_spec keeps. */
	t = long_unix('@', 107);
	cr_assert_eq(addr_parse(t, &s, &why), -EINVAL);
	free(t);

	/* A host name longer than the spec holds. */
	char host[600];
	memcpy(host, "tcp://", 6);
	memset(host + 6, 'h', 300);
	snprintf(host + 306, sizeof(host) - 306, ":80");
	cr_assert_eq(addr_parse(host, &s, &why), -EINVAL);
	cr_assert_not_null(why);

	/* An IPv6 literal longer than the spec holds. */
	char v6[600];
	memcpy(v6, "tcp://[", 7);
	memset(v6 + 7, '0', 300);
	snprintf(v6 + 307, sizeof(v6) - 307, "::1]:80");
	cr_assert_eq(addr_parse(v6, &s, &why), -EINVAL);
}

/* ===================== addr_spec_format ===================== */

TEST(format_spec, canonical_round_trip)
{
	for (size_t i = 0; i < N_ELEMENTS(goods); i++) {
		const struct good *g = &goods[i];
		struct addr_spec s1, s2;
		char text[ADDR_TEXT_MAX];
		const char *why = NULL;
		cr_assert_eq(addr_parse(g->text, &s1, &why), 0);
		int n = addr_spec_format(&s1, text, sizeof(text));
		cr_assert_eq(n, (int)strlen(g->canonical), "%s", g->text);
		cr_assert_str_eq(text, g->canonical);
		/* The canonical text parses back to the same spec... */
		cr_assert_eq(addr_parse(text, &s2, &why), 0, "canonical '%s' refused: %s", text, why ? why : "");
		cr_assert(memcmp(&s1, &s2, sizeof(s1)) == 0, "'%s' and '%s' differ", g->text, text);
		/* ...and formats to itself. */
		char again[ADDR_TEXT_MAX];
		addr_spec_format(&s2, again, sizeof(again));
		cr_assert_str_eq(again, text);
	}
}

TEST(format_spec, long_unix_path_fits_text_max)
{
	struct addr_spec s;
	char *t = long_unix('/', 106);
	cr_assert_eq(addr_parse(t, &s, NULL), 0);
	char text[ADDR_TEXT_MAX];
	cr_assert_eq(addr_spec_format(&s, text, sizeof(text)), (int)strlen(t));
	cr_assert_str_eq(text, t);
	free(t);
}

TEST(format_spec, buffer_too_small)
{
	struct addr_spec s;
	cr_assert_eq(addr_parse("tcp://[::1]:8080", &s, NULL), 0);
	size_t want = strlen("tcp://[::1]:8080");
	char buf[64];
	cr_assert_eq(addr_spec_format(&s, buf, want + 1), (int)want);
	cr_assert_eq(addr_spec_format(&s, buf, want), -ENOSPC);
	cr_assert_eq(addr_spec_format(&s, buf, 1), -ENOSPC);
	cr_assert_eq(addr_parse("unix:@x", &s, NULL), 0);
	cr_assert_eq(addr_spec_format(&s, buf, 7), -ENOSPC);
	cr_assert_eq(addr_spec_format(&s, buf, 8), 7);
	cr_assert_str_eq(buf, "unix:@x");
}

/* The scheme comes from the kind and the socket type of the spec. */
TEST(format_spec, scheme_from_kind_and_socktype)
{
	static const struct {
		enum addr_kind kind;
		int socktype;
		const char *host;
		const char *path;
		int abstract;
		const char *want;
	} cases[] = {
		{ADDR_UDP, SOCK_DGRAM, "::1", NULL, 0, "udp://[::1]:53"},
		{ADDR_UDP, SOCK_DGRAM, "*", NULL, 0, "udp://*:53"},
		{ADDR_UDP, SOCK_DGRAM, "a.example", NULL, 0, "udp://a.example:53"},
		{ADDR_TCP, SOCK_STREAM, "192.0.2.1", NULL, 0, "tcp://192.0.2.1:53"},
		{ADDR_UNIX, SOCK_STREAM, NULL, "/p", 0, "unix:/p"},
		{ADDR_UNIX, SOCK_DGRAM, NULL, "/p", 0, "unix-dgram:/p"},
		{ADDR_UNIX, SOCK_SEQPACKET, NULL, "/p", 0, "unix-seqpacket:/p"},
		{ADDR_UNIX, SOCK_DGRAM, NULL, "n", 1, "unix-dgram:@n"},
		{ADDR_UNIX, SOCK_SEQPACKET, NULL, "n", 1, "unix-seqpacket:@n"},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct addr_spec s;
		memset(&s, 0, sizeof(s));
		s.kind = cases[i].kind;
		s.socktype = cases[i].socktype;
		s.port = 53;
		if (cases[i].host)
			snprintf(s.host, sizeof(s.host), "%s", cases[i].host);
		else
			snprintf(s.path, sizeof(s.path), "%s", cases[i].path);
		s.abstract = cases[i].abstract;
		if (s.kind == ADDR_UNIX)
			s.port = 0;
		char text[ADDR_TEXT_MAX];
		int n = addr_spec_format(&s, text, sizeof(text));
		cr_assert_eq(n, (int)strlen(cases[i].want), "case %zu: %d", i, n);
		cr_assert_str_eq(text, cases[i].want);
		/* And it parses back to the same spec. */
		struct addr_spec back;
		cr_assert_eq(addr_parse(text, &back, NULL), 0, "%s", text);
		cr_assert(memcmp(&s, &back, sizeof(s)) == 0, "'%s' parses to another spec", text);
	}
}

TEST(format_spec, longest_datagram_forms_fit_text_max)
{
	static const char *const prefixes[] = {"unix-dgram:/", "unix-seqpacket:/", "unix-seqpacket:@"};
	for (size_t i = 0; i < N_ELEMENTS(prefixes); i++) {
		char t[300];
		size_t pl = strlen(prefixes[i]);
		memcpy(t, prefixes[i], pl);
		memset(t + pl, 'z', 106);
		t[pl + 106] = '\0';
		struct addr_spec s;
		cr_assert_eq(addr_parse(t, &s, NULL), 0, "%s", prefixes[i]);
		char text[ADDR_TEXT_MAX];
		cr_assert_eq(addr_spec_format(&s, text, sizeof(text)), (int)strlen(t), "%s", prefixes[i]);
		cr_assert_str_eq(text, t);
	}
	/* The longest udp IPv6 literal fits as well. */
	struct addr_spec s;
	const char *v6 = "udp://[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
	cr_assert_eq(addr_parse(v6, &s, NULL), 0);
	char text[ADDR_TEXT_MAX];
	cr_assert_eq(addr_spec_format(&s, text, sizeof(text)), (int)strlen(v6));
	cr_assert_str_eq(text, v6);
}

TEST(format_spec, buffer_too_small_for_new_schemes)
{
	static const char *const texts[] = {"udp://[::1]:53", "unix-dgram:@x", "unix-seqpacket:/a"};
	for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
		struct addr_spec s;
		cr_assert_eq(addr_parse(texts[i], &s, NULL), 0);
		size_t want = strlen(texts[i]);
		char buf[64];
		cr_assert_eq(addr_spec_format(&s, buf, want + 1), (int)want, "%s", texts[i]);
		cr_assert_str_eq(buf, texts[i]);
		cr_assert_eq(addr_spec_format(&s, buf, want), -ENOSPC, "%s", texts[i]);
	}
}

/* ===================== addr_resolve ===================== */

static int resolve(const char *text, struct addr_bound *b, int max, const char **why)
{
	struct addr_spec s;
	cr_assert_eq(addr_parse(text, &s, why), 0, "%s", text);
	return addr_resolve(&s, b, max, why);
}

TEST(resolve, ipv4_literal)
{
	struct addr_bound b[4];
	const char *why = NULL;
	cr_assert_eq(resolve("tcp://192.0.2.1:8080", b, 4, &why), 1, "%s", why ? why : "");
	const struct sockaddr_in *a = (const struct sockaddr_in *)&b[0].ss;
	cr_assert_eq(a->sin_family, AF_INET);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in));
	cr_assert_eq(ntohs(a->sin_port), 8080);
	cr_assert_eq(ntohl(a->sin_addr.s_addr), 0xc0000201u);
	cr_assert_eq(b[0].dual_stack, 0);

	cr_assert_eq(resolve("tcp://0.0.0.0:0", b, 4, &why), 1);
	a = (const struct sockaddr_in *)&b[0].ss;
	cr_assert_eq(a->sin_family, AF_INET);
	cr_assert_eq(a->sin_port, 0);
	cr_assert_eq(a->sin_addr.s_addr, htonl(INADDR_ANY));
}

TEST(resolve, ipv6_literal)
{
	struct addr_bound b[4];
	const char *why = NULL;
	cr_assert_eq(resolve("tcp://[::1]:8080", b, 4, &why), 1, "%s", why ? why : "");
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&b[0].ss;
	cr_assert_eq(a->sin6_family, AF_INET6);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(a->sin6_port), 8080);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&a->sin6_addr));
	cr_assert_eq(b[0].dual_stack, 0);

	cr_assert_eq(resolve("tcp://[::]:65535", b, 4, &why), 1);
	a = (const struct sockaddr_in6 *)&b[0].ss;
	cr_assert_eq(a->sin6_family, AF_INET6);
	cr_assert_eq(ntohs(a->sin6_port), 65535);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr));
	cr_assert_eq(b[0].dual_stack, 0, "only tcp://* is dual-stack");
}

TEST(resolve, any_is_dual_stack)
{
	struct addr_bound b[4];
	const char *why = NULL;
	cr_assert_eq(resolve("tcp://*:80", b, 4, &why), 1);
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&b[0].ss;
	cr_assert_eq(a->sin6_family, AF_INET6);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(a->sin6_port), 80);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr));
	cr_assert_eq(b[0].dual_stack, 1);
}

TEST(resolve, localhost_from_hosts_file)
{
	struct addr_bound b[8];
	const char *why = NULL;
	int n = resolve("tcp://localhost:80", b, 8, &why);
	cr_assert_geq(n, 1, "localhost did not resolve: %s", why ? why : "");
	bool v4 = false;
	for (int i = 0; i < n; i++) {
		cr_assert_eq(b[i].dual_stack, 0);
		if (b[i].ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)&b[i].ss;
			cr_assert_eq(b[i].len, sizeof(*a));
			cr_assert_eq(ntohs(a->sin_port), 80);
			cr_assert_eq(ntohl(a->sin_addr.s_addr) >> 24, 127);
			if (ntohl(a->sin_addr.s_addr) == INADDR_LOOPBACK)
				v4 = true;
		} else {
			cr_assert_eq(b[i].ss.ss_family, AF_INET6, "only IPv4 and IPv6 results");
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&b[i].ss;
			cr_assert_eq(b[i].len, sizeof(*a));
			cr_assert_eq(ntohs(a->sin6_port), 80);
			cr_assert(IN6_IS_ADDR_LOOPBACK(&a->sin6_addr));
		}
		/* No duplicates (getaddrinfo may list one address per socktype). */
		for (int j = 0; j < i; j++)
			cr_assert(b[i].len != b[j].len || memcmp(&b[i].ss, &b[j].ss, b[i].len) != 0,
			          "result %d repeats result %d", i, j);
	}
	cr_assert(v4, "localhost did not give 127.0.0.1");

	/* max bounds the count. */
	cr_assert_eq(resolve("tcp://localhost:80", b, 1, &why), 1);
}

TEST(resolve, unresolvable_name)
{
	struct addr_bound b[4];
	const char *why = NULL;
	int n = resolve("tcp://no-such-host.invalid:80", b, 4, &why);
	cr_assert_eq(n, -ENOENT);
	cr_assert(why && *why, "no reason given");
}

TEST(resolve, unix_path)
{
	struct addr_bound b[2];
	cr_assert_eq(resolve("unix:/run/x.sock", b, 2, NULL), 1);
	const struct sockaddr_un *u = (const struct sockaddr_un *)&b[0].ss;
	cr_assert_eq(u->sun_family, AF_UNIX);
	cr_assert_eq(b[0].len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1);
	cr_assert_str_eq(u->sun_path, "/run/x.sock");
	cr_assert_eq(b[0].dual_stack, 0);
}

TEST(resolve, unix_abstract)
{
	struct addr_bound b[2];
	cr_assert_eq(resolve("unix:@handoff-test", b, 2, NULL), 1);
	const struct sockaddr_un *u = (const struct sockaddr_un *)&b[0].ss;
	cr_assert_eq(u->sun_family, AF_UNIX);
	/* No terminating NUL: abstract names are counted bytes. */
	cr_assert_eq(b[0].len, offsetof(struct sockaddr_un, sun_path) + 1 + strlen("handoff-test"));
	cr_assert_eq(u->sun_path[0], '\0');
	cr_assert(memcmp(u->sun_path + 1, "handoff-test", strlen("handoff-test")) == 0);
}

TEST(resolve, longest_unix_path)
{
	struct addr_bound b[1];
	char *t = long_unix('/', 106);
	cr_assert_eq(resolve(t, b, 1, NULL), 1);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_un));
	cr_assert_eq(b[0].len, offsetof(struct sockaddr_un, sun_path) + 108);
	free(t);
}

TEST(resolve, bad_arguments)
{
	struct addr_spec s;
	struct addr_bound b[1];
	const char *why = NULL;
	cr_assert_eq(addr_parse("tcp://127.0.0.1:80", &s, NULL), 0);
	cr_assert_eq(addr_resolve(&s, b, 0, &why), -EINVAL);
	cr_assert_not_null(why);
	memset(&s, 0, sizeof(s));
	why = NULL;
	cr_assert_eq(addr_resolve(&s, b, 1, &why), -EINVAL, "a spec of no kind");
	cr_assert_not_null(why);
}

/* The kernel agrees with the lengths and the socket types: bind each
 * resolved address on a socket of the spec's type and read it back with
 * getsockname(). */
TEST(resolve, kernel_accepts_resolved_addresses)
{
	char dir[] = "/tmp/test_addr.XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char paths[3][64], texts_buf[6][128];
	static const char *const schemes[3] = {"unix", "unix-dgram", "unix-seqpacket"};
	for (int k = 0; k < 3; k++) {
		snprintf(paths[k], sizeof(paths[k]), "%s/s%d.sock", dir, k);
		snprintf(texts_buf[k], sizeof(texts_buf[k]), "%s:%s", schemes[k], paths[k]);
		snprintf(texts_buf[3 + k], sizeof(texts_buf[3 + k]), "%s:@handoff-test-addr-%d-%d", schemes[k],
		         (int)getpid(), k);
	}

	const char *texts[] = {texts_buf[0], texts_buf[1], texts_buf[2], texts_buf[3], texts_buf[4],
	                       texts_buf[5], "tcp://127.0.0.1:0", "udp://127.0.0.1:0"};
	for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
		struct addr_spec spec;
		struct addr_bound b[1];
		cr_assert_eq(addr_parse(texts[i], &spec, NULL), 0, "%s", texts[i]);
		cr_assert_eq(addr_resolve(&spec, b, 1, NULL), 1, "%s", texts[i]);
		int fd = socket(b[0].ss.ss_family, spec.socktype | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd, 0, "%s: socket: %s", texts[i], strerror(errno));
		cr_assert_eq(bind(fd, (const struct sockaddr *)&b[0].ss, b[0].len), 0, "bind %s: %s", texts[i],
		             strerror(errno));
		int type = -1;
		socklen_t tlen = sizeof(type);
		cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen), 0);
		cr_assert_eq(type, spec.socktype, "%s", texts[i]);
		struct sockaddr_storage got;
		socklen_t glen = sizeof(got);
		cr_assert_eq(getsockname(fd, (struct sockaddr *)&got, &glen), 0);
		char out[ADDR_TEXT_MAX];
		cr_assert_gt(addr_format((const struct sockaddr *)&got, glen, out, sizeof(out)), 0);
		if (b[0].ss.ss_family == AF_UNIX) {
			cr_assert_eq(glen, b[0].len, "%s", texts[i]);
			/* addr_format names the address, not the socket type. */
			char want[300];
			snprintf(want, sizeof(want), "unix:%s", strchr(texts[i], ':') + 1);
			cr_assert_str_eq(out, want);
		} else {
			cr_assert_eq(strncmp(out, "127.0.0.1:", 10), 0, "%s", out);
			cr_assert_neq(strcmp(out, "127.0.0.1:0"), 0, "the kernel picked no port");
		}
		close(fd);
	}
	for (int k = 0; k < 3; k++)
		unlink(paths[k]);
	cr_assert_eq(rmdir(dir), 0);
}

/* ---- UDP and the Unix datagram/seqpacket schemes ---- */

/* getaddrinfo() is interposed (the library is linked statically into this
 * test) so the tests can see which socket type addr_resolve() asks for. */
static int gai_calls;
static int gai_last_socktype = -1;
static int gai_last_flags;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	gai_calls++;
	gai_last_socktype = hints ? hints->ai_socktype : -1;
	gai_last_flags = hints ? hints->ai_flags : 0;
	if (!real)
		return EAI_SYSTEM;
	return real(node, service, hints, res);
}

TEST(resolve, udp_literals)
{
	struct addr_bound b[4];
	const char *why = NULL;
	cr_assert_eq(resolve("udp://192.0.2.1:53", b, 4, &why), 1, "%s", why ? why : "");
	const struct sockaddr_in *a = (const struct sockaddr_in *)&b[0].ss;
	cr_assert_eq(a->sin_family, AF_INET);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in));
	cr_assert_eq(ntohs(a->sin_port), 53);
	cr_assert_eq(ntohl(a->sin_addr.s_addr), 0xc0000201u);
	cr_assert_eq(b[0].dual_stack, 0);

	cr_assert_eq(resolve("udp://[2001:db8::53]:5353", b, 4, &why), 1, "%s", why ? why : "");
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&b[0].ss;
	cr_assert_eq(a6->sin6_family, AF_INET6);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(a6->sin6_port), 5353);
	cr_assert_eq(a6->sin6_addr.s6_addr[15], 0x53);
	cr_assert_eq(b[0].dual_stack, 0);
}

TEST(resolve, udp_any_is_dual_stack)
{
	struct addr_bound b[4];
	int calls = gai_calls;
	cr_assert_eq(resolve("udp://*:7", b, 4, NULL), 1);
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&b[0].ss;
	cr_assert_eq(a->sin6_family, AF_INET6);
	cr_assert_eq(b[0].len, sizeof(struct sockaddr_in6));
	cr_assert_eq(ntohs(a->sin6_port), 7);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr));
	cr_assert_eq(b[0].dual_stack, 1);
	cr_assert_eq(gai_calls, calls, "a star needs no lookup");
}

/* A udp:// name is looked up for datagram sockets and a tcp:// one for
 * stream sockets (the hints carry the spec's socket type), numerically for
 * the port, and for binding. */
TEST(resolve, names_use_the_spec_socktype)
{
	static const struct {
		const char *text;
		int socktype;
	} cases[] = {{"udp://localhost:53", SOCK_DGRAM}, {"tcp://localhost:80", SOCK_STREAM},
	             {"udp://127.0.0.1:9", SOCK_DGRAM}, {"tcp://[::1]:9", SOCK_STREAM}};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct addr_bound b[8];
		const char *why = NULL;
		int calls = gai_calls;
		gai_last_socktype = -1;
		int n = resolve(cases[i].text, b, 8, &why);
		cr_assert_geq(n, 1, "%s: %s", cases[i].text, why ? why : "");
		cr_assert_eq(gai_calls, calls + 1, "%s: getaddrinfo called %d times", cases[i].text, gai_calls - calls);
		cr_assert_eq(gai_last_socktype, cases[i].socktype, "%s: looked up with socktype %d", cases[i].text,
		             gai_last_socktype);
		cr_assert(gai_last_flags & AI_PASSIVE, "%s", cases[i].text);
		cr_assert(gai_last_flags & AI_NUMERICSERV, "%s", cases[i].text);
	}
}

TEST(resolve, udp_localhost)
{
	struct addr_bound b[8];
	const char *why = NULL;
	int n = resolve("udp://localhost:13", b, 8, &why);
	cr_assert_geq(n, 1, "localhost did not resolve for udp: %s", why ? why : "");
	bool v4 = false;
	for (int i = 0; i < n; i++) {
		cr_assert_eq(b[i].dual_stack, 0);
		cr_assert(b[i].ss.ss_family == AF_INET || b[i].ss.ss_family == AF_INET6);
		if (b[i].ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)&b[i].ss;
			cr_assert_eq(ntohs(a->sin_port), 13);
			v4 |= ntohl(a->sin_addr.s_addr) == INADDR_LOOPBACK;
		} else {
			cr_assert_eq(ntohs(((const struct sockaddr_in6 *)&b[i].ss)->sin6_port), 13);
		}
		for (int j = 0; j < i; j++)
			cr_assert(b[i].len != b[j].len || memcmp(&b[i].ss, &b[j].ss, b[i].len) != 0,
			          "result %d repeats result %d", i, j);
	}
	cr_assert(v4, "localhost did not give 127.0.0.1");
	/* The same addresses as for tcp:// (only the socket type differs). */
	struct addr_bound t[8];
	cr_assert_eq(resolve("tcp://localhost:13", t, 8, &why), n);
	for (int i = 0; i < n; i++)
		cr_assert(t[i].len == b[i].len && memcmp(&t[i].ss, &b[i].ss, b[i].len) == 0, "result %d differs", i);
}

TEST(resolve, udp_unresolvable_name)
{
	struct addr_bound b[4];
	const char *why = NULL;
	cr_assert_eq(resolve("udp://no-such-host.invalid:53", b, 4, &why), -ENOENT);
	cr_assert(why && *why, "no reason given");
}

TEST(resolve, unix_datagram_and_seqpacket)
{
	static const char *const texts[] = {"unix-dgram:/run/dg.sock", "unix-seqpacket:/run/dg.sock"};
	for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
		struct addr_bound b[2];
		int calls = gai_calls;
		cr_assert_eq(resolve(texts[i], b, 2, NULL), 1, "%s", texts[i]);
		cr_assert_eq(gai_calls, calls, "unix addresses need no lookup");
		const struct sockaddr_un *u = (const struct sockaddr_un *)&b[0].ss;
		cr_assert_eq(u->sun_family, AF_UNIX);
		cr_assert_str_eq(u->sun_path, "/run/dg.sock");
		cr_assert_eq(b[0].len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/dg.sock") + 1);
		cr_assert_eq(b[0].dual_stack, 0);
	}
	struct addr_bound b[1];
	cr_assert_eq(resolve("unix-dgram:@dg-name", b, 1, NULL), 1);
	const struct sockaddr_un *u = (const struct sockaddr_un *)&b[0].ss;
	cr_assert_eq(u->sun_path[0], '\0');
	cr_assert(memcmp(u->sun_path + 1, "dg-name", 7) == 0);
	cr_assert_eq(b[0].len, offsetof(struct sockaddr_un, sun_path) + 1 + 7);
}

TEST(resolve, unknown_kind)
{
	struct addr_spec s;
	struct addr_bound b[1];
	const char *why = NULL;
	cr_assert_eq(addr_parse("udp://127.0.0.1:53", &s, NULL), 0);
	s.kind = (enum addr_kind)99;
	cr_assert_eq(addr_resolve(&s, b, 1, &why), -EINVAL);
	cr_assert(why && *why);
	/* max < 1 is refused for udp too. */
	cr_assert_eq(addr_parse("udp://127.0.0.1:53", &s, NULL), 0);
	why = NULL;
	cr_assert_eq(addr_resolve(&s, b, 0, &why), -EINVAL);
	cr_assert_not_null(why);
}

/* ===================== addr_format ===================== */

static void check_format(const void *sa, socklen_t len, const char *want)
{
	char buf[ADDR_TEXT_MAX];
	int n = addr_format(sa, len, buf, sizeof(buf));
	cr_assert_eq(n, (int)strlen(want), "formatting gave %d ('%s'), want '%s'", n, n >= 0 ? buf : "", want);
	cr_assert_str_eq(buf, want);
}

TEST(format, ipv4)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
	check_format(&a, sizeof(a), "192.0.2.1:80");
	a.sin_port = htons(65535);
	check_format(&a, sizeof(a), "192.0.2.1:65535");
	a.sin_port = 0;
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	check_format(&a, sizeof(a), "0.0.0.0:0");
}

TEST(format, ipv6)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr);
	check_format(&a, sizeof(a), "[2001:db8::1]:443");
	a.sin6_addr = in6addr_loopback;
	a.sin6_port = htons(8080);
	check_format(&a, sizeof(a), "[::1]:8080");
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &a.sin6_addr);
	/* A v4-mapped client (dual-stack listener) is shown as plain IPv4. */
	check_format(&a, sizeof(a), "192.0.2.1:8080");
}

TEST(format, unix_path)
{
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	snprintf(u.sun_path, sizeof(u.sun_path), "/run/x.sock");
	socklen_t exact = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock"));
	/* With and without the terminating NUL, and with room to spare. */
	check_format(&u, exact + 1, "unix:/run/x.sock");
	check_format(&u, exact, "unix:/run/x.sock");
	check_format(&u, sizeof(u), "unix:/run/x.sock");

	/* A full sun_path without a NUL is read no further than the length. */
	struct {
		struct sockaddr_un u;
		char after[8];
	} full;
	memset(&full, 'z', sizeof(full));
	full.u.sun_family = AF_UNIX;
	full.u.sun_path[0] = '/';
	memset(full.u.sun_path + 1, 'p', sizeof(full.u.sun_path) - 1);
	char want[200] = "unix:/";
	memset(want + 6, 'p', sizeof(full.u.sun_path) - 1);
	want[5 + sizeof(full.u.sun_path)] = '\0';
	check_format(&full.u, sizeof(full.u), want);
}

TEST(format, unix_abstract)
{
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	memcpy(u.sun_path, "\0name", 5);
	check_format(&u, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 5), "unix:@name");
}

TEST(format, unix_unnamed)
{
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	check_format(&u, (socklen_t)offsetof(struct sockaddr_un, sun_path), "unix:(unnamed)");

	/* What getpeername() gives for a socketpair end. */
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	cr_assert_eq(getpeername(sv[0], (struct sockaddr *)&ss, &len), 0);
	check_format(&ss, len, "unix:(unnamed)");
	close(sv[0]);
	close(sv[1]);
}

TEST(format, odd_inputs)
{
	check_format(NULL, 0, "(unknown)");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
	check_format(&a, 1, "(unknown)");
	/* Too short for its family: not read past len. */
	check_format(&a, 4, "(family 2)");
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	check_format(&a6, sizeof(struct sockaddr_in), "(family 10)");
	struct sockaddr sa = {.sa_family = AF_APPLETALK};
	check_format(&sa, sizeof(sa), "(family 5)");
}

TEST(format, buffer_too_small)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
	char buf[32];
	size_t want = strlen("192.0.2.1:80");
	cr_assert_eq(addr_format((struct sockaddr *)&a, sizeof(a), buf, want + 1), (int)want);
	cr_assert_eq(addr_format((struct sockaddr *)&a, sizeof(a), buf, want), -ENOSPC);
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	cr_assert_eq(addr_format((struct sockaddr *)&u, sizeof(sa_family_t), buf, 5), -ENOSPC);
}

/* ===================== addr_hash_source ===================== */

static uint64_t hash4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return addr_hash_source((struct sockaddr *)&a, sizeof(a));
}

static uint64_t hash6(const char *ip, uint16_t port, uint32_t scope)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_scope_id = scope};
	cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return addr_hash_source((struct sockaddr *)&a, sizeof(a));
}

TEST(hash, same_ip_any_port)
{
	cr_assert_eq(hash4("192.0.2.1", 1), hash4("192.0.2.1", 65535));
	cr_assert_eq(hash4("192.0.2.1", 40000), hash4("192.0.2.1", 40001));
	cr_assert_eq(hash6("2001:db8::1", 1, 0), hash6("2001:db8::1", 2, 0));
	cr_assert_eq(hash6("2001:db8::1", 1, 0), hash6("2001:db8::1", 1, 3), "scope id is not the client");
}

TEST(hash, v4_mapped_equals_v4)
{
	cr_assert_eq(hash4("192.0.2.1", 80), hash6("::ffff:192.0.2.1", 1234, 0));
	cr_assert_eq(hash4("10.1.2.3", 80), hash6("::ffff:10.1.2.3", 80, 0));
	cr_assert_neq(hash4("192.0.2.1", 80), hash6("::ffff:192.0.2.2", 80, 0));
}

TEST(hash, different_clients_differ)
{
	cr_assert_neq(hash4("192.0.2.1", 80), hash4("192.0.2.2", 80));
	cr_assert_neq(hash4("192.0.2.1", 80), hash4("1.2.0.192", 80));
	cr_assert_neq(hash6("2001:db8::1", 80, 0), hash6("2001:db8::2", 80, 0));
	cr_assert_neq(hash6("::1", 80, 0), hash4("127.0.0.1", 80));

	/* Spread: 256 neighbouring addresses land in many of 16 buckets. */
	unsigned buckets = 0;
	for (int i = 0; i < 256; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		buckets |= 1u << (hash4(ip, 80) % 16);
	}
	cr_assert_eq(buckets, 0xffffu, "poor spread: bucket mask %#x", buckets);
}

TEST(hash, unix_and_odd_inputs)
{
	struct sockaddr_un u1 = {.sun_family = AF_UNIX}, u2 = {.sun_family = AF_UNIX};
	socklen_t unnamed = (socklen_t)offsetof(struct sockaddr_un, sun_path);
	cr_assert_eq(addr_hash_source((struct sockaddr *)&u1, unnamed), addr_hash_source((struct sockaddr *)&u2, unnamed));
	snprintf(u1.sun_path, sizeof(u1.sun_path), "/a");
	snprintf(u2.sun_path, sizeof(u2.sun_path), "/b");
	socklen_t l = (socklen_t)(unnamed + 3);
	cr_assert_neq(addr_hash_source((struct sockaddr *)&u1, l), addr_hash_source((struct sockaddr *)&u2, l));
	/* Degenerate input hashes to something without reading past len. */
	(void)addr_hash_source(NULL, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	cr_assert_eq(addr_hash_source((struct sockaddr *)&a, 4), addr_hash_source(NULL, 0));
}

TEST(unixaddr, control_socket_paths)
{
	struct sockaddr_un un;
	socklen_t len = 0;
	cr_assert_eq(addr_unix("/run/h/c.sock", &un, &len), 0);
	cr_assert_eq(un.sun_family, AF_UNIX);
	cr_assert_str_eq(un.sun_path, "/run/h/c.sock");
	cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/h/c.sock") + 1);

	cr_assert_eq(addr_unix("@ctl", &un, &len), 0);
	cr_assert_eq(un.sun_path[0], '\0');
	cr_assert(memcmp(un.sun_path + 1, "ctl", 3) == 0);
	cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + 4, "abstract names have no terminator");

	char p[sizeof(un.sun_path) + 2];
	memset(p, 'a', sizeof(p));
	p[0] = '/';
	p[sizeof(un.sun_path) - 1] = '\0'; /* 107 bytes + NUL: fits exactly */
	cr_assert_eq(addr_unix(p, &un, &len), 0);
	p[sizeof(un.sun_path) - 1] = 'a';
	p[sizeof(un.sun_path)] = '\0'; /* 108: no room for the NUL */
	cr_assert_eq(addr_unix(p, &un, &len), -ENAMETOOLONG);
	p[0] = '@'; /* 108 for an abstract name: fits */
	cr_assert_eq(addr_unix(p, &un, &len), 0);
	cr_assert_eq(addr_unix("", &un, &len), -EINVAL);
	cr_assert_eq(addr_unix("@", &un, &len), -EINVAL);
}
