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
#include <stdbool.h>
#include <stdint.h>

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

/*
 * A token bucket for log lines: rate lines a second on average, at most
 * burst at once, starting full.  Pure: the caller passes the time and
 * serializes the calls.
 */
struct sb_log_limit {
	double rate, burst;
	double tokens;
	uint64_t stamp_ns;		/* the time tokens was last brought up */
	bool started;			/* stamp_ns is set */
	unsigned long suppressed;	/* lines refused since the last one let
					 * through */
};

void sb_log_limit_init(struct sb_log_limit *l, double rate, double burst);

/* Whether one more line may be written at now_ns (any monotonic clock, in
 * nanoseconds; a clock that goes back refills nothing).  When it may,
 * *suppressed is set to how many were refused since the last line let
 * through, and that count starts again; when not, the line is counted. */
bool sb_log_limit_take(struct sb_log_limit *l, uint64_t now_ns,
		       unsigned long *suppressed);

/* Takes the count of lines refused so far (0 if none) and starts it again. */
unsigned long sb_log_limit_drain(struct sb_log_limit *l);

/* The process's limit on lines that clients can cause. */
#define SB_LOG_CLIENT_BURST 20
#define SB_LOG_CLIENT_RATE 1.0	/* a second, after the burst */

/*
 * sb_log_client(level, err, fmt, ...): a line that clients can cause
 * (libwebsockets' own, the acceptor running out of descriptors): as sb_log,
 * but all such lines of the process together pass one token bucket,
 * SB_LOG_CLIENT_BURST at once and SB_LOG_CLIENT_RATE a second after that.
 * The lines over it are counted, and the next line let through is preceded
 * by one that says how many were suppressed.  Any thread.
 */
#define sb_log_client(level, err, ...)                                        \
	do {                                                                  \
		if (sb_log_enabled(level))                                    \
			sb_log_client_emit((level), (err), __VA_ARGS__);      \
	} while (0)

void sb_log_client_emit(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* What the line about one refused request or upgrade says. */
struct sb_refusal {
	const char *client;	/* the client's address */
	int status;		/* the answer's HTTP status, 0 when none was
				 * sent (the connection was closed) */
	const char *reason;	/* as in switchboard_http_refused_total */
	const char *origin;	/* the Origin refused, or NULL (a long one
				 * is cut to fit the line) */
};

/* Logs a refusal at info level, within the limit of the lines clients
 * cause (as sb_log_client): in text "refused: client=... status=...
 * reason=..." and origin="..." (quoted the JSON way) when there is one, in
 * JSON the same as members with "msg":"refused".  Any thread. */
void sb_log_refusal(const struct sb_refusal *r);

/* Writes the line about suppressed client lines now, if any were
 * suppressed since the last one let through (at exit).  Any thread. */
void sb_log_client_flush(void);

/* The clock the client limit reads, in nanoseconds (CLOCK_MONOTONIC when
 * NULL, the default); it also refills the bucket.  For tests: main, before
 * other threads log. */
void sb_log_set_clock(uint64_t (*now_ns)(void));

#endif
