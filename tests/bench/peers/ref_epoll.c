/*
 * ref_epoll.c - reference server for the benchmark: one thread, one
 * level-triggered epoll set, non-blocking TCP sessions and a UDP socket on
 * the same port.  The yardstick of the event model (TCP and UDP) and of the
 * sequential model's UDP.  See ref_common.h.
 *
 * A wake-up costs at most one read per session: with level triggering,
 * bytes left in the socket are reported again by the next epoll_wait.
 */
#include <sys/epoll.h>

#include "ref_common.h"

#define BATCH	64		/* accepts or datagrams per wake-up */

struct conn {
	int		fd;
	uint32_t	events;		/* the interest set: EPOLLIN or EPOLLOUT */
	struct sess	s;
};

static int ep;
static char tcp_mark, udp_mark;		/* epoll tags of the two listeners */

static void
watch(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events != events &&
	    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl");
	c->events = events;
}

/* Write what is pending, answer what is buffered, read once; repeat. */
static void
on_conn(struct conn *c)
{
	struct sess *s = &c->s;
	bool did_read = false;
	ssize_t n;

	for (;;) {
		if (s->outoff < s->outlen) {
			n = write(c->fd, s->out + s->outoff,
			    s->outlen - s->outoff);
			if (n < 0 && errno == EAGAIN) {
				watch(c, EPOLLOUT);	/* the client is slow */
				return;
			}
			if (n < 0)
				break;
			s->outoff += (size_t)n;
			continue;
		}
		s->outoff = s->outlen = 0;
		if (s->ending)
			break;
		serve(s);
		if (s->outlen > 0 || s->ending)
			continue;
		if (did_read) {
			watch(c, EPOLLIN);
			return;
		}
		n = read(c->fd, s->in + s->inlen, INCAP - s->inlen);
		if (n < 0 && errno == EAGAIN) {
			watch(c, EPOLLIN);
			return;
		}
		if (n < 0)
			break;
		if (n == 0)
			serve_eof(s);
		else
			s->inlen += (size_t)n;
		did_read = true;
	}
	close(c->fd);	/* also leaves the epoll set */
	free(c);
}

static void
on_accept(int lfd)
{
	struct epoll_event ev;
	struct conn *c;
	int i, fd;

	for (i = 0; i < BATCH; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;		/* EAGAIN, or an error LT reports again */
		if ((c = malloc(sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		c->s.inlen = c->s.outlen = c->s.outoff = 0;
		c->s.ending = false;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
	}
}

static void
on_udp(int fd)
{
	static struct sess dg;		/* only its out[] is used */
	char buf[MAXLINE + 3];		/* a cut datagram is still too long */
	struct sockaddr_storage peer;
	socklen_t plen;
	ssize_t n;
	int i;

	for (i = 0; i < BATCH; i++) {
		plen = sizeof(peer);
		n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		serve_datagram(&dg, buf, (size_t)n, sizeof(buf));
		(void)sendto(fd, dg.out, dg.outlen, 0,
		    (struct sockaddr *)&peer, plen);
	}
}

int
main(int argc, char **argv)
{
	int port = ref_init(argc, argv), tfd, ufd, i, n;
	struct epoll_event ev, evs[256];

	tfd = open_socket(SOCK_STREAM | SOCK_NONBLOCK, port);
	ufd = open_socket(SOCK_DGRAM | SOCK_NONBLOCK, port);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = &tcp_mark;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
		die("epoll_ctl");
	ev.data.ptr = &udp_mark;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev) < 0)
		die("epoll_ctl");
	notify_ready();
	for (;;) {
		if ((n = epoll_wait(ep, evs, 256, -1)) < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tcp_mark)
				on_accept(tfd);
			else if (evs[i].data.ptr == &udp_mark)
				on_udp(ufd);
			else
				on_conn(evs[i].data.ptr);
		}
	}
}
