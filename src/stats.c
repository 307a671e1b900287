/*
 * stats.c - shared statistics slots and the status text (see stats.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "stats.h"
#include "strbuf.h"

/*
 * The slots, then each slot's count of conns.  Only the main thread
 * writes the counts, but a page of the parent's own written for every
 * connection would be copied on its first write after each fork() (15
 * to 19 us on a host with shadowed page tables; tests/bench/README.md,
 * "What the fork parent writes"); a shared page never is.
 */
#define SHARED_SIZE	((sizeof(struct lstats) + sizeof(unsigned)) * STATS_SLOTS)

int
stats_init(struct stats *st)
{
	memset(st, 0, sizeof(*st));
	st->slots = mmap(NULL, SHARED_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st->slots == MAP_FAILED) {
		st->slots = NULL;
		return -errno;
	}
	st->conns = (unsigned *)(st->slots + STATS_SLOTS);
	return 0;
}

void
stats_fini(struct stats *st)
{
	if (st->slots)
		munmap(st->slots, SHARED_SIZE);
	st->slots = NULL;
	st->conns = NULL;
}

/*
 * A slot is in use while its listener or any session started on it (a
 * thread, a loop thread or a fork child may still count lines in it after
 * a reload removed the listener) uses it; only then is it reused.
 */
static bool
in_use(const struct stats *st, int i)
{
	return st->owned[i] || st->conns[i] > 0;
}

int
stats_claim(struct stats *st)
{
	int i;

	for (i = 0; i < STATS_SLOTS; i++)
		if (!in_use(st, i)) {
			st->owned[i] = true;
			memset((void *)&st->slots[i], 0, sizeof(st->slots[i]));
			return i;
		}
	return -1;
}

static void
add(struct lstats *to, struct lstats *from)
{
	to->sessions += from->sessions;
	to->lines += from->lines;
	to->errors += from->errors;
	to->rejects += from->rejects;
	to->refused += from->refused;
	to->dropped += from->dropped;
	to->bad_headers += from->bad_headers;
}

/* Once unused, a slot's counts join the retired ones. */
static void
fold_if_unused(struct stats *st, int slot)
{
	if (!in_use(st, slot))
		add(&st->retired, &st->slots[slot]);
}

void
stats_release(struct stats *st, int slot)
{
	if (slot < 0 || slot >= STATS_SLOTS)
		return;
	st->owned[slot] = false;
	fold_if_unused(st, slot);
}

void
stats_ref(struct stats *st, int slot)
{
	if (slot >= 0 && slot < STATS_SLOTS)
		st->conns[slot]++;
}

void
stats_unref(struct stats *st, int slot)
{
	if (slot < 0 || slot >= STATS_SLOTS)
		return;
	st->conns[slot]--;
	fold_if_unused(st, slot);
}

/* The daemon's totals. */
static void
total(struct stats *st, struct lstats *t)
{
	int i;

	memset((void *)t, 0, sizeof(*t));
	add(t, &st->retired);
	for (i = 0; i < STATS_SLOTS; i++)
		if (in_use(st, i))
			add(t, &st->slots[i]);
}

static void
figures(char *buf, size_t len, size_t *o, struct lstats *s)
{
	strbuf_printf(buf, len, o, "%llu sessions, %llu lines, %llu errors, "
	    "%llu rejected, %llu refused, %llu dropped, %llu bad headers",
	    (unsigned long long)s->sessions, (unsigned long long)s->lines,
	    (unsigned long long)s->errors, (unsigned long long)s->rejects,
	    (unsigned long long)s->refused, (unsigned long long)s->dropped,
	    (unsigned long long)s->bad_headers);
}

void
stats_text(struct stats *st, const struct stats_status *ss, bool detail,
    char *buf, size_t len)
{
	struct stats_listener l;
	struct lstats t;
	void *cur = NULL;
	size_t o = 0;
	bool first = true;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (ss->reload_error[0])
		strbuf_printf(buf, len, &o, "reload failed: %s; ",
		    ss->reload_error);
	strbuf_printf(buf, len, &o, "model %s; listening on", ss->model);
	while (ss->next(ss->arg, &cur, &l)) {
		strbuf_printf(buf, len, &o, "%s %s %s", first ? "" : ",",
		    l.transport, l.bound);
		first = false;
	}
	total(st, &t);
	strbuf_printf(buf, len, &o, "; %zu active, ", ss->active);
	figures(buf, len, &o, &t);
	for (cur = NULL; detail && ss->next(ss->arg, &cur, &l); ) {
		strbuf_printf(buf, len, &o, "; %s %s: ", l.transport, l.label);
		figures(buf, len, &o, stats_of(st, l.slot));
	}
}
