/*
 * A worker: one thread, one libuv loop, one libwebsockets context.
 *
 * Ownership.  Everything in struct sb_sock, the lws context and every wsi
 * belong to the worker's thread.  Other threads reach a worker only through
 * its inbox ({lock}) and wake it with uv_async_send() on the inbox's
 * empty-to-non-empty transition, after unlocking.  The only lws calls are
 * made on the worker's own thread, from lws callbacks or from the worker's
 * own libuv callbacks (async, check, timer).
 *
 * Closing a connection from outside its own lws callback (backlog overflow,
 * heartbeat, a guard violation, shutdown) is deferred to the check phase of
 * the loop, where no lws callback is running: lws_close_reason() then
 * lws_set_timeout(LWS_TO_KILL_SYNC), which sends the close frame; or, when
 * lws still holds bytes the client has not taken (it would drop the close
 * frame to flush them), from the WRITEABLE callback once they are out,
 * within CLOSE_FLUSH_SECS.
 */
#include "sb_worker.h"

#include "sb_codec.h"
#include "sb_conn.h"
#include "sb_http.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_netaddr.h"
#include "sb_recv_hook.h"
#include "sb_registry.h"
#include "sb_server.h"
#include "sb_utf8.h"
#include "sb_wsguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

/* Bytes per lws RECEIVE chunk; allocated per connection by lws.  With the
 * recv hook's read-ahead (64 KiB per read) a bigger buffer no longer buys
 * fewer system calls, only memory: 1 KiB measured as fast as 2 KiB, at
 * 1 KiB less per connection. */
#define RX_CHUNK 1024
/* A reassembly buffer larger than this is freed after each message. */
#define RX_KEEP 4096
/* At most this many messages, and bytes unless one message is larger, go
 * out in one write. */
#define BATCH_MSGS 64
#define BATCH_BYTES 65536
/* The most one send() carries (lws's tx_packet_size): a whole batch. */
#define TX_MAX (4 * BATCH_BYTES)
/* How long a close frame waits behind bytes the client does not read. */
#define CLOSE_FLUSH_SECS 5
/* The payload of our heartbeat pings (clients echo it in their pongs). */
#define PING_DATA "sb"

/* Per-socket state, from adoption to WSI_DESTROY.  Worker thread only. */
struct sb_sock {
	struct sb_rx rx_state;		/* first: the recv hook's view */
	struct sb_worker *w;
	struct lws *wsi;		/* NULL once lws destroyed it */
	int fd;
	struct sb_utf8 utf8;		/* of the message being reassembled */

	struct sb_conn *conn;		/* WebSocket only, ESTABLISHED..CLOSED */
	struct sb_sock *prev, *next;	/* the worker's WebSocket list, or
					 * for an orphan its orphan list */
	struct sb_sock *close_next;	/* the worker's close list */
	struct sb_sock *stash_next;	/* the worker's stash list */

	char *rx;			/* reassembly of a message in pieces */
	uint32_t rx_len, rx_cap;	/* at most --max-message (64 MiB) */

	double tokens;			/* rate limit bucket */
	uint64_t rate_stamp;		/* ms, loop time */
	uint64_t last_rx;		/* ms, loop time of the last frame in */
	uint64_t opened;		/* ms, loop time of the upgrade */
	uint32_t msgs_in, msgs_out;	/* for the access line */
	char *acc_room, *acc_id;	/* room and id at the close decision */

	struct sb_msg *http_body;	/* an HTTP answer waiting to be written */
	char *ip_key;			/* sb_server_admit's, while admitted */
	char *stamp;			/* "id":..,"nick":.. while joined */
	uint32_t stamp_len;		/* a few times --max-field */

	struct sb_addr addr;		/* the TCP peer, from accept(); from
					 * the upgrade on, the client (behind
					 * a trusted proxy: from its headers) */
	uint16_t close_code;		/* 0: drop without a close frame */
	uint8_t cause;			/* enum sb_cause, once closing */
	bool adopting;			/* inside lws_adopt_*() */
	bool orphan;			/* adopt failed; lws destroys it later */
	bool admitted;			/* counted against the connection limits */
	bool closing;			/* a close is decided */
	bool on_close_list;
	bool on_stash_list;
	uint8_t stash_retries;		/* turns of the loop lws did not read */
	bool servicing;			/* inside our lws_service_fd() */
	bool destroyed;			/* lws freed the wsi; free us later */
	bool ping_due, ping_sent;
	bool drain_close;		/* close with 1001 once the queue is empty */
	bool close_after_flush;		/* the close frame waits for lws's bytes */
};

/* A socket the acceptor hands over, and who is at the other end. */
struct sb_handoff {
	int fd;
	struct sb_addr peer;
};

struct sb_worker {
	struct sb_server *srv;		/* immutable */
	int index;			/* immutable */
	char name[24];			/* immutable */
	pthread_t thread;
	bool started;			/* main only */

	uv_loop_t loop;
	uv_async_t async;		/* the inbox doorbell */
	uv_check_t check;		/* after each poll: own lists */
	uv_idle_t idle;			/* keeps poll from blocking meanwhile */
	uv_timer_t tick;		/* heartbeat, drain deadline */
	struct lws_context *ctx;	/* NULL once destroyed */
	bool ctx_dying;			/* lws began destroying it itself */
	struct lws_vhost *vh;

	pthread_mutex_t lock;		/* the inbox: */
	struct sb_handoff *fds;		/* {lock} sockets to adopt */
	size_t nfds, fds_cap;		/* {lock} */
	struct sb_conn *ready;		/* {lock} connections with output */
	bool closed;			/* {lock} takes no more sockets */
	bool drain_req;			/* {lock} */
	bool stop_req;			/* {lock} */
	/* -- end of {lock} */

	atomic_uint load;		/* sockets given and not yet destroyed */
	struct sb_stats stats;		/* written by this thread only */

	/* worker thread only */
	struct sb_sched sched;
	struct sb_conn *self_ready;	/* scheduled from this thread */
	struct sb_sock *close_list;
	struct sb_sock *stash_list;	/* sockets whose read-ahead waits */
	struct sb_sock *socks;		/* WebSocket connections */
	struct sb_sock *orphans;	/* failed adoptions lws still holds */
	unsigned nsocks;
	struct sb_codec *codec;
	unsigned char *scratch;		/* LWS_PRE + a message, for lws_write */
	size_t scratch_cap;
	struct sb_jbuf http;
	bool draining;
	bool destroying;
	uint64_t drain_deadline, kill_deadline;	/* ms, loop time */
	uint64_t tick_ms;
};

static _Thread_local struct sb_worker *current;

static const struct sb_config *cfg_of(struct sb_worker *w)
{
	return &w->srv->cfg;
}

static uint64_t now_ms(struct sb_worker *w)
{
	return uv_now(&w->loop);
}

static void on_idle(uv_idle_t *h)
{
	(void)h;	/* only there so that poll does not block */
}

/* Makes sure the check phase runs soon even if nothing else happens. */
static void kick_idle(struct sb_worker *w)
{
	if (!uv_is_active((uv_handle_t *)&w->idle))
		uv_idle_start(&w->idle, on_idle);
}

/* The worker's doubly linked lists of sockets (w->socks, w->orphans). */
static void list_add(struct sb_sock **head, struct sb_sock *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void list_remove(struct sb_sock **head, struct sb_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

/* ------------------------------------------------------------ scheduling */

/* struct sb_sched: a connection owned by w has output or must close.  Any
 * thread, possibly holding the registry lock and never a connection lock. */
static void schedule(struct sb_sched *sched, struct sb_conn *c)
{
	struct sb_worker *w = (struct sb_worker *)((char *)sched -
						   offsetof(struct sb_worker, sched));
	bool wake;

	/* already listed: the owner will look at it and see this send too */
	if (atomic_exchange(&c->listed, true))
		return;
	sb_conn_ref(c);
	if (current == w) {
		c->ready_next = w->self_ready;
		w->self_ready = c;
		kick_idle(w);
		return;
	}
	pthread_mutex_lock(&w->lock);
	wake = !w->ready && !w->nfds && !w->drain_req && !w->stop_req;
	c->ready_next = w->ready;
	w->ready = c;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		uv_async_send(&w->async);
}

/* Remembers s's room and id for its access line, before it leaves. */
static void remember_identity(struct sb_sock *s)
{
	const char *room;
	size_t len;

	if (!s->conn || s->acc_room || !s->conn->room)
		return;
	room = sb_registry_room_name(s->conn, &len);
	s->acc_room = strndup(room, len);
	s->acc_id = strndup(s->conn->id, s->conn->id_len);
}

/* Decides to close s: its peers are told now (unless the server is
 * draining), its queue is dropped, and the close itself happens in the
 * check phase.  code 0 drops the TCP connection without a close frame. */
static void close_later(struct sb_sock *s, uint16_t code, enum sb_cause cause)
{
	struct sb_worker *w = s->w;

	if (s->closing)
		return;
	s->closing = true;
	s->close_code = code;
	s->cause = (uint8_t)cause;
	if (s->conn) {
		remember_identity(s);
		sb_registry_leave(w->srv->reg, s->conn, !w->draining);
		sb_conn_kill(s->conn);
	}
	if (!s->on_close_list) {
		s->on_close_list = true;
		s->close_next = w->close_list;
		w->close_list = s;
		kick_idle(w);
	}
}

static void flush(struct sb_worker *w, struct sb_sock *s);

/* Owner thread, outside any lws callback: a connection came off a ready
 * list. */
static void ready(struct sb_worker *w, struct sb_conn *c)
{
	struct sb_sock *s = c->owner_data;

	/* cleared before looking, so that a later send lists it again */
	atomic_store(&c->listed, false);
	if (s && s->wsi && !s->closing) {
		/* dead without our deciding it: its backlog overflowed */
		if (sb_conn_is_dead(c))
			close_later(s, SB_CLOSE_POLICY, SB_CAUSE_BACKLOG);
		else
			flush(w, s);
	}
	sb_conn_unref(c);
}

static void run_ready_list(struct sb_worker *w, struct sb_conn *c)
{
	while (c) {
		struct sb_conn *next = c->ready_next;

		ready(w, c);
		c = next;
	}
}

static void free_sock(struct sb_sock *s)
{
	free(s->acc_room);
	free(s->acc_id);
	sb_recv_hook_release(&s->rx_state);
	free(s->stamp);
	free(s->rx);
	sb_msg_unref(s->http_body);
	free(s);
}

/* The text sent with each close status. */
static const char *close_reason(uint16_t code)
{
	switch (code) {
	case SB_CLOSE_GOING_AWAY: return "server shutting down";
	case SB_CLOSE_PROTOCOL: return "protocol error";
	case SB_CLOSE_UNSUPPORTED: return "binary frames are not accepted";
	case SB_CLOSE_INVALID_DATA: return "invalid UTF-8";
	case SB_CLOSE_POLICY: return "outbound backlog overflow";
	case SB_CLOSE_TOO_BIG: return "message too big";
	default: return "internal error";
	}
}

static void stash_later(struct sb_sock *s);

/* Bytes read for s and not yet given to lws.  s->wsi is live. */
static size_t unread(struct sb_sock *s)
{
	return sb_recv_hook_unread(&s->rx_state, lws_get_ssl(s->wsi));
}

/* Lets lws read what the recv hook read ahead for s, as if the socket had
 * polled readable, until the stash is empty or s is closing.  Should lws
 * not read (it may first finish bytes of its own), the rest waits for the
 * next turn of the loop, a few times; after that for the socket's next
 * readable event, which serves the stash before the kernel. */
static void service_stash(struct sb_worker *w, struct sb_sock *s)
{
	int stalls = 0;

	s->servicing = true;
	while (s->wsi && !s->closing && !s->destroyed && unread(s)) {
		struct lws_pollfd pfd = { .fd = s->fd, .events = LWS_POLLIN,
					  .revents = LWS_POLLIN };
		size_t before = unread(s);

		if (lws_service_fd(w->ctx, &pfd) < 0)
			break;
		if (!s->destroyed && s->wsi && unread(s) == before && ++stalls >= 2) {
			if (!s->destroyed && s->stash_retries++ < 8)
				stash_later(s);
			break;
		}
	}
	if (!s->destroyed && s->wsi && !unread(s))
		s->stash_retries = 0;
	s->servicing = false;
	if (s->destroyed) {
		/* lws let go of it meanwhile; whoever still lists it frees it */
		if (!s->on_close_list && !s->on_stash_list)
			free_sock(s);
		return;
	}
	if (s->closing)
		sb_recv_hook_release(&s->rx_state);
}

/* The check phase: no lws callback is running.  Read-ahead first, so that
 * everything read in this turn of the loop is handled before anything is
 * written. */
static void on_check(uv_check_t *h)
{
	struct sb_worker *w = h->data;

	while (w->stash_list || w->self_ready || w->close_list) {
		struct sb_conn *c;
		struct sb_sock *s;

		while (w->stash_list) {
			s = w->stash_list;
			w->stash_list = s->stash_next;
			s->on_stash_list = false;
			service_stash(w, s);
		}
		c = w->self_ready;
		s = w->close_list;
		w->self_ready = NULL;
		w->close_list = NULL;
		run_ready_list(w, c);
		while (s) {
			struct sb_sock *next = s->close_next;

			s->on_close_list = false;
			if (s->destroyed) {
				if (!s->on_stash_list)
					free_sock(s);	/* else the stash loop does */
			} else if (s->wsi) {
				if (s->close_code) {
					const char *r = close_reason(s->close_code);

					lws_close_reason(s->wsi, s->close_code,
							 (unsigned char *)(uintptr_t)r,
							 strlen(r));
				}
				if (s->rx_state.guard.mode == SB_WSG_FAILED)
					s->rx_state.guard.mode = SB_WSG_CLOSED;
				if (s->close_code && lws_partial_buffered(s->wsi)) {
					/* lws would drop the close frame to
					 * flush what it holds: write it after
					 * that, from WRITEABLE, or give up */
					s->close_after_flush = true;
					lws_callback_on_writable(s->wsi);
					lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
							CLOSE_FLUSH_SECS);
				} else {
					lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
							LWS_TO_KILL_SYNC);
				}
			}
			s = next;
		}
	}
	uv_idle_stop(&w->idle);
}

/* ------------------------------------------------------------ messages */

static void send_self(struct sb_sock *s, struct sb_msg *m)
{
	if (m) {
		sb_conn_send(s->conn, m);
		sb_msg_unref(m);
	}
}

static void reply_error(struct sb_sock *s, enum sb_err code, const char *why,
			const char *ref, size_t ref_len)
{
	sb_stat_add(&s->w->stats.errors[code], 1);
	send_self(s, sb_event_error(code, why, ref, ref_len));
}

/* Token bucket: cfg.rate tokens a second, at most 2 * rate, starts full. */
static bool rate_allows(struct sb_worker *w, struct sb_sock *s)
{
	double rate = cfg_of(w)->rate;
	uint64_t now;

	if (rate <= 0)
		return true;
	now = now_ms(w);
	s->tokens += (double)(now - s->rate_stamp) * rate / 1000.0;
	if (s->tokens > 2 * rate)
		s->tokens = 2 * rate;
	s->rate_stamp = now;
	if (s->tokens < 1)
		return false;
	s->tokens -= 1;
	return true;
}

static void handle_join(struct sb_worker *w, struct sb_sock *s,
			struct sb_request *req)
{
	static const char def_room[] = "default";
	const char *room = req->room.present ? req->room.p : def_room;
	size_t room_len = req->room.present ? req->room.len : sizeof(def_room) - 1;
	const char *nick = req->nick.present ? req->nick.p : "";
	size_t nick_len = req->nick.present ? req->nick.len : 0;
	int rc;

	rc = sb_registry_join(w->srv->reg, s->conn, room, room_len,
			      req->id.p, req->id.len, nick, nick_len);
	if (rc == -EEXIST)
		reply_error(s, SB_ERR_ID_TAKEN, "this id is taken in this room",
			    "join", 4);
	else if (rc == -ENOSPC)
		reply_error(s, SB_ERR_ROOM_FULL, "the room is full", "join", 4);
	else if (rc)
		close_later(s, 1011, SB_CAUSE_LIMIT);	/* out of memory */
}

static void handle_relay(struct sb_worker *w, struct sb_sock *s,
			 struct sb_request *req)
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
		m = sb_codec_relay(w->codec, req, s->stamp, s->stamp_len);
	if (!m) {
		close_later(s, 1011, SB_CAUSE_LIMIT);	/* out of memory */
		return;
	}
	m->t_rx = uv_hrtime();
	n = sb_registry_relay(w->srv->reg, c,
			      req->receiver.present ? req->receiver.p : NULL,
			      req->receiver.len, m);
	sb_msg_unref(m);
	if (n == -ENOENT)
		reply_error(s, SB_ERR_PEER_NOT_FOUND,
			    "no other peer with that id in this room",
			    sb_type_names[req->type],
			    strlen(sb_type_names[req->type]));
}

/* One complete text message from s, in PROTOCOL.md's order of checks. */
static void handle_message(struct sb_worker *w, struct sb_sock *s,
			   const char *buf, size_t len)
{
	struct sb_request req;
	char why[160];
	enum sb_err e;
	bool joined;

	sb_stat_add(&w->stats.received, 1);
	s->msgs_in++;
	if (w->draining)
		return;		/* everyone is leaving: nothing new starts */

	e = sb_codec_parse(w->codec, buf, len, &req, why, sizeof(why));
	if (!rate_allows(w, s)) {
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
		if (sb_codec_check(w->codec, &req, why, sizeof(why)) != SB_ERR_NONE) {
			reply_error(s, SB_ERR_BAD_MESSAGE, why, "join", 4);
			break;
		}
		handle_join(w, s, &req);
		break;
	case SB_TYPE_LEAVE:
		if (!joined) {
			reply_error(s, SB_ERR_NOT_JOINED, "not in a room", "leave", 5);
		} else {
			sb_registry_leave(w->srv->reg, s->conn, true);
			free(s->stamp);
			s->stamp = NULL;
		}
		break;
	default:
		if (!joined) {
			reply_error(s, SB_ERR_NOT_JOINED, "join a room first",
				    req.type_str, req.type_len);
			break;
		}
		if (sb_codec_check(w->codec, &req, why, sizeof(why)) != SB_ERR_NONE) {
			reply_error(s, SB_ERR_BAD_MESSAGE, why, req.type_str,
				    req.type_len);
			break;
		}
		handle_relay(w, s, &req);
		break;
	}
done:
	sb_codec_done(w->codec, &req);
}

/* ------------------------------------------------------------ WebSocket */

static void ws_established(struct sb_worker *w, struct sb_sock *s)
{
	s->conn = sb_conn_new(&w->sched, cfg_of(w)->max_backlog);
	if (!s->conn) {
		close_later(s, 1011, SB_CAUSE_LIMIT);
		return;
	}
	s->conn->owner_data = s;
	sb_conn_set_depth(s->conn, &w->stats.depth);
	sb_wsguard_upgrade(&s->rx_state.guard);
	s->last_rx = s->rate_stamp = s->opened = now_ms(w);
	s->tokens = 2 * cfg_of(w)->rate;
	list_add(&w->socks, s);
	w->nsocks++;
	sb_stat_add(&w->stats.connections, 1);
	if (w->draining)
		close_later(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
}

/* Gives back s's place under the connection limits, once. */
static void unadmit(struct sb_worker *w, struct sb_sock *s)
{
	if (s->admitted) {
		s->admitted = false;
		sb_server_unadmit(w->srv, s->ip_key);
		s->ip_key = NULL;
	}
}

static void ws_closed(struct sb_worker *w, struct sb_sock *s)
{
	struct sb_conn *c = s->conn;

	unadmit(w, s);
	if (!c)
		return;
	if (!s->closing) {
		s->closing = true;
		s->cause = w->draining ? SB_CAUSE_SHUTDOWN : SB_CAUSE_CLIENT;
	}
	remember_identity(s);
	sb_registry_leave(w->srv->reg, c, !w->draining);	/* if still joined */
	sb_conn_kill(c);
	c->owner_data = NULL;
	sb_conn_unref(c);
	s->conn = NULL;

	list_remove(&w->socks, s);
	w->nsocks--;
	sb_stat_sub(&w->stats.connections, 1);
	sb_stat_add(&w->stats.closes[s->cause], 1);
	free(s->rx);
	s->rx = NULL;
	s->rx_len = s->rx_cap = 0;
	if (sb_log_enabled(SB_LOG_INFO)) {
		struct sb_access a;
		char ip[INET6_ADDRSTRLEN];

		sb_addr_format(&s->addr, ip, sizeof(ip));
		a.client = ip;
		a.room = s->acc_room ? s->acc_room : "";
		a.id = s->acc_id ? s->acc_id : "";
		a.duration_ms = (unsigned long)(now_ms(w) - s->opened);
		a.in = s->msgs_in;
		a.out = s->msgs_out;
		a.cause = sb_cause_names[s->cause];
		sb_log_access(&a);
	}
}

/* RECEIVE: a piece of a text or binary message.  Returns -1 to close (after
 * lws_close_reason), as lws wants from inside its callback. */
static int ws_receive(struct sb_worker *w, struct sb_sock *s, struct lws *wsi,
		      const char *in, size_t len)
{
	size_t max = cfg_of(w)->max_message;
	size_t remaining;
	bool first, final;

	if (s->closing || !s->conn)
		return 0;	/* a close is under way: what arrives is moot */
	s->last_rx = now_ms(w);
	s->ping_sent = false;

	if (lws_frame_is_binary(wsi)) {
		close_later(s, SB_CLOSE_UNSUPPORTED, SB_CAUSE_LIMIT);
		return 0;
	}
	first = lws_is_first_fragment(wsi);
	final = lws_is_final_fragment(wsi);
	remaining = lws_remaining_packet_payload(wsi);
	if (first) {
		s->rx_len = 0;
		sb_utf8_init(&s->utf8);
	}
	if (s->rx_len + len + remaining > max) {
		close_later(s, SB_CLOSE_TOO_BIG, SB_CAUSE_LIMIT);
		return 0;
	}
	if (!sb_utf8_feed(&s->utf8, in, len) ||
	    (final && !sb_utf8_complete(&s->utf8))) {
		close_later(s, SB_CLOSE_INVALID_DATA, SB_CAUSE_PROTOCOL);
		return 0;
	}
	if (first && final) {
		handle_message(w, s, in, len);
		return 0;
	}
	if (s->rx_len + len > s->rx_cap) {
		size_t ncap = s->rx_cap ? s->rx_cap : 1024;
		char *nrx;

		while (ncap < s->rx_len + len + remaining)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		nrx = realloc(s->rx, ncap);
		if (!nrx) {
			close_later(s, 1011, SB_CAUSE_LIMIT);
			return 0;
		}
		s->rx = nrx;
		s->rx_cap = (uint32_t)ncap;	/* <= max */
	}
	if (len)
		memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += (uint32_t)len;	/* <= max, checked above */
	if (final) {
		handle_message(w, s, s->rx, s->rx_len);
		s->rx_len = 0;
		if (s->rx_cap > RX_KEEP) {
			free(s->rx);
			s->rx = NULL;
			s->rx_cap = 0;
		}
	}
	return 0;
}

static unsigned char *scratch(struct sb_worker *w, size_t len)
{
	if (LWS_PRE + len > w->scratch_cap) {
		size_t ncap = LWS_PRE + len;
		unsigned char *n = realloc(w->scratch, ncap);

		if (!n)
			return NULL;
		w->scratch = n;
		w->scratch_cap = ncap;
	}
	return w->scratch + LWS_PRE;
}

/* Writes m (and drops the caller's reference) through the worker's scratch
 * buffer: lws writes its frame header in front of the payload, so a shared
 * message is never handed to it.  lws_write's result. */
static int write_msg(struct sb_worker *w, struct lws *wsi, struct sb_msg *m,
		     enum lws_write_protocol proto)
{
	unsigned char *p = scratch(w, m->len);
	int n = -1;

	if (p) {
		memcpy(p, m->data, m->len);
		n = lws_write(wsi, p, m->len, proto);
	}
	sb_msg_unref(m);
	return n;
}

/* Frames the messages of batch[0..n) into the scratch buffer, drops the
 * references, and writes them with one lws_write (so one send() for as
 * many messages as were queued, up to BATCH_BYTES).  lws keeps what the
 * kernel does not take and calls WRITEABLE again only once it is out, so
 * frames never interleave.  lws_write's result. */
static int write_batch(struct sb_worker *w, struct lws *wsi,
		       struct sb_msg **batch, size_t n)
{
	size_t total = 0, off = 0;
	unsigned char *p;
	uint64_t now = 0;

	for (size_t i = 0; i < n; i++)
		total += 10 + batch[i]->len;
	p = scratch(w, total);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->t_rx) {
			/* relay latency, up to here: the write is one call */
			if (!now)
				now = uv_hrtime();
			sb_stat_latency(&w->stats, (unsigned long)(now - batch[i]->t_rx));
		}
		if (p) {
			off += sb_ws_text_header(p + off, batch[i]->len);
			memcpy(p + off, batch[i]->data, batch[i]->len);
			off += batch[i]->len;
		}
		sb_msg_unref(batch[i]);
	}
	if (!p)
		return -1;
	return lws_write(wsi, p, off, LWS_WRITE_RAW);
}

/* Writes what s has queued, up to a batch, with one lws_write.  Returns -1
 * when the socket failed, else 0 (more to come is asked for with a
 * WRITEABLE callback). */
static int send_queued(struct sb_worker *w, struct sb_sock *s, struct lws *wsi)
{
	struct sb_msg *batch[BATCH_MSGS];
	bool overflow, more;
	size_t n;

	n = sb_conn_take(s->conn, batch, BATCH_MSGS, BATCH_BYTES, &overflow, &more);
	if (overflow) {
		close_later(s, SB_CLOSE_POLICY, SB_CAUSE_BACKLOG);
		return 0;
	}
	if (!n) {
		if (s->drain_close)
			close_later(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
		return 0;
	}
	if (write_batch(w, wsi, batch, n) < 0)
		return -1;
	sb_stat_add(&w->stats.delivered, n);
	s->msgs_out += (uint32_t)n;
	if (more)
		lws_callback_on_writable(wsi);
	else if (s->drain_close)
		close_later(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
	return 0;
}

/*
 * s has output: write it now, outside any WRITEABLE callback.  On a socket
 * that takes it (the usual case) that is one send() and no change to what
 * the loop polls for, where waiting for WRITEABLE would add a poll for
 * POLLOUT and its removal.  lws_write copes: what the kernel does not take
 * it keeps and flushes on its own WRITEABLE.  When lws already holds unsent
 * bytes, or a ping is due, the WRITEABLE callback does the writing instead.
 */
static void flush(struct sb_worker *w, struct sb_sock *s)
{
	if (s->ping_due || lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	if (send_queued(w, s, s->wsi) < 0)
		close_later(s, 0, SB_CAUSE_CLIENT);	/* the socket is gone */
}

/* SERVER_WRITEABLE: the ping if one is due, else what is queued; one
 * lws_write per call. */
static int ws_writeable(struct sb_worker *w, struct sb_sock *s, struct lws *wsi)
{
	unsigned char *p;

	if (s->close_after_flush)
		return -1;	/* lws sends the close frame set on_check() */
	if (!s->conn || s->closing)
		return 0;
	if (s->ping_due) {
		p = scratch(w, sizeof(PING_DATA) - 1);
		if (!p)
			return -1;
		memcpy(p, PING_DATA, sizeof(PING_DATA) - 1);
		s->ping_due = false;
		if (lws_write(wsi, p, sizeof(PING_DATA) - 1, LWS_WRITE_PING) < 0)
			return -1;
		lws_callback_on_writable(wsi);	/* the queue may hold more */
		return 0;
	}
	return send_queued(w, s, wsi);
}

/* ------------------------------------------------------------ HTTP */

static int http_request(struct sb_worker *w, struct sb_sock *s, struct lws *wsi,
			const char *path)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start;
	unsigned char *end = hdr + sizeof(hdr) - 1;
	const char *ctype;
	struct sb_msg *file;
	int status;

	sb_jbuf_reset(&w->http);
	status = sb_http_answer(w->srv, path ? path : "/", &w->http, &ctype, &file);
	if (sb_jbuf_failed(&w->http)) {
		sb_msg_unref(file);
		return -1;
	}
	sb_msg_unref(s->http_body);
	s->http_body = file ? file : sb_msg_from(w->http.p, w->http.len);
	if (!s->http_body)
		return -1;
	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype,
					s->http_body->len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-cache", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_writeable(struct sb_worker *w, struct sb_sock *s, struct lws *wsi)
{
	struct sb_msg *m = s->http_body;

	if (!m)
		return 0;
	s->http_body = NULL;
	if (write_msg(w, wsi, m, LWS_WRITE_HTTP_FINAL) < 0)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static int refuse(struct lws *wsi, unsigned status, const char *why)
{
	lws_return_http_status(wsi, status, why);
	return 1;	/* the answer is written: lws ends the transaction */
}

/* Copies header h of wsi's request into buf (NUL-terminated), or leaves
 * buf empty when it is absent or longer than buf. */
static void header(struct lws *wsi, enum lws_token_indexes h, char *buf,
		   size_t len)
{
	buf[0] = '\0';
	if (lws_hdr_total_length(wsi, h) <= 0 ||
	    lws_hdr_copy(wsi, buf, (int)len, h) < 0)
		buf[0] = '\0';
}

/* s's TCP peer may be a trusted proxy that names the client in its
 * headers (sb_netaddr.h).  A header longer than lws's whole header space
 * cannot be there. */
static void find_client(struct sb_sock *s, struct lws *wsi,
			const struct sb_config *cfg, struct sb_addr *client)
{
	char xff[4096], real_ip[64];

	header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof(xff));
	header(wsi, WSI_TOKEN_HTTP_X_REAL_IP, real_ip, sizeof(real_ip));
	sb_client_addr(cfg->trusted, cfg->ntrusted, &s->addr, xff, real_ip, client);
}

/* An upgrade to WebSocket asks to be let in: its path (404), the Origin
 * allow-list (403), the drain (503), then the connection limits (503). */
static int confirm_upgrade(struct sb_worker *w, struct sb_sock *s,
			   struct lws *wsi)
{
	const struct sb_config *cfg = cfg_of(w);
	struct sb_addr client = { 0 };
	char path[16];

	/* /healthz and /metrics are plain HTTP (docs/protocol.md): the path as
	 * lws decoded it, its first fragment, the one a GET is answered for */
	if (lws_hdr_copy_fragment(wsi, path, sizeof(path), WSI_TOKEN_GET_URI, 0) > 0 &&
	    sb_http_is_endpoint(path)) {
		sb_stat_add(&w->stats.refused[SB_REQ_WS_PATH], 1);
		return refuse(wsi, HTTP_STATUS_NOT_FOUND, "no WebSocket at this path");
	}
	if (s) {
		client = s->addr;
		if (cfg->ntrusted)
			find_client(s, wsi, cfg, &client);
	}
	if (cfg->norigins) {
		char origin[SB_ORIGIN_MAX];
		bool listed = false;

		if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0)
			for (int i = 0; i < cfg->norigins && !listed; i++)
				listed = !strcasecmp(origin, cfg->origins[i]);
		if (!listed)
			return refuse(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
	}
	if (w->draining)
		return refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "draining");
	if (s && !s->admitted &&
	    (cfg->max_connections || cfg->max_connections_per_ip)) {
		char ip[SB_ADDR_STRLEN + 4];

		sb_addr_limit_key(&client, ip, sizeof(ip));
		if (sb_server_admit(w->srv, ip, &s->ip_key))
			return refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
				      "too many connections");
		s->admitted = true;
	}
	/* from here on this connection is that client's (a refused one stays
	 * the peer's: a proxy may send another client's request on it) */
	if (s)
		s->addr = client;
	return 0;
}

/* ------------------------------------------------------------ lws */

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct lws_context *ctx = lws_get_context(wsi);
	struct sb_worker *w = ctx ? lws_context_user(ctx) : NULL;
	struct sb_sock *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (!s)
			break;
		return http_request(w, s, wsi, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!s)
			break;
		return http_writeable(w, s, wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return w ? confirm_upgrade(w, s, wsi) : 0;
	case LWS_CALLBACK_ESTABLISHED:
		if (s)
			ws_established(w, s);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return s ? ws_receive(w, s, wsi, in, len) : -1;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s) {
			s->last_rx = now_ms(w);
			s->ping_sent = false;
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s ? ws_writeable(w, s, wsi) : 0;
	case LWS_CALLBACK_CLOSED:
		if (s)
			ws_closed(w, s);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (!s)
			return 0;
		if (s->conn)
			ws_closed(w, s);
		unadmit(w, s);	/* admitted, but the upgrade never finished */
		sb_recv_hook_detach(s->fd, &s->rx_state);
		s->wsi = NULL;
		if (s->adopting) {
			s->destroyed = true;	/* adopt() cleans up */
			return 0;
		}
		if (s->orphan) {
			list_remove(&w->orphans, s);
			s->orphan = false;
		}
		atomic_fetch_sub(&w->load, 1);
		if (s->on_close_list || s->on_stash_list || s->servicing)
			s->destroyed = true;	/* on_check() frees it */
		else
			free_sock(s);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0;	/* never nonzero here: see LWS-THREADING */
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ "switchboard", callback, 0, RX_CHUNK, 0, NULL, TX_MAX },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* Disables lws's own idle pings: the worker runs the heartbeat itself, so
 * that it knows why it closed a connection. */
static const lws_retry_bo_t no_validity = { .secs_since_valid_ping = 0,
					    .secs_since_valid_hangup = 0 };

/* The recv hook found a protocol violation on s (worker thread, inside an
 * lws read). */
void sb_worker_guard_failed(struct sb_rx *rx)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	close_later(s, SB_CLOSE_PROTOCOL, SB_CAUSE_PROTOCOL);
}

/* The recv hook refused a request on s and answered it (worker thread,
 * inside an lws read); lws closes the connection next. */
void sb_worker_http_refused(struct sb_rx *rx, int reason)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	if (reason >= 0 && reason < SB_REQ_COUNT)
		sb_stat_add(&s->w->stats.refused[reason], 1);
}

static void stash_later(struct sb_sock *s)
{
	if (!s->on_stash_list) {
		s->on_stash_list = true;
		s->stash_next = s->w->stash_list;
		s->w->stash_list = s;
		kick_idle(s->w);
	}
}

/* The recv hook read ahead for s (worker thread, inside an lws read). */
void sb_worker_stashed(struct sb_rx *rx)
{
	stash_later((struct sb_sock *)rx);
}

static void adopt(struct sb_worker *w, int fd, const struct sb_addr *peer)
{
	struct sb_sock *s = calloc(1, sizeof(*s));
	lws_adopt_desc_t desc;
	struct lws *wsi;

	if (!s || w->draining || !w->ctx) {
		free(s);
		close(fd);
		atomic_fetch_sub(&w->load, 1);
		return;
	}
	s->w = w;
	s->fd = fd;
	s->addr = *peer;
	sb_recv_hook_attach(fd, &s->rx_state);

	memset(&desc, 0, sizeof(desc));
	desc.vh = w->vh;
	desc.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
	if (cfg_of(w)->tls_cert[0])
		desc.type |= LWS_ADOPT_ALLOW_SSL;
	desc.fd.sockfd = fd;
	desc.opaque = s;
	s->adopting = true;
	wsi = lws_adopt_descriptor_vhost_via_info(&desc);
	s->adopting = false;
	if (!wsi && !s->destroyed) {
		/* Failed after lws made the wsi (a TLS handshake that failed
		 * at once, say): lws closes it, and with libuv finishes that
		 * only when the handle is closed, so WSI_DESTROY comes later
		 * and frees s.  Listed meanwhile, in case it never does. */
		sb_recv_hook_detach(fd, &s->rx_state);
		s->orphan = true;
		list_add(&w->orphans, s);
		return;
	}
	if (!wsi || s->destroyed) {
		/* lws closed fd itself */
		sb_recv_hook_detach(fd, &s->rx_state);
		atomic_fetch_sub(&w->load, 1);
		free_sock(s);
		return;
	}
	s->wsi = wsi;
}

/* ------------------------------------------------------------ loop */

static void begin_drain(struct sb_worker *w)
{
	uint64_t now = now_ms(w);

	w->draining = true;
	w->drain_deadline = now + (uint64_t)(cfg_of(w)->drain_timeout * 1000);
	w->kill_deadline = w->drain_deadline + 1000;
	for (struct sb_sock *s = w->socks; s; s = s->next) {
		if (s->closing)
			continue;
		if (s->conn && sb_conn_backlog(s->conn))
			s->drain_close = true;	/* after its queue is written */
		else
			close_later(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
	}
}

static void on_tick(uv_timer_t *t);

static void on_async(uv_async_t *a)
{
	struct sb_worker *w = a->data;
	struct sb_conn *ready_list;
	struct sb_handoff *fds;
	size_t nfds;
	bool drain, stop;

	pthread_mutex_lock(&w->lock);
	fds = w->fds;
	nfds = w->nfds;
	ready_list = w->ready;
	drain = w->drain_req;
	stop = w->stop_req;
	w->ready = NULL;
	w->fds = NULL;
	w->nfds = w->fds_cap = 0;
	w->drain_req = false;
	w->stop_req = false;
	pthread_mutex_unlock(&w->lock);

	for (size_t i = 0; i < nfds; i++)
		adopt(w, fds[i].fd, &fds[i].peer);
	free(fds);
	run_ready_list(w, ready_list);
	if (drain && !w->draining) {
		begin_drain(w);
		uv_timer_start(&w->tick, on_tick, 0, 50);
	}
	if (stop) {
		uv_close((uv_handle_t *)&w->async, NULL);
		uv_close((uv_handle_t *)&w->check, NULL);
		uv_close((uv_handle_t *)&w->idle, NULL);
		uv_close((uv_handle_t *)&w->tick, NULL);
	}
}

/* Heartbeat and the drain deadline. */
static void on_tick(uv_timer_t *t)
{
	struct sb_worker *w = t->data;
	uint64_t now = now_ms(w);
	double hb = cfg_of(w)->heartbeat;

	if (w->destroying) {
		/* with a foreign loop, lws finishes its teardown over several
		 * calls as its handles close; info.pcontext tells when done */
		if (w->ctx)
			lws_context_destroy(w->ctx);
		if (!w->ctx) {
			uv_timer_stop(&w->tick);
			sb_server_worker_drained(w->srv);
		}
		return;
	}
	if (w->draining) {
		if (now >= w->drain_deadline)
			for (struct sb_sock *s = w->socks; s; s = s->next)
				close_later(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
		if (!w->nsocks || now >= w->kill_deadline) {
			w->destroying = true;
			lws_context_destroy(w->ctx);
		}
		return;
	}
	if (hb > 0) {
		uint64_t ping_after = (uint64_t)(hb * 1000);

		for (struct sb_sock *s = w->socks; s; s = s->next) {
			uint64_t idle;

			if (s->closing)
				continue;
			/* frames lws handles itself (pings, pongs) count too */
			if (s->rx_state.guard.rx_seen) {
				s->rx_state.guard.rx_seen = false;
				s->last_rx = now;
				s->ping_sent = false;
			}
			idle = now - s->last_rx;
			if (idle >= 2 * ping_after) {
				close_later(s, 0, SB_CAUSE_HEARTBEAT);
			} else if (idle >= ping_after && !s->ping_sent) {
				s->ping_sent = true;
				s->ping_due = true;
				lws_callback_on_writable(s->wsi);
			}
		}
	}
}

static void log_from_lws(int level, const char *line)
{
	/* clients can make lws log: rate-limited (sb_log.h) */
	sb_log_client(level == LLL_ERR ? SB_LOG_ERROR : SB_LOG_WARN, 0, "lws: %s", line);
}

static void *run(void *arg)
{
	struct sb_worker *w = arg;

	current = w;
	sb_log_set_thread_name(w->name);
	sb_log(SB_LOG_INFO, 0, "worker started");
	/* returns once lws is gone and on_async() closed our handles */
	uv_run(&w->loop, UV_RUN_DEFAULT);
	sb_log(SB_LOG_INFO, 0, "worker stopped");
	return NULL;
}

struct sb_worker *sb_worker_new(struct sb_server *srv, int index)
{
	struct lws_context_creation_info info;
	struct sb_worker *w = calloc(1, sizeof(*w));
	void *loops[1];
	double hb = srv->cfg.heartbeat;

	if (!w)
		return NULL;
	w->srv = srv;
	w->index = index;
	snprintf(w->name, sizeof(w->name), "worker-%d", index);
	w->sched.schedule = schedule;
	sb_jbuf_init(&w->http, 16u << 20);
	pthread_mutex_init(&w->lock, NULL);
	w->codec = sb_codec_new(srv->cfg.max_field);
	if (w->codec)
		sb_codec_set_utf8_checked(w->codec, true);	/* ws_receive did */
	if (!w->codec || uv_loop_init(&w->loop)) {
		sb_codec_free(w->codec);
		free(w);
		return NULL;
	}
	uv_async_init(&w->loop, &w->async, on_async);
	uv_check_init(&w->loop, &w->check);
	uv_idle_init(&w->loop, &w->idle);
	uv_timer_init(&w->loop, &w->tick);
	w->async.data = w->check.data = w->idle.data = w->tick.data = w;
	uv_check_start(&w->check, on_check);
	/* the heartbeat resolution: a quarter of the interval, 50 ms to 1 s */
	w->tick_ms = hb > 0 ? (uint64_t)(hb * 250) : 1000;
	if (w->tick_ms < 50)
		w->tick_ms = 50;
	if (w->tick_ms > 1000)
		w->tick_ms = 1000;
	if (hb > 0)
		uv_timer_start(&w->tick, on_tick, w->tick_ms, w->tick_ms);

	lws_set_log_level(LLL_ERR | (sb_log_enabled(SB_LOG_DEBUG) ? LLL_WARN : 0),
			  log_from_lws);
	memset(&info, 0, sizeof(info));
	loops[0] = &w->loop;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_LIBUV |
		       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	info.foreign_loops = loops;
	info.pcontext = &w->ctx;
	info.user = w;
	info.alpn = "http/1.1";
	/* A new connection has --handshake-timeout to send its request: adopt
	 * starts a timer of timeout_secs, and attaching the header buffer at
	 * once replaces it with one of timeout_secs_ah_idle, which bytes
	 * arriving do not extend (a slow sender is cut off all the same). */
	info.timeout_secs = (unsigned)srv->cfg.handshake_timeout;
	info.timeout_secs_ah_idle = srv->cfg.handshake_timeout;
	info.retry_and_idle_policy = &no_validity;
	/* room for any request head the recv hook's checker lets through
	 * (sb_reqcheck.h): it refuses larger ones before lws runs out */
	info.max_http_header_data = SB_REQ_LWS_HEADER_SPACE;
	info.vhost_name = "switchboard";
	if (srv->cfg.tls_cert[0]) {
		/* every context initializes OpenSSL for itself, or its vhost
		 * serves plaintext; contexts are made one after the other on
		 * the main thread (LWS-THREADING) */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = srv->cfg.tls_cert;
		info.ssl_private_key_filepath = srv->cfg.tls_key;
		info.provided_client_ssl_ctx = srv->tls_client_ctx;
	}
	info.server_string = "switchboard";
	w->ctx = lws_create_context(&info);
	if (!w->ctx) {
		sb_log(SB_LOG_ERROR, 0, "%s: cannot create the libwebsockets context%s",
		       w->name, srv->cfg.tls_cert[0] ?
		       " (are --tls-cert and --tls-key a PEM certificate and its key?)" : "");
		sb_worker_free(w);
		return NULL;
	}
	w->vh = lws_get_vhost_by_name(w->ctx, "switchboard");
	if (!w->vh) {
		/* with a foreign loop lws returns a context it has already
		 * begun to destroy when its vhost failed (context.c) */
		w->ctx_dying = true;
		sb_log(SB_LOG_ERROR, 0, "%s: cannot set up the server%s", w->name,
		       srv->cfg.tls_cert[0] ?
		       " (are --tls-cert and --tls-key a PEM certificate and its key?)" : "");
		sb_worker_free(w);
		return NULL;
	}
	return w;
}

int sb_worker_start(struct sb_worker *w)
{
	int rc = pthread_create(&w->thread, NULL, run, w);

	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

int sb_worker_give(struct sb_worker *w, int fd, const struct sb_addr *peer)
{
	bool wake;

	pthread_mutex_lock(&w->lock);
	if (w->closed) {
		pthread_mutex_unlock(&w->lock);
		return -ESHUTDOWN;
	}
	if (w->nfds == w->fds_cap) {
		size_t ncap = w->fds_cap ? w->fds_cap * 2 : 16;
		struct sb_handoff *n = realloc(w->fds, ncap * sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&w->lock);
			return -ENOMEM;
		}
		w->fds = n;
		w->fds_cap = ncap;
	}
	wake = !w->ready && !w->nfds && !w->drain_req && !w->stop_req;
	w->fds[w->nfds].fd = fd;
	w->fds[w->nfds].peer = *peer;
	w->nfds++;
	atomic_fetch_add(&w->load, 1);
	pthread_mutex_unlock(&w->lock);
	if (wake)
		uv_async_send(&w->async);
	return 0;
}

unsigned sb_worker_load(struct sb_worker *w)
{
	return atomic_load_explicit(&w->load, memory_order_relaxed);
}

void sb_worker_drain(struct sb_worker *w)
{
	bool wake;

	pthread_mutex_lock(&w->lock);
	wake = !w->ready && !w->nfds && !w->drain_req && !w->stop_req;
	w->closed = true;
	w->drain_req = true;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		uv_async_send(&w->async);
}

void sb_worker_stop(struct sb_worker *w)
{
	bool wake;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	wake = !w->ready && !w->nfds && !w->drain_req && !w->stop_req;
	w->closed = true;
	w->stop_req = true;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		uv_async_send(&w->async);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void sb_worker_free(struct sb_worker *w)
{
	if (!w)
		return;
	/* a worker that never ran: tear lws and our handles down here */
	if (!uv_is_closing((uv_handle_t *)&w->async)) {
		uv_close((uv_handle_t *)&w->async, NULL);
		uv_close((uv_handle_t *)&w->check, NULL);
		uv_close((uv_handle_t *)&w->idle, NULL);
		uv_close((uv_handle_t *)&w->tick, NULL);
	}
	if (w->ctx && !w->ctx_dying)
		lws_context_destroy(w->ctx);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	if (w->ctx)
		lws_context_destroy(w->ctx);
	if (uv_loop_close(&w->loop))
		sb_log(SB_LOG_WARN, 0, "%s: loop closed with handles open", w->name);
	for (size_t i = 0; i < w->nfds; i++)
		close(w->fds[i].fd);
	free(w->fds);
	run_ready_list(w, w->ready);
	run_ready_list(w, w->self_ready);
	/* failed adoptions lws never came back for */
	for (struct sb_sock *s = w->orphans, *n; s; s = n) {
		n = s->next;
		free_sock(s);
	}
	/* sockets lws destroyed while our lists still held them */
	for (struct sb_sock *s = w->stash_list, *n; s; s = n) {
		n = s->stash_next;
		s->on_stash_list = false;
		if (s->destroyed && !s->on_close_list)
			free_sock(s);
	}
	for (struct sb_sock *s = w->close_list, *n; s; s = n) {
		n = s->close_next;
		s->on_close_list = false;
		if (s->destroyed)
			free_sock(s);
	}
	sb_codec_free(w->codec);
	sb_jbuf_release(&w->http);
	free(w->scratch);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

struct sb_stats *sb_worker_stats(struct sb_worker *w)
{
	return &w->stats;
}
