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

#endif
