/*
 * The command line (sb_config): the defaults of docs/protocol.md, every option
 * in its --opt value, --opt=value and short forms, help and version, and
 * the refusals (unknown option, missing value, bad or out-of-range value)
 * with a message.
 */
#include "check.h"

#include "sb_config.h"
#include "sb_log.h"

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

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
		"--help", "-h", "--version",
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
			  "field 128 B, backlog 1048576 B, rate off, heartbeat 30 s, handshake 10 s");
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
			  "2 trusted proxies");
	sb_config_describe(&cfg, small, sizeof(small));
	CHECK_EQ_STR(small, "4 workers, TLS on, Orig");
	sb_config_describe(&cfg, small, 1);
	CHECK_EQ_STR(small, "");
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
	return check_summary();
}
