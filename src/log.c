#include "sb_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int sb_log_threshold = SB_LOG_INFO;

static _Thread_local const char *thread_name = "main";
static int json_lines;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void sb_log_set_level(int level)
{
	atomic_store(&sb_log_threshold, level);
}

void sb_log_set_json(int json)
{
	json_lines = json;
}

/* Appends s to line[*n..cap) as the inside of a JSON string. */
static void put_json(char *line, size_t *n, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s && *n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			line[(*n)++] = '\\';
			line[(*n)++] = (char)c;
		} else if (c < 0x20) {
			memcpy(line + *n, "\\u00", 4);
			line[*n + 4] = hex[c >> 4];
			line[*n + 5] = hex[c & 15];
			*n += 6;
		} else {
			line[(*n)++] = (char)c;
		}
	}
}

static void put_raw(char *line, size_t *n, size_t cap, const char *s)
{
	size_t len = strlen(s);

	if (*n + len >= cap)
		len = cap - *n - 1;
	memcpy(line + *n, s, len);
	*n += len;
}

/* The members every JSON line starts with: {"time","level","thread". */
static void json_head(char *line, size_t *n, size_t cap, const char *when,
		      const char *level)
{
	put_raw(line, n, cap, "{\"time\":\"");
	put_raw(line, n, cap, when);
	put_raw(line, n, cap, "\",\"level\":\"");
	put_raw(line, n, cap, level);
	put_raw(line, n, cap, "\",\"thread\":\"");
	put_json(line, n, cap, thread_name);
	put_raw(line, n, cap, "\"");
}

/* Writes one finished line, whole. */
static void emit_line(char *line, size_t n, size_t cap)
{
	int saved = errno;
	ssize_t w;

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n >= cap - 1)
		n = cap - 2;
	line[n++] = '\n';
	w = write(STDERR_FILENO, line, n);
	(void)w;
	errno = saved;
}

static void stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void sb_log_set_thread_name(const char *name)
{
	thread_name = name;
}

int sb_log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

static void emit_v(int level, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void emit_v(int level, int err, const char *fmt, va_list ap)
{
	char line[1200], msg[1024], when[40], ebuf[128];
	const char *es = NULL;
	size_t n = 0;

	if (level < 0)
		level = 0;
	if (level > SB_LOG_DEBUG)
		level = SB_LOG_DEBUG;
	stamp(when, sizeof(when));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	{
		size_t m = strlen(msg);

		while (m && (msg[m - 1] == '\n' || msg[m - 1] == '\r'))
			msg[--m] = '\0';
	}
	if (err)
		es = strerror_r(err, ebuf, sizeof(ebuf));

	if (json_lines) {
		json_head(line, &n, sizeof(line), when, level_names[level]);
		put_raw(line, &n, sizeof(line), ",\"msg\":\"");
		put_json(line, &n, sizeof(line), msg);
		if (es) {
			put_raw(line, &n, sizeof(line), "\",\"error\":\"");
			put_json(line, &n, sizeof(line), es);
		}
		put_raw(line, &n, sizeof(line), "\"}");
	} else {
		put_raw(line, &n, sizeof(line), when);
		put_raw(line, &n, sizeof(line), " ");
		put_raw(line, &n, sizeof(line), level_names[level]);
		put_raw(line, &n, sizeof(line), " [");
		put_raw(line, &n, sizeof(line), thread_name);
		put_raw(line, &n, sizeof(line), "] ");
		put_raw(line, &n, sizeof(line), msg);
		if (es) {
			put_raw(line, &n, sizeof(line), ": ");
			put_raw(line, &n, sizeof(line), es);
		}
	}
	emit_line(line, n, sizeof(line));
}

void sb_log_emit(int level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_v(level, err, fmt, ap);
	va_end(ap);
}

void sb_log_access(const struct sb_access *a)
{
	char line[1200], when[40], num[96];
	size_t n = 0;

	if (!sb_log_enabled(SB_LOG_INFO))
		return;
	if (!json_lines) {
		char room[300], id[300];
		size_t rn = 0, in = 0;

		/* quoted the JSON way, so a room with spaces stays one field */
		put_json(room, &rn, sizeof(room), a->room);
		room[rn] = '\0';
		put_json(id, &in, sizeof(id), a->id);
		id[in] = '\0';
		sb_log_emit(SB_LOG_INFO, 0,
			    "connection closed: client=%s room=\"%s\" id=\"%s\" "
			    "duration_ms=%lu in=%lu out=%lu cause=%s",
			    a->client, room, id, a->duration_ms, a->in, a->out,
			    a->cause);
		return;
	}
	stamp(when, sizeof(when));
	json_head(line, &n, sizeof(line), when, "info");
	put_raw(line, &n, sizeof(line), ",\"msg\":\"connection closed\",\"client\":\"");
	put_json(line, &n, sizeof(line), a->client);
	put_raw(line, &n, sizeof(line), "\",\"room\":\"");
	put_json(line, &n, sizeof(line), a->room);
	put_raw(line, &n, sizeof(line), "\",\"id\":\"");
	put_json(line, &n, sizeof(line), a->id);
	snprintf(num, sizeof(num), "\",\"duration_ms\":%lu,\"in\":%lu,\"out\":%lu,",
		 a->duration_ms, a->in, a->out);
	put_raw(line, &n, sizeof(line), num);
	put_raw(line, &n, sizeof(line), "\"cause\":\"");
	put_json(line, &n, sizeof(line), a->cause);
	put_raw(line, &n, sizeof(line), "\"}");
	emit_line(line, n, sizeof(line));
}

/* ------------------------------------------------------------ limits */

void sb_log_limit_init(struct sb_log_limit *l, double rate, double burst)
{
	l->rate = rate;
	l->burst = burst;
	l->tokens = burst;
	l->stamp_ns = 0;
	l->started = false;
	l->suppressed = 0;
}

bool sb_log_limit_take(struct sb_log_limit *l, uint64_t now_ns,
		       unsigned long *suppressed)
{
	if (!l->started) {
		l->started = true;
		l->stamp_ns = now_ns;
	} else if (now_ns > l->stamp_ns) {
		l->tokens += (double)(now_ns - l->stamp_ns) / 1e9 * l->rate;
		if (l->tokens > l->burst)
			l->tokens = l->burst;
		l->stamp_ns = now_ns;
	}
	if (l->tokens < 1.0) {
		l->suppressed++;
		return false;
	}
	l->tokens -= 1.0;
	*suppressed = sb_log_limit_drain(l);
	return true;
}

unsigned long sb_log_limit_drain(struct sb_log_limit *l)
{
	unsigned long n = l->suppressed;

	l->suppressed = 0;
	return n;
}

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sb_log_limit client_limit = {	/* {client_lock} */
	.rate = SB_LOG_CLIENT_RATE, .burst = SB_LOG_CLIENT_BURST,
	.tokens = SB_LOG_CLIENT_BURST,
};
static uint64_t (*client_clock)(void);		/* set before threads */

void sb_log_set_clock(uint64_t (*now_ns)(void))
{
	client_clock = now_ns;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	if (client_clock)
		return client_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say_suppressed(int level, unsigned long n)
{
	/* warn, or error when the line it goes with is an error */
	sb_log_emit(level < SB_LOG_WARN ? level : SB_LOG_WARN, 0,
		    "%lu log lines that clients caused were suppressed "
		    "(at most %d at once, then %g a second)",
		    n, SB_LOG_CLIENT_BURST, SB_LOG_CLIENT_RATE);
}

/* Whether a line that clients caused may be written now: takes from the
 * bucket, and says first how many were suppressed before it. */
static bool client_take(int level)
{
	unsigned long suppressed = 0;
	uint64_t now = monotonic_ns();
	bool ok;

	pthread_mutex_lock(&client_lock);
	ok = sb_log_limit_take(&client_limit, now, &suppressed);
	pthread_mutex_unlock(&client_lock);
	if (ok && suppressed)
		say_suppressed(level, suppressed);
	return ok;
}

void sb_log_client_emit(int level, int err, const char *fmt, ...)
{
	va_list ap;

	if (!client_take(level))
		return;
	va_start(ap, fmt);
	emit_v(level, err, fmt, ap);
	va_end(ap);
}

void sb_log_refusal(const struct sb_refusal *r)
{
	char line[1200], when[40], num[64];
	size_t n = 0;

	if (!sb_log_enabled(SB_LOG_INFO) || !client_take(SB_LOG_INFO))
		return;
	if (!json_lines) {
		char origin[800];
		size_t on = 0;

		if (r->origin) {
			/* quoted the JSON way: the client chose it */
			put_raw(origin, &on, sizeof(origin), " origin=\"");
			put_json(origin, &on, sizeof(origin), r->origin);
			put_raw(origin, &on, sizeof(origin), "\"");
		}
		origin[on] = '\0';
		sb_log_emit(SB_LOG_INFO, 0, "refused: client=%s status=%d reason=%s%s",
			    r->client, r->status, r->reason, origin);
		return;
	}
	stamp(when, sizeof(when));
	json_head(line, &n, sizeof(line), when, "info");
	put_raw(line, &n, sizeof(line), ",\"msg\":\"refused\",\"client\":\"");
	put_json(line, &n, sizeof(line), r->client);
	snprintf(num, sizeof(num), "\",\"status\":%d,\"reason\":\"", r->status);
	put_raw(line, &n, sizeof(line), num);
	put_json(line, &n, sizeof(line), r->reason);
	if (r->origin) {
		put_raw(line, &n, sizeof(line), "\",\"origin\":\"");
		put_json(line, &n, sizeof(line), r->origin);
	}
	put_raw(line, &n, sizeof(line), "\"}");
	emit_line(line, n, sizeof(line));
}

void sb_log_client_flush(void)
{
	unsigned long n;

	pthread_mutex_lock(&client_lock);
	n = sb_log_limit_drain(&client_limit);
	pthread_mutex_unlock(&client_lock);
	if (n && sb_log_enabled(SB_LOG_WARN))
		say_suppressed(SB_LOG_WARN, n);
}
