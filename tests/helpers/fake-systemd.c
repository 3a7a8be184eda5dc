/* fake-systemd: just enough of systemd's service manager to test handoffd's
 * use of the fd store across a restart, without systemd.
 *
 *   fake-systemd NOTIFY_PATH -- HANDOFFD ARGS...
 *
 * Binds NOTIFY_PATH (AF_UNIX datagram) and starts HANDOFFD ARGS with
 * NOTIFY_SOCKET pointing there. Every notification is printed on stdout as
 * "msg LINE" (one per line of the datagram); FDSTORE=1 keeps the fd under
 * its FDNAME ("stored NAME"), FDSTOREREMOVE=1 drops every fd of that name
 * ("removed NAME"). SIGUSR1: restart, as `systemctl restart` does with
 * FileDescriptorStoreMax=: SIGTERM to handoffd, wait ("exited STATUS"),
 * start it again with the stored fds as LISTEN_FDS (at 3.., LISTEN_PID its
 * own, LISTEN_FDNAMES the names) ("started PID"). SIGTERM: stop handoffd
 * and exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STORE 64

static struct {
	int fd;
	char name[256];
} store[MAX_STORE];
static int nstore;

static pid_t start(char **argv, const char *notify)
{
	char env_fds[32], env_pid[32], *names = calloc(1, (size_t)MAX_STORE * 257 + 32);
	if (!names)
		exit(1);
	int off = sprintf(names, "LISTEN_FDNAMES=");
	for (int i = 0; i < nstore; i++)
		off += sprintf(names + off, "%s%s", i ? ":" : "", store[i].name);
	pid_t pid = fork();
	if (pid == 0) {
		/* The stored fds at 3.., above everything else first. */
		int tmp[MAX_STORE];
		for (int i = 0; i < nstore; i++)
			tmp[i] = fcntl(store[i].fd, F_DUPFD, 100);
		for (int i = 0; i < nstore; i++)
			dup2(tmp[i], 3 + i);
		for (int fd = 3 + nstore; fd < 1024; fd++)
			close(fd);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		setenv("NOTIFY_SOCKET", notify, 1);
		if (nstore) {
			snprintf(env_fds, sizeof(env_fds), "%d", nstore);
			snprintf(env_pid, sizeof(env_pid), "%d", (int)getpid());
			setenv("LISTEN_FDS", env_fds, 1);
			setenv("LISTEN_PID", env_pid, 1);
			setenv("LISTEN_FDNAMES", names + strlen("LISTEN_FDNAMES="), 1);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	free(names);
	printf("started %d\n", (int)pid);
	fflush(stdout);
	return pid;
}

static void notify_msg(int ns)
{
	char buf[4096];
	char cbuf[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = {buf, sizeof(buf) - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(ns, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return;
	buf[n] = '\0';
	int fds[16], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < 16; k++)
				fds[nfds++] = ((int *)CMSG_DATA(c))[k];
	char name[256] = "";
	int fdstore = 0, remove = 0;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		printf("msg %s\n", l);
		if (strcmp(l, "FDSTORE=1") == 0)
			fdstore = 1;
		else if (strcmp(l, "FDSTOREREMOVE=1") == 0)
			remove = 1;
		else if (strncmp(l, "FDNAME=", 7) == 0)
			snprintf(name, sizeof(name), "%s", l + 7);
	}
	if (fdstore && nfds == 1 && nstore < MAX_STORE) {
		store[nstore].fd = fds[0];
		snprintf(store[nstore].name, sizeof(store[nstore].name), "%s", name[0] ? name : "stored");
		nstore++;
		printf("stored %s\n", name);
		nfds = 0;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (remove) {
		for (int i = 0; i < nstore;)
			if (strcmp(store[i].name, name) == 0) {
				close(store[i].fd);
				store[i] = store[--nstore];
			} else {
				i++;
			}
		printf("removed %s\n", name);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 4 || strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "usage: fake-systemd NOTIFY_PATH -- PROGRAM ARGS...\n");
		return 2;
	}
	const char *path = argv[1];
	int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	unlink(path);
	if (ns < 0 || bind(ns, (struct sockaddr *)&un, sizeof(un)) < 0) {
		perror("fake-systemd: notify socket");
		return 1;
	}
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGCHLD);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	pid_t child = start(argv + 3, path);
	for (;;) {
		struct pollfd p[2] = {{.fd = ns, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN)
			notify_msg(ns);
		if (!(p[1].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD) {
			int st;
			pid_t r = waitpid(child, &st, WNOHANG);
			if (r == child) {
				printf("exited %d\n", st);
				fflush(stdout);
				child = 0;
			}
			continue;
		}
		int st = 0;
		if (child > 0) {
			kill(child, SIGTERM);
			/* Keep reading notifications while it stops: the store fills now. */
			while (waitpid(child, &st, WNOHANG) == 0) {
				struct pollfd q = {.fd = ns, .events = POLLIN};
				if (poll(&q, 1, 20) > 0)
					notify_msg(ns);
			}
			while (poll(&(struct pollfd){.fd = ns, .events = POLLIN}, 1, 0) > 0)
				notify_msg(ns);
			printf("exited %d\n", st);
			fflush(stdout);
			child = 0;
		}
		if (si.ssi_signo == SIGTERM)
			return 0;
		child = start(argv + 3, path);
	}
}
