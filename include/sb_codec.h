/*
 * The message codec: parses client messages, checks their members, and
 * builds the events the server sends.
 *
 * Parsing is a strict single-pass RFC 8259 scanner written for this job: it
 * validates the whole message, decodes only the top-level members the
 * protocol names, and remembers where the payload's members lie, so that a
 * relayed payload is copied byte for byte (less its "id" and "nick") instead
 * of being rebuilt.  Unlike json-c 0.16 it refuses NaN, Infinity, raw control
 * characters in strings and unpaired surrogate escapes, which browsers'
 * JSON.parse would choke on when relayed.
 *
 * A struct sb_codec holds a parser and scratch space: one per worker, used
 * by that worker's thread only.  The event builders (sb_event_*) keep no
 * state and may be called from any thread.  Nothing parsed ever leaves the
 * thread that parsed it: what crosses threads is an sb_msg of plain bytes.
 */
#ifndef SB_CODEC_H
#define SB_CODEC_H

#include "sb_msg.h"
#include "sb_proto.h"

#include <stdbool.h>
#include <stddef.h>

/* Nesting deeper than this (the outer object is level 1) is bad_json. */
#define SB_JSON_MAX_DEPTH 32

struct sb_codec;

struct sb_field {
	const char *p;	/* decoded UTF-8, not NUL-terminated */
	size_t len;
	bool present;
};

struct sb_request {
	enum sb_type type;	/* SB_TYPE_NONE unless a known type */
	const char *type_str;	/* the "type" string when it is one, for ref */
	size_t type_len;
	struct sb_field id, nick, room, receiver;
	struct sb_field token;	/* join's room token: a string of any length
				 * (the token rules bound it) */
	/* codec-private: */
	unsigned char kinds[8];	/* what each known member held */
	bool payload_object;	/* "payload" is an object */
};

/* A codec for messages whose string members are at most max_field bytes;
 * NULL when out of memory. */
struct sb_codec *sb_codec_new(size_t max_field);
void sb_codec_free(struct sb_codec *c);

/*
 * Parses one complete message.  Returns SB_ERR_NONE, or the first of
 * SB_ERR_BAD_JSON (not JSON, trailing garbage, too deep, not an object),
 * SB_ERR_BAD_MESSAGE ("type" missing or not a string), SB_ERR_UNKNOWN_TYPE,
 * with a reason in why.  req->type_str is set whenever "type" is a string,
 * even for an unknown type.  Call sb_codec_done(c, req) afterwards, whatever
 * it returned.
 */
enum sb_err sb_codec_parse(struct sb_codec *c, const char *buf, size_t len,
			   struct sb_request *req, char *why, size_t whylen);

/* Checks the members that req's type needs (docs/protocol.md, Validation):
 * SB_ERR_NONE, or SB_ERR_BAD_MESSAGE with a reason in why. */
enum sb_err sb_codec_check(struct sb_codec *c, struct sb_request *req,
			   char *why, size_t whylen);

/* Whether p[0..len) (valid UTF-8) passes the rules of a nick: at most
 * max_field bytes, no control character.  Any thread. */
bool sb_codec_valid_nick(const struct sb_codec *c, const char *p, size_t len);

/* The identity a relay is stamped with, `"id":"...","nick":"..."` (JSON,
 * escaped), in a new NUL-terminated string whose length goes to *len; NULL
 * when out of memory.  A peer's stamp never changes while it is joined, so
 * it is made once per join.  Any thread. */
char *sb_codec_stamp(const char *id, size_t id_len, const char *nick,
		     size_t nick_len, size_t *len);

/* The event relaying req (offer, answer, icecandidate or message, checked)
 * with the sender's stamp (sb_codec_stamp); NULL when out of memory.  The
 * payload's members are copied from the message itself, which must still
 * be the one given to sb_codec_parse (call before sb_codec_done). */
struct sb_msg *sb_codec_relay(struct sb_codec *c, struct sb_request *req,
			      const char *stamp, size_t stamp_len);

/* Tells the codec whether the caller has already checked that every
 * message it parses is valid UTF-8 (the worker has, frame by frame), so
 * that parsing need not check again.  Default: false. */
void sb_codec_set_utf8_checked(struct sb_codec *c, bool checked);

/* Releases what sb_codec_parse kept for req (pointers into the codec's
 * scratch space: valid until the codec's next parse). */
void sb_codec_done(struct sb_codec *c, struct sb_request *req);

/* {"type":"error","payload":{"code","message","ref"?}}; ref may be NULL. */
struct sb_msg *sb_event_error(enum sb_err code, const char *message,
			      const char *ref, size_t ref_len);

/* {"type":type,"payload":{"id","nick"}}: the join and leave events. */
struct sb_msg *sb_event_peer(const char *type, const char *id, size_t id_len,
			     const char *nick, size_t nick_len);

/* {"type":"pong","payload":{}} */
struct sb_msg *sb_event_pong(void);

#endif
