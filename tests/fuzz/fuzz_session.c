/*
 * Fuzz target: the session module (src/session.c) on the registry, fed a
 * sequence of operations by several connections of one worker: message
 * pieces (first/final/remaining/binary), whole messages, the passing of
 * time, closes (ends and releases, with and without "leave" events).
 *
 * Besides crashes it checks what the session promises:
 * - the transport's close is asked for at most once per session, and after
 *   it a session takes nothing more;
 * - every event queued to any connection is one JSON object with a string
 *   "type" and an object "payload" (json-c reads it);
 * - the registry's count of peers is the number of joined sessions, at
 *   every step;
 * - a session that closed with a status left its room (its peers were
 *   told), and at the end, with every session released, the registry is
 *   empty and every queued message was freed (ASan's leak check);
 * - with room tokens required (byte 0, bit 1): a `joined` carries the ICE
 *   servers with a TURN credential, and is the answer to a join whose token
 *   the target checked itself with the same key; an `unauthorized` error
 *   names a rule and no part of the secret.
 *
 * Input: byte 0 turns on the rate limit (bit 0) and room tokens with ICE
 * servers (bit 1, the HS256 secret FUZZ_SECRET); then a byte picks the
 * operation and the connection, what follows is its argument (a
 * length-prefixed body).
 */
#include "fuzz.h"

#include "sb_codec.h"
#include "sb_config.h"
#include "sb_metrics.h"
#include "sb_registry.h"
#include "sb_session.h"
#include "sb_token.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define NSESS 4
#define MAX_MESSAGE 512
#define MAX_FIELD 16
#define MAX_BACKLOG 4096
/* The seeds' tokens are signed with it (tests/fuzz/README.md). */
#define FUZZ_SECRET "fuzz-session-secret"

struct fsess {
	struct sb_session s;
	bool open;
	int closes;		/* times the transport was asked to close */
};

static struct fsess sess[NSESS];
static struct sb_registry *reg;
static struct sb_codec *codec;
static struct sb_stats stats;
static struct sb_session_env env;
static struct sb_token_key *key;	/* FUZZ_SECRET */
static struct sb_config ice;		/* a STUN and a TURN server */
static bool guarded;			/* this input requires tokens */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_close(struct sb_session *s, uint16_t code, enum sb_cause cause)
{
	struct fsess *f = (struct fsess *)(void *)s;

	(void)cause;
	f->closes++;
	SB_FUZZ_CHECK(f->closes == 1, "close asked for %d times", f->closes);
	SB_FUZZ_CHECK(code == 0 || (code >= 1000 && code < 1016), "code %u", code);
	/* what the transport does: the session ends now */
	sb_session_end(s, true);
}

static const struct sb_session_ops ops = { on_close, NULL };

static void schedule(struct sb_sched *sc, struct sb_conn *c)
{
	(void)sc;
	(void)c;	/* the queues are read after each operation */
}

static struct sb_sched sched = { schedule };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	codec = sb_codec_new(MAX_FIELD);
	if (!codec)
		abort();
	sb_codec_set_utf8_checked(codec, true);	/* the session checks */
	env.ops = &ops;
	env.codec = codec;
	env.stats = &stats;
	env.max_message = MAX_MESSAGE;
	env.rate = 0;
	key = sb_token_key_secret(FUZZ_SECRET, strlen(FUZZ_SECRET), NULL, 0);
	if (!key)
		abort();
	sb_config_defaults(&ice);
	strcpy(ice.ice_servers[0], "stun:127.0.0.1:3478");
	strcpy(ice.ice_servers[1], "turn:127.0.0.1:3478");
	ice.ice_count = 2;
	memcpy(ice.turn_secret.bytes, "turn", 4);
	ice.turn_secret.len = 4;
	return 0;
}

/* The ICE servers of a `joined` in a guarded run: the STUN entry and the
 * TURN one with its credential. */
static void check_joined(json_object *payload)
{
	json_object *servers, *turn, *user;

	SB_FUZZ_CHECK(json_object_object_get_ex(payload, "iceServers", &servers) &&
		      json_object_is_type(servers, json_type_array) &&
		      json_object_array_length(servers) == 2,
		      "a joined without its two ICE servers");
	turn = json_object_array_get_idx(servers, 1);
	SB_FUZZ_CHECK(json_object_object_get_ex(turn, "username", &user) &&
		      json_object_object_get_ex(turn, "credential", NULL),
		      "a TURN server without its credential");
}

/* What a connection's events of one step held: its own `joined`, an
 * `unauthorized` error. */
struct seen {
	bool joined;
	bool unauthorized;
};

/* Takes and checks every event queued to s, and notes in *seen (NULL
 * allowed) what they held. */
static void drain(struct fsess *f, struct seen *seen)
{
	struct sb_msg *m;
	bool overflow, more;

	if (!f->open)
		return;
	while ((m = sb_conn_next(f->s.conn, &overflow, &more))) {
		json_tokener *tok = json_tokener_new();
		json_object *o, *type, *payload;

		if (!tok)
			abort();
		o = json_tokener_parse_ex(tok, m->data, (int)m->len);
		SB_FUZZ_CHECK(o && json_tokener_get_error(tok) == json_tokener_success &&
			      json_object_is_type(o, json_type_object),
			      "an event that is not a JSON object: %.*s", (int)m->len, m->data);
		SB_FUZZ_CHECK(json_object_object_get_ex(o, "type", &type) &&
			      json_object_is_type(type, json_type_string) &&
			      json_object_object_get_ex(o, "payload", &payload) &&
			      json_object_is_type(payload, json_type_object),
			      "an event without type or payload: %.*s", (int)m->len, m->data);
		if (!strcmp(json_object_get_string(type), "joined")) {
			SB_FUZZ_CHECK(guarded || !json_object_object_get_ex(payload, "iceServers", NULL),
				      "ICE servers without being configured");
			if (guarded)
				check_joined(payload);
			if (seen)
				seen->joined = true;
		} else if (!strcmp(json_object_get_string(type), "error")) {
			json_object *code, *text;

			if (json_object_object_get_ex(payload, "code", &code) &&
			    !strcmp(json_object_get_string(code), "unauthorized")) {
				SB_FUZZ_CHECK(guarded, "unauthorized without tokens required");
				SB_FUZZ_CHECK(json_object_object_get_ex(payload, "message", &text) &&
					      !strstr(json_object_get_string(text), FUZZ_SECRET),
					      "unauthorized without a reason, or with the secret");
				if (seen)
					seen->unauthorized = true;
			}
		}
		json_object_put(o);
		json_tokener_free(tok);
		sb_msg_unref(m);
	}
}

/* The target's own verdict on the join in body[0..len) at time now, read
 * with json-c: 1 when its token admits it to its room under its id (and its
 * name claim, if any, is a valid nick), 0 when
 * not, -1 when body is not a join object with an id and a token (the codec
 * refuses what json-c reads differently, so the verdict counts only for a
 * message the session took). */
static int token_verdict(const uint8_t *body, size_t len, int64_t now)
{
	json_tokener *t = json_tokener_new();
	json_object *o, *v, *tok, *idv;
	const char *room = "default";
	struct sb_token_claims claims;
	char why[160];
	int rc = -1;

	if (!t)
		abort();
	o = json_tokener_parse_ex(t, (const char *)body, (int)len);
	if (o && json_tokener_get_error(t) == json_tokener_success &&
	    json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "type", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    !strcmp(json_object_get_string(v), "join") &&
	    json_object_object_get_ex(o, "id", &idv) &&
	    json_object_is_type(idv, json_type_string) &&
	    json_object_object_get_ex(o, "token", &tok) &&
	    json_object_is_type(tok, json_type_string)) {
		size_t room_len = strlen(room);

		if (json_object_object_get_ex(o, "room", &v) &&
		    json_object_is_type(v, json_type_string)) {
			room = json_object_get_string(v);
			room_len = (size_t)json_object_get_string_len(v);
		}
		rc = !sb_token_check(key, NULL, json_object_get_string(tok),
				     (size_t)json_object_get_string_len(tok),
				     room, room_len,
				     json_object_get_string(idv),
				     (size_t)json_object_get_string_len(idv),
				     now, &claims, why, sizeof(why));
		/* a name claim must be a valid nick as well */
		if (rc == 1 && claims.has_name &&
		    !sb_codec_valid_nick(codec, claims.name, claims.name_len))
			rc = 0;
	}
	json_object_put(o);
	json_tokener_free(t);
	return rc;
}

static void check_counts(void)
{
	size_t rooms, peers, joined = 0;

	for (int i = 0; i < NSESS; i++)
		if (sess[i].open && sess[i].s.conn->room)
			joined++;
	sb_registry_counts(reg, &rooms, &peers);
	SB_FUZZ_CHECK(peers == joined, "registry has %zu peers, %zu joined", peers, joined);
	SB_FUZZ_CHECK(rooms <= peers, "%zu rooms for %zu peers", rooms, peers);
}

static void open_one(struct fsess *f, uint64_t now)
{
	memset(f, 0, sizeof(*f));
	if (sb_session_open(&f->s, &env, &sched, MAX_BACKLOG, NULL, now))
		abort();
	f->open = true;
}

static void release_one(struct fsess *f, bool notify)
{
	if (!f->open)
		return;
	sb_session_release(&f->s, notify);
	f->open = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t now = 1000;
	size_t i = 0;

	reg = sb_registry_new(3);
	if (!reg)
		abort();
	env.reg = reg;
	env.rate = size && (data[0] & 1) ? 4 : 0;
	guarded = size && (data[0] & 2);
	env.token_key = guarded ? key : NULL;
	env.ice = guarded ? &ice : NULL;
	env.draining = false;
	for (int k = 0; k < NSESS; k++)
		open_one(&sess[k], now);
	if (size)
		i = 1;
	while (i < size) {
		uint8_t op = data[i++];
		struct fsess *f = &sess[op % NSESS];
		size_t len = 0;
		const uint8_t *body;

		if (i < size)
			len = data[i++];
		if (len > size - i)
			len = size - i;
		body = data + i;
		i += len;
		switch ((op >> 2) % 8) {
		case 0: /* a whole text message */
		case 1:
		case 2:
			if (f->open) {
				struct sb_piece p = { true, true, false, 0 };
				struct seen seen = { false, false };
				int before = -1, after = -1;

				if (guarded)
					before = token_verdict(body, len, (int64_t)time(NULL));
				sb_session_receive(&f->s, body, len, &p, now);
				if (guarded)
					after = token_verdict(body, len, (int64_t)time(NULL));
				drain(f, &seen);
				/* (a token that expired meanwhile proves nothing) */
				if (before == after) {
					SB_FUZZ_CHECK(!seen.joined || before != 0,
						      "joined with a token the target refuses: %.*s",
						      (int)len, body);
					SB_FUZZ_CHECK(!seen.unauthorized || before != 1,
						      "unauthorized with a token the target accepts: %.*s",
						      (int)len, body);
				}
			}
			break;
		case 3: /* a piece: flags from the argument's first byte */
			if (f->open && len) {
				struct sb_piece p = {
					.first = body[0] & 1, .final = body[0] & 2,
					.binary = (body[0] & 0x3c) == 0x3c,
					.remaining = (size_t)(body[0] >> 6) * 200,
				};

				sb_session_receive(&f->s, body + 1, len - 1, &p, now);
			}
			break;
		case 4: /* time passes */
			now += len * 10;
			break;
		case 5: /* the connection goes away */
			release_one(f, !(op & 0x80));
			break;
		case 6: /* a new connection in its place */
			release_one(f, true);
			open_one(f, now);
			break;
		default: /* the server starts draining */
			env.draining = op & 0x80;
			break;
		}
		for (int k = 0; k < NSESS; k++) {
			drain(&sess[k], NULL);
			if (sess[k].open && sess[k].closes)
				SB_FUZZ_CHECK(sess[k].s.ended && !sess[k].s.conn->room,
					      "a closed session still in its room");
		}
		check_counts();
	}
	for (int k = 0; k < NSESS; k++)
		release_one(&sess[k], true);
	for (int k = 0; k < NSESS; k++)
		memset(&sess[k], 0, sizeof(sess[k]));
	check_counts();
	sb_registry_free(reg);
	return 0;
}
