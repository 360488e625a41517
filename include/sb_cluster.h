/*
 * What a session needs of the cluster's backplane (struct sb_cluster_ops),
 * and the answer to a join that the backplane let in or refused (struct
 * sb_join_answer).  No Redis here: the backplane (src/backplane.c)
 * implements the operations; tests implement them by hand.
 *
 * A join in a cluster is asked of the backplane and answered later: the
 * backplane puts the answer on the connection (sb_conn_answer, any thread)
 * and schedules it; the owner hands it to the session
 * (sb_session_answered).  Until then the session holds what its client
 * sends (sb_session.h).
 */
#ifndef SB_CLUSTER_H
#define SB_CLUSTER_H

#include "sb_proto.h"
#include "sb_registry.h"

#include <stdbool.h>
#include <stddef.h>

#define SB_SID_MAX 48			/* bytes of a sid: "<node>:<n>" */

struct sb_conn;
struct sb_msg;

/* The backplane's answer to a join. */
struct sb_join_answer {
	enum sb_err err;		/* SB_ERR_NONE: let in; or ID_TAKEN,
					 * ROOM_FULL, UNAVAILABLE */
	struct sb_snapshot snap;	/* when let in: the room in Redis */
	void *owned;			/* what snap points into */
};

/* Frees a and what it owns.  NULL is fine. */
void sb_join_answer_free(struct sb_join_answer *a);

/* A refusal: err only.  NULL when out of memory. */
struct sb_join_answer *sb_join_answer_refused(enum sb_err err);

struct sb_cluster_ops {
	void *arg;
	/* Whether the backplane reaches Redis now.  Any thread. */
	bool (*up)(void *arg);
	/* Writes a new sid, unique in the cluster, to buf (SB_SID_MAX bytes)
	 * and returns its length.  Any thread. */
	size_t (*sid)(void *arg, char *buf);
	/* Asks the backplane to let c join room as id with nick under sid;
	 * the answer comes on c (sb_conn_answer), even when the backplane
	 * goes away meanwhile (then UNAVAILABLE).  0, or -1 when it cannot
	 * be asked now (nothing will come).  c's owner. */
	int (*join)(void *arg, struct sb_conn *c, const char *room, size_t room_len,
		    const char *id, size_t id_len, const char *nick, size_t nick_len,
		    const char *sid, size_t sid_len);
	/* The member id (under sid) left room: the other nodes are told.
	 * c's owner. */
	void (*leave)(void *arg, const char *room, size_t room_len,
		      const char *id, size_t id_len, const char *sid, size_t sid_len);
	/* Queues m, a relay written by sb_bpmsg_relay, to node
	 * (SB_NODE_LEN bytes).  Runs under the registry's read lock: it may
	 * only queue.  Any thread. */
	void (*publish)(void *arg, const char *node, struct sb_msg *m);
};

#endif
