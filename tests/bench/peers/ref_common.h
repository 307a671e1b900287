/*
 * ref_common.h - what the benchmark's minimal C reference servers share:
 * the line protocol (SPEC section 1) with a ctime text formatted at most
 * once a second, the loopback sockets and the readiness message.
 *
 * The references (ref_epoll.c, ref_thread.c, ref_fork.c) are the yardstick
 * of `make bench`: the least a server can do for the same replies, so that
 * a model's ratio to its reference says what the daemon's own machinery
 * costs.  They do only what every reply needs; no limits, no logging, no
 * graceful stop (SIGTERM's default action ends them).  Header-only
 * (static inline, as each reference uses a part), so that each reference
 * is one file built with the daemon's flags.
 *
 * usage: ref_NAME PORT: serves 127.0.0.1:PORT and, when NOTIFY_SOCKET is
 * set, sends READY=1 there once it listens (tests/bench/waitready.py).
 */
#ifndef REF_COMMON_H
#define REF_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXLINE		4096			/* the daemon's default limit */
#define INCAP		(MAXLINE + 2)		/* a longest line, CR, LF */
#define REPLY_MAX	(MAXLINE + 26)		/* TEXT SP ctime24 LF */
#define OUTCAP		(4 * REPLY_MAX)

/* One stream session's buffers; also a datagram's reply buffer. */
struct sess {
	size_t	inlen;		/* bytes in in[], no complete line among them
				   once serve() ran with room in out[] */
	size_t	outlen;		/* reply bytes in out[] */
	size_t	outoff;		/* of which already written */
	bool	ending;		/* exit or error: close once out[] is sent */
	char	in[INCAP];
	char	out[OUTCAP];
};

static inline void __attribute__((noreturn))
die(const char *what)
{
	perror(what);
	exit(1);
}

/* The 24-character ctime text of now, formatted once a second per thread. */
static inline const char *
ts_now(void)
{
	static __thread time_t sec = (time_t)-1;
	static __thread char text[26];
	time_t now = time(NULL);

	if (now != sec) {
		if (ctime_r(&now, text) == NULL)
			die("ctime_r");
		sec = now;
	}
	return text;
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* Answer one line (terminator removed) into s->out: REPLY_MAX bytes room. */
static inline void
line(struct sess *s, const char *text, size_t len)
{
	size_t b = 0, e = len;
	char *o = s->out + s->outlen;

	if (len > MAXLINE) {
		s->outlen += (size_t)sprintf(o,
		    "ERROR line too long (limit %d bytes)\n", MAXLINE);
		s->ending = true;
		return;
	}
	memcpy(o, text, len);
	o[len] = ' ';
	memcpy(o + len + 1, ts_now(), 24);
	o[len + 25] = '\n';
	s->outlen += len + 26;
	while (b < e && is_space(text[b]))
		b++;
	while (e > b && is_space(text[e - 1]))
		e--;
	if (e - b == 4 && memcmp(text + b, "exit", 4) == 0)
		s->ending = true;
}

/*
 * Answer the complete lines in s->in while out[] has room for one more
 * reply, and keep the rest (a partial line, or lines not yet answered) at
 * the front of in[].  A full in[] without LF holds a line that is too long.
 */
static inline void
serve(struct sess *s)
{
	char *p = s->in, *end = s->in + s->inlen, *lf;
	size_t len;

	while (!s->ending && s->outlen + REPLY_MAX <= OUTCAP &&
	    (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		len = (size_t)(lf - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		line(s, p, len);
		p = lf + 1;
	}
	if (!s->ending && p == s->in && s->inlen == INCAP &&
	    s->outlen + REPLY_MAX <= OUTCAP)
		line(s, p, INCAP);	/* no LF in INCAP bytes: too long */
	s->inlen = (size_t)(end - p);
	memmove(s->in, p, s->inlen);
}

/* At EOF a pending partial line is answered, then the session ends. */
static inline void
serve_eof(struct sess *s)
{
	if (s->inlen > 0)
		line(s, s->in, s->inlen);
	s->inlen = 0;
	s->ending = true;
}

/* One datagram in buf[0..n) (n as MSG_TRUNC reports it, may exceed cap). */
static inline void
serve_datagram(struct sess *s, const char *buf, size_t n, size_t cap)
{
	size_t len = n < cap ? n : cap;

	if (len > 0 && buf[len - 1] == '\n' && --len > 0 && buf[len - 1] == '\r')
		len--;
	s->outlen = 0;
	s->ending = false;
	line(s, buf, len);
}

static inline int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A blocking session on fd: read, answer, write, until exit or EOF. */
static inline void
serve_blocking(int fd)
{
	struct sess s;
	ssize_t n;

	s.inlen = s.outlen = 0;
	s.ending = false;
	for (;;) {
		serve(&s);
		if (s.outlen > 0) {
			if (write_all(fd, s.out, s.outlen) < 0)
				break;
			s.outlen = 0;
			continue;	/* lines may be left in in[] */
		}
		if (s.ending)
			break;
		n = read(fd, s.in + s.inlen, INCAP - s.inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0)
			serve_eof(&s);
		else
			s.inlen += (size_t)n;
	}
	close(fd);
}

/* A socket of type on 127.0.0.1:port, listening if it is a stream. */
static inline int
open_socket(int type, int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, type | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    ((type & SOCK_STREAM) && listen(fd, 4096) < 0))
		die("socket");
	return fd;
}

/* PORT from argv; the process set up as every reference needs it. */
static inline int
ref_init(int argc, char **argv)
{
	int port = argc == 2 ? atoi(argv[1]) : 0;

	if (port < 1 || port > 65535) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		exit(64);
	}
	tzset();
	signal(SIGPIPE, SIG_IGN);
	return port;
}

/* READY=1 to NOTIFY_SOCKET (a leading '@': abstract), if it is set. */
static inline void
notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len;
	int fd;

	if (path == NULL)
		return;
	len = strlen(path);
	if (len == 0 || len >= sizeof(sa.sun_path))
		die("NOTIFY_SOCKET");
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		die("NOTIFY_SOCKET");
	close(fd);
}

#endif
