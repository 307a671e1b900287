/*
 * config.h - the validated, read-only configuration of echotimed.
 *
 * config.c (with config_schema.c, config_error.c and config_int.c) turns a
 * libconfig file into one struct config; config_print.c writes it back for
 * -T.  Every setting of the public schema (SPEC section 4) is here with its
 * default filled in.  A struct config is never modified after config_load()
 * returns; reload builds a new one and the server swaps pointers.
 */
#ifndef ECHOTIMED_CONFIG_H
#define ECHOTIMED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "acl.h"

#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/echotimed/echotimed.conf"
/* Most event loops concurrency.workers may ask for. */
#define MAX_WORKERS		256

enum transport {
	TRANSPORT_TCP,
	TRANSPORT_UDP,
	TRANSPORT_UNIX,
	TRANSPORT_UNIX_DGRAM,
};

enum model {
	MODEL_SEQUENTIAL,
	MODEL_FORK,
	MODEL_THREAD,
	MODEL_EVENT,
};

enum overflow {
	OVERFLOW_REJECT,
	OVERFLOW_WAIT,
};

/* A stream listener's PROXY protocol header (SPEC 9). */
enum proxy_protocol {
	PROXY_OFF,
	PROXY_V1,
	PROXY_V2,
	PROXY_ANY,
};

enum log_target {
	LOG_TARGET_AUTO,
	LOG_TARGET_JOURNAL,
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

struct listen_conf {
	char		*name;		/* "" when not set */
	enum transport	 transport;
	char		*address;	/* tcp/udp; NULL for unix */
	int		 port;		/* tcp/udp: 0..65535 */
	char		*path;		/* unix: file path or "@abstract" */
	int		 mode;		/* unix file mode, -1 = leave umask's */
	char		*owner;		/* "" = unchanged */
	char		*group;		/* "" = unchanged */
	int		 backlog;	/* stream only, 1..65535, default 128 */
	bool		 reuse_port;
	/* Stream only: a PROXY header first (SPEC 9), believed only from a
	 * proxy_from prefix (tcp; a unix listener trusts every peer that
	 * may connect), complete within proxy_timeout seconds. */
	enum proxy_protocol proxy_protocol;	/* default PROXY_OFF */
	struct cidr	*proxy_from;
	size_t		 nproxy_from;
	int		 proxy_timeout;	/* 1..3600 s, default 5 */
	int		 line;		/* source line, 0 for built-in */
};

struct config {
	char		*file;		/* file it came from, NULL = built-in */

	struct listen_conf *listen;
	size_t		 nlisten;

	struct {
		enum model	 model;
		int		 max_connections;	/* 1..1000000, 256 */
		enum overflow	 overflow;
		int		 max_connections_per_source; /* 0 = unlimited */
		int		 thread_stack_kib;	/* 16..65536, 64 */
		int		 busy_poll;		/* 0..10000 us, 0 = off */
		int		 workers;	/* event loops, 1..MAX_WORKERS, 1 */
	} concurrency;

	struct {
		int		 max_line_length;	/* 1..1048576, 4096 */
		int		 idle_timeout;		/* 0..86400 s, 300 */
	} session;

	int		 shutdown_timeout;		/* 0..3600 s, 10 */

	/* Addresses in one prefix are one source for per-source limits. */
	int		 source_prefix_v4;		/* 0..32, 32 */
	int		 source_prefix_v6;		/* 0..128, 64 */

	struct {
		struct cidr	*allow;
		size_t		 nallow;
		struct cidr	*deny;
		size_t		 ndeny;
	} access;

	struct {
		int		 rate_limit;		/* 0..1000000, 100 */
		int		 rate_burst;		/* 1..1000000, 200 */
		int		*deny_source_ports;	/* 0..65535 each */
		size_t		 ndeny_source_ports;
	} datagram;

	struct {
		int		 level;		/* syslog priority LOG_DEBUG..LOG_ERR */
		enum log_target	 target;
	} log;

	char		*user;		/* "" = stay */
	char		*group;		/* "" = user's primary group */
};

/* Built-in defaults: TCP 127.0.0.1:9999, thread model.  NULL on ENOMEM. */
struct config	*config_default(void);
/*
 * Parse and validate path.  On success returns 0 and sets *cfgp.  On failure
 * returns -ENOENT (file missing: *errp says so), -EINVAL (syntax or
 * validation: *errp holds every error, one "file:line: setting: message" per
 * line) or another -errno.  *errp is malloc'd, NULL on success.
 */
int		 config_load(const char *path, struct config **cfgp, char **errp);
/*
 * Load path; with path NULL, the default file, or the built-in defaults
 * (*builtin true) when that file does not exist.  Returns as config_load().
 */
int		 config_obtain(const char *path, struct config **cfgp,
		    char **errp, bool *builtin);
/* Write cfg in libconfig syntax that config_load() accepts. */
void		 config_print(const struct config *cfg, FILE *fp);
/* Free a config; NULL is fine. */
void		 config_free(struct config *cfg);
/* True if two listeners would open the same socket the same way and
 * serve it alike (labels, backlog, mode and PROXY settings too). */
bool		 listen_conf_equal(const struct listen_conf *a,
		    const struct listen_conf *b);
/*
 * True if both would bind a socket the same way: transport, address and
 * port or path, reuse_port (labels, backlog, file mode and PROXY settings
 * aside: those change in place).
 */
bool		 listen_conf_same_bind(const struct listen_conf *a,
		    const struct listen_conf *b);
/* Same socket file mode, owner and group. */
bool		 listen_conf_same_owner(const struct listen_conf *a,
		    const struct listen_conf *b);
/* Deep copy of a listener's settings. 0 or -ENOMEM. */
int		 listen_conf_copy(struct listen_conf *dst,
		    const struct listen_conf *src);
/* Free a listener's strings (a copy's, or one in a config). */
void		 listen_conf_clear(struct listen_conf *lc);
/* Names for enum values, as spelled in the config file. */
const char	*transport_name(enum transport t);
const char	*model_name(enum model m);
const char	*overflow_name(enum overflow o);
const char	*log_target_name(enum log_target t);
const char	*proxy_protocol_name(enum proxy_protocol p);
/* "debug".."error" <-> LOG_DEBUG..LOG_ERR; -1 if unknown. */
int		 log_level_parse(const char *s);
const char	*log_level_name(int level);
/* True for udp and unix-dgram. */
bool		 transport_is_dgram(enum transport t);
/* The access lists as acl_permits() takes them. */
struct acl	 config_acl(const struct config *cfg);

#endif
