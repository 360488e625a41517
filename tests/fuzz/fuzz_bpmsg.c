/*
 * Fuzz target: messages between cluster nodes (src/bpmsg.c), as they
 * arrive from Redis on a node's channel.
 *
 * What parses must have its fields inside the input, and written back with
 * the writers must give the same bytes: the form is exact, so there is one
 * way to write each message (a pack of relays too, relay by relay).
 */
#include "fuzz.h"

#include "sb_bpmsg.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const struct sb_bpfield *f, const uint8_t *data, size_t size)
{
	if (!f->len)
		return;
	SB_FUZZ_CHECK((const uint8_t *)f->p >= data &&
		      (const uint8_t *)f->p + f->len <= data + size,
		      "a field outside the input");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sb_bpmsg m;
	struct sb_buf b;

	if (sb_bpmsg_parse(&m, data, size))
		return 0;
	inside(&m.epoch, data, size);
	inside(&m.room, data, size);
	inside(&m.id, data, size);
	inside(&m.sid, data, size);
	inside(&m.nick, data, size);
	inside(&m.body, data, size);
	sb_buf_init(&b, size + 64);
	if (m.kind == SB_BPMSG_JOIN || m.kind == SB_BPMSG_LEAVE) {
		sb_bpmsg_event(&b, m.kind, m.seq, &m.epoch, &m.room, &m.id, &m.sid,
			       &m.nick);
	} else if (m.kind == SB_BPMSG_PACK) {
		struct sb_bpfield pack = m.body, r;
		size_t at = 0;
		int rc;

		sb_buf_add(&b, "P", 1);
		while ((rc = sb_bpmsg_next(&pack, &at, &r)) == 1) {
			struct sb_bpmsg one;

			inside(&r, data, size);
			if (!sb_bpmsg_parse(&one, r.p, r.len))
				inside(&one.body, data, size);
			sb_bpmsg_pack_add(&b, r.p, r.len);
		}
		SB_FUZZ_CHECK(rc == 0, "a pack that parsed does not walk");
	} else {
		sb_bpmsg_relay(&b, m.kind, m.sent_us, m.room.p, m.room.len, m.id.p,
			       m.id.len, m.body.p, m.body.len);
	}
	SB_FUZZ_CHECK(!sb_buf_failed(&b), "the writer failed");
	SB_FUZZ_CHECK(b.len == size && !memcmp(b.p, data, size),
		      "written back differently (%zu bytes for %zu)", b.len, size);
	sb_buf_release(&b);
	return 0;
}
