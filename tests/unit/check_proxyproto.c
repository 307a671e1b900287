/*
 * check_proxyproto.c - unit tests for the PROXY protocol parser (SPEC 9).
 *
 * The v1 lines are the examples and worst cases of the specification's
 * section 2.1 (/usr/share/doc/haproxy/proxy-protocol.txt.gz); the v2
 * headers are built byte by byte from the layout of its section 2.2.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"
#include "check_main.h"

#define S(lit)	((const uint8_t *)(lit)), (sizeof(lit) - 1)

static const uint8_t SIG[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* Spec 2.1, its example before an HTTP request. */
static const char V1_EXAMPLE[] =
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    "GET / HTTP/1.1\r\n"
    "Host: 192.168.0.11\r\n"
    "\r\n";
#define V1_EXAMPLE_HDR	47

/* Spec 2.1, the longest line of each kind. */
static const char V1_MAX_TCP4[] =
    "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
static const char V1_MAX_TCP6[] =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
static const char V1_UNKNOWN_SHORT[] = "PROXY UNKNOWN\r\n";
static const char V1_UNKNOWN_WORST[] =
    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

/* A v2 header: fixed part, then body (addresses and TLVs) of len bytes. */
struct v2 {
	uint8_t	b[PP_HEADER_MAX + 64];
	size_t	n;
};

static void
v2_start(struct v2 *h, uint8_t ver_cmd, uint8_t fam, uint16_t len)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->b, SIG, 12);
	h->b[12] = ver_cmd;
	h->b[13] = fam;
	h->b[14] = len >> 8;
	h->b[15] = len & 0xFF;
	h->n = 16;
}

static void
v2_put(struct v2 *h, const void *data, size_t n)
{
	ck_assert_uint_le(h->n + n, sizeof(h->b));
	memcpy(h->b + h->n, data, n);
	h->n += n;
}

static void
v2_port(struct v2 *h, uint16_t port)
{
	uint16_t	be = htons(port);

	v2_put(h, &be, 2);
}

static void
v2_addr(struct v2 *h, int af, const char *text)
{
	uint8_t	a[16];

	ck_assert_int_eq(inet_pton(af, text, a), 1);
	v2_put(h, a, af == AF_INET ? 4 : 16);
}

static void
v2_tlv(struct v2 *h, uint8_t type, const void *value, uint16_t n)
{
	uint8_t	t[3] = { type, n >> 8, n & 0xFF };

	v2_put(h, t, 3);
	if (n > 0)
		v2_put(h, value, n);
}

/* Set the length field to what was put after the fixed part. */
static void
v2_seal(struct v2 *h)
{
	h->b[14] = (h->n - 16) >> 8;
	h->b[15] = (h->n - 16) & 0xFF;
}

/* TCP over IPv4, spec 2.2 "\x11": 192.0.2.1:40000 -> 198.51.100.2:9999. */
static void
v2_tcp4(struct v2 *h)
{
	v2_start(h, 0x21, 0x11, 12);
	v2_addr(h, AF_INET, "192.0.2.1");
	v2_addr(h, AF_INET, "198.51.100.2");
	v2_port(h, 40000);
	v2_port(h, 9999);
}

/* TCP over IPv6, "\x21": [2001:db8::1]:40000 -> [2001:db8::2]:9999. */
static void
v2_tcp6(struct v2 *h)
{
	v2_start(h, 0x21, 0x21, 36);
	v2_addr(h, AF_INET6, "2001:db8::1");
	v2_addr(h, AF_INET6, "2001:db8::2");
	v2_port(h, 40000);
	v2_port(h, 9999);
}

static void
v2_unix_field(struct v2 *h, const void *path, size_t n)
{
	uint8_t	f[108] = { 0 };

	memcpy(f, path, n);
	v2_put(h, f, sizeof(f));
}

/* The outcome of feeding one input. */
struct run {
	int		 st;		/* last pp_feed() result */
	size_t		 used;		/* header bytes taken, all feeds */
	size_t		 feeds;		/* pp_feed() calls made */
	struct pp_parser p;
};

/*
 * Feed data in chunks of `chunk` bytes (0 = all at once) until the parser
 * is done or fails.  Checks the contract: never more than offered, all of
 * it while more is needed.
 */
static void
run(unsigned mode, const uint8_t *data, size_t n, size_t chunk,
    struct run *r)
{
	size_t	off = 0, c, used;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(pp_init(&r->p, mode), 0);
	r->st = PP_NEED_MORE;
	while (off < n && r->st == PP_NEED_MORE) {
		c = chunk == 0 || chunk > n - off ? n - off : chunk;
		r->st = pp_feed(&r->p, data + off, c, &used);
		r->feeds++;
		ck_assert_uint_le(used, c);
		if (r->st == PP_NEED_MORE)
			ck_assert_uint_eq(used, c);
		else
			ck_assert_uint_gt(used, 0);
		r->used += used;
		off += c;
		ck_assert_uint_eq(pp_pending(&r->p), r->used);
		ck_assert_uint_le(pp_pending(&r->p), PP_HEADER_MAX);
	}
}

static void
assert_same_result(const struct pp_result *a, const struct pp_result *b)
{
	ck_assert_int_eq(a->command, b->command);
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_int_eq(a->socktype, b->socktype);
	ck_assert_uint_eq(a->header_len, b->header_len);
	ck_assert_uint_eq(a->src_len, b->src_len);
	ck_assert_uint_eq(a->dst_len, b->dst_len);
	ck_assert_mem_eq(&a->src, &b->src, sizeof(a->src));
	ck_assert_mem_eq(&a->dst, &b->dst, sizeof(a->dst));
}

/*
 * The same input fed whole, one byte at a time, in every chunk size, and
 * split in two at every point gives the same status, the same bytes used
 * and the same result.
 */
static void
assert_split_invariant(unsigned mode, const uint8_t *data, size_t n)
{
	struct run	whole, part;
	size_t		c, cut, u1, u2;
	int		st;

	run(mode, data, n, 0, &whole);
	for (c = 1; c <= n; c++) {
		run(mode, data, n, c, &part);
		ck_assert_int_eq(part.st, whole.st);
		ck_assert_uint_eq(part.used, whole.used);
		if (whole.st == PP_DONE)
			assert_same_result(&part.p.res, &whole.p.res);
	}
	for (cut = 0; cut <= n; cut++) {
		ck_assert_int_eq(pp_init(&part.p, mode), 0);
		st = pp_feed(&part.p, data, cut, &u1);
		u2 = 0;
		if (st == PP_NEED_MORE)
			st = pp_feed(&part.p, data + cut, n - cut, &u2);
		ck_assert_int_eq(st, whole.st);
		ck_assert_uint_eq(u1 + u2, whole.used);
		if (whole.st == PP_DONE)
			assert_same_result(&part.p.res, &whole.p.res);
	}
}

static void
assert_inet(const struct sockaddr_storage *ss, socklen_t len, int af,
    const char *addr, uint16_t port)
{
	char	text[INET6_ADDRSTRLEN];

	ck_assert_int_eq(ss->ss_family, af);
	if (af == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		ck_assert_uint_eq(len, sizeof(*sin));
		ck_assert_ptr_nonnull(inet_ntop(af, &sin->sin_addr, text,
		    sizeof(text)));
		ck_assert_uint_eq(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		ck_assert_uint_eq(len, sizeof(*sin6));
		ck_assert_ptr_nonnull(inet_ntop(af, &sin6->sin6_addr, text,
		    sizeof(text)));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
	}
	ck_assert_str_eq(text, addr);
}

/* The header fails with err after exactly at bytes, fed whole or not. */
static void
assert_fails(unsigned mode, const uint8_t *data, size_t n,
    enum pp_error err, size_t at)
{
	struct run	r;

	run(mode, data, n, 0, &r);
	ck_assert_msg(r.st == -(int)err, "%s: got %d (%s), want %s",
	    (const char *)data, r.st,
	    r.st < 0 ? pp_strerror((enum pp_error)-r.st) : "no error",
	    pp_strerror(err));
	ck_assert_uint_eq(r.used, at);
	assert_split_invariant(mode, data, n);
}

/* ---- v1 ------------------------------------------------------------- */

START_TEST(test_v1_spec_example)
{
	struct run	r;
	const uint8_t	*d = (const uint8_t *)V1_EXAMPLE;

	run(PP_V1, d, sizeof(V1_EXAMPLE) - 1, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	/* The header ends at its LF; the request is the caller's. */
	ck_assert_uint_eq(r.used, V1_EXAMPLE_HDR);
	ck_assert_mem_eq(d + r.used, "GET / HTTP/1.1\r\n", 16);
	ck_assert_uint_eq(r.p.res.header_len, V1_EXAMPLE_HDR);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	ck_assert_uint_eq(r.p.res.version, 1);
	ck_assert_int_eq(r.p.res.socktype, SOCK_STREAM);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET, "192.168.0.1",
	    56324);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET, "192.168.0.11",
	    443);
	assert_split_invariant(PP_V1, d, sizeof(V1_EXAMPLE) - 1);
	assert_split_invariant(PP_ANY, d, sizeof(V1_EXAMPLE) - 1);
}
END_TEST

START_TEST(test_v1_spec_longest_lines)
{
	struct run	r;

	ck_assert_uint_eq(sizeof(V1_MAX_TCP4) - 1, 56);
	run(PP_V1, S(V1_MAX_TCP4), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 56);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET,
	    "255.255.255.255", 65535);

	ck_assert_uint_eq(sizeof(V1_MAX_TCP6) - 1, 104);
	run(PP_V1, S(V1_MAX_TCP6), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 104);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET6,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);

	ck_assert_uint_eq(sizeof(V1_UNKNOWN_SHORT) - 1, 15);
	run(PP_V1, S(V1_UNKNOWN_SHORT), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 15);

	/* 107 bytes, CR LF included: the limit itself is accepted. */
	ck_assert_uint_eq(sizeof(V1_UNKNOWN_WORST) - 1, PP_V1_MAX);
	run(PP_V1, S(V1_UNKNOWN_WORST), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, PP_V1_MAX);
	assert_split_invariant(PP_ANY, S(V1_UNKNOWN_WORST));
}
END_TEST

START_TEST(test_v1_tcp6)
{
	struct run	r;
	static const char line[] = "PROXY TCP6 2001:db8::1 ::1 1234 0\r\nx\n";

	run(PP_ANY, S(line), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, sizeof(line) - 1 - 2);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET6, "2001:db8::1",
	    1234);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET6, "::1", 0);
	assert_split_invariant(PP_ANY, S(line));
}
END_TEST

START_TEST(test_v1_unknown)
{
	struct run	r;
	/* Spec 2.1: for UNKNOWN the receiver ignores the rest of the line. */
	static const char any[] = "PROXY UNKNOWN what\0ever \x01\xff\r\nhi\n";

	run(PP_ANY, S(V1_UNKNOWN_SHORT), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_int_eq(r.p.res.command, PP_CMD_UNKNOWN);
	ck_assert_uint_eq(r.p.res.version, 1);
	ck_assert_int_eq(r.p.res.src.ss_family, AF_UNSPEC);
	ck_assert_int_eq(r.p.res.dst.ss_family, AF_UNSPEC);
	ck_assert_uint_eq(r.p.res.src_len, 0);

	run(PP_ANY, S(any), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_int_eq(r.p.res.command, PP_CMD_UNKNOWN);
	ck_assert_uint_eq(r.used, sizeof(any) - 1 - 3);
	assert_split_invariant(PP_ANY, S(any));

	/* UNKNOWN must be the whole word. */
	assert_fails(PP_V1, S("PROXY UNKNOWNX\r\n"), PP_ERR_V1_PROTO, 16);
}
END_TEST

START_TEST(test_v1_trailing_data)
{
#define HDR	"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"
	static const char in[] = HDR "hello\nexit\n";
	const size_t	hdr = sizeof(HDR) - 1;
#undef HDR
	struct run	r;
	size_t		c;

	/* Whatever the chunking, the header's bytes and no more are used. */
	for (c = 0; c <= sizeof(in) - 1; c++) {
		run(PP_ANY, S(in), c, &r);
		ck_assert_int_eq(r.st, PP_DONE);
		ck_assert_uint_eq(r.used, hdr);
		ck_assert_uint_eq(r.p.res.header_len, hdr);
	}
}
END_TEST

START_TEST(test_v1_no_crlf_within_107)
{
	uint8_t		line[200];
	struct run	r;
	size_t		used;

	/* 106 bytes without CR LF: still possible. */
	memset(line, 'A', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	run(PP_V1, line, PP_V1_MAX - 1, 0, &r);
	ck_assert_int_eq(r.st, PP_NEED_MORE);
	/* The 107th is not the LF of a CR LF: the line is refused there. */
	ck_assert_int_eq(pp_feed(&r.p, line, 1, &used),
	    -PP_ERR_V1_TOOLONG);
	ck_assert_uint_eq(pp_pending(&r.p), PP_V1_MAX);
	assert_fails(PP_V1, line, sizeof(line), PP_ERR_V1_TOOLONG, PP_V1_MAX);

	/* A CR as the 107th byte is too late for its LF. */
	line[PP_V1_MAX - 1] = '\r';
	line[PP_V1_MAX] = '\n';
	assert_fails(PP_ANY, line, PP_V1_MAX + 1, PP_ERR_V1_TOOLONG,
	    PP_V1_MAX);
}
END_TEST

START_TEST(test_v1_line_endings)
{
	/* Spec 2.1: a single CR or LF must not end the line. */
	assert_fails(PP_V1, S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
	    PP_ERR_V1_LINE, 31);
	assert_fails(PP_V1, S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
	    PP_ERR_V1_LINE, 32);
	assert_fails(PP_V1, S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"),
	    PP_ERR_V1_LINE, 32);
	assert_fails(PP_V1, S("PROXY \n"), PP_ERR_V1_LINE, 7);
}
END_TEST

START_TEST(test_v1_grammar)
{
	static const struct {
		const char	*line;
		enum pp_error	 err;
	} bad[] = {
		{ "PROXY \r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4\r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 \r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PP_ERR_V1_LINE },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3 4 5\r\n", PP_ERR_V1_LINE },
		{ "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_LINE },
		{ "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_PROTO },
		{ "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_PROTO },
		{ "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_PROTO },
		{ "PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_PROTO },
		{ "PROXY UNKNOW\r\n", PP_ERR_V1_PROTO },
		/* The family dictates the address format. */
		{ "PROXY TCP4 ::1 ::1 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP4 1.2.3.4 ::1 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		/* No leading zeros (not octal), four parts, 0..255. */
		{ "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP4 host 5.6.7.8 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
		    PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 00001::1 ::1 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 fe80::1%lo ::1 1 2\r\n", PP_ERR_V1_ADDRESS },
		{ "PROXY TCP6 "
		    "0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n",
		    PP_ERR_V1_ADDRESS },
		/* Ports: decimal 0..65535, no leading zero, no sign. */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n", PP_ERR_V1_PORT },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", PP_ERR_V1_PORT },
	};
	size_t	i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i].line);
		assert_fails(PP_V1, (const uint8_t *)bad[i].line, n,
		    bad[i].err, n);
	}
}
END_TEST

START_TEST(test_v1_nul_in_address)
{
	static const char line[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";

	assert_fails(PP_V1, S(line), PP_ERR_V1_ADDRESS, sizeof(line) - 1);
}
END_TEST

START_TEST(test_v1_edge_values)
{
	struct run	r;

	run(PP_V1, S("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET, "0.0.0.0", 0);
	/* Upper case hex and an embedded IPv4 are IPv6 text forms too. */
	run(PP_V1, S("PROXY TCP6 FFFF::1 ::ffff:1.2.3.4 1 2\r\n"), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET6, "ffff::1", 1);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET6,
	    "::ffff:1.2.3.4", 2);
}
END_TEST

/* ---- discrimination and modes ---------------------------------------- */

START_TEST(test_not_proxy_rejected_early)
{
	/* The first byte that neither signature allows ends it. */
	assert_fails(PP_ANY, S("GET / HTTP/1.1\r\n"), PP_ERR_NOT_PROXY, 1);
	assert_fails(PP_ANY, S("hello\n"), PP_ERR_NOT_PROXY, 1);
	assert_fails(PP_ANY, S("PROXX TCP4\r\n"), PP_ERR_NOT_PROXY, 5);
	assert_fails(PP_ANY, S("proxy TCP4\r\n"), PP_ERR_NOT_PROXY, 1);
	assert_fails(PP_ANY, S("PROXY\r\n"), PP_ERR_NOT_PROXY, 6);
	assert_fails(PP_ANY, S("\r\n\r\n\0\r\nQUIX\n"), PP_ERR_NOT_PROXY,
	    11);
	assert_fails(PP_ANY, S("\r\nhello\r\n"), PP_ERR_NOT_PROXY, 3);
	assert_fails(PP_V1, S("GET /\r\n"), PP_ERR_NOT_PROXY, 1);
	assert_fails(PP_V2, S("GET /\r\n"), PP_ERR_NOT_PROXY, 1);
	/* A TLS ClientHello (record type 0x16) is refused at once too. */
	assert_fails(PP_ANY, S("\x16\x03\x01\x02\x00\x01"), PP_ERR_NOT_PROXY,
	    1);
}
END_TEST

START_TEST(test_any_discriminates)
{
	struct v2	h;
	struct run	r;

	run(PP_ANY, S(V1_MAX_TCP4), 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.p.res.version, 1);

	v2_tcp4(&h);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.p.res.version, 2);

	/* One byte decides: after it only one signature is left. */
	ck_assert_int_eq(pp_init(&r.p, PP_ANY), 0);
	ck_assert_int_eq(pp_feed(&r.p, S("P"), &r.used), PP_NEED_MORE);
	ck_assert_uint_eq(r.p.cand, PP_V1);
	ck_assert_int_eq(pp_init(&r.p, PP_ANY), 0);
	ck_assert_int_eq(pp_feed(&r.p, SIG, 1, &r.used), PP_NEED_MORE);
	ck_assert_uint_eq(r.p.cand, PP_V2);
}
END_TEST

START_TEST(test_v1_only_rejects_v2)
{
	struct v2	h;

	v2_tcp4(&h);
	/* Known as v2 once its 12-byte signature is complete. */
	assert_fails(PP_V1, h.b, h.n, PP_ERR_VERSION, 12);
}
END_TEST

START_TEST(test_v2_only_rejects_v1)
{
	assert_fails(PP_V2, S(V1_MAX_TCP4), PP_ERR_VERSION, 6);
	assert_fails(PP_V2, S(V1_UNKNOWN_SHORT), PP_ERR_VERSION, 6);
}
END_TEST

START_TEST(test_init_masks)
{
	struct pp_parser p;

	ck_assert_int_eq(pp_init(&p, 0), -EINVAL);
	ck_assert_int_eq(pp_init(&p, 4), -EINVAL);
	ck_assert_int_eq(pp_init(&p, PP_ANY | 8), -EINVAL);
	ck_assert_int_eq(pp_init(&p, PP_V1), 0);
	ck_assert_int_eq(pp_init(&p, PP_V2), 0);
	ck_assert_int_eq(pp_init(&p, PP_ANY), 0);
}
END_TEST

/* ---- v2 ------------------------------------------------------------- */

START_TEST(test_v2_tcp4)
{
	struct v2	h;
	struct run	r;

	v2_tcp4(&h);
	ck_assert_uint_eq(h.n, 28);
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 28);
	ck_assert_uint_eq(r.p.res.header_len, 28);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	ck_assert_uint_eq(r.p.res.version, 2);
	ck_assert_int_eq(r.p.res.socktype, SOCK_STREAM);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET, "192.0.2.1",
	    40000);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET, "198.51.100.2",
	    9999);
	assert_split_invariant(PP_V2, h.b, h.n);
	assert_split_invariant(PP_ANY, h.b, h.n);
}
END_TEST

START_TEST(test_v2_tcp6)
{
	struct v2	h;
	struct run	r;

	v2_tcp6(&h);
	ck_assert_uint_eq(h.n, 52);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 52);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET6, "2001:db8::1",
	    40000);
	assert_inet(&r.p.res.dst, r.p.res.dst_len, AF_INET6, "2001:db8::2",
	    9999);
	assert_split_invariant(PP_ANY, h.b, h.n);
}
END_TEST

START_TEST(test_v2_udp)
{
	struct v2	h;
	struct run	r;

	/* "\x12": the client's address is as real for UDP as for TCP. */
	v2_tcp4(&h);
	h.b[13] = 0x12;
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	ck_assert_int_eq(r.p.res.socktype, SOCK_DGRAM);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET, "192.0.2.1",
	    40000);
}
END_TEST

START_TEST(test_v2_unix)
{
	static const char	spath[] = "/run/haproxy/client.sock";
	static const char	dpath[] = "/run/echotimed/echo.sock";
	static const char	abstract[] = "\0proxy-abstract";
	const struct sockaddr_un *sun;
	struct v2		h;
	struct run		r;
	uint8_t			full[108];

	v2_start(&h, 0x21, 0x31, 216);
	v2_unix_field(&h, spath, sizeof(spath) - 1);
	v2_unix_field(&h, dpath, sizeof(dpath) - 1);
	ck_assert_uint_eq(h.n, 232);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 232);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	sun = (const void *)&r.p.res.src;
	ck_assert_int_eq(sun->sun_family, AF_UNIX);
	ck_assert_str_eq(sun->sun_path, spath);
	ck_assert_uint_eq(r.p.res.src_len,
	    offsetof(struct sockaddr_un, sun_path) + sizeof(spath));
	sun = (const void *)&r.p.res.dst;
	ck_assert_str_eq(sun->sun_path, dpath);
	assert_split_invariant(PP_ANY, h.b, h.n);

	/* An unnamed client (HAProxy's usual) and an abstract name. */
	v2_start(&h, 0x21, 0x31, 216);
	v2_unix_field(&h, "", 0);
	v2_unix_field(&h, abstract, sizeof(abstract) - 1);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.p.res.src_len, sizeof(sa_family_t));
	ck_assert_uint_eq(r.p.res.dst_len,
	    offsetof(struct sockaddr_un, sun_path) + sizeof(abstract) - 1);
	sun = (const void *)&r.p.res.dst;
	ck_assert_mem_eq(sun->sun_path, abstract, sizeof(abstract) - 1);

	/* A path filling all 108 bytes has no NUL, and is kept whole. */
	memset(full, 'p', sizeof(full));
	v2_start(&h, 0x21, 0x32, 216);
	v2_unix_field(&h, full, sizeof(full));
	v2_unix_field(&h, full, sizeof(full));
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_int_eq(r.p.res.socktype, SOCK_DGRAM);
	ck_assert_uint_eq(r.p.res.src_len,
	    offsetof(struct sockaddr_un, sun_path) + 108);
}
END_TEST

START_TEST(test_v2_local)
{
	struct v2	h;
	struct run	r;

	/* HAProxy's health check: LOCAL, AF_UNSPEC, no addresses. */
	v2_start(&h, 0x20, 0x00, 0);
	v2_put(&h, "hello\n", 6);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 16);
	ck_assert_int_eq(r.p.res.command, PP_CMD_LOCAL);
	ck_assert_uint_eq(r.p.res.version, 2);
	ck_assert_int_eq(r.p.res.src.ss_family, AF_UNSPEC);
	ck_assert_uint_eq(r.p.res.src_len, 0);
	assert_split_invariant(PP_ANY, h.b, h.n);

	/*
	 * Spec 2.2: the length must be honoured for LOCAL too, and the
	 * protocol block, family included, is discarded unread.
	 */
	v2_tcp4(&h);
	h.b[12] = 0x20;
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 28);
	ck_assert_int_eq(r.p.res.command, PP_CMD_LOCAL);
	ck_assert_int_eq(r.p.res.src.ss_family, AF_UNSPEC);
	h.b[13] = 0xFF;
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_int_eq(r.p.res.command, PP_CMD_LOCAL);
	/* ... even a family too long for its length: nothing is read. */
	v2_start(&h, 0x20, 0x21, 4);
	v2_put(&h, "\1\2\3\4", 4);
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, 20);
}
END_TEST

START_TEST(test_v2_unspec_is_unknown)
{
	static const uint8_t	fams[] = { 0x00, 0x01, 0x02, 0x10, 0x20,
					   0x30 };
	struct v2		h;
	struct run		r;
	size_t			i;

	/*
	 * PROXY with an unspecified family or transport: spec 2.2 lets the
	 * receiver accept it and ignore the addresses, as v1 UNKNOWN.
	 */
	for (i = 0; i < sizeof(fams); i++) {
		v2_start(&h, 0x21, fams[i], 0);
		v2_put(&h, "\1\2\3\4\5\6\7\x8", 8);
		v2_seal(&h);
		run(PP_V2, h.b, h.n, 0, &r);
		ck_assert_int_eq(r.st, PP_DONE);
		ck_assert_uint_eq(r.used, 24);
		ck_assert_int_eq(r.p.res.command, PP_CMD_UNKNOWN);
		ck_assert_int_eq(r.p.res.src.ss_family, AF_UNSPEC);
	}
}
END_TEST

START_TEST(test_v2_tlvs_skipped)
{
	static const char	after[] = "first line\n";
	uint8_t			uid[128], ssl[5 + 3 + 7];
	struct v2		h;
	struct run		r;
	size_t			hdr;

	memset(uid, 0xAB, sizeof(uid));
	/* PP2_TYPE_SSL: client, verify, then a PP2_SUBTYPE_SSL_VERSION. */
	memcpy(ssl, "\x01\0\0\0\0\x21\0\x07TLSv1.3", sizeof(ssl));
	v2_tcp4(&h);
	v2_tlv(&h, 0x04, NULL, 0);		/* NOOP, empty */
	v2_tlv(&h, 0x01, "h2", 2);		/* ALPN */
	v2_tlv(&h, 0x02, "example.com", 11);	/* AUTHORITY */
	v2_tlv(&h, 0x05, uid, sizeof(uid));	/* UNIQUE_ID */
	v2_tlv(&h, 0x20, ssl, sizeof(ssl));	/* SSL */
	v2_tlv(&h, 0xEA, "\x01vpce-0123", 10);	/* a cloud's custom type */
	v2_seal(&h);
	hdr = h.n;
	v2_put(&h, after, sizeof(after) - 1);

	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, hdr);
	ck_assert_uint_eq(r.p.res.header_len, hdr);
	ck_assert_mem_eq(h.b + r.used, after, sizeof(after) - 1);
	assert_inet(&r.p.res.src, r.p.res.src_len, AF_INET, "192.0.2.1",
	    40000);
	assert_split_invariant(PP_ANY, h.b, h.n);
}
END_TEST

START_TEST(test_v2_bad_tlv)
{
	struct v2	h;

	/* A TLV claiming more than the header holds: refused at its length. */
	v2_tcp4(&h);
	v2_tlv(&h, 0x01, "h2", 2);
	v2_seal(&h);
	h.b[h.n - 3] = 3;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_TLV, h.n - 2);

	/* Two bytes left after the addresses: a TLV header is 3. */
	v2_tcp4(&h);
	v2_put(&h, "\x04\0", 2);
	v2_seal(&h);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_TLV, h.n);

	/* A TLV of 0xFFFF bytes in a short header. */
	v2_tcp6(&h);
	v2_put(&h, "\x04\xff\xff", 3);
	v2_seal(&h);
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_TLV, h.n);
}
END_TEST

START_TEST(test_v2_oversize)
{
	struct v2	h;
	struct run	r;
	uint8_t		pad[PP_V2_MAX_LEN];

	/* Refused at the length field, before any of the body arrives. */
	v2_start(&h, 0x21, 0x11, PP_V2_MAX_LEN + 1);
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_TOOLONG, 16);
	v2_start(&h, 0x21, 0x11, 0xFFFF);
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_TOOLONG, 16);
	v2_start(&h, 0x20, 0x00, 0xFFFF);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_TOOLONG, 16);

	/* Exactly at the bound, the padding one NOOP TLV: accepted. */
	memset(pad, 0, sizeof(pad));
	v2_tcp4(&h);
	v2_tlv(&h, 0x04, pad, PP_V2_MAX_LEN - 12 - 3);
	v2_seal(&h);
	ck_assert_uint_eq(h.n, PP_HEADER_MAX);
	run(PP_ANY, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.used, PP_HEADER_MAX);
	run(PP_ANY, h.b, h.n, 1, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	ck_assert_uint_eq(r.feeds, PP_HEADER_MAX);
	/* Stored: the fixed part and addresses only, never the TLVs. */
	ck_assert_uint_eq(sizeof(r.p.buf), PP_STORE_MAX);
	ck_assert_uint_lt(sizeof(struct pp_parser), PP_HEADER_MAX);
}
END_TEST

START_TEST(test_v2_short_address_block)
{
	struct v2	h;

	v2_start(&h, 0x21, 0x11, 11);
	v2_put(&h, "\0\0\0\0\0\0\0\0\0\0\0", 11);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_SHORT, 16);
	v2_start(&h, 0x21, 0x21, 35);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_SHORT, 16);
	v2_start(&h, 0x21, 0x31, 215);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_SHORT, 16);
	v2_start(&h, 0x21, 0x12, 0);
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_SHORT, 16);
}
END_TEST

START_TEST(test_v2_bad_version_command)
{
	struct v2	h;

	/* Judged at the 13th byte. */
	v2_tcp4(&h);
	h.b[12] = 0x11;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_VERSION, 13);
	h.b[12] = 0x31;
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_VERSION, 13);
	h.b[12] = 0x22;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_COMMAND, 13);
	h.b[12] = 0x2F;
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_COMMAND, 13);
}
END_TEST

START_TEST(test_v2_bad_family_transport)
{
	struct v2	h;

	/* Judged at the 14th byte. */
	v2_tcp4(&h);
	h.b[13] = 0x41;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_FAMILY, 14);
	h.b[13] = 0xF1;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_FAMILY, 14);
	h.b[13] = 0x13;
	assert_fails(PP_V2, h.b, h.n, PP_ERR_V2_TRANSPORT, 14);
	h.b[13] = 0x0F;
	assert_fails(PP_ANY, h.b, h.n, PP_ERR_V2_TRANSPORT, 14);
}
END_TEST

/* ---- end of input, stickiness, texts ---------------------------------- */

START_TEST(test_eof)
{
	struct pp_parser p;
	struct v2	 h;
	size_t		 used;

	ck_assert_int_eq(pp_init(&p, PP_ANY), 0);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_EMPTY);
	/* An empty read changes nothing. */
	ck_assert_int_eq(pp_feed(&p, h.b, 0, &used), PP_NEED_MORE);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_EMPTY);

	v2_tcp4(&h);
	ck_assert_int_eq(pp_feed(&p, h.b, h.n - 1, &used), PP_NEED_MORE);
	ck_assert_uint_eq(pp_pending(&p), h.n - 1);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_TRUNCATED);
	ck_assert_int_eq(pp_feed(&p, h.b + h.n - 1, 1, &used), PP_DONE);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_NONE);

	ck_assert_int_eq(pp_init(&p, PP_V1), 0);
	ck_assert_int_eq(pp_feed(&p, S("PROXY TCP4 1.2."), &used),
	    PP_NEED_MORE);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_TRUNCATED);
	ck_assert_int_eq(pp_feed(&p, S("x"), &used), PP_NEED_MORE);
	ck_assert_int_eq(pp_feed(&p, S("\n"), &used), -PP_ERR_V1_LINE);
	ck_assert_int_eq(pp_eof(&p), PP_ERR_V1_LINE);
}
END_TEST

START_TEST(test_sticky)
{
	struct pp_parser p;
	size_t		 used = 99;

	ck_assert_int_eq(pp_init(&p, PP_ANY), 0);
	ck_assert_int_eq(pp_feed(&p, S("PROXY UNKNOWN\r\nmore"), &used),
	    PP_DONE);
	ck_assert_uint_eq(used, 15);
	/* Done stays done and takes nothing of what follows. */
	ck_assert_int_eq(pp_feed(&p, S("more"), &used), PP_DONE);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(pp_pending(&p), 15);

	ck_assert_int_eq(pp_init(&p, PP_ANY), 0);
	ck_assert_int_eq(pp_feed(&p, S("X"), &used), -PP_ERR_NOT_PROXY);
	ck_assert_uint_eq(used, 1);
	/* A refused header stays refused, whatever arrives later. */
	ck_assert_int_eq(pp_feed(&p, S("PROXY UNKNOWN\r\n"), &used),
	    -PP_ERR_NOT_PROXY);
	ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_strerror)
{
	int	i, j;

	ck_assert_str_eq(pp_strerror(PP_ERR_NOT_PROXY), "not a PROXY header");
	ck_assert_str_eq(pp_strerror(PP_ERR_V1_LINE), "bad v1 line");
	ck_assert_ptr_nonnull(strstr(pp_strerror(PP_ERR_TRUNCATED),
	    "truncated"));
	ck_assert_ptr_nonnull(strstr(pp_strerror(PP_ERR_V1_TOOLONG),
	    "107"));
	ck_assert_ptr_nonnull(strstr(pp_strerror(PP_ERR_V2_TOOLONG),
	    "2048"));
	/* Every code has its own text, so a log line names the cause. */
	for (i = 0; i < PP_ERR_COUNT; i++) {
		ck_assert_ptr_nonnull(pp_strerror((enum pp_error)i));
		ck_assert_uint_gt(strlen(pp_strerror((enum pp_error)i)), 5);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(pp_strerror((enum pp_error)i),
			    pp_strerror((enum pp_error)j));
	}
	ck_assert_ptr_nonnull(pp_strerror(PP_ERR_COUNT));
	ck_assert_ptr_nonnull(pp_strerror((enum pp_error)-1));
}
END_TEST

/* ---- the session's peer ---------------------------------------------- */

START_TEST(test_peer_ipv4_client_over_ipv6_proxy)
{
	struct sockaddr_in6	conn;
	struct sockaddr_storage	out;
	struct v2		h;
	struct run		r;
	socklen_t		len;

	/* The proxy reaches us over IPv6; its client came over IPv4. */
	memset(&conn, 0, sizeof(conn));
	conn.sin6_family = AF_INET6;
	conn.sin6_port = htons(55555);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::99",
	    &conn.sin6_addr), 1);
	v2_tcp4(&h);
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.st, PP_DONE);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "192.0.2.1", 40000);

	/* v1 likewise. */
	run(PP_V1, S(V1_EXAMPLE), 0, &r);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "192.168.0.1", 56324);

	/* An IPv6 client is an IPv6 peer. */
	v2_tcp6(&h);
	run(PP_V2, h.b, h.n, 0, &r);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET6, "2001:db8::1", 40000);

	/* A v4-mapped client (the proxy's ends differ in family) is IPv4. */
	run(PP_V1, S("PROXY TCP6 ::ffff:192.0.2.7 2001:db8::2 4000 7\r\n"), 0,
	    &r);
	ck_assert_int_eq(r.st, PP_DONE);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "192.0.2.7", 4000);
}
END_TEST

START_TEST(test_peer_keeps_proxy_address)
{
	struct sockaddr_in	conn;
	struct sockaddr_storage	out;
	struct v2		h;
	struct run		r;
	socklen_t		len;

	memset(&conn, 0, sizeof(conn));
	conn.sin_family = AF_INET;
	conn.sin_port = htons(1234);
	conn.sin_addr.s_addr = htonl(0x7F000001);

	/* v2 LOCAL: a health check from the proxy itself. */
	v2_start(&h, 0x20, 0x00, 0);
	run(PP_V2, h.b, h.n, 0, &r);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "127.0.0.1", 1234);

	/* v1 UNKNOWN. */
	run(PP_V1, S(V1_UNKNOWN_WORST), 0, &r);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "127.0.0.1", 1234);

	/* An AF_UNIX client of the proxy lives on the proxy's host. */
	v2_start(&h, 0x21, 0x31, 216);
	v2_unix_field(&h, "/a", 2);
	v2_unix_field(&h, "/b", 2);
	run(PP_V2, h.b, h.n, 0, &r);
	ck_assert_int_eq(r.p.res.command, PP_CMD_PROXY);
	len = pp_peer(&r.p.res, (struct sockaddr *)&conn, sizeof(conn),
	    &out);
	assert_inet(&out, len, AF_INET, "127.0.0.1", 1234);
}
END_TEST

static Suite *
proxyproto_suite(void)
{
	Suite	*s = suite_create("proxyproto");
	TCase	*tc;

	tc = tcase_create("v1");
	tcase_add_test(tc, test_v1_spec_example);
	tcase_add_test(tc, test_v1_spec_longest_lines);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_trailing_data);
	tcase_add_test(tc, test_v1_no_crlf_within_107);
	tcase_add_test(tc, test_v1_line_endings);
	tcase_add_test(tc, test_v1_grammar);
	tcase_add_test(tc, test_v1_nul_in_address);
	tcase_add_test(tc, test_v1_edge_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("modes");
	tcase_add_test(tc, test_not_proxy_rejected_early);
	tcase_add_test(tc, test_any_discriminates);
	tcase_add_test(tc, test_v1_only_rejects_v2);
	tcase_add_test(tc, test_v2_only_rejects_v1);
	tcase_add_test(tc, test_init_masks);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, test_v2_tcp4);
	tcase_add_test(tc, test_v2_tcp6);
	tcase_add_test(tc, test_v2_udp);
	tcase_add_test(tc, test_v2_unix);
	tcase_add_test(tc, test_v2_local);
	tcase_add_test(tc, test_v2_unspec_is_unknown);
	tcase_add_test(tc, test_v2_tlvs_skipped);
	tcase_add_test(tc, test_v2_bad_tlv);
	tcase_add_test(tc, test_v2_oversize);
	tcase_add_test(tc, test_v2_short_address_block);
	tcase_add_test(tc, test_v2_bad_version_command);
	tcase_add_test(tc, test_v2_bad_family_transport);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_sticky);
	tcase_add_test(tc, test_strerror);
	tcase_add_test(tc, test_peer_ipv4_client_over_ipv6_proxy);
	tcase_add_test(tc, test_peer_keeps_proxy_address);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(proxyproto_suite)
