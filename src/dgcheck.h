/*
 * dgcheck.h - datagram source checks against loops and reflection, after
 * FreeBSD inetd's check_loop and OpenBSD inetd's dg_badinput.  Pure.
 */
#ifndef ECHOTIMED_DGCHECK_H
#define ECHOTIMED_DGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum dg_verdict {
	DG_OK,
	DG_BAD_PORT,		/* source port in the deny list */
	DG_BAD_ADDRESS,		/* broadcast, multicast, 0/8, unspecified */
};

/*
 * A set of denied source ports, one bit per port (8 KiB): a datagram's
 * check costs the same whatever the list's length.
 */
struct dg_ports {
	uint64_t	bits[65536 / 64];
};

/* Empty p. */
void		dg_ports_clear(struct dg_ports *p);
/* Deny port in p; one outside 0..65535 denies nothing. */
void		dg_ports_add(struct dg_ports *p, int port);

/*
 * Judge the source of a datagram.  p holds the denied source ports (the
 * configured list plus the daemon's own datagram ports); NULL denies none.
 * AF_UNIX sources are always DG_OK.  v4-mapped v6 addresses are judged as
 * v4.
 */
enum dg_verdict	dg_check_source(const struct sockaddr *sa,
		    const struct dg_ports *p);
/* "ok", "denied source port", "bad source address". */
const char	*dg_verdict_name(enum dg_verdict v);

#endif
