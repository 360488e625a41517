/*
 * Fuzz target: room tokens (src/token.c), as a join brings them.
 *
 * Byte 0 picks what the rest is:
 *   0  a token as it comes, checked with an HS256, an RS256 and an ES256
 *      key: a refusal says why and leaves no claims; an acceptance must
 *      hold up when the target splits, decodes and verifies the token
 *      itself.
 *   1  header JSON, a NUL, payload JSON: the target encodes and signs
 *      them with HS256 (2: with ES256) and the verdict must be the one a
 *      second reading of the rules, written here, gives for that JSON.
 *   3  room, NUL, id, NUL, name: signed by sb_token_sign_hs256 and
 *      checked back, accepted with that name unless the signer refused.
 * Every reason must be free of the secret and of the token's parts.
 */
#include "fuzz.h"

#include "sb_token.h"
#include "sb_utf8.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000LL
#define SECRET "fuzz-secret-for-switchboard-tokens-0123456789"
#define ROOM "lobby"
#define ID "alice"
#define AUD "sfu"
#define ISS "https://auth.example.com"
#define CAP (4 * SB_TOKEN_MAX + 64)

static struct sb_token_key *k_hs, *k_rs, *k_es;
static EVP_PKEY *es_priv;
static const struct sb_token_rules rules = { AUD, ISS };

static struct sb_token_key *load_pub(EVP_PKEY *priv)
{
	char path[] = "/tmp/sb-fuzz-token-XXXXXX", msg[512];
	struct sb_token_key *k;
	FILE *f;
	int fd = mkstemp(path);

	SB_FUZZ_CHECK(fd >= 0, "mkstemp");
	f = fdopen(fd, "w");
	SB_FUZZ_CHECK(f && PEM_write_PUBKEY(f, priv) == 1, "writing a key");
	fclose(f);
	k = sb_token_key_public_pem(path, msg, sizeof(msg));
	unlink(path);
	SB_FUZZ_CHECK(k != NULL, "loading a key: %s", msg);
	return k;
}

static void init(void)
{
	EVP_PKEY *rsa;
	char msg[128];

	if (k_hs)
		return;
	k_hs = sb_token_key_secret(SECRET, strlen(SECRET), msg, sizeof(msg));
	rsa = EVP_RSA_gen(2048);
	es_priv = EVP_EC_gen("P-256");
	SB_FUZZ_CHECK(k_hs && rsa && es_priv, "set-up");
	k_rs = load_pub(rsa);
	k_es = load_pub(es_priv);
	EVP_PKEY_free(rsa);
}

/* ---- the target's own base64url ---- */

static size_t enc(const uint8_t *p, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = a[(acc << (6 - bits)) & 63];
	return o;
}

/* Lenient: any alphabet byte counts, anything else ends the decoding
 * with false. */
static bool dec(const char *s, size_t n, uint8_t *out, size_t *olen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"abcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *q = s[i] ? strchr(a, s[i]) : NULL;

		if (!q)
			return false;
		acc = acc << 6 | (uint32_t)(q - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*olen = o;
	return true;
}

/* why holds nothing of the secret nor any part of tok of 4 bytes or more. */
static void why_clean(const char *why, const char *tok, size_t n)
{
	size_t start = 0;

	SB_FUZZ_CHECK(!strstr(why, SECRET), "the secret in a reason");
	for (size_t i = 0; i <= n; i++) {
		if (i < n && tok[i] != '.')
			continue;
		if (i - start >= 4)
			SB_FUZZ_CHECK(!memmem(why, strlen(why), tok + start,
					      i - start),
				      "a part of the token in '%s'", why);
		start = i + 1;
	}
}

/* Checks tok with k for ROOM/ID at NOW; the verdict after the common
 * checks of its form. */
static int check(const struct sb_token_key *k,
		 const struct sb_token_rules *r, const char *tok, size_t n,
		 struct sb_token_claims *c)
{
	char why[256];
	int rc = sb_token_check(k, r, tok, n, ROOM, strlen(ROOM), ID,
				strlen(ID), NOW, c, why, sizeof(why));

	SB_FUZZ_CHECK(rc == 0 || rc == -EACCES, "rc %d", rc);
	if (rc) {
		SB_FUZZ_CHECK(why[0], "a refusal without a reason");
		SB_FUZZ_CHECK(!c->has_name && !c->name_len,
			      "claims left by a refusal");
		why_clean(why, tok, n);
	} else {
		SB_FUZZ_CHECK(!why[0], "a reason for an acceptance");
		SB_FUZZ_CHECK(n <= SB_TOKEN_MAX, "a token over the limit");
		SB_FUZZ_CHECK(!c->has_name || c->name_len <= SB_TOKEN_NAME_MAX,
			      "a name over its limit");
	}
	SB_FUZZ_CHECK(!ERR_peek_error(), "OpenSSL errors left behind");
	return rc;
}

/* ---- mode 0: a token as it comes ---- */

static void raw_token(const uint8_t *data, size_t size)
{
	const struct sb_token_key *keys[3] = { k_hs, k_rs, k_es };
	const char *tok = (const char *)data;

	for (int i = 0; i < 3; i++) {
		struct sb_token_claims c;
		static uint8_t part[CAP];
		const char *d1, *d2;
		size_t n;

		if (check(keys[i], NULL, tok, size, &c))
			continue;
		/* accepted: it must have three parts whose signature
		 * verifies by the target's own reading */
		d1 = memchr(tok, '.', size);
		SB_FUZZ_CHECK(d1, "accepted without dots");
		d2 = memchr(d1 + 1, '.', size - (size_t)(d1 + 1 - tok));
		SB_FUZZ_CHECK(d2, "accepted with two parts");
		SB_FUZZ_CHECK(dec(d2 + 1, size - (size_t)(d2 + 1 - tok), part,
				  &n), "accepted with a bad signature part");
		SB_FUZZ_CHECK(i == 0, "a public-key token accepted by fuzzing");
		{
			uint8_t mac[32];
			unsigned int ml;

			SB_FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, strlen(SECRET),
					   data, (size_t)(d2 - tok), mac, &ml),
				      "HMAC");
			SB_FUZZ_CHECK(n == 32 && !memcmp(mac, part, 32),
				      "accepted with a MAC that does not match");
		}
	}
}

/* ---- modes 1 and 2: signed JSON against a second reading ---- */

static json_object *object(const char *p, size_t n)
{
	struct json_tokener *t;
	json_object *o;

	if (memchr(p, 0, n))
		return NULL;
	t = json_tokener_new_ex(16);
	json_tokener_set_flags(t, JSON_TOKENER_STRICT |
				  JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(t, p, (int)n);
	if (o && (json_tokener_get_error(t) != json_tokener_success ||
		  json_tokener_get_parse_end(t) != n ||
		  json_object_get_type(o) != json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(t);
	return o;
}

static bool str_eq(json_object *v, const char *s)
{
	return json_object_get_type(v) == json_type_string &&
	       (size_t)json_object_get_string_len(v) == strlen(s) &&
	       !memcmp(json_object_get_string(v), s, strlen(s));
}

/* A time claim as a wide integer or a double; false if not a number. */
static bool time_of(json_object *v, bool *is_int, __int128 *i, double *d)
{
	if (json_object_get_type(v) == json_type_int) {
		int64_t x = json_object_get_int64(v);

		*is_int = true;
		*i = x == INT64_MAX ? (__int128)json_object_get_uint64(v) : x;
		return true;
	}
	if (json_object_get_type(v) == json_type_double) {
		*is_int = false;
		*d = json_object_get_double(v);
		return isfinite(*d);
	}
	return false;
}

/* The rules of sb_token.h read again: whether this JSON, rightly signed
 * with alg, passes for ROOM/ID at NOW with rules; *name set. */
static bool model(const char *h, size_t hn, const char *p, size_t pn,
		  const char *alg, char **name, size_t *name_len)
{
	json_object *hdr = object(h, hn), *pay = NULL, *v;
	bool ok = false, is_int;
	__int128 i;
	double d;

	*name = NULL;
	if (!hdr || !json_object_object_get_ex(hdr, "alg", &v) ||
	    !str_eq(v, alg) || json_object_object_get_ex(hdr, "crit", NULL))
		goto out;
	pay = object(p, pn);
	if (!pay)
		goto out;
	if (!json_object_object_get_ex(pay, "exp", &v) ||
	    !time_of(v, &is_int, &i, &d))
		goto out;
	if (is_int ? (__int128)NOW > i + 30 : (double)(NOW - 30) > d)
		goto out;
	if (json_object_object_get_ex(pay, "nbf", &v)) {
		if (!time_of(v, &is_int, &i, &d))
			goto out;
		if (is_int ? (__int128)NOW + 30 < i : (double)(NOW + 30) < d)
			goto out;
	}
	if (!json_object_object_get_ex(pay, "room", &v) || !str_eq(v, ROOM))
		goto out;
	if (json_object_object_get_ex(pay, "sub", &v) && !str_eq(v, ID))
		goto out;
	if (!json_object_object_get_ex(pay, "aud", &v))
		goto out;
	if (json_object_get_type(v) == json_type_array) {
		bool found = false;

		for (size_t k = 0; k < json_object_array_length(v); k++) {
			json_object *a = json_object_array_get_idx(v, k);

			if (json_object_get_type(a) != json_type_string)
				goto out;
			found |= str_eq(a, AUD);
		}
		if (!found)
			goto out;
	} else if (!str_eq(v, AUD)) {
		goto out;
	}
	if (!json_object_object_get_ex(pay, "iss", &v) || !str_eq(v, ISS))
		goto out;
	if (json_object_object_get_ex(pay, "name", &v)) {
		if (json_object_get_type(v) != json_type_string ||
		    json_object_get_string_len(v) > SB_TOKEN_NAME_MAX)
			goto out;
		*name_len = (size_t)json_object_get_string_len(v);
		*name = malloc(*name_len + 1);
		SB_FUZZ_CHECK(*name, "malloc");
		memcpy(*name, json_object_get_string(v), *name_len + 1);
	}
	ok = true;
out:
	json_object_put(hdr);
	json_object_put(pay);
	return ok;
}

static void signed_json(const uint8_t *data, size_t size, bool es)
{
	static const char std_hs[] = "{\"alg\":\"HS256\"}";
	static const char std_es[] = "{\"alg\":\"ES256\"}";
	static char tok[CAP];
	const uint8_t *nul = memchr(data, 0, size);
	const char *h, *p;
	char *name = NULL;
	size_t hn, pn, n, name_len = 0;
	uint8_t sig[80];
	size_t sn;
	bool want;
	struct sb_token_claims c;
	int rc;

	if (nul) {
		h = (const char *)data;
		hn = (size_t)(nul - data);
		p = (const char *)nul + 1;
		pn = size - hn - 1;
	} else {
		h = es ? std_es : std_hs;
		hn = strlen(h);
		p = (const char *)data;
		pn = size;
	}
	if (hn > SB_TOKEN_MAX || pn > SB_TOKEN_MAX)
		return;
	n = enc((const uint8_t *)h, hn, tok);
	tok[n++] = '.';
	n += enc((const uint8_t *)p, pn, tok + n);
	if (es) {
		unsigned char der[80];
		const unsigned char *q = der;
		size_t dl = sizeof(der);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ECDSA_SIG *s;
		const BIGNUM *r, *ss;

		SB_FUZZ_CHECK(ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(),
							NULL, es_priv) == 1 &&
			      EVP_DigestSign(ctx, der, &dl,
					     (const unsigned char *)tok, n) == 1,
			      "ES256 signing");
		EVP_MD_CTX_free(ctx);
		s = d2i_ECDSA_SIG(NULL, &q, (long)dl);
		SB_FUZZ_CHECK(s, "DER");
		ECDSA_SIG_get0(s, &r, &ss);
		BN_bn2binpad(r, sig, 32);
		BN_bn2binpad(ss, sig + 32, 32);
		ECDSA_SIG_free(s);
		sn = 64;
	} else {
		unsigned int ml;

		SB_FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, strlen(SECRET),
				   (const unsigned char *)tok, n, sig, &ml),
			      "HMAC");
		sn = ml;
	}
	tok[n++] = '.';
	n += enc(sig, sn, tok + n);

	want = n <= SB_TOKEN_MAX && hn && pn &&
	       model(h, hn, p, pn, es ? "ES256" : "HS256", &name, &name_len);
	rc = check(es ? k_es : k_hs, &rules, tok, n, &c);
	SB_FUZZ_CHECK((rc == 0) == want, "verdict %d, the second reading %d",
		      rc, want);
	if (want) {
		SB_FUZZ_CHECK(c.has_name == (name != NULL), "name presence");
		SB_FUZZ_CHECK(!name || (c.name_len == name_len &&
					!memcmp(c.name, name, name_len)),
			      "name differs");
	}
	free(name);
}

/* ---- mode 3: the signer, checked back ---- */

static bool utf8(const char *s)
{
	struct sb_utf8 u;

	sb_utf8_init(&u);
	return sb_utf8_feed(&u, s, strlen(s)) && sb_utf8_complete(&u);
}

static void sign_back(const uint8_t *data, size_t size)
{
	static char buf[CAP], tok[SB_TOKEN_MAX + 1];
	char *room, *id = NULL, *name = NULL, *z;
	struct sb_token_claims c;
	char why[256];
	bool bad;
	int n, rc;

	if (size >= sizeof(buf))
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	room = buf;
	z = memchr(buf, 0, size);
	if (z && z < buf + size) {
		id = z + 1;
		z = strchr(id, '\0');
		if (z < buf + size)
			name = z + 1;
	}
	n = sb_token_sign_hs256(SECRET, strlen(SECRET), room, id, name, NOW,
				NOW + 60, tok, sizeof(tok));
	bad = !*room || !utf8(room) || (id && !utf8(id)) ||
	      (name && !utf8(name));
	SB_FUZZ_CHECK((n == -EINVAL) == bad, "sign %d for strings %s", n,
		      bad ? "refused" : "good");
	if (n < 0) {
		SB_FUZZ_CHECK(n == -EINVAL || n == -EMSGSIZE, "sign %d", n);
		return;
	}
	SB_FUZZ_CHECK((size_t)n == strlen(tok) && n <= SB_TOKEN_MAX,
		      "sign length");
	rc = sb_token_check(k_hs, NULL, tok, (size_t)n, room, strlen(room),
			    id ? id : "x", id ? strlen(id) : 1, NOW + 90, &c,
			    why, sizeof(why));
	if (name && strlen(name) > SB_TOKEN_NAME_MAX) {
		SB_FUZZ_CHECK(rc == -EACCES && strstr(why, "name"),
			      "a long name passed: %s", why);
		return;
	}
	SB_FUZZ_CHECK(rc == 0, "a signed token refused: %s", why);
	SB_FUZZ_CHECK(c.has_name == (name != NULL), "name presence");
	SB_FUZZ_CHECK(!name || (c.name_len == strlen(name) &&
				!strcmp(c.name, name)), "name differs");
	rc = sb_token_check(k_hs, NULL, tok, (size_t)n, room, strlen(room),
			    id ? id : "x", id ? strlen(id) : 1, NOW + 91, &c,
			    why, sizeof(why));
	SB_FUZZ_CHECK(rc == -EACCES && strstr(why, "expired"),
		      "not expired after exp + 31: %s", why);
	if (id) {
		rc = sb_token_check(k_hs, NULL, tok, (size_t)n, room,
				    strlen(room), id, strlen(id) + 1, NOW, &c,
				    why, sizeof(why));
		SB_FUZZ_CHECK(rc == -EACCES, "another id passed");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	init();
	switch (data[0] % 4) {
	case 0:
		raw_token(data + 1, size - 1);
		break;
	case 1:
	case 2:
		signed_json(data + 1, size - 1, data[0] % 4 == 2);
		break;
	default:
		sign_back(data + 1, size - 1);
		break;
	}
	return 0;
}
