/*
 * ratelimit.c - per-source token buckets in a fixed-size table.
 *
 * The table is allocated once and never grows.  A key is identified by a
 * 128-bit SipHash-2-4 tag under a secret per-table seed, so a flood of
 * spoofed sources can neither aim collisions at one bucket nor make the
 * table grow; at worst it evicts buckets.  Each key may live in any of
 * RL_PROBE consecutive slots after its hash.  When none is free the victim
 * is a bucket that has refilled to full (forgetting it changes nothing, a
 * new bucket starts full too), else the least recently seen one.  Recency
 * is a call counter rather than the time, so it has no ties even when
 * many datagrams share one clock reading.
 *
 * Tokens are counted in nano-tokens (1 token = 10^9), so refilling at rate
 * tokens per second is rate nano-tokens per elapsed nanosecond: integer
 * arithmetic, no rounding drift.  burst * 10^9 < 2^64 for any unsigned
 * burst, and the refill product is only formed when it cannot overflow.
 */
#include <sys/random.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit.h"

#define NS_PER_TOKEN	1000000000ULL
#define RL_PROBE	8

struct rl_entry {
	uint64_t	tag[2];		/* keyed hash of the key */
	uint64_t	last_ns;	/* time of the last refill */
	uint64_t	tokens;		/* nano-tokens */
	uint64_t	seen;		/* rl->tick at the last use */
	bool		used;
};

struct ratelimit {
	uint64_t	 rate;		/* tokens per second, 0 = unlimited */
	uint64_t	 cap;		/* burst in nano-tokens */
	size_t		 mask;		/* slots - 1 */
	size_t		 probe;		/* slots looked at per key */
	uint64_t	 seed[4];	/* two SipHash keys */
	uint64_t	 tick;		/* counts calls, orders by recency */
	struct rl_entry	*slot;
};

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/* SipHash-2-4 of in[0..len) under the key k0, k1. */
static uint64_t
siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
	uint64_t	v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t	v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t	v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t	v3 = 0x7465646279746573ULL ^ k1;
	uint64_t	m, b = (uint64_t)len << 56;
	size_t		i, j, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = 0;
		for (j = 0; j < 8; j++)
			m |= (uint64_t)in[i + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (j = 0; j < left; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * Fill the seed from the kernel.  If getrandom() is unavailable the seed
 * falls back to clocks, pid and addresses: much weaker, but the limiter
 * still works, which beats refusing to start.
 */
static void
seed_table(struct ratelimit *rl)
{
	uint8_t		*p = (uint8_t *)rl->seed;
	size_t		 got = 0;
	ssize_t		 n;
	struct timespec	 ts;
	uint64_t	 mix[5];
	int		 i;

	while (got < sizeof(rl->seed)) {
		n = getrandom(p + got, sizeof(rl->seed) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(rl->seed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	mix[0] = (uint64_t)ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 32);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mix[1] = (uint64_t)ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 32);
	mix[2] = (uint64_t)getpid();
	mix[3] = (uint64_t)(uintptr_t)rl;
	mix[4] = (uint64_t)(uintptr_t)&ts;
	for (i = 0; i < 4; i++)
		rl->seed[i] ^= siphash(0x0706050403020100ULL + (uint64_t)i,
		    0x0f0e0d0c0b0a0908ULL, (const uint8_t *)mix, sizeof(mix));
}

struct ratelimit *
ratelimit_new(unsigned rate, unsigned burst, size_t slots)
{
	struct ratelimit	*rl;
	size_t			 n = 1;

	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	rl->rate = rate;
	/* A bucket that holds no token would refuse everything forever. */
	rl->cap = (uint64_t)(burst > 0 ? burst : 1) * NS_PER_TOKEN;
	if (rate == 0)
		return rl;

	while (n < slots) {
		if (n > SIZE_MAX / 2 / sizeof(struct rl_entry))
			goto nomem;
		n <<= 1;
	}
	if ((rl->slot = calloc(n, sizeof(*rl->slot))) == NULL)
		goto nomem;
	rl->mask = n - 1;
	rl->probe = n < RL_PROBE ? n : RL_PROBE;
	seed_table(rl);
	return rl;

nomem:
	free(rl);
	errno = ENOMEM;
	return NULL;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->slot);
	free(rl);
}

/* Nanoseconds until a bucket that is not full is full again. */
static uint64_t
ns_to_full(const struct ratelimit *rl, const struct rl_entry *e)
{
	uint64_t	need = rl->cap - e->tokens;

	return need / rl->rate + (need % rl->rate != 0);
}

/* Add the tokens earned since e->last_ns, up to the cap. */
static void
refill(const struct ratelimit *rl, struct rl_entry *e, uint64_t now_ns)
{
	uint64_t	elapsed;

	/* A clock that steps back earns nothing and moves nothing back. */
	if (now_ns <= e->last_ns)
		return;
	elapsed = now_ns - e->last_ns;
	e->last_ns = now_ns;
	if (e->tokens >= rl->cap)
		return;
	if (elapsed >= ns_to_full(rl, e))
		e->tokens = rl->cap;
	else	/* fewer than cap - tokens: no overflow */
		e->tokens += elapsed * rl->rate;
}

/* Would e be full at now_ns?  Such a bucket carries no information. */
static bool
is_full(const struct ratelimit *rl, const struct rl_entry *e,
    uint64_t now_ns)
{
	if (e->tokens >= rl->cap)
		return true;
	if (now_ns <= e->last_ns)
		return false;
	return now_ns - e->last_ns >= ns_to_full(rl, e);
}

bool
ratelimit_allow(struct ratelimit *rl, const void *key, size_t keylen,
    uint64_t now_ns)
{
	struct rl_entry	*e, *victim = NULL, *full = NULL, *lru;
	uint64_t	 tag[2];
	size_t		 i, idx;

	if (rl == NULL || rl->rate == 0)
		return true;

	tag[0] = siphash(rl->seed[0], rl->seed[1], key, keylen);
	tag[1] = siphash(rl->seed[2], rl->seed[3], key, keylen);
	idx = (size_t)tag[0];
	/* The first slot of the window is the fallback victim. */
	lru = &rl->slot[idx & rl->mask];
	for (i = 0; i < rl->probe; i++) {
		e = &rl->slot[(idx + i) & rl->mask];
		if (!e->used) {
			if (victim == NULL)
				victim = e;
			continue;
		}
		if (e->tag[0] == tag[0] && e->tag[1] == tag[1])
			goto found;
		if (full == NULL && is_full(rl, e, now_ns))
			full = e;
		if (e->seen < lru->seen)
			lru = e;
	}
	if (victim == NULL)
		victim = full != NULL ? full : lru;
	e = victim;
	e->used = true;
	e->tag[0] = tag[0];
	e->tag[1] = tag[1];
	e->last_ns = now_ns;
	e->tokens = rl->cap;

found:
	e->seen = ++rl->tick;
	refill(rl, e, now_ns);
	if (e->tokens < NS_PER_TOKEN)
		return false;
	e->tokens -= NS_PER_TOKEN;
	return true;
}
