/*
 * connloop.c - sessions driven by one event loop (see connloop.h).
 */
#include <poll.h>
#include <stddef.h>

#include "clock.h"
#include "connloop.h"

#define TICK_MS		1000	/* idle timeouts and lingering closes */

static void	update(struct connloop *cl, struct conn *c);

static void
list_add(struct connloop *cl, struct conn *c)
{
	c->ev.prev = NULL;
	c->ev.next = cl->head;
	if (cl->head)
		cl->head->ev.prev = c;
	else
		loop_timer_set(&cl->tick, clock_ms() + TICK_MS);
	cl->head = c;
}

static void
list_remove(struct connloop *cl, struct conn *c)
{
	if (c->ev.prev)
		c->ev.prev->ev.next = c->ev.next;
	else
		cl->head = c->ev.next;
	if (c->ev.next)
		c->ev.next->ev.prev = c->ev.prev;
	/* A loop without sessions has no timers: it sleeps. */
	if (!cl->head)
		loop_timer_set(&cl->tick, 0);
}

static void
ready(struct loop_io *io, uint32_t events)
{
	struct conn *c = (struct conn *)(void *)((char *)io -
	    offsetof(struct conn, ev.io));

	session_io_epoll(&c->sess, events);
	update(io->data, c);
}

/* After the session of c moved: done, or new epoll wishes. */
static void
update(struct connloop *cl, struct conn *c)
{
	uint32_t ev;
	int r;

	if (c->sess.state == SS_DONE) {
		loop_del(cl->loop, &c->ev.io);
		list_remove(cl, c);
		cl->ended(c, cl->arg);
		return;
	}
	ev = session_epoll_events(&c->sess);
	r = c->ev.io.added ? loop_mod(cl->loop, &c->ev.io, ev) :
	    loop_add(cl->loop, &c->ev.io, c->fd, ev, ready, cl);
	if (r < 0) {
		/* Cannot watch it: end it rather than forget it. */
		c->sess.state = SS_DONE;
		c->sess.end = SESSION_NOMEM;
		update(cl, c);
	}
}

/* Apply f to every session of the loop. */
static void
for_each(struct connloop *cl, enum session_state (*f)(struct session *,
    uint64_t), uint64_t arg)
{
	struct conn *c, *next;

	for (c = cl->head; c; c = next) {
		next = c->ev.next;
		f(&c->sess, arg);
		update(cl, c);
	}
}

static enum session_state
shutdown_one(struct session *s, uint64_t unused)
{
	(void)unused;
	return session_shutdown(s);
}

/* The stop fd is watched EPOLLONESHOT: it stays readable for others. */
static void
stop_ready(struct loop_io *io, uint32_t revents)
{
	struct connloop *cl = io->data;

	cl->stopped = true;
	for_each(cl, shutdown_one, 0);
}

static void
tick_due(struct loop_timer *t, uint64_t now)
{
	struct connloop *cl = t->data;

	for_each(cl, session_tick, now);
	if (cl->head)
		loop_timer_set(t, now + TICK_MS);
}

int
connloop_init(struct connloop *cl, struct loop *lp, int stop_fd,
    void (*ended)(struct conn *, void *), void *arg)
{
	cl->loop = lp;
	cl->head = NULL;
	cl->stopped = false;
	cl->ended = ended;
	cl->arg = arg;
	loop_timer_add(lp, &cl->tick, tick_due, cl);
	return loop_add(lp, &cl->stop, stop_fd, EPOLLIN | EPOLLONESHOT,
	    stop_ready, cl);
}

void
connloop_fini(struct connloop *cl)
{
	if (cl->loop)
		loop_del(cl->loop, &cl->stop);
}

void
connloop_start(struct connloop *cl, struct conn *c)
{
	list_add(cl, c);
	c->ev.io.added = false;
	if (cl->stopped)
		session_shutdown(&c->sess);
	else
		session_io(&c->sess, POLLIN);
	update(cl, c);
}
