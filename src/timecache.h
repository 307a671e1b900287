/*
 * timecache.h - the current time in ctime() form, formatted once a second.
 *
 * Thread-safe and fork-safe: the cache lock and every localtime_r() call
 * happen under one mutex that is taken across fork(), so a child forked
 * from a threaded daemon never inherits glibc's time-zone lock held.
 */
#ifndef ECHOTIMED_TIMECACHE_H
#define ECHOTIMED_TIMECACHE_H

#include "lineproto.h"

/* Call once before any thread exists (tzset, atfork handlers). */
void	timecache_init(void);
/* Copy the current timestamp (LP_TIMESTAMP_LEN chars + NUL) into ts. */
void	timecache_now(char *ts);

#endif
