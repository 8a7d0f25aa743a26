/*
 * saw-guestd internals shared by the guestd-*.c files.
 *
 * One process, one thread (plus sshc's short-lived connect workers), one libevent base:
 * struct guestd is the process context, made in main() and passed explicitly. Every
 * ssh_session is owned by exactly one object (the broker link, or a session's tunnel) and
 * touched only from the loop thread after sshc hands it over.
 *
 * Objects referenced from libevent callbacks are freed from a fresh loop turn
 * (event_base_once) when a callback might still be running on them, tmux style.
 */
#ifndef SAW_GUESTD_H
#define SAW_GUESTD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "guestd/guestd-config.h"
#include "tunnel/ctl.h"

struct event;
struct event_base;
struct gbroker;
struct glserv;
struct gproxy;
struct gtunnel;
struct gcred;
struct gsandboxes;
struct policy;
struct policy_subject;
struct sockaddr;

/* ---- guestd-sessions.c: brokered sessions attached to this workspace ------------------- */

/* A login registered by pam_saw (session open): what revocation kills. */
struct glogin {
	TAILQ_ENTRY(glogin) entry;
	pid_t pid;
	int pidfd;    /* -1 if pidfd_open failed (then we signal the pid) */
	char *cgroup; /* cgroup v2 directory of the login, or NULL */
};
TAILQ_HEAD(glogin_list, glogin);

struct gsession {
	TAILQ_ENTRY(gsession) entry;
	struct gsessions *table;
	char *id;
	char *user;
	char *sub;
	char *key_fp;
	char *profile;
	char **groups; /* owned; the IdP groups from the ATTACH (policy selectors) */
	size_t ngroups;
	int64_t expires;
	struct ctl_corp *corp; /* owned; copied from the ATTACH */
	size_t ncorp;
	struct glogin_list logins;
	struct event *ev_expire;
	struct gtunnel *tunnel; /* per-session tunnel, or NULL */
};
TAILQ_HEAD(gsession_list, gsession);

struct gsessions {
	struct guestd *g; /* NULL in unit tests: no timers, no tunnels, no killing */
	struct gsession_list list;
	size_t n;
};

void gsessions_init(struct gsessions *t, struct guestd *g);
/* Adds or refreshes (same id: expiry, corp list, token) a session. Returns it, or NULL if
 * it is already expired at now or out of memory. The token, if any, starts the tunnel. */
struct gsession *gsessions_attach(struct gsessions *t, const struct ctl_attach *a, int64_t now);
struct gsession *gsessions_find(struct gsessions *t, const char *id, int64_t now);
/* A live session of user bound to key fingerprint fp. */
struct gsession *gsessions_find_key(struct gsessions *t, const char *user, const char *fp,
				    int64_t now);
/* The live session of user that expires last. */
struct gsession *gsessions_find_user(struct gsessions *t, const char *user, int64_t now);
/* Ends a session: closes its tunnel, kills its registered logins, frees it. */
void gsessions_end(struct gsession *s, const char *reason);
/* Ends every session whose expiry is at or before now. Returns how many. */
size_t gsessions_expire(struct gsessions *t, int64_t now);
int gsessions_login_add(struct gsession *s, pid_t pid, const char *cgroup);
/* Removes pid's registration from every session of user. Returns how many. */
size_t gsessions_login_del(struct gsessions *t, const char *user, pid_t pid);
void gsessions_free_all(struct gsessions *t);
/* A valid cgroup v2 directory for cgroup.kill (under /sys/fs/cgroup, no "..")? */
bool gsessions_cgroup_ok(const char *path);

/* ---- guestd-broker.c: the workspace's connection to the broker ------------------------- */

int gbroker_start(struct guestd *g);
void gbroker_stop(struct guestd *g);
bool gbroker_online(const struct guestd *g);
/* The session table changed: send CTL_STATE soon. */
void gbroker_state_changed(struct guestd *g);
/* Hands one OCSF event (reference stolen) to the broker as CTL_AUDIT. With AuditSpool it
 * is numbered and committed to the spool first (the events of one loop turn in one
 * transaction, committed at the turn's end before any is sent), and deleted from there once
 * the broker's
 * CTL_AUDIT_ACK covers it (a full spool refuses it: counted, logged); with AuditSpool none
 * it is sent at once when online and queued in memory otherwise (GBROKER_AUDIT_QUEUE
 * events; past that the oldest is dropped and counted). */
#define GBROKER_AUDIT_QUEUE 4096
void gbroker_audit(struct guestd *g, json_t *ev);
/* The same, for a caller that has already serialised ev (text: its compact JSON, len bytes,
 * borrowed): it is not serialised again. */
void gbroker_audit_text(struct guestd *g, json_t *ev, const char *text, size_t len);
/* Events lost so far: dropped from the full memory queue, not spooled (spool full or
 * failing), or spooled rows dropped as unreadable. */
unsigned long long gbroker_audit_dropped(const struct guestd *g);
/* Backoff (pure, unit-tested): the next base delay after base_ms (0: first failure), and
 * that delay with ±20% jitter from r (uniform 32-bit random). */
long gbroker_backoff_next(long base_ms, long max_ms);
long gbroker_backoff_jitter(long base_ms, uint32_t r);

/* ---- guestd-tunnel.c: per-session tunnels (Flow 2) ------------------------------------ */

/* Dials "tunnel:SID" with the workspace key and the token (copied, then wiped). */
struct gtunnel *gtunnel_new(struct guestd *g, struct gsession *s, const char *token);
void gtunnel_free(struct gtunnel *t);
bool gtunnel_up(const struct gtunnel *t);
const char *gtunnel_state(const struct gtunnel *t);
/* Hands a proxy client (fd, and any bytes it sent after its request head) to the tunnel,
 * which opens a direct-tcpip channel to host:port, answers 200 or 502, and pumps. The
 * tunnel owns fd from here on. */
void gtunnel_connect(struct gtunnel *t, int fd, const char *host, int port, const char *early,
		     size_t earlylen);
/* The same for a forwarded plain HTTP request: no "200 Connection established" to the
 * client; early holds the rewritten request head (and any body bytes). */
void gtunnel_forward(struct gtunnel *t, int fd, const char *host, int port, const char *early,
		     size_t earlylen);

/* ---- guestd-proxy.c: the egress proxy (guestd-proxy.h: proxy_listen_fds) -------------- */

/* The workspace-wide fallback listeners: ProxyListen, and CredentialListen if set. */
int gproxy_open(struct guestd *g);
void gproxy_close(struct guestd *g);
/* Writes a complete HTTP error response (status line, plain body) to fd, best effort. */
void gproxy_reply_error(int fd, int status, const char *reason, const char *body);
/* The same with a JSON body (consumed). */
void gproxy_reply_json(int fd, int status, const char *reason, json_t *body);
/* The policy subject of a session (pointers borrowed from s and g). */
void gproxy_subject(struct guestd *g, const struct gsession *s, struct policy_subject *subj);
/* A session ended: its listeners close, its connections drop, its capabilities die. */
void proxy_session_end(struct guestd *g, const char *session_id);
/* A session was attached or refreshed, or the policy replaced: the proxy's event loops
 * decide on a fresh copy from now on (guestd's loop only). */
void gproxy_view_changed(struct guestd *g);

/* ---- guestd-cred.c: the credential proxy ---------------------------------------------- */

int gcred_open(struct guestd *g);
void gcred_close(struct guestd *g);
/* A connection accepted on a credential listener of session sid (NULL: CredentialListen,
 * where the capability presented says whose it is). Takes fd. */
void gcred_accept(struct guestd *g, int fd, const char *sid, const struct sockaddr *peer);
void gcred_session_end(struct guestd *g, const char *sid);
/*
 * The capabilities of a live session, minted on first use: one random token per credential
 * route of the policy that applies to the session, as "SAW_CAP_<ROUTE>=<token>" strings for
 * the sandbox environment (ROUTE upper-cased, other characters than letters and digits as
 * '_'). *env_out is one malloc'd block holding a NULL-terminated array and its strings: the
 * caller free()s it. Returns the count (0 with *env_out NULL if none, unknown session or out
 * of memory).
 */
size_t cred_session_caps(struct guestd *g, const char *session_id, const char ***env_out);

/* ---- guestd-sock.c: the ControlSocket (guestd-sock.h) --------------------------------- */

int gsock_open(struct guestd *g);
void gsock_close(struct guestd *g);

/* ---- guestd-policy.c: the active policy (PolicyFile) and the DecisionSocket ----------- */

/* Loads PolicyFile (if set) into g->policy. At start (startup true) a broken file is an
 * error with the reason on stderr; on SIGHUP the new file is parsed completely before it
 * replaces the active policy, and a broken file (or a lower version: no silent rollback)
 * keeps the last good policy, logged with the file and the JSON path. Returns 0 or -1. */
int guestd_policy_load(struct guestd *g, bool startup);
/* The active policy (borrowed: valid until the next reload; policy_ref() to keep it), or
 * NULL when there is none (every decision is then "deny"). */
const struct policy *guestd_policy(struct guestd *g);
void guestd_policy_free(struct guestd *g);
/* The DecisionSocket (protocol in guestd-policy.c). */
int gdecide_open(struct guestd *g);
void gdecide_close(struct guestd *g);
/* Its protocol, shared with the decision listener inside each sandbox (guestd-sandbox.c):
 * gdecide_parse() returns the request object (NULL if not JSON; the caller json_decref()s
 * it) and sets *op to "version", "connect" or "write", or *op to NULL and *resp to the
 * refusal; gdecide_answer() decides op for subj (NULL for "version") against the active
 * policy, echoing session (may be NULL). Both return new references, never NULL answers. */
struct policy_subject;
json_t *gdecide_parse(const char *line, size_t len, const char **op, json_t **resp);
json_t *gdecide_answer(struct guestd *g, const char *op, const json_t *req,
		       const struct policy_subject *subj, const char *session);
json_t *gdecide_error(const char *msg);

/* ---- the process context ------------------------------------------------------------- */

struct guestd {
	struct guestd_config cfg;
	const char *config_path;
	struct event_base *base;
	struct gsessions sessions;
	struct gbroker *broker;
	struct glserv *sock; /* the ControlSocket (guestd-sock.c) */
	struct gproxy *proxy;
	struct gcred *cred;
	struct policy *policy; /* the active policy (PolicyFile), or NULL: everything denied */
	struct glserv *decide; /* the DecisionSocket (guestd-policy.c) */
	struct gsandboxes *sandboxes; /* guestd-sandbox.h: the logins' sandboxes */
	uid_t ak_uid; /* AuthorizedKeysUser; (uid_t)-1 if the account does not exist */
	struct event *ev_sigterm, *ev_sigint, *ev_sighup;
	bool shutting_down;
};

static inline int64_t
guestd_now(void)
{
	return (int64_t)time(NULL);
}

#endif
