#include "sb_metrics.h"

#include <stdio.h>

static unsigned long get(const atomic_ulong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void header(struct sb_jbuf *b, const char *name, const char *type,
		   const char *help)
{
	char line[256];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help,
		 name, type);
	sb_jbuf_adds(b, line);
}

static void sample(struct sb_jbuf *b, const char *name, const char *label,
		   const char *value_of_label, unsigned long v)
{
	char line[256];

	if (label)
		snprintf(line, sizeof(line), "%s{%s=\"%s\"} %lu\n", name, label,
			 value_of_label, v);
	else
		snprintf(line, sizeof(line), "%s %lu\n", name, v);
	sb_jbuf_adds(b, line);
}

void sb_metrics_render(struct sb_jbuf *b, struct sb_stats *const *stats,
		       int n, size_t rooms, size_t peers)
{
	struct {
		unsigned long connections, received, delivered;
		unsigned long errors[SB_ERR_COUNT], closes[SB_CAUSE_COUNT];
	} t = { 0 };

	for (int k = 0; k < n; k++) {
		t.connections += get(&stats[k]->connections);
		t.received += get(&stats[k]->received);
		t.delivered += get(&stats[k]->delivered);
		for (int e = 0; e < SB_ERR_COUNT; e++)
			t.errors[e] += get(&stats[k]->errors[e]);
		for (int c = 0; c < SB_CAUSE_COUNT; c++)
			t.closes[c] += get(&stats[k]->closes[c]);
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
	header(b, "switchboard_closes_total", "counter",
	       "Closed WebSocket connections by cause.");
	for (int c = 0; c < SB_CAUSE_COUNT; c++)
		sample(b, "switchboard_closes_total", "cause", sb_cause_names[c],
		       t.closes[c]);
	header(b, "switchboard_worker_connections", "gauge",
	       "Open WebSocket connections by worker thread.");
	for (int k = 0; k < n; k++) {
		char w[16];

		snprintf(w, sizeof(w), "%d", k);
		sample(b, "switchboard_worker_connections", "worker", w,
		       get(&stats[k]->connections));
	}
}
