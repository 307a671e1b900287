/*
 * model.h - concurrency models: how a request is run (socketserver's
 * plain / ForkingMixIn / ThreadingMixIn, plus an event loop).  Each model
 * lives in its own file and exports exactly one ops struct.
 */
#ifndef ECHOTIMED_MODEL_H
#define ECHOTIMED_MODEL_H

#include <stdbool.h>

#include "config.h"

struct server;
struct conn;

struct model_ops {
	enum model	 id;
	/* Datagrams are answered inside the server loop (no thread, no
	 * child). */
	bool		 in_loop;
	/* Run a stream session; on success the model owns c.  0 or -errno. */
	int		(*stream)(struct server *srv, struct conn *c);
	/* Answer the datagram held in c; on success owns c.  0 or -errno. */
	int		(*dgram)(struct server *srv, struct conn *c);
	/* In a forked child: close the model's own descriptors, or NULL. */
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

/* The ops for a configured model. */
const struct model_ops *model_get(enum model m);
/* In a forked child: every model's child_cleanup. */
void		 model_child_cleanup(void);

#endif
