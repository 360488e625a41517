/*
 * Liveness: heartbeat and the time bound on a message begun (sb_liveness.h).
 */
#include "sb_liveness.h"

void sb_liveness_init(struct sb_liveness *l, uint64_t now_ms)
{
	l->last_rx = now_ms;
	l->partial_since = 0;
	l->partial_mark = 0;
	l->partial = false;
	l->ping_sent = false;
}

void sb_liveness_seen(struct sb_liveness *l, uint64_t now_ms)
{
	l->last_rx = now_ms;
	l->ping_sent = false;
}

enum sb_live sb_liveness_tick(struct sb_liveness *l, uint64_t now_ms,
			      uint64_t interval_ms, bool unfinished,
			      uint32_t finished)
{
	uint64_t idle = now_ms > l->last_rx ? now_ms - l->last_rx : 0;

	if (!unfinished) {
		l->partial = false;
	} else if (!l->partial || l->partial_mark != finished) {
		/* a message begun since the last look: its clock starts */
		l->partial = true;
		l->partial_since = now_ms;
		l->partial_mark = finished;
	} else if (now_ms > l->partial_since &&	/* not before it began */
		   now_ms - l->partial_since >= interval_ms) {
		return SB_LIVE_SLOW;
	}
	if (idle >= 2 * interval_ms)
		return SB_LIVE_DEAD;
	if (idle >= interval_ms && !l->ping_sent) {
		l->ping_sent = true;
		return SB_LIVE_PING;
	}
	return SB_LIVE_OK;
}
