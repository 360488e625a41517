/*
 * The session: reassembly, limits and the protocol's actions for one
 * WebSocket connection (sb_session.h).  Worker thread only.
 */
#include "sb_session.h"

#include "sb_bpmsg.h"
#include "sb_cluster.h"
#include "sb_codec.h"
#include "sb_ice.h"
#include "sb_metrics.h"
#include "sb_registry.h"
#include "sb_token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A message that came while a join was asked of the backplane. */
struct sb_held {
	struct sb_held *next;
	uint32_t len;
	char data[];
};

/* A session's part in a cluster: allocated at its first join asked of the
 * backplane, so that a node on its own pays one pointer for it. */
struct sb_session_cl {
	bool joining;			/* a join is asked of the backplane */
	char *pend;			/* its room, id and nick, one after
					 * the other */
	uint32_t pend_room, pend_id, pend_nick;	/* their lengths */
	char *sid;			/* this member's sid while joined or
					 * joining */
	uint32_t sid_len;
	struct sb_held *held, **held_tail;	/* what came meanwhile */
	uint32_t nheld, held_bytes;
};

/* A reassembly buffer larger than this is freed after each message. */
#define RX_KEEP 4096
/* The first reassembly buffer. */
#define RX_FIRST 1024

static void close_with(struct sb_session *s, uint16_t code, enum sb_cause cause)
{
	if (!s->ended)
		s->env->ops->close(s, code, cause);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* libuv's uv_hrtime() clock */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sb_session_open(struct sb_session *s, struct sb_session_env *env,
		    struct sb_sched *sched, size_t max_backlog,
		    struct sb_qdepth *depth, uint64_t now_ms)
{
	memset(s, 0, sizeof(*s));
	s->env = env;
	s->conn = sb_conn_new(sched, max_backlog);
	if (!s->conn)
		return -ENOMEM;
	s->conn->owner_data = s;
	sb_conn_set_depth(s->conn, depth);
	s->rate_stamp = now_ms;
	s->tokens = 2 * env->rate;
	sb_utf8_init(&s->utf8);
	return 0;
}

/* Remembers the room and id s holds, for the access line. */
static void remember(struct sb_session *s)
{
	const char *room;
	size_t len;
	char *r, *id;

	room = sb_registry_room_name(s->conn, &len);
	if (!room)
		return;
	r = strndup(room, len);
	id = strndup(s->conn->id, s->conn->id_len);
	if (!r || !id) {
		free(r);
		free(id);
		return;	/* the access line goes without them */
	}
	free(s->last_room);
	free(s->last_id);
	s->last_room = r;
	s->last_id = id;
}

/* Tells the other nodes that the member under s->cl->sid left room as id,
 * and forgets the sid. */
static void cluster_leave(struct sb_session *s, const char *room, size_t room_len,
			  const char *id, size_t id_len)
{
	const struct sb_cluster_ops *cl = s->env->cluster;

	if (!s->cl)
		return;
	if (cl && s->cl->sid)
		cl->leave(cl->arg, room, room_len, id, id_len, s->cl->sid, s->cl->sid_len);
	free(s->cl->sid);
	s->cl->sid = NULL;
	s->cl->sid_len = 0;
}

/* Leaves the room, if joined. */
static void leave(struct sb_session *s, bool notify)
{
	const char *room;
	size_t room_len;

	if (!s->conn->room)
		return;
	remember(s);
	room = sb_registry_room_name(s->conn, &room_len);
	/* the other nodes hear of it after everything this member relayed:
	 * both go through the backplane's one queue */
	cluster_leave(s, room, room_len, s->conn->id, s->conn->id_len);
	sb_registry_leave(s->env->reg, s->conn, notify);
	free(s->stamp);
	s->stamp = NULL;
}

static void drop_held(struct sb_session *s)
{
	if (!s->cl)
		return;
	while (s->cl->held) {
		struct sb_held *h = s->cl->held;

		s->cl->held = h->next;
		free(h);
	}
	s->cl->held_tail = &s->cl->held;
	s->cl->nheld = s->cl->held_bytes = 0;
}

/* A join asked of the backplane is abandoned: if it is let in, it leaves
 * again at once (the leave goes after the join on the backplane's queue). */
static void abandon_join(struct sb_session *s)
{
	if (!s->cl || !s->cl->joining)
		return;
	s->cl->joining = false;
	cluster_leave(s, s->cl->pend, s->cl->pend_room, s->cl->pend + s->cl->pend_room, s->cl->pend_id);
	free(s->cl->pend);
	s->cl->pend = NULL;
	drop_held(s);
}

void sb_session_end(struct sb_session *s, bool notify)
{
	if (s->ended || !s->conn)
		return;
	s->ended = true;
	abandon_join(s);
	leave(s, notify);
	sb_conn_seal(s->conn);
}

void sb_session_release(struct sb_session *s, bool notify)
{
	if (s->conn) {
		sb_session_end(s, notify);
		s->conn->owner_data = NULL;
		sb_conn_unref(s->conn);
		s->conn = NULL;
	}
	free(s->rx);
	free(s->stamp);
	free(s->last_room);
	free(s->last_id);
	if (s->cl) {
		drop_held(s);
		free(s->cl->pend);
		free(s->cl->sid);
		free(s->cl);
		s->cl = NULL;
	}
	s->rx = s->stamp = s->last_room = s->last_id = NULL;
	s->rx_len = s->rx_cap = 0;
}

const char *sb_session_last_room(const struct sb_session *s)
{
	return s->last_room ? s->last_room : "";
}

const char *sb_session_last_id(const struct sb_session *s)
{
	return s->last_id ? s->last_id : "";
}

/* ------------------------------------------------------------ messages */

static void send_self(struct sb_session *s, struct sb_msg *m)
{
	if (!m) {
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
		return;
	}
	sb_conn_send(s->conn, m);
	sb_msg_unref(m);
}

static void reply_error(struct sb_session *s, enum sb_err code, const char *why,
			const char *ref, size_t ref_len)
{
	sb_stat_add(&s->env->stats->errors[code], 1);
	send_self(s, sb_event_error(code, why, ref, ref_len));
}

/* Token bucket: rate tokens a second, at most 2 * rate, starts full. */
static bool rate_allows(struct sb_session *s, uint64_t now)
{
	double rate = s->env->rate;

	if (rate <= 0)
		return true;
	if (now > s->rate_stamp)
		s->tokens += (double)(now - s->rate_stamp) * rate / 1000.0;
	if (s->tokens > 2 * rate)
		s->tokens = 2 * rate;
	s->rate_stamp = now;
	if (s->tokens < 1)
		return false;
	s->tokens -= 1;
	return true;
}

/* A join refused with code (unauthorized, unavailable, id_taken,
 * room_full), counted by it for /metrics. */
static void refuse_join(struct sb_session *s, enum sb_err code, const char *why)
{
	sb_stat_add(&s->env->stats->joins_refused[code], 1);
	reply_error(s, code, why, "join", 4);
}

static void refuse_unavailable(struct sb_session *s)
{
	refuse_join(s, SB_ERR_UNAVAILABLE,
		    "the cluster cannot be reached now; try again later");
}

/* Fills b (initialized here; the caller releases it) with what joined
 * carries beyond the roster for peer id: `,"iceServers":[...]` with fresh
 * credentials when ICE servers are configured, else nothing.  false when
 * out of memory. */
static bool joined_extra(struct sb_session *s, const char *id, size_t id_len,
			 struct sb_buf *b)
{
	const struct sb_config *ice = s->env->ice;

	sb_buf_init(b, (size_t)UINT32_MAX);
	if (!ice || !ice->ice_count)
		return true;
	sb_buf_adds(b, ",");
	sb_ice_servers_json(ice, id, id_len, (int64_t)time(NULL), b);
	return !sb_buf_failed(b);
}

/* The room token rules for a join of room as req->id (docs/protocol.md,
 * Room tokens): true when the join may go on, with *nick and *nick_len
 * replaced by the token's name claim when it has one (kept in claims);
 * false when it was refused (unauthorized) or the connection is closing
 * (out of memory).  Without a key, true and nothing changes. */
static bool token_allows(struct sb_session *s, const struct sb_request *req,
			 const char *room, size_t room_len,
			 struct sb_token_claims *claims,
			 const char **nick, size_t *nick_len)
{
	char why[160];
	int rc;

	if (!s->env->token_key)
		return true;
	if (!req->token.present) {
		refuse_join(s, SB_ERR_UNAUTHORIZED, "a room token is required");
		return false;
	}
	rc = sb_token_check(s->env->token_key, s->env->token_rules,
			    req->token.p, req->token.len, room, room_len,
			    req->id.p, req->id.len, (int64_t)time(NULL), claims,
			    why, sizeof(why));
	if (rc == -ENOMEM) {
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);
		return false;
	}
	if (rc) {
		refuse_join(s, SB_ERR_UNAUTHORIZED, why);
		return false;
	}
	if (claims->has_name) {
		if (!sb_codec_valid_nick(s->env->codec, claims->name,
					 claims->name_len)) {
			refuse_join(s, SB_ERR_UNAUTHORIZED,
				    "the token's name is not a valid nick");
			return false;
		}
		*nick = claims->name;
		*nick_len = claims->name_len;
	}
	return true;
}

static void do_join(struct sb_session *s, struct sb_request *req)
{
	static const char def_room[] = "default";
	const char *room = req->room.present ? req->room.p : def_room;
	size_t room_len = req->room.present ? req->room.len : sizeof(def_room) - 1;
	const char *nick = req->nick.present ? req->nick.p : "";
	size_t nick_len = req->nick.present ? req->nick.len : 0;
	const struct sb_cluster_ops *cl = s->env->cluster;
	struct sb_token_claims claims;
	struct sb_buf extra;
	char sid[SB_SID_MAX];
	size_t sid_len;
	int rc;

	if (!token_allows(s, req, room, room_len, &claims, &nick, &nick_len))
		return;
	if (cl) {
		/* the backplane decides, for the whole cluster; the answer
		 * comes later (sb_session_answered) */
		if (!cl->up(cl->arg)) {
			refuse_unavailable(s);
			return;
		}
		if (!s->cl) {
			s->cl = calloc(1, sizeof(*s->cl));
			if (!s->cl) {
				close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);
				return;
			}
			s->cl->held_tail = &s->cl->held;
		}
		sid_len = cl->sid(cl->arg, sid);
		s->cl->pend = malloc(room_len + req->id.len + nick_len + 1);
		s->cl->sid = malloc(sid_len + 1);
		if (!s->cl->pend || !s->cl->sid) {
			free(s->cl->pend);
			free(s->cl->sid);
			s->cl->pend = s->cl->sid = NULL;
			close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);
			return;
		}
		memcpy(s->cl->pend, room, room_len);
		memcpy(s->cl->pend + room_len, req->id.p, req->id.len);
		memcpy(s->cl->pend + room_len + req->id.len, nick, nick_len);
		s->cl->pend_room = (uint32_t)room_len;
		s->cl->pend_id = (uint32_t)req->id.len;
		s->cl->pend_nick = (uint32_t)nick_len;
		memcpy(s->cl->sid, sid, sid_len);
		s->cl->sid_len = (uint32_t)sid_len;
		if (cl->join(cl->arg, s->conn, room, room_len, req->id.p, req->id.len,
			     nick, nick_len, sid, sid_len)) {
			free(s->cl->pend);
			free(s->cl->sid);
			s->cl->pend = s->cl->sid = NULL;
			refuse_unavailable(s);
			return;
		}
		s->cl->joining = true;
		if (s->env->ops->pause)
			s->env->ops->pause(s, true);
		return;
	}
	if (!joined_extra(s, req->id.p, req->id.len, &extra)) {
		sb_buf_release(&extra);
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
		return;
	}
	rc = sb_registry_join_with(s->env->reg, s->conn, room, room_len,
				   req->id.p, req->id.len, nick, nick_len,
				   extra.p, extra.len);
	sb_buf_release(&extra);
	if (rc == -EEXIST)
		refuse_join(s, SB_ERR_ID_TAKEN, "this id is taken in this room");
	else if (rc == -ENOSPC)
		refuse_join(s, SB_ERR_ROOM_FULL, "the room is full");
	else if (rc)
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
}

/* What a relay in a cluster hands the other nodes. */
struct route_ctx {
	struct sb_session *s;
	struct sb_msg *m;		/* the relay, as this node's members get it */
	const char *who;		/* M: the receiver; B: the sender */
	size_t who_len;
	enum sb_bpmsg_kind kind;
	uint64_t sent_us;		/* when it came, by the wall clock */
	struct sb_msg *bp;		/* written once, for the first node */
	bool up, failed;		/* failed: out of memory */
};

/* Called by the registry, under its read lock, for each node m must go
 * to: one message written for all of them, queued to each. */
static void route_publish(void *arg, const char *node)
{
	struct route_ctx *x = arg;
	const struct sb_cluster_ops *cl = x->s->env->cluster;

	if (!x->bp) {
		struct sb_buf b;
		size_t room_len;
		const char *room = sb_registry_room_name(x->s->conn, &room_len);

		sb_buf_init(&b, (size_t)UINT32_MAX);
		sb_bpmsg_relay(&b, x->kind, x->sent_us, room, room_len, x->who,
			       x->who_len,
			       x->m->data, x->m->len);
		if (!sb_buf_failed(&b))
			x->bp = sb_msg_from(b.p, b.len);
		sb_buf_release(&b);
		if (!x->bp) {
			x->failed = true;
			return;
		}
	}
	cl->publish(cl->arg, node, x->bp);
}

/* A relay in a cluster: to this node's members through the registry, to
 * the others through the backplane.  The recipients, -ENOENT, or
 * -EHOSTUNREACH when other nodes must carry it and the backplane is down
 * (then nobody gets it: a refused message reaches no one), or when it
 * could not be written for them (out of memory). */
static int relay_cluster(struct sb_session *s, struct sb_request *req,
			 struct sb_msg *m)
{
	const struct sb_cluster_ops *cl = s->env->cluster;
	struct sb_conn *c = s->conn;
	struct route_ctx x = { .s = s, .m = m, .up = cl->up(cl->arg) };
	struct timespec now;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	x.sent_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
	if (req->receiver.present) {
		x.kind = SB_BPMSG_TO;
		x.who = req->receiver.p;
		x.who_len = req->receiver.len;
	} else {
		x.kind = SB_BPMSG_ALL;
		x.who = c->id;
		x.who_len = c->id_len;
	}
	n = sb_registry_route(s->env->reg, c,
			      req->receiver.present ? req->receiver.p : NULL,
			      req->receiver.len, m, x.up, route_publish, &x);
	sb_msg_unref(x.bp);
	if (n >= 0 && x.failed)
		return -EHOSTUNREACH;
	return n;
}

static void do_relay(struct sb_session *s, struct sb_request *req)
{
	struct sb_conn *c = s->conn;
	struct sb_msg *m = NULL;
	int n;

	/* the sender's identity, escaped once per join */
	if (!s->stamp) {
		size_t len = 0;

		s->stamp = sb_codec_stamp(c->id, c->id_len, c->nick, c->nick_len, &len);
		s->stamp_len = (uint32_t)len;	/* fields are <= 64 KiB */
	}
	if (s->stamp)
		m = sb_codec_relay(s->env->codec, req, s->stamp, s->stamp_len);
	if (!m) {
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
		return;
	}
	m->t_rx = mono_ns();
	if (s->env->cluster) {
		n = relay_cluster(s, req, m);
		sb_msg_unref(m);
		if (n == -EHOSTUNREACH) {
			reply_error(s, SB_ERR_UNAVAILABLE, "the cluster cannot be "
				    "reached now; try again later",
				    sb_type_names[req->type],
				    strlen(sb_type_names[req->type]));
			return;
		}
	} else {
		n = sb_registry_relay(s->env->reg, c,
				      req->receiver.present ? req->receiver.p : NULL,
				      req->receiver.len, m);
		sb_msg_unref(m);
	}
	if (n == -ENOENT)
		reply_error(s, SB_ERR_PEER_NOT_FOUND,
			    "no other peer with that id in this room",
			    sb_type_names[req->type],
			    strlen(sb_type_names[req->type]));
}

/* Keeps a message that came while the join is asked, within the bounds.
 * false when it does not fit: it is handled now, as before a join. */
static bool hold(struct sb_session *s, const char *buf, size_t len)
{
	struct sb_held *h;

	if (s->cl->nheld >= SB_HELD_MAX || len > SB_HELD_BYTES - s->cl->held_bytes)
		return false;
	h = malloc(sizeof(*h) + len);
	if (!h)
		return false;
	h->next = NULL;
	h->len = (uint32_t)len;
	memcpy(h->data, buf, len);
	*s->cl->held_tail = h;
	s->cl->held_tail = &h->next;
	s->cl->nheld++;
	s->cl->held_bytes += (uint32_t)len;
	return true;
}

void sb_session_message(struct sb_session *s, const char *buf, size_t len,
			uint64_t now_ms)
{
	struct sb_codec *codec = s->env->codec;
	struct sb_request req;
	char why[160];
	enum sb_err e;
	bool joined;

	if (s->ended)
		return;
	if (s->cl && s->cl->joining && hold(s, buf, len))
		return;		/* handled when the backplane answers */
	sb_stat_add(&s->env->stats->received, 1);
	s->msgs_in++;
	if (s->env->draining)
		return;		/* everyone is leaving: nothing new starts */

	e = sb_codec_parse(codec, buf, len, &req, why, sizeof(why));
	if (!rate_allows(s, now_ms)) {
		reply_error(s, SB_ERR_RATE_LIMITED,
			    "too many messages; this one was dropped",
			    req.type_str, req.type_len);
		goto done;
	}
	if (e != SB_ERR_NONE) {
		bool ref = e == SB_ERR_UNKNOWN_TYPE;

		reply_error(s, e, why, ref ? req.type_str : NULL,
			    ref ? req.type_len : 0);
		goto done;
	}

	joined = s->conn->room != NULL;
	switch (req.type) {
	case SB_TYPE_PING:
		send_self(s, sb_event_pong());
		break;
	case SB_TYPE_JOIN:
		if (joined || (s->cl && s->cl->joining)) {
			reply_error(s, SB_ERR_ALREADY_JOINED, joined ?
				    "already joined; send leave first" :
				    "a join is under way", "join", 4);
			break;
		}
		if (sb_codec_check(codec, &req, why, sizeof(why)) != SB_ERR_NONE) {
			reply_error(s, SB_ERR_BAD_MESSAGE, why, "join", 4);
			break;
		}
		do_join(s, &req);
		break;
	case SB_TYPE_LEAVE:
		if (!joined)
			reply_error(s, SB_ERR_NOT_JOINED, "not in a room", "leave", 5);
		else
			leave(s, true);
		break;
	default:
		if (!joined) {
			reply_error(s, SB_ERR_NOT_JOINED, "join a room first",
				    req.type_str, req.type_len);
			break;
		}
		if (sb_codec_check(codec, &req, why, sizeof(why)) != SB_ERR_NONE) {
			reply_error(s, SB_ERR_BAD_MESSAGE, why, req.type_str,
				    req.type_len);
			break;
		}
		do_relay(s, &req);
		break;
	}
done:
	sb_codec_done(codec, &req);
}

bool sb_session_joining(const struct sb_session *s)
{
	return s->cl && s->cl->joining;
}

void sb_session_answered(struct sb_session *s, uint64_t now_ms)
{
	struct sb_join_answer *a = sb_conn_take_answer(s->conn);
	const char *room, *id, *nick;
	struct sb_buf extra;
	int rc;

	if (!a)
		return;
	if (!s->cl || !s->cl->joining || s->ended) {
		sb_join_answer_free(a);
		return;
	}
	s->cl->joining = false;
	room = s->cl->pend;
	id = room + s->cl->pend_room;
	nick = id + s->cl->pend_id;
	if (a->err != SB_ERR_NONE) {
		free(s->cl->sid);
		s->cl->sid = NULL;
		s->cl->sid_len = 0;
		if (a->err == SB_ERR_ID_TAKEN)
			refuse_join(s, a->err, "this id is taken in this room");
		else if (a->err == SB_ERR_ROOM_FULL)
			refuse_join(s, a->err, "the room is full");
		else
			refuse_unavailable(s);
	} else {
		if (joined_extra(s, id, s->cl->pend_id, &extra))
			rc = sb_registry_join_cluster(s->env->reg, s->conn, room,
						      s->cl->pend_room, id,
						      s->cl->pend_id, nick,
						      s->cl->pend_nick, extra.p,
						      extra.len, &a->snap);
		else
			rc = -ENOMEM;
		sb_buf_release(&extra);
		if (rc) {
			/* let in by the cluster, not here: out again */
			cluster_leave(s, room, s->cl->pend_room, id, s->cl->pend_id);
			if (rc == -EEXIST)
				refuse_join(s, SB_ERR_ID_TAKEN,
					    "this id is taken in this room");
			else
				close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);
		}
	}
	sb_join_answer_free(a);
	free(s->cl->pend);
	s->cl->pend = NULL;
	/* what came meanwhile, in order, until a join is asked again */
	while (s->cl->held && !s->cl->joining && !s->ended) {
		struct sb_held *h = s->cl->held;

		s->cl->held = h->next;
		if (!s->cl->held)
			s->cl->held_tail = &s->cl->held;
		s->cl->nheld--;
		s->cl->held_bytes -= h->len;
		sb_session_message(s, h->data, h->len, now_ms);
		free(h);
	}
	if (!s->cl->joining && !s->ended && s->env->ops->pause)
		s->env->ops->pause(s, false);
}

/* ------------------------------------------------------------ reassembly */

/* Makes room for need bytes of message in s->rx (need <= max).  false when
 * out of memory. */
static bool rx_reserve(struct sb_session *s, size_t need, size_t max)
{
	size_t ncap;
	char *n;

	if (need <= s->rx_cap)
		return true;
	ncap = s->rx_cap ? s->rx_cap : RX_FIRST;
	while (ncap < need)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	n = realloc(s->rx, ncap);
	if (!n)
		return false;
	s->rx = n;
	s->rx_cap = (uint32_t)ncap;	/* <= max_message */
	return true;
}

void sb_session_receive(struct sb_session *s, const void *in, size_t len,
			const struct sb_piece *piece, uint64_t now_ms)
{
	size_t max = s->env->max_message;

	if (s->ended)
		return;		/* a close is under way: what arrives is moot */
	if (piece->binary) {
		close_with(s, SB_CLOSE_UNSUPPORTED, SB_CAUSE_LIMIT);
		return;
	}
	if (piece->first) {
		s->rx_len = 0;
		sb_utf8_init(&s->utf8);
	}
	if (len > max || piece->remaining > max - len ||
	    s->rx_len > max - len - piece->remaining) {
		close_with(s, SB_CLOSE_TOO_BIG, SB_CAUSE_LIMIT);
		return;
	}
	if (!sb_utf8_feed(&s->utf8, in, len) ||
	    (piece->final && !sb_utf8_complete(&s->utf8))) {
		close_with(s, SB_CLOSE_INVALID_DATA, SB_CAUSE_PROTOCOL);
		return;
	}
	if (piece->first && piece->final) {
		sb_session_message(s, in, len, now_ms);	/* no copy */
		return;
	}
	if (!rx_reserve(s, s->rx_len + len + piece->remaining, max)) {
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
		return;
	}
	if (len)
		memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += (uint32_t)len;	/* <= max, checked above */
	if (piece->final) {
		sb_session_message(s, s->rx, s->rx_len, now_ms);
		s->rx_len = 0;
		if (s->rx_cap > RX_KEEP) {
			free(s->rx);
			s->rx = NULL;
			s->rx_cap = 0;
		}
	}
}
