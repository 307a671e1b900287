/*
 * ref_thread.c - reference server for the benchmark: one detached thread
 * per TCP connection, blocking I/O (a read and a write per line), the
 * daemon's default 64 KiB thread stack.  The yardstick of the thread model.
 * See ref_common.h.
 */
#include <pthread.h>
#include <stdint.h>

#include "ref_common.h"

static void *
session(void *arg)
{
	serve_blocking((int)(intptr_t)arg);
	return NULL;
}

int
main(int argc, char **argv)
{
	int port = ref_init(argc, argv), lfd, fd;
	pthread_attr_t attr;
	pthread_t t;

	lfd = open_socket(SOCK_STREAM, port);
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
	    pthread_attr_setstacksize(&attr, 64 * 1024) != 0)
		die("pthread_attr");
	notify_ready();
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept4");
		}
		if (pthread_create(&t, &attr, session, (void *)(intptr_t)fd))
			close(fd);
	}
}
