/*
 * check_mailbox.c - unit tests for the locked list + eventfd hand-over:
 * wake-ups, post order, the reader's loop, many posting threads.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"
#include "mailbox.h"
#include "check_main.h"

struct item {
	int			 n;
	struct mailbox_link	 link;
};

static bool
readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

START_TEST(test_post_take_order)
{
	struct mailbox mb;
	struct item it[5];
	struct mailbox_link *m;
	int i;

	ck_assert_int_eq(mailbox_init(&mb), 0);
	ck_assert_ptr_null(mailbox_take(&mb));
	ck_assert(!readable(mb.fd));
	for (i = 0; i < 5; i++) {
		it[i].n = i;
		/* Only the first post since the last take wakes the reader. */
		ck_assert(mailbox_post(&mb, &it[i].link) == (i == 0));
	}
	ck_assert(readable(mb.fd));
	m = mailbox_take(&mb);
	ck_assert(!readable(mb.fd));
	for (i = 0; i < 5; i++, m = m->next) {
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(mailbox_item(m, struct item, link)->n, i);
	}
	ck_assert_ptr_null(m);
	ck_assert_ptr_null(mailbox_take(&mb));
	/* Empty again: the next post wakes again. */
	ck_assert(mailbox_post(&mb, &it[0].link));
	ck_assert_ptr_eq(mailbox_take(&mb), &it[0].link);
	mailbox_fini(&mb);
	mailbox_fini(&mb);		/* twice is fine */
}
END_TEST

struct reader {
	struct mailbox	 mb;
	int		 got;
	int		 sum;
	int		 calls;
};

static void
reader_cb(struct loop_io *io, uint32_t revents)
{
	struct reader *r = io->data;
	struct mailbox_link *m;

	r->calls++;
	for (m = mailbox_take(&r->mb); m; m = m->next) {
		r->got++;
		r->sum += mailbox_item(m, struct item, link)->n;
	}
}

#define WRITERS	4
#define PER	2000

struct writer {
	struct reader	*r;
	struct item	 items[PER];
};

static void *
write_all(void *arg)
{
	struct writer *w = arg;
	int i;

	for (i = 0; i < PER; i++) {
		w->items[i].n = 1;
		mailbox_post(&w->r->mb, &w->items[i].link);
	}
	return NULL;
}

static void
noop_due(struct loop_timer *t, uint64_t now)
{
	(void)t;
	(void)now;
}

/* Threads post, the reader's loop takes: every item exactly once. */
START_TEST(test_threads_to_loop)
{
	static struct writer w[WRITERS];
	struct reader r = { .got = 0 };
	struct loop *lp = loop_new(4);
	struct loop_timer guard;
	pthread_t tid[WRITERS];
	uint64_t deadline;
	int i;

	ck_assert_ptr_nonnull(lp);
	ck_assert_int_eq(mailbox_init(&r.mb), 0);
	ck_assert_int_eq(mailbox_watch(&r.mb, lp, reader_cb, &r), 0);
	loop_timer_add(lp, &guard, noop_due, NULL);
	for (i = 0; i < WRITERS; i++) {
		w[i].r = &r;
		ck_assert_int_eq(pthread_create(&tid[i], NULL, write_all,
		    &w[i]), 0);
	}
	deadline = clock_ms() + 10000;
	while (r.got < WRITERS * PER && clock_ms() < deadline) {
		loop_timer_set(&guard, clock_ms() + 100);
		ck_assert_int_ge(loop_once(lp), 0);
	}
	for (i = 0; i < WRITERS; i++)
		pthread_join(tid[i], NULL);
	ck_assert_int_eq(r.got, WRITERS * PER);
	ck_assert_int_eq(r.sum, WRITERS * PER);
	ck_assert_int_ge(r.calls, 1);
	/* Nothing left, and no wake-up left behind. */
	ck_assert(!readable(r.mb.fd));
	mailbox_unwatch(&r.mb, lp);
	mailbox_fini(&r.mb);
	loop_free(lp);
}
END_TEST

static Suite *
mailbox_suite(void)
{
	Suite	*s = suite_create("mailbox");
	TCase	*tc = tcase_create("mailbox");

	tcase_add_test(tc, test_post_take_order);
	tcase_add_test(tc, test_threads_to_loop);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(mailbox_suite)
