/*
 * listenset.h - the daemon's listening sockets as a set: the sockets the
 * service manager passed (socket units and the fd store) matched to the
 * configured listeners, the others opened; each watched by the main loop,
 * counted in a statistics slot and kept in the fd store; on reload, the
 * set merged with the new configuration.
 */
#ifndef ECHOTIMED_LISTENSET_H
#define ECHOTIMED_LISTENSET_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "fdlist.h"
#include "listener.h"
#include "loop.h"
#include "stats.h"

struct listenset;

/* One listening socket of the set. */
struct lsock {
	struct listener	*l;
	struct loop_io	 io;		/* armed while io.events != 0 */
	int		 stats_slot;
	bool		 dgram_backlog;	/* its last wake-up read a backlog
					 * in batches: the next starts with
					 * one (accept_dgram.c) */
	char		 stored_as[256];	/* FDNAME stored as, or "" */
	struct listenset *set;
	struct lsock	*next;
};

struct listenset {
	struct lsock	*head;
	struct loop	*loop;
	struct stats	*stats;
	/* A socket of the set is readable. */
	void		(*ready)(struct lsock *s, void *arg);
	void		*arg;
};

/* An empty set watched by lp, counting in st. */
void		 listenset_init(struct listenset *ls, struct loop *lp,
		    struct stats *st, void (*ready)(struct lsock *, void *),
		    void *arg);
/*
 * At start: adopt the passed sockets, open the configured listeners no
 * passed socket covers, watch them all (disarmed).  0 or -errno with err
 * filled.
 */
int		 listenset_open(struct listenset *ls, const struct config *cfg,
		    char *err, size_t errlen);
/*
 * At reload: keep the sockets cfg still has (changed in place if only
 * their labels, backlog or file mode changed), open the new ones, close
 * the removed ones.  On failure (err filled) nothing changed.
 */
int		 listenset_merge(struct listenset *ls, const struct config *cfg,
		    char *err, size_t errlen);
/*
 * When stopping: close every socket; the fd store and socket units keep
 * theirs (and their backlogs) for the next start.
 */
void		 listenset_close(struct listenset *ls);
/* At exit: close what is left, without the loop or the statistics. */
void		 listenset_free(struct listenset *ls);
/* Watch the stream sockets if streams, the datagram sockets if dgrams. */
void		 listenset_arm(struct listenset *ls, bool streams, bool dgrams);
/* Before a fork: every socket of the set, for the child to close. */
void		 listenset_child_fds(const struct listenset *ls,
		    struct fdlist *l);
/* The set's sockets for stats_text() (a stats_next_fn; arg is the set). */
bool		 listenset_next(void *arg, void **cursor,
		    struct stats_listener *out);
/* What logs call a socket: its name, or its address. */
const char	*lsock_label(const struct lsock *s);

#endif
