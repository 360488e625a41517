#include "sb_buf.h"

#include <stdlib.h>
#include <string.h>

void sb_buf_init(struct sb_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void sb_buf_release(struct sb_buf *b)
{
	free(b->p);
	sb_buf_init(b, b->max);
}

void sb_buf_reset(struct sb_buf *b)
{
	b->len = 0;
	b->failed = false;
}

static bool reserve(struct sb_buf *b, size_t more)
{
	size_t need, ncap;
	char *np;

	if (b->failed)
		return false;
	if (more > b->max || b->len > b->max - more) {
		b->failed = true;
		return false;
	}
	need = b->len + more;
	if (need <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->max)
		ncap = b->max;
	np = realloc(b->p, ncap);
	if (!np) {
		b->failed = true;
		return false;
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

void sb_buf_add(struct sb_buf *b, const void *data, size_t len)
{
	if (!reserve(b, len))
		return;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

void sb_buf_adds(struct sb_buf *b, const char *s)
{
	sb_buf_add(b, s, strlen(s));
}

void sb_buf_add_jstr(struct sb_buf *b, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)data;
	size_t start = 0;

	sb_buf_add(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		char esc[6];
		size_t n;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_buf_add(b, data + start, i - start);
		start = i + 1;
		n = 2;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		sb_buf_add(b, esc, n);
	}
	sb_buf_add(b, data + start, len - start);
	sb_buf_add(b, "\"", 1);
}
