/* inetd: inetd.conf -> handoffd.conf events (see inetd.h for the mapping).
 *
 * Reading: physical lines of at most INETD_LINE_MAX bytes; a line that
 * starts with a blank continues the entry above it (both inetds allow
 * that); '#' (after optional blanks) starts a comment line. Each entry is
 * split on blanks into fields, checked as a whole and turned into a
 * struct entry (service name plus keys) before anything is sent to the
 * sink, so an entry is either sent complete or reported as one error.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "inetd.h"
#include "proto.h"

#define INETD_LINE_MAX 4096  /* one physical line, and one entry with its continuations */
#define MAX_FIELDS (6 + CFG_MAX_ARGS)  /* 6 fields, then argv0 and up to 63 arguments */
#define MAX_HOSTS 16          /* addresses in one host list */
#define MAX_KEYS (MAX_HOSTS + 16)
#define MAX_NOTES 4
#define DEFAULT_SPAWN_RATE 256 /* openbsd-inetd's default invocations per minute */
#define SPAWN_PAUSE "10m"      /* both inetds stop a service that hit the rate for ten minutes */
#define MAX_RATE 1000000       /* handoffd's largest rate count */
#define ARGV0_MAX 127          /* exec_argv0 holds 127 bytes */

enum fam { FAM_V4 = 1, FAM_V6 = 2, FAM_V46 = 3 };
enum kind { K_TCP, K_UDP, K_UNIX };

static const struct proto_info {
	const char *name;
	enum kind kind;
	enum fam fam;
} protos[] = {
	{"tcp", K_TCP, FAM_V46},   {"tcp4", K_TCP, FAM_V4},   {"tcp6", K_TCP, FAM_V6},
	{"tcp6only", K_TCP, FAM_V6}, {"tcp46", K_TCP, FAM_V46}, {"udp", K_UDP, FAM_V46},
	{"udp4", K_UDP, FAM_V4},  {"udp6", K_UDP, FAM_V6},   {"udp6only", K_UDP, FAM_V6},
	{"udp46", K_UDP, FAM_V46}, {"unix", K_UNIX, 0},
};

static const char *const builtins[] = {"echo", "discard", "chargen", "daytime", "time", "tcpmux"};

struct parser {
	const struct inetd_sink *sink;
	void *ctx;
	const char *path;
	char defhost[512];      /* host list of the last bare "host:" line, "" = all addresses */
	char (*names)[PROTO_MAX_NAME + 1]; /* service names given out */
	size_t nnames;
	int nerr;
	bool have_mux_builtin;  /* an internal tcpmux entry was sent */
	int mux_line;           /* first tcpmux/NAME entry, 0 = none */
	int mux_fam;            /* families of the tcpmux/NAME entries */
};

/* One entry, complete before anything is sent. */
struct entry {
	char name[PROTO_MAX_NAME + 1];
	int nkeys;
	struct {
		const char *key;
		char value[INETD_CONF_LINE_MAX + 1];
	} keys[MAX_KEYS];
	int nnotes;
	char notes[MAX_NOTES][160];
};

/* ---- events ---- */

static void parse_error(struct parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void parse_error(struct parser *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->nerr++;
	p->sink->error(p->ctx, p->path, line, msg);
}

/* Add key = value; false if it would not fit a handoffd.conf line. */
static bool entry_key(struct entry *e, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool entry_key(struct entry *e, const char *key, const char *fmt, ...)
{
	if (e->nkeys >= MAX_KEYS)
		return false;
	char *v = e->keys[e->nkeys].value;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(v, sizeof(e->keys[0].value), fmt, ap);
	va_end(ap);
	if (n < 0 || strlen(key) + 3 + (size_t)n > INETD_CONF_LINE_MAX)
		return false;
	e->keys[e->nkeys++].key = key;
	return true;
}

static void entry_note(struct entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void entry_note(struct entry *e, const char *fmt, ...)
{
	if (e->nnotes >= MAX_NOTES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->notes[e->nnotes++], sizeof(e->notes[0]), fmt, ap);
	va_end(ap);
}

static void entry_send(struct parser *p, int line, const struct entry *e)
{
	p->sink->service(p->ctx, p->path, line, e->name);
	if (p->sink->comment)
		for (int i = 0; i < e->nnotes; i++)
			p->sink->comment(p->ctx, p->path, line, e->notes[i]);
	for (int i = 0; i < e->nkeys; i++)
		p->sink->key(p->ctx, p->path, line, e->keys[i].key, e->keys[i].value);
}

/* ---- service names ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.';
}

static bool name_used(const struct parser *p, const char *name)
{
	for (size_t i = 0; i < p->nnames; i++)
		if (strcmp(p->names[i], name) == 0)
			return true;
	return false;
}

/* "<base>-<suffix>" sanitised and made unique into e->name; records it.
 * Returns 0 or -ENOSPC (too many services) / -ENOMEM. */
static int name_make(struct parser *p, struct entry *e, const char *base, const char *suffix)
{
	char stem[PROTO_MAX_NAME + 1];
	/* Leave room for "-" suffix and a "-NNNN" to make it unique. */
	size_t room = PROTO_MAX_NAME - 5 - (suffix ? strlen(suffix) + 1 : 0);
	size_t n = 0;
	for (const char *s = base; *s && n < room; s++)
		stem[n++] = name_char(*s) ? *s : '_';
	stem[n] = '\0';
	if (n == 0)
		snprintf(stem, sizeof(stem), "service");
	char cand[PROTO_MAX_NAME + 80];
	if (suffix)
		snprintf(cand, sizeof(cand), "%s-%.20s", stem, suffix);
	else
		snprintf(cand, sizeof(cand), "%s", stem);
	char try[sizeof(cand) + 16];
	snprintf(try, sizeof(try), "%s", cand);
	for (unsigned k = 2; name_used(p, try) && k < 100000; k++)
		snprintf(try, sizeof(try), "%s-%u", cand, k);
	if (strlen(try) > PROTO_MAX_NAME || name_used(p, try))
		return -ENOSPC;
	if (p->nnames >= CFG_MAX_SERVICES)
		return -ENOSPC;
	void *v = realloc(p->names, sizeof(*p->names) * (p->nnames + 1));
	if (!v)
		return -ENOMEM;
	p->names = v;
	size_t len = strlen(try) + 1; /* <= PROTO_MAX_NAME + 1, checked above */
	memcpy(p->names[p->nnames++], try, len);
	memcpy(e->name, try, len);
	return 0;
}

/* ---- field parsers: return 0, or -EINVAL with *why set ---- */

struct host {
	enum { H_ANY, H_V4, H_V6, H_NAME } type;
	char text[256];
};

/* Parse a host list "a,b,[c]" (the part before the colon). */
static int hosts_parse(const char *list, struct host *ret, int *ret_n, char *why, size_t whylen)
{
	char buf[512];
	int n = 0;
	if (strlen(list) >= sizeof(buf)) {
		snprintf(why, whylen, "host list '%.40s...' is too long", list);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n >= MAX_HOSTS) {
			snprintf(why, whylen, "more than %d hosts in '%s'", MAX_HOSTS, list);
			return -EINVAL;
		}
		struct host *h = &ret[n];
		size_t len = strlen(t);
		if (t[0] == '[' && len > 2 && t[len - 1] == ']') {
			t[len - 1] = '\0';
			t++;
		}
		unsigned char a[16];
		snprintf(h->text, sizeof(h->text), "%s", t);
		if (strcmp(t, "*") == 0) {
			h->type = H_ANY;
		} else if (inet_pton(AF_INET, t, a) == 1) {
			h->type = H_V4;
		} else if (inet_pton(AF_INET6, t, a) == 1) {
			h->type = H_V6;
		} else {
			bool ok = *t && strlen(t) <= 253 && *t != '-' && *t != '.';
			for (const char *c = t; ok && *c; c++)
				ok = isalnum((unsigned char)*c) || *c == '-' || *c == '.';
			if (!ok) {
				snprintf(why, whylen, "'%s' is not a host name or address", t);
				return -EINVAL;
			}
			h->type = H_NAME;
		}
		n++;
	}
	if (n == 0) {
		snprintf(why, whylen, "empty host list");
		return -EINVAL;
	}
	*ret_n = n;
	return 0;
}

/* user[:group] or user[.group] (the first ':' or else the first '.'). */
static int user_parse(const char *field, char *user, size_t ulen, char *group, size_t glen, const char **why)
{
	const char *sep = strchr(field, ':');
	if (!sep)
		sep = strchr(field, '.');
	size_t un = sep ? (size_t)(sep - field) : strlen(field);
	const char *g = sep ? sep + 1 : "";
	if (un == 0) {
		*why = "the user name is empty";
		return -EINVAL;
	}
	if (sep && !*g) {
		*why = "the group name after the separator is empty";
		return -EINVAL;
	}
	if (un >= ulen || strlen(g) >= glen) {
		*why = "the name is too long";
		return -EINVAL;
	}
	memcpy(user, field, un);
	user[un] = '\0';
	snprintf(group, glen, "%s", g);
	const char *names[2] = {user, group};
	for (int i = 0; i < 2; i++) {
		const char *s = names[i];
		if (*s == '-') {
			*why = "a name may not start with '-'";
			return -EINVAL;
		}
		for (; *s; s++)
			if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.' || (*s == '$' && !s[1]))) {
				*why = "a name may hold only letters, digits, '_', '-', '.' (and a final '$')";
				return -EINVAL;
			}
	}
	return 0;
}

/* openbsd-inetd's "sndbuf=64k" size: digits and an optional k or m. */
static int size_parse(const char *v, char *ret, size_t len)
{
	char *end;
	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	unsigned long mul = 1;
	const char *suffix = "";
	if (*end == 'k' || *end == 'K') {
		mul = 1024;
		suffix = "K";
		end++;
	} else if (*end == 'm' || *end == 'M') {
		mul = 1024 * 1024;
		suffix = "M";
		end++;
	}
	if (errno || *end || x == 0 || x > (1UL << 30) / mul)
		return -EINVAL;
	snprintf(ret, len, "%lu%s", x, suffix);
	return 0;
}

/* A word of exec: quoted when handoffd's word splitter or inih would
 * otherwise change it (blanks, quotes, a leading ';' that inih could take
 * for a comment). */
static int word_append(char *buf, size_t size, size_t *pos, const char *w)
{
	bool quote = !*w || *w == ';' || *w == '#' || strpbrk(w, " \t\"");
	char tmp[INETD_CONF_LINE_MAX * 2 + 3];
	if (strlen(w) > INETD_CONF_LINE_MAX)
		return -ENOSPC;
	size_t n = 0;
	if (quote) {
		tmp[n++] = '"';
		for (const char *s = w; *s; s++) {
			if (*s == '"' || *s == '\\')
				tmp[n++] = '\\';
			tmp[n++] = *s;
		}
		tmp[n++] = '"';
	} else {
		for (const char *s = w; *s; s++)
			tmp[n++] = *s;
	}
	tmp[n] = '\0';
	int r = snprintf(buf + *pos, size - *pos, "%s%s", *pos ? " " : "", tmp);
	if (r < 0 || (size_t)r >= size - *pos)
		return -ENOSPC;
	*pos += (size_t)r;
	return 0;
}

/* ---- one entry ---- */

static const struct proto_info *proto_find(const char *name)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcmp(protos[i].name, name) == 0)
			return &protos[i];
	return NULL;
}

/* The listen keys of an internet entry: one per host, or the wildcard of
 * the family. Returns 0 or -EINVAL with why. */
static int entry_listen(struct entry *e, const struct proto_info *pi, const struct host *hosts, int nhosts,
                        unsigned port, char *why, size_t whylen)
{
	const char *scheme = pi->kind == K_TCP ? "tcp" : "udp";
	static const struct host any = {.type = H_ANY, .text = "*"};
	bool v6any = false;
	if (nhosts == 0) {
		hosts = &any;
		nhosts = 1;
	}
	for (int i = 0; i < nhosts; i++) {
		const struct host *h = &hosts[i];
		bool ok = true;
		switch (h->type) {
		case H_ANY:
			if (pi->fam == FAM_V4) {
				ok = entry_key(e, "listen", "%s://0.0.0.0:%u", scheme, port);
			} else if (pi->fam == FAM_V6) {
				ok = entry_key(e, "listen", "%s://[::]:%u", scheme, port);
				v6any = true;
			} else {
				ok = entry_key(e, "listen", "%s://*:%u", scheme, port);
			}
			break;
		case H_V4:
			if (pi->fam == FAM_V6) {
				snprintf(why, whylen, "host %s is an IPv4 address, but protocol %s is IPv6 only (field 1)",
				         h->text, pi->name);
				return -EINVAL;
			}
			ok = entry_key(e, "listen", "%s://%s:%u", scheme, h->text, port);
			break;
		case H_V6:
			if (pi->fam == FAM_V4) {
				snprintf(why, whylen, "host %s is an IPv6 address, but protocol %s is IPv4 only (field 1)",
				         h->text, pi->name);
				return -EINVAL;
			}
			ok = entry_key(e, "listen", "%s://[%s]:%u", scheme, h->text, port);
			break;
		case H_NAME:
			ok = entry_key(e, "listen", "%s://%s:%u", scheme, h->text, port);
			break;
		}
		if (!ok) {
			snprintf(why, whylen, "listen address for host '%s' is too long", h->text);
			return -EINVAL;
		}
	}
	if (v6any && !entry_key(e, "ipv6only", "yes")) {
		snprintf(why, whylen, "too many keys");
		return -EINVAL;
	}
	return 0;
}

/* Check one listen value the way handoffd.conf will read it. */
static int listen_check(const struct entry *e, char *why, size_t whylen)
{
	for (int i = 0; i < e->nkeys; i++) {
		if (strcmp(e->keys[i].key, "listen") != 0)
			continue;
		struct addr_spec spec;
		const char *w = NULL;
		if (addr_parse(e->keys[i].value, &spec, &w) < 0) {
			snprintf(why, whylen, "listen address %s: %s", e->keys[i].value, w ? w : "invalid");
			return -EINVAL;
		}
	}
	return 0;
}

/* A bare "host:" line: the default host list for the entries after it. */
static void entry_defhost(struct parser *p, int line, char *field)
{
	field[strlen(field) - 1] = '\0';
	if (strcmp(field, "*") == 0) {
		p->defhost[0] = '\0';
		return;
	}
	struct host hosts[MAX_HOSTS];
	int n;
	char why[256];
	if (hosts_parse(field, hosts, &n, why, sizeof(why)) < 0) {
		parse_error(p, line, "default host line '%s:': %s", field, why);
		return;
	}
	for (int i = 0; i < n; i++)
		if (hosts[i].type == H_ANY) {
			parse_error(p, line, "default host line '%s:': '*' cannot be mixed with addresses", field);
			return;
		}
	snprintf(p->defhost, sizeof(p->defhost), "%s", field);
}

static void entry_parse(struct parser *p, int line, char **f, int nf)
{
	struct entry e;
	char why[512];
	const char *w = NULL;

	memset(&e, 0, sizeof(e));
	if (nf == 1 && f[0][strlen(f[0]) - 1] == ':') {
		entry_defhost(p, line, f[0]);
		return;
	}
	if (nf < 6) {
		parse_error(p, line,
		            "too few fields (%d): an entry is 'service socket-type protocol wait|nowait user server "
		            "[argv0 args...]'",
		            nf);
		return;
	}
	if (nf > MAX_FIELDS) {
		parse_error(p, line, "too many server arguments (%d; at most %d words)", nf - 6, CFG_MAX_ARGS);
		return;
	}

	/* Field 3, protocol[,sndbuf=N][,rcvbuf=N], first: it says what field 1 is. */
	char protobuf[128];
	if (strlen(f[2]) >= sizeof(protobuf)) {
		parse_error(p, line, "protocol '%.40s...' (field 3) is too long", f[2]);
		return;
	}
	snprintf(protobuf, sizeof(protobuf), "%s", f[2]);
	char *psave = NULL;
	char *pname = strtok_r(protobuf, ",", &psave);
	if (!pname)
		pname = protobuf;
	if (strncmp(pname, "rpc/", 4) == 0 || strncmp(f[0], "rpc/", 4) == 0 || strstr(f[0], ":rpc/")) {
		parse_error(p, line, "RPC services are not supported ('%s %s')", f[0], f[2]);
		return;
	}
	const struct proto_info *pi = proto_find(pname);
	if (!pi) {
		parse_error(p, line,
		            "unknown protocol '%s' (field 3): expected tcp, tcp4, tcp6, tcp46, udp, udp4, udp6, udp46 "
		            "or unix",
		            pname);
		return;
	}
	char rcvbuf[32] = "", sndbuf[32] = "";
	for (char *o = strtok_r(NULL, ",", &psave); o; o = strtok_r(NULL, ",", &psave)) {
		char *dst = NULL;
		if (strncmp(o, "rcvbuf=", 7) == 0)
			dst = rcvbuf;
		else if (strncmp(o, "sndbuf=", 7) == 0)
			dst = sndbuf;
		if (!dst) {
			parse_error(p, line, "unknown protocol option '%s' (field 3): expected rcvbuf=SIZE or sndbuf=SIZE", o);
			return;
		}
		if (size_parse(o + 7, dst, sizeof(rcvbuf)) < 0) {
			parse_error(p, line, "protocol option '%s' (field 3): not a size from 1 to 1G (e.g. 65536, 64k, 1m)",
			            o);
			return;
		}
	}

	/* Field 2: socket type. */
	int socktype;
	if (strcmp(f[1], "stream") == 0) {
		socktype = SOCK_STREAM;
	} else if (strcmp(f[1], "dgram") == 0) {
		socktype = SOCK_DGRAM;
	} else if (strcmp(f[1], "seqpacket") == 0) {
		socktype = SOCK_SEQPACKET;
	} else if (strcmp(f[1], "raw") == 0 || strcmp(f[1], "rdm") == 0) {
		parse_error(p, line, "socket type '%s' (field 2) is not supported: handoffd serves stream, dgram and "
		            "seqpacket (unix) sockets", f[1]);
		return;
	} else {
		parse_error(p, line, "unknown socket type '%s' (field 2): expected stream, dgram or seqpacket", f[1]);
		return;
	}
	if (socktype == SOCK_SEQPACKET && pi->kind != K_UNIX) {
		parse_error(p, line, "socket type seqpacket (field 2) needs protocol unix, not '%s'", pi->name);
		return;
	}
	if ((socktype == SOCK_STREAM && pi->kind == K_UDP) || (socktype == SOCK_DGRAM && pi->kind == K_TCP)) {
		parse_error(p, line, "socket type %s (field 2) does not go with protocol %s (field 3)", f[1], pi->name);
		return;
	}

	/* Field 4: wait|nowait[.max]. */
	bool wait;
	unsigned long max = 0;
	{
		char *dot = strchr(f[3], '.');
		size_t wl = dot ? (size_t)(dot - f[3]) : strlen(f[3]);
		if (wl == 4 && strncmp(f[3], "wait", 4) == 0) {
			wait = true;
		} else if (wl == 6 && strncmp(f[3], "nowait", 6) == 0) {
			wait = false;
		} else {
			parse_error(p, line, "bad wait field '%s' (field 4): expected wait or nowait, optionally .MAX", f[3]);
			return;
		}
		if (dot) {
			char *end;
			errno = 0;
			max = strtoul(dot + 1, &end, 10);
			if (!isdigit((unsigned char)dot[1]) || errno || *end || max == 0 || max > MAX_RATE) {
				parse_error(p, line, "bad wait field '%s' (field 4): .MAX must be a number 1..%d", f[3], MAX_RATE);
				return;
			}
		}
	}

	/* Field 5: user[:group] or user.group. */
	char user[64], group[64];
	if (user_parse(f[4], user, sizeof(user), group, sizeof(group), &w) < 0) {
		parse_error(p, line, "bad user field '%s' (field 5): %s", f[4], w);
		return;
	}

	/* Field 6: server program, then argv[0] and arguments. */
	bool internal = strcmp(f[5], "internal") == 0;
	if (!internal && f[5][0] != '/') {
		parse_error(p, line, "server program '%s' (field 6) must be an absolute path or 'internal'", f[5]);
		return;
	}

	/* Field 1: [hosts:]service, tcpmux/[+]NAME, or a path for unix. */
	const char *svc = f[0];
	struct host hosts[MAX_HOSTS];
	int nhosts = 0;
	char hostlist[512] = "";
	bool host_given = false;
	if (pi->kind != K_UNIX) {
		const char *colon = strrchr(f[0], ':');
		host_given = colon != NULL;
		if (colon) {
			size_t hl = (size_t)(colon - f[0]);
			if (hl == 0 || hl >= sizeof(hostlist)) {
				parse_error(p, line, "bad host prefix in '%s' (field 1)", f[0]);
				return;
			}
			memcpy(hostlist, f[0], hl);
			hostlist[hl] = '\0';
			svc = colon + 1;
			if (!*svc) {
				parse_error(p, line, "'%s' (field 1): a host line stands alone; this entry has no service name",
				            f[0]);
				return;
			}
		} else {
			snprintf(hostlist, sizeof(hostlist), "%s", p->defhost);
		}
		if (hostlist[0] && strcmp(hostlist, "*") != 0 &&
		    hosts_parse(hostlist, hosts, &nhosts, why, sizeof(why)) < 0) {
			parse_error(p, line, "bad host prefix (field 1): %s", why);
			return;
		}
	}

	if (strncmp(svc, "tcpmux/", 7) == 0) {
		/* A service reached through the tcpmux builtin by name. */
		const char *mux = svc + 7;
		bool plus = *mux == '+';
		const char *mname = mux + plus;
		bool ok = *mname && strlen(mname) <= PROTO_MAX_NAME;
		for (const char *c = mname; ok && *c; c++)
			ok = name_char(*c);
		if (!ok) {
			parse_error(p, line, "bad tcpmux name '%s' (field 1): 1-%d of A-Z a-z 0-9 - _ .", mname, PROTO_MAX_NAME);
			return;
		}
		if (pi->kind != K_TCP || socktype != SOCK_STREAM) {
			parse_error(p, line, "tcpmux service '%s' must be stream tcp (fields 2 and 3)", mname);
			return;
		}
		if (internal) {
			parse_error(p, line, "tcpmux service '%s' (field 6) cannot be internal: give the program to run", mname);
			return;
		}
		if (wait) {
			parse_error(p, line, "tcpmux service '%s' must be nowait (field 4): it gets single connections", mname);
			return;
		}
		if (entry_key(&e, "tcpmux", "%s%s", plus ? "+" : "", mname) == false)
			goto too_long;
		if (host_given)
			entry_note(&e, "the host prefix of '%s' does not apply: tcpmux services are reached through tcpmux",
			           f[0]);
		p->mux_fam |= pi->fam;
		if (!p->mux_line)
			p->mux_line = line;
		char base[PROTO_MAX_NAME + 8];
		snprintf(base, sizeof(base), "tcpmux-%s", mname);
		if (name_make(p, &e, base, NULL) < 0)
			goto too_many;
		goto exec;
	}

	unsigned port = 0;
	char official[64] = "";
	const char *base = pi->kind == K_UDP ? "udp" : "tcp";
	if (pi->kind == K_UNIX) {
		if (svc[0] != '/' && svc[0] != '@') {
			parse_error(p, line, "unix socket '%s' (field 1) must be an absolute path or @abstract name", svc);
			return;
		}
		const char *scheme = socktype == SOCK_STREAM ? "unix" : socktype == SOCK_DGRAM ? "unix-dgram"
		                                                                              : "unix-seqpacket";
		if (!entry_key(&e, "listen", "%s:%s", scheme, svc))
			goto too_long;
	} else {
		bool numeric = *svc != '\0';
		for (const char *c = svc; *c; c++)
			numeric &= isdigit((unsigned char)*c) != 0;
		if (numeric) {
			char *end;
			unsigned long n = strtoul(svc, &end, 10);
			if (strlen(svc) > 5 || n == 0 || n > 65535) {
				parse_error(p, line, "port '%s' (field 1) is not 1..65535", svc);
				return;
			}
			port = (unsigned)n;
			struct servent *se = getservbyport(htons((uint16_t)port), base);
			if (se)
				snprintf(official, sizeof(official), "%s", se->s_name);
		} else {
			struct servent *se = getservbyname(svc, base);
			if (!se) {
				parse_error(p, line, "unknown service name '%s' (field 1): not in /etc/services for %s", svc, base);
				return;
			}
			port = ntohs((uint16_t)se->s_port);
			snprintf(official, sizeof(official), "%s", se->s_name);
		}
		if (entry_listen(&e, pi, hosts, nhosts, port, why, sizeof(why)) < 0) {
			parse_error(p, line, "%s", why);
			return;
		}
	}
	if (listen_check(&e, why, sizeof(why)) < 0) {
		parse_error(p, line, "%s (field 1)", why);
		return;
	}
	if (rcvbuf[0] && !entry_key(&e, "receive_buffer", "%s", rcvbuf))
		goto too_long;
	if (sndbuf[0] && !entry_key(&e, "send_buffer", "%s", sndbuf))
		goto too_long;

	if (internal) {
		int b = -1;
		for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			if (official[0] && strcmp(official, builtins[i]) == 0)
				b = (int)i;
		if (pi->kind == K_UNIX) {
			parse_error(p, line, "internal services (field 6) run over tcp or udp, not unix");
			return;
		}
		if (b < 0) {
			parse_error(p, line,
			            "unknown internal service '%s' (fields 1 and 6): handoffd has echo, discard, chargen, "
			            "daytime, time and tcpmux",
			            official[0] ? official : svc);
			return;
		}
		if (strcmp(builtins[b], "tcpmux") == 0) {
			if (socktype != SOCK_STREAM) {
				parse_error(p, line, "internal tcpmux (field 6) works over stream tcp only");
				return;
			}
			p->have_mux_builtin = true;
		}
		if (!entry_key(&e, "builtin", "%s", builtins[b]))
			goto too_long;
		if (nf > 6)
			entry_note(&e, "the arguments after 'internal' are ignored");
		if (wait && socktype == SOCK_STREAM)
			entry_note(&e, "'wait' does not apply to a builtin: handoffd serves each connection itself");
		if (max)
			entry_note(&e, "'.%lu' does not apply to a builtin: no program is started", max);
		if (name_make(p, &e, svc, pi->name) < 0)
			goto too_many;
		entry_send(p, line, &e);
		return;
	}

	if (socktype == SOCK_DGRAM && !wait) {
		parse_error(p, line, "dgram nowait (field 4) is not supported: handoffd shares a datagram socket with its "
		            "server, as inetd does for 'wait'; use wait");
		return;
	}
	if (wait && socktype != SOCK_DGRAM && !entry_key(&e, "mode", "listen"))
		goto too_long;
	if (pi->kind == K_UNIX) {
		const char *slash = strrchr(svc, '/');
		const char *bn = slash ? slash + 1 : svc + 1; /* "@name" */
		if (name_make(p, &e, *bn ? bn : "unix", "unix") < 0)
			goto too_many;
	} else if (name_make(p, &e, svc, pi->name) < 0) {
		goto too_many;
	}

exec:;
	/* exec = PATH ARGS..., exec_argv0 when argv[0] is not the path. */
	char cmd[INETD_CONF_LINE_MAX + 1];
	size_t pos = 0;
	if (word_append(cmd, sizeof(cmd), &pos, f[5]) < 0)
		goto too_long;
	for (int i = 7; i < nf; i++)
		if (word_append(cmd, sizeof(cmd), &pos, f[i]) < 0)
			goto too_long;
	if (!entry_key(&e, "exec", "%s", cmd))
		goto too_long;
	if (nf > 6 && strcmp(f[6], f[5]) != 0) {
		if (strlen(f[6]) > ARGV0_MAX) {
			parse_error(p, line, "argv[0] '%.40s...' (field 7) is longer than %d bytes", f[6], ARGV0_MAX);
			return;
		}
		if (!entry_key(&e, "exec_argv0", "%s", f[6]))
			goto too_long;
	}
	if (!entry_key(&e, "exec_user", "%s", user))
		goto too_long;
	if (group[0] && !entry_key(&e, "exec_group", "%s", group))
		goto too_long;
	if (!entry_key(&e, "spawn_rate", "%lu/min", max ? max : DEFAULT_SPAWN_RATE) ||
	    !entry_key(&e, "spawn_pause", "%s", SPAWN_PAUSE))
		goto too_long;
	entry_send(p, line, &e);
	return;

too_long:
	parse_error(p, line, "the entry does not fit handoffd.conf: a key = value line would exceed %d bytes "
	            "(too long a command, path or host list)", INETD_CONF_LINE_MAX);
	return;
too_many:
	parse_error(p, line, "too many services (at most %d)", CFG_MAX_SERVICES);
}

/* The tcpmux builtin the tcpmux/NAME entries need, when the file has none
 * (both inetds add it the same way), on the families those entries asked
 * for. */
static void mux_add(struct parser *p)
{
	struct entry e;
	char why[256];
	memset(&e, 0, sizeof(e));
	const struct proto_info *pi = proto_find(p->mux_fam == FAM_V4 ? "tcp4" : p->mux_fam == FAM_V6 ? "tcp6" : "tcp");
	entry_note(&e, "added: the tcpmux/ entries need the tcpmux service on port 1, and the file has no");
	entry_note(&e, "'tcpmux stream tcp nowait root internal' entry (inetd adds it the same way)");
	if (entry_listen(&e, pi, NULL, 0, 1, why, sizeof(why)) < 0 || !entry_key(&e, "builtin", "tcpmux")) {
		parse_error(p, p->mux_line, "cannot add the tcpmux service: %s", why);
		return;
	}
	if (name_make(p, &e, "tcpmux", pi->name) < 0) {
		parse_error(p, p->mux_line, "too many services (at most %d)", CFG_MAX_SERVICES);
		return;
	}
	entry_send(p, p->mux_line, &e);
}

/* Split an entry into fields on blanks and parse it. */
static void entry_text(struct parser *p, int line, char *text)
{
	char *f[MAX_FIELDS + 1];
	int nf = 0;
	char *save = NULL;
	for (char *t = strtok_r(text, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (nf > MAX_FIELDS) {
			parse_error(p, line, "too many server arguments (at most %d words)", CFG_MAX_ARGS);
			return;
		}
		f[nf++] = t;
	}
	if (nf > 0)
		entry_parse(p, line, f, nf);
}

/* Read lines: comments and blank lines are skipped; a line starting with a
 * blank continues the entry above it. Returns 0 or -errno (read error). */
static int parse_file(struct parser *p, FILE *fp)
{
	char buf[INETD_LINE_MAX + 2];
	char entry[INETD_LINE_MAX + 1];
	size_t elen = 0;
	int eline = 0; /* line of the pending entry, 0 = none */
	int lineno = 0;

	for (;;) {
		bool eof = !fgets(buf, sizeof(buf), fp);
		if (eof && ferror(fp))
			return -EIO;
		size_t n = eof ? 0 : strlen(buf);
		if (!eof) {
			lineno++;
			if (n && buf[n - 1] == '\n') {
				buf[--n] = '\0';
			} else if (!feof(fp)) {
				/* Longer than the buffer: report and skip the rest. */
				int ch;
				while ((ch = fgetc(fp)) != EOF && ch != '\n')
					;
				if (eline && (buf[0] == ' ' || buf[0] == '\t')) {
					/* It continues the pending entry, which is now broken. */
					parse_error(p, lineno, "line too long (at most %d bytes), continuing the entry at line %d",
					            INETD_LINE_MAX, eline);
				} else {
					if (eline)
						entry_text(p, eline, entry);
					parse_error(p, lineno, "line too long (at most %d bytes)", INETD_LINE_MAX);
				}
				eline = 0;
				elen = 0;
				continue;
			}
			if (n && buf[n - 1] == '\r')
				buf[--n] = '\0';
		}
		const char *s = buf;
		while (*s == ' ' || *s == '\t')
			s++;
		bool blank = eof || !*s;
		bool comment = !blank && *s == '#';
		bool cont = !blank && !comment && s != buf && eline;
		if (cont) {
			if (elen + 1 + strlen(s) > INETD_LINE_MAX) {
				parse_error(p, eline, "entry too long with its continuation lines (at most %d bytes)",
				            INETD_LINE_MAX);
				entry[0] = '\0', elen = 0, eline = 0;
				continue;
			}
			entry[elen++] = ' ';
			memcpy(entry + elen, s, strlen(s) + 1);
			elen += strlen(s);
			continue;
		}
		if (eline) {
			entry_text(p, eline, entry);
			eline = 0;
			elen = 0;
		}
		if (eof)
			break;
		if (blank || comment)
			continue;
		eline = lineno;
		elen = strlen(s);
		memcpy(entry, s, elen + 1);
	}
	if (p->mux_line && !p->have_mux_builtin)
		mux_add(p);
	return 0;
}

static int parse_fp(FILE *fp, const char *path, const struct inetd_sink *sink, void *ctx)
{
	struct parser p = {.sink = sink, .ctx = ctx, .path = path};
	int rc = parse_file(&p, fp);
	free(p.names);
	if (rc < 0)
		return rc;
	return p.nerr ? -EINVAL : 0;
}

int inetd_parse(const char *path, const struct inetd_sink *sink, void *ctx)
{
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -errno;
	int rc = parse_fp(fp, path, sink, ctx);
	fclose(fp);
	return rc;
}

/* ---- inetd_load: events to the configuration builder ---- */

static void load_service(void *ctx, const char *file, int line, const char *name)
{
	cfgb_service(ctx, file, line, name);
}

static void load_key(void *ctx, const char *file, int line, const char *key, const char *value)
{
	cfgb_key(ctx, file, line, key, value);
}

static void load_error(void *ctx, const char *file, int line, const char *msg)
{
	cfgb_error(ctx, file, line, "%s", msg);
}

static const struct inetd_sink load_sink = {
	.service = load_service, .key = load_key, .comment = NULL, .error = load_error,
};

int inetd_load(struct cfg_builder *b, const char *path)
{
	return inetd_parse(path, &load_sink, b);
}

/* ---- inetd_convert: events printed as handoffd.conf ---- */

struct conv {
	FILE *out, *err;
};

/* A comment line, cut to what handoffd.conf reads. */
static void conv_comment_line(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conv_comment_line(FILE *out, const char *fmt, ...)
{
	char buf[INETD_CONF_LINE_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(out, "%s\n", buf);
}

static void conv_service(void *ctx, const char *file, int line, const char *name)
{
	struct conv *c = ctx;
	fprintf(c->out, "\n[service %s]\n", name);
	conv_comment_line(c->out, "; from %s:%d", file, line);
}

static void conv_key(void *ctx, const char *file, int line, const char *key, const char *value)
{
	struct conv *c = ctx;
	(void)file;
	(void)line;
	fprintf(c->out, "%s = %s\n", key, value);
}

static void conv_comment(void *ctx, const char *file, int line, const char *text)
{
	struct conv *c = ctx;
	(void)file;
	(void)line;
	conv_comment_line(c->out, "; %s", text);
}

static void conv_error(void *ctx, const char *file, int line, const char *msg)
{
	struct conv *c = ctx;
	fprintf(c->err, "%s:%d: %s\n", file, line, msg);
	fprintf(c->out, "\n");
	conv_comment_line(c->out, "; NOT CONVERTED %s:%d: %s", file, line, msg);
}

static const struct inetd_sink conv_sink = {
	.service = conv_service, .key = conv_key, .comment = conv_comment, .error = conv_error,
};

int inetd_convert(const char *path, FILE *out, FILE *err)
{
	FILE *fp = fopen(path, "re");
	if (!fp) {
		int e = errno;
		fprintf(err, "%s: cannot read: %s\n", path, strerror(e));
		return -e;
	}
	struct conv c = {.out = out, .err = err};
	conv_comment_line(out, "; handoffd.conf for the services of %s", path);
	conv_comment_line(out, "; (written by handoffd --convert-inetd; each [service] names its inetd.conf line)");
	int rc = parse_fp(fp, path, &conv_sink, &c);
	fclose(fp);
	if (rc == -EIO)
		fprintf(err, "%s: read error\n", path);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(err, "%s: cannot write the conversion: %s\n", path, strerror(errno));
		return -EIO;
	}
	return rc;
}
