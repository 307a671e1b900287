/*
 * main.c - options, -t/-T, wiring the modules together, exit status.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "inetd.h"
#include "log.h"
#include "process.h"
#include "sdlib.h"
#include "server.h"
#include "timecache.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: echotimed [-dhiTtV] [-c file] [-l level] [-p pidfile]\n"
	    "\n"
	    "  -c, --config FILE       configuration file (default %s)\n"
	    "  -t, --test-config       check the configuration and exit\n"
	    "  -T, --print-config      print the effective configuration\n"
	    "  -d, --daemon            detach from the terminal\n"
	    "  -p, --pidfile FILE      write and lock a pid file\n"
	    "  -i, --inetd             serve the connected socket on stdin "
	    "(or fd 3)\n"
	    "  -l, --log-level LEVEL   debug, info, notice, warning, error\n"
	    "  -V, --version           print the version\n"
	    "  -h, --help              this help\n", CONFIG_DEFAULT_PATH);
}

/* A configuration error at start: on stderr, with the program name. */
static void
print_error(void *arg, const char *line, int len)
{
	fprintf(stderr, "echotimed: %.*s\n", len, line);
}

/* A path that stays valid after daemonize() changes to "/". */
static char *
absolute(const char *path)
{
	char cwd[4096], *p;

	if (!path || path[0] == '/')
		return path ? strdup(path) : NULL;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&p, "%s/%s", cwd, path) < 0)
		return NULL;
	return p;
}

/*
 * A start-up error: always on stderr (the administrator is looking), and
 * also in the log when the log is not stderr itself.
 */
static void
startup_error(const char *msg)
{
	fprintf(stderr, "echotimed: %s\n", msg);
	if (strcmp(log_target_in_use(), "stderr") != 0)
		log_msg(LOG_ERR, "%s", msg);
}

/* user/group must exist: checked by -t too, an unknown name exits 78. */
static int
check_accounts(const struct config *cfg)
{
	const char *file = cfg->file ? cfg->file : "(built-in defaults)";
	char err[256];
	uid_t uid;
	gid_t gid;

	if (lookup_ids(cfg->user, NULL, &uid, &gid, err, sizeof(err)) < 0) {
		fprintf(stderr, "echotimed: %s: user: %s\n", file, err);
		return EX_CONFIG;
	}
	if (lookup_ids(NULL, cfg->group, &uid, &gid, err, sizeof(err)) < 0) {
		fprintf(stderr, "echotimed: %s: group: %s\n", file, err);
		return EX_CONFIG;
	}
	if (cfg->group[0] && !cfg->user[0]) {
		fprintf(stderr, "echotimed: %s: group: set without user\n",
		    file);
		return EX_CONFIG;
	}
	return 0;
}

/* Classic inetd gives the client socket as stdin, stdout and stderr. */
static bool
stderr_is_stdin_socket(void)
{
	struct stat a, b;

	return fstat(STDIN_FILENO, &a) == 0 && fstat(STDERR_FILENO, &b) == 0 &&
	    S_ISSOCK(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Raise the soft descriptor limit to the hard one: every session needs a
 * descriptor, and running out only pauses accepting (see accept.c).
 */
static void
raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg->concurrency.max_connections + 64 > rl.rlim_cur)
		log_msg(LOG_WARNING, "max_connections = %d but only %llu file "
		    "descriptors are allowed (LimitNOFILE=, ulimit -n); "
		    "accepting pauses when they run out",
		    cfg->concurrency.max_connections,
		    (unsigned long long)rl.rlim_cur);
}

/* Load -c FILE, or the default file, or the built-in defaults. */
static int
load_config(const char *path, struct config **cfgp, bool *builtin)
{
	int r = server_load_config(path, cfgp, builtin, print_error, NULL);

	/* Missing, unreadable or invalid: all configuration errors. */
	if (r < 0)
		return r == -ENOMEM ? EX_OSERR : EX_CONFIG;
	return 0;
}

/* Absolute copies of -c and -p; freed on every way out of main(). */
static char *cfgpath, *pidpath;

struct options {
	bool		 test;		/* -t */
	bool		 print;		/* -T */
	bool		 daemon;	/* -d */
	bool		 inetd;		/* -i */
	int		 level;		/* -l, or -1 */
};

/* Read the command line: -1 to go on, else the exit status. */
static int
parse_options(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "config",	  required_argument, NULL, 'c' },
		{ "test-config",  no_argument,	     NULL, 't' },
		{ "print-config", no_argument,	     NULL, 'T' },
		{ "daemon",	  no_argument,	     NULL, 'd' },
		{ "pidfile",	  required_argument, NULL, 'p' },
		{ "inetd",	  no_argument,	     NULL, 'i' },
		{ "log-level",	  required_argument, NULL, 'l' },
		{ "version",	  no_argument,	     NULL, 'V' },
		{ "help",	  no_argument,	     NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	/*
	 * getopt's own messages start with argv[0] ("./echotimed",
	 * "/usr/sbin/echotimed"); every other message says "echotimed".
	 */
	static char progname[] = "echotimed";
	int ch;

	if (argc > 0)
		argv[0] = progname;
	while ((ch = getopt_long(argc, argv, "c:tTdp:il:Vh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			free(cfgpath);
			if (!(cfgpath = absolute(optarg)))
				return EX_OSERR;
			break;
		case 't':
			o->test = true;
			break;
		case 'T':
			o->print = true;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'p':
			free(pidpath);
			if (!(pidpath = absolute(optarg)))
				return EX_OSERR;
			break;
		case 'i':
			o->inetd = true;
			break;
		case 'l':
			if ((o->level = log_level_parse(optarg)) < 0) {
				fprintf(stderr, "echotimed: unknown log level "
				    "\"%s\"\n", optarg);
				usage(stderr);
				return EX_USAGE;
			}
			break;
		case 'V':
			printf("echotimed %s\n", VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "echotimed: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	return -1;
}

/*
 * Block the signals the loop reads from its signalfd before any thread or
 * child exists, so that they all inherit the mask.
 */
static void
block_signals(void)
{
	sigset_t mask;

	server_signals(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * An inherited SIGCHLD = SIG_IGN would make the kernel reap our
	 * children without telling us: fork sessions would never end.
	 */
	signal(SIGCHLD, SIG_DFL);
}

/* -t and -T: check or print the configuration, then exit. */
static int
test_or_print(const struct options *o, struct config *cfg, bool builtin)
{
	int r = 0;

	/* -t says what was checked: -c, the default file, or no file. */
	if (o->test && (r = check_accounts(cfg)) == 0 && builtin)
		printf("echotimed: built-in defaults (no %s): configuration "
		    "OK\n", CONFIG_DEFAULT_PATH);
	else if (o->test && r == 0)
		printf("echotimed: %s: configuration OK\n", cfg->file);
	else if (!o->test)
		config_print(cfg, stdout);
	config_free(cfg);
	return r;
}

/* The configured log, from here on. */
static void
open_log(const struct options *o, const struct config *cfg, bool builtin)
{
	/*
	 * Detached, or with the client socket as stderr (classic inetd),
	 * "auto" means syslog unless systemd runs us (journal); reloads
	 * keep that meaning.
	 */
	if (o->daemon || (o->inetd && stderr_is_stdin_socket()))
		log_set_auto_fallback(LOG_TARGET_SYSLOG);
	log_open(cfg->log.target, o->level >= 0 ? o->level : cfg->log.level);
	if (builtin)
		log_msg(LOG_NOTICE, "no configuration file at %s; serving the "
		    "built-in defaults", CONFIG_DEFAULT_PATH);
}

/*
 * systemd asked for something (readiness, sockets, the watchdog) that
 * needs libsystemd, loaded only now (sdlib.c): if it cannot be, say so
 * once, here, rather than time out silently.  Loaded here, on the main
 * thread before any thread or child exists, it is ready for later calls.
 */
static void
check_systemd(void)
{
	const char *var = sdlib_wanted();

	if (var != NULL && sdlib_load() < 0)
		log_msg(LOG_WARNING, "%s is set but %s: systemd's "
		    "notifications, sockets and watchdog are not used", var,
		    sdlib_error());
}

/* inetd mode: one connected socket, access lists and privileges apply. */
static int
serve_inetd(const struct options *o, struct config *cfg)
{
	char err[512];
	int fd, status;

	if ((fd = inetd_passed_fd()) < 0)
		fd = STDIN_FILENO;
	if (drop_privileges(cfg->user, cfg->group, err, sizeof(err)) < 0) {
		startup_error(err);
		status = EX_OSERR;
	} else
		status = inetd_serve(cfg, fd);
	config_free(cfg);
	return status;
}

/*
 * After the loop: after a privilege drop the directory may not be ours,
 * but an empty pidfile at least names no process that may reuse our pid.
 */
static void
remove_pidfile(int pidfd)
{
	if (pidfd < 0)
		return;
	if (unlink(pidpath) < 0) {
		log_msg(LOG_WARNING, "cannot remove %s: %s; emptied it",
		    pidpath, strerror(errno));
		(void)!ftruncate(pidfd, 0);
	}
	close(pidfd);
}

/* The daemon: pidfile, detach, listen, drop privileges, serve. */
static int
serve(const struct options *o, struct config *cfg)
{
	struct server *srv = NULL;
	int r, pidfd = -1, status;
	char err[512];

	raise_fd_limit(cfg);
	if (pidpath && (pidfd = pidfile_lock(pidpath, err, sizeof(err))) < 0) {
		startup_error(err);
		config_free(cfg);
		return EX_OSERR;
	}
	/*
	 * Detach before the loop's signalfd and epoll exist: they belong to
	 * the process that creates them.  stderr stays open until the
	 * daemon reports that it serves, so start-up errors are seen.
	 */
	if (o->daemon && (r = daemonize()) < 0) {
		snprintf(err, sizeof(err), "daemonize: %s", strerror(-r));
		config_free(cfg);
		goto fail;
	}
	/* The server owns cfg from here on, even if it fails. */
	if (!(srv = server_new(cfg, o->level, err, sizeof(err))))
		goto fail;
	/* Fork children must not keep the pidfile (and its lock) open. */
	server_close_in_children(srv, pidfd);
	if (pidfd >= 0 && (r = pidfile_write(pidfd)) < 0) {
		snprintf(err, sizeof(err), "%s: %s", pidpath, strerror(-r));
		goto fail;
	}
	if ((r = drop_privileges(cfg->user, cfg->group, err,
	    sizeof(err))) < 0)
		goto fail;
	daemonize_done(0);
	status = server_run(srv);
	server_free(srv);
	remove_pidfile(pidfd);
	return status;

fail:
	/* Nothing served: no pid file stays behind. */
	startup_error(err);
	server_free(srv);
	if (pidfd >= 0)
		unlink(pidpath);
	daemonize_done(EX_OSERR);
	return EX_OSERR;
}

static int
echotimed_main(int argc, char *argv[])
{
	struct options o = { .level = -1 };
	struct config *cfg;
	bool builtin;
	int r;

	if ((r = parse_options(argc, argv, &o)) >= 0)
		return r;
	block_signals();
	timecache_init();
	log_open(LOG_TARGET_STDERR, o.level >= 0 ? o.level : LOG_INFO);
	if ((r = load_config(cfgpath, &cfg, &builtin)) != 0)
		return r;
	if (o.test || o.print)
		return test_or_print(&o, cfg, builtin);
	if ((r = check_accounts(cfg)) != 0) {
		config_free(cfg);
		return r;
	}
	open_log(&o, cfg, builtin);
	check_systemd();
	if (o.inetd || inetd_passed_fd() >= 0)
		return serve_inetd(&o, cfg);
	return serve(&o, cfg);
}

int
main(int argc, char *argv[])
{
	int status = echotimed_main(argc, argv);

	free(cfgpath);
	free(pidpath);
	return status;
}
