#include "sb_reqcheck.h"

#include <stdio.h>
#include <string.h>

#define SB_NAME_REQ(e, s) s,
const char *const sb_req_reason_names[SB_REQ_COUNT] = { SB_REQ_REASONS(SB_NAME_REQ) };

enum {
	S_METHOD,	/* the method token */
	S_TARGET,	/* the request target */
	S_VERSION,	/* "HTTP/x.y" */
	S_LF,		/* a CR ended a line: its LF */
	S_LINE,		/* the start of a header line, or the empty line */
	S_NAME,		/* a field name */
	S_VALUE,	/* a field value */
	S_END_LF,	/* the CR of the empty line: its LF ends the head */
	S_REFUSED,
};

/* Methods, the ones libwebsockets 4.1 knows, and the HTTP/2
 * preface's; the server serves the first two. */
static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
	"PRI",
};
enum { M_GET, M_HEAD, M_PRI = 8, M_COUNT };

/* The header fields the checker reads, in lower case. */
static const char *const names[] = {
	"content-length", "transfer-encoding", "upgrade", "connection",
	"sec-websocket-version", "sec-websocket-key",
};
enum { F_CL, F_TE, F_UPGRADE, F_CONNECTION, F_WSVERSION, F_WSKEY, F_COUNT,
       F_OTHER = F_COUNT };

/* The values the checker looks for, per field; each is one token, matched
 * without regard to case. */
static const char *const values[F_COUNT][2] = {
	[F_CL] = { "0", NULL },
	[F_UPGRADE] = { "websocket", "h2c" },
	[F_CONNECTION] = { "upgrade", NULL },	/* one element of a list */
	[F_WSVERSION] = { "13", NULL },
};

/* flags */
#define FL_HEAD 0x01		/* the method is HEAD */
#define FL_HTTP11 0x02		/* the version is HTTP/1.1 */
#define FL_QUERY 0x04		/* the target has a '?' */
#define FL_WS 0x08		/* Upgrade: websocket */
#define FL_CONN_UPGRADE 0x10	/* Connection lists "upgrade" */
#define FL_VERSION_13 0x20	/* Sec-WebSocket-Version: 13 */
#define FL_KEY_OK 0x40		/* Sec-WebSocket-Key is base64 of 16 bytes */

/* counts: two bits each, saturating at 2 */
#define CNT_CL 0
#define CNT_UPGRADE 2
#define CNT_WSVERSION 4
#define CNT_WSKEY 6

/* vflags: the value token being read */
#define V_TRAIL 0x01		/* whitespace after its first byte */

/* esc: where a %-escape in the target is */
#define ESC_PERCENT 0x10	/* after '%' */
#define ESC_HEX 0x20		/* after '%' and one digit (the low bits) */

static unsigned count_of(const struct sb_reqcheck *c, int at)
{
	return (c->counts >> at) & 3u;
}

static void count_up(struct sb_reqcheck *c, int at)
{
	if (count_of(c, at) < 2)
		c->counts = (uint8_t)(c->counts + (1u << at));
}

/* RFC 9110 5.6.2: token characters. */
static bool is_tchar(unsigned char b)
{
	if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	    (b >= '0' && b <= '9'))
		return true;
	return b && strchr("!#$%&'*+-.^_`|~", b);
}

static int hexval(unsigned char b)
{
	if (b >= '0' && b <= '9')
		return b - '0';
	if (b >= 'a' && b <= 'f')
		return b - 'a' + 10;
	if (b >= 'A' && b <= 'F')
		return b - 'A' + 10;
	return -1;
}

static unsigned char lower(unsigned char b)
{
	return b >= 'A' && b <= 'Z' ? (unsigned char)(b + 'a' - 'A') : b;
}

static bool is_base64(unsigned char b)
{
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	       (b >= '0' && b <= '9') || b == '+' || b == '/';
}

/* Narrows c->match to the words whose byte at c->pos is b. */
static void narrow(struct sb_reqcheck *c, const char *const *words, int n,
		   unsigned char b)
{
	for (int i = 0; i < n; i++)
		if ((c->match & (1u << i)) &&
		    (!words[i] || strlen(words[i]) <= c->pos ||
		     (unsigned char)words[i][c->pos] != b))
			c->match &= (uint16_t)~(1u << i);
	if (c->pos < UINT8_MAX)
		c->pos++;
}

/* The word the current token is exactly, or -1. */
static int matched(const struct sb_reqcheck *c, const char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		if ((c->match & (1u << i)) && words[i] && strlen(words[i]) == c->pos)
			return i;
	return -1;
}

static enum sb_req_verdict refuse(struct sb_reqcheck *c, enum sb_req_reason r,
				  unsigned status)
{
	c->state = S_REFUSED;
	c->reason = (int8_t)r;
	c->status = (uint16_t)status;
	return SB_REQ_REFUSE;
}

void sb_reqcheck_init(struct sb_reqcheck *c)
{
	memset(c, 0, sizeof(*c));
	c->reason = SB_REQ_NONE;
	c->match = (1u << M_COUNT) - 1;
}

/* A value token (a value, or one element of a list) begins. */
static void value_begin(struct sb_reqcheck *c)
{
	c->pos = 0;
	c->vflags = 0;
	c->match = c->field == F_WSKEY ? 1 : 3;
}

/* One byte of a value token other than whitespace. */
static void value_byte(struct sb_reqcheck *c, unsigned char b)
{
	if (c->vflags & V_TRAIL) {
		c->match = 0;		/* whitespace inside: not one token */
	} else if (c->field == F_WSKEY) {
		/* 22 base64 digits and "==": 16 bytes */
		if (c->pos < 22 ? !is_base64(b) : c->pos > 23 || b != '=')
			c->match = 0;
	} else if (c->field < F_COUNT) {
		narrow(c, values[c->field], 2, lower(b));
		return;
	}
	if (c->pos < UINT8_MAX)
		c->pos++;
}

/* A value token ended: what it was. */
static int value_token(const struct sb_reqcheck *c)
{
	if (c->field == F_WSKEY)
		return c->match && c->pos == 24 ? 0 : -1;
	return matched(c, values[c->field], 2);
}

/* The name of a header field ended at its ':'. */
static enum sb_req_verdict name_end(struct sb_reqcheck *c)
{
	int f = matched(c, names, F_COUNT);

	c->field = (uint8_t)(f < 0 ? F_OTHER : f);
	switch (c->field) {
	case F_CL:
		if (count_of(c, CNT_CL))
			return refuse(c, SB_REQ_FRAMING, 400);
		count_up(c, CNT_CL);
		break;
	case F_TE:
		return refuse(c, SB_REQ_FRAMING, 400);
	case F_UPGRADE:
		if (count_of(c, CNT_UPGRADE))
			return refuse(c, SB_REQ_UPGRADE, 400);
		count_up(c, CNT_UPGRADE);
		break;
	case F_WSVERSION:
		count_up(c, CNT_WSVERSION);
		break;
	case F_WSKEY:
		count_up(c, CNT_WSKEY);
		break;
	default:
		break;
	}
	value_begin(c);
	return SB_REQ_MORE;
}

/* The value of a header field ended at its CR. */
static enum sb_req_verdict value_end(struct sb_reqcheck *c)
{
	int v = c->field < F_COUNT ? value_token(c) : -1;

	switch (c->field) {
	case F_CL:
		if (v != 0)
			return refuse(c, SB_REQ_FRAMING, 400);	/* a body */
		break;
	case F_UPGRADE:
		if (v == 1)
			return refuse(c, SB_REQ_H2, 400);
		if (v != 0)
			return refuse(c, SB_REQ_UPGRADE, 400);
		c->flags |= FL_WS;
		break;
	case F_CONNECTION:
		if (v == 0)
			c->flags |= FL_CONN_UPGRADE;
		break;
	case F_WSVERSION:
		if (v == 0)
			c->flags |= FL_VERSION_13;
		break;
	case F_WSKEY:
		if (v == 0)
			c->flags |= FL_KEY_OK;
		break;
	default:
		break;
	}
	return SB_REQ_MORE;
}

/* The empty line ended the head: what holds only for the whole of it. */
static enum sb_req_verdict head_end(struct sb_reqcheck *c)
{
	if (c->flags & FL_WS) {
		/* RFC 6455 4.2.1: a GET, HTTP/1.1, Connection: Upgrade */
		if ((c->flags & FL_HEAD) || !(c->flags & FL_HTTP11) ||
		    !(c->flags & FL_CONN_UPGRADE))
			return refuse(c, SB_REQ_UPGRADE, 400);
		if (count_of(c, CNT_WSVERSION) != 1)
			return refuse(c, SB_REQ_WS_VERSION, 400);
		if (!(c->flags & FL_VERSION_13))
			return refuse(c, SB_REQ_WS_VERSION, 426);
		if (count_of(c, CNT_WSKEY) != 1 || !(c->flags & FL_KEY_OK))
			return refuse(c, SB_REQ_WS_KEY, 400);
	}
	sb_reqcheck_init(c);
	return SB_REQ_HEAD;
}

/* The method token: refused at the first byte that makes it no method lws
 * knows, so lws never fails on a prefix it was given. */
static enum sb_req_verdict method_byte(struct sb_reqcheck *c, unsigned char b)
{
	int m;

	if (b != ' ') {
		if (!is_tchar(b))
			return refuse(c, SB_REQ_MALFORMED, 400);
		narrow(c, methods, M_COUNT, b);
		if (!c->match)
			return refuse(c, SB_REQ_METHOD, 501);
		if (matched(c, methods, M_COUNT) == M_PRI)
			return refuse(c, SB_REQ_H2, 505);	/* "PRI * HTTP/2.0" */
		return SB_REQ_MORE;
	}
	m = matched(c, methods, M_COUNT);
	if (c->pos == 0)
		return refuse(c, SB_REQ_MALFORMED, 400);
	if (m < 0)
		return refuse(c, SB_REQ_METHOD, 501);
	if (m != M_GET && m != M_HEAD)
		return refuse(c, SB_REQ_METHOD, 405);
	if (m == M_HEAD)
		c->flags |= FL_HEAD;
	c->state = S_TARGET;
	return SB_REQ_MORE;
}

static enum sb_req_verdict target_byte(struct sb_reqcheck *c, unsigned char b)
{
	if (b == ' ') {
		if (!c->target_len || c->esc)
			return refuse(c, SB_REQ_MALFORMED, 400);
		c->state = S_VERSION;
		c->pos = 0;
		return SB_REQ_MORE;
	}
	/* origin-form only, printable ASCII */
	if (b < 0x21 || b > 0x7e || (!c->target_len && b != '/'))
		return refuse(c, SB_REQ_MALFORMED, 400);
	if (++c->target_len > SB_REQ_TARGET_MAX)
		return refuse(c, SB_REQ_TARGET, 414);
	if (c->esc) {
		int h = hexval(b);

		if (h < 0)
			return refuse(c, SB_REQ_MALFORMED, 400);
		if (c->esc == ESC_PERCENT) {
			c->esc = (uint8_t)(ESC_HEX | h);
		} else {
			int d = ((c->esc & 0x0f) << 4) | h;

			/* lws decodes before it parses: a control
			 * character would end or break its line */
			if (d < 0x20 || d == 0x7f)
				return refuse(c, SB_REQ_MALFORMED, 400);
			c->esc = 0;
		}
		return SB_REQ_MORE;
	}
	if (b == '%') {
		c->esc = ESC_PERCENT;
	} else if (b == '&' || b == ';' || (b == '?' && !(c->flags & FL_QUERY))) {
		if (b == '?')
			c->flags |= FL_QUERY;
		if (++c->params > SB_REQ_PARAMS_MAX)
			return refuse(c, SB_REQ_TARGET, 414);
	}
	return SB_REQ_MORE;
}

static enum sb_req_verdict version_byte(struct sb_reqcheck *c, unsigned char b)
{
	static const char http[] = "HTTP/";
	unsigned p = c->pos++;

	if (p < 5)
		return b == (unsigned char)http[p] ? SB_REQ_MORE :
		       refuse(c, SB_REQ_MALFORMED, 400);
	if (p == 6)
		return b == '.' ? SB_REQ_MORE : refuse(c, SB_REQ_MALFORMED, 400);
	if (p == 8) {
		if (b != '\r')
			return refuse(c, SB_REQ_MALFORMED, 400);
		c->state = S_LF;
		return SB_REQ_MORE;
	}
	if (b < '0' || b > '9')
		return refuse(c, SB_REQ_MALFORMED, 400);
	if (p == 5) {
		c->match = (uint16_t)(b - '0');		/* the major digit */
		return SB_REQ_MORE;
	}
	/* p == 7: the minor digit */
	if (c->match != 1 || (b != '0' && b != '1'))
		return refuse(c, SB_REQ_VERSION, 505);
	if (b == '1')
		c->flags |= FL_HTTP11;
	return SB_REQ_MORE;
}

static enum sb_req_verdict line_byte(struct sb_reqcheck *c, unsigned char b)
{
	if (b == '\r') {
		c->state = S_END_LF;
		return SB_REQ_MORE;
	}
	/* whitespace here would be obs-fold (RFC 9112 5.2: refuse) */
	if (!is_tchar(b))
		return refuse(c, SB_REQ_MALFORMED, 400);
	if (++c->fields > SB_REQ_FIELDS_MAX)
		return refuse(c, SB_REQ_HEADERS, 431);
	c->state = S_NAME;
	c->pos = 0;
	c->match = (1u << F_COUNT) - 1;
	narrow(c, names, F_COUNT, lower(b));
	return SB_REQ_MORE;
}

static enum sb_req_verdict name_byte(struct sb_reqcheck *c, unsigned char b)
{
	if (b == ':') {
		c->state = S_VALUE;
		return name_end(c);
	}
	/* no whitespace before the colon (RFC 9112 5.1) */
	if (!is_tchar(b))
		return refuse(c, SB_REQ_MALFORMED, 400);
	narrow(c, names, F_COUNT, lower(b));
	return SB_REQ_MORE;
}

static enum sb_req_verdict value_char(struct sb_reqcheck *c, unsigned char b)
{
	if (b == '\r') {
		c->state = S_LF;
		return value_end(c);
	}
	if ((b < 0x20 && b != '\t') || b == 0x7f)
		return refuse(c, SB_REQ_MALFORMED, 400);
	if (b == ' ' || b == '\t') {
		if (c->pos)
			c->vflags |= V_TRAIL;
		return SB_REQ_MORE;
	}
	if (b == ',' && c->field == F_CONNECTION) {
		if (value_token(c) == 0)
			c->flags |= FL_CONN_UPGRADE;
		value_begin(c);
		return SB_REQ_MORE;
	}
	value_byte(c, b);
	return SB_REQ_MORE;
}

enum sb_req_verdict sb_reqcheck_feed(struct sb_reqcheck *c, const void *p,
				     size_t n, size_t *used)
{
	const unsigned char *s = p;
	enum sb_req_verdict v = SB_REQ_MORE;
	size_t i;

	for (i = 0; i < n && v == SB_REQ_MORE; i++) {
		unsigned char b = s[i];

		if (c->state == S_REFUSED)
			break;
		if (++c->head_len > SB_REQ_HEAD_MAX) {
			v = refuse(c, SB_REQ_HEADERS, 431);
			break;
		}
		switch (c->state) {
		case S_METHOD:
			v = method_byte(c, b);
			break;
		case S_TARGET:
			v = target_byte(c, b);
			break;
		case S_VERSION:
			v = version_byte(c, b);
			break;
		case S_LF:
			if (b != '\n')
				v = refuse(c, SB_REQ_MALFORMED, 400);
			else
				c->state = S_LINE;
			break;
		case S_LINE:
			v = line_byte(c, b);
			break;
		case S_NAME:
			v = name_byte(c, b);
			break;
		case S_VALUE:
			v = value_char(c, b);
			break;
		case S_END_LF:
			v = b == '\n' ? head_end(c) : refuse(c, SB_REQ_MALFORMED, 400);
			break;
		}
		if (v == SB_REQ_REFUSE)
			break;
	}
	if (c->state == S_REFUSED)
		v = SB_REQ_REFUSE;
	*used = i;
	return v;
}

/* The status line's text and the body's line, per refusal. */
static const char *status_text(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static const char *body_text(int reason, int status)
{
	switch (reason) {
	case SB_REQ_METHOD:
		return status == 405 ? "only GET and HEAD are served" :
		       "unknown method";
	case SB_REQ_VERSION:
		return "only HTTP/1.1 is served";
	case SB_REQ_H2:
		return "HTTP/2 is not served: use HTTP/1.1";
	case SB_REQ_TARGET:
		return "request target too long";
	case SB_REQ_HEADERS:
		return "request header fields too large";
	case SB_REQ_FRAMING:
		return "request bodies are not accepted";
	case SB_REQ_UPGRADE:
		return "only a WebSocket upgrade is accepted";
	case SB_REQ_WS_VERSION:
		return "Sec-WebSocket-Version must be 13";
	case SB_REQ_WS_KEY:
		return "bad Sec-WebSocket-Key";
	case SB_REQ_WS_PATH:
		return "no WebSocket at this path";
	case SB_REQ_ORIGIN:
		return "origin not allowed";
	case SB_REQ_DRAINING:
		return "the server is shutting down";
	case SB_REQ_MAX_CONN:
		return "too many connections";
	case SB_REQ_MAX_CONN_IP:
		return "too many connections from this address";
	default:
		return "malformed request";
	}
}

/* The answer to a refusal: extra header lines (each ended by CRLF), the
 * Connection header's value, no body for HEAD. */
static size_t answer(int reason, int status, bool head, const char *extra,
		     const char *conn, char *out, size_t cap)
{
	const char *body = body_text(reason, status);
	size_t blen = strlen(body) + 1;		/* and its newline */
	int n;

	n = snprintf(out, cap,
		     "HTTP/1.1 %u %s\r\n"
		     "Server: switchboard\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: %s\r\n"
		     "%s"
		     "\r\n"
		     "%s%s",
		     (unsigned)status, status_text((unsigned)status), blen, conn, extra,
		     head ? "" : body, head ? "" : "\n");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t sb_reqcheck_answer(const struct sb_reqcheck *c, char *out, size_t cap)
{
	const char *extra = "", *conn = "close";

	if (c->state != S_REFUSED)
		return 0;
	if (c->reason == SB_REQ_METHOD && c->status == 405)
		extra = "Allow: GET, HEAD\r\n";
	else if (c->reason == SB_REQ_WS_VERSION)
		extra = "Sec-WebSocket-Version: 13\r\n";
	if (c->status == 426) {
		/* RFC 9110 15.5.22, 7.8: name the protocol to upgrade to */
		extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
		conn = "Upgrade, close";
	}
	return answer(c->reason, c->status, c->flags & FL_HEAD, extra, conn, out, cap);
}

size_t sb_req_answer(enum sb_req_reason reason, int status, char *out, size_t cap)
{
	return answer(reason, status, false, "", "close", out, cap);
}
