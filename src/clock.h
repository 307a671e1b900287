/*
 * clock.h - the daemon's clock: CLOCK_MONOTONIC, which no change of the
 * wall clock moves.  Every deadline, timer and duration uses it.
 */
#ifndef ECHOTIMED_CLOCK_H
#define ECHOTIMED_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds. */
uint64_t	clock_ms(void);
/* Monotonic time in nanoseconds (rate limits, busy polling). */
uint64_t	clock_ns(void);

#endif
