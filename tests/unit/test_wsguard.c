/*
 * The frame guard (sb_wsguard).  HTTP mode: each call consumes up to and
 * including the end of the first header block, wherever the calls cut the
 * bytes.  Frame mode: what RFC 6455 allows a client to send passes, cut at
 * any byte; each violation fails the guard with the count of bytes before
 * the offending frame (0 when it began in an earlier call), and a failed
 * guard stays failed.
 */
#include "check.h"

#include "sb_wsguard.h"

/* ---- HTTP mode ---- */

static size_t header_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if (!memcmp(p + i, "\r\n\r\n", 4))
			return i + 4;
	return SIZE_MAX;
}

/*
 * Feeds p in pieces cut at cuts[] and checks each call against the first
 * header block end E: calls before the one holding E consume everything,
 * that call consumes up to E, and the guard then reports E exactly.
 */
static void check_http_cuts(const char *p, size_t n, const size_t *cuts,
			    int ncuts)
{
	size_t e = header_end(p, n), at = 0;
	struct sb_wsguard g;

	sb_wsguard_init(&g);
	CHECK_EQ_INT(g.mode, SB_WSG_HTTP);
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n, got;

		got = sb_wsguard_http(&g, p + at, end - at);
		if (e != SIZE_MAX && e <= end) {
			CHECK_EQ_SIZE(got, e - at);
			return;
		}
		CHECK_EQ_SIZE(got, end - at);
		at = end;
	}
	CHECK(e == SIZE_MAX);
}

static void test_http_header_block(void)
{
	static const char req[] =
		"GET /chat HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n"
		"\x81\x85\x01\x02\x03\x04helloGET / HTTP/1.1\r\n\r\n";
	size_t n = sizeof(req) - 1, e = header_end(req, n);
	struct sb_wsguard g;

	CHECK(e != SIZE_MAX && e < n);
	sb_wsguard_init(&g);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, req, n), e);

	/* the end split across two and three calls, at every place */
	for (size_t a = 0; a <= n; a++) {
		size_t cut[1] = { a };

		check_http_cuts(req, n, cut, 1);
		for (size_t b = a; b <= n && b < a + 8; b++) {
			size_t cuts[2] = { a, b };

			check_http_cuts(req, n, cuts, 2);
		}
	}
	/* byte by byte */
	sb_wsguard_init(&g);
	for (size_t i = 0; i < e; i++)
		CHECK_EQ_SIZE(sb_wsguard_http(&g, req + i, 1), 1);

	/* no end in sight: everything is consumed */
	sb_wsguard_init(&g);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, "GET / HTTP/1.1\r\nHost: x\r\n", 25), 25);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, "\r", 1), 1);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, "\nrest", 5), 1);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, "", 0), 0);
}

/* Near misses of the terminator, and blocks back to back. */
static void test_http_tricky_terminators(void)
{
	static const char *const texts[] = {
		"a\r\n\rb\r\n\r\nc",
		"a\r\r\n\r\nb",
		"a\n\r\n\r\n",
		"a\r\n\r\r\n\r\nb",
		"a\n\n\r\n\r\n",
		"\r\n\r\n",
		"\r\n\r\nX\r\n\r\n",
		"a\r\n\n\r\n\r\n",
		"a\r\n\r\n\r\n\r\n",
	};

	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		const char *p = texts[t];
		size_t n = strlen(p);

		for (size_t a = 0; a <= n; a++) {
			size_t cut[1] = { a };

			check_http_cuts(p, n, cut, 1);
			for (size_t b = a; b <= n; b++) {
				size_t cuts[2] = { a, b };

				check_http_cuts(p, n, cuts, 2);
			}
		}
	}
	/* two blocks: the guard stops at each end in turn */
	{
		static const char two[] = "A: 1\r\n\r\nB: 2\r\n\r\ntail";
		struct sb_wsguard g;
		size_t first, second;

		sb_wsguard_init(&g);
		first = sb_wsguard_http(&g, two, sizeof(two) - 1);
		CHECK_EQ_SIZE(first, 8);
		second = sb_wsguard_http(&g, two + first, sizeof(two) - 1 - first);
		CHECK_EQ_SIZE(second, 8);
		CHECK_EQ_SIZE(sb_wsguard_http(&g, "tail", 4), 4);
	}
}

/* Random texts over "\r", "\n" and one other byte, cut at random. */
static void test_http_random(void)
{
	struct check_rng rng;

	check_rng_init(&rng, 4242);
	for (int round = 0; round < 20000; round++) {
		char p[40];
		size_t n = 1 + check_rng_below(&rng, sizeof(p));
		size_t cuts[3];
		int ncuts = (int)check_rng_below(&rng, 4);

		for (size_t i = 0; i < n; i++) {
			static const char alphabet[] = "\r\n\r\nx";

			p[i] = alphabet[check_rng_below(&rng, 5)];
		}
		for (int i = 0; i < ncuts; i++)
			cuts[i] = check_rng_below(&rng, (uint32_t)n + 1);
		/* ascending */
		for (int i = 0; i < ncuts; i++)
			for (int j = i + 1; j < ncuts; j++)
				if (cuts[j] < cuts[i]) {
					size_t t = cuts[i];

					cuts[i] = cuts[j];
					cuts[j] = t;
				}
		check_http_cuts(p, n, cuts, ncuts);
	}
}

/* ---- frame mode ---- */

enum { FIN = 0x80, RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10 };
enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9,
       OP_PONG = 10 };

struct stream {
	unsigned char *b;
	size_t n, cap;
	struct check_rng rng;
};

static void stream_init(struct stream *s, size_t cap)
{
	s->b = malloc(cap);
	CHECK(s->b != NULL);
	s->n = 0;
	s->cap = cap;
	check_rng_init(&s->rng, 99);
}

static void put(struct stream *s, unsigned char byte)
{
	CHECK(s->n < s->cap);
	s->b[s->n++] = byte;
}

/*
 * Appends a frame: byte0 as given (FIN, RSV, opcode), the mask bit when
 * masked, the length in the smallest form or forced to the 16-bit (form 16)
 * or 64-bit (form 64) one, a mask key and len payload bytes of noise (which
 * often look like frame headers).  Returns where the frame starts.
 */
static size_t frame(struct stream *s, unsigned byte0, bool masked, uint64_t len,
		    int form)
{
	size_t start = s->n;
	unsigned mask = masked ? 0x80 : 0;

	put(s, (unsigned char)byte0);
	if (form == 64 || (form == 0 && len > 0xffff)) {
		put(s, (unsigned char)(mask | 127));
		for (int i = 7; i >= 0; i--)
			put(s, (unsigned char)(len >> (8 * i)));
	} else if (form == 16 || (form == 0 && len > 125)) {
		put(s, (unsigned char)(mask | 126));
		put(s, (unsigned char)(len >> 8));
		put(s, (unsigned char)len);
	} else {
		put(s, (unsigned char)(mask | len));
	}
	if (masked)
		for (int i = 0; i < 4; i++)
			put(s, (unsigned char)check_rng_next(&s->rng));
	for (uint64_t i = 0; i < len; i++)
		put(s, (unsigned char)(check_rng_next(&s->rng) >> 56));
	return start;
}

static void guard_ws(struct sb_wsguard *g)
{
	sb_wsguard_init(g);
	sb_wsguard_upgrade(g);
	CHECK_EQ_INT(g->mode, SB_WSG_WS);
}

/* A varied, valid client stream, small enough to cut everywhere. */
static void valid_stream(struct stream *s)
{
	frame(s, FIN | OP_TEXT, true, 5, 0);
	frame(s, FIN | OP_BINARY, true, 0, 0);
	frame(s, FIN | OP_PING, true, 0, 0);
	frame(s, FIN | OP_PING, true, 125, 0);
	frame(s, FIN | OP_PONG, true, 3, 0);
	frame(s, FIN | OP_TEXT, true, 126, 0);		/* 16-bit length */
	frame(s, FIN | OP_TEXT, true, 7, 16);		/* 16-bit, not minimal */
	frame(s, FIN | OP_BINARY, true, 9, 64);		/* 64-bit, not minimal */
	/* a fragmented text message with control frames in between */
	frame(s, OP_TEXT, true, 3, 0);
	frame(s, FIN | OP_PING, true, 1, 0);
	frame(s, OP_CONT, true, 4, 0);
	frame(s, FIN | OP_PONG, true, 0, 0);
	frame(s, OP_CONT, true, 0, 0);
	frame(s, FIN | OP_CONT, true, 2, 0);
	/* a fragmented binary message, then a plain one again */
	frame(s, OP_BINARY, true, 1, 0);
	frame(s, FIN | OP_CONT, true, 1, 0);
	frame(s, FIN | OP_TEXT, true, 0, 0);
	frame(s, FIN | OP_CLOSE, true, 2, 0);
}

static void test_frames_accepted_cut_anywhere(void)
{
	struct stream s;
	struct sb_wsguard g;
	size_t n;

	stream_init(&s, 4096);
	valid_stream(&s);
	n = s.n;
	guard_ws(&g);
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b, n), n);
	CHECK_EQ_INT(g.mode, SB_WSG_WS);

	for (size_t a = 0; a <= n; a++) {
		guard_ws(&g);
		CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b, a), a);
		CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b + a, n - a), n - a);
		CHECK_EQ_INT(g.mode, SB_WSG_WS);
		for (size_t b = a; b <= n; b += 3) {
			guard_ws(&g);
			CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b, a), a);
			CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b + a, b - a), b - a);
			CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b + b, n - b), n - b);
			CHECK_EQ_INT(g.mode, SB_WSG_WS);
		}
	}
	guard_ws(&g);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b + i, 1), 1);
	CHECK_EQ_INT(g.mode, SB_WSG_WS);
	free(s.b);
}

/* Large payloads (16-bit at its maximum, 64-bit) fed in random pieces. */
static void test_large_frames(void)
{
	struct stream s;
	struct sb_wsguard g;
	struct check_rng rng;

	stream_init(&s, 320000);
	frame(&s, FIN | OP_BINARY, true, 65535, 0);
	frame(&s, FIN | OP_TEXT, true, 65536, 0);	/* 64-bit length */
	frame(&s, OP_TEXT, true, 70000, 64);
	frame(&s, FIN | OP_PING, true, 125, 0);
	frame(&s, FIN | OP_CONT, true, 100000, 0);
	frame(&s, FIN | OP_TEXT, true, 1, 0);
	check_rng_init(&rng, 5);
	for (int round = 0; round < 20; round++) {
		size_t at = 0;

		guard_ws(&g);
		while (at < s.n) {
			size_t k = 1 + check_rng_below(&rng, round < 10 ? 9000 : 40);

			if (k > s.n - at)
				k = s.n - at;
			CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b + at, k), k);
			at += k;
		}
		CHECK_EQ_INT(g.mode, SB_WSG_WS);
		/* the guard is between frames now: a bad frame is seen at
		 * once, at offset 0 of this call */
		{
			static const unsigned char unmasked[] = { FIN | OP_TEXT, 0x01, 'x' };

			CHECK_EQ_SIZE(sb_wsguard_frames(&g, unmasked, 3), 0);
			CHECK_EQ_INT(g.mode, SB_WSG_FAILED);
		}
	}
	free(s.b);
}

/*
 * A stream whose frame at vstart violates the protocol, detectable at
 * byte vbyte (>= vstart), fed whole, cut in two at every place, and byte
 * by byte.
 */
static void check_violation(const char *what, const unsigned char *p,
			    size_t n, size_t vstart, size_t vbyte)
{
	struct sb_wsguard g;
	static const unsigned char good[] = { FIN | OP_PING, 0x80, 1, 2, 3, 4 };

	CHECK(vstart <= vbyte && vbyte < n);
	guard_ws(&g);
	if (sb_wsguard_frames(&g, p, n) != vstart || g.mode != SB_WSG_FAILED)
		fprintf(stderr, "  violation: %s\n", what);
	guard_ws(&g);
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, p, n), vstart);
	CHECK_EQ_INT(g.mode, SB_WSG_FAILED);
	/* failed stays failed, even for good frames and for nothing */
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, good, sizeof(good)), 0);
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, good, 0), 0);
	CHECK_EQ_INT(g.mode, SB_WSG_FAILED);

	for (size_t a = 0; a <= n; a++) {
		size_t r1, r2;

		guard_ws(&g);
		r1 = sb_wsguard_frames(&g, p, a);
		if (vbyte < a) {
			/* seen in the first call, where the frame began */
			if (r1 != vstart)
				fprintf(stderr, "  violation: %s, cut at %zu\n", what, a);
			CHECK_EQ_SIZE(r1, vstart);
			CHECK_EQ_INT(g.mode, SB_WSG_FAILED);
			CHECK_EQ_SIZE(sb_wsguard_frames(&g, p + a, n - a), 0);
		} else {
			CHECK_EQ_SIZE(r1, a);
			CHECK_EQ_INT(g.mode, SB_WSG_WS);
			r2 = sb_wsguard_frames(&g, p + a, n - a);
			if (r2 != (vstart >= a ? vstart - a : 0))
				fprintf(stderr, "  violation: %s, cut at %zu\n", what, a);
			CHECK_EQ_SIZE(r2, vstart >= a ? vstart - a : 0);
		}
		CHECK_EQ_INT(g.mode, SB_WSG_FAILED);
		CHECK_EQ_SIZE(sb_wsguard_frames(&g, good, sizeof(good)), 0);
	}

	guard_ws(&g);
	for (size_t i = 0; i < vbyte; i++)
		CHECK_EQ_SIZE(sb_wsguard_frames(&g, p + i, 1), 1);
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, p + vbyte, 1), 0);
	CHECK_EQ_INT(g.mode, SB_WSG_FAILED);
}

/* How the offending frame is written after a valid prefix. */
struct violation {
	const char *what;
	bool in_message;	/* the prefix leaves a fragmented message open */
	unsigned byte0;
	bool masked;
	uint64_t len;
	int form;
	int detect;		/* byte of the frame where it can be seen */
	int top_bit;		/* set the top bit of a 64-bit length */
};

static const struct violation violations[] = {
	{ "unmasked text", false, FIN | OP_TEXT, false, 5, 0, 1, 0 },
	{ "unmasked ping", false, FIN | OP_PING, false, 0, 0, 1, 0 },
	{ "unmasked continuation", true, FIN | OP_CONT, false, 2, 0, 1, 0 },
	{ "unmasked 16-bit", false, FIN | OP_BINARY, false, 300, 0, 1, 0 },
	{ "RSV1", false, FIN | RSV1 | OP_TEXT, true, 5, 0, 0, 0 },
	{ "RSV2", false, FIN | RSV2 | OP_TEXT, true, 5, 0, 0, 0 },
	{ "RSV3", false, FIN | RSV3 | OP_BINARY, true, 5, 0, 0, 0 },
	{ "RSV on ping", false, FIN | RSV1 | OP_PING, true, 0, 0, 0, 0 },
	{ "RSV on continuation", true, FIN | RSV3 | OP_CONT, true, 1, 0, 0, 0 },
	{ "opcode 3", false, FIN | 3, true, 1, 0, 0, 0 },
	{ "opcode 4", false, FIN | 4, true, 1, 0, 0, 0 },
	{ "opcode 5", false, FIN | 5, true, 1, 0, 0, 0 },
	{ "opcode 6", false, FIN | 6, true, 1, 0, 0, 0 },
	{ "opcode 7", false, 7, true, 1, 0, 0, 0 },
	{ "opcode 0xB", false, FIN | 0xB, true, 1, 0, 0, 0 },
	{ "opcode 0xC", false, FIN | 0xC, true, 1, 0, 0, 0 },
	{ "opcode 0xD", false, FIN | 0xD, true, 1, 0, 0, 0 },
	{ "opcode 0xE", false, FIN | 0xE, true, 1, 0, 0, 0 },
	{ "opcode 0xF", false, FIN | 0xF, true, 1, 0, 0, 0 },
	{ "opcode 3 in a message", true, 3, true, 1, 0, 0, 0 },
	{ "ping without FIN", false, OP_PING, true, 0, 0, 0, 0 },
	{ "pong without FIN", false, OP_PONG, true, 1, 0, 0, 0 },
	{ "close without FIN", false, OP_CLOSE, true, 2, 0, 0, 0 },
	{ "ping without FIN in a message", true, OP_PING, true, 0, 0, 0, 0 },
	{ "ping of 126 bytes", false, FIN | OP_PING, true, 126, 0, 1, 0 },
	{ "close of 126 bytes", false, FIN | OP_CLOSE, true, 126, 0, 1, 0 },
	{ "pong with 16-bit length", false, FIN | OP_PONG, true, 5, 16, 1, 0 },
	{ "ping with 64-bit length", false, FIN | OP_PING, true, 5, 64, 1, 0 },
	{ "continuation of nothing", false, FIN | OP_CONT, true, 3, 0, 0, 0 },
	{ "continuation of nothing, no FIN", false, OP_CONT, true, 3, 0, 0, 0 },
	{ "text inside a message", true, FIN | OP_TEXT, true, 3, 0, 0, 0 },
	{ "binary inside a message", true, OP_BINARY, true, 3, 0, 0, 0 },
	{ "64-bit length, top bit", false, FIN | OP_BINARY, true, 0, 64, 2, 1 },
	{ "64-bit length, top bit, in a message", true, FIN | OP_CONT, true, 0, 64, 2, 1 },
};

static void test_violations(void)
{
	for (size_t v = 0; v < sizeof(violations) / sizeof(violations[0]); v++) {
		const struct violation *vi = &violations[v];

		/* after no frame, after a few, and after a large one */
		for (int prefix = 0; prefix < 3; prefix++) {
			struct stream s;
			size_t vstart;

			stream_init(&s, 8192);
			if (prefix == 1) {
				frame(&s, FIN | OP_TEXT, true, 4, 0);
				frame(&s, FIN | OP_PING, true, 2, 0);
			} else if (prefix == 2) {
				frame(&s, FIN | OP_BINARY, true, 600, 0);
			}
			if (vi->in_message) {
				frame(&s, OP_TEXT, true, 2, 0);
				frame(&s, FIN | OP_PONG, true, 0, 0);
				frame(&s, OP_CONT, true, 1, 0);
			}
			vstart = frame(&s, vi->byte0, vi->masked, vi->len, vi->form);
			if (vi->top_bit)
				s.b[vstart + 2] |= 0x80;
			/* and a good frame after it, which must not count */
			frame(&s, FIN | OP_TEXT, true, 3, 0);
			check_violation(vi->what, s.b, s.n, vstart,
					vstart + (size_t)vi->detect);
			free(s.b);
		}
	}
}

/* The end of a fragmented message closes it: continuation after it is a
 * violation, a new message is not. */
static void test_message_state(void)
{
	struct stream s;
	struct sb_wsguard g;
	size_t vstart;

	stream_init(&s, 1024);
	frame(&s, OP_TEXT, true, 1, 0);
	frame(&s, FIN | OP_CONT, true, 1, 0);
	frame(&s, OP_BINARY, true, 1, 0);
	frame(&s, FIN | OP_CONT, true, 1, 0);
	frame(&s, FIN | OP_TEXT, true, 1, 0);
	guard_ws(&g);
	CHECK_EQ_SIZE(sb_wsguard_frames(&g, s.b, s.n), s.n);
	vstart = frame(&s, FIN | OP_CONT, true, 1, 0);
	check_violation("continuation after the end", s.b, s.n, vstart, vstart);
	free(s.b);

	/* upgrading resets the guard to frame mode, between messages */
	sb_wsguard_init(&g);
	CHECK_EQ_SIZE(sb_wsguard_http(&g, "GET / HTTP/1.1\r\n\r\n", 18), 18);
	sb_wsguard_upgrade(&g);
	{
		static const unsigned char text[] = { FIN | OP_TEXT, 0x81, 1, 2, 3, 4, 'x' };

		CHECK_EQ_SIZE(sb_wsguard_frames(&g, text, sizeof(text)), sizeof(text));
		CHECK_EQ_INT(g.mode, SB_WSG_WS);
	}
}

/* The server's frame headers: the three length forms at their edges, and
 * what the guard's own parser (with the mask bit a client would set) reads
 * back from them. */
static void test_text_header(void)
{
	static const struct { uint64_t len; size_t hlen; } cases[] = {
		{ 0, 2 }, { 125, 2 }, { 126, 4 }, { 65535, 4 }, { 65536, 10 },
		{ 0x123456789ULL, 10 },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		unsigned char h[10];
		uint64_t back = 0;
		size_t n = sb_ws_text_header(h, cases[k].len);

		CHECK_EQ_SIZE(n, cases[k].hlen);
		CHECK_EQ_INT(h[0], 0x81);
		if (n == 2)
			back = h[1];
		else if (n == 4)
			back = ((uint64_t)h[2] << 8) | h[3];
		else
			for (int i = 0; i < 8; i++)
				back = (back << 8) | h[2 + i];
		CHECK_EQ_INT(h[1], n == 2 ? (int)cases[k].len : n == 4 ? 126 : 127);
		CHECK(back == cases[k].len);
	}
}

int main(void)
{
	RUN_TEST(test_http_header_block);
	RUN_TEST(test_http_tricky_terminators);
	RUN_TEST(test_http_random);
	RUN_TEST(test_frames_accepted_cut_anywhere);
	RUN_TEST(test_large_frames);
	RUN_TEST(test_violations);
	RUN_TEST(test_message_state);
	RUN_TEST(test_text_header);
	return check_summary();
}
