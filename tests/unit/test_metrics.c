/*
 * /metrics (sb_metrics_render): every series docs/operations.md names is present
 * once, with the sum over the workers' stats, in well-formed Prometheus
 * text with the right metric types.
 */
#include "check.h"

#include "sb_metrics.h"
#include "sb_proto.h"

/* docs/protocol.md, "Errors" and "HTTP endpoints". */
static const struct {
	enum sb_err code;
	const char *name;
} error_codes[] = {
	{ SB_ERR_BAD_JSON, "bad_json" },
	{ SB_ERR_BAD_MESSAGE, "bad_message" },
	{ SB_ERR_UNKNOWN_TYPE, "unknown_type" },
	{ SB_ERR_NOT_JOINED, "not_joined" },
	{ SB_ERR_ALREADY_JOINED, "already_joined" },
	{ SB_ERR_ID_TAKEN, "id_taken" },
	{ SB_ERR_ROOM_FULL, "room_full" },
	{ SB_ERR_PEER_NOT_FOUND, "peer_not_found" },
	{ SB_ERR_UNAUTHORIZED, "unauthorized" },
	{ SB_ERR_RATE_LIMITED, "rate_limited" },
	{ SB_ERR_UNAVAILABLE, "unavailable" },
};

static const struct {
	enum sb_cause cause;
	const char *name;
} close_causes[] = {
	{ SB_CAUSE_CLIENT, "client" },
	{ SB_CAUSE_HEARTBEAT, "heartbeat" },
	{ SB_CAUSE_BACKLOG, "backlog" },
	{ SB_CAUSE_LIMIT, "limit" },
	{ SB_CAUSE_PROTOCOL, "protocol" },
	{ SB_CAUSE_SHUTDOWN, "shutdown" },
};

#define NE (sizeof(error_codes) / sizeof(error_codes[0]))
#define NC (sizeof(close_causes) / sizeof(close_causes[0]))

/* What render() passes as the process's figures. */
static const struct sb_proc_stats *render_proc;

/* The rendered text, NUL-terminated for line scanning. */
static char *render(struct sb_stats *const *stats, int n, size_t rooms,
		    size_t peers)
{
	struct sb_buf b;
	char *text;

	sb_buf_init(&b, (size_t)1 << 20);
	sb_buf_adds(&b, "# before\n");	/* render appends */
	sb_metrics_render(&b, stats, n, rooms, peers, render_proc, 0);
	CHECK(!sb_buf_failed(&b));
	CHECK(b.len > 9);
	CHECK_EQ_MEM(b.p, 9, "# before\n", 9);
	CHECK_EQ_INT(b.p[b.len - 1], '\n');
	text = malloc(b.len - 9 + 1);
	CHECK(text != NULL);
	memcpy(text, b.p + 9, b.len - 9);
	text[b.len - 9] = '\0';
	sb_buf_release(&b);
	return text;
}

/*
 * Finds the one sample line whose series (name with its labels, exactly as
 * written: "name" or "name{label=\"value\"}") is series, and returns its
 * value; fails when there is none or more than one.
 */
static unsigned long long sample_value(const char *text, const char *series)
{
	size_t sl = strlen(series);
	const char *line = text, *found = NULL;
	int count = 0;

	while (*line) {
		const char *end = strchr(line, '\n');

		CHECK(end != NULL);
		if (line[0] != '#' && (size_t)(end - line) > sl &&
		    !strncmp(line, series, sl) && line[sl] == ' ') {
			found = line + sl + 1;
			count++;
		}
		line = end + 1;
	}
	if (count != 1)
		fprintf(stderr, "  series %s appears %d times in:\n%s", series,
			count, text);
	CHECK_EQ_INT(count, 1);
	{
		char *stop;
		unsigned long long v = strtoull(found, &stop, 10);

		CHECK(stop != found);
		CHECK_EQ_INT(*stop, '\n');
		return v;
	}
}

/* Expects "# TYPE name type" exactly once. */
static void expect_type(const char *text, const char *name, const char *type)
{
	char want[128];
	const char *p = text;
	int count = 0;
	size_t wl;

	snprintf(want, sizeof(want), "# TYPE %s %s\n", name, type);
	wl = strlen(want);
	while ((p = strstr(p, want))) {
		if (p == text || p[-1] == '\n')
			count++;
		p += wl;
	}
	if (count != 1)
		fprintf(stderr, "  wanted '# TYPE %s %s' once in:\n%s", name, type, text);
	CHECK_EQ_INT(count, 1);
}

/* Every line is a comment or "series value", names are Prometheus names. */
static void check_well_formed(const char *text)
{
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n'), *p = line;

		CHECK(end != NULL);
		if (*line == '#') {
			CHECK(!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7));
		} else {
			CHECK((*p >= 'a' && *p <= 'z') || *p == '_');
			while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			       *p == '_' || (*p >= 'A' && *p <= 'Z') || *p == ':')
				p++;
			if (*p == '{') {
				p = memchr(p, '}', (size_t)(end - p));
				CHECK(p != NULL);
				p++;
			}
			CHECK_EQ_INT(*p, ' ');
			p++;
			CHECK(p < end);
			CHECK(*p >= '0' && *p <= '9');
			while (p < end) {
				CHECK((*p >= '0' && *p <= '9') || *p == '.');
				p++;
			}
		}
		line = end + 1;
	}
}

static void fill(struct sb_stats *s, unsigned long base)
{
	atomic_store(&s->connections, base + 1);
	atomic_store(&s->received, base * 1000 + 7);
	atomic_store(&s->delivered, base * 2000 + 11);
	for (int e = 0; e < SB_ERR_COUNT; e++)
		atomic_store(&s->errors[e], base * 100 + (unsigned long)e * 3 + 1);
	for (int c = 0; c < SB_CAUSE_COUNT; c++)
		atomic_store(&s->closes[c], base * 50 + (unsigned long)c * 5 + 2);
}

static void test_sums_over_workers(void)
{
	enum { W = 3 };
	static struct sb_stats st[W];
	struct sb_stats *ptrs[W];
	unsigned long conns = 0, recv = 0, deliv = 0;
	unsigned long errs[SB_ERR_COUNT] = { 0 }, closes[SB_CAUSE_COUNT] = { 0 };
	char series[128];
	char *text;

	CHECK_EQ_INT(SB_ERR_COUNT, NE);
	CHECK_EQ_INT(SB_CAUSE_COUNT, NC);
	for (int k = 0; k < W; k++) {
		fill(&st[k], (unsigned long)(k + 1) * 17);
		ptrs[k] = &st[k];
		conns += atomic_load(&st[k].connections);
		recv += atomic_load(&st[k].received);
		deliv += atomic_load(&st[k].delivered);
		for (int e = 0; e < SB_ERR_COUNT; e++)
			errs[e] += atomic_load(&st[k].errors[e]);
		for (int c = 0; c < SB_CAUSE_COUNT; c++)
			closes[c] += atomic_load(&st[k].closes[c]);
	}
	text = render(ptrs, W, 42, 4242);
	check_well_formed(text);

	CHECK_EQ_INT(sample_value(text, "switchboard_connections"), conns);
	CHECK_EQ_INT(sample_value(text, "switchboard_peers"), 4242);
	CHECK_EQ_INT(sample_value(text, "switchboard_rooms"), 42);
	CHECK_EQ_INT(sample_value(text, "switchboard_messages_received_total"), recv);
	CHECK_EQ_INT(sample_value(text, "switchboard_messages_delivered_total"), deliv);
	for (size_t i = 0; i < NE; i++) {
		snprintf(series, sizeof(series), "switchboard_errors_total{code=\"%s\"}",
			 error_codes[i].name);
		CHECK_EQ_INT(sample_value(text, series), errs[error_codes[i].code]);
	}
	for (size_t i = 0; i < NC; i++) {
		snprintf(series, sizeof(series), "switchboard_closes_total{cause=\"%s\"}",
			 close_causes[i].name);
		CHECK_EQ_INT(sample_value(text, series), closes[close_causes[i].cause]);
	}
	expect_type(text, "switchboard_connections", "gauge");
	expect_type(text, "switchboard_peers", "gauge");
	expect_type(text, "switchboard_rooms", "gauge");
	expect_type(text, "switchboard_messages_received_total", "counter");
	expect_type(text, "switchboard_messages_delivered_total", "counter");
	expect_type(text, "switchboard_errors_total", "counter");
	expect_type(text, "switchboard_closes_total", "counter");
	free(text);
}

/* With no workers (or all idle) every series is there, at zero. */
static void test_zeros(void)
{
	static struct sb_stats idle;
	struct sb_stats *one[1] = { &idle };
	char series[128];

	for (int round = 0; round < 2; round++) {
		char *text = round ? render(one, 1, 0, 0) : render(NULL, 0, 0, 0);

		check_well_formed(text);
		CHECK_EQ_INT(sample_value(text, "switchboard_connections"), 0);
		CHECK_EQ_INT(sample_value(text, "switchboard_peers"), 0);
		CHECK_EQ_INT(sample_value(text, "switchboard_rooms"), 0);
		CHECK_EQ_INT(sample_value(text, "switchboard_messages_received_total"), 0);
		CHECK_EQ_INT(sample_value(text, "switchboard_messages_delivered_total"), 0);
		for (size_t i = 0; i < NE; i++) {
			snprintf(series, sizeof(series),
				 "switchboard_errors_total{code=\"%s\"}",
				 error_codes[i].name);
			CHECK_EQ_INT(sample_value(text, series), 0);
		}
		for (size_t i = 0; i < NC; i++) {
			snprintf(series, sizeof(series),
				 "switchboard_closes_total{cause=\"%s\"}",
				 close_causes[i].name);
			CHECK_EQ_INT(sample_value(text, series), 0);
		}
		free(text);
	}
}

/* Counters move independently: bumping one moves exactly that sample. */
static void test_each_counter_is_its_own(void)
{
	static struct sb_stats a, b;
	struct sb_stats *both[2] = { &a, &b };
	char series[128];

	for (size_t i = 0; i < NE; i++) {
		char *text;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		sb_stat_add(&b.errors[error_codes[i].code], 5);
		sb_stat_add(&a.errors[error_codes[i].code], 2);
		text = render(both, 2, 0, 0);
		for (size_t j = 0; j < NE; j++) {
			snprintf(series, sizeof(series),
				 "switchboard_errors_total{code=\"%s\"}",
				 error_codes[j].name);
			CHECK_EQ_INT(sample_value(text, series), i == j ? 7 : 0);
		}
		free(text);
	}
	for (size_t i = 0; i < NC; i++) {
		char *text;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		sb_stat_add(&a.closes[close_causes[i].cause], 3);
		sb_stat_add(&a.connections, 4);
		sb_stat_sub(&a.connections, 1);
		text = render(both, 2, 0, 0);
		for (size_t j = 0; j < NC; j++) {
			snprintf(series, sizeof(series),
				 "switchboard_closes_total{cause=\"%s\"}",
				 close_causes[j].name);
			CHECK_EQ_INT(sample_value(text, series), i == j ? 3 : 0);
		}
		CHECK_EQ_INT(sample_value(text, "switchboard_connections"), 3);
		free(text);
	}
}

/* switchboard_http_refused_total: one series per reason, summed over the
 * workers, each moved only by its own counter. */
static void test_refused(void)
{
	static const char *const reasons[] = {
		"malformed", "method", "version", "h2", "uri_too_long",
		"headers_too_large", "framing", "upgrade", "ws_version", "ws_key",
		"ws_path", "origin", "draining", "max_connections",
		"max_connections_per_ip", "handshake_timeout",
	};
	static struct sb_stats a, b;
	struct sb_stats *both[2] = { &a, &b };
	char series[128];

	CHECK_EQ_INT(SB_REQ_COUNT, sizeof(reasons) / sizeof(reasons[0]));
	for (int r = 0; r < SB_REQ_COUNT; r++) {
		char *text;

		CHECK_EQ_STR(sb_req_reason_names[r], reasons[r]);
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		sb_stat_add(&a.refused[r], 2);
		sb_stat_add(&b.refused[r], 5);
		text = render(both, 2, 0, 0);
		check_well_formed(text);
		expect_type(text, "switchboard_http_refused_total", "counter");
		for (int k = 0; k < SB_REQ_COUNT; k++) {
			snprintf(series, sizeof(series),
				 "switchboard_http_refused_total{reason=\"%s\"}",
				 reasons[k]);
			CHECK_EQ_INT(sample_value(text, series), k == r ? 7 : 0);
		}
		free(text);
	}
}

/* The text of the one sample line of series, without the newline. */
static void expect_sample_text(const char *text, const char *series,
			       const char *want)
{
	char line[256];

	snprintf(line, sizeof(line), "\n%s %s\n", series, want);
	if (!strstr(text, line))
		fprintf(stderr, "  wanted '%s %s' in:\n%s", series, want, text);
	CHECK(strstr(text, line) != NULL);
}

/* A latency lands in the first bucket whose bound it does not exceed; the
 * histogram is cumulative, summed over the workers, with sum and count. */
static void test_latency_histogram(void)
{
	static struct sb_stats a, b;
	struct sb_stats *both[2] = { &a, &b };
	char *text;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	sb_stat_latency(&a, 1);			/* first bucket */
	sb_stat_latency(&a, 50000);		/* on the bound: still the first */
	sb_stat_latency(&b, 50001);		/* the second */
	sb_stat_latency(&b, 1000000);		/* 1 ms */
	sb_stat_latency(&a, 2000000000);	/* over every bound */
	CHECK_EQ_INT(atomic_load(&a.latency[0]), 2);
	CHECK_EQ_INT(atomic_load(&b.latency[1]), 1);
	CHECK_EQ_INT(atomic_load(&b.latency[4]), 1);
	CHECK_EQ_INT(atomic_load(&a.latency[SB_LAT_BUCKETS]), 1);

	text = render(both, 2, 0, 0);
	check_well_formed(text);
	expect_type(text, "switchboard_relay_latency_seconds", "histogram");
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"5e-05\"}"), 2);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"0.0001\"}"), 3);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"0.0005\"}"), 3);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"0.001\"}"), 4);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"1\"}"), 4);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_bucket{le=\"+Inf\"}"), 5);
	CHECK_EQ_INT(sample_value(text, "switchboard_relay_latency_seconds_count"), 5);
	/* 1 + 50000 + 50001 + 1000000 + 2000000000 ns */
	expect_sample_text(text, "switchboard_relay_latency_seconds_sum", "2.001100002");
	free(text);
}

/* The queue depth gauges add up over the workers; the process's figures
 * appear when given. */
static void test_depth_and_process(void)
{
	static struct sb_stats a, b;
	struct sb_stats *both[2] = { &a, &b };
	struct sb_proc_stats proc = { .open_fds = 12, .max_fds = 20000,
				      .rss_bytes = 1 << 20 };
	char *text;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	atomic_store(&a.depth.msgs, 3);
	atomic_store(&a.depth.bytes, 300);
	atomic_store(&b.depth.msgs, 4);
	atomic_store(&b.depth.bytes, 4000);
	text = render(both, 2, 0, 0);
	check_well_formed(text);
	expect_type(text, "switchboard_queued_messages", "gauge");
	expect_type(text, "switchboard_queued_bytes", "gauge");
	CHECK_EQ_INT(sample_value(text, "switchboard_queued_messages"), 7);
	CHECK_EQ_INT(sample_value(text, "switchboard_queued_bytes"), 4300);
	CHECK(strstr(text, "process_open_fds") == NULL);
	free(text);

	render_proc = &proc;
	text = render(both, 2, 0, 0);
	render_proc = NULL;
	check_well_formed(text);
	CHECK_EQ_INT(sample_value(text, "process_open_fds"), 12);
	CHECK_EQ_INT(sample_value(text, "process_max_fds"), 20000);
	CHECK_EQ_INT(sample_value(text, "process_resident_memory_bytes"), 1 << 20);
	expect_type(text, "process_open_fds", "gauge");
	free(text);

	/* unknown figures are left out */
	proc.open_fds = -1;
	render_proc = &proc;
	text = render(both, 2, 0, 0);
	render_proc = NULL;
	CHECK(strstr(text, "process_open_fds") == NULL);
	CHECK_EQ_INT(sample_value(text, "process_max_fds"), 20000);
	free(text);
}

/* The process's figures as read: descriptors opened are counted. */
static void test_proc_read(void)
{
	struct sb_proc_stats before, after;
	FILE *f[5];

	sb_proc_stats_read(&before);
	CHECK(before.open_fds >= 3);	/* stdin, stdout, stderr at least */
	CHECK(before.max_fds > before.open_fds);
	CHECK(before.rss_bytes > 0);
	for (int i = 0; i < 5; i++) {
		f[i] = fopen("/dev/null", "r");
		CHECK(f[i] != NULL);
	}
	sb_proc_stats_read(&after);
	CHECK_EQ_INT(after.open_fds, before.open_fds + 5);
	for (int i = 0; i < 5; i++)
		fclose(f[i]);
	sb_proc_stats_read(&after);
	CHECK_EQ_INT(after.open_fds, before.open_fds);
}

int main(void)
{
	RUN_TEST(test_sums_over_workers);
	RUN_TEST(test_zeros);
	RUN_TEST(test_each_counter_is_its_own);
	RUN_TEST(test_refused);
	RUN_TEST(test_latency_histogram);
	RUN_TEST(test_depth_and_process);
	RUN_TEST(test_proc_read);
	return check_summary();
}
