/*
 * check_dgcheck.c - unit tests for the datagram source checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dgcheck.h"
#include "check_main.h"

union addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	struct sockaddr_un	sun;
	struct sockaddr_storage	ss;
};

/* The default deny list plus one of the daemon's own datagram ports. */
static const int ports[] = { 0, 7, 13, 19, 37, 9999 };
#define NPORTS	(sizeof(ports) / sizeof(ports[0]))

/* The set of list[0..n), in set. */
static struct dg_ports *
set_of(struct dg_ports *set, const int *list, size_t n)
{
	size_t	i;

	dg_ports_clear(set);
	for (i = 0; i < n; i++)
		dg_ports_add(set, list[i]);
	return set;
}

/* ports[] as the set the checks take. */
static const struct dg_ports *
port_set(void)
{
	static struct dg_ports set;

	return set_of(&set, ports, NPORTS);
}

static enum dg_verdict
check(const char *ip, int port)
{
	union addr	a;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':') != NULL) {
		a.sin6.sin6_family = AF_INET6;
		a.sin6.sin6_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.sin6.sin6_addr),
		    1);
	} else {
		a.sin.sin_family = AF_INET;
		a.sin.sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin.sin_addr), 1);
	}
	return dg_check_source(&a.sa, port_set());
}

START_TEST(test_ports)
{
	size_t	i;

	for (i = 0; i < NPORTS; i++) {
		ck_assert_int_eq(check("192.0.2.1", ports[i]), DG_BAD_PORT);
		ck_assert_int_eq(check("2001:db8::1", ports[i]), DG_BAD_PORT);
		ck_assert_int_eq(check("::ffff:192.0.2.1", ports[i]),
		    DG_BAD_PORT);
	}
	ck_assert_int_eq(check("192.0.2.1", 1), DG_OK);
	ck_assert_int_eq(check("192.0.2.1", 8), DG_OK);
	ck_assert_int_eq(check("192.0.2.1", 40000), DG_OK);
	ck_assert_int_eq(check("192.0.2.1", 65535), DG_OK);
	ck_assert_int_eq(check("2001:db8::1", 53000), DG_OK);
	/* Ports are compared in host order: 7 is not 1792 (0x0700). */
	ck_assert_int_eq(check("192.0.2.1", 1792), DG_OK);
}
END_TEST

START_TEST(test_port_list_edges)
{
	static const int odd[] = { -1, 65536, 65535, 64, 63 };
	static struct dg_ports set;
	union addr	 a;
	int		 port;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	/* No set, or an empty one, denies no port, not even 0. */
	a.sin.sin_port = htons(0);
	ck_assert_int_eq(dg_check_source(&a.sa, NULL), DG_OK);
	ck_assert_int_eq(dg_check_source(&a.sa, set_of(&set, NULL, 0)), DG_OK);
	/* Entries outside 0..65535 deny nothing (no bit of another port). */
	set_of(&set, odd, 2);
	for (port = 0; port <= 65535; port++) {
		a.sin.sin_port = htons((uint16_t)port);
		ck_assert_int_eq(dg_check_source(&a.sa, &set), DG_OK);
	}
	/* Word edges: 63, 64 and the last port; nothing beside them. */
	set_of(&set, odd, 5);
	for (port = 0; port <= 65535; port++) {
		a.sin.sin_port = htons((uint16_t)port);
		ck_assert_int_eq(dg_check_source(&a.sa, &set),
		    port == 63 || port == 64 || port == 65535 ?
		    DG_BAD_PORT : DG_OK);
	}
	/* Cleared, a set forgets what it held. */
	set_of(&set, ports, NPORTS);
	a.sin.sin_port = htons(65535);
	ck_assert_int_eq(dg_check_source(&a.sa, &set), DG_OK);
}
END_TEST

START_TEST(test_v4_addresses)
{
	static const char *const bad[] = {
		"0.0.0.0", "0.1.2.3", "0.255.255.255",
		"224.0.0.1", "224.0.0.251", "239.255.255.255",
		"240.0.0.0", "250.1.2.3", "255.255.255.254",
		"255.255.255.255",
	};
	static const char *const good[] = {
		"1.0.0.0", "1.2.3.4", "10.0.0.255", "127.0.0.1",
		"192.168.1.255", "192.0.2.1", "223.255.255.255",
	};
	size_t	i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(check(bad[i], 4000) == DG_BAD_ADDRESS,
		    "%s passed", bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(check(good[i], 4000) == DG_OK, "%s refused",
		    good[i]);
}
END_TEST

START_TEST(test_v6_addresses)
{
	ck_assert_int_eq(check("::", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("ff02::1", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("ff05::1:3", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("ff00::", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::1", 4000), DG_OK);
	ck_assert_int_eq(check("2001:db8::1", 4000), DG_OK);
	ck_assert_int_eq(check("fe80::1", 4000), DG_OK);
	ck_assert_int_eq(check("feff::1", 4000), DG_OK);
}
END_TEST

START_TEST(test_v4_mapped)
{
	ck_assert_int_eq(check("::ffff:0.0.0.0", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::ffff:0.1.2.3", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::ffff:224.0.0.1", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::ffff:240.0.0.1", 4000), DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::ffff:255.255.255.255", 4000),
	    DG_BAD_ADDRESS);
	ck_assert_int_eq(check("::ffff:192.0.2.1", 4000), DG_OK);
	ck_assert_int_eq(check("::ffff:127.0.0.1", 4000), DG_OK);
}
END_TEST

START_TEST(test_port_checked_with_bad_address)
{
	/* Both wrong: either verdict drops it; the port is judged first. */
	ck_assert_int_eq(check("255.255.255.255", 7), DG_BAD_PORT);
	ck_assert_int_eq(check("ff02::1", 19), DG_BAD_PORT);
}
END_TEST

START_TEST(test_unix_and_other)
{
	union addr	a;

	memset(&a, 0, sizeof(a));
	a.sun.sun_family = AF_UNIX;
	strcpy(a.sun.sun_path, "/run/client.sock");
	ck_assert_int_eq(dg_check_source(&a.sa, port_set()), DG_OK);
	a.sun.sun_path[0] = '\0';
	ck_assert_int_eq(dg_check_source(&a.sa, port_set()), DG_OK);
	memset(&a, 0, sizeof(a));
	a.sa.sa_family = AF_UNSPEC;
	ck_assert_int_eq(dg_check_source(&a.sa, port_set()), DG_OK);
	ck_assert_int_eq(dg_check_source(NULL, port_set()), DG_OK);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(dg_verdict_name(DG_OK), "ok");
	ck_assert_str_eq(dg_verdict_name(DG_BAD_PORT), "denied source port");
	ck_assert_str_eq(dg_verdict_name(DG_BAD_ADDRESS),
	    "bad source address");
	ck_assert_str_eq(dg_verdict_name((enum dg_verdict)42), "unknown");
}
END_TEST

static Suite *
dgcheck_suite(void)
{
	Suite	*s = suite_create("dgcheck");
	TCase	*tc = tcase_create("source");

	tcase_add_test(tc, test_ports);
	tcase_add_test(tc, test_port_list_edges);
	tcase_add_test(tc, test_v4_addresses);
	tcase_add_test(tc, test_v6_addresses);
	tcase_add_test(tc, test_v4_mapped);
	tcase_add_test(tc, test_port_checked_with_bad_address);
	tcase_add_test(tc, test_unix_and_other);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dgcheck_suite)
