/*
 * The libwebsockets transport (sb_transport.h): context creation, the
 * protocol callback, batched writes and HTTP answers.  Worker thread only,
 * but for sb_transport_create (main, before the worker runs).
 */
#include "sb_transport.h"

#include "sb_http.h"
#include "sb_log.h"
#include "sb_reqcheck.h"
#include "sb_wsguard.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes per lws RECEIVE chunk; allocated per connection by lws.  With the
 * recv hook's read-ahead (64 KiB per read) a bigger buffer no longer buys
 * fewer system calls, only memory: 1 KiB measured as fast as 2 KiB, at
 * 1 KiB less per connection. */
#define RX_CHUNK 1024
/* At most this many messages, and bytes unless one message is larger, go
 * out in one write. */
#define BATCH_MSGS 64
#define BATCH_BYTES 65536
/* The most one send() carries (lws's tx_packet_size): a whole batch. */
#define TX_MAX (4 * BATCH_BYTES)
/* The payload of our heartbeat pings (clients echo it in their pongs). */
#define PING_DATA "sb"

/* ------------------------------------------------------------ writing */

/* LWS_PRE + len bytes of the worker's scratch buffer, or NULL. */
static unsigned char *scratch(struct sb_tp *tp, size_t len)
{
	if (LWS_PRE + len > tp->scratch_cap) {
		size_t ncap = LWS_PRE + len;
		unsigned char *n = realloc(tp->scratch, ncap);

		if (!n)
			return NULL;
		tp->scratch = n;
		tp->scratch_cap = ncap;
	}
	return tp->scratch + LWS_PRE;
}

/* Frames the messages of batch[0..n) into the scratch buffer, drops the
 * references, and writes them with one lws_write (so one send() for as
 * many messages as were queued, up to BATCH_BYTES).  lws keeps what the
 * kernel does not take and calls WRITEABLE again only once it is out, so
 * frames never interleave.  lws_write's result.  A shared message is never
 * handed to lws, which writes its frame header in front of the payload. */
static int write_batch(struct sb_tp *tp, struct lws *wsi, struct sb_msg **batch,
		       size_t n)
{
	size_t total = 0, off = 0;
	unsigned char *p;
	uint64_t now = 0;

	for (size_t i = 0; i < n; i++)
		total += 10 + batch[i]->len;
	p = scratch(tp, total);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->t_rx) {
			/* relay latency, up to here: the write is one call */
			if (!now)
				now = uv_hrtime();
			sb_stat_latency(&tp->stats, (unsigned long)(now - batch[i]->t_rx));
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
static int send_queued(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;
	struct sb_msg *batch[BATCH_MSGS];
	bool overflow, more;
	size_t n;

	n = sb_conn_take(s->sess.conn, batch, BATCH_MSGS, BATCH_BYTES, &overflow,
			 &more);
	if (overflow) {
		sb_sock_close(s, SB_CLOSE_POLICY, SB_CAUSE_BACKLOG);
		return 0;
	}
	if (n && write_batch(tp, s->wsi, batch, n) < 0)
		return -1;
	sb_stat_add(&tp->stats.delivered, n);
	s->sess.msgs_out += (uint32_t)n;
	if (more)
		lws_callback_on_writable(s->wsi);
	else if (s->drain_close)
		sb_sock_close(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
	return 0;
}

void sb_transport_flush(struct sb_sock *s)
{
	if (s->ping_due || lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	if (send_queued(s) < 0)
		sb_sock_close(s, 0, SB_CAUSE_CLIENT);	/* the socket is gone */
}

void sb_transport_ping(struct sb_sock *s)
{
	s->ping_due = true;
	lws_callback_on_writable(s->wsi);
}

/* SERVER_WRITEABLE: a close frame waiting for lws's bytes, the ping if one
 * is due, else what is queued; one lws_write per call. */
static int ws_writeable(struct sb_sock *s)
{
	unsigned char *p;

	if (s->state == SB_SOCK_FLUSHING) {
		sb_sock_flushed(s);
		return 0;
	}
	if (s->state != SB_SOCK_OPEN)
		return 0;
	if (s->ping_due) {
		p = scratch(s->tp, sizeof(PING_DATA) - 1);
		if (!p)
			return -1;
		memcpy(p, PING_DATA, sizeof(PING_DATA) - 1);
		s->ping_due = false;
		if (lws_write(s->wsi, p, sizeof(PING_DATA) - 1, LWS_WRITE_PING) < 0)
			return -1;
		lws_callback_on_writable(s->wsi);	/* the queue may hold more */
		return 0;
	}
	return send_queued(s);
}

/* RECEIVE: a piece of a message, for the session. */
static void ws_receive(struct sb_sock *s, struct lws *wsi, const void *in,
		       size_t len)
{
	struct sb_piece piece;
	uint64_t now = sb_tp_now(s->tp);

	if (s->state != SB_SOCK_OPEN)
		return;		/* a close is under way: what arrives is moot */
	sb_liveness_seen(&s->live, now);
	piece.binary = lws_frame_is_binary(wsi);
	piece.first = lws_is_first_fragment(wsi);
	piece.final = lws_is_final_fragment(wsi);
	piece.remaining = lws_remaining_packet_payload(wsi);
	sb_session_receive(&s->sess, in, len, &piece, now);
}

/* ------------------------------------------------------------ HTTP */

static int http_request(struct sb_sock *s, struct lws *wsi, const char *path)
{
	struct sb_tp *tp = s->tp;
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start;
	unsigned char *end = hdr + sizeof(hdr) - 1;
	const char *ctype;
	struct sb_msg *file;
	int status;

	sb_buf_reset(&tp->body);
	status = sb_http_answer(tp->http_src, path ? path : "/", &tp->body, &ctype,
				&file);
	if (sb_buf_failed(&tp->body)) {
		sb_msg_unref(file);
		return -1;
	}
	sb_msg_unref(s->http_body);
	s->http_body = file ? file : sb_msg_from(tp->body.p, tp->body.len);
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

static int http_writeable(struct sb_sock *s, struct lws *wsi)
{
	struct sb_msg *m = s->http_body;
	unsigned char *p;
	int n = -1;

	if (!m)
		return 0;
	s->http_body = NULL;
	p = scratch(s->tp, m->len);
	if (p) {
		memcpy(p, m->data, m->len);
		n = lws_write(wsi, p, m->len, LWS_WRITE_HTTP_FINAL);
	}
	sb_msg_unref(m);
	if (n < 0 || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
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

/* Refuses an upgrade from who with reason's status and a plain-text
 * answer of ours (sb_req_answer), counted and logged, and closes the
 * connection: lws flushes the answer before it closes. */
static int refuse_upgrade(struct sb_sock *s, struct lws *wsi,
			  const struct sb_addr *who, enum sb_req_reason reason,
			  int status, const char *origin)
{
	unsigned char buf[LWS_PRE + SB_REQ_ANSWER_MAX];
	size_t n = sb_req_answer(reason, status, (char *)buf + LWS_PRE,
				 SB_REQ_ANSWER_MAX);

	sb_stat_add(&s->tp->stats.refused[reason], 1);
	sb_sock_log_refusal(who, status, reason, origin);
	if (n)
		lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP);
	return -1;
}

/* An upgrade to WebSocket asks to be let in: its path (404), then the edge
 * (sb_edge.h).  A header longer than lws's whole header space cannot be
 * there. */
static int confirm_upgrade(struct sb_sock *s, struct lws *wsi)
{
	struct sb_tp *tp = s->tp;
	char origin[SB_ORIGIN_MAX], xff[4096], real_ip[64];
	struct sb_upgrade u = { .peer = s->addr, .xff = "", .real_ip = "" };
	struct sb_addr who;
	char path[16];

	/* /healthz and /metrics are plain HTTP (docs/protocol.md): the path as
	 * lws decoded it, its first fragment, the one a GET is answered for */
	if (lws_hdr_copy_fragment(wsi, path, sizeof(path), WSI_TOKEN_GET_URI, 0) > 0 &&
	    sb_http_is_endpoint(path))
		return refuse_upgrade(s, wsi, &s->addr, SB_REQ_WS_PATH, 404, NULL);
	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0)
		u.origin = origin;
	if (sb_edge_reads_forwarded(tp->edge)) {
		header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof(xff));
		header(wsi, WSI_TOKEN_HTTP_X_REAL_IP, real_ip, sizeof(real_ip));
		u.xff = xff;
		u.real_ip = real_ip;
	}
	/* from here on the connection is the client's (a refused one stays
	 * the peer's: a proxy may send another client's request on it) */
	switch (sb_edge_upgrade(tp->edge, &u, tp->env.draining, &who, &s->adm)) {
	case SB_EDGE_OK:
		s->addr = who;
		return 0;
	case SB_EDGE_ORIGIN:
		return refuse_upgrade(s, wsi, &who, SB_REQ_ORIGIN, 403, u.origin);
	case SB_EDGE_DRAINING:
		return refuse_upgrade(s, wsi, &who, SB_REQ_DRAINING, 503, NULL);
	case SB_EDGE_FULL_ADDR:
		return refuse_upgrade(s, wsi, &who, SB_REQ_MAX_CONN_IP, 503, NULL);
	default:
		return refuse_upgrade(s, wsi, &who, SB_REQ_MAX_CONN, 503, NULL);
	}
}

/* ------------------------------------------------------------ lws */

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct sb_sock *s = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (!s)
			break;
		sb_sock_request_seen(s);
		return http_request(s, wsi, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!s)
			break;
		return http_writeable(s, wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!s)
			return 0;
		sb_sock_request_seen(s);
		return confirm_upgrade(s, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		if (s)
			sb_sock_open(s);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (!s)
			return -1;
		ws_receive(s, wsi, in, len);
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s && s->state == SB_SOCK_OPEN)
			sb_liveness_seen(&s->live, sb_tp_now(s->tp));
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s ? ws_writeable(s) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* lws sends in[0..len) back as its answer after this */
		if (s)
			sb_sock_peer_closed(s, in, len);
		return 0;
	case LWS_CALLBACK_TIMER:
		return s ? sb_sock_timer(s) : 0;
	case LWS_CALLBACK_CLOSED:
		if (s)
			sb_sock_ended(s);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (s)
			sb_sock_destroyed(s);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		return 0;	/* never nonzero here (docs/architecture.md) */
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

static void log_from_lws(int level, const char *line)
{
	/* clients can make lws log: rate-limited (sb_log.h) */
	sb_log_client(level == LLL_ERR ? SB_LOG_ERROR : SB_LOG_WARN, 0, "lws: %s", line);
}

int sb_transport_create(struct sb_tp *tp, const char *name,
			struct ssl_ctx_st *tls_client_ctx)
{
	const struct sb_config *cfg = tp->cfg;
	struct lws_context_creation_info info;
	void *loops[1];

	lws_set_log_level(LLL_ERR | (sb_log_enabled(SB_LOG_DEBUG) ? LLL_WARN : 0),
			  log_from_lws);
	memset(&info, 0, sizeof(info));
	loops[0] = tp->loop;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_LIBUV |
		       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	info.foreign_loops = loops;
	info.pcontext = &tp->ctx;
	info.user = tp;
	info.alpn = "http/1.1";
	/* A new connection has --handshake-timeout to send its request: our
	 * timer (sb_sock_adopt) closes it then, logged and counted.  lws's
	 * own are a backstop a little later: adopt starts one of timeout_secs
	 * (the TLS handshake's too), and attaching the header buffer at once
	 * replaces it with one of timeout_secs_ah_idle, which bytes arriving
	 * do not extend; later requests on a kept-alive connection have that
	 * long. */
	info.timeout_secs = (unsigned)cfg->handshake_timeout + SB_HANDSHAKE_BACKSTOP;
	info.timeout_secs_ah_idle = cfg->handshake_timeout + SB_HANDSHAKE_BACKSTOP;
	info.retry_and_idle_policy = &no_validity;
	/* room for any request head the recv hook's checker lets through
	 * (sb_reqcheck.h): it refuses larger ones before lws runs out */
	info.max_http_header_data = SB_REQ_LWS_HEADER_SPACE;
	info.vhost_name = "switchboard";
	if (cfg->tls_cert[0]) {
		/* every context initializes OpenSSL for itself, or its vhost
		 * serves plaintext; contexts are made one after the other on
		 * the main thread (docs/architecture.md) */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		info.provided_client_ssl_ctx = tls_client_ctx;
	}
	info.server_string = "switchboard";
	tp->ctx = lws_create_context(&info);
	if (!tp->ctx) {
		sb_log(SB_LOG_ERROR, 0, "%s: cannot create the libwebsockets context%s",
		       name, cfg->tls_cert[0] ?
		       " (are --tls-cert and --tls-key a PEM certificate and its key?)" : "");
		return -1;
	}
	tp->vh = lws_get_vhost_by_name(tp->ctx, "switchboard");
	if (!tp->vh) {
		/* with a foreign loop lws returns a context it has already
		 * begun to destroy when its vhost failed (context.c) */
		tp->ctx_dying = true;
		sb_log(SB_LOG_ERROR, 0, "%s: cannot set up the server%s", name,
		       cfg->tls_cert[0] ?
		       " (are --tls-cert and --tls-key a PEM certificate and its key?)" : "");
		return -1;
	}
	return 0;
}

bool sb_transport_destroy(struct sb_tp *tp)
{
	if (tp->ctx)
		lws_context_destroy(tp->ctx);
	return !tp->ctx;
}
