#include "sb_utf8.h"

#include <string.h>

bool sb_utf8_feed(struct sb_utf8 *u, const void *data, size_t n)
{
	const unsigned char *p = data, *end = p + n;

	while (p < end) {
		unsigned char c = *p;

		if (u->need) {
			if (c < u->lo || c > u->hi)
				return false;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xbf;
			p++;
			continue;
		}
		if (c < 0x80) {
			/* skip ASCII eight bytes at a time */
			while (end - p >= 8) {
				uint64_t w;

				memcpy(&w, p, 8);
				if (w & 0x8080808080808080ULL)
					break;
				p += 8;
			}
			while (p < end && *p < 0x80)
				p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			u->need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			u->need = 2;
			if (c == 0xe0)
				u->lo = 0xa0;
			else if (c == 0xed)
				u->hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			u->need = 3;
			if (c == 0xf0)
				u->lo = 0x90;
			else if (c == 0xf4)
				u->hi = 0x8f;
		} else {
			return false;
		}
		p++;
	}
	return true;
}
