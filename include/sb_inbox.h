/*
 * A worker's inbox and its connection scheduler: how other threads hand a
 * worker work, and how any thread tells a connection's owner that the
 * connection has output (struct sb_sched, sb_conn.h).
 *
 * One post() serves everything another thread sends: a socket to adopt, a
 * connection with output, drain, stop.  The owner is woken (wake, e.g.
 * a doorbell, sb_bell.h) only when the inbox goes from empty to non-empty, after
 * the lock is released; it takes the whole inbox at once.  A connection
 * scheduled by its owner's own thread skips the lock: it goes on the
 * owner's own list, and kick (e.g. starting an idle handle) makes the
 * owner look at it before it sleeps.
 *
 * Each connection is on at most one list at a time (conn->listed), though
 * schedule calls for it may overlap; sb_inbox_serve() clears the mark
 * before the owner looks at the connection, so a send after that look
 * lists it again.
 *
 * No libwebsockets or libuv here: the stress test (tests/unit/test_stress.c)
 * drives this scheduler with real threads.
 *
 * Threads.  post, schedule: any thread; the caller may hold the registry
 * lock and a connection lock (the inbox lock comes after both and is a
 * leaf).  bind, take, take_own, serve: the owner's thread.
 */
#ifndef SB_INBOX_H
#define SB_INBOX_H

#include "sb_conn.h"
#include "sb_netaddr.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* A socket the acceptor hands over, and who is at the other end. */
struct sb_handoff {
	int fd;
	struct sb_addr peer;
};

struct sb_inbox {
	struct sb_sched sched;		/* first; what connections call */
	void (*wake)(void *arg);	/* immutable: wakes the owner */
	void (*kick)(void *arg);	/* immutable: owner's own schedules */
	void *arg;

	pthread_mutex_t lock;		/* leaf */
	struct sb_handoff *fds;		/* {lock} sockets to adopt */
	size_t nfds, fds_cap;		/* {lock} */
	struct sb_conn *posted;		/* {lock} scheduled by other threads */
	bool closed;			/* {lock} takes no more sockets */
	bool drain_req, stop_req;	/* {lock} */

	struct sb_conn *own;		/* owner only: scheduled by itself */
};

/* What the owner takes from its inbox at once. */
struct sb_inbox_batch {
	struct sb_handoff *fds;		/* the caller frees it */
	size_t nfds;
	struct sb_conn *posted;		/* for sb_inbox_serve */
	bool drain, stop;
};

/* 0 or a negative errno (the mutex). */
int sb_inbox_init(struct sb_inbox *in, void (*wake)(void *arg),
		  void (*kick)(void *arg), void *arg);

/* Closes what the inbox still holds (sockets are closed, connections
 * unreferenced) and destroys the lock.  The owner, after its thread ended. */
void sb_inbox_release(struct sb_inbox *in);

/* Makes the calling thread in's owner (its schedules skip the lock). */
void sb_inbox_bind(struct sb_inbox *in);

/* A socket to adopt: 0, -ESHUTDOWN once drain or stop was posted (the
 * caller still owns fd), -ENOMEM. */
int sb_inbox_post_fd(struct sb_inbox *in, int fd, const struct sb_addr *peer);
void sb_inbox_post_drain(struct sb_inbox *in);
void sb_inbox_post_stop(struct sb_inbox *in);

/* Takes everything posted. */
void sb_inbox_take(struct sb_inbox *in, struct sb_inbox_batch *b);

/* Takes the owner's own list. */
struct sb_conn *sb_inbox_take_own(struct sb_inbox *in);

/* For each connection of list: clears its mark, calls serve (which may
 * send to it, schedule it again or close it), then drops the list's
 * reference. */
void sb_inbox_serve(struct sb_conn *list,
		    void (*serve)(void *arg, struct sb_conn *c), void *arg);

#endif
