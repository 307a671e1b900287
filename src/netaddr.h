/*
 * netaddr.h - socket address helpers: text forms for logs and STATUS, and
 * the "source" identity used for per-source limits.  Never log.
 */
#ifndef ECHOTIMED_NETADDR_H
#define ECHOTIMED_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"

/* Big enough for "[v6%scope]:port" and "unix:" plus a 108-byte path. */
#define NETADDR_STRLEN	128

/*
 * Text form: "127.0.0.1:9999", "[::1]:9999", "/path", "@abstract", or
 * "unix:unnamed".  Unprintable bytes of Unix paths are escaped.
 */
void	netaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
	    size_t bufsz);
/* Port of an AF_INET/AF_INET6 address, -1 otherwise. */
int	netaddr_port(const struct sockaddr *sa);
/*
 * The source a peer counts as for the per-source limits (the session cap
 * and the datagram rate limit): the prefix holding its address, so that
 * one IPv6 /64 is one source and not 2^64 of them, or a Unix peer's user.
 * Plain bytes without padding: compared with memcmp() and hashed whole.
 */
struct netaddr_source {
	struct cidr	net;	/* IP peers; family AF_UNIX for Unix peers */
	uint32_t	uid;	/* Unix peers: SO_PEERCRED's uid, else 0 */
};

/*
 * The source of sa: prefix4 bits of an IPv4 address (a v4-mapped IPv6
 * peer counts as IPv4), prefix6 bits of an IPv6 one; unix_uid for others.
 */
void	netaddr_source(const struct sockaddr *sa, uint32_t unix_uid,
	    unsigned prefix4, unsigned prefix6, struct netaddr_source *src);
/* True if two sources are the same. */
bool	netaddr_source_equal(const struct netaddr_source *a,
	    const struct netaddr_source *b);
/* Text for logs: "192.0.2.0/24", "2001:db8:1::/64" or "uid 1000". */
void	netaddr_source_format(const struct netaddr_source *src, char *buf,
	    size_t bufsz);
/* True if two socket addresses are the same (family, address, port/path). */
bool	netaddr_equal(const struct sockaddr *a, socklen_t alen,
	    const struct sockaddr *b, socklen_t blen);

#endif
