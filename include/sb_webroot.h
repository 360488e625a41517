/*
 * Static files for `GET /` and the like (--web-root): the demo page and the
 * client library.  The whole directory is read into memory once, at start,
 * so a request never touches the disk (no blocking I/O on a worker) and
 * never names a file that was not loaded then: a path is looked up among
 * the loaded names, nothing else, so ".." and the like reach nothing.
 * Symbolic links inside the directory are followed when it is loaded (they
 * are the operator's, as in any web server's document root).  Each file is one refcounted message that
 * every answer shares.
 *
 * What is loaded: regular files (symbolic links are followed) whose path
 * components are made of letters, digits, '.', '-' and '_' and do not start
 * with '.', down to SB_WEB_DEPTH directories, at most SB_WEB_FILES files of
 * at most SB_WEB_FILE_MAX bytes each and SB_WEB_TOTAL_MAX bytes in all.
 * Other names, and what lies deeper or has a longer path than 1023
 * bytes, are left out (logged at debug level); more or larger files than
 * the limits make the load fail.  A change on disk
 * is seen after a restart.
 *
 * Immutable after load: any thread may look up.
 */
#ifndef SB_WEBROOT_H
#define SB_WEBROOT_H

#include "sb_msg.h"

#include <stddef.h>

#define SB_WEB_DEPTH 8
#define SB_WEB_FILES 512
#define SB_WEB_FILE_MAX (1u << 20)
#define SB_WEB_TOTAL_MAX (16u << 20)

struct sb_webroot;

struct sb_webfile {
	char *path;			/* "/index.html" */
	const char *content_type;	/* from the name's extension */
	struct sb_msg *body;		/* the bytes; ref it to keep them */
};

/*
 * Loads dir.  Returns the web root (possibly with no files), or NULL with a
 * reason in err when dir cannot be read, or is over the limits.
 */
struct sb_webroot *sb_webroot_load(const char *dir, char *err, size_t errlen);

/* The file for a request path ("/" and "/sub/" mean their index.html), or
 * NULL. */
const struct sb_webfile *sb_webroot_find(const struct sb_webroot *r,
					 const char *path);

size_t sb_webroot_count(const struct sb_webroot *r);

void sb_webroot_free(struct sb_webroot *r);

#endif
