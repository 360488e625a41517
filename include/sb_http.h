/*
 * The plain HTTP endpoints: /healthz, /metrics, and the web root's files.
 * Builds answers only; the worker writes them.  Any worker thread.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include "sb_jbuf.h"
#include "sb_msg.h"

#include <stdbool.h>

struct sb_server;

/* Fills body and *content_type with the answer to a GET of path and
 * returns its HTTP status (200, 404 or 503).  For a static file, *file is
 * set instead of body: a reference to its bytes, for the caller to drop. */
int sb_http_answer(struct sb_server *srv, const char *path, struct sb_jbuf *body,
		   const char **content_type, struct sb_msg **file);

/* Whether path is one of the endpoints, /healthz and /metrics: plain HTTP
 * only, never a WebSocket. */
bool sb_http_is_endpoint(const char *path);

#endif
