#include "sb_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 4
/* An empty ring larger than this is given back. */
#define KEEP_CAP 16

void sb_queue_init(struct sb_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void sb_queue_clear(struct sb_queue *q)
{
	while (q->count) {
		sb_msg_unref(q->ring[q->head]);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	q->head = 0;
	q->bytes = 0;
	if (q->cap > KEEP_CAP) {
		free(q->ring);
		q->ring = NULL;
		q->cap = 0;
	}
}

void sb_queue_release(struct sb_queue *q)
{
	sb_queue_clear(q);
	free(q->ring);
	sb_queue_init(q);
}

static int grow(struct sb_queue *q)
{
	size_t ncap = q->cap ? q->cap * 2 : MIN_CAP;
	struct sb_msg **nring;

	if (ncap < q->cap)
		return -ENOMEM;
	nring = malloc(ncap * sizeof(*nring));
	if (!nring)
		return -ENOMEM;
	/* unroll the ring so that the oldest lands at index 0 */
	for (size_t i = 0; i < q->count; i++)
		nring[i] = q->ring[(q->head + i) & (q->cap - 1)];
	free(q->ring);
	q->ring = nring;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int sb_queue_push(struct sb_queue *q, struct sb_msg *m)
{
	if (q->count == q->cap && grow(q))
		return -ENOMEM;
	q->ring[(q->head + q->count) & (q->cap - 1)] = m;
	q->count++;
	q->bytes += m->len;
	return 0;
}

struct sb_msg *sb_queue_pop(struct sb_queue *q)
{
	struct sb_msg *m;

	if (!q->count)
		return NULL;
	m = q->ring[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
	q->bytes -= m->len;
	if (!q->count) {
		q->head = 0;
		if (q->cap > KEEP_CAP) {
			free(q->ring);
			q->ring = NULL;
			q->cap = 0;
		}
	}
	return m;
}
