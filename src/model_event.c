/*
 * model_event.c - sessions served non-blocking by event loops, up to
 * max_connections at once.  No thread or process per client: an idle
 * session costs a struct conn and its socket, no buffers.
 *
 * With workers = 1 (the default) every session runs in the server's own
 * loop.  With workers = N the server's loop still accepts and applies every
 * check, then hands each connection to one of N loop threads ("et-loop"),
 * in turn; a loop drives its sessions with its own epoll instance and hands
 * each finished one back through the done queue, as a session thread does.
 * Loops are started when first needed.  A reload that lowers workers stops
 * handing connections to the loops beyond the new count; those finish
 * their sessions and then wait, idle, until a later reload raises the
 * count again.  Datagrams are answered in the server's loop.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "model.h"
#include "server.h"

#define LOOP_BATCH	64	/* epoll events per wake-up */

struct loop {
	int		 epfd;
	int		 wakefd;	/* eventfd: the inbox has conns */
	pthread_mutex_t	 lock;
	struct conn	*inbox;		/* handed over, not started (lnext) */
	struct conn	*conns;		/* this loop's sessions */
	int		 stopfd;	/* the server's; -1 once it fired */
	struct server	*srv;
};

/* Written by the server's thread only, before a loop sees them. */
static struct loop	*loops[MAX_WORKERS];
static unsigned		 nloops;
static unsigned		 next_loop;

/* Marks for epoll data: conn pointers are never these. */
static char		 mark_wake, mark_stop;

static void
list_remove(struct loop *lp, struct conn *c)
{
	if (c->lprev)
		c->lprev->lnext = c->lnext;
	else
		lp->conns = c->lnext;
	if (c->lnext)
		c->lnext->lprev = c->lprev;
}

/* After the session of c moved: done, or new epoll wishes. */
static void
update(struct loop *lp, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->sess.state == SS_DONE) {
		if (c->events)
			epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		list_remove(lp, c);
		server_log_end(lp->srv, c);
		server_conn_done(lp->srv, c);
		return;
	}
	ev.events = session_epoll_events(&c->sess);
	if (ev.events == c->events)
		return;
	if (epoll_ctl(lp->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    c->fd, &ev) < 0) {
		/* Cannot watch it: end it rather than forget it. */
		c->sess.state = SS_DONE;
		c->sess.end = SESSION_NOMEM;
		update(lp, c);
		return;
	}
	c->events = ev.events;
}

/* Start the sessions handed over since the last wake-up. */
static void
take_inbox(struct loop *lp)
{
	struct conn *c, *next, *first;
	uint64_t v;

	/* Read before taking the list, so no wake-up can be lost. */
	(void)!read(lp->wakefd, &v, sizeof(v));
	pthread_mutex_lock(&lp->lock);
	c = lp->inbox;
	lp->inbox = NULL;
	pthread_mutex_unlock(&lp->lock);
	/* The inbox is a stack: start the sessions in accept order. */
	for (first = NULL; c; c = next) {
		next = c->lnext;
		c->lnext = first;
		first = c;
	}
	for (c = first; c; c = next) {
		next = c->lnext;
		c->lprev = NULL;
		c->lnext = lp->conns;
		if (lp->conns)
			lp->conns->lprev = c;
		lp->conns = c;
		c->events = 0;
		/* The first line usually arrived with the connection. */
		if (lp->stopfd < 0)
			session_shutdown(&c->sess);
		else
			session_io(&c->sess, POLLIN);
		update(lp, c);
	}
}

/* Apply f to every session of the loop. */
static void
for_each(struct loop *lp, enum session_state (*f)(struct session *, uint64_t),
    uint64_t arg)
{
	struct conn *c, *next;

	for (c = lp->conns; c; c = next) {
		next = c->lnext;
		f(&c->sess, arg);
		update(lp, c);
	}
}

static enum session_state
shutdown_one(struct session *s, uint64_t unused)
{
	(void)unused;
	return session_shutdown(s);
}

static void *
loop_main(void *arg)
{
	struct loop *lp = arg;
	struct epoll_event evs[LOOP_BATCH];
	uint64_t now, next_tick;
	struct conn *c;
	bool stop;
	int n, i;

	(void)prctl(PR_SET_NAME, "et-loop");
	next_tick = clock_ms() + 1000;
	for (;;) {
		/* A loop without sessions has no timers: it sleeps. */
		now = clock_ms();
		n = epoll_wait(lp->epfd, evs, LOOP_BATCH, !lp->conns ? -1 :
		    next_tick > now ? (int)(next_tick - now) : 0);
		stop = false;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &mark_wake) {
				take_inbox(lp);
				continue;
			}
			if (evs[i].data.ptr == &mark_stop) {
				stop = true;
				continue;
			}
			c = evs[i].data.ptr;
			session_io_epoll(&c->sess, evs[i].events);
			update(lp, c);
		}
		/*
		 * After the batch, which may hold events of the sessions this
		 * ends (the server frees finished conns).  The stop fd is
		 * registered EPOLLONESHOT: it stays readable for other loops.
		 */
		if (stop) {
			lp->stopfd = -1;
			for_each(lp, shutdown_one, 0);
		}
		now = clock_ms();
		if (now >= next_tick) {
			for_each(lp, session_tick, now);
			next_tick = now + 1000;
		}
	}
	return NULL;
}

/* Start loop number nloops.  0 or -errno. */
static int
loop_start(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct loop *lp;
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if (!(lp = calloc(1, sizeof(*lp))))
		return -ENOMEM;
	lp->srv = srv;
	lp->stopfd = server_stop_fd(srv);
	lp->wakefd = -1;
	pthread_mutex_init(&lp->lock, NULL);
	if ((lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (lp->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		goto fail;
	ev.data.ptr = &mark_wake;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wakefd, &ev) < 0)
		goto fail;
	ev.data.ptr = &mark_stop;
	ev.events = EPOLLIN | EPOLLONESHOT;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->stopfd, &ev) < 0)
		goto fail;
	if ((r = pthread_attr_init(&attr)) != 0) {
		errno = r;
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, server_thread_stack(srv));
	r = pthread_create(&tid, &attr, loop_main, lp);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		errno = r;
		goto fail;
	}
	loops[nloops++] = lp;
	return 0;
fail:
	r = -errno;
	if (lp->wakefd >= 0)
		close(lp->wakefd);
	if (lp->epfd >= 0)
		close(lp->epfd);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
	return r;
}

/*
 * Hand c to the next of the first `workers` loops, starting it if needed.
 * c->in_loop stays false: the server's loop must not drive, tick or stop
 * it, exactly as for a session thread.
 */
static int
hand_over(struct server *srv, struct conn *c, unsigned workers)
{
	static uint64_t logged_ms;
	struct loop *lp;
	uint64_t one = 1, now;
	bool wake;
	int r;

	if (next_loop >= workers)
		next_loop = 0;
	if (next_loop >= nloops && (r = loop_start(srv)) < 0) {
		/* Serve it all the same: in a running loop, or the server's. */
		now = clock_ms();
		if (logged_ms == 0 || now - logged_ms >= 10000) {
			log_msg(LOG_WARNING, "cannot start event loop %u of %u: "
			    "%s; serving in %s", nloops + 1, workers,
			    strerror(-r), nloops ? "the loops running" :
			    "the main loop");
			logged_ms = now;
		}
		if (nloops == 0)
			return server_watch(srv, c);
		next_loop = 0;
	}
	lp = loops[next_loop++];
	/* Only the first conn since the loop's last look wakes it. */
	pthread_mutex_lock(&lp->lock);
	wake = lp->inbox == NULL;
	c->lnext = lp->inbox;
	lp->inbox = c;
	pthread_mutex_unlock(&lp->lock);
	if (wake)
		(void)!write(lp->wakefd, &one, sizeof(one));
	return 0;
}

static int
event_stream(struct server *srv, struct conn *c)
{
	unsigned workers = server_workers(srv);

	if (workers <= 1)
		return server_watch(srv, c);
	return hand_over(srv, c, workers);
}

static int
event_dgram(struct server *srv, struct conn *c)
{
	server_answer_dgram(srv, c);
	return 0;
}

/* In a forked child: the loops' descriptors are the parent's. */
static void
event_child_cleanup(void)
{
	unsigned i;

	for (i = 0; i < nloops; i++) {
		close(loops[i]->epfd);
		close(loops[i]->wakefd);
	}
}

const struct model_ops model_event = {
	.id = MODEL_EVENT,
	.in_loop = true,
	.stream = event_stream,
	.dgram = event_dgram,
	.child_cleanup = event_child_cleanup,
};

const struct model_ops *
model_get(enum model m)
{
	switch (m) {
	case MODEL_SEQUENTIAL:	return &model_sequential;
	case MODEL_FORK:	return &model_fork;
	case MODEL_THREAD:	return &model_thread;
	case MODEL_EVENT:	return &model_event;
	}
	return &model_thread;
}

void
model_child_cleanup(void)
{
	static const struct model_ops *const all[] = {
		&model_sequential, &model_fork, &model_thread, &model_event
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->child_cleanup)
			all[i]->child_cleanup();
}
