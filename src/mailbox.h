/*
 * mailbox.h - hand items from any thread to the thread of one loop: a
 * locked list and an eventfd that the reader's loop watches.  Items embed
 * a struct mailbox_link; the reader takes them all at once, in the order
 * they were posted.
 */
#ifndef ECHOTIMED_MAILBOX_H
#define ECHOTIMED_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "loop.h"

struct mailbox_link {
	struct mailbox_link *next;
};

/* The item of type that embeds link as member. */
#define mailbox_item(link, type, member) \
	((type *)(void *)((char *)(link) - offsetof(type, member)))

struct mailbox {
	pthread_mutex_t	 lock;
	struct mailbox_link *head;	/* posted, newest first */
	int		 fd;		/* eventfd: readable while items wait */
	struct loop_io	 io;
};

/* An empty mailbox with its eventfd.  0 or -errno. */
int		 mailbox_init(struct mailbox *mb);
/* Close the eventfd (after mailbox_unwatch); items left are the caller's. */
void		 mailbox_fini(struct mailbox *mb);
/* Call cb(&mb->io, ...) from lp whenever items wait (io->data = data). */
int		 mailbox_watch(struct mailbox *mb, struct loop *lp,
		    loop_io_fn *cb, void *data);
/* Stop the watch of mailbox_watch(). */
void		 mailbox_unwatch(struct mailbox *mb, struct loop *lp);
/*
 * Post an item, from any thread.  Only the first item since the reader's
 * last take wakes it; returns whether this one did.  mb is not touched
 * after the item is in: the reader may take it and free mb at once.
 */
bool		 mailbox_post(struct mailbox *mb, struct mailbox_link *item);
/* Take every item posted so far, oldest first; NULL if none. */
struct mailbox_link *mailbox_take(struct mailbox *mb);

#endif
