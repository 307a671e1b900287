/*
 * model_thread.c - one thread per connection or datagram (ThreadingMixIn).
 * Threads are detached, start with every signal blocked (inherited from
 * main) and a small explicit stack, and hand their conn back to the loop
 * when done.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "model.h"
#include "server.h"

static void *
stream_main(void *arg)
{
	struct conn *c = arg;

	/* Named, so that ps -L and top -H tell sessions apart. */
	(void)prctl(PR_SET_NAME, "et-session");
	session_run(&c->sess, server_stop_fd(c->srv));
	server_log_end(c->srv, c);
	session_thread_cleanup();
	server_conn_done(c->srv, c);
	return NULL;
}

static void *
dgram_main(void *arg)
{
	struct conn *c = arg;

	(void)prctl(PR_SET_NAME, "et-datagram");
	server_answer_dgram(c->srv, c);
	server_conn_done(c->srv, c);
	return NULL;
}

static int
spawn(struct server *srv, struct conn *c, void *(*fn)(void *))
{
	pthread_attr_t attr;
	pthread_t tid;
	int r;

	if ((r = pthread_attr_init(&attr)) != 0)
		return -r;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, server_thread_stack(srv));
	r = pthread_create(&tid, &attr, fn, c);
	pthread_attr_destroy(&attr);
	return -r;
}

static int
thread_stream(struct server *srv, struct conn *c)
{
	return spawn(srv, c, stream_main);
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
	if ((r = spawn(srv, c, dgram_main)) < 0) {
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
