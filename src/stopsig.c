/*
 * stopsig.c - the stop of a process that runs one stream session (see
 * stopsig.h).  The state is the process's, as signals are.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "stopsig.h"

static atomic_bool	 stopping;
/* Set while the stop signals are still blocked: the handler reads it. */
static int		 stopfd = -1;
/* The signals stopsig_handle() was given; stopsig_run() unblocks them. */
static sigset_t		 handled;
static bool		 handled_init;

_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2,
    "on_stop() sets an atomic_bool: it must be lock-free");

static void
on_stop(int sig)
{
	int e = errno;
	uint64_t one = 1;

	atomic_store(&stopping, true);
	if (stopfd >= 0)
		(void)!write(stopfd, &one, sizeof(one));
	errno = e;
	session_interrupt(sig);
}

int
stopsig_handle(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		return -errno;
	if (!handled_init) {
		sigemptyset(&handled);
		handled_init = true;
	}
	sigaddset(&handled, sig);
	return 0;
}

/*
 * The signal interrupts recv() and poll() alike, and the session reads
 * the flag before each wait; the eventfd covers a stop that comes between
 * that read and a poll().  Without it, such a stop waits for the idle
 * timeout (or, in the fork model, the daemon's SIGKILL 3 s after the
 * shutdown grace).
 */
void
stopsig_run(struct session *s)
{
	if ((stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		log_msg(LOG_WARNING, "session of %s: eventfd: %s (a stop "
		    "may wait for the idle timeout)", s->peer,
		    strerror(errno));
	(void)sigprocmask(SIG_UNBLOCK, &handled, NULL);
	session_run_blocking(s, stopfd, &stopping);
}
