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
	    !s->on_fail_list && !s->servicing)
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
	default: return "internal error";
	}
}

/* Whether code fails the connection (RFC 6455 7.1.7): the server does not
 * wait for the client's close frame. */
static bool fails(uint16_t code)
{
	return code == SB_CLOSE_PROTOCOL || code == SB_CLOSE_UNSUPPORTED ||
	       code == SB_CLOSE_INVALID_DATA || code == SB_CLOSE_TOO_BIG;
}

static void on_fail_timer(uv_timer_t *t);

/* s's TCP connection ends SB_FAIL_LINGER_MS from now, whatever the client
 * does.  Deadlines are all now + the same delay, so the list stays in
 * deadline order by appending. */
static void fail_later(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;
	uint64_t delay = SB_FAIL_LINGER_MS;

	if (s->on_fail_list)
		return;
	s->on_fail_list = true;
	s->fail_at = sb_tp_now(tp) + delay;
	s->fail_next = NULL;
	if (tp->fail_tail)
		tp->fail_tail->fail_next = s;
	else
		tp->fail_head = s;
	tp->fail_tail = s;
	if (!uv_is_active((uv_handle_t *)&tp->fail_timer))
		uv_timer_start(&tp->fail_timer, on_fail_timer, delay, 0);
}

static void on_fail_timer(uv_timer_t *t)
{
	struct sb_tp *tp = t->data;
	uint64_t now = sb_tp_now(tp);

	while (tp->fail_head && tp->fail_head->fail_at <= now) {
		struct sb_sock *s = tp->fail_head;

		tp->fail_head = s->fail_next;
		if (!tp->fail_head)
			tp->fail_tail = NULL;
		/* no lws callback runs in a timer: kill it, should lws still
		 * wait for the client's close frame (on_fail_list keeps s
		 * while lws destroys it) */
		if (s->wsi && s->state == SB_SOCK_CLOSED)
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_SYNC);
		s->on_fail_list = false;
		sb_sock_release(s);
	}
	if (tp->fail_head)
		uv_timer_start(t, on_fail_timer, tp->fail_head->fail_at - now, 0);
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
	if (!s->on_close_list) {
		s->on_close_list = true;
		s->close_next = tp->close_list;
		tp->close_list = s;
		tp->kick(tp);
	}
}

/* The session's way to close: sb_session_ops.close. */
static void session_close(struct sb_session *sess, uint16_t code,
			  enum sb_cause cause)
{
	struct sb_sock *s = (struct sb_sock *)(void *)
		((char *)sess - offsetof(struct sb_sock, sess));

	sb_sock_close(s, code, cause);
}

const struct sb_session_ops sb_sock_session_ops = { session_close };

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
	if (fails(s->close_code))
		fail_later(s);
	/* sends the close frame when there is a reason, else drops the
	 * connection; WSI_DESTROY may run inside (the list still holds s) */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

void sb_sock_flushed(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;

	if (s->state != SB_SOCK_FLUSHING)
		return;
	if (lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	/* back to the check phase, which sends the frame: returning -1 here
	 * would drop it (docs/architecture.md) */
	s->state = SB_SOCK_CLOSING;
	if (!s->on_close_list) {
		s->on_close_list = true;
		s->close_next = tp->close_list;
		tp->close_list = s;
		tp->kick(tp);
	}
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

void sb_sock_http_refused(struct sb_rx *rx, int reason)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	if (reason >= 0 && reason < SB_REQ_COUNT)
		sb_stat_add(&s->tp->stats.refused[reason], 1);
}

void sb_sock_guard_failed(struct sb_rx *rx)
{
	struct sb_sock *s = (struct sb_sock *)rx;

	if (s->state == SB_SOCK_OPEN)
		sb_sock_close(s, SB_CLOSE_PROTOCOL, SB_CAUSE_PROTOCOL);
	else if (s->state == SB_SOCK_CLOSED)
		fail_later(s);	/* no close frame can be read any more */
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

bool sb_sock_open(struct sb_sock *s)
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
	if (s->state != SB_SOCK_HTTP ||
	    sb_session_open(&s->sess, &tp->env, tp->sched, tp->cfg->max_backlog,
			    &tp->stats.depth, now))
		return false;
	sb_wsguard_upgrade(&s->rx.guard);
	s->opened = now;
	sb_liveness_init(&s->live, now);
	s->state = SB_SOCK_OPEN;
	list_add(&tp->open, s);
	tp->nopen++;
	sb_stat_add(&tp->stats.connections, 1);
	if (tp->env.draining)
		sb_sock_close(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
	return true;
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

int sb_tp_lists_init(struct sb_tp *tp)
{
	int rc = uv_timer_init(tp->loop, &tp->fail_timer);

	tp->fail_timer.data = tp;
	return rc;
}

void sb_tp_lists_close(struct sb_tp *tp)
{
	if (tp->fail_timer.loop && !uv_is_closing((uv_handle_t *)&tp->fail_timer))
		uv_close((uv_handle_t *)&tp->fail_timer, NULL);
}

void sb_tp_lists_free(struct sb_tp *tp)
{
	/* each socket is freed when the last list lets go of it */
	while (tp->orphans) {
		struct sb_sock *s = tp->orphans;

		list_remove(&tp->orphans, s);
		s->state = SB_SOCK_GONE;
		sb_sock_release(s);
	}
	while (tp->stash_list) {
		struct sb_sock *s = tp->stash_list;

		tp->stash_list = s->stash_next;
		s->on_stash_list = false;
		sb_sock_release(s);
	}
	while (tp->close_list) {
		struct sb_sock *s = tp->close_list;

		tp->close_list = s->close_next;
		s->on_close_list = false;
		sb_sock_release(s);
	}
	while (tp->fail_head) {
		struct sb_sock *s = tp->fail_head;

		tp->fail_head = s->fail_next;
		s->on_fail_list = false;
		sb_sock_release(s);
	}
	tp->fail_tail = NULL;
}
