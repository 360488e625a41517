/*
 * Sockets: adoption, the close path and the one free path (sb_sock.h).
 * Worker thread only.
 */
#include "sb_sock.h"

#include "sb_log.h"
#include "sb_reqcheck.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libwebsockets 4.1 only: the close path below, the frame guard and the
 * read-ahead rely on how 4.1 closes, reads and writes (docs/architecture.md,
 * "The libwebsockets coupling").  CMakeLists.txt checks this too. */
#if LWS_LIBRARY_VERSION_MAJOR != 4 || LWS_LIBRARY_VERSION_MINOR != 1
#error "switchboard needs libwebsockets 4.1 (docs/architecture.md)"
#endif

double sb_time_scale = 1.0;
bool sb_test_skip_guard;

uint64_t sb_tp_now(const struct sb_tp *tp)
{
	return uv_now(tp->loop);
}

/* ms scaled for slow (sanitizer) builds. */
static uint64_t scaled_ms(uint64_t ms)
{
	return (uint64_t)((double)ms * sb_time_scale);
}

/* The open list and the orphan list are doubly linked. */
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
	s->prev = s->next = NULL;
}

static void free_sock(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;

	sb_recv_hook_release(&s->rx);
	sb_session_release(&s->sess, false);
	sb_msg_unref(s->http_body);
	free(s);
	atomic_fetch_sub(&tp->load, 1);
}

void sb_sock_release(struct sb_sock *s)
{
	if (s->state == SB_SOCK_GONE && !s->on_close_list && !s->on_stash_list &&
	    !s->servicing)
		free_sock(s);
}

/* ------------------------------------------------------------ closing */

/* The text sent with each close status. */
static const char *close_reason(uint16_t code, uint8_t cause)
{
	switch (code) {
	case SB_CLOSE_GOING_AWAY: return "server shutting down";
	case SB_CLOSE_PROTOCOL: return "protocol error";
	case SB_CLOSE_UNSUPPORTED: return "binary frames are not accepted";
	case SB_CLOSE_INVALID_DATA: return "invalid UTF-8";
	case SB_CLOSE_POLICY:
		return cause == SB_CAUSE_BACKLOG ? "outbound backlog overflow" :
		       "message not completed in time";
	case SB_CLOSE_TOO_BIG: return "message too big";
	case SB_CLOSE_RESTART: return "id taken elsewhere meanwhile; join again";
	default: return "internal error";
	}
}

/* Whether s's close fails the connection (RFC 6455 7.1.7): the server does
 * not wait for the client's close frame.  After a message left unfinished
 * it could not be read anyway: it would be taken as that message's bytes. */
static bool fails(const struct sb_sock *s)
{
	switch (s->close_code) {
	case SB_CLOSE_PROTOCOL:
	case SB_CLOSE_UNSUPPORTED:
	case SB_CLOSE_INVALID_DATA:
	case SB_CLOSE_TOO_BIG:
		return true;
	case SB_CLOSE_POLICY:
		return s->cause == SB_CAUSE_LIMIT;
	default:
		return false;
	}
}

/* s's TCP connection ends SB_FAIL_LINGER_MS from now, whatever the client
 * does: lws's timer for the wsi, apart from the timeout lws itself uses
 * while it sends the close frame and waits for the client's
 * (LWS_CALLBACK_TIMER, src/transport.c). */
static void fail_later(struct sb_sock *s)
{
	if (s->wsi)
		lws_set_timer_usecs(s->wsi, (lws_usec_t)SB_FAIL_LINGER_MS * 1000);
}

/* Puts s on the close list, for the check phase. */
static void list_close(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;

	if (s->on_close_list)
		return;
	s->on_close_list = true;
	s->close_next = tp->close_list;
	tp->close_list = s;
	tp->kick(tp->owner);
}

void sb_sock_close(struct sb_sock *s, uint16_t code, enum sb_cause cause)
{
	struct sb_tp *tp = s->tp;

	if (s->state != SB_SOCK_OPEN)
		return;
	s->state = SB_SOCK_CLOSING;
	s->close_code = code;
	s->cause = (uint8_t)cause;
	sb_session_end(&s->sess, !tp->env.draining);
	list_close(s);
}

/* The session's way to close: sb_session_ops.close. */
static void session_close(struct sb_session *sess, uint16_t code,
			  enum sb_cause cause)
{
	struct sb_sock *s = (struct sb_sock *)(void *)
		((char *)sess - offsetof(struct sb_sock, sess));

	sb_sock_close(s, code, cause);
}

/* The session waits for the backplane's answer to its join: lws stops
 * reading (what it has read already waits in its own buffer, and the
 * read-ahead keeps its stash); on resume the stash is served again, since
 * no readable event may come for bytes already read. */
static void session_pause(struct sb_session *sess, bool paused)
{
	struct sb_sock *s = (struct sb_sock *)(void *)((char *)sess -
						       offsetof(struct sb_sock, sess));

	if (!s->wsi || s->state != SB_SOCK_OPEN)
		return;
	lws_rx_flow_control(s->wsi, paused ? 0 : 1);
	if (!paused)
		sb_readahead_stashed(&s->rx);
}

const struct sb_session_ops sb_sock_session_ops = { session_close, session_pause };

/* Outside any lws callback: tells lws to close s, which is CLOSING. */
static void finish_close(struct sb_sock *s)
{
	if (s->close_code) {
		const char *r = close_reason(s->close_code, s->cause);

		lws_close_reason(s->wsi, s->close_code,
				 (unsigned char *)(uintptr_t)r, strlen(r));
	}
	if (s->rx.guard.mode == SB_WSG_FAILED) {
		/* what follows a violation is no stream: whatever the client
		 * sends now ends the connection (sb_wsguard.h) */
		s->rx.guard.mode = SB_WSG_CLOSED;
		sb_recv_hook_release(&s->rx);
	}
	if (s->close_code && lws_partial_buffered(s->wsi)) {
		/* lws would drop the close frame to flush what it holds: it
		 * goes once that is out (sb_sock_flushed), or the connection
		 * ends without it at the deadline */
		s->state = SB_SOCK_FLUSHING;
		lws_callback_on_writable(s->wsi);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
				(int)((scaled_ms(SB_CLOSE_FLUSH_MS) + 999) / 1000));
		return;
	}
	s->state = SB_SOCK_CLOSED;
	if (fails(s))
		fail_later(s);
	/* sends the close frame when there is a reason, else drops the
	 * connection; WSI_DESTROY may run inside (the list still holds s) */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

void sb_sock_flushed(struct sb_sock *s)
{
	if (s->state != SB_SOCK_FLUSHING)
		return;
	/* lws calls WRITEABLE only once it holds nothing more: back to the
	 * check phase, which sends the frame (returning -1 here would drop
	 * it: docs/architecture.md) */
	s->state = SB_SOCK_CLOSING;
	list_close(s);
}

bool sb_sock_peer_closed(struct sb_sock *s, unsigned char *code, size_t len)
{
	if (s->state != SB_SOCK_CLOSING)
		return false;
	/* Our close was decided but not yet sent when the client's close
	 * frame arrived: lws answers it now, with the code it carries, and
	 * would drop the close frame lws_close_reason() sets later.  So the
	 * answer carries our code instead, and the close is done. */
	if (len >= 2 && s->close_code) {
		code[0] = (unsigned char)(s->close_code >> 8);
		code[1] = (unsigned char)s->close_code;
	}
	s->state = SB_SOCK_CLOSED;
	if (fails(s))
		fail_later(s);
	return true;
}

void sb_sock_run_closes(struct sb_tp *tp)
{
	while (tp->close_list) {
		struct sb_sock *s = tp->close_list;

		tp->close_list = s->close_next;
		if (s->state == SB_SOCK_CLOSING && s->wsi)
			finish_close(s);
		s->on_close_list = false;
		sb_sock_release(s);
	}
}

/* lws 4.1 has no way to stop a wsi's timer: LWS_SET_TIMER_USEC_CANCEL is
 * taken as a time, one microsecond ago, and fires at once
 * (docs/architecture.md).  So the handshake timer is let go off at the
 * next pass of the loop, and sb_sock_timer ignores it.  Not pushed far
 * ahead instead: lws keeps every timer of a context in one list sorted by
 * time and walks it from the head at each insert, so a timer of the past
 * goes in first, while one pushed out of reach went in behind the timers
 * of every connection open, a walk of the whole list per connection. */
void sb_sock_request_seen(struct sb_sock *s)
{
	if (s->state != SB_SOCK_HTTP || !s->wsi || s->request_seen)
		return;
	s->request_seen = true;
	lws_set_timer_usecs(s->wsi, LWS_SET_TIMER_USEC_CANCEL);
}

int sb_sock_timer(struct sb_sock *s)
{
	switch (s->state) {
	case SB_SOCK_HTTP:
		if (s->request_seen)
			return 0;	/* stopped (sb_sock_request_seen) */
		/* no whole request within --handshake-timeout */
		sb_stat_add(&s->tp->stats.refused[SB_REQ_TIMEOUT], 1);
		sb_sock_log_refusal(&s->addr, 0, SB_REQ_TIMEOUT, NULL);
		return -1;
	case SB_SOCK_CLOSED:
		return -1;	/* a failed connection's linger is over */
	default:
		return 0;
	}
}

void sb_sock_log_refusal(const struct sb_addr *client, int status,
			 enum sb_req_reason reason, const char *origin)
{
	char ip[SB_ADDR_STRLEN + 8];
	struct sb_refusal r = { .client = ip, .status = status, .origin = origin };

	if (!sb_log_enabled(SB_LOG_INFO))
		return;
	sb_addr_format(client, ip, sizeof(ip));
	r.reason = reason >= 0 && reason < SB_REQ_COUNT ? sb_req_reason_names[reason] : "?";
	sb_log_refusal(&r);
}

void sb_sock_http_refused(struct sb_rx *rx, int reason)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	if (reason < 0 || reason >= SB_REQ_COUNT)
		return;
	sb_stat_add(&s->tp->stats.refused[reason], 1);
	sb_sock_log_refusal(&s->addr, rx->req.status, reason, NULL);
}

void sb_sock_guard_failed(struct sb_rx *rx)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	if (s->state == SB_SOCK_OPEN) {
		sb_sock_close(s, SB_CLOSE_PROTOCOL, SB_CAUSE_PROTOCOL);
	} else if (s->state == SB_SOCK_FLUSHING || s->state == SB_SOCK_CLOSED) {
		/* Already closing: what follows cannot be parsed, and no close
		 * frame can be read in it any more.  Whatever the client sends
		 * next ends the connection (a failed guard would leave those
		 * bytes in the kernel, and the loop would poll them for ever). */
		s->rx.guard.mode = SB_WSG_CLOSED;
		sb_recv_hook_release(&s->rx);
		if (s->state == SB_SOCK_CLOSED)
			fail_later(s);
	}
}

/* ------------------------------------------------------------ lifetime */

void sb_sock_adopt(struct sb_tp *tp, int fd, const struct sb_addr *peer)
{
	struct sb_sock *s = NULL;
	lws_adopt_desc_t desc;
	struct lws *wsi;

	if (!tp->env.draining && tp->ctx)
		s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		atomic_fetch_sub(&tp->load, 1);
		return;
	}
	s->tp = tp;
	s->fd = fd;
	s->addr = *peer;
	s->state = SB_SOCK_ADOPTING;
	if (!sb_test_skip_guard)
		sb_recv_hook_attach(fd, &s->rx);

	memset(&desc, 0, sizeof(desc));
	desc.vh = tp->vh;
	desc.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
	if (tp->cfg->tls_cert[0])
		desc.type |= LWS_ADOPT_ALLOW_SSL;
	desc.fd.sockfd = fd;
	desc.opaque = s;
	wsi = lws_adopt_descriptor_vhost_via_info(&desc);
	if (wsi && s->state == SB_SOCK_ADOPTING) {
		s->wsi = wsi;
		s->state = SB_SOCK_HTTP;
		/* --handshake-timeout: ours, logged and counted when it runs
		 * out (sb_sock_handshake_expired); lws's own runs a little
		 * longer, as a backstop (src/transport.c) */
		lws_set_timer_usecs(wsi, (lws_usec_t)tp->cfg->handshake_timeout *
					 LWS_USEC_PER_SEC);
		return;
	}
	sb_recv_hook_detach(fd, &s->rx);
	if (!wsi && s->state == SB_SOCK_ADOPTING) {
		/* Failed after lws made the wsi (a TLS handshake that failed
		 * at once, say): lws closes it, and with libuv finishes that
		 * only when the handle is closed, so WSI_DESTROY comes later
		 * and frees s.  Listed meanwhile, in case it never does. */
		s->state = SB_SOCK_ORPHAN;
		list_add(&tp->orphans, s);
		return;
	}
	/* lws destroyed it inside adopt, and closed fd itself */
	s->state = SB_SOCK_GONE;
	sb_sock_release(s);
}

void sb_sock_open(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;
	uint64_t now = sb_tp_now(tp);

	if (!s->rx.reached) {
		/* lws did not read this socket through recv() or SSL_read():
		 * without the guard, RFC 6455 faults would pass unseen and
		 * the read-ahead would never run.  Not a state to go on in. */
		sb_log(SB_LOG_ERROR, 0,
		       "the frame guard was not reached: libwebsockets read a "
		       "socket without recv() or SSL_read() (is it 4.1, built "
		       "with OpenSSL? see docs/architecture.md); stopping");
		_exit(SB_EXIT_NO_GUARD);
	}
	sb_wsguard_upgrade(&s->rx.guard);
	if (sb_session_open(&s->sess, &tp->env, tp->sched, tp->cfg->max_backlog,
			    &tp->stats.depth, now)) {
		/* out of memory: closed at once, with a session or not */
		s->state = SB_SOCK_CLOSING;
		s->close_code = SB_CLOSE_INTERNAL;
		s->cause = SB_CAUSE_LIMIT;
		list_close(s);
		return;
	}
	s->opened = now;
	sb_liveness_init(&s->live, now);
	s->state = SB_SOCK_OPEN;
	list_add(&tp->open, s);
	tp->nopen++;
	sb_stat_add(&tp->stats.connections, 1);
	if (tp->env.draining)
		sb_sock_close(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
}

void sb_sock_ended(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;

	sb_edge_release(tp->edge, &s->adm);
	if (!s->sess.conn)
		return;		/* never a WebSocket, or already ended */
	if (s->state == SB_SOCK_OPEN)
		s->cause = tp->env.draining ? SB_CAUSE_SHUTDOWN : SB_CAUSE_CLIENT;
	if (s->state >= SB_SOCK_OPEN && s->state <= SB_SOCK_CLOSED) {
		list_remove(&tp->open, s);
		tp->nopen--;
		sb_stat_sub(&tp->stats.connections, 1);
		s->state = SB_SOCK_CLOSED;	/* lws is closing it: no more */
	}
	sb_session_end(&s->sess, !tp->env.draining);
	sb_stat_add(&tp->stats.closes[s->cause], 1);
	if (sb_log_enabled(SB_LOG_INFO)) {
		struct sb_access a;
		char ip[INET6_ADDRSTRLEN];

		sb_addr_format(&s->addr, ip, sizeof(ip));
		a.client = ip;
		a.room = sb_session_last_room(&s->sess);
		a.id = sb_session_last_id(&s->sess);
		a.duration_ms = (unsigned long)(sb_tp_now(tp) - s->opened);
		a.in = s->sess.msgs_in;
		a.out = s->sess.msgs_out;
		a.cause = sb_cause_names[s->cause];
		sb_log_access(&a);
	}
	sb_session_release(&s->sess, !tp->env.draining);
}

void sb_sock_destroyed(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;
	uint8_t was = s->state;

	sb_sock_ended(s);	/* when CLOSED never came */
	sb_recv_hook_detach(s->fd, &s->rx);
	s->wsi = NULL;
	s->state = SB_SOCK_GONE;
	if (was == SB_SOCK_ADOPTING)
		return;		/* sb_sock_adopt() finishes it */
	if (was == SB_SOCK_ORPHAN)
		list_remove(&tp->orphans, s);
	sb_sock_release(s);
}

/* ------------------------------------------------------------ the lists */

void sb_tp_lists_free(struct sb_tp *tp)
{
	/* each socket is freed when the last list lets go of it */
	while (tp->orphans) {
		struct sb_sock *s = tp->orphans;

		list_remove(&tp->orphans, s);
		s->state = SB_SOCK_GONE;
		sb_sock_release(s);
	}
	for (int k = 0; k < 2; k++) {
		struct sb_sock **list = k ? &tp->stash_next_turn : &tp->stash_list;

		while (*list) {
			struct sb_sock *s = *list;

			*list = s->stash_next;
			s->on_stash_list = false;
			sb_sock_release(s);
		}
	}
	while (tp->close_list) {
		struct sb_sock *s = tp->close_list;

		tp->close_list = s->close_next;
		s->on_close_list = false;
		sb_sock_release(s);
	}
}
