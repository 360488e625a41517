/*
 * The backplane's state as the rest of the process sees it: whether this
 * node reaches Redis (and why not), the nodes it sees, what it published
 * and received.  The backplane's thread writes (src/backplane.c); any
 * thread reads, for /healthz and /metrics.
 */
#ifndef SB_BPSTATUS_H
#define SB_BPSTATUS_H

#include "sb_buf.h"
#include "sb_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define SB_BP_WHY_MAX 256

struct sb_bp_status {
	atomic_bool up;			/* both connections ready */
	atomic_uint nodes;		/* live nodes seen, this one included */
	atomic_ulong published;		/* messages sent to other nodes */
	atomic_ulong received;		/* messages from other nodes */
	atomic_ulong connects;		/* times the backplane came up */
	/* a relay's hop from the sending node's receipt to this node (by
	 * their wall clocks): counts per bucket of sb_lat_bounds_ns */
	atomic_ulong hop[SB_LAT_BUCKETS + 1];
	atomic_ulong hop_sum_ns;
	pthread_mutex_t lock;		/* leaf */
	char why[SB_BP_WHY_MAX];	/* {lock} why it is down */
};

/* Starts down, "not connected yet".  0 or a pthread error. */
int sb_bp_status_init(struct sb_bp_status *st);
void sb_bp_status_destroy(struct sb_bp_status *st);

/* The backplane is up; or down for why (a short phrase, never the URL). */
void sb_bp_status_up(struct sb_bp_status *st);
void sb_bp_status_down(struct sb_bp_status *st, const char *why);

/* A relay from another node took ns from its receipt there to here. */
void sb_bp_status_hop(struct sb_bp_status *st, unsigned long ns);

/* Copies why it is down into buf (cap >= 1). */
void sb_bp_status_why(struct sb_bp_status *st, char *buf, size_t cap);

/* Appends the backplane's series to a /metrics answer:
 * switchboard_backplane_up, switchboard_cluster_nodes,
 * switchboard_backplane_published_total, ..._received_total,
 * ..._connects_total, and the histogram
 * switchboard_backplane_hop_seconds. */
void sb_bp_status_render(struct sb_bp_status *st, struct sb_buf *out);

#endif
