/*
 * The plain HTTP endpoints' answers (sb_http.h).
 */
#include "sb_http.h"

#include "sb_bpstatus.h"
#include "sb_metrics.h"
#include "sb_registry.h"
#include "sb_webroot.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define TEXT "text/plain; charset=utf-8"

/* The process's figures, read at most once a second: counting open
 * descriptors lists /proc/self/fd, which is long under load, and /metrics
 * needs no authentication.  Any worker thread. */
static void proc_stats(struct sb_proc_stats *out)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct sb_proc_stats cached;
	static struct timespec at;	/* {lock} when cached was read */
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&lock);
	if ((!at.tv_sec && !at.tv_nsec) ||
	    (now.tv_sec - at.tv_sec) * 1000000000L + (now.tv_nsec - at.tv_nsec) >=
	    1000000000L) {
		sb_proc_stats_read(&cached);
		at = now;
	}
	*out = cached;
	pthread_mutex_unlock(&lock);
}

bool sb_http_is_endpoint(const char *path)
{
	return !strcmp(path, "/healthz") || !strcmp(path, "/metrics");
}

int sb_http_answer(const struct sb_http_src *src, const char *path,
		   struct sb_buf *body,
		   const char **content_type, struct sb_msg **file)
{
	const struct sb_webfile *f;

	*content_type = TEXT;
	*file = NULL;
	if (!strcmp(path, "/healthz")) {
		if (atomic_load_explicit(src->draining, memory_order_relaxed)) {
			sb_buf_adds(body, "draining\n");
			return 503;
		}
		if (src->bp && !atomic_load(&src->bp->up)) {
			char why[SB_BP_WHY_MAX];

			sb_bp_status_why(src->bp, why, sizeof(why));
			sb_buf_adds(body, "backplane unreachable: ");
			sb_buf_adds(body, why);
			sb_buf_adds(body, "\n");
			return 503;
		}
		sb_buf_adds(body, "ok\n");
		return 200;
	}
	if (!strcmp(path, "/metrics")) {
		struct sb_proc_stats proc;
		size_t rooms, peers;

		sb_registry_counts(src->reg, &rooms, &peers);
		proc_stats(&proc);
		sb_metrics_render(body, src->stats, src->nstats, rooms, peers, &proc,
				  atomic_load_explicit(src->accept_pauses,
						       memory_order_relaxed));
		if (src->bp)
			sb_bp_status_render(src->bp, body);
		*content_type = "text/plain; version=0.0.4; charset=utf-8";
		return 200;
	}
	f = sb_webroot_find(src->web, path);
	if (f) {
		*content_type = f->content_type;
		*file = sb_msg_ref(f->body);
		return 200;
	}
	sb_buf_adds(body, "not found\n");
	return 404;
}
