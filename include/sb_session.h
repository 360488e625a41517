/*
 * The session: what one WebSocket connection means to the protocol, from
 * its upgrade to its close.  It reassembles a client's message from the
 * pieces the transport receives, checks its size and UTF-8, applies the
 * rate limit and the order of checks of docs/protocol.md, and carries out
 * join, relay, leave and ping through the registry and the connection's
 * outbound queue (struct sb_conn).
 *
 * No libwebsockets here: the transport (src/transport.c) feeds the session
 * and is reached back through struct sb_session_ops only, to close the
 * connection.  That makes every protocol path testable without a socket
 * (tests/unit/test_session.c) and fuzzable (tests/fuzz).
 *
 * Threads.  A session belongs to the worker thread that owns its socket;
 * every function here is for that thread only.  Other threads reach the
 * connection only through its struct sb_conn (sb_conn.h).
 */
#ifndef SB_SESSION_H
#define SB_SESSION_H

#include "sb_conn.h"
#include "sb_proto.h"
#include "sb_utf8.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sb_cluster_ops;
struct sb_config;
struct sb_session_cl;
struct sb_token_key;
struct sb_token_rules;
struct sb_session;
struct sb_registry;
struct sb_codec;
struct sb_stats;

/* How a session reaches its transport. */
struct sb_session_ops {
	/* The session decided to close its connection with WebSocket status
	 * code (0: drop the TCP connection without a close frame) for cause.
	 * The transport calls sb_session_end() (its peers get "leave") and
	 * closes the socket later, outside the current callback.  Called at
	 * most once per session. */
	void (*close)(struct sb_session *s, uint16_t code, enum sb_cause cause);
	/* Stop (paused) or go on delivering the client's messages: a join
	 * asked of the backplane waits for its answer before anything after
	 * it is read.  May be NULL (then what comes meanwhile is held, within
	 * SB_HELD_MAX and SB_HELD_BYTES). */
	void (*pause)(struct sb_session *s, bool paused);
};

/* What the sessions of one worker share.  Worker thread only, except the
 * registry, which is shared and locked by itself. */
struct sb_session_env {
	const struct sb_session_ops *ops;
	struct sb_registry *reg;
	struct sb_codec *codec;		/* set to expect checked UTF-8 */
	struct sb_stats *stats;		/* the worker's: received, errors */
	size_t max_message;		/* --max-message */
	double rate;			/* --rate; 0: off */
	bool draining;			/* the server is shutting down: new
					 * messages start nothing */
	const struct sb_cluster_ops *cluster;	/* NULL: a node on its own */
	/* Room tokens: NULL: a join's token is ignored.  Immutable, shared by
	 * every worker. */
	const struct sb_token_key *token_key;
	const struct sb_token_rules *token_rules;	/* with token_key; NULL:
							 * no aud or iss rule */
	const struct sb_config *ice;	/* its ICE servers go in every joined;
					 * NULL: no iceServers */
};

/* Messages a session holds while its join is asked of the backplane: at
 * most this many, of at most this many bytes in all (beyond them a message
 * is answered as before a join: not_joined). */
#define SB_HELD_MAX 32
#define SB_HELD_BYTES (256 * 1024)

/* One piece of a WebSocket message, as the transport received it. */
struct sb_piece {
	bool first, final;		/* of the message */
	bool binary;
	size_t remaining;		/* bytes of this frame still to come */
};

struct sb_session {
	struct sb_session_env *env;
	struct sb_conn *conn;		/* open .. release */
	char *rx;			/* reassembly of a message in pieces */
	uint32_t rx_len, rx_cap;	/* at most max_message */
	struct sb_utf8 utf8;		/* of the message being reassembled */
	uint32_t stamp_len;
	char *stamp;			/* "id":..,"nick":.. while joined */
	double tokens;			/* rate limit bucket */
	uint64_t rate_stamp;		/* ms, when tokens was last filled */
	uint32_t msgs_in, msgs_out;	/* for the access line; the transport
					 * counts msgs_out as it writes */
	char *last_room, *last_id;	/* the room and id held last */
	bool ended;			/* the close is decided */

	struct sb_session_cl *cl;	/* clusters: the join asked of the
					 * backplane and the sid; NULL until
					 * the first such join */
};

/* Whether s waits for the backplane's answer to its join. */
bool sb_session_joining(const struct sb_session *s);

/*
 * Opens s in env: a new connection whose output the owner learns of
 * through sched (sb_conn.h), bounded by max_backlog bytes, its queue
 * counted in depth (may be NULL).  now_ms starts the rate limit's clock.
 * Returns 0 or -ENOMEM (s is then as after release).
 */
int sb_session_open(struct sb_session *s, struct sb_session_env *env,
		    struct sb_sched *sched, size_t max_backlog,
		    struct sb_qdepth *depth, uint64_t now_ms);

/*
 * One piece of a message from the client (len bytes at in).  Reassembles;
 * closes (through ops->close) with 1003 for a binary message, 1009 when the
 * message would exceed max_message (known from the frame header, so before
 * the rest arrives), 1007 for invalid UTF-8; hands each complete message to
 * sb_session_message().  Does nothing once the session has ended.
 */
void sb_session_receive(struct sb_session *s, const void *in, size_t len,
			const struct sb_piece *piece, uint64_t now_ms);

/* One complete text message (valid UTF-8, within max_message), in the order
 * of checks of docs/protocol.md. */
void sb_session_message(struct sb_session *s, const char *buf, size_t len,
			uint64_t now_ms);

/* The backplane answered the join (the answer is on s->conn): the session
 * is in its room or is told why not, then what it held is handled.  A
 * session that is no longer joining drops the answer.  Does nothing
 * without an answer. */
void sb_session_answered(struct sb_session *s, uint64_t now_ms);

/* The close is decided: remembers the room and id for the access line,
 * leaves the room (its peers get "leave" when notify) and drops what the
 * queue holds.  Idempotent. */
void sb_session_end(struct sb_session *s, bool notify);

/* Ends s if needed (notify as given) and frees what it holds. */
void sb_session_release(struct sb_session *s, bool notify);

/* The room and id s held last ("" when it never joined).  For the access
 * line, after sb_session_end(). */
const char *sb_session_last_room(const struct sb_session *s);
const char *sb_session_last_id(const struct sb_session *s);

#endif
