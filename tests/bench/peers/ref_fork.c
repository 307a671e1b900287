/*
 * ref_fork.c - reference server for the benchmark: one child process per
 * TCP connection, blocking I/O, children reaped as soon as they exit (so
 * that their CPU time shows in the server's cutime and cstime).  The
 * yardstick of the fork model.  See ref_common.h.
 */
#include <sys/wait.h>

#include "ref_common.h"

static void
reap(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int
main(int argc, char **argv)
{
	int port = ref_init(argc, argv), lfd, fd;
	struct sigaction sa;
	pid_t pid;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reap;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		die("sigaction");
	lfd = open_socket(SOCK_STREAM, port);
	notify_ready();
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept4");
		}
		if ((pid = fork()) == 0) {
			close(lfd);
			serve_blocking(fd);
			_exit(0);
		}
		close(fd);	/* the child has it (or fork failed) */
	}
}
