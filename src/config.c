/*
 * The command line and the environment: every option's syntax, range and
 * default, the secret files, the checks across options, the start-up
 * summary and --help.
 */
#include "sb_config.h"

#include "sb_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
	"       switchboard token [token options]  prints a room token signed\n"
	"       with the --auth-secret (switchboard token --help lists them)\n"
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
	"      --auth-secret SECRET  admit a join only with a room token signed\n"
	"                           with this HS256 secret (default: none, no token)\n"
	"      --auth-secret-file FILE  the same, the secret read from FILE\n"
	"      --auth-public-key FILE  admit a join only with a room token signed\n"
	"                           for this PEM public key: RSA for RS256, EC P-256\n"
	"                           for ES256 (default: none)\n"
	"      --auth-audience AUD  a token's aud must hold AUD (default: any)\n"
	"      --auth-issuer ISS    a token's iss must be ISS (default: any)\n"
	"      --ice-server URI     a STUN or TURN server for joined's iceServers:\n"
	"                           stun:, stuns:, turn: or turns: HOST[:PORT]\n"
	"                           (repeatable, at most 16; default: none)\n"
	"      --turn-secret SECRET  the TURN server's shared secret, for the\n"
	"                           credentials of turn: URIs (default: none)\n"
	"      --turn-secret-file FILE  the same, the secret read from FILE\n"
	"      --turn-ttl SECONDS   lifetime of a TURN credential (default 86400)\n"
	"  -h, --help               show this help and exit\n"
	"      --version            show the version and exit\n"
	"Every option can also come from the environment: SWITCHBOARD_PORT,\n"
	"SWITCHBOARD_MAX_MESSAGE, ... (the long name in capitals, dashes as\n"
	"underscores); the command line wins.\n";

/* K_TEXT: a string without control characters; K_SECRET: a secret given
 * as the value, K_SECRET_FILE: read from the file the value names (both
 * into a struct sb_secret); K_ICE: an ICE server URI. */
enum kind { K_INT, K_NUM, K_STR, K_LEVEL, K_ORIGIN, K_CIDR, K_FORMAT, K_REDIS,
	    K_TEXT, K_SECRET, K_SECRET_FILE, K_ICE };

/* Repeatable options: a list the command line replaces as a whole. */
static bool is_list(enum kind k)
{
	return k == K_ORIGIN || k == K_CIDR || k == K_ICE;
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
	{ NULL, "--auth-secret", K_SECRET, 0, 0, FIELD(auth_secret) },
	{ NULL, "--auth-secret-file", K_SECRET_FILE, 0, 0, FIELD(auth_secret) },
	{ NULL, "--auth-public-key", K_TEXT, 0, 0, FIELD(auth_public_key) },
	{ NULL, "--auth-audience", K_TEXT, 0, 0, FIELD(auth_audience) },
	{ NULL, "--auth-issuer", K_TEXT, 0, 0, FIELD(auth_issuer) },
	{ NULL, "--ice-server", K_ICE, 0, 0, FIELD(ice_count) },
	{ NULL, "--turn-secret", K_SECRET, 0, 0, FIELD(turn_secret) },
	{ NULL, "--turn-secret-file", K_SECRET_FILE, 0, 0, FIELD(turn_secret) },
	{ NULL, "--turn-ttl", K_INT, 60, 604800, FIELD(turn_ttl) },
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
	cfg->turn_ttl = 86400;
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

/* Whether uri names a TURN server (its credentials come with it). */
static bool ice_is_turn(const char *uri)
{
	return !strncmp(uri, "turn:", 5) || !strncmp(uri, "turns:", 6);
}

/*
 * Whether s is an ICE server URI as RFC 7064 and RFC 7065 write them, with
 * a lower-case scheme: "stun:" or "stuns:" host [":" port], "turn:" or
 * "turns:" host [":" port] ["?transport=udp" / "?transport=tcp"]; host a
 * name or IPv4 address (letters, digits, '-', '.', '_') or an IPv6 address
 * in brackets, port 1 to 65535.  When not, *why says what is wrong.
 */
static bool ice_uri_syntax(const char *s, const char **why)
{
	const char *p, *d;
	bool turn = ice_is_turn(s);
	unsigned long port = 0;

	if (!strncmp(s, "stun:", 5) || !strncmp(s, "turn:", 5)) {
		p = s + 5;
	} else if (!strncmp(s, "stuns:", 6) || !strncmp(s, "turns:", 6)) {
		p = s + 6;
	} else {
		*why = "not a stun:, stuns:, turn: or turns: URI";
		return false;
	}
	if (*p == '[') {
		const char *close = strchr(p, ']');
		char addr[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		size_t len = close ? (size_t)(close - p - 1) : 0;

		if (!close || !len || len >= sizeof(addr)) {
			*why = "a bad IPv6 address";
			return false;
		}
		memcpy(addr, p + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1) {
			*why = "a bad IPv6 address";
			return false;
		}
		p = close + 1;
	} else {
		const char *host = p;

		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_')
			p++;
		if (p == host) {
			*why = *p == '/' ? "'//' after the scheme (write stun:HOST)"
					 : "no host";
			return false;
		}
	}
	if (*p == ':') {
		for (d = ++p; *p >= '0' && *p <= '9' && p - d <= 5; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (p == d || p - d > 5 || port < 1 || port > 65535) {
			*why = "a bad port (1 to 65535)";
			return false;
		}
	}
	if (*p == '?') {
		if (!turn) {
			*why = "a query, which stun: URIs do not take";
			return false;
		}
		if (strcmp(p, "?transport=udp") && strcmp(p, "?transport=tcp")) {
			*why = "a query other than ?transport=udp or ?transport=tcp";
			return false;
		}
		return true;
	}
	if (*p) {
		*why = "something after the host and port";
		return false;
	}
	return true;
}

/* Adds one --ice-server URI, checked; refusals quote it only when it can
 * hold nothing secret and nothing that would break the line. */
static int add_ice_server(struct sb_config *cfg, const char *opt,
			  const char *value, char *msg, size_t msglen)
{
	const char *why = NULL;

	if (!*value) {
		snprintf(msg, msglen, "option '%s' needs a value", opt);
		return -EINVAL;
	}
	if (strlen(value) >= SB_ICE_URI_MAX) {
		snprintf(msg, msglen, "the value for %s is longer than %d bytes",
			 opt, SB_ICE_URI_MAX - 1);
		return -EINVAL;
	}
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if (*c <= ' ' || *c == 0x7f || *c == '"' || *c == '\'' || *c == '\\') {
			snprintf(msg, msglen, "the value for %s holds a space, a quote, "
				 "a backslash or a control character: give one URI "
				 "per %s", opt, opt);
			return -EINVAL;
		}
		if (*c == '@') {
			snprintf(msg, msglen, "the value for %s holds '@': a URI "
				 "takes no user or password; TURN credentials are "
				 "made from --turn-secret", opt);
			return -EINVAL;
		}
	}
	if (!ice_uri_syntax(value, &why)) {
		snprintf(msg, msglen, "bad value '%.64s' for %s (%s): give stun:, "
			 "stuns:, turn: or turns: then HOST[:PORT], and for TURN "
			 "?transport=udp or tcp if needed", value, opt, why);
		return -EINVAL;
	}
	if (cfg->ice_count >= SB_ICE_SERVERS_MAX) {
		snprintf(msg, msglen, "at most %d values for %s", SB_ICE_SERVERS_MAX,
			 opt);
		return -EINVAL;
	}
	strcpy(cfg->ice_servers[cfg->ice_count++], value);
	return 0;
}

/* Replaces the bytes of secret s with value[0..len) and adds bit, the
 * option's, to s->from.  Messages name the option, never the value. */
static int set_secret(struct sb_secret *s, const char *opt, const void *value,
		      size_t len, unsigned bit, char *msg, size_t msglen)
{
	if (len > SB_SECRET_MAX) {
		snprintf(msg, msglen, "the value for %s is longer than %d bytes",
			 opt, SB_SECRET_MAX);
		return -EINVAL;
	}
	memset(s->bytes, 0, sizeof(s->bytes));
	memcpy(s->bytes, value, len);
	s->len = len;
	s->from |= bit;
	return 0;
}

/*
 * Reads the secret in the file at path into s, for option opt: at most
 * SB_SECRET_MAX bytes, one trailing "\n" or "\r\n" dropped, and not empty.
 * Any file that reads to its end will do (a pipe from the shell's <(...)
 * too).  Messages name the file and the reason, never its content.
 */
static int read_secret_file(struct sb_secret *s, const char *opt,
			    const char *path, char *msg, size_t msglen)
{
	unsigned char buf[SB_SECRET_MAX + 1];
	size_t n = 0;
	int fd, err = 0, rc;

	if (!*path) {
		snprintf(msg, msglen, "option '%s' needs a value", opt);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		err = errno;
	while (fd >= 0 && n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = errno;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	if (err) {
		char ebuf[128];

		snprintf(msg, msglen, "cannot read %.200s for %s: %s", path, opt,
			 strerror_r(err, ebuf, sizeof(ebuf)));
		rc = -EINVAL;
	} else if (n > SB_SECRET_MAX) {
		snprintf(msg, msglen, "%.200s, the file of %s, is over %d bytes: "
			 "it must hold the secret alone", path, opt, SB_SECRET_MAX);
		rc = -EINVAL;
	} else {
		if (n && buf[n - 1] == '\n') {
			n--;
			if (n && buf[n - 1] == '\r')
				n--;
		}
		if (!n) {
			snprintf(msg, msglen, "%.200s, the file of %s, is empty: "
				 "write the secret in it", path, opt);
			rc = -EINVAL;
		} else {
			rc = set_secret(s, opt, buf, n, SB_SECRET_FILE, msg, msglen);
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

static int set_value(struct sb_config *cfg, const struct option_spec *sp,
		     const char *value, char *msg, size_t msglen)
{
	char *field = (char *)cfg + sp->offset;
	double v;

	if (sp->kind == K_SECRET) {
		if (!*value) {
			snprintf(msg, msglen, "option '%s' needs a value", sp->name);
			return -EINVAL;
		}
		return set_secret((struct sb_secret *)(void *)field, sp->name, value,
				  strlen(value), SB_SECRET_ARG, msg, msglen);
	}
	if (sp->kind == K_SECRET_FILE)
		return read_secret_file((struct sb_secret *)(void *)field, sp->name,
					value, msg, msglen);
	if (sp->kind == K_ICE)
		return add_ice_server(cfg, sp->name, value, msg, msglen);
	if (sp->kind == K_TEXT) {
		for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
			if (*c < ' ' || *c == 0x7f) {
				snprintf(msg, msglen, "the value for %s holds a "
					 "control character", sp->name);
				return -EINVAL;
			}
		}
	}
	if (sp->kind == K_STR || sp->kind == K_TEXT) {
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
		char var[64], why[256];
		const char *value;

		env_name(sp, var);
		value = get(var);
		if (!value || !*value)
			continue;
		if (is_list(sp->kind)) {
			/* a list: values separated by commas; ICE servers by
			 * commas or spaces, and empty ones skipped */
			const char *seps = sp->kind == K_ICE ? ", \t" : ",";
			char item[(SB_ORIGIN_MAX > SB_ICE_URI_MAX ? SB_ORIGIN_MAX
								  : SB_ICE_URI_MAX) + 1];

			list_clear(cfg, sp);
			while (*value) {
				size_t len = strcspn(value, seps);

				if (!len && sp->kind == K_ICE) {
					value++;
					continue;
				}

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
				value += len;
				if (*value)
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

/* The options that set the key of room tokens, into names[]; how many. */
static int auth_options(const struct sb_config *cfg, const char *names[3])
{
	int n = 0;

	if (cfg->auth_secret.from & SB_SECRET_ARG)
		names[n++] = "--auth-secret";
	if (cfg->auth_secret.from & SB_SECRET_FILE)
		names[n++] = "--auth-secret-file";
	if (cfg->auth_public_key[0])
		names[n++] = "--auth-public-key";
	return n;
}

/* The first turn: or turns: URI of cfg, or NULL. */
static const char *first_turn(const struct sb_config *cfg)
{
	for (int i = 0; i < cfg->ice_count; i++)
		if (ice_is_turn(cfg->ice_servers[i]))
			return cfg->ice_servers[i];
	return NULL;
}

int sb_config_check(const struct sb_config *cfg, char *msg, size_t msglen)
{
	const char *auth[3], *turn = first_turn(cfg);
	int nauth = auth_options(cfg, auth);
	unsigned tfrom = cfg->turn_secret.from;
	const char *tname = tfrom & SB_SECRET_FILE ? "--turn-secret-file"
						   : "--turn-secret";

	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		snprintf(msg, msglen, "--tls-cert and --tls-key go together");
		return -EINVAL;
	}
	if (nauth == 3) {
		snprintf(msg, msglen, "%s, %s and %s are all set (on the command "
			 "line or in the environment): room tokens take one key, "
			 "keep only one of them", auth[0], auth[1], auth[2]);
		return -EINVAL;
	}
	if (nauth == 2) {
		snprintf(msg, msglen, "%s and %s are both set (on the command line "
			 "or in the environment): room tokens take one key, keep "
			 "only one of them", auth[0], auth[1]);
		return -EINVAL;
	}
	if (!nauth && (cfg->auth_audience[0] || cfg->auth_issuer[0])) {
		const char *opt = cfg->auth_audience[0] ? "--auth-audience"
							: "--auth-issuer";

		snprintf(msg, msglen, "%s checks room tokens, which are off: set "
			 "--auth-secret-file, --auth-secret or --auth-public-key "
			 "too, or drop %s", opt, opt);
		return -EINVAL;
	}
	if ((tfrom & SB_SECRET_ARG) && (tfrom & SB_SECRET_FILE)) {
		snprintf(msg, msglen, "--turn-secret and --turn-secret-file are both "
			 "set (on the command line or in the environment): keep "
			 "only one of them");
		return -EINVAL;
	}
	if (turn && !cfg->turn_secret.len) {
		snprintf(msg, msglen, "--ice-server %.64s needs a TURN secret for its "
			 "credentials: set --turn-secret-file (or --turn-secret) to "
			 "the TURN server's shared secret, or give stun: URIs only",
			 turn);
		return -EINVAL;
	}
	if (!turn && cfg->turn_secret.len) {
		snprintf(msg, msglen, "%s is set but no --ice-server is a turn: or "
			 "turns: URI, so no credential would use it: add the TURN "
			 "server (--ice-server turn:HOST:3478) or drop %s", tname,
			 tname);
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
			/* not the value after '=': it may be a secret */
			snprintf(msg, msglen, "unknown option '%.*s'", (int)namelen, arg);
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
	/* what verifies tokens, never the secret itself */
	if (cfg->auth_public_key[0]) {
		put(out, &n, cap, ", tokens RS256 or ES256 (key %s",
		    cfg->auth_public_key);
	} else if (cfg->auth_secret.len) {
		put(out, &n, cap, ", tokens HS256");
	} else {
		put(out, &n, cap, ", tokens off");
	}
	if (cfg->auth_public_key[0] || cfg->auth_secret.len) {
		const char *sep = cfg->auth_public_key[0] ? ", " : " (";

		if (cfg->auth_audience[0]) {
			put(out, &n, cap, "%saudience %s", sep, cfg->auth_audience);
			sep = ", ";
		}
		if (cfg->auth_issuer[0]) {
			put(out, &n, cap, "%sissuer %s", sep, cfg->auth_issuer);
			sep = ", ";
		}
		if (strcmp(sep, " ("))
			put(out, &n, cap, ")");
	}
	if (!cfg->ice_count)
		put(out, &n, cap, ", ICE servers none");
	else if (first_turn(cfg) && cfg->turn_secret.len)
		put(out, &n, cap, ", ICE servers %d (TURN credentials for %d s)",
		    cfg->ice_count, cfg->turn_ttl);
	else
		put(out, &n, cap, ", ICE servers %d", cfg->ice_count);
	if (cfg->redis.set) {
		char url[SB_REDIS_HOST_MAX + SB_REDIS_SECRET_MAX + 40];

		sb_redis_url_safe(&cfg->redis, url, sizeof(url));
		put(out, &n, cap, ", cluster %s, node timeout %g s", url, cfg->node_timeout);
	}
}
