/*
 * Fuzz target: the web root lookup (sb_webroot_find, src/webroot.c) with
 * request paths from the network.
 *
 * Once, the target lays out a small tree in a temporary directory (files
 * that are served, and names and kinds of file that must not be: dot
 * files, odd characters, a FIFO, a symbolic link to nothing) and loads
 * it.  Each input, up to its first NUL, is a request path: it must find
 * exactly the loaded file of that name (a path ending in '/' its
 * index.html), with the bytes written to it, and nothing else.
 */
#include "fuzz.h"

#include "sb_log.h"
#include "sb_webroot.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What is served: URL path, and the file's content. */
static const struct {
	const char *path, *body;
} served[] = {
	{ "/index.html", "<!doctype html><title>top</title>" },
	{ "/app.js", "console.log('app')" },
	{ "/sub/index.html", "<title>sub</title>" },
	{ "/sub/style.css", "body{}" },
	{ "/sub/deep/a-b_c.1.txt", "deep" },
	{ "/empty.json", "" },
};

/* What is left in the tree but must never be found (relative names). */
static const char *const hidden[] = {
	".env", "sub/.secret", "with space.html", "sub/semi;colon.js",
};

static char root[64];
static struct sb_webroot *web;

static void put(const char *rel, const char *body)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	if (!f || fputs(body, f) < 0 || fclose(f))
		abort();
}

static void cleanup(void)
{
	char cmd[128];

	sb_webroot_free(web);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[256], err[256];
	const char *tmp = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/sb-fuzz-webroot.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(root))
		abort();
	snprintf(path, sizeof(path), "%s/sub", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sub/deep", root);
	mkdir(path, 0700);
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		put(served[i].path + 1, served[i].body);
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		put(hidden[i], "hidden");
	snprintf(path, sizeof(path), "%s/fifo", root);
	mkfifo(path, 0600);
	snprintf(path, sizeof(path), "%s/sub/dangling.html", root);
	if (symlink("nowhere.html", path))
		abort();
	sb_log_set_level(SB_LOG_ERROR);
	web = sb_webroot_load(root, err, sizeof(err));
	if (!web || sb_webroot_count(web) != sizeof(served) / sizeof(served[0])) {
		fprintf(stderr, "web root: %s\n", web ? "wrong count" : err);
		abort();
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sb_webfile *f;
	char *path, want[2048];
	size_t len, i, n = sizeof(served) / sizeof(served[0]);

	path = malloc(size + 1);
	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	len = strlen(path);

	/* the name it should find */
	snprintf(want, sizeof(want), "%s%s", path,
		 len && path[len - 1] == '/' ? "index.html" : "");
	for (i = 0; i < n; i++)
		if (!strcmp(want, served[i].path))
			break;

	f = sb_webroot_find(web, path);
	if (i == n) {
		SB_FUZZ_CHECK(!f, "\"%s\" found %s", path, f->path);
	} else {
		SB_FUZZ_CHECK(f, "\"%s\" not found", path);
		SB_FUZZ_CHECK(!strcmp(f->path, served[i].path) &&
			      f->body->len == strlen(served[i].body) &&
			      !memcmp(f->body->data, served[i].body, f->body->len) &&
			      f->content_type && *f->content_type,
			      "\"%s\" found the wrong file %s", path, f->path);
	}
	free(path);
	return 0;
}
