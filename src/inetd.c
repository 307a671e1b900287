/*
 * inetd.c - one connected socket, one session, then exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "clock.h"
#include "conn.h"
#include "inetd.h"
#include "log.h"
#include "netaddr.h"
#include "sdlib.h"
#include "stopsig.h"

int
inetd_passed_fd(void)
{
	int fd = SDLIB_LISTEN_FDS_START;

	if (sdlib_listen_fds_with_names(NULL) != 1)
		return -1;
	/* Connected (not listening) stream socket: Accept=yes. */
	if (sdlib_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0) > 0)
		return fd;
	return -1;
}

int
inetd_serve(const struct config *cfg, int fd)
{
	struct acl acl = config_acl(cfg);
	struct log_fields f = LOG_FIELDS_INIT;
	struct conn c = { .fd = fd, .inetd = true, .transport = "inetd",
	    .lname = "inetd" };
	socklen_t len = sizeof(c.peer);

	c.start_ms = clock_ms();
	if (sdlib_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0) <= 0) {
		log_msg(LOG_ERR, "inetd mode: fd %d is not a connected stream "
		    "socket", fd);
		return 64;
	}
	/*
	 * Fail closed: without the peer's address the access lists cannot
	 * be applied (typically the client reset the connection before we
	 * ran, and getpeername() says ENOTCONN).
	 */
	if (getpeername(fd, (struct sockaddr *)&c.peer, &len) < 0) {
		log_msg(LOG_WARNING, "inetd mode: closing the connection: "
		    "getpeername: %s (the access lists cannot be applied)",
		    strerror(errno));
		close(fd);
		return 71;
	}
	netaddr_format((struct sockaddr *)&c.peer, len, c.peerstr,
	    sizeof(c.peerstr));
	if (!acl_permits(&acl, (struct sockaddr *)&c.peer)) {
		log_msg(LOG_NOTICE, "refused connection from %s: denied by "
		    "access list", c.peerstr);
		close(fd);
		return 0;
	}
	if (stopsig_handle(SIGTERM) < 0 || stopsig_handle(SIGINT) < 0) {
		log_msg(LOG_ERR, "inetd mode: sigaction: %s", strerror(errno));
		close(fd);
		return 71;
	}
	session_init(&c.sess, fd, (size_t)cfg->session.max_line_length,
	    cfg->session.idle_timeout);
	c.sess.peer = c.peerstr;
	conn_log_fields(&c, &f);
	log_fields(LOG_INFO, &f, "connection from %s (inetd mode)", c.peerstr);
	stopsig_run(&c.sess);
	conn_log_end(&c);
	session_free(&c.sess);
	close(fd);
	return 0;
}
