/*
 * Fuzz target: the frame guard (src/wsguard.c) on what a client sends on
 * one socket: an HTTP request, then WebSocket frames, cut into reads.
 *
 * Input: byte 0 chooses how the stream is cut (fuzz.h); the rest is the
 * stream.  The first header block ("\r\n\r\n") ends the HTTP part; what
 * follows is read as frames.
 *
 * The guard's answers are compared with a reference written here that looks
 * at the whole stream at once: sb_wsguard_http must stop exactly after the
 * first header block, and sb_wsguard_frames must fail in the read that holds
 * the first byte that breaks RFC 6455 (as the guard's header promises) and
 * return the bytes before the offending frame, never more than it was
 * given, and nothing at all once failed.  How the stream is cut must change
 * nothing.  sb_ws_text_header must write a header that reads back as its
 * length, in the fewest bytes.
 */
#include "fuzz.h"

#include "sb_wsguard.h"

#include <stdbool.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where frames[0..len) first break the rules the guard enforces: *frame
 * is where the offending frame starts, and the return value the index of
 * the byte that shows it; SIZE_MAX when nothing in them does. */
static size_t first_violation(const uint8_t *d, size_t len, size_t *frame)
{
	bool in_message = false;
	size_t i = 0;

	while (i < len) {
		uint8_t b0 = d[i], b1;
		unsigned op = b0 & 0x0f;
		bool fin = b0 & 0x80, control = op >= 8;
		uint64_t plen;
		size_t hdr;

		*frame = i;
		if (b0 & 0x70)
			return i;
		if (control) {
			if (op > 10 || !fin)
				return i;
		} else if (op == 0) {
			if (!in_message)
				return i;
			in_message = !fin;
		} else if (op == 1 || op == 2) {
			if (in_message)
				return i;
			in_message = !fin;
		} else {
			return i;
		}
		if (len - i < 2)
			return SIZE_MAX;
		b1 = d[i + 1];
		if (!(b1 & 0x80) || (control && (b1 & 0x7f) > 125))
			return i + 1;
		plen = b1 & 0x7f;
		hdr = 2;
		if (plen == 126) {
			hdr = 4;
		} else if (plen == 127) {
			hdr = 10;
			if (len - i > 2 && (d[i + 2] & 0x80))
				return i + 2;
		}
		if (len - i < hdr)
			return SIZE_MAX;
		if (hdr > 2) {
			plen = 0;
			for (size_t k = 2; k < hdr; k++)
				plen = plen << 8 | d[i + k];
		}
		hdr += 4;	/* the mask */
		if (len - i < hdr || plen > len - i - hdr)
			return SIZE_MAX;
		i += hdr + (size_t)plen;
	}
	return SIZE_MAX;
}

static void check_text_header(const uint8_t *data, size_t size)
{
	unsigned char h[10];
	uint64_t len = 0, back = 0;
	size_t n, want;

	for (size_t i = 0; i < size && i < 8; i++)
		len = len << 8 | data[i];
	len >>= (data[0] % 64);	/* short lengths too */
	n = sb_ws_text_header(h, len);
	want = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
	SB_FUZZ_CHECK(n == want && h[0] == 0x81, "header of %llu: %zu bytes",
		      (unsigned long long)len, n);
	if (n == 2)
		back = h[1];
	for (size_t i = 2; i < n; i++)
		back = back << 8 | h[i];
	SB_FUZZ_CHECK(back == len && (n == 2 || h[1] == (n == 4 ? 126 : 127)),
		      "header of %llu reads back as %llu",
		      (unsigned long long)len, (unsigned long long)back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sb_fuzz_chunks cuts;
	struct sb_wsguard g;
	const uint8_t *s, *hdr_end;
	size_t n, pos = 0, http_end, bad, bad_frame = 0;

	if (size < 1)
		return 0;
	check_text_header(data, size);
	sb_fuzz_chunks_init(&cuts, data[0]);
	s = data + 1;
	n = size - 1;

	/* HTTP: the guard stops right after the first "\r\n\r\n" */
	hdr_end = memmem(s, n, "\r\n\r\n", 4);
	http_end = hdr_end ? (size_t)(hdr_end - s) + 4 : SIZE_MAX;
	sb_wsguard_init(&g);
	while (pos < n) {
		size_t k = sb_fuzz_chunk(&cuts, n - pos);
		size_t want = http_end - pos <= k ? http_end - pos : k;
		size_t got = sb_wsguard_http(&g, s + pos, k);

		SB_FUZZ_CHECK(got == want, "http: %zu of %zu at %zu, expected %zu",
			      got, k, pos, want);
		pos += got;
		if (pos == http_end)
			break;
	}
	if (pos != http_end)
		return 0;

	/* frames */
	sb_wsguard_upgrade(&g);
	bad = first_violation(s + pos, n - pos, &bad_frame);
	if (bad != SIZE_MAX) {
		bad += pos;
		bad_frame += pos;
	}
	while (pos < n) {
		size_t k = sb_fuzz_chunk(&cuts, n - pos);
		size_t got = sb_wsguard_frames(&g, s + pos, k);
		bool hit = bad != SIZE_MAX && bad < pos + k;

		SB_FUZZ_CHECK(got <= k, "frames: %zu of %zu", got, k);
		if (!hit) {
			SB_FUZZ_CHECK(got == k && g.mode == SB_WSG_WS,
				      "frames: failed at %zu+%zu with no violation there "
				      "(first at %zu)", pos, got, bad);
			pos += k;
			continue;
		}
		SB_FUZZ_CHECK(g.mode == SB_WSG_FAILED,
			      "frames: the violation at %zu passed", bad);
		SB_FUZZ_CHECK(got == (bad_frame > pos ? bad_frame - pos : 0),
			      "frames: %zu bytes before the frame at %zu, read at %zu",
			      got, bad_frame, pos);
		pos += k;
		/* failed is for good */
		if (pos < n) {
			k = sb_fuzz_chunk(&cuts, n - pos);
			got = sb_wsguard_frames(&g, s + pos, k);
			SB_FUZZ_CHECK(got == 0 && g.mode == SB_WSG_FAILED,
				      "frames: a failed guard passed %zu bytes", got);
		}
		break;
	}
	return 0;
}
