/*
 * loop.c - an epoll loop with callbacks and timers (see loop.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

struct loop {
	int		 epfd;
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
	if (!(lp->evs = calloc((size_t)lp->batch, sizeof(*lp->evs))) ||
	    (lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		e = errno;
		free(lp->evs);
		free(lp);
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
	close(lp->epfd);
	free(lp->evs);
	free(lp);
}

int
loop_fd(const struct loop *lp)
{
	return lp->epfd;
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

/* Milliseconds until the earliest armed timer; -1 for none. */
static int
next_timeout(const struct loop *lp, uint64_t now)
{
	const struct loop_timer *t;
	uint64_t first = 0;

	for (t = lp->timers; t; t = t->next)
		if (t->when_ms && (first == 0 || t->when_ms < first))
			first = t->when_ms;
	if (first == 0)
		return -1;
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
	struct loop_io *io;
	int n, e;

	n = wait_events(lp, next_timeout(lp, clock_ms()));
	if (n < 0) {
		e = errno;
		lp->active = false;
		if (e != EINTR)
			return -e;
		n = 0;
	}
	lp->active = n > 0;
	lp->nevs = n;
	for (lp->cur = 0; lp->cur < n; lp->cur++)
		if ((io = lp->evs[lp->cur].data.ptr) != NULL)
			io->cb(io, lp->evs[lp->cur].events);
	lp->nevs = 0;
	lp->cur = 0;
	run_timers(lp);
	return n;
}
