/*
 * saw-brokerd: the SAW access broker.
 *
 * main() reads the configuration, loads the host keys and binds the listeners (the only
 * steps that may need root), drops to the `User` account, then opens the audit log and the
 * session store and runs one libevent loop until SIGTERM/SIGINT. See docs/DESIGN.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-http.h"
#include "broker/broker-oidc.h"
#include "broker/broker-store.h"
#include "broker/broker-web.h"
#include "broker/broker.h"
#include "tunnel/jump.h"

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: saw-brokerd [-dtTV] [-f config_file]\n");
	exit(2);
}

int64_t
broker_now(void)
{
	return (int64_t)time(NULL);
}

/* ---- audit helpers ------------------------------------------------------------------- */

static void
subject_from_conn(struct ocsf_subject *s, const struct conn *c)
{
	memset(s, 0, sizeof(*s));
	if (c == NULL)
		return;
	s->username = c->user;
	s->src_ip = c->src_ip;
	s->src_port = c->src_port;
	s->dst_ip = c->dst_ip;
	s->dst_port = c->dst_port;
	s->workspace = c->ws_name; /* workspace and tunnel connections */
}

static void
subject_add_session(struct ocsf_subject *s, const struct store_session *row)
{
	if (row == NULL)
		return;
	s->username = row->username;
	s->uid = row->sub;
	s->issuer = row->iss;
	s->session_uid = row->id;
	s->session_created_ms = row->created * 1000;
	s->session_expires_ms = row->expires * 1000;
}

static void
broker_emit(struct broker *b, json_t *ev)
{
	if (ev == NULL) {
		log_warnx("audit: cannot build event (out of memory)");
		return;
	}
	if (audit_emit(b->audit, ev) != 0)
		log_warnx("audit: event not written yet (kept for retry)");
}

void
broker_audit_ssh(struct broker *b, const struct conn *c, int activity, const char *reason)
{
	struct ocsf_subject s;

	subject_from_conn(&s, c);
	if (c != NULL && c->session != NULL)
		subject_add_session(&s, sessions_row(c->session));
	broker_emit(b, ocsf_ssh_activity((enum ocsf_ssh_activity)activity, &s,
					 c && c->via_device ? OCSF_SSH_AUTH_KBDINT :
							      OCSF_SSH_AUTH_PUBKEY,
					 reason, ocsf_now_ms()));
}

void
broker_audit_logon(struct broker *b, const struct conn *c, const struct store_session *row,
		   bool success, const char *reason)
{
	struct ocsf_subject s;

	subject_from_conn(&s, c);
	subject_add_session(&s, row);
	broker_emit(b, ocsf_auth_logon(&s, success, reason, ocsf_now_ms()));
}

void
broker_audit_logoff(struct broker *b, const struct store_session *row, const char *why)
{
	struct ocsf_subject s;

	subject_from_conn(&s, NULL);
	subject_add_session(&s, row);
	broker_emit(b, ocsf_auth_logoff(&s, why, ocsf_now_ms()));
}

void
broker_audit_api(struct broker *b, const struct broker_api_call *call)
{
	struct ocsf_subject who;
	struct ocsf_endpoint src;
	json_t *ev;

	memset(&who, 0, sizeof(who));
	memset(&src, 0, sizeof(src));
	who.username = call->caller_name;
	who.uid = call->caller_uid;
	who.app_name = call->caller_app;
	src.ip = call->src_ip;
	src.port = call->src_port;
	src.svc_name = call->src_ip == NULL ? call->src_name : NULL;
	ev = ocsf_api_activity((enum ocsf_api_activity)call->activity, call->operation, &who, &src,
			       call->status, call->success, call->detail, NULL, ocsf_now_ms());
	if (ev != NULL && call->method != NULL &&
	    ocsf_set_http_request(ev, call->method, call->path) != 0) {
		json_decref(ev);
		ev = NULL;
	}
	broker_emit(b, ev);
}

void
broker_audit_tunnel(struct broker *b, const struct conn *c, int activity,
		    const struct broker_tunnel *t, const char *detail)
{
	struct ocsf_subject s;
	struct ocsf_endpoint src, dst;
	char msg[512];
	json_t *ev;

	subject_from_conn(&s, c);
	if (c != NULL && c->session != NULL)
		subject_add_session(&s, sessions_row(c->session));
	s.workspace = t->workspace;
	s.profile = t->profile;
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	src.ip = t->src_ip;
	src.port = t->src_port;
	dst.hostname = t->dst_host;
	dst.port = t->dst_port;
	dst.svc_name = t->dst_service;
	snprintf(msg, sizeof(msg), "tunnel of %s to %s %s%s%s",
		 s.username != NULL ? s.username : "unknown user", t->what,
		 activity == OCSF_NET_OPEN   ? "opened" :
		 activity == OCSF_NET_CLOSE  ? "closed" :
		 activity == OCSF_NET_REFUSE ? "refused" :
					       "failed",
		 detail != NULL ? ": " : "", detail != NULL ? detail : "");
	ev = ocsf_network_activity((enum ocsf_net_activity)activity, &s, &src, &dst, detail, msg,
				   ocsf_now_ms());
	if (ev != NULL && t->have_traffic && ocsf_set_traffic(ev, t->bytes_in, t->bytes_out) != 0) {
		json_decref(ev);
		ev = NULL;
	}
	broker_emit(b, ev);
}

/* A jump host came up or went down (failover): Network Activity about the broker's own
 * connection to it. */
static void
broker_jump_event(const struct jump_event *e, void *arg)
{
	struct broker *b = arg;
	struct ocsf_endpoint dst;
	struct in6_addr a6;
	struct in_addr a4;
	char msg[512];
	bool numeric;

	memset(&dst, 0, sizeof(dst));
	numeric = inet_pton(AF_INET, e->host, &a4) == 1 || inet_pton(AF_INET6, e->host, &a6) == 1;
	dst.ip = numeric ? e->host : NULL;
	dst.hostname = numeric ? NULL : e->host;
	dst.port = e->port;
	dst.svc_name = "jump host";
	if (e->kind == JUMP_EV_UP) {
		if (e->active && e->previous != NULL)
			snprintf(
				msg, sizeof(msg),
				"jump host %s is up and takes new channels over from %s (it is the "
				"preferred one)",
				e->label, e->previous);
		else
			snprintf(msg, sizeof(msg), "jump host %s is up%s", e->label,
				 e->active ? " and active" : " (standby)");
		broker_emit(b, ocsf_network_activity(OCSF_NET_OPEN, NULL, NULL, &dst, NULL, msg,
						     ocsf_now_ms()));
		return;
	}
	if (e->takeover != NULL)
		snprintf(msg, sizeof(msg), "jump host %s%s is down (%s); %s %s", e->label,
			 e->active ? "" : " (standby)", e->reason != NULL ? e->reason : "?",
			 e->takeover, e->active ? "took over" : "stays active");
	else
		snprintf(msg, sizeof(msg),
			 "jump host %s%s is down (%s); no jump host is available: corporate "
			 "services cannot be reached",
			 e->label, e->active ? "" : " (standby)",
			 e->reason != NULL ? e->reason : "?");
	broker_emit(
		b, ocsf_network_activity(OCSF_NET_FAIL, NULL, NULL, &dst, msg, msg, ocsf_now_ms()));
}

/* ---- listeners ----------------------------------------------------------------------- */

static void
listener_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		   void *arg)
{
	conn_accept(arg, fd, sa, (socklen_t)salen);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
listener_error_cb(struct evconnlistener *l, void *arg)
{
	struct broker *b = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors: back off for a second instead of spinning (tmux does this). */
	log_warnx("accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(l);
		event_base_once(b->base, -1, EV_TIMEOUT, listener_resume_cb, l, &tv);
	}
}

static int
broker_listen(struct broker *b)
{
	size_t i;

	b->listeners = calloc(b->cfg.listen_address.n, sizeof(*b->listeners));
	if (b->listeners == NULL)
		return -1;
	for (i = 0; i < b->cfg.listen_address.n; i++) {
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		const char *addr = b->cfg.listen_address.v[i];
		struct evconnlistener *l;

		memset(&ss, 0, sizeof(ss));
		if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
			log_warnx("ListenAddress %s: not an address and port", addr);
			return -1;
		}
		l = evconnlistener_new_bind(b->base, listener_accept_cb, b,
					    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						    LEV_OPT_CLOSE_ON_EXEC,
					    512, (struct sockaddr *)&ss, sslen);
		if (l == NULL) {
			log_warn("ListenAddress %s: cannot listen", addr);
			return -1;
		}
		evconnlistener_set_error_cb(l, listener_error_cb);
		b->listeners[b->nlisteners++] = l;
		log_info("listening on %s", addr);
	}
	return 0;
}

/* ---- start-up ------------------------------------------------------------------------ */

static int
broker_load_host_keys(struct broker *b, bool check_only)
{
	size_t i;
	int errors = 0;

	for (i = 0; i < b->cfg.host_key.n; i++) {
		ssh_key key = NULL;
		const char *path = b->cfg.host_key.v[i];

		if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
			fprintf(stderr,
				"%s: HostKey %s: cannot load the private key (missing, "
				"unreadable or not an OpenSSH/PEM private key)\n",
				b->config_path, path);
			errors++;
			continue;
		}
		if (!check_only &&
		    ssh_bind_options_set(b->bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
			fprintf(stderr, "HostKey %s: %s\n", path, ssh_get_error(b->bind));
			errors++;
		}
		if (check_only || errors)
			ssh_key_free(key);
		/* else: the bind owns the key now */
	}
	return errors ? -1 : 0;
}

static void
broker_drop_privileges(struct broker *b)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(b->cfg.user)) == NULL)
		fatalx("User %s does not exist: create it (useradd --system %s) or set User in %s; "
		       "the broker never runs as root",
		       b->cfg.user, b->cfg.user, b->config_path);
	if (pw->pw_uid == 0)
		fatalx("User %s is root: the broker never runs as root", b->cfg.user);
	if (setgroups(1, &pw->pw_gid) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
		fatal("cannot drop privileges to %s", b->cfg.user);
	if (setuid(0) == 0)
		fatalx("privileges were not dropped");
	if (chdir("/") != 0)
		fatal("chdir /");
	log_debug("running as %s (uid %d)", b->cfg.user, (int)pw->pw_uid);
}

/* Every AuditSink (AuditLog alone is one file sink), per AuditFailureMode. */
static int
broker_open_audit(struct broker *b, char *err, size_t errlen)
{
	struct audit_env env = { .base = b->base,
				 .http = b->http,
				 .http_post = http_post,
				 .http_cancel = http_cancel,
				 .app_name = "saw-brokerd" };
	struct audit_sink_cfg *sinks = NULL;
	enum audit_failure_mode mode;
	size_t nsinks = 0;

	if (broker_config_audit_sinks(&b->cfg, &sinks, &nsinks, &mode) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->audit = audit_open_sinks(&env, sinks, nsinks, mode, err, errlen);
	free(sinks);
	return b->audit != NULL ? 0 : -1;
}

/* The jump-host pair (JumpHost lines): one multiplexed client connection each. */
static int
broker_jump_start(struct broker *b)
{
	struct jump_host_cfg hosts[2];
	char *host[2] = { NULL, NULL }, *user[2] = { NULL, NULL }, *key[2] = { NULL, NULL };
	size_t i, n = b->cfg.jump_host.n;
	int rc = -1;

	if (n == 0)
		return 0;
	if (n > 2)
		n = 2;
	memset(hosts, 0, sizeof(hosts));
	for (i = 0; i < n; i++) {
		if (broker_jump_host_split(b->cfg.jump_host.v[i], &host[i], &hosts[i].port,
					   &user[i], &key[i]) != 0)
			goto out;
		hosts[i].host = host[i];
		hosts[i].user = user[i];
		hosts[i].key_path = key[i];
	}
	b->jump = jump_new(b->base, hosts, n, b->cfg.jump_host_known_hosts, route_run_jump, b);
	if (b->jump != NULL) {
		jump_set_dead_cb(b->jump, route_jump_dead, b);
		jump_set_event_cb(b->jump, broker_jump_event, b);
		rc = 0;
	}
out:
	for (i = 0; i < 2; i++) {
		free(host[i]);
		free(user[i]);
		free(key[i]);
	}
	return rc;
}

static void
broker_expired_while_down(const struct store_session *s, void *arg)
{
	broker_audit_logoff(arg, s, "expired: deadline passed while the broker was down");
}

/* ---- signals and shutdown ------------------------------------------------------------ */

static void
broker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct broker *b = arg;
	struct timeval tv = { 0, 200000 };
	size_t i;

	if (sig == SIGHUP) {
		/* Log rotation: reopen the audit files (and re-read the SIEM token). */
		audit_reopen(b->audit);
		log_info("SIGHUP: audit files reopened (configuration reload is not supported yet; "
			 "restart to apply configuration changes)");
		return;
	}
	if (b->shutting_down)
		return;
	log_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	b->shutting_down = true;
	for (i = 0; i < b->nlisteners; i++)
		evconnlistener_disable(b->listeners[i]);
	conn_free_all(b);
	/* One more short turn lets the deferred frees and the disconnect packets go out. */
	event_base_loopexit(b->base, &tv);
}

static struct event *
broker_signal(struct broker *b, int sig)
{
	struct event *ev = evsignal_new(b->base, sig, broker_signal_cb, b);

	if (ev == NULL || event_add(ev, NULL) != 0)
		fatalx("cannot install the handler for signal %d", sig);
	return ev;
}

static void
broker_cleanup(struct broker *b)
{
	size_t i;

	sessions_free_all(b);
	workspace_free_all(b);
	admin_close(b);
	web_close(b);
	if (b->jump != NULL)
		jump_free(b->jump);
	for (i = 0; i < b->nlisteners; i++)
		evconnlistener_free(b->listeners[i]);
	free(b->listeners);
	oidc_free(b->oidc);
	/* Before the HTTP client: audit_close() cancels the SIEM request in flight (those events
	 * stay in the spool for the next start). */
	audit_close(b->audit);
	http_client_free(b->http);
	limits_free(b->limits);
	store_close(b->store);
	event_free(b->ev_sigterm);
	event_free(b->ev_sigint);
	event_free(b->ev_sighup);
	ssh_bind_free(b->bind);
	event_base_free(b->base);
	broker_config_free(&b->cfg);
	ssh_finalize();
}

int
main(int argc, char **argv)
{
	struct broker b;
	char err[256];
	int ch, debug = 0;
	bool check = false, dump = false;

	memset(&b, 0, sizeof(b));
	b.config_path = BROKER_DEFAULT_CONFIG;
	TAILQ_INIT(&b.conns);
	TAILQ_INIT(&b.jump_routes);

	while ((ch = getopt(argc, argv, "df:tTVh")) != -1) {
		switch (ch) {
		case 'd':
			debug++;
			break;
		case 'f':
			b.config_path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'T':
			dump = true;
			break;
		case 'V':
			printf("saw-brokerd %s\n", SAW_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("saw-brokerd", debug);
	if (broker_config_load(b.config_path, &b.cfg) != 0) {
		fprintf(stderr, "%s: configuration has errors\n", b.config_path);
		return 1;
	}
	if (ssh_init() != SSH_OK)
		fatalx("libssh initialisation failed");
	if (check || dump) {
		int rc = broker_load_host_keys(&b, true);

		if (dump && rc == 0)
			broker_config_dump(&b.cfg, stdout);
		broker_config_free(&b.cfg);
		ssh_finalize();
		return rc == 0 ? 0 : 1;
	}

	signal(SIGPIPE, SIG_IGN);
	if ((b.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if ((b.bind = ssh_bind_new()) == NULL)
		fatalx("libssh: cannot create the server context");
	ssh_bind_options_set(b.bind, SSH_BIND_OPTIONS_BANNER, "saw-brokerd");
	if (debug > 2) {
		int level = SSH_LOG_PROTOCOL;
		ssh_bind_options_set(b.bind, SSH_BIND_OPTIONS_LOG_VERBOSITY, &level);
	}
	if (broker_load_host_keys(&b, false) != 0)
		fatalx("cannot load the host keys");
	if (broker_listen(&b) != 0)
		fatalx("cannot listen on the configured addresses");
	/* Binds its ports and reads the TLS key: before dropping privileges. */
	if (web_open(&b) != 0)
		fatalx("cannot open the HTTP listener");

	broker_drop_privileges(&b);
	umask(077);

	/* The HTTP client first: the SIEM forwarder sends through it. */
	if ((b.http = http_client_new(b.base, b.cfg.oidc_timeout * 1000)) == NULL)
		fatalx("cannot create the HTTP client");
	if (broker_open_audit(&b, err, sizeof(err)) != 0)
		fatalx("audit: %s", err);
	if (store_open(b.cfg.state_database, &b.store, err, sizeof(err)) != 0)
		fatalx("StateDatabase %s: %s", b.cfg.state_database, err);
	if (store_session_expire_due(b.store, broker_now(), broker_expired_while_down, &b) < 0)
		log_warnx("could not expire the sessions that ended while the broker was down");
	if ((b.limits = limits_new(&b.cfg)) == NULL)
		fatalx("out of memory");
	if ((b.oidc = oidc_new(b.base, b.http, &b.cfg)) == NULL)
		fatalx("cannot set up the OIDC client for %s", b.cfg.oidc_issuer);

	if (broker_jump_start(&b) != 0)
		fatalx("cannot set up the jump hosts");
	if (admin_open(&b) != 0)
		fatalx("cannot open the admin socket %s", b.cfg.admin_socket);

	b.ev_sigterm = broker_signal(&b, SIGTERM);
	b.ev_sigint = broker_signal(&b, SIGINT);
	b.ev_sighup = broker_signal(&b, SIGHUP);

	log_info("saw-brokerd %s ready (issuer %s)", SAW_VERSION, b.cfg.oidc_issuer);
	event_base_dispatch(b.base);
	broker_cleanup(&b);
	log_info("stopped");
	return 0;
}
