/*
 * conn.c - connections, the set of those running, and their log lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "nofork.h"

/* Every conn: written for every connection, read by no fork child. */
static struct nofork_pool conn_pool = NOFORK_POOL(sizeof(struct conn));

static void
done_ready(struct loop_io *io, uint32_t revents)
{
	struct conns *cs = io->data;
	struct mailbox_link *m, *next;

	for (m = mailbox_take(&cs->done); m; m = next) {
		next = m->next;
		conns_finish(cs, mailbox_item(m, struct conn, mail));
	}
}

struct conns *
conns_new(struct stats *st, struct loop *lp, void (*finished)(void *),
    void *arg)
{
	struct conns *cs;
	int r;

	if (!(cs = nofork_alloc(sizeof(*cs))))
		return NULL;
	atomic_init(&cs->stopping, false);
	cs->stats = st;
	cs->finished = finished;
	cs->arg = arg;
	cs->done.fd = -1;
	if ((cs->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		r = -errno;
	else if ((r = mailbox_init(&cs->done)) == 0 &&
	    (r = mailbox_watch(&cs->done, lp, done_ready, cs)) == 0)
		return cs;
	conns_delete(cs, lp);
	errno = -r;
	return NULL;
}

void
conns_delete(struct conns *cs, struct loop *lp)
{
	if (!cs)
		return;
	mailbox_unwatch(&cs->done, lp);
	mailbox_fini(&cs->done);
	if (cs->stop_fd >= 0)
		close(cs->stop_fd);
	nofork_free(cs, sizeof(*cs));
}

bool
conns_on_threads(const struct conns *cs)
{
	const struct conn *c;

	for (c = cs->head; c; c = c->next)
		if (c->on_thread)
			return true;
	return false;
}

void
conns_free_all(struct conns *cs)
{
	struct conn *c, *next;

	for (c = cs->head; c; c = next) {
		next = c->next;
		conn_free(c);
	}
	cs->head = NULL;
	cs->n = 0;
}

void
conns_stop(struct conns *cs)
{
	uint64_t one = 1;

	atomic_store(&cs->stopping, true);
	(void)!write(cs->stop_fd, &one, sizeof(one));
}

void
conns_add(struct conns *cs, struct conn *c)
{
	c->prev = NULL;
	c->next = cs->head;
	if (cs->head)
		cs->head->prev = c;
	cs->head = c;
	cs->n++;
}

void
conns_remove(struct conns *cs, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	cs->n--;
}

void
conns_finish(struct conns *cs, struct conn *c)
{
	conns_remove(cs, c);
	conn_free(c);
	if (cs->finished)
		cs->finished(cs->arg);
}

void
conns_done(struct conns *cs, struct conn *c)
{
	/* cs is not touched after: the loop may take c, stop, free cs. */
	mailbox_post(&cs->done, &c->mail);
}

size_t
conns_count_source(const struct conns *cs, const struct netaddr_source *src)
{
	const struct conn *c;
	size_t n = 0;

	for (c = cs->head; c; c = c->next)
		if (!c->dgram && netaddr_source_equal(&c->src, src))
			n++;
	return n;
}

/*
 * Running sessions count under the new prefixes from now on, so the
 * per-source cap holds for the sessions that come next.  A Unix peer's
 * source is its user and does not change.
 */
void
conns_rekey(struct conns *cs, unsigned prefix4, unsigned prefix6)
{
	struct conn *c;

	for (c = cs->head; c; c = c->next)
		if (!c->dgram && c->src.net.family != AF_UNIX)
			netaddr_source((struct sockaddr *)&c->peer, 0, prefix4,
			    prefix6, &c->src);
}

struct conn *
conn_new(struct conns *cs, int slot, const char *transport, const char *lname,
    size_t max_line, int idle_timeout)
{
	struct conn *c;

	if (!(c = nofork_pool_get(&conn_pool)))
		return NULL;
	c->set = cs;
	c->stats = cs->stats;
	c->fd = -1;
	c->fork.pid = -1;
	c->stats_slot = slot;
	stats_ref(cs->stats, slot);
	c->transport = transport;
	snprintf(c->lname, sizeof(c->lname), "%s", lname);
	c->max_line = max_line;
	c->idle_timeout = idle_timeout;
	c->start_ms = clock_ms();
	return c;
}

void
conn_free(struct conn *c)
{
	if (!c)
		return;
	stats_unref(c->stats, c->stats_slot);
	session_free(&c->sess);
	if (c->own_fd && c->fd >= 0)
		close(c->fd);
	free(c->data);
	nofork_pool_put(&conn_pool, c);
}

void
conn_child_copy(struct conn *dst, const struct conn *c)
{
	*dst = *c;
	/* What points into memory the child lacks: the set and its links. */
	dst->set = NULL;
	dst->prev = dst->next = NULL;
	memset(&dst->mail, 0, sizeof(dst->mail));
	memset(&dst->ev, 0, sizeof(dst->ev));
	memset(&dst->thread, 0, sizeof(dst->thread));
	/* The one pointer into the conn itself. */
	if (c->sess.peer == c->peerstr)
		dst->sess.peer = dst->peerstr;
}

struct lstats *
conn_stats(const struct conn *c)
{
	return stats_of(c->stats, c->stats_slot);
}

void
conn_peer_cred(struct conn *c, struct ucred *uc)
{
	socklen_t len = sizeof(*uc);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, uc, &len) == 0)
		snprintf(c->cred, sizeof(c->cred), "uid=%u gid=%u pid=%d",
		    (unsigned)uc->uid, (unsigned)uc->gid, (int)uc->pid);
}

bool
conn_logs(struct conn *c, int prio)
{
	if (!log_enabled(prio))
		return false;
	if (c->unnamed) {
		netaddr_format((struct sockaddr *)&c->peer, c->peerlen,
		    c->peerstr, sizeof(c->peerstr));
		snprintf(c->lname, sizeof(c->lname), "%s", c->unnamed);
		c->unnamed = NULL;
	}
	return true;
}

void
conn_log_fields(const struct conn *c, struct log_fields *f)
{
	f->peer = c->peerstr;
	f->proxy = c->proxystr[0] ? c->proxystr : NULL;
	f->transport = c->transport;
	f->listener = c->lname;
	f->cred = c->cred[0] ? c->cred : NULL;
}

void
conn_log_end(const struct conn *c)
{
	struct log_fields f = LOG_FIELDS_INIT;
	enum session_end e = c->sess.end;
	bool error = session_end_is_error(e);

	conn_log_fields(c, &f);
	f.duration_ms = (long long)(clock_ms() - c->start_ms);
	f.lines = (long long)c->sess.lines;
	if (error)
		f.error = session_end_name(e);
	log_fields(error && e != SESSION_IDLE ? LOG_NOTICE :
	    c->quiet ? LOG_DEBUG : LOG_INFO, &f,
	    "session from %s%s%s closed: %s, %llu lines, %lld ms", c->peerstr,
	    c->inetd ? "" : " on ", c->inetd ? "" : c->lname,
	    session_end_name(e), (unsigned long long)c->sess.lines,
	    f.duration_ms);
}

void
conn_ended(struct conn *c)
{
	if (session_end_is_error(c->sess.end))
		atomic_fetch_add(&conn_stats(c)->errors, 1);
	conn_log_end(c);
}

/*
 * The debug lines of the datagram path (c already named by conn_logs()),
 * out of line: their buffers are not set up on every datagram.
 */
static void __attribute__((cold, noinline))
log_unverified(const struct conn *c, int r)
{
	char who[48] = "";

	if (c->dgcred.known)
		snprintf(who, sizeof(who), " (uid=%u pid=%d)",
		    (unsigned)c->dgcred.uc.uid, (int)c->dgcred.uc.pid);
	log_msg(LOG_DEBUG, "datagram from %s on %s dropped: cannot verify "
	    "the sender's socket: %s%s", c->peerstr, c->lname,
	    dgpeer_strerror(r), who);
}

static void __attribute__((noinline))
log_dgram(const struct conn *c, bool is_error)
{
	char esc[256];

	log_escape(esc, sizeof(esc), c->data,
	    lp_datagram_text(c->data, c->datalen));
	log_msg(LOG_DEBUG, "%s: datagram \"%s\"%s", c->peerstr, esc,
	    is_error ? " (too long)" : "");
}

/*
 * Checked here, in whichever thread or child replies, right before the
 * send.  A UDP peer needs no check: accept_dgram.c's answer_in_loop()
 * sends a UDP reply answered in the loop itself, so a check added here
 * for UDP peers must be added there too.
 */
bool
conn_send_dgram(struct conn *c, const void *buf, size_t n)
{
	struct dgpeer p;
	int r;

	if ((r = dgpeer_open(&p, (struct sockaddr *)&c->peer, c->peerlen,
	    &c->dgcred)) < 0) {
		atomic_fetch_add(&conn_stats(c)->dropped, 1);
		if (conn_logs(c, LOG_DEBUG))
			log_unverified(c, r);
		return false;
	}
	conn_sendto(c, buf, n, p.sa, p.salen);
	dgpeer_close(&p);
	return true;
}

void
conn_dgram_unsent(struct conn *c, int err)
{
	if (conn_logs(c, LOG_DEBUG))
		log_msg(LOG_DEBUG, "reply to %s: %s", c->peerstr,
		    strerror(err));
}

void
conn_dgram_answered(struct conn *c, bool is_error)
{
	struct lstats *st = conn_stats(c);

	if (is_error)
		atomic_fetch_add(&st->errors, 1);
	else
		atomic_fetch_add(&st->lines, 1);
	if (conn_logs(c, LOG_DEBUG))
		log_dgram(c, is_error);
}

void
conn_answer_dgram(struct conn *c, char *out)
{
	char *mine = NULL;
	bool is_error;
	size_t n;

	if (!out && !(out = mine = malloc(dgram_reply_cap(c->max_line))))
		return;
	n = dgram_reply(c->data, c->datalen, c->max_line, out, &is_error);
	if (conn_send_dgram(c, out, n))
		conn_dgram_answered(c, is_error);
	free(mine);
}
