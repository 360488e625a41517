#include "sb_msg.h"

#include <stdlib.h>
#include <string.h>

struct sb_msg *sb_msg_new(size_t len)
{
	struct sb_msg *m;

	if (len > UINT32_MAX)
		return NULL;
	m = malloc(sizeof(*m) + len);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->len = (uint32_t)len;
	m->t_rx = 0;
	return m;
}

struct sb_msg *sb_msg_from(const void *data, size_t len)
{
	struct sb_msg *m = sb_msg_new(len);

	if (m && len)
		memcpy(m->data, data, len);
	return m;
}

void sb_msg_unref(struct sb_msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}
