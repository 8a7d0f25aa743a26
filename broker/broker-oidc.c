/*
 * OIDC relying party: discovery, JWKS cache and the device authorization grant (RFC 8628),
 * all driven by the broker's event loop through broker-http.c. Nothing here blocks except
 * reading OIDCClientSecretFile in oidc_new(), which runs at start-up.
 *
 * Lifetimes: a device's callback may free the device (in_callback/freed: the free is
 * finished by oidc_device_fire() once the callback returns), and may free or start other
 * devices. Every callback runs from an event (HTTP completion or timer), never from inside
 * oidc_device_start()/oidc_device_poll_now(), so a caller never sees its own callback
 * before it has the device pointer.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "broker/broker-config.h"
#include "broker/broker-http.h"
#include "broker/broker-jwt.h"
#include "broker/broker-oidc-parse.h"
#include "broker/broker-oidc.h"

#define OIDC_DISCOVERY_PATH "/.well-known/openid-configuration"
#define OIDC_DEFAULT_SCOPE "openid profile groups"
#define OIDC_DEFAULT_TIMEOUT 10
#define OIDC_BACKOFF_MIN 1	    /* seconds, doubled per failure ... */
#define OIDC_BACKOFF_MAX 60	    /* ... up to this */
#define OIDC_JWKS_REFRESH_MIN 30000 /* ms between two JWKS fetches triggered by unknown kids */
#define OIDC_CLOCK_SKEW 60
#define OIDC_ID_TOKEN_MAX_AGE 600
#define OIDC_SLOW_DOWN_STEP 5
#define OIDC_MAX_SECRET 4096
#define OIDC_DETAIL_LEN 256

#define OIDC_GRANT_DEVICE_CODE "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"

enum oidc_boot {
	OIDC_BOOT_DISCOVERY,
	OIDC_BOOT_JWKS,
	OIDC_BOOT_DONE,
};

enum oidc_dev_state {
	DEV_FAIL_PENDING, /* failure decided in oidc_device_start(), reported from the loop */
	DEV_AUTHORIZING,  /* device authorization request in flight */
	DEV_POLLING,	  /* timer armed or token request in flight */
	DEV_WAIT_JWKS,	  /* ID token with an unknown kid, JWKS refresh in flight */
	DEV_DONE,	  /* APPROVED or FAILED reported: nothing pending */
};

struct oidc_device {
	LIST_ENTRY(oidc_device) entry;
	TAILQ_ENTRY(oidc_device) wait_entry;
	struct oidc *o; /* NULL once oidc_free() detached it */
	oidc_device_cb cb;
	void *arg;
	enum oidc_dev_state state;
	struct oidc_device_auth auth;
	int64_t expires_at;   /* wall clock, for display */
	int64_t expires_ms;   /* monotonic, for the decision */
	int64_t last_poll_ms; /* monotonic: when the last token request was sent */
	int64_t interval;     /* seconds; grows by 5 with each slow_down */
	bool poll_soon;	      /* oidc_device_poll_now() while a poll was in flight */
	bool poll_failing;    /* for logging network trouble once */
	struct http_req *req;
	struct event *timer;
	char *id_token; /* held across a JWKS refresh; wiped */
	bool refetched;
	bool waiting;
	json_t *claims;
	enum oidc_failure failure;
	char detail[OIDC_DETAIL_LEN];
	bool in_callback;
	bool freed;
};

struct oidc {
	struct event_base *base;
	struct http_client *http;
	const struct broker_config *cfg;
	long timeout_ms;
	char *discovery_url;
	char *client_id_enc; /* form-urlencoded */
	char *scope_enc;
	char *basic_user; /* client_secret_basic: RFC 6749 2.3.1 form-encodes both parts */
	char *basic_pass; /* secret: wiped */
	const char *const *algs;
	size_t nalgs;

	enum oidc_boot boot;
	struct oidc_discovery disc;
	struct jwks *jwks;
	struct http_req *boot_req;
	struct event *retry_ev;
	int backoff;
	bool failing;
	char last_err[OIDC_DETAIL_LEN];

	struct http_req *refresh_req;
	int64_t last_jwks_ms; /* monotonic time of the last unknown-kid refresh, -1 never */
	LIST_HEAD(, oidc_device) devices;
	TAILQ_HEAD(, oidc_device) jwks_waiters;
};

static const char *const oidc_default_algs[] = { "RS256", "ES256", "EdDSA" };

static void oidc_boot_start(struct oidc *o);
static void oidc_device_validate(struct oidc_device *d, char *id_token);
static void oidc_device_fail(struct oidc_device *d, enum oidc_failure f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void oidc_boot_fail(struct oidc *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int64_t
oidc_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
oidc_free_secret(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

/* ---- discovery and JWKS, retried with backoff while the IdP is down ---- */

static void
oidc_boot_fail(struct oidc *o, const char *fmt, ...)
{
	char msg[OIDC_DETAIL_LEN];
	struct timeval tv = { o->backoff, 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Once per state change: an IdP down for a day must not flood the log. */
	if (!o->failing || strcmp(msg, o->last_err) != 0)
		log_warnx("identity provider %s: %s; logins fail until it answers (retrying "
			  "every %d s at most)",
			  o->cfg->oidc_issuer, msg, OIDC_BACKOFF_MAX);
	else
		log_debug("identity provider %s: %s; retry in %d s", o->cfg->oidc_issuer, msg,
			  o->backoff);
	o->failing = true;
	snprintf(o->last_err, sizeof(o->last_err), "%s", msg);
	evtimer_add(o->retry_ev, &tv);
	o->backoff = o->backoff * 2 > OIDC_BACKOFF_MAX ? OIDC_BACKOFF_MAX : o->backoff * 2;
}

static void
oidc_retry_event(evutil_socket_t fd, short what, void *arg)
{
	oidc_boot_start(arg);
}

/* Parses a JWKS answer; returns the new set or NULL with err filled. */
static struct jwks *
oidc_jwks_from(const struct http_result *res, char *err, size_t errlen)
{
	struct jwks *ks;

	if (!res->ok) {
		snprintf(err, errlen, "JWKS: %s", res->error);
		return NULL;
	}
	if (res->status != 200) {
		snprintf(err, errlen, "JWKS: HTTP %ld", res->status);
		return NULL;
	}
	if (res->body_len > JWKS_MAX_LEN) {
		snprintf(err, errlen, "JWKS: answer too large");
		return NULL;
	}
	char perr[OIDC_DETAIL_LEN] = "";
	if ((ks = jwks_parse(res->body, res->body_len, perr, sizeof(perr))) == NULL) {
		snprintf(err, errlen, "JWKS: %s", perr[0] ? perr : "not a valid key set");
		return NULL;
	}
	if (jwks_count(ks) == 0) {
		jwks_free(ks);
		snprintf(err, errlen, "JWKS: no usable signing key");
		return NULL;
	}
	return ks;
}

static void
oidc_boot_jwks_done(const struct http_result *res, void *arg)
{
	struct oidc *o = arg;
	char err[OIDC_DETAIL_LEN];
	struct jwks *ks;

	o->boot_req = NULL;
	if ((ks = oidc_jwks_from(res, err, sizeof(err))) == NULL) {
		oidc_boot_fail(o, "%s", err);
		return;
	}
	jwks_free(o->jwks);
	o->jwks = ks;
	o->boot = OIDC_BOOT_DONE;
	if (o->failing)
		log_info("identity provider %s answers again (%zu signing keys)",
			 o->cfg->oidc_issuer, jwks_count(ks));
	else
		log_info("identity provider %s ready (%zu signing keys)", o->cfg->oidc_issuer,
			 jwks_count(ks));
	o->failing = false;
	o->last_err[0] = '\0';
	o->backoff = OIDC_BACKOFF_MIN;
}

static void
oidc_discovery_done(const struct http_result *res, void *arg)
{
	struct oidc *o = arg;
	char err[OIDC_DETAIL_LEN] = "";

	o->boot_req = NULL;
	if (!res->ok) {
		oidc_boot_fail(o, "discovery: %s", res->error);
		return;
	}
	if (res->status != 200) {
		oidc_boot_fail(o, "discovery: HTTP %ld from %s", res->status, o->discovery_url);
		return;
	}
	if (oidc_parse_discovery(res->body, res->body_len, o->cfg->oidc_issuer, &o->disc, err,
				 sizeof(err)) != 0) {
		oidc_boot_fail(o, "discovery document %s: %s", o->discovery_url, err);
		return;
	}
	log_debug("discovery: device endpoint %s, token endpoint %s, JWKS %s",
		  o->disc.device_authorization_endpoint, o->disc.token_endpoint, o->disc.jwks_uri);
	o->boot = OIDC_BOOT_JWKS;
	oidc_boot_start(o);
}

static void
oidc_boot_start(struct oidc *o)
{
	if (o->boot == OIDC_BOOT_DISCOVERY) {
		o->boot_req = http_request(o->http, o->discovery_url, NULL, NULL, NULL,
					   o->timeout_ms, oidc_discovery_done, o);
	} else {
		/* Not counted against the refresh rate limit: keys rotated just after our
		 * start must still be picked up. */
		o->boot_req = http_request(o->http, o->disc.jwks_uri, NULL, NULL, NULL,
					   o->timeout_ms, oidc_boot_jwks_done, o);
	}
	if (o->boot_req == NULL)
		oidc_boot_fail(o, "cannot start an HTTP request (out of memory?)");
}

/* ---- JWKS refresh on an unknown kid ---- */

static void
oidc_refresh_done(const struct http_result *res, void *arg)
{
	struct oidc *o = arg;
	struct oidc_device *d;
	char err[OIDC_DETAIL_LEN];
	struct jwks *ks;
	char *tok;

	o->refresh_req = NULL;
	if ((ks = oidc_jwks_from(res, err, sizeof(err))) != NULL) {
		jwks_free(o->jwks);
		o->jwks = ks;
		log_info("identity provider %s: signing keys refreshed (%zu keys)",
			 o->cfg->oidc_issuer, jwks_count(ks));
	} else {
		log_warnx("identity provider %s: refreshing the signing keys failed: %s; keeping "
			  "the old ones",
			  o->cfg->oidc_issuer, err);
	}
	/* Take one waiter at a time: a callback may free any other waiter. */
	while ((d = TAILQ_FIRST(&o->jwks_waiters)) != NULL) {
		TAILQ_REMOVE(&o->jwks_waiters, d, wait_entry);
		d->waiting = false;
		tok = d->id_token;
		d->id_token = NULL;
		oidc_device_validate(d, tok);
	}
}

/* Returns true if a refresh is (now) in flight that the caller may wait for. */
static bool
oidc_jwks_refresh(struct oidc *o)
{
	int64_t now = oidc_mono_ms();

	if (o->refresh_req != NULL)
		return true;
	/* Rate limit for the whole client: tokens with made-up kids must not turn us into
	 * a request amplifier against the IdP. */
	if (o->last_jwks_ms >= 0 && now - o->last_jwks_ms < OIDC_JWKS_REFRESH_MIN)
		return false;
	o->last_jwks_ms = now;
	o->refresh_req = http_request(o->http, o->disc.jwks_uri, NULL, NULL, NULL, o->timeout_ms,
				      oidc_refresh_done, o);
	return o->refresh_req != NULL;
}

/* ---- struct oidc ---- */

static int
oidc_read_secret(const char *path, char **out)
{
	char buf[OIDC_MAX_SECRET + 1];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("OIDCClientSecretFile %s", path);
		goto out;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("OIDCClientSecretFile %s is readable by other users; chmod 600 it", path);
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("OIDCClientSecretFile %s", path);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > OIDC_MAX_SECRET) {
		log_warnx("OIDCClientSecretFile %s: longer than %d bytes, is it the right file?",
			  path, OIDC_MAX_SECRET);
		goto out;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		log_warnx("OIDCClientSecretFile %s: %s", path,
			  len == 0 ? "the file is empty" : "the secret contains a NUL byte");
		goto out;
	}
	if ((*out = strndup(buf, len)) == NULL) {
		log_warnx("OIDCClientSecretFile %s: out of memory", path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	if (fd != -1)
		close(fd);
	return rc;
}

/* Space-joined OIDCScopes, with openid added if missing: without it there is no ID token. */
static char *
oidc_scope_string(const struct broker_config *cfg)
{
	size_t i, len = sizeof("openid ");
	bool has_openid = false;
	char *s;

	if (cfg->oidc_scopes.n == 0)
		return strdup(OIDC_DEFAULT_SCOPE);
	for (i = 0; i < cfg->oidc_scopes.n; i++) {
		len += strlen(cfg->oidc_scopes.v[i]) + 1;
		if (strcmp(cfg->oidc_scopes.v[i], "openid") == 0)
			has_openid = true;
	}
	if ((s = calloc(1, len)) == NULL)
		return NULL;
	if (!has_openid)
		strcat(s, "openid");
	for (i = 0; i < cfg->oidc_scopes.n; i++) {
		if (s[0] != '\0')
			strcat(s, " ");
		strcat(s, cfg->oidc_scopes.v[i]);
	}
	return s;
}

struct oidc *
oidc_new(struct event_base *base, struct http_client *http, const struct broker_config *cfg)
{
	struct oidc *o = NULL;
	char *secret = NULL, *scope = NULL;
	size_t ilen;
	long long t;

	if (cfg->oidc_issuer == NULL || cfg->oidc_client_id == NULL ||
	    cfg->oidc_client_id[0] == '\0') {
		log_warnx("OIDCIssuer and OIDCClientID are required");
		return NULL;
	}
	if (!oidc_url_allowed(cfg->oidc_issuer)) {
		log_warnx("OIDCIssuer %s: must be an https URL (http only to a loopback address)",
			  cfg->oidc_issuer);
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		goto fail;
	o->base = base;
	o->http = http;
	o->cfg = cfg;
	o->boot = OIDC_BOOT_DISCOVERY;
	o->backoff = OIDC_BACKOFF_MIN;
	o->last_jwks_ms = -1;
	LIST_INIT(&o->devices);
	TAILQ_INIT(&o->jwks_waiters);
	t = cfg->oidc_timeout > 0 ? cfg->oidc_timeout : OIDC_DEFAULT_TIMEOUT;
	o->timeout_ms = t > 300 ? 300000L : (long)t * 1000L;
	if (cfg->oidc_algorithms.n > 0) {
		o->algs = (const char *const *)cfg->oidc_algorithms.v;
		o->nalgs = cfg->oidc_algorithms.n;
	} else {
		o->algs = oidc_default_algs;
		o->nalgs = sizeof(oidc_default_algs) / sizeof(oidc_default_algs[0]);
	}

	/* OIDC Discovery 4: a trailing '/' of the issuer is dropped before the well-known path. */
	ilen = strlen(cfg->oidc_issuer);
	while (ilen > 0 && cfg->oidc_issuer[ilen - 1] == '/')
		ilen--;
	if (asprintf(&o->discovery_url, "%.*s%s", (int)ilen, cfg->oidc_issuer,
		     OIDC_DISCOVERY_PATH) == -1) {
		o->discovery_url = NULL;
		goto fail;
	}
	if ((scope = oidc_scope_string(cfg)) == NULL ||
	    (o->scope_enc = http_urlencode(scope)) == NULL ||
	    (o->client_id_enc = http_urlencode(cfg->oidc_client_id)) == NULL)
		goto fail;
	if (cfg->oidc_client_secret_file != NULL) {
		if (oidc_read_secret(cfg->oidc_client_secret_file, &secret) != 0)
			goto fail_quiet;
		if ((o->basic_user = http_urlencode(cfg->oidc_client_id)) == NULL ||
		    (o->basic_pass = http_urlencode(secret)) == NULL)
			goto fail;
	}
	if ((o->retry_ev = evtimer_new(base, oidc_retry_event, o)) == NULL)
		goto fail;
	free(scope);
	oidc_free_secret(&secret);
	oidc_boot_start(o);
	return o;
fail:
	log_warnx("OIDC client: out of memory");
fail_quiet:
	free(scope);
	oidc_free_secret(&secret);
	oidc_free(o);
	return NULL;
}

bool
oidc_ready(const struct oidc *o)
{
	return o != NULL && o->boot == OIDC_BOOT_DONE && o->jwks != NULL;
}

/* ---- the key set for other tokens the IdP signs (broker-web.c) ---- */

const struct jwks *
oidc_jwks(const struct oidc *o)
{
	return oidc_ready(o) ? o->jwks : NULL;
}

const char *
oidc_issuer(const struct oidc *o)
{
	return o->cfg->oidc_issuer;
}

const char *const *
oidc_algs(const struct oidc *o, size_t *n)
{
	*n = o->nalgs;
	return o->algs;
}

bool
oidc_jwks_refresh_request(struct oidc *o)
{
	if (!oidc_ready(o))
		return false;
	return oidc_jwks_refresh(o);
}

bool
oidc_jwks_refreshing(const struct oidc *o)
{
	return o != NULL && (o->refresh_req != NULL || o->boot != OIDC_BOOT_DONE);
}

/* ---- devices ---- */

/* Stops everything pending for d; d's results stay readable. */
static void
oidc_device_cancel(struct oidc_device *d)
{
	http_cancel(d->req);
	d->req = NULL;
	if (d->timer != NULL)
		evtimer_del(d->timer);
	if (d->waiting && d->o != NULL) {
		TAILQ_REMOVE(&d->o->jwks_waiters, d, wait_entry);
		d->waiting = false;
	}
	oidc_free_secret(&d->id_token);
}

static void
oidc_device_destroy(struct oidc_device *d)
{
	oidc_device_cancel(d);
	if (d->o != NULL)
		LIST_REMOVE(d, entry);
	if (d->timer != NULL)
		event_free(d->timer);
	oidc_device_auth_clear(&d->auth);
	json_decref(d->claims);
	free(d);
}

/* Runs the callback. Returns false if the callback freed d (then d is gone). */
static bool
oidc_device_fire(struct oidc_device *d, enum oidc_device_event ev)
{
	d->in_callback = true;
	d->cb(d, ev, d->arg);
	d->in_callback = false;
	if (d->freed) {
		oidc_device_destroy(d);
		return false;
	}
	return true;
}

static void
oidc_device_fail(struct oidc_device *d, enum oidc_failure f, const char *fmt, ...)
{
	va_list ap;

	oidc_device_cancel(d);
	d->state = DEV_DONE;
	d->failure = f;
	va_start(ap, fmt);
	vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
	va_end(ap);
	log_debug("device login failed: %s", d->detail);
	oidc_device_fire(d, OIDC_DEVICE_FAILED);
}

/* Arms the timer for a poll at at_ms (monotonic), or for the expiry if that comes first. */
static void
oidc_device_schedule(struct oidc_device *d, int64_t at_ms)
{
	int64_t delay;
	struct timeval tv;

	if (at_ms > d->expires_ms)
		at_ms = d->expires_ms;
	delay = at_ms - oidc_mono_ms();
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(d->timer, &tv);
}

static void
oidc_device_validate(struct oidc_device *d, char *id_token)
{
	struct oidc *o = d->o;
	struct jwt_expect e;
	enum jwt_status st;
	json_t *claims = NULL;

	memset(&e, 0, sizeof(e));
	e.issuer = o->cfg->oidc_issuer;
	e.audience = o->cfg->oidc_client_id;
	e.now = (int64_t)time(NULL);
	e.skew = OIDC_CLOCK_SKEW;
	e.max_age = OIDC_ID_TOKEN_MAX_AGE;
	st = jwt_validate_id_token(o->jwks, id_token, strlen(id_token), o->algs, o->nalgs, &e,
				   &claims);
	/* Unknown kid: the IdP may have rotated its keys since we fetched them. */
	if (st == JWT_UNKNOWN_KID && !d->refetched && oidc_jwks_refresh(o)) {
		d->refetched = true;
		d->id_token = id_token;
		d->state = DEV_WAIT_JWKS;
		d->waiting = true;
		TAILQ_INSERT_TAIL(&o->jwks_waiters, d, wait_entry);
		return;
	}
	oidc_free_secret(&id_token);
	if (st != JWT_OK) {
		json_decref(claims);
		oidc_device_fail(d, OIDC_FAIL_INVALID_TOKEN, "ID token: %s", jwt_status_str(st));
		return;
	}
	d->claims = claims;
	d->state = DEV_DONE;
	oidc_device_fire(d, OIDC_DEVICE_APPROVED);
}

static void
oidc_token_done(const struct http_result *res, void *arg)
{
	struct oidc_device *d = arg;
	enum oidc_token_error code;
	char cstr[64], desc[128], err[OIDC_DETAIL_LEN] = "";
	char *id_token = NULL;
	int64_t next;

	d->req = NULL;
	if (res->ok && res->status == 200) {
		if (oidc_parse_token_response(res->body, res->body_len, &id_token, err,
					      sizeof(err)) != 0) {
			oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "token endpoint: %s", err);
			return;
		}
		oidc_device_validate(d, id_token);
		return;
	}
	if (!res->ok || res->status >= 500) {
		/* The IdP may come back before the code expires: keep polling. */
		if (res->ok)
			snprintf(err, sizeof(err), "HTTP %ld", res->status);
		else
			snprintf(err, sizeof(err), "%s", res->error);
		/* Once per device and outage, not once per poll. */
		if (!d->poll_failing)
			log_warnx("identity provider %s: token endpoint: %s; still polling until "
				  "the login code expires",
				  d->o->cfg->oidc_issuer, err);
		d->poll_failing = true;
		goto again;
	}
	d->poll_failing = false;
	if (oidc_parse_token_error(res->body, res->body_len, &code, cstr, sizeof(cstr), desc,
				   sizeof(desc)) != 0) {
		oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "token endpoint: HTTP %ld", res->status);
		return;
	}
	switch (code) {
	case OIDC_TOKEN_ERR_PENDING:
		goto again;
	case OIDC_TOKEN_ERR_SLOW_DOWN:
		/* RFC 8628 3.5: for this and all later requests. */
		if (d->interval < OIDC_MAX_INTERVAL)
			d->interval += OIDC_SLOW_DOWN_STEP;
		goto again;
	case OIDC_TOKEN_ERR_DENIED:
		oidc_device_fail(d, OIDC_FAIL_DENIED,
				 "the user denied the login at the identity "
				 "provider");
		return;
	case OIDC_TOKEN_ERR_EXPIRED:
		oidc_device_fail(d, OIDC_FAIL_EXPIRED,
				 "the login code expired before it was "
				 "approved");
		return;
	case OIDC_TOKEN_ERR_OTHER:
	default:
		oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "token endpoint: %s%s%s", cstr,
				 desc[0] ? ": " : "", desc);
		return;
	}
again:
	if (d->poll_soon)
		next = d->last_poll_ms + d->interval * 1000;
	else
		next = oidc_mono_ms() + d->interval * 1000;
	d->poll_soon = false;
	oidc_device_schedule(d, next);
}

static void
oidc_device_poll(struct oidc_device *d)
{
	struct oidc *o = d->o;
	char *code = NULL, *body = NULL;

	d->last_poll_ms = oidc_mono_ms();
	if ((code = http_urlencode(d->auth.device_code)) != NULL &&
	    asprintf(&body, "grant_type=%s&device_code=%s&client_id=%s", OIDC_GRANT_DEVICE_CODE,
		     code, o->client_id_enc) != -1) {
		d->req = http_request(o->http, o->disc.token_endpoint, body, o->basic_user,
				      o->basic_pass, o->timeout_ms, oidc_token_done, d);
		oidc_free_secret(&body);
	}
	oidc_free_secret(&code);
	if (d->req == NULL) /* out of memory: try again at the next interval */
		oidc_device_schedule(d, d->last_poll_ms + d->interval * 1000);
}

static void
oidc_device_timer(evutil_socket_t fd, short what, void *arg)
{
	struct oidc_device *d = arg;

	switch (d->state) {
	case DEV_FAIL_PENDING:
		d->state = DEV_DONE;
		log_debug("device login failed: %s", d->detail);
		oidc_device_fire(d, OIDC_DEVICE_FAILED);
		return;
	case DEV_POLLING:
		if (oidc_mono_ms() >= d->expires_ms) {
			oidc_device_fail(d, OIDC_FAIL_EXPIRED,
					 "the login code expired before it was approved");
			return;
		}
		if (d->req == NULL)
			oidc_device_poll(d);
		return;
	default:
		return;
	}
}

static void
oidc_device_auth_done(const struct http_result *res, void *arg)
{
	struct oidc_device *d = arg;
	enum oidc_token_error code;
	char cstr[64], desc[128], err[OIDC_DETAIL_LEN] = "";
	int64_t now;

	d->req = NULL;
	if (!res->ok) {
		oidc_device_fail(d, OIDC_FAIL_UNREACHABLE, "device authorization: %s", res->error);
		return;
	}
	if (res->status >= 500) {
		oidc_device_fail(d, OIDC_FAIL_UNREACHABLE, "device authorization: HTTP %ld",
				 res->status);
		return;
	}
	if (res->status != 200) {
		if (oidc_parse_token_error(res->body, res->body_len, &code, cstr, sizeof(cstr),
					   desc, sizeof(desc)) == 0)
			oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "device authorization: %s%s%s",
					 cstr, desc[0] ? ": " : "", desc);
		else
			oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "device authorization: HTTP %ld",
					 res->status);
		return;
	}
	if (oidc_parse_device_auth(res->body, res->body_len, &d->auth, err, sizeof(err)) != 0) {
		oidc_device_fail(d, OIDC_FAIL_PROTOCOL, "device authorization: %s", err);
		return;
	}
	now = oidc_mono_ms();
	d->interval = d->auth.interval;
	d->expires_ms = now + d->auth.expires_in * 1000;
	d->expires_at = (int64_t)time(NULL) + d->auth.expires_in;
	/* RFC 8628 3.5: wait an interval before the first poll, as between any two. */
	d->last_poll_ms = now;
	d->state = DEV_POLLING;
	oidc_device_schedule(d, now + d->interval * 1000);
	oidc_device_fire(d, OIDC_DEVICE_CODE);
}

struct oidc_device *
oidc_device_start(struct oidc *o, oidc_device_cb cb, void *arg)
{
	struct oidc_device *d;
	char *body = NULL;

	if (o == NULL || cb == NULL || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->o = o;
	d->cb = cb;
	d->arg = arg;
	d->state = DEV_FAIL_PENDING;
	if ((d->timer = evtimer_new(o->base, oidc_device_timer, d)) == NULL) {
		free(d);
		return NULL;
	}
	LIST_INSERT_HEAD(&o->devices, d, entry);

	if (!oidc_ready(o)) {
		d->failure = OIDC_FAIL_UNREACHABLE;
		snprintf(d->detail, sizeof(d->detail), "identity provider unreachable%s%.200s",
			 o->last_err[0] ? ": " : "", o->last_err);
	} else {
		if (asprintf(&body, "client_id=%s&scope=%s", o->client_id_enc, o->scope_enc) == -1)
			body = NULL; /* undefined after a failure */
		else
			d->req = http_request(o->http, o->disc.device_authorization_endpoint, body,
					      o->basic_user, o->basic_pass, o->timeout_ms,
					      oidc_device_auth_done, d);
		free(body);
		if (d->req != NULL) {
			d->state = DEV_AUTHORIZING;
		} else {
			d->failure = OIDC_FAIL_UNREACHABLE;
			snprintf(d->detail, sizeof(d->detail),
				 "device authorization: cannot "
				 "start an HTTP request (out of memory?)");
		}
	}
	if (d->state == DEV_FAIL_PENDING) {
		/* Reported from the loop: the caller must get d before its callback runs. */
		struct timeval tv = { 0, 0 };

		evtimer_add(d->timer, &tv);
	}
	return d;
}

void
oidc_device_poll_now(struct oidc_device *d)
{
	if (d == NULL || d->o == NULL || d->state != DEV_POLLING)
		return;
	if (d->req != NULL) {
		d->poll_soon = true; /* decided when the answer arrives */
		return;
	}
	/* Never faster than the interval: slow_down penalties stay in force. */
	oidc_device_schedule(d, d->last_poll_ms + d->interval * 1000);
}

void
oidc_device_free(struct oidc_device *d)
{
	if (d == NULL)
		return;
	if (d->in_callback) {
		/* Finished by oidc_device_fire() when the callback returns. */
		oidc_device_cancel(d);
		d->state = DEV_DONE;
		d->freed = true;
		return;
	}
	oidc_device_destroy(d);
}

void
oidc_free(struct oidc *o)
{
	struct oidc_device *d;

	if (o == NULL)
		return;
	/* Devices belong to their callers: detach them, they just never hear from us again. */
	while ((d = LIST_FIRST(&o->devices)) != NULL) {
		oidc_device_cancel(d);
		if (d->state != DEV_DONE) {
			d->state = DEV_DONE;
			if (d->failure == OIDC_FAIL_NONE)
				d->failure = OIDC_FAIL_UNREACHABLE;
		}
		LIST_REMOVE(d, entry);
		d->o = NULL;
	}
	http_cancel(o->boot_req);
	http_cancel(o->refresh_req);
	if (o->retry_ev != NULL)
		event_free(o->retry_ev);
	jwks_free(o->jwks);
	oidc_discovery_clear(&o->disc);
	free(o->discovery_url);
	free(o->client_id_enc);
	free(o->scope_enc);
	free(o->basic_user);
	oidc_free_secret(&o->basic_pass);
	free(o);
}

const char *
oidc_device_user_code(const struct oidc_device *d)
{
	return d->auth.user_code;
}

const char *
oidc_device_verification_uri(const struct oidc_device *d)
{
	return d->auth.verification_uri;
}

const char *
oidc_device_verification_uri_complete(const struct oidc_device *d)
{
	return d->auth.verification_uri_complete;
}

int64_t
oidc_device_expires_at(const struct oidc_device *d)
{
	return d->expires_at;
}

const json_t *
oidc_device_claims(const struct oidc_device *d)
{
	return d->state == DEV_DONE && d->failure == OIDC_FAIL_NONE ? d->claims : NULL;
}

enum oidc_failure
oidc_device_failure(const struct oidc_device *d)
{
	return d->failure;
}

const char *
oidc_device_detail(const struct oidc_device *d)
{
	return d->detail;
}
