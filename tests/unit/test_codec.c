/*
 * The codec: how client messages are classified (bad_json, bad_message,
 * unknown_type), the member checks of docs/protocol.md "Validation", the relayed
 * event (identity stamped by the server, the rest of the payload kept), and
 * the events the server builds itself.  Output is parsed back with json-c.
 */
#include "check.h"

#include "sb_codec.h"
#include "sb_msg.h"
#include "sb_proto.h"

#include <json-c/json.h>

#define WHY_LEN 256

/* Parses text (its whole length) and returns the class; the request and
 * reason are left for the caller, who must call sb_codec_done. */
/* sb_codec_relay with the stamp a worker makes at join. */
static struct sb_msg *relay_as(struct sb_codec *c, struct sb_request *req,
			       const char *id, size_t id_len,
			       const char *nick, size_t nick_len)
{
	size_t stamp_len = 0;
	char *stamp = sb_codec_stamp(id, id_len, nick, nick_len, &stamp_len);
	struct sb_msg *m;

	CHECK(stamp != NULL);
	CHECK_EQ_SIZE(strlen(stamp), stamp_len);
	m = sb_codec_relay(c, req, stamp, stamp_len);
	free(stamp);
	return m;
}

static enum sb_err parse_n(struct sb_codec *c, const char *text, size_t len,
			   struct sb_request *req, char *why)
{
	why[0] = '\0';
	return sb_codec_parse(c, text, len, req, why, WHY_LEN);
}

static enum sb_err parse_s(struct sb_codec *c, const char *text,
			   struct sb_request *req, char *why)
{
	return parse_n(c, text, strlen(text), req, why);
}

/* Expects text to parse as class want; a refusal must give a reason. */
static void expect_parse_n(struct sb_codec *c, const char *text, size_t len,
			   enum sb_err want)
{
	struct sb_request req;
	char why[WHY_LEN];
	enum sb_err got = parse_n(c, text, len, &req, why);

	if (got != want) {
		check_print_bytes("message", text, len);
		fprintf(stderr, "  why: %s\n", why);
	}
	CHECK_EQ_INT(got, want);
	if (want != SB_ERR_NONE)
		CHECK(why[0] != '\0');
	sb_codec_done(c, &req);
}

static void expect_parse(struct sb_codec *c, const char *text, enum sb_err want)
{
	expect_parse_n(c, text, strlen(text), want);
}

/* Expects text to parse and its members to check as want. */
static void expect_check(struct sb_codec *c, const char *text, enum sb_err want)
{
	struct sb_request req;
	char why[WHY_LEN];
	enum sb_err got = parse_n(c, text, strlen(text), &req, why);

	if (got != SB_ERR_NONE)
		fprintf(stderr, "  %s\n  parse: %s\n", text, why);
	CHECK_EQ_INT(got, SB_ERR_NONE);
	why[0] = '\0';
	got = sb_codec_check(c, &req, why, WHY_LEN);
	if (got != want)
		fprintf(stderr, "  %s\n  check: %s\n", text, why);
	CHECK_EQ_INT(got, want);
	if (want != SB_ERR_NONE)
		CHECK(why[0] != '\0');
	sb_codec_done(c, &req);
}

/* Parses exactly len bytes as one JSON object (for the server's output). */
static struct json_object *parse_exact(const char *p, size_t len)
{
	/* deeper than the codec's limit: json-c counts scalars as levels */
	struct json_tokener *tok = json_tokener_new_ex(2 * SB_JSON_MAX_DEPTH);
	struct json_object *o;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, p, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		check_print_bytes("output", p, len);
		CHECK(!"the output is exactly one strict JSON value");
	}
	json_tokener_free(tok);
	CHECK(json_object_is_type(o, json_type_object));
	return o;
}

/* Parses exactly len bytes as one JSON value of any kind. */
static struct json_object *parse_exact_value(const char *p, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, p, (int)len);
	/* a lone string is complete only at the end of the input */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	CHECK(o != NULL);
	json_tokener_free(tok);
	return o;
}

static struct json_object *parse_text(const char *text)
{
	return parse_exact(text, strlen(text));
}

static void check_str_member(struct json_object *o, const char *name,
			     const char *want, size_t want_len)
{
	struct json_object *v;

	CHECK(json_object_object_get_ex(o, name, &v));
	CHECK(json_object_is_type(v, json_type_string));
	CHECK_EQ_MEM(json_object_get_string(v),
		     (size_t)json_object_get_string_len(v), want, want_len);
}

/*
 * Builds {"type":"ping","x":...} nested to levels containers, the outer
 * object being level 1: arrays or objects ({"a":...}) down to an innermost
 * container that is empty, or holds the number 1 when scalar is set.
 */
static char *nested(int levels, bool objects, bool scalar)
{
	size_t cap = (size_t)levels * 8 + 64, n = 0;
	char *s = malloc(cap);

	CHECK(s != NULL);
	CHECK(levels >= 2);
	n += (size_t)snprintf(s + n, cap - n, "{\"type\":\"ping\",\"x\":");
	for (int i = 2; i < levels; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s", objects ? "{\"a\":" : "[");
	if (objects)
		n += (size_t)snprintf(s + n, cap - n, "%s", scalar ? "{\"a\":1}" : "{}");
	else
		n += (size_t)snprintf(s + n, cap - n, "%s", scalar ? "[1]" : "[]");
	for (int i = 2; i < levels; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s", objects ? "}" : "]");
	n += (size_t)snprintf(s + n, cap - n, "}");
	CHECK(n < cap);
	return s;
}

static void test_not_json(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const bad[] = {
		"",
		" ",
		"{",
		"{\"type\":\"ping\"",
		"{\"type\":}",
		"{\"type\" \"ping\"}",
		"{'type':'ping'}",
		"{type:\"ping\"}",
		"{\"type\":\"ping\",}",
		"nope",
		"{\"type\":\"ping\"} // comment",
		"{\"type\":\"ping\",\"n\":NaN}",
		"{\"type\":\"ping\",\"n\":01}",
		"{\"type\":\"pi\xffng\"}",		/* not UTF-8 */
		"{\"type\":\"ping\",\"s\":\"\xc0\x80\"}",	/* overlong */
		"{\"type\":\"ping\",\"s\":\"\xed\xa0\x80\"}",	/* surrogate */
		"{\"type\":\"ping\",\"s\":\"a\x01\"}",	/* raw control char */
		"{\"type\":\"ping\",\"s\":\"a\tb\"}",	/* raw tab */
		"{\"type\":\"ping\",\"n\":Infinity}",
		"{\"type\":\"ping\",\"n\":-Infinity}",
		"{\"type\":\"ping\",\"n\":-}",
		"{\"type\":\"ping\",\"n\":+1}",
		"{\"type\":\"ping\",\"n\":.5}",
		"{\"type\":\"ping\",\"n\":1.}",
		"{\"type\":\"ping\",\"n\":1e}",
		"{\"type\":\"ping\",\"n\":0x10}",
		"{\"type\":\"ping\",\"n\":tru}",
		"{\"type\":\"ping\",\"n\":nul}",
		"{\"type\":\"ping\",\"s\":\"\\x41\"}",	/* no such escape */
		"{\"type\":\"ping\",\"s\":\"\\u12\"}",
		"{\"type\":\"ping\",\"s\":\"\\u12G4\"}",
		"{\"type\":\"ping\",\"s\":\"\\\"}",
		/* unpaired surrogate escapes */
		"{\"type\":\"ping\",\"s\":\"\\ud800\"}",
		"{\"type\":\"ping\",\"s\":\"\\udc00\"}",
		"{\"type\":\"ping\",\"s\":\"\\ud800x\"}",
		"{\"type\":\"ping\",\"s\":\"\\ud800\\u0041\"}",
		"{\"type\":\"ping\",\"s\":\"\\ud800\\ud800\"}",
		"{\"type\":\"ping\",\"s\":\"\\ude00\\ud83d\"}",
		"{\"type\":\"join\",\"id\":\"\\udbff\"}",
		"{\"type\":\"ping\",\"p\":{\"\\ud800\":1}}",
		/* structure */
		"{\"type\":\"ping\",\"a\":[1,]}",
		"{\"type\":\"ping\",\"a\":[1 2]}",
		"{\"type\":\"ping\",\"a\":{\"k\"}}",
		"{\"type\":\"ping\",\"a\":{1:2}}",
		"{\"type\":\"ping\",,\"a\":1}",
		"{,\"type\":\"ping\"}",
		"{\"type\":\"ping\"}}",
		"{\"type\":\"offer\",\"payload\":{\"a\":1,}}",
		"{\"type\":\"offer\",\"payload\":{\"a\"1}}",
		"{\"type\":\"offer\",\"payload\":{\"a\":}}",
		"{\"type\":\"offer\",\"payload\":{\"a\":1}",
	};

	CHECK(c != NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_parse(c, bad[i], SB_ERR_BAD_JSON);
	/* no raw control character in any string, key or value */
	for (int ch = 0; ch < 0x20; ch++) {
		char text[64];
		int n;

		n = snprintf(text, sizeof(text), "{\"type\":\"ping\",\"s\":\"a%cb\"}", 'X');
		text[n - 4] = (char)ch;
		expect_parse_n(c, text, (size_t)n, SB_ERR_BAD_JSON);
		n = snprintf(text, sizeof(text), "{\"type\":\"ping\",\"k%c\":1}", 'X');
		text[n - 5] = (char)ch;
		expect_parse_n(c, text, (size_t)n, SB_ERR_BAD_JSON);
	}
	/* an empty message reassembled from empty fragments has no buffer */
	{
		struct sb_request req;
		char why[WHY_LEN];

		CHECK_EQ_INT(sb_codec_parse(c, NULL, 0, &req, why, sizeof(why)),
			     SB_ERR_BAD_JSON);
		sb_codec_done(c, &req);
	}
	sb_codec_free(c);
}

/* What RFC 8259 allows is accepted, anywhere in the message. */
static void test_valid_json_forms(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const good[] = {
		"{\"type\":\"ping\",\"n\":[0,-0,1,-1,10,1.5,-0.25,1e3,1E+3,1e-3,12345678901234567890123]}",
		"{\"type\":\"ping\",\"l\":[true,false,null],\"o\":{},\"a\":[]}",
		"{\"type\":\"ping\",\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\uD83D\\uDE00\"}",
		"{\"type\":\"ping\",\"s\":\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"}",
		"{ \"type\" : \"ping\" , \"x\" : { \"y\" : [ 1 , { } ] } }",
		"\t\r\n {\"type\":\"ping\"}\n",
		"{\"\":1,\"type\":\"ping\"}",
		"{\"t\\u0079pe\":\"ping\"}",		/* escaped member name */
		"{\"type\":\"p\\u0069ng\"}",		/* escaped type */
		"{\"type\":\"join\",\"type\":\"ping\"}",	/* the last one wins */
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_parse(c, good[i], SB_ERR_NONE);
	/* duplicates: the last one counts */
	expect_parse(c, "{\"type\":\"ping\",\"type\":1}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":5,\"id\":\"a\"}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"id\":\"\"}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":1,\"payload\":{}}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"payload\":[]}", SB_ERR_BAD_MESSAGE);
	sb_codec_free(c);
}

static void test_trailing_bytes(void)
{
	struct sb_codec *c = sb_codec_new(128);

	expect_parse(c, "{\"type\":\"ping\"}", SB_ERR_NONE);
	expect_parse(c, "{\"type\":\"ping\"} \t\r\n ", SB_ERR_NONE);
	expect_parse(c, " \n{\"type\":\"ping\"}", SB_ERR_NONE);
	expect_parse(c, "{\"type\":\"ping\"}x", SB_ERR_BAD_JSON);
	expect_parse(c, "{\"type\":\"ping\"} x", SB_ERR_BAD_JSON);
	expect_parse(c, "{\"type\":\"ping\"}{}", SB_ERR_BAD_JSON);
	expect_parse(c, "{\"type\":\"ping\"}{\"type\":\"ping\"}", SB_ERR_BAD_JSON);
	expect_parse(c, "{\"type\":\"ping\"}]", SB_ERR_BAD_JSON);
	expect_parse(c, "{\"type\":\"ping\"} 1", SB_ERR_BAD_JSON);
	/* a NUL byte is not whitespace: the length given is what counts */
	expect_parse_n(c, "{\"type\":\"ping\"}\0", 16, SB_ERR_BAD_JSON);
	expect_parse_n(c, "{\"type\":\"ping\"} \0 ", 18, SB_ERR_BAD_JSON);
	/* and bytes past the length given are not read */
	expect_parse_n(c, "{\"type\":\"ping\"}garbage", 15, SB_ERR_NONE);
	expect_parse_n(c, "{\"type\":\"ping\"}", 14, SB_ERR_BAD_JSON);
	sb_codec_free(c);
}

static void test_not_an_object(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const values[] = {
		"[]", "[{\"type\":\"ping\"}]", "1", "-2.5", "\"x\"", "\"ping\"",
		"null", "true", "false",
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		expect_parse(c, values[i], SB_ERR_BAD_JSON);
	sb_codec_free(c);
}

static void test_nesting_limit(void)
{
	struct sb_codec *c = sb_codec_new(128);

	for (int objects = 0; objects < 2; objects++) {
		char *at = nested(SB_JSON_MAX_DEPTH, objects, false);
		char *over = nested(SB_JSON_MAX_DEPTH + 1, objects, false);
		char *over_full = nested(SB_JSON_MAX_DEPTH + 1, objects, true);
		char *far = nested(SB_JSON_MAX_DEPTH + 50, objects, true);
		char *below = nested(SB_JSON_MAX_DEPTH - 1, objects, true);
		char *at_full = nested(SB_JSON_MAX_DEPTH, objects, true);

		/* a value inside the level-32 container is not a level */
		expect_parse(c, at_full, SB_ERR_NONE);
		free(at_full);
		expect_parse(c, at, SB_ERR_NONE);
		expect_parse(c, below, SB_ERR_NONE);
		expect_parse(c, over, SB_ERR_BAD_JSON);
		expect_parse(c, over_full, SB_ERR_BAD_JSON);
		expect_parse(c, far, SB_ERR_BAD_JSON);
		/* the codec is fine afterwards */
		expect_parse(c, at, SB_ERR_NONE);
		free(at);
		free(over);
		free(over_full);
		free(far);
		free(below);
	}

	/* inside a payload (level 2) the same count applies, and the relayed
	 * event carries the nesting unchanged */
	for (int levels = SB_JSON_MAX_DEPTH; levels <= SB_JSON_MAX_DEPTH + 1; levels++) {
		char text[512];
		size_t n = 0;
		struct sb_request req;
		char why[WHY_LEN];

		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "{\"type\":\"message\",\"payload\":{\"x\":");
		for (int i = 3; i <= levels; i++)
			text[n++] = '[';
		text[n++] = '1';
		for (int i = 3; i <= levels; i++)
			text[n++] = ']';
		n += (size_t)snprintf(text + n, sizeof(text) - n, "}}");
		if (levels > SB_JSON_MAX_DEPTH) {
			expect_parse(c, text, SB_ERR_BAD_JSON);
			continue;
		}
		CHECK_EQ_INT(parse_n(c, text, n, &req, why), SB_ERR_NONE);
		CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
		{
			struct sb_msg *m = relay_as(c, &req, "a", 1, "", 0);

			CHECK(m != NULL);
			json_object_put(parse_exact(m->data, m->len));
			sb_msg_unref(m);
		}
		sb_codec_done(c, &req);
	}
	sb_codec_free(c);
}

static void test_type_member(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const struct {
		const char *name;
		enum sb_type type;
	} known[] = {
		/* docs/protocol.md, "Sending" */
		{ "join", SB_TYPE_JOIN },
		{ "offer", SB_TYPE_OFFER },
		{ "answer", SB_TYPE_ANSWER },
		{ "icecandidate", SB_TYPE_ICECANDIDATE },
		{ "message", SB_TYPE_MESSAGE },
		{ "leave", SB_TYPE_LEAVE },
		{ "ping", SB_TYPE_PING },
	};
	struct sb_request req;
	char why[WHY_LEN], text[128];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		snprintf(text, sizeof(text), "{\"x\":1,\"type\":\"%s\",\"y\":[]}",
			 known[i].name);
		CHECK_EQ_INT(parse_n(c, text, strlen(text), &req, why), SB_ERR_NONE);
		CHECK_EQ_INT(req.type, known[i].type);
		CHECK_EQ_MEM(req.type_str, req.type_len, known[i].name,
			     strlen(known[i].name));
		sb_codec_done(c, &req);
	}

	/* missing or not a string: bad_message, no type_str */
	static const char *const no_type[] = {
		"{}",
		"{\"Type\":\"ping\"}",
		"{\"type\":null}",
		"{\"type\":1}",
		"{\"type\":true}",
		"{\"type\":[\"ping\"]}",
		"{\"type\":{\"ping\":1}}",
		"{\"payload\":{\"type\":\"ping\"}}",
	};
	for (size_t i = 0; i < sizeof(no_type) / sizeof(no_type[0]); i++) {
		CHECK_EQ_INT(parse_n(c, no_type[i], strlen(no_type[i]), &req, why),
			     SB_ERR_BAD_MESSAGE);
		CHECK(why[0] != '\0');
		CHECK(req.type_str == NULL);
		CHECK_EQ_INT(req.type, SB_TYPE_NONE);
		sb_codec_done(c, &req);
	}

	/* a string naming no type: unknown_type, with the string for ref */
	static const struct {
		const char *text;
		const char *type;
		size_t type_len;
	} unknown[] = {
		{ "{\"type\":\"hello\"}", "hello", 5 },
		{ "{\"type\":\"\"}", "", 0 },
		{ "{\"type\":\"JOIN\"}", "JOIN", 4 },
		{ "{\"type\":\"join \"}", "join ", 5 },
		{ "{\"type\":\"joi\"}", "joi", 3 },
		{ "{\"type\":\"joined\"}", "joined", 6 },
		{ "{\"type\":\"join\\u0000\"}", "join\0", 5 },
		{ "{\"type\":\"pong\"}", "pong", 4 },
		{ "{\"type\":\"error\"}", "error", 5 },
		{ "{\"type\":\"q\\\"uote\"}", "q\"uote", 6 },
	};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		CHECK_EQ_INT(parse_n(c, unknown[i].text, strlen(unknown[i].text),
				     &req, why),
			     SB_ERR_UNKNOWN_TYPE);
		CHECK(why[0] != '\0');
		CHECK_EQ_INT(req.type, SB_TYPE_NONE);
		CHECK(req.type_str != NULL);
		CHECK_EQ_MEM(req.type_str, req.type_len, unknown[i].type,
			     unknown[i].type_len);
		sb_codec_done(c, &req);
	}
	/* bad_json wins over a bad type */
	expect_parse(c, "{\"type\":1", SB_ERR_BAD_JSON);
	sb_codec_free(c);
}

/* A failed parse does not poison the next one. */
static void test_codec_reuse(void)
{
	struct sb_codec *c = sb_codec_new(128);

	for (int i = 0; i < 100; i++) {
		expect_parse(c, "{\"type\":\"pi", SB_ERR_BAD_JSON);
		expect_parse(c, "ng\"}", SB_ERR_BAD_JSON);
		expect_parse(c, "{\"type\":\"ping\"}", SB_ERR_NONE);
		expect_parse(c, "[[[[", SB_ERR_BAD_JSON);
		expect_check(c, "{\"type\":\"join\",\"id\":\"a\"}", SB_ERR_NONE);
	}
	sb_codec_free(c);
	sb_codec_free(NULL);
}

static void test_join_members(void)
{
	struct sb_codec *c = sb_codec_new(128);
	struct sb_request req;
	char why[WHY_LEN];
	static const char full[] =
		"{\"type\":\"join\",\"id\":\"a\\\"b\\\\c\",\"nick\":\"N\\u00e9\","
		"\"room\":\"r\\/1\",\"token\":\"ignored\",\"extra\":[1]}";

	/* decoded values, not the escapes */
	CHECK_EQ_INT(parse_n(c, full, strlen(full), &req, why), SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	CHECK(req.id.present && req.nick.present && req.room.present);
	CHECK_EQ_MEM(req.id.p, req.id.len, "a\"b\\c", 5);
	CHECK_EQ_MEM(req.nick.p, req.nick.len, "N\xc3\xa9", 3);
	CHECK_EQ_MEM(req.room.p, req.room.len, "r/1", 3);
	sb_codec_done(c, &req);

	/* escapes of every length decode to UTF-8 */
	CHECK_EQ_INT(parse_s(c, "{\"type\":\"join\",\"id\":\"\\u0041\\u00e9\\u20ac\\uD83D\\uDE00\\udbff\\udfff\","
			     "\"nick\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"room\":\"\\u0000\"}",
			     &req, why),
		     SB_ERR_NONE);
	CHECK_EQ_MEM(req.id.p, req.id.len,
		     "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 14);
	CHECK_EQ_MEM(req.nick.p, req.nick.len, "\"\\/\b\f\n\r\t", 8);
	CHECK_EQ_MEM(req.room.p, req.room.len, "\0", 1);
	sb_codec_done(c, &req);

	/* optional members absent */
	CHECK_EQ_INT(parse_s(c, "{\"type\":\"join\",\"id\":\"x\"}", &req, why),
		     SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	CHECK(req.id.present);
	CHECK(!req.nick.present);
	CHECK(!req.room.present);
	sb_codec_done(c, &req);

	/* an empty nick is a nick */
	CHECK_EQ_INT(parse_s(c, "{\"type\":\"join\",\"id\":\"x\",\"nick\":\"\"}",
			     &req, why),
		     SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	CHECK(req.nick.present);
	CHECK_EQ_SIZE(req.nick.len, 0);
	sb_codec_done(c, &req);

	/* id: required, a string, not empty */
	expect_check(c, "{\"type\":\"join\"}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"nick\":\"n\",\"room\":\"r\"}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"\"}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":null}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":7}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":[\"a\"]}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":{}}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":true}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\" \"}", SB_ERR_NONE);

	/* nick: optional, a string when present, may be empty */
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"nick\":null}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"nick\":3}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"nick\":false}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"nick\":{}}", SB_ERR_BAD_MESSAGE);

	/* room: optional, a non-empty string when present */
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"room\":\"\"}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"room\":null}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"room\":1}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"room\":[]}", SB_ERR_BAD_MESSAGE);

	/* token: optional, a string of any length and content when present
	 * (the token rules judge those: unauthorized, not bad_message) */
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"token\":\"\"}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"token\":\"a\\u0001b\"}",
		     SB_ERR_NONE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"token\":null}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"token\":5}", SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"join\",\"id\":\"a\",\"token\":{}}", SB_ERR_BAD_MESSAGE);
	sb_codec_free(c);
}

/* Builds a join whose member name holds value (a JSON string body). */
static void expect_join_field(struct sb_codec *c, const char *member,
			      const char *value, enum sb_err want)
{
	char text[1024];

	if (!strcmp(member, "id"))
		snprintf(text, sizeof(text), "{\"type\":\"join\",\"id\":\"%s\"}", value);
	else
		snprintf(text, sizeof(text),
			 "{\"type\":\"join\",\"id\":\"ok\",\"%s\":\"%s\"}", member,
			 value);
	expect_check(c, text, want);
}

/* The length limit is in bytes after JSON escapes are decoded. */
static void test_field_length(void)
{
	struct sb_codec *c = sb_codec_new(8);
	static const char *const members[] = { "id", "nick", "room" };

	for (size_t i = 0; i < 3; i++) {
		const char *mb = members[i];

		expect_join_field(c, mb, "12345678", SB_ERR_NONE);
		expect_join_field(c, mb, "123456789", SB_ERR_BAD_MESSAGE);
		/* \u00e9 is two bytes of UTF-8: 6 + 2 fits, 7 + 2 does not */
		expect_join_field(c, mb, "123456\\u00e9", SB_ERR_NONE);
		expect_join_field(c, mb, "1234567\\u00e9", SB_ERR_BAD_MESSAGE);
		/* a raw two-byte character counts the same */
		expect_join_field(c, mb, "123456\xc3\xa9", SB_ERR_NONE);
		expect_join_field(c, mb, "1234567\xc3\xa9", SB_ERR_BAD_MESSAGE);
		/* escapes of ASCII count as one byte each */
		expect_join_field(c, mb, "\\u0041\\u0042\\u0043\\u0044\\u0045\\u0046\\u0047\\u0048",
				  SB_ERR_NONE);
		expect_join_field(c, mb, "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\", SB_ERR_NONE);
		expect_join_field(c, mb, "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\", SB_ERR_BAD_MESSAGE);
		/* a four-byte character by surrogate pair: 4 + 4 fits */
		expect_join_field(c, mb, "1234\\ud83d\\ude00", SB_ERR_NONE);
		expect_join_field(c, mb, "12345\\ud83d\\ude00", SB_ERR_BAD_MESSAGE);
	}
	/* receiverId has the same limit */
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"12345678\"}",
		     SB_ERR_NONE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"123456789\"}",
		     SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"answer\",\"payload\":{},\"receiverId\":\"1234567\\u00e9\"}",
		     SB_ERR_BAD_MESSAGE);
	sb_codec_free(c);
}

/* No control character (U+0000-U+001F, U+007F) in id, nick, room or
 * receiverId, escaped or raw; U+0080 and above are fine. */
static void test_control_characters(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const members[] = { "id", "nick", "room" };

	for (size_t i = 0; i < 3; i++) {
		const char *mb = members[i];
		char value[32];

		for (unsigned ch = 0; ch < 0x20; ch++) {
			snprintf(value, sizeof(value), "a\\u%04x", ch);
			expect_join_field(c, mb, value, SB_ERR_BAD_MESSAGE);
			snprintf(value, sizeof(value), "\\u%04Xb", ch);
			expect_join_field(c, mb, value, SB_ERR_BAD_MESSAGE);
		}
		expect_join_field(c, mb, "\\u0000", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\tb", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\nb", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\rb", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\bb", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\fb", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\\u007f", SB_ERR_BAD_MESSAGE);
		expect_join_field(c, mb, "a\x7f", SB_ERR_BAD_MESSAGE);	/* raw DEL */
		expect_join_field(c, mb, "\\u0080", SB_ERR_NONE);
		expect_join_field(c, mb, "\xc2\x80", SB_ERR_NONE);
		expect_join_field(c, mb, "\\u009f", SB_ERR_NONE);
		expect_join_field(c, mb, "\\u0020", SB_ERR_NONE);
		expect_join_field(c, mb, "~\\u007e", SB_ERR_NONE);
		expect_join_field(c, mb, "\\u2028\\ufeff", SB_ERR_NONE);
	}
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"a\\u0000\"}",
		     SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"a\\u001f\"}",
		     SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"a\\u007f\"}",
		     SB_ERR_BAD_MESSAGE);
	expect_check(c, "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"a\\u0080\"}",
		     SB_ERR_NONE);
	sb_codec_free(c);
}

static void test_relay_members(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const types[] = { "offer", "answer", "icecandidate",
					     "message" };
	struct sb_request req;
	char why[WHY_LEN], text[256];

	for (size_t i = 0; i < 4; i++) {
		const char *t = types[i];
		bool answer = !strcmp(t, "answer");

#define REL(fmt) (snprintf(text, sizeof(text), fmt, t), text)
		/* payload: required, an object */
		expect_check(c, REL("{\"type\":\"%s\",\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":null,\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":[],\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":[{}],\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":\"{}\",\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":1,\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":true,\"receiverId\":\"b\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverId\":\"b\"}"), SB_ERR_NONE);
		/* receiverId: required for answer only; when present a
		 * non-empty string */
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{}}"),
			     answer ? SB_ERR_BAD_MESSAGE : SB_ERR_NONE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverId\":\"\"}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverId\":null}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverId\":2}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverId\":[\"b\"]}"), SB_ERR_BAD_MESSAGE);
		expect_check(c, REL("{\"type\":\"%s\",\"payload\":{},\"receiverid\":\"b\"}"),
			     answer ? SB_ERR_BAD_MESSAGE : SB_ERR_NONE);
#undef REL

		/* the decoded receiverId */
		snprintf(text, sizeof(text),
			 "{\"type\":\"%s\",\"payload\":{\"a\":1},\"receiverId\":\"b\\\"\\u00e9\"}", t);
		CHECK_EQ_INT(parse_n(c, text, strlen(text), &req, why), SB_ERR_NONE);
		CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
		CHECK(req.receiver.present);
		CHECK_EQ_MEM(req.receiver.p, req.receiver.len, "b\"\xc3\xa9", 4);
		sb_codec_done(c, &req);

		snprintf(text, sizeof(text), "{\"type\":\"%s\",\"payload\":{}}", t);
		if (!answer) {
			CHECK_EQ_INT(parse_n(c, text, strlen(text), &req, why), SB_ERR_NONE);
			CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
			CHECK(!req.receiver.present);
			sb_codec_done(c, &req);
		}
	}
	/* leave and ping need nothing and ignore what they carry */
	expect_check(c, "{\"type\":\"leave\"}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"leave\",\"id\":5,\"payload\":[]}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"ping\"}", SB_ERR_NONE);
	expect_check(c, "{\"type\":\"ping\",\"payload\":null}", SB_ERR_NONE);
	sb_codec_free(c);
}

/*
 * The member names of the event's payload object as they stand in the raw
 * text, decoded, duplicates and all (json-c keeps only the last of equal
 * names, which would hide a second "id").  The text is valid JSON of the
 * form {"type":...,"payload":{...}}: the payload's names are the strings at
 * nesting level 2 that are followed by a colon.  Returns how many.
 */
enum { MAX_KEYS = 64, MAX_KEY = 64 };

static int raw_payload_keys(const char *p, size_t len, char keys[][MAX_KEY],
			    size_t *key_lens)
{
	int depth = 0, n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '"') {
			size_t j = i + 1, k;

			while (p[j] != '"')
				j += p[j] == '\\' ? 2 : 1;
			k = j + 1;
			while (k < len && (p[k] == ' ' || p[k] == '\t' ||
					   p[k] == '\n' || p[k] == '\r'))
				k++;
			if (depth == 2 && k < len && p[k] == ':') {
				struct json_object *o = parse_exact_value(p + i, j + 1 - i);

				CHECK(n < MAX_KEYS);
				CHECK(json_object_get_string_len(o) < MAX_KEY);
				key_lens[n] = (size_t)json_object_get_string_len(o);
				memcpy(keys[n], json_object_get_string(o), key_lens[n]);
				n++;
				json_object_put(o);
			}
			i = j;
		} else if (p[i] == '{' || p[i] == '[') {
			depth++;
		} else if (p[i] == '}' || p[i] == ']') {
			depth--;
		}
	}
	return n;
}

/* The payload names exactly once each, with one "id" and one "nick". */
static void check_no_duplicate_names(const struct sb_msg *m)
{
	char keys[MAX_KEYS][MAX_KEY];
	size_t lens[MAX_KEYS];
	int n = raw_payload_keys(m->data, m->len, keys, lens), ids = 0, nicks = 0;

	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			if (lens[i] == lens[j] && !memcmp(keys[i], keys[j], lens[i])) {
				check_print_bytes("event", m->data, m->len);
				check_print_bytes("name twice", keys[i], lens[i]);
				CHECK(!"each payload name once");
			}
		}
		ids += lens[i] == 2 && !memcmp(keys[i], "id", 2);
		nicks += lens[i] == 4 && !memcmp(keys[i], "nick", 4);
	}
	CHECK_EQ_INT(ids, 1);
	CHECK_EQ_INT(nicks, 1);
}

/*
 * Relays text (checked) from sender (id, nick) and checks the event: valid
 * strict JSON, {"type": type, "payload": P} where P is the input payload
 * with "id" and "nick" replaced by the sender's.
 */
static void expect_relay(struct sb_codec *c, const char *text,
			 const char *id, size_t id_len, const char *nick,
			 size_t nick_len)
{
	struct sb_request req;
	char why[WHY_LEN];
	struct sb_msg *m;
	struct json_object *in, *in_payload, *want, *out, *out_payload;
	const char *type;

	CHECK_EQ_INT(parse_n(c, text, strlen(text), &req, why), SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	type = sb_type_names[req.type];
	m = relay_as(c, &req, id, id_len, nick, nick_len);
	CHECK(m != NULL);
	sb_codec_done(c, &req);

	/* what the payload should be, built independently */
	in = parse_text(text);
	CHECK(json_object_object_get_ex(in, "payload", &in_payload));
	want = json_object_get(in_payload);
	json_object_object_del(want, "id");
	json_object_object_del(want, "nick");
	json_object_object_add(want, "id", json_object_new_string_len(id, (int)id_len));
	json_object_object_add(want, "nick",
			       json_object_new_string_len(nick, (int)nick_len));

	out = parse_exact(m->data, m->len);
	check_no_duplicate_names(m);
	CHECK_EQ_INT(json_object_object_length(out), 2);
	check_str_member(out, "type", type, strlen(type));
	CHECK(json_object_object_get_ex(out, "payload", &out_payload));
	CHECK(json_object_is_type(out_payload, json_type_object));
	check_str_member(out_payload, "id", id, id_len);
	check_str_member(out_payload, "nick", nick, nick_len);
	if (!json_object_equal(out_payload, want)) {
		fprintf(stderr, "  want %s\n", json_object_to_json_string(want));
		check_print_bytes("got", m->data, m->len);
		CHECK(!"payload kept apart from id and nick");
	}
	json_object_put(want);
	json_object_put(in);
	json_object_put(out);
	sb_msg_unref(m);
}

static void test_relay_output(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const texts[] = {
		"{\"type\":\"offer\",\"payload\":{}}",
		"{\"type\":\"offer\",\"payload\":{\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n\",\"type\":\"offer\"}}",
		"{\"type\":\"answer\",\"receiverId\":\"a\",\"payload\":{\"id\":\"mallory\",\"nick\":\"M\",\"sdp\":\"x\"}}",
		"{\"type\":\"icecandidate\",\"payload\":{\"candidate\":{\"candidate\":\"candidate:1 1 udp 2122260223 10.0.0.1 54321 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":null}}}",
		"{\"type\":\"message\",\"payload\":{\"id\":\"x\"}}",
		"{\"type\":\"message\",\"payload\":{\"nick\":\"x\"}}",
		"{\"type\":\"message\",\"payload\":{\"id\":{\"deep\":[1,2]},\"nick\":null}}",
		"{\"type\":\"message\",\"payload\":{\"text\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\u0001\",\"n\":[1,-2,3.5,1e3,true,false,null,{},[]],\"o\":{\"id\":\"inner ids are kept\",\"nick\":\"so are nicks\"}}}",
		"{\"type\":\"message\",\"payload\":{\"Id\":\"case matters\",\"ID\":1,\"nickname\":\"kept\"}}",
		"{\"type\":\"offer\",\"payload\":{\"a\":1},\"id\":\"top-level id is not the sender\"}",
		"{\"type\":\"message\",\"payload\":{\"s\":\"a\\u0000b\",\"k\\u0000ey\":0.1,\"id\\u0000\":\"not the id member\"}}",
		/* names spelled with escapes are still "id" and "nick" */
		"{\"type\":\"message\",\"payload\":{\"\\u0069d\":\"mallory\",\"ni\\u0063k\":\"M\",\"x\":1}}",
		"{\"type\":\"offer\",\"payload\":{\"\\u0069\\u0064\":{},\"\\u006e\\u0069\\u0063\\u006b\":[]}}",
		/* twice, or more */
		"{\"type\":\"message\",\"payload\":{\"id\":\"a\",\"x\":1,\"id\":\"b\",\"nick\":1,\"nick\":2,\"id\":null}}",
		/* spacing around the names */
		"{\"type\":\"message\",\"payload\":{ \"id\" : \"a\" , \"k\" : 1 , \"nick\"\t:\n\"n\" }}",
		"{\"type\":\"message\",\"payload\":{\"payload\":{\"id\":\"inner\"},\"type\":\"x\"}}",
		/* a repeated payload: the last one is the payload */
		"{\"type\":\"message\",\"payload\":{\"a\":1,\"id\":\"x\"},\"payload\":{\"b\":2}}",
		"{\"type\":\"message\",\"payload\":{\"a\":1},\"x\":0,\"payload\":{}}",
	};
	static const struct {
		const char *id;
		size_t id_len;
		const char *nick;
		size_t nick_len;
	} senders[] = {
		{ "alice", 5, "Alice", 5 },
		{ "b", 1, "", 0 },
		{ "q\"uo\\te", 7, "back\\slash \"and\" quotes", 23 },
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xf4\x8f\xbf\xbf", 4 },
		{ "</script>", 9, "tab\there", 8 },
	};

	for (size_t s = 0; s < sizeof(senders) / sizeof(senders[0]); s++)
		for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++)
			expect_relay(c, texts[t], senders[s].id, senders[s].id_len,
				     senders[s].nick, senders[s].nick_len);
	sb_codec_free(c);
}

/*
 * The payload's other members are copied byte for byte, in their order:
 * numbers keep their spelling, strings their escapes, nested "id" members
 * stay.
 */
static void test_relay_byte_for_byte(void)
{
	struct sb_codec *c = sb_codec_new(128);
	static const char *const members[] = {
		"\"sdp\":\"v=0\\r\\no=- 46117 2 IN IP4 127.0.0.1\\r\\n\"",
		"\"n\":1.10",
		"\"big\":123456789012345678901234",
		"\"neg\":-0",
		"\"e\":1E+2",
		"\"s\":\"caf\\u00e9 \\/ \\ud83d\\ude00 \xc3\xa9\"",
		"\"o\" : { \"id\" : 1 , \"a\":[1,  2] }",
		"\"k\\u0000ey\":null",
		"\"idx\":true",
		"\"Nick\":false",
	};
	enum { N = sizeof(members) / sizeof(members[0]) };
	char text[2048];
	struct sb_request req;
	char why[WHY_LEN];

	for (int variant = 0; variant < 3; variant++) {
		size_t n = 0;
		struct sb_msg *m;
		const char *from;

		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "{\"type\":\"icecandidate\",\"payload\":{");
		for (size_t i = 0; i < N; i++) {
			/* the sender's own id and nick, in various places */
			if (variant == 1 && i == 3)
				n += (size_t)snprintf(text + n, sizeof(text) - n,
						      "\"id\":\"me\",");
			if (variant == 2 && i == 0)
				n += (size_t)snprintf(text + n, sizeof(text) - n,
						      "\"nick\" : \"x\" ,");
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
					      members[i], i + 1 < N ? (variant ? " ,\n" : ",") : "");
		}
		if (variant == 1)
			n += (size_t)snprintf(text + n, sizeof(text) - n, ",\"nick\":\"x\"");
		n += (size_t)snprintf(text + n, sizeof(text) - n, "}}");
		CHECK(n < sizeof(text));

		CHECK_EQ_INT(parse_n(c, text, n, &req, why), SB_ERR_NONE);
		CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
		m = relay_as(c, &req, "a", 1, "b", 1);
		sb_codec_done(c, &req);
		CHECK(m != NULL);
		check_no_duplicate_names(m);
		json_object_put(parse_exact(m->data, m->len));
		/* each member verbatim, after the one before it */
		from = m->data;
		for (size_t i = 0; i < N; i++) {
			const char *at = memmem(from, (size_t)(m->data + m->len - from),
						members[i], strlen(members[i]));

			if (!at) {
				check_print_bytes("event", m->data, m->len);
				check_print_bytes("member", members[i], strlen(members[i]));
				CHECK(!"member copied verbatim and in order");
			}
			from = at + strlen(members[i]);
		}
		sb_msg_unref(m);
	}
	sb_codec_free(c);
}

/* Relayed events are copies: the codec's scratch space is reused. */
static void test_relay_messages_are_independent(void)
{
	struct sb_codec *c = sb_codec_new(128);
	struct sb_request req;
	char why[WHY_LEN];
	struct sb_msg *first, *second;
	char *saved;
	static const char a[] = "{\"type\":\"offer\",\"payload\":{\"n\":1}}";
	static const char b[] =
		"{\"type\":\"message\",\"payload\":{\"long\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}";

	CHECK_EQ_INT(parse_n(c, a, strlen(a), &req, why), SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	first = relay_as(c, &req, "one", 3, "1", 1);
	sb_codec_done(c, &req);
	CHECK(first != NULL);
	saved = malloc(first->len);
	memcpy(saved, first->data, first->len);

	CHECK_EQ_INT(parse_n(c, b, strlen(b), &req, why), SB_ERR_NONE);
	CHECK_EQ_INT(sb_codec_check(c, &req, why, WHY_LEN), SB_ERR_NONE);
	second = relay_as(c, &req, "two", 3, "2", 1);
	sb_codec_done(c, &req);
	CHECK(second != NULL);

	CHECK_EQ_MEM(first->data, first->len, saved, first->len);
	CHECK_EQ_INT(atomic_load(&first->refs), 1);
	free(saved);
	sb_msg_unref(first);
	sb_msg_unref(second);
	sb_codec_free(c);
}

static void test_event_error(void)
{
	/* docs/protocol.md, "Errors" */
	static const struct {
		enum sb_err code;
		const char *name;
	} codes[] = {
		{ SB_ERR_BAD_JSON, "bad_json" },
		{ SB_ERR_BAD_MESSAGE, "bad_message" },
		{ SB_ERR_UNKNOWN_TYPE, "unknown_type" },
		{ SB_ERR_NOT_JOINED, "not_joined" },
		{ SB_ERR_ALREADY_JOINED, "already_joined" },
		{ SB_ERR_ID_TAKEN, "id_taken" },
		{ SB_ERR_ROOM_FULL, "room_full" },
		{ SB_ERR_PEER_NOT_FOUND, "peer_not_found" },
		{ SB_ERR_UNAUTHORIZED, "unauthorized" },
		{ SB_ERR_RATE_LIMITED, "rate_limited" },
		{ SB_ERR_UNAVAILABLE, "unavailable" },
	};

	CHECK_EQ_INT(SB_ERR_COUNT, sizeof(codes) / sizeof(codes[0]));
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		static const char message[] = "it said \"no\" \\ twice\n";
		struct sb_msg *m;
		struct json_object *o, *p;

		/* with a ref */
		m = sb_event_error(codes[i].code, message, "of\"fer\\", 7);
		CHECK(m != NULL);
		o = parse_exact(m->data, m->len);
		CHECK_EQ_INT(json_object_object_length(o), 2);
		check_str_member(o, "type", "error", 5);
		CHECK(json_object_object_get_ex(o, "payload", &p));
		CHECK_EQ_INT(json_object_object_length(p), 3);
		check_str_member(p, "code", codes[i].name, strlen(codes[i].name));
		check_str_member(p, "message", message, strlen(message));
		check_str_member(p, "ref", "of\"fer\\", 7);
		json_object_put(o);
		sb_msg_unref(m);

		/* an empty ref is still a ref */
		m = sb_event_error(codes[i].code, "m", "", 0);
		o = parse_exact(m->data, m->len);
		CHECK(json_object_object_get_ex(o, "payload", &p));
		check_str_member(p, "ref", "", 0);
		json_object_put(o);
		sb_msg_unref(m);

		/* without: no ref member at all */
		m = sb_event_error(codes[i].code, "plain", NULL, 0);
		CHECK(m != NULL);
		o = parse_exact(m->data, m->len);
		CHECK(json_object_object_get_ex(o, "payload", &p));
		CHECK_EQ_INT(json_object_object_length(p), 2);
		check_str_member(p, "code", codes[i].name, strlen(codes[i].name));
		check_str_member(p, "message", "plain", 5);
		CHECK(!json_object_object_get_ex(p, "ref", NULL));
		json_object_put(o);
		sb_msg_unref(m);
	}
	/* the wire names come from the same table */
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		CHECK_EQ_STR(sb_err_names[codes[i].code], codes[i].name);
}

static void test_event_peer_and_pong(void)
{
	static const char id[] = "i\"d\\\xc3\xa9";
	static const char nick[] = "n\x01\n";	/* escaped, whatever it holds */
	struct sb_msg *m;
	struct json_object *o, *p, *want;

	for (int k = 0; k < 2; k++) {
		const char *type = k ? "leave" : "join";

		m = sb_event_peer(type, id, sizeof(id) - 1, nick, sizeof(nick) - 1);
		CHECK(m != NULL);
		o = parse_exact(m->data, m->len);
		CHECK_EQ_INT(json_object_object_length(o), 2);
		check_str_member(o, "type", type, strlen(type));
		CHECK(json_object_object_get_ex(o, "payload", &p));
		CHECK_EQ_INT(json_object_object_length(p), 2);
		check_str_member(p, "id", id, sizeof(id) - 1);
		check_str_member(p, "nick", nick, sizeof(nick) - 1);
		json_object_put(o);
		sb_msg_unref(m);
	}
	m = sb_event_peer("join", "x", 1, "", 0);
	o = parse_exact(m->data, m->len);
	CHECK(json_object_object_get_ex(o, "payload", &p));
	check_str_member(p, "nick", "", 0);
	json_object_put(o);
	sb_msg_unref(m);

	m = sb_event_pong();
	CHECK(m != NULL);
	o = parse_exact(m->data, m->len);
	want = parse_text("{\"type\":\"pong\",\"payload\":{}}");
	CHECK(json_object_equal(o, want));
	json_object_put(o);
	json_object_put(want);
	CHECK_EQ_INT(atomic_load(&m->refs), 1);
	sb_msg_unref(m);
}

int main(void)
{
	RUN_TEST(test_not_json);
	RUN_TEST(test_valid_json_forms);
	RUN_TEST(test_trailing_bytes);
	RUN_TEST(test_not_an_object);
	RUN_TEST(test_nesting_limit);
	RUN_TEST(test_type_member);
	RUN_TEST(test_codec_reuse);
	RUN_TEST(test_join_members);
	RUN_TEST(test_field_length);
	RUN_TEST(test_control_characters);
	RUN_TEST(test_relay_members);
	RUN_TEST(test_relay_output);
	RUN_TEST(test_relay_byte_for_byte);
	RUN_TEST(test_relay_messages_are_independent);
	RUN_TEST(test_event_error);
	RUN_TEST(test_event_peer_and_pong);
	return check_summary();
}
