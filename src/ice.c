/*
 * joined's iceServers: the configured STUN and TURN URIs, and TURN REST
 * credentials (HMAC-SHA1 under the TURN secret, in base64) minted for each
 * join.
 */
#include "sb_ice.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SHA1_LEN 20

/*
 * HMAC-SHA1 under secret of msg[0..len), in base64 into
 * out[0..SB_TURN_CREDENTIAL_LEN] with its NUL.  0 or -EIO.  Any thread;
 * a failure leaves nothing in the thread's OpenSSL error queue (a
 * worker's TLS reads look at it).
 */
static int credential(const void *secret, size_t secret_len, const void *msg,
		      size_t len, char out[SB_TURN_CREDENTIAL_LEN + 1])
{
	static const unsigned char none[1];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (secret_len > INT_MAX)
		return -EIO;
	/* a NULL key would mean "the key already set": an empty one is not */
	if (!HMAC(EVP_sha1(), secret_len ? secret : none, (int)secret_len, msg, len,
		  mac, &maclen) || maclen != SHA1_LEN) {
		ERR_clear_error();
		return -EIO;
	}
	/* 20 bytes: 28 characters, the last one '=', and the NUL */
	EVP_EncodeBlock((unsigned char *)out, mac, SHA1_LEN);
	return 0;
}

int sb_turn_credential(const void *secret, size_t secret_len,
		       const char *username, size_t len, char *out, size_t cap)
{
	char cred[SB_TURN_CREDENTIAL_LEN + 1];
	int rc;

	if (cap < sizeof(cred))
		return -ENOSPC;
	rc = credential(secret, secret_len, username, len, cred);
	if (rc)
		return rc;
	memcpy(out, cred, sizeof(cred));
	return SB_TURN_CREDENTIAL_LEN;
}

static bool is_turn(const char *uri)
{
	return !strncmp(uri, "turn:", 5) || !strncmp(uri, "turns:", 6);
}

/* Whether cfg has a URI that is a TURN one (turn) or a STUN one. */
static bool has_uris(const struct sb_config *cfg, bool turn)
{
	for (int i = 0; i < cfg->ice_count; i++)
		if (is_turn(cfg->ice_servers[i]) == turn)
			return true;
	return false;
}

/* Appends "urls":[...] with the URIs of cfg that are TURN ones (turn) or
 * STUN ones, in the order given. */
static void add_urls(struct sb_buf *out, const struct sb_config *cfg, bool turn)
{
	const char *sep = "\"urls\":[";

	for (int i = 0; i < cfg->ice_count; i++) {
		const char *uri = cfg->ice_servers[i];

		if (is_turn(uri) != turn)
			continue;
		sb_buf_adds(out, sep);
		sb_buf_add_jstr(out, uri, strlen(uri));
		sep = ",";
	}
	sb_buf_adds(out, "]");
}

/* Appends ,"username":"<expiry>:<id>","credential":"..." for a TURN entry. */
static void add_credentials(struct sb_buf *out, const struct sb_config *cfg,
			    const char *id, size_t id_len, int64_t now)
{
	struct sb_buf user;
	char expiry[24], cred[SB_TURN_CREDENTIAL_LEN + 1] = "";
	int n = snprintf(expiry, sizeof(expiry), "%" PRId64 ":", now + cfg->turn_ttl);

	sb_buf_init(&user, sizeof(expiry) + id_len);
	sb_buf_add(&user, expiry, (size_t)n);
	sb_buf_add(&user, id, id_len);
	if (sb_buf_failed(&user) ||
	    credential(cfg->turn_secret.bytes, cfg->turn_secret.len, user.p,
		       user.len, cred))
		out->failed = true;	/* out of memory, most likely */
	sb_buf_adds(out, ",\"username\":");
	if (!sb_buf_failed(&user))
		sb_buf_add_jstr(out, user.p, user.len);
	sb_buf_adds(out, ",\"credential\":\"");
	sb_buf_adds(out, cred);
	sb_buf_adds(out, "\"");
	sb_buf_release(&user);
}

void sb_ice_servers_json(const struct sb_config *cfg, const char *id,
			 size_t id_len, int64_t now, struct sb_buf *out)
{
	bool stun = has_uris(cfg, false);
	bool turn = has_uris(cfg, true) && cfg->turn_secret.len;

	if (!stun && !turn)
		return;
	sb_buf_adds(out, "\"iceServers\":[");
	if (stun) {
		sb_buf_adds(out, "{");
		add_urls(out, cfg, false);
		sb_buf_adds(out, "}");
	}
	if (turn) {
		sb_buf_adds(out, stun ? ",{" : "{");
		add_urls(out, cfg, true);
		add_credentials(out, cfg, id, id_len, now);
		sb_buf_adds(out, "}");
	}
	sb_buf_adds(out, "]");
}
