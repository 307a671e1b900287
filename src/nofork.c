/*
 * nofork.c - memory a fork() child does not inherit (see nofork.h).
 *
 * A chunk is 64 KiB, aligned to its size, so that an object finds its
 * chunk from its address: the header, then the objects.  Free objects
 * of a chunk are a list through their first bytes; objects never used
 * yet are counted by fresh, so a new chunk costs no walk.
 *
 * The checkers see the objects much as they see malloc()'s: under
 * AddressSanitizer each object is followed by a poisoned red zone and is
 * poisoned while free; LeakSanitizer scans the chunks for pointers (it
 * does not scan anonymous mappings of its own accord), so what a conn
 * points to is reachable, but a conn itself is not an allocation it
 * tracks.  Under valgrind each object is a heap block (MALLOCLIKE and
 * FREELIKE: a use after free is caught, an overrun into the next object
 * is not), and the chunks are inherited, because memcheck checks a
 * child for leaks when it exits, and blocks that only the parent's conns
 * point to would count as lost in it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nofork.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOFORK_ASAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOFORK_ASAN	1
#endif
#endif

#ifdef NOFORK_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define REDZONE		16
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#define ROOT_ADD(p, n)	__lsan_register_root_region(p, n)
#define ROOT_DEL(p, n)	__lsan_unregister_root_region(p, n)
#else
#define REDZONE		0
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#define ROOT_ADD(p, n)	((void)(p), (void)(n))
#define ROOT_DEL(p, n)	((void)(p), (void)(n))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define NOFORK_VALGRIND	1
#endif
#endif

#ifdef NOFORK_VALGRIND
#define UNDER_VALGRIND		(RUNNING_ON_VALGRIND != 0)
#define VG_GIVEN(p, n)		VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0)
#define VG_TAKEN(p)		VALGRIND_FREELIKE_BLOCK(p, 0)
#define VG_READABLE(p, n)	VALGRIND_MAKE_MEM_DEFINED(p, n)
#define VG_NOACCESS(p, n)	VALGRIND_MAKE_MEM_NOACCESS(p, n)
#else
#define UNDER_VALGRIND		false
#define VG_GIVEN(p, n)		((void)(p), (void)(n))
#define VG_TAKEN(p)		((void)(p))
#define VG_READABLE(p, n)	((void)(p), (void)(n))
#define VG_NOACCESS(p, n)	((void)(p), (void)(n))
#endif

#define CHUNK		((size_t)64 * 1024)
#define ALIGN		16

struct nofork_chunk {
	struct nofork_chunk *prev, *next;	/* the pool's avail list */
	void		*free;		/* objects given back */
	size_t		 fresh;		/* objects never handed out */
	size_t		 used;
	char		 obj[] __attribute__((aligned(ALIGN)));
};

static size_t
page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t
page_round(size_t n)
{
	return (n + page_size() - 1) & ~(page_size() - 1);
}

/*
 * size bytes (a multiple of the page) at an address aligned to align (a
 * power of two, at least the page), not inherited by a fork child; NULL
 * with errno set.
 */
static void *
map(size_t size, size_t align)
{
	size_t len = size + align - page_size(), lead;
	char *m, *p;
	int e;

	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
	lead = (size_t)(p - m);
	if (lead)
		munmap(m, lead);
	if (len - lead > size)
		munmap(p + size, len - lead - size);
	if (!UNDER_VALGRIND && madvise(p, size, MADV_DONTFORK) < 0) {
		e = errno;
		munmap(p, size);
		errno = e;
		return NULL;
	}
	ROOT_ADD(p, size);
	return p;
}

static void
unmap(void *p, size_t size)
{
	ROOT_DEL(p, size);
	UNPOISON(p, size);	/* the next mapping there is not ours */
	munmap(p, size);
}

/* On first use: the object size rounded, the objects a chunk holds. */
static void
pool_setup(struct nofork_pool *p)
{
	size_t room = CHUNK - sizeof(struct nofork_chunk);

	if (p->size > room || page_size() > CHUNK)
		return;
	if (p->size < sizeof(void *))	/* a free object holds a link */
		p->size = sizeof(void *);
	p->size = (p->size + REDZONE + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (p->size <= room)
		p->per_chunk = room / p->size;
}

static void
avail_unlink(struct nofork_pool *p, struct nofork_chunk *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		p->avail = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

static void
avail_push(struct nofork_pool *p, struct nofork_chunk *k)
{
	k->prev = NULL;
	k->next = p->avail;
	if (p->avail)
		p->avail->prev = k;
	p->avail = k;
}

static struct nofork_chunk *
chunk_new(struct nofork_pool *p)
{
	struct nofork_chunk *k;

	if (!(k = map(CHUNK, CHUNK)))
		return NULL;
	/* mmap() gave zeroes; the objects stay poisoned until handed out. */
	k->fresh = p->per_chunk;
	POISON(k->obj, p->per_chunk * p->size);
	VG_NOACCESS(k->obj, p->per_chunk * p->size);
	p->chunks++;
	p->empty++;
	avail_push(p, k);
	return k;
}

void *
nofork_pool_get(struct nofork_pool *p)
{
	struct nofork_chunk *k = p->avail;
	size_t usable;
	void *obj;

	if (!p->per_chunk) {
		pool_setup(p);
		if (!p->per_chunk) {
			errno = EINVAL;
			return NULL;
		}
	}
	if (!k && !(k = chunk_new(p)))
		return NULL;
	usable = p->size - REDZONE;
	if (k->free) {
		obj = k->free;
		UNPOISON(obj, usable);
		VG_READABLE(obj, sizeof(void *));
		memcpy(&k->free, obj, sizeof(void *));
	} else {
		obj = k->obj + (p->per_chunk - k->fresh) * p->size;
		UNPOISON(obj, usable);
		k->fresh--;
	}
	if (k->used++ == 0)
		p->empty--;
	if (k->used == p->per_chunk)
		avail_unlink(p, k);
	VG_GIVEN(obj, usable);
	memset(obj, 0, usable);
	return obj;
}

void
nofork_pool_put(struct nofork_pool *p, void *obj)
{
	struct nofork_chunk *k;

	if (!obj)
		return;
	k = (struct nofork_chunk *)((uintptr_t)obj & ~(uintptr_t)(CHUNK - 1));
	if (k->used == p->per_chunk)
		avail_push(p, k);
	memcpy(obj, &k->free, sizeof(void *));
	k->free = obj;
	VG_TAKEN(obj);
	POISON(obj, p->size - REDZONE);
	if (--k->used > 0)
		return;
	if (p->empty == 0) {
		p->empty++;	/* kept for the next connections */
		return;
	}
	avail_unlink(p, k);
	p->chunks--;
	unmap(k, CHUNK);
}

void *
nofork_alloc(size_t size)
{
	char *p = map(page_round(size), page_size());

	if (p)
		POISON(p + size, page_round(size) - size);
	return p;
}

void
nofork_free(void *obj, size_t size)
{
	if (obj)
		unmap(obj, page_round(size));
}
