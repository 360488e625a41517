/*
 * Room tokens (sb_token.h): keys, the check of a compact JWS token for one
 * join (its form, its alg, its signature, then its claims), and HS256
 * tokens made for the command line.
 *
 * Every OpenSSL call that fails leaves errors in the calling thread's
 * queue; they are cleared before returning, since the thread may be a
 * worker whose TLS reads look at that queue (SSL_get_error).
 */
#include "sb_token.h"

#include "sb_utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

/* The decoded size of any part of a token that passed the length check. */
#define PART_MAX (SB_TOKEN_MAX / 4 * 3 + 3)
/* A PEM public key file is a few hundred bytes; a key of 16384 bits fits. */
#define PEM_FILE_MAX 65536
/* JSON nesting: the claims are flat; aud goes one level down. */
#define JSON_DEPTH 16

#define HS256_LEN 32		/* an HMAC-SHA256 */
#define ES256_LEN 64		/* r || s, 32 bytes each */

struct sb_token_key {
	enum sb_token_alg alg;
	EVP_PKEY *pkey;			/* RS256, ES256 */
	size_t secret_len;		/* HS256 */
	unsigned char secret[];
};

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *sb_token_alg_name(enum sb_token_alg alg)
{
	switch (alg) {
	case SB_TOKEN_HS256:
		return "HS256";
	case SB_TOKEN_RS256:
		return "RS256";
	case SB_TOKEN_ES256:
		return "ES256";
	}
	return "?";
}

enum sb_token_alg sb_token_key_alg(const struct sb_token_key *k)
{
	return k->alg;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decodes the unpadded base64url s[0..n) into out (room for n / 4 * 3 + 2
 * bytes), setting *outlen.  false for an empty s, a byte outside the
 * alphabet, a length of 4k + 1, or a last character whose unused low bits
 * are not zero (so that no two spellings decode alike).
 */
static bool b64url_decode(const char *s, size_t n, unsigned char *out,
			  size_t *outlen)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (!n || n % 4 == 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc)		/* the leftover bits of the last character */
		return false;
	*outlen = o;
	return true;
}

/* The length of p[0..n) in unpadded base64url. */
static size_t b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes p[0..n) as unpadded base64url at out (b64url_len(n) bytes, no
 * NUL); returns the length written. */
static size_t b64url_encode(const unsigned char *p, size_t n, char *out)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	return o;
}

/* The JSON object in p[0..n), or NULL when it is not one whole object (a
 * raw NUL byte is never JSON; json-c is given none). */
static json_object *parse_object(const unsigned char *p, size_t n)
{
	struct json_tokener *t;
	json_object *o;

	if (n > INT_MAX || memchr(p, 0, n))
		return NULL;
	t = json_tokener_new_ex(JSON_DEPTH);
	if (!t)
		return NULL;
	json_tokener_set_flags(t, JSON_TOKENER_STRICT |
				  JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(t, (const char *)p, (int)n);
	if (o && (json_tokener_get_error(t) != json_tokener_success ||
		  json_tokener_get_parse_end(t) != n ||
		  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(t);
	return o;
}

/* ---- keys ---- */

static void say(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

struct sb_token_key *sb_token_key_secret(const void *secret, size_t len,
					 char *msg, size_t msglen)
{
	struct sb_token_key *k;

	if (!secret || !len) {
		say(msg, msglen, "the token secret is empty");
		return NULL;
	}
	if (len > SB_TOKEN_SECRET_MAX) {
		say(msg, msglen, "the token secret is %zu bytes, over the "
		    "limit of %d", len, SB_TOKEN_SECRET_MAX);
		return NULL;
	}
	k = calloc(1, sizeof(*k) + len);
	if (!k) {
		say(msg, msglen, "out of memory for the token secret");
		return NULL;
	}
	k->alg = SB_TOKEN_HS256;
	k->secret_len = len;
	memcpy(k->secret, secret, len);
	return k;
}

void sb_token_key_free(struct sb_token_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	OPENSSL_cleanse(k->secret, k->secret_len);
	free(k);
}

/* Reads the regular file at path, at most PEM_FILE_MAX bytes, into a new
 * buffer (*n bytes, with a NUL after them); NULL with the reason in msg. */
static char *read_small_file(const char *path, size_t *n, char *msg,
			     size_t msglen)
{
	struct stat st;
	char err[128];
	char *buf;
	size_t got = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		say(msg, msglen, "cannot open %s: %s", path,
		    strerror_r(errno, err, sizeof(err)));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		say(msg, msglen, "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	buf = malloc(PEM_FILE_MAX + 1);
	if (!buf) {
		say(msg, msglen, "out of memory reading %s", path);
		close(fd);
		return NULL;
	}
	do {
		r = read(fd, buf + got, PEM_FILE_MAX + 1 - got);
		if (r > 0)
			got += (size_t)r;
	} while ((r > 0 && got <= PEM_FILE_MAX) || (r < 0 && errno == EINTR));
	if (r < 0)
		say(msg, msglen, "cannot read %s: %s", path,
		    strerror_r(errno, err, sizeof(err)));
	else if (got > PEM_FILE_MAX)
		say(msg, msglen, "%s is over %d bytes: not a PEM public key",
		    path, PEM_FILE_MAX);
	close(fd);
	if (r < 0 || got > PEM_FILE_MAX) {
		OPENSSL_cleanse(buf, got);
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	*n = got;
	return buf;
}

/*
 * The PEM blocks of buf: how many "-----BEGIN " lines, and the label of
 * the first, of the first private key, and whether any is "PUBLIC KEY".
 * A label is copied only when it looks like one (capitals, digits,
 * spaces, '#'), so that nothing else of the file is ever repeated.
 */
struct pem_scan {
	int blocks;
	bool has_public;
	bool has_private;
	char first[48];
	char private_label[48];
};

static void pem_label(const char *p, char *out, size_t cap)
{
	size_t i = 0;

	for (; p[i] && i + 1 < cap; i++) {
		char c = p[i];

		if (c == '-')
			break;
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ' ' || c == '#'))
			break;
		out[i] = c;
	}
	if (strncmp(p + i, "-----", 5) || !i)
		i = 0;
	out[i] = '\0';
}

static void pem_scan(const char *buf, struct pem_scan *s)
{
	static const char begin[] = "-----BEGIN ";
	const char *p = buf;

	memset(s, 0, sizeof(*s));
	while ((p = strstr(p, begin))) {
		char label[48];

		if (p != buf && p[-1] != '\n') {
			p++;
			continue;
		}
		p += sizeof(begin) - 1;
		pem_label(p, label, sizeof(label));
		if (!s->blocks++)
			memcpy(s->first, label, sizeof(label));
		if (!strcmp(label, "PUBLIC KEY"))
			s->has_public = true;
		if (strstr(label, "PRIVATE KEY") && !s->has_private) {
			s->has_private = true;
			memcpy(s->private_label, label, sizeof(label));
		}
	}
}

#define ACCEPTED "; accepted: a PEM public key (BEGIN PUBLIC KEY), RSA of " \
		 "2048 bits or more (RS256) or EC P-256 (ES256)"

/* Says why the PEM blocks of path are not what is accepted; true when
 * they are (one PUBLIC KEY block). */
static bool pem_acceptable(const char *path, const struct pem_scan *s,
			   char *msg, size_t msglen)
{
	if (s->has_private) {
		say(msg, msglen, "%s holds a private key (%s), which the server "
		    "must not have: give its public key (openssl pkey -in KEY "
		    "-pubout)" ACCEPTED, path,
		    s->private_label[0] ? s->private_label : "PRIVATE KEY");
		return false;
	}
	if (!s->blocks) {
		say(msg, msglen, "%s holds no PEM block" ACCEPTED, path);
		return false;
	}
	if (s->blocks > 1) {
		say(msg, msglen, "%s holds %d PEM blocks, not one" ACCEPTED,
		    path, s->blocks);
		return false;
	}
	if (s->has_public)
		return true;
	if (!strcmp(s->first, "CERTIFICATE"))
		say(msg, msglen, "%s holds a certificate: give its public key "
		    "(openssl x509 -in CERT -pubkey -noout)" ACCEPTED, path);
	else if (!strcmp(s->first, "RSA PUBLIC KEY"))
		say(msg, msglen, "%s holds an RSA PUBLIC KEY (PKCS#1): write it "
		    "as a PUBLIC KEY (openssl rsa -RSAPublicKey_in -in FILE "
		    "-pubout)" ACCEPTED, path);
	else
		say(msg, msglen, "%s holds a PEM block of another kind (%s)"
		    ACCEPTED, path, s->first[0] ? s->first : "unnamed");
	return false;
}

/* The algorithm for pkey, or -1 with the reason in msg. */
static int pkey_alg(const char *path, EVP_PKEY *pkey, char *msg,
		    size_t msglen)
{
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);

		if (bits < SB_TOKEN_RSA_MIN_BITS) {
			say(msg, msglen, "%s holds an RSA key of %d bits, too "
			    "short" ACCEPTED, path, bits);
			return -1;
		}
		return SB_TOKEN_RS256;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64] = "";
		size_t glen = 0;

		if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen))
			group[0] = '\0';
		if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
			return SB_TOKEN_ES256;
		say(msg, msglen, "%s holds an EC key on %s, not P-256" ACCEPTED,
		    path, group[0] ? group : "a curve without a name");
		return -1;
	}
	{
		const char *type = EVP_PKEY_get0_type_name(pkey);

		say(msg, msglen, "%s holds a public key of type %s" ACCEPTED,
		    path, type ? type : "unknown");
	}
	return -1;
}

/* A public key is never encrypted: no prompt on the terminal, ever. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

struct sb_token_key *sb_token_key_public_pem(const char *path, char *msg,
					     size_t msglen)
{
	struct sb_token_key *k = NULL;
	struct pem_scan scan;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	BIO *bio = NULL;
	char *buf;
	size_t n = 0;
	int alg;

	say(msg, msglen, "%s", "");
	buf = read_small_file(path, &n, msg, msglen);
	if (!buf)
		return NULL;
	if (memchr(buf, 0, n)) {
		say(msg, msglen, "%s is not PEM text (DER? convert it with "
		    "openssl pkey -pubin -inform DER -in FILE -out FILE.pem)"
		    ACCEPTED, path);
		goto out;
	}
	pem_scan(buf, &scan);
	if (!pem_acceptable(path, &scan, msg, msglen))
		goto out;
	bio = BIO_new_mem_buf(buf, (int)n);
	if (bio)
		pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	if (!pkey) {
		say(msg, msglen, "%s: its PUBLIC KEY block does not decode"
		    ACCEPTED, path);
		goto out;
	}
	alg = pkey_alg(path, pkey, msg, msglen);
	if (alg < 0)
		goto out;
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!pctx || EVP_PKEY_public_check(pctx) != 1) {
		say(msg, msglen, "%s: its public key fails OpenSSL's checks "
		    "(not a valid %s key)", path,
		    sb_token_alg_name((enum sb_token_alg)alg));
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		say(msg, msglen, "out of memory for the key in %s", path);
		goto out;
	}
	k->alg = (enum sb_token_alg)alg;
	k->pkey = pkey;
	pkey = NULL;
out:
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	OPENSSL_cleanse(buf, n);
	free(buf);
	ERR_clear_error();
	return k;
}

/* ---- the check ---- */

/* What a check ends with: -EACCES and the reason. */
#define REFUSE(reason)                                                        \
	do {                                                                  \
		why_set(why, whylen, reason);                                 \
		rc = -EACCES;                                                 \
		goto out;                                                     \
	} while (0)

static void why_set(char *why, size_t whylen, const char *reason)
{
	if (whylen)
		snprintf(why, whylen, "%s", reason);
}

/* 1 when sig verifies input[0..n) with k, 0 when it does not, -ENOMEM. */
static int verify_hs256(const struct sb_token_key *k, const char *input,
			size_t n, const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int ok;

	if (!HMAC(EVP_sha256(), k->secret, (int)k->secret_len,
		  (const unsigned char *)input, n, mac, &maclen)) {
		ERR_clear_error();
		return -ENOMEM;
	}
	ok = siglen == HS256_LEN && maclen == HS256_LEN &&
	     !CRYPTO_memcmp(mac, sig, HS256_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

/* The DER ECDSA-Sig-Value of the JWS form r || s (32 bytes each) into der
 * (cap bytes); its length, or 0. */
static size_t es256_der(const unsigned char *sig, unsigned char *der,
			size_t cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL);
	BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
	size_t n = 0;
	int len;

	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return 0;
	}
	len = i2d_ECDSA_SIG(es, NULL);
	if (len > 0 && (size_t)len <= cap) {
		unsigned char *p = der;

		if (i2d_ECDSA_SIG(es, &p) == len)
			n = (size_t)len;
	}
	ECDSA_SIG_free(es);
	return n;
}

/* 1 when sig verifies input[0..n) with k's public key (SHA-256), 0 when it
 * does not, -ENOMEM.  A fresh context per call: the key is only read. */
static int verify_pkey(const struct sb_token_key *k, const char *input,
		       size_t n, const unsigned char *sig, size_t siglen)
{
	unsigned char der[80];
	EVP_MD_CTX *ctx;
	int rc;

	if (k->alg == SB_TOKEN_ES256) {
		siglen = es256_der(sig, der, sizeof(der));
		if (!siglen) {
			ERR_clear_error();
			return -ENOMEM;
		}
		sig = der;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		ERR_clear_error();
		return -ENOMEM;
	}
	rc = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey);
	if (rc == 1)
		rc = EVP_DigestVerify(ctx, sig, siglen,
				      (const unsigned char *)input, n);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc == 1;
}

/* The member name of o: false when absent; *v is NULL for a JSON null. */
static bool member(json_object *o, const char *name, json_object **v)
{
	*v = NULL;
	return json_object_object_get_ex(o, name, v);
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) ||
	       json_object_is_type(v, json_type_double);
}

/* For a string v, whether it equals p[0..n). */
static bool string_is(json_object *v, const char *p, size_t n)
{
	int len = json_object_get_string_len(v);

	return len >= 0 && (size_t)len == n &&
	       (!n || !memcmp(json_object_get_string(v), p, n));
}

/* Whether a number v is past now + leeway: now > v + leeway (exp). */
static bool expired(json_object *v, int64_t now)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t e = json_object_get_int64(v);	/* saturates */

		return e <= INT64_MAX - SB_TOKEN_LEEWAY &&
		       now > e + SB_TOKEN_LEEWAY;
	}
	return (double)now > json_object_get_double(v) + SB_TOKEN_LEEWAY;
}

/* Whether now is before a number v less the leeway: now + leeway < v. */
static bool too_early(json_object *v, int64_t now)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t b = json_object_get_int64(v);

		return b >= INT64_MIN + SB_TOKEN_LEEWAY &&
		       now < b - SB_TOKEN_LEEWAY;
	}
	return (double)now + SB_TOKEN_LEEWAY < json_object_get_double(v);
}

/* A time claim must be a finite number. */
static bool finite_number(json_object *v)
{
	return is_number(v) && (json_object_is_type(v, json_type_int) ||
				isfinite(json_object_get_double(v)));
}

/* The claims of payload p against the join; NULL when they pass, else the
 * reason. */
static const char *check_claims(json_object *p,
				const struct sb_token_rules *rules,
				const char *room, size_t room_len,
				const char *id, size_t id_len, int64_t now,
				struct sb_token_claims *out)
{
	json_object *v;

	if (!member(p, "exp", &v))
		return "the token has no exp";
	if (!finite_number(v))
		return "the token's exp is not a number";
	if (expired(v, now))
		return "the token has expired";
	if (member(p, "nbf", &v)) {
		if (!finite_number(v))
			return "the token's nbf is not a number";
		if (too_early(v, now))
			return "the token is not valid yet (nbf)";
	}
	if (!member(p, "room", &v))
		return "the token has no room";
	if (!json_object_is_type(v, json_type_string))
		return "the token's room is not a string";
	if (!string_is(v, room, room_len))
		return "the token is for another room";
	if (member(p, "sub", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return "the token's sub is not a string";
		if (!string_is(v, id, id_len))
			return "the token is for another id (sub)";
	}
	if (rules && rules->audience) {
		const char *aud = rules->audience;
		size_t alen = strlen(aud);

		if (!member(p, "aud", &v))
			return "the token has no aud";
		if (json_object_is_type(v, json_type_string)) {
			if (!string_is(v, aud, alen))
				return "the token is for another audience";
		} else if (json_object_is_type(v, json_type_array)) {
			size_t n = json_object_array_length(v);
			bool found = false;

			for (size_t i = 0; i < n; i++) {
				json_object *a = json_object_array_get_idx(v, i);

				if (!json_object_is_type(a, json_type_string))
					return "the token's aud is not a string "
					       "or an array of strings";
				if (string_is(a, aud, alen))
					found = true;
			}
			if (!found)
				return "the token is for another audience";
		} else {
			return "the token's aud is not a string or an array "
			       "of strings";
		}
	}
	if (rules && rules->issuer) {
		if (!member(p, "iss", &v))
			return "the token has no iss";
		if (!json_object_is_type(v, json_type_string))
			return "the token's iss is not a string";
		if (!string_is(v, rules->issuer, strlen(rules->issuer)))
			return "the token is from another issuer";
	}
	if (member(p, "name", &v)) {
		int len;

		if (!json_object_is_type(v, json_type_string))
			return "the token's name is not a string";
		len = json_object_get_string_len(v);
		if (len < 0 || (size_t)len > SB_TOKEN_NAME_MAX)
			return "the token's name is too long";
		out->has_name = true;
		out->name_len = (size_t)len;
		memcpy(out->name, json_object_get_string(v), (size_t)len);
		out->name[len] = '\0';
	}
	return NULL;
}

int sb_token_check(const struct sb_token_key *k,
		   const struct sb_token_rules *rules, const char *tok,
		   size_t len, const char *room, size_t room_len,
		   const char *id, size_t id_len, int64_t now,
		   struct sb_token_claims *out, char *why, size_t whylen)
{
	unsigned char hdr[PART_MAX], pay[PART_MAX], sig[PART_MAX];
	const char *dot1, *dot2, *alg, *reason;
	size_t hlen, plen, slen, hn, pn, sn;
	json_object *header = NULL, *payload = NULL, *v;
	int rc = 0, ok;

	memset(out, 0, sizeof(*out));
	why_set(why, whylen, "");
	if (len > SB_TOKEN_MAX)
		REFUSE("the token is too long");
	dot1 = memchr(tok, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok))
		    : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)))
		REFUSE("the token is not three parts separated by dots");
	hlen = (size_t)(dot1 - tok);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(dot2 + 1 - tok);

	/* the header and the alg it names */
	if (!hlen)
		REFUSE("the token's header is empty");
	if (!b64url_decode(tok, hlen, hdr, &hn))
		REFUSE("the token's header is not base64url");
	header = parse_object(hdr, hn);
	if (!header)
		REFUSE("the token's header is not a JSON object");
	if (!member(header, "alg", &v))
		REFUSE("the token's header has no alg");
	if (!json_object_is_type(v, json_type_string))
		REFUSE("the token's alg is not a string");
	alg = sb_token_alg_name(k->alg);
	if (!string_is(v, alg, strlen(alg))) {
		if (whylen)
			snprintf(why, whylen, "the token's alg is not %s", alg);
		rc = -EACCES;
		goto out;
	}
	if (member(header, "crit", &v))
		REFUSE("the token's header has crit (no extension is "
		       "supported)");

	/* the form of the other two parts, then the signature */
	if (!plen)
		REFUSE("the token's payload is empty");
	if (!b64url_decode(dot1 + 1, plen, pay, &pn))
		REFUSE("the token's payload is not base64url");
	if (!slen)
		REFUSE("the token has no signature");
	if (!b64url_decode(dot2 + 1, slen, sig, &sn))
		REFUSE("the token's signature is not base64url");
	if (k->alg == SB_TOKEN_ES256 && sn != ES256_LEN)
		REFUSE("the token's signature is not 64 bytes (ES256)");
	if (k->alg == SB_TOKEN_HS256)
		ok = verify_hs256(k, tok, (size_t)(dot2 - tok), sig, sn);
	else
		ok = verify_pkey(k, tok, (size_t)(dot2 - tok), sig, sn);
	if (ok < 0) {
		why_set(why, whylen, "out of memory checking the token");
		rc = ok;
		goto out;
	}
	if (!ok)
		REFUSE("bad signature");

	/* signed by the key's owner: now what it says */
	payload = parse_object(pay, pn);
	if (!payload)
		REFUSE("the token's payload is not a JSON object");
	reason = check_claims(payload, rules, room, room_len, id, id_len, now,
			      out);
	if (reason)
		REFUSE(reason);
out:
	json_object_put(header);
	json_object_put(payload);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- signing ---- */

static bool utf8_ok(const char *s)
{
	struct sb_utf8 u;

	sb_utf8_init(&u);
	return sb_utf8_feed(&u, s, strlen(s)) && sb_utf8_complete(&u);
}

/* Adds v (NULL when it could not be made) to o as name; 0 or -1. */
static int add(json_object *o, const char *name, json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, name, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

int sb_token_sign_hs256(const void *secret, size_t len, const char *room,
			const char *id, const char *name, int64_t iat,
			int64_t exp, char *out, size_t cap)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	json_object *claims;
	const char *payload;
	size_t hl = sizeof(header) - 1, pl, total, o;
	int rc;

	if (cap)
		out[0] = '\0';
	if (!secret || !len || len > SB_TOKEN_SECRET_MAX || !room || !*room ||
	    !utf8_ok(room) || (id && !utf8_ok(id)) || (name && !utf8_ok(name)))
		return -EINVAL;
	claims = json_object_new_object();
	if (!claims)
		return -ENOMEM;
	rc = add(claims, "room", json_object_new_string(room));
	if (!rc && id)
		rc = add(claims, "sub", json_object_new_string(id));
	if (!rc && name)
		rc = add(claims, "name", json_object_new_string(name));
	if (!rc)
		rc = add(claims, "iat", json_object_new_int64(iat));
	if (!rc)
		rc = add(claims, "exp", json_object_new_int64(exp));
	payload = rc ? NULL : json_object_to_json_string_ext(claims,
				JSON_C_TO_STRING_PLAIN |
				JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!payload) {
		json_object_put(claims);
		return -ENOMEM;
	}
	pl = strlen(payload);
	if (pl > SB_TOKEN_MAX) {
		json_object_put(claims);
		return -EMSGSIZE;
	}
	total = b64url_len(hl) + 1 + b64url_len(pl) + 1 + b64url_len(HS256_LEN);
	if (total > SB_TOKEN_MAX) {
		json_object_put(claims);
		return -EMSGSIZE;
	}
	if (total + 1 > cap) {
		json_object_put(claims);
		return -ENOSPC;
	}
	o = b64url_encode((const unsigned char *)header, hl, out);
	out[o++] = '.';
	o += b64url_encode((const unsigned char *)payload, pl, out + o);
	json_object_put(claims);
	if (!HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)out,
		  o, mac, &maclen) || maclen != HS256_LEN) {
		ERR_clear_error();
		out[0] = '\0';
		return -ENOMEM;
	}
	out[o++] = '.';
	o += b64url_encode(mac, HS256_LEN, out + o);
	OPENSSL_cleanse(mac, sizeof(mac));
	out[o] = '\0';
	return (int)o;
}
