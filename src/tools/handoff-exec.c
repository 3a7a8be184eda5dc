/* handoff-exec: run an unmodified socket-activated program as a handoffd
 * backend.
 *
 *     handoff-exec [-s CONTROL] [-n FDNAME] [-c CAPACITY] [-u UID] -S SERVICE -- PROGRAM [ARGS...]
 *
 * Registers for SERVICE (which must share its sockets: mode = listen, or
 * datagram listeners), receives those sockets, and runs PROGRAM with them
 * as systemd's socket activation passes them: fds 3, 4, ... in the order
 * received, LISTEN_FDS, LISTEN_PID (the program's own pid) and
 * LISTEN_FDNAMES. Every other fd the program would inherit is closed. The
 * adapter stays registered while the program runs (so handoffd knows the
 * service is served), forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1
 * and SIGUSR2 to it, and exits with its status (128 + N when it was killed
 * by signal N). Exit 127: the program could not be started; 2: usage;
 * 1: handoffd refused or could not be reached.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"

#define MAX_FDS 64

extern char **environ;

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: handoff-exec [-s CONTROL_SOCKET] [-n FDNAME] [-c CAPACITY] [-u UID] -S SERVICE -- "
	           "PROGRAM [ARGS...]\n");
}

/* Close fds first..last (async-signal-safe; without close_range, one by
 * one up to a generous bound). */
static void close_from_to(unsigned first, unsigned last)
{
	if (syscall(SYS_close_range, first, last, 0) == 0)
		return;
	for (unsigned fd = first; fd <= last && fd < 65536; fd++)
		close((int)fd);
}

/* Write v in decimal into buf (async-signal-safe). */
static void put_num(char *buf, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*buf++ = tmp[--n];
	*buf = '\0';
}

int main(int argc, char **argv)
{
	const char *ctl = NULL, *service = NULL, *fdname = NULL;
	unsigned long capacity = 1, uid = 0;
	bool check_uid = false;
	int opt;

	while ((opt = getopt(argc, argv, "+s:S:n:c:u:h")) != -1) {
		char *end;
		switch (opt) {
		case 's':
			ctl = optarg;
			break;
		case 'S':
			service = optarg;
			break;
		case 'n':
			fdname = optarg;
			if (!*fdname || strchr(fdname, ':') || strlen(fdname) > 255) {
				fprintf(stderr, "handoff-exec: -n: '%s' is not a name (1-255 bytes, no ':')\n", fdname);
				return 2;
			}
			break;
		case 'c':
			errno = 0;
			capacity = strtoul(optarg, &end, 10);
			if (errno || *end || capacity < 1 || capacity > 65535) {
				fprintf(stderr, "handoff-exec: -c: '%s' is not a number 1..65535\n", optarg);
				return 2;
			}
			break;
		case 'u':
			errno = 0;
			uid = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "handoff-exec: -u: '%s' is not a uid\n", optarg);
				return 2;
			}
			check_uid = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!service || optind >= argc) {
		fprintf(stderr, "handoff-exec: %s\n", !service ? "-S SERVICE is required" : "no program given");
		usage(stderr);
		return 2;
	}
	if (!fdname)
		fdname = service;

	handoff_t *h = NULL;
	int r = handoff_connect(ctl, 0, &h);
	if (r < 0) {
		const char *where = ctl ? ctl : getenv("HANDOFF_SOCKET");
		fprintf(stderr, "handoff-exec: cannot connect to handoffd at %s: %s\n",
		        where && *where ? where : HANDOFF_DEFAULT_SOCKET, handoff_strerror(r));
		return 1;
	}
	if (check_uid && (r = handoff_verify_daemon(h, (uid_t)uid)) < 0) {
		fprintf(stderr, "handoff-exec: %s\n", handoff_last_error(h));
		handoff_close(h);
		return 1;
	}
	r = handoff_register(h, service, (unsigned)capacity);
	if (r < 0) {
		const char *why = handoff_last_error(h);
		fprintf(stderr, "handoff-exec: handoffd refused to register us for '%s': %s\n", service,
		        *why ? why : handoff_strerror(r));
		handoff_close(h);
		return 1;
	}
	unsigned n = handoff_shared_count(h);
	if (n == 0) {
		fprintf(stderr, "handoff-exec: service '%s' has no shared sockets: set mode = listen in its [service] "
		                "section (or give it a datagram listener)\n",
		        service);
		handoff_close(h);
		return 1;
	}
	if (n > MAX_FDS) {
		fprintf(stderr, "handoff-exec: service '%s' has %u shared sockets; at most %d are passed\n", service, n,
		        MAX_FDS);
		n = MAX_FDS;
	}
	int fds[MAX_FDS];
	for (unsigned i = 0; i < n; i++) {
		struct handoff_conn c;
		r = handoff_accept(h, &c, 0);
		if (r < 0 || c.kind == HANDOFF_CONNECTION) {
			fprintf(stderr, "handoff-exec: expected the shared sockets of '%s': %s\n", service,
			        r < 0 ? handoff_strerror(r) : "got a connection");
			if (r == 0)
				close(c.fd);
			for (unsigned k = 0; k < i; k++)
				close(fds[k]);
			handoff_close(h);
			return 1;
		}
		fds[i] = c.fd;
	}

	/* The environment, prepared before fork (the child only patches in
	 * its pid): ours without LISTEN_*, plus the three variables. */
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 4, sizeof(char *));
	size_t names_len = (strlen(fdname) + 1) * n + 32;
	char *names = malloc(names_len), listen_fds[32], listen_pid[32] = "LISTEN_PID=";
	if (!envp || !names) {
		fprintf(stderr, "handoff-exec: out of memory\n");
		return 1;
	}
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[e++] = environ[i];
	snprintf(listen_fds, sizeof(listen_fds), "LISTEN_FDS=%u", n);
	int off = snprintf(names, names_len, "LISTEN_FDNAMES=");
	for (unsigned i = 0; i < n; i++)
		off += snprintf(names + off, names_len - (size_t)off, "%s%s", i ? ":" : "", fdname);
	envp[e++] = listen_fds;
	envp[e++] = listen_pid;
	envp[e++] = names;
	envp[e] = NULL;

	int errpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		perror("handoff-exec: pipe2");
		return 1;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid < 0) {
		perror("handoff-exec: fork");
		return 1;
	}
	if (pid == 0) {
		/* The child: signals back to default, then fds into place. */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int target_max = 3 + (int)n;
		int ep = errpipe[1];
		if (ep < target_max) {
			ep = fcntl(ep, F_DUPFD_CLOEXEC, target_max);
			if (ep < 0)
				_exit(127);
		}
		/* Sources on the target numbers are moved above them first. */
		for (unsigned i = 0; i < n; i++)
			if (fds[i] < target_max) {
				int m = fcntl(fds[i], F_DUPFD_CLOEXEC, target_max);
				if (m < 0)
					goto fail;
				fds[i] = m;
			}
		for (unsigned i = 0; i < n; i++)
			if (dup2(fds[i], 3 + (int)i) < 0)
				goto fail;
		/* Everything else goes (the error pipe is close-on-exec). */
		if (ep > target_max)
			close_from_to((unsigned)target_max, (unsigned)ep - 1);
		close_from_to((unsigned)ep + 1, ~0U);
		put_num(listen_pid + strlen("LISTEN_PID="), (unsigned long)getpid());
		execvpe(argv[optind], argv + optind, envp);
	fail: {
		int err = errno;
		ssize_t w = write(ep, &err, sizeof(err));
		(void)w;
		_exit(127);
	}
	}
	child_pid = pid;
	close(errpipe[1]);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	struct sigaction fw = {.sa_handler = forward};
	sigemptyset(&fw.sa_mask);
	int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &fw, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	int err = 0;
	ssize_t got;
	do
		got = read(errpipe[0], &err, sizeof(err));
	while (got < 0 && errno == EINTR);
	close(errpipe[0]);
	if (got == (ssize_t)sizeof(err))
		fprintf(stderr, "handoff-exec: cannot execute %s: %s\n", argv[optind], strerror(err));

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("handoff-exec: waitpid");
			return 1;
		}
	handoff_close(h);
	free(envp);
	free(names);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
