/*
 * The cluster's backplane: this node's connections to Redis (--redis), on
 * a thread of their own with their own libuv loop, so that nothing a Redis
 * server does can block a worker.  It keeps this node registered as live
 * (a sorted set of nodes scored by their last sign of life, in Redis's
 * clock), watches Redis answer, reconnects with backoff when it does not,
 * and reports through struct sb_bp_status.
 *
 * Threads: sb_backplane_start and sb_backplane_stop are main's; everything
 * else runs on the backplane's thread, which owns both hiredis contexts.
 */
#ifndef SB_BACKPLANE_H
#define SB_BACKPLANE_H

#include "sb_bpstatus.h"
#include "sb_cluster.h"
#include "sb_config.h"
#include "sb_registry.h"

struct sb_backplane;

/* Starts the thread for cfg->redis (cfg must outlive it); it reports to
 * st, and applies what other nodes send to reg (whose node it sets).  NULL
 * when the thread cannot be made (logged).  main, before the workers. */
struct sb_backplane *sb_backplane_start(const struct sb_config *cfg,
					struct sb_bp_status *st,
					struct sb_registry *reg);

/* What sessions call (sb_cluster.h); valid until sb_backplane_stop. */
const struct sb_cluster_ops *sb_backplane_ops(struct sb_backplane *bp);

/* Leaves the cluster (this node's entry removed, if Redis answers within a
 * second) and stops and frees the backplane.  NULL is fine. */
void sb_backplane_stop(struct sb_backplane *bp);

/* This node's id: 16 hex digits, random at each start. */
const char *sb_backplane_node(const struct sb_backplane *bp);

#endif
