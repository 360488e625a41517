/*
 * A doorbell for a libuv loop: any thread rings, the loop's thread
 * answers: a worker's inbox and the backplane's queue wake their loops
 * with one.
 *
 * Why not uv_async_t: its sender takes two steps around the write that
 * wakes the loop, and the loop's side spins (then yields the CPU) while a
 * sender is between them.  On a core that both threads share, the write
 * lets the woken thread preempt the sender, which then cannot finish
 * until the spinning thread gives up the core: three switches for one
 * ring.  A ring here is one write to an eventfd; nothing waits.
 *
 * Rings coalesce: the callback runs at least once after a ring, maybe
 * once for several.  Callers ring on their queue's empty-to-non-empty
 * transition, after unlocking, and take the whole queue when called.
 *
 * Threads: ring from any thread while the bell is open; init, close and
 * the callback on the loop's thread; release after the loop has ended
 * (the eventfd lives until then, so that a late ring never writes to a
 * descriptor number used again).
 */
#ifndef SB_BELL_H
#define SB_BELL_H

#include <uv.h>

struct sb_bell {
	uv_poll_t poll;			/* poll.data is the caller's */
	int fd;				/* the eventfd; -1 before init */
	void (*cb)(struct sb_bell *b);
};

/* 0, or a libuv error (negative errno): then nothing is left to close
 * but what the loop's next run finishes closing. */
int sb_bell_init(uv_loop_t *loop, struct sb_bell *b, void (*cb)(struct sb_bell *b));

/* Any thread. */
void sb_bell_ring(struct sb_bell *b);

/* The poll handle, for uv_close() with the loop's other handles. */
static inline uv_handle_t *sb_bell_handle(struct sb_bell *b)
{
	return (uv_handle_t *)&b->poll;
}

/* Closes the eventfd; after the loop has ended.  Idempotent. */
void sb_bell_release(struct sb_bell *b);

#endif
