#include "sb_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

const unsigned long sb_lat_bounds_ns[SB_LAT_BUCKETS] = {
	50000, 100000, 250000, 500000,			/* 50 us .. 500 us */
	1000000, 2500000, 5000000, 10000000,		/* 1 ms .. 10 ms */
	25000000, 50000000, 100000000, 250000000,	/* 25 ms .. 250 ms */
	500000000, 1000000000,				/* 500 ms, 1 s */
};

void sb_stat_latency(struct sb_stats *s, unsigned long ns)
{
	int i = 0;

	while (i < SB_LAT_BUCKETS && ns > sb_lat_bounds_ns[i])
		i++;
	sb_stat_add(&s->latency[i], 1);
	sb_stat_add(&s->latency_sum_ns, ns);
}

void sb_proc_stats_read(struct sb_proc_stats *p)
{
	struct rlimit rl;
	DIR *d;
	FILE *f;

	p->open_fds = p->max_fds = p->rss_bytes = -1;
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		p->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
	d = opendir("/proc/self/fd");
	if (d) {
		long n = 0;
		struct dirent *e;

		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
		p->open_fds = n - 1;	/* not the one reading the directory */
	}
	f = fopen("/proc/self/statm", "re");
	if (f) {
		long size, resident;

		if (fscanf(f, "%ld %ld", &size, &resident) == 2)
			p->rss_bytes = resident * sysconf(_SC_PAGESIZE);
		fclose(f);
	}
}

static unsigned long get(const atomic_ulong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void header(struct sb_buf *b, const char *name, const char *type,
		   const char *help)
{
	char line[256];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help,
		 name, type);
	sb_buf_adds(b, line);
}

static void sample(struct sb_buf *b, const char *name, const char *label,
		   const char *value_of_label, unsigned long v)
{
	char line[256];

	if (label)
		snprintf(line, sizeof(line), "%s{%s=\"%s\"} %lu\n", name, label,
			 value_of_label, v);
	else
		snprintf(line, sizeof(line), "%s %lu\n", name, v);
	sb_buf_adds(b, line);
}

void sb_metrics_histogram(struct sb_buf *b, const char *name, const char *help,
			  const unsigned long counts[SB_LAT_BUCKETS + 1],
			  unsigned long sum_ns)
{
	unsigned long count = 0;
	char line[160];

	header(b, name, "histogram", help);
	for (int i = 0; i <= SB_LAT_BUCKETS; i++) {
		count += counts[i];
		if (i < SB_LAT_BUCKETS)
			snprintf(line, sizeof(line), "%s_bucket{le=\"%g\"} %lu\n", name,
				 (double)sb_lat_bounds_ns[i] / 1e9, count);
		else
			snprintf(line, sizeof(line), "%s_bucket{le=\"+Inf\"} %lu\n",
				 name, count);
		sb_buf_adds(b, line);
	}
	snprintf(line, sizeof(line), "%s_sum %lu.%09lu\n%s_count %lu\n", name,
		 sum_ns / 1000000000ul, sum_ns % 1000000000ul, name, count);
	sb_buf_adds(b, line);
}

/* The relay latency histogram, summed over the workers. */
static void latency(struct sb_buf *b, struct sb_stats *const *stats, int n)
{
	unsigned long counts[SB_LAT_BUCKETS + 1] = { 0 }, sum_ns = 0;

	for (int k = 0; k < n; k++) {
		for (int i = 0; i <= SB_LAT_BUCKETS; i++)
			counts[i] += get(&stats[k]->latency[i]);
		sum_ns += get(&stats[k]->latency_sum_ns);
	}
	sb_metrics_histogram(b, "switchboard_relay_latency_seconds",
			     "Time from receiving a relayed message to writing it to a recipient.",
			     counts, sum_ns);
}

static void process(struct sb_buf *b, const struct sb_proc_stats *p)
{
	if (p->open_fds >= 0) {
		header(b, "process_open_fds", "gauge", "Open file descriptors.");
		sample(b, "process_open_fds", NULL, NULL, (unsigned long)p->open_fds);
	}
	if (p->max_fds >= 0) {
		header(b, "process_max_fds", "gauge",
		       "The most file descriptors the process may open (RLIMIT_NOFILE).");
		sample(b, "process_max_fds", NULL, NULL, (unsigned long)p->max_fds);
	}
	if (p->rss_bytes >= 0) {
		header(b, "process_resident_memory_bytes", "gauge",
		       "Resident memory size in bytes.");
		sample(b, "process_resident_memory_bytes", NULL, NULL,
		       (unsigned long)p->rss_bytes);
	}
}

/* A gauge that several threads add to may be read while one has added and
 * another not yet subtracted: never show it below zero. */
static unsigned long nonneg(long v)
{
	return v > 0 ? (unsigned long)v : 0;
}

/* The errors that refuse a join once its members are well formed. */
static const enum sb_err join_refusals[] = {
	SB_ERR_UNAUTHORIZED, SB_ERR_UNAVAILABLE, SB_ERR_ID_TAKEN, SB_ERR_ROOM_FULL,
};

void sb_metrics_render(struct sb_buf *b, struct sb_stats *const *stats,
		       int n, size_t rooms, size_t peers,
		       const struct sb_proc_stats *proc, unsigned long accept_pauses)
{
	struct {
		unsigned long connections, received, delivered;
		unsigned long errors[SB_ERR_COUNT], closes[SB_CAUSE_COUNT];
		unsigned long joins_refused[SB_ERR_COUNT];
		unsigned long refused[SB_REQ_COUNT];
		long queued_msgs, queued_bytes;
	} t = { 0 };

	for (int k = 0; k < n; k++) {
		t.connections += get(&stats[k]->connections);
		t.received += get(&stats[k]->received);
		t.delivered += get(&stats[k]->delivered);
		for (int e = 0; e < SB_ERR_COUNT; e++)
			t.errors[e] += get(&stats[k]->errors[e]);
		for (int e = 0; e < SB_ERR_COUNT; e++)
			t.joins_refused[e] += get(&stats[k]->joins_refused[e]);
		for (int c = 0; c < SB_CAUSE_COUNT; c++)
			t.closes[c] += get(&stats[k]->closes[c]);
		for (int r = 0; r < SB_REQ_COUNT; r++)
			t.refused[r] += get(&stats[k]->refused[r]);
		t.queued_msgs += atomic_load_explicit(&stats[k]->depth.msgs,
						      memory_order_relaxed);
		t.queued_bytes += atomic_load_explicit(&stats[k]->depth.bytes,
						       memory_order_relaxed);
	}
	header(b, "switchboard_connections", "gauge", "Open WebSocket connections.");
	sample(b, "switchboard_connections", NULL, NULL, t.connections);
	header(b, "switchboard_peers", "gauge", "Joined peers.");
	sample(b, "switchboard_peers", NULL, NULL, peers);
	header(b, "switchboard_rooms", "gauge", "Rooms with at least one peer.");
	sample(b, "switchboard_rooms", NULL, NULL, rooms);
	header(b, "switchboard_messages_received_total", "counter",
	       "Text messages received from clients.");
	sample(b, "switchboard_messages_received_total", NULL, NULL, t.received);
	header(b, "switchboard_messages_delivered_total", "counter",
	       "Messages written to clients.");
	sample(b, "switchboard_messages_delivered_total", NULL, NULL, t.delivered);
	header(b, "switchboard_errors_total", "counter", "Error replies by code.");
	for (int e = 0; e < SB_ERR_COUNT; e++)
		sample(b, "switchboard_errors_total", "code", sb_err_names[e],
		       t.errors[e]);
	header(b, "switchboard_joins_refused_total", "counter",
	       "Joins refused, by reason.");
	for (size_t i = 0; i < sizeof(join_refusals) / sizeof(join_refusals[0]); i++)
		sample(b, "switchboard_joins_refused_total", "reason",
		       sb_err_names[join_refusals[i]], t.joins_refused[join_refusals[i]]);
	header(b, "switchboard_closes_total", "counter",
	       "Closed WebSocket connections by cause.");
	for (int c = 0; c < SB_CAUSE_COUNT; c++)
		sample(b, "switchboard_closes_total", "cause", sb_cause_names[c],
		       t.closes[c]);
	header(b, "switchboard_http_refused_total", "counter",
	       "HTTP requests and upgrades refused before they were served, by reason.");
	for (int r = 0; r < SB_REQ_COUNT; r++)
		sample(b, "switchboard_http_refused_total", "reason",
		       sb_req_reason_names[r], t.refused[r]);
	header(b, "switchboard_worker_connections", "gauge",
	       "Open WebSocket connections by worker thread.");
	for (int k = 0; k < n; k++) {
		char w[16];

		snprintf(w, sizeof(w), "%d", k);
		sample(b, "switchboard_worker_connections", "worker", w,
		       get(&stats[k]->connections));
	}
	header(b, "switchboard_queued_messages", "gauge",
	       "Messages waiting in outbound queues.");
	sample(b, "switchboard_queued_messages", NULL, NULL, nonneg(t.queued_msgs));
	header(b, "switchboard_queued_bytes", "gauge",
	       "Bytes waiting in outbound queues.");
	sample(b, "switchboard_queued_bytes", NULL, NULL, nonneg(t.queued_bytes));
	header(b, "switchboard_accept_pauses_total", "counter",
	       "Times accepting paused after accept() failed (descriptors or "
	       "memory ran out, or another error).");
	sample(b, "switchboard_accept_pauses_total", NULL, NULL, accept_pauses);
	latency(b, stats, n);
	if (proc)
		process(b, proc);
}
