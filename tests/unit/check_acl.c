/*
 * check_acl.c - unit tests for CIDR parsing, matching and access lists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "check_main.h"

/* A peer address of either family, filled from a literal. */
union peer {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	struct sockaddr_un	sun;
	struct sockaddr_storage	ss;
};

static const struct sockaddr *
peer(const char *text, union peer *p)
{
	memset(p, 0, sizeof(*p));
	if (strchr(text, ':') != NULL) {
		p->sin6.sin6_family = AF_INET6;
		p->sin6.sin6_port = htons(4242);
		ck_assert_int_eq(inet_pton(AF_INET6, text,
		    &p->sin6.sin6_addr), 1);
	} else {
		p->sin.sin_family = AF_INET;
		p->sin.sin_port = htons(4242);
		ck_assert_int_eq(inet_pton(AF_INET, text, &p->sin.sin_addr),
		    1);
	}
	return &p->sa;
}

static struct cidr
C(const char *text)
{
	struct cidr c;

	ck_assert_msg(cidr_parse(text, &c) == 0, "cidr_parse(\"%s\")", text);
	return c;
}

static bool
matches(const char *prefix, const char *addr)
{
	struct cidr	c = C(prefix);
	union peer	p;

	return cidr_match(&c, peer(addr, &p));
}

START_TEST(test_parse_v4)
{
	struct cidr	c;
	static const uint8_t zero[16];

	ck_assert_int_eq(cidr_parse("192.168.1.0/24", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 24);
	ck_assert_mem_eq(c.addr, "\xc0\xa8\x01\x00", 4);
	ck_assert_mem_eq(c.addr + 4, zero, 12);

	ck_assert_int_eq(cidr_parse("10.1.2.3", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_mem_eq(c.addr, "\x0a\x01\x02\x03", 4);

	ck_assert_int_eq(cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
	ck_assert_int_eq(cidr_parse("10.1.2.3/32", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_int_eq(cidr_parse("128.0.0.0/1", &c), 0);
	ck_assert_int_eq(cidr_parse("10.0.0.0/7", &c), 0);
	ck_assert_int_eq(cidr_parse("255.255.255.254/31", &c), 0);
}
END_TEST

START_TEST(test_parse_v6)
{
	struct cidr	c;

	ck_assert_int_eq(cidr_parse("2001:db8::/32", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_mem_eq(c.addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0",
	    16);
	ck_assert_int_eq(cidr_parse("::1", &c), 0);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_int_eq(c.addr[15], 1);
	ck_assert_int_eq(cidr_parse("::/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
	ck_assert_int_eq(cidr_parse("::ffff:0:0/96", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_int_eq(cidr_parse("::ffff:10.0.0.0/104", &c), 0);
	ck_assert_int_eq(cidr_parse("fe80::/10", &c), 0);
	ck_assert_int_eq(cidr_parse("2001:DB8::1/128", &c), 0);
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
		"", " ", "/", "/24", "10.0.0.0/", "10.0.0.0//8",
		"10.0.0.0/8/8", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0 /8",
		"10.0.0.0/ 8", "10.0.0.0\t", "10.0.0.0\n", "10.0.0.0/33",
		"10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8x",
		"10.0.0.0/0x8", "10.0.0.0/4294967304", "10.0.0.1/8",
		"10.0.0.1/31", "192.168.1.0/23", "0.0.0.1/0", "256.0.0.0",
		"1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4a", "a.b.c.d",
		"localhost", "0x0a000000", "10", "::/129", "::1/127",
		"2001:db8::/16", "2001:db8::1/64", "fe80::1%eth0",
		"fe80::%eth0/64", ":::", "1::2::3", "2001:db8:::/48",
		"::ffff:10.0.0.1/96", "[::1]", "[::1]/128", "-", "abc",
		"1.2.3.4/32/", "::/", "::/1000", "\xff\xfe",
		"2001:db8::/032",
	};
	struct cidr	c, before;
	size_t		i;

	memset(&before, 0x5a, sizeof(before));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = before;
		ck_assert_msg(cidr_parse(bad[i], &c) == -EINVAL,
		    "accepted \"%s\"", bad[i]);
		/* A failed parse leaves the output alone. */
		ck_assert_mem_eq(&c, &before, sizeof(c));
	}
	ck_assert_int_eq(cidr_parse(NULL, &c), -EINVAL);
}
END_TEST

START_TEST(test_format)
{
	static const char *const in[][2] = {
		{ "10.0.0.0/8",		"10.0.0.0/8" },
		{ "10.1.2.3",		"10.1.2.3/32" },
		{ "0.0.0.0/0",		"0.0.0.0/0" },
		{ "2001:DB8:0:0::/64",	"2001:db8::/64" },
		{ "::1",		"::1/128" },
		{ "::/0",		"::/0" },
		{ "::ffff:0:0/96",	"::ffff:0.0.0.0/96" },
		{ "::ffff:10.1.2.3",	"::ffff:10.1.2.3/128" },
	};
	struct cidr	c, again;
	char		buf[CIDR_STRLEN];
	size_t		i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		c = C(in[i][0]);
		cidr_format(&c, buf, sizeof(buf));
		ck_assert_str_eq(buf, in[i][1]);
		again = C(buf);
		ck_assert_mem_eq(&again, &c, sizeof(c));
	}
	/* Truncation stays NUL-terminated. */
	c = C("192.168.100.0/24");
	memset(buf, 'X', sizeof(buf));
	cidr_format(&c, buf, 5);
	ck_assert_str_eq(buf, "192.");
	/* The longest form fits CIDR_STRLEN. */
	c = C("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	cidr_format(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
}
END_TEST

START_TEST(test_match_v4)
{
	ck_assert(matches("10.0.0.0/8", "10.255.1.2"));
	ck_assert(matches("10.0.0.0/8", "10.0.0.0"));
	ck_assert(!matches("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!matches("10.0.0.0/8", "9.255.255.255"));
	ck_assert(matches("192.168.1.0/25", "192.168.1.127"));
	ck_assert(!matches("192.168.1.0/25", "192.168.1.128"));
	ck_assert(matches("10.1.2.3/32", "10.1.2.3"));
	ck_assert(!matches("10.1.2.3/32", "10.1.2.2"));
	ck_assert(!matches("10.1.2.3/32", "10.1.2.131"));
	ck_assert(matches("0.0.0.0/0", "1.2.3.4"));
	ck_assert(matches("0.0.0.0/0", "255.255.255.255"));
	ck_assert(matches("128.0.0.0/1", "200.0.0.1"));
	ck_assert(!matches("128.0.0.0/1", "127.255.255.255"));
	/* An IPv4 prefix never matches a real IPv6 peer. */
	ck_assert(!matches("0.0.0.0/0", "2001:db8::1"));
	ck_assert(!matches("0.0.0.0/0", "::"));
	ck_assert(!matches("0.0.0.0/0", "::1"));
	/* ::10.1.2.3 (deprecated v4-compatible) is not v4-mapped. */
	ck_assert(!matches("10.0.0.0/8", "::10.1.2.3"));
}
END_TEST

START_TEST(test_match_v6)
{
	ck_assert(matches("2001:db8::/32", "2001:db8:ffff::1"));
	ck_assert(!matches("2001:db8::/32", "2001:db9::1"));
	ck_assert(matches("2001:db8::/33", "2001:db8:7fff::1"));
	ck_assert(!matches("2001:db8::/33", "2001:db8:8000::1"));
	ck_assert(matches("::1/128", "::1"));
	ck_assert(!matches("::1/128", "::2"));
	ck_assert(!matches("::1/128", "::"));
	ck_assert(matches("::/0", "2001:db8::1"));
	ck_assert(matches("::/0", "::"));
	ck_assert(matches("fe80::/10", "febf::1"));
	ck_assert(!matches("fe80::/10", "fec0::1"));
	/* An IPv6 prefix never matches a plain IPv4 peer ... */
	ck_assert(!matches("::/0", "10.1.2.3"));
	ck_assert(!matches("::/1", "10.1.2.3"));
}
END_TEST

START_TEST(test_match_mapped)
{
	/* ::ffff:a.b.c.d peers are judged as IPv4 ... */
	ck_assert(matches("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!matches("10.0.0.0/8", "::ffff:11.1.2.3"));
	ck_assert(matches("10.1.2.3/32", "::ffff:10.1.2.3"));
	ck_assert(matches("0.0.0.0/0", "::ffff:1.2.3.4"));
	/* ... and also fall under IPv6 prefixes inside ::ffff:0:0/96 ... */
	ck_assert(matches("::ffff:0:0/96", "::ffff:10.1.2.3"));
	ck_assert(matches("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));
	ck_assert(!matches("::ffff:10.0.0.0/104", "::ffff:11.1.2.3"));
	ck_assert(matches("::ffff:10.1.2.3/128", "::ffff:10.1.2.3"));
	/* ... the same for a plain IPv4 peer on an IPv4 socket ... */
	ck_assert(matches("::ffff:0:0/96", "10.1.2.3"));
	ck_assert(matches("::ffff:10.0.0.0/104", "10.1.2.3"));
	ck_assert(!matches("::ffff:10.0.0.0/104", "11.1.2.3"));
	/* ... but not under wider IPv6 prefixes, which mean "IPv6 peers". */
	ck_assert(!matches("::/0", "::ffff:10.1.2.3"));
	ck_assert(!matches("::/64", "::ffff:10.1.2.3"));
	ck_assert(!matches("::/80", "::ffff:10.1.2.3"));
	/* Other address families and NULL never match. */
	{
		struct cidr	c = C("0.0.0.0/0");
		union peer	p;

		memset(&p, 0, sizeof(p));
		p.sun.sun_family = AF_UNIX;
		ck_assert(!cidr_match(&c, &p.sa));
		ck_assert(!cidr_match(&c, NULL));
	}
}
END_TEST

/* Build an acl from literal prefixes. */
struct acl_buf {
	struct cidr	allow[8], deny[8];
	struct acl	acl;
};

static const struct acl *
mkacl(struct acl_buf *b, const char *const *allow, const char *const *deny)
{
	size_t	i;

	memset(b, 0, sizeof(*b));
	for (i = 0; allow != NULL && allow[i] != NULL; i++)
		b->allow[i] = C(allow[i]);
	b->acl.allow = b->allow;
	b->acl.nallow = i;
	for (i = 0; deny != NULL && deny[i] != NULL; i++)
		b->deny[i] = C(deny[i]);
	b->acl.deny = b->deny;
	b->acl.ndeny = i;
	return &b->acl;
}

static bool
permits(const struct acl *acl, const char *addr)
{
	union peer	p;

	return acl_permits(acl, peer(addr, &p));
}

START_TEST(test_acl_empty_allow)
{
	struct acl_buf		 b;
	const struct acl	*a = mkacl(&b, NULL, NULL);

	ck_assert(permits(a, "1.2.3.4"));
	ck_assert(permits(a, "2001:db8::1"));
	ck_assert(permits(a, "::ffff:1.2.3.4"));
	ck_assert(acl_permits(NULL, NULL));
}
END_TEST

START_TEST(test_acl_allow_list)
{
	static const char *const allow[] = {
		"127.0.0.0/8", "10.0.0.0/8", "::1", "2001:db8::/32", NULL
	};
	struct acl_buf		 b;
	const struct acl	*a = mkacl(&b, allow, NULL);

	ck_assert(permits(a, "127.0.0.1"));
	ck_assert(permits(a, "10.9.8.7"));
	ck_assert(permits(a, "::ffff:10.9.8.7"));
	ck_assert(permits(a, "::1"));
	ck_assert(permits(a, "2001:db8::42"));
	ck_assert(!permits(a, "192.168.1.1"));
	ck_assert(!permits(a, "::ffff:192.168.1.1"));
	ck_assert(!permits(a, "2001:db9::1"));
	ck_assert(!permits(a, "::2"));
}
END_TEST

START_TEST(test_acl_deny_wins)
{
	static const char *const allow[] = {
		"10.0.0.0/8", "2001:db8::/32", NULL
	};
	static const char *const deny[] = {
		"10.66.0.0/16", "2001:db8:bad::/48", "10.1.2.3", NULL
	};
	static const char *const deny_all[] = {
		"0.0.0.0/0", "::/0", NULL
	};
	struct acl_buf		 b;
	const struct acl	*a = mkacl(&b, allow, deny);

	ck_assert(permits(a, "10.65.1.1"));
	ck_assert(!permits(a, "10.66.1.1"));
	ck_assert(!permits(a, "::ffff:10.66.1.1"));
	ck_assert(!permits(a, "10.1.2.3"));
	ck_assert(permits(a, "10.1.2.4"));
	ck_assert(permits(a, "2001:db8:bac::1"));
	ck_assert(!permits(a, "2001:db8:bad::1"));
	ck_assert(!permits(a, "172.16.0.1"));

	/* Deny only: everyone else is allowed. */
	a = mkacl(&b, NULL, deny);
	ck_assert(!permits(a, "10.66.0.1"));
	ck_assert(permits(a, "172.16.0.1"));
	ck_assert(permits(a, "::1"));

	/* The same prefix in both lists: deny wins. */
	a = mkacl(&b, deny, deny);
	ck_assert(!permits(a, "10.1.2.3"));

	/* Deny everything, whatever the allow list says. */
	a = mkacl(&b, allow, deny_all);
	ck_assert(!permits(a, "10.1.1.1"));
	ck_assert(!permits(a, "::ffff:10.1.1.1"));
	ck_assert(!permits(a, "2001:db8::1"));
}
END_TEST

START_TEST(test_acl_mapped_deny)
{
	static const char *const deny[] = { "::ffff:0:0/96", NULL };
	static const char *const deny6[] = { "::/0", NULL };
	struct acl_buf		 b;
	const struct acl	*a = mkacl(&b, NULL, deny);

	/* Denying the mapped space denies IPv4 on either kind of socket. */
	ck_assert(!permits(a, "::ffff:1.2.3.4"));
	ck_assert(!permits(a, "1.2.3.4"));
	ck_assert(permits(a, "2001:db8::1"));
	/* Denying ::/0 shuts out IPv6 peers only. */
	a = mkacl(&b, NULL, deny6);
	ck_assert(!permits(a, "2001:db8::1"));
	ck_assert(permits(a, "::ffff:1.2.3.4"));
	ck_assert(permits(a, "1.2.3.4"));
}
END_TEST

START_TEST(test_acl_unix_always)
{
	static const char *const allow[] = { "10.0.0.0/8", NULL };
	static const char *const deny[] = { "0.0.0.0/0", "::/0", NULL };
	struct acl_buf		 b;
	const struct acl	*a = mkacl(&b, allow, deny);
	union peer		 p;

	memset(&p, 0, sizeof(p));
	p.sun.sun_family = AF_UNIX;
	strcpy(p.sun.sun_path, "/run/x.sock");
	ck_assert(acl_permits(a, &p.sa));
	/* An unbound unix-dgram sender has no path at all. */
	p.sun.sun_path[0] = '\0';
	ck_assert(acl_permits(a, &p.sa));
	ck_assert(!permits(a, "10.1.1.1"));
}
END_TEST

static Suite *
acl_suite(void)
{
	Suite	*s = suite_create("acl");
	TCase	*tc;

	tc = tcase_create("cidr");
	tcase_add_test(tc, test_parse_v4);
	tcase_add_test(tc, test_parse_v6);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_match_v4);
	tcase_add_test(tc, test_match_v6);
	tcase_add_test(tc, test_match_mapped);
	suite_add_tcase(s, tc);

	tc = tcase_create("acl");
	tcase_add_test(tc, test_acl_empty_allow);
	tcase_add_test(tc, test_acl_allow_list);
	tcase_add_test(tc, test_acl_deny_wins);
	tcase_add_test(tc, test_acl_mapped_deny);
	tcase_add_test(tc, test_acl_unix_always);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(acl_suite)
