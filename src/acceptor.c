#include "sb_acceptor.h"

#include "sb_log.h"
#include "sb_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long accepting pauses when descriptors run out. */
#define PAUSE_MS 100

struct sb_acceptor {
	int listen_fd;			/* immutable */
	struct sb_worker *const *workers;	/* immutable */
	int nworkers;			/* immutable */
	atomic_ulong *pauses;		/* for /metrics */
	pthread_t thread;
	int wake[2];			/* a pipe: main writes to stop us */
	atomic_bool stop;
	unsigned next;			/* acceptor thread only: tie-breaker */
	bool nodelay_inherited;		/* immutable once the thread runs */
};

/* The worker with the fewest sockets, ties broken round-robin. */
static struct sb_worker *pick(struct sb_acceptor *a)
{
	struct sb_worker *best = NULL;
	unsigned best_load = 0;

	for (int i = 0; i < a->nworkers; i++) {
		struct sb_worker *w = a->workers[(a->next + (unsigned)i) %
						 (unsigned)a->nworkers];
		unsigned load = sb_worker_load(w);

		if (!best || load < best_load) {
			best = w;
			best_load = load;
		}
	}
	a->next++;
	return best;
}

static void hand_over(struct sb_acceptor *a, int fd,
		      const struct sockaddr_storage *ss, socklen_t len)
{
	struct sb_addr peer;
	int one = 1;

	/* Linux hands TCP_NODELAY down from the listening socket (set in
	 * sb_acceptor_start); elsewhere, or if that failed, set it here. */
	if (!a->nodelay_inherited &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		sb_log(SB_LOG_DEBUG, errno, "setsockopt TCP_NODELAY");
	sb_addr_from_sockaddr(&peer, (const struct sockaddr *)ss, len);
	if (sb_worker_give(pick(a), fd, &peer))
		close(fd);
}

/* Sleeps ms, or until a stop is requested. */
static void pause_for(struct sb_acceptor *a, int ms)
{
	struct pollfd p = { .fd = a->wake[0], .events = POLLIN };

	if (poll(&p, 1, ms) < 0 && errno != EINTR)
		sb_log(SB_LOG_ERROR, errno, "poll");
}

/*
 * The listening socket is blocking: one accept4() per connection and no
 * poll() in between.  sb_acceptor_stop() shuts the socket down, which makes
 * a waiting accept4() fail with EINVAL.
 */
static void *run(void *arg)
{
	struct sb_acceptor *a = arg;
	int lfd = a->listen_fd;

	sb_log_set_thread_name("acceptor");
	while (!atomic_load(&a->stop)) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			hand_over(a, fd, &ss, len);
			continue;
		}
		if (atomic_load(&a->stop))
			break;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
		    errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		/* a flood of connections causes these: rate-limited */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			sb_log_client(SB_LOG_ERROR, errno,
			       "accept: out of resources; pausing accepting for %d ms",
			       PAUSE_MS);
		else
			sb_log_client(SB_LOG_ERROR, errno, "accept");
		atomic_fetch_add(a->pauses, 1);
		pause_for(a, PAUSE_MS);
	}
	return NULL;
}

struct sb_acceptor *sb_acceptor_start(int listen_fd, struct sb_worker *const *workers,
				      int nworkers, atomic_ulong *pauses)
{
	struct sb_acceptor *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return NULL;
	a->listen_fd = listen_fd;
	a->workers = workers;
	a->nworkers = nworkers;
	a->pauses = pauses;
	atomic_init(&a->stop, false);
	{
		int fl = fcntl(listen_fd, F_GETFL), one = 1;

#if defined(__linux__)
		a->nodelay_inherited = !setsockopt(listen_fd, IPPROTO_TCP,
						   TCP_NODELAY, &one, sizeof(one));
#endif
		if (fl < 0 || fcntl(listen_fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			sb_log(SB_LOG_ERROR, errno, "fcntl");
			free(a);
			return NULL;
		}
	}
	if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK)) {
		sb_log(SB_LOG_ERROR, errno, "pipe");
		free(a);
		return NULL;
	}
	rc = pthread_create(&a->thread, NULL, run, a);
	if (rc) {
		sb_log(SB_LOG_ERROR, rc, "cannot start the acceptor thread");
		close(a->wake[0]);
		close(a->wake[1]);
		free(a);
		return NULL;
	}
	return a;
}

void sb_acceptor_stop(struct sb_acceptor *a)
{
	ssize_t n;

	if (!a)
		return;
	atomic_store(&a->stop, true);
	/* wakes a waiting accept4() (EINVAL) and a pause (the pipe) */
	shutdown(a->listen_fd, SHUT_RDWR);
	n = write(a->wake[1], "x", 1);
	(void)n;
	pthread_join(a->thread, NULL);
	close(a->wake[0]);
	close(a->wake[1]);
	free(a);
}
