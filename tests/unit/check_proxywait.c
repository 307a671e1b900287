/*
 * check_proxywait.c - unit tests of proxywait.c: the trust rule, the peer
 * rewrite after a header, and the waiting set driven over a socketpair by
 * a real loop (loop.h), with hooks that record what admission (accept.c)
 * would be told.
 */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "conn.h"
#include "loop.h"
#include "proxywait.h"
#include "check_main.h"

static int		 fds_before;
static struct loop	*lp;
static struct loop_timer bound;	/* no round of the loop sleeps longer */
static int		 peer = -1;	/* the proxy's end */
static struct proxywait	 set, *pw = &set;
static struct listen_conf lc;
static struct cidr	 trusted[1];

/* What the hooks saw. */
static struct conn	*admitted;
static char		 early[PW_READ];
static size_t		 nearly;
static int		 admit_answer;	/* 0, or -EBUSY to park */
static int		 ndropped, nbad, nadmits;

static int
hook_admit(void *ctx, struct conn *c, const char *e, size_t n)
{
	nadmits++;
	if (admit_answer == -EBUSY)
		return -EBUSY;
	admitted = c;
	memcpy(early, e, n);
	nearly = n;
	return 0;
}

static void
hook_drop(void *ctx, struct conn *c, bool bad_header)
{
	ndropped++;
	nbad += bad_header;
	close(c->fd);
	free(c);
}

static const struct proxywait_ops ops = { hook_admit, hook_drop };

static void
bound_due(struct loop_timer *t, uint64_t now)
{
}

static void
setup(void)
{
	fds_before = check_open_fds();
	ck_assert_ptr_nonnull(lp = loop_new(8));
	loop_timer_add(lp, &bound, bound_due, NULL);
	proxywait_init(pw, lp, &ops, NULL);
	memset(&lc, 0, sizeof(lc));
	lc.transport = TRANSPORT_TCP;
	lc.proxy_protocol = PROXY_ANY;
	lc.proxy_timeout = 2;
	ck_assert_int_eq(cidr_parse("127.0.0.0/8", &trusted[0]), 0);
	lc.proxy_from = trusted;
	lc.nproxy_from = 1;
	admitted = NULL;
	nearly = 0;
	admit_answer = 0;
	ndropped = nbad = nadmits = 0;
}

static void
teardown(void)
{
	proxywait_fini(pw);
	if (admitted) {
		close(admitted->fd);
		free(admitted);
	}
	if (peer >= 0)
		close(peer);
	peer = -1;
	loop_free(lp);
	ck_assert_int_eq(check_open_fds(), fds_before);
}

/* A connection from 127.0.0.1:4000 over a socketpair, accepted at
 * start_ms (clock_ms() time). */
static struct conn *
new_conn(uint64_t start_ms)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->peer;
	int sv[2];

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	c->fd = sv[0];
	c->own_fd = true;
	peer = sv[1];
	sin->sin_family = AF_INET;
	sin->sin_port = htons(4000);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->peerlen = sizeof(*sin);
	strcpy(c->peerstr, "127.0.0.1:4000");
	strcpy(c->lname, "test");
	c->transport = "tcp";
	c->start_ms = start_ms;
	return c;
}

static void
put(const void *buf, size_t len)
{
	ck_assert_int_eq(send(peer, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* The proxy's end reads EOF or a reset, and not a byte. */
static void
expect_closed_silently(void)
{
	char c;
	ssize_t n = recv(peer, &c, 1, MSG_DONTWAIT);

	ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET),
	    "recv gave %zd (%s)", n, n < 0 ? strerror(errno) : "a byte");
}

/* One round of the loop, sleeping at most ms: the number of events. */
static int
pump_for(int ms)
{
	int n;

	loop_timer_set(&bound, clock_ms() + (uint64_t)ms);
	n = loop_once(lp);
	ck_assert_int_ge(n, 0);
	return n;
}

/* What is ready now. */
static int
pump(void)
{
	return pump_for(0);
}

static const uint8_t v2_tcp4[] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
	0x21, 0x11, 0x00, 0x0C,
	192, 0, 2, 7,  127, 0, 0, 1,  0x12, 0x67,  0x27, 0x0F,
};
static const uint8_t v2_local[] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
	0x20, 0x00, 0x00, 0x00,
};

/* ---- trust ---------------------------------------------------------- */

START_TEST(test_trusts)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	inet_pton(AF_INET, "127.0.0.9", &sin.sin_addr);
	ck_assert(proxywait_trusts(&lc, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.0.0.1", &sin.sin_addr);
	ck_assert(!proxywait_trusts(&lc, (struct sockaddr *)&sin));
	/* A v4-mapped peer of a dual-stack listener is its IPv4 address. */
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &sin6.sin6_addr);
	ck_assert(proxywait_trusts(&lc, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	ck_assert(!proxywait_trusts(&lc, (struct sockaddr *)&sin6));
	/* A tcp listener never trusts a peer without an address ... */
	ck_assert(!proxywait_trusts(&lc, (struct sockaddr *)&sun));
	/* ... a unix listener every peer that may connect to its file. */
	lc.transport = TRANSPORT_UNIX;
	lc.nproxy_from = 0;
	ck_assert(proxywait_trusts(&lc, (struct sockaddr *)&sun));
}
END_TEST

/* ---- the peer rewrite ---------------------------------------------- */

static void
feed_all(struct pp_parser *p, const uint8_t *h, size_t len)
{
	size_t used;

	ck_assert_int_eq(pp_init(p, PP_ANY), 0);
	ck_assert_int_eq(pp_feed(p, h, len, &used), PP_DONE);
	ck_assert_uint_eq(used, len);
}

START_TEST(test_rewrite)
{
	static const char v1_mapped[] = "PROXY TCP6 ::ffff:192.0.2.8 ::1 "
	    "4712 7\r\n";
	static const char v1_unknown[] = "PROXY UNKNOWN\r\n";
	struct pp_parser p;
	struct conn *c = new_conn(clock_ms());

	feed_all(&p, v2_tcp4, sizeof(v2_tcp4));
	proxywait_rewrite(c, &p.res);
	ck_assert_str_eq(c->peerstr, "192.0.2.7:4711");
	ck_assert_str_eq(c->proxystr, "127.0.0.1:4000");
	ck_assert_int_eq(c->peer.ss_family, AF_INET);
	ck_assert_ptr_null(c->proxy_note);
	ck_assert(!c->quiet);

	/* One client has one form: v4-mapped becomes IPv4. */
	strcpy(c->peerstr, "[::1]:4000");
	feed_all(&p, (const uint8_t *)v1_mapped, strlen(v1_mapped));
	proxywait_rewrite(c, &p.res);
	ck_assert_str_eq(c->peerstr, "192.0.2.8:4712");
	ck_assert_str_eq(c->proxystr, "[::1]:4000");

	/* LOCAL (a health check) and UNKNOWN keep the connection's peer. */
	strcpy(c->peerstr, "unix:pid=42");
	feed_all(&p, v2_local, sizeof(v2_local));
	proxywait_rewrite(c, &p.res);
	ck_assert_str_eq(c->peerstr, "unix:pid=42");
	ck_assert_str_eq(c->proxystr, "unix:pid=42");
	ck_assert_str_eq(c->proxy_note, "PROXY LOCAL");
	ck_assert(c->quiet);
	feed_all(&p, (const uint8_t *)v1_unknown, strlen(v1_unknown));
	proxywait_rewrite(c, &p.res);
	ck_assert_str_eq(c->peerstr, "unix:pid=42");
	ck_assert_str_eq(c->proxy_note, "PROXY UNKNOWN");
	ck_assert(!c->quiet);
	close(c->fd);
	free(c);
}
END_TEST

/* ---- the waiting set ----------------------------------------------- */

/* A header split over reads, with lines after it: admitted once it is
 * complete, with exactly the bytes that followed it. */
START_TEST(test_header_then_lines)
{
	struct conn *c = new_conn(clock_ms());

	proxywait_add(pw, c, &lc);
	ck_assert_uint_eq(proxywait_count(pw), 1);
	ck_assert_uint_eq(pw->deadline.when_ms, c->start_ms + 2000);
	put(v2_tcp4, 10);
	ck_assert_int_eq(pump(), 1);
	ck_assert_ptr_null(admitted);
	put(v2_tcp4 + 10, sizeof(v2_tcp4) - 10);
	put("one\ntw", 6);
	ck_assert_int_eq(pump(), 1);
	ck_assert_ptr_eq(admitted, c);
	ck_assert_uint_eq(nearly, 6);
	ck_assert(memcmp(early, "one\ntw", 6) == 0);
	ck_assert_str_eq(c->peerstr, "192.0.2.7:4711");
	ck_assert_uint_eq(proxywait_count(pw), 0);
	/* Out of the set: the session registers the fd anew. */
	ck_assert_int_eq(pump(), 0);
	ck_assert_int_eq(ndropped, 0);
}
END_TEST

/* A header already there at the accept is read at once. */
START_TEST(test_header_at_accept)
{
	struct conn *c = new_conn(clock_ms());

	put(v2_local, sizeof(v2_local));
	proxywait_add(pw, c, &lc);
	ck_assert_ptr_eq(admitted, c);
	ck_assert_uint_eq(nearly, 0);
	ck_assert(c->quiet);
}
END_TEST

START_TEST(test_garbage_and_eof)
{
	struct conn *c = new_conn(clock_ms());

	put("GET / HTTP/1.0\r\n", 16);
	proxywait_add(pw, c, &lc);
	ck_assert_int_eq(ndropped, 1);
	ck_assert_int_eq(nbad, 1);
	expect_closed_silently();
	close(peer);

	c = new_conn(clock_ms());
	proxywait_add(pw, c, &lc);
	put(v2_tcp4, 5);
	ck_assert_int_eq(pump(), 1);
	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(pump(), 1);
	ck_assert_int_eq(nbad, 2);
	ck_assert_uint_eq(proxywait_count(pw), 0);
	ck_assert_ptr_null(admitted);
}
END_TEST

/* The deadline bounds the whole header, not the gap between bytes: the
 * loop's timer closes it, bytes or not. */
START_TEST(test_deadline)
{
	uint64_t start = clock_ms() - 2000 + 200;
	struct conn *c = new_conn(start);
	int i;

	proxywait_add(pw, c, &lc);
	put(v2_tcp4, 3);
	pump();
	ck_assert_int_eq(ndropped, 0);
	put(v2_tcp4 + 3, 3);
	pump();
	ck_assert_int_eq(ndropped, 0);
	for (i = 0; i < 100 && nbad == 0; i++)
		pump_for(50);
	ck_assert_int_eq(nbad, 1);
	ck_assert_uint_ge(clock_ms() - start, 2000);
	ck_assert_uint_eq(proxywait_count(pw), 0);
	ck_assert_uint_eq(pw->deadline.when_ms, 0);
	expect_closed_silently();
}
END_TEST

/* Each deadline is met, whichever listener's is first. */
START_TEST(test_deadlines_out_of_order)
{
	uint64_t t = clock_ms();
	int first, i;

	/* 2 s from t, then 1 s from t - 900 ms: the second is due first. */
	proxywait_add(pw, new_conn(t), &lc);
	first = peer;
	lc.proxy_timeout = 1;
	proxywait_add(pw, new_conn(t - 900), &lc);
	ck_assert_uint_eq(pw->deadline.when_ms, t + 100);
	for (i = 0; i < 100 && nbad == 0; i++)
		pump_for(50);
	ck_assert_int_eq(nbad, 1);
	ck_assert_uint_eq(proxywait_count(pw), 1);
	ck_assert_uint_eq(pw->deadline.when_ms, t + 2000);
	close(first);
}
END_TEST

/* No room: parked with its bytes, unwatched and past any deadline,
 * offered again by proxywait_retry(). */
START_TEST(test_park)
{
	struct conn *c = new_conn(clock_ms());

	admit_answer = -EBUSY;
	put(v2_tcp4, sizeof(v2_tcp4));
	put("x\n", 2);
	proxywait_add(pw, c, &lc);
	ck_assert_int_eq(nadmits, 1);
	ck_assert_uint_eq(proxywait_count(pw), 1);
	put("more\n", 5);
	ck_assert_int_eq(pump(), 0);
	pw->deadline.cb(&pw->deadline, UINT64_MAX - 1);
	ck_assert_int_eq(ndropped, 0);
	proxywait_retry(pw);
	ck_assert_int_eq(nadmits, 2);
	admit_answer = 0;
	proxywait_retry(pw);
	ck_assert_ptr_eq(admitted, c);
	ck_assert_uint_eq(nearly, 2);
	ck_assert(memcmp(early, "x\n", 2) == 0);
	ck_assert_uint_eq(proxywait_count(pw), 0);
}
END_TEST

/* A stop drops whatever is held, without counting it as bad. */
START_TEST(test_clear)
{
	proxywait_add(pw, new_conn(clock_ms()), &lc);
	ck_assert_uint_eq(proxywait_count(pw), 1);
	proxywait_clear(pw);
	ck_assert_uint_eq(proxywait_count(pw), 0);
	ck_assert_int_eq(ndropped, 1);
	ck_assert_int_eq(nbad, 0);
}
END_TEST

static Suite *
proxywait_suite(void)
{
	Suite	*su = suite_create("proxywait");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_trusts);
	tcase_add_test(tc, test_rewrite);
	tcase_add_test(tc, test_header_then_lines);
	tcase_add_test(tc, test_header_at_accept);
	tcase_add_test(tc, test_garbage_and_eof);
	tcase_add_test(tc, test_deadline);
	tcase_add_test(tc, test_deadlines_out_of_order);
	tcase_add_test(tc, test_park);
	tcase_add_test(tc, test_clear);
	suite_add_tcase(su, tc);
	return su;
}

CHECK_MAIN(proxywait_suite)
