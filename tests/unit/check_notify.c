/*
 * check_notify.c - unit tests for notify.c against a private NOTIFY_SOCKET:
 * an AF_UNIX datagram socket the test binds and reads, the way a service
 * manager would.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "notify.h"
#include "check_main.h"

static char	 dir[64];
static char	 sockpath[108];
static int	 sock = -1;

static void
setup(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(dir, sizeof(dir), "/tmp/check_notify.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sockpath, sizeof(sockpath), "%s/notify", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", sockpath, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void
teardown(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	unlink(sockpath);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

/*
 * Receive one datagram (waiting up to 2 s) as a string; *fdp gets a passed
 * fd or -1.  Returns a static buffer.
 */
static const char *
recv_msg_fd(int *fdp)
{
	static char buf[4096];
	union {
		struct cmsghdr	hdr;
		char		space[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = &ctl, .msg_controllen = sizeof(ctl),
	};
	struct pollfd pfd = { sock, POLLIN, 0 };
	struct cmsghdr *c;
	ssize_t n;

	if (fdp != NULL)
		*fdp = -1;
	ck_assert_msg(poll(&pfd, 1, 2000) == 1, "no datagram within 2 s");
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int));

			ck_assert_int_eq(nfd, 1);
			ck_assert_ptr_nonnull(fdp);
			memcpy(fdp, CMSG_DATA(c), sizeof(int));
		}
	}
	return buf;
}

static const char *
recv_msg(void)
{
	return recv_msg_fd(NULL);
}

/* Nothing is waiting on the socket. */
static void
assert_no_msg(void)
{
	char buf[512];
	ssize_t n;

	n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n >= 0)
		buf[n] = '\0';
	ck_assert_msg(n == -1 && errno == EAGAIN,
	    "unexpected datagram [%s]", n >= 0 ? buf : "");
}

START_TEST(test_enabled)
{
	ck_assert(notify_enabled());
	unsetenv("NOTIFY_SOCKET");
	ck_assert(!notify_enabled());
}
END_TEST

START_TEST(test_ready)
{
	notify_ready("serving tcp 127.0.0.1:9999, model thread");
	ck_assert_str_eq(recv_msg(),
	    "READY=1\nSTATUS=serving tcp 127.0.0.1:9999, model thread");
	notify_ready(NULL);
	ck_assert_str_eq(recv_msg(), "READY=1");
	/* The environment is kept: a reload sends READY=1 again. */
	ck_assert_str_eq(getenv("NOTIFY_SOCKET"), sockpath);
	assert_no_msg();
}
END_TEST

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

START_TEST(test_reloading)
{
	const char *m;
	uint64_t before, after, usec;
	char *end;

	before = now_usec();
	notify_reloading();
	after = now_usec();
	m = recv_msg();
	ck_assert_int_eq(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27), 0);
	errno = 0;
	usec = strtoull(m + 27, &end, 10);
	ck_assert_int_eq(errno, 0);
	ck_assert_ptr_ne(end, m + 27);
	ck_assert_int_eq(*end, '\0');
	ck_assert_uint_ge(usec, before);
	ck_assert_uint_le(usec, after);
}
END_TEST

START_TEST(test_stopping_and_watchdog)
{
	notify_stopping();
	ck_assert_str_eq(recv_msg(), "STOPPING=1");
	notify_watchdog();
	ck_assert_str_eq(recv_msg(), "WATCHDOG=1");
	assert_no_msg();
}
END_TEST

START_TEST(test_status_dedup)
{
	notify_status("active 0, total 0");
	ck_assert_str_eq(recv_msg(), "STATUS=active 0, total 0");
	notify_status("active 0, total 0");
	assert_no_msg();
	notify_status("active 1, total 1");
	ck_assert_str_eq(recv_msg(), "STATUS=active 1, total 1");
	notify_status("active 0, total 0");
	ck_assert_str_eq(recv_msg(), "STATUS=active 0, total 0");
	/* READY=1 carries a status too; the same text is not repeated. */
	notify_ready("reloaded");
	ck_assert_str_eq(recv_msg(), "READY=1\nSTATUS=reloaded");
	notify_status("reloaded");
	assert_no_msg();
	notify_status(NULL);
	assert_no_msg();
}
END_TEST

START_TEST(test_status_one_field)
{
	/* A newline would start a forged READY=1 or STOPPING=1. */
	notify_status("x\nSTOPPING=1");
	ck_assert_str_eq(recv_msg(), "STATUS=x STOPPING=1");
	notify_ready("y\r\nMAINPID=1");
	ck_assert_str_eq(recv_msg(), "READY=1\nSTATUS=y  MAINPID=1");
}
END_TEST

START_TEST(test_status_not_cached_while_unsent)
{
	/* Without a manager nothing is sent, so nothing is remembered. */
	unsetenv("NOTIFY_SOCKET");
	notify_status("quiet");
	setenv("NOTIFY_SOCKET", sockpath, 1);
	notify_status("quiet");
	ck_assert_str_eq(recv_msg(), "STATUS=quiet");
}
END_TEST

START_TEST(test_watchdog_usec)
{
	char pid[32];

	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "5000000", 1);
	ck_assert_uint_eq(notify_watchdog_usec(), 5000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_uint_eq(notify_watchdog_usec(), 5000000);
	/* Meant for another process (e.g. our parent): not ours. */
	snprintf(pid, sizeof(pid), "%ld", (long)getppid());
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "garbage", 1);
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	/* Still set afterwards: sd_watchdog_enabled(0, ...) keeps it. */
	ck_assert_ptr_nonnull(getenv("WATCHDOG_USEC"));
}
END_TEST

START_TEST(test_fdstore)
{
	struct stat a, b;
	int p[2], got;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(notify_fdstore(p[0], "tcp-main"), 0);
	ck_assert_str_eq(recv_msg_fd(&got), "FDSTORE=1\nFDNAME=tcp-main");
	ck_assert_int_ge(got, 0);
	ck_assert_int_eq(fstat(p[0], &a), 0);
	ck_assert_int_eq(fstat(got, &b), 0);
	ck_assert_uint_eq(a.st_dev, b.st_dev);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	/* The original stays open and usable. */
	ck_assert_int_eq(fcntl(p[0], F_GETFD), FD_CLOEXEC);
	close(got);

	notify_fdstore_remove("tcp-main");
	ck_assert_str_eq(recv_msg(), "FDSTOREREMOVE=1\nFDNAME=tcp-main");

	/* Names systemd would refuse are refused here, nothing sent. */
	ck_assert_int_eq(notify_fdstore(p[0], "a:b"), -EINVAL);
	ck_assert_int_eq(notify_fdstore(p[0], ""), -EINVAL);
	ck_assert_int_eq(notify_fdstore(p[0], NULL), -EINVAL);
	ck_assert_int_eq(notify_fdstore(p[0], "a\nFDSTORE=1"), -EINVAL);
	ck_assert_int_eq(notify_fdstore(-1, "x"), -EINVAL);
	notify_fdstore_remove("a\nb");
	notify_fdstore_remove(NULL);
	assert_no_msg();
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_fdstore_error)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	/* Nobody reads the socket any more: the error comes back. */
	close(sock);
	sock = -1;
	ck_assert_int_lt(notify_fdstore(p[0], "x"), 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_abstract_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char name[64];
	socklen_t len;
	int s;

	/* "@name" in NOTIFY_SOCKET is an abstract socket. */
	snprintf(name, sizeof(name), "echotimed-check-notify-%ld",
	    (long)getpid());
	memcpy(sun.sun_path + 1, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(name));
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, len), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "@%s", name);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	close(sock);
	sock = s;
	notify_stopping();
	ck_assert_str_eq(recv_msg(), "STOPPING=1");
}
END_TEST

START_TEST(test_unset_is_noop)
{
	int p[2];

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	notify_ready("x");
	notify_reloading();
	notify_stopping();
	notify_status("y");
	notify_status("y");
	notify_watchdog();
	ck_assert_int_eq(notify_fdstore(p[0], "x"), 0);
	notify_fdstore_remove("x");
	ck_assert(!notify_enabled());
	assert_no_msg();
	close(p[0]);
	close(p[1]);
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_enabled);
	tcase_add_test(tc, test_ready);
	tcase_add_test(tc, test_reloading);
	tcase_add_test(tc, test_stopping_and_watchdog);
	tcase_add_test(tc, test_status_dedup);
	tcase_add_test(tc, test_status_one_field);
	tcase_add_test(tc, test_status_not_cached_while_unsent);
	tcase_add_test(tc, test_watchdog_usec);
	tcase_add_test(tc, test_fdstore);
	tcase_add_test(tc, test_fdstore_error);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_unset_is_noop);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(notify_suite)
