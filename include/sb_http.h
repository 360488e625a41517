/*
 * The plain HTTP endpoints: /healthz, /metrics, and the web root's files.
 * Builds answers only; the transport writes them.  Any worker thread.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include "sb_buf.h"
#include "sb_msg.h"

#include <stdatomic.h>
#include <stdbool.h>

struct sb_registry;
struct sb_bp_status;
struct sb_stats;
struct sb_webroot;

/* Where the answers come from.  Filled once by the server before the
 * workers run; immutable after. */
struct sb_http_src {
	struct sb_registry *reg;
	const struct sb_webroot *web;	/* NULL: no static files */
	struct sb_stats *const *stats;	/* one per worker */
	int nstats;
	const atomic_bool *draining;	/* /healthz answers 503 once set */
	const atomic_ulong *accept_pauses;	/* the acceptor's */
	struct sb_bp_status *bp;	/* the backplane's; NULL without --redis */
};

/* Fills body and *content_type with the answer to a GET of path and
 * returns its HTTP status (200, 404 or 503: /healthz while draining, or
 * while a cluster node cannot reach its backplane, with the reason).  For a static file, *file is
 * set instead of body: a reference to its bytes, for the caller to drop. */
int sb_http_answer(const struct sb_http_src *src, const char *path,
		   struct sb_buf *body,
		   const char **content_type, struct sb_msg **file);

/* Whether path is one of the endpoints, /healthz and /metrics: plain HTTP
 * only, never a WebSocket. */
bool sb_http_is_endpoint(const char *path);

#endif
