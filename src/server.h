/*
 * server.h - the server loop: listeners, limits, access lists, dispatch to
 * the concurrency model, and signals (reload, shutdown, reap, statistics).
 */
#ifndef ECHOTIMED_SERVER_H
#define ECHOTIMED_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "conn.h"
#include "netaddr.h"
#include "session.h"

struct server;

/*
 * Create the server: adopt systemd's sockets, open the configured
 * listeners.  On failure returns NULL with err filled (exit 71).
 */
struct server	*server_new(struct config *cfg, int forced_level, char *err,
		    size_t errlen);
/* Run until stopped; returns the exit status. */
int		 server_run(struct server *srv);
/* An fd of main's (the pidfile) that forked children must close. */
void		 server_close_in_children(struct server *srv, int fd);
/* Free everything (listeners closed, files removed). */
void		 server_free(struct server *srv);

/* For models. */
/* Drive a stream session from the server loop. 0 or -errno. */
int		 server_watch(struct server *srv, struct conn *c);
/* Readable when the daemon stops hard; for worker threads. */
int		 server_stop_fd(const struct server *srv);
/* In a forked child: close every fd of the parent but keep. -1 = none. */
void		 server_child_cleanup(struct server *srv, int keep);
/* In a forked child: hand the session's outcome to the parent. */
void		 server_child_report(struct server *srv, struct conn *c);
/* Answer the datagram in c through c->fd. */
void		 server_answer_dgram(struct server *srv, struct conn *c);
/* Thread stack size for worker threads in bytes. */
size_t		 server_thread_stack(const struct server *srv);
/* Event loops the configuration asks for (concurrency.workers). */
unsigned	 server_workers(const struct server *srv);

#endif
