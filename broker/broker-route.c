/*
 * Routing of direct-tcpip channels (ARCHITECTURE Flow 1 step 5 and Flow 2).
 *
 * - A developer's `ssh -J alice@broker alice-ws` asks for direct-tcpip to alice-ws:22. If
 *   the session's user owns that workspace and it is online, the broker opens a
 *   forwarded-tcpip channel over the workspace's connection and pumps bytes between the two
 *   channels. The inner SSH connection is end to end: the broker never sees its plaintext.
 * - A per-session tunnel's direct-tcpip to a corporate service is checked against the
 *   workspace profile's allowlist (CorpService) and opened on the active jump host.
 *
 * The developer's channel-open message is kept (and answered) only once the far end is open,
 * so a refusal on the far side is a clean channel-open failure. Refusals are audited and, when
 * the connection has nothing else open (the ssh -J / -W case), the connection is closed with
 * the sentence, which OpenSSH prints: libssh 0.10 cannot put text into a channel-open failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-store.h"
#include "broker/broker.h"
#include "tunnel/jump.h"
#include "tunnel/pump.h"

struct route {
	TAILQ_ENTRY(route) from_entry; /* from->routes_from */
	TAILQ_ENTRY(route) to_entry;   /* to->routes_to, or broker->jump_routes */
	struct broker *b;
	struct conn *from; /* the developer's or the tunnel's connection */
	struct conn *to;   /* the workspace's connection; NULL for a jump route */
	ssh_message held;  /* the channel-open, answered once the far end is open */
	ssh_channel far;   /* the far channel (owned by the pump once it exists) */
	struct jump_open *jo;
	struct pump *pump;
	char dest[300];
	char orig_ip[64];
	int orig_port;
	int *gone_flag; /* set while a call that may free the route runs */

	/* for the audit (Network Activity open / close): what the tunnel reaches */
	char ws[64];	    /* the workspace it belongs to */
	char profile[32];   /* that workspace's profile */
	char far_host[256]; /* workspace name, or the corporate service's host */
	int far_port;
	char service[64]; /* "ssh", or the corporate service's name */
	bool opened;	  /* Open was audited: Close is due */
	const char *why;  /* why it is being closed (static string), NULL: ended normally */
};

static void route_free(struct route *r);

static void
route_refuse(struct conn *c, ssh_message msg, const char *sentence, bool close_if_alone)
{
	log_info("conn %llu: %s: direct-tcpip refused: %s", (unsigned long long)c->id,
		 c->user ? c->user : "?", sentence);
	broker_audit_ssh(c->broker, c, OCSF_SSH_REFUSE, sentence);
	if (close_if_alone && TAILQ_EMPTY(&c->routes_from)) {
		/* No channel-open failure first: OpenSSH gives up on a failed -W open at once
		 * and would never read the disconnect that carries the sentence. */
		conn_close(c, sentence);
		return;
	}
	ssh_message_reply_default(msg);
}

static void
route_audit(struct route *r, int activity, const char *detail)
{
	struct broker_tunnel t;

	memset(&t, 0, sizeof(t));
	t.what = r->dest;
	t.workspace = r->ws[0] ? r->ws : NULL;
	t.profile = r->profile[0] ? r->profile : NULL;
	t.src_ip = r->from->src_ip;
	t.src_port = r->from->src_port;
	t.dst_host = r->far_host[0] ? r->far_host : NULL;
	t.dst_port = r->far_port;
	t.dst_service = r->service[0] ? r->service : NULL;
	if (activity == OCSF_NET_CLOSE && r->pump != NULL) {
		/* the pump counts as it goes: no extra work on the data path */
		t.have_traffic = true;
		t.bytes_in = pump_bytes(r->pump, 0);
		t.bytes_out = pump_bytes(r->pump, 1);
	}
	broker_audit_tunnel(r->b, r->from, activity, &t, detail);
}

static void
route_done_cb(struct pump *p, void *arg)
{
	struct route *r = arg;

	log_debug("route %s: done (%llu bytes in, %llu bytes out)", r->dest,
		  (unsigned long long)pump_bytes(p, 0), (unsigned long long)pump_bytes(p, 1));
	route_free(r);
}

static void
route_flush(struct route *r)
{
	conn_flush(r->from);
	if (r->to != NULL)
		conn_flush(r->to);
	else if (r->b->jump != NULL)
		jump_flush(r->b->jump);
}

/* The far end is open: answer the developer's open and start pumping. */
static void
route_established(struct route *r)
{
	ssh_channel near = ssh_message_channel_request_open_reply_accept(r->held);
	const char *via;
	char detail[320];

	ssh_message_free(r->held);
	r->held = NULL;
	if (near == NULL) {
		route_free(r);
		return;
	}
	if ((r->pump = pump_new_channels(near, r->far, route_done_cb, r)) == NULL) {
		ssh_channel_free(near);
		route_free(r);
		return;
	}
	log_info("conn %llu: %s connected to %s", (unsigned long long)r->from->id, r->from->user,
		 r->dest);
	r->opened = true;
	if (r->to == NULL && r->b->jump != NULL &&
	    (via = jump_channel_host(r->b->jump, r->far)) != NULL) {
		snprintf(detail, sizeof(detail), "through jump host %s", via);
		route_audit(r, OCSF_NET_OPEN, detail);
	} else {
		route_audit(r, OCSF_NET_OPEN, NULL);
	}
	pump_run(r->pump); /* may free r */
}

static struct route *
route_new(struct conn *c, ssh_message msg, const char *dest)
{
	struct route *r = calloc(1, sizeof(*r));
	const char *orig = ssh_message_channel_request_open_originator(msg);

	if (r == NULL)
		return NULL;
	r->b = c->broker;
	r->from = c;
	r->held = msg;
	snprintf(r->dest, sizeof(r->dest), "%s", dest);
	snprintf(r->orig_ip, sizeof(r->orig_ip), "%s", orig ? orig : "127.0.0.1");
	r->orig_port = ssh_message_channel_request_open_originator_port(msg);
	TAILQ_INSERT_TAIL(&c->routes_from, r, from_entry);
	return r;
}

/* Progresses a route (pending open, or pump). Returns 1 if bytes moved, 0 if not, -1 if the
 * route is gone. */
static int
route_progress(struct route *r)
{
	uint64_t before;
	int gone = 0;

	if (r->held != NULL && r->far != NULL && r->to != NULL) {
		int rc = ssh_channel_open_reverse_forward(r->far, r->to->ws_name, 22, r->orig_ip,
							  r->orig_port);
		if (rc == SSH_AGAIN)
			return 0;
		if (rc != SSH_OK) {
			log_info("route %s: the workspace refused the channel", r->dest);
			route_audit(r, OCSF_NET_FAIL, "the workspace refused the channel");
			route_free(r); /* answers the held open with a failure */
			return -1;
		}
		r->gone_flag = &gone;
		route_established(r); /* may free r */
		if (gone)
			return -1;
		r->gone_flag = NULL;
		return 1;
	}
	if (r->pump == NULL)
		return 0;
	before = pump_bytes(r->pump, 0) + pump_bytes(r->pump, 1);
	r->gone_flag = &gone;
	pump_run(r->pump); /* may free r */
	if (gone)
		return -1;
	r->gone_flag = NULL;
	return pump_bytes(r->pump, 0) + pump_bytes(r->pump, 1) != before;
}

int
route_open_workspace(struct conn *c, ssh_message msg)
{
	struct broker *b = c->broker;
	const char *name = ssh_message_channel_request_open_destination(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	const struct store_session *s = sessions_row(c->session);
	struct store_workspace w;
	struct workspace *online;
	struct conn *to;
	struct route *r;
	char sentence[512], dest[300];
	int rc;

	memset(&w, 0, sizeof(w));
	if (name == NULL || (rc = store_workspace_get(b->store, name, &w)) != 0) {
		snprintf(sentence, sizeof(sentence),
			 "There is no workspace named \"%.64s\"; check the name (ssh -J "
			 "%s@broker NAME).",
			 name ? name : "", c->user);
		route_refuse(c, msg, sentence, true);
		return 0;
	}
	if (strcmp(w.owner_sub, s->sub) != 0) {
		snprintf(sentence, sizeof(sentence),
			 "Workspace %s belongs to another user; you can only reach your own "
			 "workspaces.",
			 w.name);
	} else if (w.killed) {
		snprintf(sentence, sizeof(sentence),
			 "Workspace %s was stopped by an administrator; ask them to revive it.",
			 w.name);
	} else if (port != 22) {
		snprintf(sentence, sizeof(sentence),
			 "Only the SSH port (22) of workspace %s can be reached through the "
			 "broker, not port %d.",
			 w.name, port);
	} else if ((online = workspace_online(b, w.name)) == NULL) {
		snprintf(sentence, sizeof(sentence),
			 "Workspace %s is offline: its guest daemon is not connected to the "
			 "broker. Start the workspace, or try again in a minute.",
			 w.name);
	} else {
		sentence[0] = '\0';
	}
	if (sentence[0] != '\0') {
		store_workspace_clear(&w);
		route_refuse(c, msg, sentence, true);
		return 0;
	}
	if (workspace_attach_session(online, s) != 0) {
		store_workspace_clear(&w);
		route_refuse(c, msg, "The broker could not tell the workspace about your session.",
			     true);
		return 0;
	}
	snprintf(dest, sizeof(dest), "workspace %s", w.name);
	if ((r = route_new(c, msg, dest)) == NULL) {
		store_workspace_clear(&w);
		ssh_message_reply_default(msg);
		return 0;
	}
	snprintf(r->ws, sizeof(r->ws), "%s", w.name);
	snprintf(r->profile, sizeof(r->profile), "%s", w.profile != NULL ? w.profile : "");
	snprintf(r->far_host, sizeof(r->far_host), "%s", w.name);
	r->far_port = 22;
	snprintf(r->service, sizeof(r->service), "ssh");
	store_workspace_clear(&w);
	to = workspace_conn(online);
	r->to = to;
	TAILQ_INSERT_TAIL(&to->routes_to, r, to_entry);
	if ((r->far = ssh_channel_new(to->ssh)) == NULL) {
		route_free(r);
		return 1;
	}
	route_progress(r); /* may free r */
	conn_flush(to);
	return 1;
}

static void
route_jump_opened(ssh_channel ch, const char *error, void *arg)
{
	struct route *r = arg;

	r->jo = NULL;
	if (ch == NULL) {
		log_info("route %s: %s", r->dest, error ? error : "open failed");
		broker_audit_ssh(r->b, r->from, OCSF_SSH_REFUSE, error);
		route_audit(r, OCSF_NET_FAIL,
			    error != NULL ? error : "the jump host could not open it");
		route_free(r);
		return;
	}
	r->far = ch;
	route_established(r);
}

int
route_open_corp(struct conn *c, ssh_message msg)
{
	struct broker *b = c->broker;
	const char *host = ssh_message_channel_request_open_destination(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	struct store_workspace w;
	char *name = NULL, *chost = NULL, sentence[512], dest[300], profile[32];
	int cport = 0, found = 0;
	struct route *r;
	size_t i;

	memset(&w, 0, sizeof(w));
	if (host == NULL || c->ws_name == NULL ||
	    store_workspace_get(b->store, c->ws_name, &w) != 0) {
		route_refuse(c, msg, "Unknown workspace.", false);
		return 0;
	}
	snprintf(profile, sizeof(profile), "%s", w.profile != NULL ? w.profile : "");
	if (strcmp(w.profile, "corporate") == 0) {
		for (i = 0; i < b->cfg.corp_service.n && !found; i++) {
			if (broker_corp_service_split(b->cfg.corp_service.v[i], &name, &chost,
						      &cport) != 0)
				continue;
			if (cport == port && (strcmp(chost, host) == 0 || strcmp(name, host) == 0))
				found = 1;
			else {
				free(name);
				free(chost);
				name = chost = NULL;
			}
		}
	}
	store_workspace_clear(&w);
	if (!found) {
		snprintf(sentence, sizeof(sentence),
			 "%.200s:%d is not a corporate service of this workspace's profile", host,
			 port);
		route_refuse(c, msg, sentence, false);
		return 0;
	}
	if (b->jump == NULL) {
		free(name);
		free(chost);
		route_refuse(c, msg, "no jump host is configured", false);
		return 0;
	}
	snprintf(dest, sizeof(dest), "%s (%s:%d) via jump host", name, chost, cport);
	if ((r = route_new(c, msg, dest)) == NULL) {
		free(name);
		free(chost);
		ssh_message_reply_default(msg);
		return 0;
	}
	snprintf(r->ws, sizeof(r->ws), "%s", c->ws_name);
	snprintf(r->profile, sizeof(r->profile), "%s", profile);
	snprintf(r->far_host, sizeof(r->far_host), "%s", chost);
	r->far_port = cport;
	snprintf(r->service, sizeof(r->service), "%s", name);
	TAILQ_INSERT_TAIL(&b->jump_routes, r, to_entry);
	r->jo = jump_open(b->jump, chost, cport, c->src_ip, c->src_port, route_jump_opened, r);
	free(name);
	free(chost);
	if (r->jo == NULL) {
		route_free(r);
		return 1;
	}
	return 1;
}

static void
route_free(struct route *r)
{
	struct conn *from = r->from, *to = r->to;

	if (r->gone_flag != NULL)
		*r->gone_flag = 1;
	if (r->opened)
		route_audit(r, OCSF_NET_CLOSE, r->why != NULL ? r->why : "the channel ended");
	TAILQ_REMOVE(&from->routes_from, r, from_entry);
	if (to != NULL)
		TAILQ_REMOVE(&to->routes_to, r, to_entry);
	else
		TAILQ_REMOVE(&r->b->jump_routes, r, to_entry);
	if (r->jo != NULL)
		jump_open_cancel(r->jo);
	if (r->held != NULL) {
		ssh_message_reply_default(r->held); /* channel-open failure */
		ssh_message_free(r->held);
	}
	if (r->pump != NULL)
		pump_free(r->pump); /* closes both channels */
	else if (r->far != NULL)
		ssh_channel_free(r->far);
	if (from->state != CONN_CLOSING)
		conn_flush(from);
	if (to != NULL && to->state != CONN_CLOSING)
		conn_flush(to);
	else if (to == NULL && r->b->jump != NULL)
		jump_flush(r->b->jump);
	free(r);
}

/*
 * Reading a channel whose buffer is empty makes libssh read that channel's session socket
 * too (ssh_channel_poll), so input for the other connection may have been taken off its socket
 * here, where no libevent event will announce it. When a route moved bytes, the other
 * connection gets one more turn; turns stop when nothing moves.
 */
static void
route_wake(struct conn *peer)
{
	if (peer != NULL && peer->state == CONN_OPEN)
		event_active(peer->ev_read, EV_READ, 0);
}

void
route_run_conn(struct conn *c)
{
	struct route *r, *next;

	for (r = TAILQ_FIRST(&c->routes_from); r != NULL; r = next) {
		struct conn *peer = r->to;

		next = TAILQ_NEXT(r, from_entry);
		if (route_progress(r) == 1)
			route_wake(peer);
	}
	for (r = TAILQ_FIRST(&c->routes_to); r != NULL; r = next) {
		struct conn *peer = r->from;

		next = TAILQ_NEXT(r, to_entry);
		if (route_progress(r) == 1)
			route_wake(peer);
	}
	/* Writes may have gone to the other connections. */
	TAILQ_FOREACH(r, &c->routes_from, from_entry)
		route_flush(r);
	TAILQ_FOREACH(r, &c->routes_to, to_entry)
		route_flush(r);
}

void
route_run_jump(void *arg)
{
	struct broker *b = arg;
	struct route *r, *next;

	for (r = TAILQ_FIRST(&b->jump_routes); r != NULL; r = next) {
		struct conn *peer = r->from;

		next = TAILQ_NEXT(r, to_entry);
		if (route_progress(r) == 1)
			route_wake(peer);
	}
	TAILQ_FOREACH(r, &b->jump_routes, to_entry)
		route_flush(r);
}

void
route_jump_dead(ssh_session dead, void *arg)
{
	struct broker *b = arg;
	struct route *r, *next;

	for (r = TAILQ_FIRST(&b->jump_routes); r != NULL; r = next) {
		next = TAILQ_NEXT(r, to_entry);
		if (r->far != NULL && ssh_channel_get_session(r->far) == dead) {
			r->why = "the jump host carrying it went down";
			route_free(r);
		}
	}
}

/*
 * c is being dropped: its own channels go with its SSH session (ssh_disconnect frees them),
 * so only the far ends are closed here. Closing c's channels first would let `ssh -W` exit on
 * the channel close before it reads the disconnect that says why.
 */
static void
route_drop_from(struct conn *c, struct route *r)
{
	if (r->pump != NULL)
		pump_forget_session(r->pump, c->ssh);
	else if (r->far != NULL && ssh_channel_get_session(r->far) == c->ssh)
		r->far = NULL;
	if (r->why == NULL)
		r->why = c->closing_why != NULL ? c->closing_why :
			 c == r->from		? "the client's connection closed" :
						  "the workspace's connection closed";
	route_free(r);
}

void
route_close_conn(struct conn *c)
{
	struct route *r;

	while ((r = TAILQ_FIRST(&c->routes_from)) != NULL)
		route_drop_from(c, r);
	while ((r = TAILQ_FIRST(&c->routes_to)) != NULL)
		route_drop_from(c, r);
}
