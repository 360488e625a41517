/*
 * Sockets: one struct sb_sock per accepted socket a worker adopted into
 * libwebsockets, from adoption until lws destroys its wsi and no list of
 * the worker holds it any more; and struct sb_tp, the worker's transport
 * state that src/sock.c, src/readahead.c and src/transport.c share.
 *
 * A socket's life, in the way libuv closes handles (decide, list, finish):
 *
 *   ADOPTING --> HTTP --> OPEN --> CLOSING --> CLOSED --> GONE --> freed
 *      |          |        |          |  ^  (lws sent the close frame,
 *      |          |        |          v  |   or drops the connection)
 *      |          |        |        FLUSHING
 *      |          |        |   (the close frame waits behind bytes lws
 *      |          |        |    holds; WRITEABLE lists it again)
 *      +-> ORPHAN +--------+--> GONE (lws destroyed the wsi: WSI_DESTROY)
 *
 * sb_sock_close() decides (any time, inside an lws callback or not): the
 * session ends at once (its peers get "leave") and the socket goes on the
 * close list.  The check phase, where no lws callback runs, finishes it
 * (sb_sock_run_closes): lws_close_reason() and lws_set_timeout(KILL_SYNC),
 * which is the lws 4.1 way that sends the close frame (returning -1 from a
 * callback does not, in Debian's _DEBUG build: see docs/architecture.md).
 * After a protocol fault (1002, 1003, 1007, 1009, and 1008 for a message
 * left unfinished) the TCP connection ends at most SB_FAIL_LINGER_MS after
 * that, without waiting for the client's close frame (RFC 6455, "fail the
 * WebSocket connection").
 *
 * One free path: a socket is freed only by sb_sock_release(), when it is
 * GONE and held by neither the close list, the stash lists nor a running
 * stash service.
 *
 * Threads.  Everything here belongs to the worker's thread.
 */
#ifndef SB_SOCK_H
#define SB_SOCK_H

#include "sb_buf.h"
#include "sb_config.h"
#include "sb_edge.h"
#include "sb_liveness.h"
#include "sb_metrics.h"
#include "sb_recv_hook.h"
#include "sb_session.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lws;
struct lws_context;
struct lws_vhost;
struct sb_msg;
struct sb_http_src;

/* How long a failed connection's TCP connection outlives its close frame
 * (a bound of docs/protocol.md, never scaled); and how long a close frame
 * waits behind bytes the client does not read (scaled by sb_time_scale). */
#define SB_FAIL_LINGER_MS 1000
#define SB_CLOSE_FLUSH_MS 5000

/* Seconds past --handshake-timeout that lws's own timeouts, a backstop to
 * ours, run out (src/transport.c). */
#define SB_HANDSHAKE_BACKSTOP 2

enum sb_sock_state {
	SB_SOCK_ADOPTING = 0,	/* inside lws_adopt_*() */
	SB_SOCK_HTTP,		/* adopted: HTTP requests, no session */
	SB_SOCK_OPEN,		/* a WebSocket with its session */
	SB_SOCK_CLOSING,	/* close decided: on the close list */
	SB_SOCK_FLUSHING,	/* the close frame waits for lws's bytes */
	SB_SOCK_CLOSED,		/* lws is closing it */
	SB_SOCK_ORPHAN,		/* adoption failed; lws destroys it later */
	SB_SOCK_GONE,		/* lws destroyed the wsi */
};

struct sb_sock {
	struct sb_rx rx;		/* first: the recv hook's view */
	struct sb_session sess;		/* OPEN and after, until release */
	struct sb_tp *tp;
	struct lws *wsi;		/* NULL once GONE */
	int fd;
	uint8_t state;			/* enum sb_sock_state */
	uint8_t cause;			/* enum sb_cause, once closing */
	uint16_t close_code;		/* 0: drop without a close frame */
	/* what holds a GONE socket back from being freed */
	bool on_close_list, on_stash_list, servicing;
	uint8_t stash_retries;		/* turns of the loop lws did not read */
	bool ping_due;			/* WRITEABLE sends a ping first */
	bool drain_close;		/* close with 1001 once the queue is empty */
	bool request_seen;		/* a whole request head came: the
					 * handshake timer is stopped */
	struct sb_liveness live;
	struct sb_admission adm;	/* its place under the connection caps */
	struct sb_addr addr;		/* the TCP peer, from accept(); from the
					 * upgrade on, the client (behind a
					 * trusted proxy: from its headers) */
	uint64_t opened;		/* ms, loop time of the upgrade */
	struct sb_msg *http_body;	/* an HTTP answer waiting to be written */
	struct sb_sock *prev, *next;	/* the open list, or the orphan list */
	struct sb_sock *close_next, *stash_next;
};

/* A worker's transport: its lws context, its sockets, their lists. */
struct sb_tp {
	/* set by the worker before the loop runs */
	const struct sb_config *cfg;
	struct sb_edge *edge;
	const struct sb_http_src *http_src;
	uv_loop_t *loop;
	void (*kick)(void *owner);	/* run the check phase soon */
	void *owner;			/* the worker, kick's argument */
	struct sb_sched *sched;		/* the worker's (sb_conn.h) */
	struct sb_stats stats;		/* written by this thread only */
	struct sb_session_env env;
	atomic_uint load;		/* sockets given, not yet freed: any
					 * thread reads it */

	struct lws_context *ctx;	/* NULL once destroyed */
	struct lws_vhost *vh;
	bool ctx_dying;			/* lws began destroying it itself */

	struct sb_sock *open;		/* OPEN .. CLOSED */
	unsigned nopen;
	struct sb_sock *orphans;
	struct sb_sock *close_list;
	struct sb_sock *stash_list;	/* served in this check phase */
	struct sb_sock *stash_next_turn;	/* in the next one */

	unsigned char *scratch;		/* LWS_PRE + what one write carries */
	size_t scratch_cap;
	struct sb_buf body;		/* an HTTP answer being built */
};

/* The loop's time, in ms. */
uint64_t sb_tp_now(const struct sb_tp *tp);

/* Adopts fd (accepted from peer) into tp's context; on failure fd is
 * closed.  Counts in tp->load until the socket is freed. */
void sb_sock_adopt(struct sb_tp *tp, int fd, const struct sb_addr *peer);

/* The exit status when libwebsockets turns out not to read through the
 * frame guard (EX_SOFTWARE). */
#define SB_EXIT_NO_GUARD 70

/* The WebSocket upgrade of s finished: opens its session (when out of
 * memory, s closes with 1011 at once).  Ends the process (SB_EXIT_NO_GUARD)
 * if lws did not read the request through the frame guard. */
void sb_sock_open(struct sb_sock *s);

/* Decides to close s (OPEN only; otherwise nothing happens): its session
 * ends now, and the close frame with code (0: none) goes out in the check
 * phase.  Any time on the worker's thread. */
void sb_sock_close(struct sb_sock *s, uint16_t code, enum sb_cause cause);

/* WRITEABLE came for a FLUSHING socket: lws's bytes are out, so the close
 * frame can go now (or later, should lws still hold some). */
void sb_sock_flushed(struct sb_sock *s);

/* The client's close frame arrived (WS_PEER_INITIATED_CLOSE; code: its
 * payload, len bytes, which lws sends back).  When s's own close was
 * decided and not yet sent, the answer carries s's code instead and the
 * close is done: true. */
bool sb_sock_peer_closed(struct sb_sock *s, unsigned char *code, size_t len);

/* The check phase: finishes the closes decided since.  No lws callback may
 * be running. */
void sb_sock_run_closes(struct sb_tp *tp);

/* lws destroyed s's wsi (WSI_DESTROY).  s may be freed. */
void sb_sock_destroyed(struct sb_sock *s);

/* s's WebSocket connection ended (CLOSED callback): the access line, the
 * counters, and the session released. */
void sb_sock_ended(struct sb_sock *s);

/* The recv hook's callbacks (sb_recv_hook_init): a guard failed (the
 * connection closes with 1002); it refused an HTTP request and answered it
 * (counted by reason, enum sb_req_reason; lws closes the connection). */
void sb_sock_guard_failed(struct sb_rx *rx);
void sb_sock_http_refused(struct sb_rx *rx, int reason);

/* A whole request head arrived on s (an HTTP request or an upgrade): the
 * handshake timer set at adoption stops. */
void sb_sock_request_seen(struct sb_sock *s);

/* lws's timer for s went off (LWS_CALLBACK_TIMER): before any request,
 * that is --handshake-timeout (counted, logged); after a failure, the
 * linger.  Returns what the callback returns: -1 closes the connection. */
int sb_sock_timer(struct sb_sock *s);

/* Logs the refusal of a request from client (sb_log_refusal): status 0
 * when nothing was answered, reason an enum sb_req_reason, origin the
 * refused Origin or NULL.  Any thread. */
void sb_sock_log_refusal(const struct sb_addr *client, int status,
			 enum sb_req_reason reason, const char *origin);

/* Frees what the lists still hold at shutdown, after lws is gone. */
void sb_tp_lists_free(struct sb_tp *tp);

/* The read-ahead (src/readahead.c).  The recv hook's callback when it
 * stashed bytes for a socket, and the check phase's service of them. */
void sb_readahead_stashed(struct sb_rx *rx);
void sb_readahead_run(struct sb_tp *tp);
/* At the start of each check phase: what waited for this turn of the loop
 * joins the list sb_readahead_run serves. */
void sb_readahead_turn(struct sb_tp *tp);

/* How sessions close their socket (the session env's ops). */
extern const struct sb_session_ops sb_sock_session_ops;

/* Internal to the socket modules: frees s if nothing holds it. */
void sb_sock_release(struct sb_sock *s);

/* The heartbeat interval, the close flush window and the drain's margin
 * for close handshakes are multiplied by this: 1 unless the test suite
 * slows them down for a sanitizer build (SB_TEST_TIME_SCALE,
 * tests/README.md). */
extern double sb_time_scale;

/* For a test of the start-up check that the guard is reached: adopt
 * without attaching it (SB_TEST_SKIP_GUARD, tests/README.md). */
extern bool sb_test_skip_guard;

#endif
