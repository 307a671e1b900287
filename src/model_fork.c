/*
 * model_fork.c - one child process per connection or datagram
 * (ForkingMixIn).  The child closes the parent's listeners and loop fds,
 * answers, and _exit()s; the parent reaps it from SIGCHLD at once.  Locks a
 * child may need (time, logging) are held across fork() by their modules'
 * atfork handlers, so the child never inherits one locked.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "model.h"
#include "server.h"
#include "session.h"
#include "timecache.h"

/*
 * Set up the child: it stops with the parent (PDEATHSIG), and SIGTERM,
 * still blocked from main, arrives on a signalfd the session polls.
 */
static int
child_setup(struct server *srv, struct conn *c, pid_t parent,
    const sigset_t *term)
{
	server_child_cleanup(srv, c->fd);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	return signalfd(-1, term, SFD_CLOEXEC);
}

static int
fork_run(struct server *srv, struct conn *c)
{
	char ts[LP_TIMESTAMP_LEN + 1];
	pid_t parent = getpid(), pid;
	sigset_t term;
	int stopfd;

	/*
	 * Every page a child touches costs it a page fault (the kernel's
	 * most expensive part of a fork connection after fork and exit), so
	 * the child inherits what it would otherwise make: this second's
	 * timestamp (formatted here at most once a second, not by every
	 * child with localtime_r() and snprintf()), scratch buffers (no
	 * malloc() in the child) and its signal set.  Page faults per child,
	 * perf record -e page-faults over 500 connections: 34 before, 21.
	 */
	timecache_now(ts);
	if (!c->dgram)
		session_scratch_reserve(c->max_line);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		c->fork.pid = pid;
		return 0;
	}
	stopfd = child_setup(srv, c, parent, &term);
	if (c->dgram)
		server_answer_dgram(srv, c);
	else {
		session_run(&c->sess, stopfd);
		/* The report may have to wait for the parent: the client
		 * must not. */
		close(c->fd);
		server_child_report(srv, c);
	}
	_exit(0);
}

const struct model_ops model_fork = {
	.id = MODEL_FORK,
	.in_loop = false,
	.stream = fork_run,
	.dgram = fork_run,
};
