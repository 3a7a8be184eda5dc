/* xinetd: `handoffd --convert-xinetd PATH`, an xinetd.conf (with its
 * include and includedir files) printed as the equivalent handoffd.conf.
 *
 * Syntax read: comments (a line whose first non-blank is '#'), blank lines,
 * `defaults { ... }`, `service NAME { ... }` ('{' on the same line or the
 * next), attribute lines `ATTR = values...`, `ATTR += values...`,
 * `ATTR -= values...`, `include FILE` and `includedir DIR` outside any
 * section. includedir reads every regular file of DIR in C-locale sorted
 * order, skipping names that contain a dot or end in '~', as xinetd does.
 * A relative include path is taken relative to the directory of the file
 * that names it. Includes nest at most 8 deep.
 *
 * Semantics follow xinetd: attributes of `defaults` apply to every service
 * that does not set them; only_from, no_access and the log and passenv
 * lists add up in defaults, and in a service '+=' adds to the inherited
 * list, '-=' removes from it and '=' replaces it. A service without
 * flags IPv4 (or a bind address of one family) listens on IPv4 and IPv6
 * (xinetd binds IPv6 with v6only = no by default). xinetd's default cps
 * (50 connections/s, 10 s pause) is written for services handoffd accepts
 * for. Mapped attributes: id, type (INTERNAL, UNLISTED, TCPMUX, TCPMUXPLUS;
 * RPC is refused), flags (IPv4, IPv6, NODELAY, KEEPALIVE, NAMEINARGS,
 * DISABLE; REUSE and NOLIBWRAP are what handoffd does anyway), socket_type,
 * protocol, wait, user, group, server, server_args, port, bind/interface,
 * v6only, only_from, no_access, instances, per_source, cps, disable, and
 * enabled/disabled in defaults. Every other attribute (log_*,
 * access_times, rlimit_*, nice, umask, env, passenv, banner*, redirect,
 * max_load, mdns, groups, deny_time, rpc_*, libwrap, ...) is named on err,
 * once per service (once for defaults) and attribute:
 *   FILE:LINE: service NAME: attribute ATTR has no equivalent in handoffd, ignored
 *
 * A service that cannot be converted without changing who may reach it
 * (an only_from / no_access entry handoffd cannot express for it, RPC, an
 * internal service handoffd lacks, a missing required attribute) is left
 * out of the output with a comment there and an error on err.
 *
 * Names (/etc/services) are resolved here: call from the command line
 * only, never from the event loop. Nothing returned is allocated; the
 * FILEs stay the caller's; every fd opened here is closed before return.
 */
#ifndef HANDOFF_XINETD_H
#define HANDOFF_XINETD_H

#include <stdio.h>

/* --convert-xinetd: print the equivalent handoffd.conf for the xinetd.conf
 * at path to out; warnings and errors go to err as "FILE:LINE: message".
 * Returns 0 (warnings only), -EINVAL (syntax errors, or services that
 * could not be converted: each named on err), or -errno when path itself
 * cannot be read (printed to err as "PATH: cannot read: ..."). */
int xinetd_convert(const char *path, FILE *out, FILE *err);

#endif
