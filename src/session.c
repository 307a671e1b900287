/*
 * session.c - stream sessions and datagram replies over lineproto.
 *
 * One exception to the daemon's rule that signals reach only the main
 * loop's signalfd and threads never see them lives here:
 * session_run_blocking() sleeps in a blocking recv(), which no fd can
 * wake, so the thread model stops such a thread (and a fork child or
 * inetd mode its process, stopsig.c) with a signal whose handler ends in
 * session_interrupt(), one async-signal-safe fcntl().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "session.h"
#include "timecache.h"

/* Input is read in chunks of at most this many bytes. */
#define READ_MAX	4096
/* A reply is at most this many times the input bytes that caused it. */
#define REPLY_FACTOR	(LP_TIMESTAMP_LEN + 2)
/* How long a closing session drains unread input so the peer sees our last
 * reply instead of a reset (like nginx's lingering_close). */
#define LINGER_MS	2000

/*
 * Per-thread scratch: replies to one read are built here and written with a
 * single send(); only what the socket does not take is copied into the
 * session.  The event loop's thread keeps its scratch; a session thread
 * frees it when it ends.
 */
static __thread char	*tl_in;
static __thread char	*tl_out;
static __thread size_t	 tl_outcap;
/*
 * The socket a session_run_blocking() thread may block on, -1 outside it:
 * session_interrupt() makes it non-blocking.  Written only by its own
 * thread, read by a handler on that thread: volatile is enough.
 */
static __thread volatile int tl_block_fd = -1;

void
session_thread_cleanup(void)
{
	free(tl_in);
	free(tl_out);
	tl_in = tl_out = NULL;
	tl_outcap = 0;
}

static char *
scratch_out(size_t need)
{
	char *p;

	if (tl_outcap < need) {
		if (!(p = realloc(tl_out, need)))
			return NULL;
		tl_out = p;
		tl_outcap = need;
	}
	return tl_out;
}

/* Room for the replies to a read of n bytes: never more than this. */
static size_t
scratch_need(size_t n, size_t max_line)
{
	return (n > 0 ? n : 1) * REPLY_FACTOR + lp_reply_len(max_line) +
	    LP_ERROR_MAX;
}

void
session_scratch_reserve(size_t max_line)
{
	/* For the largest read; on failure a session allocates for itself. */
	if (!tl_in && !(tl_in = malloc(READ_MAX)))
		return;
	(void)scratch_out(scratch_need(READ_MAX, max_line));
}

void
session_init(struct session *s, int fd, size_t max_line, int idle_timeout)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->state = SS_RUNNING;
	s->end = SESSION_OPEN;
	s->max_line = max_line;
	s->idle_timeout = idle_timeout;
	s->last_ms = clock_ms();
	s->peer = "";
	/* Allocates nothing, and max_line (at most 1 MiB) cannot fail it. */
	(void)lp_reader_init(&s->rd, max_line);
}

int
session_prime(struct session *s, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (!(s->early = malloc(n)))
		return -ENOMEM;
	memcpy(s->early, data, n);
	s->nearly = n;
	return 0;
}

void
session_free(struct session *s)
{
	free(s->early);
	s->early = NULL;
	s->nearly = 0;
	lp_reader_free(&s->rd);
	free(s->out);
	s->out = NULL;
	s->outlen = s->outoff = 0;
}

short
session_events(const struct session *s)
{
	switch (s->state) {
	case SS_RUNNING:
		/* Back-pressure: no reading while replies wait to be sent. */
		return s->outlen > s->outoff ? POLLOUT : POLLIN;
	case SS_FLUSHING:
		return POLLOUT;
	case SS_LINGERING:
		return POLLIN;
	default:
		return 0;
	}
}

int
session_timeout_ms(const struct session *s, uint64_t now)
{
	uint64_t deadline;

	if (s->state == SS_LINGERING)
		deadline = s->linger_until_ms;
	else if (s->state == SS_DONE || s->idle_timeout == 0)
		return -1;
	else
		deadline = s->last_ms + (uint64_t)s->idle_timeout * 1000;
	return deadline > now ? (int)(deadline - now) : 0;
}

static void
finish(struct session *s, enum session_end end)
{
	if (s->end == SESSION_OPEN)
		s->end = end;
	s->state = SS_DONE;
}

/* Pending output is gone: close at once, or linger if input is unread. */
static void
close_gracefully(struct session *s, bool linger)
{
	int unread = 0;

	if (!linger && ioctl(s->fd, FIONREAD, &unread) == 0 && unread > 0)
		linger = true;
	if (!linger) {
		/* The FIN now, with the corked last reply (send_or_keep),
		 * whenever the owner of the fd gets to close it. */
		(void)shutdown(s->fd, SHUT_WR);
		s->state = SS_DONE;
		return;
	}
	/*
	 * Closing a socket with unread input makes the kernel send a reset,
	 * and the peer may then never read our last reply.  Shut the write
	 * side and drain input for a bounded time instead.
	 */
	(void)shutdown(s->fd, SHUT_WR);
	s->state = SS_LINGERING;
	s->linger_until_ms = clock_ms() + LINGER_MS;
}

/*
 * Send buf (len bytes); keep what the socket does not take.  A session's
 * last reply goes with MSG_MORE: the shutdown that follows at once
 * (close_gracefully) pushes it out with the FIN in the same TCP segment,
 * and a short connection costs two segments fewer in all.
 */
static void
send_or_keep(struct session *s, const char *buf, size_t len)
{
	int more = s->state == SS_FLUSHING ? MSG_MORE : 0;
	ssize_t n;
	char *p;

	while (len > 0) {
		n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT | more);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		finish(s, SESSION_RESET);
		return;
	}
	if (len == 0)
		return;
	if (!(p = malloc(len))) {
		finish(s, SESSION_NOMEM);
		return;
	}
	memcpy(p, buf, len);
	s->out = p;
	s->outlen = len;
	s->outoff = 0;
}

/* Write pending output; true once nothing is pending. */
static bool
flush_pending(struct session *s)
{
	ssize_t n;

	while (s->outoff < s->outlen) {
		n = send(s->fd, s->out + s->outoff, s->outlen - s->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			s->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		finish(s, SESSION_RESET);
		return false;
	}
	free(s->out);
	s->out = NULL;
	s->outlen = s->outoff = 0;
	return true;
}

/* Queue a final error reply and move to flushing. */
static void
final_error(struct session *s, enum lp_error err, enum session_end end)
{
	char msg[LP_ERROR_MAX];
	size_t n = lp_format_error(msg, err, s->max_line);

	s->end = end;
	if (s->outlen > s->outoff) {
		/* The peer is not even reading our replies: just close. */
		s->state = SS_DONE;
		return;
	}
	s->state = SS_FLUSHING;
	s->linger = end == SESSION_TOOLONG;
	send_or_keep(s, msg, n);
	if (s->state == SS_FLUSHING && s->outlen == 0)
		close_gracefully(s, s->linger);
}

static void
log_line(const struct session *s, const char *line, size_t len)
{
	char esc[256];

	log_escape(esc, sizeof(esc), line, len);
	log_msg(LOG_DEBUG, "%s: line \"%s\"", s->peer, esc);
}

/* Append the reply for one line at out + *o; true if it was "exit". */
static bool
answer(struct session *s, const char *line, size_t len, const char *ts,
    char *out, size_t *o)
{
	*o += lp_format_reply(out + *o, line, len, ts);
	s->lines++;
	if (s->line_counter)
		atomic_fetch_add_explicit(s->line_counter, 1,
		    memory_order_relaxed);
	if (log_enabled(LOG_DEBUG))
		log_line(s, line, len);
	return lp_is_exit(line, len);
}

/*
 * Answer the lines of the n bytes at p, or the end of input when n is 0:
 * replies are appended at out + *o, and an exit, a line too long or no
 * memory ends the session (SS_FLUSHING).  Returns whether unread input
 * may follow the last reply, so that the close must linger.
 */
static bool
answer_input(struct session *s, const char *p, size_t n, const char *ts,
    char *out, size_t *o)
{
	const char *line;
	size_t used, len;
	enum lp_status st;

	if (n == 0) {
		s->end = SESSION_EOF;
		st = lp_reader_eof(&s->rd, &line, &len);
		if (st == LP_LINE && answer(s, line, len, ts, out, o))
			s->end = SESSION_EXIT;
		else if (st == LP_TOOLONG) {
			*o += lp_format_error(out + *o, LP_ERR_TOOLONG,
			    s->max_line);
			s->end = SESSION_TOOLONG;
		}
		s->state = SS_FLUSHING;
		return false;
	}
	while (n > 0) {
		st = lp_reader_feed(&s->rd, p, n, &used, &line, &len);
		p += used;
		n -= used;
		if (st == LP_LINE) {
			if (answer(s, line, len, ts, out, o)) {
				s->end = SESSION_EXIT;
				s->state = SS_FLUSHING;
				return n > 0;
			}
		} else if (st == LP_TOOLONG) {
			*o += lp_format_error(out + *o, LP_ERR_TOOLONG,
			    s->max_line);
			s->end = SESSION_TOOLONG;
			s->state = SS_FLUSHING;
			return true;
		} else if (st == LP_NOMEM) {
			/* Replies to the lines before it still go out. */
			s->end = SESSION_NOMEM;
			s->state = SS_FLUSHING;
			return true;
		} else
			break;
	}
	return false;
}

/*
 * Read once and answer what came.  With block, recv() may wait (the fd is
 * blocking, session_run_blocking) and an EINTR is returned, not retried,
 * so that the caller sees a stop.  False if nothing was read.
 */
static bool
read_lines(struct session *s, bool block)
{
	char ts[LP_TIMESTAMP_LEN + 1], *out, *early = NULL;
	const char *in;
	size_t o = 0;
	ssize_t n;
	bool linger;
	uint64_t lines_before = s->lines;

	if (!tl_in && !(tl_in = malloc(READ_MAX))) {
		finish(s, SESSION_NOMEM);
		return false;
	}
	if (s->early) {
		/* Primed bytes first; the socket's turn comes with its next
		 * readiness (level-triggered, so nothing is missed). */
		n = (ssize_t)s->nearly;
		in = early = s->early;
		s->early = NULL;
		s->nearly = 0;
	} else {
		do
			n = recv(s->fd, tl_in, READ_MAX,
			    block ? 0 : MSG_DONTWAIT);
		while (n < 0 && errno == EINTR && !block);
		in = tl_in;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			finish(s, SESSION_RESET);
		goto out;
	}
	if (!(out = scratch_out(scratch_need((size_t)n, s->max_line)))) {
		finish(s, SESSION_NOMEM);
		goto out;
	}
	timecache_now(ts);
	linger = answer_input(s, in, (size_t)n, ts, out, &o);
	/*
	 * Only a completed line restarts the idle clock (SPEC 1): bytes that
	 * complete none, or replies the peer reads a byte at a time, must not
	 * keep a session for longer than silence would.
	 */
	if (s->lines != lines_before && s->idle_timeout > 0)
		s->last_ms = clock_ms();
	s->linger = linger;
	if (o > 0)
		send_or_keep(s, out, o);
	if (s->state == SS_FLUSHING && s->outlen == 0)
		close_gracefully(s, linger);
out:
	free(early);
	/* An idle session holds no line buffer: it is made when needed. */
	if (lp_reader_pending(&s->rd) == 0)
		lp_reader_free(&s->rd);
	return n >= 0;
}

static void
drain(struct session *s)
{
	char buf[4096];
	ssize_t n;
	int i;

	/* Bounded per call so one peer cannot keep the loop busy. */
	for (i = 0; i < 16; i++) {
		n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			s->state = SS_DONE;
		return;
	}
}

enum session_state
session_io(struct session *s, short revents)
{
	if (s->state == SS_DONE)
		return s->state;
	if (s->state == SS_LINGERING) {
		if (revents & (POLLIN | POLLHUP | POLLERR))
			drain(s);
		return s->state;
	}
	if (s->outlen > s->outoff) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return s->state;
		if (!flush_pending(s))
			return s->state;
		if (s->state == SS_FLUSHING)
			close_gracefully(s, s->linger);
		return s->state;
	}
	if (s->state == SS_RUNNING &&
	    (revents & (POLLIN | POLLHUP | POLLERR)))
		(void)read_lines(s, false);
	return s->state;
}

uint32_t
session_epoll_events(const struct session *s)
{
	short want = session_events(s);

	return (want & POLLIN ? EPOLLIN : 0) | (want & POLLOUT ? EPOLLOUT : 0);
}

enum session_state
session_io_epoll(struct session *s, uint32_t events)
{
	return session_io(s, (events & EPOLLIN ? POLLIN : 0) |
	    (events & EPOLLOUT ? POLLOUT : 0) |
	    (events & EPOLLHUP ? POLLHUP : 0) |
	    (events & EPOLLERR ? POLLERR : 0));
}

enum session_state
session_tick(struct session *s, uint64_t now)
{
	if (s->state == SS_LINGERING) {
		if (now >= s->linger_until_ms)
			s->state = SS_DONE;
	} else if (s->state != SS_DONE && s->idle_timeout > 0 &&
	    now >= s->last_ms + (uint64_t)s->idle_timeout * 1000) {
		if (s->state == SS_RUNNING)
			final_error(s, LP_ERR_IDLE, SESSION_IDLE);
		else
			finish(s, SESSION_IDLE);	/* stuck flushing */
	}
	return s->state;
}

enum session_state
session_shutdown(struct session *s)
{
	if (s->state == SS_RUNNING)
		final_error(s, LP_ERR_SHUTDOWN, SESSION_SHUTDOWN);
	/*
	 * Replies that wait for a peer that reads nothing, the shutdown error
	 * or the last ones before it: the stop does not wait with them, and
	 * the end reason stays (a lingering close is bounded: it stays).
	 */
	if (s->state == SS_FLUSHING)
		s->state = SS_DONE;
	return s->state;
}

/*
 * The clock for s's deadlines: read only when s has one (an idle timeout,
 * a lingering close), so that a session without costs no clock read a
 * line; 0 otherwise, which session_timeout_ms() and session_tick() then
 * ignore.
 */
static uint64_t
deadline_clock(const struct session *s)
{
	return s->idle_timeout > 0 || s->state == SS_LINGERING ? clock_ms() : 0;
}

/* One poll() round; *stop_fd becomes -1 once the stop is seen. */
static void
poll_once(struct session *s, int *stop_fd)
{
	struct pollfd pfd[2];
	nfds_t n;
	int r;

	pfd[0].fd = s->fd;
	pfd[0].events = session_events(s);
	pfd[0].revents = 0;
	n = 1;
	if (*stop_fd >= 0) {
		pfd[1].fd = *stop_fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		n = 2;
	}
	r = poll(pfd, n, session_timeout_ms(s, deadline_clock(s)));
	if (r < 0 && errno != EINTR) {
		finish(s, SESSION_RESET);
		return;
	}
	if (r > 0 && n == 2 && pfd[1].revents) {
		/* Stop once; the fd stays readable for others. */
		*stop_fd = -1;
		session_shutdown(s);
	}
	if (r > 0 && pfd[0].revents)
		session_io(s, pfd[0].revents);
	session_tick(s, deadline_clock(s));
}

void
session_interrupt(int sig)
{
	int e = errno, fd = tl_block_fd;

	(void)sig;
	/*
	 * A recv() already asleep returns EINTR (no SA_RESTART); one about to
	 * start returns EAGAIN at once instead of sleeping.
	 */
	if (fd >= 0)
		(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	errno = e;
}

/* Make s->fd blocking again (one fcntl: a socket has no other F_SETFL
 * flag set).  False if it failed: the caller falls back to poll(). */
static bool
set_blocking(struct session *s)
{
	return fcntl(s->fd, F_SETFL, 0) == 0;
}

/*
 * Arm the socket's receive timeout with the idle time left (*armed: ms
 * armed, -1 for none) unless what is armed is at most ARM_SLACK_MS too
 * long.  SO_RCVTIMEO counts from the start of each recv(), so after a
 * recv() that completed a line, what is armed is the whole idle timeout
 * again, but for the time between that line and the next recv(): a busy
 * session never re-arms, and an idle one is cut at most ARM_SLACK_MS
 * late.  Armed too short, a recv() times out early, session_tick()
 * finds the session not idle yet and the caller has it re-armed (*armed
 * = -1) with exactly the time left.
 */
#define ARM_SLACK_MS	20

static bool
arm_idle(struct session *s, int *armed, uint64_t now)
{
	int left = session_timeout_ms(s, now);
	struct timeval tv;

	if (left < 0 || (*armed >= 0 && *armed <= left + ARM_SLACK_MS))
		return true;
	if (left == 0)
		left = 1;	/* 0 would arm none; the tick cuts it next */
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return false;
	*armed = left;
	return true;
}

void
session_run_blocking(struct session *s, int stop_fd,
    const atomic_bool *stop)
{
	bool block, relax = false, read_line = false;
	int armed = -1;
	uint64_t lines, now;

	/*
	 * A busy session costs recv() + send() per line: the recv() itself
	 * waits, with SO_RCVTIMEO as the idle clock.  Whatever else a session
	 * waits for (replies the peer does not read, the final reply, the
	 * lingering close) goes through poll(), and primed bytes are answered
	 * first; send() never blocks (MSG_DONTWAIT).
	 */
	tl_block_fd = s->fd;
	block = set_blocking(s);
	while (s->state != SS_DONE) {
		/* Whether the last turn was a recv() that completed a line. */
		bool fresh = read_line;

		read_line = false;
		if (!block || s->state != SS_RUNNING || s->outlen > s->outoff) {
			/*
			 * The stop's signal interrupts poll() as well: with the
			 * flag read before each wait, stop_fd is needed only
			 * for a stop between this read and the poll().  The
			 * shutdown leaves the session lingering or done.
			 */
			if (s->state != SS_LINGERING && atomic_load(stop))
				session_shutdown(s);
			else
				poll_once(s, &stop_fd);
			continue;
		}
		if (s->early) {
			session_io(s, POLLIN);
			continue;
		}
		/*
		 * A timeout or a signal left EAGAIN: make the fd blocking
		 * again before the stop flag is read, so that a stop's
		 * signal after that read is never undone.
		 */
		if (relax && !(block = set_blocking(s)))
			continue;
		relax = false;
		if (atomic_load(stop)) {
			session_shutdown(s);
			continue;
		}
		/*
		 * At most one clock read a line: the reading read_lines()
		 * took when the last turn completed a line (s->last_ms, as old
		 * as one send()) serves this turn's tick and timeout.
		 */
		now = fresh ? s->last_ms : deadline_clock(s);
		if (session_tick(s, now) != SS_RUNNING)
			continue;
		if (!(block = arm_idle(s, &armed, now)))
			continue;
		lines = s->lines;
		if (!read_lines(s, true)) {
			/* Timed out (maybe early) or woken: arm the rest. */
			relax = true;
			armed = -1;
		}
		read_line = s->lines != lines;
	}
	tl_block_fd = -1;
}

const char *
session_end_name(enum session_end e)
{
	switch (e) {
	case SESSION_OPEN:	return "open";
	case SESSION_EXIT:	return "exit";
	case SESSION_EOF:	return "eof";
	case SESSION_TOOLONG:	return "line too long";
	case SESSION_IDLE:	return "idle timeout";
	case SESSION_SHUTDOWN:	return "shutdown";
	case SESSION_RESET:	return "connection error";
	case SESSION_NOMEM:	return "out of memory";
	}
	return "?";
}

bool
session_end_is_error(enum session_end e)
{
	return e == SESSION_TOOLONG || e == SESSION_IDLE ||
	    e == SESSION_RESET || e == SESSION_NOMEM;
}

size_t
dgram_reply_cap(size_t max_line)
{
	size_t r = lp_reply_len(max_line);

	return r > LP_ERROR_MAX ? r : LP_ERROR_MAX;
}

size_t
dgram_reply(const char *data, size_t len, size_t max_line, char *out,
    bool *is_error)
{
	char ts[LP_TIMESTAMP_LEN + 1];

	len = lp_datagram_text(data, len);
	if (len > max_line) {
		*is_error = true;
		return lp_format_error(out, LP_ERR_TOOLONG, max_line);
	}
	*is_error = false;
	timecache_now(ts);
	return lp_format_reply(out, data, len, ts);
}
