/*
 * A worker's inbox and connection scheduler (sb_inbox.h).
 */
#include "sb_inbox.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* The inbox whose owner the calling thread is, if any. */
static _Thread_local struct sb_inbox *bound;

/* Whether nothing is posted.  {lock} */
static bool empty_locked(const struct sb_inbox *in)
{
	return !in->posted && !in->nfds && !in->drain_req && !in->stop_req;
}

static void schedule(struct sb_sched *sched, struct sb_conn *c)
{
	struct sb_inbox *in = (struct sb_inbox *)sched;
	bool wake;

	/* already listed: the owner will look at it and see this send too */
	if (atomic_exchange(&c->listed, true))
		return;
	sb_conn_ref(c);
	if (bound == in) {
		c->ready_next = in->own;
		in->own = c;
		in->kick(in->arg);
		return;
	}
	pthread_mutex_lock(&in->lock);
	wake = empty_locked(in);
	c->ready_next = in->posted;
	in->posted = c;
	pthread_mutex_unlock(&in->lock);
	if (wake)
		in->wake(in->arg);
}

int sb_inbox_init(struct sb_inbox *in, void (*wake)(void *arg),
		  void (*kick)(void *arg), void *arg)
{
	int rc;

	*in = (struct sb_inbox){ .wake = wake, .kick = kick, .arg = arg };
	in->sched.schedule = schedule;
	rc = pthread_mutex_init(&in->lock, NULL);
	return -rc;
}

void sb_inbox_bind(struct sb_inbox *in)
{
	bound = in;
}

/* Posts one request under the lock and wakes the owner if the inbox was
 * empty. */
static void post_flag(struct sb_inbox *in, bool drain)
{
	bool wake;

	pthread_mutex_lock(&in->lock);
	wake = empty_locked(in);
	in->closed = true;
	if (drain)
		in->drain_req = true;
	else
		in->stop_req = true;
	pthread_mutex_unlock(&in->lock);
	if (wake)
		in->wake(in->arg);
}

int sb_inbox_post_fd(struct sb_inbox *in, int fd, const struct sb_addr *peer)
{
	bool wake;

	pthread_mutex_lock(&in->lock);
	if (in->closed) {
		pthread_mutex_unlock(&in->lock);
		return -ESHUTDOWN;
	}
	if (in->nfds == in->fds_cap) {
		size_t ncap = in->fds_cap ? in->fds_cap * 2 : 16;
		struct sb_handoff *n = realloc(in->fds, ncap * sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&in->lock);
			return -ENOMEM;
		}
		in->fds = n;
		in->fds_cap = ncap;
	}
	wake = empty_locked(in);
	in->fds[in->nfds].fd = fd;
	in->fds[in->nfds].peer = *peer;
	in->nfds++;
	pthread_mutex_unlock(&in->lock);
	if (wake)
		in->wake(in->arg);
	return 0;
}

void sb_inbox_post_drain(struct sb_inbox *in)
{
	post_flag(in, true);
}

void sb_inbox_post_stop(struct sb_inbox *in)
{
	post_flag(in, false);
}

void sb_inbox_take(struct sb_inbox *in, struct sb_inbox_batch *b)
{
	pthread_mutex_lock(&in->lock);
	b->fds = in->fds;
	b->nfds = in->nfds;
	b->posted = in->posted;
	b->drain = in->drain_req;
	b->stop = in->stop_req;
	in->fds = NULL;
	in->nfds = in->fds_cap = 0;
	in->posted = NULL;
	in->drain_req = in->stop_req = false;
	pthread_mutex_unlock(&in->lock);
}

struct sb_conn *sb_inbox_take_own(struct sb_inbox *in)
{
	struct sb_conn *c = in->own;

	in->own = NULL;
	return c;
}

void sb_inbox_serve(struct sb_conn *list,
		    void (*serve)(void *arg, struct sb_conn *c), void *arg)
{
	while (list) {
		struct sb_conn *next = list->ready_next;

		/* cleared before looking, so that a later send lists it again */
		atomic_store(&list->listed, false);
		if (serve)
			serve(arg, list);
		sb_conn_unref(list);
		list = next;
	}
}

void sb_inbox_release(struct sb_inbox *in)
{
	struct sb_inbox_batch b;

	sb_inbox_take(in, &b);
	for (size_t i = 0; i < b.nfds; i++)
		close(b.fds[i].fd);
	free(b.fds);
	sb_inbox_serve(b.posted, NULL, NULL);
	sb_inbox_serve(sb_inbox_take_own(in), NULL, NULL);
	pthread_mutex_destroy(&in->lock);
}
