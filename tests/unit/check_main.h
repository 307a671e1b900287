/*
 * check_main.h - the one main() of every unit-test binary.
 *
 * Convention: tests/unit/check_X.c builds its suite in a function of its
 * own (static, named X_suite by habit) and, instead of a main(), ends with
 *
 *	CHECK_MAIN(X_suite)
 *
 * The Makefile links build/check_X from that file, check_main.o and the
 * library; check_main.c's main() runs the suite under Check's usual
 * variables (CK_FORK, CK_RUN_CASE, CK_VERBOSITY ...) and exits 0 only when
 * every test passed.  A file that still has a main() of its own fails to
 * link ("multiple definition of `main'"): replace it with the line above.
 */
#ifndef ECHOTIMED_CHECK_MAIN_H
#define ECHOTIMED_CHECK_MAIN_H

#include <check.h>
#include <stdbool.h>

/* This binary's suite: CHECK_MAIN() defines it. */
Suite	*check_suite(void);
/* True if each test runs in a child process of its own (CK_FORK=no is not
 * set), so a test may change process-wide state such as namespaces. */
bool	 check_forking(void);
/* Number of open descriptors, to show that a test closes what it opens. */
int	 check_open_fds(void);
/*
 * How a child that returns probe(arg) ends: the signal that killed it
 * (SIGSEGV at its default action), or 256 + its exit status.
 */
int	 check_in_child(int (*probe)(const void *), const void *arg);

#define CHECK_MAIN(suite_fn)						\
	Suite *check_suite(void) { return suite_fn(); }

#endif
