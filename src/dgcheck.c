/*
 * dgcheck.c - datagram source checks against loops and reflection.
 *
 * An echo reply sent to another echo-like service, to a broadcast or
 * multicast group, or to an address that cannot be a real sender starts a
 * packet loop or turns the daemon into an amplifier for spoofed requests.
 * Like FreeBSD inetd's check_loop and OpenBSD inetd's dg_badinput, such
 * datagrams are dropped before any reply is built.
 */
#include <netinet/in.h>
#include <string.h>

#include "dgcheck.h"

void
dg_ports_clear(struct dg_ports *p)
{
	memset(p, 0, sizeof(*p));
}

void
dg_ports_add(struct dg_ports *p, int port)
{
	if (port >= 0 && port <= 65535)
		p->bits[port / 64] |= UINT64_C(1) << (port % 64);
}

static bool
port_denied(unsigned port, const struct dg_ports *p)
{
	return p && (p->bits[port / 64] >> (port % 64) & 1);
}

/* a is an IPv4 address in network order. */
static bool
bad_v4(const uint8_t *a)
{
	/* 0/8 is "this network"; no real peer sends from it. */
	if (a[0] == 0)
		return true;
	/*
	 * 224/4 is multicast and 240/4 reserved (class E), which includes
	 * the limited broadcast 255.255.255.255.
	 */
	if (a[0] >= 224)
		return true;
	return false;
}

enum dg_verdict
dg_check_source(const struct sockaddr *sa, const struct dg_ports *p)
{
	static const uint8_t		 v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	static const uint8_t		 unspec[16];
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const uint8_t			*a;	/* no copy: no stack array */

	if (sa == NULL)
		return DG_OK;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		if (port_denied(ntohs(sin->sin_port), p))
			return DG_BAD_PORT;
		a = (const uint8_t *)&sin->sin_addr;
		return bad_v4(a) ? DG_BAD_ADDRESS : DG_OK;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (port_denied(ntohs(sin6->sin6_port), p))
			return DG_BAD_PORT;
		a = sin6->sin6_addr.s6_addr;
		if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0)
			return bad_v4(a + 12) ? DG_BAD_ADDRESS : DG_OK;
		/* :: and ff00::/8 (multicast). */
		if (memcmp(a, unspec, sizeof(unspec)) == 0 || a[0] == 0xff)
			return DG_BAD_ADDRESS;
		return DG_OK;
	default:
		/* AF_UNIX and anything else that is not IP. */
		return DG_OK;
	}
}

const char *
dg_verdict_name(enum dg_verdict v)
{
	switch (v) {
	case DG_OK:
		return "ok";
	case DG_BAD_PORT:
		return "denied source port";
	case DG_BAD_ADDRESS:
		return "bad source address";
	}
	return "unknown";
}
