/* peerid: what the kernel can tell about a control peer beyond its
 * credentials: its cgroup, the systemd unit that cgroup belongs to, and its
 * LSM label (SO_PEERSEC). registry_read_identity() calls this once per
 * control connection, at accept; policy.c matches the results against
 * allow_cgroups, allow_units and allow_labels.
 *
 * Contract:
 * - No libsystemd (only sdnotify.c includes <systemd/...>): it must work in
 *   containers and on hosts without systemd. The unit is derived from the
 *   cgroup path with the rules sd_pid_get_unit(3) uses (see
 *   peerid_unit_from_cgroup below).
 * - Every output buffer is a NUL-terminated string, "" whenever the answer
 *   is unknown or there is none; callers treat "" as matching nothing.
 * - Nothing here logs, allocates, or keeps an fd: the caller owns sockfd and
 *   pidfd, and peerid_read_cgroup() closes the procfs file it opens.
 * - The reads are short procfs reads and getsockopt() calls: they never
 *   wait on disk or network, so they are fine on the event loop (once per
 *   control connection, not per message).
 * - Returns: 0 (or a documented count/flag >= 0) or -errno. */
#ifndef HANDOFF_PEERID_H
#define HANDOFF_PEERID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Buffer sizes, including the NUL (struct peer_ident in policy.h uses
 * them). A value that does not fit is unknown, never truncated. */
#define PEERID_CGROUP_MAX 512 /* cgroup path */
#define PEERID_UNIT_MAX 256   /* systemd's UNIT_NAME_MAX: 255 characters + NUL */
#define PEERID_LABEL_MAX 256  /* SO_PEERSEC label */

/* Is name a unit name systemd accepts for a running unit: PREFIX.TYPE or
 * PREFIX@INSTANCE.TYPE (not a template "PREFIX@.TYPE"), TYPE one of
 * service, socket, target, device, mount, automount, swap, timer, path,
 * slice, scope; PREFIX non-empty of [A-Za-z0-9:_.\-], INSTANCE non-empty of
 * the same plus '@'; at most 255 characters. Pure. (config.c can use it to
 * reject an allow_units entry that could never match.) */
bool peerid_unit_name_valid(const char *name);

/* The systemd unit a cgroup path belongs to, by sd_pid_get_unit(3)'s rules
 * (systemd src/basic/cgroup-util.c: cg_path_get_unit, skip_slices,
 * cg_path_decode_unit, cg_unescape):
 *  1. skip the leading run of components that are valid plain *.slice
 *     names (system.slice, user.slice, user-1000.slice, machine.slice, ...);
 *  2. the next component, with one leading '_' removed (systemd's cgroup
 *     escape), must be a valid unit name (peerid_unit_name_valid), plain or
 *     instance, and not a *.slice: that is the unit; anything below it is
 *     ignored;
 *  3. otherwise there is no unit.
 * So /system.slice/nginx.service/worker -> nginx.service;
 * /user.slice/user-1000.slice/session-3.scope -> session-3.scope;
 * /user.slice/user-1000.slice/user@1000.service/app.slice/a.service ->
 * user@1000.service (the system unit; a.service is its user unit);
 * /init.scope -> init.scope; /system.slice/docker-ID.scope -> that scope;
 * "/", "/system.slice", "/docker/ID" (cgroupfs driver), "/kubepods/..." and
 * "/../x" (outside our cgroup namespace) -> none.
 * The path is used as /proc shows it: relative to handoffd's cgroup
 * namespace, not shifted by PID 1's cgroup as systemd does for a systemd
 * nested in a container without a cgroup namespace (there the outer scope
 * is reported instead of the inner service, which can only match less).
 * Returns 0 with buf set, -ENXIO when the path names no unit, -ENOBUFS
 * when buf is too small; buf is "" on failure. Pure. */
int peerid_unit_from_cgroup(const char *cgroup_path, char *buf, size_t size);

/* The cgroup path in the text of a /proc/PID/cgroup file:
 * - the cgroup v2 line "0::PATH" when there is one (unified systems; on
 *   hybrid systems systemd mirrors its tree there, so it equals the
 *   name=systemd path);
 * - else the v1 line whose controller list holds "name=systemd" (legacy
 *   systems, where that hierarchy is systemd's own tracking).
 * The v2 line wins because on a unified host a name=systemd hierarchy can
 * only have been mounted by someone else (e.g. for old containers) and
 * does not show where systemd put the process.
 * A " (deleted)" suffix (a zombie whose cgroup was removed) is dropped.
 * Returns 0 with buf set; -ENODATA with neither line; -EBADMSG when a kind
 * of line appears twice or a path is not absolute; -EXDEV when the path
 * leaves our cgroup namespace ("/../..."); -ENAMETOOLONG when it does not
 * fit in size. buf is "" on failure. Pure. */
int peerid_parse_cgroup(const char *text, char *buf, size_t size);

/* Is the process behind pidfd still running? 1 yes, 0 it has exited (the
 * pidfd polls readable), -errno (-EBADF: not an open fd). Never waits. */
int peerid_pidfd_alive(int pidfd);

/* The cgroup of process pid, read from /proc/PID/cgroup and parsed as
 * above, then trusted only if pidfd (the same process, from SO_PEERPIDFD)
 * shows it still running after the read: a pid reused by another process
 * in between could otherwise lend us that process's cgroup. Without a
 * pidfd (kernels before 6.5 lack SO_PEERPIDFD) the cgroup is not read at
 * all. Returns 0 with buf set; -EBADF (pidfd < 0), -ESRCH (pid <= 0, no
 * such process, or it exited), -EFBIG (file over 8 KiB), an error of
 * peerid_parse_cgroup, or another -errno; buf is "" on failure. */
int peerid_read_cgroup(pid_t pid, int pidfd, char *buf, size_t size);

/* The LSM label of the peer of connected Unix socket sockfd
 * (getsockopt SO_PEERSEC), as the LSM formats it (AppArmor appends the
 * mode, e.g. "/usr/sbin/nginx (enforce)"; SELinux gives the context, e.g.
 * "system_u:system_r:httpd_t:s0"), without the trailing NUL some LSMs
 * count. Returns 1 with buf set, 0 with buf "" when there is no label (no
 * LSM provides one: ENOPROTOOPT, or it is empty), -ERANGE when it does not
 * fit, -EBADMSG when it holds a NUL inside, another -errno; buf is "" on
 * failure. */
int peerid_read_label(int sockfd, char *buf, size_t size);

/* What peerid_read_label() does with the len bytes getsockopt gave: drop
 * trailing NULs, refuse a NUL inside (-EBADMSG) or a label that does not
 * fit in size with its NUL (-ERANGE), else copy it (raw may be buf).
 * Returns 1 (a label), 0 (empty) or -errno with buf "". Pure. */
int peerid_label_from_raw(const char *raw, size_t len, char *buf, size_t size);

#endif
