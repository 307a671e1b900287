/*
 * fuzz_proxyproto.c - libFuzzer harness for the PROXY protocol parser.
 *
 * The input is the byte stream a proxy (or anyone) sends first on a
 * connection; the seeds in corpus/proxyproto are real headers.  Each input
 * is parsed in every mode (v1, v2, any), fed whole, one byte at a time and
 * in chunks cut at points derived from the input, each chunk copied into
 * its own exactly sized heap block so ASan sees any read past it.  All
 * feedings must agree, the modes must agree with each other, and every
 * result must keep the module's promises: bounded, never past the header,
 * families that match the header's version and command.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxyproto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static const uint8_t v2sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

struct outcome {
	int		 st;
	size_t		 used;
	struct pp_parser p;
};

/*
 * Feed data through the parser whole, or in chunks: one byte at a time if
 * rnd is 0, else of 1..40 bytes drawn from a xorshift32 seeded with rnd.
 */
static void
feed(unsigned mode, const uint8_t *data, size_t n, bool whole, uint32_t rnd,
    struct outcome *o)
{
	size_t	off = 0, c, used;
	uint8_t	*chunk;

	memset(o, 0, sizeof(*o));
	CHECK(pp_init(&o->p, mode) == 0);
	o->st = PP_NEED_MORE;
	while (off < n && o->st == PP_NEED_MORE) {
		if (whole) {
			c = n - off;
		} else if (rnd == 0) {
			c = 1;
		} else {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 17;
			rnd ^= rnd << 5;
			c = 1 + rnd % 40;
			if (c > n - off)
				c = n - off;
		}
		chunk = malloc(c);
		CHECK(chunk != NULL);
		memcpy(chunk, data + off, c);
		o->st = pp_feed(&o->p, chunk, c, &used);
		free(chunk);
		CHECK(used <= c);
		if (o->st == PP_NEED_MORE)
			CHECK(used == c);
		else
			CHECK(used > 0);
		o->used += used;
		off += c;
		CHECK(pp_pending(&o->p) <= PP_HEADER_MAX);
		CHECK(pp_pending(&o->p) == o->used);
	}
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	const struct pp_result *x = &a->p.res, *y = &b->p.res;

	CHECK(a->st == b->st);
	CHECK(a->used == b->used);
	if (a->st != PP_DONE)
		return;
	CHECK(x->command == y->command && x->version == y->version);
	CHECK(x->socktype == y->socktype && x->header_len == y->header_len);
	CHECK(x->src_len == y->src_len && x->dst_len == y->dst_len);
	CHECK(memcmp(&x->src, &y->src, sizeof(x->src)) == 0);
	CHECK(memcmp(&x->dst, &y->dst, sizeof(x->dst)) == 0);
}

static bool
inet_ok(const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family == AF_INET)
		return len == sizeof(struct sockaddr_in);
	if (ss->ss_family == AF_INET6)
		return len == sizeof(struct sockaddr_in6);
	return false;
}

static bool
unix_ok(const struct sockaddr_storage *ss, socklen_t len)
{
	return ss->ss_family == AF_UNIX && len >= sizeof(sa_family_t) &&
	    len <= sizeof(struct sockaddr_un);
}

/* What a completed header promises, judged against the raw bytes. */
static void
check_done(const struct outcome *o, const uint8_t *data, size_t n)
{
	const struct pp_result	*r = &o->p.res;
	struct sockaddr_in6	 conn;
	struct sockaddr_storage	 peer;
	socklen_t		 plen;

	CHECK(r->header_len == o->used && r->header_len <= n);
	CHECK(r->header_len <= PP_HEADER_MAX);
	CHECK(pp_eof(&o->p) == PP_ERR_NONE);
	if (r->version == 1) {
		CHECK(r->header_len <= PP_V1_MAX);
		CHECK(memcmp(data, "PROXY ", 6) == 0);
		CHECK(data[r->header_len - 2] == '\r');
		CHECK(data[r->header_len - 1] == '\n');
		/* The first CR LF ends the line: none before it. */
		CHECK(memmem(data, r->header_len, "\r\n", 2) ==
		    data + r->header_len - 2);
		CHECK(r->command != PP_CMD_LOCAL);
	} else {
		CHECK(r->version == 2);
		CHECK(memcmp(data, v2sig, 12) == 0);
		CHECK(r->header_len == 16 + ((size_t)data[14] << 8 | data[15]));
		CHECK(data[12] >> 4 == 2);
		CHECK((r->command == PP_CMD_LOCAL) == ((data[12] & 0xF) == 0));
	}
	if (r->command == PP_CMD_PROXY) {
		CHECK(r->src.ss_family == r->dst.ss_family);
		CHECK((inet_ok(&r->src, r->src_len) &&
		    inet_ok(&r->dst, r->dst_len)) ||
		    (r->version == 2 && unix_ok(&r->src, r->src_len) &&
		    unix_ok(&r->dst, r->dst_len)));
		CHECK(r->socktype == SOCK_STREAM || (r->version == 2 &&
		    r->socktype == SOCK_DGRAM));
	} else {
		CHECK(r->src.ss_family == AF_UNSPEC && r->src_len == 0);
		CHECK(r->dst.ss_family == AF_UNSPEC && r->dst_len == 0);
	}

	/* The peer is the header's IP client, else the connection's. */
	memset(&conn, 0, sizeof(conn));
	conn.sin6_family = AF_INET6;
	conn.sin6_port = htons(7);
	plen = pp_peer(r, (struct sockaddr *)&conn, sizeof(conn), &peer);
	CHECK(plen <= sizeof(peer));
	if (r->command == PP_CMD_PROXY && r->src.ss_family != AF_UNIX)
		CHECK(inet_ok(&peer, plen));
	else
		CHECK(plen == sizeof(conn) &&
		    memcmp(&peer, &conn, sizeof(conn)) == 0);
}

/* One mode: every feeding agrees; returns the whole-feed outcome. */
static void
one_mode(unsigned mode, const uint8_t *data, size_t n, uint32_t seed,
    struct outcome *whole)
{
	struct outcome	other;
	enum pp_error	e;

	feed(mode, data, n, true, 0, whole);
	feed(mode, data, n, false, 0, &other);
	same(whole, &other);
	feed(mode, data, n, false, seed | 1, &other);
	same(whole, &other);

	e = pp_eof(&whole->p);
	CHECK(pp_strerror(e) != NULL);
	if (whole->st == PP_DONE) {
		check_done(whole, data, n);
	} else if (whole->st == PP_NEED_MORE) {
		CHECK(whole->used == n);
		CHECK(e == (n == 0 ? PP_ERR_EMPTY : PP_ERR_TRUNCATED));
	} else {
		CHECK(whole->st < 0 && -whole->st < PP_ERR_COUNT);
		CHECK(e == (enum pp_error)-whole->st);
		CHECK(e != PP_ERR_EMPTY && e != PP_ERR_TRUNCATED &&
		    e != PP_ERR_TIMEOUT && e != PP_ERR_NONE);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome	any, v1, v2;
	uint32_t	seed = 2166136261u;
	size_t		i;

	/* FNV-1a of the input picks the chunk sizes. */
	for (i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	one_mode(PP_ANY, data, size, seed, &any);
	one_mode(PP_V1, data, size, seed, &v1);
	one_mode(PP_V2, data, size, seed, &v2);

	/*
	 * Until a signature is complete the modes cannot differ; after it,
	 * the mode of that version parses as "any" does and the other one
	 * refuses the version.
	 */
	if (any.p.version == 0) {
		same(&any, &v1);
		same(&any, &v2);
	} else if (any.p.version == 1) {
		same(&any, &v1);
		CHECK(v2.st == -PP_ERR_VERSION && v2.used == 6);
	} else {
		same(&any, &v2);
		CHECK(v1.st == -PP_ERR_VERSION && v1.used == 12);
	}
	return 0;
}
