/* Unit tests: activation (LISTEN_FDS sockets from systemd or a previous
 * handoffd). The passed fds must sit at 3, 4, ...: the tests move whatever
 * the test process has there aside and put it back before asserting. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"
#include "unit.h"

#define NPASS 3

struct saved {
	int fd[NPASS]; /* what was at 3.., moved aside (-1 if it was closed) */
};

/* Put socks[i] at 3 + i, remembering what was there. */
static void place(struct saved *s, const int *socks, int n)
{
	for (int i = 0; i < NPASS; i++)
		s->fd[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, 100);
	for (int i = 0; i < NPASS; i++)
		close(3 + i);
	for (int i = 0; i < n; i++) {
		dup2(socks[i], 3 + i);
		close(socks[i]);
	}
}

static void restore(struct saved *s)
{
	for (int i = 0; i < NPASS; i++) {
		close(3 + i);
		if (s->fd[i] >= 0) {
			dup2(s->fd[i], 3 + i);
			close(s->fd[i]);
		}
	}
}

static int tcp_listener(struct sockaddr_in *ret)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0)
		return -1;
	getsockname(fd, (struct sockaddr *)ret, &l);
	return fd;
}

static int unix_seqpacket(const char *abstract, struct sockaddr_un *ret, socklen_t *ret_len)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	memset(ret, 0, sizeof(*ret));
	ret->sun_family = AF_UNIX;
	memcpy(ret->sun_path + 1, abstract, strlen(abstract));
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract));
	if (fd < 0 || bind(fd, (struct sockaddr *)ret, *ret_len) < 0 || listen(fd, 4) < 0)
		return -1;
	return fd;
}

static void set_env(const char *pid, const char *fds, const char *names)
{
	char buf[32];
	if (!pid) {
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		pid = buf;
	}
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", fds, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
	unsetenv("LISTEN_PIDFDID");
}

TEST(activation, nothing_passed)
{
	struct activation a;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	char err[128] = "";
	cr_assert_eq(activation_take(&a, err, sizeof(err)), 0);
	cr_assert_eq(a.n, 0);
	activation_free(&a);
}

TEST(activation, another_pid_is_ignored_and_env_cleared)
{
	struct activation a;
	char err[128] = "";
	set_env("1", "2", "x:y");
	cr_assert_eq(activation_take(&a, err, sizeof(err)), 0);
	cr_assert_null(getenv("LISTEN_FDS"));
	cr_assert_null(getenv("LISTEN_PID"));
	cr_assert_null(getenv("LISTEN_FDNAMES"));
	activation_free(&a);
}

TEST(activation, bad_count_and_closed_fd)
{
	struct activation a;
	char err[128] = "";
	set_env(NULL, "two", NULL);
	cr_assert_eq(activation_take(&a, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "LISTEN_FDS=two"), "%s", err);

	struct saved s;
	place(&s, NULL, 0); /* 3.. closed */
	set_env(NULL, "1", NULL);
	int rc = activation_take(&a, err, sizeof(err));
	restore(&s);
	cr_assert_eq(rc, -EBADF, "%d", rc);
	cr_assert(strstr(err, "fd 3 is not open"), "%s", err);
}

TEST(activation, claims_by_address_then_name_and_closes_the_rest)
{
	struct sockaddr_in tcp;
	struct sockaddr_un un;
	socklen_t unlen;
	char abs[64];
	snprintf(abs, sizeof(abs), "hd-act-test-%d", (int)getpid());
	int socks[NPASS] = {tcp_listener(&tcp), unix_seqpacket(abs, &un, &unlen), -1};
	struct sockaddr_in tcp2;
	socks[2] = tcp_listener(&tcp2);
	cr_assert(socks[0] >= 0 && socks[1] >= 0 && socks[2] >= 0);

	struct saved s;
	place(&s, socks, NPASS);
	set_env(NULL, "3", "web:handoffd-control:extra");
	struct activation a;
	char err[128] = "";
	int n = activation_take(&a, err, sizeof(err));
	int cloexec = fcntl(3, F_GETFD) & FD_CLOEXEC;
	/* By address, whatever the name. */
	int by_addr = activation_claim(&a, "other", (struct sockaddr *)&tcp, sizeof(tcp), SOCK_STREAM);
	/* Wrong type: no match. */
	int wrong_type = activation_claim(&a, "web", (struct sockaddr *)&un, unlen, SOCK_STREAM);
	/* The control socket by name. */
	int ctl = activation_claim_name(&a, ACTIVATION_CONTROL_NAME, SOCK_SEQPACKET);
	/* By name when the address differs: "extra" is not "web", so nothing. */
	struct sockaddr_in elsewhere = tcp;
	elsewhere.sin_port = htons(1);
	int by_name = activation_claim(&a, "web", (struct sockaddr *)&elsewhere, sizeof(elsewhere), SOCK_STREAM);
	int by_name2 = activation_claim(&a, "extra", (struct sockaddr *)&elsewhere, sizeof(elsewhere), SOCK_STREAM);
	activation_close_unused(&a);
	int fd5_open = fcntl(5, F_GETFD) >= 0;
	if (by_addr >= 0)
		close(by_addr);
	if (ctl >= 0)
		close(ctl);
	activation_free(&a);
	restore(&s);

	cr_assert_eq(n, 3, "%d %s", n, err);
	cr_assert(cloexec, "passed fds become close-on-exec");
	cr_assert_eq(by_addr, 3);
	cr_assert_eq(wrong_type, -1);
	cr_assert_eq(ctl, 4);
	cr_assert_eq(by_name, -1);
	cr_assert_eq(by_name2, 5);
	cr_assert(fd5_open, "a claimed fd is the caller's, not closed as unused");
}

TEST(activation, unused_are_closed)
{
	struct sockaddr_in tcp;
	int socks[1] = {tcp_listener(&tcp)};
	struct saved s;
	place(&s, socks, 1);
	set_env(NULL, "1", NULL);
	struct activation a;
	char err[128] = "";
	int n = activation_take(&a, err, sizeof(err));
	char name[ACTIVATION_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", n == 1 ? a.v[0].name : "");
	activation_close_unused(&a);
	int still_open = fcntl(3, F_GETFD) >= 0;
	activation_free(&a);
	restore(&s);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(name, "unknown");
	cr_assert(!still_open);
}

TEST(activation, address_equality)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)}, b = a;
	a.sin_addr.s_addr = b.sin_addr.s_addr = htonl(0x7f000001);
	cr_assert(activation_addr_equal((void *)&a, sizeof(a), (void *)&b, sizeof(b)));
	b.sin_port = htons(81);
	cr_assert_not(activation_addr_equal((void *)&a, sizeof(a), (void *)&b, sizeof(b)));
	struct sockaddr_in6 x = {.sin6_family = AF_INET6, .sin6_port = htons(80), .sin6_addr = in6addr_any}, y = x;
	cr_assert(activation_addr_equal((void *)&x, sizeof(x), (void *)&y, sizeof(y)));
	cr_assert_not(activation_addr_equal((void *)&x, sizeof(x), (void *)&a, sizeof(a)));
	y.sin6_addr = in6addr_loopback;
	cr_assert_not(activation_addr_equal((void *)&x, sizeof(x), (void *)&y, sizeof(y)));
	struct sockaddr_un u = {.sun_family = AF_UNIX}, v = u;
	strcpy(u.sun_path, "/run/x.sock");
	strcpy(v.sun_path, "/run/x.sock");
	socklen_t ul = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(u.sun_path) + 1);
	/* getsockname may or may not count the NUL: both are the same path. */
	cr_assert(activation_addr_equal((void *)&u, ul, (void *)&v, ul - 1));
	strcpy(v.sun_path, "/run/y.sock");
	cr_assert_not(activation_addr_equal((void *)&u, ul, (void *)&v, ul));
	cr_assert_not(activation_addr_equal((void *)&u, 1, (void *)&v, ul));
}
