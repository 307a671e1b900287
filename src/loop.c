/*
 * loop.c - an epoll loop with callbacks and timers (see loop.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

/*
 * The timers wake the loop through one timerfd, armed no later than the
 * earliest of them: a wait has no timeout to set up and a round reads no
 * clock unless the timerfd fired.  Its epoll tag is the loop itself.
 * It is re-armed only for a deadline earlier than the one it holds; one
 * that moved later, or a timer disarmed, costs at most one early wake-up
 * that finds nothing due.
 */
struct loop {
	int		 epfd;
	int		 tfd;		/* the timers' timerfd */
	uint64_t	 tfd_ms;	/* what it is armed for, 0 = nothing */
	int		 batch;
	struct epoll_event *evs;
	int		 nevs;		/* events of the batch being handled */
	int		 cur;		/* the one whose callback runs */
	struct loop_timer *timers;
	int		 busy_us;
	bool		 active;	/* the last wait returned events */
};

struct loop *
loop_new(int batch)
{
	struct loop *lp = calloc(1, sizeof(*lp));
	int e;

	if (!lp)
		return NULL;
	lp->batch = batch > 0 ? batch : 1;
	lp->epfd = lp->tfd = -1;
	if (!(lp->evs = calloc((size_t)lp->batch, sizeof(*lp->evs))) ||
	    (lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (lp->tfd = timerfd_create(CLOCK_MONOTONIC,
	    TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->tfd, &(struct epoll_event){
	    .events = EPOLLIN, .data.ptr = lp }) < 0) {
		e = errno;
		loop_free(lp);
		errno = e;
		return NULL;
	}
	return lp;
}

void
loop_free(struct loop *lp)
{
	if (!lp)
		return;
	if (lp->tfd >= 0)
		close(lp->tfd);
	if (lp->epfd >= 0)
		close(lp->epfd);
	free(lp->evs);
	free(lp);
}

void
loop_child_fds(const struct loop *lp, struct fdlist *l)
{
	fdlist_add(l, lp->tfd);
	fdlist_add(l, lp->epfd);
}

int
loop_add(struct loop *lp, struct loop_io *io, int fd, uint32_t events,
    loop_io_fn *cb, void *data)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->cb = cb;
	io->data = data;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	io->events = events;
	io->added = true;
	return 0;
}

int
loop_mod(struct loop *lp, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (events == io->events)
		return 0;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

void
loop_del(struct loop *lp, struct loop_io *io)
{
	int i;

	if (!io->added)
		return;
	(void)epoll_ctl(lp->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->added = false;
	io->events = 0;
	/* Its owner may free it now: forget its events not yet handled. */
	for (i = lp->cur + 1; i < lp->nevs; i++)
		if (lp->evs[i].data.ptr == io)
			lp->evs[i].data.ptr = NULL;
}

void
loop_timer_add(struct loop *lp, struct loop_timer *t, loop_timer_fn *cb,
    void *data)
{
	struct loop_timer **pp;

	t->when_ms = 0;
	t->cb = cb;
	t->data = data;
	t->next = NULL;
	/* In order of registration: due timers run in that order. */
	for (pp = &lp->timers; *pp; pp = &(*pp)->next)
		;
	*pp = t;
}

void
loop_timer_set(struct loop_timer *t, uint64_t when_ms)
{
	t->when_ms = when_ms;
}

void
loop_busy_poll(struct loop *lp, int us)
{
	lp->busy_us = us > 0 ? us : 0;
}

/* The earliest armed timer's deadline; 0 for none. */
static uint64_t
earliest(const struct loop *lp)
{
	const struct loop_timer *t;
	uint64_t first = 0;

	for (t = lp->timers; t; t = t->next)
		if (t->when_ms && (first == 0 || t->when_ms < first))
			first = t->when_ms;
	return first;
}

/*
 * Arm the timerfd for the earliest timer if it would fire too late (see
 * struct loop), and return the wait's timeout: -1, as the timerfd wakes
 * the loop.  Should arming it fail, the wait times out at the deadline
 * instead (milliseconds from now).
 */
static int
arm_timers(struct loop *lp)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	uint64_t first = earliest(lp), now;

	if (first == 0 || (lp->tfd_ms && lp->tfd_ms <= first))
		return -1;
	its.it_value.tv_sec = (time_t)(first / 1000u);
	its.it_value.tv_nsec = (long)(first % 1000u) * 1000000L;
	if (timerfd_settime(lp->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
		lp->tfd_ms = first;
		return -1;
	}
	now = clock_ms();
	if (first <= now)
		return 0;
	return first - now > INT_MAX ? INT_MAX : (int)(first - now);
}

/*
 * epoll_wait().  With busy polling on, a wait that follows activity first
 * polls without sleeping for up to busy_us microseconds (like HAProxy's
 * busy-polling, but bounded): a CPU that halts between two events is slow
 * to wake on a virtual machine whose host has guest halt polling off, and
 * every connection then pays for that wake.  An idle loop still sleeps.
 */
static int
wait_events(struct loop *lp, int timeout)
{
	uint64_t start, now, until, spent_ms;
	int n;

	if (lp->busy_us == 0 || !lp->active || timeout == 0)
		return epoll_wait(lp->epfd, lp->evs, lp->batch, timeout);
	/* Polling never delays a timer. */
	start = clock_ns();
	until = start + (uint64_t)lp->busy_us * 1000u;
	if (timeout > 0 && start + (uint64_t)timeout * 1000000u < until)
		until = start + (uint64_t)timeout * 1000000u;
	do {
		if ((n = epoll_wait(lp->epfd, lp->evs, lp->batch, 0)) != 0)
			return n;
	} while ((now = clock_ns()) < until);
	if (timeout > 0) {
		spent_ms = (now - start) / 1000000u;
		timeout = spent_ms >= (uint64_t)timeout ? 0 :
		    timeout - (int)spent_ms;
	}
	return epoll_wait(lp->epfd, lp->evs, lp->batch, timeout);
}

static void
run_timers(struct loop *lp)
{
	uint64_t now = clock_ms();
	struct loop_timer *t;

	for (t = lp->timers; t; t = t->next)
		if (t->when_ms && now >= t->when_ms) {
			t->when_ms = 0;
			t->cb(t, now);
		}
}

int
loop_once(struct loop *lp)
{
	bool fired = false;
	struct loop_io *io;
	uint64_t ticks;
	void *tag;
	int n, nio = 0, timeout, e;

	timeout = arm_timers(lp);
	n = wait_events(lp, timeout);
	if (n < 0) {
		e = errno;
		lp->active = false;
		if (e != EINTR)
			return -e;
		n = 0;
	}
	lp->nevs = n;
	for (lp->cur = 0; lp->cur < n; lp->cur++) {
		if ((tag = lp->evs[lp->cur].data.ptr) == lp) {
			fired = true;
			continue;
		}
		nio++;
		if ((io = tag) != NULL)
			io->cb(io, lp->evs[lp->cur].events);
	}
	lp->nevs = 0;
	lp->cur = 0;
	lp->active = nio > 0;
	if (fired) {
		/* Read, or it stays readable; it is a one-shot. */
		(void)!read(lp->tfd, &ticks, sizeof(ticks));
		lp->tfd_ms = 0;
	}
	if (fired || timeout >= 0)
		run_timers(lp);
	return nio;
}
