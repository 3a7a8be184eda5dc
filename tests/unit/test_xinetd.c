/* Unit tests for src/daemon/xinetd.c: --convert-xinetd.
 *
 * The fixture tests/data/xinetd/ is an xinetd.conf with a defaults section,
 * an include and an includedir (xinetd.d/, with a file name containing a
 * dot and a backup file ending in '~' that must be skipped): internal echo
 * over stream and dgram, internal daytime on IPv6 only, a server with
 * only_from / no_access / instances / per_source / cps / flags, a service
 * disabled by its own "disable = yes", one disabled by the defaults'
 * "disabled" list, a tcpd service with attributes handoffd lacks, and a
 * datagram service. The conversion is checked key by key, the warnings
 * line by line, and the output must load as a handoffd.conf. Smaller cases
 * are written into mkdtemp() directories.
 *
 * Fixtures are found under $TOP_SRCDIR (set by make check; "." when unset).
 * Every test checks that it leaves no fd open (TEST()). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "xinetd.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

static char errbuf[65536];

static void fixture_dir(char *buf, size_t size)
{
	const char *top = getenv("TOP_SRCDIR");
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tests/data/xinetd", top && *top ? top : ".");
	char *abs = realpath(tmp, NULL);
	cr_assert_not_null(abs, "fixture %s not found (set TOP_SRCDIR)", tmp);
	snprintf(buf, size, "%s", abs);
	free(abs);
}

struct conv {
	int rc;
	char *out;
	char *err;
};

static struct conv convert(const char *path)
{
	struct conv c = {0};
	size_t olen = 0, elen = 0;
	FILE *out = open_memstream(&c.out, &olen);
	FILE *err = open_memstream(&c.err, &elen);
	cr_assert(out && err);
	c.rc = xinetd_convert(path, out, err);
	fclose(out);
	fclose(err);
	return c;
}

static void conv_free(struct conv *c)
{
	free(c->out);
	free(c->err);
}

/* The "key = value" lines of [service name], joined with '\n'. */
static char *section(const char *out, const char *name)
{
	char hdr[128];
	snprintf(hdr, sizeof(hdr), "[service %s]\n", name);
	const char *p = strstr(out, hdr);
	if (!p)
		return NULL;
	p += strlen(hdr);
	char *ret = calloc(1, strlen(p) + 1);
	cr_assert_not_null(ret);
	size_t pos = 0;
	while (*p && *p != '[') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len && *p != ';') {
			if (pos)
				ret[pos++] = '\n';
			memcpy(ret + pos, p, len);
			pos += len;
		}
		p += len + (nl ? 1 : 0);
	}
	ret[pos] = '\0';
	return ret;
}

static void expect_section(const char *out, const char *name, const char *keys)
{
	char *s = section(out, name);
	cr_assert_not_null(s, "no [service %s] in:\n%s", name, out);
	cr_assert_str_eq(s, keys, "[service %s]: got\n%s\nwant\n%s", name, s, keys);
	free(s);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A mkdtemp() directory with files in it. */
struct tmp {
	char dir[64];
	char files[8][128];
	int n;
};

static void tmp_init(struct tmp *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_xinetd.XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
}

static const char *tmp_file(struct tmp *t, const char *name, const char *text)
{
	cr_assert_lt(t->n, 8);
	char *path = t->files[t->n++];
	char dir[sizeof(t->dir)];
	memcpy(dir, t->dir, sizeof(dir));
	snprintf(path, sizeof(t->files[0]), "%s/%s", dir, name);
	FILE *fp = fopen(path, "we");
	cr_assert_not_null(fp);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
	return path;
}

static void tmp_done(struct tmp *t)
{
	for (int i = t->n - 1; i >= 0; i--)
		if (unlink(t->files[i]) < 0)
			rmdir(t->files[i]);
	rmdir(t->dir);
}

/* ---- the fixture ---- */

TEST(xinetd, convert_fixture)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	fixture_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/xinetd.conf", dir);
	struct conv c = convert(path);
	cr_assert_eq(c.rc, 0, "rc %d:\n%s", c.rc, c.err);

	char first[PATH_MAX + 128];
	snprintf(first, sizeof(first), "; handoffd.conf for the services of %s and the files it includes\n", path);
	cr_assert(strncmp(c.out, first, strlen(first)) == 0, "output does not start by naming the source:\n%s", c.out);
	cr_assert_null(strstr(c.out, "[handoffd]"));
	cr_assert_eq(count_of(c.out, "[service "), 6, "%s", c.out);
	cr_assert_null(strstr(c.out, "skipped"), "files with a dot or a '~' are read:\n%s", c.out);

	/* include first, then includedir in sorted order */
	const char *order[] = {"[service daytime-stream]", "[service echo-stream]", "[service echo-dgram]",
	                       "[service ftp]", "[service myserver]", "[service tftp]"};
	const char *prev = c.out;
	for (size_t i = 0; i < N_ELEMENTS(order); i++) {
		const char *p = strstr(c.out, order[i]);
		cr_assert_not_null(p, "%s missing", order[i]);
		cr_assert_gt(p, prev, "%s out of order", order[i]);
		prev = p;
	}

	expect_section(c.out, "daytime-stream",
	               "listen = tcp://[::]:13\n"
	               "ipv6only = yes\n"
	               "builtin = daytime\n"
	               "rate = 50/s\n"
	               "limit_pause = 10s");
	expect_section(c.out, "echo-stream",
	               "listen = tcp://0.0.0.0:7\n"
	               "builtin = echo\n"
	               "max_connections = 60\n"
	               "rate = 50/s\n"
	               "limit_pause = 10s");
	cr_assert_not_null(strstr(c.out, "; flags REUSE: handoffd always sets SO_REUSEADDR on its listeners\n"));
	/* no flags: xinetd binds IPv6 dual-stack */
	expect_section(c.out, "echo-dgram", "listen = udp://*:7\nbuiltin = echo");
	expect_section(c.out, "ftp",
	               "listen = tcp://127.0.0.1:21\n"
	               "exec = /usr/sbin/tcpd -l\n"
	               "exec_argv0 = /usr/sbin/in.ftpd\n"
	               "exec_user = root\n"
	               "allow_from = 10.0.0.0/8\n"
	               "max_connections = 60\n"
	               "max_children = 60\n"
	               "rate = 50/s\n"
	               "limit_pause = 10s");
	expect_section(c.out, "myserver",
	               "listen = tcp://*:7777\n"
	               "exec = /usr/local/sbin/myserver --inetd -v\n"
	               "exec_argv0 = myserver\n"
	               "exec_user = nobody\n"
	               "exec_group = nogroup\n"
	               "allow_from = 192.0.2.0/24, 198.51.100.7/32, 2001:db8::/32, 10.1.0.0/16\n"
	               "deny_from = 192.0.2.66/32\n"
	               "max_connections = 30\n"
	               "max_children = 30\n"
	               "max_per_source = 5\n"
	               "rate = 25/s\n"
	               "limit_pause = 30s\n"
	               "nodelay = yes\n"
	               "keepalive = yes");
	/* a datagram server: the defaults' instances and only_from = 0.0.0.0 do not apply / restrict nothing */
	expect_section(c.out, "tftp",
	               "listen = udp://*:69\n"
	               "exec = /usr/sbin/in.tftpd -s /srv/tftp\n"
	               "exec_argv0 = in.tftpd\n"
	               "exec_user = nobody");

	char want[PATH_MAX + 256];
	snprintf(want, sizeof(want),
	         "; service chargen (%s/xinetd.d/chargen:2) is disabled in xinetd (listed in disabled of defaults): "
	         "not converted\n",
	         dir);
	cr_assert_not_null(strstr(c.out, want), "%s", c.out);
	snprintf(want, sizeof(want),
	         "; service telnet (%s/xinetd.d/telnet:2) is disabled in xinetd (disable = yes): not converted\n", dir);
	cr_assert_not_null(strstr(c.out, want), "%s", c.out);
	snprintf(want, sizeof(want), "[service myserver]\n; from %s/xinetd.d/myserver:2 (xinetd service myserver)\n",
	         dir);
	cr_assert_not_null(strstr(c.out, want), "%s", c.out);

	/* every attribute without an equivalent, once, at its line */
	char *errs = NULL;
	size_t elen = 0;
	FILE *e = open_memstream(&errs, &elen);
	cr_assert_not_null(e);
	fprintf(e, "%s:7: defaults: attribute log_type has no equivalent in handoffd, ignored\n", path);
	const char *ftp_attrs[] = {"log_on_success", "log_on_failure", "nice", "access_times", "rlimit_cpu", "banner"};
	for (size_t i = 0; i < N_ELEMENTS(ftp_attrs); i++)
		fprintf(e, "%s/xinetd.d/ftp:%zu: service ftp: attribute %s has no equivalent in handoffd, ignored\n", dir,
		        10 + i, ftp_attrs[i]);
	fprintf(e, "%s/xinetd.d/ftp:9: service ftp: flag SENSOR has no equivalent in handoffd, ignored\n", dir);
	fprintf(e,
	        "%s/xinetd.d/ftp:16: service ftp: only_from entry 'trusted.example.com' (a host or network name) has "
	        "no equivalent in handoffd (addresses and networks only), ignored: fewer clients are admitted\n",
	        dir);
	fclose(e);
	cr_assert_str_eq(c.err, errs);
	free(errs);
	conv_free(&c);
}

TEST(xinetd, conversion_loads)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	fixture_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/xinetd.conf", dir);
	struct conv c = convert(path);
	cr_assert_eq(c.rc, 0);
	struct config *cfg = NULL;
	int rc = config_load_string(c.out, "converted.conf", &cfg, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, 0, "the conversion is refused (%d):\n%s\n--- conversion ---\n%s", rc, errbuf, c.out);
	cr_assert_eq(cfg->nservices, 6);

	const struct cfg_service *s = config_find_service(cfg, "myserver");
	cr_assert_not_null(s);
	cr_assert_eq(s->nallow_from, 4);
	cr_assert_eq(s->ndeny_from, 1);
	cr_assert_eq(s->deny_from[0].family, AF_INET);
	cr_assert_eq(s->deny_from[0].prefix, 32);
	cr_assert_eq(s->allow_from[2].family, AF_INET6);
	cr_assert_eq(s->allow_from[2].prefix, 32);
	cr_assert_eq(s->max_connections, 30);
	cr_assert_eq(s->max_children, 30);
	cr_assert_eq(s->max_per_source, 5);
	cr_assert_eq(s->rate.count, 25);
	cr_assert_eq(s->rate.per_ms, 1000);
	cr_assert_eq(s->limit_pause_ms, 30000);
	cr_assert(s->opt.nodelay);
	cr_assert(s->opt.keepalive);
	cr_assert_eq(s->exec_gid, getgrnam("nogroup")->gr_gid);
	cr_assert_str_eq(s->exec_argv[0], "myserver");

	s = config_find_service(cfg, "echo-dgram");
	cr_assert_not_null(s);
	cr_assert_str_eq(s->listen[0].text, "udp://*:7");
	cr_assert_eq(s->builtin, BUILTIN_ECHO);
	s = config_find_service(cfg, "tftp");
	cr_assert_not_null(s);
	cr_assert_eq(s->listen[0].spec.socktype, SOCK_DGRAM);
	cr_assert_eq(s->on_no_backend, NOB_SPAWN);
	config_free(cfg);
	conv_free(&c);
}

/* ---- syntax errors: FILE:LINE, rc -EINVAL ---- */

static void expect_error(const char *text, int line, const char *phrase)
{
	struct tmp t;
	tmp_init(&t);
	const char *path = tmp_file(&t, "xinetd.conf", text);
	struct conv c = convert(path);
	char want[256];
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	cr_assert_eq(c.rc, -EINVAL, "accepted:\n%s", text);
	cr_assert_not_null(strstr(c.err, want), "no error at %s:\n%s", want, c.err);
	cr_assert_not_null(strstr(c.err, phrase), "error lacks '%s':\n%s", phrase, c.err);
	conv_free(&c);
	tmp_done(&t);
}

#define ECHO_BODY "\ttype = INTERNAL\n\tsocket_type = stream\n\twait = no\n"

TEST(xinetd, syntax_errors)
{
	expect_error("service echo\n{\n" ECHO_BODY, 1, "missing '}'");
	expect_error("service echo\n{\n" ECHO_BODY "\tcolour = blue\n}\n", 6, "unknown attribute 'colour'");
	expect_error("service echo\n{\n" ECHO_BODY "\tport += 7\n}\n", 6, "attribute port takes only '='");
	expect_error("service echo\n{\n" ECHO_BODY "\twait = no\n}\n", 6, "attribute wait given twice (first at line 5)");
	expect_error("service echo\n{\n" ECHO_BODY "\tjust words\n}\n", 6, "expected 'attribute = value'");
	expect_error("service echo\n\ttype = INTERNAL\n}\n", 2, "expected '{'");
	expect_error("service\n{\n}\n", 1, "'service' needs a name");
	expect_error("servce echo\n{\n}\n", 1, "expected 'service NAME', 'defaults'");
	expect_error("service echo\n{\n" ECHO_BODY "\t{\n}\n", 6, "unexpected '{'");
	expect_error("include /nonexistent/xinetd-file\n", 1, "include /nonexistent/xinetd-file: No such file");
	expect_error("includedir /nonexistent/xinetd.d\n", 1, "includedir /nonexistent/xinetd.d");
	expect_error("service echo\n{\n" ECHO_BODY "\tenv -= A=1\n}\n", 6, "env does not take '-='");
}

TEST(xinetd, missing_file)
{
	struct conv c = convert("/nonexistent/xinetd.conf");
	cr_assert_eq(c.rc, -ENOENT);
	cr_assert_str_eq(c.err, "/nonexistent/xinetd.conf: cannot read: No such file or directory\n");
	cr_assert_str_eq(c.out, "");
	conv_free(&c);
}

TEST(xinetd, include_loop_stops)
{
	struct tmp t;
	tmp_init(&t);
	const char *path = tmp_file(&t, "xinetd.conf", "include xinetd.conf\n");
	struct conv c = convert(path);
	cr_assert_eq(c.rc, -EINVAL);
	cr_assert_not_null(strstr(c.err, "includes nest deeper than 8"), "%s", c.err);
	conv_free(&c);
	tmp_done(&t);
}

/* ---- services that cannot be converted ---- */

static void expect_not_converted(const char *body, const char *phrase)
{
	char text[2048];
	snprintf(text, sizeof(text),
	         "service echo\n{\n" ECHO_BODY "}\n"
	         "service bad\n{\n%s}\n",
	         body);
	struct tmp t;
	tmp_init(&t);
	const char *path = tmp_file(&t, "xinetd.conf", text);
	struct conv c = convert(path);
	char want[256];
	snprintf(want, sizeof(want), "%s:7: service bad: ", path);
	cr_assert_eq(c.rc, -EINVAL, "converted:\n%s", c.out);
	cr_assert(strncmp(c.err, want, strlen(want)) == 0, "error does not start with %s:\n%s", want, c.err);
	cr_assert_not_null(strstr(c.err, phrase), "error lacks '%s':\n%s", phrase, c.err);
	cr_assert_not_null(strstr(c.out, "[service echo]"), "the good service is still converted");
	cr_assert_null(strstr(c.out, "[service bad]"));
	cr_assert_not_null(strstr(c.out, "; NOT CONVERTED "));
	conv_free(&c);
	tmp_done(&t);
}

#define SERVER_BODY "\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n\tport = 7000\n"

TEST(xinetd, not_converted)
{
	expect_not_converted("\ttype = RPC\n" SERVER_BODY, "RPC services are not supported");
	expect_not_converted(SERVER_BODY "\tno_access = evil.example.com\n",
	                     "no_access entry 'evil.example.com' (a host or network name) has no equivalent");
	expect_not_converted(SERVER_BODY "\tno_access = @badguys\n", "(a netgroup)");
	expect_not_converted("\tsocket_type = dgram\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n\tport = 7000\n",
	                     "dgram with wait = no is not supported");
	expect_not_converted("\tsocket_type = dgram\n\twait = yes\n\tuser = nobody\n\tserver = /bin/cat\n\tport = 7000\n"
	                     "\tonly_from = 10.0.0.0/8\n",
	                     "only_from/no_access cannot be applied");
	expect_not_converted("\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n\tport = 7000\n",
	                     "socket_type is missing");
	expect_not_converted("\ttype = INTERNAL\n\tsocket_type = stream\n\twait = no\n", "internal service bad has no");
	expect_not_converted("\tsocket_type = stream\n\twait = no\n\tserver = /bin/cat\n\tport = 7000\n",
	                     "user is missing");
	expect_not_converted("\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tport = 7000\n",
	                     "server is missing");
	expect_not_converted("\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n"
	                     "\tserver = /bin/cat\n",
	                     "an UNLISTED service needs a port");
	expect_not_converted("\tsocket_type = raw\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n\tport = 7000\n",
	                     "socket_type raw is not supported");
	expect_not_converted(SERVER_BODY "\tflags = BOGUS\n", "unknown flag BOGUS");
	expect_not_converted(SERVER_BODY "\tcps = 10\n", "cps needs two numbers");
}

/* ---- xinetd's rules for defaults, lists and addresses ---- */

TEST(xinetd, defaults_and_lists)
{
	struct tmp t;
	tmp_init(&t);
	const char *path;
	path = tmp_file(&t, "xinetd.conf",
	                "defaults\n{\n"
	                "\tonly_from = 192.0.2.0\n"
	                "\tonly_from = 198.51.100.0/24\n"
	                "\tno_access = 192.0.2.9\n"
	                "\tcps = 100 5\n"
	                "\tper_source = 3\n"
	                "\tenabled = a b c d\n"
	                "}\n"
	                "service a\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n"
	                "\tport = 7000\n\tonly_from += 203.0.113.0\n\tno_access -= 192.0.2.9\n}\n"
	                "service b\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n"
	                "\tport = 7001\n\tonly_from = 10.0.0.0 10.1.{2,3}\n\tper_source = UNLIMITED\n"
	                "\tflags = IPv6\n\tv6only = yes\n}\n"
	                "service c\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n"
	                "\tport = 7002\n\tonly_from = nowhere.example.com\n\tbind = ::1\n}\n"
	                "service d\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n"
	                "\tport = 7003\n\tonly_from = 0.0.0.0\n\tflags = IPv4\n\tno_access = \n}\n"
	                "service e\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /bin/cat\n"
	                "\tport = 7004\n}\n");
	struct conv c = convert(path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	/* += adds to the defaults' list, -= removes from it */
	expect_section(c.out, "a",
	               "listen = tcp://*:7000\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = nobody\n"
	               "allow_from = 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24\n"
	               "max_per_source = 3\n"
	               "rate = 100/s\n"
	               "limit_pause = 5s");
	/* = replaces; factorized addresses expand; IPv6 with v6only */
	expect_section(c.out, "b",
	               "listen = tcp://[::]:7001\n"
	               "ipv6only = yes\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = nobody\n"
	               "allow_from = 10.0.0.0/8, 10.1.2.0/24, 10.1.3.0/24\n"
	               "deny_from = 192.0.2.9/32\n"
	               "rate = 100/s\n"
	               "limit_pause = 5s");
	/* an only_from with nothing handoffd can use admits nobody */
	expect_section(c.out, "c",
	               "listen = tcp://[::1]:7002\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = nobody\n"
	               "deny_from = 0.0.0.0/0, ::/0\n"
	               "deny_from = 192.0.2.9/32\n"
	               "max_per_source = 3\n"
	               "rate = 100/s\n"
	               "limit_pause = 5s");
	/* only_from = 0.0.0.0 is everyone; an empty no_access denies nobody */
	expect_section(c.out, "d",
	               "listen = tcp://0.0.0.0:7003\n"
	               "exec = /bin/cat\n"
	               "exec_argv0 = cat\n"
	               "exec_user = nobody\n"
	               "max_per_source = 3\n"
	               "rate = 100/s\n"
	               "limit_pause = 5s");
	/* not in the defaults' enabled list */
	cr_assert_null(section(c.out, "e"));
	cr_assert_not_null(strstr(c.out, "is disabled in xinetd (not listed in enabled of defaults)"));
	cr_assert_not_null(strstr(c.err, "service c: only_from entry 'nowhere.example.com'"), "%s", c.err);

	struct config *cfg = NULL;
	int rc = config_load_string(c.out, "converted.conf", &cfg, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, 0, "%s\n%s", errbuf, c.out);
	cr_assert_eq(config_find_service(cfg, "c")->ndeny_from, 3);
	config_free(cfg);
	conv_free(&c);
	tmp_done(&t);
}

TEST(xinetd, names_tcpmux_and_args)
{
	struct tmp t;
	tmp_init(&t);
	const char *path = tmp_file(&t, "xinetd.conf",
	                            "service my-service\n{\n\ttype = TCPMUXPLUS UNLISTED\n\tsocket_type = stream\n"
	                            "\tprotocol = tcp\n\twait = no\n\tuser = nobody\n\tserver = /usr/bin/printf\n"
	                            "\tserver_args = x ;y\n}\n"
	                            "service tcpmux\n{\n\ttype = INTERNAL\n\tid = tcpmux\n\tsocket_type = stream\n"
	                            "\tprotocol = tcp\n\tuser = root\n\twait = no\n}\n"
	                            "service echo\n{\n\ttype = INTERNAL\n\tid = a/b\n\tsocket_type = stream\n\twait = no\n}\n"
	                            "service echo\n{\n\ttype = INTERNAL\n\tid = a/b\n\tsocket_type = dgram\n\twait = yes\n}\n");
	struct conv c = convert(path);
	cr_assert_eq(c.rc, 0, "%s", c.err);
	expect_section(c.out, "my-service",
	               "exec = /usr/bin/printf x \";y\"\n"
	               "exec_argv0 = printf\n"
	               "exec_user = nobody\n"
	               "tcpmux = +my-service\n"
	               "rate = 50/s\n"
	               "limit_pause = 10s");
	expect_section(c.out, "tcpmux", "listen = tcp://*:1\nbuiltin = tcpmux\nrate = 50/s\nlimit_pause = 10s");
	/* an id with characters a name cannot hold, twice */
	expect_section(c.out, "a_b", "listen = tcp://*:7\nbuiltin = echo\nrate = 50/s\nlimit_pause = 10s");
	expect_section(c.out, "a_b-2", "listen = udp://*:7\nbuiltin = echo");

	struct config *cfg = NULL;
	int rc = config_load_string(c.out, "converted.conf", &cfg, errbuf, sizeof(errbuf));
	cr_assert_eq(rc, 0, "%s\n%s", errbuf, c.out);
	const struct cfg_service *s = config_find_service(cfg, "my-service");
	cr_assert_not_null(s);
	cr_assert(s->tcpmux_plus);
	cr_assert_eq(s->exec_argc, 3);
	cr_assert_str_eq(s->exec_argv[2], ";y");
	config_free(cfg);
	conv_free(&c);
	tmp_done(&t);
}
