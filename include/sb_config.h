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
 * Any thread; touches nothing but its arguments.
 */
int sb_config_parse(struct sb_config *cfg, int argc, char *const argv[],
		    char *msg, size_t msglen);

/*
 * Reads the options from the environment, over the values already in cfg:
 * each option's long name in capitals with dashes as underscores, after
 * SWITCHBOARD_ (SWITCHBOARD_PORT, SWITCHBOARD_MAX_MESSAGE, ...).  An unset
 * or empty variable changes nothing.  get looks a name up (getenv in the
 * server).  Returns 0, or -EINVAL with a reason naming the variable in msg.
 * Call before sb_config_parse, so that the command line wins.
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

/* Checks what no single option can: --tls-cert and --tls-key come
 * together.  0, or -EINVAL with a reason in msg.  After env and parse. */
int sb_config_check(const struct sb_config *cfg, char *msg, size_t msglen);

/* Writes what an operator needs to know of cfg in one line, for the log
 * at start: "1 worker, TLS off, Origin any, limits: connections
 * unlimited, ...".  Cut to fit cap (>= 1). */
void sb_config_describe(const struct sb_config *cfg, char *out, size_t cap);

/* The --help text. */
extern const char sb_config_usage[];

#endif
