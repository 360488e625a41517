#include "sb_netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void set_v6(struct sb_addr *a, const uint8_t b[16])
{
	memset(a, 0, sizeof(*a));
	if (!memcmp(b, v4mapped, sizeof(v4mapped))) {
		a->family = AF_INET;
		memcpy(a->bytes, b + 12, 4);
	} else {
		a->family = AF_INET6;
		memcpy(a->bytes, b, 16);
	}
}

static void set_v4(struct sb_addr *a, const void *b)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	memcpy(a->bytes, b, 4);
}

void sb_addr_from_sockaddr(struct sb_addr *a, const struct sockaddr *sa,
			   socklen_t len)
{
	memset(a, 0, sizeof(*a));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		set_v6(a, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	else if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		set_v4(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* ":N" with 1 to 5 digits, to the end. */
static bool port_suffix(const char *s, size_t len)
{
	if (len < 2 || len > 6 || s[0] != ':')
		return false;
	for (size_t i = 1; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* inet_pton on s[0..len). */
static bool pton(struct sb_addr *a, int family, const char *s, size_t len)
{
	char text[64];
	uint8_t b[16];

	if (!len || len >= sizeof(text))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(family, text, b) != 1)
		return false;
	if (family == AF_INET6)
		set_v6(a, b);
	else
		set_v4(a, b);
	return true;
}

bool sb_addr_parse(struct sb_addr *a, const char *s, size_t len)
{
	const char *colon;
	size_t ncolons = 0;

	while (len && is_space(*s)) {
		s++;
		len--;
	}
	while (len && is_space(s[len - 1]))
		len--;
	if (!len)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		size_t inner;

		if (!close)
			return false;
		inner = (size_t)(close - s) - 1;
		if ((size_t)(close - s) + 1 < len &&
		    !port_suffix(close + 1, len - (size_t)(close - s) - 1))
			return false;
		return pton(a, AF_INET6, s + 1, inner);
	}
	for (size_t i = 0; i < len; i++)
		ncolons += s[i] == ':';
	if (ncolons == 0)
		return pton(a, AF_INET, s, len);
	if (ncolons == 1) {
		colon = memchr(s, ':', len);
		if (!port_suffix(colon, len - (size_t)(colon - s)))
			return false;
		return pton(a, AF_INET, s, (size_t)(colon - s));
	}
	return pton(a, AF_INET6, s, len);
}

void sb_addr_format(const struct sb_addr *a, char *buf, size_t len)
{
	if (!a->family || !inet_ntop(a->family, a->bytes, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

void sb_addr_limit_key(const struct sb_addr *a, char *buf, size_t len)
{
	struct sb_addr net = *a;
	size_t n;

	if (a->family != AF_INET6) {
		sb_addr_format(a, buf, len);
		return;
	}
	memset(net.bytes + 8, 0, 8);
	sb_addr_format(&net, buf, len);
	n = strlen(buf);
	snprintf(buf + n, len - n, "/64");
}

bool sb_addr_equal(const struct sb_addr *a, const struct sb_addr *b)
{
	return a->family == b->family &&
	       !memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16);
}

/* Whether the first prefix bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return (a[whole] & mask) == (b[whole] & mask);
	}
	return true;
}

bool sb_cidr_parse(struct sb_cidr *c, const char *s)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	struct sb_addr a;
	unsigned bits, prefix;

	/* a bare address only: no brackets, no port, no spaces (which
	 * sb_addr_parse would skip at either end) */
	if (!alen || is_space(s[0]) || is_space(s[alen - 1]) || s[0] == '[' ||
	    !sb_addr_parse(&a, s, alen) ||
	    (a.family == AF_INET && memchr(s, ':', alen)))
		return false;
	bits = a.family == AF_INET ? 32 : 128;
	prefix = bits;
	if (slash) {
		const char *p = slash + 1;
		char *end;
		unsigned long v;

		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return false;
		v = strtoul(p, &end, 10);
		if (*end || v > bits)
			return false;
		prefix = (unsigned)v;
	}
	/* the host bits must be zero */
	{
		uint8_t masked[16];

		memcpy(masked, a.bytes, 16);
		for (unsigned i = prefix; i < bits; i++)
			masked[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
		if (memcmp(masked, a.bytes, 16))
			return false;
	}
	c->net = a;
	c->prefix = (uint8_t)prefix;
	return true;
}

bool sb_cidr_match(const struct sb_cidr *c, const struct sb_addr *a)
{
	return a->family && a->family == c->net.family &&
	       prefix_equal(a->bytes, c->net.bytes, c->prefix);
}

static bool trusted_addr(const struct sb_cidr *trusted, int n,
			 const struct sb_addr *a)
{
	for (int i = 0; i < n; i++)
		if (sb_cidr_match(&trusted[i], a))
			return true;
	return false;
}

void sb_client_addr(const struct sb_cidr *trusted, int ntrusted,
		    const struct sb_addr *peer, const char *xff,
		    const char *real_ip, struct sb_addr *client)
{
	*client = *peer;
	if (!trusted_addr(trusted, ntrusted, peer))
		return;
	if (xff && *xff) {
		size_t end = strlen(xff);

		/* right to left: each hop is trusted to name the one before */
		for (;;) {
			size_t start = end;
			struct sb_addr hop;

			while (start && xff[start - 1] != ',')
				start--;
			if (!sb_addr_parse(&hop, xff + start, end - start))
				return;
			*client = hop;
			if (!trusted_addr(trusted, ntrusted, &hop) || !start)
				return;
			end = start - 1;
		}
	}
	if (real_ip && *real_ip) {
		struct sb_addr a;

		if (sb_addr_parse(&a, real_ip, strlen(real_ip)))
			*client = a;
	}
}
