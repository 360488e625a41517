#include "sb_recv_hook.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic(struct sb_wsguard *) *table;	/* [fd]; set before threads */
static int table_size;
static void (*fail_cb)(struct sb_wsguard *g);

int sb_recv_hook_init(int nfds, void (*on_fail)(struct sb_wsguard *g))
{
	table = calloc((size_t)nfds, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table_size = nfds;
	fail_cb = on_fail;
	return 0;
}

void sb_recv_hook_attach(int fd, struct sb_wsguard *g)
{
	if (fd >= 0 && fd < table_size)
		atomic_store_explicit(&table[fd], g, memory_order_release);
}

void sb_recv_hook_detach(int fd, struct sb_wsguard *g)
{
	struct sb_wsguard *expect = g;

	if (fd >= 0 && fd < table_size)
		atomic_compare_exchange_strong(&table[fd], &expect, NULL);
}

static ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t recv(int fd, void *buf, size_t len, int flags);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct sb_wsguard *g = NULL;
	ssize_t n;
	size_t ok;

	if (fd >= 0 && fd < table_size && table)
		g = atomic_load_explicit(&table[fd], memory_order_acquire);
	if (!g || flags)
		return sys_recv(fd, buf, len, flags);

	switch (g->mode) {
	case SB_WSG_HTTP:
		/* hand over one header block at a time: see sb_wsguard.h */
		n = sys_recv(fd, buf, len, MSG_PEEK);
		if (n <= 0)
			return n;
		ok = sb_wsguard_http(g, buf, (size_t)n);
		return sys_recv(fd, buf, ok, 0);
	case SB_WSG_WS:
		n = sys_recv(fd, buf, len, 0);
		if (n <= 0)
			return n;
		g->rx_seen = true;	/* any frame counts as life */
		ok = sb_wsguard_frames(g, buf, (size_t)n);
		if (ok == (size_t)n)
			return n;
		if (fail_cb)
			fail_cb(g);
		if (ok)
			return (ssize_t)ok;
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
