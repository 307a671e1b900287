/*
 * check_lineproto.c - unit tests for the pure line protocol core (SPEC 1).
 *
 * Expected timestamps are literals checked against coreutils, e.g.
 * `TZ=UTC date -d @1795745442` -> Fri Nov 27 02:10:42 UTC 2026.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lineproto.h"
#include "check_main.h"

#define S(lit)	(lit), (sizeof(lit) - 1)

/* Lines collected from a reader, each with its own length. */
struct lines {
	size_t		n;
	char		text[64][128];
	size_t		len[64];
	enum lp_status	last;		/* LP_MORE, or LP_TOOLONG if it ended so */
	size_t		toolong_at;	/* input offset after the TOOLONG feed */
};

/*
 * Feed data in chunks of `chunk` bytes (0 = all at once), then EOF if eof
 * is set; collect every line and stop at the first LP_TOOLONG.
 */
static void
run(size_t max, const char *data, size_t n, size_t chunk, bool eof,
    struct lines *out)
{
	struct lp_reader r;
	const char	*line;
	size_t		 off = 0, c, used, len;
	enum lp_status	 st;

	memset(out, 0, sizeof(*out));
	ck_assert_int_eq(lp_reader_init(&r, max), 0);
	out->last = LP_MORE;
	while (off < n) {
		c = chunk == 0 || chunk > n - off ? n - off : chunk;
		const char *p = data + off;
		size_t left = c;
		while (left > 0) {
			st = lp_reader_feed(&r, p, left, &used, &line, &len);
			ck_assert_uint_le(used, left);
			if (st == LP_TOOLONG) {
				out->last = LP_TOOLONG;
				out->toolong_at = off + c;
				goto done;
			}
			if (st == LP_MORE) {
				ck_assert_uint_eq(used, left);
				break;
			}
			ck_assert_int_eq(st, LP_LINE);
			ck_assert_uint_gt(used, 0);
			ck_assert_uint_le(len, max);
			ck_assert_uint_lt(out->n, 64);
			ck_assert_uint_le(len, sizeof(out->text[0]));
			memcpy(out->text[out->n], line, len);
			out->len[out->n++] = len;
			p += used;
			left -= used;
		}
		off += c;
	}
	if (eof) {
		st = lp_reader_eof(&r, &line, &len);
		if (st == LP_TOOLONG) {
			out->last = LP_TOOLONG;
		} else if (st == LP_LINE) {
			ck_assert_uint_lt(out->n, 64);
			memcpy(out->text[out->n], line, len);
			out->len[out->n++] = len;
			/* A second EOF has nothing left. */
			ck_assert_int_eq(lp_reader_eof(&r, &line, &len),
			    LP_MORE);
		}
	}
done:
	lp_reader_free(&r);
}

static void
assert_line(const struct lines *l, size_t i, const char *text, size_t len)
{
	ck_assert_uint_gt(l->n, i);
	ck_assert_uint_eq(l->len[i], len);
	if (len > 0)
		ck_assert_mem_eq(l->text[i], text, len);
}

static void
set_tz(const char *tz)
{
	ck_assert_int_eq(setenv("TZ", tz, 1), 0);
	tzset();
}

/* ---- line assembly ---------------------------------------------------- */

START_TEST(test_single_line_zero_copy)
{
	struct lp_reader r;
	const char	 data[] = "hello\nrest";
	const char	*line;
	size_t		 used, len;

	ck_assert_int_eq(lp_reader_init(&r, 16), 0);
	ck_assert_int_eq(lp_reader_feed(&r, data, sizeof(data) - 1, &used,
	    &line, &len), LP_LINE);
	ck_assert_ptr_eq(line, data);
	ck_assert_uint_eq(len, 5);
	ck_assert_uint_eq(used, 6);
	ck_assert_int_eq(lp_reader_feed(&r, data + used,
	    sizeof(data) - 1 - used, &used, &line, &len), LP_MORE);
	ck_assert_uint_eq(used, 4);
	ck_assert_uint_eq(lp_reader_pending(&r), 4);
	ck_assert_int_eq(lp_reader_feed(&r, S("\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(line, "rest", 4);
	/* A buffered line points into the reader, not into the input. */
	ck_assert_ptr_eq(line, r.buf);
	ck_assert_uint_eq(lp_reader_pending(&r), 0);
	lp_reader_free(&r);
}
END_TEST

START_TEST(test_crlf)
{
	struct lines l;

	run(16, S("hello\r\n"), 0, false, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, S("hello"));
	run(16, S("\r\n\n"), 0, false, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 0, S(""));
	assert_line(&l, 1, S(""));
}
END_TEST

START_TEST(test_lone_cr_kept)
{
	struct lines l;

	run(16, S("a\rb\n\rx\r\n"), 0, false, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 0, S("a\rb"));
	assert_line(&l, 1, S("\rx"));
	/* Only the one CR right before the LF belongs to the terminator. */
	run(16, S("a\r\r\n"), 0, false, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, S("a\r"));
	run(16, S("a\r\r\n"), 1, false, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, S("a\r"));
}
END_TEST

START_TEST(test_pipelined_three)
{
	struct lp_reader r;
	const char	 data[] = "one\ntwo\r\nthree\n";
	const char	*p = data, *line;
	size_t		 n = sizeof(data) - 1, used, len;

	ck_assert_int_eq(lp_reader_init(&r, 64), 0);
	ck_assert_int_eq(lp_reader_feed(&r, p, n, &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_eq(line, data);
	ck_assert_uint_eq(used, 4);
	p += used;
	n -= used;
	ck_assert_int_eq(lp_reader_feed(&r, p, n, &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_eq(line, data + 4);
	ck_assert_mem_eq(line, "two", 3);
	ck_assert_uint_eq(used, 5);
	p += used;
	n -= used;
	ck_assert_int_eq(lp_reader_feed(&r, p, n, &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 5);
	ck_assert_ptr_eq(line, data + 9);
	ck_assert_mem_eq(line, "three", 5);
	ck_assert_uint_eq(used, n);
	ck_assert_int_eq(lp_reader_feed(&r, p + used, 0, &used, &line, &len),
	    LP_MORE);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(lp_reader_pending(&r), 0);
	lp_reader_free(&r);
}
END_TEST

START_TEST(test_split_byte_by_byte)
{
	static const char data[] = "hello world\r\nsecond\n\r\nx\r\r\n";
	struct lines	 l;

	run(32, S(data), 1, false, &l);
	ck_assert_uint_eq(l.n, 4);
	assert_line(&l, 0, S("hello world"));
	assert_line(&l, 1, S("second"));
	assert_line(&l, 2, S(""));
	assert_line(&l, 3, S("x\r"));
}
END_TEST

START_TEST(test_split_cr_lf_across_feeds)
{
	struct lp_reader r;
	const char	*line;
	size_t		 used, len;

	ck_assert_int_eq(lp_reader_init(&r, 16), 0);
	ck_assert_int_eq(lp_reader_feed(&r, S("abc\r"), &used, &line, &len),
	    LP_MORE);
	ck_assert_uint_eq(lp_reader_pending(&r), 4);
	ck_assert_int_eq(lp_reader_feed(&r, S("\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(line, "abc", 3);
	/* A CR followed by more text is text. */
	ck_assert_int_eq(lp_reader_feed(&r, S("abc\r"), &used, &line, &len),
	    LP_MORE);
	ck_assert_int_eq(lp_reader_feed(&r, S("d\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(line, "abc\rd", 5);
	lp_reader_free(&r);
}
END_TEST

START_TEST(test_split_every_chunk_size)
{
	static const char data[] =
	    "alpha\r\nbeta\n\ngamma delta\r\n\r\n  spaced  \n"
	    "cr\rinside\nlast\r\n";
	struct lines	 l;
	size_t		 chunk;

	for (chunk = 0; chunk <= sizeof(data); chunk++) {
		run(16, S(data), chunk, true, &l);
		ck_assert_int_eq(l.last, LP_MORE);
		ck_assert_uint_eq(l.n, 8);
		assert_line(&l, 0, S("alpha"));
		assert_line(&l, 1, S("beta"));
		assert_line(&l, 2, S(""));
		assert_line(&l, 3, S("gamma delta"));
		assert_line(&l, 4, S(""));
		assert_line(&l, 5, S("  spaced  "));
		assert_line(&l, 6, S("cr\rinside"));
		assert_line(&l, 7, S("last"));
	}
}
END_TEST

START_TEST(test_nul_utf8_whitespace_kept)
{
	static const char data[] = "a\0b\0\n \t h\xc3\xa9llo \xe2\x82\xac\t \n";
	struct lines	 l;
	size_t		 chunk;

	for (chunk = 0; chunk < 5; chunk++) {
		run(64, S(data), chunk, false, &l);
		ck_assert_uint_eq(l.n, 2);
		assert_line(&l, 0, "a\0b\0", 4);
		assert_line(&l, 1, S(" \t h\xc3\xa9llo \xe2\x82\xac\t "));
	}
}
END_TEST

START_TEST(test_exactly_max)
{
	struct lines	l;
	size_t		chunk;

	for (chunk = 0; chunk < 12; chunk++) {
		run(8, S("12345678\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_MORE);
		ck_assert_uint_eq(l.n, 1);
		assert_line(&l, 0, S("12345678"));

		/* max bytes + CR LF: the CR is held in the +1 byte. */
		run(8, S("12345678\r\nnext\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_MORE);
		ck_assert_uint_eq(l.n, 2);
		assert_line(&l, 0, S("12345678"));
		assert_line(&l, 1, S("next"));

		/* A text CR at the boundary: max - 1 bytes, CR, CR LF. */
		run(8, S("1234567\r\r\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_MORE);
		ck_assert_uint_eq(l.n, 1);
		assert_line(&l, 0, S("1234567\r"));
	}
}
END_TEST

START_TEST(test_max_plus_one)
{
	struct lines	l;
	size_t		chunk;

	for (chunk = 0; chunk < 12; chunk++) {
		run(8, S("123456789\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_TOOLONG);
		ck_assert_uint_eq(l.n, 0);

		run(8, S("123456789\r\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_TOOLONG);

		/* max + 1 text bytes where the last is a CR, then LF. */
		run(8, S("12345678\r\r\n"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_TOOLONG);

		/* A CR at the boundary that is not followed by LF is text. */
		run(8, S("12345678\rX"), chunk, false, &l);
		ck_assert_int_eq(l.last, LP_TOOLONG);

		/* Lines before the long one are still delivered. */
		run(8, S("ok\r\nfine\n0123456789abcdef\nlater\n"), chunk,
		    false, &l);
		ck_assert_int_eq(l.last, LP_TOOLONG);
		ck_assert_uint_eq(l.n, 2);
		assert_line(&l, 0, S("ok"));
		assert_line(&l, 1, S("fine"));
	}
}
END_TEST

START_TEST(test_toolong_without_lf)
{
	struct lp_reader r;
	const char	*line;
	size_t		 used, len, i;

	/* max + 1 bytes and no LF: known to be too long at once. */
	ck_assert_int_eq(lp_reader_init(&r, 8), 0);
	ck_assert_int_eq(lp_reader_feed(&r, S("123456789"), &used, &line,
	    &len), LP_TOOLONG);
	ck_assert_uint_eq(used, 9);
	ck_assert_ptr_null(line);
	ck_assert_uint_eq(len, 0);
	/* ... and it stays so. */
	ck_assert_int_eq(lp_reader_feed(&r, S("ok\n"), &used, &line, &len),
	    LP_TOOLONG);
	ck_assert_int_eq(lp_reader_feed(&r, S("\n"), &used, &line, &len),
	    LP_TOOLONG);
	ck_assert_int_eq(lp_reader_feed(&r, "", 0, &used, &line, &len),
	    LP_TOOLONG);
	ck_assert_int_eq(lp_reader_eof(&r, &line, &len), LP_TOOLONG);
	ck_assert_uint_eq(lp_reader_pending(&r), 0);

	/* Byte by byte: buffered up to max, the ninth byte trips it. */
	lp_reader_reset(&r);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(lp_reader_feed(&r, "x", 1, &used, &line,
		    &len), LP_MORE);
		ck_assert_uint_eq(lp_reader_pending(&r), i + 1);
	}
	ck_assert_int_eq(lp_reader_feed(&r, "x", 1, &used, &line, &len),
	    LP_TOOLONG);
	ck_assert_int_eq(lp_reader_feed(&r, "\n", 1, &used, &line, &len),
	    LP_TOOLONG);

	/* A reset reader works again. */
	lp_reader_reset(&r);
	ck_assert_int_eq(lp_reader_feed(&r, S("again\n"), &used, &line,
	    &len), LP_LINE);
	ck_assert_uint_eq(len, 5);
	lp_reader_free(&r);
}
END_TEST

START_TEST(test_toolong_memory_bounded)
{
	struct lp_reader r;
	static char	 big[1 << 16];
	const char	*line;
	size_t		 used, len;

	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(lp_reader_init(&r, 100), 0);
	ck_assert_int_eq(lp_reader_feed(&r, big, 60, &used, &line, &len),
	    LP_MORE);
	ck_assert_int_eq(lp_reader_feed(&r, big, sizeof(big), &used, &line,
	    &len), LP_TOOLONG);
	ck_assert_uint_le(lp_reader_pending(&r), 101);
	lp_reader_free(&r);
}
END_TEST

START_TEST(test_max_zero)
{
	struct lines l;

	run(0, S("\n\r\n"), 0, false, &l);
	ck_assert_int_eq(l.last, LP_MORE);
	ck_assert_uint_eq(l.n, 2);
	run(0, S("\r\n"), 1, false, &l);
	ck_assert_int_eq(l.last, LP_MORE);
	ck_assert_uint_eq(l.n, 1);
	run(0, S("a\n"), 0, false, &l);
	ck_assert_int_eq(l.last, LP_TOOLONG);
}
END_TEST

START_TEST(test_eof)
{
	struct lp_reader r;
	const char	*line;
	size_t		 used, len;
	struct lines	 l;

	/* Nothing pending. */
	ck_assert_int_eq(lp_reader_init(&r, 8), 0);
	ck_assert_int_eq(lp_reader_eof(&r, &line, &len), LP_MORE);
	ck_assert_ptr_null(line);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(lp_reader_feed(&r, S("done\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_int_eq(lp_reader_eof(&r, &line, &len), LP_MORE);

	/* A partial line is complete at EOF. */
	ck_assert_int_eq(lp_reader_feed(&r, S("par"), &used, &line, &len),
	    LP_MORE);
	ck_assert_int_eq(lp_reader_feed(&r, S("tial"), &used, &line, &len),
	    LP_MORE);
	ck_assert_int_eq(lp_reader_eof(&r, &line, &len), LP_LINE);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(line, "partial", 7);
	ck_assert_int_eq(lp_reader_eof(&r, &line, &len), LP_MORE);
	lp_reader_free(&r);

	/* A lone trailing CR at EOF is text. */
	run(8, S("last\r"), 0, true, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, S("last\r"));
	run(8, S("1234567\r"), 1, true, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, S("1234567\r"));
	/* ... so max bytes plus that CR are one too many. */
	run(8, S("12345678\r"), 0, true, &l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(l.last, LP_TOOLONG);
	/* Exactly max at EOF is fine. */
	run(8, S("a\n12345678"), 3, true, &l);
	ck_assert_int_eq(l.last, LP_MORE);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 1, S("12345678"));
	/* NUL bytes in a line completed by EOF. */
	run(8, "x\0y", 3, 1, true, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, "x\0y", 3);
}
END_TEST

START_TEST(test_init_free)
{
	struct lp_reader r;

	memset(&r, 0, sizeof(r));
	lp_reader_free(&r);		/* zeroed */
	ck_assert_int_eq(lp_reader_init(&r, 4096), 0);
	ck_assert_ptr_null(r.buf);	/* allocated on first need */
	ck_assert_uint_eq(r.max, 4096);
	ck_assert_uint_eq(lp_reader_pending(&r), 0);
	lp_reader_free(&r);
	ck_assert_ptr_null(r.buf);
	lp_reader_free(&r);		/* already freed */
	ck_assert_int_eq(lp_reader_init(&r, SIZE_MAX), -ENOMEM);
	lp_reader_free(&r);
}
END_TEST

/* Input that ends at line ends never needs the buffer; a partial line does. */
START_TEST(test_buffer_only_for_partial_lines)
{
	struct lp_reader r;
	const char	 data[] = "one\r\ntwo\n";
	const char	*line, *p = data;
	size_t		 used, len, left = sizeof(data) - 1;

	ck_assert_int_eq(lp_reader_init(&r, 16), 0);
	while (left > 0) {
		ck_assert_int_eq(lp_reader_feed(&r, p, left, &used, &line,
		    &len), LP_LINE);
		p += used;
		left -= used;
	}
	ck_assert_ptr_null(r.buf);
	ck_assert_int_eq(lp_reader_feed(&r, S("par"), &used, &line, &len),
	    LP_MORE);
	ck_assert_ptr_nonnull(r.buf);
	ck_assert_int_eq(lp_reader_feed(&r, S("tial\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_uint_eq(len, 7);
	ck_assert_mem_eq(line, "partial", 7);
	/* Freed while nothing is pending, and not made again for whole lines. */
	lp_reader_free(&r);
	ck_assert_int_eq(lp_reader_feed(&r, S("x\n"), &used, &line, &len),
	    LP_LINE);
	ck_assert_ptr_null(r.buf);
	/* A too-long partial line is refused before any allocation. */
	ck_assert_int_eq(lp_reader_feed(&r, S("0123456789abcdefg"), &used,
	    &line, &len), LP_TOOLONG);
	ck_assert_ptr_null(r.buf);
	lp_reader_free(&r);
}
END_TEST

/* AddressSanitizer (gcc or clang) aborts on an impossible malloc(). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/*
 * A buffer that cannot be allocated ends the line with LP_NOMEM and
 * consumes nothing.  A 4 EiB line limit makes malloc() fail without a
 * "fishy" size for valgrind; under AddressSanitizer, which aborts on an
 * impossible malloc() instead of returning NULL, the test is empty.
 */
START_TEST(test_nomem)
{
#ifndef UNDER_ASAN
	struct lp_reader r;
	const char	*line;
	size_t		 used = 99, len;

	ck_assert_int_eq(lp_reader_init(&r, (size_t)1 << 62), 0);
	ck_assert_int_eq(lp_reader_feed(&r, S("whole\n"), &used, &line,
	    &len), LP_LINE);
	ck_assert_int_eq(lp_reader_feed(&r, S("part"), &used, &line, &len),
	    LP_NOMEM);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(lp_reader_pending(&r), 0);
	lp_reader_free(&r);
#endif
}
END_TEST

/* ---- exit, datagrams ---------------------------------------------------- */

START_TEST(test_exit_detection)
{
	ck_assert(lp_is_exit(S("exit")));
	ck_assert(lp_is_exit(S("  exit \r")));
	ck_assert(lp_is_exit(S("\texit")));
	ck_assert(lp_is_exit(S("\v\f exit\t\n\r ")));
	ck_assert(!lp_is_exit(S("exit2")));
	ck_assert(!lp_is_exit(S("EXIT")));
	ck_assert(!lp_is_exit(S("Exit")));
	ck_assert(!lp_is_exit(S("ex it")));
	ck_assert(!lp_is_exit(S("exi")));
	ck_assert(!lp_is_exit(S("xexit")));
	ck_assert(!lp_is_exit(S("exit exit")));
	ck_assert(!lp_is_exit("exit\0", 5));	/* NUL is not white space */
	ck_assert(!lp_is_exit("\0exit", 5));
	ck_assert(!lp_is_exit(S("")));
	ck_assert(!lp_is_exit(S("   ")));
	ck_assert(!lp_is_exit(S("quit")));
}
END_TEST

START_TEST(test_datagram_text)
{
	ck_assert_uint_eq(lp_datagram_text(S("hi\n")), 2);
	ck_assert_uint_eq(lp_datagram_text(S("hi\r\n")), 2);
	ck_assert_uint_eq(lp_datagram_text(S("hi")), 2);
	ck_assert_uint_eq(lp_datagram_text(S("hi\r")), 3);
	ck_assert_uint_eq(lp_datagram_text(S("hi\n\n")), 3);
	ck_assert_uint_eq(lp_datagram_text(S("hi\r\r\n")), 3);
	ck_assert_uint_eq(lp_datagram_text(S("hi\n\r")), 4);
	ck_assert_uint_eq(lp_datagram_text(S("\n")), 0);
	ck_assert_uint_eq(lp_datagram_text(S("\r\n")), 0);
	ck_assert_uint_eq(lp_datagram_text(S("\r")), 1);
	ck_assert_uint_eq(lp_datagram_text("", 0), 0);
	ck_assert_uint_eq(lp_datagram_text(S(" sp \t\n")), 5);
	ck_assert_uint_eq(lp_datagram_text("a\0\n", 3), 2);
}
END_TEST

/* ---- replies -------------------------------------------------------------- */

START_TEST(test_format_time_utc)
{
	char	ts[LP_TIMESTAMP_LEN + 1];

	set_tz("UTC");
	memset(ts, 'X', sizeof(ts));
	ck_assert_int_eq(lp_format_time(1795745442, ts), 0);
	ck_assert_str_eq(ts, "Fri Nov 27 02:10:42 2026");
	ck_assert_uint_eq(strlen(ts), LP_TIMESTAMP_LEN);
	ck_assert_int_eq(lp_format_time(0, ts), 0);
	ck_assert_str_eq(ts, "Thu Jan  1 00:00:00 1970");
}
END_TEST

START_TEST(test_format_time_day_padding)
{
	char	ts[LP_TIMESTAMP_LEN + 1];

	set_tz("UTC");
	/* TZ=UTC date -d @1793498400 -> Sun Nov  1 02:00:00 UTC 2026 */
	ck_assert_int_eq(lp_format_time(1793498400, ts), 0);
	ck_assert_str_eq(ts, "Sun Nov  1 02:00:00 2026");
	ck_assert_uint_eq(strlen(ts), LP_TIMESTAMP_LEN);
}
END_TEST

START_TEST(test_format_time_matches_ctime_r)
{
	char	ts[LP_TIMESTAMP_LEN + 1], ref[26];
	time_t	t;

	set_tz("UTC");
	for (t = 0; t < 4000000000; t += 86400 * 37 + 3607) {
		ck_assert_int_eq(lp_format_time(t, ts), 0);
		ck_assert_ptr_nonnull(ctime_r(&t, ref));
		ck_assert_uint_eq(strlen(ref), 25);
		ck_assert_mem_eq(ts, ref, LP_TIMESTAMP_LEN);
	}
}
END_TEST

START_TEST(test_format_time_honours_tz)
{
	char	ts[LP_TIMESTAMP_LEN + 1];

	/* A POSIX TZ string needs no tzdata: EST5 is UTC - 5 h. */
	set_tz("EST5");
	ck_assert_int_eq(lp_format_time(1795745442, ts), 0);
	ck_assert_str_eq(ts, "Thu Nov 26 21:10:42 2026");
	set_tz("UTC");
}
END_TEST

START_TEST(test_format_time_year_range)
{
	char	ts[LP_TIMESTAMP_LEN + 1];

	set_tz("UTC");
	ck_assert_int_eq(lp_format_time((time_t)-30610224000LL, ts), 0);
	ck_assert_str_eq(ts, "Wed Jan  1 00:00:00 1000");
	ck_assert_int_eq(lp_format_time((time_t)-30610224001LL, ts),
	    -EOVERFLOW);
	ck_assert_int_eq(lp_format_time((time_t)253402300799LL, ts), 0);
	ck_assert_str_eq(ts, "Fri Dec 31 23:59:59 9999");
	ck_assert_int_eq(lp_format_time((time_t)253402300800LL, ts),
	    -EOVERFLOW);
	ck_assert_int_eq(lp_format_time((time_t)INT64_MAX, ts), -EOVERFLOW);
	ck_assert_int_eq(lp_format_time((time_t)INT64_MIN, ts), -EOVERFLOW);
}
END_TEST

START_TEST(test_format_reply)
{
	char	ts[LP_TIMESTAMP_LEN + 1], out[128];
	size_t	n;

	set_tz("UTC");
	ck_assert_int_eq(lp_format_time(1795745442, ts), 0);

	ck_assert_uint_eq(lp_reply_len(5), 31);
	ck_assert_uint_eq(lp_reply_len(0), 26);
	memset(out, 'X', sizeof(out));
	n = lp_format_reply(out, "hello", 5, ts);
	ck_assert_uint_eq(n, lp_reply_len(5));
	ck_assert_mem_eq(out, "hello Fri Nov 27 02:10:42 2026\n", n);
	ck_assert_int_eq(out[n], 'X');		/* nothing past the reply */

	n = lp_format_reply(out, "", 0, ts);
	ck_assert_uint_eq(n, 26);
	ck_assert_mem_eq(out, " Fri Nov 27 02:10:42 2026\n", n);

	n = lp_format_reply(out, " a\0b\r ", 6, ts);
	ck_assert_uint_eq(n, lp_reply_len(6));
	ck_assert_mem_eq(out, " a\0b\r  Fri Nov 27 02:10:42 2026\n", n);
}
END_TEST

START_TEST(test_format_error)
{
	char	out[LP_ERROR_MAX];
	size_t	n;

#define ERR_IS(err, limit, lit) do {					\
	memset(out, 'X', sizeof(out));					\
	n = lp_format_error(out, (err), (limit));			\
	ck_assert_uint_eq(n, sizeof(lit) - 1);				\
	ck_assert_mem_eq(out, lit, n);					\
} while (0)
	ERR_IS(LP_ERR_TOOLONG, 4096, "ERROR line too long (limit 4096 bytes)\n");
	ERR_IS(LP_ERR_TOOLONG, 1, "ERROR line too long (limit 1 bytes)\n");
	ERR_IS(LP_ERR_IDLE, 0, "ERROR idle timeout\n");
	ERR_IS(LP_ERR_BUSY, 0, "ERROR server busy\n");
	ERR_IS(LP_ERR_SHUTDOWN, 0, "ERROR server shutting down\n");
	ERR_IS(LP_ERR_PER_SOURCE, 0,
	    "ERROR too many connections from your address\n");
	ERR_IS(LP_ERR_TOOLONG, SIZE_MAX,
	    "ERROR line too long (limit 18446744073709551615 bytes)\n");
#undef ERR_IS
	ck_assert_uint_lt(n, LP_ERROR_MAX);
}
END_TEST

static void
utc_setup(void)
{
	set_tz("UTC");
}

static Suite *
lineproto_suite(void)
{
	Suite	*s = suite_create("lineproto");
	TCase	*tc;

	tc = tcase_create("reader");
	tcase_add_test(tc, test_single_line_zero_copy);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_lone_cr_kept);
	tcase_add_test(tc, test_pipelined_three);
	tcase_add_test(tc, test_split_byte_by_byte);
	tcase_add_test(tc, test_split_cr_lf_across_feeds);
	tcase_add_test(tc, test_split_every_chunk_size);
	tcase_add_test(tc, test_nul_utf8_whitespace_kept);
	tcase_add_test(tc, test_exactly_max);
	tcase_add_test(tc, test_max_plus_one);
	tcase_add_test(tc, test_toolong_without_lf);
	tcase_add_test(tc, test_toolong_memory_bounded);
	tcase_add_test(tc, test_max_zero);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_init_free);
	tcase_add_test(tc, test_buffer_only_for_partial_lines);
	tcase_add_test(tc, test_nomem);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_test(tc, test_exit_detection);
	tcase_add_test(tc, test_datagram_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("reply");
	tcase_add_checked_fixture(tc, utc_setup, NULL);
	tcase_add_test(tc, test_format_time_utc);
	tcase_add_test(tc, test_format_time_day_padding);
	tcase_add_test(tc, test_format_time_matches_ctime_r);
	tcase_add_test(tc, test_format_time_honours_tz);
	tcase_add_test(tc, test_format_time_year_range);
	tcase_add_test(tc, test_format_reply);
	tcase_add_test(tc, test_format_error);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(lineproto_suite)
