/*
 * saw-brokerd internals shared by the broker-*.c files.
 *
 * One process, one thread, one libevent base: struct broker is the process context, made
 * in main() and passed explicitly; there are no other mutable globals. Every libssh session
 * is owned by exactly one struct conn and only ever touched from the event loop thread.
 * See docs/DESIGN.md for the concurrency model and the pre-auth boundary.
 */
#ifndef SAW_BROKER_H
#define SAW_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "broker/broker-config.h"

struct event;
struct event_base;
struct evconnlistener;
struct audit;
struct store;
struct oidc;
struct oidc_device;
struct http_client;
struct limits;
struct live_session;
struct workspace;
struct route;
struct jump_mux;
struct pump;
struct broker_api_call;

enum conn_state {
	CONN_KEX,     /* key exchange in progress */
	CONN_AUTH,    /* user authentication in progress (pre-auth) */
	CONN_OPEN,    /* authenticated, bound to a live session */
	CONN_CLOSING, /* disconnect sent, waiting for the output to drain */
};

/* Who is on the other end, decided at authentication. */
enum conn_kind {
	CONN_USER,	/* a developer (publickey + device flow) */
	CONN_WORKSPACE, /* a workspace's guestd: user "workspace:NAME", its registered key */
	CONN_TUNNEL,	/* a per-session tunnel: user "tunnel:SESSION", workspace key + token */
};

TAILQ_HEAD(route_list, route);

/* The device-flow part of a login, owned by broker-auth.c. */
enum login_state {
	LOGIN_NONE,	/* no verified key yet */
	LOGIN_KEY_OK,	/* key signature verified, no live session: device flow */
	LOGIN_PROMPTED, /* the verification URL prompt has been sent */
	LOGIN_CHECKING, /* the user pressed Enter; waiting for the IdP's answer */
	LOGIN_DONE,
};

struct conn {
	TAILQ_ENTRY(conn) entry;	 /* broker->conns */
	TAILQ_ENTRY(conn) session_entry; /* live_session->conns, when CONN_OPEN */
	struct broker *broker;
	uint64_t id; /* for logs */
	int fd;	     /* libssh's descriptor of the socket */
	int evfd;    /* libevent's descriptor of the same socket (see conn_accept) */
	ssh_session ssh;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_timer; /* LoginGraceTime before auth, drain deadline when closing */
	enum conn_state state;
	bool unauth_counted; /* counted in the MaxStartups numbers */
	bool read_paused;    /* waiting for the IdP before reading the next message */
	char src_ip[64];
	int src_port;
	char dst_ip[64];
	int dst_port;

	/* authentication (broker-auth.c) */
	char *user;   /* SSH user name of the first auth request */
	char *key_fp; /* "SHA256:…" of the verified key */
	enum login_state login;
	struct oidc_device *device;
	ssh_message held;	  /* kbd-int message answered once the IdP replies */
	struct event *ev_recheck; /* re-prompt if Enter came before approval */
	int auth_failures;
	bool via_device; /* the login went through the device flow (kbd-int) */

	/* after authentication */
	enum conn_kind kind;
	struct live_session *session; /* CONN_USER and CONN_TUNNEL */
	struct workspace *ws;	      /* CONN_WORKSPACE: its online record */
	char *ws_name;		      /* CONN_WORKSPACE / CONN_TUNNEL: the workspace */
	int64_t last_activity;
	int64_t last_rx;	       /* last byte received (dead-peer detection) */
	struct route_list routes_from; /* routes this connection asked for */
	struct route_list routes_to;   /* routes carried to this connection (workspace) */
	int nchannels;		       /* open channels (session, forwards) */
	const char *closing_why;       /* during conn_close: its reason (for the routes' audit) */
};

TAILQ_HEAD(conn_list, conn);

struct broker {
	struct broker_config cfg;
	const char *config_path;
	struct event_base *base;
	ssh_bind bind; /* host keys; one per process, shared by all sessions */
	struct evconnlistener **listeners;
	size_t nlisteners;
	struct audit *audit;
	struct store *store;
	struct http_client *http;
	struct oidc *oidc;
	struct limits *limits;
	struct conn_list conns;
	size_t nconns;
	size_t nunauth;
	uint64_t next_conn_id;
	struct live_session *sessions; /* live sessions that have connections (broker-sessions.c) */
	struct admin *admin;	       /* broker-admin.c */
	struct web *web;	       /* broker-web.c: HTTP listener (webhooks, admin API) */
	struct workspace *workspaces;  /* online workspaces (broker-workspace.c) */
	struct attachment *attachments;	   /* sessions attached to workspaces */
	struct ws_audit_mark *audit_marks; /* guestd audit seqs taken, per workspace */
	struct tunnel_token *tokens;	   /* unused per-session tunnel credentials */
	struct jump_mux *jump;		   /* NULL without JumpHost lines */
	struct route_list jump_routes;	   /* routes whose far end is a jump-host channel */
	struct event *ev_sigterm, *ev_sigint, *ev_sighup, *ev_sigpipe;
	bool shutting_down;
};

/* broker-conn.c: one SSH connection on the event loop */
void conn_accept(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen);
/* Close with a one-line reason the client shows ("Received disconnect …: reason"). */
void conn_close(struct conn *c, const char *reason);
/* Stop/resume reading the socket (used while a login waits on the IdP). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* Re-arm write interest if libssh has output buffered. */
void conn_flush(struct conn *c);
/* Authenticated: no longer counts against the pre-auth limits; grace timer stopped. */
void conn_authenticated(struct conn *c);
void conn_free_all(struct broker *b);

/* broker-auth.c: the pre-auth state machine (publickey → device flow). Messages are owned
 * by the caller unless the function returns 1 (then it kept the message in c->held). */
int auth_handle_message(struct conn *c, ssh_message msg);
void auth_conn_cleanup(struct conn *c);

/* broker-chan.c: what an authenticated connection may do. */
/* Returns 1 if it kept msg (a pending route answers it later). */
int chan_handle_message(struct conn *c, ssh_message msg);

/* broker-sessions.c: live sessions with connections; expiry timers; closing */
struct store_session;
struct store_filter;
/* Attaches an authenticated connection to the live session s (copied). */
int sessions_attach(struct broker *b, struct conn *c, const struct store_session *s);
void sessions_detach(struct conn *c);
/* Activity on an authenticated connection pushes its session's idle deadline. */
void sessions_activity(struct conn *c);
void sessions_free_all(struct broker *b);
/* Closes every connection of session id (user and tunnel) with sentence and forgets it; the
 * store and the audit are the caller's (revocation). */
void sessions_drop(struct broker *b, const char *id, const char *sentence);
/* The attached session's data (borrowed) for the whoami text. */
const struct store_session *sessions_row(const struct live_session *ls);

/* broker-limits.c: pre-auth limits (MaxStartups, PerSourceMaxStartups, PerSourcePenalty) */
struct limits *limits_new(const struct broker_config *cfg);
void limits_free(struct limits *l);
/* May a new unauthenticated connection from ip be accepted? NULL if yes, else the reason. */
const char *limits_admit(struct limits *l, const char *ip, size_t nunauth, int64_t now);
void limits_unauth_add(struct limits *l, const char *ip);
void limits_unauth_del(struct limits *l, const char *ip);
void limits_login_failed(struct limits *l, const char *ip, int64_t now);

/* broker-admin.c: the local admin socket (AdminSocket, SO_PEERCRED) that sawctl talks to. */
struct admin;
int admin_open(struct broker *b); /* 0, or -1 after logging why */
void admin_close(struct broker *b);

/* broker-route.c: direct-tcpip routing with pumps */
/* A user's direct-tcpip to a workspace (returns 1 if it kept msg). */
int route_open_workspace(struct conn *c, ssh_message msg);
/* A per-session tunnel's direct-tcpip to a corporate service (returns 1 if it kept msg). */
int route_open_corp(struct conn *c, ssh_message msg);
/* After libssh processed input on c: progress pending opens, run pumps. */
void route_run_conn(struct conn *c);
void route_run_jump(void *broker);
void route_jump_dead(ssh_session dead, void *broker);
/* Before c's session goes away: free every route that has an end on it. */
void route_close_conn(struct conn *c);

/* broker-workspace.c: workspaces' connections, for the admin API and routing. */
/* Authentication of "workspace:NAME" and "tunnel:SESSION" users (broker-auth.c calls). */
int workspace_auth_key(struct broker *b, const char *user, const char *key_fp, char **ws_name);
int workspace_auth_token(struct broker *b, const char *user, const char *ws_name, const char *token,
			 char **session_id);
/* A workspace connection authenticated. */
void workspace_conn_open(struct conn *c);
/* Messages on a workspace connection (broker-chan.c hands them over). */
void workspace_handle_message(struct conn *c, ssh_message msg);
/* After libssh processed input on a workspace connection: control channel. */
void workspace_conn_input(struct conn *c);
void workspace_conn_closed(struct conn *c);
struct workspace *workspace_online(struct broker *b, const char *name);
struct conn *workspace_conn(struct workspace *w);
/* Tell the workspace about session s (once; again after a reconnect). */
/* (The workspace's profile, and so its corporate services, comes from its online record.) */
int workspace_attach_session(struct workspace *w, const struct store_session *s);
/* A session ended: tell every workspace it was attached to. */
void workspace_session_ended(struct broker *b, const char *session_id, const char *why);
void workspace_free_all(struct broker *b);
bool workspace_is_online(struct broker *b, const char *name);
/* Drops the workspace's tunnel connection (removed, killed…) with a reason. */
void workspace_disconnect(struct broker *b, const char *name, const char *reason);

/* broker-revoke.c: every way a session ends early goes through here, in the order
 * ARCHITECTURE "Revocation" gives: durable mark in the store, close the user's SSH
 * connections (with the sentence), close the session's tunnels and their corporate channels,
 * tell guestd (CTL_SESSION_END ends the session's logins and processes), audit each step.
 * `actor` names who asked ("admin uid 0", "backchannel-logout", "SET session-revoked", …). */
int revoke_session(struct broker *b, const char *session_id, const char *why, const char *actor);
/* Every live session matching the filter; *count (may be NULL) gets how many were revoked.
 * Returns 0, or -1 on a store error. */
int revoke_matching(struct broker *b, const struct store_filter *f, const char *why,
		    const char *actor, int *count);
/* Lock: revoke the user's sessions and refuse new ones until `until` (0: until unlocked). The
 * key is "sub:SUB" or "user:NAME" (see store_lock_set). message is shown at refusal. */
int revoke_lock_user(struct broker *b, const char *key, int64_t until, const char *message,
		     const char *actor, int *count);
int revoke_unlock_user(struct broker *b, const char *key, const char *actor);
/* At login: the sentence to refuse with if a lock is in force for this user, else NULL
 * (malloc'd; the caller frees). */
char *revoke_lock_check(struct broker *b, const char *iss, const char *sub, const char *username);
/* Kill switch: mark killed, revoke every session attached to the workspace, drop its tunnels
 * and its guestd connection, refuse it until revived, run KillCommand NAME. */
int revoke_kill_workspace(struct broker *b, const char *name, const char *why, const char *actor);
int revoke_revive_workspace(struct broker *b, const char *name, const char *actor);
/* Sessions attached to a workspace (from the broker's attachment table), for the kill switch. */
int workspace_attached_sessions(struct broker *b, const char *name,
				void (*cb)(const char *session_id, void *), void *arg);

/* broker-exec.c: runs KillCommand NAME (no shell, bounded in time, output logged). */
int broker_run_kill_command(struct broker *b, const char *name);

int64_t broker_now(void);
/* Audit helpers (broker.c) */
void broker_audit_ssh(struct broker *b, const struct conn *c, int activity, const char *reason);
void broker_audit_logon(struct broker *b, const struct conn *c, const struct store_session *s,
			bool success, const char *reason);
void broker_audit_logoff(struct broker *b, const struct store_session *s, const char *why);
/* API Activity (6003) of one admin or webhook call, accepted or refused. Every pointer is
 * borrowed and may be NULL; nothing secret may be in any of them. */
struct broker_api_call {
	int activity;	       /* enum ocsf_api_activity */
	const char *operation; /* "user.lock", "POST /v1/revocation/events" … */
	const char *method;    /* HTTP: method and path; NULL for the admin socket */
	const char *path;
	const char *caller_name; /* who, once known: user name, "uid N", … */
	const char *caller_uid;	 /* IdP subject, or the numeric uid */
	const char *caller_app;	 /* a program calling (an IdP, a SET transmitter) */
	const char *src_ip;	 /* where from; NULL: src_name (e.g. "admin socket") */
	int src_port;
	const char *src_name;
	int status; /* HTTP status (0: none) */
	bool success;
	const char *detail; /* the reason or the result, in plain words */
};
void broker_audit_api(struct broker *b, const struct broker_api_call *call);
/* Network Activity (4001) of a tunnel through the broker: to a workspace or to a corporate
 * service via a jump host. The identity comes from c (user, sub, session). */
struct broker_tunnel {
	const char *what;      /* "workspace alice-ws", "service git (10.0.0.5:22)" */
	const char *workspace; /* the workspace the tunnel belongs to */
	const char *profile;   /* its profile, when known */
	const char *src_ip;    /* the client end */
	int src_port;
	const char *dst_host; /* the far end */
	int dst_port;
	const char *dst_service; /* "ssh", the corporate service's name */
	bool have_traffic;	 /* Close: bytes moved, as the pump counted them */
	uint64_t bytes_in;	 /* from the client */
	uint64_t bytes_out;	 /* to the client */
};
void broker_audit_tunnel(struct broker *b, const struct conn *c, int activity,
			 const struct broker_tunnel *t, const char *detail);
/* broker-admin.c: the API activity (enum ocsf_api_activity) of an admin operation, and its
 * result in a few plain words for the audit ("revoked=1 user=user:alice"). */
int admin_op_activity(const char *op);
struct json_t;
void admin_result_summary(const struct json_t *resp, char *buf, size_t len);

#endif
