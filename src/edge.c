/*
 * The edge: Origin allow-list, drain, connection caps and the client
 * behind trusted proxies (sb_edge.h).  Any worker thread.
 */
#include "sb_edge.h"

#include "sb_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sb_edge {
	const struct sb_config *cfg;	/* immutable */
	atomic_uint admitted;		/* WebSocket connections let in */
	pthread_mutex_t lock;		/* leaf: guards ips */
	struct sb_map ips;		/* {lock} address -> struct ip_count */
};

/* One client address's admitted connections. */
struct ip_count {
	unsigned n;
	size_t len;
	char ip[];
};

struct sb_edge *sb_edge_new(const struct sb_config *cfg)
{
	struct sb_edge *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	if (pthread_mutex_init(&e->lock, NULL)) {
		free(e);
		return NULL;
	}
	e->cfg = cfg;
	atomic_init(&e->admitted, 0);
	sb_map_init(&e->ips);
	return e;
}

void sb_edge_free(struct sb_edge *e)
{
	void *v;

	if (!e)
		return;
	for (size_t i = 0; (i = sb_map_next(&e->ips, i, &v));)
		free(v);
	sb_map_release(&e->ips);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

bool sb_edge_reads_forwarded(const struct sb_edge *e)
{
	return e->cfg->ntrusted > 0;
}

static bool origin_allowed(const struct sb_config *cfg, const char *origin)
{
	if (!cfg->norigins)
		return true;
	if (!origin)
		return false;
	for (int i = 0; i < cfg->norigins; i++)
		if (!strcasecmp(origin, cfg->origins[i]))
			return true;
	return false;
}

/* Counts one more connection from the address key ip.  0 or -EBUSY (over
 * the limit, or out of memory: refused either way).  *key as sb_admission
 * keeps it. */
static int count_ip(struct sb_edge *e, const char *ip, char **key)
{
	unsigned per = e->cfg->max_connections_per_ip;
	size_t len = strlen(ip);
	struct ip_count *ic;
	int rc = 0;

	pthread_mutex_lock(&e->lock);
	ic = sb_map_get(&e->ips, ip, len);
	if (ic && ic->n >= per) {
		rc = -EBUSY;
	} else if (ic) {
		ic->n++;
	} else {
		ic = malloc(sizeof(*ic) + len + 1);
		if (ic) {
			ic->n = 1;
			ic->len = len;
			memcpy(ic->ip, ip, len + 1);
			if (sb_map_put(&e->ips, ic->ip, len, ic)) {
				free(ic);
				ic = NULL;
			}
		}
		if (!ic)
			rc = -EBUSY;
	}
	if (!rc)
		*key = ic->ip;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* Lets one more connection from client in, within the caps: SB_EDGE_OK,
 * or the cap that refused it. */
static enum sb_edge_verdict admit(struct sb_edge *e, const struct sb_addr *client,
				  struct sb_admission *adm)
{
	unsigned max = e->cfg->max_connections;
	unsigned cur = atomic_load(&e->admitted);
	char ip[SB_ADDR_STRLEN + 4];
	char *key = NULL;

	do {
		if (max && cur >= max)
			return SB_EDGE_FULL;
	} while (!atomic_compare_exchange_weak(&e->admitted, &cur, cur + 1));
	if (e->cfg->max_connections_per_ip) {
		sb_addr_limit_key(client, ip, sizeof(ip));
		if (count_ip(e, ip, &key)) {
			atomic_fetch_sub(&e->admitted, 1);
			return SB_EDGE_FULL_ADDR;
		}
	}
	adm->admitted = true;
	adm->key = key;
	return SB_EDGE_OK;
}

enum sb_edge_verdict sb_edge_upgrade(struct sb_edge *e, const struct sb_upgrade *u,
				     bool draining, struct sb_addr *client,
				     struct sb_admission *adm)
{
	const struct sb_config *cfg = e->cfg;

	*client = u->peer;
	if (cfg->ntrusted)
		sb_client_addr(cfg->trusted, cfg->ntrusted, &u->peer, u->xff,
			       u->real_ip, client);
	if (!origin_allowed(cfg, u->origin))
		return SB_EDGE_ORIGIN;
	if (draining)
		return SB_EDGE_DRAINING;
	if (adm->admitted)
		return SB_EDGE_OK;
	return admit(e, client, adm);
}

void sb_edge_release(struct sb_edge *e, struct sb_admission *adm)
{
	struct ip_count *ic;

	if (!adm->admitted)
		return;
	adm->admitted = false;
	atomic_fetch_sub(&e->admitted, 1);
	if (!adm->key)
		return;
	ic = (struct ip_count *)(void *)(adm->key - offsetof(struct ip_count, ip));
	adm->key = NULL;
	pthread_mutex_lock(&e->lock);
	if (!--ic->n) {
		sb_map_del(&e->ips, ic->ip, ic->len);
		free(ic);
	}
	pthread_mutex_unlock(&e->lock);
}

unsigned sb_edge_admitted(struct sb_edge *e)
{
	return atomic_load(&e->admitted);
}
