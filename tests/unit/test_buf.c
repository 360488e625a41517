/*
 * The JSON text buffer (sb_buf): growth, the hard maximum (failure sticks
 * and later appends change nothing), reset, and JSON string escaping checked
 * by parsing the result back with json-c.
 */
#include "check.h"

#include "sb_buf.h"

#include <json-c/json.h>

static void test_growth(void)
{
	struct sb_buf b;
	char chunk[1000];

	sb_buf_init(&b, (size_t)1 << 24);
	CHECK_EQ_SIZE(b.len, 0);
	CHECK(!sb_buf_failed(&b));
	/* one byte at a time, through many doublings */
	for (size_t i = 0; i < 100000; i++) {
		char c = (char)('a' + i % 26);

		sb_buf_add(&b, &c, 1);
		CHECK_EQ_SIZE(b.len, i + 1);
	}
	CHECK(b.cap >= b.len);
	for (size_t i = 0; i < 100000; i++)
		CHECK_EQ_INT(b.p[i], 'a' + (int)(i % 26));
	/* larger pieces */
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)i;
	for (int k = 0; k < 50; k++)
		sb_buf_add(&b, chunk, sizeof(chunk));
	CHECK_EQ_SIZE(b.len, 100000 + 50 * sizeof(chunk));
	for (int k = 0; k < 50; k++)
		CHECK_EQ_MEM(b.p + 100000 + (size_t)k * sizeof(chunk), sizeof(chunk),
			     chunk, sizeof(chunk));
	/* nothing appended: nothing changes */
	sb_buf_add(&b, NULL, 0);
	sb_buf_adds(&b, "");
	CHECK_EQ_SIZE(b.len, 100000 + 50 * sizeof(chunk));
	CHECK(!sb_buf_failed(&b));
	sb_buf_release(&b);
	CHECK_EQ_SIZE(b.len, 0);
	CHECK(b.p == NULL);
	/* usable after release, with the same maximum */
	CHECK_EQ_SIZE(b.max, (size_t)1 << 24);
	sb_buf_adds(&b, "again");
	CHECK_EQ_MEM(b.p, b.len, "again", 5);
	sb_buf_release(&b);
}

static void test_max_bound(void)
{
	struct sb_buf b;

	sb_buf_init(&b, 10);
	sb_buf_adds(&b, "12345");
	sb_buf_adds(&b, "67890");	/* exactly the maximum */
	CHECK(!sb_buf_failed(&b));
	CHECK_EQ_MEM(b.p, b.len, "1234567890", 10);
	CHECK(b.cap >= b.len);
	sb_buf_add(&b, "", 0);		/* nothing more still fits */
	CHECK(!sb_buf_failed(&b));

	sb_buf_adds(&b, "x");		/* one byte over */
	CHECK(sb_buf_failed(&b));
	CHECK_EQ_MEM(b.p, b.len, "1234567890", 10);
	/* after a failure every append is a no-op, even one that would fit */
	sb_buf_adds(&b, "");
	sb_buf_add_jstr(&b, "", 0);
	CHECK(sb_buf_failed(&b));
	CHECK_EQ_SIZE(b.len, 10);

	/* reset clears the failure and the text, and keeps the memory */
	{
		char *p = b.p;
		size_t cap = b.cap;

		sb_buf_reset(&b);
		CHECK(!sb_buf_failed(&b));
		CHECK_EQ_SIZE(b.len, 0);
		CHECK(b.p == p);
		CHECK_EQ_SIZE(b.cap, cap);
	}
	sb_buf_adds(&b, "abc");
	CHECK_EQ_MEM(b.p, b.len, "abc", 3);
	/* a failed append leaves what was there and appends nothing of
	 * itself: no partial text */
	sb_buf_adds(&b, "12345678");
	CHECK(sb_buf_failed(&b));
	CHECK_EQ_MEM(b.p, b.len, "abc", 3);
	sb_buf_adds(&b, "d");
	CHECK_EQ_MEM(b.p, b.len, "abc", 3);
	sb_buf_release(&b);

	/* one append larger than the maximum, into an empty buffer */
	sb_buf_init(&b, 4);
	sb_buf_adds(&b, "12345");
	CHECK(sb_buf_failed(&b));
	CHECK_EQ_SIZE(b.len, 0);
	sb_buf_release(&b);

	/* a string literal counts its quotes and escapes */
	sb_buf_init(&b, 4);
	sb_buf_add_jstr(&b, "ab", 2);	/* "ab" is 4 bytes */
	CHECK(!sb_buf_failed(&b));
	CHECK_EQ_MEM(b.p, b.len, "\"ab\"", 4);
	sb_buf_reset(&b);
	sb_buf_add_jstr(&b, "a\"", 2);	/* "a\"" is 5 bytes */
	CHECK(sb_buf_failed(&b));
	CHECK(b.len < 5);
	sb_buf_release(&b);

	/* a maximum of zero holds nothing at all */
	sb_buf_init(&b, 0);
	sb_buf_add(&b, "", 0);
	CHECK(!sb_buf_failed(&b));
	sb_buf_adds(&b, "a");
	CHECK(sb_buf_failed(&b));
	CHECK_EQ_SIZE(b.len, 0);
	sb_buf_release(&b);

	/* a large maximum, crossed by a large append */
	sb_buf_init(&b, 5000);
	{
		static char big[6000];

		memset(big, 'z', sizeof(big));
		sb_buf_add(&b, big, 4999);
		CHECK(!sb_buf_failed(&b));
		sb_buf_add(&b, big, 2);
		CHECK(sb_buf_failed(&b));
		CHECK_EQ_SIZE(b.len, 4999);
	}
	sb_buf_release(&b);
}

/* Appends data as a JSON string and checks the result parses back, as one
 * strict JSON string, to exactly the same bytes. */
static void check_roundtrip(const char *data, size_t len)
{
	struct sb_buf b;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	sb_buf_init(&b, 1 << 20);
	sb_buf_add_jstr(&b, data, len);
	CHECK(!sb_buf_failed(&b));
	CHECK(b.len >= 2);
	CHECK_EQ_INT(b.p[0], '"');
	CHECK_EQ_INT(b.p[b.len - 1], '"');
	/* no raw control character survives */
	for (size_t i = 0; i < b.len; i++)
		CHECK((unsigned char)b.p[i] >= 0x20);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, b.p, (int)b.len);
	if (!o || json_tokener_get_parse_end(tok) != b.len) {
		check_print_bytes("input", data, len);
		check_print_bytes("output", b.p, b.len);
		CHECK(!"a strict JSON string");
	}
	CHECK(json_object_is_type(o, json_type_string));
	CHECK_EQ_MEM(json_object_get_string(o), (size_t)json_object_get_string_len(o),
		     data, len);
	json_object_put(o);
	json_tokener_free(tok);
	sb_buf_release(&b);
}

static void test_string_escaping(void)
{
	struct sb_buf b;

	/* the exact forms JSON prescribes for quote and backslash */
	sb_buf_init(&b, 1000);
	sb_buf_add_jstr(&b, "a\"b\\c", 5);
	CHECK_EQ_MEM(b.p, b.len, "\"a\\\"b\\\\c\"", 9);
	sb_buf_reset(&b);
	sb_buf_add_jstr(&b, "", 0);
	CHECK_EQ_MEM(b.p, b.len, "\"\"", 2);
	sb_buf_reset(&b);
	/* plain text and UTF-8 pass through as they are */
	{
		static const char text[] = "plain /text/ caf\xc3\xa9 \xf0\x9f\x98\x80";
		static const char quoted[] = "\"plain /text/ caf\xc3\xa9 \xf0\x9f\x98\x80\"";

		sb_buf_add_jstr(&b, text, sizeof(text) - 1);
		CHECK_EQ_MEM(b.p, b.len, quoted, sizeof(quoted) - 1);
	}
	sb_buf_reset(&b);
	/* a string literal appends after what is there */
	sb_buf_adds(&b, "{\"k\":");
	sb_buf_add_jstr(&b, "v", 1);
	sb_buf_adds(&b, "}");
	CHECK_EQ_MEM(b.p, b.len, "{\"k\":\"v\"}", 9);
	sb_buf_release(&b);

	/* every control character, alone and among other text */
	for (unsigned c = 0; c < 0x20; c++) {
		char one = (char)c;
		char mixed[5] = { 'x', (char)c, '"', (char)c, '\\' };

		check_roundtrip(&one, 1);
		check_roundtrip(mixed, sizeof(mixed));
	}
	check_roundtrip("\x7f", 1);
	check_roundtrip("\"\"\"\\\\\\", 6);
	check_roundtrip("\\u0041", 6);	/* text that looks like an escape */
	check_roundtrip("\xc2\x80\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf", 11);
	{
		/* all printable ASCII, and a long run of escapes (growth in
		 * the middle of escaping) */
		char all[95], many[3000];

		for (int i = 0; i < 95; i++)
			all[i] = (char)(0x20 + i);
		check_roundtrip(all, sizeof(all));
		for (size_t i = 0; i < sizeof(many); i++)
			many[i] = "\"\\\n\x01a"[i % 5];
		check_roundtrip(many, sizeof(many));
	}
}

int main(void)
{
	RUN_TEST(test_growth);
	RUN_TEST(test_max_bound);
	RUN_TEST(test_string_escaping);
	return check_summary();
}
