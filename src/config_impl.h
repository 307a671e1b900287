/*
 * config_impl.h - what the files of the config module share.  The rest of
 * the daemon uses config.h only.
 *
 *	config.c	 names, listen_conf operations, defaults, loading
 *	config_error.c	 the collected "file:line: setting: message" text
 *	config_schema.c	 the schema tables, typed getters, the walker
 *	config_print.c	 -T: the configuration written from the same tables
 *	config_int.c	 (config_int.h) integers that libconfig truncates
 */
#ifndef ECHOTIMED_CONFIG_IMPL_H
#define ECHOTIMED_CONFIG_IMPL_H

#include <libconfig.h>

#include "config.h"
#include "config_int.h"

/* Host names, user and group names: generous, but bounded. */
#define TEXT_MAXLEN		255
/* How much of a bad value an error message shows. */
#define QUOTE_MAX		96

/* config.c */

/* Spellings in the config file, NULL-terminated; the index is the value. */
extern const char *const transport_words[];
extern const char *const model_words[];
extern const char *const overflow_words[];
extern const char *const log_target_words[];
extern const char *const log_level_words[];
extern const char *const proxy_protocol_words[];
/* The syslog priority of each log_level_words entry. */
extern const int	 log_level_values[];

/* words[i], or "unknown" past the end of the list. */
const char	*word_of(const char *const *words, int i);
/* True for unix and unix-dgram. */
bool		 transport_is_local(enum transport t);
/* strcmp() == 0, where two NULLs are equal too. */
bool		 streq(const char *a, const char *b);
/* Set l to the built-in tcp listener; 0 or -ENOMEM (then clear it). */
int		 listen_conf_init(struct listen_conf *l);
/* Clear n listeners and free the array; NULL is fine. */
void		 listen_confs_free(struct listen_conf *ls, size_t n);
/* config_obtain() with the default file given (for the unit tests). */
int		 config_obtain_from(const char *path, const char *default_path,
		    struct config **cfgp, char **errp, bool *builtin);

/* config_error.c */

/* One config_load() run: the files it reads and the errors it collects. */
struct load_ctx {
	const char	*path;		/* the main file, as given */
	const char	*include_dir;	/* libconfig's, for included files */
	char		*msg;		/* collected errors */
	size_t		 len;
	size_t		 cap;
	unsigned	 nerr;
	bool		 nomem;
	struct bigint_list big;		/* literals libconfig truncated */
};

/* Append text to the error text; on ENOMEM set c->nomem. */
void		 err_puts(struct load_ctx *c, const char *s);
void		 err_printf(struct load_ctx *c, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* The name of a file libconfig read, as the administrator knows it. */
void		 err_file(struct load_ctx *c, const char *file);
/* One "file:line: setting[.member]: message" error about setting s. */
void		 err_at(struct load_ctx *c, const config_setting_t *s,
		    const char *member, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
/* "expected WANT, got a TYPE" about setting s. */
void		 err_type(struct load_ctx *c, const config_setting_t *s,
		    const char *want);
/* s in quotes, escaped to one line and cut to size; returns buf. */
const char	*err_quote(char *buf, size_t size, const char *s);
/* "\"a\", \"b\"": the words of a list, for a message; returns buf. */
const char	*err_words(char *buf, size_t size, const char *const words[]);

/* config_schema.c */

/*
 * The schema is a table per group.  Offsets are into struct config, except
 * for listener fields, whose offsets are into struct listen_conf.  The
 * parser and the -T printer both walk these tables.
 */
enum ftype {
	F_INT,
	F_BOOL,
	F_STRING,
	F_ENUM,		/* int-sized enum, valued by its word's index */
	F_GROUP,
	F_FUNC,		/* parse and print callbacks */
};

#define T_TCP		(1u << TRANSPORT_TCP)
#define T_UDP		(1u << TRANSPORT_UDP)
#define T_UNIX		(1u << TRANSPORT_UNIX)
#define T_UNIX_DGRAM	(1u << TRANSPORT_UNIX_DGRAM)
#define T_IP		(T_TCP | T_UDP)
#define T_LOCAL		(T_UNIX | T_UNIX_DGRAM)
#define T_STREAM	(T_TCP | T_UNIX)
#define T_ALL		(T_IP | T_LOCAL)

/* Read before the group is walked (the transport); the walker skips it. */
#define FIELD_PREPARSED		0x1
/* Set on a socket file: not valid for an abstract socket. */
#define FIELD_FILE_ONLY		0x2
/* -T writes this top-level setting right under the one before it. */
#define FIELD_NO_GAP		0x4

struct field {
	const char		*name;
	enum ftype		 type;
	size_t			 off;
	long long		 min;	/* F_INT: value; F_STRING: length */
	long long		 max;
	const char *const	*words;	/* F_ENUM */
	const struct field	*sub;	/* F_GROUP */
	/* F_STRING, optional: checks the value first, reporting its error. */
	bool			(*check)(struct load_ctx *,
				    const config_setting_t *, const char *);
	/* F_FUNC: read setting s into base. */
	void			(*parse)(struct load_ctx *,
				    const config_setting_t *, void *base);
	/* F_FUNC: write the value (not the name) at nesting depth. */
	void			(*print)(FILE *, const void *base, int depth);
	/* F_FUNC, optional: true if the value is unset: -T leaves it out. */
	bool			(*unset)(const void *base);
	unsigned		 transports;	/* listener fields only */
	unsigned		 flags;		/* FIELD_* */
};

/* The top level of a config file, and the fields of one listener. */
extern const struct field top_fields[];
extern const struct field listen_fields[];

/*
 * Read the settings of group into base by fields, in file order.  transport
 * is a listener's transport, -1 outside listeners or when it is unknown.
 */
void		 parse_group(struct load_ctx *c, const config_setting_t *group,
		    const struct field *fields, void *base, int transport);

/* config_print.c: the print callbacks of the schema's F_FUNC fields */

void		 print_listen(FILE *fp, const void *cfg, int depth);
void		 print_listen_mode(FILE *fp, const void *listen_conf, int depth);
bool		 listen_mode_unset(const void *listen_conf);
void		 print_allow(FILE *fp, const void *cfg, int depth);
void		 print_deny(FILE *fp, const void *cfg, int depth);
void		 print_deny_source_ports(FILE *fp, const void *cfg, int depth);
void		 print_log_level(FILE *fp, const void *cfg, int depth);
void		 print_proxy_from(FILE *fp, const void *listen_conf, int depth);
bool		 proxy_from_unset(const void *listen_conf);

#endif
