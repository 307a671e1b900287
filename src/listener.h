/*
 * listener.h - open, adopt and close the listening sockets of each
 * transport.  Like redis' anet.c this never logs: errors come back as
 * -errno plus a one-line reason in the caller's buffer.
 */
#ifndef ECHOTIMED_LISTENER_H
#define ECHOTIMED_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "netaddr.h"

#define LISTENER_ERRLEN	256

struct listener {
	struct listen_conf conf;	/* private deep copy */
	int		 fd;
	int		 socktype;	/* SOCK_STREAM or SOCK_DGRAM */
	char		 bound[NETADDR_STRLEN];	/* real address, port 0 resolved */
	int		 port;		/* bound port, -1 for unix */
	bool		 adopted;	/* passed by systemd: never unlink */
	bool		 unmatched;	/* passed, but in no configured listener */
	bool		 unlink_on_close;
	bool		 stored;	/* in systemd's fd store: the file stays
					   at exit for the next start */
	dev_t		 dev;		/* identity of the socket file we made */
	ino_t		 ino;
};

/*
 * Bind and listen as lc says.  A socket file is bound under the lock
 * PATH.lock (removed again), made with mode 0 and given its owner and mode
 * without following links.  0 or -errno with err filled.
 */
int	listener_open(const struct listen_conf *lc, struct listener **lp,
	    char *err, size_t errlen);
/*
 * Take over a socket passed by systemd (or the fd store).  lc is the
 * configured listener it matched, or NULL to serve it with defaults derived
 * from the socket itself.  0 or -errno with err filled.
 */
int	listener_adopt(int fd, const struct listen_conf *lc,
	    struct listener **lp, char *err, size_t errlen);
/* True if fd is a socket of lc's transport (type and family), any address. */
bool	listener_fd_fits(int fd, const struct listen_conf *lc);
/*
 * True if fd is a listening/bound socket of lc's transport and address.
 * any_port: a listener configured with port 0 matches any port (for our
 * own sockets coming back from the fd store).
 */
bool	listener_fd_matches(int fd, const struct listen_conf *lc,
	    bool any_port);
/*
 * Close the socket and, if this daemon created the socket file and it is
 * still the same file, unlink it (under the path's lock).  NULL is fine.
 * Returns -errno if the file could not be removed (e.g. after dropping
 * privileges), else 0.
 */
int	listener_close(struct listener *l);
/*
 * Apply lc to l's socket in place: name, backlog (listen() again), mode,
 * owner, group (only those that changed, only on the socket file this
 * daemon made, never through a link).  0 or -errno with err filled;
 * l is unchanged on failure, but for a mode or owner already applied when
 * listen() fails.
 */
int	listener_reconfigure(struct listener *l, const struct listen_conf *lc,
	    char *err, size_t errlen);

#endif
