/*
 * notify.h - the systemd notification protocol (sd_notify) and fd store.
 * Every call is a no-op without NOTIFY_SOCKET.
 */
#ifndef ECHOTIMED_NOTIFY_H
#define ECHOTIMED_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line. */
void	notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=. */
void	notify_reloading(void);
/* STOPPING=1. */
void	notify_stopping(void);
/* STATUS= only; sent only when it changed since the last call. */
void	notify_status(const char *status);
/* Watchdog interval in microseconds from WATCHDOG_USEC, 0 if none. */
uint64_t notify_watchdog_usec(void);
/* WATCHDOG=1. */
void	notify_watchdog(void);
/* Store fd in the service manager's fd store under name. 0 or -errno. */
int	notify_fdstore(int fd, const char *name);
/* Remove every stored fd of that name. */
void	notify_fdstore_remove(const char *name);
/* True when a service manager listens (NOTIFY_SOCKET set). */
int	notify_enabled(void);

#endif
