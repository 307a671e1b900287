/*
 * loop.h - an epoll loop with callbacks, in the spirit of redis's ae.c.
 *
 * The owner of a descriptor embeds a struct loop_io in its own struct
 * (a connection, a listener, the signal fd), so a watch costs no
 * allocation; epoll hands the io back and the loop calls its callback.
 * Deleting an io clears its events still pending in the batch being
 * handled, so a callback may close and free any other watched object.
 * Timers are the few named deadlines an owner registers once and arms or
 * disarms; the loop sleeps until the earliest, woken by a timerfd, so a
 * wait has no timeout and a round reads the clock for its timers only
 * when the timerfd fired (or could not be armed).
 * One thread runs a loop.
 */
#ifndef ECHOTIMED_LOOP_H
#define ECHOTIMED_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "fdlist.h"

struct loop;
struct loop_io;
struct loop_timer;

/* An io's callback: revents as epoll reported them. */
typedef void	loop_io_fn(struct loop_io *io, uint32_t revents);
/* A timer's callback, once it is due; it may arm the timer again. */
typedef void	loop_timer_fn(struct loop_timer *t, uint64_t now_ms);

struct loop_io {
	int		 fd;
	uint32_t	 events;	/* watched for now (0: nothing) */
	bool		 added;		/* registered with the loop */
	loop_io_fn	*cb;
	void		*data;		/* the owner's */
};

struct loop_timer {
	uint64_t	 when_ms;	/* clock_ms() deadline, 0 = disarmed */
	loop_timer_fn	*cb;
	void		*data;		/* the owner's */
	struct loop_timer *next;	/* the loop's timers */
};

/* A loop handling up to batch events per wait; NULL with errno set. */
struct loop	*loop_new(int batch);
/* Free the loop (its ios and timers are the owners'); NULL is fine. */
void		 loop_free(struct loop *lp);
/* Before a fork: the loop's descriptors, for the child to close. */
void		 loop_child_fds(const struct loop *lp, struct fdlist *l);
/* Watch fd for events (0 allowed) and call cb.  0 or -errno. */
int		 loop_add(struct loop *lp, struct loop_io *io, int fd,
		    uint32_t events, loop_io_fn *cb, void *data);
/* Watch an added io for other events (nothing if unchanged). 0 or -errno. */
int		 loop_mod(struct loop *lp, struct loop_io *io, uint32_t events);
/* Stop watching io, before its fd is closed; fine if never added. */
void		 loop_del(struct loop *lp, struct loop_io *io);
/* Register a timer, disarmed.  Timers stay registered for good. */
void		 loop_timer_add(struct loop *lp, struct loop_timer *t,
		    loop_timer_fn *cb, void *data);
/* Arm t for when_ms (clock_ms() time), or disarm it with 0. */
void		 loop_timer_set(struct loop_timer *t, uint64_t when_ms);
/*
 * Busy-poll for up to us microseconds before sleeping, after a wait that
 * saw events (0: never).  See loop_once().
 */
void		 loop_busy_poll(struct loop *lp, int us);
/*
 * One round: wait for events or the earliest timer, call the callbacks of
 * the events, then of the timers that are due.  Returns the number of
 * events (the timers' own not counted), 0 after EINTR, or -errno when
 * epoll_wait fails.
 */
int		 loop_once(struct loop *lp);

#endif
