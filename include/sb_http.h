/*
 * The plain HTTP endpoints: /healthz and /metrics.  Builds answers only;
 * the worker writes them.  Any worker thread.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include "sb_jbuf.h"

struct sb_server;

/* Fills body and *content_type with the answer to a GET of path and
 * returns its HTTP status (200, 404 or 503). */
int sb_http_answer(struct sb_server *srv, const char *path, struct sb_jbuf *body,
		   const char **content_type);

#endif
