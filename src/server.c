/*
 * server.c - the daemon's main loop (socketserver's serve_forever made
 * explicit): it creates the parts and wires them together, and handles
 * the signals.  SIGHUP reloads (a fresh configuration merged with the
 * running one), SIGTERM/SIGINT stop (listeners closed, sessions given
 * shutdown_timeout, then the shutdown error, then whatever is left
 * killed), SIGUSR1 logs the statistics, SIGCHLD reaps.  It also keeps
 * STATUS= and the watchdog going.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "accept.h"
#include "clock.h"
#include "conn.h"
#include "connloop.h"
#include "listenset.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "notify.h"
#include "proxywait.h"
#include "server.h"
#include "stats.h"

#define EPOLL_BATCH	256
#define TICK_MS		1000	/* STATUS= is sent this often */
#define HARD_STOP_GRACE_MS 3000	/* after the shutdown error, then SIGKILL */

struct server {
	struct config	*cfg;
	const struct model_ops *model;
	struct listenset ls;

	struct loop	*loop;
	int		 sigfd;
	struct loop_io	 sig_io;

	struct conns	*conns;		/* every running session */
	struct connloop	 main;		/* sessions the main loop drives */
	struct model_env env;

	struct stats	 stats;
	struct acceptor	 acc;

	bool		 stopping;
	bool		 hard_stop;
	bool		 kill_now;	/* the grace after stop_hard is over */
	uint64_t	 watchdog_ms;	/* interval, 0 = none */
	struct loop_timer watchdog;
	struct loop_timer tick;
	struct loop_timer stop_deadline;
	struct loop_timer kill_deadline;
	char		 reload_error[512];	/* the last reload's, or "" */
	bool		 reload_more;	/* it said more than that */
	int		 forced_level;	/* -l on the command line, or -1 */
	int		 child_close_fd; /* main's pidfile: children close it */
};

static int
srv_log_level(const struct server *srv)
{
	return srv->forced_level >= 0 ? srv->forced_level :
	    srv->cfg->log.level;
}


/* ---- statistics ---- */

/* The STATUS text; with detail, the SIGUSR1 statistics line. */
static void
status_text(struct server *srv, char *buf, size_t len, bool detail)
{
	struct stats_status ss = {
		.reload_error = srv->reload_error,
		.model = model_name(srv->cfg->concurrency.model),
		.active = srv->conns->n,
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

/* What the models get from the configuration (at start, at reload). */
static void
model_env_update(struct server *srv)
{
	srv->env.thread_stack =
	    (size_t)srv->cfg->concurrency.thread_stack_kib * 1024;
	srv->env.workers = (unsigned)srv->cfg->concurrency.workers;
}

/* Before a fork: every fd of the parent's, for the child to close. */
static void
child_fds(void *arg, struct fdlist *l)
{
	struct server *srv = arg;
	struct conn *c;

	loop_child_fds(srv->loop, l);
	fdlist_add(l, srv->sigfd);
	fdlist_add(l, srv->conns->done.fd);
	fdlist_add(l, srv->conns->stop_fd);
	model_child_fds(l);
	listenset_child_fds(&srv->ls, l);
	proxywait_child_fds(&srv->acc.pw, l);
	/* Every other session's socket: loop sessions, thread sessions and
	 * the thread model's duplicated datagram sockets. */
	for (c = srv->conns->head; c; c = c->next)
		if (c->own_fd)
			fdlist_add(l, c->fd);
	fdlist_add(l, srv->child_close_fd);
}

/* In a forked child: the models' clean-up (a handler). */
static void
child_cleanup(void *arg)
{
	(void)arg;
	model_child_cleanup();
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

/* ---- reload ---- */

int
server_load_config(const char *path, struct config **cfgp, bool *builtin,
    void (*report)(void *arg, const char *line, int len), void *arg)
{
	char *errs = NULL, *p, *nl, msg[512];
	int r;

	if ((r = config_obtain(path, cfgp, &errs, builtin)) == 0)
		return 0;
	for (p = errs; p && *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n')))
			nl = p + strlen(p);
		report(arg, p, (int)(nl - p));
		if (!*nl)
			break;
	}
	if (!errs) {
		snprintf(msg, sizeof(msg), "%s: %s", path ? path :
		    CONFIG_DEFAULT_PATH, strerror(-r));
		report(arg, msg, (int)strlen(msg));
	}
	free(errs);
	return r;
}

/* What a failed reload says: each line logged, the first one in STATUS. */
static void
reload_error(void *arg, const char *line, int len)
{
	struct server *srv = arg;
	size_t n = strlen(srv->reload_error);

	log_msg(LOG_ERR, "%.*s", len, line);
	if (n == 0)
		snprintf(srv->reload_error, sizeof(srv->reload_error), "%.*s",
		    len, line);
	else if (!srv->reload_more) {
		snprintf(srv->reload_error + n, sizeof(srv->reload_error) - n,
		    " (and more)");
		srv->reload_more = true;
	}
}

/* Serve cfg from now on, if every socket it needs opens.  0 or -errno. */
static int
reload_apply(struct server *srv, struct config *cfg)
{
	struct config *old = srv->cfg;
	struct accept_reload ar;
	char err[LISTENER_ERRLEN];
	int r;

	if ((r = accept_reload_prepare(&srv->acc, cfg, &ar)) < 0)
		snprintf(err, sizeof(err), "%s", strerror(-r));
	else if ((r = listenset_merge(&srv->ls, cfg, err, sizeof(err))) < 0)
		accept_reload_cancel(&ar);
	if (r < 0) {
		snprintf(srv->reload_error, sizeof(srv->reload_error), "%s",
		    err);
		log_msg(LOG_ERR, "reload failed: %s; the old configuration "
		    "keeps serving", srv->reload_error);
		return r;
	}
	if (strcmp(cfg->user, old->user) != 0 ||
	    strcmp(cfg->group, old->group) != 0)
		log_msg(LOG_WARNING, "user and group changes take effect only "
		    "at restart");
	srv->cfg = cfg;
	srv->model = model_get(cfg->concurrency.model);
	model_env_update(srv);
	loop_busy_poll(srv->loop, cfg->concurrency.busy_poll);
	accept_reload_commit(&srv->acc, cfg, srv->model, &ar);
	log_open(cfg->log.target, srv_log_level(srv));
	config_free(old);
	log_msg(LOG_NOTICE, "configuration reloaded: %s model, %zu listeners",
	    model_name(cfg->concurrency.model), cfg->nlisten);
	return 0;
}

/* SIGHUP: read the file again; on any error the old one keeps serving. */
static void
reload(struct server *srv)
{
	const char *path = srv->cfg->file;
	struct config *cfg = NULL;
	char buf[2048];
	bool builtin;

	notify_reloading();
	/* Started on the built-in defaults, the file may exist now. */
	if (path)
		log_msg(LOG_INFO, "reloading %s", path);
	srv->reload_error[0] = '\0';
	srv->reload_more = false;
	if (server_load_config(path, &cfg, &builtin, reload_error, srv) < 0)
		log_msg(LOG_ERR, "reload failed; the old configuration keeps "
		    "serving");
	else {
		if (!path)
			log_msg(LOG_INFO, "reloading %s", builtin ?
			    "(built-in defaults)" : cfg->file);
		if (reload_apply(srv, cfg) < 0)
			config_free(cfg);
	}
	accept_arm(&srv->acc);
	status_text(srv, buf, sizeof(buf), false);
	notify_ready(buf);
}

/* ---- stopping ---- */

static void
begin_stop(struct server *srv, const char *why)
{
	srv->stopping = true;
	notify_stopping();
	/* Not sessions yet: they close without a word, like the backlog. */
	proxywait_clear(&srv->acc.pw);
	log_msg(LOG_NOTICE, "%s: stopping; %zu sessions get %d s to finish",
	    why, srv->conns->n, srv->cfg->shutdown_timeout);
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
	if (srv->conns->n > 0)
		log_msg(LOG_NOTICE, "closing %zu remaining sessions",
		    srv->conns->n);
	/* Sessions in loops and threads watch the stop fd. */
	conns_stop(srv->conns);
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

void
server_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGCHLD);
}

int
server_run(struct server *srv)
{
	int n;

	accept_arm(&srv->acc);
	{
		char buf[2048];

		status_text(srv, buf, sizeof(buf), false);
		notify_ready(buf);
		log_msg(LOG_NOTICE, "ready: %s", buf);
	}
	for (;;) {
		if (srv->stopping && srv->conns->n == 0)
			break;
		if (srv->kill_now) {
			log_msg(LOG_WARNING, "%zu sessions did not end in time; "
			    "exiting anyway", srv->conns->n);
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
		config_free(cfg);
		return NULL;
	}
	srv->cfg = cfg;
	srv->forced_level = forced_level;
	srv->model = model_get(cfg->concurrency.model);
	srv->sigfd = -1;
	srv->child_close_fd = -1;
	srv->env.main = &srv->main;
	srv->env.child_fds = child_fds;
	srv->env.child_cleanup = child_cleanup;
	srv->env.arg = srv;
	model_env_update(srv);
	if ((r = stats_init(&srv->stats)) < 0) {
		snprintf(err, errlen, "mmap: %s", strerror(-r));
		goto fail;
	}
	server_signals(&mask);
	if (!(srv->loop = loop_new(EPOLL_BATCH)) ||
	    (srv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "creating the loop: %s", strerror(errno));
		goto fail;
	}
	srv->env.loop = srv->loop;
	if (!(srv->conns = conns_new(&srv->stats, srv->loop, accept_resume,
	    &srv->acc))) {
		snprintf(err, errlen, "creating the connection set: %s",
		    strerror(errno));
		goto fail;
	}
	srv->env.conns = srv->conns;
	if ((r = loop_add(srv->loop, &srv->sig_io, srv->sigfd, EPOLLIN,
	    signal_ready, srv)) < 0 ||
	    (r = connloop_init(&srv->main, srv->loop, srv->conns->stop_fd,
	    main_ended, srv)) < 0 ||
	    (r = model_init(&srv->env)) < 0) {
		snprintf(err, errlen, "creating the loop: %s", strerror(-r));
		goto fail;
	}
	loop_timer_add(srv->loop, &srv->watchdog, watchdog_due, srv);
	loop_timer_add(srv->loop, &srv->tick, tick_due, srv);
	loop_timer_add(srv->loop, &srv->stop_deadline, stop_deadline_due, srv);
	loop_timer_add(srv->loop, &srv->kill_deadline, kill_deadline_due, srv);
	listenset_init(&srv->ls, srv->loop, &srv->stats, accept_ready,
	    &srv->acc);
	if (listenset_open(&srv->ls, cfg, err, errlen) < 0)
		goto fail;
	if ((r = accept_init(&srv->acc, cfg, srv->model, &srv->env,
	    &srv->ls)) < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		goto fail;
	}
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
	if (srv->conns)		/* else no model has started */
		model_kill(&srv->env);
	listenset_free(&srv->ls);
	/*
	 * Worker threads that did not end in time still use srv (statistics,
	 * the done queue): the process is exiting, leave the rest to it.
	 */
	if (srv->conns && conns_on_threads(srv->conns))
		return;
	/* Only loop sessions and reaped-or-killed children are left. */
	if (srv->conns)
		conns_free_all(srv->conns);
	connloop_fini(&srv->main);
	model_fini(&srv->env);
	conns_delete(srv->conns, srv->loop);
	accept_fini(&srv->acc);
	stats_fini(&srv->stats);
	loop_free(srv->loop);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	config_free(srv->cfg);
	free(srv);
}
