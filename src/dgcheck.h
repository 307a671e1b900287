/*
 * dgcheck.h - datagram source checks against loops and reflection, after
 * FreeBSD inetd's check_loop and OpenBSD inetd's dg_badinput.  Pure.
 */
#ifndef ECHOTIMED_DGCHECK_H
#define ECHOTIMED_DGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum dg_verdict {
	DG_OK,
	DG_BAD_PORT,		/* source port in the deny list */
	DG_BAD_ADDRESS,		/* broadcast, multicast, 0/8, unspecified */
};

/*
 * Judge the source of a datagram.  ports[0..nports) are denied source ports
 * (the configured list plus the daemon's own datagram ports).  AF_UNIX
 * sources are always DG_OK.  v4-mapped v6 addresses are judged as v4.
 */
enum dg_verdict	dg_check_source(const struct sockaddr *sa, const int *ports,
		    size_t nports);
/* "ok", "denied source port", "bad source address". */
const char	*dg_verdict_name(enum dg_verdict v);

#endif
