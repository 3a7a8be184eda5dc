/* Unit tests for src/daemon/builtin.c: the pure pieces (chargen lines, the
 * RFC 868 time value, the daytime line, the UDP loop guard, tcpmux request
 * parsing), then each builtin on real sockets driven by a real libuv loop.
 *
 * The socket tests build the few runtime objects a builtin touches by hand
 * (struct hd, struct service, struct cfg_service, struct conn: zeroed, with
 * hd->loop and hd->cfg set), hand one end of a socketpair to
 * builtin_stream_take() and play the client on the other end, running the
 * loop without blocking between client steps. Every fixture ends with
 * builtin_close_all() and a check that uv_loop_close() succeeds (no handle
 * left), and every test checks that it leaves no fd open (TEST()). */
#include "autoconf.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "builtin.h"
#include "daemon.h"
#include "dispatch.h"
#include "log.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* main.c's part of the daemon interface (daemon.h), which the daemon
 * modules linked here call; main.c itself is not in libdaemon. */
uint64_t hd_now_ms(struct hd *hd)
{
	return uv_now(hd->loop);
}

int hd_reload(struct hd *hd, char *err, size_t errlen)
{
	(void)hd;
	snprintf(err, errlen, "no reload in unit tests");
	return -ENOTSUP;
}

void hd_shutdown_check(struct hd *hd)
{
	(void)hd;
}

void hd_stop(struct hd *hd)
{
	(void)hd;
}

/* libuv opens a process-wide pipe the first time a loop is made and keeps
 * it; open it before any test counts its fds. */
__attribute__((constructor)) static void libuv_global_init(void)
{
	uv_loop_t l;
	if (uv_loop_init(&l) == 0)
		uv_loop_close(&l);
}

/* The 95 printable characters of RFC 864, written out. */
static const char printable[] = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/* ---- chargen ---- */

TEST(chargen, first_lines_are_rfc864s)
{
	uint8_t buf[2 * 74 + 1];
	uint32_t pos = 0;
	builtin_chargen_fill(&pos, buf, 2 * 74);
	buf[2 * 74] = '\0';
	cr_assert_str_eq((char *)buf,
	                 " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"
	                 "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
	cr_assert_eq(pos, 2 * 74);
}

/* Line k starts at printable[k % 95] and wraps round to the space. */
TEST(chargen, rotation_and_wrap)
{
	cr_assert_eq(strlen(printable), 95);
	uint8_t buf[74];
	for (unsigned k = 0; k < 200; k++) {
		uint32_t pos = k * 74;
		builtin_chargen_fill(&pos, buf, 74);
		char want[74];
		for (unsigned i = 0; i < 72; i++)
			want[i] = printable[(k + i) % 95];
		want[72] = '\r';
		want[73] = '\n';
		cr_assert_arr_eq(buf, want, 74, "line %u differs", k);
	}
	/* Line 23 is the last one without a wrap: it ends with '~'; line 24
	 * ends with the space the pattern starts with. */
	uint32_t pos = 23 * 74;
	builtin_chargen_fill(&pos, buf, 74);
	cr_assert_eq(buf[0], '7');
	cr_assert_eq(buf[71], '~');
	builtin_chargen_fill(&pos, buf, 74);
	cr_assert_eq(buf[0], '8');
	cr_assert_eq(buf[70], '~');
	cr_assert_eq(buf[71], ' ');
}

TEST(chargen, period_pieces_and_reduction)
{
	static uint8_t whole[3 * BUILTIN_CHARGEN_PERIOD], pieces[3 * BUILTIN_CHARGEN_PERIOD];
	uint32_t pos = 0;
	builtin_chargen_fill(&pos, whole, sizeof(whole));
	cr_assert_eq(pos, 0, "three whole periods end where they started");
	cr_assert_arr_eq(whole, whole + BUILTIN_CHARGEN_PERIOD, BUILTIN_CHARGEN_PERIOD, "95 lines, then it repeats");
	/* Filled in odd-sized pieces, the stream is the same. */
	size_t off = 0, step = 1;
	while (off < sizeof(pieces)) {
		size_t n = step < sizeof(pieces) - off ? step : sizeof(pieces) - off;
		builtin_chargen_fill(&pos, pieces + off, n);
		off += n;
		step = step * 3 + 1;
	}
	cr_assert_arr_eq(whole, pieces, sizeof(whole));
	/* A position past the period is taken modulo. */
	uint8_t a[100], b[100];
	uint32_t p1 = 5 * BUILTIN_CHARGEN_PERIOD + 777, p2 = 777;
	builtin_chargen_fill(&p1, a, sizeof(a));
	builtin_chargen_fill(&p2, b, sizeof(b));
	cr_assert_arr_eq(a, b, sizeof(a));
	cr_assert_eq(p1, 877);
}

/* ---- time and daytime ---- */

TEST(time, known_dates)
{
	cr_assert_eq(builtin_time_value(0), 2208988800u, "1970-01-01");
	cr_assert_eq(builtin_time_value(1795392000), 4004380800u, "2026-11-23T00:00:00Z");
	cr_assert_eq(builtin_time_value(-2208988800LL), 0u, "1900-01-01");
	cr_assert_eq(builtin_time_value(2085978495), 0xffffffffu, "last second before the 2036 wrap");
	cr_assert_eq(builtin_time_value(2085978496), 0u, "2036-02-07T06:28:16Z wraps to 0");
}

TEST(daytime, format)
{
	char buf[BUILTIN_DAYTIME_MAX];
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 12, .tm_wday = 1};
	cr_assert_eq(builtin_daytime_format(&tm, buf, sizeof(buf)), 26);
	cr_assert_str_eq(buf, "Mon Nov 23 12:00:00 2026\r\n");

	time_t t = 0;
	cr_assert_not_null(gmtime_r(&t, &tm));
	cr_assert_eq(builtin_daytime_format(&tm, buf, sizeof(buf)), 26);
	cr_assert_str_eq(buf, "Thu Jan  1 00:00:00 1970\r\n", "day of month padded with a space");

	tm = (struct tm){.tm_year = 99, .tm_mon = 11, .tm_mday = 31, .tm_hour = 23, .tm_min = 59, .tm_sec = 60,
	                 .tm_wday = 5};
	builtin_daytime_format(&tm, buf, sizeof(buf));
	cr_assert_str_eq(buf, "Fri Dec 31 23:59:60 1999\r\n", "leap second");
}

/* Same layout as the C library's asctime() (ctime's), plus CR, across many
 * dates. */
TEST(daytime, matches_asctime)
{
	for (time_t t = -5000000000LL; t < 5000000000LL; t += 86400 * 37 + 3607) {
		struct tm tm;
		char want[64], got[BUILTIN_DAYTIME_MAX];
		cr_assert_not_null(gmtime_r(&t, &tm));
		cr_assert_not_null(asctime_r(&tm, want));
		size_t wl = strlen(want);
		cr_assert_eq(want[wl - 1], '\n');
		want[wl - 1] = '\0';
		int n = builtin_daytime_format(&tm, got, sizeof(got));
		cr_assert_eq(n, (int)wl + 1);
		cr_assert_eq(got[n - 2], '\r');
		cr_assert_eq(got[n - 1], '\n');
		got[n - 2] = '\0';
		cr_assert_str_eq(got, want, "time %lld", (long long)t);
	}
}

TEST(daytime, errors)
{
	char buf[BUILTIN_DAYTIME_MAX];
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 12, .tm_wday = 1};
	cr_assert_eq(builtin_daytime_format(&tm, buf, 26), -ENOSPC, "no room for the NUL");
	cr_assert_eq(builtin_daytime_format(&tm, buf, 27), 26);
	tm.tm_mon = 12;
	cr_assert_eq(builtin_daytime_format(&tm, buf, sizeof(buf)), -EINVAL);
	tm.tm_mon = 0;
	tm.tm_wday = -1;
	cr_assert_eq(builtin_daytime_format(&tm, buf, sizeof(buf)), -EINVAL);
	tm.tm_wday = 0;
	tm.tm_mday = 0;
	cr_assert_eq(builtin_daytime_format(&tm, buf, sizeof(buf)), -EINVAL);
}

/* ---- loop guard ---- */

static struct sockaddr_storage v4(const char *ip, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	*len = sizeof(*a);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port, socklen_t *len)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	*len = sizeof(*a);
	return ss;
}

/* A Unix address: "" unnamed, "@x" abstract, else a path. */
static struct sockaddr_storage ux(const char *name, socklen_t *len)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_un *u = (struct sockaddr_un *)&ss;
	u->sun_family = AF_UNIX;
	size_t l = strlen(name);
	if (l == 0) {
		*len = sizeof(sa_family_t);
	} else if (name[0] == '@') {
		memcpy(u->sun_path + 1, name + 1, l - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l);
	} else {
		memcpy(u->sun_path, name, l);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
	}
	return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

TEST(guard, ip)
{
	socklen_t sl, ml;
	struct sockaddr_storage self = v4("192.0.2.1", 7007, &ml), src;
	uint16_t ports[] = {9019, 9013};

	src = v4("198.51.100.9", 40000, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_OK);
	src = v4("198.51.100.9", 1023, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_LOW_PORT);
	src = v4("198.51.100.9", 7, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_LOW_PORT,
	             "another host's echo service");
	src = v4("198.51.100.9", 0, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_LOW_PORT);
	src = v4("198.51.100.9", 1024, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_OK);
	src = v4("192.0.2.1", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_SELF);
	src = v4("198.51.100.9", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_SERVICE_PORT,
	             "the same service on another host");
	src = v4("198.51.100.9", 9013, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 2), BUILTIN_GUARD_SERVICE_PORT);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, ports, 1), BUILTIN_GUARD_OK,
	             "only the ports given count");
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);

	/* A wildcard listener: any local address with its port is itself. */
	self = v4("0.0.0.0", 7007, &ml);
	src = v4("127.0.0.1", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);

	/* Dual stack: a v4-mapped client is the IPv4 address. */
	self = v6("::", 7007, &ml);
	src = v6("::ffff:192.0.2.1", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
	src = v6("::ffff:192.0.2.1", 513, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_LOW_PORT);
	self = v6("2001:db8::1", 7007, &ml);
	src = v6("2001:db8::2", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SERVICE_PORT);
	src = v6("2001:db8::1", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
	src = v6("2001:db8::1", 50000, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);
	self = v4("192.0.2.1", 7007, &ml);
	src = v6("::ffff:192.0.2.1", 7007, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
}

TEST(guard, unix_and_malformed)
{
	socklen_t sl, ml;
	struct sockaddr_storage self = ux("/run/echo.sock", &ml), src;

	src = ux("", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_UNNAMED);
	cr_assert_eq(builtin_dgram_guard(SA(src), 0, SA(self), ml, NULL, 0), BUILTIN_GUARD_UNNAMED,
	             "what recvfrom() gives for an unbound sender");
	src = ux("/tmp/client", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);
	src = ux("@client", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);
	src = ux("/run/echo.sock", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
	/* The same path without its NUL in the length is the same address. */
	cr_assert_eq(builtin_dgram_guard(SA(src), sl - 1, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
	src = ux("/run/echo.sock2", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);

	self = ux("@echo", &ml);
	src = ux("@echo", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_SELF);
	src = ux("@echo2", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);
	src = ux("@ech", &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_OK);

	/* A source of the wrong family or length: never answered. */
	src = v4("198.51.100.9", 40000, &sl);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, SA(self), ml, NULL, 0), BUILTIN_GUARD_FAMILY);
	cr_assert_eq(builtin_dgram_guard(SA(src), 4, NULL, 0, NULL, 0), BUILTIN_GUARD_FAMILY);
	cr_assert_eq(builtin_dgram_guard(SA(src), 1, NULL, 0, NULL, 0), BUILTIN_GUARD_FAMILY);
	cr_assert_eq(builtin_dgram_guard(SA(src), sl, NULL, 0, NULL, 0), BUILTIN_GUARD_OK, "no self to compare");
	struct sockaddr_storage odd = {.ss_family = AF_PACKET};
	cr_assert_eq(builtin_dgram_guard(SA(odd), sizeof(odd), NULL, 0, NULL, 0), BUILTIN_GUARD_FAMILY);
	cr_assert_str_neq(builtin_guard_name(BUILTIN_GUARD_LOW_PORT), "?");
}

/* ---- tcpmux parsing ---- */

static int parse(const char *text, bool final, char *name, size_t *used)
{
	return builtin_tcpmux_parse((const uint8_t *)text, strlen(text), final, name, PROTO_MAX_NAME + 1, used);
}

TEST(tcpmux, parse_lines)
{
	char name[PROTO_MAX_NAME + 1];
	size_t used = 0;

	cr_assert_eq(parse("echo\r\n", false, name, &used), BUILTIN_TCPMUX_SERVICE);
	cr_assert_str_eq(name, "echo");
	cr_assert_eq(used, 6);
	cr_assert_eq(parse("Echo\n", false, name, &used), BUILTIN_TCPMUX_SERVICE);
	cr_assert_str_eq(name, "Echo", "the name is kept as sent (matching is the config's business)");
	cr_assert_eq(used, 5);
	cr_assert_eq(parse("echo\r\nGET / HTTP/1.0\r\n", false, name, &used), BUILTIN_TCPMUX_SERVICE);
	cr_assert_eq(used, 6, "what follows the line is not part of it");
	cr_assert_eq(parse("echo \t\r\n", false, name, &used), BUILTIN_TCPMUX_SERVICE);
	cr_assert_str_eq(name, "echo");
	cr_assert_eq(parse("help\r\n", false, name, &used), BUILTIN_TCPMUX_HELP);
	cr_assert_eq(parse("HeLP\n", false, name, &used), BUILTIN_TCPMUX_HELP);
	cr_assert_eq(used, 5);
	cr_assert_eq(parse("helpme\n", false, name, &used), BUILTIN_TCPMUX_SERVICE);

	cr_assert_eq(parse("", false, name, &used), BUILTIN_TCPMUX_INCOMPLETE);
	cr_assert_eq(parse("ech", false, name, &used), BUILTIN_TCPMUX_INCOMPLETE);
	cr_assert_eq(parse("echo\r", false, name, &used), BUILTIN_TCPMUX_INCOMPLETE);
	cr_assert_eq(parse("echo\r", true, name, &used), BUILTIN_TCPMUX_SERVICE, "a record needs no LF");
	cr_assert_eq(used, 5);
	cr_assert_eq(parse("help", true, name, &used), BUILTIN_TCPMUX_HELP);
}

TEST(tcpmux, parse_refusals)
{
	char name[PROTO_MAX_NAME + 1], line[600];
	size_t used;

	cr_assert_eq(parse("\r\n", false, name, &used), -ENOMSG);
	cr_assert_eq(parse("\n", false, name, &used), -ENOMSG);
	cr_assert_eq(parse("  \r\n", false, name, &used), -ENOMSG);
	cr_assert_eq(parse("", true, name, &used), -ENOMSG);
	cr_assert_eq(parse("ec ho\r\n", false, name, &used), -EINVAL);
	cr_assert_eq(parse(" echo\r\n", false, name, &used), -EINVAL);
	cr_assert_eq(parse("help me\n", false, name, &used), -EINVAL);
	cr_assert_eq(parse("ec\rho\n", false, name, &used), -EINVAL);
	cr_assert_eq(parse("\x01\n", false, name, &used), -EINVAL);
	cr_assert_eq(parse("caf\xc3\xa9\n", false, name, &used), -EINVAL);
	cr_assert_eq(builtin_tcpmux_parse((const uint8_t *)"ec\0ho\n", 6, false, name, sizeof(name), &used), -EINVAL,
	             "a NUL");

	/* Names: up to PROTO_MAX_NAME characters. */
	memset(line, 'a', PROTO_MAX_NAME);
	strcpy(line + PROTO_MAX_NAME, "\r\n");
	cr_assert_eq(parse(line, false, name, &used), BUILTIN_TCPMUX_SERVICE);
	cr_assert_eq(strlen(name), PROTO_MAX_NAME);
	memset(line, 'a', PROTO_MAX_NAME + 1);
	strcpy(line + PROTO_MAX_NAME + 1, "\r\n");
	cr_assert_eq(parse(line, false, name, &used), -ENAMETOOLONG);

	/* The line: at most 256 bytes with its terminator. */
	memset(line, 'a', 255);
	strcpy(line + 255, "\n");
	cr_assert_eq(parse(line, false, name, &used), -ENAMETOOLONG, "256 bytes: a line, too long a name");
	cr_assert_eq(used, 256);
	memset(line, 'a', 255);
	strcpy(line + 255, "\r\n");
	cr_assert_eq(parse(line, false, name, &used), -EMSGSIZE, "257 bytes");
	memset(line, 'a', 255);
	line[255] = '\0';
	cr_assert_eq(parse(line, false, name, &used), BUILTIN_TCPMUX_INCOMPLETE, "255 bytes, still waiting");
	memset(line, 'a', 256);
	line[256] = '\0';
	cr_assert_eq(parse(line, false, name, &used), -EMSGSIZE, "256 bytes and no LF");
	memset(line, 'a', 500);
	strcpy(line + 500, "\n");
	cr_assert_eq(parse(line, false, name, &used), -EMSGSIZE);
	memset(line, 'a', 257);
	line[257] = '\0';
	cr_assert_eq(parse(line, true, name, &used), -EMSGSIZE, "a 257-byte record");
}

/* ---- socket tests: fixture ---- */

#define NSVC 4

struct fx {
	uv_loop_t loop;
	struct hd *hd;
	struct config cfg;
	struct cfg_service cs[NSVC];
	struct cfg_listen cl[NSVC];
	struct service svc[NSVC];
};

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	cr_assert_eq(uv_loop_init(&f->loop), 0);
	f->hd = calloc(1, sizeof(*f->hd));
	cr_assert_not_null(f->hd);
	struct hd *hd = f->hd;
	hd->loop = &f->loop;
	hd->cfg = &f->cfg;
	hd->ctl_fd = -1;
	TAILQ_INIT(&hd->services);
	TAILQ_INIT(&hd->listeners);
	TAILQ_INIT(&hd->ctlconns);
	TAILQ_INIT(&hd->dirty);
	f->cfg.services = f->cs;
	f->cfg.nservices = 0;
	cr_assert_eq(builtin_init(hd), 0);
	cr_assert_not_null(hd->builtins);
	return f;
}

/* Add service number f->cfg.nservices. */
static struct service *fx_service(struct fx *f, const char *name, enum builtin kind, const char *tcpmux_name,
                                  bool plus)
{
	size_t i = f->cfg.nservices++;
	cr_assert_lt(i, NSVC);
	struct cfg_service *cs = &f->cs[i];
	struct service *svc = &f->svc[i];
	snprintf(cs->name, sizeof(cs->name), "%s", name);
	cs->builtin = kind;
	snprintf(cs->tcpmux_name, sizeof(cs->tcpmux_name), "%s", tcpmux_name ? tcpmux_name : "");
	cs->tcpmux_plus = plus;
	cs->listen = &f->cl[i];
	cs->nlisten = 0;
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	svc->hd = f->hd;
	svc->cfg = cs;
	TAILQ_INIT(&svc->listeners);
	TAILQ_INIT(&svc->backends);
	TAILQ_INIT(&svc->pending);
	TAILQ_INSERT_TAIL(&f->hd->services, svc, link);
	return svc;
}

/* One turn of the loop without blocking, then a short nap. */
static void fx_step(struct fx *f)
{
	uv_run(&f->loop, UV_RUN_NOWAIT);
	poll(NULL, 0, 1);
}

static void fx_free(struct fx *f)
{
	builtin_close_all(f->hd);
	cr_assert_null(f->hd->builtins);
	builtin_close_all(f->hd); /* NULL-safe */
	for (int i = 0; i < 1000 && uv_loop_alive(&f->loop); i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	cr_assert_eq(uv_loop_close(&f->loop), 0, "a handle was left open");
	free(f->hd);
	free(f);
}

static struct conn *mk_conn(struct service *svc, int fd)
{
	static uint64_t ids;
	struct conn *c = calloc(1, sizeof(*c));
	cr_assert_not_null(c);
	c->fd = fd;
	c->svc = svc;
	c->id = ++ids;
	return c;
}

/* A connected pair: *client (non-blocking, ours) and the server end given
 * to the builtin of svc, blocking as accept4() makes it. */
static void take_pair(struct fx *f, struct service *svc, int type, int *client)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
	*client = sv[0];
	builtin_stream_take(f->hd, mk_conn(svc, sv[1]));
}

/* Read what arrives on fd into buf (up to cap) until EOF; fails the test
 * after ms. Returns the length. */
static size_t read_to_eof(struct fx *f, int fd, void *buf, size_t cap, int ms)
{
	size_t len = 0;
	for (int i = 0; i < ms; i++) {
		for (;;) {
			uint8_t tmp[8192];
			ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
			if (n == 0)
				return len;
			if (n < 0) {
				cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
				break;
			}
			cr_assert_leq(len + (size_t)n, cap, "more than %zu bytes", cap);
			memcpy((uint8_t *)buf + len, tmp, (size_t)n);
			len += (size_t)n;
		}
		fx_step(f);
	}
	cr_assert_fail("no EOF within %d ms (%zu bytes read)", ms, len);
	return len;
}

/* Read exactly n bytes, driving the loop; fails the test after ms. */
static void read_exactly(struct fx *f, int fd, void *buf, size_t n, int ms)
{
	size_t len = 0;
	for (int i = 0; i < ms && len < n; i++) {
		ssize_t r = recv(fd, (uint8_t *)buf + len, n - len, MSG_DONTWAIT);
		cr_assert_neq(r, 0, "EOF after %zu of %zu bytes", len, n);
		if (r < 0) {
			cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
			fx_step(f);
			continue;
		}
		len += (size_t)r;
	}
	cr_assert_eq(len, n, "%zu of %zu bytes within %d ms", len, n, ms);
}

/* Nothing arrives on fd (and it stays open) while the loop runs for ms. */
static void expect_silence(struct fx *f, int fd, int ms)
{
	for (int i = 0; i < ms; i++) {
		uint8_t b;
		ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);
		cr_assert_lt(r, 0, "%s", r == 0 ? "unexpected EOF" : "unexpected data");
		fx_step(f);
	}
}

/* Run the loop until svc has n builtin connections; fails after ms. */
static void wait_count(struct fx *f, struct service *svc, unsigned n, int ms)
{
	for (int i = 0; i < ms && builtin_count(f->hd, svc) != n; i++)
		fx_step(f);
	cr_assert_eq(builtin_count(f->hd, svc), n, "service '%s': %u builtin connections, not %u", svc->name,
	             builtin_count(f->hd, svc), n);
}

static void send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* ---- echo ---- */

TEST(echo, stream)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	int cl;
	take_pair(f, svc, SOCK_STREAM, &cl);
	cr_assert_eq(builtin_count(f->hd, svc), 1);

	char buf[64];
	send_all(cl, "hello\r\n", 7);
	read_exactly(f, cl, buf, 7, 2000);
	cr_assert_arr_eq(buf, "hello\r\n", 7);
	send_all(cl, "again", 5);
	cr_assert_eq(shutdown(cl, SHUT_WR), 0);
	cr_assert_eq(read_to_eof(f, cl, buf, sizeof(buf), 2000), 5, "flushed before closing");
	cr_assert_arr_eq(buf, "again", 5);
	cr_assert_eq(builtin_count(f->hd, svc), 0);
	close(cl);
	fx_free(f);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131u + (i >> 12) * 7u + (i >> 20));
}

/* The client sends 1 MiB without reading: the echo stops reading when its
 * replies back up, so the client's sends stall well short of 1 MiB; then
 * it reads everything back, intact and in order. */
TEST(echo, backpressure)
{
	enum { TOTAL = 1 << 20 };
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	int cl;
	take_pair(f, svc, SOCK_STREAM, &cl);

	static uint8_t out[TOTAL], in[TOTAL];
	for (size_t i = 0; i < TOTAL; i++)
		out[i] = pattern(i);

	size_t sent = 0, got = 0;
	int idle = 0;
	while (sent < TOTAL && idle < 50) {
		ssize_t n = send(cl, out + sent, TOTAL - sent < 65536 ? TOTAL - sent : 65536, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			idle = 0;
		} else {
			cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "send: %s", strerror(errno));
			idle++;
		}
		fx_step(f);
	}
	cr_assert_lt(sent, TOTAL, "all of 1 MiB was taken without the client reading: no backpressure");
	cr_assert_gt(sent, BUILTIN_BUF);
	cr_assert_eq(builtin_count(f->hd, svc), 1, "a stalled client is not dropped");

	for (int i = 0; got < TOTAL && i < 20000; i++) {
		ssize_t n = recv(cl, in + got, TOTAL - got, MSG_DONTWAIT);
		cr_assert_neq(n, 0, "EOF after %zu bytes", got);
		if (n > 0)
			got += (size_t)n;
		if (sent < TOTAL) {
			n = send(cl, out + sent, TOTAL - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		fx_step(f);
	}
	cr_assert_eq(got, TOTAL, "read back %zu of %d bytes", got, TOTAL);
	for (size_t i = 0; i < TOTAL; i++)
		cr_assert_eq(in[i], out[i], "byte %zu differs", i);
	cr_assert_eq(shutdown(cl, SHUT_WR), 0);
	uint8_t tail[16];
	cr_assert_eq(read_to_eof(f, cl, tail, sizeof(tail), 2000), 0);
	close(cl);
	fx_free(f);
}

/* On seqpacket each record comes back as one record; one larger than the
 * buffer ends the connection. */
TEST(echo, seqpacket_records)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	int cl;
	take_pair(f, svc, SOCK_SEQPACKET, &cl);

	static uint8_t rec[BUILTIN_BUF + 1], back[BUILTIN_BUF + 100];
	const size_t sizes[] = {1, 100, 3000, BUILTIN_BUF};
	for (size_t i = 0; i < sizeof(rec); i++)
		rec[i] = pattern(i);
	for (size_t k = 0; k < N_ELEMENTS(sizes); k++)
		send_all(cl, rec, sizes[k]);
	for (size_t k = 0; k < N_ELEMENTS(sizes); k++) {
		ssize_t n = -1;
		for (int i = 0; i < 2000; i++) {
			n = recv(cl, back, sizeof(back), MSG_DONTWAIT);
			if (n >= 0)
				break;
			fx_step(f);
		}
		cr_assert_eq(n, (ssize_t)sizes[k], "record %zu: %zd bytes back, sent %zu", k, n, sizes[k]);
		cr_assert_arr_eq(back, rec, sizes[k]);
	}
	send_all(cl, rec, BUILTIN_BUF + 1);
	cr_assert_eq(read_to_eof(f, cl, back, sizeof(back), 2000), 0, "oversized record: closed, nothing echoed");
	cr_assert_eq(builtin_count(f->hd, svc), 0);
	close(cl);
	fx_free(f);
}

/* ---- discard ---- */

TEST(discard, stream)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "discard", BUILTIN_DISCARD, NULL, false);
	int cl;
	take_pair(f, svc, SOCK_STREAM, &cl);

	static uint8_t junk[1 << 20];
	size_t sent = 0;
	for (int i = 0; sent < sizeof(junk) && i < 20000; i++) {
		ssize_t n = send(cl, junk + sent, sizeof(junk) - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		fx_step(f);
	}
	cr_assert_eq(sent, sizeof(junk), "discard kept reading");
	expect_silence(f, cl, 20);
	cr_assert_eq(builtin_count(f->hd, svc), 1);
	cr_assert_eq(shutdown(cl, SHUT_WR), 0);
	uint8_t b[16];
	cr_assert_eq(read_to_eof(f, cl, b, sizeof(b), 2000), 0, "closed at EOF, having sent nothing");
	cr_assert_eq(builtin_count(f->hd, svc), 0);
	close(cl);
	fx_free(f);
}

/* ---- chargen ---- */

TEST(chargen, stream)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "chargen", BUILTIN_CHARGEN, NULL, false);
	int cl;
	take_pair(f, svc, SOCK_STREAM, &cl);

	/* 100 lines and some: past the first wrap of the pattern. */
	static uint8_t got[74 * 100 + 13];
	read_exactly(f, cl, got, sizeof(got), 2000);
	for (size_t k = 0; k < sizeof(got); k++) {
		size_t line = k / 74, col = k % 74;
		uint8_t want = col < 72 ? (uint8_t)printable[(line + col) % 95] : col == 72 ? '\r' : '\n';
		cr_assert_eq(got[k], want, "byte %zu (line %zu, column %zu)", k, line, col);
	}
	/* Input is read and dropped; EOF on it does not stop the stream. */
	send_all(cl, "ignored", 7);
	cr_assert_eq(shutdown(cl, SHUT_WR), 0);
	read_exactly(f, cl, got, 74 * 10, 2000);
	cr_assert_eq(builtin_count(f->hd, svc), 1);
	/* The client goes away: the next send fails and the builtin ends. */
	close(cl);
	for (int i = 0; i < 2000 && builtin_count(f->hd, svc); i++)
		fx_step(f);
	cr_assert_eq(builtin_count(f->hd, svc), 0, "chargen kept a closed client");
	fx_free(f);
}

/* ---- daytime and time ---- */

TEST(daytime, stream)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "daytime", BUILTIN_DAYTIME, NULL, false);
	int cl;
	time_t t0 = time(NULL);
	take_pair(f, svc, SOCK_STREAM, &cl);
	/* Input it never reads must not reset the connection under the line. */
	send_all(cl, "what time is it?\r\n", 18);
	char got[128];
	size_t n = read_to_eof(f, cl, got, sizeof(got) - 1, 2000);
	time_t t1 = time(NULL);
	got[n] = '\0';
	bool match = false;
	for (time_t t = t0; t <= t1 && !match; t++) {
		struct tm tm;
		char want[BUILTIN_DAYTIME_MAX];
		cr_assert_not_null(localtime_r(&t, &tm));
		cr_assert_gt(builtin_daytime_format(&tm, want, sizeof(want)), 0);
		match = strcmp(got, want) == 0;
	}
	cr_assert(match, "daytime sent '%s'", got);
	close(cl);
	wait_count(f, svc, 0, 2000);
	fx_free(f);
}

TEST(time, stream)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "time", BUILTIN_TIME, NULL, false);
	int cl;
	time_t t0 = time(NULL);
	take_pair(f, svc, SOCK_STREAM, &cl);
	uint8_t got[16];
	size_t n = read_to_eof(f, cl, got, sizeof(got), 2000);
	time_t t1 = time(NULL);
	cr_assert_eq(n, 4);
	uint32_t v = (uint32_t)got[0] << 24 | (uint32_t)got[1] << 16 | (uint32_t)got[2] << 8 | got[3];
	cr_assert(v >= builtin_time_value(t0) && v <= builtin_time_value(t1), "time sent %u", v);
	close(cl);
	wait_count(f, svc, 0, 2000);
	fx_free(f);
}

/* ---- tcpmux ---- */

struct mux {
	struct fx *f;
	struct service *mux, *plus, *plain;
};

static struct mux mux_new(void)
{
	struct mux m;
	m.f = fx_new();
	m.mux = fx_service(m.f, "tcpmux", BUILTIN_TCPMUX, NULL, false);
	m.plus = fx_service(m.f, "web", BUILTIN_NONE, "Web-Plus", true);
	m.plain = fx_service(m.f, "other", BUILTIN_NONE, "other", false);
	fx_service(m.f, "hidden", BUILTIN_NONE, NULL, false);
	return m;
}

/* What tcpmux sends for request before closing. */
static size_t mux_answer(struct mux *m, const char *request, char *got, size_t cap)
{
	int cl;
	take_pair(m->f, m->mux, SOCK_STREAM, &cl);
	send_all(cl, request, strlen(request));
	size_t n = read_to_eof(m->f, cl, got, cap - 1, 2000);
	got[n] = '\0';
	close(cl);
	wait_count(m->f, m->mux, 0, 2000);
	return n;
}

TEST(tcpmux, help)
{
	struct mux m = mux_new();
	char got[256];
	mux_answer(&m, "help\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "Web-Plus\r\nother\r\n");
	mux_answer(&m, "HELP\n", got, sizeof(got));
	cr_assert_str_eq(got, "Web-Plus\r\nother\r\n");
	fx_free(m.f);
}

TEST(tcpmux, refusals)
{
	struct mux m = mux_new();
	char got[256], line[400];
	mux_answer(&m, "nosuch\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "-Service not available\r\n");
	mux_answer(&m, "hidden\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "-Service not available\r\n", "a service without tcpmux_name is not reachable");
	mux_answer(&m, "tcpmux\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "-Service not available\r\n");
	mux_answer(&m, "\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "-Empty request\r\n");
	mux_answer(&m, "a b\r\n", got, sizeof(got));
	cr_assert_str_eq(got, "-Bad request\r\n");
	memset(line, 'x', 300);
	strcpy(line + 300, "\r\n");
	mux_answer(&m, line, got, sizeof(got));
	cr_assert_str_eq(got, "-Request too long\r\n");
	cr_assert_eq(TAILQ_FIRST(&m.plus->pending), NULL);
	cr_assert_eq(TAILQ_FIRST(&m.plain->pending), NULL);
	fx_free(m.f);
}

/* The connection dispatch_tcpmux() queued for svc (no backend: it waits). */
static struct conn *handed_to(struct fx *f, struct service *svc)
{
	for (int i = 0; i < 2000 && !TAILQ_FIRST(&svc->pending); i++)
		fx_step(f);
	struct conn *c = TAILQ_FIRST(&svc->pending);
	cr_assert_not_null(c, "nothing was handed to service '%s'", svc->name);
	TAILQ_REMOVE(&svc->pending, c, link);
	svc->npending--;
	cr_assert_eq(c->svc, svc);
	return c;
}

/* A known name with tcpmux_plus: "+Go", then the connection goes to the
 * service, blocking again, with the bytes after the line still unread. The
 * request arrives in pieces. */
TEST(tcpmux, handover_plus)
{
	struct mux m = mux_new();
	int cl;
	take_pair(m.f, m.mux, SOCK_STREAM, &cl);
	send_all(cl, "web-", 4);
	expect_silence(m.f, cl, 10);
	send_all(cl, "PLUS\r", 5);
	expect_silence(m.f, cl, 10);
	send_all(cl, "\nGET / HTTP/1.0\r\n\r\n", 19);
	char got[8];
	read_exactly(m.f, cl, got, 5, 2000);
	cr_assert_arr_eq(got, "+Go\r\n", 5);

	struct conn *c = handed_to(m.f, m.plus);
	cr_assert_eq(builtin_count(m.f->hd, m.mux), 0);
	cr_assert_eq(fcntl(c->fd, F_GETFL) & O_NONBLOCK, 0, "handed over non-blocking");
	char rest[64];
	ssize_t n = recv(c->fd, rest, sizeof(rest), MSG_DONTWAIT);
	cr_assert_eq(n, 18, "the target got %zd bytes, not the 18 after the line", n);
	cr_assert_arr_eq(rest, "GET / HTTP/1.0\r\n\r\n", 18);
	/* The target owns the connection now: the client sees no EOF. */
	expect_silence(m.f, cl, 10);
	conn_free(c);
	close(cl);
	fx_free(m.f);
}

TEST(tcpmux, handover_plain)
{
	struct mux m = mux_new();
	int cl;
	take_pair(m.f, m.mux, SOCK_STREAM, &cl);
	send_all(cl, "OTHER\nx", 7);
	struct conn *c = handed_to(m.f, m.plain);
	char rest[8];
	cr_assert_eq(recv(c->fd, rest, sizeof(rest), MSG_DONTWAIT), 1);
	cr_assert_eq(rest[0], 'x');
	cr_assert_eq(recv(cl, rest, sizeof(rest), MSG_DONTWAIT), -1, "no '+' without tcpmux_plus");
	conn_free(c);
	close(cl);
	fx_free(m.f);
}

TEST(tcpmux, seqpacket)
{
	struct mux m = mux_new();
	int cl;
	take_pair(m.f, m.mux, SOCK_SEQPACKET, &cl);
	send_all(cl, "other\r\n", 7);
	send_all(cl, "next record", 11);
	struct conn *c = handed_to(m.f, m.plain);
	char rest[16];
	cr_assert_eq(recv(c->fd, rest, sizeof(rest), MSG_DONTWAIT), 11);
	conn_free(c);
	close(cl);

	/* A record with more than the line: refused (the rest would be lost). */
	char got[64];
	take_pair(m.f, m.mux, SOCK_SEQPACKET, &cl);
	send_all(cl, "other\r\nmore", 11);
	size_t n = read_to_eof(m.f, cl, got, sizeof(got) - 1, 2000);
	got[n] = '\0';
	cr_assert_str_eq(got, "-Bad request\r\n");
	close(cl);
	fx_free(m.f);
}

/* ---- timeouts, service removal, shutdown ---- */

TEST(timeouts, idle_and_request)
{
	struct fx *f = fx_new();
	struct service *echo = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	struct service *mux = fx_service(f, "tcpmux", BUILTIN_TCPMUX, NULL, false);
	builtin_set_timeouts(f->hd, 150, 100);
	int busy, idle, quiet;
	take_pair(f, echo, SOCK_STREAM, &busy);
	take_pair(f, echo, SOCK_STREAM, &idle);
	take_pair(f, mux, SOCK_STREAM, &quiet);

	/* busy talks every 30 ms for 450 ms and stays; idle is closed. */
	uint64_t start = uv_now(&f->loop);
	char b[8];
	for (int i = 0; i < 15; i++) {
		send_all(busy, "x", 1);
		read_exactly(f, busy, b, 1, 1000);
		for (int k = 0; k < 30; k++)
			fx_step(f);
	}
	uv_update_time(&f->loop);
	cr_assert_geq(uv_now(&f->loop) - start, 400);
	cr_assert_eq(builtin_count(f->hd, echo), 1, "the busy connection was closed or the idle one kept");
	cr_assert_eq(read_to_eof(f, idle, b, sizeof(b), 10), 0);
	cr_assert_eq(read_to_eof(f, quiet, b, sizeof(b), 10), 0, "tcpmux waited for a request too long");
	cr_assert_eq(builtin_count(f->hd, mux), 0);
	close(busy);
	close(idle);
	close(quiet);
	fx_free(f);
}

TEST(lifecycle, service_gone_and_close_all)
{
	struct fx *f = fx_new();
	struct service *echo = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	struct service *disc = fx_service(f, "discard", BUILTIN_DISCARD, NULL, false);
	int e1, e2, d1;
	take_pair(f, echo, SOCK_STREAM, &e1);
	take_pair(f, disc, SOCK_STREAM, &d1);
	take_pair(f, echo, SOCK_STREAM, &e2);
	cr_assert_eq(builtin_count(f->hd, echo), 2);
	cr_assert_eq(builtin_count(f->hd, disc), 1);

	builtin_service_gone(f->hd, echo);
	cr_assert_eq(builtin_count(f->hd, echo), 0);
	cr_assert_eq(builtin_count(f->hd, disc), 1);
	char b[8];
	cr_assert_eq(read_to_eof(f, e1, b, sizeof(b), 100), 0);
	cr_assert_eq(read_to_eof(f, e2, b, sizeof(b), 100), 0);
	expect_silence(f, d1, 10);

	/* Shutdown with a connection open: closed, and the loop closes
	 * cleanly (fx_free checks uv_loop_close). */
	builtin_close_all(f->hd);
	cr_assert_eq(read_to_eof(f, d1, b, sizeof(b), 100), 0);
	close(e1);
	close(e2);
	close(d1);
	fx_free(f);
}

/* A connection for a service without a builtin, or before builtin_init():
 * closed at once, nothing leaks. */
TEST(lifecycle, refused_takes)
{
	struct fx *f = fx_new();
	struct service *none = fx_service(f, "none", BUILTIN_NONE, NULL, false);
	int cl;
	take_pair(f, none, SOCK_STREAM, &cl);
	char b[8];
	cr_assert_eq(read_to_eof(f, cl, b, sizeof(b), 100), 0);
	close(cl);
	builtin_close_all(f->hd);
	f->cs[0].builtin = BUILTIN_ECHO;
	take_pair(f, none, SOCK_STREAM, &cl);
	cr_assert_eq(read_to_eof(f, cl, b, sizeof(b), 100), 0);
	close(cl);
	fx_free(f);
}

/* ---- datagrams ---- */

/* A datagram listener of svc bound to addr (AF_INET, or AF_UNIX). */
static struct listener *dg_listener(struct fx *f, struct service *svc, const struct sockaddr *addr, socklen_t len)
{
	struct listener *l = calloc(1, sizeof(*l));
	cr_assert_not_null(l);
	l->hd = f->hd;
	l->svc = svc;
	l->fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_geq(l->fd, 0);
	cr_assert_eq(bind(l->fd, addr, len), 0, "bind: %s", strerror(errno));
	l->addr_len = sizeof(l->addr);
	cr_assert_eq(getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addr_len), 0);
	snprintf(l->text, sizeof(l->text), "%s://test-%d", addr->sa_family == AF_UNIX ? "unix-dgram" : "udp", l->fd);
	snprintf(l->display, sizeof(l->display), "%s", l->text);
	struct cfg_service *cs = (struct cfg_service *)svc->cfg;
	struct cfg_listen *cl = &cs->listen[cs->nlisten++];
	snprintf(cl->text, sizeof(cl->text), "%s", l->text);
	cl->spec.kind = addr->sa_family == AF_UNIX ? ADDR_UNIX : ADDR_UDP;
	cl->spec.socktype = SOCK_DGRAM;
	TAILQ_INSERT_TAIL(&f->hd->listeners, l, link);
	return l;
}

static void dg_listener_free(struct fx *f, struct listener *l)
{
	TAILQ_REMOVE(&f->hd->listeners, l, link);
	close(l->fd);
	free(l);
}

static int udp_socket(uint16_t port, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	socklen_t len;
	struct sockaddr_storage a = v4("127.0.0.1", port, &len);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, SA(a), len), 0);
	*ret_len = sizeof(*ret);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)ret, ret_len), 0);
	return fd;
}

/* Send one datagram to l, let the builtin answer, and return the length of
 * the reply (-1: none). */
static ssize_t dg_ask(struct listener *l, int client, const void *p, size_t n, void *reply, size_t cap)
{
	cr_assert_eq(sendto(client, p, n, 0, (struct sockaddr *)&l->addr, l->addr_len), (ssize_t)n);
	builtin_dgram_readable(l);
	/* Local delivery is synchronous; give it a moment all the same. */
	struct pollfd pfd = {.fd = client, .events = POLLIN};
	if (poll(&pfd, 1, 50) <= 0)
		return -1;
	return recv(client, reply, cap, MSG_DONTWAIT);
}

TEST(dgram, udp_services)
{
	struct fx *f = fx_new();
	struct service *echo = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	struct service *chargen = fx_service(f, "chargen", BUILTIN_CHARGEN, NULL, false);
	struct service *daytime = fx_service(f, "daytime", BUILTIN_DAYTIME, NULL, false);
	struct service *tm = fx_service(f, "time", BUILTIN_TIME, NULL, false);
	socklen_t len;
	struct sockaddr_storage any = v4("127.0.0.1", 0, &len), me;
	struct listener *le = dg_listener(f, echo, SA(any), len);
	struct listener *lc = dg_listener(f, chargen, SA(any), len);
	struct listener *ld = dg_listener(f, daytime, SA(any), len);
	struct listener *lt = dg_listener(f, tm, SA(any), len);
	socklen_t melen;
	int cl = udp_socket(0, &me, &melen);
	static uint8_t reply[70000], big[60000];

	cr_assert_eq(dg_ask(le, cl, "ping", 4, reply, sizeof(reply)), 4);
	cr_assert_arr_eq(reply, "ping", 4);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pattern(i);
	cr_assert_eq(dg_ask(le, cl, big, sizeof(big), reply, sizeof(reply)), (ssize_t)sizeof(big));
	cr_assert_arr_eq(reply, big, sizeof(big));

	/* chargen: random lengths 0..512 of the pattern. */
	bool lengths_vary = false;
	ssize_t first = -2;
	uint8_t want[BUILTIN_DGRAM_CHARGEN_MAX];
	uint32_t pos = 0;
	builtin_chargen_fill(&pos, want, sizeof(want));
	for (int i = 0; i < 20; i++) {
		ssize_t n = dg_ask(lc, cl, "x", 1, reply, sizeof(reply));
		cr_assert(n >= 0 && n <= BUILTIN_DGRAM_CHARGEN_MAX, "chargen reply of %zd bytes", n);
		cr_assert_arr_eq(reply, want, (size_t)n);
		if (first == -2)
			first = n;
		else if (n != first)
			lengths_vary = true;
	}
	cr_assert(lengths_vary, "20 chargen replies of the same length");

	time_t t0 = time(NULL);
	ssize_t n = dg_ask(ld, cl, "", 0, reply, sizeof(reply));
	cr_assert_geq(n, 26);
	cr_assert_arr_eq(reply + n - 2, "\r\n", 2);
	n = dg_ask(lt, cl, "", 0, reply, sizeof(reply));
	cr_assert_eq(n, 4);
	uint32_t v = (uint32_t)reply[0] << 24 | (uint32_t)reply[1] << 16 | (uint32_t)reply[2] << 8 | reply[3];
	cr_assert(v >= builtin_time_value(t0) && v <= builtin_time_value(time(NULL)));

	close(cl);
	dg_listener_free(f, le);
	dg_listener_free(f, lc);
	dg_listener_free(f, ld);
	dg_listener_free(f, lt);
	fx_free(f);
}

TEST(dgram, discard)
{
	struct fx *f = fx_new();
	struct service *svc = fx_service(f, "discard", BUILTIN_DISCARD, NULL, false);
	socklen_t len, melen;
	struct sockaddr_storage any = v4("127.0.0.1", 0, &len), me;
	struct listener *l = dg_listener(f, svc, SA(any), len);
	int cl = udp_socket(0, &me, &melen);
	uint8_t reply[16];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(sendto(cl, "zz", 2, 0, (struct sockaddr *)&l->addr, l->addr_len), 2);
	cr_assert_eq(dg_ask(l, cl, "a", 1, reply, sizeof(reply)), -1, "discard answered");
	cr_assert_eq(recv(l->fd, reply, sizeof(reply), MSG_DONTWAIT), -1, "datagrams left in the socket");
	cr_assert_eq(errno, EAGAIN);
	close(cl);
	dg_listener_free(f, l);
	fx_free(f);
}

/* The classic ping-pong: one echo service's reply arriving at another (or
 * at itself) is dropped, not answered. */
TEST(dgram, loop_guard)
{
	struct fx *f = fx_new();
	struct service *echo = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	struct service *chargen = fx_service(f, "chargen", BUILTIN_CHARGEN, NULL, false);
	socklen_t len;
	struct sockaddr_storage any = v4("127.0.0.1", 0, &len);
	struct listener *le = dg_listener(f, echo, SA(any), len);
	struct listener *lc = dg_listener(f, chargen, SA(any), len);
	uint8_t reply[600];

	/* chargen's socket sends to echo: echo must stay silent. */
	cr_assert_eq(dg_ask(le, lc->fd, "loop?", 5, reply, sizeof(reply)), -1, "echo answered chargen's port");
	/* echo sends to itself. */
	cr_assert_eq(dg_ask(le, le->fd, "self", 4, reply, sizeof(reply)), -1, "echo answered itself");
	/* An ordinary client is answered, by both. */
	struct sockaddr_storage me;
	socklen_t melen;
	int cl = udp_socket(0, &me, &melen);
	cr_assert_eq(dg_ask(le, cl, "hi", 2, reply, sizeof(reply)), 2);
	cr_assert_geq(dg_ask(lc, cl, "hi", 2, reply, sizeof(reply)), 0);
	close(cl);
	dg_listener_free(f, le);
	dg_listener_free(f, lc);
	fx_free(f);
}

/* unix-dgram: a client without an address gets nothing (there is nowhere
 * to send it); a bound one gets its answer. */
TEST(dgram, unix_clients)
{
	struct fx *f = fx_new();
	struct service *echo = fx_service(f, "echo", BUILTIN_ECHO, NULL, false);
	char name[64];
	snprintf(name, sizeof(name), "@handoffd-test-builtin-%d", (int)getpid());
	socklen_t len;
	struct sockaddr_storage sa = ux(name, &len);
	struct listener *l = dg_listener(f, echo, SA(sa), len);
	uint8_t reply[16];

	int anon = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(anon, 0);
	cr_assert_eq(sendto(anon, "hi", 2, 0, (struct sockaddr *)&l->addr, l->addr_len), 2);
	builtin_dgram_readable(l);
	cr_assert_eq(recv(l->fd, reply, sizeof(reply), MSG_DONTWAIT), -1, "datagram not consumed");
	close(anon);

	int bound = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(bound, 0);
	snprintf(name, sizeof(name), "@handoffd-test-builtin-client-%d", (int)getpid());
	sa = ux(name, &len);
	cr_assert_eq(bind(bound, SA(sa), len), 0);
	cr_assert_eq(dg_ask(l, bound, "hi", 2, reply, sizeof(reply)), 2);
	cr_assert_arr_eq(reply, "hi", 2);
	close(bound);
	dg_listener_free(f, l);
	fx_free(f);
}
