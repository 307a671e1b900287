/*
 * notify.c - the systemd notification protocol (sd_notify) and fd store.
 *
 * Every call is a no-op without NOTIFY_SOCKET (and then loads no
 * libsystemd: sdlib.c).  The environment is never
 * unset (a reload sends READY=1 again); keeping forked children away from
 * NOTIFY_SOCKET is the caller's job.  The one piece of state is the last
 * STATUS= text sent, so that an unchanged status is not sent again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify.h"
#include "sdlib.h"

#define STATUS_MAX	1024	/* longer STATUS= texts are cut */
#define FDNAME_MAX	255	/* systemd's limit */

static pthread_mutex_t	 status_lock = PTHREAD_MUTEX_INITIALIZER;
static char		 status_last[STATUS_MAX];	/* guarded */
static bool		 status_sent;			/* guarded */

/*
 * Copy a status text so that it is one field: a newline in it would start
 * another assignment in the datagram.
 */
static void
status_copy(char *dst, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i < STATUS_MAX - 1; i++)
		dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
	dst[i] = '\0';
}

/* Same rule as systemd's fdname_is_valid(), minus the empty name. */
static bool
fdname_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return false;
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == ':' || name[i] < ' ' || name[i] > '~')
			return false;
	return i <= FDNAME_MAX;
}

int
notify_enabled(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

/*
 * Send STATUS (after prefix, "" or "READY=1\n"), remembering it; an
 * unchanged status alone is not sent again.  Under the lock so that the
 * cache and the wire agree on order.
 */
static void
send_status(const char *prefix, const char *status)
{
	char buf[STATUS_MAX], msg[STATUS_MAX + 32];

	status_copy(buf, status);
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, buf);
	pthread_mutex_lock(&status_lock);
	if ((prefix[0] != '\0' || !status_sent ||
	    strcmp(buf, status_last) != 0) && sdlib_notify(msg) > 0) {
		memcpy(status_last, buf, sizeof(status_last));
		status_sent = true;
	}
	pthread_mutex_unlock(&status_lock);
}

void
notify_ready(const char *status)
{
	if (!notify_enabled())
		return;
	if (status == NULL)
		(void)sdlib_notify("READY=1");
	else
		send_status("READY=1\n", status);
}

void
notify_reloading(void)
{
	char msg[64];
	struct timespec ts;
	uint64_t usec;

	if (!notify_enabled())
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
	(void)sdlib_notify(msg);
}

void
notify_stopping(void)
{
	(void)sdlib_notify("STOPPING=1");
}

void
notify_status(const char *status)
{
	if (status != NULL && notify_enabled())
		send_status("", status);
}

uint64_t
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sdlib_watchdog_enabled(&usec) <= 0)
		return 0;
	return usec;
}

void
notify_watchdog(void)
{
	(void)sdlib_notify("WATCHDOG=1");
}

int
notify_fdstore(int fd, const char *name)
{
	char msg[sizeof("FDSTORE=1\nFDNAME=") + FDNAME_MAX];
	int r;

	if (fd < 0 || !fdname_ok(name))
		return -EINVAL;
	if (!notify_enabled())
		return 0;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sdlib_notify_with_fds(msg, &fd, 1);
	return r < 0 ? r : 0;
}

void
notify_fdstore_remove(const char *name)
{
	char msg[sizeof("FDSTOREREMOVE=1\nFDNAME=") + FDNAME_MAX];

	if (!fdname_ok(name))
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	(void)sdlib_notify(msg);
}
