/*
 * A worker: one thread, one libuv loop, one libwebsockets context
 * (src/transport.c) and the sockets it adopted (src/sock.c).  This file is
 * the thread, the loop and its inbox: what other threads post (sockets to
 * adopt, connections with output, drain and stop), the check phase that
 * runs the worker's own lists, and the tick (heartbeat, drain deadline).
 *
 * Ownership.  struct sb_tp, the lws context and every wsi belong to the
 * worker's thread.  Other threads reach a worker only through its inbox
 * ({lock}) and wake it with uv_async_send() on the inbox's
 * empty-to-non-empty transition, after unlocking.  lws is only called on
 * the worker's own thread, from lws callbacks or from the worker's own
 * libuv callbacks (async, check, timer).
 *
 * Lock order: the registry lock, then a connection's lock, then the inbox
 * lock (the scheduler runs under the first two); the inbox lock is a leaf.
 */
#include "sb_worker.h"

#include "sb_codec.h"
#include "sb_log.h"
#include "sb_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A socket the acceptor hands over, and who is at the other end. */
struct sb_handoff {
	int fd;
	struct sb_addr peer;
};

struct sb_worker {
	char name[24];			/* immutable */
	struct sb_worker_setup setup;	/* immutable */
	pthread_t thread;
	bool started;			/* main only */

	uv_loop_t loop;
	uv_async_t async;		/* the inbox doorbell */
	uv_check_t check;		/* after each poll: own lists */
	uv_idle_t idle;			/* keeps poll from blocking meanwhile */
	uv_timer_t tick;		/* heartbeat, drain deadline */
	unsigned handles;		/* of those, initialized */

	pthread_mutex_t lock;		/* the inbox: */
	struct sb_handoff *fds;		/* {lock} sockets to adopt */
	size_t nfds, fds_cap;		/* {lock} */
	struct sb_conn *posted;		/* {lock} connections with output,
					 * scheduled by other threads */
	bool closed;			/* {lock} takes no more sockets */
	bool drain_req;			/* {lock} */
	bool stop_req;			/* {lock} */
	/* -- end of {lock} */

	/* worker thread only */
	struct sb_sched sched;
	struct sb_conn *own;		/* connections with output, scheduled
					 * by this thread itself */
	struct sb_tp tp;
	bool destroying;
	uint64_t drain_deadline, kill_deadline;	/* ms, loop time */
	uint64_t tick_ms;
};

static _Thread_local struct sb_worker *current;

static void on_idle(uv_idle_t *h)
{
	(void)h;	/* only there so that poll does not block */
}

/* Makes sure the check phase runs soon even if nothing else happens. */
static void kick(struct sb_tp *tp)
{
	struct sb_worker *w = tp->owner;

	if (!uv_is_active((uv_handle_t *)&w->idle))
		uv_idle_start(&w->idle, on_idle);
}

/* ------------------------------------------------------------ the inbox */

/* What another thread can post to a worker. */
enum post {
	POST_FD,			/* a socket to adopt */
	POST_CONN,			/* a connection with output */
	POST_DRAIN,
	POST_STOP,
};

/*
 * Posts to w's inbox and wakes it if the inbox was empty.  Any thread but
 * w's own; the caller may hold the registry and a connection lock.
 * Returns 0, or -ESHUTDOWN (a socket after drain or stop), -ENOMEM.
 */
static int post(struct sb_worker *w, enum post what, int fd,
		const struct sb_addr *peer, struct sb_conn *c)
{
	bool wake;
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	wake = !w->posted && !w->nfds && !w->drain_req && !w->stop_req;
	switch (what) {
	case POST_FD:
		if (w->closed) {
			rc = -ESHUTDOWN;
			break;
		}
		if (w->nfds == w->fds_cap) {
			size_t ncap = w->fds_cap ? w->fds_cap * 2 : 16;
			struct sb_handoff *n = realloc(w->fds, ncap * sizeof(*n));

			if (!n) {
				rc = -ENOMEM;
				break;
			}
			w->fds = n;
			w->fds_cap = ncap;
		}
		w->fds[w->nfds].fd = fd;
		w->fds[w->nfds].peer = *peer;
		w->nfds++;
		atomic_fetch_add(&w->tp.load, 1);
		break;
	case POST_CONN:
		c->ready_next = w->posted;
		w->posted = c;
		break;
	case POST_DRAIN:
		w->closed = true;
		w->drain_req = true;
		break;
	case POST_STOP:
		w->closed = true;
		w->stop_req = true;
		break;
	}
	pthread_mutex_unlock(&w->lock);
	if (wake && !rc)
		uv_async_send(&w->async);
	return rc;
}

/* struct sb_sched: a connection owned by w has output or must close.  Any
 * thread, possibly holding the registry lock and never a connection lock. */
static void schedule(struct sb_sched *sched, struct sb_conn *c)
{
	struct sb_worker *w = (struct sb_worker *)(void *)
		((char *)sched - offsetof(struct sb_worker, sched));

	/* already listed: the owner will look at it and see this send too */
	if (atomic_exchange(&c->listed, true))
		return;
	sb_conn_ref(c);
	if (current == w) {
		c->ready_next = w->own;
		w->own = c;
		kick(&w->tp);
		return;
	}
	post(w, POST_CONN, -1, NULL, c);
}

/* Owner thread, outside any lws callback: writes what a scheduled
 * connection has queued, or closes it when its backlog overflowed; then
 * drops the list's reference, for each connection of the list c. */
static void serve_scheduled(struct sb_conn *c)
{
	while (c) {
		struct sb_conn *next = c->ready_next;
		struct sb_session *sess = c->owner_data;

		/* cleared before looking, so that a later send lists it again */
		atomic_store(&c->listed, false);
		if (sess) {
			struct sb_sock *s = (struct sb_sock *)(void *)
				((char *)sess - offsetof(struct sb_sock, sess));

			if (s->state != SB_SOCK_OPEN)
				;	/* closing: nothing more goes out */
			else if (sb_conn_is_dead(c))
				sb_sock_close(s, SB_CLOSE_POLICY, SB_CAUSE_BACKLOG);
			else
				sb_transport_flush(s);
		}
		sb_conn_unref(c);
		c = next;
	}
}

/* ------------------------------------------------------------ the loop */

/* The check phase: no lws callback is running.  Read-ahead first, so that
 * everything read in this turn of the loop is handled before anything is
 * written. */
static void on_check(uv_check_t *h)
{
	struct sb_worker *w = h->data;

	while (w->tp.stash_list || w->own || w->tp.close_list) {
		struct sb_conn *c;

		sb_readahead_run(&w->tp);
		c = w->own;
		w->own = NULL;
		serve_scheduled(c);
		sb_sock_run_closes(&w->tp);
	}
	uv_idle_stop(&w->idle);
}

static void begin_drain(struct sb_worker *w)
{
	struct sb_tp *tp = &w->tp;
	uint64_t now = sb_tp_now(tp);

	tp->env.draining = true;
	w->drain_deadline = now + (uint64_t)(w->setup.cfg->drain_timeout * 1000);
	w->kill_deadline = w->drain_deadline + 1000;
	for (struct sb_sock *s = tp->open; s; s = s->next) {
		if (s->state != SB_SOCK_OPEN)
			continue;
		if (sb_conn_backlog(s->sess.conn))
			s->drain_close = true;	/* after its queue is written */
		else
			sb_sock_close(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
	}
}

static void close_handles(struct sb_worker *w)
{
	uv_handle_t *hs[] = { (uv_handle_t *)&w->async, (uv_handle_t *)&w->check,
			      (uv_handle_t *)&w->idle, (uv_handle_t *)&w->tick };

	for (unsigned i = 0; i < w->handles; i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
	sb_tp_lists_close(&w->tp);
}

static void on_tick(uv_timer_t *t);

static void on_async(uv_async_t *a)
{
	struct sb_worker *w = a->data;
	struct sb_conn *posted;
	struct sb_handoff *fds;
	size_t nfds;
	bool drain, stop;

	pthread_mutex_lock(&w->lock);
	fds = w->fds;
	nfds = w->nfds;
	posted = w->posted;
	drain = w->drain_req;
	stop = w->stop_req;
	w->posted = NULL;
	w->fds = NULL;
	w->nfds = w->fds_cap = 0;
	w->drain_req = false;
	w->stop_req = false;
	pthread_mutex_unlock(&w->lock);

	for (size_t i = 0; i < nfds; i++)
		sb_sock_adopt(&w->tp, fds[i].fd, &fds[i].peer);
	free(fds);
	serve_scheduled(posted);
	if (drain && !w->tp.env.draining) {
		begin_drain(w);
		uv_timer_start(&w->tick, on_tick, 0, 50);
	}
	if (stop)
		close_handles(w);
}

/* The heartbeat, and the bound on a message begun (sb_liveness.h). */
static void check_liveness(struct sb_worker *w, uint64_t now)
{
	uint64_t interval = (uint64_t)(w->setup.cfg->heartbeat * 1000);

	for (struct sb_sock *s = w->tp.open; s; s = s->next) {
		if (s->state != SB_SOCK_OPEN)
			continue;
		/* frames lws handles itself (pings, pongs) count too */
		if (s->rx.rx_seen) {
			s->rx.rx_seen = false;
			sb_liveness_seen(&s->live, now);
		}
		switch (sb_liveness_tick(&s->live, now, interval,
					 sb_wsguard_unfinished(&s->rx.guard),
					 s->rx.guard.messages)) {
		case SB_LIVE_PING:
			sb_transport_ping(s);
			break;
		case SB_LIVE_DEAD:
			sb_sock_close(s, 0, SB_CAUSE_HEARTBEAT);
			break;
		case SB_LIVE_SLOW:
			sb_sock_close(s, SB_CLOSE_POLICY, SB_CAUSE_LIMIT);
			break;
		default:
			break;
		}
	}
}

/* Heartbeat, drain deadline, and the context's teardown. */
static void on_tick(uv_timer_t *t)
{
	struct sb_worker *w = t->data;
	struct sb_tp *tp = &w->tp;
	uint64_t now = sb_tp_now(tp);

	if (w->destroying) {
		/* with a foreign loop, lws finishes its teardown over several
		 * calls as its handles close; info.pcontext tells when done */
		if (sb_transport_destroy(tp)) {
			uv_timer_stop(&w->tick);
			w->setup.drained(w->setup.arg);
		}
		return;
	}
	if (tp->env.draining) {
		if (now >= w->drain_deadline)
			for (struct sb_sock *s = tp->open; s; s = s->next)
				sb_sock_close(s, SB_CLOSE_GOING_AWAY, SB_CAUSE_SHUTDOWN);
		if (!tp->nopen || now >= w->kill_deadline) {
			w->destroying = true;
			sb_transport_destroy(tp);
		}
		return;
	}
	if (w->setup.cfg->heartbeat > 0)
		check_liveness(w, now);
}

static void *run(void *arg)
{
	struct sb_worker *w = arg;

	current = w;
	sb_log_set_thread_name(w->name);
	sb_log(SB_LOG_INFO, 0, "worker started");
	/* returns once lws is gone and on_async() closed our handles */
	uv_run(&w->loop, UV_RUN_DEFAULT);
	sb_log(SB_LOG_INFO, 0, "worker stopped");
	return NULL;
}

/* Initializes the loop and its handles.  0 or a libuv error. */
static int init_loop(struct sb_worker *w)
{
	int rc = uv_loop_init(&w->loop);

	if (rc)
		return rc;
	w->tp.loop = &w->loop;
	if ((rc = uv_async_init(&w->loop, &w->async, on_async)))
		return rc;
	w->handles++;
	if ((rc = uv_check_init(&w->loop, &w->check)))
		return rc;
	w->handles++;
	if ((rc = uv_idle_init(&w->loop, &w->idle)))
		return rc;
	w->handles++;
	if ((rc = uv_timer_init(&w->loop, &w->tick)))
		return rc;
	w->handles++;
	w->async.data = w->check.data = w->idle.data = w->tick.data = w;
	if ((rc = sb_tp_lists_init(&w->tp)))
		return rc;
	return uv_check_start(&w->check, on_check);
}

struct sb_worker *sb_worker_new(const struct sb_worker_setup *setup, int index)
{
	struct sb_worker *w = calloc(1, sizeof(*w));
	const struct sb_config *cfg = setup->cfg;
	struct sb_tp *tp;
	double hb = cfg->heartbeat;
	int rc;

	if (!w)
		return NULL;
	w->setup = *setup;
	snprintf(w->name, sizeof(w->name), "worker-%d", index);
	w->sched.schedule = schedule;
	tp = &w->tp;
	tp->cfg = cfg;
	tp->edge = setup->edge;
	tp->http_src = setup->http_src;
	tp->kick = kick;
	tp->owner = w;
	tp->sched = &w->sched;
	atomic_init(&tp->load, 0);
	sb_buf_init(&tp->body, 16u << 20);
	tp->env.ops = &sb_sock_session_ops;
	tp->env.reg = setup->reg;
	tp->env.stats = &tp->stats;
	tp->env.max_message = cfg->max_message;
	tp->env.rate = cfg->rate;
	tp->env.codec = sb_codec_new(cfg->max_field);
	rc = pthread_mutex_init(&w->lock, NULL);
	if (rc) {
		sb_log(SB_LOG_ERROR, rc, "%s: cannot make its lock", w->name);
		sb_codec_free(tp->env.codec);
		sb_buf_release(&tp->body);
		free(w);
		return NULL;
	}
	if (!tp->env.codec) {
		sb_log(SB_LOG_ERROR, ENOMEM, "%s", w->name);
		sb_worker_free(w);
		return NULL;
	}
	sb_codec_set_utf8_checked(tp->env.codec, true);	/* the session did */
	rc = init_loop(w);
	if (rc) {
		sb_log(SB_LOG_ERROR, 0, "%s: cannot set up its loop: %s", w->name,
		       uv_strerror(rc));
		sb_worker_free(w);
		return NULL;
	}
	/* the heartbeat resolution: a quarter of the interval, 50 ms to 1 s */
	w->tick_ms = hb > 0 ? (uint64_t)(hb * 250) : 1000;
	if (w->tick_ms < 50)
		w->tick_ms = 50;
	if (w->tick_ms > 1000)
		w->tick_ms = 1000;
	if (hb > 0)
		uv_timer_start(&w->tick, on_tick, w->tick_ms, w->tick_ms);
	if (sb_transport_create(tp, w->name, setup->tls_client_ctx)) {
		sb_worker_free(w);
		return NULL;
	}
	return w;
}

int sb_worker_start(struct sb_worker *w)
{
	int rc = pthread_create(&w->thread, NULL, run, w);

	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

int sb_worker_give(struct sb_worker *w, int fd, const struct sb_addr *peer)
{
	return post(w, POST_FD, fd, peer, NULL);
}

unsigned sb_worker_load(struct sb_worker *w)
{
	return atomic_load_explicit(&w->tp.load, memory_order_relaxed);
}

void sb_worker_drain(struct sb_worker *w)
{
	post(w, POST_DRAIN, -1, NULL, NULL);
}

void sb_worker_stop(struct sb_worker *w)
{
	if (!w->started)
		return;
	post(w, POST_STOP, -1, NULL, NULL);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void sb_worker_free(struct sb_worker *w)
{
	struct sb_tp *tp;

	if (!w)
		return;
	tp = &w->tp;
	if (tp->loop) {
		/* a worker that never ran: tear lws and our handles down here */
		close_handles(w);
		if (!tp->ctx_dying)
			sb_transport_destroy(tp);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		sb_transport_destroy(tp);
		if (uv_loop_close(&w->loop))
			sb_log(SB_LOG_WARN, 0, "%s: loop closed with handles open",
			       w->name);
	}
	for (size_t i = 0; i < w->nfds; i++)
		close(w->fds[i].fd);
	free(w->fds);
	serve_scheduled(w->posted);
	serve_scheduled(w->own);
	sb_tp_lists_free(tp);
	sb_codec_free(tp->env.codec);
	sb_buf_release(&tp->body);
	free(tp->scratch);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

struct sb_stats *sb_worker_stats(struct sb_worker *w)
{
	return &w->tp.stats;
}
