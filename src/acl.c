/*
 * acl.c - CIDR prefixes and allow/deny access lists.
 *
 * A peer that is IPv4, or IPv4 reached through a dual-stack socket as
 * ::ffff:a.b.c.d, is judged as IPv4: it matches IPv4 prefixes, and of the
 * IPv6 prefixes only those inside ::ffff:0:0/96.  So the verdict does not
 * depend on which kind of socket the client came in on, and "::/0" means
 * "every IPv6 client" without silently covering every IPv4 client too.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"

/* The first 96 bits of every IPv4-mapped IPv6 address. */
static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Parse a decimal prefix length: digits only, no leading zeros. */
static int
parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned	v = 0;
	size_t		i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 3)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* True if any bit after the first prefix bits of addr[0..bytes) is set. */
static bool
host_bits_set(const uint8_t *addr, size_t bytes, unsigned prefix)
{
	size_t	i = prefix / 8;

	if (prefix % 8 != 0) {
		if (addr[i] & (0xffu >> (prefix % 8)))
			return true;
		i++;
	}
	for (; i < bytes; i++)
		if (addr[i] != 0)
			return true;
	return false;
}

/* True if the first prefix bits of a and b are equal. */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	size_t	bytes = prefix / 8;
	uint8_t	mask;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (prefix % 8 == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - prefix % 8));
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	char		 addr[INET6_ADDRSTRLEN];
	const char	*slash;
	struct cidr	 c;
	size_t		 alen;
	unsigned	 max;

	if (s == NULL || out == NULL)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';

	memset(&c, 0, sizeof(c));
	/* inet_pton() rejects spaces, zone ids, short and octal forms. */
	if (strchr(addr, ':') != NULL) {
		c.family = AF_INET6;
		max = 128;
	} else {
		c.family = AF_INET;
		max = 32;
	}
	if (inet_pton(c.family, addr, c.addr) != 1)
		return -EINVAL;
	if (slash == NULL)
		c.prefix = max;
	else if (parse_prefix(slash + 1, max, &c.prefix) < 0)
		return -EINVAL;
	/* "10.0.0.1/8" is almost certainly a typo; refuse to guess. */
	if (host_bits_set(c.addr, max / 8, c.prefix))
		return -EINVAL;
	*out = c;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char	addr[INET6_ADDRSTRLEN];

	if (buf == NULL || len == 0)
		return;
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL) {
		snprintf(buf, len, "invalid");
		return;
	}
	snprintf(buf, len, "%s/%u", addr, c->prefix);
}

/*
 * The two views of a peer: v4 (if it is IPv4 or IPv4-mapped) and v6 (its
 * IPv6 address, or for a plain IPv4 peer the mapped form).  False for
 * non-IP peers.
 */
struct peer {
	bool	is_v4;
	uint8_t	v4[4];
	uint8_t	v6[16];
};

static bool
peer_of(const struct sockaddr *sa, struct peer *p)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (sa == NULL)
		return false;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		p->is_v4 = true;
		memcpy(p->v4, &sin->sin_addr, 4);
		memcpy(p->v6, v4mapped, 12);
		memcpy(p->v6 + 12, p->v4, 4);
		return true;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(p->v6, &sin6->sin6_addr, 16);
		p->is_v4 = memcmp(p->v6, v4mapped, 12) == 0;
		if (p->is_v4)
			memcpy(p->v4, p->v6 + 12, 4);
		return true;
	default:
		return false;
	}
}

static bool
match_peer(const struct cidr *c, const struct peer *p)
{
	if (c->family == AF_INET)
		return p->is_v4 && c->prefix <= 32 &&
		    prefix_equal(c->addr, p->v4, c->prefix);
	if (c->family != AF_INET6 || c->prefix > 128)
		return false;
	/* An IPv4 peer only falls under prefixes inside ::ffff:0:0/96. */
	if (p->is_v4 && (c->prefix < 96 ||
	    memcmp(c->addr, v4mapped, sizeof(v4mapped)) != 0))
		return false;
	return prefix_equal(c->addr, p->v6, c->prefix);
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	struct peer	p;

	if (c == NULL || !peer_of(sa, &p))
		return false;
	return match_peer(c, &p);
}

/* Zero the bits of addr[0..bytes) after the first prefix bits. */
static void
clear_host_bits(uint8_t *addr, size_t bytes, unsigned prefix)
{
	size_t	i = prefix / 8;

	if (i >= bytes)
		return;
	if (prefix % 8 != 0)
		addr[i++] &= (uint8_t)(0xffu << (8 - prefix % 8));
	memset(addr + i, 0, bytes - i);
}

bool
cidr_of_peer(const struct sockaddr *sa, unsigned prefix4, unsigned prefix6,
    struct cidr *out)
{
	struct peer	p;

	memset(out, 0, sizeof(*out));
	if (!peer_of(sa, &p))
		return false;
	if (p.is_v4) {
		out->family = AF_INET;
		out->prefix = prefix4 < 32 ? prefix4 : 32;
		memcpy(out->addr, p.v4, 4);
		clear_host_bits(out->addr, 4, out->prefix);
	} else {
		out->family = AF_INET6;
		out->prefix = prefix6 < 128 ? prefix6 : 128;
		memcpy(out->addr, p.v6, 16);
		clear_host_bits(out->addr, 16, out->prefix);
	}
	return true;
}

/* acl_permits() with a list to match: the peer's address converted. */
static bool __attribute__((noinline))
permits_peer(const struct acl *acl, const struct sockaddr *sa)
{
	struct peer	p;
	size_t		i;

	if (!peer_of(sa, &p))
		return true;
	for (i = 0; i < acl->ndeny; i++)
		if (match_peer(&acl->deny[i], &p))
			return false;
	if (acl->nallow == 0)
		return true;
	for (i = 0; i < acl->nallow; i++)
		if (match_peer(&acl->allow[i], &p))
			return true;
	return false;
}

/* No list is the common case (every datagram asks): nothing to convert. */
bool
acl_permits(const struct acl *acl, const struct sockaddr *sa)
{
	if (acl == NULL || (acl->ndeny == 0 && acl->nallow == 0))
		return true;
	return permits_peer(acl, sa);
}
