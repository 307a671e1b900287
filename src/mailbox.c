/*
 * mailbox.c - a locked list and an eventfd (see mailbox.h).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mailbox.h"

int
mailbox_init(struct mailbox *mb)
{
	mb->head = NULL;
	mb->io.added = false;
	if ((mb->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	pthread_mutex_init(&mb->lock, NULL);
	return 0;
}

void
mailbox_fini(struct mailbox *mb)
{
	if (mb->fd < 0)
		return;
	close(mb->fd);
	mb->fd = -1;
	pthread_mutex_destroy(&mb->lock);
}

int
mailbox_watch(struct mailbox *mb, struct loop *lp, loop_io_fn *cb,
    void *data)
{
	return loop_add(lp, &mb->io, mb->fd, EPOLLIN, cb, data);
}

void
mailbox_unwatch(struct mailbox *mb, struct loop *lp)
{
	loop_del(lp, &mb->io);
}

bool
mailbox_post(struct mailbox *mb, struct mailbox_link *item)
{
	uint64_t one = 1;
	bool wake;

	/*
	 * The write is made under the lock, and mb is not used after the
	 * unlock: once the item is in, the reader may take it, and the last
	 * item may be what lets its owner free mb.
	 */
	pthread_mutex_lock(&mb->lock);
	wake = mb->head == NULL;
	if (wake)
		(void)!write(mb->fd, &one, sizeof(one));
	item->next = mb->head;
	mb->head = item;
	pthread_mutex_unlock(&mb->lock);
	return wake;
}

struct mailbox_link *
mailbox_take(struct mailbox *mb)
{
	struct mailbox_link *it, *next, *first = NULL;
	uint64_t v;

	/* Read before taking the list, so that no wake-up can be lost. */
	(void)!read(mb->fd, &v, sizeof(v));
	pthread_mutex_lock(&mb->lock);
	it = mb->head;
	mb->head = NULL;
	pthread_mutex_unlock(&mb->lock);
	/* The list is a stack: turn it around, oldest first. */
	for (; it; it = next) {
		next = it->next;
		it->next = first;
		first = it;
	}
	return first;
}
