/*
 * ratelimit.h - per-source token buckets in a fixed-size table.
 *
 * The table never grows: a flood of spoofed sources evicts old buckets
 * instead of eating memory.  Pure: the caller passes the time in; not
 * thread-safe (the caller serialises).
 */
#ifndef ECHOTIMED_RATELIMIT_H
#define ECHOTIMED_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/*
 * rate tokens per second, up to burst tokens, slots buckets (rounded up to
 * a power of two).  rate 0 means unlimited.  NULL on ENOMEM.
 */
struct ratelimit *ratelimit_new(unsigned rate, unsigned burst, size_t slots);
/* Take one token for key at now_ns (monotonic); false if none is left. */
bool		 ratelimit_allow(struct ratelimit *rl, const void *key,
		    size_t keylen, uint64_t now_ns);
/* Free; NULL is fine. */
void		 ratelimit_free(struct ratelimit *rl);

#endif
