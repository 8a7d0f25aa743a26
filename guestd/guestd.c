/*
 * saw-guestd: the workspace side of SAW.
 *
 * main() reads the configuration, checks the keys it names, opens the ControlSocket and the
 * proxy (loopback and unix sockets only: a workspace has no inbound ports), dials the
 * broker, and runs one libevent loop until SIGTERM/SIGINT. It stays root: ending a revoked
 * session's logins means signalling other users' processes and writing cgroup.kill.
 */
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <libssh/libssh.h>

#include "audit/log.h"
#include "guestd/guestd-sandbox.h"
#include "guestd/guestd.h"

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: saw-guestd [-dtTV] [-f config_file]\n");
	exit(2);
}

/* The keys named in the configuration must load: refused at start, not at each dial. */
static int
guestd_check_keys(struct guestd *g)
{
	ssh_key key = NULL;
	int errors = 0;

	if (ssh_pki_import_privkey_file(g->cfg.workspace_key, NULL, NULL, NULL, &key) != SSH_OK) {
		fprintf(stderr,
			"%s: WorkspaceKey %s: cannot load the private key (missing, unreadable, "
			"encrypted or not an OpenSSH/PEM private key)\n",
			g->config_path, g->cfg.workspace_key);
		errors++;
	}
	ssh_key_free(key);
	key = NULL;
	if (ssh_pki_import_pubkey_file(g->cfg.broker_host_key, &key) != SSH_OK) {
		fprintf(stderr,
			"%s: BrokerHostKey %s: cannot load the broker's public host key (an "
			"OpenSSH .pub file, e.g. the broker's ssh_host_ed25519_key.pub)\n",
			g->config_path, g->cfg.broker_host_key);
		errors++;
	}
	ssh_key_free(key);
	return errors ? -1 : 0;
}

static void
guestd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct guestd *g = arg;
	struct timeval tv = { 0, 200000 };

	if (sig == SIGHUP) {
		/* the policy only: other configuration changes need a restart */
		if (g->cfg.policy_file == NULL)
			log_warnx("SIGHUP: no PolicyFile to reload; other configuration changes "
				  "need a restart");
		else
			(void)guestd_policy_load(g, false);
		return;
	}
	if (g->shutting_down)
		return;
	log_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	g->shutting_down = true;
	/* Sandboxes do not outlive guestd: their proxies and exit relay die with it. */
	gsandbox_free_all(g, "saw-guestd is stopping");
	gproxy_close(g);
	gcred_close(g);
	gsock_close(g);
	gdecide_close(g);
	/* Sessions stay alive across a guestd restart (the broker attaches them again);
	 * their tunnels close now. */
	gsessions_free_all(&g->sessions);
	gbroker_stop(g);
	event_base_loopexit(g->base, &tv);
}

static struct event *
guestd_signal(struct guestd *g, int sig)
{
	struct event *ev = evsignal_new(g->base, sig, guestd_signal_cb, g);

	if (ev == NULL || event_add(ev, NULL) != 0)
		fatalx("cannot install the handler for signal %d", sig);
	return ev;
}

int
main(int argc, char **argv)
{
	struct guestd g;
	struct passwd *pw;
	int ch, debug = 0;
	bool check = false, dump = false;

	/* pid 1 of a login's sandbox re-executes this binary under that name (guestd-sandbox.c):
	 * it must not run any of the daemon's code, nor keep a copy of its memory. */
	if (argc > 0 && strcmp(basename(argv[0]), GSANDBOX_INIT_NAME) == 0)
		return gsandbox_init_main(argc, argv);
	memset(&g, 0, sizeof(g));
	g.config_path = GUESTD_DEFAULT_CONFIG;
	while ((ch = getopt(argc, argv, "df:tTVh")) != -1) {
		switch (ch) {
		case 'd':
			debug++;
			break;
		case 'f':
			g.config_path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'T':
			dump = true;
			break;
		case 'V':
			printf("saw-guestd %s\n", SAW_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("saw-guestd", debug);
	if (guestd_config_load(g.config_path, &g.cfg) != 0) {
		fprintf(stderr, "%s: configuration has errors\n", g.config_path);
		return 1;
	}
	if (ssh_init() != SSH_OK)
		fatalx("libssh initialisation failed");
	if (check || dump) {
		int rc = guestd_check_keys(&g);

		(void)guestd_policy_load(&g, true); /* a broken PolicyFile: reason, exit 1 */
		guestd_policy_free(&g);

		if (dump && rc == 0)
			guestd_config_dump(&g.cfg, stdout);
		guestd_config_free(&g.cfg);
		ssh_finalize();
		return rc == 0 ? 0 : 1;
	}
	if (guestd_check_keys(&g) != 0)
		fatalx("cannot load the keys named in %s", g.config_path);
	g.ak_uid = (uid_t)-1;
	if ((pw = getpwnam(g.cfg.authorized_keys_user)) != NULL)
		g.ak_uid = pw->pw_uid;
	else
		log_warnx("AuthorizedKeysUser %s does not exist: only root may ask about keys "
			  "(set AuthorizedKeysCommandUser in sshd_config to an existing account)",
			  g.cfg.authorized_keys_user);

	signal(SIGPIPE, SIG_IGN);
	umask(022);
	if ((g.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	gsessions_init(&g.sessions, &g);
	(void)guestd_policy_load(&g, true); /* fatal with the reason if broken */
	if (gsandbox_init(&g) != 0)
		fatalx("cannot set up the sandbox launcher");
	if (gsock_open(&g) != 0)
		fatalx("ControlSocket %s: cannot open it", g.cfg.control_socket);
	if (gdecide_open(&g) != 0)
		fatalx("DecisionSocket %s: cannot open it", g.cfg.decision_socket);
	if (gcred_open(&g) != 0)
		fatalx("cannot start the credential proxy");
	if (gproxy_open(&g) != 0)
		fatalx("ProxyListen %s (or CredentialListen): cannot listen", g.cfg.proxy_listen);
	if (gbroker_start(&g) != 0)
		fatalx("cannot start the broker connection");
	g.ev_sigterm = guestd_signal(&g, SIGTERM);
	g.ev_sigint = guestd_signal(&g, SIGINT);
	g.ev_sighup = guestd_signal(&g, SIGHUP);

	log_info("saw-guestd %s ready (workspace %s, broker %s)", SAW_VERSION, g.cfg.workspace_name,
		 g.cfg.broker_address);
	event_base_dispatch(g.base);

	gsandbox_free_all(&g, "saw-guestd is stopping");
	gproxy_close(&g);
	gcred_close(&g);
	gsock_close(&g);
	gdecide_close(&g);
	gsessions_free_all(&g.sessions);
	gbroker_stop(&g);
	event_free(g.ev_sigterm);
	event_free(g.ev_sigint);
	event_free(g.ev_sighup);
	event_base_free(g.base);
	guestd_policy_free(&g);
	guestd_config_free(&g.cfg);
	ssh_finalize();
	log_info("stopped");
	return 0;
}
