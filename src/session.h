/*
 * session.h - the line handler: glue between one socket and lineproto.
 *
 * A stream session is a non-blocking state machine.  The same machine is
 * driven by a blocking recv() loop that falls back to poll() (thread and
 * fork models, inetd mode), or by an event loop (connloop.c: the main
 * loop or an event-model loop thread), so the protocol behaves
 * identically whatever runs it.  It never knows the transport or the
 * model.  It logs only the per-line debug message; the caller logs the
 * session's open and close once.
 */
#ifndef ECHOTIMED_SESSION_H
#define ECHOTIMED_SESSION_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lineproto.h"

enum session_end {
	SESSION_OPEN,		/* still running */
	SESSION_EXIT,		/* client said exit */
	SESSION_EOF,		/* client closed */
	SESSION_TOOLONG,	/* line over the limit */
	SESSION_IDLE,		/* idle timeout */
	SESSION_SHUTDOWN,	/* daemon shutting down */
	SESSION_RESET,		/* connection error (reset, broken pipe) */
	SESSION_NOMEM,		/* out of memory */
};

enum session_state {
	SS_RUNNING,	/* reading lines, answering */
	SS_FLUSHING,	/* final reply queued: write it, then close */
	SS_LINGERING,	/* write side shut: draining input before close */
	SS_DONE,	/* close the fd */
};

struct session {
	int		 fd;
	enum session_state state;
	enum session_end end;
	struct lp_reader rd;
	size_t		 max_line;
	int		 idle_timeout;	/* seconds, 0 = never */
	char		*out;		/* pending reply bytes */
	size_t		 outlen;
	size_t		 outoff;
	uint64_t	 lines;
	uint64_t	 last_ms;	/* monotonic ms of the last complete line
					 * (updated only with an idle timeout) */
	uint64_t	 linger_until_ms;
	bool		 linger;	/* drain input after the final reply */
	char		*early;		/* primed bytes, read before the socket */
	size_t		 nearly;
	_Atomic uint64_t *line_counter;	/* shared statistics, may be NULL */
	const char	*peer;		/* for the per-line debug log */
};

/*
 * Prepare a session on a connected socket (every read and write of the
 * machine is non-blocking; session_run_blocking() makes the socket
 * blocking for its recv()).  Buffers are allocated only while a partial
 * line or unsent replies exist, so an idle session costs no buffer
 * memory.
 */
void		session_init(struct session *s, int fd, size_t max_line,
		    int idle_timeout);
/*
 * Bytes that arrived before the session started (after a PROXY header, in
 * the same read), once, right after session_init(): a copy is taken, and
 * the next session_io() with POLLIN takes them as its input instead of
 * reading the socket.  Every driver
 * calls it once before it first waits, so they are answered even if no
 * more bytes, and so no readiness event, ever come.  0 or -ENOMEM.
 */
int		session_prime(struct session *s, const void *data, size_t n);
/* Free buffers; the fd is the caller's to close. */
void		session_free(struct session *s);
/* POLLIN/POLLOUT the session waits for (0 when done). */
short		session_events(const struct session *s);
/* Milliseconds until the session's next deadline, -1 for none. */
int		session_timeout_ms(const struct session *s, uint64_t now_ms);
/* Handle readiness; returns the new state. */
enum session_state session_io(struct session *s, short revents);
/* session_events() as epoll events. */
uint32_t	session_epoll_events(const struct session *s);
/* session_io() for epoll events. */
enum session_state session_io_epoll(struct session *s, uint32_t events);
/* Check deadlines (idle, linger); returns the new state. */
enum session_state session_tick(struct session *s, uint64_t now_ms);
/*
 * The daemon is stopping: send the shutdown error and close.  A session
 * whose replies (the shutdown error included) wait for a peer that does
 * not read them ends now.  A second call changes nothing.
 */
enum session_state session_shutdown(struct session *s);
/*
 * Run a session to its end at two system calls per line (recv, send), for
 * a session that has a thread or a process of its own (the thread and
 * fork models, inetd mode): the socket is made blocking and the idle
 * clock is its SO_RCVTIMEO; what else the session waits for goes through
 * poll().  Stops when *stop is set and the thread is sent a signal whose
 * handler calls session_interrupt(); stop_fd (-1 for none) becomes
 * readable with the stop, for a session waiting in poll().
 */
void		session_run_blocking(struct session *s, int stop_fd,
		    const atomic_bool *stop);
/*
 * Signal handler, or the end of one (without SA_RESTART): a
 * session_run_blocking() on this thread stops waiting in recv() and reads
 * its stop flag.
 */
void		session_interrupt(int sig);
/* Free the calling thread's scratch buffers (at thread exit). */
void		session_thread_cleanup(void);
/*
 * Give the calling thread scratch buffers for any read of sessions with
 * lines of up to max_line bytes (before fork(): the child then allocates
 * nothing).
 */
void		session_scratch_reserve(size_t max_line);
/* Short name of an end reason for logs ("exit", "eof", ...). */
const char	*session_end_name(enum session_end e);
/* True if the end reason counts as an error in the statistics. */
bool		session_end_is_error(enum session_end e);

/*
 * Answer one datagram: reply (or error) written into out, which holds
 * lp_reply_len(max_line) bytes or LP_ERROR_MAX, whichever is larger.
 * Returns the reply length; *is_error tells a line-too-long reply.
 */
size_t		dgram_reply(const char *data, size_t len, size_t max_line,
		    char *out, bool *is_error);
/* Bytes dgram_reply() may write for a max_line. */
size_t		dgram_reply_cap(size_t max_line);

#endif
