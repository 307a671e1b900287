/*
 * check_dgbatch.c - unit tests for dgbatch.c: how many slots a batch
 * gets, reading a queue of datagrams (senders, MSG_TRUNC lengths, the
 * count asked for, an IPv6 read after an IPv4 one) and sending the
 * replies, including those the kernel refuses in the middle of a batch.
 * Real UDP sockets on 127.0.0.1 and ::1.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dgbatch.h"
#include "check_main.h"

/* A UDP socket bound to 127.0.0.1 on a free port. */
static int
udp(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 2 };	/* under Check's 4 s */
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	return fd;
}

static struct sockaddr_in
name_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return sin;
}

static void
send_to(int from, int to, const char *text, size_t len)
{
	struct sockaddr_in sin = name_of(to);

	ck_assert_int_eq(sendto(from, text, len, 0, (struct sockaddr *)&sin,
	    sizeof(sin)), (ssize_t)len);
}

/* The next datagram on fd as a string (it must come). */
static const char *
next(int fd)
{
	static char buf[128];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	return buf;
}

/* Nothing (more) queued on fd. */
static void
ck_empty(int fd)
{
	char c;

	ck_assert_int_lt(recv(fd, &c, 1, MSG_DONTWAIT), 0);
	ck_assert_int_eq(errno, EAGAIN);
}

START_TEST(test_slots)
{
	struct dgbatch *b;

	/* The default max_line_length: 4099 + its reply. */
	b = dgbatch_new(4099, 4125);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(dgbatch_slots(b), DGBATCH_SLOTS);
	ck_assert_uint_eq(dgbatch_cap(b), 4099);
	ck_assert_uint_eq(dgbatch_reply_cap(b), 4125);
	dgbatch_free(b);
	/* Longer lines: as many as DGBATCH_BYTES holds. */
	b = dgbatch_new(20000, 20000);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(dgbatch_slots(b), DGBATCH_BYTES / 40000);
	dgbatch_free(b);
	/* Two must fit, or there is no batch. */
	errno = 0;
	ck_assert_ptr_null(dgbatch_new(DGBATCH_BYTES / 2, 1));
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_ptr_nonnull(b = dgbatch_new(DGBATCH_BYTES / 4, 1));
	ck_assert_uint_eq(dgbatch_slots(b), 3);
	dgbatch_free(b);
	errno = 0;
	ck_assert_ptr_null(dgbatch_new(0, 0));
	ck_assert_int_eq(errno, ERANGE);
	/* Room for a datagram and for a reply, or no batch. */
	errno = 0;
	ck_assert_ptr_null(dgbatch_new(0, 64));
	ck_assert_int_eq(errno, ERANGE);
	errno = 0;
	ck_assert_ptr_null(dgbatch_new(64, 0));
	ck_assert_int_eq(errno, ERANGE);
	dgbatch_free(NULL);
}
END_TEST

START_TEST(test_recv_queue)
{
	int srv = udp(), a = udp(), c = udp(), fds = check_open_fds();
	struct dgbatch *b = dgbatch_new(8, 32);
	struct sockaddr_in sa = name_of(a), sc = name_of(c);
	const struct sockaddr_in *p;
	socklen_t plen;
	size_t len;
	char *d;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), -EAGAIN);
	send_to(a, srv, "one\n", 4);
	send_to(c, srv, "two\n", 4);
	send_to(a, srv, "a longer datagram\n", 18);	/* more than 8 */
	send_to(c, srv, "", 0);
	send_to(a, srv, "five\n", 5);
	/* max is respected: the rest stays queued. */
	ck_assert_int_eq(dgbatch_recv(b, srv, 2), 2);
	d = dgbatch_data(b, 0, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(d, "one\n", 4);
	p = (const struct sockaddr_in *)dgbatch_peer(b, 0, &plen);
	ck_assert_uint_eq(plen, sizeof(sa));
	ck_assert_uint_eq(p->sin_port, sa.sin_port);
	p = (const struct sockaddr_in *)dgbatch_peer(b, 1, &plen);
	ck_assert_uint_eq(p->sin_port, sc.sin_port);
	/* The rest, and no more than queued. */
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), 3);
	d = dgbatch_data(b, 0, &len);
	ck_assert_uint_eq(len, 18);		/* MSG_TRUNC: the real length */
	ck_assert_mem_eq(d, "a longer", 8);	/* what the slot holds */
	d = dgbatch_data(b, 1, &len);
	ck_assert_uint_eq(len, 0);
	p = (const struct sockaddr_in *)dgbatch_peer(b, 1, &plen);
	ck_assert_uint_eq(p->sin_port, sc.sin_port);
	d = dgbatch_data(b, 2, &len);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(d, "five\n", 5);
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), -EAGAIN);
	ck_assert_int_eq(dgbatch_recv(b, -1, DGBATCH_SLOTS), -EBADF);
	dgbatch_free(b);
	ck_assert_int_eq(check_open_fds(), fds);
	close(srv);
	close(a);
	close(c);
}
END_TEST

/* A UDP socket bound to ::1 on a free port; -1 without IPv6. */
static int
udp6(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin6,
	    sizeof(sin6)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * One batch serves every UDP listener of the daemon, IPv4 and IPv6: a
 * slot an IPv4 read filled (its name length set to 16 by the kernel)
 * still takes a whole IPv6 sender's name the next time.
 */
START_TEST(test_recv_after_shorter_names)
{
	int srv = udp(), a = udp(), srv6 = udp6(), a6 = udp6();
	struct dgbatch *b = dgbatch_new(8, 32);
	struct sockaddr_in6 s6, n6;
	socklen_t len = sizeof(s6), plen;
	const struct sockaddr *p;
	size_t dlen;

	if (srv6 < 0 || a6 < 0) {
		fprintf(stderr, "check_dgbatch: no IPv6 loopback, "
		    "test_recv_after_shorter_names skipped\n");
		goto out;
	}
	ck_assert_ptr_nonnull(b);
	send_to(a, srv, "v4\n", 3);
	send_to(a, srv, "v4\n", 3);
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), 2);
	(void)dgbatch_peer(b, 1, &plen);
	ck_assert_uint_eq(plen, sizeof(struct sockaddr_in));
	ck_assert_int_eq(getsockname(srv6, (struct sockaddr *)&s6, &len), 0);
	len = sizeof(n6);
	ck_assert_int_eq(getsockname(a6, (struct sockaddr *)&n6, &len), 0);
	ck_assert_int_eq(sendto(a6, "v6\n", 3, 0, (struct sockaddr *)&s6,
	    sizeof(s6)), 3);
	ck_assert_int_eq(sendto(a6, "v6\n", 3, 0, (struct sockaddr *)&s6,
	    sizeof(s6)), 3);
	ck_assert_int_eq(dgbatch_recv(b, srv6, DGBATCH_SLOTS), 2);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_mem_eq(dgbatch_data(b, i, &dlen), "v6\n", 3);
		p = dgbatch_peer(b, i, &plen);
		ck_assert_uint_eq(plen, sizeof(n6));
		ck_assert_uint_eq(p->sa_family, AF_INET6);
		ck_assert_uint_eq(((const struct sockaddr_in6 *)p)->sin6_port,
		    n6.sin6_port);
		ck_assert_mem_eq(&((const struct sockaddr_in6 *)p)->sin6_addr,
		    &n6.sin6_addr, sizeof(n6.sin6_addr));
	}
out:
	dgbatch_free(b);
	close(srv);
	close(a);
	if (srv6 >= 0)
		close(srv6);
	if (a6 >= 0)
		close(a6);
}
END_TEST

/* n datagrams from "from" to srv, read into b. */
static void
received(struct dgbatch *b, int from, int srv, int n)
{
	int i;

	for (i = 0; i < n; i++)
		send_to(from, srv, "x", 1);
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), n);
}

/* The refusals dgbatch_send() reported. */
struct refusals {
	unsigned	n;
	unsigned	slot[DGBATCH_SLOTS];
	int		err[DGBATCH_SLOTS];
};

static void
refused(void *arg, unsigned slot, int err)
{
	struct refusals *r = arg;

	ck_assert_uint_lt(r->n, DGBATCH_SLOTS);
	r->slot[r->n] = slot;
	r->err[r->n++] = err;
}

/* Send the queued replies; *r records the refusals of this send only. */
static void
send_queued(struct dgbatch *b, int fd, struct refusals *r)
{
	r->n = 0;
	dgbatch_send(b, fd, refused, r);
}

/* Reply to slot i with text, n bytes of it (more than text: the rest of
 * the slot, for a reply too long for UDP). */
static void
reply(struct dgbatch *b, unsigned i, const char *text, size_t n)
{
	memset(dgbatch_reply(b, i), '.', dgbatch_reply_cap(b));
	memcpy(dgbatch_reply(b, i), text, strlen(text) + 1);
	dgbatch_queue(b, i, n);
}

START_TEST(test_send_in_order)
{
	int srv = udp(), a = udp(), c = udp();
	struct dgbatch *b = dgbatch_new(8, 32);
	struct refusals r = { 0 };
	int i;

	ck_assert_ptr_nonnull(b);
	for (i = 0; i < 6; i++)
		send_to(i % 2 ? c : a, srv, "x", 1);
	ck_assert_int_eq(dgbatch_recv(b, srv, DGBATCH_SLOTS), 6);
	/* Slot 3 gets no reply (not admitted); the others in slot order. */
	reply(b, 0, "r0", 2);
	reply(b, 1, "r1", 2);
	reply(b, 2, "r2", 2);
	reply(b, 4, "r4", 2);
	reply(b, 5, "r5", 2);
	dgbatch_send(b, srv, refused, &r);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_str_eq(next(a), "r0");
	ck_assert_str_eq(next(a), "r2");
	ck_assert_str_eq(next(a), "r4");
	ck_assert_str_eq(next(c), "r1");
	ck_assert_str_eq(next(c), "r5");
	ck_empty(a);
	ck_empty(c);
	/* Nothing stays queued: a second send sends nothing. */
	dgbatch_send(b, srv, refused, &r);
	ck_assert_uint_eq(r.n, 0);
	ck_empty(a);
	dgbatch_free(b);
	close(srv);
	close(a);
	close(c);
}
END_TEST

/*
 * A reply longer than a UDP datagram can be (EMSGSIZE) in the middle of
 * a batch, at its end, after a slot without a reply, and alone: each is
 * reported with its slot, and every other reply still goes out.
 */
START_TEST(test_send_refused)
{
	int srv = udp(), a = udp();
	struct dgbatch *b = dgbatch_new(8, 70000);
	struct refusals r = { 0 };

	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(dgbatch_slots(b), 3);
	received(b, a, srv, 3);
	reply(b, 0, "first", 5);
	reply(b, 1, "huge", 70000);
	reply(b, 2, "third", 5);
	send_queued(b, srv, &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_uint_eq(r.slot[0], 1);
	ck_assert_int_eq(r.err[0], EMSGSIZE);
	ck_assert_str_eq(next(a), "first");
	ck_assert_str_eq(next(a), "third");
	ck_empty(a);

	/* Refused first and last; then one alone (sendto). */
	received(b, a, srv, 3);
	reply(b, 0, "huge", 70000);
	reply(b, 1, "middle", 6);
	reply(b, 2, "huge", 70000);
	send_queued(b, srv, &r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(r.slot[0], 0);
	ck_assert_uint_eq(r.slot[1], 2);
	ck_assert_int_eq(r.err[0], EMSGSIZE);
	ck_assert_int_eq(r.err[1], EMSGSIZE);
	ck_assert_str_eq(next(a), "middle");
	ck_empty(a);

	/* A slot without a reply before a refused one: the refusal names
	 * the refused reply's slot, not its place in the queue. */
	received(b, a, srv, 3);
	reply(b, 0, "kept", 4);
	reply(b, 2, "huge", 70000);
	send_queued(b, srv, &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_uint_eq(r.slot[0], 2);
	ck_assert_int_eq(r.err[0], EMSGSIZE);
	ck_assert_str_eq(next(a), "kept");
	ck_empty(a);

	received(b, a, srv, 1);
	reply(b, 0, "huge", 70000);
	send_queued(b, srv, &r);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_uint_eq(r.slot[0], 0);
	ck_assert_int_eq(r.err[0], EMSGSIZE);
	ck_empty(a);
	dgbatch_free(b);
	close(srv);
	close(a);
}
END_TEST

static Suite *
dgbatch_suite(void)
{
	Suite	*s = suite_create("dgbatch");
	TCase	*tc = tcase_create("batch");

	tcase_add_test(tc, test_slots);
	tcase_add_test(tc, test_recv_queue);
	tcase_add_test(tc, test_recv_after_shorter_names);
	tcase_add_test(tc, test_send_in_order);
	tcase_add_test(tc, test_send_refused);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dgbatch_suite)
