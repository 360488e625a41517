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
 *   empty and every queued message was freed (ASan's leak check).
 *
 * Input: a byte picks the operation and the connection, what follows is
 * its argument (a length-prefixed body).
 */
#include "fuzz.h"

#include "sb_codec.h"
#include "sb_metrics.h"
#include "sb_registry.h"
#include "sb_session.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>

#define NSESS 4
#define MAX_MESSAGE 512
#define MAX_FIELD 16
#define MAX_BACKLOG 4096

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
	return 0;
}

/* Takes and checks every event queued to s. */
static void drain(struct fsess *f)
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
		json_object_put(o);
		json_tokener_free(tok);
		sb_msg_unref(m);
	}
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

				sb_session_receive(&f->s, body, len, &p, now);
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
			drain(&sess[k]);
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
