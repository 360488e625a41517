#include "sb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int sb_log_threshold = SB_LOG_INFO;

static _Thread_local const char *thread_name = "main";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void sb_log_set_level(int level)
{
	atomic_store(&sb_log_threshold, level);
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

void sb_log_emit(int level, int err, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if (level < 0)
		level = 0;
	if (level > SB_LOG_DEBUG)
		level = SB_LOG_DEBUG;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s [%s] ",
		     ts.tv_nsec / 1000000, level_names[level], thread_name);
	if (r > 0)
		n += (size_t)r;

	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;

	if (err && n < sizeof(line) - 2) {
		char ebuf[128];
		const char *es = strerror_r(err, ebuf, sizeof(ebuf));

		r = snprintf(line + n, sizeof(line) - n, ": %s", es);
		if (r > 0)
			n += (size_t)r < sizeof(line) - n ? (size_t)r
							  : sizeof(line) - n - 1;
	}
	/* strip what a caller (or libwebsockets) ended with, then end once */
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';

	{
		int saved = errno;
		ssize_t w = write(STDERR_FILENO, line, n);

		(void)w;
		errno = saved;
	}
}
