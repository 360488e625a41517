/*
 * A connection's outbound side (sb_conn): reference counting of queued
 * messages, the backlog bound, death, and the schedule protocol (the owner
 * is told once per empty-to-non-empty transition, without locks held).
 */
#include "check.h"

#include "sb_conn.h"

#include <errno.h>
#include <pthread.h>

/* A scheduler that counts its calls and checks how it is called. */
struct counting_sched {
	struct sb_sched s;
	int calls;
	struct sb_conn *last;
};

static void count_schedule(struct sb_sched *s, struct sb_conn *c)
{
	struct counting_sched *cs = (struct counting_sched *)s;

	/* "with no lock of this module held": the conn's lock is free */
	CHECK_EQ_INT(pthread_mutex_trylock(&c->lock), 0);
	pthread_mutex_unlock(&c->lock);
	CHECK(c->sched == s);
	cs->calls++;
	cs->last = c;
}

static void sched_init(struct counting_sched *cs)
{
	memset(cs, 0, sizeof(*cs));
	cs->s.schedule = count_schedule;
}

static struct sb_msg *msg_of_len(size_t len, char fill)
{
	struct sb_msg *m = sb_msg_new(len);

	CHECK(m != NULL);
	memset(m->data, fill, len);
	return m;
}

static unsigned refs_of(struct sb_msg *m)
{
	return atomic_load(&m->refs);
}

static unsigned conn_refs(struct sb_conn *c)
{
	return atomic_load(&c->refs);
}

static void test_send_takes_its_own_reference(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m = msg_of_len(10, 'a'), *got;
	bool overflow = true, more = true;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 1000);
	CHECK(c != NULL);
	CHECK_EQ_INT(conn_refs(c), 1);
	CHECK(!sb_conn_is_dead(c));
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);

	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(refs_of(m), 2);	/* ours and the queue's */
	CHECK_EQ_SIZE(sb_conn_backlog(c), 10);

	got = sb_conn_next(c, &overflow, &more);
	CHECK(got == m);
	CHECK(!overflow);
	CHECK(!more);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	CHECK_EQ_INT(refs_of(m), 2);	/* the queue's reference is now ours */
	sb_msg_unref(got);
	CHECK_EQ_INT(refs_of(m), 1);

	/* the same message to the same conn twice: two references */
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(refs_of(m), 3);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 20);

	/* the last conn reference frees the queue and what it holds */
	sb_conn_unref(c);
	CHECK_EQ_INT(refs_of(m), 1);
	sb_msg_unref(m);
}

/* sb_conn_take: oldest first, bounded by count and by bytes, the first
 * always taken, and the flags as for sb_conn_next. */
static void test_take_batches(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m[5], *got[8];
	bool overflow = true, more = false;
	size_t n;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 100000);
	for (int i = 0; i < 5; i++) {
		m[i] = msg_of_len(100, (char)('a' + i));
		CHECK_EQ_INT(sb_conn_send(c, m[i]), 0);
	}
	/* a budget of 250 bytes holds two of them */
	n = sb_conn_take(c, got, 8, 250, &overflow, &more);
	CHECK_EQ_SIZE(n, 2);
	CHECK(got[0] == m[0] && got[1] == m[1]);
	CHECK(!overflow);
	CHECK(more);
	/* a count of one, even with room for more */
	n = sb_conn_take(c, got + 2, 1, 100000, &overflow, &more);
	CHECK_EQ_SIZE(n, 1);
	CHECK(got[2] == m[2]);
	CHECK(more);
	/* the first is taken even when it alone is over the budget */
	n = sb_conn_take(c, got + 3, 8, 10, &overflow, &more);
	CHECK_EQ_SIZE(n, 1);
	CHECK(got[3] == m[3]);
	CHECK(more);
	n = sb_conn_take(c, got + 4, 8, 100000, &overflow, &more);
	CHECK_EQ_SIZE(n, 1);
	CHECK(got[4] == m[4]);
	CHECK(!more);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	/* empty: nothing, and the next send schedules again */
	CHECK_EQ_SIZE(sb_conn_take(c, got, 8, 100000, &overflow, &more), 0);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(refs_of(m[i]), 2);
		sb_msg_unref(got[i]);
		CHECK_EQ_INT(refs_of(m[i]), 1);
	}
	{
		int calls = cs.calls;

		CHECK_EQ_INT(sb_conn_send(c, m[0]), 0);
		CHECK_EQ_INT(cs.calls, calls + 1);
	}
	sb_conn_unref(c);
	for (int i = 0; i < 5; i++)
		sb_msg_unref(m[i]);
}

static void test_next_order_and_flags(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m[3];
	bool overflow, more;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 1000);
	for (int i = 0; i < 3; i++) {
		m[i] = msg_of_len(5 + (size_t)i, (char)('a' + i));
		CHECK_EQ_INT(sb_conn_send(c, m[i]), 0);
	}
	CHECK_EQ_SIZE(sb_conn_backlog(c), 5 + 6 + 7);
	for (int i = 0; i < 3; i++) {
		struct sb_msg *got;

		overflow = more = true;
		got = sb_conn_next(c, &overflow, &more);
		CHECK(got == m[i]);
		CHECK(!overflow);
		CHECK_EQ_INT(more, i < 2);
		sb_msg_unref(got);
	}
	overflow = more = true;
	CHECK(sb_conn_next(c, &overflow, &more) == NULL);
	CHECK(!overflow);
	CHECK(!more);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(refs_of(m[i]), 1);
		sb_msg_unref(m[i]);
	}
	sb_conn_unref(c);
}

/* The owner is told once per empty-to-non-empty transition of the queue. */
static void test_schedule_once_per_transition(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m = msg_of_len(8, 'm'), *got;
	bool overflow, more;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 1 << 20);
	CHECK_EQ_INT(cs.calls, 0);	/* creating does not schedule */

	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 1);
	CHECK(cs.last == c);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 1);	/* already told */

	/* taking some but not all does not re-arm it */
	got = sb_conn_next(c, &overflow, &more);
	CHECK(got == m && more);
	sb_msg_unref(got);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 1);

	/* taking the last one does: the next send schedules again */
	do {
		got = sb_conn_next(c, &overflow, &more);
		CHECK(got == m);
		sb_msg_unref(got);
	} while (more);
	CHECK_EQ_INT(cs.calls, 1);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 2);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 2);

	for (int round = 0; round < 10; round++) {
		do {
			got = sb_conn_next(c, &overflow, &more);
			CHECK(got == m);
			sb_msg_unref(got);
		} while (more);
		CHECK_EQ_INT(sb_conn_send(c, m), 0);
		CHECK_EQ_INT(cs.calls, 3 + round);
	}
	sb_conn_unref(c);
	CHECK_EQ_INT(refs_of(m), 1);
	sb_msg_unref(m);
}

/* A message always fits an empty queue, however large. */
static void test_big_message_fits_empty_queue(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *big = msg_of_len(5000, 'B'), *got;
	bool overflow, more;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 100);
	CHECK_EQ_INT(sb_conn_send(c, big), 0);
	CHECK(!sb_conn_is_dead(c));
	CHECK_EQ_SIZE(sb_conn_backlog(c), 5000);
	got = sb_conn_next(c, &overflow, &more);
	CHECK(got == big);
	CHECK(!overflow && !more);
	sb_msg_unref(got);

	/* and again once the owner has emptied it */
	CHECK_EQ_INT(sb_conn_send(c, big), 0);
	CHECK(!sb_conn_is_dead(c));
	CHECK_EQ_INT(cs.calls, 2);
	sb_conn_unref(c);
	CHECK_EQ_INT(refs_of(big), 1);
	sb_msg_unref(big);
}

/* Filling the queue to exactly the bound is fine; one byte more kills. */
static void test_bound_is_inclusive(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *a = msg_of_len(60, 'a'), *b = msg_of_len(40, 'b');
	struct sb_msg *one = msg_of_len(1, '1');

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 100);
	CHECK_EQ_INT(sb_conn_send(c, a), 0);
	CHECK_EQ_INT(sb_conn_send(c, b), 0);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 100);
	CHECK(!sb_conn_is_dead(c));

	CHECK_EQ_INT(sb_conn_send(c, one), -ENOBUFS);
	CHECK(sb_conn_is_dead(c));
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	/* the queue was dropped and the refused message not taken */
	CHECK_EQ_INT(refs_of(a), 1);
	CHECK_EQ_INT(refs_of(b), 1);
	CHECK_EQ_INT(refs_of(one), 1);
	sb_conn_unref(c);
	sb_msg_unref(a);
	sb_msg_unref(b);
	sb_msg_unref(one);
}

/* Crossing the bound: -ENOBUFS, queue dropped, dead, owner told once,
 * sb_conn_next reports the overflow, later sends get -EPIPE. */
static void test_overflow_kills(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m = msg_of_len(30, 'm'), *got;
	bool overflow, more;
	int sent = 0, rc;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 100);
	while ((rc = sb_conn_send(c, m)) == 0)
		sent++;
	CHECK_EQ_INT(rc, -ENOBUFS);
	CHECK_EQ_INT(sent, 3);	/* 90 bytes fit, 120 do not */
	CHECK(sb_conn_is_dead(c));
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	CHECK_EQ_INT(refs_of(m), 1);
	/* told of the output, then told again of the kill although the queue
	 * was never taken empty: the owner may be waiting for a socket that
	 * will not drain, and must close it anyway */
	CHECK_EQ_INT(cs.calls, 2);

	CHECK_EQ_INT(sb_conn_send(c, m), -EPIPE);
	CHECK_EQ_INT(refs_of(m), 1);
	CHECK_EQ_INT(cs.calls, 2);
	sb_conn_evict(c);	/* already dead: no further call */
	CHECK_EQ_INT(cs.calls, 2);

	overflow = false;
	more = true;
	got = sb_conn_next(c, &overflow, &more);
	CHECK(got == NULL);
	CHECK(overflow);
	CHECK(!more);
	/* the owner has been told; nothing re-arms a dead conn */
	CHECK_EQ_INT(sb_conn_send(c, m), -EPIPE);
	CHECK_EQ_INT(cs.calls, 2);
	overflow = false;
	CHECK(sb_conn_next(c, &overflow, &more) == NULL);
	CHECK(overflow);
	CHECK_EQ_INT(conn_refs(c), 1);
	sb_conn_unref(c);
	CHECK_EQ_INT(refs_of(m), 1);
	sb_msg_unref(m);
}

/* Overflow after the owner had emptied the queue once: one call per
 * transition, and one more for the kill. */
static void test_overflow_after_drain(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m = msg_of_len(60, 'm'), *got;
	bool overflow, more;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 100);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	got = sb_conn_next(c, &overflow, &more);
	sb_msg_unref(got);
	CHECK_EQ_INT(cs.calls, 1);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(cs.calls, 2);
	CHECK_EQ_INT(sb_conn_send(c, m), -ENOBUFS);
	CHECK_EQ_INT(cs.calls, 3);
	CHECK(sb_conn_next(c, &overflow, &more) == NULL);
	CHECK(overflow);
	sb_conn_unref(c);
	CHECK_EQ_INT(refs_of(m), 1);
	sb_msg_unref(m);
}

static void test_doom(void)
{
	struct counting_sched cs;
	struct sb_conn *idle, *busy;
	struct sb_msg *m = msg_of_len(10, 'd');
	bool overflow, more;

	sched_init(&cs);
	/* an idle conn: doom tells the owner */
	idle = sb_conn_new(&cs.s, 1000);
	sb_conn_evict(idle);
	CHECK(sb_conn_is_dead(idle));
	CHECK_EQ_INT(cs.calls, 1);
	CHECK(cs.last == idle);
	sb_conn_evict(idle);
	CHECK_EQ_INT(cs.calls, 1);
	CHECK_EQ_INT(sb_conn_send(idle, m), -EPIPE);
	CHECK_EQ_INT(cs.calls, 1);
	overflow = false;
	CHECK(sb_conn_next(idle, &overflow, &more) == NULL);
	CHECK(overflow);
	CHECK(!more);
	sb_conn_unref(idle);

	/* a conn with output pending: the owner was told of the output, and
	 * is told again of the kill (it may be waiting on a full socket) */
	busy = sb_conn_new(&cs.s, 1000);
	CHECK_EQ_INT(sb_conn_send(busy, m), 0);
	CHECK_EQ_INT(sb_conn_send(busy, m), 0);
	CHECK_EQ_INT(cs.calls, 2);
	CHECK_EQ_INT(refs_of(m), 3);
	sb_conn_evict(busy);
	CHECK_EQ_INT(cs.calls, 3);
	CHECK_EQ_INT(refs_of(m), 1);
	CHECK_EQ_SIZE(sb_conn_backlog(busy), 0);
	overflow = false;
	CHECK(sb_conn_next(busy, &overflow, &more) == NULL);
	CHECK(overflow);
	sb_conn_unref(busy);
	sb_msg_unref(m);
}

/* The owner's own kill: dead, queue dropped, sends refused, nobody told. */
static void test_kill(void)
{
	struct counting_sched cs;
	struct sb_conn *c;
	struct sb_msg *m = msg_of_len(10, 'k');
	bool overflow, more;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 1000);
	CHECK_EQ_INT(sb_conn_send(c, m), 0);
	CHECK_EQ_INT(refs_of(m), 2);
	sb_conn_seal(c);
	CHECK(sb_conn_is_dead(c));
	CHECK_EQ_INT(refs_of(m), 1);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	CHECK_EQ_INT(sb_conn_send(c, m), -EPIPE);
	CHECK_EQ_INT(refs_of(m), 1);
	CHECK_EQ_INT(cs.calls, 1);
	overflow = true;
	CHECK(sb_conn_next(c, &overflow, &more) == NULL);
	CHECK(!overflow);	/* not killed by its bound */
	CHECK(!more);
	sb_conn_unref(c);
	sb_msg_unref(m);
}

static void test_conn_refcount(void)
{
	struct counting_sched cs;
	struct sb_conn *c;

	sched_init(&cs);
	c = sb_conn_new(&cs.s, 1000);
	CHECK(sb_conn_ref(c) == c);
	CHECK(sb_conn_ref(c) == c);
	CHECK_EQ_INT(conn_refs(c), 3);
	sb_conn_unref(c);
	sb_conn_unref(c);
	CHECK_EQ_INT(conn_refs(c), 1);
	sb_conn_unref(c);
	sb_conn_unref(NULL);
}

/*
 * Several threads send to one conn while its owner drains it.  The owner
 * sleeps until told; the scheduler checks that it is never told twice
 * without having emptied the queue in between, and every message arrives
 * once, in each sender's order.
 */
enum { SENDERS = 4, PER_SENDER = 20000 };

struct owner_sched {
	struct sb_sched s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pending;		/* {lock} told and not yet drained */
	int calls;		/* {lock} */
};

static void owner_schedule(struct sb_sched *s, struct sb_conn *c)
{
	struct owner_sched *os = (struct owner_sched *)s;

	(void)c;
	pthread_mutex_lock(&os->lock);
	CHECK(!os->pending);	/* told twice for one transition */
	os->pending = true;
	os->calls++;
	pthread_cond_signal(&os->cond);
	pthread_mutex_unlock(&os->lock);
}

struct sender_arg {
	struct sb_conn *c;
	uint32_t who;
};

static void *sender_main(void *p)
{
	struct sender_arg *a = p;

	for (uint32_t seq = 0; seq < PER_SENDER; seq++) {
		uint32_t body[2] = { a->who, seq };
		struct sb_msg *m = sb_msg_from(body, sizeof(body));

		CHECK(m != NULL);
		CHECK_EQ_INT(sb_conn_send(a->c, m), 0);
		sb_msg_unref(m);
		/* any thread may ask for the backlog: at least what it just
		 * queued, unless the owner took it already */
		if (seq % 64 == 0)
			CHECK(sb_conn_backlog(a->c) <= (size_t)SENDERS * PER_SENDER * sizeof(body));
	}
	return NULL;
}

static struct sb_qdepth concurrent_depth;

static void test_concurrent_senders(void)
{
	struct owner_sched os;
	struct sb_conn *c;
	pthread_t th[SENDERS];
	struct sender_arg args[SENDERS];
	uint32_t next[SENDERS] = { 0 };
	long received = 0, drains = 0;

	memset(&os, 0, sizeof(os));
	os.s.schedule = owner_schedule;
	pthread_mutex_init(&os.lock, NULL);
	pthread_cond_init(&os.cond, NULL);
	c = sb_conn_new(&os.s, (size_t)1 << 30);
	sb_conn_set_depth(c, &concurrent_depth);
	for (int i = 0; i < SENDERS; i++) {
		args[i].c = c;
		args[i].who = (uint32_t)i;
		CHECK_EQ_INT(pthread_create(&th[i], NULL, sender_main, &args[i]), 0);
	}
	while (received < (long)SENDERS * PER_SENDER) {
		struct sb_msg *m;
		bool overflow, more;

		pthread_mutex_lock(&os.lock);
		while (!os.pending)
			pthread_cond_wait(&os.cond, &os.lock);
		os.pending = false;
		pthread_mutex_unlock(&os.lock);
		drains++;
		do {
			uint32_t body[2];

			m = sb_conn_next(c, &overflow, &more);
			CHECK(!overflow);
			if (!m) {
				CHECK(!more);
				break;
			}
			CHECK_EQ_SIZE(m->len, sizeof(body));
			memcpy(body, m->data, sizeof(body));
			CHECK(body[0] < SENDERS);
			CHECK_EQ_INT(body[1], next[body[0]]);
			next[body[0]]++;
			received++;
			sb_msg_unref(m);
		} while (more);
	}
	for (int i = 0; i < SENDERS; i++)
		CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < SENDERS; i++)
		CHECK_EQ_INT(next[i], PER_SENDER);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
	CHECK_EQ_INT(atomic_load(&concurrent_depth.msgs), 0);
	CHECK_EQ_INT(atomic_load(&concurrent_depth.bytes), 0);
	pthread_mutex_lock(&os.lock);
	CHECK_EQ_INT(os.calls, drains);
	CHECK(!os.pending);
	pthread_mutex_unlock(&os.lock);
	sb_conn_unref(c);
	pthread_mutex_destroy(&os.lock);
	pthread_cond_destroy(&os.cond);
}

static void check_depth(struct sb_qdepth *d, long msgs, long bytes)
{
	CHECK_EQ_INT(atomic_load(&d->msgs), msgs);
	CHECK_EQ_INT(atomic_load(&d->bytes), bytes);
}

/* The depth gauges follow every way a queue grows and shrinks, and two
 * connections add up in one gauge. */
static void test_depth(void)
{
	struct counting_sched cs;
	struct sb_qdepth d = { 0 };
	struct sb_conn *a, *b;
	struct sb_msg *m10 = msg_of_len(10, 'a'), *m20 = msg_of_len(20, 'b');
	struct sb_msg *out[4];
	bool overflow, more;

	sched_init(&cs);
	a = sb_conn_new(&cs.s, 100);
	b = sb_conn_new(&cs.s, 100);
	sb_conn_set_depth(a, &d);
	sb_conn_set_depth(b, &d);
	CHECK_EQ_INT(sb_conn_send(a, m10), 0);
	CHECK_EQ_INT(sb_conn_send(a, m20), 0);
	CHECK_EQ_INT(sb_conn_send(b, m20), 0);
	check_depth(&d, 3, 50);
	CHECK_EQ_SIZE(sb_conn_take(a, out, 1, 1000, &overflow, &more), 1);
	sb_msg_unref(out[0]);
	check_depth(&d, 2, 40);
	/* an overflow drops the whole queue */
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(sb_conn_send(b, m20), 0);	/* 100: the bound */
	check_depth(&d, 6, 120);
	CHECK_EQ_INT(sb_conn_send(b, m20), -ENOBUFS);
	CHECK(sb_conn_is_dead(b));
	check_depth(&d, 1, 20);
	CHECK_EQ_INT(sb_conn_send(b, m10), -EPIPE);
	check_depth(&d, 1, 20);
	/* a kill drops it too; so does the last reference */
	sb_conn_seal(a);
	check_depth(&d, 0, 0);
	CHECK_EQ_INT(sb_conn_send(a, m10), -EPIPE);
	sb_conn_unref(a);
	sb_conn_unref(b);
	b = sb_conn_new(&cs.s, 100);
	sb_conn_set_depth(b, &d);
	CHECK_EQ_INT(sb_conn_send(b, m10), 0);
	check_depth(&d, 1, 10);
	sb_conn_unref(b);
	check_depth(&d, 0, 0);
	sb_msg_unref(m10);
	sb_msg_unref(m20);
}

int main(void)
{
	RUN_TEST(test_send_takes_its_own_reference);
	RUN_TEST(test_next_order_and_flags);
	RUN_TEST(test_take_batches);
	RUN_TEST(test_schedule_once_per_transition);
	RUN_TEST(test_big_message_fits_empty_queue);
	RUN_TEST(test_bound_is_inclusive);
	RUN_TEST(test_overflow_kills);
	RUN_TEST(test_overflow_after_drain);
	RUN_TEST(test_doom);
	RUN_TEST(test_kill);
	RUN_TEST(test_conn_refcount);
	RUN_TEST(test_concurrent_senders);
	RUN_TEST(test_depth);
	return check_summary();
}
