/*
 * A worker thread: one libuv loop and one libwebsockets context, which owns
 * every connection it adopted.  Other threads talk to it only through its
 * inbox (sockets to adopt, connections with output, stop requests), guarded
 * by its lock, and wake it with uv_async_send() when the inbox goes from
 * empty to non-empty, after releasing the lock.
 */
#ifndef SB_WORKER_H
#define SB_WORKER_H

#include "sb_netaddr.h"

#include <stdbool.h>

struct sb_server;
struct sb_worker;
struct sb_stats;

/* Creates worker index's loop and context.  main only, before any worker
 * runs.  NULL on failure, logged. */
struct sb_worker *sb_worker_new(struct sb_server *srv, int index);

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
 * context, then call sb_server_worker_drained().  Any thread. */
void sb_worker_drain(struct sb_worker *w);

/* Asks a drained w to end its thread, and joins it.  main only, once all
 * workers have drained. */
void sb_worker_stop(struct sb_worker *w);

/* Frees w (stopped, or never started).  main only. */
void sb_worker_free(struct sb_worker *w);

struct sb_stats *sb_worker_stats(struct sb_worker *w);

struct sb_rx;

/* The recv hook's callbacks (sb_recv_hook.h), on the socket's worker
 * thread: a protocol violation (closes the connection with 1002),
 * read-ahead waiting to be handed to lws (done in the check phase), and a
 * refused HTTP request (counted by reason, enum sb_req_reason). */
void sb_worker_guard_failed(struct sb_rx *rx);
void sb_worker_stashed(struct sb_rx *rx);
void sb_worker_http_refused(struct sb_rx *rx, int reason);

#endif
