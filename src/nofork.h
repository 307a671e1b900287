/*
 * nofork.h - memory a fork() child does not inherit (MADV_DONTFORK), for
 * what the daemon writes for every connection and no child reads: the
 * conns and their set.
 *
 * After each fork() every private page the parent writes is copied on
 * its first write, 15 to 19 us a page on a host whose hypervisor shadows
 * the page tables; a parent that forks a child per connection and writes
 * a conn, malloc's chunks and arena and a list head for each paid that
 * for each of those pages (tests/bench/README.md, "What the fork parent
 * writes").  Pages a child does not inherit are never copied.
 *
 * In a child this memory is not mapped (reading it is SIGSEGV): the fork
 * model hands its child a copy of the conn on its stack
 * (conn_child_copy()).  Not thread-safe: the main thread makes and frees
 * conns.  AddressSanitizer and valgrind check the objects as they check
 * malloc()'s; under valgrind a child inherits the memory (nofork.c).
 */
#ifndef ECHOTIMED_NOFORK_H
#define ECHOTIMED_NOFORK_H
#include <stddef.h>

/* Objects of one size, in chunks of 64 KiB: NOFORK_POOL(size). */
struct nofork_pool {
	size_t		 size;		/* of an object (rounded up once used) */
	size_t		 per_chunk;	/* 0 until first used */
	struct nofork_chunk *avail;	/* chunks with a free object */
	size_t		 chunks;	/* mapped */
	size_t		 empty;		/* of those, with no object in use */
};

#define NOFORK_POOL(objsize)	{ .size = (objsize) }

/* A zeroed object, or NULL with errno set (EINVAL: larger than a chunk). */
void	*nofork_pool_get(struct nofork_pool *p);
/* Give back an object of p; NULL is fine.  A chunk left empty is unmapped
 * unless it is the only empty one (kept for the next connections). */
void	 nofork_pool_put(struct nofork_pool *p, void *obj);

/* One zeroed object of size bytes in pages of its own, or NULL (errno). */
void	*nofork_alloc(size_t size);
/* Free what nofork_alloc(size) returned; NULL is fine. */
void	 nofork_free(void *obj, size_t size);
#endif
