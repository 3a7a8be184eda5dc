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
	{"handshake_timeout", "10h", NULL},
	{"handshake_timeout", "1.5s", NULL},
	{"handshake_timeout", "-1", NULL},
	{"handshake_timeout", "s", NULL},
	{"handshake_timeout", "10 s", NULL},
	{"handshake_timeout", "86401s", NULL},
	{"handshake_timeout", "1441m", NULL},
	{"handshake_timeout", "86400001ms", NULL},
	{"handshake_timeout", "99999999999999999999", NULL},
	{"shutdown_timeout", "10h", NULL},
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
	{"listen", "udp://0.0.0.0:80", NULL},
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
	         "listen = tcp://127.0.0.1:1, udp://127.0.0.1:2, tcp://127.0.0.1:3\n"
	         "allow_users = root no-such-user-hd daemon\n"
	         "allow_groups = adm, no-such-group-hd\n");
	assert_error(2, "listen", "udp://127.0.0.1:2");
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
	assert_error(2, "tcp://127.0.0.1:1", "line 2");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	/* On two lines, spelled differently. */
	load_bad("[service web]\nlisten = tcp://127.0.0.1:80\n; x\nlisten = tcp://127.0.0.1:00080\n");
	assert_error(4, "tcp://127.0.0.1:80", "line 2");

	/* In two services. */
	load_bad("[service a]\nlisten = unix:/tmp/hd-same.sock\n[service b]\nlisten = unix:/tmp/hd-same.sock\n");
	assert_error(4, "unix:/tmp/hd-same.sock", "line 2");
	cr_assert_eq(count_errors(), 1, "%s", errbuf);

	load_bad("[service a]\nlisten = unix:@same\n[service b]\nlisten = tcp://127.0.0.1:1, unix:@same\n");
	assert_error(4, "unix:@same", "line 2");

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
	         "listen = udp://127.0.0.1:1\n"        /* 8 */
	         "backlog = many\n"                    /* 9 */
	         "balance = random\n"                  /* 10 */
	         "colour = blue\n"                     /* 11 */
	         "[service web]\n"                     /* 12 */
	         "[elsewhere]\n");                     /* 13 */
	assert_error(2, "log_level", "loud");
	assert_error(3, "bogus", NULL);
	assert_error(4, "max_control", NULL);
	assert_error(5, "bad/name", NULL);
	assert_error(8, "listen", "udp://127.0.0.1:1");
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
