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

size_t sb_readahead_unread(struct sb_sock *s)
{
	return sb_recv_hook_unread(&s->rx, lws_get_ssl(s->wsi));
}

static void stash_later(struct sb_sock *s)
{
	struct sb_tp *tp = s->tp;

	if (s->on_stash_list)
		return;
	s->on_stash_list = true;
	s->stash_next = tp->stash_list;
	tp->stash_list = s;
	tp->kick(tp);
}

void sb_readahead_stashed(struct sb_rx *rx)
{
	stash_later((struct sb_sock *)rx);
}

/* Whether lws may be given s's stash now. */
static bool servable(struct sb_sock *s)
{
	return s->wsi && s->state != SB_SOCK_GONE &&
	       s->rx.guard.mode != SB_WSG_FAILED && sb_readahead_unread(s);
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
		size_t before = sb_readahead_unread(s);

		if (lws_service_fd(tp->ctx, &pfd) < 0)
			break;
		if (servable(s) && sb_readahead_unread(s) == before &&
		    ++stalls >= 2) {
			if (s->stash_retries++ < STASH_RETRIES)
				stash_later(s);
			break;
		}
	}
	if (s->wsi && s->state != SB_SOCK_GONE && !sb_readahead_unread(s))
		s->stash_retries = 0;
	s->servicing = false;
	sb_sock_release(s);	/* lws may have let go of it meanwhile */
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
