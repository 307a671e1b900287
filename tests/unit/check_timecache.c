/*
 * check_timecache.c - unit tests of timecache.c: the ctime() text of the
 * current second, shared by threads, in the local time zone.
 *
 * The module reads the clock itself, so the tests bracket each call
 * between two time() readings and accept the text of any second in
 * between; a test that needs a new second waits for it (bounded).
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timecache.h"
#include "check_main.h"

/* The longest wait for the clock's next second, in milliseconds. */
#define SECOND_WAIT_MS	2000

/* ctime_r() of t without its newline, as the daemon's replies carry it. */
static void
ctime_text(time_t t, char *out)
{
	char buf[64];

	ck_assert_ptr_nonnull(ctime_r(&t, buf));
	ck_assert_uint_eq(strlen(buf), LP_TIMESTAMP_LEN + 1);
	ck_assert_int_eq(buf[LP_TIMESTAMP_LEN], '\n');
	memcpy(out, buf, LP_TIMESTAMP_LEN);
	out[LP_TIMESTAMP_LEN] = '\0';
}

/* The same text for a fixed offset east of UTC, computed without TZ. */
static void
offset_text(time_t t, long east, char *out)
{
	struct tm tm;
	time_t local = t + east;

	ck_assert_ptr_nonnull(gmtime_r(&local, &tm));
	ck_assert_uint_eq(strftime(out, LP_TIMESTAMP_LEN + 1,
	    "%a %b %e %H:%M:%S %Y", &tm), LP_TIMESTAMP_LEN);
}

/* True if ts is ctime_r() (or, with fixed, the offset text) of a second
 * in [t0, t1]. */
static bool
is_time_between(const char *ts, time_t t0, time_t t1, bool fixed, long east)
{
	char want[LP_TIMESTAMP_LEN + 1];
	time_t t;

	for (t = t0; t <= t1; t++) {
		if (fixed)
			offset_text(t, east, want);
		else
			ctime_text(t, want);
		if (strcmp(ts, want) == 0)
			return true;
	}
	return false;
}

/* Block until time() leaves second s: at most SECOND_WAIT_MS. */
static time_t
wait_second_after(time_t s)
{
	struct timespec start, now;
	time_t t;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while ((t = time(NULL)) == s) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert_msg((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000 < SECOND_WAIT_MS,
		    "the clock did not leave second %lld", (long long)s);
		(void)poll(NULL, 0, 1);
	}
	return t;
}

START_TEST(test_format)
{
	char ts[LP_TIMESTAMP_LEN + 1];
	time_t t0, t1;

	memset(ts, 'x', sizeof(ts));
	t0 = time(NULL);
	timecache_now(ts);
	t1 = time(NULL);
	ck_assert_uint_eq(strlen(ts), LP_TIMESTAMP_LEN);
	ck_assert_msg(is_time_between(ts, t0, t1, false, 0),
	    "\"%s\" is not ctime_r() of a second in [%lld, %lld]", ts,
	    (long long)t0, (long long)t1);
}
END_TEST

START_TEST(test_same_second_same_text)
{
	char a[LP_TIMESTAMP_LEN + 1], b[LP_TIMESTAMP_LEN + 1];
	time_t t0;
	int i;

	/* Bounded: a second change between the readings just retries. */
	for (i = 0; i < 5; i++) {
		t0 = time(NULL);
		timecache_now(a);
		timecache_now(b);
		if (time(NULL) == t0)
			break;
	}
	ck_assert_int_lt(i, 5);
	ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(test_changes_with_the_second)
{
	char before[LP_TIMESTAMP_LEN + 1], after[LP_TIMESTAMP_LEN + 1];
	time_t t0, t1;

	t0 = time(NULL);
	timecache_now(before);
	t1 = wait_second_after(time(NULL));
	timecache_now(after);
	ck_assert(is_time_between(before, t0, t1 - 1, false, 0));
	ck_assert(is_time_between(after, t1, time(NULL), false, 0));
	ck_assert_str_ne(before, after);
}
END_TEST

/* Each thread keeps a copy of its own: all must read the same clock. */
#define THREADS		4
#define THREAD_CALLS	2000

static void *
read_often(void *arg)
{
	char ts[LP_TIMESTAMP_LEN + 1];
	time_t t0, t1;
	int i, *bad = arg;

	for (i = 0; i < THREAD_CALLS; i++) {
		t0 = time(NULL);
		timecache_now(ts);
		t1 = time(NULL);
		if (!is_time_between(ts, t0, t1, false, 0))
			(*bad)++;
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t th[THREADS];
	int bad[THREADS] = { 0 }, i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, read_often,
		    &bad[i]), 0);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(bad[i], 0);
	}
}
END_TEST

/*
 * TZ is honoured: with tzset() after the change, the text of the next
 * second is in the new zone (the text of the current second is cached,
 * so a zone change shows from the next second on; the daemon sets its
 * zone once, in timecache_init()).  POSIX zone strings need no tzdata.
 */
START_TEST(test_tz)
{
	static const struct {
		const char	*tz;
		long		 east;	/* seconds east of UTC */
	} zones[] = {
		{ "<+0530>-5:30", 5 * 3600 + 30 * 60 },
		{ "<-10>10", -10 * 3600 },
	};
	char ts[LP_TIMESTAMP_LEN + 1], *old = getenv("TZ");
	time_t t0, t1;
	size_t i;

	old = old != NULL ? strdup(old) : NULL;
	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		ck_assert_int_eq(setenv("TZ", zones[i].tz, 1), 0);
		tzset();
		t0 = wait_second_after(time(NULL));
		timecache_now(ts);
		t1 = time(NULL);
		ck_assert_msg(is_time_between(ts, t0, t1, true, zones[i].east),
		    "TZ=%s: \"%s\"", zones[i].tz, ts);
	}
	if (old != NULL)
		ck_assert_int_eq(setenv("TZ", old, 1), 0);
	else
		ck_assert_int_eq(unsetenv("TZ"), 0);
	tzset();
	free(old);
}
END_TEST

static Suite *
timecache_suite(void)
{
	Suite	*s = suite_create("timecache");
	TCase	*tc;

	/* Once, as the daemon does before any thread exists. */
	timecache_init();

	tc = tcase_create("clock");
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_same_second_same_text);
	tcase_add_test(tc, test_changes_with_the_second);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);

	/* Last: it leaves the current second's text in another zone. */
	tc = tcase_create("tz");
	tcase_set_timeout(tc, 10);	/* up to two waits for a new second */
	tcase_add_test(tc, test_tz);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(timecache_suite)
