/*
 * connloop.h - stream sessions driven by one event loop: the main loop's
 * (sequential model, event model with one worker) or an event-model loop
 * thread's.  Each session is watched for what its state machine waits
 * for, ticked once a second for its idle and linger deadlines while any
 * run, and shut down when the stop fd becomes readable.
 */
#ifndef ECHOTIMED_CONNLOOP_H
#define ECHOTIMED_CONNLOOP_H

#include <stdbool.h>

#include "conn.h"
#include "loop.h"

struct connloop {
	struct loop	*loop;
	struct conn	*head;		/* its sessions (c->ev.prev/next) */
	struct loop_timer tick;		/* armed while sessions run */
	struct loop_io	 stop;		/* the stop fd, one shot */
	bool		 stopped;	/* it fired: new sessions stop too */
	/* A session ended: no longer watched, out of the list. */
	void		(*ended)(struct conn *c, void *arg);
	void		*arg;
};

/* Drive sessions in lp; stop_fd ends them all.  0 or -errno. */
int		 connloop_init(struct connloop *cl, struct loop *lp,
		    int stop_fd, void (*ended)(struct conn *, void *),
		    void *arg);
/* Stop watching the stop fd (the sessions are the caller's). */
void		 connloop_fini(struct connloop *cl);
/*
 * Drive c's session from now on, from the loop's own thread.  The first
 * line usually came with the connection: it is answered at once, and a
 * session that ends then (ended() called before this returns) was never
 * watched at all.
 */
void		 connloop_start(struct connloop *cl, struct conn *c);

#endif
