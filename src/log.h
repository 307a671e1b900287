/*
 * log.h - logging to the journal (structured), stderr or syslog.
 *
 * Thread-safe and fork-safe: one mutex serialises output and, once the
 * process starts other threads (log_before_threads()), is held across
 * fork(), so a child never inherits it locked.  Client
 * bytes must go through log_escape() before they reach a message.
 */
#ifndef ECHOTIMED_LOG_H
#define ECHOTIMED_LOG_H

#include <stddef.h>
#include <syslog.h>

#include "config.h"
#include "escape.h"

/* Structured fields of a session event; NULL / -1 members are left out. */
struct log_fields {
	const char	*peer;		/* PEER= */
	const char	*transport;	/* TRANSPORT= */
	const char	*listener;	/* LISTENER= */
	long long	 duration_ms;	/* DURATION_MS= */
	long long	 lines;		/* LINES= */
	const char	*error;		/* ERROR= */
	const char	*cred;		/* PEER_CRED= uid/gid/pid of unix peers */
	const char	*proxy;		/* PROXY= the proxy a PROXY header came
					 * from; PEER= is then the client */
};
#define LOG_FIELDS_INIT	{ NULL, NULL, NULL, -1, -1, NULL, NULL, NULL }

/*
 * Call before starting a thread that may log (idempotent): fork() takes
 * the log's lock from then on.  A process with no other thread needs no
 * pthread_atfork() handler, and the two (this one and the time cache's)
 * cost about 6 % of a fork connection's CPU (tests/bench/README.md, "What
 * the fork parent writes").
 */
void	log_before_threads(void);
/* Pick or change (at reload) the target and threshold; auto = the journal
 * under systemd, else the auto fallback (stderr, or syslog once set). */
void	log_open(enum log_target target, int level);
/* Where "auto" logs outside systemd: stderr (default) or syslog. */
void	log_set_auto_fallback(enum log_target t);
/* Change the threshold alone (log_open() sets both). */
void	log_set_level(int level);
/* True if a message at prio would be written. */
int	log_enabled(int prio);
/* One message at a syslog priority. */
void	log_msg(int prio, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* One message with structured fields (journal) or appended key=value. */
void	log_fields(int prio, const struct log_fields *f, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Name of the target actually in use: "journal", "stderr", "syslog". */
const char *log_target_in_use(void);

#endif
