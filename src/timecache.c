/*
 * timecache.c - per-second cache of the ctime() timestamp.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "timecache.h"

static pthread_mutex_t	tc_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t		tc_sec = (time_t)-1;
static char		tc_text[LP_TIMESTAMP_LEN + 1];
static pthread_once_t	tc_once = PTHREAD_ONCE_INIT;

static void
tc_prepare(void)
{
	pthread_mutex_lock(&tc_lock);
}

static void
tc_release(void)
{
	pthread_mutex_unlock(&tc_lock);
}

static void
tc_register_atfork(void)
{
	(void)pthread_atfork(tc_prepare, tc_release, tc_release);
}

void
timecache_init(void)
{
	tzset();
}

void
timecache_before_threads(void)
{
	pthread_once(&tc_once, tc_register_atfork);
}

/* Each thread's copy: the shared lock is taken once a second per thread. */
static __thread time_t	tl_sec = (time_t)-1;
static __thread char	tl_text[LP_TIMESTAMP_LEN + 1];

void
timecache_now(char *ts)
{
	time_t now = time(NULL);

	if (now == tl_sec) {
		memcpy(ts, tl_text, LP_TIMESTAMP_LEN + 1);
		return;
	}
	pthread_mutex_lock(&tc_lock);
	if (now != tc_sec) {
		if (lp_format_time(now, tc_text) == 0)
			tc_sec = now;
		else
			memcpy(tc_text, "??? ??? ?? ??:??:?? ????",
			    LP_TIMESTAMP_LEN + 1);
	}
	memcpy(ts, tc_text, LP_TIMESTAMP_LEN + 1);
	memcpy(tl_text, tc_text, LP_TIMESTAMP_LEN + 1);
	tl_sec = tc_sec;
	pthread_mutex_unlock(&tc_lock);
}
