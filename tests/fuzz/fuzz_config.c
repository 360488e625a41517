/*
 * Fuzz target: the configuration (src/config.c) from the command line and
 * the environment.
 *
 * Input: NUL-separated strings.  Those of the form SWITCHBOARD_NAME=value
 * are the environment, which a fake getter serves to sb_config_env; the
 * others are argv[1...] for sb_config_parse.  Then sb_config_check, as the
 * server does.
 *
 * An error must come with a reason.  A configuration that is accepted must
 * keep every value within its documented bounds, and must be accepted again,
 * unchanged, when written back as a command line.  The environment alone
 * must mean what the same values mean as options (a list variable's
 * comma-separated items as repeated options; SWITCHBOARD_ICE_SERVER's
 * items separated by commas or spaces, empty ones skipped).
 */
#include "fuzz.h"

#include "sb_config.h"
#include "sb_log.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ARGS 64
#define MAX_ENV 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *env_names[MAX_ENV], *env_values[MAX_ENV];
static int nenv;

/* The first definition wins, as with a real environment's getenv. */
static const char *fake_getenv(const char *name)
{
	for (int i = 0; i < nenv; i++)
		if (!strcmp(env_names[i], name))
			return env_values[i];
	return NULL;
}

/* SWITCHBOARD_MAX_MESSAGE -> --max-message, when that is an option that
 * takes a value (the --help text lists them); false otherwise. */
static bool option_of(const char *var, char *opt, size_t optlen)
{
	const char *u = sb_config_usage, *hit;
	size_t n = 2;

	if (strncmp(var, "SWITCHBOARD_", 12) || !var[12])
		return false;
	strcpy(opt, "--");
	for (const char *p = var + 12; *p; p++) {
		if (n + 1 >= optlen || !((*p >= 'A' && *p <= 'Z') || *p == '_'))
			return false;
		opt[n++] = *p == '_' ? '-' : (char)(*p - 'A' + 'a');
	}
	opt[n] = '\0';
	if (!strcmp(opt, "--help") || !strcmp(opt, "--version"))
		return false;
	/* "  -p, --port N" or "      --max-message BYTES": the name is
	 * followed by a space */
	while ((hit = strstr(u, opt))) {
		if (hit[n] == ' ' && hit > sb_config_usage && hit[-1] == ' ')
			return true;
		u = hit + 1;
	}
	return false;
}

/* The environment alone against the same settings given as options. */
static void check_env_as_argv(void)
{
	static char opts[MAX_ENV][64];
	char *argv[2 + 2 * MAX_ENV * 64], *items, msg[256];
	struct sb_config e, a;
	int argc = 1, env_rc, argv_rc;
	size_t total = 0;

	for (int i = 0; i < nenv; i++)
		total += strlen(env_values[i]) + 1;
	items = malloc(total + 1);
	if (!items)
		return;
	argv[0] = "switchboard";
	total = 0;
	for (int i = 0; i < nenv; i++) {
		const char *v = env_values[i];
		bool first = true, list;

		for (int j = 0; j < i; j++)
			first = first && strcmp(env_names[j], env_names[i]);
		if (!first || !*v || !option_of(env_names[i], opts[i], sizeof(opts[i])))
			continue;
		list = !strcmp(opts[i], "--allowed-origin") ||
		       !strcmp(opts[i], "--trusted-proxy");
		if (!strcmp(opts[i], "--ice-server")) {
			while (*v) {
				size_t len = strcspn(v, ", \t");

				if (len) {
					if (argc + 2 >= (int)(sizeof(argv) / sizeof(argv[0])))
						goto out;
					memcpy(items + total, v, len);
					items[total + len] = '\0';
					argv[argc++] = opts[i];
					argv[argc++] = items + total;
					total += len + 1;
				}
				v += len;
				if (*v)
					v++;
			}
			continue;
		}
		/* a list's items, or the whole value */
		for (;;) {
			size_t len = list ? strcspn(v, ",") : strlen(v);

			if (argc + 2 >= (int)(sizeof(argv) / sizeof(argv[0])))
				goto out;
			memcpy(items + total, v, len);
			items[total + len] = '\0';
			argv[argc++] = opts[i];
			argv[argc++] = items + total;
			total += len + 1;
			v += len;
			if (!*v)
				break;
			v++;	/* the comma */
			if (!*v)
				break;	/* "a," is "a" */
		}
	}
	argv[argc] = NULL;

	sb_config_defaults(&e);
	env_rc = sb_config_env(&e, fake_getenv, msg, sizeof(msg));
	sb_config_defaults(&a);
	argv_rc = sb_config_parse(&a, argc, argv, msg, sizeof(msg));
	SB_FUZZ_CHECK((env_rc == 0) == (argv_rc == SB_CONFIG_RUN),
		      "the environment says %d, the same as options %d (%s)",
		      env_rc, argv_rc, msg);
	if (!env_rc)
		SB_FUZZ_CHECK(!memcmp(&e, &a, sizeof(e)),
			      "the environment and the same options differ");
out:
	free(items);
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_bounds(const struct sb_config *c)
{
	SB_FUZZ_CHECK(terminated(c->bind, sizeof(c->bind)) && c->bind[0],
		      "bind");
	SB_FUZZ_CHECK(c->port >= 0 && c->port <= 65535, "port %d", c->port);
	SB_FUZZ_CHECK(c->workers >= 1 && c->workers <= SB_WORKERS_MAX,
		      "workers %d", c->workers);
	SB_FUZZ_CHECK(c->max_message >= 1 && c->max_message <= 64u << 20,
		      "max_message %zu", c->max_message);
	SB_FUZZ_CHECK(c->max_field >= 1 && c->max_field <= 65536,
		      "max_field %zu", c->max_field);
	SB_FUZZ_CHECK(c->max_room_peers <= 10000000, "max_room_peers");
	SB_FUZZ_CHECK(c->max_backlog >= 1024 && c->max_backlog <= 1u << 30,
		      "max_backlog %zu", c->max_backlog);
	SB_FUZZ_CHECK(isfinite(c->heartbeat) && c->heartbeat >= 0 &&
		      c->heartbeat <= 86400, "heartbeat %g", c->heartbeat);
	SB_FUZZ_CHECK(isfinite(c->rate) && c->rate >= 0 && c->rate <= 1e9,
		      "rate %g", c->rate);
	SB_FUZZ_CHECK(isfinite(c->drain_timeout) && c->drain_timeout >= 0 &&
		      c->drain_timeout <= 86400, "drain %g", c->drain_timeout);
	SB_FUZZ_CHECK(c->log_level >= SB_LOG_ERROR && c->log_level <= SB_LOG_DEBUG,
		      "log level %d", c->log_level);
	SB_FUZZ_CHECK(c->log_json == 0 || c->log_json == 1, "log json");
	SB_FUZZ_CHECK(c->max_connections <= 10000000 &&
		      c->max_connections_per_ip <= 10000000, "max connections");
	SB_FUZZ_CHECK(c->norigins >= 0 && c->norigins <= SB_ORIGINS_MAX,
		      "norigins %d", c->norigins);
	for (int i = 0; i < c->norigins; i++)
		SB_FUZZ_CHECK(terminated(c->origins[i], SB_ORIGIN_MAX) &&
			      c->origins[i][0], "origin %d", i);
	SB_FUZZ_CHECK(c->ntrusted >= 0 && c->ntrusted <= SB_TRUSTED_MAX,
		      "ntrusted %d", c->ntrusted);
	for (int i = 0; i < c->ntrusted; i++) {
		const struct sb_cidr *t = &c->trusted[i];

		SB_FUZZ_CHECK((t->net.family == AF_INET && t->prefix <= 32) ||
			      (t->net.family == AF_INET6 && t->prefix <= 128),
			      "trusted %d", i);
	}
	SB_FUZZ_CHECK(c->handshake_timeout >= 1 && c->handshake_timeout <= 3600,
		      "handshake timeout %d", c->handshake_timeout);
	SB_FUZZ_CHECK(terminated(c->tls_cert, SB_PATH_MAX) &&
		      terminated(c->tls_key, SB_PATH_MAX) &&
		      terminated(c->web_root, SB_PATH_MAX) &&
		      terminated(c->auth_public_key, SB_PATH_MAX), "paths");
	SB_FUZZ_CHECK(terminated(c->auth_audience, SB_CLAIM_MAX) &&
		      terminated(c->auth_issuer, SB_CLAIM_MAX), "claims");
	SB_FUZZ_CHECK(c->auth_secret.len <= SB_SECRET_MAX &&
		      c->turn_secret.len <= SB_SECRET_MAX &&
		      !(c->auth_secret.from & ~3u) && !(c->turn_secret.from & ~3u) &&
		      !c->auth_secret.len == !c->auth_secret.from &&
		      !c->turn_secret.len == !c->turn_secret.from, "secrets");
	SB_FUZZ_CHECK(c->ice_count >= 0 && c->ice_count <= SB_ICE_SERVERS_MAX,
		      "ice_count %d", c->ice_count);
	for (int i = 0; i < c->ice_count; i++)
		SB_FUZZ_CHECK(terminated(c->ice_servers[i], SB_ICE_URI_MAX) &&
			      (!strncmp(c->ice_servers[i], "stun", 4) ||
			       !strncmp(c->ice_servers[i], "turn", 4)), "ice %d", i);
	SB_FUZZ_CHECK(c->turn_ttl >= 60 && c->turn_ttl <= 604800, "turn ttl %d",
		      c->turn_ttl);
}

/* The secret s as an option's value, NUL-terminated in buf, or NULL when
 * it has none or holds a NUL (a file's may; no argument can). */
static char *secret_arg(const struct sb_secret *s, char buf[SB_SECRET_MAX + 1])
{
	if (!s->len || memchr(s->bytes, '\0', s->len))
		return NULL;
	memcpy(buf, s->bytes, s->len);
	buf[s->len] = '\0';
	return buf;
}

static bool same_secret(const struct sb_secret *a, const struct sb_secret *b)
{
	return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
}

/* Writes c back as a command line, parses it over the defaults, and wants
 * the same values. */
static void check_round_trip(struct sb_config *c)
{
	static char *const levels[] = { "error", "warn", "info", "debug" };
	static char nums[16][400], cidrs[SB_TRUSTED_MAX][SB_ADDR_STRLEN + 8];
	static char auth[SB_SECRET_MAX + 1], turn[SB_SECRET_MAX + 1];
	char *argv[MAX_ARGS * 2 + 2 * (SB_ORIGINS_MAX + SB_TRUSTED_MAX +
				       SB_ICE_SERVERS_MAX)];
	char *auth_arg = secret_arg(&c->auth_secret, auth);
	char *turn_arg = secret_arg(&c->turn_secret, turn);
	struct sb_config d;
	char msg[256];
	int argc = 0, nn = 0, rc;

#define ARG(s) (argv[argc++] = (s))
#define NUM(opt, fmt, v)                                                      \
	do {                                                                  \
		snprintf(nums[nn], sizeof(nums[nn]), fmt, v);                 \
		ARG(opt);                                                     \
		ARG(nums[nn++]);                                              \
	} while (0)
	ARG("switchboard");
	ARG("--bind");
	ARG(c->bind);
	NUM("--port", "%d", c->port);
	NUM("--workers", "%d", c->workers);
	NUM("--max-message", "%zu", c->max_message);
	NUM("--max-field", "%zu", c->max_field);
	NUM("--max-room-peers", "%u", c->max_room_peers);
	NUM("--max-backlog", "%zu", c->max_backlog);
	/* no exponent: the options take plain decimals only */
	NUM("--heartbeat", "%.340f", c->heartbeat);
	NUM("--rate", "%.340f", c->rate);
	NUM("--drain-timeout", "%.340f", c->drain_timeout);
	ARG("--log-level");
	ARG(levels[c->log_level]);
	ARG("--log-format");
	ARG(c->log_json ? "json" : "text");
	NUM("--max-connections", "%u", c->max_connections);
	NUM("--max-connections-per-ip", "%u", c->max_connections_per_ip);
	NUM("--handshake-timeout", "%d", c->handshake_timeout);
	for (int i = 0; i < c->norigins; i++) {
		ARG("--allowed-origin");
		ARG(c->origins[i]);
	}
	for (int i = 0; i < c->ntrusted; i++) {
		size_t n;

		sb_addr_format(&c->trusted[i].net, cidrs[i], sizeof(cidrs[i]));
		n = strlen(cidrs[i]);
		snprintf(cidrs[i] + n, sizeof(cidrs[i]) - n, "/%u",
			 c->trusted[i].prefix);
		ARG("--trusted-proxy");
		ARG(cidrs[i]);
	}
	/* paths: "" is the default, which no option can give */
	if (c->tls_cert[0]) {
		ARG("--tls-cert");
		ARG(c->tls_cert);
	}
	if (c->tls_key[0]) {
		ARG("--tls-key");
		ARG(c->tls_key);
	}
	if (c->web_root[0]) {
		ARG("--web-root");
		ARG(c->web_root);
	}
	if (auth_arg) {
		ARG("--auth-secret");
		ARG(auth_arg);
	}
	if (c->auth_public_key[0]) {
		ARG("--auth-public-key");
		ARG(c->auth_public_key);
	}
	if (c->auth_audience[0]) {
		ARG("--auth-audience");
		ARG(c->auth_audience);
	}
	if (c->auth_issuer[0]) {
		ARG("--auth-issuer");
		ARG(c->auth_issuer);
	}
	for (int i = 0; i < c->ice_count; i++) {
		ARG("--ice-server");
		ARG(c->ice_servers[i]);
	}
	if (turn_arg) {
		ARG("--turn-secret");
		ARG(turn_arg);
	}
	NUM("--turn-ttl", "%d", c->turn_ttl);
#undef ARG
#undef NUM

	sb_config_defaults(&d);
	msg[0] = '\0';
	rc = sb_config_parse(&d, argc, argv, msg, sizeof(msg));
	SB_FUZZ_CHECK(rc == SB_CONFIG_RUN, "written back, refused: %s", msg);
	SB_FUZZ_CHECK(!strcmp(d.bind, c->bind) && d.port == c->port &&
		      d.workers == c->workers && d.max_message == c->max_message &&
		      d.max_field == c->max_field &&
		      d.max_room_peers == c->max_room_peers &&
		      d.max_backlog == c->max_backlog &&
		      d.heartbeat == c->heartbeat && d.rate == c->rate &&
		      d.drain_timeout == c->drain_timeout &&
		      d.log_level == c->log_level && d.log_json == c->log_json &&
		      d.max_connections == c->max_connections &&
		      d.max_connections_per_ip == c->max_connections_per_ip &&
		      d.handshake_timeout == c->handshake_timeout &&
		      !strcmp(d.tls_cert, c->tls_cert) &&
		      !strcmp(d.tls_key, c->tls_key) &&
		      !strcmp(d.web_root, c->web_root) &&
		      !strcmp(d.auth_public_key, c->auth_public_key) &&
		      !strcmp(d.auth_audience, c->auth_audience) &&
		      !strcmp(d.auth_issuer, c->auth_issuer) &&
		      d.turn_ttl == c->turn_ttl,
		      "written back, read differently");
	SB_FUZZ_CHECK((!auth_arg || same_secret(&d.auth_secret, &c->auth_secret)) &&
		      (!turn_arg || same_secret(&d.turn_secret, &c->turn_secret)),
		      "secrets written back, read differently");
	SB_FUZZ_CHECK(d.ice_count == c->ice_count, "ICE servers written back differ");
	for (int i = 0; i < c->ice_count; i++)
		SB_FUZZ_CHECK(!strcmp(d.ice_servers[i], c->ice_servers[i]), "ice %d", i);
	SB_FUZZ_CHECK(d.norigins == c->norigins && d.ntrusted == c->ntrusted,
		      "lists written back differ");
	for (int i = 0; i < c->norigins; i++)
		SB_FUZZ_CHECK(!strcmp(d.origins[i], c->origins[i]), "origin %d", i);
	for (int i = 0; i < c->ntrusted; i++)
		SB_FUZZ_CHECK(d.trusted[i].prefix == c->trusted[i].prefix &&
			      sb_addr_equal(&d.trusted[i].net, &c->trusted[i].net),
			      "trusted %d", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], *text, *p, *end, msg[256];
	struct sb_config cfg;
	int argc = 1, rc;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	argv[0] = "switchboard";
	nenv = 0;
	for (p = text, end = text + size; p <= end && argc <= MAX_ARGS;
	     p += strlen(p) + 1) {
		char *eq = strchr(p, '=');

		if (!strncmp(p, "SWITCHBOARD_", 12) && eq && nenv < MAX_ENV) {
			*eq = '\0';
			env_names[nenv] = p;
			env_values[nenv++] = eq + 1;
			p = eq + 1;	/* the step skips the value */
			continue;
		}
		if (p == end && !*p)
			break;	/* the trailing NUL added above */
		argv[argc++] = p;
	}
	argv[argc] = NULL;

	check_env_as_argv();
	sb_config_defaults(&cfg);
	msg[0] = '\0';
	rc = sb_config_env(&cfg, fake_getenv, msg, sizeof(msg));
	SB_FUZZ_CHECK(rc == 0 || (rc == -EINVAL && msg[0]), "env: %d", rc);
	if (!rc) {
		msg[0] = '\0';
		rc = sb_config_parse(&cfg, argc, argv, msg, sizeof(msg));
		SB_FUZZ_CHECK(rc >= SB_CONFIG_RUN || (rc == -EINVAL && msg[0]),
			      "parse: %d", rc);
	}
	if (rc == SB_CONFIG_RUN) {
		check_bounds(&cfg);
		if (!sb_config_check(&cfg, msg, sizeof(msg)))
			check_round_trip(&cfg);
	}
	free(text);
	return 0;
}
