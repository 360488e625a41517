/*
 * The inbox and connection scheduler, one step at a time (test_stress.c
 * drives it with many threads): sockets posted in order and refused once
 * drain or stop is posted; one take empties it; the wake only on empty to
 * non-empty and after the lock is released; a schedule from another
 * thread posts, one from the owner's own thread goes on its own list with
 * a kick; one listing per connection however often it is scheduled;
 * sb_inbox_serve() clearing the mark before it calls serve, so a send from
 * inside serve lists the connection again; release closing sockets and
 * dropping references.
 *
 * Sends "from another thread" run on a helper thread: the calling thread
 * may be bound to an inbox of an earlier test.
 */
#include "check.h"

#include "sb_conn.h"
#include "sb_inbox.h"
#include "sb_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

struct calls {
	struct sb_inbox *in;
	atomic_int wakes, kicks;
	atomic_int locked;	/* wake or kick found the inbox locked */
};

/* Whether in's lock is free: a wake or kick must come after unlocking,
 * since the owner it wakes takes that lock at once. */
static void check_unlocked(struct calls *k)
{
	if (pthread_mutex_trylock(&k->in->lock) == 0)
		pthread_mutex_unlock(&k->in->lock);
	else
		atomic_fetch_add(&k->locked, 1);
}

static void on_wake(void *arg)
{
	struct calls *k = arg;

	check_unlocked(k);
	atomic_fetch_add(&k->wakes, 1);
}

static void on_kick(void *arg)
{
	struct calls *k = arg;

	check_unlocked(k);
	atomic_fetch_add(&k->kicks, 1);
}

static void init(struct sb_inbox *in, struct calls *k)
{
	memset(k, 0, sizeof(*k));
	k->in = in;
	CHECK_EQ_INT(sb_inbox_init(in, on_wake, on_kick, k), 0);
}

static void check_calls(struct calls *k, int wakes, int kicks)
{
	CHECK_EQ_INT(atomic_load(&k->wakes), wakes);
	CHECK_EQ_INT(atomic_load(&k->kicks), kicks);
	CHECK_EQ_INT(atomic_load(&k->locked), 0);
}

static struct sb_addr peer_n(int n)
{
	struct sb_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.bytes[0] = 192;
	a.bytes[1] = 0;
	a.bytes[2] = 2;
	a.bytes[3] = (uint8_t)n;
	return a;
}

/* Takes everything and checks nothing was there. */
static void expect_empty(struct sb_inbox *in)
{
	struct sb_inbox_batch b;

	memset(&b, 0xa5, sizeof(b));
	sb_inbox_take(in, &b);
	CHECK(b.fds == NULL);
	CHECK_EQ_SIZE(b.nfds, 0);
	CHECK(b.posted == NULL);
	CHECK(!b.drain);
	CHECK(!b.stop);
}

static size_t list_len(struct sb_conn *list)
{
	size_t n = 0;

	for (; list; list = list->ready_next)
		n++;
	return n;
}

static bool on_list(struct sb_conn *list, struct sb_conn *c)
{
	for (; list; list = list->ready_next)
		if (list == c)
			return true;
	return false;
}

static unsigned refs(struct sb_conn *c)
{
	return atomic_load(&c->refs);
}

/* Sends one small message to c from this thread. */
static int send_one(struct sb_conn *c)
{
	struct sb_msg *m = sb_msg_from("x", 1);
	int rc;

	CHECK(m != NULL);
	rc = sb_conn_send(c, m);
	sb_msg_unref(m);
	return rc;
}

/* Takes c's queue, as an owner's writer would; how many messages. */
static int drain(struct sb_conn *c)
{
	struct sb_msg *m;
	bool overflow, more;
	int n = 0;

	while ((m = sb_conn_next(c, &overflow, &more))) {
		sb_msg_unref(m);
		n++;
	}
	CHECK(!more);
	return n;
}

/* ---- another thread ---- */

struct remote {
	struct sb_conn *conns[4];
	int n;
	bool doom;
};

static void *remote_main(void *arg)
{
	struct remote *r = arg;

	for (int i = 0; i < r->n; i++) {
		if (r->doom)
			sb_conn_evict(r->conns[i]);
		else
			CHECK_EQ_INT(send_one(r->conns[i]), 0);
	}
	return NULL;
}

/* Sends to (or dooms) the n connections from a thread of its own. */
static void from_another_thread(struct sb_conn **conns, int n, bool doom)
{
	struct remote r;
	pthread_t th;

	CHECK(n <= 4);
	memset(&r, 0, sizeof(r));
	memcpy(r.conns, conns, (size_t)n * sizeof(*conns));
	r.n = n;
	r.doom = doom;
	CHECK_EQ_INT(pthread_create(&th, NULL, remote_main, &r), 0);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
}

/* ---- tests ---- */

static void test_post_fd_order(void)
{
	struct sb_inbox in;
	struct calls k;
	struct sb_inbox_batch b;
	struct sb_addr p;

	init(&in, &k);
	expect_empty(&in);
	check_calls(&k, 0, 0);
	for (int i = 0; i < 3; i++) {
		p = peer_n(i);
		CHECK_EQ_INT(sb_inbox_post_fd(&in, 100 + i, &p), 0);
	}
	check_calls(&k, 1, 0);	/* only the first found it empty */
	sb_inbox_take(&in, &b);
	CHECK_EQ_SIZE(b.nfds, 3);
	for (int i = 0; i < 3; i++) {
		p = peer_n(i);
		CHECK_EQ_INT(b.fds[i].fd, 100 + i);
		CHECK(sb_addr_equal(&b.fds[i].peer, &p));
	}
	CHECK(b.posted == NULL && !b.drain && !b.stop);
	free(b.fds);
	/* one take empties it */
	expect_empty(&in);

	/* past the first allocation, in order still; a wake again */
	for (int i = 0; i < 100; i++) {
		p = peer_n(i);
		CHECK_EQ_INT(sb_inbox_post_fd(&in, 1000 + i, &p), 0);
	}
	check_calls(&k, 2, 0);
	sb_inbox_take(&in, &b);
	CHECK_EQ_SIZE(b.nfds, 100);
	for (int i = 0; i < 100; i++) {
		p = peer_n(i);
		CHECK_EQ_INT(b.fds[i].fd, 1000 + i);
		CHECK(sb_addr_equal(&b.fds[i].peer, &p));
	}
	free(b.fds);
	expect_empty(&in);
	check_calls(&k, 2, 0);
	sb_inbox_release(&in);
}

static void test_drain_and_stop(void)
{
	struct sb_inbox in;
	struct calls k;
	struct sb_inbox_batch b;
	struct sb_addr p = peer_n(1);

	/* drain into an empty inbox wakes; sockets are refused after it */
	init(&in, &k);
	sb_inbox_post_drain(&in);
	check_calls(&k, 1, 0);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 7, &p), -ESHUTDOWN);
	check_calls(&k, 1, 0);
	sb_inbox_take(&in, &b);
	CHECK(b.drain && !b.stop);
	CHECK_EQ_SIZE(b.nfds, 0);
	free(b.fds);
	expect_empty(&in);	/* a request is taken once */
	/* refused for good, not only until the take */
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 7, &p), -ESHUTDOWN);
	sb_inbox_post_stop(&in);
	check_calls(&k, 2, 0);
	sb_inbox_take(&in, &b);
	CHECK(b.stop && !b.drain);
	free(b.fds);
	expect_empty(&in);
	sb_inbox_release(&in);

	/* sockets posted before the stop are kept, in order, and the stop
	 * into a non-empty inbox does not wake again */
	init(&in, &k);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 11, &p), 0);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 12, &p), 0);
	sb_inbox_post_stop(&in);
	sb_inbox_post_drain(&in);
	check_calls(&k, 1, 0);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 13, &p), -ESHUTDOWN);
	sb_inbox_take(&in, &b);
	CHECK_EQ_SIZE(b.nfds, 2);
	CHECK_EQ_INT(b.fds[0].fd, 11);
	CHECK_EQ_INT(b.fds[1].fd, 12);
	CHECK(b.drain && b.stop);
	free(b.fds);
	expect_empty(&in);
	check_calls(&k, 1, 0);
	sb_inbox_release(&in);
}

/* A schedule from another thread posts the connection and wakes the owner
 * once; further schedules list it no second time. */
static void test_schedule_from_another_thread(void)
{
	struct sb_inbox in;
	struct calls k;
	struct sb_inbox_batch b;
	struct sb_conn *c[2];
	struct sb_addr p = peer_n(1);

	init(&in, &k);
	for (int i = 0; i < 2; i++) {
		c[i] = sb_conn_new(&in.sched, 1 << 20);
		CHECK(c[i] != NULL);
	}
	from_another_thread(c, 1, false);
	check_calls(&k, 1, 0);
	CHECK(atomic_load(&c[0]->listed));
	CHECK_EQ_INT(refs(c[0]), 2);	/* the list holds one */
	/* more output, a kill: the owner was told, it is listed once */
	from_another_thread(c, 1, false);
	from_another_thread(c, 1, true);
	CHECK_EQ_INT(refs(c[0]), 2);
	/* a second connection, a socket: no more wakes */
	from_another_thread(c + 1, 1, false);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, 5, &p), 0);
	check_calls(&k, 1, 0);
	CHECK(in.own == NULL);

	sb_inbox_take(&in, &b);
	CHECK_EQ_SIZE(b.nfds, 1);
	free(b.fds);
	CHECK_EQ_SIZE(list_len(b.posted), 2);
	CHECK(on_list(b.posted, c[0]) && on_list(b.posted, c[1]));
	sb_inbox_serve(b.posted, NULL, NULL);
	for (int i = 0; i < 2; i++) {
		CHECK(!atomic_load(&c[i]->listed));
		CHECK_EQ_INT(refs(c[i]), 1);
	}
	expect_empty(&in);

	/* c[1] still holds its message: the next send does not schedule;
	 * once drained, it does, and wakes the emptied inbox again */
	from_another_thread(c + 1, 1, false);
	check_calls(&k, 1, 0);
	CHECK_EQ_INT(drain(c[1]), 2);
	from_another_thread(c + 1, 1, false);
	check_calls(&k, 2, 0);
	sb_inbox_take(&in, &b);
	CHECK(b.posted == c[1] && c[1]->ready_next == NULL);
	sb_inbox_serve(b.posted, NULL, NULL);
	for (int i = 0; i < 2; i++)
		sb_conn_unref(c[i]);
	sb_inbox_release(&in);
}

/* The owner's own schedules skip the lock: its own list and a kick, no
 * wake, nothing posted.  Another thread's still post. */
static void test_schedule_own(void)
{
	struct sb_inbox in;
	struct calls k;
	struct sb_inbox_batch b;
	struct sb_conn *c[3], *own;

	init(&in, &k);
	sb_inbox_bind(&in);
	for (int i = 0; i < 3; i++) {
		c[i] = sb_conn_new(&in.sched, 1 << 20);
		CHECK(c[i] != NULL);
	}
	CHECK_EQ_INT(send_one(c[0]), 0);
	CHECK_EQ_INT(send_one(c[1]), 0);
	check_calls(&k, 0, 2);
	CHECK(atomic_load(&c[0]->listed));
	/* listed already: a kill lists it no second time */
	sb_conn_evict(c[0]);
	check_calls(&k, 0, 2);
	expect_empty(&in);
	/* another thread's send goes to the inbox */
	from_another_thread(c + 2, 1, false);
	check_calls(&k, 1, 2);

	own = sb_inbox_take_own(&in);
	CHECK_EQ_SIZE(list_len(own), 2);
	CHECK(on_list(own, c[0]) && on_list(own, c[1]));
	CHECK(sb_inbox_take_own(&in) == NULL);
	sb_inbox_take(&in, &b);
	CHECK(b.posted == c[2] && c[2]->ready_next == NULL);
	CHECK(!on_list(own, c[2]));
	sb_inbox_serve(own, NULL, NULL);
	sb_inbox_serve(b.posted, NULL, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(!atomic_load(&c[i]->listed));
		CHECK_EQ_INT(refs(c[i]), 1);
		sb_conn_unref(c[i]);
	}
	sb_inbox_release(&in);
}

struct served {
	struct sb_conn *seen[8];
	int n;
	bool send_again;	/* serve sends to what it serves */
};

static void serve_cb(void *arg, struct sb_conn *c)
{
	struct served *s = arg;

	/* the mark is off and the list's reference still held */
	CHECK(!atomic_load(&c->listed));
	CHECK(refs(c) >= 2);
	CHECK(s->n < 8);
	s->seen[s->n++] = c;
	CHECK(drain(c) >= 1);
	if (s->send_again) {
		/* the queue is empty again: this send schedules c anew */
		CHECK_EQ_INT(send_one(c), 0);
		CHECK(atomic_load(&c->listed));
	}
}

/* sb_inbox_serve() clears a connection's mark before it calls serve, so
 * what serve sends (or what is sent meanwhile) lists it again. */
static void test_serve_clears_mark_first(void)
{
	struct sb_inbox in;
	struct calls k;
	struct served s;
	struct sb_conn *c[2], *own;

	init(&in, &k);
	sb_inbox_bind(&in);
	for (int i = 0; i < 2; i++) {
		c[i] = sb_conn_new(&in.sched, 1 << 20);
		CHECK(c[i] != NULL);
		CHECK_EQ_INT(send_one(c[i]), 0);
	}
	memset(&s, 0, sizeof(s));
	s.send_again = true;
	own = sb_inbox_take_own(&in);
	sb_inbox_serve(own, serve_cb, &s);
	CHECK_EQ_INT(s.n, 2);
	CHECK(s.seen[0] != s.seen[1]);
	check_calls(&k, 0, 4);
	/* both are listed again, each once, with a reference */
	own = sb_inbox_take_own(&in);
	CHECK_EQ_SIZE(list_len(own), 2);
	CHECK(on_list(own, c[0]) && on_list(own, c[1]));
	for (int i = 0; i < 2; i++)
		CHECK_EQ_INT(refs(c[i]), 2);
	memset(&s, 0, sizeof(s));
	sb_inbox_serve(own, serve_cb, &s);
	CHECK_EQ_INT(s.n, 2);
	CHECK(sb_inbox_take_own(&in) == NULL);
	/* a connection whose last reference is the list's is freed after
	 * serve (ASan would see a leak or a use after free) */
	CHECK_EQ_INT(send_one(c[0]), 0);
	sb_conn_unref(c[0]);
	own = sb_inbox_take_own(&in);
	CHECK(own == c[0]);
	CHECK_EQ_INT(refs(c[0]), 1);
	memset(&s, 0, sizeof(s));
	sb_inbox_serve(own, NULL, NULL);
	expect_empty(&in);
	CHECK_EQ_INT(refs(c[1]), 1);
	sb_conn_unref(c[1]);
	sb_inbox_release(&in);
}

/* Release closes the sockets it still holds and drops the references of
 * both lists. */
static void test_release(void)
{
	struct sb_inbox in;
	struct calls k;
	struct sb_conn *c[2];
	struct sb_addr p = peer_n(1);
	int fds[2];

	init(&in, &k);
	sb_inbox_bind(&in);
	CHECK_EQ_INT(pipe(fds), 0);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, fds[0], &p), 0);
	CHECK_EQ_INT(sb_inbox_post_fd(&in, fds[1], &p), 0);
	for (int i = 0; i < 2; i++) {
		c[i] = sb_conn_new(&in.sched, 1 << 20);
		CHECK(c[i] != NULL);
	}
	CHECK_EQ_INT(send_one(c[0]), 0);		/* own list */
	from_another_thread(c + 1, 1, false);	/* posted */
	sb_inbox_post_stop(&in);
	CHECK_EQ_INT(refs(c[0]), 2);
	CHECK_EQ_INT(refs(c[1]), 2);
	sb_inbox_release(&in);
	CHECK_EQ_INT(fcntl(fds[0], F_GETFD), -1);
	CHECK_EQ_INT(errno, EBADF);
	CHECK_EQ_INT(fcntl(fds[1], F_GETFD), -1);
	CHECK_EQ_INT(errno, EBADF);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(refs(c[i]), 1);
		CHECK(!atomic_load(&c[i]->listed));
		sb_conn_unref(c[i]);
	}
}

int main(void)
{
	RUN_TEST(test_post_fd_order);
	RUN_TEST(test_drain_and_stop);
	RUN_TEST(test_schedule_from_another_thread);
	RUN_TEST(test_schedule_own);
	RUN_TEST(test_serve_clears_mark_first);
	RUN_TEST(test_release);
	return check_summary();
}
