/*
 * Client addresses: IPv4 and IPv6 addresses as values, address ranges
 * (CIDR) for --trusted-proxy, and finding the client behind trusted proxies
 * from X-Forwarded-For and X-Real-IP.
 *
 * An IPv4 client of a dual-stack listener arrives as an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d); it is kept as the IPv4 address it is, so that
 * it prints, compares and counts as one.
 *
 * Pure functions of their arguments: any thread.
 */
#ifndef SB_NETADDR_H
#define SB_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest text an address prints as, with its NUL. */
#define SB_ADDR_STRLEN 46

struct sb_addr {
	uint8_t family;		/* AF_INET, AF_INET6, or 0: unknown */
	uint8_t bytes[16];	/* network order; 4 used for AF_INET */
};

struct sb_cidr {
	struct sb_addr net;	/* bits past the prefix are zero */
	uint8_t prefix;		/* 0..32 or 0..128 */
};

/* From what accept() or getpeername() gave.  An unknown family gives
 * family 0. */
void sb_addr_from_sockaddr(struct sb_addr *a, const struct sockaddr *sa,
			   socklen_t len);

/*
 * Parses one address as proxies write it in X-Forwarded-For and X-Real-IP:
 * "192.0.2.1", "2001:db8::1", "[2001:db8::1]", with optional spaces around
 * it and an optional port ("192.0.2.1:443", "[2001:db8::1]:443").  Returns
 * false for anything else (then *a is unchanged).
 */
bool sb_addr_parse(struct sb_addr *a, const char *s, size_t len);

/* Prints a ("192.0.2.1", "2001:db8::1", or "?" when unknown). */
void sb_addr_format(const struct sb_addr *a, char *buf, size_t len);

bool sb_addr_equal(const struct sb_addr *a, const struct sb_addr *b);

/* What --max-connections-per-ip counts a client as: its IPv4 address, or
 * the /64 network of its IPv6 address ("2001:db8:1:2::/64"), since one
 * IPv6 subscriber usually holds a whole /64. */
void sb_addr_limit_key(const struct sb_addr *a, char *buf, size_t len);

/* Parses "ADDR/PREFIX" or a single "ADDR" (the whole address).  Returns
 * false when s is not that, or when bits past the prefix are set
 * ("10.0.0.1/8" is refused: it is most likely a typing mistake). */
bool sb_cidr_parse(struct sb_cidr *c, const char *s);

bool sb_cidr_match(const struct sb_cidr *c, const struct sb_addr *a);

/*
 * The client's address.  When the TCP peer is in one of the trusted ranges,
 * X-Forwarded-For (xff, its values joined with commas; NULL or empty when
 * absent) is read from the right: each entry that is itself trusted is a
 * proxy and is skipped; the first that is not is the client.  If every
 * entry is trusted, the left-most is the client.  An entry that does not
 * parse ends the walk at the last good hop: nothing left of it can be
 * trusted.  Without X-Forwarded-For, a parseable X-Real-IP is the client.
 * A peer that is not trusted is the client, and its headers are ignored.
 */
void sb_client_addr(const struct sb_cidr *trusted, int ntrusted,
		    const struct sb_addr *peer, const char *xff,
		    const char *real_ip, struct sb_addr *client);

#endif
