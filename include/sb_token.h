/*
 * Room tokens (protocol version 1.1): a JWT in the compact JWS form,
 * checked for one join, and HS256 tokens made for `switchboard token`.
 * Pure: no sockets, no event loop; OpenSSL's libcrypto for the signatures
 * and json-c for the two JSON parts.
 *
 * The form accepted, exactly:
 *
 * - At most SB_TOKEN_MAX bytes, refused before anything is decoded.
 * - Three parts separated by '.', each non-empty base64url (RFC 4648 §5)
 *   without padding: any byte outside A-Z a-z 0-9 '-' '_' (an '=', a space,
 *   a '+' or '/') refuses the token, and so does a part whose length leaves
 *   a lone character or whose last character carries bits that are not
 *   zero, so that each part has one spelling only.
 * - The header, a JSON object whose "alg" is a string equal to the key's
 *   algorithm: the key decides it, never the token ("none", or "HS256"
 *   against a public key, is refused like any other mismatch).  "typ" and
 *   other members are ignored, except "crit", which names extensions that
 *   must be understood (RFC 7515 §4.1.11): none is, so it is refused.
 * - The signature, checked before anything in the payload is looked at:
 *   HS256 is HMAC-SHA256 over "header.payload" compared in constant time;
 *   RS256 is RSASSA-PKCS1-v1_5 with SHA-256; ES256 is P-256 ECDSA with
 *   SHA-256, as JWS writes it: r and s as 32 bytes each (64 in all; any
 *   other length is refused).
 * - The payload, a JSON object with the claims below.  A claim of the wrong
 *   JSON type is refused (null included); other claims are ignored.
 *   exp     required number (integer or not); expired once now > exp + 30
 *   nbf     optional number; too early while now + 30 < nbf
 *   room    required string, equal byte for byte to the room joined
 *   sub     optional string; when present, equal to the id joined
 *   name    optional string of at most SB_TOKEN_NAME_MAX bytes, handed back
 *           for the caller to check as a nick
 *   aud     checked only when rules->audience is set: required, a string
 *           equal to it or an array of strings holding it
 *   iss     checked only when rules->issuer is set: required, equal to it
 *
 * JSON is read by json-c, strictly, with UTF-8 checked, with these
 * liberties of its own: of a member named twice the last one counts,
 * member names may be in single quotes, a number may end in '.', and NaN
 * and Infinity are numbers (a time that is not finite is refused here).
 * A token that takes them has still been signed by the key's owner.
 */
#ifndef SB_TOKEN_H
#define SB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sb_token_alg { SB_TOKEN_HS256, SB_TOKEN_RS256, SB_TOKEN_ES256 };

#define SB_TOKEN_MAX 4096		/* bytes of a token; longer is refused */
#define SB_TOKEN_LEEWAY 30		/* seconds of clock skew for exp, nbf */
#define SB_TOKEN_NAME_MAX 1024		/* bytes of the name claim */
#define SB_TOKEN_SECRET_MAX 65536	/* bytes of an HMAC secret */
#define SB_TOKEN_SECRET_MIN_GOOD 32	/* shorter secrets deserve a warning */
#define SB_TOKEN_RSA_MIN_BITS 2048

/* Opaque: the algorithm and the HMAC secret or the public key.  Immutable
 * once made: any number of threads may check tokens with one key at once. */
struct sb_token_key;

/* What sb_token_rules does not fix is not checked: NULL skips a rule. */
struct sb_token_rules {
	const char *audience;	/* "aud" must hold it (NUL-terminated) */
	const char *issuer;	/* "iss" must equal it (NUL-terminated) */
};

/* The claims a caller uses from a token that passed. */
struct sb_token_claims {
	bool has_name;				/* "name" was present */
	size_t name_len;			/* bytes of name, without its NUL */
	char name[SB_TOKEN_NAME_MAX + 1];	/* as decoded, NUL-terminated; may
						 * hold NUL or control bytes: the
						 * caller checks it as a nick */
};

/*
 * An HS256 key from the secret's len bytes (copied).  NULL with a reason in
 * msg when the secret is empty or over SB_TOKEN_SECRET_MAX bytes, or memory
 * runs out; msg never quotes the secret.  Any thread.
 */
struct sb_token_key *sb_token_key_secret(const void *secret, size_t len,
					 char *msg, size_t msglen);

/*
 * An RS256 or ES256 key from the PEM file at path, which must hold one
 * public key ("-----BEGIN PUBLIC KEY-----", SubjectPublicKeyInfo): an RSA
 * key of at least SB_TOKEN_RSA_MIN_BITS bits gives RS256, an EC key on P-256
 * gives ES256.  Anything else (a private key, a certificate, another curve
 * or key type, a short RSA key, several PEM blocks, no PEM at all) is
 * refused: NULL with a reason in msg that names the path, what the file
 * holds and what is accepted, and never quotes the file's contents.  Reads
 * the file (at most 64 KiB); any thread.
 */
struct sb_token_key *sb_token_key_public_pem(const char *path, char *msg,
					     size_t msglen);

/* The algorithm k verifies. */
enum sb_token_alg sb_token_key_alg(const struct sb_token_key *k);

/* "HS256", "RS256" or "ES256". */
const char *sb_token_alg_name(enum sb_token_alg alg);

/* Frees k (the secret wiped first); NULL is allowed.  No other thread may
 * be using k. */
void sb_token_key_free(struct sb_token_key *k);

/*
 * Checks the token tok[0..len) for a join of the room room[0..room_len)
 * under the id id[0..id_len) at time now (seconds since the epoch), with k
 * and rules (NULL: no audience or issuer rule).  0 with *out filled when
 * every rule above holds; -EACCES otherwise, with a short reason in why
 * naming the first rule that failed ("the token has expired", "the token is
 * for another room", "the token's alg is not HS256", "bad signature", ...);
 * -ENOMEM, with why saying so, when OpenSSL cannot allocate what a
 * signature check needs.  The reason is one of a fixed set of sentences:
 * it never holds the secret or any part of the token, so it may be sent to
 * the client and logged.  Nothing the payload says is looked at before the
 * signature holds.  *out is zeroed on failure; why is "" on success.
 * k, rules and the strings are only read: any thread, with one key shared
 * by many.
 */
int sb_token_check(const struct sb_token_key *k,
		   const struct sb_token_rules *rules, const char *tok,
		   size_t len, const char *room, size_t room_len,
		   const char *id, size_t id_len, int64_t now,
		   struct sb_token_claims *out, char *why, size_t whylen);

/*
 * Writes into out[0..cap) an HS256 token, with its NUL, signed with the
 * secret's len bytes: header {"alg":"HS256","typ":"JWT"} and claims room,
 * sub (when id is not NULL), name (when name is not NULL), iat and exp.
 * Returns the token's length without the NUL; -EINVAL for an empty secret
 * or room (or a NULL one), -EMSGSIZE when the token would be longer than
 * SB_TOKEN_MAX (sb_token_check would refuse it), -ENOSPC when cap is too
 * small (out then holds ""), -ENOMEM.  Any thread.
 */
int sb_token_sign_hs256(const void *secret, size_t len, const char *room,
			const char *id, const char *name, int64_t iat,
			int64_t exp, char *out, size_t cap);

#endif
