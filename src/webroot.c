#include "sb_webroot.h"

#include "sb_log.h"
#include "sb_map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct sb_webroot {
	struct sb_webfile *files;
	size_t nfiles;
	size_t total;		/* bytes loaded */
	struct sb_map by_path;	/* path -> struct sb_webfile */
};

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".htm", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".md", "text/markdown; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".jpg", "image/jpeg" },
	{ ".jpeg", "image/jpeg" },
	{ ".gif", "image/gif" },
	{ ".webp", "image/webp" },
	{ ".ico", "image/x-icon" },
	{ ".wasm", "application/wasm" },
	{ ".woff2", "font/woff2" },
};

static const char *type_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

/* A name that may be served: [A-Za-z0-9._-]+, not starting with '.'. */
static bool servable_name(const char *name)
{
	if (!*name || *name == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* Reads the regular file at fd (size bytes) into a new message. */
static struct sb_msg *read_all(int fd, size_t size)
{
	struct sb_msg *m = sb_msg_new(size);
	size_t got = 0;

	if (!m)
		return NULL;
	while (got < size) {
		ssize_t n = read(fd, m->data + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sb_msg_unref(m);
			return NULL;	/* it shrank, or failed */
		}
		got += (size_t)n;
	}
	return m;
}

static int add_file(struct sb_webroot *r, int dirfd, const char *name,
		    const char *path, char *err, size_t errlen)
{
	struct sb_webfile *f;
	struct stat st;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st)) {
		sb_log(SB_LOG_DEBUG, errno, "web root: %s left out", path);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (r->nfiles >= SB_WEB_FILES || (size_t)st.st_size > SB_WEB_FILE_MAX ||
	    r->total + (size_t)st.st_size > SB_WEB_TOTAL_MAX) {
		snprintf(err, errlen,
			 "%s: over the web root's limits (%d files, %u bytes each, %u in all)",
			 path, SB_WEB_FILES, SB_WEB_FILE_MAX, SB_WEB_TOTAL_MAX);
		close(fd);
		return -EFBIG;
	}
	f = &r->files[r->nfiles];
	f->body = read_all(fd, (size_t)st.st_size);
	close(fd);
	f->path = strdup(path);
	if (!f->body || !f->path) {
		snprintf(err, errlen, "%s: cannot read it", path);
		sb_msg_unref(f->body);
		free(f->path);
		return -EIO;
	}
	f->content_type = type_of(name);
	r->total += (size_t)st.st_size;
	r->nfiles++;
	return 0;
}

/* Loads what dirfd holds, under URL prefix (e.g. "/sub"). */
static int walk(struct sb_webroot *r, int dirfd, const char *prefix, int depth,
		char *err, size_t errlen)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;
	int rc = 0;

	if (!d) {
		close(dirfd);
		return 0;
	}
	while (!rc && (e = readdir(d))) {
		char path[1024];
		struct stat st;

		if (!servable_name(e->d_name)) {
			if (e->d_name[0] != '.')
				sb_log(SB_LOG_DEBUG, 0, "web root: %s/%s left out (its name)",
				       prefix, e->d_name);
			continue;
		}
		if (snprintf(path, sizeof(path), "%s/%s", prefix, e->d_name) >=
		    (int)sizeof(path)) {
			sb_log(SB_LOG_DEBUG, 0, "web root: a path under %s left out (too long)",
			       prefix);
			continue;
		}
		if (fstatat(dirfd, e->d_name, &st, 0))
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub;

			if (depth >= SB_WEB_DEPTH) {
				sb_log(SB_LOG_DEBUG, 0, "web root: %s left out (too deep)", path);
				continue;
			}
			sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub >= 0)
				rc = walk(r, sub, path, depth + 1, err, errlen);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(r, dirfd, e->d_name, path, err, errlen);
		}
	}
	closedir(d);
	return rc;
}

struct sb_webroot *sb_webroot_load(const char *dir, char *err, size_t errlen)
{
	struct sb_webroot *r = calloc(1, sizeof(*r));
	int fd;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sb_map_init(&r->by_path);
	r->files = calloc(SB_WEB_FILES, sizeof(*r->files));
	if (!r->files) {
		snprintf(err, errlen, "out of memory");
		sb_webroot_free(r);
		return NULL;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		sb_webroot_free(r);
		return NULL;
	}
	if (walk(r, fd, "", 0, err, errlen)) {
		sb_webroot_free(r);
		return NULL;
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		if (sb_map_put(&r->by_path, r->files[i].path, strlen(r->files[i].path),
			       &r->files[i])) {
			snprintf(err, errlen, "out of memory");
			sb_webroot_free(r);
			return NULL;
		}
	}
	return r;
}

const struct sb_webfile *sb_webroot_find(const struct sb_webroot *r,
					 const char *path)
{
	size_t len;
	char buf[1040];

	if (!r || !path || path[0] != '/')
		return NULL;
	len = strlen(path);
	if (path[len - 1] == '/') {
		/* a directory: its index page */
		if (len + sizeof("index.html") > sizeof(buf))
			return NULL;
		memcpy(buf, path, len);
		memcpy(buf + len, "index.html", sizeof("index.html"));
		path = buf;
		len += sizeof("index.html") - 1;
	}
	return sb_map_get(&r->by_path, path, len);
}

size_t sb_webroot_count(const struct sb_webroot *r)
{
	return r ? r->nfiles : 0;
}

void sb_webroot_free(struct sb_webroot *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->files && i < r->nfiles; i++) {
		free(r->files[i].path);
		sb_msg_unref(r->files[i].body);
	}
	free(r->files);
	sb_map_release(&r->by_path);
	free(r);
}
