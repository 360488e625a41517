/*
 * The process's recv(): libwebsockets reads every plain-TCP socket with
 * recv(), and the executable defines recv() itself so that those reads pass
 * through each socket's frame guard (sb_wsguard.h) first.  Sockets without
 * a guard attached read as usual.
 *
 * A table indexed by descriptor holds the guards.  A worker attaches a
 * guard before it adopts the socket and detaches it when lws destroys the
 * wsi.  The descriptor may already be reused by then: detaching clears the
 * slot only if it still holds the same guard.
 */
#ifndef SB_RECV_HOOK_H
#define SB_RECV_HOOK_H

#include "sb_wsguard.h"

/* Sizes the table for descriptors below nfds and sets what is called (on
 * the reading thread, inside lws) when a guard finds a violation.  main,
 * before any worker starts.  0 or -ENOMEM. */
int sb_recv_hook_init(int nfds, void (*on_fail)(struct sb_wsguard *g));

/* Any thread; fd's owner. */
void sb_recv_hook_attach(int fd, struct sb_wsguard *g);
void sb_recv_hook_detach(int fd, struct sb_wsguard *g);

#endif
