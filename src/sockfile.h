/*
 * sockfile.h - the file of a Unix listening socket: the lock that
 * serialises probing, removing and binding a path among daemons, the
 * stale-socket check, and owner and mode set on the very file we made,
 * never through a link.  Like listener.c this never logs: errors are
 * -errno with a reason in msg, which the caller prefixes with the
 * listener it concerns.
 */
#ifndef ECHOTIMED_SOCKFILE_H
#define ECHOTIMED_SOCKFILE_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* The address of path ("@name": abstract); returns its length. */
socklen_t	sockfile_addr(const char *path, struct sockaddr_un *sun);
/*
 * Take path's lock (flock on PATH.lock), waiting a bounded time.  The
 * locked fd, or -errno with msg (may be NULL) filled.
 */
int		sockfile_lock(const char *path, char *msg, size_t msglen);
/* Remove the lock file we hold, then let go; fd < 0 is fine. */
void		sockfile_unlock(const char *path, int fd);
/*
 * With the lock held: remove a stale socket at path (nobody answers on
 * it); a live socket or any other file is an error.  0 or -errno.
 */
int		sockfile_clear_stale(const char *path, int socktype, char *msg,
		    size_t msglen);
/* The permission bits bind() would give: 0777 less the umask. 0 or -errno. */
int		sockfile_umask_mode(mode_t *mode);
/*
 * Open the socket file at path O_PATH without following a link.  It must
 * be the file made identifies (st_dev, st_ino; an st_ino of 0 matches no
 * file) or, with made NULL, the socket just bound with mode 0: ours, a
 * socket, mode 0, one name.  Anything else means that the name was
 * swapped since bind(), and we refuse to touch it.  The fd (and *st), or
 * -errno.
 */
int		sockfile_open_own(const char *path, const struct stat *made,
		    struct stat *st, char *msg, size_t msglen);
/*
 * Give the file open as pfd (from sockfile_open_own, *st its stat) owner
 * uid and group gid (-1: leave it) and mode (-1: leave it).  0 or -errno.
 */
int		sockfile_set_owner_mode(int pfd, const struct stat *st,
		    uid_t uid, gid_t gid, int mode, char *msg, size_t msglen);
/* Remove path if it is still the file (dev, ino).  0 or -errno. */
int		sockfile_unlink_own(const char *path, dev_t dev, ino_t ino);

#endif
