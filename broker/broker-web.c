/*
 * The broker's HTTP listener (broker-web.h): revocation webhooks and the admin HTTP API.
 *
 * Everything runs on the broker's event loop. A request is answered from its callback,
 * except when the signing keys it needs are being (re)fetched: then it waits, bounded by
 * WEB_KEY_WAIT_MS, and is counted in flight meanwhile. Validation is in broker-set.c; what a
 * valid signal does is in broker-revoke.c; the admin operations are the admin socket's
 * (admin_dispatch_as), so both doors behave the same.
 *
 * Lifetimes: a waiting request (struct web_req) may lose its connection; libevent then
 * detaches the evhttp_request from it and frees it when we answer, so answering is always
 * safe and is the only way a struct web_req ends.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-admin.h"
#include "broker/broker-http.h"
#include "broker/broker-jwt.h"
#include "broker/broker-oidc.h"
#include "broker/broker-set.h"
#include "broker/broker-store.h"
#include "broker/broker-web.h"
#include "broker/broker.h"

#define WEB_MAX_BODY (64 * 1024)
#define WEB_MAX_HEADERS (8 * 1024)
#define WEB_TIMEOUT 10		   /* seconds to send a request (headers and body) */
#define WEB_KEY_WAIT_MS 5000	   /* a request waits this long for keys being fetched */
#define WEB_TICK_MS 20		   /* how often waiting requests look again */
#define WEB_JWKS_REFRESH_MIN 30000 /* ms between two unknown-kid refetches (transmitter) */
#define WEB_JWKS_BACKOFF_MAX 60	   /* s between start-up fetch retries, at most */
#define WEB_SKEW 60
#define WEB_MAX_TOKEN (16 * 1024) /* an admin bearer token */

enum web_kind {
	WEB_LOGOUT,
	WEB_EVENTS,
	WEB_ADMIN,
};

/* One request being handled (synchronously, or waiting for keys). */
struct web_req {
	TAILQ_ENTRY(web_req) entry; /* web->waiting */
	struct web *w;
	struct evhttp_request *req;
	enum web_kind kind;
	enum evhttp_cmd_type method;
	char *path;  /* decoded path, without the query */
	char *query; /* raw query, may be NULL */
	char *body;  /* NUL-terminated copy */
	size_t len;
	char *token;	/* admin: the bearer token (wiped) */
	bool refreshed; /* an unknown kid already asked for fresh keys once */
	bool waiting;
	int64_t deadline_ms;

	/* for the audit event of the answer (web_audit): never a token */
	const char *op;	       /* admin operation, once known (static string) */
	char caller_name[128]; /* admin: the token's user name, once verified */
	char caller_uid[256];  /* admin: the token's sub, once verified */
	char caller_app[256];  /* webhooks: the issuer, once verified */
	char detail[400];      /* the result or the reason, when the answer body has none */
};

TAILQ_HEAD(web_req_list, web_req);

struct web {
	struct broker *b;
	struct evhttp *http;
	SSL_CTX *ssl;
	struct evconnlistener **listeners;
	size_t nlisteners;
	size_t inflight;
	struct web_req_list waiting;
	struct event *ev_tick;

	/* the SSF transmitter */
	const char *ssf_iss;
	const char *ssf_aud;
	const char *ssf_url; /* NULL: the transmitter is the IdP, its keys are oidc_jwks() */
	struct jwks *ssf_jwks;
	struct http_req *ssf_req;
	struct event *ev_ssf;
	int ssf_backoff;
	int64_t ssf_last_refresh_ms; /* -1: never */
	bool ssf_failing;
};

static int64_t
web_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- answers ------------------------------------------------------------------------- */

static void
web_req_free(struct web_req *r)
{
	if (r->waiting)
		TAILQ_REMOVE(&r->w->waiting, r, entry);
	if (r->token != NULL) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	if (r->body != NULL) {
		/* a logout token or SET body is not secret, but a bearer token is not in it */
		free(r->body);
	}
	free(r->path);
	free(r->query);
	free(r);
}

/* Sends the answer and ends r. Every answer is no-store: none is meant to be cached. */
static void
web_send(struct evhttp_request *req, int code, const char *reason, const char *ctype,
	 const char *body, size_t len, const char *const *extra)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();
	size_t i;

	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Pragma", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (ctype != NULL)
		evhttp_add_header(h, "Content-Type", ctype);
	for (i = 0; extra != NULL && extra[i] != NULL && extra[i + 1] != NULL; i += 2)
		evhttp_add_header(h, extra[i], extra[i + 1]);
	if (buf != NULL && body != NULL && len > 0)
		evbuffer_add(buf, body, len);
	evhttp_send_reply(req, code, reason, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

static const char *
web_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "OTHER";
	}
}

/* The name of what a request asks for, before (or without) parsing it. */
static const char *
web_operation(const char *path)
{
	if (path == NULL)
		return "unknown";
	if (strcmp(path, "/v1/revocation/backchannel-logout") == 0)
		return "revocation.backchannel-logout";
	if (strcmp(path, "/v1/revocation/events") == 0)
		return "revocation.security-event";
	if (strncmp(path, "/v1/", 4) == 0)
		return "admin";
	return "unknown";
}

/*
 * API Activity (6003) for one answered request: every webhook and admin API call, accepted
 * or refused, with the caller (address; the verified user or issuer once known), what it
 * asked for, the status and why. detail is r->detail, else the error the body carries.
 */
static void
web_audit(struct broker *b, struct evhttp_request *req, enum evhttp_cmd_type method,
	  const char *path, const char *op, int activity, int code, const json_t *body,
	  const struct web_req *r, const char *detail)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct broker_api_call call;
	const json_t *e = NULL;
	char *addr = NULL;
	ev_uint16_t port = 0;

	memset(&call, 0, sizeof(call));
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	if ((detail == NULL || *detail == '\0') && body != NULL &&
	    ((e = json_object_get(body, "error_description")) != NULL ||
	     (e = json_object_get(body, "description")) != NULL ||
	     (e = json_object_get(body, "error")) != NULL))
		detail = json_string_value(e);
	call.activity = activity;
	call.operation = op;
	call.method = web_method_name(method);
	call.path = path;
	if (r != NULL) {
		call.caller_name = r->caller_name[0] ? r->caller_name : NULL;
		call.caller_uid = r->caller_uid[0] ? r->caller_uid : NULL;
		call.caller_app = r->caller_app[0] ? r->caller_app : NULL;
	}
	call.src_ip = addr;
	call.src_port = port;
	call.src_name = "unknown";
	call.status = code;
	call.success = code >= 200 && code < 300;
	call.detail = detail != NULL && *detail ? detail : NULL;
	broker_audit_api(b, &call);
}

static int
web_req_activity(const struct web_req *r)
{
	if (r->kind != WEB_ADMIN)
		return OCSF_API_CREATE; /* a webhook delivers a new security event */
	if (r->op != NULL)
		return admin_op_activity(r->op);
	return r->method == EVHTTP_REQ_GET ? OCSF_API_READ : OCSF_API_UPDATE;
}

static void
web_answer(struct web_req *r, int code, const char *reason, json_t *body, const char *const *extra)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	web_audit(r->w->b, r->req, r->method, r->path,
		  r->op != NULL ? r->op : web_operation(r->path), web_req_activity(r), code, body,
		  r, r->detail);

	web_send(r->req, code, reason, text != NULL ? "application/json" : NULL, text,
		 text != NULL ? strlen(text) : 0, extra);
	free(text);
	json_decref(body);
	r->w->inflight--;
	web_req_free(r);
}

static const char *
web_peer(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon == NULL)
		return "(gone)";
	evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, len, "%s:%u", addr != NULL ? addr : "?", (unsigned)port);
	return buf;
}

/* ---- keys ---------------------------------------------------------------------------- */

static void web_ssf_fetch(struct web *w, bool refresh);

static void
web_ssf_done(const struct http_result *res, void *arg)
{
	struct web *w = arg;
	struct timeval tv = { 0, 0 };
	char err[256] = "";
	struct jwks *ks = NULL;

	w->ssf_req = NULL;
	if (!res->ok)
		snprintf(err, sizeof(err), "%s", res->error);
	else if (res->status != 200)
		snprintf(err, sizeof(err), "HTTP %ld", res->status);
	else if (res->body_len > JWKS_MAX_LEN)
		snprintf(err, sizeof(err), "the key set is larger than %d bytes", JWKS_MAX_LEN);
	else if ((ks = jwks_parse(res->body, res->body_len, err, sizeof(err))) == NULL ||
		 jwks_count(ks) == 0) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "no usable signing key");
		jwks_free(ks);
		ks = NULL;
	}
	if (ks == NULL) {
		if (!w->ssf_failing)
			log_warnx("SSF transmitter %s: cannot fetch its keys from %s: %s; SETs "
				  "are refused until it answers",
				  w->ssf_iss, w->ssf_url, err);
		w->ssf_failing = true;
		if (w->ssf_jwks == NULL) {
			/* never had keys: keep trying, with backoff */
			tv.tv_sec = w->ssf_backoff;
			w->ssf_backoff = w->ssf_backoff * 2 > WEB_JWKS_BACKOFF_MAX ?
						 WEB_JWKS_BACKOFF_MAX :
						 w->ssf_backoff * 2;
			evtimer_add(w->ev_ssf, &tv);
		}
		return;
	}
	jwks_free(w->ssf_jwks);
	w->ssf_jwks = ks;
	w->ssf_failing = false;
	w->ssf_backoff = 1;
	log_info("SSF transmitter %s: %zu signing keys from %s", w->ssf_iss, jwks_count(ks),
		 w->ssf_url);
}

static void
web_ssf_fetch(struct web *w, bool refresh)
{
	struct broker *b = w->b;
	int64_t now = web_mono_ms();

	if (w->ssf_url == NULL || w->ssf_req != NULL || b->http == NULL)
		return;
	if (refresh) {
		/* a forger's made-up kids must not make us hammer the transmitter */
		if (w->ssf_last_refresh_ms >= 0 &&
		    now - w->ssf_last_refresh_ms < WEB_JWKS_REFRESH_MIN)
			return;
		w->ssf_last_refresh_ms = now;
	}
	w->ssf_req = http_request(b->http, w->ssf_url, NULL, NULL, NULL, 0, web_ssf_done, w);
	if (w->ssf_req == NULL)
		log_warnx("SSF transmitter %s: cannot start a request (out of memory?)",
			  w->ssf_iss);
}

static void
web_ssf_timer(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	struct timeval tv = { 0, 100000 };

	/* main() creates the HTTP client after web_open(): wait for it */
	if (w->b->http == NULL) {
		evtimer_add(w->ev_ssf, &tv);
		return;
	}
	web_ssf_fetch(w, false);
}

/* The key set for r's tokens (NULL: none yet), and whether a fetch is under way. */
static const struct jwks *
web_keys(struct web_req *r, bool *fetching)
{
	struct web *w = r->w;
	struct broker *b = w->b;

	if (r->kind == WEB_EVENTS && w->ssf_url != NULL) {
		*fetching = w->ssf_req != NULL || (w->ssf_jwks == NULL && !w->ssf_failing);
		return w->ssf_jwks;
	}
	*fetching = b->oidc != NULL && oidc_jwks_refreshing(b->oidc);
	return b->oidc != NULL ? oidc_jwks(b->oidc) : NULL;
}

/* Unknown kid: ask for fresh keys once per request. True if r should wait for them. */
static bool
web_refresh_keys(struct web_req *r)
{
	struct web *w = r->w;
	bool fetching = false;

	if (r->refreshed)
		return false;
	r->refreshed = true;
	if (r->kind == WEB_EVENTS && w->ssf_url != NULL) {
		web_ssf_fetch(w, true);
		return w->ssf_req != NULL;
	}
	if (w->b->oidc == NULL)
		return false;
	(void)oidc_jwks_refresh_request(w->b->oidc);
	(void)web_keys(r, &fetching);
	return fetching;
}

static void
web_wait(struct web_req *r)
{
	struct timeval tv = { 0, WEB_TICK_MS * 1000 };

	if (!r->waiting) {
		r->waiting = true;
		if (r->deadline_ms == 0)
			r->deadline_ms = web_mono_ms() + WEB_KEY_WAIT_MS;
		TAILQ_INSERT_TAIL(&r->w->waiting, r, entry);
	}
	if (!evtimer_pending(r->w->ev_tick, NULL))
		evtimer_add(r->w->ev_tick, &tv);
}

/* ---- acting on validated signals --------------------------------------------------------- */

static void
web_filter(const struct set_subject *s, struct store_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->iss = s->iss;
	f->sub = s->sub;
	f->sid = s->sid;
	f->email = s->email;
	f->id = s->id;
}

struct web_subs {
	char **v;
	size_t n;
};

static void
web_collect_sub(const struct store_session *s, void *arg)
{
	struct web_subs *subs = arg;
	char **tmp;
	size_t i;

	for (i = 0; i < subs->n; i++)
		if (strcmp(subs->v[i], s->sub) == 0)
			return;
	if (subs->n >= 64 || (tmp = reallocarray(subs->v, subs->n + 1, sizeof(*tmp))) == NULL)
		return;
	subs->v = tmp;
	if ((subs->v[subs->n] = strdup(s->sub)) != NULL)
		subs->n++;
}

/*
 * Lock the subject's user(s): the lock key names a user by sub ("sub:SUB"). A subject given
 * by email or session id is resolved through the sessions the broker knows; a user without
 * any session here cannot be named and needs no lock to lose nothing now (logged).
 */
static int
web_lock(struct web *w, const struct set_action *a, const char *actor, int *count)
{
	struct broker *b = w->b;
	struct web_subs subs = { 0 };
	struct store_filter f;
	char key[SET_MAX_STRING + 8];
	size_t i;
	int rc = 0, n = 0;

	if (a->subj.iss != NULL && strcmp(a->subj.iss, b->cfg.oidc_issuer) != 0) {
		log_info("%s: the subject belongs to issuer %s, not ours: nothing to lock", actor,
			 a->subj.iss);
		return revoke_matching(
			b, &(struct store_filter){ .iss = a->subj.iss, .sub = a->subj.sub }, a->why,
			actor, count);
	}
	if (a->subj.sub != NULL) {
		if ((subs.v = calloc(1, sizeof(char *))) == NULL ||
		    (subs.v[0] = strdup(a->subj.sub)) == NULL) {
			free(subs.v);
			return -1;
		}
		subs.n = 1;
	} else {
		web_filter(&a->subj, &f);
		if (store_session_match(b->store, &f, broker_now(), web_collect_sub, &subs) < 0)
			rc = -1;
	}
	if (subs.n == 0 && rc == 0)
		log_warnx("%s: no session of the subject is known here: the user cannot be named "
			  "for a lock (nothing to revoke either)",
			  actor);
	for (i = 0; i < subs.n; i++) {
		snprintf(key, sizeof(key), "sub:%s", subs.v[i]);
		if (revoke_lock_user(b, key, 0, a->why, actor, &n) != 0)
			rc = -1;
		*count += n;
		free(subs.v[i]);
	}
	free(subs.v);
	/* sessions of the subject the lock key does not cover (another issuer's) */
	web_filter(&a->subj, &f);
	if (revoke_matching(b, &f, a->why, actor, &n) != 0)
		rc = -1;
	*count += n;
	return rc;
}

/* Carries out p's actions. Returns 0, or -1 if the store failed (some may be undone). */
static int
web_act(struct web *w, const struct set_parsed *p, const char *source, int *total, char *summary,
	size_t summarylen)
{
	struct store_filter f;
	char actor[300];
	const char *ev;
	size_t i, used = 0;
	int n, rc = 0, k;

	*total = 0;
	summary[0] = '\0';
	for (i = 0; i < p->n; i++) {
		const struct set_action *a = &p->act[i];

		snprintf(actor, sizeof(actor), "%s %s from %.200s", source, a->event, p->iss);
		n = 0;
		switch (a->kind) {
		case SET_ACT_NONE:
			log_info("%s (jti %.100s): nothing to do", actor, p->jti);
			continue;
		case SET_ACT_REVOKE:
			web_filter(&a->subj, &f);
			if (revoke_matching(w->b, &f, a->why, actor, &n) != 0)
				rc = -1;
			break;
		case SET_ACT_LOCK:
			if (web_lock(w, a, actor, &n) != 0)
				rc = -1;
			break;
		}
		*total += n;
		log_info("%s (jti %.100s): %d session%s revoked%s", actor, p->jti, n,
			 n == 1 ? "" : "s", a->kind == SET_ACT_LOCK ? ", user locked" : "");
		/* the event type's last path segment: "session-revoked", "account-disabled" */
		ev = strrchr(a->event, '/') != NULL ? strrchr(a->event, '/') + 1 : a->event;
		if (used < summarylen) {
			k = snprintf(summary + used, summarylen - used,
				     "%s%.60s: %d session%s revoked%s", used ? "; " : "", ev, n,
				     n == 1 ? "" : "s",
				     a->kind == SET_ACT_LOCK ? ", user locked" : "");
			if (k > 0)
				used += (size_t)k;
		}
	}
	return rc;
}

/* ---- POST /v1/revocation/backchannel-logout ------------------------------------------------ */

static void
web_logout_error(struct web_req *r, int code, const char *desc)
{
	char peer[80];

	log_info("back-channel logout from %s refused: %s", web_peer(r->req, peer, sizeof(peer)),
		 desc);
	web_answer(r, code, NULL,
		   json_pack("{s:s, s:s}", "error",
			     code == 400 ? "invalid_request" : "server_error", "error_description",
			     desc),
		   NULL);
}

static void
web_logout(struct web_req *r, bool final)
{
	struct web *w = r->w;
	struct broker *b = w->b;
	struct set_expect e = { 0 };
	struct set_parsed p = { 0 };
	const struct jwks *ks;
	const char *const *algs;
	size_t nalgs = 0;
	char desc[256] = "";
	bool fetching = false;
	enum set_err err;
	int rc, count = 0;

	ks = web_keys(r, &fetching);
	if (ks == NULL) {
		if (fetching && !final) {
			web_wait(r);
			return;
		}
		{
			web_answer(r, 503, NULL,
				   json_pack("{s:s, s:s}", "error", "temporarily_unavailable",
					     "error_description",
					     "the identity provider's keys are not available yet"),
				   (const char *const[]){ "Retry-After", "5", NULL, NULL });
			return;
		}
	}
	algs = oidc_algs(b->oidc, &nalgs);
	e.issuer = b->cfg.oidc_issuer;
	e.audience = b->cfg.oidc_client_id;
	e.now = broker_now();
	err = set_logout_validate(ks, algs, nalgs, r->body, r->len, &e, &p, desc, sizeof(desc));
	if (err == SET_ERR_UNKNOWN_KID && !final && web_refresh_keys(r)) {
		web_wait(r);
		return;
	}
	if (err != SET_OK) {
		web_logout_error(r, 400, desc);
		return;
	}
	/* Back-Channel Logout 2.6: a jti seen before is refused, remembered across restarts */
	rc = store_jti_use(b->store, p.iss, p.jti, p.keep_until, e.now);
	if (rc != 0) {
		set_parsed_clear(&p);
		{
			web_logout_error(r, rc > 0 ? 400 : 500,
					 rc > 0 ?
						 "this logout token was already used (jti replay)" :
						 "the broker's database failed");
			return;
		}
	}
	snprintf(r->caller_app, sizeof(r->caller_app), "%s", p.iss);
	if (web_act(w, &p, "back-channel logout", &count, r->detail, sizeof(r->detail)) != 0) {
		set_parsed_clear(&p);
		{
			web_logout_error(r, 500, "the broker's database failed");
			return;
		}
	}
	set_parsed_clear(&p);
	/* 200 also when nothing matched: the user is already logged out here */
	web_answer(r, 200, "OK", NULL, NULL);
}

/* ---- POST /v1/revocation/events ---------------------------------------------------------- */

static void
web_set_error(struct web_req *r, enum set_err err, const char *desc)
{
	char peer[80];

	log_info("SET from %s refused: %s: %s", web_peer(r->req, peer, sizeof(peer)),
		 set_err_code(err), desc);
	web_answer(r, 400, "Bad Request",
		   json_pack("{s:s, s:s}", "err", set_err_code(err), "description", desc), NULL);
}

/* "type/subtype" of Content-Type, without parameters, compared case-insensitively. */
static bool
web_ctype_is(struct evhttp_request *req, const char *want)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t n;

	if (v == NULL)
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, "; \t");
	return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

static void
web_events(struct web_req *r, bool final)
{
	struct web *w = r->w;
	struct broker *b = w->b;
	struct set_expect e = { 0 };
	struct set_parsed p = { 0 };
	const struct jwks *ks;
	const char *const *algs;
	size_t nalgs = 0;
	char desc[256] = "";
	bool fetching = false;
	enum set_err err;
	int rc, count = 0;

	if (!web_ctype_is(r->req, "application/secevent+jwt")) {
		web_set_error(r, SET_ERR_INVALID_REQUEST,
			      "the Content-Type must be application/secevent+jwt");
		return;
	}
	ks = web_keys(r, &fetching);
	if (ks == NULL) {
		if (fetching && !final) {
			web_wait(r);
			return;
		}
		/* a transient condition: the transmitter retries a 5xx later (RFC 8935 2.4) */
		{
			web_answer(r, 503, NULL,
				   json_pack("{s:s, s:s}", "err", "temporarily_unavailable",
					     "description",
					     "the transmitter's keys are not available yet"),
				   (const char *const[]){ "Retry-After", "5", NULL, NULL });
			return;
		}
	}
	algs = oidc_algs(b->oidc, &nalgs);
	e.issuer = w->ssf_iss;
	e.audience = w->ssf_aud;
	e.required_group = b->cfg.required_group;
	e.groups_claim = b->cfg.oidc_groups_claim;
	e.now = broker_now();
	err = set_validate(ks, algs, nalgs, r->body, r->len, &e, &p, desc, sizeof(desc));
	if (err == SET_ERR_UNKNOWN_KID && !final && web_refresh_keys(r)) {
		web_wait(r);
		return;
	}
	if (err != SET_OK) {
		web_set_error(r, err, desc);
		return;
	}
	snprintf(r->caller_app, sizeof(r->caller_app), "%s", p.iss);
	/*
	 * A SET seen before (same iss and jti) is acknowledged with 202 and not acted on again:
	 * a transmitter retransmits when our 202 got lost (RFC 8935 2.2, 2.4), and a 400
	 * would make it report an error for a SET we did process. A replay by anyone else
	 * achieves nothing, as the SET already took effect.
	 */
	rc = store_jti_use(b->store, p.iss, p.jti, p.keep_until, e.now);
	if (rc < 0) {
		set_parsed_clear(&p);
		{
			web_answer(r, 500, NULL,
				   json_pack("{s:s, s:s}", "err", "server_error", "description",
					     "the broker's database failed"),
				   NULL);
			return;
		}
	}
	if (rc > 0) {
		log_info("SET %.100s from %.200s: already processed (duplicate): acknowledged, "
			 "nothing done",
			 p.jti, p.iss);
		snprintf(r->detail, sizeof(r->detail),
			 "already processed (a retransmission of the same SET): nothing done");
		set_parsed_clear(&p);
		{
			web_answer(r, 202, "Accepted", NULL, NULL);
			return;
		}
	}
	rc = web_act(w, &p, "SET", &count, r->detail, sizeof(r->detail));
	set_parsed_clear(&p);
	if (rc != 0) {
		web_answer(r, 500, NULL,
			   json_pack("{s:s, s:s}", "err", "server_error", "description",
				     "the broker's database failed"),
			   NULL);
		return;
	}
	web_answer(r, 202, "Accepted", NULL, NULL);
}

/* ---- the admin API ------------------------------------------------------------------------ */

static const char *const web_www_auth[] = { "WWW-Authenticate", "Bearer realm=\"saw-broker\"", NULL,
					    NULL };

static void
web_admin_refuse(struct web_req *r, int code, const char *error, const char *desc)
{
	char hdr[300], peer[80];
	const char *extra[] = { "WWW-Authenticate", hdr, NULL, NULL };

	log_info("admin API: %s refused (%d): %s", web_peer(r->req, peer, sizeof(peer)), code,
		 desc);
	if (error != NULL)
		snprintf(hdr, sizeof(hdr),
			 "Bearer realm=\"saw-broker\", error=\"%s\", error_description=\"%s\"",
			 error, desc);
	web_answer(r, code, NULL, json_pack("{s:b, s:s}", "ok", 0, "error", desc),
		   error != NULL ? extra :
		   code == 401	 ? web_www_auth :
				   NULL);
}

static bool
web_claim_has(const json_t *v, const char *want)
{
	const json_t *x;
	size_t i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), want) == 0;
	json_array_foreach(v, i, x) {
		if (json_is_string(x) && strcmp(json_string_value(x), want) == 0)
			return true;
	}
	return false;
}

static bool
web_time(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 253402300799.0) {
		*out = (int64_t)json_real_value(v);
		return true;
	}
	return false;
}

/*
 * An OAuth 2.0 JWT access token (RFC 9068) from our IdP for the admin API: typ at+jwt (so an
 * ID token, also signed by the IdP, never passes as one), signature, iss, aud =
 * AdminAPIAudience, exp, and the AdminGroup in the groups claim. Returns 0 with *claims,
 * 1 to wait for keys, or answers r itself and returns -1.
 */
static int
web_admin_auth(struct web_req *r, bool final, json_t **claims)
{
	struct web *w = r->w;
	struct broker *b = w->b;
	const char *aud = b->cfg.admin_api_audience != NULL ? b->cfg.admin_api_audience :
							      b->cfg.oidc_client_id;
	const char *const *algs;
	const struct jwks *ks;
	enum jwt_status st;
	bool fetching = false;
	int64_t now = broker_now(), t;
	size_t nalgs = 0;
	char typ[64];
	json_t *c = NULL;

	*claims = NULL;
	if (r->token == NULL) {
		web_admin_refuse(r, 401, NULL,
				 "authentication required: send Authorization: Bearer with an "
				 "access token from the identity provider");
		return -1;
	}
	if ((ks = web_keys(r, &fetching)) == NULL) {
		if (fetching && !final)
			return 1;
		web_answer(r, 503, NULL,
			   json_pack("{s:b, s:s}", "ok", 0, "error",
				     "the identity provider's keys are not available yet"),
			   (const char *const[]){ "Retry-After", "5", NULL, NULL });
		return -1;
	}
	algs = oidc_algs(b->oidc, &nalgs);
	st = jwt_verify(ks, r->token, strlen(r->token), algs, nalgs, &c);
	if (st == JWT_UNKNOWN_KID && !final && web_refresh_keys(r))
		return 1;
	if (st != JWT_OK) {
		web_admin_refuse(r, 401, "invalid_token", jwt_status_str(st));
		return -1;
	}
	if (jwt_header_typ(r->token, strlen(r->token), typ, sizeof(typ)) != 0 ||
	    (strcasecmp(typ, "at+jwt") != 0 && strcasecmp(typ, "application/at+jwt") != 0)) {
		json_decref(c);
		web_admin_refuse(
			r, 401, "invalid_token",
			"not an access token (JWT typ at+jwt): ID tokens are not accepted");
		return -1;
	}
	if (!web_claim_has(json_object_get(c, "iss"), b->cfg.oidc_issuer) ||
	    !json_is_string(json_object_get(c, "iss"))) {
		json_decref(c);
		web_admin_refuse(r, 401, "invalid_token", "the token's issuer is not OIDCIssuer");
		return -1;
	}
	if (!web_claim_has(json_object_get(c, "aud"), aud)) {
		json_decref(c);
		web_admin_refuse(r, 401, "invalid_token",
				 "the token's audience is not this broker's admin API "
				 "(AdminAPIAudience)");
		return -1;
	}
	if (!web_time(json_object_get(c, "exp"), &t) || now > t + WEB_SKEW) {
		json_decref(c);
		web_admin_refuse(r, 401, "invalid_token", "the token has expired or has no exp");
		return -1;
	}
	if ((json_object_get(c, "iat") != NULL &&
	     (!web_time(json_object_get(c, "iat"), &t) || t > now + WEB_SKEW)) ||
	    (json_object_get(c, "nbf") != NULL &&
	     (!web_time(json_object_get(c, "nbf"), &t) || t > now + WEB_SKEW))) {
		json_decref(c);
		web_admin_refuse(r, 401, "invalid_token", "the token is not valid yet");
		return -1;
	}
	if (!json_is_string(json_object_get(c, "sub"))) {
		json_decref(c);
		web_admin_refuse(r, 401, "invalid_token", "the token has no subject");
		return -1;
	}
	if (!web_claim_has(json_object_get(c, b->cfg.oidc_groups_claim), b->cfg.admin_group)) {
		json_decref(c);
		web_admin_refuse(r, 403, "insufficient_scope",
				 "the token's user is not in the AdminGroup");
		return -1;
	}
	*claims = c;
	return 0;
}

/* Splits the decoded path into at most 4 segments after "/v1/". */
static size_t
web_segments(char *path, char **seg, size_t max)
{
	size_t n = 0;
	char *p = path, *slash;

	if (strncmp(p, "/v1/", 4) != 0)
		return 0;
	p += 4;
	while (*p != '\0') {
		if (n == max)
			return max + 1;
		slash = strchr(p, '/');
		if (slash != NULL)
			*slash = '\0';
		seg[n++] = p;
		if (slash == NULL)
			break;
		p = slash + 1;
		if (*p == '\0')
			return max + 1; /* trailing slash */
	}
	return n;
}

/* The admin operation path (a copy of the request's, cut up here) names, or NULL; *param and
 * *pval its path parameter (pointing into path). */
static const char *
web_admin_match(char *path, bool get, const char **param, const char **pval)
{
	char *seg[5];
	const char *op = NULL;
	size_t n;

	*param = *pval = NULL;
	n = web_segments(path, seg, 4);
	if (n == 1 && strcmp(seg[0], "sessions") == 0 && get)
		op = "session.list";
	else if (n == 1 && strcmp(seg[0], "workspaces") == 0 && get)
		op = "workspace.list";
	else if (n == 1 && strcmp(seg[0], "locks") == 0 && get)
		op = "lock.list";
	else if (n == 3 && !get && strcmp(seg[0], "sessions") == 0 && strcmp(seg[2], "revoke") == 0)
		op = "session.revoke", *param = "id", *pval = seg[1];
	else if (n == 3 && !get && strcmp(seg[0], "users") == 0 && strcmp(seg[2], "revoke") == 0)
		op = "user.revoke", *param = "user", *pval = seg[1];
	else if (n == 3 && !get && strcmp(seg[0], "users") == 0 && strcmp(seg[2], "lock") == 0)
		op = "user.lock", *param = "user", *pval = seg[1];
	else if (n == 3 && !get && strcmp(seg[0], "users") == 0 && strcmp(seg[2], "unlock") == 0)
		op = "user.unlock", *param = "user", *pval = seg[1];
	else if (n == 3 && !get && strcmp(seg[0], "workspaces") == 0 && strcmp(seg[2], "kill") == 0)
		op = "workspace.kill", *param = "name", *pval = seg[1];
	else if (n == 3 && !get && strcmp(seg[0], "workspaces") == 0 &&
		 strcmp(seg[2], "revive") == 0)
		op = "workspace.revive", *param = "name", *pval = seg[1];
	return op;
}

/* The admin operation a request names, with its path parameters; body members are merged
 * (an unknown member is refused by the operation itself, as on the socket). */
static json_t *
web_admin_request(struct web_req *r, char *err, size_t errlen, int *code)
{
	char *path;
	const char *op = NULL, *param = NULL, *pval = NULL;
	struct evkeyvalq q;
	json_t *req = NULL, *body = NULL, *v;
	json_error_t jerr;
	const char *key, *user, *all;
	bool get = r->method == EVHTTP_REQ_GET;

	*code = 404;
	if ((path = strdup(r->path)) == NULL)
		return NULL;
	op = web_admin_match(path, get, &param, &pval);
	r->op = op;
	if (op == NULL) {
		snprintf(err, errlen, "no such admin API operation (%s %.100s)",
			 get ? "GET" : "POST", r->path);
		free(path);
		return NULL;
	}
	*code = 400;
	if ((req = json_pack("{s:s}", "op", op)) == NULL)
		goto nomem;
	if (param != NULL && json_object_set_new(req, param, json_string(pval)) != 0) {
		snprintf(err, errlen, "the path parameter is not valid UTF-8");
		goto fail;
	}
	if (strcmp(op, "session.list") == 0 && r->query != NULL) {
		TAILQ_INIT(&q);
		if (evhttp_parse_query_str(r->query, &q) != 0) {
			snprintf(err, errlen, "the query string is malformed");
			goto fail;
		}
		user = evhttp_find_header(&q, "user");
		all = evhttp_find_header(&q, "all");
		if ((user != NULL && json_object_set_new(req, "user", json_string(user)) != 0) ||
		    (all != NULL &&
		     json_object_set_new(req, "all",
					 json_boolean(strcmp(all, "0") != 0 &&
						      strcmp(all, "false") != 0)) != 0)) {
			evhttp_clear_headers(&q);
			snprintf(err, errlen, "the query parameters are not valid UTF-8");
			goto fail;
		}
		evhttp_clear_headers(&q);
	}
	if (!get && r->len > 0) {
		body = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(body)) {
			char vis[128];

			/* jansson quotes the offending input: made printable (err becomes JSON) */
			snprintf(err, errlen, "the body must be a JSON object (%s)",
				 body == NULL ? conf_vis(jerr.text, vis, sizeof(vis)) :
						"not an object");
			goto fail;
		}
		json_object_foreach(body, key, v) {
			if (json_object_get(req, key) != NULL || strcmp(key, "id") == 0) {
				snprintf(err, errlen,
					 "\"%.40s\" cannot be given in the body of this request",
					 key);
				goto fail;
			}
			if (json_object_set(req, key, v) != 0)
				goto nomem;
		}
	}
	json_decref(body);
	free(path);
	return req;
nomem:
	snprintf(err, errlen, "out of memory");
	*code = 500;
fail:
	json_decref(body);
	json_decref(req);
	free(path);
	return NULL;
}

static void
web_admin(struct web_req *r, bool final)
{
	struct broker *b = r->w->b;
	json_t *claims = NULL, *req = NULL, *resp = NULL, *err_v;
	const char *who, *name, *param, *pval;
	char *path;
	char err[300] = "", actor[300];
	int code, rc;

	if (r->op == NULL && (path = strdup(r->path)) != NULL) {
		/* named before authentication, so that a refused call says what it asked for */
		r->op = web_admin_match(path, r->method == EVHTTP_REQ_GET, &param, &pval);
		free(path);
	}
	if (b->cfg.admin_group == NULL) {
		web_answer(r, 403, NULL,
			   json_pack("{s:b, s:s}", "ok", 0, "error",
				     "the admin API is disabled: set AdminGroup in the broker's "
				     "configuration"),
			   NULL);
		return;
	}
	if ((rc = web_admin_auth(r, final, &claims)) != 0) {
		if (rc > 0)
			web_wait(r);
		return;
	}
	who = json_string_value(json_object_get(claims, "sub"));
	name = json_string_value(json_object_get(claims, b->cfg.oidc_username_claim));
	snprintf(r->caller_uid, sizeof(r->caller_uid), "%s", who);
	if (name != NULL)
		snprintf(r->caller_name, sizeof(r->caller_name), "%s", name);
	snprintf(actor, sizeof(actor), "admin API %.100s%s%.100s%s", who, name != NULL ? " (" : "",
		 name != NULL ? name : "", name != NULL ? ")" : "");
	if ((req = web_admin_request(r, err, sizeof(err), &code)) == NULL) {
		json_decref(claims);
		web_answer(r, code, NULL, json_pack("{s:b, s:s}", "ok", 0, "error", err), NULL);
		return;
	}
	json_decref(claims);
	log_info("%s: %s %s", actor, r->method == EVHTTP_REQ_GET ? "GET" : "POST", r->path);
	if (admin_dispatch_as(b, actor, req, &resp) != 0) {
		json_decref(req);
		web_answer(r, 500, NULL, NULL, NULL);
		return;
	}
	json_decref(req);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		err_v = json_object_get(resp, "error");
		snprintf(r->detail, sizeof(r->detail), "%s",
			 json_is_string(err_v) ? json_string_value(err_v) : "refused");
		code = json_is_string(err_v) && strncmp(json_string_value(err_v), "no ", 3) == 0 ?
			       404 :
			       400;
		web_answer(r, code, NULL, resp, NULL);
		return;
	}
	admin_result_summary(resp, r->detail, sizeof(r->detail));
	web_answer(r, 200, "OK", resp, NULL);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static void
web_run(struct web_req *r, bool final)
{
	switch (r->kind) {
	case WEB_LOGOUT:
		web_logout(r, final);
		break;
	case WEB_EVENTS:
		web_events(r, final);
		break;
	case WEB_ADMIN:
		web_admin(r, final);
		break;
	}
}

static void
web_tick(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	struct web_req *r, *next;
	struct timeval tv = { 0, WEB_TICK_MS * 1000 };
	int64_t now = web_mono_ms();
	bool fetching;

	for (r = TAILQ_FIRST(&w->waiting); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		fetching = false;
		(void)web_keys(r, &fetching);
		if (fetching && now < r->deadline_ms)
			continue;
		TAILQ_REMOVE(&w->waiting, r, entry);
		r->waiting = false;
		/* final once the deadline passed; else one more try (it may refresh no more) */
		web_run(r, now >= r->deadline_ms);
		/* r may be waiting again (new fetch started meanwhile): next is still valid,
		 * as only r itself can have been freed or re-queued at the tail */
	}
	if (!TAILQ_EMPTY(&w->waiting))
		evtimer_add(w->ev_tick, &tv);
}

static void
web_request(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	struct broker *b = w->b;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *rawpath = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	const char *auth;
	struct web_req *r = NULL;
	char *path = NULL;
	size_t len, plen = 0;

	if (w->inflight >= (size_t)b->cfg.http_max_requests) {
		/* bounded: a flood of slow requests must not grow memory or starve SSH */
		web_audit(b, req, method, rawpath, web_operation(rawpath), OCSF_API_CREATE, 503,
			  NULL, NULL, "too many requests in flight");
		web_send(req, 503, "Service Unavailable", "application/json",
			 "{\"error\":\"too many requests in flight, retry later\"}", 52,
			 (const char *const[]){ "Retry-After", "1", NULL, NULL });
		return;
	}
	if (rawpath == NULL || *rawpath != '/' ||
	    (path = evhttp_uridecode(rawpath, 0, &plen)) == NULL || strlen(path) != plen) {
		free(path);
		web_audit(b, req, method, NULL, "unknown", OCSF_API_CREATE, 400, NULL, NULL,
			  "malformed request path");
		web_send(req, 400, "Bad Request", "application/json",
			 "{\"error\":\"malformed request path\"}", 34, NULL);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		free(path);
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
			web_send(req, 405, "Method Not Allowed", NULL, NULL, 0,
				 (const char *const[]){ "Allow", "GET", NULL, NULL });
			return;
		}
		web_send(req, 200, "OK", "text/plain", "ok\n", 3, NULL);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto nomem;
	r->w = w;
	r->req = req;
	r->method = method;
	r->path = path;
	path = NULL;
	if (strcmp(r->path, "/v1/revocation/backchannel-logout") == 0)
		r->kind = WEB_LOGOUT;
	else if (strcmp(r->path, "/v1/revocation/events") == 0)
		r->kind = WEB_EVENTS;
	else if (strncmp(r->path, "/v1/", 4) == 0)
		r->kind = WEB_ADMIN;
	else {
		web_audit(b, req, method, r->path, "unknown", OCSF_API_READ, 404, NULL, NULL,
			  "no such resource");
		web_send(req, 404, "Not Found", "application/json", "{\"error\":\"not found\"}", 21,
			 NULL);
		web_req_free(r);
		return;
	}
	if (r->kind != WEB_ADMIN && method != EVHTTP_REQ_POST) {
		web_audit(b, req, method, r->path, web_operation(r->path), OCSF_API_CREATE, 405,
			  NULL, NULL, "method not allowed (POST only)");
		web_send(req, 405, "Method Not Allowed", NULL, NULL, 0,
			 (const char *const[]){ "Allow", "POST", NULL, NULL });
		web_req_free(r);
		return;
	}
	if (r->kind == WEB_ADMIN && method != EVHTTP_REQ_POST && method != EVHTTP_REQ_GET) {
		web_audit(b, req, method, r->path, web_operation(r->path), OCSF_API_READ, 405, NULL,
			  NULL, "method not allowed (GET or POST only)");
		web_send(req, 405, "Method Not Allowed", NULL, NULL, 0,
			 (const char *const[]){ "Allow", "GET, POST", NULL, NULL });
		web_req_free(r);
		return;
	}
	if (query != NULL && (r->query = strdup(query)) == NULL)
		goto nomem;
	len = evbuffer_get_length(in);
	if (len > WEB_MAX_BODY) { /* evhttp refuses it first; belt and braces */
		web_audit(b, req, method, r->path, web_operation(r->path), OCSF_API_CREATE, 413,
			  NULL, NULL, "request body too large");
		web_send(req, 413, "Payload Too Large", NULL, NULL, 0, NULL);
		web_req_free(r);
		return;
	}
	if ((r->body = malloc(len + 1)) == NULL)
		goto nomem;
	if (len > 0)
		evbuffer_copyout(in, r->body, len);
	r->body[len] = '\0';
	r->len = len;
	if (r->kind == WEB_ADMIN) {
		auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
		if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
			auth += 7;
			while (*auth == ' ')
				auth++;
			if (*auth != '\0' && strlen(auth) <= WEB_MAX_TOKEN &&
			    (r->token = strdup(auth)) == NULL)
				goto nomem;
		}
	}
	w->inflight++;
	web_run(r, false);
	return;
nomem:
	log_warnx("HTTP: out of memory");
	web_audit(b, req, method, r != NULL ? r->path : path, web_operation(path), OCSF_API_CREATE,
		  500, NULL, NULL, "the broker is out of memory");
	free(path);
	if (r != NULL)
		web_req_free(r);
	web_send(req, 500, "Internal Server Error", NULL, NULL, 0, NULL);
}

/* ---- listener ---------------------------------------------------------------------------- */

static struct bufferevent *
web_bevcb(struct event_base *base, void *arg)
{
	struct web *w = arg;
	SSL *ssl = SSL_new(w->ssl);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void
web_resume(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
web_accept_error(struct evconnlistener *l, void *arg)
{
	struct web *w = arg;
	struct timeval tv = { 1, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	log_warnx("HTTP listener: accept: %s", strerror(e));
	/* out of descriptors: back off instead of spinning on a listener that stays readable */
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		evconnlistener_disable(l);
		event_base_once(w->b->base, -1, EV_TIMEOUT, web_resume, l, &tv);
	}
}

static int
web_tls_init(struct web *w, const char *cert, const char *key)
{
	unsigned long e;
	char buf[256];

	if ((w->ssl = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(w->ssl, TLS1_2_VERSION);
	SSL_CTX_set_options(w->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					    SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_use_certificate_chain_file(w->ssl, cert) != 1) {
		e = ERR_get_error();
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warnx("HttpTLSCertificate %s: %s", cert, buf);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(w->ssl, key, SSL_FILETYPE_PEM) != 1) {
		e = ERR_get_error();
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warnx("HttpTLSKey %s: %s", key, buf);
		return -1;
	}
	if (SSL_CTX_check_private_key(w->ssl) != 1) {
		log_warnx("HttpTLSKey %s does not match HttpTLSCertificate %s", key, cert);
		return -1;
	}
	ERR_clear_error();
	return 0;
fail:
	log_warnx("HTTP listener: cannot create the TLS context");
	return -1;
}

static int
web_bind(struct web *w, const char *addr)
{
	struct addrinfo hints, *res = NULL;
	struct evconnlistener *l, **tmp;
	char host[256], portbuf[8];
	unsigned int port;
	int rc;

	if (conf_address_split(addr, host, sizeof(host), &port) != 0) {
		log_warnx("HttpListenAddress %s: not HOST:PORT", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portbuf, sizeof(portbuf), "%u", port);
	if ((rc = getaddrinfo(host, portbuf, &hints, &res)) != 0) {
		log_warnx("HttpListenAddress %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	l = evconnlistener_new_bind(w->b->base, NULL, NULL,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
					    LEV_OPT_REUSEABLE,
				    128, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (l == NULL) {
		log_warn("HttpListenAddress %s: cannot listen", addr);
		return -1;
	}
	if ((tmp = reallocarray(w->listeners, w->nlisteners + 1, sizeof(*tmp))) == NULL) {
		evconnlistener_free(l);
		return -1;
	}
	w->listeners = tmp;
	w->listeners[w->nlisteners++] = l;
	if (evhttp_bind_listener(w->http, l) == NULL) {
		log_warnx("HttpListenAddress %s: cannot serve HTTP on it", addr);
		return -1;
	}
	evconnlistener_set_error_cb(l, web_accept_error);
	return 0;
}

static void
web_free(struct web *w)
{
	struct web_req *r;

	if (w == NULL)
		return;
	/* answer the waiting requests before evhttp_free frees their connections */
	while ((r = TAILQ_FIRST(&w->waiting)) != NULL)
		web_answer(r, 503, NULL, NULL, NULL);
	if (w->http != NULL)
		evhttp_free(w->http); /* frees the bound listeners too */
	free(w->listeners);
	if (w->ssf_req != NULL)
		http_cancel(w->ssf_req);
	jwks_free(w->ssf_jwks);
	if (w->ev_tick != NULL)
		event_free(w->ev_tick);
	if (w->ev_ssf != NULL)
		event_free(w->ev_ssf);
	if (w->ssl != NULL)
		SSL_CTX_free(w->ssl);
	free(w);
}

int
web_open(struct broker *b)
{
	const struct broker_config *cfg = &b->cfg;
	struct timeval now = { 0, 0 };
	struct web *w = NULL;
	bool tls = cfg->http_tls_certificate != NULL && cfg->http_tls_key != NULL;
	size_t i;

	if (cfg->http_listen_address.n == 0)
		return 0;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto nomem;
	w->b = b;
	TAILQ_INIT(&w->waiting);
	w->ssf_iss = cfg->ssf_transmitter_issuer != NULL ? cfg->ssf_transmitter_issuer :
							   cfg->oidc_issuer;
	w->ssf_aud = cfg->ssf_audience != NULL ? cfg->ssf_audience : cfg->oidc_client_id;
	w->ssf_url = cfg->ssf_transmitter_jwks;
	w->ssf_backoff = 1;
	w->ssf_last_refresh_ms = -1;
	if ((w->http = evhttp_new(b->base)) == NULL ||
	    (w->ev_tick = evtimer_new(b->base, web_tick, w)) == NULL ||
	    (w->ev_ssf = evtimer_new(b->base, web_ssf_timer, w)) == NULL)
		goto nomem;
	evhttp_set_max_body_size(w->http, WEB_MAX_BODY);
	evhttp_set_max_headers_size(w->http, WEB_MAX_HEADERS);
	evhttp_set_timeout(w->http, WEB_TIMEOUT);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, web_request, w);
	if (tls) {
		if (web_tls_init(w, cfg->http_tls_certificate, cfg->http_tls_key) != 0)
			goto fail;
		evhttp_set_bevcb(w->http, web_bevcb, w);
	}
	for (i = 0; i < cfg->http_listen_address.n; i++)
		if (web_bind(w, cfg->http_listen_address.v[i]) != 0)
			goto fail;
	if (w->ssf_url != NULL)
		evtimer_add(w->ev_ssf, &now);
	b->web = w;
	for (i = 0; i < cfg->http_listen_address.n; i++) {
		if (tls)
			log_info("HTTP listener on %s (TLS)", cfg->http_listen_address.v[i]);
		else
			log_warnx("HTTP listener on %s without TLS: acceptable on loopback only "
				  "(behind a local TLS proxy, or for tests); set "
				  "HttpTLSCertificate and HttpTLSKey",
				  cfg->http_listen_address.v[i]);
	}
	return 0;
nomem:
	log_warnx("HTTP listener: out of memory");
fail:
	web_free(w);
	return -1;
}

void
web_close(struct broker *b)
{
	web_free(b->web);
	b->web = NULL;
}
