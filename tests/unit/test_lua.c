/*
 * The generated header sb_lua.h (cmake/lua-header.cmake): each of the
 * backplane's Redis scripts in src/lua is in it byte for byte, as the
 * C string SB_LUA_<NAME>, and no script of src/lua is missing from this
 * test's list.
 */
#include "check.h"

#include "sb_lua.h"

#include <dirent.h>

struct script {
	const char *name;
	const char *text;
	size_t len;
};

#define SCRIPT(name, var) { name, var, sizeof(var) - 1 }

static const struct script scripts[] = {
	SCRIPT("beat", SB_LUA_BEAT),
	SCRIPT("drain", SB_LUA_DRAIN),
	SCRIPT("join", SB_LUA_JOIN),
	SCRIPT("leave", SB_LUA_LEAVE),
	SCRIPT("prune", SB_LUA_PRUNE),
	SCRIPT("rejoin", SB_LUA_REJOIN),
	SCRIPT("snapshot", SB_LUA_SNAPSHOT),
};

#define N_SCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

/* The whole file, malloc'd; its length in *len. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, got;

	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		CHECK(f != NULL);
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			p = realloc(p, cap);
			CHECK(p != NULL);
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
	} while (got);
	CHECK(!ferror(f));
	fclose(f);
	*len = n;
	return p;
}

static void test_same_bytes(void)
{
	char path[4096];
	size_t lib_len;
	char *lib;

	snprintf(path, sizeof(path), "%s/lib.lua", SB_LUA_SOURCE_DIR);
	lib = slurp(path, &lib_len);
	for (size_t i = 0; i < N_SCRIPTS; i++) {
		size_t len;
		char *text;

		snprintf(path, sizeof(path), "%s/%s.lua", SB_LUA_SOURCE_DIR,
			 scripts[i].name);
		text = slurp(path, &len);
		/* lib.lua, then the script */
		CHECK(scripts[i].len == lib_len + len);
		CHECK_EQ_MEM(scripts[i].text, lib_len, lib, lib_len);
		CHECK_EQ_MEM(scripts[i].text + lib_len, len, text, len);
		/* a literal ends at its first NUL: none inside */
		CHECK_EQ_SIZE(strlen(scripts[i].text), scripts[i].len);
		free(text);
	}
	free(lib);
}

static void test_every_script_listed(void)
{
	DIR *d = opendir(SB_LUA_SOURCE_DIR);
	struct dirent *e;
	size_t found = 0;

	CHECK(d != NULL);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		bool listed = false;

		if (n < 5 || strcmp(e->d_name + n - 4, ".lua") ||
		    !strcmp(e->d_name, "lib.lua"))
			continue;
		for (size_t i = 0; i < N_SCRIPTS; i++)
			if (strlen(scripts[i].name) == n - 4 &&
			    !memcmp(scripts[i].name, e->d_name, n - 4))
				listed = true;
		if (!listed)
			fprintf(stderr, "src/lua/%s is not in test_lua.c\n",
				e->d_name);
		CHECK(listed);
		found++;
	}
	closedir(d);
	CHECK_EQ_SIZE(found, N_SCRIPTS);
}

int main(void)
{
	RUN_TEST(test_same_bytes);
	RUN_TEST(test_every_script_listed);
	return check_summary();
}
