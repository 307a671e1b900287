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

#endif
