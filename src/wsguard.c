#include "sb_wsguard.h"

#include <string.h>

enum { S_BYTE0, S_BYTE1, S_EXTLEN, S_MASK, S_PAYLOAD };

size_t sb_ws_text_header(unsigned char out[10], uint64_t len)
{
	out[0] = 0x81;		/* FIN, text */
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

void sb_wsguard_init(struct sb_wsguard *g)
{
	memset(g, 0, sizeof(*g));
	g->mode = SB_WSG_HTTP;
}

size_t sb_wsguard_http(struct sb_wsguard *g, const void *data, size_t n)
{
	static const char end[] = "\r\n\r\n";
	const char *p = data;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == end[g->crlf]) {
			if (++g->crlf == 4) {
				g->crlf = 0;
				return i + 1;
			}
		} else {
			g->crlf = p[i] == '\r' ? 1 : 0;
		}
	}
	return n;
}

void sb_wsguard_upgrade(struct sb_wsguard *g)
{
	g->mode = SB_WSG_WS;
	g->state = S_BYTE0;
	g->in_message = false;
}

/* The current frame's last byte went by. */
static void frame_done(struct sb_wsguard *g)
{
	if (g->fin && !g->control)
		g->messages++;
}

bool sb_wsguard_unfinished(const struct sb_wsguard *g)
{
	return g->mode == SB_WSG_WS && (g->state != S_BYTE0 || g->in_message);
}

size_t sb_wsguard_frames(struct sb_wsguard *g, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0, frame_start = SIZE_MAX;	/* where the current frame began, if in this call */

	if (g->mode == SB_WSG_FAILED)
		return 0;
	while (i < n) {
		unsigned char b = p[i];

		switch (g->state) {
		case S_BYTE0: {
			bool fin = b & 0x80;
			unsigned op = b & 0x0f;

			frame_start = i;
			g->fin = fin;
			if (b & 0x70)
				goto bad;	/* no extension is ever agreed */
			g->control = op & 0x08;
			if (g->control) {
				if (op > 0x0a || !fin)
					goto bad;
			} else if (op == 0) {
				if (!g->in_message)
					goto bad;	/* continuation of nothing */
				if (fin)
					g->in_message = false;
			} else if (op == 1 || op == 2) {
				if (g->in_message)
					goto bad;	/* new message inside one */
				g->in_message = !fin;
			} else {
				goto bad;		/* reserved opcode */
			}
			g->state = S_BYTE1;
			i++;
			break;
		}
		case S_BYTE1:
			if (!(b & 0x80))
				goto bad;		/* clients must mask */
			b &= 0x7f;
			if (g->control && b > 125)
				goto bad;
			g->remain = 0;
			if (b == 126 || b == 127) {
				g->need = b == 126 ? 2 : 8;
				g->state = S_EXTLEN;
			} else {
				g->remain = b;
				g->need = 4;
				g->state = S_MASK;
			}
			i++;
			break;
		case S_EXTLEN:
			if (g->need == 8 && (b & 0x80))
				goto bad;		/* 64-bit length, top bit set */
			g->remain = (g->remain << 8) | b;
			if (!--g->need) {
				g->need = 4;
				g->state = S_MASK;
			}
			i++;
			break;
		case S_MASK:
			if (!--g->need) {
				g->state = g->remain ? S_PAYLOAD : S_BYTE0;
				if (!g->remain)
					frame_done(g);
			}
			i++;
			break;
		case S_PAYLOAD: {
			size_t take = n - i;

			if (take > g->remain)
				take = (size_t)g->remain;
			g->remain -= take;
			i += take;
			if (!g->remain) {
				g->state = S_BYTE0;
				frame_done(g);
			}
			break;
		}
		}
	}
	return n;
bad:
	g->mode = SB_WSG_FAILED;
	return frame_start == SIZE_MAX ? 0 : frame_start;
}
