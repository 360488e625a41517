#include "sb_server.h"

#include "sb_acceptor.h"
#include "sb_backplane.h"
#include "sb_edge.h"
#include "sb_log.h"
#include "sb_map.h"
#include "sb_recv_hook.h"
#include "sb_sock.h"
#include "sb_webroot.h"
#include "sb_worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Descriptors the server keeps beside its WebSocket connections:
 * handshakes and HTTP requests under way, the listener, libuv's and
 * Redis's. */
#define FD_RESERVE 1024
/* The limit without --max-connections, as the systemd unit sets it. */
#define FD_DEFAULT 65536
/* Over 10,000,000 lws falls back to 2560 descriptors. */
#define FD_MAX 1000000

/*
 * Sets the soft descriptor limit to what the connections need:
 * --max-connections plus FD_RESERVE, or FD_DEFAULT without it, within the
 * hard limit; lowered when it is higher.  Before any lws context exists,
 * since each sizes its tables from it.  Not simply the hard limit, which
 * is often 524,288 or 1,048,576: each worker's lws context holds a table of
 * 16 bytes per descriptor of the limit, and Debian's lws 4.1 (built with
 * _DEBUG) reads its whole fd table at every close to check the descriptor
 * is gone (sanity_assert_no_sockfd_traces): at a limit of 1,000,000 that is
 * 16 MB per worker and 8 MB read per connection closed
 * (docs/architecture.md).  Returns the limit; *short_of is what
 * --max-connections needs when the hard limit is below it, else 0.
 */
static int set_fd_limit(const struct sb_config *cfg, long *short_of)
{
	struct rlimit rl;
	rlim_t want = cfg->max_connections > 0 ?
			      (rlim_t)cfg->max_connections + FD_RESERVE : FD_DEFAULT;

	*short_of = 0;
	if (want > FD_MAX)
		want = FD_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 1024;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		if (cfg->max_connections > 0)
			*short_of = (long)want;
		want = rl.rlim_max;
	}
	if (want != rl.rlim_cur) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > FD_MAX ? FD_MAX : (int)rl.rlim_cur;
}

/* Opens, binds and listens; fills listen_name and url.  Returns the socket
 * or a negative errno, logged. */
static int open_listener(struct sb_server *srv)
{
	const struct sb_config *cfg = &srv->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[INET6_ADDRSTRLEN];
	int fd, one = 1, zero = 0, err;
	bool any;

	memset(&ss, 0, sizeof(ss));
	{
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (inet_pton(AF_INET6, cfg->bind, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)cfg->port);
			sl = sizeof(*s6);
		} else if (inet_pton(AF_INET, cfg->bind, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)cfg->port);
			sl = sizeof(*s4);
		} else {
			struct addrinfo hints, *res;
			int gai;

			memset(&hints, 0, sizeof(hints));
			hints.ai_socktype = SOCK_STREAM;
			hints.ai_flags = AI_PASSIVE;
			gai = getaddrinfo(cfg->bind, NULL, &hints, &res);
			if (gai) {
				sb_log(SB_LOG_ERROR, 0, "cannot resolve %s: %s",
				       cfg->bind, gai_strerror(gai));
				return -EINVAL;
			}
			memcpy(&ss, res->ai_addr, res->ai_addrlen);
			sl = res->ai_addrlen;
			freeaddrinfo(res);
			if (ss.ss_family == AF_INET6)
				s6->sin6_port = htons((uint16_t)cfg->port);
			else
				s4->sin_port = htons((uint16_t)cfg->port);
		}
	}

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		sb_log(SB_LOG_ERROR, err, "socket");
		return -err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, SOMAXCONN)) {
		err = errno;
		sb_log(SB_LOG_ERROR, err, "cannot listen on %s port %d", cfg->bind,
		       cfg->port);
		close(fd);
		return -err;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(srv->listen_name, sizeof(srv->listen_name), "[%s]:%u", host,
			 ntohs(s6->sin6_port));
		any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(srv->listen_name, sizeof(srv->listen_name), "%s:%u", host,
			 ntohs(s4->sin_port));
		any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	/* the address to open: on every interface, this machine's name */
	snprintf(srv->url, sizeof(srv->url), "%s://%s%s/",
		 cfg->tls_cert[0] ? "https" : "http", any ? "localhost:" : "",
		 any ? strrchr(srv->listen_name, ':') + 1 : srv->listen_name);
	return fd;
}

/* Where the static files are when --web-root is not given: next to the
 * sources when this binary is the one in the build tree, else where
 * `cmake --install` put them beside it (<prefix>/share/switchboard/web).
 * Fills buf. */
static const char *default_web_root(char *buf, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return "none";
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return "none";
	*slash = '\0';
	if (!strcmp(exe, SB_BUILD_DIR))
		return SB_SOURCE_WEB_DIR;
	snprintf(buf, len, "%s/%s", exe, SB_WEB_FROM_BIN);
	return buf;
}

/* --web-root: a directory given must load; the default one may be absent
 * (then / is 404, as without it). */
static int load_web_root(struct sb_server *srv, const struct sb_config *cfg)
{
	char err[256], where[4200];
	const char *dir = cfg->web_root[0] ? cfg->web_root :
			  default_web_root(where, sizeof(where));

	snprintf(srv->web_said, sizeof(srv->web_said), "none");
	if (!strcmp(dir, "none"))
		return 0;
	srv->web = sb_webroot_load(dir, err, sizeof(err));
	if (!srv->web) {
		if (cfg->web_root[0]) {
			sb_log(SB_LOG_ERROR, 0, "--web-root %s", err);
			return -EINVAL;
		}
		sb_log(SB_LOG_INFO, 0, "no web root (%s): / answers 404", err);
		return 0;
	}
	snprintf(srv->web_said, sizeof(srv->web_said), "%s (%zu files)", dir,
		 sb_webroot_count(srv->web));
	return 0;
}

/* Whether file can be read, logged when not: a typing mistake in a path is
 * better said in those words than as a failed TLS set-up. */
static bool readable(const char *file, const char *option)
{
	FILE *f = fopen(file, "re");

	if (!f) {
		sb_log(SB_LOG_ERROR, errno, "%s %s", option, file);
		return false;
	}
	fclose(f);
	return true;
}

/* OpenSSL's reason for a failure, for a log line: the first in its queue,
 * the one closest to the cause.  The queue is emptied. */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();

	if (!e)
		snprintf(buf, len, "no reason given");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* A key with a passphrase is refused, not asked about on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* --tls-cert and --tls-key load and belong together: each fault said in
 * one line here, before lws would say it in several.  An expired
 * certificate is served (the operator may be renewing it) with a warning. */
static bool tls_files_fit(const struct sb_config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];
	bool ok = false;
	X509 *x;

	if (!ctx) {
		sb_log(SB_LOG_ERROR, 0, "cannot check the TLS files: %s",
		       ssl_reason(why, sizeof(why)));
		return false;
	}
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		sb_log(SB_LOG_ERROR, 0, "--tls-cert %s is not a PEM certificate "
		       "chain (%s)", cfg->tls_cert, ssl_reason(why, sizeof(why)));
	} else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
					       SSL_FILETYPE_PEM) != 1) {
		ssl_reason(why, sizeof(why));
		if (strstr(why, "key values mismatch"))
			sb_log(SB_LOG_ERROR, 0, "--tls-key %s is not the key of "
			       "--tls-cert %s: give the private key the certificate "
			       "was made for", cfg->tls_key, cfg->tls_cert);
		else
			sb_log(SB_LOG_ERROR, 0, "--tls-key %s is not a PEM private "
			       "key without a passphrase (%s)", cfg->tls_key, why);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		sb_log(SB_LOG_ERROR, 0, "--tls-key %s is not the key of --tls-cert "
		       "%s: give the private key the certificate was made for",
		       cfg->tls_key, cfg->tls_cert);
		ERR_clear_error();
	} else {
		ok = true;
		x = SSL_CTX_get0_certificate(ctx);
		if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
			sb_log(SB_LOG_WARN, 0, "--tls-cert %s has expired: browsers "
			       "will refuse it", cfg->tls_cert);
		else if (x && X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
			sb_log(SB_LOG_WARN, 0, "--tls-cert %s is not valid yet: "
			       "browsers will refuse it", cfg->tls_cert);
	}
	SSL_CTX_free(ctx);
	return ok;
}

static void worker_drained(void *arg)
{
	struct sb_server *srv = arg;

	pthread_mutex_lock(&srv->lock);
	srv->drained++;
	pthread_cond_signal(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

int sb_server_token_key(const struct sb_config *cfg, struct sb_token_key **key,
			char *msg, size_t msglen)
{
	const struct sb_secret *sec = &cfg->auth_secret;

	*key = NULL;
	if (sec->len) {
		*key = sb_token_key_secret(sec->bytes, sec->len, msg, msglen);
		if (*key && sec->len < SB_TOKEN_SECRET_MIN_GOOD)
			sb_log(SB_LOG_WARN, 0, "the room-token secret is %zu bytes "
			       "long: %d or more random bytes are advised",
			       sec->len, SB_TOKEN_SECRET_MIN_GOOD);
	} else if (cfg->auth_public_key[0]) {
		*key = sb_token_key_public_pem(cfg->auth_public_key, msg, msglen);
	} else {
		return 0;
	}
	return *key ? 0 : -1;
}

int sb_server_start(struct sb_server *srv, const struct sb_config *cfg,
		    struct sb_token_key *key)
{
	struct sb_worker_setup setup;
	long short_of;
	int nfds, rc;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = *cfg;
	srv->token_key = key;
	srv->token_rules.audience = srv->cfg.auth_audience[0] ?
				    srv->cfg.auth_audience : NULL;
	srv->token_rules.issuer = srv->cfg.auth_issuer[0] ?
				  srv->cfg.auth_issuer : NULL;
	srv->listen_fd = -1;
	atomic_init(&srv->draining, false);
	rc = pthread_mutex_init(&srv->lock, NULL);
	if (!rc) {
		srv->lock_made = true;
		rc = pthread_cond_init(&srv->cond, NULL);
	}
	if (rc) {
		sb_log(SB_LOG_ERROR, rc, "cannot make the server's lock");
		return -rc;
	}
	srv->cond_made = true;
	sb_map_seed();	/* before any map is used */
	srv->edge = sb_edge_new(&srv->cfg);
	if (!srv->edge)
		return -ENOMEM;

	if (cfg->tls_cert[0] && (!readable(cfg->tls_cert, "--tls-cert") ||
				 !readable(cfg->tls_key, "--tls-key")))
		return -ENOENT;
	if (cfg->tls_cert[0] && !tls_files_fit(cfg))
		return -EINVAL;
	if (cfg->tls_cert[0]) {
		srv->tls_client_ctx = SSL_CTX_new(TLS_client_method());
		if (!srv->tls_client_ctx)
			return -ENOMEM;
	}
	rc = load_web_root(srv, cfg);
	if (rc)
		return rc;
	nfds = set_fd_limit(cfg, &short_of);
	sb_log(SB_LOG_INFO, 0, "descriptor limit %d", nfds);
	if (short_of)
		sb_log(SB_LOG_WARN, 0,
		       "--max-connections %u needs %ld descriptors, the hard limit "
		       "is %d: raise it (LimitNOFILE in the unit, ulimit -Hn) or "
		       "lower --max-connections", cfg->max_connections, short_of,
		       nfds);
	if (sb_recv_hook_init(nfds, sb_sock_guard_failed, sb_readahead_stashed,
			      sb_sock_http_refused))
		return -ENOMEM;
	srv->reg = sb_registry_new(cfg->max_room_peers);
	if (!srv->reg)
		return -ENOMEM;
	srv->listen_fd = open_listener(srv);
	if (srv->listen_fd < 0)
		return srv->listen_fd;

	srv->workers = calloc((size_t)cfg->workers, sizeof(*srv->workers));
	srv->stats = calloc((size_t)cfg->workers, sizeof(*srv->stats));
	if (!srv->workers || !srv->stats)
		return -ENOMEM;
	srv->http.reg = srv->reg;
	srv->http.web = srv->web;
	srv->http.stats = srv->stats;
	srv->http.draining = &srv->draining;
	srv->http.accept_pauses = &srv->accept_pauses;
	if (cfg->redis.set) {
		rc = sb_bp_status_init(&srv->bp_status);
		if (rc) {
			sb_log(SB_LOG_ERROR, rc, "cannot make the backplane's lock");
			return -rc;
		}
		srv->bp_status_made = true;
		srv->http.bp = &srv->bp_status;
		srv->backplane = sb_backplane_start(&srv->cfg, &srv->bp_status,
						    srv->reg);
		if (!srv->backplane)
			return -ENOMEM;
	}
	setup = (struct sb_worker_setup){
		.cfg = &srv->cfg, .reg = srv->reg, .edge = srv->edge,
		.http_src = &srv->http, .tls_client_ctx = srv->tls_client_ctx,
		.drained = worker_drained, .arg = srv,
		.cluster = srv->backplane ? sb_backplane_ops(srv->backplane) : NULL,
		.token_key = srv->token_key, .token_rules = &srv->token_rules,
	};
	for (int i = 0; i < cfg->workers; i++) {
		srv->workers[i] = sb_worker_new(&setup, i);
		if (!srv->workers[i])
			return -ENOMEM;
		srv->stats[i] = sb_worker_stats(srv->workers[i]);
		srv->nworkers = i + 1;
		srv->http.nstats = srv->nworkers;
	}
	for (int i = 0; i < srv->nworkers; i++) {
		rc = sb_worker_start(srv->workers[i]);
		if (rc) {
			sb_log(SB_LOG_ERROR, -rc, "cannot start a worker thread");
			return rc;
		}
	}
	srv->acceptor = sb_acceptor_start(srv->listen_fd, srv->workers, srv->nworkers,
					  &srv->accept_pauses);
	if (!srv->acceptor)
		return -ENOMEM;
	{
		char what[1024 + SB_ORIGINS_MAX * SB_ORIGIN_MAX + SB_PATH_MAX +
			  2 * SB_CLAIM_MAX];

		sb_config_describe(&srv->cfg, what, sizeof(what));
		sb_log(SB_LOG_INFO, 0, "ready at %s: %s; web root %s", srv->url, what,
		       srv->web_said);
	}
	return 0;
}

void sb_server_drain(struct sb_server *srv)
{
	struct timespec deadline;
	bool late = false;

	atomic_store(&srv->draining, true);
	sb_acceptor_stop(srv->acceptor);
	srv->acceptor = NULL;
	close(srv->listen_fd);
	srv->listen_fd = -1;

	for (int i = 0; i < srv->nworkers; i++)
		sb_worker_drain(srv->workers[i]);

	/* Each worker is bounded by the drain timeout plus a second of close
	 * handshakes; past a generous margin something is wrong. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)srv->cfg.drain_timeout + 10;
	pthread_mutex_lock(&srv->lock);
	while (srv->drained < srv->nworkers && !late)
		late = pthread_cond_timedwait(&srv->cond, &srv->lock, &deadline) ==
		       ETIMEDOUT;
	pthread_mutex_unlock(&srv->lock);
	if (late) {
		sb_log(SB_LOG_ERROR, 0, "workers did not finish draining; exiting");
		_exit(1);
	}
	for (int i = 0; i < srv->nworkers; i++)
		sb_worker_stop(srv->workers[i]);
	sb_backplane_stop(srv->backplane);
	srv->backplane = NULL;
	sb_log_client_flush();
	sb_log(SB_LOG_INFO, 0, "drained; exiting");
}

void sb_server_release(struct sb_server *srv)
{
	sb_acceptor_stop(srv->acceptor);
	sb_backplane_stop(srv->backplane);
	if (srv->bp_status_made)
		sb_bp_status_destroy(&srv->bp_status);
	for (int i = 0; i < srv->nworkers; i++)
		sb_worker_free(srv->workers[i]);
	free(srv->workers);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	free(srv->stats);
	sb_registry_free(srv->reg);
	SSL_CTX_free(srv->tls_client_ctx);
	sb_webroot_free(srv->web);
	sb_edge_free(srv->edge);
	sb_token_key_free(srv->token_key);
	srv->token_key = NULL;
	if (srv->lock_made)
		pthread_mutex_destroy(&srv->lock);
	if (srv->cond_made)
		pthread_cond_destroy(&srv->cond);
}
