/*
 * check_netaddr.c - unit tests of netaddr.c: the source a peer counts as
 * for per-source limits (its address masked to source_prefix_v4/_v6, or
 * a Unix peer's uid), its text form, and the address helpers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "check_main.h"

union peer {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	struct sockaddr_un	sun;
	struct sockaddr_storage	ss;
};

/* An AF_INET or AF_INET6 peer from a literal, with a port. */
static const struct sockaddr *
peer(const char *text, unsigned port, union peer *p)
{
	memset(p, 0xa5, sizeof(*p));	/* no reliance on zeroed padding */
	if (strchr(text, ':') != NULL) {
		memset(&p->sin6, 0, sizeof(p->sin6));
		p->sin6.sin6_family = AF_INET6;
		p->sin6.sin6_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET6, text,
		    &p->sin6.sin6_addr), 1);
	} else {
		memset(&p->sin, 0, sizeof(p->sin));
		p->sin.sin_family = AF_INET;
		p->sin.sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, text, &p->sin.sin_addr),
		    1);
	}
	return &p->sa;
}

/* The text of text's source under the prefixes v4 and v6. */
static const char *
source_text(const char *text, unsigned v4, unsigned v6)
{
	static char buf[CIDR_STRLEN];
	struct netaddr_source src;
	union peer p;

	netaddr_source(peer(text, 4242, &p), 0, v4, v6, &src);
	netaddr_source_format(&src, buf, sizeof(buf));
	return buf;
}

/* Do a and b count as one source under the prefixes v4 and v6? */
static bool
same_source(const char *a, const char *b, unsigned v4, unsigned v6)
{
	struct netaddr_source sa, sb;
	union peer pa, pb;

	netaddr_source(peer(a, 1000, &pa), 0, v4, v6, &sa);
	netaddr_source(peer(b, 2000, &pb), 0, v4, v6, &sb);
	return netaddr_source_equal(&sa, &sb);
}

START_TEST(test_source_v6_prefix)
{
	/* The default /64: a whole IPv6 network is one source. */
	ck_assert_str_eq(source_text("2001:db8:1::1", 32, 64),
	    "2001:db8:1::/64");
	ck_assert_str_eq(source_text("2001:db8:1:0:ffff:ffff:ffff:ffff", 32,
	    64), "2001:db8:1::/64");
	ck_assert(same_source("2001:db8:1::1", "2001:db8:1:0:dead:beef:1:2",
	    32, 64));
	ck_assert(!same_source("2001:db8:1::1", "2001:db8:1:1::1", 32, 64));
	/* 128 keeps every address apart. */
	ck_assert_str_eq(source_text("2001:db8:1::1", 32, 128),
	    "2001:db8:1::1/128");
	ck_assert(!same_source("2001:db8:1::1", "2001:db8:1::2", 32, 128));
	/* Prefixes that are not a multiple of 8 cut inside a byte. */
	ck_assert_str_eq(source_text("2001:db8:1:ffff::1", 32, 57),
	    "2001:db8:1:ff80::/57");
	ck_assert_str_eq(source_text("2001:db8:abcd::1", 32, 36),
	    "2001:db8:a000::/36");
	ck_assert(same_source("2001:db8:1:ff80::1", "2001:db8:1:ffff::2",
	    32, 57));
	ck_assert(!same_source("2001:db8:1:ff00::1", "2001:db8:1:ff80::2",
	    32, 57));
	/* 0: every IPv6 client is one source. */
	ck_assert_str_eq(source_text("2001:db8:1::1", 32, 0), "::/0");
	ck_assert(same_source("2001:db8:1::1", "fe80::1", 32, 0));
	ck_assert(same_source("::1", "::1", 32, 64));
}
END_TEST

START_TEST(test_source_v4_prefix)
{
	/* The default /32: each IPv4 address is its own source. */
	ck_assert_str_eq(source_text("192.0.2.77", 32, 64), "192.0.2.77/32");
	ck_assert(!same_source("192.0.2.1", "192.0.2.2", 32, 64));
	ck_assert(same_source("192.0.2.1", "192.0.2.1", 32, 64));
	ck_assert_str_eq(source_text("192.0.2.77", 24, 64), "192.0.2.0/24");
	ck_assert(same_source("192.0.2.1", "192.0.2.254", 24, 64));
	ck_assert(!same_source("192.0.2.1", "192.0.3.1", 24, 64));
	ck_assert_str_eq(source_text("198.51.100.255", 25, 64),
	    "198.51.100.128/25");
	ck_assert_str_eq(source_text("203.0.113.9", 0, 64), "0.0.0.0/0");
	ck_assert(same_source("203.0.113.9", "10.0.0.1", 0, 64));
	/* The v6 prefix does not apply to IPv4 peers. */
	ck_assert(!same_source("192.0.2.1", "192.0.2.2", 32, 0));
}
END_TEST

START_TEST(test_source_v4_mapped)
{
	/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: they
	 * count as IPv4, under the v4 prefix, and as the same source as on
	 * an IPv4 listener. */
	ck_assert_str_eq(source_text("::ffff:192.0.2.77", 32, 64),
	    "192.0.2.77/32");
	ck_assert_str_eq(source_text("::ffff:192.0.2.77", 24, 64),
	    "192.0.2.0/24");
	ck_assert(!same_source("::ffff:192.0.2.1", "::ffff:192.0.2.2", 32,
	    64));
	ck_assert(same_source("::ffff:192.0.2.1", "192.0.2.1", 32, 64));
	ck_assert(same_source("::ffff:192.0.2.1", "192.0.2.200", 24, 64));
	/* Not the IPv6 network ::ffff:0:0/64 that the v6 prefix would make. */
	ck_assert(!same_source("::ffff:192.0.2.1", "::ffff:192.0.2.2", 32,
	    0));
	ck_assert(!same_source("::ffff:192.0.2.1", "::1", 0, 0));
}
END_TEST

START_TEST(test_source_unix)
{
	struct netaddr_source a, b, ip;
	union peer p, q;
	char buf[CIDR_STRLEN];

	memset(&p, 0, sizeof(p));
	p.sun.sun_family = AF_UNIX;
	strcpy(p.sun.sun_path, "/run/a.sock");
	memset(&q, 0, sizeof(q));
	q.sun.sun_family = AF_UNIX;
	strcpy(q.sun.sun_path, "/tmp/other");
	/* One source per user, whatever the path or the prefixes. */
	netaddr_source(&p.sa, 1000, 32, 64, &a);
	netaddr_source(&q.sa, 1000, 0, 0, &b);
	ck_assert(netaddr_source_equal(&a, &b));
	netaddr_source_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, "uid 1000");
	netaddr_source(&q.sa, 0, 32, 64, &b);
	ck_assert(!netaddr_source_equal(&a, &b));
	netaddr_source_format(&b, buf, sizeof(buf));
	ck_assert_str_eq(buf, "uid 0");
	/* Never the same as an IP source, even with all address bits 0. */
	netaddr_source(peer("::", 1, &p), 0, 0, 0, &ip);
	ck_assert(!netaddr_source_equal(&ip, &b));
	netaddr_source(peer("0.0.0.0", 1, &p), 0, 0, 0, &ip);
	ck_assert(!netaddr_source_equal(&ip, &b));
}
END_TEST

START_TEST(test_source_ignores_port_and_padding)
{
	struct netaddr_source a, b;
	union peer p;

	/* Filled over garbage, the same source compares equal byte-wise,
	 * so it can key the rate limiter's hash. */
	memset(&a, 0x5a, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	netaddr_source(peer("2001:db8::1", 1, &p), 0, 32, 64, &a);
	netaddr_source(peer("2001:db8::2", 65535, &p), 0, 32, 64, &b);
	ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
	/* Out-of-range prefixes are clamped, never read past the address. */
	ck_assert_str_eq(source_text("192.0.2.1", 99, 999),
	    "192.0.2.1/32");
	ck_assert_str_eq(source_text("2001:db8::1", 99, 999),
	    "2001:db8::1/128");
}
END_TEST

START_TEST(test_format_and_port)
{
	char buf[NETADDR_STRLEN];
	union peer p;

	netaddr_format(peer("192.0.2.1", 7, &p), sizeof(p.sin), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "192.0.2.1:7");
	ck_assert_int_eq(netaddr_port(&p.sa), 7);
	netaddr_format(peer("2001:db8::1", 9999, &p), sizeof(p.sin6), buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "[2001:db8::1]:9999");
	ck_assert_int_eq(netaddr_port(&p.sa), 9999);
	memset(&p, 0, sizeof(p));
	p.sun.sun_family = AF_UNIX;
	ck_assert_int_eq(netaddr_port(&p.sa), -1);
	netaddr_format(&p.sa, sizeof(sa_family_t), buf, sizeof(buf));
	ck_assert_str_eq(buf, "unix:unnamed");
}
END_TEST

static Suite *
netaddr_suite(void)
{
	Suite	*s = suite_create("netaddr");
	TCase	*tc = tcase_create("source");

	tcase_add_test(tc, test_source_v6_prefix);
	tcase_add_test(tc, test_source_v4_prefix);
	tcase_add_test(tc, test_source_v4_mapped);
	tcase_add_test(tc, test_source_unix);
	tcase_add_test(tc, test_source_ignores_port_and_padding);
	tcase_add_test(tc, test_format_and_port);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(netaddr_suite)
