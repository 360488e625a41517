/*
 * The server: the listening socket, the acceptor thread, the workers and
 * the registry they share.
 *
 * Threads.  main: parses options, starts everything, waits for SIGTERM or
 * SIGINT, then drains.  acceptor: owns the listening socket and hands each
 * accepted socket to the least-loaded worker.  worker-N: runs one libuv
 * loop and one libwebsockets context, and owns every socket it adopted.
 *
 * Lock order (never taken the other way round, never held while calling
 * into libwebsockets or logging):
 *   registry rwlock  ->  connection lock  ->  worker inbox lock
 * The server's own lock (drain bookkeeping) and the edge's lock (counts per
 * client address, src/edge.c) are leaves.
 */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include "sb_config.h"
#include "sb_bpstatus.h"
#include "sb_http.h"
#include "sb_registry.h"
#include "sb_token.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

struct sb_backplane;
struct sb_worker;
struct sb_edge;
struct sb_acceptor;
struct sb_backplane;
struct sb_stats;
struct ssl_ctx_st;
struct sb_webroot;

struct sb_server {
	struct sb_config cfg;		/* immutable after start */
	struct sb_registry *reg;
	struct sb_worker **workers;	/* immutable after start */
	int nworkers;
	struct sb_acceptor *acceptor;
	int listen_fd;
	char listen_name[INET6_ADDRSTRLEN + 16];	/* "[::]:8080" */
	char url[96];			/* "http://localhost:8080/" */
	char web_said[4300];		/* the web root, for the log */
	atomic_bool draining;		/* set once, by main, at shutdown */
	atomic_ulong accept_pauses;	/* the acceptor's, for /metrics */
	/* With TLS, lws would make a client TLS context per worker, loading
	 * the system's CA certificates into each (and 4.1 never frees it): it
	 * is given this empty one instead.  Immutable after start. */
	struct ssl_ctx_st *tls_client_ctx;
	struct sb_webroot *web;		/* --web-root; NULL: none.  Immutable */

	struct sb_edge *edge;		/* admission: any worker */
	struct sb_backplane *backplane;	/* --redis; NULL: a node on its own */
	struct sb_token_key *token_key;	/* room tokens; NULL: none.  Immutable,
					 * shared by the workers */
	struct sb_token_rules token_rules;	/* --auth-audience, --auth-issuer */
	struct sb_bp_status bp_status;	/* the backplane's, for HTTP */
	bool bp_status_made;
	struct sb_stats **stats;	/* each worker's, immutable after start */
	struct sb_http_src http;	/* immutable after start */

	pthread_mutex_t lock;		/* leaf */
	pthread_cond_t cond;		/* signalled when a worker drains */
	int drained;			/* {lock} workers done draining */
	bool lock_made, cond_made;
};

/*
 * The room-token key that cfg asks for (--auth-secret, --auth-secret-file
 * or --auth-public-key) into *key: NULL when tokens are not required.
 * Returns 0, or -1 with the reason in msg (a public key file that cannot be
 * used; never a secret).  Logs a warning when an HMAC secret is shorter
 * than SB_TOKEN_SECRET_MIN_GOOD bytes.  main only, before the server
 * starts.
 */
int sb_server_token_key(const struct sb_config *cfg, struct sb_token_key **key,
			char *msg, size_t msglen);

/* Binds, listens, creates the workers and the acceptor and starts them,
 * the workers checking room tokens with key (NULL: none), which srv owns
 * from now on, whatever happens.  Returns 0, or a negative errno with the
 * reason logged.  main only. */
int sb_server_start(struct sb_server *srv, const struct sb_config *cfg,
		    struct sb_token_key *key);

/* Stops accepting, drains every worker (docs/protocol.md, Guarantees) and stops
 * the threads.  main only, after sb_server_start() succeeded. */
void sb_server_drain(struct sb_server *srv);

/* Frees what start made.  main only, after drain (or a failed start). */
void sb_server_release(struct sb_server *srv);

static inline bool sb_server_draining(struct sb_server *srv)
{
	return atomic_load_explicit(&srv->draining, memory_order_relaxed);
}

#endif
