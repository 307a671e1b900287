/*
 * model_event.c - sessions served non-blocking by event loops, up to
 * max_connections at once.  No thread or process per client: an idle
 * session costs a struct conn and its socket, no buffers.
 *
 * With workers = 1 (the default) every session runs in the main loop.
 * With workers = N the main loop still accepts and applies every check,
 * then hands each connection to one of N loop threads ("et-loop"), in
 * turn; a loop thread drives its sessions with a loop of its own
 * (connloop.c) and hands each finished one back through the done queue,
 * as a session thread does.  Loops are started when first needed.  A
 * reload that lowers workers stops handing connections to the loops
 * beyond the new count; those finish their sessions and then wait, idle,
 * until a later reload raises the count again.  Datagrams are answered in
 * the main loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "clock.h"
#include "connloop.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "model.h"
#include "timecache.h"

#define LOOP_BATCH	64	/* epoll events per wake-up */

/* A loop thread. */
struct evloop {
	struct loop	*loop;
	struct connloop	 cl;		/* its sessions */
	struct mailbox	 inbox;		/* handed over, not started */
};

/* Written by the main thread only, before a loop sees them. */
static struct evloop	*loops[MAX_WORKERS];
static unsigned		 nloops;
static unsigned		 next_loop;

/* A loop thread's session ended: back to the main loop, as a thread's. */
static void
ended(struct conn *c, void *arg)
{
	conn_ended(c);
	conns_done(c->set, c);
}

/* Start the sessions handed over since the last wake-up, in that order. */
static void
inbox_ready(struct loop_io *io, uint32_t revents)
{
	struct evloop *lp = io->data;
	struct mailbox_link *m, *next;

	for (m = mailbox_take(&lp->inbox); m; m = next) {
		next = m->next;
		connloop_start(&lp->cl, mailbox_item(m, struct conn, mail));
	}
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
loop_start(const struct model_env *env)
{
	struct evloop *lp;
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if (!(lp = calloc(1, sizeof(*lp))))
		return -ENOMEM;
	lp->inbox.fd = -1;
	if (!(lp->loop = loop_new(LOOP_BATCH))) {
		r = -errno;
		goto fail;
	}
	if ((r = mailbox_init(&lp->inbox)) < 0 ||
	    (r = mailbox_watch(&lp->inbox, lp->loop, inbox_ready, lp)) < 0 ||
	    (r = connloop_init(&lp->cl, lp->loop, env->conns->stop_fd, ended,
	    lp)) < 0)
		goto fail;
	if ((r = pthread_attr_init(&attr)) != 0) {
		r = -r;
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, env->thread_stack);
	log_before_threads();		/* fork() takes their locks now */
	timecache_before_threads();
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
 * c is then the loop thread's, as a session thread's: the main loop does
 * not drive, tick or stop it.
 */
static int
hand_over(const struct model_env *env, struct conn *c)
{
	static uint64_t logged_ms;
	uint64_t now;
	int r;

	if (next_loop >= env->workers)
		next_loop = 0;
	if (next_loop >= nloops && (r = loop_start(env)) < 0) {
		/* Serve it all the same: in a running loop, or the main one. */
		now = clock_ms();
		if (logged_ms == 0 || now - logged_ms >= 10000) {
			log_msg(LOG_WARNING, "cannot start event loop %u of %u: "
			    "%s; serving in %s", nloops + 1, env->workers,
			    strerror(-r), nloops ? "the loops running" :
			    "the main loop");
			logged_ms = now;
		}
		if (nloops == 0) {
			connloop_start(env->main, c);
			return 0;
		}
		next_loop = 0;
	}
	c->on_thread = true;
	mailbox_post(&loops[next_loop++]->inbox, &c->mail);
	return 0;
}

static int
event_stream(const struct model_env *env, struct conn *c)
{
	if (env->workers > 1)
		return hand_over(env, c);
	connloop_start(env->main, c);
	return 0;
}

/* Before a fork: the loops' descriptors, for the child to close. */
static void
event_child_fds(struct fdlist *l)
{
	unsigned i;

	for (i = 0; i < nloops; i++) {
		loop_child_fds(loops[i]->loop, l);
		fdlist_add(l, loops[i]->inbox.fd);
	}
}

const struct model_ops model_event = {
	.id = MODEL_EVENT,
	.dgram_in_loop = true,
	.stream = event_stream,
	.child_fds = event_child_fds,
};
