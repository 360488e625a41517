/*
 * One client connection as the rest of the server sees it: its outbound
 * queue and its identity in the registry.  The transport (worker.c) owns the
 * socket; this struct is what other threads may reach.
 *
 * Reference counted: the owning worker holds one reference for as long as
 * the socket lives, the registry one while the connection is joined, and a
 * worker's scheduled list one while the connection is on it (sb_inbox.h).
 *
 * Thread rules.  sb_conn_send() may be called from any thread.  The
 * sb_conn_next() / sb_conn_seal() side is for the owning worker only.  The
 * registry fields are written by the owning worker while it holds the
 * registry's write lock, and read by others under its read lock.
 */
#ifndef SB_CONN_H
#define SB_CONN_H

#include "sb_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct sb_conn;
struct sb_join_answer;
struct sb_room;

/*
 * How a connection tells its owner that it has something to do (output to
 * write, or it must be closed).  Called once per empty-to-non-empty
 * transition of the queue, and once more when the connection is killed by
 * its bound (the owner may be waiting on a socket that will never drain), from the thread that queued, with no lock of
 * this module held.  Two calls for one connection may overlap (a sender can
 * be slow to call while the owner empties the queue and another sender
 * fills it again), so an implementation that lists connections must
 * tolerate that (see conn->listed).  It must take its own reference if it
 * keeps the connection.
 */
struct sb_sched {
	void (*schedule)(struct sb_sched *s, struct sb_conn *c);
};

/* Messages and bytes waiting in a set of queues (a worker's), for
 * /metrics.  Updated by whoever changes a queue, with relaxed atomics. */
struct sb_qdepth {
	atomic_long msgs, bytes;
};

struct sb_conn {
	atomic_uint refs;
	/* small fields first, where they fill what refs leaves of a word */
	bool scheduled;			/* {lock} the owner has been told */
	bool overflow;			/* {lock} killed by its backlog bound */
	bool displaced;			/* {lock} evicted because its id went
					 * to another (sb_conn_displace) */
	atomic_bool dead;		/* written under {lock}; drops new output */
	/* On one of the owner's ready lists.  Two sends can both see the
	 * queue go from empty to non-empty (the owner may empty it between
	 * them), so the owner's scheduler uses this to list c only once. */
	atomic_bool listed;
	struct sb_sched *sched;		/* immutable */
	size_t max_backlog;		/* immutable */
	struct sb_qdepth *depth;	/* immutable once published; or NULL */

	pthread_mutex_t lock;		/* guards q and the fields marked {lock} */
	struct sb_queue q;		/* {lock} */

	/* {registry lock}: written by the owner under the write lock */
	struct sb_room *room;		/* NULL while not joined */
	char *id;
	size_t id_len;
	char *nick;
	size_t nick_len;

	void *owner_data;		/* owner only: the transport's session */
	struct sb_join_answer *answer;	/* {lock} the backplane's, not yet
					 * taken by the owner (clusters) */
	struct sb_conn *ready_next;	/* whoever set listed, until taken off */
};

/* A connection with one reference, scheduled through sched; NULL when out
 * of memory.  Any thread. */
struct sb_conn *sb_conn_new(struct sb_sched *sched, size_t max_backlog);

/* Counts c's queue in depth from now on.  Before c is published. */
void sb_conn_set_depth(struct sb_conn *c, struct sb_qdepth *depth);

static inline struct sb_conn *sb_conn_ref(struct sb_conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

/* Drops one reference; the last frees the queue and the connection. */
void sb_conn_unref(struct sb_conn *c);

/*
 * Queues m to c, taking a reference of its own (the caller keeps its one).
 * Returns 0; -EPIPE when c is dead (nothing queued); -ENOBUFS when this
 * message would take c's queue over its bound, or memory ran out: c is then
 * killed (its queue dropped, the owner scheduled to close it with cause
 * "backlog").  A message always fits an empty queue, whatever its size, so
 * one large roster cannot kill a fresh connection.  Any thread; callers may
 * hold the registry lock.
 */
int sb_conn_send(struct sb_conn *c, struct sb_msg *m);

/* Evicts c from outside, as sb_conn_send() does when its bound is crossed:
 * its queue is dropped, later sends are refused, and its owner is
 * scheduled to close it (1008, cause "backlog").  Any thread.  Compare
 * sb_conn_seal(), the owner's own quiet version. */
void sb_conn_evict(struct sb_conn *c);

/*
 * Owner only: takes the oldest queued message (the caller owns the
 * reference) or NULL.  *overflow is set when c was killed by its bound;
 * *more tells whether messages remain after this one.  When none remain,
 * the next sb_conn_send() schedules the owner again; while some do, the
 * owner must keep calling.
 */
struct sb_msg *sb_conn_next(struct sb_conn *c, bool *overflow, bool *more);

/*
 * Owner only: takes up to max messages, oldest first, into out[] (the
 * caller owns the references), stopping before the one that would bring
 * their total length over budget; the first is always taken, whatever its
 * size.  Returns how many were taken; *overflow and *more as for
 * sb_conn_next().
 */
size_t sb_conn_take(struct sb_conn *c, struct sb_msg **out, size_t max,
		    size_t budget, bool *overflow, bool *more);

/* Owner only, when it closes c itself: marks c dead and drops its queue;
 * later sends are refused, and nobody is scheduled (the owner knows).
 * Compare sb_conn_evict(). */
void sb_conn_seal(struct sb_conn *c);

static inline bool sb_conn_is_dead(struct sb_conn *c)
{
	return atomic_load_explicit(&c->dead, memory_order_relaxed);
}

/* Evicts c as sb_conn_evict() does, because its place in the cluster was
 * given to another connection: its owner closes it with 1012 (join
 * again).  Any thread. */
void sb_conn_displace(struct sb_conn *c);

/* Owner only: whether c was evicted by sb_conn_displace(). */
bool sb_conn_displaced(struct sb_conn *c);

/* Puts the backplane's answer to c's join on c (taking it over; c frees
 * one that is never taken) and schedules the owner.  Any thread. */
void sb_conn_answer(struct sb_conn *c, struct sb_join_answer *a);

/* Owner only: takes the answer put on c, or NULL. */
struct sb_join_answer *sb_conn_take_answer(struct sb_conn *c);

/* Bytes queued now.  Any thread. */
size_t sb_conn_backlog(struct sb_conn *c);

#endif
