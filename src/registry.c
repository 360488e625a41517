#include "sb_registry.h"

#include "sb_codec.h"
#include "sb_buf.h"
#include "sb_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A member of the room on another node (clusters). */
struct sb_remote {
	char *id, *nick, *sid;	/* owned; id is the key in room->remote */
	size_t id_len, nick_len, sid_len;
};

/* How many of the replica's members a node holds: the nodes a broadcast
 * goes to. */
struct node_count {
	char node[SB_NODE_LEN];	/* the key in room->nodes */
	unsigned n;
};

struct sb_room {
	char *name;		/* owned */
	size_t name_len;
	struct sb_map peers;	/* id -> struct sb_conn; keys are conn->id */
	struct sb_map remote;	/* id -> struct sb_remote (clusters) */
	struct sb_map nodes;	/* node -> struct node_count (clusters) */
	uint64_t seq;		/* the last change the replica reflects */
	char epoch[SB_EPOCH_MAX];	/* of the dataset it was read from */
	size_t epoch_len;
};

struct sb_registry {
	pthread_rwlock_t lock;
	struct sb_map rooms;	/* {lock} name -> struct sb_room */
	size_t peers;		/* {lock} this node's joined peers */
	unsigned max_room_peers;	/* immutable */
	char node[SB_NODE_LEN];	/* this node's id (clusters); immutable */
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

static void remote_free(struct sb_remote *m)
{
	free(m->id);
	free(m->nick);
	free(m->sid);
	free(m);
}

static void room_free(struct sb_room *room)
{
	void *v;

	for (size_t i = 0; (i = sb_map_next(&room->remote, i, &v));)
		remote_free(v);
	for (size_t i = 0; (i = sb_map_next(&room->nodes, i, &v));)
		free(v);
	sb_map_release(&room->peers);
	sb_map_release(&room->remote);
	sb_map_release(&room->nodes);
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

/* The "joined" reply: the joiner's identity, the roster of the others and
 * extra (members, each after a comma; may be NULL).  Caller holds the lock
 * (any mode). */
static struct sb_msg *joined_locked(struct sb_room *room, struct sb_conn *c,
				    const char *extra, size_t extra_len)
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
	for (size_t i = 0; (i = sb_map_next(&room->remote, i, &v));) {
		struct sb_remote *o = v;

		sb_buf_adds(&b, first ? "{\"id\":" : ",{\"id\":");
		sb_buf_add_jstr(&b, o->id, o->id_len);
		sb_buf_adds(&b, ",\"nick\":");
		sb_buf_add_jstr(&b, o->nick, o->nick_len);
		sb_buf_adds(&b, "}");
		first = false;
	}
	sb_buf_adds(&b, "]");
	if (extra_len)
		sb_buf_add(&b, extra, extra_len);
	sb_buf_adds(&b, "}}");
	if (!sb_buf_failed(&b))
		m = sb_msg_from(b.p, b.len);
	sb_buf_release(&b);
	return m;
}

/* Sends m to every member of room on this node but skip (may be NULL);
 * returns how many.  Caller holds the lock (any mode). */
static int tell_locals(struct sb_room *room, struct sb_conn *skip, struct sb_msg *m)
{
	int n = 0;
	void *v;

	for (size_t i = 0; (i = sb_map_next(&room->peers, i, &v));) {
		if (v != skip) {
			sb_conn_send(v, m);
			n++;
		}
	}
	return n;
}

static bool own_sid(const struct sb_registry *r, const char *sid, size_t len)
{
	return len >= SB_NODE_LEN && !memcmp(sid, r->node, SB_NODE_LEN);
}

/* Adds a member of another node to room's replica.  0 or -ENOMEM (then
 * nothing changed).  Caller holds the write lock; the id is not there. */
static int remote_add(struct sb_room *room, const struct sb_bpfield *id,
		      const struct sb_bpfield *sid, const struct sb_bpfield *nick)
{
	struct sb_remote *m = calloc(1, sizeof(*m));
	struct node_count *nc;

	if (!m || !(m->id = dup_bytes(id->p, id->len)) ||
	    !(m->sid = dup_bytes(sid->p, sid->len)) ||
	    !(m->nick = dup_bytes(nick->p, nick->len)))
		goto fail;
	m->id_len = id->len;
	m->sid_len = sid->len;
	m->nick_len = nick->len;
	nc = sb_map_get(&room->nodes, m->sid, SB_NODE_LEN);
	if (!nc) {
		nc = calloc(1, sizeof(*nc));
		if (!nc)
			goto fail;
		memcpy(nc->node, m->sid, SB_NODE_LEN);
		if (sb_map_put(&room->nodes, nc->node, SB_NODE_LEN, nc)) {
			free(nc);
			goto fail;
		}
	}
	if (sb_map_put(&room->remote, m->id, m->id_len, m)) {
		if (!nc->n) {
			sb_map_del(&room->nodes, nc->node, SB_NODE_LEN);
			free(nc);
		}
		goto fail;
	}
	nc->n++;
	return 0;
fail:
	if (m)
		remote_free(m);
	return -ENOMEM;
}

/* Removes m from room's replica and frees it.  Caller holds the write
 * lock. */
static void remote_del(struct sb_room *room, struct sb_remote *m)
{
	struct node_count *nc = sb_map_get(&room->nodes, m->sid, SB_NODE_LEN);

	sb_map_del(&room->remote, m->id, m->id_len);
	if (nc && !--nc->n) {
		sb_map_del(&room->nodes, nc->node, SB_NODE_LEN);
		free(nc);
	}
	remote_free(m);
}

/* Removes m from the replica with a "leave" to this node's members.
 * -ENOMEM (nothing changed) when the event cannot be made.  Caller holds
 * the write lock. */
static int remote_gone(struct sb_room *room, struct sb_remote *m)
{
	struct sb_msg *note = sb_event_peer("leave", m->id, m->id_len, m->nick,
					    m->nick_len);

	if (!note)
		return -ENOMEM;
	tell_locals(room, NULL, note);
	sb_msg_unref(note);
	remote_del(room, m);
	return 0;
}

/* Adds a member of another node with a "join" to this node's members. */
static int remote_came(struct sb_room *room, const struct sb_bpfield *id,
		       const struct sb_bpfield *sid, const struct sb_bpfield *nick)
{
	struct sb_msg *note = sb_event_peer("join", id->p, id->len, nick->p, nick->len);
	int rc = note ? remote_add(room, id, sid, nick) : -ENOMEM;

	if (!rc)
		tell_locals(room, NULL, note);
	sb_msg_unref(note);
	return rc;
}

static bool epoch_is(const struct sb_room *room, const struct sb_bpfield *e)
{
	return e->len == room->epoch_len && !memcmp(e->p, room->epoch, e->len);
}

static int set_epoch(struct sb_room *room, const struct sb_bpfield *e, uint64_t seq)
{
	if (e->len > sizeof(room->epoch))
		return -EINVAL;
	memcpy(room->epoch, e->p, e->len);
	room->epoch_len = e->len;
	room->seq = seq;
	return 0;
}

/* A join, on one node (snap NULL: the checks are made here) or in a
 * cluster (snap: the backplane made them). */
static int join(struct sb_registry *r, struct sb_conn *c,
		const char *room_name, size_t room_len,
		const char *id, size_t id_len,
		const char *nick, size_t nick_len,
		const char *extra, size_t extra_len,
		const struct sb_snapshot *snap)
{
	char *idc = dup_bytes(id, id_len), *nickc = dup_bytes(nick, nick_len);
	struct sb_msg *note = sb_event_peer("join", id, id_len, nick, nick_len);
	struct sb_msg *joined = NULL;
	struct sb_room *room, *fresh = NULL;
	struct sb_remote *stale;
	int rc = -ENOMEM;

	if (!idc || !nickc || !note)
		goto out;

	pthread_rwlock_wrlock(&r->lock);
	room = sb_map_get(&r->rooms, room_name, room_len);
	if (room && sb_map_get(&room->peers, id, id_len)) {
		rc = -EEXIST;
		goto unlock;
	}
	if (!snap && room && r->max_room_peers &&
	    room->peers.count >= r->max_room_peers) {
		rc = -ENOSPC;
		goto unlock;
	}
	if (!room) {
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh || !(fresh->name = dup_bytes(room_name, room_len)))
			goto unlock;
		fresh->name_len = room_len;
		sb_map_init(&fresh->peers);
		sb_map_init(&fresh->remote);
		sb_map_init(&fresh->nodes);
		/* new here: the backplane's view is the replica */
		if (snap) {
			if (set_epoch(fresh, &snap->epoch, snap->seq)) {
				rc = -EINVAL;
				goto unlock;
			}
			for (size_t k = 0; k < snap->n; k++) {
				const struct sb_member *m = &snap->members[k];

				if (own_sid(r, m->sid.p, m->sid.len) ||
				    m->sid.len < SB_NODE_LEN ||
				    (m->id.len == id_len && !memcmp(m->id.p, id, id_len)) ||
				    sb_map_get(&fresh->remote, m->id.p, m->id.len))
					continue;
				if (remote_add(fresh, &m->id, &m->sid, &m->nick))
					goto unlock;
			}
		}
		if (sb_map_put(&r->rooms, fresh->name, room_len, fresh))
			goto unlock;
		room = fresh;
	}
	/* a member of another node with this id, whose departure has not
	 * reached this node yet: it has left, and is told so first */
	stale = sb_map_get(&room->remote, id, id_len);
	if (stale && remote_gone(room, stale))
		goto unlock;
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

	joined = joined_locked(room, c, extra, extra_len);
	if (joined)
		sb_conn_send(c, joined);
	else
		sb_conn_evict(c);	/* it cannot be told: close it */
	tell_locals(room, c, note);
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

int sb_registry_join(struct sb_registry *r, struct sb_conn *c,
		     const char *room_name, size_t room_len,
		     const char *id, size_t id_len,
		     const char *nick, size_t nick_len)
{
	return join(r, c, room_name, room_len, id, id_len, nick, nick_len,
		    NULL, 0, NULL);
}

int sb_registry_join_with(struct sb_registry *r, struct sb_conn *c,
			  const char *room_name, size_t room_len,
			  const char *id, size_t id_len,
			  const char *nick, size_t nick_len,
			  const char *extra, size_t extra_len)
{
	return join(r, c, room_name, room_len, id, id_len, nick, nick_len,
		    extra, extra_len, NULL);
}

int sb_registry_join_cluster(struct sb_registry *r, struct sb_conn *c,
			     const char *room, size_t room_len,
			     const char *id, size_t id_len,
			     const char *nick, size_t nick_len,
			     const char *extra, size_t extra_len,
			     const struct sb_snapshot *snap)
{
	return join(r, c, room, room_len, id, id_len, nick, nick_len,
		    extra, extra_len, snap);
}

int sb_registry_leave(struct sb_registry *r, struct sb_conn *c, bool notify)
{
	struct sb_msg *note = NULL;
	struct sb_room *room, *gone = NULL;
	char *id, *nick;

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
		tell_locals(room, NULL, note);
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
		n = tell_locals(room, c, m);
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

/* ------------------------------------------------------------ clusters */

void sb_registry_set_node(struct sb_registry *r, const char *node)
{
	memcpy(r->node, node, SB_NODE_LEN);
}

int sb_registry_remote_event(struct sb_registry *r, const struct sb_bpmsg *ev)
{
	struct sb_room *room;
	struct sb_remote *m;
	int rc = 0;

	if ((ev->kind != SB_BPMSG_JOIN && ev->kind != SB_BPMSG_LEAVE) ||
	    ev->sid.len < SB_NODE_LEN || own_sid(r, ev->sid.p, ev->sid.len))
		return 0;
	pthread_rwlock_wrlock(&r->lock);
	room = sb_map_get(&r->rooms, ev->room.p, ev->room.len);
	if (!room || !epoch_is(room, &ev->epoch) || ev->seq <= room->seq)
		goto unlock;
	room->seq = ev->seq;
	m = sb_map_get(&room->remote, ev->id.p, ev->id.len);
	if (ev->kind == SB_BPMSG_LEAVE) {
		if (m && m->sid_len == ev->sid.len && !memcmp(m->sid, ev->sid.p, m->sid_len))
			rc = remote_gone(room, m) ? -ENOMEM : 1;
		goto unlock;
	}
	if (sb_map_get(&room->peers, ev->id.p, ev->id.len))
		goto unlock;	/* one of ours has the id: not a join to believe */
	if (m) {
		if (m->sid_len == ev->sid.len && !memcmp(m->sid, ev->sid.p, m->sid_len))
			goto unlock;	/* already known */
		if (remote_gone(room, m)) {
			rc = -ENOMEM;
			goto unlock;
		}
	}
	rc = remote_came(room, &ev->id, &ev->sid, &ev->nick) ? -ENOMEM : 1;
unlock:
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

int sb_registry_deliver(struct sb_registry *r, const struct sb_bpmsg *ev,
			struct sb_msg *m)
{
	struct sb_room *room;
	struct sb_conn *to;
	int n = 0;

	pthread_rwlock_rdlock(&r->lock);
	room = sb_map_get(&r->rooms, ev->room.p, ev->room.len);
	if (room && ev->kind == SB_BPMSG_TO) {
		to = sb_map_get(&room->peers, ev->id.p, ev->id.len);
		if (to) {
			sb_conn_send(to, m);
			n = 1;
		}
	} else if (room && ev->kind == SB_BPMSG_ALL) {
		to = sb_map_get(&room->peers, ev->id.p, ev->id.len);
		n = tell_locals(room, to, m);
	}
	pthread_rwlock_unlock(&r->lock);
	return n;
}

int sb_registry_route(struct sb_registry *r, struct sb_conn *c,
		      const char *receiver, size_t receiver_len,
		      struct sb_msg *m, bool remote_up,
		      void (*publish)(void *arg, const char *node), void *arg)
{
	struct sb_room *room = c->room;
	int n = 0;
	void *v;

	if (!room)
		return -ENOENT;
	pthread_rwlock_rdlock(&r->lock);
	if (receiver) {
		struct sb_conn *to = sb_map_get(&room->peers, receiver, receiver_len);
		struct sb_remote *far;

		if (to && to != c) {
			sb_conn_send(to, m);
			n = 1;
		} else if (!to &&
			   (far = sb_map_get(&room->remote, receiver, receiver_len))) {
			if (remote_up) {
				publish(arg, far->sid);
				n = 1;
			} else {
				n = -EHOSTUNREACH;
			}
		} else {
			n = -ENOENT;
		}
	} else if (!remote_up && room->nodes.count) {
		n = -EHOSTUNREACH;	/* all of it or nothing */
	} else {
		n = tell_locals(room, c, m);
		for (size_t i = 0; (i = sb_map_next(&room->nodes, i, &v));)
			publish(arg, ((struct node_count *)v)->node);
	}
	pthread_rwlock_unlock(&r->lock);
	return n;
}

/* Whether snap lists id with sid.  Linear: a resync is rare. */
static const struct sb_member *snap_find(const struct sb_snapshot *snap,
					 const char *id, size_t id_len)
{
	for (size_t k = 0; k < snap->n; k++)
		if (snap->members[k].id.len == id_len &&
		    !memcmp(snap->members[k].id.p, id, id_len))
			return &snap->members[k];
	return NULL;
}

int sb_registry_resync(struct sb_registry *r, const char *room_name, size_t room_len,
		       const struct sb_snapshot *snap,
		       bool (*keep)(void *arg, const char *node), void *arg)
{
	struct sb_room *room;
	int events = 0;
	void *v;

	pthread_rwlock_wrlock(&r->lock);
	room = sb_map_get(&r->rooms, room_name, room_len);
	if (!room) {
		pthread_rwlock_unlock(&r->lock);
		return -ENOENT;
	}
	/* the departed, one at a time: the map must not change while it is
	 * walked */
	for (bool again = true; again;) {
		again = false;
		for (size_t i = 0; (i = sb_map_next(&room->remote, i, &v));) {
			struct sb_remote *m = v;
			const struct sb_member *s = snap_find(snap, m->id, m->id_len);

			if (s && s->sid.len == m->sid_len &&
			    !memcmp(s->sid.p, m->sid, m->sid_len))
				continue;
			if (!s && keep && keep(arg, m->sid))
				continue;	/* its node may not be back yet */
			if (remote_gone(room, m)) {
				events = -ENOMEM;
				goto unlock;
			}
			events++;
			again = true;
			break;
		}
	}
	/* and the newcomers */
	for (size_t k = 0; k < snap->n; k++) {
		const struct sb_member *s = &snap->members[k];

		if (own_sid(r, s->sid.p, s->sid.len) || s->sid.len < SB_NODE_LEN ||
		    sb_map_get(&room->remote, s->id.p, s->id.len) ||
		    sb_map_get(&room->peers, s->id.p, s->id.len))
			continue;
		if (keep && keep(arg, s->sid.p))
			continue;	/* its node has not settled its members */
		if (remote_came(room, &s->id, &s->sid, &s->nick)) {
			events = -ENOMEM;
			goto unlock;
		}
		events++;
	}
	set_epoch(room, &snap->epoch, snap->seq);
unlock:
	pthread_rwlock_unlock(&r->lock);
	return events;
}
