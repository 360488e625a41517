/*
 * The backplane's work (include/sb_bpint.h): the queue the workers fill through
 * struct sb_cluster_ops and its carrying out on the command connection, in
 * order; what arrives on this node's channel; this node's members, and
 * their registration again when Redis comes back, with the rooms read back
 * and the replicas resynced.  The backplane's thread, but for the ops.
 */
#include "sb_bpint.h"

#include "sb_bpmsg.h"
#include "sb_conn.h"
#include "sb_log.h"
#include "sb_msg.h"
#include "sb_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* A script whose answer nothing waits for (leave, prune): only its loss
 * of the scripts matters. */
static void on_script_done(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;

	(void)priv;
	if (reply && ac == bp->cmd)
		bp_lost_scripts(bp, reply);
}

/* A callback's privdata: bytes (a sid, a room) with their length and a
 * flag, in one allocation. */
struct bp_box {
	bool final;			/* on_snapshot: the second read */
	uint32_t len;
	char data[];
};

static struct bp_box *box_new(bool final, const char *p, uint32_t len)
{
	struct bp_box *b = malloc(sizeof(*b) + len);

	if (b) {
		b->final = final;
		b->len = len;
		memcpy(b->data, p, len);
	}
	return b;
}

static void on_rejoined(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	struct bp_box *sid = priv;
	const redisReply *r = reply;
	struct bp_member *m;

	if (r && ac == bp->cmd && bp_lost_scripts(bp, r))
		r = NULL;
	if (r && ac == bp->cmd && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    !strcmp(r->element[0]->str, "taken") &&
	    (m = sb_map_get(&bp->members, sid->data, sid->len))) {
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
 * back with this Redis process (sb:synced: node -> Redis's run_id), read
 * just before the rooms. */
static void on_synced(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;

	(void)priv;
	synced_clear(bp);
	if (!r || ac != bp->cmd || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		char *node;

		/* a mark of another Redis process (an older snapshot) is not
		 * one: that node may not have settled with this one */
		if (k->type != REDIS_REPLY_STRING || k->len != SB_NODE_LEN ||
		    v->type != REDIS_REPLY_STRING || strcmp(v->str, bp->run_id) ||
		    !(node = malloc(SB_NODE_LEN)))
			continue;
		memcpy(node, k->str, SB_NODE_LEN);
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
	const struct bp_box *room = priv;
	struct sb_join_answer *a;

	if (reply && ac == bp->cmd && bp_lost_scripts(bp, reply))
		reply = NULL;
	if (reply && ac == bp->cmd && !bp_reply_error(reply) &&
	    (a = members_of(reply, 0))) {
		sb_registry_resync(bp->reg, room->data, room->len, &a->snap,
				   room->final ? NULL : not_synced, bp);
		sb_join_answer_free(a);
	}
	free(priv);
}

/* Reads back every room this node has members in and makes the replicas
 * equal to them: at first keeping the members of nodes not yet back, and
 * a node timeout later for good (final). */
void bp_read_rooms(struct sb_backplane *bp, bool final)
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
		struct bp_box *box = box_new(final, m->data, m->room_len);

		if (!box)
			continue;
		if (bp_eval(bp, S_SNAPSHOT, on_snapshot, box, 1,
			    (const char *[]){ m->data },
			    (size_t[]){ m->room_len }) != REDIS_OK)
			free(box);
	}
	sb_map_release(&rooms);
}

/* Redis is back: this node's members registered again (kept, added with a
 * J event to the others, or refused when their id was taken meanwhile),
 * this node marked as registered again, then each of their rooms read
 * back and the replica made equal to it (what happened meanwhile reaches
 * this node's members as join and leave events, once each).  Members of
 * nodes not yet registered again are kept until a second read, a node
 * timeout later. */
/* Removes from Redis the members it holds for this node that this node no
 * longer has (prune.lua): one command, the sids held as its arguments. */
static void prune(struct sb_backplane *bp)
{
	size_t n = 0, cap = 2 + bp->members.count;
	const char **argv = malloc(cap * sizeof(*argv));
	size_t *lens = malloc(cap * sizeof(*lens));
	void *v;

	if (!argv || !lens) {
		free(argv);
		free(lens);
		return;		/* the leaves kept cover the usual case */
	}
	argv[n] = bp->prefix;
	lens[n++] = strlen(bp->prefix);
	argv[n] = bp->node;
	lens[n++] = strlen(bp->node);
	for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
		struct bp_member *m = v;

		if (sb_conn_is_dead(m->conn) || n >= cap)
			continue;
		argv[n] = m->data + m->room_len + m->id_len + m->nick_len;
		lens[n++] = m->sid_len;
	}
	bp_eval(bp, S_PRUNE, on_script_done, NULL, (int)n, argv, lens);
	free(argv);
	free(lens);
}

void bp_register_again(struct sb_backplane *bp)
{
	void *v;

	prune(bp);

	for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
		struct bp_member *m = v;
		const char *room = m->data, *id = room + m->room_len;
		const char *nick = id + m->id_len, *sid = nick + m->nick_len;
		struct bp_box *box;

		if (sb_conn_is_dead(m->conn))
			continue;	/* its leave is queued */
		box = box_new(false, sid, m->sid_len);
		if (box && bp_eval(bp, S_REJOIN, on_rejoined, box, 6,
				   (const char *[]){ bp->prefix, bp->node, room, id,
						     sid, nick },
				   (size_t[]){ strlen(bp->prefix), strlen(bp->node),
					       m->room_len, m->id_len, m->sid_len,
					       m->nick_len }) != REDIS_OK)
			free(box);
	}
	redisAsyncCommand(bp->cmd, NULL, NULL, "HSET sb:synced %s %s", bp->node,
			  bp->run_id);
	redisAsyncCommand(bp->cmd, on_synced, NULL, "HGETALL sb:synced");
	bp_read_rooms(bp, false);
	bp->final_ms = bp_now_ms(bp) + (uint64_t)(bp->cfg->node_timeout * 1000) + 1;
}

static void on_joined(redisAsyncContext *ac, void *reply, void *priv)
{
	struct bp_req *q = priv;
	struct sb_join_answer *a = NULL;
	struct sb_backplane *bp = ac->data;

	if (reply && ac == bp->cmd && bp_lost_scripts(bp, reply))
		reply = NULL;	/* unavailable; the node connects again */
	if (reply && !bp_reply_error(reply))
		a = answer_of(reply);
	/* Redis refused it (out of memory, say: the join is unavailable, and
	 * clients can cause it again and again), or answered what the script
	 * never does */
	if (!a && reply && bp_reply_error(reply))
		sb_log_client(SB_LOG_WARN, 0, "a join could not be carried out: "
			      "Redis answered %.100s", bp_reply_error(reply));
	else if (!a && reply)
		sb_log(SB_LOG_ERROR, 0, "the join script answered what it should not");
	if (a) {
		if (a->err == SB_ERR_NONE)
			remember(ac->data, q);
		sb_conn_answer(q->conn, a);
		req_done(q, false);
	} else {
		req_done(q, true);	/* unavailable */
	}
}

/* Carries out one request, Redis being up.  false when it could not be
 * sent (the connection failed: it is handled as if Redis were down). */
static bool carry_out(struct sb_backplane *bp, struct bp_req *q)
{
	const char *room = q->data, *id = room + q->room_len;
	const char *nick = id + q->id_len, *sid = nick + q->nick_len;
	char max[16];
	int rc = REDIS_ERR;

	switch (q->kind) {
	case R_JOIN:
		snprintf(max, sizeof(max), "%u", q->max);
		rc = bp_eval(bp, S_JOIN, on_joined, q, 7,
			     (const char *[]){ bp->prefix, bp->node, room, id, sid,
					       nick, max },
			     (size_t[]){ strlen(bp->prefix), strlen(bp->node),
					 q->room_len, q->id_len, q->sid_len, q->nick_len,
					 strlen(max) });
		return rc == REDIS_OK;	/* on_joined owns q */
	case R_LEAVE:
		rc = bp_eval(bp, S_LEAVE, on_script_done, NULL, 5,
			     (const char *[]){ bp->prefix, bp->node, room, id, sid },
			     (size_t[]){ strlen(bp->prefix), strlen(bp->node),
					 q->room_len, q->id_len, q->sid_len });
		break;
	case R_PUBLISH:		/* gathered instead */
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

/* ------------------------------------------------------------ batches */

/* Appends v in decimal to p; the number of bytes. */
static size_t put_dec(char *p, size_t v)
{
	char t[24];
	size_t i = sizeof(t), n;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	n = sizeof(t) - i;
	memcpy(p, t + i, n);
	return n;
}

/* Sends b as one PUBLISH to its node's channel, and empties it.  The
 * command is written in place: its head in the gap before the message,
 * so that hiredis copies it once and parses nothing.  Where Redis takes
 * it, CLIENT REPLY SKIP goes first: Redis then does not answer, and the
 * pair goes to hiredis's output without a callback for an answer (so the
 * backplane does not wake to read a reply per PUBLISH).  A batch that
 * cannot be sent (out of memory, the connection failing) is dropped, as a
 * single relay was: Redis is then going away, and its senders' peers with
 * it. */
static void send_batch(struct sb_backplane *bp, struct bp_batch *b)
{
	static const char skip[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n";
	static const char pub[] = "*3\r\n$7\r\nPUBLISH\r\n$";
	size_t prefix_len = strlen(bp->prefix), len, at, h = 0;
	char head[BATCH_GAP], *msg;
	int rc;

	if (!b->n)
		return;
	at = b->n == 1 ? b->first : BATCH_GAP;	/* one relay goes as it is */
	len = b->buf.len - at;
	sb_buf_add(&b->buf, "\r\n", 2);
	if (bp->state != BP_UP || !bp->cmd) {
		b->n = 0;	/* it failed during the pass: dropped */
		return;
	}
	if (sb_buf_failed(&b->buf)) {
		sb_log(SB_LOG_ERROR, 0, "out of memory: %u relays to another "
		       "node were dropped", b->n);
		b->n = 0;
		return;
	}
	if (bp->skip_replies) {
		memcpy(head, skip, sizeof(skip) - 1);
		h = sizeof(skip) - 1;
	}
	memcpy(head + h, pub, sizeof(pub) - 1);
	h += sizeof(pub) - 1;
	h += put_dec(head + h, prefix_len + SB_NODE_LEN);
	memcpy(head + h, "\r\n", 2);
	memcpy(head + h + 2, bp->prefix, prefix_len);
	h += 2 + prefix_len;
	memcpy(head + h, b->node, SB_NODE_LEN);
	h += SB_NODE_LEN;
	memcpy(head + h, "\r\n$", 3);
	h += 3;
	h += put_dec(head + h, len);
	memcpy(head + h, "\r\n", 2);
	h += 2;
	msg = b->buf.p + at;
	memcpy(msg - h, head, h);	/* h < BATCH_GAP <= at */
	if (bp->skip_replies) {
		/* hiredis's own context: the async layer expects no reply */
		rc = redisAppendFormattedCommand(&bp->cmd->c, msg - h, h + len + 2);
		if (rc == REDIS_OK)
			bp->cmd->ev.addWrite(bp->cmd->ev.data);
	} else {
		rc = redisAsyncFormattedCommand(bp->cmd, NULL, NULL, msg - h,
						h + len + 2);
	}
	if (rc == REDIS_OK)
		atomic_fetch_add_explicit(&bp->st->published, b->n,
					  memory_order_relaxed);
	b->n = 0;
}

static void send_batches(struct sb_backplane *bp)
{
	for (unsigned i = 0; i < bp->nbatch; i++)
		send_batch(bp, &bp->batch[i]);
	bp->nbatch = 0;
}

/* Adds the relay of q to the batch of its node: relays for one node in
 * one pass go as one PUBLISH (and one message from Redis to that node).
 * Relays for different nodes may overtake each other, but nothing else
 * does: a join or a leave sends the batches before it (send_batches). */
static void gather(struct sb_backplane *bp, struct bp_req *q)
{
	static const char gap[BATCH_GAP];
	struct bp_batch *b = NULL;

	for (unsigned i = 0; i < bp->nbatch && !b; i++)
		if (!memcmp(bp->batch[i].node, q->node, SB_NODE_LEN))
			b = &bp->batch[i];
	if (!b) {
		if (bp->nbatch == BATCH_NODES)
			send_batches(bp);
		b = &bp->batch[bp->nbatch++];
		memcpy(b->node, q->node, SB_NODE_LEN);
		b->n = 0;
	}
	if (!b->n) {
		sb_buf_reset(&b->buf);
		sb_buf_add(&b->buf, gap, sizeof(gap));
		sb_buf_add(&b->buf, "P", 1);
	}
	sb_bpmsg_pack_add(&b->buf, q->msg->data, q->msg->len);
	if (!b->n++)
		b->first = b->buf.len - q->msg->len;
	if (b->buf.len - BATCH_GAP >= BATCH_BYTES)
		send_batch(bp, b);
	req_done(q, false);
}

/* Everything the workers queued, in order: the one connection to Redis
 * keeps that order, and hiredis writes the lot when the loop pass ends
 * (a pass costs one write: src/backplane.c, "events"). */
void bp_serve_queue(struct sb_backplane *bp)
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
		if (q->kind == R_PUBLISH && bp->state == BP_UP) {
			gather(bp, q);
			q = next;
			continue;
		}
		send_batches(bp);
		if (q->kind == R_LEAVE)
			forget(bp, q->data + q->room_len + q->id_len + q->nick_len,
			       q->sid_len);
		if (bp->state != BP_UP || !carry_out(bp, q))
			set_aside(bp, q);
		q = next;
	}
	send_batches(bp);
}

/* After Redis came back: the leaves it missed go first. */
void bp_replay_leaves(struct sb_backplane *bp)
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
		sb_bell_ring(&bp->wake);
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

/* A relay (M or B) to this node's members; now_us and mono_ns are the
 * wall clock's and the monotonic clock's now. */
static void deliver(struct sb_backplane *bp, const struct sb_bpmsg *ev,
		    uint64_t now_us, uint64_t mono_ns)
{
	struct sb_msg *m = sb_msg_from(ev->body.p, ev->body.len);
	uint64_t hop_ns = 0;

	if (!m)
		return;
	if (now_us > ev->sent_us)
		hop_ns = (now_us - ev->sent_us) * 1000u;
	sb_bp_status_hop(bp->st, (unsigned long)hop_ns);
	/* the relay latency here counts from the receipt there: the other
	 * node's time, brought to this clock (a clock that is ahead counts
	 * as no time) */
	if (hop_ns < 60000000000ull)
		m->t_rx = mono_ns - hop_ns;
	sb_registry_deliver(bp->reg, ev, m);
	sb_msg_unref(m);
}

static void not_ours(size_t n)
{
	sb_log_client(SB_LOG_WARN, 0, "a message on this node's channel that is "
		      "not one of ours (%zu bytes) was dropped", n);
}

/* What arrives on this node's channel: events to the replica, relays to
 * this node's members (a P's in the order written).  The number of
 * events and relays it held. */
unsigned long bp_dispatch(struct sb_backplane *bp, const char *p, size_t n)
{
	struct sb_bpmsg ev;
	struct timespec wall, mono;
	uint64_t now_us, mono_ns;
	unsigned long count = 0;

	if (sb_bpmsg_parse(&ev, p, n)) {
		not_ours(n);
		return 0;
	}
	if (ev.kind == SB_BPMSG_JOIN || ev.kind == SB_BPMSG_LEAVE) {
		sb_registry_remote_event(bp->reg, &ev);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	now_us = (uint64_t)wall.tv_sec * 1000000u + (uint64_t)wall.tv_nsec / 1000u;
	mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
	if (ev.kind != SB_BPMSG_PACK) {
		deliver(bp, &ev, now_us, mono_ns);
		return 1;
	}
	{
		struct sb_bpfield pack = ev.body, one;
		size_t at = 0;

		while (sb_bpmsg_next(&pack, &at, &one) == 1) {
			if (sb_bpmsg_parse(&ev, one.p, one.len) ||
			    (ev.kind != SB_BPMSG_TO && ev.kind != SB_BPMSG_ALL)) {
				not_ours(one.len);
				continue;
			}
			deliver(bp, &ev, now_us, mono_ns);
			count++;
		}
	}
	return count;
}

/* ------------------------------------------------------------ the ops */

static bool op_up(void *arg);
static size_t op_sid(void *arg, char *buf);
static int op_join(void *arg, struct sb_conn *c, const char *room, size_t room_len,
		   const char *id, size_t id_len, const char *nick, size_t nick_len,
		   const char *sid, size_t sid_len);
static void op_leave(void *arg, const char *room, size_t room_len, const char *id,
		     size_t id_len, const char *sid, size_t sid_len);
static void op_publish(void *arg, const char *node, struct sb_msg *m);

void bp_work_init(struct sb_backplane *bp)
{
	bp->qtail = &bp->qhead;
	sb_map_init(&bp->members);
	sb_map_init(&bp->synced);
	bp->ops = (struct sb_cluster_ops){ bp, op_up, op_sid, op_join, op_leave,
					   op_publish };
	atomic_init(&bp->sids, 0);
	for (unsigned i = 0; i < BATCH_NODES; i++)
		sb_buf_init(&bp->batch[i].buf, (size_t)1 << 31);
}

void bp_work_release(struct sb_backplane *bp)
{
	struct bp_req *q;
	void *v;

	for (q = bp->qhead; q;) {	/* never carried out */
		struct bp_req *next = q->next;

		req_done(q, true);
		q = next;
	}
	for (q = bp->leaves; q;) {
		struct bp_req *next = q->next;

		req_done(q, false);
		q = next;
	}
	for (size_t i = 0; (i = sb_map_next(&bp->members, i, &v));) {
		struct bp_member *m = v;

		sb_conn_unref(m->conn);
		free(m);
	}
	sb_map_release(&bp->members);
	synced_clear(bp);
	sb_map_release(&bp->synced);
	for (unsigned i = 0; i < BATCH_NODES; i++)
		sb_buf_release(&bp->batch[i].buf);
}

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
