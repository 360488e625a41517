/*
 * The process's recv(): libwebsockets reads every plain-TCP socket with
 * recv(), and the executable defines recv() itself so that those reads pass
 * through each socket's frame guard (sb_wsguard.h) first.  Sockets without
 * a guard attached read as usual.
 *
 * Read-ahead.  lws reads a WebSocket at most its rx buffer size per recv()
 * (1 KiB here, kept small because lws allocates it per connection), which
 * caps how many messages one read, and so one write, carries.  The hook
 * therefore reads up to SB_RX_READ_MAX bytes from the kernel, gives lws
 * what it asked for, and keeps the rest in the socket's stash (allocated
 * only while it holds bytes); lws gets the stash on its next recv() calls,
 * which the worker makes happen at once (lws_service_fd in its check
 * phase) instead of waiting for the socket to poll readable again.
 *
 * TLS.  lws reads a TLS connection with SSL_read(), which the executable
 * defines as well, so that the guard and the read-ahead work on the
 * plaintext in the same way (see recv_hook.c).
 *
 * Request heads.  Before the upgrade, each piece of a request head is
 * checked (sb_reqcheck.h) before lws is given it.  A refused request never
 * reaches lws: the hook writes the server's answer itself, without
 * blocking (what the socket does not take at once is dropped), discards
 * what the client sent that is already read, and tells lws the stream
 * ended, so that lws closes the connection.
 *
 * A table indexed by descriptor holds the guards.  A worker attaches a
 * guard before it adopts the socket and detaches it when lws destroys the
 * wsi.  The descriptor may already be reused by then: detaching clears the
 * slot only if it still holds the same guard.
 */
#ifndef SB_RECV_HOOK_H
#define SB_RECV_HOOK_H

#include "sb_reqcheck.h"
#include "sb_wsguard.h"

#include <stdint.h>

/* The most one read takes from the kernel. */
#define SB_RX_READ_MAX 65536

struct ssl_st;

/* One socket's view: its guard, its request checker, and what was read
 * but not yet given. */
struct sb_rx {
	struct sb_wsguard guard;	/* first */
	struct sb_reqcheck req;		/* before the upgrade */
	unsigned char *stash;		/* NULL when empty */
	uint32_t stash_off, stash_len;
	bool reached;			/* the hook has read this socket: lws
					 * reads through it (sb_sock_open
					 * refuses to go on otherwise) */
	bool rx_seen;			/* frames arrived since the owner last
					 * looked (any frame counts as life,
					 * those lws answers itself too) */
};

/* Sizes the table for descriptors below nfds and sets what is called (on
 * the reading thread, inside lws) when a guard finds a violation, when a
 * socket's stash goes from empty to holding bytes, and when a request is
 * refused (reason: enum sb_req_reason; the answer is written and lws is
 * about to close the connection).  main, before any worker starts.  0 or
 * -ENOMEM. */
int sb_recv_hook_init(int nfds, void (*on_fail)(struct sb_rx *rx),
		      void (*on_stash)(struct sb_rx *rx),
		      void (*on_refuse)(struct sb_rx *rx, int reason));

/* Any thread; fd's owner.  rx is initialized by attach. */
void sb_recv_hook_attach(int fd, struct sb_rx *rx);
void sb_recv_hook_detach(int fd, struct sb_rx *rx);

/* Bytes read and not yet given to lws: the stash, and with TLS (tls: the
 * socket's session, or NULL) what OpenSSL holds decrypted.  fd's owner. */
size_t sb_recv_hook_unread(struct sb_rx *rx, struct ssl_st *tls);

/* Frees what rx's stash holds.  fd's owner. */
void sb_recv_hook_release(struct sb_rx *rx);

#endif
