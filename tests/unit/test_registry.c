/*
 * The registry: joins (the "joined" reply with its roster, "join" to the
 * others), id uniqueness per room, the room size limit, leaves with and
 * without notice, rooms vanishing when empty, and relays (targeted,
 * broadcast, unknown receiver, the sender itself).  The test plays the
 * owner of every connection: it drains their queues and parses what the
 * registry queued with json-c.
 */
#include "check.h"
#include "json_event.h"

#include "sb_conn.h"
#include "sb_msg.h"
#include "sb_registry.h"

#include <errno.h>
#include <json-c/json.h>

/* Counts schedule calls per connection through owner_data. */
static void count_schedule(struct sb_sched *s, struct sb_conn *c)
{
	(void)s;
	CHECK(c->owner_data != NULL);
	(*(int *)c->owner_data)++;
}

static struct sb_sched fake_sched = { count_schedule };

enum { MAX_CONNS = 256 };
static int sched_calls[MAX_CONNS];
static int conns_made;

static struct sb_conn *conn_new_bounded(size_t max_backlog)
{
	struct sb_conn *c = sb_conn_new(&fake_sched, max_backlog);

	CHECK(c != NULL);
	CHECK(conns_made < MAX_CONNS);
	sched_calls[conns_made] = 0;
	c->owner_data = &sched_calls[conns_made++];
	return c;
}

static struct sb_conn *conn_new(void)
{
	return conn_new_bounded((size_t)1 << 20);
}

static unsigned conn_refs(struct sb_conn *c)
{
	return atomic_load(&c->refs);
}

static unsigned msg_refs(struct sb_msg *m)
{
	return atomic_load(&m->refs);
}

static int join(struct sb_registry *r, struct sb_conn *c, const char *room,
		const char *id, const char *nick)
{
	return sb_registry_join(r, c, room, strlen(room), id, strlen(id), nick,
				strlen(nick));
}

static void check_counts(struct sb_registry *r, size_t rooms, size_t peers)
{
	size_t nr = 99, np = 99;

	sb_registry_counts(r, &nr, &np);
	CHECK_EQ_SIZE(nr, rooms);
	CHECK_EQ_SIZE(np, peers);
}

static void check_member(struct json_object *o, const char *name,
			 const char *want, size_t want_len)
{
	size_t len;
	const char *s = member_str(o, name, &len);

	CHECK_EQ_MEM(s, len, want, want_len);
}

/* The references the last event taken had, the taker's included: 1 when
 * nobody else (the registry least of all) still holds it. */
static unsigned last_event_refs;

/*
 * Takes the next message queued to c (the test is c's owner) and checks it
 * is {"type": type, "payload": {...}} and nothing else; returns the root
 * (the caller puts it) and the payload through *payload.
 */
static struct json_object *take_event(struct sb_conn *c, const char *type,
				      struct json_object **payload)
{
	struct sb_msg *m;
	struct json_object *root;
	bool overflow, more;

	m = sb_conn_next(c, &overflow, &more);
	CHECK(!overflow);
	if (!m) {
		fprintf(stderr, "expected a \"%s\" event, queue empty\n", type);
		CHECK(m != NULL);
	}
	root = parse_exact(m->data, m->len);
	last_event_refs = atomic_load(&m->refs);
	sb_msg_unref(m);
	CHECK_EQ_INT(json_object_object_length(root), 2);
	check_member(root, "type", type, strlen(type));
	CHECK(json_object_object_get_ex(root, "payload", payload));
	CHECK(json_object_is_type(*payload, json_type_object));
	return root;
}

static void expect_nothing(struct sb_conn *c)
{
	bool overflow, more;
	struct sb_msg *m = sb_conn_next(c, &overflow, &more);

	if (m)
		fprintf(stderr, "unexpected event: %.*s\n", (int)m->len, m->data);
	CHECK(m == NULL);
	CHECK(!overflow);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
}

/* Expects a join or leave event {"id","nick"} (exactly those members). */
static void expect_peer_event(struct sb_conn *c, const char *type,
			      const char *id, size_t id_len, const char *nick,
			      size_t nick_len)
{
	struct json_object *payload, *root = take_event(c, type, &payload);

	CHECK_EQ_INT(json_object_object_length(payload), 2);
	check_member(payload, "id", id, id_len);
	check_member(payload, "nick", nick, nick_len);
	json_object_put(root);
}

static void expect_peer(struct sb_conn *c, const char *type, const char *id,
			const char *nick)
{
	expect_peer_event(c, type, id, strlen(id), nick, strlen(nick));
}

/*
 * Expects "joined" for (room, id, nick) with a roster holding exactly the
 * n peers ids[i]/nicks[i], in any order.
 */
static void expect_joined(struct sb_conn *c, const char *room, const char *id,
			  const char *nick, int n, const char *const *ids,
			  const char *const *nicks)
{
	struct json_object *payload, *root = take_event(c, "joined", &payload);
	struct json_object *peers;
	bool matched[MAX_CONNS] = { false };

	CHECK_EQ_INT(json_object_object_length(payload), 4);
	check_member(payload, "id", id, strlen(id));
	check_member(payload, "nick", nick, strlen(nick));
	check_member(payload, "room", room, strlen(room));
	CHECK(json_object_object_get_ex(payload, "peers", &peers));
	CHECK(json_object_is_type(peers, json_type_array));
	CHECK_EQ_SIZE(json_object_array_length(peers), (size_t)n);
	for (int i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, (size_t)i);
		size_t idl, nickl;
		const char *pid, *pnick;
		int k;

		CHECK(json_object_is_type(p, json_type_object));
		CHECK_EQ_INT(json_object_object_length(p), 2);
		pid = member_str(p, "id", &idl);
		pnick = member_str(p, "nick", &nickl);
		for (k = 0; k < n; k++)
			if (!matched[k] && strlen(ids[k]) == idl &&
			    !memcmp(ids[k], pid, idl))
				break;
		if (k == n)
			fprintf(stderr, "unexpected peer %.*s in roster\n",
				(int)idl, pid);
		CHECK(k < n);
		matched[k] = true;
		CHECK_EQ_MEM(pnick, nickl, nicks[k], strlen(nicks[k]));
	}
	json_object_put(root);
}

static void test_first_join(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new();

	CHECK(r != NULL);
	check_counts(r, 0, 0);
	CHECK_EQ_INT(join(r, a, "lobby", "alice", "Alice"), 0);
	CHECK(a->room != NULL);
	CHECK_EQ_MEM(a->id, a->id_len, "alice", 5);
	CHECK_EQ_MEM(a->nick, a->nick_len, "Alice", 5);
	CHECK_EQ_INT(conn_refs(a), 2);	/* the registry holds one */
	CHECK_EQ_INT(*(int *)a->owner_data, 1);
	check_counts(r, 1, 1);
	expect_joined(a, "lobby", "alice", "Alice", 0, NULL, NULL);
	expect_nothing(a);

	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	CHECK(a->room == NULL);
	CHECK_EQ_INT(conn_refs(a), 1);
	check_counts(r, 0, 0);
	expect_nothing(a);	/* no event to the one who leaves */
	sb_registry_free(r);
	sb_conn_unref(a);
}

static void test_join_roster_and_notices(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	static const char *const ab_ids[] = { "alice", "bob" };
	static const char *const ab_nicks[] = { "Alice", "" };

	CHECK_EQ_INT(join(r, a, "lobby", "alice", "Alice"), 0);
	expect_joined(a, "lobby", "alice", "Alice", 0, NULL, NULL);

	CHECK_EQ_INT(join(r, b, "lobby", "bob", ""), 0);
	expect_joined(b, "lobby", "bob", "", 1, ab_ids, ab_nicks);
	CHECK_EQ_INT(last_event_refs, 1);	/* the registry kept none */
	expect_peer(a, "join", "bob", "");
	CHECK_EQ_INT(last_event_refs, 1);
	expect_nothing(a);
	expect_nothing(b);

	CHECK_EQ_INT(join(r, c, "lobby", "carol", "C"), 0);
	expect_joined(c, "lobby", "carol", "C", 2, ab_ids, ab_nicks);
	expect_peer(a, "join", "carol", "C");
	expect_peer(b, "join", "carol", "C");
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(c);
	check_counts(r, 1, 3);

	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, true), 0);
	expect_peer(b, "leave", "alice", "Alice");
	CHECK_EQ_INT(last_event_refs, 2);	/* still queued to c */
	expect_peer(c, "leave", "alice", "Alice");
	CHECK_EQ_INT(last_event_refs, 1);
	expect_peer(c, "leave", "bob", "");
	CHECK_EQ_INT(last_event_refs, 1);
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(c);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
}

/* Names with bytes that need JSON escaping come back exactly. */
static void test_names_are_escaped(void)
{
	static const char id[] = "a\"b\\c/d";
	static const char nick[] = "Zo\xc3\xab \xe2\x82\xac \"q\" \\";
	static const char room[] = "r\"\\oom \xf0\x9f\x8e\x89";
	static const char *const ids[] = { id };
	static const char *const nicks[] = { nick };
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new();

	CHECK_EQ_INT(join(r, a, room, id, nick), 0);
	expect_joined(a, room, id, nick, 0, NULL, NULL);
	CHECK_EQ_INT(join(r, b, room, "b", "\\"), 0);
	expect_joined(b, room, "b", "\\", 1, ids, nicks);
	expect_peer(a, "join", "b", "\\");
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	expect_peer(b, "leave", id, nick);
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
}

/* Drains everything queued to c so far. */
static void drain(struct sb_conn *c)
{
	struct sb_msg *m;
	bool overflow, more;

	while ((m = sb_conn_next(c, &overflow, &more)))
		sb_msg_unref(m);
	CHECK(!overflow);
}

/* Ids and rooms are byte strings: an embedded NUL or a shared prefix makes
 * a different name. */
static void test_names_are_byte_strings(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct sb_conn *d = conn_new();
	struct sb_msg *m = sb_msg_from("x", 1);

	CHECK_EQ_INT(sb_registry_join(r, a, "room", 4, "ab", 2, "", 0), 0);
	CHECK_EQ_INT(sb_registry_join(r, b, "room", 4, "a", 1, "", 0), 0);
	CHECK_EQ_INT(sb_registry_join(r, c, "room", 4, "ab\0", 3, "", 0), 0);
	CHECK_EQ_INT(sb_registry_join(r, d, "room\0x", 6, "ab", 2, "", 0), 0);
	check_counts(r, 2, 4);
	{
		struct json_object *payload, *root = take_event(d, "joined", &payload);

		check_member(payload, "room", "room\0x", 6);	/* alone */
		json_object_put(root);
	}
	drain(a);
	drain(b);
	drain(c);

	/* "a" names b only; "ab\0" names c only; d is in another room */
	CHECK_EQ_INT(sb_registry_relay(r, a, "a", 1, m), 1);
	CHECK_EQ_INT(sb_registry_relay(r, a, "ab\0", 3, m), 1);
	CHECK_EQ_INT(sb_registry_relay(r, a, "ab\0x", 4, m), -ENOENT);
	CHECK_EQ_INT(sb_registry_relay(r, a, "", 0, m), -ENOENT);
	CHECK_EQ_INT(msg_refs(m), 3);
	CHECK_EQ_SIZE(sb_conn_backlog(b), 1);
	CHECK_EQ_SIZE(sb_conn_backlog(c), 1);
	expect_nothing(a);
	expect_nothing(d);
	drain(b);
	drain(c);
	CHECK_EQ_INT(msg_refs(m), 1);
	sb_msg_unref(m);

	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, b, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, d, false), 0);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
	sb_conn_unref(d);
}

static void test_id_taken(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();

	CHECK_EQ_INT(join(r, a, "lobby", "alice", "A"), 0);
	expect_joined(a, "lobby", "alice", "A", 0, NULL, NULL);

	CHECK_EQ_INT(join(r, b, "lobby", "alice", "imposter"), -EEXIST);
	/* nothing changed: b not joined, no reference taken, no events */
	CHECK(b->room == NULL);
	CHECK(b->id == NULL);
	CHECK_EQ_INT(conn_refs(b), 1);
	CHECK_EQ_INT(*(int *)b->owner_data, 0);
	expect_nothing(a);
	expect_nothing(b);
	check_counts(r, 1, 1);

	/* the same id in another room is another peer */
	CHECK_EQ_INT(join(r, b, "other", "alice", "B"), 0);
	expect_joined(b, "other", "alice", "B", 0, NULL, NULL);
	expect_nothing(a);
	check_counts(r, 2, 2);

	/* once the holder leaves, the id is free again */
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	check_counts(r, 1, 1);
	CHECK_EQ_INT(join(r, c, "lobby", "alice", "C"), 0);
	expect_joined(c, "lobby", "alice", "C", 0, NULL, NULL);
	/* and the first holder may come back under another id */
	CHECK_EQ_INT(join(r, a, "lobby", "alice", "A"), -EEXIST);
	CHECK_EQ_INT(join(r, a, "lobby", "alice2", "A"), 0);
	{
		static const char *const c_id[] = { "alice" };
		static const char *const c_nick[] = { "C" };

		expect_joined(a, "lobby", "alice2", "A", 1, c_id, c_nick);
	}
	expect_peer(c, "join", "alice2", "A");

	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, true), 0);
	expect_peer(c, "leave", "alice2", "A");
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(c);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
}

static void test_room_full(void)
{
	struct sb_registry *r = sb_registry_new(2);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();

	CHECK_EQ_INT(join(r, a, "small", "a", ""), 0);
	CHECK_EQ_INT(join(r, b, "small", "b", ""), 0);
	CHECK_EQ_INT(join(r, c, "small", "c", ""), -ENOSPC);
	/* a taken id in a full room is id_taken, which is checked first */
	CHECK_EQ_INT(join(r, c, "small", "a", ""), -EEXIST);
	CHECK(c->room == NULL);
	CHECK_EQ_INT(conn_refs(c), 1);
	check_counts(r, 1, 2);
	expect_joined(a, "small", "a", "", 0, NULL, NULL);
	expect_peer(a, "join", "b", "");
	expect_nothing(a);
	{
		static const char *const ids[] = { "a" };
		static const char *const nicks[] = { "" };

		expect_joined(b, "small", "b", "", 1, ids, nicks);
	}
	expect_nothing(b);
	expect_nothing(c);

	/* the limit is per room */
	CHECK_EQ_INT(join(r, c, "elsewhere", "c", ""), 0);
	expect_joined(c, "elsewhere", "c", "", 0, NULL, NULL);
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);

	/* a place frees up when someone leaves */
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	expect_peer(b, "leave", "a", "");
	CHECK_EQ_INT(join(r, c, "small", "c", ""), 0);
	{
		static const char *const ids[] = { "b" };
		static const char *const nicks[] = { "" };

		expect_joined(c, "small", "c", "", 1, ids, nicks);
	}
	expect_peer(b, "join", "c", "");
	CHECK_EQ_INT(join(r, a, "small", "a", ""), -ENOSPC);

	CHECK_EQ_INT(sb_registry_leave(r, b, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
}

static void test_leave(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct sb_conn *x = conn_new();
	static const char *const a_ids[] = { "a" };
	static const char *const a_nicks[] = { "A" };

	CHECK_EQ_INT(sb_registry_leave(r, a, true), -ENOENT);	/* not joined */
	CHECK_EQ_INT(conn_refs(a), 1);
	CHECK_EQ_INT(join(r, a, "lobby", "a", "A"), 0);
	CHECK_EQ_INT(join(r, b, "lobby", "b", "B"), 0);
	CHECK_EQ_INT(join(r, c, "lobby", "c", "C"), 0);
	CHECK_EQ_INT(join(r, x, "x", "x", ""), 0);
	check_counts(r, 2, 4);
	drain(a);
	drain(b);
	drain(c);
	drain(x);

	/* with notice: the others hear of it, the leaver does not */
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	expect_peer(a, "leave", "b", "B");
	expect_peer(c, "leave", "b", "B");
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(c);
	expect_nothing(x);	/* other rooms hear nothing */
	CHECK(b->room == NULL);
	CHECK(b->id == NULL);
	CHECK_EQ_INT(conn_refs(b), 1);
	check_counts(r, 2, 3);
	CHECK_EQ_INT(sb_registry_leave(r, b, true), -ENOENT);

	/* without notice: nobody hears anything */
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);
	expect_nothing(a);
	expect_nothing(c);
	CHECK_EQ_INT(conn_refs(c), 1);
	check_counts(r, 2, 2);

	/* the connection stays usable and may join again */
	CHECK_EQ_INT(join(r, b, "lobby", "b", "B2"), 0);
	expect_joined(b, "lobby", "b", "B2", 1, a_ids, a_nicks);
	expect_peer(a, "join", "b", "B2");
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	expect_peer(b, "leave", "a", "A");
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	CHECK_EQ_INT(sb_registry_leave(r, x, true), 0);
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(x);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
	sb_conn_unref(x);
}

/* A room exists while it has members; an emptied one is gone and its name
 * starts afresh. */
static void test_empty_room_disappears(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new();

	CHECK_EQ_INT(join(r, a, "one", "a", ""), 0);
	CHECK_EQ_INT(join(r, b, "two", "b", ""), 0);
	check_counts(r, 2, 2);
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	check_counts(r, 1, 1);
	CHECK_EQ_INT(sb_registry_leave(r, b, false), 0);
	check_counts(r, 0, 0);
	drain(a);
	drain(b);

	/* joining "one" again: a fresh room, nobody in the roster */
	CHECK_EQ_INT(join(r, b, "one", "b", "again"), 0);
	expect_joined(b, "one", "b", "again", 0, NULL, NULL);
	check_counts(r, 1, 1);
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);

	/* many rooms come and go */
	for (int i = 0; i < 500; i++) {
		char name[32];

		snprintf(name, sizeof(name), "room-%d", i);
		CHECK_EQ_INT(join(r, a, name, "a", ""), 0);
		CHECK_EQ_INT(join(r, b, name, "b", ""), 0);
		check_counts(r, 1, 2);
		CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
		CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
		check_counts(r, 0, 0);
		drain(a);
		drain(b);
	}
	CHECK_EQ_INT(conn_refs(a), 1);
	CHECK_EQ_INT(conn_refs(b), 1);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
}

static void test_relay(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct sb_conn *z = conn_new();
	struct sb_msg *m = sb_msg_from("{\"type\":\"offer\"}", 16), *got;
	bool overflow, more;

	CHECK_EQ_INT(join(r, a, "lobby", "a", ""), 0);
	CHECK_EQ_INT(join(r, b, "lobby", "b", ""), 0);
	CHECK_EQ_INT(join(r, c, "lobby", "c", ""), 0);
	CHECK_EQ_INT(join(r, z, "attic", "z", ""), 0);
	drain(a);
	drain(b);
	drain(c);
	drain(z);

	/* targeted: the very same message reaches b only */
	CHECK_EQ_INT(sb_registry_relay(r, a, "b", 1, m), 1);
	CHECK_EQ_INT(msg_refs(m), 2);
	got = sb_conn_next(b, &overflow, &more);
	CHECK(got == m);
	CHECK(!more);
	sb_msg_unref(got);
	expect_nothing(a);
	expect_nothing(c);
	expect_nothing(z);

	/* broadcast: every other member of the sender's room */
	CHECK_EQ_INT(sb_registry_relay(r, b, NULL, 0, m), 2);
	CHECK_EQ_INT(msg_refs(m), 3);
	got = sb_conn_next(a, &overflow, &more);
	CHECK(got == m);
	sb_msg_unref(got);
	got = sb_conn_next(c, &overflow, &more);
	CHECK(got == m);
	sb_msg_unref(got);
	expect_nothing(b);
	expect_nothing(z);

	/* alone in a room: a broadcast reaches nobody, and is no error */
	CHECK_EQ_INT(sb_registry_relay(r, z, NULL, 0, m), 0);
	expect_nothing(z);

	/* unknown receivers, the sender itself, and peers of other rooms
	 * are not found and nothing is queued */
	CHECK_EQ_INT(sb_registry_relay(r, a, "nobody", 6, m), -ENOENT);
	CHECK_EQ_INT(sb_registry_relay(r, a, "a", 1, m), -ENOENT);
	CHECK_EQ_INT(sb_registry_relay(r, a, "z", 1, m), -ENOENT);
	CHECK_EQ_INT(sb_registry_relay(r, z, "a", 1, m), -ENOENT);
	CHECK_EQ_INT(sb_registry_relay(r, a, "bb", 2, m), -ENOENT);
	CHECK_EQ_INT(msg_refs(m), 1);
	expect_nothing(a);
	expect_nothing(b);
	expect_nothing(c);
	expect_nothing(z);

	/* order: messages from one sender arrive in the order relayed, and
	 * a leave after the leaver's last message */
	{
		struct sb_msg *m1 = sb_msg_from("1", 1), *m2 = sb_msg_from("2", 1);

		CHECK_EQ_INT(sb_registry_relay(r, a, "c", 1, m1), 1);
		CHECK_EQ_INT(sb_registry_relay(r, a, NULL, 0, m2), 2);
		CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
		got = sb_conn_next(c, &overflow, &more);
		CHECK(got == m1);
		sb_msg_unref(got);
		got = sb_conn_next(c, &overflow, &more);
		CHECK(got == m2);
		sb_msg_unref(got);
		expect_peer(c, "leave", "a", "");
		got = sb_conn_next(b, &overflow, &more);
		CHECK(got == m2);
		sb_msg_unref(got);
		expect_peer(b, "leave", "a", "");
		CHECK_EQ_INT(msg_refs(m1), 1);
		CHECK_EQ_INT(msg_refs(m2), 1);
		sb_msg_unref(m1);
		sb_msg_unref(m2);
	}
	/* a newcomer's join reaches members before anything it relays */
	CHECK_EQ_INT(join(r, a, "lobby", "a2", ""), 0);
	CHECK_EQ_INT(sb_registry_relay(r, a, "b", 1, m), 1);
	expect_peer(b, "join", "a2", "");
	got = sb_conn_next(b, &overflow, &more);
	CHECK(got == m);
	sb_msg_unref(got);
	drain(a);
	drain(c);

	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, b, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, z, false), 0);
	CHECK_EQ_INT(msg_refs(m), 1);
	sb_msg_unref(m);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
	sb_conn_unref(z);
}

/*
 * A dead member (killed by its bound, or its owner) stays joined until its
 * owner leaves; sends to it are dropped, the others still get theirs.
 */
static void test_dead_member(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct sb_msg *m = sb_msg_from("m", 1);

	CHECK_EQ_INT(join(r, a, "lobby", "a", ""), 0);
	CHECK_EQ_INT(join(r, b, "lobby", "b", ""), 0);
	CHECK_EQ_INT(join(r, c, "lobby", "c", ""), 0);
	drain(a);
	drain(c);
	sb_conn_evict(b);
	/* what the relay counts for a dead member is not pinned down here;
	 * what reaches whom is */
	CHECK(sb_registry_relay(r, a, NULL, 0, m) >= 1);
	CHECK_EQ_SIZE(sb_conn_backlog(b), 0);
	CHECK_EQ_INT(msg_refs(m), 2);	/* c's queue only */
	drain(c);
	CHECK_EQ_INT(msg_refs(m), 1);
	/* its owner closes it: the others get its leave */
	CHECK_EQ_INT(sb_registry_leave(r, b, true), 0);
	expect_peer(a, "leave", "b", "");
	expect_peer(c, "leave", "b", "");
	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, c, false), 0);
	check_counts(r, 0, 0);
	sb_msg_unref(m);
	sb_registry_free(r);
	sb_conn_unref(a);
	sb_conn_unref(b);
	sb_conn_unref(c);
}

/* A roster larger than the joiner's backlog bound still reaches it: a
 * message always fits an empty queue. */
static void test_big_roster_fits_fresh_conn(void)
{
	enum { N = 40 };
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *members[N], *late = conn_new_bounded(64);
	const char *ids[N], *nicks[N];
	char idbuf[N][32];

	for (int i = 0; i < N; i++) {
		snprintf(idbuf[i], sizeof(idbuf[i]), "member-%02d", i);
		ids[i] = idbuf[i];
		nicks[i] = "a nick of some length";
		members[i] = conn_new();
		CHECK_EQ_INT(join(r, members[i], "big", ids[i], nicks[i]), 0);
	}
	for (int i = 0; i < N; i++)
		drain(members[i]);
	CHECK_EQ_INT(join(r, late, "big", "late", ""), 0);
	CHECK(!sb_conn_is_dead(late));
	CHECK(sb_conn_backlog(late) > 64);
	expect_joined(late, "big", "late", "", N, ids, nicks);
	for (int i = 0; i < N; i++) {
		expect_peer(members[i], "join", "late", "");
		CHECK_EQ_INT(sb_registry_leave(r, members[i], false), 0);
		sb_conn_unref(members[i]);
	}
	CHECK_EQ_INT(sb_registry_leave(r, late, false), 0);
	check_counts(r, 0, 0);
	sb_registry_free(r);
	sb_conn_unref(late);
}

/* ---- clusters: the replica of members on other nodes ---- */

#define NODE_A "aaaaaaaaaaaaaaaa"	/* this node */
#define NODE_B "bbbbbbbbbbbbbbbb"
#define NODE_C "cccccccccccccccc"

/* Takes the next message queued to c, whatever it is. */
static void drop_next(struct sb_conn *c)
{
	bool overflow, more;
	struct sb_msg *m = sb_conn_next(c, &overflow, &more);

	CHECK(m != NULL);
	sb_msg_unref(m);
}

static struct sb_bpfield fld(const char *s)
{
	struct sb_bpfield f = { s, strlen(s) };

	return f;
}

static struct sb_member member(const char *id, const char *sid, const char *nick)
{
	struct sb_member m = { fld(id), fld(sid), fld(nick) };

	return m;
}

static int join_cl(struct sb_registry *r, struct sb_conn *c, const char *room,
		   const char *id, const char *nick, const char *epoch, uint64_t seq,
		   const struct sb_member *members, size_t n)
{
	struct sb_snapshot snap = { fld(epoch), seq, members, n };

	return sb_registry_join_cluster(r, c, room, strlen(room), id, strlen(id), nick,
					strlen(nick), NULL, 0, &snap);
}

/* A membership event as the backplane parses it. */
static int event(struct sb_registry *r, char kind, const char *epoch, uint64_t seq,
		 const char *room, const char *id, const char *sid, const char *nick)
{
	struct sb_bpmsg ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = (enum sb_bpmsg_kind)kind;
	ev.seq = seq;
	ev.epoch = fld(epoch);
	ev.room = fld(room);
	ev.id = fld(id);
	ev.sid = fld(sid);
	ev.nick = fld(nick);
	return sb_registry_remote_event(r, &ev);
}

/* The nodes publish was called for, in order, as one string. */
struct published {
	char nodes[256];
};

static void record(void *arg, const char *node)
{
	struct published *p = arg;
	size_t n = strlen(p->nodes);

	CHECK(n + SB_NODE_LEN + 2 < sizeof(p->nodes));
	if (n)
		p->nodes[n++] = ',';
	memcpy(p->nodes + n, node, SB_NODE_LEN);
	p->nodes[n + SB_NODE_LEN] = '\0';
}

static int route_up(struct sb_registry *r, struct sb_conn *c, const char *to,
		    bool up, struct published *p)
{
	struct sb_msg *m = sb_msg_from("{}", 2);
	int n;

	memset(p, 0, sizeof(*p));
	n = sb_registry_route(r, c, to, to ? strlen(to) : 0, m, up, record, p);
	sb_msg_unref(m);
	return n;
}

static int route(struct sb_registry *r, struct sb_conn *c, const char *to,
		 struct published *p)
{
	return route_up(r, c, to, true, p);
}

static void test_cluster_join_and_route(void)
{
	struct sb_registry *r = sb_registry_new(1);	/* the backplane decides */
	struct sb_conn *a = conn_new(), *e = conn_new();
	const struct sb_member snap[] = {
		member("bob", NODE_B ":1", "Bob"),
		member("ghost", NODE_A ":9", "Ghost"),	/* this node's: not remote */
		member("cy", NODE_C ":2", "Cy"),
		member("bob2", NODE_B ":3", ""),
	};
	struct published p;

	sb_registry_set_node(r, NODE_A);
	CHECK_EQ_INT(join_cl(r, a, "x", "alice", "Alice", "e1", 5, snap, 4), 0);
	{
		const char *ids[] = { "bob", "cy", "bob2" }, *nicks[] = { "Bob", "Cy", "" };

		expect_joined(a, "x", "alice", "Alice", 3, ids, nicks);
	}
	check_counts(r, 1, 1);	/* remote members are not this node's peers */
	/* a broadcast: each other node once, in any order */
	CHECK_EQ_INT(route(r, a, NULL, &p), 0);
	CHECK(!strcmp(p.nodes, NODE_B "," NODE_C) || !strcmp(p.nodes, NODE_C "," NODE_B));
	/* to one remote member: its node */
	CHECK_EQ_INT(route(r, a, "cy", &p), 1);
	CHECK_EQ_STR(p.nodes, NODE_C);
	CHECK_EQ_INT(route(r, a, "ghost", &p), -ENOENT);
	CHECK_EQ_INT(route(r, a, "alice", &p), -ENOENT);
	CHECK_EQ_STR(p.nodes, "");

	/* a second member here: the roster is the replica, not its snapshot;
	 * the room limit is the backplane's, not checked again */
	{
		const struct sb_member other[] = { member("zed", NODE_C ":7", "") };
		const char *ids[] = { "alice", "bob", "cy", "bob2" };
		const char *nicks[] = { "Alice", "Bob", "Cy", "" };

		CHECK_EQ_INT(join_cl(r, e, "x", "erin", "", "e1", 9, other, 1), 0);
		expect_joined(e, "x", "erin", "", 4, ids, nicks);
		expect_peer(a, "join", "erin", "");
	}
	CHECK_EQ_INT(route(r, a, NULL, &p), 1);	/* erin here */
	expect_nothing(a);
	drop_next(e);
	/* the backplane down: what other nodes must carry reaches no one,
	 * erin here included; a member here is still reached */
	CHECK_EQ_INT(route_up(r, a, NULL, false, &p), -EHOSTUNREACH);
	CHECK_EQ_STR(p.nodes, "");
	expect_nothing(e);
	CHECK_EQ_INT(route_up(r, a, "cy", false, &p), -EHOSTUNREACH);
	CHECK_EQ_STR(p.nodes, "");
	CHECK_EQ_INT(route_up(r, a, "erin", false, &p), 1);
	drop_next(e);
	CHECK_EQ_INT(route_up(r, a, "nobody", false, &p), -ENOENT);
	CHECK_EQ_INT(sb_registry_leave(r, e, true), 0);
	expect_peer(a, "leave", "erin", "");
	CHECK_EQ_INT(sb_registry_leave(r, a, true), 0);
	check_counts(r, 0, 0);
	/* the room and its replica are gone: events for it are dropped */
	CHECK_EQ_INT(event(r, 'J', "e1", 10, "x", "dan", NODE_B ":5", ""), 0);
	sb_conn_unref(a);
	sb_conn_unref(e);
	sb_registry_free(r);
}

static void test_cluster_events(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new();
	const struct sb_member snap[] = { member("bob", NODE_B ":1", "Bob") };
	struct published p;

	sb_registry_set_node(r, NODE_A);
	CHECK_EQ_INT(join_cl(r, a, "x", "alice", "", "e1", 5, snap, 1), 0);
	drop_next(a);

	/* a join, then the same again (stale): told once */
	CHECK_EQ_INT(event(r, 'J', "e1", 6, "x", "dan", NODE_C ":3", "Dan"), 1);
	expect_peer(a, "join", "dan", "Dan");
	CHECK_EQ_INT(event(r, 'J', "e1", 6, "x", "dan", NODE_C ":3", "Dan"), 0);
	CHECK_EQ_INT(event(r, 'J', "e1", 4, "x", "old", NODE_C ":1", ""), 0);	/* older than the snapshot */
	/* another epoch, this node's own members, another room: dropped */
	CHECK_EQ_INT(event(r, 'J', "e2", 99, "x", "eve", NODE_B ":8", ""), 0);
	CHECK_EQ_INT(event(r, 'J', "e1", 7, "x", "me", NODE_A ":8", ""), 0);
	CHECK_EQ_INT(event(r, 'J', "e1", 8, "y", "eve", NODE_B ":8", ""), 0);
	CHECK_EQ_INT(event(r, 'J', "e1", 9, "x", "short", "bbbb:1", ""), 0);
	expect_nothing(a);
	/* a join for one of this node's ids is not believed */
	CHECK_EQ_INT(event(r, 'J', "e1", 10, "x", "alice", NODE_B ":9", ""), 0);
	expect_nothing(a);

	/* a leave with another sid is not this member's */
	CHECK_EQ_INT(event(r, 'L', "e1", 11, "x", "bob", NODE_B ":2", "Bob"), 0);
	CHECK_EQ_INT(route(r, a, "bob", &p), 1);
	CHECK_EQ_INT(event(r, 'L', "e1", 12, "x", "bob", NODE_B ":1", "Bob"), 1);
	expect_peer(a, "leave", "bob", "Bob");
	CHECK_EQ_INT(route(r, a, "bob", &p), -ENOENT);
	CHECK_EQ_INT(route(r, a, NULL, &p), 0);
	CHECK_EQ_STR(p.nodes, NODE_C);	/* dan's node only, now */

	/* dan again under another sid: his departure was missed, then he came
	 * back: a leave, then a join */
	CHECK_EQ_INT(event(r, 'J', "e1", 13, "x", "dan", NODE_B ":4", "Dan2"), 1);
	expect_peer(a, "leave", "dan", "Dan");
	expect_peer(a, "join", "dan", "Dan2");
	CHECK_EQ_INT(route(r, a, NULL, &p), 0);
	CHECK_EQ_STR(p.nodes, NODE_B);
	expect_nothing(a);

	/* relays from other nodes */
	{
		struct sb_conn *e = conn_new();
		struct sb_msg *m = sb_msg_from("{\"type\":\"message\",\"payload\":{}}", 31);
		struct sb_bpmsg to = { .kind = SB_BPMSG_TO, .room = fld("x"), .id = fld("alice") };
		struct sb_bpmsg all = { .kind = SB_BPMSG_ALL, .room = fld("x"), .id = fld("alice") };
		struct sb_bpmsg far = { .kind = SB_BPMSG_ALL, .room = fld("x"), .id = fld("dan") };
		struct sb_bpmsg none = { .kind = SB_BPMSG_TO, .room = fld("x"), .id = fld("dan") };
		struct sb_bpmsg elsewhere = { .kind = SB_BPMSG_ALL, .room = fld("z"), .id = fld("dan") };

		CHECK_EQ_INT(join_cl(r, e, "x", "erin", "", "e1", 1, NULL, 0), 0);
		drop_next(e);
		expect_peer(a, "join", "erin", "");
		CHECK_EQ_INT(sb_registry_deliver(r, &to, m), 1);
		CHECK_EQ_INT(sb_registry_deliver(r, &all, m), 1);	/* erin: alice is the sender */
		CHECK_EQ_INT(sb_registry_deliver(r, &far, m), 2);
		CHECK_EQ_INT(sb_registry_deliver(r, &none, m), 0);
		CHECK_EQ_INT(sb_registry_deliver(r, &elsewhere, m), 0);
		json_object_put(take_event(a, "message", &(struct json_object *){ NULL }));
		json_object_put(take_event(a, "message", &(struct json_object *){ NULL }));
		expect_nothing(a);
		sb_msg_unref(m);
		CHECK_EQ_INT(sb_registry_leave(r, e, false), 0);
		sb_conn_unref(e);
	}
	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	sb_conn_unref(a);
	sb_registry_free(r);
}

/* A remote member with the joiner's id: its leave was not heard yet. */
static void test_cluster_stale_id(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new(), *d = conn_new();
	const struct sb_member snap[] = { member("dan", NODE_B ":1", "Dan") };

	sb_registry_set_node(r, NODE_A);
	CHECK_EQ_INT(join_cl(r, a, "x", "alice", "", "e1", 5, snap, 1), 0);
	drop_next(a);
	CHECK_EQ_INT(join_cl(r, d, "x", "dan", "Here", "e1", 9, NULL, 0), 0);
	expect_peer(a, "leave", "dan", "Dan");
	expect_peer(a, "join", "dan", "Here");
	{
		const char *ids[] = { "alice" }, *nicks[] = { "" };

		expect_joined(d, "x", "dan", "Here", 1, ids, nicks);
	}
	/* the old dan's leave, when it comes, is not the new one's */
	CHECK_EQ_INT(event(r, 'L', "e1", 6, "x", "dan", NODE_B ":1", "Dan"), 0);
	CHECK_EQ_INT(event(r, 'L', "e1", 10, "x", "dan", NODE_B ":1", "Dan"), 0);
	expect_nothing(a);
	CHECK_EQ_INT(sb_registry_leave(r, d, false), 0);
	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	sb_conn_unref(a);
	sb_conn_unref(d);
	sb_registry_free(r);
}

static bool keep_node_c(void *arg, const char *node)
{
	(void)arg;
	return !memcmp(node, NODE_C, SB_NODE_LEN);
}

/* After the backplane came back: the replica made equal to Redis's. */
static void test_cluster_resync(void)
{
	struct sb_registry *r = sb_registry_new(0);
	struct sb_conn *a = conn_new();
	const struct sb_member before[] = {
		member("bob", NODE_B ":1", "Bob"), member("cy", NODE_C ":1", "Cy"),
		member("dan", NODE_C ":2", "Dan"),
	};
	const struct sb_member after[] = {
		member("cy", NODE_C ":1", "Cy"),	/* kept */
		member("dan", NODE_C ":5", "Dan"),	/* left and came back */
		member("eve", NODE_B ":7", "Eve"),	/* new */
		member("alice", NODE_A ":1", ""),	/* this node's own */
	};
	struct sb_snapshot snap = { fld("e2"), 3, after, 4 };
	struct published p;

	sb_registry_set_node(r, NODE_A);
	CHECK_EQ_INT(join_cl(r, a, "x", "alice", "", "e1", 50, before, 3), 0);
	drop_next(a);
	CHECK_EQ_INT(sb_registry_resync(r, "nowhere", 7, &snap, NULL, NULL), -ENOENT);
	CHECK_EQ_INT(sb_registry_resync(r, "x", 1, &snap, NULL, NULL), 4);
	/* leaves first (bob, the old dan, in the map's order), then joins */
	{
		struct json_object *pl, *root;
		size_t len;
		const char *id1, *id2;

		root = take_event(a, "leave", &pl);
		id1 = member_str(pl, "id", &len);
		CHECK(!strcmp(id1, "bob") || !strcmp(id1, "dan"));
		json_object_put(root);
		root = take_event(a, "leave", &pl);
		id2 = member_str(pl, "id", &len);
		CHECK(!strcmp(id2, "bob") || !strcmp(id2, "dan"));
		json_object_put(root);
	}
	expect_peer(a, "join", "dan", "Dan");
	expect_peer(a, "join", "eve", "Eve");
	expect_nothing(a);
	/* the new epoch and its sequence rule from now on */
	CHECK_EQ_INT(event(r, 'J', "e1", 60, "x", "old", NODE_B ":9", ""), 0);
	CHECK_EQ_INT(event(r, 'J', "e2", 3, "x", "late", NODE_B ":9", ""), 0);
	CHECK_EQ_INT(event(r, 'J', "e2", 4, "x", "fred", NODE_B ":9", ""), 1);
	expect_peer(a, "join", "fred", "");
	/* a resync to the same state says nothing */
	{
		const struct sb_member same[] = {
			member("cy", NODE_C ":1", "Cy"), member("dan", NODE_C ":5", "Dan"),
			member("eve", NODE_B ":7", "Eve"), member("fred", NODE_B ":9", ""),
		};
		struct sb_snapshot again = { fld("e2"), 8, same, 4 };

		CHECK_EQ_INT(sb_registry_resync(r, "x", 1, &again, NULL, NULL), 0);
		expect_nothing(a);
	}
	/* cy and dan (NODE_C) missing while NODE_C may not have registered
	 * them again yet: kept; missing still later: gone */
	{
		const struct sb_member part[] = {
			member("eve", NODE_B ":7", "Eve"), member("fred", NODE_B ":9", ""),
			member("ghost", NODE_C ":99", ""),	/* NODE_C may prune it */
		};
		struct sb_snapshot early = { fld("e3"), 1, part, 3 };

		CHECK_EQ_INT(sb_registry_resync(r, "x", 1, &early, keep_node_c, NULL), 0);
		expect_nothing(a);
		CHECK_EQ_INT(route(r, a, "ghost", &p), -ENOENT);
		CHECK_EQ_INT(route(r, a, "dan", &p), 1);
		early.n = 2;	/* settled: the ghost was pruned */
		CHECK_EQ_INT(sb_registry_resync(r, "x", 1, &early, NULL, NULL), 2);
		json_object_put(take_event(a, "leave", &(struct json_object *){ NULL }));
		json_object_put(take_event(a, "leave", &(struct json_object *){ NULL }));
		expect_nothing(a);
		CHECK_EQ_INT(route(r, a, "dan", &p), -ENOENT);
	}
	CHECK_EQ_INT(route(r, a, NULL, &p), 0);
	CHECK_EQ_STR(p.nodes, NODE_B);
	CHECK_EQ_INT(sb_registry_leave(r, a, false), 0);
	sb_conn_unref(a);
	sb_registry_free(r);
}

int main(void)
{
	RUN_TEST(test_first_join);
	RUN_TEST(test_join_roster_and_notices);
	RUN_TEST(test_names_are_escaped);
	RUN_TEST(test_names_are_byte_strings);
	RUN_TEST(test_id_taken);
	RUN_TEST(test_room_full);
	RUN_TEST(test_leave);
	RUN_TEST(test_empty_room_disappears);
	RUN_TEST(test_relay);
	RUN_TEST(test_dead_member);
	RUN_TEST(test_big_roster_fits_fresh_conn);
	RUN_TEST(test_cluster_join_and_route);
	RUN_TEST(test_cluster_events);
	RUN_TEST(test_cluster_stale_id);
	RUN_TEST(test_cluster_resync);
	return check_summary();
}
