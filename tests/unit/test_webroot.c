/* The web root: what is loaded from a directory, how paths find it, and
 * what is left out or refused. */
#include "check.h"
#include "sb_webroot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void mkdir_in(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	CHECK_EQ_INT(mkdir(path, 0700), 0);
}

static void make_root(void)
{
	snprintf(root, sizeof(root), "/tmp/sb-webroot-XXXXXX");
	CHECK(mkdtemp(root) != NULL);
}

static void remove_root(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK_EQ_INT(system(cmd), 0);
}

static void expect_file(const struct sb_webroot *r, const char *path,
			const char *body, const char *type)
{
	const struct sb_webfile *f = sb_webroot_find(r, path);

	if (!f)
		fprintf(stderr, "  no file for %s\n", path);
	CHECK(f != NULL);
	CHECK_EQ_MEM(f->body->data, f->body->len, body, strlen(body));
	CHECK_EQ_STR(f->content_type, type);
}

static void test_load_and_find(void)
{
	struct sb_webroot *r;
	char err[256] = "";

	make_root();
	put("index.html", "<p>hi</p>");
	put("app.js", "export {};");
	put("style.css", "p{}");
	put("logo.SVG", "<svg/>");
	put("blob.bin", "\x01\x02");
	put("empty.txt", "");
	mkdir_in("sub");
	put("sub/index.html", "<p>sub</p>");
	put("sub/data.json", "{}");
	r = sb_webroot_load(root, err, sizeof(err));
	CHECK(r != NULL);
	CHECK_EQ_SIZE(sb_webroot_count(r), 8);

	expect_file(r, "/", "<p>hi</p>", "text/html; charset=utf-8");
	expect_file(r, "/index.html", "<p>hi</p>", "text/html; charset=utf-8");
	expect_file(r, "/app.js", "export {};", "text/javascript; charset=utf-8");
	expect_file(r, "/style.css", "p{}", "text/css; charset=utf-8");
	expect_file(r, "/logo.SVG", "<svg/>", "image/svg+xml");
	expect_file(r, "/blob.bin", "\x01\x02", "application/octet-stream");
	expect_file(r, "/empty.txt", "", "text/plain; charset=utf-8");
	expect_file(r, "/sub/", "<p>sub</p>", "text/html; charset=utf-8");
	expect_file(r, "/sub/data.json", "{}", "application/json");

	/* only the names loaded, spelled as they were */
	CHECK(sb_webroot_find(r, "/sub") == NULL);
	CHECK(sb_webroot_find(r, "/nope.html") == NULL);
	CHECK(sb_webroot_find(r, "/APP.JS") == NULL);
	CHECK(sb_webroot_find(r, "app.js") == NULL);
	CHECK(sb_webroot_find(r, "") == NULL);
	CHECK(sb_webroot_find(r, NULL) == NULL);
	CHECK(sb_webroot_find(r, "/sub/../index.html") == NULL);
	CHECK(sb_webroot_find(r, "//index.html") == NULL);
	CHECK(sb_webroot_find(NULL, "/") == NULL);

	/* the bytes outlive the root for whoever holds a reference */
	{
		struct sb_msg *m = sb_msg_ref(sb_webroot_find(r, "/app.js")->body);

		sb_webroot_free(r);
		CHECK_EQ_MEM(m->data, m->len, "export {};", 10);
		sb_msg_unref(m);
	}
	remove_root();
}

/* Hidden files, odd names, symbolic links out of the tree: what is left
 * out, and what a link inside the tree gives. */
static void test_left_out(void)
{
	struct sb_webroot *r;
	char err[256] = "", path[256];

	make_root();
	put(".env", "SECRET=1");
	put("index.html", "x");
	put("a b.html", "space");
	put("caf\xc3\xa9.html", "utf8");
	mkdir_in(".git");
	put(".git/config", "x");
	snprintf(path, sizeof(path), "%s/passwd", root);
	CHECK_EQ_INT(symlink("/etc/passwd", path), 0);	/* followed: a file */
	snprintf(path, sizeof(path), "%s/loop", root);
	CHECK_EQ_INT(symlink(".", path), 0);		/* a directory loop */
	snprintf(path, sizeof(path), "%s/dangling", root);
	CHECK_EQ_INT(symlink("/nonexistent/x", path), 0);
	r = sb_webroot_load(root, err, sizeof(err));
	CHECK(r != NULL);
	CHECK(sb_webroot_find(r, "/.env") == NULL);
	CHECK(sb_webroot_find(r, "/.git/config") == NULL);
	CHECK(sb_webroot_find(r, "/a b.html") == NULL);
	CHECK(sb_webroot_find(r, "/caf\xc3\xa9.html") == NULL);
	CHECK(sb_webroot_find(r, "/dangling") == NULL);
	/* the operator's links are followed, as a web server's are; the loop
	 * stops at the depth limit instead of running forever */
	CHECK(sb_webroot_find(r, "/passwd") != NULL);
	CHECK(sb_webroot_find(r, "/loop/loop/index.html") != NULL);
	{
		char deep[512] = "";

		for (int i = 0; i <= SB_WEB_DEPTH; i++)
			strcat(deep, "/loop");
		strcat(deep, "/index.html");
		CHECK(sb_webroot_find(r, deep) == NULL);
	}
	sb_webroot_free(r);
	remove_root();
}

static void test_refused(void)
{
	char err[256] = "";
	struct sb_webroot *r;
	char path[256];
	int fd;

	/* a directory that is not there */
	r = sb_webroot_load("/nonexistent/sb-web", err, sizeof(err));
	CHECK(r == NULL);
	CHECK(strstr(err, "/nonexistent/sb-web") != NULL);
	CHECK(strstr(err, "No such file") != NULL);

	/* a file over the size limit names itself */
	make_root();
	put("index.html", "x");
	snprintf(path, sizeof(path), "%s/big.bin", root);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT(ftruncate(fd, SB_WEB_FILE_MAX + 1), 0);
	close(fd);
	err[0] = '\0';
	r = sb_webroot_load(root, err, sizeof(err));
	CHECK(r == NULL);
	CHECK(strstr(err, "/big.bin") != NULL);
	CHECK(strstr(err, "limits") != NULL);
	remove_root();

	/* an empty directory loads, with nothing in it */
	make_root();
	r = sb_webroot_load(root, err, sizeof(err));
	CHECK(r != NULL);
	CHECK_EQ_SIZE(sb_webroot_count(r), 0);
	CHECK(sb_webroot_find(r, "/") == NULL);
	sb_webroot_free(r);
	remove_root();
}

int main(void)
{
	RUN_TEST(test_load_and_find);
	RUN_TEST(test_left_out);
	RUN_TEST(test_refused);
	return check_summary();
}
