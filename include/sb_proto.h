/*
 * The names of protocol v1 (see docs/protocol.md): message types, error
 * codes and close causes.  Each table generates both the enum and the wire
 * strings, so the two cannot drift apart.
 */
#ifndef SB_PROTO_H
#define SB_PROTO_H

#define SB_TYPES(X)                                                           \
	X(JOIN, "join")                                                       \
	X(OFFER, "offer")                                                     \
	X(ANSWER, "answer")                                                   \
	X(ICECANDIDATE, "icecandidate")                                       \
	X(MESSAGE, "message")                                                 \
	X(LEAVE, "leave")                                                     \
	X(PING, "ping")

#define SB_ERRORS(X)                                                          \
	X(BAD_JSON, "bad_json")                                               \
	X(BAD_MESSAGE, "bad_message")                                         \
	X(UNKNOWN_TYPE, "unknown_type")                                       \
	X(NOT_JOINED, "not_joined")                                           \
	X(ALREADY_JOINED, "already_joined")                                   \
	X(ID_TAKEN, "id_taken")                                               \
	X(ROOM_FULL, "room_full")                                             \
	X(PEER_NOT_FOUND, "peer_not_found")                                   \
	X(UNAUTHORIZED, "unauthorized")                                       \
	X(RATE_LIMITED, "rate_limited")                                       \
	X(UNAVAILABLE, "unavailable")

/* Why a WebSocket connection ended, as /metrics counts it. */
#define SB_CAUSES(X)                                                          \
	X(CLIENT, "client")                                                   \
	X(HEARTBEAT, "heartbeat")                                             \
	X(BACKLOG, "backlog")                                                 \
	X(LIMIT, "limit")                                                     \
	X(PROTOCOL, "protocol")                                               \
	X(SHUTDOWN, "shutdown")

#define SB_ENUM_TYPE(e, s) SB_TYPE_##e,
#define SB_ENUM_ERR(e, s) SB_ERR_##e,
#define SB_ENUM_CAUSE(e, s) SB_CAUSE_##e,

enum sb_type { SB_TYPES(SB_ENUM_TYPE) SB_TYPE_COUNT, SB_TYPE_NONE = -1 };
enum sb_err { SB_ERR_NONE = -1, SB_ERRORS(SB_ENUM_ERR) SB_ERR_COUNT };
enum sb_cause { SB_CAUSES(SB_ENUM_CAUSE) SB_CAUSE_COUNT };

extern const char *const sb_type_names[SB_TYPE_COUNT];
extern const char *const sb_err_names[SB_ERR_COUNT];
extern const char *const sb_cause_names[SB_CAUSE_COUNT];

/* WebSocket close status codes the server sends. */
enum {
	SB_CLOSE_GOING_AWAY = 1001,	/* shutdown */
	SB_CLOSE_PROTOCOL = 1002,
	SB_CLOSE_UNSUPPORTED = 1003,	/* binary frame */
	SB_CLOSE_INVALID_DATA = 1007,	/* invalid UTF-8 */
	SB_CLOSE_POLICY = 1008,		/* outbound backlog overflow, a message
					 * not completed in time */
	SB_CLOSE_TOO_BIG = 1009,	/* message over --max-message */
	SB_CLOSE_INTERNAL = 1011,	/* out of memory */
	SB_CLOSE_RESTART = 1012,	/* clusters: the id was taken on another
					 * node while this one could not reach
					 * Redis; join again */
};

#endif
