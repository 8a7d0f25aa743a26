/*
 * The active policy (PolicyFile, saw-policy(5)) and the DecisionSocket.
 *
 * Reload is parse-then-swap: the new file is parsed and compiled completely into a new
 * struct policy, and only then replaces g->policy, so a request is always decided by one
 * whole policy, old or new, never by a half-read one. A broken file, or one with a lower
 * version than the active policy (no silent rollback), keeps the last good policy. Code
 * that keeps a policy across loop turns holds a reference (policy_ref), so freeing the old
 * one here never pulls it from under a connection.
 *
 * DecisionSocket (default /run/saw/decide.sock), for tools other than the proxy that want
 * the same answer the proxy would give. Like the ControlSocket (guestd-sock.h), and served
 * by the same code (guestd-lineserv.c): AF_UNIX stream, ONE request line (JSON object, at
 * most GDECIDE_MAX_LINE bytes, '\n'), ONE answer line, close; GDECIDE_TIMEOUT_MS to send
 * the request.
 *
 *   {"op":"connect","session":ID,"host":H,"port":P}
 *   {"op":"write","session":ID,"path":P}
 *       → {"ok":true,"decision":"allow"|"deny"|"corporate","rule":R,"version":N}
 *   {"op":"version"} → {"ok":true,"version":N,"profile":…,"rules":N}
 *   anything refused → {"ok":false,"error":"…"}
 *
 * Who may ask (SO_PEERCRED): root about any live session, and the session's own user (the
 * uid of its account) about that session. Root may also ask for an identity instead of a
 * session ("user", optional "groups" and "workspace" instead of "session"): what the policy
 * says for someone, e.g. before they log in. The mode of the socket is 0666 for that
 * reason; the answer never depends on it.
 */
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "guestd/guestd-lineserv.h"
#include "guestd/guestd.h"
#include "guestd/policy.h"

#define GDECIDE_MAX_LINE 4096
#define GDECIDE_TIMEOUT_MS 2000
#define GDECIDE_MAX_CONNS 64
#define GDECIDE_MAX_GROUPS 256

/* ---- the policy ------------------------------------------------------------------------ */

struct guestd_policy_ev {
	struct guestd *g;
	json_t *ev; /* owned until handed to gbroker_audit() */
};

const struct policy *
guestd_policy(struct guestd *g)
{
	return g->policy;
}

static void
gpolicy_audit_later(evutil_socket_t fd, short what, void *arg)
{
	struct guestd_policy_ev *pe = arg;

	gbroker_audit(pe->g, pe->ev);
	free(pe);
}

/*
 * Account Change Attach Policy: a policy loaded (version, profile, rule count), or a reload
 * refused (the error, with the file and where in it). The start-up load happens before the
 * broker link exists: its event waits for the first turn of the event loop, by which time
 * gbroker_audit() queues it for the broker. Nothing is audited for -n / -T runs (no loop).
 */
static void
gpolicy_audit(struct guestd *g, const struct policy *p, bool ok, const char *error, bool startup)
{
	const char *path = g->cfg.policy_file;
	struct guestd_policy_ev *pe;
	struct timeval zero = { 0, 0 };
	char account[300], version[32], desc[128], detail[768];
	json_t *ev;

	if (g->base == NULL)
		return;
	snprintf(account, sizeof(account), "workspace:%s",
		 g->cfg.workspace_name != NULL ? g->cfg.workspace_name : "unknown");
	snprintf(version, sizeof(version), "%lld", (long long)policy_version(p));
	snprintf(desc, sizeof(desc), "%s profile, %zu rules",
		 policy_profile(p) != NULL ? policy_profile(p) : "no", policy_rule_count(p));
	if (!ok)
		snprintf(detail, sizeof(detail), "%s: %s", path, error);
	ev = ocsf_policy_attach(account, path, NULL, p != NULL ? version : NULL,
				p != NULL ? desc : NULL, ok, ok ? NULL : detail, NULL,
				ocsf_now_ms());
	if (ev == NULL) {
		log_warnx("audit: cannot build the policy event (out of memory)");
		return;
	}
	if (!startup) {
		gbroker_audit(g, ev);
		return;
	}
	if ((pe = malloc(sizeof(*pe))) == NULL) {
		json_decref(ev);
		return;
	}
	pe->g = g;
	pe->ev = ev;
	if (event_base_once(g->base, -1, EV_TIMEOUT, gpolicy_audit_later, pe, &zero) != 0) {
		json_decref(ev);
		free(pe);
	}
}

int
guestd_policy_load(struct guestd *g, bool startup)
{
	const char *path = g->cfg.policy_file;
	struct policy *np, *old = g->policy;
	char err[512];

	if (path == NULL) {
		if (startup)
			log_info("no PolicyFile: every egress request and write decision is "
				 "\"deny\"");
		return 0;
	}
	if ((np = policy_load_file(path, err, sizeof(err))) == NULL) {
		if (startup)
			fatalx("PolicyFile %s: %s", path, err);
		gpolicy_audit(g, old, false, err, false);
		if (old != NULL)
			log_warnx("PolicyFile %s: %s; keeping policy version %lld", path, err,
				  (long long)policy_version(old));
		else
			log_warnx("PolicyFile %s: %s; there is still no policy (everything is "
				  "denied)",
				  path, err);
		return -1;
	}
	if (old != NULL && policy_version(np) < policy_version(old)) {
		log_warnx("PolicyFile %s: version %lld is lower than the active version %lld: "
			  "refusing to roll back on reload (raise the version, or restart "
			  "saw-guestd to roll back deliberately); keeping version %lld",
			  path, (long long)policy_version(np), (long long)policy_version(old),
			  (long long)policy_version(old));
		snprintf(err, sizeof(err),
			 "version %lld is lower than the active version %lld: rollback refused, "
			 "version %lld stays active",
			 (long long)policy_version(np), (long long)policy_version(old),
			 (long long)policy_version(old));
		gpolicy_audit(g, old, false, err, false);
		policy_free(np);
		return -1;
	}
	g->policy = np;
	gproxy_view_changed(g);
	policy_free(old);
	log_info("PolicyFile %s: policy version %lld (%s profile, %zu rules) %s", path,
		 (long long)policy_version(np), policy_profile(np), policy_rule_count(np),
		 old == NULL ? "loaded" : "now active");
	gpolicy_audit(g, np, true, NULL, startup);
	return 0;
}

void
guestd_policy_free(struct guestd *g)
{
	policy_free(g->policy);
	g->policy = NULL;
	gproxy_view_changed(g);
}

/* ---- the DecisionSocket ------------------------------------------------------------------ */

json_t *
gdecide_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static const char *
gdecide_str(const json_t *req, const char *name, size_t max)
{
	const json_t *v = json_object_get(req, name);

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* The account's uid and home, or -1 if there is no such account. */
static int
gdecide_account(const char *user, uid_t *uid, char *home, size_t homelen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*uid = pw.pw_uid;
	snprintf(home, homelen, "%s", pw.pw_dir != NULL ? pw.pw_dir : "");
	return 0;
}

json_t *
gdecide_parse(const char *line, size_t len, const char **op, json_t **resp)
{
	json_t *req;

	*op = NULL;
	*resp = NULL;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(req)) {
		json_decref(req);
		*resp = gdecide_error("request is not a JSON object");
		return NULL;
	}
	if ((*op = gdecide_str(req, "op", 32)) == NULL)
		*resp = gdecide_error("missing op");
	else if (strcmp(*op, "version") != 0 && strcmp(*op, "connect") != 0 &&
		 strcmp(*op, "write") != 0)
		*resp = gdecide_error("unknown op (connect, write or version)");
	if (*resp != NULL)
		*op = NULL;
	return req;
}

json_t *
gdecide_answer(struct guestd *g, const char *op, const json_t *req,
	       const struct policy_subject *subj, const char *session)
{
	const struct policy *p = guestd_policy(g);
	struct policy_decision d;
	char home[PATH_MAX];
	json_t *resp;
	uid_t uid;

	if (strcmp(op, "version") == 0) {
		resp = json_pack("{s:b, s:I, s:s?, s:I}", "ok", 1, "version",
				 (json_int_t)policy_version(p), "profile", policy_profile(p),
				 "rules", (json_int_t)policy_rule_count(p));
		return resp != NULL ? resp : gdecide_error("out of memory");
	}
	if (strcmp(op, "connect") == 0) {
		const char *host = gdecide_str(req, "host", 300);
		json_t *pv = json_object_get(req, "port");

		if (host == NULL || !json_is_integer(pv) || json_integer_value(pv) < 1 ||
		    json_integer_value(pv) > 65535)
			return gdecide_error("host (a name or IP literal) and port (1..65535) are "
					     "required");
		policy_decide(p, subj, host, (int)json_integer_value(pv), &d);
	} else {
		const char *path = gdecide_str(req, "path", PATH_MAX);
		bool have_home;

		if (path == NULL || path[0] != '/')
			return gdecide_error("path (absolute) is required");
		have_home = subj->user != NULL &&
			    gdecide_account(subj->user, &uid, home, sizeof(home)) == 0;
		policy_decide_write(p, path, have_home ? home : NULL, &d);
	}
	resp = json_pack("{s:b, s:s?, s:s, s:s, s:I}", "ok", 1, "session", session, "decision",
			 policy_verdict_name(d.verdict), "rule", d.rule, "version",
			 (json_int_t)d.version);
	log_debug("decision: %s %s: %s (rule %s, version %lld)", op,
		  session != NULL ? session : subj->user, policy_verdict_name(d.verdict), d.rule,
		  (long long)d.version);
	return resp != NULL ? resp : gdecide_error("out of memory");
}

/* glserv_request_cb of the DecisionSocket */
static json_t *
gdecide_request(struct glserv_peer *peer, const char *line, size_t len, void *arg)
{
	struct guestd *g = arg;
	struct policy_subject subj;
	const char *groups[GDECIDE_MAX_GROUPS];
	struct gsession *s = NULL;
	json_t *req, *resp = NULL, *v;
	const char *op, *sid, *user;
	char home[PATH_MAX];
	bool root = peer->uid == 0;
	uid_t uid;
	size_t i;

	if ((req = gdecide_parse(line, len, &op, &resp)) == NULL || op == NULL)
		goto out;
	if (strcmp(op, "version") == 0) {
		resp = gdecide_answer(g, op, req, NULL, NULL);
		goto out;
	}

	/* whose decision: a live session, or (root) an identity */
	memset(&subj, 0, sizeof(subj));
	subj.workspace = g->cfg.workspace_name;
	if ((sid = gdecide_str(req, "session", 256)) != NULL) {
		if ((s = gsessions_find(&g->sessions, sid, guestd_now())) == NULL) {
			resp = gdecide_error("no live brokered session with this id");
			goto out;
		}
		if (!root &&
		    (gdecide_account(s->user, &uid, home, sizeof(home)) != 0 || uid != peer->uid)) {
			resp = gdecide_error("not allowed: only root and the session's own user "
					     "may ask about a session");
			goto out;
		}
		subj.user = s->user;
		subj.groups = (const char *const *)s->groups;
		subj.ngroups = s->ngroups;
	} else if ((user = gdecide_str(req, "user", 256)) != NULL) {
		if (!root) {
			resp = gdecide_error("not allowed: only root may ask for an identity "
					     "without a session");
			goto out;
		}
		subj.user = user;
		if ((v = json_object_get(req, "workspace")) != NULL &&
		    (subj.workspace = gdecide_str(req, "workspace", 256)) == NULL) {
			resp = gdecide_error("workspace must be a name");
			goto out;
		}
		if ((v = json_object_get(req, "groups")) != NULL) {
			if (!json_is_array(v) || json_array_size(v) > GDECIDE_MAX_GROUPS) {
				resp = gdecide_error(
					"groups must be an array of at most 256 names");
				goto out;
			}
			for (i = 0; i < json_array_size(v); i++) {
				groups[i] = json_string_value(json_array_get(v, i));
				if (groups[i] == NULL) {
					resp = gdecide_error("groups must be strings");
					goto out;
				}
			}
			subj.groups = groups;
			subj.ngroups = json_array_size(v);
		}
	} else {
		resp = gdecide_error("session is required");
		goto out;
	}
	log_debug("decision socket: uid %d pid %d asks", (int)peer->uid, (int)peer->pid);
	resp = gdecide_answer(g, op, req, &subj, s != NULL ? s->id : NULL);
out:
	json_decref(req);
	return resp != NULL ? resp : gdecide_error("out of memory");
}

int
gdecide_open(struct guestd *g)
{
	const struct glserv_params p = {
		.what = "DecisionSocket",
		.max_line = GDECIDE_MAX_LINE,
		.timeout_ms = GDECIDE_TIMEOUT_MS,
		.max_conns = GDECIDE_MAX_CONNS,
		.max_fds = 0,
		.request = gdecide_request,
		.arg = g,
	};

	if ((g->decide = glserv_open(g->base, g->cfg.decision_socket, &p)) == NULL)
		return -1;
	log_info("decision socket %s ready", g->cfg.decision_socket);
	return 0;
}

void
gdecide_close(struct guestd *g)
{
	if (g->decide == NULL)
		return;
	glserv_free(g->decide);
	unlink(g->cfg.decision_socket);
	g->decide = NULL;
}
