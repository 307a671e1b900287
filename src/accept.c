/*
 * accept.c - admission (see accept.h): arming the listeners, accepting
 * stream connections, and the configuration; datagrams are in
 * accept_dgram.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept_impl.h"
#include "acl.h"
#include "clock.h"
#include "dgbatch.h"
#include "log.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up, for fairness */
#define RATELIMIT_SLOTS	4096	/* source buckets, fixed */
#define PAUSE_MS	100	/* out of descriptors: accepting waits */
#define ERROR_LOG_MS	10000	/* and says so at most this often */

/* ---- arming ---- */

size_t
accept_capacity(const struct acceptor *a)
{
	if (a->model->one_at_a_time)
		return 1;
	return (size_t)a->cfg->concurrency.max_connections;
}

/*
 * No room for another connection: accept_capacity() sessions run, or with the
 * connections waiting for a PROXY header (they hold descriptors, and a
 * session is coming for each) max_connections are open.  The waiting
 * ones do not count in the sequential model's one session: a client
 * slow to send its header must not hold up the next.
 */
static bool
no_room(const struct acceptor *a)
{
	size_t n = a->env->conns->n;

	return n >= accept_capacity(a) || n + proxywait_count(&a->pw) >=
	    (size_t)a->cfg->concurrency.max_connections;
}

void
accept_arm(struct acceptor *a)
{
	bool full = no_room(a);
	bool reject = a->cfg->concurrency.overflow == OVERFLOW_REJECT &&
	    !a->model->one_at_a_time;

	listenset_arm(a->ls, !a->paused && (!full || reject),
	    a->model->dgram_in_loop || !full || reject);
}

void
accept_resume(void *arg)
{
	struct acceptor *a = arg;

	a->paused = false;
	loop_timer_set(&a->pause, 0);
	proxywait_retry(&a->pw);
	accept_arm(a);
}

static void
pause_due(struct loop_timer *t, uint64_t now)
{
	struct acceptor *a = t->data;

	a->paused = false;
	accept_arm(a);
}

/*
 * Out of descriptors or memory: the connection stays in the backlog and
 * the socket stays readable.  Stop watching it for a moment instead of
 * spinning, and say so once in a while.
 */
static void
pause_accepting(struct acceptor *a, struct lsock *s, int e)
{
	uint64_t now = clock_ms();

	if (a->error_logged_ms == 0 || now - a->error_logged_ms >=
	    ERROR_LOG_MS) {
		log_msg(LOG_WARNING, "accept on %s: %s; pausing accepts (%zu "
		    "sessions)", lsock_label(s), strerror(e),
		    a->env->conns->n);
		a->error_logged_ms = now;
	}
	a->paused = true;
	loop_timer_set(&a->pause, now + PAUSE_MS);
	accept_arm(a);
}

/* ---- streams ---- */

void
accept_source_of(const struct acceptor *a, const struct sockaddr *sa,
    uint32_t uid, struct netaddr_source *src)
{
	netaddr_source(sa, uid, (unsigned)a->cfg->source_prefix_v4,
	    (unsigned)a->cfg->source_prefix_v6, src);
}

struct conn *
accept_new_conn(struct acceptor *a, struct lsock *s)
{
	return conn_new(a->env->conns, s->stats_slot,
	    transport_name(s->l->conf.transport), lsock_label(s),
	    (size_t)a->cfg->session.max_line_length,
	    a->cfg->session.idle_timeout);
}

/*
 * Turn a connection away: count it, send err as its last line (none for
 * -1: the access lists answer nothing), close it, free c (may be NULL).
 */
static void
turn_away(int fd, struct conn *c, _Atomic uint64_t *counter, int err)
{
	char msg[LP_ERROR_MAX];

	atomic_fetch_add(counter, 1);
	if (err >= 0)
		(void)!send(fd, msg, lp_format_error(msg, (enum lp_error)err,
		    0), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	if (c) {
		c->own_fd = false;
		conn_free(c);
	}
}

/* The connection's peer, its credentials (Unix) and its source. */
static void
identify(struct acceptor *a, struct conn *c, const struct sockaddr_storage *ss,
    socklen_t sslen)
{
	struct ucred uc = { 0, 0, 0 };

	c->peer = *ss;
	c->peerlen = sslen;
	netaddr_format((struct sockaddr *)ss, sslen, c->peerstr,
	    sizeof(c->peerstr));
	if (ss->ss_family == AF_UNIX) {
		conn_peer_cred(c, &uc);
		if (strcmp(c->peerstr, "unix:unnamed") == 0)
			snprintf(c->peerstr, sizeof(c->peerstr), "unix:pid=%d",
			    (int)uc.pid);
	}
	accept_source_of(a, (struct sockaddr *)ss, uc.uid, &c->src);
}

/* No room: "ERROR server busy". */
static void
refuse_busy(struct acceptor *a, struct conn *c, const struct log_fields *f)
{
	log_fields(LOG_NOTICE, f, "rejected connection from %s on %s: %zu "
	    "sessions, server busy", c->peerstr, c->lname, a->env->conns->n);
	turn_away(c->fd, c, &conn_stats(c)->rejects, LP_ERR_BUSY);
}

/*
 * The access lists, the capacity, the per-source cap: 1 = serve, 0 = c
 * was turned away.  With may_park (after a PROXY header), no room is
 * -EBUSY under overflow "wait" and in a one-at-a-time model, and c stays
 * the caller's: it waits as it would have in the backlog.
 */
static int
admit_stream(struct acceptor *a, struct conn *c, bool may_park)
{
	const struct config *cfg = a->cfg;
	struct acl acl = config_acl(cfg);
	struct lstats *st = conn_stats(c);
	struct log_fields f = LOG_FIELDS_INIT;
	int cap = cfg->concurrency.max_connections_per_source;
	char src[CIDR_STRLEN];

	conn_log_fields(c, &f);
	if (!acl_permits(&acl, (struct sockaddr *)&c->peer)) {
		log_fields(LOG_NOTICE, &f, "refused connection from %s on %s: "
		    "denied by access list", c->peerstr, c->lname);
		turn_away(c->fd, c, &st->refused, -1);
		return 0;
	}
	if (no_room(a)) {
		if (may_park && (cfg->concurrency.overflow == OVERFLOW_WAIT ||
		    a->model->one_at_a_time))
			return -EBUSY;
		refuse_busy(a, c, &f);
		return 0;
	}
	if (cap > 0 && conns_count_source(a->env->conns, &c->src) >=
	    (size_t)cap) {
		netaddr_source_format(&c->src, src, sizeof(src));
		log_fields(LOG_NOTICE, &f, "rejected connection from %s on "
		    "%s: per-source limit of %d reached for source %s",
		    c->peerstr, c->lname, cap, src);
		turn_away(c->fd, c, &st->rejects, LP_ERR_PER_SOURCE);
		return 0;
	}
	return 1;
}

/* Start c's session with the model, early[0..nearly) its first input. */
static void
start_stream(struct acceptor *a, struct conn *c, const char *early,
    size_t nearly)
{
	struct lstats *st = conn_stats(c);
	struct log_fields f = LOG_FIELDS_INIT;
	bool via = c->proxystr[0] && !c->proxy_note;
	int r;

	session_init(&c->sess, c->fd, c->max_line, c->idle_timeout);
	c->sess.line_counter = &st->lines;
	c->sess.peer = c->peerstr;
	conn_log_fields(c, &f);
	if ((r = session_prime(&c->sess, early, nearly)) == 0) {
		atomic_fetch_add(&st->sessions, 1);
		log_fields(c->quiet ? LOG_DEBUG : LOG_INFO, &f, "connection "
		    "from %s%s%s on %s (%s, %s model%s%s)%s%s", c->peerstr,
		    via ? " via proxy " : "", via ? c->proxystr : "",
		    c->lname, c->transport, model_name(a->model->id),
		    c->proxy_note ? ", " : "",
		    c->proxy_note ? c->proxy_note : "", !c->cred[0] ? "" :
		    c->proxystr[0] ? ", proxy " : ", peer ", c->cred);
		conns_add(a->env->conns, c);
		/* Once started, the model owns c: it may have ended already. */
		if ((r = a->model->stream(a->env, c)) == 0)
			return;
		conns_remove(a->env->conns, c);
	}
	log_fields(LOG_ERR, &f, "cannot start a session for %s: %s",
	    c->peerstr, strerror(-r));
	turn_away(c->fd, c, &st->rejects, LP_ERR_BUSY);
}

/* SPEC 9: on a proxy_protocol listener the header comes first, and only
 * from a trusted proxy. */
static void
await_header(struct acceptor *a, struct lsock *s, struct conn *c)
{
	struct log_fields f = LOG_FIELDS_INIT;

	conn_log_fields(c, &f);
	if (!proxywait_trusts(&s->l->conf, (struct sockaddr *)&c->peer)) {
		log_fields(LOG_NOTICE, &f, "refused connection from %s on %s: "
		    "not a trusted proxy (proxy_from)", c->peerstr, c->lname);
		turn_away(c->fd, c, &conn_stats(c)->refused, -1);
	} else if (no_room(a))
		refuse_busy(a, c, &f);
	else
		proxywait_add(&a->pw, c, &s->l->conf);
}

static void
accept_one(struct acceptor *a, struct lsock *s, int fd,
    const struct sockaddr_storage *ss, socklen_t sslen)
{
	struct conn *c;

	if (!(c = accept_new_conn(a, s))) {
		turn_away(fd, NULL, &stats_of(a->ls->stats,
		    s->stats_slot)->rejects, LP_ERR_BUSY);
		return;
	}
	c->fd = fd;
	c->own_fd = true;
	identify(a, c, ss, sslen);
	if (s->l->conf.proxy_protocol != PROXY_OFF)
		await_header(a, s, c);
	else if (admit_stream(a, c, false) > 0)
		start_stream(a, c, NULL, 0);
}

/*
 * proxywait.c's hooks.  A header is complete: c->peer is the client it
 * named, whose source counts (under the prefixes of now: it may have
 * waited across a reload); a unix peer keeps the one its uid gave.
 */
static int
proxied_admit(void *arg, struct conn *c, const char *early, size_t n)
{
	struct acceptor *a = arg;
	int r;

	if (c->peer.ss_family != AF_UNIX)
		accept_source_of(a, (struct sockaddr *)&c->peer, 0, &c->src);
	if ((r = admit_stream(a, c, true)) == -EBUSY)
		return r;
	if (r > 0)
		start_stream(a, c, early, n);
	accept_arm(a);
	return 0;
}

static void
proxied_drop(void *arg, struct conn *c, bool bad_header)
{
	struct acceptor *a = arg;

	if (bad_header)
		atomic_fetch_add(&conn_stats(c)->bad_headers, 1);
	conn_free(c);
	if (bad_header)
		accept_arm(a);
}

static const struct proxywait_ops proxied_ops = {
	.admit = proxied_admit,
	.drop = proxied_drop,
};

static void
accept_streams(struct acceptor *a, struct lsock *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH && s->io.events; i++) {
		len = sizeof(ss);
		fd = accept4(s->l->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				pause_accepting(a, s, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_msg(LOG_WARNING, "accept on %s: %s",
				    lsock_label(s), strerror(errno));
			return;
		}
		accept_one(a, s, fd, &ss, len);
		accept_arm(a);
	}
}

void
accept_ready(struct lsock *s, void *arg)
{
	if (s->l->socktype == SOCK_DGRAM)
		accept_dgrams(arg, s);
	else
		accept_streams(arg, s);
}

/* ---- configuration ---- */

static struct ratelimit *
ratelimit_for(const struct config *cfg)
{
	return ratelimit_new((unsigned)cfg->datagram.rate_limit,
	    (unsigned)cfg->datagram.rate_burst, RATELIMIT_SLOTS);
}

int
accept_init(struct acceptor *a, const struct config *cfg,
    const struct model_ops *model, const struct model_env *env,
    struct listenset *ls)
{
	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->model = model;
	a->env = env;
	a->ls = ls;
	loop_timer_add(env->loop, &a->pause, pause_due, a);
	proxywait_init(&a->pw, env->loop, &proxied_ops, a);
	if (accept_dgram_buffers(a, cfg) < 0 ||
	    accept_dgram_batch(cfg, &a->batch) < 0 ||
	    (cfg->datagram.rate_limit > 0 && !(a->rl = ratelimit_for(cfg))))
		return -ENOMEM;
	accept_own_dgram_ports(a);
	return 0;
}

void
accept_fini(struct acceptor *a)
{
	proxywait_fini(&a->pw);
	ratelimit_free(a->rl);
	free(a->dgbuf);
	free(a->dgout);
	dgbatch_free(a->batch);
	a->batch = NULL;
	free(a->bad_ports);
	a->rl = NULL;
	a->dgbuf = a->dgout = NULL;
	a->bad_ports = NULL;
}

/*
 * The rate limiter is made before anything changes (a failure must not
 * leave datagrams unlimited) and kept, buckets and all, when its settings
 * did not change.  Its buckets are keyed by source, so new source
 * prefixes need new buckets too.
 */
int
accept_reload_prepare(struct acceptor *a, const struct config *cfg,
    struct accept_reload *rl)
{
	const struct config *old = a->cfg;

	rl->prefix_changed = cfg->source_prefix_v4 != old->source_prefix_v4 ||
	    cfg->source_prefix_v6 != old->source_prefix_v6;
	rl->rl_changed = cfg->datagram.rate_limit !=
	    old->datagram.rate_limit ||
	    cfg->datagram.rate_burst != old->datagram.rate_burst ||
	    rl->prefix_changed;
	rl->rl = NULL;
	rl->batch_changed = cfg->session.max_line_length !=
	    old->session.max_line_length;
	rl->batch = NULL;
	if (rl->rl_changed && cfg->datagram.rate_limit > 0 &&
	    !(rl->rl = ratelimit_for(cfg)))
		return -ENOMEM;
	if ((rl->batch_changed && accept_dgram_batch(cfg, &rl->batch) < 0) ||
	    accept_dgram_buffers(a, cfg) < 0) {
		accept_reload_cancel(rl);
		return -ENOMEM;
	}
	return 0;
}

void
accept_reload_cancel(struct accept_reload *rl)
{
	ratelimit_free(rl->rl);
	dgbatch_free(rl->batch);
	rl->rl = NULL;
	rl->batch = NULL;
}

void
accept_reload_commit(struct acceptor *a, const struct config *cfg,
    const struct model_ops *model, struct accept_reload *rl)
{
	a->cfg = cfg;
	a->model = model;
	if (rl->rl_changed) {
		ratelimit_free(a->rl);
		a->rl = rl->rl;
		rl->rl = NULL;
	}
	if (rl->batch_changed) {
		dgbatch_free(a->batch);
		a->batch = rl->batch;
		rl->batch = NULL;
	}
	if (rl->prefix_changed)
		conns_rekey(a->env->conns, (unsigned)cfg->source_prefix_v4,
		    (unsigned)cfg->source_prefix_v6);
	accept_own_dgram_ports(a);
}
