#include "sb_config.h"

#include "sb_log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char sb_config_usage[] =
	"usage: switchboard [options]\n"
	"  -p, --port N             listen port; 0 picks a free one (default 8080)\n"
	"  -b, --bind ADDR          listen address (default ::, dual-stack: IPv4 too)\n"
	"  -w, --workers N          worker threads (default: the number of CPUs)\n"
	"      --max-message BYTES  largest client message (default 65536)\n"
	"      --max-field BYTES    limit for id, nick and room (default 128)\n"
	"      --max-room-peers N   peers in one room, 0 = unlimited (default 0)\n"
	"      --max-backlog BYTES  outbound backlog per connection (default 1048576)\n"
	"      --heartbeat SECONDS  ping interval and pong timeout, 0 = off (default 30)\n"
	"      --rate N             messages per second per connection, bursts of 2N,\n"
	"                           0 = off (default 0)\n"
	"      --drain-timeout SECONDS  flush time at shutdown (default 5)\n"
	"      --log-level LEVEL    error, warn, info or debug (default info)\n"
	"      --log-format FORMAT  text or json, one object a line (default text)\n"
	"      --max-connections N  WebSocket connections in all, 0 = unlimited\n"
	"                           (default 0); over it an upgrade gets 503\n"
	"      --max-connections-per-ip N  the same per client address (default 0)\n"
	"      --allowed-origin ORIGIN  accept WebSocket upgrades only from this\n"
	"                           Origin (repeatable; default: any); others get 403\n"
	"      --trusted-proxy CIDR  a reverse proxy whose X-Forwarded-For and\n"
	"                           X-Real-IP name the client (repeatable; default:\n"
	"                           none, the headers are ignored)\n"
	"      --handshake-timeout SECONDS  time a new connection has to send its\n"
	"                           HTTP request or upgrade (default 10)\n"
	"      --tls-cert FILE      serve wss:// and https:// with this PEM\n"
	"                           certificate chain (with --tls-key; default: none)\n"
	"      --tls-key FILE       the certificate's PEM private key\n"
	"      --web-root DIR       serve the files in DIR at / (default: the demo\n"
	"                           page, installed or in the source tree; none: off)\n"
	"      --redis URL          join the cluster whose backplane is this Redis\n"
	"                           (redis://[:password@]host[:port][/db]; default:\n"
	"                           none, a node on its own)\n"
	"      --node-timeout SECONDS  a silent node's peers leave after this\n"
	"                           (default 10)\n"
	"  -h, --help               show this help and exit\n"
	"      --version            show the version and exit\n"
	"Every option can also come from the environment: SWITCHBOARD_PORT,\n"
	"SWITCHBOARD_MAX_MESSAGE, ... (the long name in capitals, dashes as\n"
	"underscores); the command line wins.\n";

enum kind { K_INT, K_NUM, K_STR, K_LEVEL, K_ORIGIN, K_CIDR, K_FORMAT, K_REDIS };

/* Repeatable options: a list the command line replaces as a whole. */
static bool is_list(enum kind k)
{
	return k == K_ORIGIN || k == K_CIDR;
}

struct option_spec {
	const char *shortname;	/* "-p" or NULL */
	const char *name;	/* "--port" */
	enum kind kind;
	double min, max;
	size_t offset;
	size_t size;		/* of the field, for K_INT */
};

#define FIELD(f) offsetof(struct sb_config, f), sizeof(((struct sb_config *)0)->f)

static const struct option_spec specs[] = {
	{ "-p", "--port", K_INT, 0, 65535, FIELD(port) },
	{ "-b", "--bind", K_STR, 0, 0, FIELD(bind) },
	{ "-w", "--workers", K_INT, 1, SB_WORKERS_MAX, FIELD(workers) },
	{ NULL, "--max-message", K_INT, 1, 64.0 * 1024 * 1024, FIELD(max_message) },
	{ NULL, "--max-field", K_INT, 1, 65536, FIELD(max_field) },
	{ NULL, "--max-room-peers", K_INT, 0, 10000000, FIELD(max_room_peers) },
	{ NULL, "--max-backlog", K_INT, 1024, 1024.0 * 1024 * 1024, FIELD(max_backlog) },
	{ NULL, "--heartbeat", K_NUM, 0, 86400, FIELD(heartbeat) },
	{ NULL, "--rate", K_NUM, 0, 1e9, FIELD(rate) },
	{ NULL, "--drain-timeout", K_NUM, 0, 86400, FIELD(drain_timeout) },
	{ NULL, "--log-level", K_LEVEL, 0, 0, FIELD(log_level) },
	{ NULL, "--log-format", K_FORMAT, 0, 0, FIELD(log_json) },
	{ NULL, "--max-connections", K_INT, 0, 10000000, FIELD(max_connections) },
	{ NULL, "--max-connections-per-ip", K_INT, 0, 10000000,
	  FIELD(max_connections_per_ip) },
	{ NULL, "--allowed-origin", K_ORIGIN, 0, 0, FIELD(norigins) },
	{ NULL, "--trusted-proxy", K_CIDR, 0, 0, FIELD(ntrusted) },
	{ NULL, "--handshake-timeout", K_INT, 1, 3600, FIELD(handshake_timeout) },
	{ NULL, "--tls-cert", K_STR, 0, 0, FIELD(tls_cert) },
	{ NULL, "--tls-key", K_STR, 0, 0, FIELD(tls_key) },
	{ NULL, "--web-root", K_STR, 0, 0, FIELD(web_root) },
	{ NULL, "--redis", K_REDIS, 0, 0, FIELD(redis) },
	{ NULL, "--node-timeout", K_NUM, 1, 3600, FIELD(node_timeout) },
};

/* Empties a list option: its field is the count of values. */
static void list_clear(struct sb_config *cfg, const struct option_spec *sp)
{
	*(int *)(void *)((char *)cfg + sp->offset) = 0;
}

void sb_config_defaults(struct sb_config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->bind, "::");
	cfg->port = 8080;
	cfg->workers = cpus > 0 ? (cpus > 1024 ? 1024 : (int)cpus) : 1;
	cfg->max_message = 65536;
	cfg->max_field = 128;
	cfg->max_room_peers = 0;
	cfg->max_backlog = 1048576;
	cfg->heartbeat = 30;
	cfg->rate = 0;
	cfg->drain_timeout = 5;
	cfg->log_level = SB_LOG_INFO;
	cfg->handshake_timeout = 10;
	cfg->node_timeout = 10;
}

/* Digits only, optionally one '.' and more digits when fractions are
 * allowed: no sign, no exponent, no spaces, no hex. */
static bool number_syntax(const char *s, bool fraction)
{
	bool digits = false, dot = false;

	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			digits = true;
		} else if (*s == '.' && fraction && !dot && digits) {
			dot = true;
			digits = false;
		} else {
			return false;
		}
	}
	return digits;
}

/* Whether s is an origin as browsers send it in the Origin header (RFC
 * 6454): scheme "://" host [":" port], with no path, query, user or
 * trailing slash; or "null", the origin of sandboxed and file pages. */
static bool origin_syntax(const char *s)
{
	const char *host, *colon = NULL;
	bool bracket = false;

	if (!strcmp(s, "null"))
		return true;
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
	       (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.')
		s++;
	if (strncmp(s, "://", 3))
		return false;
	host = s += 3;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f || strchr("/?#@\\", c))
			return false;
		if (c == '[')
			bracket = true;
		else if (c == ']')
			bracket = false;
		else if (c == ':' && !bracket)
			colon = s;
	}
	if (s == host || *host == ':')
		return false;
	if (colon) {
		size_t digits = strlen(colon + 1);

		if (!digits || digits > 5 || strspn(colon + 1, "0123456789") != digits)
			return false;
	}
	return true;
}

static int set_value(struct sb_config *cfg, const struct option_spec *sp,
		     const char *value, char *msg, size_t msglen)
{
	char *field = (char *)cfg + sp->offset;
	double v;

	if (sp->kind == K_STR) {
		if (!*value) {
			snprintf(msg, msglen, "option '%s' needs a value", sp->name);
			return -EINVAL;
		}
		if (strlen(value) >= sp->size) {
			snprintf(msg, msglen, "the value for %s is longer than %zu bytes",
				 sp->name, sp->size - 1);
			return -EINVAL;
		}
		strcpy(field, value);
		return 0;
	}
	if (sp->kind == K_ORIGIN) {
		if (!*value || strlen(value) >= SB_ORIGIN_MAX) {
			snprintf(msg, msglen, "bad value '%.64s' for %s (1 to %d bytes)",
				 value, sp->name, SB_ORIGIN_MAX - 1);
			return -EINVAL;
		}
		if (!origin_syntax(value)) {
			snprintf(msg, msglen, "bad value '%.64s' for %s: not an origin; "
				 "give scheme://host[:port] as browsers send it, with "
				 "no path or trailing slash (https://app.example.com)",
				 value, sp->name);
			return -EINVAL;
		}
		if (cfg->norigins >= SB_ORIGINS_MAX) {
			snprintf(msg, msglen, "at most %d values for %s", SB_ORIGINS_MAX,
				 sp->name);
			return -EINVAL;
		}
		strcpy(cfg->origins[cfg->norigins++], value);
		return 0;
	}
	if (sp->kind == K_CIDR) {
		if (cfg->ntrusted >= SB_TRUSTED_MAX) {
			snprintf(msg, msglen, "at most %d values for %s", SB_TRUSTED_MAX,
				 sp->name);
			return -EINVAL;
		}
		if (!sb_cidr_parse(&cfg->trusted[cfg->ntrusted], value)) {
			snprintf(msg, msglen,
				 "bad value '%.64s' for %s (expected an address or "
				 "ADDRESS/PREFIX with the host bits zero)",
				 value, sp->name);
			return -EINVAL;
		}
		cfg->ntrusted++;
		return 0;
	}
	if (sp->kind == K_REDIS)	/* its messages never quote the value */
		return sb_redis_url_parse(&cfg->redis, value, msg, msglen) ? -EINVAL : 0;
	if (sp->kind == K_FORMAT) {
		if (strcmp(value, "text") && strcmp(value, "json")) {
			snprintf(msg, msglen,
				 "bad value '%.64s' for %s (expected text or json)",
				 value, sp->name);
			return -EINVAL;
		}
		*(int *)(void *)field = !strcmp(value, "json");
		return 0;
	}
	if (sp->kind == K_LEVEL) {
		int level = sb_log_level_parse(value);

		if (level < 0) {
			snprintf(msg, msglen,
				 "bad value '%s' for %s (expected error, warn, info or debug)",
				 value, sp->name);
			return -EINVAL;
		}
		*(int *)(void *)field = level;
		return 0;
	}
	errno = 0;
	v = strtod(value, NULL);
	if (!number_syntax(value, sp->kind == K_NUM) || errno || !isfinite(v) ||
	    v < sp->min || v > sp->max) {
		snprintf(msg, msglen,
			 "bad value '%s' for %s (expected %s from %.0f to %.0f)",
			 value, sp->name,
			 sp->kind == K_INT ? "a whole number" : "a number",
			 sp->min, sp->max);
		return -EINVAL;
	}
	if (sp->kind == K_NUM)
		*(double *)(void *)field = v;
	else if (sp->size == sizeof(int))
		*(int *)(void *)field = (int)v;
	else
		*(size_t *)(void *)field = (size_t)v;
	return 0;
}

/* The environment variable of option sp: SWITCHBOARD_ and its long name in
 * capitals, dashes as underscores. */
static void env_name(const struct option_spec *sp, char var[64])
{
	size_t n = sizeof(SB_ENV_PREFIX) - 1;

	memcpy(var, SB_ENV_PREFIX, n);
	for (const char *p = sp->name + 2; *p && n < 63; p++)
		var[n++] = *p == '-' ? '_' : (char)(*p - 'a' + 'A');
	var[n] = '\0';
}

/* Edits from a[0..la) to b[0..lb), both at most 63 bytes: insertions,
 * deletions, substitutions and swaps of two neighbours ("PROT" is one
 * edit from "PORT"). */
static unsigned edits(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned char d[64][64];

	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1u < best)
				best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)best;
		}
	}
	return d[la][lb];
}

int sb_config_env_unknown(char *const *envp,
			  void (*report)(void *arg, const char *name, size_t len,
					 const char *near),
			  void *arg)
{
	size_t plen = sizeof(SB_ENV_PREFIX) - 1;
	int unknown = 0;

	for (; envp && *envp; envp++) {
		const char *e = *envp;
		size_t len = strcspn(e, "=");
		char var[64], near[64] = "";
		unsigned best = UINT_MAX;
		bool known = false;

		if (len <= plen || strncmp(e, SB_ENV_PREFIX, plen))
			continue;
		for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]) && !known; k++) {
			unsigned d;

			env_name(&specs[k], var);
			known = strlen(var) == len && !memcmp(var, e, len);
			if (known || len >= 64)
				continue;
			d = edits(e + plen, len - plen, var + plen, strlen(var + plen));
			if (d < best) {
				best = d;
				memcpy(near, var, sizeof(near));
			}
		}
		if (known)
			continue;
		unknown++;
		/* a likely misspelling: one or two edits, in a name at least
		 * twice as long */
		report(arg, e, len, best <= 2 && 2 * best <= len - plen ? near : NULL);
	}
	return unknown;
}

int sb_config_env(struct sb_config *cfg, const char *(*get)(const char *name),
		  char *msg, size_t msglen)
{
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		const struct option_spec *sp = &specs[k];
		char var[64], why[200];
		const char *value;

		env_name(sp, var);
		value = get(var);
		if (!value || !*value)
			continue;
		if (is_list(sp->kind)) {
			/* a list: values separated by commas */
			char item[SB_ORIGIN_MAX + 1];

			list_clear(cfg, sp);
			while (*value) {
				size_t len = strcspn(value, ",");

				/* refused whole: a cut value is not the one given */
				if (len >= sizeof(item)) {
					snprintf(msg, msglen,
						 "%s: a value of %zu bytes (at most %zu)",
						 var, len, sizeof(item) - 1);
					return -EINVAL;
				}
				memcpy(item, value, len);
				item[len] = '\0';
				if (set_value(cfg, sp, item, why, sizeof(why))) {
					snprintf(msg, msglen, "%s: %s", var, why);
					return -EINVAL;
				}
				value += strcspn(value, ",");
				if (*value == ',')
					value++;
			}
			continue;
		}
		if (set_value(cfg, sp, value, why, sizeof(why))) {
			snprintf(msg, msglen, "%s: %s", var, why);
			return -EINVAL;
		}
	}
	return 0;
}

int sb_config_check(const struct sb_config *cfg, char *msg, size_t msglen)
{
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		snprintf(msg, msglen, "--tls-cert and --tls-key go together");
		return -EINVAL;
	}
	return 0;
}

int sb_config_parse(struct sb_config *cfg, int argc, char *const argv[],
		    char *msg, size_t msglen)
{
	int want = SB_CONFIG_RUN;
	bool given[sizeof(specs) / sizeof(specs[0])] = { false };

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		const struct option_spec *sp = NULL;
		size_t namelen = strlen(arg);

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			want = SB_CONFIG_HELP;
			continue;
		}
		if (!strcmp(arg, "--version")) {
			if (want == SB_CONFIG_RUN)
				want = SB_CONFIG_VERSION;
			continue;
		}
		eq = strncmp(arg, "--", 2) ? NULL : strchr(arg, '=');
		if (eq) {
			namelen = (size_t)(eq - arg);
			value = eq + 1;
		}
		for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
			const struct option_spec *s = &specs[k];

			if ((strlen(s->name) == namelen && !strncmp(arg, s->name, namelen)) ||
			    (!eq && s->shortname && !strcmp(arg, s->shortname))) {
				sp = s;
				break;
			}
		}
		if (!sp) {
			snprintf(msg, msglen, "unknown option '%s'", arg);
			return -EINVAL;
		}
		if (!value) {
			if (i + 1 >= argc) {
				snprintf(msg, msglen, "option '%s' needs a value", arg);
				return -EINVAL;
			}
			value = argv[++i];
		}
		if (is_list(sp->kind) && !given[sp - specs]) {
			/* the command line's list replaces the environment's */
			list_clear(cfg, sp);
			given[sp - specs] = true;
		}
		if (set_value(cfg, sp, value, msg, msglen))
			return -EINVAL;
	}
	return want;
}

/* ------------------------------------------------------------ summary */

/* Appends to out[*n..cap), cut to fit. */
static void put(char *out, size_t *n, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put(char *out, size_t *n, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n + 1 >= cap)
		return;
	va_start(ap, fmt);
	w = vsnprintf(out + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n = (size_t)w < cap - *n ? *n + (size_t)w : cap - 1;
}

/* A count, 0 meaning none: "unlimited". */
static void put_cap(char *out, size_t *n, size_t cap, const char *what, unsigned v)
{
	if (v)
		put(out, n, cap, "%s %u", what, v);
	else
		put(out, n, cap, "%s unlimited", what);
}

void sb_config_describe(const struct sb_config *cfg, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	put(out, &n, cap, "%d worker%s, TLS %s, Origin", cfg->workers,
	    cfg->workers == 1 ? "" : "s", cfg->tls_cert[0] ? "on" : "off");
	if (!cfg->norigins)
		put(out, &n, cap, " any");
	for (int i = 0; i < cfg->norigins; i++)
		put(out, &n, cap, " %s", cfg->origins[i]);
	put_cap(out, &n, cap, ", limits: connections", cfg->max_connections);
	put_cap(out, &n, cap, ", per address", cfg->max_connections_per_ip);
	put_cap(out, &n, cap, ", peers per room", cfg->max_room_peers);
	put(out, &n, cap, ", message %zu B, field %zu B, backlog %zu B", cfg->max_message,
	    cfg->max_field, cfg->max_backlog);
	if (cfg->rate > 0)
		put(out, &n, cap, ", rate %g/s", cfg->rate);
	else
		put(out, &n, cap, ", rate off");
	if (cfg->heartbeat > 0)
		put(out, &n, cap, ", heartbeat %g s", cfg->heartbeat);
	else
		put(out, &n, cap, ", heartbeat off");
	put(out, &n, cap, ", handshake %d s", cfg->handshake_timeout);
	if (cfg->ntrusted)
		put(out, &n, cap, ", %d trusted prox%s", cfg->ntrusted,
		    cfg->ntrusted == 1 ? "y" : "ies");
	if (cfg->redis.set) {
		char url[SB_REDIS_HOST_MAX + SB_REDIS_SECRET_MAX + 40];

		sb_redis_url_safe(&cfg->redis, url, sizeof(url));
		put(out, &n, cap, ", cluster %s, node timeout %g s", url, cfg->node_timeout);
	}
}
