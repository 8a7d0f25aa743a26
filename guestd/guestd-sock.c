/*
 * The ControlSocket server (protocol in guestd-sock.h): saw-authorized-keys and pam_saw.so
 * ask here whether a login belongs to a live brokered session.
 *
 * The socket is mode 0666 because sshd runs the AuthorizedKeysCommand as the unprivileged
 * AuthorizedKeysUser; who may ask what is decided per request from SO_PEERCRED, never from
 * the file mode. One request and one answer per connection, a line of at most
 * GSOCK_MAX_LINE bytes, GSOCK_TIMEOUT_MS to send it, at most GSOCK_MAX_CONNS connections at
 * once: a local process cannot make guestd hold more than a few hundred KiB for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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
#include "guestd/guestd-sandbox.h"
#include "guestd/guestd-sock.h"
#include "guestd/guestd.h"

#define GSOCK_MAX_CONNS 64

struct gsock_conn {
	TAILQ_ENTRY(gsock_conn) entry;
	struct gsock *gs;
	int fd;
	uid_t uid;
	pid_t pid;
	struct event *ev_read;
	struct event *ev_timeout;
	size_t len;
	int fds[GSOCK_MAX_FDS]; /* descriptors sent along (session_exec only) */
	size_t nfds;
	bool handed_over; /* session_exec: guestd-sandbox.c answers from now on */
	char buf[GSOCK_MAX_LINE + 1];
};
TAILQ_HEAD(gsock_conn_list, gsock_conn);

struct gsock {
	struct guestd *g;
	struct evconnlistener *listener;
	struct gsock_conn_list conns;
	size_t nconns;
};

static void
gsock_conn_free(struct gsock_conn *c)
{
	TAILQ_REMOVE(&c->gs->conns, c, entry);
	c->gs->nconns--;
	event_free(c->ev_read);
	event_free(c->ev_timeout);
	close(c->fd);
	while (c->nfds > 0)
		close(c->fds[--c->nfds]);
	explicit_bzero(c->buf, sizeof(c->buf));
	free(c);
}

/* Sends the answer (consumes it) and closes the connection. */
static void
gsock_answer(struct gsock_conn *c, json_t *resp)
{
	char *text = resp != NULL ? json_dumps(resp, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(resp);
	if (text != NULL) {
		n = strlen(text);
		text[n] = '\n'; /* replaces the NUL; we write n + 1 bytes and free */
		/* the answer is far below the socket buffer: one write, best effort */
		(void)!write(c->fd, text, n + 1);
		free(text);
	}
	gsock_conn_free(c);
}

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
gsock_pam_open(struct gsock_conn *c, const json_t *req, const char *user)
{
	struct gsessions *t = &c->gs->g->sessions;
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
gsock_status(struct gsock_conn *c)
{
	struct guestd *g = c->gs->g;
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

static json_t *
gsock_request(struct gsock_conn *c, const char *line, size_t len)
{
	struct guestd *g = c->gs->g;
	struct gsession *s;
	json_error_t jerr;
	json_t *req, *resp;
	const char *op, *user, *fp;
	int64_t now = guestd_now();
	bool root = c->uid == 0;

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
		if (!root && (g->ak_uid == (uid_t)-1 || c->uid != g->ak_uid))
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
				      gsock_pam_open(c, req, user);
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
		resp = gsandbox_exec(g, c->fd, c->uid, c->pid, req, c->fds, c->nfds);
		c->nfds = 0;
		c->handed_over = resp == NULL;
	} else if (strcmp(op, "status") == 0) {
		resp = root ? gsock_status(c) : gsock_error("not allowed: status is for root only");
	} else {
		resp = gsock_error("unknown op");
	}
	if (resp == NULL)
		resp = c->handed_over ? NULL : gsock_error("out of memory");
	if (op != NULL && !json_is_true(json_object_get(resp, "ok")))
		log_debug("control socket: %s from uid %d pid %d refused: %s", op, (int)c->uid,
			  (int)c->pid, json_string_value(json_object_get(resp, "error")));
	json_decref(req);
	return resp;
}

static void
gsock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsock_conn *c = arg;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * GSOCK_MAX_FDS)];
	} cm;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	char *nl;
	ssize_t n;
	size_t i, k;
	bool bad = false;

	/* recvmsg: saw-session sends its stdin/stdout/stderr with the request (SCM_RIGHTS) */
	iov.iov_base = c->buf + c->len;
	iov.iov_len = sizeof(c->buf) - c->len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg != NULL;
	     cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (c->nfds < GSOCK_MAX_FDS)
				c->fds[c->nfds++] = rfd;
			else {
				close(rfd);
				bad = true;
			}
		}
	}
	if (n >= 0 && (msg.msg_flags & MSG_CTRUNC))
		bad = true;
	if (n <= 0) {
		gsock_conn_free(c);
		return;
	}
	if (bad) {
		gsock_answer(c, gsock_error("too many file descriptors"));
		return;
	}
	c->len += (size_t)n;
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		gsock_answer(c, gsock_request(c, c->buf, (size_t)(nl - c->buf)));
		return;
	}
	if (c->len > GSOCK_MAX_LINE)
		gsock_answer(c, gsock_error("request line too long"));
}

static void
gsock_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	gsock_conn_free(arg);
}

static void
gsock_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		void *arg)
{
	struct gsock *gs = arg;
	struct gsock_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { GSOCK_TIMEOUT_MS / 1000, (GSOCK_TIMEOUT_MS % 1000) * 1000 };

	if (gs->nconns >= GSOCK_MAX_CONNS ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd); /* the clients fail closed */
		return;
	}
	evutil_make_socket_nonblocking(fd);
	c->gs = gs;
	c->fd = fd;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->ev_read = event_new(gs->g->base, fd, EV_READ | EV_PERSIST, gsock_read_cb, c);
	c->ev_timeout = evtimer_new(gs->g->base, gsock_timeout_cb, c);
	if (c->ev_read == NULL || c->ev_timeout == NULL) {
		if (c->ev_read != NULL)
			event_free(c->ev_read);
		if (c->ev_timeout != NULL)
			event_free(c->ev_timeout);
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&gs->conns, c, entry);
	gs->nconns++;
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timeout, &tv);
}

/* mkdir -p for the socket's directory, 0755 (the clients must reach the socket). */
static int
gsock_mkdirs(const char *dir)
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
gsock_open(struct guestd *g)
{
	const char *path = g->cfg.control_socket;
	struct sockaddr_un sun;
	struct gsock *gs = NULL;
	struct stat sb;
	char dir[PATH_MAX];
	int fd = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, path, strlen(path));
	snprintf(dir, sizeof(dir), "%s", path);
	if (gsock_mkdirs(dirname(dir)) != 0) {
		log_warn("ControlSocket %s: cannot create its directory", path);
		goto fail;
	}
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("ControlSocket %s exists and is not a socket: refusing to "
				  "replace it",
				  path);
			goto fail;
		}
		unlink(path); /* a stale socket of a previous run */
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_warn("ControlSocket %s: cannot bind", path);
		goto fail;
	}
	if (chmod(path, 0666) != 0 || listen(fd, 64) != 0) {
		log_warn("ControlSocket %s", path);
		goto fail;
	}
	if ((gs = calloc(1, sizeof(*gs))) == NULL)
		goto fail;
	gs->g = g;
	TAILQ_INIT(&gs->conns);
	gs->listener = evconnlistener_new(g->base, gsock_accept_cb, gs,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (gs->listener == NULL)
		goto fail;
	g->sock = gs;
	log_info("control socket %s ready", path);
	return 0;
fail:
	free(gs);
	if (fd >= 0)
		close(fd);
	return -1;
}

void
gsock_close(struct guestd *g)
{
	struct gsock *gs = g->sock;
	struct gsock_conn *c;

	if (gs == NULL)
		return;
	while ((c = TAILQ_FIRST(&gs->conns)) != NULL)
		gsock_conn_free(c);
	evconnlistener_free(gs->listener);
	unlink(g->cfg.control_socket);
	free(gs);
	g->sock = NULL;
}
