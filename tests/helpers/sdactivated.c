/* sdactivated: a socket-activated test server that knows nothing of
 * handoffd (nor of libsystemd). It checks what systemd's protocol
 * promises, prints a report on stdout, and serves:
 *
 *   listen_pid_ok 0|1        LISTEN_PID is our own pid
 *   nfds N                   LISTEN_FDS
 *   fd K TYPE listening|-    for each passed fd (3..): stream/dgram/seqpacket
 *   name I NAME              each LISTEN_FDNAMES entry
 *   extra FD                 any other open fd above 2 (there must be none)
 *   env_cleared 0|1          LISTEN_* no longer in the environment after we read it
 *   end
 *
 * Then each listening socket's connections get "sdactivated PID fd K\n" and
 * are closed; each datagram gets the same text back; a passed connection
 * (systemd's Accept=yes) gets it once and the program exits. Runs until
 * SIGTERM (exit 0), or until a passed socket fails. Exit 3 when LISTEN_PID
 * is not ours (with the report).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS"), *names = getenv("LISTEN_FDNAMES");
	int pid_ok = spid && atol(spid) == (long)getpid();
	int n = sfds ? atoi(sfds) : 0;
	if (n < 0 || n > 64)
		n = 0;
	printf("listen_pid_ok %d\nnfds %d\n", pid_ok, n);
	int types[64], listening[64];
	for (int i = 0; i < n; i++) {
		int fd = 3 + i, t = 0, acc = 0;
		socklen_t l = sizeof(t);
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l);
		l = sizeof(acc);
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
		types[i] = t;
		listening[i] = acc;
		printf("fd %d %s %s\n", fd, t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_SEQPACKET ? "seqpacket" : "other",
		       acc ? "listening" : "-");
	}
	if (names) {
		char *copy = strdup(names), *save = NULL;
		int i = 0;
		for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
			printf("name %d %s\n", i++, t);
		free(copy);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		for (struct dirent *e; (e = readdir(d));) {
			int fd = atoi(e->d_name);
			if (e->d_name[0] != '.' && fd > 2 + n && fd != dirfd(d))
				printf("extra %d\n", fd);
		}
		closedir(d);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	printf("env_cleared %d\nend\n", !getenv("LISTEN_FDS"));
	fflush(stdout);
	if (!pid_ok)
		return 3;

	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct pollfd p[64];
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = 3 + i, .events = POLLIN | POLLOUT * (!listening[i] && types[i] != SOCK_DGRAM)};
	while (!stop) {
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (p[i].revents & (POLLERR | POLLNVAL))
				return 1;
			char msg[64];
			int len = snprintf(msg, sizeof(msg), "sdactivated %d fd %d\n", (int)getpid(), 3 + i);
			if (!listening[i] && types[i] != SOCK_DGRAM) {
				/* A connection of its own: answer once and go. */
				ssize_t w = send(3 + i, msg, (size_t)len, MSG_NOSIGNAL);
				(void)w;
				return 0;
			}
			if (!(p[i].revents & POLLIN))
				continue;
			if (listening[i]) {
				int c = accept4(3 + i, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (c >= 0) {
					ssize_t w = send(c, msg, (size_t)len, MSG_NOSIGNAL);
					(void)w;
					close(c);
				}
			} else if (types[i] == SOCK_DGRAM) {
				char buf[512];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				if (recvfrom(3 + i, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) >= 0)
					(void)sendto(3 + i, msg, (size_t)len, 0, (struct sockaddr *)&from, fl);
			}
		}
	}
	return 0;
}
