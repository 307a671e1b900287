/*
 * sdlib.h - libsystemd, loaded only when a systemd feature is in use.
 *
 * Each call does nothing, and loads nothing, when the environment shows
 * systemd did not ask for it (no NOTIFY_SOCKET, no LISTEN_FDS, no
 * WATCHDOG_USEC); otherwise the first call dlopen()s libsystemd.so.0.
 * -ELIBACC means the library was needed but cannot be loaded
 * (sdlib_error() says why).
 */
#ifndef ECHOTIMED_SDLIB_H
#define ECHOTIMED_SDLIB_H

#include <stdint.h>
#include <sys/uio.h>

/* The first fd systemd passes (SD_LISTEN_FDS_START). */
#define SDLIB_LISTEN_FDS_START	3

/* Load libsystemd now if not yet done: 0 or -ELIBACC. */
int	sdlib_load(void);
/* Why the last sdlib_load() failed ("" if it did not). */
const char *sdlib_error(void);
/* The first of NOTIFY_SOCKET, LISTEN_FDS, WATCHDOG_USEC set, or NULL:
 * what makes the daemon load libsystemd. */
const char *sdlib_wanted(void);
/* True once libsystemd is loaded (the tests look). */
int	sdlib_loaded(void);

/* sd_notify(0, state): 0 without NOTIFY_SOCKET, else as sd_notify. */
int	sdlib_notify(const char *state);
/* sd_pid_notify_with_fds(0, 0, state, fds, n), same rule. */
int	sdlib_notify_with_fds(const char *state, const int *fds, unsigned n);
/* sd_watchdog_enabled(0, usec): 0 without WATCHDOG_USEC. */
int	sdlib_watchdog_enabled(uint64_t *usec);
/* sd_listen_fds_with_names(0, names): 0 without LISTEN_PID/LISTEN_FDS. */
int	sdlib_listen_fds_with_names(char ***names);
/* sd_journal_sendv(iov, n); loads the library if needed. */
int	sdlib_journal_sendv(const struct iovec *iov, int n);

/*
 * sd_is_socket() and sd_is_socket_inet(), without the library: the same
 * answers from fstat(), getsockopt() and getsockname().
 */
int	sdlib_is_socket(int fd, int family, int type, int listening);
int	sdlib_is_socket_inet(int fd, int family, int type, int listening,
	    uint16_t port);

#endif
