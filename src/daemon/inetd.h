/* inetd: the inetd.conf front end (openbsd-inetd and inetutils-inetd
 * format), for `inetd_conf = PATH`, `handoffd --inetd PATH` and
 * `handoffd --convert-inetd PATH`.
 *
 * One parser, inetd_parse(), turns each entry of an inetd.conf into events
 * on a sink: a [service NAME] header, then its keys (key, value) exactly as
 * they would be written in handoffd.conf, each event carrying the inetd.conf
 * path and the line of the entry. inetd_load() feeds those events to the
 * configuration builder; inetd_convert() prints them. Both see the same
 * events, so loading a file and loading its conversion cannot drift.
 *
 * An entry is checked completely before any of its events is sent: an
 * entry with an error produces exactly one error event (naming the field)
 * and no service. Comments and blank lines are skipped; nothing else is.
 *
 * Names (/etc/services, getservbyname/getservbyport) are resolved here: call
 * only while loading a configuration, never from the event loop.
 *
 * Mapping (entry fields -> handoffd.conf keys):
 *   [host[,host...]:]service  listen = tcp://HOST:PORT (one per host); a line
 *                             with only "host:" sets the default host list for
 *                             the entries after it ("*:" resets it)
 *   stream / dgram / seqpacket with tcp*, udp*, unix (seqpacket: unix only)
 *   tcp4                      IPv4: tcp://0.0.0.0:PORT
 *   tcp6 (inetutils tcp6only) IPv6: tcp://[::]:PORT and ipv6only = yes
 *   tcp, tcp46                both: tcp://\*:PORT (udp* alike, udp://), as
 *                             Debian's openbsd-inetd binds plain tcp
 *   unix                      unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH
 *   proto,sndbuf=N,rcvbuf=N   send_buffer / receive_buffer (openbsd-inetd)
 *   nowait (stream)           mode accept (the default, not written)
 *   wait (stream)             mode = listen
 *   wait (dgram)              the datagram socket is shared (nothing written);
 *                             dgram nowait is an error
 *   .max                      spawn_rate = MAX/min (default 256/min), and
 *                             spawn_pause = 10m (inetd's retry time)
 *   user[:group], user.group  exec_user / exec_group
 *   internal                  builtin = echo|discard|chargen|daytime|time|tcpmux
 *   server argv0 args...      exec = server args..., exec_argv0 = argv0 when it
 *                             differs from the server path
 *   tcpmux/NAME, tcpmux/+NAME tcpmux = NAME / +NAME (no listen); a builtin
 *                             tcpmux service on port 1 is added when the file
 *                             has none
 * Service names are "<service>-<protocol>" (echo-tcp, ftp-tcp6,
 * tcpmux-NAME, <basename of the path>-unix), sanitised to
 * [A-Za-z0-9_.-] and made unique with -2, -3, ...
 *
 * Ownership: nothing returned is allocated; the FILEs passed to
 * inetd_convert() stay the caller's. Every fd opened here is closed before
 * return.
 */
#ifndef HANDOFF_INETD_H
#define HANDOFF_INETD_H

#include <stdio.h>

/* Longest "key = value" or "[service NAME]" line handoffd.conf takes
 * (Debian's inih reads 200 bytes including the line end). */
#define INETD_CONF_LINE_MAX 195

/* Where inetd_parse() sends its events. file is the inetd.conf path, line
 * the entry's line (its first line if continued). msg is one line of text
 * without the "file:line: " prefix. Strings are valid during the call only.
 * comment may be NULL (notes for a human reading a conversion, e.g. why a
 * service was added). */
struct inetd_sink {
	void (*service)(void *ctx, const char *file, int line, const char *name);
	void (*key)(void *ctx, const char *file, int line, const char *key, const char *value);
	void (*comment)(void *ctx, const char *file, int line, const char *text);
	void (*error)(void *ctx, const char *file, int line, const char *msg);
};

/* Parse the inetd.conf at path and send its entries to sink. Returns 0,
 * -EINVAL if any entry had an error (each one reported to sink->error), or
 * -errno if the file cannot be opened or read (nothing reported: the
 * caller knows the context). */
int inetd_parse(const char *path, const struct inetd_sink *sink, void *ctx);

/* Feed every entry of the inetd.conf at path to the builder as a [service]
 * header plus keys, each call carrying path and the entry's line number;
 * errors in entries go to cfgb_error() with path and the entry's line.
 * Returns 0, -EINVAL (errors reported through the builder), or -errno when
 * the file cannot be opened or read: that one is NOT reported, the caller
 * reports it at its own line (the inetd_conf key, or the command line). */
struct cfg_builder;
int inetd_load(struct cfg_builder *b, const char *path);

/* --convert-inetd: print the equivalent handoffd.conf to out: a comment
 * naming the source, then per entry "; from PATH:LINE" and its [service]
 * section. An entry with an error is left out (a comment in out says so)
 * and its error goes to err as "PATH:LINE: message". Returns 0, -EINVAL
 * (errors were printed), or -errno (the file cannot be read; printed to err
 * as "PATH: cannot read: ..."). */
int inetd_convert(const char *path, FILE *out, FILE *err);

#endif
