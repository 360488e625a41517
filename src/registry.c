#include "sb_registry.h"

#include "sb_codec.h"
#include "sb_buf.h"
#include "sb_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sb_room {
	char *name;		/* owned */
	size_t name_len;
	struct sb_map peers;	/* id -> struct sb_conn; keys are conn->id */
};

struct sb_registry {
	pthread_rwlock_t lock;
	struct sb_map rooms;	/* {lock} name -> struct sb_room */
	size_t peers;		/* {lock} */
	unsigned max_room_peers;	/* immutable */
};

struct sb_registry *sb_registry_new(unsigned max_room_peers)
{
	struct sb_registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (pthread_rwlock_init(&r->lock, NULL)) {
		free(r);
		return NULL;
	}
	sb_map_init(&r->rooms);
	r->max_room_peers = max_room_peers;
	return r;
}

static void room_free(struct sb_room *room)
{
	sb_map_release(&room->peers);
	free(room->name);
	free(room);
}

void sb_registry_free(struct sb_registry *r)
{
	void *v;

	if (!r)
		return;
	for (size_t i = 0; (i = sb_map_next(&r->rooms, i, &v));)
		room_free(v);
	sb_map_release(&r->rooms);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static char *dup_bytes(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* The "joined" reply: the joiner's identity and the roster of the others.
 * Caller holds the lock (any mode). */
static struct sb_msg *joined_locked(struct sb_room *room, struct sb_conn *c)
{
	struct sb_buf b;
	struct sb_msg *m = NULL;
	bool first = true;
	void *v;

	sb_buf_init(&b, (size_t)UINT32_MAX);
	sb_buf_adds(&b, "{\"type\":\"joined\",\"payload\":{\"id\":");
	sb_buf_add_jstr(&b, c->id, c->id_len);
	sb_buf_adds(&b, ",\"nick\":");
	sb_buf_add_jstr(&b, c->nick, c->nick_len);
	sb_buf_adds(&b, ",\"room\":");
	sb_buf_add_jstr(&b, room->name, room->name_len);
	sb_buf_adds(&b, ",\"peers\":[");
	for (size_t i = 0; (i = sb_map_next(&room->peers, i, &v));) {
		struct sb_conn *o = v;

		if (o == c)
			continue;
		sb_buf_adds(&b, first ? "{\"id\":" : ",{\"id\":");
		sb_buf_add_jstr(&b, o->id, o->id_len);
		sb_buf_adds(&b, ",\"nick\":");
		sb_buf_add_jstr(&b, o->nick, o->nick_len);
		sb_buf_adds(&b, "}");
		first = false;
	}
	sb_buf_adds(&b, "]}}");
	if (!sb_buf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_buf_release(&b);
	return m;
}

int sb_registry_join(struct sb_registry *r, struct sb_conn *c,
		     const char *room_name, size_t room_len,
		     const char *id, size_t id_len,
		     const char *nick, size_t nick_len)
{
	char *idc = dup_bytes(id, id_len), *nickc = dup_bytes(nick, nick_len);
	struct sb_msg *note = sb_event_peer("join", id, id_len, nick, nick_len);
	struct sb_msg *joined = NULL;
	struct sb_room *room, *fresh = NULL;
	int rc = -ENOMEM;
	void *v;

	if (!idc || !nickc || !note)
		goto out;

	pthread_rwlock_wrlock(&r->lock);
	room = sb_map_get(&r->rooms, room_name, room_len);
	if (room && sb_map_get(&room->peers, id, id_len)) {
		rc = -EEXIST;
		goto unlock;
	}
	if (room && r->max_room_peers && room->peers.count >= r->max_room_peers) {
		rc = -ENOSPC;
		goto unlock;
	}
	if (!room) {
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh || !(fresh->name = dup_bytes(room_name, room_len)))
			goto unlock;
		fresh->name_len = room_len;
		sb_map_init(&fresh->peers);
		if (sb_map_put(&r->rooms, fresh->name, room_len, fresh))
			goto unlock;
		room = fresh;
	}
	if (sb_map_put(&room->peers, idc, id_len, c))
		goto unlock;
	fresh = NULL;
	c->room = room;
	c->id = idc;
	c->id_len = id_len;
	c->nick = nickc;
	c->nick_len = nick_len;
	idc = nickc = NULL;
	sb_conn_ref(c);
	r->peers++;

	joined = joined_locked(room, c);
	if (joined)
		sb_conn_send(c, joined);
	else
		sb_conn_evict(c);	/* it cannot be told: close it */
	for (size_t i = 0; (i = sb_map_next(&room->peers, i, &v));)
		if (v != c)
			sb_conn_send(v, note);
	rc = 0;
unlock:
	if (fresh) {
		/* a room made for this join that it could not enter */
		if (sb_map_get(&r->rooms, room_name, room_len) == fresh)
			sb_map_del(&r->rooms, room_name, room_len);
		room_free(fresh);
	}
	pthread_rwlock_unlock(&r->lock);
out:
	free(idc);
	free(nickc);
	sb_msg_unref(note);
	sb_msg_unref(joined);
	return rc;
}

int sb_registry_leave(struct sb_registry *r, struct sb_conn *c, bool notify)
{
	struct sb_msg *note = NULL;
	struct sb_room *room, *gone = NULL;
	char *id, *nick;
	void *v;

	if (!c->room)
		return -ENOENT;
	if (notify)
		note = sb_event_peer("leave", c->id, c->id_len, c->nick, c->nick_len);

	pthread_rwlock_wrlock(&r->lock);
	room = c->room;
	sb_map_del(&room->peers, c->id, c->id_len);
	r->peers--;
	id = c->id;
	nick = c->nick;
	c->room = NULL;
	c->id = c->nick = NULL;
	c->id_len = c->nick_len = 0;
	if (note)
		for (size_t i = 0; (i = sb_map_next(&room->peers, i, &v));)
			sb_conn_send(v, note);
	if (!room->peers.count) {
		sb_map_del(&r->rooms, room->name, room->name_len);
		gone = room;
	}
	pthread_rwlock_unlock(&r->lock);

	if (gone)
		room_free(gone);
	free(id);
	free(nick);
	sb_msg_unref(note);
	sb_conn_unref(c);
	return 0;
}

int sb_registry_relay(struct sb_registry *r, struct sb_conn *c,
		      const char *receiver, size_t receiver_len,
		      struct sb_msg *m)
{
	struct sb_room *room = c->room;
	int n = 0;
	void *v;

	if (!room)
		return -ENOENT;
	pthread_rwlock_rdlock(&r->lock);
	if (receiver) {
		struct sb_conn *to = sb_map_get(&room->peers, receiver, receiver_len);

		if (!to || to == c) {
			n = -ENOENT;
		} else {
			sb_conn_send(to, m);
			n = 1;
		}
	} else {
		for (size_t i = 0; (i = sb_map_next(&room->peers, i, &v));) {
			if (v != c) {
				sb_conn_send(v, m);
				n++;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return n;
}

const char *sb_registry_room_name(const struct sb_conn *c, size_t *len)
{
	if (!c->room) {
		*len = 0;
		return NULL;
	}
	*len = c->room->name_len;
	return c->room->name;
}

void sb_registry_counts(struct sb_registry *r, size_t *rooms, size_t *peers)
{
	pthread_rwlock_rdlock(&r->lock);
	*rooms = r->rooms.count;
	*peers = r->peers;
	pthread_rwlock_unlock(&r->lock);
}
