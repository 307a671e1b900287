/*
 * check_nofork.c - unit tests for memory a fork child does not inherit:
 * the pool's objects (zeroed, distinct, reused, chunks mapped and given
 * back) and what a child sees of them (nothing: it dies reading them).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "nofork.h"
#include "check_main.h"

/* An object of about a conn's size: 67 of them fill a 64 KiB chunk. */
#define OBJ	968

START_TEST(test_objects_zeroed_distinct_aligned)
{
	struct nofork_pool p = NOFORK_POOL(OBJ);
	unsigned char *o[200];
	size_t i, j;

	for (i = 0; i < 200; i++) {
		o[i] = nofork_pool_get(&p);
		ck_assert_ptr_nonnull(o[i]);
		ck_assert_uint_eq((uintptr_t)o[i] % 16, 0);
		for (j = 0; j < OBJ; j++)
			ck_assert_uint_eq(o[i][j], 0);
		memset(o[i], (int)(i + 1), OBJ);
	}
	/* No object overlaps another: each still holds its own bytes. */
	for (i = 0; i < 200; i++)
		for (j = 0; j < OBJ; j++)
			ck_assert_uint_eq(o[i][j], (unsigned char)(i + 1));
	ck_assert_uint_eq(p.chunks, (200 + p.per_chunk - 1) / p.per_chunk);
	for (i = 0; i < 200; i++)
		nofork_pool_put(&p, o[i]);
	nofork_pool_put(&p, NULL);
}
END_TEST

/* A freed object comes back zeroed; its chunk is kept while in use. */
START_TEST(test_reuse_zeroed)
{
	struct nofork_pool p = NOFORK_POOL(OBJ);
	unsigned char *a, *b, *c;
	size_t j;

	a = nofork_pool_get(&p);
	b = nofork_pool_get(&p);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	memset(b, 0xa5, OBJ);
	nofork_pool_put(&p, b);
	c = nofork_pool_get(&p);
	ck_assert_ptr_eq(c, b);
	for (j = 0; j < OBJ; j++)
		ck_assert_uint_eq(c[j], 0);
	ck_assert_uint_eq(p.chunks, 1);
	nofork_pool_put(&p, a);
	nofork_pool_put(&p, c);
	ck_assert_uint_eq(p.chunks, 1);	/* the empty one is kept */
	ck_assert_uint_eq(p.empty, 1);
}
END_TEST

/*
 * After a peak, empty chunks are unmapped but one; a full chunk that frees
 * an object takes new ones again.
 */
START_TEST(test_chunks_given_back)
{
	struct nofork_pool p = NOFORK_POOL(OBJ);
	void *o[400];
	size_t i, n;

	for (i = 0; i < 400; i++)
		ck_assert_ptr_nonnull(o[i] = nofork_pool_get(&p));
	n = p.chunks;
	ck_assert_uint_eq(n, (400 + p.per_chunk - 1) / p.per_chunk);
	ck_assert_uint_eq(p.empty, 0);
	/* One from a full chunk: the next get takes its place. */
	nofork_pool_put(&p, o[0]);
	ck_assert_ptr_eq(nofork_pool_get(&p), o[0]);
	ck_assert_uint_eq(p.chunks, n);
	for (i = 0; i < 400; i++)
		nofork_pool_put(&p, o[i]);
	ck_assert_uint_eq(p.chunks, 1);
	ck_assert_uint_eq(p.empty, 1);
	/* And the pool serves from the kept chunk. */
	ck_assert_ptr_nonnull(o[0] = nofork_pool_get(&p));
	ck_assert_uint_eq(p.chunks, 1);
	ck_assert_uint_eq(p.empty, 0);
	nofork_pool_put(&p, o[0]);
}
END_TEST

/* Up to a chunk less its header: one object a chunk; more is EINVAL. */
START_TEST(test_sizes)
{
	struct nofork_pool big = NOFORK_POOL(60 * 1024), huge =
	    NOFORK_POOL(64 * 1024), wrap = NOFORK_POOL((size_t)-8);
	unsigned char *a, *b;

	ck_assert_ptr_nonnull(a = nofork_pool_get(&big));
	ck_assert_ptr_nonnull(b = nofork_pool_get(&big));
	ck_assert_uint_eq(big.per_chunk, 1);
	ck_assert_uint_eq(big.chunks, 2);
	memset(a, 1, 60 * 1024);
	memset(b, 2, 60 * 1024);
	ck_assert_uint_eq(a[60 * 1024 - 1], 1);
	nofork_pool_put(&big, a);
	nofork_pool_put(&big, b);
	ck_assert_uint_eq(big.chunks, 1);
	errno = 0;
	ck_assert_ptr_null(nofork_pool_get(&huge));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(huge.chunks, 0);
	errno = 0;
	ck_assert_ptr_null(nofork_pool_get(&wrap));	/* no overflow */
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD	1
#endif
#endif

#ifdef ASAN_BUILD
#include <sanitizer/asan_interface.h>

/*
 * Under AddressSanitizer the pool checks like malloc(): an object is
 * poisoned while free and has a poisoned red zone after it.
 */
START_TEST(test_asan_poison)
{
	struct nofork_pool p = NOFORK_POOL(OBJ);
	unsigned char *a = nofork_pool_get(&p);

	ck_assert_ptr_nonnull(a);
	ck_assert(!__asan_address_is_poisoned(a));
	ck_assert(!__asan_address_is_poisoned(a + OBJ - 1));
	ck_assert(__asan_address_is_poisoned(a + p.size - 1));
	nofork_pool_put(&p, a);
	ck_assert(__asan_address_is_poisoned(a));
	ck_assert(__asan_address_is_poisoned(a + OBJ - 1));
	ck_assert_ptr_eq(nofork_pool_get(&p), a);
	ck_assert(!__asan_address_is_poisoned(a + OBJ - 1));
	nofork_pool_put(&p, a);
}
END_TEST
#endif

START_TEST(test_alloc_zeroed)
{
	unsigned char *m = nofork_alloc(5000);
	size_t j;

	ck_assert_ptr_nonnull(m);
	for (j = 0; j < 5000; j++)
		ck_assert_uint_eq(m[j], 0);
	memset(m, 1, 5000);
	nofork_free(m, 5000);
	nofork_free(NULL, 5000);
}
END_TEST

/* A child's read of the byte at arg: exit 0 if it is 0x5a. */
static int
read_byte(const void *arg)
{
	return *(const volatile unsigned char *)arg == 0x5a ? 0 : 1;
}

/*
 * The point of the module: a fork child has none of it (a parent's write
 * to a page it shares with a child would copy the page).  Without
 * MADV_DONTFORK the child reads the byte and exits 0.
 */
START_TEST(test_child_does_not_inherit)
{
	struct nofork_pool p = NOFORK_POOL(OBJ);
	unsigned char *o = nofork_pool_get(&p), *m = nofork_alloc(100);
	unsigned char here = 0x5a;

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(m);
	o[10] = m[10] = 0x5a;
	ck_assert_int_eq(check_in_child(read_byte, &here), 256);	/* the probe works */
	ck_assert_int_eq(check_in_child(read_byte, o + 10), SIGSEGV);
	ck_assert_int_eq(check_in_child(read_byte, m + 10), SIGSEGV);
	/* The parent keeps it. */
	ck_assert_uint_eq(o[10], 0x5a);
	ck_assert_uint_eq(m[10], 0x5a);
	nofork_pool_put(&p, o);
	nofork_free(m, 100);
}
END_TEST

static Suite *
nofork_suite(void)
{
	Suite	*s = suite_create("nofork");
	TCase	*tc = tcase_create("nofork");

	tcase_add_test(tc, test_objects_zeroed_distinct_aligned);
	tcase_add_test(tc, test_reuse_zeroed);
	tcase_add_test(tc, test_chunks_given_back);
	tcase_add_test(tc, test_sizes);
#ifdef ASAN_BUILD
	tcase_add_test(tc, test_asan_poison);
#endif
	tcase_add_test(tc, test_alloc_zeroed);
	tcase_add_test(tc, test_child_does_not_inherit);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(nofork_suite)
