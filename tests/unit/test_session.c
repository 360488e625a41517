/*
 * The session, driven the way the transport drives it (src/transport.c,
 * src/sock.c) but without a socket: pieces of messages go in through
 * sb_session_receive(), and what comes out is read off each connection's
 * queue and parsed with json-c, as a client would.  A real registry and a
 * real codec (set to expect checked UTF-8, as the worker sets it) are
 * behind it, so that every path of docs/protocol.md is taken end to end:
 *
 *   - every error code, its `ref`, and the order of checks (rate limit,
 *     bad_json, type, unknown_type, joined state, members, id_taken,
 *     room_full, peer_not_found);
 *   - join, leave and rejoin with their rosters and events, relays
 *     targeted and broadcast with the sender's stamped id and nick, ping;
 *   - the rate limit (a bucket of 2N that starts full and refills with
 *     time);
 *   - reassembly: any split of a message, the 1009 decided from the frame
 *     header, exactly --max-message, 1007 across pieces and at the end,
 *     1003; nothing once a close is decided;
 *   - draining, and the end of a session with and without notice, with the
 *     room and id the access line reports.
 *
 * The close recorder stands in for the transport: like sb_sock_close() it
 * records the code and cause and ends the session at once (peers get
 * "leave" unless the server drains).
 */
#include "check.h"
#include "json_event.h"

#include "sb_bpmsg.h"
#include "sb_cluster.h"
#include "sb_codec.h"
#include "sb_config.h"
#include "sb_conn.h"
#include "sb_metrics.h"
#include "sb_msg.h"
#include "sb_registry.h"
#include "sb_session.h"
#include "sb_token.h"

#include <errno.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

enum {
	MAX_FIELD = 16,			/* over-long names stay short */
	MAX_BACKLOG = 1 << 20,
	MAX_MESSAGE = 64 * 1024,	/* --max-message's default */
	MAX_PEERS = 8,			/* in one roster */
};

/* A session as the test's transport sees it. */
struct peer {
	struct sb_session s;	/* first: the close recorder finds the peer */
	int closes;
	uint16_t code;
	enum sb_cause cause;
};

/* What the sessions of a test share, as a worker's would. */
static struct {
	struct sb_session_env env;
	struct sb_stats stats;
	struct sb_sched sched;
	unsigned long schedules;
	uint64_t now;		/* ms, passed as now_ms */
} F;

static void record_close(struct sb_session *s, uint16_t code,
			 enum sb_cause cause)
{
	struct peer *p = (struct peer *)(void *)s;

	p->closes++;
	CHECK_EQ_INT(p->closes, 1);	/* at most once per session */
	CHECK(!s->ended);
	p->code = code;
	p->cause = cause;
	/* what sb_sock_close() does: the session ends now, the socket later */
	sb_session_end(s, !s->env->draining);
	CHECK(s->ended);
}

static const struct sb_session_ops ops = { record_close, NULL };

/* A scheduler that only counts: the test reads the queues itself. */
static void count_schedule(struct sb_sched *sched, struct sb_conn *c)
{
	(void)sched;
	CHECK(c->owner_data != NULL);
	F.schedules++;
}

static void setup_with(size_t max_message, double rate, unsigned max_room_peers)
{
	memset(&F, 0, sizeof(F));
	F.sched.schedule = count_schedule;
	F.env.ops = &ops;
	F.env.reg = sb_registry_new(max_room_peers);
	CHECK(F.env.reg != NULL);
	F.env.codec = sb_codec_new(MAX_FIELD);
	CHECK(F.env.codec != NULL);
	sb_codec_set_utf8_checked(F.env.codec, true);
	F.env.stats = &F.stats;
	F.env.max_message = max_message;
	F.env.rate = rate;
	F.now = 1000000;
}

static void setup(void)
{
	setup_with(MAX_MESSAGE, 0, 0);
}

/* After every session was released: the registry is empty and nothing is
 * queued anywhere. */
static void teardown(void)
{
	size_t rooms = 99, peers = 99;

	sb_registry_counts(F.env.reg, &rooms, &peers);
	CHECK_EQ_SIZE(rooms, 0);
	CHECK_EQ_SIZE(peers, 0);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.msgs), 0);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.bytes), 0);
	sb_registry_free(F.env.reg);
	sb_codec_free(F.env.codec);
}

static void open_peer(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	CHECK_EQ_INT(sb_session_open(&p->s, &F.env, &F.sched, MAX_BACKLOG,
				     &F.stats.depth, F.now), 0);
	CHECK(p->s.conn != NULL);
	CHECK(p->s.conn->owner_data == &p->s);
	CHECK(!p->s.ended);
}

static unsigned long received(void)
{
	return atomic_load(&F.stats.received);
}

static unsigned long errors(enum sb_err code)
{
	return atomic_load(&F.stats.errors[code]);
}

static unsigned long errors_total(void)
{
	unsigned long n = 0;

	for (int i = 0; i < SB_ERR_COUNT; i++)
		n += errors((enum sb_err)i);
	return n;
}

/* ---- what the client sends ---- */

static void piece(struct peer *p, const void *data, size_t len, bool first,
		  bool final, size_t remaining)
{
	struct sb_piece pc = { .first = first, .final = final,
			       .remaining = remaining };

	sb_session_receive(&p->s, data, len, &pc, F.now);
}

/* One message of len bytes in one piece. */
static void send_bytes(struct peer *p, const char *data, size_t len)
{
	piece(p, data, len, true, true, 0);
}

static void send_text(struct peer *p, const char *json)
{
	send_bytes(p, json, strlen(json));
}

/* ---- what the client receives ---- */

static void check_member(struct json_object *o, const char *name,
			 const char *want)
{
	size_t len;
	const char *s = member_str(o, name, &len);

	CHECK_EQ_MEM(s, len, want, strlen(want));
}

/* The next message queued to p (the caller unrefs it). */
static struct sb_msg *take_msg(struct peer *p, const char *what)
{
	struct sb_msg *m;
	bool overflow, more;

	m = sb_conn_next(p->s.conn, &overflow, &more);
	CHECK(!overflow);
	if (!m) {
		fprintf(stderr, "expected %s, queue empty\n", what);
		CHECK(m != NULL);
	}
	return m;
}

/* Takes the next event and checks it is {"type": type, "payload": {...}}
 * and nothing else; returns the root (the caller puts it) and the payload
 * through *payload. */
static struct json_object *take_event(struct peer *p, const char *type,
				      struct json_object **payload)
{
	struct sb_msg *m = take_msg(p, type);
	struct json_object *root = parse_exact(m->data, m->len);

	sb_msg_unref(m);
	CHECK_EQ_INT(json_object_object_length(root), 2);
	check_member(root, "type", type);
	CHECK(json_object_object_get_ex(root, "payload", payload));
	CHECK(json_object_is_type(*payload, json_type_object));
	return root;
}

static void expect_nothing(struct peer *p)
{
	bool overflow, more;
	struct sb_msg *m = sb_conn_next(p->s.conn, &overflow, &more);

	if (m)
		fprintf(stderr, "unexpected: %.*s\n", (int)m->len, m->data);
	CHECK(m == NULL);
	CHECK(!overflow);
}

/* The next message is exactly these bytes. */
static void expect_bytes(struct peer *p, const char *want)
{
	struct sb_msg *m = take_msg(p, want);

	CHECK_EQ_MEM(m->data, m->len, want, strlen(want));
	sb_msg_unref(m);
}

/* An error event with this code and ref (NULL: no ref member). */
static void expect_error(struct peer *p, enum sb_err code, const char *ref)
{
	struct json_object *payload, *root = take_event(p, "error", &payload);
	size_t len;

	check_member(payload, "code", sb_err_names[code]);
	CHECK(member_str(payload, "message", &len) != NULL);
	CHECK(len > 0);
	if (ref) {
		CHECK_EQ_INT(json_object_object_length(payload), 3);
		check_member(payload, "ref", ref);
	} else {
		CHECK_EQ_INT(json_object_object_length(payload), 2);
	}
	json_object_put(root);
}

static void expect_pong(struct peer *p)
{
	expect_bytes(p, "{\"type\":\"pong\",\"payload\":{}}");
}

/* A join or leave event {"id","nick"}. */
static void expect_peer(struct peer *p, const char *type, const char *id,
			const char *nick)
{
	struct json_object *payload, *root = take_event(p, type, &payload);

	CHECK_EQ_INT(json_object_object_length(payload), 2);
	check_member(payload, "id", id);
	check_member(payload, "nick", nick);
	json_object_put(root);
}

/* "joined" for (room, id, nick) with exactly the n peers ids[i]/nicks[i]
 * in its roster, in any order. */
static void expect_joined(struct peer *p, const char *room, const char *id,
			  const char *nick, int n, const char *const *ids,
			  const char *const *nicks)
{
	struct json_object *payload, *root = take_event(p, "joined", &payload);
	struct json_object *peers;
	bool matched[MAX_PEERS] = { false };

	CHECK(n <= MAX_PEERS);
	CHECK_EQ_INT(json_object_object_length(payload), 4);
	check_member(payload, "id", id);
	check_member(payload, "nick", nick);
	check_member(payload, "room", room);
	CHECK(json_object_object_get_ex(payload, "peers", &peers));
	CHECK(json_object_is_type(peers, json_type_array));
	CHECK_EQ_SIZE(json_object_array_length(peers), (size_t)n);
	for (int i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(peers, (size_t)i);
		size_t idl, nickl;
		const char *pid, *pnick;
		int k;

		CHECK_EQ_INT(json_object_object_length(e), 2);
		pid = member_str(e, "id", &idl);
		pnick = member_str(e, "nick", &nickl);
		for (k = 0; k < n; k++)
			if (!matched[k] && strlen(ids[k]) == idl &&
			    !memcmp(ids[k], pid, idl))
				break;
		if (k == n)
			fprintf(stderr, "unexpected peer %.*s\n", (int)idl, pid);
		CHECK(k < n);
		matched[k] = true;
		CHECK_EQ_MEM(pnick, nickl, nicks[k], strlen(nicks[k]));
	}
	json_object_put(root);
}

/* Joins p alone to room (checked: its roster is empty). */
static void join_alone(struct peer *p, const char *room, const char *id,
		       const char *nick)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "{\"type\":\"join\",\"id\":\"%s\",\"nick\":\"%s\",\"room\":\"%s\"}",
		 id, nick, room);
	send_text(p, msg);
	expect_joined(p, room, id, nick, 0, NULL, NULL);
	expect_nothing(p);
}

/* a (alice/Alice) and b (bob/Bob) in "lobby", their events taken. */
static void join_pair(struct peer *a, struct peer *b)
{
	static const char *const a_id[] = { "alice" }, *const a_nick[] = { "Alice" };

	join_alone(a, "lobby", "alice", "Alice");
	send_text(b, "{\"type\":\"join\",\"id\":\"bob\",\"nick\":\"Bob\",\"room\":\"lobby\"}");
	expect_joined(b, "lobby", "bob", "Bob", 1, a_id, a_nick);
	expect_peer(a, "join", "bob", "Bob");
	expect_nothing(a);
	expect_nothing(b);
}

/* ---------------------------------------------------------------- tests */

static void test_open_and_release(void)
{
	struct peer a;

	setup();
	open_peer(&a);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "");
	CHECK(a.s.conn->room == NULL);
	sb_session_release(&a.s, true);
	CHECK(a.s.conn == NULL);
	CHECK_EQ_INT(a.closes, 0);	/* a release is not a close decision */
	CHECK_EQ_INT(received(), 0);
	teardown();
}

static void test_ping_before_join(void)
{
	struct peer a;

	setup();
	open_peer(&a);
	send_text(&a, "{\"type\":\"ping\"}");
	expect_pong(&a);
	/* members it does not need are ignored, whitespace is allowed */
	send_text(&a, " {\"type\":\"ping\",\"payload\":[1],\"x\":null}\n");
	expect_pong(&a);
	expect_nothing(&a);
	CHECK(a.s.conn->room == NULL);
	CHECK_EQ_INT(received(), 2);
	CHECK_EQ_INT(a.s.msgs_in, 2);
	CHECK_EQ_INT(errors_total(), 0);
	CHECK(F.schedules > 0);

	/* and after join */
	join_alone(&a, "r", "a", "");
	send_text(&a, "{\"type\":\"ping\"}");
	expect_pong(&a);
	sb_session_release(&a.s, true);
	teardown();
}

/* The session's connection tells its owner of output through the scheduler
 * it was opened with, once per empty-to-non-empty queue. */
static void test_schedules(void)
{
	struct peer a;

	setup();
	open_peer(&a);
	CHECK_EQ_INT(F.schedules, 0);
	send_text(&a, "{\"type\":\"ping\"}");
	CHECK_EQ_INT(F.schedules, 1);
	send_text(&a, "{\"type\":\"dance\"}");
	CHECK_EQ_INT(F.schedules, 1);	/* told already */
	expect_pong(&a);
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "dance");
	expect_nothing(&a);
	send_text(&a, "{\"type\":\"ping\"}");
	CHECK_EQ_INT(F.schedules, 2);
	sb_session_release(&a.s, true);
	teardown();
}

/* A ping whose "x" nests arrays so that the message is depth levels deep. */
static void send_nested(struct peer *p, int depth)
{
	char buf[256];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "{\"type\":\"ping\",\"x\":");

	CHECK(len + 2 * (size_t)depth < sizeof(buf));
	for (int i = 1; i < depth; i++)
		buf[len++] = '[';
	for (int i = 1; i < depth; i++)
		buf[len++] = ']';
	buf[len++] = '}';
	send_bytes(p, buf, len);
}

static void test_bad_json(void)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[]", "[{\"type\":\"ping\"}]", "\"ping\"",
		"null", "42", "{\"type\":\"ping\"} x", "{\"type\":\"ping\"}{}",
		"{\"type\":\"ping\",}", "{'type':'ping'}", "{type:\"ping\"}",
		"{\"type\":\"ping\",\"x\":NaN}", "{\"type\":\"ping\",\"x\":Infinity}",
		"{\"type\":\"ping\",\"x\":\"\\ud800\"}", "{\"type\":\"ping\",\"x\":\"\x01\"}",
		"{\"type\":\"join\",\"id\":\"a\"", "{\"type\" \"ping\"}",
	};
	struct peer a;
	size_t n = sizeof(bad) / sizeof(bad[0]);

	setup();
	open_peer(&a);
	for (size_t i = 0; i < n; i++) {
		send_text(&a, bad[i]);
		expect_error(&a, SB_ERR_BAD_JSON, NULL);
		expect_nothing(&a);
		CHECK(a.s.conn->room == NULL);
	}
	/* nesting: 32 levels are fine, 33 are not */
	send_nested(&a, SB_JSON_MAX_DEPTH);
	expect_pong(&a);
	send_nested(&a, SB_JSON_MAX_DEPTH + 1);
	expect_error(&a, SB_ERR_BAD_JSON, NULL);
	CHECK_EQ_INT(errors(SB_ERR_BAD_JSON), n + 1);
	CHECK_EQ_INT(errors_total(), n + 1);
	CHECK_EQ_INT(received(), n + 2);
	CHECK_EQ_INT(a.closes, 0);	/* errors keep the connection open */
	sb_session_release(&a.s, true);
	teardown();
}

static void test_bad_type(void)
{
	static const char *const bad[] = {
		"{}", "{\"id\":\"a\"}", "{\"type\":1}", "{\"type\":null}",
		"{\"type\":true}", "{\"type\":{}}", "{\"type\":[\"ping\"]}",
		"{\"Type\":\"ping\"}",
	};
	struct peer a;
	size_t n = sizeof(bad) / sizeof(bad[0]);

	setup();
	open_peer(&a);
	for (size_t i = 0; i < n; i++) {
		send_text(&a, bad[i]);
		expect_error(&a, SB_ERR_BAD_MESSAGE, NULL);	/* no ref */
	}
	/* the last "type" counts */
	send_text(&a, "{\"type\":1,\"type\":\"ping\"}");
	expect_pong(&a);
	send_text(&a, "{\"type\":\"ping\",\"type\":1}");
	expect_error(&a, SB_ERR_BAD_MESSAGE, NULL);
	expect_nothing(&a);
	CHECK_EQ_INT(errors(SB_ERR_BAD_MESSAGE), n + 1);
	CHECK_EQ_INT(errors_total(), n + 1);
	sb_session_release(&a.s, true);
	teardown();
}

static void test_unknown_type(void)
{
	struct peer a;

	setup();
	open_peer(&a);
	send_text(&a, "{\"type\":\"dance\"}");
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "dance");
	send_text(&a, "{\"type\":\"JOIN\",\"id\":\"a\"}");	/* case matters */
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "JOIN");
	send_text(&a, "{\"type\":\"\"}");
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "");
	send_text(&a, "{\"type\":\"d\\u00e9j\\u00e0 \\\"vu\\\"\"}");	/* decoded */
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "d\xc3\xa9j\xc3\xa0 \"vu\"");
	send_text(&a, "{\"type\":\"joined\"}");	/* an event, not a request */
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "joined");
	/* joined or not */
	join_alone(&a, "r", "a", "A");
	send_text(&a, "{\"type\":\"pong\"}");
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "pong");
	expect_nothing(&a);
	CHECK_EQ_INT(errors(SB_ERR_UNKNOWN_TYPE), 6);
	CHECK_EQ_INT(errors_total(), 6);
	sb_session_release(&a.s, true);
	teardown();
}

static void test_not_joined(void)
{
	static const struct {
		const char *msg, *ref;
	} cases[] = {
		/* whatever the members: the joined state is checked first */
		{ "{\"type\":\"offer\"}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"b\"}", "offer" },
		{ "{\"type\":\"answer\",\"payload\":1}", "answer" },
		{ "{\"type\":\"icecandidate\",\"payload\":{}}", "icecandidate" },
		{ "{\"type\":\"message\",\"receiverId\":\"\"}", "message" },
		{ "{\"type\":\"leave\"}", "leave" },
		{ "{\"type\":\"leave\",\"room\":\"r\"}", "leave" },
	};
	struct peer a, b;
	size_t n = sizeof(cases) / sizeof(cases[0]);

	setup();
	open_peer(&a);
	open_peer(&b);
	join_alone(&b, "r", "b", "B");
	for (size_t i = 0; i < n; i++) {
		send_text(&a, cases[i].msg);
		expect_error(&a, SB_ERR_NOT_JOINED, cases[i].ref);
	}
	expect_nothing(&a);
	expect_nothing(&b);	/* nothing reached anyone */
	CHECK_EQ_INT(errors(SB_ERR_NOT_JOINED), n);
	CHECK_EQ_INT(errors_total(), n);

	/* after a leave, as before the join */
	join_alone(&a, "s", "a", "A");
	send_text(&a, "{\"type\":\"leave\"}");
	expect_nothing(&a);	/* no event to the one who leaves */
	send_text(&a, "{\"type\":\"leave\"}");
	expect_error(&a, SB_ERR_NOT_JOINED, "leave");
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	expect_error(&a, SB_ERR_NOT_JOINED, "message");
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

static void test_already_joined(void)
{
	static const char *const again[] = {
		"{\"type\":\"join\",\"id\":\"a\",\"room\":\"r\"}",	/* the same */
		"{\"type\":\"join\",\"id\":\"z\",\"room\":\"other\"}",
		"{\"type\":\"join\"}",			/* no id: still this */
		"{\"type\":\"join\",\"id\":5,\"nick\":null}",
	};
	struct peer a;
	size_t n = sizeof(again) / sizeof(again[0]);

	setup();
	open_peer(&a);
	join_alone(&a, "r", "a", "A");
	for (size_t i = 0; i < n; i++) {
		send_text(&a, again[i]);
		expect_error(&a, SB_ERR_ALREADY_JOINED, "join");
	}
	expect_nothing(&a);
	CHECK_EQ_INT(errors(SB_ERR_ALREADY_JOINED), n);
	CHECK_EQ_INT(errors_total(), n);
	/* still where it was */
	{
		size_t len;
		const char *room = sb_registry_room_name(a.s.conn, &len);

		CHECK_EQ_MEM(room, len, "r", 1);
		CHECK_EQ_MEM(a.s.conn->id, a.s.conn->id_len, "a", 1);
	}
	sb_session_release(&a.s, true);
	teardown();
}

static void test_join_members(void)
{
	static const char *const bad[] = {
		"{\"type\":\"join\"}",
		"{\"type\":\"join\",\"nick\":\"n\",\"room\":\"r\"}",
		"{\"type\":\"join\",\"id\":\"\"}",
		"{\"type\":\"join\",\"id\":null}",
		"{\"type\":\"join\",\"id\":7}",
		"{\"type\":\"join\",\"id\":[\"a\"]}",
		"{\"type\":\"join\",\"id\":\"0123456789abcdefX\"}",	/* 17 bytes */
		/* 8 x U+00E9 is 16 bytes; one more byte is too many */
		"{\"type\":\"join\",\"id\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9x\"}",
		"{\"type\":\"join\",\"id\":\"a\\u0001\"}",
		"{\"type\":\"join\",\"id\":\"a\\u001f\"}",
		"{\"type\":\"join\",\"id\":\"a\\u007f\"}",
		"{\"type\":\"join\",\"id\":\"a\\n\"}",
		"{\"type\":\"join\",\"id\":\"a\",\"nick\":null}",
		"{\"type\":\"join\",\"id\":\"a\",\"nick\":1}",
		"{\"type\":\"join\",\"id\":\"a\",\"nick\":\"0123456789abcdefX\"}",
		"{\"type\":\"join\",\"id\":\"a\",\"nick\":\"\\t\"}",
		"{\"type\":\"join\",\"id\":\"a\",\"room\":\"\"}",
		"{\"type\":\"join\",\"id\":\"a\",\"room\":null}",
		"{\"type\":\"join\",\"id\":\"a\",\"room\":{}}",
		"{\"type\":\"join\",\"id\":\"a\",\"room\":\"0123456789abcdefX\"}",
		"{\"type\":\"join\",\"id\":\"a\",\"room\":\"\\u0000\"}",
	};
	static const char *const a_id[] = { "0123456789abcdef" };
	static const char *const a_nick[] = { "" };
	struct peer a, b, c;
	size_t n = sizeof(bad) / sizeof(bad[0]);

	setup();
	open_peer(&a);
	for (size_t i = 0; i < n; i++) {
		send_text(&a, bad[i]);
		expect_error(&a, SB_ERR_BAD_MESSAGE, "join");
		CHECK(a.s.conn->room == NULL);
	}
	expect_nothing(&a);
	CHECK_EQ_INT(errors(SB_ERR_BAD_MESSAGE), n);
	CHECK_EQ_INT(errors_total(), n);

	/* at the limits: 16 bytes, an empty nick, no room ("default") */
	send_text(&a, "{\"type\":\"join\",\"id\":\"0123456789abcdef\",\"nick\":\"\"}");
	expect_joined(&a, "default", "0123456789abcdef", "", 0, NULL, NULL);
	/* 16 bytes after decoding escapes; U+0080 is not a control character */
	open_peer(&b);
	send_text(&b, "{\"type\":\"join\",\"id\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\","
		      "\"nick\":\"\\u0080\",\"token\":\"ignored\"}");
	expect_joined(&b, "default",
		      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		      "\xc2\x80", 1, a_id, a_nick);
	expect_peer(&a, "join",
		    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		    "\xc2\x80");
	/* no nick is an empty nick */
	open_peer(&c);
	send_text(&c, "{\"type\":\"join\",\"id\":\"c\",\"room\":\"x\"}");
	expect_joined(&c, "x", "c", "", 0, NULL, NULL);
	CHECK_EQ_INT(errors_total(), n);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	teardown();
}

static void test_relay_members(void)
{
	static const struct {
		const char *msg, *ref;
	} cases[] = {
		{ "{\"type\":\"offer\"}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":null}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":\"sdp\"}", "offer" },
		{ "{\"type\":\"icecandidate\",\"payload\":[]}", "icecandidate" },
		{ "{\"type\":\"message\",\"payload\":1}", "message" },
		{ "{\"type\":\"answer\",\"payload\":{}}", "answer" },	/* receiverId required */
		{ "{\"type\":\"answer\",\"payload\":{},\"receiverId\":null}", "answer" },
		{ "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"\"}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":{},\"receiverId\":5}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":{},\"receiverId\":null}", "offer" },
		{ "{\"type\":\"offer\",\"payload\":{},\"receiverId\":\"b\\u0002\"}", "offer" },
		/* members before peer_not_found: too long names nobody */
		{ "{\"type\":\"message\",\"payload\":{},\"receiverId\":\"0123456789abcdefX\"}", "message" },
	};
	struct peer a, b;
	size_t n = sizeof(cases) / sizeof(cases[0]);

	setup();
	open_peer(&a);
	open_peer(&b);
	join_pair(&a, &b);
	for (size_t i = 0; i < n; i++) {
		send_text(&a, cases[i].msg);
		expect_error(&a, SB_ERR_BAD_MESSAGE, cases[i].ref);
	}
	expect_nothing(&a);
	expect_nothing(&b);
	CHECK_EQ_INT(errors(SB_ERR_BAD_MESSAGE), n);
	CHECK_EQ_INT(errors_total(), n);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

static void test_id_taken_and_room_full(void)
{
	static const char *const ab_id[] = { "alice", "bob" };
	static const char *const ab_nick[] = { "Alice", "Bob" };
	struct peer a, b, c, d;

	setup_with(MAX_MESSAGE, 0, 2);
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	open_peer(&d);
	join_pair(&a, &b);

	/* the room is full and the id taken: id_taken comes first */
	send_text(&c, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"lobby\"}");
	expect_error(&c, SB_ERR_ID_TAKEN, "join");
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}");
	expect_error(&c, SB_ERR_ROOM_FULL, "join");
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	CHECK(c.s.conn->room == NULL);
	/* an id is unique per room only */
	join_alone(&c, "other", "alice", "C");
	send_text(&d, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"other\"}");
	expect_error(&d, SB_ERR_ID_TAKEN, "join");

	/* a refused join leaves the session free to join again */
	send_text(&a, "{\"type\":\"leave\"}");
	expect_peer(&b, "leave", "alice", "Alice");
	send_text(&d, "{\"type\":\"join\",\"id\":\"dave\",\"nick\":\"D\",\"room\":\"lobby\"}");
	{
		static const char *const b_id[] = { "bob" }, *const b_nick[] = { "Bob" };

		expect_joined(&d, "lobby", "dave", "D", 1, b_id, b_nick);
	}
	expect_peer(&b, "join", "dave", "D");
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Alice\",\"room\":\"lobby\"}");
	expect_error(&a, SB_ERR_ROOM_FULL, "join");
	send_text(&d, "{\"type\":\"leave\"}");
	expect_peer(&b, "leave", "dave", "D");
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Alice\",\"room\":\"lobby\"}");
	expect_joined(&a, "lobby", "alice", "Alice", 1, ab_id + 1, ab_nick + 1);
	expect_peer(&b, "join", "alice", "Alice");
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&d);

	CHECK_EQ_INT(errors(SB_ERR_ID_TAKEN), 2);
	CHECK_EQ_INT(errors(SB_ERR_ROOM_FULL), 2);
	CHECK_EQ_INT(errors_total(), 4);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	sb_session_release(&d.s, true);
	teardown();
}

static void test_peer_not_found(void)
{
	struct peer a, b, c;

	setup();
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	join_pair(&a, &b);
	join_alone(&c, "elsewhere", "carol", "C");

	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"nobody\",\"payload\":{}}");
	expect_error(&a, SB_ERR_PEER_NOT_FOUND, "offer");
	/* another room's member is nobody here */
	send_text(&a, "{\"type\":\"answer\",\"receiverId\":\"carol\",\"payload\":{}}");
	expect_error(&a, SB_ERR_PEER_NOT_FOUND, "answer");
	/* nor is the sender itself */
	send_text(&a, "{\"type\":\"icecandidate\",\"receiverId\":\"alice\",\"payload\":{}}");
	expect_error(&a, SB_ERR_PEER_NOT_FOUND, "icecandidate");
	send_text(&a, "{\"type\":\"message\",\"receiverId\":\"Bob\",\"payload\":{}}");
	expect_error(&a, SB_ERR_PEER_NOT_FOUND, "message");	/* ids, not nicks */
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	/* a broadcast to nobody is no error */
	send_text(&c, "{\"type\":\"message\",\"payload\":{}}");
	expect_nothing(&c);
	/* once bob leaves, he is not found */
	send_text(&b, "{\"type\":\"leave\"}");
	expect_peer(&a, "leave", "bob", "Bob");
	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"bob\",\"payload\":{}}");
	expect_error(&a, SB_ERR_PEER_NOT_FOUND, "offer");
	CHECK_EQ_INT(errors(SB_ERR_PEER_NOT_FOUND), 5);
	CHECK_EQ_INT(errors_total(), 5);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	teardown();
}

/*
 * Messages that fail several checks at once: the first check of
 * docs/protocol.md's order answers.  Each row runs afresh: alice and bob
 * fill "lobby", a room of two; a joined row speaks as alice, the others as
 * carol, who is in no room; a limited row spends the speaker's tokens (a
 * burst of 2) first.
 */
static void test_order_of_checks(void)
{
	static const struct {
		bool joined, limited;
		const char *msg;
		enum sb_err code;
		const char *ref;
	} cases[] = {
		/* the rate limit before anything else */
		{ false, true, "{", SB_ERR_RATE_LIMITED, NULL },
		{ false, true, "{\"type\":7}", SB_ERR_RATE_LIMITED, NULL },
		{ false, true, "{\"type\":\"dance\"}", SB_ERR_RATE_LIMITED, "dance" },
		{ false, true, "{\"type\":\"offer\"}", SB_ERR_RATE_LIMITED, "offer" },
		{ true, true, "{\"type\":\"join\"}", SB_ERR_RATE_LIMITED, "join" },
		{ true, true, "{\"type\":\"offer\",\"receiverId\":\"x\",\"payload\":{}}",
		  SB_ERR_RATE_LIMITED, "offer" },
		{ false, true, "{\"type\":\"ping\"}", SB_ERR_RATE_LIMITED, "ping" },
		/* not JSON, whatever it seems to say */
		{ false, false, "{\"type\":\"dance\",}", SB_ERR_BAD_JSON, NULL },
		{ true, false, "{\"type\":\"join\",\"id\":\"\",}", SB_ERR_BAD_JSON, NULL },
		/* type before unknown_type and the rest */
		{ false, false, "{\"type\":false,\"id\":\"\"}", SB_ERR_BAD_MESSAGE, NULL },
		{ true, false, "{\"receiverId\":\"bob\"}", SB_ERR_BAD_MESSAGE, NULL },
		/* unknown_type before the joined state and members */
		{ false, false, "{\"type\":\"kick\",\"receiverId\":\"\"}", SB_ERR_UNKNOWN_TYPE, "kick" },
		{ true, false, "{\"type\":\"kick\"}", SB_ERR_UNKNOWN_TYPE, "kick" },
		/* the joined state before members */
		{ false, false, "{\"type\":\"answer\"}", SB_ERR_NOT_JOINED, "answer" },
		{ false, false, "{\"type\":\"message\",\"payload\":[],\"receiverId\":7}",
		  SB_ERR_NOT_JOINED, "message" },
		{ true, false, "{\"type\":\"join\",\"id\":\"\"}", SB_ERR_ALREADY_JOINED, "join" },
		{ true, false, "{\"type\":\"join\",\"id\":\"bob\",\"room\":\"lobby\"}",
		  SB_ERR_ALREADY_JOINED, "join" },
		/* members before the registry's answers */
		{ true, false, "{\"type\":\"offer\",\"receiverId\":\"nobody\"}",
		  SB_ERR_BAD_MESSAGE, "offer" },
		{ false, false, "{\"type\":\"join\",\"id\":\"bob\",\"room\":\"lobby\",\"nick\":7}",
		  SB_ERR_BAD_MESSAGE, "join" },
		/* id_taken before room_full (the room of two is full) */
		{ false, false, "{\"type\":\"join\",\"id\":\"bob\",\"room\":\"lobby\"}",
		  SB_ERR_ID_TAKEN, "join" },
		{ false, false, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}",
		  SB_ERR_ROOM_FULL, "join" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct peer a, b, c;

		setup_with(MAX_MESSAGE, 1, 2);	/* a burst of 2 */
		open_peer(&a);
		open_peer(&b);
		open_peer(&c);
		join_pair(&a, &b);
		{
			/* alice spent one token on her join, carol none */
			struct peer *p = cases[i].joined ? &a : &c;
			int left = cases[i].joined ? 1 : 2;

			for (int k = 0; cases[i].limited && k < left; k++) {
				send_text(p, "{\"type\":\"ping\"}");
				expect_pong(p);
			}
			send_text(p, cases[i].msg);
			expect_error(p, cases[i].code, cases[i].ref);
			expect_nothing(p);
		}
		expect_nothing(&a);
		expect_nothing(&b);
		sb_session_release(&a.s, true);
		sb_session_release(&b.s, true);
		sb_session_release(&c.s, true);
		teardown();
	}
}

static void test_join_and_leave(void)
{
	static const char *const a_id[] = { "alice" }, *const a_nick[] = { "Alice" };
	static const char *const b_id[] = { "bob" }, *const b_nick[] = { "Bob" };
	static const char *const ab_id[] = { "alice", "bob" };
	static const char *const ab_nick[] = { "Alice", "Bob" };
	struct peer a, b, c;
	size_t len;

	setup();
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);

	/* the first member's roster is empty; the next sees it */
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Alice\",\"room\":\"lobby\"}");
	expect_joined(&a, "lobby", "alice", "Alice", 0, NULL, NULL);
	send_text(&b, "{\"type\":\"join\",\"id\":\"bob\",\"nick\":\"Bob\",\"room\":\"lobby\"}");
	expect_joined(&b, "lobby", "bob", "Bob", 1, a_id, a_nick);
	expect_peer(&a, "join", "bob", "Bob");
	CHECK_EQ_MEM(sb_registry_room_name(a.s.conn, &len), len, "lobby", 5);

	/* a second session in the same room: both are told, it sees both */
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}");
	expect_joined(&c, "lobby", "carol", "", 2, ab_id, ab_nick);
	expect_peer(&a, "join", "carol", "");
	expect_peer(&b, "join", "carol", "");
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);

	/* a leave: the others are told, the one leaving is not */
	send_text(&a, "{\"type\":\"leave\"}");
	expect_peer(&b, "leave", "alice", "Alice");
	expect_peer(&c, "leave", "alice", "Alice");
	expect_nothing(&a);
	CHECK(a.s.conn->room == NULL);
	CHECK(a.s.stamp == NULL);
	/* leaving twice is not_joined */
	send_text(&a, "{\"type\":\"leave\"}");
	expect_error(&a, SB_ERR_NOT_JOINED, "leave");

	/* rejoin, under another nick: the roster and the events say so */
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Al\",\"room\":\"lobby\"}");
	{
		static const char *const bc_id[] = { "bob", "carol" };
		static const char *const bc_nick[] = { "Bob", "" };

		expect_joined(&a, "lobby", "alice", "Al", 2, bc_id, bc_nick);
	}
	expect_peer(&b, "join", "alice", "Al");
	expect_peer(&c, "join", "alice", "Al");
	/* relays carry the new nick */
	send_text(&a, "{\"type\":\"message\",\"receiverId\":\"bob\",\"payload\":{}}");
	expect_bytes(&b, "{\"type\":\"message\",\"payload\":{\"id\":\"alice\",\"nick\":\"Al\"}}");

	/* and another room: its own roster, the old room told of the leave */
	send_text(&a, "{\"type\":\"leave\"}");
	expect_peer(&b, "leave", "alice", "Al");
	expect_peer(&c, "leave", "alice", "Al");
	send_text(&b, "{\"type\":\"leave\"}");
	expect_peer(&c, "leave", "bob", "Bob");
	send_text(&b, "{\"type\":\"join\",\"id\":\"bob\",\"nick\":\"Bob\",\"room\":\"annex\"}");
	expect_joined(&b, "annex", "bob", "Bob", 0, NULL, NULL);
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Alice\",\"room\":\"annex\"}");
	expect_joined(&a, "annex", "alice", "Alice", 1, b_id, b_nick);
	expect_peer(&b, "join", "alice", "Alice");
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	CHECK_EQ_INT(errors_total(), 1);
	sb_session_release(&a.s, true);
	expect_peer(&b, "leave", "alice", "Alice");
	expect_nothing(&c);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	teardown();
}

/* What one peer sends another arrives in order, between the sender's join
 * and its leave, interleaved as sent with what the others send. */
static void test_events_in_order(void)
{
	struct peer a, b, c;

	setup();
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	join_pair(&a, &b);
	send_text(&a, "{\"type\":\"message\",\"receiverId\":\"bob\",\"payload\":{\"n\":1}}");
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"nick\":\"C\",\"room\":\"lobby\"}");
	send_text(&a, "{\"type\":\"message\",\"payload\":{\"n\":2}}");
	send_text(&c, "{\"type\":\"offer\",\"receiverId\":\"bob\",\"payload\":{\"n\":3}}");
	send_text(&a, "{\"type\":\"ping\"}");
	send_text(&a, "{\"type\":\"message\",\"receiverId\":\"bob\",\"payload\":{\"n\":4}}");
	send_text(&a, "{\"type\":\"leave\"}");
	send_text(&a, "{\"type\":\"message\",\"payload\":{\"n\":5}}");

	expect_bytes(&b, "{\"type\":\"message\",\"payload\":{\"n\":1,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_peer(&b, "join", "carol", "C");
	expect_bytes(&b, "{\"type\":\"message\",\"payload\":{\"n\":2,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_bytes(&b, "{\"type\":\"offer\",\"payload\":{\"n\":3,\"id\":\"carol\",\"nick\":\"C\"}}");
	expect_bytes(&b, "{\"type\":\"message\",\"payload\":{\"n\":4,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_peer(&b, "leave", "alice", "Alice");
	expect_nothing(&b);

	expect_peer(&a, "join", "carol", "C");
	expect_pong(&a);
	expect_error(&a, SB_ERR_NOT_JOINED, "message");
	expect_nothing(&a);

	{
		static const char *const ab_id[] = { "alice", "bob" };
		static const char *const ab_nick[] = { "Alice", "Bob" };

		expect_joined(&c, "lobby", "carol", "C", 2, ab_id, ab_nick);
	}
	expect_bytes(&c, "{\"type\":\"message\",\"payload\":{\"n\":2,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_peer(&c, "leave", "alice", "Alice");
	expect_nothing(&c);
	CHECK_EQ_INT(received(), 8 + 2);	/* and join_pair's two */
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	teardown();
}

static void test_relay_targeted(void)
{
	struct peer a, b, c;

	setup();
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	join_pair(&a, &b);
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}");
	expect_peer(&a, "join", "carol", "");
	expect_peer(&b, "join", "carol", "");
	expect_joined(&c, "lobby", "carol", "", 2,
		      (const char *const[]){ "alice", "bob" },
		      (const char *const[]){ "Alice", "Bob" });

	/* docs/protocol.md's example: the forged id is replaced */
	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"bob\",\"payload\":{\"sdp\":\"v=0...\",\"id\":\"mallory\"}}");
	expect_bytes(&b, "{\"type\":\"offer\",\"payload\":{\"sdp\":\"v=0...\",\"id\":\"alice\",\"nick\":\"Alice\"}}");
	/* every relayed type, each to its receiver only; the payload byte for
	 * byte (numbers, escapes, order, duplicates), nested ids untouched */
	send_text(&a, "{\"receiverId\":\"carol\",\"payload\":{\"nick\":\"M\",\"a\":1.50,\"a\":\"\\u00e9\\n\",\"x\":{\"id\":\"k\"},\"id\":1},\"type\":\"answer\"}");
	expect_bytes(&c, "{\"type\":\"answer\",\"payload\":{\"a\":1.50,\"a\":\"\\u00e9\\n\",\"x\":{\"id\":\"k\"},\"id\":\"alice\",\"nick\":\"Alice\"}}");
	send_text(&b, "{\"type\":\"icecandidate\",\"receiverId\":\"alice\",\"payload\":{ \"c\" : [1, 2] }}");
	expect_bytes(&a, "{\"type\":\"icecandidate\",\"payload\":{\"c\" : [1, 2],\"id\":\"bob\",\"nick\":\"Bob\"}}");
	send_text(&c, "{\"type\":\"message\",\"receiverId\":\"alice\",\"payload\":{}}");
	expect_bytes(&a, "{\"type\":\"message\",\"payload\":{\"id\":\"carol\",\"nick\":\"\"}}");
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	CHECK_EQ_INT(errors_total(), 0);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	sb_session_release(&c.s, true);
	teardown();
}

static void test_relay_broadcast(void)
{
	struct peer a, b, c, d;

	setup();
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	open_peer(&d);
	join_pair(&a, &b);
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}");
	expect_peer(&a, "join", "carol", "");
	expect_peer(&b, "join", "carol", "");
	expect_joined(&c, "lobby", "carol", "", 2,
		      (const char *const[]){ "alice", "bob" },
		      (const char *const[]){ "Alice", "Bob" });
	join_alone(&d, "annex", "dave", "D");

	/* a nick that needs escaping is escaped in the stamp */
	send_text(&b, "{\"type\":\"leave\"}");
	expect_peer(&a, "leave", "bob", "Bob");
	expect_peer(&c, "leave", "bob", "Bob");
	send_text(&b, "{\"type\":\"join\",\"id\":\"b\\\"\",\"nick\":\"\\\\B\\u00e9\",\"room\":\"lobby\"}");
	expect_joined(&b, "lobby", "b\"", "\\B\xc3\xa9", 2,
		      (const char *const[]){ "alice", "carol" },
		      (const char *const[]){ "Alice", "" });
	expect_peer(&a, "join", "b\"", "\\B\xc3\xa9");
	expect_peer(&c, "join", "b\"", "\\B\xc3\xa9");

	send_text(&b, "{\"type\":\"offer\",\"payload\":{\"nick\":\"x\",\"sdp\":\"s\"}}");
	expect_bytes(&a, "{\"type\":\"offer\",\"payload\":{\"sdp\":\"s\",\"id\":\"b\\\"\",\"nick\":\"\\\\B\xc3\xa9\"}}");
	expect_bytes(&c, "{\"type\":\"offer\",\"payload\":{\"sdp\":\"s\",\"id\":\"b\\\"\",\"nick\":\"\\\\B\xc3\xa9\"}}");
	send_text(&a, "{\"type\":\"icecandidate\",\"payload\":{\"n\":1}}");
	send_text(&a, "{\"type\":\"message\",\"payload\":{\"n\":2}}");
	expect_bytes(&b, "{\"type\":\"icecandidate\",\"payload\":{\"n\":1,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_bytes(&b, "{\"type\":\"message\",\"payload\":{\"n\":2,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_bytes(&c, "{\"type\":\"icecandidate\",\"payload\":{\"n\":1,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	expect_bytes(&c, "{\"type\":\"message\",\"payload\":{\"n\":2,\"id\":\"alice\",\"nick\":\"Alice\"}}");
	/* never to the sender, never to another room */
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	expect_nothing(&d);
	CHECK_EQ_INT(errors_total(), 0);
	sb_session_release(&a.s, false);
	sb_session_release(&b.s, false);
	sb_session_release(&c.s, false);
	sb_session_release(&d.s, false);
	teardown();
}

static void test_rate_limit(void)
{
	struct peer a;

	setup_with(MAX_MESSAGE, 5, 0);	/* 5 a second: a burst of 10 */
	open_peer(&a);
	for (int i = 0; i < 10; i++)
		send_text(&a, "{\"type\":\"ping\"}");
	for (int i = 0; i < 10; i++)
		expect_pong(&a);
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");
	expect_nothing(&a);

	/* 100 ms bring half a token: not enough; 200 ms one */
	F.now += 100;
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");
	F.now += 100;
	send_text(&a, "{\"type\":\"ping\"}");
	expect_pong(&a);
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");

	/* a long silence fills the bucket to 2N, no more */
	F.now += 3600 * 1000;
	for (int i = 0; i < 10; i++) {
		send_text(&a, "{\"type\":\"ping\"}");
		expect_pong(&a);
	}
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");

	/* a refused message is dropped: a refused join joins nobody */
	send_text(&a, "{\"type\":\"join\",\"id\":\"a\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "join");
	CHECK(a.s.conn->room == NULL);
	/* a clock that goes back gives nothing */
	F.now -= 5000;
	send_text(&a, "{\"type\":\"ping\"}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "ping");
	expect_nothing(&a);
	CHECK_EQ_INT(errors(SB_ERR_RATE_LIMITED), 7);
	CHECK_EQ_INT(errors_total(), 7);
	CHECK_EQ_INT(received(), 10 + 2 + 3 + 11 + 2);
	sb_session_release(&a.s, true);
	teardown();
}

/* Every message costs a token: refused ones, joins and pings included;
 * sessions have a bucket each. */
static void test_rate_limit_costs(void)
{
	struct peer a, b;

	setup_with(MAX_MESSAGE, 2, 0);	/* a burst of 4 */
	open_peer(&a);
	open_peer(&b);
	send_text(&a, "{");
	expect_error(&a, SB_ERR_BAD_JSON, NULL);
	send_text(&a, "{\"type\":\"dance\"}");
	expect_error(&a, SB_ERR_UNKNOWN_TYPE, "dance");
	send_text(&a, "{\"type\":\"join\",\"id\":\"a\"}");
	expect_joined(&a, "default", "a", "", 0, NULL, NULL);
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	expect_nothing(&a);
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	expect_error(&a, SB_ERR_RATE_LIMITED, "message");
	/* b's bucket is its own */
	for (int i = 0; i < 4; i++) {
		send_text(&b, "{\"type\":\"ping\"}");
		expect_pong(&b);
	}
	send_text(&b, "{\"type\":\"ping\"}");
	expect_error(&b, SB_ERR_RATE_LIMITED, "ping");
	/* off: nothing is limited */
	F.env.rate = 0;
	for (int i = 0; i < 1000; i++)
		send_text(&b, "{\"type\":\"ping\"}");
	for (int i = 0; i < 1000; i++)
		expect_pong(&b);
	expect_nothing(&b);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

/* ---- reassembly ---- */

/* A message with multi-byte characters in it, and what bob receives. */
static const char utf8_msg[] =
	"{\"type\":\"message\",\"receiverId\":\"bob\",\"payload\":"
	"{\"t\":\"Zo\xc3\xab \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe2\x82\xac\"}}";
static const char utf8_relayed[] =
	"{\"type\":\"message\",\"payload\":"
	"{\"t\":\"Zo\xc3\xab \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe2\x82\xac\","
	"\"id\":\"alice\",\"nick\":\"Alice\"}}";

static void test_reassembly_many_pieces(void)
{
	size_t len = strlen(utf8_msg);
	struct peer a, b;

	setup();
	open_peer(&a);
	open_peer(&b);
	join_pair(&a, &b);

	/* one byte a frame */
	for (size_t i = 0; i < len; i++)
		piece(&a, utf8_msg + i, 1, i == 0, i == len - 1, 0);
	expect_bytes(&b, utf8_relayed);
	/* one frame, one byte a piece: the header announced the rest */
	for (size_t i = 0; i < len; i++)
		piece(&a, utf8_msg + i, 1, i == 0, i == len - 1, len - 1 - i);
	expect_bytes(&b, utf8_relayed);
	/* frames of 7 bytes in pieces of 3 and 4, empty pieces between */
	for (size_t at = 0; at < len; at += 7) {
		size_t flen = len - at < 7 ? len - at : 7;
		size_t half = flen < 3 ? flen : 3;
		bool last = at + flen == len;

		piece(&a, utf8_msg + at, half, at == 0, false, flen - half);
		piece(&a, utf8_msg + at + half, flen - half, false, last, 0);
		if (!last)
			piece(&a, "", 0, false, false, 0);
	}
	expect_bytes(&b, utf8_relayed);
	/* a message after a message in pieces starts afresh */
	send_text(&a, utf8_msg);
	expect_bytes(&b, utf8_relayed);
	expect_nothing(&a);
	expect_nothing(&b);
	CHECK_EQ_INT(received(), 2 + 4);
	CHECK_EQ_INT(errors_total(), 0);
	CHECK_EQ_INT(a.closes, 0);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

/* Split at every byte position (and at every pair of positions), as two
 * pieces of one frame and as separate frames: multi-byte characters cut
 * anywhere come together. */
static void test_reassembly_every_split(void)
{
	size_t len = strlen(utf8_msg);
	unsigned long n = 0;
	struct peer a, b;

	setup();
	open_peer(&a);
	open_peer(&b);
	join_pair(&a, &b);
	for (size_t k = 0; k <= len; k++) {
		for (int frames = 0; frames < 2; frames++) {
			piece(&a, utf8_msg, k, true, false, frames ? 0 : len - k);
			piece(&a, utf8_msg + k, len - k, false, true, 0);
			expect_bytes(&b, utf8_relayed);
			n++;
		}
	}
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			piece(&a, utf8_msg, i, true, false, 0);
			piece(&a, utf8_msg + i, j - i, false, false, len - j);
			piece(&a, utf8_msg + j, len - j, false, true, 0);
			expect_bytes(&b, utf8_relayed);
			n++;
		}
	}
	expect_nothing(&a);
	expect_nothing(&b);
	CHECK_EQ_INT(received(), 2 + n);
	CHECK_EQ_INT(errors_total(), 0);
	CHECK_EQ_INT(a.closes, 0);
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

/* A ping padded with spaces to exactly len bytes. */
static char *padded_ping(size_t len)
{
	static const char ping[] = "{\"type\":\"ping\"}";
	char *m = malloc(len);

	CHECK(m != NULL);
	CHECK(len >= sizeof(ping) - 1);
	memset(m, ' ', len);
	memcpy(m, ping, sizeof(ping) - 1);
	return m;
}

static void test_exactly_max_message(void)
{
	enum { MAX = 5000 };	/* past the buffer kept between messages */
	char *m = padded_ping(MAX);
	struct peer a;

	setup_with(MAX, 0, 0);
	open_peer(&a);
	send_bytes(&a, m, MAX);
	expect_pong(&a);
	/* in frames */
	piece(&a, m, 1000, true, false, 0);
	piece(&a, m + 1000, MAX - 1000, false, true, 0);
	expect_pong(&a);
	/* one frame announcing all of it */
	piece(&a, m, 10, true, false, MAX - 10);
	CHECK(a.s.rx_cap <= MAX);
	piece(&a, m + 10, MAX - 10, false, true, 0);
	expect_pong(&a);
	/* a large message's buffer is not kept */
	CHECK(a.s.rx == NULL);
	CHECK_EQ_INT(a.s.rx_cap, 0);
	CHECK_EQ_INT(a.closes, 0);
	CHECK_EQ_INT(received(), 3);
	sb_session_release(&a.s, true);
	free(m);
	teardown();
}

/* One byte over, in each way it can show: 1009, and nothing after it. */
static void test_too_big(void)
{
	enum { MAX = 100 };
	char *m = padded_ping(MAX + 1);

	for (int way = 0; way < 5; way++) {
		struct peer a, b;

		setup_with(MAX, 0, 0);
		open_peer(&a);
		open_peer(&b);
		join_pair(&a, &b);
		switch (way) {
		case 0:	/* one piece */
			send_bytes(&a, m, MAX + 1);
			break;
		case 1:	/* the frame header says so: before the rest */
			piece(&a, m, 10, true, false, MAX + 1 - 10);
			break;
		case 2:	/* a later frame's header says so */
			piece(&a, m, 50, true, false, 0);
			piece(&a, m + 50, 10, false, false, MAX + 1 - 60);
			break;
		case 3:	/* the last frame */
			piece(&a, m, MAX, true, false, 0);
			piece(&a, m + MAX, 1, false, true, 0);
			break;
		case 4:	/* a frame larger than the limit on its own */
			piece(&a, m, 1, true, false, (size_t)-1);
			break;
		}
		CHECK_EQ_INT(a.closes, 1);
		CHECK_EQ_INT(a.code, SB_CLOSE_TOO_BIG);
		CHECK_EQ_INT(a.cause, SB_CAUSE_LIMIT);
		CHECK(a.s.ended);
		CHECK(sb_conn_is_dead(a.s.conn));
		CHECK(a.s.rx_cap <= MAX);
		/* the peers were told */
		expect_peer(&b, "leave", "alice", "Alice");
		/* what arrives after it changes nothing */
		piece(&a, m + 60, 10, false, true, 0);
		send_text(&a, "{\"type\":\"ping\"}");
		send_bytes(&a, m, MAX + 1);
		sb_session_message(&a.s, "{\"type\":\"ping\"}", 15, F.now);
		CHECK_EQ_INT(a.closes, 1);
		CHECK_EQ_INT(received(), 2);	/* the joins */
		CHECK_EQ_INT(a.s.msgs_in, 1);
		expect_nothing(&a);
		expect_nothing(&b);
		sb_session_release(&a.s, true);
		sb_session_release(&b.s, true);
		teardown();
	}
	free(m);
}

static void test_invalid_utf8(void)
{
	static const struct {
		const char *p1, *p2;	/* p2 NULL: p1 is the whole message */
	} cases[] = {
		/* each piece a good start, together not UTF-8 */
		{ "{\"type\":\"ping\",\"x\":\"\xe2\x82", "(\"}" },
		{ "{\"type\":\"ping\",\"x\":\"\xf0\x9f", "\x98\"}" },
		{ "{\"type\":\"ping\",\"x\":\"\xed", "\xa0\x80\"}" },	/* surrogate */
		{ "{\"type\":\"ping\",\"x\":\"\xf4", "\x90\x80\x80\"}" },	/* > U+10FFFF */
		{ "{\"type\":\"ping\",\"x\":\"\xe0", "\x80\x80\"}" },	/* overlong */
		/* bad in one piece */
		{ "{\"type\":\"ping\",\"x\":\"\xc0\xaf\"}", NULL },
		{ "{\"type\":\"ping\",\"x\":\"\xff\"}", NULL },
		{ "{\"type\":\"ping\",\"x\":\"\x80\"}", NULL },
		/* cut short at the end of the message */
		{ "{\"type\":\"ping\"}\xe2\x82", NULL },
		{ "{\"type\":\"ping\"} \xf0", "\x9f\x98" },
		{ "{\"type\":\"ping\"} \xc3", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int frames = 0; frames < 2; frames++) {
			const char *p1 = cases[i].p1, *p2 = cases[i].p2;
			struct peer a;

			setup();
			open_peer(&a);
			if (!p2) {
				send_text(&a, p1);
			} else {
				piece(&a, p1, strlen(p1), true, false,
				      frames ? 0 : strlen(p2));
				CHECK_EQ_INT(a.closes, 0);	/* a good start */
				piece(&a, p2, strlen(p2), false, true, 0);
			}
			CHECK_EQ_INT(a.closes, 1);
			CHECK_EQ_INT(a.code, SB_CLOSE_INVALID_DATA);
			CHECK_EQ_INT(a.cause, SB_CAUSE_PROTOCOL);
			send_text(&a, "{\"type\":\"ping\"}");
			expect_nothing(&a);
			CHECK_EQ_INT(received(), 0);
			CHECK_EQ_INT(errors_total(), 0);
			sb_session_release(&a.s, true);
			teardown();
		}
	}
}

static void test_binary(void)
{
	static const struct sb_piece first_bin = { true, true, true, 0 };
	static const struct sb_piece first_bin_more = { true, false, true, 10 };
	struct peer a, b;

	setup();
	open_peer(&a);
	open_peer(&b);
	join_pair(&a, &b);
	sb_session_receive(&a.s, "{\"type\":\"ping\"}", 15, &first_bin, F.now);
	CHECK_EQ_INT(a.closes, 1);
	CHECK_EQ_INT(a.code, SB_CLOSE_UNSUPPORTED);
	CHECK_EQ_INT(a.cause, SB_CAUSE_LIMIT);
	expect_peer(&b, "leave", "alice", "Alice");
	send_text(&a, "{\"type\":\"ping\"}");
	expect_nothing(&a);
	sb_session_release(&a.s, true);

	/* decided at the first piece, the rest unseen; empty counts too */
	open_peer(&a);
	sb_session_receive(&a.s, "", 0, &first_bin_more, F.now);
	CHECK_EQ_INT(a.closes, 1);
	CHECK_EQ_INT(a.code, SB_CLOSE_UNSUPPORTED);
	CHECK_EQ_INT(received(), 2);	/* join_pair's */
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

/* While the server drains, messages are counted and start nothing: no
 * join, relay, pong or error. */
static void test_draining(void)
{
	struct peer a, b, c;
	unsigned long before;

	setup_with(MAX_MESSAGE, 1, 0);
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);
	join_pair(&a, &b);
	F.env.draining = true;
	before = received();
	send_text(&c, "{\"type\":\"join\",\"id\":\"carol\",\"room\":\"lobby\"}");
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	send_text(&a, "{\"type\":\"leave\"}");
	send_text(&a, "{\"type\":\"ping\"}");
	send_text(&a, "{");
	send_text(&a, "{\"type\":\"dance\"}");
	CHECK_EQ_INT(received(), before + 6);
	CHECK_EQ_INT(a.s.msgs_in, 1 + 5);
	CHECK_EQ_INT(errors_total(), 0);	/* not even rate_limited */
	CHECK(c.s.conn->room == NULL);
	CHECK(a.s.conn->room != NULL);
	expect_nothing(&a);
	expect_nothing(&b);
	expect_nothing(&c);
	/* a close while draining tells nobody: everyone is leaving */
	send_bytes(&a, "\xff", 1);
	CHECK_EQ_INT(a.closes, 1);
	CHECK_EQ_INT(a.code, SB_CLOSE_INVALID_DATA);
	expect_nothing(&b);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "lobby");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "alice");
	sb_session_release(&a.s, false);
	sb_session_release(&b.s, false);
	sb_session_release(&c.s, false);
	teardown();
}

/* sb_session_end(): the peers get "leave" or not, once; the queue is
 * dropped and the connection refuses more. */
static void test_end(void)
{
	for (int notify = 0; notify < 2; notify++) {
		struct peer a, b;
		struct sb_msg *m;

		setup();
		open_peer(&a);
		open_peer(&b);
		join_pair(&a, &b);
		send_text(&a, "{\"type\":\"ping\"}");	/* queued, not taken */
		send_text(&b, "{\"type\":\"message\",\"payload\":{}}");
		CHECK(sb_conn_backlog(a.s.conn) > 0);
		sb_session_end(&a.s, notify);
		CHECK(a.s.ended);
		CHECK(sb_conn_is_dead(a.s.conn));
		CHECK_EQ_SIZE(sb_conn_backlog(a.s.conn), 0);
		CHECK(a.s.conn->room == NULL);
		CHECK_EQ_INT(a.closes, 0);	/* the session did not decide it */
		if (notify)
			expect_peer(&b, "leave", "alice", "Alice");
		expect_nothing(&b);
		/* idempotent, and so is the release after it */
		sb_session_end(&a.s, true);
		expect_nothing(&b);
		m = sb_msg_from("x", 1);
		CHECK(m != NULL);
		CHECK_EQ_INT(sb_conn_send(a.s.conn, m), -EPIPE);
		sb_msg_unref(m);
		/* nothing more from the client */
		send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
		expect_nothing(&b);
		CHECK_EQ_INT(received(), 4);
		CHECK_EQ_STR(sb_session_last_room(&a.s), "lobby");
		CHECK_EQ_STR(sb_session_last_id(&a.s), "alice");
		sb_session_release(&a.s, true);
		expect_nothing(&b);
		/* b alone: its broadcast reaches nobody */
		send_text(&b, "{\"type\":\"message\",\"payload\":{}}");
		expect_nothing(&b);
		sb_session_release(&b.s, true);
		teardown();
	}
}

/* sb_session_release() without an end first ends the session itself. */
static void test_release(void)
{
	for (int notify = 0; notify < 2; notify++) {
		struct peer a, b;
		size_t rooms, peers;

		setup();
		open_peer(&a);
		open_peer(&b);
		join_pair(&a, &b);
		send_text(&a, "{\"type\":\"ping\"}");
		sb_session_release(&a.s, notify);
		CHECK(a.s.conn == NULL);
		CHECK(a.s.stamp == NULL && a.s.rx == NULL);
		if (notify)
			expect_peer(&b, "leave", "alice", "Alice");
		expect_nothing(&b);
		sb_registry_counts(F.env.reg, &rooms, &peers);
		CHECK_EQ_SIZE(peers, 1);
		/* alice's id is free again */
		open_peer(&a);
		send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"lobby\"}");
		expect_joined(&a, "lobby", "alice", "", 1,
			      (const char *const[]){ "bob" },
			      (const char *const[]){ "Bob" });
		expect_peer(&b, "join", "alice", "");
		sb_session_release(&a.s, notify);
		sb_session_release(&b.s, notify);
		teardown();
	}
}

/* The room and id the access line reports: those held last, also after a
 * plain leave, a refused join or a close while not joined. */
static void test_last_room_and_id(void)
{
	struct peer a, b;

	setup();
	open_peer(&a);
	open_peer(&b);
	sb_session_end(&a.s, true);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "");
	sb_session_release(&a.s, true);

	/* joined at the close */
	open_peer(&a);
	join_alone(&a, "r1", "a1", "");
	send_bytes(&a, "\xc3", 1);	/* a truncated character: 1007 */
	CHECK_EQ_INT(a.code, SB_CLOSE_INVALID_DATA);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "r1");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "a1");
	sb_session_release(&a.s, true);

	/* a leave, then the close */
	open_peer(&a);
	join_alone(&a, "r2", "a2", "");
	send_text(&a, "{\"type\":\"leave\"}");
	sb_session_end(&a.s, true);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "r2");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "a2");
	sb_session_release(&a.s, true);

	/* two memberships, then a refused join: the second */
	join_alone(&b, "full", "x", "");
	open_peer(&a);
	join_alone(&a, "r3", "a3", "");
	send_text(&a, "{\"type\":\"leave\"}");
	join_alone(&a, "r4", "a4", "");
	send_text(&a, "{\"type\":\"leave\"}");
	send_text(&a, "{\"type\":\"join\",\"id\":\"x\",\"room\":\"full\"}");
	expect_error(&a, SB_ERR_ID_TAKEN, "join");
	sb_session_end(&a.s, true);
	CHECK_EQ_STR(sb_session_last_room(&a.s), "r4");
	CHECK_EQ_STR(sb_session_last_id(&a.s), "a4");
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	teardown();
}

/* The session's queue counts in the depth it was opened with, and its end
 * takes back what it held. */
static void test_queue_depth(void)
{
	struct peer a;

	setup();
	open_peer(&a);
	send_text(&a, "{\"type\":\"ping\"}");
	send_text(&a, "{\"type\":\"ping\"}");
	CHECK_EQ_INT(atomic_load(&F.stats.depth.msgs), 2);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.bytes),
		     2 * strlen("{\"type\":\"pong\",\"payload\":{}}"));
	expect_pong(&a);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.msgs), 1);
	sb_session_end(&a.s, true);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.msgs), 0);
	CHECK_EQ_INT(atomic_load(&F.stats.depth.bytes), 0);
	sb_session_release(&a.s, true);
	teardown();
}

/* ---- clusters: a backplane played by hand ---- */

#define NODE_A "aaaaaaaaaaaaaaaa"	/* this node */
#define NODE_B "bbbbbbbbbbbbbbbb"

/* What the sessions asked of the backplane, as text, one line each. */
static struct {
	bool up;
	int fail_join;		/* cl->join refuses */
	unsigned sids;
	char log[4096];
	struct sb_conn *asked;	/* the last join's connection */
} B;

static void blog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void blog(const char *fmt, ...)
{
	size_t n = strlen(B.log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(B.log + n, sizeof(B.log) - n, fmt, ap);
	va_end(ap);
}

static bool b_up(void *arg)
{
	(void)arg;
	return B.up;
}

static size_t b_sid(void *arg, char *buf)
{
	(void)arg;
	return (size_t)snprintf(buf, SB_SID_MAX, NODE_A ":%u", ++B.sids);
}

static int b_join(void *arg, struct sb_conn *c, const char *room, size_t room_len,
		  const char *id, size_t id_len, const char *nick, size_t nick_len,
		  const char *sid, size_t sid_len)
{
	(void)arg;
	if (B.fail_join)
		return -1;
	B.asked = c;
	blog("join %.*s %.*s %.*s %.*s\n", (int)room_len, room, (int)id_len, id,
	     (int)nick_len, nick, (int)sid_len, sid);
	return 0;
}

static void b_leave(void *arg, const char *room, size_t room_len, const char *id,
		    size_t id_len, const char *sid, size_t sid_len)
{
	(void)arg;
	blog("leave %.*s %.*s %.*s\n", (int)room_len, room, (int)id_len, id,
	     (int)sid_len, sid);
}

/* Logs a relay with its time (M<us> or B<us>, checked to be now, give or
 * take a minute) written as T. */
static void b_publish(void *arg, const char *node, struct sb_msg *m)
{
	struct sb_bpmsg ev;
	struct timespec ts;
	uint64_t now;
	const char *sp = memchr(m->data, ' ', m->len);

	(void)arg;
	CHECK_EQ_INT(sb_bpmsg_parse(&ev, m->data, m->len), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000u;
	CHECK(ev.sent_us > now - 60000000u && ev.sent_us < now + 60000000u);
	CHECK(sp != NULL);
	blog("to %.*s %cT%.*s\n", SB_NODE_LEN, node, m->data[0],
	     (int)(m->len - (size_t)(sp - m->data)), sp);
}

static const struct sb_cluster_ops cluster_ops = {
	NULL, b_up, b_sid, b_join, b_leave, b_publish,
};

static void setup_cluster(void)
{
	setup();
	memset(&B, 0, sizeof(B));
	B.up = true;
	F.env.cluster = &cluster_ops;
	sb_registry_set_node(F.env.reg, NODE_A);
}

/* The backplane lets the last join in, with these members of the room on
 * other nodes (ids and sids of NODE_B, empty nicks) at seq. */
static void let_in(struct peer *p, const char *const *ids, int n, uint64_t seq)
{
	struct sb_join_answer *a = calloc(1, sizeof(*a));
	struct sb_member *m = calloc((size_t)n + 1, sizeof(*m));
	static char sids[8][32];

	CHECK(a && m);
	CHECK(n <= 8);
	for (int i = 0; i < n; i++) {
		snprintf(sids[i], sizeof(sids[i]), NODE_B ":%d", i + 1);
		m[i].id = (struct sb_bpfield){ ids[i], strlen(ids[i]) };
		m[i].sid = (struct sb_bpfield){ sids[i], strlen(sids[i]) };
		m[i].nick = (struct sb_bpfield){ "", 0 };
	}
	a->err = SB_ERR_NONE;
	a->snap = (struct sb_snapshot){ { "e1", 2 }, seq, m, (size_t)n };
	a->owned = m;
	CHECK(B.asked == p->s.conn);
	sb_conn_answer(p->s.conn, a);
	sb_session_answered(&p->s, F.now);
}

static void refuse(struct peer *p, enum sb_err err)
{
	sb_conn_answer(p->s.conn, sb_join_answer_refused(err));
	sb_session_answered(&p->s, F.now);
}

static void expect_log(const char *want)
{
	if (strcmp(B.log, want))
		fprintf(stderr, "backplane log:\n%s\nwanted:\n%s\n", B.log, want);
	CHECK_EQ_STR(B.log, want);
	B.log[0] = '\0';
}

static void test_cluster_join(void)
{
	struct peer a, b;
	const char *remote[] = { "bob", "cy" };

	setup_cluster();
	open_peer(&a);
	open_peer(&b);
	/* the backplane down: unavailable, nothing asked */
	B.up = false;
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	expect_error(&a, SB_ERR_UNAVAILABLE, "join");
	expect_log("");
	/* or it cannot be asked */
	B.up = true;
	B.fail_join = 1;
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	expect_error(&a, SB_ERR_UNAVAILABLE, "join");
	B.fail_join = 0;

	/* asked; what comes meanwhile waits, in order */
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"nick\":\"Al\",\"room\":\"r\"}");
	expect_log("join r alice Al " NODE_A ":2\n");	/* :1 went to the join that could not be asked */
	send_text(&a, "{\"type\":\"message\",\"payload\":{\"n\":1}}");
	send_text(&a, "{\"type\":\"join\",\"id\":\"again\"}");
	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"bob\",\"payload\":{}}");
	send_text(&a, "{\"type\":\"ping\"}");
	expect_nothing(&a);
	CHECK_EQ_INT((int)received(), 3);	/* the joins; the rest is held */
	let_in(&a, remote, 2, 7);
	{
		const char *nicks[] = { "", "" };

		expect_joined(&a, "r", "alice", "Al", 2, remote, nicks);
	}
	/* the broadcast to NODE_B once; the second join refused; the offer
	 * to bob's node; the pong */
	expect_log("to " NODE_B " BT 1:r5:alice{\"type\":\"message\",\"payload\":{\"n\":1,\"id\":\"alice\",\"nick\":\"Al\"}}\n"
		   "to " NODE_B " MT 1:r3:bob{\"type\":\"offer\",\"payload\":{\"id\":\"alice\",\"nick\":\"Al\"}}\n");
	expect_error(&a, SB_ERR_ALREADY_JOINED, "join");
	expect_pong(&a);
	expect_nothing(&a);
	CHECK_EQ_INT((int)received(), 7);

	/* a local member joins too: told of alice, the remote ones listed */
	send_text(&b, "{\"type\":\"join\",\"id\":\"dee\",\"room\":\"r\"}");
	expect_log("join r dee  " NODE_A ":3\n");
	let_in(&b, remote, 2, 9);
	{
		const char *ids[] = { "alice", "bob", "cy" }, *nicks[] = { "Al", "", "" };

		expect_joined(&b, "r", "dee", "", 3, ids, nicks);
	}
	expect_peer(&a, "join", "dee", "");
	/* the backplane goes away: a message for bob is unavailable, one for
	 * dee is delivered; a broadcast (bob and cy are on another node) is
	 * unavailable and reaches no one, dee included */
	B.up = false;
	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"bob\",\"payload\":{}}");
	expect_error(&a, SB_ERR_UNAVAILABLE, "offer");
	send_text(&a, "{\"type\":\"offer\",\"receiverId\":\"dee\",\"payload\":{}}");
	json_object_put(take_event(&b, "offer", &(struct json_object *){ NULL }));
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	expect_error(&a, SB_ERR_UNAVAILABLE, "message");
	expect_nothing(&b);
	expect_log("");
	B.up = true;

	/* leave: here and through the backplane, after what it relayed */
	send_text(&a, "{\"type\":\"message\",\"receiverId\":\"cy\",\"payload\":{}}");
	send_text(&a, "{\"type\":\"leave\"}");
	expect_log("to " NODE_B " MT 1:r2:cy{\"type\":\"message\",\"payload\":{\"id\":\"alice\",\"nick\":\"Al\"}}\n"
		   "leave r alice " NODE_A ":2\n");
	expect_peer(&b, "leave", "alice", "Al");
	sb_session_release(&a.s, true);
	sb_session_release(&b.s, true);
	expect_log("leave r dee " NODE_A ":3\n");
	teardown();
}

static void test_cluster_join_refused(void)
{
	struct peer a;

	setup_cluster();
	open_peer(&a);
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	send_text(&a, "{\"type\":\"message\",\"payload\":{}}");
	refuse(&a, SB_ERR_ROOM_FULL);
	expect_error(&a, SB_ERR_ROOM_FULL, "join");
	expect_error(&a, SB_ERR_NOT_JOINED, "message");
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	refuse(&a, SB_ERR_ID_TAKEN);
	expect_error(&a, SB_ERR_ID_TAKEN, "join");
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	refuse(&a, SB_ERR_UNAVAILABLE);
	expect_error(&a, SB_ERR_UNAVAILABLE, "join");
	expect_nothing(&a);
	/* no leave for joins that were refused */
	expect_log("join r alice  " NODE_A ":1\njoin r alice  " NODE_A ":2\n"
		   "join r alice  " NODE_A ":3\n");
	/* an answer nobody waits for is dropped */
	refuse(&a, SB_ERR_ROOM_FULL);
	expect_nothing(&a);
	sb_session_release(&a.s, true);
	expect_log("");
	teardown();
}

/* The connection ends while its join is asked: if it is let in, it leaves
 * at once; held messages are dropped; the bound on what is held. */
static void test_cluster_join_abandoned(void)
{
	struct peer a, b;
	char msg[64];

	setup_cluster();
	open_peer(&a);
	open_peer(&b);
	send_text(&a, "{\"type\":\"join\",\"id\":\"alice\",\"room\":\"r\"}");
	for (int i = 0; i < SB_HELD_MAX; i++)
		send_text(&a, "{\"type\":\"ping\"}");
	/* one more than it holds: handled now, as before a join */
	snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"payload\":{}}");
	send_text(&a, msg);
	expect_error(&a, SB_ERR_NOT_JOINED, "message");
	expect_nothing(&a);
	sb_session_release(&a.s, true);
	expect_log("join r alice  " NODE_A ":1\nleave r alice " NODE_A ":1\n");

	/* b's join is let in after a held message too big to hold */
	send_text(&b, "{\"type\":\"join\",\"id\":\"bo\",\"room\":\"r\"}");
	{
		static char big[SB_HELD_BYTES + 64];
		size_t n = (size_t)snprintf(big, sizeof(big), "{\"type\":\"message\",\"payload\":{\"x\":\"");

		memset(big + n, 'x', SB_HELD_BYTES);
		memcpy(big + n + SB_HELD_BYTES, "\"}}", 4);
		F.env.max_message = sizeof(big);
		send_text(&b, big);
		expect_error(&b, SB_ERR_NOT_JOINED, "message");
	}
	let_in(&b, NULL, 0, 3);
	expect_joined(&b, "r", "bo", "", 0, NULL, NULL);
	sb_session_release(&b.s, true);
	expect_log("join r bo  " NODE_A ":2\nleave r bo " NODE_A ":2\n");
	teardown();
}

/* ---- room tokens and iceServers ---- */

static const char tok_secret[] = "0123456789abcdef0123456789abcdef";

/* A token for room (id, name: NULL for none) expiring exp_in s from now. */
static const char *make_token(const char *room, const char *id,
			      const char *name, long exp_in)
{
	static char tok[SB_TOKEN_MAX + 1];
	int64_t now = (int64_t)time(NULL);

	CHECK(sb_token_sign_hs256(tok_secret, strlen(tok_secret), room, id, name,
				  now, now + exp_in, tok, sizeof(tok)) > 0);
	return tok;
}

static void send_join_token(struct peer *p, const char *id, const char *nick,
			    const char *room, const char *token)
{
	char msg[SB_TOKEN_MAX + 256];
	int n;

	n = snprintf(msg, sizeof(msg), "{\"type\":\"join\",\"id\":\"%s\",\"nick\":\"%s\"",
		     id, nick);
	if (room)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ",\"room\":\"%s\"", room);
	if (token)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ",\"token\":\"%s\"", token);
	CHECK((size_t)n + 2 <= sizeof(msg));
	strcat(msg, "}");
	send_text(p, msg);
}

/* unauthorized for join, with exactly this message. */
static void expect_unauthorized(struct peer *p, const char *why)
{
	struct json_object *payload, *root = take_event(p, "error", &payload);

	check_member(payload, "code", "unauthorized");
	check_member(payload, "ref", "join");
	check_member(payload, "message", why);
	json_object_put(root);
	expect_nothing(p);
}

static unsigned long refused(enum sb_err code)
{
	return atomic_load(&F.stats.joins_refused[code]);
}

static void test_tokens(void)
{
	struct sb_token_key *key;
	struct peer a, b, c;
	char msg[128];
	unsigned long n;

	setup_with(MAX_MESSAGE, 0, 2);
	key = sb_token_key_secret(tok_secret, strlen(tok_secret), msg, sizeof(msg));
	CHECK(key != NULL);
	F.env.token_key = key;
	open_peer(&a);
	open_peer(&b);
	open_peer(&c);

	/* members come first: a bad id without a token is bad_message */
	n = errors(SB_ERR_BAD_MESSAGE);
	send_text(&a, "{\"type\":\"join\",\"id\":\"\"}");
	expect_error(&a, SB_ERR_BAD_MESSAGE, "join");
	CHECK_EQ_INT(errors(SB_ERR_BAD_MESSAGE), n + 1);
	send_text(&a, "{\"type\":\"join\",\"id\":\"a\",\"token\":7}");
	expect_error(&a, SB_ERR_BAD_MESSAGE, "join");

	send_join_token(&a, "a", "A", "r", NULL);
	expect_unauthorized(&a, "a room token is required");
	send_join_token(&a, "a", "A", "r", make_token("s", NULL, NULL, 60));
	expect_unauthorized(&a, "the token is for another room");
	send_join_token(&a, "a", "A", "r", make_token("r", "b", NULL, 60));
	expect_unauthorized(&a, "the token is for another id (sub)");
	send_join_token(&a, "a", "A", "r", make_token("r", NULL, NULL, -100));
	expect_unauthorized(&a, "the token has expired");
	/* a name with a control character, or over --max-field: not a nick */
	send_join_token(&a, "a", "A", "r", make_token("r", NULL, "x\x01", 60));
	expect_unauthorized(&a, "the token's name is not a valid nick");
	send_join_token(&a, "a", "A", "r", make_token("r", NULL, "0123456789abcdefg", 60));
	expect_unauthorized(&a, "the token's name is not a valid nick");
	CHECK_EQ_INT(refused(SB_ERR_UNAUTHORIZED), 6);
	CHECK(a.s.conn->room == NULL);
	CHECK_EQ_SIZE(a.s.msgs_in, 8);

	/* the default room is what the token names */
	send_join_token(&c, "c", "C", NULL, make_token("r", NULL, NULL, 60));
	expect_unauthorized(&c, "the token is for another room");
	send_join_token(&c, "c", "C", NULL, make_token("default", NULL, "Cee", 60));
	expect_joined(&c, "default", "c", "Cee", 0, NULL, NULL);

	/* the name claim is the nick; without one the join's own */
	send_join_token(&a, "a", "ignored", "r", make_token("r", "a", "Alice", 60));
	expect_joined(&a, "r", "a", "Alice", 0, NULL, NULL);
	send_join_token(&b, "b", "Bob", "r", make_token("r", NULL, NULL, 60));
	{
		const char *ids[] = { "a" }, *nicks[] = { "Alice" };

		expect_joined(&b, "r", "b", "Bob", 1, ids, nicks);
	}
	expect_peer(&a, "join", "b", "Bob");

	/* after the token: id_taken and room_full, counted as refused joins */
	sb_session_release(&c.s, true);
	open_peer(&c);
	send_join_token(&c, "z", "", "r", make_token("r", NULL, NULL, 60));
	expect_error(&c, SB_ERR_ROOM_FULL, "join");
	CHECK_EQ_INT(refused(SB_ERR_ROOM_FULL), 1);
	sb_session_release(&b.s, true);
	expect_peer(&a, "leave", "b", "Bob");
	send_join_token(&c, "a", "", "r", make_token("r", NULL, NULL, 60));
	expect_error(&c, SB_ERR_ID_TAKEN, "join");
	CHECK_EQ_INT(refused(SB_ERR_ID_TAKEN), 1);
	CHECK_EQ_INT(refused(SB_ERR_UNAUTHORIZED), 7);
	CHECK_EQ_INT(refused(SB_ERR_UNAVAILABLE), 0);

	sb_session_release(&a.s, true);
	sb_session_release(&c.s, true);
	sb_token_key_free(key);
	teardown();
}

static void test_ice_servers(void)
{
	static struct sb_config cfg;
	struct json_object *payload, *root, *ice, *e, *urls;
	struct peer a;
	const char *user;
	size_t len;
	long long expiry;
	int64_t before;

	sb_config_defaults(&cfg);
	cfg.ice_count = 2;
	strcpy(cfg.ice_servers[0], "stun:stun.example.org");
	strcpy(cfg.ice_servers[1], "turn:turn.example.org");
	memcpy(cfg.turn_secret.bytes, "t", 1);
	cfg.turn_secret.len = 1;
	cfg.turn_ttl = 100;

	setup();
	F.env.ice = &cfg;
	open_peer(&a);
	before = (int64_t)time(NULL);
	send_text(&a, "{\"type\":\"join\",\"id\":\"a\",\"room\":\"r\"}");
	root = take_event(&a, "joined", &payload);
	CHECK_EQ_INT(json_object_object_length(payload), 5);
	check_member(payload, "id", "a");
	CHECK(json_object_object_get_ex(payload, "iceServers", &ice));
	CHECK(json_object_is_type(ice, json_type_array));
	CHECK_EQ_SIZE(json_object_array_length(ice), 2);
	e = json_object_array_get_idx(ice, 0);
	CHECK_EQ_INT(json_object_object_length(e), 1);
	CHECK(json_object_object_get_ex(e, "urls", &urls));
	CHECK_EQ_SIZE(json_object_array_length(urls), 1);
	e = json_object_array_get_idx(ice, 1);
	CHECK_EQ_INT(json_object_object_length(e), 3);
	user = member_str(e, "username", &len);
	CHECK(user != NULL);
	CHECK(sscanf(user, "%lld:", &expiry) == 1);
	CHECK(expiry >= before + 100 && expiry <= (long long)time(NULL) + 100);
	CHECK(len > 2 && !memcmp(user + len - 2, ":a", 2));
	CHECK(member_str(e, "credential", &len) != NULL);
	CHECK_EQ_SIZE(len, 28);
	json_object_put(root);
	expect_nothing(&a);
	sb_session_release(&a.s, true);
	teardown();
}

int main(void)
{
	RUN_TEST(test_open_and_release);
	RUN_TEST(test_cluster_join);
	RUN_TEST(test_cluster_join_refused);
	RUN_TEST(test_cluster_join_abandoned);
	RUN_TEST(test_ping_before_join);
	RUN_TEST(test_schedules);
	RUN_TEST(test_bad_json);
	RUN_TEST(test_bad_type);
	RUN_TEST(test_unknown_type);
	RUN_TEST(test_not_joined);
	RUN_TEST(test_already_joined);
	RUN_TEST(test_join_members);
	RUN_TEST(test_relay_members);
	RUN_TEST(test_id_taken_and_room_full);
	RUN_TEST(test_peer_not_found);
	RUN_TEST(test_order_of_checks);
	RUN_TEST(test_join_and_leave);
	RUN_TEST(test_events_in_order);
	RUN_TEST(test_relay_targeted);
	RUN_TEST(test_relay_broadcast);
	RUN_TEST(test_rate_limit);
	RUN_TEST(test_rate_limit_costs);
	RUN_TEST(test_reassembly_many_pieces);
	RUN_TEST(test_reassembly_every_split);
	RUN_TEST(test_exactly_max_message);
	RUN_TEST(test_too_big);
	RUN_TEST(test_invalid_utf8);
	RUN_TEST(test_binary);
	RUN_TEST(test_draining);
	RUN_TEST(test_end);
	RUN_TEST(test_release);
	RUN_TEST(test_last_room_and_id);
	RUN_TEST(test_queue_depth);
	RUN_TEST(test_tokens);
	RUN_TEST(test_ice_servers);
	return check_summary();
}
