/*
 * The backplane's state for /healthz and /metrics (sb_bpstatus.h).
 */
#include "sb_bpstatus.h"

#include <stdio.h>
#include <string.h>

int sb_bp_status_init(struct sb_bp_status *st)
{
	atomic_init(&st->up, false);
	atomic_init(&st->nodes, 0);
	atomic_init(&st->published, 0);
	atomic_init(&st->received, 0);
	atomic_init(&st->connects, 0);
	for (int i = 0; i <= SB_LAT_BUCKETS; i++)
		atomic_init(&st->hop[i], 0);
	atomic_init(&st->hop_sum_ns, 0);
	snprintf(st->why, sizeof(st->why), "not connected yet");
	return pthread_mutex_init(&st->lock, NULL);
}

void sb_bp_status_destroy(struct sb_bp_status *st)
{
	pthread_mutex_destroy(&st->lock);
}

void sb_bp_status_up(struct sb_bp_status *st)
{
	pthread_mutex_lock(&st->lock);
	st->why[0] = '\0';
	pthread_mutex_unlock(&st->lock);
	atomic_fetch_add(&st->connects, 1);
	atomic_store(&st->up, true);
}

void sb_bp_status_down(struct sb_bp_status *st, const char *why)
{
	atomic_store(&st->up, false);
	atomic_store(&st->nodes, 0);
	pthread_mutex_lock(&st->lock);
	snprintf(st->why, sizeof(st->why), "%s", why);
	pthread_mutex_unlock(&st->lock);
}

void sb_bp_status_hop(struct sb_bp_status *st, unsigned long ns)
{
	int i = 0;

	while (i < SB_LAT_BUCKETS && ns > sb_lat_bounds_ns[i])
		i++;
	atomic_fetch_add_explicit(&st->hop[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->hop_sum_ns, ns, memory_order_relaxed);
}

void sb_bp_status_why(struct sb_bp_status *st, char *buf, size_t cap)
{
	pthread_mutex_lock(&st->lock);
	snprintf(buf, cap, "%s", st->why);
	pthread_mutex_unlock(&st->lock);
}

static void series(struct sb_buf *b, const char *name, const char *type,
		   const char *help, unsigned long v)
{
	char line[256];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name,
		 help, name, type, name, v);
	sb_buf_adds(b, line);
}

void sb_bp_status_render(struct sb_bp_status *st, struct sb_buf *b)
{
	series(b, "switchboard_backplane_up", "gauge",
	       "1 while this node reaches the cluster's Redis, else 0.",
	       atomic_load(&st->up) ? 1 : 0);
	series(b, "switchboard_cluster_nodes", "gauge",
	       "Live nodes of the cluster seen through Redis, this one included.",
	       atomic_load(&st->nodes));
	series(b, "switchboard_backplane_published_total", "counter",
	       "Messages this node sent to other nodes through Redis.",
	       atomic_load(&st->published));
	series(b, "switchboard_backplane_received_total", "counter",
	       "Messages this node received from other nodes through Redis.",
	       atomic_load(&st->received));
	series(b, "switchboard_backplane_connects_total", "counter",
	       "Times this node's connection to Redis came up.",
	       atomic_load(&st->connects));
	{
		unsigned long counts[SB_LAT_BUCKETS + 1];

		for (int i = 0; i <= SB_LAT_BUCKETS; i++)
			counts[i] = atomic_load_explicit(&st->hop[i], memory_order_relaxed);
		sb_metrics_histogram(b, "switchboard_backplane_hop_seconds",
				     "Relays from other nodes: from their receipt there to "
				     "their arrival here, by the nodes' clocks.",
				     counts, atomic_load(&st->hop_sum_ns));
	}
}
