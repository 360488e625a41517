/* Addresses, ranges, and the client behind trusted proxies. */
#include "check.h"
#include "sb_netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static struct sb_addr addr(const char *s)
{
	struct sb_addr a;

	memset(&a, 0, sizeof(a));
	CHECK(sb_addr_parse(&a, s, strlen(s)));
	return a;
}

static void check_text(const struct sb_addr *a, const char *want)
{
	char buf[SB_ADDR_STRLEN];

	sb_addr_format(a, buf, sizeof(buf));
	CHECK_EQ_STR(buf, want);
}

static void parses_as(const char *s, const char *want)
{
	struct sb_addr a = addr(s);

	check_text(&a, want);
}

static void refused(const char *s)
{
	struct sb_addr a = { .family = 99 };

	if (sb_addr_parse(&a, s, strlen(s))) {
		fprintf(stderr, "parsed: '%s'\n", s);
		CHECK(false);
	}
	CHECK_EQ_INT(a.family, 99);	/* untouched */
}

static void test_parse(void)
{
	parses_as("192.0.2.1", "192.0.2.1");
	parses_as("  192.0.2.1\t", "192.0.2.1");
	parses_as("192.0.2.1:443", "192.0.2.1");
	parses_as("2001:db8::1", "2001:db8::1");
	parses_as("[2001:db8::1]", "2001:db8::1");
	parses_as("[2001:db8::1]:8443", "2001:db8::1");
	parses_as("::1", "::1");
	/* a v4-mapped address is the IPv4 address */
	parses_as("::ffff:198.51.100.7", "198.51.100.7");
	CHECK_EQ_INT(addr("::ffff:198.51.100.7").family, AF_INET);

	refused("");
	refused("   ");
	refused("unknown");
	refused("192.0.2");
	refused("192.0.2.256");
	refused("192.0.2.1:");
	refused("192.0.2.1:123456");
	refused("192.0.2.1:80x");
	refused("[2001:db8::1");
	refused("[2001:db8::1]x");
	refused("[192.0.2.1]");
	refused("2001:db8::1::2");
	refused("_hidden");
	refused("192.0.2.1 192.0.2.2");
}

static void test_from_sockaddr(void)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	struct sb_addr a;

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	CHECK(inet_pton(AF_INET6, "::ffff:127.0.0.2", &s6.sin6_addr) == 1);
	sb_addr_from_sockaddr(&a, (struct sockaddr *)&s6, sizeof(s6));
	check_text(&a, "127.0.0.2");
	CHECK(inet_pton(AF_INET6, "::1", &s6.sin6_addr) == 1);
	sb_addr_from_sockaddr(&a, (struct sockaddr *)&s6, sizeof(s6));
	check_text(&a, "::1");

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	CHECK(inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr) == 1);
	sb_addr_from_sockaddr(&a, (struct sockaddr *)&s4, sizeof(s4));
	check_text(&a, "10.1.2.3");
	CHECK(sb_addr_equal(&a, &(struct sb_addr){ 0 }) == false);
	CHECK(sb_addr_equal(&a, &(struct sb_addr){ .family = AF_INET,
						    .bytes = { 10, 1, 2, 3 } }));

	/* too short, or another family: unknown */
	sb_addr_from_sockaddr(&a, (struct sockaddr *)&s4, 4);
	CHECK_EQ_INT(a.family, 0);
	check_text(&a, "?");
	s4.sin_family = AF_UNIX;
	sb_addr_from_sockaddr(&a, (struct sockaddr *)&s4, sizeof(s4));
	CHECK_EQ_INT(a.family, 0);
	sb_addr_from_sockaddr(&a, NULL, 0);
	CHECK_EQ_INT(a.family, 0);
}

static struct sb_cidr cidr(const char *s)
{
	struct sb_cidr c;

	CHECK(sb_cidr_parse(&c, s));
	return c;
}

static void test_cidr(void)
{
	struct sb_cidr c;
	struct sb_addr a;

	c = cidr("10.0.0.0/8");
	CHECK_EQ_INT(c.prefix, 8);
	CHECK(sb_cidr_match(&c, &(struct sb_addr){ 0 }) == false);
	a = addr("10.255.0.1");
	CHECK(sb_cidr_match(&c, &a));
	a = addr("11.0.0.1");
	CHECK(!sb_cidr_match(&c, &a));
	a = addr("::ffff:10.9.9.9");	/* mapped: matches the IPv4 range */
	CHECK(sb_cidr_match(&c, &a));

	c = cidr("192.0.2.7");		/* one address */
	CHECK_EQ_INT(c.prefix, 32);
	a = addr("192.0.2.7");
	CHECK(sb_cidr_match(&c, &a));
	a = addr("192.0.2.6");
	CHECK(!sb_cidr_match(&c, &a));

	c = cidr("172.16.0.0/12");	/* a prefix inside a byte */
	a = addr("172.31.255.255");
	CHECK(sb_cidr_match(&c, &a));
	a = addr("172.32.0.0");
	CHECK(!sb_cidr_match(&c, &a));

	c = cidr("0.0.0.0/0");
	a = addr("203.0.113.1");
	CHECK(sb_cidr_match(&c, &a));
	a = addr("::1");
	CHECK(!sb_cidr_match(&c, &a));	/* families never match */

	c = cidr("2001:db8::/32");
	a = addr("2001:db8:ffff::1");
	CHECK(sb_cidr_match(&c, &a));
	a = addr("2001:db9::1");
	CHECK(!sb_cidr_match(&c, &a));
	c = cidr("::1/128");
	a = addr("::1");
	CHECK(sb_cidr_match(&c, &a));
	c = cidr("::/0");
	CHECK(sb_cidr_match(&c, &a));

	CHECK(!sb_cidr_parse(&c, ""));
	CHECK(!sb_cidr_parse(&c, "/8"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0/"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0/33"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0/-1"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0/8x"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.1/8"));	/* host bits set */
	CHECK(!sb_cidr_parse(&c, "2001:db8::1/32"));
	CHECK(!sb_cidr_parse(&c, "::/129"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0:80/8"));
	CHECK(!sb_cidr_parse(&c, "[::1]/128"));
	CHECK(!sb_cidr_parse(&c, " 10.0.0.0/8"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0 /8"));
	CHECK(!sb_cidr_parse(&c, "10.0.0.0\t"));
	CHECK(!sb_cidr_parse(&c, "::1 "));
	CHECK(!sb_cidr_parse(&c, "localhost"));
}

/* The client for peer with these headers, behind trusted ranges. */
static void client_is(const char *trusted_csv, const char *peer,
		      const char *xff, const char *real_ip, const char *want)
{
	struct sb_cidr trusted[8];
	int n = 0;
	char list[256], *save = NULL;
	struct sb_addr p = addr(peer), c;

	snprintf(list, sizeof(list), "%s", trusted_csv);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		trusted[n++] = cidr(t);
	sb_client_addr(trusted, n, &p, xff, real_ip, &c);
	check_text(&c, want);
}

static void test_client(void)
{
	/* no trusted proxies: the headers mean nothing */
	client_is("", "203.0.113.5", "198.51.100.1", "198.51.100.2", "203.0.113.5");
	/* an untrusted peer cannot claim another address */
	client_is("10.0.0.0/8", "203.0.113.5", "198.51.100.1", "198.51.100.2",
		  "203.0.113.5");
	/* one proxy */
	client_is("10.0.0.0/8", "10.0.0.2", "198.51.100.1", NULL, "198.51.100.1");
	/* the right-most untrusted entry: what the client wrote is left of it */
	client_is("10.0.0.0/8", "10.0.0.2", "1.2.3.4, 198.51.100.1", NULL,
		  "198.51.100.1");
	/* a chain of trusted proxies is skipped */
	client_is("10.0.0.0/8,192.0.2.0/24", "10.0.0.2",
		  "1.2.3.4, 198.51.100.1, 192.0.2.9,10.0.0.7", NULL, "198.51.100.1");
	/* everything trusted: the left-most */
	client_is("10.0.0.0/8", "10.0.0.2", "10.0.0.3, 10.0.0.4", NULL, "10.0.0.3");
	/* garbage ends the walk at the last good hop */
	client_is("10.0.0.0/8", "10.0.0.2", "198.51.100.1, unknown, 10.0.0.9",
		  NULL, "10.0.0.9");
	client_is("10.0.0.0/8", "10.0.0.2", "198.51.100.1,", NULL, "10.0.0.2");
	client_is("10.0.0.0/8", "10.0.0.2", "junk", "198.51.100.3", "10.0.0.2");
	/* ports and brackets as some proxies write them */
	client_is("10.0.0.0/8", "10.0.0.2", "[2001:db8::5]:1234", NULL, "2001:db8::5");
	client_is("10.0.0.0/8", "10.0.0.2", "198.51.100.1:5000", NULL, "198.51.100.1");
	/* X-Real-IP when there is no X-Forwarded-For */
	client_is("10.0.0.0/8", "10.0.0.2", NULL, "198.51.100.3", "198.51.100.3");
	client_is("10.0.0.0/8", "10.0.0.2", "", " 198.51.100.3 ", "198.51.100.3");
	client_is("10.0.0.0/8", "10.0.0.2", NULL, "bogus", "10.0.0.2");
	client_is("10.0.0.0/8", "10.0.0.2", NULL, NULL, "10.0.0.2");
	/* X-Forwarded-For wins over X-Real-IP */
	client_is("10.0.0.0/8", "10.0.0.2", "198.51.100.1", "198.51.100.3",
		  "198.51.100.1");
	/* IPv6 proxies, and a v4-mapped peer counting as IPv4 */
	client_is("::1", "::1", "2001:db8::7", NULL, "2001:db8::7");
	client_is("127.0.0.1", "::ffff:127.0.0.1", "198.51.100.1", NULL,
		  "198.51.100.1");
}

static void key_is(const char *addr_text, const char *want)
{
	struct sb_addr a = addr(addr_text);
	char buf[SB_ADDR_STRLEN + 4];

	sb_addr_limit_key(&a, buf, sizeof(buf));
	CHECK_EQ_STR(buf, want);
}

static void test_limit_key(void)
{
	key_is("192.0.2.7", "192.0.2.7");
	key_is("::ffff:192.0.2.7", "192.0.2.7");
	key_is("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
	key_is("2001:db8:1:2::99", "2001:db8:1:2::/64");
	key_is("2001:db8:1:3::1", "2001:db8:1:3::/64");
	key_is("::1", "::/64");
	key_is("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64");
}

int main(void)
{
	RUN_TEST(test_parse);
	RUN_TEST(test_from_sockaddr);
	RUN_TEST(test_cidr);
	RUN_TEST(test_client);
	RUN_TEST(test_limit_key);
	return check_summary();
}
