/*
 * The registry: rooms and the peers joined to them, shared by all workers
 * and guarded by one pthread rwlock.
 *
 * Joins and leaves take the write lock; relays take the read lock.  Every
 * event is queued to its recipients while the lock is held, which is what
 * makes the ordering guarantees hold across threads: a newcomer's join event
 * is queued to each member before the newcomer can relay anything (its relay
 * needs the read lock, which waits for the join to finish), and a leave is
 * queued after every message its peer relayed.
 *
 * Lock order: registry lock, then a connection's lock (sb_conn_send), then
 * a worker's lock (the scheduler behind it).  Nothing here calls into the
 * transport or logs while holding the lock.
 *
 * A connection is joined and leaves only on its owning worker's thread, so
 * that thread may read its own conn->room, id and nick without the lock.
 */
#ifndef SB_REGISTRY_H
#define SB_REGISTRY_H

#include "sb_bpmsg.h"
#include "sb_conn.h"

#include <stdbool.h>
#include <stddef.h>

struct sb_registry;

/* A registry allowing max_room_peers per room (0: unlimited); NULL when out
 * of memory. */
struct sb_registry *sb_registry_new(unsigned max_room_peers);

/* Frees the registry; every connection must have left. */
void sb_registry_free(struct sb_registry *r);

/*
 * Joins c (not joined) to room as id with nick, all valid UTF-8 already
 * checked.  On success queues "joined" with the roster to c and "join" to
 * every other member, and the registry takes a reference to c.  Returns 0,
 * -EEXIST (id taken in that room), -ENOSPC (room full) or -ENOMEM; on
 * failure nothing changed.  c's owner thread only.
 */
int sb_registry_join(struct sb_registry *r, struct sb_conn *c,
		     const char *room, size_t room_len,
		     const char *id, size_t id_len,
		     const char *nick, size_t nick_len);

/* As sb_registry_join, with extra[0..extra_len) (JSON members, each after
 * a comma, e.g. `,"iceServers":[...]`) added at the end of joined's
 * payload; extra may be NULL when extra_len is 0. */
int sb_registry_join_with(struct sb_registry *r, struct sb_conn *c,
			  const char *room, size_t room_len,
			  const char *id, size_t id_len,
			  const char *nick, size_t nick_len,
			  const char *extra, size_t extra_len);

/*
 * Removes c from its room and drops the registry's reference to it; when
 * notify, queues "leave" to the remaining members.  An emptied room is
 * deleted.  Returns 0, or -ENOENT when c was not joined.  c's owner thread
 * only.
 */
int sb_registry_leave(struct sb_registry *r, struct sb_conn *c, bool notify);

/*
 * Queues m to the member of c's room named receiver (receiver != NULL), or
 * to every other member (receiver == NULL).  Returns the number of
 * recipients (a recipient already closing drops it), or -ENOENT when
 * receiver names no other member (nothing is queued).  c must be joined.
 * c's owner thread only.
 */
int sb_registry_relay(struct sb_registry *r, struct sb_conn *c,
		      const char *receiver, size_t receiver_len,
		      struct sb_msg *m);

/* The name of c's room (not NUL-terminated; *len its bytes), or NULL when c
 * is not joined.  c's owner thread only. */
const char *sb_registry_room_name(const struct sb_conn *c, size_t *len);

/* Rooms and joined peers now.  Any thread. */
void sb_registry_counts(struct sb_registry *r, size_t *rooms, size_t *peers);

/* ------------------------------------------------------------ clusters
 *
 * In a cluster each room also holds a replica of its members on other
 * nodes ("remote" members), kept by the membership events that the
 * backplane brings (sb_bpmsg.h): rosters list them, relays reach them
 * through the backplane, and events about them reach this node's members
 * in the order the backplane delivers them.  A room's replica carries the
 * sequence number and epoch of the last change it reflects; events that
 * are not newer are stale and dropped.  Lock order as above: the registry's
 * lock, then a connection's, or the backplane's queue (a leaf).
 */

#define SB_NODE_LEN 16		/* bytes of a node's id; a sid starts with it */
#define SB_EPOCH_MAX 64		/* bytes of an epoch */

/* Cluster mode: this node's id (SB_NODE_LEN bytes).  Members whose sid
 * names it are this node's own.  main, before any join. */
void sb_registry_set_node(struct sb_registry *r, const char *node);

/* A member as the backplane lists it. */
struct sb_member {
	struct sb_bpfield id, sid, nick;
};

/* A room's members in Redis (on every node, this one too) after change seq
 * of dataset epoch: the join script's answer. */
struct sb_snapshot {
	struct sb_bpfield epoch;
	uint64_t seq;
	const struct sb_member *members;
	size_t n;
};

/*
 * Joins c as sb_registry_join does once the backplane has let it in (id
 * free and room not full in the whole cluster): the checks are not made
 * again.  When the room is new on this node, its replica is snap's members
 * on other nodes; otherwise the replica is already current and snap is not
 * used.  The roster in "joined" lists this node's members and the replica.
 * A member of the replica with c's id (its departure not yet heard of) is
 * dropped first, with a "leave" to this node's members.  extra as for
 * sb_registry_join_with.  0, -EEXIST (a member of this node has the id) or
 * -ENOMEM.  c's owner thread only.
 */
int sb_registry_join_cluster(struct sb_registry *r, struct sb_conn *c,
			     const char *room, size_t room_len,
			     const char *id, size_t id_len,
			     const char *nick, size_t nick_len,
			     const char *extra, size_t extra_len,
			     const struct sb_snapshot *snap);

/*
 * Applies a membership event (J or L) from the backplane to the room's
 * replica, if the room has members here, the event is of the replica's
 * epoch, newer than its sequence number, and about a member of another
 * node; queues "join" or "leave" to this node's members of the room.  A
 * join of an id the replica holds under another sid is a leave of the old
 * member first; a leave is applied only for the sid the replica holds.
 * Returns 1 when applied, 0 when dropped, -ENOMEM.  Any thread.
 */
int sb_registry_remote_event(struct sb_registry *r, const struct sb_bpmsg *ev);

/*
 * Delivers a relay from another node (M: to the member named, B: to every
 * member but the one named) to this node's members of the room.  Returns
 * the number of recipients.  Any thread.
 */
int sb_registry_deliver(struct sb_registry *r, const struct sb_bpmsg *ev,
			struct sb_msg *m);

/*
 * Relays as sb_registry_relay, and calls publish(arg, node) for each other
 * node that must carry m: the receiver's node when the receiver is a
 * remote member, or every node with members in the replica for a
 * broadcast.  publish runs under the registry's read lock: it may only
 * queue.  Returns this node's recipients, plus one for a remote receiver;
 * -ENOENT when receiver names no other member here or in the replica;
 * -EHOSTUNREACH, having delivered nothing to anyone, when other nodes must
 * carry m and remote_up is false (the backplane is down: a refused message
 * reaches no one).  c's owner thread only.
 */
int sb_registry_route(struct sb_registry *r, struct sb_conn *c,
		      const char *receiver, size_t receiver_len,
		      struct sb_msg *m, bool remote_up,
		      void (*publish)(void *arg, const char *node), void *arg);

/*
 * Makes the replica of room equal to snap (after the backplane came back):
 * members gone get a "leave", new ones a "join" (a sid changed: both), to
 * this node's members; the replica takes snap's epoch and seq.  The
 * members of a node for which keep (if not NULL) says it may not have
 * settled its members in Redis yet (registered them again, removed those it
 * no longer has) are left as they are: neither removed when missing from
 * snap nor added from it.
 * Returns the events queued, or -ENOENT when the room has no members here.
 * Any thread.
 */
int sb_registry_resync(struct sb_registry *r, const char *room, size_t room_len,
		       const struct sb_snapshot *snap,
		       bool (*keep)(void *arg, const char *node), void *arg);

#endif
