/* Unit tests for src/daemon/peerid.c: the cgroup -> unit derivation
 * (sd_pid_get_unit's rules) on real-world paths, unit name validity, the
 * /proc/PID/cgroup parser on unified, hybrid, legacy and hostile texts, and
 * the kernel reads on what this machine can show: our own cgroup, a live
 * child, a dead child (its pid must not lend us anything), SO_PEERSEC on a
 * socketpair. Every test checks that it leaves no fd open (TEST()). */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peerid.h"

/* TEST(): criterion Test() with an fd leak check around the body. */
#include "unit.h"

/* ---- helpers ---- */

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0); /* pidfds are close-on-exec */
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* A pidfd for ourselves, or skip the test on kernels without pidfds. */
static int self_pidfd(void)
{
	int fd = open_pidfd(getpid());
	if (fd < 0)
		cr_skip_test("pidfd_open: %s (kernel before 5.3?)", strerror(errno));
	return fd;
}

/* Our own cgroup as the rule in peerid.h picks it, read here with stdio
 * and independent code: the 0:: line, else the name=systemd line. "" when
 * neither. */
static void own_cgroup(char *buf, size_t size)
{
	char v2[PEERID_CGROUP_MAX] = "", sd[PEERID_CGROUP_MAX] = "", line[4096];
	FILE *f = fopen("/proc/self/cgroup", "re");
	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		if (strcmp(line, "0:") == 0)
			snprintf(v2, sizeof(v2), "%s", c2 + 1);
		else if (strstr(c1 + 1, "name=systemd"))
			snprintf(sd, sizeof(sd), "%s", c2 + 1);
	}
	fclose(f);
	snprintf(buf, size, "%s", v2[0] ? v2 : sd);
}

/* Wait (with a deadline) until pidfd polls readable: the process exited. */
static void wait_exit(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 10000), 1, "child did not exit within 10 s");
}

/* ===================== unit names ===================== */

TEST(names, valid_and_invalid)
{
	static const char *const good[] = {
		"nginx.service", "getty@tty1.service", "user@1000.service", "session-3.scope", "init.scope",
		"system.slice", "-.slice", "dev-sda1.device", "var-lib-docker.mount", "docker.socket",
		"a:b_c-d.e.service", "systemd-fsck@dev-disk-by\\x2duuid-1234.service", "x@a@b.service",
		"foo.automount", "swapfile.swap", "multi-user.target", "fstrim.timer", "foo.path",
	};
	static const char *const bad[] = {
		"", "nginx", ".service", "nginx.", "nginx.servic", "nginx.services", "nginx.SERVICE",
		"foo@.service", "@foo.service", "a b.service", "a/b.service", "f\xc3\xb6o.service",
		"x*.service", "x\n.service",
	};
	for (size_t i = 0; i < N_ELEMENTS(good); i++)
		cr_assert(peerid_unit_name_valid(good[i]), "'%s' should be valid", good[i]);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		cr_assert(!peerid_unit_name_valid(bad[i]), "'%s' should be invalid", bad[i]);
	cr_assert(!peerid_unit_name_valid(NULL));

	/* 255 characters is the longest name systemd allows. */
	char name[300];
	memset(name, 'a', sizeof(name));
	memcpy(name + 255 - strlen(".service"), ".service", strlen(".service") + 1);
	cr_assert_eq(strlen(name), 255);
	cr_assert(peerid_unit_name_valid(name));
	memset(name, 'a', sizeof(name));
	memcpy(name + 256 - strlen(".service"), ".service", strlen(".service") + 1);
	cr_assert(!peerid_unit_name_valid(name));
}

/* ===================== cgroup -> unit ===================== */

static const struct {
	const char *path, *unit; /* unit NULL: none (-ENXIO) */
} unit_cases[] = {
	/* system services */
	{"/system.slice/nginx.service", "nginx.service"},
	{"/system.slice/nginx.service/", "nginx.service"},
	{"/system.slice/nginx.service/worker", "nginx.service"},
	{"/system.slice/dbus.service/.control", "dbus.service"},
	{"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"},
	{"/system.slice/system-openvpn.slice/openvpn@home.service", "openvpn@home.service"},
	{"/system.slice/system-systemd\\x2dfsck.slice/systemd-fsck@dev-disk-by\\x2duuid-12.service",
	 "systemd-fsck@dev-disk-by\\x2duuid-12.service"},
	{"/system.slice/web.socket", "web.socket"},
	{"/system.slice/var-lib-foo.mount", "var-lib-foo.mount"},
	{"/a.slice/a-b.slice/a-b-c.slice/deep.service", "deep.service"},
	{"/system.slice/postgresql@15-main.service/supervisor", "postgresql@15-main.service"},
	/* the cgroup escape: one leading '_' (e.g. a name clashing with a controller file) */
	{"/system.slice/_cpu.service", "cpu.service"},
	{"/_cpu.slice/x.service", "x.service"},
	/* PID 1 and the root */
	{"/init.scope", "init.scope"},
	{"/", NULL},
	{"", NULL},
	{"//", NULL},
	{"/system.slice", NULL},
	{"/user.slice/user-1000.slice", NULL},
	/* user sessions: the session scope is the system unit */
	{"/user.slice/user-1000.slice/session-3.scope", "session-3.scope"},
	{"/user.slice/user-1000.slice/session-c2.scope/sub", "session-c2.scope"},
	/* the user manager and everything it runs: user@UID.service */
	{"/user.slice/user-1000.slice/user@1000.service", "user@1000.service"},
	{"/user.slice/user-1000.slice/user@1000.service/init.scope", "user@1000.service"},
	{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "user@1000.service"},
	{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope", "user@1000.service"},
	/* containers */
	{"/system.slice/docker-0123456789abcdef.scope", "docker-0123456789abcdef.scope"},
	{"/system.slice/containerd.service/kubepods-besteffort-pod1.slice:cri-containerd:abc", "containerd.service"},
	{"/machine.slice/libpod-0123abcd.scope/container", "libpod-0123abcd.scope"},
	{"/machine.slice/machine-debian.scope/payload/system.slice/web.service", "machine-debian.scope"},
	{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-0123.scope/container", "user@1000.service"},
	{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice/cri-containerd-ab.scope",
	 "cri-containerd-ab.scope"},
	{"/docker/0123456789abcdef", NULL},        /* cgroupfs driver: no systemd unit */
	{"/kubepods/besteffort/pod1/abc", NULL},
	{"/lxc.payload.c1/system.slice/x.service", NULL},
	{"/../../system.slice/web.service", NULL}, /* outside our cgroup namespace */
	/* garbage */
	{"/system.slice/nginx", NULL},
	{"/system.slice/plain-dir/nginx.service", NULL},
	{"/.service", NULL},
	{"/system.slice/foo@.service", NULL},  /* a template is not a running unit */
	{"/system.slice/@foo.service", NULL},
	{"/system.slice/a b.service", NULL},
	{"/system.slice/x.servicex", NULL},
	{"/system.slice/x.service\n0::/y.service", NULL},
	{"/foo@bar.slice/x.service", NULL},     /* not a valid slice name, and a slice is never the unit */
	{"/system.slice/other.slice.d/x.service", NULL},
	{"/ab", NULL},
	{"nginx.service", "nginx.service"},     /* systemd skips leading '/' without requiring one */
};

TEST(unit, from_cgroup_table)
{
	for (size_t i = 0; i < N_ELEMENTS(unit_cases); i++) {
		char buf[PEERID_UNIT_MAX] = "x";
		int rc = peerid_unit_from_cgroup(unit_cases[i].path, buf, sizeof(buf));
		if (unit_cases[i].unit) {
			cr_assert_eq(rc, 0, "'%s': %d", unit_cases[i].path, rc);
			cr_assert_str_eq(buf, unit_cases[i].unit, "'%s'", unit_cases[i].path);
		} else {
			cr_assert_eq(rc, -ENXIO, "'%s' gave %d '%s'", unit_cases[i].path, rc, buf);
			cr_assert_str_eq(buf, "", "'%s'", unit_cases[i].path);
		}
	}
}

TEST(unit, small_buffers_and_null)
{
	char tiny[4] = "xyz";
	cr_assert_eq(peerid_unit_from_cgroup("/system.slice/nginx.service", tiny, sizeof(tiny)), -ENOBUFS);
	cr_assert_str_eq(tiny, "");
	char exact[sizeof("a.scope")];
	cr_assert_eq(peerid_unit_from_cgroup("/a.scope", exact, sizeof(exact)), 0);
	cr_assert_str_eq(exact, "a.scope");
	cr_assert_eq(peerid_unit_from_cgroup("/a.scope", exact, sizeof(exact) - 1), -ENOBUFS);
	char buf[8] = "x";
	cr_assert_eq(peerid_unit_from_cgroup(NULL, buf, sizeof(buf)), -ENXIO);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(peerid_unit_from_cgroup("/a.scope", buf, 0), -ENOBUFS);

	/* A component of 256 characters is no unit (UNIT_NAME_MAX), 255 is. */
	char path[400] = "/system.slice/";
	size_t off = strlen(path);
	memset(path + off, 'a', 255 - strlen(".service"));
	strcpy(path + off + 255 - strlen(".service"), ".service");
	char unit[PEERID_UNIT_MAX];
	cr_assert_eq(peerid_unit_from_cgroup(path, unit, sizeof(unit)), 0);
	cr_assert_eq(strlen(unit), 255);
	memset(path + off, 'a', 256 - strlen(".service"));
	strcpy(path + off + 256 - strlen(".service"), ".service");
	cr_assert_eq(peerid_unit_from_cgroup(path, unit, sizeof(unit)), -ENXIO);
}

/* ===================== /proc/PID/cgroup text ===================== */

TEST(parse, unified_hybrid_legacy)
{
	char buf[PEERID_CGROUP_MAX];
	/* unified (cgroup v2 only) */
	cr_assert_eq(peerid_parse_cgroup("0::/system.slice/web.service\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/system.slice/web.service");
	/* no trailing newline */
	cr_assert_eq(peerid_parse_cgroup("0::/init.scope", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/init.scope");
	/* hybrid: the v2 line wins over name=systemd */
	cr_assert_eq(peerid_parse_cgroup("12:cpu,cpuacct:/system.slice/web.service\n"
	                                 "1:name=systemd:/system.slice/web.service\n"
	                                 "0::/system.slice/web.service\n",
	                                 buf, sizeof(buf)),
	             0);
	cr_assert_str_eq(buf, "/system.slice/web.service");
	cr_assert_eq(peerid_parse_cgroup("1:name=systemd:/from-v1\n0::/from-v2\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/from-v2");
	/* legacy: name=systemd, wherever it is in the controller list */
	cr_assert_eq(peerid_parse_cgroup("11:memory:/m\n2:name=systemd:/system.slice/a.service\n3:cpu:/c\n", buf,
	                                 sizeof(buf)),
	             0);
	cr_assert_str_eq(buf, "/system.slice/a.service");
	cr_assert_eq(peerid_parse_cgroup("2:foo,name=systemd:/x.service\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/x.service");
	/* the root, and a path holding ':' */
	cr_assert_eq(peerid_parse_cgroup("0::/\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/");
	cr_assert_eq(peerid_parse_cgroup("0::/a:b/c::d\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/a:b/c::d");
	/* a zombie's removed cgroup */
	cr_assert_eq(peerid_parse_cgroup("0::/system.slice/gone.service (deleted)\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/system.slice/gone.service");
}

TEST(parse, hostile_and_missing)
{
	static const struct {
		const char *text;
		int rc;
	} cases[] = {
		{"", -ENODATA},
		{"\n\n", -ENODATA},
		{"12:cpu:/x\n4:memory:/y\n", -ENODATA},       /* v1 without systemd */
		{"1:name=systemdx:/x\n", -ENODATA},            /* a word, not a prefix */
		{"1:xname=systemd:/x\n", -ENODATA},
		{"0:cpu:/x\n", -ENODATA},                      /* hierarchy 0 with controllers is not v2 */
		{"10::/x\n", -ENODATA},
		{"garbage\n", -ENODATA},
		{"0:/x\n", -ENODATA},
		{"0::/a\n0::/system.slice/web.service\n", -EBADMSG}, /* two v2 lines: not trusted */
		{"1:name=systemd:/a\n2:name=systemd:/b\n", -EBADMSG},
		{"0::relative\n", -EBADMSG},
		{"0::\n", -EBADMSG},
		{"0:: (deleted)\n", -EBADMSG},
		{"0::/../../system.slice/web.service\n", -EXDEV},
		{"0::/..\n", -EXDEV},
		{"0::/a/../b\n", -EXDEV},
	};
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char buf[PEERID_CGROUP_MAX] = "x";
		int rc = peerid_parse_cgroup(cases[i].text, buf, sizeof(buf));
		cr_assert_eq(rc, cases[i].rc, "case %zu: '%s' gave %d, not %d", i, cases[i].text, rc, cases[i].rc);
		cr_assert_str_eq(buf, "", "case %zu", i);
	}
	/* Names holding ".." but not being it are fine. */
	char buf[PEERID_CGROUP_MAX];
	cr_assert_eq(peerid_parse_cgroup("0::/a..b/..c/d..\n", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/a..b/..c/d..");

	/* Too long for the buffer: unknown, never cut (a cut path could match a
	 * shorter allow_cgroups prefix it is not under). */
	char text[PEERID_CGROUP_MAX + 16];
	memcpy(text, "0::/", 4);
	memset(text + 4, 'a', PEERID_CGROUP_MAX - 1); /* a path of PEERID_CGROUP_MAX bytes */
	text[3 + PEERID_CGROUP_MAX] = '\n';
	text[4 + PEERID_CGROUP_MAX] = '\0';
	cr_assert_eq(peerid_parse_cgroup(text, buf, sizeof(buf)), -ENAMETOOLONG);
	cr_assert_str_eq(buf, "");
	text[2 + PEERID_CGROUP_MAX] = '\n'; /* one byte shorter: fits with its NUL */
	text[3 + PEERID_CGROUP_MAX] = '\0';
	cr_assert_eq(peerid_parse_cgroup(text, buf, sizeof(buf)), 0);
	cr_assert_eq(strlen(buf), PEERID_CGROUP_MAX - 1);
}

/* ===================== reading a process's cgroup ===================== */

TEST(proc, own_cgroup)
{
	char expect[PEERID_CGROUP_MAX];
	own_cgroup(expect, sizeof(expect));
	if (!expect[0])
		cr_skip_test("/proc/self/cgroup has neither a 0:: nor a name=systemd line here");
	int pidfd = self_pidfd();
	char got[PEERID_CGROUP_MAX] = "x";
	int rc = peerid_read_cgroup(getpid(), pidfd, got, sizeof(got));
	close(pidfd);
	cr_assert_eq(rc, 0, "peerid_read_cgroup: %s", strerror(-rc));
	cr_assert_str_eq(got, expect);
	cr_log_info("own cgroup: %s", got);

	char unit[PEERID_UNIT_MAX];
	if (peerid_unit_from_cgroup(got, unit, sizeof(unit)) == 0)
		cr_log_info("own unit: %s", unit);
	else
		cr_log_info("own cgroup names no systemd unit");
}

TEST(proc, no_pidfd_no_cgroup)
{
	char buf[PEERID_CGROUP_MAX] = "x";
	cr_assert_eq(peerid_read_cgroup(getpid(), -1, buf, sizeof(buf)), -EBADF);
	cr_assert_str_eq(buf, "");
	int pidfd = self_pidfd();
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_cgroup(0, pidfd, buf, sizeof(buf)), -ESRCH);
	cr_assert_str_eq(buf, "");
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_cgroup(-5, pidfd, buf, sizeof(buf)), -ESRCH);
	cr_assert_str_eq(buf, "");
	close(pidfd);
}

TEST(proc, live_child_then_dead_child)
{
	char expect[PEERID_CGROUP_MAX];
	own_cgroup(expect, sizeof(expect));
	if (!expect[0])
		cr_skip_test("/proc/self/cgroup has neither a 0:: nor a name=systemd line here");

	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		char c;
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	int pidfd = open_pidfd(child);
	if (pidfd < 0) {
		close(p[1]);
		waitpid(child, NULL, 0);
		cr_skip_test("pidfd_open: %s", strerror(errno));
	}

	/* Alive: the child's cgroup is ours (it inherited it). */
	cr_assert_eq(peerid_pidfd_alive(pidfd), 1);
	char buf[PEERID_CGROUP_MAX] = "x";
	cr_assert_eq(peerid_read_cgroup(child, pidfd, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, expect);

	/* Exited but not reaped: /proc/PID/cgroup still reads fine, only the
	 * pidfd tells that the process is gone. */
	close(p[1]);
	wait_exit(pidfd);
	char path[64], raw[4096] = "";
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)child);
	FILE *f = fopen(path, "re");
	bool zombie_readable = f && fread(raw, 1, sizeof(raw) - 1, f) > 0;
	if (f)
		fclose(f);
	cr_assert_eq(peerid_pidfd_alive(pidfd), 0);
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_cgroup(child, pidfd, buf, sizeof(buf)), -ESRCH);
	cr_assert_str_eq(buf, "", "a dead process's cgroup must not be reported");
	if (!zombie_readable)
		cr_log_info("the zombie's /proc/PID/cgroup was not readable here");

	/* A reused pid: a live process's pid with the dead one's pidfd (what
	 * pid reuse between accept and the read would look like) gives
	 * nothing either. */
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_cgroup(getpid(), pidfd, buf, sizeof(buf)), -ESRCH);
	cr_assert_str_eq(buf, "");

	/* Reaped: the same. */
	cr_assert_eq(waitpid(child, NULL, 0), child);
	cr_assert_eq(peerid_pidfd_alive(pidfd), 0);
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_cgroup(child, pidfd, buf, sizeof(buf)), -ESRCH);
	cr_assert_str_eq(buf, "");
	close(pidfd);
}

TEST(proc, pidfd_alive_errors)
{
	cr_assert_eq(peerid_pidfd_alive(-1), -EBADF);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int closed = p[0];
	close(p[0]);
	close(p[1]);
	cr_assert_eq(peerid_pidfd_alive(closed), -EBADF);
	int self = self_pidfd();
	cr_assert_eq(peerid_pidfd_alive(self), 1);
	close(self);
}

/* ===================== SO_PEERSEC ===================== */

TEST(label, socketpair)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char buf[PEERID_LABEL_MAX];
	memset(buf, 'x', sizeof(buf));
	int rc = peerid_read_label(sv[0], buf, sizeof(buf));
	cr_assert(rc == 0 || rc == 1, "SO_PEERSEC on a socketpair: %d (%s)", rc, rc < 0 ? strerror(-rc) : "");
	if (rc == 1) {
		cr_assert_gt(strlen(buf), 0);
		cr_log_info("peer label: '%s'", buf);
	} else {
		cr_assert_str_eq(buf, "");
		cr_log_info("no LSM label on this machine (SO_PEERSEC gave none)");
	}
	/* Too small a buffer: unknown, not cut (only checkable with a label). */
	if (rc == 1) {
		char small[2] = "x";
		cr_assert_eq(peerid_read_label(sv[0], small, sizeof(small)), -ERANGE);
		cr_assert_str_eq(small, "");
	}
	cr_assert_eq(peerid_read_label(sv[0], buf, 0), -ERANGE);
	close(sv[0]);
	close(sv[1]);

	/* Not a socket: an error, and "". */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	strcpy(buf, "x");
	cr_assert_eq(peerid_read_label(p[0], buf, sizeof(buf)), -ENOTSOCK);
	cr_assert_str_eq(buf, "");
	close(p[0]);
	close(p[1]);
}

TEST(label, from_raw)
{
	char buf[16];
	/* SELinux counts the NUL; AppArmor does not (and adds the mode). */
	cr_assert_eq(peerid_label_from_raw("system_u:r:t\0", 13, buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "system_u:r:t");
	char apparmor[17];
	cr_assert_eq(peerid_label_from_raw("/bin/x (enforce)", 16, apparmor, sizeof(apparmor)), 1);
	cr_assert_str_eq(apparmor, "/bin/x (enforce)");
	cr_assert_eq(peerid_label_from_raw("unconfined", 10, buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "unconfined");
	/* Empty, or only NULs: no label. */
	strcpy(buf, "x");
	cr_assert_eq(peerid_label_from_raw("", 0, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
	strcpy(buf, "x");
	cr_assert_eq(peerid_label_from_raw("\0\0", 2, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
	/* A NUL inside would make "a\0b" compare equal to "a": unknown. */
	strcpy(buf, "x");
	cr_assert_eq(peerid_label_from_raw("a\0b", 3, buf, sizeof(buf)), -EBADMSG);
	cr_assert_str_eq(buf, "");
	/* Must fit with its NUL: 15 characters in 16 bytes, not 16. */
	cr_assert_eq(peerid_label_from_raw("0123456789abcde", 15, buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "0123456789abcde");
	cr_assert_eq(peerid_label_from_raw("0123456789abcdef", 16, buf, sizeof(buf)), -ERANGE);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(peerid_label_from_raw("0123456789abcdef\0", 17, buf, sizeof(buf)), -ERANGE);
	/* In place, as peerid_read_label() uses it. */
	char inplace[8] = {'l', 'a', 'b', '\0', '\0', 'z', 'z', 'z'};
	cr_assert_eq(peerid_label_from_raw(inplace, 5, inplace, sizeof(inplace)), 1);
	cr_assert_str_eq(inplace, "lab");
}
