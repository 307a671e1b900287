/*
 * stats.h - the statistics: one slot of counters per listener, in memory
 * shared with forked children (they count their own lines), what closed
 * listeners counted, and the one formatter of the STATUS text and the
 * SIGUSR1 statistics line.
 */
#ifndef ECHOTIMED_STATS_H
#define ECHOTIMED_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_SLOTS	64	/* listeners ever open at once */

/* Statistics of one listener. */
struct lstats {
	_Atomic uint64_t sessions;	/* sessions started / datagrams answered */
	_Atomic uint64_t lines;		/* lines (requests) answered */
	_Atomic uint64_t errors;	/* sessions ended by an error */
	_Atomic uint64_t rejects;	/* refused for limits (busy) */
	_Atomic uint64_t refused;	/* refused by the access lists */
	_Atomic uint64_t dropped;	/* datagrams dropped (checks, rate) */
	_Atomic uint64_t bad_headers;	/* PROXY headers bad, late, missing */
};

struct stats {
	struct lstats	*slots;		/* STATS_SLOTS, MAP_SHARED */
	bool		 owned[STATS_SLOTS];	/* by a listener */
	unsigned	*conns;		/* STATS_SLOTS: conns counting in
					 * each, in the same mapping */
	struct lstats	 retired;	/* counts of closed listeners */
};

/* What the status text shows of one listener. */
struct stats_listener {
	const char	*transport;
	const char	*bound;		/* its address */
	const char	*label;		/* its name, or its address */
	int		 slot;
};

/*
 * The caller's listeners, one per call: fills *out and returns true, or
 * false after the last.  *cursor is NULL on the first call.
 */
typedef bool	stats_next_fn(void *arg, void **cursor,
		    struct stats_listener *out);

/* What the status text says besides the counters. */
struct stats_status {
	const char	*reload_error;	/* "" if the last reload worked */
	const char	*model;
	size_t		 active;	/* sessions running */
	stats_next_fn	*next;		/* the listeners */
	void		*arg;
};

/* Map the shared slots.  0 or -errno. */
int		 stats_init(struct stats *st);
/* Unmap them; fine after a failed stats_init(). */
void		 stats_fini(struct stats *st);
/* A fresh slot for a listener, or -1 when all are in use. */
int		 stats_claim(struct stats *st);
/* The listener of slot is gone; the slot is reused once no conn counts. */
void		 stats_release(struct stats *st, int slot);
/* A conn counts in slot from stats_ref() to stats_unref(). */
void		 stats_ref(struct stats *st, int slot);
void		 stats_unref(struct stats *st, int slot);
/*
 * The counters of slot (never NULL: -1 counts with the retired ones).
 * Inline: every datagram counts through it.
 */
static inline struct lstats *
stats_of(struct stats *st, int slot)
{
	if (slot < 0 || slot >= STATS_SLOTS)
		return &st->retired;
	return &st->slots[slot];
}
/*
 * The STATUS text into buf; with detail, the SIGUSR1 line: the same text
 * followed by each listener's figures.
 */
void		 stats_text(struct stats *st, const struct stats_status *ss,
		    bool detail, char *buf, size_t len);

#endif
