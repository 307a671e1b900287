/*
 * lineproto.c - the pure core of the echotimed line protocol (SPEC 1).
 *
 * Lines end at LF; a CR right before the LF belongs to the terminator.
 * Everything else, NUL bytes included, is text and is echoed unchanged.
 * The reader never holds more than max + 1 bytes: max bytes of text plus
 * one CR that may still turn out to be the first half of a CR LF.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

int
lp_reader_init(struct lp_reader *r, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	/* max_line + 1 must not wrap; no such buffer could exist anyway. */
	if (max_line == SIZE_MAX)
		return -ENOMEM;
	r->max = max_line;
	return 0;
}

void
lp_reader_free(struct lp_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	r->buf = NULL;
	r->len = 0;	/* a too-long line stays too long: see lp_reader_feed */
}

void
lp_reader_reset(struct lp_reader *r)
{
	/* A reset reader is as good as a fresh one, so the error goes too. */
	r->len = 0;
	r->toolong = false;
}

size_t
lp_reader_pending(const struct lp_reader *r)
{
	return r->len;
}

/*
 * A partial line of k bytes, the last of which is last, is certainly too
 * long when its text (k bytes, or k - 1 if the last one is a CR that an LF
 * may yet follow) already exceeds max.
 */
static bool
partial_too_long(size_t k, char last, size_t max)
{
	if (k <= max)
		return false;
	return k > max + 1 || last != '\r';
}

static enum lp_status
toolong(struct lp_reader *r, size_t n, size_t *used)
{
	/*
	 * The session ends here, so the rest of the input is discarded: a
	 * caller that loops until all input is used cannot spin.
	 */
	r->toolong = true;
	r->len = 0;
	*used = n;
	return LP_TOOLONG;
}

enum lp_status
lp_reader_feed(struct lp_reader *r, const char *data, size_t n,
    size_t *used, const char **line, size_t *len)
{
	const char	*lf;
	size_t		 i, total;

	*line = NULL;
	*len = 0;
	if (r->toolong)
		return toolong(r, n, used);

	lf = n > 0 ? memchr(data, '\n', n) : NULL;
	if (lf == NULL) {
		if (n == 0) {
			*used = 0;
			return LP_MORE;
		}
		if (r->len + n < r->len ||
		    partial_too_long(r->len + n, data[n - 1], r->max))
			return toolong(r, n, used);
		if (r->buf == NULL && (r->buf = malloc(r->max + 1)) == NULL) {
			*used = 0;
			return LP_NOMEM;
		}
		memcpy(r->buf + r->len, data, n);
		r->len += n;
		*used = n;
		return LP_MORE;
	}

	i = (size_t)(lf - data);
	if (r->len == 0) {
		/* The whole line is in the caller's data: no copy. */
		total = i;
		if (total > 0 && data[total - 1] == '\r')
			total--;
		if (total > r->max)
			return toolong(r, n, used);
		*line = data;
		*len = total;
		*used = i + 1;
		return LP_LINE;
	}

	/* Buffered start: the CR of a CR LF may be the last buffered byte. */
	total = r->len + i;
	if (total < r->len)
		return toolong(r, n, used);
	if ((i > 0 ? data[i - 1] : r->buf[r->len - 1]) == '\r')
		total--;
	if (total > r->max)
		return toolong(r, n, used);
	/* total <= max, so r->len + i <= max + 1 fits the buffer. */
	memcpy(r->buf + r->len, data, i);
	*line = r->buf;
	*len = total;
	*used = i + 1;
	/* The bytes stay in buf until the next call may overwrite them. */
	r->len = 0;
	return LP_LINE;
}

enum lp_status
lp_reader_eof(struct lp_reader *r, const char **line, size_t *len)
{
	*line = NULL;
	*len = 0;
	if (r->toolong)
		return LP_TOOLONG;
	if (r->len == 0)
		return LP_MORE;
	/*
	 * Without an LF a trailing CR is text, so max bytes plus a CR held
	 * back for a CR LF that never came is one byte too many.
	 */
	if (r->len > r->max) {
		r->toolong = true;
		r->len = 0;
		return LP_TOOLONG;
	}
	*line = r->buf;
	*len = r->len;
	r->len = 0;
	return LP_LINE;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\v' || c == '\f';
}

bool
lp_is_exit(const char *text, size_t len)
{
	size_t	b = 0, e = len;

	while (b < e && is_space(text[b]))
		b++;
	while (e > b && is_space(text[e - 1]))
		e--;
	return e - b == 4 && memcmp(text + b, "exit", 4) == 0;
}

size_t
lp_datagram_text(const char *data, size_t len)
{
	if (len > 0 && data[len - 1] == '\n') {
		len--;
		if (len > 0 && data[len - 1] == '\r')
			len--;
	}
	return len;
}

size_t
lp_reply_len(size_t len)
{
	return len + 1 + LP_TIMESTAMP_LEN + 1;
}

size_t
lp_format_reply(char *out, const char *text, size_t len, const char *ts)
{
	if (len > 0)
		memcpy(out, text, len);
	out[len] = ' ';
	memcpy(out + len + 1, ts, LP_TIMESTAMP_LEN);
	out[len + 1 + LP_TIMESTAMP_LEN] = '\n';
	return lp_reply_len(len);
}

size_t
lp_format_error(char *out, enum lp_error err, size_t limit)
{
	const char	*msg;
	int		 n;

	switch (err) {
	case LP_ERR_TOOLONG:
		n = snprintf(out, LP_ERROR_MAX,
		    "ERROR line too long (limit %zu bytes)\n", limit);
		return n > 0 ? (size_t)n : 0;
	case LP_ERR_IDLE:
		msg = "ERROR idle timeout\n";
		break;
	case LP_ERR_BUSY:
		msg = "ERROR server busy\n";
		break;
	case LP_ERR_SHUTDOWN:
		msg = "ERROR server shutting down\n";
		break;
	case LP_ERR_PER_SOURCE:
		msg = "ERROR too many connections from your address\n";
		break;
	default:
		msg = "ERROR internal error\n";
		break;
	}
	n = snprintf(out, LP_ERROR_MAX, "%s", msg);
	return n > 0 ? (size_t)n : 0;
}

int
lp_format_time(time_t t, char *ts)
{
	static const char wday[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char mon[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm	tm;
	int		n;

	if (localtime_r(&t, &tm) == NULL)
		return -EOVERFLOW;
	/* Only four-digit years fit the fixed 24-character ctime() form. */
	if (tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900 ||
	    tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -EOVERFLOW;
	n = snprintf(ts, LP_TIMESTAMP_LEN + 1, "%.3s %.3s%3d %.2d:%.2d:%.2d %d",
	    wday[tm.tm_wday], mon[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	if (n != LP_TIMESTAMP_LEN)
		return -EOVERFLOW;
	return 0;
}
