/*
 * Messages between cluster nodes (sb_bpmsg.h): the parser, strict about
 * every byte, and the writers.
 */
#include "sb_bpmsg.h"

#include <string.h>

/* A decimal number at p[*i..n) ending at stop (which is consumed): no
 * sign, no leading zero (but "0"), at most max.  0 or -1. */
static int number(const char *p, size_t n, size_t *i, char stop, uint64_t max,
		  uint64_t *v)
{
	size_t start = *i;
	uint64_t x = 0;

	while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
		x = x * 10 + (uint64_t)(p[*i] - '0');
		if (x > max)
			return -1;
		(*i)++;
	}
	if (*i == start || *i >= n || p[*i] != stop)
		return -1;
	if (p[start] == '0' && *i - start > 1)
		return -1;
	(*i)++;
	*v = x;
	return 0;
}

/* One "<len>:<bytes>" field at p[*i..n).  0 or -1. */
static int field(const char *p, size_t n, size_t *i, struct sb_bpfield *f)
{
	uint64_t len;

	if (number(p, n, i, ':', n, &len) || len > n - *i)
		return -1;
	f->p = p + *i;
	f->len = (size_t)len;
	*i += (size_t)len;
	return 0;
}

int sb_bpmsg_parse(struct sb_bpmsg *m, const void *data, size_t n)
{
	const char *p = data;
	size_t i = 1;

	memset(m, 0, sizeof(*m));
	if (!n)
		return -1;
	switch (p[0]) {
	case SB_BPMSG_JOIN:
	case SB_BPMSG_LEAVE:
		m->kind = (enum sb_bpmsg_kind)p[0];
		if (number(p, n, &i, ' ', SB_BPMSG_SEQ_MAX, &m->seq) ||
		    field(p, n, &i, &m->epoch) || field(p, n, &i, &m->room) ||
		    field(p, n, &i, &m->id) || field(p, n, &i, &m->sid) ||
		    field(p, n, &i, &m->nick) || i != n)
			return -1;
		return 0;
	case SB_BPMSG_PACK:
		m->kind = SB_BPMSG_PACK;
		if (n == 1)
			return -1;	/* a P holds at least one relay */
		while (i < n) {
			struct sb_bpfield f;

			if (field(p, n, &i, &f))
				return -1;
		}
		m->body.p = p + 1;
		m->body.len = n - 1;
		return 0;
	case SB_BPMSG_TO:
	case SB_BPMSG_ALL:
		m->kind = (enum sb_bpmsg_kind)p[0];
		if (number(p, n, &i, ' ', SB_BPMSG_US_MAX, &m->sent_us) ||
		    field(p, n, &i, &m->room) || field(p, n, &i, &m->id))
			return -1;
		m->body.p = p + i;
		m->body.len = n - i;
		return 0;
	default:
		return -1;
	}
}

int sb_bpmsg_next(const struct sb_bpfield *pack, size_t *at,
		  struct sb_bpfield *relay)
{
	if (*at >= pack->len)
		return 0;
	return field(pack->p, pack->len, at, relay) ? -1 : 1;
}

/* Appends v in decimal, then end. */
static void put_num(struct sb_buf *out, uint64_t v, char end)
{
	char num[24];
	size_t i = sizeof(num);

	num[--i] = end;
	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_buf_add(out, num + i, sizeof(num) - i);
}

static void put_field(struct sb_buf *out, const void *p, size_t len)
{
	put_num(out, len, ':');
	sb_buf_add(out, p, len);
}

void sb_bpmsg_pack_add(struct sb_buf *out, const void *relay, size_t len)
{
	put_field(out, relay, len);
}

void sb_bpmsg_relay(struct sb_buf *out, enum sb_bpmsg_kind kind, uint64_t sent_us,
		    const char *room, size_t room_len, const char *who,
		    size_t who_len, const void *body, size_t body_len)
{
	char k = (char)kind;

	sb_buf_add(out, &k, 1);
	put_num(out, sent_us, ' ');
	put_field(out, room, room_len);
	put_field(out, who, who_len);
	sb_buf_add(out, body, body_len);
}

void sb_bpmsg_event(struct sb_buf *out, enum sb_bpmsg_kind kind, uint64_t seq,
		    const struct sb_bpfield *epoch, const struct sb_bpfield *room,
		    const struct sb_bpfield *id, const struct sb_bpfield *sid,
		    const struct sb_bpfield *nick)
{
	char k = (char)kind;

	sb_buf_add(out, &k, 1);
	put_num(out, seq, ' ');
	put_field(out, epoch->p, epoch->len);
	put_field(out, room->p, room->len);
	put_field(out, id->p, id->len);
	put_field(out, sid->p, sid->len);
	put_field(out, nick->p, nick->len);
}
