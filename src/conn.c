#include "sb_conn.h"

#include "sb_cluster.h"

#include <errno.h>
#include <stdlib.h>

struct sb_conn *sb_conn_new(struct sb_sched *sched, size_t max_backlog)
{
	struct sb_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return NULL;
	}
	atomic_init(&c->refs, 1);
	atomic_init(&c->dead, false);
	atomic_init(&c->listed, false);
	c->sched = sched;
	c->max_backlog = max_backlog;
	sb_queue_init(&c->q);
	return c;
}

void sb_conn_set_depth(struct sb_conn *c, struct sb_qdepth *depth)
{
	c->depth = depth;
}

/* Adds to the depth gauges; caller holds c->lock (or the last reference). */
static void account(struct sb_conn *c, long msgs, long bytes)
{
	if (c->depth && msgs) {
		atomic_fetch_add_explicit(&c->depth->msgs, msgs, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->depth->bytes, bytes, memory_order_relaxed);
	}
}

/* Drops everything queued; caller holds c->lock. */
static void clear_locked(struct sb_conn *c)
{
	account(c, -(long)c->q.count, -(long)c->q.bytes);
	sb_queue_clear(&c->q);
}

void sb_conn_unref(struct sb_conn *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	clear_locked(c);
	sb_queue_release(&c->q);
	sb_join_answer_free(c->answer);
	pthread_mutex_destroy(&c->lock);
	free(c->id);
	free(c->nick);
	free(c);
}

/* Caller holds c->lock. */
static void evict_locked(struct sb_conn *c)
{
	atomic_store_explicit(&c->dead, true, memory_order_relaxed);
	c->overflow = true;
	clear_locked(c);
}

void sb_conn_evict(struct sb_conn *c)
{
	bool notify = false;

	pthread_mutex_lock(&c->lock);
	if (!atomic_load_explicit(&c->dead, memory_order_relaxed)) {
		evict_locked(c);
		notify = true;	/* see sb_conn_send */
		c->scheduled = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (notify)
		c->sched->schedule(c->sched, c);
}

int sb_conn_send(struct sb_conn *c, struct sb_msg *m)
{
	bool notify = false;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (atomic_load_explicit(&c->dead, memory_order_relaxed)) {
		rc = -EPIPE;
	} else if ((c->q.count && c->q.bytes + m->len > c->max_backlog) ||
		   sb_queue_push(&c->q, m)) {
		evict_locked(c);
		rc = -ENOBUFS;
		/* Always tell the owner about a kill, even if it was told of
		 * output already: it may be waiting for a socket that will
		 * never become writable (that is why the queue filled up). */
		notify = true;
		c->scheduled = true;
	} else {
		sb_msg_ref(m);
		account(c, 1, (long)m->len);
		if (!c->scheduled) {
			c->scheduled = true;
			notify = true;
		}
	}
	pthread_mutex_unlock(&c->lock);

	if (notify)
		c->sched->schedule(c->sched, c);
	return rc;
}

size_t sb_conn_take(struct sb_conn *c, struct sb_msg **out, size_t max,
		    size_t budget, bool *overflow, bool *more)
{
	size_t n = 0, bytes = 0;

	pthread_mutex_lock(&c->lock);
	*overflow = c->overflow;
	while (!c->overflow && n < max && c->q.count) {
		struct sb_msg *head = c->q.ring[c->q.head];

		if (n && bytes + head->len > budget)
			break;
		bytes += head->len;
		out[n++] = sb_queue_pop(&c->q);
	}
	account(c, -(long)n, -(long)bytes);
	*more = c->q.count != 0;
	if (!*more)
		c->scheduled = false;	/* the next send must tell the owner */
	pthread_mutex_unlock(&c->lock);
	return n;
}

struct sb_msg *sb_conn_next(struct sb_conn *c, bool *overflow, bool *more)
{
	struct sb_msg *m = NULL;

	sb_conn_take(c, &m, 1, 0, overflow, more);
	return m;
}

void sb_conn_seal(struct sb_conn *c)
{
	pthread_mutex_lock(&c->lock);
	atomic_store_explicit(&c->dead, true, memory_order_relaxed);
	clear_locked(c);
	pthread_mutex_unlock(&c->lock);
}

size_t sb_conn_backlog(struct sb_conn *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->q.bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void sb_conn_displace(struct sb_conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->displaced = true;
	pthread_mutex_unlock(&c->lock);
	sb_conn_evict(c);
}

bool sb_conn_displaced(struct sb_conn *c)
{
	bool d;

	pthread_mutex_lock(&c->lock);
	d = c->displaced;
	pthread_mutex_unlock(&c->lock);
	return d;
}

void sb_conn_answer(struct sb_conn *c, struct sb_join_answer *a)
{
	struct sb_join_answer *old;

	pthread_mutex_lock(&c->lock);
	old = c->answer;
	c->answer = a;
	pthread_mutex_unlock(&c->lock);
	sb_join_answer_free(old);	/* one join is asked at a time */
	c->sched->schedule(c->sched, c);
}

struct sb_join_answer *sb_conn_take_answer(struct sb_conn *c)
{
	struct sb_join_answer *a;

	pthread_mutex_lock(&c->lock);
	a = c->answer;
	c->answer = NULL;
	pthread_mutex_unlock(&c->lock);
	return a;
}
