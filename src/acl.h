/*
 * acl.h - CIDR prefixes and allow/deny access lists.  Pure: no sockets are
 * opened, nothing is logged.
 */
#ifndef ECHOTIMED_ACL_H
#define ECHOTIMED_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_STRLEN	64

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order, host bits zeroed */
	unsigned	prefix;		/* 0..32 or 0..128 */
};

struct acl {
	const struct cidr *allow;
	size_t		 nallow;
	const struct cidr *deny;
	size_t		 ndeny;
};

/* Parse "a.b.c.d[/n]" or "x::y[/n]"; host bits must be zero. 0 or -EINVAL. */
int	cidr_parse(const char *s, struct cidr *out);
/* Canonical text form into buf (CIDR_STRLEN bytes). */
void	cidr_format(const struct cidr *c, char *buf, size_t len);
/* True if sa (AF_INET/AF_INET6, v4-mapped v6 treated as v4) is inside c. */
bool	cidr_match(const struct cidr *c, const struct sockaddr *sa);
/*
 * The prefix of sa's address: prefix4 bits of an IPv4 peer (a v4-mapped
 * v6 peer counts as IPv4), prefix6 bits of an IPv6 peer, host bits zeroed.
 * *out is zeroed first, so two results compare equal byte by byte.  False
 * (and *out zeroed) for non-IP peers.
 */
bool	cidr_of_peer(const struct sockaddr *sa, unsigned prefix4,
	    unsigned prefix6, struct cidr *out);
/*
 * Decide for a peer: deny wins over allow, an empty allow list allows all.
 * Non-IP peers (AF_UNIX) are always permitted.
 */
bool	acl_permits(const struct acl *acl, const struct sockaddr *sa);

#endif
