/*
 * check_conn.c - unit tests of what conn.c does without sockets: the copy
 * of a conn a fork child runs on, and conns from memory a child does not
 * inherit.
 */
#include <check.h>
#include <signal.h>
#include <string.h>

#include "conn.h"
#include "loop.h"
#include "check_main.h"

/*
 * The child's copy keeps what its session needs and points at nothing of
 * the parent's set; its session's peer name is its own.
 */
START_TEST(test_child_copy)
{
	static struct conn c, other, dst;
	struct stats st;
	struct conns cs;

	memset(&c, 0, sizeof(c));
	c.set = &cs;
	c.stats = &st;
	c.fd = 7;
	c.stats_slot = 3;
	strcpy(c.peerstr, "192.0.2.1:5000");
	c.sess.peer = c.peerstr;
	c.sess.lines = 12;
	c.prev = c.next = &other;
	c.ev.prev = c.ev.next = &other;
	c.ev.io.data = &c;
	c.mail.next = &other.mail;
	c.thread.running = true;
	conn_child_copy(&dst, &c);
	ck_assert_ptr_null(dst.set);
	ck_assert_ptr_eq(dst.stats, &st);
	ck_assert_int_eq(dst.fd, 7);
	ck_assert_int_eq(dst.stats_slot, 3);
	ck_assert_uint_eq(dst.sess.lines, 12);
	ck_assert_str_eq(dst.sess.peer, "192.0.2.1:5000");
	ck_assert_ptr_eq(dst.sess.peer, dst.peerstr);
	ck_assert_ptr_null(dst.prev);
	ck_assert_ptr_null(dst.next);
	ck_assert_ptr_null(dst.ev.prev);
	ck_assert_ptr_null(dst.ev.next);
	ck_assert_ptr_null(dst.ev.io.data);
	ck_assert_ptr_null(dst.mail.next);
	ck_assert(!dst.thread.running);
	/* A peer name elsewhere (a PROXY client's, say) is left alone. */
	c.sess.peer = "elsewhere";
	conn_child_copy(&dst, &c);
	ck_assert_str_eq(dst.sess.peer, "elsewhere");
}
END_TEST

static int
read_conn(const void *arg)
{
	return ((const struct conn *)arg)->fd == -1 ? 0 : 1;
}

static int
read_set(const void *arg)
{
	return ((const struct conns *)arg)->n == 1 ? 0 : 1;
}

static int
count_in_slot_1(const void *arg)
{
	((const struct stats *)arg)->conns[1] = 42;
	return 0;
}

/*
 * The conns and their set are not mapped in a fork child; the slots'
 * counts of conns are shared with it (so a fork never copies them).
 */
START_TEST(test_conns_not_inherited)
{
	struct stats st;
	struct loop *lp = loop_new(8);
	struct conns *cs;
	struct conn *c;

	ck_assert_ptr_nonnull(lp);
	ck_assert_int_eq(stats_init(&st), 0);
	cs = conns_new(&st, lp, NULL, NULL);
	ck_assert_ptr_nonnull(cs);
	c = conn_new(cs, 0, "tcp", "test", 100, 0);
	ck_assert_ptr_nonnull(c);
	conns_add(cs, c);
	ck_assert_uint_eq(cs->n, 1);
	ck_assert_uint_eq(st.conns[0], 1);
	ck_assert_int_eq(check_in_child(read_conn, c), SIGSEGV);
	ck_assert_int_eq(check_in_child(read_set, cs), SIGSEGV);
	ck_assert_int_eq(check_in_child(count_in_slot_1, &st), 256);
	ck_assert_uint_eq(st.conns[1], 42);
	st.conns[1] = 0;
	conns_remove(cs, c);
	conn_free(c);
	ck_assert_uint_eq(st.conns[0], 0);
	conns_delete(cs, lp);
	stats_fini(&st);
	loop_free(lp);
}
END_TEST

static Suite *
conn_suite(void)
{
	Suite	*s = suite_create("conn");
	TCase	*tc = tcase_create("conn");

	tcase_add_test(tc, test_child_copy);
	tcase_add_test(tc, test_conns_not_inherited);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(conn_suite)
