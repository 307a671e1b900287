/*
 * dgpeer.c - reach a unix-dgram sender at the socket it bound, and only
 * there (see dgpeer.h for why).
 *
 * The checks, in order: the sender bound an absolute path (an abstract
 * name has no file to swap, a relative one is relative to a working
 * directory the daemon cannot see); the kernel told us the sender's uid;
 * the path opens O_PATH without following any symbolic link, magic links
 * of /proc included; what it names is a socket owned by that uid.  The
 * reply then goes to /proc/self/fd/N: the kernel follows that magic link
 * to the very inode we checked, and a socket file is bound to exactly one
 * socket, so renames after the check cannot redirect the reply.
 *
 * The owner check closes what the link check alone leaves open: without
 * links, a sender can still put a real directory in place of its own, and
 * in it a hard link to (or a rename of) another socket it may reach.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dgpeer.h"

#ifndef SYS_openat2
#define SYS_openat2	437
#endif

/* openat2() failed with ENOSYS or EPERM (seccomp) once: walk from then on. */
static atomic_bool no_openat2;

enum dgpeer_kind
dgpeer_classify(const struct sockaddr *sa, socklen_t len, char *path)
{
	const size_t off = offsetof(struct sockaddr_un, sun_path);
	const char *p = (const char *)sa + off;
	size_t n;

	/* Linux gives an unbound sender as the family alone, or nothing. */
	if (len <= off)
		return DGPEER_UNBOUND;
	if (p[0] == '\0')
		return DGPEER_ABSTRACT;
	/* sun_path may fill all its bytes, the kernel then adds the NUL. */
	n = strnlen(p, len - off);
	if (n >= DGPEER_PATH_MAX)
		return DGPEER_INVALID;
	if (p[0] != '/')
		return DGPEER_RELATIVE;
	memcpy(path, p, n);
	path[n] = '\0';
	return DGPEER_PATH;
}

bool
dgpeer_component(const char *path, size_t *pos, size_t *start, size_t *len)
{
	size_t i = *pos;

	while (path[i] == '/')
		i++;
	*pos = i;
	if (path[i] == '\0')
		return false;
	*start = i;
	while (path[i] != '\0' && path[i] != '/')
		i++;
	*len = i - *start;
	*pos = i;
	return true;
}

int
dgpeer_listen(int fd)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/* Close every descriptor in an SCM_RIGHTS message. */
static void
close_rights(struct cmsghdr *h)
{
	size_t i, n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fd;

	for (i = 0; i < n; i++) {
		memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
		close(fd);
	}
}

ssize_t
dgpeer_recv(int fd, void *buf, size_t len, int flags,
    struct sockaddr_storage *from, socklen_t *fromlen,
    struct dgpeer_cred *cred)
{
	union {
		struct cmsghdr	h;
		char		b[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = {
		.msg_name = from, .msg_namelen = *fromlen,
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.b, .msg_controllen = sizeof(ctl.b),
	};
	struct cmsghdr *h;
	ssize_t n;

	cred->known = false;
	if ((n = recvmsg(fd, &m, flags | MSG_CMSG_CLOEXEC)) < 0)
		return -errno;
	*fromlen = m.msg_namelen;
	/*
	 * The kernel puts the credentials first and drops descriptors that
	 * do not fit; any that do fit are closed, never kept.
	 */
	for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET)
			continue;
		if (h->cmsg_type == SCM_CREDENTIALS &&
		    h->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&cred->uc, CMSG_DATA(h), sizeof(cred->uc));
			cred->known = true;
		} else if (h->cmsg_type == SCM_RIGHTS)
			close_rights(h);
	}
	return n;
}

static int
open_openat2(const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/*
 * Component by component, each opened O_PATH|O_NOFOLLOW relative to the
 * one before.  A link in the middle fails O_DIRECTORY (reported as ELOOP,
 * like openat2); a link at the end opens as the link itself, which the
 * caller's fstat() tells from a socket.
 */
static int
open_walk(const char *path)
{
	char comp[DGPEER_PATH_MAX];
	size_t pos = 0, start = 0, len = 0;
	struct stat st;
	bool more;
	int fd, next, e;

	if ((fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	more = dgpeer_component(path, &pos, &start, &len);
	while (more) {
		memcpy(comp, path + start, len);
		comp[len] = '\0';
		more = dgpeer_component(path, &pos, &start, &len);
		next = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC |
		    (more ? O_DIRECTORY : 0));
		e = errno;
		if (next < 0 && e == ENOTDIR &&
		    fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			e = ELOOP;
		close(fd);
		if (next < 0)
			return -e;
		fd = next;
	}
	return fd;
}

int
dgpeer_open_path(const char *path, bool walk)
{
	int fd;

	if (!walk && !atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		fd = open_openat2(path);
		if (fd != -ENOSYS && fd != -EPERM)
			return fd;
		atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
	}
	return open_walk(path);
}

/* dgpeer_open() for a Unix sender. */
static int __attribute__((noinline))
open_unix_peer(struct dgpeer *p, const struct sockaddr *sa, socklen_t len,
    const struct dgpeer_cred *cred)
{
	char path[DGPEER_PATH_MAX];
	struct stat st;
	int r;

	switch (dgpeer_classify(sa, len, path)) {
	case DGPEER_UNBOUND:
		return -EDESTADDRREQ;
	case DGPEER_ABSTRACT:
		return 0;
	case DGPEER_RELATIVE:
		return -EXDEV;
	case DGPEER_INVALID:
		return -ENAMETOOLONG;
	case DGPEER_PATH:
		break;
	}
	/*
	 * pid 0: the datagram was queued before SO_PASSCRED was on (a socket
	 * passed by systemd without PassCredentials=yes), and the kernel
	 * then reports uid 65534, not the sender's; or the sender is in
	 * another PID namespace, where its path likely names a file of
	 * another mount namespace.  Either way nothing is known: no reply.
	 */
	if (!cred->known || cred->uc.pid == 0)
		return -ENODATA;
	if ((r = dgpeer_open_path(path, false)) < 0)
		return r;
	p->fd = r;
	if (fstat(p->fd, &st) < 0)
		r = -errno;
	else if (S_ISLNK(st.st_mode))
		r = -ELOOP;
	else if (!S_ISSOCK(st.st_mode))
		r = -ENOTSOCK;
	else if (st.st_uid != cred->uc.uid)
		r = -EPERM;
	else {
		r = snprintf(p->proc.sun_path, sizeof(p->proc.sun_path),
		    "/proc/self/fd/%d", p->fd);
		p->proc.sun_family = AF_UNIX;
		p->sa = (const struct sockaddr *)&p->proc;
		p->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    (size_t)r + 1);
		return 0;
	}
	dgpeer_close(p);
	return r;
}

/* The path buffer and its checks only for Unix senders (not inlined, so
 * that UDP's call is a few stores per datagram). */
int
dgpeer_open(struct dgpeer *p, const struct sockaddr *sa, socklen_t len,
    const struct dgpeer_cred *cred)
{
	p->sa = sa;
	p->salen = len;
	p->fd = -1;
	if (len < sizeof(sa_family_t))
		return -EDESTADDRREQ;
	if (sa->sa_family != AF_UNIX)
		return 0;
	return open_unix_peer(p, sa, len, cred);
}

void
dgpeer_close(struct dgpeer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

const char *
dgpeer_strerror(int r)
{
	switch (-r) {
	case EDESTADDRREQ:	return "unbound socket";
	case EXDEV:		return "relative path";
	case ENAMETOOLONG:	return "path too long";
	case ENODATA:		return "no sender credentials";
	case ELOOP:		return "symbolic link in the path";
	case ENOTSOCK:		return "not a socket";
	case EPERM:		return "not owned by the sender";
	}
	return strerror(-r);
}
