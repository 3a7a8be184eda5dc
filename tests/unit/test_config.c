/* Unit tests for src/daemon/config.c: every key of handoffd.conf, the
 * defaults, and every error path, each checked for the "NAME:LINE: "
 * prefix with the right line and for naming the key (and the value).
 *
 * Texts go through config_load_string() under the name "t.conf"; the file
 * tests write into a mkdtemp() directory and remove it. Users and groups
 * used are those of Debian's base-passwd (root, daemon, nobody, www-data;
 * adm, users, nogroup), looked up here rather than hard-coded. Names that
 * must not resolve use the reserved .invalid TLD. Every test checks that it
 * leaves no fd open (TEST() below). */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

static char errbuf[16384];

static uid_t uid_of(const char *name)
{
	struct passwd *pw = getpwnam(name);
	cr_assert_not_null(pw, "user %s missing from this system", name);
	return pw->pw_uid;
}

static gid_t primary_gid_of(const char *name)
{
	struct passwd *pw = getpwnam(name);
	cr_assert_not_null(pw, "user %s missing from this system", name);
	return pw->pw_gid;
}

static gid_t gid_of(const char *name)
{
	struct group *gr = getgrnam(name);
	cr_assert_not_null(gr, "group %s missing from this system", name);
	return gr->gr_gid;
}

/* Load text that must be valid. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	int rc = config_load_string(text, "t.conf", &c, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, 0, "config refused (%d):\n%s\n--- text ---\n%s", rc, errbuf, text);
	cr_assert_not_null(c);
	cr_assert_str_eq(errbuf, "", "errors reported for a valid config");
	return c;
}

/* Load text that must be refused; errbuf holds the messages. */
static void load_bad(const char *text)
{
	struct config *c = NULL;
	int rc = config_load_string(text, "t.conf", &c, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, -EINVAL, "config accepted (%d):\n%s", rc, text);
	cr_assert_null(c, "a refused config must not be returned");
	cr_assert_neq(errbuf[0], '\0', "refused without a message:\n%s", text);
}

/* Is there an error line "NAME:LINE: ..." containing n1 (and n2)? */
static bool has_error_in(const char *err, const char *name, int line, const char *n1, const char *n2)
{
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "%s:%d: ", name, line);
	const char *s = err;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char one[4096];
		snprintf(one, sizeof(one), "%.*s", (int)len, s);
		if (strncmp(one, prefix, strlen(prefix)) == 0 && (!n1 || strstr(one, n1)) && (!n2 || strstr(one, n2)))
			return true;
		s += len;
		if (*s == '\n')
			s++;
	}
	return false;
}

static bool has_error(int line, const char *n1, const char *n2)
{
	return has_error_in(errbuf, "t.conf", line, n1, n2);
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

#define assert_error(line, n1, n2)                                                                \
	cr_assert(has_error((line), (n1), (n2)), "no error 't.conf:%d: ...%s...%s...' in:\n%s", (line), \
	          nz(n1), nz(n2), errbuf)

static int count_errors(void)
{
	int n = 0;
	for (const char *s = errbuf; *s;) {
		n++;
		const char *nl = strchr(s, '\n');
		if (!nl)
			break;
		s = nl + 1;
	}
	return n;
}

/* Build a text with printf. */
static char *textf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *textf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	return s;
}

/* ===================== a full, valid configuration ===================== */

static const char full_text[] =
	"; handoffd.conf exercising every key\n"                         /* 1 */
	"# another comment style\n"                                      /* 2 */
	"[handoffd]\n"                                                   /* 3 */
	"control_socket = /tmp/hd-test/control.sock\n"                  /* 4 */
	"control_mode = 0660\n"                                          /* 5 */
	"control_group = daemon\n"                                       /* 6 */
	"admin_group = adm\n"                                            /* 7 */
	"user = nobody\n"                                                /* 8 */
	"group = nogroup\n"                                              /* 9 */
	"log_level = debug\n"                                            /* 10 */
	"max_control_per_uid = 8\n"                                      /* 11 */
	"max_control = 100\n"                                            /* 12 */
	"handshake_timeout = 500ms\n"                                    /* 13 */
	"shutdown_timeout = 2m\n"                                        /* 14 */
	"\n"                                                             /* 15 */
	"[service web]\n"                                                /* 16 */
	"listen = tcp://127.0.0.1:8080, tcp://[::1]:8080\n"              /* 17 */
	"listen = tcp://*:8443 unix:/tmp/hd-test/web.sock\n"             /* 18 */
	"listen = unix:@hd-test-web ; inline comment\n"                  /* 19 */
	"backlog = 128\n"                                                /* 20 */
	"balance = least-loaded\n"                                       /* 21 */
	"allow_users = www-data, 0\n"                                    /* 22 */
	"allow_users = daemon\n"                                         /* 23 */
	"allow_groups = users 33\n"                                      /* 24 */
	"max_backends = 4\n"                                             /* 25 */
	"max_capacity = 100\n"                                           /* 26 */
	"socket_mode = 0660\n"                                           /* 27 */
	"socket_owner = www-data\n"                                      /* 28 */
	"socket_group = www-data\n"                                      /* 29 */
	"\n"                                                             /* 30 */
	"  [service other.svc_2]\n"                                      /* 31 */
	"  listen = tcp://localhost:9090\n"                              /* 32 */
	"balance = source-hash\n";                                       /* 33 */

TEST(valid, full_config)
{
	struct config *c = load_ok(full_text);

	cr_assert_str_eq(c->file, "t.conf");
	cr_assert_str_eq(c->control_socket, "/tmp/hd-test/control.sock");
	cr_assert_eq(c->control_mode, 0660);
	cr_assert_eq(c->control_group, gid_of("daemon"));
	cr_assert_eq(c->admin_group, gid_of("adm"));
	cr_assert_eq(c->user, uid_of("nobody"));
	cr_assert_eq(c->group, gid_of("nogroup"));
	cr_assert_str_eq(c->user_name, "nobody");
	cr_assert_eq(c->log_level, LOG_LVL_DEBUG);
	cr_assert_eq(c->max_control_per_uid, 8);
	cr_assert_eq(c->max_control, 100);
	cr_assert_eq(c->handshake_timeout_ms, 500);
	cr_assert_eq(c->shutdown_timeout_ms, 120000);
	cr_assert_eq(c->nservices, 2);

	const struct cfg_service *w = config_find_service(c, "web");
	cr_assert_not_null(w);
	cr_assert_eq(w, &c->services[0], "services keep file order");
	cr_assert_str_eq(w->name, "web");
	cr_assert_eq(w->line, 16);
	cr_assert_eq(w->nlisten, 5);
	static const char *const texts[] = {"tcp://127.0.0.1:8080", "tcp://[::1]:8080", "tcp://*:8443",
	                                    "unix:/tmp/hd-test/web.sock", "unix:@hd-test-web"};
	static const int lines[] = {17, 17, 18, 18, 19};
	for (int i = 0; i < 5; i++) {
		cr_assert_str_eq(w->listen[i].text, texts[i]);
		cr_assert_eq(w->listen[i].line, lines[i], "listen %d", i);
		cr_assert_eq(w->listen[i].nbound, 1, "%s", texts[i]);
	}
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&w->listen[0].bound[0].ss;
	cr_assert_eq(a4->sin_family, AF_INET);
	cr_assert_eq(ntohs(a4->sin_port), 8080);
	cr_assert_eq(ntohl(a4->sin_addr.s_addr), INADDR_LOOPBACK);
	cr_assert_eq(w->listen[1].bound[0].ss.ss_family, AF_INET6);
	cr_assert_eq(w->listen[2].bound[0].ss.ss_family, AF_INET6);
	cr_assert_eq(w->listen[2].bound[0].dual_stack, 1);
	cr_assert_eq(w->listen[3].spec.kind, ADDR_UNIX);
	cr_assert_eq(w->listen[3].spec.abstract, 0);
	cr_assert_eq(w->listen[4].spec.abstract, 1);
	cr_assert_eq(w->backlog, 128);
	cr_assert_eq(w->balance, BALANCE_LEAST_LOADED);
	cr_assert(w->has_allow);
	cr_assert_eq(w->nallow_uids, 3);
	cr_assert_eq(w->allow_uids[0], uid_of("www-data"));
	cr_assert_eq(w->allow_uids[1], 0);
	cr_assert_eq(w->allow_uids[2], uid_of("daemon"));
	cr_assert_eq(w->nallow_gids, 2);
	cr_assert_eq(w->allow_gids[0], gid_of("users"));
	cr_assert_eq(w->allow_gids[1], 33);
	cr_assert_eq(w->max_backends, 4);
	cr_assert_eq(w->max_capacity, 100);
	cr_assert_eq(w->socket_mode, 0660);
	cr_assert_eq(w->socket_owner, uid_of("www-data"));
	cr_assert_eq(w->socket_group, gid_of("www-data"));

	const struct cfg_service *o = config_find_service(c, "other.svc_2");
	cr_assert_not_null(o);
	cr_assert_eq(o->line, 31);
	cr_assert_eq(o->nlisten, 1);
	cr_assert_str_eq(o->listen[0].text, "tcp://localhost:9090");
	cr_assert_eq(o->listen[0].line, 32);
	cr_assert_geq(o->listen[0].nbound, 1);
	cr_assert_eq(o->balance, BALANCE_SOURCE_HASH);
	/* Keys it did not set keep their defaults. */
	cr_assert_eq(o->backlog, 4096);
	cr_assert(!o->has_allow);
	cr_assert_eq(o->nallow_uids, 0);
	cr_assert_eq(o->nallow_gids, 0);
	cr_assert_eq(o->max_backends, 256);
	cr_assert_eq(o->max_capacity, 1024);

	cr_assert_null(config_find_service(c, "nope"));
	cr_assert_null(config_find_service(c, "WEB"));
	config_free(c);
}

TEST(valid, defaults)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_str_eq(c->control_socket, "/run/handoffd/control.sock");
	cr_assert_eq(c->control_mode, 0666);
	cr_assert_eq(c->control_group, (gid_t)-1);
	cr_assert_eq(c->admin_group, (gid_t)-1);
	cr_assert_eq(c->user, (uid_t)-1);
	cr_assert_eq(c->group, (gid_t)-1);
	cr_assert_str_eq(c->user_name, "");
	cr_assert_eq(c->log_level, LOG_LVL_NOTICE);
	cr_assert_eq(c->max_control_per_uid, 64);
	cr_assert_eq(c->max_control, 4096);
	cr_assert_eq(c->handshake_timeout_ms, 10000);
	cr_assert_eq(c->shutdown_timeout_ms, 10000);
	cr_assert_eq(c->nservices, 1);
	const struct cfg_service *s = &c->services[0];
	cr_assert_str_eq(s->name, "a");
	cr_assert_eq(s->line, 1);
	cr_assert_eq(s->backlog, 4096);
	cr_assert_eq(s->balance, BALANCE_ROUND_ROBIN);
	cr_assert(!s->has_allow);
	cr_assert_eq(s->max_backends, 256);
	cr_assert_eq(s->max_capacity, 1024);
	cr_assert_eq(s->socket_mode, 0);
	cr_assert_eq(s->socket_owner, (uid_t)-1);
	cr_assert_eq(s->socket_group, (gid_t)-1);
	config_free(c);
}

TEST(valid, user_sets_group_unless_given)
{
	struct config *c = load_ok("[handoffd]\nuser = nobody\n[service a]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->user, uid_of("nobody"));
	cr_assert_eq(c->group, primary_gid_of("nobody"));
	config_free(c);

	/* group before user: group wins. */
	c = load_ok("[handoffd]\ngroup = daemon\nuser = nobody\n[service a]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->group, gid_of("daemon"));
	config_free(c);

	/* group after user: group wins too. */
	c = load_ok("[handoffd]\nuser = nobody\ngroup = daemon\n[service a]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->group, gid_of("daemon"));
	config_free(c);

	/* Numbers are ids. */
	c = load_ok("[handoffd]\nuser = 1\ngroup = 4\nadmin_group = 100\ncontrol_group = 0\n"
	            "[service a]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(c->user, 1);
	cr_assert_eq(c->group, 4);
	cr_assert_eq(c->admin_group, 100);
	cr_assert_eq(c->control_group, 0);
	config_free(c);
}

TEST(valid, value_boundaries)
{
	struct config *c = load_ok("[handoffd]\n"
	                           "control_mode = 0\n"
	                           "max_control_per_uid = 65536\n"
	                           "max_control = 1048576\n"
	                           "handshake_timeout = 86400s\n"
	                           "shutdown_timeout = 0\n"
	                           "log_level = WARN\n"
	                           "[service a]\n"
	                           "listen = unix:/tmp/hd-a.sock\n"
	                           "backlog = 65535\n"
	                           "max_backends = 65536\n"
	                           "max_capacity = 65535\n"
	                           "socket_mode = 7777\n"
	                           "balance = round-robin\n"
	                           "[service b]\n"
	                           "listen = tcp://127.0.0.1:2\n"
	                           "backlog = 1\n"
	                           "max_backends = 1\n"
	                           "max_capacity = 1\n");
	cr_assert_eq(c->control_mode, 0);
	cr_assert_eq(c->max_control_per_uid, 65536);
	cr_assert_eq(c->max_control, 1048576);
	cr_assert_eq(c->handshake_timeout_ms, 86400000);
	cr_assert_eq(c->shutdown_timeout_ms, 0);
	cr_assert_eq(c->log_level, LOG_LVL_WARNING);
	cr_assert_eq(c->services[0].backlog, 65535);
	cr_assert_eq(c->services[0].max_backends, 65536);
	cr_assert_eq(c->services[0].max_capacity, 65535);
	cr_assert_eq(c->services[0].socket_mode, 07777);
	cr_assert_eq(c->services[0].balance, BALANCE_ROUND_ROBIN);
	cr_assert_eq(c->services[1].backlog, 1);
	cr_assert_eq(c->services[1].max_backends, 1);
	cr_assert_eq(c->services[1].max_capacity, 1);
	config_free(c);
}

TEST(valid, durations)
{
	static const struct {
		const char *v;
		unsigned ms;
	} d[] = {{"10", 10000}, {"10s", 10000}, {"500ms", 500}, {"1ms", 1}, {"2m", 120000}, {"1min", 60000},
	         {"1440m", 86400000}, {"86400000ms", 86400000}};
	for (size_t i = 0; i < N_ELEMENTS(d); i++) {
		char *t = textf("[handoffd]\nhandshake_timeout = %s\nshutdown_timeout = %s\n"
		                "[service a]\nlisten = tcp://127.0.0.1:1\n", d[i].v, d[i].v);
		struct config *c = load_ok(t);
		cr_assert_eq(c->handshake_timeout_ms, d[i].ms, "%s", d[i].v);
		cr_assert_eq(c->shutdown_timeout_ms, d[i].ms, "%s", d[i].v);
		config_free(c);
		free(t);
	}
}

TEST(valid, log_levels)
{
	static const struct {
		const char *v;
		int level;
	} l[] = {{"error", LOG_LVL_ERROR}, {"warning", LOG_LVL_WARNING}, {"notice", LOG_LVL_NOTICE},
	         {"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG}, {"Info", LOG_LVL_INFO}};
	for (size_t i = 0; i < N_ELEMENTS(l); i++) {
		char *t = textf("[handoffd]\nlog_level = %s\n[service a]\nlisten = tcp://127.0.0.1:1\n", l[i].v);
		struct config *c = load_ok(t);
		cr_assert_eq(c->log_level, l[i].level, "%s", l[i].v);
		config_free(c);
		free(t);
	}
}

TEST(valid, balance_names)
{
	static const char *const names[] = {"round-robin", "least-loaded", "source-hash"};
	for (int b = 0; b < 3; b++) {
		char *t = textf("[service a]\nlisten = tcp://127.0.0.1:1\nbalance = %s\n", names[b]);
		struct config *c = load_ok(t);
		cr_assert_eq(c->services[0].balance, (enum balance)b);
		cr_assert_str_eq(config_balance_name(c->services[0].balance), names[b]);
		config_free(c);
		free(t);
	}
	cr_assert_str_eq(config_balance_name((enum balance)99), "?");
}

TEST(valid, abstract_control_socket)
{
	struct config *c = load_ok("[handoffd]\ncontrol_socket = @hd-test-ctl\n"
	                           "[service a]\nlisten = unix:/tmp/hd-test-ctl\n");
	cr_assert_str_eq(c->control_socket, "@hd-test-ctl");
	config_free(c);
}

TEST(valid, line_endings_and_whitespace)
{
	struct config *c = load_ok("[handoffd]\r\n"
	                           "log_level=info\r\n"
	                           "\t max_control  =  7 \r\n"
	                           "[service  spaced]\r\n"
	                           "listen = tcp://127.0.0.1:1,tcp://127.0.0.1:2\t tcp://127.0.0.1:3\r\n"
	                           "allow_users = ,root,, daemon ,\r\n"
	                           "backlog = 9"); /* no final newline */
	cr_assert_eq(c->log_level, LOG_LVL_INFO);
	cr_assert_eq(c->max_control, 7);
	cr_assert_str_eq(c->services[0].name, "spaced");
	cr_assert_eq(c->services[0].nlisten, 3);
	cr_assert_eq(c->services[0].nallow_uids, 2);
	cr_assert_eq(c->services[0].backlog, 9);
	config_free(c);
}

/* A UTF-8 byte order mark (as some editors write) before the first section
 * header: inih skips it, so the reader must see the section too. */
TEST(valid, byte_order_mark)
{
	struct config *c = NULL;
	int rc = config_load_string("\xef\xbb\xbf[service a]\nlisten = tcp://127.0.0.1:1\n", "t.conf", &c, errbuf,
	                            sizeof(errbuf));
	cr_assert_eq(rc, 0, "a config starting with a BOM was refused:\n%s", errbuf);
	cr_assert_eq(c->nservices, 1);
	cr_assert_eq(c->services[0].nlisten, 1);
	config_free(c);
}

/* "[service a]" and lines listen lines of per_line unix:@aNN addresses
 * each (numbered from 0). Caller frees. */
static char *listen_lines(int lines, int per_line)
{
	char *t = textf("[service a]\n");
	for (int line = 0; line < lines; line++) {
		char *l = textf("%slisten =", t);
		free(t);
		t = l;
		for (int i = 0; i < per_line; i++) {
			l = textf("%s unix:@a%02d", t, line * per_line + i);
			free(t);
			t = l;
		}
		l = textf("%s\n", t);
		free(t);
		t = l;
	}
	return t;
}

TEST(valid, largest_lists)
{
	/* 64 listen addresses and 256 allow_users entries are allowed. */
	char *t = listen_lines(4, 16);
	for (int line = 0; line < 4; line++) {
		char *l = textf("%sallow_users =", t);
		free(t);
		t = l;
		for (int i = 0; i < 64; i++) {
			l = textf("%s 0", t);
			free(t);
			t = l;
		}
		l = textf("%s\n", t);
		free(t);
		t = l;
	}
	struct config *c = load_ok(t);
	cr_assert_eq(c->services[0].nlisten, CFG_MAX_LISTEN);
	cr_assert_eq(c->services[0].nallow_uids, CFG_MAX_IDS);
	config_free(c);
	free(t);
}

TEST(valid, service_names)
{
	char name[PROTO_MAX_NAME + 1];
	memset(name, 'n', PROTO_MAX_NAME);
	name[PROTO_MAX_NAME] = '\0';
	char *t = textf("[service %s]\nlisten = tcp://127.0.0.1:1\n[service A-z_0.9]\nlisten = tcp://127.0.0.1:2\n"
	                "[service x]\nlisten = tcp://127.0.0.1:3\n",
	                name);
	struct config *c = load_ok(t);
	cr_assert_eq(c->nservices, 3);
	cr_assert_str_eq(c->services[0].name, name);
	cr_assert_str_eq(c->services[1].name, "A-z_0.9");
	cr_assert_str_eq(c->services[2].name, "x");
	config_free(c);
	free(t);
}

TEST(valid, independent_loads)
{
	struct config *a = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\n");
	struct config *b = load_ok("[handoffd]\nmax_control = 5\n[service b]\nlisten = tcp://127.0.0.1:1\n");
	cr_assert_eq(a->max_control, 4096, "one load must not leak into the next");
	cr_assert_eq(b->max_control, 5);
	cr_assert_str_eq(a->services[0].name, "a");
	config_free(a);
	config_free(b);
	config_free(NULL);
}

/* ===================== errors ===================== */

static const char *const svc_tail = "[service web]\nlisten = unix:/tmp/hd-web.sock\n";

struct badval {
	const char *key;
	const char *value;
	const char *extra; /* also in the message, or NULL */
};

static const struct badval bad_main[] = {
	{"control_socket", "relative.sock", NULL},
	{"control_socket", "unix:/x.sock", NULL},
	{"control_socket", "@", NULL},
	{"control_socket", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
	{"control_mode", "0999", NULL},
	{"control_mode", "rw-rw----", NULL},
	{"control_mode", "10000", NULL},
	{"control_mode", "-1", NULL},
	{"control_mode", "0x1ff", NULL},
	{"control_mode", "8", NULL},
	{"control_group", "no-such-group-hd", NULL},
	{"control_group", "4294967295", NULL},
	{"admin_group", "no-such-group-hd", NULL},
	{"user", "no-such-user-hd", NULL},
	{"user", "4294967295", NULL},
	{"group", "no-such-group-hd", NULL},
	{"log_level", "loud", NULL},
	{"log_level", "3", NULL},
	{"log_level", "warn ing", NULL},
	{"max_control_per_uid", "0", NULL},
	{"max_control_per_uid", "65537", NULL},
	{"max_control_per_uid", "-1", NULL},
	{"max_control_per_uid", "+5", NULL},
	{"max_control_per_uid", "12abc", NULL},
	{"max_control_per_uid", "0x10", NULL},
	{"max_control_per_uid", "99999999999999999999", NULL},
	{"max_control", "0", NULL},
	{"max_control", "1048577", NULL},
	{"max_control", "many", NULL},
	{"handshake_timeout", "0", NULL},
	{"handshake_timeout", "0ms", NULL},
	{"handshake_timeout", "10d", NULL},
	{"handshake_timeout", "1.5s", NULL},
	{"handshake_timeout", "-1", NULL},
	{"handshake_timeout", "s", NULL},
	{"handshake_timeout", "10 s", NULL},
	{"handshake_timeout", "86401s", NULL},
	{"handshake_timeout", "1441m", NULL},
	{"handshake_timeout", "86400001ms", NULL},
	{"handshake_timeout", "99999999999999999999", NULL},
	{"shutdown_timeout", "10d", NULL},
	{"shutdown_timeout", "soon", NULL},
	{"shutdown_timeout", "86401s", NULL},
};

TEST(errors, bad_values_in_handoffd)
{
	for (size_t i = 0; i < N_ELEMENTS(bad_main); i++) {
		const struct badval *b = &bad_main[i];
		char *t = textf("[handoffd]\n%s = %s\n%s", b->key, b->value, svc_tail);
		load_bad(t);
		/* Long values may be cut in the message; their start must be there. */
		char start[40];
		snprintf(start, sizeof(start), "%s", b->value);
		cr_assert(has_error(2, b->key, start), "%s = %s: no error naming t.conf:2, the key and the value:\n%s",
		          b->key, b->value, errbuf);
		if (b->extra)
			assert_error(2, b->key, b->extra);
		cr_assert_eq(count_errors(), 1, "%s = %s: one error expected:\n%s", b->key, b->value, errbuf);
		free(t);
	}
}

static const struct badval bad_service[] = {
	{"backlog", "0", NULL},
	{"backlog", "65536", NULL},
	{"backlog", "-1", NULL},
	{"backlog", "lots", NULL},
	{"balance", "random", NULL},
	{"balance", "Round-Robin", NULL},
	{"balance", "roundrobin", NULL},
	{"max_backends", "0", NULL},
	{"max_backends", "65537", NULL},
	{"max_capacity", "0", NULL},
	{"max_capacity", "65536", NULL},
	{"max_capacity", "1e3", NULL},
	{"socket_mode", "0", NULL},
	{"socket_mode", "0999", NULL},
	{"socket_mode", "10000", NULL},
	{"socket_mode", "u+rw", NULL},
	{"socket_owner", "no-such-user-hd", NULL},
	{"socket_group", "no-such-group-hd", NULL},
	{"allow_users", "no-such-user-hd", NULL},
	{"allow_users", "4294967295", NULL},
	{"allow_groups", "no-such-group-hd", NULL},
	{"allow_groups", "-1", NULL},
	{"listen", "sctp://0.0.0.0:80", NULL},
	{"listen", "udp:/0.0.0.0:80", NULL},
	{"listen", "unix-stream:/tmp/x.sock", NULL},
	{"listen", "unix-dgram:relative.sock", NULL},
	{"listen", "0.0.0.0:80", NULL},
	{"listen", "tcp://0.0.0.0", NULL},
	{"listen", "tcp://0.0.0.0:65536", NULL},
	{"listen", "tcp://0.0.0.0:8o", NULL},
	{"listen", "tcp://::1:80", NULL},
	{"listen", "tcp://[::1:80", NULL},
	{"listen", "tcp://[127.0.0.1]:80", NULL},
	{"listen", "tcp://:80", NULL},
	{"listen", "tcp://ho!st:80", NULL},
	{"listen", "unix:relative.sock", NULL},
	{"listen", "unix:@", NULL},
	{"listen", "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
	{"listen", "tcp://no-such-host.invalid:80", "cannot resolve"},
};

TEST(errors, bad_values_in_service)
{
	for (size_t i = 0; i < N_ELEMENTS(bad_service); i++) {
		const struct badval *b = &bad_service[i];
		char *t = textf("%s%s = %s\n", svc_tail, b->key, b->value);
		load_bad(t);
		char start[40];
		snprintf(start, sizeof(start), "%s", b->value);
		cr_assert(has_error(3, b->key, start), "%s = %s: no error naming t.conf:3, the key and the value:\n%s",
		          b->key, b->value, errbuf);
		if (b->extra)
			assert_error(3, b->key, b->extra);
		cr_assert_eq(count_errors(), 1, "%s = %s: one error expected:\n%s", b->key, b->value, errbuf);
		free(t);
	}
}

TEST(errors, bad_item_in_a_list)
{
	load_bad("[service web]\n"
	         "listen = tcp://127.0.0.1:1, sctp://127.0.0.1:2, tcp://127.0.0.1:3\n"
	         "allow_users = root no-such-user-hd daemon\n"
	         "allow_groups = adm, no-such-group-hd\n");
	assert_error(2, "listen", "sctp://127.0.0.1:2");
	assert_error(3, "allow_users", "no-such-user-hd");
	assert_error(4, "allow_groups", "no-such-group-hd");
	cr_assert_eq(count_errors(), 3, "%s", errbuf);
}

TEST(errors, unknown_key_in_each_section)
{
	load_bad("[handoffd]\nlisten = tcp://127.0.0.1:1\n[service web]\nlisten = tcp://127.0.0.1:1\n"
	         "control_mode = 0600\nfrobnicate = yes\n");
	assert_error(2, "listen", "[handoffd]");
	assert_error(5, "control_mode", "[service web]");
	assert_error(6, "frobnicate", "[service web]");
	cr_assert_eq(count_errors(), 3, "%s", errbuf);

	/* Keys are case-sensitive. */
	load_bad("[handoffd]\nLog_Level = info\n[service web]\nListen = tcp://127.0.0.1:1\n");
	assert_error(2, "Log_Level", "unknown key");
	assert_error(4, "Listen", "unknown key");
}

TEST(errors, unknown_section)
{
	load_bad("[handoffd]\n[frobnicate]\nkey = value\nother = 1\n[service web]\nlisten = tcp://127.0.0.1:1\n");
	assert_error(2, "frobnicate", "section");
	/* Keys of the unknown section are not reported again. */
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	static const char *const bad[] = {"[service]", "[Service web]", "[services web]", "[handoffd2]", "[]",
	                                  "[global]"};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *t = textf("%s\n%s", bad[i], svc_tail);
		load_bad(t);
		assert_error(1, "unknown section", NULL);
		free(t);
	}

	load_bad("[service web\nlisten = tcp://127.0.0.1:1\n");
	assert_error(1, "]", NULL);
}

TEST(errors, bad_service_name)
{
	char longname[PROTO_MAX_NAME + 2];
	memset(longname, 'n', PROTO_MAX_NAME + 1);
	longname[PROTO_MAX_NAME + 1] = '\0';
	const char *const bad[] = {"bad/name", "a b", "semi;colon", "caf\xc3\xa9", "x*", longname, ""};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *t = textf("[handoffd]\n[service %s]\nlisten = tcp://127.0.0.1:1\n%s", bad[i], svc_tail);
		load_bad(t);
		char quoted[100];
		snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
		assert_error(2, "service name", quoted);
		/* The section's keys are not reported on top. */
		cr_assert_eq(count_errors(), 1, "[service %s]:\n%s", bad[i], errbuf);
		free(t);
	}
}

TEST(errors, duplicate_service)
{
	load_bad("[service web]\nlisten = tcp://127.0.0.1:1\n\n[service web]\nlisten = tcp://127.0.0.1:2\n");
	assert_error(4, "web", "line 1");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
}

struct dupkey {
	bool main;
	const char *key;
	const char *value;
};

static const struct dupkey dups[] = {
	{true, "control_socket", "/tmp/hd-test.sock"},
	{true, "control_mode", "0600"},
	{true, "control_group", "daemon"},
	{true, "admin_group", "adm"},
	{true, "user", "nobody"},
	{true, "group", "nogroup"},
	{true, "log_level", "info"},
	{true, "max_control_per_uid", "5"},
	{true, "max_control", "10"},
	{true, "handshake_timeout", "1s"},
	{true, "shutdown_timeout", "1s"},
	{false, "backlog", "5"},
	{false, "balance", "round-robin"},
	{false, "max_backends", "2"},
	{false, "max_capacity", "3"},
	{false, "socket_mode", "0600"},
	{false, "socket_owner", "daemon"},
	{false, "socket_group", "daemon"},
};

TEST(errors, duplicate_scalar_key)
{
	for (size_t i = 0; i < N_ELEMENTS(dups); i++) {
		const struct dupkey *d = &dups[i];
		char *t;
		int line;
		if (d->main) {
			t = textf("[handoffd]\n%s = %s\n; between\n%s = %s\n%s", d->key, d->value, d->key, d->value,
			          svc_tail);
			line = 4;
		} else {
			t = textf("%s%s = %s\n; between\n%s = %s\n", svc_tail, d->key, d->value, d->key, d->value);
			line = 5;
		}
		load_bad(t);
		assert_error(line, d->key, "twice");
		cr_assert_eq(count_errors(), 1, "%s:\n%s", d->key, errbuf);
		free(t);
	}
	/* The same key in two services is fine. */
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\nbacklog = 1\n"
	                           "[service b]\nlisten = tcp://127.0.0.1:2\nbacklog = 2\n");
	cr_assert_eq(c->services[1].backlog, 2);
	config_free(c);
}

TEST(errors, repeatable_keys_are_not_duplicates)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\nlisten = tcp://127.0.0.1:2\n"
	                           "allow_users = root\nallow_users = daemon\n"
	                           "allow_groups = adm\nallow_groups = users\n");
	cr_assert_eq(c->services[0].nlisten, 2);
	cr_assert_eq(c->services[0].nallow_uids, 2);
	cr_assert_eq(c->services[0].nallow_gids, 2);
	config_free(c);
}

TEST(errors, key_outside_section)
{
	load_bad("log_level = debug\n[service web]\nlisten = tcp://127.0.0.1:1\n");
	assert_error(1, "log_level", "section");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("; comment\n\nlisten = tcp://127.0.0.1:1\n[service web]\nlisten = tcp://127.0.0.1:2\n");
	assert_error(3, "listen", "section");
}

TEST(errors, empty_value)
{
	load_bad("[handoffd]\nlog_level =\n[service web]\nlisten = tcp://127.0.0.1:1\nbalance = \n");
	assert_error(2, "log_level", "empty");
	assert_error(5, "balance", "empty");
	cr_assert_eq(count_errors(), 2, "%s", errbuf);

	load_bad("[service web]\nlisten =\n");
	assert_error(2, "listen", "empty");

	/* A list of nothing but separators. */
	load_bad("[service web]\nlisten = tcp://127.0.0.1:1\nallow_users = , ,\nlisten = ,\n");
	assert_error(3, "allow_users", "empty");
	assert_error(4, "listen", "empty");
}

/* A comment line of exactly n bytes (without its newline). */
static char *comment_line(size_t n)
{
	char *s = malloc(n + 1);
	cr_assert_not_null(s);
	memset(s, 'x', n);
	s[0] = ';';
	s[n] = '\0';
	return s;
}

TEST(errors, line_too_long)
{
	/* 197 bytes is the longest line (Debian's inih: 200 with "\r\n\0"). */
	char *ok = comment_line(197);
	char *t = textf("%s%s\n", svc_tail, ok);
	struct config *c = load_ok(t);
	config_free(c);
	free(t);
	t = textf("%s%s\r\n", svc_tail, ok);
	c = load_ok(t);
	config_free(c);
	free(t);

	char *bad = comment_line(198);
	t = textf("%s%s\n", svc_tail, bad);
	load_bad(t);
	assert_error(3, "too long", NULL);
	free(t);
	free(ok);
	free(bad);

	/* A long key line is refused, not truncated and half-applied. */
	char pad[200];
	memset(pad, ' ', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	t = textf("[service web]\nlisten = tcp://127.0.0.1:1\nbacklog = 5%sbalance = round-robin\n", pad);
	load_bad(t);
	assert_error(3, "too long", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(t);

	/* The last line, without a newline. */
	bad = comment_line(250);
	t = textf("%s%s", svc_tail, bad);
	load_bad(t);
	assert_error(3, "too long", NULL);
	free(t);
	free(bad);
}

TEST(errors, line_numbers_after_a_long_line)
{
	char *bad = comment_line(300);
	char *t = textf("[handoffd]\n%s\nlog_level = loud\n%s\n[service web]\nlisten = tcp://127.0.0.1:1\nfoo = 1\n",
	                bad, bad);
	load_bad(t);
	assert_error(2, "too long", NULL);
	assert_error(3, "log_level", "loud");
	assert_error(4, "too long", NULL);
	assert_error(7, "foo", NULL);
	cr_assert_eq(count_errors(), 4, "%s", errbuf);
	free(t);
	free(bad);
}

/* Longer than the reader's own 4 KiB line buffer. */
TEST(errors, very_long_line)
{
	char *bad = comment_line(5000);
	char *t = textf("%s%s\nfoo = 1\n", svc_tail, bad);
	load_bad(t);
	assert_error(3, "too long", NULL);
	assert_error(4, "foo", NULL);
	free(t);
	free(bad);
}

/* Far longer than any stack: must be refused, not crash. */
TEST(errors, huge_line)
{
	char *bad = comment_line(16 << 20);
	char *t = textf("%s%s\nfoo = 1\n", svc_tail, bad);
	free(bad);
	load_bad(t);
	assert_error(3, "too long", NULL);
	assert_error(4, "foo", NULL);
	free(t);
}

TEST(errors, syntax_error)
{
	load_bad("[service web]\nlisten = tcp://127.0.0.1:1\nthis line has no equals sign\n");
	assert_error(3, "syntax", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("[service web]\nlisten\n");
	assert_error(2, "syntax", NULL);
}

TEST(errors, out_of_range_lists)
{
	/* 65 listen addresses. */
	char *t = listen_lines(5, 13);
	load_bad(t);
	assert_error(6, "listen", "too many");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(t);

	/* 257 allow_groups entries. */
	t = textf("[service a]\nlisten = tcp://127.0.0.1:1\n");
	for (int line = 0; line < 5; line++) {
		char *l = textf("%sallow_groups =", t);
		free(t);
		t = l;
		for (int i = 0; i < (line < 4 ? 64 : 1); i++) {
			l = textf("%s 0", t);
			free(t);
			t = l;
		}
		l = textf("%s\n", t);
		free(t);
		t = l;
	}
	load_bad(t);
	assert_error(7, "allow_groups", "too many");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(t);
}

TEST(errors, too_many_services)
{
	size_t cap = (size_t)(CFG_MAX_SERVICES + 1) * 16 + 1, len = 0;
	char *t = malloc(cap);
	cr_assert_not_null(t);
	for (int i = 0; i <= CFG_MAX_SERVICES; i++)
		len += (size_t)snprintf(t + len, cap - len, "[service s%d]\n", i);
	load_bad(t);
	assert_error(CFG_MAX_SERVICES + 1, "too many services", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(t);
}

TEST(errors, socket_settings_need_a_unix_path_listener)
{
	static const char *const keys[] = {"socket_mode = 0660", "socket_owner = daemon", "socket_group = daemon"};
	for (size_t i = 0; i < N_ELEMENTS(keys); i++) {
		char *t = textf("[handoffd]\n[service web]\nlisten = tcp://127.0.0.1:1, unix:@hd-abstract\n%s\n",
		                keys[i]);
		load_bad(t);
		assert_error(2, "web", "socket_mode");
		cr_assert_eq(count_errors(), 1, "%s", errbuf);
		free(t);
	}
	struct config *c = load_ok("[service web]\nlisten = tcp://127.0.0.1:1 unix:/tmp/hd-x.sock\n"
	                           "socket_mode = 0660\nsocket_owner = daemon\nsocket_group = daemon\n");
	config_free(c);
}

TEST(errors, same_address_twice)
{
	/* On one line. */
	load_bad("[service web]\nlisten = tcp://127.0.0.1:1 tcp://127.0.0.1:1\n");
	assert_error(2, "tcp://127.0.0.1:1", "at t.conf:2");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* On two lines, spelled differently. */
	load_bad("[service web]\nlisten = tcp://127.0.0.1:80\n; x\nlisten = tcp://127.0.0.1:00080\n");
	assert_error(4, "tcp://127.0.0.1:80", "at t.conf:2");

	/* In two services. */
	load_bad("[service a]\nlisten = unix:/tmp/hd-same.sock\n[service b]\nlisten = unix:/tmp/hd-same.sock\n");
	assert_error(4, "unix:/tmp/hd-same.sock", "at t.conf:2");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("[service a]\nlisten = unix:@same\n[service b]\nlisten = tcp://127.0.0.1:1, unix:@same\n");
	assert_error(4, "unix:@same", "at t.conf:2");

	/* A path and an abstract name of the same spelling are different. */
	struct config *c = load_ok("[service a]\nlisten = unix:/tmp/x\n[service b]\nlisten = unix:@/tmp/x\n");
	config_free(c);
}

TEST(errors, listen_on_the_control_socket)
{
	load_bad("[handoffd]\ncontrol_socket = /tmp/hd-ctl.sock\n[service web]\nlisten = tcp://127.0.0.1:1\n"
	         "listen = unix:/tmp/hd-ctl.sock\n");
	assert_error(5, "unix:/tmp/hd-ctl.sock", "control socket");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("[handoffd]\ncontrol_socket = @hd-ctl\n[service web]\nlisten = unix:@hd-ctl\n");
	assert_error(4, "unix:@hd-ctl", "control socket");

	/* The default control socket counts too. */
	load_bad("[service web]\nlisten = unix:/run/handoffd/control.sock\n");
	assert_error(2, "control socket", NULL);
}

TEST(errors, no_services)
{
	load_bad("[handoffd]\nlog_level = info\n\n");
	assert_error(3, "service", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("");
	assert_error(1, "service", NULL);

	load_bad("; only\n; comments\n");
	assert_error(2, "service", NULL);
}

TEST(errors, service_without_listen)
{
	load_bad("[service a]\nbacklog = 5\n[service b]\nlisten = tcp://127.0.0.1:1\n[service c]\n");
	assert_error(1, "a", "listen");
	assert_error(5, "c", "listen");
	cr_assert_eq(count_errors(), 2, "%s", errbuf);
}

TEST(errors, many_errors_all_reported)
{
	load_bad("[handoffd]\n"                        /* 1 */
	         "log_level = loud\n"                  /* 2 */
	         "bogus = 1\n"                         /* 3 */
	         "max_control = 0\n"                   /* 4 */
	         "[service bad/name]\n"                /* 5 */
	         "listen = tcp://127.0.0.1:1\n"        /* 6 */
	         "[service web]\n"                     /* 7 */
	         "listen = sctp://127.0.0.1:1\n"       /* 8 */
	         "backlog = many\n"                    /* 9 */
	         "balance = random\n"                  /* 10 */
	         "colour = blue\n"                     /* 11 */
	         "[service web]\n"                     /* 12 */
	         "[elsewhere]\n");                     /* 13 */
	assert_error(2, "log_level", "loud");
	assert_error(3, "bogus", NULL);
	assert_error(4, "max_control", NULL);
	assert_error(5, "bad/name", NULL);
	assert_error(8, "listen", "sctp://127.0.0.1:1");
	assert_error(9, "backlog", "many");
	assert_error(10, "balance", "random");
	assert_error(11, "colour", NULL);
	assert_error(12, "web", "twice");
	assert_error(13, "elsewhere", NULL);
	cr_assert_eq(count_errors(), 10, "%s", errbuf);
}

/* A syntax error must be reported whatever else is wrong in the file, and
 * every such line, not only the first. */
TEST(errors, syntax_error_among_other_errors)
{
	load_bad("[service web]\n"                     /* 1 */
	         "listen = tcp://127.0.0.1:1\n"        /* 2 */
	         "colour = blue\n"                     /* 3 */
	         "this line has no equals sign\n");    /* 4 */
	assert_error(3, "colour", NULL);
	assert_error(4, "syntax", NULL);

	load_bad("[service web]\n"                     /* 1 */
	         "listen = tcp://127.0.0.1:1\n"        /* 2 */
	         "garbage one\n"                       /* 3 */
	         "backlog = 5\n"                       /* 4 */
	         "garbage two\n");                     /* 5 */
	assert_error(3, "syntax", NULL);
	assert_error(5, "syntax", NULL);
}

TEST(errors, message_buffer)
{
	struct config *c = NULL;
	const char *bad = "[handoffd]\nlog_level = loud\nfoo = 1\nbar = 2\n";
	/* No buffer at all. */
	cr_assert_eq(config_load_string(bad, "t.conf", &c, NULL, 0), -EINVAL);
	cr_assert_null(c);
	/* A small one: cut, but terminated and not overrun. */
	char small[24];
	memset(small, '#', sizeof(small));
	char guard = small[sizeof(small) - 1];
	cr_assert_eq(config_load_string(bad, "t.conf", &c, small, sizeof(small) - 1), -EINVAL);
	cr_assert_lt(strlen(small), sizeof(small) - 1);
	cr_assert_eq(small[sizeof(small) - 1], guard, "error buffer overrun");
	cr_assert_eq(strncmp(small, "t.conf:2: ", 10), 0, "%s", small);
	/* One byte. */
	char one[1] = {'#'};
	cr_assert_eq(config_load_string(bad, "t.conf", &c, one, 1), -EINVAL);
	cr_assert_eq(one[0], '\0');
	/* Success clears the buffer. */
	char ok[64] = "stale";
	cr_assert_eq(config_load_string("[service a]\nlisten = tcp://127.0.0.1:1\n", "t.conf", &c, ok, sizeof(ok)), 0);
	cr_assert_str_eq(ok, "");
	config_free(c);
}

TEST(errors, name_is_used_in_messages)
{
	struct config *c = NULL;
	char err[512];
	cr_assert_eq(config_load_string("[handoffd]\nfoo = 1\n", "/etc/handoffd/x.conf", &c, err, sizeof(err)),
	             -EINVAL);
	cr_assert(has_error_in(err, "/etc/handoffd/x.conf", 2, "foo", NULL), "%s", err);
}

/* ===================== config_load_file ===================== */

static char tmpdir[64];

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
		cr_assert_not_null(mkdtemp(tmpdir));
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "we");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
	return path;
}

static void remove_files(void)
{
	if (!tmpdir[0])
		return;
	DIR *d = opendir(tmpdir);
	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char p[400];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		cr_assert_eq(unlink(p), 0);
	}
	closedir(d);
	cr_assert_eq(rmdir(tmpdir), 0);
	tmpdir[0] = '\0';
}

TEST(file, missing_file)
{
	struct config *c = NULL;
	char err[512] = "stale";
	const char *path = "/nonexistent-handoffd-test/handoffd.conf";
	cr_assert_eq(config_load_file(path, &c, err, sizeof(err)), -ENOENT);
	cr_assert_null(c);
	cr_assert(strstr(err, path), "the message names the file: %s", err);
	cr_assert(strstr(err, strerror(ENOENT)), "the message says why: %s", err);
	cr_assert_eq(config_load_file(path, &c, NULL, 0), -ENOENT);
}

/* File tests remove their files before asserting anything, so that a
 * failure leaves nothing in /tmp. */

TEST(file, full_config_from_a_file)
{
	char p[128];
	snprintf(p, sizeof(p), "%s", write_file("handoffd.conf", full_text));
	struct config *c = NULL;
	char err[512];
	int rc = config_load_file(p, &c, err, sizeof(err));
	remove_files();
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(c->file, p);
	cr_assert_eq(c->nservices, 2);
	cr_assert_eq(c->services[0].nlisten, 5);
	cr_assert_eq(c->services[1].line, 31);
	cr_assert_eq(c->log_level, LOG_LVL_DEBUG);
	config_free(c);
}

TEST(file, errors_name_the_file)
{
	char p[128];
	snprintf(p, sizeof(p), "%s", write_file("bad.conf", "[handoffd]\n\nlog_level = loud\n[service web]\n"));
	struct config *c = NULL;
	char err[1024];
	int rc = config_load_file(p, &c, err, sizeof(err));
	remove_files();
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(c);
	cr_assert(has_error_in(err, p, 3, "log_level", "loud"), "%s", err);
}

TEST(file, long_lines)
{
	char *bad = comment_line(300);
	char *ok = comment_line(197);
	char *t1 = textf("%s%s\nfoo = 1\n", svc_tail, bad);
	/* 197 bytes is fine in a file too, also as the last line without a
	 * newline. */
	char *t2 = textf("%s%s\n%s", svc_tail, ok, ok);
	char p1[128], p2[128];
	snprintf(p1, sizeof(p1), "%s", write_file("long.conf", t1));
	snprintf(p2, sizeof(p2), "%s", write_file("ok.conf", t2));
	free(t1);
	free(t2);
	free(bad);
	free(ok);
	struct config *c1 = NULL, *c2 = NULL;
	char err1[1024], err2[1024];
	int rc1 = config_load_file(p1, &c1, err1, sizeof(err1));
	int rc2 = config_load_file(p2, &c2, err2, sizeof(err2));
	remove_files();
	cr_assert_eq(rc1, -EINVAL);
	cr_assert(has_error_in(err1, p1, 3, "too long", NULL), "%s", err1);
	cr_assert(has_error_in(err1, p1, 4, "foo", NULL), "%s", err1);
	cr_assert_eq(rc2, 0, "%s", err2);
	config_free(c2);
}

/* Write text to a file, open it and remove it at once, so that a crash
 * leaves nothing behind; *ret_path names it through /proc/self/fd. */
static int open_removed(const char *text, char *ret_path, size_t size)
{
	int fd = open(write_file("gone.conf", text), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	remove_files();
	snprintf(ret_path, size, "/proc/self/fd/%d", fd);
	return fd;
}

TEST(file, very_long_line)
{
	char *bad = comment_line(5000);
	char *t = textf("%s%s\nfoo = 1\n", svc_tail, bad);
	free(bad);
	char p[64];
	int fd = open_removed(t, p, sizeof(p));
	free(t);
	struct config *c = NULL;
	char err[1024];
	int rc = config_load_file(p, &c, err, sizeof(err));
	close(fd);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(has_error_in(err, p, 3, "too long", NULL), "%s", err);
	cr_assert(has_error_in(err, p, 4, "foo", NULL), "%s", err);
}

/* Far longer than any stack: must be refused, not crash. */
TEST(file, huge_line)
{
	char *bad = comment_line(16 << 20);
	char *t = textf("%s%s\nfoo = 1\n", svc_tail, bad);
	free(bad);
	char p[64];
	int fd = open_removed(t, p, sizeof(p));
	free(t);
	struct config *c = NULL;
	char err[1024];
	int rc = config_load_file(p, &c, err, sizeof(err));
	close(fd);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(has_error_in(err, p, 3, "too long", NULL), "%s", err);
	cr_assert(has_error_in(err, p, 4, "foo", NULL), "%s", err);
}

/* ===================== issue 3: the keys of a service ===================== */

/* Load text that must be refused with exactly one error, at line, naming
 * n1 (and n2). */
#define assert_only_error(text, line, n1, n2)                                                          \
	do {                                                                                               \
		load_bad(text);                                                                                \
		assert_error((line), (n1), (n2));                                                              \
		cr_assert_eq(count_errors(), 1, "one error expected for:\n%s\n--- got ---\n%s", (text), errbuf); \
	} while (0)

static bool has_gid(const gid_t *v, int n, gid_t g)
{
	for (int i = 0; i < n; i++)
		if (v[i] == g)
			return true;
	return false;
}

/* A uid that has no passwd entry on this system. */
static uid_t unknown_uid(void)
{
	for (uid_t u = 42420; u < 52420; u++)
		if (!getpwuid(u))
			return u;
	cr_assert_fail("every uid from 42420 has a passwd entry");
	return 0;
}

TEST(issue3, defaults)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_str_eq(c->inetd_conf, "");
	cr_assert_eq(s->mode, MODE_ACCEPT);
	cr_assert(!s->opt.reuseport);
	cr_assert(!s->opt.freebind);
	cr_assert(!s->opt.keepalive);
	cr_assert(!s->opt.nodelay);
	cr_assert_eq(s->opt.ipv6only, -1, "ipv6only defaults to -1 (the kernel's choice per address)");
	cr_assert_eq(s->opt.defer_accept, 0);
	cr_assert_eq(s->opt.rcvbuf, 0);
	cr_assert_eq(s->opt.sndbuf, 0);
	cr_assert_str_eq(s->opt.bind_device, "");
	cr_assert_null(s->exec_path);
	cr_assert_null(s->exec_argv);
	cr_assert_eq(s->exec_argc, 0);
	cr_assert_eq(s->exec_uid, (uid_t)-1);
	cr_assert_eq(s->exec_gid, (gid_t)-1);
	cr_assert_null(s->exec_groups);
	cr_assert_eq(s->nexec_groups, 0);
	cr_assert_str_eq(s->exec_argv0, "");
	cr_assert(!s->exec_systemd);
	cr_assert_eq(s->on_no_backend, NOB_WAIT);
	cr_assert_eq(s->max_children, 256);
	cr_assert_eq(s->spawn_rate.count, 256, "inetd's default");
	cr_assert_eq(s->spawn_rate.per_ms, 60000);
	cr_assert_eq(s->spawn_pause_ms, 60000);
	cr_assert_eq(s->builtin, BUILTIN_NONE);
	cr_assert_str_eq(s->tcpmux_name, "");
	cr_assert(!s->tcpmux_plus);
	cr_assert_eq(s->nallow_from, 0);
	cr_assert_eq(s->ndeny_from, 0);
	cr_assert(!s->has_client_allow);
	cr_assert_eq(s->nclient_uids, 0);
	cr_assert_eq(s->nclient_gids, 0);
	cr_assert_eq(s->max_connections, 0);
	cr_assert_eq(s->max_per_source, 0);
	cr_assert_eq(s->rate.count, 0);
	cr_assert_eq(s->rate_per_source.count, 0);
	cr_assert_eq(s->limit_pause_ms, 0);
	cr_assert_eq(s->inetd_line, 0);
	cr_assert_null(config_find_tcpmux(c, "a"));
	config_free(c);
}

TEST(issue3, new_listen_schemes)
{
	struct config *c = load_ok("[service dns]\n"
	                           "listen = udp://127.0.0.1:5353, udp://[::1]:5353 udp://*:5354\n"
	                           "listen = unix-dgram:/tmp/hd-dg.sock unix-seqpacket:@hd-sp\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_eq(s->nlisten, 5);
	static const char *const texts[] = {"udp://127.0.0.1:5353", "udp://[::1]:5353", "udp://*:5354",
	                                    "unix-dgram:/tmp/hd-dg.sock", "unix-seqpacket:@hd-sp"};
	static const int types[] = {SOCK_DGRAM, SOCK_DGRAM, SOCK_DGRAM, SOCK_DGRAM, SOCK_SEQPACKET};
	for (int i = 0; i < 5; i++) {
		cr_assert_str_eq(s->listen[i].text, texts[i]);
		cr_assert_eq(s->listen[i].spec.socktype, types[i], "%s", texts[i]);
		cr_assert_eq(s->listen[i].nbound, 1, "%s", texts[i]);
	}
	cr_assert_eq(s->listen[0].spec.kind, ADDR_UDP);
	cr_assert_eq(s->listen[2].bound[0].dual_stack, 1);
	cr_assert_eq(s->listen[3].spec.kind, ADDR_UNIX);
	config_free(c);

	/* tcp:// and udp:// on the same port are two listeners. */
	c = load_ok("[service e]\nlisten = tcp://127.0.0.1:7 udp://127.0.0.1:7\nbuiltin = echo\n");
	cr_assert_eq(c->services[0].nlisten, 2);
	config_free(c);
}

TEST(issue3, mode)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\nmode = listen\n"
	                           "[service b]\nlisten = tcp://127.0.0.1:2\nmode = accept\n"
	                           "[service c]\nlisten = unix-seqpacket:/tmp/hd-c.sock udp://127.0.0.1:3\nmode = listen\n");
	cr_assert_eq(c->services[0].mode, MODE_LISTEN);
	cr_assert_eq(c->services[1].mode, MODE_ACCEPT);
	cr_assert_eq(c->services[2].mode, MODE_LISTEN, "a stream (seqpacket) listener beside a datagram one");
	config_free(c);
}

TEST(issue3, exec_and_its_user)
{
	struct config *c = load_ok("[service cat]\n"                  /* 1 */
	                           "listen = tcp://127.0.0.1:1\n"     /* 2 */
	                           "exec = /bin/cat\n"                /* 3 */
	                           "exec_user = root\n");             /* 4 */
	const struct cfg_service *s = &c->services[0];
	cr_assert_str_eq(s->exec_path, "/bin/cat");
	cr_assert_eq(s->exec_argc, 1);
	cr_assert_not_null(s->exec_argv);
	cr_assert_str_eq(s->exec_argv[0], "/bin/cat");
	cr_assert_null(s->exec_argv[1], "exec_argv is NULL-terminated");
	cr_assert_eq(s->exec_line, 3);
	cr_assert_eq(s->exec_uid, 0);
	cr_assert_eq(s->exec_gid, 0);
	cr_assert_str_eq(s->exec_user_name, "root");
	cr_assert_geq(s->nexec_groups, 1);
	cr_assert(has_gid(s->exec_groups, s->nexec_groups, 0), "root's groups lack gid 0");
	cr_assert_eq(s->on_no_backend, NOB_SPAWN, "exec makes on_no_backend default to spawn");
	cr_assert_eq(s->max_children, 256);
	cr_assert(!s->exec_systemd);
	config_free(c);

	/* nobody: its primary group and the supplementary ones of initgroups. */
	c = load_ok("[service cat]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = nobody\n");
	s = &c->services[0];
	cr_assert_eq(s->exec_uid, uid_of("nobody"));
	cr_assert_eq(s->exec_gid, primary_gid_of("nobody"));
	cr_assert_str_eq(s->exec_user_name, "nobody");
	gid_t want[64];
	int nwant = 64;
	cr_assert_geq(getgrouplist("nobody", primary_gid_of("nobody"), want, &nwant), 0);
	cr_assert_eq(s->nexec_groups, nwant);
	for (int i = 0; i < nwant; i++)
		cr_assert(has_gid(s->exec_groups, s->nexec_groups, want[i]), "group %u missing", (unsigned)want[i]);
	config_free(c);

	/* exec_group overrides the primary group (and is in the groups). */
	c = load_ok("[service cat]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = nobody\n"
	            "exec_group = daemon\n");
	s = &c->services[0];
	cr_assert_eq(s->exec_uid, uid_of("nobody"));
	cr_assert_eq(s->exec_gid, gid_of("daemon"));
	cr_assert(has_gid(s->exec_groups, s->nexec_groups, gid_of("daemon")));
	config_free(c);

	/* Numbers: a uid with a passwd entry takes its name and group... */
	c = load_ok("[service cat]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = 1\n");
	s = &c->services[0];
	cr_assert_eq(s->exec_uid, 1);
	cr_assert_eq(s->exec_gid, primary_gid_of("daemon"));
	cr_assert_str_eq(s->exec_user_name, "daemon");
	config_free(c);

	/* ...one without needs exec_group, and has only that group. */
	uid_t u = unknown_uid();
	char *t = textf("[service cat]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = %u\nexec_group = 4242\n",
	                (unsigned)u);
	c = load_ok(t);
	s = &c->services[0];
	cr_assert_eq(s->exec_uid, u);
	cr_assert_eq(s->exec_gid, 4242);
	cr_assert_str_eq(s->exec_user_name, "");
	cr_assert_eq(s->nexec_groups, 1);
	cr_assert_eq(s->exec_groups[0], 4242);
	config_free(c);
	free(t);

	t = textf("[service cat]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = %u\n", (unsigned)u);
	char uidtext[32];
	snprintf(uidtext, sizeof(uidtext), "uid %u", (unsigned)u);
	assert_only_error(t, 3, uidtext, "exec_group");
	free(t);
}

/* exec_groups are the supplementary groups initgroups(3) would set: those
 * that list the user in /etc/group, plus the primary one. Needs a user
 * with a supplementary group; a system without one skips the check. */
TEST(issue3, exec_supplementary_groups)
{
	char name[64] = "";
	gid_t primary = 0;
	int nwant = 0;
	setpwent();
	for (struct passwd *pw; (pw = getpwent());) {
		gid_t g[64];
		int n = 64;
		if (strlen(pw->pw_name) < sizeof(name) && getgrouplist(pw->pw_name, pw->pw_gid, g, &n) >= 0 && n > 1) {
			snprintf(name, sizeof(name), "%s", pw->pw_name);
			primary = pw->pw_gid;
			nwant = n;
			break;
		}
	}
	endpwent();
	if (!name[0]) {
		cr_log_warn("no user with supplementary groups here: not checked");
		return;
	}
	gid_t want[64];
	int n = 64;
	cr_assert_geq(getgrouplist(name, primary, want, &n), 0);
	cr_assert_eq(n, nwant);
	char *t = textf("[service s]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = %s\n", name);
	struct config *c = load_ok(t);
	const struct cfg_service *s = &c->services[0];
	cr_assert_eq(s->exec_gid, primary);
	cr_assert_eq(s->nexec_groups, nwant, "%s: %d groups, want %d", name, s->nexec_groups, nwant);
	for (int i = 0; i < nwant; i++)
		cr_assert(has_gid(s->exec_groups, s->nexec_groups, want[i]), "%s: group %u missing", name,
		          (unsigned)want[i]);
	config_free(c);
	free(t);
}

TEST(issue3, exec_words_and_quoting)
{
	struct config *c = load_ok("[service p]\nlisten = tcp://127.0.0.1:1\nexec_user = root\n"
	                           "exec = /usr/bin/printf \t \"a b\" \"say \\\"hi\\\"\" back\\\\slash \"c\\\\d\" \"\" "
	                           "x\"y z\"w \"e\\n\"\n");
	const struct cfg_service *s = &c->services[0];
	static const char *const want[] = {"/usr/bin/printf", "a b", "say \"hi\"", "back\\\\slash", "c\\d", "",
	                                   "xy zw", "e\\n"};
	cr_assert_eq(s->exec_argc, (int)N_ELEMENTS(want));
	for (size_t i = 0; i < N_ELEMENTS(want); i++)
		cr_assert_str_eq(s->exec_argv[i], want[i], "word %zu", i);
	cr_assert_null(s->exec_argv[N_ELEMENTS(want)]);
	cr_assert_str_eq(s->exec_path, "/usr/bin/printf");
	config_free(c);

	/* 64 words is the most. */
	char *t = textf("[service p]\nlisten = tcp://127.0.0.1:1\nexec_user = root\nexec = /bin/echo");
	for (int i = 1; i < CFG_MAX_ARGS; i++) {
		char *l = textf("%s a", t);
		free(t);
		t = l;
	}
	char *l = textf("%s\n", t);
	free(t);
	t = l;
	c = load_ok(t);
	cr_assert_eq(c->services[0].exec_argc, CFG_MAX_ARGS);
	cr_assert_null(c->services[0].exec_argv[CFG_MAX_ARGS]);
	config_free(c);
	free(t);
}

TEST(issue3, exec_argv0)
{
	struct config *c = load_ok("[service t]\nlisten = tcp://127.0.0.1:1\nexec = /usr/sbin/tcpd /usr/sbin/in.x -l\n"
	                           "exec_argv0 = in.telnetd\nexec_user = root\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_str_eq(s->exec_path, "/usr/sbin/tcpd", "exec_argv0 does not change the program");
	cr_assert_str_eq(s->exec_argv0, "in.telnetd");
	cr_assert_eq(s->exec_argc, 3);
	cr_assert_str_eq(s->exec_argv[0], "in.telnetd");
	cr_assert_str_eq(s->exec_argv[1], "/usr/sbin/in.x");
	cr_assert_str_eq(s->exec_argv[2], "-l");
	config_free(c);

	/* The longest argv[0] exec_argv0 holds. */
	char a0[sizeof(((struct cfg_service *)0)->exec_argv0)];
	memset(a0, 'a', sizeof(a0) - 1);
	a0[sizeof(a0) - 1] = '\0';
	char *t = textf("[service t]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_argv0 = %s\nexec_user = root\n", a0);
	c = load_ok(t);
	cr_assert_str_eq(c->services[0].exec_argv[0], a0);
	config_free(c);
	free(t);
}

/* BUG (reported): a longer exec_argv0 is cut to 127 bytes without a word;
 * it must be refused, naming the key and the line, like every value that
 * does not fit (inetd.c refuses such an argv[0] itself). */
TEST(issue3, exec_argv0_too_long_is_an_error)
{
	char a0[151];
	memset(a0, 'a', sizeof(a0) - 1);
	a0[sizeof(a0) - 1] = '\0';
	char *t = textf("[service t]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_argv0 = %s\nexec_user = root\n", a0);
	struct config *c = NULL;
	int rc = config_load_string(t, "t.conf", &c, errbuf, sizeof(errbuf));
	if (rc == 0) {
		size_t got = strlen(c->services[0].exec_argv[0]);
		config_free(c);
		free(t);
		cr_assert_fail("a 150-byte exec_argv0 was accepted and cut to %zu bytes", got);
	}
	assert_error(4, "exec_argv0", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(t);
}

TEST(issue3, exec_options)
{
	struct config *c = load_ok("[service s]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = root\n"
	                           "max_children = 1\nspawn_rate = 10/s\nspawn_pause = 1ms\nexec_activation = systemd\n"
	                           "on_no_backend = wait\n"
	                           "[service t]\nlisten = tcp://127.0.0.1:2\nexec = /bin/cat\nexec_user = root\n"
	                           "max_children = 65536\nspawn_rate = 256/min\nspawn_pause = 60m\nexec_activation = inetd\n"
	                           "on_no_backend = reject\n"
	                           "[service u]\nlisten = tcp://127.0.0.1:3\nexec = /bin/cat\nexec_user = root\n"
	                           "spawn_rate = 5/h\nspawn_pause = 10m\non_no_backend = spawn\n"
	                           "[service v]\nlisten = tcp://127.0.0.1:4\nexec = /bin/cat\nexec_user = root\n"
	                           "spawn_rate = none\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_eq(s->max_children, 1);
	cr_assert_eq(s->spawn_rate.count, 10);
	cr_assert_eq(s->spawn_rate.per_ms, 1000);
	cr_assert_eq(s->spawn_pause_ms, 1);
	cr_assert(s->exec_systemd);
	cr_assert_eq(s->on_no_backend, NOB_WAIT, "an explicit on_no_backend is kept with exec");
	s = &c->services[1];
	cr_assert_eq(s->max_children, 65536);
	cr_assert_eq(s->spawn_rate.count, 256);
	cr_assert_eq(s->spawn_rate.per_ms, 60000);
	cr_assert_eq(s->spawn_pause_ms, 3600000);
	cr_assert(!s->exec_systemd);
	cr_assert_eq(s->on_no_backend, NOB_REJECT);
	s = &c->services[2];
	cr_assert_eq(s->spawn_rate.count, 5);
	cr_assert_eq(s->spawn_rate.per_ms, 3600000);
	cr_assert_eq(s->spawn_pause_ms, 600000);
	cr_assert_eq(s->on_no_backend, NOB_SPAWN);
	s = &c->services[3];
	cr_assert_eq(s->spawn_rate.count, 0, "spawn_rate = none: no limit");
	config_free(c);

	/* on_no_backend without exec: wait and reject. */
	c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\non_no_backend = reject\n"
	            "[service b]\nlisten = tcp://127.0.0.1:2\non_no_backend = wait\n");
	cr_assert_eq(c->services[0].on_no_backend, NOB_REJECT);
	cr_assert_eq(c->services[1].on_no_backend, NOB_WAIT);
	config_free(c);
}

/* Rates: N/s, N/min, N/h and their long spellings, for spawn_rate, rate
 * and rate_per_source alike. */
TEST(issue3, rates)
{
	static const struct {
		const char *v;
		unsigned count, per_ms;
	} r[] = {{"1/s", 1, 1000},           {"200/sec", 200, 1000},       {"3/second", 3, 1000},
	         {"10/m", 10, 60000},        {"10/min", 10, 60000},        {"7/minute", 7, 60000},
	         {"5/h", 5, 3600000},        {"2/hour", 2, 3600000},       {"1000000/s", 1000000, 1000}};
	for (size_t i = 0; i < N_ELEMENTS(r); i++) {
		char *t = textf("[service a]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = root\n"
		                "spawn_rate = %s\nrate = %s\nrate_per_source = %s\n",
		                r[i].v, r[i].v, r[i].v);
		struct config *c = load_ok(t);
		const struct cfg_service *s = &c->services[0];
		cr_assert_eq(s->spawn_rate.count, r[i].count, "%s", r[i].v);
		cr_assert_eq(s->spawn_rate.per_ms, r[i].per_ms, "%s", r[i].v);
		cr_assert_eq(s->rate.count, r[i].count, "%s", r[i].v);
		cr_assert_eq(s->rate.per_ms, r[i].per_ms, "%s", r[i].v);
		cr_assert_eq(s->rate_per_source.count, r[i].count, "%s", r[i].v);
		cr_assert_eq(s->rate_per_source.per_ms, r[i].per_ms, "%s", r[i].v);
		config_free(c);
		free(t);
	}
}

TEST(issue3, builtins)
{
	static const struct {
		const char *name;
		enum builtin b;
	} b[] = {{"echo", BUILTIN_ECHO},       {"discard", BUILTIN_DISCARD}, {"chargen", BUILTIN_CHARGEN},
	         {"daytime", BUILTIN_DAYTIME}, {"time", BUILTIN_TIME},       {"tcpmux", BUILTIN_TCPMUX}};
	for (size_t i = 0; i < N_ELEMENTS(b); i++) {
		/* tcpmux is stream only; the others also over UDP. */
		char *t = textf("[service b]\nlisten = tcp://127.0.0.1:1%s\nbuiltin = %s\n",
		                b[i].b == BUILTIN_TCPMUX ? "" : ", udp://127.0.0.1:1", b[i].name);
		struct config *c = load_ok(t);
		const struct cfg_service *s = &c->services[0];
		cr_assert_eq(s->builtin, b[i].b, "%s", b[i].name);
		cr_assert_str_eq(config_builtin_name(s->builtin), b[i].name);
		cr_assert_eq(s->max_connections, 256, "%s: a builtin's connections are bounded by default", b[i].name);
		cr_assert_null(s->exec_argv);
		config_free(c);
		free(t);
	}
	cr_assert_str_eq(config_builtin_name(BUILTIN_NONE), "none");
	cr_assert_str_eq(config_builtin_name((enum builtin)99), "?");
	cr_assert_str_eq(config_builtin_name((enum builtin)-1), "?");

	/* An explicit max_connections is kept; a UDP-only builtin is fine, and
	 * allow_from, deny_from, rate and rate_per_source apply per datagram. */
	struct config *c = load_ok("[service e]\nlisten = tcp://127.0.0.1:7\nbuiltin = echo\nmax_connections = 3\n"
	                           "max_per_source = 1\n"
	                           "[service d]\nlisten = udp://127.0.0.1:13\nbuiltin = daytime\n"
	                           "allow_from = 127.0.0.0/8\ndeny_from = 127.0.0.2\nrate = 10/s\n"
	                           "rate_per_source = 1/s\nlimit_pause = 5s\n");
	cr_assert_eq(c->services[0].max_connections, 3);
	cr_assert_eq(c->services[0].max_per_source, 1);
	cr_assert_eq(c->services[1].builtin, BUILTIN_DAYTIME);
	cr_assert_eq(c->services[1].nallow_from, 1);
	cr_assert_eq(c->services[1].rate.count, 10);
	cr_assert_eq(c->services[1].limit_pause_ms, 5000);
	config_free(c);
}

TEST(issue3, tcpmux_names)
{
	struct config *c = load_ok("[service mux]\nlisten = tcp://127.0.0.1:1\nbuiltin = tcpmux\n"
	                           "[service ftp]\ntcpmux = FTP\nexec = /bin/cat\nexec_user = root\n"
	                           "[service web]\ntcpmux = +web.v2\n"
	                           "[service plain]\nlisten = tcp://127.0.0.1:2\n");
	const struct cfg_service *ftp = config_find_service(c, "ftp");
	const struct cfg_service *web = config_find_service(c, "web");
	cr_assert_str_eq(ftp->tcpmux_name, "FTP");
	cr_assert(!ftp->tcpmux_plus);
	cr_assert_eq(ftp->nlisten, 0, "a tcpmux service needs no listen address");
	cr_assert_str_eq(web->tcpmux_name, "web.v2", "the + is not part of the name");
	cr_assert(web->tcpmux_plus);
	cr_assert_eq(config_find_service(c, "mux")->builtin, BUILTIN_TCPMUX);

	/* config_find_tcpmux: case-insensitive, only tcpmux names. */
	cr_assert_eq(config_find_tcpmux(c, "FTP"), ftp);
	cr_assert_eq(config_find_tcpmux(c, "ftp"), ftp);
	cr_assert_eq(config_find_tcpmux(c, "fTp"), ftp);
	cr_assert_eq(config_find_tcpmux(c, "WEB.V2"), web);
	cr_assert_null(config_find_tcpmux(c, "+web.v2"));
	cr_assert_null(config_find_tcpmux(c, "plain"), "a service name is not a tcpmux name");
	cr_assert_null(config_find_tcpmux(c, "mux"));
	cr_assert_null(config_find_tcpmux(c, ""));
	cr_assert_null(config_find_tcpmux(c, "ft"));
	config_free(c);

	/* The longest name. */
	char name[PROTO_MAX_NAME + 1];
	memset(name, 'n', PROTO_MAX_NAME);
	name[PROTO_MAX_NAME] = '\0';
	char *t = textf("[service x]\ntcpmux = +%s\n", name);
	c = load_ok(t);
	cr_assert_str_eq(c->services[0].tcpmux_name, name);
	cr_assert_eq(config_find_tcpmux(c, name), &c->services[0]);
	config_free(c);
	free(t);
}

TEST(issue3, access_lists)
{
	struct config *c = load_ok("[service a]\n"
	                           "listen = tcp://127.0.0.1:1, unix:/tmp/hd-acl.sock\n"
	                           "allow_from = 192.0.2.0/24, 2001:db8::/32 10.0.0.1\n"
	                           "allow_from = ::1\n"
	                           "deny_from = 192.0.2.128/25\n"
	                           "allow_client_users = root, daemon 33\n"
	                           "allow_client_groups = adm\n"
	                           "allow_client_groups = 4242\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_eq(s->nallow_from, 4);
	cr_assert_eq(s->allow_from[0].family, AF_INET);
	cr_assert_eq(s->allow_from[0].prefix, 24);
	static const uint8_t net[4] = {192, 0, 2, 0};
	cr_assert(memcmp(s->allow_from[0].addr, net, 4) == 0);
	cr_assert_eq(s->allow_from[1].family, AF_INET6);
	cr_assert_eq(s->allow_from[1].prefix, 32);
	cr_assert_eq(s->allow_from[1].addr[0], 0x20);
	cr_assert_eq(s->allow_from[1].addr[1], 0x01);
	cr_assert_eq(s->allow_from[1].addr[2], 0x0d);
	cr_assert_eq(s->allow_from[1].addr[3], 0xb8);
	cr_assert_eq(s->allow_from[2].family, AF_INET);
	cr_assert_eq(s->allow_from[2].prefix, 32, "a bare address is one host");
	cr_assert_eq(s->allow_from[3].family, AF_INET6);
	cr_assert_eq(s->allow_from[3].prefix, 128);
	cr_assert_eq(s->allow_from[3].addr[15], 1);
	cr_assert_eq(s->ndeny_from, 1);
	cr_assert_eq(s->deny_from[0].prefix, 25);
	cr_assert_eq(s->deny_from[0].addr[3], 128);
	cr_assert(s->has_client_allow);
	cr_assert(!s->has_allow, "allow_client_* are not the backend allow_* keys");
	cr_assert_eq(s->nclient_uids, 3);
	cr_assert_eq(s->client_uids[0], 0);
	cr_assert_eq(s->client_uids[1], uid_of("daemon"));
	cr_assert_eq(s->client_uids[2], 33);
	cr_assert_eq(s->nclient_gids, 2);
	cr_assert_eq(s->client_gids[0], gid_of("adm"));
	cr_assert_eq(s->client_gids[1], 4242);
	config_free(c);

	/* udp:// counts as an IP listener; a tcpmux target needs none. */
	c = load_ok("[service d]\nlisten = udp://127.0.0.1:53\nbuiltin = echo\ndeny_from = 0.0.0.0/0\n"
	            "[service m]\ntcpmux = m\nallow_from = 127.0.0.1\n");
	cr_assert_eq(c->services[0].ndeny_from, 1);
	cr_assert_eq(c->services[1].nallow_from, 1);
	config_free(c);

	/* 256 entries is the most. */
	char *t = textf("[service a]\nlisten = tcp://127.0.0.1:1\n");
	for (int line = 0; line < 16; line++) {
		char *l = textf("%sdeny_from =", t);
		free(t);
		t = l;
		for (int i = 0; i < 16; i++) {
			l = textf("%s 10.0.%d.%d", t, line, i);
			free(t);
			t = l;
		}
		l = textf("%s\n", t);
		free(t);
		t = l;
	}
	c = load_ok(t);
	cr_assert_eq(c->services[0].ndeny_from, CFG_MAX_CIDRS);
	config_free(c);
	char *more = textf("%sdeny_from = 10.1.0.0/16\n", t);
	load_bad(more);
	assert_error(19, "deny_from", "too many");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(more);
	free(t);
}

TEST(issue3, limits)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1\nmax_connections = 1\nmax_per_source = 1\n"
	                           "rate = 200/s\nrate_per_source = 10/min\nlimit_pause = 500ms\n"
	                           "[service b]\nlisten = unix:/tmp/hd-b.sock\nmax_connections = 1048576\n"
	                           "max_per_source = 1048576\nrate = 1/h\nlimit_pause = 60m\n");
	const struct cfg_service *s = &c->services[0];
	cr_assert_eq(s->max_connections, 1);
	cr_assert_eq(s->max_per_source, 1);
	cr_assert_eq(s->rate.count, 200);
	cr_assert_eq(s->rate.per_ms, 1000);
	cr_assert_eq(s->rate_per_source.count, 10);
	cr_assert_eq(s->rate_per_source.per_ms, 60000);
	cr_assert_eq(s->limit_pause_ms, 500);
	s = &c->services[1];
	cr_assert_eq(s->max_connections, 1048576);
	cr_assert_eq(s->max_per_source, 1048576);
	cr_assert_eq(s->rate.count, 1);
	cr_assert_eq(s->rate.per_ms, 3600000);
	cr_assert_eq(s->limit_pause_ms, 3600000);
	config_free(c);
}

TEST(issue3, socket_options)
{
	struct config *c = load_ok("[service a]\nlisten = tcp://*:1\n"
	                           "reuseport = yes\nfreebind = true\nkeepalive = on\nnodelay = 1\nipv6only = yes\n"
	                           "defer_accept = 5s\nreceive_buffer = 256K\nsend_buffer = 4M\nbind_device = lo\n"
	                           "[service b]\nlisten = tcp://[::1]:2\n"
	                           "reuseport = no\nfreebind = false\nkeepalive = off\nnodelay = 0\nipv6only = no\n"
	                           "defer_accept = 0\nreceive_buffer = 65536\nsend_buffer = 1k\n"
	                           "[service c]\nlisten = udp://[::]:3\nipv6only = YES\nreuseport = On\n"
	                           "receive_buffer = 1024M\nsend_buffer = 1048576K\nbind_device = abcdefghijklmno\n"
	                           "[service d]\nlisten = tcp://127.0.0.1:4\ndefer_accept = 60\n"
	                           "[service e]\nlisten = tcp://127.0.0.1:5\ndefer_accept = 2m\nreceive_buffer = 1\n"
	                           "[service f]\nlisten = tcp://127.0.0.1:6\ndefer_accept = 3600s\n");
	const struct cfg_sockopts *o = &c->services[0].opt;
	cr_assert(o->reuseport && o->freebind && o->keepalive && o->nodelay);
	cr_assert_eq(o->ipv6only, 1);
	cr_assert_eq(o->defer_accept, 5, "defer_accept is kept in seconds");
	cr_assert_eq(o->rcvbuf, 256 * 1024);
	cr_assert_eq(o->sndbuf, 4 * 1024 * 1024);
	cr_assert_str_eq(o->bind_device, "lo");
	o = &c->services[1].opt;
	cr_assert(!o->reuseport && !o->freebind && !o->keepalive && !o->nodelay);
	cr_assert_eq(o->ipv6only, 0);
	cr_assert_eq(o->defer_accept, 0);
	cr_assert_eq(o->rcvbuf, 65536);
	cr_assert_eq(o->sndbuf, 1024);
	o = &c->services[2].opt;
	cr_assert_eq(o->ipv6only, 1);
	cr_assert(o->reuseport);
	cr_assert_eq(o->rcvbuf, 1 << 30);
	cr_assert_eq(o->sndbuf, 1 << 30);
	cr_assert_str_eq(o->bind_device, "abcdefghijklmno", "IF_NAMESIZE - 1 bytes");
	cr_assert_eq(c->services[3].opt.defer_accept, 60);
	cr_assert_eq(c->services[4].opt.defer_accept, 120);
	cr_assert_eq(c->services[4].opt.rcvbuf, 1);
	cr_assert_eq(c->services[5].opt.defer_accept, 3600);
	config_free(c);
}

/* ---- bad values and duplicates of the new keys ---- */

static const struct badval bad_service3[] = {
	{"mode", "wait", NULL},
	{"mode", "Listen", NULL},
	{"mode", "accept listen", NULL},
	{"exec", "bin/cat", "absolute"},
	{"exec_user", "no-such-user-hd", NULL},
	{"exec_user", "4294967295", NULL},
	{"exec_group", "no-such-group-hd", NULL},
	{"exec_activation", "LISTEN_FDS", NULL},
	{"exec_activation", "Systemd", NULL},
	{"on_no_backend", "respawn", NULL},
	{"on_no_backend", "Wait", NULL},
	{"max_children", "0", NULL},
	{"max_children", "65537", NULL},
	{"max_children", "-1", NULL},
	{"max_children", "lots", NULL},
	{"spawn_rate", "0/s", NULL},
	{"spawn_rate", "10", NULL},
	{"spawn_rate", "10/d", NULL},
	{"spawn_rate", "10/S", NULL},
	{"spawn_rate", "/s", NULL},
	{"spawn_rate", "-1/s", NULL},
	{"spawn_rate", "1000001/s", NULL},
	{"spawn_rate", "10/s/s", NULL},
	{"spawn_rate", "1.5/s", NULL},
	{"spawn_pause", "0", NULL},
	{"spawn_pause", "61m", NULL},
	{"spawn_pause", "3601s", NULL},
	{"spawn_pause", "2h", NULL},
	{"spawn_pause", "soon", NULL},
	{"builtin", "none", NULL},
	{"builtin", "Echo", NULL},
	{"builtin", "ftp", NULL},
	{"builtin", "echo discard", NULL},
	{"tcpmux", "+", NULL},
	{"tcpmux", "a b", NULL},
	{"tcpmux", "++x", NULL},
	{"tcpmux", "x/y", NULL},
	{"tcpmux", "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", NULL},
	{"allow_from", "192.0.2.0/33", NULL},
	{"allow_from", "2001:db8::/129", NULL},
	{"allow_from", "192.0.2.1/24", NULL},
	{"allow_from", "localhost", NULL},
	{"allow_from", "[::1]", NULL},
	{"deny_from", "10.0.0.0/8/8", NULL},
	{"deny_from", "10.0.0.0/-1", NULL},
	{"allow_client_users", "no-such-user-hd", NULL},
	{"allow_client_groups", "no-such-group-hd", NULL},
	{"max_connections", "0", NULL},
	{"max_connections", "1048577", NULL},
	{"max_connections", "1k", NULL},
	{"max_per_source", "0", NULL},
	{"max_per_source", "1048577", NULL},
	{"rate", "0/s", NULL},
	{"rate", "fast", NULL},
	{"rate", "200/fortnight", NULL},
	{"rate_per_source", "1/", NULL},
	{"rate_per_source", "2000000/s", NULL},
	{"limit_pause", "3601s", NULL},
	{"limit_pause", "61m", NULL},
	{"limit_pause", "2h", NULL},
	{"limit_pause", "-5s", NULL},
	{"reuseport", "maybe", NULL},
	{"reuseport", "2", NULL},
	{"freebind", "y", NULL},
	{"keepalive", "enabled", NULL},
	{"nodelay", "nope", NULL},
	{"ipv6only", "both", NULL},
	{"defer_accept", "500ms", NULL},
	{"defer_accept", "3601s", NULL},
	{"defer_accept", "61m", NULL},
	{"defer_accept", "-1", NULL},
	{"defer_accept", "later", NULL},
	{"receive_buffer", "0", NULL},
	{"receive_buffer", "1G", NULL},
	{"receive_buffer", "1025M", NULL},
	{"receive_buffer", "1048577K", NULL},
	{"receive_buffer", "64KB", NULL},
	{"receive_buffer", "-1", NULL},
	{"receive_buffer", "K", NULL},
	{"send_buffer", "0k", NULL},
	{"send_buffer", "1073741825", NULL},
	{"send_buffer", "lots", NULL},
	{"bind_device", "abcdefghijklmnop", NULL},
	{"bind_device", "eth0/1", NULL},
	{"bind_device", "eth 0", NULL},
};

TEST(issue3, bad_values)
{
	for (size_t i = 0; i < N_ELEMENTS(bad_service3); i++) {
		const struct badval *b = &bad_service3[i];
		char *t = textf("%s%s = %s\n", svc_tail, b->key, b->value);
		load_bad(t);
		char start[40];
		snprintf(start, sizeof(start), "%s", b->value);
		cr_assert(has_error(3, b->key, start), "%s = %s: no error naming t.conf:3, the key and the value:\n%s",
		          b->key, b->value, errbuf);
		if (b->extra)
			assert_error(3, b->key, b->extra);
		cr_assert_eq(count_errors(), 1, "%s = %s: one error expected:\n%s", b->key, b->value, errbuf);
		free(t);
	}
}

/* exec values whose words cannot be split: the reason is named. */
TEST(issue3, bad_exec_words)
{
	static const struct {
		const char *value;
		const char *why;
	} bad[] = {
		{"/bin/echo \"unterminated", "quote"},
		{"/bin/echo \"a\\\"", "quote"},
		{"\"/bin/echo", "quote"},
		{"\"\"", "absolute"},
		{"cat /bin/cat", "'cat'"},
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char *t = textf("%sexec = %s\nexec_user = root\n", svc_tail, bad[i].value);
		load_bad(t);
		assert_error(3, "exec", bad[i].why);
		cr_assert_eq(count_errors(), 1, "exec = %s:\n%s", bad[i].value, errbuf);
		free(t);
	}
	/* 65 words. */
	char *t = textf("%sexec_user = root\nexec = /bin/echo", svc_tail);
	for (int i = 0; i < CFG_MAX_ARGS; i++) {
		char *l = textf("%s a", t);
		free(t);
		t = l;
	}
	char *l = textf("%s\n", t);
	free(t);
	load_bad(l);
	assert_error(4, "exec", "too many");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	free(l);
}

static const struct dupkey dups3[] = {
	{false, "mode", "accept"},
	{false, "exec", "/bin/cat"},
	{false, "exec_argv0", "cat"},
	{false, "exec_user", "root"},
	{false, "exec_group", "root"},
	{false, "exec_activation", "inetd"},
	{false, "on_no_backend", "wait"},
	{false, "max_children", "5"},
	{false, "spawn_rate", "5/s"},
	{false, "spawn_pause", "5s"},
	{false, "builtin", "echo"},
	{false, "tcpmux", "x"},
	{false, "max_connections", "5"},
	{false, "max_per_source", "5"},
	{false, "rate", "5/s"},
	{false, "rate_per_source", "5/s"},
	{false, "limit_pause", "5s"},
	{false, "reuseport", "yes"},
	{false, "freebind", "yes"},
	{false, "keepalive", "yes"},
	{false, "nodelay", "yes"},
	{false, "ipv6only", "yes"},
	{false, "defer_accept", "5"},
	{false, "receive_buffer", "4K"},
	{false, "send_buffer", "4K"},
	{false, "bind_device", "lo"},
};

TEST(issue3, duplicate_scalar_keys)
{
	for (size_t i = 0; i < N_ELEMENTS(dups3); i++) {
		const struct dupkey *d = &dups3[i];
		char *t;
		int line;
		if (d->main) {
			t = textf("[handoffd]\n%s = %s\n; between\n%s = %s\n%s", d->key, d->value, d->key, d->value,
			          svc_tail);
			line = 4;
		} else {
			t = textf("%s%s = %s\n; between\n%s = %s\n", svc_tail, d->key, d->value, d->key, d->value);
			line = 5;
		}
		load_bad(t);
		assert_error(line, d->key, "twice");
		cr_assert_eq(count_errors(), 1, "%s:\n%s", d->key, errbuf);
		free(t);
	}
	/* The list keys repeat. */
	struct config *c = load_ok("[service a]\nlisten = tcp://127.0.0.1:1 unix:/tmp/hd-a.sock\n"
	                           "allow_from = 127.0.0.1\nallow_from = ::1\ndeny_from = 10.0.0.0/8\n"
	                           "deny_from = 10.1.0.0/16\nallow_client_users = root\nallow_client_users = daemon\n"
	                           "allow_client_groups = adm\nallow_client_groups = users\n");
	cr_assert_eq(c->services[0].nallow_from, 2);
	cr_assert_eq(c->services[0].ndeny_from, 2);
	cr_assert_eq(c->services[0].nclient_uids, 2);
	cr_assert_eq(c->services[0].nclient_gids, 2);
	config_free(c);
}

/* ---- cross-key rules: each reported once, at the [service] line (exec
 * rules at the exec line), naming the service ---- */

struct crossrule {
	const char *text;  /* the service's lines after "[service s]\n" */
	int line;          /* of the error */
	const char *n1, *n2;
};

static const struct crossrule cross[] = {
	/* builtin */
	{"listen = tcp://127.0.0.1:7\nbuiltin = echo\nexec = /bin/cat\nexec_user = root\n", 1, "builtin and exec", NULL},
	{"listen = tcp://127.0.0.1:7\nbuiltin = echo\nallow_users = root\n", 1, "builtin", "allow_*"},
	{"listen = tcp://127.0.0.1:7\nbuiltin = echo\nallow_groups = adm\n", 1, "builtin", "allow_*"},
	{"listen = udp://127.0.0.1:1\nbuiltin = tcpmux\n", 1, "tcpmux", "stream"},
	{"listen = tcp://127.0.0.1:1 udp://127.0.0.1:1\nbuiltin = tcpmux\n", 1, "tcpmux", "stream"},
	{"listen = tcp://127.0.0.1:7\nbuiltin = echo\ntcpmux = echo\n", 1, "builtin", "tcpmux target"},
	/* tcpmux targets and listen addresses */
	{"listen = tcp://127.0.0.1:1\ntcpmux = x\nmode = listen\n", 1, "tcpmux", "mode = listen"},
	{"tcpmux = x\nmode = listen\n", 1, "tcpmux", "mode = listen"},
	{"mode = listen\n", 1, "[service s]", "no listen address"},
	/* listen mode and datagram sockets */
	{"listen = udp://127.0.0.1:1\nmode = listen\n", 1, "mode = listen", "datagram"},
	{"listen = unix-dgram:/tmp/hd-s.sock udp://[::1]:1\nmode = listen\n", 1, "mode = listen", "datagram"},
	/* per-connection rules on a listen-mode service */
	{"listen = tcp://127.0.0.1:1\nmode = listen\nallow_from = 127.0.0.1\n", 1, "allow_from", "listen-mode"},
	{"listen = tcp://127.0.0.1:1\nmode = listen\ndeny_from = 10.0.0.0/8\n", 1, "deny_from", "listen-mode"},
	{"listen = unix:/tmp/hd-s.sock\nmode = listen\nallow_client_users = root\n", 1, "allow_client_*", "listen-mode"},
	{"listen = unix:/tmp/hd-s.sock\nmode = listen\nallow_client_groups = adm\n", 1, "allow_client_*", "listen-mode"},
	{"listen = tcp://127.0.0.1:1\nmode = listen\nmax_connections = 5\n", 1, "max_connections", "listen-mode"},
	{"listen = tcp://127.0.0.1:1\nmode = listen\nmax_per_source = 5\n", 1, "max_per_source", "listen-mode"},
	{"listen = tcp://127.0.0.1:1\nmode = listen\nrate = 5/s\n", 1, "rate", "listen-mode"},
	{"listen = tcp://127.0.0.1:1\nmode = listen\nrate_per_source = 5/s\n", 1, "rate", "listen-mode"},
	/* ...and on a datagram service served by backends */
	{"listen = udp://127.0.0.1:1\nallow_from = 127.0.0.1\n", 1, "allow_from", "datagram"},
	{"listen = udp://127.0.0.1:1\ndeny_from = 10.0.0.0/8\n", 1, "deny_from", "datagram"},
	{"listen = unix-dgram:/tmp/hd-s.sock\nallow_client_users = root\n", 1, "allow_client_*", "datagram"},
	{"listen = unix-dgram:@hd-s\nallow_client_groups = adm\n", 1, "allow_client_*", "datagram"},
	{"listen = udp://127.0.0.1:1\nmax_connections = 5\n", 1, "max_connections", "datagram"},
	{"listen = udp://127.0.0.1:1\nmax_per_source = 5\n", 1, "max_per_source", "datagram"},
	{"listen = udp://127.0.0.1:1\nrate = 5/s\n", 1, "rate", "datagram"},
	{"listen = tcp://127.0.0.1:1 udp://127.0.0.1:1\nrate_per_source = 5/s\n", 1, "rate", "datagram"},
	/* connection limits on a datagram-only builtin */
	{"listen = udp://127.0.0.1:7\nbuiltin = echo\nmax_connections = 5\n", 1, "max_connections", "datagram builtin"},
	{"listen = udp://127.0.0.1:7\nbuiltin = echo\nmax_per_source = 5\n", 1, "max_per_source", "datagram builtin"},
	{"listen = unix-dgram:/tmp/hd-s.sock\nbuiltin = echo\nallow_client_users = root\n", 1, "allow_client_*",
	 "datagram builtin"},
	/* access lists need the right listener */
	{"listen = unix:/tmp/hd-s.sock\nallow_from = 127.0.0.1\n", 1, "allow_from/deny_from", "tcp:// or udp://"},
	{"listen = unix-seqpacket:@hd-s\ndeny_from = ::1\n", 1, "allow_from/deny_from", "tcp:// or udp://"},
	{"listen = tcp://127.0.0.1:1\nallow_client_users = root\n", 1, "allow_client_users", "unix listener"},
	{"listen = tcp://127.0.0.1:7\nbuiltin = echo\nallow_client_groups = adm\n", 1, "allow_client_users",
	 "unix listener"},
	{"tcpmux = x\nallow_client_users = root\n", 1, "allow_client_users", "unix listener"},
	/* limit_pause */
	{"listen = tcp://127.0.0.1:1\nlimit_pause = 10s\n", 1, "limit_pause", "rate"},
	{"listen = tcp://127.0.0.1:1\nlimit_pause = 10s\nrate_per_source = 1/s\n", 1, "limit_pause", "rate"},
	/* socket options need a listener they apply to */
	{"listen = udp://127.0.0.1:1\ndefer_accept = 5\n", 1, "defer_accept", "tcp://"},
	{"listen = udp://127.0.0.1:1\nnodelay = yes\n", 1, "nodelay", "tcp://"},
	{"listen = unix:/tmp/hd-s.sock\nkeepalive = yes\n", 1, "keepalive", "tcp://"},
	{"listen = unix:/tmp/hd-s.sock\nreuseport = yes\n", 1, "reuseport", "tcp:// or udp://"},
	{"listen = unix-dgram:/tmp/hd-s.sock\nfreebind = yes\n", 1, "freebind", "tcp:// or udp://"},
	{"listen = unix:@hd-s\nbind_device = lo\n", 1, "bind_device", "tcp:// or udp://"},
	{"listen = tcp://127.0.0.1:1\nipv6only = yes\n", 1, "ipv6only", "IPv6"},
	{"listen = tcp://127.0.0.1:1 udp://0.0.0.0:1\nipv6only = no\n", 1, "ipv6only", "IPv6"},
	{"listen = unix:/tmp/hd-s.sock\nipv6only = no\n", 1, "ipv6only", "IPv6"},
	/* exec */
	{"listen = tcp://127.0.0.1:1\n\nexec = /bin/cat\n", 4, "exec", "exec_user"},
	{"listen = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_group = root\n", 3, "exec", "exec_user"},
	{"listen = tcp://127.0.0.1:1\nexec_argv0 = cat\n", 1, "exec_argv0", "need exec"},
	{"listen = tcp://127.0.0.1:1\nexec_user = root\n", 1, "exec_user", "need exec"},
	{"listen = tcp://127.0.0.1:1\nexec_group = root\n", 1, "exec_group", "need exec"},
	{"listen = tcp://127.0.0.1:1\nexec_activation = systemd\n", 1, "exec_activation", "need exec"},
	{"listen = tcp://127.0.0.1:1\nmax_children = 5\n", 1, "max_children", "need exec"},
	{"listen = tcp://127.0.0.1:1\nspawn_rate = 5/s\n", 1, "spawn_rate", "need exec"},
	{"listen = tcp://127.0.0.1:1\nspawn_pause = 5s\n", 1, "spawn_pause", "need exec"},
	{"listen = tcp://127.0.0.1:1\non_no_backend = spawn\n", 1, "on_no_backend = spawn", "needs exec"},
};

TEST(issue3, cross_key_rules)
{
	for (size_t i = 0; i < N_ELEMENTS(cross); i++) {
		char *t = textf("[service s]\n%s", cross[i].text);
		load_bad(t);
		cr_assert(has_error(cross[i].line, cross[i].n1, cross[i].n2),
		          "rule %zu: no error 't.conf:%d: ...%s...%s...' for:\n%s\n--- got ---\n%s", i, cross[i].line,
		          cross[i].n1, nz(cross[i].n2), t, errbuf);
		cr_assert(has_error(cross[i].line, "[service s]", NULL), "rule %zu: the service is not named:\n%s", i,
		          errbuf);
		cr_assert_eq(count_errors(), 1, "rule %zu: one error expected for:\n%s\n--- got ---\n%s", i, t, errbuf);
		free(t);
	}
}

/* What the rules above allow. */
TEST(issue3, cross_key_rules_allow)
{
	static const char *const ok[] = {
		"listen = tcp://127.0.0.1:1\nmode = listen\nexec = /bin/cat\nexec_user = root\n",
		"listen = udp://127.0.0.1:1\nexec = /bin/cat\nexec_user = root\n",
		"listen = unix-seqpacket:/tmp/hd-s.sock\nmode = listen\n",
		"listen = tcp://127.0.0.1:1\nmode = listen\nreuseport = yes\nnodelay = yes\nkeepalive = yes\n"
		"defer_accept = 1\n",
		"listen = udp://127.0.0.1:1\nreuseport = yes\nfreebind = yes\nbind_device = lo\n",
		"listen = udp://[::1]:1\nipv6only = yes\n",
		"listen = tcp://*:1\nipv6only = no\n",
		"listen = tcp://localhost:1 tcp://[::]:2\nipv6only = yes\n",
		"listen = unix:/tmp/hd-s.sock\nallow_client_users = root\nmax_per_source = 2\nmax_connections = 3\n",
		"listen = unix:/tmp/hd-s.sock\nnodelay = no\nkeepalive = no\nreuseport = no\n",
		"listen = tcp://127.0.0.1:1\nrate = 1/s\nlimit_pause = 1s\n",
		"listen = tcp://127.0.0.1:1\nlimit_pause = 0\n",
		"tcpmux = +x\nexec = /bin/cat\nexec_user = root\nmax_children = 3\nspawn_rate = 1/s\nspawn_pause = 1s\n",
		"listen = tcp://127.0.0.1:7\nbuiltin = echo\nallow_from = 127.0.0.1\nrate = 1/s\non_no_backend = reject\n",
	};
	for (size_t i = 0; i < N_ELEMENTS(ok); i++) {
		char *t = textf("[service s]\n%s", ok[i]);
		struct config *c = load_ok(t);
		config_free(c);
		free(t);
	}
}

/* BUG (reported): "builtin = echo" with "mode = listen" gets, besides the
 * one error it deserves, a second one about allow_from, deny_from, ...,
 * max_connections and rate* although the service sets none of them: the
 * max_connections default a builtin gets (256) trips the per-connection
 * rule for listen-mode services. One mistake, one message. */
TEST(issue3, builtin_with_mode_listen_reported_once)
{
	const char *t = "[service s]\nlisten = tcp://127.0.0.1:7\nbuiltin = echo\nmode = listen\n";
	load_bad(t);
	assert_error(1, "builtin", "mode = listen");
	cr_assert_eq(count_errors(), 1, "one error expected for:\n%s\n--- got ---\n%s", t, errbuf);
	/* Also with keys that only the builtin rule concerns. */
	t = "[service s]\nlisten = tcp://127.0.0.1:7\nbuiltin = daytime\nmode = listen\nnodelay = yes\n";
	load_bad(t);
	assert_error(1, "builtin", "mode = listen");
	cr_assert(!has_error(1, "max_connections", NULL), "max_connections is not set in:\n%s\n--- got ---\n%s", t,
	          errbuf);
}

TEST(issue3, duplicate_tcpmux_names)
{
	load_bad("[service a]\ntcpmux = Foo\n"             /* 1 */
	         "[service b]\nlisten = tcp://127.0.0.1:1\n" /* 3 */
	         "[service c]\ntcpmux = +fOO\n");           /* 5 */
	assert_error(5, "[service c]", "fOO");
	assert_error(5, "[service a]", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* Three of a kind: the second and the third are reported. */
	load_bad("[service a]\ntcpmux = x\n[service b]\ntcpmux = X\n[service c]\ntcpmux = +x\n");
	assert_error(3, "[service b]", "[service a]");
	assert_error(5, "[service c]", NULL);

	/* Different names are fine. */
	struct config *c = load_ok("[service a]\ntcpmux = x\n[service b]\ntcpmux = xy\n");
	config_free(c);
}

/* A service may break several rules at once: each is reported. */
TEST(issue3, several_rules_at_once)
{
	load_bad("[service s]\n"                          /* 1 */
	         "listen = udp://127.0.0.1:1\n"           /* 2 */
	         "builtin = tcpmux\n"                     /* 3 */
	         "exec = /bin/cat\n"                      /* 4 */
	         "mode = listen\n"                        /* 5 */
	         "nodelay = yes\n");                      /* 6 */
	assert_error(4, "exec_user", NULL);
	assert_error(1, "builtin and exec", NULL);
	assert_error(1, "builtin", "mode = listen");
	assert_error(1, "tcpmux", "stream");
	assert_error(1, "nodelay", NULL);
}

/* exec_user against the account handoffd drops privileges to. */
TEST(issue3, exec_user_and_the_daemon_user)
{
	/* [handoffd] user = nobody (group nogroup): programs run as nobody. */
	struct config *c = load_ok("[handoffd]\nuser = nobody\n[service s]\nlisten = tcp://127.0.0.1:1\n"
	                           "exec = /bin/cat\nexec_user = nobody\n");
	cr_assert_eq(c->services[0].exec_uid, c->user);
	cr_assert_eq(c->services[0].exec_gid, c->group);
	config_free(c);

	load_bad("[handoffd]\n"                           /* 1 */
	         "user = nobody\n"                        /* 2 */
	         "[service s]\n"                          /* 3 */
	         "listen = tcp://127.0.0.1:1\n"           /* 4 */
	         "exec = /bin/cat\n"                      /* 5 */
	         "exec_user = root\n");                   /* 6 */
	char uid[32];
	snprintf(uid, sizeof(uid), "uid %u", (unsigned)uid_of("nobody"));
	assert_error(5, "[service s]", uid);
	assert_error(5, "cannot start programs as uid 0", NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* The same user with another group. */
	load_bad("[handoffd]\nuser = nobody\n[service s]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\n"
	         "exec_user = nobody\nexec_group = daemon\n");
	char gid[32];
	snprintf(gid, sizeof(gid), "gid %u", (unsigned)gid_of("daemon"));
	assert_error(5, "cannot start programs", gid);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* [handoffd] user given after the service: the rule still applies. */
	load_bad("[service s]\nlisten = tcp://127.0.0.1:1\nexec = /bin/cat\nexec_user = root\n"
	         "[handoffd]\nuser = nobody\n");
	assert_error(3, "cannot start programs", NULL);
}

/* ===================== inetd_conf and config_load_inetd ===================== */

TEST(inetd, relative_and_duplicate_path)
{
	assert_only_error("[handoffd]\ninetd_conf = etc/inetd.conf\n[service web]\nlisten = tcp://127.0.0.1:1\n", 2,
	                  "inetd_conf", "'etc/inetd.conf'");
	assert_error(2, "absolute", NULL);
	assert_only_error("[handoffd]\ninetd_conf = inetd.conf\n[service web]\nlisten = tcp://127.0.0.1:1\n", 2,
	                  "inetd_conf", "absolute");
	/* Given twice (the first one is read). */
	char ip[128];
	snprintf(ip, sizeof(ip), "%s", write_file("inetd.conf", "127.0.0.1:9999 stream tcp nowait root /bin/cat cat\n"));
	char *t = textf("[handoffd]\ninetd_conf = %s\n; x\ninetd_conf = %s\n", ip, ip);
	struct config *c = NULL;
	int rc = config_load_string(t, "t.conf", &c, errbuf, sizeof(errbuf));
	remove_files();
	free(t);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(c);
	assert_error(4, "inetd_conf", "twice");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
	/* inetd_conf belongs to [handoffd]. */
	assert_only_error("[service web]\nlisten = tcp://127.0.0.1:1\ninetd_conf = /etc/inetd.conf\n", 3, "inetd_conf",
	                  "unknown key");
}

TEST(inetd, missing_file_names_the_inetd_conf_line)
{
	struct config *c = NULL;
	int rc = config_load_string("[handoffd]\n; x\ninetd_conf = /nonexistent-hd-test/inetd.conf\n"
	                            "[service web]\nlisten = tcp://127.0.0.1:1\n",
	                            "t.conf", &c, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(c);
	assert_error(3, "inetd_conf", "/nonexistent-hd-test/inetd.conf");
	assert_error(3, strerror(ENOENT), NULL);
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* A directory cannot be read either. */
	load_bad("[handoffd]\ninetd_conf = /\n[service web]\nlisten = tcp://127.0.0.1:1\n");
	assert_error(2, "inetd_conf", "cannot read");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);
}

/* An inetd.conf for the tests below: one builtin, one program. */
static const char inetd_text[] =
	"# inetd.conf for test_config\n"                                     /* 1 */
	"\n"                                                                 /* 2 */
	"127.0.0.1:echo\tstream\ttcp\tnowait\troot\tinternal\n"              /* 3 */
	"127.0.0.1:9999 stream tcp nowait nobody /bin/cat cat -u\n";         /* 4 */

TEST(inetd, services_from_inetd_conf)
{
	char ip[128];
	snprintf(ip, sizeof(ip), "%s", write_file("inetd.conf", inetd_text));
	char *t = textf("[handoffd]\ninetd_conf = %s\n[service web]\nlisten = tcp://127.0.0.1:8080\n", ip);
	struct config *c = NULL;
	int rc = config_load_string(t, "t.conf", &c, errbuf, sizeof(errbuf));
	remove_files();
	free(t);
	cr_assert_eq(rc, 0, "%s", errbuf);
	cr_assert_str_eq(c->inetd_conf, ip);
	cr_assert_eq(c->nservices, 3);
	const struct cfg_service *web = config_find_service(c, "web");
	cr_assert_not_null(web);
	cr_assert_eq(web->inetd_line, 0, "a service of the main file");
	const struct cfg_service *echo = NULL, *cat = NULL;
	for (size_t i = 0; i < c->nservices; i++) {
		if (c->services[i].inetd_line == 3)
			echo = &c->services[i];
		if (c->services[i].inetd_line == 4)
			cat = &c->services[i];
	}
	cr_assert_not_null(echo, "no service from inetd.conf line 3");
	cr_assert_not_null(cat, "no service from inetd.conf line 4");
	cr_assert_eq(echo->line, 3);
	cr_assert_eq(echo->builtin, BUILTIN_ECHO);
	cr_assert_eq(echo->nlisten, 1);
	cr_assert_str_eq(echo->listen[0].text, "tcp://127.0.0.1:7");
	cr_assert_eq(echo->listen[0].line, 3);
	cr_assert_eq(cat->builtin, BUILTIN_NONE);
	cr_assert_str_eq(cat->listen[0].text, "tcp://127.0.0.1:9999");
	cr_assert_str_eq(cat->exec_path, "/bin/cat");
	cr_assert_eq(cat->exec_argc, 2);
	cr_assert_str_eq(cat->exec_argv[0], "cat");
	cr_assert_str_eq(cat->exec_argv[1], "-u");
	cr_assert_eq(cat->exec_uid, uid_of("nobody"));
	cr_assert_eq(cat->exec_line, 4);
	cr_assert_eq(cat->on_no_backend, NOB_SPAWN);
	cr_assert_eq(cat->spawn_rate.count, 256, "inetd's default nowait.max");
	cr_assert_eq(cat->spawn_rate.per_ms, 60000);
	config_free(c);
}

/* Errors in services that came from the inetd.conf name that file and the
 * entry's line, whether found by the inetd parser or by config's own rules;
 * errors of the main file still name the main file. (Files are removed
 * before any assertion.) */
TEST(inetd, errors_name_the_inetd_file_and_line)
{
	char bad[128], root[128];
	snprintf(bad, sizeof(bad), "%s", write_file("bad-inetd.conf",
	                                            "# x\n"                                                 /* 1 */
	                                            "127.0.0.1:9999 stream tcp nowait root /bin/cat cat\n"  /* 2 */
	                                            "127.0.0.1:9998 stream tcp bogus root /bin/cat cat\n")); /* 3 */
	snprintf(root, sizeof(root), "%s", write_file("root-inetd.conf",
	                                             "# x\n"                                                 /* 1 */
	                                             "127.0.0.1:9999 stream tcp nowait root /bin/cat cat\n")); /* 2 */
	char *t1 = textf("[handoffd]\n"                       /* 1 */
	                 "inetd_conf = %s\n"                  /* 2 */
	                 "[service web]\n"                    /* 3 */
	                 "listen = tcp://127.0.0.1:1\n"       /* 4 */
	                 "colour = blue\n",                   /* 5 */
	                 bad);
	/* A rule of config.c broken by an inetd entry: [handoffd] user =
	 * nobody cannot start a program as root. */
	char *t2 = textf("[handoffd]\nuser = nobody\ninetd_conf = %s\n[service web]\nlisten = tcp://127.0.0.1:1\n", root);
	/* The same address in the main file and the inetd.conf: the second
	 * one (from the inetd.conf) is reported there, naming the first. */
	char *t3 = textf("[handoffd]\ninetd_conf = %s\n[service web]\nlisten = tcp://127.0.0.1:9999\n", root);
	static char err1[4096], err2[4096], err3[4096];
	struct config *c1 = NULL, *c2 = NULL, *c3 = NULL;
	int rc1 = config_load_string(t1, "t.conf", &c1, err1, sizeof(err1));
	int rc2 = config_load_string(t2, "t.conf", &c2, err2, sizeof(err2));
	int rc3 = config_load_string(t3, "t.conf", &c3, err3, sizeof(err3));
	remove_files();
	free(t1);
	free(t2);
	free(t3);

	cr_assert_eq(rc1, -EINVAL);
	cr_assert(has_error_in(err1, bad, 3, "bogus", NULL), "no error naming %s:3:\n%s", bad, err1);
	cr_assert(has_error_in(err1, "t.conf", 5, "colour", NULL), "%s", err1);
	snprintf(errbuf, sizeof(errbuf), "%s", err1);
	cr_assert_eq(count_errors(), 2, "%s", err1);

	cr_assert_eq(rc2, -EINVAL);
	cr_assert(has_error_in(err2, root, 2, "cannot start programs as uid 0", NULL), "no error naming %s:2:\n%s",
	          root, err2);
	snprintf(errbuf, sizeof(errbuf), "%s", err2);
	cr_assert_eq(count_errors(), 1, "%s", err2);

	cr_assert_eq(rc3, -EINVAL);
	cr_assert(has_error_in(err3, root, 2, "tcp://127.0.0.1:9999", "at t.conf:4"), "%s", err3);
	snprintf(errbuf, sizeof(errbuf), "%s", err3);
	cr_assert_eq(count_errors(), 1, "%s", err3);
	cr_assert(!c1 && !c2 && !c3);
}

/* The main file may have no [service] of its own when inetd_conf gives
 * some. */
TEST(inetd, inetd_conf_alone)
{
	char ip[128];
	snprintf(ip, sizeof(ip), "%s", write_file("inetd.conf", inetd_text));
	char *t = textf("[handoffd]\nlog_level = info\ninetd_conf = %s\n", ip);
	struct config *c = NULL;
	int rc = config_load_string(t, "t.conf", &c, errbuf, sizeof(errbuf));
	remove_files();
	free(t);
	cr_assert_eq(rc, 0, "%s", errbuf);
	cr_assert_eq(c->nservices, 2);
	cr_assert_eq(c->log_level, LOG_LVL_INFO);
	config_free(c);
}

TEST(inetd, config_load_inetd)
{
	char ip[128];
	snprintf(ip, sizeof(ip), "%s", write_file("inetd.conf", inetd_text));
	struct config *c = NULL;
	char err[1024] = "stale";
	int rc = config_load_inetd(ip, &c, err, sizeof(err));
	remove_files();
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(err, "");
	cr_assert_str_eq(c->file, ip);
	cr_assert_str_eq(c->inetd_conf, ip);
	cr_assert_eq(c->nservices, 2);
	for (size_t i = 0; i < c->nservices; i++)
		cr_assert_gt(c->services[i].inetd_line, 0, "service %zu", i);
	/* [handoffd] keeps its defaults. */
	cr_assert_str_eq(c->control_socket, "/run/handoffd/control.sock");
	cr_assert_eq(c->user, (uid_t)-1);
	cr_assert_eq(c->log_level, LOG_LVL_NOTICE);
	cr_assert_eq(c->max_control, 4096);
	config_free(c);
}

TEST(inetd, config_load_inetd_errors)
{
	struct config *c = NULL;
	char err[1024];
	const char *missing = "/nonexistent-hd-test/inetd.conf";
	cr_assert_eq(config_load_inetd(missing, &c, err, sizeof(err)), -ENOENT);
	cr_assert_null(c);
	cr_assert(strstr(err, missing), "the message names the file: %s", err);
	cr_assert(strstr(err, strerror(ENOENT)), "the message says why: %s", err);
	cr_assert_eq(config_load_inetd(missing, &c, NULL, 0), -ENOENT);

	/* An entry in error: the file and its line. A rule of config.c: two
	 * entries on one address. Nothing to serve. (Files are removed before
	 * any assertion.) */
	char p1[128], p2[128], p3[128];
	snprintf(p1, sizeof(p1), "%s", write_file("bad.conf", "\n\n127.0.0.1:9999 stream tcp nowait root bin/cat cat\n"));
	snprintf(p2, sizeof(p2), "%s", write_file("twice.conf", "127.0.0.1:9999 stream tcp nowait root /bin/cat cat\n"
	                                                        "127.0.0.1:9999 stream tcp nowait root /bin/cat cat\n"));
	snprintf(p3, sizeof(p3), "%s", write_file("empty.conf", "# nothing\n"));
	struct config *c1 = NULL, *c2 = NULL, *c3 = NULL;
	char e1[1024], e2[1024], e3[1024];
	int rc1 = config_load_inetd(p1, &c1, e1, sizeof(e1));
	int rc2 = config_load_inetd(p2, &c2, e2, sizeof(e2));
	int rc3 = config_load_inetd(p3, &c3, e3, sizeof(e3));
	remove_files();

	cr_assert_eq(rc1, -EINVAL);
	cr_assert_null(c1);
	cr_assert(has_error_in(e1, p1, 3, "bin/cat", NULL), "%s", e1);
	cr_assert_eq(rc2, -EINVAL);
	cr_assert_null(c2);
	cr_assert(has_error_in(e2, p2, 2, "tcp://127.0.0.1:9999", NULL), "%s", e2);
	cr_assert_eq(rc3, -EINVAL);
	cr_assert_null(c3);
	cr_assert(strncmp(e3, p3, strlen(p3)) == 0, "the error names the inetd file: %s", e3);
	cr_assert(strstr(e3, "nothing to serve"), "%s", e3);
}
