/*
 * `switchboard token`: prints one HS256 room token signed with the
 * configured secret, for tests, scripts and applications without a
 * backend of their own.
 */
#ifndef SB_TOKENCMD_H
#define SB_TOKENCMD_H

#include <stdio.h>

/* The text of `switchboard token --help`. */
extern const char sb_tokencmd_usage[];

/*
 * Runs `switchboard token` with argv[2..argc-1]: --room ROOM (required),
 * --id ID, --name NAME, --ttl SECONDS (default 3600), the secret from
 * --auth-secret or --auth-secret-file or their SWITCHBOARD_ variables (get
 * looks one up; getenv in the program), and --help.  Writes the token and
 * a newline to out, or a reason to err (never quoting the secret).
 * Returns the exit status: 0, or 2 for a bad or missing option, no
 * secret, or --auth-public-key (a public key cannot sign).
 */
int sb_tokencmd_run(int argc, char *const argv[],
		    const char *(*get)(const char *name), FILE *out, FILE *err);

#endif
