/* Integration: the builtin services over TCP (echo, discard, chargen,
 * daytime, time) and tcpmux (RFC 1078) reaching backends and programs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(builtin, .init = h_init, .fini = h_fini);

/* One builtin service on a fresh port; returns its address. */
static struct h_addr start_builtin(const char *name)
{
	int port = h_free_port(AF_INET);
	h_config("[service %s]\nbuiltin = %s\nlisten = tcp://127.0.0.1:%d\n", name, name, port);
	h_start_daemon();
	return h_addr_tcp("127.0.0.1", port);
}

Test(builtin, echo_tcp, .timeout = 15)
{
	struct h_addr a = start_builtin("echo");
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	char buf[256];
	cr_assert(h_send(fd, "hello\n") == 0);
	cr_assert(h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS) > 0);
	cr_assert_str_eq(buf, "hello\n");

	/* Far more than its 4 KiB buffer, sent while reading back: nothing is
	 * lost or reordered however the writes are cut. */
	enum { TOTAL = 200000 };
	size_t sent = 0, got = 0;
	char out[4096], in[4096];
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (got < TOTAL && h_now_ms() < end) {
		struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < TOTAL ? POLLOUT : 0)};
		poll(&pf, 1, 100);
		if ((pf.revents & POLLOUT) && sent < TOTAL) {
			size_t n = TOTAL - sent < sizeof(out) ? TOTAL - sent : sizeof(out);
			for (size_t i = 0; i < n; i++)
				out[i] = (char)((sent + i) * 7 % 251);
			ssize_t w = send(fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
		}
		if (pf.revents & POLLIN) {
			ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			cr_assert(r != 0, "echo closed after %zu of %d bytes", got, TOTAL);
			for (ssize_t i = 0; i < r; i++)
				cr_assert_eq(in[i], (char)((got + (size_t)i) * 7 % 251), "byte %zu differs", got + (size_t)i);
			if (r > 0)
				got += (size_t)r;
		}
	}
	cr_assert_eq(got, (size_t)TOTAL, "echoed %zu of %d bytes", got, TOTAL);
	/* Our EOF: echo finishes and closes. */
	shutdown(fd, SHUT_WR);
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert_eq(n, 0, "after our EOF: %zd ('%s')", n, buf);
	close(fd);
	h_finish();
}

Test(builtin, echo_seqpacket_keeps_records, .timeout = 15)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/echo.sock", h.dir);
	h_config("[service echo]\nbuiltin = echo\nlisten = unix-seqpacket:%s\n", path);
	h_start_daemon();
	struct h_addr a = h_addr_unix(path);
	int fd = h_connect_type(&a, SOCK_SEQPACKET, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect: %s", strerror(-fd));
	cr_assert(send(fd, "one", 3, 0) == 3);
	cr_assert(send(fd, "two!", 4, 0) == 4);
	char buf[64];
	cr_assert(h_readable(fd, H_DEADLINE_MS));
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(n, 3, "first record: %zd bytes", n);
	cr_assert(memcmp(buf, "one", 3) == 0);
	cr_assert(h_readable(fd, H_DEADLINE_MS));
	n = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(n, 4, "second record: %zd bytes", n);
	cr_assert(memcmp(buf, "two!", 4) == 0);
	close(fd);
	h_finish();
}

Test(builtin, discard_swallows_and_stays_open, .timeout = 15)
{
	struct h_addr a = start_builtin("discard");
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	char chunk[8192];
	memset(chunk, 'x', sizeof(chunk));
	/* Much more than fits in the socket buffers: it must keep reading. */
	size_t sent = 0;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (sent < 1000000 && h_now_ms() < end) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		poll(&pf, 1, 100);
		ssize_t w = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
		cr_assert(w > 0 || errno == EAGAIN, "send failed after %zu bytes: %s", sent, strerror(errno));
		if (w > 0)
			sent += (size_t)w;
	}
	cr_assert(sent >= 1000000, "discard stopped reading after %zu bytes", sent);
	/* Nothing comes back and the connection stays open (no EOF). */
	cr_assert(!h_readable(fd, 200), "discard sent something or closed");
	close(fd);
	h_finish();
}

Test(builtin, chargen_rfc864_lines, .timeout = 15)
{
	struct h_addr a = start_builtin("chargen");
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	/* 96 lines: one full period of 95 and the first line again. */
	enum { LINE = 74, LINES = 96 };
	static char buf[LINE * LINES + 1];
	size_t got = 0;
	uint64_t end = h_now_ms() + H_DEADLINE_MS;
	while (got < sizeof(buf) - 1 && h_now_ms() < end) {
		if (!h_readable(fd, 100))
			continue;
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		cr_assert(r != 0, "chargen closed after %zu bytes", got);
		if (r > 0)
			got += (size_t)r;
	}
	cr_assert_eq(got, sizeof(buf) - 1);
	for (int l = 0; l < LINES; l++) {
		const char *line = buf + l * LINE;
		for (int i = 0; i < 72; i++) {
			char want = (char)(' ' + (l + i) % 95);
			cr_assert_eq(line[i], want, "line %d col %d: '%c', expected '%c'", l, i, line[i], want);
		}
		cr_assert(line[72] == '\r' && line[73] == '\n', "line %d does not end in CRLF", l);
	}
	cr_assert(memcmp(buf, " !\"#$%&'()*+,-./0123456789", 26) == 0, "first line: %.74s", buf);
	close(fd);
	h_finish();
}

Test(builtin, daytime_tcp, .timeout = 15)
{
	struct h_addr a = start_builtin("daytime");
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	char buf[128];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "no daytime (%zd)", n);
	time_t t;
	cr_assert(h_parse_daytime(buf, &t), "not a daytime line: '%s'", buf);
	cr_assert(n >= 2 && strcmp(buf + n - 2, "\r\n") == 0, "no CRLF: '%s'", buf);
	time_t now = time(NULL);
	cr_assert(t >= now - 5 && t <= now + 5, "daytime '%s' is %lld s off", buf, (long long)(t - now));
	h_finish();
}

Test(builtin, time_rfc868, .timeout = 15)
{
	struct h_addr a = start_builtin("time");
	int fd = h_connect(&a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0);
	unsigned char buf[16];
	ssize_t n = h_read_all(fd, (char *)buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert_eq(n, 4, "time sent %zd bytes, RFC 868 says 4 then close", n);
	uint32_t v = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	uint32_t now = (uint32_t)((uint64_t)time(NULL) + 2208988800u);
	int32_t diff = (int32_t)(v - now);
	cr_assert(diff >= -5 && diff <= 5, "time %u is %d s from now (%u)", v, diff, now);
	h_finish();
}

Test(builtin, refuses_backend_registration, .timeout = 15)
{
	start_builtin("echo");
	struct h_proc *b = h_backend_try("echo", 1, NULL, NULL);
	char line[300];
	cr_assert(h_proc_line(b, "refused", line, sizeof(line)), "a backend registered for a builtin:\n%s", b->out);
	cr_assert(strstr(line, "builtin"), "the refusal does not say why: '%s'", line);
	int st = h_proc_wait_exit(b, H_DEADLINE_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	h_finish();
}

/* ---- tcpmux ---- */

/* A tcpmux builtin plus targets: "hello" (+, a backend), "plain" (no +, a
 * backend) and "cat" (+, /bin/cat). */
static struct h_addr start_tcpmux(void)
{
	int port = h_free_port(AF_INET);
	h_config("[service mux]\nbuiltin = tcpmux\nlisten = tcp://127.0.0.1:%d\n"
	         "[service hello]\ntcpmux = +hello\n"
	         "[service plain]\ntcpmux = plain\n"
	         "[service catmux]\ntcpmux = +cat\nexec = /bin/cat\nexec_user = root\n"
	         "[service closed]\ntcpmux = +closed\ndeny_from = 127.0.0.0/8\n",
	         port);
	h_start_daemon();
	return h_addr_tcp("127.0.0.1", port);
}

/* Connect and send a tcpmux request line. */
static int mux_request(const struct h_addr *a, const char *line)
{
	int fd = h_connect(a, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect: %s", strerror(-fd));
	cr_assert(h_send(fd, line) == 0);
	return fd;
}

/* Does text have a line (CRLF or LF ended) equal to name, any case? */
static bool has_line(const char *text, const char *name)
{
	size_t nl = strlen(name);
	for (const char *l = text; *l;) {
		size_t len = strcspn(l, "\r\n");
		if (len == nl && strncasecmp(l, name, nl) == 0)
			return true;
		l += len;
		l += strspn(l, "\r\n");
	}
	return false;
}

Test(builtin, tcpmux_help_and_unknown, .timeout = 15)
{
	struct h_addr a = start_tcpmux();
	char buf[1024];
	int fd = mux_request(&a, "help\r\n");
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "help: no answer (%zd)", n);
	/* One name per line. */
	const char *names[] = {"hello", "plain", "cat"};
	for (size_t i = 0; i < 3; i++)
		cr_assert(has_line(buf, names[i]), "help does not list '%s':\n%s", names[i], buf);
	cr_assert(!has_line(buf, "mux"), "help lists the tcpmux service itself:\n%s", buf);
	/* Any case. */
	fd = mux_request(&a, "HELP\r\n");
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && has_line(buf, "hello"), "HELP: '%s'", buf);

	fd = mux_request(&a, "no-such-service\r\n");
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && buf[0] == '-', "unknown service: expected '-...', got '%s'", buf);
	cr_assert(strstr(buf, "\r\n"), "the refusal line does not end in CRLF: '%s'", buf);
	h_finish();
}

Test(builtin, tcpmux_plus_reaches_backend, .timeout = 15)
{
	struct h_addr a = start_tcpmux();
	struct h_proc *b = h_backend("hello", 2, NULL, NULL);
	char buf[512];
	int fd = mux_request(&a, "hello\r\n");
	ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, "+Go\r\n") == 0, "expected '+Go\\r\\n', got '%s' (%zd)", buf, n);
	/* From here on the connection is the backend's. */
	cr_assert(h_send(fd, "hello\n") == 0);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans), "backend answer: '%s'", buf);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "hello");

	/* Names are case-insensitive. */
	fd = mux_request(&a, "HeLLo\r\n");
	n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, "+Go\r\n") == 0, "'HeLLo': got '%s'", buf);
	cr_assert(h_send(fd, "hello\n") == 0);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && h_parse_answer(buf, &ans) && ans.pid == b->pid, "answer: '%s'", buf);
	h_finish();
}

Test(builtin, tcpmux_without_plus_leaves_reply_to_server, .timeout = 15)
{
	struct h_addr a = start_tcpmux();
	struct h_proc *b = h_backend("plain", 2, NULL, NULL);
	char buf[512];
	/* The request line and the first request in one write: what follows
	 * the line belongs to the server. */
	int fd = mux_request(&a, "plain\r\nhello\n");
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	struct h_answer ans;
	cr_assert(n > 0 && h_parse_answer(buf, &ans), "expected the backend's answer only (no +Go), got '%s'", buf);
	cr_assert_eq(ans.pid, b->pid);
	cr_assert_str_eq(ans.svc, "plain");
	h_finish();
}

Test(builtin, tcpmux_plus_reaches_program, .timeout = 15)
{
	struct h_addr a = start_tcpmux();
	char buf[512];
	int fd = mux_request(&a, "cat\r\n");
	ssize_t n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, "+Go\r\n") == 0, "expected '+Go\\r\\n', got '%s'", buf);
	cr_assert(h_send(fd, "meow\n") == 0);
	n = h_read_line(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0 && strcmp(buf, "meow\n") == 0, "cat echoed '%s'", buf);
	shutdown(fd, SHUT_WR);
	n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert_eq(n, 0, "after EOF: %zd '%s'", n, buf);
	close(fd);
	h_finish();
}

/* The target's access rules decide before the "+": a client they refuse
 * hears "-...", never "+Go", and the refusal is the target's. */
Test(builtin, tcpmux_target_access_rules_come_first, .timeout = 15)
{
	struct h_addr a = start_tcpmux();
	struct h_proc *b = h_backend("closed", 2, NULL, NULL);
	char buf[512];
	int fd = mux_request(&a, "closed\r\n");
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0 && buf[0] == '-' && strstr(buf, "\r\n"), "deny_from on the target: got '%s' (%zd)", buf, n);
	cr_assert(!strstr(buf, "+Go"), "'+Go' before the refusal: '%s'", buf);
	cr_assert_eq(h_status_service("closed", "refused_access"), 1);
	cr_assert_eq(h_status_service("closed", "delivered"), 0);
	(void)b;
	h_finish();
}
