/*
 * timecache.h - the current time in ctime() form, formatted once a second.
 *
 * Thread-safe and fork-safe: the cache lock and every localtime_r() call
 * happen under one mutex, which fork() takes once the daemon starts other
 * threads (timecache_before_threads()), so a child forked from a threaded
 * daemon never inherits glibc's time-zone lock held.
 */
#ifndef ECHOTIMED_TIMECACHE_H
#define ECHOTIMED_TIMECACHE_H

#include "lineproto.h"

/* Call once before any thread exists (tzset). */
void	timecache_init(void);
/*
 * Call before starting a thread that may use the cache (idempotent):
 * fork() takes its lock from then on.  Without other threads nothing can
 * hold it, and the two handlers (this one and the log's) cost about 6 %
 * of a fork connection's CPU (tests/bench/README.md, "What the fork
 * parent writes").
 */
void	timecache_before_threads(void);
/* Copy the current timestamp (LP_TIMESTAMP_LEN chars + NUL) into ts. */
void	timecache_now(char *ts);

#endif
