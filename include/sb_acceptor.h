/*
 * The acceptor thread: owns the listening socket, accepts connections
 * (non-blocking, close-on-exec, TCP_NODELAY) and hands each to the
 * least-loaded worker.  When the process is out of descriptors it logs
 * loudly and pauses accepting for a moment instead of spinning.
 */
#ifndef SB_ACCEPTOR_H
#define SB_ACCEPTOR_H

#include <stdatomic.h>

struct sb_acceptor;
struct sb_worker;

/* Starts accepting on listen_fd, handing sockets to workers[0..nworkers)
 * (which outlive the acceptor) and counting pauses in *pauses.  NULL on
 * failure, logged.  main. */
struct sb_acceptor *sb_acceptor_start(int listen_fd, struct sb_worker *const *workers,
				      int nworkers, atomic_ulong *pauses);

/* Stops accepting, joins the thread and frees it.  main. */
void sb_acceptor_stop(struct sb_acceptor *a);

#endif
