/*
 * An outbound message: immutable bytes with an atomic reference count.
 *
 * A message for many recipients is serialized once and the same sb_msg is
 * queued to each of them; each queue holds one reference.  Once published
 * (queued anywhere) its bytes never change, so any thread may read them.
 * A message is one complete WebSocket text payload (a JSON event).
 */
#ifndef SB_MSG_H
#define SB_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct sb_msg {
	atomic_uint refs;
	uint32_t len;
	uint64_t t_rx;		/* a relay: when it was received (uv_hrtime,
				 * ns); 0 for the server's own events */
	char data[];
};

/* A message of len bytes with one reference, its bytes for the caller to
 * fill before publishing; NULL when out of memory.  Any thread. */
struct sb_msg *sb_msg_new(size_t len);

/* A message holding a copy of data[0..len); NULL when out of memory. */
struct sb_msg *sb_msg_from(const void *data, size_t len);

/* Any thread. */
static inline struct sb_msg *sb_msg_ref(struct sb_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

/* Drops one reference; the last frees the message.  NULL is allowed. */
void sb_msg_unref(struct sb_msg *m);

#endif
