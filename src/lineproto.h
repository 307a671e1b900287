/*
 * lineproto.h - the pure core of the echotimed line protocol (SPEC 1).
 *
 * No file descriptors, no globals, no logging: bytes go in, lines and reply
 * bytes come out.  The caller passes the time in, so every rule can be unit
 * tested without sockets or clocks.
 */
#ifndef ECHOTIMED_LINEPROTO_H
#define ECHOTIMED_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* ctime() form without its newline: "Fri Nov 27 02:10:42 2026". */
#define LP_TIMESTAMP_LEN	24

/* Longest error reply lp_format_error() writes, LF included. */
#define LP_ERROR_MAX		96

enum lp_status {
	LP_MORE,	/* all input consumed, no complete line yet */
	LP_LINE,	/* one line is ready */
	LP_TOOLONG,	/* the line exceeds the limit; the session must end */
	LP_NOMEM,	/* no memory for a partial line; the session must end */
};

enum lp_error {
	LP_ERR_TOOLONG,		/* "ERROR line too long (limit N bytes)" */
	LP_ERR_IDLE,		/* "ERROR idle timeout" */
	LP_ERR_BUSY,		/* "ERROR server busy" */
	LP_ERR_SHUTDOWN,	/* "ERROR server shutting down" */
	LP_ERR_PER_SOURCE,	/* "ERROR too many connections from your
				   address" */
};

/*
 * Bounded line assembler.  Its buffer is allocated by the first call that
 * must keep a partial line, so input that always ends at a line end costs
 * no allocation, and never grows: at most max_line + 1 bytes (the +1 holds
 * a CR that may yet turn out to be part of a CR LF terminator).
 */
struct lp_reader {
	char	*buf;
	size_t	 len;
	size_t	 max;
	bool	 toolong;
};

/* Set up for lines of up to max_line bytes; allocates nothing. 0 or -ENOMEM. */
int		lp_reader_init(struct lp_reader *r, size_t max_line);
/* Release the buffer (a later partial line allocates it again); safe on a
 * zeroed or already freed reader. */
void		lp_reader_free(struct lp_reader *r);
/* Forget any partial line (the buffer is kept). */
void		lp_reader_reset(struct lp_reader *r);
/*
 * Consume input from data[0..n).  *used is set to the number of bytes
 * consumed.  LP_LINE: *line, *len is one line without its LF or CR LF; it
 * points into data or into the reader and stays valid until the next call.
 * Call again with data + *used for the rest.  LP_MORE: all n bytes were
 * consumed (possibly buffered).  LP_TOOLONG: the current line is longer than
 * max_line; once returned, every later call returns it again.  LP_NOMEM:
 * the buffer for a partial line could not be allocated (nothing consumed).
 */
enum lp_status	lp_reader_feed(struct lp_reader *r, const char *data, size_t n,
		    size_t *used, const char **line, size_t *len);
/*
 * At end of input: a pending partial line (complete at EOF) is returned as
 * LP_LINE; LP_MORE if nothing is pending.  A lone trailing CR stays text.
 */
enum lp_status	lp_reader_eof(struct lp_reader *r, const char **line,
		    size_t *len);
/* Bytes buffered in a partial line. */
size_t		lp_reader_pending(const struct lp_reader *r);

/* True if text, with surrounding white space trimmed, is "exit". */
bool		lp_is_exit(const char *text, size_t len);
/* Strip one trailing LF or CR LF from a datagram payload; returns new len. */
size_t		lp_datagram_text(const char *data, size_t len);

/* Bytes lp_format_reply() writes for a text of len bytes: len + 26. */
size_t		lp_reply_len(size_t len);
/*
 * Write "TEXT SP TIMESTAMP LF" to out (which holds lp_reply_len(len) bytes);
 * ts is LP_TIMESTAMP_LEN characters.  Returns bytes written.
 */
size_t		lp_format_reply(char *out, const char *text, size_t len,
		    const char *ts);
/* Write an error reply, LF included, into out[LP_ERROR_MAX]. Returns length. */
size_t		lp_format_error(char *out, enum lp_error err, size_t limit);
/*
 * Format t as local time in ctime() form into ts[LP_TIMESTAMP_LEN + 1]
 * (NUL-terminated, no newline).  Thread-safe: localtime_r().  0 or -EOVERFLOW.
 */
int		lp_format_time(time_t t, char *ts);

#endif
