/*
 * A worker: one thread, one libuv loop, one libwebsockets context
 * (src/transport.c) and the sockets it adopted (src/sock.c).  This file is
 * the thread, the loop and its inbox: what other threads post (sockets to
 * adopt, connections with output, drain and stop), the check phase that
 * runs the worker's own lists, and the tick (heartbeat, drain deadline).
 *
 * Ownership.  struct sb_tp, the lws context and every wsi belong to the
 * worker's thread.  Other threads reach a worker only through its inbox
 * ({lock}) and wake it with its doorbell (sb_bell.h) on the inbox's
 * empty-to-non-empty transition, after unlocking.  lws is only called on
 * the worker's own thread, from lws callbacks or from the worker's own
 * libuv callbacks (doorbell, check, timer).
 *
 * Lock order: the registry lock, then a connection's lock, then the inbox
 * lock (the scheduler runs under the first two); the inbox lock is a leaf.
 */
#include "sb_worker.h"

#include "sb_bell.h"
#include "sb_codec.h"
#include "sb_inbox.h"
#include "sb_log.h"
#include "sb_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sb_worker {
	char name[24];			/* immutable */
	struct sb_worker_setup setup;	/* immutable */
	pthread_t thread;
	bool started;			/* main only */

	uv_loop_t loop;
	struct sb_bell bell;		/* the inbox's doorbell */
	uv_check_t check;		/* after each poll: own lists */
	uv_idle_t idle;			/* keeps poll from blocking meanwhile */
	uv_timer_t tick;		/* heartbeat, drain deadline */
	unsigned handles;		/* of those, initialized */

	struct sb_inbox inbox;		/* any thread posts (sb_inbox.h) */
	bool inbox_made;

	/* worker thread only */
	struct sb_tp tp;
	bool destroying;
	uint64_t drain_deadline, kill_deadline;	/* ms, loop time */
	uint64_t heartbeat_ms;		/* --heartbeat, scaled */
};

static void on_idle(uv_idle_t *h)
{
	(void)h;	/* only there so that poll does not block */
}

/* Makes sure the check phase runs soon even if nothing else happens: the
 * inbox's and the sockets' kick (arg: the worker). */
static void kick(void *arg)
{
	struct sb_worker *w = arg;

	if (!uv_is_active((uv_handle_t *)&w->idle))
		uv_idle_start(&w->idle, on_idle);
}

/* ------------------------------------------------------------ the inbox */

static void wake(void *arg)
{
	struct sb_worker *w = arg;

	sb_bell_ring(&w->bell);
}

/* A connection came off a scheduled list, outside any lws callback: write
 * what it has queued, or close it when its backlog overflowed. */
static void serve_conn(void *arg, struct sb_conn *c)
{
	struct sb_session *sess = c->owner_data;
	struct sb_sock *s;

	(void)arg;
	if (!sess)
		return;		/* its socket is gone */
	s = (struct sb_sock *)(void *)((char *)sess - offsetof(struct sb_sock, sess));
	if (s->state != SB_SOCK_OPEN)
		return;		/* closing: nothing more goes out */
	if (sb_session_joining(sess))
		sb_session_answered(sess, sb_tp_now(s->tp));	/* the backplane's */
	if (sb_conn_is_dead(c) && sb_conn_displaced(c))
		sb_sock_close(s, SB_CLOSE_RESTART, SB_CAUSE_SHUTDOWN);
	else if (sb_conn_is_dead(c))
		sb_sock_close(s, SB_CLOSE_POLICY, SB_CAUSE_BACKLOG);
	else
		sb_transport_flush(s);
}

/* ------------------------------------------------------------ the loop */

/* The check phase: no lws callback is running.  Read-ahead first, so that
 * everything read in this turn of the loop is handled before anything is
 * written. */
static void on_check(uv_check_t *h)
{
	struct sb_worker *w = h->data;

	sb_readahead_turn(&w->tp);
	while (w->tp.stash_list || w->inbox.own || w->tp.close_list) {
		sb_readahead_run(&w->tp);
		sb_inbox_serve(sb_inbox_take_own(&w->inbox), serve_conn, w);
		sb_sock_run_closes(&w->tp);
	}
	if (!w->tp.stash_next_turn)
		uv_idle_stop(&w->idle);	/* else poll must not block */
}

static void begin_drain(struct sb_worker *w)
{
	struct sb_tp *tp = &w->tp;
	uint64_t now = sb_tp_now(tp);

	tp->env.draining = true;
	w->drain_deadline = now + (uint64_t)(w->setup.cfg->drain_timeout * 1000);
	/* close handshakes under way get a second more */
	w->kill_deadline = w->drain_deadline + (uint64_t)(1000 * sb_time_scale);
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
	uv_handle_t *hs[] = { sb_bell_handle(&w->bell), (uv_handle_t *)&w->check,
			      (uv_handle_t *)&w->idle, (uv_handle_t *)&w->tick };

	for (unsigned i = 0; i < w->handles; i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
}

static void on_tick(uv_timer_t *t);

static void on_bell(struct sb_bell *bell)
{
	struct sb_worker *w = bell->poll.data;
	struct sb_inbox_batch b;

	sb_inbox_take(&w->inbox, &b);
	for (size_t i = 0; i < b.nfds; i++)
		sb_sock_adopt(&w->tp, b.fds[i].fd, &b.fds[i].peer);
	free(b.fds);
	sb_inbox_serve(b.posted, serve_conn, w);
	if (b.drain && !w->tp.env.draining) {
		begin_drain(w);
		uv_timer_start(&w->tick, on_tick, 0, 50);
	}
	if (b.stop)
		close_handles(w);
}

/* The heartbeat, and the bound on a message begun (sb_liveness.h). */
static void check_liveness(struct sb_worker *w, uint64_t now)
{
	uint64_t interval = w->heartbeat_ms;

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

	sb_inbox_bind(&w->inbox);
	sb_log_set_thread_name(w->name);
	sb_log(SB_LOG_INFO, 0, "worker started");
	/* returns once lws is gone and on_bell() closed our handles */
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
	if ((rc = sb_bell_init(&w->loop, &w->bell, on_bell)))
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
	w->bell.poll.data = w->check.data = w->idle.data = w->tick.data = w;
	return uv_check_start(&w->check, on_check);
}

struct sb_worker *sb_worker_new(const struct sb_worker_setup *setup, int index)
{
	struct sb_worker *w = calloc(1, sizeof(*w));
	const struct sb_config *cfg = setup->cfg;
	struct sb_tp *tp;
	uint64_t tick_ms;
	int rc;

	if (!w)
		return NULL;
	w->bell.fd = -1;
	w->setup = *setup;
	snprintf(w->name, sizeof(w->name), "worker-%d", index);
	tp = &w->tp;
	tp->cfg = cfg;
	tp->edge = setup->edge;
	tp->http_src = setup->http_src;
	tp->kick = kick;
	tp->owner = w;
	tp->sched = &w->inbox.sched;
	atomic_init(&tp->load, 0);
	sb_buf_init(&tp->body, 16u << 20);
	tp->env.ops = &sb_sock_session_ops;
	tp->env.reg = setup->reg;
	tp->env.cluster = setup->cluster;
	tp->env.token_key = setup->token_key;
	tp->env.token_rules = setup->token_rules;
	tp->env.ice = cfg->ice_count ? cfg : NULL;
	tp->env.stats = &tp->stats;
	tp->env.max_message = cfg->max_message;
	tp->env.rate = cfg->rate;
	tp->env.codec = sb_codec_new(cfg->max_field);
	rc = sb_inbox_init(&w->inbox, wake, kick, w);
	if (rc) {
		sb_log(SB_LOG_ERROR, -rc, "%s: cannot make its inbox", w->name);
		sb_worker_free(w);
		return NULL;
	}
	w->inbox_made = true;
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
	w->heartbeat_ms = (uint64_t)(cfg->heartbeat * 1000 * sb_time_scale);
	tick_ms = w->heartbeat_ms / 4;
	if (tick_ms < 50)
		tick_ms = 50;
	if (tick_ms > 1000)
		tick_ms = 1000;
	if (cfg->heartbeat > 0)
		uv_timer_start(&w->tick, on_tick, tick_ms, tick_ms);
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
	int rc;

	atomic_fetch_add(&w->tp.load, 1);
	rc = sb_inbox_post_fd(&w->inbox, fd, peer);
	if (rc)
		atomic_fetch_sub(&w->tp.load, 1);
	return rc;
}

unsigned sb_worker_load(struct sb_worker *w)
{
	return atomic_load_explicit(&w->tp.load, memory_order_relaxed);
}

void sb_worker_drain(struct sb_worker *w)
{
	sb_inbox_post_drain(&w->inbox);
}

void sb_worker_stop(struct sb_worker *w)
{
	if (!w->started)
		return;
	sb_inbox_post_stop(&w->inbox);
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
	sb_bell_release(&w->bell);
	if (w->inbox_made)
		sb_inbox_release(&w->inbox);
	sb_tp_lists_free(tp);
	sb_codec_free(tp->env.codec);
	sb_buf_release(&tp->body);
	free(tp->scratch);
	free(w);
}

struct sb_stats *sb_worker_stats(struct sb_worker *w)
{
	return &w->tp.stats;
}
