/*
 * accept_dgram.c - admission of datagrams (see accept.h): receiving them
 * alone or in batches, the access list, source checks and rate limit,
 * and answering them in the loop or handing them to the model.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "accept_impl.h"
#include "acl.h"
#include "clock.h"
#include "dgbatch.h"
#include "dgcheck.h"
#include "log.h"

#define DGRAM_BATCH	64	/* datagrams per wake-up */
#define DGRAM_BACKLOG	16	/* read alone before batches */

/* admit_dgram()'s rate limit, out of line with its buffers. */
static bool __attribute__((noinline))
admit_rate(struct acceptor *a, struct conn *c, struct lstats *st)
{
	struct netaddr_source src;
	char text[CIDR_STRLEN];

	accept_source_of(a, (struct sockaddr *)&c->peer, 0, &src);
	if (ratelimit_allow(a->rl, &src, sizeof(src), clock_ns()))
		return true;
	atomic_fetch_add(&st->dropped, 1);
	if (conn_logs(c, LOG_DEBUG)) {
		netaddr_source_format(&src, text, sizeof(text));
		log_msg(LOG_DEBUG, "datagram from %s on %s dropped: rate limit "
		    "of source %s", c->peerstr, c->lname, text);
	}
	return false;
}

/*
 * Checks shared by every model: access list, loops, rate.  true = serve.
 * The lines name the peer, so they name c first (conn_logs).
 */
static bool
admit_dgram(struct acceptor *a, struct conn *c, struct lstats *st)
{
	struct acl acl = config_acl(a->cfg);
	enum dg_verdict v;

	/* Linux gives an unbound Unix sender's address as length 0 (older
	 * kernels: the family alone). */
	if (c->peerlen < sizeof(sa_family_t) ||
	    (c->peer.ss_family == AF_UNIX &&
	    c->peerlen <= offsetof(struct sockaddr_un, sun_path))) {
		atomic_fetch_add(&st->dropped, 1);
		if (conn_logs(c, LOG_DEBUG))
			log_msg(LOG_DEBUG, "datagram on %s from an unbound "
			    "Unix socket: no address to answer, dropped",
			    c->lname);
		return false;
	}
	if (!acl_permits(&acl, (struct sockaddr *)&c->peer)) {
		atomic_fetch_add(&st->refused, 1);
		if (conn_logs(c, LOG_DEBUG))
			log_msg(LOG_DEBUG, "datagram from %s on %s denied by "
			    "access list", c->peerstr, c->lname);
		return false;
	}
	v = dg_check_source((struct sockaddr *)&c->peer, a->bad_ports);
	if (v != DG_OK) {
		atomic_fetch_add(&st->dropped, 1);
		if (conn_logs(c, LOG_DEBUG))
			log_msg(LOG_DEBUG, "datagram from %s on %s dropped: %s",
			    c->peerstr, c->lname, dg_verdict_name(v));
		return false;
	}
	if (!a->rl || c->peer.ss_family == AF_UNIX)
		return true;
	return admit_rate(a, c, st);
}

/*
 * The admitted datagram in d (the acceptor's, held in dgbuf) to another
 * thread or process: a conn of its own, named now (its listener may be
 * gone by the time it logs), with a copy of the datagram.
 */
static void
hand_dgram(struct acceptor *a, struct lsock *s, const struct conn *d)
{
	struct conn *c;
	int r;

	if (!(c = accept_new_conn(a, s)))
		return;
	c->dgram = true;
	c->fd = d->fd;
	c->peer = d->peer;
	c->peerlen = d->peerlen;
	c->dgcred = d->dgcred;
	c->datalen = d->datalen;
	netaddr_format((struct sockaddr *)&c->peer, c->peerlen, c->peerstr,
	    sizeof(c->peerstr));
	if (!(c->data = malloc(c->datalen ? c->datalen : 1))) {
		conn_free(c);
		return;
	}
	memcpy(c->data, a->dgbuf, c->datalen);
	conns_add(a->env->conns, c);
	if ((r = a->model->dgram(a->env, c)) < 0) {
		log_msg(LOG_ERR, "cannot answer datagram from %s: %s",
		    c->peerstr, strerror(-r));
		conns_remove(a->env->conns, c);
		conn_free(c);
	}
}

/*
 * Answer the admitted datagram in c (held in dgbuf) in the loop.  A UDP
 * reply is sent from here with conn_sendto(), as conn_send_dgram() would
 * send it (a UDP sender needs no check, see conn_send_dgram()), without
 * the calls and returns of that path between sendto() and the next read:
 * about 100 TSC cycles a datagram less in one run
 * (tests/bench/usercycles.c, tests/bench/README.md).
 * A Unix sender's socket is verified first, by conn_answer_dgram().
 */
static void
answer_in_loop(struct acceptor *a, struct conn *c)
{
	bool is_error;
	size_t n;

	c->data = a->dgbuf;
	if (c->peer.ss_family == AF_UNIX) {
		conn_answer_dgram(c, a->dgout);
	} else {
		n = dgram_reply(c->data, c->datalen, c->max_line, a->dgout,
		    &is_error);
		conn_sendto(c, a->dgout, n, (struct sockaddr *)&c->peer,
		    c->peerlen);
		conn_dgram_answered(c, is_error);
	}
	c->data = NULL;
}

/* Answer the admitted datagram in c (held in dgbuf) as the model does. */
static void
serve_dgram(struct acceptor *a, struct lsock *s, struct conn *c,
    struct lstats *st)
{
	char msg[LP_ERROR_MAX];
	size_t m;

	if (a->model->dgram_in_loop) {
		answer_in_loop(a, c);
		return;
	}
	if (a->env->conns->n >= accept_capacity(a)) {
		/* overflow = "reject": say so, without a session. */
		m = lp_format_error(msg, LP_ERR_BUSY, 0);
		if (conn_send_dgram(c, msg, m))
			atomic_fetch_add(&st->rejects, 1);
		return;
	}
	hand_dgram(a, s, c);
	accept_arm(a);
}

/*
 * One datagram from s into dgbuf, its sender into c: its length as
 * MSG_TRUNC reports it, or -errno; *call is the call used.  Only a Unix
 * sender's credentials matter (dgpeer.h): UDP needs no control buffer.
 */
static ssize_t
recv_dgram(struct acceptor *a, struct lsock *s, struct conn *c,
    const char **call)
{
	ssize_t n;

	c->peerlen = sizeof(c->peer);
	if (s->l->conf.transport == TRANSPORT_UNIX_DGRAM) {
		*call = "recvmsg";
		return dgpeer_recv(s->l->fd, a->dgbuf, a->dgcap,
		    MSG_DONTWAIT | MSG_TRUNC, &c->peer, &c->peerlen,
		    &c->dgcred);
	}
	*call = "recvfrom";
	c->dgcred.known = false;
	n = recvfrom(s->l->fd, a->dgbuf, a->dgcap, MSG_DONTWAIT | MSG_TRUNC,
	    (struct sockaddr *)&c->peer, &c->peerlen);
	return n < 0 ? -errno : n;
}

/*
 * The acceptor's conn c for the datagrams on s: what they share is set once
 * a wake-up, each one's peer by recv_dgram() and its name (formatted only
 * when logged) by the loop.  Not counted in the slot's references: it
 * never outlives accept_dgrams(), and the listener holds the slot
 * meanwhile.
 */
static void
dgram_conn(struct acceptor *a, struct lsock *s, struct conn *c)
{
	c->set = a->env->conns;
	c->stats = c->set->stats;
	c->fd = s->l->fd;
	c->dgram = true;
	c->stats_slot = s->stats_slot;
	c->transport = transport_name(s->l->conf.transport);
	c->max_line = (size_t)a->cfg->session.max_line_length;
}

/*
 * An admitted datagram of n bytes, as MSG_TRUNC reports them, of which its
 * buffer kept cap: its length, counted as a session.  The buffers hold
 * max_line + 3 bytes, so a cut datagram is still seen as too long after
 * LF / CR LF stripping.
 */
static void
take_dgram(struct conn *c, struct lstats *st, size_t n, size_t cap)
{
	c->datalen = n < cap ? n : cap;
	atomic_fetch_add(&st->sessions, 1);
}

/* What a refused reply of a batch needs to name its peer. */
struct batch_ctx {
	struct dgbatch	*b;
	struct conn	*c;
	const char	*label;
};

/* Slot i's sender into c, not named yet. */
static void
batch_peer(struct dgbatch *b, unsigned i, struct conn *c, const char *label)
{
	const struct sockaddr *sa = dgbatch_peer(b, i, &c->peerlen);

	if (c->peerlen > sizeof(c->peer))
		c->peerlen = sizeof(c->peer);
	memcpy(&c->peer, sa, c->peerlen);
	c->unnamed = label;
}

static void
batch_refused(void *arg, unsigned slot, int err)
{
	struct batch_ctx *x = arg;

	batch_peer(x->b, slot, x->c, x->label);
	conn_dgram_unsent(x->c, err);
}

/*
 * Up to max datagrams from c's socket with one recvmmsg(), each admitted
 * and answered as serve_dgram() answers one in the loop, the replies sent
 * together.  UDP only: a Unix sender's reply needs its socket verified
 * (dgpeer.h) and its credentials a control buffer of its own.  The count
 * read, or -errno.
 */
static int
receive_batch(struct acceptor *a, struct conn *c, struct lstats *st,
    const char *label, unsigned max)
{
	struct batch_ctx x = { a->batch, c, label };
	bool is_error;
	size_t len, n;
	unsigned i;
	int k;

	if ((k = dgbatch_recv(x.b, c->fd, max)) <= 0)
		return k;
	for (i = 0; i < (unsigned)k; i++) {
		batch_peer(x.b, i, c, x.label);
		if (!admit_dgram(a, c, st))
			continue;
		c->data = dgbatch_data(x.b, i, &len);
		take_dgram(c, st, len, dgbatch_cap(x.b));
		n = dgram_reply(c->data, c->datalen, c->max_line,
		    dgbatch_reply(x.b, i), &is_error);
		conn_dgram_answered(c, is_error);
		dgbatch_queue(x.b, i, n);
	}
	c->data = NULL;
	dgbatch_send(x.b, c->fd, batch_refused, &x);
	return k;
}

/*
 * One datagram from s, admitted and answered (or handed on) as the model
 * does: 1, or -errno from the read.
 */
static ssize_t
receive_one(struct acceptor *a, struct lsock *s, struct conn *c,
    struct lstats *st, const char *label, const char **call)
{
	ssize_t n;

	if ((n = recv_dgram(a, s, c, call)) < 0)
		return n;
	c->unnamed = label;	/* a new peer: not named yet */
	if (!admit_dgram(a, c, st))
		return 1;
	take_dgram(c, st, (size_t)n, a->dgcap);
	serve_dgram(a, s, c, st);
	return 1;
}

/*
 * The datagrams queued on s, up to DGRAM_BATCH a wake-up.  They are read
 * alone (recvfrom(), or recvmsg() for a Unix socket) and answered one by
 * one until the queue is empty: a wake-up of a server that keeps up finds
 * a few, and for a few, single calls cost less than recvmmsg() and
 * sendmmsg() (tests/bench/README.md).  Where a model answers in the loop,
 * a UDP backlog is read in batches: after DGRAM_BACKLOG datagrams in one
 * wake-up, and from the start of the wake-up after one that read as
 * many.  A batch that brings fewer than it asked for emptied the queue,
 * so the wake-up ends there, without the read that would find it empty:
 * the loop's level-triggered wait reports what arrived since.
 */
void
accept_dgrams(struct acceptor *a, struct lsock *s)
{
	struct conn *c = &a->dgc;
	const char *call = "recvfrom", *label = lsock_label(s);
	bool batches, batch;		/* the next read takes a batch */
	struct lstats *st;
	unsigned i, want = 0;
	ssize_t n;

	dgram_conn(a, s, c);
	st = conn_stats(c);
	/* A batch's slots hold max_line + 3 bytes, as dgbuf does. */
	batches = a->model->dgram_in_loop &&
	    s->l->conf.transport == TRANSPORT_UDP && a->batch &&
	    dgbatch_cap(a->batch) >= c->max_line + 3;
	batch = batches && s->dgram_backlog;
	for (i = 0; i < DGRAM_BATCH && s->io.events;
	    i += n > 0 ? (unsigned)n : 1) {
		if (batch) {
			want = DGRAM_BATCH - i;
			if (want > dgbatch_slots(a->batch))
				want = dgbatch_slots(a->batch);
			n = receive_batch(a, c, st, label, want);
		} else {
			n = receive_one(a, s, c, st, label, &call);
		}
		if (n == -EINTR)
			continue;
		if (n < 0) {
			if (n != -EAGAIN && n != -EWOULDBLOCK)
				log_msg(LOG_WARNING, "%s on %s: %s",
				    batch ? "recvmmsg" : call, label,
				    strerror((int)-n));
			break;
		}
		if (batch && (size_t)n < want) {
			i += (unsigned)n;	/* the queue is empty */
			break;
		}
		/* Once batching, the rest of the wake-up is. */
		batch = batch || (batches && i + 1 >= DGRAM_BACKLOG);
	}
	s->dgram_backlog = batches && i >= DGRAM_BACKLOG;
}

/* ---- buffers and ports ---- */

void
accept_own_dgram_ports(struct acceptor *a)
{
	const struct config *cfg = a->cfg;
	struct dg_ports *set;
	struct lsock *s;
	size_t i;

	if (!(set = malloc(sizeof(*set))))
		return;		/* keep the previous set */
	dg_ports_clear(set);
	for (i = 0; i < cfg->datagram.ndeny_source_ports; i++)
		dg_ports_add(set, cfg->datagram.deny_source_ports[i]);
	for (s = a->ls->head; s; s = s->next)
		if (s->l->socktype == SOCK_DGRAM && s->l->port > 0)
			dg_ports_add(set, s->l->port);
	free(a->bad_ports);
	a->bad_ports = set;
}

int
accept_dgram_buffers(struct acceptor *a, const struct config *cfg)
{
	size_t cap = (size_t)cfg->session.max_line_length + 3;
	char *in, *out;

	if (cap <= a->dgcap)
		return 0;
	in = realloc(a->dgbuf, cap);
	if (in)
		a->dgbuf = in;
	out = realloc(a->dgout, dgram_reply_cap(cap));
	if (out)
		a->dgout = out;
	if (!in || !out)
		return -ENOMEM;
	a->dgcap = cap;
	return 0;
}

int
accept_dgram_batch(const struct config *cfg, struct dgbatch **b)
{
	size_t cap = (size_t)cfg->session.max_line_length + 3;

	if (!(*b = dgbatch_new(cap, dgram_reply_cap(cap))) && errno != ERANGE)
		return -ENOMEM;
	return 0;
}
