/*
 * model_fork.c - one child process per connection or datagram
 * (ForkingMixIn).  The child closes the parent's descriptors (listening
 * sockets, the loops', other sessions'; listed by the parent before the
 * fork), answers, reports how its session ended, and _exit()s; the
 * parent reaps it from SIGCHLD at once and logs the session's end.
 * Once the daemon has started other threads, locks a child may need
 * (time, logging) are held across fork() by their modules' atfork
 * handlers (log_before_threads()), so the child never inherits one
 * locked; until then no other thread can hold them.  The child runs on a
 * copy of its conn: the conns are in memory it does not inherit
 * (nofork.h), which the parent writes without copying a page after each
 * fork().
 *
 * A stream child has a process of its own, so it runs the session as a
 * session thread does (session_run_blocking: recv + send per line, no
 * poll), and a stop reaches it the same way, by a signal: SIGTERM, from
 * fork_stop() or PR_SET_PDEATHSIG, is the one signal a stream child
 * unblocks, and stopsig.c handles it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "model.h"
#include "session.h"
#include "stopsig.h"
#include "timecache.h"

/*
 * A forked child's last words: how its session ended.  The parent logs the
 * close record when it reaps the child, so that the journal attributes it
 * to the service (a record from a process that already exited may lose
 * its unit).  One write below PIPE_BUF is atomic.
 *
 * No record may be lost, so the child's write blocks (only the parent's
 * read end is non-blocking) and the loop reads the pipe whenever it is
 * readable, not only on SIGCHLD.  When more children finish than the pipe
 * holds (64 KiB: 4096 records) while the loop is busy or stopped, the
 * later ones wait in write() until it reads; they have closed their
 * client first and still count as active sessions, so nothing else waits
 * for them.  Sizing the pipe to max_connections (F_SETPIPE_SZ) instead
 * would need a fallback whenever the kernel refuses the size (above
 * pipe-max-size after the privilege drop, or a reload to more
 * connections), and the exit status cannot carry the line count.  A child
 * that dies without reporting is logged from its wait status (reap()).
 */
struct child_result {
	pid_t		pid;
	int		end;
	uint64_t	lines;
};

/*
 * The parent's descriptors a child closes, listed on the parent's stack;
 * more (sessions of another model after a reload, connections waiting for
 * their PROXY header) go to the heap.
 */
#define CHILD_FDS	64

/* The children's report pipe, made at start: a reload may pick this model. */
static int		 resultfd[2] = { -1, -1 };
static struct loop_io	 result_io;
/* The daemon's pid, read once at start (after -d's fork): a child checks
 * that its parent is still this process. */
static pid_t		 daemon_pid;

/* In a forked child: hand the session's outcome to the parent. */
static void
child_report(struct conn *c)
{
	struct child_result r = { getpid(), (int)c->sess.end, c->sess.lines };

	if (session_end_is_error(c->sess.end))
		atomic_fetch_add(&conn_stats(c)->errors, 1);
	/* A late SIGTERM (stopsig.c) interrupts the write: EINTR, again.
	 * If the parent is gone (EPIPE), nobody is left to tell. */
	while (write(resultfd[1], &r, sizeof(r)) < 0 && errno == EINTR)
		;
}

static void
read_results(const struct model_env *env)
{
	struct child_result r[64];
	struct conn *c;
	ssize_t n;
	size_t i;

	/* Records are written whole (below PIPE_BUF), so reads end on one. */
	while ((n = read(resultfd[0], r, sizeof(r))) > 0) {
		for (i = 0; i < (size_t)n / sizeof(r[0]); i++)
			for (c = env->conns->head; c; c = c->next)
				if (c->fork.pid == r[i].pid) {
					c->sess.end = (enum session_end)r[i].end;
					c->sess.lines = r[i].lines;
					c->fork.reported = true;
					break;
				}
		if ((size_t)n < sizeof(r))
			break;
	}
}

static void
results_ready(struct loop_io *io, uint32_t revents)
{
	read_results(io->data);
}

/*
 * A stream child that died without its report (killed by a signal, or
 * gone some other way): its close line comes from the wait status.
 */
static void
log_end_unreported(struct conn *c, int status)
{
	struct log_fields f = LOG_FIELDS_INIT;
	char why[64];

	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "ended without a report, exit "
		    "status %d", WEXITSTATUS(status));
	atomic_fetch_add(&conn_stats(c)->errors, 1);
	conn_log_fields(c, &f);
	f.duration_ms = (long long)(clock_ms() - c->start_ms);
	f.error = WIFSIGNALED(status) ? "signal" : "no report";
	log_fields(LOG_WARNING, &f, "session from %s on %s closed: %s "
	    "(child %d), %lld ms", c->peerstr, c->lname, why, (int)c->fork.pid,
	    f.duration_ms);
}

/* A child ended with status: log the end of its session or datagram. */
static void
child_ended(const struct model_env *env, struct conn *c, int status)
{
	/* Written before the child exited, maybe after our last read. */
	if (!c->fork.reported && !c->dgram)
		read_results(env);
	if (c->fork.reported)
		conn_log_end(c);	/* the child counted an error end */
	else if (!c->dgram)
		log_end_unreported(c, status);
	else if (WIFSIGNALED(status)) {
		atomic_fetch_add(&conn_stats(c)->errors, 1);
		log_msg(LOG_WARNING, "child %d for the datagram from %s "
		    "killed by signal %d", (int)c->fork.pid, c->peerstr,
		    WTERMSIG(status));
	}
}

static void
fork_reap(const struct model_env *env)
{
	struct conn *c;
	pid_t pid;
	int status;

	/* Every child wrote its result before exiting: read them first. */
	read_results(env);
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (c = env->conns->head; c; c = c->next)
			if (c->fork.pid == pid)
				break;
		if (!c)
			continue;
		child_ended(env, c, status);
		conns_finish(env->conns, c);
	}
}

/* Time is up: each child gets SIGTERM and its session the shutdown error. */
static void
fork_stop(const struct model_env *env)
{
	struct conn *c;

	for (c = env->conns->head; c; c = c->next)
		if (c->fork.pid > 0)
			kill(c->fork.pid, SIGTERM);
}

/* The last step: nothing of ours may outlive the daemon. */
static void
fork_kill(const struct model_env *env)
{
	struct conn *c;
	int status;

	for (c = env->conns->head; c; c = c->next)
		if (c->fork.pid > 0) {
			kill(c->fork.pid, SIGKILL);
			(void)waitpid(c->fork.pid, &status, 0);
		}
}

/*
 * The children's SIGTERM handler, set once: SIGTERM stays blocked in the
 * daemon and in all its threads, so the server's signalfd still reads it;
 * only a stream child unblocks it (stopsig_run).
 */
static int
fork_init(const struct model_env *env)
{
	int r;

	if ((r = stopsig_handle(SIGTERM)) < 0)
		return r;
	daemon_pid = getpid();
	if (pipe2(resultfd, O_CLOEXEC) < 0 ||
	    fcntl(resultfd[0], F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	return loop_add(env->loop, &result_io, resultfd[0], EPOLLIN,
	    results_ready, (void *)env);
}

static void
fork_fini(const struct model_env *env)
{
	loop_del(env->loop, &result_io);
	if (resultfd[0] >= 0) {
		close(resultfd[0]);
		close(resultfd[1]);
	}
	resultfd[0] = resultfd[1] = -1;
}

static void
fork_child_fds(struct fdlist *l)
{
	fdlist_add(l, resultfd[0]);
}

/*
 * Before a fork: the parent's descriptors the child of c must close, in l
 * (the common few in buf, of nbuf; more in a buffer of l->fd's own,
 * which the caller frees).  0 or -ENOMEM.
 */
static int
child_fds(const struct model_env *env, const struct conn *c,
    struct fdlist *l, int *buf, size_t nbuf)
{
	size_t want;

	*l = (struct fdlist){ .fd = buf, .max = nbuf, .keep = c->fd };
	env->child_fds(env->arg, l);
	while (l->n > l->max) {
		want = l->n;
		if (l->fd != buf)
			free(l->fd);
		*l = (struct fdlist){ .fd = malloc(want * sizeof(int)),
		    .max = want, .keep = c->fd };
		if (!l->fd)
			return -ENOMEM;
		env->child_fds(env->arg, l);
	}
	return 0;
}

/*
 * In a forked child: close the parent's descriptors, gathered in l before
 * the fork; stop with the parent (PDEATHSIG).
 */
static void
child_setup(const struct model_env *env, const struct fdlist *l,
    pid_t parent)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		close(l->fd[i]);
	env->child_cleanup(env->arg);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
}

static int
fork_run(const struct model_env *env, struct conn *c)
{
	char ts[LP_TIMESTAMP_LEN + 1];
	int buf[CHILD_FDS], r;
	pid_t pid;
	struct fdlist fds;
	struct conn mine;	/* the child's c: it does not inherit c */

	/*
	 * Every page a child touches costs it a page fault (the kernel's
	 * most expensive part of a fork connection after fork and exit), so
	 * the child inherits what it would otherwise make: this second's
	 * timestamp (formatted here at most once a second, not by every
	 * child with localtime_r() and snprintf()) and scratch buffers (no
	 * malloc() in the child).  Page faults per child, perf record -e
	 * page-faults over 500 connections: 34 before, 21.  And the list
	 * of the descriptors it closes: walking the parent's structures for
	 * them cost a child 118 us of CPU (tests/bench/README.md, "What a
	 * fork child touches").
	 */
	timecache_now(ts);
	if (!c->dgram)
		session_scratch_reserve(c->max_line);
	if ((r = child_fds(env, c, &fds, buf, CHILD_FDS)) < 0)
		return r;
	conn_child_copy(&mine, c);
	pid = fork();
	r = pid < 0 ? -errno : 0;
	if (pid != 0 && fds.fd != buf)
		free(fds.fd);
	if (pid < 0)
		return r;
	if (pid > 0) {
		c->fork.pid = pid;
		if (!c->dgram) {
			/* The child has the socket now. */
			close(c->fd);
			c->fd = -1;
			session_free(&c->sess);
		}
		return 0;
	}
	c = &mine;
	child_setup(env, &fds, daemon_pid);
	if (c->dgram)
		conn_answer_dgram(c, NULL);
	else {
		stopsig_run(&c->sess);
		/* The report may have to wait for the parent: the client
		 * must not. */
		close(c->fd);
		child_report(c);
	}
	_exit(0);
}

const struct model_ops model_fork = {
	.id = MODEL_FORK,
	.stream = fork_run,
	.dgram = fork_run,
	.init = fork_init,
	.reap = fork_reap,
	.stop = fork_stop,
	.kill = fork_kill,
	.fini = fork_fini,
	.child_fds = fork_child_fds,
};
