/*
 * The outbound queue (sb_queue): FIFO order through growth and wrap-around,
 * the byte count, ownership of the references it holds, and giving memory
 * back when it empties.
 */
#include "check.h"

#include "sb_msg.h"
#include "sb_queue.h"


/* A message of len >= 4 bytes whose first four bytes hold tag. */
static struct sb_msg *tagged(uint32_t tag, size_t len)
{
	struct sb_msg *m;

	CHECK(len >= sizeof(tag));
	m = sb_msg_new(len);
	CHECK(m != NULL);
	memset(m->data, 'x', len);
	memcpy(m->data, &tag, sizeof(tag));
	return m;
}

static uint32_t tag_of(const struct sb_msg *m)
{
	uint32_t tag;

	memcpy(&tag, m->data, sizeof(tag));
	return tag;
}

static unsigned refs_of(struct sb_msg *m)
{
	return atomic_load(&m->refs);
}

static void test_empty(void)
{
	struct sb_queue q;

	sb_queue_init(&q);
	CHECK(sb_queue_empty(&q));
	CHECK(sb_queue_pop(&q) == NULL);
	CHECK(sb_queue_pop(&q) == NULL);
	CHECK_EQ_SIZE(q.count, 0);
	CHECK_EQ_SIZE(q.bytes, 0);
	sb_queue_clear(&q);
	CHECK(sb_queue_empty(&q));
	sb_queue_release(&q);
	sb_queue_release(&q);	/* twice: it is left initialized */
	CHECK(sb_queue_empty(&q));
}

/* Pushes 1000 messages of varying sizes (many doublings), then pops them. */
static void test_fifo_through_growth(void)
{
	enum { N = 1000 };
	struct sb_queue q;
	size_t bytes = 0;

	sb_queue_init(&q);
	for (uint32_t i = 0; i < N; i++) {
		size_t len = 4 + (i * 7) % 61;

		CHECK_EQ_INT(sb_queue_push(&q, tagged(i, len)), 0);
		bytes += len;
		CHECK_EQ_SIZE(q.count, i + 1);
		CHECK_EQ_SIZE(q.bytes, bytes);
		CHECK(!sb_queue_empty(&q));
	}
	for (uint32_t i = 0; i < N; i++) {
		struct sb_msg *m = sb_queue_pop(&q);

		CHECK(m != NULL);
		CHECK_EQ_INT(tag_of(m), i);
		CHECK_EQ_SIZE(m->len, 4 + (i * 7) % 61);
		CHECK_EQ_INT(refs_of(m), 1);	/* the queue handed its reference over */
		bytes -= m->len;
		CHECK_EQ_SIZE(q.bytes, bytes);
		CHECK_EQ_SIZE(q.count, N - 1 - i);
		sb_msg_unref(m);
	}
	CHECK(sb_queue_empty(&q));
	CHECK(sb_queue_pop(&q) == NULL);
	sb_queue_release(&q);
}

/*
 * Keeps the head moving around the ring so that growth happens while the
 * ring is wrapped: push two, pop one, over and over, then drain.
 */
static void test_growth_while_wrapped(void)
{
	struct sb_queue q;
	uint32_t next_in = 0, next_out = 0;

	sb_queue_init(&q);
	/* fill a small ring and move its head forward first */
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(sb_queue_push(&q, tagged(next_in++, 8)), 0);
	for (int i = 0; i < 2; i++) {
		struct sb_msg *m = sb_queue_pop(&q);

		CHECK_EQ_INT(tag_of(m), next_out++);
		sb_msg_unref(m);
	}
	for (int round = 0; round < 500; round++) {
		struct sb_msg *m;

		CHECK_EQ_INT(sb_queue_push(&q, tagged(next_in++, 8)), 0);
		CHECK_EQ_INT(sb_queue_push(&q, tagged(next_in++, 8)), 0);
		m = sb_queue_pop(&q);
		CHECK(m != NULL);
		CHECK_EQ_INT(tag_of(m), next_out++);
		sb_msg_unref(m);
		CHECK_EQ_SIZE(q.count, next_in - next_out);
		CHECK_EQ_SIZE(q.bytes, (size_t)(next_in - next_out) * 8);
	}
	while (next_out < next_in) {
		struct sb_msg *m = sb_queue_pop(&q);

		CHECK(m != NULL);
		CHECK_EQ_INT(tag_of(m), next_out++);
		sb_msg_unref(m);
	}
	CHECK(sb_queue_pop(&q) == NULL);
	sb_queue_release(&q);
}

/* Random pushes and pops against a plain array model of the FIFO. */
static void test_random_against_model(void)
{
	enum { OPS = 200000, MAXQ = 300 };
	static uint32_t model[OPS];
	size_t model_head = 0, model_tail = 0, model_bytes = 0;
	struct check_rng rng;
	struct sb_queue q;
	uint32_t tag = 0;

	check_rng_init(&rng, 12345);
	sb_queue_init(&q);
	for (int op = 0; op < OPS; op++) {
		size_t depth = model_tail - model_head;
		/* drift between filling up and draining, so the ring grows,
		 * wraps and shrinks many times */
		bool filling = (op / 5000) % 2 == 0;
		uint32_t push_odds = filling ? 70 : 30;

		if (depth < MAXQ && check_rng_below(&rng, 100) < push_odds) {
			size_t len = 4 + check_rng_below(&rng, 40);

			CHECK_EQ_INT(sb_queue_push(&q, tagged(tag, len)), 0);
			model[model_tail++] = tag++;
			model_bytes += len;
		} else {
			struct sb_msg *m = sb_queue_pop(&q);

			if (depth == 0) {
				CHECK(m == NULL);
			} else {
				CHECK(m != NULL);
				CHECK_EQ_INT(tag_of(m), model[model_head]);
				model_head++;
				model_bytes -= m->len;
				sb_msg_unref(m);
			}
		}
		CHECK_EQ_SIZE(q.count, model_tail - model_head);
		CHECK_EQ_SIZE(q.bytes, model_bytes);
		CHECK_EQ_INT(sb_queue_empty(&q), model_tail == model_head);
	}
	sb_queue_release(&q);
}

/* The queue holds exactly one reference per entry, and clear drops them. */
static void test_clear_drops_references(void)
{
	enum { N = 40 };
	struct sb_msg *mine[N];
	struct sb_queue q;

	sb_queue_init(&q);
	for (uint32_t i = 0; i < N; i++) {
		mine[i] = tagged(i, 16);
		/* the queue takes over one reference; keep one of our own */
		CHECK_EQ_INT(sb_queue_push(&q, sb_msg_ref(mine[i])), 0);
		CHECK_EQ_INT(refs_of(mine[i]), 2);
	}
	/* the same message may be queued twice: two references */
	CHECK_EQ_INT(sb_queue_push(&q, sb_msg_ref(mine[0])), 0);
	CHECK_EQ_INT(refs_of(mine[0]), 3);

	sb_queue_clear(&q);
	CHECK(sb_queue_empty(&q));
	CHECK_EQ_SIZE(q.bytes, 0);
	CHECK(sb_queue_pop(&q) == NULL);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(refs_of(mine[i]), 1);

	/* still usable after clear */
	CHECK_EQ_INT(sb_queue_push(&q, sb_msg_ref(mine[5])), 0);
	CHECK_EQ_INT(sb_queue_push(&q, sb_msg_ref(mine[6])), 0);
	CHECK_EQ_SIZE(q.bytes, 32);
	{
		struct sb_msg *m = sb_queue_pop(&q);

		CHECK(m == mine[5]);
		sb_msg_unref(m);
	}
	/* release drops what is left */
	sb_queue_release(&q);
	CHECK(sb_queue_empty(&q));
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(refs_of(mine[i]), 1);
		sb_msg_unref(mine[i]);
	}
}

/* A queue that empties gives its large ring back (the header promises an
 * idle queue holds no more than a few pointers), by pop and by clear. */
static void test_shrinks_when_empty(void)
{
	struct sb_queue q;
	size_t peak;

	sb_queue_init(&q);
	for (uint32_t i = 0; i < 1000; i++)
		CHECK_EQ_INT(sb_queue_push(&q, tagged(i, 4)), 0);
	peak = q.cap;
	CHECK(peak >= 1000);
	while (!sb_queue_empty(&q))
		sb_msg_unref(sb_queue_pop(&q));
	CHECK(q.cap < peak);
	CHECK(q.cap <= 16);

	for (uint32_t i = 0; i < 1000; i++)
		CHECK_EQ_INT(sb_queue_push(&q, tagged(i, 4)), 0);
	CHECK(q.cap >= 1000);
	sb_queue_clear(&q);
	CHECK(q.cap <= 16);

	/* and works normally afterwards */
	for (uint32_t i = 0; i < 100; i++)
		CHECK_EQ_INT(sb_queue_push(&q, tagged(i, 4)), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct sb_msg *m = sb_queue_pop(&q);

		CHECK_EQ_INT(tag_of(m), i);
		sb_msg_unref(m);
	}
	sb_queue_release(&q);
	CHECK_EQ_SIZE(q.cap, 0);
	CHECK(q.ring == NULL);
}

/* sb_msg itself: the bytes given are copied, the length kept, refs start
 * at one. */
static void test_msg_basics(void)
{
	static const char text[] = "{\"type\":\"pong\",\"payload\":{}}";
	char copy[sizeof(text)];
	struct sb_msg *m, *e;

	memcpy(copy, text, sizeof(text));
	m = sb_msg_from(copy, sizeof(text) - 1);
	CHECK(m != NULL);
	memset(copy, 0, sizeof(copy));
	CHECK_EQ_MEM(m->data, m->len, text, sizeof(text) - 1);
	CHECK_EQ_INT(refs_of(m), 1);
	CHECK(sb_msg_ref(m) == m);
	CHECK_EQ_INT(refs_of(m), 2);
	sb_msg_unref(m);
	CHECK_EQ_INT(refs_of(m), 1);
	sb_msg_unref(m);

	e = sb_msg_from(NULL, 0);
	CHECK(e != NULL);
	CHECK_EQ_SIZE(e->len, 0);
	sb_msg_unref(e);
	sb_msg_unref(NULL);
	CHECK(sb_msg_new((size_t)UINT32_MAX + 1) == NULL);
}

int main(void)
{
	RUN_TEST(test_empty);
	RUN_TEST(test_fifo_through_growth);
	RUN_TEST(test_growth_while_wrapped);
	RUN_TEST(test_random_against_model);
	RUN_TEST(test_clear_drops_references);
	RUN_TEST(test_shrinks_when_empty);
	RUN_TEST(test_msg_basics);
	return check_summary();
}
