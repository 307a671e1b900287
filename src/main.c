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
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "inetd.h"
#include "log.h"
#include "process.h"
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

/* Print config errors (one per line) with the program name. */
static void
print_errors(const char *errs)
{
	const char *p = errs, *nl;

	while (p && *p) {
		nl = strchr(p, '\n');
		fprintf(stderr, "echotimed: %.*s\n",
		    nl ? (int)(nl - p) : (int)strlen(p), p);
		p = nl ? nl + 1 : NULL;
	}
}

/* Load -c FILE, or the default file, or the built-in defaults. */
static int
load_config(const char *path, struct config **cfgp, bool *builtin)
{
	char *errs = NULL;
	int r;

	*builtin = false;
	if (!path) {
		r = config_load(CONFIG_DEFAULT_PATH, cfgp, &errs);
		if (r == -ENOENT) {
			free(errs);
			*builtin = true;
			if (!(*cfgp = config_default())) {
				fprintf(stderr, "echotimed: %s\n",
				    strerror(ENOMEM));
				return EX_OSERR;
			}
			return 0;
		}
	} else
		r = config_load(path, cfgp, &errs);
	if (r < 0) {
		if (errs)
			print_errors(errs);
		else
			fprintf(stderr, "echotimed: %s: %s\n",
			    path ? path : CONFIG_DEFAULT_PATH, strerror(-r));
		free(errs);
		return r == -EINVAL || r == -ENOENT ? EX_CONFIG : EX_OSERR;
	}
	return 0;
}

int
main(int argc, char *argv[])
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
	const char *cfgpath = NULL, *pidpath = NULL;
	bool test = false, print = false, daemon = false, inetd = false;
	bool builtin;
	int ch, level = -1, r, pidfd = -1, fd, status;
	enum log_target target;
	struct config *cfg = NULL;
	struct server *srv;
	char err[512];
	sigset_t mask;

	while ((ch = getopt_long(argc, argv, "c:tTdp:il:Vh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'T':
			print = true;
			break;
		case 'd':
			daemon = true;
			break;
		case 'p':
			pidpath = optarg;
			break;
		case 'i':
			inetd = true;
			break;
		case 'l':
			if ((level = log_level_parse(optarg)) < 0) {
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
	if (pidpath && !daemon) {
		/* A pidfile is useful in the foreground too: allow it. */
	}

	/*
	 * Block the signals the loop reads from its signalfd before any
	 * thread or child exists, so that they all inherit the mask.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	timecache_init();
	log_open(LOG_TARGET_STDERR, level >= 0 ? level : LOG_INFO);

	if ((r = load_config(cfgpath, &cfg, &builtin)) != 0)
		return r;
	if (test) {
		printf("configuration OK\n");
		config_free(cfg);
		return 0;
	}
	if (print) {
		config_print(cfg, stdout);
		config_free(cfg);
		return 0;
	}

	target = cfg->log.target;
	if (daemon && target == LOG_TARGET_AUTO)
		target = LOG_TARGET_SYSLOG;
	log_reopen(target, level >= 0 ? level : cfg->log.level);
	if (builtin)
		log_msg(LOG_NOTICE, "no configuration file at %s; serving the "
		    "built-in defaults", CONFIG_DEFAULT_PATH);

	fd = inetd ? inetd_passed_fd() : -1;
	if (inetd || (fd = inetd_passed_fd()) >= 0) {
		status = inetd_serve(cfg, fd >= 0 ? fd : STDIN_FILENO);
		config_free(cfg);
		return status;
	}

	if (pidpath && (pidfd = pidfile_lock(pidpath, err, sizeof(err))) < 0) {
		fprintf(stderr, "echotimed: %s\n", err);
		config_free(cfg);
		return EX_OSERR;
	}
	if (!(srv = server_new(cfg, level, err, sizeof(err)))) {
		/* server_new freed cfg. */
		fprintf(stderr, "echotimed: %s\n", err);
		log_msg(LOG_ERR, "%s", err);
		if (pidfd >= 0)
			unlink(pidpath);
		return EX_OSERR;
	}
	if (daemon && (r = daemonize()) < 0) {
		fprintf(stderr, "echotimed: daemonize: %s\n", strerror(-r));
		server_free(srv);
		return EX_OSERR;
	}
	if (pidfd >= 0 && (r = pidfile_write(pidfd)) < 0) {
		log_msg(LOG_ERR, "%s: %s", pidpath, strerror(-r));
		server_free(srv);
		daemonize_done(EX_OSERR);
		return EX_OSERR;
	}
	if ((r = drop_privileges(cfg->user, cfg->group, err,
	    sizeof(err))) < 0) {
		fprintf(stderr, "echotimed: %s\n", err);
		log_msg(LOG_ERR, "%s", err);
		server_free(srv);
		if (pidfd >= 0)
			unlink(pidpath);
		daemonize_done(r == -ENOENT ? EX_CONFIG : EX_OSERR);
		return r == -ENOENT ? EX_CONFIG : EX_OSERR;
	}
	daemonize_done(0);
	status = server_run(srv);
	server_free(srv);
	if (pidfd >= 0) {
		unlink(pidpath);
		close(pidfd);
	}
	return status;
}
