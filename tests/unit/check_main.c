/*
 * check_main.c - main() for every unit-test binary (see check_main.h).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"

static SRunner	*runner;

bool
check_forking(void)
{
	return runner == NULL || srunner_fork_status(runner) != CK_NOFORK;
}

int
check_in_child(int (*probe)(const void *), const void *arg)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		_exit(probe(arg));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? WTERMSIG(status) :
	    256 + WEXITSTATUS(status);
}

int
check_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;	/* the directory's own descriptor counted every time */
}

int
main(void)
{
	int failed, fds = check_open_fds();

	runner = srunner_create(check_suite());
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	/*
	 * Without forking (CK_FORK=no, the sanitizer runs) every test ran in
	 * this process: a descriptor one of them left open is still here.
	 */
	if (!check_forking() && check_open_fds() != fds) {
		fprintf(stderr, "FAIL: the tests left %d descriptor(s) open\n",
		    check_open_fds() - fds);
		failed++;
	}
	srunner_free(runner);
	runner = NULL;
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
