/*
 * stopsig.h - the stop of a process that runs one stream session: a fork
 * model child, or echotimed -i.
 *
 * A stop signal sets a flag, makes an eventfd readable (for a session
 * about to wait in poll() for a peer that reads nothing) and wakes a
 * recv() asleep in session_run_blocking() (session_interrupt()), so that
 * the session stops wherever it waits (session_shutdown(): a lingering
 * close still takes its bounded time).
 */
#ifndef ECHOTIMED_STOPSIG_H
#define ECHOTIMED_STOPSIG_H

#include "session.h"

/*
 * Handle sig with the stop from now on (no SA_RESTART, so that a recv()
 * asleep returns EINTR).  Meant for a signal the caller keeps blocked
 * until stopsig_run().  0 or -errno.
 */
int		stopsig_handle(int sig);
/*
 * Run s to its end, stopped by the signals given to stopsig_handle() here
 * or, before a fork(), in the parent: they are unblocked now, so one sent
 * before is handled at once.  Once per process.
 */
void		stopsig_run(struct session *s);

#endif
