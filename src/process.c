/*
 * process.c - daemonize, pidfile, privilege drop.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process.h"

static int ready_pipe = -1;

int
pidfile_lock(const char *path, char *err, size_t errlen)
{
	char buf[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			snprintf(err, errlen, "%s: locked by another running "
			    "echotimed (pid %s)", path, buf[0] ? buf : "?");
		else
			snprintf(err, errlen, "%s: flock: %s", path,
			    strerror(e));
		close(fd);
		return e == EWOULDBLOCK ? -EAGAIN : -e;
	}
	return fd;
}

int
pidfile_write(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

int
daemonize(void)
{
	const char *lp = getenv("LISTEN_PID");
	pid_t pid, first = getpid();
	char status, buf[16];
	int p[2], fd;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid > 0) {
		/* Wait for the daemon to say it is serving (or failed). */
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	/* From here on a failure reaches the waiting parent. */
	ready_pipe = p[1];
	if (setsid() < 0)
		return -errno;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	/* Sockets systemd passed name the pid they went to: now this one. */
	if (lp && strtol(lp, NULL, 10) == (long)first) {
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		setenv("LISTEN_PID", buf, 1);
	}
	if (chdir("/") < 0)
		return -errno;
	/* stderr stays until daemonize_done(): start-up errors still show. */
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

void
daemonize_done(int status)
{
	char c = (char)status;
	int fd;

	if (ready_pipe < 0)
		return;
	if (status == 0 && (fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	(void)!write(ready_pipe, &c, 1);
	close(ready_pipe);
	ready_pipe = -1;
}

int
lookup_ids(const char *user, const char *group, uid_t *uid, gid_t *gid,
    char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (user && user[0]) {
		if (!(pw = getpwnam(user))) {
			snprintf(err, errlen, "unknown user \"%s\"", user);
			return -ENOENT;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (group && group[0]) {
		if (!(gr = getgrnam(group))) {
			snprintf(err, errlen, "unknown group \"%s\"", group);
			return -ENOENT;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int
drop_privileges(const char *user, const char *group, char *err,
    size_t errlen)
{
	uid_t uid;
	gid_t gid;
	int r;

	if (geteuid() != 0 || !user || !user[0]) {
		if (group && group[0] && (!user || !user[0]) && geteuid() == 0) {
			snprintf(err, errlen, "group \"%s\" is set but user is "
			    "not", group);
			return -EINVAL;
		}
		return 0;
	}
	if ((r = lookup_ids(user, group, &uid, &gid, err, errlen)) < 0)
		return r;
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(err, errlen, "cannot become %s: %s", user,
		    strerror(errno));
		return -errno;
	}
	/* Refuse to run on if root could be regained. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "privileges could be regained after "
		    "dropping to %s", user);
		return -EPERM;
	}
	return 0;
}
