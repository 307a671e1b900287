/*
 * forkcost - the floor under a fork-per-connection server on this machine:
 * the CPU cost of fork(), an immediate _exit() in the child and waitpid()
 * in the parent, for a process with the same shared libraries as the
 * daemon.  `make bench` builds it twice, with -DWITH_DAEMON_LIBS (linked
 * and using libsystemd and libconfig, so that they and every library
 * libsystemd needs are mapped, as in echotimed) and without (libc only),
 * and prints both: fork and exit cost grows with the number of mappings,
 * and the difference is the part of the fork model's cost per connection
 * that comes from the libraries rather than from echotimed.
 *
 * Output: one line, "FORKCOST us_per_fork=X mappings=N forks=N".  Bounded:
 * at most --forks (default 2000, at most 100000) children, one at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef WITH_DAEMON_LIBS
#include <libconfig.h>
#include <systemd/sd-daemon.h>
#endif

#define BATCHES	5

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int c, n = 0;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	double batch[BATCHES], t;
	long forks = 2000;
	int b, i, status;
	pid_t pid;

	if (argc == 3 && strcmp(argv[1], "--forks") == 0)
		forks = strtol(argv[2], NULL, 10);
	else if (argc != 1) {
		fprintf(stderr, "usage: forkcost [--forks N]\n");
		return 2;
	}
	if (forks < BATCHES || forks > 100000) {
		fprintf(stderr, "forkcost: --forks must be in [%d, 100000]\n",
		    BATCHES);
		return 2;
	}
#ifdef WITH_DAEMON_LIBS
	{
		/* Use both libraries, as the daemon does, so they stay linked. */
		config_t cfg;

		config_init(&cfg);
		config_destroy(&cfg);
		(void)sd_booted();
	}
#endif
	/*
	 * CPU time would miss the children's exit work done after they were
	 * reaped; wall time on an otherwise idle, pinned CPU is what a
	 * fork server pays.  The median batch is reported.
	 */
	for (b = 0; b < BATCHES; b++) {
		t = now_us();
		for (i = 0; i < forks / BATCHES; i++) {
			pid = fork();
			if (pid < 0) {
				fprintf(stderr, "forkcost: fork: %s\n",
				    strerror(errno));
				return 1;
			}
			if (pid == 0)
				_exit(0);
			if (waitpid(pid, &status, 0) < 0) {
				fprintf(stderr, "forkcost: waitpid: %s\n",
				    strerror(errno));
				return 1;
			}
		}
		batch[b] = (now_us() - t) / (double)(forks / BATCHES);
	}
	qsort(batch, BATCHES, sizeof batch[0], cmp);
	printf("FORKCOST us_per_fork=%.1f mappings=%d forks=%ld\n",
	    batch[BATCHES / 2], mappings(), forks / BATCHES * BATCHES);
	return 0;
}
