/*
 * The edge: each verdict and the order in which they are decided (Origin,
 * then the drain, then the caps), the Origin allow-list, the global and
 * per-address caps (IPv6 counted per /64) with their release, an upgrade
 * on a connection already admitted, the client behind trusted proxies, and
 * several threads admitting and releasing at once.
 */
#include "check.h"

#include "sb_config.h"
#include "sb_edge.h"
#include "sb_netaddr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static struct sb_addr addr(const char *s)
{
	struct sb_addr a;

	memset(&a, 0, sizeof(a));
	CHECK(sb_addr_parse(&a, s, strlen(s)));
	return a;
}

static void check_addr(const struct sb_addr *a, const char *want)
{
	char buf[SB_ADDR_STRLEN];

	sb_addr_format(a, buf, sizeof(buf));
	CHECK_EQ_STR(buf, want);
}

static void config(struct sb_config *cfg)
{
	sb_config_defaults(cfg);
	CHECK_EQ_INT(cfg->norigins, 0);
	CHECK_EQ_INT(cfg->ntrusted, 0);
	CHECK_EQ_INT(cfg->max_connections, 0);
	CHECK_EQ_INT(cfg->max_connections_per_ip, 0);
}

static void add_origin(struct sb_config *cfg, const char *origin)
{
	CHECK(cfg->norigins < SB_ORIGINS_MAX);
	snprintf(cfg->origins[cfg->norigins++], SB_ORIGIN_MAX, "%s", origin);
}

static void add_trusted(struct sb_config *cfg, const char *cidr)
{
	CHECK(cfg->ntrusted < SB_TRUSTED_MAX);
	CHECK(sb_cidr_parse(&cfg->trusted[cfg->ntrusted++], cidr));
}

/* An upgrade from peer with these headers (NULL origin: none). */
static struct sb_upgrade upgrade(const char *peer, const char *origin,
				 const char *xff, const char *real_ip)
{
	struct sb_upgrade u;

	memset(&u, 0, sizeof(u));
	u.peer = addr(peer);
	u.origin = origin;
	u.xff = xff ? xff : "";
	u.real_ip = real_ip ? real_ip : "";
	return u;
}

/* The verdict for an upgrade from peer on a new connection; on OK the
 * admission is kept in *adm. */
static enum sb_edge_verdict try_from(struct sb_edge *e, const char *peer,
				     const char *origin, bool draining,
				     struct sb_admission *adm)
{
	struct sb_upgrade u = upgrade(peer, origin, NULL, NULL);
	struct sb_addr client = { .family = 99 };
	enum sb_edge_verdict v;

	memset(adm, 0, sizeof(*adm));
	v = sb_edge_upgrade(e, &u, draining, &client, adm);
	/* the client is named whatever the verdict: a refusal is logged
	 * with it */
	CHECK(sb_addr_equal(&client, &u.peer));
	if (v == SB_EDGE_OK) {
		CHECK(adm->admitted);
	} else {
		/* a refusal leaves the admission as it was */
		CHECK(!adm->admitted);
		CHECK(adm->key == NULL);
	}
	return v;
}

static void test_no_limits(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission adm[3];

	config(&cfg);
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK(!sb_edge_reads_forwarded(e));
	/* any Origin, or none */
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &adm[0]), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", "https://any.example", false, &adm[1]), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "2001:db8::1", "null", false, &adm[2]), SB_EDGE_OK);
	CHECK_EQ_INT(sb_edge_admitted(e), 3);
	CHECK(adm[0].key == NULL);	/* nothing counted per address */
	for (int i = 0; i < 3; i++)
		sb_edge_release(e, &adm[i]);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	/* the drain refuses all the same */
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, true, &adm[0]), SB_EDGE_DRAINING);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

static void test_origin(void)
{
	static const char *const refused[] = {
		"https://example.org.evil.example", "https://example.or",
		"https://example.org/", "http://example.org", "example.org",
		"https://sub.example.org", "", "null", " https://example.org",
		"http://localhost:8081", "http://localhost",
	};
	static const char *const allowed[] = {
		"https://example.org", "HTTPS://EXAMPLE.ORG", "https://Example.Org",
		"http://localhost:8080", "HTTP://LOCALHOST:8080",
	};
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission adm;

	config(&cfg);
	add_origin(&cfg, "https://example.org");
	add_origin(&cfg, "http://localhost:8080");
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (try_from(e, "192.0.2.1", refused[i], false, &adm) != SB_EDGE_ORIGIN) {
			fprintf(stderr, "let in: '%s'\n", refused[i]);
			CHECK(!"refused");
		}
	}
	/* no Origin at all, when a list is set */
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &adm), SB_EDGE_ORIGIN);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (try_from(e, "192.0.2.1", allowed[i], false, &adm) != SB_EDGE_OK) {
			fprintf(stderr, "refused: '%s'\n", allowed[i]);
			CHECK(!"let in");
		}
		sb_edge_release(e, &adm);
	}
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

/* Origin, then the drain, then the caps: each refusal is the first that
 * applies. */
static void test_order(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission full, adm;

	config(&cfg);
	add_origin(&cfg, "https://example.org");
	cfg.max_connections = 1;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", "https://example.org", false, &full), SB_EDGE_OK);

	/* full, draining and a wrong Origin: 403 */
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://evil.example", true, &adm), SB_EDGE_ORIGIN);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", NULL, true, &adm), SB_EDGE_ORIGIN);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://evil.example", false, &adm), SB_EDGE_ORIGIN);
	/* full and draining: the drain */
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://example.org", true, &adm), SB_EDGE_DRAINING);
	/* full */
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://example.org", false, &adm), SB_EDGE_FULL);
	CHECK_EQ_INT(sb_edge_admitted(e), 1);
	/* with room again: draining, then OK */
	sb_edge_release(e, &full);
	CHECK(!full.admitted);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://example.org", true, &adm), SB_EDGE_DRAINING);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", "https://example.org", false, &adm), SB_EDGE_OK);
	sb_edge_release(e, &adm);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

static void test_global_cap(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission adm[4];

	config(&cfg);
	cfg.max_connections = 3;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &adm[0]), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &adm[1]), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "2001:db8::1", NULL, false, &adm[2]), SB_EDGE_OK);
	CHECK_EQ_INT(sb_edge_admitted(e), 3);
	CHECK_EQ_INT(try_from(e, "198.51.100.1", NULL, false, &adm[3]), SB_EDGE_FULL);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &adm[3]), SB_EDGE_FULL);
	CHECK_EQ_INT(sb_edge_admitted(e), 3);
	/* a release gives its place back, once */
	sb_edge_release(e, &adm[1]);
	sb_edge_release(e, &adm[1]);
	CHECK_EQ_INT(sb_edge_admitted(e), 2);
	CHECK_EQ_INT(try_from(e, "198.51.100.1", NULL, false, &adm[3]), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "198.51.100.2", NULL, false, &adm[1]), SB_EDGE_FULL);
	for (int i = 0; i < 4; i++)
		sb_edge_release(e, &adm[i]);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

static void test_per_ip_cap(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission a1, a2, a3, b1, c1;

	config(&cfg);
	cfg.max_connections_per_ip = 2;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a1), SB_EDGE_OK);
	CHECK(a1.key != NULL);
	CHECK_EQ_STR(a1.key, "192.0.2.1");
	CHECK_EQ_INT(try_from(e, "192.0.2.1:5000", NULL, false, &a2), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	/* an IPv4 client of a dual-stack listener is the same address */
	CHECK_EQ_INT(try_from(e, "::ffff:192.0.2.1", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	/* a refusal by address takes no place under the global count */
	CHECK_EQ_INT(sb_edge_admitted(e), 2);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", NULL, false, &b1), SB_EDGE_OK);
	CHECK_EQ_INT(sb_edge_admitted(e), 3);

	/* a release gives the address its place back */
	sb_edge_release(e, &a1);
	CHECK(a1.key == NULL);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a3), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a1), SB_EDGE_FULL_ADDR);
	/* an address released to zero starts again from zero */
	sb_edge_release(e, &a2);
	sb_edge_release(e, &a3);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a1), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a2), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	sb_edge_release(e, &a1);
	sb_edge_release(e, &a2);
	sb_edge_release(e, &b1);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);

	/* with a global cap too: whichever is reached first refuses */
	cfg.max_connections = 3;
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a1), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a2), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	CHECK_EQ_INT(try_from(e, "192.0.2.2", NULL, false, &b1), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "192.0.2.3", NULL, false, &c1), SB_EDGE_FULL);
	CHECK_EQ_INT(sb_edge_admitted(e), 3);
	sb_edge_release(e, &a1);
	sb_edge_release(e, &a2);
	sb_edge_release(e, &b1);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

/* --max-connections-per-ip counts an IPv6 client by its /64. */
static void test_ipv6_per_64(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission a1, a2, a3, b1, b2, u1, u2;

	config(&cfg);
	cfg.max_connections_per_ip = 2;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK_EQ_INT(try_from(e, "2001:db8:1:2::1", NULL, false, &a1), SB_EDGE_OK);
	CHECK_EQ_STR(a1.key, "2001:db8:1:2::/64");
	CHECK_EQ_INT(try_from(e, "[2001:db8:1:2:ffff:ffff:ffff:fffe]:443", NULL, false, &a2), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "2001:db8:1:2::3", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	/* the next /64 is another subscriber */
	CHECK_EQ_INT(try_from(e, "2001:db8:1:3::1", NULL, false, &b1), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "2001:db8:1:3::2", NULL, false, &b2), SB_EDGE_OK);
	CHECK_EQ_INT(try_from(e, "2001:db8:1:3::3", NULL, false, &a3), SB_EDGE_FULL_ADDR);
	sb_edge_release(e, &a2);
	CHECK_EQ_INT(try_from(e, "2001:db8:1:2::3", NULL, false, &a3), SB_EDGE_OK);
	sb_edge_release(e, &a1);
	sb_edge_release(e, &a3);
	sb_edge_release(e, &b1);
	sb_edge_release(e, &b2);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);

	/* a peer of unknown family counts as one unknown address */
	{
		struct sb_upgrade u;
		struct sb_addr client;

		memset(&u, 0, sizeof(u));
		u.xff = u.real_ip = "";
		memset(&u1, 0, sizeof(u1));
		memset(&u2, 0, sizeof(u2));
		CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &u1), SB_EDGE_OK);
		CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &u2), SB_EDGE_OK);
		memset(&a1, 0, sizeof(a1));
		CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &a1), SB_EDGE_FULL_ADDR);
		sb_edge_release(e, &u1);
		sb_edge_release(e, &u2);
	}
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

/* A second upgrade request on a connection already admitted (HTTP/1.1
 * keep-alive) keeps its one place: it neither counts twice nor is refused
 * by a cap that its own place fills. */
static void test_second_upgrade(void)
{
	struct sb_config cfg;
	struct sb_edge *e;
	struct sb_admission adm, other;
	struct sb_upgrade u = upgrade("192.0.2.1", "https://example.org", NULL, NULL);
	struct sb_addr client;
	char *key;

	config(&cfg);
	add_origin(&cfg, "https://example.org");
	cfg.max_connections = 1;
	cfg.max_connections_per_ip = 1;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	memset(&adm, 0, sizeof(adm));
	CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &adm), SB_EDGE_OK);
	key = adm.key;
	CHECK(key != NULL);
	CHECK_EQ_INT(sb_edge_admitted(e), 1);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &adm), SB_EDGE_OK);
		CHECK(adm.admitted);
		CHECK(adm.key == key);
		CHECK_EQ_INT(sb_edge_admitted(e), 1);
	}
	/* its refusals leave its place alone */
	u.origin = "https://evil.example";
	CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &adm), SB_EDGE_ORIGIN);
	u.origin = "https://example.org";
	CHECK_EQ_INT(sb_edge_upgrade(e, &u, true, &client, &adm), SB_EDGE_DRAINING);
	CHECK(adm.admitted);
	CHECK_EQ_INT(sb_edge_admitted(e), 1);
	CHECK_EQ_INT(try_from(e, "192.0.2.9", "https://example.org", false, &other), SB_EDGE_FULL);
	/* one release gives it back */
	sb_edge_release(e, &adm);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_release(e, &adm);
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	CHECK_EQ_INT(try_from(e, "192.0.2.1", "https://example.org", false, &other), SB_EDGE_OK);
	sb_edge_release(e, &other);
	sb_edge_free(e);
}

/* The client an upgrade from peer with these headers is admitted as. */
static void check_client(struct sb_edge *e, const char *peer, const char *xff,
			 const char *real_ip, const char *want)
{
	struct sb_upgrade u = upgrade(peer, NULL, xff, real_ip);
	struct sb_addr client;
	struct sb_admission adm;
	char buf[SB_ADDR_STRLEN];

	memset(&adm, 0, sizeof(adm));
	CHECK_EQ_INT(sb_edge_upgrade(e, &u, false, &client, &adm), SB_EDGE_OK);
	sb_addr_format(&client, buf, sizeof(buf));
	if (strcmp(buf, want))
		fprintf(stderr, "  peer %s, X-Forwarded-For '%s', X-Real-IP '%s'\n",
			peer, xff ? xff : "", real_ip ? real_ip : "");
	check_addr(&client, want);
	sb_edge_release(e, &adm);
}

static void test_trusted_proxies(void)
{
	struct sb_config cfg;
	struct sb_edge *e;

	/* no proxy trusted: the headers are not even read */
	config(&cfg);
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK(!sb_edge_reads_forwarded(e));
	check_client(e, "10.0.0.1", "203.0.113.5", "203.0.113.6", "10.0.0.1");
	sb_edge_free(e);

	add_trusted(&cfg, "10.0.0.0/8");
	add_trusted(&cfg, "2001:db8:ffff::/48");
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	CHECK(sb_edge_reads_forwarded(e));
	/* a peer that is not trusted is the client */
	check_client(e, "192.0.2.1", "203.0.113.5", "203.0.113.6", "192.0.2.1");
	/* X-Forwarded-For, right to left, past trusted hops */
	check_client(e, "10.0.0.1", "203.0.113.5", NULL, "203.0.113.5");
	check_client(e, "10.0.0.1", "203.0.113.5, 10.0.0.2", NULL, "203.0.113.5");
	check_client(e, "10.0.0.1", "198.51.100.1, 203.0.113.5,10.9.9.9, 10.0.0.2",
		     NULL, "203.0.113.5");
	check_client(e, "2001:db8:ffff::1", "[2001:db8::7]:443, 2001:db8:ffff:1::2",
		     NULL, "2001:db8::7");
	check_client(e, "10.0.0.1", "203.0.113.5:8443", NULL, "203.0.113.5");
	/* every hop trusted: the left-most */
	check_client(e, "10.0.0.1", "10.1.1.1, 10.0.0.2", NULL, "10.1.1.1");
	/* a hop that does not parse ends the walk at the last good one */
	check_client(e, "10.0.0.1", "203.0.113.5, garbage", NULL, "10.0.0.1");
	check_client(e, "10.0.0.1", "203.0.113.9, unknown, 10.0.0.3", NULL, "10.0.0.3");
	check_client(e, "10.0.0.1", "garbage, 203.0.113.5", NULL, "203.0.113.5");
	/* X-Forwarded-For wins over X-Real-IP, which is read without it */
	check_client(e, "10.0.0.1", "203.0.113.5", "203.0.113.6", "203.0.113.5");
	check_client(e, "10.0.0.1", NULL, "203.0.113.6", "203.0.113.6");
	check_client(e, "10.0.0.1", NULL, " [2001:db8::9]:80 ", "2001:db8::9");
	check_client(e, "10.0.0.1", NULL, "not an address", "10.0.0.1");
	check_client(e, "10.0.0.1", NULL, NULL, "10.0.0.1");
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);

	/* the caps count the client, not the proxy */
	cfg.max_connections_per_ip = 1;
	e = sb_edge_new(&cfg);
	CHECK(e != NULL);
	{
		struct sb_upgrade u1 = upgrade("10.0.0.1", NULL, "203.0.113.5", NULL);
		struct sb_upgrade u2 = upgrade("10.0.0.1", NULL, "203.0.113.6", NULL);
		struct sb_upgrade u3 = upgrade("10.0.0.2", NULL, "203.0.113.5", NULL);
		struct sb_admission a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
		struct sb_addr client;

		CHECK_EQ_INT(sb_edge_upgrade(e, &u1, false, &client, &a1), SB_EDGE_OK);
		CHECK_EQ_STR(a1.key, "203.0.113.5");
		CHECK_EQ_INT(sb_edge_upgrade(e, &u2, false, &client, &a2), SB_EDGE_OK);
		CHECK_EQ_INT(sb_edge_upgrade(e, &u3, false, &client, &a3), SB_EDGE_FULL_ADDR);
		CHECK(!a3.admitted);
		/* a refusal names the client behind the proxy too */
		check_addr(&client, "203.0.113.5");
		sb_edge_release(e, &a1);
		CHECK_EQ_INT(sb_edge_upgrade(e, &u3, false, &client, &a3), SB_EDGE_OK);
		check_addr(&client, "203.0.113.5");
		sb_edge_release(e, &a2);
		sb_edge_release(e, &a3);
	}
	CHECK_EQ_INT(sb_edge_admitted(e), 0);
	sb_edge_free(e);
}

/* ---- several threads at once ---- */

enum {
	NTHREADS = 6,
	ROUNDS = 20000,
	HOLD = 8,		/* admissions a thread holds at most */
	NADDRS = 5,
	CAP = 20,		/* < NTHREADS * HOLD: the cap is reached */
	CAP_PER_IP = 6,		/* NADDRS * CAP_PER_IP > CAP: either may be */
};

static struct sb_edge *shared_edge;
static atomic_int held_total;			/* admissions held now */
static atomic_int held_by_addr[NADDRS];
static atomic_ulong oks, fulls;

struct holder {
	pthread_t th;
	uint64_t seed;
};

static void *admit_and_release(void *arg)
{
	struct holder *h = arg;
	struct sb_admission adm[HOLD];
	int addr_of[HOLD];
	struct check_rng rng;
	char peer[32];

	check_rng_init(&rng, h->seed);
	memset(adm, 0, sizeof(adm));
	for (int round = 0; round < ROUNDS; round++) {
		int k = (int)check_rng_below(&rng, HOLD);

		if (adm[k].admitted) {
			/* our counts go down before the edge's */
			atomic_fetch_sub(&held_total, 1);
			atomic_fetch_sub(&held_by_addr[addr_of[k]], 1);
			sb_edge_release(shared_edge, &adm[k]);
			CHECK(!adm[k].admitted);
		} else {
			int a = (int)check_rng_below(&rng, NADDRS);
			struct sb_upgrade u;
			struct sb_addr client;
			enum sb_edge_verdict v;

			snprintf(peer, sizeof(peer), "2001:db8:%d::%d", a,
				 (int)check_rng_below(&rng, 1000) + 1);
			u = upgrade(peer, NULL, NULL, NULL);
			v = sb_edge_upgrade(shared_edge, &u, false, &client, &adm[k]);
			if (v == SB_EDGE_OK) {
				/* and up after: ours never exceed the edge's */
				addr_of[k] = a;
				CHECK(atomic_fetch_add(&held_total, 1) < CAP);
				CHECK(atomic_fetch_add(&held_by_addr[a], 1) < CAP_PER_IP);
				atomic_fetch_add(&oks, 1);
			} else {
				CHECK(v == SB_EDGE_FULL || v == SB_EDGE_FULL_ADDR);
				CHECK(!adm[k].admitted);
				atomic_fetch_add(&fulls, 1);
			}
		}
		CHECK(sb_edge_admitted(shared_edge) <= CAP);
	}
	for (int k = 0; k < HOLD; k++) {
		if (adm[k].admitted) {
			atomic_fetch_sub(&held_total, 1);
			atomic_fetch_sub(&held_by_addr[addr_of[k]], 1);
			sb_edge_release(shared_edge, &adm[k]);
		}
	}
	return NULL;
}

static void test_threads(void)
{
	struct holder h[NTHREADS];
	struct sb_config cfg;
	uint64_t seed = check_seed(20240607);

	config(&cfg);
	cfg.max_connections = CAP;
	cfg.max_connections_per_ip = CAP_PER_IP;
	shared_edge = sb_edge_new(&cfg);
	CHECK(shared_edge != NULL);
	for (int t = 0; t < NTHREADS; t++) {
		h[t].seed = seed * 31 + (uint64_t)t + 1;
		CHECK_EQ_INT(pthread_create(&h[t].th, NULL, admit_and_release, &h[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		CHECK_EQ_INT(pthread_join(h[t].th, NULL), 0);
	printf("%lu admitted, %lu refused\n", atomic_load(&oks), atomic_load(&fulls));
	CHECK(atomic_load(&oks) > 0);
	CHECK(atomic_load(&fulls) > 0);
	CHECK_EQ_INT(atomic_load(&held_total), 0);
	CHECK_EQ_INT(sb_edge_admitted(shared_edge), 0);
	/* and every address has its places back */
	{
		struct sb_admission adm[CAP_PER_IP + 1];

		for (int i = 0; i <= CAP_PER_IP; i++)
			CHECK_EQ_INT(try_from(shared_edge, "2001:db8:0::1", NULL, false, &adm[i]),
				     i < CAP_PER_IP ? SB_EDGE_OK : SB_EDGE_FULL_ADDR);
		for (int i = 0; i < CAP_PER_IP; i++)
			sb_edge_release(shared_edge, &adm[i]);
	}
	sb_edge_free(shared_edge);
}

int main(void)
{
	RUN_TEST(test_no_limits);
	RUN_TEST(test_origin);
	RUN_TEST(test_order);
	RUN_TEST(test_global_cap);
	RUN_TEST(test_per_ip_cap);
	RUN_TEST(test_ipv6_per_64);
	RUN_TEST(test_second_upgrade);
	RUN_TEST(test_trusted_proxies);
	RUN_TEST(test_threads);
	return check_summary();
}
