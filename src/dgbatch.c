/*
 * dgbatch.c - datagrams read and answered in batches (see dgbatch.h).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dgbatch.h"

struct dgbatch {
	unsigned	 nslots;
	size_t		 cap, reply_cap;
	unsigned	 nin;			/* slots the last read filled */
	unsigned	 nout;			/* replies queued */
	unsigned	 slot_of[DGBATCH_SLOTS];	/* queued reply -> slot */
	struct mmsghdr	 in[DGBATCH_SLOTS], out[DGBATCH_SLOTS];
	struct iovec	 iin[DGBATCH_SLOTS], iout[DGBATCH_SLOTS];
	struct sockaddr_storage peer[DGBATCH_SLOTS];
	char		*mem;			/* nslots datagrams, then
						 * nslots replies */
};

struct dgbatch *
dgbatch_new(size_t cap, size_t reply_cap)
{
	struct dgbatch *b;
	size_t per = cap + reply_cap, n;

	n = per ? DGBATCH_BYTES / per : 0;
	if (n > DGBATCH_SLOTS)
		n = DGBATCH_SLOTS;
	if (n < 2 || cap == 0 || reply_cap == 0) {
		errno = ERANGE;
		return NULL;
	}
	if (!(b = calloc(1, sizeof(*b))))
		return NULL;
	if (!(b->mem = malloc(n * per))) {
		free(b);
		return NULL;
	}
	b->nslots = (unsigned)n;
	b->cap = cap;
	b->reply_cap = reply_cap;
	for (n = 0; n < b->nslots; n++) {
		b->iin[n].iov_base = b->mem + n * cap;
		b->iin[n].iov_len = cap;
		b->in[n].msg_hdr = (struct msghdr){
			.msg_name = &b->peer[n],
			.msg_namelen = sizeof(b->peer[n]),
			.msg_iov = &b->iin[n],
			.msg_iovlen = 1,
		};
	}
	return b;
}

void
dgbatch_free(struct dgbatch *b)
{
	if (!b)
		return;
	free(b->mem);
	free(b);
}

unsigned
dgbatch_slots(const struct dgbatch *b)
{
	return b->nslots;
}

size_t
dgbatch_cap(const struct dgbatch *b)
{
	return b->cap;
}

size_t
dgbatch_reply_cap(const struct dgbatch *b)
{
	return b->reply_cap;
}

int
dgbatch_recv(struct dgbatch *b, int fd, unsigned max)
{
	unsigned i;
	int k;

	b->nout = 0;
	if (max > b->nslots)
		max = b->nslots;
	/* The slots are set up once; a read changes only the name lengths
	 * of those it fills (and their lengths and flags, outputs). */
	for (i = 0; i < b->nin; i++)
		b->in[i].msg_hdr.msg_namelen = sizeof(b->peer[i]);
	k = recvmmsg(fd, b->in, max, MSG_DONTWAIT | MSG_TRUNC, NULL);
	b->nin = k > 0 ? (unsigned)k : 0;
	return k < 0 ? -errno : k;
}

char *
dgbatch_data(struct dgbatch *b, unsigned i, size_t *len)
{
	*len = b->in[i].msg_len;
	return b->iin[i].iov_base;
}

const struct sockaddr *
dgbatch_peer(const struct dgbatch *b, unsigned i, socklen_t *len)
{
	*len = b->in[i].msg_hdr.msg_namelen;
	return (const struct sockaddr *)&b->peer[i];
}

char *
dgbatch_reply(struct dgbatch *b, unsigned i)
{
	return b->mem + (size_t)b->nslots * b->cap + i * b->reply_cap;
}

void
dgbatch_queue(struct dgbatch *b, unsigned i, size_t n)
{
	unsigned q = b->nout++;

	assert(q < b->nslots && i < b->nslots);
	b->slot_of[q] = i;
	b->iout[q].iov_base = dgbatch_reply(b, i);
	b->iout[q].iov_len = n;
	b->out[q].msg_hdr = (struct msghdr){
		.msg_name = &b->peer[i],
		.msg_namelen = b->in[i].msg_hdr.msg_namelen,
		.msg_iov = &b->iout[q],
		.msg_iovlen = 1,
	};
}

void
dgbatch_send(struct dgbatch *b, int fd,
    void (*refused)(void *arg, unsigned slot, int err), void *arg)
{
	const int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	unsigned q = 0;
	int r, err;

	/*
	 * sendmmsg() stops at the first reply the kernel refuses; it reports
	 * the error only when that is the first of the call.  So a short
	 * count is followed by a call from the reply it stopped at, which
	 * either goes on or names the error.
	 */
	while (q < b->nout) {
		if (b->nout - q == 1) {
			r = sendto(fd, b->iout[q].iov_base, b->iout[q].iov_len,
			    flags, b->out[q].msg_hdr.msg_name,
			    b->out[q].msg_hdr.msg_namelen) < 0 ? -1 : 1;
		} else {
			r = sendmmsg(fd, b->out + q, b->nout - q, flags);
		}
		if (r > 0) {
			q += (unsigned)r;
			continue;
		}
		err = r < 0 ? errno : EIO;
		if (err == EINTR)
			continue;
		refused(arg, b->slot_of[q], err);
		q++;
	}
	b->nout = 0;
}
