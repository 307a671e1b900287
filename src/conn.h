/*
 * conn.h - one connection or datagram request, and the set of those
 * running: counted per listener (stats.h) and per source, handed back
 * from other threads when they end, logged when they end.
 */
#ifndef ECHOTIMED_CONN_H
#define ECHOTIMED_CONN_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "dgpeer.h"
#include "loop.h"
#include "mailbox.h"
#include "netaddr.h"
#include "session.h"
#include "stats.h"

struct conns;
struct log_fields;

/*
 * One stream session or one datagram request.  conn_new() makes it in
 * memory a fork child does not inherit (nofork.h); a pointer into the
 * conn itself (sess.peer) must be redirected by conn_child_copy().
 */
struct conn {
	struct conns	*set;		/* NULL in inetd mode and in a child */
	struct stats	*stats;		/* the set's: it counts there */
	int		 fd;
	bool		 own_fd;	/* fd is closed with the conn */
	bool		 dgram;
	bool		 inetd;		/* inetd mode: no listener to name */
	bool		 on_thread;	/* another thread has it until done */
	struct sockaddr_storage peer;
	socklen_t	 peerlen;
	char		 peerstr[NETADDR_STRLEN];
	char		 cred[64];	/* "uid=0 gid=0 pid=1" for unix peers */
	/* After a PROXY header (proxywait.h): peer is the client it named,
	 * proxystr the connection's own peer; "" without a header. */
	char		 proxystr[NETADDR_STRLEN];
	const char	*proxy_note;	/* a header naming no client: why */
	bool		 quiet;		/* a health check: open, close at debug */
	struct dgpeer_cred dgcred;	/* a unix-dgram sender's, from the kernel */
	char		 lname[NETADDR_STRLEN];	/* listener name or address */
	/* A datagram's listener label while peerstr and lname are not yet
	 * written: they are when a line first needs them (conn_logs), most
	 * datagrams never do.  NULL once written, and for streams. */
	const char	*unnamed;
	const char	*transport;
	int		 stats_slot;
	struct netaddr_source src;	/* for max_connections_per_source */
	size_t		 max_line;	/* settings the session started with */
	int		 idle_timeout;
	uint64_t	 start_ms;
	struct session	 sess;
	char		*data;		/* datagram payload */
	size_t		 datalen;
	struct conn	*prev, *next;	/* the set */
	struct mailbox_link mail;	/* to a loop thread, or back */
	/* A session driven by an event loop (connloop.h). */
	struct {
		struct loop_io	 io;
		struct conn	*prev, *next;	/* that loop's sessions */
	} ev;
	/* The thread model's part: the thread running its session, which
	 * a stop signals (model_thread.c); guarded by that file's lock. */
	struct {
		pthread_t	 tid;
		bool		 running;	/* tid is in a session */
	} thread;
	/* The fork model's part: the child running it. */
	struct {
		pid_t		 pid;
		bool		 reported;	/* its result arrived */
	} fork;
};

/*
 * Every running session and datagram request, in memory a fork child does
 * not inherit (conns_new()): the main thread writes it for every
 * connection.
 */
struct conns {
	struct conn	*head;
	size_t		 n;
	struct stats	*stats;
	int		 stop_fd;	/* readable once sessions must stop */
	atomic_bool	 stopping;	/* set at the same time */
	struct mailbox	 done;		/* finished on other threads */
	/* After a conn left the set: the server may accept again. */
	void		(*finished)(void *arg);
	void		*arg;
};

/*
 * An empty set counting in st, whose conns finished on other threads come
 * back through lp; NULL with errno set.
 */
struct conns	*conns_new(struct stats *st, struct loop *lp,
		    void (*finished)(void *), void *arg);
/* Close the set's descriptors and free it (its conns are the caller's).
 * NULL is fine. */
void		 conns_delete(struct conns *cs, struct loop *lp);
/* True while a conn is in another thread's hands (see conn.on_thread). */
bool		 conns_on_threads(const struct conns *cs);
/* Free every conn of the set. */
void		 conns_free_all(struct conns *cs);
/* Every session must stop now: sets stopping, makes stop_fd readable. */
void		 conns_stop(struct conns *cs);
/* Put c in the set / take it out. */
void		 conns_add(struct conns *cs, struct conn *c);
void		 conns_remove(struct conns *cs, struct conn *c);
/* c ended on the set's thread: out of the set, freed, finished() told. */
void		 conns_finish(struct conns *cs, struct conn *c);
/* c ended on another thread: the set's loop finishes it.  Thread-safe. */
void		 conns_done(struct conns *cs, struct conn *c);
/* Stream sessions running from src. */
size_t		 conns_count_source(const struct conns *cs,
		    const struct netaddr_source *src);
/* New source prefixes: every IP peer's source again. */
void		 conns_rekey(struct conns *cs, unsigned prefix4,
		    unsigned prefix6);

/*
 * A conn counting in slot of cs, for a session with those settings; NULL
 * on ENOMEM.  Not yet in the set.
 */
struct conn	*conn_new(struct conns *cs, int slot, const char *transport,
		    const char *lname, size_t max_line, int idle_timeout);
/* Free c (its fd if own_fd); NULL is fine. */
void		 conn_free(struct conn *c);
/*
 * Before a fork(): c as the child sees it, in *dst (the forking thread's
 * stack, which the child inherits; c itself it does not): in no set, its
 * internal pointers to dst.  The parent goes on with c.
 */
void		 conn_child_copy(struct conn *dst, const struct conn *c);
/* Its listener's counters. */
struct lstats	*conn_stats(const struct conn *c);
/* A Unix peer's credentials: into c->cred for the log, and *uc. */
void		 conn_peer_cred(struct conn *c, struct ucred *uc);
/*
 * True if a line at prio would be logged; c's peerstr and lname are then
 * written (see unnamed).  Thread-safe for a conn the caller holds.
 */
bool		 conn_logs(struct conn *c, int prio);
/* Fill the log fields of c. */
void		 conn_log_fields(const struct conn *c, struct log_fields *f);
/* Log the end of c's session. */
void		 conn_log_end(const struct conn *c);
/*
 * Send a reply to c's sender, and for a Unix sender only to the socket it
 * bound (dgpeer.h).  false if the sender's socket could not be verified:
 * nothing sent, counted as dropped.
 */
bool		 conn_send_dgram(struct conn *c, const void *buf, size_t n);
/* The kernel refused the reply to c's sender (errno err): logged. */
void		 conn_dgram_unsent(struct conn *c, int err);

/*
 * Send a reply of n bytes to sa on c's socket, as every datagram reply
 * is sent (never blocking, no SIGPIPE); a refusal is logged.  Inline, so
 * that the loop models send from the loop that read the datagram
 * (accept_dgram.c).
 */
static inline void
conn_sendto(struct conn *c, const void *buf, size_t n,
    const struct sockaddr *sa, socklen_t salen)
{
	if (sendto(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT, sa, salen) < 0)
		conn_dgram_unsent(c, errno);
}
/* c's datagram answered (is_error: "line too long"): counted, logged. */
void		 conn_dgram_answered(struct conn *c, bool is_error);
/* Count the end of c's session if an error, and log it. */
void		 conn_ended(struct conn *c);
/*
 * Answer the datagram in c through c->fd.  out holds
 * dgram_reply_cap(c->max_line) bytes, or NULL to allocate it.
 */
void		 conn_answer_dgram(struct conn *c, char *out);

#endif
