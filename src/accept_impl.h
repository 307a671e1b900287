/*
 * accept_impl.h - what accept.c (arming, streams, configuration) and
 * accept_dgram.c (datagrams) share; private to the two.
 */
#ifndef ECHOTIMED_ACCEPT_IMPL_H
#define ECHOTIMED_ACCEPT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "accept.h"
#include "netaddr.h"

/* accept.c */

/* Sessions the model may run at once. */
size_t		 accept_capacity(const struct acceptor *a);
/* The source a peer counts as under the current source prefixes. */
void		 accept_source_of(const struct acceptor *a,
		    const struct sockaddr *sa, uint32_t uid,
		    struct netaddr_source *src);
/* A new conn for s, or NULL. */
struct conn	*accept_new_conn(struct acceptor *a, struct lsock *s);

/* accept_dgram.c */

/* Receive and answer (or hand on) the datagrams queued on s. */
void		 accept_dgrams(struct acceptor *a, struct lsock *s);
/* The denied source ports: the configured ones and our own datagram
 * ports (never answer them: no loops between daemons). */
void		 accept_own_dgram_ports(struct acceptor *a);
/*
 * Room for a datagram and its reply under cfg; kept when lines get
 * shorter, so that growing them is all a reload may do here.  0 or
 * -ENOMEM.
 */
int		 accept_dgram_buffers(struct acceptor *a,
		    const struct config *cfg);
/* A batch sized for cfg's lines into *b: NULL when they are too long to
 * batch.  0 or -ENOMEM. */
int		 accept_dgram_batch(const struct config *cfg,
		    struct dgbatch **b);

#endif
