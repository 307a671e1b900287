/*
 * server.h - the daemon's main loop: the listening sockets, admission, the
 * concurrency model, and the signals (reload, stop, statistics, reaping).
 */
#ifndef ECHOTIMED_SERVER_H
#define ECHOTIMED_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct server;

/*
 * The signals the main loop reads from its signalfd.  main() blocks them
 * before any thread or child exists, so that all of them inherit the mask.
 */
void		 server_signals(sigset_t *set);
/*
 * Load the configuration, at start and at reload: path, or with path NULL
 * the default file, or the built-in defaults when it does not exist
 * (*builtin).  Each line of what is wrong goes to report().  0, or -errno
 * as config_load().
 */
int		 server_load_config(const char *path, struct config **cfgp,
		    bool *builtin, void (*report)(void *arg, const char *line,
		    int len), void *arg);
/*
 * Create the server, which owns cfg from now on (even when this fails):
 * adopt systemd's sockets, open the configured listeners.  On failure
 * returns NULL with err filled (exit 71).
 */
struct server	*server_new(struct config *cfg, int forced_level, char *err,
		    size_t errlen);
/* Run until stopped; returns the exit status. */
int		 server_run(struct server *srv);
/* An fd of main's (the pidfile) that forked children must close. */
void		 server_close_in_children(struct server *srv, int fd);
/* Free everything (listeners closed, files removed); NULL is fine. */
void		 server_free(struct server *srv);

#endif
