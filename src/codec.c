#include "sb_codec.h"

#include "sb_jbuf.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_NAME(e, s) s,
const char *const sb_type_names[SB_TYPE_COUNT] = { SB_TYPES(SB_NAME) };
const char *const sb_err_names[SB_ERR_COUNT] = { SB_ERRORS(SB_NAME) };
const char *const sb_cause_names[SB_CAUSE_COUNT] = { SB_CAUSES(SB_NAME) };

struct sb_codec {
	struct json_tokener *tok;
	size_t max_field;
	struct sb_jbuf out;
};

struct sb_codec *sb_codec_new(size_t max_field)
{
	struct sb_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tok = json_tokener_new_ex(SB_JSON_MAX_DEPTH);
	if (!c->tok) {
		free(c);
		return NULL;
	}
	json_tokener_set_flags(c->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	c->max_field = max_field;
	sb_jbuf_init(&c->out, (size_t)UINT32_MAX);
	return c;
}

void sb_codec_free(struct sb_codec *c)
{
	if (!c)
		return;
	json_tokener_free(c->tok);
	sb_jbuf_release(&c->out);
	free(c);
}

static bool only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	return true;
}

enum sb_err sb_codec_parse(struct sb_codec *c, const char *buf, size_t len,
			   struct sb_request *req, char *why, size_t whylen)
{
	struct json_object *root, *t;
	enum json_tokener_error jerr;
	size_t end;

	memset(req, 0, sizeof(*req));
	req->type = SB_TYPE_NONE;
	if (len > (size_t)INT32_MAX) {
		snprintf(why, whylen, "a message must be one UTF-8 JSON object");
		return SB_ERR_BAD_JSON;
	}
	json_tokener_reset(c->tok);
	root = json_tokener_parse_ex(c->tok, buf, (int)len);
	jerr = json_tokener_get_error(c->tok);
	end = json_tokener_get_parse_end(c->tok);
	req->root = root;
	if (jerr != json_tokener_success || !root ||
	    !json_object_is_type(root, json_type_object) ||
	    !only_space(buf + end, buf + len)) {
		if (jerr == json_tokener_error_depth)
			snprintf(why, whylen, "JSON nested deeper than %d levels",
				 SB_JSON_MAX_DEPTH);
		else
			snprintf(why, whylen, "a message must be one UTF-8 JSON object");
		return SB_ERR_BAD_JSON;
	}
	if (!json_object_object_get_ex(root, "type", &t)) {
		snprintf(why, whylen, "\"type\" is required");
		return SB_ERR_BAD_MESSAGE;
	}
	if (!json_object_is_type(t, json_type_string)) {
		snprintf(why, whylen, "\"type\" must be a string");
		return SB_ERR_BAD_MESSAGE;
	}
	req->type_str = json_object_get_string(t);
	req->type_len = (size_t)json_object_get_string_len(t);
	for (int i = 0; i < SB_TYPE_COUNT; i++) {
		if (strlen(sb_type_names[i]) == req->type_len &&
		    !memcmp(sb_type_names[i], req->type_str, req->type_len)) {
			req->type = (enum sb_type)i;
			return SB_ERR_NONE;
		}
	}
	snprintf(why, whylen, "unknown type");
	return SB_ERR_UNKNOWN_TYPE;
}

void sb_codec_done(struct sb_codec *c, struct sb_request *req)
{
	(void)c;
	if (req->root)
		json_object_put(req->root);
	req->root = NULL;
	req->payload = NULL;
}

/* Checks one string member and fills f; returns false with a reason. */
static bool string_member(struct sb_codec *c, struct json_object *root,
			  const char *name, bool required, bool allow_empty,
			  struct sb_field *f, char *why, size_t whylen)
{
	struct json_object *v;
	const unsigned char *s;

	memset(f, 0, sizeof(*f));
	if (!json_object_object_get_ex(root, name, &v)) {
		if (required) {
			snprintf(why, whylen, "\"%s\" is required", name);
			return false;
		}
		return true;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(why, whylen, "\"%s\" must be a string", name);
		return false;
	}
	f->p = json_object_get_string(v);
	f->len = (size_t)json_object_get_string_len(v);
	f->present = true;
	if (!f->len && !allow_empty) {
		snprintf(why, whylen, "\"%s\" must not be empty", name);
		return false;
	}
	if (f->len > c->max_field) {
		snprintf(why, whylen, "\"%s\" is longer than %zu bytes", name,
			 c->max_field);
		return false;
	}
	s = (const unsigned char *)f->p;
	for (size_t i = 0; i < f->len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(why, whylen, "\"%s\" holds a control character", name);
			return false;
		}
	}
	return true;
}

enum sb_err sb_codec_check(struct sb_codec *c, struct sb_request *req,
			   char *why, size_t whylen)
{
	struct json_object *root = req->root, *payload;

	switch (req->type) {
	case SB_TYPE_JOIN:
		if (!string_member(c, root, "id", true, false, &req->id, why, whylen) ||
		    !string_member(c, root, "nick", false, true, &req->nick, why, whylen) ||
		    !string_member(c, root, "room", false, false, &req->room, why, whylen))
			return SB_ERR_BAD_MESSAGE;
		return SB_ERR_NONE;
	case SB_TYPE_OFFER:
	case SB_TYPE_ANSWER:
	case SB_TYPE_ICECANDIDATE:
	case SB_TYPE_MESSAGE:
		if (!json_object_object_get_ex(root, "payload", &payload) ||
		    !json_object_is_type(payload, json_type_object)) {
			snprintf(why, whylen, "\"payload\" must be an object");
			return SB_ERR_BAD_MESSAGE;
		}
		req->payload = payload;
		if (!string_member(c, root, "receiverId", req->type == SB_TYPE_ANSWER,
				   false, &req->receiver, why, whylen))
			return SB_ERR_BAD_MESSAGE;
		return SB_ERR_NONE;
	default:
		return SB_ERR_NONE;
	}
}

struct sb_msg *sb_codec_relay(struct sb_codec *c, struct sb_request *req,
			      const char *id, size_t id_len,
			      const char *nick, size_t nick_len)
{
	struct json_object *payload = req->payload;
	struct sb_jbuf *b = &c->out;
	const char *ps;
	size_t plen;

	json_object_object_del(payload, "id");
	json_object_object_del(payload, "nick");
	ps = json_object_to_json_string_length(payload,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &plen);
	if (!ps || plen < 2)
		return NULL;

	sb_jbuf_reset(b);
	sb_jbuf_adds(b, "{\"type\":\"");
	sb_jbuf_adds(b, sb_type_names[req->type]);
	sb_jbuf_adds(b, "\",\"payload\":");
	/* the payload without its closing brace, then the stamped identity */
	sb_jbuf_add(b, ps, plen - 1);
	sb_jbuf_adds(b, plen > 2 ? ",\"id\":" : "\"id\":");
	sb_jbuf_add_jstr(b, id, id_len);
	sb_jbuf_adds(b, ",\"nick\":");
	sb_jbuf_add_jstr(b, nick, nick_len);
	sb_jbuf_adds(b, "}}");
	if (sb_jbuf_failed(b))
		return NULL;
	return sb_msg_from(b->p, b->len);
}

struct sb_msg *sb_event_error(enum sb_err code, const char *message,
			      const char *ref, size_t ref_len)
{
	struct sb_jbuf b;
	struct sb_msg *m = NULL;

	sb_jbuf_init(&b, (size_t)UINT32_MAX);
	sb_jbuf_adds(&b, "{\"type\":\"error\",\"payload\":{\"code\":\"");
	sb_jbuf_adds(&b, sb_err_names[code]);
	sb_jbuf_adds(&b, "\",\"message\":");
	sb_jbuf_add_jstr(&b, message, strlen(message));
	if (ref) {
		sb_jbuf_adds(&b, ",\"ref\":");
		sb_jbuf_add_jstr(&b, ref, ref_len);
	}
	sb_jbuf_adds(&b, "}}");
	if (!sb_jbuf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_jbuf_release(&b);
	return m;
}

struct sb_msg *sb_event_peer(const char *type, const char *id, size_t id_len,
			     const char *nick, size_t nick_len)
{
	struct sb_jbuf b;
	struct sb_msg *m = NULL;

	sb_jbuf_init(&b, (size_t)UINT32_MAX);
	sb_jbuf_adds(&b, "{\"type\":\"");
	sb_jbuf_adds(&b, type);
	sb_jbuf_adds(&b, "\",\"payload\":{\"id\":");
	sb_jbuf_add_jstr(&b, id, id_len);
	sb_jbuf_adds(&b, ",\"nick\":");
	sb_jbuf_add_jstr(&b, nick, nick_len);
	sb_jbuf_adds(&b, "}}");
	if (!sb_jbuf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_jbuf_release(&b);
	return m;
}

struct sb_msg *sb_event_pong(void)
{
	static const char text[] = "{\"type\":\"pong\",\"payload\":{}}";

	return sb_msg_from(text, sizeof(text) - 1);
}
