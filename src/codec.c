#include "sb_codec.h"

#include "sb_buf.h"
#include "sb_utf8.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SB_NAME(e, s) s,
const char *const sb_type_names[SB_TYPE_COUNT] = { SB_TYPES(SB_NAME) };
const char *const sb_err_names[SB_ERR_COUNT] = { SB_ERRORS(SB_NAME) };
const char *const sb_cause_names[SB_CAUSE_COUNT] = { SB_CAUSES(SB_NAME) };

/* The top-level members the protocol knows. */
enum field { F_TYPE, F_ID, F_NICK, F_ROOM, F_RECEIVER, F_PAYLOAD, F_TOKEN,
	     F_COUNT };
static const char *const field_names[F_COUNT] = {
	"type", "id", "nick", "room", "receiverId", "payload", "token",
};

/* What a member held. */
enum kind { K_ABSENT = 0, K_STRING, K_OBJECT, K_OTHER };

/* A byte range of the message. */
struct span {
	uint32_t start, end;
};

struct sb_codec {
	size_t max_field;
	struct sb_buf strings;		/* decoded string values */
	struct sb_buf key;		/* the key being compared */
	struct span *members;		/* the payload's members, in order */
	bool *skip;			/* [i]: member i is "id" or "nick" */
	size_t nmembers, members_cap;
	struct span decoded[F_COUNT];	/* offsets into strings */
	const char *src;		/* the message being handled */
	bool utf8_checked;		/* the caller validated UTF-8 */
};

/* One parse in progress. */
struct scan {
	struct sb_codec *c;
	const unsigned char *base, *p, *end;
	bool too_deep;
	unsigned char kinds[F_COUNT];
};

struct sb_codec *sb_codec_new(size_t max_field)
{
	struct sb_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max_field = max_field;
	sb_buf_init(&c->strings, (size_t)UINT32_MAX);
	sb_buf_init(&c->key, (size_t)UINT32_MAX);
	return c;
}

void sb_codec_free(struct sb_codec *c)
{
	if (!c)
		return;
	sb_buf_release(&c->strings);
	sb_buf_release(&c->key);
	free(c->members);
	free(c->skip);
	free(c);
}

static void skip_space(struct scan *s)
{
	while (s->p < s->end &&
	       (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex4(const unsigned char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static void put_utf8(struct sb_buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sb_buf_add(b, u, n);
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of the eight bytes in v is '"', '\\' or below 0x20. */
static inline bool special8(uint64_t v)
{
	uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');

	return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v)) &
	       HIGHS;
}

/* A string at s->p (its opening quote).  Appends its decoded text to out
 * when out is not NULL.  False when it is not a valid JSON string. */
static bool string(struct scan *s, struct sb_buf *out)
{
	const unsigned char *p = s->p + 1, *run = p;

	for (;;) {
		/* eight plain bytes at a time: none a quote, a backslash or a
		 * control character */
		while (s->end - p >= 8) {
			uint64_t v;

			memcpy(&v, p, 8);
			if (special8(v))
				break;
			p += 8;
		}
		if (p >= s->end)
			return false;
		if (*p == '"')
			break;
		if (*p < 0x20)
			return false;		/* raw control character */
		if (*p != '\\') {
			p++;
			continue;
		}
		if (out)
			sb_buf_add(out, run, (size_t)(p - run));
		if (p + 1 >= s->end)
			return false;
		switch (p[1]) {
		case '"': case '\\': case '/':
			if (out)
				sb_buf_add(out, p + 1, 1);
			p += 2;
			break;
		case 'b': case 'f': case 'n': case 'r': case 't': {
			static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";

			if (out)
				sb_buf_add(out, &to[strchr(from, p[1]) - from], 1);
			p += 2;
			break;
		}
		case 'u': {
			int cp, lo;

			if (s->end - p < 6 || (cp = hex4(p + 2)) < 0)
				return false;
			p += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return false;		/* unpaired low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    (lo = hex4(p + 2)) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return false;	/* unpaired high surrogate */
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			if (out)
				put_utf8(out, (unsigned)cp);
			break;
		}
		default:
			return false;
		}
		run = p;
	}
	if (out)
		sb_buf_add(out, run, (size_t)(p - run));
	s->p = p + 1;
	return true;
}

static bool digits(struct scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool number(struct scan *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!(s->p < s->end && *s->p >= '1' && *s->p <= '9') || !digits(s))
		return false;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digits(s))
			return false;
	}
	return true;
}

static bool literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
		return false;
	s->p += n;
	return true;
}

static bool value(struct scan *s, int depth);

/* After a member or an element: 1 at a comma (consumed, with the space
 * after it), 0 at the closing bracket (consumed), -1 at anything else. */
static int next_item(struct scan *s, char close)
{
	skip_space(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		skip_space(s);
		return 1;
	}
	if (s->p < s->end && *s->p == (unsigned char)close) {
		s->p++;
		return 0;
	}
	return -1;
}

/* At an object's or array's opening bracket, nested at depth: -1 when that
 * is too deep, 0 when the container is empty (and consumed), 1 when a first
 * member or element follows (the bracket and the space after it consumed). */
static int open_container(struct scan *s, int depth, char close)
{
	if (depth > SB_JSON_MAX_DEPTH) {
		s->too_deep = true;
		return -1;
	}
	s->p++;
	skip_space(s);
	if (s->p < s->end && *s->p == (unsigned char)close) {
		s->p++;
		return 0;
	}
	return 1;
}

/* An object's or array's members.  When members is true (the top-level
 * "payload" object) each member's span is recorded and "id" and "nick" are
 * marked to be skipped. */
static bool object(struct scan *s, int depth, bool members)
{
	struct sb_codec *c = s->c;

	switch (open_container(s, depth, '}')) {
	case 0: return true;
	case -1: return false;
	}
	for (;;) {
		const unsigned char *key_start = s->p;

		if (s->p >= s->end || *s->p != '"')
			return false;
		if (members) {
			sb_buf_reset(&c->key);
			if (!string(s, &c->key) || sb_buf_failed(&c->key))
				return false;
		} else if (!string(s, NULL)) {
			return false;
		}
		skip_space(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		skip_space(s);
		if (!value(s, depth))
			return false;
		if (members) {
			if (c->nmembers == c->members_cap) {
				size_t ncap = c->members_cap ? c->members_cap * 2 : 16;
				struct span *m = realloc(c->members, ncap * sizeof(*m));
				bool *k = m ? realloc(c->skip, ncap * sizeof(*k)) : NULL;

				if (m)
					c->members = m;
				if (!k)
					return false;
				c->skip = k;
				c->members_cap = ncap;
			}
			c->members[c->nmembers].start = (uint32_t)(key_start - s->base);
			c->members[c->nmembers].end = (uint32_t)(s->p - s->base);
			c->skip[c->nmembers] =
				(c->key.len == 2 && !memcmp(c->key.p, "id", 2)) ||
				(c->key.len == 4 && !memcmp(c->key.p, "nick", 4));
			c->nmembers++;
		}
		switch (next_item(s, '}')) {
		case 1: continue;
		case 0: return true;
		default: return false;
		}
	}
}

static bool array(struct scan *s, int depth)
{
	switch (open_container(s, depth, ']')) {
	case 0: return true;
	case -1: return false;
	}
	for (;;) {
		if (!value(s, depth))
			return false;
		switch (next_item(s, ']')) {
		case 1: continue;
		case 0: return true;
		default: return false;
		}
	}
}

/* Any value, inside a container at depth. */
static bool value(struct scan *s, int depth)
{
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{': return object(s, depth + 1, false);
	case '[': return array(s, depth + 1);
	case '"': return string(s, NULL);
	case 't': return literal(s, "true", 4);
	case 'f': return literal(s, "false", 5);
	case 'n': return literal(s, "null", 4);
	default: return number(s);
	}
}

/* The top-level object: decodes the known members (the last of duplicates
 * wins) and walks the rest. */
static bool top(struct scan *s)
{
	struct sb_codec *c = s->c;

	if (s->p >= s->end || *s->p != '{')
		return false;
	switch (open_container(s, 1, '}')) {
	case 0: return true;
	case -1: return false;
	}
	for (;;) {
		int f = -1;

		if (s->p >= s->end || *s->p != '"')
			return false;
		sb_buf_reset(&c->key);
		if (!string(s, &c->key) || sb_buf_failed(&c->key))
			return false;
		for (int i = 0; i < F_COUNT; i++) {
			if (strlen(field_names[i]) == c->key.len &&
			    !memcmp(field_names[i], c->key.p, c->key.len)) {
				f = i;
				break;
			}
		}
		skip_space(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		skip_space(s);
		if (f < 0) {
			if (!value(s, 1))
				return false;
		} else if (s->p < s->end && *s->p == '"' && f != F_PAYLOAD) {
			c->decoded[f].start = (uint32_t)c->strings.len;
			if (!string(s, &c->strings) || sb_buf_failed(&c->strings))
				return false;
			c->decoded[f].end = (uint32_t)c->strings.len;
			s->kinds[f] = K_STRING;
		} else if (f == F_PAYLOAD && s->p < s->end && *s->p == '{') {
			c->nmembers = 0;
			if (!object(s, 2, true))
				return false;
			s->kinds[f] = K_OBJECT;
		} else {
			if (!value(s, 1))
				return false;
			s->kinds[f] = K_OTHER;
		}
		switch (next_item(s, '}')) {
		case 1: continue;
		case 0: return true;
		default: return false;
		}
	}
}

static void set_field(struct sb_codec *c, struct scan *s, enum field f,
		      struct sb_field *out)
{
	out->present = s->kinds[f] != K_ABSENT;
	if (s->kinds[f] == K_STRING) {
		out->p = c->strings.p ? c->strings.p + c->decoded[f].start : "";
		out->len = c->decoded[f].end - c->decoded[f].start;
	}
}

enum sb_err sb_codec_parse(struct sb_codec *c, const char *buf, size_t len,
			   struct sb_request *req, char *why, size_t whylen)
{
	struct scan s;
	struct sb_utf8 u;

	memset(req, 0, sizeof(*req));
	req->type = SB_TYPE_NONE;
	if (!buf)
		buf = "";	/* an empty message may come without a buffer */
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.base = s.p = (const unsigned char *)buf;
	s.end = s.base + len;
	sb_buf_reset(&c->strings);
	c->nmembers = 0;
	c->src = buf;

	sb_utf8_init(&u);
	if (len > UINT32_MAX ||
	    (!c->utf8_checked &&
	     (!sb_utf8_feed(&u, buf, len) || !sb_utf8_complete(&u))))
		goto bad_json;
	skip_space(&s);
	if (!top(&s))
		goto bad_json;
	skip_space(&s);
	if (s.p != s.end)
		goto bad_json;

	memcpy(req->kinds, s.kinds, F_COUNT);
	req->payload_object = s.kinds[F_PAYLOAD] == K_OBJECT;
	set_field(c, &s, F_ID, &req->id);
	set_field(c, &s, F_NICK, &req->nick);
	set_field(c, &s, F_ROOM, &req->room);
	set_field(c, &s, F_RECEIVER, &req->receiver);
	set_field(c, &s, F_TOKEN, &req->token);
	if (s.kinds[F_TYPE] == K_ABSENT) {
		snprintf(why, whylen, "\"type\" is required");
		return SB_ERR_BAD_MESSAGE;
	}
	if (s.kinds[F_TYPE] != K_STRING) {
		snprintf(why, whylen, "\"type\" must be a string");
		return SB_ERR_BAD_MESSAGE;
	}
	req->type_str = c->strings.p ? c->strings.p + c->decoded[F_TYPE].start : "";
	req->type_len = c->decoded[F_TYPE].end - c->decoded[F_TYPE].start;
	for (int i = 0; i < SB_TYPE_COUNT; i++) {
		if (strlen(sb_type_names[i]) == req->type_len &&
		    !memcmp(sb_type_names[i], req->type_str, req->type_len)) {
			req->type = (enum sb_type)i;
			return SB_ERR_NONE;
		}
	}
	snprintf(why, whylen, "unknown type");
	return SB_ERR_UNKNOWN_TYPE;

bad_json:
	if (s.too_deep)
		snprintf(why, whylen, "JSON nested deeper than %d levels",
			 SB_JSON_MAX_DEPTH);
	else
		snprintf(why, whylen, "a message must be one UTF-8 JSON object");
	return SB_ERR_BAD_JSON;
}

void sb_codec_done(struct sb_codec *c, struct sb_request *req)
{
	c->src = NULL;
	req->payload_object = false;
	memset(req->kinds, 0, sizeof(req->kinds));
}

/* Checks one string member: f is what the parse found. */
static bool string_member(struct sb_codec *c, const struct sb_request *req,
			  enum field fi, const struct sb_field *f, bool required,
			  bool allow_empty, char *why, size_t whylen)
{
	const char *name = field_names[fi];
	const unsigned char *p = (const unsigned char *)f->p;

	if (req->kinds[fi] == K_ABSENT) {
		if (required) {
			snprintf(why, whylen, "\"%s\" is required", name);
			return false;
		}
		return true;
	}
	if (req->kinds[fi] != K_STRING) {
		snprintf(why, whylen, "\"%s\" must be a string", name);
		return false;
	}
	if (!f->len && !allow_empty) {
		snprintf(why, whylen, "\"%s\" must not be empty", name);
		return false;
	}
	if (f->len > c->max_field) {
		snprintf(why, whylen, "\"%s\" is longer than %zu bytes", name,
			 c->max_field);
		return false;
	}
	for (size_t i = 0; i < f->len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(why, whylen, "\"%s\" holds a control character", name);
			return false;
		}
	}
	return true;
}

enum sb_err sb_codec_check(struct sb_codec *c, struct sb_request *req,
			   char *why, size_t whylen)
{
	switch (req->type) {
	case SB_TYPE_JOIN:
		if (!string_member(c, req, F_ID, &req->id, true, false, why, whylen) ||
		    !string_member(c, req, F_NICK, &req->nick, false, true, why, whylen) ||
		    !string_member(c, req, F_ROOM, &req->room, false, false, why, whylen))
			return SB_ERR_BAD_MESSAGE;
		/* its length and content are the token rules' business
		 * (unauthorized), its type is the message's (bad_message) */
		if (req->kinds[F_TOKEN] != K_ABSENT &&
		    req->kinds[F_TOKEN] != K_STRING) {
			snprintf(why, whylen, "\"token\" must be a string");
			return SB_ERR_BAD_MESSAGE;
		}
		return SB_ERR_NONE;
	case SB_TYPE_OFFER:
	case SB_TYPE_ANSWER:
	case SB_TYPE_ICECANDIDATE:
	case SB_TYPE_MESSAGE:
		if (!req->payload_object) {
			snprintf(why, whylen, "\"payload\" must be an object");
			return SB_ERR_BAD_MESSAGE;
		}
		if (!string_member(c, req, F_RECEIVER, &req->receiver,
				   req->type == SB_TYPE_ANSWER, false, why, whylen))
			return SB_ERR_BAD_MESSAGE;
		return SB_ERR_NONE;
	default:
		return SB_ERR_NONE;
	}
}

bool sb_codec_valid_nick(const struct sb_codec *c, const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;

	if (len > c->max_field)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return false;
	}
	return true;
}

void sb_codec_set_utf8_checked(struct sb_codec *c, bool checked)
{
	c->utf8_checked = checked;
}

char *sb_codec_stamp(const char *id, size_t id_len, const char *nick,
		     size_t nick_len, size_t *len)
{
	struct sb_buf b;

	sb_buf_init(&b, (size_t)UINT32_MAX);
	sb_buf_adds(&b, "\"id\":");
	sb_buf_add_jstr(&b, id, id_len);
	sb_buf_adds(&b, ",\"nick\":");
	sb_buf_add_jstr(&b, nick, nick_len);
	sb_buf_add(&b, "", 1);
	if (sb_buf_failed(&b)) {
		sb_buf_release(&b);
		return NULL;
	}
	*len = b.len - 1;
	return b.p;
}

struct sb_msg *sb_codec_relay(struct sb_codec *c, struct sb_request *req,
			      const char *stamp, size_t stamp_len)
{
	static const char head1[] = "{\"type\":\"", head2[] = "\",\"payload\":{";
	const char *type = sb_type_names[req->type];
	size_t type_len = strlen(type), total;
	struct sb_msg *m;
	char *p;

	if (!req->payload_object || !c->src)
		return NULL;
	/* measure, then write once into the message itself */
	total = sizeof(head1) - 1 + type_len + sizeof(head2) - 1 + stamp_len + 2;
	for (size_t i = 0; i < c->nmembers; i++) {
		if (c->skip[i])
			continue;
		total += c->members[i].end - c->members[i].start + 1;	/* and a comma */
	}
	m = sb_msg_new(total);
	if (!m)
		return NULL;
	p = m->data;
	memcpy(p, head1, sizeof(head1) - 1);
	p += sizeof(head1) - 1;
	memcpy(p, type, type_len);
	p += type_len;
	memcpy(p, head2, sizeof(head2) - 1);
	p += sizeof(head2) - 1;
	for (size_t i = 0; i < c->nmembers; i++) {
		size_t n = c->members[i].end - c->members[i].start;

		if (c->skip[i])
			continue;
		memcpy(p, c->src + c->members[i].start, n);
		p += n;
		*p++ = ',';
	}
	memcpy(p, stamp, stamp_len);
	p += stamp_len;
	*p++ = '}';
	*p++ = '}';
	return m;
}

struct sb_msg *sb_event_error(enum sb_err code, const char *message,
			      const char *ref, size_t ref_len)
{
	struct sb_buf b;
	struct sb_msg *m = NULL;

	sb_buf_init(&b, (size_t)UINT32_MAX);
	sb_buf_adds(&b, "{\"type\":\"error\",\"payload\":{\"code\":\"");
	sb_buf_adds(&b, sb_err_names[code]);
	sb_buf_adds(&b, "\",\"message\":");
	sb_buf_add_jstr(&b, message, strlen(message));
	if (ref) {
		sb_buf_adds(&b, ",\"ref\":");
		sb_buf_add_jstr(&b, ref, ref_len);
	}
	sb_buf_adds(&b, "}}");
	if (!sb_buf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_buf_release(&b);
	return m;
}

struct sb_msg *sb_event_peer(const char *type, const char *id, size_t id_len,
			     const char *nick, size_t nick_len)
{
	struct sb_buf b;
	struct sb_msg *m = NULL;

	sb_buf_init(&b, (size_t)UINT32_MAX);
	sb_buf_adds(&b, "{\"type\":\"");
	sb_buf_adds(&b, type);
	sb_buf_adds(&b, "\",\"payload\":{\"id\":");
	sb_buf_add_jstr(&b, id, id_len);
	sb_buf_adds(&b, ",\"nick\":");
	sb_buf_add_jstr(&b, nick, nick_len);
	sb_buf_adds(&b, "}}");
	if (!sb_buf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_buf_release(&b);
	return m;
}

struct sb_msg *sb_event_pong(void)
{
	static const char text[] = "{\"type\":\"pong\",\"payload\":{}}";

	return sb_msg_from(text, sizeof(text) - 1);
}
