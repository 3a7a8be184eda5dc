/* config: inih handler -> fresh struct config; validate; no side effects.
 *
 * inih is driven through ini_parse_stream() with our own reader, which
 * counts lines (so every message carries FILE:LINE), rejects lines longer
 * than Debian's 200-byte inih limit instead of letting them be truncated,
 * and notes section headers (inih does not report sections without keys). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "handoff.h" /* HANDOFF_DEFAULT_SOCKET: one default for both ends */
#include "log.h"

#define INIH_LINE_MAX 200 /* Debian's libinih: buffer including "\r\n\0" */

struct parse {
	struct config *c;
	const char *name;  /* file name for messages */
	int line;          /* line the reader returned last */
	char *err;
	size_t errlen, errpos;
	int nerr;
	/* reader source: a FILE or a string */
	FILE *fp;
	const char *str;
	struct cfg_service *cur; /* service of the current section, or NULL */
	bool in_main;            /* in [handoffd] */
	bool bad_section;        /* current section is unknown: keys already reported */
};

static void perr(struct parse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void perr(struct parse *p, int line, const char *fmt, ...)
{
	p->nerr++;
	if (!p->err || p->errpos + 1 >= p->errlen)
		return;
	int n = snprintf(p->err + p->errpos, p->errlen - p->errpos, "%s%s:%d: ", p->errpos ? "\n" : "",
	                 p->name, line);
	if (n < 0 || (size_t)n >= p->errlen - p->errpos) {
		p->errpos = p->errlen - 1;
		return;
	}
	p->errpos += (size_t)n;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(p->err + p->errpos, p->errlen - p->errpos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= p->errlen - p->errpos)
		p->errpos = p->errlen - 1;
	else
		p->errpos += (size_t)n;
}

/* ---- value parsers: return 0 or -EINVAL ---- */

static int parse_uint(const char *v, unsigned long min, unsigned long max, int base, unsigned long *ret)
{
	char *end;
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, base);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*ret = x;
	return 0;
}

/* "10", "10s", "500ms", "2m" -> milliseconds */
static int parse_duration_ms(const char *v, unsigned *ret)
{
	char *end;
	if (!*v || *v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned long mul;
	if (!*end || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else
		return -EINVAL;
	if (x > 86400000UL / mul)
		return -EINVAL;
	*ret = (unsigned)(x * mul);
	return 0;
}

static int resolve_user(const char *v, uid_t *ret_uid, gid_t *ret_gid)
{
	unsigned long n;
	if (parse_uint(v, 0, 0xfffffffeUL, 10, &n) == 0) {
		*ret_uid = (uid_t)n;
		if (ret_gid) {
			struct passwd *pw = getpwuid((uid_t)n);
			*ret_gid = pw ? pw->pw_gid : (gid_t)-1;
		}
		return 0;
	}
	struct passwd *pw = getpwnam(v);
	if (!pw)
		return -ENOENT;
	*ret_uid = pw->pw_uid;
	if (ret_gid)
		*ret_gid = pw->pw_gid;
	return 0;
}

static int resolve_group(const char *v, gid_t *ret)
{
	unsigned long n;
	if (parse_uint(v, 0, 0xfffffffeUL, 10, &n) == 0) {
		*ret = (gid_t)n;
		return 0;
	}
	struct group *gr = getgrnam(v);
	if (!gr)
		return -ENOENT;
	*ret = gr->gr_gid;
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PROTO_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* ---- sections ---- */

static struct cfg_service *service_new(struct parse *p, const char *name, int line)
{
	struct config *c = p->c;
	for (size_t i = 0; i < c->nservices; i++) {
		if (strcmp(c->services[i].name, name) == 0) {
			perr(p, line, "[service %s] defined twice (first at line %d)", name, c->services[i].line);
			return NULL;
		}
	}
	if (c->nservices >= CFG_MAX_SERVICES) {
		perr(p, line, "too many services (at most %d)", CFG_MAX_SERVICES);
		return NULL;
	}
	struct cfg_service *v = realloc(c->services, sizeof(*v) * (c->nservices + 1));
	if (!v) {
		perr(p, line, "out of memory");
		return NULL;
	}
	c->services = v;
	struct cfg_service *s = &v[c->nservices++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->line = line;
	s->backlog = 4096;
	s->balance = BALANCE_ROUND_ROBIN;
	s->max_backends = 256;
	s->max_capacity = 1024;
	s->socket_owner = (uid_t)-1;
	s->socket_group = (gid_t)-1;
	return s;
}

/* Called by the reader for each "[...]" line: sets the current section. */
static void section_begin(struct parse *p, const char *line)
{
	const char *rb = strchr(line, ']');
	char sec[256];
	p->cur = NULL;
	p->in_main = false;
	p->bad_section = true;
	if (!rb) {
		perr(p, p->line, "section header without ']'");
		return;
	}
	size_t n = (size_t)(rb - line - 1);
	if (n >= sizeof(sec))
		n = sizeof(sec) - 1;
	memcpy(sec, line + 1, n);
	sec[n] = '\0';
	if (strcmp(sec, "handoffd") == 0) {
		p->in_main = true;
		p->bad_section = false;
		return;
	}
	if (strncmp(sec, "service ", 8) == 0) {
		const char *name = sec + 8;
		while (*name == ' ')
			name++;
		if (!valid_name(name)) {
			perr(p, p->line, "bad service name '%s' (1-%d of A-Z a-z 0-9 - _ .)", name, PROTO_MAX_NAME);
			return;
		}
		p->cur = service_new(p, name, p->line);
		p->bad_section = p->cur == NULL;
		return;
	}
	perr(p, p->line, "unknown section [%s] (expected [handoffd] or [service NAME])", sec);
}

/* Our ini_reader: one line per call, counting lines. */
static char *reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	char line[4096];
	size_t n = 0;
	bool eof = false;

	if (p->fp) {
		if (!fgets(line, sizeof(line), p->fp))
			return NULL;
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			/* Swallow the rest of an overlong line. */
			int ch;
			while ((ch = fgetc(p->fp)) != EOF && ch != '\n')
				n++;
		}
	} else {
		if (!*p->str)
			return NULL;
		const char *nl = strchr(p->str, '\n');
		size_t len = nl ? (size_t)(nl - p->str + 1) : strlen(p->str);
		n = len;
		size_t copy = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
		memcpy(line, p->str, copy);
		line[copy] = '\0';
		p->str += len;
		eof = !nl;
	}
	(void)eof;
	p->line++;

	/* Length without the line ending; only what line[] holds is read. */
	size_t have = strlen(line);
	size_t content = n;
	if (n == have)
		while (content && (line[content - 1] == '\n' || line[content - 1] == '\r'))
			content--;
	if (content + 3 > (size_t)size) {
		perr(p, p->line, "line too long (%zu bytes; at most %d)", content, size - 3);
		/* Hand inih an empty line so it neither truncates nor misparses. */
		buf[0] = '\n';
		buf[1] = '\0';
		return buf;
	}
	memcpy(buf, line, content);
	buf[content] = '\n';
	buf[content + 1] = '\0';

	const char *s = line;
	if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '[') {
		section_begin(p, s);
	} else if (*s && *s != ';' && *s != '#' && *s != '\n' && *s != '\r' && !strpbrk(s, "=:")) {
		perr(p, p->line, "syntax error (expected 'key = value' or '[section]')");
		buf[0] = '\n';
		buf[1] = '\0';
	}
	return buf;
}

/* ---- keys ---- */

enum main_key_bit {
	MK_CONTROL = 1 << 0, MK_MODE = 1 << 1, MK_CGROUP = 1 << 2, MK_ADMIN = 1 << 3, MK_USER = 1 << 4,
	MK_GROUP = 1 << 5, MK_LOG = 1 << 6, MK_MAXUID = 1 << 7, MK_MAXCTL = 1 << 8, MK_HS = 1 << 9,
	MK_SHUT = 1 << 10,
};

enum svc_key_bit {
	SK_BACKLOG = 1 << 0, SK_BALANCE = 1 << 1, SK_MAXB = 1 << 2, SK_MAXCAP = 1 << 3,
	SK_SMODE = 1 << 4, SK_SOWNER = 1 << 5, SK_SGROUP = 1 << 6,
};

static bool once(struct parse *p, unsigned *seen, unsigned bit, const char *key)
{
	if (*seen & bit) {
		perr(p, p->line, "%s: key given twice", key);
		return false;
	}
	*seen |= bit;
	return true;
}

static void main_key(struct parse *p, const char *k, const char *v)
{
	struct config *c = p->c;
	unsigned long n;

	if (strcmp(k, "control_socket") == 0) {
		if (!once(p, &c->seen, MK_CONTROL, k))
			return;
		struct addr_spec sp;
		char tmp[sizeof(sp.path) + 8];
		snprintf(tmp, sizeof(tmp), "unix:%s", v);
		const char *why;
		if (v[0] != '/' && v[0] != '@') {
			perr(p, p->line, "control_socket: '%s' must be an absolute path or @abstract", v);
			return;
		}
		if (addr_parse(tmp, &sp, &why) < 0) {
			perr(p, p->line, "control_socket: '%s': %s", v, why);
			return;
		}
		snprintf(c->control_socket, sizeof(c->control_socket), "%s", v);
	} else if (strcmp(k, "control_mode") == 0) {
		if (!once(p, &c->seen, MK_MODE, k))
			return;
		if (parse_uint(v, 0, 07777, 8, &n) < 0) {
			perr(p, p->line, "control_mode: '%s' is not an octal mode (e.g. 0660)", v);
			return;
		}
		c->control_mode = (mode_t)n;
	} else if (strcmp(k, "control_group") == 0) {
		if (!once(p, &c->seen, MK_CGROUP, k))
			return;
		if (resolve_group(v, &c->control_group) < 0)
			perr(p, p->line, "control_group: no such group '%s'", v);
	} else if (strcmp(k, "admin_group") == 0) {
		if (!once(p, &c->seen, MK_ADMIN, k))
			return;
		if (resolve_group(v, &c->admin_group) < 0)
			perr(p, p->line, "admin_group: no such group '%s'", v);
	} else if (strcmp(k, "user") == 0) {
		if (!once(p, &c->seen, MK_USER, k))
			return;
		gid_t g;
		if (resolve_user(v, &c->user, &g) < 0) {
			perr(p, p->line, "user: no such user '%s'", v);
			return;
		}
		struct passwd *pw = getpwuid(c->user);
		snprintf(c->user_name, sizeof(c->user_name), "%s", pw ? pw->pw_name : "");
		c->user_line = p->line;
		if (c->group == (gid_t)-1)
			c->group = g;
	} else if (strcmp(k, "group") == 0) {
		if (!once(p, &c->seen, MK_GROUP, k))
			return;
		if (resolve_group(v, &c->group) < 0)
			perr(p, p->line, "group: no such group '%s'", v);
	} else if (strcmp(k, "log_level") == 0) {
		if (!once(p, &c->seen, MK_LOG, k))
			return;
		int l = log_level_parse(v);
		if (l < 0)
			perr(p, p->line, "log_level: '%s' is not one of error, warning, notice, info, debug", v);
		else
			c->log_level = l;
	} else if (strcmp(k, "max_control_per_uid") == 0) {
		if (!once(p, &c->seen, MK_MAXUID, k))
			return;
		if (parse_uint(v, 1, 65536, 10, &n) < 0)
			perr(p, p->line, "max_control_per_uid: '%s' is not a number 1..65536", v);
		else
			c->max_control_per_uid = (unsigned)n;
	} else if (strcmp(k, "max_control") == 0) {
		if (!once(p, &c->seen, MK_MAXCTL, k))
			return;
		if (parse_uint(v, 1, 1048576, 10, &n) < 0)
			perr(p, p->line, "max_control: '%s' is not a number 1..1048576", v);
		else
			c->max_control = (unsigned)n;
	} else if (strcmp(k, "handshake_timeout") == 0) {
		if (!once(p, &c->seen, MK_HS, k))
			return;
		if (parse_duration_ms(v, &c->handshake_timeout_ms) < 0 || c->handshake_timeout_ms == 0)
			perr(p, p->line, "handshake_timeout: '%s' is not a duration (e.g. 10s, 500ms)", v);
	} else if (strcmp(k, "shutdown_timeout") == 0) {
		if (!once(p, &c->seen, MK_SHUT, k))
			return;
		if (parse_duration_ms(v, &c->shutdown_timeout_ms) < 0)
			perr(p, p->line, "shutdown_timeout: '%s' is not a duration (e.g. 10s, 500ms)", v);
	} else {
		perr(p, p->line, "unknown key '%s' in [handoffd]", k);
	}
}

/* Split a list on commas and blanks, calling fn for each item. */
static void each_item(struct parse *p, const char *key, const char *v,
                      void (*fn)(struct parse *, const char *, const char *))
{
	char buf[INIH_LINE_MAX];
	snprintf(buf, sizeof(buf), "%s", v);
	int count = 0;
	for (char *save = NULL, *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		fn(p, key, t);
		count++;
	}
	if (count == 0)
		perr(p, p->line, "%s: empty list", key);
}

static void add_user(struct parse *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	uid_t u;
	if (resolve_user(item, &u, NULL) < 0) {
		perr(p, p->line, "%s: no such user '%s'", key, item);
		return;
	}
	if (s->nallow_uids >= CFG_MAX_IDS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_IDS);
		return;
	}
	uid_t *v = realloc(s->allow_uids, sizeof(*v) * (size_t)(s->nallow_uids + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	s->allow_uids = v;
	v[s->nallow_uids++] = u;
}

static void add_group(struct parse *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	gid_t g;
	if (resolve_group(item, &g) < 0) {
		perr(p, p->line, "%s: no such group '%s'", key, item);
		return;
	}
	if (s->nallow_gids >= CFG_MAX_IDS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_IDS);
		return;
	}
	gid_t *v = realloc(s->allow_gids, sizeof(*v) * (size_t)(s->nallow_gids + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	s->allow_gids = v;
	v[s->nallow_gids++] = g;
}

static void add_listen(struct parse *p, const char *key, const char *v)
{
	struct cfg_service *s = p->cur;
	struct cfg_listen l;
	const char *why = NULL;

	memset(&l, 0, sizeof(l));
	if (addr_parse(v, &l.spec, &why) < 0) {
		perr(p, p->line, "%s: '%s': %s", key, v, why);
		return;
	}
	if (s->nlisten >= CFG_MAX_LISTEN) {
		perr(p, p->line, "%s: too many listen addresses (at most %d)", key, CFG_MAX_LISTEN);
		return;
	}
	addr_spec_format(&l.spec, l.text, sizeof(l.text));
	int n = addr_resolve(&l.spec, l.bound, CFG_MAX_BOUND, &why);
	if (n < 0) {
		perr(p, p->line, "%s: cannot resolve '%s': %s", key, v, why);
		return;
	}
	l.nbound = n;
	l.line = p->line;
	struct cfg_listen *arr = realloc(s->listen, sizeof(*arr) * (size_t)(s->nlisten + 1));
	if (!arr) {
		perr(p, p->line, "out of memory");
		return;
	}
	s->listen = arr;
	arr[s->nlisten++] = l;
}

static void service_key(struct parse *p, const char *k, const char *v)
{
	struct cfg_service *s = p->cur;
	unsigned long n;

	if (strcmp(k, "listen") == 0) {
		each_item(p, k, v, add_listen);
	} else if (strcmp(k, "allow_users") == 0) {
		s->has_allow = true;
		each_item(p, k, v, add_user);
	} else if (strcmp(k, "allow_groups") == 0) {
		s->has_allow = true;
		each_item(p, k, v, add_group);
	} else if (strcmp(k, "backlog") == 0) {
		if (!once(p, &s->seen, SK_BACKLOG, k))
			return;
		if (parse_uint(v, 1, 65535, 10, &n) < 0)
			perr(p, p->line, "backlog: '%s' is not a number 1..65535", v);
		else
			s->backlog = (int)n;
	} else if (strcmp(k, "balance") == 0) {
		if (!once(p, &s->seen, SK_BALANCE, k))
			return;
		if (strcmp(v, "round-robin") == 0)
			s->balance = BALANCE_ROUND_ROBIN;
		else if (strcmp(v, "least-loaded") == 0)
			s->balance = BALANCE_LEAST_LOADED;
		else if (strcmp(v, "source-hash") == 0)
			s->balance = BALANCE_SOURCE_HASH;
		else
			perr(p, p->line, "balance: '%s' is not one of round-robin, least-loaded, source-hash", v);
	} else if (strcmp(k, "max_backends") == 0) {
		if (!once(p, &s->seen, SK_MAXB, k))
			return;
		if (parse_uint(v, 1, 65536, 10, &n) < 0)
			perr(p, p->line, "max_backends: '%s' is not a number 1..65536", v);
		else
			s->max_backends = (unsigned)n;
	} else if (strcmp(k, "max_capacity") == 0) {
		if (!once(p, &s->seen, SK_MAXCAP, k))
			return;
		if (parse_uint(v, 1, 65535, 10, &n) < 0)
			perr(p, p->line, "max_capacity: '%s' is not a number 1..65535", v);
		else
			s->max_capacity = (unsigned)n;
	} else if (strcmp(k, "socket_mode") == 0) {
		if (!once(p, &s->seen, SK_SMODE, k))
			return;
		if (parse_uint(v, 1, 07777, 8, &n) < 0)
			perr(p, p->line, "socket_mode: '%s' is not an octal mode (e.g. 0660)", v);
		else
			s->socket_mode = (mode_t)n;
	} else if (strcmp(k, "socket_owner") == 0) {
		if (!once(p, &s->seen, SK_SOWNER, k))
			return;
		if (resolve_user(v, &s->socket_owner, NULL) < 0)
			perr(p, p->line, "socket_owner: no such user '%s'", v);
	} else if (strcmp(k, "socket_group") == 0) {
		if (!once(p, &s->seen, SK_SGROUP, k))
			return;
		if (resolve_group(v, &s->socket_group) < 0)
			perr(p, p->line, "socket_group: no such group '%s'", v);
	} else {
		perr(p, p->line, "unknown key '%s' in [service %s]", k, s->name);
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	(void)section; /* the reader tracks sections, with their line numbers */
	if (!value)
		value = "";
	if (p->bad_section)
		return 1; /* already reported at the section header */
	if (!*value) {
		perr(p, p->line, "%s: empty value", name);
		return 1;
	}
	if (p->in_main)
		main_key(p, name, value);
	else if (p->cur)
		service_key(p, name, value);
	else
		perr(p, p->line, "key '%s' outside any section (start with [handoffd] or [service NAME])", name);
	return 1;
}

/* Cross-key rules, after the whole file is read. */
static void validate(struct parse *p)
{
	struct config *c = p->c;
	if (c->nservices == 0)
		perr(p, p->line > 0 ? p->line : 1, "no [service NAME] section: nothing to serve");
	if (c->user != (uid_t)-1 && c->group == (gid_t)-1)
		perr(p, c->user_line, "user: uid %u has no passwd entry: set group too", (unsigned)c->user);
	for (size_t i = 0; i < c->nservices; i++) {
		struct cfg_service *s = &c->services[i];
		if (s->nlisten == 0)
			perr(p, s->line, "[service %s]: no listen address (add listen = tcp://...)", s->name);
		bool has_unix = false;
		for (int j = 0; j < s->nlisten; j++)
			if (s->listen[j].spec.kind == ADDR_UNIX && !s->listen[j].spec.abstract)
				has_unix = true;
		if (!has_unix && (s->socket_mode || s->socket_owner != (uid_t)-1 || s->socket_group != (gid_t)-1))
			perr(p, s->line, "[service %s]: socket_mode/socket_owner/socket_group need a unix:/path listener",
			     s->name);
		/* The same address twice, in this or another service. */
		for (int j = 0; j < s->nlisten; j++) {
			for (size_t i2 = 0; i2 <= i; i2++) {
				struct cfg_service *s2 = &c->services[i2];
				int jmax = i2 == i ? j : s2->nlisten;
				for (int j2 = 0; j2 < jmax; j2++)
					if (strcmp(s->listen[j].text, s2->listen[j2].text) == 0)
						perr(p, s->listen[j].line, "listen: %s already used at line %d",
						     s->listen[j].text, s2->listen[j2].line);
			}
		}
	}
	/* The control socket must not collide with a listener. */
	for (size_t i = 0; i < c->nservices; i++)
		for (int j = 0; j < c->services[i].nlisten; j++) {
			const struct addr_spec *sp = &c->services[i].listen[j].spec;
			if (sp->kind != ADDR_UNIX)
				continue;
			char t[sizeof(sp->path) + 1];
			snprintf(t, sizeof(t), "%s%s", sp->abstract ? "@" : "", sp->path);
			if (strcmp(t, c->control_socket) == 0)
				perr(p, c->services[i].listen[j].line, "listen: %s is the control socket",
				     c->services[i].listen[j].text);
		}
}

static struct config *config_new(void)
{
	struct config *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->control_socket, sizeof(c->control_socket), "%s", HANDOFF_DEFAULT_SOCKET);
	c->control_mode = 0666;
	c->control_group = (gid_t)-1;
	c->admin_group = (gid_t)-1;
	c->user = (uid_t)-1;
	c->group = (gid_t)-1;
	c->log_level = LOG_LVL_NOTICE;
	c->max_control_per_uid = 64;
	c->max_control = 4096;
	c->handshake_timeout_ms = 10000;
	c->shutdown_timeout_ms = 10000;
	return c;
}

static int load(struct parse *p, struct config **ret)
{
	p->c = config_new();
	if (!p->c)
		return -ENOMEM;
	snprintf(p->c->file, sizeof(p->c->file), "%s", p->name);
	ini_allow_multiline = false; /* continuation lines would hide line numbers */
	int rc = ini_parse_stream(reader, p, handler, p);
	if (rc > 0 && p->nerr == 0)
		perr(p, rc, "syntax error (expected 'key = value' or '[section]')");
	else if (rc == -2)
		perr(p, p->line, "out of memory");
	if (p->nerr == 0)
		validate(p);
	if (p->nerr) {
		config_free(p->c);
		return -EINVAL;
	}
	*ret = p->c;
	return 0;
}

int config_load_file(const char *path, struct config **ret, char *err, size_t errlen)
{
	struct parse p = {.name = path, .err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	p.fp = fopen(path, "re");
	if (!p.fp) {
		int e = errno;
		if (err)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	int rc = load(&p, ret);
	fclose(p.fp);
	return rc;
}

int config_load_string(const char *text, const char *name, struct config **ret, char *err, size_t errlen)
{
	struct parse p = {.name = name, .err = err, .errlen = errlen, .str = text};
	if (err && errlen)
		err[0] = '\0';
	return load(&p, ret);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nservices; i++) {
		free(c->services[i].listen);
		free(c->services[i].allow_uids);
		free(c->services[i].allow_gids);
	}
	free(c->services);
	free(c);
}

const struct cfg_service *config_find_service(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nservices; i++)
		if (strcmp(c->services[i].name, name) == 0)
			return &c->services[i];
	return NULL;
}

const char *config_balance_name(enum balance b)
{
	switch (b) {
	case BALANCE_ROUND_ROBIN:
		return "round-robin";
	case BALANCE_LEAST_LOADED:
		return "least-loaded";
	case BALANCE_SOURCE_HASH:
		return "source-hash";
	}
	return "?";
}
