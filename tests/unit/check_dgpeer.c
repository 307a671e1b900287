/*
 * check_dgpeer.c - unit tests for dgpeer.c: classifying a Unix sender's
 * address, splitting its path, opening it without links (openat2 and the
 * component walk), the owner check, and sending through /proc/self/fd.
 * The file system tests work in a private directory under /tmp.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "dgpeer.h"
#include "check_main.h"

#define OFF	offsetof(struct sockaddr_un, sun_path)

static char	 dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_dgpeer.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* dir/name, in a static buffer per call site. */
static const char *
at(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

/* A datagram socket bound to path (NULL: unbound). */
static int
dgram(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (path) {
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
	}
	return fd;
}

/* ---- dgpeer_classify ---- */

static enum dgpeer_kind
classify(const char *bytes, size_t n, char *path)
{
	struct sockaddr_storage ss;

	memset(&ss, 0x55, sizeof(ss));
	((struct sockaddr *)&ss)->sa_family = AF_UNIX;
	memcpy((char *)&ss + OFF, bytes, n);
	return dgpeer_classify((struct sockaddr *)&ss, (socklen_t)(OFF + n),
	    path);
}

START_TEST(test_classify)
{
	char path[DGPEER_PATH_MAX], full[120];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	/* Linux: an unbound sender is the family alone, or length 0. */
	ck_assert_int_eq(dgpeer_classify((struct sockaddr *)&sun, 0, path),
	    DGPEER_UNBOUND);
	ck_assert_int_eq(dgpeer_classify((struct sockaddr *)&sun, OFF, path),
	    DGPEER_UNBOUND);
	ck_assert_int_eq(classify("\0abc", 4, path), DGPEER_ABSTRACT);
	ck_assert_int_eq(classify("\0", 1, path), DGPEER_ABSTRACT);
	ck_assert_int_eq(classify("rel.sock", 9, path), DGPEER_RELATIVE);
	ck_assert_int_eq(classify("./x", 4, path), DGPEER_RELATIVE);
	strcpy(path, "untouched");
	ck_assert_int_eq(classify("/tmp/x/d/s", 11, path), DGPEER_PATH);
	ck_assert_str_eq(path, "/tmp/x/d/s");
	/* Bytes after the NUL are not part of the path. */
	ck_assert_int_eq(classify("/a\0/b", 5, path), DGPEER_PATH);
	ck_assert_str_eq(path, "/a");
	/* No NUL within the length: the length ends the path. */
	ck_assert_int_eq(classify("/abc", 3, path), DGPEER_PATH);
	ck_assert_str_eq(path, "/ab");
	/* A full 108-byte sun_path (the kernel reports it with its NUL). */
	memset(full, 'p', sizeof(full));
	full[0] = '/';
	full[108] = '\0';
	ck_assert_int_eq(classify(full, 109, path), DGPEER_PATH);
	ck_assert_uint_eq(strlen(path), 108);
	ck_assert_int_eq(classify(full, 108, path), DGPEER_PATH);
	ck_assert_uint_eq(strlen(path), 108);
	/* Longer than any the kernel binds. */
	full[108] = 'p';
	ck_assert_int_eq(classify(full, 110, path), DGPEER_INVALID);
	full[0] = 'r';
	ck_assert_int_eq(classify(full, 110, path), DGPEER_INVALID);
}
END_TEST

/* ---- dgpeer_component ---- */

/* The components of path joined by '|'. */
static void
split(const char *path, char *out, size_t outlen)
{
	size_t pos = 0, start = 99, len = 99, o = 0;

	out[0] = '\0';
	while (dgpeer_component(path, &pos, &start, &len)) {
		ck_assert_uint_gt(len, 0);
		ck_assert_ptr_null(memchr(path + start, '/', len));
		ck_assert_uint_eq(pos, start + len);
		o += (size_t)snprintf(out + o, outlen - o, "%s%.*s",
		    o ? "|" : "", (int)len, path + start);
	}
	ck_assert_uint_eq(pos, strlen(path));
}

START_TEST(test_component)
{
	char out[256];

	split("/tmp/x/d/s", out, sizeof(out));
	ck_assert_str_eq(out, "tmp|x|d|s");
	split("//a///b/", out, sizeof(out));
	ck_assert_str_eq(out, "a|b");
	split("/", out, sizeof(out));
	ck_assert_str_eq(out, "");
	split("", out, sizeof(out));
	ck_assert_str_eq(out, "");
	split("/./../s", out, sizeof(out));
	ck_assert_str_eq(out, ".|..|s");
	split("rel", out, sizeof(out));
	ck_assert_str_eq(out, "rel");
}
END_TEST

/* ---- dgpeer_open_path, both ways ---- */

static void
open_path_cases(bool walk)
{
	char sock[96], lnk[96], file[96], p[160];
	struct stat st;
	int s, fd;

	ck_assert_int_eq(mkdir(at(p, sizeof(p), "d"), 0755), 0);
	s = dgram(at(sock, sizeof(sock), "d/s"));
	ck_assert_int_eq(symlink(at(p, sizeof(p), "d"),
	    at(lnk, sizeof(lnk), "l")), 0);
	fd = open(at(file, sizeof(file), "f"), O_CREAT | O_WRONLY | O_CLOEXEC,
	    0600);
	ck_assert_int_ge(fd, 0);
	close(fd);

	/* The socket itself, also through "//", "." and "..". */
	fd = dgpeer_open_path(sock, walk);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	close(fd);
	snprintf(p, sizeof(p), "/%s//d/./../d/s", dir);
	fd = dgpeer_open_path(p, walk);
	ck_assert_int_ge(fd, 0);
	close(fd);

	/* A link anywhere: ELOOP. */
	snprintf(p, sizeof(p), "%s/s", lnk);
	ck_assert_int_eq(dgpeer_open_path(p, walk), -ELOOP);
	ck_assert_int_eq(symlink(sock, at(p, sizeof(p), "d/last")), 0);
	/*
	 * The walk (also what a kernel without openat2 gets, and valgrind)
	 * opens a final link as the link itself; dgpeer_open says ELOOP.
	 */
	fd = dgpeer_open_path(p, walk);
	if (fd >= 0) {
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert(S_ISLNK(st.st_mode));
		close(fd);
	} else
		ck_assert_int_eq(fd, -ELOOP);
	/* /proc/self is a link, /proc/self/fd/N a magic one. */
	snprintf(p, sizeof(p), "/proc/self/fd/%d", s);
	ck_assert_int_eq(dgpeer_open_path(p, walk), -ELOOP);
	snprintf(p, sizeof(p), "/proc/%d/cwd/d/s", (int)getpid());
	ck_assert_int_eq(dgpeer_open_path(p, walk), -ELOOP);

	/* Missing, and a file where a directory should be. */
	ck_assert_int_eq(dgpeer_open_path(at(p, sizeof(p), "d/none"), walk),
	    -ENOENT);
	snprintf(p, sizeof(p), "%s/s", file);
	ck_assert_int_eq(dgpeer_open_path(p, walk), -ENOTDIR);
	close(s);
}

START_TEST(test_open_path_openat2)
{
	open_path_cases(false);
}
END_TEST

START_TEST(test_open_path_walk)
{
	open_path_cases(true);
}
END_TEST

/* ---- dgpeer_open ---- */

static socklen_t
peer_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)ss, &len), 0);
	return len;
}

START_TEST(test_open_verified)
{
	struct dgpeer_cred cred = { .known = true };
	struct sockaddr_storage ss;
	char sock[96], moved[96], buf[16];
	struct dgpeer p;
	socklen_t len;
	int s, s2, tx, before = check_open_fds();

	s = dgram(at(sock, sizeof(sock), "s"));
	tx = dgram(NULL);
	len = peer_of(s, &ss);
	cred.uc.uid = getuid();
	cred.uc.pid = getpid();
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    0);
	ck_assert_int_ge(p.fd, 0);
	ck_assert_ptr_eq(p.sa, (struct sockaddr *)&p.proc);
	snprintf(buf, sizeof(buf), "%d", p.fd);
	ck_assert_str_eq(p.proc.sun_path + strlen("/proc/self/fd/"), buf);
	/* Rename the checked socket away and bind another in its place: the
	 * reply still reaches the socket that was checked. */
	ck_assert_int_eq(rename(sock, at(moved, sizeof(moved), "o")), 0);
	s2 = dgram(sock);
	ck_assert_int_eq(sendto(tx, "hi", 2, 0, p.sa, p.salen), 2);
	ck_assert_int_eq(recv(s, buf, sizeof(buf), MSG_DONTWAIT), 2);
	ck_assert_int_eq(recv(s2, buf, sizeof(buf), MSG_DONTWAIT), -1);
	dgpeer_close(&p);
	ck_assert_int_eq(p.fd, -1);
	dgpeer_close(&p);
	close(s);
	close(s2);
	close(tx);
	ck_assert_int_eq(check_open_fds(), before);
}
END_TEST

START_TEST(test_open_swapped)
{
	struct dgpeer_cred cred = { .known = true };
	struct sockaddr_storage ss;
	char sock[96], d[96], old[96], victim[96], vs[96];
	struct dgpeer p;
	socklen_t len;
	int s, v, before;

	ck_assert_int_eq(mkdir(at(d, sizeof(d), "d"), 0755), 0);
	ck_assert_int_eq(mkdir(at(victim, sizeof(victim), "v"), 0755), 0);
	s = dgram(at(sock, sizeof(sock), "d/s"));
	v = dgram(at(vs, sizeof(vs), "v/s"));
	len = peer_of(s, &ss);
	cred.uc.uid = getuid();
	cred.uc.pid = getpid();
	before = check_open_fds();

	/* d swapped for a link to a directory with another socket. */
	ck_assert_int_eq(rename(d, at(old, sizeof(old), "d.old")), 0);
	ck_assert_int_eq(symlink(victim, d), 0);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -ELOOP);
	ck_assert_int_eq(p.fd, -1);
	ck_assert_ptr_eq(p.sa, (struct sockaddr *)&ss);
	dgpeer_close(&p);
	ck_assert_str_eq(dgpeer_strerror(-ELOOP), "symbolic link in the path");

	/* d is a real directory again, its s another user's socket. */
	ck_assert_int_eq(unlink(d), 0);
	ck_assert_int_eq(rename(victim, d), 0);
	if (getuid() == 0)
		ck_assert_int_eq(chown(sock, 65534, 65534), 0);
	else
		cred.uc.uid = getuid() + 1;
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -EPERM);
	ck_assert_str_eq(dgpeer_strerror(-EPERM), "not owned by the sender");

	/* s is a regular file now. */
	ck_assert_int_eq(unlink(sock), 0);
	close(open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	cred.uc.uid = getuid();
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -ENOTSOCK);
	/* s is a link to the socket. */
	ck_assert_int_eq(unlink(sock), 0);
	ck_assert_int_eq(symlink(at(vs, sizeof(vs), "d.old/s"), sock), 0);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -ELOOP);
	/* Gone. */
	ck_assert_int_eq(unlink(sock), 0);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -ENOENT);
	/* No credentials: no reply. */
	cred.known = false;
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &cred),
	    -ENODATA);
	ck_assert_int_eq(check_open_fds(), before);
	close(s);
	close(v);
}
END_TEST

START_TEST(test_open_other_addresses)
{
	struct dgpeer_cred none = { .known = false };
	struct sockaddr_storage ss;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct dgpeer p;
	socklen_t len;

	/* Not Unix: the address as it came. */
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&sin, sizeof(sin),
	    &none), 0);
	ck_assert_ptr_eq(p.sa, (struct sockaddr *)&sin);
	ck_assert_int_eq(p.salen, sizeof(sin));
	ck_assert_int_eq(p.fd, -1);
	/* Abstract: no file, no credentials needed. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	memcpy((char *)&ss + OFF, "\0abstract", 9);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, OFF + 9,
	    &none), 0);
	ck_assert_ptr_eq(p.sa, (struct sockaddr *)&ss);
	/* Relative, unbound, too long, empty. */
	memcpy((char *)&ss + OFF, "rel.sock", 9);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, OFF + 9,
	    &none), -EXDEV);
	ck_assert_str_eq(dgpeer_strerror(-EXDEV), "relative path");
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, OFF, &none),
	    -EDESTADDRREQ);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, 0, &none),
	    -EDESTADDRREQ);
	memset((char *)&ss + OFF, 'x', sizeof(ss) - OFF);
	((char *)&ss)[OFF] = '/';
	len = sizeof(ss);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&ss, len, &none),
	    -ENAMETOOLONG);
	ck_assert_str_eq(dgpeer_strerror(-ENOENT), strerror(ENOENT));
}
END_TEST

/* ---- dgpeer_recv, dgpeer_listen ---- */

START_TEST(test_recv_credentials)
{
	struct sockaddr_storage from;
	struct dgpeer_cred cred;
	struct dgpeer p;
	char srv[96], cli[96], buf[16];
	union {
		struct cmsghdr	h;
		char		b[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	char payload[] = "fds";
	struct iovec iov = { .iov_base = payload, .iov_len = 3 };
	struct sockaddr_un to = { .sun_family = AF_UNIX };
	struct msghdr m = {
		.msg_name = &to, .msg_namelen = sizeof(to),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.b, .msg_controllen = sizeof(ctl.b),
	};
	socklen_t fromlen;
	int s, c, fds[4], i, before;

	s = dgram(at(srv, sizeof(srv), "srv"));
	c = dgram(at(cli, sizeof(cli), "cli"));
	snprintf(to.sun_path, sizeof(to.sun_path), "%s", srv);

	/* Without SO_PASSCRED: nothing known. */
	ck_assert_int_eq(sendto(c, "a", 1, 0, (struct sockaddr *)&to,
	    sizeof(to)), 1);
	fromlen = sizeof(from);
	ck_assert_int_eq(dgpeer_recv(s, buf, sizeof(buf), 0, &from, &fromlen,
	    &cred), 1);
	ck_assert(!cred.known);
	ck_assert_str_eq(((struct sockaddr_un *)&from)->sun_path, cli);

	/*
	 * Queued before SO_PASSCRED (a socket systemd passed): credentials
	 * come, but with pid 0 and uid 65534, and are not believed.
	 */
	ck_assert_int_eq(sendto(c, "q", 1, 0, (struct sockaddr *)&to,
	    sizeof(to)), 1);
	ck_assert_int_eq(dgpeer_listen(s), 0);
	fromlen = sizeof(from);
	ck_assert_int_eq(dgpeer_recv(s, buf, sizeof(buf), 0, &from, &fromlen,
	    &cred), 1);
	ck_assert(cred.known);
	ck_assert_int_eq(cred.uc.pid, 0);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&from, fromlen,
	    &cred), -ENODATA);

	ck_assert_int_eq(sendto(c, "b", 1, 0, (struct sockaddr *)&to,
	    sizeof(to)), 1);
	fromlen = sizeof(from);
	ck_assert_int_eq(dgpeer_recv(s, buf, sizeof(buf), 0, &from, &fromlen,
	    &cred), 1);
	ck_assert(cred.known);
	ck_assert_int_eq(cred.uc.uid, getuid());
	ck_assert_int_eq(cred.uc.gid, getgid());
	ck_assert_int_eq(cred.uc.pid, getpid());
	ck_assert_uint_eq(fromlen, OFF + strlen(cli) + 1);
	ck_assert_int_eq(dgpeer_open(&p, (struct sockaddr *)&from, fromlen,
	    &cred), 0);
	dgpeer_close(&p);

	/* Descriptors passed along are never kept. */
	for (i = 0; i < 4; i++)
		ck_assert_int_ge(fds[i] = open("/dev/null", O_RDONLY |
		    O_CLOEXEC), 0);
	m.msg_controllen = CMSG_SPACE(sizeof(fds));
	ctl.h.cmsg_level = SOL_SOCKET;
	ctl.h.cmsg_type = SCM_RIGHTS;
	ctl.h.cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(&ctl.h), fds, sizeof(fds));
	ck_assert_int_eq(sendmsg(c, &m, 0), 3);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	before = check_open_fds();
	fromlen = sizeof(from);
	ck_assert_int_eq(dgpeer_recv(s, buf, sizeof(buf), 0, &from, &fromlen,
	    &cred), 3);
	ck_assert(cred.known);
	ck_assert_int_eq(check_open_fds(), before);

	/* Errors come back as -errno. */
	fromlen = sizeof(from);
	ck_assert_int_eq(dgpeer_recv(s, buf, sizeof(buf), MSG_DONTWAIT, &from,
	    &fromlen, &cred), -EAGAIN);
	close(s);
	close(c);
}
END_TEST

static Suite *
dgpeer_suite(void)
{
	Suite	*s = suite_create("dgpeer");
	TCase	*pure = tcase_create("pure");
	TCase	*fs = tcase_create("files");

	tcase_add_test(pure, test_classify);
	tcase_add_test(pure, test_component);
	suite_add_tcase(s, pure);
	tcase_add_checked_fixture(fs, setup, teardown);
	tcase_add_test(fs, test_open_path_openat2);
	tcase_add_test(fs, test_open_path_walk);
	tcase_add_test(fs, test_open_verified);
	tcase_add_test(fs, test_open_swapped);
	tcase_add_test(fs, test_open_other_addresses);
	tcase_add_test(fs, test_recv_credentials);
	suite_add_tcase(s, fs);
	return s;
}

CHECK_MAIN(dgpeer_suite)
