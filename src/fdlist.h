/*
 * fdlist.h - the parent's descriptors a forked child must close, gathered
 * by the parent just before fork().  The parent reads its own structures
 * where they are; a child that walked them itself would fault in every
 * page they sit on, and a first touch after fork() is a page fault of its
 * own (tests/bench/README.md, "What a fork child touches").
 */
#ifndef ECHOTIMED_FDLIST_H
#define ECHOTIMED_FDLIST_H

#include <stddef.h>

struct fdlist {
	int	*fd;	/* room for max */
	size_t	 n;	/* counted: over max, the rest were not stored */
	size_t	 max;
	int	 keep;	/* the child's own: never added */
};

/* Add fd, unless it is negative or keep. */
static inline void
fdlist_add(struct fdlist *l, int fd)
{
	if (fd < 0 || fd == l->keep)
		return;
	if (l->n < l->max)
		l->fd[l->n] = fd;
	l->n++;
}

#endif
