/*
 * The iceServers member of joined: the --ice-server URIs, and for the
 * turn: and turns: ones credentials of the TURN REST scheme (what coturn's
 * use-auth-secret checks): username "<expiry>:<id>", credential
 * base64(HMAC-SHA1(--turn-secret, username)).  Pure: no I/O, no state;
 * any thread.
 */
#ifndef SB_ICE_H
#define SB_ICE_H

#include "sb_buf.h"
#include "sb_config.h"

#include <stddef.h>
#include <stdint.h>

/* Characters of a TURN credential: base64 of a 20-byte HMAC-SHA1, with
 * its padding, without the NUL. */
#define SB_TURN_CREDENTIAL_LEN 28

/*
 * Appends to out the member "iceServers":[...] (its name included, no
 * comma before it) for a join of peer id (id_len bytes of valid UTF-8) at
 * time now, in seconds since the epoch:
 *   {"urls":[...]} with the stun: and stuns: URIs, when there are any, then
 *   {"urls":[...],"username":"<expiry>:<id>","credential":"..."} with the
 *   turn: and turns: URIs, when there are any and a TURN secret is set
 *   (sb_config_check makes sure there is),
 * expiry = now + cfg->turn_ttl.  Appends nothing when there is no entry to
 * give (no ICE servers).  If a credential cannot be made (out of memory,
 * or the crypto library failed) out is marked failed.  Any thread.
 */
void sb_ice_servers_json(const struct sb_config *cfg, const char *id,
			 size_t id_len, int64_t now, struct sb_buf *out);

/*
 * Writes the TURN REST credential of username (len bytes) under secret
 * (secret_len bytes): base64 (standard alphabet, padded) of
 * HMAC-SHA1(secret, username), NUL-terminated, into out[0..cap).  Returns
 * its length (SB_TURN_CREDENTIAL_LEN), -ENOSPC when cap is smaller than
 * that plus the NUL (out untouched), or -EIO when the crypto library
 * fails.  Any thread.
 */
int sb_turn_credential(const void *secret, size_t secret_len,
		       const char *username, size_t len, char *out, size_t cap);

#endif
