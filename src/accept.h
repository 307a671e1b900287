/*
 * accept.h - admission: accepting connections and receiving datagrams on
 * the listening sockets, applying the access lists, the capacity, the
 * per-source cap and the datagram checks and rate limit, turning away
 * what may not be served, and handing the rest to the concurrency model.
 * Limits are enforced by not watching the stream sockets (overflow
 * "wait") or by answering "ERROR server busy" (overflow "reject").
 */
#ifndef ECHOTIMED_ACCEPT_H
#define ECHOTIMED_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "listenset.h"
#include "loop.h"
#include "model.h"
#include "proxywait.h"
#include "ratelimit.h"

struct dg_ports;
struct dgbatch;

struct acceptor {
	const struct config *cfg;
	const struct model_ops *model;
	const struct model_env *env;
	struct listenset *ls;
	struct ratelimit *rl;		/* datagrams per source, or NULL */
	struct proxywait pw;		/* stream connections before their
					 * PROXY header */
	char		*dgbuf;		/* one datagram */
	size_t		 dgcap;
	char		*dgout;		/* one datagram reply */
	struct dgbatch	*batch;		/* a queue of them, sized for the
					 * lines (NULL: too long to batch) */
	/* The datagram being received; answered in place by a model that
	 * answers in the loop, so no conn is allocated per datagram. */
	struct conn	 dgc;
	struct dg_ports	*bad_ports;	/* configured + own datagram ports */
	bool		 paused;	/* out of descriptors: not accepting */
	struct loop_timer pause;	/* until then */
	uint64_t	 error_logged_ms;
};

/* What a reload changes, made before anything else changes. */
struct accept_reload {
	struct ratelimit *rl;		/* the new limiter (if it changes) */
	bool		 rl_changed;
	bool		 prefix_changed;
	struct dgbatch	*batch;		/* the new batch (if lines change) */
	bool		 batch_changed;
};

/*
 * Admission for cfg and model over ls's sockets; sessions go to env.
 * 0 or -ENOMEM.
 */
int		 accept_init(struct acceptor *a, const struct config *cfg,
		    const struct model_ops *model, const struct model_env *env,
		    struct listenset *ls);
/* Free what accept_init() made; fine after it failed. */
void		 accept_fini(struct acceptor *a);
/* A socket of the set is readable (a listenset ready callback). */
void		 accept_ready(struct lsock *s, void *arg);
/* Watch the sockets that may be served now (after any change). */
void		 accept_arm(struct acceptor *a);
/* A session ended: descriptors are free again (a conns callback). */
void		 accept_resume(void *arg);
/*
 * Make what reloading to cfg needs.  0 or -ENOMEM (nothing changed that
 * the running configuration would notice).
 */
int		 accept_reload_prepare(struct acceptor *a,
		    const struct config *cfg, struct accept_reload *rl);
/* The reload failed: drop what prepare made. */
void		 accept_reload_cancel(struct accept_reload *rl);
/* The reload is done: admit with cfg and model from now on. */
void		 accept_reload_commit(struct acceptor *a,
		    const struct config *cfg, const struct model_ops *model,
		    struct accept_reload *rl);

#endif
