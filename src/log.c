/*
 * log.c - logging to the journal (structured), stderr or syslog.
 *
 * One mutex serialises the output of every thread.  Once the daemon
 * starts other threads (log_before_threads()), it is taken across fork()
 * by pthread_atfork() handlers, so a child forked while another thread is
 * in the middle of a log call never inherits it locked.  The
 * threshold is an atomic so that log_enabled() needs no lock on the hot
 * path (per-line debug messages).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "log.h"
#include "sdlib.h"
#include "strbuf.h"

#define LOG_IDENT		"echotimed"
#define JOURNAL_SOCKET		"/run/systemd/journal/socket"
/*
 * Messages are formatted on the stack; threads may run on stacks as small
 * as 16 KiB, so these stay modest.  Longer messages are cut with "...".
 */
#define LOG_LINE_MAX		2048
#define LOG_HEAD		48	/* room for the longest prefix */
#define LOG_SCRATCH_MAX		1024
#define LOG_IOV_MAX		12

enum target {
	TARGET_STDERR,
	TARGET_JOURNAL,
	TARGET_SYSLOG,
};

static pthread_mutex_t	 log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t	 log_once = PTHREAD_ONCE_INIT;
static atomic_int	 log_level = LOG_INFO;
/* Guarded by log_lock. */
static enum target	 log_target = TARGET_STDERR;
static int		 log_stderr_journal;	/* fd 2 is the journal's stream */
static int		 log_syslog_open;

static void
log_atfork_prepare(void)
{
	pthread_mutex_lock(&log_lock);
}

static void
log_atfork_release(void)
{
	pthread_mutex_unlock(&log_lock);
}

static void
log_register_atfork(void)
{
	(void)pthread_atfork(log_atfork_prepare, log_atfork_release,
	    log_atfork_release);
}

void
log_before_threads(void)
{
	pthread_once(&log_once, log_register_atfork);
}

static int
clamp_level(int level)
{
	if (level < LOG_EMERG)
		return LOG_EMERG;
	if (level > LOG_DEBUG)
		return LOG_DEBUG;
	return level;
}

/* True if JOURNAL_STREAM names the file fd 2 is open on. */
static int
stderr_is_journal_stream(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;
	int n = 0;

	if (e == NULL || sscanf(e, "%ju:%ju%n", &dev, &ino, &n) != 2 ||
	    e[n] != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/*
 * journald listens, and libsystemd loads (sdlib.c: the library is opened
 * only here, once the journal is chosen).  Without the library messages
 * go to stderr, as they do without journald.
 */
static int
journal_usable(void)
{
	return access(JOURNAL_SOCKET, F_OK) == 0 && sdlib_load() == 0;
}

/* Where "auto" goes outside systemd: stderr, or syslog for -d and inetd. */
static enum log_target auto_fallback = LOG_TARGET_STDERR;

void
log_set_auto_fallback(enum log_target t)
{
	auto_fallback = t;
}

static enum target
resolve_target(enum log_target t)
{
	switch (t) {
	case LOG_TARGET_SYSLOG:
		return TARGET_SYSLOG;
	case LOG_TARGET_STDERR:
		return TARGET_STDERR;
	case LOG_TARGET_JOURNAL:
		/*
		 * sd_journal_send() drops messages silently without
		 * journald; stderr at least shows them somewhere.
		 * log_target_in_use() tells the caller.
		 */
		return journal_usable() ? TARGET_JOURNAL :
		    TARGET_STDERR;
	case LOG_TARGET_AUTO:
	default:
		if (stderr_is_journal_stream() && sdlib_load() == 0)
			return TARGET_JOURNAL;
		if (getenv("INVOCATION_ID") != NULL && journal_usable())
			return TARGET_JOURNAL;
		return auto_fallback == LOG_TARGET_SYSLOG ? TARGET_SYSLOG :
		    TARGET_STDERR;
	}
}

void
log_open(enum log_target target, int level)
{
	int saved_errno = errno;
	enum target t;

	t = resolve_target(target);

	pthread_mutex_lock(&log_lock);
	if (log_syslog_open && t != TARGET_SYSLOG) {
		closelog();
		log_syslog_open = 0;
	}
	if (t == TARGET_SYSLOG && !log_syslog_open) {
		openlog(LOG_IDENT, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog_open = 1;
	}
	log_target = t;
	log_stderr_journal = t == TARGET_STDERR && stderr_is_journal_stream();
	atomic_store(&log_level, clamp_level(level));
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}

void
log_set_level(int level)
{
	atomic_store(&log_level, clamp_level(level));
}

int
log_enabled(int prio)
{
	return (prio & LOG_PRIMASK) <= atomic_load_explicit(&log_level,
	    memory_order_relaxed);
}

const char *
log_target_in_use(void)
{
	enum target t;

	pthread_mutex_lock(&log_lock);
	t = log_target;
	pthread_mutex_unlock(&log_lock);
	switch (t) {
	case TARGET_JOURNAL:
		return "journal";
	case TARGET_SYSLOG:
		return "syslog";
	case TARGET_STDERR:
	default:
		return "stderr";
	}
}

static const char *
prio_name(int prio)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error",
		"warning", "notice", "info", "debug",
	};

	return names[prio & LOG_PRIMASK];
}

/* A value for key=value on stderr and syslog; quoted if it needs it. */
static void
append_value(char *buf, size_t size, size_t *pos, const char *key,
    const char *v)
{
	const char *s;

	if (v[0] != '\0' && strpbrk(v, " \t\r\n\"=\\") == NULL) {
		strbuf_printf(buf, size, pos, " %s=%s", key, v);
		return;
	}
	strbuf_printf(buf, size, pos, " %s=\"", key);
	for (s = v; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_printf(buf, size, pos, "\\%c", *s);
		else
			strbuf_printf(buf, size, pos, "%c", *s);
	}
	strbuf_printf(buf, size, pos, "\"");
}

/* One structured field: a text, or a number when text is NULL. */
struct field {
	const char	*key;		/* the journal's name */
	const char	*text;
	long long	 num;
};

#define NFIELDS	8

/* The fields f sets, in the order they are written; returns how many. */
static size_t
fields_of(const struct log_fields *f, struct field *out)
{
	size_t n = 0;

	if (f == NULL)
		return 0;
	if (f->peer != NULL)
		out[n++] = (struct field){ "PEER", f->peer, 0 };
	if (f->proxy != NULL)
		out[n++] = (struct field){ "PROXY", f->proxy, 0 };
	if (f->transport != NULL)
		out[n++] = (struct field){ "TRANSPORT", f->transport, 0 };
	if (f->listener != NULL)
		out[n++] = (struct field){ "LISTENER", f->listener, 0 };
	if (f->duration_ms >= 0)
		out[n++] = (struct field){ "DURATION_MS", NULL,
		    f->duration_ms };
	if (f->lines >= 0)
		out[n++] = (struct field){ "LINES", NULL, f->lines };
	if (f->error != NULL)
		out[n++] = (struct field){ "ERROR", f->error, 0 };
	if (f->cred != NULL)
		out[n++] = (struct field){ "PEER_CRED", f->cred, 0 };
	return n;
}

/* On stderr and syslog: " key=value" with the key in lower case. */
static void
append_fields(char *buf, size_t size, size_t *pos, const struct log_fields *f)
{
	struct field fl[NFIELDS];
	char key[16];
	size_t n = fields_of(f, fl), i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; fl[i].key[k] && k < sizeof(key) - 1; k++)
			key[k] = (char)tolower((unsigned char)fl[i].key[k]);
		key[k] = '\0';
		if (fl[i].text != NULL)
			append_value(buf, size, pos, key, fl[i].text);
		else
			strbuf_printf(buf, size, pos, " %s=%lld", key,
			    fl[i].num);
	}
}

/* One journal field "KEY=value" carved out of scratch. */
static void
__attribute__((format(printf, 5, 6)))
journal_field(struct iovec *iov, size_t *n, char *scratch, size_t *used,
    const char *fmt, ...)
{
	va_list ap;
	int len;

	if (*n >= LOG_IOV_MAX || *used + 1 >= LOG_SCRATCH_MAX)
		return;
	va_start(ap, fmt);
	len = vsnprintf(scratch + *used, LOG_SCRATCH_MAX - *used, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= LOG_SCRATCH_MAX - *used)
		len = (int)(LOG_SCRATCH_MAX - *used - 1);
	iov[*n].iov_base = scratch + *used;
	iov[*n].iov_len = (size_t)len;
	(*n)++;
	*used += (size_t)len + 1;
}

/* Messages are single lines whatever the caller passed. */
static void
flatten(char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '\n' || s[i] == '\r')
			s[i] = ' ';
}

static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static int
send_journal(int prio, const char *line, size_t len,
    const struct log_fields *f)
{
	struct iovec iov[LOG_IOV_MAX];
	char scratch[LOG_SCRATCH_MAX];
	struct field fl[NFIELDS];
	size_t n = 0, used = 0, nf = fields_of(f, fl), i;

	iov[n].iov_base = (char *)line;		/* "MESSAGE=..." */
	iov[n].iov_len = len;
	n++;
	journal_field(iov, &n, scratch, &used, "PRIORITY=%d", prio);
	journal_field(iov, &n, scratch, &used, "SYSLOG_IDENTIFIER=%s",
	    LOG_IDENT);
	for (i = 0; i < nf; i++) {
		if (fl[i].text != NULL)
			journal_field(iov, &n, scratch, &used, "%s=%s",
			    fl[i].key, fl[i].text);
		else
			journal_field(iov, &n, scratch, &used, "%s=%lld",
			    fl[i].key, fl[i].num);
	}
	return sdlib_journal_sendv(iov, (int)n);
}

/*
 * Put prefix right in front of msg, which starts LOG_HEAD bytes into its
 * buffer, and return where the line now starts.
 */
static char *
prepend(char *msg, const char *prefix)
{
	size_t n = strlen(prefix);

	memcpy(msg - n, prefix, n);
	return msg - n;
}

static void
__attribute__((format(printf, 3, 0)))
log_vemit(int prio, const struct log_fields *f, const char *fmt, va_list ap)
{
	char buf[LOG_HEAD + LOG_LINE_MAX], pre[LOG_HEAD];
	char *msg = buf + LOG_HEAD, *line;
	size_t len = 0, size = LOG_LINE_MAX - 1;	/* room for '\n' */
	int saved_errno = errno;
	int n;

	prio &= LOG_PRIMASK;

	errno = saved_errno;	/* for %m */
	n = vsnprintf(msg, size, fmt, ap);
	if (n < 0)
		msg[0] = '\0';
	else if ((size_t)n >= size) {
		len = size - 1;
		memcpy(msg + len - 3, "...", 3);
	} else
		len = (size_t)n;

	pthread_mutex_lock(&log_lock);
	if (log_target == TARGET_JOURNAL) {
		flatten(msg, len);
		line = prepend(msg, "MESSAGE=");
		if (send_journal(prio, line, len + (size_t)(msg - line),
		    f) >= 0)
			goto out;
		/* Not silently lost: fall back to stderr. */
	}
	append_fields(msg, size, &len, f);
	flatten(msg, len);
	if (log_target == TARGET_SYSLOG) {
		syslog(prio, "%s", msg);
		goto out;
	}
	if (log_target == TARGET_STDERR && log_stderr_journal)
		snprintf(pre, sizeof(pre), "<%d>", prio);
	else
		snprintf(pre, sizeof(pre), "%s[%ld]: %s: ", LOG_IDENT,
		    (long)getpid(), prio_name(prio));
	line = prepend(msg, pre);
	msg[len++] = '\n';
	write_all(STDERR_FILENO, line, len + (size_t)(msg - line));
out:
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	/*
	 * Checked before log_vemit()'s large stack frame is entered: in a
	 * fork-model parent that page is shared with the last child, and
	 * touching it costs a copy-on-write fault per connection.
	 */
	if (!log_enabled(prio & LOG_PRIMASK))
		return;
	va_start(ap, fmt);
	log_vemit(prio, NULL, fmt, ap);
	va_end(ap);
}

void
log_fields(int prio, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(prio & LOG_PRIMASK))	/* see log_msg() */
		return;
	va_start(ap, fmt);
	log_vemit(prio, f, fmt, ap);
	va_end(ap);
}
