/*
 * The credential proxy (ARCHITECTURE invariant 5; issue 5 "Credential proxy and routed
 * inference"): the agent holds capabilities, never secrets.
 *
 * A session's sandbox reaches us on its own CRED listener (127.0.0.1:3129 inside the
 * sandbox, proxy_listen_fds()), or on CredentialListen on the workspace's loopback, where the
 * capability alone says whose request it is. A request is
 *
 *   POST /<route>/v1/chat/completions HTTP/1.1        (or Host: <route>[.localhost])
 *   Authorization: Bearer sawcap_…                    (or x-api-key: sawcap_…)
 *
 * and is checked in this order, every refusal a 403 (404 for a path the route does not
 * offer) with a JSON body and an audit event: a capability was presented; it is a live one
 * (constant-time compare), of this listener's session, for the route the path names; the
 * session is live; the policy still gives that route to the session's subject; the path is
 * one the route's kind offers. Then every client header that can carry a credential is
 * stripped, the route's header is injected with the secret, and the request goes to the
 * route's https upstream with libcurl (certificates verified; CredentialCAFile for tests and
 * private CAs), on the loop through guestd-http.c.
 *
 * Secrets: "file:/path" (a regular file owned by guestd's user, mode 0600 or stricter) or
 * "command:NAME" (CredentialCommand NAME, run without a shell, stdout is the secret), read
 * when first needed and cached for CredentialCacheTTL. They live only in guestd's memory
 * (wiped when dropped) and in the request to the upstream: never in the sandbox's
 * environment, files or memory, and never in a log line.
 *
 * Responses stream: the status and headers are passed on when curl has them, the body as it
 * arrives (chunked to HTTP/1.1 clients), so server-sent events reach the agent one by one.
 * Back-pressure: above GCRED_HIGH bytes queued for the client, the write callback pauses the
 * transfer (CURL_WRITEFUNC_PAUSE); below GCRED_LOW it is resumed. Nothing is buffered whole.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "guestd/guestd-cred.h"
#include "guestd/guestd-http.h"
#include "guestd/guestd.h"
#include "guestd/policy.h"

#define GCRED_MAX_CLIENTS 256
#define GCRED_MAX_BODY (16 * 1024 * 1024) /* request body, held until sent upstream */
#define GCRED_HEAD_TIMEOUT 30		  /* seconds for a request's head and body */
#define GCRED_KEEPALIVE_TIMEOUT 60	  /* seconds between requests on a connection */
#define GCRED_CONNECT_TIMEOUT 10	  /* seconds to reach the upstream */
#define GCRED_STALL_TIMEOUT 300		  /* seconds without a byte from the upstream */
#define GCRED_HIGH (256 * 1024)		  /* queued for the client: pause the upstream */
#define GCRED_LOW (64 * 1024)		  /* … resume it */
#define GCRED_MAX_RESP_HEAD (64 * 1024)
#define GCRED_SECRET_MAX 16384
#define GCRED_COMMAND_TIMEOUT 10 /* seconds for a CredentialCommand */
#define GCRED_COMMAND_ARGS 16
#define GCRED_MAX_PRESENTED 4 /* candidate capabilities looked at per request */

enum gcred_state {
	GC_HEAD,
	GC_BODY,
	GC_SECRET,   /* waiting for the secret (a CredentialCommand running) */
	GC_UPSTREAM, /* transfer running */
	GC_CLOSING,  /* answer queued; close once written */
};

struct gcred_secret;

struct gcred_client {
	TAILQ_ENTRY(gcred_client) entry;
	TAILQ_ENTRY(gcred_client) wait_entry;
	struct gcred *cr;
	struct bufferevent *bev;
	enum gcred_state state;
	char listener_sid[GCRED_SID_MAX + 1]; /* "" on CredentialListen */
	char sid[GCRED_SID_MAX + 1];
	char user[128];
	char route[GCRED_ROUTE_MAX + 1];
	char peer[INET6_ADDRSTRLEN];
	int peer_port;
	char head[GPROXY_MAX_HEAD];
	struct gproxy_request req;
	char *body;
	size_t bodylen;
	size_t rest; /* offset of the upstream path within the request path */
	struct gcred_secret *waiting;
	struct policy *pol; /* reference from the decision to the end of the transfer */
	const struct policy_cred_route *rt;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	struct evbuffer *resp; /* response header lines being collected */
	long status;
	bool head_sent, chunked, no_body, paused, keepalive, client_gone;
	uint64_t bytes;
};
TAILQ_HEAD(gcred_client_list, gcred_client);

struct gcred_secret {
	TAILQ_ENTRY(gcred_secret) entry;
	struct gcred *cr;
	char *ref;
	char *value;
	int64_t fetched;
	/* a CredentialCommand running */
	pid_t pid;
	int fd;
	struct event *ev_read, *ev_timer;
	char buf[GCRED_SECRET_MAX];
	size_t got;
	int64_t started;
	bool eof, cmd_ok;
	struct gcred_client_list waiters;
};
TAILQ_HEAD(gcred_secret_list, gcred_secret);

struct gcred {
	struct guestd *g;
	struct gcred_caps caps;
	struct ghttp *http;
	struct gcred_client_list clients;
	size_t nclients;
	struct gcred_secret_list secrets;
};

static void gcred_next(struct gcred_client *c);
static void gcred_secret_ready(struct gcred_client *c, const char *secret, const char *err);

/* ---- audit and answers ------------------------------------------------------------- */

/* The host of a route's upstream URL ("https://host[:port][/base]"), for url.hostname. */
static const char *
gcred_upstream_host(const struct gcred_client *c, char *buf, size_t len)
{
	const char *u = c->rt != NULL ? c->rt->upstream : NULL, *p, *end;

	if (u == NULL || (p = strstr(u, "://")) == NULL)
		return NULL;
	p += 3;
	if (*p == '[') { /* [v6]:port */
		end = strchr(p, ']');
		if (end == NULL)
			return NULL;
		p++;
	} else {
		end = p + strcspn(p, ":/?#");
	}
	if (end == p || (size_t)(end - p) >= len)
		return NULL;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
	return buf;
}

/* OCSF HTTP Activity (4002) for a credential-proxy request. Never the secret nor the
 * capability: only the method, the path as sent by the client and the route's host. */
static void
gcred_audit(struct gcred_client *c, bool ok, int status, const char *detail)
{
	struct ocsf_subject who = { .username = c->user[0] ? c->user : "unknown",
				    .session_uid = c->sid[0] ? c->sid : "none" };
	struct ocsf_endpoint src = { .ip = c->peer[0] ? c->peer : NULL, .port = c->peer_port };
	char path[512], host[256];
	json_t *ev;

	snprintf(path, sizeof(path), "%.*s", (int)(c->req.path_len < 400 ? c->req.path_len : 400),
		 c->head + c->req.path);
	/* the query may carry a key a client put there: the path alone is recorded */
	path[strcspn(path, "?#")] = '\0';
	ev = ocsf_http_activity(
		&who, &src, NULL, c->req.method, gcred_upstream_host(c, host, sizeof(host)), path,
		status, ok, detail,
		ok ? "credential proxy request" : "credential proxy request refused",
		ocsf_now_ms());
	if (ev == NULL)
		return;
	json_object_set_new(ev, "unmapped",
			    json_pack("{s:s, s:s, s:I}", "proxy", "credential", "route",
				      c->route[0] ? c->route : "-", "bytes_out",
				      (json_int_t)c->bytes));
	gbroker_audit(c->cr->g, ev);
}

/* ---- clients ------------------------------------------------------------------------ */

static void
gcred_transfer_end(struct gcred_client *c)
{
	if (c->easy != NULL) {
		ghttp_remove(c->cr->http, c->easy);
		curl_easy_cleanup(c->easy);
		c->easy = NULL;
	}
	gcred_headers_free(c->hdrs);
	c->hdrs = NULL;
	free(c->url);
	c->url = NULL;
	if (c->body != NULL) {
		explicit_bzero(c->body, c->bodylen);
		free(c->body);
		c->body = NULL;
	}
	c->bodylen = 0;
	if (c->resp != NULL) {
		evbuffer_free(c->resp);
		c->resp = NULL;
	}
	if (c->waiting != NULL) {
		TAILQ_REMOVE(&c->waiting->waiters, c, wait_entry);
		c->waiting = NULL;
	}
	if (c->pol != NULL) {
		policy_free(c->pol);
		c->pol = NULL;
	}
	c->rt = NULL;
}

static void
gcred_client_free(struct gcred_client *c)
{
	TAILQ_REMOVE(&c->cr->clients, c, entry);
	c->cr->nclients--;
	gcred_transfer_end(c);
	bufferevent_free(c->bev); /* closes the socket */
	explicit_bzero(c->head, sizeof(c->head));
	free(c);
}

/* The answer is queued: the connection closes once it is written. */
static void
gcred_close_after_write(struct gcred_client *c)
{
	c->state = GC_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		gcred_client_free(c);
}

static void
gcred_answer(struct gcred_client *c, int status, const char *reason, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n"
			    "Cache-Control: no-store\r\n\r\n%s\n",
			    status, reason, text ? strlen(text) + 1 : 1, text ? text : "");
	free(text);
	gcred_close_after_write(c);
}

static void
gcred_refuse(struct gcred_client *c, int status, const char *reason, const char *why)
{
	log_info("credential proxy: %s %.*s refused (session %s): %s", c->req.method,
		 (int)(c->req.path_len < 200 ? c->req.path_len : 200), c->head + c->req.path,
		 c->sid[0] ? c->sid : "-", why);
	gcred_audit(c, false, status, why);
	gcred_answer(c, status, reason,
		     json_pack("{s:s, s:s}", "error",
			       status == 404 ? "not offered by this route" : "request refused",
			       "reason", why));
}

/* ---- secrets ------------------------------------------------------------------------ */

static void
gcred_secret_clear(struct gcred_secret *s)
{
	if (s->value != NULL) {
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
		s->value = NULL;
	}
	explicit_bzero(s->buf, sizeof(s->buf));
	s->got = 0;
}

/* Trims the line end; refuses what cannot be a header value. */
static char *
gcred_secret_take(char *buf, size_t len, char *err, size_t errlen)
{
	size_t i;
	char *v;

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "the secret is empty");
		return NULL;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			snprintf(err, errlen,
				 "the secret has control characters (one line expected)");
			return NULL;
		}
	if ((v = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(v, buf, len);
	v[len] = '\0';
	return v;
}

static char *
gcred_secret_file(const char *path, char *err, size_t errlen)
{
	char buf[GCRED_SECRET_MAX];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	char *v = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "cannot open the secret file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the secret file %s is not a regular file", path);
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(err, errlen,
			 "the secret file %s must belong to saw-guestd's user and be readable by "
			 "nobody else (chown root, chmod 600)",
			 path);
		goto out;
	}
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(buf))
		snprintf(err, errlen, "the secret file %s is larger than %d bytes", path,
			 GCRED_SECRET_MAX - 1);
	else
		v = gcred_secret_take(buf, got, err, errlen);
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return v;
}

/* Every waiter gets the outcome; the secret stays cached on success. */
static void
gcred_secret_done(struct gcred_secret *s, const char *err)
{
	struct gcred_client *c;

	while ((c = TAILQ_FIRST(&s->waiters)) != NULL) {
		TAILQ_REMOVE(&s->waiters, c, wait_entry);
		c->waiting = NULL;
		gcred_secret_ready(c, s->value, err); /* may free c */
	}
}

/* 1 when the command has exited (*ok: with status 0), 0 while it runs. */
static int
gcred_command_wait(struct gcred_secret *s, bool kill_it, bool *ok)
{
	int status = 0;
	pid_t r;

	*ok = false;
	if (s->pid <= 0)
		return 1;
	if (kill_it)
		kill(s->pid, SIGKILL);
	do {
		r = waitpid(s->pid, &status, kill_it ? 0 : WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	s->pid = 0;
	/* ECHILD: someone else reaped it (a SIGCHLD handler): judge by its output */
	*ok = (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	      (r < 0 && errno == ECHILD && s->got > 0);
	return 1;
}

static void
gcred_command_finish(struct gcred_secret *s, const char *why)
{
	char err[300] = "";
	bool ok;

	event_del(s->ev_read);
	event_del(s->ev_timer);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (why != NULL) {
		gcred_command_wait(s, true, &ok);
		snprintf(err, sizeof(err), "%s: %s", s->ref, why);
	} else if (!s->cmd_ok) {
		snprintf(err, sizeof(err), "%s: the command failed (non-zero exit status)", s->ref);
	} else if ((s->value = gcred_secret_take(s->buf, s->got, err, sizeof(err))) != NULL) {
		s->fetched = guestd_now();
	}
	explicit_bzero(s->buf, sizeof(s->buf));
	s->got = 0;
	if (err[0] != '\0')
		log_warnx("credential proxy: %s", err);
	gcred_secret_done(s, err[0] ? err : NULL);
}

static void
gcred_command_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gcred_secret *s = arg;
	struct timeval tv = { 0, 50000 };

	if (guestd_now() - s->started >= GCRED_COMMAND_TIMEOUT) {
		gcred_command_finish(s, "timed out");
		return;
	}
	/* stdout closed: wait (polling briefly) for the exit status */
	if (s->eof && gcred_command_wait(s, false, &s->cmd_ok) == 1) {
		gcred_command_finish(s, NULL);
		return;
	}
	evtimer_add(s->ev_timer, &tv);
}

static void
gcred_command_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gcred_secret *s = arg;
	ssize_t n;

	if (s->got >= sizeof(s->buf)) {
		gcred_command_finish(s, "output too large");
		return;
	}
	n = read(fd, s->buf + s->got, sizeof(s->buf) - s->got);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		s->got += (size_t)n;
		return;
	}
	s->eof = true;
	event_del(s->ev_read);
	gcred_command_timer_cb(-1, 0, s);
}

/* Starts CredentialCommand NAME; 0 or -1 with err. */
static int
gcred_command_start(struct gcred_secret *s, const char *name, char *err, size_t errlen)
{
	const struct conf_list *l = &s->cr->g->cfg.credential_command;
	struct timeval tv = { 1, 0 };
	char line[CONF_MAX_LINE + 1], *argv[GCRED_COMMAND_ARGS + 1], *p, *save = NULL;
	char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	size_t i, nl = strlen(name);
	int pfd[2], argc = 0;

	for (i = 0; i < l->n; i++)
		if (strncmp(l->v[i], name, nl) == 0 && l->v[i][nl] == ' ')
			break;
	if (i == l->n) {
		snprintf(err, errlen, "no CredentialCommand %s in the configuration", name);
		return -1;
	}
	snprintf(line, sizeof(line), "%s", l->v[i] + nl + 1);
	for (p = strtok_r(line, " \t", &save); p != NULL && argc < GCRED_COMMAND_ARGS;
	     p = strtok_r(NULL, " \t", &save))
		argv[argc++] = p;
	argv[argc] = NULL;
	if (argc == 0 || pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot run CredentialCommand %s", name);
		return -1;
	}
	if ((s->pid = fork()) == -1) {
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "cannot run CredentialCommand %s: %s", name, strerror(errno));
		return -1;
	}
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		/* only async-signal-safe calls here */
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0)
			_exit(127);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	s->fd = pfd[0];
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	s->got = 0;
	s->eof = false;
	s->started = guestd_now();
	if (s->ev_read != NULL)
		event_free(s->ev_read);
	s->ev_read =
		event_new(s->cr->g->base, s->fd, EV_READ | EV_PERSIST, gcred_command_read_cb, s);
	if (s->ev_timer == NULL)
		s->ev_timer = evtimer_new(s->cr->g->base, gcred_command_timer_cb, s);
	if (s->ev_read == NULL || s->ev_timer == NULL) {
		gcred_command_finish(s, "out of memory");
		return 0; /* waiters were told */
	}
	event_add(s->ev_read, NULL);
	evtimer_add(s->ev_timer, &tv);
	return 0;
}

/* Gets route's secret for c: gcred_secret_ready() now or later. */
static void
gcred_secret_get(struct gcred_client *c, const char *ref)
{
	struct gcred *cr = c->cr;
	struct gcred_secret *s;
	char err[400] = "";
	char *v;

	TAILQ_FOREACH(s, &cr->secrets, entry)
		if (strcmp(s->ref, ref) == 0)
			break;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL || (s->ref = strdup(ref)) == NULL) {
			free(s);
			gcred_secret_ready(c, NULL, "out of memory");
			return;
		}
		s->cr = cr;
		s->fd = -1;
		TAILQ_INIT(&s->waiters);
		TAILQ_INSERT_TAIL(&cr->secrets, s, entry);
	}
	if (s->value != NULL && guestd_now() - s->fetched < cr->g->cfg.credential_cache_ttl) {
		gcred_secret_ready(c, s->value, NULL);
		return;
	}
	if (s->fd >= 0 || s->pid > 0) { /* a command is already running for it */
		c->waiting = s;
		c->state = GC_SECRET;
		TAILQ_INSERT_TAIL(&s->waiters, c, wait_entry);
		return;
	}
	gcred_secret_clear(s);
	if (strncmp(ref, "file:", 5) == 0) {
		if ((v = gcred_secret_file(ref + 5, err, sizeof(err))) != NULL) {
			s->value = v;
			s->fetched = guestd_now();
		} else {
			log_warnx("credential proxy: %s", err);
		}
		gcred_secret_ready(c, s->value, s->value ? NULL : err);
		return;
	}
	if (strncmp(ref, "command:", 8) == 0) {
		c->waiting = s;
		c->state = GC_SECRET;
		TAILQ_INSERT_TAIL(&s->waiters, c, wait_entry);
		if (gcred_command_start(s, ref + 8, err, sizeof(err)) != 0) {
			log_warnx("credential proxy: %s", err);
			gcred_secret_done(s, err);
		}
		return;
	}
	gcred_secret_ready(c, NULL, "the route's secret reference is neither file: nor command:");
}

static void
gcred_secret_free(struct gcred_secret *s)
{
	bool ok;

	TAILQ_REMOVE(&s->cr->secrets, s, entry);
	if (s->ev_read != NULL)
		event_free(s->ev_read);
	if (s->ev_timer != NULL)
		event_free(s->ev_timer);
	if (s->fd >= 0)
		close(s->fd);
	gcred_command_wait(s, true, &ok);
	gcred_secret_clear(s);
	free(s->ref);
	free(s);
}

/* ---- the upstream transfer ------------------------------------------------------------ */

static const char *
gcred_reason(long status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

static bool
gcred_resp_dropped(const char *line, size_t len)
{
	static const char *const drop[] = { "transfer-encoding:", "connection:",     "keep-alive:",
					    "proxy-connection:",  "content-length:", NULL };
	size_t i;

	for (i = 0; drop[i] != NULL; i++)
		if (len >= strlen(drop[i]) && strncasecmp(line, drop[i], strlen(drop[i])) == 0)
			return true;
	return false;
}

/* The end of the final header block: the client's response head. */
static void
gcred_send_head(struct gcred_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	long status = c->status;

	c->no_body = strcmp(c->req.method, "HEAD") == 0 || status == 204 || status == 304;
	c->chunked = !c->no_body && c->req.http_minor == 1;
	if (!c->chunked)
		c->keepalive = c->keepalive && c->no_body;
	evbuffer_add_printf(out, "HTTP/1.%d %ld %s\r\n", c->req.http_minor, status,
			    gcred_reason(status));
	evbuffer_add_buffer(out, c->resp);
	if (c->chunked)
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
	else if (c->no_body)
		evbuffer_add_printf(out, "Content-Length: 0\r\n");
	evbuffer_add_printf(out, "Connection: %s\r\n\r\n", c->keepalive ? "keep-alive" : "close");
	c->head_sent = true;
}

static size_t
gcred_header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct gcred_client *c = arg;
	size_t len = size * n, i;

	if (c->client_gone)
		return 0;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* a new block (after 1xx, or a retry): start over */
		evbuffer_drain(c->resp, evbuffer_get_length(c->resp));
		c->status = 0;
		for (i = 5; i < len && data[i] != ' '; i++)
			;
		if (i + 4 <= len)
			c->status = strtol(data + i + 1, NULL, 10);
		return len;
	}
	if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
		if (c->status >= 200 && !c->head_sent)
			gcred_send_head(c);
		return len;
	}
	if (gcred_resp_dropped(data, len))
		return len;
	if (evbuffer_get_length(c->resp) + len > GCRED_MAX_RESP_HEAD)
		return 0; /* absurd: abort */
	evbuffer_add(c->resp, data, len);
	return len;
}

static size_t
gcred_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct gcred_client *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = size * n;

	if (c->client_gone)
		return 0; /* curl aborts; the done callback frees */
	if (!c->head_sent) {
		if (c->status < 200)
			c->status = 200;
		gcred_send_head(c);
	}
	if (evbuffer_get_length(out) > GCRED_HIGH) {
		c->paused = true;
		return CURL_WRITEFUNC_PAUSE; /* resumed from gcred_client_write_cb */
	}
	if (c->no_body || len == 0)
		return len;
	if (c->chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (c->chunked)
		evbuffer_add(out, "\r\n", 2);
	c->bytes += len;
	return len;
}

static void
gcred_done_cb(CURL *easy, CURLcode rc, void *arg)
{
	struct gcred_client *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char detail[300];

	/* ghttp removed it from the multi: it is ours to clean up */
	c->easy = NULL;
	curl_easy_cleanup(easy);
	if (c->client_gone) {
		gcred_audit(c, false, (int)c->status, "the client went away");
		gcred_client_free(c);
		return;
	}
	if (rc != CURLE_OK) {
		snprintf(detail, sizeof(detail), "upstream %s: %s", c->rt ? c->rt->upstream : "?",
			 curl_easy_strerror(rc));
		log_info("credential proxy: session %s route %s: %s", c->sid, c->route, detail);
		if (!c->head_sent) {
			gcred_audit(c, false, 502, detail);
			gcred_transfer_end(c);
			gcred_answer(c, 502, "Bad Gateway",
				     json_pack("{s:s, s:s}", "error", "upstream failed", "reason",
					       curl_easy_strerror(rc)));
			return;
		}
		/* mid-body: the only honest signal left is to cut the connection */
		gcred_audit(c, false, (int)c->status, detail);
		gcred_transfer_end(c);
		c->keepalive = false;
		gcred_close_after_write(c);
		return;
	}
	if (!c->head_sent)
		gcred_send_head(c);
	if (c->chunked)
		evbuffer_add(out, "0\r\n\r\n", 5);
	gcred_audit(c, true, (int)c->status, "forwarded");
	log_info("credential proxy: session %s route %s: %s %.*s -> %ld (%llu bytes)", c->sid,
		 c->route, c->req.method, (int)(c->req.path_len < 200 ? c->req.path_len : 200),
		 c->head + c->req.path, c->status, (unsigned long long)c->bytes);
	gcred_transfer_end(c);
	if (!c->keepalive) {
		gcred_close_after_write(c);
		return;
	}
	gcred_next(c);
}

static void
gcred_start_transfer(struct gcred_client *c, const char *secret)
{
	struct guestd *g = c->cr->g;
	const char *up = c->rt->upstream, *rest = c->head + c->req.path + c->rest;
	size_t restlen = c->req.path_len - c->rest, uplen = strlen(up);
	CURL *e;

	if (gcred_headers(c->head, &c->req, c->rt, secret, &c->hdrs) != 0) {
		gcred_refuse(c, 502, "Bad Gateway",
			     "the route's secret or header cannot be used (see saw-guestd's log)");
		return;
	}
	while (uplen > 0 && up[uplen - 1] == '/')
		uplen--;
	if (asprintf(&c->url, "%.*s%.*s", (int)uplen, up, (int)restlen, rest) < 0) {
		c->url = NULL;
		gcred_refuse(c, 502, "Bad Gateway", "out of memory");
		return;
	}
	if ((c->resp = evbuffer_new()) == NULL || (e = curl_easy_init()) == NULL) {
		gcred_refuse(c, 502, "Bad Gateway", "out of memory");
		return;
	}
	c->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (g->cfg.credential_ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, g->cfg.credential_ca_file);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)GCRED_CONNECT_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)GCRED_STALL_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->req.method);
	if (strcmp(c->req.method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (c->bodylen > 0 || strcmp(c->req.method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->bodylen);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body != NULL ? c->body : "");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, gcred_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, gcred_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	if (ghttp_add(c->cr->http, e, gcred_done_cb, c) != 0) {
		curl_easy_cleanup(e);
		c->easy = NULL;
		gcred_refuse(c, 502, "Bad Gateway", "cannot start the upstream request");
		return;
	}
	c->state = GC_UPSTREAM;
	/* the socket is watched for write errors only while the upstream answers */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
}

static void
gcred_secret_ready(struct gcred_client *c, const char *secret, const char *err)
{
	if (secret == NULL) {
		gcred_refuse(c, 502, "Bad Gateway",
			     err != NULL && strncmp(err, "out of memory", 13) == 0 ?
				     "out of memory" :
				     "the route's secret is not available (see saw-guestd's log)");
		return;
	}
	gcred_start_transfer(c, secret);
}

/* ---- the decision ---------------------------------------------------------------------- */

/* The route named by the Host header: "<route>" or "<route>.localhost", any port. */
static bool
gcred_route_from_host(struct gcred_client *c, char *route, size_t routelen)
{
	const char *h;
	size_t n, i;

	if ((h = gproxy_header_get(c->head, &c->req, "Host", &n)) == NULL)
		return false;
	for (i = 0; i < n && h[i] != ':'; i++)
		;
	n = i;
	if (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0)
		n -= 10;
	if (n == 0 || n >= routelen)
		return false;
	for (i = 0; i < n; i++)
		route[i] = (char)tolower((unsigned char)h[i]);
	route[n] = '\0';
	return true;
}

static void
gcred_decide(struct gcred_client *c)
{
	struct guestd *g = c->cr->g;
	const struct gcred_cap *cap;
	const struct policy_cred_route *rt;
	struct policy_subject subj;
	struct gsession *s;
	const char *tok[GCRED_MAX_PRESENTED];
	char route[GCRED_ROUTE_MAX + 1], why[300];
	size_t toklen[GCRED_MAX_PRESENTED], ntok, i, rest = 0;
	bool by_path;

	ntok = gcred_presented(c->head, &c->req, tok, toklen, GCRED_MAX_PRESENTED);
	if (ntok == 0) {
		gcred_refuse(c, 403, "Forbidden",
			     "no capability: send Authorization: Bearer $SAW_CAP_<ROUTE>");
		return;
	}
	/* the first presented value that is a live capability (others are stripped anyway) */
	for (cap = NULL, i = 0; i < ntok && cap == NULL; i++)
		cap = gcred_caps_find(&c->cr->caps, tok[i], toklen[i],
				      c->listener_sid[0] ? c->listener_sid : NULL);
	if (cap == NULL) {
		gcred_refuse(c, 403, "Forbidden",
			     "unknown or revoked capability (capabilities die with their session)");
		return;
	}
	snprintf(c->sid, sizeof(c->sid), "%s", cap->sid);
	/* the route: the first path segment if it names the capability's route, else Host */
	by_path = gcred_route_of(c->head + c->req.path, c->req.path_len, route, sizeof(route),
				 &rest) == 0 &&
		  strcmp(route, cap->route) == 0;
	if (!by_path) {
		rest = 0;
		if (!gcred_route_from_host(c, route, sizeof(route)) ||
		    strcmp(route, cap->route) != 0) {
			snprintf(why, sizeof(why),
				 "this capability is for route %s: send requests to /%s/…",
				 cap->route, cap->route);
			snprintf(c->route, sizeof(c->route), "%s", cap->route);
			gcred_refuse(c, 403, "Forbidden", why);
			return;
		}
	}
	snprintf(c->route, sizeof(c->route), "%s", cap->route);
	if ((s = gsessions_find(&g->sessions, c->sid, guestd_now())) == NULL) {
		gcred_refuse(c, 403, "Forbidden", "the capability's session has ended");
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", s->user);
	gproxy_subject(g, s, &subj);
	if ((rt = policy_cred_route(g->policy, &subj, c->route)) == NULL) {
		snprintf(why, sizeof(why), "the policy gives no route %s to this session",
			 c->route);
		gcred_refuse(c, 403, "Forbidden", why);
		return;
	}
	c->rest = rest;
	if (!gcred_path_allowed(rt->kind, c->head + c->req.path + rest, c->req.path_len - rest)) {
		snprintf(why, sizeof(why), "route %s (%s) does not offer this path", c->route,
			 rt->kind ? rt->kind : "generic");
		gcred_refuse(c, 404, "Not Found", why);
		return;
	}
	if (strncasecmp(rt->upstream, "https://", 8) != 0) {
		gcred_refuse(c, 502, "Bad Gateway", "the route's upstream is not an https URL");
		return;
	}
	c->pol = policy_ref(g->policy);
	c->rt = rt;
	gcred_secret_get(c, rt->secret);
}

/* ---- reading requests ----------------------------------------------------------------- */

static void
gcred_got_request(struct gcred_client *c)
{
	size_t n;
	const char *v;

	c->keepalive = c->req.http_minor == 1;
	if ((v = gproxy_header_get(c->head, &c->req, "Connection", &n)) != NULL && n == 5 &&
	    strncasecmp(v, "close", 5) == 0)
		c->keepalive = false;
	gcred_decide(c);
}

/* Reads what the current state needs from the input; acts when it is complete. */
static void
gcred_next(struct gcred_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct timeval tv = { GCRED_HEAD_TIMEOUT, 0 }, ka = { GCRED_KEEPALIVE_TIMEOUT, 0 };
	size_t len, take;
	char err[200];
	int rc;

	if (c->state == GC_UPSTREAM || c->state == GC_CLOSING || c->state == GC_SECRET) {
		/* a finished transfer on a kept-alive connection: the next request */
		if (c->state != GC_UPSTREAM)
			return;
		c->state = GC_HEAD;
		c->head_sent = c->chunked = c->no_body = c->paused = false;
		c->status = 0;
		c->bytes = 0;
		c->sid[0] = c->route[0] = c->user[0] = '\0';
		memset(&c->req, 0, sizeof(c->req));
		bufferevent_set_timeouts(c->bev, &ka, NULL);
		bufferevent_enable(c->bev, EV_READ);
	}
	if (c->state == GC_HEAD) {
		len = evbuffer_get_length(in);
		if (len == 0)
			return;
		take = len < GPROXY_MAX_HEAD ? len : GPROXY_MAX_HEAD;
		memcpy(c->head, evbuffer_pullup(in, (ev_ssize_t)take), take);
		rc = gproxy_parse_mode(c->head, take, GPROXY_MODE_ORIGIN, &c->req, err,
				       sizeof(err));
		switch (rc) {
		case GPROXY_MORE:
			bufferevent_set_timeouts(c->bev, &tv, NULL);
			return;
		case GPROXY_OK:
			break;
		default:
			gcred_answer(c,
				     rc == GPROXY_TOO_LARGE   ? 431 :
				     rc == GPROXY_NOT_CONNECT ? 405 :
								400,
				     rc == GPROXY_TOO_LARGE   ? "Request Header Fields Too Large" :
				     rc == GPROXY_NOT_CONNECT ? "Method Not Allowed" :
								"Bad Request",
				     json_pack("{s:s}", "error", err));
			return;
		}
		evbuffer_drain(in, c->req.head_len);
		if (c->req.chunked) {
			gcred_answer(c, 411, "Length Required",
				     json_pack("{s:s}", "error",
					       "send the request body with a Content-Length"));
			return;
		}
		if (c->req.content_length > GCRED_MAX_BODY) {
			gcred_answer(c, 413, "Content Too Large",
				     json_pack("{s:s}", "error", "request body too large"));
			return;
		}
		c->bodylen = c->req.content_length > 0 ? (size_t)c->req.content_length : 0;
		if (c->bodylen > 0 && (c->body = malloc(c->bodylen)) == NULL) {
			gcred_answer(c, 503, "Service Unavailable",
				     json_pack("{s:s}", "error", "out of memory"));
			return;
		}
		c->state = GC_BODY;
		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	if (c->state == GC_BODY) {
		/* the body is read whole: it is bounded, and sent upstream in one piece */
		if (evbuffer_get_length(in) < c->bodylen) {
			bufferevent_setwatermark(c->bev, EV_READ, 0, c->bodylen + GPROXY_MAX_HEAD);
			return;
		}
		bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * GPROXY_MAX_HEAD);
		if (c->bodylen > 0)
			evbuffer_remove(in, c->body, c->bodylen);
		bufferevent_disable(c->bev, EV_READ);
		gcred_got_request(c);
	}
}

static void
gcred_client_read_cb(struct bufferevent *bev, void *arg)
{
	gcred_next(arg);
}

static void
gcred_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct gcred_client *c = arg;

	if (c->state == GC_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			gcred_client_free(c);
		return;
	}
	if (c->paused && c->easy != NULL) {
		c->paused = false;
		curl_easy_pause(c->easy, CURLPAUSE_CONT);
		ghttp_kick(c->cr->http);
	}
}

static void
gcred_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct gcred_client *c = arg;

	if (c->state == GC_UPSTREAM && c->easy != NULL) {
		/* a libevent callback, never run inside a curl one: the transfer can go now */
		gcred_audit(c, false, (int)c->status, "the client went away");
		gcred_client_free(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state == GC_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		gcred_answer(c, 408, "Request Timeout",
			     json_pack("{s:s}", "error", "request not received in time"));
		return;
	}
	gcred_client_free(c);
}

void
gcred_accept(struct guestd *g, int fd, const char *sid, const struct sockaddr *sa)
{
	struct gcred *cr = g->cred;
	struct gcred_client *c;
	struct timeval tv = { GCRED_HEAD_TIMEOUT, 0 };

	if (cr == NULL || cr->nclients >= GCRED_MAX_CLIENTS) {
		gproxy_reply_error(fd, 503, "Service Unavailable",
				   cr == NULL ? "the credential proxy is not running" :
						"too many connections");
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->cr = cr;
	c->state = GC_HEAD;
	snprintf(c->listener_sid, sizeof(c->listener_sid), "%s", sid != NULL ? sid : "");
	if (sa->sa_family == AF_INET) {
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer,
				 sizeof(c->peer));
		c->peer_port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
				 sizeof(c->peer));
		c->peer_port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	if ((c->bev = bufferevent_socket_new(g->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&cr->clients, c, entry);
	cr->nclients++;
	bufferevent_setcb(c->bev, gcred_client_read_cb, gcred_client_write_cb,
			  gcred_client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, GCRED_LOW, 0);
	/* a client cannot make us hold more than a head (or its announced body) */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * GPROXY_MAX_HEAD);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- capabilities and lifecycle ----------------------------------------------------- */

size_t
cred_session_caps(struct guestd *g, const char *session_id, const char ***env_out)
{
	const struct policy_cred_route *routes[64];
	const struct gcred_cap *caps[64];
	struct policy_subject subj;
	struct gsession *s;
	char name[GCRED_ROUTE_MAX + 16];
	size_t n, i, k = 0, size;
	const char **arr;
	char *p;

	*env_out = NULL;
	if (g->cred == NULL || (s = gsessions_find(&g->sessions, session_id, guestd_now())) == NULL)
		return 0;
	gproxy_subject(g, s, &subj);
	n = policy_cred_routes(g->policy, routes, sizeof(routes) / sizeof(routes[0]));
	size = sizeof(char *);
	for (i = 0; i < n; i++) {
		if (policy_cred_route(g->policy, &subj, routes[i]->name) == NULL)
			continue; /* a selector leaves this session out */
		if ((caps[k] = gcred_caps_mint(&g->cred->caps, session_id, routes[i]->name)) ==
		    NULL) {
			log_warnx("session %s: cannot mint a capability for route %s", session_id,
				  routes[i]->name);
			continue;
		}
		size += sizeof(char *) + strlen(routes[i]->name) + 9 + GCRED_TOKEN_LEN + 2;
		k++;
	}
	if (k == 0 || (arr = malloc(size)) == NULL)
		return 0;
	p = (char *)(arr + k + 1);
	for (i = 0; i < k; i++) {
		if (gcred_env_name(caps[i]->route, name, sizeof(name)) != 0)
			name[0] = '\0';
		arr[i] = p;
		p += sprintf(p, "%s=%s", name, caps[i]->token) + 1;
	}
	arr[k] = NULL;
	*env_out = arr;
	return k;
}

void
gcred_session_end(struct guestd *g, const char *sid)
{
	struct gcred *cr = g->cred;
	struct gcred_client *c, *next;
	size_t n;

	if (cr == NULL)
		return;
	if ((n = gcred_caps_drop(&cr->caps, sid)) > 0)
		log_info("session %s: %zu capabilit%s revoked", sid, n, n == 1 ? "y" : "ies");
	for (c = TAILQ_FIRST(&cr->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (strcmp(c->sid, sid) == 0 || strcmp(c->listener_sid, sid) == 0)
			gcred_client_free(c); /* not inside a curl callback: from the session end */
	}
}

int
gcred_open(struct guestd *g)
{
	struct gcred *cr;

	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return -1;
	cr->g = g;
	gcred_caps_init(&cr->caps);
	TAILQ_INIT(&cr->clients);
	TAILQ_INIT(&cr->secrets);
	if ((cr->http = ghttp_new(g->base)) == NULL) {
		free(cr);
		return -1;
	}
	g->cred = cr;
	return 0;
}

void
gcred_close(struct guestd *g)
{
	struct gcred *cr = g->cred;
	struct gcred_client *c;
	struct gcred_secret *s;

	if (cr == NULL)
		return;
	while ((c = TAILQ_FIRST(&cr->clients)) != NULL)
		gcred_client_free(c);
	while ((s = TAILQ_FIRST(&cr->secrets)) != NULL)
		gcred_secret_free(s);
	gcred_caps_free(&cr->caps);
	ghttp_free(cr->http);
	free(cr);
	g->cred = NULL;
}
