/*
 * Liveness: the heartbeat's ping after one interval of silence and death
 * after two, at their exact boundaries; a frame resetting both; and the
 * bound on a message begun (SLOW once it has been unfinished for an
 * interval, its clock restarting when another message is begun and
 * stopping when none is unfinished).
 */
#include "check.h"

#include "sb_liveness.h"

enum { I = 100 };	/* the interval, ms */

/* A tick with nothing unfinished. */
static enum sb_live idle_tick(struct sb_liveness *l, uint64_t now)
{
	return sb_liveness_tick(l, now, I, false, 0);
}

static void test_ping_then_dead(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(idle_tick(&l, 1000), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1099), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1100), SB_LIVE_PING);
	/* one ping per silence */
	CHECK_EQ_INT(idle_tick(&l, 1100), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1150), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1199), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1200), SB_LIVE_DEAD);
	/* and dead it stays */
	CHECK_EQ_INT(idle_tick(&l, 1200), SB_LIVE_DEAD);
	CHECK_EQ_INT(idle_tick(&l, 5000), SB_LIVE_DEAD);
}

/* Ticks far apart: the first look after two intervals is death, with no
 * ping first; after one, a ping. */
static void test_sparse_ticks(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(idle_tick(&l, 1200), SB_LIVE_DEAD);

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(idle_tick(&l, 1199), SB_LIVE_PING);
	CHECK_EQ_INT(idle_tick(&l, 1200), SB_LIVE_DEAD);
}

static void test_seen_resets(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(idle_tick(&l, 1100), SB_LIVE_PING);
	/* the pong (any frame) just before death */
	sb_liveness_seen(&l, 1199);
	CHECK_EQ_INT(idle_tick(&l, 1200), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1298), SB_LIVE_OK);
	/* a new silence gets its own ping */
	CHECK_EQ_INT(idle_tick(&l, 1299), SB_LIVE_PING);
	CHECK_EQ_INT(idle_tick(&l, 1398), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1399), SB_LIVE_DEAD);

	/* frames before the ping keep it from being sent at all */
	sb_liveness_init(&l, 1000);
	for (uint64_t t = 1050; t < 2000; t += 50) {
		sb_liveness_seen(&l, t);
		CHECK_EQ_INT(idle_tick(&l, t + 99), SB_LIVE_OK);
	}
	CHECK_EQ_INT(idle_tick(&l, 1950 + 100), SB_LIVE_PING);

	/* a frame after the ping, then silence: ping, then dead, measured
	 * from that frame */
	sb_liveness_init(&l, 0);
	CHECK_EQ_INT(idle_tick(&l, 100), SB_LIVE_PING);
	sb_liveness_seen(&l, 150);
	CHECK_EQ_INT(idle_tick(&l, 200), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 250), SB_LIVE_PING);
	CHECK_EQ_INT(idle_tick(&l, 349), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 350), SB_LIVE_DEAD);
}

/* A clock that reads earlier than the last frame is no silence. */
static void test_clock_before_last_frame(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	sb_liveness_seen(&l, 1500);
	CHECK_EQ_INT(idle_tick(&l, 1400), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1599), SB_LIVE_OK);
	CHECK_EQ_INT(idle_tick(&l, 1600), SB_LIVE_PING);
}

/* A message begun must be finished within one interval of the first tick
 * that sees it unfinished, however the bytes trickle in. */
static void test_slow_message(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	sb_liveness_seen(&l, 1010);	/* the message begins */
	CHECK_EQ_INT(sb_liveness_tick(&l, 1020, I, true, 0), SB_LIVE_OK);
	for (uint64_t t = 1030; t < 1120; t += 10) {
		sb_liveness_seen(&l, t);	/* a byte now and then */
		CHECK_EQ_INT(sb_liveness_tick(&l, t, I, true, 0), SB_LIVE_OK);
	}
	sb_liveness_seen(&l, 1119);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1119, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1120, I, true, 0), SB_LIVE_SLOW);
}

/* SLOW is decided before the heartbeat: a client silent inside a message
 * is too slow, not pinged. */
static void test_slow_before_heartbeat(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1000, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1100, I, true, 0), SB_LIVE_SLOW);

	/* the clock started later than the silence: ping, then SLOW */
	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1050, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1100, I, true, 0), SB_LIVE_PING);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1149, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1150, I, true, 0), SB_LIVE_SLOW);
}

/* Each message finished restarts the clock for the next one begun: a
 * client that keeps finishing messages is never SLOW. */
static void test_finished_restarts(void)
{
	struct sb_liveness l;
	uint32_t done = 0;

	sb_liveness_init(&l, 1000);
	for (uint64_t t = 1000; t < 3000; t += 90) {
		sb_liveness_seen(&l, t);
		CHECK_EQ_INT(sb_liveness_tick(&l, t, I, true, done), SB_LIVE_OK);
		done++;
	}
	/* then one that is not finished */
	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1000, I, true, 7), SB_LIVE_OK);
	sb_liveness_seen(&l, 1090);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1090, I, true, 8), SB_LIVE_OK);
	sb_liveness_seen(&l, 1180);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1189, I, true, 8), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1190, I, true, 8), SB_LIVE_SLOW);

	/* the count may wrap */
	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1000, I, true, UINT32_MAX), SB_LIVE_OK);
	sb_liveness_seen(&l, 1090);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1090, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1189, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1190, I, true, 0), SB_LIVE_SLOW);
}

/* A tick that sees nothing unfinished stops the clock; the next message
 * begun starts it afresh, even with the same count. */
static void test_not_unfinished_resets(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1000, I, true, 3), SB_LIVE_OK);
	sb_liveness_seen(&l, 1050);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1050, I, false, 3), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1060, I, true, 3), SB_LIVE_OK);
	sb_liveness_seen(&l, 1150);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1159, I, true, 3), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1160, I, true, 3), SB_LIVE_SLOW);

	/* nothing unfinished, ever: never SLOW, only the heartbeat */
	sb_liveness_init(&l, 1000);
	for (uint64_t t = 1000; t < 5000; t += 10) {
		sb_liveness_seen(&l, t);
		CHECK_EQ_INT(idle_tick(&l, t), SB_LIVE_OK);
	}
}

/* The clock's values are the caller's: 0 is a time like any other, and
 * one that reads earlier than the message's start is not late. */
static void test_slow_at_time_zero(void)
{
	struct sb_liveness l;

	sb_liveness_init(&l, 0);
	CHECK_EQ_INT(sb_liveness_tick(&l, 0, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 0, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 99, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 100, I, true, 0), SB_LIVE_SLOW);

	sb_liveness_init(&l, 1000);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1000, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 999, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1099, I, true, 0), SB_LIVE_OK);
	CHECK_EQ_INT(sb_liveness_tick(&l, 1100, I, true, 0), SB_LIVE_SLOW);
}

int main(void)
{
	RUN_TEST(test_ping_then_dead);
	RUN_TEST(test_sparse_ticks);
	RUN_TEST(test_seen_resets);
	RUN_TEST(test_clock_before_last_frame);
	RUN_TEST(test_slow_message);
	RUN_TEST(test_slow_before_heartbeat);
	RUN_TEST(test_finished_restarts);
	RUN_TEST(test_not_unfinished_resets);
	RUN_TEST(test_slow_at_time_zero);
	return check_summary();
}
