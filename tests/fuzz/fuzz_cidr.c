/*
 * fuzz_cidr.c - libFuzzer harness for CIDR parsing, formatting, matching.
 *
 * Whatever cidr_parse() accepts must be canonical (host bits zero, prefix
 * in range), must survive format -> parse unchanged, must contain its own
 * first and last address (unless that is an IPv4-mapped address, see
 * below) and not the address just outside it, must be the source prefix
 * of its addresses, and must judge an IPv4 peer the same whether it
 * arrives as AF_INET or as ::ffff:a.b.c.d.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

union sa {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
	struct sockaddr_un	sun;
	struct sockaddr_storage	ss;
};

static void
mk4(union sa *a, const uint8_t *addr)
{
	memset(a, 0, sizeof(*a));
	a->sin.sin_family = AF_INET;
	a->sin.sin_port = htons(1234);
	memcpy(&a->sin.sin_addr, addr, 4);
}

static void
mk6(union sa *a, const uint8_t *addr)
{
	memset(a, 0, sizeof(*a));
	a->sin6.sin6_family = AF_INET6;
	a->sin6.sin6_port = htons(1234);
	memcpy(&a->sin6.sin6_addr, addr, 16);
}

static void
mk(union sa *a, int family, const uint8_t *addr)
{
	if (family == AF_INET)
		mk4(a, addr);
	else
		mk6(a, addr);
}

/* acl_permits() must agree with cidr_match() for one-entry lists. */
static void
check_acl(const struct cidr *c, const struct sockaddr *sa)
{
	struct acl	allow = { c, 1, NULL, 0 };
	struct acl	deny = { NULL, 0, c, 1 };
	struct acl	both = { c, 1, c, 1 };
	bool		m = cidr_match(c, sa);

	CHECK(acl_permits(&allow, sa) == m);
	CHECK(acl_permits(&deny, sa) == !m);
	CHECK(!m || !acl_permits(&both, sa));
}

static void
fixed_peers(const struct cidr *c)
{
	static const uint8_t v4[][4] = {
		{ 10, 1, 2, 3 }, { 192, 168, 1, 1 }, { 0, 0, 0, 0 },
		{ 255, 255, 255, 255 }, { 127, 0, 0, 1 }, { 128, 0, 0, 0 },
	};
	static const uint8_t v6[][16] = {
		{ 0 },
		{ [15] = 1 },
		{ 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
		{ 0xff, 0x02, [15] = 1 },
		{ 0xfe, 0x80, [15] = 1 },
		{ [0 ... 15] = 0xff },
		{ [10] = 0xff, [11] = 0xff },	/* ::ffff:0.0.0.0 */
		{ [10] = 0xff, [11] = 0xfe, [12] = 10 },
	};
	union sa	a, m;
	uint8_t		mapped[16] = { [10] = 0xff, [11] = 0xff };
	size_t		i;

	for (i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		mk4(&a, v4[i]);
		memcpy(mapped + 12, v4[i], 4);
		mk6(&m, mapped);
		CHECK(cidr_match(c, &a.sa) == cidr_match(c, &m.sa));
		check_acl(c, &a.sa);
		check_acl(c, &m.sa);
	}
	for (i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		mk6(&a, v6[i]);
		(void)cidr_match(c, &a.sa);
		check_acl(c, &a.sa);
	}
	memset(&a, 0, sizeof(a));
	a.sun.sun_family = AF_UNIX;
	CHECK(!cidr_match(c, &a.sa));
	CHECK(acl_permits(&(struct acl){ c, 1, c, 1 }, &a.sa));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr	c, again;
	union sa	a;
	char		*s, buf[CIDR_STRLEN], buf2[CIDR_STRLEN], *small;
	uint8_t		addr[16];
	unsigned	bits, i;
	size_t		len;

	if (size > 256)
		return 0;
	/* An exactly sized copy, so ASan sees any read past the NUL. */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&c, 0xa5, sizeof(c));
	again = c;
	if (cidr_parse(s, &c) != 0) {
		/* A refused string leaves the output untouched. */
		CHECK(memcmp(&c, &again, sizeof(c)) == 0);
		free(s);
		return 0;
	}
	free(s);

	CHECK(c.family == AF_INET || c.family == AF_INET6);
	bits = c.family == AF_INET ? 32 : 128;
	CHECK(c.prefix <= bits);
	for (i = c.prefix; i < 128; i++)
		CHECK((c.addr[i / 8] & (0x80u >> (i % 8))) == 0);

	/* format -> parse is the identity; format is idempotent. */
	cidr_format(&c, buf, sizeof(buf));
	CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
	CHECK(cidr_parse(buf, &again) == 0);
	CHECK(memcmp(&c, &again, sizeof(c)) == 0);
	cidr_format(&again, buf2, sizeof(buf2));
	CHECK(strcmp(buf, buf2) == 0);
	/* Truncated output stays a NUL-terminated prefix. */
	for (len = 1; len <= strlen(buf) + 1; len++) {
		small = malloc(len);
		CHECK(small != NULL);
		cidr_format(&c, small, len);
		CHECK(strlen(small) == len - 1 || strcmp(small, buf) == 0);
		CHECK(strncmp(small, buf, len - 1) == 0);
		free(small);
	}

	/* The first and last address are inside, the next block is not. */
	mk(&a, c.family, c.addr);
	CHECK(cidr_match(&c, &a.sa));
	memcpy(addr, c.addr, 16);
	for (i = c.prefix; i < bits; i++)
		addr[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	mk(&a, c.family, addr);
	/*
	 * Except that an IPv4-mapped peer is judged as IPv4: of the IPv6
	 * prefixes only those inside ::ffff:0:0/96 can hold it, so "::/80"
	 * does not match ::ffff:255.255.255.255 (see acl.c).
	 */
	if (c.family == AF_INET6 && c.prefix < 96 &&
	    memcmp(addr, v4mapped, sizeof(v4mapped)) == 0)
		CHECK(!cidr_match(&c, &a.sa));
	else
		CHECK(cidr_match(&c, &a.sa));
	/*
	 * The source prefix (cidr_of_peer) of an address inside c, at c's
	 * length, is c itself, and always holds the address it came from.
	 */
	CHECK(cidr_of_peer(&a.sa, c.prefix, c.prefix, &again));
	CHECK(cidr_match(&again, &a.sa));
	if (c.family == AF_INET || memcmp(addr, v4mapped,
	    sizeof(v4mapped)) != 0)
		CHECK(memcmp(&again, &c, sizeof(c)) == 0);
	if (c.prefix > 0) {
		memcpy(addr, c.addr, 16);
		i = c.prefix - 1;
		addr[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
		mk(&a, c.family, addr);
		CHECK(!cidr_match(&c, &a.sa));
	}

	fixed_peers(&c);
	CHECK(!cidr_match(&c, NULL));
	return 0;
}
