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
 * the same answer the proxy would give. Like the ControlSocket (guestd-sock.h): AF_UNIX
 * stream, ONE request line (JSON object, at most GDECIDE_MAX_LINE bytes, '\n'), ONE answer
 * line, close; GDECIDE_TIMEOUT_MS to send the request.
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
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "audit/log.h"
#include "guestd/guestd.h"
#include "guestd/policy.h"

#define GDECIDE_MAX_LINE 4096
#define GDECIDE_TIMEOUT_MS 2000
#define GDECIDE_MAX_CONNS 64
#define GDECIDE_MAX_GROUPS 256

struct gdecide_conn {
	TAILQ_ENTRY(gdecide_conn) entry;
	struct gdecide *gd;
	int fd;
	uid_t uid;
	pid_t pid;
	struct event *ev_read;
	struct event *ev_timeout;
	size_t len;
	char buf[GDECIDE_MAX_LINE + 1];
};
TAILQ_HEAD(gdecide_conn_list, gdecide_conn);

struct gdecide {
	struct guestd *g;
	struct evconnlistener *listener;
	struct gdecide_conn_list conns;
	size_t nconns;
};

/* ---- the policy ------------------------------------------------------------------------ */

const struct policy *
guestd_policy(struct guestd *g)
{
	return g->policy;
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
		policy_free(np);
		return -1;
	}
	g->policy = np;
	policy_free(old);
	log_info("PolicyFile %s: policy version %lld (%s profile, %zu rules) %s", path,
		 (long long)policy_version(np), policy_profile(np), policy_rule_count(np),
		 old == NULL ? "loaded" : "now active");
	return 0;
}

void
guestd_policy_free(struct guestd *g)
{
	policy_free(g->policy);
	g->policy = NULL;
}

/* ---- the DecisionSocket ------------------------------------------------------------------ */

static void
gdecide_conn_free(struct gdecide_conn *c)
{
	TAILQ_REMOVE(&c->gd->conns, c, entry);
	c->gd->nconns--;
	event_free(c->ev_read);
	event_free(c->ev_timeout);
	close(c->fd);
	free(c);
}

static void
gdecide_answer(struct gdecide_conn *c, json_t *resp)
{
	char *text = resp != NULL ? json_dumps(resp, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(resp);
	if (text != NULL) {
		n = strlen(text);
		text[n] = '\n'; /* replaces the NUL; we write n + 1 bytes and free */
		(void)!write(c->fd, text, n + 1);
		free(text);
	}
	gdecide_conn_free(c);
}

static json_t *
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

static json_t *
gdecide_request(struct gdecide_conn *c, const char *line, size_t len)
{
	struct guestd *g = c->gd->g;
	const struct policy *p = guestd_policy(g);
	struct policy_subject subj;
	struct policy_decision d;
	const char *groups[GDECIDE_MAX_GROUPS];
	struct gsession *s = NULL;
	json_error_t jerr;
	json_t *req, *resp = NULL, *v;
	const char *op, *sid, *user;
	char home[PATH_MAX] = "";
	bool root = c->uid == 0, have_home = false;
	uid_t uid;
	size_t i;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		return gdecide_error("request is not a JSON object");
	}
	if ((op = gdecide_str(req, "op", 32)) == NULL) {
		resp = gdecide_error("missing op");
		goto out;
	}
	if (strcmp(op, "version") == 0) {
		resp = json_pack("{s:b, s:I, s:s?, s:I}", "ok", 1, "version",
				 (json_int_t)policy_version(p), "profile", policy_profile(p),
				 "rules", (json_int_t)policy_rule_count(p));
		goto out;
	}
	if (strcmp(op, "connect") != 0 && strcmp(op, "write") != 0) {
		resp = gdecide_error("unknown op (connect, write or version)");
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
		have_home = gdecide_account(s->user, &uid, home, sizeof(home)) == 0;
		if (!root && (!have_home || uid != c->uid)) {
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
		have_home = gdecide_account(user, &uid, home, sizeof(home)) == 0;
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

	if (strcmp(op, "connect") == 0) {
		const char *host = gdecide_str(req, "host", 300);
		json_t *pv = json_object_get(req, "port");

		if (host == NULL || !json_is_integer(pv) || json_integer_value(pv) < 1 ||
		    json_integer_value(pv) > 65535) {
			resp = gdecide_error("host (a name or IP literal) and port (1..65535) are "
					     "required");
			goto out;
		}
		policy_decide(p, &subj, host, (int)json_integer_value(pv), &d);
	} else {
		const char *path = gdecide_str(req, "path", PATH_MAX);

		if (path == NULL || path[0] != '/') {
			resp = gdecide_error("path (absolute) is required");
			goto out;
		}
		policy_decide_write(p, path, have_home ? home : NULL, &d);
	}
	resp = json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "decision",
			 policy_verdict_name(d.verdict), "rule", d.rule, "version",
			 (json_int_t)d.version);
	log_debug("decision socket: uid %d pid %d: %s %s: %s (rule %s, version %lld)", (int)c->uid,
		  (int)c->pid, op, s != NULL ? s->id : subj.user, policy_verdict_name(d.verdict),
		  d.rule, (long long)d.version);
out:
	if (resp == NULL)
		resp = gdecide_error("out of memory");
	json_decref(req);
	return resp;
}

static void
gdecide_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gdecide_conn *c = arg;
	char *nl;
	ssize_t n;

	n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		gdecide_conn_free(c);
		return;
	}
	c->len += (size_t)n;
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		gdecide_answer(c, gdecide_request(c, c->buf, (size_t)(nl - c->buf)));
		return;
	}
	if (c->len > GDECIDE_MAX_LINE)
		gdecide_answer(c, gdecide_error("request line too long"));
}

static void
gdecide_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	gdecide_conn_free(arg);
}

static void
gdecide_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		  void *arg)
{
	struct gdecide *gd = arg;
	struct gdecide_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { GDECIDE_TIMEOUT_MS / 1000, (GDECIDE_TIMEOUT_MS % 1000) * 1000 };

	if (gd->nconns >= GDECIDE_MAX_CONNS ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	c->gd = gd;
	c->fd = fd;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->ev_read = event_new(gd->g->base, fd, EV_READ | EV_PERSIST, gdecide_read_cb, c);
	c->ev_timeout = evtimer_new(gd->g->base, gdecide_timeout_cb, c);
	if (c->ev_read == NULL || c->ev_timeout == NULL) {
		if (c->ev_read != NULL)
			event_free(c->ev_read);
		if (c->ev_timeout != NULL)
			event_free(c->ev_timeout);
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&gd->conns, c, entry);
	gd->nconns++;
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timeout, &tv);
}

static int
gdecide_mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -1;
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
gdecide_open(struct guestd *g)
{
	const char *path = g->cfg.decision_socket;
	struct sockaddr_un sun;
	struct gdecide *gd = NULL;
	struct stat sb;
	char dir[PATH_MAX];
	int fd = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path == NULL || strlen(path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, path, strlen(path));
	snprintf(dir, sizeof(dir), "%s", path);
	if (gdecide_mkdirs(dirname(dir)) != 0) {
		log_warn("DecisionSocket %s: cannot create its directory", path);
		goto fail;
	}
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("DecisionSocket %s exists and is not a socket: refusing to "
				  "replace it",
				  path);
			goto fail;
		}
		unlink(path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_warn("DecisionSocket %s: cannot bind", path);
		goto fail;
	}
	if (chmod(path, 0666) != 0 || listen(fd, 64) != 0) {
		log_warn("DecisionSocket %s", path);
		goto fail;
	}
	if ((gd = calloc(1, sizeof(*gd))) == NULL)
		goto fail;
	gd->g = g;
	TAILQ_INIT(&gd->conns);
	gd->listener = evconnlistener_new(g->base, gdecide_accept_cb, gd,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (gd->listener == NULL)
		goto fail;
	g->decide = gd;
	log_info("decision socket %s ready", path);
	return 0;
fail:
	free(gd);
	if (fd >= 0)
		close(fd);
	return -1;
}

void
gdecide_close(struct guestd *g)
{
	struct gdecide *gd = g->decide;
	struct gdecide_conn *c;

	if (gd == NULL)
		return;
	while ((c = TAILQ_FIRST(&gd->conns)) != NULL)
		gdecide_conn_free(c);
	evconnlistener_free(gd->listener);
	unlink(g->cfg.decision_socket);
	free(gd);
	g->decide = NULL;
}
