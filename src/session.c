/*
 * The session: reassembly, limits and the protocol's actions for one
 * WebSocket connection (sb_session.h).  Worker thread only.
 */
#include "sb_session.h"

#include "sb_codec.h"
#include "sb_metrics.h"
#include "sb_registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Leaves the room, if joined. */
static void leave(struct sb_session *s, bool notify)
{
	if (!s->conn->room)
		return;
	remember(s);
	sb_registry_leave(s->env->reg, s->conn, notify);
	free(s->stamp);
	s->stamp = NULL;
}

void sb_session_end(struct sb_session *s, bool notify)
{
	if (s->ended || !s->conn)
		return;
	s->ended = true;
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

static void do_join(struct sb_session *s, struct sb_request *req)
{
	static const char def_room[] = "default";
	const char *room = req->room.present ? req->room.p : def_room;
	size_t room_len = req->room.present ? req->room.len : sizeof(def_room) - 1;
	const char *nick = req->nick.present ? req->nick.p : "";
	size_t nick_len = req->nick.present ? req->nick.len : 0;
	int rc;

	rc = sb_registry_join(s->env->reg, s->conn, room, room_len,
			      req->id.p, req->id.len, nick, nick_len);
	if (rc == -EEXIST)
		reply_error(s, SB_ERR_ID_TAKEN, "this id is taken in this room",
			    "join", 4);
	else if (rc == -ENOSPC)
		reply_error(s, SB_ERR_ROOM_FULL, "the room is full", "join", 4);
	else if (rc)
		close_with(s, SB_CLOSE_INTERNAL, SB_CAUSE_LIMIT);	/* out of memory */
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
	n = sb_registry_relay(s->env->reg, c,
			      req->receiver.present ? req->receiver.p : NULL,
			      req->receiver.len, m);
	sb_msg_unref(m);
	if (n == -ENOENT)
		reply_error(s, SB_ERR_PEER_NOT_FOUND,
			    "no other peer with that id in this room",
			    sb_type_names[req->type],
			    strlen(sb_type_names[req->type]));
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
		if (joined) {
			reply_error(s, SB_ERR_ALREADY_JOINED,
				    "already joined; send leave first", "join", 4);
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
