/*
 * Messages between cluster nodes as they travel on a node's Redis channel:
 * the membership events that the backplane's scripts publish (a member
 * joined or left a room) and the relays that nodes publish (to one peer,
 * or to a room but its sender).  Pure: parsing and writing only; any
 * thread.
 *
 * A message is one letter, then for events the room's sequence number in
 * decimal and a space, then fields each written "<length>:<bytes>" (the
 * length in decimal, no leading zeros), then for relays the bytes to
 * deliver, exactly:
 *
 *   J<seq> <epoch><room><id><sid><nick>     a member joined
 *   L<seq> <epoch><room><id><sid><nick>     a member left
 *   M<us> <room><receiver><message>          to one peer
 *   B<us> <room><sender><message>            to the room but the sender
 *   P<relay><relay>...                       several relays (M or B), in order
 *
 * where each relay of a P is itself a field ("<length>:" and an M or B
 * message): a node sends the relays bound for one node in one pass of its
 * backplane as one P (one PUBLISH, one message for Redis to push), and
 * the receiving node hands them out in the order they were written.
 * where <us> is when the sending node received the message, in
 * microseconds since the Unix epoch (its wall clock): the receiving node
 * measures the hop between nodes with it.
 *
 * The scripts in src/lua write J and L the same way (docs/cluster-data.md).
 */
#ifndef SB_BPMSG_H
#define SB_BPMSG_H

#include "sb_buf.h"

#include <stddef.h>
#include <stdint.h>

enum sb_bpmsg_kind {
	SB_BPMSG_JOIN = 'J',
	SB_BPMSG_LEAVE = 'L',
	SB_BPMSG_TO = 'M',
	SB_BPMSG_ALL = 'B',
	SB_BPMSG_PACK = 'P',
};

/* A field: bytes inside the parsed message, not NUL-terminated. */
struct sb_bpfield {
	const char *p;
	size_t len;
};

struct sb_bpmsg {
	enum sb_bpmsg_kind kind;
	uint64_t seq;			/* J, L: the membership change's number */
	struct sb_bpfield epoch;	/* J, L: the Redis dataset's identity */
	struct sb_bpfield room;
	struct sb_bpfield id;		/* J, L: the member; M: the receiver;
					 * B: the sender, left out */
	struct sb_bpfield sid;		/* J, L: the member's session */
	struct sb_bpfield nick;		/* J, L */
	struct sb_bpfield body;		/* M, B: the message to deliver;
					 * P: the relays, for sb_bpmsg_next */
	uint64_t sent_us;		/* M, B: when the sender received it */
};

/* The largest sequence number: exact in a Lua number (2^53). */
#define SB_BPMSG_SEQ_MAX ((uint64_t)1 << 53)

/* Parses p[0..n) into *m (whose fields point into p).  0, or -1 when it is
 * not one of the five forms exactly (nothing may follow an event's nick;
 * a P holds at least one field, and nothing after its last).  A P's relays
 * are not looked into: sb_bpmsg_next gives each. */
int sb_bpmsg_parse(struct sb_bpmsg *m, const void *p, size_t n);

/* The next relay of a P (pack: its body) from *at on, which starts at 0:
 * 1 and *relay, 0 after the last, -1 when the rest is not a field (which
 * sb_bpmsg_parse has ruled out).  The relay itself is parsed by the
 * caller, and must be an M or a B. */
int sb_bpmsg_next(const struct sb_bpfield *pack, size_t *at,
		  struct sb_bpfield *relay);

/* The largest <us>: the year 2554, far enough. */
#define SB_BPMSG_US_MAX ((uint64_t)1 << 54)

/* Appends an M (receiver) or B (sender) relay of body in room, received
 * at sent_us, to out. */
void sb_bpmsg_relay(struct sb_buf *out, enum sb_bpmsg_kind kind, uint64_t sent_us,
		    const char *room, size_t room_len, const char *who,
		    size_t who_len, const void *body, size_t body_len);

/* Appends relay (an M or a B, as sb_bpmsg_relay wrote it) to the P being
 * written in out: a P begins with the letter alone. */
void sb_bpmsg_pack_add(struct sb_buf *out, const void *relay, size_t len);

/* Appends a J or L event to out (for tests and the fuzzer's seeds: the
 * server's events are written by Redis). */
void sb_bpmsg_event(struct sb_buf *out, enum sb_bpmsg_kind kind, uint64_t seq,
		    const struct sb_bpfield *epoch, const struct sb_bpfield *room,
		    const struct sb_bpfield *id, const struct sb_bpfield *sid,
		    const struct sb_bpfield *nick);

#endif
