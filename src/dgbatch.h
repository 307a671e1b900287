/*
 * dgbatch.h - datagrams read and answered in batches: one recvmmsg()
 * fills up to DGBATCH_SLOTS slots, each with its sender, and the replies
 * written into the slots go out with one sendmmsg() (one sendto() when
 * there is only one).  It only moves bytes: what is admitted and what
 * the reply says is the caller's (accept.c), and so is when a batch is
 * worth it: a recvmmsg() that brings one datagram costs more than a
 * recvfrom().
 */
#ifndef ECHOTIMED_DGBATCH_H
#define ECHOTIMED_DGBATCH_H

#include <stddef.h>
#include <sys/socket.h>

#define DGBATCH_SLOTS	16
#define DGBATCH_BYTES	(256u * 1024)	/* slot buffers, at most */

struct dgbatch;

/*
 * A batch whose slots hold a datagram of cap bytes and a reply of
 * reply_cap: as many slots as DGBATCH_BYTES holds, up to DGBATCH_SLOTS.
 * NULL with errno ENOMEM, or ERANGE when fewer than two slots fit (long
 * lines are read one at a time).
 */
struct dgbatch	*dgbatch_new(size_t cap, size_t reply_cap);
void		 dgbatch_free(struct dgbatch *b);
/* Its slots; a datagram's and a reply's room. */
unsigned	 dgbatch_slots(const struct dgbatch *b);
size_t		 dgbatch_cap(const struct dgbatch *b);
size_t		 dgbatch_reply_cap(const struct dgbatch *b);

/*
 * Read up to max datagrams from fd without waiting (MSG_TRUNC: a slot's
 * length is the datagram's, which may exceed what the slot kept).  Drops
 * the replies queued before.  The count read, or -errno (-EAGAIN: none).
 */
int		 dgbatch_recv(struct dgbatch *b, int fd, unsigned max);
/* Slot i of the last read: its bytes, and its length as MSG_TRUNC gave. */
char		*dgbatch_data(struct dgbatch *b, unsigned i, size_t *len);
/* Its sender; *len its length. */
const struct sockaddr *dgbatch_peer(const struct dgbatch *b, unsigned i,
		    socklen_t *len);
/* Where slot i's reply is written (dgbatch_reply_cap() bytes). */
char		*dgbatch_reply(struct dgbatch *b, unsigned i);
/* Send slot i's reply, its n bytes, to its sender with the next send
 * (once a slot). */
void		 dgbatch_queue(struct dgbatch *b, unsigned i, size_t n);

/*
 * Send the queued replies on fd without waiting, in order.  A reply the
 * kernel refuses is passed to refused(arg, slot, errno) and the rest are
 * still sent.  Nothing stays queued.
 */
void		 dgbatch_send(struct dgbatch *b, int fd,
		    void (*refused)(void *arg, unsigned slot, int err),
		    void *arg);

#endif
