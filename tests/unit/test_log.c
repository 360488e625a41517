/*
 * Log rate limiting (sb_log.h): the token bucket on its own, with the time
 * given; then sb_log_client() writing to a captured standard error with an
 * injected clock: the burst passes, the rest is counted, and the next line
 * let through is preceded by one that says how many were suppressed.
 */
#include "check.h"

#include "sb_log.h"

#include <unistd.h>

#define SEC 1000000000ull

static void test_bucket(void)
{
	struct sb_log_limit l;
	unsigned long sup = 99;
	uint64_t t = 5 * SEC;

	sb_log_limit_init(&l, 2, 3);
	/* starts full: three at once, then nothing */
	for (int i = 0; i < 3; i++) {
		CHECK(sb_log_limit_take(&l, t, &sup));
		CHECK_EQ_INT(sup, 0);
	}
	CHECK(!sb_log_limit_take(&l, t, &sup));
	CHECK(!sb_log_limit_take(&l, t + SEC / 4, &sup));	/* half a token */
	/* a token after half a second at 2 a second, with the count */
	CHECK(sb_log_limit_take(&l, t + SEC / 2, &sup));
	CHECK_EQ_INT(sup, 2);
	CHECK(!sb_log_limit_take(&l, t + SEC / 2, &sup));
	/* pieces of time add up */
	CHECK(!sb_log_limit_take(&l, t + SEC / 2 + SEC / 8, &sup));
	CHECK(!sb_log_limit_take(&l, t + SEC / 2 + SEC / 4 - 1, &sup));
	CHECK(sb_log_limit_take(&l, t + SEC + SEC / 100, &sup));
	CHECK_EQ_INT(sup, 3);
	/* a long pause refills no more than the burst */
	t += 3600 * SEC;
	for (int i = 0; i < 3; i++)
		CHECK(sb_log_limit_take(&l, t, &sup));
	CHECK(!sb_log_limit_take(&l, t, &sup));
	/* a clock that goes back refills nothing, and is not held against
	 * the next step forward */
	CHECK(!sb_log_limit_take(&l, t - 10 * SEC, &sup));
	CHECK(sb_log_limit_take(&l, t + SEC / 2, &sup));
	CHECK_EQ_INT(sup, 2);
	/* drain takes the count */
	CHECK(!sb_log_limit_take(&l, t + SEC / 2, &sup));
	CHECK_EQ_INT(sb_log_limit_drain(&l), 1);
	CHECK_EQ_INT(sb_log_limit_drain(&l), 0);
	/* rate 0: the burst, then never again */
	sb_log_limit_init(&l, 0, 1);
	CHECK(sb_log_limit_take(&l, 0, &sup));
	CHECK(!sb_log_limit_take(&l, 1000 * SEC, &sup));
	/* a first call at time 0 is a start like any other */
	sb_log_limit_init(&l, 1, 1);
	CHECK(sb_log_limit_take(&l, 0, &sup));
	CHECK(!sb_log_limit_take(&l, 0, &sup));
	CHECK(sb_log_limit_take(&l, SEC, &sup));
	CHECK_EQ_INT(sup, 1);
}

/* ---- sb_log_client, on a captured standard error ---- */

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static FILE *captured;
static int saved_stderr = -1;

static void capture(void)
{
	fflush(stderr);
	captured = tmpfile();
	CHECK(captured != NULL);
	saved_stderr = dup(STDERR_FILENO);
	CHECK(saved_stderr >= 0);
	CHECK(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

/* Restores standard error and returns what was written, NUL-terminated. */
static char *release(void)
{
	static char text[65536];
	size_t n;

	CHECK(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	rewind(captured);
	n = fread(text, 1, sizeof(text) - 1, captured);
	text[n] = '\0';
	fclose(captured);
	return text;
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_client_lines(void)
{
	char *text;
	const char *sup;

	sb_log_set_level(SB_LOG_INFO);
	sb_log_set_clock(fake_clock);
	fake_now = 1000 * SEC;
	capture();
	for (int i = 0; i < SB_LOG_CLIENT_BURST + 10; i++)
		sb_log_client(SB_LOG_ERROR, 0, "lws: noise %d", i);
	/* below the level: no line, no token */
	sb_log_client(SB_LOG_DEBUG, 0, "lws: quiet");
	fake_now += (uint64_t)(SEC / SB_LOG_CLIENT_RATE);
	sb_log_client(SB_LOG_WARN, 0, "lws: after a while");
	sb_log_client(SB_LOG_WARN, 0, "lws: too soon");
	sb_log_client_flush();
	sb_log_client_flush();	/* nothing more to say */
	text = release();

	CHECK_EQ_INT(count(text, "lws: noise"), SB_LOG_CLIENT_BURST);
	CHECK(strstr(text, "lws: noise 19\n") != NULL);
	CHECK(strstr(text, "lws: noise 20\n") == NULL);
	CHECK(strstr(text, "lws: quiet") == NULL);
	CHECK_EQ_INT(count(text, "lws: after a while"), 1);
	CHECK(strstr(text, "too soon") == NULL);
	/* the count comes just before the line let through, and at the end */
	sup = strstr(text, " warn [main] 10 log lines that clients caused were suppressed");
	CHECK(sup != NULL);
	CHECK(sup < strstr(text, "lws: after a while"));
	CHECK(strstr(sup, "\n") < strstr(text, "lws: after a while"));
	CHECK(strstr(text, " warn [main] 1 log lines that clients caused were suppressed") != NULL);
	CHECK_EQ_INT(count(text, "were suppressed"), 2);
	CHECK_EQ_INT(count(text, "\n"), SB_LOG_CLIENT_BURST + 3);
	sb_log_set_clock(NULL);
}

/* The refusal line: its fields in text and JSON, the client's Origin
 * quoted, and the same limit as every line clients cause. */
static void test_refusal(void)
{
	struct sb_refusal r = { .client = "203.0.113.7", .status = 403,
				.reason = "origin", .origin = "https://evil\"\n.example" };
	struct sb_refusal t = { .client = "2001:db8::1", .status = 0,
				.reason = "handshake_timeout" };
	char *text;

	sb_log_set_level(SB_LOG_INFO);
	sb_log_set_clock(fake_clock);
	fake_now = 5000 * SEC;	/* the bucket full again */
	capture();
	sb_log_refusal(&r);
	sb_log_refusal(&t);
	sb_log_set_json(1);
	sb_log_refusal(&r);
	sb_log_refusal(&t);
	sb_log_set_json(0);
	for (int i = 0; i < SB_LOG_CLIENT_BURST; i++)
		sb_log_refusal(&t);
	sb_log_set_level(SB_LOG_WARN);
	sb_log_refusal(&t);	/* below the level: nothing, and not counted */
	sb_log_set_level(SB_LOG_INFO);
	sb_log_client_flush();
	text = release();

	CHECK(strstr(text, " info [main] refused: client=203.0.113.7 status=403 "
			   "reason=origin origin=\"https://evil\\\"\\u000a.example\"\n") != NULL);
	CHECK(strstr(text, " info [main] refused: client=2001:db8::1 status=0 "
			   "reason=handshake_timeout\n") != NULL);
	CHECK(strstr(text, ",\"level\":\"info\",\"thread\":\"main\",\"msg\":\"refused\","
			   "\"client\":\"203.0.113.7\",\"status\":403,\"reason\":\"origin\","
			   "\"origin\":\"https://evil\\\"\\u000a.example\"}\n") != NULL);
	CHECK(strstr(text, "\"msg\":\"refused\",\"client\":\"2001:db8::1\",\"status\":0,"
			   "\"reason\":\"handshake_timeout\"}\n") != NULL);
	/* 4 lines took 4 tokens: 16 more of the burst, then 4 suppressed */
	CHECK_EQ_INT(count(text, "refused: client=2001:db8::1"), 1 + SB_LOG_CLIENT_BURST - 4);
	CHECK(strstr(text, " warn [main] 4 log lines that clients caused were suppressed") != NULL);
	sb_log_set_clock(NULL);
}

int main(void)
{
	RUN_TEST(test_bucket);
	RUN_TEST(test_client_lines);
	RUN_TEST(test_refusal);
	return check_summary();
}
