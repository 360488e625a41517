/*
 * The request-head checker: reads the bytes of a client's HTTP/1.1 request
 * heads as they arrive, before libwebsockets parses them, and finds what
 * the server refuses: HTTP/2 (the prior-knowledge preface, an upgrade to
 * h2c), methods other than GET and HEAD, heads and targets over the bounds
 * below, request bodies and ambiguous framing (Content-Length repeated or
 * with Transfer-Encoding), upgrades other than WebSocket, and WebSocket
 * upgrades that RFC 6455 rejects (Sec-WebSocket-Version other than 13, a
 * Sec-WebSocket-Key that is not base64 of 16 bytes).  docs/protocol.md
 * lists each refusal with its answer.
 *
 * Streaming and exact: the verdict, and the byte at which it is reached,
 * do not depend on how the stream is cut into calls.  A refusal comes at or
 * before the byte at which libwebsockets 4.1 would fail on its own (an
 * unknown method, a bad %-escape, its header space or fragment table full),
 * so a caller that checks each piece before handing it on keeps lws from
 * ever seeing a head the checker refuses.
 *
 * Pure byte logic, no I/O: src/recv_hook.c feeds it the bytes it gives lws.
 * One checker per socket, used by the socket's owning worker thread only.
 */
#ifndef SB_REQCHECK_H
#define SB_REQCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds.  A head is the request line, the header lines and the empty
 * line, CRLFs included. */
#define SB_REQ_HEAD_MAX 8192	/* bytes of one head: 431 over it */
#define SB_REQ_TARGET_MAX 4096	/* bytes of the request target: 414 */
#define SB_REQ_FIELDS_MAX 48	/* header fields in one head: 431 */
#define SB_REQ_PARAMS_MAX 40	/* '?', '&' and ';' in the target: 414 */

/*
 * The header space libwebsockets needs for any head the checker lets
 * through (its info.max_http_header_data).  lws stores the decoded target,
 * one more byte per '?', '&' or ';', each header's value, and for a header
 * it does not know its name and 8 bytes of its own: at most the head's
 * bytes, plus 6 per field, plus 1 per parameter, plus 8 while a name is
 * being matched.  The margin covers the NULs after the target and version.
 * Its fragment table (95 entries in 4.1) holds the target, its parameters,
 * the version and each known header: 3 + 40 + 48 = 91.
 */
#define SB_REQ_LWS_HEADER_SPACE                                               \
	(SB_REQ_HEAD_MAX + 6 * SB_REQ_FIELDS_MAX + SB_REQ_PARAMS_MAX + 8 + 64)

/* Why a request was refused, as /metrics counts it
 * (switchboard_http_refused_total{reason}).  The checker finds the first
 * eleven; the transport the rest, after the head is read (ws_path and the
 * edge's verdicts, sb_edge.h) or when --handshake-timeout ran out. */
#define SB_REQ_REASONS(X)                                                     \
	X(MALFORMED, "malformed")		/* 400 */                     \
	X(METHOD, "method")			/* 405, or 501 unknown */     \
	X(VERSION, "version")			/* 505 */                     \
	X(H2, "h2")				/* 505 preface, 400 h2c */    \
	X(TARGET, "uri_too_long")		/* 414 */                     \
	X(HEADERS, "headers_too_large")		/* 431 */                     \
	X(FRAMING, "framing")			/* 400 */                     \
	X(UPGRADE, "upgrade")			/* 400 */                     \
	X(WS_VERSION, "ws_version")		/* 426, or 400 */             \
	X(WS_KEY, "ws_key")			/* 400 */                     \
	X(WS_PATH, "ws_path")			/* 404 */                     \
	X(ORIGIN, "origin")			/* 403 */                     \
	X(DRAINING, "draining")			/* 503 */                     \
	X(MAX_CONN, "max_connections")		/* 503 */                     \
	X(MAX_CONN_IP, "max_connections_per_ip")	/* 503 */             \
	X(TIMEOUT, "handshake_timeout")		/* closed, no answer */

#define SB_ENUM_REQ(e, s) SB_REQ_##e,
enum sb_req_reason { SB_REQ_NONE = -1, SB_REQ_REASONS(SB_ENUM_REQ) SB_REQ_COUNT };

extern const char *const sb_req_reason_names[SB_REQ_COUNT];

/* What one call of sb_reqcheck_feed() found. */
enum sb_req_verdict {
	SB_REQ_MORE,	/* every byte is fine; the head goes on */
	SB_REQ_HEAD,	/* a head ended, accepted: the checker waits for the
			 * next request */
	SB_REQ_REFUSE,	/* refused: see reason and status; for good */
};

/* Fields are private but for reason and status. */
struct sb_reqcheck {
	uint8_t state;
	int8_t reason;		/* enum sb_req_reason once refused */
	uint16_t status;	/* the HTTP status of the refusal */
	uint16_t head_len;	/* bytes of this head so far */
	uint16_t target_len;
	uint16_t match;		/* tokens the current one may still be */
	uint8_t pos;		/* bytes of the current token (saturating) */
	uint8_t params;		/* '?', '&', ';' in the target */
	uint8_t fields;		/* header fields so far */
	uint8_t field;		/* the header field being read */
	uint8_t esc;		/* %-escape in the target */
	uint8_t flags;
	uint8_t counts;		/* of the headers that may appear once */
	uint8_t vflags;		/* the value being read */
};

/* Makes c ready for a connection's first request. */
void sb_reqcheck_init(struct sb_reqcheck *c);

/*
 * Checks the next n bytes of the connection's stream.  *used is set to how
 * many were taken: n (SB_REQ_MORE), up to and including the end of a head
 * (SB_REQ_HEAD: the rest belongs to what follows), or those before the
 * offending byte (SB_REQ_REFUSE).  A refused checker takes nothing more.
 */
enum sb_req_verdict sb_reqcheck_feed(struct sb_reqcheck *c, const void *p,
				     size_t n, size_t *used);

/* The most sb_reqcheck_answer() writes. */
#define SB_REQ_ANSWER_MAX 512

/*
 * Writes the server's whole answer to a refused request to out: an
 * HTTP/1.1 status line, Content-Type text/plain, the exact Content-Length,
 * Connection: close, and a one-line body (left out for HEAD).  Returns its
 * length, or 0 when c has not refused or cap is too small.
 */
size_t sb_reqcheck_answer(const struct sb_reqcheck *c, char *out, size_t cap);

/* The same answer for a refusal decided outside the checker: reason with
 * its status (ws_path 404, origin 403, draining and the caps 503), to a
 * GET.  0 when cap is too small. */
size_t sb_req_answer(enum sb_req_reason reason, int status, char *out, size_t cap);

#endif
