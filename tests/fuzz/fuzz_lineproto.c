/*
 * fuzz_lineproto.c - libFuzzer harness for the line assembler.
 *
 * Input layout: byte 0 picks max_line (0..64), bytes 1..4 seed the chunk
 * sizes, the rest is the byte stream a client sends.  The stream is fed in
 * chunks, each copied into its own exactly sized heap block so ASan sees
 * any read past it, and the result is compared with a naive reference that
 * splits the whole stream at once.  Every line is also formatted as a
 * reply into an exactly sized buffer.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static const char TS[] = "Fri Nov 27 02:10:42 2026";

struct ref {
	const char	*s;
	size_t		 n, pos, max;
	bool		 toolong, done;
};

/* The next line the reference expects: 1 line, 0 end, -1 too long. */
static int
ref_next(struct ref *r, const char **line, size_t *len)
{
	const char	*lf;
	size_t		 seg, t;

	if (r->done)
		return r->toolong ? -1 : 0;
	lf = memchr(r->s + r->pos, '\n', r->n - r->pos);
	if (lf == NULL) {
		r->done = true;
		t = r->n - r->pos;
		if (t == 0)
			return 0;
		if (t > r->max) {
			r->toolong = true;
			return -1;
		}
		*line = r->s + r->pos;
		*len = t;
		r->pos = r->n;
		return 1;
	}
	seg = (size_t)(lf - (r->s + r->pos));
	t = seg;
	if (t > 0 && r->s[r->pos + t - 1] == '\r')
		t--;
	if (t > r->max) {
		r->done = r->toolong = true;
		return -1;
	}
	*line = r->s + r->pos;
	*len = t;
	r->pos += seg + 1;
	return 1;
}

static bool
ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

static bool
ref_is_exit(const char *s, size_t n)
{
	while (n > 0 && ws(s[0])) {
		s++;
		n--;
	}
	while (n > 0 && ws(s[n - 1]))
		n--;
	return n == 4 && s[0] == 'e' && s[1] == 'x' && s[2] == 'i' &&
	    s[3] == 't';
}

static void
check_line(const struct lp_reader *rd, const char *chunk, size_t n,
    const char *line, size_t len, struct ref *ref)
{
	const char	*eline = NULL;
	size_t		 elen = 0;
	char		*out;

	CHECK(len <= rd->max);
	CHECK(len == 0 || memchr(line, '\n', len) == NULL);
	/* Zero copy or the reader's own buffer, nothing else. */
	CHECK((line >= chunk && line + len <= chunk + n) ||
	    (line >= rd->buf && line + len <= rd->buf + rd->max + 1));
	CHECK(ref_next(ref, &eline, &elen) == 1);
	CHECK(elen == len && memcmp(eline, line, len) == 0);
	CHECK(lp_is_exit(line, len) == ref_is_exit(line, len));

	out = malloc(lp_reply_len(len));
	CHECK(out != NULL);
	CHECK(lp_format_reply(out, line, len, TS) == lp_reply_len(len));
	CHECK(memcmp(out, line, len) == 0);
	CHECK(out[len] == ' ');
	CHECK(memcmp(out + len + 1, TS, LP_TIMESTAMP_LEN) == 0);
	CHECK(out[lp_reply_len(len) - 1] == '\n');
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_reader rd;
	struct ref	 ref;
	const char	*stream, *line;
	char		*chunk, err[LP_ERROR_MAX];
	size_t		 n, off = 0, c, p, used, len, elen, dl;
	uint32_t	 rnd;
	enum lp_status	 st = LP_MORE;
	bool		 toolong = false;

	if (size < 5)
		return 0;
	memset(&ref, 0, sizeof(ref));
	ref.max = data[0] % 65;
	rnd = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	stream = (const char *)data + 5;
	n = size - 5;
	ref.s = stream;
	ref.n = n;

	if (lp_reader_init(&rd, ref.max) != 0)
		return 0;
	while (off < n && !toolong) {
		/* xorshift32: mostly small chunks, now and then a big one. */
		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		c = (rnd & 7) == 0 ? 1 + rnd % 256 : 1 + (rnd >> 8) % 9;
		if (c > n - off)
			c = n - off;
		chunk = malloc(c);
		CHECK(chunk != NULL);
		memcpy(chunk, stream + off, c);
		for (p = 0; p < c;) {
			st = lp_reader_feed(&rd, chunk + p, c - p, &used,
			    &line, &len);
			CHECK(used <= c - p);
			if (st == LP_TOOLONG) {
				toolong = true;
				break;
			}
			if (st == LP_MORE) {
				CHECK(used == c - p);
				CHECK(line == NULL && len == 0);
				/*
				 * Too long is reported as soon as it is
				 * certain: only a CR that may start a CR LF
				 * is held beyond max bytes.
				 */
				CHECK(lp_reader_pending(&rd) <= rd.max ||
				    (lp_reader_pending(&rd) == rd.max + 1 &&
				    rd.buf[rd.max] == '\r'));
				break;
			}
			CHECK(st == LP_LINE);
			CHECK(used > 0);
			check_line(&rd, chunk + p, c - p, line, len, &ref);
			p += used;
		}
		free(chunk);
		off += c;
	}

	if (!toolong) {
		st = lp_reader_eof(&rd, &line, &len);
		if (st == LP_LINE) {
			check_line(&rd, rd.buf, 0, line, len, &ref);
			st = lp_reader_eof(&rd, &line, &len);
			CHECK(st == LP_MORE);
		}
		toolong = st == LP_TOOLONG;
		if (!toolong)
			CHECK(st == LP_MORE);
	}
	/* The reference agrees on how the stream ended ... */
	CHECK(ref_next(&ref, &line, &elen) == (toolong ? -1 : 0));
	/* ... and a too long line is final. */
	if (toolong) {
		CHECK(lp_reader_feed(&rd, "ok\n", 3, &used, &line, &len) ==
		    LP_TOOLONG);
		CHECK(lp_reader_feed(&rd, "", 0, &used, &line, &len) ==
		    LP_TOOLONG);
		CHECK(lp_reader_eof(&rd, &line, &len) == LP_TOOLONG);
		len = lp_format_error(err, LP_ERR_TOOLONG, rd.max);
		CHECK(len > 6 && len < LP_ERROR_MAX);
		CHECK(memcmp(err, "ERROR ", 6) == 0 && err[len - 1] == '\n');
	}
	lp_reader_free(&rd);
	lp_reader_free(&rd);

	/* The whole stream as one datagram. */
	dl = lp_datagram_text(stream, n);
	CHECK(dl <= n && n - dl <= 2);
	if (n - dl >= 1)
		CHECK(stream[n - 1] == '\n');
	if (n - dl == 2)
		CHECK(stream[n - 2] == '\r');
	if (dl == n)
		CHECK(n == 0 || stream[n - 1] != '\n');
	return 0;
}
