/*
 * The acceptor thread: owns the listening socket, accepts connections
 * (non-blocking, close-on-exec, TCP_NODELAY) and hands each to the
 * least-loaded worker.  When the process is out of descriptors it logs
 * loudly and pauses accepting for a moment instead of spinning.
 */
#ifndef SB_ACCEPTOR_H
#define SB_ACCEPTOR_H

struct sb_server;
struct sb_acceptor;

/* Starts accepting on srv->listen_fd.  NULL on failure, logged.  main. */
struct sb_acceptor *sb_acceptor_start(struct sb_server *srv);

/* Stops accepting, joins the thread and frees it.  main. */
void sb_acceptor_stop(struct sb_acceptor *a);

#endif
