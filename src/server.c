/*
 * server.c - the server loop (socketserver's serve_forever made explicit).
 *
 * One epoll loop watches the listeners, a signalfd (SIGHUP reload,
 * SIGTERM/SIGINT stop, SIGUSR1 statistics, SIGCHLD reap), an eventfd on
 * which worker threads report finished sessions, and the sessions that run
 * inside the loop (sequential and event models).  Limits are enforced by
 * not watching the listeners (overflow "wait") or by answering
 * "ERROR server busy" (overflow "reject").
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "acl.h"
#include "clock.h"
#include "dgcheck.h"
#include "listenset.h"
#include "log.h"
#include "model.h"
#include "notify.h"
#include "ratelimit.h"
#include "server.h"
#include "stats.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up, for fairness */
#define DGRAM_BATCH	64	/* datagrams per wake-up */
#define EPOLL_BATCH	256
#define TICK_MS		1000	/* idle timeouts, lingering, STATUS */
#define RATELIMIT_SLOTS	4096	/* source buckets, fixed */
#define HARD_STOP_GRACE_MS 3000	/* after the shutdown error, then SIGKILL */

struct server {
	struct config	*cfg;
	const struct model_ops *model;
	struct listenset ls;

	struct loop	*loop;
	int		 sigfd;
	struct loop_io	 sig_io;

	struct conns	 conns;		/* every running session */
	struct connloop	 main;		/* sessions the main loop drives */
	struct model_env env;

	struct stats	 stats;

	struct ratelimit *rl;
	char		*dgbuf;		/* one datagram */
	size_t		 dgcap;
	char		*dgout;		/* one datagram reply */
	int		*bad_ports;	/* configured + own datagram ports */
	size_t		 nbad_ports;

	bool		 stopping;
	bool		 hard_stop;
	bool		 kill_now;	/* the grace after stop_hard is over */
	bool		 accept_paused;	/* EMFILE back-off */
	uint64_t	 accept_error_logged_ms;
	uint64_t	 watchdog_ms;	/* interval, 0 = none */
	struct loop_timer watchdog;
	struct loop_timer tick;
	struct loop_timer accept_pause;
	struct loop_timer stop_deadline;
	struct loop_timer kill_deadline;
	char		 reload_error[512];
	int		 forced_level;	/* -l on the command line, or -1 */
	int		 child_close_fd; /* main's pidfile: children close it */
};

static int
srv_log_level(const struct server *srv)
{
	return srv->forced_level >= 0 ? srv->forced_level :
	    srv->cfg->log.level;
}

static void	update_arming(struct server *srv);

/* ---- statistics ---- */

/* The STATUS text; with detail, the SIGUSR1 statistics line. */
static void
status_text(struct server *srv, char *buf, size_t len, bool detail)
{
	struct stats_status ss = {
		.reload_error = srv->reload_error,
		.model = model_name(srv->cfg->concurrency.model),
		.active = srv->conns.n,
		.next = listenset_next,
		.arg = &srv->ls,
	};

	stats_text(&srv->stats, &ss, detail, buf, len);
}

/* SIGUSR1: one line with the totals, then each listener's figures. */
static void
log_statistics(struct server *srv)
{
	char buf[4096];

	status_text(srv, buf, sizeof(buf), true);
	log_msg(LOG_INFO, "statistics: %s", buf);
}

static void
update_status(struct server *srv)
{
	char buf[2048];

	if (!notify_enabled())	/* once a second: skip the formatting too */
		return;
	status_text(srv, buf, sizeof(buf), false);
	notify_status(buf);
}

/* ---- listeners ---- */

static void
own_dgram_ports(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct lsock *s;
	size_t n = cfg->datagram.ndeny_source_ports, i = 0;
	int *p;

	for (s = srv->ls.head; s; s = s->next)
		n++;
	if (!(p = calloc(n ? n : 1, sizeof(*p))))
		return;		/* keep the previous list */
	for (; i < cfg->datagram.ndeny_source_ports; i++)
		p[i] = cfg->datagram.deny_source_ports[i];
	/* Never answer our own datagram ports: no loops between daemons. */
	for (s = srv->ls.head; s; s = s->next)
		if (s->l->socktype == SOCK_DGRAM && s->l->port > 0)
			p[i++] = s->l->port;
	free(srv->bad_ports);
	srv->bad_ports = p;
	srv->nbad_ports = i;
}

static int
dgram_buffers_for(struct server *srv, const struct config *cfg)
{
	size_t cap = (size_t)cfg->session.max_line_length + 3;
	char *in, *out;

	if (cap <= srv->dgcap)
		return 0;
	in = realloc(srv->dgbuf, cap);
	if (in)
		srv->dgbuf = in;
	out = realloc(srv->dgout, dgram_reply_cap(cap));
	if (out)
		srv->dgout = out;
	if (!in || !out)
		return -ENOMEM;
	srv->dgcap = cap;
	return 0;
}

/* ---- connections ---- */

static struct conn *
new_conn(struct server *srv, struct lsock *s)
{
	return conn_new(&srv->conns, s->stats_slot,
	    transport_name(s->l->conf.transport), lsock_label(s),
	    (size_t)srv->cfg->session.max_line_length,
	    srv->cfg->session.idle_timeout);
}

/* What the models get from the configuration (at start, at reload). */
static void
model_env_update(struct server *srv)
{
	srv->env.thread_stack =
	    (size_t)srv->cfg->concurrency.thread_stack_kib * 1024;
	srv->env.workers = (unsigned)srv->cfg->concurrency.workers;
}

/* A conn left the set: a descriptor is free again, accept may resume. */
static void
conn_finished(void *arg)
{
	struct server *srv = arg;

	srv->accept_paused = false;
	loop_timer_set(&srv->accept_pause, 0);
	update_arming(srv);
}

/* In a forked child: close every fd of the parent but keep. */
static void
child_close(void *arg, int keep)
{
	struct server *srv = arg;
	struct conn *c;

	close(loop_fd(srv->loop));
	close(srv->sigfd);
	close(srv->conns.done.fd);
	close(srv->conns.stop_fd);
	model_child_cleanup();
	/* Only close: writing to the parent's structures would cost the
	 * child a copy-on-write page fault. */
	listenset_close_in_child(&srv->ls, keep);
	/* Every other session's socket: loop sessions, thread sessions and
	 * the thread model's duplicated datagram sockets. */
	for (c = srv->conns.head; c; c = c->next)
		if (c->own_fd && c->fd >= 0 && c->fd != keep)
			close(c->fd);
	if (srv->child_close_fd >= 0)
		close(srv->child_close_fd);
}

void
server_close_in_children(struct server *srv, int fd)
{
	srv->child_close_fd = fd;
}

/* A session of the main loop ended. */
static void
main_ended(struct conn *c, void *arg)
{
	conn_ended(c);
	conns_finish(c->set, c);
}

/* ---- accepting ---- */

static size_t
capacity(const struct server *srv)
{
	if (srv->model->one_at_a_time)
		return 1;
	return (size_t)srv->cfg->concurrency.max_connections;
}

static void
update_arming(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	bool full = srv->conns.n >= capacity(srv);
	bool reject = cfg->concurrency.overflow == OVERFLOW_REJECT &&
	    !srv->model->one_at_a_time;

	listenset_arm(&srv->ls, !srv->accept_paused && (!full || reject),
	    srv->model->dgram_in_loop || !full || reject);
}

/* The source a peer counts as under the current source_prefix_v4/_v6. */
static void
source_of(const struct server *srv, const struct sockaddr *sa, uint32_t uid,
    struct netaddr_source *src)
{
	netaddr_source(sa, uid, (unsigned)srv->cfg->source_prefix_v4,
	    (unsigned)srv->cfg->source_prefix_v6, src);
}

/* Best effort: one error line to a client we will not serve. */
static void
refuse(int fd, enum lp_error err, const char *text)
{
	char msg[LP_ERROR_MAX];
	size_t n = text ? strlen(text) : lp_format_error(msg, err, 0);

	(void)!send(fd, text ? text : msg, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void
accept_one(struct server *srv, struct lsock *s, int fd,
    struct sockaddr_storage *ss, socklen_t sslen)
{
	const struct config *cfg = srv->cfg;
	struct acl acl = config_acl(cfg);
	struct lstats *st = stats_of(&srv->stats, s->stats_slot);
	struct log_fields f = LOG_FIELDS_INIT;
	struct ucred uc = { 0, 0, 0 };
	struct conn *c;
	int r;

	if (!(c = new_conn(srv, s))) {
		refuse(fd, LP_ERR_BUSY, NULL);
		atomic_fetch_add(&st->rejects, 1);
		return;
	}
	c->fd = fd;
	c->own_fd = true;
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
	source_of(srv, (struct sockaddr *)ss, uc.uid, &c->src);
	conn_log_fields(c, &f);

	if (!acl_permits(&acl, (struct sockaddr *)ss)) {
		atomic_fetch_add(&st->refused, 1);
		log_fields(LOG_NOTICE, &f, "refused connection from %s on %s: "
		    "denied by access list", c->peerstr, c->lname);
		conn_free(c);
		return;
	}
	if (srv->conns.n >= capacity(srv)) {
		atomic_fetch_add(&st->rejects, 1);
		log_fields(LOG_NOTICE, &f, "rejected connection from %s on "
		    "%s: %zu sessions, server busy", c->peerstr, c->lname,
		    srv->conns.n);
		c->own_fd = false;
		refuse(fd, LP_ERR_BUSY, NULL);
		conn_free(c);
		return;
	}
	if (cfg->concurrency.max_connections_per_source > 0 &&
	    conns_count_source(&srv->conns, &c->src) >=
	    (size_t)cfg->concurrency.max_connections_per_source) {
		char src[CIDR_STRLEN];

		netaddr_source_format(&c->src, src, sizeof(src));
		atomic_fetch_add(&st->rejects, 1);
		log_fields(LOG_NOTICE, &f, "rejected connection from %s on "
		    "%s: per-source limit of %d reached for source %s",
		    c->peerstr, c->lname,
		    cfg->concurrency.max_connections_per_source, src);
		c->own_fd = false;
		refuse(fd, 0, "ERROR too many connections from your address\n");
		conn_free(c);
		return;
	}
	session_init(&c->sess, fd, c->max_line, c->idle_timeout);
	c->sess.line_counter = &st->lines;
	c->sess.peer = c->peerstr;
	atomic_fetch_add(&st->sessions, 1);
	log_fields(LOG_INFO, &f, "connection from %s on %s (%s, %s model)%s%s",
	    c->peerstr, c->lname, c->transport,
	    model_name(srv->model->id), c->cred[0] ? ", peer " : "", c->cred);
	conns_add(&srv->conns, c);
	/* Once started, the model owns c: it may even have ended already. */
	r = srv->model->stream(&srv->env, c);
	if (r < 0) {
		log_fields(LOG_ERR, &f, "cannot start a session for %s: %s",
		    c->peerstr, strerror(-r));
		atomic_fetch_add(&st->rejects, 1);
		conns_remove(&srv->conns, c);
		c->own_fd = false;
		session_free(&c->sess);
		refuse(fd, LP_ERR_BUSY, NULL);
		conn_free(c);
	}
}

static void
accept_ready(struct server *srv, struct lsock *s)
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
			    errno == ENOBUFS || errno == ENOMEM) {
				/*
				 * The connection stays in the backlog and the
				 * listener stays readable: stop watching it for
				 * a moment instead of spinning, and say so once.
				 */
				uint64_t now = clock_ms();

				if (srv->accept_error_logged_ms == 0 ||
				    now - srv->accept_error_logged_ms >= 10000) {
					log_msg(LOG_WARNING, "accept on %s: %s; "
					    "pausing accepts (%zu sessions)",
					    lsock_label(s), strerror(errno),
					    srv->conns.n);
					srv->accept_error_logged_ms = now;
				}
				srv->accept_paused = true;
				loop_timer_set(&srv->accept_pause, now + 100);
				update_arming(srv);
				return;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_msg(LOG_WARNING, "accept on %s: %s",
				    lsock_label(s), strerror(errno));
			return;
		}
		accept_one(srv, s, fd, &ss, len);
		update_arming(srv);
	}
}

/* Checks shared by every model: access list, loops, rate.  true = serve. */
static bool
dgram_admit(struct server *srv, struct lsock *s, struct conn *c,
    uint64_t now_ns)
{
	const struct config *cfg = srv->cfg;
	struct acl acl = config_acl(cfg);
	struct lstats *st = stats_of(&srv->stats, s->stats_slot);
	struct netaddr_source src;
	enum dg_verdict v;

	/* Linux gives an unbound Unix sender's address as length 0 (older
	 * kernels: the family alone). */
	if (c->peerlen < sizeof(sa_family_t) ||
	    (c->peer.ss_family == AF_UNIX &&
	    c->peerlen <= offsetof(struct sockaddr_un, sun_path))) {
		atomic_fetch_add(&st->dropped, 1);
		log_msg(LOG_DEBUG, "datagram on %s from an unbound Unix socket: "
		    "no address to answer, dropped", c->lname);
		return false;
	}
	if (!acl_permits(&acl, (struct sockaddr *)&c->peer)) {
		atomic_fetch_add(&st->refused, 1);
		log_msg(LOG_DEBUG, "datagram from %s on %s denied by access "
		    "list", c->peerstr, c->lname);
		return false;
	}
	v = dg_check_source((struct sockaddr *)&c->peer, srv->bad_ports,
	    srv->nbad_ports);
	if (v != DG_OK) {
		atomic_fetch_add(&st->dropped, 1);
		log_msg(LOG_DEBUG, "datagram from %s on %s dropped: %s",
		    c->peerstr, c->lname, dg_verdict_name(v));
		return false;
	}
	if (!srv->rl || c->peer.ss_family == AF_UNIX)
		return true;
	source_of(srv, (struct sockaddr *)&c->peer, 0, &src);
	if (!ratelimit_allow(srv->rl, &src, sizeof(src), now_ns)) {
		atomic_fetch_add(&st->dropped, 1);
		if (log_enabled(LOG_DEBUG)) {
			char text[CIDR_STRLEN];

			netaddr_source_format(&src, text, sizeof(text));
			log_msg(LOG_DEBUG, "datagram from %s on %s dropped: "
			    "rate limit of source %s", c->peerstr, c->lname,
			    text);
		}
		return false;
	}
	return true;
}

static void
dgram_ready(struct server *srv, struct lsock *s)
{
	struct lstats *st = stats_of(&srv->stats, s->stats_slot);
	struct conn tmp, *c;
	ssize_t n;
	int i, r;

	for (i = 0; i < DGRAM_BATCH && s->io.events; i++) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.peerlen = sizeof(tmp.peer);
		n = dgpeer_recv(s->l->fd, srv->dgbuf, srv->dgcap,
		    MSG_DONTWAIT | MSG_TRUNC, &tmp.peer, &tmp.peerlen,
		    &tmp.dgcred);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n != -EAGAIN && n != -EWOULDBLOCK)
				log_msg(LOG_WARNING, "recvmsg on %s: %s",
				    lsock_label(s), strerror((int)-n));
			return;
		}
		if (!(c = new_conn(srv, s)))
			return;
		c->dgram = true;
		c->peer = tmp.peer;
		c->peerlen = tmp.peerlen;
		c->dgcred = tmp.dgcred;
		netaddr_format((struct sockaddr *)&c->peer, c->peerlen,
		    c->peerstr, sizeof(c->peerstr));
		if (!dgram_admit(srv, s, c, clock_ns())) {
			conn_free(c);
			continue;
		}
		/*
		 * MSG_TRUNC reports the real length; we keep what fits.  The
		 * buffer holds max_line + 3 bytes, so a cut datagram is still
		 * seen as too long after LF / CR LF stripping.
		 */
		c->datalen = (size_t)n < srv->dgcap ? (size_t)n : srv->dgcap;
		c->fd = s->l->fd;
		atomic_fetch_add(&st->sessions, 1);
		if (srv->model->dgram_in_loop) {
			c->data = srv->dgbuf;
			conn_answer_dgram(c, srv->dgout);
			c->data = NULL;
			conn_free(c);
			continue;
		}
		if (srv->conns.n >= capacity(srv)) {
			/* overflow = "reject": say so, without a session. */
			char msg[LP_ERROR_MAX];
			size_t m = lp_format_error(msg, LP_ERR_BUSY, 0);

			if (conn_send_dgram(c, msg, m))
				atomic_fetch_add(&st->rejects, 1);
			conn_free(c);
			continue;
		}
		if (!(c->data = malloc(c->datalen ? c->datalen : 1))) {
			conn_free(c);
			continue;
		}
		memcpy(c->data, srv->dgbuf, c->datalen);
		conns_add(&srv->conns, c);
		r = srv->model->dgram(&srv->env, c);
		if (r < 0) {
			log_msg(LOG_ERR, "cannot answer datagram from %s: %s",
			    c->peerstr, strerror(-r));
			conns_remove(&srv->conns, c);
			conn_free(c);
		}
		update_arming(srv);
	}
}

static void
listener_ready(struct lsock *s, void *arg)
{
	struct server *srv = arg;

	if (s->l->socktype == SOCK_DGRAM)
		dgram_ready(srv, s);
	else
		accept_ready(srv, s);
}

/* ---- reload ---- */

static void
reload(struct server *srv)
{
	const char *path = srv->cfg->file;
	struct config *cfg = NULL, *old = srv->cfg;
	char err[LISTENER_ERRLEN], *errs = NULL, *nl;
	struct ratelimit *rl;
	bool rl_changed, prefix_changed;
	int r;

	notify_reloading();
	if (!path) {
		/* Started on the built-in defaults: the file may exist now. */
		r = config_load(CONFIG_DEFAULT_PATH, &cfg, &errs);
		if (r == -ENOENT) {
			free(errs);
			errs = NULL;
			r = (cfg = config_default()) ? 0 : -ENOMEM;
		}
		log_msg(LOG_INFO, "reloading %s", cfg && cfg->file ?
		    cfg->file : "(built-in defaults)");
	} else {
		log_msg(LOG_INFO, "reloading %s", path);
		r = config_load(path, &cfg, &errs);
	}
	if (r < 0) {
		if (errs) {
			for (char *p = errs; *p; p = nl + 1) {
				if (!(nl = strchr(p, '\n')))
					nl = p + strlen(p) - 1;
				log_msg(LOG_ERR, "%.*s", (int)(nl - p + (*nl !=
				    '\n')), p);
			}
			nl = strchr(errs, '\n');
			snprintf(srv->reload_error, sizeof(srv->reload_error),
			    "%.*s%s", nl ? (int)(nl - errs) : (int)strlen(errs),
			    errs, nl && nl[1] ? " (and more)" : "");
		} else
			snprintf(srv->reload_error, sizeof(srv->reload_error),
			    "%s", strerror(-r));
		log_msg(LOG_ERR, "reload failed; the old configuration keeps "
		    "serving");
		free(errs);
		goto done;
	}
	/*
	 * The rate limiter is made before anything changes (a failure must
	 * not leave datagrams unlimited) and kept, buckets and all, when its
	 * settings did not change.  Its buckets are keyed by source, so new
	 * source prefixes need new buckets too.
	 */
	prefix_changed = cfg->source_prefix_v4 != old->source_prefix_v4 ||
	    cfg->source_prefix_v6 != old->source_prefix_v6;
	rl_changed = cfg->datagram.rate_limit != old->datagram.rate_limit ||
	    cfg->datagram.rate_burst != old->datagram.rate_burst ||
	    prefix_changed;
	rl = rl_changed ? NULL : srv->rl;
	if ((rl_changed && cfg->datagram.rate_limit > 0 &&
	    !(rl = ratelimit_new((unsigned)cfg->datagram.rate_limit,
	    (unsigned)cfg->datagram.rate_burst, RATELIMIT_SLOTS))) ||
	    dgram_buffers_for(srv, cfg) < 0 ||
	    (r = listenset_merge(&srv->ls, cfg, err, sizeof(err))) < 0) {
		if (rl_changed)
			ratelimit_free(rl);
		snprintf(srv->reload_error, sizeof(srv->reload_error), "%s",
		    r < 0 ? err : strerror(ENOMEM));
		log_msg(LOG_ERR, "reload failed: %s; the old configuration "
		    "keeps serving", srv->reload_error);
		config_free(cfg);
		goto done;
	}
	if (strcmp(cfg->user, old->user) != 0 ||
	    strcmp(cfg->group, old->group) != 0)
		log_msg(LOG_WARNING, "user and group changes take effect only "
		    "at restart");
	srv->cfg = cfg;
	srv->model = model_get(cfg->concurrency.model);
	model_env_update(srv);
	loop_busy_poll(srv->loop, cfg->concurrency.busy_poll);
	if (rl_changed) {
		ratelimit_free(srv->rl);
		srv->rl = rl;
	}
	if (prefix_changed)
		conns_rekey(&srv->conns, (unsigned)cfg->source_prefix_v4,
		    (unsigned)cfg->source_prefix_v6);
	own_dgram_ports(srv);
	log_open(cfg->log.target, srv_log_level(srv));
	config_free(old);
	srv->reload_error[0] = '\0';
	log_msg(LOG_NOTICE, "configuration reloaded: %s model, %zu listeners",
	    model_name(cfg->concurrency.model), cfg->nlisten);
done:
	update_arming(srv);
	{
		char buf[2048];

		status_text(srv, buf, sizeof(buf), false);
		notify_ready(buf);
	}
}

/* ---- stopping ---- */

static void
begin_stop(struct server *srv, const char *why)
{
	srv->stopping = true;
	notify_stopping();
	log_msg(LOG_NOTICE, "%s: stopping; %zu sessions get %d s to finish",
	    why, srv->conns.n, srv->cfg->shutdown_timeout);
	/*
	 * Close the listeners now: a unit's or the fd store's copy keeps the
	 * socket (and its backlog) for the next start; our files go away.
	 */
	listenset_close(&srv->ls);
	loop_busy_poll(srv->loop, 0);
	loop_timer_set(&srv->stop_deadline, clock_ms() +
	    (uint64_t)srv->cfg->shutdown_timeout * 1000);
}

/* Time is up: every session gets "ERROR server shutting down". */
static void
stop_hard(struct server *srv)
{
	if (srv->hard_stop)
		return;
	srv->hard_stop = true;
	if (srv->conns.n > 0)
		log_msg(LOG_NOTICE, "closing %zu remaining sessions",
		    srv->conns.n);
	/* Sessions in loops and threads watch the stop fd. */
	conns_stop(&srv->conns);
	model_stop(&srv->env);
	loop_timer_set(&srv->stop_deadline, 0);
	loop_timer_set(&srv->kill_deadline, clock_ms() + HARD_STOP_GRACE_MS);
}

static void
signal_ready(struct loop_io *io, uint32_t revents)
{
	struct server *srv = io->data;
	struct signalfd_siginfo si;

	while (read(srv->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			if (!srv->stopping)
				reload(srv);
			break;
		case SIGTERM:
		case SIGINT:
			if (!srv->stopping)
				begin_stop(srv, strsignal((int)si.ssi_signo));
			else {
				log_msg(LOG_NOTICE, "second %s: stopping now",
				    strsignal((int)si.ssi_signo));
				stop_hard(srv);
			}
			break;
		case SIGUSR1:
			log_statistics(srv);
			break;
		case SIGCHLD:
			model_reap(&srv->env);
			break;
		}
	}
}

static void
watchdog_due(struct loop_timer *t, uint64_t now)
{
	struct server *srv = t->data;

	/* Only a loop that gets here is healthy enough to pet it. */
	notify_watchdog();
	loop_timer_set(t, now + srv->watchdog_ms);
}

static void
tick_due(struct loop_timer *t, uint64_t now)
{
	struct server *srv = t->data;

	if (!srv->stopping)
		update_status(srv);
	loop_timer_set(t, now + TICK_MS);
}

static void
accept_pause_due(struct loop_timer *t, uint64_t now)
{
	struct server *srv = t->data;

	srv->accept_paused = false;
	update_arming(srv);
}

static void
stop_deadline_due(struct loop_timer *t, uint64_t now)
{
	stop_hard(t->data);
}

static void
kill_deadline_due(struct loop_timer *t, uint64_t now)
{
	struct server *srv = t->data;

	srv->kill_now = true;
}

int
server_run(struct server *srv)
{
	int n;

	update_arming(srv);
	{
		char buf[2048];

		status_text(srv, buf, sizeof(buf), false);
		notify_ready(buf);
		log_msg(LOG_NOTICE, "ready: %s", buf);
	}
	for (;;) {
		if (srv->stopping && srv->conns.n == 0)
			break;
		if (srv->kill_now) {
			log_msg(LOG_WARNING, "%zu sessions did not end in time; "
			    "exiting anyway", srv->conns.n);
			model_kill(&srv->env);
			break;
		}
		if ((n = loop_once(srv->loop)) < 0) {
			log_msg(LOG_ERR, "epoll_wait: %s", strerror(-n));
			return 71;
		}
	}
	log_msg(LOG_NOTICE, "stopped");
	return 0;
}

struct server *
server_new(struct config *cfg, int forced_level, char *err, size_t errlen)
{
	struct server *srv;
	sigset_t mask;
	int r;

	if (!(srv = calloc(1, sizeof(*srv)))) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	srv->cfg = cfg;
	srv->forced_level = forced_level;
	srv->model = model_get(cfg->concurrency.model);
	srv->sigfd = srv->conns.stop_fd = srv->conns.done.fd = -1;
	srv->child_close_fd = -1;
	srv->env.conns = &srv->conns;
	srv->env.main = &srv->main;
	srv->env.child_close = child_close;
	srv->env.arg = srv;
	model_env_update(srv);
	if ((r = stats_init(&srv->stats)) < 0) {
		snprintf(err, errlen, "mmap: %s", strerror(-r));
		goto fail;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	if (!(srv->loop = loop_new(EPOLL_BATCH)) ||
	    (srv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "creating the loop: %s", strerror(errno));
		goto fail;
	}
	srv->env.loop = srv->loop;
	if ((r = loop_add(srv->loop, &srv->sig_io, srv->sigfd, EPOLLIN,
	    signal_ready, srv)) < 0 ||
	    (r = conns_init(&srv->conns, &srv->stats, srv->loop,
	    conn_finished, srv)) < 0 ||
	    (r = connloop_init(&srv->main, srv->loop, srv->conns.stop_fd,
	    main_ended, srv)) < 0 ||
	    (r = model_init(&srv->env)) < 0) {
		snprintf(err, errlen, "creating the loop: %s", strerror(-r));
		goto fail;
	}
	loop_timer_add(srv->loop, &srv->watchdog, watchdog_due, srv);
	loop_timer_add(srv->loop, &srv->tick, tick_due, srv);
	loop_timer_add(srv->loop, &srv->accept_pause, accept_pause_due, srv);
	loop_timer_add(srv->loop, &srv->stop_deadline, stop_deadline_due, srv);
	loop_timer_add(srv->loop, &srv->kill_deadline, kill_deadline_due, srv);
	if (dgram_buffers_for(srv, cfg) < 0) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto fail;
	}
	listenset_init(&srv->ls, srv->loop, &srv->stats, listener_ready, srv);
	if (listenset_open(&srv->ls, cfg, err, errlen) < 0)
		goto fail;
	if (cfg->datagram.rate_limit > 0 &&
	    !(srv->rl = ratelimit_new((unsigned)cfg->datagram.rate_limit,
	    (unsigned)cfg->datagram.rate_burst, RATELIMIT_SLOTS))) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto fail;
	}
	own_dgram_ports(srv);
	loop_busy_poll(srv->loop, cfg->concurrency.busy_poll);
	if ((srv->watchdog_ms = notify_watchdog_usec() / 2000) > 0)
		loop_timer_set(&srv->watchdog, clock_ms());
	loop_timer_set(&srv->tick, clock_ms() + TICK_MS);
	return srv;
fail:
	server_free(srv);
	return NULL;
}

void
server_free(struct server *srv)
{
	if (!srv)
		return;
	model_kill(&srv->env);
	listenset_free(&srv->ls);
	/*
	 * Worker threads that did not end in time still use srv (statistics,
	 * the done queue): the process is exiting, leave the rest to it.
	 */
	if (conns_on_threads(&srv->conns))
		return;
	/* Only loop sessions and reaped-or-killed children are left. */
	conns_free_all(&srv->conns);
	connloop_fini(&srv->main);
	model_fini(&srv->env);
	if (srv->loop)
		conns_fini(&srv->conns, srv->loop);
	ratelimit_free(srv->rl);
	free(srv->dgbuf);
	free(srv->dgout);
	free(srv->bad_ports);
	stats_fini(&srv->stats);
	loop_free(srv->loop);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	config_free(srv->cfg);
	free(srv);
}
