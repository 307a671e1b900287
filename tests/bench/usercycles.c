/*
 * usercycles.c - LD_PRELOAD into a datagram server: the time it spends in
 * its own code between two system calls, split by which calls they are.
 *
 * The server's CPU time per datagram says how much more one server costs
 * than another, not where; on a virtual machine without performance
 * counters, sampling profilers cannot say it either (their samples land
 * after system calls).  This shim reads the time-stamp counter as each
 * epoll_wait(), recvfrom(), sendto(), recvmmsg() or sendmmsg() enters and
 * leaves, and adds the cycles from one call's return to the next call's
 * entry to a segment named by the two calls:
 *
 *   wake      epoll_wait() returned, to the first read
 *   answer    a read that brought a datagram, to the next send
 *   next      a send, to the next read
 *   sleep     a read that found the queue empty, to epoll_wait()
 *
 * Its bookkeeping falls outside the segments, all but the few cycles
 * of entering a wrapper and calling through to libc.  Every 20000 calls
 * and at exit it writes the totals (cycles and counts, the datagrams
 * read, the TSC rate) to $USERCYCLES_DIR/PID, through a temporary file
 * and rename(), so a server killed by a signal leaves figures up to its
 * last 20000 calls and a reader never sees half a file.
 *
 * For single-threaded servers (the counters are plain globals) that use
 * these calls: recvmsg(), sendmsg(), read() and epoll_pwait() are not
 * counted, so a server that uses them (a Unix datagram socket, for one)
 * has their time in the segments around them.  x86-64 only (rdtsc);
 * elsewhere it counts nothing and writes nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#define HAVE_TSC 1
static inline uint64_t tsc(void) { return __rdtsc(); }
#else
#define HAVE_TSC 0
static inline uint64_t tsc(void) { return 0; }
#endif

enum call { WAIT, RECV, EMPTY, SEND, NCALLS };	/* EMPTY: a read of nothing */

static const char *const call_name[NCALLS] = { "wait", "recv", "empty", "send" };
static uint64_t cycles[NCALLS][NCALLS], count[NCALLS][NCALLS];
static uint64_t left_at, calls, datagrams, tsc0, ns0;
static int last = -1;

static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *,
    socklen_t *);
static ssize_t (*real_sendto)(int, const void *, size_t, int,
    const struct sockaddr *, socklen_t);
static int (*real_recvmmsg)(int, struct mmsghdr *, unsigned, int,
    struct timespec *);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned, int);

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
dump(void)
{
	const char *dir = getenv("USERCYCLES_DIR");
	char path[512], tmp[520];
	uint64_t ns = now_ns() - ns0;
	FILE *f;
	int i, j;

	if (!HAVE_TSC || !dir || last < 0)
		return;
	snprintf(path, sizeof(path), "%s/%d", dir, (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return;
	fprintf(f, "datagrams %llu\ntsc_hz %.0f\n",
	    (unsigned long long)datagrams,
	    ns ? (double)(tsc() - tsc0) * 1e9 / (double)ns : 0.0);
	for (i = 0; i < NCALLS; i++)
		for (j = 0; j < NCALLS; j++)
			if (count[i][j])
				fprintf(f, "%s-%s %llu %llu\n", call_name[i],
				    call_name[j],
				    (unsigned long long)count[i][j],
				    (unsigned long long)cycles[i][j]);
	if (fclose(f) == 0)
		(void)rename(tmp, path);
}

/* The real calls, looked up once, before main() runs. */
static void __attribute__((constructor))
resolve(void)
{
	real_epoll_wait = (__typeof__(real_epoll_wait))dlsym(RTLD_NEXT,
	    "epoll_wait");
	real_recvfrom = (__typeof__(real_recvfrom))dlsym(RTLD_NEXT, "recvfrom");
	real_sendto = (__typeof__(real_sendto))dlsym(RTLD_NEXT, "sendto");
	real_recvmmsg = (__typeof__(real_recvmmsg))dlsym(RTLD_NEXT, "recvmmsg");
	real_sendmmsg = (__typeof__(real_sendmmsg))dlsym(RTLD_NEXT, "sendmmsg");
}

/* At exit (echotimed's on SIGTERM): the totals since the last dump. */
static void __attribute__((destructor))
dump_at_exit(void)
{
	dump();
}

/* A call entered at t: the segment since the last one returned.  errno
 * is kept (clock_gettime() sets it only on failure). */
static inline void
entered(enum call k, uint64_t t)
{
	if (last >= 0) {
		if (t >= left_at) {	/* the TSC never runs backwards here */
			cycles[last][k] += t - left_at;
			count[last][k]++;
		}
	} else {
		tsc0 = t;
		ns0 = now_ns();
	}
}

/* A call of kind k returned; errno is kept. */
static inline void
returned(enum call k)
{
	int e = errno;

	last = (int)k;
	if (++calls % 20000 == 0)
		dump();
	errno = e;
	left_at = tsc();
}

int
epoll_wait(int ep, struct epoll_event *ev, int n, int timeout)
{
	uint64_t t = tsc();
	int r;

	entered(WAIT, t);
	r = real_epoll_wait(ep, ev, n, timeout);
	returned(WAIT);
	return r;
}

/* A read is "empty" or not only once it returns: its segment waits. */
ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa,
    socklen_t *salen)
{
	uint64_t t = tsc();
	ssize_t r = real_recvfrom(fd, buf, len, flags, sa, salen);

	datagrams += r >= 0;
	entered(r < 0 ? EMPTY : RECV, t);
	returned(r < 0 ? EMPTY : RECV);
	return r;
}

ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *sa, socklen_t *salen)
{
	if (len > buflen)	/* what glibc's check does */
		abort();
	return recvfrom(fd, buf, len, flags, sa, salen);
}

int
recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags,
    struct timespec *timeout)
{
	uint64_t t = tsc();
	int r = real_recvmmsg(fd, v, n, flags, timeout);

	datagrams += r > 0 ? (uint64_t)r : 0;
	entered(r <= 0 ? EMPTY : RECV, t);
	returned(r <= 0 ? EMPTY : RECV);
	return r;
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *sa, socklen_t salen)
{
	uint64_t t = tsc();
	ssize_t r;

	entered(SEND, t);
	r = real_sendto(fd, buf, len, flags, sa, salen);
	returned(SEND);
	return r;
}

int
sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	uint64_t t = tsc();
	int r;

	entered(SEND, t);
	r = real_sendmmsg(fd, v, n, flags);
	returned(SEND);
	return r;
}
