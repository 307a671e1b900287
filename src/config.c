/*
 * config.c - read echotimed.conf (libconfig syntax) into one validated,
 * read-only struct config: names, listen_conf operations, the built-in
 * defaults, and loading.  The schema and its walker are config_schema.c,
 * the error text config_error.c, the -T printer config_print.c (see
 * config_impl.h).
 *
 * Nothing here logs or exits: errors come back as text and -errno.
 */

#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config_impl.h"

#define DEFAULT_ADDRESS		"127.0.0.1"
#define DEFAULT_PORT		9999
#define DEFAULT_BACKLOG		128
/* Seconds to complete a PROXY header, as postfix's
 * smtpd_upstream_proxy_timeout. */
#define DEFAULT_PROXY_TIMEOUT	5

static const int default_deny_source_ports[] = { 0, 7, 13, 19, 37 };

/* Spellings in the config file (config_impl.h). */
const char *const transport_words[] = {
	"tcp", "udp", "unix", "unix-dgram", NULL
};
const char *const model_words[] = {
	"sequential", "fork", "thread", "event", NULL
};
const char *const overflow_words[] = { "reject", "wait", NULL };
const char *const log_target_words[] = {
	"auto", "journal", "stderr", "syslog", NULL
};
const char *const log_level_words[] = {
	"debug", "info", "notice", "warning", "error", NULL
};
const char *const proxy_protocol_words[] = {
	"off", "v1", "v2", "any", NULL
};
const int log_level_values[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR
};

struct acl
config_acl(const struct config *cfg)
{
	struct acl a = { cfg->access.allow, cfg->access.nallow,
	    cfg->access.deny, cfg->access.ndeny };

	return a;
}

const char *
word_of(const char *const *words, int i)
{
	int n;

	for (n = 0; n < i && words[n] != NULL; n++)
		;
	return i >= 0 && words[n] != NULL ? words[n] : "unknown";
}

const char *
transport_name(enum transport t)
{
	return word_of(transport_words, (int)t);
}

const char *
model_name(enum model m)
{
	return word_of(model_words, (int)m);
}

const char *
overflow_name(enum overflow o)
{
	return word_of(overflow_words, (int)o);
}

const char *
log_target_name(enum log_target t)
{
	return word_of(log_target_words, (int)t);
}

const char *
proxy_protocol_name(enum proxy_protocol p)
{
	return word_of(proxy_protocol_words, (int)p);
}

int
log_level_parse(const char *s)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; log_level_words[i] != NULL; i++)
		if (strcmp(s, log_level_words[i]) == 0)
			return log_level_values[i];
	return -1;
}

const char *
log_level_name(int level)
{
	size_t i;

	for (i = 0; log_level_words[i] != NULL; i++)
		if (log_level_values[i] == level)
			return log_level_words[i];
	return "unknown";
}

bool
transport_is_dgram(enum transport t)
{
	return t == TRANSPORT_UDP || t == TRANSPORT_UNIX_DGRAM;
}

bool
transport_is_local(enum transport t)
{
	return t == TRANSPORT_UNIX || t == TRANSPORT_UNIX_DGRAM;
}

bool
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool
listen_conf_equal(const struct listen_conf *a, const struct listen_conf *b)
{
	return listen_conf_same_bind(a, b) && listen_conf_same_owner(a, b) &&
	    streq(a->name, b->name) && a->backlog == b->backlog &&
	    a->proxy_protocol == b->proxy_protocol &&
	    a->proxy_timeout == b->proxy_timeout &&
	    a->nproxy_from == b->nproxy_from && (a->nproxy_from == 0 ||
	    memcmp(a->proxy_from, b->proxy_from,
	    a->nproxy_from * sizeof(*a->proxy_from)) == 0);
}

bool
listen_conf_same_owner(const struct listen_conf *a,
    const struct listen_conf *b)
{
	return a->mode == b->mode && streq(a->owner, b->owner) &&
	    streq(a->group, b->group);
}

bool
listen_conf_same_bind(const struct listen_conf *a,
    const struct listen_conf *b)
{
	return a->transport == b->transport &&
	    streq(a->address, b->address) && a->port == b->port &&
	    streq(a->path, b->path) && a->reuse_port == b->reuse_port;
}

/* Defaults, copies and freeing */

void
listen_conf_clear(struct listen_conf *l)
{
	free(l->name);
	free(l->address);
	free(l->path);
	free(l->owner);
	free(l->group);
	free(l->proxy_from);
	l->name = l->address = l->path = l->owner = l->group = NULL;
	l->proxy_from = NULL;
	l->nproxy_from = 0;
}

static char *
strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
listen_conf_copy(struct listen_conf *dst, const struct listen_conf *src)
{
	*dst = *src;
	dst->name = strdup(src->name ? src->name : "");
	dst->address = strdup_or_null(src->address);
	dst->path = strdup_or_null(src->path);
	dst->owner = strdup(src->owner ? src->owner : "");
	dst->group = strdup(src->group ? src->group : "");
	dst->proxy_from = NULL;
	if (src->nproxy_from > 0 && (dst->proxy_from = malloc(
	    src->nproxy_from * sizeof(*src->proxy_from))) != NULL)
		memcpy(dst->proxy_from, src->proxy_from,
		    src->nproxy_from * sizeof(*src->proxy_from));
	if (!dst->name || !dst->owner || !dst->group ||
	    (src->address && !dst->address) || (src->path && !dst->path) ||
	    (src->nproxy_from > 0 && !dst->proxy_from)) {
		listen_conf_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

void
listen_confs_free(struct listen_conf *ls, size_t n)
{
	size_t i;

	if (ls == NULL)
		return;
	for (i = 0; i < n; i++)
		listen_conf_clear(&ls[i]);
	free(ls);
}

int
listen_conf_init(struct listen_conf *l)
{
	memset(l, 0, sizeof(*l));
	l->transport = TRANSPORT_TCP;
	l->port = DEFAULT_PORT;
	l->mode = -1;
	l->backlog = DEFAULT_BACKLOG;
	l->reuse_port = false;
	l->proxy_protocol = PROXY_OFF;
	l->proxy_timeout = DEFAULT_PROXY_TIMEOUT;
	l->name = strdup("");
	l->address = strdup(DEFAULT_ADDRESS);
	l->owner = strdup("");
	l->group = strdup("");
	if (l->name == NULL || l->address == NULL || l->owner == NULL ||
	    l->group == NULL)
		return -ENOMEM;
	return 0;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->file);
	listen_confs_free(cfg->listen, cfg->nlisten);
	free(cfg->access.allow);
	free(cfg->access.deny);
	free(cfg->datagram.deny_source_ports);
	free(cfg->user);
	free(cfg->group);
	free(cfg);
}

struct config *
config_default(void)
{
	struct config *cfg;
	size_t nports = sizeof(default_deny_source_ports) /
	    sizeof(default_deny_source_ports[0]);

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	if ((cfg->listen = calloc(1, sizeof(*cfg->listen))) == NULL)
		goto fail;
	cfg->nlisten = 1;
	if (listen_conf_init(&cfg->listen[0]) < 0)
		goto fail;

	cfg->concurrency.model = MODEL_THREAD;
	cfg->concurrency.max_connections = 256;
	cfg->concurrency.overflow = OVERFLOW_REJECT;
	cfg->concurrency.max_connections_per_source = 0;
	cfg->concurrency.thread_stack_kib = 64;
	cfg->concurrency.busy_poll = 0;
	cfg->concurrency.workers = 1;
	cfg->session.max_line_length = 4096;
	cfg->session.idle_timeout = 300;
	cfg->shutdown_timeout = 10;
	cfg->source_prefix_v4 = 32;
	/* The smallest network an IPv6 host is normally given. */
	cfg->source_prefix_v6 = 64;
	cfg->datagram.rate_limit = 100;
	cfg->datagram.rate_burst = 200;
	cfg->datagram.deny_source_ports = malloc(sizeof(default_deny_source_ports));
	if (cfg->datagram.deny_source_ports == NULL)
		goto fail;
	memcpy(cfg->datagram.deny_source_ports, default_deny_source_ports,
	    sizeof(default_deny_source_ports));
	cfg->datagram.ndeny_source_ports = nports;
	cfg->log.level = LOG_INFO;
	cfg->log.target = LOG_TARGET_AUTO;
	cfg->user = strdup("");
	cfg->group = strdup("");
	if (cfg->user == NULL || cfg->group == NULL)
		goto fail;
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

/* Loading */

/*
 * Open the main file, once: libconfig parses it from this stream and the
 * integer scan reads it again from the start (a per-connection start in
 * inetd mode pays for every open).  libconfig only says "file I/O
 * error", and a directory opens: the error says which.  0 or -errno.
 */
static int
open_main(struct load_ctx *c, const char *path, FILE **fpp)
{
	struct stat st;
	FILE *fp;
	int r;

	*fpp = NULL;
	if ((fp = fopen(path, "re")) == NULL) {
		r = -errno;
		err_printf(c, "%s: %s", path, strerror(-r));
		return r;
	}
	r = fstat(fileno(fp), &st) < 0 ? -errno : 0;
	if (r == 0 && S_ISDIR(st.st_mode))
		r = -EISDIR;
	if (r < 0) {
		fclose(fp);
		err_printf(c, "%s: %s", path, strerror(-r));
		return r;
	}
	*fpp = fp;
	return 0;
}

/* The directory part of path ("." for none); NULL on ENOMEM. */
static char *
dir_of(const char *path)
{
	char *dir, *slash;

	if ((dir = strdup(path)) == NULL)
		return NULL;
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

/*
 * libconfig's parse of fp (the file path), a syntax error reported; 0 or
 * -errno.  Read from a stream, libconfig names no file for the main one:
 * err_file() says path for that.
 */
static int
read_file(struct load_ctx *c, config_t *lc, FILE *fp, const char *path)
{
	const char *text;
	int r;

	errno = 0;
	if (config_read(lc, fp))
		return 0;
	if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
		r = errno != 0 ? -errno : -EIO;
		err_printf(c, "%s: %s", path, strerror(-r));
		return r;
	}
	err_file(c, config_error_file(lc));
	err_printf(c, ":%d: syntax error", config_error_line(lc));
	text = config_error_text(lc);
	/* Do not say "syntax error: syntax error". */
	if (text != NULL && strcmp(text, "syntax error") != 0)
		err_printf(c, ": %s", text);
	return -EINVAL;
}

/*
 * Find the integers libconfig truncated (config_int.h) in every file it
 * read: the main one, main (read again from its start), and its
 * @includes, which it records relative to the include directory.  Best
 * effort: a file that cannot be read again is not scanned.
 */
static void
scan_truncated_ints(struct load_ctx *c, const config_t *lc, FILE *main)
{
	const char *f;
	char *full;
	unsigned i;
	FILE *fp;

	if (fseek(main, 0, SEEK_SET) == 0 && bigint_scan(main, c->path,
	    &c->big) < 0)
		c->nomem = true;
	for (i = 0; i < lc->num_filenames; i++) {
		f = lc->filenames[i];
		full = NULL;
		if (f[0] != '/' && c->include_dir != NULL &&
		    asprintf(&full, "%s/%s", c->include_dir, f) < 0) {
			c->nomem = true;
			return;
		}
		if ((fp = fopen(full != NULL ? full : f, "re")) != NULL) {
			if (bigint_scan(fp, f, &c->big) < 0)
				c->nomem = true;
			fclose(fp);
		}
		free(full);
	}
}

int
config_load(const char *path, struct config **cfgp, char **errp)
{
	struct load_ctx c = { .path = path };
	struct config *cfg = NULL;
	char *dir = NULL;
	FILE *fp = NULL;
	config_t lc;
	int r;

	*cfgp = NULL;
	if (errp != NULL)
		*errp = NULL;
	config_init(&lc);
	if (path == NULL) {
		r = -EINVAL;
		err_puts(&c, "no configuration file given");
		goto out;
	}
	if ((r = open_main(&c, path, &fp)) < 0)
		goto out;
	/* @include "x.conf" is relative to the file's own directory. */
	if ((dir = dir_of(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	config_set_include_dir(&lc, dir);
	c.include_dir = strcmp(dir, ".") == 0 ? NULL : dir;
	if ((r = read_file(&c, &lc, fp, path)) < 0)
		goto out;

	if ((cfg = config_default()) == NULL ||
	    (cfg->file = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	scan_truncated_ints(&c, &lc, fp);
	parse_group(&c, config_root_setting(&lc), top_fields, cfg, -1);
	if (c.nomem)
		r = -ENOMEM;
	else if (c.nerr > 0)
		r = -EINVAL;
out:
	config_destroy(&lc);
	if (fp != NULL)
		fclose(fp);
	free(dir);
	bigint_list_clear(&c.big);
	if (r == -ENOMEM) {
		free(c.msg);
		c.msg = strdup("out of memory");
	}
	if (r < 0) {
		config_free(cfg);
		if (errp != NULL)
			*errp = c.msg;
		else
			free(c.msg);
		return r;
	}
	free(c.msg);
	*cfgp = cfg;
	return 0;
}

int
config_obtain_from(const char *path, const char *default_path,
    struct config **cfgp, char **errp, bool *builtin)
{
	int r;

	*builtin = false;
	if (path != NULL)
		return config_load(path, cfgp, errp);
	if ((r = config_load(default_path, cfgp, errp)) != -ENOENT)
		return r;
	if (errp != NULL) {
		free(*errp);
		*errp = NULL;
	}
	if ((*cfgp = config_default()) == NULL) {
		if (errp != NULL)
			*errp = strdup("out of memory");
		return -ENOMEM;
	}
	*builtin = true;
	return 0;
}

int
config_obtain(const char *path, struct config **cfgp, char **errp,
    bool *builtin)
{
	return config_obtain_from(path, CONFIG_DEFAULT_PATH, cfgp, errp,
	    builtin);
}
