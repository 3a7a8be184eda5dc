/* acl: which clients may connect to a service: allow_from / deny_from
 * (CIDR lists, xinetd's only_from / no_access) for IP clients, and
 * allow_client_users / allow_client_groups (peer credentials) for clients
 * of Unix listeners.
 *
 * Everything here is a pure function: no allocation, no logging, no clock,
 * no name lookups (names were resolved when the configuration was loaded).
 * The caller owns every struct it passes in; nothing is kept.
 *
 * Address rules, in the order acl_check_addr() applies them:
 *   1. A client that is not an IP client (AF_UNIX, an unnamed socket, an
 *      address of length 0) is not subject to address rules: ACL_ALLOW.
 *      Unix clients are checked with acl_check_client() instead.
 *   2. Every entry of allow_from and deny_from that contains the client's
 *      address is a candidate; the most specific one (longest prefix)
 *      decides. On a tie between an allow and a deny entry of the same
 *      length, deny wins: ACL_DENIED.
 *   3. No entry contains the client: ACL_NOT_ALLOWED if allow_from is not
 *      empty (an allow list names the only clients welcome), else ACL_ALLOW
 *      (a deny list alone only keeps out what it names).
 * So "deny_from = 192.0.2.0/24" with "allow_from = 192.0.2.7" admits
 * 192.0.2.7 alone of that network, and "allow_from = 10.0.0.0/8" with
 * "deny_from = 10.1.0.0/16" admits 10/8 except 10.1/16.
 *
 * IPv4 and IPv6: an IPv4 client is the same client whether it reached an
 * AF_INET socket or a dual-stack AF_INET6 one (as ::ffff:a.b.c.d, "v4-mapped").
 * An IPv4 entry matches IPv4 clients (either way). An IPv6 entry matches IPv6
 * clients; it matches an IPv4 client only if the entry lies inside the
 * v4-mapped range ::ffff:0:0/96 (so "::ffff:192.0.2.0/120" is another way to
 * write 192.0.2.0/24, while "::/0" means every IPv6 client and no IPv4 one;
 * "everyone" is 0.0.0.0/0 and ::/0 together). For specificity an IPv4 prefix
 * /n counts as /(96 + n), its length in the v4-mapped form.
 */
#ifndef HANDOFF_ACL_H
#define HANDOFF_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

/* Longest text acl_cidr_format() writes, NUL included
 * ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128"). */
#define ACL_CIDR_TEXT_MAX 50

/* Parse one CIDR entry: "192.0.2.0/24", "192.0.2.7" (= /32), "2001:db8::/32",
 * "::1" (= /128), "0.0.0.0/0", "::/0". The prefix is decimal without sign
 * or leading zeros, 0..32 for IPv4 and 0..128 for IPv6; no bits may be set
 * in the address beyond the prefix (192.0.2.1/24 is refused: write
 * 192.0.2.0/24, or 192.0.2.1 for the one host). No brackets, no zone
 * (%eth0), no spaces, no names.
 * Returns 0 with *ret filled (family AF_INET: addr[0..3], the rest zero;
 * AF_INET6: addr[0..15]), or -EINVAL with *ret_why (if not NULL) a static
 * phrase fit to follow "allow_from: 'TEXT': ". *ret is untouched on error. */
int acl_cidr_parse(const char *text, struct cfg_cidr *ret, const char **ret_why);

/* Canonical text of an entry, always with its prefix ("192.0.2.7/32",
 * "2001:db8::/32"); acl_cidr_parse() reads it back to the same entry.
 * Returns the length, -ENOSPC if it does not fit in size (buf then holds
 * "" if size > 0), or -EINVAL for an entry acl_cidr_parse() could not
 * have produced. */
int acl_cidr_format(const struct cfg_cidr *c, char *buf, size_t size);

/* Does the entry contain the client address sa (len bytes)? False for
 * non-IP addresses, for a length too short for its family, and across
 * families as described above. */
bool acl_cidr_match(const struct cfg_cidr *c, const struct sockaddr *sa, socklen_t len);

enum acl_verdict {
	ACL_ALLOW = 0,       /* admitted */
	ACL_DENIED = 1,      /* a deny_from entry is the most specific match */
	ACL_NOT_ALLOWED = 2, /* allow_from is set and no entry matches */
};

/* Apply s->allow_from and s->deny_from to the client sa (len bytes, as
 * accept(2) or recvfrom(2) gave it) by the rules above. sa may be NULL
 * when len is 0. */
enum acl_verdict acl_check_addr(const struct cfg_service *s, const struct sockaddr *sa, socklen_t len);

/* A short phrase for logs: "allowed", "denied by deny_from",
 * "not in allow_from". */
const char *acl_verdict_name(enum acl_verdict v);

/* The allow_client_users / allow_client_groups rule for a client of a Unix
 * listener, given its peer credentials (SO_PEERCRED uid and gid, and its
 * supplementary groups if the caller has them, else groups NULL and
 * ngroups 0). True when s->has_client_allow is false (no rule); otherwise
 * true iff uid is in client_uids, or gid or one of groups is in
 * client_gids. There is deliberately no bypass for root: a service that
 * should take root's connections lists root (or a group of root's). */
bool acl_check_client(const struct cfg_service *s, uid_t uid, gid_t gid, const gid_t *groups, int ngroups);

#endif
