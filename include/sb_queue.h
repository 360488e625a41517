/*
 * A FIFO of message references with a byte count: the outbound queue of one
 * connection.  Not synchronized: its owner (struct sb_conn) guards it with
 * its lock.  Storage is a ring that grows by doubling and shrinks back when
 * it empties, so an idle connection holds no more than a few pointers.
 */
#ifndef SB_QUEUE_H
#define SB_QUEUE_H

#include "sb_msg.h"

#include <stdbool.h>
#include <stddef.h>

struct sb_queue {
	struct sb_msg **ring;
	size_t cap;	/* slots in ring, 0 or a power of two */
	size_t head;	/* index of the oldest message */
	size_t count;	/* messages queued */
	size_t bytes;	/* sum of their lengths */
};

void sb_queue_init(struct sb_queue *q);

/* Drops every reference it holds and frees its storage. */
void sb_queue_release(struct sb_queue *q);

/* Appends m, taking over the caller's reference.  -ENOMEM leaves the queue
 * and the reference unchanged (the caller still owns it). */
int sb_queue_push(struct sb_queue *q, struct sb_msg *m);

/* Removes the oldest message and hands its reference to the caller; NULL
 * when empty. */
struct sb_msg *sb_queue_pop(struct sb_queue *q);

/* Drops every queued message but keeps the queue usable. */
void sb_queue_clear(struct sb_queue *q);

static inline bool sb_queue_empty(const struct sb_queue *q)
{
	return q->count == 0;
}

#endif
