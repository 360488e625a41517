/*
 * switchboard: a WebRTC signaling server.  See README.md and
 * docs/protocol.md.  main() parses the command line, starts the server,
 * prints the listening line, and drains on SIGTERM or SIGINT.
 */
#include "sb_config.h"
#include "sb_log.h"
#include "sb_server.h"
#include "sb_sock.h"
#include "sb_tokencmd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static void unknown_env(void *arg, const char *name, size_t len, const char *near)
{
	(void)arg;
	sb_log(SB_LOG_WARN, 0, "unknown environment variable %.*s ignored%s%s%s",
	       (int)len, name, near ? " (did you mean " : "", near ? near : "",
	       near ? "?)" : "");
}

static const char *env(const char *name)
{
	return getenv(name);
}

/* Settings for the test suite only (tests/README.md): not options, and
 * said in the log when they are in effect. */
static void test_settings(void)
{
	const char *scale = getenv("SB_TEST_TIME_SCALE");

	if (scale && *scale) {
		char *end;
		double v = strtod(scale, &end);

		if (*end || !(v >= 1 && v <= 100))
			sb_log(SB_LOG_WARN, 0, "SB_TEST_TIME_SCALE=%s ignored: "
			       "a number from 1 to 100", scale);
		else
			sb_time_scale = v;
		if (sb_time_scale != 1)
			sb_log(SB_LOG_INFO, 0, "test setting: internal time "
			       "constants scaled by %g", sb_time_scale);
	}
	if (getenv("SB_TEST_SKIP_GUARD")) {
		sb_test_skip_guard = true;
		sb_log(SB_LOG_WARN, 0, "test setting: the frame guard is not "
		       "attached");
	}
}

int main(int argc, char **argv)
{
	static struct sb_server srv;
	struct sb_config cfg;
	struct sb_token_key *key;
	char msg[512];	/* a refusal says how to fix it: room for a URI too */
	sigset_t set;
	int rc, sig;

	if (argc > 1 && !strcmp(argv[1], "token"))
		return sb_tokencmd_run(argc, argv, env, stdout, stderr);
	sb_config_defaults(&cfg);
	rc = sb_config_env(&cfg, env, msg, sizeof(msg));
	if (rc == 0)
		rc = sb_config_parse(&cfg, argc, argv, msg, sizeof(msg));
	if (rc == SB_CONFIG_RUN)
		rc = sb_config_check(&cfg, msg, sizeof(msg));
	if (rc < 0) {
		fprintf(stderr, "switchboard: %s\ntry 'switchboard --help'\n", msg);
		return 2;
	}
	if (rc == SB_CONFIG_HELP) {
		fputs(sb_config_usage, stdout);
		return 0;
	}
	if (rc == SB_CONFIG_VERSION) {
		printf("switchboard %s (protocol 1.1)\n", SB_VERSION);
		return 0;
	}
	/* Without TZ, glibc re-reads /etc/localtime and replaces its copy of
	 * the zone's name on every localtime() (lws calls it from the
	 * workers): name the default once, before any thread starts. */
	setenv("TZ", ":/etc/localtime", 0);
	sb_log_set_level(cfg.log_level);
	sb_log_set_json(cfg.log_json);
	sb_log(SB_LOG_INFO, 0, "switchboard %s starting", SB_VERSION);
	sb_config_env_unknown(environ, unknown_env, NULL);
	test_settings();

	/* Every thread inherits this mask: signals are taken by sigwait()
	 * below, never by a handler running inside a worker. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (sb_server_token_key(&cfg, &key, msg, sizeof(msg))) {
		fprintf(stderr, "switchboard: %s\n", msg);
		return 2;
	}
	if (sb_server_start(&srv, &cfg, key)) {
		sb_server_release(&srv);
		return 1;
	}
	printf("switchboard listening on %s\n", srv.listen_name);
	fflush(stdout);

	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			sb_log(SB_LOG_INFO, 0, "SIGHUP ignored");
			continue;
		}
		break;
	}
	sb_log(SB_LOG_INFO, 0, "%s received: draining for at most %g s",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.drain_timeout);
	sb_server_drain(&srv);
	sb_server_release(&srv);
	return 0;
}
