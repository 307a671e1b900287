/*
 * proxyproto.c - the pure core of HAProxy's PROXY protocol, v1 and v2
 * (SPEC 9; /usr/share/doc/haproxy/proxy-protocol.txt.gz).
 *
 * The parser takes one byte at a time, so a header split anywhere across
 * reads parses exactly like one that arrives whole, and it stops at the
 * header's last byte: what follows belongs to the line protocol.  Both
 * signatures are matched side by side until one completes or neither can,
 * which tells the versions apart by their first byte ('P' or CR) and names
 * a header of a version the listener does not take.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "proxyproto.h"

#define V1_SIG		"PROXY "
#define V1_SIG_LEN	6
#define V2_SIG_LEN	12
#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_FAM_UNSPEC	0x0
#define V2_FAM_INET	0x1
#define V2_FAM_INET6	0x2
#define V2_FAM_UNIX	0x3
#define V2_TR_UNSPEC	0x0
#define V2_TR_STREAM	0x1
#define V2_TR_DGRAM	0x2
#define V2_UNIX_PATH	108
/* No TLV is checked: the bytes after the addresses are skipped as such. */
#define NO_TLV		((size_t)-1)
#define STR(x)		STR_(x)
#define STR_(x)		#x

static const uint8_t v2sig[V2_SIG_LEN] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static const char *const errtext[PP_ERR_COUNT] = {
	[PP_ERR_NONE] = "no error",
	[PP_ERR_NOT_PROXY] = "not a PROXY header",
	[PP_ERR_VERSION] = "PROXY header of a version not enabled",
	[PP_ERR_EMPTY] = "closed before a PROXY header",
	[PP_ERR_TRUNCATED] = "truncated PROXY header",
	[PP_ERR_TIMEOUT] = "PROXY header not complete in time",
	[PP_ERR_V1_TOOLONG] =
	    ("too long: no CRLF within " STR(PP_V1_MAX) " bytes"),
	[PP_ERR_V1_LINE] = "bad v1 line",
	[PP_ERR_V1_PROTO] = "bad v1 protocol",
	[PP_ERR_V1_ADDRESS] = "bad v1 address",
	[PP_ERR_V1_PORT] = "bad v1 port",
	[PP_ERR_V2_VERSION] = "bad v2 version",
	[PP_ERR_V2_COMMAND] = "bad v2 command",
	[PP_ERR_V2_FAMILY] = "unsupported v2 address family",
	[PP_ERR_V2_TRANSPORT] = "unsupported v2 transport",
	[PP_ERR_V2_SHORT] = "v2 address length too short",
	[PP_ERR_V2_TOOLONG] =
	    ("too long: v2 length above " STR(PP_V2_MAX_LEN)),
	[PP_ERR_V2_TLV] = "bad v2 TLV",
};

int
pp_init(struct pp_parser *p, unsigned accept)
{
	memset(p, 0, sizeof(*p));
	if (accept == 0 || (accept & ~PP_ANY) != 0)
		return -EINVAL;
	p->accept = accept;
	/* Both signatures, whatever is accepted: see the file comment. */
	p->cand = PP_ANY;
	return 0;
}

const char *
pp_strerror(enum pp_error err)
{
	if ((unsigned)err >= PP_ERR_COUNT)
		return "unknown PROXY header error";
	return errtext[err];
}

size_t
pp_pending(const struct pp_parser *p)
{
	return p->got;
}

enum pp_error
pp_eof(const struct pp_parser *p)
{
	if (p->error != PP_ERR_NONE || p->done)
		return p->error;
	return p->got == 0 ? PP_ERR_EMPTY : PP_ERR_TRUNCATED;
}

static int
fail(struct pp_parser *p, enum pp_error err)
{
	p->error = err;
	return -(int)err;
}

static int
finish(struct pp_parser *p)
{
	p->done = true;
	p->res.version = p->version;
	p->res.header_len = p->got;
	return PP_DONE;
}

/* ---- v1 ------------------------------------------------------------- */

/* Decimal 0..65535, no sign, no leading zero (spec 2.1: not octal). */
static int
v1_port(const char *s, size_t n, in_port_t *port)
{
	unsigned long	v = 0;
	size_t		i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* One address of family af; inet_pton() has the spec's strictness
 * (glibc refuses leading zeros in IPv4). */
static int
v1_addr(int af, const char *s, size_t n, struct sockaddr_storage *ss,
    socklen_t *sslen, in_port_t port)
{
	char	text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text) || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		*sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		*sslen = sizeof(*sin6);
	}
	return 0;
}

/*
 * The complete line, CR LF excluded, "PROXY " included: PROXY SP TCP4|TCP6
 * SP src SP dst SP sport SP dport, fields separated by exactly one space;
 * or PROXY SP UNKNOWN followed by anything (spec 2.1: the receiver must
 * ignore the rest of an UNKNOWN line).
 */
static int
v1_parse(struct pp_parser *p, const char *line, size_t n)
{
	const char	*f[6], *end = line + n, *s;
	size_t		 fl[6], k = 0;
	in_port_t	 sport, dport;
	int		 af;

	line += V1_SIG_LEN;
	if ((size_t)(end - line) >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
	    (end - line == 7 || line[7] == ' ')) {
		p->res.command = PP_CMD_UNKNOWN;
		return finish(p);
	}
	/* Split at single spaces; an empty field is a doubled space. */
	for (s = line; k < 6; k++) {
		const char *sp = memchr(s, ' ', (size_t)(end - s));

		f[k] = s;
		fl[k] = (size_t)((sp != NULL ? sp : end) - s);
		if (fl[k] == 0)
			return fail(p, PP_ERR_V1_LINE);
		if (sp == NULL)
			break;
		s = sp + 1;
	}
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		af = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return fail(p, PP_ERR_V1_PROTO);
	if (k != 4)
		return fail(p, PP_ERR_V1_LINE);
	if (v1_port(f[3], fl[3], &sport) < 0 ||
	    v1_port(f[4], fl[4], &dport) < 0)
		return fail(p, PP_ERR_V1_PORT);
	if (v1_addr(af, f[1], fl[1], &p->res.src, &p->res.src_len, sport) < 0 ||
	    v1_addr(af, f[2], fl[2], &p->res.dst, &p->res.dst_len, dport) < 0)
		return fail(p, PP_ERR_V1_ADDRESS);
	p->res.command = PP_CMD_PROXY;
	p->res.socktype = SOCK_STREAM;
	return finish(p);
}

static int
v1_byte(struct pp_parser *p, uint8_t c)
{
	p->buf[p->got++] = c;
	/* Spec 2.1: only CR LF ends the line; a lone CR or LF is an error. */
	if (c == '\n') {
		if (p->buf[p->got - 2] != '\r')
			return fail(p, PP_ERR_V1_LINE);
		return v1_parse(p, (const char *)p->buf, p->got - 2);
	}
	if (p->buf[p->got - 2] == '\r')
		return fail(p, PP_ERR_V1_LINE);
	if (p->got == PP_V1_MAX)
		return fail(p, PP_ERR_V1_TOOLONG);
	return PP_NEED_MORE;
}

/* ---- v2 ------------------------------------------------------------- */

static uint8_t
v2_family(const struct pp_parser *p)
{
	return p->buf[13] >> 4;
}

/* Address block size of a PROXY header whose addresses are used, else 0. */
static size_t
v2_addr_len(const struct pp_parser *p)
{
	uint8_t	tr = p->buf[13] & 0xF;

	if ((p->buf[12] & 0xF) != V2_CMD_PROXY || tr == V2_TR_UNSPEC)
		return 0;
	switch (v2_family(p)) {
	case V2_FAM_INET:
		return 2 * 4 + 2 * 2;
	case V2_FAM_INET6:
		return 2 * 16 + 2 * 2;
	case V2_FAM_UNIX:
		return 2 * V2_UNIX_PATH;
	}
	return 0;
}

/*
 * A 108-byte AF_UNIX field: a path ends at its first NUL (or fills all
 * 108 bytes); an abstract name (leading NUL) has no terminator, so its
 * NUL padding is cut; all NUL is an unnamed socket.
 */
static void
v2_unix(const uint8_t *field, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;
	size_t			 n = V2_UNIX_PATH;

	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, field, V2_UNIX_PATH);
	if (field[0] != '\0') {
		n = strnlen(sun->sun_path, V2_UNIX_PATH);
		if (n < V2_UNIX_PATH)
			n++;	/* the NUL, as getpeername() counts it */
	} else {
		while (n > 0 && field[n - 1] == '\0')
			n--;
	}
	*sslen = n == 0 ? sizeof(sa_family_t) :
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static void
v2_inet(int af, const uint8_t *a, size_t alen, const uint8_t *port,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, alen);
		memcpy(&sin->sin_port, port, 2);
		*sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, alen);
		memcpy(&sin6->sin6_port, port, 2);
		*sslen = sizeof(*sin6);
	}
}

static int
v2_finish(struct pp_parser *p)
{
	const uint8_t	*a = p->buf + PP_V2_FIXED;
	struct pp_result *r = &p->res;

	if (p->tlv_next != NO_TLV && p->tlv_next != p->total)
		return fail(p, PP_ERR_V2_TLV);	/* a cut TLV header */
	if ((p->buf[12] & 0xF) == V2_CMD_LOCAL) {
		r->command = PP_CMD_LOCAL;
		return finish(p);
	}
	if (v2_addr_len(p) == 0) {
		/* Spec 2.2: UNSPEC family or transport, addresses ignored. */
		r->command = PP_CMD_UNKNOWN;
		return finish(p);
	}
	r->command = PP_CMD_PROXY;
	r->socktype = (p->buf[13] & 0xF) == V2_TR_STREAM ? SOCK_STREAM :
	    SOCK_DGRAM;
	switch (v2_family(p)) {
	case V2_FAM_INET:
		v2_inet(AF_INET, a, 4, a + 8, &r->src, &r->src_len);
		v2_inet(AF_INET, a + 4, 4, a + 10, &r->dst, &r->dst_len);
		break;
	case V2_FAM_INET6:
		v2_inet(AF_INET6, a, 16, a + 32, &r->src, &r->src_len);
		v2_inet(AF_INET6, a + 16, 16, a + 34, &r->dst, &r->dst_len);
		break;
	default:
		v2_unix(a, &r->src, &r->src_len);
		v2_unix(a + V2_UNIX_PATH, &r->dst, &r->dst_len);
		break;
	}
	return finish(p);
}

/* The fixed part is complete: judge the length against the family. */
static int
v2_length(struct pp_parser *p)
{
	size_t	len = (size_t)p->buf[14] << 8 | p->buf[15];
	size_t	alen = v2_addr_len(p);

	if (len > PP_V2_MAX_LEN)
		return fail(p, PP_ERR_V2_TOOLONG);
	if (len < alen)
		return fail(p, PP_ERR_V2_SHORT);
	p->total = PP_V2_FIXED + len;
	p->keep = PP_V2_FIXED + alen;
	/*
	 * After the addresses of a used PROXY header come TLVs, and each must
	 * end inside the header.  The rest of a LOCAL or UNSPEC header is
	 * discarded unread, as spec 2.2 says ("discard the protocol block").
	 */
	p->tlv_next = alen != 0 ? p->keep : NO_TLV;
	if (p->got == p->total)
		return v2_finish(p);
	return PP_NEED_MORE;
}

static int
v2_byte(struct pp_parser *p, uint8_t c)
{
	size_t	at, pos;

	if (p->got < PP_V2_FIXED) {
		p->buf[p->got++] = c;
		if (p->got == 13) {
			if (c >> 4 != 2)
				return fail(p, PP_ERR_V2_VERSION);
			if ((c & 0xF) > V2_CMD_PROXY)
				return fail(p, PP_ERR_V2_COMMAND);
		} else if (p->got == 14 &&
		    (p->buf[12] & 0xF) == V2_CMD_PROXY) {
			/* LOCAL ignores the family byte (spec 2.2). */
			if (c >> 4 > V2_FAM_UNIX)
				return fail(p, PP_ERR_V2_FAMILY);
			if ((c & 0xF) > V2_TR_DGRAM)
				return fail(p, PP_ERR_V2_TRANSPORT);
		} else if (p->got == PP_V2_FIXED) {
			return v2_length(p);
		}
		return PP_NEED_MORE;
	}
	at = p->got++;
	if (at < p->keep) {
		p->buf[at] = c;
	} else if (p->tlv_next != NO_TLV && at >= p->tlv_next) {
		/* A TLV header: type, length high, length low. */
		pos = at - p->tlv_next;
		p->tlv_hdr[pos] = c;
		if (pos == 2) {
			p->tlv_next = at + 1 +
			    ((size_t)p->tlv_hdr[1] << 8 | p->tlv_hdr[2]);
			if (p->tlv_next > p->total)
				return fail(p, PP_ERR_V2_TLV);
		}
	}
	if (p->got == p->total)
		return v2_finish(p);
	return PP_NEED_MORE;
}

/* ---- both ----------------------------------------------------------- */

static int
sig_byte(struct pp_parser *p, uint8_t c)
{
	size_t		i = p->got;
	unsigned	cand = 0;

	if ((p->cand & PP_V1) && i < V1_SIG_LEN && c == (uint8_t)V1_SIG[i])
		cand |= PP_V1;
	if ((p->cand & PP_V2) && i < V2_SIG_LEN && c == v2sig[i])
		cand |= PP_V2;
	/* Taken even when refused, as the other versions' bytes are. */
	p->buf[p->got++] = c;
	if (cand == 0)
		return fail(p, PP_ERR_NOT_PROXY);
	p->cand = cand;
	if ((cand == PP_V1 && p->got == V1_SIG_LEN) ||
	    (cand == PP_V2 && p->got == V2_SIG_LEN)) {
		if ((p->accept & cand) == 0)
			return fail(p, PP_ERR_VERSION);
		p->version = cand == PP_V1 ? 1 : 2;
	}
	return PP_NEED_MORE;
}

int
pp_feed(struct pp_parser *p, const uint8_t *buf, size_t len,
    size_t *consumed)
{
	size_t	i = 0;
	int	r = PP_NEED_MORE;

	*consumed = 0;
	if (p->error != PP_ERR_NONE)
		return -(int)p->error;
	if (p->done)
		return PP_DONE;
	while (i < len && r == PP_NEED_MORE) {
		if (p->version == 0)
			r = sig_byte(p, buf[i]);
		else if (p->version == 1)
			r = v1_byte(p, buf[i]);
		else
			r = v2_byte(p, buf[i]);
		i++;
	}
	*consumed = i;
	return r;
}

socklen_t
pp_peer(const struct pp_result *r, const struct sockaddr *conn,
    socklen_t conn_len, struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&r->src;
	struct sockaddr_in	  *sin = (struct sockaddr_in *)out;

	memset(out, 0, sizeof(*out));
	if (r->command == PP_CMD_PROXY && r->src.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		sin->sin_family = AF_INET;
		sin->sin_port = s6->sin6_port;
		memcpy(&sin->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		return sizeof(*sin);
	}
	if (r->command == PP_CMD_PROXY && (r->src.ss_family == AF_INET ||
	    r->src.ss_family == AF_INET6)) {
		memcpy(out, &r->src, r->src_len);
		return r->src_len;
	}
	if (conn_len > sizeof(*out))
		conn_len = sizeof(*out);
	memcpy(out, conn, conn_len);
	return conn_len;
}
