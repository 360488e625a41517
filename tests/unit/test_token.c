/*
 * Room tokens (sb_token): tokens made here with OpenSSL (an RSA 2048 and an
 * EC P-256 key generated per run, HMAC for HS256) and two HS256 tokens made
 * by Node.js's crypto module, checked against every rule of sb_token.h:
 * the form, the alg fixed by the key, the signature, each claim and its
 * type, the leeway at its edges, the size limit; the keys a PEM file may
 * and may not hold; the signer against the independent vector; one key
 * shared by several threads.  Every refusal is checked for its reason and
 * for never repeating the secret or a part of the token.
 */
#include "check.h"

#include "sb_token.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define NOW 1700000000LL
#define SECRET "switchboard-test-secret-0123456789abcdef"

/* Made by Node.js 20 (an implementation independent of this one):
 *   node -e 'const c=require("crypto");
 *     const b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
 *     const i=b({alg:"HS256",typ:"JWT"})+"."+b({room:"lobby",sub:"alice",
 *       name:"Alice",iat:1700000000,exp:1700003600});
 *     console.log(i+"."+c.createHmac("sha256",
 *       "switchboard-test-secret-0123456789abcdef").update(i)
 *       .digest("base64url"))'
 */
static const char node_token[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	"eyJyb29tIjoibG9iYnkiLCJzdWIiOiJhbGljZSIsIm5hbWUiOiJBbGljZSIsImlhdCI6"
	"MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."
	"tlilrb7AuF_Qh7wxA43DAubkF9kY2aA0FeKkYw0Afus";

/* The same command with other header members first and around alg, a
 * fractional exp, an nbf, aud as an array, iss, a nested claim and a room
 * outside ASCII:
 *   const i=b({typ:"JWT",alg:"HS256",kid:"k1",x5u:"https://example.com/k"})
 *     +"."+b({room:"r\u00e9union",exp:1700003600.5,nbf:1699999999,
 *       aud:["other","sfu"],iss:"https://auth.example.com",
 *       extra:{a:[1,2]}});
 */
static const char node_token_extras[] =
	"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwieDV1IjoiaHR0cHM6"
	"Ly9leGFtcGxlLmNvbS9rIn0."
	"eyJyb29tIjoicsOpdW5pb24iLCJleHAiOjE3MDAwMDM2MDAuNSwibmJmIjoxNjk5OTk5"
	"OTk5LCJhdWQiOlsib3RoZXIiLCJzZnUiXSwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1w"
	"bGUuY29tIiwiZXh0cmEiOnsiYSI6WzEsMl19fQ."
	"5TNfbsSwM71l3e_hGF4zWyu9-pYH1bWX0VN8BacT9Jk";

/* ---- keys and tokens made by the test ---- */

static char tmpdir[64];
static EVP_PKEY *rsa_priv, *ec_priv;
static struct sb_token_key *k_hs, *k_rs, *k_es;
static char rsa_pub_pem[4096];		/* the RSA public key's PEM text */

#define TOK_CAP 16384

struct tok {
	char s[TOK_CAP];
	size_t n;
};

/* base64url without padding, by way of OpenSSL's base64 (not the
 * module's encoder). */
static size_t b64u(const void *p, size_t n, char *out)
{
	unsigned char tmp[TOK_CAP];
	int len;
	size_t o = 0;

	CHECK(n / 3 * 4 + 8 < sizeof(tmp));
	len = EVP_EncodeBlock(tmp, p, (int)n);
	CHECK(len >= 0);
	for (int i = 0; i < len; i++) {
		char c = (char)tmp[i];

		if (c == '=')
			break;
		out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	return o;
}

/* base64url decoding for the test's own edits (valid input only). */
static size_t unb64u(const char *s, size_t n, unsigned char *out)
{
	char tmp[TOK_CAP] = "";
	unsigned char raw[TOK_CAP];
	size_t m = 0;
	int len;

	CHECK(n > 0 && n + 3 < sizeof(tmp));
	for (size_t i = 0; i < n; i++)
		tmp[m++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (m % 4)
		tmp[m++] = '=';
	len = EVP_DecodeBlock(raw, (const unsigned char *)tmp, (int)m);
	CHECK(len >= 0);
	for (size_t i = m; i > 0 && tmp[i - 1] == '='; i--)
		len--;
	memcpy(out, raw, (size_t)len);
	return (size_t)len;
}

/* The signature of data with a private key as JWS writes it. */
static size_t sign_pkey(EVP_PKEY *key, const char *data, size_t n,
			unsigned char *sig)
{
	unsigned char der[1024];
	size_t dlen = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	CHECK(ctx != NULL);
	CHECK_EQ_INT(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
	CHECK_EQ_INT(EVP_DigestSign(ctx, der, &dlen,
				    (const unsigned char *)data, n), 1);
	EVP_MD_CTX_free(ctx);
	if (EVP_PKEY_is_a(key, "EC")) {
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
		const BIGNUM *r, *s;

		CHECK(es != NULL);
		ECDSA_SIG_get0(es, &r, &s);
		CHECK_EQ_INT(BN_bn2binpad(r, sig, 32), 32);
		CHECK_EQ_INT(BN_bn2binpad(s, sig + 32, 32), 32);
		ECDSA_SIG_free(es);
		return 64;
	}
	memcpy(sig, der, dlen);
	return dlen;
}

/* header.payload (JSON text as given) signed with key (NULL: HMAC with
 * the secret's slen bytes). */
static struct tok make_with(EVP_PKEY *key, const void *secret, size_t slen,
			    const char *header, const char *payload)
{
	struct tok t;
	unsigned char sig[1024];
	size_t sn;

	t.n = b64u(header, strlen(header), t.s);
	t.s[t.n++] = '.';
	t.n += b64u(payload, strlen(payload), t.s + t.n);
	if (key) {
		sn = sign_pkey(key, t.s, t.n, sig);
	} else {
		unsigned int ml = 0;

		CHECK(HMAC(EVP_sha256(), secret, (int)slen,
			   (const unsigned char *)t.s, t.n, sig, &ml) != NULL);
		sn = ml;
	}
	t.s[t.n++] = '.';
	t.n += b64u(sig, sn, t.s + t.n);
	t.s[t.n] = '\0';
	return t;
}

enum which { HS, RS, ES };

static const char *const alg_of[] = { "HS256", "RS256", "ES256" };

static struct tok make(enum which w, const char *header, const char *payload)
{
	if (w == HS)
		return make_with(NULL, SECRET, strlen(SECRET), header, payload);
	return make_with(w == RS ? rsa_priv : ec_priv, NULL, 0, header,
			 payload);
}

static const struct sb_token_key *key_of(enum which w)
{
	return w == HS ? k_hs : w == RS ? k_rs : k_es;
}

/* A token for w with the standard header and the given payload. */
static struct tok claims(enum which w, const char *payload)
{
	char header[64];

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
		 alg_of[w]);
	return make(w, header, payload);
}

/* ---- the checks ---- */

/* why names no secret and no part of t (parts of 4 bytes or more). */
static void why_is_clean(const char *why, const char *t, size_t n)
{
	size_t start = 0;

	CHECK(strstr(why, SECRET) == NULL);
	CHECK(strstr(why, "switchboard-test") == NULL);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && t[i] != '.')
			continue;
		if (i - start >= 4)
			CHECK(memmem(why, strlen(why), t + start,
				     i - start) == NULL);
		start = i + 1;
	}
}

static void refuse_full(const struct sb_token_key *k,
			const struct sb_token_rules *rules, const char *t,
			size_t n, const char *room, const char *id,
			int64_t now, const char *want, int line)
{
	struct sb_token_claims c;
	char why[256] = "x";
	int rc;

	memset(&c, 0x5a, sizeof(c));
	rc = sb_token_check(k, rules, t, n, room, strlen(room), id, strlen(id),
			    now, &c, why, sizeof(why));
	if (rc != -EACCES || !strstr(why, want))
		fprintf(stderr, "line %d: rc %d, why '%s', want '%s'\n", line,
			rc, why, want);
	CHECK_EQ_INT(rc, -EACCES);
	CHECK(strstr(why, want) != NULL);
	CHECK(!c.has_name && c.name_len == 0 && c.name[0] == '\0');
	why_is_clean(why, t, n);
}

static struct sb_token_claims accept_full(const struct sb_token_key *k,
					  const struct sb_token_rules *rules,
					  const char *t, size_t n,
					  const char *room, const char *id,
					  int64_t now, int line)
{
	struct sb_token_claims c;
	char why[256] = "x";
	int rc;

	rc = sb_token_check(k, rules, t, n, room, strlen(room), id, strlen(id),
			    now, &c, why, sizeof(why));
	if (rc)
		fprintf(stderr, "line %d: rc %d, why '%s'\n", line, rc, why);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(why, "");
	return c;
}

/* The usual join: room "lobby", id "alice", at NOW, no extra rules. */
#define REFUSE(k, t, want) \
	refuse_full(k, NULL, (t).s, (t).n, "lobby", "alice", NOW, want, __LINE__)
#define ACCEPT(k, t) \
	accept_full(k, NULL, (t).s, (t).n, "lobby", "alice", NOW, __LINE__)
#define REFUSE_AT(k, t, now, want) \
	refuse_full(k, NULL, (t).s, (t).n, "lobby", "alice", now, want, __LINE__)
#define ACCEPT_AT(k, t, now) \
	accept_full(k, NULL, (t).s, (t).n, "lobby", "alice", now, __LINE__)
#define REFUSE_R(k, r, t, want) \
	refuse_full(k, r, (t).s, (t).n, "lobby", "alice", NOW, want, __LINE__)
#define ACCEPT_R(k, r, t) \
	accept_full(k, r, (t).s, (t).n, "lobby", "alice", NOW, __LINE__)
#define REFUSE_S(k, s, want) \
	refuse_full(k, NULL, s, strlen(s), "lobby", "alice", NOW, want, __LINE__)

static struct tok str_tok(const char *s)
{
	struct tok t;

	t.n = strlen(s);
	CHECK(t.n < sizeof(t.s));
	memcpy(t.s, s, t.n + 1);
	return t;
}

/* The standard valid claims, for each algorithm. */
#define GOOD "{\"room\":\"lobby\",\"sub\":\"alice\",\"exp\":1700003600}"

/* ---- set-up ---- */

static void write_file(const char *name, const void *p, size_t n, char *path,
		       size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_EQ_SIZE(fwrite(p, 1, n, f), n);
	CHECK_EQ_INT(fclose(f), 0);
}

/* Writes key's public half as PEM to tmpdir/name; path set. */
static void write_pub(EVP_PKEY *key, const char *name, char *path, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	CHECK(b != NULL);
	CHECK_EQ_INT(PEM_write_bio_PUBKEY(b, key), 1);
	n = BIO_get_mem_data(b, &p);
	CHECK(n > 0);
	write_file(name, p, (size_t)n, path, cap);
	BIO_free(b);
}

static void setup(void)
{
	char path[256], msg[512] = "";
	BIO *b;
	char *p;
	long n;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sb-token-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	rsa_priv = EVP_RSA_gen(2048);
	ec_priv = EVP_EC_gen("P-256");
	CHECK(rsa_priv != NULL && ec_priv != NULL);

	k_hs = sb_token_key_secret(SECRET, strlen(SECRET), msg, sizeof(msg));
	CHECK(k_hs != NULL);
	write_pub(rsa_priv, "rsa.pem", path, sizeof(path));
	k_rs = sb_token_key_public_pem(path, msg, sizeof(msg));
	if (!k_rs)
		fprintf(stderr, "%s\n", msg);
	CHECK(k_rs != NULL);
	write_pub(ec_priv, "ec.pem", path, sizeof(path));
	k_es = sb_token_key_public_pem(path, msg, sizeof(msg));
	if (!k_es)
		fprintf(stderr, "%s\n", msg);
	CHECK(k_es != NULL);

	b = BIO_new(BIO_s_mem());
	CHECK(b != NULL);
	CHECK_EQ_INT(PEM_write_bio_PUBKEY(b, rsa_priv), 1);
	n = BIO_get_mem_data(b, &p);
	CHECK(n > 0 && (size_t)n < sizeof(rsa_pub_pem));
	memcpy(rsa_pub_pem, p, (size_t)n);
	BIO_free(b);
}

static void teardown(void)
{
	char cmd[128];

	sb_token_key_free(k_hs);
	sb_token_key_free(k_rs);
	sb_token_key_free(k_es);
	EVP_PKEY_free(rsa_priv);
	EVP_PKEY_free(ec_priv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* ---- tests ---- */

static void test_keys(void)
{
	CHECK_EQ_INT(sb_token_key_alg(k_hs), SB_TOKEN_HS256);
	CHECK_EQ_INT(sb_token_key_alg(k_rs), SB_TOKEN_RS256);
	CHECK_EQ_INT(sb_token_key_alg(k_es), SB_TOKEN_ES256);
	CHECK_EQ_STR(sb_token_alg_name(SB_TOKEN_HS256), "HS256");
	CHECK_EQ_STR(sb_token_alg_name(SB_TOKEN_RS256), "RS256");
	CHECK_EQ_STR(sb_token_alg_name(SB_TOKEN_ES256), "ES256");
	sb_token_key_free(NULL);
}

/* The tokens made by Node.js: accepted, with their claims read. */
static void test_independent_vectors(void)
{
	struct tok t = str_tok(node_token), x = str_tok(node_token_extras);
	struct sb_token_rules rules = { "sfu", "https://auth.example.com" };
	struct sb_token_claims c;

	c = ACCEPT(k_hs, t);
	CHECK(c.has_name);
	CHECK_EQ_MEM(c.name, c.name_len, "Alice", 5);
	CHECK_EQ_STR(c.name, "Alice");
	refuse_full(k_hs, NULL, t.s, t.n, "lobby", "bob", NOW,
		    "another id", __LINE__);
	refuse_full(k_hs, NULL, t.s, t.n, "lobby2", "alice", NOW,
		    "another room", __LINE__);
	ACCEPT_AT(k_hs, t, 1700003600LL + 30);
	REFUSE_AT(k_hs, t, 1700003600LL + 31, "expired");
	/* another secret, one byte shorter or longer: bad signature */
	{
		char msg[128];
		struct sb_token_key *k1 = sb_token_key_secret(SECRET, strlen(SECRET) - 1,
							      msg, sizeof(msg));
		struct sb_token_key *k2 = sb_token_key_secret(SECRET "x",
							      strlen(SECRET) + 1,
							      msg, sizeof(msg));

		CHECK(k1 && k2);
		REFUSE(k1, t, "bad signature");
		REFUSE(k2, t, "bad signature");
		sb_token_key_free(k1);
		sb_token_key_free(k2);
	}

	/* typ first, kid and x5u ignored, exp fractional, aud an array */
	c = accept_full(k_hs, &rules, x.s, x.n, "r\xc3\xa9union", "anyone",
			NOW, __LINE__);
	CHECK(!c.has_name);
	accept_full(k_hs, &rules, x.s, x.n, "r\xc3\xa9union", "anyone",
		    1700003630LL, __LINE__);	/* exp + 29.5 */
	refuse_full(k_hs, &rules, x.s, x.n, "r\xc3\xa9union", "anyone",
		    1700003631LL, "expired", __LINE__);	/* exp + 30.5 */
	accept_full(k_hs, &rules, x.s, x.n, "r\xc3\xa9union", "anyone",
		    1699999999LL - 30, __LINE__);
	refuse_full(k_hs, &rules, x.s, x.n, "r\xc3\xa9union", "anyone",
		    1699999999LL - 31, "not valid yet", __LINE__);
	refuse_full(k_hs, &rules, x.s, x.n, "reunion", "anyone", NOW,
		    "another room", __LINE__);
	/* no rules: aud and iss are not looked at */
	accept_full(k_hs, NULL, x.s, x.n, "r\xc3\xa9union", "anyone", NOW,
		    __LINE__);
}

/* The signer writes exactly what Node.js wrote for the same claims. */
static void test_sign_matches_vector(void)
{
	char out[1024];
	int n;

	n = sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby", "alice",
				"Alice", 1700000000, 1700003600, out,
				sizeof(out));
	CHECK_EQ_INT(n, (int)strlen(node_token));
	CHECK_EQ_STR(out, node_token);
}

static void test_sign_round_trip(void)
{
	char out[SB_TOKEN_MAX + 1], small[64];
	struct sb_token_claims c;
	struct tok t;
	int n;

	n = sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby", NULL, NULL,
				NOW, NOW + 60, out, sizeof(out));
	CHECK(n > 0);
	CHECK_EQ_SIZE(strlen(out), (size_t)n);
	t = str_tok(out);
	c = ACCEPT(k_hs, t);			/* no sub: any id */
	CHECK(!c.has_name);
	refuse_full(k_hs, NULL, t.s, t.n, "lobby", "zed", NOW + 91,
		    "expired", __LINE__);

	/* quotes, backslashes, control bytes and UTF-8 come back as given */
	n = sb_token_sign_hs256(SECRET, strlen(SECRET), "a \"room\"\\/",
				"id\t1", "N\xc3\xa9" "ck \"q\"\n", NOW, NOW + 60,
				out, sizeof(out));
	CHECK(n > 0);
	t = str_tok(out);
	c = accept_full(k_hs, NULL, t.s, t.n, "a \"room\"\\/", "id\t1", NOW,
			__LINE__);
	CHECK(c.has_name);
	CHECK_EQ_STR(c.name, "N\xc3\xa9" "ck \"q\"\n");
	refuse_full(k_hs, NULL, t.s, t.n, "a \"room\"\\/", "id 1", NOW,
		    "another id", __LINE__);

	/* too small a buffer: -ENOSPC and "", one byte more is enough */
	n = sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby", "alice",
				"Alice", 1700000000, 1700003600, out,
				sizeof(out));
	CHECK(n > 0);
	CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby",
					 "alice", "Alice", 1700000000,
					 1700003600, out, (size_t)n), -ENOSPC);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby",
					 "alice", "Alice", 1700000000,
					 1700003600, small, sizeof(small)),
		     -ENOSPC);
	CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby",
					 "alice", "Alice", 1700000000,
					 1700003600, out, (size_t)n + 1), n);
	CHECK_EQ_STR(out, node_token);

	/* a token the checker would refuse for its size is not made */
	{
		char name[3100];

		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby",
						 NULL, name, NOW, NOW + 60, out,
						 sizeof(out)), -EMSGSIZE);
	}
	CHECK_EQ_INT(sb_token_sign_hs256("", 0, "lobby", NULL, NULL, NOW,
					 NOW + 60, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "", NULL, NULL,
					 NOW, NOW + 60, out, sizeof(out)),
		     -EINVAL);
	CHECK_EQ_INT(sb_token_sign_hs256(SECRET, strlen(SECRET), "lobby",
					 "\xff", NULL, NOW, NOW + 60, out,
					 sizeof(out)), -EINVAL);
}

/* Each algorithm accepts its own tokens. */
static void test_accepted(void)
{
	for (int w = HS; w <= ES; w++) {
		struct tok t = claims((enum which)w, GOOD);
		struct sb_token_claims c = ACCEPT(key_of((enum which)w), t);

		CHECK(!c.has_name);
		t = claims((enum which)w, "{\"room\":\"lobby\",\"exp\":1700003600,"
			   "\"name\":\"Bob\",\"iat\":5,\"jti\":\"x\"}");
		c = ACCEPT(key_of((enum which)w), t);
		CHECK(c.has_name);
		CHECK_EQ_STR(c.name, "Bob");
	}
}

/* alg "none", with and without a signature part, and its spellings. */
static void test_alg_none(void)
{
	static const char *const nones[] = {
		"{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"\"}",
	};

	for (size_t i = 0; i < sizeof(nones) / sizeof(nones[0]); i++) {
		struct tok t;
		char *dot;

		t = make(HS, nones[i], GOOD);	/* with a valid HMAC */
		for (int w = HS; w <= ES; w++) {
			char want[40];

			snprintf(want, sizeof(want), "alg is not %s", alg_of[w]);
			REFUSE(key_of((enum which)w), t, want);
		}
		dot = strrchr(t.s, '.');	/* and with no signature */
		dot[1] = '\0';
		t.n = strlen(t.s);
		for (int w = HS; w <= ES; w++) {
			char want[40];

			snprintf(want, sizeof(want), "alg is not %s", alg_of[w]);
			REFUSE(key_of((enum which)w), t, want);
		}
	}
}

/* The key fixes the algorithm: each mismatch is refused. */
static void test_alg_mismatch(void)
{
	struct tok t;

	/* tokens of each kind against the other two keys */
	for (int w = HS; w <= ES; w++) {
		t = claims((enum which)w, GOOD);
		for (int k = HS; k <= ES; k++) {
			char want[40];

			if (k == w)
				continue;
			snprintf(want, sizeof(want), "alg is not %s", alg_of[k]);
			REFUSE(key_of((enum which)k), t, want);
		}
	}
	/* the public key's PEM text as an HMAC secret, the classic confusion */
	t = make_with(NULL, rsa_pub_pem, strlen(rsa_pub_pem),
		      "{\"alg\":\"HS256\"}", GOOD);
	REFUSE(k_rs, t, "alg is not RS256");
	/* header claims RS256 but is HMAC-signed with the right secret */
	t = make(HS, "{\"alg\":\"RS256\"}", GOOD);
	REFUSE(k_hs, t, "alg is not HS256");
	/* an ES token's header relabelled: the signature no longer fits */
	t = make(ES, "{\"alg\":\"ES256\"}", GOOD);
	REFUSE(k_rs, t, "alg is not RS256");
	/* other spellings and types */
	t = make(HS, "{\"alg\":\"hs256\"}", GOOD);
	REFUSE(k_hs, t, "alg is not HS256");
	t = make(HS, "{\"alg\":\"HS256 \"}", GOOD);
	REFUSE(k_hs, t, "alg is not HS256");
	t = make(HS, "{\"alg\":\"HS256\\u0000\"}", GOOD);
	REFUSE(k_hs, t, "alg is not HS256");
	t = make(HS, "{\"alg\":\"HS384\"}", GOOD);
	REFUSE(k_hs, t, "alg is not HS256");
	t = make(HS, "{\"typ\":\"JWT\"}", GOOD);
	REFUSE(k_hs, t, "has no alg");
	t = make(HS, "{\"alg\":null}", GOOD);
	REFUSE(k_hs, t, "alg is not a string");
	t = make(HS, "{\"alg\":[\"HS256\"]}", GOOD);
	REFUSE(k_hs, t, "alg is not a string");
	/* extra header members are fine; crit is not */
	t = make(HS, "{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"1\","
		 "\"cty\":\"x\",\"jku\":\"https://evil.example/\"}", GOOD);
	ACCEPT(k_hs, t);
	t = make(HS, "{\"alg\":\"HS256\",\"typ\":7}", GOOD);
	ACCEPT(k_hs, t);
	t = make(HS, "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", GOOD);
	REFUSE(k_hs, t, "crit");
	t = make(HS, "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
		 GOOD);
	REFUSE(k_hs, t, "crit");
}

/* Re-encodes part idx (0, 1, 2) of t with bit bit of byte at flipped. */
static struct tok flip(const struct tok *t, int idx, size_t at, int bit)
{
	unsigned char raw[TOK_CAP];
	struct tok o;
	const char *p = t->s, *end;
	size_t n, pre;

	for (int i = 0; i < idx; i++)
		p = strchr(p, '.') + 1;
	end = strchr(p, '.');
	if (!end)
		end = t->s + t->n;
	n = unb64u(p, (size_t)(end - p), raw);
	CHECK(at < n);
	raw[at] ^= (unsigned char)(1u << bit);
	pre = (size_t)(p - t->s);
	memcpy(o.s, t->s, pre);
	o.n = pre + b64u(raw, n, o.s + pre);
	memcpy(o.s + o.n, end, (size_t)(t->s + t->n - end));
	o.n += (size_t)(t->s + t->n - end);
	o.s[o.n] = '\0';
	return o;
}

/* One bit flipped in each part: the signature no longer verifies. */
static void test_bad_signature(void)
{
	for (int w = HS; w <= ES; w++) {
		const struct sb_token_key *k = key_of((enum which)w);
		static const char payload[] = "{\"room\":\"lobby\","
			"\"exp\":1700003600,\"name\":\"Bob\"}";
		static const char hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
		struct tok t = claims((enum which)w, payload);
		size_t sl;

		ACCEPT(k, t);
		/* the 'J' of "JWT" (the same byte for every alg) -> 'K' */
		REFUSE(k, flip(&t, 0, (size_t)(strstr(hs, "JWT") - hs), 0),
		       "bad signature");
		/* the 'B' of "Bob" in the payload -> 'C' */
		REFUSE(k, flip(&t, 1, (size_t)(strstr(payload, "Bob") - payload),
			       0), "bad signature");
		/* every bit of the signature, one at a time */
		{
			unsigned char raw[1024];
			const char *s = strrchr(t.s, '.') + 1;

			sl = unb64u(s, strlen(s), raw);
		}
		for (size_t i = 0; i < sl; i++)
			for (int b = 0; b < 8; b += (w == HS ? 1 : 7))
				REFUSE(k, flip(&t, 2, i, b), "bad signature");
	}
	/* RS256: a signature one byte short or long, or empty-ish */
	{
		struct tok t = claims(RS, GOOD);
		unsigned char raw[1024];
		const char *s = strrchr(t.s, '.') + 1;
		size_t sl = unb64u(s, strlen(s), raw);
		struct tok u = t;
		size_t pre = (size_t)(s - t.s);

		CHECK_EQ_SIZE(sl, 256);
		u.n = pre + b64u(raw, sl - 1, u.s + pre);
		u.s[u.n] = '\0';
		REFUSE(k_rs, u, "bad signature");
		raw[sl] = 0;
		u.n = pre + b64u(raw, sl + 1, u.s + pre);
		u.s[u.n] = '\0';
		REFUSE(k_rs, u, "bad signature");
		u.n = pre + b64u(raw, 1, u.s + pre);
		u.s[u.n] = '\0';
		REFUSE(k_rs, u, "bad signature");
	}
	/* HS256: a truncated MAC */
	{
		struct tok t = claims(HS, GOOD);
		unsigned char raw[64];
		const char *s = strrchr(t.s, '.') + 1;
		size_t sl = unb64u(s, strlen(s), raw);
		size_t pre = (size_t)(s - t.s);

		CHECK_EQ_SIZE(sl, 32);
		t.n = pre + b64u(raw, 16, t.s + pre);
		t.s[t.n] = '\0';
		REFUSE(k_hs, t, "bad signature");
	}
}

/* ES256: r || s of exactly 64 bytes; not DER, not 63 or 65. */
static void test_es256_length(void)
{
	struct tok t = claims(ES, GOOD);
	const char *s = strrchr(t.s, '.') + 1;
	size_t pre = (size_t)(s - t.s);
	unsigned char raw[128], der[128], *dp = der;
	size_t sl = unb64u(s, strlen(s), raw);
	ECDSA_SIG *es = ECDSA_SIG_new();
	int dl;
	struct tok u = t;

	CHECK_EQ_SIZE(sl, 64);
	ACCEPT(k_es, t);
	/* the same signature in DER, as OpenSSL writes it */
	CHECK(es != NULL);
	CHECK_EQ_INT(ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL),
				    BN_bin2bn(raw + 32, 32, NULL)), 1);
	dl = i2d_ECDSA_SIG(es, &dp);
	CHECK(dl > 64);
	ECDSA_SIG_free(es);
	u.n = pre + b64u(der, (size_t)dl, u.s + pre);
	u.s[u.n] = '\0';
	REFUSE(k_es, u, "not 64 bytes");
	u.n = pre + b64u(raw, 63, u.s + pre);
	u.s[u.n] = '\0';
	REFUSE(k_es, u, "not 64 bytes");
	raw[64] = 0;
	u.n = pre + b64u(raw, 65, u.s + pre);
	u.s[u.n] = '\0';
	REFUSE(k_es, u, "not 64 bytes");
	/* a zero r and s: 64 bytes, never a valid signature */
	memset(raw, 0, 64);
	u.n = pre + b64u(raw, 64, u.s + pre);
	u.s[u.n] = '\0';
	REFUSE(k_es, u, "bad signature");
	/* r and s over the group order */
	memset(raw, 0xff, 64);
	u.n = pre + b64u(raw, 64, u.s + pre);
	u.s[u.n] = '\0';
	REFUSE(k_es, u, "bad signature");
}

/* exp and nbf, exactly at the edges of the 30 s of leeway. */
static void test_leeway(void)
{
	for (int w = HS; w <= ES; w++) {
		const struct sb_token_key *k = key_of((enum which)w);
		struct tok t = claims((enum which)w,
				      "{\"room\":\"lobby\",\"exp\":1700000100,"
				      "\"nbf\":1700000000}");

		ACCEPT_AT(k, t, 1700000100LL);
		ACCEPT_AT(k, t, 1700000100LL + 30);
		REFUSE_AT(k, t, 1700000100LL + 31, "the token has expired");
		ACCEPT_AT(k, t, 1700000000LL);
		ACCEPT_AT(k, t, 1700000000LL - 30);
		REFUSE_AT(k, t, 1700000000LL - 31, "not valid yet");
	}
	/* exp and nbf written as fractions and exponents */
	{
		struct tok t = claims(HS, "{\"room\":\"lobby\",\"exp\":1.7000001e9,"
				      "\"nbf\":1699999999.75}");

		ACCEPT_AT(k_hs, t, 1700000100LL + 30);
		REFUSE_AT(k_hs, t, 1700000100LL + 31, "expired");
		ACCEPT_AT(k_hs, t, 1699999999LL - 29);
		REFUSE_AT(k_hs, t, 1699999999LL - 30, "not valid yet");
	}
	/* extremes do not wrap around */
	{
		struct tok t;

		t = claims(HS, "{\"room\":\"lobby\",\"exp\":9223372036854775807}");
		ACCEPT_AT(k_hs, t, INT64_MAX);
		t = claims(HS, "{\"room\":\"lobby\",\"exp\":99999999999999999999}");
		ACCEPT_AT(k_hs, t, NOW);
		t = claims(HS, "{\"room\":\"lobby\",\"exp\":-9223372036854775808}");
		REFUSE_AT(k_hs, t, NOW, "expired");
		REFUSE_AT(k_hs, t, INT64_MIN + 31, "expired");
		t = claims(HS, "{\"room\":\"lobby\",\"exp\":9223372036854775807,"
			   "\"nbf\":-9223372036854775808}");
		ACCEPT_AT(k_hs, t, INT64_MIN);
		t = claims(HS, "{\"room\":\"lobby\",\"exp\":9223372036854775807,"
			   "\"nbf\":9223372036854775807}");
		REFUSE_AT(k_hs, t, INT64_MAX - 31, "not valid yet");
		ACCEPT_AT(k_hs, t, INT64_MAX - 30);
		t = claims(HS, "{\"room\":\"lobby\",\"exp\":0}");
		ACCEPT_AT(k_hs, t, 30);
		REFUSE_AT(k_hs, t, 31, "expired");
	}
}

/* Every claim of the wrong JSON type, and the required ones missing. */
static void test_claim_types(void)
{
	static const struct {
		const char *payload;
		const char *want;
	} cases[] = {
		{ "{\"room\":\"lobby\"}", "has no exp" },
		{ "{\"room\":\"lobby\",\"exp\":\"1700003600\"}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":null}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":true}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":[1700003600]}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":{}}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":NaN}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":Infinity}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":1e400}", "exp is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"nbf\":\"1\"}", "nbf is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"nbf\":null}", "nbf is not a number" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"nbf\":-Infinity}", "nbf is not a number" },
		{ "{\"exp\":1700003600}", "has no room" },
		{ "{\"room\":5,\"exp\":1700003600}", "room is not a string" },
		{ "{\"room\":null,\"exp\":1700003600}", "room is not a string" },
		{ "{\"room\":[\"lobby\"],\"exp\":1700003600}", "room is not a string" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"sub\":7}", "sub is not a string" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"sub\":null}", "sub is not a string" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":7}", "name is not a string" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":null}", "name is not a string" },
		{ "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":{\"a\":1}}", "name is not a string" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int w = HS; w <= ES; w += 2)
			REFUSE(key_of((enum which)w),
			       claims((enum which)w, cases[i].payload),
			       cases[i].want);
	/* a duplicated member: json-c keeps the last */
	REFUSE(k_hs, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
			    "\"room\":\"other\"}"), "another room");
	ACCEPT(k_hs, claims(HS, "{\"room\":\"other\",\"exp\":1700003600,"
			    "\"room\":\"lobby\"}"));
	/* claims nobody asked for, of any type, are ignored */
	ACCEPT(k_hs, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
			    "\"aud\":5,\"iss\":null,\"iat\":\"x\",\"x\":[{}]}"));
}

static void test_room(void)
{
	struct tok t = claims(ES, GOOD);

	ACCEPT(k_es, t);
	refuse_full(k_es, NULL, t.s, t.n, "Lobby", "alice", NOW,
		    "another room", __LINE__);
	refuse_full(k_es, NULL, t.s, t.n, "lob", "alice", NOW,
		    "another room", __LINE__);
	refuse_full(k_es, NULL, t.s, t.n, "lobby ", "alice", NOW,
		    "another room", __LINE__);
	refuse_full(k_es, NULL, t.s, t.n, "default", "alice", NOW,
		    "another room", __LINE__);
	/* byte for byte, an escaped NUL included */
	t = claims(HS, "{\"room\":\"lob\\u0000by\",\"exp\":1700003600}");
	REFUSE(k_hs, t, "another room");
	{
		struct sb_token_claims c;
		char why[128];

		CHECK_EQ_INT(sb_token_check(k_hs, NULL, t.s, t.n, "lob\0by", 6,
					    "alice", 5, NOW, &c, why,
					    sizeof(why)), 0);
	}
	t = claims(HS, "{\"room\":\"\\u006cobby\",\"exp\":1700003600}");
	ACCEPT(k_hs, t);	/* an escape is decoded before comparing */
	t = claims(HS, "{\"room\":\"\",\"exp\":1700003600}");
	REFUSE(k_hs, t, "another room");
}

static void test_sub(void)
{
	struct tok t = claims(RS, GOOD);	/* sub alice */

	ACCEPT(k_rs, t);
	refuse_full(k_rs, NULL, t.s, t.n, "lobby", "alic", NOW, "another id",
		    __LINE__);
	refuse_full(k_rs, NULL, t.s, t.n, "lobby", "alice2", NOW, "another id",
		    __LINE__);
	refuse_full(k_rs, NULL, t.s, t.n, "lobby", "ALICE", NOW, "another id",
		    __LINE__);
	t = claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600}");	/* absent */
	accept_full(k_rs, NULL, t.s, t.n, "lobby", "anybody", NOW, __LINE__);
	t = claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,\"sub\":\"\"}");
	REFUSE(k_rs, t, "another id");
}

static void test_name(void)
{
	char payload[SB_TOKEN_NAME_MAX + 128], name[SB_TOKEN_NAME_MAX + 2];
	struct sb_token_claims c;
	struct tok t;

	t = claims(HS, GOOD);
	c = ACCEPT(k_hs, t);
	CHECK(!c.has_name);
	CHECK_EQ_SIZE(c.name_len, 0);
	t = claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":\"\"}");
	c = ACCEPT(k_hs, t);
	CHECK(c.has_name);
	CHECK_EQ_SIZE(c.name_len, 0);
	/* escapes decoded; control bytes handed back for the caller */
	t = claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
		   "\"name\":\"\\u00e9\\t\\\"\\u0000z\"}");
	c = ACCEPT(k_hs, t);
	CHECK(c.has_name);
	CHECK_EQ_MEM(c.name, c.name_len, "\xc3\xa9\t\"\0z", 6);
	/* exactly the limit, and one byte over */
	memset(name, 'n', SB_TOKEN_NAME_MAX);
	name[SB_TOKEN_NAME_MAX] = '\0';
	snprintf(payload, sizeof(payload),
		 "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":\"%s\"}", name);
	c = ACCEPT(k_es, claims(ES, payload));
	CHECK_EQ_SIZE(c.name_len, SB_TOKEN_NAME_MAX);
	CHECK_EQ_MEM(c.name, c.name_len, name, SB_TOKEN_NAME_MAX);
	CHECK_EQ_INT(c.name[SB_TOKEN_NAME_MAX], '\0');
	name[SB_TOKEN_NAME_MAX] = 'n';
	name[SB_TOKEN_NAME_MAX + 1] = '\0';
	snprintf(payload, sizeof(payload),
		 "{\"room\":\"lobby\",\"exp\":1700003600,\"name\":\"%s\"}", name);
	REFUSE(k_es, claims(ES, payload), "name is too long");
}

static void test_audience(void)
{
	struct sb_token_rules r = { "sfu", NULL };

	ACCEPT_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":\"sfu\"}"));
	ACCEPT_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[\"a\",\"sfu\",\"b\"]}"));
	ACCEPT_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[\"sfu\"]}"));
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":\"sfu2\"}"), "another audience");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":\"SFU\"}"), "another audience");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[\"a\",\"b\"]}"), "another audience");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[]}"), "another audience");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600}"),
		 "has no aud");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":5}"), "aud is not a string");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":null}"), "aud is not a string");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[\"sfu\",5]}"), "aud is not a string");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":[[\"sfu\"]]}"), "aud is not a string");
	REFUSE_R(k_hs, &r, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"aud\":{\"sfu\":1}}"), "aud is not a string");
	/* not required: not looked at */
	ACCEPT(k_hs, claims(HS, "{\"room\":\"lobby\",\"exp\":1700003600,"
			    "\"aud\":\"other\"}"));
}

static void test_issuer(void)
{
	struct sb_token_rules r = { NULL, "https://auth.example.com" };
	struct sb_token_rules both = { "sfu", "https://auth.example.com" };

	ACCEPT_R(k_rs, &r, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"iss\":\"https://auth.example.com\"}"));
	REFUSE_R(k_rs, &r, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"iss\":\"https://auth.example.com/\"}"),
		 "another issuer");
	REFUSE_R(k_rs, &r, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600}"),
		 "has no iss");
	REFUSE_R(k_rs, &r, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				  "\"iss\":[\"https://auth.example.com\"]}"),
		 "iss is not a string");
	ACCEPT(k_rs, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
			    "\"iss\":\"someone\"}"));
	ACCEPT_R(k_rs, &both, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				     "\"aud\":\"sfu\","
				     "\"iss\":\"https://auth.example.com\"}"));
	REFUSE_R(k_rs, &both, claims(RS, "{\"room\":\"lobby\",\"exp\":1700003600,"
				     "\"aud\":\"sfu\"}"), "has no iss");
}

/* The form: parts, the base64url alphabet, padding, lengths. */
static void test_malformed_base64(void)
{
	struct tok good = claims(HS, GOOD);
	const char *d1 = strchr(good.s, '.'), *d2 = strrchr(good.s, '.');
	size_t h = (size_t)(d1 - good.s), p = (size_t)(d2 - d1 - 1);
	static const char bad_chars[] = { '+', '/', '=', ' ', '\n', '\0',
					  '*', '~', (char)0x80, (char)0xff };
	static char s[2 * TOK_CAP];

	ACCEPT(k_hs, good);
	/* a byte outside the alphabet at the start of each part */
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		static const char *const want[] = { "header is not base64url",
			"payload is not base64url",
			"signature is not base64url" };
		size_t at[3] = { 0, h + 1, h + 1 + p + 1 };

		for (int part = 0; part < 3; part++) {
			memcpy(s, good.s, good.n + 1);
			s[at[part]] = bad_chars[i];
			refuse_full(k_hs, NULL, s, good.n, "lobby", "alice", NOW,
				    want[part], __LINE__);
			/* inserted rather than replaced */
			memcpy(s, good.s, at[part]);
			s[at[part]] = bad_chars[i];
			memcpy(s + at[part] + 1, good.s + at[part],
			       good.n - at[part] + 1);
			refuse_full(k_hs, NULL, s, good.n + 1, "lobby", "alice",
				    NOW, want[part], __LINE__);
		}
	}
	/* padding: the signature (32 bytes) takes one '=' in padded form */
	snprintf(s, sizeof(s), "%s=", good.s);
	REFUSE_S(k_hs, s, "signature is not base64url");
	/* header padded where its length calls for it */
	{
		struct tok t = make(HS, "{\"alg\":\"HS256\"}", GOOD);	/* 15 B */
		char *dot = strchr(t.s, '.');

		CHECK_EQ_INT(dot - t.s, 20);	/* 15 bytes: 20 chars, 0 pad */
		t = make(HS, "{\"alg\":\"HS256\" }", GOOD);	/* 16 B */
		dot = strchr(t.s, '.');
		CHECK_EQ_INT(dot - t.s, 22);
		ACCEPT(k_hs, t);
		snprintf(s, sizeof(s), "%.*s==%s", 22, t.s, dot);
		REFUSE_S(k_hs, s, "header is not base64url");
	}
	/* a lone character left over (4k + 1), and leftover bits set */
	snprintf(s, sizeof(s), "%.*sA%s", (int)h, good.s, d1);
	REFUSE_S(k_hs, s, "header is not base64url");
	{
		/* "e30" is "{}"; "e31" differs only in bits past the end */
		REFUSE_S(k_hs, "e30.e30.AAAA", "alg");
		REFUSE_S(k_hs, "e31.e30.AAAA", "header is not base64url");
		/* the signature's last character: 43 chars, 2 spare bits */
		struct tok t = good;
		char c = t.s[t.n - 1];
		int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z'
			? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
			: c == '-' ? 62 : 63;
		static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

		CHECK_EQ_INT(v & 3, 0);
		t.s[t.n - 1] = a[v | 1];
		REFUSE(k_hs, t, "signature is not base64url");
	}
	/* parts: too few, too many, empty */
	REFUSE_S(k_hs, "", "three parts");
	REFUSE_S(k_hs, ".", "three parts");
	REFUSE_S(k_hs, "e30", "three parts");
	REFUSE_S(k_hs, "e30.e30", "three parts");
	snprintf(s, sizeof(s), "%s.", good.s);
	REFUSE_S(k_hs, s, "three parts");
	snprintf(s, sizeof(s), "%s.%s", good.s, d2 + 1);
	REFUSE_S(k_hs, s, "three parts");
	snprintf(s, sizeof(s), "%.*s.%s", (int)(d2 - good.s), good.s, d2);
	REFUSE_S(k_hs, s, "three parts");	/* header.payload..sig */
	REFUSE_S(k_hs, "..", "header is empty");
	snprintf(s, sizeof(s), "%s", d1);		/* .payload.sig */
	REFUSE_S(k_hs, s, "header is empty");
	snprintf(s, sizeof(s), "%.*s.%s", (int)h, good.s, d2);	/* h..sig */
	REFUSE_S(k_hs, s, "payload is empty");
	snprintf(s, sizeof(s), "%.*s.", (int)(d2 - good.s), good.s);
	REFUSE_S(k_hs, s, "no signature");
	/* whitespace around the token is not trimmed */
	snprintf(s, sizeof(s), " %s", good.s);
	REFUSE_S(k_hs, s, "header is not base64url");
	snprintf(s, sizeof(s), "%s\n", good.s);
	REFUSE_S(k_hs, s, "signature is not base64url");
	/* the length given counts, not a NUL: a token cut short (by three
	 * characters, so that what is left is still base64url) */
	refuse_full(k_hs, NULL, good.s, good.n - 3, "lobby", "alice", NOW,
		    "bad signature", __LINE__);
}

static void test_malformed_json(void)
{
	static const char *const bad[] = {
		"[]", "\"x\"", "1", "null", "", " ", "{", "{\"alg\":\"HS256\"",
		"{\"alg\":\"HS256\"}x", "{\"alg\":\"HS256\"}{}",
		"{\"alg\":\"HS256\",}", "{\"alg\":\"HS256\\x\"}",
		"{\"alg\":\"\xff\"}", "{\"alg\":\"HS256\"}\n\x01",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tok t;

		if (!bad[i][0])
			continue;	/* an empty part: covered above */
		t = make(HS, bad[i], GOOD);
		REFUSE(k_hs, t, "header is not a JSON object");
		t = claims(HS, bad[i]);
		REFUSE(k_hs, t, "payload is not a JSON object");
	}
	/* a raw NUL inside or after the JSON */
	{
		static const char hdr[] = "{\"alg\":\"HS256\"}";
		char raw[64], s[TOK_CAP];
		unsigned char mac[32];
		unsigned int ml;
		size_t n;

		memcpy(raw, hdr, sizeof(hdr));	/* with the NUL */
		n = b64u(raw, sizeof(hdr), s);
		s[n++] = '.';
		n += b64u(GOOD, strlen(GOOD), s + n);
		CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
			   (unsigned char *)s, n, mac, &ml) != NULL);
		s[n++] = '.';
		n += b64u(mac, 32, s + n);
		s[n] = '\0';
		REFUSE_S(k_hs, s, "header is not a JSON object");
	}
	/* deep nesting within the size limit */
	{
		char p[2100];
		size_t o = 0;

		o += (size_t)snprintf(p, sizeof(p), "{\"room\":\"lobby\","
				      "\"exp\":1700003600,\"x\":");
		for (int i = 0; i < 900; i++)
			p[o++] = '[';
		for (int i = 0; i < 900; i++)
			p[o++] = ']';
		p[o++] = '}';
		p[o] = '\0';
		REFUSE(k_hs, claims(HS, p), "payload is not a JSON object");
	}
}

/* SB_TOKEN_MAX bytes pass; one more is refused before anything else. */
static void test_size_limit(void)
{
	char payload[SB_TOKEN_MAX];
	struct tok t;
	size_t pad = 2900;

	/* grow an ignored claim until the token is exactly the limit (the
	 * payload's encoding grows by one or two characters a byte, and
	 * SB_TOKEN_MAX is a length it can have) */
	for (;;) {
		int n = snprintf(payload, sizeof(payload),
				 "{\"room\":\"lobby\",\"exp\":1700003600,"
				 "\"pad\":\"%0*d\"}", (int)pad, 0);

		CHECK(n > 0 && (size_t)n < sizeof(payload));
		t = claims(HS, payload);
		if (t.n >= SB_TOKEN_MAX)
			break;
		pad++;
	}
	CHECK_EQ_SIZE(t.n, SB_TOKEN_MAX);
	ACCEPT(k_hs, t);
	snprintf(payload, sizeof(payload), "{\"room\":\"lobby\","
		 "\"exp\":1700003600,\"pad\":\"%0*d\"}", (int)pad + 1, 0);
	t = claims(HS, payload);
	CHECK(t.n > SB_TOKEN_MAX && t.n <= SB_TOKEN_MAX + 2);
	REFUSE(k_hs, t, "too long");
	/* the limit comes first: garbage over it says only that */
	{
		static char big[SB_TOKEN_MAX + 2];

		memset(big, '!', sizeof(big) - 1);
		refuse_full(k_hs, NULL, big, SB_TOKEN_MAX + 1, "lobby", "alice",
			    NOW, "too long", __LINE__);
		big[SB_TOKEN_MAX] = '\0';
		refuse_full(k_hs, NULL, big, SB_TOKEN_MAX, "lobby", "alice",
			    NOW, "three parts", __LINE__);
	}
}

/* A small why buffer is cut, never overrun; an empty one is left alone. */
static void test_why_buffer(void)
{
	struct tok t = claims(HS, "{\"room\":\"other\",\"exp\":1700003600}");
	struct sb_token_claims c;
	char why[8];

	memset(why, 'x', sizeof(why));
	CHECK_EQ_INT(sb_token_check(k_hs, NULL, t.s, t.n, "lobby", 5, "a", 1,
				    NOW, &c, why, 5), -EACCES);
	CHECK_EQ_STR(why, "the ");
	CHECK_EQ_INT(why[5], 'x');
	CHECK_EQ_INT(sb_token_check(k_hs, NULL, t.s, t.n, "lobby", 5, "a", 1,
				    NOW, &c, NULL, 0), -EACCES);
}

/* ---- keys from PEM files and secrets ---- */

static void key_refused(const char *path, const char *want)
{
	char msg[512] = "";
	struct sb_token_key *k = sb_token_key_public_pem(path, msg, sizeof(msg));

	if (k || !strstr(msg, want))
		fprintf(stderr, "%s: got '%s', want '%s'\n", path, msg, want);
	CHECK(k == NULL);
	CHECK(strstr(msg, want) != NULL);
}

/* What msg must not hold: any line of a PEM body. */
static void no_pem_body(const char *msg, const char *pem)
{
	const char *p = pem;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n >= 16 && strncmp(p, "-----", 5)) {
			char line[128];

			snprintf(line, sizeof(line), "%.*s", (int)n, p);
			CHECK(strstr(msg, line) == NULL);
		}
		p += n + (e != NULL);
	}
}

static void write_private(EVP_PKEY *key, const char *name, char *path,
			  size_t cap, char *pem, size_t pemcap)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	CHECK(b != NULL);
	CHECK_EQ_INT(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL,
					      NULL), 1);
	n = BIO_get_mem_data(b, &p);
	CHECK(n > 0 && (size_t)n < pemcap);
	memcpy(pem, p, (size_t)n);
	pem[n] = '\0';
	write_file(name, p, (size_t)n, path, cap);
	BIO_free(b);
}

static void test_public_pem(void)
{
	char path[256], path2[256], pem[8192], msg[512];
	EVP_PKEY *k;

	/* RSA under 2048 bits */
	k = EVP_RSA_gen(1024);
	CHECK(k != NULL);
	write_pub(k, "rsa1024.pem", path, sizeof(path));
	key_refused(path, "RSA key of 1024 bits");
	key_refused(path, "accepted: ");
	EVP_PKEY_free(k);
	/* other curves and key types */
	k = EVP_EC_gen("P-384");
	CHECK(k != NULL);
	write_pub(k, "p384.pem", path, sizeof(path));
	key_refused(path, "EC key on secp384r1, not P-256");
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(k != NULL);
	write_pub(k, "ed.pem", path, sizeof(path));
	key_refused(path, "type ED25519");
	EVP_PKEY_free(k);
	/* private keys, of either kind: named, never printed */
	write_private(rsa_priv, "rsa-priv.pem", path, sizeof(path), pem,
		      sizeof(pem));
	key_refused(path, "holds a private key (PRIVATE KEY)");
	memset(msg, 0, sizeof(msg));
	CHECK(sb_token_key_public_pem(path, msg, sizeof(msg)) == NULL);
	no_pem_body(msg, pem);
	write_private(ec_priv, "ec-priv.pem", path, sizeof(path), pem,
		      sizeof(pem));
	key_refused(path, "private key");
	CHECK(sb_token_key_public_pem(path, msg, sizeof(msg)) == NULL);
	no_pem_body(msg, pem);
	/* a public key followed by its private key: still refused */
	{
		char both[16384];

		snprintf(both, sizeof(both), "%s%s", rsa_pub_pem, pem);
		write_file("both.pem", both, strlen(both), path, sizeof(path));
		key_refused(path, "private key");
		CHECK(sb_token_key_public_pem(path, msg, sizeof(msg)) == NULL);
		no_pem_body(msg, pem);
		/* two public keys */
		snprintf(both, sizeof(both), "%s%s", rsa_pub_pem, rsa_pub_pem);
		write_file("two.pem", both, strlen(both), path, sizeof(path));
		key_refused(path, "2 PEM blocks");
	}
	/* other files */
	{
		static const char cert[] = "-----BEGIN CERTIFICATE-----\n"
			"MIIBszCCAVmgAwIBAgIUfakefakefakefakefakefakefakefake\n"
			"-----END CERTIFICATE-----\n";
		static const char pkcs1[] = "-----BEGIN RSA PUBLIC KEY-----\n"
			"MIIBCgKCAQEAfakefakefakefakefakefakefakefakefakefake\n"
			"-----END RSA PUBLIC KEY-----\n";
		static const char garbage[] = "-----BEGIN PUBLIC KEY-----\n"
			"bm90IGEga2V5IGF0IGFsbA==\n"
			"-----END PUBLIC KEY-----\n";
		static const char odd[] = "-----BEGIN x\x01y-----\nAAAA\n";
		static const char der[] = "\x30\x82\x01\x22\x30\x0d\x06\x09"
			"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00";

		write_file("cert.pem", cert, strlen(cert), path, sizeof(path));
		key_refused(path, "holds a certificate");
		CHECK(sb_token_key_public_pem(path, msg, sizeof(msg)) == NULL);
		CHECK(strstr(msg, "MIIBszCC") == NULL);
		write_file("pkcs1.pem", pkcs1, strlen(pkcs1), path, sizeof(path));
		key_refused(path, "RSA PUBLIC KEY (PKCS#1)");
		write_file("garbage.pem", garbage, strlen(garbage), path,
			   sizeof(path));
		key_refused(path, "does not decode");
		write_file("odd.pem", odd, strlen(odd), path, sizeof(path));
		key_refused(path, "another kind (unnamed)");
		write_file("der.pem", der, sizeof(der) - 1, path, sizeof(path));
		key_refused(path, "not PEM text");
		write_file("empty.pem", "", 0, path, sizeof(path));
		key_refused(path, "holds no PEM block");
		write_file("text.pem", "hello\n", 6, path, sizeof(path));
		key_refused(path, "holds no PEM block");
		key_refused(path, path);	/* the path is named */
	}
	snprintf(path, sizeof(path), "%s/missing.pem", tmpdir);
	key_refused(path, "cannot open");
	key_refused(tmpdir, "not a regular file");
	/* too big */
	{
		static char big[70000];

		memset(big, 'A', sizeof(big));
		write_file("big.pem", big, sizeof(big), path, sizeof(path));
		key_refused(path, "over 65536 bytes");
	}
	/* a public key after some text is still one block: accepted */
	{
		char text[8192];
		struct sb_token_key *kk;

		snprintf(text, sizeof(text), "issuer's key\n%s", rsa_pub_pem);
		write_file("texted.pem", text, strlen(text), path2,
			   sizeof(path2));
		kk = sb_token_key_public_pem(path2, msg, sizeof(msg));
		CHECK(kk != NULL);
		CHECK_EQ_INT(sb_token_key_alg(kk), SB_TOKEN_RS256);
		ACCEPT(kk, claims(RS, GOOD));
		sb_token_key_free(kk);
	}
}

static void test_secret_key(void)
{
	char msg[128] = "";
	char *big;
	struct sb_token_key *k;

	CHECK(sb_token_key_secret("", 0, msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "empty") != NULL);
	CHECK(sb_token_key_secret(NULL, 5, msg, sizeof(msg)) == NULL);
	big = malloc(SB_TOKEN_SECRET_MAX + 1);
	CHECK(big != NULL);
	memset(big, 's', SB_TOKEN_SECRET_MAX + 1);
	CHECK(sb_token_key_secret(big, SB_TOKEN_SECRET_MAX + 1, msg,
				  sizeof(msg)) == NULL);
	CHECK(strstr(msg, "over the limit") != NULL);
	CHECK(strstr(msg, "sssss") == NULL);
	k = sb_token_key_secret(big, SB_TOKEN_SECRET_MAX, msg, sizeof(msg));
	CHECK(k != NULL);
	{
		struct tok t = make_with(NULL, big, SB_TOKEN_SECRET_MAX,
					 "{\"alg\":\"HS256\"}", GOOD);

		ACCEPT(k, t);
		REFUSE(k_hs, t, "bad signature");
	}
	sb_token_key_free(k);
	free(big);
	/* a one-byte secret works (the caller warns about short ones) */
	k = sb_token_key_secret("k", 1, msg, sizeof(msg));
	CHECK(k != NULL);
	ACCEPT(k, make_with(NULL, "k", 1, "{\"alg\":\"HS256\"}", GOOD));
	sb_token_key_free(k);
}

/* ---- one key, many threads ---- */

struct worker_arg {
	struct tok good[3], bad[3];
	int failures;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;

	for (int i = 0; i < 200; i++) {
		int w = i % 3;
		struct sb_token_claims c;
		char why[128];

		if (sb_token_check(key_of((enum which)w), NULL, a->good[w].s,
				   a->good[w].n, "lobby", 5, "alice", 5, NOW,
				   &c, why, sizeof(why)) != 0 ||
		    !c.has_name || strcmp(c.name, "T"))
			a->failures++;
		if (sb_token_check(key_of((enum which)w), NULL, a->bad[w].s,
				   a->bad[w].n, "lobby", 5, "alice", 5, NOW,
				   &c, why, sizeof(why)) != -EACCES ||
		    strcmp(why, "bad signature"))
			a->failures++;
		/* OpenSSL's error queue is left empty for this thread */
		if (ERR_peek_error())
			a->failures++;
	}
	return NULL;
}

static void test_threads(void)
{
	static struct worker_arg args[4];
	pthread_t th[4];

	for (int t = 0; t < 4; t++) {
		for (int w = HS; w <= ES; w++) {
			args[t].good[w] = claims((enum which)w,
				"{\"room\":\"lobby\",\"exp\":1700003600,"
				"\"name\":\"T\"}");
			args[t].bad[w] = flip(&args[t].good[w], 2, 3, 1);
		}
		args[t].failures = 0;
	}
	for (int t = 0; t < 4; t++)
		CHECK_EQ_INT(pthread_create(&th[t], NULL, worker, &args[t]), 0);
	for (int t = 0; t < 4; t++) {
		CHECK_EQ_INT(pthread_join(th[t], NULL), 0);
		CHECK_EQ_INT(args[t].failures, 0);
	}
}

int main(void)
{
	setup();
	RUN_TEST(test_keys);
	RUN_TEST(test_independent_vectors);
	RUN_TEST(test_sign_matches_vector);
	RUN_TEST(test_sign_round_trip);
	RUN_TEST(test_accepted);
	RUN_TEST(test_alg_none);
	RUN_TEST(test_alg_mismatch);
	RUN_TEST(test_bad_signature);
	RUN_TEST(test_es256_length);
	RUN_TEST(test_leeway);
	RUN_TEST(test_claim_types);
	RUN_TEST(test_room);
	RUN_TEST(test_sub);
	RUN_TEST(test_name);
	RUN_TEST(test_audience);
	RUN_TEST(test_issuer);
	RUN_TEST(test_malformed_base64);
	RUN_TEST(test_malformed_json);
	RUN_TEST(test_size_limit);
	RUN_TEST(test_why_buffer);
	RUN_TEST(test_public_pem);
	RUN_TEST(test_secret_key);
	RUN_TEST(test_threads);
	teardown();
	return check_summary();
}
