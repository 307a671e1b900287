/*
 * inetd.h - serve one already connected socket (sshd -i style): stdin from
 * inetd, or fd 3 from systemd's Accept=yes.
 */
#ifndef ECHOTIMED_INETD_H
#define ECHOTIMED_INETD_H

#include "config.h"

/*
 * If systemd passed exactly one connected stream socket, return it (the
 * daemon then serves it as with -i); -1 otherwise.
 */
int	inetd_passed_fd(void);
/* Serve the session on fd to its end; returns the exit status. */
int	inetd_serve(const struct config *cfg, int fd);

#endif
