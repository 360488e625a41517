/*
 * sb-loadgen: the load generator for switchboard (signaling protocol 1).
 *
 * The client side of RFC 6455, written for load.  Each worker thread owns an
 * epoll instance, a share of the connections and every buffer it will ever
 * use, allocated before the first connection is opened.  A thread always gets
 * whole rooms, so the sender and the receivers of a message live in the same
 * thread and the closed-loop window is kept with plain counters.  The hot
 * path allocates nothing: a message is formatted straight into its
 * connection's fixed output buffer behind its frame header and masked in
 * place; received frames are parsed in the fixed input buffer, and the JSON of
 * an event is scanned, not built into a tree.
 *
 * Threads: the main thread parses the options, samples the server's /proc
 * figures and its own rusage, and moves the run through its phases by
 * publishing timestamps in `run` (an atomic `go` stored with release after the
 * plain fields it guards).  A worker touches only its own struct lg_thread and
 * the read-only options; the main thread reads a worker's results after
 * pthread_join().
 *
 * Clusters: --ports spreads each room's members over several servers on the
 * same host (a cluster's nodes, member k of a room on the k-th port, modulo
 * their number), and --server-pid may be given several times (the nodes and
 * what they share): CPU time and RSS are then the sums over the processes.
 *
 * Bounds: only loopback targets (127.0.0.0/8, ::1, localhost) are accepted;
 * every run stops by itself after --duration, and a hard deadline of warmup +
 * duration + 30 s (enforced by the workers, then by alarm()) ends it whatever
 * happens.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LG_VERSION "1.0"
#define LG_NS 1000000000ull
#define LG_MS 1000000ull
#define LG_MAX_EVENTS 512
#define LG_NOTES 6		/* kept per thread, for the report */
#define LG_NOTE_LEN 240
#define LG_UNKNOWN UINT64_MAX	/* next_from[]: that member has not joined */
#define LG_NONE UINT32_MAX	/* end of an index list */
#define LG_TIMER_TAG UINT64_MAX	/* epoll data of the pacing timerfd */
#define LG_CTRL_RESERVE 256	/* output space kept for pongs and closes */
#define LG_CLOSE_GRACE_NS (2 * LG_NS)	/* wait for the server's EOF after our close */
#define LG_ABORT_MARGIN_NS (4 * LG_NS)	/* workers give up this long before the deadline */
#define LG_SCAN_NS (100 * LG_MS)	/* timeout scan period */
#define LG_MAX_SIZE (1u << 20)
#define LG_MAX_PEERS 2000000u
#define LG_MAX_WINDOW 65536u
#define LG_PEERS_PER_SOURCE 5000u	/* beyond this, suggest --source-addrs */
#define LG_NICK "lg"
#define LG_TOKEN_MAX 4096	/* bytes of one room token (--tokens) */
#define LG_MAX_PORTS 16		/* --ports */
#define LG_MAX_PIDS 8		/* --server-pid, repeated */
#define LG_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ------------------------------------------------------------ options */

enum lg_scenario { LG_RELAY, LG_BROADCAST, LG_CONNECT, LG_CHURN, LG_IDLE };

static const char *const lg_scenario_names[] = {
	"relay", "broadcast", "connect", "churn", "idle",
};

/* Written by main() before any worker starts; read-only afterwards. */
struct lg_opts {
	enum lg_scenario scenario;
	char url[400];			/* the target as reported */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host_hdr[300];
	char path[256];
	/* --ports: the same host on several ports; addr and host_hdr per port */
	unsigned nports;
	struct sockaddr_storage port_addr[LG_MAX_PORTS];
	char port_hdr[LG_MAX_PORTS][320];
	unsigned peers, room_size, window, size, threads, source_addrs;
	unsigned concurrency;
	double rate;			/* 0: closed loop */
	double duration, warmup, connect_timeout, drain_timeout;
	long server_pids[LG_MAX_PIDS];	/* --server-pid, in order */
	unsigned npids;
	bool json_only;
	char tag[24];			/* --tag: room names' prefix; "": the run's own */
	const char *tokens_path;	/* --tokens: a room token per room */
};

static struct lg_opts opt;

/* The run's phases, published by the main thread. */
static struct {
	atomic_int ready;		/* workers whose setup is complete */
	atomic_int failed;		/* a fatal failure: everyone winds down */
	atomic_int stop;		/* SIGINT/SIGTERM */
	_Atomic uint64_t go;		/* ns; 0 until traffic may start */
	/* plain fields: written before `go` is stored (release) */
	uint64_t meas_start, meas_end;
	/* written before the workers are created */
	uint64_t t_spawn, deadline;
	char tag[32];			/* prefix of room names: one run's own */
	char **tokens;			/* --tokens: line k for room k */
	size_t ntokens;
} run;

/* ------------------------------------------------------------ small helpers */

static uint64_t lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LG_NS + (uint64_t)ts.tv_nsec;
}

/* now - then, or 0 if `then` was read after `now` (a cached clock). */
static uint64_t lg_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static uint32_t lg_xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static const char *lg_errstr(int err, char *buf, size_t len)
{
	return strerror_r(err, buf, len);
}

static unsigned lg_digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Writes v in decimal at p; returns the number of characters. */
static size_t lg_put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* ------------------------------------------------------------ SHA-1, base64 */

/* Only for Sec-WebSocket-Accept: computed once per thread, never per message. */
static uint32_t lg_rol(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static void lg_sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80], a, b, c, d, e;

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = lg_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, tmp;

		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999u;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1u;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDCu;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6u;
		}
		tmp = lg_rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = lg_rol(b, 30);
		b = a;
		a = tmp;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

static void lg_sha1(const uint8_t *data, size_t n, uint8_t out[20])
{
	uint32_t h[5] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u,
			  0xC3D2E1F0u };
	uint8_t last[128];
	size_t full = n / 64 * 64, rest = n - full, lastlen;
	uint64_t bits = (uint64_t)n * 8;

	for (size_t i = 0; i < full; i += 64)
		lg_sha1_block(h, data + i);
	memset(last, 0, sizeof(last));
	memcpy(last, data + full, rest);
	last[rest] = 0x80;
	lastlen = rest + 1 + 8 <= 64 ? 64 : 128;
	for (int i = 0; i < 8; i++)
		last[lastlen - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < lastlen; i += 64)
		lg_sha1_block(h, last + i);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

/* Writes the base64 of src (with padding) and a NUL; out needs 4*ceil(n/3)+1. */
static void lg_base64(const uint8_t *src, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)src[i + 1] << 8;
		if (i + 2 < n)
			v |= src[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* accept must hold 29 bytes. */
static void lg_ws_accept(const char *key, char *accept)
{
	uint8_t buf[128], digest[20];
	size_t kl = strlen(key), gl = strlen(LG_WS_GUID);

	memcpy(buf, key, kl);
	memcpy(buf + kl, LG_WS_GUID, gl);
	lg_sha1(buf, kl + gl, digest);
	lg_base64(digest, 20, accept);
}

/* ------------------------------------------------------------ histogram */

/*
 * Log-linear (HDR-style) histogram of nanoseconds: exact below 128, then 64
 * sub-buckets per power of two (1.6 % resolution).  Fixed size, so a thread
 * embeds one and the main thread merges them.
 */
#define LG_HIST_BUCKETS (128 + 57 * 64)
#define LG_HIST_CLAMP (1ull << 46)

struct lg_hist {
	uint64_t count, max, sum;
	uint64_t b[LG_HIST_BUCKETS];
};

static unsigned lg_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 128)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6;
	return 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
}

/* The highest value that falls in bucket i. */
static uint64_t lg_hist_value(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < 128)
		return i;
	shift = (i - 128) / 64 + 1;
	m = (i - 128) % 64 + 64;
	return ((m + 1) << shift) - 1;
}

static void lg_hist_add(struct lg_hist *h, uint64_t v)
{
	if (v > LG_HIST_CLAMP)
		v = LG_HIST_CLAMP;
	h->b[lg_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void lg_hist_merge(struct lg_hist *to, const struct lg_hist *from)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		to->b[i] += from->b[i];
	to->count += from->count;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
}

static uint64_t lg_hist_pct(const struct lg_hist *h, double p)
{
	uint64_t rank, cum = 0;

	if (!h->count)
		return 0;
	rank = (uint64_t)(p * (double)h->count);
	if ((double)rank < p * (double)h->count)
		rank++;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		cum += h->b[i];
		if (cum >= rank) {
			uint64_t v = lg_hist_value(i);

			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ------------------------------------------------------------ JSON scanning */

/*
 * Just enough JSON to check the server's events: walk one object's members,
 * skip values without decoding them.  Keys are compared raw (ours carry no
 * escapes).  Nothing here allocates.
 */
struct lg_span {
	const char *p;		/* NULL: absent */
	size_t n;
	bool str;		/* a string: p/n is its raw content, no quotes */
};

static const char *lg_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"'; returns the position after the closing quote, or NULL. */
static const char *lg_skip_str(const char *p, const char *e)
{
	const char *q = memchr(p + 1, '"', (size_t)(e - p - 1));

	if (!q)
		return NULL;
	if (!memchr(p + 1, '\\', (size_t)(q - p - 1)))
		return q + 1;
	for (p++; p < e; p++) {
		if (*p == '\\') {
			if (++p >= e)
				return NULL;
			continue;
		}
		if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Returns the position after the value that starts at p, or NULL. */
static const char *lg_skip_value(const char *p, const char *e)
{
	const char *s = p;

	if (p >= e)
		return NULL;
	if (*p == '"')
		return lg_skip_str(p, e);
	if (*p == '{' || *p == '[') {
		long depth = 0;

		while (p < e) {
			char ch = *p;

			if (ch == '"') {
				p = lg_skip_str(p, e);
				if (!p)
					return NULL;
				continue;
			}
			if (ch == '{' || ch == '[') {
				depth++;
			} else if (ch == '}' || ch == ']') {
				if (--depth == 0)
					return p + 1;
			}
			p++;
		}
		return NULL;
	}
	while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
	       *p != '\t' && *p != '\n' && *p != '\r')
		p++;
	return p > s ? p : NULL;
}

/*
 * Scans the object [p, e) and fills vals[i] for each keys[i] present (the
 * last occurrence wins).  Returns 0, or -1 if it is not a well-formed object.
 */
static int lg_members(const char *p, const char *e, const char *const *keys,
		      unsigned nkeys, struct lg_span *vals)
{
	for (unsigned i = 0; i < nkeys; i++) {
		vals[i].p = NULL;
		vals[i].n = 0;
		vals[i].str = false;
	}
	p = lg_ws(p, e);
	if (p >= e || *p != '{')
		return -1;
	p = lg_ws(p + 1, e);
	if (p < e && *p == '}')
		return 0;
	for (;;) {
		const char *k, *ke, *v;
		size_t kn;

		if (p >= e || *p != '"')
			return -1;
		k = p + 1;
		ke = lg_skip_str(p, e);
		if (!ke)
			return -1;
		kn = (size_t)(ke - 1 - k);
		p = lg_ws(ke, e);
		if (p >= e || *p != ':')
			return -1;
		v = lg_ws(p + 1, e);
		p = lg_skip_value(v, e);
		if (!p)
			return -1;
		for (unsigned i = 0; i < nkeys; i++) {
			if (strlen(keys[i]) != kn || memcmp(keys[i], k, kn))
				continue;
			if (*v == '"') {
				vals[i].p = v + 1;
				vals[i].n = (size_t)(p - v - 2);
				vals[i].str = true;
			} else {
				vals[i].p = v;
				vals[i].n = (size_t)(p - v);
				vals[i].str = false;
			}
		}
		p = lg_ws(p, e);
		if (p < e && *p == ',') {
			p = lg_ws(p + 1, e);
			continue;
		}
		if (p < e && *p == '}')
			return 0;
		return -1;
	}
}

/* A non-negative integer member; false if absent or not one. */
static bool lg_span_u64(const struct lg_span *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s->p || s->str || s->n == 0 || s->n > 20)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		unsigned d = (unsigned)(s->p[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool lg_span_is(const struct lg_span *s, const char *str, size_t n)
{
	return s->p && s->str && s->n == n && !memcmp(s->p, str, n);
}

/* A peer id "p<digits>" as its number; false if it is not one of ours. */
static bool lg_span_peer(const struct lg_span *s, uint64_t *peer)
{
	struct lg_span d;

	if (!s->p || !s->str || s->n < 2 || s->p[0] != 'p')
		return false;
	d.p = s->p + 1;
	d.n = s->n - 1;
	d.str = false;
	return lg_span_u64(&d, peer);
}

/* ------------------------------------------------------------ connections */

enum lg_state {
	LG_S_IDLE,		/* no socket */
	LG_S_CONNECTING,	/* TCP connect in progress */
	LG_S_UPGRADING,		/* HTTP upgrade sent */
	LG_S_JOINING,		/* WebSocket open, join sent */
	LG_S_JOINED,		/* `joined` received */
	LG_S_DEAD,		/* failed or closed by the server */
};

/*
 * One client connection.  Owned by one worker thread; nothing else touches it.
 * A connection's slot is reused by churn: `gen` counts its incarnations.
 */
struct lg_conn {
	int fd;			/* the live socket, or -1 */
	int old_fd;		/* a socket we closed, waiting for the server's EOF */
	uint8_t state;
	bool ready;		/* joined, and every other room member known */
	bool dirty;		/* in the thread's flush list */
	bool blocked;		/* the pump stopped for output space */
	bool in_idle;		/* in the thread's start stack */
	bool in_lru;		/* in the thread's churn list */
	bool in_frag;		/* inside a fragmented message */
	uint32_t peer;		/* id "p<peer>" */
	uint32_t room;		/* room index */
	uint32_t slot;		/* index in the room */
	uint32_t room_n;	/* members of the room */
	uint32_t gen;
	uint32_t known;		/* other room members known (roster + join events) */
	uint32_t rng;
	uint32_t lru_prev, lru_next;
	uint64_t t_start;	/* ns: connect() issued */
	uint64_t old_deadline;
	uint8_t *in, *out;	/* fixed buffers: in_cap and out_cap bytes */
	uint8_t *frag;		/* reassembly; malloc'ed only if the server fragments */
	uint32_t in_len, out_len, out_off, frag_len;
	/* traffic (relay, broadcast) */
	uint64_t sent;		/* messages written: the next seq */
	uint64_t due;		/* open loop: messages scheduled so far */
	uint64_t completed;	/* closed loop: received by every other member */
	uint32_t *ring;		/* closed loop: [window] deliveries of seq % window */
	uint64_t *next_from;	/* [room_n]: next seq expected from that member */
};

struct lg_stats {
	uint64_t sent, delivered, joins;	/* inside the measured interval */
	uint64_t sent_all, delivered_all, joins_all;
	uint64_t errors, violations, lost, failures, server_closes, pings;
	uint64_t unsent;			/* open loop: scheduled, never written */
	uint64_t last_ready_ns;		/* setup: when the last conn became ready */
	uint64_t last_delivery_ns, max_gap_ns;
	unsigned nnotes, nnotes_total;
	char notes[LG_NOTES][LG_NOTE_LEN];
};

enum lg_phase { LG_P_SETUP, LG_P_WAIT, LG_P_RUN, LG_P_DRAIN, LG_P_CLOSE, LG_P_DONE };

/*
 * A worker: its connections are peers [p0, p0 + n), whole rooms.  The main
 * thread fills it in before pthread_create() and reads it after
 * pthread_join(); in between only the worker touches it.
 */
struct lg_thread {
	unsigned id;
	pthread_t tid;
	int ep, tfd;
	uint32_t p0, n;
	struct lg_conn *conns;
	uint8_t *bufs;
	uint32_t *rings;
	uint64_t *nexts;
	uint32_t *idle, idle_len;	/* conns waiting to be (re)started */
	uint32_t *dirty, ndirty;	/* conns with output to flush; 2n slots */
	uint32_t lru_head, lru_tail;	/* churn: joined conns, oldest first */
	uint32_t inflight, nready, closing, conc;
	enum lg_phase phase;
	uint64_t now, go, ms, me;	/* measured interval [ms, me) */
	uint64_t drain_deadline, close_deadline, last_scan, last_progress;
	bool open_loop, unsent_done;
	bool drained;			/* went through DRAIN: undelivered means lost */
	double d_ns;			/* open loop: ns between two sends of this thread */
	uint64_t j_next, j_time, armed;
	uint64_t churn_started;
	size_t frame_len, in_cap, out_cap;
	char key[32], accept[32];
	struct lg_stats st;
	struct lg_hist hist;
	struct lg_hist lag;		/* open loop: write time - scheduled time */
	uint8_t scratch[4096];
	struct epoll_event events[LG_MAX_EVENTS];
};

static bool lg_messaging(void)
{
	return opt.scenario == LG_RELAY || opt.scenario == LG_BROADCAST;
}

static void lg_note(struct lg_thread *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keeps the first few remarks of a thread for the report. */
static void lg_note(struct lg_thread *t, const char *fmt, ...)
{
	va_list ap;

	t->st.nnotes_total++;
	if (t->st.nnotes >= LG_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(t->st.notes[t->st.nnotes++], LG_NOTE_LEN, fmt, ap);
	va_end(ap);
}

static void lg_violation(struct lg_thread *t, struct lg_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records a breach of the protocol's guarantees, seen by connection c. */
static void lg_violation(struct lg_thread *t, struct lg_conn *c, const char *fmt, ...)
{
	char buf[LG_NOTE_LEN - 32];
	va_list ap;

	t->st.violations++;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	lg_note(t, "violation at p%" PRIu32 ": %s", c->peer, buf);
}

static void lg_room_name(const struct lg_conn *c, char *buf, size_t len)
{
	if (opt.scenario == LG_CHURN)
		snprintf(buf, len, "%sc%" PRIu32 ".%" PRIu32, run.tag, c->peer, c->gen);
	else
		snprintf(buf, len, "%sr%" PRIu32, run.tag, c->room);
}

static struct lg_conn *lg_room0(struct lg_thread *t, const struct lg_conn *c)
{
	return &t->conns[c->peer - c->slot - t->p0];
}

static uint32_t lg_index(const struct lg_thread *t, const struct lg_conn *c)
{
	return (uint32_t)(c - t->conns);
}

/* ---- lists */

static void lg_mark_dirty(struct lg_thread *t, struct lg_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		t->dirty[t->ndirty++] = lg_index(t, c);
	}
}

static void lg_push_idle(struct lg_thread *t, struct lg_conn *c)
{
	if (!c->in_idle) {
		c->in_idle = true;
		t->idle[t->idle_len++] = lg_index(t, c);
	}
}

static void lg_lru_remove(struct lg_thread *t, struct lg_conn *c)
{
	if (!c->in_lru)
		return;
	if (c->lru_prev != LG_NONE)
		t->conns[c->lru_prev].lru_next = c->lru_next;
	else
		t->lru_head = c->lru_next;
	if (c->lru_next != LG_NONE)
		t->conns[c->lru_next].lru_prev = c->lru_prev;
	else
		t->lru_tail = c->lru_prev;
	c->in_lru = false;
}

static void lg_lru_push(struct lg_thread *t, struct lg_conn *c)
{
	uint32_t i = lg_index(t, c);

	lg_lru_remove(t, c);
	c->lru_prev = t->lru_tail;
	c->lru_next = LG_NONE;
	if (t->lru_tail != LG_NONE)
		t->conns[t->lru_tail].lru_next = i;
	else
		t->lru_head = i;
	t->lru_tail = i;
	c->in_lru = true;
}

/* ---- output */

/* True if out has room for need more bytes (compacting if that helps). */
static bool lg_out_room(struct lg_thread *t, struct lg_conn *c, size_t need)
{
	if (t->out_cap - c->out_len >= need)
		return true;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	return t->out_cap - c->out_len >= need;
}

static size_t lg_hdr_len(size_t n)
{
	return (n < 126 ? 2 : n <= 0xffff ? 4 : 10) + 4;
}

/* Writes a masked client frame header; returns where the payload goes. */
static uint8_t *lg_put_hdr(uint8_t *p, unsigned opcode, size_t n, uint32_t mask)
{
	*p++ = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		*p++ = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		*p++ = 0x80 | 126;
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	} else {
		*p++ = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			*p++ = (uint8_t)((uint64_t)n >> (8 * i));
	}
	memcpy(p, &mask, 4);
	return p + 4;
}

/* XORs n bytes at p with the 4-byte key as laid out in the header. */
static void lg_mask(uint8_t *p, size_t n, uint32_t mask)
{
	uint64_t m8;
	size_t i = 0;

	memcpy(&m8, &mask, 4);
	memcpy((uint8_t *)&m8 + 4, &mask, 4);
	for (; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		v ^= m8;
		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] ^= ((const uint8_t *)&mask)[i & 3];
}

/* Queues one frame; -1 if the output buffer cannot hold it. */
static int lg_send_frame(struct lg_thread *t, struct lg_conn *c, unsigned opcode,
			 const void *data, size_t n)
{
	uint32_t mask = lg_xorshift(&c->rng);
	uint8_t *p;

	if (!lg_out_room(t, c, lg_hdr_len(n) + n))
		return -1;
	p = lg_put_hdr(c->out + c->out_len, opcode, n, mask);
	memcpy(p, data, n);
	lg_mask(p, n, mask);
	c->out_len = (uint32_t)(p + n - c->out);
	lg_mark_dirty(t, c);
	return 0;
}

/* Sends what the kernel takes.  Returns 0, or a negative errno. */
static int lg_flush(struct lg_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r > 0) {
			c->out_off += (uint32_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return r < 0 ? -errno : -EPIPE;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* ---- the relayed message */

#define LG_RELAY_A "{\"type\":\"message\",\"receiverId\":\"p"
#define LG_RELAY_B "\",\"payload\":{\"seq\":"
#define LG_BCAST_A "{\"type\":\"offer\",\"payload\":{\"seq\":"
#define LG_F_TS ",\"ts\":"
#define LG_F_SRC ",\"src\":"
#define LG_F_PAD ",\"pad\":\""
#define LG_F_END "\"}}"
#define LG_LIT(s) (sizeof(s) - 1)

/* Bytes of a message other than its padding. */
static size_t lg_msg_fixed(uint64_t receiver, uint64_t seq, uint64_t ts, uint64_t src)
{
	size_t n;

	if (opt.scenario == LG_RELAY)
		n = LG_LIT(LG_RELAY_A) + lg_digits(receiver) + LG_LIT(LG_RELAY_B);
	else
		n = LG_LIT(LG_BCAST_A);
	return n + lg_digits(seq) + LG_LIT(LG_F_TS) + lg_digits(ts) +
	       LG_LIT(LG_F_SRC) + lg_digits(src) + LG_LIT(LG_F_PAD) + LG_LIT(LG_F_END);
}

static size_t lg_msg_min_size(void)
{
	return lg_msg_fixed(UINT32_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX);
}

/*
 * Formats the next message of c (exactly opt.size bytes of JSON) straight
 * into its output buffer, framed and masked.  The caller checked the room.
 */
static void lg_put_msg(struct lg_thread *t, struct lg_conn *c, uint64_t seq, uint64_t ts)
{
	uint32_t mask = lg_xorshift(&c->rng);
	uint8_t *frame = c->out + c->out_len;
	uint8_t *body = lg_put_hdr(frame, 0x1, opt.size, mask);
	char *p = (char *)body;
	uint32_t partner = c->peer - c->slot + (c->slot ^ 1);
	size_t pad = opt.size - lg_msg_fixed(partner, seq, ts, c->peer);

	if (opt.scenario == LG_RELAY) {
		memcpy(p, LG_RELAY_A, LG_LIT(LG_RELAY_A));
		p += LG_LIT(LG_RELAY_A);
		p += lg_put_u64(p, partner);
		memcpy(p, LG_RELAY_B, LG_LIT(LG_RELAY_B));
		p += LG_LIT(LG_RELAY_B);
	} else {
		memcpy(p, LG_BCAST_A, LG_LIT(LG_BCAST_A));
		p += LG_LIT(LG_BCAST_A);
	}
	p += lg_put_u64(p, seq);
	memcpy(p, LG_F_TS, LG_LIT(LG_F_TS));
	p += LG_LIT(LG_F_TS);
	p += lg_put_u64(p, ts);
	memcpy(p, LG_F_SRC, LG_LIT(LG_F_SRC));
	p += LG_LIT(LG_F_SRC);
	p += lg_put_u64(p, c->peer);
	memcpy(p, LG_F_PAD, LG_LIT(LG_F_PAD));
	p += LG_LIT(LG_F_PAD);
	memset(p, 'x', pad);
	p += pad;
	memcpy(p, LG_F_END, LG_LIT(LG_F_END));
	p += LG_LIT(LG_F_END);
	if ((size_t)((uint8_t *)p - body) != opt.size)
		abort();	/* a bug in lg_msg_fixed(), never input */
	lg_mask(body, opt.size, mask);
	c->out_len += (uint32_t)t->frame_len;
}

/* Open loop: when message k of c was due. */
static uint64_t lg_sched(const struct lg_thread *t, const struct lg_conn *c, uint64_t k)
{
	double j = (double)k * (double)t->n + (double)lg_index(t, c);

	return t->go + (uint64_t)(j * t->d_ns);
}

/*
 * Writes the messages c may send now: closed loop, until `window` are
 * outstanding; open loop, those already due.  Stops when the output buffer is
 * full (c->blocked; flushing resumes it).
 */
static void lg_pump(struct lg_thread *t, struct lg_conn *c)
{
	bool wrote = false;

	if (t->phase != LG_P_RUN || c->state != LG_S_JOINED || c->fd < 0)
		return;
	c->blocked = false;
	for (;;) {
		uint64_t ts;

		if (t->open_loop ? c->sent >= c->due : c->sent - c->completed >= opt.window)
			break;
		if (!lg_out_room(t, c, t->frame_len + LG_CTRL_RESERVE)) {
			c->blocked = true;
			break;
		}
		if (t->open_loop) {
			uint64_t now = lg_now();

			ts = lg_sched(t, c, c->sent);
			if (ts >= t->ms && ts < t->me)
				lg_hist_add(&t->lag, lg_since(now, ts));
		} else {
			ts = lg_now();
		}
		lg_put_msg(t, c, c->sent, ts);
		c->sent++;
		t->st.sent_all++;
		if (ts >= t->ms && ts < t->me)
			t->st.sent++;
		wrote = true;
	}
	if (wrote)
		lg_mark_dirty(t, c);
}

/* ---- lifecycle */

static void lg_conn_down(struct lg_thread *t, struct lg_conn *c);

static void lg_close_old(struct lg_thread *t, struct lg_conn *c)
{
	if (c->old_fd >= 0) {
		close(c->old_fd);
		c->old_fd = -1;
		t->closing--;
	}
}

static void lg_reset_io(struct lg_conn *c)
{
	c->in_len = c->out_len = c->out_off = 0;
	c->in_frag = false;
	c->frag_len = 0;
	c->blocked = false;
}

/*
 * Ends c's socket.  With `graceful` and an open WebSocket, sends a close frame
 * with `code` and keeps the socket as old_fd until the server's EOF (so the
 * TIME_WAIT lands on the server side) or LG_CLOSE_GRACE_NS; otherwise closes
 * it at once.  c->fd is -1 afterwards.
 */
static void lg_conn_close(struct lg_thread *t, struct lg_conn *c, bool graceful,
			  uint16_t code)
{
	if (c->fd < 0)
		return;
	if (graceful && c->state >= LG_S_JOINING && c->state <= LG_S_JOINED) {
		uint8_t pl[2] = { (uint8_t)(code >> 8), (uint8_t)code };
		struct epoll_event ev = {
			.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
			.data.u64 = ((uint64_t)lg_index(t, c) << 1) | 1,
		};

		c->out_len = c->out_off = 0;	/* what is unsent no longer matters */
		if (lg_send_frame(t, c, 0x8, pl, 2) == 0)
			(void)lg_flush(c);
		lg_close_old(t, c);
		c->old_fd = c->fd;
		c->fd = -1;
		c->old_deadline = t->now + LG_CLOSE_GRACE_NS;
		t->closing++;
		if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->old_fd, &ev))
			lg_close_old(t, c);
	} else {
		close(c->fd);
		c->fd = -1;
	}
	lg_reset_io(c);
}

static void lg_conn_fail(struct lg_thread *t, struct lg_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A connection failed: counted, noted, closed at once. */
static void lg_conn_fail(struct lg_thread *t, struct lg_conn *c, const char *fmt, ...)
{
	char buf[LG_NOTE_LEN - 40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	t->st.failures++;
	lg_note(t, "connection p%" PRIu32 " failed: %s", c->peer, buf);
	lg_conn_close(t, c, false, 0);
	lg_conn_down(t, c);
}

/*
 * Bookkeeping for a connection that went away unplanned.  Churn restarts the
 * slot; elsewhere a failure during setup fails the run.
 */
static void lg_conn_down(struct lg_thread *t, struct lg_conn *c)
{
	if (c->state >= LG_S_CONNECTING && c->state <= LG_S_JOINING)
		t->inflight--;
	if (c->ready) {
		c->ready = false;
		t->nready--;
	}
	lg_lru_remove(t, c);
	c->state = LG_S_DEAD;
	if (opt.scenario == LG_CHURN && (t->phase == LG_P_SETUP || t->phase == LG_P_RUN))
		lg_push_idle(t, c);
	else if (t->phase == LG_P_SETUP)
		atomic_store(&run.failed, 1);
}

/* Opens c's socket and starts connecting.  On failure c is DEAD. */
/*
 * --ports: which of them c connects to.  The members of a room go to the
 * ports in turn (member k to port k mod N), so that a pair of the relay has
 * one peer on each of two nodes; rooms of one (connect, churn) go round robin
 * over the connections and their replacements.
 */
static unsigned lg_port_index(const struct lg_conn *c)
{
	if (!opt.nports)
		return 0;
	if (c->room_n > 1)
		return c->slot % opt.nports;
	return (c->peer + c->gen) % opt.nports;
}

static const struct sockaddr_storage *lg_target(const struct lg_conn *c)
{
	return opt.nports ? &opt.port_addr[lg_port_index(c)] : &opt.addr;
}

static void lg_conn_start(struct lg_thread *t, struct lg_conn *c)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = (uint64_t)lg_index(t, c) << 1,
	};
	char eb[128];
	int one = 1, fd;

	lg_reset_io(c);
	c->known = 0;
	c->ready = false;
	c->sent = c->due = c->completed = 0;
	if (c->ring)
		memset(c->ring, 0, opt.window * sizeof(*c->ring));
	for (uint32_t i = 0; i < c->room_n; i++)
		c->next_from[i] = LG_UNKNOWN;
	c->t_start = lg_now();
	c->state = LG_S_CONNECTING;
	t->inflight++;
	t->last_progress = t->now;

	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		lg_conn_fail(t, c, "socket: %s", lg_errstr(errno, eb, sizeof(eb)));
		return;
	}
	c->fd = fd;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.source_addrs > 1) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		uint32_t k = (c->peer + c->gen) % opt.source_addrs;

		src.sin_addr.s_addr = htonl(0x7f000001u + k);
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
			lg_conn_fail(t, c, "bind 127.0.0.%" PRIu32 ": %s", k + 1,
				     lg_errstr(errno, eb, sizeof(eb)));
			return;
		}
	}
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev)) {
		lg_conn_fail(t, c, "epoll_ctl: %s", lg_errstr(errno, eb, sizeof(eb)));
		return;
	}
	if (connect(fd, (const struct sockaddr *)lg_target(c), opt.addrlen) && errno != EINPROGRESS)
		lg_conn_fail(t, c, "connect: %s", lg_errstr(errno, eb, sizeof(eb)));
	/* completion (even an immediate one) is reported by epoll as EPOLLOUT */
}

static void lg_on_connected(struct lg_thread *t, struct lg_conn *c)
{
	char req[700], eb[128];
	int err = 0, n;
	socklen_t len = sizeof(err);
	uint8_t *p;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		lg_conn_fail(t, c, "connect: %s", lg_errstr(err, eb, sizeof(eb)));
		return;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     opt.path, opt.nports ? opt.port_hdr[lg_port_index(c)] : opt.host_hdr, t->key);
	if (n < 0 || (size_t)n >= sizeof(req) || !lg_out_room(t, c, (size_t)n)) {
		lg_conn_fail(t, c, "upgrade request does not fit");
		return;
	}
	p = c->out + c->out_len;
	memcpy(p, req, (size_t)n);
	c->out_len += (uint32_t)n;
	c->state = LG_S_UPGRADING;
	lg_mark_dirty(t, c);
}

static void lg_send_join(struct lg_thread *t, struct lg_conn *c)
{
	char room[96], msg[256 + LG_TOKEN_MAX];
	const char *tok = run.tokens && c->room < run.ntokens ? run.tokens[c->room] : NULL;
	int n;

	lg_room_name(c, room, sizeof(room));
	n = snprintf(msg, sizeof(msg),
		     "{\"type\":\"join\",\"id\":\"p%" PRIu32 "\",\"nick\":\"" LG_NICK
		     "\",\"room\":\"%s\"%s%s%s}", c->peer, room, tok ? ",\"token\":\"" : "",
		     tok ? tok : "", tok ? "\"" : "");
	if (lg_send_frame(t, c, 0x1, msg, (size_t)n))
		lg_conn_fail(t, c, "join does not fit");
}

/* The HTTP response to our upgrade; returns true once the WebSocket is open. */
static bool lg_on_upgrade(struct lg_thread *t, struct lg_conn *c)
{
	const char *b = (const char *)c->in;
	const char *end = memmem(b, c->in_len, "\r\n\r\n", 4);
	const char *line;
	bool accepted = false;
	size_t hlen;

	if (!end) {
		if (c->in_len >= t->in_cap)
			lg_conn_fail(t, c, "upgrade response larger than %zu bytes", t->in_cap);
		return false;
	}
	hlen = (size_t)(end + 4 - b);
	if (hlen < 12 || memcmp(b, "HTTP/1.1 101", 12)) {
		const char *eol = memchr(b, '\r', hlen);

		lg_conn_fail(t, c, "upgrade refused: %.*s", (int)(eol - b > 80 ? 80 : eol - b), b);
		return false;
	}
	for (line = memchr(b, '\n', hlen); line && line + 1 < end; line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
		const char *v = line + 1;

		if ((size_t)(end - v) < 21 || strncasecmp(v, "sec-websocket-accept:", 21))
			continue;
		v += 21;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		accepted = (size_t)(end - v) >= 28 && !memcmp(v, t->accept, 28) &&
			   (v + 28 == end || v[28] == '\r' || v[28] == ' ');
		break;
	}
	if (!accepted) {
		lg_conn_fail(t, c, "upgrade response without the right Sec-WebSocket-Accept");
		return false;
	}
	c->in_len -= (uint32_t)hlen;
	memmove(c->in, c->in + hlen, c->in_len);
	c->state = LG_S_JOINING;
	lg_send_join(t, c);
	return c->fd >= 0;
}

/* ---- events from the server */

static void lg_check_ready(struct lg_thread *t, struct lg_conn *c)
{
	if (c->state == LG_S_JOINED && !c->ready && c->known + 1 == c->room_n) {
		c->ready = true;
		t->nready++;
		t->last_progress = t->now;
		if (t->now > t->st.last_ready_ns)
			t->st.last_ready_ns = t->now;
	}
}

/* A member of c's room made itself known (roster entry or `join`). */
static void lg_mark_known(struct lg_thread *t, struct lg_conn *c, const struct lg_span *id,
			  const char *how)
{
	uint64_t peer, first = c->peer - c->slot;

	if (!lg_span_peer(id, &peer) || peer < first || peer >= first + c->room_n ||
	    peer == c->peer) {
		lg_violation(t, c, "%s names a peer that is not in the room: \"%.*s\"", how,
			     id->p ? (int)(id->n > 40 ? 40 : id->n) : 0, id->p ? id->p : "");
		return;
	}
	if (c->next_from[peer - first] != LG_UNKNOWN) {
		lg_violation(t, c, "%s for p%" PRIu64 ", already known", how, peer);
		return;
	}
	c->next_from[peer - first] = 0;
	c->known++;
	lg_check_ready(t, c);
}

static bool lg_is_own_id(const struct lg_conn *c, const struct lg_span *id)
{
	uint64_t peer;

	return lg_span_peer(id, &peer) && peer == c->peer;
}

static void lg_on_joined(struct lg_thread *t, struct lg_conn *c, const char *p, size_t n)
{
	static const char *const keys[] = { "id", "nick", "room", "peers" };
	struct lg_span v[4];
	char room[96];
	const char *q, *e;

	if (c->state != LG_S_JOINING) {
		lg_violation(t, c, "unexpected `joined`");
		return;
	}
	lg_room_name(c, room, sizeof(room));
	if (lg_members(p, p + n, keys, 4, v) || !lg_is_own_id(c, &v[0]) ||
	    !lg_span_is(&v[1], LG_NICK, LG_LIT(LG_NICK)) ||
	    !lg_span_is(&v[2], room, strlen(room)) || !v[3].p || v[3].str ||
	    v[3].p[0] != '[') {
		lg_violation(t, c, "malformed `joined` payload: %.*s", (int)(n > 120 ? 120 : n), p);
		return;
	}
	c->state = LG_S_JOINED;
	t->inflight--;
	t->st.joins_all++;
	if (t->now >= t->ms && t->now < t->me) {
		t->st.joins++;
		if (opt.scenario == LG_CONNECT || opt.scenario == LG_CHURN)
			lg_hist_add(&t->hist, lg_since(t->now, c->t_start));
	}
	t->last_progress = t->now;
	if (opt.scenario == LG_CHURN)
		lg_lru_push(t, c);
	/* the roster: [{"id":..,"nick":..}, ...] */
	e = v[3].p + v[3].n - 1;	/* the closing ']' */
	q = lg_ws(v[3].p + 1, e);
	while (q < e) {
		static const char *const pk[] = { "id" };
		struct lg_span id;
		const char *next = lg_skip_value(q, e);

		if (!next || lg_members(q, next, pk, 1, &id)) {
			lg_violation(t, c, "malformed roster in `joined`");
			return;
		}
		lg_mark_known(t, c, &id, "roster");
		q = lg_ws(next, e);
		if (q < e && *q == ',')
			q = lg_ws(q + 1, e);
	}
	lg_check_ready(t, c);
}

static void lg_on_relay(struct lg_thread *t, struct lg_conn *c, const char *p, size_t n)
{
	static const char *const keys[] = { "seq", "ts", "src", "pad", "id", "nick" };
	struct lg_span v[6];
	uint64_t seq, ts, src, first = c->peer - c->slot, slot, lat;
	uint64_t *next;
	struct lg_conn *s;

	if (lg_members(p, p + n, keys, 6, v) || !lg_span_u64(&v[0], &seq) ||
	    !lg_span_u64(&v[1], &ts) || !lg_span_u64(&v[2], &src) || !v[3].p || !v[3].str) {
		lg_violation(t, c, "malformed relayed payload: %.*s", (int)(n > 100 ? 100 : n), p);
		return;
	}
	if (src < first || src >= first + c->room_n || src == c->peer) {
		lg_violation(t, c, "message from p%" PRIu64 ", who is not in the room", src);
		return;
	}
	slot = src - first;
	{
		uint64_t idp;

		if (!lg_span_peer(&v[4], &idp) || idp != src ||
		    !lg_span_is(&v[5], LG_NICK, LG_LIT(LG_NICK))) {
			lg_violation(t, c, "message from p%" PRIu64 " stamped with id \"%.*s\" nick \"%.*s\"",
				     src, v[4].p ? (int)(v[4].n > 30 ? 30 : v[4].n) : 0,
				     v[4].p ? v[4].p : "", v[5].p ? (int)(v[5].n > 30 ? 30 : v[5].n) : 0,
				     v[5].p ? v[5].p : "");
			return;
		}
	}
	if (v[3].n != opt.size - lg_msg_fixed(c->peer, seq, ts, src)) {
		lg_violation(t, c, "message %" PRIu64 " from p%" PRIu64 " has %zu bytes of padding, sent %zu",
			     seq, src, v[3].n, opt.size - lg_msg_fixed(c->peer, seq, ts, src));
		return;
	}
	next = &c->next_from[slot];
	if (*next == LG_UNKNOWN) {
		lg_violation(t, c, "message from p%" PRIu64 " before its `join`", src);
		return;
	}
	if (seq != *next) {
		lg_violation(t, c, "from p%" PRIu64 ": seq %" PRIu64 ", expected %" PRIu64 " (%s)",
			     src, seq, *next, seq < *next ? "duplicate or reordered" : "gap");
		if (seq > *next)
			*next = seq + 1;
		return;
	}
	(*next)++;
	t->st.delivered_all++;
	if (t->st.last_delivery_ns && t->phase == LG_P_RUN &&
	    lg_since(t->now, t->st.last_delivery_ns) > t->st.max_gap_ns)
		t->st.max_gap_ns = lg_since(t->now, t->st.last_delivery_ns);
	t->st.last_delivery_ns = t->now;
	if (t->now >= t->ms && t->now < t->me) {
		t->st.delivered++;
		lat = t->now > ts ? t->now - ts : 0;
		lg_hist_add(&t->hist, lat);
	}
	s = &t->conns[src - t->p0];
	if (s->ring) {
		uint32_t *r = &s->ring[seq % opt.window];

		if (++*r == c->room_n - 1) {
			*r = 0;
			s->completed++;
			lg_pump(t, s);
		}
	}
}

static void lg_on_error(struct lg_thread *t, struct lg_conn *c, const char *p, size_t n)
{
	static const char *const keys[] = { "code", "message", "ref" };
	struct lg_span v[3];

	t->st.errors++;
	if (lg_members(p, p + n, keys, 3, v) || !v[0].p) {
		lg_note(t, "error event at p%" PRIu32 ": %.*s", c->peer, (int)(n > 120 ? 120 : n), p);
		return;
	}
	lg_note(t, "error event at p%" PRIu32 ": code=%.*s ref=%.*s message=%.*s", c->peer,
		(int)(v[0].n > 30 ? 30 : v[0].n), v[0].p,
		v[2].p ? (int)(v[2].n > 20 ? 20 : v[2].n) : 4, v[2].p ? v[2].p : "none",
		v[1].p ? (int)(v[1].n > 100 ? 100 : v[1].n) : 0, v[1].p ? v[1].p : "");
}

static void lg_on_text(struct lg_thread *t, struct lg_conn *c, const char *p, size_t n)
{
	static const char *const keys[] = { "type", "payload" };
	struct lg_span v[2];
	const char *type;
	size_t tn;

	if (lg_members(p, p + n, keys, 2, v) || !v[0].p || !v[0].str) {
		lg_violation(t, c, "malformed event: %.*s", (int)(n > 100 ? 100 : n), p);
		return;
	}
	type = v[0].p;
	tn = v[0].n;
	if (!v[1].p || v[1].str || v[1].p[0] != '{') {
		lg_violation(t, c, "event `%.*s` without an object payload", (int)(tn > 20 ? 20 : tn), type);
		return;
	}
#define LG_IS(s) (tn == LG_LIT(s) && !memcmp(type, s, LG_LIT(s)))
	if (LG_IS("error")) {
		lg_on_error(t, c, v[1].p, v[1].n);
	} else if (LG_IS("joined")) {
		lg_on_joined(t, c, v[1].p, v[1].n);
	} else if (c->state != LG_S_JOINED) {
		lg_violation(t, c, "event `%.*s` before `joined`", (int)(tn > 20 ? 20 : tn), type);
	} else if (lg_messaging() &&
		   (opt.scenario == LG_RELAY ? LG_IS("message") : LG_IS("offer"))) {
		lg_on_relay(t, c, v[1].p, v[1].n);
	} else if (LG_IS("join")) {
		static const char *const jk[] = { "id" };
		struct lg_span id;

		if (lg_members(v[1].p, v[1].p + v[1].n, jk, 1, &id))
			lg_violation(t, c, "malformed `join` payload");
		else
			lg_mark_known(t, c, &id, "`join`");
	} else if (LG_IS("leave")) {
		lg_violation(t, c, "unexpected `leave`: %.*s", (int)(v[1].n > 60 ? 60 : v[1].n), v[1].p);
	} else if (!LG_IS("pong")) {
		lg_violation(t, c, "unexpected event `%.*s`", (int)(tn > 20 ? 20 : tn), type);
	}
#undef LG_IS
}

/* One complete frame from the server. */
static void lg_on_frame(struct lg_thread *t, struct lg_conn *c, uint8_t b0,
			const uint8_t *pl, size_t n)
{
	unsigned op = b0 & 0x0f;
	bool fin = (b0 & 0x80) != 0;

	if (b0 & 0x70)
		lg_violation(t, c, "frame with reserved bits 0x%02x", b0 & 0x70);
	if (op >= 0x8 && (!fin || n > 125)) {
		lg_violation(t, c, "control frame 0x%x fragmented or longer than 125", op);
		return;
	}
	switch (op) {
	case 0x1:
		if (c->in_frag)
			lg_violation(t, c, "text frame inside a fragmented message");
		if (fin) {
			c->in_frag = false;
			lg_on_text(t, c, (const char *)pl, n);
			return;
		}
		if (!c->frag) {
			c->frag = malloc(t->in_cap);
			if (!c->frag) {
				lg_conn_fail(t, c, "out of memory for a fragmented message");
				return;
			}
		}
		memcpy(c->frag, pl, n);
		c->frag_len = (uint32_t)n;
		c->in_frag = true;
		return;
	case 0x0:
		if (!c->in_frag) {
			lg_violation(t, c, "continuation frame without a message");
			return;
		}
		if (c->frag_len + n > t->in_cap) {
			lg_conn_fail(t, c, "fragmented message larger than %zu bytes", t->in_cap);
			return;
		}
		memcpy(c->frag + c->frag_len, pl, n);
		c->frag_len += (uint32_t)n;
		if (fin) {
			c->in_frag = false;
			lg_on_text(t, c, (const char *)c->frag, c->frag_len);
		}
		return;
	case 0x2:
		lg_violation(t, c, "binary frame from the server");
		return;
	case 0x8: {
		unsigned code = n >= 2 ? (unsigned)pl[0] << 8 | pl[1] : 1005;

		t->st.server_closes++;
		t->st.failures++;
		lg_note(t, "server closed p%" PRIu32 " with status %u%s%.*s", c->peer, code,
			n > 2 ? ": " : "", n > 2 ? (int)(n - 2) : 0, n > 2 ? (const char *)pl + 2 : "");
		lg_conn_close(t, c, true, (uint16_t)(code == 1005 ? 1000 : code));
		lg_conn_down(t, c);
		return;
	}
	case 0x9:
		t->st.pings++;
		if (lg_send_frame(t, c, 0xA, pl, n))
			lg_conn_fail(t, c, "no room for a pong");
		return;
	case 0xA:
		return;
	default:
		lg_violation(t, c, "frame with reserved opcode 0x%x", op);
		return;
	}
}

/* Consumes the complete frames in c's input buffer. */
static void lg_on_frames(struct lg_thread *t, struct lg_conn *c)
{
	uint8_t *b = c->in;
	size_t len = c->in_len, off = 0;

	while (len - off >= 2) {
		uint8_t b0 = b[off], b1 = b[off + 1];
		size_t hdr = 2;
		uint64_t plen = b1 & 0x7f;
		uint8_t *pl;

		if (plen == 126) {
			if (len - off < 4)
				break;
			plen = (uint64_t)b[off + 2] << 8 | b[off + 3];
			hdr = 4;
		} else if (plen == 127) {
			if (len - off < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | b[off + 2 + (size_t)i];
			hdr = 10;
		}
		if (b1 & 0x80)
			hdr += 4;
		if (plen > t->in_cap - hdr) {
			lg_conn_fail(t, c, "frame of %" PRIu64 " bytes, larger than the buffer", plen);
			return;
		}
		if (len - off < hdr + plen)
			break;
		pl = b + off + hdr;
		if (b1 & 0x80) {
			uint32_t mask;

			memcpy(&mask, pl - 4, 4);
			lg_mask(pl, (size_t)plen, mask);
			lg_violation(t, c, "masked frame from the server");
		}
		off += hdr + (size_t)plen;
		lg_on_frame(t, c, b0, pl, (size_t)plen);
		if (c->fd < 0)
			return;		/* closed; its buffer was dropped */
	}
	if (off) {
		memmove(b, b + off, len - off);
		c->in_len = (uint32_t)(len - off);
	}
}

/* Reads what c's socket holds; to EOF when the kernel reported a hang-up. */
static void lg_on_readable(struct lg_thread *t, struct lg_conn *c, bool to_end)
{
	char eb[128];

	for (;;) {
		size_t space = t->in_cap - c->in_len;
		ssize_t r;

		if (space == 0) {
			lg_conn_fail(t, c, "input buffer full");
			return;
		}
		r = recv(c->fd, c->in + c->in_len, space, 0);
		if (r > 0) {
			c->in_len += (uint32_t)r;
			t->now = lg_now();
			if (c->state == LG_S_UPGRADING && !lg_on_upgrade(t, c))
				return;
			if (c->state >= LG_S_JOINING)
				lg_on_frames(t, c);
			if (c->fd < 0)
				return;
			if ((size_t)r < space && !to_end)
				return;
			continue;
		}
		if (r == 0) {
			lg_conn_fail(t, c, "the server closed the TCP connection without a close frame");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			lg_conn_fail(t, c, "recv: %s", lg_errstr(errno, eb, sizeof(eb)));
		return;
	}
}

/* A socket we closed: discard what comes until the server's EOF. */
static void lg_on_old(struct lg_thread *t, struct lg_conn *c)
{
	for (;;) {
		ssize_t r = recv(c->old_fd, t->scratch, sizeof(t->scratch), 0);

		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		lg_close_old(t, c);
		return;
	}
}

static void lg_on_event(struct lg_thread *t, const struct epoll_event *ev)
{
	uint64_t u = ev->data.u64;
	uint32_t e = ev->events;
	struct lg_conn *c;

	if (u == LG_TIMER_TAG) {
		uint64_t x;

		if (read(t->tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
			lg_note(t, "timerfd read failed");
		return;
	}
	c = &t->conns[u >> 1];
	if (u & 1) {
		if (c->old_fd >= 0)
			lg_on_old(t, c);
		return;
	}
	if (c->fd < 0)
		return;
	if (c->state == LG_S_CONNECTING) {
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			lg_on_connected(t, c);
		if (c->fd < 0 || c->state == LG_S_CONNECTING)
			return;
	}
	if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		lg_on_readable(t, c, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
	if (c->fd >= 0 && (e & EPOLLOUT) && c->out_len > c->out_off)
		lg_mark_dirty(t, c);
}

/*
 * Sends all queued output, and refills the pumps that had stopped for want of
 * output space.  A refilled connection joins the list again, so the list is
 * worked in rounds: in one round each connection is appended at most once
 * more, hence the 2n slots.  It ends when the kernel stops taking data or the
 * windows (open loop: the messages due) are used up.
 */
static void lg_flush_dirty(struct lg_thread *t)
{
	char eb[128];

	while (t->ndirty > 0) {
		uint32_t round = t->ndirty;

		for (uint32_t i = 0; i < round; i++) {
			struct lg_conn *c = &t->conns[t->dirty[i]];
			int err;

			c->dirty = false;
			if (c->fd < 0 || c->out_off == c->out_len)
				continue;
			err = lg_flush(c);
			if (err) {
				lg_conn_fail(t, c, "send: %s", lg_errstr(-err, eb, sizeof(eb)));
				continue;
			}
			if (c->blocked && c->out_len - c->out_off < t->out_cap / 2)
				lg_pump(t, c);
		}
		t->ndirty -= round;
		memmove(t->dirty, t->dirty + round, t->ndirty * sizeof(*t->dirty));
	}
}

/* ---- the thread's phases */

static void lg_start_some(struct lg_thread *t)
{
	while (t->inflight < t->conc && t->idle_len > 0) {
		struct lg_conn *c = &t->conns[t->idle[--t->idle_len]];

		c->in_idle = false;
		lg_conn_start(t, c);
		if (c->state == LG_S_DEAD)
			break;
	}
}

/* Connect timeouts and overdue old sockets; at most every LG_SCAN_NS. */
static void lg_scan(struct lg_thread *t, bool force)
{
	uint64_t limit = (uint64_t)(opt.connect_timeout * (double)LG_NS);

	if (!force && lg_since(t->now, t->last_scan) < LG_SCAN_NS)
		return;
	t->last_scan = t->now;
	for (uint32_t i = 0; i < t->n; i++) {
		struct lg_conn *c = &t->conns[i];

		if (c->old_fd >= 0 && t->now >= c->old_deadline)
			lg_close_old(t, c);
		if (c->fd >= 0 && c->state >= LG_S_CONNECTING && c->state <= LG_S_JOINING &&
		    lg_since(t->now, c->t_start) > limit)
			lg_conn_fail(t, c, "no `joined` within %.1f s (%s)", opt.connect_timeout,
				     c->state == LG_S_CONNECTING ? "TCP connect" :
				     c->state == LG_S_UPGRADING ? "HTTP upgrade" : "join");
	}
}

/* Open loop: messages that fell due but were never written, counted once. */
static void lg_count_unsent(struct lg_thread *t)
{
	if (t->unsent_done || !t->open_loop)
		return;
	t->unsent_done = true;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->conns[i].due > t->conns[i].sent)
			t->st.unsent += t->conns[i].due - t->conns[i].sent;
}

static void lg_enter_close(struct lg_thread *t)
{
	lg_count_unsent(t);
	for (uint32_t i = 0; i < t->n; i++) {
		struct lg_conn *c = &t->conns[i];

		lg_lru_remove(t, c);
		if (c->fd >= 0)
			lg_conn_close(t, c, true, 1000);
	}
	t->close_deadline = t->now + LG_CLOSE_GRACE_NS;
	t->phase = LG_P_CLOSE;
}

static void lg_arm_timer(struct lg_thread *t)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (t->j_time >= t->me || t->armed == t->j_time)
		return;
	its.it_value.tv_sec = (time_t)(t->j_time / LG_NS);
	its.it_value.tv_nsec = (long)(t->j_time % LG_NS);
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		t->armed = t->j_time;
}

static void lg_enter_run(struct lg_thread *t, uint64_t go)
{
	t->go = go;
	if (opt.scenario == LG_CONNECT) {
		lg_enter_close(t);
		return;
	}
	t->ms = run.meas_start;
	t->me = run.meas_end;
	t->drain_deadline = t->me + (uint64_t)(opt.drain_timeout * (double)LG_NS);
	if (t->drain_deadline > run.deadline - LG_ABORT_MARGIN_NS)
		t->drain_deadline = run.deadline - LG_ABORT_MARGIN_NS;
	t->phase = LG_P_RUN;
	t->j_next = 0;
	t->j_time = go;
	if (t->open_loop)
		lg_arm_timer(t);
	else if (lg_messaging())
		for (uint32_t i = 0; i < t->n; i++)
			lg_pump(t, &t->conns[i]);
}

static void lg_run_work(struct lg_thread *t)
{
	if (lg_messaging() && t->open_loop) {
		while (t->j_time <= t->now && t->j_time < t->me) {
			struct lg_conn *c = &t->conns[t->j_next % t->n];

			c->due++;
			lg_pump(t, c);
			t->j_next++;
			t->j_time = t->go + (uint64_t)((double)t->j_next * t->d_ns);
		}
		lg_arm_timer(t);
	} else if (opt.scenario == LG_CHURN) {
		uint64_t allowed = UINT64_MAX;

		if (opt.rate > 0)
			allowed = (uint64_t)((double)lg_since(t->now, t->go) / t->d_ns) + 1;
		lg_start_some(t);	/* slots whose connection failed */
		while (t->inflight < t->conc && t->lru_head != LG_NONE &&
		       t->churn_started < allowed) {
			struct lg_conn *c = &t->conns[t->lru_head];

			lg_lru_remove(t, c);
			if (c->ready) {
				c->ready = false;
				t->nready--;
			}
			lg_conn_close(t, c, true, 1000);
			c->gen++;
			t->churn_started++;
			lg_conn_start(t, c);
			if (c->state == LG_S_DEAD)
				break;
		}
		lg_scan(t, false);
	} else {
		lg_scan(t, false);
	}
}

static bool lg_drained(const struct lg_thread *t)
{
	return t->st.delivered_all >= t->st.sent_all * (opt.room_size - 1);
}

static void lg_tick(struct lg_thread *t)
{
	bool abort_now = atomic_load_explicit(&run.failed, memory_order_relaxed) ||
			 atomic_load_explicit(&run.stop, memory_order_relaxed) ||
			 t->now + LG_ABORT_MARGIN_NS >= run.deadline;
	uint64_t go;

	switch (t->phase) {
	case LG_P_SETUP:
		if (abort_now) {
			lg_enter_close(t);
			break;
		}
		lg_start_some(t);
		if (t->nready == t->n) {
			t->phase = LG_P_WAIT;
			atomic_fetch_add(&run.ready, 1);
			break;
		}
		lg_scan(t, false);
		if (lg_since(t->now, t->last_progress) > (uint64_t)(opt.connect_timeout * (double)LG_NS)) {
			lg_note(t, "setup stalled: %" PRIu32 " of %" PRIu32 " connections ready after %.1f s without progress",
				t->nready, t->n, opt.connect_timeout);
			atomic_store(&run.failed, 1);
			lg_enter_close(t);
		}
		break;
	case LG_P_WAIT:
		go = atomic_load_explicit(&run.go, memory_order_acquire);
		if (go)
			lg_enter_run(t, go);
		else if (abort_now)
			lg_enter_close(t);
		break;
	case LG_P_RUN:
		if (abort_now) {
			lg_enter_close(t);
		} else if (t->now >= t->me) {
			if (lg_messaging()) {
				lg_count_unsent(t);
				/* a stall that lasts to the end counts as a gap too */
				if (t->st.last_delivery_ns &&
				    lg_since(t->now, t->st.last_delivery_ns) > t->st.max_gap_ns)
					t->st.max_gap_ns = lg_since(t->now, t->st.last_delivery_ns);
				t->drained = true;
				t->phase = LG_P_DRAIN;
			} else {
				lg_enter_close(t);
			}
		} else {
			lg_run_work(t);
		}
		break;
	case LG_P_DRAIN:
		if (lg_drained(t) || abort_now || t->now >= t->drain_deadline)
			lg_enter_close(t);
		break;
	case LG_P_CLOSE:
		lg_scan(t, false);
		if (t->closing == 0 || t->now >= t->close_deadline) {
			for (uint32_t i = 0; i < t->n; i++)
				lg_close_old(t, &t->conns[i]);
			t->phase = LG_P_DONE;
		}
		break;
	case LG_P_DONE:
		break;
	}
}

static int lg_timeout_ms(const struct lg_thread *t)
{
	uint64_t d = 50 * LG_MS;

	if (t->phase == LG_P_WAIT)
		return 1;
	if (t->phase == LG_P_RUN && t->me > t->now && t->me - t->now < d)
		d = t->me - t->now;
	if (t->phase == LG_P_DRAIN || t->phase == LG_P_CLOSE)
		d = 10 * LG_MS;
	return (int)((d + LG_MS - 1) / LG_MS);
}

/*
 * After the run: messages that never reached a receiver.  Only after a drain:
 * an interrupted run still had messages in flight.
 */
static void lg_count_lost(struct lg_thread *t)
{
	if (!lg_messaging() || !t->drained)
		return;
	for (uint32_t i = 0; i < t->n; i++) {
		struct lg_conn *c = &t->conns[i];
		struct lg_conn *r0 = lg_room0(t, c);

		for (uint32_t s = 0; s < c->room_n; s++) {
			uint64_t got = c->next_from[s], sent = r0[s].sent;

			if (s == c->slot || got == LG_UNKNOWN || got >= sent)
				continue;
			t->st.lost += sent - got;
			if (t->st.lost == sent - got)
				lg_note(t, "p%" PRIu32 " received %" PRIu64 " of the %" PRIu64 " messages p%" PRIu32 " sent",
					c->peer, got, sent, r0[s].peer);
		}
	}
}

static void *lg_thread_main(void *arg)
{
	struct lg_thread *t = arg;
	char eb[128];

	/* the pacing timer: wake within a microsecond, not the default 50 */
	if (t->open_loop || opt.rate > 0)
		(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
	t->now = lg_now();
	t->last_progress = t->now;
	t->last_scan = t->now;
	while (t->phase != LG_P_DONE) {
		int n = epoll_wait(t->ep, t->events, LG_MAX_EVENTS, lg_timeout_ms(t));

		if (n < 0 && errno != EINTR) {
			lg_note(t, "epoll_wait: %s", lg_errstr(errno, eb, sizeof(eb)));
			atomic_store(&run.failed, 1);
			n = 0;
		}
		t->now = lg_now();
		for (int i = 0; i < n; i++)
			lg_on_event(t, &t->events[i]);
		lg_tick(t);
		lg_flush_dirty(t);
	}
	lg_count_lost(t);
	return NULL;
}

/* ------------------------------------------------------------ setup */

static int lg_thread_init(struct lg_thread *t, unsigned id, uint32_t p0, uint32_t n)
{
	size_t in_cap, out_cap, k = opt.room_size;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LG_TIMER_TAG };
	uint8_t raw[16];
	uint32_t seed = (uint32_t)lg_now() ^ (id * 0x9E3779B9u) ^ (uint32_t)getpid();

	t->id = id;
	t->p0 = p0;
	t->n = n;
	t->ep = t->tfd = -1;
	t->lru_head = t->lru_tail = LG_NONE;
	t->phase = LG_P_SETUP;
	t->ms = t->me = 0;
	if (opt.scenario == LG_CONNECT)
		t->me = UINT64_MAX;	/* every join of the setup is measured */
	t->conc = opt.concurrency / opt.threads;
	if (opt.scenario == LG_CHURN) {
		/* keep at least 90 % of the connections joined */
		uint32_t tenth = n / 10 ? n / 10 : 1;

		if (t->conc > tenth)
			t->conc = tenth;
	}
	if (t->conc < 1)
		t->conc = 1;
	t->open_loop = lg_messaging() && opt.rate > 0;
	if (opt.rate > 0 && n > 0)
		t->d_ns = (double)LG_NS / (opt.rate * (double)n / (double)opt.peers);
	t->frame_len = lg_hdr_len(opt.size) + opt.size;

	/* a roster entry is {"id":"p4294967295","nick":"lg"}, */
	in_cap = k * 40 + 1024;
	if (lg_messaging()) {
		if (in_cap < 2 * ((size_t)opt.size + 512))
			in_cap = 2 * ((size_t)opt.size + 512);
		if (in_cap < 16384)
			in_cap = 16384;
		/* room for a whole window (up to 32 messages) per flush */
		out_cap = ((t->open_loop ? 4 : opt.window < 32 ? opt.window : 32) + 1) *
			  t->frame_len + LG_CTRL_RESERVE;
		if (out_cap < 8192)
			out_cap = 8192;
	} else {
		if (in_cap < 4096)
			in_cap = 4096;
		out_cap = 1024;
	}
	t->in_cap = in_cap;
	t->out_cap = out_cap;

	for (int i = 0; i < 16; i++)
		raw[i] = (uint8_t)lg_xorshift(&seed);
	lg_base64(raw, 16, t->key);
	lg_ws_accept(t->key, t->accept);

	if (n == 0)
		return 0;
	t->conns = calloc(n, sizeof(*t->conns));
	t->bufs = calloc(n, in_cap + out_cap);
	t->nexts = calloc((size_t)n * k, sizeof(*t->nexts));
	t->idle = calloc(n, sizeof(*t->idle));
	t->dirty = calloc(2 * (size_t)n, sizeof(*t->dirty));
	if (lg_messaging() && !t->open_loop)
		t->rings = calloc((size_t)n * opt.window, sizeof(*t->rings));
	if (!t->conns || !t->bufs || !t->nexts || !t->idle || !t->dirty ||
	    (lg_messaging() && !t->open_loop && !t->rings))
		return -ENOMEM;
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->ep < 0 || t->tfd < 0 || epoll_ctl(t->ep, EPOLL_CTL_ADD, t->tfd, &ev))
		return -errno;
	for (uint32_t i = 0; i < n; i++) {
		struct lg_conn *c = &t->conns[i];
		uint32_t peer = p0 + i;

		c->fd = c->old_fd = -1;
		c->peer = peer;
		c->room = peer / opt.room_size;
		c->slot = peer % opt.room_size;
		c->room_n = opt.room_size;
		if ((c->room + 1) * opt.room_size > opt.peers)
			c->room_n = opt.peers - c->room * opt.room_size;
		c->rng = (peer + 1) * 2654435761u ^ seed;
		if (!c->rng)
			c->rng = 1;
		c->in = t->bufs + (size_t)i * (in_cap + out_cap);
		c->out = c->in + in_cap;
		c->next_from = t->nexts + (size_t)i * k;
		if (t->rings)
			c->ring = t->rings + (size_t)i * opt.window;
		c->lru_prev = c->lru_next = LG_NONE;
	}
	for (uint32_t i = 0; i < n; i++)
		lg_push_idle(t, &t->conns[n - 1 - i]);
	return 0;
}

static void lg_thread_release(struct lg_thread *t)
{
	for (uint32_t i = 0; t->conns && i < t->n; i++) {
		struct lg_conn *c = &t->conns[i];

		if (c->fd >= 0)
			close(c->fd);
		if (c->old_fd >= 0)
			close(c->old_fd);
		free(c->frag);
	}
	if (t->ep >= 0)
		close(t->ep);
	if (t->tfd >= 0)
		close(t->tfd);
	free(t->conns);
	free(t->bufs);
	free(t->nexts);
	free(t->idle);
	free(t->dirty);
	free(t->rings);
}

/* ------------------------------------------------------------ the server's figures */

struct lg_proc {
	bool ok;
	double cpu_s;			/* summed over the processes */
	long rss_kb;			/* summed, or -1 */
	double each[LG_MAX_PIDS];	/* each process's CPU time */
};

/* One process's CPU time (utime + stime, seconds) and VmRSS (kB, or -1). */
static bool lg_proc_read(long pid, double *cpu_s, long *rss_kb)
{
	char path[64], buf[4096];
	unsigned long long ut = 0, st = 0;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after "comm)": state is field 3; utime and stime are fields 14 and 15 */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return false;
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	*rss_kb = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (!strncmp(buf, "VmRSS:", 6)) {
				*rss_kb = strtol(buf + 6, NULL, 10);
				break;
			}
		fclose(f);
	}
	return true;
}

/* The sums over every --server-pid; ok only if each one could be read. */
static struct lg_proc lg_proc_sample(void)
{
	struct lg_proc s = { false, 0, -1, { 0 } };

	if (!opt.npids)
		return s;
	s.rss_kb = 0;
	for (unsigned i = 0; i < opt.npids; i++) {
		double cpu;
		long rss;

		if (!lg_proc_read(opt.server_pids[i], &cpu, &rss))
			return s;
		s.each[i] = cpu;
		s.cpu_s += cpu;
		if (rss < 0 || s.rss_kb < 0)
			s.rss_kb = -1;
		else
			s.rss_kb += rss;
	}
	s.ok = true;
	return s;
}

static double lg_self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------ options */

static void lg_usage(FILE *f)
{
	fprintf(f,
"usage: sb-loadgen [options]\n"
"Drives a switchboard server (protocol 1) on this machine and measures it.\n"
"\n"
"target (loopback only: 127.0.0.0/8, ::1, localhost):\n"
"      --url ws://HOST:PORT/PATH   the server (default ws://127.0.0.1:8080/)\n"
"      --host HOST --port PORT     the same, in two parts\n"
"      --server-pid PID            sample the server's CPU time and RSS (/proc); may be\n"
"                                  given up to 8 times (a cluster's nodes and its\n"
"                                  Redis): the figures are then sums over them\n"
"      --ports P1,P2,...           spread the connections over servers on these ports\n"
"                                  of the same host (a cluster's nodes): member k of\n"
"                                  each room to port k mod N, rooms of one in turn\n"
"load:\n"
"      --scenario NAME     relay, broadcast, connect, churn or idle (default relay)\n"
"      --peers N           connections (default 100)\n"
"      --room-size K       peers per room: broadcast (default 5), idle (default 10),\n"
"                          connect (default 1); relay is always 2, churn 1\n"
"      --window W          closed loop: messages each peer keeps outstanding (default 1)\n"
"      --rate R            open loop: messages/s over all peers, evenly paced, latency\n"
"                          from the scheduled send time (window ignored); churn:\n"
"                          replacements/s (default 0: closed loop, as fast as it goes)\n"
"      --size BYTES        one message, JSON included (default 200)\n"
"      --duration SECONDS  measured interval (default 10)\n"
"      --warmup SECONDS    traffic before it, not counted (default 1; relay,\n"
"                          broadcast, churn)\n"
"      --threads N         worker threads, each with its own epoll (default 1)\n"
"      --tag T             room names start with T (default: the run's own)\n"
"      --tokens FILE       a room token per room, line k for room <tag>r<k>, sent\n"
"                          with each join (needs --tag; not with churn)\n"
"      --concurrency N     handshakes in flight (default 256; churn also keeps\n"
"                          at least 90%% of the connections joined)\n"
"      --source-addrs N    bind connections round-robin to 127.0.0.1..127.0.0.N:\n"
"                          needed past ~28,000 connections, and worth it past\n"
"                          ~5,000 (connect() slows as one address fills up)\n"
"      --connect-timeout SECONDS  TCP connect to `joined` (default 10)\n"
"      --drain-timeout SECONDS    wait for messages in flight at the end (default 5)\n"
"output:\n"
"      --json-only         no summary on standard error\n"
"  -h, --help              this text\n"
"      --version           the version\n"
"\n"
"Prints one JSON line on standard output.  Exits 0 for a clean run, 1 if\n"
"anything was lost, duplicated, reordered, refused or failed, 2 for a bad\n"
"command line or a target that is not loopback.  A run never lasts longer\n"
"than warmup + duration + 30 seconds.\n");
}

static void lg_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void lg_die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("sb-loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\ntry 'sb-loadgen --help'\n", stderr);
	exit(2);
}

static unsigned lg_parse_uint(const char *name, const char *v, unsigned min, unsigned max)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x < min || x > max)
		lg_die_usage("bad value '%s' for --%s (a whole number from %u to %u)", v, name,
			     min, max);
	return (unsigned)x;
}

static double lg_parse_num(const char *name, const char *v, double min, double max)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || !(x >= min && x <= max))
		lg_die_usage("bad value '%s' for --%s (a number from %g to %g)", v, name, min, max);
	return x;
}

/*
 * Resolves host (no DNS: a literal address or "localhost") into opt.addr.
 * Exits 2 for anything that is not loopback.
 */
static void lg_set_target(const char *host, unsigned port)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
	char h[256];
	size_t hl = strlen(host);

	if (hl >= sizeof(h))
		lg_die_usage("host name too long");
	memcpy(h, host, hl + 1);
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		memmove(h, h + 1, hl - 2);
		h[hl - 2] = '\0';
	}
	memset(&opt.addr, 0, sizeof(opt.addr));
	if (!strcasecmp(h, "localhost"))
		strcpy(h, "127.0.0.1");
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) {
			fprintf(stderr, "sb-loadgen: refusing target %s: only loopback addresses "
				"(127.0.0.0/8, ::1, localhost) may be load-tested\n", host);
			exit(2);
		}
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		bool v4loop = IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && a6->sin6_addr.s6_addr[12] == 127;

		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) && !v4loop) {
			fprintf(stderr, "sb-loadgen: refusing target %s: only loopback addresses "
				"(127.0.0.0/8, ::1, localhost) may be load-tested\n", host);
			exit(2);
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*a6);
	} else {
		fprintf(stderr, "sb-loadgen: refusing target '%s': give a loopback address "
			"(127.0.0.0/8, ::1) or localhost; names are not resolved\n", host);
		exit(2);
	}
	snprintf(opt.host_hdr, sizeof(opt.host_hdr), "%s:%u", host, port);
}

/*
 * --ports P1,P2,...: the target's host on each of these ports, which replace
 * the one of --url or --port.
 */
static void lg_parse_ports(const char *list)
{
	char host[300], num[8];
	const char *p = list, *colon;
	size_t hl;

	/* the host as the Host header spelled it: everything before the last ':' */
	colon = strrchr(opt.host_hdr, ':');
	hl = colon ? (size_t)(colon - opt.host_hdr) : strlen(opt.host_hdr);
	memcpy(host, opt.host_hdr, hl);
	host[hl] = '\0';
	while (*p) {
		size_t n = strcspn(p, ",");
		uint16_t port;

		if (opt.nports == LG_MAX_PORTS)
			lg_die_usage("--ports takes at most %u ports", LG_MAX_PORTS);
		if (n == 0 || n >= sizeof(num))
			lg_die_usage("bad --ports '%s' (expected P1,P2,...)", list);
		memcpy(num, p, n);
		num[n] = '\0';
		port = (uint16_t)lg_parse_uint("ports", num, 1, 65535);
		opt.port_addr[opt.nports] = opt.addr;
		if (opt.addr.ss_family == AF_INET)
			((struct sockaddr_in *)&opt.port_addr[opt.nports])->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&opt.port_addr[opt.nports])->sin6_port = htons(port);
		snprintf(opt.port_hdr[opt.nports], sizeof(opt.port_hdr[0]), "%s:%u", host,
			 (unsigned)port);
		opt.nports++;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!opt.nports)
		lg_die_usage("--ports needs at least one port");
}

/* ws://HOST[:PORT][/PATH] */
static void lg_parse_url(const char *url)
{
	const char *p = url, *hs, *he, *ps;
	char host[256];
	unsigned port = 80;

	if (strncasecmp(p, "ws://", 5)) {
		if (!strncasecmp(p, "wss://", 6))
			lg_die_usage("wss:// is not supported; use ws:// on loopback");
		lg_die_usage("bad --url '%s' (expected ws://HOST:PORT/PATH)", url);
	}
	hs = p + 5;
	if (*hs == '[') {
		he = strchr(hs, ']');
		if (!he)
			lg_die_usage("bad --url '%s'", url);
		he++;
	} else {
		he = hs + strcspn(hs, ":/");
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host))
		lg_die_usage("bad --url '%s'", url);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	ps = he;
	if (*ps == ':') {
		char num[8];
		size_t nl = strcspn(ps + 1, "/");

		if (nl == 0 || nl >= sizeof(num))
			lg_die_usage("bad port in --url '%s'", url);
		memcpy(num, ps + 1, nl);
		num[nl] = '\0';
		port = lg_parse_uint("url port", num, 1, 65535);
		ps += 1 + nl;
	}
	if (*ps && *ps != '/')
		lg_die_usage("bad --url '%s'", url);
	if (strlen(*ps ? ps : "/") >= sizeof(opt.path) || strpbrk(ps, " \r\n"))
		lg_die_usage("bad path in --url '%s'", url);
	strcpy(opt.path, *ps ? ps : "/");
	lg_set_target(host, port);
}

/* --tokens: one room token per line, line k for room k (<tag>r<k>);
 * each at most LG_TOKEN_MAX bytes of base64url and dots.  Exits on any
 * fault: a run with tokens it cannot send measures nothing. */
static void lg_load_tokens(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, want = (opt.peers + opt.room_size - 1) / opt.room_size;
	ssize_t n;

	if (!f)
		lg_die_usage("--tokens: cannot open %s: %s", path, strerror(errno));
	run.tokens = calloc(want, sizeof(*run.tokens));
	if (!run.tokens)
		lg_die_usage("--tokens: out of memory");
	while (run.ntokens < want && (n = getline(&line, &cap, f)) > 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!n || n > LG_TOKEN_MAX ||
		    strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != (size_t)n)
			lg_die_usage("--tokens: line %zu of %s is not a token", run.ntokens + 1, path);
		run.tokens[run.ntokens] = strdup(line);
		if (!run.tokens[run.ntokens++])
			lg_die_usage("--tokens: out of memory");
	}
	free(line);
	fclose(f);
	if (run.ntokens < want)
		lg_die_usage("--tokens: %s has %zu tokens for %zu rooms", path, run.ntokens, want);
}

static void lg_parse_args(int argc, char **argv)
{
	enum {
		O_URL = 256, O_HOST, O_PORT, O_SCENARIO, O_PEERS, O_ROOM, O_WINDOW, O_RATE,
		O_SIZE, O_DURATION, O_WARMUP, O_THREADS, O_PID, O_SRC, O_JSON, O_CTIMEOUT,
		O_DTIMEOUT, O_CONC, O_VERSION, O_PORTS, O_TAG, O_TOKENS,
	};
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "ports", required_argument, NULL, O_PORTS },
		{ "scenario", required_argument, NULL, O_SCENARIO },
		{ "peers", required_argument, NULL, O_PEERS },
		{ "room-size", required_argument, NULL, O_ROOM },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "rate", required_argument, NULL, O_RATE },
		{ "size", required_argument, NULL, O_SIZE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "server-pid", required_argument, NULL, O_PID },
		{ "source-addrs", required_argument, NULL, O_SRC },
		{ "json-only", no_argument, NULL, O_JSON },
		{ "connect-timeout", required_argument, NULL, O_CTIMEOUT },
		{ "drain-timeout", required_argument, NULL, O_DTIMEOUT },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "tag", required_argument, NULL, O_TAG },
		{ "tokens", required_argument, NULL, O_TOKENS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *host = NULL, *ports = NULL;
	unsigned port = 0;
	bool room_set = false, warmup_set = false;
	int o;

	opt.scenario = LG_RELAY;
	opt.peers = 100;
	opt.window = 1;
	opt.size = 200;
	opt.duration = 10;
	opt.warmup = 1;
	opt.threads = 1;
	opt.source_addrs = 1;
	opt.concurrency = 256;
	opt.connect_timeout = 10;
	opt.drain_timeout = 5;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (o) {
		case O_URL: url = optarg; break;
		case O_HOST: host = optarg; break;
		case O_PORT: port = lg_parse_uint("port", optarg, 1, 65535); break;
		case O_SCENARIO: {
			unsigned i;

			for (i = 0; i < 5; i++)
				if (!strcmp(optarg, lg_scenario_names[i]))
					break;
			if (i == 5)
				lg_die_usage("unknown scenario '%s' (relay, broadcast, connect, churn, idle)", optarg);
			opt.scenario = (enum lg_scenario)i;
			break;
		}
		case O_PEERS: opt.peers = lg_parse_uint("peers", optarg, 1, LG_MAX_PEERS); break;
		case O_ROOM: opt.room_size = lg_parse_uint("room-size", optarg, 1, 100000); room_set = true; break;
		case O_WINDOW: opt.window = lg_parse_uint("window", optarg, 1, LG_MAX_WINDOW); break;
		case O_RATE: opt.rate = lg_parse_num("rate", optarg, 0, 1e9); break;
		case O_SIZE: opt.size = lg_parse_uint("size", optarg, 1, LG_MAX_SIZE); break;
		case O_DURATION: opt.duration = lg_parse_num("duration", optarg, 0.01, 86400); break;
		case O_WARMUP: opt.warmup = lg_parse_num("warmup", optarg, 0, 3600); warmup_set = true; break;
		case O_THREADS: opt.threads = lg_parse_uint("threads", optarg, 1, 256); break;
		case O_PORTS: ports = optarg; break;
		case O_PID:
			if (opt.npids == LG_MAX_PIDS)
				lg_die_usage("at most %u --server-pid", LG_MAX_PIDS);
			opt.server_pids[opt.npids++] = (long)lg_parse_uint("server-pid", optarg, 1, INT32_MAX);
			break;
		case O_SRC: opt.source_addrs = lg_parse_uint("source-addrs", optarg, 1, 254); break;
		case O_JSON: opt.json_only = true; break;
		case O_CTIMEOUT: opt.connect_timeout = lg_parse_num("connect-timeout", optarg, 0.1, 600); break;
		case O_DTIMEOUT: opt.drain_timeout = lg_parse_num("drain-timeout", optarg, 0, 600); break;
		case O_CONC: opt.concurrency = lg_parse_uint("concurrency", optarg, 1, 1000000); break;
		case O_TAG:
			if (!*optarg || strlen(optarg) >= sizeof(opt.tag) ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(optarg))
				lg_die_usage("--tag: 1 to %zu letters, digits, '.', '-' or '_'", sizeof(opt.tag) - 1);
			strcpy(opt.tag, optarg);
			break;
		case O_TOKENS: opt.tokens_path = optarg; break;
		case 'h': lg_usage(stdout); exit(0);
		case O_VERSION: printf("sb-loadgen %s (switchboard protocol 1)\n", LG_VERSION); exit(0);
		case ':': lg_die_usage("option '%s' needs a value", argv[optind - 1]);
		default: lg_die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		lg_die_usage("unexpected argument '%s'", argv[optind]);
	if (url && (host || port))
		lg_die_usage("give either --url or --host/--port");
	if (url) {
		lg_parse_url(url);
		snprintf(opt.url, sizeof(opt.url), "%s", url);
	} else {
		const char *h = host ? host : "127.0.0.1";

		if (!port)
			port = 8080;
		strcpy(opt.path, "/");
		lg_set_target(h, port);
		snprintf(opt.url, sizeof(opt.url), "ws://%s:%u/", h, port);
	}
	if (opt.source_addrs > 1 && opt.addr.ss_family != AF_INET)
		lg_die_usage("--source-addrs needs an IPv4 target");
	if (ports)
		lg_parse_ports(ports);
	if (opt.tokens_path && opt.scenario == LG_CHURN)
		lg_die_usage("--tokens: not with churn (its rooms are named per connection)");
	if (opt.tokens_path && !opt.tag[0])
		lg_die_usage("--tokens needs --tag (the tokens name the rooms)");

	switch (opt.scenario) {
	case LG_RELAY:
		if (room_set && opt.room_size != 2)
			lg_die_usage("relay pairs peers: --room-size is 2");
		opt.room_size = 2;
		break;
	case LG_BROADCAST:
		if (!room_set)
			opt.room_size = 5;
		if (opt.room_size < 2)
			lg_die_usage("broadcast needs --room-size 2 or more");
		break;
	case LG_CONNECT:
		if (!room_set)
			opt.room_size = 1;
		break;
	case LG_CHURN:
		if (room_set && opt.room_size != 1)
			lg_die_usage("churn joins each connection to a room of its own: --room-size is 1");
		opt.room_size = 1;
		break;
	case LG_IDLE:
		if (!room_set)
			opt.room_size = 10;
		break;
	}
	if (lg_messaging()) {
		if (opt.peers % opt.room_size)
			lg_die_usage("--peers (%u) must be a multiple of the room size (%u)",
				     opt.peers, opt.room_size);
		if (opt.size < lg_msg_min_size())
			lg_die_usage("--size must be at least %zu for this scenario", lg_msg_min_size());
	} else if (opt.scenario != LG_CHURN) {
		opt.rate = 0;
	}
	if (opt.scenario == LG_CONNECT || opt.scenario == LG_IDLE) {
		if (warmup_set && opt.warmup > 0)
			fprintf(stderr, "sb-loadgen: --warmup does not apply to %s; ignored\n",
				lg_scenario_names[opt.scenario]);
		opt.warmup = 0;
	}
	if (opt.rate > 0 && opt.rate * opt.duration < 1 && lg_messaging())
		lg_die_usage("--rate %g sends nothing in %g s", opt.rate, opt.duration);
}

/* ------------------------------------------------------------ report */

struct lg_buf {
	char p[32768];
	size_t len;
};

static void lg_bprintf(struct lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void lg_bprintf(struct lg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len >= sizeof(b->p) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, sizeof(b->p) - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
	if (b->len > sizeof(b->p) - 1)
		b->len = sizeof(b->p) - 1;
}

static void lg_bjstr(struct lg_buf *b, const char *s)
{
	lg_bprintf(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			lg_bprintf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			lg_bprintf(b, "\\u%04x", ch);
		else
			lg_bprintf(b, "%c", ch);
	}
	lg_bprintf(b, "\"");
}

/* A number, or null when not applicable. */
static void lg_bnum(struct lg_buf *b, const char *key, bool have, double v, int prec)
{
	if (have)
		lg_bprintf(b, ",\"%s\":%.*f", key, prec, v);
	else
		lg_bprintf(b, ",\"%s\":null", key);
}

/* ------------------------------------------------------------ main */

static void lg_on_signal(int sig)
{
	(void)sig;
	atomic_store(&run.stop, 1);
}

static void lg_on_alarm(int sig)
{
	static const char msg[] = "sb-loadgen: hard deadline passed; exiting\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Sleeps until `when`; false if the run was stopped or failed meanwhile. */
/*
 * Sleeps until when (or a stop).  With late not NULL the sleeps are of at
 * most 2 ms and *late keeps the largest lateness of a wake-up: a thread
 * that does nothing else wakes late by tens of milliseconds only when the
 * whole machine stalled (the host took its CPUs away), which spoils any
 * latency measured meanwhile (machine_stall_ms in the output).
 */
static bool lg_sleep_until(uint64_t when, uint64_t *late)
{
	uint64_t cap = late ? 2 * LG_MS : 20 * LG_MS;

	for (;;) {
		uint64_t now = lg_now(), d, woke;
		struct timespec ts;

		if (now >= when)
			return true;
		if (atomic_load(&run.stop) || atomic_load(&run.failed))
			return false;
		d = when - now;
		if (d > cap)
			d = cap;
		ts.tv_sec = (time_t)(d / LG_NS);
		ts.tv_nsec = (long)(d % LG_NS);
		nanosleep(&ts, NULL);
		woke = lg_now();
		if (late && woke - now > d && woke - now - d > *late)
			*late = woke - now - d;
	}
}

static void lg_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)opt.peers + 64 + opt.threads * 2;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		struct rlimit more = { need, need };

		/* only a privileged process may raise the hard limit */
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			rl = more;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		fprintf(stderr, "sb-loadgen: %u connections need about %llu descriptors; the limit is %llu "
			"(raise it with ulimit -n)\n", opt.peers, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur);
		exit(2);
	}
}

/* What the main thread saw of a run; the reports read it. */
struct lg_result {
	struct lg_thread *th;
	unsigned started;		/* threads running (all of opt.threads, normally) */
	bool setup_ok, interrupted, ok;
	uint64_t stall_ns;		/* the main thread's latest wake-up in
					 * the measured interval (lg_sleep_until) */
	const char *fail_reason;
	struct lg_proc srv_pre;		/* before the first connection */
	struct lg_proc srv_a, srv_b;	/* the measured interval */
	double cpu_a, cpu_b;		/* our own CPU time, the same interval */
	uint64_t t_a, t_b;
	/* lg_merge() */
	struct lg_stats tot;
	struct lg_hist hist, lag;
	double wall;			/* seconds the counters cover */
};

static void lg_sample(struct lg_result *r, bool end)
{
	if (end) {
		r->t_b = lg_now();
		r->srv_b = lg_proc_sample();
		r->cpu_b = lg_self_cpu();
	} else {
		r->t_a = lg_now();
		r->srv_a = lg_proc_sample();
		r->cpu_a = lg_self_cpu();
	}
}

/*
 * Runs the workers through setup, the measured interval and their shutdown,
 * sampling the server and ourselves at the edges.  Returns after every
 * worker has been joined.
 */
static void lg_drive(struct lg_result *r)
{
	r->srv_pre = lg_proc_sample();
	lg_sample(r, false);
	r->srv_a = r->srv_pre;
	run.t_spawn = r->t_a;
	for (unsigned i = 0; i < opt.threads; i++) {
		if (pthread_create(&r->th[i].tid, NULL, lg_thread_main, &r->th[i])) {
			r->fail_reason = "cannot start a thread";
			atomic_store(&run.failed, 1);
			break;
		}
		r->started++;
	}

	/* setup: every connection joined and its room complete */
	for (;;) {
		struct timespec ts = { 0, 500000 };

		if (atomic_load(&run.failed)) {
			if (!r->fail_reason)
				r->fail_reason = "setup failed";
			break;
		}
		if ((unsigned)atomic_load(&run.ready) == opt.threads) {
			r->setup_ok = true;
			break;
		}
		if (atomic_load(&run.stop)) {
			r->fail_reason = "interrupted";
			r->interrupted = true;
			break;
		}
		if (lg_now() + LG_ABORT_MARGIN_NS >= run.deadline) {
			r->fail_reason = "setup did not finish before the deadline";
			atomic_store(&run.failed, 1);
			break;
		}
		nanosleep(&ts, NULL);
	}

	if (!r->setup_ok) {
		lg_sample(r, true);
	} else if (opt.scenario == LG_CONNECT) {
		/* the measured interval was the setup; `go` tells the workers to close */
		lg_sample(r, true);
		run.meas_start = r->t_a;
		run.meas_end = r->t_b;
		atomic_store_explicit(&run.go, r->t_b, memory_order_release);
	} else {
		uint64_t go = lg_now();

		run.meas_start = go + (uint64_t)(opt.warmup * (double)LG_NS);
		run.meas_end = run.meas_start + (uint64_t)(opt.duration * (double)LG_NS);
		atomic_store_explicit(&run.go, go, memory_order_release);
		if (lg_sleep_until(run.meas_start, NULL)) {
			lg_sample(r, false);
			if (!lg_sleep_until(run.meas_end, &r->stall_ns))
				r->fail_reason = atomic_load(&run.stop) ? "interrupted" : "run failed";
		} else {
			r->fail_reason = atomic_load(&run.stop) ? "interrupted" : "run failed";
		}
		r->interrupted = atomic_load(&run.stop) != 0;
		lg_sample(r, true);
	}

	for (unsigned i = 0; i < r->started; i++)
		pthread_join(r->th[i].tid, NULL);
}

/* Adds the workers' figures up and decides whether the run was clean. */
static void lg_merge(struct lg_result *r)
{
	struct lg_stats *tot = &r->tot;

	for (unsigned i = 0; i < opt.threads; i++) {
		const struct lg_stats *s = &r->th[i].st;

		tot->sent += s->sent;
		tot->delivered += s->delivered;
		tot->joins += s->joins;
		tot->sent_all += s->sent_all;
		tot->delivered_all += s->delivered_all;
		tot->joins_all += s->joins_all;
		tot->errors += s->errors;
		tot->violations += s->violations;
		tot->lost += s->lost;
		tot->failures += s->failures;
		tot->server_closes += s->server_closes;
		tot->pings += s->pings;
		tot->unsent += s->unsent;
		tot->nnotes_total += s->nnotes_total;
		if (s->last_ready_ns > tot->last_ready_ns)
			tot->last_ready_ns = s->last_ready_ns;
		if (s->max_gap_ns > tot->max_gap_ns)
			tot->max_gap_ns = s->max_gap_ns;
		lg_hist_merge(&r->hist, &r->th[i].hist);
		lg_hist_merge(&r->lag, &r->th[i].lag);
	}

	/* the interval the counters cover */
	if (!r->setup_ok)
		r->wall = (double)lg_since(r->t_b, run.t_spawn) / 1e9;
	else if (opt.scenario == LG_CONNECT)
		r->wall = (double)lg_since(tot->last_ready_ns, run.t_spawn) / 1e9;
	else if (r->t_b < run.meas_end)	/* interrupted */
		r->wall = (double)lg_since(r->t_b, run.meas_start) / 1e9;
	else
		r->wall = opt.duration;
	if (r->wall <= 0)
		r->wall = 1e-9;

	r->ok = r->setup_ok && !r->fail_reason && !r->interrupted && tot->errors == 0 &&
		tot->violations == 0 && tot->lost == 0 &&
		(opt.scenario == LG_CHURN || tot->failures == 0);
	if (r->ok && lg_messaging() && tot->delivered == 0) {
		r->ok = false;
		r->fail_reason = "nothing was delivered in the measured interval";
	}
	if (r->ok && opt.scenario == LG_CHURN && tot->joins == 0) {
		r->ok = false;
		r->fail_reason = "no connection was replaced in the measured interval";
	}
}

static double lg_util(const struct lg_result *r)
{
	double wall = (double)lg_since(r->t_b, r->t_a) / 1e9;

	return wall > 0 ? (r->cpu_b - r->cpu_a) / ((double)opt.threads * wall) : 0;
}

/* The one JSON line on standard output. */
static void lg_report_json(const struct lg_result *r, struct lg_buf *out)
{
	const struct lg_stats *tot = &r->tot;
	const struct lg_hist *h = &r->hist;
	bool srv = r->srv_a.ok && r->srv_b.ok && r->setup_ok;
	double scpu = srv ? r->srv_b.cpu_s - r->srv_a.cpu_s : 0, util = lg_util(r);
	bool is_msg = lg_messaging() && r->setup_ok;
	bool is_join = (opt.scenario == LG_CONNECT || opt.scenario == LG_CHURN) && r->setup_ok;
	/* relay: a message is its one delivery; broadcast: a message sent */
	uint64_t msgs = opt.scenario == LG_RELAY ? tot->delivered : tot->sent;
	bool first = true;

	lg_bprintf(out, "{\"scenario\":\"%s\",\"target\":", lg_scenario_names[opt.scenario]);
	lg_bjstr(out, opt.url);
	lg_bprintf(out, ",\"params\":{\"peers\":%u,\"room_size\":%u,\"window\":%u", opt.peers,
		   opt.room_size, opt.window);
	lg_bnum(out, "rate", opt.rate > 0, opt.rate, 1);
	lg_bprintf(out, ",\"size\":%u,\"threads\":%u,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
		   "\"concurrency\":%u,\"source_addrs\":%u,\"mode\":\"%s\"}",
		   opt.size, opt.threads, opt.warmup, opt.duration, opt.concurrency,
		   opt.source_addrs, opt.rate > 0 ? "open" : "closed");
	if (opt.nports) {
		/* the servers the rooms were spread over */
		out->len--;	/* reopen params */
		for (unsigned i = 0; i < opt.nports; i++)
			lg_bprintf(out, "%s%u", i ? "," : ",\"ports\":[",
				   ntohs(((const struct sockaddr_in *)&opt.port_addr[i])->sin_port));
		lg_bprintf(out, "]}");
	}
	lg_bprintf(out, ",\"duration_s\":%.3f,\"connections\":%u", r->wall, opt.peers);
	lg_bprintf(out, ",\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64, tot->sent, tot->delivered);
	lg_bnum(out, "msgs_per_s", is_msg, (double)msgs / r->wall, 1);
	lg_bnum(out, "deliveries_per_s", is_msg, (double)tot->delivered / r->wall, 1);
	lg_bprintf(out, ",\"joins\":%" PRIu64, tot->joins);
	lg_bnum(out, "joins_per_s", is_join, (double)tot->joins / r->wall, 1);
	if (h->count)
		lg_bprintf(out, ",\"latency_us\":{\"count\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,"
			   "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
			   h->count, (double)lg_hist_pct(h, 0.5) / 1e3,
			   (double)lg_hist_pct(h, 0.9) / 1e3, (double)lg_hist_pct(h, 0.99) / 1e3,
			   (double)lg_hist_pct(h, 0.999) / 1e3, (double)h->max / 1e3,
			   (double)h->sum / (double)h->count / 1e3);
	else
		lg_bprintf(out, ",\"latency_us\":null");
	lg_bprintf(out, ",\"errors\":%" PRIu64 ",\"violations\":%" PRIu64 ",\"lost\":%" PRIu64
		   ",\"conn_failures\":%" PRIu64 ",\"server_closes\":%" PRIu64
		   ",\"pings\":%" PRIu64 ",\"unsent\":%" PRIu64,
		   tot->errors, tot->violations, tot->lost, tot->failures, tot->server_closes,
		   tot->pings, tot->unsent);
	if (r->lag.count)
		lg_bprintf(out, ",\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
			   (double)lg_hist_pct(&r->lag, 0.5) / 1e3,
			   (double)lg_hist_pct(&r->lag, 0.99) / 1e3, (double)r->lag.max / 1e3);
	else
		lg_bprintf(out, ",\"send_lag_us\":null");
	lg_bnum(out, "max_delivery_gap_ms", is_msg, (double)tot->max_gap_ns / 1e6, 1);
	lg_bnum(out, "machine_stall_ms", opt.scenario != LG_CONNECT,
		(double)r->stall_ns / 1e6, 1);
	lg_bprintf(out, ",\"loadgen_cpu_s\":%.3f,\"loadgen_cpu_util\":%.3f,"
		   "\"loadgen_saturated\":%s", r->cpu_b - r->cpu_a, util,
		   util > 0.9 ? "true" : "false");
	lg_bnum(out, "server_cpu_s", srv, scpu, 3);
	if (opt.npids > 1) {
		/* in the order of the --server-pid options */
		lg_bprintf(out, ",\"server_cpu_s_each\":");
		if (srv) {
			for (unsigned i = 0; i < opt.npids; i++)
				lg_bprintf(out, "%s%.3f", i ? "," : "[", r->srv_b.each[i] - r->srv_a.each[i]);
			lg_bprintf(out, "]");
		} else {
			lg_bprintf(out, "null");
		}
	}
	lg_bnum(out, "server_cpu_us_per_msg", srv && is_msg && msgs,
		scpu * 1e6 / (double)(msgs ? msgs : 1), 2);
	lg_bnum(out, "server_cpu_us_per_delivery", srv && is_msg && tot->delivered,
		scpu * 1e6 / (double)(tot->delivered ? tot->delivered : 1), 2);
	lg_bnum(out, "server_cpu_us_per_join", srv && is_join && tot->joins,
		scpu * 1e6 / (double)(tot->joins ? tot->joins : 1), 2);
	lg_bnum(out, "server_rss_kb_start", r->srv_pre.ok && r->srv_pre.rss_kb >= 0,
		(double)r->srv_pre.rss_kb, 0);
	lg_bnum(out, "server_rss_kb_end", r->srv_b.ok && r->srv_b.rss_kb >= 0,
		(double)r->srv_b.rss_kb, 0);
	lg_bnum(out, "rss_per_conn_kb",
		opt.scenario == LG_IDLE && srv && r->srv_pre.rss_kb >= 0 && r->srv_b.rss_kb >= 0,
		(double)(r->srv_b.rss_kb - r->srv_pre.rss_kb) / opt.peers, 2);
	lg_bprintf(out, ",\"notes\":[");
	if (r->fail_reason) {
		lg_bjstr(out, r->fail_reason);
		first = false;
	}
	for (unsigned i = 0; i < opt.threads; i++)
		for (unsigned j = 0; j < r->th[i].st.nnotes; j++) {
			if (!first)
				lg_bprintf(out, ",");
			lg_bjstr(out, r->th[i].st.notes[j]);
			first = false;
		}
	lg_bprintf(out, "],\"ok\":%s}\n", r->ok ? "true" : "false");
	fwrite(out->p, 1, out->len, stdout);
	fflush(stdout);
}

/* The summary for people, on standard error. */
static void lg_report_text(const struct lg_result *r)
{
	const struct lg_stats *tot = &r->tot;
	const struct lg_hist *h = &r->hist;
	double util = lg_util(r);

	fprintf(stderr, "sb-loadgen: %s against %s: %u connections, %u thread(s), %.3f s measured\n",
		lg_scenario_names[opt.scenario], opt.url, opt.peers, opt.threads, r->wall);
	if (lg_messaging())
		fprintf(stderr, "  %s loop: %" PRIu64 " messages sent, %" PRIu64 " deliveries "
			"(%.0f msg/s, %.0f deliveries/s)\n", opt.rate > 0 ? "open" : "closed",
			tot->sent, tot->delivered, (double)tot->sent / r->wall,
			(double)tot->delivered / r->wall);
	if (opt.scenario == LG_CONNECT || opt.scenario == LG_CHURN)
		fprintf(stderr, "  %" PRIu64 " joins (%.0f joins/s), %" PRIu64 " connection failures\n",
			tot->joins, (double)tot->joins / r->wall, tot->failures);
	if (h->count)
		fprintf(stderr, "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
			(double)lg_hist_pct(h, 0.5) / 1e3, (double)lg_hist_pct(h, 0.9) / 1e3,
			(double)lg_hist_pct(h, 0.99) / 1e3, (double)lg_hist_pct(h, 0.999) / 1e3,
			(double)h->max / 1e3);
	if (r->lag.count)
		fprintf(stderr, "  open loop send lag us (our own lateness, included above): "
			"p50 %.1f  p99 %.1f  max %.1f\n", (double)lg_hist_pct(&r->lag, 0.5) / 1e3,
			(double)lg_hist_pct(&r->lag, 0.99) / 1e3, (double)r->lag.max / 1e3);
	fprintf(stderr, "  loadgen cpu %.2f s (%.0f%% of %u thread(s))%s", r->cpu_b - r->cpu_a,
		util * 100, opt.threads,
		util > 0.9 ? "  SATURATED: the figures measure the load generator" : "");
	if (r->srv_a.ok && r->srv_b.ok && r->setup_ok)
		fprintf(stderr, "; server cpu %.2f s, rss %ld -> %ld kB\n",
			r->srv_b.cpu_s - r->srv_a.cpu_s, r->srv_pre.rss_kb, r->srv_b.rss_kb);
	else
		fprintf(stderr, "\n");
	if (opt.scenario == LG_IDLE && r->srv_b.ok && r->setup_ok)
		fprintf(stderr, "  server rss per connection: %.2f kB; %" PRIu64 " pings answered\n",
			(double)(r->srv_b.rss_kb - r->srv_pre.rss_kb) / opt.peers, tot->pings);
	fprintf(stderr, "  errors %" PRIu64 ", violations %" PRIu64 ", lost %" PRIu64
		", connection failures %" PRIu64 "\n", tot->errors, tot->violations, tot->lost,
		tot->failures);
	if (r->fail_reason)
		fprintf(stderr, "  %s\n", r->fail_reason);
	for (unsigned i = 0; i < opt.threads; i++)
		for (unsigned j = 0; j < r->th[i].st.nnotes; j++)
			fprintf(stderr, "  %s\n", r->th[i].st.notes[j]);
	if (tot->nnotes_total > 0)
		fprintf(stderr, "  (%u remark(s) in all)\n", tot->nnotes_total);
	fprintf(stderr, "  %s\n", r->ok ? "clean run" : "NOT CLEAN");
}

int main(int argc, char **argv)
{
	struct lg_result *r;
	struct lg_buf *out;
	struct sigaction sa;
	uint64_t rooms;
	char probe[32];
	bool ok;

	lg_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", probe);
	if (strcmp(probe, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
		abort();	/* the SHA-1 self-check (RFC 6455's example) */

	lg_parse_args(argc, argv);
	lg_raise_nofile();
	/*
	 * The kernel's ephemeral port search in connect() slows down as one
	 * source address fills its range (measured: ~5000 joins/s and a 0.5 s
	 * tail at 15,000 connections, twice the rate and no tail over 8 source
	 * addresses), and that time is billed to us.
	 */
	if (opt.addr.ss_family == AF_INET && opt.peers > LG_PEERS_PER_SOURCE * opt.source_addrs)
		fprintf(stderr, "sb-loadgen: %u connections from %u source address(es): connect() "
			"gets slow past ~%u per address and the port range ends near 28,000; "
			"consider --source-addrs %u\n", opt.peers, opt.source_addrs,
			LG_PEERS_PER_SOURCE,
			(opt.peers + LG_PEERS_PER_SOURCE - 1) / LG_PEERS_PER_SOURCE);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = lg_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = lg_on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	if (opt.tag[0])
		snprintf(run.tag, sizeof(run.tag), "%s", opt.tag);
	else
		snprintf(run.tag, sizeof(run.tag), "lg%ld.%u-", (long)getpid(),
			 (unsigned)(lg_now() / LG_MS % 100000));
	if (opt.tokens_path)
		lg_load_tokens(opt.tokens_path);
	run.deadline = lg_now() + (uint64_t)((opt.warmup + opt.duration + 30) * (double)LG_NS);
	alarm((unsigned)(opt.warmup + opt.duration + 30) + 6);

	/* whole rooms per thread */
	rooms = (opt.peers + opt.room_size - 1) / opt.room_size;
	if (opt.threads > rooms)
		opt.threads = (unsigned)rooms;
	r = calloc(1, sizeof(*r));
	out = calloc(1, sizeof(*out));
	if (r)
		r->th = calloc(opt.threads, sizeof(*r->th));
	if (!r || !out || !r->th) {
		fprintf(stderr, "sb-loadgen: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < opt.threads; i++) {
		uint64_t p0 = rooms * i / opt.threads * opt.room_size;
		uint64_t p1 = rooms * (i + 1) / opt.threads * opt.room_size;
		int err;

		if (p1 > opt.peers)
			p1 = opt.peers;
		err = lg_thread_init(&r->th[i], i, (uint32_t)p0, (uint32_t)(p1 - p0));
		if (err) {
			char eb[128];

			fprintf(stderr, "sb-loadgen: cannot set up thread %u: %s\n", i,
				lg_errstr(-err, eb, sizeof(eb)));
			return 1;
		}
	}
	if (opt.npids && !lg_proc_sample().ok)
		fprintf(stderr, "sb-loadgen: cannot read /proc/PID/stat of every --server-pid; "
			"server figures will be null\n");

	lg_drive(r);
	lg_merge(r);
	lg_report_json(r, out);
	if (!opt.json_only)
		lg_report_text(r);

	ok = r->ok;
	for (unsigned i = 0; i < opt.threads; i++)
		lg_thread_release(&r->th[i]);
	free(r->th);
	free(r);
	free(out);
	return ok ? 0 : 1;
}
