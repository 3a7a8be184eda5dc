/* xinetd: xinetd.conf -> handoffd.conf text (see xinetd.h).
 *
 * Two passes: read every file (following include/includedir) into
 * sections of attribute assignments, each remembering its file and line;
 * then convert each service section against the defaults section, so
 * defaults may appear anywhere, as in xinetd. A service is converted into
 * a list of keys first and printed only when complete.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "addr.h"
#include "config.h"
#include "inetd.h" /* INETD_CONF_LINE_MAX */
#include "proto.h"
#include "xinetd.h"

#define X_LINE_MAX 16384     /* xinetd's own line limit */
#define X_MAX_DEPTH 8        /* include nesting */
#define X_MAX_FILES 4096
#define X_MAX_ATTRS 1024     /* assignments in one section */
#define X_MAX_WORDS 512      /* values of one attribute */
#define X_MAX_KEYS 64
#define X_MAX_NOTES 6
#define X_DEFAULT_CPS 50     /* xinetd's DEFAULT_LOOP_RATE */
#define X_DEFAULT_CPS_WAIT 10 /* xinetd's DEFAULT_LOOP_TIME, seconds */

struct xattr {
	char *name;
	char op; /* '=', '+' (+=), '-' (-=) */
	char *value;
	const char *file;
	int line;
};

struct xsec {
	char *name;
	const char *file;
	int line;
	struct xattr *a;
	int na;
	bool broken; /* a syntax error inside: already reported, not converted */
};

struct xp {
	FILE *out, *err;
	char **files;
	size_t nfiles;
	struct xsec *secs;
	size_t nsecs;
	struct xsec defaults;
	bool has_defaults;
	char (*names)[PROTO_MAX_NAME + 1];
	size_t nnames;
	int nerr;
};

/* ---- the attributes xinetd knows ---- */

enum { AT_SCALAR, AT_SET, AT_LIST, AT_NONE };
/* AT_SCALAR: '=' once; AT_SET: '=' once, several values (type, flags);
 * AT_LIST: all operators, several lines (only_from...); AT_NONE: no
 * handoffd equivalent (named on err). */
static const struct adef {
	const char *name;
	int kind;
	bool list_ops;    /* AT_NONE attributes that take += and -= */
	bool in_defaults; /* xinetd takes it in defaults */
} adefs[] = {
	{"id", AT_SCALAR, false, false},
	{"type", AT_SET, false, false},
	{"flags", AT_SET, false, false},
	{"socket_type", AT_SCALAR, false, false},
	{"protocol", AT_SCALAR, false, false},
	{"wait", AT_SCALAR, false, false},
	{"user", AT_SCALAR, false, false},
	{"group", AT_SCALAR, false, false},
	{"server", AT_SCALAR, false, false},
	{"server_args", AT_SET, false, false},
	{"port", AT_SCALAR, false, false},
	{"bind", AT_SCALAR, false, true},
	{"interface", AT_SCALAR, false, true},
	{"v6only", AT_SCALAR, false, true},
	{"only_from", AT_LIST, true, true},
	{"no_access", AT_LIST, true, true},
	{"instances", AT_SCALAR, false, true},
	{"per_source", AT_SCALAR, false, true},
	{"cps", AT_SET, false, true},
	{"disable", AT_SCALAR, false, false},
	{"enabled", AT_LIST, true, true},
	{"disabled", AT_LIST, true, true},
	{"log_type", AT_NONE, false, true},
	{"log_on_success", AT_NONE, true, true},
	{"log_on_failure", AT_NONE, true, true},
	{"access_times", AT_NONE, false, false},
	{"rlimit_as", AT_NONE, false, false},
	{"rlimit_cpu", AT_NONE, false, false},
	{"rlimit_data", AT_NONE, false, false},
	{"rlimit_rss", AT_NONE, false, false},
	{"rlimit_stack", AT_NONE, false, false},
	{"rlimit_files", AT_NONE, false, false},
	{"nice", AT_NONE, false, false},
	{"umask", AT_NONE, false, true},
	{"env", AT_NONE, true, false},
	{"passenv", AT_NONE, true, true},
	{"banner", AT_NONE, false, true},
	{"banner_success", AT_NONE, false, true},
	{"banner_fail", AT_NONE, false, true},
	{"redirect", AT_NONE, false, false},
	{"max_load", AT_NONE, false, true},
	{"mdns", AT_NONE, false, false},
	{"groups", AT_NONE, false, true},
	{"deny_time", AT_NONE, false, false},
	{"rpc_version", AT_NONE, false, false},
	{"rpc_number", AT_NONE, false, false},
	{"libwrap", AT_NONE, false, false},
};

static const struct adef *adef_find(const char *name)
{
	for (size_t i = 0; i < sizeof(adefs) / sizeof(adefs[0]); i++)
		if (strcmp(adefs[i].name, name) == 0)
			return &adefs[i];
	return NULL;
}

/* ---- messages ---- */

static void xerr(struct xp *x, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A syntax error. */
static void xerr(struct xp *x, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	x->nerr++;
	fprintf(x->err, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(x->err, fmt, ap);
	va_end(ap);
	fputc('\n', x->err);
}

static void xwarn(struct xp *x, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void xwarn(struct xp *x, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(x->err, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(x->err, fmt, ap);
	va_end(ap);
	fputc('\n', x->err);
}

/* A comment in the output, cut to a line handoffd.conf reads. */
static void xcomment(struct xp *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xcomment(struct xp *x, const char *fmt, ...)
{
	char buf[INETD_CONF_LINE_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(x->out, "%s\n", buf);
}

/* ---- reading ---- */

static const char *file_intern(struct xp *x, const char *path)
{
	for (size_t i = 0; i < x->nfiles; i++)
		if (strcmp(x->files[i], path) == 0)
			return x->files[i];
	if (x->nfiles >= X_MAX_FILES)
		return NULL;
	char **v = realloc(x->files, sizeof(*v) * (x->nfiles + 1));
	if (!v)
		return NULL;
	x->files = v;
	v[x->nfiles] = strdup(path);
	if (!v[x->nfiles])
		return NULL;
	return v[x->nfiles++];
}

static struct xsec *sec_new(struct xp *x, const char *name, const char *file, int line)
{
	if (x->nsecs >= CFG_MAX_SERVICES) {
		xerr(x, file, line, "too many services (at most %d)", CFG_MAX_SERVICES);
		return NULL;
	}
	struct xsec *v = realloc(x->secs, sizeof(*v) * (x->nsecs + 1));
	if (!v) {
		xerr(x, file, line, "out of memory");
		return NULL;
	}
	x->secs = v;
	struct xsec *s = &v[x->nsecs];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	if (!s->name) {
		xerr(x, file, line, "out of memory");
		return NULL;
	}
	s->file = file;
	s->line = line;
	x->nsecs++;
	return s;
}

static void sec_free(struct xsec *s)
{
	for (int i = 0; i < s->na; i++) {
		free(s->a[i].name);
		free(s->a[i].value);
	}
	free(s->a);
	free(s->name);
}

/* "ATTR op values" inside a section. */
static void attr_line(struct xp *x, struct xsec *s, bool is_defaults, const char *file, int line, const char *text)
{
	const char *p = text;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	size_t nlen = (size_t)(p - text);
	while (*p == ' ' || *p == '\t')
		p++;
	char op = 0;
	if (p[0] == '=') {
		op = '=';
		p++;
	} else if ((p[0] == '+' || p[0] == '-') && p[1] == '=') {
		op = p[0];
		p += 2;
	}
	if (nlen == 0 || !op || nlen > 63) {
		xerr(x, file, line, "syntax error: expected 'attribute = value', '+=' or '-=' (got '%.60s')", text);
		s->broken = true;
		return;
	}
	char name[64];
	memcpy(name, text, nlen);
	name[nlen] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	const struct adef *d = adef_find(name);
	if (!d) {
		xerr(x, file, line, "%s %s: unknown attribute '%s'", is_defaults ? "defaults" : "service",
		     is_defaults ? "" : s->name, name);
		s->broken = true;
		return;
	}
	bool list = d->kind == AT_LIST || d->list_ops;
	if (op != '=' && !list) {
		xerr(x, file, line, "attribute %s takes only '=' (not '%c=')", name, op);
		s->broken = true;
		return;
	}
	if (op == '-' && strcmp(name, "env") == 0) {
		xerr(x, file, line, "attribute env does not take '-='");
		s->broken = true;
		return;
	}
	if (!list && !is_defaults)
		for (int i = 0; i < s->na; i++)
			if (strcmp(s->a[i].name, name) == 0) {
				xerr(x, file, line, "service %s: attribute %s given twice (first at line %d)", s->name, name,
				     s->a[i].line);
				s->broken = true;
				return;
			}
	if (s->na >= X_MAX_ATTRS) {
		xerr(x, file, line, "too many attributes in one section (at most %d)", X_MAX_ATTRS);
		s->broken = true;
		return;
	}
	struct xattr *v = realloc(s->a, sizeof(*v) * (size_t)(s->na + 1));
	if (!v) {
		xerr(x, file, line, "out of memory");
		s->broken = true;
		return;
	}
	s->a = v;
	struct xattr *a = &v[s->na];
	a->name = strdup(name);
	a->value = strdup(p);
	if (!a->name || !a->value) {
		free(a->name);
		free(a->value);
		xerr(x, file, line, "out of memory");
		s->broken = true;
		return;
	}
	a->op = op;
	a->file = file;
	a->line = line;
	s->na++;
}

static int x_file(struct xp *x, const char *path, int depth, const char *from, int from_line);

static int dir_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return !strchr(d->d_name, '.') && n > 0 && d->d_name[n - 1] != '~';
}

static int dir_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* the C locale's order, whatever the locale */
}

static void x_dir(struct xp *x, const char *dir, int depth, const char *from, int from_line)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, dir_filter, dir_cmp);
	if (n < 0) {
		xerr(x, from, from_line, "includedir %s: %s", dir, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		int len = snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		struct stat st;
		if (len < 0 || (size_t)len >= sizeof(path))
			xerr(x, from, from_line, "includedir %s: name too long: %s", dir, list[i]->d_name);
		else if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			x_file(x, path, depth + 1, from, from_line);
		free(list[i]);
	}
	free(list);
}

/* A relative include names a file next to the one that includes it. */
static int include_path(const char *from, const char *arg, char *buf, size_t size)
{
	int n;
	const char *slash = strrchr(from, '/');
	if (arg[0] == '/' || !slash)
		n = snprintf(buf, size, "%s", arg);
	else
		n = snprintf(buf, size, "%.*s/%s", (int)(slash - from), from, arg);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

enum xstate { X_OUT, X_BRACE, X_IN, X_SKIP };

/* Read one file. Returns 0, or -errno when it cannot be opened (reported
 * at from:from_line when it is an include). */
static int x_file(struct xp *x, const char *path, int depth, const char *from, int from_line)
{
	if (depth > X_MAX_DEPTH) {
		xerr(x, from, from_line, "include %s: includes nest deeper than %d", path, X_MAX_DEPTH);
		return -ELOOP;
	}
	FILE *fp = fopen(path, "re");
	if (!fp) {
		int e = errno;
		if (from)
			xerr(x, from, from_line, "include %s: %s", path, strerror(e));
		return -e;
	}
	const char *file = file_intern(x, path);
	if (!file) {
		fclose(fp);
		xerr(x, from ? from : path, from_line, "too many files or out of memory");
		return -ENOMEM;
	}
	char *buf = malloc(X_LINE_MAX + 2);
	if (!buf) {
		fclose(fp);
		xerr(x, file, 0, "out of memory");
		return -ENOMEM;
	}
	enum xstate st = X_OUT;
	struct xsec *cur = NULL; /* recomputed from cur_idx per line: includes may move x->secs */
	size_t cur_idx = 0;
	bool cur_defaults = false;
	int cur_line = 0;
	int lineno = 0;
	while (fgets(buf, X_LINE_MAX + 2, fp)) {
		lineno++;
		size_t n = strlen(buf);
		if (n && buf[n - 1] == '\n') {
			buf[--n] = '\0';
		} else if (!feof(fp)) {
			int ch;
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			xerr(x, file, lineno, "line too long (at most %d bytes)", X_LINE_MAX);
			if (st == X_IN)
				(cur_defaults ? &x->defaults : &x->secs[cur_idx])->broken = true;
			continue;
		}
		while (n && isspace((unsigned char)buf[n - 1]))
			buf[--n] = '\0';
		char *s = buf;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		cur = st == X_OUT ? NULL : cur_defaults ? &x->defaults : &x->secs[cur_idx];
		switch (st) {
		case X_OUT: {
			char *word = s;
			char *rest = s + strcspn(s, " \t");
			if (*rest)
				*rest++ = '\0';
			while (*rest == ' ' || *rest == '\t')
				rest++;
			if (strcmp(word, "service") == 0 || strcmp(word, "defaults") == 0) {
				bool defaults = word[0] == 'd';
				char *name = rest;
				char *after = defaults ? rest : rest + strcspn(rest, " \t{");
				char save = *after;
				*after = '\0';
				if (!defaults && !*name) {
					xerr(x, file, lineno, "'service' needs a name");
					st = X_SKIP;
					break;
				}
				char namebuf[256];
				snprintf(namebuf, sizeof(namebuf), "%s", name);
				*after = save;
				while (*after == ' ' || *after == '\t')
					after++;
				cur_defaults = defaults;
				cur_line = lineno;
				if (defaults) {
					if (!x->has_defaults) {
						x->defaults.name = strdup("defaults");
						x->defaults.file = file;
						x->defaults.line = lineno;
						x->has_defaults = true;
					}
				} else {
					if (!sec_new(x, namebuf, file, lineno)) {
						st = X_SKIP;
						break;
					}
					cur_idx = x->nsecs - 1;
				}
				if (strcmp(after, "{") == 0) {
					st = X_IN;
				} else if (!*after) {
					st = X_BRACE;
				} else {
					xerr(x, file, lineno, "syntax error after '%s %s': expected '{'", word, namebuf);
					if (!defaults)
						x->secs[cur_idx].broken = true;
					st = X_SKIP;
				}
			} else if (strcmp(word, "include") == 0 || strcmp(word, "includedir") == 0) {
				char p[4096];
				if (!*rest || strpbrk(rest, " \t")) {
					xerr(x, file, lineno, "%s needs one path", word);
				} else if (include_path(file, rest, p, sizeof(p)) < 0) {
					xerr(x, file, lineno, "%s %s: path too long", word, rest);
				} else if (word[7] == 'd') {
					if (depth + 1 > X_MAX_DEPTH)
						xerr(x, file, lineno, "includedir %s: includes nest deeper than %d", p, X_MAX_DEPTH);
					else
						x_dir(x, p, depth, file, lineno);
				} else {
					x_file(x, p, depth + 1, file, lineno);
				}
			} else {
				xerr(x, file, lineno,
				     "syntax error: expected 'service NAME', 'defaults', 'include FILE' or 'includedir DIR' "
				     "(got '%.60s')",
				     word);
			}
			break;
		}
		case X_BRACE:
			if (strcmp(s, "{") == 0) {
				st = X_IN;
			} else {
				xerr(x, file, lineno, "syntax error: expected '{' after the section header at line %d", cur_line);
				cur->broken = true;
				st = strcmp(s, "}") == 0 ? X_OUT : X_SKIP;
			}
			break;
		case X_IN:
			if (strcmp(s, "}") == 0) {
				st = X_OUT;
			} else if (*s == '{' || *s == '}') {
				xerr(x, file, lineno, "syntax error: unexpected '%c'", *s);
				cur->broken = true;
			} else {
				attr_line(x, cur, cur_defaults, file, lineno, s);
			}
			break;
		case X_SKIP:
			if (strcmp(s, "}") == 0)
				st = X_OUT;
			break;
		}
	}
	bool rerr = ferror(fp);
	free(buf);
	fclose(fp);
	if (rerr) {
		xerr(x, file, lineno, "read error");
		return -EIO;
	}
	if (st == X_IN || st == X_BRACE) {
		xerr(x, file, cur_line, "missing '}' for the section that starts here");
		if (cur_defaults)
			x->defaults.broken = true;
		else
			x->secs[cur_idx].broken = true;
	}
	return 0;
}

/* ---- values ---- */

struct words {
	char *w[X_MAX_WORDS];
	int n;
	bool set;
	const char *file; /* where it was set (first time), for messages */
	int line;
};

static void words_free(struct words *w)
{
	for (int i = 0; i < w->n; i++)
		free(w->w[i]);
	w->n = 0;
}

static void words_add(struct words *w, const char *value, bool dedup)
{
	char *copy = strdup(value);
	if (!copy)
		return;
	char *save = NULL;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		bool have = false;
		for (int i = 0; dedup && i < w->n; i++)
			have |= strcmp(w->w[i], t) == 0;
		if (!have && w->n < X_MAX_WORDS) {
			w->w[w->n] = strdup(t);
			if (w->w[w->n])
				w->n++;
		}
	}
	free(copy);
}

static void words_remove(struct words *w, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return;
	char *save = NULL;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		for (int i = 0; i < w->n; i++)
			if (strcmp(w->w[i], t) == 0) {
				free(w->w[i]);
				memmove(&w->w[i], &w->w[i + 1], sizeof(w->w[0]) * (size_t)(w->n - i - 1));
				w->n--;
				i--;
			}
	free(copy);
}

static bool words_has(const struct words *w, const char *s)
{
	for (int i = 0; i < w->n; i++)
		if (strcmp(w->w[i], s) == 0)
			return true;
	return false;
}

/* The value of attribute name for service s: what defaults give (if xinetd
 * takes it there), then the service's own assignments. In defaults every
 * assignment adds up; in the service '=' replaces what was inherited (a
 * second '=' adds), '+=' adds and '-=' removes. */
static void value_get(const struct xp *x, const struct xsec *s, const char *name, struct words *ret)
{
	const struct adef *d = adef_find(name);
	bool list = d && (d->kind == AT_LIST || d->list_ops);
	memset(ret, 0, sizeof(*ret));
	if (x->has_defaults && d && d->in_defaults)
		for (int i = 0; i < x->defaults.na; i++) {
			const struct xattr *a = &x->defaults.a[i];
			if (strcmp(a->name, name) != 0)
				continue;
			if (!ret->set) {
				ret->file = a->file;
				ret->line = a->line;
			}
			ret->set = true;
			if (a->op == '-')
				words_remove(ret, a->value);
			else if (list)
				words_add(ret, a->value, true);
			else {
				words_free(ret);
				words_add(ret, a->value, false);
			}
		}
	if (!s)
		return;
	bool own = false;
	for (int i = 0; i < s->na; i++) {
		const struct xattr *a = &s->a[i];
		if (strcmp(a->name, name) != 0)
			continue;
		if (!own) {
			ret->file = a->file;
			ret->line = a->line;
		}
		if (a->op == '-') {
			words_remove(ret, a->value);
		} else if (a->op == '+') {
			words_add(ret, a->value, true);
		} else {
			if (!own)
				words_free(ret);
			words_add(ret, a->value, list);
		}
		own = true;
		ret->set = true;
	}
}

/* A scalar: its single word ("" if absent or empty), and whether it was set. */
static bool scalar_get(const struct xp *x, const struct xsec *s, const char *name, char *buf, size_t size,
                       const char **ret_file, int *ret_line)
{
	struct words w;
	value_get(x, s, name, &w);
	bool set = w.set;
	snprintf(buf, size, "%s", w.n ? w.w[0] : "");
	if (ret_file)
		*ret_file = w.file;
	if (ret_line)
		*ret_line = w.line;
	words_free(&w);
	return set;
}

/* ---- addresses ---- */

/* One only_from / no_access entry as handoffd CIDR text, or -EINVAL with
 * *why (what kind of entry it is). xinetd forms: a.b.c.d (trailing .0
 * octets are wildcards; 0.0.0.0 is everyone), a.b.c.d/n, v6 and v6/n,
 * factorized a.b.{c,d} (expanded; ret may get several entries). */
static int cidr_map(const char *item, char ret[][64], int max, int *ret_n, const char **why)
{
	*ret_n = 0;
	const char *brace = strchr(item, '{');
	if (brace) {
		/* a.b.{c,d}: the part before { ends in '.', items are numbers */
		size_t plen = (size_t)(brace - item);
		const char *end = strchr(brace, '}');
		if (!plen || item[plen - 1] != '.' || !end || end[1]) {
			*why = "a malformed factorized address";
			return -EINVAL;
		}
		char inner[256];
		size_t ilen = (size_t)(end - brace - 1);
		if (ilen >= sizeof(inner) || plen >= 64) {
			*why = "a factorized address too long";
			return -EINVAL;
		}
		memcpy(inner, brace + 1, ilen);
		inner[ilen] = '\0';
		char *save = NULL;
		for (char *t = strtok_r(inner, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			char one[128];
			snprintf(one, sizeof(one), "%.*s%s", (int)plen, item, t);
			int n1 = 0;
			if (*ret_n >= max)
				return -EINVAL;
			/* recurse on the expanded form (no braces left) */
			if (cidr_map(one, ret + *ret_n, max - *ret_n, &n1, why) < 0)
				return -EINVAL;
			*ret_n += n1;
		}
		return 0;
	}
	char addr[64];
	const char *slash = strchr(item, '/');
	size_t alen = slash ? (size_t)(slash - item) : strlen(item);
	if (alen >= sizeof(addr)) {
		*why = "too long for an address";
		return -EINVAL;
	}
	memcpy(addr, item, alen);
	addr[alen] = '\0';
	long prefix = -1;
	if (slash) {
		char *e;
		if (!isdigit((unsigned char)slash[1]))
			goto bad_prefix;
		errno = 0;
		prefix = strtol(slash + 1, &e, 10);
		if (errno || *e)
			goto bad_prefix;
	}
	unsigned char b[16];
	if (inet_pton(AF_INET6, addr, b) == 1) {
		if (prefix > 128)
			goto bad_prefix;
		int pl = prefix < 0 ? 128 : (int)prefix;
		for (int i = 0; i < 16; i++) {
			int keep = pl - 8 * i;
			b[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
		}
		char t[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, b, t, sizeof(t));
		snprintf(ret[0], 64, "%s/%d", t, pl);
		*ret_n = 1;
		return 0;
	}
	/* IPv4: 1 to 4 dotted numbers. */
	unsigned oct[4] = {0, 0, 0, 0};
	int k = 0;
	const char *p = addr;
	while (*p) {
		if (k == 4 || !isdigit((unsigned char)*p))
			goto not_ip;
		char *e;
		unsigned long v = strtoul(p, &e, 10);
		if (v > 255 || e - p > 3)
			goto not_ip;
		oct[k++] = (unsigned)v;
		p = e;
		if (*p == '.') {
			p++;
			if (!*p)
				goto not_ip;
		} else if (*p) {
			goto not_ip;
		}
	}
	if (k == 0)
		goto not_ip;
	int pl;
	if (prefix >= 0) {
		if (prefix > 32 || k != 4)
			goto bad_prefix;
		pl = (int)prefix;
	} else if (k < 4) {
		pl = 8 * k;
	} else {
		/* xinetd: trailing zero octets are wildcards (0.0.0.0: everyone). */
		int z = 0;
		while (z < 4 && oct[3 - z] == 0)
			z++;
		pl = 32 - 8 * z;
	}
	uint32_t a = (oct[0] << 24) | (oct[1] << 16) | (oct[2] << 8) | oct[3];
	uint32_t mask = pl == 0 ? 0 : 0xffffffffu << (32 - pl);
	a &= mask;
	snprintf(ret[0], 64, "%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff, pl);
	*ret_n = 1;
	if (pl == 0 && max > 1) {
		/* xinetd's 0.0.0.0 matches every client, IPv6 ones too */
		snprintf(ret[1], 64, "::/0");
		*ret_n = 2;
	}
	return 0;
bad_prefix:
	*why = "an address with a bad prefix length";
	return -EINVAL;
not_ip:
	if (item[0] == '@')
		*why = "a netgroup";
	else if (item[0] == '.')
		*why = "a domain";
	else
		*why = "a host or network name";
	return -EINVAL;
}

/* ---- one service ---- */

struct xentry {
	char name[PROTO_MAX_NAME + 1];
	int nkeys;
	struct {
		const char *key;
		char value[INETD_CONF_LINE_MAX + 1];
	} keys[X_MAX_KEYS];
	int nnotes;
	char notes[X_MAX_NOTES][160];
};

static bool xkey(struct xentry *e, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool xkey(struct xentry *e, const char *key, const char *fmt, ...)
{
	if (e->nkeys >= X_MAX_KEYS)
		return false;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->keys[e->nkeys].value, sizeof(e->keys[0].value), fmt, ap);
	va_end(ap);
	if (n < 0 || strlen(key) + 3 + (size_t)n > INETD_CONF_LINE_MAX)
		return false;
	e->keys[e->nkeys++].key = key;
	return true;
}

static void xnote(struct xentry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xnote(struct xentry *e, const char *fmt, ...)
{
	if (e->nnotes >= X_MAX_NOTES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->notes[e->nnotes++], sizeof(e->notes[0]), fmt, ap);
	va_end(ap);
}

/* A list key (allow_from, deny_from) over as many lines as it needs. */
static bool xkey_list(struct xentry *e, const char *key, char items[][64], int n)
{
	char line[INETD_CONF_LINE_MAX + 1];
	size_t pos = 0;
	line[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t add = strlen(items[i]) + (pos ? 2 : 0);
		if (pos && strlen(key) + 3 + pos + add > INETD_CONF_LINE_MAX) {
			if (!xkey(e, key, "%s", line))
				return false;
			pos = 0;
			line[0] = '\0';
		}
		pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s%s", pos ? ", " : "", items[i]);
	}
	return pos == 0 || xkey(e, key, "%s", line);
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* id sanitised and unique. */
static int name_make(struct xp *x, struct xentry *e, const char *id)
{
	char stem[PROTO_MAX_NAME + 1];
	size_t n = 0;
	for (const char *s = id; *s && n < PROTO_MAX_NAME - 6; s++)
		stem[n++] = name_char(*s) ? *s : '_';
	stem[n] = '\0';
	if (!n)
		snprintf(stem, sizeof(stem), "service");
	char try[PROTO_MAX_NAME + 16];
	snprintf(try, sizeof(try), "%s", stem);
	for (unsigned k = 2; k < 100000; k++) {
		bool used = false;
		for (size_t i = 0; i < x->nnames && !used; i++)
			used = strcmp(x->names[i], try) == 0;
		if (!used)
			break;
		snprintf(try, sizeof(try), "%s-%u", stem, k);
	}
	size_t len = strlen(try) + 1;
	if (len > PROTO_MAX_NAME + 1)
		return -ENOSPC;
	void *v = realloc(x->names, sizeof(*x->names) * (x->nnames + 1));
	if (!v)
		return -ENOMEM;
	x->names = v;
	memcpy(x->names[x->nnames++], try, len);
	memcpy(e->name, try, len);
	return 0;
}

/* A word of exec, quoted when the word splitter or inih would change it. */
static int word_append(char *buf, size_t size, size_t *pos, const char *w)
{
	bool quote = !*w || *w == ';' || *w == '#' || strpbrk(w, " \t\"");
	char tmp[INETD_CONF_LINE_MAX * 2 + 3];
	size_t n = 0;
	if (strlen(w) > INETD_CONF_LINE_MAX)
		return -ENOSPC;
	if (quote)
		tmp[n++] = '"';
	for (const char *s = w; *s; s++) {
		if (quote && (*s == '"' || *s == '\\'))
			tmp[n++] = '\\';
		tmp[n++] = *s;
	}
	if (quote)
		tmp[n++] = '"';
	tmp[n] = '\0';
	int r = snprintf(buf + *pos, size - *pos, "%s%s", *pos ? " " : "", tmp);
	if (r < 0 || (size_t)r >= size - *pos)
		return -ENOSPC;
	*pos += (size_t)r;
	return 0;
}

/* Warn once per attribute with no equivalent in section s. */
static void warn_unsupported(struct xp *x, const struct xsec *s, const char *who)
{
	for (int i = 0; i < s->na; i++) {
		const struct adef *d = adef_find(s->a[i].name);
		bool first = true;
		for (int j = 0; j < i; j++)
			first &= strcmp(s->a[j].name, s->a[i].name) != 0;
		if (!first || !d)
			continue;
		if (d->kind == AT_NONE)
			xwarn(x, s->a[i].file, s->a[i].line, "%s: attribute %s has no equivalent in handoffd, ignored", who,
			      s->a[i].name);
	}
}

static const char *const builtin_names[] = {"echo", "discard", "chargen", "daytime", "time", "tcpmux"};

/* Is a service's value set in the service itself (not only by defaults)? */
static int own_line(const struct xsec *s, const char *name)
{
	for (int i = 0; i < s->na; i++)
		if (strcmp(s->a[i].name, name) == 0)
			return s->a[i].line;
	return 0;
}

/* Parse "UNLIMITED" or 1..max; 0 for UNLIMITED, -1 if bad. */
static long limit_parse(const char *v, long max)
{
	if (strcasecmp(v, "UNLIMITED") == 0)
		return 0;
	char *e;
	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	long n = strtol(v, &e, 10);
	if (errno || *e || n < 1 || n > max)
		return -1;
	return n;
}

#define FAIL(...)                                                   \
	do {                                                            \
		snprintf(why, sizeof(why), __VA_ARGS__);                    \
		goto fail;                                                  \
	} while (0)

static void x_service(struct xp *x, const struct xsec *s)
{
	struct xentry *e = calloc(1, sizeof(*e));
	struct words w, allow, deny;
	char why[512] = "";
	char id[256], v[256], who[320];
	const char *vf;
	int vl;
	bool ok;

	memset(&w, 0, sizeof(w));
	memset(&allow, 0, sizeof(allow));
	memset(&deny, 0, sizeof(deny));
	if (!e) {
		xerr(x, s->file, s->line, "out of memory");
		return;
	}
	if (!scalar_get(x, s, "id", id, sizeof(id), NULL, NULL) || !id[0])
		snprintf(id, sizeof(id), "%s", s->name);
	snprintf(who, sizeof(who), "service %s", s->name);

	/* Disabled services are skipped, with a comment. */
	const char *off = NULL;
	struct words flags, types;
	value_get(x, s, "flags", &flags);
	value_get(x, s, "type", &types);
	if (scalar_get(x, s, "disable", v, sizeof(v), NULL, NULL) && strcasecmp(v, "yes") == 0)
		off = "disable = yes";
	else if (words_has(&flags, "DISABLE"))
		off = "flags DISABLE";
	if (!off && x->has_defaults) {
		struct words en, dis;
		value_get(x, NULL, "enabled", &en);
		value_get(x, NULL, "disabled", &dis);
		if (words_has(&dis, id))
			off = "listed in disabled of defaults";
		else if (en.set && !words_has(&en, id))
			off = "not listed in enabled of defaults";
		words_free(&en);
		words_free(&dis);
	}
	if (off) {
		fprintf(x->out, "\n");
		xcomment(x, "; service %s (%s:%d) is disabled in xinetd (%s): not converted", s->name, s->file, s->line,
		         off);
		goto out;
	}

	warn_unsupported(x, s, who);

	/* type */
	bool internal = false, unlisted = false, mux = false, muxplus = false;
	for (int i = 0; i < types.n; i++) {
		const char *t = types.w[i];
		if (strcmp(t, "INTERNAL") == 0)
			internal = true;
		else if (strcmp(t, "UNLISTED") == 0)
			unlisted = true;
		else if (strcmp(t, "TCPMUX") == 0)
			mux = true;
		else if (strcmp(t, "TCPMUXPLUS") == 0)
			mux = muxplus = true;
		else if (strcmp(t, "RPC") == 0)
			FAIL("RPC services are not supported");
		else
			FAIL("unknown type %s (expected INTERNAL, UNLISTED, TCPMUX, TCPMUXPLUS)", t);
	}

	/* flags */
	bool v4 = false, v6 = false, nodelay = false, keepalive = false, nameinargs = false;
	for (int i = 0; i < flags.n; i++) {
		const char *f = flags.w[i];
		if (strcmp(f, "IPv4") == 0)
			v4 = true;
		else if (strcmp(f, "IPv6") == 0)
			v6 = true;
		else if (strcmp(f, "NODELAY") == 0)
			nodelay = true;
		else if (strcmp(f, "KEEPALIVE") == 0)
			keepalive = true;
		else if (strcmp(f, "NAMEINARGS") == 0)
			nameinargs = true;
		else if (strcmp(f, "REUSE") == 0)
			xnote(e, "flags REUSE: handoffd always sets SO_REUSEADDR on its listeners");
		else if (strcmp(f, "NOLIBWRAP") == 0)
			xnote(e, "flags NOLIBWRAP: handoffd never calls libwrap");
		else if (strcmp(f, "DISABLE") == 0)
			;
		else if (strcmp(f, "INTERCEPT") == 0 || strcmp(f, "NORETRY") == 0 || strcmp(f, "IDONLY") == 0 ||
		         strcmp(f, "SENSOR") == 0 || strcmp(f, "LABELED") == 0)
			xwarn(x, flags.file, flags.line, "%s: flag %s has no equivalent in handoffd, ignored", who, f);
		else
			FAIL("unknown flag %s", f);
	}

	/* socket_type, protocol, wait */
	int socktype;
	if (!scalar_get(x, s, "socket_type", v, sizeof(v), NULL, NULL))
		FAIL("socket_type is missing (xinetd requires it)");
	if (strcmp(v, "stream") == 0)
		socktype = SOCK_STREAM;
	else if (strcmp(v, "dgram") == 0)
		socktype = SOCK_DGRAM;
	else if (strcmp(v, "raw") == 0 || strcmp(v, "seqpacket") == 0)
		FAIL("socket_type %s is not supported (handoffd serves stream and dgram over IP)", v);
	else
		FAIL("unknown socket_type '%s'", v);
	char proto[32];
	if (!scalar_get(x, s, "protocol", proto, sizeof(proto), NULL, NULL))
		snprintf(proto, sizeof(proto), "%s", socktype == SOCK_STREAM ? "tcp" : "udp");
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		FAIL("protocol %s is not supported (tcp or udp)", proto);
	if ((socktype == SOCK_STREAM) != (strcmp(proto, "tcp") == 0))
		FAIL("socket_type %s does not go with protocol %s", socktype == SOCK_STREAM ? "stream" : "dgram", proto);
	bool wait;
	if (!scalar_get(x, s, "wait", v, sizeof(v), NULL, NULL))
		FAIL("wait is missing (xinetd requires it)");
	if (strcasecmp(v, "yes") == 0)
		wait = true;
	else if (strcasecmp(v, "no") == 0)
		wait = false;
	else
		FAIL("wait = %s is not yes or no", v);
	if (mux && (socktype != SOCK_STREAM || wait || internal))
		FAIL("a TCPMUX service must be stream tcp, wait = no, and not INTERNAL");
	if (!internal && socktype == SOCK_DGRAM && !wait)
		FAIL("dgram with wait = no is not supported: handoffd shares a datagram socket with its server "
		     "(wait = yes)");
	bool listen_mode = !internal && wait && socktype == SOCK_STREAM;
	bool whole_socket = listen_mode || (!internal && socktype == SOCK_DGRAM);
	bool accepts = !whole_socket && socktype == SOCK_STREAM; /* handoffd accepts each connection */

	/* An internal service handoffd lacks fails here, before its port is looked up. */
	const char *bi = NULL;
	for (size_t i = 0; internal && i < sizeof(builtin_names) / sizeof(builtin_names[0]); i++)
		if (strcmp(s->name, builtin_names[i]) == 0)
			bi = builtin_names[i];
	if (internal && !bi)
		FAIL("internal service %s has no handoffd builtin (echo, discard, chargen, daytime, time, tcpmux)", s->name);

	/* port and listen */
	unsigned port = 0;
	if (!mux) {
		if (scalar_get(x, s, "port", v, sizeof(v), NULL, NULL)) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (!isdigit((unsigned char)v[0]) || *end || n < 1 || n > 65535)
				FAIL("port %s is not 1..65535", v);
			port = (unsigned)n;
		} else if (unlisted) {
			FAIL("an UNLISTED service needs a port");
		} else {
			struct servent *se = getservbyname(s->name, proto);
			if (!se)
				FAIL("no port given and '%s' is not in /etc/services for %s", s->name, proto);
			port = ntohs((uint16_t)se->s_port);
		}
		char bind[256];
		bool has_bind = scalar_get(x, s, "bind", bind, sizeof(bind), NULL, NULL) && bind[0];
		if (!has_bind)
			has_bind = scalar_get(x, s, "interface", bind, sizeof(bind), NULL, NULL) && bind[0];
		char v6only[16] = "";
		bool has_v6only = scalar_get(x, s, "v6only", v6only, sizeof(v6only), NULL, NULL);
		if (has_v6only && strcasecmp(v6only, "yes") != 0 && strcasecmp(v6only, "no") != 0)
			FAIL("v6only = %s is not yes or no", v6only);
		bool only6 = has_v6only && strcasecmp(v6only, "yes") == 0;
		unsigned char b[16];
		if (has_bind) {
			if (inet_pton(AF_INET, bind, b) == 1)
				ok = xkey(e, "listen", "%s://%s:%u", proto, bind, port);
			else if (inet_pton(AF_INET6, bind, b) == 1)
				ok = xkey(e, "listen", "%s://[%s]:%u", proto, bind, port);
			else
				ok = xkey(e, "listen", "%s://%s:%u", proto, bind, port);
		} else if (v4 && !v6) {
			ok = xkey(e, "listen", "%s://0.0.0.0:%u", proto, port);
		} else if (only6) {
			ok = xkey(e, "listen", "%s://[::]:%u", proto, port) && xkey(e, "ipv6only", "yes");
		} else {
			ok = xkey(e, "listen", "%s://*:%u", proto, port);
		}
		if (!ok)
			FAIL("the bind address '%s' is too long", bind);
		struct addr_spec spec;
		const char *aw = NULL;
		if (addr_parse(e->keys[0].value, &spec, &aw) < 0)
			FAIL("listen address %s: %s", e->keys[0].value, aw ? aw : "invalid");
	}
	if (listen_mode && !xkey(e, "mode", "listen"))
		FAIL("too many keys");

	/* what serves it */
	bool exec = !internal;
	if (internal) {
		if (strcmp(bi, "tcpmux") == 0 && socktype != SOCK_STREAM)
			FAIL("the tcpmux builtin works over stream tcp only");
		if (!xkey(e, "builtin", "%s", bi))
			FAIL("too many keys");
	} else {
		char server[4096];
		if (!scalar_get(x, s, "server", server, sizeof(server), NULL, NULL) || !server[0])
			FAIL("server is missing (xinetd requires it for a service that is not INTERNAL)");
		if (server[0] != '/')
			FAIL("server %.200s must be an absolute path", server);
		struct words args;
		value_get(x, s, "server_args", &args);
		const char *argv0;
		int first = 0;
		if (nameinargs) {
			if (args.n == 0) {
				words_free(&args);
				FAIL("flags NAMEINARGS needs server_args (its first word is argv[0])");
			}
			argv0 = args.w[0];
			first = 1;
		} else {
			const char *slash = strrchr(server, '/');
			argv0 = slash + 1; /* xinetd: argv[0] is the last component of server */
		}
		char cmd[INETD_CONF_LINE_MAX + 1];
		size_t pos = 0;
		ok = word_append(cmd, sizeof(cmd), &pos, server) == 0;
		for (int i = first; ok && i < args.n; i++)
			ok = word_append(cmd, sizeof(cmd), &pos, args.w[i]) == 0;
		ok = ok && xkey(e, "exec", "%s", cmd);
		if (ok && strcmp(argv0, server) != 0)
			ok = strlen(argv0) <= 127 && xkey(e, "exec_argv0", "%s", argv0);
		words_free(&args);
		if (!ok)
			FAIL("server and server_args do not fit a handoffd.conf line (%d bytes)", INETD_CONF_LINE_MAX);
		char user[256], group[256];
		if (!scalar_get(x, s, "user", user, sizeof(user), NULL, NULL) || !user[0])
			FAIL("user is missing (xinetd requires it for a service that is not INTERNAL)");
		if (!xkey(e, "exec_user", "%s", user))
			FAIL("user name too long");
		if (scalar_get(x, s, "group", group, sizeof(group), NULL, NULL) && group[0] &&
		    !xkey(e, "exec_group", "%s", group))
			FAIL("group name too long");
	}
	if (mux) {
		bool name_ok = strlen(s->name) <= PROTO_MAX_NAME && s->name[0];
		for (const char *c = s->name; name_ok && *c; c++)
			name_ok = name_char(*c);
		if (!name_ok)
			FAIL("the TCPMUX name '%s' is not 1-%d of A-Z a-z 0-9 - _ .", s->name, PROTO_MAX_NAME);
		if (!xkey(e, "tcpmux", "%s%s", muxplus ? "+" : "", s->name))
			FAIL("too many keys");
	}

	/* only_from / no_access */
	value_get(x, s, "only_from", &allow);
	value_get(x, s, "no_access", &deny);
	char (*items)[64] = calloc(2 * X_MAX_WORDS + 2, 64);
	if (!items)
		FAIL("out of memory");
	int nitems = 0;
	bool everyone = false;
	for (int i = 0; i < allow.n; i++) {
		const char *cw = NULL;
		int n1;
		if (cidr_map(allow.w[i], items + nitems, 2 * X_MAX_WORDS + 2 - nitems, &n1, &cw) < 0) {
			xwarn(x, allow.file, allow.line,
			      "%s: only_from entry '%s' (%s) has no equivalent in handoffd (addresses and networks only), "
			      "ignored: fewer clients are admitted",
			      who, allow.w[i], cw);
			continue;
		}
		for (int j = 0; j < n1; j++)
			everyone |= strcmp(items[nitems + j], "0.0.0.0/0") == 0;
		nitems += n1;
	}
	bool restrict_allow = allow.set && !everyone;
	int nallow = nitems;
	for (int i = 0; i < deny.n; i++) {
		const char *cw = NULL;
		int n1;
		if (cidr_map(deny.w[i], items + nitems, 2 * X_MAX_WORDS + 2 - nitems, &n1, &cw) < 0) {
			free(items);
			FAIL("no_access entry '%s' (%s) has no equivalent in handoffd (addresses and networks only): "
			     "converting without it would admit clients xinetd refuses",
			     deny.w[i], cw);
		}
		nitems += n1;
	}
	int ndeny = nitems - nallow;
	if ((restrict_allow || ndeny) && whole_socket) {
		free(items);
		FAIL("only_from/no_access cannot be applied: handoffd hands this %s service's socket to its server "
		     "whole, so it never sees the clients",
		     listen_mode ? "wait = yes" : "datagram");
	}
	ok = true;
	if (restrict_allow && nallow)
		ok = xkey_list(e, "allow_from", items, nallow);
	else if (restrict_allow) {
		/* xinetd: an only_from with nothing usable admits nobody */
		char all[2][64] = {"0.0.0.0/0", "::/0"};
		xnote(e, "only_from names no address handoffd can use: nobody is admitted, as in xinetd");
		ok = xkey_list(e, "deny_from", all, 2);
	}
	if (ok && ndeny)
		ok = xkey_list(e, "deny_from", items + nallow, ndeny);
	free(items);
	if (!ok)
		FAIL("too many only_from/no_access entries");

	/* instances, per_source, cps: limits on connections handoffd accepts. */
	long instances = 0, per_source = 0;
	if (scalar_get(x, s, "instances", v, sizeof(v), &vf, &vl)) {
		if ((instances = limit_parse(v, 1048576)) < 0)
			FAIL("instances = %s is not UNLIMITED or a number 1..1048576", v);
		/* xinetd puts no instance limit on the builtins it serves without
		 * forking (time, daytime and the datagram ones). */
		if (internal && (strcmp(s->name, "time") == 0 || strcmp(s->name, "daytime") == 0))
			instances = 0;
		if (instances && !accepts) {
			if (own_line(s, "instances"))
				xwarn(x, vf, vl, "%s: attribute instances has no equivalent for a %s service, ignored", who,
				      wait ? "wait = yes" : "datagram");
			instances = 0;
		}
	}
	if (instances && !xkey(e, "max_connections", "%ld", instances))
		FAIL("too many keys");
	if (instances && exec && !xkey(e, "max_children", "%ld", instances > 65536 ? 65536 : instances))
		FAIL("too many keys");
	if (scalar_get(x, s, "per_source", v, sizeof(v), &vf, &vl)) {
		if ((per_source = limit_parse(v, 1048576)) < 0)
			FAIL("per_source = %s is not UNLIMITED or a number 1..1048576", v);
		if (per_source && !accepts) {
			if (own_line(s, "per_source"))
				xwarn(x, vf, vl, "%s: attribute per_source has no equivalent for a %s service, ignored", who,
				      wait ? "wait = yes" : "datagram");
			per_source = 0;
		}
	}
	if (per_source && !xkey(e, "max_per_source", "%ld", per_source))
		FAIL("too many keys");
	value_get(x, s, "cps", &w);
	if (w.set) {
		char *end1, *end2;
		long rate = w.n == 2 ? strtol(w.w[0], &end1, 10) : -1;
		long pause = w.n == 2 ? strtol(w.w[1], &end2, 10) : -1;
		if (w.n != 2 || *end1 || *end2 || rate < 1 || rate > 1000000 || pause < 1 || pause > 3600)
			FAIL("cps needs two numbers: connections per second (1..1000000) and seconds to pause (1..3600)");
		if (accepts) {
			ok = xkey(e, "rate", "%ld/s", rate) && xkey(e, "limit_pause", "%lds", pause);
		} else {
			if (own_line(s, "cps"))
				xwarn(x, w.file, w.line, "%s: attribute cps has no equivalent for a %s service, ignored", who,
				      socktype == SOCK_DGRAM ? "datagram" : "wait = yes");
		}
	} else if (accepts) {
		xnote(e, "rate and limit_pause: xinetd's default cps (%d connections/s, then a %d s pause)", X_DEFAULT_CPS,
		      X_DEFAULT_CPS_WAIT);
		ok = xkey(e, "rate", "%d/s", X_DEFAULT_CPS) && xkey(e, "limit_pause", "%ds", X_DEFAULT_CPS_WAIT);
	}
	if (!ok)
		FAIL("too many keys");
	if (socktype == SOCK_STREAM && !mux) {
		if (nodelay && !xkey(e, "nodelay", "yes"))
			FAIL("too many keys");
		if (keepalive && !xkey(e, "keepalive", "yes"))
			FAIL("too many keys");
	}

	if (name_make(x, e, id) < 0)
		FAIL("too many services");
	fprintf(x->out, "\n[service %s]\n", e->name);
	xcomment(x, "; from %s:%d (xinetd service %s)", s->file, s->line, s->name);
	for (int i = 0; i < e->nnotes; i++)
		xcomment(x, "; %s", e->notes[i]);
	for (int i = 0; i < e->nkeys; i++)
		fprintf(x->out, "%s = %s\n", e->keys[i].key, e->keys[i].value);
	goto out;

fail:
	x->nerr++;
	fprintf(x->err, "%s:%d: %s: %s\n", s->file, s->line, who, why);
	fprintf(x->out, "\n");
	xcomment(x, "; NOT CONVERTED %s:%d: %s: %s", s->file, s->line, who, why);
out:
	words_free(&flags);
	words_free(&types);
	words_free(&w);
	words_free(&allow);
	words_free(&deny);
	free(e);
}

int xinetd_convert(const char *path, FILE *out, FILE *err)
{
	struct xp x = {.out = out, .err = err};
	int rc = x_file(&x, path, 0, NULL, 0);
	if (rc < 0 && x.nfiles == 0) {
		fprintf(err, "%s: cannot read: %s\n", path, strerror(-rc));
		goto done;
	}
	xcomment(&x, "; handoffd.conf for the services of %s and the files it includes", path);
	xcomment(&x, "; (written by handoffd --convert-xinetd; each [service] names its xinetd section)");
	if (x.has_defaults) {
		if (!x.defaults.broken) {
			warn_unsupported(&x, &x.defaults, "defaults");
			for (int i = 0; i < x.defaults.na; i++) {
				const struct adef *d = adef_find(x.defaults.a[i].name);
				if (d && !d->in_defaults)
					xwarn(&x, x.defaults.a[i].file, x.defaults.a[i].line,
					      "defaults: attribute %s is not one xinetd takes in defaults, ignored",
					      x.defaults.a[i].name);
			}
		} else {
			fprintf(out, "\n");
			xcomment(&x, "; the defaults section (%s:%d) has errors: nothing converted", x.defaults.file,
			         x.defaults.line);
		}
	}
	for (size_t i = 0; i < x.nsecs; i++) {
		if (x.defaults.broken) {
			x.nerr++; /* already reported; every service depends on defaults */
			continue;
		}
		if (x.secs[i].broken) {
			fprintf(out, "\n");
			xcomment(&x, "; NOT CONVERTED %s:%d: service %s has syntax errors (see above)", x.secs[i].file,
			         x.secs[i].line, x.secs[i].name);
			continue;
		}
		x_service(&x, &x.secs[i]);
	}
	rc = x.nerr ? -EINVAL : 0;
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(err, "%s: cannot write the conversion: %s\n", path, strerror(errno));
		rc = -EIO;
	}
done:
	for (size_t i = 0; i < x.nsecs; i++)
		sec_free(&x.secs[i]);
	free(x.secs);
	if (x.has_defaults)
		sec_free(&x.defaults);
	for (size_t i = 0; i < x.nfiles; i++)
		free(x.files[i]);
	free(x.files);
	free(x.names);
	return rc;
}
