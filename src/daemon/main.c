/* main: argv, start-up order, signals, reload, teardown; nothing else.
 *
 * Start-up order: load and validate the config; bind every listener and the
 * control socket; drop privileges; install signal handlers; tell systemd we
 * are ready; run the loop. Exit codes (handoffd(8)): 0 ok, 1 config error,
 * 2 usage error, 3 start-up failure. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "activation.h"
#include "builtin.h"
#include "ctl.h"
#include "daemon.h"
#include "inetd.h"
#include "listener.h"
#include "log.h"
#include "registry.h"
#include "sdnotify.h"
#include "service.h"
#include "spawn.h"
#include "upgrade.h"
#include "xinetd.h"

#define EXIT_CONFIG 1
#define EXIT_USAGE 2
#define EXIT_STARTUP 3

static bool opt_debug;


uint64_t hd_now_ms(struct hd *hd)
{
	return uv_now(hd->loop);
}

static unsigned sweep_interval(const struct config *c)
{
	unsigned t = c->handshake_timeout_ms / 4;
	return t < 20 ? 20 : t > 1000 ? 1000 : t;
}

static void on_sweep(uv_timer_t *t)
{
	ctl_sweep(t->data);
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	sdnotify_watchdog();
}

int hd_reload(struct hd *hd, char *err, size_t errlen)
{
	struct config *nc = NULL;
	sdnotify_reloading();
	int rc = hd->config_is_inetd ? config_load_inetd(hd->config_path, &nc, err, errlen)
	                             : config_load_file(hd->config_path, &nc, err, errlen);
	if (rc == 0 && hd->ctl_override)
		snprintf(nc->control_socket, sizeof(nc->control_socket), "%s", hd->ctl_override);
	if (rc == 0) {
		struct config *oc = hd->cfg;
		if (strcmp(oc->control_socket, nc->control_socket) != 0 || oc->control_mode != nc->control_mode ||
		    oc->control_group != nc->control_group)
			log_warning("reload: control socket settings changed: they take effect when handoffd restarts");
		if (oc->user != nc->user || oc->group != nc->group)
			log_warning("reload: user/group changed: they take effect when handoffd restarts");
		rc = service_apply(hd, nc, err, errlen);
		if (rc < 0)
			config_free(nc);
	}
	if (rc < 0) {
		log_error("reload refused, the running configuration stays: %s", err);
		sdnotify_ready();
		return rc;
	}
	hd->reloads++;
	log_set_level(opt_debug ? LOG_LVL_DEBUG : hd->cfg->log_level);
	log_set_target(hd->cfg->log_target);
	uv_timer_start(&hd->sweep_timer, on_sweep, sweep_interval(hd->cfg), sweep_interval(hd->cfg));
	log_notice("configuration reloaded from %s", hd->config_path);
	unsigned nl = 0;
	struct listener *l;
	TAILQ_FOREACH(l, &hd->listeners, link)
		nl++;
	sdnotify_status("%zu services, %u listeners, %llu reloads", hd->cfg->nservices, nl,
	                (unsigned long long)hd->reloads);
	sdnotify_ready();
	return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void finish(struct hd *hd)
{
	unsigned lost = 0;
	if (hd->finishing)
		return;
	hd->finishing = true;
	if (hd->fdstore_used)
		hd->keep_socket_files = true;
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		lost += svc->npending;
		struct backend *b;
		TAILQ_FOREACH(b, &svc->backends, link)
			lost += b->nunacked + b->nqueued;
	}
	ctl_close(hd); /* what backends had not acknowledged is pending again */
	/* Handing over: that too goes to the new handoffd, whatever it takes. */
	if (hd->handing_over)
		upgrade_forward_pending_now(hd);
	upgrade_close(hd);
	unsigned stored = service_store_pending(hd);
	if (stored)
		log_notice("kept %u waiting connection%s in systemd's fd store for the next handoffd", stored,
		           stored == 1 ? "" : "s");
	lost = 0;
	TAILQ_FOREACH(svc, &hd->services, link)
		lost += svc->npending;
	if (lost > stored)
		log_warning("exiting with %u connection%s no backend acknowledged; their clients are closed",
		            lost - stored, lost - stored == 1 ? "" : "s");
	builtin_close_all(hd);
	service_free_all(hd);
	spawn_close(hd);
	uv_close((uv_handle_t *)&hd->limit_timer, NULL);
	uv_close((uv_handle_t *)&hd->sweep_timer, NULL);
	uv_close((uv_handle_t *)&hd->starve_timer, NULL);
	uv_close((uv_handle_t *)&hd->shutdown_timer, NULL);
	uv_close((uv_handle_t *)&hd->reap_timer, NULL);
	uv_close((uv_handle_t *)&hd->watchdog_timer, NULL);
	uv_close((uv_handle_t *)&hd->flush_check, NULL);
	uv_close((uv_handle_t *)&hd->sig_hup, NULL);
	uv_close((uv_handle_t *)&hd->sig_term, NULL);
	uv_close((uv_handle_t *)&hd->sig_int, NULL);
	uv_close((uv_handle_t *)&hd->sig_usr2, NULL);
}

void hd_shutdown_check(struct hd *hd)
{
	if (!hd->shutting_down || hd->finishing)
		return;
	if (hd->handing_over)
		upgrade_forward_pending(hd);
	struct service *svc;
	TAILQ_FOREACH(svc, &hd->services, link) {
		/* Connections waiting for a backend that exists, or for the new
		 * handoffd to take them: wait. */
		if (svc->npending && (svc->nbackends || hd->handing_over))
			return;
		struct backend *b;
		TAILQ_FOREACH(b, &svc->backends, link)
			if (b->nunacked || b->nqueued)
				return;
	}
	log_notice("every queued connection delivered; exiting");
	finish(hd);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
	struct hd *hd = t->data;
	log_warning("shutdown_timeout reached with connections still unacknowledged; exiting");
	finish(hd);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct hd *hd = s->data;
	if (signum == SIGHUP) {
		char err[4096];
		log_notice("SIGHUP: reloading %s", hd->config_path);
		hd_reload(hd, err, sizeof(err));
		return;
	}
	if (hd->shutting_down) {
		log_warning("%s again: exiting now without waiting for acknowledgements", strsignal(signum));
		finish(hd);
		return;
	}
	if (signum == SIGUSR2) {
		char err[4096];
		if (upgrade_start(hd, NULL, 0, err, sizeof(err)) < 0)
			log_error("upgrade refused: %s", err);
		return;
	}
	log_notice("%s: no longer accepting; delivering what is queued", strsignal(signum));
	hd_stop(hd);
}

void hd_stop(struct hd *hd)
{
	if (hd->shutting_down)
		return;
	sdnotify_stopping();
	hd->shutting_down = true;
	/* systemd keeps our sockets for the next start: their files must stay. */
	if (hd->fdstore_used)
		hd->keep_socket_files = true;
	/* Close the listeners: connections stop arriving. */
	struct listener *l;
	while ((l = TAILQ_FIRST(&hd->listeners)) != NULL) {
		TAILQ_REMOVE(&hd->listeners, l, link);
		if (l->svc)
			TAILQ_REMOVE(&l->svc->listeners, l, svc_link);
		listener_close(l);
	}
	ctl_update(hd);
	hd->shutdown_timer.data = hd;
	uv_timer_start(&hd->shutdown_timer, on_shutdown_timeout, hd->cfg->shutdown_timeout_ms, 0);
	hd_shutdown_check(hd);
}

static int drop_privileges(const struct config *c)
{
	if (c->user == (uid_t)-1 && c->group == (gid_t)-1)
		return 0;
	/* Started by a handoffd that had already dropped them (an upgrade). */
	if (c->user != (uid_t)-1 && geteuid() == c->user && getuid() == c->user)
		return 0;
	gid_t g = c->group;
	/* Supplementary groups: the user's own (initgroups), else just g. */
	if (c->user != (uid_t)-1 && c->user_name[0]) {
		if (initgroups(c->user_name, g) < 0)
			return -errno;
	} else if (setgroups(1, &g) < 0) {
		return -errno;
	}
	if (g != (gid_t)-1 && setgid(g) < 0)
		return -errno;
	if (c->user != (uid_t)-1 && setuid(c->user) < 0)
		return -errno;
	/* Make sure there is no way back. */
	if (c->user != (uid_t)-1 && c->user != 0 && setuid(0) == 0)
		return -EPERM;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: handoffd [-f FILE | --inetd FILE] [-t] [-d]\n"
	        "       handoffd --convert-inetd FILE | --convert-xinetd FILE\n"
	        "  -f, --config FILE        configuration file (default %s/handoffd/handoffd.conf)\n"
	        "  -i, --inetd FILE         run the services of an inetd.conf, with default settings\n"
	        "      --convert-inetd FILE print the handoffd.conf equivalent of an inetd.conf\n"
	        "      --convert-xinetd FILE\n"
	        "                           print the handoffd.conf equivalent of an xinetd.conf\n"
	        "  -s, --control-socket PATH\n"
	        "                           use this control socket instead of the configuration's\n"
	        "  -t, --test               check the configuration and exit (0: good, 1: bad)\n"
	        "  -d, --debug              log at debug level\n"
	        "  -h, --help               this text\n"
	        "  -V, --version            print the version\n",
	        SYSCONFDIR);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'f'}, {"test", no_argument, NULL, 't'},
		{"debug", no_argument, NULL, 'd'},        {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {"inetd", required_argument, NULL, 'i'},
		{"convert-inetd", required_argument, NULL, 'C'},
		{"convert-xinetd", required_argument, NULL, 'X'},
		{"control-socket", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *path = SYSCONFDIR "/handoffd/handoffd.conf";
	const char *convert = NULL, *ctl_override = NULL;
	bool test = false, have_f = false, inetd = false;
	int ch, convert_kind = 0;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":f:i:s:tdhV", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (optarg[0] != '/' && optarg[0] != '@') {
				fprintf(stderr, "handoffd: --control-socket '%s' must be an absolute path or @name\n", optarg);
				return EXIT_USAGE;
			}
			if (strlen(optarg) >= sizeof(((struct config *)0)->control_socket)) {
				fprintf(stderr, "handoffd: --control-socket: path too long\n");
				return EXIT_USAGE;
			}
			ctl_override = optarg;
			break;
		case 'f':
			path = optarg;
			have_f = true;
			break;
		case 'i':
			path = optarg;
			inetd = true;
			break;
		case 'C':
		case 'X':
			if (convert) {
				fprintf(stderr, "handoffd: give one of --convert-inetd and --convert-xinetd\n");
				return EXIT_USAGE;
			}
			convert = optarg;
			convert_kind = ch;
			break;
		case 't':
			test = true;
			break;
		case 'd':
			opt_debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("handoffd %s\n", PACKAGE_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "handoffd: option %s needs an argument\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "handoffd: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "handoffd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (inetd && have_f) {
		fprintf(stderr, "handoffd: --inetd and --config exclude each other (use inetd_conf = in the config)\n");
		return EXIT_USAGE;
	}
	if (convert && (inetd || have_f || test || ctl_override)) {
		fprintf(stderr, "handoffd: --convert-%s takes no other option\n", convert_kind == 'C' ? "inetd" : "xinetd");
		return EXIT_USAGE;
	}
	if (convert) {
		int rc = convert_kind == 'C' ? inetd_convert(convert, stdout, stderr)
		                             : xinetd_convert(convert, stdout, stderr);
		if (fflush(stdout) != 0 && rc == 0)
			rc = -EIO;
		return rc == 0 ? 0 : EXIT_CONFIG;
	}

	char err[8192];
	struct config *cfg = NULL;
	if ((inetd ? config_load_inetd(path, &cfg, err, sizeof(err))
	           : config_load_file(path, &cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if (ctl_override)
		snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", ctl_override);
	if (test) {
		printf("%s: configuration OK (%zu service%s)\n", path, cfg->nservices, cfg->nservices == 1 ? "" : "s");
		config_free(cfg);
		return 0;
	}
	log_set_level(opt_debug ? LOG_LVL_DEBUG : cfg->log_level);
	log_set_target(cfg->log_target);
	signal(SIGPIPE, SIG_IGN);

	/* Sockets passed in by systemd or a previous handoffd replace binding.
	 * Taken before anything else opens an fd: a LISTEN_FDS that claims
	 * more than were passed must not claim our own. */
	static struct activation act;
	if (activation_take(&act, err, sizeof(err)) < 0) {
		log_error("%s", err);
		config_free(cfg);
		return EXIT_STARTUP;
	}

	/* Every backend and every waiting connection is a descriptor: use
	 * all the hard limit allows (systemd's LimitNOFILE= sets it), and give
	 * programs we start the soft limit we were started with. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t soft = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			spawn_set_child_nofile((unsigned long)soft);
	}

	static struct hd hd; /* the one context; static only to live past main's frame for libuv */
	uv_loop_t loop;
	uv_loop_init(&loop);
	hd.loop = &loop;
	hd.config_path = path;
	hd.config_is_inetd = inetd;
	hd.ctl_override = ctl_override;
	/* How an upgrade starts the new process: the same options, the
	 * configuration by absolute path (spawned programs start in /). */
	static char abs_path[4096], *up_argv[7];
	if (!realpath(path, abs_path))
		snprintf(abs_path, sizeof(abs_path), "%s", path);
	int ua = 0;
	up_argv[ua++] = argv[0];
	up_argv[ua++] = inetd ? "--inetd" : "--config";
	up_argv[ua++] = abs_path;
	if (opt_debug)
		up_argv[ua++] = "--debug";
	if (ctl_override) {
		up_argv[ua++] = "--control-socket";
		up_argv[ua++] = (char *)ctl_override;
	}
	up_argv[ua] = NULL;
	hd.argv = up_argv;
	/* The executable as it is now: an upgrade starts whatever is at this
	 * path then (the new binary after a package upgrade). */
	ssize_t xl = readlink("/proc/self/exe", hd.exe, sizeof(hd.exe) - 1);
	hd.exe[xl > 0 ? xl : 0] = '\0';
	if (xl > 10 && strcmp(hd.exe + xl - 10, " (deleted)") == 0)
		hd.exe[xl - 10] = '\0';
	hd.ctl_fd = -1;
	TAILQ_INIT(&hd.services);
	TAILQ_INIT(&hd.listeners);
	TAILQ_INIT(&hd.ctlconns);
	hd.start_ms = uv_now(&loop);
	/* Every handle exists from here on, so finish() can close them all on
	 * any path, start-up failures included. */
	uv_timer_init(&loop, &hd.sweep_timer);
	uv_timer_init(&loop, &hd.starve_timer);
	uv_timer_init(&loop, &hd.shutdown_timer);
	uv_timer_init(&loop, &hd.reap_timer);
	uv_timer_init(&loop, &hd.watchdog_timer);
	ctl_init(&hd);
	service_init(&hd);
	/* Builtins and children need their state before any service runs. */
	if (builtin_init(&hd) < 0 || spawn_init(&hd) < 0) {
		log_error("out of memory");
		config_free(cfg);
		hd.cfg = NULL;
		hd.exit_code = EXIT_STARTUP;
		goto out;
	}
	uv_signal_init(&loop, &hd.sig_hup);
	uv_signal_init(&loop, &hd.sig_term);
	uv_signal_init(&loop, &hd.sig_int);
	uv_signal_init(&loop, &hd.sig_usr2);
	hd.sweep_timer.data = hd.reap_timer.data = &hd;
	hd.sig_hup.data = hd.sig_term.data = hd.sig_int.data = hd.sig_usr2.data = &hd;

	/* Signals are caught from before the control socket answers, so a
	 * SIGTERM that follows the first sign of life never finds the default
	 * action (it is handled once the loop runs). */
	uv_signal_start(&hd.sig_hup, on_signal, SIGHUP);
	uv_signal_start(&hd.sig_term, on_signal, SIGTERM);
	uv_signal_start(&hd.sig_int, on_signal, SIGINT);
	uv_signal_start(&hd.sig_usr2, on_signal, SIGUSR2);
	hd.activation = act.n ? &act : NULL;

	/* An empty config to apply against, so start-up and reload share code. */
	hd.cfg = calloc(1, sizeof(*hd.cfg));
	int rc;
	if (!hd.cfg) {
		log_error("out of memory");
		config_free(cfg);
		hd.exit_code = EXIT_STARTUP;
		goto out;
	}
	if (service_apply(&hd, cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		config_free(cfg);
		hd.exit_code = EXIT_STARTUP;
		goto out;
	}
	if (ctl_open(&hd, err, sizeof(err)) < 0) {
		log_error("%s", err);
		hd.exit_code = EXIT_STARTUP;
		goto out;
	}
	/* Connections a previous handoffd left in systemd's fd store. */
	char stored_name[ACTIVATION_NAME_MAX + 1];
	unsigned nstored = 0;
	for (int fd; (fd = activation_claim_prefix(hd.activation, "conn.", stored_name)) >= 0; nstored++)
		service_import_stored(&hd, fd, stored_name);
	if (nstored)
		log_notice("took %u waiting connection%s from systemd's fd store", nstored, nstored == 1 ? "" : "s");
	/* A previous handoffd handing over to us (upgrade.c). */
	int upgrade_fd = activation_claim_name(hd.activation, UPGRADE_FD_NAME, SOCK_SEQPACKET);
	/* Passed sockets no listener wanted: said and closed. */
	activation_close_unused(hd.activation);
	activation_free(hd.activation);
	hd.activation = NULL;
	rc = drop_privileges(hd.cfg);
	if (rc < 0) {
		log_error("cannot drop privileges to user %s: %s", hd.cfg->user_name, strerror(-rc));
		hd.exit_code = EXIT_STARTUP;
		goto out;
	}

	uv_timer_start(&hd.sweep_timer, on_sweep, sweep_interval(hd.cfg), sweep_interval(hd.cfg));
	/* systemd's watchdog: a keep-alive at half the interval it wants. */
	unsigned long long wd = sdnotify_watchdog_usec();
	if (wd) {
		uint64_t every = wd / 2000 ? wd / 2000 : 1;
		uv_timer_start(&hd.watchdog_timer, on_watchdog, every, every);
		log_info("systemd watchdog: keep-alive every %llu ms", (unsigned long long)every);
	}

	unsigned nl = 0;
	struct listener *l;
	TAILQ_FOREACH(l, &hd.listeners, link)
		nl++;
	log_notice("ready: %zu service%s, %u listener%s, control socket %s", hd.cfg->nservices,
	           hd.cfg->nservices == 1 ? "" : "s", nl, nl == 1 ? "" : "s", hd.ctl_path);
	sdnotify_status("%zu services, %u listeners", hd.cfg->nservices, nl);
	sdnotify_ready();
	if (upgrade_fd >= 0)
		upgrade_adopt(&hd, upgrade_fd);

out:
	activation_free(hd.activation);
	hd.activation = NULL;
	if (hd.exit_code)
		finish(&hd);
	uv_run(&loop, UV_RUN_DEFAULT);

	if (uv_loop_close(&loop) == UV_EBUSY) {
		/* Should not happen: every handle is closed in finish(). */
		log_warning("handles left open at exit; closing them");
		uv_walk(&loop, on_walk_close, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
	}
	config_free(hd.cfg);
	if (!hd.exit_code)
		log_notice("exited cleanly");
	return hd.exit_code;
}
