/*
 * The request-head checker (sb_reqcheck).  Every rule and every bound, each
 * fed whole, cut in two at every byte (see cut_here() for the long ones),
 * in three, and byte by byte: the verdict, its reason and status, and the
 * byte it is reached at never depend on the cuts.  The answers: status line, exact Content-Length, Connection: close.
 * Random mutations of good heads keep the same property.
 */
#include "check.h"

#include "sb_reqcheck.h"

/* What a stream came to: the verdict, its reason and status, and the
 * offset at which it was reached (the byte after a head's end, the
 * offending byte of a refusal, or the length when more is needed). */
struct outcome {
	enum sb_req_verdict v;
	int reason;
	unsigned status;
	size_t at;
};

/* Feeds p[0..n) in pieces that end at cuts[] (ascending), up to the first
 * verdict other than MORE. */
static struct outcome feed_cut(const char *p, size_t n, const size_t *cuts,
			       int ncuts)
{
	struct sb_reqcheck c;
	struct outcome o = { SB_REQ_MORE, SB_REQ_NONE, 0, n };
	size_t at = 0;

	sb_reqcheck_init(&c);
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n, used = 0;
		enum sb_req_verdict v = sb_reqcheck_feed(&c, p + at, end - at, &used);

		CHECK(used <= end - at);
		if (v != SB_REQ_MORE) {
			o.v = v;
			o.reason = c.reason;
			o.status = c.status;
			o.at = at + used;
			return o;
		}
		CHECK_EQ_SIZE(used, end - at);
		at = end;
	}
	return o;
}

static void check_same(struct outcome a, struct outcome b, const char *what,
		       size_t cut)
{
	if (a.v != b.v || a.reason != b.reason || a.status != b.status ||
	    a.at != b.at) {
		fprintf(stderr, "%s: cut at %zu gave verdict %d reason %d status %u at %zu; "
			"whole gave %d %d %u at %zu\n", what, cut, b.v, b.reason,
			b.status, b.at, a.v, a.reason, a.status, a.at);
		CHECK(!"the outcome depends on the cuts");
	}
}

/* Whether outcome_of() cuts a stream of n bytes in two at a.  Every place
 * up to 1 KiB; in longer ones (the bounds' tests, long runs of one byte)
 * every place of the first and last 512 bytes, where the bounds are, and
 * every 61st between: all of them costs n * n steps, too slow under the
 * sanitizers. */
static bool cut_here(size_t a, size_t n)
{
	return n <= 1024 || a < 512 || a + 512 > n || a % 61 == 0;
}

/* Feeds p whole, in two at every place, in three at many, and byte by
 * byte; all must agree.  Returns the outcome. */
static struct outcome outcome_of(const char *p, size_t n)
{
	struct outcome whole = feed_cut(p, n, NULL, 0);

	for (size_t a = 0; a <= n; a++) {
		size_t cut[2] = { a, a };

		if (!cut_here(a, n))
			continue;
		check_same(whole, feed_cut(p, n, cut, 1), p, a);
		/* three pieces: around every place of the short ones */
		for (size_t b = a + 1; b <= n && b < a + 4 && n <= 1024; b++) {
			cut[1] = b;
			check_same(whole, feed_cut(p, n, cut, 2), p, a);
		}
	}
	{
		struct sb_reqcheck c;
		struct outcome o = { SB_REQ_MORE, SB_REQ_NONE, 0, n };

		sb_reqcheck_init(&c);
		for (size_t i = 0; i < n; i++) {
			size_t used;
			enum sb_req_verdict v = sb_reqcheck_feed(&c, p + i, 1, &used);

			if (v != SB_REQ_MORE) {
				o.v = v;
				o.reason = c.reason;
				o.status = c.status;
				o.at = i + used;
				break;
			}
			CHECK_EQ_SIZE(used, 1);
		}
		check_same(whole, o, p, (size_t)-1);
	}
	return whole;
}

/* A head the checker accepts, ending exactly at its end. */
static void accepted(const char *p)
{
	size_t n = strlen(p);
	struct outcome o = outcome_of(p, n);

	if (o.v != SB_REQ_HEAD)
		check_print_bytes("refused", p, n);
	CHECK_EQ_INT(o.v, SB_REQ_HEAD);
	CHECK_EQ_SIZE(o.at, n);
}

/* A stream refused for reason with status at byte offset at (SIZE_MAX:
 * anywhere). */
static void refused_at(const char *p, size_t n, int reason, unsigned status,
		       size_t at)
{
	struct outcome o = outcome_of(p, n);

	if (o.v != SB_REQ_REFUSE || o.reason != reason || o.status != status)
		check_print_bytes("stream", p, n);
	CHECK_EQ_INT(o.v, SB_REQ_REFUSE);
	CHECK_EQ_STR(sb_req_reason_names[o.reason], sb_req_reason_names[reason]);
	CHECK_EQ_INT(o.status, status);
	if (at != SIZE_MAX)
		CHECK_EQ_SIZE(o.at, at);
}

static void refused(const char *p, int reason, unsigned status)
{
	refused_at(p, strlen(p), reason, status, SIZE_MAX);
}

/* Where the first occurrence of needle in p begins, plus off. */
static size_t offset_of(const char *p, const char *needle, size_t off)
{
	const char *q = strstr(p, needle);

	CHECK(q != NULL);
	return (size_t)(q - p) + off;
}

#define UPGRADE_HEAD(path, extra)                                              \
	"GET " path " HTTP/1.1\r\nHost: example.org\r\nUpgrade: websocket\r\n"  \
	"Connection: Upgrade\r\n" extra "\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"

/* ---- what passes ---- */

static void test_good_heads(void)
{
	/* what Chromium sends */
	accepted("GET /signal?room=a&token=x HTTP/1.1\r\n"
		 "Host: localhost:8080\r\n"
		 "Connection: Upgrade\r\n"
		 "Pragma: no-cache\r\n"
		 "Cache-Control: no-cache\r\n"
		 "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
		 "Upgrade: websocket\r\n"
		 "Origin: http://localhost:8080\r\n"
		 "Sec-WebSocket-Version: 13\r\n"
		 "Accept-Encoding: gzip, deflate, br\r\n"
		 "Accept-Language: en-US,en;q=0.9\r\n"
		 "Cookie: a=b; c=d\r\n"
		 "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
		 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
		 "\r\n");
	accepted("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	accepted("HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
	accepted("GET / HTTP/1.0\r\n\r\n");
	accepted("GET /a%20b%2F%7e?x=%41 HTTP/1.1\r\n\r\n");
	accepted("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	accepted("GET / HTTP/1.1\r\ncontent-LENGTH:0 \r\n\r\n");
	accepted("GET / HTTP/1.1\r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\nX-High: \xc3\xa9\xff\r\n\r\n");
	/* case, whitespace and lists in the WebSocket headers */
	accepted("GET / HTTP/1.1\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
		 "sec-websocket-version:  13 \r\nsec-websocket-key:\tAAAAAAAAAAAAAAAAAAAAAA==\t\r\n\r\n");
	accepted(UPGRADE_HEAD("/", KEY V13));
	accepted("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: ,Upgrade,,\r\n" KEY V13 "\r\n");
	/* Sec-WebSocket-* without an upgrade is no business of the checker's */
	accepted("GET / HTTP/1.1\r\nSec-WebSocket-Version: 999\r\nSec-WebSocket-Key: x\r\n\r\n");
	/* Connection: Upgrade alone asks for nothing */
	accepted("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n");
}

/* Heads back to back: each ends the call, the next starts afresh. */
static void test_keep_alive(void)
{
	static const char two[] = "GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
				  "GET /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
				  "POST";
	size_t n = sizeof(two) - 1, used, first = strlen("GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	struct sb_reqcheck c;

	sb_reqcheck_init(&c);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, two, n, &used), SB_REQ_HEAD);
	CHECK_EQ_SIZE(used, first);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, two + first, n - first, &used), SB_REQ_HEAD);
	CHECK_EQ_SIZE(used, first);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, two + 2 * first, n - 2 * first, &used), SB_REQ_MORE);
	CHECK_EQ_SIZE(used, 4);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, " ", 1, &used), SB_REQ_REFUSE);
	CHECK_EQ_INT(c.reason, SB_REQ_METHOD);
	/* a refused checker takes nothing more */
	CHECK_EQ_INT(sb_reqcheck_feed(&c, "GET", 3, &used), SB_REQ_REFUSE);
	CHECK_EQ_SIZE(used, 0);
	/* nothing fed, nothing found */
	sb_reqcheck_init(&c);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, "", 0, &used), SB_REQ_MORE);
	CHECK_EQ_SIZE(used, 0);
}

/* ---- the request line ---- */

static void test_methods(void)
{
	static const char *const known[] = { "POST", "PUT", "PATCH", "DELETE",
					     "OPTIONS", "CONNECT" };
	char line[64];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		snprintf(line, sizeof(line), "%s / HTTP/1.1\r\n\r\n", known[i]);
		refused_at(line, strlen(line), SB_REQ_METHOD, 405, strlen(known[i]));
	}
	refused_at("OPTIONS * HTTP/1.1\r\n\r\n", 22, SB_REQ_METHOD, 405, 7);
	/* unknown: at the first byte that is no method's */
	refused_at("BREW / HTTP/1.1\r\n\r\n", 19, SB_REQ_METHOD, 501, 0);
	refused_at("GETS / HTTP/1.1\r\n\r\n", 19, SB_REQ_METHOD, 501, 3);
	refused_at("POSTS / HTTP/1.1\r\n\r\n", 20, SB_REQ_METHOD, 501, 4);
	refused_at("GE / HTTP/1.1\r\n\r\n", 17, SB_REQ_METHOD, 501, 2);
	refused_at("PROPFIND / HTTP/1.1\r\n\r\n", 23, SB_REQ_METHOD, 501, 2);
	refused_at("get / HTTP/1.1\r\n\r\n", 18, SB_REQ_METHOD, 501, 0);	/* case matters */
	/* not a token at all */
	refused_at(" GET / HTTP/1.1\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 0);
	refused_at("\r\nGET / HTTP/1.1\r\n\r\n", 20, SB_REQ_MALFORMED, 400, 0);
	refused_at("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, SB_REQ_MALFORMED, 400, 0);
	refused_at("GET\t/ HTTP/1.1\r\n\r\n", 18, SB_REQ_MALFORMED, 400, 3);
	refused_at("GET\r\n\r\n", 7, SB_REQ_MALFORMED, 400, 3);
}

static void test_h2_preface(void)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	/* refused at its 'I', where lws 4.1 would answer by itself */
	refused_at(preface, sizeof(preface) - 1, SB_REQ_H2, 505, 2);
	refused_at("PRI", 3, SB_REQ_H2, 505, 2);
	refused_at("PRIX", 4, SB_REQ_H2, 505, 2);
	/* a prefix alone waits */
	CHECK_EQ_INT(outcome_of("PR", 2).v, SB_REQ_MORE);
}

static void test_targets(void)
{
	char buf[SB_REQ_TARGET_MAX + 64];
	size_t n;

	/* origin-form only */
	refused_at("GET * HTTP/1.1\r\n\r\n", 18, SB_REQ_MALFORMED, 400, 4);
	refused_at("GET http://x/ HTTP/1.1\r\n\r\n", 26, SB_REQ_MALFORMED, 400, 4);
	refused_at("GET  / HTTP/1.1\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 4);
	refused_at("GET /a b HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /\r\n\r\n", 9, SB_REQ_MALFORMED, 400, 5);	/* HTTP/0.9 */
	refused_at("GET /\x01 HTTP/1.1\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 5);
	refused_at("GET /\x7f HTTP/1.1\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 5);
	refused_at("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 20, SB_REQ_MALFORMED, 400, 5);
	/* %-escapes: two hex digits, no control character */
	refused_at("GET /%zz HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 6);
	refused_at("GET /%4z HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /%4 HTTP/1.1\r\n\r\n", 20, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /% HTTP/1.1\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 6);
	refused_at("GET /%00 HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /%0d%0a HTTP/1.1\r\n\r\n", 24, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /%1F HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 7);
	refused_at("GET /%7F HTTP/1.1\r\n\r\n", 21, SB_REQ_MALFORMED, 400, 7);
	accepted("GET /%20%7E%80%ff HTTP/1.1\r\n\r\n");

	/* the length: SB_REQ_TARGET_MAX bytes pass, one more is 414 */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', SB_REQ_TARGET_MAX - 1);
	n = 4 + SB_REQ_TARGET_MAX;
	memcpy(buf + n, " HTTP/1.1\r\n\r\n", 14);
	buf[n + 14] = '\0';
	accepted(buf);
	memset(buf + 5, 'a', SB_REQ_TARGET_MAX);
	memcpy(buf + n + 1, " HTTP/1.1\r\n\r\n", 14);
	refused_at(buf, n + 15, SB_REQ_TARGET, 414, n);

	/* parameters: the first '?', every '&' and ';' */
	n = (size_t)snprintf(buf, sizeof(buf), "GET /?");
	for (int i = 1; i < SB_REQ_PARAMS_MAX; i++)
		buf[n++] = i % 2 ? '&' : ';';
	memcpy(buf + n, "?? HTTP/1.1\r\n\r\n", 16);	/* later '?' are plain */
	accepted(buf);
	buf[n] = '&';
	refused_at(buf, strlen(buf), SB_REQ_TARGET, 414, n);
	/* encoded ones are not delimiters */
	n = (size_t)snprintf(buf, sizeof(buf), "GET /");
	for (int i = 0; i < 2 * SB_REQ_PARAMS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%%26");
	snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\n\r\n");
	accepted(buf);
}

static void test_versions(void)
{
	accepted("GET / HTTP/1.1\r\n\r\n");
	accepted("GET / HTTP/1.0\r\n\r\n");
	refused_at("GET / HTTP/2.0\r\n\r\n", 18, SB_REQ_VERSION, 505, 13);
	refused_at("GET / HTTP/1.2\r\n\r\n", 18, SB_REQ_VERSION, 505, 13);
	refused_at("GET / HTTP/0.9\r\n\r\n", 18, SB_REQ_VERSION, 505, 13);
	refused_at("GET / HTTP/3\r\n\r\n", 16, SB_REQ_MALFORMED, 400, 12);
	refused_at("GET / http/1.1\r\n\r\n", 18, SB_REQ_MALFORMED, 400, 6);
	refused_at("GET / HTTP/1.1 \r\n\r\n", 19, SB_REQ_MALFORMED, 400, 14);
	refused_at("GET / HTTP/1.10\r\n\r\n", 19, SB_REQ_MALFORMED, 400, 14);
	refused_at("GET / HTTP/x.1\r\n\r\n", 18, SB_REQ_MALFORMED, 400, 11);
	refused_at("GET / HTTP/1.1\n\r\n", 17, SB_REQ_MALFORMED, 400, 14);
	refused_at("GET / HTTP/1.1\rX\n\r\n", 19, SB_REQ_MALFORMED, 400, 15);
}

/* ---- header lines ---- */

static void test_header_syntax(void)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: x\n\r\n",		/* bare LF */
		"GET / HTTP/1.1\r\nHost: x\r\n\n",		/* bare LF ends */
		"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",	/* bare CR */
		"GET / HTTP/1.1\r\nHost: x\r\n\rX",		/* CR then no LF */
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",	/* obs-fold */
		"GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",		/* space before ':' */
		"GET / HTTP/1.1\r\n: x\r\n\r\n",			/* no name */
		"GET / HTTP/1.1\r\nHost\r\n\r\n",			/* no colon */
		"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n",		/* not a token */
		"GET / HTTP/1.1\r\nPOST / HTTP/1.1\r\n\r\n",	/* a method as a name */
		"GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",		/* control character */
		"GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
		"GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], SB_REQ_MALFORMED, 400);
	/* at the offending byte */
	refused_at("GET / HTTP/1.1\r\nHost: x\n\r\n", 26, SB_REQ_MALFORMED, 400, 23);
	refused_at("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 28, SB_REQ_MALFORMED, 400, 20);
	/* a NUL in a value */
	refused_at("GET / HTTP/1.1\r\nX: a\0z\r\n\r\n", 26, SB_REQ_MALFORMED, 400, 20);
}

static void test_head_size(void)
{
	static char buf[SB_REQ_HEAD_MAX + 64];
	static const char start[] = "GET / HTTP/1.1\r\nX: ";
	size_t s = sizeof(start) - 1;

	/* a head of exactly SB_REQ_HEAD_MAX bytes passes */
	memcpy(buf, start, s);
	memset(buf + s, 'v', SB_REQ_HEAD_MAX - s - 4);
	memcpy(buf + SB_REQ_HEAD_MAX - 4, "\r\n\r\n", 5);
	CHECK_EQ_SIZE(strlen(buf), SB_REQ_HEAD_MAX);
	accepted(buf);
	/* one byte more is 431, at that byte */
	memset(buf + s, 'v', SB_REQ_HEAD_MAX - s - 3);
	memcpy(buf + SB_REQ_HEAD_MAX - 3, "\r\n\r\n", 5);
	refused_at(buf, SB_REQ_HEAD_MAX + 1, SB_REQ_HEADERS, 431, SB_REQ_HEAD_MAX);
	/* a head that never ends is cut at the bound too */
	memset(buf + s, 'v', sizeof(buf) - s);
	refused_at(buf, sizeof(buf), SB_REQ_HEADERS, 431, SB_REQ_HEAD_MAX);
}

static void test_field_count(void)
{
	static char buf[4096];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n"), at;

	for (int i = 0; i < SB_REQ_FIELDS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a%d: b\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	accepted(buf);
	at = n;
	snprintf(buf + n, sizeof(buf) - n, "one-more: x\r\n\r\n");
	refused_at(buf, strlen(buf), SB_REQ_HEADERS, 431, at);
	/* 5,000 tiny ones: refused at the first over the bound */
	{
		static char many[5000 * 6 + 64];
		size_t m = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
		size_t first = m + 6 * SB_REQ_FIELDS_MAX;

		for (int i = 0; i < 5000; i++)
			m += (size_t)snprintf(many + m, sizeof(many) - m, "a: b\r\n");
		snprintf(many + m, sizeof(many) - m, "\r\n");
		CHECK_EQ_INT(feed_cut(many, strlen(many), NULL, 0).v, SB_REQ_REFUSE);
		CHECK_EQ_SIZE(feed_cut(many, strlen(many), NULL, 0).at, first);
	}
}

/* ---- framing ---- */

static void test_framing(void)
{
	const char *p;

	p = "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n";
	refused_at(p, strlen(p), SB_REQ_FRAMING, 400, offset_of(p, "th: 5", 2));
	p = "GET / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n";
	refused_at(p, strlen(p), SB_REQ_FRAMING, 400, offset_of(p, "th: 0\r\n\r", 2));
	p = "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
	refused_at(p, strlen(p), SB_REQ_FRAMING, 400, offset_of(p, "5\r", 1));
	p = "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	refused_at(p, strlen(p), SB_REQ_FRAMING, 400, offset_of(p, ":", 0));
	p = "GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n";
	refused_at(p, strlen(p), SB_REQ_FRAMING, 400, offset_of(p, "ing:", 3));
	refused("GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n", SB_REQ_FRAMING, 400);
	refused("GET / HTTP/1.1\r\nContent-Length: 0 0\r\n\r\n", SB_REQ_FRAMING, 400);
	refused("GET / HTTP/1.1\r\nContent-Length: +0\r\n\r\n", SB_REQ_FRAMING, 400);
	refused("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", SB_REQ_FRAMING, 400);
	refused("GET / HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n", SB_REQ_FRAMING, 400);
	/* names that only begin like them are other fields */
	accepted("GET / HTTP/1.1\r\nContent-Length-X: 5\r\nTransfer-Encodin: x\r\n\r\n");
}

/* ---- upgrades ---- */

static void test_upgrades(void)
{
	const char *p;

	p = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
	    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
	refused_at(p, strlen(p), SB_REQ_H2, 400, offset_of(p, "h2c\r", 3));
	refused("GET / HTTP/1.1\r\nUpgrade: H2C\r\n\r\n", SB_REQ_H2, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: TLS/1.0\r\n\r\n", SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: websocket, h2c\r\n\r\n", SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: web socket\r\n\r\n", SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: websockets\r\n\r\n", SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade:\r\n\r\n", SB_REQ_UPGRADE, 400);
	p = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n";
	/* at the colon of the second one */
	refused_at(p, strlen(p), SB_REQ_UPGRADE, 400,
		   (size_t)(strstr(p + 20, "Upgrade:") - p) + 7);
	/* a WebSocket upgrade is a GET over HTTP/1.1 with Connection: Upgrade */
	refused("GET / HTTP/1.1\r\nUpgrade: websocket\r\n" KEY V13 "\r\n", SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgraded\r\n" KEY V13 "\r\n",
		SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep alive upgrade\r\n" KEY V13 "\r\n",
		SB_REQ_UPGRADE, 400);
	refused("HEAD / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY V13 "\r\n",
		SB_REQ_UPGRADE, 400);
	refused("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY V13 "\r\n",
		SB_REQ_UPGRADE, 400);
}

static void test_websocket_version(void)
{
	const char *p = UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 999\r\n");

	/* decided when the head ends: at its last byte */
	refused_at(p, strlen(p), SB_REQ_WS_VERSION, 426, strlen(p) - 1);
	refused(UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 8\r\n"), SB_REQ_WS_VERSION, 426);
	refused(UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 13, 8\r\n"), SB_REQ_WS_VERSION, 426);
	refused(UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 13 13\r\n"), SB_REQ_WS_VERSION, 426);
	refused(UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 130\r\n"), SB_REQ_WS_VERSION, 426);
	refused(UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version:\r\n"), SB_REQ_WS_VERSION, 426);
	/* missing or repeated: not a valid handshake at all */
	refused(UPGRADE_HEAD("/", KEY), SB_REQ_WS_VERSION, 400);
	refused(UPGRADE_HEAD("/", KEY V13 V13), SB_REQ_WS_VERSION, 400);
	refused(UPGRADE_HEAD("/", KEY V13 "Sec-WebSocket-Version: 8\r\n"), SB_REQ_WS_VERSION, 400);
}

static void test_websocket_key(void)
{
	static const char *const bad[] = {
		"Sec-WebSocket-Key: abc\r\n",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",	/* 23 */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n",	/* 25 */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n",	/* no padding */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA\r\n",	/* 24, no '=' */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j=Q==\r\n",	/* '=' inside */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n",	/* base64url */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSB ub25jZQ==\r\n",	/* a space */
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== x\r\n",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSBub25jZQ==\r\n",	/* 24 bytes */
		"Sec-WebSocket-Key:\r\n",
		"",							/* none */
		KEY KEY,						/* twice */
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), UPGRADE_HEAD("/", "%s" V13), bad[i]);
		refused(buf, SB_REQ_WS_KEY, 400);
	}
	accepted(UPGRADE_HEAD("/", "Sec-WebSocket-Key: ++//++//++//++//++//++==\r\n" V13));
	/* the version is looked at first */
	refused(UPGRADE_HEAD("/", "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 7\r\n"),
		SB_REQ_WS_VERSION, 426);
}

/* ---- answers ---- */

/* Parses an answer: its status, that Content-Length matches the body and
 * that it says Connection: close; returns the head, NUL-terminated. */
static void check_answer(const char *a, size_t n, unsigned status, bool body,
			 char *head, size_t cap)
{
	const char *end = strstr(a, "\r\n\r\n"), *cl;
	char line[32];
	size_t hlen, blen;

	CHECK(n > 0 && strlen(a) == n);
	CHECK(end != NULL);
	hlen = (size_t)(end - a) + 4;
	CHECK(hlen < cap);
	memcpy(head, a, hlen);
	head[hlen] = '\0';
	snprintf(line, sizeof(line), "HTTP/1.1 %u ", status);
	CHECK(!strncmp(a, line, strlen(line)));
	CHECK(strstr(head, "\r\nConnection: close\r\n") ||
	      strstr(head, "\r\nConnection: Upgrade, close\r\n"));
	CHECK(strstr(head, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	cl = strstr(head, "\r\nContent-Length: ");
	CHECK(cl != NULL);
	blen = strtoul(cl + 18, NULL, 10);
	CHECK(blen > 1);
	CHECK_EQ_SIZE(n - hlen, body ? blen : 0);
	if (body)
		CHECK_EQ_INT(a[n - 1], '\n');
}

static void test_answers(void)
{
	static const struct {
		const char *req;
		unsigned status;
		const char *must;	/* a header the answer must have */
	} cases[] = {
		{ "GET /%zz HTTP/1.1\r\n\r\n", 400, NULL },
		{ "POST / HTTP/1.1\r\n\r\n", 405, "\r\nAllow: GET, HEAD\r\n" },
		{ "BREW / HTTP/1.1\r\n\r\n", 501, NULL },
		{ "GET / HTTP/2.0\r\n\r\n", 505, NULL },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, NULL },
		{ "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n", 400, NULL },
		{ "GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 400, NULL },
		{ UPGRADE_HEAD("/", KEY "Sec-WebSocket-Version: 999\r\n"), 426,
		  "\r\nSec-WebSocket-Version: 13\r\n" },
		{ UPGRADE_HEAD("/", KEY), 400, "\r\nSec-WebSocket-Version: 13\r\n" },
		{ UPGRADE_HEAD("/", V13), 400, NULL },
	};
	char out[SB_REQ_ANSWER_MAX], head[SB_REQ_ANSWER_MAX + 1];
	struct sb_reqcheck c;
	size_t used, n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb_reqcheck_init(&c);
		CHECK_EQ_INT(sb_reqcheck_feed(&c, cases[i].req, strlen(cases[i].req), &used),
			     SB_REQ_REFUSE);
		n = sb_reqcheck_answer(&c, out, sizeof(out));
		check_answer(out, n, cases[i].status, true, head, sizeof(head));
		if (cases[i].must)
			CHECK(strstr(head, cases[i].must) != NULL);
		if (cases[i].status == 426)
			CHECK(strstr(head, "\r\nUpgrade: websocket\r\n") != NULL);
		/* too small a buffer: nothing */
		CHECK_EQ_SIZE(sb_reqcheck_answer(&c, out, n), 0);
		CHECK_EQ_SIZE(sb_reqcheck_answer(&c, out, n + 1), n);
	}
	/* HEAD: the length of the body that is left out */
	sb_reqcheck_init(&c);
	CHECK_EQ_INT(sb_reqcheck_feed(&c, "HEAD /%zz", 9, &used), SB_REQ_REFUSE);
	n = sb_reqcheck_answer(&c, out, sizeof(out));
	check_answer(out, n, 400, false, head, sizeof(head));
	/* the 431 and 414 ones */
	{
		static char big[SB_REQ_HEAD_MAX + 8];

		memset(big, 'a', sizeof(big));
		memcpy(big, "GET /", 5);
		sb_reqcheck_init(&c);
		CHECK_EQ_INT(sb_reqcheck_feed(&c, big, sizeof(big), &used), SB_REQ_REFUSE);
		n = sb_reqcheck_answer(&c, out, sizeof(out));
		check_answer(out, n, 414, true, head, sizeof(head));
		memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
		sb_reqcheck_init(&c);
		CHECK_EQ_INT(sb_reqcheck_feed(&c, big, sizeof(big), &used), SB_REQ_REFUSE);
		n = sb_reqcheck_answer(&c, out, sizeof(out));
		check_answer(out, n, 431, true, head, sizeof(head));
	}
	/* nothing refused, no answer */
	sb_reqcheck_init(&c);
	CHECK_EQ_SIZE(sb_reqcheck_answer(&c, out, sizeof(out)), 0);
	/* every reason has a name */
	for (int r = 0; r < SB_REQ_COUNT; r++)
		CHECK(sb_req_reason_names[r] && *sb_req_reason_names[r]);
	CHECK_EQ_STR(sb_req_reason_names[SB_REQ_H2], "h2");
	CHECK_EQ_STR(sb_req_reason_names[SB_REQ_WS_PATH], "ws_path");
	CHECK_EQ_STR(sb_req_reason_names[SB_REQ_TIMEOUT], "handshake_timeout");
}

/* The answers to refusals the transport decides (sb_req_answer): each its
 * status line and its own one-line body. */
static void test_transport_answers(void)
{
	static const struct {
		int reason, status;
		const char *line, *body;
	} cases[] = {
		{ SB_REQ_WS_PATH, 404, "HTTP/1.1 404 Not Found\r\n", "no WebSocket at this path\n" },
		{ SB_REQ_ORIGIN, 403, "HTTP/1.1 403 Forbidden\r\n", "origin not allowed\n" },
		{ SB_REQ_DRAINING, 503, "HTTP/1.1 503 Service Unavailable\r\n",
		  "the server is shutting down\n" },
		{ SB_REQ_MAX_CONN, 503, "HTTP/1.1 503 Service Unavailable\r\n",
		  "too many connections\n" },
		{ SB_REQ_MAX_CONN_IP, 503, "HTTP/1.1 503 Service Unavailable\r\n",
		  "too many connections from this address\n" },
	};
	char out[SB_REQ_ANSWER_MAX], head[SB_REQ_ANSWER_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = sb_req_answer(cases[i].reason, cases[i].status, out, sizeof(out));
		size_t blen = strlen(cases[i].body);

		check_answer(out, n, (unsigned)cases[i].status, true, head, sizeof(head));
		CHECK(!strncmp(out, cases[i].line, strlen(cases[i].line)));
		CHECK(n > blen && !strcmp(out + n - blen, cases[i].body));
		CHECK(strstr(head, "\r\nConnection: close\r\n") != NULL);
		CHECK_EQ_SIZE(sb_req_answer(cases[i].reason, cases[i].status, out, n), 0);
		CHECK_EQ_SIZE(sb_req_answer(cases[i].reason, cases[i].status, out, n + 1), n);
	}
}

/* The header space asked of lws fits its field (an unsigned short). */
static void test_lws_space(void)
{
	CHECK(SB_REQ_LWS_HEADER_SPACE < 65535);
	CHECK(SB_REQ_LWS_HEADER_SPACE > SB_REQ_HEAD_MAX);
	/* the fragment table: target, '?', parameters, version, fields */
	CHECK(1 + SB_REQ_PARAMS_MAX + 1 + SB_REQ_FIELDS_MAX < 95);
}

/* ---- random ---- */

/* Good heads, with random bytes replaced, inserted or removed, fed whole and
 * cut at random: the same outcome every time, and no crash. */
static void test_random_mutations(void)
{
	static const char *const seeds[] = {
		UPGRADE_HEAD("/room?a=1&b=2", KEY V13),
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"HEAD /%41 HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};
	static const char alphabet[] = "\r\n :,;&?%0123456789abcdefABCDEF=/GETHP\t\x01\x80";
	struct check_rng rng;
	char buf[512];

	check_rng_init(&rng, check_seed(7));
	for (int round = 0; round < 20000; round++) {
		const char *s = seeds[check_rng_below(&rng, 4)];
		size_t n = strlen(s), cuts[3];
		int edits = 1 + (int)check_rng_below(&rng, 3);
		struct outcome whole, part;

		memcpy(buf, s, n);
		for (int e = 0; e < edits && n > 1 && n < sizeof(buf) - 1; e++) {
			size_t at = check_rng_below(&rng, (uint32_t)n);
			char b = alphabet[check_rng_below(&rng, sizeof(alphabet) - 1)];

			switch (check_rng_below(&rng, 3)) {
			case 0:
				buf[at] = b;
				break;
			case 1:
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = b;
				n++;
				break;
			default:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			}
		}
		whole = feed_cut(buf, n, NULL, 0);
		for (int k = 0; k < 3; k++)
			cuts[k] = check_rng_below(&rng, (uint32_t)n + 1);
		if (cuts[0] > cuts[1]) {
			size_t t = cuts[0];
			cuts[0] = cuts[1];
			cuts[1] = t;
		}
		if (cuts[1] > cuts[2]) {
			size_t t = cuts[1];
			cuts[1] = cuts[2];
			cuts[2] = t;
		}
		if (cuts[0] > cuts[1]) {
			size_t t = cuts[0];
			cuts[0] = cuts[1];
			cuts[1] = t;
		}
		part = feed_cut(buf, n, cuts, 3);
		check_same(whole, part, "a mutation", cuts[0]);
		if (whole.v == SB_REQ_REFUSE) {
			struct sb_reqcheck c;
			size_t used;
			char out[SB_REQ_ANSWER_MAX];

			sb_reqcheck_init(&c);
			sb_reqcheck_feed(&c, buf, n, &used);
			CHECK(sb_reqcheck_answer(&c, out, sizeof(out)) > 0);
		}
	}
}

/* Random bytes: never a crash, and never an accepted head that does not end
 * in CRLF CRLF. */
static void test_random_bytes(void)
{
	struct check_rng rng;
	unsigned char buf[256];

	check_rng_init(&rng, 99);
	for (int round = 0; round < 20000; round++) {
		size_t n = check_rng_below(&rng, sizeof(buf));
		struct outcome o;

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)check_rng_below(&rng, 256);
		if (n > 4 && round % 2)
			memcpy(buf, "GET ", 4);
		o = feed_cut((const char *)buf, n, NULL, 0);
		if (o.v == SB_REQ_HEAD)
			CHECK(o.at >= 4 && !memcmp(buf + o.at - 4, "\r\n\r\n", 4));
	}
}

int main(void)
{
	RUN_TEST(test_good_heads);
	RUN_TEST(test_keep_alive);
	RUN_TEST(test_methods);
	RUN_TEST(test_h2_preface);
	RUN_TEST(test_targets);
	RUN_TEST(test_versions);
	RUN_TEST(test_header_syntax);
	RUN_TEST(test_head_size);
	RUN_TEST(test_field_count);
	RUN_TEST(test_framing);
	RUN_TEST(test_upgrades);
	RUN_TEST(test_websocket_version);
	RUN_TEST(test_websocket_key);
	RUN_TEST(test_answers);
	RUN_TEST(test_transport_answers);
	RUN_TEST(test_lws_space);
	RUN_TEST(test_random_mutations);
	RUN_TEST(test_random_bytes);
	return check_summary();
}
