/*
 * model_thread.c - one thread per connection or datagram (ThreadingMixIn).
 *
 * Each session runs on its own thread, detached, with every signal blocked
 * (inherited from main) and a small explicit stack.  A thread whose
 * session ended does not exit at once: it waits up to SPARE_LINGER_MS as a
 * spare (named "et-spare") and takes the next connection, so a busy
 * server does not pay for creating and destroying a thread per
 * connection.  At most SPARE_MAX spares wait; the rest exit, and an idle
 * daemon is back to its one thread within SPARE_LINGER_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "server.h"

#define SPARE_MAX	 32
#define SPARE_LINGER_MS	 2000

static pthread_mutex_t	 pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 pool_cond;
static pthread_once_t	 pool_once = PTHREAD_ONCE_INIT;
static struct conn	*pool_head, *pool_tail;	/* handed over, not taken */
static unsigned		 pool_idle;		/* spares waiting */
static unsigned		 pool_queued;		/* conns in the queue */

static void
pool_init(void)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool_cond, &attr);
	pthread_condattr_destroy(&attr);
}

/* Run one request to its end and hand the conn back to the loop. */
static void
run(struct conn *c)
{
	struct server *srv = c->srv;

	/* Named, so that ps -L and top -H tell sessions apart. */
	if (c->dgram) {
		(void)prctl(PR_SET_NAME, "et-datagram");
		server_answer_dgram(srv, c);
	} else {
		(void)prctl(PR_SET_NAME, "et-session");
		session_run(&c->sess, server_stop_fd(srv));
		server_log_end(srv, c);
	}
	server_conn_done(srv, c);
}

/* Wait as a spare for the next conn; NULL when it is time to exit. */
static struct conn *
next_conn(void)
{
	struct timespec deadline;
	struct conn *c = NULL;
	int r = 0;

	pthread_mutex_lock(&pool_lock);
	if (pool_idle >= SPARE_MAX) {
		pthread_mutex_unlock(&pool_lock);
		return NULL;
	}
	pool_idle++;
	(void)prctl(PR_SET_NAME, "et-spare");
	/* A spare holds no buffers while it waits. */
	session_thread_cleanup();
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SPARE_LINGER_MS / 1000;
	while (!pool_head && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&pool_cond, &pool_lock, &deadline);
	if (pool_head) {
		c = pool_head;
		pool_head = c->pool_next;
		if (!pool_head)
			pool_tail = NULL;
		pool_queued--;
	}
	pool_idle--;
	pthread_mutex_unlock(&pool_lock);
	return c;
}

static void *
worker(void *arg)
{
	struct conn *c = arg;

	do
		run(c);
	while ((c = next_conn()) != NULL);
	session_thread_cleanup();
	return NULL;
}

/* Give c to a waiting spare; false if none is free. */
static bool
hand_to_spare(struct conn *c)
{
	bool taken = false;

	pthread_mutex_lock(&pool_lock);
	if (pool_idle > pool_queued) {
		c->pool_next = NULL;
		if (pool_tail)
			pool_tail->pool_next = c;
		else
			pool_head = c;
		pool_tail = c;
		pool_queued++;
		pthread_cond_signal(&pool_cond);
		taken = true;
	}
	pthread_mutex_unlock(&pool_lock);
	return taken;
}

static int
dispatch(struct server *srv, struct conn *c)
{
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	pthread_once(&pool_once, pool_init);
	if (hand_to_spare(c))
		return 0;
	if ((r = pthread_attr_init(&attr)) != 0)
		return -r;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, server_thread_stack(srv));
	r = pthread_create(&tid, &attr, worker, c);
	pthread_attr_destroy(&attr);
	return -r;
}

static int
thread_stream(struct server *srv, struct conn *c)
{
	return dispatch(srv, c);
}

static int
thread_dgram(struct server *srv, struct conn *c)
{
	int fd, r;

	/*
	 * The thread replies through its own descriptor of the listening
	 * socket, so a reload that closes the listener cannot pull the fd
	 * from under it.
	 */
	if ((fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	c->fd = fd;
	c->own_fd = true;
	if ((r = dispatch(srv, c)) < 0) {
		close(fd);
		c->fd = -1;
		c->own_fd = false;
	}
	return r;
}

const struct model_ops model_thread = {
	.id = MODEL_THREAD,
	.in_loop = false,
	.stream = thread_stream,
	.dgram = thread_dgram,
};
