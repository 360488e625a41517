/*
 * Messages between cluster nodes (sb_bpmsg): each form written and read
 * back, fields holding any bytes (':' digits and NULs included), the body
 * of a relay kept byte for byte, and every malformed form refused: a
 * truncation at every byte, lengths too long or with leading zeros,
 * trailing bytes after an event, an unknown letter; a pack of relays
 * written and walked in order, and one that is not all fields refused.
 */
#include "check.h"

#include "sb_bpmsg.h"

#include <stdlib.h>

static struct sb_bpfield f(const char *s, size_t n)
{
	struct sb_bpfield x = { s, n };

	return x;
}

#define F(lit) f(lit, sizeof(lit) - 1)

static void check_field(struct sb_bpfield got, const char *want, size_t len)
{
	CHECK_EQ_SIZE(got.len, len);
	CHECK(!memcmp(got.p, want, len));
}

static void test_event_round_trip(void)
{
	struct sb_bpfield epoch = F("9f3c"), room = F("r:1\0x"), id = F("12:ab"),
			  sid = F("0123456789abcdef:7"), nick = F("");
	struct sb_buf b;
	struct sb_bpmsg m;

	sb_buf_init(&b, 1 << 20);
	sb_bpmsg_event(&b, SB_BPMSG_JOIN, 42, &epoch, &room, &id, &sid, &nick);
	CHECK(!sb_buf_failed(&b));
	CHECK_EQ_INT(sb_bpmsg_parse(&m, b.p, b.len), 0);
	CHECK_EQ_INT(m.kind, SB_BPMSG_JOIN);
	CHECK(m.seq == 42);
	check_field(m.epoch, "9f3c", 4);
	check_field(m.room, "r:1\0x", 5);
	check_field(m.id, "12:ab", 5);
	check_field(m.sid, "0123456789abcdef:7", 18);
	CHECK_EQ_SIZE(m.nick.len, 0);
	CHECK_EQ_SIZE(m.body.len, 0);

	/* as the scripts write it */
	CHECK_EQ_INT(sb_bpmsg_parse(&m, "L0 1:e1:r1:a3:n:12:bo", 21), 0);
	CHECK_EQ_INT(m.kind, SB_BPMSG_LEAVE);
	CHECK(m.seq == 0);
	check_field(m.nick, "bo", 2);
	sb_buf_release(&b);
}

static void test_relay_round_trip(void)
{
	static const char body[] = "{\"type\":\"message\",\"payload\":{\"a\":\"1:2\"}}";
	struct sb_buf b;
	struct sb_bpmsg m;

	sb_buf_init(&b, 1 << 20);
	sb_bpmsg_relay(&b, SB_BPMSG_TO, 1765000000123456, "room", 4, "bob", 3, body,
		       sizeof(body) - 1);
	CHECK_EQ_INT(sb_bpmsg_parse(&m, b.p, b.len), 0);
	CHECK_EQ_INT(m.kind, SB_BPMSG_TO);
	CHECK(m.sent_us == 1765000000123456);
	CHECK(!memcmp(b.p, "M1765000000123456 4:room3:bob{", 30));
	check_field(m.room, "room", 4);
	check_field(m.id, "bob", 3);
	check_field(m.body, body, sizeof(body) - 1);
	sb_buf_reset(&b);
	sb_bpmsg_relay(&b, SB_BPMSG_ALL, 0, "", 0, "alice", 5, "", 0);
	CHECK_EQ_INT(sb_bpmsg_parse(&m, b.p, b.len), 0);
	CHECK_EQ_INT(m.kind, SB_BPMSG_ALL);
	CHECK_EQ_SIZE(m.room.len, 0);
	check_field(m.id, "alice", 5);
	CHECK_EQ_SIZE(m.body.len, 0);
	sb_buf_release(&b);
}

static void test_pack(void)
{
	static const char *bodies[] = { "{\"a\":1}", "", "12:34" };
	struct sb_buf one, pack;
	struct sb_bpmsg m;
	struct sb_bpfield rest, r;
	size_t at = 0;

	sb_buf_init(&one, 1 << 20);
	sb_buf_init(&pack, 1 << 20);
	sb_buf_add(&pack, "P", 1);
	for (int i = 0; i < 3; i++) {
		sb_buf_reset(&one);
		sb_bpmsg_relay(&one, i == 1 ? SB_BPMSG_ALL : SB_BPMSG_TO,
			       (uint64_t)i, "room", 4, "bob", 3, bodies[i],
			       strlen(bodies[i]));
		sb_bpmsg_pack_add(&pack, one.p, one.len);
	}
	CHECK(!sb_buf_failed(&pack));
	CHECK_EQ_SIZE(pack.len, 64);
	CHECK(!memcmp(pack.p, "P21:M0 4:room3:bob{\"a\":1}14:B1 4:room3:bob19:M2 ", 46));
	CHECK_EQ_INT(sb_bpmsg_parse(&m, pack.p, pack.len), 0);
	CHECK_EQ_INT(m.kind, SB_BPMSG_PACK);
	rest = m.body;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(sb_bpmsg_next(&rest, &at, &r), 1);
		CHECK_EQ_INT(sb_bpmsg_parse(&m, r.p, r.len), 0);
		CHECK(m.sent_us == (uint64_t)i);
		CHECK_EQ_INT(m.kind, i == 1 ? SB_BPMSG_ALL : SB_BPMSG_TO);
		check_field(m.body, bodies[i], strlen(bodies[i]));
	}
	CHECK_EQ_INT(sb_bpmsg_next(&rest, &at, &r), 0);
	CHECK_EQ_INT(sb_bpmsg_next(&rest, &at, &r), 0);
	/* a pack that is not all fields, and a walk over one */
	for (size_t n = 2; n < pack.len; n++) {
		int rc = sb_bpmsg_parse(&m, pack.p, n);

		CHECK_EQ_INT(rc, n == 25 || n == 42 ? 0 : -1);	/* ends of relays */
	}
	rest = (struct sb_bpfield){ "3:abc9:x", 8 };
	at = 0;
	CHECK_EQ_INT(sb_bpmsg_next(&rest, &at, &r), 1);
	check_field(r, "abc", 3);
	CHECK_EQ_INT(sb_bpmsg_next(&rest, &at, &r), -1);
	sb_buf_release(&one);
	sb_buf_release(&pack);
}

static void refused(const char *s)
{
	struct sb_bpmsg m;

	if (sb_bpmsg_parse(&m, s, strlen(s)) != -1)
		fprintf(stderr, "accepted: %s\n", s);
	CHECK_EQ_INT(sb_bpmsg_parse(&m, s, strlen(s)), -1);
}

static void test_refused(void)
{
	static const char good[] = "J7 1:e1:r1:a3:n:12:bo";
	struct sb_bpmsg m;

	refused("");
	refused("X");
	refused("J");
	refused("J7");
	refused("J 1:e1:r1:a3:n:12:bo");		/* no number */
	refused("J07 1:e1:r1:a3:n:12:bo");		/* leading zero */
	refused("J-7 1:e1:r1:a3:n:12:bo");
	refused("J7 1:e1:r1:a3:n:12:box");		/* a byte after the nick */
	refused("J7 1:e1:r1:a3:n:13:bo");		/* longer than what is left */
	refused("J7 01:e1:r1:a3:n:12:bo");		/* a length with a leading zero */
	refused("J7 1e1:r1:a3:n:12:bo");		/* no ':' */
	refused("J9007199254740993 1:e1:r1:a3:n:12:bo");	/* past 2^53 */
	refused("J99999999999999999999999 1:e1:r1:a3:n:12:bo");
	refused("M");
	refused("M1:r");
	refused("M1 1:r");
	refused("M1 1:r9:a");
	refused("B1 4:ro");
	refused("M1:r2:ab{}");			/* no time */
	refused("M01 1:r2:ab{}");
	refused("M18014398509481985 1:r2:ab{}");	/* past 2^54 */
	refused("P");				/* no relay */
	refused("P3:ab");
	refused("P2:ab1");
	refused("P02:ab");
	refused("Pab");
	CHECK_EQ_INT(sb_bpmsg_parse(&m, "J9007199254740992 1:e1:r1:a3:n:12:bo", 36), 0);
	/* every proper prefix of an event is refused */
	for (size_t n = 0; n < sizeof(good) - 1; n++)
		CHECK_EQ_INT(sb_bpmsg_parse(&m, good, n), -1);
	CHECK_EQ_INT(sb_bpmsg_parse(&m, good, sizeof(good) - 1), 0);
	/* and of a relay, up to its body */
	for (size_t n = 0; n < 11; n++)
		CHECK_EQ_INT(sb_bpmsg_parse(&m, "M77 1:r2:ab{}", n), -1);
	CHECK_EQ_INT(sb_bpmsg_parse(&m, "M77 1:r2:ab", 11), 0);
	CHECK(m.sent_us == 77);
}

/* Random bytes: never a crash, and what is accepted has fields inside the
 * input. */
static void test_random(void)
{
	struct check_rng rng;
	unsigned char buf[64];
	static const char alphabet[] = "JLMBP0123456789: \0x";

	check_rng_init(&rng, check_seed(7));
	for (int round = 0; round < 200000; round++) {
		size_t n = check_rng_below(&rng, sizeof(buf));
		struct sb_bpmsg m;

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)alphabet[check_rng_below(&rng, sizeof(alphabet) - 1)];
		if (sb_bpmsg_parse(&m, buf, n) == 0) {
			const struct sb_bpfield *fs[] = { &m.epoch, &m.room, &m.id, &m.sid,
							  &m.nick, &m.body };

			for (size_t k = 0; k < sizeof(fs) / sizeof(fs[0]); k++)
				if (fs[k]->len)
					CHECK((const unsigned char *)fs[k]->p >= buf &&
					      (const unsigned char *)fs[k]->p + fs[k]->len <= buf + n);
		}
	}
}

int main(void)
{
	RUN_TEST(test_event_round_trip);
	RUN_TEST(test_relay_round_trip);
	RUN_TEST(test_pack);
	RUN_TEST(test_refused);
	RUN_TEST(test_random);
	return check_summary();
}
