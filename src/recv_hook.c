#include "sb_recv_hook.h"

#include <errno.h>
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

/* Where a read lands before it is split: one per thread. */
static _Thread_local unsigned char readbuf[SB_RX_READ_MAX];

int sb_recv_hook_init(int nfds, void (*on_fail)(struct sb_rx *rx),
		      void (*on_stash)(struct sb_rx *rx))
{
	table = calloc((size_t)nfds, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table_size = nfds;
	fail_cb = on_fail;
	stash_cb = on_stash;
	return 0;
}

void sb_recv_hook_attach(int fd, struct sb_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	sb_wsguard_init(&rx->guard);
	if (fd >= 0 && fd < table_size)
		atomic_store_explicit(&table[fd], rx, memory_order_release);
}

void sb_recv_hook_detach(int fd, struct sb_rx *rx)
{
	struct sb_rx *expect = rx;

	if (fd >= 0 && fd < table_size)
		atomic_compare_exchange_strong(&table[fd], &expect, NULL);
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

static ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t recv(int fd, void *buf, size_t len, int flags);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct sb_rx *rx = NULL;
	struct sb_wsguard *g;
	ssize_t n;
	size_t ok, give;
	bool failed;

	if (fd >= 0 && fd < table_size && table)
		rx = atomic_load_explicit(&table[fd], memory_order_acquire);
	if (!rx || flags)
		return sys_recv(fd, buf, len, flags);
	g = &rx->guard;

	switch (g->mode) {
	case SB_WSG_HTTP:
		/* hand over one header block at a time: see sb_wsguard.h */
		n = sys_recv(fd, buf, len, MSG_PEEK);
		if (n <= 0)
			return n;
		ok = sb_wsguard_http(g, buf, (size_t)n);
		return sys_recv(fd, buf, ok, 0);
	case SB_WSG_WS:
		if (rx->stash_len)
			return from_stash(rx, buf, len);
		n = sys_recv(fd, readbuf, sizeof(readbuf), 0);
		if (n <= 0)
			return n;
		g->rx_seen = true;	/* any frame counts as life */
		ok = sb_wsguard_frames(g, readbuf, (size_t)n);
		failed = ok < (size_t)n;
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
		if (give)
			return (ssize_t)give;
		errno = EAGAIN;
		return -1;
	case SB_WSG_CLOSED:
		/* our close frame is out and the stream cannot be parsed any
		 * more: whatever the client answers ends the connection */
		n = sys_recv(fd, buf, len, 0);
		return n < 0 ? n : 0;
	default:
		errno = EAGAIN;
		return -1;
	}
}
