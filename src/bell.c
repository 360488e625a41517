/*
 * A doorbell for a libuv loop (sb_bell.h): an eventfd and a poll handle.
 */
#include "sb_bell.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void on_ring(uv_poll_t *h, int status, int events)
{
	struct sb_bell *b = (struct sb_bell *)(void *)h;
	uint64_t n;

	(void)status;
	(void)events;
	/* reset before the callback: a ring during it wakes the loop again */
	while (read(b->fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	b->cb(b);
}

int sb_bell_init(uv_loop_t *loop, struct sb_bell *b, void (*cb)(struct sb_bell *b))
{
	int rc;

	b->cb = cb;
	b->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->fd < 0)
		return -errno;
	rc = uv_poll_init(loop, &b->poll, b->fd);
	if (rc) {
		close(b->fd);
		b->fd = -1;
		return rc;
	}
	rc = uv_poll_start(&b->poll, UV_READABLE, on_ring);
	if (rc) {
		uv_close((uv_handle_t *)&b->poll, NULL);	/* no longer polled */
		close(b->fd);
		b->fd = -1;
	}
	return rc;
}

void sb_bell_ring(struct sb_bell *b)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is near 2^64: rung already */
	while (write(b->fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void sb_bell_release(struct sb_bell *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}
