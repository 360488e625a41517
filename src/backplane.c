/*
 * The backplane's thread (sb_backplane.h): two hiredis contexts on its own
 * libuv loop, one for commands and one subscribed to this node's channel;
 * the liveness of this node in Redis; the watchdog that declares Redis
 * unreachable when it stops answering; reconnection with backoff.
 *
 * What it carries is in src/bpwork.c; what both share, include/sb_bpint.h.
 *
 * Ownership: bp->cmd and bp->sub belong to the loop's thread.  A context
 * is forgotten (its pointer set to NULL) before it is freed, and every
 * hiredis callback first checks that its context is still the current
 * one: replies that arrive for a context being freed are ignored.
 */
#include "sb_bpint.h"

#include "sb_log.h"
#include "sb_lua.h"
#include "sb_registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>


uint64_t bp_now_ms(struct sb_backplane *bp)
{
	return uv_now(&bp->loop);
}

/* How long Redis may take to answer before it counts as unreachable: half
 * the node timeout, within 1 to 5 s. */
static uint64_t grace_ms(const struct sb_backplane *bp)
{
	double g = bp->cfg->node_timeout * 500;

	return g < 1000 ? 1000 : g > 5000 ? 5000 : (uint64_t)g;
}

/* How often this node says it is live: a third of the node timeout. */
static uint64_t beat_every_ms(const struct sb_backplane *bp)
{
	return (uint64_t)(bp->cfg->node_timeout * 1000 / 3);
}

static void drop_contexts(struct sb_backplane *bp)
{
	redisAsyncContext *c = bp->cmd, *s = bp->sub;

	bp->cmd = bp->sub = NULL;
	bp->cmd_ready = bp->sub_ready = false;
	bp->asked_ms = 0;
	if (c)
		redisAsyncFree(c);
	if (s)
		redisAsyncFree(s);
}

void bp_fail(struct sb_backplane *bp, const char *why)
{
	bool was_up = bp->state == BP_UP;

	drop_contexts(bp);
	if (bp->state == BP_LEAVING)
		return;
	bp->state = BP_DOWN;
	sb_bp_status_down(bp->st, why);
	if (was_up || !bp->said_down)
		sb_log(SB_LOG_WARN, 0, "backplane unreachable: %s; peers on other "
		       "nodes are out of reach until it is back", why);
	bp->said_down = true;
	bp->retry_ms = bp_now_ms(bp) + bp->backoff_ms;
	bp->backoff_ms = bp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			 bp->backoff_ms * 2;
}

/* A reply's error, or NULL when it is none.  A reply that is NULL (the
 * context is going away) is not looked at: the disconnect callback, or
 * whoever dropped the context, says why. */
const char *bp_reply_error(const redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR)
		return r->str;
	return NULL;
}

static void became_ready(struct sb_backplane *bp);

/* The scripts' texts (src/lua, with lib.lua in front), by enum bp_script. */
static const char *const script_text[S_COUNT] = {
	[S_JOIN] = SB_LUA_JOIN, [S_LEAVE] = SB_LUA_LEAVE, [S_BEAT] = SB_LUA_BEAT,
	[S_DRAIN] = SB_LUA_DRAIN, [S_PRUNE] = SB_LUA_PRUNE,
	[S_REJOIN] = SB_LUA_REJOIN, [S_SNAPSHOT] = SB_LUA_SNAPSHOT,
};

int bp_eval(struct sb_backplane *bp, enum bp_script s, redisCallbackFn *cb,
	    void *priv, int argc, const char *const *argv, const size_t *lens)
{
	const char *small[16], **av = small;
	size_t small_lens[16], *al = small_lens;
	int rc;

	if (argc + 3 > 16) {
		av = malloc((size_t)(argc + 3) * sizeof(*av));
		al = malloc((size_t)(argc + 3) * sizeof(*al));
		if (!av || !al) {
			free(av);
			free(al);
			return REDIS_ERR;
		}
	}
	av[0] = bp->sha[s][0] ? "EVALSHA" : "EVAL";
	av[1] = bp->sha[s][0] ? bp->sha[s] : script_text[s];
	av[2] = "0";
	for (int i = 0; i < 3; i++)
		al[i] = strlen(av[i]);
	for (int i = 0; i < argc; i++) {
		av[3 + i] = argv[i];
		al[3 + i] = lens ? lens[i] : strlen(argv[i]);
	}
	rc = redisAsyncCommandArgv(bp->cmd, cb, priv, argc + 3, av, al);
	if (av != small) {
		free(av);
		free(al);
	}
	return rc;
}

bool bp_lost_scripts(struct sb_backplane *bp, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8))
		return false;
	bp_fail(bp, "Redis no longer has the backplane's scripts (SCRIPT FLUSH?)");
	return true;
}

/* A script's SHA1 as SCRIPT LOAD answered (priv: which script); an error
 * (an ACL without SCRIPT) leaves it to EVAL. */
static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;
	size_t s = (size_t)(uintptr_t)priv;

	if (ac != bp->cmd || !r || s >= S_COUNT)
		return;
	bp->sha[s][0] = '\0';
	if (r->type == REDIS_REPLY_STRING && r->len == 40)
		memcpy(bp->sha[s], r->str, 41);
}

static void on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;
	const char *err;
	char why[SB_BP_WHY_MAX];

	(void)priv;
	if (ac != bp->cmd || !r)
		return;
	err = bp_reply_error(r);
	if (err || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		snprintf(why, sizeof(why), "the heartbeat failed: %.100s",
			 err ? err : "an unexpected reply");
		bp_fail(bp, why);
		return;
	}
	bp->asked_ms = 0;
	atomic_store(&bp->st->nodes, (unsigned)r->element[0]->integer);
	if (bp->state == BP_UP && !r->element[2]->integer) {
		/* silent past --node-timeout (frozen, or its beats lost): the
		 * others took this node for gone and removed its members */
		sb_log(SB_LOG_WARN, 0, "this node was taken for gone by the "
		       "others (silent for longer than --node-timeout); its "
		       "members are registered again");
		bp_register_again(bp);
	}
	if (bp->state == BP_CONNECTING && bp->cmd_ready) {
		bp->state = BP_UP;
		became_ready(bp);
	}
}

static void send_heartbeat(struct sb_backplane *bp)
{
	char ms[32];

	snprintf(ms, sizeof(ms), "%.0f", bp->cfg->node_timeout * 1000);
	bp->beat_ms = bp_now_ms(bp);
	if (!bp->asked_ms)
		bp->asked_ms = bp->beat_ms;
	if (bp_eval(bp, S_BEAT, on_heartbeat, NULL, 3,
		    (const char *[]){ bp->prefix, bp->node, ms }, NULL) != REDIS_OK)
		bp_fail(bp, "cannot send to Redis");
}

static void became_ready(struct sb_backplane *bp)
{
	bp->backoff_ms = BACKOFF_MIN_MS;
	bp->said_down = false;
	sb_bp_status_up(bp->st);
	sb_log(SB_LOG_INFO, 0, "backplane up: node %s, %u live nodes", bp->node,
	       atomic_load(&bp->st->nodes));
	bp_replay_leaves(bp);
	bp_register_again(bp);
	bp_serve_queue(bp);
}

/* Both connections are ready: the first heartbeat says this node is live,
 * and its answer makes the backplane up. */
static void maybe_ready(struct sb_backplane *bp)
{
	if (bp->cmd_ready && bp->sub_ready && bp->state == BP_CONNECTING)
		send_heartbeat(bp);
}

/* AUTH and SELECT went through on the command connection. */
static void on_cmd_setup(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const char *err;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->cmd || !reply)
		return;
	err = bp_reply_error(reply);
	if (err) {
		snprintf(why, sizeof(why), "%s refused: %.100s", (const char *)priv, err);
		bp_fail(bp, why);
		return;
	}
	if (!strcmp(priv, "INFO")) {
		/* which Redis process this is: a mark in sb:synced names it,
		 * so that marks that came back with an older snapshot are
		 * not taken for marks of this process's */
		const redisReply *r = reply;
		const char *p = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ?
				strstr(r->str, "run_id:") : NULL;
		size_t n = 0;

		if (p) {
			p += 7;
			while (n + 1 < sizeof(bp->run_id) && p[n] && p[n] != '\r' && p[n] != '\n')
				n++;
		}
		memcpy(bp->run_id, p ? p : "", n);
		bp->run_id[n] = '\0';
		bp->cmd_ready = true;
		maybe_ready(bp);
	}
}

/* Whether Redis takes CLIENT REPLY (every Redis since 3.2 does, unless an
 * ACL forbids it): relays then go without a reply to read (src/bpwork.c,
 * send_batch()).  Either answer is fine. */
static void on_reply_probe(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;

	(void)priv;
	if (ac == bp->cmd && r)
		bp->skip_replies = r->type == REDIS_REPLY_STATUS;
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const redisReply *r = reply;
	const char *err;
	char why[SB_BP_WHY_MAX];

	(void)priv;
	if (ac != bp->sub || !r)
		return;
	err = bp_reply_error(r);
	if (err) {
		snprintf(why, sizeof(why), "SUBSCRIBE refused: %.100s", err);
		bp_fail(bp, why);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (!strcmp(r->element[0]->str, "subscribe")) {
		bp->sub_ready = true;
		maybe_ready(bp);
	} else if (!strcmp(r->element[0]->str, "message") &&
		   r->element[2]->type == REDIS_REPLY_STRING) {
		atomic_fetch_add_explicit(&bp->st->received,
					  bp_dispatch(bp, r->element[2]->str,
						      r->element[2]->len),
					  memory_order_relaxed);
	}
}

static void on_sub_setup(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;
	const char *err;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->sub || !reply)
		return;
	err = bp_reply_error(reply);
	if (err) {
		snprintf(why, sizeof(why), "%s refused: %.100s", (const char *)priv, err);
		bp_fail(bp, why);
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct sb_backplane *bp = ac->data;
	char why[SB_BP_WHY_MAX];

	if (ac != bp->cmd && ac != bp->sub)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		if (ac == bp->cmd)
			bp->cmd = NULL;
		else
			bp->sub = NULL;
		snprintf(why, sizeof(why), "cannot connect to %.*s:%d: %.80s",
			 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port, ac->errstr);
		bp_fail(bp, why);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sb_backplane *bp = ac->data;
	char why[SB_BP_WHY_MAX];

	(void)status;
	if (ac != bp->cmd && ac != bp->sub)
		return;		/* one we dropped ourselves */
	/* hiredis frees the context after this callback */
	if (ac == bp->cmd)
		bp->cmd = NULL;
	else
		bp->sub = NULL;
	snprintf(why, sizeof(why), "the connection to %.*s:%d closed%s%.80s",
		 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port, ac->err ? ": " : "",
		 ac->err ? ac->errstr : "");
	bp_fail(bp, why);
}

/* ------------------------------------------------------------ events */

/*
 * hiredis on the loop.  hiredis ships an adapter for libuv, but the one in
 * Debian 12 (0.14) drops a poll error on the floor: a refused connection
 * then never reaches hiredis, and the node would wait for the watchdog
 * instead of saying "Connection refused".  This one hands an error to
 * hiredis as a readiness, and hiredis finds the socket's error itself.
 *
 * Writing: hiredis asks to write (addWrite) at every command.  Once the
 * connection is made, that only marks the context: the write happens when
 * the loop's pass ends (a prepare handle, run before the loop waits), so a
 * pass's commands go out in one write and the socket is watched for
 * writing only while the kernel will not take more.  (Each change of what
 * the poll handle watches costs libuv two epoll_ctl calls.)
 */
struct bp_poll {
	uv_poll_t handle;
	uv_prepare_t flush;		/* the write at the end of the pass */
	redisAsyncContext *ac;		/* NULL once hiredis let go of it */
	int events;			/* what the poll handle watches */
	bool in_flush;			/* hiredis writes from flush_now */
	int open;			/* handles not yet closed */
};

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct bp_poll *p = h->data;

	if (!p->ac)
		return;
	if (status < 0)
		events = p->events & (UV_READABLE | UV_WRITABLE);
	if (p->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
	if (p->ac && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
}

static void poll_set(struct bp_poll *p, int events)
{
	if (events == p->events)
		return;
	p->events = events;
	if (events)
		uv_poll_start(&p->handle, events, on_poll);
	else
		uv_poll_stop(&p->handle);
}

/* The end of a loop pass: what hiredis holds goes out now.  What the
 * kernel does not take makes hiredis ask again (in_flush): the socket is
 * then watched for writing. */
static void flush_now(uv_prepare_t *h)
{
	struct bp_poll *p = h->data;

	uv_prepare_stop(h);
	if (!p->ac)
		return;
	p->in_flush = true;
	redisAsyncHandleWrite(p->ac);
	p->in_flush = false;
}

static void ev_add_read(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events | UV_READABLE);
}

static void ev_del_read(void *d)
{
	struct bp_poll *p = d;

	poll_set(p, p->events & ~UV_READABLE);
}

static void ev_add_write(void *d)
{
	struct bp_poll *p = d;

	/* connecting (hiredis learns it connected from writability), the
	 * kernel's buffer full, or writability already watched */
	if (!(p->ac->c.flags & REDIS_CONNECTED) || p->in_flush ||
	    (p->events & UV_WRITABLE)) {
		poll_set(p, p->events | UV_WRITABLE);
		return;
	}
	uv_prepare_start(&p->flush, flush_now);
}

static void ev_del_write(void *d)
{
	struct bp_poll *p = d;

	uv_prepare_stop(&p->flush);
	poll_set(p, p->events & ~UV_WRITABLE);
}

static void poll_closed(uv_handle_t *h)
{
	struct bp_poll *p = h->data;

	if (!--p->open)
		free(p);
}

static void ev_cleanup(void *d)
{
	struct bp_poll *p = d;

	p->ac = NULL;
	uv_close((uv_handle_t *)&p->handle, poll_closed);
	uv_close((uv_handle_t *)&p->flush, poll_closed);
}

/* Puts ac on the loop.  0 or -1. */
static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct bp_poll *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	if (uv_poll_init(loop, &p->handle, ac->c.fd)) {
		free(p);
		return -1;
	}
	uv_prepare_init(loop, &p->flush);	/* cannot fail */
	p->open = 2;
	p->ac = ac;
	p->handle.data = p;
	p->flush.data = p;
	ac->ev.data = p;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	return 0;
}

/* One connection: made, attached to the loop, AUTH and SELECT queued
 * (pipelined: they go out as the connection is made). */
static redisAsyncContext *open_one(struct sb_backplane *bp,
				   redisCallbackFn *setup)
{
	const struct sb_redis_url *u = &bp->cfg->redis;
	redisAsyncContext *ac = redisAsyncConnect(u->host, u->port);
	char db[24];

	if (!ac)
		return NULL;
	if (ac->err || attach(ac, &bp->loop)) {
		char why[SB_BP_WHY_MAX];

		snprintf(why, sizeof(why), "cannot connect to %.*s:%d: %.80s", HOST_W, u->host,
			 u->port, ac->err ? ac->errstr : "cannot watch the socket");
		redisAsyncFree(ac);
		bp_fail(bp, why);
		return NULL;
	}
	ac->data = bp;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (u->password[0] && u->user[0])
		redisAsyncCommand(ac, setup, "AUTH", "AUTH %s %s", u->user, u->password);
	else if (u->password[0])
		redisAsyncCommand(ac, setup, "AUTH", "AUTH %s", u->password);
	snprintf(db, sizeof(db), "%ld", u->db);
	redisAsyncCommand(ac, setup, "SELECT", "SELECT %s", db);
	if (setup == on_cmd_setup) {
		bp->skip_replies = false;
		redisAsyncCommand(ac, on_reply_probe, NULL, "CLIENT REPLY ON");
		for (size_t i = 0; i < S_COUNT; i++) {
			bp->sha[i][0] = '\0';
			redisAsyncCommand(ac, on_script_loaded, (void *)(uintptr_t)i,
					  "SCRIPT LOAD %s", script_text[i]);
		}
		redisAsyncCommand(ac, setup, "INFO", "INFO server");
	}
	return ac;
}

static void connect_both(struct sb_backplane *bp)
{
	bp->state = BP_CONNECTING;
	bp->began_ms = bp_now_ms(bp);
	bp->cmd = open_one(bp, on_cmd_setup);
	if (!bp->cmd)
		return;		/* failed, and said why */
	bp->sub = open_one(bp, on_sub_setup);
	if (!bp->sub)
		return;
	if (redisAsyncCommand(bp->sub, on_sub_message, NULL, "SUBSCRIBE %s",
			      bp->chan) != REDIS_OK)
		bp_fail(bp, "cannot send to Redis");
}

/* ------------------------------------------------------------ leaving */

/* For uv_walk (arg: the backplane): a context's handles are closed with
 * it (ev_cleanup), the doorbell's and the tick here. */
static void close_handle(uv_handle_t *h, void *arg)
{
	struct sb_backplane *bp = arg;

	if (!uv_is_closing(h) && ((h->type != UV_POLL && h->type != UV_PREPARE) ||
				  h == sb_bell_handle(&bp->wake)))
		uv_close(h, NULL);
}

static void finish(struct sb_backplane *bp)
{
	drop_contexts(bp);
	uv_walk(&bp->loop, close_handle, bp);
}

static void on_left(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sb_backplane *bp = ac->data;

	(void)reply;
	(void)priv;
	if (ac == bp->cmd)
		finish(bp);
}

static void on_wake(struct sb_bell *b)
{
	struct sb_backplane *bp = b->poll.data;

	if (!atomic_load(&bp->stopping)) {
		bp_serve_queue(bp);
		return;
	}
	if (bp->state == BP_LEAVING)
		return;
	if (bp->state == BP_UP)
		bp_serve_queue(bp);	/* what the workers asked last goes first */
	if (bp->state == BP_UP &&
	    bp_eval(bp, S_DRAIN, on_left, NULL, 2,
		    (const char *[]){ bp->prefix, bp->node }, NULL) == REDIS_OK) {
		bp->state = BP_LEAVING;
		bp->leave_ms = bp_now_ms(bp);
		return;		/* on_left or the tick finishes */
	}
	bp->state = BP_LEAVING;
	finish(bp);
}

static void on_tick(uv_timer_t *h)
{
	struct sb_backplane *bp = h->data;
	uint64_t now = bp_now_ms(bp);
	char why[SB_BP_WHY_MAX];

	switch (bp->state) {
	case BP_DOWN:
		if (now >= bp->retry_ms)
			connect_both(bp);
		break;
	case BP_CONNECTING:
		if (now - bp->began_ms > grace_ms(bp)) {
			snprintf(why, sizeof(why), "%.*s:%d did not answer within %.1f s",
				 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port,
				 (double)grace_ms(bp) / 1000);
			bp_fail(bp, why);
		}
		break;
	case BP_UP:
		if (bp->asked_ms && now - bp->asked_ms > grace_ms(bp)) {
			snprintf(why, sizeof(why), "%.*s:%d did not answer for %.1f s",
				 HOST_W, bp->cfg->redis.host, bp->cfg->redis.port,
				 (double)grace_ms(bp) / 1000);
			bp_fail(bp, why);
		} else if (now - bp->beat_ms >= beat_every_ms(bp)) {
			send_heartbeat(bp);
		}
		if (bp->state == BP_UP && bp->final_ms && now >= bp->final_ms) {
			bp->final_ms = 0;
			bp_read_rooms(bp, true);
		}
		break;
	case BP_LEAVING:
		if (now - bp->leave_ms > LEAVE_WAIT_MS)
			finish(bp);
		break;
	}
}

static void *run(void *arg)
{
	struct sb_backplane *bp = arg;

	sb_log_set_thread_name("backplane");
	connect_both(bp);
	uv_run(&bp->loop, UV_RUN_DEFAULT);
	return NULL;
}

struct sb_backplane *sb_backplane_start(const struct sb_config *cfg,
					struct sb_bp_status *st,
					struct sb_registry *reg)
{
	struct sb_backplane *bp = calloc(1, sizeof(*bp));
	unsigned char id[8];
	int rc;

	if (!bp)
		return NULL;
	bp->cfg = cfg;
	bp->st = st;
	bp->reg = reg;
	bp_work_init(bp);
	if (pthread_mutex_init(&bp->qlock, NULL)) {
		free(bp);
		return NULL;
	}
	bp->backoff_ms = BACKOFF_MIN_MS;
	atomic_init(&bp->stopping, false);
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		sb_log(SB_LOG_ERROR, errno, "cannot make a node id");
		free(bp);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(bp->node + 2 * i, 3, "%02x", id[i]);
	snprintf(bp->prefix, sizeof(bp->prefix), "sb:%ld:n:", cfg->redis.db);
	snprintf(bp->chan, sizeof(bp->chan), "%s%s", bp->prefix, bp->node);
	sb_registry_set_node(reg, bp->node);
	rc = uv_loop_init(&bp->loop);
	if (!rc) {
		rc = sb_bell_init(&bp->loop, &bp->wake, on_wake);
		if (!rc)
			rc = uv_timer_init(&bp->loop, &bp->tick);
		if (rc) {
			uv_walk(&bp->loop, close_handle, bp);
			uv_run(&bp->loop, UV_RUN_DEFAULT);
			uv_loop_close(&bp->loop);
			sb_bell_release(&bp->wake);
		}
	}
	if (rc) {
		sb_log(SB_LOG_ERROR, 0, "cannot make the backplane's loop: %s",
		       uv_strerror(rc));
		free(bp);
		return NULL;
	}
	bp->wake.poll.data = bp;
	bp->tick.data = bp;
	uv_timer_start(&bp->tick, on_tick, TICK_MS, TICK_MS);
	rc = pthread_create(&bp->thread, NULL, run, bp);
	if (rc) {
		sb_log(SB_LOG_ERROR, rc, "cannot start the backplane's thread");
		uv_walk(&bp->loop, close_handle, bp);
		uv_run(&bp->loop, UV_RUN_DEFAULT);
		uv_loop_close(&bp->loop);
		sb_bell_release(&bp->wake);
		free(bp);
		return NULL;
	}
	bp->thread_made = true;
	return bp;
}

void sb_backplane_stop(struct sb_backplane *bp)
{
	if (!bp)
		return;
	atomic_store(&bp->stopping, true);
	sb_bell_ring(&bp->wake);
	pthread_join(bp->thread, NULL);
	uv_loop_close(&bp->loop);
	sb_bell_release(&bp->wake);
	bp_work_release(bp);
	pthread_mutex_destroy(&bp->qlock);
	free(bp);
}

const char *sb_backplane_node(const struct sb_backplane *bp)
{
	return bp->node;
}
