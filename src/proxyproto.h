/*
 * proxyproto.h - the pure core of HAProxy's PROXY protocol, v1 and v2
 * (SPEC 9; /usr/share/doc/haproxy/proxy-protocol.txt.gz).
 *
 * No file descriptors, no globals, no logging, no clocks: header bytes go
 * in as they arrive, a verdict and the addresses come out.  The caller owns
 * the timeout and the trust decision (proxy_from); this module only says
 * whether the bytes form a valid header and where the header ends.
 */
#ifndef ECHOTIMED_PROXYPROTO_H
#define ECHOTIMED_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Versions a listener accepts: a mask for pp_init(). */
#define PP_V1		0x1u
#define PP_V2		0x2u
#define PP_ANY		(PP_V1 | PP_V2)

/* Longest v1 line, CR LF included (spec 2.1: the UNKNOWN worst case). */
#define PP_V1_MAX	107
/* The fixed part of a v2 header: signature, ver_cmd, fam, len. */
#define PP_V2_FIXED	16
/*
 * Largest v2 length field accepted.  The field could name 65535 bytes, but
 * the spec designs both formats to fit one 536-byte segment (postfix takes
 * no more than that).  2048 leaves room for the largest address block (216
 * for AF_UNIX) and every TLV HAProxy or a cloud balancer sends (SSL and its
 * sub-TLVs, a 128-byte unique id, a 255-byte authority), yet lets no header
 * make a session wait for kilobytes.  Beyond the address block the bytes are
 * skipped, not stored, so the bound costs no memory.
 */
#define PP_V2_MAX_LEN	2048
/* Longest header of either version, in bytes. */
#define PP_HEADER_MAX	(PP_V2_FIXED + PP_V2_MAX_LEN)
/* Bytes a parser stores: a v2 fixed part plus the AF_UNIX address block. */
#define PP_STORE_MAX	(PP_V2_FIXED + 216)

/* pp_feed() results; errors are returned negated (-PP_ERR_...). */
#define PP_NEED_MORE	0
#define PP_DONE		1

enum pp_error {
	PP_ERR_NONE,
	PP_ERR_NOT_PROXY,	/* neither signature: "not a PROXY header" */
	PP_ERR_VERSION,		/* the other version's signature */
	PP_ERR_EMPTY,		/* pp_eof() before any byte */
	PP_ERR_TRUNCATED,	/* pp_eof() inside a header */
	PP_ERR_TIMEOUT,		/* for the caller: not complete in time */
	PP_ERR_V1_TOOLONG,	/* no CR LF within PP_V1_MAX bytes */
	PP_ERR_V1_LINE,		/* bad v1 grammar, lone CR or LF */
	PP_ERR_V1_PROTO,	/* not TCP4, TCP6 or UNKNOWN */
	PP_ERR_V1_ADDRESS,	/* not an address of the line's family */
	PP_ERR_V1_PORT,		/* not 0..65535 in decimal without leading 0 */
	PP_ERR_V2_VERSION,	/* version nibble is not 2 */
	PP_ERR_V2_COMMAND,	/* command is neither LOCAL nor PROXY */
	PP_ERR_V2_FAMILY,	/* address family nibble above AF_UNIX (3) */
	PP_ERR_V2_TRANSPORT,	/* transport nibble above DGRAM (2) */
	PP_ERR_V2_SHORT,	/* length shorter than the family's addresses */
	PP_ERR_V2_TOOLONG,	/* length above PP_V2_MAX_LEN */
	PP_ERR_V2_TLV,		/* a TLV runs past the end of the header */
	PP_ERR_COUNT
};

enum pp_command {
	PP_CMD_PROXY,		/* relayed: src is the client, dst its target */
	PP_CMD_LOCAL,		/* v2 LOCAL: the proxy's own connection */
	PP_CMD_UNKNOWN,		/* v1 UNKNOWN, or v2 PROXY of an unspecified
				 * family or transport: addresses ignored */
};

/*
 * A complete header.  For PP_CMD_PROXY, src and dst carry the header's own
 * family (AF_INET, AF_INET6 or AF_UNIX), whatever the family of the
 * connection it arrived on: an IPv4 client behind an IPv6 proxy connection
 * is AF_INET here.  For LOCAL and UNKNOWN both are AF_UNSPEC, length 0.
 * AF_UNIX addresses come from the 108-byte fields: a path up to its first
 * NUL, an abstract name (leading NUL) up to its last non-NUL byte, or
 * unnamed (all NUL, length sizeof(sa_family_t)).
 */
struct pp_result {
	enum pp_command		command;
	unsigned		version;	/* 1 or 2 */
	int			socktype;	/* SOCK_STREAM, SOCK_DGRAM, 0 */
	struct sockaddr_storage	src, dst;
	socklen_t		src_len, dst_len;
	size_t			header_len;	/* bytes of the whole header */
};

/* An incremental parser; all state is here, nothing is allocated. */
struct pp_parser {
	unsigned		accept;		/* PP_V1 | PP_V2 mask */
	unsigned		cand;		/* signatures still matching */
	unsigned		version;	/* 0, then 1 or 2 */
	enum pp_error		error;		/* sticky once set */
	bool			done;
	size_t			got;		/* header bytes taken so far */
	size_t			total;		/* v2: PP_V2_FIXED + len */
	size_t			keep;		/* v2: bytes to store */
	size_t			tlv_next;	/* v2: offset of the next TLV */
	uint8_t			tlv_hdr[3];
	uint8_t			buf[PP_STORE_MAX];
	struct pp_result	res;
};

/* Start a parser for the versions in accept (PP_V1, PP_V2, PP_ANY).
 * 0, or -EINVAL for an empty or unknown mask. */
int		pp_init(struct pp_parser *p, unsigned accept);
/*
 * Take bytes buf[0..len) as they arrive from the connection.  *consumed is
 * set to the bytes that belong to the header; the parser never takes a
 * byte past the header's end.  Returns:
 *   PP_NEED_MORE  all len bytes were header; the header is not complete.
 *   PP_DONE       the header is complete (p->res); buf + *consumed onwards
 *                 is the first data of the line protocol.  Later calls
 *                 return PP_DONE again and consume nothing.
 *   -PP_ERR_...   not a valid header; *consumed counts the bytes up to
 *                 and including the offending one.  Sticky: later
 *                 calls return it again and consume nothing.
 * A mismatch is reported at the first byte that cannot belong to a valid
 * header where that is knowable (signatures, v2 fields and lengths); a v1
 * line is judged when its CR LF arrives or at PP_V1_MAX bytes.
 */
int		pp_feed(struct pp_parser *p, const uint8_t *buf, size_t len,
		    size_t *consumed);
/* The error for a connection that ended before PP_DONE: PP_ERR_EMPTY,
 * PP_ERR_TRUNCATED, the error already reported, or PP_ERR_NONE if done. */
enum pp_error	pp_eof(const struct pp_parser *p);
/* Bytes taken so far, the sum of *consumed (never above PP_HEADER_MAX). */
size_t		pp_pending(const struct pp_parser *p);
/* A short lower-case text for err ("not a PROXY header", ...); never NULL. */
const char	*pp_strerror(enum pp_error err);
/*
 * The session's peer for a completed header: for PP_CMD_PROXY with an
 * AF_INET or AF_INET6 source, that source, a v4-mapped IPv6 source given as
 * AF_INET (proxies send ::ffff:a.b.c.d when their two ends differ in
 * family; one client should have one form).  Otherwise - LOCAL, UNKNOWN, or
 * an AF_UNIX source, which names no host but the proxy's own - the
 * connection's peer conn/conn_len is kept.  Writes *out, returns its length.
 */
socklen_t	pp_peer(const struct pp_result *r, const struct sockaddr *conn,
		    socklen_t conn_len, struct sockaddr_storage *out);

#endif
