/*
 * joined's iceServers (sb_ice): TURN REST credentials against vectors made
 * by another implementation, and the member for STUN only, TURN only, both
 * and none, read back with json-c: the URIs in order, the username
 * "<now + ttl>:<id>" with any id escaped, and its credential.
 */
#include "check.h"
#include "json_event.h"

#include "sb_ice.h"

#include <errno.h>
#include <stdarg.h>

/*
 * The vectors were made once with Python's hmac module:
 *   python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(
 *     hmac.new(KEY, MSG, hashlib.sha1).digest()).decode())'
 * with the KEY and MSG given beside each.
 */
static const struct {
	const char *key;
	size_t key_len;
	const char *msg;
	const char *want;
} vectors[] = {
	/* KEY b"s3cret", MSG b"1700086400:alice" (node's crypto.createHmac
	 * says the same) */
	{ "s3cret", 6, "1700086400:alice", "HJX0XIkrCiQCuU88Z0oeXj+QW60=" },
	/* KEY b"k\x00ey\xff", MSG b"42:bob": a NUL inside the key */
	{ "k\0ey\xff", 5, "42:bob", "t3Wc3Dh1YfG6F3akYjyLNJFfS8o=" },
	/* KEY b"", MSG b"1700086400:alice" */
	{ "", 0, "1700086400:alice", "b01SLl9qEDOB8gTuoFaqmh6HSvs=" },
	/* KEY b"turn-shared-secret", MSG b"1700000060:alice" */
	{ "turn-shared-secret", 18, "1700000060:alice", "m+dRbr1EY+a8BiRJvdypvhrR5Qk=" },
};

/* KEY bytes(range(1, 101)): longer than SHA-1's block, hashed first;
 * MSG "1700000060:\"q\\b/é😀".encode() */
#define LONG_KEY_ID "\"q\\b/\xc3\xa9\xf0\x9f\x98\x80"
#define LONG_KEY_WANT "x86sbMRrHbL8JmDdnfMYFYKCVhY="

static void test_credential_vectors(void)
{
	char out[64], key[100];
	const char *msg = "1700000060:" LONG_KEY_ID;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		memset(out, 'x', sizeof(out));
		CHECK_EQ_INT(sb_turn_credential(vectors[i].key, vectors[i].key_len,
						vectors[i].msg, strlen(vectors[i].msg),
						out, sizeof(out)),
			     SB_TURN_CREDENTIAL_LEN);
		CHECK_EQ_STR(out, vectors[i].want);
	}
	for (int i = 0; i < 100; i++)
		key[i] = (char)(i + 1);
	CHECK_EQ_INT(sb_turn_credential(key, sizeof(key), msg, strlen(msg), out,
					sizeof(out)), SB_TURN_CREDENTIAL_LEN);
	CHECK_EQ_STR(out, LONG_KEY_WANT);
	/* the length counts, not a NUL: a shorter message differs */
	CHECK_EQ_INT(sb_turn_credential("s3cret", 6, "1700086400:alice", 15, out,
					sizeof(out)), SB_TURN_CREDENTIAL_LEN);
	CHECK(strcmp(out, vectors[0].want) != 0);
	CHECK_EQ_INT(sb_turn_credential("s3cret", 5, "1700086400:alice", 16, out,
					sizeof(out)), SB_TURN_CREDENTIAL_LEN);
	CHECK(strcmp(out, vectors[0].want) != 0);
}

/* Exactly the credential and its NUL fit; one byte less leaves out as it
 * was. */
static void test_credential_space(void)
{
	char out[SB_TURN_CREDENTIAL_LEN + 1];

	memset(out, 'x', sizeof(out));
	CHECK_EQ_INT(sb_turn_credential("s3cret", 6, "1700086400:alice", 16, out,
					sizeof(out) - 1), -ENOSPC);
	for (size_t i = 0; i < sizeof(out); i++)
		CHECK_EQ_INT(out[i], 'x');
	CHECK_EQ_INT(sb_turn_credential("s3cret", 6, "1700086400:alice", 16, out,
					sizeof(out)), SB_TURN_CREDENTIAL_LEN);
	CHECK_EQ_STR(out, vectors[0].want);
}

/* A configuration with these URIs (NULL-terminated) and TURN secret. */
static void config(struct sb_config *cfg, const char *secret, int ttl, ...)
{
	va_list ap;
	const char *uri;

	sb_config_defaults(cfg);
	va_start(ap, ttl);
	while ((uri = va_arg(ap, const char *))) {
		CHECK(cfg->ice_count < SB_ICE_SERVERS_MAX);
		snprintf(cfg->ice_servers[cfg->ice_count++], SB_ICE_URI_MAX, "%s", uri);
	}
	va_end(ap);
	if (secret) {
		cfg->turn_secret.len = strlen(secret);
		memcpy(cfg->turn_secret.bytes, secret, cfg->turn_secret.len);
		cfg->turn_secret.from = SB_SECRET_ARG;
	}
	if (ttl)
		cfg->turn_ttl = ttl;
}

/* The member for a join of id at now, read back: the iceServers array of
 * {"a":1,<member>}, or NULL when nothing was appended.  *root is the
 * object to put. */
static struct json_object *ice_of(const struct sb_config *cfg, const char *id,
				  size_t id_len, int64_t now, struct json_object **root)
{
	struct sb_buf b;
	struct json_object *arr;
	size_t before;

	sb_buf_init(&b, 1 << 20);
	sb_buf_adds(&b, "{\"a\":1");
	before = b.len;
	sb_buf_adds(&b, ",");
	sb_ice_servers_json(cfg, id, id_len, now, &b);
	CHECK(!sb_buf_failed(&b));
	if (b.len == before + 1) {
		sb_buf_release(&b);
		*root = NULL;
		return NULL;
	}
	/* the member's name comes first, with no comma of its own */
	CHECK(!strncmp(b.p + before, ",\"iceServers\":[", 15));
	sb_buf_adds(&b, "}");
	*root = parse_exact(b.p, b.len);
	sb_buf_release(&b);
	CHECK(json_object_object_get_ex(*root, "iceServers", &arr));
	CHECK(json_object_is_type(arr, json_type_array));
	CHECK_EQ_INT(json_object_object_length(*root), 2);
	return arr;
}

/* Entry i of arr: its urls are want (NULL-terminated), and it has
 * credentials or not. */
static struct json_object *entry(struct json_object *arr, size_t i, bool creds, ...)
{
	struct json_object *e = json_object_array_get_idx(arr, i), *urls, *v;
	const char *want;
	size_t n = 0;
	va_list ap;

	CHECK(e != NULL);
	CHECK(json_object_is_type(e, json_type_object));
	CHECK(json_object_object_get_ex(e, "urls", &urls));
	CHECK(json_object_is_type(urls, json_type_array));
	va_start(ap, creds);
	while ((want = va_arg(ap, const char *))) {
		v = json_object_array_get_idx(urls, n++);
		CHECK(v != NULL && json_object_is_type(v, json_type_string));
		CHECK_EQ_STR(json_object_get_string(v), want);
	}
	va_end(ap);
	CHECK_EQ_SIZE(json_object_array_length(urls), n);
	CHECK_EQ_INT(json_object_object_length(e), creds ? 3 : 1);
	CHECK_EQ_INT(json_object_object_get_ex(e, "username", NULL), creds);
	CHECK_EQ_INT(json_object_object_get_ex(e, "credential", NULL), creds);
	return e;
}

static void test_none(void)
{
	struct sb_config cfg;
	struct json_object *root;

	config(&cfg, NULL, 0, (char *)NULL);
	CHECK(ice_of(&cfg, "alice", 5, 1700000000, &root) == NULL);
	/* a TURN secret alone gives nothing */
	config(&cfg, "s3cret", 0, (char *)NULL);
	CHECK(ice_of(&cfg, "alice", 5, 1700000000, &root) == NULL);
}

static void test_stun_only(void)
{
	struct sb_config cfg;
	struct json_object *root, *arr;

	config(&cfg, NULL, 0, "stun:a.example:3478", "stuns:b.example", (char *)NULL);
	arr = ice_of(&cfg, "alice", 5, 1700000000, &root);
	CHECK(arr != NULL);
	CHECK_EQ_SIZE(json_object_array_length(arr), 1);
	entry(arr, 0, false, "stun:a.example:3478", "stuns:b.example", (char *)NULL);
	json_object_put(root);
}

static void test_turn_only(void)
{
	struct sb_config cfg;
	struct json_object *root, *arr, *e;
	size_t len;

	config(&cfg, "s3cret", 0, "turn:t.example:3478?transport=udp",
	       "turns:t.example:5349?transport=tcp", (char *)NULL);
	arr = ice_of(&cfg, "alice", 5, 1700000000, &root);
	CHECK(arr != NULL);
	CHECK_EQ_SIZE(json_object_array_length(arr), 1);
	e = entry(arr, 0, true, "turn:t.example:3478?transport=udp",
		  "turns:t.example:5349?transport=tcp", (char *)NULL);
	/* the default lifetime, a day: 1700000000 + 86400 */
	CHECK_EQ_STR(member_str(e, "username", &len), "1700086400:alice");
	CHECK_EQ_STR(member_str(e, "credential", &len), vectors[0].want);
	json_object_put(root);

	/* TURN URIs without a secret (which sb_config_check refuses): no
	 * entry without credentials */
	config(&cfg, NULL, 0, "turn:t.example", (char *)NULL);
	CHECK(ice_of(&cfg, "alice", 5, 1700000000, &root) == NULL);
	config(&cfg, NULL, 0, "turn:t.example", "stun:s.example", (char *)NULL);
	arr = ice_of(&cfg, "alice", 5, 1700000000, &root);
	CHECK_EQ_SIZE(json_object_array_length(arr), 1);
	entry(arr, 0, false, "stun:s.example", (char *)NULL);
	json_object_put(root);
}

/* Both kinds, given mixed: the STUN entry first, each in the order given;
 * expiry is now + the configured lifetime. */
static void test_both(void)
{
	struct sb_config cfg;
	struct json_object *root, *arr, *e;
	size_t len;

	config(&cfg, "turn-shared-secret", 60, "turn:t1.example", "stun:s1.example",
	       "turns:t2.example", "stun:s2.example", (char *)NULL);
	arr = ice_of(&cfg, "alice", 5, 1700000000, &root);
	CHECK(arr != NULL);
	CHECK_EQ_SIZE(json_object_array_length(arr), 2);
	entry(arr, 0, false, "stun:s1.example", "stun:s2.example", (char *)NULL);
	e = entry(arr, 1, true, "turn:t1.example", "turns:t2.example", (char *)NULL);
	CHECK_EQ_STR(member_str(e, "username", &len), "1700000060:alice");
	CHECK_EQ_STR(member_str(e, "credential", &len), vectors[3].want);
	json_object_put(root);

	/* fresh for every join: another time, another expiry and credential */
	for (int64_t now = 0; now < 3000000000LL; now += 777777777) {
		char user[64], want[SB_TURN_CREDENTIAL_LEN + 1];

		arr = ice_of(&cfg, "alice", 5, now, &root);
		e = entry(arr, 1, true, "turn:t1.example", "turns:t2.example", (char *)NULL);
		snprintf(user, sizeof(user), "%lld:alice", (long long)(now + 60));
		CHECK_EQ_STR(member_str(e, "username", &len), user);
		CHECK_EQ_INT(sb_turn_credential("turn-shared-secret", 18, user,
						strlen(user), want, sizeof(want)),
			     SB_TURN_CREDENTIAL_LEN);
		CHECK_EQ_STR(member_str(e, "credential", &len), want);
		json_object_put(root);
	}
}

/* An id with a quote, a backslash, a slash and non-ASCII characters is
 * escaped in the JSON and authenticated as its raw bytes. */
static void test_id_escaped(void)
{
	struct sb_config cfg;
	struct json_object *root, *arr, *e;
	const char *user;
	char key[101];
	size_t len;

	for (int i = 0; i < 100; i++)
		key[i] = (char)(i + 1);
	key[100] = '\0';
	config(&cfg, key, 60, "turn:t.example", (char *)NULL);
	arr = ice_of(&cfg, LONG_KEY_ID, strlen(LONG_KEY_ID), 1700000000, &root);
	CHECK(arr != NULL);
	e = entry(arr, 0, true, "turn:t.example", (char *)NULL);
	user = member_str(e, "username", &len);
	CHECK_EQ_MEM(user, len, "1700000060:" LONG_KEY_ID,
		     strlen("1700000060:" LONG_KEY_ID));
	CHECK_EQ_STR(member_str(e, "credential", &len), LONG_KEY_WANT);
	json_object_put(root);

	/* a control character too (the session refuses them in ids) */
	config(&cfg, "s3cret", 60, "turn:t.example", (char *)NULL);
	arr = ice_of(&cfg, "a\nb\x01", 4, 5, &root);
	e = entry(arr, 0, true, "turn:t.example", (char *)NULL);
	user = member_str(e, "username", &len);
	CHECK_EQ_MEM(user, len, "65:a\nb\x01", 7);
	json_object_put(root);
}

/* Over the buffer's maximum: marked failed, nothing past it; at it, the
 * whole member. */
static void test_bounded(void)
{
	struct sb_config cfg;
	struct sb_buf b;
	size_t full;

	config(&cfg, "s3cret", 0, "stun:s.example", "turn:t.example", (char *)NULL);
	sb_buf_init(&b, 4096);
	sb_ice_servers_json(&cfg, "alice", 5, 1700000000, &b);
	CHECK(!sb_buf_failed(&b));
	full = b.len;
	sb_buf_release(&b);
	CHECK(full > 100);
	for (size_t max = 1; max <= full; max++) {
		sb_buf_init(&b, max);
		sb_ice_servers_json(&cfg, "alice", 5, 1700000000, &b);
		CHECK_EQ_INT(sb_buf_failed(&b), max < full);
		CHECK(b.len <= max);
		sb_buf_release(&b);
	}
}

int main(void)
{
	RUN_TEST(test_credential_vectors);
	RUN_TEST(test_credential_space);
	RUN_TEST(test_none);
	RUN_TEST(test_stun_only);
	RUN_TEST(test_turn_only);
	RUN_TEST(test_both);
	RUN_TEST(test_id_escaped);
	RUN_TEST(test_bounded);
	return check_summary();
}
