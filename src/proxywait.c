/*
 * proxywait.c - connections waiting for their PROXY header (proxywait.h).
 *
 * Entries are in one list in accept order.  Deadlines differ per listener
 * (and change with a reload for new connections only), so the list is not
 * sorted by them: the timer is set for the earliest one, and the list is
 * scanned only when it is due.  A removal leaves the timer early, never
 * late; the scan sets it right.  Parked entries (header complete, no room
 * yet) wait in a FIFO of their own, unwatched, with their early bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "netaddr.h"
#include "proxywait.h"

struct pwentry {
	struct loop_io	 io;		/* watched while reading the header */
	struct proxywait *pw;
	struct conn	*c;
	struct pp_parser pp;
	uint64_t	 deadline_ms;
	int		 timeout_s;	/* for the log */
	char		 early[PW_READ];	/* parked: after the header */
	size_t		 nearly;
	struct pwentry	*prev, *next;
};

static void
list_append(struct pwlist *l, struct pwentry *e)
{
	e->next = NULL;
	e->prev = l->tail;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	l->n++;
}

static void
list_prepend(struct pwlist *l, struct pwentry *e)
{
	e->prev = NULL;
	e->next = l->head;
	if (l->head)
		l->head->prev = e;
	else
		l->tail = e;
	l->head = e;
	l->n++;
}

static void
list_remove(struct pwlist *l, struct pwentry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	l->n--;
}

bool
proxywait_trusts(const struct listen_conf *lc, const struct sockaddr *sa)
{
	size_t i;

	if (lc->transport == TRANSPORT_UNIX)
		return true;
	for (i = 0; i < lc->nproxy_from; i++)
		if (cidr_match(&lc->proxy_from[i], sa))
			return true;
	return false;
}

/* Take e out of list l and free it; the caller disposes of the conn. */
static struct conn *
take(struct proxywait *pw, struct pwlist *l, struct pwentry *e)
{
	struct conn *c = e->c;

	/* Before the fd is closed or handed on (a forked child may still
	 * hold a copy, and epoll would keep reporting it). */
	loop_del(pw->loop, &e->io);
	list_remove(l, e);
	free(e);
	return c;
}

/* A bad, late or missing header: no reply, a notice, a count. */
static void
fail(struct proxywait *pw, struct pwentry *e, const char *why)
{
	struct log_fields f = LOG_FIELDS_INIT;
	struct conn *c = e->c;

	conn_log_fields(c, &f);
	f.error = "bad PROXY header";
	log_fields(LOG_NOTICE, &f, "bad PROXY header from %s on %s: %s "
	    "after %zu bytes; closed without a reply", c->peerstr,
	    c->lname, why, pp_pending(&e->pp));
	pw->ops->drop(pw->ctx, take(pw, &pw->waiting, e), true);
}

/* Offer a complete connection to the owner; park it if there is no room. */
static void
offer(struct proxywait *pw, struct pwentry *e, const uint8_t *early,
    size_t n)
{
	loop_del(pw->loop, &e->io);
	list_remove(&pw->waiting, e);
	memcpy(e->early, early, n);
	e->nearly = n;
	/* Parked first: admitting may end a session at once, and the
	 * owner's retry must then find this one where it belongs. */
	list_append(&pw->parked, e);
	proxywait_retry(pw);
}

/* One read of what the connection sent. */
static void
readable(struct pwentry *e)
{
	struct proxywait *pw = e->pw;
	uint8_t buf[PW_READ];
	size_t used;
	ssize_t n;
	int r;

	do
		n = recv(e->c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		fail(pw, e, strerror(errno));
		return;
	}
	if (n == 0) {
		fail(pw, e, pp_strerror(pp_eof(&e->pp)));
		return;
	}
	r = pp_feed(&e->pp, buf, (size_t)n, &used);
	if (r < 0)
		fail(pw, e, pp_strerror((enum pp_error)-r));
	else if (r == PP_DONE) {
		proxywait_rewrite(e->c, &e->pp.res);
		offer(pw, e, buf + used, (size_t)n - used);
	}
}

static void
io_ready(struct loop_io *io, uint32_t revents)
{
	/* Errors and hang-ups show in the read, as for a session. */
	readable(io->data);
}

/* The earliest deadline is due: close what is late, find the next. */
static void
deadline_due(struct loop_timer *t, uint64_t now)
{
	struct proxywait *pw = t->data;
	struct pwentry *e, *next;
	uint64_t earliest = 0;
	char why[64];

	for (e = pw->waiting.head; e; e = next) {
		next = e->next;
		if (now >= e->deadline_ms) {
			snprintf(why, sizeof(why), "%s (%d s)",
			    pp_strerror(PP_ERR_TIMEOUT), e->timeout_s);
			fail(pw, e, why);
		} else if (earliest == 0 || e->deadline_ms < earliest)
			earliest = e->deadline_ms;
	}
	loop_timer_set(t, earliest);
}

void
proxywait_init(struct proxywait *pw, struct loop *lp,
    const struct proxywait_ops *ops, void *ctx)
{
	memset(pw, 0, sizeof(*pw));
	pw->loop = lp;
	pw->ops = ops;
	pw->ctx = ctx;
	loop_timer_add(lp, &pw->deadline, deadline_due, pw);
}

void
proxywait_add(struct proxywait *pw, struct conn *c,
    const struct listen_conf *lc)
{
	static const unsigned versions[] = {
		[PROXY_V1] = PP_V1, [PROXY_V2] = PP_V2, [PROXY_ANY] = PP_ANY
	};
	struct pwentry *e;
	int r;

	if (!(e = calloc(1, sizeof(*e)))) {
		r = -ENOMEM;
		goto fail;
	}
	e->pw = pw;
	e->c = c;
	e->timeout_s = lc->proxy_timeout;
	e->deadline_ms = c->start_ms + (uint64_t)lc->proxy_timeout * 1000;
	if ((r = pp_init(&e->pp, versions[lc->proxy_protocol])) < 0 ||
	    (r = loop_add(pw->loop, &e->io, c->fd, EPOLLIN, io_ready, e)) < 0)
		goto fail;
	list_append(&pw->waiting, e);
	if (pw->deadline.when_ms == 0 || e->deadline_ms < pw->deadline.when_ms)
		loop_timer_set(&pw->deadline, e->deadline_ms);
	readable(e);
	return;
fail:
	free(e);
	log_msg(LOG_ERR, "cannot wait for the PROXY header of %s: %s",
	    c->peerstr, strerror(-r));
	pw->ops->drop(pw->ctx, c, false);
}

void
proxywait_retry(struct proxywait *pw)
{
	struct pwentry *e;

	/* Admitting may end a session at once and call back here: the
	 * outer call goes on with the list. */
	if (pw->retrying)
		return;
	pw->retrying = true;
	while ((e = pw->parked.head) != NULL) {
		list_remove(&pw->parked, e);
		if (pw->ops->admit(pw->ctx, e->c, e->early, e->nearly) ==
		    -EBUSY) {
			list_prepend(&pw->parked, e);
			break;
		}
		free(e);
	}
	pw->retrying = false;
}

size_t
proxywait_count(const struct proxywait *pw)
{
	return pw->waiting.n + pw->parked.n;
}

void
proxywait_clear(struct proxywait *pw)
{
	while (pw->waiting.head)
		pw->ops->drop(pw->ctx, take(pw, &pw->waiting,
		    pw->waiting.head), false);
	while (pw->parked.head)
		pw->ops->drop(pw->ctx, take(pw, &pw->parked,
		    pw->parked.head), false);
	loop_timer_set(&pw->deadline, 0);
}

void
proxywait_fini(struct proxywait *pw)
{
	if (pw->loop)
		proxywait_clear(pw);
}

void
proxywait_child_fds(const struct proxywait *pw, struct fdlist *l)
{
	const struct pwentry *e;

	for (e = pw->waiting.head; e; e = e->next)
		fdlist_add(l, e->c->fd);
	for (e = pw->parked.head; e; e = e->next)
		fdlist_add(l, e->c->fd);
}

void
proxywait_rewrite(struct conn *c, const struct pp_result *r)
{
	struct sockaddr_storage ss;
	socklen_t len;

	snprintf(c->proxystr, sizeof(c->proxystr), "%s", c->peerstr);
	c->proxy_note = NULL;
	c->quiet = false;
	/* What pp_peer() takes as a client: an IP source of a PROXY. */
	if (r->command == PP_CMD_PROXY && (r->src.ss_family == AF_INET ||
	    r->src.ss_family == AF_INET6)) {
		len = pp_peer(r, (struct sockaddr *)&c->peer, c->peerlen, &ss);
		memcpy(&c->peer, &ss, sizeof(ss));
		c->peerlen = len;
		netaddr_format((struct sockaddr *)&c->peer, c->peerlen,
		    c->peerstr, sizeof(c->peerstr));
	} else if (r->command == PP_CMD_LOCAL) {
		/* The proxy's own connection: a health check. */
		c->proxy_note = "PROXY LOCAL";
		c->quiet = true;
	} else if (r->command == PP_CMD_UNKNOWN)
		c->proxy_note = "PROXY UNKNOWN";
	else
		c->proxy_note = "PROXY from a unix socket";
}
