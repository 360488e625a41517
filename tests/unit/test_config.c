/*
 * The command line (sb_config): the defaults of docs/protocol.md, every option
 * in its --opt value, --opt=value and short forms, help and version, and
 * the refusals (unknown option, missing value, bad or out-of-range value)
 * with a message; the options of room tokens, ICE servers and TURN, their
 * secret files, the checks across options, and that no secret ever shows
 * in a message or in the summary.
 */
#include "check.h"

#include "sb_config.h"
#include "sb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* Recognisable secrets: no message and no summary may ever hold them. */
#define SECRET "Zq7-sekrit-Wm4"
#define SECRET2 "Tn9-otherkey-Rx2"

static void no_secret(const char *text)
{
	if (strstr(text, SECRET) || strstr(text, SECRET2))
		fprintf(stderr, "  a secret in '%s'\n", text);
	CHECK(strstr(text, SECRET) == NULL);
	CHECK(strstr(text, SECRET2) == NULL);
}

enum { MAX_ARGS = 32, ARG_LEN = 400 };

/* argv for sb_config_parse from a NULL-terminated list, copied into
 * writable storage (argv strings are not const). */
struct args {
	char buf[MAX_ARGS][ARG_LEN];
	char *argv[MAX_ARGS + 1];
	int argc;
};

static void args_build(struct args *a, va_list ap)
{
	const char *s;

	a->argc = 0;
	strcpy(a->buf[0], "switchboard");
	a->argv[a->argc++] = a->buf[0];
	while ((s = va_arg(ap, const char *))) {
		CHECK(a->argc < MAX_ARGS);
		CHECK(strlen(s) < ARG_LEN);
		strcpy(a->buf[a->argc], s);
		a->argv[a->argc] = a->buf[a->argc];
		a->argc++;
	}
	a->argv[a->argc] = NULL;
}

/* Parses the NULL-terminated arguments over the defaults. */
static int parse(struct sb_config *cfg, char *msg, size_t msglen, ...)
{
	static struct args a;
	va_list ap;

	va_start(ap, msglen);
	args_build(&a, ap);
	va_end(ap);
	sb_config_defaults(cfg);
	msg[0] = '\0';
	return sb_config_parse(cfg, a.argc, a.argv, msg, msglen);
}

/* Expects the arguments to be refused with a message naming mention. */
static void expect_refused(const char *mention, ...)
{
	static struct args a;
	struct sb_config cfg;
	char msg[1024];
	va_list ap;
	int rc;

	va_start(ap, mention);
	args_build(&a, ap);
	va_end(ap);
	sb_config_defaults(&cfg);
	memset(msg, 0, sizeof(msg));
	rc = sb_config_parse(&cfg, a.argc, a.argv, msg, sizeof(msg));
	if (rc != -EINVAL) {
		fprintf(stderr, "  accepted:");
		for (int i = 1; i < a.argc; i++)
			fprintf(stderr, " '%s'", a.argv[i]);
		fprintf(stderr, "\n");
	}
	CHECK_EQ_INT(rc, -EINVAL);
	CHECK(msg[0] != '\0');
	CHECK(strchr(msg, '\n') == NULL);	/* one line */
	no_secret(msg);
	if (!strstr(msg, mention)) {
		fprintf(stderr, "  message '%s' does not mention '%s'\n", msg,
			mention);
		CHECK(strstr(msg, mention) != NULL);
	}
}

static void test_defaults(void)
{
	struct sb_config cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(&cfg, 0x5a, sizeof(cfg));
	sb_config_defaults(&cfg);
	/* docs/protocol.md, "Limits and close codes", and --help */
	CHECK_EQ_STR(cfg.bind, "::");
	CHECK_EQ_INT(cfg.port, 8080);
	CHECK_EQ_INT(cfg.workers, cpus < 1 ? 1 : cpus > SB_WORKERS_MAX ? SB_WORKERS_MAX : cpus);
	CHECK(cfg.workers >= 1);
	CHECK_EQ_SIZE(cfg.max_message, 65536);
	CHECK_EQ_SIZE(cfg.max_field, 128);
	CHECK_EQ_INT(cfg.max_room_peers, 0);
	CHECK_EQ_SIZE(cfg.max_backlog, 1048576);
	CHECK_EQ_DOUBLE(cfg.heartbeat, 30);
	CHECK_EQ_DOUBLE(cfg.rate, 0);
	CHECK_EQ_DOUBLE(cfg.drain_timeout, 5);
	CHECK_EQ_INT(cfg.log_level, SB_LOG_INFO);
	/* tokens and ICE servers off, TURN credentials for a day */
	CHECK_EQ_SIZE(cfg.auth_secret.len, 0);
	CHECK_EQ_INT(cfg.auth_secret.from, 0);
	CHECK_EQ_STR(cfg.auth_public_key, "");
	CHECK_EQ_STR(cfg.auth_audience, "");
	CHECK_EQ_STR(cfg.auth_issuer, "");
	CHECK_EQ_INT(cfg.ice_count, 0);
	CHECK_EQ_SIZE(cfg.turn_secret.len, 0);
	CHECK_EQ_INT(cfg.turn_secret.from, 0);
	CHECK_EQ_INT(cfg.turn_ttl, 86400);
}

static void test_no_arguments(void)
{
	struct sb_config cfg, def;
	char msg[256];

	sb_config_defaults(&def);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), (char *)NULL), SB_CONFIG_RUN);
	CHECK_EQ_STR(cfg.bind, def.bind);
	CHECK_EQ_INT(cfg.port, def.port);
	CHECK_EQ_INT(cfg.workers, def.workers);
	CHECK_EQ_SIZE(cfg.max_message, def.max_message);
	CHECK_EQ_SIZE(cfg.max_backlog, def.max_backlog);
	CHECK_EQ_DOUBLE(cfg.heartbeat, def.heartbeat);
}

/*
 * Each option with a value different from its default, in each form it
 * has; after parsing, that field holds the value and every other field
 * still holds its default.
 */
enum field { F_BIND, F_PORT, F_WORKERS, F_MAX_MESSAGE, F_MAX_FIELD,
	     F_MAX_ROOM_PEERS, F_MAX_BACKLOG, F_HEARTBEAT, F_RATE, F_DRAIN,
	     F_LOG_LEVEL, F_COUNT };

static void check_fields(const struct sb_config *cfg, enum field changed,
			 const char *str, double num)
{
	struct sb_config def;

	sb_config_defaults(&def);
	CHECK_EQ_STR(cfg->bind, changed == F_BIND ? str : def.bind);
	CHECK_EQ_INT(cfg->port, changed == F_PORT ? (int)num : def.port);
	CHECK_EQ_INT(cfg->workers, changed == F_WORKERS ? (int)num : def.workers);
	CHECK_EQ_SIZE(cfg->max_message,
		      changed == F_MAX_MESSAGE ? (size_t)num : def.max_message);
	CHECK_EQ_SIZE(cfg->max_field,
		      changed == F_MAX_FIELD ? (size_t)num : def.max_field);
	CHECK_EQ_INT(cfg->max_room_peers,
		     changed == F_MAX_ROOM_PEERS ? (unsigned)num : def.max_room_peers);
	CHECK_EQ_SIZE(cfg->max_backlog,
		      changed == F_MAX_BACKLOG ? (size_t)num : def.max_backlog);
	CHECK_EQ_DOUBLE(cfg->heartbeat, changed == F_HEARTBEAT ? num : def.heartbeat);
	CHECK_EQ_DOUBLE(cfg->rate, changed == F_RATE ? num : def.rate);
	CHECK_EQ_DOUBLE(cfg->drain_timeout,
			changed == F_DRAIN ? num : def.drain_timeout);
	CHECK_EQ_INT(cfg->log_level,
		     changed == F_LOG_LEVEL ? (int)num : def.log_level);
}

static const struct {
	const char *shortname;
	const char *name;
	const char *value;
	enum field field;
	double num;	/* the value as a number (log level: its enum) */
} option_cases[] = {
	{ "-p", "--port", "9001", F_PORT, 9001 },
	{ "-p", "--port", "0", F_PORT, 0 },
	{ "-p", "--port", "65535", F_PORT, 65535 },
	{ "-b", "--bind", "127.0.0.1", F_BIND, 0 },
	{ "-b", "--bind", "::1", F_BIND, 0 },
	{ "-b", "--bind", "localhost", F_BIND, 0 },
	{ "-w", "--workers", "3", F_WORKERS, 3 },
	{ "-w", "--workers", "1", F_WORKERS, 1 },
	{ "-w", "--workers", "1024", F_WORKERS, 1024 },
	{ NULL, "--max-message", "1000", F_MAX_MESSAGE, 1000 },
	{ NULL, "--max-message", "16777216", F_MAX_MESSAGE, 16777216 },
	{ NULL, "--max-field", "64", F_MAX_FIELD, 64 },
	{ NULL, "--max-field", "1", F_MAX_FIELD, 1 },
	{ NULL, "--max-room-peers", "2", F_MAX_ROOM_PEERS, 2 },
	{ NULL, "--max-room-peers", "100000", F_MAX_ROOM_PEERS, 100000 },
	{ NULL, "--max-backlog", "4096", F_MAX_BACKLOG, 4096 },
	{ NULL, "--max-backlog", "1024", F_MAX_BACKLOG, 1024 },
	{ NULL, "--max-backlog", "536870912", F_MAX_BACKLOG, 536870912 },
	{ NULL, "--heartbeat", "10", F_HEARTBEAT, 10 },
	{ NULL, "--heartbeat", "0", F_HEARTBEAT, 0 },
	{ NULL, "--heartbeat", "0.5", F_HEARTBEAT, 0.5 },
	{ NULL, "--heartbeat", "2.25", F_HEARTBEAT, 2.25 },
	{ NULL, "--rate", "20", F_RATE, 20 },
	{ NULL, "--rate", "0.5", F_RATE, 0.5 },
	{ NULL, "--drain-timeout", "1", F_DRAIN, 1 },
	{ NULL, "--drain-timeout", "0.25", F_DRAIN, 0.25 },
	{ NULL, "--drain-timeout", "0", F_DRAIN, 0 },
	{ NULL, "--log-level", "error", F_LOG_LEVEL, SB_LOG_ERROR },
	{ NULL, "--log-level", "warn", F_LOG_LEVEL, SB_LOG_WARN },
	{ NULL, "--log-level", "debug", F_LOG_LEVEL, SB_LOG_DEBUG },
};

static void test_each_option_each_form(void)
{
	struct sb_config cfg;
	char msg[256], joined[ARG_LEN];

	for (size_t i = 0; i < sizeof(option_cases) / sizeof(option_cases[0]); i++) {
		const char *name = option_cases[i].name;
		const char *value = option_cases[i].value;
		enum field f = option_cases[i].field;
		double num = option_cases[i].num;

		CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), name, value, (char *)NULL),
			     SB_CONFIG_RUN);
		check_fields(&cfg, f, value, num);

		snprintf(joined, sizeof(joined), "%s=%s", name, value);
		CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), joined, (char *)NULL),
			     SB_CONFIG_RUN);
		check_fields(&cfg, f, value, num);

		if (option_cases[i].shortname) {
			CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg),
					   option_cases[i].shortname, value,
					   (char *)NULL),
				     SB_CONFIG_RUN);
			check_fields(&cfg, f, value, num);
		}
	}
	/* --log-level info is the default itself */
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--log-level", "info", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.log_level, SB_LOG_INFO);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--log-level=error",
			   "--log-level=info", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.log_level, SB_LOG_INFO);
}

static void test_options_together(void)
{
	struct sb_config cfg;
	char msg[256];

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "-p", "0", "--bind=127.0.0.1",
			   "-w", "2", "--max-message", "4096", "--max-field=16",
			   "--max-room-peers", "3", "--max-backlog=2048",
			   "--heartbeat", "1.5", "--rate=7", "--drain-timeout",
			   "0.5", "--log-level=warn", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.port, 0);
	CHECK_EQ_STR(cfg.bind, "127.0.0.1");
	CHECK_EQ_INT(cfg.workers, 2);
	CHECK_EQ_SIZE(cfg.max_message, 4096);
	CHECK_EQ_SIZE(cfg.max_field, 16);
	CHECK_EQ_INT(cfg.max_room_peers, 3);
	CHECK_EQ_SIZE(cfg.max_backlog, 2048);
	CHECK_EQ_DOUBLE(cfg.heartbeat, 1.5);
	CHECK_EQ_DOUBLE(cfg.rate, 7);
	CHECK_EQ_DOUBLE(cfg.drain_timeout, 0.5);
	CHECK_EQ_INT(cfg.log_level, SB_LOG_WARN);

	/* the last of a repeated option wins */
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "-p", "1", "--port=2", "--port",
			   "3", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.port, 3);

	/* --opt=value splits at the first '=' */
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--bind=a=b", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_STR(cfg.bind, "a=b");
}

static void test_help_and_version(void)
{
	struct sb_config cfg;
	char msg[256];

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "-h", (char *)NULL), SB_CONFIG_HELP);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--help", (char *)NULL), SB_CONFIG_HELP);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--version", (char *)NULL),
		     SB_CONFIG_VERSION);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "-p", "1", "--help", (char *)NULL),
		     SB_CONFIG_HELP);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--version", "-p", "1", (char *)NULL),
		     SB_CONFIG_VERSION);

	/* the usage text names every option of docs/protocol.md */
	static const char *const names[] = {
		"--port", "-p", "--bind", "-b", "--workers", "-w",
		"--max-message", "--max-field", "--max-room-peers",
		"--max-backlog", "--heartbeat", "--rate", "--drain-timeout",
		"--help", "-h", "--version", "--auth-secret", "--auth-secret-file",
		"--auth-public-key", "--auth-audience", "--auth-issuer",
		"--ice-server", "--turn-secret", "--turn-secret-file", "--turn-ttl",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strstr(sb_config_usage, names[i]))
			fprintf(stderr, "  usage lacks %s\n", names[i]);
		CHECK(strstr(sb_config_usage, names[i]) != NULL);
	}
}

static void test_unknown_and_missing(void)
{
	expect_refused("--nope", "--nope", (char *)NULL);
	expect_refused("--nope", "--nope=1", (char *)NULL);
	expect_refused("-x", "-x", (char *)NULL);
	expect_refused("-P", "-P", "80", (char *)NULL);
	expect_refused("port", "port", (char *)NULL);
	expect_refused("--por", "--por", "80", (char *)NULL);
	expect_refused("--portx", "--portx", "80", (char *)NULL);
	expect_refused("--port8080", "--port8080", (char *)NULL);
	expect_refused("-p8080", "-p8080", (char *)NULL);
	expect_refused("-p8080", "-p8080", "9000", (char *)NULL);
	expect_refused("-pp", "-pp", "9000", (char *)NULL);
	expect_refused("-bind", "-bind", "::1", (char *)NULL);
	expect_refused("-p=8080", "-p=8080", (char *)NULL);
	expect_refused("--", "--", (char *)NULL);
	expect_refused("extra", "-p", "1", "extra", (char *)NULL);
	expect_refused("--nope", "-p", "1", "--nope", (char *)NULL);
	/* a mistyped secret option: named without its value */
	expect_refused("unknown option '--auth-secrets'", "--auth-secrets=" SECRET,
		       (char *)NULL);
	expect_refused("unknown option '--turn-secret-fil'",
		       "--turn-secret-fil=" SECRET, (char *)NULL);

	/* a value-taking option at the end */
	expect_refused("--port", "--port", (char *)NULL);
	expect_refused("-p", "-p", (char *)NULL);
	expect_refused("-b", "-b", (char *)NULL);
	expect_refused("-w", "-w", (char *)NULL);
	expect_refused("--bind", "--bind", (char *)NULL);
	expect_refused("--heartbeat", "-p", "1", "--heartbeat", (char *)NULL);
	expect_refused("--log-level", "--log-level", (char *)NULL);
	expect_refused("--max-backlog", "--max-backlog", (char *)NULL);
}

/* Values that are not numbers, or not whole numbers, or out of range. */
static void test_bad_values(void)
{
	static const char *const int_options[] = {
		"--port", "--workers", "--max-message", "--max-field",
		"--max-room-peers", "--max-backlog",
	};
	static const char *const num_options[] = {
		"--heartbeat", "--rate", "--drain-timeout",
	};
	static const char *const never_numbers[] = {
		"", "abc", "-1", "-0", "+5", " 5", "5 ", "5x", "0x10", "1e3",
		"1,5", ".5", "5.", "1..2", "1.2.3", "inf", "nan", "--5", "\xc2\xb2",
	};
	static const char *const fractions[] = { "1.5", "0.5", "10.0", "2.000" };
	char joined[ARG_LEN];

	for (size_t o = 0; o < sizeof(int_options) / sizeof(int_options[0]); o++) {
		const char *name = int_options[o];

		for (size_t v = 0; v < sizeof(never_numbers) / sizeof(never_numbers[0]); v++) {
			expect_refused(name, name, never_numbers[v], (char *)NULL);
			snprintf(joined, sizeof(joined), "%s=%s", name, never_numbers[v]);
			expect_refused(name, joined, (char *)NULL);
		}
		for (size_t v = 0; v < sizeof(fractions) / sizeof(fractions[0]); v++)
			expect_refused(name, name, fractions[v], (char *)NULL);
		expect_refused(name, name, "99999999999999999999999", (char *)NULL);
		expect_refused(name, name, "18446744073709551617", (char *)NULL);
	}
	for (size_t o = 0; o < sizeof(num_options) / sizeof(num_options[0]); o++) {
		const char *name = num_options[o];

		for (size_t v = 0; v < sizeof(never_numbers) / sizeof(never_numbers[0]); v++)
			expect_refused(name, name, never_numbers[v], (char *)NULL);
		expect_refused(name, name, "1e400", (char *)NULL);
		expect_refused(name, name, "-0.5", (char *)NULL);
	}

	/* out of range, at each end */
	expect_refused("--port", "--port", "65536", (char *)NULL);
	expect_refused("--port", "-p", "100000", (char *)NULL);
	expect_refused("--workers", "--workers", "0", (char *)NULL);
	expect_refused("--workers", "-w", "1025", (char *)NULL);
	expect_refused("--max-message", "--max-message", "0", (char *)NULL);
	expect_refused("--max-field", "--max-field", "0", (char *)NULL);
	expect_refused("--max-field", "--max-field", "65537", (char *)NULL);
	expect_refused("--max-backlog", "--max-backlog", "1023", (char *)NULL);
	expect_refused("--max-backlog", "--max-backlog", "0", (char *)NULL);
	expect_refused("--heartbeat", "--heartbeat", "86401", (char *)NULL);
	expect_refused("--drain-timeout", "--drain-timeout", "86400.5", (char *)NULL);

	/* log levels are words */
	expect_refused("--log-level", "--log-level", "verbose", (char *)NULL);
	expect_refused("--log-level", "--log-level", "INFO", (char *)NULL);
	expect_refused("--log-level", "--log-level", "", (char *)NULL);
	expect_refused("--log-level", "--log-level", "2", (char *)NULL);
	expect_refused("--log-level", "--log-level=infos", (char *)NULL);

	/* a bind address must be given and fit */
	expect_refused("--bind", "--bind", "", (char *)NULL);
	expect_refused("--bind", "--bind=", (char *)NULL);
	{
		char longname[SB_BIND_MAX + 1];

		memset(longname, 'a', SB_BIND_MAX);
		longname[SB_BIND_MAX] = '\0';
		expect_refused("--bind", "--bind", longname, (char *)NULL);
		/* one shorter fits, with its terminating NUL */
		{
			struct sb_config cfg;
			char msg[256];

			longname[SB_BIND_MAX - 1] = '\0';
			CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "-b", longname,
					   (char *)NULL),
				     SB_CONFIG_RUN);
			CHECK_EQ_STR(cfg.bind, longname);
		}
	}
}

/* A long message is cut to the buffer and still terminated. */
static void test_message_fits_buffer(void)
{
	static struct args a;
	struct sb_config cfg;
	char msg[16];

	a.argc = 2;
	strcpy(a.buf[0], "switchboard");
	strcpy(a.buf[1], "--an-unknown-option-with-a-long-name");
	a.argv[0] = a.buf[0];
	a.argv[1] = a.buf[1];
	a.argv[2] = NULL;
	sb_config_defaults(&cfg);
	memset(msg, 'x', sizeof(msg));
	CHECK_EQ_INT(sb_config_parse(&cfg, a.argc, a.argv, msg, sizeof(msg)), -EINVAL);
	CHECK(memchr(msg, '\0', sizeof(msg)) != NULL);
	CHECK(strlen(msg) > 0);
}

/* A fake environment for sb_config_env: NAME=value pairs. */
static const char *const *fake_env;

static const char *fake_get(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = fake_env; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* Every option from its variable; empty and unset ones change nothing; the
 * command line, parsed after, wins; a bad value names the variable. */
static void test_environment(void)
{
	static const char *const env1[] = {
		"SWITCHBOARD_PORT=9001", "SWITCHBOARD_BIND=127.0.0.2",
		"SWITCHBOARD_WORKERS=3", "SWITCHBOARD_MAX_MESSAGE=1000",
		"SWITCHBOARD_MAX_FIELD=7", "SWITCHBOARD_MAX_ROOM_PEERS=5",
		"SWITCHBOARD_MAX_BACKLOG=4096", "SWITCHBOARD_HEARTBEAT=2.5",
		"SWITCHBOARD_RATE=10", "SWITCHBOARD_DRAIN_TIMEOUT=1.5",
		"SWITCHBOARD_LOG_LEVEL=debug", "SWITCHBOARD_UNKNOWN=1",
		"SWITCHBOARD_PORTS=1", NULL,
	};
	static const char *const env2[] = { "SWITCHBOARD_PORT=", NULL };
	static const char *const env3[] = { "SWITCHBOARD_MAX_FIELD=-1", NULL };
	struct sb_config cfg, def;
	char msg[256] = "";
	char p0[] = "switchboard", p1[] = "--port", p2[] = "9002";
	char *argv[] = { p0, p1, p2, NULL };

	sb_config_defaults(&def);
	cfg = def;
	fake_env = env1;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(cfg.port, 9001);
	CHECK_EQ_STR(cfg.bind, "127.0.0.2");
	CHECK_EQ_INT(cfg.workers, 3);
	CHECK_EQ_SIZE(cfg.max_message, 1000);
	CHECK_EQ_SIZE(cfg.max_field, 7);
	CHECK_EQ_INT((int)cfg.max_room_peers, 5);
	CHECK_EQ_SIZE(cfg.max_backlog, 4096);
	CHECK_EQ_DOUBLE(cfg.heartbeat, 2.5);
	CHECK_EQ_DOUBLE(cfg.rate, 10);
	CHECK_EQ_DOUBLE(cfg.drain_timeout, 1.5);
	CHECK_EQ_INT(cfg.log_level, SB_LOG_DEBUG);
	/* the command line, parsed after, wins */
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.port, 9002);
	CHECK_EQ_INT(cfg.workers, 3);

	cfg = def;
	fake_env = env2;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(cfg.port, def.port);

	cfg = def;
	fake_env = env3;
	msg[0] = '\0';
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "SWITCHBOARD_MAX_FIELD") != NULL);
	fake_env = NULL;
}

/* --allowed-origin is a list: repeatable on the command line, commas in
 * the environment, and the command line's values replace the
 * environment's; the connection limits parse like other counts. */
static void test_origins_and_limits(void)
{
	static const char *const env[] = {
		"SWITCHBOARD_ALLOWED_ORIGIN=https://a.example,https://b.example",
		"SWITCHBOARD_MAX_CONNECTIONS=100", NULL,
	};
	struct sb_config cfg;
	char msg[256] = "";
	char a0[] = "switchboard", a1[] = "--allowed-origin", a2[] = "https://c.example",
	     a3[] = "--allowed-origin=https://d.example", a4[] = "--max-connections-per-ip",
	     a5[] = "3";
	char *argv[] = { a0, a1, a2, a3, a4, a5, NULL };
	char b1[] = "--max-connections", b2[] = "-1";
	char *bad[] = { a0, b1, b2, NULL };

	sb_config_defaults(&cfg);
	CHECK_EQ_INT(cfg.norigins, 0);
	CHECK_EQ_INT((int)cfg.max_connections, 0);
	fake_env = env;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	fake_env = NULL;
	CHECK_EQ_INT(cfg.norigins, 2);
	CHECK_EQ_STR(cfg.origins[0], "https://a.example");
	CHECK_EQ_STR(cfg.origins[1], "https://b.example");
	CHECK_EQ_INT((int)cfg.max_connections, 100);
	CHECK_EQ_INT(sb_config_parse(&cfg, 6, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.norigins, 2);
	CHECK_EQ_STR(cfg.origins[0], "https://c.example");
	CHECK_EQ_STR(cfg.origins[1], "https://d.example");
	CHECK_EQ_INT((int)cfg.max_connections_per_ip, 3);
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, bad, msg, sizeof(msg)), -EINVAL);

	{
		char f1[] = "--log-format", f2[] = "json", f3[] = "xml";
		char *json[] = { a0, f1, f2, NULL }, *xml[] = { a0, f1, f3, NULL };

		CHECK_EQ_INT(cfg.log_json, 0);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, json, msg, sizeof(msg)), SB_CONFIG_RUN);
		CHECK_EQ_INT(cfg.log_json, 1);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, xml, msg, sizeof(msg)), -EINVAL);
	}
}

/* --trusted-proxy: a list of ranges like --allowed-origin, each checked;
 * --handshake-timeout: whole seconds from 1. */
/* --allowed-origin takes origins as browsers send them, and says how to
 * write one when given something else (a URL with a path, a host alone). */
static void test_origin_syntax(void)
{
	static const char *const good[] = {
		"https://app.example", "http://localhost:8080", "https://a.b.example:443",
		"http://127.0.0.1:3000", "http://[::1]:8080", "https://[2001:db8::1]",
		"chrome-extension://abcdefghij", "app+x.y-z://host", "null",
	};
	static const char *const bad[] = {
		"app.example", "https://app.example/", "https://app.example/path",
		"https://", "https://:443", "https://app.example:", "https://app.example:123456",
		"https://app.example:80x", "https://user@app.example", "https://a.example?x",
		"https://a.example#f", "https:/app.example", "://app.example", "1http://a",
		"https://a b.example", "https://a\\b", "*", "https://*.example.com/",
	};
	struct sb_config cfg;
	char msg[256];
	char a0[] = "switchboard", a1[] = "--allowed-origin", a2[SB_ORIGIN_MAX];
	char *argv[] = { a0, a1, a2, NULL };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sb_config_defaults(&cfg);
		snprintf(a2, sizeof(a2), "%s", good[i]);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
		CHECK_EQ_STR(cfg.origins[0], good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sb_config_defaults(&cfg);
		snprintf(a2, sizeof(a2), "%s", bad[i]);
		msg[0] = '\0';
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "not an origin") != NULL);
		CHECK(strstr(msg, "scheme://host[:port]") != NULL);
	}
}

/* What sb_config_env_unknown reports: one line per unknown name. */
static char unknown_seen[512];

static void record_unknown(void *arg, const char *name, size_t len, const char *near)
{
	size_t n = strlen(unknown_seen);

	(void)arg;
	snprintf(unknown_seen + n, sizeof(unknown_seen) - n, "%.*s>%s\n", (int)len,
		 name, near ? near : "-");
}

/* Variables that look like options but name none are found, with the one
 * they most likely misspell; the options' own, and others, are not. */
static void test_unknown_env(void)
{
	char e0[] = "SWITCHBOARD_PORT=1", e1[] = "SWITCHBOARD_PROT=2",
	     e2[] = "PATH=/bin", e3[] = "SWITCHBOARD_MAX_MESAGE=3",
	     e4[] = "SWITCHBOARD_TOTALLY_ELSE=4", e5[] = "SWITCHBOARD_=5",
	     e6[] = "SWITCHBOARD_ALLOWED_ORIGIN=https://a.example",
	     e7[] = "SWITCHBOARD_WORKER", e8[] = "switchboard_port=6",
	     e9[] = "SWITCHBOARD_TRUSTED_PROXY_=7";
	char *envp[] = { e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, NULL };

	unknown_seen[0] = '\0';
	CHECK_EQ_INT(sb_config_env_unknown(envp, record_unknown, NULL), 5);
	CHECK_EQ_STR(unknown_seen,
		     "SWITCHBOARD_PROT>SWITCHBOARD_PORT\n"
		     "SWITCHBOARD_MAX_MESAGE>SWITCHBOARD_MAX_MESSAGE\n"
		     "SWITCHBOARD_TOTALLY_ELSE>-\n"
		     "SWITCHBOARD_WORKER>SWITCHBOARD_WORKERS\n"
		     "SWITCHBOARD_TRUSTED_PROXY_>SWITCHBOARD_TRUSTED_PROXY\n");
	CHECK_EQ_INT(sb_config_env_unknown(NULL, record_unknown, NULL), 0);
}

static void test_trusted_proxies(void)
{
	static const char *const env[] = {
		"SWITCHBOARD_TRUSTED_PROXY=10.0.0.0/8,::1",
		"SWITCHBOARD_HANDSHAKE_TIMEOUT=3", NULL,
	};
	static const char *const bad_env[] = {
		"SWITCHBOARD_TRUSTED_PROXY=10.0.0.0/8,10.0.0.1/8", NULL,
	};
	struct sb_config cfg;
	char msg[256] = "";
	char a0[] = "switchboard", a1[] = "--trusted-proxy", a2[] = "192.0.2.0/24",
	     a3[] = "--handshake-timeout", a4[] = "1";
	char *argv[] = { a0, a1, a2, a3, a4, NULL };
	struct sb_addr in, out;

	sb_config_defaults(&cfg);
	CHECK_EQ_INT(cfg.ntrusted, 0);
	CHECK_EQ_INT(cfg.handshake_timeout, 10);
	fake_env = env;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	fake_env = NULL;
	CHECK_EQ_INT(cfg.ntrusted, 2);
	CHECK_EQ_INT(cfg.handshake_timeout, 3);
	CHECK(sb_addr_parse(&in, "10.200.0.1", 10));
	CHECK(sb_cidr_match(&cfg.trusted[0], &in));
	CHECK(sb_addr_parse(&in, "::1", 3));
	CHECK(sb_cidr_match(&cfg.trusted[1], &in));
	/* the command line's list replaces the environment's */
	CHECK_EQ_INT(sb_config_parse(&cfg, 5, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.ntrusted, 1);
	CHECK_EQ_INT(cfg.handshake_timeout, 1);
	CHECK(sb_addr_parse(&in, "192.0.2.77", 10));
	CHECK(sb_cidr_match(&cfg.trusted[0], &in));
	CHECK(sb_addr_parse(&out, "10.0.0.1", 8));
	CHECK(!sb_cidr_match(&cfg.trusted[0], &out));

	/* bad ranges name the option, or the variable */
	{
		const char *bad[] = { "10.0.0.1/8", "nonsense", "10.0.0.0/40", "", NULL };

		for (int i = 0; bad[i]; i++) {
			char v[32];
			char *args[] = { a0, a1, v, NULL };

			snprintf(v, sizeof(v), "%s", bad[i]);
			msg[0] = '\0';
			CHECK_EQ_INT(sb_config_parse(&cfg, 3, args, msg, sizeof(msg)),
				     -EINVAL);
			CHECK(strstr(msg, "--trusted-proxy") != NULL);
		}
	}
	sb_config_defaults(&cfg);
	fake_env = bad_env;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	fake_env = NULL;
	CHECK(strstr(msg, "SWITCHBOARD_TRUSTED_PROXY") != NULL);
	CHECK(strstr(msg, "10.0.0.1/8") != NULL);

	/* at most SB_TRUSTED_MAX */
	sb_config_defaults(&cfg);
	{
		char *args[2 * (SB_TRUSTED_MAX + 1) + 2];
		char vals[SB_TRUSTED_MAX + 1][32];
		int n = 0;

		args[n++] = a0;
		for (int i = 0; i <= SB_TRUSTED_MAX; i++) {
			snprintf(vals[i], sizeof(vals[i]), "10.%d.0.0/16", i);
			args[n++] = a1;
			args[n++] = vals[i];
		}
		args[n] = NULL;
		CHECK_EQ_INT(sb_config_parse(&cfg, n - 2, args, msg, sizeof(msg)),
			     SB_CONFIG_RUN);
		CHECK_EQ_INT(cfg.ntrusted, SB_TRUSTED_MAX);
		CHECK_EQ_INT(sb_config_parse(&cfg, n, args, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "at most") != NULL);
	}

	{
		char z[] = "0", f[] = "1.5";
		char *zero[] = { a0, a3, z, NULL }, *frac[] = { a0, a3, f, NULL };

		CHECK_EQ_INT(sb_config_parse(&cfg, 3, zero, msg, sizeof(msg)), -EINVAL);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, frac, msg, sizeof(msg)), -EINVAL);
	}
}

/* A list item in the environment longer than any valid value is refused
 * as it is, not cut to size and then checked: a range followed by spaces
 * and junk past the cut must not pass. */
static void test_env_long_items(void)
{
	static char origin[400], proxy[400];
	static const char *env_origin[] = { origin, NULL };
	static const char *env_proxy[] = { proxy, NULL };
	struct sb_config cfg;
	char msg[256] = "";

	snprintf(origin, sizeof(origin),
		 "SWITCHBOARD_ALLOWED_ORIGIN=https://a.example,%0300d", 7);
	snprintf(proxy, sizeof(proxy),
		 "SWITCHBOARD_TRUSTED_PROXY=10.0.0.0%250sx", "");

	sb_config_defaults(&cfg);
	fake_env = env_origin;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "SWITCHBOARD_ALLOWED_ORIGIN") != NULL);
	CHECK(strstr(msg, "300 bytes") != NULL);

	sb_config_defaults(&cfg);
	fake_env = env_proxy;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "SWITCHBOARD_TRUSTED_PROXY") != NULL);
	CHECK_EQ_INT(cfg.ntrusted, 0);
	fake_env = NULL;
}

/* --redis and --node-timeout: parsed, from the environment too, refused
 * without the password in the message, and the password masked in the
 * summary. */
static void test_cluster(void)
{
	static const char *const env[] = {
		"SWITCHBOARD_REDIS=redis://:envsecret@10.0.0.7:6390/2",
		"SWITCHBOARD_NODE_TIMEOUT=4.5", NULL,
	};
	struct sb_config cfg;
	char msg[1024] = "", out[1024];

	sb_config_defaults(&cfg);
	CHECK(!cfg.redis.set);
	CHECK(cfg.node_timeout == 10);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--redis", "redis://:hunter2@127.0.0.1:7000/1",
			   "--node-timeout", "3", NULL), SB_CONFIG_RUN);
	CHECK(cfg.redis.set);
	CHECK_EQ_STR(cfg.redis.host, "127.0.0.1");
	CHECK_EQ_INT(cfg.redis.port, 7000);
	CHECK_EQ_STR(cfg.redis.password, "hunter2");
	CHECK(cfg.node_timeout == 3);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK(strstr(out, ", cluster redis://:***@127.0.0.1:7000/1, node timeout 3 s") != NULL);
	CHECK(strstr(out, "hunter2") == NULL);

	sb_config_defaults(&cfg);
	fake_env = env;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	fake_env = NULL;
	CHECK_EQ_STR(cfg.redis.password, "envsecret");
	CHECK_EQ_INT(cfg.redis.db, 2);
	CHECK(cfg.node_timeout == 4.5);

	expect_refused("must start with redis://", "--redis", "localhost:6379", NULL);
	expect_refused("port must be", "--redis", "redis://:hunter2@localhost:99999", NULL);
	expect_refused("--node-timeout", "--node-timeout", "0", NULL);
	expect_refused("--node-timeout", "--node-timeout", "3601", NULL);
	/* the password is not in the message */
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--redis", "redis://:hunter2@bad host", NULL),
		     -EINVAL);
	CHECK(strstr(msg, "hunter2") == NULL);
	CHECK(strstr(msg, "--redis") != NULL);
}

/* The summary logged at start: every part, singular and plural, and cut
 * to fit a small buffer. */
static void test_describe(void)
{
	struct sb_config cfg;
	char out[1024], small[24];

	sb_config_defaults(&cfg);
	cfg.workers = 1;
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(out, "1 worker, TLS off, Origin any, limits: connections unlimited, "
			  "per address unlimited, peers per room unlimited, message 65536 B, "
			  "field 128 B, backlog 1048576 B, rate off, heartbeat 30 s, handshake 10 s, "
			  "tokens off, ICE servers none");
	cfg.workers = 4;
	strcpy(cfg.tls_cert, "c.pem");
	strcpy(cfg.origins[0], "https://a.example");
	strcpy(cfg.origins[1], "null");
	cfg.norigins = 2;
	cfg.max_connections = 10;
	cfg.max_connections_per_ip = 2;
	cfg.max_room_peers = 8;
	cfg.rate = 2.5;
	cfg.heartbeat = 0;
	cfg.ntrusted = 2;
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(out, "4 workers, TLS on, Origin https://a.example null, limits: "
			  "connections 10, per address 2, peers per room 8, message 65536 B, "
			  "field 128 B, backlog 1048576 B, rate 2.5/s, heartbeat off, handshake 10 s, "
			  "2 trusted proxies, tokens off, ICE servers none");
	sb_config_describe(&cfg, small, sizeof(small));
	CHECK_EQ_STR(small, "4 workers, TLS on, Orig");
	sb_config_describe(&cfg, small, 1);
	CHECK_EQ_STR(small, "");
}

/* ------------------------------------------------ tokens, ICE and TURN */

/* A directory of the test's own for secret files, removed at the end. */
static char tmpdir[] = "/tmp/sb-test-config-XXXXXX";

/* Writes data[0..len) to the file name in tmpdir; its path into path. */
static void write_file(const char *name, const void *data, size_t len,
		       char path[256])
{
	FILE *f;

	snprintf(path, 256, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_EQ_SIZE(fwrite(data, 1, len, f), len);
	CHECK_EQ_INT(fclose(f), 0);
}

/* Parses the NULL-terminated arguments over the defaults, and wants them
 * accepted and then refused by sb_config_check with a one-line message
 * holding mention and no secret. */
static void check_refused(const char *mention, ...)
{
	static struct args a;
	struct sb_config cfg;
	char msg[1024] = "";
	va_list ap;

	va_start(ap, mention);
	args_build(&a, ap);
	va_end(ap);
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, a.argc, a.argv, msg, sizeof(msg)),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(sb_config_check(&cfg, msg, sizeof(msg)), -EINVAL);
	CHECK(strchr(msg, '\n') == NULL);
	no_secret(msg);
	if (!strstr(msg, mention))
		fprintf(stderr, "  message '%s' does not mention '%s'\n", msg, mention);
	CHECK(strstr(msg, mention) != NULL);
}

/* The arguments pass sb_config_parse and sb_config_check. */
static void check_accepted(struct sb_config *cfg, ...)
{
	static struct args a;
	char msg[1024] = "";
	va_list ap;

	va_start(ap, cfg);
	args_build(&a, ap);
	va_end(ap);
	sb_config_defaults(cfg);
	CHECK_EQ_INT(sb_config_parse(cfg, a.argc, a.argv, msg, sizeof(msg)),
		     SB_CONFIG_RUN);
	if (sb_config_check(cfg, msg, sizeof(msg)))
		fprintf(stderr, "  refused: %s\n", msg);
	CHECK_EQ_INT(sb_config_check(cfg, msg, sizeof(msg)), 0);
}

static void check_secret(const struct sb_secret *s, const void *want, size_t len,
			 unsigned from)
{
	CHECK_EQ_MEM(s->bytes, s->len, want, len);
	CHECK_EQ_INT(s->from, from);
	for (size_t i = len; i < SB_SECRET_MAX; i++)
		CHECK_EQ_INT(s->bytes[i], 0);
}

/* --auth-secret and --turn-secret: the value as it is, any length up to
 * SB_SECRET_MAX, and the last one given wins with nothing of an earlier
 * one left. */
static void test_secret_values(void)
{
	static char big[SB_SECRET_MAX + 2];
	struct sb_config cfg;
	char msg[1024];
	char a0[] = "switchboard", a1[] = "--auth-secret", a2[] = "--turn-secret";
	char *argv[] = { a0, a1, big, NULL };

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--auth-secret", SECRET,
			   "--turn-secret=" SECRET2, (char *)NULL), SB_CONFIG_RUN);
	check_secret(&cfg.auth_secret, SECRET, strlen(SECRET), SB_SECRET_ARG);
	check_secret(&cfg.turn_secret, SECRET2, strlen(SECRET2), SB_SECRET_ARG);

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--auth-secret", "a long first one",
			   "--auth-secret=xy", (char *)NULL), SB_CONFIG_RUN);
	check_secret(&cfg.auth_secret, "xy", 2, SB_SECRET_ARG);

	memset(big, 'k', SB_SECRET_MAX);
	big[SB_SECRET_MAX] = '\0';
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	check_secret(&cfg.auth_secret, big, SB_SECRET_MAX, SB_SECRET_ARG);
	argv[1] = a2;
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	check_secret(&cfg.turn_secret, big, SB_SECRET_MAX, SB_SECRET_ARG);
	big[SB_SECRET_MAX] = 'k';
	big[SB_SECRET_MAX + 1] = '\0';
	for (int i = 0; i < 2; i++) {
		argv[1] = i ? a2 : a1;
		sb_config_defaults(&cfg);
		msg[0] = '\0';
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, argv[1]) != NULL);
		CHECK(strstr(msg, "longer than 4096 bytes") != NULL);
		CHECK(strstr(msg, "kkkk") == NULL);
	}

	expect_refused("--auth-secret", "--auth-secret", "", (char *)NULL);
	expect_refused("--auth-secret", "--auth-secret=", (char *)NULL);
	expect_refused("--auth-secret", "--auth-secret", (char *)NULL);
	expect_refused("--turn-secret", "--turn-secret=", (char *)NULL);
}

/* Expects --auth-secret-file (or --turn-secret-file) path to be refused
 * with a message holding mention, naming the option and no secret. */
static void file_refused(const char *opt, const char *path, const char *mention)
{
	struct sb_config cfg;
	char msg[1024];

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), opt, path, (char *)NULL), -EINVAL);
	no_secret(msg);
	CHECK(strchr(msg, '\n') == NULL);
	if (!strstr(msg, mention) || !strstr(msg, opt))
		fprintf(stderr, "  '%s' lacks '%s' or '%s'\n", msg, mention, opt);
	CHECK(strstr(msg, mention) != NULL);
	CHECK(strstr(msg, opt) != NULL);
}

/* The secret files: one trailing newline dropped, the bytes kept as they
 * are otherwise, bounded, not empty; an unreadable file named with the
 * reason. */
static void test_secret_files(void)
{
	static const struct {
		const char *content;
		size_t len;
		const char *want;
		size_t want_len;
	} cases[] = {
		{ SECRET "\n", sizeof(SECRET), SECRET, sizeof(SECRET) - 1 },
		{ SECRET "\r\n", sizeof(SECRET) + 1, SECRET, sizeof(SECRET) - 1 },
		{ SECRET, sizeof(SECRET) - 1, SECRET, sizeof(SECRET) - 1 },
		/* only one newline: the rest is the secret's */
		{ SECRET "\n\n", sizeof(SECRET) + 1, SECRET "\n", sizeof(SECRET) },
		{ SECRET "\r", sizeof(SECRET), SECRET "\r", sizeof(SECRET) },
		{ " " SECRET " \n", sizeof(SECRET) + 2, " " SECRET " ", sizeof(SECRET) + 1 },
		/* a binary secret, a NUL inside */
		{ "a\0b\xff\n", 5, "a\0b\xff", 4 },
	};
	static const char *const opts[] = { "--auth-secret-file", "--turn-secret-file" };
	static char big[SB_SECRET_MAX + 2];
	struct sb_config cfg;
	char msg[1024], path[256], want[512];

	for (size_t o = 0; o < 2; o++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const struct sb_secret *s = o ? &cfg.turn_secret : &cfg.auth_secret;

			write_file("secret", cases[i].content, cases[i].len, path);
			CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), opts[o], path,
					   (char *)NULL), SB_CONFIG_RUN);
			check_secret(s, cases[i].want, cases[i].want_len, SB_SECRET_FILE);
			CHECK_EQ_SIZE((o ? cfg.auth_secret : cfg.turn_secret).len, 0);
		}

		/* exactly the bound, and one more byte (a newline too) */
		memset(big, 's', SB_SECRET_MAX);
		write_file("big", big, SB_SECRET_MAX, path);
		CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), opts[o], path, (char *)NULL),
			     SB_CONFIG_RUN);
		CHECK_EQ_SIZE(o ? cfg.turn_secret.len : cfg.auth_secret.len, SB_SECRET_MAX);
		big[SB_SECRET_MAX] = '\n';
		write_file("big", big, SB_SECRET_MAX + 1, path);
		file_refused(opts[o], path, "is over 4096 bytes");
		big[SB_SECRET_MAX] = 's';
		write_file("big", big, SB_SECRET_MAX + 1, path);
		file_refused(opts[o], path, "is over 4096 bytes");
		CHECK(strstr(path, tmpdir) == path);

		write_file("empty", "", 0, path);
		file_refused(opts[o], path, "is empty");
		write_file("newline", "\n", 1, path);
		file_refused(opts[o], path, "is empty");
		write_file("crlf", "\r\n", 2, path);
		file_refused(opts[o], path, "is empty");
		expect_refused(opts[o], opts[o], "", (char *)NULL);

		snprintf(path, sizeof(path), "%s/missing", tmpdir);
		snprintf(want, sizeof(want), "cannot read %s for %s: %s", path, opts[o],
			 strerror(ENOENT));
		file_refused(opts[o], path, want);
		snprintf(want, sizeof(want), "cannot read %s for %s: %s", tmpdir,
			 opts[o], strerror(EISDIR));
		file_refused(opts[o], tmpdir, want);
		/* root reads any file: an unreadable one only for others */
		write_file("closed", SECRET, strlen(SECRET), path);
		CHECK_EQ_INT(chmod(path, 0), 0);
		if (geteuid() != 0) {
			snprintf(want, sizeof(want), "cannot read %s for %s: %s", path,
				 opts[o], strerror(EACCES));
			file_refused(opts[o], path, want);
		}
	}

	/* both forms: both bits, for sb_config_check to refuse */
	write_file("secret", SECRET2 "\n", sizeof(SECRET2), path);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--auth-secret", SECRET,
			   "--auth-secret-file", path, (char *)NULL), SB_CONFIG_RUN);
	check_secret(&cfg.auth_secret, SECRET2, strlen(SECRET2),
		     SB_SECRET_ARG | SB_SECRET_FILE);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--turn-secret-file", path,
			   "--turn-secret", SECRET, (char *)NULL), SB_CONFIG_RUN);
	check_secret(&cfg.turn_secret, SECRET, strlen(SECRET),
		     SB_SECRET_ARG | SB_SECRET_FILE);
}

/* --auth-public-key, --auth-audience, --auth-issuer: text, bounded, with no
 * control character. */
static void test_token_options(void)
{
	static const char *const opts[] = {
		"--auth-public-key", "--auth-audience", "--auth-issuer",
	};
	struct sb_config cfg;
	char msg[1024], v[SB_PATH_MAX + 2];

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--auth-public-key", "/etc/sb/jwt.pem",
			   "--auth-audience=signal app", "--auth-issuer",
			   "https://auth.example/", (char *)NULL), SB_CONFIG_RUN);
	CHECK_EQ_STR(cfg.auth_public_key, "/etc/sb/jwt.pem");
	CHECK_EQ_STR(cfg.auth_audience, "signal app");
	CHECK_EQ_STR(cfg.auth_issuer, "https://auth.example/");
	CHECK_EQ_SIZE(cfg.auth_secret.len, 0);

	for (size_t o = 0; o < 3; o++) {
		size_t cap = o ? SB_CLAIM_MAX : SB_PATH_MAX;
		char *field = o == 0 ? cfg.auth_public_key
				     : o == 1 ? cfg.auth_audience : cfg.auth_issuer;
		char a0[] = "switchboard", a1[32];
		char *argv[] = { a0, a1, v, NULL };

		snprintf(a1, sizeof(a1), "%s", opts[o]);
		expect_refused(opts[o], opts[o], "", (char *)NULL);
		expect_refused("control character", opts[o], "a\tb", (char *)NULL);
		expect_refused("control character", opts[o], "a\x7f", (char *)NULL);
		expect_refused("control character", opts[o], "x\n", (char *)NULL);
		/* the longest that fits, and one more */
		memset(v, 'a', cap - 1);
		v[cap - 1] = '\0';
		sb_config_defaults(&cfg);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
		CHECK_EQ_SIZE(strlen(field), cap - 1);
		v[cap - 1] = 'a';
		v[cap] = '\0';
		sb_config_defaults(&cfg);
		CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, opts[o]) != NULL);
	}
}

/* --ice-server: the URIs of RFC 7064 and 7065 that browsers take, kept in
 * order; every other form refused saying what is wrong, without quoting
 * what could be a password or break the line. */
static void test_ice_servers(void)
{
	static const char *const good[] = {
		"stun:stun.l.google.com:19302", "stuns:stun.example.com",
		"turn:turn.example.com", "turn:turn.example.com:3478?transport=udp",
		"turns:turn.example.com:5349?transport=tcp", "turn:192.0.2.10:3478",
		"turn:[2001:db8::1]:3478", "stun:[::1]", "turn:a_b-c.example:1",
		"turn:h:65535", "turns:[::ffff:192.0.2.1]?transport=udp",
	};
	static const struct {
		const char *uri, *why;
	} bad[] = {
		{ "http://turn.example.com", "not a stun:, stuns:, turn: or turns: URI" },
		{ "STUN:stun.example.com", "not a stun:, stuns:, turn: or turns: URI" },
		{ "turn", "not a stun:" },
		{ "stun:", "no host" },
		{ "turn::3478", "no host" },
		{ "stun://stun.example.com", "'//' after the scheme" },
		{ "stun:x:0", "a bad port" },
		{ "stun:x:65536", "a bad port" },
		{ "stun:x:", "a bad port" },
		{ "stun:x:0003478", "a bad port" },
		{ "stun:x:34a", "something after" },
		{ "stun:x?transport=udp", "stun: URIs do not take" },
		{ "turn:x?transport=sctp", "other than ?transport=udp" },
		{ "turn:x?transport=udp&x=1", "other than ?transport=udp" },
		{ "turn:x?", "other than ?transport=udp" },
		{ "turn:[::1", "a bad IPv6 address" },
		{ "turn:[]", "a bad IPv6 address" },
		{ "turn:[zz::1]", "a bad IPv6 address" },
		{ "turn:[192.0.2.1]", "a bad IPv6 address" },
		{ "turn:x/path", "something after" },
		{ "turn:x:3478/", "something after" },
		{ "turn:h\xc3\xa9.example", "something after" },
		{ "turn:ex ample", "a space, a quote" },
		{ "turn:x\"", "a space, a quote" },
		{ "turn:x'", "a space, a quote" },
		{ "turn:x\\y", "a space, a quote" },
		{ "turn:x\n", "a space, a quote" },
		{ "turn:x\x7f", "a space, a quote" },
		{ "turn:x\x01", "a space, a quote" },
		{ "turn:user:" SECRET "@turn.example.com", "takes no user or password" },
		{ "", "needs a value" },
	};
	struct sb_config cfg;
	char msg[1024], uri[SB_ICE_URI_MAX + 2];
	char a0[] = "switchboard", a1[] = "--ice-server";
	char *argv[2 * SB_ICE_SERVERS_MAX + 4];
	char many[SB_ICE_SERVERS_MAX + 1][32];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--ice-server", good[i],
				   (char *)NULL), SB_CONFIG_RUN);
		CHECK_EQ_INT(cfg.ice_count, 1);
		CHECK_EQ_STR(cfg.ice_servers[0], good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_refused(bad[i].why, "--ice-server", bad[i].uri, (char *)NULL);
		expect_refused("--ice-server", "--ice-server", bad[i].uri, (char *)NULL);
	}
	/* a syntax error quotes the URI and says how to write one */
	expect_refused("bad value 'turn:x/path' for --ice-server (something after "
		       "the host and port): give stun:, stuns:, turn: or turns: then "
		       "HOST[:PORT]", "--ice-server", "turn:x/path", (char *)NULL);

	/* in the order given, stun and turn mixed */
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--ice-server", good[2],
			   "--ice-server=" "stun:s.example", "--ice-server", good[4],
			   (char *)NULL), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.ice_count, 3);
	CHECK_EQ_STR(cfg.ice_servers[0], good[2]);
	CHECK_EQ_STR(cfg.ice_servers[1], "stun:s.example");
	CHECK_EQ_STR(cfg.ice_servers[2], good[4]);

	/* 255 bytes fit, 256 do not */
	memcpy(uri, "stun:", 5);
	memset(uri + 5, 'a', SB_ICE_URI_MAX - 6);
	uri[SB_ICE_URI_MAX - 1] = '\0';
	argv[0] = a0;
	argv[1] = a1;
	argv[2] = uri;
	argv[3] = NULL;
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_STR(cfg.ice_servers[0], uri);
	uri[SB_ICE_URI_MAX - 1] = 'a';
	uri[SB_ICE_URI_MAX] = '\0';
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 3, argv, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "--ice-server is longer than 255 bytes") != NULL);

	/* at most SB_ICE_SERVERS_MAX */
	for (int i = 0; i <= SB_ICE_SERVERS_MAX; i++) {
		snprintf(many[i], sizeof(many[i]), "stun:s%d.example", i);
		argv[1 + 2 * i] = a1;
		argv[2 + 2 * i] = many[i];
	}
	argv[2 * SB_ICE_SERVERS_MAX + 3] = NULL;
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 2 * SB_ICE_SERVERS_MAX + 1, argv, msg,
				     sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.ice_count, SB_ICE_SERVERS_MAX);
	CHECK_EQ_STR(cfg.ice_servers[SB_ICE_SERVERS_MAX - 1], many[SB_ICE_SERVERS_MAX - 1]);
	sb_config_defaults(&cfg);
	CHECK_EQ_INT(sb_config_parse(&cfg, 2 * SB_ICE_SERVERS_MAX + 3, argv, msg,
				     sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "at most 16 values for --ice-server") != NULL);
}

/* --turn-ttl: whole seconds from a minute to a week. */
static void test_turn_ttl(void)
{
	struct sb_config cfg;
	char msg[256];

	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--turn-ttl", "60", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.turn_ttl, 60);
	CHECK_EQ_INT(parse(&cfg, msg, sizeof(msg), "--turn-ttl=604800", (char *)NULL),
		     SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.turn_ttl, 604800);
	CHECK_EQ_INT(cfg.port, 8080);
	expect_refused("from 60 to 604800", "--turn-ttl", "59", (char *)NULL);
	expect_refused("from 60 to 604800", "--turn-ttl", "604801", (char *)NULL);
	expect_refused("--turn-ttl", "--turn-ttl", "3600.5", (char *)NULL);
	expect_refused("--turn-ttl", "--turn-ttl", "-60", (char *)NULL);
	expect_refused("--turn-ttl", "--turn-ttl", "1h", (char *)NULL);
	expect_refused("--turn-ttl", "--turn-ttl", "", (char *)NULL);
}

/* Every new option from its variable; SWITCHBOARD_ICE_SERVER as a list
 * split at commas and spaces; the command line wins, or, for two forms of
 * one secret, both are seen and refused by the check. */
static void test_environment_tokens_ice(void)
{
	static char file_var[300], turn_file_var[300];
	static const char *env1[] = {
		"SWITCHBOARD_AUTH_SECRET=" SECRET, "SWITCHBOARD_AUTH_AUDIENCE=app",
		"SWITCHBOARD_AUTH_ISSUER=https://auth.example",
		"SWITCHBOARD_ICE_SERVER= stun:a.example, turn:b.example:3478,,\t"
		"turns:c.example?transport=tcp ,",
		"SWITCHBOARD_TURN_SECRET=" SECRET2, "SWITCHBOARD_TURN_TTL=600", NULL,
	};
	static const char *env2[] = {
		file_var, "SWITCHBOARD_AUTH_PUBLIC_KEY=/k.pem", turn_file_var, NULL,
	};
	static const char *env_bad_uri[] = {
		"SWITCHBOARD_ICE_SERVER=stun:a.example,stun:b.example/x", NULL,
	};
	static const char *env_bad_file[] = { file_var, NULL };
	static const char *env_empty_list[] = { "SWITCHBOARD_ICE_SERVER= , ,", NULL };
	struct sb_config cfg;
	char msg[1024] = "", path[256], out[2048];
	char a0[] = "switchboard", a1[] = "--ice-server", a2[] = "stun:cli.example",
	     a3[] = "--auth-secret", a4[] = "from-the-command-line";
	char *argv[] = { a0, a1, a2, a3, a4, NULL };

	sb_config_defaults(&cfg);
	fake_env = env1;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	check_secret(&cfg.auth_secret, SECRET, strlen(SECRET), SB_SECRET_ARG);
	CHECK_EQ_STR(cfg.auth_audience, "app");
	CHECK_EQ_STR(cfg.auth_issuer, "https://auth.example");
	CHECK_EQ_INT(cfg.ice_count, 3);
	CHECK_EQ_STR(cfg.ice_servers[0], "stun:a.example");
	CHECK_EQ_STR(cfg.ice_servers[1], "turn:b.example:3478");
	CHECK_EQ_STR(cfg.ice_servers[2], "turns:c.example?transport=tcp");
	check_secret(&cfg.turn_secret, SECRET2, strlen(SECRET2), SB_SECRET_ARG);
	CHECK_EQ_INT(cfg.turn_ttl, 600);
	CHECK_EQ_INT(sb_config_check(&cfg, msg, sizeof(msg)), 0);
	sb_config_describe(&cfg, out, sizeof(out));
	no_secret(out);
	/* the command line's list replaces the environment's; its secret wins */
	CHECK_EQ_INT(sb_config_parse(&cfg, 5, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.ice_count, 1);
	CHECK_EQ_STR(cfg.ice_servers[0], "stun:cli.example");
	check_secret(&cfg.auth_secret, a4, strlen(a4), SB_SECRET_ARG);

	/* the file forms, and the key */
	write_file("auth", SECRET "\n", sizeof(SECRET), path);
	snprintf(file_var, sizeof(file_var), "SWITCHBOARD_AUTH_SECRET_FILE=%s", path);
	write_file("turn", SECRET2 "\r\n", sizeof(SECRET2) + 1, path);
	snprintf(turn_file_var, sizeof(turn_file_var),
		 "SWITCHBOARD_TURN_SECRET_FILE=%s", path);
	sb_config_defaults(&cfg);
	fake_env = env2;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	check_secret(&cfg.auth_secret, SECRET, strlen(SECRET), SB_SECRET_FILE);
	check_secret(&cfg.turn_secret, SECRET2, strlen(SECRET2), SB_SECRET_FILE);
	CHECK_EQ_STR(cfg.auth_public_key, "/k.pem");
	/* a file in the environment and a secret on the command line: both
	 * are seen, and the check refuses them */
	CHECK_EQ_INT(sb_config_parse(&cfg, 5, argv, msg, sizeof(msg)), SB_CONFIG_RUN);
	CHECK_EQ_INT(cfg.auth_secret.from, SB_SECRET_ARG | SB_SECRET_FILE);
	CHECK_EQ_INT(sb_config_check(&cfg, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "--auth-secret, --auth-secret-file and --auth-public-key "
			  "are all set") != NULL);

	/* a bad item names the variable */
	sb_config_defaults(&cfg);
	fake_env = env_bad_uri;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "SWITCHBOARD_ICE_SERVER: bad value 'stun:b.example/x'") != NULL);
	snprintf(file_var, sizeof(file_var), "SWITCHBOARD_AUTH_SECRET_FILE=%s/none",
		 tmpdir);
	sb_config_defaults(&cfg);
	fake_env = env_bad_file;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "SWITCHBOARD_AUTH_SECRET_FILE: cannot read ") != NULL);
	CHECK(strstr(msg, "/none for --auth-secret-file") != NULL);
	/* separators only: no server */
	sb_config_defaults(&cfg);
	fake_env = env_empty_list;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(cfg.ice_count, 0);
	fake_env = NULL;

	/* the new variables are known; a misspelt one is named */
	{
		char e0[] = "SWITCHBOARD_AUTH_SECRET_FILE=x", e1[] = "SWITCHBOARD_ICE_SERVER=x",
		     e2[] = "SWITCHBOARD_TURN_TTL=60", e3[] = "SWITCHBOARD_TURN_SECRT=x",
		     e4[] = "SWITCHBOARD_AUTH_ISSUER=x", e5[] = "SWITCHBOARD_ICE_SERVERS=x";
		char *envp[] = { e0, e1, e2, e3, e4, e5, NULL };

		unknown_seen[0] = '\0';
		CHECK_EQ_INT(sb_config_env_unknown(envp, record_unknown, NULL), 2);
		CHECK_EQ_STR(unknown_seen,
			     "SWITCHBOARD_TURN_SECRT>SWITCHBOARD_TURN_SECRET\n"
			     "SWITCHBOARD_ICE_SERVERS>SWITCHBOARD_ICE_SERVER\n");
	}
}

/* What sb_config_check refuses across the new options, each with a line
 * that says how to fix it, and what it lets through. */
static void test_check_tokens_turn(void)
{
	struct sb_config cfg;
	char key[256], path[256];

	write_file("s", SECRET "\n", sizeof(SECRET), path);
	write_file("key.pem", "-----BEGIN PUBLIC KEY-----\n", 27, key);

	check_accepted(&cfg, (char *)NULL);
	check_accepted(&cfg, "--auth-secret", SECRET, (char *)NULL);
	check_accepted(&cfg, "--auth-secret-file", path, (char *)NULL);
	check_accepted(&cfg, "--auth-public-key", key, "--auth-audience", "a",
		       "--auth-issuer", "i", (char *)NULL);
	check_accepted(&cfg, "--auth-secret", SECRET, "--auth-issuer", "i", (char *)NULL);
	check_accepted(&cfg, "--ice-server", "stun:s.example", (char *)NULL);
	check_accepted(&cfg, "--ice-server", "turn:t.example", "--turn-secret", SECRET,
		       (char *)NULL);
	check_accepted(&cfg, "--ice-server", "stun:s.example", "--ice-server",
		       "turns:t.example", "--turn-secret-file", path, (char *)NULL);

	check_refused("--auth-secret and --auth-secret-file are both set",
		      "--auth-secret", SECRET2, "--auth-secret-file", path, (char *)NULL);
	check_refused("--auth-secret and --auth-public-key are both set",
		      "--auth-public-key", key, "--auth-secret", SECRET, (char *)NULL);
	check_refused("--auth-secret-file and --auth-public-key are both set",
		      "--auth-secret-file", path, "--auth-public-key", key, (char *)NULL);
	check_refused("keep only one of them", "--auth-secret-file", path,
		      "--auth-public-key", key, (char *)NULL);
	check_refused("--auth-secret, --auth-secret-file and --auth-public-key are all set",
		      "--auth-secret-file", path, "--auth-public-key", key,
		      "--auth-secret", SECRET, (char *)NULL);
	check_refused("--auth-audience checks room tokens, which are off: set "
		      "--auth-secret-file, --auth-secret or --auth-public-key too, "
		      "or drop --auth-audience", "--auth-audience", "a", (char *)NULL);
	check_refused("--auth-issuer checks room tokens", "--auth-issuer", "i",
		      "--ice-server", "stun:x", (char *)NULL);
	check_refused("--turn-secret and --turn-secret-file are both set",
		      "--ice-server", "turn:t", "--turn-secret-file", path,
		      "--turn-secret", SECRET2, (char *)NULL);
	check_refused("--ice-server turn:t.example:3478 needs a TURN secret for its "
		      "credentials: set --turn-secret-file (or --turn-secret)",
		      "--ice-server", "stun:s.example", "--ice-server",
		      "turn:t.example:3478", (char *)NULL);
	check_refused("--ice-server turns:t.example needs a TURN secret",
		      "--ice-server", "turns:t.example", "--auth-secret", SECRET,
		      (char *)NULL);
	check_refused("--turn-secret is set but no --ice-server is a turn: or turns: "
		      "URI", "--turn-secret", SECRET, (char *)NULL);
	check_refused("--turn-secret-file is set but no --ice-server is a turn:",
		      "--ice-server", "stun:s.example", "--turn-secret-file", path,
		      (char *)NULL);
	check_refused("--tls-cert and --tls-key go together", "--tls-cert", "c.pem",
		      "--auth-secret", SECRET, (char *)NULL);
}

/* The summary says how tokens are checked and how many ICE servers are
 * given, and never holds a secret, however given. */
static void test_describe_tokens_ice(void)
{
	static const char *const env[] = {
		"SWITCHBOARD_AUTH_SECRET=" SECRET, "SWITCHBOARD_TURN_SECRET=" SECRET2,
		"SWITCHBOARD_ICE_SERVER=turn:t.example", NULL,
	};
	struct sb_config cfg;
	char out[4096], path[256], msg[256];
	const char *tail;

	check_accepted(&cfg, "--workers", "1", (char *)NULL);
	sb_config_describe(&cfg, out, sizeof(out));
	tail = strstr(out, ", handshake 10 s");
	CHECK(tail != NULL);
	CHECK_EQ_STR(tail, ", handshake 10 s, tokens off, ICE servers none");

	check_accepted(&cfg, "--auth-secret", SECRET, "--ice-server", "stun:a",
		       "--ice-server", "stun:b", (char *)NULL);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(strstr(out, ", handshake"),
		     ", handshake 10 s, tokens HS256, ICE servers 2");

	write_file("s", SECRET "\n", sizeof(SECRET), path);
	check_accepted(&cfg, "--auth-secret-file", path, "--auth-audience", "app",
		       "--auth-issuer", "https://auth.example", "--ice-server", "stun:a",
		       "--ice-server", "turn:t:3478", "--ice-server", "turns:t:5349",
		       "--turn-secret", SECRET2, "--turn-ttl", "600", (char *)NULL);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(strstr(out, ", handshake"),
		     ", handshake 10 s, tokens HS256 (audience app, issuer "
		     "https://auth.example), ICE servers 3 (TURN credentials for 600 s)");

	check_accepted(&cfg, "--auth-public-key", "/etc/sb/k.pem", "--ice-server",
		       "turn:t", "--turn-secret-file", path, (char *)NULL);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(strstr(out, ", handshake"),
		     ", handshake 10 s, tokens RS256 or ES256 (key /etc/sb/k.pem), "
		     "ICE servers 1 (TURN credentials for 86400 s)");
	no_secret(out);

	check_accepted(&cfg, "--auth-public-key", "/k.pem", "--auth-issuer", "iss",
		       "--redis", "redis://r:1", (char *)NULL);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK_EQ_STR(strstr(out, ", handshake"),
		     ", handshake 10 s, tokens RS256 or ES256 (key /k.pem, issuer iss), "
		     "ICE servers none, cluster redis://r:1/0, node timeout 10 s");

	/* from the environment */
	sb_config_defaults(&cfg);
	fake_env = env;
	CHECK_EQ_INT(sb_config_env(&cfg, fake_get, msg, sizeof(msg)), 0);
	fake_env = NULL;
	CHECK_EQ_INT(sb_config_check(&cfg, msg, sizeof(msg)), 0);
	sb_config_describe(&cfg, out, sizeof(out));
	CHECK(strstr(out, ", tokens HS256, ICE servers 1 (TURN credentials for 86400 s)"));
	no_secret(out);
}

int main(void)
{
	RUN_TEST(test_defaults);
	RUN_TEST(test_no_arguments);
	RUN_TEST(test_each_option_each_form);
	RUN_TEST(test_options_together);
	RUN_TEST(test_help_and_version);
	RUN_TEST(test_unknown_and_missing);
	RUN_TEST(test_bad_values);
	RUN_TEST(test_message_fits_buffer);
	RUN_TEST(test_environment);
	RUN_TEST(test_origins_and_limits);
	RUN_TEST(test_origin_syntax);
	RUN_TEST(test_unknown_env);
	RUN_TEST(test_trusted_proxies);
	RUN_TEST(test_env_long_items);
	RUN_TEST(test_describe);
	RUN_TEST(test_cluster);
	CHECK(mkdtemp(tmpdir) != NULL);
	RUN_TEST(test_secret_values);
	RUN_TEST(test_secret_files);
	RUN_TEST(test_token_options);
	RUN_TEST(test_ice_servers);
	RUN_TEST(test_turn_ttl);
	RUN_TEST(test_environment_tokens_ice);
	RUN_TEST(test_check_tokens_turn);
	RUN_TEST(test_describe_tokens_ice);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		CHECK_EQ_INT(system(cmd), 0);
	}
	return check_summary();
}
