/*
 * Fuzz target: incremental UTF-8 validation (src/utf8.c).
 *
 * Input: byte 0 chooses how the text is cut (fuzz.h); the rest is the text.
 * The streaming validator, fed piece by piece, must agree with a one-shot
 * decoder written here from RFC 3629's table: it fails in the piece that
 * holds the first byte that cannot be UTF-8, not before, and after each
 * piece it accepted, sb_utf8_complete says whether the text so far ends on a
 * character boundary.  Fed whole and byte by byte it must agree as well.
 */
#include "fuzz.h"

#include "sb_utf8.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Decodes s[0..n): the index of the first byte that shows the text is not
 * UTF-8 (SIZE_MAX when none does), and in bounds[i] (n + 1 entries)
 * whether the first i bytes end on a character boundary, for every i up to
 * that byte.
 */
static size_t first_bad(const uint8_t *s, size_t n, bool *bounds)
{
	size_t i = 0;

	bounds[0] = true;
	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			bounds[++i] = true;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return i;	/* a continuation byte, or 0xf8.. */
		}
		/* the lead byte alone can already be hopeless */
		if (c == 0xc0 || c == 0xc1 || c > 0xf4)
			return i;
		for (size_t k = 1; k < len; k++) {
			bounds[i + k] = false;	/* the first i + k bytes end
						 * inside this character */
			if (i + k >= n)
				return SIZE_MAX;
			if ((s[i + k] & 0xc0) != 0x80)
				return i + k;
			cp = cp << 6 | (s[i + k] & 0x3f);
			/* overlong, surrogate or too large shows by the
			 * second byte: reject there, as a streaming
			 * validator must */
			if (k == 1) {
				uint32_t top = cp << 6 * (uint32_t)(len - 2);

				if (top < min || (top >= 0xd800 && top <= 0xdfff) ||
				    top > 0x10ffff)
					return i + k;
			}
		}
		i += len;
		bounds[i] = true;
	}
	return SIZE_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool bounds[1 << 20];
	struct sb_fuzz_chunks cuts;
	struct sb_utf8 u;
	const uint8_t *s;
	size_t n, bad, pos = 0;
	bool ok;

	if (size < 1 || size > sizeof(bounds) - 1)
		return 0;
	sb_fuzz_chunks_init(&cuts, data[0]);
	s = data + 1;
	n = size - 1;
	bad = first_bad(s, n, bounds);

	/* whole */
	sb_utf8_init(&u);
	ok = sb_utf8_feed(&u, s, n);
	SB_FUZZ_CHECK(ok == (bad == SIZE_MAX), "whole: %d, first bad byte %zu",
		      ok, bad);
	if (ok)
		SB_FUZZ_CHECK(sb_utf8_complete(&u) == bounds[n],
			      "whole: complete %d, expected %d",
			      sb_utf8_complete(&u), bounds[n]);

	/* in pieces */
	sb_utf8_init(&u);
	while (pos < n) {
		size_t k = sb_fuzz_chunk(&cuts, n - pos);
		bool hit = bad != SIZE_MAX && bad < pos + k;

		ok = sb_utf8_feed(&u, s + pos, k);
		SB_FUZZ_CHECK(ok == !hit, "piece %zu+%zu: %d, first bad byte %zu",
			      pos, k, ok, bad);
		if (!ok)
			break;
		pos += k;
		SB_FUZZ_CHECK(sb_utf8_complete(&u) == bounds[pos],
			      "after %zu bytes: complete %d, expected %d", pos,
			      sb_utf8_complete(&u), bounds[pos]);
	}

	/* byte by byte */
	sb_utf8_init(&u);
	for (pos = 0; pos < n; pos++) {
		ok = sb_utf8_feed(&u, s + pos, 1);
		SB_FUZZ_CHECK(ok == (pos != bad), "byte %zu: %d, first bad %zu",
			      pos, ok, bad);
		if (!ok)
			break;
	}
	return 0;
}
