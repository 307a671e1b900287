/*
 * dgpeer.h - reach a unix-dgram sender at the socket it bound, and only
 * there.
 *
 * A reply to a Unix datagram goes to the path the sender bound.  sendto()
 * by that path would resolve it again, after the sender may have swapped a
 * directory on it for a symbolic link to somebody else's socket (/dev/log,
 * the journal, systemd's notify socket).  So the path is opened once
 * without following any link, checked to be a socket owned by the sender
 * (whose uid the kernel vouches for: SO_PASSCRED), and the reply goes
 * through that open file (/proc/self/fd/N), which no later rename can
 * redirect.  Never logs: errors are -errno, dgpeer_strerror() says why.
 */
#ifndef ECHOTIMED_DGPEER_H
#define ECHOTIMED_DGPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* A sender path and its NUL: sun_path may use all its bytes without one. */
#define DGPEER_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) + 1)

enum dgpeer_kind {
	DGPEER_UNBOUND,		/* no address at all: nothing to answer */
	DGPEER_ABSTRACT,	/* abstract name: no file, so no link */
	DGPEER_RELATIVE,	/* relative to the sender's unknown cwd */
	DGPEER_PATH,		/* absolute path of a socket file */
	DGPEER_INVALID,		/* longer than any the kernel binds */
};

/* The sender of one datagram, as the kernel reports it. */
struct dgpeer_cred {
	bool		 known;	/* SCM_CREDENTIALS came with it */
	struct ucred	 uc;
};

/* Where to send a reply: valid until dgpeer_close(). */
struct dgpeer {
	const struct sockaddr	*sa;	/* the peer itself, or &proc */
	socklen_t		 salen;
	int			 fd;	/* O_PATH of the socket file, or -1 */
	struct sockaddr_un	 proc;	/* /proc/self/fd/<fd> */
};

/*
 * Pure.  What a Unix sender's address (len bytes at sa, family AF_UNIX)
 * names; for DGPEER_PATH, path (DGPEER_PATH_MAX bytes) gets it with a NUL.
 */
enum dgpeer_kind dgpeer_classify(const struct sockaddr *sa, socklen_t len,
		    char *path);
/*
 * Pure.  The next component of path at or after *pos, slashes skipped:
 * its offset and length; *pos moves past it.  false when none is left.
 */
bool		 dgpeer_component(const char *path, size_t *pos,
		    size_t *start, size_t *len);

/* Ask for every sender's credentials on a unix-dgram socket. 0 or -errno. */
int		 dgpeer_listen(int fd);
/*
 * recvfrom(), returning -errno, that also takes the sender's credentials if
 * the socket passes them.  Descriptors a sender passes along are closed.
 */
ssize_t		 dgpeer_recv(int fd, void *buf, size_t len, int flags,
		    struct sockaddr_storage *from, socklen_t *fromlen,
		    struct dgpeer_cred *cred);
/*
 * Open absolute path O_PATH without following any symbolic link: with
 * openat2(RESOLVE_NO_SYMLINKS), or component by component with
 * O_NOFOLLOW (walk, or a kernel before 5.6).  An fd or -errno.
 */
int		 dgpeer_open_path(const char *path, bool walk);
/*
 * Fill p with where a reply to the sender (sa, len, cred) may go: itself
 * for other families and abstract names; for a path, the socket file
 * opened without links, a socket owned by the sender's uid.  0 or -errno:
 * -EDESTADDRREQ unbound, -EXDEV relative path, -ENAMETOOLONG, -ENODATA no
 * credentials (or pid 0), -ELOOP a symbolic link, -ENOTSOCK, -EPERM other
 * owner, or the error that opening the path met.
 */
int		 dgpeer_open(struct dgpeer *p, const struct sockaddr *sa,
		    socklen_t len, const struct dgpeer_cred *cred);
/* Release what dgpeer_open() took; fine after it failed. */
void		 dgpeer_close(struct dgpeer *p);
/* Why dgpeer_open() said no, for a log line. */
const char	*dgpeer_strerror(int r);

#endif
