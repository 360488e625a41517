/*
 * Incremental UTF-8 validation (sb_utf8): every valid form, split at every
 * byte boundary across feeds; overlong forms, surrogates, code points past
 * U+10FFFF, stray and missing continuation bytes; and text that ends in the
 * middle of a character.
 */
#include "check.h"

#include "sb_utf8.h"

struct sample {
	const char *b;
	size_t len;
};

#define S(lit) { lit, sizeof(lit) - 1 }

/* One character of each length, and the edges of each range. */
static const struct sample valid_chars[] = {
	S("\x00"), S("A"), S("\x7f"),				/* 1 byte */
	S("\xc2\x80"), S("\xc3\xa9"), S("\xdf\xbf"),		/* 2 bytes */
	S("\xe0\xa0\x80"), S("\xe2\x82\xac"), S("\xed\x9f\xbf"),	/* 3 bytes */
	S("\xee\x80\x80"), S("\xef\xbf\xbd"), S("\xef\xbf\xbf"),
	S("\xf0\x90\x80\x80"), S("\xf0\x9f\x98\x80"),		/* 4 bytes */
	S("\xf3\xbf\xbf\xbf"), S("\xf4\x8f\xbf\xbf"),
};

static const struct sample invalid[] = {
	S("\xc0\x80"),		/* overlong NUL */
	S("\xc0\xaf"),		/* overlong '/' */
	S("\xc1\xbf"),		/* overlong, highest two-byte */
	S("\xe0\x80\x80"),	/* overlong NUL, three bytes */
	S("\xe0\x9f\xbf"),	/* overlong U+07FF */
	S("\xf0\x80\x80\x80"),	/* overlong NUL, four bytes */
	S("\xf0\x8f\xbf\xbf"),	/* overlong U+FFFF */
	S("\xed\xa0\x80"),	/* U+D800, a surrogate */
	S("\xed\xaf\xbf"),	/* U+DBFF */
	S("\xed\xb0\x80"),	/* U+DC00 */
	S("\xed\xbf\xbf"),	/* U+DFFF */
	S("\xed\xa0\xbd\xed\xb8\x80"),	/* a surrogate pair, CESU-8 style */
	S("\xf4\x90\x80\x80"),	/* U+110000 */
	S("\xf4\xbf\xbf\xbf"),
	S("\xf5\x80\x80\x80"),	/* lead bytes that never occur */
	S("\xf7\xbf\xbf\xbf"),
	S("\xf8\x88\x80\x80\x80"),
	S("\xfc\x84\x80\x80\x80\x80"),
	S("\xfe"),
	S("\xff"),
	S("\x80"),		/* stray continuation bytes */
	S("\xbf"),
	S("a\x80"),
	S("\xc3\xa9\xa9"),	/* one continuation too many */
	S("\xe2\x82\xac\x80"),
	S("\xc3" "A"),		/* a lead byte followed by no continuation */
	S("\xc3\xc3\xa9"),
	S("\xe2\x82" "A"),
	S("\xe2" "A\x82"),
	S("\xf0\x9f\x98" "A"),
	S("\xf0\x9f" "\xc3\xa9"),
};

static bool feed_all(const void *p, size_t n)
{
	struct sb_utf8 u;

	sb_utf8_init(&u);
	return sb_utf8_feed(&u, p, n) && sb_utf8_complete(&u);
}

/* Feeds p in pieces cut at the given points (ascending); false as soon as
 * a piece is refused. */
static bool feed_cut(struct sb_utf8 *u, const unsigned char *p, size_t n,
		     const size_t *cuts, int ncuts)
{
	size_t at = 0;

	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		if (!sb_utf8_feed(u, p + at, end - at))
			return false;
		at = end;
	}
	return true;
}

static void test_valid_characters(void)
{
	struct sb_utf8 u;

	for (size_t i = 0; i < sizeof(valid_chars) / sizeof(valid_chars[0]); i++) {
		CHECK(feed_all(valid_chars[i].b, valid_chars[i].len));
		/* byte by byte: incomplete until the last byte */
		sb_utf8_init(&u);
		for (size_t k = 0; k < valid_chars[i].len; k++) {
			CHECK(sb_utf8_feed(&u, valid_chars[i].b + k, 1));
			CHECK_EQ_INT(sb_utf8_complete(&u), k + 1 == valid_chars[i].len);
		}
	}
	/* nothing at all is fine */
	sb_utf8_init(&u);
	CHECK(sb_utf8_feed(&u, "", 0));
	CHECK(sb_utf8_complete(&u));
}

/*
 * A text mixing every valid character with runs of ASCII (long enough for
 * any word-at-a-time fast path), fed in two and in three pieces cut at
 * every possible place: always accepted, and complete after the first
 * piece exactly when the cut falls on a character boundary.
 */
static void test_split_everywhere(void)
{
	unsigned char text[512];
	bool boundary[sizeof(text) + 1];
	size_t n = 0;

	memset(boundary, 0, sizeof(boundary));
	for (size_t i = 0; i < sizeof(valid_chars) / sizeof(valid_chars[0]); i++) {
		size_t ascii = i % 3 == 0 ? 17 : i % 3;

		for (size_t k = 0; k < ascii; k++) {
			boundary[n] = true;
			text[n++] = (unsigned char)('a' + k % 26);
		}
		boundary[n] = true;
		memcpy(text + n, valid_chars[i].b, valid_chars[i].len);
		n += valid_chars[i].len;
	}
	boundary[n] = true;
	CHECK(n < sizeof(text));
	CHECK(feed_all(text, n));

	for (size_t a = 0; a <= n; a++) {
		struct sb_utf8 u;
		size_t cut[1] = { a };

		sb_utf8_init(&u);
		CHECK(sb_utf8_feed(&u, text, a));
		CHECK_EQ_INT(sb_utf8_complete(&u), boundary[a]);
		CHECK(sb_utf8_feed(&u, text + a, n - a));
		CHECK(sb_utf8_complete(&u));

		sb_utf8_init(&u);
		CHECK(feed_cut(&u, text, n, cut, 1));
		CHECK(sb_utf8_complete(&u));
		for (size_t b = a; b <= n; b++) {
			size_t cuts[2] = { a, b };

			sb_utf8_init(&u);
			CHECK(feed_cut(&u, text, n, cuts, 2));
			CHECK(sb_utf8_complete(&u));
		}
	}
	/* and one byte at a time */
	{
		struct sb_utf8 u;

		sb_utf8_init(&u);
		for (size_t i = 0; i < n; i++) {
			CHECK(sb_utf8_feed(&u, text + i, 1));
			CHECK_EQ_INT(sb_utf8_complete(&u), boundary[i + 1]);
		}
	}
}

/* Each invalid sequence is refused, whole, after ASCII of any length
 * (catching a fast path that skips too far), and fed in any two pieces. */
static void test_invalid_sequences(void)
{
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		const struct sample *s = &invalid[i];
		unsigned char buf[64];

		if (feed_all(s->b, s->len)) {
			check_print_bytes("accepted", s->b, s->len);
			CHECK(!"invalid UTF-8 refused");
		}
		for (size_t prefix = 0; prefix < 20; prefix++) {
			struct sb_utf8 u;

			memset(buf, 'x', prefix);
			memcpy(buf + prefix, s->b, s->len);
			memcpy(buf + prefix + s->len, "tail text", 9);
			sb_utf8_init(&u);
			CHECK(!sb_utf8_feed(&u, buf, prefix + s->len + 9));
		}
		for (size_t a = 0; a <= s->len; a++) {
			struct sb_utf8 u;
			size_t cut[1] = { a };

			sb_utf8_init(&u);
			CHECK(!feed_cut(&u, (const unsigned char *)s->b, s->len, cut, 1) ||
			      !sb_utf8_complete(&u));
		}
	}
}

/* A non-ASCII byte anywhere in a long ASCII run is seen. */
static void test_bad_byte_in_ascii_run(void)
{
	unsigned char buf[64];

	for (size_t at = 0; at < sizeof(buf); at++) {
		for (int k = 0; k < 3; k++) {
			static const unsigned char bad[] = { 0x80, 0xff, 0xc0 };

			memset(buf, 'a', sizeof(buf));
			buf[at] = bad[k];
			CHECK(!feed_all(buf, sizeof(buf)));
		}
		/* a valid two-byte character there is fine, unless cut off by
		 * the end of the buffer */
		memset(buf, 'a', sizeof(buf));
		buf[at] = 0xc3;
		if (at + 1 < sizeof(buf))
			buf[at + 1] = 0xa9;
		CHECK_EQ_INT(feed_all(buf, sizeof(buf)), at + 1 < sizeof(buf));
	}
}

/* Text that stops inside a character is accepted so far but incomplete;
 * the rest completes it. */
static void test_truncated_at_end(void)
{
	for (size_t i = 0; i < sizeof(valid_chars) / sizeof(valid_chars[0]); i++) {
		const struct sample *s = &valid_chars[i];

		for (size_t keep = 1; keep < s->len; keep++) {
			struct sb_utf8 u;
			unsigned char buf[32];

			memcpy(buf, "abc", 3);
			memcpy(buf + 3, s->b, keep);
			sb_utf8_init(&u);
			CHECK(sb_utf8_feed(&u, buf, 3 + keep));
			CHECK(!sb_utf8_complete(&u));
			CHECK(!feed_all(buf, 3 + keep));
			CHECK(sb_utf8_feed(&u, s->b + keep, s->len - keep));
			CHECK(sb_utf8_complete(&u));
		}
	}
}

/* A fresh init after a refusal starts clean. */
static void test_reinit(void)
{
	struct sb_utf8 u;

	sb_utf8_init(&u);
	CHECK(!sb_utf8_feed(&u, "\xe0\x80", 2));
	sb_utf8_init(&u);
	CHECK(sb_utf8_feed(&u, "\xe0\xa0\x80", 3));
	CHECK(sb_utf8_complete(&u));
	sb_utf8_init(&u);
	CHECK(sb_utf8_feed(&u, "\xf0", 1));
	sb_utf8_init(&u);
	CHECK(sb_utf8_complete(&u));
	CHECK(sb_utf8_feed(&u, "a", 1));
	CHECK(sb_utf8_complete(&u));
}

int main(void)
{
	RUN_TEST(test_valid_characters);
	RUN_TEST(test_split_everywhere);
	RUN_TEST(test_invalid_sequences);
	RUN_TEST(test_bad_byte_in_ascii_run);
	RUN_TEST(test_truncated_at_end);
	RUN_TEST(test_reinit);
	return check_summary();
}
