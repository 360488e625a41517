/*
 * Counters for /metrics.  Each worker owns one struct sb_stats and is its
 * only writer (so an increment is a relaxed load and store, not a locked
 * read-modify-write); any thread may read it to render /metrics.
 */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include "sb_jbuf.h"
#include "sb_proto.h"

#include <stdatomic.h>
#include <stddef.h>

struct sb_stats {
	atomic_ulong connections;	/* open WebSocket connections (gauge) */
	atomic_ulong received;		/* text messages from clients */
	atomic_ulong delivered;		/* messages written to clients */
	atomic_ulong errors[SB_ERR_COUNT];
	atomic_ulong closes[SB_CAUSE_COUNT];
};

/* Single-writer update: only the owning thread may call these. */
static inline void sb_stat_add(atomic_ulong *v, unsigned long n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void sb_stat_sub(atomic_ulong *v, unsigned long n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

/* Appends the Prometheus text exposition of the workers' stats and the
 * registry's counts to out.  Any thread. */
void sb_metrics_render(struct sb_jbuf *out, struct sb_stats *const *stats,
		       int nstats, size_t rooms, size_t peers);

#endif
