/*
 * model.h - concurrency models: how a request is run (socketserver's
 * plain / ForkingMixIn / ThreadingMixIn, plus event loops).  Each model
 * lives in a file of its own and owns its whole mechanism (children and
 * their reports, threads, loop threads); the server reaches them only
 * through these ops and hands them what they need in a model_env.
 */
#ifndef ECHOTIMED_MODEL_H
#define ECHOTIMED_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "conn.h"
#include "connloop.h"
#include "fdlist.h"
#include "loop.h"

/* What the server gives the models. */
struct model_env {
	struct loop	*loop;		/* the main loop */
	struct conns	*conns;		/* every session and request */
	struct connloop	*main;		/* sessions the main loop drives */
	size_t		 thread_stack;	/* bytes, for every thread started */
	unsigned	 workers;	/* event loops wanted */
	/*
	 * Before a fork: every descriptor of the parent's, for the child to
	 * close (fdlist.h; the child's own is l->keep).
	 */
	void		(*child_fds)(void *arg, struct fdlist *l);
	/* In a forked child, after closing them: the rest of the clean-up. */
	void		(*child_cleanup)(void *arg);
	void		*arg;
};

struct model_ops {
	enum model	 id;
	/* One session at a time: the others wait in the listen backlog. */
	bool		 one_at_a_time;
	/* Datagrams are answered in the main loop, not by dgram(). */
	bool		 dgram_in_loop;
	/* Run a stream session; on success the model owns c.  0 or -errno. */
	int		(*stream)(const struct model_env *env, struct conn *c);
	/* Answer the datagram held in c; on success owns c.  0 or -errno. */
	int		(*dgram)(const struct model_env *env, struct conn *c);
	/*
	 * Optional hooks.  A reload may change the model while sessions of
	 * the old one still run, so these are called for every model.
	 */
	/* At start: what the model needs from the start.  0 or -errno. */
	int		(*init)(const struct model_env *env);
	/* SIGCHLD: reap what ended. */
	void		(*reap)(const struct model_env *env);
	/* Stopping hard: end what the stop fd does not reach. */
	void		(*stop)(const struct model_env *env);
	/* At exit: end what is left, now. */
	void		(*kill)(const struct model_env *env);
	/* At exit: free what init made. */
	void		(*fini)(const struct model_env *env);
	/* Before a fork: the model's own descriptors, for the child to close. */
	void		(*child_fds)(struct fdlist *l);
	/* In a forked child: undo what else is the parent's (a handler). */
	void		(*child_cleanup)(void);
};

/* model_sequential.c */
extern const struct model_ops model_sequential;
/* model_fork.c */
extern const struct model_ops model_fork;
/* model_thread.c */
extern const struct model_ops model_thread;
/* model_event.c */
extern const struct model_ops model_event;

/* model.c: the registry. */
/* The ops for a configured model. */
const struct model_ops *model_get(enum model m);
/* Every model's init.  0 or the first -errno. */
int		 model_init(const struct model_env *env);
/* Every model's reap, stop, kill or fini. */
void		 model_reap(const struct model_env *env);
void		 model_stop(const struct model_env *env);
void		 model_kill(const struct model_env *env);
void		 model_fini(const struct model_env *env);
/* Before a fork: every model's child_fds. */
void		 model_child_fds(struct fdlist *l);
/* In a forked child: every model's child_cleanup. */
void		 model_child_cleanup(void);

#endif
