/*
 * netaddr.c - socket address helpers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "escape.h"
#include "netaddr.h"

void
netaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t bufsz)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	size_t plen;

	if (len < (socklen_t)sizeof(sa_family_t)) {
		snprintf(buf, bufsz, "unix:unnamed");
		return;
	}
	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, bufsz, "%s:%u", host, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, bufsz, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	case AF_UNIX:
		plen = len > offsetof(struct sockaddr_un, sun_path) ?
		    len - offsetof(struct sockaddr_un, sun_path) : 0;
		if (plen == 0) {
			snprintf(buf, bufsz, "unix:unnamed");
		} else if (sun->sun_path[0] == '\0') {
			buf[0] = '@';
			log_escape_word(buf + 1, bufsz - 1, sun->sun_path + 1,
			    plen - 1);
		} else {
			log_escape_word(buf, bufsz, sun->sun_path,
			    strnlen(sun->sun_path, plen));
		}
		break;
	default:
		snprintf(buf, bufsz, "family-%d", sa->sa_family);
	}
}

int
netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

_Static_assert(sizeof(struct netaddr_source) ==
    sizeof(struct cidr) + sizeof(uint32_t), "a source has no padding");

void
netaddr_source(const struct sockaddr *sa, uint32_t unix_uid,
    unsigned prefix4, unsigned prefix6, struct netaddr_source *src)
{
	memset(src, 0, sizeof(*src));
	if (cidr_of_peer(sa, prefix4, prefix6, &src->net))
		return;
	/* Unix peers: one source per user id. */
	src->net.family = AF_UNIX;
	src->uid = unix_uid;
}

bool
netaddr_source_equal(const struct netaddr_source *a,
    const struct netaddr_source *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

void
netaddr_source_format(const struct netaddr_source *src, char *buf,
    size_t bufsz)
{
	if (src->net.family == AF_UNIX)
		snprintf(buf, bufsz, "uid %u", (unsigned)src->uid);
	else
		cidr_format(&src->net, buf, bufsz);
}

bool
netaddr_equal(const struct sockaddr *a, socklen_t alen,
    const struct sockaddr *b, socklen_t blen)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->sa_family != b->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET:
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
	case AF_UNIX:
		return alen == blen && memcmp(a, b, alen) == 0;
	}
	return false;
}
