/*
 * Many threads at once on one registry, the way workers use it.
 *
 * Each thread plays a worker: it owns a set of connection slots, and only
 * it joins, leaves, relays for and kills its own connections (the thread
 * rule of sb_registry.h and sb_conn.h).  Any thread may send directly to
 * or doom any connection.  Each thread owns a real inbox (sb_inbox.h), the
 * scheduler of its connections: what other threads schedule is posted and
 * wakes the owner (a condition variable here), what the owner schedules
 * itself goes on its own list with a kick (a flag).  Between operations
 * the owner takes what it was woken or kicked for and serves it with
 * sb_inbox_serve(), checking everything it receives:
 *
 *   - a connection is on at most one list at once, and only on its
 *     owner's, though two schedule calls for one connection may overlap
 *     (sb_conn.h): every list taken holds it at most once, never on the
 *     posted list and the own list together, and marked listed;
 *   - the owner is woken only when its inbox goes from empty to non-empty:
 *     each wake is matched by exactly one take that found something (the
 *     owner takes only when woken), and there are no more wakes than
 *     posts; every schedule by the owner's own thread comes with a kick;
 *   - "joined", "join" and "leave" keep a consistent view of the room: ids
 *     unique, a leave only for a present peer;
 *   - a relayed message comes from a peer the receiver has seen join and
 *     not yet leave (join before messages, leave after them), from the
 *     receiver's room, and a targeted one is for the receiver's id;
 *   - from each sender, targeted and broadcast messages arrive without
 *     gaps or duplicates within one membership of the receiver, and direct
 *     sends arrive exactly once, in order, from the first on (as long as
 *     the receiver lives);
 *
 * After the run, each owner passes a message around a ring of the
 * threads, sleeping until its inbox wakes it: a wake is never lost.  At
 * the end, when everybody has left: the registry is empty, every queue is
 * empty, nothing is left posted or listed, and every message is back to
 * the single reference its creator kept (ASan's leak check covers the
 * events the registry made).
 *
 * The run stops after a fixed number of operations or a time limit,
 * whichever comes first, so that it stays short under the sanitizers.
 */
#include "check.h"

#include "sb_conn.h"
#include "sb_inbox.h"
#include "sb_msg.h"
#include "sb_registry.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <time.h>

enum {
	NTHREADS = 8,
	SLOTS_PER_THREAD = 6,
	NSLOTS = NTHREADS * SLOTS_PER_THREAD,
	NROOMS = 4,
	NIDS = 12,
	MAX_ROOM_PEERS = 10,	/* 48 connections in 4 rooms: rooms fill */
	TOTAL_OPS = 200000,
	MAX_BACKLOG = 256 * 1024,
	NICK_LEN = 24,
	RING_ROUNDS = 200,
};

#define TIME_LIMIT_S 12.0
/* How long an owner may sleep for a wake before the test calls it lost. */
#define WAKE_LIMIT_S 30

/* The bytes of a relayed message (a test format: not JSON). */
struct relay_body {
	char tag;		/* 'R' */
	char kind;		/* 't' targeted, 'b' broadcast */
	uint8_t room;
	uint8_t to;		/* receiver id for 't' */
	uint8_t from_id;	/* the sender's id */
	uint8_t pad[3];
	uint32_t slot, gen;	/* the sending connection */
	uint32_t seq;
};

/* The bytes of a direct send (sb_conn_send outside the registry). */
struct direct_body {
	char tag;		/* 'D' */
	uint8_t pad[3];
	uint32_t from_thread;
	uint32_t seq;
};

/* What the test knows about one connection object (c->owner_data). */
struct cinfo {
	int thread;		/* immutable: the owner */
	int slot;		/* immutable */
	uint32_t gen;		/* immutable: which connection of the slot */
	char nick[NICK_LEN];	/* immutable: "s<slot>g<gen>" */
	struct cinfo *next;	/* owner only: every cinfo it made */
	bool taken;		/* owner only: on a list taken, not yet served */

	/* the receiving side, owner only */
	bool checking;		/* until it dies or is retired */
	int epoch_room;		/* from the last "joined"; -1 before */
	int epoch_id;
	char view[NIDS][NICK_LEN];	/* nick by id in that room; "" absent */
	struct {
		uint32_t gen, last;
		bool have;
	} rx_t[NSLOTS], rx_b[NSLOTS];
	struct {
		uint32_t last;
		bool have;
	} rx_d[NTHREADS];
};

struct slot {
	pthread_mutex_t lock;	/* guards conn against the owner replacing it */
	struct sb_conn *conn;	/* {lock}: written by the owner under it */

	/* owner only */
	struct cinfo *ci;
	uint32_t gen;
	int room, id;		/* -1 while not joined */
	bool dead;		/* the owner knows it is dead */
	uint32_t tseq[NROOMS][NIDS];	/* next targeted seq by (room, id) */
	uint32_t bseq[NROOMS];		/* next broadcast seq by room */
};

#define STATS(X)                                                              \
	X(ops) X(joins) X(eexist) X(enospc) X(leaves) X(relays_t)             \
	X(relays_b) X(enoent) X(directs) X(dooms) X(kills) X(closes)          \
	X(overflows) X(rx_t) X(rx_b) X(rx_d) X(rx_events) X(drains)           \
	X(takes) X(empty_takes) X(posted) X(own) X(kicks)

struct stats {
#define STATS_FIELD(name) unsigned long name;
	STATS(STATS_FIELD)
#undef STATS_FIELD
};

struct worker {
	struct sb_inbox inbox;	/* its connections' scheduler */
	int index;
	pthread_t th;

	/* The wake: a sender sets woken and signals; the owner clears it
	 * before it takes, so a post after the take wakes it again. */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	bool woken;		/* {wlock} */
	atomic_ulong wakes;	/* calls of wake, from any thread */

	/* the worker's own thread only */
	bool kicked;		/* its own list has something */
	unsigned long ring_base;	/* rx_d when the ring began */
	struct check_rng rng;
	struct json_tokener *tok;
	struct cinfo *cinfos;
	struct sb_msg **kept;	/* every message it made, one ref each */
	size_t nkept, capkept;
	struct {
		uint32_t gen, next;
		bool valid;
	} dseq[NSLOTS];		/* next direct seq by target (slot, gen) */
	struct stats st;
};

static struct sb_registry *reg;
static struct slot slots[NSLOTS];
static struct worker workers[NTHREADS];
static pthread_barrier_t barrier;
static struct timespec started;
static char room_names[NROOMS][32];
static char id_names[NIDS][32];

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - started.tv_sec) +
	       (double)(now.tv_nsec - started.tv_nsec) / 1e9;
}

/* ---- the owner side: its inbox ---- */

/* The worker whose thread this is. */
static _Thread_local struct worker *self;

/* The inbox's wake: any thread, no lock of the inbox held. */
static void wake_cb(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->wlock);
	w->woken = true;
	pthread_cond_signal(&w->wcond);
	pthread_mutex_unlock(&w->wlock);
	atomic_fetch_add(&w->wakes, 1);
}

/* The inbox's kick: only the owner schedules on its own list. */
static void kick_cb(void *arg)
{
	struct worker *w = arg;

	CHECK(self == w);
	w->kicked = true;
	w->st.kicks++;
}

/* Sleeps until woken (at once if it was since the last take). */
static void wait_woken(struct worker *w)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAKE_LIMIT_S;
	pthread_mutex_lock(&w->wlock);
	while (!w->woken) {
		int rc = pthread_cond_timedwait(&w->wcond, &w->wlock, &deadline);

		if (rc == ETIMEDOUT)
			CHECK(!"a wake came before the time limit");
		CHECK(rc == 0);
	}
	pthread_mutex_unlock(&w->wlock);
}

static int index_of(const char *s, size_t len, const char *prefix, int limit)
{
	size_t pl = strlen(prefix);
	int v = 0;

	CHECK(len > pl && len < pl + 4);
	CHECK(!memcmp(s, prefix, pl));
	for (size_t i = pl; i < len; i++) {
		CHECK(s[i] >= '0' && s[i] <= '9');
		v = v * 10 + (s[i] - '0');
	}
	CHECK(v < limit);
	return v;
}

static const char *str_member(struct json_object *o, const char *name,
			      size_t *len)
{
	struct json_object *v;

	CHECK(json_object_object_get_ex(o, name, &v));
	CHECK(json_object_is_type(v, json_type_string));
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* Copies a nick (checked to fit) NUL-terminated into out. */
static void copy_nick(char *out, const char *nick, size_t len)
{
	CHECK(len > 0 && len < NICK_LEN);
	memcpy(out, nick, len);
	out[len] = '\0';
}

static void receive_event(struct worker *w, struct cinfo *ci,
			  const struct sb_msg *m)
{
	struct json_object *root, *payload;
	const char *type, *id, *nick;
	size_t tl, il, nl;
	int idx;

	json_tokener_reset(w->tok);
	root = json_tokener_parse_ex(w->tok, m->data, (int)m->len);
	CHECK(root != NULL);
	CHECK_EQ_SIZE(json_tokener_get_parse_end(w->tok), m->len);
	type = str_member(root, "type", &tl);
	CHECK(json_object_object_get_ex(root, "payload", &payload));
	id = str_member(payload, "id", &il);
	nick = str_member(payload, "nick", &nl);
	idx = index_of(id, il, "peer-", NIDS);

	if (tl == 6 && !memcmp(type, "joined", 6)) {
		struct json_object *peers;
		const char *room;
		size_t rl;

		/* a new membership: the view is the roster */
		CHECK_EQ_MEM(nick, nl, ci->nick, strlen(ci->nick));
		room = str_member(payload, "room", &rl);
		ci->epoch_room = index_of(room, rl, "room-", NROOMS);
		ci->epoch_id = idx;
		memset(ci->view, 0, sizeof(ci->view));
		memset(ci->rx_t, 0, sizeof(ci->rx_t));
		memset(ci->rx_b, 0, sizeof(ci->rx_b));
		CHECK(json_object_object_get_ex(payload, "peers", &peers));
		CHECK(json_object_array_length(peers) < MAX_ROOM_PEERS);
		for (size_t i = 0; i < json_object_array_length(peers); i++) {
			struct json_object *p = json_object_array_get_idx(peers, i);
			const char *pid = str_member(p, "id", &il);
			const char *pnick = str_member(p, "nick", &nl);
			int pidx = index_of(pid, il, "peer-", NIDS);

			CHECK(pidx != ci->epoch_id);
			CHECK(ci->view[pidx][0] == '\0');	/* unique ids */
			copy_nick(ci->view[pidx], pnick, nl);
		}
	} else if (tl == 4 && !memcmp(type, "join", 4)) {
		CHECK(ci->epoch_room >= 0);
		CHECK(idx != ci->epoch_id);
		CHECK(ci->view[idx][0] == '\0');	/* id taken twice */
		copy_nick(ci->view[idx], nick, nl);
	} else if (tl == 5 && !memcmp(type, "leave", 5)) {
		CHECK(ci->epoch_room >= 0);
		/* exactly one leave for a present peer */
		CHECK_EQ_MEM(ci->view[idx], strlen(ci->view[idx]), nick, nl);
		ci->view[idx][0] = '\0';
	} else {
		CHECK(!"an event of a known type");
	}
	json_object_put(root);
	w->st.rx_events++;
}

static void receive_relay(struct worker *w, struct cinfo *ci,
			  const struct sb_msg *m)
{
	struct relay_body b;
	char sender[NICK_LEN];

	CHECK_EQ_SIZE(m->len, sizeof(b));
	memcpy(&b, m->data, sizeof(b));
	CHECK(b.slot < NSLOTS);
	CHECK(b.slot != (uint32_t)ci->slot || b.gen != ci->gen);	/* not to self */
	/* from the receiver's room, from a peer it knows to be there */
	CHECK(ci->epoch_room >= 0);
	CHECK_EQ_INT(b.room, ci->epoch_room);
	CHECK(b.from_id < NIDS);
	snprintf(sender, sizeof(sender), "s%ug%u", b.slot, b.gen);
	if (strcmp(ci->view[b.from_id], sender)) {
		fprintf(stderr, "  message from %s as peer-%u, whom the receiver "
			"knows as '%s'\n", sender, b.from_id, ci->view[b.from_id]);
		CHECK(!"relays come between the sender's join and leave");
	}
	if (b.kind == 't') {
		CHECK_EQ_INT(b.to, ci->epoch_id);
		if (ci->rx_t[b.slot].have && ci->rx_t[b.slot].gen == b.gen)
			CHECK_EQ_INT(b.seq, ci->rx_t[b.slot].last + 1);
		ci->rx_t[b.slot].have = true;
		ci->rx_t[b.slot].gen = b.gen;
		ci->rx_t[b.slot].last = b.seq;
		w->st.rx_t++;
	} else {
		CHECK_EQ_INT(b.kind, 'b');
		if (ci->rx_b[b.slot].have && ci->rx_b[b.slot].gen == b.gen)
			CHECK_EQ_INT(b.seq, ci->rx_b[b.slot].last + 1);
		ci->rx_b[b.slot].have = true;
		ci->rx_b[b.slot].gen = b.gen;
		ci->rx_b[b.slot].last = b.seq;
		w->st.rx_b++;
	}
}

static void receive_direct(struct worker *w, struct cinfo *ci,
			   const struct sb_msg *m)
{
	struct direct_body b;

	CHECK_EQ_SIZE(m->len, sizeof(b));
	memcpy(&b, m->data, sizeof(b));
	CHECK(b.from_thread < NTHREADS);
	/* exactly once and in order, from the first */
	CHECK_EQ_INT(b.seq, ci->rx_d[b.from_thread].have
				    ? ci->rx_d[b.from_thread].last + 1 : 0);
	ci->rx_d[b.from_thread].have = true;
	ci->rx_d[b.from_thread].last = b.seq;
	w->st.rx_d++;
}

static void receive(struct worker *w, struct cinfo *ci, const struct sb_msg *m)
{
	CHECK(m->len > 0);
	if (!ci->checking)
		return;
	switch (m->data[0]) {
	case '{':
		receive_event(w, ci, m);
		break;
	case 'R':
		receive_relay(w, ci, m);
		break;
	case 'D':
		receive_direct(w, ci, m);
		break;
	default:
		CHECK(!"a message of a known kind");
	}
}

/* Marks each connection of a list taken: one on two lists at once, or
 * twice on one, or on another owner's, is caught here.  Returns how many. */
static unsigned long mark_taken(struct worker *w, struct sb_conn *list)
{
	unsigned long n = 0;

	for (struct sb_conn *c = list; c; c = c->ready_next) {
		struct cinfo *ci = c->owner_data;

		CHECK(ci != NULL);
		CHECK_EQ_INT(ci->thread, w->index);
		CHECK(atomic_load(&c->listed));
		CHECK(!ci->taken);
		ci->taken = true;
		n++;
	}
	return n;
}

/* sb_inbox_serve()'s callback: drains c as a worker's writer would. */
static void serve_conn(void *arg, struct sb_conn *c)
{
	struct worker *w = arg;
	struct cinfo *ci = c->owner_data;
	struct sb_msg *m;
	bool overflow, more;

	CHECK(ci->taken);
	ci->taken = false;
	do {
		m = sb_conn_next(c, &overflow, &more);
		if (m) {
			receive(w, ci, m);
			sb_msg_unref(m);
		}
	} while (more);
	if (overflow) {
		CHECK(m == NULL);
		CHECK(sb_conn_is_dead(c));
		ci->checking = false;
		if (slots[ci->slot].ci == ci)
			slots[ci->slot].dead = true;
		w->st.overflows++;
	}
}

/* Takes what the owner was kicked or woken for, both lists before
 * serving either, and serves them. */
static void serve_inbox(struct worker *w)
{
	struct sb_inbox_batch b;
	struct sb_conn *own = NULL;
	bool woken;

	memset(&b, 0, sizeof(b));
	if (w->kicked) {
		w->kicked = false;
		own = sb_inbox_take_own(&w->inbox);
		CHECK(own != NULL);
	} else {
		CHECK(w->inbox.own == NULL);	/* every own schedule kicks */
	}
	pthread_mutex_lock(&w->wlock);
	woken = w->woken;
	w->woken = false;	/* before the take: a later post wakes again */
	pthread_mutex_unlock(&w->wlock);
	if (woken) {
		sb_inbox_take(&w->inbox, &b);
		CHECK_EQ_SIZE(b.nfds, 0);
		CHECK(b.fds == NULL);
		CHECK(!b.drain && !b.stop);
		if (b.posted)
			w->st.takes++;
		else
			w->st.empty_takes++;	/* woken for what was taken */
	}
	w->st.own += mark_taken(w, own);
	w->st.posted += mark_taken(w, b.posted);
	sb_inbox_serve(b.posted, serve_conn, w);
	sb_inbox_serve(own, serve_conn, w);
	w->st.drains++;
}

/* ---- the owner side: its connections ---- */

static void keep(struct worker *w, struct sb_msg *m)
{
	if (w->nkept == w->capkept) {
		size_t ncap = w->capkept ? w->capkept * 2 : 1024;
		struct sb_msg **n = realloc(w->kept, ncap * sizeof(*n));

		CHECK(n != NULL);
		w->kept = n;
		w->capkept = ncap;
	}
	w->kept[w->nkept++] = m;
}

/* Gives slot s a fresh connection (the next generation). */
static void slot_fresh(struct worker *w, struct slot *s, int index)
{
	struct cinfo *ci = calloc(1, sizeof(*ci));
	struct sb_conn *c, *old;

	CHECK(ci != NULL);
	ci->thread = w->index;
	ci->slot = index;
	ci->gen = s->conn ? s->gen + 1 : 0;
	snprintf(ci->nick, sizeof(ci->nick), "s%dg%u", index, ci->gen);
	ci->checking = true;
	ci->epoch_room = ci->epoch_id = -1;
	ci->next = w->cinfos;
	w->cinfos = ci;

	c = sb_conn_new(&w->inbox.sched, MAX_BACKLOG);
	CHECK(c != NULL);
	c->owner_data = ci;

	pthread_mutex_lock(&s->lock);
	old = s->conn;
	s->conn = c;
	pthread_mutex_unlock(&s->lock);

	s->ci = ci;
	s->gen = ci->gen;
	s->room = s->id = -1;
	s->dead = false;
	memset(s->tseq, 0, sizeof(s->tseq));
	memset(s->bseq, 0, sizeof(s->bseq));
	if (old)
		sb_conn_unref(old);
}

/* The connection closes: it leaves (the others are told), dies, and the
 * slot gets a new one. */
static void slot_close(struct worker *w, struct slot *s, int index)
{
	if (s->room >= 0) {
		CHECK_EQ_INT(sb_registry_leave(reg, s->conn, true), 0);
		s->room = -1;
		w->st.leaves++;
	}
	sb_conn_seal(s->conn);
	s->ci->checking = false;
	slot_fresh(w, s, index);
}

static void op_join(struct worker *w, struct slot *s)
{
	int room = (int)check_rng_below(&w->rng, NROOMS);
	int id = (int)check_rng_below(&w->rng, NIDS);
	int rc;

	rc = sb_registry_join(reg, s->conn, room_names[room], strlen(room_names[room]),
			      id_names[id], strlen(id_names[id]), s->ci->nick,
			      strlen(s->ci->nick));
	if (rc == 0) {
		s->room = room;
		s->id = id;
		w->st.joins++;
	} else if (rc == -EEXIST) {
		w->st.eexist++;
	} else {
		CHECK_EQ_INT(rc, -ENOSPC);
		w->st.enospc++;
	}
	CHECK_EQ_INT(s->conn->room != NULL, rc == 0);
}

static void op_relay(struct worker *w, struct slot *s, int index, bool targeted)
{
	struct relay_body b;
	struct sb_msg *m;
	int rc;

	memset(&b, 0, sizeof(b));
	b.tag = 'R';
	b.kind = targeted ? 't' : 'b';
	b.room = (uint8_t)s->room;
	b.from_id = (uint8_t)s->id;
	b.slot = (uint32_t)index;
	b.gen = s->gen;
	if (targeted) {
		b.to = (uint8_t)check_rng_below(&w->rng, NIDS);
		b.seq = s->tseq[s->room][b.to];
	} else {
		b.seq = s->bseq[s->room];
	}
	m = sb_msg_from(&b, sizeof(b));
	CHECK(m != NULL);
	if (targeted) {
		rc = sb_registry_relay(reg, s->conn, id_names[b.to],
				       strlen(id_names[b.to]), m);
		if (b.to == s->id)
			CHECK_EQ_INT(rc, -ENOENT);	/* the sender itself */
		if (rc == 1) {
			s->tseq[s->room][b.to]++;
		} else {
			CHECK_EQ_INT(rc, -ENOENT);
			w->st.enoent++;
		}
		w->st.relays_t++;
	} else {
		rc = sb_registry_relay(reg, s->conn, NULL, 0, m);
		CHECK(rc >= 0 && rc < MAX_ROOM_PEERS);
		s->bseq[s->room]++;
		w->st.relays_b++;
	}
	keep(w, m);
}

/* Takes a reference to whatever connection slot t holds now. */
static struct sb_conn *grab(int t)
{
	struct sb_conn *c;

	pthread_mutex_lock(&slots[t].lock);
	c = sb_conn_ref(slots[t].conn);
	pthread_mutex_unlock(&slots[t].lock);
	return c;
}

/* Sends directly to whatever connection slot t holds; whether it took the
 * message. */
static bool send_direct(struct worker *w, int t)
{
	struct sb_conn *c = grab(t);
	struct cinfo *ci = c->owner_data;
	struct direct_body b;
	struct sb_msg *m;
	int rc;

	if (!w->dseq[t].valid || w->dseq[t].gen != ci->gen) {
		w->dseq[t].valid = true;
		w->dseq[t].gen = ci->gen;
		w->dseq[t].next = 0;
	}
	memset(&b, 0, sizeof(b));
	b.tag = 'D';
	b.from_thread = (uint32_t)w->index;
	b.seq = w->dseq[t].next;
	m = sb_msg_from(&b, sizeof(b));
	CHECK(m != NULL);
	rc = sb_conn_send(c, m);
	if (rc == 0)
		w->dseq[t].next++;
	else
		CHECK(rc == -EPIPE || rc == -ENOBUFS);
	/* any thread may read the backlog, which never passes the bound
	 * (these messages are all far smaller than it) */
	CHECK(sb_conn_backlog(c) <= MAX_BACKLOG);
	keep(w, m);
	sb_conn_unref(c);
	w->st.directs++;
	return rc == 0;
}

static void op_direct(struct worker *w)
{
	send_direct(w, (int)check_rng_below(&w->rng, NSLOTS));
}

static void op_doom(struct worker *w)
{
	struct sb_conn *c = grab((int)check_rng_below(&w->rng, NSLOTS));

	sb_conn_evict(c);
	CHECK(sb_conn_is_dead(c));
	CHECK_EQ_SIZE(sb_conn_backlog(c), 0);	/* its queue was dropped */
	sb_conn_unref(c);
	w->st.dooms++;
}

/*
 * Each owner sends to the next thread's first connection and sleeps until
 * its own has what the previous thread sent, round after round: it relies
 * on the inbox's wake alone, so a lost wake stalls the ring.
 */
static void ring(struct worker *w)
{
	int next = (w->index + 1) % NTHREADS;

	w->ring_base = w->st.rx_d;
	for (unsigned long r = 1; r <= RING_ROUNDS; r++) {
		CHECK(send_direct(w, next * SLOTS_PER_THREAD));
		for (;;) {
			serve_inbox(w);
			if (w->st.rx_d >= w->ring_base + r)
				break;
			wait_woken(w);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned long budget = TOTAL_OPS / NTHREADS;
	struct slot *mine = &slots[w->index * SLOTS_PER_THREAD];

	self = w;
	sb_inbox_bind(&w->inbox);
	w->tok = json_tokener_new();
	CHECK(w->tok != NULL);
	pthread_barrier_wait(&barrier);

	for (unsigned long op = 0; op < budget; op++) {
		int k = (int)check_rng_below(&w->rng, SLOTS_PER_THREAD);
		int index = w->index * SLOTS_PER_THREAD + k;
		struct slot *s = &mine[k];
		uint32_t r = check_rng_below(&w->rng, 1000);

		if ((op & 127) == 0 && elapsed() > TIME_LIMIT_S)
			break;
		if ((op & 63) == 0) {
			/* any thread may count, at any time */
			size_t rooms, peers;

			sb_registry_counts(reg, &rooms, &peers);
			CHECK(rooms <= NROOMS && peers <= NSLOTS);
			CHECK(rooms <= peers);
		}
		if (r < 50) {
			op_direct(w);
		} else if (s->dead) {
			slot_close(w, s, index);
			w->st.closes++;
		} else if (s->room < 0) {
			op_join(w, s);
		} else if (r < 420) {
			op_relay(w, s, index, true);
		} else if (r < 720) {
			op_relay(w, s, index, false);
		} else if (r < 800) {
			CHECK_EQ_INT(sb_registry_leave(reg, s->conn, true), 0);
			s->room = -1;
			w->st.leaves++;
		} else if (r < 810) {
			op_doom(w);
		} else if (r < 815) {
			sb_conn_seal(s->conn);	/* the owner's own close */
			s->ci->checking = false;
			s->dead = true;
			w->st.kills++;
		} else if (r < 825) {
			slot_close(w, s, index);	/* the client went away */
			w->st.closes++;
		}
		serve_inbox(w);
		w->st.ops++;
	}

	/* everyone stops, then everyone leaves, then the last events are
	 * served: nothing but the ring sends after the second barrier, and
	 * every wake for what was sent before it has been called */
	pthread_barrier_wait(&barrier);
	serve_inbox(w);
	for (int k = 0; k < SLOTS_PER_THREAD; k++) {
		struct slot *s = &mine[k];

		if (s->room >= 0) {
			CHECK_EQ_INT(sb_registry_leave(reg, s->conn, true), 0);
			s->room = -1;
		}
		serve_inbox(w);
	}
	pthread_barrier_wait(&barrier);
	serve_inbox(w);
	if (mine[0].dead)
		slot_close(w, &mine[0], w->index * SLOTS_PER_THREAD);
	pthread_barrier_wait(&barrier);
	ring(w);
	pthread_barrier_wait(&barrier);
	serve_inbox(w);
	/* one a round from the previous thread, no more */
	CHECK_EQ_INT(w->st.rx_d - w->ring_base, RING_ROUNDS);
	pthread_barrier_wait(&barrier);
	json_tokener_free(w->tok);
	return NULL;
}

static void test_many_threads(void)
{
	struct stats sum;
	unsigned long made = 0, sum_wakes = 0;
	size_t rooms = 99, peers = 99;
	uint64_t seed = check_seed(20240601);

	for (int i = 0; i < NROOMS; i++)
		snprintf(room_names[i], sizeof(room_names[i]), "room-%d", i);
	for (int i = 0; i < NIDS; i++)
		snprintf(id_names[i], sizeof(id_names[i]), "peer-%d", i);
	reg = sb_registry_new(MAX_ROOM_PEERS);
	CHECK(reg != NULL);
	CHECK_EQ_INT(pthread_barrier_init(&barrier, NULL, NTHREADS + 1), 0);
	for (int t = 0; t < NTHREADS; t++) {
		struct worker *w = &workers[t];

		w->index = t;
		CHECK_EQ_INT(sb_inbox_init(&w->inbox, wake_cb, kick_cb, w), 0);
		CHECK_EQ_INT(pthread_mutex_init(&w->wlock, NULL), 0);
		CHECK_EQ_INT(pthread_cond_init(&w->wcond, NULL), 0);
		atomic_init(&w->wakes, 0);
		check_rng_init(&w->rng, seed * 7919 + (uint64_t)t + 1);
		for (int k = 0; k < SLOTS_PER_THREAD; k++) {
			int index = t * SLOTS_PER_THREAD + k;

			CHECK_EQ_INT(pthread_mutex_init(&slots[index].lock, NULL), 0);
			slot_fresh(w, &slots[index], index);
		}
	}
	for (int t = 0; t < NTHREADS; t++)
		CHECK_EQ_INT(pthread_create(&workers[t].th, NULL, worker_main,
					    &workers[t]), 0);
	clock_gettime(CLOCK_MONOTONIC, &started);
	pthread_barrier_wait(&barrier);	/* go */
	pthread_barrier_wait(&barrier);	/* stopped */
	pthread_barrier_wait(&barrier);	/* everyone left */
	pthread_barrier_wait(&barrier);	/* the ring's connections alive */
	pthread_barrier_wait(&barrier);	/* the ring done */
	pthread_barrier_wait(&barrier);	/* drained */
	for (int t = 0; t < NTHREADS; t++)
		CHECK_EQ_INT(pthread_join(workers[t].th, NULL), 0);

	/* the registry is empty */
	sb_registry_counts(reg, &rooms, &peers);
	CHECK_EQ_SIZE(rooms, 0);
	CHECK_EQ_SIZE(peers, 0);

	/* nothing is queued or scheduled, and only the slots hold their
	 * connections */
	for (int i = 0; i < NSLOTS; i++) {
		struct sb_conn *c = slots[i].conn;

		CHECK(c->room == NULL);
		CHECK_EQ_SIZE(sb_conn_backlog(c), 0);
		CHECK(!atomic_load(&c->listed));
		CHECK(!slots[i].ci->taken);
		CHECK_EQ_INT(atomic_load(&c->refs), 1);
	}
	memset(&sum, 0, sizeof(sum));
	for (int t = 0; t < NTHREADS; t++) {
		struct worker *w = &workers[t];
		struct sb_inbox_batch b;
		unsigned long wakes = atomic_load(&w->wakes);

		/* nothing is left posted, and the owner was woken once for
		 * each time its inbox filled */
		sb_inbox_take(&w->inbox, &b);
		CHECK(b.posted == NULL && b.nfds == 0 && !b.drain && !b.stop);
		CHECK(sb_inbox_take_own(&w->inbox) == NULL);
		CHECK(!w->kicked);
		CHECK_EQ_INT(wakes, w->st.takes);
		CHECK(wakes <= w->st.posted);
		CHECK_EQ_INT(w->st.own, w->st.kicks);
		sum_wakes += wakes;
#define STATS_ADD(name) sum.name += w->st.name;
		STATS(STATS_ADD)
#undef STATS_ADD
		/* every message is back to the one reference kept here */
		for (size_t i = 0; i < w->nkept; i++) {
			CHECK_EQ_INT(atomic_load(&w->kept[i]->refs), 1);
			sb_msg_unref(w->kept[i]);
		}
		made += w->nkept;
		free(w->kept);
	}
	printf("%.1f s: %lu ops, %lu joins (%lu id taken, %lu room full), "
	       "%lu leaves, %lu closes, %lu targeted (%lu not found), "
	       "%lu broadcast, %lu direct, %lu dooms, %lu kills, %lu overflows; "
	       "checked %lu targeted, %lu broadcast, %lu direct, %lu events "
	       "in %lu drains; %lu messages made; %lu posted, %lu wakes, "
	       "%lu empty takes, %lu own, %lu kicks\n",
	       elapsed(), sum.ops, sum.joins, sum.eexist, sum.enospc, sum.leaves,
	       sum.closes, sum.relays_t, sum.enoent, sum.relays_b, sum.directs,
	       sum.dooms, sum.kills, sum.overflows, sum.rx_t, sum.rx_b, sum.rx_d,
	       sum.rx_events, sum.drains, made, sum.posted, sum_wakes,
	       sum.empty_takes, sum.own, sum.kicks);

	/* the run did what it is meant to: every path was taken */
	CHECK(sum.ops >= 10000);
	CHECK(sum.joins > 0 && sum.eexist > 0 && sum.enospc > 0);
	CHECK(sum.leaves > 0 && sum.closes > 0 && sum.kills > 0);
	CHECK(sum.dooms > 0 && sum.overflows > 0);
	CHECK(sum.enoent > 0);
	CHECK(sum.rx_t > 0 && sum.rx_b > 0 && sum.rx_d > 0 && sum.rx_events > 0);
	CHECK(sum.posted > 0 && sum.own > 0);

	for (int i = 0; i < NSLOTS; i++) {
		sb_conn_unref(slots[i].conn);
		pthread_mutex_destroy(&slots[i].lock);
	}
	for (int t = 0; t < NTHREADS; t++) {
		struct cinfo *ci = workers[t].cinfos;

		while (ci) {
			struct cinfo *next = ci->next;

			free(ci);
			ci = next;
		}
		sb_inbox_release(&workers[t].inbox);
		pthread_cond_destroy(&workers[t].wcond);
		pthread_mutex_destroy(&workers[t].wlock);
	}
	pthread_barrier_destroy(&barrier);
	sb_registry_free(reg);
}

int main(void)
{
	RUN_TEST(test_many_threads);
	return check_summary();
}
