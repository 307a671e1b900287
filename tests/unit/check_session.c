/*
 * check_session.c - unit tests of session.c: the stream state machine over
 * a socketpair, driven by hand the way the event loop drives it (and by
 * session_run_blocking() in a thread), and the datagram reply.
 *
 * The peer's writes are on the session's socket at once, so each test runs
 * the machine with poll(0) until it would block: no timing is involved.
 * Deadlines are checked with session_tick() at chosen instants.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "session.h"
#include "check_main.h"

/* Bounds on every loop below: rounds of the machine, and a peer's wait. */
#define MAX_ROUNDS	10000
#define WAIT_MS		2000

static int		 sv[2] = { -1, -1 };	/* [0] the session's, [1] the peer's */
static struct session	 s;
static int		 fds_before;
static time_t		 t_start;	/* no reply is older than this */

static void
setup(void)
{
	fds_before = check_open_fds();
	t_start = time(NULL);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
}

static void
teardown(void)
{
	session_free(&s);
	session_thread_cleanup();
	close(sv[0]);
	close(sv[1]);
	sv[0] = sv[1] = -1;
	ck_assert_int_eq(check_open_fds(), fds_before);
}

/* The peer writes len bytes (all of them: the pair has room). */
static void
put_n(const char *buf, size_t len)
{
	ck_assert_int_eq(send(sv[1], buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void
put(const char *str)
{
	put_n(str, strlen(str));
}

/* Run the machine until it waits for something that is not there. */
static void
pump(void)
{
	struct pollfd pfd = { .fd = sv[0] };
	int i;

	for (i = 0; i < MAX_ROUNDS; i++) {
		pfd.events = session_events(&s);
		if (pfd.events == 0 || poll(&pfd, 1, 0) != 1)
			return;
		session_io(&s, pfd.revents);
	}
	ck_abort_msg("the session still runs after %d rounds", MAX_ROUNDS);
}

/* get(): read only what is there now, or wait for the session's EOF. */
#define NOW	0
#define TO_EOF	SIZE_MAX

/*
 * The peer reads into buf after *len: what is there, or (waiting at most
 * WAIT_MS each time) until *len reaches until or EOF.  Returns true at EOF.
 */
static bool
get(char *buf, size_t cap, size_t *len, size_t until)
{
	struct pollfd pfd = { .fd = sv[1], .events = POLLIN };
	ssize_t n;

	for (;;) {
		ck_assert_uint_lt(*len, cap);
		n = recv(sv[1], buf + *len, cap - *len, MSG_DONTWAIT);
		if (n == 0)
			return true;
		if (n > 0) {
			*len += (size_t)n;
			continue;
		}
		ck_assert_msg(errno == EAGAIN, "recv: %s", strerror(errno));
		if (*len >= until)
			return false;
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1,
		    "nothing from the session in %d ms", WAIT_MS);
	}
}

/*
 * The reply at *p must be `text SP TIMESTAMP LF` with the ctime_r() text
 * of a second since the test began; *p moves past it.
 */
static void
expect_reply(const char **p, const char *end, const char *text)
{
	char want[64];
	size_t tl = strlen(text);
	time_t t, now = time(NULL);
	bool found = false;

	ck_assert_msg((size_t)(end - *p) >= tl + LP_TIMESTAMP_LEN + 2,
	    "no reply for \"%s\"", text);
	ck_assert_msg(memcmp(*p, text, tl) == 0 && (*p)[tl] == ' ',
	    "reply \"%.*s\" is not for \"%s\"", (int)(end - *p), *p, text);
	*p += tl + 1;
	ck_assert_int_eq((*p)[LP_TIMESTAMP_LEN], '\n');
	for (t = t_start; t <= now && !found; t++) {
		ck_assert_ptr_nonnull(ctime_r(&t, want));
		found = memcmp(*p, want, LP_TIMESTAMP_LEN) == 0;
	}
	ck_assert_msg(found, "\"%.24s\" is not the time", *p);
	*p += LP_TIMESTAMP_LEN + 1;
}

/* What the peer read must be exactly these replies, in order. */
static void
expect_replies(const char *buf, size_t len, const char *const *texts,
    size_t n)
{
	const char *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		expect_reply(&p, buf + len, texts[i]);
	ck_assert_msg(p == buf + len, "more than %zu replies: \"%.*s\"", n,
	    (int)(buf + len - p), p);
}

#define EXPECT_REPLIES(buf, len, ...) do {				\
	static const char *const texts_[] = { __VA_ARGS__ };		\
	expect_replies(buf, len, texts_, sizeof(texts_) / sizeof(*texts_)); \
} while (0)

/* The peer reads to EOF: exactly the text given (an error line), if any. */
static void
expect_close(const char *last)
{
	char buf[256];
	size_t len = 0;

	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	ck_assert_uint_eq(len, strlen(last));
	ck_assert(memcmp(buf, last, len) == 0);
}

/* What the peer read ends with the line last: take it off *len. */
static void
expect_tail(const char *buf, size_t *len, const char *last)
{
	size_t n = strlen(last);

	ck_assert_uint_ge(*len, n);
	ck_assert_msg(memcmp(buf + *len - n, last, n) == 0,
	    "\"%.*s\" does not end with \"%s\"", (int)*len, buf, last);
	*len -= n;
}

/* Nothing to read for the peer yet, and no EOF. */
static void
expect_silence(void)
{
	char c;

	ck_assert_int_eq(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
}

/* Make the session's socket take only a few KiB: writes come up short. */
static void
small_sndbuf(void)
{
	int one = 1;

	/* The kernel rounds it up to its minimum (about 4.5 KiB). */
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one,
	    sizeof(one)), 0);
}

/* ---- lines --------------------------------------------------------- */

START_TEST(test_one_line)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_events(&s), POLLIN);
	ck_assert_uint_eq(session_epoll_events(&s), EPOLLIN);
	put("hello, world\n");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "hello, world");
	ck_assert_int_eq(s.state, SS_RUNNING);
	ck_assert_int_eq(s.end, SESSION_OPEN);
	ck_assert_uint_eq(s.lines, 1);
	ck_assert_int_eq(session_events(&s), POLLIN);
	/* An idle session keeps no buffer. */
	ck_assert_ptr_null(s.rd.buf);
	ck_assert_ptr_null(s.out);
}
END_TEST

/* Many lines in one write, more than one read's worth: each answered, in
 * order, lines cut by a read's end included. */
#define PIPELINED	1000

START_TEST(test_pipelining)
{
	static char in[PIPELINED * 16], buf[PIPELINED * 48];
	char text[16];
	const char *p = buf;
	size_t inlen = 0, len = 0;
	int i;

	session_init(&s, sv[0], 64, 0);
	for (i = 0; i < PIPELINED; i++)
		inlen += (size_t)snprintf(in + inlen, sizeof(in) - inlen,
		    "line %d\n", i);
	ck_assert_uint_gt(inlen, 4096 * 2);
	put_n(in, inlen);
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	for (i = 0; i < PIPELINED; i++) {
		snprintf(text, sizeof(text), "line %d", i);
		expect_reply(&p, buf + len, text);
	}
	ck_assert(p == buf + len);
	ck_assert_uint_eq(s.lines, PIPELINED);
	ck_assert_int_eq(s.state, SS_RUNNING);
}
END_TEST

START_TEST(test_split_line)
{
	static const char line[] = "split across writes\n";
	char buf[256];
	size_t i, len = 0;

	session_init(&s, sv[0], 64, 0);
	for (i = 0; i + 1 < strlen(line); i++) {
		put_n(line + i, 1);
		pump();
		expect_silence();
	}
	ck_assert_uint_eq(s.lines, 0);
	put("\n");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "split across writes");
	/* Two lines, the cut inside the second. */
	len = 0;
	put("one\ntw");
	pump();
	put("o\n");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "one", "two");
}
END_TEST

START_TEST(test_crlf)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	/* A CR before LF ends the line, also when the LF comes later; a CR
	 * elsewhere is text. */
	put("one\r\ntwo\r");
	pump();
	put("\na\rb\n\r\n");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "one", "two", "a\rb", "");
}
END_TEST

/* ---- the end of a session ------------------------------------------ */

START_TEST(test_exit)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	put("first\n exit \t\n");
	pump();
	/* The reply to exit, then EOF. */
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "first", " exit \t");
	ck_assert_int_eq(s.end, SESSION_EXIT);
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert_int_eq(session_events(&s), 0);
	ck_assert(!session_end_is_error(s.end));
}
END_TEST

/* Input after exit is never answered; it is drained, so the peer is not
 * reset before it reads the reply, until the peer closes or time is up. */
START_TEST(test_exit_then_more)
{
	char buf[256];
	size_t len = 0;
	uint64_t until;

	session_init(&s, sv[0], 64, 0);
	put("exit\nnever answered\n");
	pump();
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "exit");
	ck_assert_int_eq(s.end, SESSION_EXIT);
	ck_assert_int_eq(s.state, SS_LINGERING);
	ck_assert_int_eq(session_events(&s), POLLIN);
	until = s.linger_until_ms;
	ck_assert_int_eq(session_timeout_ms(&s, until - 5), 5);
	ck_assert_int_eq(session_tick(&s, until - 1), SS_LINGERING);
	/* More input is drained, not answered. */
	put("and more\n");
	pump();
	ck_assert_int_eq(s.state, SS_LINGERING);
	ck_assert_int_eq(session_tick(&s, until), SS_DONE);
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

START_TEST(test_linger_until_peer_closes)
{
	session_init(&s, sv[0], 64, 0);
	put("exit\nx\n");
	pump();
	ck_assert_int_eq(s.state, SS_LINGERING);
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	pump();
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

START_TEST(test_too_long)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 16, 0);
	/* Exactly the limit is a line; one byte more is not. */
	put("0123456789abcdef\n0123456789abcdefg");
	pump();
	/* The reply to the line that fits, then the error, then EOF. */
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	expect_tail(buf, &len, "ERROR line too long (limit 16 bytes)\n");
	EXPECT_REPLIES(buf, len, "0123456789abcdef");
	ck_assert_int_eq(s.end, SESSION_TOOLONG);
	ck_assert(session_end_is_error(s.end));
	/* The rest of the too long line may still be coming: drain it. */
	ck_assert_int_eq(s.state, SS_LINGERING);
	ck_assert_uint_eq(s.lines, 1);
}
END_TEST

START_TEST(test_too_long_at_eof)
{
	session_init(&s, sv[0], 4, 0);
	/* At EOF a last CR is text: five bytes. */
	put("1234");
	pump();
	put("\r");
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	pump();
	expect_close("ERROR line too long (limit 4 bytes)\n");
	ck_assert_int_eq(s.end, SESSION_TOOLONG);
}
END_TEST

START_TEST(test_eof_answers_last_line)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	put("a\nlast words");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	pump();
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "a", "last words");
	ck_assert_int_eq(s.end, SESSION_EOF);
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert(!session_end_is_error(s.end));
}
END_TEST

START_TEST(test_eof_exit_unterminated)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	put("exit");
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	pump();
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "exit");
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

START_TEST(test_eof_silent)
{
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	session_init(&s, sv[0], 64, 0);
	pump();
	expect_close("");
	ck_assert_int_eq(s.end, SESSION_EOF);
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert_uint_eq(s.lines, 0);
}
END_TEST

START_TEST(test_reset)
{
	session_init(&s, sv[0], 64, 0);
	put("a\n");
	close(sv[1]);
	sv[1] = -1;
	pump();
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert_int_eq(s.end, SESSION_RESET);
	ck_assert(session_end_is_error(s.end));
}
END_TEST

START_TEST(test_shutdown)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	put("a\npartial");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "a");
	ck_assert_int_eq(session_shutdown(&s), SS_DONE);
	expect_close("ERROR server shutting down\n");
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
	ck_assert(!session_end_is_error(s.end));
	/* Once: a second call changes nothing. */
	ck_assert_int_eq(session_shutdown(&s), SS_DONE);
}
END_TEST

START_TEST(test_shutdown_unread_input)
{
	session_init(&s, sv[0], 64, 0);
	put("not yet read\n");
	/* The error, then drain the input rather than reset the peer. */
	ck_assert_int_eq(session_shutdown(&s), SS_LINGERING);
	expect_close("ERROR server shutting down\n");
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
}
END_TEST

/* ---- partial writes ------------------------------------------------ */

/* Replies far larger than the socket takes: the session keeps the rest,
 * waits for POLLOUT without reading more, and finishes when the peer
 * reads. */
#define MANY	2000

START_TEST(test_partial_writes)
{
	static char in[MANY * 8], buf[MANY * 32];
	char text[16];
	const char *p = buf;
	size_t inlen = 0, len = 0;
	int i, unread, unread_after;

	session_init(&s, sv[0], 64, 0);
	small_sndbuf();
	for (i = 0; i < MANY; i++)
		inlen += (size_t)snprintf(in + inlen, sizeof(in) - inlen,
		    "%04d\n", i);
	put_n(in, inlen);
	ck_assert_int_eq(session_io(&s, POLLIN), SS_RUNNING);
	ck_assert_uint_gt(s.outlen, s.outoff);
	ck_assert_int_eq(session_events(&s), POLLOUT);
	ck_assert_uint_eq(session_epoll_events(&s), EPOLLOUT);
	/* Back-pressure: no more input is read while replies wait. */
	ck_assert_int_eq(ioctl(sv[0], FIONREAD, &unread), 0);
	ck_assert_int_gt(unread, 0);
	ck_assert_int_eq(session_io(&s, POLLIN), SS_RUNNING);
	ck_assert_int_eq(ioctl(sv[0], FIONREAD, &unread_after), 0);
	ck_assert_int_eq(unread_after, unread);
	/* The peer reads, the session writes, until every reply is in. */
	for (i = 0; i < MAX_ROUNDS && len < sizeof(buf); i++) {
		ck_assert(!get(buf, sizeof(buf), &len, NOW));
		pump();
		if (session_events(&s) == POLLIN && s.lines == MANY)
			break;
	}
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	for (i = 0; i < MANY; i++) {
		snprintf(text, sizeof(text), "%04d", i);
		expect_reply(&p, buf + len, text);
	}
	ck_assert(p == buf + len);
	ck_assert_int_eq(s.state, SS_RUNNING);
	ck_assert_ptr_null(s.out);
	ck_assert_uint_eq(session_epoll_events(&s), EPOLLIN);
}
END_TEST

/*
 * One read's worth of numbered lines and an exit, answered in one
 * session_io() into a small send buffer: the session is left flushing
 * its final replies.  Returns the number of lines before the exit.
 */
static int
flushing_after_exit(void)
{
	static char in[4096];
	size_t inlen = 0;
	int n;

	session_init(&s, sv[0], 64, 0);
	small_sndbuf();
	for (n = 0; inlen + 10 < sizeof(in); n++)
		inlen += (size_t)snprintf(in + inlen, sizeof(in) - inlen,
		    "%03d\n", n);
	inlen += (size_t)snprintf(in + inlen, sizeof(in) - inlen, "exit\n");
	put_n(in, inlen);
	ck_assert_int_eq(session_io(&s, POLLIN), SS_FLUSHING);
	ck_assert_uint_gt(s.outlen, s.outoff);
	return n;
}

/* The reply to exit is among the kept bytes: all go out, then EOF. */
START_TEST(test_partial_final_reply)
{
	static char buf[1000 * 32];
	char text[16];
	const char *p = buf;
	size_t len = 0;
	int i, n;

	n = flushing_after_exit();
	ck_assert_uint_eq(session_epoll_events(&s), EPOLLOUT);
	for (i = 0; i < MAX_ROUNDS && s.state == SS_FLUSHING; i++) {
		ck_assert(!get(buf, sizeof(buf), &len, NOW));
		pump();
	}
	ck_assert_int_eq(s.state, SS_DONE);
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%03d", i);
		expect_reply(&p, buf + len, text);
	}
	expect_reply(&p, buf + len, "exit");
	ck_assert(p == buf + len);
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

/*
 * The stop while the final replies wait for a peer that reads nothing:
 * the session ends now instead of waiting with them.
 */
START_TEST(test_shutdown_flushing)
{
	(void)flushing_after_exit();
	ck_assert_int_eq(session_shutdown(&s), SS_DONE);
	/* It ended by the client's exit; only the wait was cut. */
	ck_assert_int_eq(s.end, SESSION_EXIT);
	ck_assert_int_eq(session_shutdown(&s), SS_DONE);
}
END_TEST

/*
 * The stop when earlier replies the peer has not read fill the socket:
 * the shutdown error cannot be sent either, and the session ends now.
 */
START_TEST(test_shutdown_peer_not_reading)
{
	int i;

	session_init(&s, sv[0], 64, 0);
	small_sndbuf();
	for (i = 0; i < MAX_ROUNDS * 100; i++)
		if (send(sv[0], "x\n", 2, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(s.state, SS_RUNNING);
	ck_assert_int_eq(session_shutdown(&s), SS_DONE);
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
}
END_TEST

/* ---- idle timeout -------------------------------------------------- */

START_TEST(test_idle)
{
	uint64_t t0;

	session_init(&s, sv[0], 64, 5);
	t0 = s.last_ms;		/* the session's start */
	ck_assert_int_eq(session_timeout_ms(&s, t0), 5000);
	ck_assert_int_eq(session_timeout_ms(&s, t0 + 1000), 4000);
	ck_assert_int_eq(session_timeout_ms(&s, t0 + 10000), 0);
	ck_assert_int_eq(session_tick(&s, t0 + 4999), SS_RUNNING);
	expect_silence();
	ck_assert_int_eq(session_tick(&s, t0 + 5000), SS_DONE);
	expect_close("ERROR idle timeout\n");
	ck_assert_int_eq(s.end, SESSION_IDLE);
	ck_assert(session_end_is_error(s.end));
	ck_assert_int_eq(session_timeout_ms(&s, t0), -1);
}
END_TEST

START_TEST(test_no_idle_timeout)
{
	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_timeout_ms(&s, clock_ms()), -1);
	ck_assert_int_eq(session_tick(&s, clock_ms() + 86400000),
	    SS_RUNNING);
	expect_silence();
}
END_TEST

/* Wait (bounded) until the monotonic clock has passed t: so that a
 * restarted clock can be told from one that was not. */
static uint64_t
ms_after(uint64_t t)
{
	uint64_t now;
	int i;

	for (i = 0; i < 1000 && (now = clock_ms()) <= t; i++)
		(void)poll(NULL, 0, 1);
	ck_assert_uint_gt(now, t);
	return now;
}

/* A complete line restarts the clock. */
START_TEST(test_idle_line_restarts)
{
	char buf[256];
	size_t len = 0;
	uint64_t t0, before;

	session_init(&s, sv[0], 64, 1);
	t0 = s.last_ms;
	before = ms_after(t0);
	put("a\n");
	pump();
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "a");
	ck_assert_int_ge(session_timeout_ms(&s, before), 1000);
	ck_assert_int_eq(session_tick(&s, t0 + 1000), SS_RUNNING);
	ck_assert_int_eq(session_tick(&s, clock_ms() + 1000), SS_DONE);
	expect_close("ERROR idle timeout\n");
}
END_TEST

/* Replies wait, the peer does not read: the session ends without one
 * more (an error reply would wait behind the others). */
START_TEST(test_idle_not_reading)
{
	static char in[4096];

	session_init(&s, sv[0], 64, 1);
	small_sndbuf();
	memset(in, '\n', sizeof(in));
	put_n(in, sizeof(in));
	ck_assert_int_eq(session_io(&s, POLLIN), SS_RUNNING);
	ck_assert_uint_gt(s.outlen, s.outoff);
	ck_assert_int_eq(session_tick(&s, clock_ms() + 1000), SS_DONE);
	ck_assert_int_eq(s.end, SESSION_IDLE);
}
END_TEST

/*
 * Issue 12 item 6: only a complete line restarts the idle clock (SPEC 1).
 * Bytes that complete no line, and replies that the peer reads slowly,
 * do not keep a session longer than silence would.
 */
START_TEST(test_idle_trickle)
{
	static const char bytes[] = "abc";
	uint64_t t0, now;
	size_t i;

	session_init(&s, sv[0], 64, 1);
	t0 = s.last_ms;
	for (i = 0, now = t0; i < strlen(bytes); i++) {
		now = ms_after(now);
		put_n(bytes + i, 1);
		pump();
	}
	ck_assert_uint_eq(lp_reader_pending(&s.rd), 3);
	ck_assert_int_eq(session_tick(&s, t0 + 1000), SS_DONE);
	expect_close("ERROR idle timeout\n");
	ck_assert_int_eq(s.end, SESSION_IDLE);
}
END_TEST

START_TEST(test_idle_slow_reader)
{
	static char in[4096], buf[4096 * 27];
	size_t len = 0;
	uint64_t now, deadline;
	int i;

	session_init(&s, sv[0], 64, 1);
	small_sndbuf();
	memset(in, '\n', sizeof(in));
	put_n(in, sizeof(in));
	ck_assert_int_eq(session_io(&s, POLLIN), SS_RUNNING);
	ck_assert_uint_gt(s.outlen, s.outoff);
	now = clock_ms();
	deadline = now + (uint64_t)session_timeout_ms(&s, now);
	/* The peer reads a little at a time, the clock moving on. */
	for (i = 0, now = ms_after(now); i < MAX_ROUNDS && s.out != NULL;
	    i++) {
		ck_assert(!get(buf, sizeof(buf), &len, NOW));
		now = ms_after(now);
		pump();
	}
	ck_assert_ptr_null(s.out);
	ck_assert_uint_eq(s.lines, sizeof(in));
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	ck_assert_uint_eq(len, sizeof(in) * (LP_TIMESTAMP_LEN + 2));
	ck_assert_int_eq(session_tick(&s, deadline), SS_DONE);
	expect_close("ERROR idle timeout\n");
	ck_assert_int_eq(s.end, SESSION_IDLE);
}
END_TEST

/* ---- session_run_blocking(): the loop of a session's own thread ------ */

/* Join a session's thread if it ends within ms milliseconds. */
static bool
join_within(pthread_t th, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += ms % 1000 * 1000 * 1000;
	if (ts.tv_nsec >= 1000 * 1000 * 1000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000 * 1000 * 1000;
	}
	return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

/* Join a session's thread, which must end within WAIT_MS. */
static void
run_join(pthread_t th)
{
	ck_assert(join_within(th, WAIT_MS));
}

struct runner {
	pthread_t	 th;
	atomic_bool	 stop;
	int		 stop_fd;
};

static void *
run_blocking(void *arg)
{
	struct runner *r = arg;

	session_run_blocking(&s, r->stop_fd, &r->stop);
	session_thread_cleanup();
	return NULL;
}

/* The handler of the thread model: SIGRTMIN, no SA_RESTART. */
static void
blocking_start_fd(struct runner *r, int stop_fd)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = session_interrupt;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGRTMIN, &sa, NULL), 0);
	atomic_init(&r->stop, false);
	r->stop_fd = stop_fd;
	ck_assert_int_eq(pthread_create(&r->th, NULL, run_blocking, r), 0);
}

static void
blocking_start(struct runner *r)
{
	blocking_start_fd(r, -1);
}

/*
 * The window a stop must not be lost in: between the session's last look
 * at its stop flag and its recv().  This file's recv() (it takes the name
 * from libc's for session.o) can hold the next call there, on demand.
 */
static atomic_bool	 hold_next;
static sem_t		 hold_entered, hold_release;

ssize_t		 held_recv(int fd, void *buf, size_t n, int flags)
		    __asm__("recv");

ssize_t
held_recv(int fd, void *buf, size_t n, int flags)
{
	if (atomic_exchange(&hold_next, false)) {
		sem_post(&hold_entered);
		while (sem_wait(&hold_release) < 0 && errno == EINTR)
			;
	}
	return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

/* Lines one at a time, each answered before the next is sent. */
START_TEST(test_blocking_lines)
{
	struct runner r;
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 300);
	blocking_start(&r);
	put("one\n");
	ck_assert(!get(buf, sizeof(buf), &len, strlen("one ") +
	    LP_TIMESTAMP_LEN + 1));
	put("two\r\nthr");
	ck_assert(!get(buf, sizeof(buf), &len, strlen("one two ") +
	    2 * LP_TIMESTAMP_LEN + 2));
	put("ee\nexit\n");
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	run_join(r.th);
	EXPECT_REPLIES(buf, len, "one", "two", "three", "exit");
	ck_assert_int_eq(s.end, SESSION_EXIT);
	/* The socket was made blocking. */
	ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
}
END_TEST

/* Primed bytes are answered before the socket is read. */
START_TEST(test_blocking_primed)
{
	struct runner r;
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_prime(&s, "one\ntw", 6), 0);
	blocking_start(&r);
	ck_assert(!get(buf, sizeof(buf), &len, strlen("one ") +
	    LP_TIMESTAMP_LEN + 1));
	put("o\n");
	shutdown(sv[1], SHUT_WR);
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	run_join(r.th);
	EXPECT_REPLIES(buf, len, "one", "two");
	ck_assert_int_eq(s.end, SESSION_EOF);
}
END_TEST

/*
 * A peer that does not read: replies queue in the session (poll path),
 * and once it reads again the session is back in its blocking recv().
 */
START_TEST(test_blocking_backpressure)
{
	static char in[64 * 1024], out[64 * 1024 * (LP_TIMESTAMP_LEN + 2)];
	struct runner r;
	size_t len = 0, off = 0;
	ssize_t n;
	int i;

	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = i % 2 ? '\n' : 'x';
	session_init(&s, sv[0], 64, 0);
	blocking_start(&r);
	/* Write all, reading only when the pair is full. */
	for (i = 0; off < sizeof(in) && i < MAX_ROUNDS * 100; i++) {
		n = send(sv[1], in + off, sizeof(in) - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else
			ck_assert(!get(out, sizeof(out), &len, len + 1));
	}
	ck_assert_uint_eq(off, sizeof(in));
	put("exit\n");
	ck_assert(get(out, sizeof(out), &len, TO_EOF));
	run_join(r.th);
	ck_assert_uint_eq(s.lines, sizeof(in) / 2 + 1);
	ck_assert_uint_eq(len, sizeof(in) / 2 * (LP_TIMESTAMP_LEN + 3) +
	    strlen("exit ") + LP_TIMESTAMP_LEN + 1);
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

/*
 * SO_RCVTIMEO is the idle clock: a silent session is cut at the idle
 * timeout, not before; and bytes without a newline do not restart it.
 */
START_TEST(test_blocking_idle)
{
	struct runner r;
	char buf[256];
	size_t len = 0;
	uint64_t t0 = clock_ms(), el;

	session_init(&s, sv[0], 64, 1);
	blocking_start(&r);
	put("a\n");
	ck_assert(!get(buf, sizeof(buf), &len, strlen("a ") +
	    LP_TIMESTAMP_LEN + 1));
	t0 = clock_ms();
	put("tri");
	usleep(300 * 1000);
	put("ckle");
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	el = clock_ms() - t0;
	run_join(r.th);
	expect_tail(buf, &len, "ERROR idle timeout\n");
	EXPECT_REPLIES(buf, len, "a");
	ck_assert_int_eq(s.end, SESSION_IDLE);
	/* Not early; and not 1300 ms, as if "ckle" restarted the clock. */
	ck_assert_uint_ge(el, 1000 - 50);
	ck_assert_uint_le(el, 1000 + 250);
}
END_TEST

/*
 * The stop: the flag, then SIGRTMIN to the thread, whether it is asleep
 * in recv() or about to enter it; every round gets the shutdown error.
 */
START_TEST(test_blocking_stop)
{
	struct runner r;
	char buf[256];
	size_t len;
	int i, j;

	for (i = 0; i < 200; i++) {
		len = 0;
		if (i > 0) {
			session_free(&s);
			close(sv[0]);
			close(sv[1]);
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM |
			    SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		}
		session_init(&s, sv[0], 64, 0);
		blocking_start(&r);
		if (i % 2 == 0) {
			/* Surely asleep: it answered and waits for more. */
			put("a\n");
			ck_assert(!get(buf, sizeof(buf), &len, strlen("a ") +
			    LP_TIMESTAMP_LEN + 1));
		} else
			/* Anywhere from its start to its recv(). */
			for (j = 0; j < i * 50; j++)
				sched_yield();
		atomic_store(&r.stop, true);
		ck_assert_int_eq(pthread_kill(r.th, SIGRTMIN), 0);
		ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
		run_join(r.th);
		expect_tail(buf, &len, "ERROR server shutting down\n");
		if (i % 2 == 0)
			EXPECT_REPLIES(buf, len, "a");
		ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
	}
}
END_TEST

/* The peer writes lines and never reads, until the session stops reading. */
static void
stall(void)
{
	static char in[64 * 1024];
	struct pollfd pfd = { .fd = sv[1], .events = POLLOUT };
	int i;

	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = i % 2 ? '\n' : 'x';
	for (i = 0; i < MAX_ROUNDS * 100; i++)
		if (send(sv[1], in, sizeof(in), MSG_NOSIGNAL) < 0 &&
		    poll(&pfd, 1, 200) == 0)
			return;
	ck_abort_msg("the session kept reading");
}

/*
 * The stop while the session waits in poll() for a peer that reads
 * nothing, its replies queued.  A stop that comes just before the poll()
 * has only stop_fd to end the wait (stopsig.c's eventfd, in a fork child
 * and in inetd mode).
 */
START_TEST(test_blocking_stop_fd)
{
	struct runner r;
	int stop[2];

	ck_assert_int_eq(pipe2(stop, O_CLOEXEC), 0);
	session_init(&s, sv[0], 64, 0);
	blocking_start_fd(&r, stop[0]);
	stall();
	ck_assert_int_eq(write(stop[1], "x", 1), 1);
	run_join(r.th);
	close(stop[0]);
	close(stop[1]);
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
}
END_TEST

/*
 * The same stop without a stop_fd: the signal interrupts the poll(), and
 * the flag read before the next one ends the session.
 */
START_TEST(test_blocking_stop_in_poll)
{
	struct runner r;
	int i;

	session_init(&s, sv[0], 64, 0);
	blocking_start(&r);
	stall();
	atomic_store(&r.stop, true);
	/* Again and again: one sent before the thread's poll() is lost. */
	for (i = 0; i < WAIT_MS / 50; i++) {
		ck_assert_int_eq(pthread_kill(r.th, SIGRTMIN), 0);
		if (join_within(r.th, 50))
			break;
	}
	ck_assert_int_lt(i, WAIT_MS / 50);
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
}
END_TEST

/*
 * The stop comes (flag, then signal) after the session read the flag and
 * before its recv() starts: that recv() must not sleep.
 */
START_TEST(test_blocking_stop_window)
{
	struct runner r;
	struct timespec ts;
	char buf[256];
	size_t len = 0;

	ck_assert_int_eq(sem_init(&hold_entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&hold_release, 0, 0), 0);
	session_init(&s, sv[0], 64, 0);
	atomic_store(&hold_next, true);
	blocking_start(&r);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	ck_assert_int_eq(sem_timedwait(&hold_entered, &ts), 0);
	atomic_store(&r.stop, true);
	ck_assert_int_eq(pthread_kill(r.th, SIGRTMIN), 0);
	sem_post(&hold_release);
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	run_join(r.th);
	ck_assert_int_eq(len, strlen("ERROR server shutting down\n"));
	ck_assert(memcmp(buf, "ERROR server shutting down\n", len) == 0);
	ck_assert_int_eq(s.end, SESSION_SHUTDOWN);
	sem_destroy(&hold_entered);
	sem_destroy(&hold_release);
}
END_TEST

/* True once fd is blocking again, within WAIT_MS. */
static bool
becomes_blocking(int fd)
{
	struct timespec t0, t;
	int flags;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		flags = fcntl(fd, F_GETFL);
		ck_assert_int_ge(flags, 0);
		if (!(flags & O_NONBLOCK))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 >= WAIT_MS)
			return false;
		sched_yield();
	}
}

/*
 * A SIGRTMIN that is no stop (someone's kill -RTMIN) costs the session
 * nothing: it goes on answering, and sleeping in recv().
 */
START_TEST(test_blocking_stray_signal)
{
	struct runner r;
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	blocking_start(&r);
	put("a\n");
	ck_assert(!get(buf, sizeof(buf), &len, strlen("a ") +
	    LP_TIMESTAMP_LEN + 1));
	ck_assert_int_eq(pthread_kill(r.th, SIGRTMIN), 0);
	put("b\n");
	ck_assert(!get(buf, sizeof(buf), &len, strlen("a b ") +
	    2 * LP_TIMESTAMP_LEN + 2));
	/*
	 * Back asleep: blocking again.  The reply to "b" may come before the
	 * thread's next turn makes the socket blocking, so wait for that
	 * (bounded), never for a fixed time.
	 */
	ck_assert_msg(becomes_blocking(sv[0]),
	    "socket still non-blocking %d ms after a stray signal", WAIT_MS);
	put("exit\n");
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	run_join(r.th);
	EXPECT_REPLIES(buf, len, "a", "b", "exit");
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

/* ---- primed bytes (after a PROXY header) --------------------------- */

/*
 * Bytes primed before the first session_io() are answered by it, though
 * the socket has nothing: no readiness event would ever come for them.
 * A partial line among them is completed by what the socket brings next.
 */
START_TEST(test_prime_without_readiness)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_prime(&s, "one\ntwo\r\nthr", 12), 0);
	session_io(&s, POLLIN);
	ck_assert(!get(buf, sizeof(buf), &len, NOW));
	EXPECT_REPLIES(buf, len, "one", "two");
	ck_assert_ptr_null(s.early);
	ck_assert_int_eq(s.state, SS_RUNNING);
	len = 0;
	put("ee\nexit\n");
	pump();
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "three", "exit");
	ck_assert_uint_eq(s.lines, 4);
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

/* An "exit" among the primed bytes ends the session like a read one. */
START_TEST(test_prime_exit)
{
	char buf[256];
	size_t len = 0;

	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_prime(&s, "a\nexit\n", 7), 0);
	ck_assert_int_eq(session_prime(&s, "", 0), 0);
	session_io(&s, POLLIN);
	ck_assert(get(buf, sizeof(buf), &len, TO_EOF));
	EXPECT_REPLIES(buf, len, "a", "exit");
	ck_assert_int_eq(s.end, SESSION_EXIT);
}
END_TEST

/* Freed with the session even if never read. */
START_TEST(test_prime_freed)
{
	session_init(&s, sv[0], 64, 0);
	ck_assert_int_eq(session_prime(&s, "never read\n", 11), 0);
	session_free(&s);
	ck_assert_ptr_null(s.early);
	ck_assert_uint_eq(s.nearly, 0);
}
END_TEST

/* ---- datagrams and names ------------------------------------------- */

START_TEST(test_dgram_reply)
{
	char out[256];
	const char *p = out;
	size_t n;
	bool err = true;

	ck_assert_uint_ge(dgram_reply_cap(16), lp_reply_len(16));
	ck_assert_uint_ge(dgram_reply_cap(16), LP_ERROR_MAX);
	ck_assert_uint_ge(sizeof(out), dgram_reply_cap(16));
	/* One trailing LF or CR LF is not text; exit is just text. */
	n = dgram_reply("hello\n", 6, 16, out, &err);
	ck_assert(!err);
	expect_reply(&p, out + n, "hello");
	n = dgram_reply("exit\r\n", 6, 16, out, &err);
	p = out;
	expect_reply(&p, out + n, "exit");
	n = dgram_reply("0123456789abcdef", 16, 16, out, &err);
	ck_assert(!err);
	p = out;
	expect_reply(&p, out + n, "0123456789abcdef");
	n = dgram_reply("0123456789abcdefg", 17, 16, out, &err);
	ck_assert(err);
	ck_assert_uint_eq(n, strlen("ERROR line too long (limit 16 bytes)\n"));
	ck_assert(memcmp(out, "ERROR line too long (limit 16 bytes)\n", n) ==
	    0);
}
END_TEST

START_TEST(test_end_names)
{
	ck_assert_str_eq(session_end_name(SESSION_EXIT), "exit");
	ck_assert_str_eq(session_end_name(SESSION_EOF), "eof");
	ck_assert_str_eq(session_end_name(SESSION_TOOLONG), "line too long");
	ck_assert_str_eq(session_end_name(SESSION_IDLE), "idle timeout");
	ck_assert_str_eq(session_end_name(SESSION_SHUTDOWN), "shutdown");
	ck_assert_str_eq(session_end_name(SESSION_RESET), "connection error");
	ck_assert_str_eq(session_end_name(SESSION_NOMEM), "out of memory");
	ck_assert(!session_end_is_error(SESSION_OPEN));
	ck_assert(session_end_is_error(SESSION_NOMEM));
}
END_TEST

static TCase *
tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	return tc;
}

static Suite *
session_suite(void)
{
	Suite	*su = suite_create("session");
	TCase	*tc;

	tc = tcase("lines");
	tcase_add_test(tc, test_one_line);
	tcase_add_test(tc, test_pipelining);
	tcase_add_test(tc, test_split_line);
	tcase_add_test(tc, test_crlf);
	suite_add_tcase(su, tc);

	tc = tcase("end");
	tcase_add_test(tc, test_exit);
	tcase_add_test(tc, test_exit_then_more);
	tcase_add_test(tc, test_linger_until_peer_closes);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_too_long_at_eof);
	tcase_add_test(tc, test_eof_answers_last_line);
	tcase_add_test(tc, test_eof_exit_unterminated);
	tcase_add_test(tc, test_eof_silent);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_shutdown_unread_input);
	suite_add_tcase(su, tc);

	tc = tcase("partial writes");
	tcase_add_test(tc, test_partial_writes);
	tcase_add_test(tc, test_partial_final_reply);
	tcase_add_test(tc, test_shutdown_flushing);
	tcase_add_test(tc, test_shutdown_peer_not_reading);
	suite_add_tcase(su, tc);

	tc = tcase("idle");
	tcase_add_test(tc, test_idle);
	tcase_add_test(tc, test_no_idle_timeout);
	tcase_add_test(tc, test_idle_line_restarts);
	tcase_add_test(tc, test_idle_not_reading);
	suite_add_tcase(su, tc);

	/* Only a complete line restarts the idle clock (issue 12 item 6). */
	tc = tcase("idle clock");
	tcase_add_test(tc, test_idle_trickle);
	tcase_add_test(tc, test_idle_slow_reader);
	suite_add_tcase(su, tc);

	tc = tcase("session_run_blocking");
	tcase_add_test(tc, test_blocking_lines);
	tcase_add_test(tc, test_blocking_primed);
	tcase_add_test(tc, test_blocking_backpressure);
	tcase_add_test(tc, test_blocking_idle);
	tcase_add_test(tc, test_blocking_stop);
	tcase_add_test(tc, test_blocking_stop_fd);
	tcase_add_test(tc, test_blocking_stop_in_poll);
	tcase_add_test(tc, test_blocking_stop_window);
	tcase_add_test(tc, test_blocking_stray_signal);
	suite_add_tcase(su, tc);

	tc = tcase("primed bytes");
	tcase_add_test(tc, test_prime_without_readiness);
	tcase_add_test(tc, test_prime_exit);
	tcase_add_test(tc, test_prime_freed);
	suite_add_tcase(su, tc);

	tc = tcase("datagrams and names");
	tcase_add_test(tc, test_dgram_reply);
	tcase_add_test(tc, test_end_names);
	suite_add_tcase(su, tc);
	return su;
}

CHECK_MAIN(session_suite)
