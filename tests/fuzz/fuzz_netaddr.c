/*
 * Fuzz target: client addresses (src/netaddr.c), as they come from
 * X-Forwarded-For, X-Real-IP and --trusted-proxy.
 *
 * The whole input goes to sb_addr_parse and, up to its first NUL, to
 * sb_cidr_parse; what parses must print and parse back to the same value
 * (also with a port and spaces around it, as proxies write it), and a range
 * must contain its own network.  Then the input is read as lines: the
 * peer's address, X-Forwarded-For, X-Real-IP, then one trusted range per
 * line; sb_client_addr's choice is compared with the walk its header
 * describes, written here on its own.
 */
#include "fuzz.h"

#include "sb_netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#define MAX_TRUSTED 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_addr(const struct sb_addr *a, const struct sb_addr *b)
{
	return sb_addr_equal(a, b) && !memcmp(a->bytes, b->bytes, 16);
}

/* a prints as text that parses back to a, plain and as proxies write it. */
static void round_trip(const struct sb_addr *a)
{
	char text[SB_ADDR_STRLEN], dressed[SB_ADDR_STRLEN + 16], key[80];
	struct sb_addr b;

	SB_FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6,
		      "family %d", a->family);
	if (a->family == AF_INET)
		for (int i = 4; i < 16; i++)
			SB_FUZZ_CHECK(!a->bytes[i], "IPv4 with bytes past 4");
	sb_addr_format(a, text, sizeof(text));
	memset(&b, 0xa5, sizeof(b));
	SB_FUZZ_CHECK(sb_addr_parse(&b, text, strlen(text)) && same_addr(a, &b),
		      "\"%s\" does not parse back", text);
	snprintf(dressed, sizeof(dressed),
		 a->family == AF_INET ? " %s:443\t" : "\t[%s]:8443 ", text);
	memset(&b, 0x5a, sizeof(b));
	SB_FUZZ_CHECK(sb_addr_parse(&b, dressed, strlen(dressed)) &&
		      same_addr(a, &b), "\"%s\" does not parse back", dressed);
	sb_addr_limit_key(a, key, sizeof(key));
	if (a->family == AF_INET)
		SB_FUZZ_CHECK(!strcmp(key, text), "limit key %s of %s", key, text);
	else
		SB_FUZZ_CHECK(strlen(key) > 3 && !strcmp(key + strlen(key) - 3, "/64"),
			      "limit key %s of %s", key, text);
}

static void check_cidr(const char *s)
{
	struct sb_cidr c, c2;
	char text[SB_ADDR_STRLEN + 8];
	unsigned bits;
	size_t n;

	if (!sb_cidr_parse(&c, s))
		return;
	/* the option's value is the range and nothing else */
	SB_FUZZ_CHECK(!strpbrk(s, " \t"), "\"%s\" taken with spaces", s);
	bits = c.net.family == AF_INET ? 32 : 128;
	SB_FUZZ_CHECK(c.prefix <= bits, "prefix %u of %u bits", c.prefix, bits);
	for (unsigned i = c.prefix; i < bits; i++)
		SB_FUZZ_CHECK(!(c.net.bytes[i / 8] & (0x80 >> (i % 8))),
			      "\"%s\": host bit %u set", s, i);
	round_trip(&c.net);
	SB_FUZZ_CHECK(sb_cidr_match(&c, &c.net), "\"%s\" misses its network", s);
	sb_addr_format(&c.net, text, sizeof(text));
	n = strlen(text);
	snprintf(text + n, sizeof(text) - n, "/%u", c.prefix);
	SB_FUZZ_CHECK(sb_cidr_parse(&c2, text) && c2.prefix == c.prefix &&
		      same_addr(&c.net, &c2.net), "\"%s\" (from \"%s\") does not "
		      "parse back", text, s);
	/* the last address of the range is in it; one bit past is not */
	if (c.prefix > 0) {
		struct sb_addr out = c.net;
		unsigned i = c.prefix - 1;

		out.bytes[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		SB_FUZZ_CHECK(!sb_cidr_match(&c, &out), "\"%s\" holds a neighbour", s);
	}
	if (c.prefix < bits) {
		struct sb_addr last = c.net;

		for (unsigned i = c.prefix; i < bits; i++)
			last.bytes[i / 8] |= (uint8_t)(0x80 >> (i % 8));
		SB_FUZZ_CHECK(sb_cidr_match(&c, &last), "\"%s\" misses its last", s);
	}
}

static bool in_any(const struct sb_cidr *t, int n, const struct sb_addr *a)
{
	for (int i = 0; i < n; i++)
		if (sb_cidr_match(&t[i], a))
			return true;
	return false;
}

/* sb_client_addr as its header tells it. */
static void expected_client(const struct sb_cidr *t, int nt,
			    const struct sb_addr *peer, const char *xff,
			    const char *real_ip, struct sb_addr *client)
{
	size_t end;

	*client = *peer;
	if (!in_any(t, nt, peer))
		return;
	if (*xff) {
		end = strlen(xff);
		for (;;) {
			const char *comma = NULL;
			struct sb_addr hop;

			for (size_t i = 0; i < end; i++)
				if (xff[i] == ',')
					comma = xff + i;
			{
				const char *start = comma ? comma + 1 : xff;

				if (!sb_addr_parse(&hop, start, (size_t)(xff + end - start)))
					return;		/* the last good hop */
			}
			*client = hop;
			if (!in_any(t, nt, &hop) || !comma)
				return;
			end = (size_t)(comma - xff);
		}
	}
	if (*real_ip) {
		struct sb_addr a;

		if (sb_addr_parse(&a, real_ip, strlen(real_ip)))
			*client = a;
	}
}

/* The next line of text (its '\n' replaced by NUL), or "" at the end. */
static char *next_line(char **p)
{
	char *line = *p, *nl;

	if (!*line)
		return line;
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = line + strlen(line);
	}
	return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sb_cidr trusted[MAX_TRUSTED];
	struct sb_addr a, peer, got, want;
	char *text, *p, *peer_s, *xff, *real_ip;
	int nt = 0;

	memset(&a, 0, sizeof(a));
	if (sb_addr_parse(&a, (const char *)data, size))
		round_trip(&a);

	/* as a sockaddr: 16 bytes are an IPv6 peer, 4 an IPv4 one */
	if (size >= 16) {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(sin6.sin6_addr.s6_addr, data, 16);
		sb_addr_from_sockaddr(&a, (struct sockaddr *)&sin6, sizeof(sin6));
		round_trip(&a);
	} else if (size >= 4) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, data, 4);
		sb_addr_from_sockaddr(&a, (struct sockaddr *)&sin, sizeof(sin));
		round_trip(&a);
	}

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_cidr(text);

	p = text;
	peer_s = next_line(&p);
	xff = next_line(&p);
	real_ip = next_line(&p);
	while (*p && nt < MAX_TRUSTED) {
		char *line = next_line(&p);

		if (sb_cidr_parse(&trusted[nt], line)) {
			check_cidr(line);
			nt++;
		}
	}
	memset(&peer, 0, sizeof(peer));
	if (!sb_addr_parse(&peer, peer_s, strlen(peer_s)))
		memset(&peer, 0, sizeof(peer));	/* unknown family */
	sb_client_addr(trusted, nt, &peer, xff, real_ip, &got);
	expected_client(trusted, nt, &peer, xff, real_ip, &want);
	SB_FUZZ_CHECK(same_addr(&got, &want), "client differs from the walk");
	/* absent and empty headers are the same thing */
	sb_client_addr(trusted, nt, &peer, *xff ? xff : NULL,
		       *real_ip ? real_ip : NULL, &got);
	SB_FUZZ_CHECK(same_addr(&got, &want), "NULL and \"\" differ");
	free(text);
	return 0;
}
