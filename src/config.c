/*
 * config.c - read echotimed.conf (libconfig syntax) into one validated,
 * read-only struct config.
 *
 * The whole file is validated and every problem is reported, not only the
 * first, so that an administrator can fix a file in one round.  Each error
 * is one line of the form
 *
 *	FILE:LINE: SETTING: MESSAGE
 *
 * FILE is the path as given to config_load() (or the included file a
 * setting came from).  SETTING is the dotted path of the setting; elements
 * of lists and arrays are written ".[N]" with a 0-based index, so the port
 * of the second listener is "listen.[1].port" and the third allow prefix is
 * "access.allow.[2]".  A required setting that is missing is reported with
 * the line of the group that should contain it.  Lines are separated by
 * "\n"; the text has no trailing newline.
 *
 * Nothing here logs or exits: errors come back as text and -errno.
 */

#include <sys/stat.h>

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"

#define DEFAULT_ADDRESS		"127.0.0.1"
#define DEFAULT_PORT		9999
#define DEFAULT_BACKLOG		128
/*
 * A listener name becomes a systemd FileDescriptorName.  systemd refuses
 * ':' there (it separates $LISTEN_FDNAMES), so it is not allowed here.
 */
#define NAME_MAXLEN		63
#define NAME_CHARS		"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
				"abcdefghijklmnopqrstuvwxyz0123456789_.-"
/* sun_path holds 108 bytes including the terminating NUL. */
#define UNIX_PATH_MAXLEN	107
/* Host names, user and group names: generous, but bounded. */
#define TEXT_MAXLEN		255
/* How much of a bad value an error message shows. */
#define QUOTE_MAX		96

static const int default_deny_source_ports[] = { 0, 7, 13, 19, 37 };

/* Spellings in the config file; the index is the enum value. */
static const char *const transport_words[] = {
	"tcp", "udp", "unix", "unix-dgram", NULL
};
static const char *const model_words[] = {
	"sequential", "fork", "thread", "event", NULL
};
static const char *const overflow_words[] = { "reject", "wait", NULL };
static const char *const log_target_words[] = {
	"auto", "journal", "stderr", "syslog", NULL
};
static const char *const log_level_words[] = {
	"debug", "info", "notice", "warning", "error", NULL
};
static const int log_level_values[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR
};

#define NWORDS(w)	(sizeof(w) / sizeof((w)[0]) - 1)

/*
 * libconfig 1.5 stores an integer literal without an "L" suffix in an int
 * and silently truncates it: "port = 4294967296;" reads as 0.  Before the
 * settings are checked, the files are scanned for such literals, so that a
 * truncated value is reported with the text the administrator wrote.
 */
struct bigint {
	const char	*file;		/* as libconfig records it */
	unsigned	 line;
	int		 value;		/* what libconfig 1.5 made of it */
	char		 text[64];	/* as written, cut at 63 bytes */
};

struct ctx {
	const char	*path;		/* the main file, as given */
	const char	*include_dir;	/* libconfig's, for included files */
	char		*msg;		/* collected errors */
	size_t		 len;
	size_t		 cap;
	unsigned	 nerr;
	bool		 nomem;
	struct bigint	*big;
	size_t		 nbig;
};

/*
 * The schema is a table per group.  Offsets are into struct config, except
 * for listener fields, whose offsets are into struct listen_conf.
 */
enum ftype {
	F_SKIP,		/* handled before the group is walked */
	F_INT,
	F_BOOL,
	F_STRING,
	F_ENUM,
	F_GROUP,
	F_FUNC,
};

#define T_TCP		(1u << TRANSPORT_TCP)
#define T_UDP		(1u << TRANSPORT_UDP)
#define T_UNIX		(1u << TRANSPORT_UNIX)
#define T_UNIX_DGRAM	(1u << TRANSPORT_UNIX_DGRAM)
#define T_IP		(T_TCP | T_UDP)
#define T_LOCAL		(T_UNIX | T_UNIX_DGRAM)
#define T_STREAM	(T_TCP | T_UNIX)
#define T_ALL		(T_IP | T_LOCAL)

struct field {
	const char		*name;
	enum ftype		 type;
	size_t			 off;
	long long		 min;	/* F_INT: value; F_STRING: length */
	long long		 max;
	const char *const	*words;	/* F_ENUM */
	const struct field	*sub;	/* F_GROUP */
	void			(*parse)(struct ctx *, const config_setting_t *,
				    void *);	/* F_FUNC */
	unsigned		 transports;	/* listener fields only */
};

static void	parse_group(struct ctx *, const config_setting_t *,
		    const struct field *, void *, int);

struct acl
config_acl(const struct config *cfg)
{
	struct acl a = { cfg->access.allow, cfg->access.nallow,
	    cfg->access.deny, cfg->access.ndeny };

	return a;
}

/* The name of enum value i in a NULL-terminated word list of n names. */
static const char *
word_of(const char *const *words, size_t n, unsigned i)
{
	return i < n ? words[i] : "unknown";
}

const char *
transport_name(enum transport t)
{
	return word_of(transport_words, NWORDS(transport_words), t);
}

const char *
model_name(enum model m)
{
	return word_of(model_words, NWORDS(model_words), m);
}

const char *
overflow_name(enum overflow o)
{
	return word_of(overflow_words, NWORDS(overflow_words), o);
}

const char *
log_target_name(enum log_target t)
{
	return word_of(log_target_words, NWORDS(log_target_words), t);
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

static bool
transport_is_local(enum transport t)
{
	return t == TRANSPORT_UNIX || t == TRANSPORT_UNIX_DGRAM;
}

static bool
streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool
listen_conf_equal(const struct listen_conf *a, const struct listen_conf *b)
{
	return listen_conf_same_socket(a, b) && listen_conf_same_owner(a, b) &&
	    streq(a->name, b->name) && a->backlog == b->backlog;
}

bool
listen_conf_same_owner(const struct listen_conf *a,
    const struct listen_conf *b)
{
	return a->mode == b->mode && streq(a->owner, b->owner) &&
	    streq(a->group, b->group);
}

bool
listen_conf_same_socket(const struct listen_conf *a,
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
	l->name = l->address = l->path = l->owner = l->group = NULL;
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
	if (!dst->name || !dst->owner || !dst->group ||
	    (src->address && !dst->address) || (src->path && !dst->path)) {
		listen_conf_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static void
listeners_free(struct listen_conf *ls, size_t n)
{
	size_t i;

	if (ls == NULL)
		return;
	for (i = 0; i < n; i++)
		listen_conf_clear(&ls[i]);
	free(ls);
}

/* A tcp listener on the default address; 0 or -ENOMEM (then clear it). */
static int
listen_init(struct listen_conf *l)
{
	memset(l, 0, sizeof(*l));
	l->transport = TRANSPORT_TCP;
	l->port = DEFAULT_PORT;
	l->mode = -1;
	l->backlog = DEFAULT_BACKLOG;
	l->reuse_port = false;
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
	listeners_free(cfg->listen, cfg->nlisten);
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
	if (listen_init(&cfg->listen[0]) < 0)
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

/* Error text */

static void
put(struct ctx *c, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (c->nomem)
		return;
	if (c->len + n + 1 > c->cap) {
		cap = c->cap ? c->cap : 256;
		while (cap < c->len + n + 1)
			cap *= 2;
		if ((p = realloc(c->msg, cap)) == NULL) {
			c->nomem = true;
			return;
		}
		c->msg = p;
		c->cap = cap;
	}
	memcpy(c->msg + c->len, s, n);
	c->len += n;
	c->msg[c->len] = '\0';
}

static void
puts_ctx(struct ctx *c, const char *s)
{
	put(c, s, strlen(s));
}

static void __attribute__((format(printf, 2, 0)))
vputf(struct ctx *c, const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	put(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void __attribute__((format(printf, 2, 3)))
putf(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vputf(c, fmt, ap);
	va_end(ap);
}

/*
 * Quote s for an error message.  Control characters are escaped so that an
 * error stays on one line; long values are cut.
 */
static const char *
quote(char *buf, size_t size, const char *s)
{
	unsigned char ch;
	size_t n = 0;

	buf[n++] = '"';
	for (; (ch = (unsigned char)*s) != '\0'; s++) {
		/* Room for the longest escape, "...", the quote and NUL. */
		if (n + 4 + 3 + 2 > size) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(buf + n, size - n, "\\x%02x", ch);
			n += 4;
		} else
			buf[n++] = (char)ch;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

/* "\"a\", \"b\", \"c\"" for a message listing the valid words. */
static const char *
word_list(char *buf, size_t size, const char *const words[])
{
	size_t i, n = 0;
	int r;

	buf[0] = '\0';
	for (i = 0; words[i] != NULL && n < size; i++) {
		r = snprintf(buf + n, size - n, "%s\"%s\"", i ? ", " : "",
		    words[i]);
		if (r < 0)
			break;
		n += (size_t)r;
	}
	return buf;
}

/* Included files are recorded relative to the include directory. */
static void
put_file(struct ctx *c, const char *file)
{
	if (file == NULL || strcmp(file, c->path) == 0) {
		puts_ctx(c, c->path);
		return;
	}
	if (file[0] != '/' && c->include_dir != NULL)
		putf(c, "%s/", c->include_dir);
	puts_ctx(c, file);
}

/* "listen.[1].port": names, with list and array elements as "[N]". */
static void
put_path(struct ctx *c, const config_setting_t *s)
{
	const config_setting_t *parent = config_setting_parent(s);

	if (parent == NULL)
		return;
	if (config_setting_parent(parent) != NULL) {
		put_path(c, parent);
		put(c, ".", 1);
	}
	if (config_setting_name(s) != NULL)
		puts_ctx(c, config_setting_name(s));
	else
		putf(c, "[%d]", config_setting_index(s));
}

/*
 * Record one error about setting s, or about its missing member when member
 * is not NULL.  The line is the first one known walking up from s.
 */
static void __attribute__((format(printf, 4, 5)))
error_at(struct ctx *c, const config_setting_t *s, const char *member,
    const char *fmt, ...)
{
	const config_setting_t *p;
	const char *file = NULL;
	unsigned line = 0;
	va_list ap;

	for (p = s; p != NULL; p = config_setting_parent(p)) {
		if (config_setting_source_line(p) != 0) {
			line = config_setting_source_line(p);
			file = config_setting_source_file(p);
			break;
		}
	}
	if (c->nerr++ > 0)
		put(c, "\n", 1);
	put_file(c, file);
	putf(c, ":%u: ", line);
	put_path(c, s);
	if (member != NULL) {
		if (config_setting_parent(s) != NULL)
			put(c, ".", 1);
		puts_ctx(c, member);
	}
	put(c, ": ", 2);
	va_start(ap, fmt);
	vputf(c, fmt, ap);
	va_end(ap);
}

static const char *
type_desc(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static void
type_error(struct ctx *c, const config_setting_t *s, const char *want)
{
	error_at(c, s, NULL, "expected %s, got %s", want,
	    type_desc(config_setting_type(s)));
}

/* The truncation scan (see struct bigint) */

static void
bigint_add(struct ctx *c, const char *file, unsigned line, const char *tok)
{
	struct bigint *b;
	const char *digits = tok;
	long long v;
	char *end;
	bool hex;

	if (*digits == '-' || *digits == '+')
		digits++;
	hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
	if (hex) {
		/* libconfig's hex literals have no sign. */
		if (digits != tok || digits[2] == '\0' ||
		    strspn(digits + 2, "0123456789abcdefABCDEF") !=
		    strlen(digits + 2))
			return;
	} else if (*digits == '\0' ||
	    strspn(digits, "0123456789") != strlen(digits))
		return;		/* a float, an "L" literal or not a number */

	errno = 0;
	v = strtoll(tok, &end, hex ? 16 : 10);
	if (errno == 0 && v >= INT_MIN && v <= INT_MAX)
		return;
	b = realloc(c->big, (c->nbig + 1) * sizeof(*c->big));
	if (b == NULL) {
		c->nomem = true;
		return;
	}
	c->big = b;
	b = &c->big[c->nbig++];
	b->file = file;
	b->line = line;
	/* What libconfig 1.5's scanner does: atoi() or strtoul() into int. */
	if (hex)
		b->value = (int)strtoul(tok, NULL, 16);
	else
		b->value = (int)strtol(tok, NULL, 10);
	snprintf(b->text, sizeof(b->text), "%s", tok);
}

/*
 * A small tokenizer for libconfig's syntax: it skips comments, strings and
 * names and looks only at number tokens.  Best effort: a file that cannot
 * be read again is simply not scanned.
 */
static void
bigint_scan(struct ctx *c, const char *file, const char *openpath)
{
	char tok[64];
	unsigned line = 1;
	size_t n;
	FILE *fp;
	int ch, prev;

	if ((fp = fopen(openpath, "re")) == NULL)
		return;
	ch = getc(fp);
	while (ch != EOF) {
		if (ch == '\n') {
			line++;
			ch = getc(fp);
		} else if (ch == '#') {
			while ((ch = getc(fp)) != EOF && ch != '\n')
				;
		} else if (ch == '/') {
			if ((ch = getc(fp)) == '/') {
				while ((ch = getc(fp)) != EOF && ch != '\n')
					;
			} else if (ch == '*') {
				prev = 0;
				while ((ch = getc(fp)) != EOF &&
				    !(prev == '*' && ch == '/')) {
					if (ch == '\n')
						line++;
					prev = ch;
				}
				if (ch != EOF)
					ch = getc(fp);
			}
		} else if (ch == '"') {
			while ((ch = getc(fp)) != EOF && ch != '"') {
				if (ch == '\\')
					ch = getc(fp);
				if (ch == '\n')
					line++;
				if (ch == EOF)
					break;
			}
			if (ch != EOF)
				ch = getc(fp);
		} else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    ch == '*' || ch == '@') {
			/* A setting name (or @include): digits in it are not numbers. */
			do
				ch = getc(fp);
			while ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
			    ch == '*');
		} else if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' ||
		    ch == '.') {
			n = 0;
			do {
				if (n < sizeof(tok) - 1)
					tok[n++] = (char)ch;
				ch = getc(fp);
			} while ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' ||
			    ch == '.');
			tok[n] = '\0';
			bigint_add(c, file, line, tok);
		} else
			ch = getc(fp);
	}
	fclose(fp);
}

static void
bigint_scan_all(struct ctx *c, const config_t *lc)
{
	char *full;
	unsigned i;
	const char *f;

	for (i = 0; i < lc->num_filenames; i++) {
		f = lc->filenames[i];
		if (f[0] == '/' || c->include_dir == NULL ||
		    strcmp(f, c->path) == 0) {
			bigint_scan(c, f, f);
			continue;
		}
		if (asprintf(&full, "%s/%s", c->include_dir, f) < 0) {
			c->nomem = true;
			return;
		}
		bigint_scan(c, f, full);
		free(full);
	}
}

static const struct bigint *
bigint_find(const struct ctx *c, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	size_t i;

	if (config_setting_type(s) != CONFIG_TYPE_INT || file == NULL)
		return NULL;
	for (i = 0; i < c->nbig; i++)
		if (c->big[i].line == config_setting_source_line(s) &&
		    c->big[i].value == config_setting_get_int(s) &&
		    strcmp(c->big[i].file, file) == 0)
			return &c->big[i];
	return NULL;
}

/* Typed getters: each reports its own error and returns false on one. */

static bool
get_int(struct ctx *c, const config_setting_t *s, long long min,
    long long max, int *out)
{
	const struct bigint *b;
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		type_error(c, s, "an integer");
		return false;
	}
	if ((b = bigint_find(c, s)) != NULL) {
		error_at(c, s, NULL, "expected an integer from %lld to %lld, "
		    "got %s", min, max, b->text);
		return false;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		error_at(c, s, NULL, "expected an integer from %lld to %lld, "
		    "got %lld", min, max, v);
		return false;
	}
	*out = (int)v;
	return true;
}

static bool
get_string(struct ctx *c, const config_setting_t *s, const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		type_error(c, s, "a string");
		return false;
	}
	*out = config_setting_get_string(s);
	return true;
}

static bool
get_word(struct ctx *c, const config_setting_t *s, const char *const words[],
    int *out)
{
	char q[QUOTE_MAX], list[256];
	const char *v;
	size_t i;

	if (!get_string(c, s, &v))
		return false;
	for (i = 0; words[i] != NULL; i++) {
		if (strcmp(v, words[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	error_at(c, s, NULL, "expected one of %s, got %s",
	    word_list(list, sizeof(list), words), quote(q, sizeof(q), v));
	return false;
}

static void
set_string(struct ctx *c, char **dst, const char *v)
{
	char *p;

	if ((p = strdup(v)) == NULL) {
		c->nomem = true;
		return;
	}
	free(*dst);
	*dst = p;
}

/* Settings that need more than a type and a range */

static void
parse_listen_name(struct ctx *c, const config_setting_t *s, void *base)
{
	struct listen_conf *l = base;
	char q[QUOTE_MAX];
	const char *v;
	size_t len;

	if (!get_string(c, s, &v))
		return;
	len = strlen(v);
	if (len > NAME_MAXLEN || strspn(v, NAME_CHARS) != len) {
		error_at(c, s, NULL, "invalid name %s: use at most %d letters, "
		    "digits, \"_\", \".\" and \"-\"", quote(q, sizeof(q), v),
		    NAME_MAXLEN);
		return;
	}
	set_string(c, &l->name, v);
}

static void
parse_listen_path(struct ctx *c, const config_setting_t *s, void *base)
{
	struct listen_conf *l = base;
	char q[QUOTE_MAX];
	const char *v;

	if (!get_string(c, s, &v))
		return;
	if ((v[0] != '/' && v[0] != '@') || strcmp(v, "@") == 0) {
		error_at(c, s, NULL, "expected an absolute path or \"@name\" "
		    "for the abstract namespace, got %s",
		    quote(q, sizeof(q), v));
		return;
	}
	if (strlen(v) > UNIX_PATH_MAXLEN) {
		error_at(c, s, NULL, "too long: %zu bytes, at most %d",
		    strlen(v), UNIX_PATH_MAXLEN);
		return;
	}
	set_string(c, &l->path, v);
}

static void
parse_listen_mode(struct ctx *c, const config_setting_t *s, void *base)
{
	struct listen_conf *l = base;
	char q[QUOTE_MAX];
	const char *v;
	unsigned long m;

	/* libconfig has no octal integers: 0660 would silently be 660. */
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		error_at(c, s, NULL, "expected an octal string such as "
		    "\"0660\", got an integer");
		return;
	}
	if (!get_string(c, s, &v))
		return;
	if (*v == '\0' || strspn(v, "01234567") != strlen(v) ||
	    (m = strtoul(v, NULL, 8)) > 07777) {
		error_at(c, s, NULL, "expected an octal mode from \"0000\" to "
		    "\"7777\" such as \"0660\", got %s", quote(q, sizeof(q), v));
		return;
	}
	l->mode = (int)m;
}

static void
parse_cidrs(struct ctx *c, const config_setting_t *s, struct cidr **vp,
    size_t *np)
{
	const config_setting_t *e;
	char q[QUOTE_MAX];
	struct cidr *v;
	const char *str;
	int i, n;
	size_t k = 0;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		type_error(c, s, "an array of strings");
		return;
	}
	n = config_setting_length(s);
	if ((v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v))) == NULL) {
		c->nomem = true;
		return;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (!get_string(c, e, &str))
			continue;
		if (cidr_parse(str, &v[k]) < 0) {
			error_at(c, e, NULL, "invalid CIDR prefix %s: expected "
			    "an IPv4 or IPv6 address, optionally with /length, "
			    "and no host bits set", quote(q, sizeof(q), str));
			continue;
		}
		k++;
	}
	free(*vp);
	*vp = v;
	*np = k;
}

static void
parse_allow(struct ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;

	parse_cidrs(c, s, &cfg->access.allow, &cfg->access.nallow);
}

static void
parse_deny(struct ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;

	parse_cidrs(c, s, &cfg->access.deny, &cfg->access.ndeny);
}

static void
parse_deny_source_ports(struct ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;
	int i, n, *v;
	size_t k = 0;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		type_error(c, s, "an array of integers");
		return;
	}
	n = config_setting_length(s);
	if ((v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v))) == NULL) {
		c->nomem = true;
		return;
	}
	for (i = 0; i < n; i++)
		if (get_int(c, config_setting_get_elem(s, (unsigned)i), 0,
		    65535, &v[k]))
			k++;
	free(cfg->datagram.deny_source_ports);
	cfg->datagram.deny_source_ports = v;
	cfg->datagram.ndeny_source_ports = k;
}

static void
parse_log_level(struct ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;
	int i;

	if (get_word(c, s, log_level_words, &i))
		cfg->log.level = log_level_values[i];
}

/* Listeners */

static const struct field listen_fields[] = {
	{ .name = "transport", .type = F_SKIP, .transports = T_ALL },
	{ .name = "name", .type = F_FUNC, .parse = parse_listen_name,
	  .transports = T_ALL },
	{ .name = "address", .type = F_STRING,
	  .off = offsetof(struct listen_conf, address),
	  .min = 1, .max = TEXT_MAXLEN, .transports = T_IP },
	{ .name = "port", .type = F_INT,
	  .off = offsetof(struct listen_conf, port),
	  .min = 0, .max = 65535, .transports = T_IP },
	{ .name = "path", .type = F_FUNC, .parse = parse_listen_path,
	  .transports = T_LOCAL },
	{ .name = "mode", .type = F_FUNC, .parse = parse_listen_mode,
	  .transports = T_LOCAL },
	{ .name = "owner", .type = F_STRING,
	  .off = offsetof(struct listen_conf, owner),
	  .min = 0, .max = TEXT_MAXLEN, .transports = T_LOCAL },
	{ .name = "group", .type = F_STRING,
	  .off = offsetof(struct listen_conf, group),
	  .min = 0, .max = TEXT_MAXLEN, .transports = T_LOCAL },
	{ .name = "backlog", .type = F_INT,
	  .off = offsetof(struct listen_conf, backlog),
	  .min = 1, .max = 65535, .transports = T_STREAM },
	{ .name = "reuse_port", .type = F_BOOL,
	  .off = offsetof(struct listen_conf, reuse_port),
	  .transports = T_IP },
	{ .name = NULL }
};

/*
 * Parse one listener group into l.  Returns true if it came through without
 * errors, so that its address can be compared with the others.
 */
static bool
parse_listener(struct ctx *c, const config_setting_t *g,
    struct listen_conf *l)
{
	static const char *const file_settings[] = { "mode", "owner", "group" };
	const config_setting_t *s;
	char list[256];
	unsigned before = c->nerr;
	size_t i;
	int t = -1;

	l->line = config_setting_source_line(g);
	if ((s = config_setting_get_member(g, "transport")) == NULL)
		error_at(c, g, "transport", "required: one of %s",
		    word_list(list, sizeof(list), transport_words));
	else if (!get_word(c, s, transport_words, &t))
		t = -1;
	/* With an unknown transport, only names and types are checked. */
	parse_group(c, g, listen_fields, l, t);
	if (t < 0)
		return false;
	l->transport = (enum transport)t;
	if (!transport_is_local(l->transport))
		return c->nerr == before;

	free(l->address);
	l->address = NULL;
	if (config_setting_get_member(g, "path") == NULL)
		error_at(c, g, "path", "required for transport %s",
		    transport_name(l->transport));
	if (l->path == NULL)
		return false;
	if (l->path[0] == '@') {
		for (i = 0; i < sizeof(file_settings) / sizeof(file_settings[0]);
		    i++) {
			s = config_setting_get_member(g, file_settings[i]);
			if (s != NULL)
				error_at(c, s, NULL, "not valid for an abstract "
				    "socket, which has no file");
		}
	}
	return c->nerr == before;
}

static bool
same_socket(const struct listen_conf *a, const struct listen_conf *b)
{
	/* A file path is one name for both types; an abstract name is not. */
	if (transport_is_local(a->transport) &&
	    transport_is_local(b->transport))
		return streq(a->path, b->path) &&
		    (a->path == NULL || a->path[0] != '@' ||
		    a->transport == b->transport);
	/* Port 0 asks for an ephemeral port: each gets its own. */
	return a->transport == b->transport && a->port != 0 &&
	    a->port == b->port && streq(a->address, b->address);
}

static void
check_duplicates(struct ctx *c, const config_setting_t *list,
    const struct listen_conf *ls, const bool *ok, size_t n)
{
	const config_setting_t *e;
	char q[QUOTE_MAX];
	size_t i, j;

	for (i = 1; i < n; i++) {
		if (!ok[i])
			continue;
		e = config_setting_get_elem(list, (unsigned)i);
		for (j = 0; j < i; j++) {
			if (ok[j] && same_socket(&ls[i], &ls[j])) {
				error_at(c, e, NULL, "duplicate listener: same "
				    "socket as listen.[%zu] on line %d", j,
				    ls[j].line);
				break;
			}
		}
		if (ls[i].name[0] == '\0')
			continue;
		for (j = 0; j < i; j++) {
			if (ok[j] && strcmp(ls[i].name, ls[j].name) == 0) {
				error_at(c, config_setting_get_member(e, "name"),
				    NULL, "duplicate name %s: also used by "
				    "listen.[%zu] on line %d",
				    quote(q, sizeof(q), ls[i].name), j,
				    ls[j].line);
				break;
			}
		}
	}
}

static void
parse_listen(struct ctx *c, const config_setting_t *s, void *base)
{
	struct config *cfg = base;
	const config_setting_t *e;
	struct listen_conf *ls;
	bool *ok;
	int n;
	size_t i;

	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY) {
		type_error(c, s, "a list of groups");
		return;
	}
	if ((n = config_setting_length(s)) == 0) {
		error_at(c, s, NULL, "at least one listener is required");
		return;
	}
	ls = calloc((size_t)n, sizeof(*ls));
	ok = calloc((size_t)n, sizeof(*ok));
	if (ls == NULL || ok == NULL) {
		free(ls);
		free(ok);
		c->nomem = true;
		return;
	}
	/* The listeners of the file replace the built-in one. */
	listeners_free(cfg->listen, cfg->nlisten);
	cfg->listen = ls;
	cfg->nlisten = 0;
	for (i = 0; i < (size_t)n; i++) {
		cfg->nlisten++;
		if (listen_init(&ls[i]) < 0) {
			c->nomem = true;
			break;
		}
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			type_error(c, e, "a group");
			continue;
		}
		ok[i] = parse_listener(c, e, &ls[i]);
	}
	check_duplicates(c, s, cfg->listen, ok, cfg->nlisten);
	free(ok);
}

/* The schema */

#define CFG_INT(n, member, lo, hi)					\
	{ .name = (n), .type = F_INT,					\
	  .off = offsetof(struct config, member), .min = (lo), .max = (hi) }
#define CFG_ENUM(n, member, w)						\
	{ .name = (n), .type = F_ENUM,					\
	  .off = offsetof(struct config, member), .words = (w) }
#define CFG_STRING(n, member, lo, hi)					\
	{ .name = (n), .type = F_STRING,				\
	  .off = offsetof(struct config, member), .min = (lo), .max = (hi) }
#define CFG_FUNC(n, fn)							\
	{ .name = (n), .type = F_FUNC, .parse = (fn) }
#define CFG_GROUP(n, fields)						\
	{ .name = (n), .type = F_GROUP, .sub = (fields) }

static const struct field concurrency_fields[] = {
	CFG_ENUM("model", concurrency.model, model_words),
	CFG_INT("max_connections", concurrency.max_connections, 1, 1000000),
	CFG_ENUM("overflow", concurrency.overflow, overflow_words),
	CFG_INT("max_connections_per_source",
	    concurrency.max_connections_per_source, 0, 1000000),
	CFG_INT("thread_stack_kib", concurrency.thread_stack_kib, 16, 65536),
	CFG_INT("busy_poll", concurrency.busy_poll, 0, 10000),
	CFG_INT("workers", concurrency.workers, 1, MAX_WORKERS),
	{ .name = NULL }
};

static const struct field session_fields[] = {
	CFG_INT("max_line_length", session.max_line_length, 1, 1048576),
	CFG_INT("idle_timeout", session.idle_timeout, 0, 86400),
	{ .name = NULL }
};

static const struct field access_fields[] = {
	CFG_FUNC("allow", parse_allow),
	CFG_FUNC("deny", parse_deny),
	{ .name = NULL }
};

static const struct field datagram_fields[] = {
	CFG_INT("rate_limit", datagram.rate_limit, 0, 1000000),
	CFG_INT("rate_burst", datagram.rate_burst, 1, 1000000),
	CFG_FUNC("deny_source_ports", parse_deny_source_ports),
	{ .name = NULL }
};

static const struct field log_fields[] = {
	CFG_FUNC("level", parse_log_level),
	CFG_ENUM("target", log.target, log_target_words),
	{ .name = NULL }
};

static const struct field top_fields[] = {
	CFG_FUNC("listen", parse_listen),
	CFG_GROUP("concurrency", concurrency_fields),
	CFG_GROUP("session", session_fields),
	CFG_INT("shutdown_timeout", shutdown_timeout, 0, 3600),
	CFG_INT("source_prefix_v4", source_prefix_v4, 0, 32),
	CFG_INT("source_prefix_v6", source_prefix_v6, 0, 128),
	CFG_GROUP("access", access_fields),
	CFG_GROUP("datagram", datagram_fields),
	CFG_GROUP("log", log_fields),
	CFG_STRING("user", user, 0, TEXT_MAXLEN),
	CFG_STRING("group", group, 0, TEXT_MAXLEN),
	{ .name = NULL }
};

static void
parse_field(struct ctx *c, const config_setting_t *s, const struct field *f,
    void *base)
{
	void *p = (char *)base + f->off;
	const char *str;
	size_t len;
	int v;

	switch (f->type) {
	case F_SKIP:
		break;
	case F_INT:
		if (get_int(c, s, f->min, f->max, &v))
			*(int *)p = v;
		break;
	case F_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			type_error(c, s, "a boolean (true or false)");
		else
			*(bool *)p = config_setting_get_bool(s) != 0;
		break;
	case F_STRING:
		if (!get_string(c, s, &str))
			break;
		len = strlen(str);
		if ((long long)len < f->min)
			error_at(c, s, NULL, "must not be empty");
		else if ((long long)len > f->max)
			error_at(c, s, NULL, "too long: %zu bytes, at most %lld",
			    len, f->max);
		else
			set_string(c, (char **)p, str);
		break;
	case F_ENUM:
		/* The enums of config.h are int-sized, valued by index. */
		if (get_word(c, s, f->words, &v))
			*(int *)p = v;
		break;
	case F_GROUP:
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			type_error(c, s, "a group");
		else
			parse_group(c, s, f->sub, base, -1);
		break;
	case F_FUNC:
		f->parse(c, s, base);
		break;
	}
}

/*
 * Walk a group in file order, so that errors come out sorted by line.
 * transport is the listener's transport, -1 outside listeners or when it
 * is unknown.
 */
static void
parse_group(struct ctx *c, const config_setting_t *group,
    const struct field *fields, void *base, int transport)
{
	const config_setting_t *s;
	const struct field *f;
	unsigned i;

	for (i = 0; (s = config_setting_get_elem(group, i)) != NULL; i++) {
		for (f = fields; f->name != NULL; f++)
			if (strcmp(f->name, config_setting_name(s)) == 0)
				break;
		if (f->name == NULL) {
			error_at(c, s, NULL, "unknown setting");
			continue;
		}
		if (transport >= 0 && f->transports != 0 &&
		    (f->transports & (1u << transport)) == 0) {
			error_at(c, s, NULL, "not valid for transport %s",
			    transport_name((enum transport)transport));
			continue;
		}
		parse_field(c, s, f, base);
	}
}

/* Loading */

int
config_load(const char *path, struct config **cfgp, char **errp)
{
	struct ctx c = { .path = path };
	struct config *cfg = NULL;
	const char *text;
	char *dir = NULL, *slash;
	struct stat st;
	config_t lc;
	FILE *fp;
	int r;

	*cfgp = NULL;
	if (errp != NULL)
		*errp = NULL;
	config_init(&lc);
	if (path == NULL) {
		r = -EINVAL;
		puts_ctx(&c, "no configuration file given");
		goto out;
	}

	/* libconfig only says "file I/O error"; find out which. */
	if ((fp = fopen(path, "re")) == NULL) {
		r = -errno;
		putf(&c, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = fstat(fileno(fp), &st) < 0 ? -errno : 0;
	fclose(fp);
	if (r == 0 && S_ISDIR(st.st_mode))
		r = -EISDIR;
	if (r < 0) {
		putf(&c, "%s: %s", path, strerror(-r));
		goto out;
	}

	/* @include "x.conf" is relative to the file's own directory. */
	if ((dir = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	config_set_include_dir(&lc, dir);
	c.include_dir = strcmp(dir, ".") == 0 ? NULL : dir;

	if (!config_read_file(&lc, path)) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
			r = errno != 0 ? -errno : -EIO;
			putf(&c, "%s: %s", path, strerror(-r));
			goto out;
		}
		r = -EINVAL;
		put_file(&c, config_error_file(&lc));
		putf(&c, ":%d: syntax error", config_error_line(&lc));
		text = config_error_text(&lc);
		/* Do not say "syntax error: syntax error". */
		if (text != NULL && strcmp(text, "syntax error") != 0)
			putf(&c, ": %s", text);
		goto out;
	}

	if ((cfg = config_default()) == NULL ||
	    (cfg->file = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	bigint_scan_all(&c, &lc);
	parse_group(&c, config_root_setting(&lc), top_fields, cfg, -1);
	if (c.nomem)
		r = -ENOMEM;
	else if (c.nerr > 0)
		r = -EINVAL;
	else
		r = 0;
out:
	config_destroy(&lc);
	free(dir);
	free(c.big);
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

/* Printing */

static void
print_string(FILE *fp, const char *s)
{
	unsigned char ch;

	putc('"', fp);
	for (; (ch = (unsigned char)*s) != '\0'; s++) {
		switch (ch) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\r':
			fputs("\\r", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		case '\f':
			fputs("\\f", fp);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(fp, "\\x%02x", ch);
			else
				putc(ch, fp);
		}
	}
	putc('"', fp);
}

static void
print_string_setting(FILE *fp, const char *indent, const char *name,
    const char *value)
{
	fprintf(fp, "%s%s = ", indent, name);
	print_string(fp, value);
	fputs(";\n", fp);
}

static void
print_listener(FILE *fp, const struct listen_conf *l)
{
	const char *in = "    ";

	fputs("  {\n", fp);
	print_string_setting(fp, in, "transport", transport_name(l->transport));
	print_string_setting(fp, in, "name", l->name);
	if (transport_is_local(l->transport)) {
		print_string_setting(fp, in, "path", l->path);
		/* An abstract socket has no file to set these on. */
		if (l->path[0] != '@') {
			if (l->mode >= 0)
				fprintf(fp, "%smode = \"%04o\";\n", in,
				    (unsigned)l->mode);
			print_string_setting(fp, in, "owner", l->owner);
			print_string_setting(fp, in, "group", l->group);
		}
	} else {
		print_string_setting(fp, in, "address", l->address);
		fprintf(fp, "%sport = %d;\n", in, l->port);
	}
	if (!transport_is_dgram(l->transport))
		fprintf(fp, "%sbacklog = %d;\n", in, l->backlog);
	if (!transport_is_local(l->transport))
		fprintf(fp, "%sreuse_port = %s;\n", in,
		    l->reuse_port ? "true" : "false");
	fputs("  }", fp);
}

static void
print_cidrs(FILE *fp, const char *name, const struct cidr *v, size_t n)
{
	char buf[CIDR_STRLEN];
	size_t i;

	fprintf(fp, "  %s = [", name);
	for (i = 0; i < n; i++) {
		cidr_format(&v[i], buf, sizeof(buf));
		fputs(i ? ", " : " ", fp);
		print_string(fp, buf);
	}
	fputs(" ];\n", fp);
}

void
config_print(const struct config *cfg, FILE *fp)
{
	size_t i;

	fputs("# echotimed effective configuration", fp);
	if (cfg->file != NULL) {
		fputs(", from ", fp);
		print_string(fp, cfg->file);
	} else
		fputs(": built-in defaults", fp);
	fputs("\n\nlisten = (\n", fp);
	for (i = 0; i < cfg->nlisten; i++) {
		print_listener(fp, &cfg->listen[i]);
		fputs(i + 1 < cfg->nlisten ? ",\n" : "\n", fp);
	}
	fputs(");\n\n", fp);

	fprintf(fp, "concurrency = {\n"
	    "  model = \"%s\";\n"
	    "  max_connections = %d;\n"
	    "  overflow = \"%s\";\n"
	    "  max_connections_per_source = %d;\n"
	    "  thread_stack_kib = %d;\n"
	    "  busy_poll = %d;\n"
	    "  workers = %d;\n"
	    "};\n\n",
	    model_name(cfg->concurrency.model),
	    cfg->concurrency.max_connections,
	    overflow_name(cfg->concurrency.overflow),
	    cfg->concurrency.max_connections_per_source,
	    cfg->concurrency.thread_stack_kib,
	    cfg->concurrency.busy_poll,
	    cfg->concurrency.workers);

	fprintf(fp, "session = {\n"
	    "  max_line_length = %d;\n"
	    "  idle_timeout = %d;\n"
	    "};\n\n",
	    cfg->session.max_line_length, cfg->session.idle_timeout);

	fprintf(fp, "shutdown_timeout = %d;\n\n", cfg->shutdown_timeout);

	fprintf(fp, "source_prefix_v4 = %d;\n"
	    "source_prefix_v6 = %d;\n\n",
	    cfg->source_prefix_v4, cfg->source_prefix_v6);

	fputs("access = {\n", fp);
	print_cidrs(fp, "allow", cfg->access.allow, cfg->access.nallow);
	print_cidrs(fp, "deny", cfg->access.deny, cfg->access.ndeny);
	fputs("};\n\n", fp);

	fprintf(fp, "datagram = {\n"
	    "  rate_limit = %d;\n"
	    "  rate_burst = %d;\n"
	    "  deny_source_ports = [",
	    cfg->datagram.rate_limit, cfg->datagram.rate_burst);
	for (i = 0; i < cfg->datagram.ndeny_source_ports; i++)
		fprintf(fp, "%s%d", i ? ", " : " ",
		    cfg->datagram.deny_source_ports[i]);
	fputs(" ];\n};\n\n", fp);

	fprintf(fp, "log = {\n"
	    "  level = \"%s\";\n"
	    "  target = \"%s\";\n"
	    "};\n\n",
	    log_level_name(cfg->log.level), log_target_name(cfg->log.target));

	print_string_setting(fp, "", "user", cfg->user);
	print_string_setting(fp, "", "group", cfg->group);
}
