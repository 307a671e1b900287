/*
 * check_sdlib.c - unit tests for sdlib.c: nothing is loaded without the
 * systemd environment, a notification loads the library and arrives, and
 * the socket checks answer as libsystemd's own sd_is_socket*() do (this
 * binary alone links libsystemd, as the reference).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include "sdlib.h"
#include "check_main.h"

static void
clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* First in the suite: under CK_FORK=no a later test has loaded it. */
START_TEST(test_nothing_loaded_without_environment)
{
	char **names = (char **)1;
	uint64_t usec = 7;

	clear_env();
	ck_assert_int_eq(sdlib_notify("READY=1"), 0);
	ck_assert_int_eq(sdlib_notify_with_fds("FDSTORE=1", NULL, 0), 0);
	ck_assert_int_eq(sdlib_watchdog_enabled(&usec), 0);
	ck_assert_int_eq(sdlib_listen_fds_with_names(&names), 0);
	ck_assert_ptr_null(names);
	ck_assert_int_eq(sdlib_listen_fds_with_names(NULL), 0);
	/* LISTEN_FDS alone is not socket activation (sd_listen_fds agrees). */
	setenv("LISTEN_FDS", "1", 1);
	ck_assert_int_eq(sdlib_listen_fds_with_names(NULL), 0);
	ck_assert_int_eq(sd_listen_fds(0), 0);
	clear_env();
	ck_assert_int_eq(sdlib_loaded(), 0);
	ck_assert_str_eq(sdlib_error(), "");
}
END_TEST

START_TEST(test_notify_loads)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/check_sdlib.XXXXXX", buf[64];
	struct pollfd pfd;
	ssize_t n;
	int s;

	clear_env();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/notify", dir);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	ck_assert_int_gt(sdlib_notify("READY=1"), 0);
	ck_assert_int_ne(sdlib_loaded(), 0);
	pfd.fd = s;
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
	n = recv(s, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "READY=1");
	/* Another process's sockets are not ours, as sd_listen_fds says. */
	snprintf(buf, sizeof(buf), "%d", (int)getpid() + 1);
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDS", "1", 1);
	ck_assert_int_eq(sdlib_listen_fds_with_names(NULL), 0);
	clear_env();
	close(s);
	unlink(sun.sun_path);
	rmdir(dir);
}
END_TEST

/* Every kind of descriptor the daemon may be given, and some it may not. */
static int
make_fds(int *fds, uint16_t *ports, int max)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t l;
	int n = 0, p[2], i;

	memset(ports, 0, sizeof(*ports) * (size_t)max);
	fds[n++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fds[n++] = p[0];
	fds[n++] = p[1];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    p), 0);
	fds[n++] = p[0];
	fds[n++] = p[1];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
	    p), 0);
	fds[n++] = p[0];
	fds[n++] = p[1];
	/* A listening abstract unix socket. */
	fds[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
	    "check_sdlib.%d", (int)getpid());
	ck_assert_int_eq(bind(fds[n], (struct sockaddr *)&sun,
	    sizeof(sun)), 0);
	ck_assert_int_eq(listen(fds[n++], 1), 0);
	/* TCP listening and UDP, IPv4 and IPv6 (if there is IPv6). */
	for (i = 0; i < 4; i++) {
		int type = i % 2 ? SOCK_DGRAM : SOCK_STREAM;
		int fam = i < 2 ? AF_INET : AF_INET6;
		struct sockaddr *sa = fam == AF_INET ?
		    (struct sockaddr *)&sin : (struct sockaddr *)&sin6;
		socklen_t salen = fam == AF_INET ? sizeof(sin) : sizeof(sin6);
		int fd = socket(fam, type | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		if (bind(fd, sa, salen) < 0 ||
		    (type == SOCK_STREAM && listen(fd, 1) < 0)) {
			close(fd);
			continue;
		}
		l = salen;
		ck_assert_int_eq(getsockname(fd, sa, &l), 0);
		ports[n] = ntohs(fam == AF_INET ? sin.sin_port :
		    sin6.sin6_port);
		sin.sin_port = sin6.sin6_port = 0;
		fds[n++] = fd;
	}
	ck_assert_int_le(n, max - 2);
	/* A descriptor that is closed, and a negative one. */
	fds[n] = dup(fds[0]);
	close(fds[n++]);
	fds[n++] = -1;
	return n;
}

START_TEST(test_is_socket_as_libsystemd)
{
	static const int fams[] = { 0, AF_INET, AF_INET6, AF_UNIX, -1 };
	static const int types[] = { 0, SOCK_STREAM, SOCK_DGRAM, -1 };
	static const int listens[] = { -1, 0, 1 };
	int fds[24], n, i, f, t, li, a, b, checked = 0;
	uint16_t ports[24], port;

	n = make_fds(fds, ports, 24);
	for (i = 0; i < n; i++)
	for (f = 0; f < 5; f++)
	for (t = 0; t < 4; t++)
	for (li = 0; li < 3; li++) {
		a = sdlib_is_socket(fds[i], fams[f], types[t], listens[li]);
		b = sd_is_socket(fds[i], fams[f], types[t], listens[li]);
		ck_assert_msg(a == b, "sd_is_socket(fd %d, %d, %d, %d): "
		    "libsystemd %d, sdlib %d", i, fams[f], types[t],
		    listens[li], b, a);
		for (port = 0; port < 3; port++) {
			uint16_t p = port == 0 ? 0 : port == 1 ? ports[i] :
			    (uint16_t)(ports[i] + 1);

			if (port > 0 && p == 0)
				continue;
			a = sdlib_is_socket_inet(fds[i], fams[f], types[t],
			    listens[li], p);
			b = sd_is_socket_inet(fds[i], fams[f], types[t],
			    listens[li], p);
			ck_assert_msg(a == b, "sd_is_socket_inet(fd %d, %d, "
			    "%d, %d, %u): libsystemd %d, sdlib %d", i,
			    fams[f], types[t], listens[li], p, b, a);
			checked += a > 0;
		}
	}
	/* Not all trivially false: some descriptors did match. */
	ck_assert_int_gt(checked, 0);
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}
END_TEST

static Suite *
sdlib_suite(void)
{
	Suite *s = suite_create("sdlib");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_nothing_loaded_without_environment);
	tcase_add_test(tc, test_notify_loads);
	tcase_add_test(tc, test_is_socket_as_libsystemd);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(sdlib_suite)
