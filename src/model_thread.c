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
 *
 * A session thread waits in a blocking recv() (session_run_blocking: two
 * system calls per line, not three), and no fd can wake a thread there.
 * So, the one exception to the daemon's rule that signals reach only the
 * main loop's signalfd and threads never see them: a session thread
 * unblocks SIGRTMIN, whose handler does one async-signal-safe fcntl()
 * on the socket it waits on, and a stop sends it to every thread running
 * a session.  Every other thread, main included, keeps SIGRTMIN blocked;
 * a forked child gets it back at SIG_DFL.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "model.h"
#include "timecache.h"

#define SPARE_MAX	 32
#define SPARE_LINGER_MS	 2000

/*
 * A waiting spare: the dispatcher pops it from a stack (the most recently
 * used thread first, its stack still in the cache), hands it the conn and
 * posts its own semaphore, so a hand-over costs one wake-up.
 */
struct spare {
	sem_t		 sem;
	struct conn	*c;
	struct spare	*next;
};

static pthread_mutex_t	 pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spare	*pool;		/* waiting spares */
static unsigned		 pool_n;
/* Guards every conn's thread part: a stop signals only live threads. */
static pthread_mutex_t	 run_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether c's thread may be signalled (see conn.thread). */
static void
set_running(struct conn *c, bool running)
{
	pthread_mutex_lock(&run_lock);
	c->thread.tid = pthread_self();
	c->thread.running = running;
	pthread_mutex_unlock(&run_lock);
}

/* Run one request to its end and hand the conn back to the loop. */
static void
run(struct conn *c)
{
	/* Named, so that ps -L and top -H tell sessions apart. */
	if (c->dgram) {
		(void)prctl(PR_SET_NAME, "et-datagram");
		conn_answer_dgram(c, NULL);
	} else {
		(void)prctl(PR_SET_NAME, "et-session");
		/* Registered before the stop flag is read: a stop either
		 * finds this thread or is seen by it. */
		set_running(c, true);
		session_run_blocking(&c->sess, c->set->stop_fd,
		    &c->set->stopping);
		set_running(c, false);
		conn_ended(c);
	}
	conns_done(c->set, c);
}

/* Wait as a spare for the next conn; NULL when it is time to exit. */
static struct conn *
next_conn(void)
{
	struct spare me, **pp;
	struct timespec deadline;
	struct conn *c;
	bool expired = false;

	me.c = NULL;
	if (sem_init(&me.sem, 0, 0) < 0)
		return NULL;
	pthread_mutex_lock(&pool_lock);
	if (pool_n >= SPARE_MAX) {
		pthread_mutex_unlock(&pool_lock);
		sem_destroy(&me.sem);
		return NULL;
	}
	me.next = pool;
	pool = &me;
	pool_n++;
	pthread_mutex_unlock(&pool_lock);

	(void)prctl(PR_SET_NAME, "et-spare");
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SPARE_LINGER_MS / 1000;
	while (sem_clockwait(&me.sem, CLOCK_MONOTONIC, &deadline) < 0) {
		if (errno == EINTR)
			continue;
		/* Timed out: leave the pool, unless a conn just came. */
		pthread_mutex_lock(&pool_lock);
		if (!me.c) {
			for (pp = &pool; *pp != &me; pp = &(*pp)->next)
				;
			*pp = me.next;
			pool_n--;
			expired = true;
		}
		pthread_mutex_unlock(&pool_lock);
		if (!expired)
			sem_wait(&me.sem);	/* the post is on its way */
		break;
	}
	sem_destroy(&me.sem);
	/*
	 * The hand-over happened under pool_lock; taking it again orders
	 * everything the loop wrote into the conn before our use of it
	 * (and shows ThreadSanitizer why, sem_clockwait is not modelled).
	 */
	pthread_mutex_lock(&pool_lock);
	c = me.c;
	pthread_mutex_unlock(&pool_lock);
	return c;
}

static void *
worker(void *arg)
{
	struct conn *c = arg;
	sigset_t rt;

	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	pthread_sigmask(SIG_UNBLOCK, &rt, NULL);
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
	struct spare *sp;

	pthread_mutex_lock(&pool_lock);
	if ((sp = pool) != NULL) {
		pool = sp->next;
		pool_n--;
		sp->c = c;
	}
	pthread_mutex_unlock(&pool_lock);
	if (!sp)
		return false;
	sem_post(&sp->sem);
	return true;
}

static int
dispatch(const struct model_env *env, struct conn *c)
{
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	c->on_thread = true;
	if (hand_to_spare(c))
		return 0;
	if ((r = pthread_attr_init(&attr)) != 0)
		return -r;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, env->thread_stack);
	log_before_threads();		/* fork() takes their locks now */
	timecache_before_threads();
	r = pthread_create(&tid, &attr, worker, c);
	pthread_attr_destroy(&attr);
	if (r != 0)
		c->on_thread = false;
	return -r;
}


static int
thread_dgram(const struct model_env *env, struct conn *c)
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
	if ((r = dispatch(env, c)) < 0) {
		close(fd);
		c->fd = -1;
		c->own_fd = false;
	}
	return r;
}

/*
 * Before any thread exists: SIGRTMIN handled (without SA_RESTART, so that
 * a recv() asleep returns EINTR) and blocked in main, whose mask every
 * thread inherits.
 */
static int
thread_init(const struct model_env *env)
{
	struct sigaction sa;
	sigset_t rt;

	(void)env;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = session_interrupt;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGRTMIN, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	return -pthread_sigmask(SIG_BLOCK, &rt, NULL);
}

/* Stopping: wake every thread asleep in a session's recv(). */
static void
thread_stop(const struct model_env *env)
{
	struct conn *c;

	/* conns_stop() has set the flag they read after waking. */
	pthread_mutex_lock(&run_lock);
	for (c = env->conns->head; c; c = c->next)
		if (c->on_thread && c->thread.running)
			(void)pthread_kill(c->thread.tid, SIGRTMIN);
	pthread_mutex_unlock(&run_lock);
}

/* In a forked child: no handler the child has no use for. */
static void
thread_child_cleanup(void)
{
	(void)signal(SIGRTMIN, SIG_DFL);
}

const struct model_ops model_thread = {
	.id = MODEL_THREAD,
	.stream = dispatch,
	.dgram = thread_dgram,
	.init = thread_init,
	.stop = thread_stop,
	.child_cleanup = thread_child_cleanup,
};
