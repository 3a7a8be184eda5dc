/* builtin: the classic inetd services handoffd answers itself, on its own
 * loop: echo (RFC 862), discard (RFC 863), chargen (RFC 864), daytime
 * (RFC 867), time (RFC 868) over stream sockets (TCP, Unix stream and
 * seqpacket) and datagram sockets (UDP, Unix datagram), and tcpmux
 * (RFC 1078) over stream sockets.
 *
 * Ownership:
 *   - hd->builtins (struct builtins, opaque) is made by builtin_init() and
 *     freed by builtin_close_all().
 *   - builtin_stream_take() takes a struct conn and its fd. From then on this
 *     module alone owns both, until the connection ends: it then calls
 *     service_conn_closed(c->svc, c) and conn_free(c), in that order, exactly
 *     once. tcpmux instead hands a connection on with dispatch_tcpmux()
 *     (which moves its accounting from the tcpmux service to the target),
 *     after stopping its handles and putting the fd back in blocking mode.
 *   - Each connection has a uv_poll_t and a uv_timer_t, closed (and the
 *     connection's memory freed in their close callbacks) when it ends.
 *   - Datagram listeners stay the listener module's: builtin_dgram_readable()
 *     only reads from and replies through l->fd, keeping nothing.
 *
 * Stream behaviour, all non-blocking with a fixed BUILTIN_BUF buffer per
 * connection (so a connection costs the same whatever its peer does):
 *   echo     read and send back; while the peer does not read, stop reading
 *            (backpressure). EOF: flush, then close. On seqpacket each record
 *            comes back as one record; a record larger than BUILTIN_BUF
 *            closes the connection.
 *   discard  read and drop until EOF.
 *   chargen  RFC 864 lines whenever writable, until a send fails (the client
 *            went away); input is read and dropped.
 *   daytime  one ctime()-style line in local time ("Mon Nov 23 12:00:00
 *            2026\r\n"), then close (*).
 *   time     4 bytes, big endian, seconds since 1900-01-01 UTC, then close (*).
 *   tcpmux   one request line (CRLF or LF; at most BUILTIN_TCPMUX_LINE_MAX
 *            bytes with the terminator; within BUILTIN_TCPMUX_TIMEOUT_MS):
 *            "help" lists the tcpmux names, an unknown name gets
 *            "-Service not available\r\n", a known one gets "+Go\r\n" when
 *            its tcpmux_plus is set and is handed over. Nothing after the
 *            line is read (the target gets those bytes). On seqpacket the
 *            request is one record holding nothing but the line.
 *            Answers other than the handover close as (*) does.
 *   (*) "close" after a final reply: shutdown(SHUT_WR), then input is read
 *       and dropped until the client's EOF, for at most BUILTIN_LINGER_MS
 *       (and 64 KiB), so that unread input does not reset the connection
 *       and destroy the reply before the client reads it.
 * A connection closes after BUILTIN_IDLE_MS without progress (bytes read or
 * written), and tcpmux's reply after BUILTIN_TCPMUX_TIMEOUT_MS without a
 * write. One uv_timer per connection: it is armed once and, when it fires
 * early because traffic happened meanwhile, re-armed for what remains, so
 * traffic costs one store of the loop time and no timer-heap operation, and
 * an idle daemon gets no periodic wake-ups (a shared sweep would need a
 * period fine enough for the 30 s tcpmux deadline and walk every
 * connection on each tick).
 *
 * Datagram behaviour (one reply per datagram, no state): echo returns the
 * datagram, chargen a block of random length 0..BUILTIN_DGRAM_CHARGEN_MAX,
 * daytime and time as above, discard nothing. A datagram larger than the
 * receive buffer (64 KiB) is not echoed. The loop guard (see
 * builtin_dgram_guard()) drops datagrams that could start an endless
 * exchange with another echo/chargen-like service; they are counted and
 * logged at most once a minute.
 *
 * Nothing here limits how many connections or datagrams are served: the
 * callers apply max_connections, rates and access rules first.
 */
#ifndef HANDOFF_BUILTIN_H
#define HANDOFF_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon.h"

#define BUILTIN_BUF 4096                        /* per stream connection */
#define BUILTIN_IDLE_MS (5u * 60u * 1000u)      /* no progress: close */
#define BUILTIN_TCPMUX_TIMEOUT_MS 30000u        /* to send the request line */
#define BUILTIN_TCPMUX_LINE_MAX 256             /* request line, terminator included */
#define BUILTIN_LINGER_MS 2000u                 /* after a final reply: wait for the client's EOF */
#define BUILTIN_DGRAM_BATCH 64                  /* datagrams read per readable event */
#define BUILTIN_DGRAM_CHARGEN_MAX 512
#define BUILTIN_GUARD_LOG_MS 60000u             /* loop-guard drops: one log line a minute */

/* RFC 864: lines of 72 printable characters (' ' to '~', 95 of them), each
 * starting one character further than the last, ended by "\r\n". The stream
 * repeats after 95 lines. */
#define BUILTIN_CHARGEN_LINE 72
#define BUILTIN_CHARGEN_PERIOD (95u * (BUILTIN_CHARGEN_LINE + 2u))

/* Longest daytime line, "\r\n" and NUL included. */
#define BUILTIN_DAYTIME_MAX 64

/* Seconds from 1900-01-01 to 1970-01-01 (RFC 868). */
#define BUILTIN_TIME_OFFSET 2208988800u

/* ---- the daemon side ---- */

/* Make hd->builtins. Loads the time zone now (tzset) so that daytime never
 * reads /etc/localtime on the loop. Returns 0 or -ENOMEM. */
int builtin_init(struct hd *hd);

/* Shutdown: end every builtin connection now (service_conn_closed() and
 * conn_free() for each, so call this before the services are freed), close
 * their handles and free hd->builtins (NULL afterwards; NULL-safe). The
 * handles' close callbacks run on the loop's next turn, after which
 * uv_loop_close() succeeds. */
void builtin_close_all(struct hd *hd);

/* Serve c, an accepted stream connection of c->svc, as c->svc->cfg->builtin
 * says. Takes ownership of c (see above); c->fd is made non-blocking. If the
 * service has no builtin, or hd->builtins is NULL, or memory or the loop
 * refuse, the connection is closed at once (still with
 * service_conn_closed()). */
void builtin_stream_take(struct hd *hd, struct conn *c);

/* l is a datagram listener (udp://, unix-dgram:) of a builtin service and
 * its socket is readable: read up to BUILTIN_DGRAM_BATCH datagrams and answer
 * each. Never blocks; replies that would block are dropped, as UDP may. */
void builtin_dgram_readable(struct listener *l);

/* Builtin stream connections open for svc (status). */
unsigned builtin_count(const struct hd *hd, const struct service *svc);

/* svc is going away (reload removed it): end its builtin connections now,
 * each with service_conn_closed(svc, c) and conn_free(c). Call it before
 * svc is freed. */
void builtin_service_gone(struct hd *hd, struct service *svc);

/* Tests: shorter timeouts for connections taken from now on (0 = keep). */
void builtin_set_timeouts(struct hd *hd, unsigned idle_ms, unsigned tcpmux_ms);

/* ---- pure pieces (no I/O, no clock, no state) ---- */

/* Fill buf with len bytes of the chargen stream from position *pos (0 is the
 * start of the first line, RFC 864's " !\"#..."), and advance *pos, modulo
 * BUILTIN_CHARGEN_PERIOD. Any *pos works; an out-of-range one is reduced. */
void builtin_chargen_fill(uint32_t *pos, uint8_t *buf, size_t len);

/* RFC 868 time for a Unix time: seconds since 1900-01-01 00:00 UTC,
 * modulo 2^32 (the protocol's own wrap in 2036). */
uint32_t builtin_time_value(time_t t);

/* The daytime line for a broken-down time, in ctime()'s layout with "\r\n":
 * "Mon Nov 23 12:00:00 2026\r\n" (day of month padded with a space,
 * English names whatever the locale). Returns the length, or -EINVAL for a
 * tm outside its ranges, -ENOSPC if size is too small. */
int builtin_daytime_format(const struct tm *tm, char *buf, size_t size);

/* Loop-guard verdict for a datagram from src arriving at a listener bound to
 * self (the listener's getsockname()), given the ports of every builtin
 * datagram service that answers (echo, chargen, daytime, time). */
enum builtin_guard {
	BUILTIN_GUARD_OK = 0,       /* answer it */
	BUILTIN_GUARD_LOW_PORT,     /* IP source port below 1024: a system service */
	BUILTIN_GUARD_SELF,         /* comes from the listener's own address and port */
	BUILTIN_GUARD_SERVICE_PORT, /* source port is that of an answering builtin
	                               (here or, same port, on another host) */
	BUILTIN_GUARD_UNNAMED,      /* Unix client without an address: no reply possible */
	BUILTIN_GUARD_FAMILY,       /* unknown address family or truncated address */
};
/* IP: src port < 1024 -> LOW_PORT; src port == self port and src address
 * equal to self's (or self is a wildcard address) -> SELF; src port equal to
 * self's port or any of ports[] -> SERVICE_PORT; else OK. IPv4 and
 * v4-mapped IPv6 addresses compare equal. Unix: unnamed src (no path, no
 * abstract name, or src_len 0 at a Unix self) -> UNNAMED; src equal to self -> SELF; else OK. A src
 * family differing from self's (other than IPv4/IPv6) -> FAMILY. */
enum builtin_guard builtin_dgram_guard(const struct sockaddr *src, socklen_t src_len, const struct sockaddr *self,
                                       socklen_t self_len, const uint16_t *ports, size_t nports);

/* Short phrase for a verdict ("source port below 1024", ...). */
const char *builtin_guard_name(enum builtin_guard g);

/* Parse a tcpmux request from the first len bytes the client sent.
 * The line ends at the first LF; a CR before it and trailing blanks are
 * dropped. final: no more bytes will come for it (a seqpacket record), so a
 * line without LF is complete. Returns
 *   BUILTIN_TCPMUX_INCOMPLETE  no LF yet, fewer than BUILTIN_TCPMUX_LINE_MAX
 *                              bytes, not final: read more;
 *   BUILTIN_TCPMUX_HELP        "help", any case;
 *   BUILTIN_TCPMUX_SERVICE     a name, copied NUL-terminated to ret_name;
 *   -EMSGSIZE                  line (with its terminator) longer than
 *                              BUILTIN_TCPMUX_LINE_MAX;
 *   -ENOMSG                    empty line;
 *   -EINVAL                    a byte that is not printable ASCII, or a space
 *                              inside the name;
 *   -ENAMETOOLONG              name does not fit name_size (so no service has it).
 * *ret_used (any result but INCOMPLETE) is how many bytes the line took,
 * terminator included; bytes after it belong to the service. */
enum { BUILTIN_TCPMUX_INCOMPLETE = 0, BUILTIN_TCPMUX_SERVICE = 1, BUILTIN_TCPMUX_HELP = 2 };
int builtin_tcpmux_parse(const uint8_t *buf, size_t len, bool final, char *ret_name, size_t name_size,
                         size_t *ret_used);

#endif
