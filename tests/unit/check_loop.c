/*
 * check_loop.c - unit tests for the epoll loop: watches and their
 * callbacks, the scrubbing of deleted ios, timers (and their timerfd's
 * re-arming), busy polling.
 *
 * Events come from eventfds the tests write; every wait is bounded by an
 * armed timer, so no test can hang on an event that never comes.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"
#include "check_main.h"

/* What the callbacks saw. */
struct probe {
	struct loop	*lp;
	struct loop_io	 io;
	int		 calls;
	uint32_t	 revents;
	struct probe	*victim;	/* deleted by this one's callback */
};

static int order[8];
static int norder;

static int
efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void
poke(int fd)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

static void
drain(int fd)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
}

static void
probe_cb(struct loop_io *io, uint32_t revents)
{
	struct probe *p = io->data;

	p->calls++;
	p->revents = revents;
	drain(io->fd);
	if (p->victim)
		loop_del(p->lp, &p->victim->io);
}

static void
noop_due(struct loop_timer *t, uint64_t now)
{
	(void)t;
	(void)now;
}

/* A timer that bounds the next loop_once() to ms milliseconds. */
static void
bound(struct loop_timer *t, uint64_t ms)
{
	loop_timer_set(t, clock_ms() + ms);
}

START_TEST(test_add_mod_del)
{
	struct loop *lp = loop_new(8);
	struct loop_timer guard;
	struct probe p = { .lp = NULL };
	int fd = efd();

	ck_assert_ptr_nonnull(lp);
	p.lp = lp;
	loop_timer_add(lp, &guard, noop_due, NULL);
	ck_assert_int_eq(loop_add(lp, &p.io, fd, EPOLLIN, probe_cb, &p), 0);
	ck_assert(p.io.added);
	ck_assert_uint_eq(p.io.events, EPOLLIN);
	poke(fd);
	ck_assert_int_eq(loop_once(lp), 1);
	ck_assert_int_eq(p.calls, 1);
	ck_assert(p.revents & EPOLLIN);

	/* Watched for nothing: readable, but no call. */
	ck_assert_int_eq(loop_mod(lp, &p.io, 0), 0);
	ck_assert_uint_eq(p.io.events, 0);
	poke(fd);
	bound(&guard, 20);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(p.calls, 1);

	/* Armed again: the pending event is seen. */
	ck_assert_int_eq(loop_mod(lp, &p.io, EPOLLIN), 0);
	ck_assert_int_eq(loop_mod(lp, &p.io, EPOLLIN), 0);	/* unchanged */
	ck_assert_int_eq(loop_once(lp), 1);
	ck_assert_int_eq(p.calls, 2);

	loop_del(lp, &p.io);
	ck_assert(!p.io.added);
	loop_del(lp, &p.io);		/* twice is fine */
	poke(fd);
	bound(&guard, 20);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(p.calls, 2);
	close(fd);
	loop_free(lp);
	loop_free(NULL);
}
END_TEST

START_TEST(test_add_fails)
{
	struct loop *lp = loop_new(8);
	struct loop_io io = { .added = false };

	ck_assert_int_eq(loop_add(lp, &io, -1, EPOLLIN, probe_cb, NULL),
	    -EBADF);
	ck_assert(!io.added);
	loop_del(lp, &io);		/* never added: nothing to do */
	loop_free(lp);
}
END_TEST

/*
 * Two ready ios in one batch; whichever runs first deletes the other, as
 * a reload closes a listener or a stop frees a session: the other one's
 * callback must not run on what its owner may have freed.
 */
START_TEST(test_del_scrubs_batch)
{
	struct loop *lp = loop_new(8);
	struct probe a = { .lp = lp }, b = { .lp = lp };
	int fa = efd(), fb = efd();

	a.victim = &b;
	b.victim = &a;
	ck_assert_int_eq(loop_add(lp, &a.io, fa, EPOLLIN, probe_cb, &a), 0);
	ck_assert_int_eq(loop_add(lp, &b.io, fb, EPOLLIN, probe_cb, &b), 0);
	poke(fa);
	poke(fb);
	ck_assert_int_eq(loop_once(lp), 2);
	ck_assert_int_eq(a.calls + b.calls, 1);
	ck_assert(!a.io.added || !b.io.added);
	close(fa);
	close(fb);
	loop_free(lp);
}
END_TEST

static void
order_due(struct loop_timer *t, uint64_t now)
{
	(void)now;
	order[norder++] = (int)(intptr_t)t->data;
}

static void
again_due(struct loop_timer *t, uint64_t now)
{
	int *n = t->data;

	if (++*n < 3)
		loop_timer_set(t, now);
}

START_TEST(test_timers)
{
	struct loop *lp = loop_new(8);
	struct loop_timer t1, t2, t3, rep;
	uint64_t now = clock_ms(), t0;
	int n = 0;

	norder = 0;
	loop_timer_add(lp, &t1, order_due, (void *)(intptr_t)1);
	loop_timer_add(lp, &t2, order_due, (void *)(intptr_t)2);
	loop_timer_add(lp, &t3, order_due, (void *)(intptr_t)3);
	loop_timer_add(lp, &rep, again_due, &n);
	ck_assert_uint_eq(t1.when_ms, 0);

	/* Due ones run in registration order, disarmed ones not at all. */
	loop_timer_set(&t3, now);
	loop_timer_set(&t1, now);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(norder, 2);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 3);
	ck_assert_uint_eq(t1.when_ms, 0);	/* one shot */

	/* The wait lasts until the earliest timer, not longer. */
	t0 = clock_ms();
	loop_timer_set(&t2, t0 + 300);
	loop_timer_set(&t1, t0 + 40);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(norder, 3);
	ck_assert_int_eq(order[2], 1);
	ck_assert_uint_ge(clock_ms() - t0, 40);
	ck_assert_uint_lt(clock_ms() - t0, 300);
	loop_timer_set(&t2, 0);

	/* A callback may arm its own timer again. */
	loop_timer_set(&rep, clock_ms());
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(rep.when_ms, 0);
	loop_free(lp);
}
END_TEST

/* Timers t (runs as 1) and u (as 2), and p watching fd, on lp. */
static void
two_timers(struct loop *lp, struct loop_timer *t, struct loop_timer *u,
    struct probe *p, int fd)
{
	norder = 0;
	loop_timer_add(lp, t, order_due, (void *)(intptr_t)1);
	loop_timer_add(lp, u, order_due, (void *)(intptr_t)2);
	ck_assert_int_eq(loop_add(lp, &p->io, fd, EPOLLIN, probe_cb, p), 0);
}

/* t set for when, and the timerfd armed for it by a round that an event
 * on fd ends at once. */
static void
armed_by_a_round(struct loop *lp, struct loop_timer *t, uint64_t when,
    int fd)
{
	loop_timer_set(t, when);
	poke(fd);
	ck_assert_int_eq(loop_once(lp), 1);
}

/* Rounds without events until a timer runs past the first n (at most 5). */
static int
rounds_until_timer(struct loop *lp, int n)
{
	int rounds;

	for (rounds = 0; norder == n && rounds < 5; rounds++)
		ck_assert_int_eq(loop_once(lp), 0);
	return rounds;
}

/*
 * The timers' timerfd is re-armed only for an earlier deadline: a timer
 * moved later, or disarmed, after the loop armed it wakes the loop once
 * early, and nothing runs before its time.
 */
START_TEST(test_timer_moved_later)
{
	struct loop *lp = loop_new(8);
	struct loop_timer t, u;
	struct probe p = { .lp = lp };
	uint64_t t0;
	int fd = efd(), rounds;

	two_timers(lp, &t, &u, &p, fd);
	/* Armed for +30 by a round that an event ends at once... */
	t0 = clock_ms();
	armed_by_a_round(lp, &t, t0 + 30, fd);
	/* ...then moved to +80: it runs at +80, not at +30. */
	loop_timer_set(&t, t0 + 80);
	rounds = rounds_until_timer(lp, 0);
	ck_assert_int_eq(norder, 1);
	ck_assert_int_le(rounds, 2);
	ck_assert_uint_ge(clock_ms() - t0, 80);
	ck_assert_uint_lt(clock_ms() - t0, 2000);

	/* Armed for +30, then disarmed: it never runs; u (+100) does. */
	t0 = clock_ms();
	armed_by_a_round(lp, &t, t0 + 30, fd);
	loop_timer_set(&t, 0);
	loop_timer_set(&u, t0 + 100);
	rounds = rounds_until_timer(lp, 1);
	ck_assert_int_eq(norder, 2);
	ck_assert_int_eq(order[1], 2);
	ck_assert_int_le(rounds, 2);
	ck_assert_uint_ge(clock_ms() - t0, 100);
	close(fd);
	loop_free(lp);
}
END_TEST

/* A timer set earlier than the one the timerfd is armed for re-arms it. */
START_TEST(test_timer_moved_earlier)
{
	struct loop *lp = loop_new(8);
	struct loop_timer t, u;
	struct probe p = { .lp = lp };
	uint64_t t0;
	int fd = efd();

	two_timers(lp, &t, &u, &p, fd);
	/* The timerfd armed for +1500 by a round that an event ends... */
	t0 = clock_ms();
	armed_by_a_round(lp, &t, t0 + 1500, fd);
	/* ...then u set for +30: the wait ends for u, not at +1500. */
	loop_timer_set(&u, t0 + 30);
	(void)rounds_until_timer(lp, 0);
	ck_assert_int_eq(norder, 1);
	ck_assert_int_eq(order[0], 2);
	ck_assert_uint_ge(clock_ms() - t0, 30);
	ck_assert_uint_lt(clock_ms() - t0, 1000);
	loop_timer_set(&t, 0);
	close(fd);
	loop_free(lp);
}
END_TEST

struct delayed {
	int		 fd;
	unsigned	 ms;
};

static void *
poke_later(void *arg)
{
	struct delayed *d = arg;
	struct timespec ts = { 0, (long)d->ms * 1000000L };

	nanosleep(&ts, NULL);
	poke(d->fd);
	return NULL;
}

/*
 * With busy polling, a loop that just saw events polls instead of
 * sleeping: an event that comes meanwhile returns at once, not when
 * the polling time is over.
 */
START_TEST(test_busy_poll_returns_on_event)
{
	struct loop *lp = loop_new(8);
	struct loop_timer guard;
	struct probe p = { .lp = lp };
	struct delayed d;
	pthread_t tid;
	uint64_t t0;

	loop_timer_add(lp, &guard, noop_due, NULL);
	d.fd = efd();
	d.ms = 30;
	ck_assert_int_eq(loop_add(lp, &p.io, d.fd, EPOLLIN, probe_cb, &p), 0);
	loop_busy_poll(lp, 5 * 1000 * 1000);	/* 5 s */
	poke(d.fd);
	ck_assert_int_eq(loop_once(lp), 1);	/* now active */
	bound(&guard, 10000);
	ck_assert_int_eq(pthread_create(&tid, NULL, poke_later, &d), 0);
	t0 = clock_ms();
	ck_assert_int_eq(loop_once(lp), 1);
	ck_assert_uint_lt(clock_ms() - t0, 2000);
	ck_assert_int_eq(p.calls, 2);
	pthread_join(tid, NULL);
	close(d.fd);
	loop_free(lp);
}
END_TEST

/* Polling never delays a timer: it stops when the earliest is due. */
START_TEST(test_busy_poll_keeps_timers)
{
	struct loop *lp = loop_new(8);
	struct loop_timer t;
	struct probe p = { .lp = lp };
	uint64_t t0;
	int fd = efd();

	norder = 0;
	loop_timer_add(lp, &t, order_due, (void *)(intptr_t)7);
	ck_assert_int_eq(loop_add(lp, &p.io, fd, EPOLLIN, probe_cb, &p), 0);
	loop_busy_poll(lp, 5 * 1000 * 1000);
	poke(fd);
	ck_assert_int_eq(loop_once(lp), 1);
	t0 = clock_ms();
	loop_timer_set(&t, t0 + 50);
	ck_assert_int_eq(loop_once(lp), 0);
	ck_assert_int_eq(norder, 1);
	ck_assert_uint_ge(clock_ms() - t0, 50);
	ck_assert_uint_lt(clock_ms() - t0, 2000);
	close(fd);
	loop_free(lp);
}
END_TEST

static Suite *
loop_suite(void)
{
	Suite	*s = suite_create("loop");
	TCase	*tc = tcase_create("io");

	tcase_add_test(tc, test_add_mod_del);
	tcase_add_test(tc, test_add_fails);
	tcase_add_test(tc, test_del_scrubs_batch);
	suite_add_tcase(s, tc);

	tc = tcase_create("timers");
	tcase_add_test(tc, test_timers);
	tcase_add_test(tc, test_timer_moved_later);
	tcase_add_test(tc, test_timer_moved_earlier);
	tcase_add_test(tc, test_busy_poll_returns_on_event);
	tcase_add_test(tc, test_busy_poll_keeps_timers);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(loop_suite)
