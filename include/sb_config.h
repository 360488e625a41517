/*
 * The command line.  Parsed once by the main thread before any other thread
 * starts; read-only afterwards, so every thread may read it without a lock.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include "sb_netaddr.h"
#include "sb_redisurl.h"

#include <stddef.h>

#define SB_BIND_MAX 256
#define SB_WORKERS_MAX 1024
#define SB_ORIGINS_MAX 16	/* --allowed-origin, at most this many */
#define SB_ORIGIN_MAX 256	/* bytes of one origin, with its NUL */
#define SB_TRUSTED_MAX 32	/* --trusted-proxy, at most this many */
#define SB_PATH_MAX 1024	/* bytes of a file name, with its NUL */
#define SB_SECRET_MAX 4096	/* bytes of a secret, and of a secret file */
#define SB_CLAIM_MAX 256	/* --auth-audience, --auth-issuer, with the NUL */
#define SB_ICE_SERVERS_MAX 16	/* --ice-server, at most this many */
#define SB_ICE_URI_MAX 256	/* bytes of one ICE server URI, with its NUL */

/* Which options set a secret, as bits of sb_secret.from: an option and its
 * -file form both given (on the command line or in the environment) are
 * refused by sb_config_check. */
enum {
	SB_SECRET_ARG = 1,	/* --auth-secret, --turn-secret */
	SB_SECRET_FILE = 2,	/* --auth-secret-file, --turn-secret-file */
};

/* A secret: any bytes (a file's may hold a NUL), never logged and never
 * quoted in a message.  The bytes past len are zero. */
struct sb_secret {
	unsigned char bytes[SB_SECRET_MAX];
	size_t len;			/* 0: none given */
	unsigned from;			/* SB_SECRET_ARG | SB_SECRET_FILE */
};

struct sb_config {
	char bind[SB_BIND_MAX];	/* listen address, "::" by default */
	int port;			/* 0: the kernel picks one */
	int workers;			/* worker threads, >= 1 */
	size_t max_message;		/* bytes of one client message */
	size_t max_field;		/* bytes of id, nick, room */
	unsigned max_room_peers;	/* 0: unlimited */
	size_t max_backlog;		/* outbound bytes held per connection */
	double heartbeat;		/* seconds; 0: off */
	double rate;			/* messages per second; 0: off */
	double drain_timeout;		/* seconds */
	int log_level;			/* enum sb_log_level */
	int log_json;			/* --log-format json */
	unsigned max_connections;	/* WebSocket connections; 0: unlimited */
	unsigned max_connections_per_ip; /* 0: unlimited */
	char origins[SB_ORIGINS_MAX][SB_ORIGIN_MAX];	/* --allowed-origin */
	int norigins;			/* 0: any Origin is allowed */
	struct sb_cidr trusted[SB_TRUSTED_MAX];	/* --trusted-proxy */
	int ntrusted;			/* 0: no proxy is trusted */
	int handshake_timeout;		/* seconds to finish an HTTP request */
	struct sb_redis_url redis;	/* --redis: the cluster's backplane;
					 * holds the password, never logged */
	double node_timeout;		/* seconds a silent node is trusted */
	char tls_cert[SB_PATH_MAX];	/* PEM certificate chain; "" = no TLS */
	char tls_key[SB_PATH_MAX];	/* its PEM private key */
	char web_root[SB_PATH_MAX];	/* static files; "" = the default place,
					 * "none" = serve none */
	struct sb_secret auth_secret;	/* HS256 room tokens; none: len 0 */
	char auth_public_key[SB_PATH_MAX];	/* RS256/ES256 room tokens: a PEM
					 * file, loaded at start by the token
					 * module; "" = none */
	char auth_audience[SB_CLAIM_MAX];	/* "" = aud not checked */
	char auth_issuer[SB_CLAIM_MAX];	/* "" = iss not checked */
	char ice_servers[SB_ICE_SERVERS_MAX][SB_ICE_URI_MAX];	/* stun:,
					 * stuns:, turn:, turns: URIs, checked */
	int ice_count;			/* 0: no iceServers in joined */
	struct sb_secret turn_secret;	/* TURN REST secret; none: len 0 */
	int turn_ttl;			/* seconds a TURN credential lasts */
};

enum {
	SB_CONFIG_RUN = 0,	/* start the server */
	SB_CONFIG_HELP = 1,	/* usage was asked for */
	SB_CONFIG_VERSION = 2,	/* the version was asked for */
};

/* Fills cfg with the defaults (workers: the number of online CPUs). */
void sb_config_defaults(struct sb_config *cfg);

/*
 * Parses argv[1..argc-1] over the values already in cfg.  Returns
 * SB_CONFIG_RUN, SB_CONFIG_HELP or SB_CONFIG_VERSION, or -EINVAL with a
 * one-line reason in msg (cfg is then partly updated and must not be used).
 * The files of --auth-secret-file and --turn-secret-file are read here (at
 * most SB_SECRET_MAX bytes, one trailing newline dropped).  Any thread;
 * touches nothing but its arguments and those files.
 */
int sb_config_parse(struct sb_config *cfg, int argc, char *const argv[],
		    char *msg, size_t msglen);

/*
 * Reads the options from the environment, over the values already in cfg:
 * each option's long name in capitals with dashes as underscores, after
 * SWITCHBOARD_ (SWITCHBOARD_PORT, SWITCHBOARD_MAX_MESSAGE, ...).  An unset
 * or empty variable changes nothing.  get looks a name up (getenv in the
 * server).  A repeatable option's variable holds a list: values separated
 * by commas (SWITCHBOARD_ICE_SERVER: by commas or spaces).  Returns 0, or
 * -EINVAL with a reason naming the variable in msg.  Call before
 * sb_config_parse, so that the command line wins.
 */
int sb_config_env(struct sb_config *cfg, const char *(*get)(const char *name),
		  char *msg, size_t msglen);

/* The prefix of the options' environment variables. */
#define SB_ENV_PREFIX "SWITCHBOARD_"

/*
 * Finds the variables of envp ("NAME=value" strings, NULL-terminated) whose
 * names start with SWITCHBOARD_ but name no option, which are ignored: most
 * likely a misspelling.  Calls report for each (name: not NUL-terminated,
 * len bytes; near: the option's variable it is a few letters away from, or
 * NULL) and returns how many.  Any thread.
 */
int sb_config_env_unknown(char *const *envp,
			  void (*report)(void *arg, const char *name, size_t len,
					 const char *near),
			  void *arg);

/*
 * Checks what no single option can: --tls-cert and --tls-key come
 * together; at most one of --auth-secret, --auth-secret-file and
 * --auth-public-key, and --auth-audience and --auth-issuer only with one;
 * at most one of --turn-secret and --turn-secret-file, a turn: or turns:
 * URI only with a TURN secret and a TURN secret only with such a URI.  0,
 * or -EINVAL with a one-line reason in msg that says how to fix it and
 * never holds a secret.  After env and parse.
 */
int sb_config_check(const struct sb_config *cfg, char *msg, size_t msglen);

/* Writes what an operator needs to know of cfg in one line, for the log
 * at start: "1 worker, TLS off, Origin any, limits: connections
 * unlimited, ..., tokens HS256, ICE servers 2 (TURN credentials for
 * 86400 s)".  Never a secret.  Cut to fit cap (>= 1). */
void sb_config_describe(const struct sb_config *cfg, char *out, size_t cap);

/* The --help text. */
extern const char sb_config_usage[];

#endif
