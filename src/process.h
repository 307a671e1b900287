/*
 * process.h - classic daemon chores for hosts without systemd: detach,
 * pidfile, and dropping root after the sockets are bound.
 */
#ifndef ECHOTIMED_PROCESS_H
#define ECHOTIMED_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Open and lock path (flock, non-blocking).  Returns the fd, or -EAGAIN
 * when another live process holds it, or another -errno; err explains.
 */
int	pidfile_lock(const char *path, char *err, size_t errlen);
/* Write our pid into the locked pidfile. 0 or -errno. */
int	pidfile_write(int fd);
/*
 * Detach from the terminal: fork, setsid, fork, chdir /, stdin and stdout
 * to /dev/null.  The parent waits and exits with the status the daemon
 * reports through daemonize_done().  Returns in the daemon, 0 or -errno.
 */
int	daemonize(void);
/* Report start-up status to the waiting parent; on success stderr goes
 * to /dev/null. */
void	daemonize_done(int status);
/*
 * Look up user and group by name ("" or NULL: none).  *uid is the user's
 * (-1 without one); *gid the group's or, without one, the user's primary
 * group (-1 without either).  0, or -ENOENT with err saying which name is
 * unknown.
 */
int	lookup_ids(const char *user, const char *group, uid_t *uid, gid_t *gid,
	    char *err, size_t errlen);
/*
 * Become user/group (group defaults to the user's primary group), with
 * its supplementary groups.  Verifies root cannot be regained.  Only acts
 * when running as root; "" user = stay.  0 or -errno with err filled.
 */
int	drop_privileges(const char *user, const char *group, char *err,
	    size_t errlen);

#endif
