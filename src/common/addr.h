/* addr: the listen address syntax and sockaddr formatting.
 *
 *   tcp://0.0.0.0:80     IPv4 address
 *   tcp://[::1]:8080     IPv6 address (brackets required)
 *   tcp://\*:80          every address, IPv4 and IPv6 on one socket (a star)
 *   tcp://host.name:80   a name, resolved once when the config is loaded
 *   udp://0.0.0.0:53     UDP, the same host forms as tcp:// (udp://\*:53 too)
 *   unix:/run/x.sock     Unix stream socket at a path
 *   unix:@name           Unix stream socket in the abstract namespace
 *   unix-dgram:/path     Unix datagram socket (path or @name)
 *   unix-seqpacket:/path Unix sequenced-packet socket (path or @name)
 *
 * Ports are 0..65535 (0: the kernel picks one). Parsing is pure; resolution
 * (addr_resolve) may block in getaddrinfo and is called only while loading a
 * configuration. Nothing here allocates except addr_resolve.
 */
#ifndef HANDOFF_ADDR_H
#define HANDOFF_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define ADDR_TEXT_MAX 160

enum addr_kind { ADDR_TCP = 1, ADDR_UNIX = 2, ADDR_UDP = 3 };

struct addr_spec {
	enum addr_kind kind;
	char host[256];   /* TCP: literal or name without brackets; "*" for any */
	uint16_t port;                /* TCP */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* UNIX: path or name (without '@') */
	int abstract;                 /* UNIX: 1 for the abstract namespace */
	int socktype;                 /* SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET */
};

/* A datagram socket (udp://, unix-dgram:): shared by its servers, never
 * accepted on. */
#define ADDR_IS_DGRAM(spec) ((spec)->socktype == SOCK_DGRAM)

/* Parse text into *ret. Returns 0 or -EINVAL with *ret_why a static phrase. */
int addr_parse(const char *text, struct addr_spec *ret, const char **ret_why);

/* Canonical text of a spec (what addr_parse accepts), for comparing
 * listeners across reloads and for messages. */
int addr_spec_format(const struct addr_spec *s, char *buf, size_t size);

/* One resolved socket address. */
struct addr_bound {
	struct sockaddr_storage ss;
	socklen_t len;
	int dual_stack; /* AF_INET6 socket that should also take IPv4 (a star host) */
};

/* Fuzzing and tests set this: names are then refused instead of looked up
 * (no DNS traffic from a fuzzer). */
extern int addr_numeric_only;

/* Resolve a spec into up to max socket addresses (names via getaddrinfo,
 * which may block: only at config load). Returns the count (>= 1) or a
 * negative value: -EINVAL (bad spec), -ENOENT (name does not resolve), with
 * *ret_why set (a static string, or gai_strerror()). */
int addr_resolve(const struct addr_spec *s, struct addr_bound *ret, int max, const char **ret_why);

/* A Unix socket address from a control socket path ("/abs/path", or
 * "@name" for the abstract namespace). Returns 0 with *ret and *ret_len
 * set, -ENAMETOOLONG, or -EINVAL (empty). */
int addr_unix(const char *path, struct sockaddr_un *ret, socklen_t *ret_len);

/* Format a sockaddr as "192.0.2.1:80", "[::1]:80", "unix:/p", "unix:@n" or
 * "unix:(unnamed)". Returns length or -ENOSPC. */
int addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* Hash of the client part of an address (IP without port; path for Unix),
 * for source-hash balancing. */
uint64_t addr_hash_source(const struct sockaddr *sa, socklen_t len);

#endif
