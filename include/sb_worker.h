/*
 * A worker thread: one libuv loop and one libwebsockets context, which owns
 * every connection it adopted.  Other threads talk to it only through its
 * inbox (sockets to adopt, connections with output, stop requests), guarded
 * by its lock, and wake it with its doorbell (sb_bell.h) when the inbox goes from
 * empty to non-empty, after releasing the lock.
 */
#ifndef SB_WORKER_H
#define SB_WORKER_H

#include "sb_netaddr.h"

#include <stdbool.h>

struct sb_worker;
struct sb_stats;
struct sb_config;
struct sb_registry;
struct sb_edge;
struct sb_http_src;
struct ssl_ctx_st;

/* What a worker is given; every pointer outlives it. */
struct sb_cluster_ops;
struct sb_token_key;
struct sb_token_rules;

struct sb_worker_setup {
	const struct sb_config *cfg;
	struct sb_registry *reg;
	struct sb_edge *edge;
	const struct sb_http_src *http_src;
	struct ssl_ctx_st *tls_client_ctx;	/* with TLS (sb_transport.h) */
	const struct sb_cluster_ops *cluster;	/* --redis; NULL: on its own */
	const struct sb_token_key *token_key;	/* room tokens; NULL: none */
	const struct sb_token_rules *token_rules;	/* with token_key */
	/* called once the worker has drained (its context is gone), on the
	 * worker's thread */
	void (*drained)(void *arg);
	void *arg;
};

/* Creates worker index's loop and context.  main only, before any worker
 * runs, one after the other.  NULL on failure, logged. */
struct sb_worker *sb_worker_new(const struct sb_worker_setup *setup, int index);

/* Starts the thread.  0 or a negative errno.  main only. */
int sb_worker_start(struct sb_worker *w);

/* Hands an accepted, non-blocking socket to w, which adopts it; peer is its
 * remote address as accept() gave it.  Returns 0,
 * or a negative errno when w no longer takes sockets (the caller still owns
 * fd).  Any thread. */
int sb_worker_give(struct sb_worker *w, int fd, const struct sb_addr *peer);

/* Sockets given to w and not yet closed, for load balancing.  Any thread. */
unsigned sb_worker_load(struct sb_worker *w);

/* Asks w to drain: flush, close every WebSocket with 1001, destroy its
 * context, then call setup->drained.  Any thread. */
void sb_worker_drain(struct sb_worker *w);

/* Asks a drained w to end its thread, and joins it.  main only, once all
 * workers have drained. */
void sb_worker_stop(struct sb_worker *w);

/* Frees w (stopped, or never started).  main only. */
void sb_worker_free(struct sb_worker *w);

struct sb_stats *sb_worker_stats(struct sb_worker *w);

#endif
