/*
 * loadgen - load generator and reply checker for echotimed and its peers.
 *
 * One thread, one epoll set, non-blocking sockets.  Every reply is checked
 * against the line protocol (SPEC section 1): the exact echo of the payload,
 * one space, a 24-character ctime() timestamp whose day and month names,
 * digits, calendar date and weekday are all consistent (and, unless
 * --no-time-check, within a few seconds of this machine's local time), and
 * a final LF.  Errors are counted by kind and any error makes the exit
 * status nonzero.
 *
 * Every loop is bounded: the run never lasts longer than --duration (at most
 * 120 s), each request waits at most --timeout, and the run stops early once
 * --max-errors errors were counted.  Only loopback and Unix-domain targets
 * are accepted.
 *
 * Modes:
 *   persistent  N connections, each in a closed loop: one line, its reply,
 *               the next line.
 *   connect     N workers, each: connect, send "PAYLOAD\nexit\n", read both
 *               replies and the server's EOF, close, repeat.
 *   idle        open N connections (in batches of --batch), hold them all,
 *               then check that every one still answers one line.
 *   udp         N sockets, each in a closed loop of one datagram in, one
 *               datagram back.
 *
 * Output: a human summary, then one machine-readable line starting with
 * "RESULT ".  Build: cc -std=gnu11 -O2 -Wall -Wextra -Wshadow -Werror
 * -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TS_LEN		24		/* "Fri Nov 27 02:10:42 2026" */
#define REPLY_EXTRA	(1 + TS_LEN + 1)	/* SP TIMESTAMP LF */
#define MAX_DURATION	120.0
#define MAX_CLIENTS	200000u
#define MAX_PAYLOAD	65000u
#define SCAN_NS		(5 * 1000000ull)	/* timeout/backoff scan period */
#define BACKOFF_NS	(10 * 1000000ull)	/* before reconnecting after an error */
#define UNIX_AGAIN_NS	(1 * 1000000ull)	/* unix backlog full: retry soon */
#define TIME_SLACK_S	2		/* allowed clock disagreement */
#define NSEC		1000000000ull

enum mode { MODE_PERSISTENT, MODE_CONNECT, MODE_IDLE, MODE_UDP };
static const char *const mode_names[] = {
	"persistent", "connect", "idle", "udp",
};

/* Error kinds; OK is not one of them. */
enum err {
	ERR_REFUSED,		/* connect: ECONNREFUSED (or ICMP for UDP) */
	ERR_RESET,		/* ECONNRESET / EPIPE */
	ERR_CLOSED,		/* the server closed without being asked to */
	ERR_TIMEOUT,		/* no (complete) answer within --timeout */
	ERR_BAD,		/* malformed reply */
	ERR_SHORT,		/* truncated reply (EOF or datagram without LF) */
	ERR_ERROR_REPLY,	/* reply starting with "ERROR " */
	ERR_BAD_TIME,		/* well-formed timestamp far from local time */
	ERR_CONNECT,		/* other connect() failure */
	ERR_OTHER,		/* any other socket error */
	ERR_MAX
};
#define OK (-1)
static const char *const err_names[ERR_MAX] = {
	"refused", "reset", "closed", "timeout", "bad", "short",
	"error_reply", "bad_time", "connect", "other",
};

enum cstate {
	CS_IDLE,	/* no socket, nothing scheduled (or parked at the cap) */
	CS_BACKOFF,	/* no socket; start_conn() again at deadline */
	CS_CONNECTING,	/* connect() in progress */
	CS_SENDING,	/* request partly written, waiting for EPOLLOUT */
	CS_WAITING,	/* request written, waiting for the reply */
	CS_EOFWAIT,	/* connect mode: both replies read, waiting for EOF */
	CS_HOLD,	/* idle mode: connected, holding */
	CS_DONE,	/* idle mode: probed and answered, still open */
	CS_DEAD,	/* idle mode: failed, never retried */
};

struct conn {
	int		 fd;
	enum cstate	 st;
	bool		 want_out;	/* EPOLLOUT in the interest set */
	uint32_t	 soff;		/* request bytes written */
	uint32_t	 rlen;		/* bytes in rbuf */
	uint32_t	 nrep;		/* replies verified for this request */
	uint64_t	 t0;		/* start of the current operation */
	uint64_t	 deadline;	/* timeout or backoff end */
	char		*rbuf;
};

/* Log-linear (HDR-style) latency histogram in nanoseconds, < 1% error. */
#define H_SUBBITS	7
#define H_SUB		(1u << H_SUBBITS)
#define H_N		(2 * H_SUB + 64 * H_SUB)

static unsigned
h_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * H_SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	shift = msb - H_SUBBITS;
	return 2 * H_SUB + (shift - 1) * H_SUB +
	    (unsigned)((v >> shift) - H_SUB);
}

static uint64_t
h_value(unsigned idx)
{
	unsigned shift;
	uint64_t sub;

	if (idx < 2 * H_SUB)
		return idx;
	shift = (idx - 2 * H_SUB) / H_SUB + 1;
	sub = (idx - 2 * H_SUB) % H_SUB + H_SUB;
	return (sub << shift) + ((1ull << shift) >> 1);
}

struct srv_sample {
	bool		ok;
	double		cpu_s;		/* self + reaped + live children */
	double		cpu_ticks_s;	/* the same, self in clock ticks */
	bool		cpu_clock;	/* cpu_s has self from its clock */
	long		rss_kib;
	long		hwm_kib;
	long		child_rss_kib;
	long		pss_kib;	/* proportional set size, all processes */
	int		nchildren;
	long		sleeps;		/* its main thread's voluntary context
					 * switches, or -1 */
};

static struct {
	/* options */
	enum mode	 mode;
	const char	*target;
	unsigned	 clients;
	double		 duration;
	double		 timeout;
	double		 hold;
	uint64_t	 max_requests;	/* 0 = no cap */
	uint64_t	 max_errors;
	unsigned	 batch;
	pid_t		 server_pid;
	bool		 time_check;
	const char	*payload;
	size_t		 plen;

	/* target */
	int		 family;
	int		 socktype;
	bool		 is_unix;
	struct sockaddr_storage addr;
	socklen_t	 addrlen;

	/* run state */
	char		*req;
	size_t		 reqlen;
	size_t		 rcap;
	char		*scratch;	/* UDP receive buffer */
	size_t		 scratch_len;
	int		 ep;
	struct conn	*conns;
	uint64_t	 timeout_ns;
	uint64_t	 errs[ERR_MAX];
	uint64_t	 nerr;
	uint64_t	 ops;
	uint64_t	 issued;
	uint64_t	 first_op_start;
	uint64_t	 last_op_end;
	bool		 stopping;	/* no new requests */
	bool		 aborted;	/* max errors or signal */
	bool		 draining;	/* after the run: finish, do not count */

	/* idle mode */
	unsigned	 next_start;	/* next connection to open / probe */
	unsigned	 inflight;
	unsigned	 established;
	unsigned	 answered;
	uint64_t	 connect_deadline;

	/* latency */
	uint64_t	 hist[H_N];
	uint64_t	 lat_n;
	uint64_t	 lat_min;
	uint64_t	 lat_max;
	long double	 lat_sum;
} G;

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* Local wall-clock time as seconds since the epoch "as if UTC". */
static int64_t
local_now_s(void)
{
	static time_t cached = (time_t)-1;
	static long gmtoff;
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached) {
		localtime_r(&ts.tv_sec, &tm);
		gmtoff = tm.tm_gmtoff;
		cached = ts.tv_sec;
	}
	return (int64_t)ts.tv_sec + gmtoff;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool
is_d(char c)
{
	return c >= '0' && c <= '9';
}

static int
two(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * Check a ctime() timestamp "Www Mmm dd hh:mm:ss yyyy" (day space-padded,
 * as "%3d" prints it).  lo/hi bound the local time it may show.
 */
static int
check_ts(const char *s, int64_t lo, int64_t hi)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	int wd = -1, mon = -1, day, hh, mm, ss, year, i;
	unsigned dim;
	int64_t dn, t;

	for (i = 0; i < 7; i++)
		if (memcmp(s, days + 3 * i, 3) == 0)
			wd = i;
	for (i = 0; i < 12; i++)
		if (memcmp(s + 4, mons + 3 * i, 3) == 0)
			mon = i;
	if (wd < 0 || mon < 0)
		return ERR_BAD;
	if (s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[13] != ':' ||
	    s[16] != ':' || s[19] != ' ')
		return ERR_BAD;
	if (!(s[8] == ' ' || (s[8] >= '1' && s[8] <= '3')) || !is_d(s[9]))
		return ERR_BAD;
	for (i = 11; i < 19; i += 3)
		if (!is_d(s[i]) || !is_d(s[i + 1]))
			return ERR_BAD;
	for (i = 20; i < 24; i++)
		if (!is_d(s[i]))
			return ERR_BAD;
	day = (s[8] == ' ' ? 0 : s[8] - '0') * 10 + (s[9] - '0');
	hh = two(s + 11);
	mm = two(s + 14);
	ss = two(s + 17);
	year = two(s + 20) * 100 + two(s + 22);
	dim = mdays[mon];
	if (mon == 1 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		dim = 29;
	if (day < 1 || (unsigned)day > dim || hh > 23 || mm > 59 || ss > 60)
		return ERR_BAD;
	dn = days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
	if ((((dn + 4) % 7) + 7) % 7 != wd)
		return ERR_BAD;		/* weekday does not match the date */
	if (G.time_check) {
		t = dn * 86400 + hh * 3600 + mm * 60 + ss;
		if (t < lo || t > hi)
			return ERR_BAD_TIME;
	}
	return OK;
}

/*
 * Verify one reply (stream line with its LF, or a whole datagram) to a
 * request whose text was text[0..tlen), sent age_ns ago.
 */
static int
verify(const char *buf, size_t len, const char *text, size_t tlen,
    uint64_t age_ns)
{
	size_t want = tlen + REPLY_EXTRA;
	int64_t now;

	if (len >= 6 && memcmp(buf, "ERROR ", 6) == 0 &&
	    !(tlen >= 6 && memcmp(text, "ERROR ", 6) == 0))
		return ERR_ERROR_REPLY;
	if (len == 0 || buf[len - 1] != '\n')
		return len < want ? ERR_SHORT : ERR_BAD;
	if (len != want || memcmp(buf, text, tlen) != 0 || buf[tlen] != ' ')
		return ERR_BAD;
	now = local_now_s();
	return check_ts(buf + tlen + 1,
	    now - (int64_t)(age_ns / NSEC) - TIME_SLACK_S, now + TIME_SLACK_S);
}

static void
record(uint64_t ns)
{
	G.hist[h_index(ns)]++;
	if (G.lat_n == 0 || ns < G.lat_min)
		G.lat_min = ns;
	if (ns > G.lat_max)
		G.lat_max = ns;
	G.lat_sum += ns;
	G.lat_n++;
}

static double
percentile_us(double q)
{
	uint64_t need, cum = 0, v;
	unsigned i;

	if (G.lat_n == 0)
		return 0;
	need = (uint64_t)(q * (double)G.lat_n + 0.999999);
	if (need < 1)
		need = 1;
	for (i = 0; i < H_N; i++) {
		cum += G.hist[i];
		if (cum >= need)
			break;
	}
	v = h_value(i < H_N ? i : H_N - 1);
	if (v > G.lat_max)
		v = G.lat_max;
	if (v < G.lat_min)
		v = G.lat_min;
	return (double)v / 1000.0;
}

/* --- server statistics from /proc ------------------------------------ */

static int
read_small(const char *path, char *buf, size_t size)
{
	int fd;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/*
 * ppid, the process's own utime+stime (all its threads, exited ones too)
 * and its reaped children's cutime+cstime, in clock ticks, of pid.
 */
static int
proc_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks,
    unsigned long long *reaped)
{
	char path[64], buf[2048], *p, st;
	unsigned long long ut, stt, cut, cst;
	int pp;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof buf) < 0)
		return -1;
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	if (sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu %llu %llu", &st, &pp, &ut, &stt, &cut, &cst) != 6)
		return -1;
	*ppid = pp;
	*ticks = ut + stt;
	*reaped = cut + cst;
	return 0;
}

/*
 * The process's own CPU time (all its threads, exited ones too) in
 * seconds, from its CPU-time clock, where /proc/PID/stat's utime+stime
 * come in truncated clock ticks: a 2 s round of a UDP server is some 70
 * ticks, so a tick would be 1.5 % of a CPU-per-datagram figure.  The clock
 * counts nanoseconds; a thread on a CPU right now is counted up to its
 * last scheduler tick.  -1 if the clock cannot be read.
 */
static double
proc_cpu_clock_s(pid_t pid)
{
	struct timespec ts;
	clockid_t clk;

	if (clock_getcpuclockid(pid, &clk) != 0 ||
	    clock_gettime(clk, &ts) != 0)
		return -1;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Time stolen from this virtual machine by its host, summed over all CPUs
 * (the "steal" column of /proc/stat), in seconds; -1 if unknown.  On a
 * shared VM it tells a slow round from a slow server.
 */
static double
steal_s(void)
{
	char buf[512];
	unsigned long long st;
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || read_small("/proc/stat", buf, sizeof buf) < 0 ||
	    sscanf(buf, "cpu %*u %*u %*u %*u %*u %*u %*u %llu", &st) != 1)
		return -1;
	return (double)st / (double)hz;
}

/* A "Key: N kB" (or "Key: N") value from /proc/PID/<file>, or -1. */
static long
proc_kib(pid_t pid, const char *file, const char *key)
{
	char path[64], buf[8192], *p;
	size_t klen = strlen(key);

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	if (read_small(path, buf, sizeof buf) < 0)
		return -1;
	for (p = buf; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, key, klen) == 0)
			return strtol(p + klen, NULL, 10);
	return -1;
}

/* Open descriptors of a (non-forking) server, or -1 if unknown. */
static long
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * CPU time of the server: its own (from its CPU-time clock, in ticks only
 * if that cannot be read), its reaped children's (cutime+cstime) and its
 * live children's.  A child's time moves from the live sum into the
 * parent's cutime when it is reaped, so the total only grows and deltas are
 * meaningful for fork servers too.
 */
static void
sample_server(struct srv_sample *s, bool memory)
{
	unsigned long long own, ticks, cticks, creaped;
	double hz = (double)sysconf(_SC_CLK_TCK), own_s;
	pid_t ppid, cpid;
	struct dirent *de;
	DIR *d;
	long kib;

	memset(s, 0, sizeof *s);
	if (G.server_pid <= 0 ||
	    proc_stat(G.server_pid, &ppid, &own, &ticks) < 0)
		return;
	own_s = proc_cpu_clock_s(G.server_pid);
	s->sleeps = proc_kib(G.server_pid, "status", "voluntary_ctxt_switches:");
	d = opendir("/proc");
	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] < '1' || de->d_name[0] > '9')
				continue;
			cpid = (pid_t)atoi(de->d_name);
			if (proc_stat(cpid, &ppid, &cticks, &creaped) < 0 ||
			    ppid != G.server_pid)
				continue;
			ticks += cticks + creaped;
			s->nchildren++;
			if (!memory)
				continue;
			if ((kib = proc_kib(cpid, "status", "VmRSS:")) > 0)
				s->child_rss_kib += kib;
			if ((kib = proc_kib(cpid, "smaps_rollup", "Pss:")) > 0)
				s->pss_kib += kib;
		}
		closedir(d);
	}
	s->cpu_ticks_s = (double)(own + ticks) / hz;
	s->cpu_clock = own_s >= 0;
	s->cpu_s = s->cpu_clock ? own_s + (double)ticks / hz : s->cpu_ticks_s;
	if (memory) {
		s->rss_kib = proc_kib(G.server_pid, "status", "VmRSS:");
		s->hwm_kib = proc_kib(G.server_pid, "status", "VmHWM:");
		if ((kib = proc_kib(G.server_pid, "smaps_rollup", "Pss:")) > 0)
			s->pss_kib += kib;
	}
	s->ok = true;
}

/*
 * The server's CPU time between two samples: from its clock when both
 * samples read it, else from clock ticks in both (never one of each).
 */
static double
server_cpu_delta(const struct srv_sample *a, const struct srv_sample *b)
{
	if (a->cpu_clock && b->cpu_clock)
		return b->cpu_s - a->cpu_s;
	return b->cpu_ticks_s - a->cpu_ticks_s;
}

/* --- target parsing -------------------------------------------------- */

static bool
is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static void
parse_target(const char *t)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_un *sun;
	char host[256], *colon;
	const char *rest;
	size_t plen;
	int rc;

	if (strncmp(t, "unix:", 5) == 0) {
		rest = t + 5;
		plen = strlen(rest);
		sun = (struct sockaddr_un *)(void *)&G.addr;
		if (plen == 0 || plen >= sizeof sun->sun_path)
			die("bad unix path in target '%s'", t);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, rest, plen);
		if (rest[0] == '@')
			sun->sun_path[0] = '\0';	/* abstract name */
		G.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    plen + (rest[0] == '@' ? 0 : 1));
		G.family = AF_UNIX;
		G.socktype = SOCK_STREAM;
		G.is_unix = true;
		return;
	}
	if (strncmp(t, "tcp:", 4) == 0)
		G.socktype = SOCK_STREAM;
	else if (strncmp(t, "udp:", 4) == 0)
		G.socktype = SOCK_DGRAM;
	else
		die("target must be tcp:HOST:PORT, udp:HOST:PORT or unix:PATH");
	rest = t + 4;
	if (strlen(rest) >= sizeof host)
		die("target too long");
	strcpy(host, rest);
	colon = strrchr(host, ':');
	if (colon == NULL || colon[1] == '\0')
		die("target '%s' has no port", t);
	*colon = '\0';
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			die("bad host in target '%s'", t);
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = G.socktype;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
		die("cannot resolve '%s': %s", t, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (is_loopback(ai->ai_addr))
			break;
	if (ai == NULL) {
		freeaddrinfo(res);
		die("refusing target '%s': not a loopback address "
		    "(only 127.0.0.0/8, ::1 and unix: are allowed)", t);
	}
	memcpy(&G.addr, ai->ai_addr, ai->ai_addrlen);
	G.addrlen = ai->ai_addrlen;
	G.family = ai->ai_family;
	freeaddrinfo(res);
}

/* --- connection machinery --------------------------------------------- */

static void
ep_ctl(int op, struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	memset(&e, 0, sizeof e);
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(G.ep, op, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void
set_out(struct conn *c, bool on)
{
	if (c->want_out == on)
		return;
	ep_ctl(EPOLL_CTL_MOD, c, EPOLLIN | (on ? EPOLLOUT : 0));
	c->want_out = on;
}

static void
count_err(int kind)
{
	G.errs[kind]++;
	G.nerr++;
	/* Idle mode is bounded by itself: each connection fails once. */
	if (G.max_errors && G.nerr >= G.max_errors && !G.aborted &&
	    G.mode != MODE_IDLE) {
		fprintf(stderr, "loadgen: %" PRIu64 " errors, stopping early\n",
		    G.nerr);
		G.aborted = G.stopping = true;
	}
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->want_out = false;
	c->rlen = 0;
	c->nrep = 0;
	c->soff = 0;
}

static bool
idle_inflight_state(enum cstate st)
{
	return st == CS_CONNECTING || st == CS_BACKOFF || st == CS_SENDING ||
	    st == CS_WAITING;
}

static void
fail(struct conn *c, int kind)
{
	count_err(kind);
	conn_close(c);
	if (G.mode == MODE_IDLE) {
		if (idle_inflight_state(c->st))
			G.inflight--;
		c->st = CS_DEAD;
		return;
	}
	c->st = CS_BACKOFF;
	/* A lost datagram is no reason to wait: retry on a fresh socket. */
	c->deadline = mono_ns() +
	    (G.mode == MODE_UDP && kind == ERR_TIMEOUT ? 0 : BACKOFF_NS);
}

static bool
may_issue(void)
{
	return !G.stopping && (G.max_requests == 0 ||
	    G.issued < G.max_requests);
}

static void
complete_op(struct conn *c)
{
	uint64_t t = mono_ns();

	if (G.draining)
		return;
	record(t - c->t0);
	G.ops++;
	G.last_op_end = t;
}

static void
do_send(struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = send(c->fd, G.req + c->soff, G.reqlen - c->soff,
		    MSG_NOSIGNAL);
		if (n >= 0) {
			c->soff += (uint32_t)n;
			if (c->soff < G.reqlen && G.socktype == SOCK_STREAM)
				continue;
			c->st = CS_WAITING;
			set_out(c, false);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (G.socktype == SOCK_DGRAM)
				c->soff = 0;	/* resend the whole datagram */
			c->st = CS_SENDING;
			set_out(c, true);
			return;
		}
		fail(c, errno == ECONNREFUSED ? ERR_REFUSED :
		    (errno == EPIPE || errno == ECONNRESET) ? ERR_RESET :
		    ERR_OTHER);
		return;
	}
}

static void
send_request(struct conn *c)
{
	uint64_t t = mono_ns();

	c->soff = 0;
	c->nrep = 0;
	if (G.mode != MODE_CONNECT) {
		c->t0 = t;
		G.issued++;
	}
	if (G.first_op_start == 0)
		G.first_op_start = t;
	c->deadline = t + G.timeout_ns;
	do_send(c);
}

/* persistent and udp: the next request on an open socket, or park. */
static void
next_request(struct conn *c)
{
	if (may_issue())
		send_request(c);
	else
		c->st = CS_IDLE;
}

static void
connected(struct conn *c)
{
	set_out(c, false);
	switch (G.mode) {
	case MODE_PERSISTENT:
		next_request(c);
		break;
	case MODE_CONNECT:
		send_request(c);
		break;
	case MODE_IDLE:
		c->st = CS_HOLD;
		G.inflight--;
		G.established++;
		break;
	case MODE_UDP:
		break;
	}
}

/*
 * Connect mode, TCP: on loopback the handshake has usually completed by the
 * time connect() returns EINPROGRESS, so send the request at once instead of
 * waiting for EPOLLOUT and asking SO_ERROR: three system calls fewer per
 * connection, which matters because the load generator's CPU, not the
 * server's, limits the connection rate of a fast server.  A socket still
 * connecting makes send() fail with EAGAIN and takes the usual path; any
 * other failure is the connection's error.  Returns whether the connection
 * was dealt with here.
 */
static bool
try_early_send(struct conn *c)
{
	ssize_t n;

	n = send(c->fd, G.req, G.reqlen, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (n < 0) {
		fail(c, errno == ECONNREFUSED ? ERR_REFUSED :
		    (errno == EPIPE || errno == ECONNRESET) ? ERR_RESET :
		    ERR_CONNECT);
		return true;
	}
	ep_ctl(EPOLL_CTL_ADD, c, EPOLLIN);
	c->deadline = c->t0 + G.timeout_ns;
	c->soff = (uint32_t)n;
	if (c->soff < G.reqlen) {
		c->st = CS_SENDING;
		set_out(c, true);
	} else {
		c->st = CS_WAITING;
	}
	return true;
}

static void
start_conn(struct conn *c)
{
	uint64_t t = mono_ns();
	int fd, one = 1, e;

	c->rlen = c->nrep = c->soff = 0;
	c->want_out = false;
	if (G.mode == MODE_CONNECT) {
		c->t0 = t;
		G.issued++;
		if (G.first_op_start == 0)
			G.first_op_start = t;
	}
	fd = socket(G.family, G.socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->st = CS_CONNECTING;
		fail(c, ERR_OTHER);
		return;
	}
	c->fd = fd;
	/*
	 * Connect mode writes once per connection, so Nagle never delays it:
	 * the option would only cost a system call per connection.
	 */
	if (G.family != AF_UNIX && G.socktype == SOCK_STREAM &&
	    G.mode != MODE_CONNECT)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->st = CS_CONNECTING;
	c->deadline = G.mode == MODE_IDLE ? G.connect_deadline :
	    t + G.timeout_ns;
	if (connect(fd, (struct sockaddr *)&G.addr, G.addrlen) == 0) {
		ep_ctl(EPOLL_CTL_ADD, c, EPOLLIN);
		if (G.mode == MODE_UDP)
			next_request(c);
		else
			connected(c);
		return;
	}
	e = errno;
	if (e == EINPROGRESS && G.mode == MODE_CONNECT && try_early_send(c))
		return;
	if (e == EINPROGRESS) {
		ep_ctl(EPOLL_CTL_ADD, c, EPOLLIN | EPOLLOUT);
		c->want_out = true;
		return;
	}
	if (e == EAGAIN && G.is_unix) {
		/* Unix listen backlog full: not an error, try again soon. */
		conn_close(c);
		c->st = CS_BACKOFF;
		c->deadline = t + UNIX_AGAIN_NS;
		return;
	}
	fail(c, e == ECONNREFUSED ? ERR_REFUSED : ERR_CONNECT);
}

static void
on_eof(struct conn *c)
{
	if (G.mode == MODE_CONNECT && c->st == CS_EOFWAIT && c->rlen == 0) {
		complete_op(c);
		conn_close(c);
		c->st = CS_IDLE;
		if (may_issue())
			start_conn(c);
		return;
	}
	fail(c, c->rlen ? ERR_SHORT : ERR_CLOSED);
}

static void
stream_readable(struct conn *c)
{
	const char *text;
	size_t llen, tlen;
	ssize_t n;
	char *nl;
	int k;

	n = read(c->fd, c->rbuf + c->rlen, G.rcap - c->rlen);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		fail(c, errno == ECONNRESET ? ERR_RESET : ERR_OTHER);
		return;
	}
	if (n == 0) {
		on_eof(c);
		return;
	}
	c->rlen += (uint32_t)n;
	while (c->fd >= 0 && (nl = memchr(c->rbuf, '\n', c->rlen)) != NULL) {
		llen = (size_t)(nl - c->rbuf) + 1;
		if (c->st != CS_WAITING && c->st != CS_SENDING) {
			/* Nothing was asked: an unsolicited line. */
			fail(c, llen >= 6 && memcmp(c->rbuf, "ERROR ", 6) == 0 ?
			    ERR_ERROR_REPLY : ERR_BAD);
			return;
		}
		if (G.mode == MODE_CONNECT && c->nrep == 1) {
			text = "exit";
			tlen = 4;
		} else {
			text = G.payload;
			tlen = G.plen;
		}
		k = verify(c->rbuf, llen, text, tlen, mono_ns() - c->t0);
		if (k != OK) {
			fail(c, k);
			return;
		}
		memmove(c->rbuf, c->rbuf + llen, c->rlen - llen);
		c->rlen -= (uint32_t)llen;
		c->nrep++;
		if (G.mode == MODE_CONNECT) {
			if (c->nrep == 2)
				c->st = CS_EOFWAIT;
			continue;
		}
		if (c->rlen != 0) {
			fail(c, ERR_BAD);	/* more than one reply */
			return;
		}
		complete_op(c);
		if (G.mode == MODE_IDLE) {
			c->st = CS_DONE;
			G.inflight--;
			G.answered++;
		} else {
			next_request(c);
		}
	}
	if (c->fd >= 0 && c->rlen == G.rcap)
		fail(c, ERR_BAD);		/* a line longer than any reply */
}

static void
dgram_readable(struct conn *c)
{
	ssize_t n;
	int k;

	n = recv(c->fd, G.scratch, G.scratch_len, MSG_TRUNC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		fail(c, errno == ECONNREFUSED ? ERR_REFUSED : ERR_OTHER);
		return;
	}
	if (c->st != CS_WAITING && c->st != CS_SENDING) {
		fail(c, ERR_BAD);		/* unsolicited datagram */
		return;
	}
	if ((size_t)n > G.scratch_len) {
		fail(c, ERR_BAD);
		return;
	}
	k = verify(G.scratch, (size_t)n, G.payload, G.plen,
	    mono_ns() - c->t0);
	if (k != OK) {
		fail(c, k);
		return;
	}
	complete_op(c);
	next_request(c);
}

static void
on_event(struct conn *c, uint32_t ev)
{
	socklen_t sl = sizeof(int);
	int err = 0;

	if (c->fd < 0)
		return;
	if (c->st == CS_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err == 0 && (ev & EPOLLOUT)) {
			connected(c);
			return;
		}
		if (err == 0 && !(ev & (EPOLLERR | EPOLLHUP)))
			return;
		fail(c, err == ECONNREFUSED ? ERR_REFUSED :
		    err == ETIMEDOUT ? ERR_TIMEOUT :
		    err == ECONNRESET ? ERR_RESET : ERR_CONNECT);
		return;
	}
	if ((ev & EPOLLOUT) && c->st == CS_SENDING)
		do_send(c);
	if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		if (G.socktype == SOCK_DGRAM)
			dgram_readable(c);
		else
			stream_readable(c);
	}
}

/* Timeouts and backoff retries. */
static void
scan(uint64_t now)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < G.clients; i++) {
		c = &G.conns[i];
		switch (c->st) {
		case CS_CONNECTING:
		case CS_SENDING:
		case CS_WAITING:
		case CS_EOFWAIT:
			if (now >= c->deadline)
				fail(c, ERR_TIMEOUT);
			break;
		case CS_BACKOFF:
			if (now < c->deadline)
				break;
			if (G.mode == MODE_IDLE)
				start_conn(c);
			else if (!G.stopping && (G.mode != MODE_CONNECT ||
			    may_issue()))
				start_conn(c);
			else
				c->st = CS_IDLE;
			break;
		default:
			break;
		}
	}
}

static bool
any_busy(void)
{
	unsigned i;

	for (i = 0; i < G.clients; i++)
		switch (G.conns[i].st) {
		case CS_CONNECTING:
		case CS_SENDING:
		case CS_WAITING:
		case CS_EOFWAIT:
			return true;
		default:
			break;
		}
	return false;
}

enum phase { PH_LOAD, PH_DRAIN, PH_IDLE_CONNECT, PH_IDLE_PROBE };

/* Idle mode: keep up to --batch connects or probes in flight. */
static void
idle_refill(enum phase ph)
{
	struct conn *c;

	while (!G.stopping && G.inflight < G.batch &&
	    G.next_start < G.clients) {
		c = &G.conns[G.next_start++];
		if (ph == PH_IDLE_CONNECT) {
			G.inflight++;
			start_conn(c);
		} else if (c->st == CS_HOLD) {
			G.inflight++;
			send_request(c);
		}
	}
}

static bool
phase_done(enum phase ph)
{
	if (G.aborted)
		return true;
	switch (ph) {
	case PH_IDLE_CONNECT:
	case PH_IDLE_PROBE:
		return G.next_start >= G.clients && G.inflight == 0;
	case PH_LOAD:
		if (G.max_requests && G.issued >= G.max_requests)
			return !any_busy();
		return false;
	case PH_DRAIN:
		return !any_busy();
	}
	return true;
}

static void
run_loop(enum phase ph, uint64_t until)
{
	struct epoll_event evs[512];
	uint64_t t, next_scan = 0, wake;
	int n, i, ms;

	for (;;) {
		if (got_signal && !G.aborted) {
			fprintf(stderr, "loadgen: interrupted\n");
			G.aborted = G.stopping = true;
		}
		if (ph == PH_IDLE_CONNECT || ph == PH_IDLE_PROBE)
			idle_refill(ph);
		t = mono_ns();
		if (t >= until || phase_done(ph))
			break;
		if (t >= next_scan) {
			scan(t);
			next_scan = t + SCAN_NS;
			continue;
		}
		wake = next_scan < until ? next_scan : until;
		ms = (int)((wake - t + 999999) / 1000000);
		n = epoll_wait(G.ep, evs, (int)(sizeof evs / sizeof evs[0]), ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
}

/* Count what is still pending at the end of an idle phase as timeouts. */
static void
idle_expire(void)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < G.clients; i++) {
		c = &G.conns[i];
		if (idle_inflight_state(c->st))
			fail(c, ERR_TIMEOUT);
	}
	for (; G.next_start < G.clients; G.next_start++) {
		c = &G.conns[G.next_start];
		if (c->st == CS_IDLE || c->st == CS_HOLD) {
			/* never started (connect phase) or never probed */
			count_err(ERR_TIMEOUT);
			conn_close(c);
			c->st = CS_DEAD;
		}
	}
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (uint64_t)G.clients + 32 > rl.rlim_cur)
		die("--clients %u needs more file descriptors than "
		    "RLIMIT_NOFILE allows (%llu)", G.clients,
		    (unsigned long long)rl.rlim_cur);
}

static double
parse_double(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		die("%s must be a number in [%g, %g], got '%s'", what, lo, hi, s);
	return v;
}

static uint64_t
parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		die("%s must be an integer in [%" PRIu64 ", %" PRIu64 "], got '%s'",
		    what, lo, hi, s);
	return v;
}

static bool
is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
	    ch == '\v' || ch == '\f';
}

static bool
trims_to_exit(const char *s, size_t n)
{
	while (n && is_ws(s[0])) {
		s++;
		n--;
	}
	while (n && is_ws(s[n - 1]))
		n--;
	return n == 4 && memcmp(s, "exit", 4) == 0;
}

/* Check the reply checker itself on known good and bad replies. */
static int
self_test(void)
{
	static const struct {
		const char	*reply;
		int		 want;
	} cases[] = {
		{ "hi Fri Nov 27 02:10:42 2026\n", OK },
		{ "hi Sat Nov  7 23:59:60 2026\n", OK },
		{ "hi Thu Feb 29 00:00:00 2024\n", OK },
		{ "hi Thu Jan  1 00:00:00 1970\n", OK },
		{ "hi Mon Feb 29 00:00:00 2100\n", ERR_BAD },	/* no leap */
		{ "hi Fri Nov 07 02:10:42 2026\n", ERR_BAD },	/* 0-padded */
		{ "hi Sat Nov 27 02:10:42 2026\n", ERR_BAD },	/* weekday */
		{ "hi Fri Nvm 27 02:10:42 2026\n", ERR_BAD },
		{ "hi Fri Nov 27 24:10:42 2026\n", ERR_BAD },
		{ "hi Fri Nov 27 02:1x:42 2026\n", ERR_BAD },
		{ "hi Fri Nov 27 02:10:42 2026 \n", ERR_BAD },
		{ "hi  Fri Nov 27 02:10:42 2026\n", ERR_BAD },
		{ "hi Fri Nov 27 02:10:42 2026\r\n", ERR_BAD },
		{ "ho Fri Nov 27 02:10:42 2026\n", ERR_BAD },
		{ "hi\n", ERR_BAD },
		{ "hi Fri Nov 27 02:10", ERR_SHORT },
		{ "ERROR line too long (limit 1 bytes)\n", ERR_ERROR_REPLY },
	};
	size_t i;
	int k, bad = 0;

	G.time_check = false;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		k = verify(cases[i].reply, strlen(cases[i].reply), "hi", 2, 0);
		if (k != cases[i].want) {
			printf("self-test: '%s': got %s, want %s\n",
			    cases[i].reply, k == OK ? "ok" : err_names[k],
			    cases[i].want == OK ? "ok" : err_names[cases[i].want]);
			bad++;
		}
	}
	/* The time check: now passes, a day ago does not. */
	G.time_check = true;
	{
		char line[64], ts[32];
		time_t now = time(NULL), then = now - 86400;

		snprintf(line, sizeof line, "hi %.24s\n", ctime_r(&now, ts));
		if (verify(line, strlen(line), "hi", 2, 0) != OK) {
			printf("self-test: current time rejected: %s", line);
			bad++;
		}
		snprintf(line, sizeof line, "hi %.24s\n", ctime_r(&then, ts));
		if (verify(line, strlen(line), "hi", 2, 0) != ERR_BAD_TIME) {
			printf("self-test: stale time accepted: %s", line);
			bad++;
		}
	}
	for (i = 0; i < 1000000; i += 997)	/* histogram round trip */
		if (h_value(h_index(i)) < i - i / 100 ||
		    h_value(h_index(i)) > i + i / 100 + 1) {
			printf("self-test: histogram %zu -> %" PRIu64 "\n", i,
			    h_value(h_index(i)));
			bad++;
		}
	printf("self-test: %s\n", bad ? "FAILED" : "ok");
	return bad ? 1 : 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: loadgen --mode persistent|connect|idle|udp --target TARGET [options]\n"
"\n"
"  -m, --mode MODE        persistent: N connections, one line at a time each\n"
"                         connect:    N workers: connect, line, exit, EOF, close\n"
"                         idle:       open N connections, hold, probe each once\n"
"                         udp:        N sockets, one datagram at a time each\n"
"  -t, --target TARGET    tcp:HOST:PORT, unix:PATH (@name = abstract) or\n"
"                         udp:HOST:PORT; HOST must be loopback\n"
"  -c, --clients N        concurrent clients (default 1)\n"
"  -d, --duration SEC     hard upper bound of the run (default 5, max 120)\n"
"  -n, --requests N       stop after N requests/connections (default: none)\n"
"  -p, --payload STR      line to send (default \"hello\")\n"
"  -T, --timeout SEC      per-request timeout (default 2)\n"
"  -s, --server-pid PID   report server CPU and RSS from /proc/PID\n"
"  -b, --batch N          idle: connects/probes in flight (default 256)\n"
"  -H, --hold SEC         idle: hold time before probing (default 1)\n"
"  -e, --max-errors N     stop early after N errors (default 1000, 0 = never)\n"
"      --no-time-check    do not compare timestamps with the local clock\n"
"      --self-test        check the reply checker on known replies, exit\n"
"  -h, --help\n"
"\n"
"Prints a summary and one 'RESULT key=value ...' line.  Exit status: 0 if\n"
"every reply verified and at least one operation completed, 1 if any error\n"
"was counted (or nothing completed), 2 on usage errors.\n");
}

static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "target", required_argument, NULL, 't' },
		{ "clients", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "payload", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "server-pid", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "hold", required_argument, NULL, 'H' },
		{ "max-errors", required_argument, NULL, 'e' },
		{ "no-time-check", no_argument, NULL, 'N' },
		{ "self-test", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_mode = false;
	unsigned i;
	int ch;

	G.clients = 1;
	G.duration = 5;
	G.timeout = 2;
	G.hold = 1;
	G.batch = 256;
	G.max_errors = 1000;
	G.time_check = true;
	G.payload = "hello";
	while ((ch = getopt_long(argc, argv, "m:t:c:d:n:p:T:s:b:H:e:h", opts,
	    NULL)) != -1) {
		switch (ch) {
		case 'm':
			for (i = 0; i < 4; i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == 4)
				die("unknown mode '%s'", optarg);
			G.mode = (enum mode)i;
			have_mode = true;
			break;
		case 't':
			G.target = optarg;
			break;
		case 'c':
			G.clients = (unsigned)parse_u64(optarg, "--clients", 1,
			    MAX_CLIENTS);
			break;
		case 'd':
			G.duration = parse_double(optarg, "--duration", 0.01,
			    MAX_DURATION);
			break;
		case 'n':
			G.max_requests = parse_u64(optarg, "--requests", 1,
			    UINT64_MAX / 2);
			break;
		case 'p':
			G.payload = optarg;
			break;
		case 'T':
			G.timeout = parse_double(optarg, "--timeout", 0.001,
			    MAX_DURATION);
			break;
		case 's':
			G.server_pid = (pid_t)parse_u64(optarg, "--server-pid",
			    1, INT_MAX);
			break;
		case 'b':
			G.batch = (unsigned)parse_u64(optarg, "--batch", 1,
			    MAX_CLIENTS);
			break;
		case 'H':
			G.hold = parse_double(optarg, "--hold", 0, MAX_DURATION);
			break;
		case 'e':
			G.max_errors = parse_u64(optarg, "--max-errors", 0,
			    UINT64_MAX / 2);
			break;
		case 'N':
			G.time_check = false;
			break;
		case 'S':
			exit(self_test());
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!have_mode || G.target == NULL) {
		usage(stderr);
		exit(2);
	}
	parse_target(G.target);
	if ((G.mode == MODE_UDP) != (G.socktype == SOCK_DGRAM))
		die("mode %s needs a %s target", mode_names[G.mode],
		    G.mode == MODE_UDP ? "udp:" : "tcp: or unix:");
	G.plen = strlen(G.payload);
	if (G.plen > MAX_PAYLOAD)
		die("payload longer than %u bytes", MAX_PAYLOAD);
	if (memchr(G.payload, '\n', G.plen) != NULL)
		die("payload must not contain a newline");
	if (G.plen && G.payload[G.plen - 1] == '\r')
		die("payload must not end in CR (it would be part of CR LF)");
	if (G.mode != MODE_UDP && trims_to_exit(G.payload, G.plen))
		die("payload 'exit' would end the session");
}

int
main(int argc, char **argv)
{
	struct srv_sample s0, s1, smem, sbase;
	struct rusage ru;
	struct sigaction sa;
	uint64_t t_start, t_end, t_conn_end = 0, idle_probe_start = 0, grace;
	double elapsed, rate, conn_rate = 0, ccpu, mean_us, steal0, steal1;
	double steal_pct = -1;
	long ncpu;
	unsigned i;
	char *rbufs;
	const char *unit;

	parse_args(argc, argv);
	raise_nofile();

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	tzset();

	/* The request bytes, shared by every connection. */
	G.reqlen = G.plen + 1 + (G.mode == MODE_CONNECT ? 5 : 0);
	G.req = malloc(G.reqlen + 1);
	if (G.req == NULL)
		die("out of memory");
	memcpy(G.req, G.payload, G.plen);
	G.req[G.plen] = '\n';
	if (G.mode == MODE_CONNECT)
		memcpy(G.req + G.plen + 1, "exit\n", 5);
	G.rcap = 2 * (G.plen + REPLY_EXTRA) + 64;
	G.scratch_len = G.plen + REPLY_EXTRA + 4096;
	G.scratch = malloc(G.scratch_len);
	G.conns = calloc(G.clients, sizeof *G.conns);
	rbufs = G.socktype == SOCK_STREAM ? malloc((size_t)G.clients * G.rcap) :
	    NULL;
	if (G.scratch == NULL || G.conns == NULL ||
	    (G.socktype == SOCK_STREAM && rbufs == NULL))
		die("out of memory");
	for (i = 0; i < G.clients; i++) {
		G.conns[i].fd = -1;
		G.conns[i].st = CS_IDLE;
		G.conns[i].rbuf = rbufs ? rbufs + (size_t)i * G.rcap : NULL;
	}
	G.timeout_ns = (uint64_t)(G.timeout * 1e9);
	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.ep < 0)
		die("epoll_create1: %s", strerror(errno));

	sample_server(&sbase, true);
	sample_server(&s0, false);
	if (G.server_pid > 0 && !s0.ok)
		fprintf(stderr, "loadgen: cannot read /proc/%d/stat\n",
		    (int)G.server_pid);
	/*
	 * --duration bounds the whole run, including the short drain at the
	 * end (see below), so the load phase ends that much earlier.
	 */
	grace = G.timeout_ns < NSEC / 5 ? G.timeout_ns : NSEC / 5;
	if (grace > (uint64_t)(G.duration * 0.05e9))
		grace = (uint64_t)(G.duration * 0.05e9);
	steal0 = steal_s();
	t_start = mono_ns();
	t_end = t_start + (uint64_t)(G.duration * 1e9);
	if (G.mode != MODE_IDLE)
		t_end -= grace;

	if (G.mode == MODE_IDLE) {
		/*
		 * Connect phase: at most 60% of the run.  Hold: the requested
		 * time, but at most 20% of the run.  Probe: what is left.
		 */
		G.connect_deadline = t_start + (uint64_t)(G.duration * 0.6e9);
		run_loop(PH_IDLE_CONNECT, G.connect_deadline);
		idle_expire();
		t_conn_end = mono_ns();
		if (t_conn_end > t_start)
			conn_rate = G.established /
			    ((double)(t_conn_end - t_start) / 1e9);
		/*
		 * Hold, still watching for connections the server drops: at
		 * least --hold, and with --server-pid until the server holds
		 * a descriptor for every connection (a connection the client
		 * sees may still wait in the listen backlog), at most 20% of
		 * the run.
		 */
		G.next_start = G.clients;	/* nothing to refill */
		{
			uint64_t t = mono_ns();
			uint64_t min_end = t + (uint64_t)(G.hold * 1e9);
			uint64_t max_end = t + (uint64_t)(G.duration * 0.2e9);

			if (min_end > max_end)
				min_end = max_end;
			long nfd, prev = -1;

			run_loop(PH_LOAD, min_end);
			/* Stop waiting when the count stalls (fork servers). */
			while (!G.aborted && mono_ns() < max_end &&
			    (nfd = count_fds(G.server_pid)) >= 0 &&
			    nfd < (long)G.established && nfd != prev) {
				prev = nfd;
				t = mono_ns() + 100 * 1000000ull;
				run_loop(PH_LOAD, t < max_end ? t : max_end);
			}
		}
		sample_server(&smem, true);
		G.next_start = 0;
		idle_probe_start = mono_ns();
		run_loop(PH_IDLE_PROBE, t_end);
		idle_expire();
	} else {
		for (i = 0; i < G.clients && may_issue(); i++)
			start_conn(&G.conns[i]);
		run_loop(PH_LOAD, t_end);
	}
	G.stopping = true;
	t_end = mono_ns();
	steal1 = steal_s();
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (steal0 >= 0 && steal1 >= 0 && ncpu > 0 && t_end > t_start)
		steal_pct = 100.0 * (steal1 - steal0) /
		    ((double)(t_end - t_start) / 1e9 * (double)ncpu);
	sample_server(&s1, G.mode != MODE_IDLE);
	if (G.mode != MODE_IDLE)
		smem = s1;
	/*
	 * Let requests in flight finish (uncounted) so that no socket is
	 * closed with a reply unread, which would reset the connection and
	 * make the server log an error that is only an artefact of the run.
	 */
	if (!G.aborted && G.mode != MODE_IDLE) {
		G.draining = true;
		run_loop(PH_DRAIN, mono_ns() + grace);
	}
	for (i = 0; i < G.clients; i++)
		conn_close(&G.conns[i]);

	/* Report. */
	getrusage(RUSAGE_SELF, &ru);
	ccpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (G.mode == MODE_IDLE) {
		elapsed = (double)(t_end - idle_probe_start) / 1e9;
	} else {
		uint64_t from = G.first_op_start ? G.first_op_start : t_start;
		uint64_t to = G.max_requests && G.issued >= G.max_requests &&
		    G.last_op_end ? G.last_op_end : t_end;
		elapsed = (double)(to - from) / 1e9;
	}
	if (elapsed <= 0)
		elapsed = 1e-9;
	rate = G.mode == MODE_IDLE ? conn_rate : (double)G.ops / elapsed;
	mean_us = G.lat_n ? (double)(G.lat_sum / G.lat_n) / 1000.0 : 0;
	unit = G.mode == MODE_CONNECT ? "connections/s" :
	    G.mode == MODE_IDLE ? "connections/s (connect phase)" :
	    G.mode == MODE_UDP ? "datagrams/s" : "requests/s";

	printf("loadgen: mode %s, target %s, %u clients, payload %zu bytes\n",
	    mode_names[G.mode], G.target, G.clients, G.plen);
	if (G.mode == MODE_IDLE)
		printf("  established %u of %u (%.1f %s), answered %u after "
		    "holding\n", G.established, G.clients, conn_rate, unit,
		    G.answered);
	else
		printf("  %" PRIu64 " verified ops in %.3f s = %.1f %s\n", G.ops,
		    elapsed, rate, unit);
	printf("  latency us: min %.1f  mean %.1f  p50 %.1f  p99 %.1f  "
	    "p99.9 %.1f  max %.1f\n", G.lat_n ? G.lat_min / 1000.0 : 0,
	    mean_us, percentile_us(0.50), percentile_us(0.99),
	    percentile_us(0.999), G.lat_max / 1000.0);
	printf("  errors: %" PRIu64, G.nerr);
	for (i = 0; i < ERR_MAX; i++)
		if (G.errs[i])
			printf("  %s=%" PRIu64, err_names[i], G.errs[i]);
	printf("\n  client cpu: %.3f s\n", ccpu);
	if (steal_pct >= 0)
		printf("  steal: %.1f %% of all CPUs' time was taken by the "
		    "host\n", steal_pct);
	if (s0.ok && s1.ok) {
		printf("  server pid %d: cpu %.3f s, rss %ld KiB", (int)G.server_pid,
		    server_cpu_delta(&s0, &s1), smem.rss_kib);
		if (smem.nchildren)
			printf(" (+%d children, rss %ld KiB)", smem.nchildren,
			    smem.child_rss_kib);
		printf(", pss of all %ld KiB", smem.pss_kib);
		if (G.mode == MODE_IDLE && G.established)
			printf(", hwm %ld KiB, %.1f KiB per connection",
			    smem.hwm_kib, (double)(smem.pss_kib -
			    sbase.pss_kib) / G.established);
		printf("\n");
	}

	printf("RESULT mode=%s clients=%u ops=%" PRIu64 " rate=%.1f "
	    "p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%" PRIu64
	    " client_cpu_s=%.3f", mode_names[G.mode], G.clients, G.ops, rate,
	    percentile_us(0.50), percentile_us(0.99), percentile_us(0.999),
	    G.nerr, ccpu);
	if (s0.ok && s1.ok)
		printf(" server_cpu_s=%.6f server_rss_kib=%ld",
		    server_cpu_delta(&s0, &s1), smem.rss_kib);
	else
		printf(" server_cpu_s=na server_rss_kib=na");
	if (s0.ok && s1.ok && s0.sleeps >= 0 && s1.sleeps >= s0.sleeps)
		printf(" server_sleeps=%ld", s1.sleeps - s0.sleeps);
	else
		printf(" server_sleeps=na");
	if (G.mode == MODE_IDLE) {
		printf(" established=%u answered=%u", G.established, G.answered);
		if (s0.ok && s1.ok)
			printf(" server_hwm_kib=%ld server_base_rss_kib=%ld",
			    smem.hwm_kib, sbase.rss_kib);
	}
	if (s0.ok && s1.ok)
		printf(" server_children=%d server_children_rss_kib=%ld "
		    "server_pss_kib=%ld", smem.nchildren, smem.child_rss_kib,
		    smem.pss_kib);
	printf(" elapsed_s=%.3f", elapsed);
	if (steal_pct >= 0)
		printf(" steal_pct=%.1f", steal_pct);
	else
		printf(" steal_pct=na");
	for (i = 0; i < ERR_MAX; i++)
		printf(" err_%s=%" PRIu64, err_names[i], G.errs[i]);
	printf("\n");
	fflush(stdout);
	return G.nerr != 0 || G.ops == 0 ? 1 : 0;
}
