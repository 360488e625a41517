/*
 * The backplane's insides, shared by its two files: src/backplane.c (the
 * thread, the connections to Redis, liveness) and src/bpwork.c (the work:
 * what the workers ask, what other nodes send, this node's members and
 * their registration again after an outage).  Everything here belongs to
 * the backplane's thread, except the queue ({qlock}) and what is marked.
 */
#ifndef SB_BPINT_H
#define SB_BPINT_H

#include "sb_backplane.h"
#include "sb_bell.h"
#include "sb_buf.h"
#include "sb_cluster.h"
#include "sb_map.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TICK_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define LEAVE_WAIT_MS 1000
#define HOST_W 60		/* bytes of the host a reason holds */
#define BATCH_NODES 8		/* nodes one pass gathers relays for at once */
#define BATCH_BYTES 65536	/* a batch is sent once it holds this much */
#define BATCH_GAP 160		/* room before a batch for its command's head */

/* The keys are in the database of --redis (src/lua, docs/cluster-data.md).
 * Channels are not per database in Redis: theirs carry its number. */

enum bp_state { BP_DOWN, BP_CONNECTING, BP_UP, BP_LEAVING };

/* The scripts (src/lua): loaded at each connect (SCRIPT LOAD), then run by
 * their SHA1 (EVALSHA), so that a join does not carry the script's text. */
enum bp_script { S_JOIN, S_LEAVE, S_BEAT, S_DRAIN, S_PRUNE, S_REJOIN, S_SNAPSHOT,
		 S_COUNT };

/* Work a worker hands the backplane (sb_cluster_ops). */
enum req_kind { R_JOIN, R_LEAVE, R_PUBLISH };

struct bp_req {
	struct bp_req *next;
	enum req_kind kind;
	struct sb_conn *conn;		/* R_JOIN: a reference, for the answer */
	struct sb_msg *msg;		/* R_PUBLISH: a reference */
	char node[SB_NODE_LEN];		/* R_PUBLISH: where to */
	uint32_t room_len, id_len, nick_len, sid_len, max;
	char data[];			/* room, id, nick, sid */
};

/* The relays bound for one node in one pass of the queue: one PUBLISH
 * (src/bpwork.c, gather()). */
struct bp_batch {
	char node[SB_NODE_LEN];
	unsigned n;			/* relays in it */
	size_t first;			/* where the first relay's bytes begin */
	struct sb_buf buf;		/* BATCH_GAP bytes, then a P message
					 * (sb_bpmsg.h) of the relays */
};

/* A member of this node as Redis should know it: what is registered again
 * after Redis was away (rejoin.lua). */
struct bp_member {
	struct sb_conn *conn;		/* a reference: closed if its id was
					 * taken meanwhile */
	uint32_t room_len, id_len, nick_len, sid_len;
	char data[];			/* room, id, nick, sid (the key) */
};

struct sb_backplane {
	const struct sb_config *cfg;
	struct sb_bp_status *st;
	struct sb_registry *reg;
	char node[17];
	char run_id[48];		/* the Redis process's run_id (INFO
					 * server), read at each connect: what
					 * this node's mark in sb:synced names */
	char chan[64];			/* this node's channel */
	char prefix[48];		/* every node's channel but the node */
	struct sb_cluster_ops ops;	/* what sessions call; immutable */
	atomic_ulong sids;		/* the last sid's number */

	pthread_mutex_t qlock;		/* leaf: taken under the registry's */
	struct bp_req *qhead, **qtail;	/* {qlock} */
	pthread_t thread;
	bool thread_made;
	uv_loop_t loop;
	struct sb_bell wake;		/* the queue's doorbell; stop */
	uv_timer_t tick;
	atomic_bool stopping;

	/* the loop's thread only */
	redisAsyncContext *cmd, *sub;
	enum bp_state state;
	bool cmd_ready, sub_ready;
	bool skip_replies;		/* Redis takes CLIENT REPLY SKIP */
	char sha[S_COUNT][41];		/* each script's SHA1 in Redis, as
					 * SCRIPT LOAD answered; "": run it
					 * with EVAL (SCRIPT refused) */
	uint64_t asked_ms;		/* a heartbeat unanswered since; 0 */
	uint64_t beat_ms;		/* the last heartbeat sent */
	uint64_t began_ms;		/* the connection attempt began */
	uint64_t retry_ms;		/* the next attempt, when down */
	uint64_t leave_ms;		/* leaving began */
	unsigned backoff_ms;
	bool said_down;			/* the log has said why */
	struct bp_req *leaves;		/* leaves asked while Redis was away,
					 * for when it is back */
	struct sb_map members;		/* sid -> struct bp_member: this
					 * node's members, let in and not
					 * left */
	struct sb_map synced;		/* nodes that have registered their
					 * members again (SB_NODE_LEN-byte
					 * keys, values owned) */
	uint64_t final_ms;		/* the second read of the rooms after
					 * Redis came back; 0: none due */
	struct bp_batch batch[BATCH_NODES];	/* of the pass under way */
	unsigned nbatch;
};

/* src/backplane.c */
uint64_t bp_now_ms(struct sb_backplane *bp);
/* Redis is unreachable or refused us, for why: both connections go, and
 * the next attempt is due after the backoff. */
void bp_fail(struct sb_backplane *bp, const char *why);
/* Runs script s with its argc arguments (lens[i] bytes each; lens NULL:
 * NUL-terminated strings) on the command connection.  REDIS_OK or
 * REDIS_ERR. */
int bp_eval(struct sb_backplane *bp, enum bp_script s, redisCallbackFn *cb,
	    void *priv, int argc, const char *const *argv, const size_t *lens);
/* Whether r says Redis no longer has the scripts (SCRIPT FLUSH): then the
 * connection is dropped, and the next one loads them again and registers
 * this node's members again.  r not NULL. */
bool bp_lost_scripts(struct sb_backplane *bp, const redisReply *r);
/* A reply's error text, or NULL; r not NULL. */
const char *bp_reply_error(const redisReply *r);

/* src/bpwork.c */
void bp_work_init(struct sb_backplane *bp);
/* Frees what the work still holds: requests never carried out (a join
 * answered unavailable), leaves kept, members.  After the thread ended. */
void bp_work_release(struct sb_backplane *bp);
/* Carries out (Redis up) or sets aside everything queued. */
void bp_serve_queue(struct sb_backplane *bp);
/* Redis is back: the kept leaves first, then this node's members again. */
void bp_replay_leaves(struct sb_backplane *bp);
void bp_register_again(struct sb_backplane *bp);
/* The second read of the rooms, a node timeout after they came back. */
void bp_read_rooms(struct sb_backplane *bp, bool final);
/* A message on this node's channel; the events and relays it held. */
unsigned long bp_dispatch(struct sb_backplane *bp, const char *p, size_t n);

#endif
