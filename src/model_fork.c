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

/*
 * Set up the child: it stops with the parent (PDEATHSIG), and SIGTERM,
 * still blocked from main, arrives on a signalfd the session polls.
 */
static int
child_setup(struct server *srv, struct conn *c, pid_t parent)
{
	sigset_t term;

	server_child_cleanup(srv, c->fd);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	return signalfd(-1, &term, SFD_CLOEXEC);
}

static int
fork_run(struct server *srv, struct conn *c)
{
	pid_t parent = getpid(), pid;
	int stopfd;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		c->pid = pid;
		return 0;
	}
	stopfd = child_setup(srv, c, parent);
	if (c->dgram)
		server_answer_dgram(srv, c);
	else {
		session_run(&c->sess, stopfd);
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
