/*
 * Liveness: the heartbeat (docs/protocol.md, Limits) and the bound on how
 * long a client may take to finish a message it has begun.  Pure decisions
 * on times the worker passes in; the worker acts on them (a ping, a close).
 *
 * A connection is alive while frames arrive: after one interval of silence
 * it is pinged, after two it is dead.  Bytes that trickle into a message
 * count as frames arriving, so a client could keep a connection forever by
 * sending one byte of an unfinished frame now and then: a message begun
 * must also be complete within one interval (from the first tick that sees
 * it unfinished), or the connection is closed as too slow.
 *
 * One struct per connection, touched by its owning worker thread only.
 */
#ifndef SB_LIVENESS_H
#define SB_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

struct sb_liveness {
	uint64_t last_rx;		/* ms: the last frame from the client */
	uint64_t partial_since;		/* ms: a message has been unfinished
					 * since, while partial */
	uint32_t partial_mark;		/* messages finished by then */
	bool partial;			/* a message is unfinished (a flag of
					 * its own: 0 ms is a time like any) */
	bool ping_sent;			/* since last_rx */
};

enum sb_live {
	SB_LIVE_OK = 0,
	SB_LIVE_PING,			/* send a ping now */
	SB_LIVE_DEAD,			/* silent two intervals: drop it */
	SB_LIVE_SLOW,			/* a message unfinished for an interval */
};

void sb_liveness_init(struct sb_liveness *l, uint64_t now_ms);

/* A frame (or part of one) arrived. */
void sb_liveness_seen(struct sb_liveness *l, uint64_t now_ms);

/*
 * What to do at now_ms, with interval_ms the heartbeat (> 0).  unfinished:
 * the client is inside a frame or a fragmented message; finished: how many
 * messages it has completed so far (a counter that may wrap).
 */
enum sb_live sb_liveness_tick(struct sb_liveness *l, uint64_t now_ms,
			      uint64_t interval_ms, bool unfinished,
			      uint32_t finished);

#endif
