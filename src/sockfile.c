/*
 * sockfile.c - the file of a Unix listening socket (see sockfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "sockfile.h"

/*
 * A socket file's lock is PATH.lock beside it (see sockfile_lock).
 * Waiting for it is bounded: its holder only probes, removes and binds.
 */
#define LOCK_SUFFIX	".lock"
#define LOCK_NAME_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) + \
			 sizeof(LOCK_SUFFIX))
#define LOCK_WAIT_MS	10000
#define LOCK_POLL_MS	10

socklen_t
sockfile_addr(const char *path, struct sockaddr_un *sun)
{
	size_t n = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (path[0] == '@') {
		/* Abstract namespace: no file, a leading NUL byte. */
		memcpy(sun->sun_path + 1, path + 1, n - 1);
		return offsetof(struct sockaddr_un, sun_path) + n;
	}
	memcpy(sun->sun_path, path, n);
	return offsetof(struct sockaddr_un, sun_path) + n + 1;
}

/* "what: strerror(e)" into msg; returns -e. */
static int
fail(char *msg, size_t msglen, int e, const char *what)
{
	snprintf(msg, msglen, "%s: %s", what, strerror(e));
	return -e;
}

/* PATH.lock; socket paths are short (sun_path), so this always fits. */
static void
lock_name(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", path, LOCK_SUFFIX);
}

/*
 * Take the lock that serialises probing, removing and binding a socket
 * path among daemons: flock() on PATH.lock.  The holder removes the file
 * before it lets go, so a waiter may end up holding the lock of a file
 * that is gone; it then starts again on the new one.  The wait is bounded:
 * a stopped process must not hang our start or reload.  Returns the
 * locked fd or -errno; msg (may be NULL) gets the reason.
 */
int
sockfile_lock(const char *path, char *msg, size_t msglen)
{
	char name[LOCK_NAME_MAX];
	uint64_t deadline = clock_ms() + LOCK_WAIT_MS;
	struct stat st, now;
	int fd = -1, e;

	lock_name(path, name, sizeof(name));
	for (;;) {
		/*
		 * O_NOFOLLOW: a link planted here must not make us create
		 * or lock a file elsewhere; O_NONBLOCK: nor hang on a FIFO.
		 * Read-only is enough for flock().
		 */
		if (fd < 0 && (fd = open(name, O_RDONLY | O_CREAT |
		    O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600)) < 0) {
			e = errno;
			snprintf(msg, msglen, "lock file %s: %s", name,
			    strerror(e));
			return -e;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			e = EEXIST;
			snprintf(msg, msglen, "lock file %s: not a regular file",
			    name);
			goto bad;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			if (lstat(name, &now) == 0 && now.st_dev == st.st_dev &&
			    now.st_ino == st.st_ino)
				return fd;
			/* Its holder removed it: lock the new one. */
			close(fd);
			fd = -1;
		} else if (errno != EWOULDBLOCK && errno != EINTR) {
			e = errno;
			snprintf(msg, msglen, "lock file %s: flock: %s", name,
			    strerror(e));
			goto bad;
		}
		if (clock_ms() >= deadline) {
			e = EWOULDBLOCK;
			snprintf(msg, msglen, "lock file %s: still held by "
			    "another process after %d s", name,
			    LOCK_WAIT_MS / 1000);
			goto bad;
		}
		if (fd >= 0)
			(void)nanosleep(&(struct timespec){ 0,
			    LOCK_POLL_MS * 1000000L }, NULL);
	}
bad:
	close(fd);
	return -e;
}

void
sockfile_unlock(const char *path, int fd)
{
	char name[LOCK_NAME_MAX];

	if (fd < 0)
		return;
	lock_name(path, name, sizeof(name));
	(void)unlink(name);
	close(fd);
}

int
sockfile_clear_stale(const char *path, int socktype, char *msg,
    size_t msglen)
{
	struct sockaddr_un sun;
	struct stat st;
	socklen_t len;
	int fd, r, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(msg, msglen, errno, "lstat");
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(msg, msglen, "the path exists and is not a socket; "
		    "refusing to replace it");
		return -EEXIST;
	}
	/* Non-blocking: a live daemon with a full backlog must not hang us. */
	if ((fd = socket(AF_UNIX, socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
		return fail(msg, msglen, errno, "socket");
	len = sockfile_addr(path, &sun);
	r = connect(fd, (struct sockaddr *)&sun, len);
	e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN) {
		snprintf(msg, msglen, "another process is serving this "
		    "socket; refusing to replace it");
		return -EADDRINUSE;
	}
	if (e == EPROTOTYPE) {
		snprintf(msg, msglen, "a socket of another type is in use at "
		    "this path; refusing to replace it");
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED)
		return fail(msg, msglen, e, "probing existing socket");
	if (unlink(path) < 0 && errno != ENOENT)
		return fail(msg, msglen, errno, "removing stale socket");
	return 0;
}

int
sockfile_umask_mode(mode_t *mode)
{
	char line[128];
	unsigned int m;
	FILE *f;
	int r = -ENOENT;

	/* /proc, not umask(): that would change it for every thread. */
	if (!(f = fopen("/proc/self/status", "re")))
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1) {
			*mode = 0777 & ~(mode_t)m;
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

int
sockfile_open_own(const char *path, const struct stat *made, struct stat *st,
    char *msg, size_t msglen)
{
	int pfd, e;
	bool ours;

	if ((pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return fail(msg, msglen, errno, "opening the socket file");
	if (fstat(pfd, st) < 0) {
		e = errno;
		close(pfd);
		return fail(msg, msglen, e, "fstat");
	}
	if (made)
		ours = S_ISSOCK(st->st_mode) && made->st_ino != 0 &&
		    st->st_dev == made->st_dev && st->st_ino == made->st_ino;
	else
		ours = S_ISSOCK(st->st_mode) && st->st_uid == geteuid() &&
		    (st->st_mode & 07777) == 0 && st->st_nlink == 1;
	if (!ours) {
		snprintf(msg, msglen, "the socket file was replaced by %s "
		    "after bind; refusing to set its owner or mode",
		    S_ISLNK(st->st_mode) ? "a symbolic link" :
		    S_ISSOCK(st->st_mode) ? "another socket" :
		    "another file");
		close(pfd);
		return -EEXIST;
	}
	return pfd;
}

/*
 * Never by name: the name may have been swapped for a link since pfd was
 * checked.  fchmod() does not take an O_PATH fd, but chmod() of its
 * /proc/self/fd entry reaches that very inode.  Before a change of owner
 * the mode is first narrowed to what the old and the new mode both
 * allow, so the new owner never gets the old, wider mode for a moment.
 */
int
sockfile_set_owner_mode(int pfd, const struct stat *st, uid_t uid, gid_t gid,
    int mode, char *msg, size_t msglen)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	if (uid != (uid_t)-1 || gid != (gid_t)-1) {
		if (mode >= 0 && chmod(proc, st->st_mode & (mode_t)mode &
		    07777) < 0)
			return fail(msg, msglen, errno, "chmod via /proc");
		if (fchownat(pfd, "", uid, gid, AT_EMPTY_PATH) < 0)
			return fail(msg, msglen, errno, "chown");
	}
	if (mode >= 0 && chmod(proc, (mode_t)mode) < 0)
		return fail(msg, msglen, errno, "chmod via /proc");
	return 0;
}

int
sockfile_unlink_own(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (st.st_dev != dev || st.st_ino != ino)
		return 0;
	return unlink(path) < 0 ? -errno : 0;
}
