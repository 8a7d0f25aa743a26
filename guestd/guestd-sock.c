/*
 * The ControlSocket server (protocol in guestd-sock.h): saw-authorized-keys and pam_saw.so
 * ask here whether a login belongs to a live brokered session.
 *
 * The socket is mode 0666 because sshd runs the AuthorizedKeysCommand as the unprivileged
 * AuthorizedKeysUser; who may ask what is decided per request from SO_PEERCRED, never from
 * the file mode. One request and one answer per connection, a line of at most
 * GSOCK_MAX_LINE bytes, GSOCK_TIMEOUT_MS to send it, at most GSOCK_MAX_CONNS connections at
 * once: a local process cannot make guestd hold more than a few hundred KiB for it. The
 * socket itself (accept, SO_PEERCRED, the bounded line read, the descriptors sent along) is
 * guestd-lineserv.c, shared with the DecisionSocket.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/log.h"
#include "guestd/guestd-lineserv.h"
#include "guestd/guestd-sandbox.h"
#include "guestd/guestd-sock.h"
#include "guestd/guestd.h"

#define GSOCK_MAX_CONNS 64

_Static_assert(GSOCK_MAX_FDS <= GLSERV_MAX_FDS, "session_exec's descriptors must fit");

static json_t *
gsock_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *
gsock_session_ok(const struct gsession *s)
{
	return json_pack("{s:b, s:s, s:I}", "ok", 1, "session", s->id, "expires",
			 (json_int_t)s->expires);
}

static const char *
gsock_str(const json_t *req, const char *name)
{
	const json_t *v = json_object_get(req, name);

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 512)
		return NULL;
	return json_string_value(v);
}

static json_t *
gsock_pam_open(struct guestd *g, const json_t *req, const char *user)
{
	struct gsessions *t = &g->sessions;
	struct gsession *s, *best;
	const json_t *pidv = json_object_get(req, "pid"), *cgv = json_object_get(req, "cgroup");
	const char *fp = gsock_str(req, "fp"), *cgroup = NULL;
	int64_t now = guestd_now();
	size_t n = 0;
	pid_t pid;
	int rc = 0;

	if (!json_is_integer(pidv) || json_integer_value(pidv) <= 1 ||
	    json_integer_value(pidv) > INT_MAX)
		return gsock_error("pid must be a process id");
	pid = (pid_t)json_integer_value(pidv);
	if (cgv != NULL && (!json_is_string(cgv) || !gsessions_cgroup_ok(json_string_value(cgv))))
		return gsock_error("cgroup must be a path under /sys/fs/cgroup");
	if (cgv != NULL)
		cgroup = json_string_value(cgv);
	/* The login is tied to the session of its key when pam_saw knows it; otherwise to
	 * every live session of the user, so that ending any of them ends the login (fail
	 * closed: a revocation never misses a login). */
	best = fp != NULL ? gsessions_find_key(t, user, fp, now) :
			    gsessions_find_user(t, user, now);
	if (best == NULL)
		return gsock_error("no live brokered session for this user");
	TAILQ_FOREACH(s, &t->list, entry) {
		if (s->expires <= now || strcmp(s->user, user) != 0 || (fp != NULL && s != best))
			continue;
		if ((rc = gsessions_login_add(s, pid, cgroup)) != 0)
			break;
		n++;
	}
	if (rc != 0)
		return gsock_error(rc == -ESRCH ? "no such process" :
						  "cannot register the login (too many logins)");
	log_info("login pid %d of %s registered with %zu session%s", (int)pid, user, n,
		 n == 1 ? "" : "s");
	return json_pack("{s:b, s:s}", "ok", 1, "session", best->id);
}

static json_t *
gsock_status(struct guestd *g)
{
	struct gsession *s;
	json_t *list = json_array();
	int64_t now = guestd_now();

	if (list == NULL)
		return NULL;
	TAILQ_FOREACH(s, &g->sessions.list, entry)
		if (s->expires > now)
			json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "session", s->id,
							      "user", s->user, "expires",
							      (json_int_t)s->expires));
	return json_pack("{s:b, s:b, s:o}", "ok", 1, "online", gbroker_online(g), "sessions", list);
}

/* The capabilities of a live session (cred_session_caps), as "NAME=VALUE" strings. */
static json_t *
gsock_session_env(struct guestd *g, const char *sid)
{
	const char **env = NULL;
	json_t *list;
	size_t i, n;

	if (sid == NULL || gsessions_find(&g->sessions, sid, guestd_now()) == NULL)
		return gsock_error("no such live session");
	if ((list = json_array()) == NULL)
		return NULL;
	n = cred_session_caps(g, sid, &env);
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(env[i]));
	free(env);
	return json_pack("{s:b, s:o}", "ok", 1, "env", list);
}

/* glserv_request_cb */
static json_t *
gsock_request(struct glserv_peer *peer, const char *line, size_t len, void *arg)
{
	struct guestd *g = arg;
	struct gsession *s;
	json_error_t jerr;
	json_t *req, *resp;
	const char *op, *user, *fp;
	int64_t now = guestd_now();
	bool root = peer->uid == 0, handed_over = false;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		return gsock_error("request is not a JSON object");
	}
	op = gsock_str(req, "op");
	user = gsock_str(req, "user");
	if (op == NULL) {
		resp = gsock_error("missing op");
	} else if (strcmp(op, "authorized_keys") == 0) {
		fp = gsock_str(req, "fp");
		if (!root && (g->ak_uid == (uid_t)-1 || peer->uid != g->ak_uid))
			resp = gsock_error("not allowed: only root and AuthorizedKeysUser may ask");
		else if (user == NULL || fp == NULL)
			resp = gsock_error("user and fp are required");
		else if ((s = gsessions_find_key(&g->sessions, user, fp, now)) == NULL)
			resp = gsock_error("no live brokered session for this key");
		else
			resp = gsock_session_ok(s);
	} else if (strncmp(op, "pam_", 4) == 0 && !root) {
		resp = gsock_error("not allowed: pam requests are for root only");
	} else if (strcmp(op, "pam_account") == 0) {
		if (user == NULL)
			resp = gsock_error("user is required");
		else if ((s = gsessions_find_user(&g->sessions, user, now)) == NULL)
			resp = gsock_error("no live brokered session for this user");
		else
			resp = gsock_session_ok(s);
	} else if (strcmp(op, "pam_open") == 0) {
		resp = user == NULL ? gsock_error("user is required") :
				      gsock_pam_open(g, req, user);
	} else if (strcmp(op, "pam_close") == 0) {
		const json_t *pidv = json_object_get(req, "pid");

		if (user == NULL || !json_is_integer(pidv))
			resp = gsock_error("user and pid are required");
		else {
			gsessions_login_del(&g->sessions, user, (pid_t)json_integer_value(pidv));
			resp = json_pack("{s:b}", "ok", 1);
		}
	} else if (strcmp(op, "session_env") == 0) {
		/* root only: what a launcher outside guestd puts in a session's environment */
		resp = root ? gsock_session_env(g, gsock_str(req, "session")) :
			      gsock_error("not allowed: session_env is for root only");
	} else if (strcmp(op, "session_exec") == 0) {
		/* any uid: gsandbox_exec checks that the peer is the login's own user */
		resp = gsandbox_exec(g, peer->fd, peer->uid, peer->pid, req, peer->fds, peer->nfds);
		peer->nfds = 0;
		handed_over = resp == NULL;
	} else if (strcmp(op, "status") == 0) {
		resp = root ? gsock_status(g) : gsock_error("not allowed: status is for root only");
	} else {
		resp = gsock_error("unknown op");
	}
	if (resp == NULL)
		resp = handed_over ? NULL : gsock_error("out of memory");
	if (op != NULL && !json_is_true(json_object_get(resp, "ok")))
		log_debug("control socket: %s from uid %d pid %d refused: %s", op, (int)peer->uid,
			  (int)peer->pid, json_string_value(json_object_get(resp, "error")));
	json_decref(req);
	return resp;
}

int
gsock_open(struct guestd *g)
{
	const struct glserv_params p = {
		.what = "ControlSocket",
		.max_line = GSOCK_MAX_LINE,
		.timeout_ms = GSOCK_TIMEOUT_MS,
		.max_conns = GSOCK_MAX_CONNS,
		.max_fds = GSOCK_MAX_FDS,
		.request = gsock_request,
		.arg = g,
	};

	if ((g->sock = glserv_open(g->base, g->cfg.control_socket, &p)) == NULL)
		return -1;
	log_info("control socket %s ready", g->cfg.control_socket);
	return 0;
}

void
gsock_close(struct guestd *g)
{
	if (g->sock == NULL)
		return;
	glserv_free(g->sock);
	unlink(g->cfg.control_socket);
	g->sock = NULL;
}
