/*
 * sdlib.c - libsystemd, loaded only when a systemd feature is in use.
 *
 * Linked normally, libsystemd.so.0 brings liblzma, libzstd, liblz4,
 * libcap, libgcrypt and libgpg-error with it, and with -z now every one
 * of them is mapped and relocated at each start: more than half of the
 * CPU an `echotimed -i` session costs a super-server (inetd, tcpserver)
 * that runs one process per connection.  Such a session needs none of it.
 * So the library is opened with dlopen() the first time something needs
 * it, and the environment decides whether anything does: systemd sets
 * NOTIFY_SOCKET, LISTEN_FDS/LISTEN_PID and WATCHDOG_USEC when it wants
 * what they stand for, and libsystemd itself does nothing without them.
 * The journal is chosen by log.c, which loads the library when it does.
 *
 * The function pointers take their types from libsystemd's own headers,
 * so a prototype that changed would not compile.  The library is loaded
 * once, under pthread_once(), and never unloaded.  Every caller loads it
 * from the main thread while starting (or reloading, still before any
 * fork child of that configuration exists): a child forked from a
 * threaded process must not be the first to run the dynamic linker.
 *
 * sd_is_socket() and sd_is_socket_inet() are a few system calls on a
 * descriptor, and the inetd mode asks them of its stdin: they are done
 * here, as systemd 252 does them, so that asking loads nothing.
 */
#define SD_JOURNAL_SUPPRESS_LOCATION	/* sd_journal_sendv, not a macro */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "sdlib.h"

#define SDLIB_SONAME	"libsystemd.so.0"

_Static_assert(SDLIB_LISTEN_FDS_START == SD_LISTEN_FDS_START,
    "sdlib.h disagrees with sd-daemon.h");

/* One pointer per function used, named as the function without "sd_". */
static struct {
	typeof(sd_notify)		*notify;
	typeof(sd_pid_notify_with_fds)	*pid_notify_with_fds;
	typeof(sd_watchdog_enabled)	*watchdog_enabled;
	typeof(sd_listen_fds_with_names) *listen_fds_with_names;
	typeof(sd_journal_sendv)	*journal_sendv;
} sd;

static pthread_once_t	 sd_once = PTHREAD_ONCE_INIT;
static bool		 sd_ok;			/* written once, under sd_once */
static char		 sd_err[256];		/* likewise */

/* Resolve sd_NAME into sd.NAME, its type checked against the header. */
#define SD_RESOLVE(h, name)						\
	((sd.name = (typeof(sd_##name) *)dlsym((h), "sd_" #name)) != NULL)

static void
sd_open(void)
{
	const char *e;
	void *h;

	if ((h = dlopen(SDLIB_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		e = dlerror();
		snprintf(sd_err, sizeof(sd_err), "%s", e ? e :
		    SDLIB_SONAME ": cannot be loaded");
		return;
	}
	if (!SD_RESOLVE(h, notify) || !SD_RESOLVE(h, pid_notify_with_fds) ||
	    !SD_RESOLVE(h, watchdog_enabled) ||
	    !SD_RESOLVE(h, listen_fds_with_names) ||
	    !SD_RESOLVE(h, journal_sendv)) {
		e = dlerror();
		snprintf(sd_err, sizeof(sd_err), SDLIB_SONAME ": %s",
		    e ? e : "a function is missing");
		memset(&sd, 0, sizeof(sd));
		dlclose(h);
		return;
	}
	sd_ok = true;
}

int
sdlib_load(void)
{
	pthread_once(&sd_once, sd_open);
	return sd_ok ? 0 : -ELIBACC;
}

const char *
sdlib_error(void)
{
	return sd_ok ? "" : sd_err;
}

int
sdlib_loaded(void)
{
	return sd_ok;
}

/*
 * Whether systemd asked for what var stands for: 0 if not (the caller
 * does nothing), 1 with the library loaded, or -ELIBACC.
 */
static int
need(const char *var)
{
	if (getenv(var) == NULL)
		return 0;
	return sdlib_load() < 0 ? -ELIBACC : 1;
}

const char *
sdlib_wanted(void)
{
	static const char *const vars[] = { "NOTIFY_SOCKET", "LISTEN_FDS",
	    "WATCHDOG_USEC" };
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) != NULL)
			return vars[i];
	return NULL;
}

int
sdlib_notify(const char *state)
{
	int r;

	return (r = need("NOTIFY_SOCKET")) <= 0 ? r : sd.notify(0, state);
}

int
sdlib_notify_with_fds(const char *state, const int *fds, unsigned n)
{
	int r;

	return (r = need("NOTIFY_SOCKET")) <= 0 ? r :
	    sd.pid_notify_with_fds(0, 0, state, fds, n);
}

int
sdlib_watchdog_enabled(uint64_t *usec)
{
	int r;

	return (r = need("WATCHDOG_USEC")) <= 0 ? r :
	    sd.watchdog_enabled(0, usec);
}

int
sdlib_listen_fds_with_names(char ***names)
{
	int r;

	if (names != NULL)
		*names = NULL;
	/* sd_listen_fds() needs both; without either it returns 0. */
	if (getenv("LISTEN_PID") == NULL)
		return 0;
	return (r = need("LISTEN_FDS")) <= 0 ? r :
	    sd.listen_fds_with_names(0, names);
}

int
sdlib_journal_sendv(const struct iovec *iov, int n)
{
	if (sdlib_load() < 0)
		return -ELIBACC;
	return sd.journal_sendv(iov, n);
}

/* ---- socket checks, as libsystemd's sd-daemon.c does them ---- */

/* 1 if fd is a socket of that type (0: any) and listening state (-1: any). */
static int
is_socket_internal(int fd, int type, int listening)
{
	struct stat st;
	socklen_t l;
	int v;

	if (fd < 0)
		return -EBADF;
	if (type < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return 0;
	if (type != 0) {
		v = 0;
		l = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0)
			return -errno;
		if (l != sizeof(v))
			return -EINVAL;
		if (v != type)
			return 0;
	}
	if (listening >= 0) {
		v = 0;
		l = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0)
			return -errno;
		if (l != sizeof(v))
			return -EINVAL;
		if (!v != !listening)
			return 0;
	}
	return 1;
}

/* The family of the socket's own address, or -errno. */
static int
sock_family(int fd, struct sockaddr_storage *ss)
{
	socklen_t l = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (getsockname(fd, (struct sockaddr *)ss, &l) < 0)
		return -errno;
	if (l < sizeof(sa_family_t))
		return -EINVAL;
	return ss->ss_family;
}

int
sdlib_is_socket(int fd, int family, int type, int listening)
{
	struct sockaddr_storage ss;
	int r;

	if (fd < 0)
		return -EBADF;
	if (family < 0)
		return -EINVAL;
	if ((r = is_socket_internal(fd, type, listening)) <= 0)
		return r;
	if (family > 0) {
		if ((r = sock_family(fd, &ss)) < 0)
			return r;
		return r == family;
	}
	return 1;
}

int
sdlib_is_socket_inet(int fd, int family, int type, int listening,
    uint16_t port)
{
	struct sockaddr_storage ss;
	uint16_t p;
	int r;

	if (fd < 0)
		return -EBADF;
	if (family != 0 && family != AF_INET && family != AF_INET6)
		return -EINVAL;
	if ((r = is_socket_internal(fd, type, listening)) <= 0)
		return r;
	if ((r = sock_family(fd, &ss)) < 0)
		return r;
	if (r != AF_INET && r != AF_INET6)
		return 0;
	if (family != 0 && r != family)
		return 0;
	if (port > 0) {
		p = r == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port;
		return port == ntohs(p);
	}
	return 1;
}
