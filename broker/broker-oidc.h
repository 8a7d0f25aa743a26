/*
 * OIDC relying party for the broker: discovery, JWKS cache, and the OAuth 2.0 Device
 * Authorization Grant (RFC 8628), all asynchronous on the broker's event loop.
 *
 * - oidc_new() starts discovery + JWKS fetch at once and retries with backoff while the
 *   IdP is down; logins started meanwhile fail with "identity provider unreachable".
 * - An ID token whose kid is unknown triggers one JWKS refresh (at most one per 30 s)
 *   before it is refused.
 *
 * Ownership: struct oidc is created in main, freed with oidc_free() (cancels everything).
 * struct oidc_device belongs to the caller: oidc_device_free() cancels pending I/O and
 * guarantees the callback never runs again. The callback may call oidc_device_free().
 */
#ifndef SAW_BROKER_OIDC_H
#define SAW_BROKER_OIDC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct http_client;
struct broker_config;
struct oidc;
struct oidc_device;

enum oidc_device_event {
	OIDC_DEVICE_CODE,     /* user code and verification URI are available */
	OIDC_DEVICE_APPROVED, /* ID token validated: claims available */
	OIDC_DEVICE_FAILED,   /* terminal: see oidc_device_failure() and oidc_device_message() */
};

enum oidc_failure {
	OIDC_FAIL_NONE = 0,
	OIDC_FAIL_UNREACHABLE,	 /* IdP down, timeout, 5xx, discovery not done */
	OIDC_FAIL_DENIED,	 /* access_denied: the user refused in the browser */
	OIDC_FAIL_EXPIRED,	 /* expired_token: not approved in time */
	OIDC_FAIL_INVALID_TOKEN, /* ID token failed validation */
	OIDC_FAIL_PROTOCOL,	 /* any other error answer from the IdP */
};

typedef void (*oidc_device_cb)(struct oidc_device *d, enum oidc_device_event ev, void *arg);

struct oidc *oidc_new(struct event_base *base, struct http_client *http,
		      const struct broker_config *cfg);
void oidc_free(struct oidc *o);
bool oidc_ready(const struct oidc *o); /* discovery and JWKS done */

/* Starts a device authorization. The callback fires with OIDC_DEVICE_CODE once, then polls
 * run in the background at the IdP's interval until APPROVED or FAILED. */
struct oidc_device *oidc_device_start(struct oidc *o, oidc_device_cb cb, void *arg);
/* The user says they approved: poll as soon as the interval allows (never faster). */
void oidc_device_poll_now(struct oidc_device *d);
void oidc_device_free(struct oidc_device *d);

const char *oidc_device_user_code(const struct oidc_device *d);
const char *oidc_device_verification_uri(const struct oidc_device *d);
const char *oidc_device_verification_uri_complete(const struct oidc_device *d); /* may be NULL */
int64_t oidc_device_expires_at(const struct oidc_device *d);
/* After APPROVED: the validated ID token claims (borrowed; valid until oidc_device_free). */
const json_t *oidc_device_claims(const struct oidc_device *d);
enum oidc_failure oidc_device_failure(const struct oidc_device *d);
/* After FAILED: detail for logs/audit, e.g. "token endpoint: HTTP 500" (borrowed). */
const char *oidc_device_detail(const struct oidc_device *d);

/* For the other tokens the IdP signs (logout tokens, admin API access tokens; broker-web.c).
 * oidc_jwks: the current key set, borrowed until the next refresh (re-read it after any
 * event-loop turn), NULL until discovery and the first fetch are done. oidc_algs: the
 * OIDCAllowedAlgorithms allow-list. oidc_jwks_refresh_request: an unknown kid was seen;
 * starts a refetch under the same 30 s rate limit as ID tokens and returns true if one is
 * now in flight; oidc_jwks_refreshing tells when it (or the start-up fetch) is over. */
struct jwks;
const struct jwks *oidc_jwks(const struct oidc *o);
const char *oidc_issuer(const struct oidc *o);
const char *const *oidc_algs(const struct oidc *o, size_t *n);
bool oidc_jwks_refresh_request(struct oidc *o);
bool oidc_jwks_refreshing(const struct oidc *o);

#endif
