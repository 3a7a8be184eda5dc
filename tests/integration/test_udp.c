/* Integration: datagram services. Builtins answer real UDP clients; a
 * datagram socket goes whole to every registered backend, which answer from
 * it themselves; the loop guard keeps builtins from answering low ports;
 * Unix datagram listeners work the same way. */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(udp, .init = h_init, .fini = h_fini);

/* Send payload to a from fd and wait for one reply (asserts it came). */
static void udp_ask(int fd, const struct h_addr *a, const char *payload, char *buf, size_t size)
{
	cr_assert(h_dgram_send(fd, a, payload, strlen(payload)) == 0, "sendto %s: %s", a->text, strerror(errno));
	ssize_t n = h_dgram_recv(fd, buf, size, H_DEADLINE_MS);
	cr_assert(n >= 0, "no reply from %s to '%s' (%s)", a->text, payload, strerror((int)-n));
}

/* Is the daytime line within a few seconds of now? */
static void check_daytime(const char *line, const char *where)
{
	time_t t;
	cr_assert(h_parse_daytime(line, &t), "%s: not a daytime line: '%s'", where, line);
	time_t now = time(NULL);
	cr_assert(t >= now - 5 && t <= now + 5, "%s: daytime '%s' is %lld s from now", where, line,
	          (long long)(t - now));
	size_t len = strlen(line);
	cr_assert(len >= 2 && strcmp(line + len - 2, "\r\n") == 0, "%s: daytime line does not end in CRLF: '%s'",
	          where, line);
}

Test(udp, builtin_daytime_over_udp_and_tcp, .timeout = 15)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service daytime]\nbuiltin = daytime\nlisten = tcp://127.0.0.1:%d, udp://127.0.0.1:%d\n", port,
	         port);
	h_start_daemon();

	struct h_addr ta = h_addr_tcp("127.0.0.1", port);
	int fd = h_connect(&ta, NULL, H_DEADLINE_MS);
	cr_assert(fd >= 0, "connect %s: %s", ta.text, strerror(-fd));
	char buf[256];
	ssize_t n = h_read_all(fd, buf, sizeof(buf), H_DEADLINE_MS);
	close(fd);
	cr_assert(n > 0, "TCP daytime: no answer (%zd)", n);
	check_daytime(buf, "TCP");

	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	udp_ask(u, &ua, "what time is it?", buf, sizeof(buf));
	check_daytime(buf, "UDP");
	/* An empty datagram is a request too (RFC 867). */
	udp_ask(u, &ua, "", buf, sizeof(buf));
	check_daytime(buf, "UDP, empty request");
	close(u);
	h_finish();
}

Test(udp, builtin_echo, .timeout = 15)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service echo]\nbuiltin = echo\nlisten = udp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[2048];
	udp_ask(u, &ua, "ping 1", buf, sizeof(buf));
	cr_assert_str_eq(buf, "ping 1");
	/* Binary data with a NUL in it comes back whole. */
	const char bin[] = {'a', 0, 'b', '\n', (char)0xff};
	cr_assert(h_dgram_send(u, &ua, bin, sizeof(bin)) == 0);
	ssize_t n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert_eq(n, (ssize_t)sizeof(bin), "echoed %zd bytes of %zu", n, sizeof(bin));
	cr_assert(memcmp(buf, bin, sizeof(bin)) == 0);
	close(u);
	h_finish();
}

Test(udp, builtin_echo_ipv6, .timeout = 15)
{
	if (!h_have_ipv6())
		H_SKIP("IPv6 loopback (::1) is not available here");
	int port = h_free_port_udp(AF_INET6);
	h_config("[service echo6]\nbuiltin = echo\nlisten = udp://[::1]:%d\n", port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("::1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[256];
	udp_ask(u, &ua, "ping6", buf, sizeof(buf));
	cr_assert_str_eq(buf, "ping6");
	close(u);
	h_finish();
}

/* "TAG pid=P got PAYLOAD" from test-backend --udp. */
static bool parse_udp_reply(const char *s, char *tag, size_t tagsize, int *pid, const char **payload)
{
	const char *sp = strchr(s, ' ');
	if (!sp || (size_t)(sp - s) >= tagsize)
		return false;
	memcpy(tag, s, (size_t)(sp - s));
	tag[sp - s] = '\0';
	int used = 0;
	if (sscanf(sp, " pid=%d got %n", pid, &used) != 1 || used == 0)
		return false;
	*payload = sp + used;
	return true;
}

Test(udp, registered_backend_answers, .timeout = 15)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service dns]\nlisten = udp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b = h_backend("dns", 1, NULL, "--udp", NULL);
	/* It was given the socket itself. */
	cr_assert(h_proc_wait_lines(b, "socket datagram type=dgram", 1, H_DEADLINE_MS), "backend output:\n%s", b->out);
	char line[256];
	cr_assert(h_proc_line(b, "socket datagram", line, sizeof(line)));
	char want[64];
	snprintf(want, sizeof(want), "local=127.0.0.1:%d", port);
	cr_assert(strstr(line, want), "socket line '%s' does not name %s", line, want);

	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[256], tag[32];
	const char *payload;
	int pid;
	udp_ask(u, &ua, "query 1\n", buf, sizeof(buf));
	cr_assert(parse_udp_reply(buf, tag, sizeof(tag), &pid, &payload), "reply '%s'", buf);
	cr_assert_str_eq(tag, "b1");
	cr_assert_eq(pid, b->pid);
	cr_assert_str_eq(payload, "query 1");
	/* The reply came from the service's own address (the shared socket). */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char peek[8];
	cr_assert(h_dgram_send(u, &ua, "query 2", 7) == 0);
	cr_assert(h_readable(u, H_DEADLINE_MS));
	ssize_t n = recvfrom(u, peek, sizeof(peek), 0, (struct sockaddr *)&ss, &sl);
	cr_assert(n > 0);
	cr_assert_eq(sl, (socklen_t)sizeof(struct sockaddr_in));
	const struct sockaddr_in *from = (const struct sockaddr_in *)&ss, *to = (const struct sockaddr_in *)&ua.ss;
	cr_assert(from->sin_addr.s_addr == to->sin_addr.s_addr && from->sin_port == to->sin_port,
	          "the reply came from another address than the service's");
	close(u);
	/* handoffd itself accepted nothing: the backend has the socket. */
	cr_assert_eq(h_status_service("dns", "delivered"), 0);
	h_finish();
}

Test(udp, two_backends_share_one_socket, .timeout = 20)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service shared]\nlisten = udp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_proc *b1 = h_backend("shared", 1, NULL, "--udp", NULL);
	struct h_proc *b2 = h_backend("shared", 1, NULL, "--udp", NULL);
	cr_assert(h_proc_wait_lines(b1, "socket datagram", 1, H_DEADLINE_MS), "b1 never got the socket:\n%s", b1->out);
	cr_assert(h_proc_wait_lines(b2, "socket datagram", 1, H_DEADLINE_MS), "b2 never got the socket:\n%s", b2->out);

	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	/* Bursts, so both backends wake for the same socket; each answers one
	 * datagram per wake-up. Keep going until each has answered. */
	int from1 = 0, from2 = 0, sent = 0, got = 0;
	uint64_t end = h_now_ms() + 10000;
	while ((from1 == 0 || from2 == 0) && h_now_ms() < end) {
		for (int i = 0; i < 8; i++) {
			char msg[32];
			snprintf(msg, sizeof(msg), "d%d", sent++);
			cr_assert(h_dgram_send(u, &ua, msg, strlen(msg)) == 0);
		}
		char buf[256], tag[32];
		const char *payload;
		int pid;
		/* Loopback loses nothing: every datagram gets exactly one reply. */
		while (got < sent) {
			ssize_t n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
			cr_assert(n >= 0, "%d datagrams sent, only %d replies", sent, got);
			got++;
			cr_assert(parse_udp_reply(buf, tag, sizeof(tag), &pid, &payload), "reply '%s'", buf);
			cr_assert(payload[0] == 'd', "reply '%s' carries no request", buf);
			if (pid == b1->pid)
				from1++;
			else if (pid == b2->pid)
				from2++;
			else
				cr_assert_fail("reply from unknown pid %d: '%s'", pid, buf);
		}
	}
	cr_assert(from1 > 0 && from2 > 0, "after %d datagrams (%d replies): b1 answered %d, b2 %d", sent, got, from1,
	          from2);
	cr_assert(!h_readable(u, 100), "more replies than datagrams");
	close(u);
	h_finish();
}

Test(udp, backend_restart_keeps_socket, .timeout = 20)
{
	int port = h_free_port_udp(AF_INET);
	h_config("[service keep]\nlisten = udp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[256], tag[32];
	const char *payload;
	int pid;

	/* A datagram sent while no backend runs waits in the socket. */
	cr_assert(h_dgram_send(u, &ua, "early", 5) == 0);
	cr_assert(!h_readable(u, 200), "answered with no backend registered");
	struct h_proc *b1 = h_backend("keep", 1, NULL, "--udp", NULL);
	ssize_t n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0, "the datagram sent before the backend came was never answered");
	cr_assert(parse_udp_reply(buf, tag, sizeof(tag), &pid, &payload));
	cr_assert_eq(pid, b1->pid);
	cr_assert_str_eq(payload, "early");

	/* It dies; the next one keeps the same socket. */
	h_proc_kill(b1, SIGKILL);
	cr_assert(h_proc_wait_exit(b1, H_DEADLINE_MS) != -1);
	cr_assert(h_dgram_send(u, &ua, "between", 7) == 0);
	struct h_proc *b2 = h_backend("keep", 1, NULL, "--udp", NULL);
	n = h_dgram_recv(u, buf, sizeof(buf), H_DEADLINE_MS);
	cr_assert(n > 0, "the datagram sent between backends was lost");
	cr_assert(parse_udp_reply(buf, tag, sizeof(tag), &pid, &payload));
	cr_assert_eq(pid, b2->pid);
	cr_assert_str_eq(payload, "between");
	close(u);
	h_finish();
}

Test(udp, loop_guard_ignores_low_source_ports, .timeout = 15)
{
	if (geteuid() != 0)
		H_SKIP("binding a source port below 1024 needs root");
	int port = h_free_port_udp(AF_INET);
	h_config("[service echo]\nbuiltin = echo\nlisten = udp://127.0.0.1:%d\n", port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);

	/* A client on a privileged port (another echo server, say) gets
	 * nothing, so two echo services cannot bounce a datagram forever. */
	int low = -1;
	for (int p = 999; p > 900 && low < 0; p--) {
		struct h_addr src = h_addr_udp("127.0.0.1", p);
		low = h_dgram_socket(&ua, &src);
	}
	cr_assert(low >= 0, "no free UDP port in 901..999 to send from");
	cr_assert(h_dgram_send(low, &ua, "loop?", 5) == 0);
	cr_assert(!h_readable(low, 300), "echo answered a datagram from a port below 1024");

	/* The service is alive: an ordinary client is answered. */
	int u = h_dgram_socket(&ua, NULL);
	cr_assert(u >= 0);
	char buf[64];
	udp_ask(u, &ua, "hi", buf, sizeof(buf));
	cr_assert_str_eq(buf, "hi");
	cr_assert(!h_readable(low, 50), "the low-port datagram was answered late");
	close(u);
	close(low);
	h_finish();
}

Test(udp, unix_dgram_backend, .timeout = 15)
{
	char path[128], cpath[128];
	snprintf(path, sizeof(path), "%s/dgram.sock", h.dir);
	snprintf(cpath, sizeof(cpath), "%s/client.sock", h.dir);
	h_config("[service ud]\nlisten = unix-dgram:%s\n", path);
	h_start_daemon();
	struct h_proc *b = h_backend("ud", 1, NULL, "--udp", NULL);
	cr_assert(h_proc_wait_lines(b, "socket datagram type=dgram", 1, H_DEADLINE_MS), "backend output:\n%s", b->out);
	struct h_addr sa = h_addr_unix(path), ca = h_addr_unix(cpath);
	/* A named client: a datagram reply needs an address to go to. */
	int u = h_dgram_socket(&sa, &ca);
	cr_assert(u >= 0, "client socket: %s", strerror(-u));
	char buf[256], tag[32];
	const char *payload;
	int pid;
	udp_ask(u, &sa, "over unix", buf, sizeof(buf));
	cr_assert(parse_udp_reply(buf, tag, sizeof(tag), &pid, &payload), "reply '%s'", buf);
	cr_assert_eq(pid, b->pid);
	cr_assert_str_eq(payload, "over unix");
	close(u);
	unlink(cpath);
	h_finish();
}

Test(udp, unix_dgram_builtin_echo, .timeout = 15)
{
	char path[128], cpath[128];
	snprintf(path, sizeof(path), "%s/echo.sock", h.dir);
	snprintf(cpath, sizeof(cpath), "%s/client.sock", h.dir);
	h_config("[service uecho]\nbuiltin = echo\nlisten = unix-dgram:%s\n", path);
	h_start_daemon();
	struct h_addr sa = h_addr_unix(path), ca = h_addr_unix(cpath);
	int u = h_dgram_socket(&sa, &ca);
	cr_assert(u >= 0);
	char buf[64];
	udp_ask(u, &sa, "unix echo", buf, sizeof(buf));
	cr_assert_str_eq(buf, "unix echo");
	close(u);
	unlink(cpath);
	h_finish();
}

Test(udp, builtin_access_rules_apply_to_datagrams, .timeout = 15)
{
	/* The configuration accepts allow_from/deny_from on a builtin UDP
	 * service, so they must hold for its datagrams too. */
	int port = h_free_port_udp(AF_INET);
	h_config("[service echo]\nbuiltin = echo\nlisten = udp://127.0.0.1:%d\nallow_from = 127.0.0.0/8\n"
	         "deny_from = 127.0.0.2\n",
	         port);
	h_start_daemon();
	struct h_addr ua = h_addr_udp("127.0.0.1", port);
	struct h_addr from2 = h_addr_udp("127.0.0.2", 0), from3 = h_addr_udp("127.0.0.3", 0);
	int denied = h_dgram_socket(&ua, &from2), ok = h_dgram_socket(&ua, &from3);
	cr_assert(denied >= 0 && ok >= 0);
	cr_assert(h_dgram_send(denied, &ua, "denied?", 7) == 0);
	char buf[64];
	udp_ask(ok, &ua, "allowed", buf, sizeof(buf));
	cr_assert_str_eq(buf, "allowed");
	cr_assert(!h_readable(denied, 200), "echo answered 127.0.0.2 despite deny_from");
	close(denied);
	close(ok);
	h_finish();
}
