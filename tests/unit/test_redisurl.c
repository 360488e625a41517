/*
 * --redis URLs (sb_redisurl): every part of the grammar, the defaults, the
 * percent-escapes of the user and password, each refusal with a message
 * that never holds the password, and the URL written for logs with the
 * password masked.
 */
#include "check.h"

#include "sb_redisurl.h"

static struct sb_redis_url ok(const char *s)
{
	struct sb_redis_url u;
	char msg[256] = "";

	if (sb_redis_url_parse(&u, s, msg, sizeof(msg)))
		fprintf(stderr, "%s: %s\n", s, msg);
	CHECK_EQ_INT(sb_redis_url_parse(&u, s, msg, sizeof(msg)), 0);
	CHECK(u.set);
	return u;
}

/* s is refused with a message holding want and never "secret". */
static void bad(const char *s, const char *want)
{
	struct sb_redis_url u;
	char msg[256] = "";

	CHECK_EQ_INT(sb_redis_url_parse(&u, s, msg, sizeof(msg)), -1);
	if (!strstr(msg, want))
		fprintf(stderr, "%s: got '%s', want '%s'\n", s, msg, want);
	CHECK(strstr(msg, want) != NULL);
	CHECK(strstr(msg, "secret") == NULL);
	CHECK(!strncmp(msg, "bad value for --redis: ", 23));
}

static void safe_is(const char *s, const char *want)
{
	struct sb_redis_url u = ok(s);
	char out[600];

	sb_redis_url_safe(&u, out, sizeof(out));
	CHECK_EQ_STR(out, want);
}

static void test_parts(void)
{
	struct sb_redis_url u;

	u = ok("redis://127.0.0.1");
	CHECK_EQ_STR(u.host, "127.0.0.1");
	CHECK_EQ_INT(u.port, 6379);
	CHECK_EQ_INT(u.db, 0);
	CHECK_EQ_STR(u.user, "");
	CHECK_EQ_STR(u.password, "");

	u = ok("redis://redis.internal:7000/3");
	CHECK_EQ_STR(u.host, "redis.internal");
	CHECK_EQ_INT(u.port, 7000);
	CHECK_EQ_INT(u.db, 3);

	u = ok("redis://:secret@10.0.0.5:6380/");
	CHECK_EQ_STR(u.password, "secret");
	CHECK_EQ_STR(u.user, "");
	CHECK_EQ_STR(u.host, "10.0.0.5");
	CHECK_EQ_INT(u.port, 6380);
	CHECK_EQ_INT(u.db, 0);

	u = ok("redis://switchboard:s%40cr%3At%2f@[::1]:6379/15");
	CHECK_EQ_STR(u.user, "switchboard");
	CHECK_EQ_STR(u.password, "s@cr:t/");
	CHECK_EQ_STR(u.host, "::1");
	CHECK_EQ_INT(u.db, 15);

	/* an '@' left unescaped in the password: the last one ends it */
	u = ok("redis://:p@ss@localhost");
	CHECK_EQ_STR(u.password, "p@ss");
	CHECK_EQ_STR(u.host, "localhost");

	u = ok("redis://[2001:db8::5]");
	CHECK_EQ_STR(u.host, "2001:db8::5");
	CHECK_EQ_INT(u.port, 6379);
	u = ok("redis://h:65535/1000000");
	CHECK_EQ_INT(u.port, 65535);
	CHECK_EQ_INT(u.db, 1000000);
}

static void test_refused(void)
{
	bad("", "must start with redis://");
	bad("http://localhost", "must start with redis://");
	bad("localhost:6379", "must start with redis://");
	bad("rediss://:secret@localhost", "no TLS");
	bad("redis://", "host is missing");
	bad("redis://:secret@", "host is missing");
	bad("redis://:secret@:6379", "host is missing");
	bad("redis://secret@localhost", "before '@' must be :password");
	bad("redis://:@localhost", "password after ':' is empty");
	bad("redis://:sec%zzret@localhost", "'%' not followed by two hex digits");
	bad("redis://:secret%00@localhost", "holds a NUL");
	bad("redis://localhost:0", "port must be a number from 1 to 65535");
	bad("redis://localhost:65536", "port must be");
	bad("redis://localhost:", "port must be");
	bad("redis://localhost:63x9", "port must be");
	bad("redis://localhost/x", "database after '/' must be a number");
	bad("redis://localhost/1?timeout=3", "database after '/' must be a number");
	bad("redis://localhost/1000001", "database after '/'");
	bad("redis://local host", "not a host name or address");
	bad("redis://[::1", "IPv6 address goes in brackets");
	bad("redis://[]:6379", "IPv6 address goes in brackets");
	bad("redis://[::g]", "not an IPv6 address");
	bad("redis://[::1]x", "only :port");
	{
		char big[SB_REDIS_SECRET_MAX + 40];

		memset(big, 'a', sizeof(big));
		memcpy(big, "redis://:", 9);
		strcpy(big + sizeof(big) - 12, "@localhost");
		bad(big, "longer than 255 bytes");
	}
	{
		char big[SB_REDIS_HOST_MAX + 20];

		memset(big, 'h', sizeof(big));
		memcpy(big, "redis://", 8);
		big[sizeof(big) - 1] = '\0';
		bad(big, "host is too long");
	}
}

static void test_safe(void)
{
	safe_is("redis://localhost", "redis://localhost:6379/0");
	safe_is("redis://:secret@10.0.0.5:6380/2", "redis://:***@10.0.0.5:6380/2");
	safe_is("redis://app:secret@[::1]/1", "redis://app:***@[::1]:6379/1");
}

int main(void)
{
	RUN_TEST(test_parts);
	RUN_TEST(test_refused);
	RUN_TEST(test_safe);
	return check_summary();
}
