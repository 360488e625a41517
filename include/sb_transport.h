/*
 * The libwebsockets transport of one worker: its context (and TLS), the
 * protocol callback that turns lws events into socket and session actions,
 * the writing of queued messages in batches, and the HTTP answers.
 *
 * Threads.  The worker's thread only, like everything of struct sb_tp.
 */
#ifndef SB_TRANSPORT_H
#define SB_TRANSPORT_H

#include "sb_sock.h"

struct ssl_ctx_st;

/*
 * Creates tp's lws context on tp->loop (a foreign loop) and finds its
 * vhost.  tls_client_ctx: with TLS, the empty client context lws is given
 * instead of making one per worker.  main only, one context after the
 * other (OpenSSL's initialization is not thread-safe).  0, or -1 with the
 * reason logged (tp->ctx is then NULL or dying).
 */
int sb_transport_create(struct sb_tp *tp, const char *name,
			struct ssl_ctx_st *tls_client_ctx);

/* Destroys tp's context, or goes on destroying it: with a foreign loop lws
 * finishes over several calls, as its handles close.  true once it is gone
 * (tp->ctx is then NULL). */
bool sb_transport_destroy(struct sb_tp *tp);

/* Writes what s has queued, now, outside any WRITEABLE callback (one send()
 * for a batch, and nothing to poll for when the socket takes it); or asks
 * for WRITEABLE when lws still holds bytes or a ping is due. */
void sb_transport_flush(struct sb_sock *s);

/* Asks for a ping to s at its next WRITEABLE. */
void sb_transport_ping(struct sb_sock *s);

#endif
