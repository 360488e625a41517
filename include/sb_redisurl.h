/*
 * --redis URL: redis://[[user]:password@]host[:port][/db], parsed and
 * written back without its password.  Pure; no I/O, any thread.
 */
#ifndef SB_REDISURL_H
#define SB_REDISURL_H

#include <stdbool.h>
#include <stddef.h>

#define SB_REDIS_HOST_MAX 256		/* bytes of the host, with its NUL */
#define SB_REDIS_SECRET_MAX 256		/* user or password, decoded, NUL */

struct sb_redis_url {
	bool set;			/* --redis was given */
	char host[SB_REDIS_HOST_MAX];	/* a name, or an address (an IPv6 one
					 * without its brackets) */
	int port;			/* 6379 when not given */
	long db;			/* 0 when not given */
	char user[SB_REDIS_SECRET_MAX];	/* "" for none (AUTH password) */
	char password[SB_REDIS_SECRET_MAX];	/* "" for none (no AUTH) */
};

/*
 * Parses s into *u.  0, or -1 with a reason in msg that never quotes the
 * password (nor the URL, which holds it).  The user and password may use
 * %XX for the bytes the URL syntax reserves; "rediss://" is refused with
 * the reason (Debian 12's hiredis has no TLS).
 */
int sb_redis_url_parse(struct sb_redis_url *u, const char *s, char *msg,
		       size_t msglen);

/* Writes u as a URL with "***" for the password (and the user kept), for
 * logs: "redis://:***@10.0.0.5:6379/0". */
void sb_redis_url_safe(const struct sb_redis_url *u, char *out, size_t cap);

#endif
