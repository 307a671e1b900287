/*
 * proxywait.h - connections of a proxy_protocol listener until their PROXY
 * header is complete (SPEC 9).
 *
 * A trusted connection waits here, non-blocking, in the main loop,
 * whatever the model: no thread, child or loop thread is given a
 * connection before its header is complete, and none of them blocks the
 * accept loop meanwhile.  Each has a parser of its own (proxyproto.h), a
 * loop_io, and a deadline, proxy_timeout seconds after the accept, for
 * the whole header; one loop timer serves every deadline.  A complete
 * header makes the client it names the connection's peer, and the
 * connection goes back to admission (accept.c: access lists, limits, the
 * model) with the bytes that followed the header.  A bad, late or missing
 * header closes it without a reply, logged at notice here and counted by
 * the owner.  No MSG_PEEK: bytes are read once, up to PW_READ at a time,
 * and the parser never takes more than the header.
 *
 * The set knows nothing of models or limits: its owner (accept.c) gives
 * it two hooks, admit and drop.
 */
#ifndef ECHOTIMED_PROXYWAIT_H
#define ECHOTIMED_PROXYWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "fdlist.h"
#include "loop.h"
#include "proxyproto.h"

/* Bytes read at a time; what follows the header in the last read (less
 * than this) becomes the session's first input. */
#define PW_READ		512

struct conn;
struct pwentry;

struct proxywait_ops {
	/*
	 * c's header is complete and c->peer is the client it names;
	 * early[0..n) followed the header.  0 if the owner took c (serving
	 * or refusing it), or -EBUSY to park it: there is no room now, and
	 * proxywait_retry() offers c again (with the same bytes).
	 */
	int	(*admit)(void *ctx, struct conn *c, const char *early,
		    size_t n);
	/* c is done with: close and free it.  bad_header: its header was
	 * bad, late or missing (logged here, to be counted), and the set is
	 * one smaller. */
	void	(*drop)(void *ctx, struct conn *c, bool bad_header);
};

struct pwlist {
	struct pwentry	*head, *tail;
	size_t		 n;
};

/* The set; its owner embeds it (its timer stays registered with the loop). */
struct proxywait {
	struct loop	*loop;
	const struct proxywait_ops *ops;
	void		*ctx;
	struct pwlist	 waiting;	/* reading a header */
	struct pwlist	 parked;	/* complete, waiting for room */
	struct loop_timer deadline;	/* the earliest of waiting's */
	bool		 retrying;	/* in proxywait_retry() */
};

/* An empty set in the loop lp, telling ctx through ops. */
void		 proxywait_init(struct proxywait *pw, struct loop *lp,
		    const struct proxywait_ops *ops, void *ctx);
/* Drop every connection held (as proxywait_clear()). */
void		 proxywait_fini(struct proxywait *pw);
/*
 * May a connection from sa send a header to the listener lc?  A tcp
 * peer within proxy_from; on a unix listener every peer (who may connect
 * is decided by the socket file's mode, owner and group).
 */
bool		 proxywait_trusts(const struct listen_conf *lc,
		    const struct sockaddr *sa);
/*
 * Wait for c's header as lc says (c->fd accepted on lc's listener, c's
 * peer, peerstr, cred and start_ms filled); the set owns c from now on,
 * even on failure (then logged and dropped).  Reads at once: a header
 * usually arrives with the connection.
 */
void		 proxywait_add(struct proxywait *pw, struct conn *c,
		    const struct listen_conf *lc);
/* There may be room again: offer the parked connections, in accept order,
 * until one is refused for want of room. */
void		 proxywait_retry(struct proxywait *pw);
/* Connections held: waiting for a header or parked. */
size_t		 proxywait_count(const struct proxywait *pw);
/* The daemon stops: drop every connection held (not counted as bad). */
void		 proxywait_clear(struct proxywait *pw);
/* Before a fork: the descriptors held, for the child to close. */
void		 proxywait_child_fds(const struct proxywait *pw,
		    struct fdlist *l);
/*
 * After header r: c->peer becomes the client r names (pp_peer()), its
 * peerstr too, the connection's own address goes to c->proxystr, and a
 * header that names no client (v2 LOCAL, v1 UNKNOWN, a unix client) is
 * noted in c->proxy_note; a LOCAL one (a health check) makes c quiet.
 */
void		 proxywait_rewrite(struct conn *c, const struct pp_result *r);

#endif
