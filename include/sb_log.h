/*
 * Levelled, thread-safe logging to standard error.
 *
 * Any thread may call sb_log() at any time.  Each call writes one whole line
 * with a single write(2), so lines from different threads never interleave.
 * The level is checked before anything is formatted.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stdatomic.h>

enum sb_log_level {
	SB_LOG_ERROR = 0,
	SB_LOG_WARN = 1,
	SB_LOG_INFO = 2,
	SB_LOG_DEBUG = 3,
};

extern atomic_int sb_log_threshold;

/* sb_log(level, err, fmt, ...): err is an errno value appended as
 * ": <strerror>", or 0 for none. */
#define sb_log(level, err, ...)                                               \
	do {                                                                  \
		if ((int)(level) <= atomic_load_explicit(&sb_log_threshold,   \
					memory_order_relaxed))                \
			sb_log_emit((level), (err), __VA_ARGS__);             \
	} while (0)

#define sb_log_enabled(level)                                                 \
	((int)(level) <= atomic_load_explicit(&sb_log_threshold,              \
					      memory_order_relaxed))

void sb_log_emit(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void sb_log_set_level(int level);

/* Lines as JSON objects ({"time","level","thread","msg","error"?}) instead
 * of text.  main, before other threads start. */
void sb_log_set_json(int json);

/* What the access line of one closed WebSocket connection says. */
struct sb_access {
	const char *client;	/* the client's address */
	const char *room, *id;	/* "" when not joined at the end */
	unsigned long duration_ms;
	unsigned long in, out;	/* messages received and sent */
	const char *cause;	/* as in switchboard_closes_total */
};

/* Logs the access line at info level: in text "connection closed:
 * client=... room=... id=... duration_ms=... in=... out=... cause=...", in
 * JSON the same as members.  Any thread. */
void sb_log_access(const struct sb_access *a);

/* Names the calling thread in its log lines ("main", "acceptor",
 * "worker-2"); the string must outlive the thread. */
void sb_log_set_thread_name(const char *name);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int sb_log_level_parse(const char *s);

#endif
