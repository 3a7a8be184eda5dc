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

#include "acl.h"
#include "config.h"
#include "handoff.h" /* HANDOFF_DEFAULT_SOCKET: one default for both ends */
#include "inetd.h"
#include "log.h"
#include "peerid.h"

#define INIH_LINE_MAX 200 /* Debian's libinih: buffer including "\r\n\0" */

struct cfg_builder {
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
	int inetd_line;          /* line of inetd_conf = */
	bool in_inetd;           /* services now come from inetd_conf */
};

static void perr(struct cfg_builder *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void perr(struct cfg_builder *p, int line, const char *fmt, ...)
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
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
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

static struct cfg_service *service_new(struct cfg_builder *p, const char *name, int line)
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
	s->opt.ipv6only = -1;
	s->exec_uid = (uid_t)-1;
	s->exec_gid = (gid_t)-1;
	s->max_children = 256;
	/* inetd's default: a program that fails at once cannot fork-loop. */
	s->spawn_rate.count = 256;
	s->spawn_rate.per_ms = 60000;
	s->spawn_pause_ms = 60000;
	s->on_no_backend = NOB_WAIT;
	return s;
}

/* Called by the reader for each "[...]" line: sets the current section. */
static void section_begin(struct cfg_builder *p, const char *line)
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
	struct cfg_builder *p = stream;
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
	MK_SHUT = 1 << 10, MK_INETD = 1 << 11, MK_LOGT = 1 << 12,
};

#define SKB(n) (UINT64_C(1) << (n))
enum svc_key_bit {
	SK_BACKLOG = 0, SK_BALANCE, SK_MAXB, SK_MAXCAP, SK_SMODE, SK_SOWNER, SK_SGROUP, SK_MODE, SK_EXEC,
	SK_ARGV0, SK_EUSER, SK_EGROUP, SK_NOB, SK_MAXCH, SK_SRATE, SK_SPAUSE, SK_BUILTIN, SK_TCPMUX,
	SK_MAXCONN, SK_MAXSRC, SK_RATE, SK_RATESRC, SK_LPAUSE, SK_REUSEPORT, SK_FREEBIND, SK_KEEPALIVE,
	SK_NODELAY, SK_V6ONLY, SK_DEFER, SK_RCVBUF, SK_SNDBUF, SK_BINDDEV, SK_EACT,
};

static bool once64(struct cfg_builder *p, uint64_t *seen, int bit, const char *key)
{
	if (*seen & SKB(bit)) {
		perr(p, p->line, "%s: key given twice", key);
		return false;
	}
	*seen |= SKB(bit);
	return true;
}

static bool once(struct cfg_builder *p, unsigned *seen, unsigned bit, const char *key)
{
	if (*seen & bit) {
		perr(p, p->line, "%s: key given twice", key);
		return false;
	}
	*seen |= bit;
	return true;
}

static void main_key(struct cfg_builder *p, const char *k, const char *v)
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
	} else if (strcmp(k, "log") == 0) {
		if (!once(p, &c->seen, MK_LOGT, k))
			return;
		int t = log_target_parse(v);
		if (t < 0)
			perr(p, p->line, "log: '%s' is not one of auto, journal, syslog, stderr", v);
		else
			c->log_target = t;
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
	} else if (strcmp(k, "inetd_conf") == 0) {
		if (!once(p, &c->seen, MK_INETD, k))
			return;
		if (v[0] != '/') {
			perr(p, p->line, "inetd_conf: '%s' must be an absolute path", v);
			return;
		}
		if (strlen(v) >= sizeof(c->inetd_conf)) {
			perr(p, p->line, "inetd_conf: path too long");
			return;
		}
		snprintf(c->inetd_conf, sizeof(c->inetd_conf), "%s", v);
		p->inetd_line = p->line;
	} else {
		perr(p, p->line, "unknown key '%s' in [handoffd]", k);
	}
}

/* Split a list on commas and blanks, calling fn for each item. */
static void each_item(struct cfg_builder *p, const char *key, const char *v,
                      void (*fn)(struct cfg_builder *, const char *, const char *))
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

static void add_user(struct cfg_builder *p, const char *key, const char *item)
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

static void add_group(struct cfg_builder *p, const char *key, const char *item)
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

/* allow_units, allow_cgroups, allow_labels: lists of words. */
static void add_word(struct cfg_builder *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	char ***arr;
	int *n;
	if (strcmp(key, "allow_units") == 0) {
		arr = &s->allow_units;
		n = &s->nallow_units;
		if (!peerid_unit_name_valid(item)) {
			perr(p, p->line, "%s: '%s' is not a unit name (e.g. nginx.service, getty@tty1.service)", key,
			     item);
			return;
		}
	} else if (strcmp(key, "allow_cgroups") == 0) {
		arr = &s->allow_cgroups;
		n = &s->nallow_cgroups;
		if (item[0] != '/') {
			perr(p, p->line, "%s: '%s' must be an absolute cgroup path (e.g. /system.slice/web.service)", key,
			     item);
			return;
		}
	} else {
		arr = &s->allow_labels;
		n = &s->nallow_labels;
	}
	if (*n >= CFG_MAX_IDS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_IDS);
		return;
	}
	char **v = realloc(*arr, sizeof(*v) * (size_t)(*n + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	*arr = v;
	v[*n] = strdup(item);
	if (!v[*n]) {
		perr(p, p->line, "out of memory");
		return;
	}
	(*n)++;
}

static void free_words(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void add_listen(struct cfg_builder *p, const char *key, const char *v)
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


static int parse_bool(const char *v, bool *ret)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "on") == 0) {
		*ret = true;
		return 0;
	}
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
	    strcasecmp(v, "off") == 0) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

/* "65536", "64K", "1M" -> bytes, 1..1 GiB */
static int parse_size(const char *v, int *ret)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned long mul = 1;
	if (strcasecmp(end, "k") == 0)
		mul = 1024;
	else if (strcasecmp(end, "m") == 0)
		mul = 1024 * 1024;
	else if (*end)
		return -EINVAL;
	if (x == 0 || x > (1UL << 30) / mul)
		return -EINVAL;
	*ret = (int)(x * mul);
	return 0;
}

/* "200/s", "10/min", "5/m", "100/1s"? no: N/s or N/min (also /sec, /minute). */
static int parse_rate(const char *v, struct cfg_rate *ret)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno || x == 0 || x > 1000000 || *end != '/')
		return -EINVAL;
	end++;
	if (strcmp(end, "s") == 0 || strcmp(end, "sec") == 0 || strcmp(end, "second") == 0)
		ret->per_ms = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0 || strcmp(end, "minute") == 0)
		ret->per_ms = 60000;
	else if (strcmp(end, "h") == 0 || strcmp(end, "hour") == 0)
		ret->per_ms = 3600000;
	else
		return -EINVAL;
	ret->count = (unsigned)x;
	return 0;
}

/* Split an exec line into words: blanks separate, "..." groups, \" and \\
 * escape inside quotes. Returns the word count or -EINVAL with *why. */
static int split_words(const char *v, char ***ret, const char **why)
{
	char **argv = calloc(CFG_MAX_ARGS + 1, sizeof(char *));
	char word[INIH_LINE_MAX];
	int n = 0;
	if (!argv) {
		*why = "out of memory";
		return -ENOMEM;
	}
	const char *q = v;
	for (;;) {
		while (*q == ' ' || *q == '\t')
			q++;
		if (!*q)
			break;
		size_t w = 0;
		bool quoted = false;
		while (*q && (quoted || (*q != ' ' && *q != '\t'))) {
			if (*q == '"') {
				quoted = !quoted;
				q++;
				continue;
			}
			if (quoted && *q == '\\' && (q[1] == '"' || q[1] == '\\'))
				q++;
			if (w + 1 < sizeof(word))
				word[w++] = *q;
			q++;
		}
		if (quoted) {
			*why = "unterminated quote";
			goto fail;
		}
		word[w] = '\0';
		if (n >= CFG_MAX_ARGS) {
			*why = "too many words (at most 64)";
			goto fail;
		}
		argv[n] = strdup(word);
		if (!argv[n]) {
			*why = "out of memory";
			goto fail;
		}
		n++;
	}
	if (n == 0) {
		*why = "empty command";
		goto fail;
	}
	*ret = argv;
	return n;
fail:
	for (int i = 0; i < n; i++)
		free(argv[i]);
	free(argv);
	return -EINVAL;
}

static void free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

static void add_cidr(struct cfg_builder *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	bool deny = strcmp(key, "deny_from") == 0;
	struct cfg_cidr **arr = deny ? &s->deny_from : &s->allow_from;
	int *n = deny ? &s->ndeny_from : &s->nallow_from;
	struct cfg_cidr c;
	const char *why = NULL;
	if (acl_cidr_parse(item, &c, &why) < 0) {
		perr(p, p->line, "%s: '%s': %s", key, item, why ? why : "not an address or network");
		return;
	}
	if (*n >= CFG_MAX_CIDRS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_CIDRS);
		return;
	}
	struct cfg_cidr *v = realloc(*arr, sizeof(*v) * (size_t)(*n + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	*arr = v;
	v[(*n)++] = c;
}

static void add_client_user(struct cfg_builder *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	uid_t u;
	if (resolve_user(item, &u, NULL) < 0) {
		perr(p, p->line, "%s: no such user '%s'", key, item);
		return;
	}
	if (s->nclient_uids >= CFG_MAX_IDS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_IDS);
		return;
	}
	uid_t *v = realloc(s->client_uids, sizeof(*v) * (size_t)(s->nclient_uids + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	s->client_uids = v;
	v[s->nclient_uids++] = u;
}

static void add_client_group(struct cfg_builder *p, const char *key, const char *item)
{
	struct cfg_service *s = p->cur;
	gid_t g;
	if (resolve_group(item, &g) < 0) {
		perr(p, p->line, "%s: no such group '%s'", key, item);
		return;
	}
	if (s->nclient_gids >= CFG_MAX_IDS) {
		perr(p, p->line, "%s: too many entries (at most %d)", key, CFG_MAX_IDS);
		return;
	}
	gid_t *v = realloc(s->client_gids, sizeof(*v) * (size_t)(s->nclient_gids + 1));
	if (!v) {
		perr(p, p->line, "out of memory");
		return;
	}
	s->client_gids = v;
	v[s->nclient_gids++] = g;
}

static const char *const builtin_names[] = {
	[BUILTIN_NONE] = "none",       [BUILTIN_ECHO] = "echo", [BUILTIN_DISCARD] = "discard",
	[BUILTIN_CHARGEN] = "chargen", [BUILTIN_DAYTIME] = "daytime", [BUILTIN_TIME] = "time",
	[BUILTIN_TCPMUX] = "tcpmux",
};

const char *config_builtin_name(enum builtin b)
{
	if ((unsigned)b < sizeof(builtin_names) / sizeof(builtin_names[0]))
		return builtin_names[b];
	return "?";
}

/* A yes/no socket option. */
static void bool_key(struct cfg_builder *p, struct cfg_service *s, int bit, const char *k, const char *v,
                     bool *dst)
{
	if (!once64(p, &s->seen, bit, k))
		return;
	if (parse_bool(v, dst) < 0)
		perr(p, p->line, "%s: '%s' is not yes or no", k, v);
}

/* The keys of issue 3 (spawning, builtins, access control, limits, socket
 * options). Returns true when k was one of them. */
static bool service_key2(struct cfg_builder *p, struct cfg_service *s, const char *k, const char *v)
{
	unsigned long n;
	const char *why = NULL;

	if (strcmp(k, "mode") == 0) {
		if (!once64(p, &s->seen, SK_MODE, k))
			return true;
		if (strcmp(v, "accept") == 0)
			s->mode = MODE_ACCEPT;
		else if (strcmp(v, "listen") == 0)
			s->mode = MODE_LISTEN;
		else
			perr(p, p->line, "mode: '%s' is not accept or listen", v);
	} else if (strcmp(k, "exec") == 0) {
		if (!once64(p, &s->seen, SK_EXEC, k))
			return true;
		char **argv = NULL;
		int argc = split_words(v, &argv, &why);
		if (argc < 0) {
			perr(p, p->line, "exec: '%s': %s", v, why);
			return true;
		}
		if (argv[0][0] != '/') {
			perr(p, p->line, "exec: '%s' must be an absolute path", argv[0]);
			free_argv(argv);
			return true;
		}
		s->exec_path = strdup(argv[0]);
		if (!s->exec_path) {
			perr(p, p->line, "out of memory");
			free_argv(argv);
			return true;
		}
		s->exec_argv = argv;
		s->exec_argc = argc;
		s->exec_line = p->line;
	} else if (strcmp(k, "exec_argv0") == 0) {
		if (!once64(p, &s->seen, SK_ARGV0, k))
			return true;
		if (strlen(v) >= sizeof(s->exec_argv0)) {
			perr(p, p->line, "exec_argv0: '%s' is too long (at most %zu bytes)", v, sizeof(s->exec_argv0) - 1);
			return true;
		}
		snprintf(s->exec_argv0, sizeof(s->exec_argv0), "%s", v);
	} else if (strcmp(k, "exec_user") == 0) {
		if (!once64(p, &s->seen, SK_EUSER, k))
			return true;
		gid_t g;
		if (resolve_user(v, &s->exec_uid, &g) < 0) {
			perr(p, p->line, "exec_user: no such user '%s'", v);
			return true;
		}
		struct passwd *pw = getpwuid(s->exec_uid);
		snprintf(s->exec_user_name, sizeof(s->exec_user_name), "%s", pw ? pw->pw_name : "");
		s->exec_user_gid = g;
	} else if (strcmp(k, "exec_group") == 0) {
		if (!once64(p, &s->seen, SK_EGROUP, k))
			return true;
		if (resolve_group(v, &s->exec_gid) < 0)
			perr(p, p->line, "exec_group: no such group '%s'", v);
	} else if (strcmp(k, "exec_activation") == 0) {
		if (!once64(p, &s->seen, SK_EACT, k))
			return true;
		if (strcmp(v, "systemd") == 0)
			s->exec_systemd = true;
		else if (strcmp(v, "inetd") != 0)
			perr(p, p->line, "exec_activation: '%s' is not inetd or systemd", v);
	} else if (strcmp(k, "on_no_backend") == 0) {
		if (!once64(p, &s->seen, SK_NOB, k))
			return true;
		if (strcmp(v, "wait") == 0)
			s->on_no_backend = NOB_WAIT;
		else if (strcmp(v, "spawn") == 0)
			s->on_no_backend = NOB_SPAWN;
		else if (strcmp(v, "reject") == 0)
			s->on_no_backend = NOB_REJECT;
		else
			perr(p, p->line, "on_no_backend: '%s' is not one of wait, spawn, reject", v);
	} else if (strcmp(k, "max_children") == 0) {
		if (!once64(p, &s->seen, SK_MAXCH, k))
			return true;
		if (parse_uint(v, 1, 65536, 10, &n) < 0)
			perr(p, p->line, "max_children: '%s' is not a number 1..65536", v);
		else
			s->max_children = (unsigned)n;
	} else if (strcmp(k, "spawn_rate") == 0) {
		if (!once64(p, &s->seen, SK_SRATE, k))
			return true;
		if (strcmp(v, "none") == 0)
			s->spawn_rate = (struct cfg_rate){0};
		else if (parse_rate(v, &s->spawn_rate) < 0)
			perr(p, p->line, "spawn_rate: '%s' is not a rate like 256/min or 10/s, or none", v);
	} else if (strcmp(k, "spawn_pause") == 0) {
		if (!once64(p, &s->seen, SK_SPAUSE, k))
			return true;
		if (parse_duration_ms(v, &s->spawn_pause_ms) < 0 || s->spawn_pause_ms == 0 ||
		    s->spawn_pause_ms > 3600000)
			perr(p, p->line, "spawn_pause: '%s' is not a duration from 1ms to 1h (e.g. 60s, 10m)", v);
	} else if (strcmp(k, "builtin") == 0) {
		if (!once64(p, &s->seen, SK_BUILTIN, k))
			return true;
		for (unsigned b = BUILTIN_ECHO; b <= BUILTIN_TCPMUX; b++)
			if (strcmp(v, builtin_names[b]) == 0)
				s->builtin = (enum builtin)b;
		if (s->builtin == BUILTIN_NONE)
			perr(p, p->line, "builtin: '%s' is not one of echo, discard, chargen, daytime, time, tcpmux", v);
	} else if (strcmp(k, "tcpmux") == 0) {
		if (!once64(p, &s->seen, SK_TCPMUX, k))
			return true;
		const char *name = v;
		if (*name == '+') {
			s->tcpmux_plus = true;
			name++;
		}
		if (!valid_name(name))
			perr(p, p->line, "tcpmux: bad name '%s' (1-%d of A-Z a-z 0-9 - _ ., optionally after +)", v,
			     PROTO_MAX_NAME);
		else
			snprintf(s->tcpmux_name, sizeof(s->tcpmux_name), "%s", name);
	} else if (strcmp(k, "allow_from") == 0 || strcmp(k, "deny_from") == 0) {
		each_item(p, k, v, add_cidr);
	} else if (strcmp(k, "allow_client_users") == 0) {
		s->has_client_allow = true;
		each_item(p, k, v, add_client_user);
	} else if (strcmp(k, "allow_client_groups") == 0) {
		s->has_client_allow = true;
		each_item(p, k, v, add_client_group);
	} else if (strcmp(k, "max_connections") == 0) {
		if (!once64(p, &s->seen, SK_MAXCONN, k))
			return true;
		if (parse_uint(v, 1, 1048576, 10, &n) < 0)
			perr(p, p->line, "max_connections: '%s' is not a number 1..1048576", v);
		else
			s->max_connections = (unsigned)n;
	} else if (strcmp(k, "max_per_source") == 0) {
		if (!once64(p, &s->seen, SK_MAXSRC, k))
			return true;
		if (parse_uint(v, 1, 1048576, 10, &n) < 0)
			perr(p, p->line, "max_per_source: '%s' is not a number 1..1048576", v);
		else
			s->max_per_source = (unsigned)n;
	} else if (strcmp(k, "rate") == 0 || strcmp(k, "rate_per_source") == 0) {
		bool per = k[4] == '_';
		if (!once64(p, &s->seen, per ? SK_RATESRC : SK_RATE, k))
			return true;
		if (parse_rate(v, per ? &s->rate_per_source : &s->rate) < 0)
			perr(p, p->line, "%s: '%s' is not a rate like 200/s or 30/min", k, v);
	} else if (strcmp(k, "limit_pause") == 0) {
		if (!once64(p, &s->seen, SK_LPAUSE, k))
			return true;
		if (parse_duration_ms(v, &s->limit_pause_ms) < 0 || s->limit_pause_ms > 3600000)
			perr(p, p->line, "limit_pause: '%s' is not a duration up to 1h (e.g. 10s)", v);
	} else if (strcmp(k, "reuseport") == 0) {
		bool_key(p, s, SK_REUSEPORT, k, v, &s->opt.reuseport);
	} else if (strcmp(k, "freebind") == 0) {
		bool_key(p, s, SK_FREEBIND, k, v, &s->opt.freebind);
	} else if (strcmp(k, "keepalive") == 0) {
		bool_key(p, s, SK_KEEPALIVE, k, v, &s->opt.keepalive);
	} else if (strcmp(k, "nodelay") == 0) {
		bool_key(p, s, SK_NODELAY, k, v, &s->opt.nodelay);
	} else if (strcmp(k, "ipv6only") == 0) {
		bool b = false;
		bool_key(p, s, SK_V6ONLY, k, v, &b);
		s->opt.ipv6only = b;
	} else if (strcmp(k, "defer_accept") == 0) {
		if (!once64(p, &s->seen, SK_DEFER, k))
			return true;
		unsigned ms;
		if (parse_duration_ms(v, &ms) < 0 || ms > 3600000 || ms % 1000)
			perr(p, p->line, "defer_accept: '%s' is not a whole number of seconds up to 1h (e.g. 5s; 0 = off)", v);
		else
			s->opt.defer_accept = ms / 1000;
	} else if (strcmp(k, "receive_buffer") == 0 || strcmp(k, "send_buffer") == 0) {
		bool rcv = k[0] == 'r';
		if (!once64(p, &s->seen, rcv ? SK_RCVBUF : SK_SNDBUF, k))
			return true;
		if (parse_size(v, rcv ? &s->opt.rcvbuf : &s->opt.sndbuf) < 0)
			perr(p, p->line, "%s: '%s' is not a size from 1 byte to 1G (e.g. 65536, 256K, 4M)", k, v);
	} else if (strcmp(k, "bind_device") == 0) {
		if (!once64(p, &s->seen, SK_BINDDEV, k))
			return true;
		if (strlen(v) >= sizeof(s->opt.bind_device) || strchr(v, '/') || strchr(v, ' '))
			perr(p, p->line, "bind_device: '%s' is not an interface name (at most %d bytes)", v,
			     (int)sizeof(s->opt.bind_device) - 1);
		else
			snprintf(s->opt.bind_device, sizeof(s->opt.bind_device), "%s", v);
	} else {
		return false;
	}
	return true;
}

static void service_key(struct cfg_builder *p, const char *k, const char *v)
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
	} else if (strcmp(k, "allow_units") == 0 || strcmp(k, "allow_cgroups") == 0 ||
	           strcmp(k, "allow_labels") == 0) {
		s->has_allow = true;
		each_item(p, k, v, add_word);
	} else if (strcmp(k, "backlog") == 0) {
		if (!once64(p, &s->seen, SK_BACKLOG, k))
			return;
		if (parse_uint(v, 1, 65535, 10, &n) < 0)
			perr(p, p->line, "backlog: '%s' is not a number 1..65535", v);
		else
			s->backlog = (int)n;
	} else if (strcmp(k, "balance") == 0) {
		if (!once64(p, &s->seen, SK_BALANCE, k))
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
		if (!once64(p, &s->seen, SK_MAXB, k))
			return;
		if (parse_uint(v, 1, 65536, 10, &n) < 0)
			perr(p, p->line, "max_backends: '%s' is not a number 1..65536", v);
		else
			s->max_backends = (unsigned)n;
	} else if (strcmp(k, "max_capacity") == 0) {
		if (!once64(p, &s->seen, SK_MAXCAP, k))
			return;
		if (parse_uint(v, 1, 65535, 10, &n) < 0)
			perr(p, p->line, "max_capacity: '%s' is not a number 1..65535", v);
		else
			s->max_capacity = (unsigned)n;
	} else if (strcmp(k, "socket_mode") == 0) {
		if (!once64(p, &s->seen, SK_SMODE, k))
			return;
		if (parse_uint(v, 1, 07777, 8, &n) < 0)
			perr(p, p->line, "socket_mode: '%s' is not an octal mode (e.g. 0660)", v);
		else
			s->socket_mode = (mode_t)n;
	} else if (strcmp(k, "socket_owner") == 0) {
		if (!once64(p, &s->seen, SK_SOWNER, k))
			return;
		if (resolve_user(v, &s->socket_owner, NULL) < 0)
			perr(p, p->line, "socket_owner: no such user '%s'", v);
	} else if (strcmp(k, "socket_group") == 0) {
		if (!once64(p, &s->seen, SK_SGROUP, k))
			return;
		if (resolve_group(v, &s->socket_group) < 0)
			perr(p, p->line, "socket_group: no such group '%s'", v);
	} else if (service_key2(p, s, k, v)) {
		return;
	} else {
		perr(p, p->line, "unknown key '%s' in [service %s]", k, s->name);
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_builder *p = user;
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

/* exec: argv[0], primary and supplementary groups (NSS, at load only). */
static void finish_exec(struct cfg_builder *p, struct cfg_service *s)
{
	if (!s->exec_argv) {
		if (s->seen & (SKB(SK_ARGV0) | SKB(SK_EUSER) | SKB(SK_EGROUP) | SKB(SK_MAXCH) | SKB(SK_SRATE) |
		               SKB(SK_SPAUSE) | SKB(SK_EACT)))
			perr(p, s->line, "[service %s]: exec_argv0, exec_user, exec_group, exec_activation, max_children, "
			     "spawn_rate and spawn_pause need exec", s->name);
		if (s->on_no_backend == NOB_SPAWN)
			perr(p, s->line, "[service %s]: on_no_backend = spawn needs exec", s->name);
		return;
	}
	if (!(s->seen & SKB(SK_NOB)))
		s->on_no_backend = NOB_SPAWN;
	if (s->exec_argv0[0]) {
		char *a0 = strdup(s->exec_argv0);
		if (!a0) {
			perr(p, s->exec_line, "out of memory");
			return;
		}
		free(s->exec_argv[0]);
		s->exec_argv[0] = a0;
	}
	if (s->exec_uid == (uid_t)-1) {
		perr(p, s->exec_line, "[service %s]: exec needs exec_user (the account the program runs as)", s->name);
		return;
	}
	if (s->exec_gid == (gid_t)-1)
		s->exec_gid = s->exec_user_gid;
	if (s->exec_gid == (gid_t)-1) {
		perr(p, s->exec_line, "[service %s]: exec_user uid %u has no passwd entry: set exec_group too", s->name,
		     (unsigned)s->exec_uid);
		return;
	}
	/* Supplementary groups like initgroups(3), resolved now so the child
	 * needs no NSS lookup after fork. */
	if (s->exec_user_name[0]) {
		int ng = 64;
		for (int tries = 0; tries < 4; tries++) {
			gid_t *g = realloc(s->exec_groups, sizeof(gid_t) * (size_t)ng);
			if (!g) {
				perr(p, s->exec_line, "out of memory");
				return;
			}
			s->exec_groups = g;
			int want = ng;
			if (getgrouplist(s->exec_user_name, s->exec_gid, g, &want) >= 0) {
				s->nexec_groups = want;
				break;
			}
			ng = want > ng ? want : ng * 2;
		}
	} else {
		s->exec_groups = malloc(sizeof(gid_t));
		if (s->exec_groups) {
			s->exec_groups[0] = s->exec_gid;
			s->nexec_groups = 1;
		}
	}
	struct config *c = p->c;
	if (c->user != (uid_t)-1 && (s->exec_uid != c->user || s->exec_gid != c->group))
		perr(p, s->exec_line,
		     "[service %s]: handoffd drops privileges to uid %u gid %u (user/group in [handoffd]), so it "
		     "cannot start programs as uid %u gid %u",
		     s->name, (unsigned)c->user, (unsigned)c->group, (unsigned)s->exec_uid, (unsigned)s->exec_gid);
}

static void validate_service(struct cfg_builder *p, struct cfg_service *s)
{
	bool has_tcp = false, has_ip = false, has_unix = false, has_dgram = false, has_stream = false;
	bool has_v6 = false;
	for (int j = 0; j < s->nlisten; j++) {
		const struct addr_spec *sp = &s->listen[j].spec;
		has_tcp |= sp->kind == ADDR_TCP;
		has_ip |= sp->kind != ADDR_UNIX;
		has_unix |= sp->kind == ADDR_UNIX;
		has_dgram |= sp->socktype == SOCK_DGRAM;
		has_stream |= sp->socktype != SOCK_DGRAM;
		for (int b = 0; b < s->listen[j].nbound; b++)
			has_v6 |= s->listen[j].bound[b].ss.ss_family == AF_INET6;
	}
	finish_exec(p, s);

	if (s->builtin != BUILTIN_NONE) {
		/* handoffd holds every builtin connection itself: bound them. */
		if (!s->max_connections)
			s->max_connections = 256;
		if (s->exec_argv)
			perr(p, s->line, "[service %s]: builtin and exec exclude each other", s->name);
		if (s->mode == MODE_LISTEN)
			perr(p, s->line, "[service %s]: a builtin service is served by handoffd: mode = listen does not apply",
			     s->name);
		if (s->has_allow)
			perr(p, s->line, "[service %s]: a builtin service takes no backends: allow_* keys do not apply",
			     s->name);
		if (s->builtin == BUILTIN_TCPMUX && has_dgram)
			perr(p, s->line, "[service %s]: tcpmux works over stream sockets only", s->name);
		if (s->tcpmux_name[0])
			perr(p, s->line, "[service %s]: a builtin service cannot itself be a tcpmux target", s->name);
	}
	if (s->tcpmux_name[0] && s->mode == MODE_LISTEN)
		perr(p, s->line, "[service %s]: a tcpmux service gets single connections: mode = listen does not apply",
		     s->name);
	if (s->nlisten == 0 && !s->tcpmux_name[0])
		perr(p, s->line, "[service %s]: no listen address (add listen = tcp://...)", s->name);
	if (s->mode == MODE_LISTEN && !has_stream && s->nlisten > 0)
		perr(p, s->line, "[service %s]: mode = listen is for stream listeners; datagram sockets are always shared",
		     s->name);

	/* Rules handoffd applies per accepted connection need it to accept. */
	bool per_conn = s->nallow_from || s->ndeny_from || s->has_client_allow || s->max_per_source ||
	                s->rate_per_source.count || (s->seen & SKB(SK_MAXCONN)) || s->rate.count;
	if (per_conn && (s->mode == MODE_LISTEN || (has_dgram && s->builtin == BUILTIN_NONE)))
		perr(p, s->line,
		     "[service %s]: allow_from, deny_from, allow_client_*, max_connections, max_per_source and rate* "
		     "apply to connections handoffd accepts; a %s socket goes to its server whole",
		     s->name, s->mode == MODE_LISTEN ? "listen-mode" : "datagram");
	if (s->builtin != BUILTIN_NONE && !has_stream && s->nlisten &&
	    ((s->seen & SKB(SK_MAXCONN)) || s->max_per_source || s->has_client_allow))
		perr(p, s->line,
		     "[service %s]: max_connections, max_per_source and allow_client_* count connections; a datagram "
		     "builtin has none (allow_from, deny_from, rate and rate_per_source apply per datagram)",
		     s->name);
	if ((s->nallow_from || s->ndeny_from) && !has_ip && !s->tcpmux_name[0])
		perr(p, s->line, "[service %s]: allow_from/deny_from need a tcp:// or udp:// listener", s->name);
	if (s->has_client_allow && !has_unix)
		perr(p, s->line, "[service %s]: allow_client_users/allow_client_groups need a unix listener", s->name);
	if (s->limit_pause_ms && !s->rate.count)
		perr(p, s->line, "[service %s]: limit_pause needs rate", s->name);

	/* Socket options need a listener they apply to. */
	if ((s->opt.defer_accept || s->opt.nodelay || s->opt.keepalive) && !has_tcp)
		perr(p, s->line, "[service %s]: defer_accept, nodelay and keepalive need a tcp:// listener", s->name);
	if ((s->opt.reuseport || s->opt.freebind || s->opt.bind_device[0]) && !has_ip)
		perr(p, s->line, "[service %s]: reuseport, freebind and bind_device need a tcp:// or udp:// listener",
		     s->name);
	if (s->opt.ipv6only >= 0 && !has_v6)
		perr(p, s->line, "[service %s]: ipv6only needs an IPv6 listener (tcp://[::]:PORT, tcp://*:PORT)", s->name);
}

/* Cross-key rules, after the whole file is read. */
static void validate(struct cfg_builder *p)
{
	struct config *c = p->c;
	if (c->nservices == 0)
		perr(p, p->line > 0 ? p->line : 1, "no [service NAME] section: nothing to serve");
	if (c->user != (uid_t)-1 && c->group == (gid_t)-1)
		perr(p, c->user_line, "user: uid %u has no passwd entry: set group too", (unsigned)c->user);
	const char *main_name = p->name;
	for (size_t i = 0; i < c->nservices; i++) {
		struct cfg_service *s = &c->services[i];
		/* A service from inetd_conf: its errors name that file. */
		p->name = s->inetd_line ? c->inetd_conf : main_name;
		validate_service(p, s);
		for (size_t i2 = 0; i2 < i && s->tcpmux_name[0]; i2++)
			if (strcasecmp(c->services[i2].tcpmux_name, s->tcpmux_name) == 0)
				perr(p, s->line, "[service %s]: tcpmux name '%s' already used by [service %s]", s->name,
				     s->tcpmux_name, c->services[i2].name);
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
						perr(p, s->listen[j].line, "listen: %s already used at %s:%d",
						     s->listen[j].text, s2->inetd_line ? c->inetd_conf : main_name,
						     s2->listen[j2].line);
			}
		}
	}
	p->name = main_name;
	/* The control socket must not collide with a listener. */
	for (size_t i = 0; i < c->nservices; i++)
		for (int j = 0; j < c->services[i].nlisten; j++) {
			const struct addr_spec *sp = &c->services[i].listen[j].spec;
			if (sp->kind != ADDR_UNIX)
				continue;
			char t[sizeof(sp->path) + 1];
			snprintf(t, sizeof(t), "%s%s", sp->abstract ? "@" : "", sp->path);
			p->name = c->services[i].inetd_line ? c->inetd_conf : main_name;
			if (strcmp(t, c->control_socket) == 0)
				perr(p, c->services[i].listen[j].line, "listen: %s is the control socket",
				     c->services[i].listen[j].text);
		}
	p->name = main_name;
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

/* Services from an inetd.conf, through the builder: errors name its lines. */
static void load_inetd(struct cfg_builder *p, const char *path, int line)
{
	const char *saved_name = p->name;
	int saved_line = p->line;
	p->cur = NULL;
	p->in_main = false;
	p->bad_section = false;
	p->in_inetd = true;
	int rc = inetd_load(p, path);
	p->in_inetd = false;
	p->name = saved_name;
	p->line = saved_line;
	p->cur = NULL;
	if (rc < 0 && rc != -EINVAL)
		perr(p, line, "inetd_conf: cannot read %s: %s", path, strerror(-rc));
}

void cfgb_service(struct cfg_builder *b, const char *file, int line, const char *name)
{
	b->name = file;
	b->line = line;
	b->in_main = false;
	b->cur = NULL;
	b->bad_section = true;
	if (!valid_name(name)) {
		perr(b, line, "bad service name '%s' (1-%d of A-Z a-z 0-9 - _ .)", name, PROTO_MAX_NAME);
		return;
	}
	b->cur = service_new(b, name, line);
	b->bad_section = b->cur == NULL;
	if (b->cur && b->in_inetd)
		b->cur->inetd_line = line;
}

void cfgb_key(struct cfg_builder *b, const char *file, int line, const char *key, const char *value)
{
	b->name = file;
	b->line = line;
	if (strlen(value) >= INIH_LINE_MAX - 4) {
		perr(b, line, "%s: value too long (%zu bytes; at most %d)", key, strlen(value), INIH_LINE_MAX - 5);
		return;
	}
	handler(b, NULL, key, value);
}

void cfgb_error(struct cfg_builder *b, const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->name = file;
	perr(b, line, "%s", msg);
}

static int load(struct cfg_builder *p, struct config **ret)
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
	if (p->c->inetd_conf[0])
		load_inetd(p, p->c->inetd_conf, p->inetd_line);
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
	struct cfg_builder p = {.name = path, .err = err, .errlen = errlen};
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
	struct cfg_builder p = {.name = name, .err = err, .errlen = errlen, .str = text};
	if (err && errlen)
		err[0] = '\0';
	return load(&p, ret);
}

int config_load_inetd(const char *path, struct config **ret, char *err, size_t errlen)
{
	struct cfg_builder p = {.name = path, .err = err, .errlen = errlen, .str = ""};
	if (err && errlen)
		err[0] = '\0';
	p.c = config_new();
	if (!p.c)
		return -ENOMEM;
	snprintf(p.c->file, sizeof(p.c->file), "%s", path);
	snprintf(p.c->inetd_conf, sizeof(p.c->inetd_conf), "%s", path);
	p.in_inetd = true;
	int rc = inetd_load(&p, path);
	p.name = path;
	if (rc < 0 && rc != -EINVAL) {
		if (err)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
		config_free(p.c);
		return rc;
	}
	if (p.nerr == 0)
		validate(&p);
	if (p.nerr) {
		config_free(p.c);
		return -EINVAL;
	}
	*ret = p.c;
	return 0;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nservices; i++) {
		free(c->services[i].listen);
		free(c->services[i].allow_uids);
		free(c->services[i].allow_gids);
		free(c->services[i].exec_path);
		free_argv(c->services[i].exec_argv);
		free(c->services[i].exec_groups);
		free(c->services[i].allow_from);
		free(c->services[i].deny_from);
		free(c->services[i].client_uids);
		free(c->services[i].client_gids);
		free_words(c->services[i].allow_units, c->services[i].nallow_units);
		free_words(c->services[i].allow_cgroups, c->services[i].nallow_cgroups);
		free_words(c->services[i].allow_labels, c->services[i].nallow_labels);
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

const struct cfg_service *config_find_tcpmux(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nservices; i++)
		if (c->services[i].tcpmux_name[0] && strcasecmp(c->services[i].tcpmux_name, name) == 0)
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
