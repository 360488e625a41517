#include "sb_recv_hook.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic(struct sb_rx *) *table;	/* [fd]; set before threads */
static int table_size;
static void (*fail_cb)(struct sb_rx *rx);
static void (*stash_cb)(struct sb_rx *rx);
static void (*refuse_cb)(struct sb_rx *rx, int reason);

/* Where a read lands before it is split: one per thread. */
static _Thread_local unsigned char readbuf[SB_RX_READ_MAX];

int sb_recv_hook_init(int nfds, void (*on_fail)(struct sb_rx *rx),
		      void (*on_stash)(struct sb_rx *rx),
		      void (*on_refuse)(struct sb_rx *rx, int reason))
{
	table = calloc((size_t)nfds, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table_size = nfds;
	fail_cb = on_fail;
	stash_cb = on_stash;
	refuse_cb = on_refuse;
	return 0;
}

void sb_recv_hook_attach(int fd, struct sb_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	sb_wsguard_init(&rx->guard);
	sb_reqcheck_init(&rx->req);
	if (fd >= 0 && fd < table_size)
		atomic_store_explicit(&table[fd], rx, memory_order_release);
}

void sb_recv_hook_detach(int fd, struct sb_rx *rx)
{
	struct sb_rx *expect = rx;

	if (fd >= 0 && fd < table_size)
		atomic_compare_exchange_strong(&table[fd], &expect, NULL);
}

size_t sb_recv_hook_unread(struct sb_rx *rx, struct ssl_st *tls)
{
	size_t n = rx->stash_len;

	if (tls)
		n += (size_t)SSL_pending(tls);
	return n;
}

void sb_recv_hook_release(struct sb_rx *rx)
{
	free(rx->stash);
	rx->stash = NULL;
	rx->stash_off = rx->stash_len = 0;
}

/* Gives up to len stashed bytes. */
static ssize_t from_stash(struct sb_rx *rx, void *buf, size_t len)
{
	size_t n = rx->stash_len < len ? rx->stash_len : len;

	memcpy(buf, rx->stash + rx->stash_off, n);
	rx->stash_off += (uint32_t)n;
	rx->stash_len -= (uint32_t)n;
	if (!rx->stash_len)
		sb_recv_hook_release(rx);
	return (ssize_t)n;
}

/*
 * A transport the guard reads through: the socket itself (recv) or the TLS
 * session on it (SSL_read).  read returns > 0 for bytes, else the
 * transport's own failure value, passed back to lws untouched.  write
 * never blocks: it sends what the socket takes at once.
 */
struct transport {
	int (*read)(void *ctx, void *buf, size_t len, bool peek);
	void (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
	bool tls;	/* ctx is the SSL session */
};

/* The most a refusal discards of what the client sent after its request:
 * bytes left unread when lws closes the socket make the kernel answer with
 * a reset, which can destroy the answer before the client reads it. */
#define DISCARD_MAX (4 * SB_RX_READ_MAX)

/*
 * Refuses the request rx's checker found wrong: writes the answer (best
 * effort), discards what is already there to read, up to DISCARD_MAX, and
 * leaves the guard closed, so that whatever comes next ends the stream.
 */
static void refuse(struct sb_rx *rx, const struct transport *t)
{
	char answer[SB_REQ_ANSWER_MAX];
	size_t n = sb_reqcheck_answer(&rx->req, answer, sizeof(answer));

	if (n)
		t->write(t->ctx, answer, n);
	for (size_t gone = 0; gone < DISCARD_MAX;) {
		int r = t->read(t->ctx, readbuf, sizeof(readbuf), false);

		if (r <= 0)
			break;
		gone += (size_t)r;
	}
	rx->guard.mode = SB_WSG_CLOSED;
	if (refuse_cb)
		refuse_cb(rx, rx->req.reason);
}

/* What guarded() tells its caller to give lws. */
enum outcome {
	GIVE,		/* *n bytes are in buf */
	PASS,		/* the transport's own result *n, as it is */
	AGAIN,		/* nothing now: lws must wait for the socket */
	END,		/* the stream is over for lws */
};

static enum outcome guarded(struct sb_rx *rx, const struct transport *t,
			    void *buf, size_t len, int *n)
{
	struct sb_wsguard *g = &rx->guard;
	size_t ok, give;
	bool failed;

	if (len > INT_MAX)
		len = INT_MAX;
	rx->reached = true;
	switch (g->mode) {
	case SB_WSG_HTTP: {
		size_t used;

		/* hand over one header block at a time: see sb_wsguard.h */
		*n = t->read(t->ctx, buf, len, true);
		if (*n <= 0)
			return PASS;
		ok = sb_wsguard_http(g, buf, (size_t)*n);
		*n = t->read(t->ctx, buf, ok, false);
		if (*n <= 0)
			return PASS;
		/* lws has not seen these bytes yet: a refused request never
		 * reaches it */
		if (sb_reqcheck_feed(&rx->req, buf, (size_t)*n, &used) == SB_REQ_REFUSE) {
			refuse(rx, t);
			return END;
		}
		/* The rest of a TLS record stays inside OpenSSL, where no poll
		 * sees it (lws looks only when a read filled its buffer): have
		 * the worker come back for it as for read-ahead. */
		if (t->tls && SSL_pending(t->ctx) && stash_cb)
			stash_cb(rx);
		return PASS;
	}
	case SB_WSG_WS:
		if (rx->stash_len) {
			*n = (int)from_stash(rx, buf, len);
			return GIVE;
		}
		*n = t->read(t->ctx, readbuf, sizeof(readbuf), false);
		if (*n <= 0)
			return PASS;
		rx->rx_seen = true;
		ok = sb_wsguard_frames(g, readbuf, (size_t)*n);
		failed = ok < (size_t)*n;
		give = ok < len ? ok : len;
		memcpy(buf, readbuf, give);
		if (ok > give) {
			rx->stash = malloc(ok - give);
			if (rx->stash) {
				memcpy(rx->stash, readbuf + give, ok - give);
				rx->stash_off = 0;
				rx->stash_len = (uint32_t)(ok - give);
				if (stash_cb)
					stash_cb(rx);
			} else {
				/* cannot keep them: the stream is broken */
				g->mode = SB_WSG_FAILED;
				failed = true;
			}
		}
		if (failed && fail_cb)
			fail_cb(rx);
		*n = (int)give;
		return give ? GIVE : AGAIN;
	case SB_WSG_CLOSED:
		/* our close frame is out and the stream cannot be parsed any
		 * more: whatever the client answers ends the connection */
		*n = t->read(t->ctx, buf, len, false);
		return *n < 0 ? PASS : END;
	default:
		return AGAIN;
	}
}

static struct sb_rx *lookup(int fd)
{
	if (fd >= 0 && fd < table_size && table)
		return atomic_load_explicit(&table[fd], memory_order_acquire);
	return NULL;
}

/* ------------------------------------------------------------ plain TCP */

static ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static int tcp_read(void *ctx, void *buf, size_t len, bool peek)
{
	ssize_t n = sys_recv(*(int *)ctx, buf, len, peek ? MSG_PEEK : 0);

	return n > INT_MAX ? INT_MAX : (int)n;	/* len is at most INT_MAX */
}

static void tcp_write(void *ctx, const void *buf, size_t len)
{
	ssize_t n = send(*(int *)ctx, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)n;	/* best effort: the connection is being closed */
}

ssize_t recv(int fd, void *buf, size_t len, int flags);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct sb_rx *rx = lookup(fd);
	struct transport t = { tcp_read, tcp_write, &fd, false };
	int n;

	if (!rx || flags)
		return sys_recv(fd, buf, len, flags);
	switch (guarded(rx, &t, buf, len, &n)) {
	case GIVE:
	case PASS:
		return n;
	case END:
		return 0;
	default:
		errno = EAGAIN;
		return -1;
	}
}

/* ------------------------------------------------------------ TLS */

/*
 * With TLS, lws reads through SSL_read(), and the executable defines that
 * too: the guard then sees the plaintext, exactly as recv() gives it for
 * plain TCP.  "Nothing now" is said the way OpenSSL says it: SSL_read()
 * fails, SSL_get_error() answers SSL_ERROR_WANT_READ and SSL_want() answers
 * SSL_READING, which lws asks in that order right after the read; the
 * executable defines those two as well and answers so for that one session
 * on that thread, and otherwise calls OpenSSL's own.  "The stream ended" is
 * said as a clean shutdown: SSL_read() returns 0 and SSL_get_error()
 * answers SSL_ERROR_ZERO_RETURN (OpenSSL's own answer could be WANT_READ,
 * after a refusal discarded what was there to read, and lws would wait).
 */
static int (*real_ssl_read)(SSL *, void *, int);
static int (*real_ssl_get_error)(const SSL *, int);
static int (*real_ssl_want)(const SSL *);
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* The session whose last SSL_read() said "nothing now", or "the stream
 * ended", on this thread. */
static _Thread_local const SSL *want_read, *ended;

static void tls_resolve(void)
{
	real_ssl_read = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
	real_ssl_get_error = (int (*)(const SSL *, int))dlsym(RTLD_NEXT,
							      "SSL_get_error");
	real_ssl_want = (int (*)(const SSL *))dlsym(RTLD_NEXT, "SSL_want");
}

static int tls_read(void *ctx, void *buf, size_t len, bool peek)
{
	SSL *ssl = ctx;

	return peek ? SSL_peek(ssl, buf, (int)len) : real_ssl_read(ssl, buf, (int)len);
}

static void tls_write(void *ctx, const void *buf, size_t len)
{
	/* the socket is non-blocking: a record it cannot take is dropped */
	int n = SSL_write(ctx, buf, (int)len);

	(void)n;
}

int SSL_read(SSL *ssl, void *buf, int num)
{
	struct sb_rx *rx;
	struct transport t = { tls_read, tls_write, ssl, true };
	int n;

	pthread_once(&tls_once, tls_resolve);
	want_read = ended = NULL;
	rx = num > 0 ? lookup(SSL_get_fd(ssl)) : NULL;
	if (!rx)
		return real_ssl_read(ssl, buf, num);
	switch (guarded(rx, &t, buf, (size_t)num, &n)) {
	case GIVE:
	case PASS:
		return n;
	case END:
		ended = ssl;
		return 0;
	default:
		want_read = ssl;
		errno = EAGAIN;
		return -1;
	}
}

int SSL_get_error(const SSL *ssl, int ret)
{
	pthread_once(&tls_once, tls_resolve);
	if (ssl && ssl == want_read && ret < 0)
		return SSL_ERROR_WANT_READ;
	if (ssl && ssl == ended && ret == 0) {
		ended = NULL;
		return SSL_ERROR_ZERO_RETURN;
	}
	return real_ssl_get_error(ssl, ret);
}

int SSL_want(const SSL *ssl)
{
	pthread_once(&tls_once, tls_resolve);
	if (ssl && ssl == want_read) {
		want_read = NULL;
		return SSL_READING;
	}
	return real_ssl_want(ssl);
}
