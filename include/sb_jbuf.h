/*
 * A growable byte buffer for building JSON text, with a hard maximum.
 * Appends after a failure are no-ops, so a caller may append a whole
 * document and check sb_jbuf_failed() once at the end.
 * Not synchronized: one owner.
 */
#ifndef SB_JBUF_H
#define SB_JBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sb_jbuf {
	char *p;
	size_t len, cap, max;
	bool failed;	/* out of memory or over max */
};

void sb_jbuf_init(struct sb_jbuf *b, size_t max);
void sb_jbuf_release(struct sb_jbuf *b);
void sb_jbuf_reset(struct sb_jbuf *b);	/* len 0, not failed; keeps memory */

void sb_jbuf_add(struct sb_jbuf *b, const void *data, size_t len);
void sb_jbuf_adds(struct sb_jbuf *b, const char *s);	/* NUL-terminated */

/* Appends data as a JSON string literal with its quotes.  data must be
 * valid UTF-8; '"', '\\' and control characters are escaped. */
void sb_jbuf_add_jstr(struct sb_jbuf *b, const char *data, size_t len);

static inline bool sb_jbuf_failed(const struct sb_jbuf *b)
{
	return b->failed;
}

#endif
