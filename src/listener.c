/*
 * listener.c - listening sockets for tcp, udp, unix and unix-dgram (a
 * Unix socket's file: sockfile.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dgpeer.h"
#include "listener.h"
#include "process.h"
#include "sdlib.h"
#include "sockfile.h"

static int
socktype_of(enum transport t)
{
	return transport_is_dgram(t) ? SOCK_DGRAM : SOCK_STREAM;
}

/* Describe the configured listener for error messages. */
static void
describe(const struct listen_conf *lc, char *buf, size_t len)
{
	if (lc->path)
		snprintf(buf, len, "%s %s", transport_name(lc->transport),
		    lc->path);
	else if (lc->address && strchr(lc->address, ':'))
		snprintf(buf, len, "%s [%s]:%d", transport_name(lc->transport),
		    lc->address, lc->port);
	else
		snprintf(buf, len, "%s %s:%d", transport_name(lc->transport),
		    lc->address ? lc->address : "?", lc->port);
}

/* "listener: msg" into err; returns r. */
static int
where(const struct listen_conf *lc, char *err, size_t errlen, const char *msg,
    int r)
{
	char d[200];

	describe(lc, d, sizeof(d));
	snprintf(err, errlen, "%s: %s", d, msg);
	return r;
}

/* "listener: what: strerror(error)" into err; returns -error. */
static int
fail(char *err, size_t errlen, const struct listen_conf *lc, int error,
    const char *what)
{
	char msg[LISTENER_ERRLEN];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(error));
	return where(lc, err, errlen, msg, -error);
}

static struct listener *
listener_new(const struct listen_conf *lc)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (listen_conf_copy(&l->conf, lc) < 0) {
		free(l);
		return NULL;
	}
	l->fd = -1;
	l->port = -1;
	l->socktype = socktype_of(lc->transport);
	return l;
}

static void
fill_bound(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0) {
		l->bound[0] = '\0';
		return;
	}
	netaddr_format((struct sockaddr *)&ss, len, l->bound, sizeof(l->bound));
	l->port = netaddr_port((struct sockaddr *)&ss);
}

static int
set_flags(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/*
 * unix-dgram: have the kernel tell each sender's uid, which a reply needs
 * (dgpeer.h), whether we bound the socket or systemd passed it.
 */
static int
want_creds(enum transport t, int fd)
{
	return t == TRANSPORT_UNIX_DGRAM ? dgpeer_listen(fd) : 0;
}

/* 0.0.0.0 or "::": every address of the host. */
static bool
is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
	    htonl(INADDR_ANY);
}

static int
open_inet(struct listener *l, char *err, size_t errlen)
{
	const struct listen_conf *lc = &l->conf;
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, v6only, r, e;
	bool wildcard;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = l->socktype;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", lc->port);
	if ((r = getaddrinfo(lc->address, port, &hints, &res)) != 0) {
		char d[200];

		describe(lc, d, sizeof(d));
		snprintf(err, errlen, "%s: cannot resolve address: %s", d,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	wildcard = is_wildcard(res->ai_addr);
	fd = socket(res->ai_family, l->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0) {
		e = errno;
		freeaddrinfo(res);
		return fail(err, errlen, lc, e, "socket");
	}
	if (res->ai_family == AF_INET6) {
		/* "::" serves IPv4 too; a specific v6 address only itself. */
		v6only = !wildcard;
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only));
	}
	/*
	 * A specific address binds even before it is configured, as with
	 * systemd's FreeBind=: at boot the unit starts after network.target,
	 * which does not wait for addresses, and an address that is late
	 * must not fail the start.  The socket serves once the address is
	 * up.  (A mistyped address binds too, and serves nothing.)
	 */
	if (!wildcard && res->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one,
		    sizeof(one));
	else if (!wildcard)
		(void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one,
		    sizeof(one));
	if (l->socktype == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
	if (lc->reuse_port &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		e = errno;
		goto bad_setsockopt;
	}
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		e = errno;
		freeaddrinfo(res);
		close(fd);
		return fail(err, errlen, lc, e, "bind");
	}
	freeaddrinfo(res);
	if (l->socktype == SOCK_STREAM && listen(fd, lc->backlog) < 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, lc, e, "listen");
	}
	l->fd = fd;
	return 0;

bad_setsockopt:
	freeaddrinfo(res);
	close(fd);
	return fail(err, errlen, lc, e, "setsockopt SO_REUSEPORT");
}

static void
listener_close_fd(struct listener *l)
{
	if (l && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}

/* Look up the configured owner and group; -1 for "leave as it is". */
static int
resolve_owner(const struct listen_conf *lc, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	char why[128];
	int r;

	if ((r = lookup_ids(lc->owner, lc->group, uid, gid, why,
	    sizeof(why))) < 0)
		return where(lc, err, errlen, why, r);
	if (!lc->group || !lc->group[0])
		*gid = (gid_t)-1;	/* not the owner's group: left as is */
	return 0;
}

/* Give the file open as pfd the owner and group of lc, and mode. */
static int
set_owner_mode(const struct listen_conf *lc, int pfd, const struct stat *st,
    int mode, char *err, size_t errlen)
{
	char msg[LISTENER_ERRLEN];
	uid_t uid;
	gid_t gid;
	int r;

	if ((r = resolve_owner(lc, &uid, &gid, err, errlen)) < 0)
		return r;
	if ((r = sockfile_set_owner_mode(pfd, st, uid, gid, mode, msg,
	    sizeof(msg))) < 0)
		return where(lc, err, errlen, msg, r);
	return 0;
}

/* True if the listener sets anything on its socket file. */
static bool
sets_owner_mode(const struct listen_conf *lc)
{
	return lc->mode >= 0 || (lc->owner && lc->owner[0]) ||
	    (lc->group && lc->group[0]);
}

/*
 * Open the socket file of l (or, l NULL, the one just bound) without
 * following a link, refusing a file we did not make.  The fd or -errno.
 */
static int
open_own_socket(const struct listen_conf *lc, const struct listener *l,
    struct stat *st, char *err, size_t errlen)
{
	struct stat made = { .st_dev = 0 };
	char msg[LISTENER_ERRLEN];
	int pfd;

	if (l) {
		made.st_dev = l->dev;
		made.st_ino = l->unlink_on_close ? l->ino : 0;
	}
	if ((pfd = sockfile_open_own(lc->path, l ? &made : NULL, st, msg,
	    sizeof(msg))) < 0)
		return where(lc, err, errlen, msg, pfd);
	return pfd;
}

/*
 * Bind a Unix socket.  For a file: under the path's lock, clear a stale
 * socket, bind, and give the new file its owner and mode.  The socket is
 * made with mode 0 (fchmod before bind: bind() takes the file's permission
 * bits from the socket, less the umask), so until its configured mode is
 * set only root can connect or send to it.
 */
static int
open_unix(struct listener *l, char *err, size_t errlen)
{
	const struct listen_conf *lc = &l->conf;
	struct sockaddr_un sun;
	struct stat st;
	socklen_t len;
	bool file = lc->path[0] != '@', fixup = file && sets_owner_mode(lc);
	int fd = -1, lockfd = -1, pfd = -1, mode = lc->mode, r;
	mode_t m = 0;
	char why[LISTENER_ERRLEN];

	if (file && (lockfd = sockfile_lock(lc->path, why, sizeof(why))) < 0)
		return where(lc, err, errlen, why, lockfd);
	if (file && (r = sockfile_clear_stale(lc->path, l->socktype, why,
	    sizeof(why))) < 0) {
		r = where(lc, err, errlen, why, r);
		goto out;
	}
	if (mode < 0 && fixup) {
		/* Unset: what bind() would have given, the umask's. */
		if ((r = sockfile_umask_mode(&m)) < 0) {
			r = fail(err, errlen, lc, -r, "reading the umask");
			goto out;
		}
		mode = (int)m;
	}
	fd = socket(AF_UNIX, l->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = fail(err, errlen, lc, errno, "socket");
		goto out;
	}
	if ((r = want_creds(lc->transport, fd)) < 0) {
		r = fail(err, errlen, lc, -r, "setsockopt SO_PASSCRED");
		goto out;
	}
	if (fixup && fchmod(fd, 0) < 0) {
		r = fail(err, errlen, lc, errno, "fchmod before bind");
		goto out;
	}
	len = sockfile_addr(lc->path, &sun);
	if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
		r = fail(err, errlen, lc, errno, "bind");
		goto out;
	}
	if (fixup && (r = pfd = open_own_socket(lc, NULL, &st, err,
	    errlen)) < 0)
		goto out;
	/* Without fixup, remember the file only if it can be ours. */
	if (fixup || (file && lstat(lc->path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && st.st_uid == geteuid())) {
		l->unlink_on_close = true;
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	if (fixup && (r = set_owner_mode(lc, pfd, &st, mode, err, errlen)) < 0)
		goto out;
	if (l->socktype == SOCK_STREAM && listen(fd, lc->backlog) < 0) {
		r = fail(err, errlen, lc, errno, "listen");
		goto out;
	}
	l->fd = fd;
	fd = -1;
	r = 0;
out:
	if (r < 0 && l->unlink_on_close)
		(void)sockfile_unlink_own(lc->path, l->dev, l->ino);
	if (r < 0)
		l->unlink_on_close = false;
	if (pfd >= 0)
		close(pfd);
	if (fd >= 0)
		close(fd);
	sockfile_unlock(lc->path, lockfd);
	return r;
}

int
listener_open(const struct listen_conf *lc, struct listener **lp, char *err,
    size_t errlen)
{
	struct listener *l;
	int r;

	if (!(l = listener_new(lc)))
		return fail(err, errlen, lc, ENOMEM, "allocating");
	if (lc->transport == TRANSPORT_TCP || lc->transport == TRANSPORT_UDP)
		r = open_inet(l, err, errlen);
	else
		r = open_unix(l, err, errlen);
	if (r < 0) {
		listen_conf_clear(&l->conf);
		free(l);
		return r;
	}
	fill_bound(l);
	*lp = l;
	return 0;
}

/* Check fd is a socket we can serve (sdlib_is_socket*); 0 or -errno + err. */
static int
fd_check(int fd, char *err, size_t errlen)
{
	if (sdlib_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 &&
	    sdlib_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) <= 0) {
		snprintf(err, errlen, "passed fd %d is not a listening stream "
		    "socket or a datagram socket", fd);
		return -ENOTSOCK;
	}
	if (sdlib_is_socket_inet(fd, AF_UNSPEC, 0, -1, 0) <= 0 &&
	    sdlib_is_socket(fd, AF_UNIX, 0, -1) <= 0) {
		snprintf(err, errlen, "passed fd %d is neither an IP nor a "
		    "Unix socket", fd);
		return -EAFNOSUPPORT;
	}
	return 0;
}

bool
listener_fd_fits(int fd, const struct listen_conf *lc)
{
	int type = socktype_of(lc->transport);

	return lc->path ? sdlib_is_socket(fd, AF_UNIX, type, -1) > 0 :
	    sdlib_is_socket_inet(fd, AF_UNSPEC, type, -1, 0) > 0;
}

bool
listener_fd_matches(int fd, const struct listen_conf *lc, bool any_port)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	socklen_t len = sizeof(ss), ulen;
	int type = socktype_of(lc->transport);
	char port[8];
	bool match = false;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (sdlib_is_socket(fd, AF_UNSPEC, type, -1) <= 0)
		return false;
	if (lc->path) {
		if (ss.ss_family != AF_UNIX)
			return false;
		ulen = sockfile_addr(lc->path, &sun);
		/* The kernel may report the path with or without its NUL. */
		return (len == ulen || len + 1 == ulen || len == ulen + 1) &&
		    memcmp(&ss, &sun, len < ulen ? len : ulen) == 0 &&
		    strncmp(((struct sockaddr_un *)&ss)->sun_path, sun.sun_path,
		    sizeof(sun.sun_path)) == 0 &&
		    (lc->path[0] != '@' || len == ulen);
	}
	if (lc->port == 0 && any_port) {
		/* Port 0 means "any": our own socket from an earlier run. */
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = 0;
		else if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = type;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", lc->port);
	if (getaddrinfo(lc->address, port, &hints, &res) != 0)
		return false;
	for (ai = res; ai && !match; ai = ai->ai_next)
		match = netaddr_equal((struct sockaddr *)&ss, len, ai->ai_addr,
		    ai->ai_addrlen);
	freeaddrinfo(res);
	return match;
}

/* Build a listener description from the socket itself. */
static int
conf_from_fd(int fd, struct listen_conf *lc)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[NETADDR_STRLEN], host[INET6_ADDRSTRLEN], empty[1] = "";
	bool dgram = sdlib_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0;
	struct listen_conf tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.mode = -1;
	tmp.backlog = 128;
	tmp.name = tmp.owner = tmp.group = empty;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_UNIX) {
		tmp.transport = dgram ? TRANSPORT_UNIX_DGRAM : TRANSPORT_UNIX;
		netaddr_format((struct sockaddr *)&ss, len, buf, sizeof(buf));
		tmp.path = buf;
	} else {
		tmp.transport = dgram ? TRANSPORT_UDP : TRANSPORT_TCP;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    host, sizeof(host));
		else
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
			    sizeof(host));
		tmp.address = host;
		tmp.port = netaddr_port((struct sockaddr *)&ss);
	}
	return listen_conf_copy(lc, &tmp);
}

int
listener_adopt(int fd, const struct listen_conf *lc, struct listener **lp,
    char *err, size_t errlen)
{
	struct listen_conf derived;
	struct listener *l;
	const char *what = NULL;
	int r;

	if ((r = fd_check(fd, err, errlen)) < 0)
		return r;
	if (!lc) {
		if ((r = conf_from_fd(fd, &derived)) < 0) {
			snprintf(err, errlen, "passed fd %d: %s", fd,
			    strerror(-r));
			return r;
		}
		l = listener_new(&derived);
		listen_conf_clear(&derived);
	} else
		l = listener_new(lc);
	if (!l) {
		snprintf(err, errlen, "passed fd %d: %s", fd, strerror(ENOMEM));
		return -ENOMEM;
	}
	if ((r = set_flags(fd)) < 0)
		what = "fcntl";
	else if ((r = want_creds(l->conf.transport, fd)) < 0)
		what = "setsockopt SO_PASSCRED";
	if (r < 0) {
		snprintf(err, errlen, "passed fd %d: %s: %s", fd, what,
		    strerror(-r));
		listen_conf_clear(&l->conf);
		free(l);
		return r;
	}
	l->fd = fd;
	l->adopted = true;
	l->unmatched = lc == NULL;
	l->socktype = sdlib_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0 ?
	    SOCK_DGRAM : SOCK_STREAM;
	fill_bound(l);
	*lp = l;
	return 0;
}

int
listener_reconfigure(struct listener *l, const struct listen_conf *lc,
    char *err, size_t errlen)
{
	const struct listen_conf *old = &l->conf;
	struct listen_conf copy;
	struct stat st;
	int pfd, r;

	if ((r = listen_conf_copy(&copy, lc)) < 0)
		return fail(err, errlen, lc, -r, "allocating");
	/*
	 * Only what changed: after the privilege drop chown() and chmod() of
	 * a file root made fail, and a reload that renames a listener must
	 * not need them.
	 */
	if (lc->path && lc->path[0] != '@' && !l->adopted &&
	    !listen_conf_same_owner(lc, old)) {
		/* Only the file we made, and never through a link. */
		if ((r = pfd = open_own_socket(lc, l, &st, err, errlen)) < 0)
			goto bad;
		r = set_owner_mode(lc, pfd, &st, lc->mode, err, errlen);
		close(pfd);
		if (r < 0)
			goto bad;
	}
	if (l->socktype == SOCK_STREAM && lc->backlog != old->backlog &&
	    !l->adopted && listen(l->fd, lc->backlog) < 0) {
		r = fail(err, errlen, lc, errno, "listen");
		goto bad;
	}
	listen_conf_clear(&l->conf);
	l->conf = copy;
	l->unmatched = false;
	return 0;
bad:
	listen_conf_clear(&copy);
	return r;
}

int
listener_close(struct listener *l)
{
	int fd, r = 0;

	if (!l)
		return 0;
	listener_close_fd(l);
	/* Remove only the file we made, and only if nobody replaced it. */
	if (l->unlink_on_close && !l->adopted && !l->stored && l->conf.path) {
		/* Under the lock: a daemon replacing it as stale may bind. */
		if ((fd = sockfile_lock(l->conf.path, NULL, 0)) < 0)
			r = fd;
		else {
			r = sockfile_unlink_own(l->conf.path, l->dev, l->ino);
			sockfile_unlock(l->conf.path, fd);
		}
	}
	listen_conf_clear(&l->conf);
	free(l);
	return r;
}
