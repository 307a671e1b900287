/*
 * mmsgcost - what batching datagram system calls saves on this machine,
 * without a peer: the CPU time a datagram costs to read and to send on a
 * loopback UDP socket, one call a datagram (recvfrom(), sendto()) against
 * one call a batch (recvmmsg(), sendmmsg()).  The sequential and event
 * models read a queue of UDP datagrams in batches of at most 16
 * (src/dgbatch.c); what that saves in the kernel depends on what a system
 * call costs on the machine (its entry and exit, the CPU's mitigations,
 * the hypervisor) against what the batched calls add per datagram.  It
 * measures the calls only: nothing waits on the receiving socket, so the
 * wake-ups a server's replies cause are not in it.  `make bench` prints
 * the figures after the datagram table.
 *
 * Each round queues BATCH datagrams on a socket (a full batch, the case
 * most favourable to batching) and reads them all, one way or the other,
 * up to the EAGAIN that ends a wake-up's reads; then sends BATCH replies
 * to a second socket, which is drained outside the timing.  A send's time
 * includes the loopback delivery that runs in the sender's context when
 * the kernel does not account interrupt time separately
 * (CONFIG_IRQ_TIME_ACCOUNTING off), and every timed interval includes one
 * clock_gettime() of the process CPU clock, about 0.01 us a datagram for
 * every mode.  The modes alternate by round, and the median of GROUPS
 * groups is reported, so that a drift of the machine hits both alike.
 *
 * Output: one line, "MMSGCOST recvfrom_us=A recvmmsg_us=B sendto_us=C
 * sendmmsg_us=D batch=N rounds=R".  Bounded: a fixed number of rounds;
 * only 127.0.0.1 is used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH		16	/* as DGBATCH_SLOTS */
#define CAP		8195	/* a slot: the default max_line + 3 */
#define ROUNDS		400	/* rounds a group, each mode */
#define GROUPS		5
#define REPLY		"hello Mon Dec  7 05:17:42 2026\n"

enum { RECVFROM, RECVMMSG, SENDTO, SENDMMSG, NMODES };

static char			 in[BATCH][CAP];
static struct sockaddr_storage	 peer[BATCH];
static struct mmsghdr		 msg[BATCH];
static struct iovec		 iov[BATCH];

static double
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
die(const char *what)
{
	fprintf(stderr, "mmsgcost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
udp_socket(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)sa, &len) < 0)
		die("socket");
	return fd;
}

/* Read what is queued on fd, as the daemon reads a wake-up's datagrams. */
static int
read_all(int fd, int mode)
{
	socklen_t plen;
	int i, k, n = 0;

	if (mode == RECVFROM) {
		for (;;) {
			plen = sizeof(peer[0]);
			if (recvfrom(fd, in[0], CAP, MSG_DONTWAIT | MSG_TRUNC,
			    (struct sockaddr *)&peer[0], &plen) < 0)
				return n;
			n++;
		}
	}
	for (;;) {
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = in[i];
			iov[i].iov_len = CAP;
			msg[i].msg_hdr = (struct msghdr){
				.msg_name = &peer[i],
				.msg_namelen = sizeof(peer[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
			};
		}
		if ((k = recvmmsg(fd, msg, BATCH, MSG_DONTWAIT | MSG_TRUNC,
		    NULL)) <= 0)
			return n;
		n += k;
	}
}

static void
send_all(int fd, const struct sockaddr_in *to, int mode)
{
	const int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	int i, n;

	for (i = 0; i < BATCH; i++) {
		if (mode == SENDTO) {
			if (sendto(fd, REPLY, sizeof(REPLY) - 1, flags,
			    (const struct sockaddr *)to, sizeof(*to)) < 0)
				die("sendto");
			continue;
		}
		iov[i].iov_base = (void *)REPLY;
		iov[i].iov_len = sizeof(REPLY) - 1;
		msg[i].msg_hdr = (struct msghdr){
			.msg_name = (void *)to,
			.msg_namelen = sizeof(*to),
			.msg_iov = &iov[i],
			.msg_iovlen = 1,
		};
	}
	if (mode != SENDMMSG)
		return;
	if ((n = sendmmsg(fd, msg, BATCH, flags)) != BATCH) {
		if (n >= 0) {
			fprintf(stderr, "mmsgcost: sendmmsg sent %d of %d\n",
			    n, BATCH);
			exit(1);
		}
		die("sendmmsg");
	}
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(void)
{
	struct sockaddr_in a_addr, b_addr;
	double spent[NMODES][GROUPS], t, median[NMODES];
	int a = udp_socket(&a_addr), b = udp_socket(&b_addr);
	int g, r, m, i, n;

	memset(spent, 0, sizeof(spent));
	for (g = 0; g < GROUPS; g++)
		for (r = 0; r < 2 * ROUNDS; r++) {
			/* Reading: BATCH datagrams queued on b. */
			m = r % 2 ? RECVMMSG : RECVFROM;
			for (i = 0; i < BATCH; i++)
				if (sendto(a, "hello\n", 6, 0,
				    (struct sockaddr *)&b_addr,
				    sizeof(b_addr)) < 0)
					die("sendto");
			t = cpu_us();
			if ((n = read_all(b, m)) != BATCH) {
				fprintf(stderr, "mmsgcost: read %d of %d "
				    "datagrams\n", n, BATCH);
				return 1;
			}
			spent[m][g] += cpu_us() - t;
			/* Sending: BATCH replies from b to a. */
			m = r % 2 ? SENDMMSG : SENDTO;
			t = cpu_us();
			send_all(b, &a_addr, m);
			spent[m][g] += cpu_us() - t;
			(void)read_all(a, RECVMMSG);
		}
	for (m = 0; m < NMODES; m++) {
		qsort(spent[m], GROUPS, sizeof(spent[m][0]), cmp);
		median[m] = spent[m][GROUPS / 2] / ((double)ROUNDS * BATCH);
	}
	printf("MMSGCOST recvfrom_us=%.3f recvmmsg_us=%.3f sendto_us=%.3f "
	    "sendmmsg_us=%.3f batch=%d rounds=%d\n", median[RECVFROM],
	    median[RECVMMSG], median[SENDTO], median[SENDMMSG], BATCH,
	    GROUPS * ROUNDS);
	return 0;
}
