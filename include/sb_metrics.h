/*
 * Counters for /metrics.  Each worker owns one struct sb_stats and is its
 * only writer (so an increment is a relaxed load and store, not a locked
 * read-modify-write); any thread may read it to render /metrics.
 */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include "sb_conn.h"
#include "sb_buf.h"
#include "sb_proto.h"
#include "sb_reqcheck.h"

#include <stdatomic.h>
#include <stddef.h>

/* Upper bounds of the relay latency histogram's buckets, in nanoseconds
 * (50 us to 1 s); one more bucket counts what is slower. */
#define SB_LAT_BUCKETS 14
extern const unsigned long sb_lat_bounds_ns[SB_LAT_BUCKETS];

struct sb_stats {
	atomic_ulong connections;	/* open WebSocket connections (gauge) */
	atomic_ulong received;		/* text messages from clients */
	atomic_ulong delivered;		/* messages written to clients */
	atomic_ulong errors[SB_ERR_COUNT];
	atomic_ulong joins_refused[SB_ERR_COUNT];	/* joins, by the error
							 * that refused them */
	atomic_ulong closes[SB_CAUSE_COUNT];
	atomic_ulong refused[SB_REQ_COUNT];	/* HTTP requests, by reason */
	/* receive to write of relayed messages: counts per bucket (not
	 * cumulative; the last is over every bound) and their sum */
	atomic_ulong latency[SB_LAT_BUCKETS + 1];
	atomic_ulong latency_sum_ns;
	/* what waits in the worker's connections' queues: written by any
	 * thread that queues to them (sb_conn.h), not by the owner alone */
	struct sb_qdepth depth;
};

/* Process-wide figures for /metrics; -1 where unknown. */
struct sb_proc_stats {
	long open_fds, max_fds;
	long rss_bytes;
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

/* Counts one relayed message written ns after it was received.  Owner
 * thread only. */
void sb_stat_latency(struct sb_stats *s, unsigned long ns);

/* Reads the process's figures (from /proc on Linux).  Any thread. */
void sb_proc_stats_read(struct sb_proc_stats *p);

/* Appends the Prometheus text exposition of the workers' stats, the
 * registry's counts, the process's figures (proc may be NULL) and the
 * acceptor's pauses to out.
 * Any thread. */
/* Appends a histogram over sb_lat_bounds_ns: counts per bucket (the last
 * is what is slower), the sum of the observations in ns. */
void sb_metrics_histogram(struct sb_buf *out, const char *name, const char *help,
			  const unsigned long counts[SB_LAT_BUCKETS + 1],
			  unsigned long sum_ns);

void sb_metrics_render(struct sb_buf *out, struct sb_stats *const *stats,
		       int nstats, size_t rooms, size_t peers,
		       const struct sb_proc_stats *proc, unsigned long accept_pauses);

#endif
