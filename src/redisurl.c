/*
 * --redis URL parsing (sb_redisurl.h): the grammar, the percent-decoding of
 * the secret parts, and the one way the URL is ever written out, without
 * its password.
 */
#include "sb_redisurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..n) with %XX escapes into out (cap bytes with the NUL).
 * false on a bad escape, a NUL byte, or no room. */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (!c || o + 1 >= cap)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

/* A host name as DNS has them: letters, digits, '-', '.', '_'. */
static bool name_syntax(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* Digits only, at most max. */
static bool number(const char *s, size_t n, long max, long *v)
{
	long x = 0;

	if (!n || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	if (x > max)
		return false;
	*v = x;
	return true;
}

#define FAIL(...)                                                             \
	do {                                                                  \
		snprintf(msg, msglen, "bad value for --redis: " __VA_ARGS__); \
		return -1;                                                    \
	} while (0)

int sb_redis_url_parse(struct sb_redis_url *u, const char *s, char *msg,
		       size_t msglen)
{
	static const char scheme[] = "redis://";
	const char *p, *at, *slash, *hend, *port = NULL;
	long v;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (!strncmp(s, "rediss://", 9))
		FAIL("rediss:// (TLS) is not supported: Debian 12's hiredis has "
		     "no TLS; reach Redis on loopback or a private network with "
		     "redis://");
	if (strncmp(s, scheme, sizeof(scheme) - 1))
		FAIL("it must start with redis:// "
		     "(redis://[:password@]host[:port][/db])");
	p = s + sizeof(scheme) - 1;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	/* the last '@' before the path ends the user information: a password
	 * may hold '@' only escaped, but be lenient with the host's side */
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));

		if (!colon)
			FAIL("the part before '@' must be :password or "
			     "user:password");
		if (!decode(p, (size_t)(colon - p), u->user, sizeof(u->user)) ||
		    !decode(colon + 1, (size_t)(at - colon - 1), u->password,
			    sizeof(u->password)))
			FAIL("the user or password is longer than %d bytes, holds "
			     "a NUL, or has a '%%' not followed by two hex digits",
			     SB_REDIS_SECRET_MAX - 1);
		if (!u->password[0])
			FAIL("the password after ':' is empty (leave out ':@' for "
			     "no password)");
		p = at + 1;
	}
	/* host, [IPv6] or a name, then :port */
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(slash - p));

		if (!close || close == p + 1)
			FAIL("an IPv6 address goes in brackets: redis://[::1]:6379");
		if ((size_t)(close - p - 1) >= sizeof(u->host))
			FAIL("the host is too long");
		memcpy(u->host, p + 1, (size_t)(close - p - 1));
		for (const char *q = u->host; *q; q++)
			if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
			      (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.'))
				FAIL("the address in brackets is not an IPv6 address");
		hend = close + 1;
		if (hend < slash && *hend != ':')
			FAIL("after the IPv6 address, only :port");
		if (hend < slash)
			port = hend + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(slash - p));

		hend = colon ? colon : slash;
		if (!name_syntax(p, (size_t)(hend - p)))
			FAIL("the host is missing or not a host name or address");
		if ((size_t)(hend - p) >= sizeof(u->host))
			FAIL("the host is too long");
		memcpy(u->host, p, (size_t)(hend - p));
		if (colon)
			port = colon + 1;
	}
	if (port) {
		if (!number(port, (size_t)(slash - port), 65535, &v) || v < 1)
			FAIL("the port must be a number from 1 to 65535");
		u->port = (int)v;
	}
	if (*slash == '/' && slash[1]) {
		if (!number(slash + 1, strlen(slash + 1), 1000000, &v))
			FAIL("the database after '/' must be a number (0 to 1000000), "
			     "with no query or fragment");
		u->db = v;
	}
	u->set = true;
	return 0;
}

void sb_redis_url_safe(const struct sb_redis_url *u, char *out, size_t cap)
{
	bool v6 = strchr(u->host, ':') != NULL;

	/* the user is not a secret; the password is never written */
	snprintf(out, cap, "redis://%s%s%s%s%s:%d/%ld", u->user,
		 u->password[0] ? ":***@" : "", v6 ? "[" : "", u->host,
		 v6 ? "]" : "", u->port, u->db);
}
