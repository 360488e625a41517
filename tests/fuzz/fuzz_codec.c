/*
 * Fuzz target: the message codec (src/codec.c) on arbitrary bytes, as one
 * WebSocket text message from a client.
 *
 * Besides crashes it checks what the codec promises:
 * - a message it does not call bad_json is one JSON object that json-c
 *   also parses, and the known members it decoded hold what json-c reads;
 *   one that json-c parses as an object is not bad_json either, unless it
 *   is too deep or takes a liberty that json-c allows (json_c_liberty);
 * - trusting the caller's UTF-8 check (sb_codec_set_utf8_checked) changes
 *   no verdict on valid UTF-8, and invalid UTF-8 is always bad_json;
 * - sb_codec_check accepts only the members docs/protocol.md allows;
 * - a relayed message parses again, as the same type, and its payload
 *   holds the sender's members (less "id" and "nick") and the stamp;
 * - the error and peer events built from the decoded strings are JSON that
 *   reads back as those strings.
 */
#include "fuzz.h"

#include "sb_codec.h"
#include "sb_utf8.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>

/* Small, so that short inputs reach the length check. */
#define MAX_FIELD 16

static struct sb_codec *codec, *trusting, *reparser;
static char *stamp;
static size_t stamp_len;
static const char stamp_id[] = "peer-1";
static const char stamp_nick[] = "n\"\\\x01\xc3\xa9";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	codec = sb_codec_new(MAX_FIELD);
	trusting = sb_codec_new(MAX_FIELD);
	reparser = sb_codec_new(MAX_FIELD);
	stamp = sb_codec_stamp(stamp_id, strlen(stamp_id), stamp_nick,
			       strlen(stamp_nick), &stamp_len);
	if (!codec || !trusting || !reparser || !stamp)
		abort();
	sb_codec_set_utf8_checked(trusting, true);
	return 0;
}

/* json-c's reading of buf: an object, or NULL.  Only whitespace may
 * follow the value. */
static json_object *jparse(const char *buf, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(SB_JSON_MAX_DEPTH + 8);
	json_object *o;
	size_t end;

	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	for (; o && end < len; end++) {
		if (!strchr(" \t\r\n", buf[end]) || !buf[end]) {
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

/*
 * Whether buf takes one of the liberties that json-c allows even in strict
 * mode and the codec refuses (sb_codec.h): NaN and Infinity, single-quoted
 * strings, a decimal point without a digit on either side ("1.", "-.5"), a
 * needless leading zero ("00", "-01.5"), control characters inside strings,
 * and unpaired surrogate escapes (here: any surrogate escape).  Checked on
 * the raw text, tracking only where strings are.
 */
static bool json_c_liberty(const char *buf, size_t len)
{
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c < 0x20) {
				return true;
			} else if (c == '\\' && i + 1 < len) {
				if (buf[i + 1] == 'u' && i + 3 < len &&
				    (buf[i + 2] == 'd' || buf[i + 2] == 'D') &&
				    buf[i + 3] && strchr("89abcdefABCDEF", buf[i + 3]))
					return true;
				i++;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (c == '\'' || c == 'N' || c == 'I') {
			return true;
		} else if (c == '.' && (!i || buf[i - 1] < '0' || buf[i - 1] > '9' ||
					i + 1 == len || buf[i + 1] < '0' ||
					buf[i + 1] > '9')) {
			return true;
		} else if (c == '0' && i + 1 < len && buf[i + 1] >= '0' &&
			   buf[i + 1] <= '9') {
			/* at the start of a number, not in an exponent
			 * ("1e05" is fine) */
			size_t k = i;

			if (k && buf[k - 1] == '-')
				k--;
			if (!k || !buf[k - 1] ||
			    !strchr("0123456789.eE+-", buf[k - 1]))
				return true;
		}
	}
	return false;
}

static bool jstr_is(json_object *o, const char *p, size_t len)
{
	return json_object_is_type(o, json_type_string) &&
	       (size_t)json_object_get_string_len(o) == len &&
	       !memcmp(json_object_get_string(o), p, len);
}

/* One member as the codec decoded it against json-c's reading. */
static void same_member(json_object *obj, const char *name,
			const struct sb_field *f)
{
	json_object *v = NULL;
	bool there = json_object_object_get_ex(obj, name, &v);

	SB_FUZZ_CHECK(there == f->present, "\"%s\": json-c %d, codec %d", name,
		      there, f->present);
	if (f->present && f->p)
		SB_FUZZ_CHECK(jstr_is(v, f->p, f->len),
			      "\"%s\" decoded differently", name);
	else if (f->present)
		SB_FUZZ_CHECK(!json_object_is_type(v, json_type_string),
			      "\"%s\": a string the codec missed", name);
}

/* What sb_codec_check promises for one string member it accepted. */
static void checked_member(const struct sb_field *f, bool required,
			   bool allow_empty)
{
	if (!f->present) {
		SB_FUZZ_CHECK(!required, "a required member passed as absent");
		return;
	}
	SB_FUZZ_CHECK(f->p, "a member that is not a string passed");
	SB_FUZZ_CHECK(allow_empty || f->len, "an empty member passed");
	SB_FUZZ_CHECK(f->len <= MAX_FIELD, "a member of %zu bytes passed", f->len);
	for (size_t i = 0; i < f->len; i++)
		SB_FUZZ_CHECK((unsigned char)f->p[i] >= 0x20 && f->p[i] != 0x7f,
			      "a control character passed");
}

/* An event built from decoded text reads back as that text. */
static void check_events(const struct sb_request *req)
{
	struct sb_msg *m;
	json_object *o, *payload, *v;

	m = sb_event_error(SB_ERR_UNKNOWN_TYPE, "unknown type", req->type_str,
			   req->type_len);
	SB_FUZZ_CHECK(m, "sb_event_error failed");
	o = jparse(m->data, m->len);
	SB_FUZZ_CHECK(o, "an error event is not JSON: %.*s", (int)m->len, m->data);
	SB_FUZZ_CHECK(json_object_object_get_ex(o, "payload", &payload) &&
		      json_object_object_get_ex(payload, "ref", &v) &&
		      jstr_is(v, req->type_str, req->type_len),
		      "the error's ref is not the type");
	json_object_put(o);
	sb_msg_unref(m);

	if (!req->id.p || !req->nick.p)
		return;
	m = sb_event_peer("peer-joined", req->id.p, req->id.len, req->nick.p,
			  req->nick.len);
	SB_FUZZ_CHECK(m, "sb_event_peer failed");
	o = jparse(m->data, m->len);
	SB_FUZZ_CHECK(o, "a peer event is not JSON: %.*s", (int)m->len, m->data);
	SB_FUZZ_CHECK(json_object_object_get_ex(o, "payload", &payload) &&
		      json_object_object_get_ex(payload, "id", &v) &&
		      jstr_is(v, req->id.p, req->id.len) &&
		      json_object_object_get_ex(payload, "nick", &v) &&
		      jstr_is(v, req->nick.p, req->nick.len),
		      "the peer event's id or nick changed");
	json_object_put(o);
	sb_msg_unref(m);
}

/* The relay of req (checked) against the original payload. */
static void check_relay(struct sb_request *req, json_object *orig)
{
	struct sb_request req2;
	struct sb_msg *m;
	json_object *o, *p1, *p2, *v;
	char why[128];
	enum sb_err e;
	int expect;

	m = sb_codec_relay(codec, req, stamp, stamp_len);
	SB_FUZZ_CHECK(m, "sb_codec_relay failed");
	e = sb_codec_parse(reparser, m->data, m->len, &req2, why, sizeof(why));
	SB_FUZZ_CHECK(e == SB_ERR_NONE && req2.type == req->type,
		      "the relay does not parse back (%d: %s): %.*s", e, why,
		      (int)m->len, m->data);
	sb_codec_done(reparser, &req2);

	o = jparse(m->data, m->len);
	SB_FUZZ_CHECK(o, "the relay is not JSON to json-c");
	SB_FUZZ_CHECK(json_object_object_get_ex(orig, "payload", &p1) &&
		      json_object_object_get_ex(o, "payload", &p2) &&
		      json_object_is_type(p2, json_type_object),
		      "the relay has no payload object");
	SB_FUZZ_CHECK(json_object_object_get_ex(p2, "id", &v) &&
		      jstr_is(v, stamp_id, strlen(stamp_id)) &&
		      json_object_object_get_ex(p2, "nick", &v) &&
		      jstr_is(v, stamp_nick, strlen(stamp_nick)),
		      "the relay's stamp is not the sender's");
	expect = json_object_object_length(p1) + 2;
	json_object_object_foreach(p1, key, val) {
		if (!strcmp(key, "id") || !strcmp(key, "nick")) {
			expect--;
			continue;
		}
		SB_FUZZ_CHECK(json_object_object_get_ex(p2, key, &v) &&
			      json_object_equal(val, v),
			      "payload member \"%s\" changed in the relay", key);
	}
	SB_FUZZ_CHECK(json_object_object_length(p2) == expect,
		      "the relay's payload has %d members, not %d",
		      json_object_object_length(p2), expect);
	json_object_put(o);
	sb_msg_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct sb_request req, req2;
	char why[128], why2[128];
	struct sb_utf8 u;
	json_object *obj;
	enum sb_err e, e2;
	bool utf8;

	sb_utf8_init(&u);
	utf8 = sb_utf8_feed(&u, data, size) && sb_utf8_complete(&u);

	why[0] = '\0';
	e = sb_codec_parse(codec, buf, size, &req, why, sizeof(why));
	SB_FUZZ_CHECK(e == SB_ERR_NONE || (why[0] && strlen(why) < sizeof(why)),
		      "no reason given for error %d", e);
	SB_FUZZ_CHECK(utf8 || e == SB_ERR_BAD_JSON, "invalid UTF-8 accepted");

	if (utf8) {
		e2 = sb_codec_parse(trusting, buf, size, &req2, why2, sizeof(why2));
		SB_FUZZ_CHECK(e == e2 && req.type == req2.type,
			      "trusting the UTF-8 check changed the verdict: %d/%d",
			      e, e2);
		sb_codec_done(trusting, &req2);
	}

	if (e == SB_ERR_BAD_JSON) {
		obj = utf8 ? jparse(buf, size) : NULL;
		SB_FUZZ_CHECK(!obj || strstr(why, "deeper") ||
			      json_c_liberty(buf, size),
			      "json-c reads an object where the codec says: %s", why);
		json_object_put(obj);
		sb_codec_done(codec, &req);
		return 0;
	}
	obj = jparse(buf, size);
	SB_FUZZ_CHECK(obj, "the codec took what json-c calls no JSON object");
	if (req.type_str) {
		struct sb_field t = { req.type_str, req.type_len, true };

		same_member(obj, "type", &t);
	} else {
		json_object *v;

		SB_FUZZ_CHECK(!json_object_object_get_ex(obj, "type", &v) ||
			      !json_object_is_type(v, json_type_string),
			      "a string \"type\" the codec missed");
	}
	same_member(obj, "id", &req.id);
	same_member(obj, "nick", &req.nick);
	same_member(obj, "room", &req.room);
	same_member(obj, "receiverId", &req.receiver);

	if (req.type_str)
		check_events(&req);
	if (e == SB_ERR_NONE &&
	    sb_codec_check(codec, &req, why, sizeof(why)) == SB_ERR_NONE) {
		switch (req.type) {
		case SB_TYPE_JOIN:
			checked_member(&req.id, true, false);
			checked_member(&req.nick, false, true);
			checked_member(&req.room, false, false);
			break;
		case SB_TYPE_OFFER:
		case SB_TYPE_ANSWER:
		case SB_TYPE_ICECANDIDATE:
		case SB_TYPE_MESSAGE:
			checked_member(&req.receiver, req.type == SB_TYPE_ANSWER,
				       false);
			check_relay(&req, obj);
			break;
		default:
			break;
		}
	}
	json_object_put(obj);
	sb_codec_done(codec, &req);
	return 0;
}
