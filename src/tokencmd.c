/*
 * `switchboard token` (sb_tokencmd.h): its options, the secret read as the
 * server reads it (sb_config), one token signed and printed.
 */
#include "sb_tokencmd.h"

#include "sb_config.h"
#include "sb_token.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char sb_tokencmd_usage[] =
	"usage: switchboard token --room ROOM [--id ID] [--name NAME] [--ttl SECONDS]\n"
	"prints a room token (HS256 JWT) signed with the server's secret\n"
	"  --room ROOM          the room it admits to (required)\n"
	"  --id ID              the only id it admits (sub; default: any id)\n"
	"  --name NAME          the nick it gives (name; default: the join's)\n"
	"  --ttl SECONDS        how long it is valid (default 3600)\n"
	"  --auth-secret SECRET / --auth-secret-file FILE  the secret, as for\n"
	"                       the server (SWITCHBOARD_AUTH_SECRET,\n"
	"                       SWITCHBOARD_AUTH_SECRET_FILE in the environment)\n"
	"  -h, --help           show this help and exit\n";

#define TTL_MAX (10 * 365 * 86400)	/* ten years */

/* The variables this command takes from the environment: the secret's. */
static const char *(*env_get)(const char *name);

static const char *secret_env(const char *name)
{
	if (strcmp(name, SB_ENV_PREFIX "AUTH_SECRET") &&
	    strcmp(name, SB_ENV_PREFIX "AUTH_SECRET_FILE") &&
	    strcmp(name, SB_ENV_PREFIX "AUTH_PUBLIC_KEY"))
		return NULL;
	return env_get(name);
}

/* Whether arg (maybe "--name=value") is the option name. */
static bool is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(arg, name, n) && (arg[n] == '\0' || arg[n] == '=');
}

/* The value of the option at argv[*i] ("--x=v" or "--x v"), moving *i
 * past it; NULL when it has none. */
static const char *opt_value(int argc, char *const argv[], int *i)
{
	const char *eq = strchr(argv[*i], '=');

	if (eq)
		return eq + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int sb_tokencmd_run(int argc, char *const argv[],
		    const char *(*get)(const char *name), FILE *out, FILE *err)
{
	static const char *const passed[] = {
		"--auth-secret", "--auth-secret-file", "--auth-public-key",
	};
	const char *room = NULL, *id = NULL, *name = NULL;
	static struct sb_config cfg;	/* large: not on the stack */
	char msg[512], tok[SB_TOKEN_MAX + 1];
	char **rest;
	int nrest = 1, rc, status = 2;
	long ttl = 3600;
	int64_t now;

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest) {
		fprintf(err, "switchboard token: out of memory\n");
		return 1;
	}
	rest[0] = argv[0];
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *v;
		bool secret_opt = false;

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			fputs(sb_tokencmd_usage, out);
			status = 0;
			goto out;
		}
		for (size_t k = 0; k < sizeof(passed) / sizeof(passed[0]); k++)
			secret_opt |= is_opt(arg, passed[k]);
		if (secret_opt) {
			/* sb_config_parse reads it, and its value */
			rest[nrest++] = argv[i];
			if (!strchr(arg, '=') && i + 1 < argc)
				rest[nrest++] = argv[++i];
			continue;
		}
		if (!is_opt(arg, "--room") && !is_opt(arg, "--id") &&
		    !is_opt(arg, "--name") && !is_opt(arg, "--ttl")) {
			fprintf(err, "switchboard token: unknown option '%.*s'\n"
				"try 'switchboard token --help'\n",
				(int)strcspn(arg, "="), arg);
			goto out;
		}
		v = opt_value(argc, argv, &i);
		if (!v) {
			fprintf(err, "switchboard token: option '%s' needs a value\n",
				arg);
			goto out;
		}
		if (is_opt(arg, "--room")) {
			room = v;
		} else if (is_opt(arg, "--id")) {
			id = v;
		} else if (is_opt(arg, "--name")) {
			name = v;
		} else {
			char *end;

			errno = 0;
			ttl = strtol(v, &end, 10);
			if (errno || end == v || *end || ttl < 1 || ttl > TTL_MAX) {
				fprintf(err, "switchboard token: --ttl takes whole "
					"seconds from 1 to %d\n", TTL_MAX);
				goto out;
			}
		}
	}
	if (!room || !*room) {
		fprintf(err, "switchboard token: --room ROOM is required\n"
			"try 'switchboard token --help'\n");
		goto out;
	}

	sb_config_defaults(&cfg);
	env_get = get;
	rc = sb_config_env(&cfg, secret_env, msg, sizeof(msg));
	if (rc == 0)
		rc = sb_config_parse(&cfg, nrest, rest, msg, sizeof(msg));
	if (rc == SB_CONFIG_RUN)
		rc = sb_config_check(&cfg, msg, sizeof(msg));
	if (rc < 0) {
		fprintf(err, "switchboard token: %s\n", msg);
		goto out;
	}
	if (cfg.auth_public_key[0]) {
		fprintf(err, "switchboard token: --auth-public-key is set: a "
			"public key verifies tokens but cannot sign them; give "
			"the HS256 secret (--auth-secret-file, --auth-secret)\n");
		goto out;
	}
	if (!cfg.auth_secret.len) {
		fprintf(err, "switchboard token: no secret to sign with: give "
			"--auth-secret-file FILE or --auth-secret SECRET (or "
			"SWITCHBOARD_AUTH_SECRET_FILE, SWITCHBOARD_AUTH_SECRET)\n");
		goto out;
	}
	now = (int64_t)time(NULL);
	rc = sb_token_sign_hs256(cfg.auth_secret.bytes, cfg.auth_secret.len,
				 room, id, name, now, now + ttl, tok, sizeof(tok));
	if (rc == -EMSGSIZE) {
		fprintf(err, "switchboard token: the token would be longer than "
			"%d bytes: shorten the room, id or name\n", SB_TOKEN_MAX);
	} else if (rc < 0) {
		fprintf(err, "switchboard token: cannot sign the token (%s)\n",
			strerror(-rc));
		status = 1;
	} else {
		fprintf(out, "%s\n", tok);
		status = 0;
	}
out:
	memset(&cfg.auth_secret, 0, sizeof(cfg.auth_secret));
	free(rest);
	return status;
}
