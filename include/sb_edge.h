/*
 * The edge: whether a WebSocket upgrade is let in, and as which client.
 * The Origin allow-list (--allowed-origin), the drain, the connection caps
 * (--max-connections, --max-connections-per-ip, counted per client address
 * as sb_addr_limit_key() gives it) and the client behind trusted proxies
 * (--trusted-proxy, sb_netaddr.h).
 *
 * No libwebsockets here: the transport copies the request's headers into a
 * struct sb_upgrade and maps the verdict to an HTTP status.
 *
 * Threads.  Any worker thread may call every function.  The counts are an
 * atomic (all connections) and a map under the edge's own lock, a leaf:
 * nothing else is locked or called while it is held.
 */
#ifndef SB_EDGE_H
#define SB_EDGE_H

#include "sb_config.h"
#include "sb_netaddr.h"

#include <stdbool.h>

struct sb_edge;

/* What the edge reads of an upgrade request. */
struct sb_upgrade {
	struct sb_addr peer;		/* the TCP peer, from accept() */
	const char *origin;		/* NULL: absent (or too long to be one
					 * of ours) */
	const char *xff;		/* X-Forwarded-For, "" when absent */
	const char *real_ip;		/* X-Real-IP, "" when absent */
};

enum sb_edge_verdict {
	SB_EDGE_OK = 0,
	SB_EDGE_ORIGIN,			/* not an allowed Origin: 403 */
	SB_EDGE_DRAINING,		/* shutting down: 503 */
	SB_EDGE_FULL,			/* over --max-connections: 503 */
	SB_EDGE_FULL_ADDR,		/* over --max-connections-per-ip: 503 */
};

/* A connection's place under the caps, from admission to release. */
struct sb_admission {
	bool admitted;
	char *key;			/* the per-address count's, or NULL */
};

/* An edge for cfg (which must outlive it); NULL when out of memory. */
struct sb_edge *sb_edge_new(const struct sb_config *cfg);
void sb_edge_free(struct sb_edge *e);

/* Whether the transport should copy X-Forwarded-For and X-Real-IP: only
 * when some proxy is trusted. */
bool sb_edge_reads_forwarded(const struct sb_edge *e);

/*
 * Decides on an upgrade: Origin first (403), then the drain (503), then
 * the caps (503).  *client is set to the client the request comes from
 * (behind a trusted proxy, from its headers), whatever the verdict: the
 * address a refusal is logged with.  On SB_EDGE_OK the connection holds a
 * place in adm (to give back with sb_edge_release, once) unless it already
 * held one; otherwise adm is unchanged.
 */
enum sb_edge_verdict sb_edge_upgrade(struct sb_edge *e, const struct sb_upgrade *u,
				     bool draining, struct sb_addr *client,
				     struct sb_admission *adm);

/* Gives back adm's place, if it holds one. */
void sb_edge_release(struct sb_edge *e, struct sb_admission *adm);

/* Connections admitted now, for tests. */
unsigned sb_edge_admitted(struct sb_edge *e);

#endif
