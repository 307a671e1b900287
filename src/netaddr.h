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
 * Key identifying the source host for limits: 16 bytes of address (v4 as
 * v4-mapped v6) for IP peers; for Unix peers the uid (from SO_PEERCRED when
 * known, else 0 for everyone).  Returns the key length.
 */
size_t	netaddr_source_key(const struct sockaddr *sa, uint32_t unix_uid,
	    uint8_t key[16]);
/* True if two socket addresses are the same (family, address, port/path). */
bool	netaddr_equal(const struct sockaddr *a, socklen_t alen,
	    const struct sockaddr *b, socklen_t blen);

#endif
