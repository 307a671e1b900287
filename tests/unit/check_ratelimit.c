/*
 * check_ratelimit.c - unit tests for the per-source token buckets.
 *
 * Time is simulated: every call passes its own "monotonic" nanoseconds.
 */
#include <check.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "check_main.h"

#define SEC	1000000000ULL
#define MS	1000000ULL
#define T0	(1000 * SEC)		/* an arbitrary monotonic start */

static bool
allow_s(struct ratelimit *rl, const char *key, uint64_t now)
{
	return ratelimit_allow(rl, key, strlen(key), now);
}

/* How many of n calls at time now are allowed. */
static unsigned
burst_of(struct ratelimit *rl, const char *key, uint64_t now, unsigned n)
{
	unsigned	i, ok = 0;

	for (i = 0; i < n; i++)
		ok += allow_s(rl, key, now);
	return ok;
}

START_TEST(test_burst)
{
	struct ratelimit *rl = ratelimit_new(10, 5, 64);

	ck_assert_ptr_nonnull(rl);
	ck_assert_uint_eq(burst_of(rl, "a", T0, 100), 5);
	ck_assert(!allow_s(rl, "a", T0));
	ratelimit_free(rl);

	rl = ratelimit_new(1, 1, 64);
	ck_assert(allow_s(rl, "a", T0));
	ck_assert(!allow_s(rl, "a", T0));
	ratelimit_free(rl);

	/* burst 0 would refuse everything forever; it acts as 1. */
	rl = ratelimit_new(10, 0, 64);
	ck_assert_uint_eq(burst_of(rl, "a", T0, 10), 1);
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_refill)
{
	struct ratelimit *rl = ratelimit_new(10, 5, 64);

	ck_assert_uint_eq(burst_of(rl, "a", T0, 5), 5);
	/* 10/s: one token every 100 ms, to the nanosecond. */
	ck_assert(!allow_s(rl, "a", T0 + 100 * MS - 1));
	ck_assert(allow_s(rl, "a", T0 + 100 * MS));
	ck_assert(!allow_s(rl, "a", T0 + 100 * MS));
	/* Fractions add up: 3 x 33.333334 ms earn one token. */
	ck_assert(!allow_s(rl, "a", T0 + 133333334));
	ck_assert(!allow_s(rl, "a", T0 + 166666667));
	ck_assert(allow_s(rl, "a", T0 + 200 * MS));
	/* 350 ms later: 3.5 tokens, so 3 now and a half left over. */
	ck_assert_uint_eq(burst_of(rl, "a", T0 + 550 * MS, 10), 3);
	ck_assert(allow_s(rl, "a", T0 + 600 * MS));
	/* A long pause refills up to the burst and no further. */
	ck_assert_uint_eq(burst_of(rl, "a", T0 + 3600 * SEC, 100), 5);
	/* A clock that goes back earns nothing and does not crash. */
	ck_assert(!allow_s(rl, "a", T0));
	ck_assert(!allow_s(rl, "a", T0 + 3600 * SEC));
	ck_assert(allow_s(rl, "a", T0 + 3600 * SEC + 100 * MS));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_refill_rounding)
{
	/* 3/s: a token takes 333333333.3 ns, so 333333333 is not enough. */
	struct ratelimit *rl = ratelimit_new(3, 1, 64);

	ck_assert(allow_s(rl, "a", T0));
	ck_assert(!allow_s(rl, "a", T0 + 333333333));
	ck_assert(allow_s(rl, "a", T0 + 333333334));
	ck_assert(!allow_s(rl, "a", T0 + 333333334));
	ratelimit_free(rl);

	/*
	 * The same exactness when picking a victim: at T0 + 333333333 "a" is
	 * not yet full, so the least recently seen "b" makes room for "c".
	 */
	rl = ratelimit_new(3, 1, 2);
	ck_assert(allow_s(rl, "b", T0 + 10));
	ck_assert(allow_s(rl, "a", T0));
	ck_assert(allow_s(rl, "c", T0 + 333333333));
	ck_assert(!allow_s(rl, "a", T0 + 333333333));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_steady_rate)
{
	struct ratelimit *rl = ratelimit_new(100, 200, 64);
	unsigned	  ok = 0, i;

	/* 10 s of 1000 requests/s: burst 200 + 100/s * 10 s. */
	for (i = 0; i < 10000; i++)
		ok += allow_s(rl, "src", T0 + (uint64_t)i * MS);
	ck_assert_uint_ge(ok, 1199);
	ck_assert_uint_le(ok, 1200);
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_no_overflow)
{
	struct ratelimit *rl = ratelimit_new(UINT_MAX, UINT_MAX, 8);
	unsigned	  i;

	ck_assert_ptr_nonnull(rl);
	for (i = 0; i < 1000; i++)
		ck_assert(allow_s(rl, "a", 0));
	ck_assert(allow_s(rl, "a", UINT64_MAX / 2));
	ck_assert(allow_s(rl, "a", UINT64_MAX));
	ratelimit_free(rl);

	/* Slow rate, huge burst, huge gap: still exact. */
	rl = ratelimit_new(1, UINT_MAX, 8);
	ck_assert(allow_s(rl, "a", 0));
	ck_assert(allow_s(rl, "a", UINT64_MAX));
	ratelimit_free(rl);

	rl = ratelimit_new(UINT_MAX, 1, 8);
	ck_assert(allow_s(rl, "a", 5));
	ck_assert(!allow_s(rl, "a", 5));
	/* At UINT_MAX/s one nanosecond earns more than one token. */
	ck_assert(allow_s(rl, "a", 6));
	ck_assert(allow_s(rl, "a", UINT64_MAX));
	ck_assert(!allow_s(rl, "a", UINT64_MAX));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_keys_independent)
{
	struct ratelimit *rl = ratelimit_new(1, 3, 64);
	static const uint8_t k1[] = { 10, 0, 0, 1 }, k2[] = { 10, 0, 0, 2 };
	static const uint8_t k3[] = { 10, 0, 0, 1, 0 };
	unsigned	  i;

	ck_assert_uint_eq(burst_of(rl, "alice", T0, 10), 3);
	ck_assert_uint_eq(burst_of(rl, "bob", T0, 10), 3);
	ck_assert(!allow_s(rl, "alice", T0));
	/* Binary keys, and a key that is a prefix of another. */
	for (i = 0; i < 3; i++)
		ck_assert(ratelimit_allow(rl, k1, sizeof(k1), T0));
	ck_assert(!ratelimit_allow(rl, k1, sizeof(k1), T0));
	ck_assert(ratelimit_allow(rl, k2, sizeof(k2), T0));
	ck_assert(ratelimit_allow(rl, k3, sizeof(k3), T0));
	ck_assert(ratelimit_allow(rl, k1, 3, T0));
	ck_assert(ratelimit_allow(rl, "", 0, T0));
	ratelimit_free(rl);
}
END_TEST

START_TEST(test_unlimited)
{
	struct ratelimit *rl = ratelimit_new(0, 0, 0);
	char		  key[16];
	unsigned	  i;

	ck_assert_ptr_nonnull(rl);
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "%u", i % 7);
		ck_assert(allow_s(rl, key, T0));
	}
	ratelimit_free(rl);
	ratelimit_free(NULL);
}
END_TEST

START_TEST(test_tiny_tables)
{
	struct ratelimit *rl;
	size_t		  slots;

	/* Any size is rounded up to a power of two and works. */
	for (slots = 0; slots < 20; slots++) {
		rl = ratelimit_new(1, 2, slots);
		ck_assert_ptr_nonnull(rl);
		ck_assert_uint_eq(burst_of(rl, "a", T0, 5), 2);
		ck_assert_uint_eq(burst_of(rl, "a", T0, 5), 0);
		ratelimit_free(rl);
	}
	ck_assert_ptr_null(ratelimit_new(1, 1, SIZE_MAX));
}
END_TEST

START_TEST(test_evicts_full_before_lru)
{
	/* 8 slots, all in every key's probe window: eviction is exact. */
	struct ratelimit *rl = ratelimit_new(1, 2, 8);
	char		  key[8];
	unsigned	  i;

	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_uint_eq(burst_of(rl, key, T0, i == 3 ? 1 : 2),
		    i == 3 ? 1 : 2);
	}
	/* One second later k3 is full again, the others hold one token. */
	ck_assert(allow_s(rl, "new", T0 + SEC));
	/* k3 (full) made room, not k0 (least recently seen). */
	ck_assert_uint_eq(burst_of(rl, "k0", T0 + SEC, 5), 1);
	ck_assert_uint_eq(burst_of(rl, "k1", T0 + SEC, 5), 1);

	/* No full bucket left: the least recently seen one, k2, goes. */
	ck_assert(allow_s(rl, "newer", T0 + SEC));
	for (i = 4; i < 8; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_uint_eq(burst_of(rl, key, T0 + SEC, 5), 1);
	}
	/* Evicted, k2 starts over from a full bucket. */
	ck_assert_uint_eq(burst_of(rl, "k2", T0 + SEC, 5), 2);
	ratelimit_free(rl);
}
END_TEST

/*
 * Flood a 16-slot table with 10000 distinct keys while one hot key keeps
 * asking: the table never allocates, old keys are forgotten, and the hot
 * key, always recently seen, stays limited.
 */
static unsigned
flood(unsigned every, uint64_t step_ns, size_t *heap_growth)
{
	struct ratelimit *rl = ratelimit_new(10, 5, 16);
	struct mallinfo2  before, after;
	char		  key[32];
	uint64_t	  now = T0;
	unsigned	  i, hot_ok = 0;

	ck_assert_ptr_nonnull(rl);
	ck_assert(allow_s(rl, "first", now));
	before = mallinfo2();
	for (i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "spoofed-%u", i);
		ck_assert(allow_s(rl, key, now));
		if (i % every == 0)
			hot_ok += allow_s(rl, "hot", now);
		now += step_ns;
	}
	after = mallinfo2();
	*heap_growth = after.uordblks - before.uordblks;
	/* "first" was pushed out long ago: it starts from a full bucket. */
	ck_assert_uint_eq(burst_of(rl, "first", now, 10), 5);
	ratelimit_free(rl);
	return hot_ok;
}

START_TEST(test_flood_bounded)
{
	size_t		growth;
	unsigned	ok;

	/* Frozen clock: the hot key gets its burst and nothing more. */
	ok = flood(1, 0, &growth);
	ck_assert_uint_eq(ok, 5);
	ck_assert_uint_eq(growth, 0);

	/* 1 s of simulated time: burst 5 + 10/s. */
	ok = flood(1, 100000, &growth);
	ck_assert_uint_ge(ok, 14);
	ck_assert_uint_le(ok, 15);
	ck_assert_uint_eq(growth, 0);

	/* The hot key asks only every 4th datagram. */
	ok = flood(4, 100000, &growth);
	ck_assert_uint_ge(ok, 14);
	ck_assert_uint_le(ok, 15);
	ck_assert_uint_eq(growth, 0);
}
END_TEST

static Suite *
ratelimit_suite(void)
{
	Suite	*s = suite_create("ratelimit");
	TCase	*tc = tcase_create("bucket");

	tcase_add_test(tc, test_burst);
	tcase_add_test(tc, test_refill);
	tcase_add_test(tc, test_refill_rounding);
	tcase_add_test(tc, test_steady_rate);
	tcase_add_test(tc, test_no_overflow);
	tcase_add_test(tc, test_keys_independent);
	tcase_add_test(tc, test_unlimited);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_tiny_tables);
	tcase_add_test(tc, test_evicts_full_before_lru);
	tcase_add_test(tc, test_flood_bounded);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ratelimit_suite)
