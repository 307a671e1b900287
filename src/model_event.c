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
#include <sys/prctl.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "model.h"
#include "server.h"

#define LOOP_BATCH	64	/* epoll events per wake-up */
#define TICK_MS		1000	/* idle timeouts and lingering closes */

struct evloop {
	struct loop	*loop;
	struct mailbox	 inbox;		/* handed over, not started */
	struct conn	*conns;		/* this loop's sessions */
	struct loop_io	 stop;		/* the server's stop fd, one shot */
	bool		 stopped;	/* it fired */
	struct loop_timer tick;		/* armed while sessions run */
	struct server	*srv;
};

/* Written by the server's thread only, before a loop sees them. */
static struct evloop	*loops[MAX_WORKERS];
static unsigned		 nloops;
static unsigned		 next_loop;

static void	conn_ready(struct loop_io *io, uint32_t events);

static void
list_remove(struct evloop *lp, struct conn *c)
{
	if (c->ev.prev)
		c->ev.prev->ev.next = c->ev.next;
	else
		lp->conns = c->ev.next;
	if (c->ev.next)
		c->ev.next->ev.prev = c->ev.prev;
	/* A loop without sessions has no timers: it sleeps. */
	if (!lp->conns)
		loop_timer_set(&lp->tick, 0);
}

/* After the session of c moved: done, or new epoll wishes. */
static void
update(struct evloop *lp, struct conn *c)
{
	uint32_t ev;
	int r;

	if (c->sess.state == SS_DONE) {
		loop_del(lp->loop, &c->ev.io);
		list_remove(lp, c);
		conn_ended(c);
		conns_done(c->set, c);
		return;
	}
	ev = session_epoll_events(&c->sess);
	r = c->ev.io.added ? loop_mod(lp->loop, &c->ev.io, ev) :
	    loop_add(lp->loop, &c->ev.io, c->fd, ev, conn_ready, lp);
	if (r < 0) {
		/* Cannot watch it: end it rather than forget it. */
		c->sess.state = SS_DONE;
		c->sess.end = SESSION_NOMEM;
		update(lp, c);
	}
}

static void
conn_ready(struct loop_io *io, uint32_t events)
{
	struct conn *c = (struct conn *)(void *)((char *)io -
	    offsetof(struct conn, ev.io));

	session_io_epoll(&c->sess, events);
	update(io->data, c);
}

/* Start the sessions handed over since the last wake-up. */
static void
inbox_ready(struct loop_io *io, uint32_t revents)
{
	struct evloop *lp = io->data;
	struct mailbox_link *m, *next;
	struct conn *c;

	for (m = mailbox_take(&lp->inbox); m; m = next) {
		next = m->next;
		c = mailbox_item(m, struct conn, mail);
		c->ev.prev = NULL;
		c->ev.next = lp->conns;
		if (lp->conns)
			lp->conns->ev.prev = c;
		else
			loop_timer_set(&lp->tick, clock_ms() + TICK_MS);
		lp->conns = c;
		c->ev.io.added = false;
		/* The first line usually arrived with the connection. */
		if (lp->stopped)
			session_shutdown(&c->sess);
		else
			session_io(&c->sess, POLLIN);
		update(lp, c);
	}
}

/* Apply f to every session of the loop. */
static void
for_each(struct evloop *lp, enum session_state (*f)(struct session *,
    uint64_t), uint64_t arg)
{
	struct conn *c, *next;

	for (c = lp->conns; c; c = next) {
		next = c->ev.next;
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

/* The stop fd is registered EPOLLONESHOT: it stays readable for others. */
static void
stop_ready(struct loop_io *io, uint32_t revents)
{
	struct evloop *lp = io->data;

	lp->stopped = true;
	for_each(lp, shutdown_one, 0);
}

static void
tick_due(struct loop_timer *t, uint64_t now)
{
	struct evloop *lp = t->data;

	for_each(lp, session_tick, now);
	if (lp->conns)
		loop_timer_set(t, now + TICK_MS);
}

static void *
loop_main(void *arg)
{
	struct evloop *lp = arg;

	(void)prctl(PR_SET_NAME, "et-loop");
	for (;;)
		(void)loop_once(lp->loop);
	return NULL;
}

/* Start loop number nloops.  0 or -errno. */
static int
loop_start(struct server *srv)
{
	struct evloop *lp;
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if (!(lp = calloc(1, sizeof(*lp))))
		return -ENOMEM;
	lp->srv = srv;
	lp->inbox.fd = -1;
	if (!(lp->loop = loop_new(LOOP_BATCH))) {
		r = -errno;
		goto fail;
	}
	if ((r = mailbox_init(&lp->inbox)) < 0 ||
	    (r = mailbox_watch(&lp->inbox, lp->loop, inbox_ready, lp)) < 0 ||
	    (r = loop_add(lp->loop, &lp->stop, server_stop_fd(srv),
	    EPOLLIN | EPOLLONESHOT, stop_ready, lp)) < 0)
		goto fail;
	loop_timer_add(lp->loop, &lp->tick, tick_due, lp);
	if ((r = pthread_attr_init(&attr)) != 0) {
		r = -r;
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, server_thread_stack(srv));
	r = -pthread_create(&tid, &attr, loop_main, lp);
	pthread_attr_destroy(&attr);
	if (r < 0)
		goto fail;
	loops[nloops++] = lp;
	return 0;
fail:
	mailbox_fini(&lp->inbox);
	loop_free(lp->loop);
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
	uint64_t now;
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
	c->on_thread = true;
	mailbox_post(&loops[next_loop++]->inbox, &c->mail);
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
		close(loop_fd(loops[i]->loop));
		close(loops[i]->inbox.fd);
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
