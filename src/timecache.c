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

void
timecache_init(void)
{
	tzset();
	pthread_atfork(tc_prepare, tc_release, tc_release);
}

void
timecache_now(char *ts)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&tc_lock);
	if (now != tc_sec) {
		if (lp_format_time(now, tc_text) == 0)
			tc_sec = now;
		else
			memcpy(tc_text, "??? ??? ?? ??:??:?? ????",
			    LP_TIMESTAMP_LEN + 1);
	}
	memcpy(ts, tc_text, LP_TIMESTAMP_LEN + 1);
	pthread_mutex_unlock(&tc_lock);
}
