#include "sb_http.h"

#include "sb_metrics.h"
#include "sb_server.h"
#include "sb_webroot.h"
#include "sb_worker.h"

#include <string.h>

#define TEXT "text/plain; charset=utf-8"

int sb_http_answer(struct sb_server *srv, const char *path, struct sb_jbuf *body,
		   const char **content_type, struct sb_msg **file)
{
	const struct sb_webfile *f;

	*content_type = TEXT;
	*file = NULL;
	if (!strcmp(path, "/healthz")) {
		if (sb_server_draining(srv)) {
			sb_jbuf_adds(body, "draining\n");
			return 503;
		}
		sb_jbuf_adds(body, "ok\n");
		return 200;
	}
	if (!strcmp(path, "/metrics")) {
		struct sb_stats *stats[SB_WORKERS_MAX];
		struct sb_proc_stats proc;
		size_t rooms, peers;

		for (int i = 0; i < srv->nworkers; i++)
			stats[i] = sb_worker_stats(srv->workers[i]);
		sb_registry_counts(srv->reg, &rooms, &peers);
		sb_proc_stats_read(&proc);
		sb_metrics_render(body, stats, srv->nworkers, rooms, peers, &proc);
		*content_type = "text/plain; version=0.0.4; charset=utf-8";
		return 200;
	}
	f = sb_webroot_find(srv->web, path);
	if (f) {
		*content_type = f->content_type;
		*file = sb_msg_ref(f->body);
		return 200;
	}
	sb_jbuf_adds(body, "not found\n");
	return 404;
}
