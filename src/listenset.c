/*
 * listenset.c - the set of listening sockets (see listenset.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listenset.h"
#include "log.h"
#include "notify.h"
#include "sdlib.h"

static const char *
label_of(const struct listener *l)
{
	return l->conf.name && l->conf.name[0] ? l->conf.name : l->bound;
}

const char *
lsock_label(const struct lsock *s)
{
	return label_of(s->l);
}

void
listenset_init(struct listenset *ls, struct loop *lp, struct stats *st,
    void (*ready)(struct lsock *, void *), void *arg)
{
	memset(ls, 0, sizeof(*ls));
	ls->loop = lp;
	ls->stats = st;
	ls->ready = ready;
	ls->arg = arg;
}

static struct lsock *
lsock_new(struct listenset *ls, struct listener *l)
{
	struct lsock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->l = l;
	s->set = ls;
	s->stats_slot = -1;
	return s;
}

static void
append(struct lsock **head, struct lsock *s)
{
	while (*head)
		head = &(*head)->next;
	s->next = NULL;
	*head = s;
}

/* ---- the fd store ---- */

/* A name for the fd store: systemd forbids ':' in FDNAME. */
static void
fdstore_name(const struct listener *l, char *buf, size_t len)
{
	char *p;

	if (l->conf.name && l->conf.name[0])
		snprintf(buf, len, "%s", l->conf.name);
	else
		snprintf(buf, len, "%s-%s", transport_name(l->conf.transport),
		    l->bound);
	for (p = buf; *p; p++)
		if (*p == ':' || *p < 0x21 || *p > 0x7e)
			*p = '_';
}

/* Is fd a socket we stored ourselves (its name is the one we give)? */
static bool
fd_is_our_stored(int fd, const char *fdname)
{
	struct listener *tmp;
	char err[LISTENER_ERRLEN], name[256];
	bool r;

	if (listener_adopt(fd, NULL, &tmp, err, sizeof(err)) < 0)
		return false;
	fdstore_name(tmp, name, sizeof(name));
	r = strcmp(name, fdname) == 0;
	tmp->fd = -1;		/* probe only: the fd stays open */
	listener_close(tmp);
	return r;
}

/*
 * Does the service manager keep stored fds?  systemd 254+ says so in
 * $FDSTORE; on 252 assume it does when we run as a systemd service.
 */
static bool
fdstore_keeps_sockets(void)
{
	const char *e = getenv("FDSTORE");

	if (e)
		return atoi(e) > 0;
	return getenv("INVOCATION_ID") != NULL;
}

/*
 * A socket renamed in place is stored under its new name, and the old
 * entry removed (else removing the listener later would leave the socket
 * in the store, to come back at the next start).  Called after removed
 * sockets left the store, so a reused name cannot take this one out.
 */
static void
fdstore_rename(struct lsock *s)
{
	char name[256];

	if (!s->stored_as[0])
		return;
	fdstore_name(s->l, name, sizeof(name));
	if (strcmp(name, s->stored_as) == 0)
		return;
	notify_fdstore_remove(s->stored_as);
	s->stored_as[0] = '\0';
	if (notify_fdstore(s->l->fd, name) == 0)
		snprintf(s->stored_as, sizeof(s->stored_as), "%s", name);
	else
		s->l->stored = false;
}

/* ---- watching ---- */

static void
readable(struct loop_io *io, uint32_t revents)
{
	struct lsock *s = io->data;

	s->set->ready(s, s->set->arg);
}

/* Count, watch (disarmed) and store a socket new to the set. */
static int
attach(struct lsock *s)
{
	struct listener *l = s->l;
	char name[256];
	int r;

	s->stats_slot = stats_claim(s->set->stats);
	r = loop_add(s->set->loop, &s->io, l->fd, 0, readable, s);
	if (r < 0)
		return r;
	/* Keep our own sockets across restarts (FileDescriptorStoreMax=). */
	if (notify_enabled() && !l->adopted) {
		fdstore_name(l, name, sizeof(name));
		/*
		 * A stored Unix socket keeps its file at exit: the next start
		 * takes the socket back from the store and serves that path.
		 */
		if (notify_fdstore(l->fd, name) == 0) {
			snprintf(s->stored_as, sizeof(s->stored_as), "%s",
			    name);
			l->stored = fdstore_keeps_sockets();
		}
	}
	return 0;
}

/* Close a socket of the set; forget: remove it from the fd store too. */
static void
detach(struct lsock *s, bool forget)
{
	struct listener *l = s->l;
	char name[256];
	int r;

	loop_del(s->set->loop, &s->io);
	if (forget && notify_enabled()) {
		if (s->stored_as[0])
			snprintf(name, sizeof(name), "%s", s->stored_as);
		else
			fdstore_name(l, name, sizeof(name));
		notify_fdstore_remove(name);
		l->stored = false;	/* gone for good: remove our file */
	}
	stats_release(s->set->stats, s->stats_slot);
	if (l->conf.path)
		snprintf(name, sizeof(name), "%s", l->conf.path);
	if ((r = listener_close(l)) < 0)
		log_msg(LOG_WARNING, "cannot remove socket file %s: %s (the "
		    "next start replaces it)", name, strerror(-r));
	free(s);
}

/* Free a list of sockets never attached. */
static void
free_list(struct lsock *s)
{
	struct lsock *next;

	for (; s; s = next) {
		next = s->next;
		listener_close(s->l);
		free(s);
	}
}

/* ---- adoption ---- */

/* Are two descriptors open on the same socket? */
static bool
same_open_socket(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/*
 * The configured listener for passed fd named name (NULL: none): by name,
 * then by address; a name alone if the socket fits.  ours: the socket is
 * our own from the fd store, whose port 0 matches any.  cfg->nlisten if
 * none.
 */
static size_t
match_passed(const struct config *cfg, const bool *used, int fd,
    const char *name, bool ours)
{
	size_t j;

	for (j = 0; j < cfg->nlisten; j++)
		if (!used[j] && cfg->listen[j].name[0] && name &&
		    strcmp(cfg->listen[j].name, name) == 0 &&
		    listener_fd_matches(fd, &cfg->listen[j], ours))
			return j;
	for (j = 0; j < cfg->nlisten; j++)
		if (!used[j] && listener_fd_matches(fd, &cfg->listen[j], ours))
			return j;
	if (!name || strcmp(name, "unknown") == 0)
		return cfg->nlisten;
	for (j = 0; j < cfg->nlisten; j++)
		if (!used[j] && cfg->listen[j].name[0] &&
		    strcmp(cfg->listen[j].name, name) == 0 &&
		    listener_fd_fits(fd, &cfg->listen[j]))
			return j;
	return cfg->nlisten;
}

/*
 * Adopt passed fd (named name, or NULL) into *list: matched to a
 * configured listener (used[] marks it), or served with defaults.  Our own
 * stored socket no longer configured is dropped.  0 or -errno (fd closed).
 */
static int
adopt_one(struct listenset *ls, struct lsock **list, const struct config *cfg,
    bool *used, int fd, const char *name, char *err, size_t errlen)
{
	bool ours = name && fd_is_our_stored(fd, name);
	size_t match = match_passed(cfg, used, fd, name, ours);
	struct listener *l;
	struct lsock *s;
	int r;

	r = listener_adopt(fd, match < cfg->nlisten ? &cfg->listen[match] :
	    NULL, &l, err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (match == cfg->nlisten && ours) {
		/*
		 * Our own socket from the fd store whose listener was
		 * removed from the configuration: let it go.
		 */
		log_msg(LOG_NOTICE, "dropping stored socket %s %s: no longer "
		    "configured", transport_name(l->conf.transport), l->bound);
		notify_fdstore_remove(name);
		listener_close(l);
		return 0;
	}
	if (!(s = lsock_new(ls, l))) {
		snprintf(err, errlen, "passed fd %d: %s", fd, strerror(ENOMEM));
		listener_close(l);
		return -ENOMEM;
	}
	if (match < cfg->nlisten) {
		used[match] = true;
		log_msg(LOG_INFO, "adopted %s socket %s (fd %d, name \"%s\") "
		    "for configured listener %s",
		    transport_name(l->conf.transport), l->bound, fd,
		    name ? name : "", label_of(l));
	} else
		log_msg(LOG_WARNING, "passed %s socket %s (fd %d, name \"%s\") "
		    "matches no configured listener; serving it with default "
		    "settings", transport_name(l->conf.transport), l->bound,
		    fd, name ? name : "");
	append(list, s);
	return 0;
}

/*
 * Adopt the sockets systemd passed (socket units and the fd store): match
 * each to a configured listener by name, then by address; serve unmatched
 * ones with defaults.  used[i] is set for configured listeners covered.
 */
static int
adopt_passed(struct listenset *ls, struct lsock **list,
    const struct config *cfg, bool *used, char *err, size_t errlen)
{
	char **names = NULL;
	struct lsock *x;
	int n, i, fd, r = 0;
	bool dup;

	n = sdlib_listen_fds_with_names(&names);
	if (n == -ELIBACC) {
		snprintf(err, errlen, "systemd passed sockets (LISTEN_FDS) "
		    "but %s", sdlib_error());
		return n;
	}
	if (n <= 0)
		return 0;
	for (i = 0; i < n && r == 0; i++) {
		fd = SDLIB_LISTEN_FDS_START + i;
		dup = false;
		for (x = *list; x; x = x->next)
			dup |= same_open_socket(x->l->fd, fd);
		if (dup) {
			/* The same socket from a socket unit and the store. */
			close(fd);
			continue;
		}
		r = adopt_one(ls, list, cfg, used, fd, names ? names[i] : NULL,
		    err, errlen);
	}
	/* Close what a failure left unadopted, so no fd leaks. */
	for (; r < 0 && i < n; i++)
		close(SDLIB_LISTEN_FDS_START + i);
	if (names)
		for (i = 0; i < n; i++)
			free(names[i]);
	free(names);
	return r;
}

/* ---- the set ---- */

/* Open lc as a new socket of *list.  0 or -errno with err filled. */
static int
open_one(struct listenset *ls, struct lsock **list,
    const struct listen_conf *lc, char *err, size_t errlen)
{
	struct listener *l;
	struct lsock *s;
	int r;

	if ((r = listener_open(lc, &l, err, errlen)) < 0)
		return r;
	if (!(s = lsock_new(ls, l))) {
		listener_close(l);
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	append(list, s);
	return 0;
}

int
listenset_open(struct listenset *ls, const struct config *cfg, char *err,
    size_t errlen)
{
	struct lsock *s;
	bool *used;
	size_t i;
	int r;

	if (!(used = calloc(cfg->nlisten + 1, sizeof(*used)))) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	r = adopt_passed(ls, &ls->head, cfg, used, err, errlen);
	for (i = 0; r == 0 && i < cfg->nlisten; i++)
		if (!used[i])
			r = open_one(ls, &ls->head, &cfg->listen[i], err,
			    errlen);
	free(used);
	for (s = ls->head; r == 0 && s; s = s->next) {
		if ((r = attach(s)) < 0) {
			snprintf(err, errlen, "epoll_ctl: %s", strerror(-r));
			break;
		}
		log_msg(LOG_INFO, "listening on %s %s%s",
		    transport_name(s->l->conf.transport), s->l->bound,
		    s->l->adopted ? " (passed by the service manager)" : "");
	}
	return r;
}

/* Take the socket for lc out of ls into *keep: same settings or, failing
 * that, the same socket.  False if there is none. */
static bool
keep_matching(struct listenset *ls, struct lsock **keep,
    const struct listen_conf *lc)
{
	struct lsock **pp, *s;

	for (pp = &ls->head; *pp; pp = &(*pp)->next)
		if (listen_conf_equal(&(*pp)->l->conf, lc))
			break;
	/* Same socket, other labels: keep it, change it in place. */
	if (!*pp)
		for (pp = &ls->head; *pp; pp = &(*pp)->next)
			if (listen_conf_same_bind(&(*pp)->l->conf, lc))
				break;
	if (!*pp)
		return false;
	s = *pp;
	*pp = s->next;
	append(keep, s);
	return true;
}

/* Apply in-place changes of cfg to the sockets kept.  0 or -errno. */
static int
reconfigure_kept(struct lsock *keep, const struct config *cfg, char *err,
    size_t errlen)
{
	struct lsock *s;
	size_t i;
	int r;

	for (i = 0; i < cfg->nlisten; i++) {
		for (s = keep; s; s = s->next)
			if (listen_conf_same_bind(&s->l->conf,
			    &cfg->listen[i]))
				break;
		if (s && !listen_conf_equal(&s->l->conf, &cfg->listen[i]) &&
		    (r = listener_reconfigure(s->l, &cfg->listen[i], err,
		    errlen)) < 0)
			return r;
	}
	return 0;
}

int
listenset_merge(struct listenset *ls, const struct config *cfg, char *err,
    size_t errlen)
{
	struct lsock *keep = NULL, *fresh = NULL, *s, *next;
	size_t i;
	int r = 0;

	/* Keep what did not change; open the new before closing anything. */
	for (i = 0; r == 0 && i < cfg->nlisten; i++)
		if (!keep_matching(ls, &keep, &cfg->listen[i]))
			r = open_one(ls, &fresh, &cfg->listen[i], err, errlen);
	/* Apply in-place changes only once every new socket is open. */
	if (r == 0)
		r = reconfigure_kept(keep, cfg, err, errlen);
	if (r < 0) {
		/* Put everything back as it was. */
		free_list(fresh);
		for (s = keep; s; s = next) {
			next = s->next;
			append(&ls->head, s);
		}
		return r;
	}
	/*
	 * What is left was removed from the configuration.  The new sockets
	 * are already listening; closing the old ones (and removing them
	 * from the fd store) before storing the new ones keeps a reused
	 * FDNAME from taking the new socket out of the store too.
	 */
	for (s = ls->head; s; s = next) {
		next = s->next;
		if (s->l->unmatched) {
			/* A passed socket served with defaults: keep it. */
			append(&keep, s);
			continue;
		}
		log_msg(LOG_INFO, "closing listener %s %s",
		    transport_name(s->l->conf.transport), s->l->bound);
		detach(s, true);
	}
	for (s = keep; s; s = s->next)
		fdstore_rename(s);
	for (s = fresh; s; s = next) {
		next = s->next;
		if ((r = attach(s)) < 0)
			log_msg(LOG_ERR, "watching %s: %s", s->l->bound,
			    strerror(-r));
		log_msg(LOG_INFO, "listening on %s %s",
		    transport_name(s->l->conf.transport), s->l->bound);
		append(&keep, s);
	}
	ls->head = keep;
	return 0;
}

void
listenset_close(struct listenset *ls)
{
	struct lsock *s, *next;

	for (s = ls->head; s; s = next) {
		next = s->next;
		detach(s, false);
	}
	ls->head = NULL;
}

void
listenset_free(struct listenset *ls)
{
	free_list(ls->head);
	ls->head = NULL;
}

void
listenset_arm(struct listenset *ls, bool streams, bool dgrams)
{
	struct lsock *s;
	bool arm;

	for (s = ls->head; s; s = s->next) {
		arm = s->l->socktype == SOCK_DGRAM ? dgrams : streams;
		(void)loop_mod(ls->loop, &s->io, arm ? EPOLLIN : 0);
	}
}

void
listenset_child_fds(const struct listenset *ls, struct fdlist *l)
{
	const struct lsock *s;

	for (s = ls->head; s; s = s->next)
		fdlist_add(l, s->l->fd);
}

bool
listenset_next(void *arg, void **cursor, struct stats_listener *out)
{
	struct listenset *ls = arg;
	struct lsock *s = *cursor ? ((struct lsock *)*cursor)->next :
	    ls->head;

	if (!s)
		return false;
	out->transport = transport_name(s->l->conf.transport);
	out->bound = s->l->bound;
	out->label = label_of(s->l);
	out->slot = s->stats_slot;
	*cursor = s;
	return true;
}
