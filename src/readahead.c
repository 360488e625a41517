/*
 * The read-ahead's second half: the recv hook (src/recv_hook.c) reads up to
 * SB_RX_READ_MAX bytes at once and keeps what lws did not ask for in the
 * socket's stash; here, in the worker's check phase, lws is made to read
 * the stash at once, as if the socket had polled readable again.
 *
 * A stash is served for as long as it holds bytes and lws reads them,
 * while the connection closes too: the client's close frame, and the
 * frames before it, may be in there, and lws must parse them to finish
 * the close handshake.  It is dropped only when the guard failed (what
 * follows a violation is not a stream any more: src/sock.c).
 *
 * Worker thread only.
 */
#include "sb_sock.h"

#include <libwebsockets.h>

/* Turns of the loop a stash may wait for lws to read it before it waits
 * for the socket's next readable event instead. */
#define STASH_RETRIES 8

/* Bytes read for s and not yet given to lws (s->wsi live). */
static size_t unread(struct sb_sock *s)
{
	return sb_recv_hook_unread(&s->rx, lws_get_ssl(s->wsi));
}

/* Lists s for this check phase (now), or for the next turn of the loop. */
static void stash_later(struct sb_sock *s, bool next_turn)
{
	struct sb_tp *tp = s->tp;
	struct sb_sock **list = next_turn ? &tp->stash_next_turn : &tp->stash_list;

	if (s->on_stash_list)
		return;
	s->on_stash_list = true;
	s->stash_next = *list;
	*list = s;
	tp->kick(tp->owner);
}

void sb_readahead_stashed(struct sb_rx *rx)
{
	stash_later((struct sb_sock *)rx, false);
}

/* Whether lws may be given s's stash now. */
static bool servable(struct sb_sock *s)
{
	return s->wsi && s->rx.guard.mode != SB_WSG_FAILED && unread(s);
}

/* Lets lws read what was read ahead for s until none is left.  Should lws
 * not read (it may first finish bytes of its own), the rest waits for the
 * next turn of the loop, a few times; after that for the socket's next
 * readable event, which serves the stash before the kernel. */
static void serve(struct sb_tp *tp, struct sb_sock *s)
{
	int stalls = 0;

	s->servicing = true;
	while (servable(s)) {
		struct lws_pollfd pfd = { .fd = s->fd, .events = LWS_POLLIN,
					  .revents = LWS_POLLIN };
		size_t before = unread(s);

		if (lws_service_fd(tp->ctx, &pfd))
			break;	/* failed, or lws closed the wsi */
		if (servable(s) && unread(s) == before &&
		    ++stalls >= 2) {
			if (s->stash_retries++ < STASH_RETRIES)
				stash_later(s, true);
			break;
		}
	}
	if (s->wsi && !unread(s))
		s->stash_retries = 0;
	s->servicing = false;
	sb_sock_release(s);	/* lws may have let go of it meanwhile */
}

void sb_readahead_turn(struct sb_tp *tp)
{
	while (tp->stash_next_turn) {
		struct sb_sock *s = tp->stash_next_turn;

		tp->stash_next_turn = s->stash_next;
		s->stash_next = tp->stash_list;
		tp->stash_list = s;
	}
}

void sb_readahead_run(struct sb_tp *tp)
{
	while (tp->stash_list) {
		struct sb_sock *s = tp->stash_list;

		tp->stash_list = s->stash_next;
		s->on_stash_list = false;
		if (s->state == SB_SOCK_GONE)
			sb_sock_release(s);
		else
			serve(tp, s);
	}
}
