/*
 * The backplane's thread (sb_backplane.h): two hiredis contexts on its own
 * libuv loop, one for commands and one subscribed to this node's channel;
 * the liveness of this node in Redis; the watchdog that declares Redis
 * unreachable when it stops answering; reconnection with backoff.
 *
 * Ownership: bp->cmd and bp->sub belong to the loop's thread.  A context
 * is forgotten (its pointer set to NULL) before it is freed, and every
 * hiredis callback first checks that its context is still the current
 * one: replies that arrive for a context being freed are ignored.
 */
#include "sb_backplane.h"

#include "sb_bpmsg.h"
#include "sb_cluster.h"
#include "sb_conn.h"
#include "sb_log.h"
#include "sb_lua.h"
#include "sb_map.h"
#include "sb_msg.h"
#include "sb_registry.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <uv.h>

#define TICK_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define LEAVE_WAIT_MS 1000
#define HOST_W 60		/* bytes of the host a reason holds */

/* The keys are in the database of --redis (src/lua, docs/cluster-data.md).
 * Channels are not per database in Redis: theirs carry its number. */

enum bp_state { BP_DOWN, BP_CONNECTING, BP_UP, BP_LEAVING };

/* Work a worker hands the backplane (sb_cluster_ops). */
enum req_kind { R_JOIN, R_LEAVE, R_PUBLISH };

struct bp_req {
	struct bp_req *next;
	enum req_kind kind;
	struct sb_conn *conn;		/* R_JOIN: a reference, for the answer */
	struct sb_msg *msg;		/* R_PUBLISH: a reference */
	char node[SB_NODE_LEN];		/* R_PUBLISH: where to */
	uint32_t room_len, id_len, nick_len, sid_len, max;
	char data[];			/* room, id, nick, sid */
};

/* A member of this node as Redis should know it: what is registered again
 * after Redis was away (rejoin.lua). */
struct bp_member {
	struct sb_conn *conn;		/* a reference: closed if its id was
					 * taken meanwhile */
	uint32_t room_len, id_len, nick_len, sid_len;
	char data[];			/* room, id, nick, sid (the key) */
};

struct sb_backplane {
	const struct sb_config *cfg;
	struct sb_bp_status *st;
	struct sb_registry *reg;
	char node[17];
	char chan[64];			/* this node's channel */
	char prefix[48];		/* every node's channel but the node */
	struct sb_cluster_ops ops;	/* what sessions call; immutable */
	atomic_ulong sids;		/* the last sid's number */

	pthread_mutex_t qlock;		/* leaf: taken under the registry's */
	struct bp_req *qhead, **qtail;	/* {qlock} */
	pthread_t thread;
	bool thread_made;
	uv_loop_t loop;
	uv_async_t wake;		/* stop */
	uv_timer_t tick;
	atomic_bool stopping;

	/* the loop's thread only */
	redisAsyncContext *cmd, *sub;
	enum bp_state state;
	bool cmd_ready, sub_ready;
	uint64_t asked_ms;		/* a heartbeat unanswered since; 0 */
	uint64_t beat_ms;		/* the last heartbeat sent */
	uint64_t began_ms;		/* the connection attempt began */
	uint64_t retry_ms;		/* the next attempt, when down */
	uint64_t leave_ms;		/* leaving began */
	unsigned backoff_ms;
	bool said_down;			/* the log has said why */
	struct bp_req *leaves;		/* leaves asked while Redis was away,
					 * for when it is back */
	struct sb_map members;		/* sid -> struct bp_member: this
					 * node's members, let in and not
					 * left */
	struct sb_map synced;		/* nodes that have registered their
					 * members again (SB_NODE_LEN-byte
					 * keys, values owned) */
	uint64_t final_ms;		/* the second read of the rooms after
					 * Redis came back; 0: none due */
};

static uint64_t now_ms(struct sb_backplane *bp)
{
	return uv_now(&bp->loop);
}

/* How long Redis may take to answer before it counts as unreachable: half
 * the node timeout, within 1 to 5 s. */
static uint64_t grace_ms(const struct sb_backplane *bp)
{
	double g = bp->cfg->node_timeout * 500;

	return g < 1000 ? 1000 : g > 5000 ? 5000 : (uint64_t)g;
}

/* How often this node says it is live: a third of the node timeout. */
static uint64_t beat_every_ms(const struct sb_backplane *bp)
{
	return (uint64_t)(bp->cfg->node_timeout * 1000 / 3);
}

static void drop_contexts(struct sb_backplane *bp)
{
	redisAsyncContext *c = bp->cmd, *s = bp->sub;

	bp->cmd = bp->sub = NULL;
	bp->cmd_ready = bp->sub_ready = false;
	bp->asked_ms = 0;
	if (c)
		redisAsyncFree(c);
	if (s)
		redisAsyncFree(s);
}

/* Redis is unreachable (or refused us) for why: both connections go, and
 * the next attempt is due after the backoff. */
static void fail(struct sb_backplane *bp, const char *why)
{
	bool was_up = bp->state == BP_UP;

	drop_contexts(bp);
	if (bp->state == BP_LEAVING)
		return;
	bp->state = BP_DOWN;
	sb_bp_status_down(bp->st, why);
	if (was_up || !bp->said_down)
		sb_log(SB_LOG_WARN, 0, "backplane unreachable: %s; peers on other "
		       "nodes are out of reach until it is back", why);
	bp->said_down = true;
	bp->retry_ms = now_ms(bp) + bp->backoff_ms;
	bp->backoff_ms = bp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			 bp->backoff_ms * 2;
}

/* A reply's error, or NULL when it is none.  A reply that is NULL (the
 * context is going away) is not looked at: the disconnect callback, or
 * whoever dropped the context, says why. */
static const char *reply_error(const redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR)
		return r->str;
	return NULL;
}

static void became_ready(struct sb_backplane *bp);
static void dispatch(struct sb_backplane *bp, const char *p, size_t n);
static void serve_queue(struct sb_backplane *bp);
static void replay_leaves(struct sb_backplane *bp);
static void register_again(struct sb_backplane *bp);

static void on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;
	const char *err;
	char why[SB_BP_WHY_MAX];

	(void)priv;
	if (ac != bp->cmd || !r)
		return;
	err = reply_error(r);
	if (err || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		snprintf(why, sizeof(why), "the heartbeat failed: %.100s",
			 err ? err : "an unexpected reply");
		fail(bp, why);
		return;
	}
	bp->asked_ms = 0;
	atomic_store(&bp->st->nodes, (unsigned)r->element[0]->integer);
	if (bp->state == BP_UP && !r->element[2]->integer) {
		/* silent past --node-timeout (frozen, or its beats lost): the
		 * others took this node for gone and removed its members */
		sb_log(SB_LOG_WARN, 0, "this node was taken for gone by the "
		       "others (silent for longer than --node-timeout); its "
		       "members are registered again");
		register_again(bp);
	}
	if (bp->state == BP_CONNECTING && bp->cmd_ready) {
		bp->state = BP_UP;
		became_ready(bp);
	}
}

static void send_heartbeat(struct sb_backplane *bp)
{
	char ms[32];

	snprintf(ms, sizeof(ms), "%.0f", bp->cfg->node_timeout * 1000);
	bp->beat_ms = now_ms(bp);
	if (!bp->asked_ms)
		bp->asked_ms = bp->beat_ms;
	if (redisAsyncCommand(bp->cmd, on_heartbeat, NULL, "EVAL %s 0 %s %s %s",
			      SB_LUA_BEAT, bp->prefix, bp->node, ms) != REDIS_OK)
		fail(bp, "cannot send to Redis");
}

static void became_ready(struct sb_backplane *bp)
{
	bp->backoff_ms = BACKOFF_MIN_MS;
	bp->said_down = false;
	sb_bp_status_up(bp->st);
	sb_log(SB_LOG_INFO, 0, "backplane up: node %s, %u live nodes", bp->node,
	       atomic_load(&bp->st->nodes));
	replay_leaves(bp);
	register_again(bp);
	serve_queue(bp);
}

/* Both connections are ready: the first heartbeat says this node is live,
 * and its answer makes the backplane up. */
static void maybe_ready(struct sb_backplane *bp)
{
	if (bp->cmd_ready && bp->sub_ready && bp->state == BP_CONNECTING)
		send_heartbeat(bp);
}

/* AUTH and SELECT went through on the command connection. */
static void on_cmd_setup(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const char *err;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->cmd || !reply)
		return;
	err = reply_error(reply);
	if (err) {
		snprintf(why, sizeof(why), "%s refused: %.100s", (const char *)priv, err);
		fail(bp, why);
		return;
	}
	if (!strcmp(priv, "SELECT")) {
		bp->cmd_ready = true;
		maybe_ready(bp);
	}
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;
	const char *err;
	char why[SB_BP_WHY_MAX];

	(void)priv;
	if (ac != bp->sub || !r)
		return;
	err = reply_error(r);
	if (err) {
		snprintf(why, sizeof(why), "SUBSCRIBE refused: %.100s", err);
		fail(bp, why);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (!strcmp(r->element[0]->str, "subscribe")) {
		bp->sub_ready = true;
		maybe_ready(bp);
	} else if (!strcmp(r->element[0]->str, "message") &&
		   r->element[2]->type == REDIS_REPLY_STRING) {
		atomic_fetch_add(&bp->st->received, 1);
		dispatch(bp, r->element[2]->str, r->element[2]->len);
	}
}

/* ------------------------------------------------------------ requests */

/* Drops a request and the references it holds; a join that was never
 * carried out is answered unavailable. */
static void req_done(struct bp_req *q, bool answer)
{
	if (q->conn) {
		if (answer)
			sb_conn_answer(q->conn, sb_join_answer_refused(SB_ERR_UNAVAILABLE));
		sb_conn_unref(q->conn);
	}
	sb_msg_unref(q->msg);
	free(q);
}

/* A room as a script lists it from element at: epoch, seq, then id, sid,
 * nick of each member; NULL when out of memory or not that. */
static struct sb_join_answer *members_of(const redisReply *r, size_t at)
{
	struct sb_join_answer *a;
	struct sb_member *m;
	size_t n, bytes = 0;
	char *p;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < at + 2 ||
	    (r->elements - at - 2) % 3 || r->element[at]->type != REDIS_REPLY_STRING ||
	    r->element[at + 1]->type != REDIS_REPLY_INTEGER ||
	    r->element[at + 1]->integer < 0)
		return NULL;
	for (size_t i = at + 2; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			return NULL;
		bytes += r->element[i]->len;
	}
	n = (r->elements - at - 2) / 3;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->owned = malloc(n * sizeof(*m) + bytes + r->element[at]->len + 1);
	if (!a->owned) {
		free(a);
		return NULL;
	}
	m = a->owned;
	p = (char *)(m + n);
	memcpy(p, r->element[at]->str, r->element[at]->len);
	a->snap.epoch = (struct sb_bpfield){ p, r->element[at]->len };
	p += r->element[at]->len;
	a->snap.seq = (uint64_t)r->element[at + 1]->integer;
	for (size_t k = 0; k < n; k++) {
		struct sb_bpfield *f[3] = { &m[k].id, &m[k].sid, &m[k].nick };

		for (int j = 0; j < 3; j++) {
			const redisReply *e = r->element[at + 2 + 3 * k + (size_t)j];

			memcpy(p, e->str, e->len);
			*f[j] = (struct sb_bpfield){ p, e->len };
			p += e->len;
		}
	}
	a->snap.members = m;
	a->snap.n = n;
	a->err = SB_ERR_NONE;
	return a;
}

/* The join script's answer: {"ok", epoch, seq, id, sid, nick, ...},
 * {"taken"} or {"full"}; NULL when out of memory or not that. */
static struct sb_join_answer *answer_of(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || !r->elements ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return NULL;
	if (!strcmp(r->element[0]->str, "taken"))
		return sb_join_answer_refused(SB_ERR_ID_TAKEN);
	if (!strcmp(r->element[0]->str, "full"))
		return sb_join_answer_refused(SB_ERR_ROOM_FULL);
	if (strcmp(r->element[0]->str, "ok"))
		return NULL;
	return members_of(r, 1);
}

/* ------------------------------------------------------------ members */

/* Records a member let in (q, a join), unless its connection has already
 * ended (its leave is on its way, or has gone before this answer). */
static void remember(struct sb_backplane *bp, const struct bp_req *q)
{
	size_t len = q->room_len + q->id_len + q->nick_len + q->sid_len;
	struct bp_member *m;

	if (sb_conn_is_dead(q->conn))
		return;
	m = malloc(sizeof(*m) + len);
	if (!m)
		return;		/* not registered again after an outage */
	m->conn = sb_conn_ref(q->conn);
	m->room_len = q->room_len;
	m->id_len = q->id_len;
	m->nick_len = q->nick_len;
	m->sid_len = q->sid_len;
	memcpy(m->data, q->data, len);
	if (sb_map_put(&bp->members, m->data + len - m->sid_len, m->sid_len, m)) {
		sb_conn_unref(m->conn);
		free(m);
	}
}

/* Forgets the member under sid (it left). */
static void forget(struct sb_backplane *bp, const char *sid, size_t len)
{
	struct bp_member *m = sb_map_del(&bp->members, sid, len);

	if (m) {
		sb_conn_unref(m->conn);
		free(m);
	}
}

static void on_rejoined(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	char *sid = priv;
	const redisReply *r = reply;
	struct bp_member *m;

	if (r && ac == bp->cmd && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    !strcmp(r->element[0]->str, "taken") &&
	    (m = sb_map_get(&bp->members, sid + sizeof(uint32_t),
			    *(uint32_t *)(void *)sid))) {
		/* another node let this id in while Redis was away from us:
		 * ours goes, and may join again */
		sb_log(SB_LOG_WARN, 0, "a member's id was taken on another node "
		       "while this one could not reach Redis: its connection "
		       "is closed");
		sb_conn_displace(m->conn);
		forget(bp, m->data + m->room_len + m->id_len + m->nick_len, m->sid_len);
	}
	free(sid);
}

static void synced_clear(struct sb_backplane *bp)
{
	void *v;

	for (size_t i = 0; (i = sb_map_next(&bp->synced, i, &v));)
		free(v);
	sb_map_release(&bp->synced);
	sb_map_init(&bp->synced);
}

/* The nodes that have registered their members again since Redis came
 * back (sb:synced), read just before the rooms. */
static void on_synced(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;

	(void)priv;
	synced_clear(bp);
	if (!r || ac != bp->cmd || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < r->elements; i++) {
		char *node;

		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i]->len != SB_NODE_LEN ||
		    !(node = malloc(SB_NODE_LEN)))
			continue;
		memcpy(node, r->element[i]->str, SB_NODE_LEN);
		if (sb_map_put(&bp->synced, node, SB_NODE_LEN, node))
			free(node);
	}
}

/* A member missing from a room read back is kept while its node has not
 * registered its members again: it may be about to (Redis restarted
 * empty). */
static bool not_synced(void *arg, const char *node)
{
	struct sb_backplane *bp = arg;

	return !sb_map_get(&bp->synced, node, SB_NODE_LEN);
}

static void on_snapshot(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const char *box = priv;
	bool final = box[0];
	uint32_t len;
	struct sb_join_answer *a;

	memcpy(&len, box + 1, sizeof(len));
	if (reply && ac == bp->cmd && !reply_error(reply) &&
	    (a = members_of(reply, 0))) {
		sb_registry_resync(bp->reg, box + 1 + sizeof(len), len, &a->snap,
				   final ? NULL : not_synced, bp);
		sb_join_answer_free(a);
	}
	free(priv);
}

/* Reads back every room this node has members in and makes the replicas
 * equal to them: at first keeping the members of nodes not yet back, and
 * a node timeout later for good (final). */
static void read_rooms(struct sb_backplane *bp, bool final)
{
	struct sb_map rooms;
	void *v;

	sb_map_init(&rooms);
	for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
		struct bp_member *m = v;

		if (!sb_map_get(&rooms, m->data, m->room_len))
			sb_map_put(&rooms, m->data, m->room_len, m);
	}
	for (size_t i = 0; (i = sb_map_next(&rooms, i, &v));) {
		struct bp_member *m = v;
		char *box = malloc(1 + sizeof(uint32_t) + m->room_len);

		if (!box)
			continue;
		box[0] = final;
		memcpy(box + 1, &m->room_len, sizeof(uint32_t));
		memcpy(box + 1 + sizeof(uint32_t), m->data, m->room_len);
		if (redisAsyncCommand(bp->cmd, on_snapshot, box, "EVAL %s 0 %b",
				      SB_LUA_SNAPSHOT, m->data,
				      (size_t)m->room_len) != REDIS_OK)
			free(box);
	}
	sb_map_release(&rooms);
}

/* A length and bytes in one allocation, for a callback's privdata. */
static char *boxed(const char *p, uint32_t len)
{
	char *b = malloc(sizeof(uint32_t) + len);

	if (b) {
		memcpy(b, &len, sizeof(len));
		memcpy(b + sizeof(len), p, len);
	}
	return b;
}

/* Redis is back: this node's members registered again (kept, added with a
 * J event to the others, or refused when their id was taken meanwhile),
 * this node marked as registered again, then each of their rooms read
 * back and the replica made equal to it (what happened meanwhile reaches
 * this node's members as join and leave events, once each).  Members of
 * nodes not yet registered again are kept until a second read, a node
 * timeout later. */
static void register_again(struct sb_backplane *bp)
{
	void *v;

	for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
		struct bp_member *m = v;
		const char *room = m->data, *id = room + m->room_len;
		const char *nick = id + m->id_len, *sid = nick + m->nick_len;
		char *box;

		if (sb_conn_is_dead(m->conn))
			continue;	/* its leave is queued */
		box = boxed(sid, m->sid_len);
		if (box && redisAsyncCommand(bp->cmd, on_rejoined, box,
					     "EVAL %s 0 %s %s %b %b %b %b", SB_LUA_REJOIN,
					     bp->prefix, bp->node, room,
					     (size_t)m->room_len, id, (size_t)m->id_len,
					     sid, (size_t)m->sid_len, nick,
					     (size_t)m->nick_len) != REDIS_OK)
			free(box);
	}
	redisAsyncCommand(bp->cmd, NULL, NULL, "SADD sb:synced %s", bp->node);
	redisAsyncCommand(bp->cmd, on_synced, NULL, "SMEMBERS sb:synced");
	read_rooms(bp, false);
	bp->final_ms = now_ms(bp) + (uint64_t)(bp->cfg->node_timeout * 1000) + 1;
}

static void on_joined(redisAsyncContext *ac, void *reply, void *priv)
{
	struct bp_req *q = priv;
	struct sb_join_answer *a = NULL;

	(void)ac;
	if (reply && !reply_error(reply))
		a = answer_of(reply);
	if (!a && reply)
		sb_log(SB_LOG_ERROR, 0, "the join script answered what it should "
		       "not: %.100s", reply_error(reply) ? reply_error(reply) :
		       "an unexpected reply");
	if (a) {
		if (a->err == SB_ERR_NONE)
			remember(ac->data, q);
		sb_conn_answer(q->conn, a);
		req_done(q, false);
	} else {
		req_done(q, true);	/* unavailable */
	}
}

static void on_left_one(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)ac;
	(void)reply;
	(void)priv;
}

/* Carries out one request, Redis being up.  false when it could not be
 * sent (the connection failed: it is handled as if Redis were down). */
static bool carry_out(struct sb_backplane *bp, struct bp_req *q)
{
	const char *room = q->data, *id = room + q->room_len;
	const char *nick = id + q->id_len, *sid = nick + q->nick_len;
	char max[16], chan[96];
	int rc = REDIS_ERR;

	switch (q->kind) {
	case R_JOIN:
		snprintf(max, sizeof(max), "%u", q->max);
		rc = redisAsyncCommand(bp->cmd, on_joined, q,
				       "EVAL %s 0 %s %s %b %b %b %b %s", SB_LUA_JOIN,
				       bp->prefix, bp->node, room, (size_t)q->room_len,
				       id, (size_t)q->id_len, sid, (size_t)q->sid_len,
				       nick, (size_t)q->nick_len, max);
		return rc == REDIS_OK;	/* on_joined owns q */
	case R_LEAVE:
		rc = redisAsyncCommand(bp->cmd, on_left_one, NULL,
				       "EVAL %s 0 %s %s %b %b %b", SB_LUA_LEAVE,
				       bp->prefix, bp->node, room, (size_t)q->room_len,
				       id, (size_t)q->id_len, sid, (size_t)q->sid_len);
		break;
	case R_PUBLISH:
		snprintf(chan, sizeof(chan), "%s%.*s", bp->prefix, SB_NODE_LEN, q->node);
		rc = redisAsyncCommand(bp->cmd, NULL, NULL, "PUBLISH %s %b", chan,
				       q->msg->data, q->msg->len);
		if (rc == REDIS_OK)
			atomic_fetch_add(&bp->st->published, 1);
		break;
	}
	if (rc != REDIS_OK)
		return false;
	req_done(q, false);
	return true;
}

/* Requests while Redis is away: a join is answered unavailable, a
 * publish is dropped (its sender was told unavailable, or the backplane
 * went away after it looked), a leave is kept for when Redis is back. */
static void set_aside(struct sb_backplane *bp, struct bp_req *q)
{
	if (q->kind == R_LEAVE) {
		q->next = bp->leaves;
		bp->leaves = q;
		return;
	}
	req_done(q, true);
}

/* Everything the workers queued, in order: the one connection to Redis
 * keeps that order, and hiredis writes the lot when the socket is ready
 * (a batch costs one write). */
static void serve_queue(struct sb_backplane *bp)
{
	struct bp_req *q;

	pthread_mutex_lock(&bp->qlock);
	q = bp->qhead;
	bp->qhead = NULL;
	bp->qtail = &bp->qhead;
	pthread_mutex_unlock(&bp->qlock);
	while (q) {
		struct bp_req *next = q->next;

		q->next = NULL;
		if (q->kind == R_LEAVE)
			forget(bp, q->data + q->room_len + q->id_len + q->nick_len,
			       q->sid_len);
		if (bp->state != BP_UP || !carry_out(bp, q))
			set_aside(bp, q);
		q = next;
	}
}

/* After Redis came back: the leaves it missed go first. */
static void replay_leaves(struct sb_backplane *bp)
{
	struct bp_req *q = bp->leaves, *rev = NULL;

	bp->leaves = NULL;
	while (q) {		/* they were kept newest first */
		struct bp_req *next = q->next;

		q->next = rev;
		rev = q;
		q = next;
	}
	while (rev) {
		struct bp_req *next = rev->next;

		rev->next = NULL;
		if (!carry_out(bp, rev))
			set_aside(bp, rev);
		rev = next;
	}
}

/* Queues q for the backplane's thread and wakes it. */
static void post(struct sb_backplane *bp, struct bp_req *q)
{
	bool was_empty;

	pthread_mutex_lock(&bp->qlock);
	was_empty = !bp->qhead;
	*bp->qtail = q;
	bp->qtail = &q->next;
	pthread_mutex_unlock(&bp->qlock);
	if (was_empty)
		uv_async_send(&bp->wake);
}

static struct bp_req *req_new(enum req_kind kind, const char *room, size_t room_len,
			      const char *id, size_t id_len, const char *nick,
			      size_t nick_len, const char *sid, size_t sid_len)
{
	struct bp_req *q = malloc(sizeof(*q) + room_len + id_len + nick_len + sid_len);
	char *p;

	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	q->room_len = (uint32_t)room_len;
	q->id_len = (uint32_t)id_len;
	q->nick_len = (uint32_t)nick_len;
	q->sid_len = (uint32_t)sid_len;
	p = q->data;
	memcpy(p, room, room_len);
	memcpy(p += room_len, id, id_len);
	memcpy(p += id_len, nick, nick_len);
	memcpy(p + nick_len, sid, sid_len);
	return q;
}

/* What arrives on this node's channel: events to the replica, relays to
 * this node's members. */
static void dispatch(struct sb_backplane *bp, const char *p, size_t n)
{
	struct sb_bpmsg ev;
	struct sb_msg *m;

	if (sb_bpmsg_parse(&ev, p, n)) {
		sb_log_client(SB_LOG_WARN, 0, "a message on this node's channel "
			      "that is not one of ours (%zu bytes) was dropped", n);
		return;
	}
	if (ev.kind == SB_BPMSG_JOIN || ev.kind == SB_BPMSG_LEAVE) {
		sb_registry_remote_event(bp->reg, &ev);
		return;
	}
	m = sb_msg_from(ev.body.p, ev.body.len);
	if (!m)
		return;
	{
		struct timespec wall, mono;
		uint64_t now_us, hop_ns = 0;

		clock_gettime(CLOCK_REALTIME, &wall);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		now_us = (uint64_t)wall.tv_sec * 1000000u + (uint64_t)wall.tv_nsec / 1000u;
		if (now_us > ev.sent_us)
			hop_ns = (now_us - ev.sent_us) * 1000u;
		sb_bp_status_hop(bp->st, (unsigned long)hop_ns);
		/* the relay latency here counts from the receipt there: the
		 * other node's time, brought to this clock (a clock that is
		 * ahead counts as no time) */
		if (hop_ns < 60000000000ull)
			m->t_rx = (uint64_t)mono.tv_sec * 1000000000u +
				  (uint64_t)mono.tv_nsec - hop_ns;
	}
	sb_registry_deliver(bp->reg, &ev, m);
	sb_msg_unref(m);
}

/* ------------------------------------------------------------ the ops */

static bool op_up(void *arg)
{
	struct sb_backplane *bp = arg;

	return atomic_load_explicit(&bp->st->up, memory_order_relaxed);
}

static size_t op_sid(void *arg, char *buf)
{
	struct sb_backplane *bp = arg;
	unsigned long n = atomic_fetch_add(&bp->sids, 1) + 1;
	int w = snprintf(buf, SB_SID_MAX, "%s:%lu", bp->node, n);

	return w > 0 ? (size_t)w : 0;
}

static int op_join(void *arg, struct sb_conn *c, const char *room, size_t room_len,
		   const char *id, size_t id_len, const char *nick, size_t nick_len,
		   const char *sid, size_t sid_len)
{
	struct sb_backplane *bp = arg;
	struct bp_req *q;

	if (atomic_load(&bp->stopping))
		return -1;
	q = req_new(R_JOIN, room, room_len, id, id_len, nick, nick_len, sid, sid_len);
	if (!q)
		return -1;
	q->conn = sb_conn_ref(c);
	q->max = bp->cfg->max_room_peers;
	post(bp, q);
	return 0;
}

static void op_leave(void *arg, const char *room, size_t room_len, const char *id,
		     size_t id_len, const char *sid, size_t sid_len)
{
	struct sb_backplane *bp = arg;
	struct bp_req *q = req_new(R_LEAVE, room, room_len, id, id_len, "", 0, sid,
				   sid_len);

	if (q)
		post(bp, q);	/* else the node's drain or death removes it */
}

static void op_publish(void *arg, const char *node, struct sb_msg *m)
{
	struct sb_backplane *bp = arg;
	struct bp_req *q = req_new(R_PUBLISH, "", 0, "", 0, "", 0, "", 0);

	if (!q)
		return;
	memcpy(q->node, node, SB_NODE_LEN);
	q->msg = sb_msg_ref(m);
	post(bp, q);
}

const struct sb_cluster_ops *sb_backplane_ops(struct sb_backplane *bp)
{
	return &bp->ops;
}

static void on_sub_setup(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const char *err;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->sub || !reply)
		return;
	err = reply_error(reply);
	if (err) {
		snprintf(why, sizeof(why), "%s refused: %.100s", (const char *)priv, err);
		fail(bp, why);
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct sb_backplane *bp = ac->data;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->cmd && ac != bp->sub)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		if (ac == bp->cmd)
			bp->cmd = NULL;
		else
			bp->sub = NULL;
		snprintf(why, sizeof(why), "cannot connect to %.*s:%d: %.80s",
			 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port, ac->errstr);
		fail(bp, why);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sb_backplane *bp = ac->data;
	char why[SB_BP_WHY_MAX];

	(void)status;
	if (ac != bp->cmd && ac != bp->sub)
		return;		/* one we dropped ourselves */
	/* hiredis frees the context after this callback */
	if (ac == bp->cmd)
		bp->cmd = NULL;
	else
		bp->sub = NULL;
	snprintf(why, sizeof(why), "the connection to %.*s:%d closed%s%.80s",
		 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port, ac->err ? ": " : "",
		 ac->err ? ac->errstr : "");
	fail(bp, why);
}

/* ------------------------------------------------------------ events */

/*
 * hiredis on the loop.  hiredis ships an adapter for libuv, but the one in
 * Debian 12 (0.14) drops a poll error on the floor: a refused connection
 * then never reaches hiredis, and the node would wait for the watchdog
 * instead of saying "Connection refused".  This one hands an error to
 * hiredis as a readiness, and hiredis finds the socket's error itself.
 */
struct bp_poll {
	uv_poll_t handle;
	redisAsyncContext *ac;		/* NULL once hiredis let go of it */
	int events;
};

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct bp_poll *p = h->data;

	if (!p->ac)
		return;
	if (status < 0)
		events = p->events & (UV_READABLE | UV_WRITABLE);
	if (p->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
	if (p->ac && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
}

static void poll_set(struct bp_poll *p, int events)
{
	p->events = events;
	if (events)
		uv_poll_start(&p->handle, events, on_poll);
	else
		uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events | UV_READABLE);
}

static void ev_del_read(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events & ~UV_READABLE);
}

static void ev_add_write(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events | UV_WRITABLE);
}

static void ev_del_write(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events & ~UV_WRITABLE);
}

static void poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void ev_cleanup(void *d)
{
	struct bp_poll *p = d;

	p->ac = NULL;
	uv_close((uv_handle_t *)&p->handle, poll_closed);
}

/* Puts ac on the loop.  0 or -1. */
static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct bp_poll *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	if (uv_poll_init(loop, &p->handle, ac->c.fd)) {
		free(p);
		return -1;
	}
	p->ac = ac;
	p->handle.data = p;
	ac->ev.data = p;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	return 0;
}

/* One connection: made, attached to the loop, AUTH and SELECT queued
 * (pipelined: they go out as the connection is made). */
static redisAsyncContext *open_one(struct sb_backplane *bp,
				   redisCallbackFn *setup)
{
	const struct sb_redis_url *u = &bp->cfg->redis;
	redisAsyncContext *ac = redisAsyncConnect(u->host, u->port);
	char db[24];

	if (!ac)
		return NULL;
	if (ac->err || attach(ac, &bp->loop)) {
		char why[SB_BP_WHY_MAX];

		snprintf(why, sizeof(why), "cannot connect to %.*s:%d: %.80s", HOST_W, u->host,
			 u->port, ac->err ? ac->errstr : "cannot watch the socket");
		redisAsyncFree(ac);
		fail(bp, why);
		return NULL;
	}
	ac->data = bp;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (u->password[0] && u->user[0])
		redisAsyncCommand(ac, setup, "AUTH", "AUTH %s %s", u->user, u->password);
	else if (u->password[0])
		redisAsyncCommand(ac, setup, "AUTH", "AUTH %s", u->password);
	snprintf(db, sizeof(db), "%ld", u->db);
	redisAsyncCommand(ac, setup, "SELECT", "SELECT %s", db);
	return ac;
}

static void connect_both(struct sb_backplane *bp)
{
	bp->state = BP_CONNECTING;
	bp->began_ms = now_ms(bp);
	bp->cmd = open_one(bp, on_cmd_setup);
	if (!bp->cmd)
		return;		/* failed, and said why */
	bp->sub = open_one(bp, on_sub_setup);
	if (!bp->sub)
		return;
	if (redisAsyncCommand(bp->sub, on_sub_message, NULL, "SUBSCRIBE %s",
			      bp->chan) != REDIS_OK)
		fail(bp, "cannot send to Redis");
}

/* ------------------------------------------------------------ leaving */

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h) && h->type != UV_POLL)
		uv_close(h, NULL);
}

static void finish(struct sb_backplane *bp)
{
	drop_contexts(bp);
	uv_walk(&bp->loop, close_handle, NULL);
}

static void on_left(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;

	(void)reply;
	(void)priv;
	if (ac == bp->cmd)
		finish(bp);
}

static void on_wake(uv_async_t *h)
{
	struct sb_backplane *bp = h->data;

	if (!atomic_load(&bp->stopping)) {
		serve_queue(bp);
		return;
	}
	if (bp->state == BP_LEAVING)
		return;
	if (bp->state == BP_UP)
		serve_queue(bp);	/* what the workers asked last goes first */
	if (bp->state == BP_UP &&
	    redisAsyncCommand(bp->cmd, on_left, NULL, "EVAL %s 0 %s %s",
			      SB_LUA_DRAIN, bp->prefix, bp->node) == REDIS_OK) {
		bp->state = BP_LEAVING;
		bp->leave_ms = now_ms(bp);
		return;		/* on_left or the tick finishes */
	}
	bp->state = BP_LEAVING;
	finish(bp);
}

static void on_tick(uv_timer_t *h)
{
	struct sb_backplane *bp = h->data;
	uint64_t now = now_ms(bp);
	char why[SB_BP_WHY_MAX];

	switch (bp->state) {
	case BP_DOWN:
		if (now >= bp->retry_ms)
			connect_both(bp);
		break;
	case BP_CONNECTING:
		if (now - bp->began_ms > grace_ms(bp)) {
			snprintf(why, sizeof(why), "%.*s:%d did not answer within %.1f s",
				 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port,
				 (double)grace_ms(bp) / 1000);
			fail(bp, why);
		}
		break;
	case BP_UP:
		if (bp->asked_ms && now - bp->asked_ms > grace_ms(bp)) {
			snprintf(why, sizeof(why), "%.*s:%d did not answer for %.1f s",
				 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port,
				 (double)grace_ms(bp) / 1000);
			fail(bp, why);
		} else if (now - bp->beat_ms >= beat_every_ms(bp)) {
			send_heartbeat(bp);
		}
		if (bp->state == BP_UP && bp->final_ms && now >= bp->final_ms) {
			bp->final_ms = 0;
			read_rooms(bp, true);
		}
		break;
	case BP_LEAVING:
		if (now - bp->leave_ms > LEAVE_WAIT_MS)
			finish(bp);
		break;
	}
}

static void *run(void *arg)
{
	struct sb_backplane *bp = arg;

	sb_log_set_thread_name("backplane");
	connect_both(bp);
	uv_run(&bp->loop, UV_RUN_DEFAULT);
	return NULL;
}

struct sb_backplane *sb_backplane_start(const struct sb_config *cfg,
					struct sb_bp_status *st,
					struct sb_registry *reg)
{
	struct sb_backplane *bp = calloc(1, sizeof(*bp));
	unsigned char id[8];
	int rc;

	if (!bp)
		return NULL;
	bp->cfg = cfg;
	bp->st = st;
	bp->reg = reg;
	bp->qtail = &bp->qhead;
	sb_map_init(&bp->members);
	sb_map_init(&bp->synced);
	bp->ops = (struct sb_cluster_ops){ bp, op_up, op_sid, op_join, op_leave,
					   op_publish };
	atomic_init(&bp->sids, 0);
	if (pthread_mutex_init(&bp->qlock, NULL)) {
		free(bp);
		return NULL;
	}
	bp->backoff_ms = BACKOFF_MIN_MS;
	atomic_init(&bp->stopping, false);
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		sb_log(SB_LOG_ERROR, errno, "cannot make a node id");
		free(bp);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(bp->node + 2 * i, 3, "%02x", id[i]);
	snprintf(bp->prefix, sizeof(bp->prefix), "sb:%ld:n:", cfg->redis.db);
	snprintf(bp->chan, sizeof(bp->chan), "%s%s", bp->prefix, bp->node);
	sb_registry_set_node(reg, bp->node);
	rc = uv_loop_init(&bp->loop);
	if (!rc) {
		rc = uv_async_init(&bp->loop, &bp->wake, on_wake);
		if (!rc)
			rc = uv_timer_init(&bp->loop, &bp->tick);
		if (rc) {
			uv_walk(&bp->loop, close_handle, NULL);
			uv_run(&bp->loop, UV_RUN_DEFAULT);
			uv_loop_close(&bp->loop);
		}
	}
	if (rc) {
		sb_log(SB_LOG_ERROR, 0, "cannot make the backplane's loop: %s",
		       uv_strerror(rc));
		free(bp);
		return NULL;
	}
	bp->wake.data = bp;
	bp->tick.data = bp;
	uv_timer_start(&bp->tick, on_tick, TICK_MS, TICK_MS);
	rc = pthread_create(&bp->thread, NULL, run, bp);
	if (rc) {
		sb_log(SB_LOG_ERROR, rc, "cannot start the backplane's thread");
		uv_walk(&bp->loop, close_handle, NULL);
		uv_run(&bp->loop, UV_RUN_DEFAULT);
		uv_loop_close(&bp->loop);
		free(bp);
		return NULL;
	}
	bp->thread_made = true;
	return bp;
}

void sb_backplane_stop(struct sb_backplane *bp)
{
	struct bp_req *q;

	if (!bp)
		return;
	atomic_store(&bp->stopping, true);
	uv_async_send(&bp->wake);
	pthread_join(bp->thread, NULL);
	uv_loop_close(&bp->loop);
	/* what was never carried out */
	for (q = bp->qhead; q;) {
		struct bp_req *next = q->next;

		req_done(q, true);
		q = next;
	}
	for (q = bp->leaves; q;) {
		struct bp_req *next = q->next;

		req_done(q, false);
		q = next;
	}
	{
		void *v;

		for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
			struct bp_member *m = v;

			sb_conn_unref(m->conn);
			free(m);
		}
		sb_map_release(&bp->members);
		synced_clear(bp);
		sb_map_release(&bp->synced);
	}
	pthread_mutex_destroy(&bp->qlock);
	free(bp);
}

const char *sb_backplane_node(const struct sb_backplane *bp)
{
	return bp->node;
}
