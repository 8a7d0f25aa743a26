/*
 * Parsers for the IdP's JSON answers used by broker-oidc.c: the discovery document, the
 * device authorization response (RFC 8628 3.2), token endpoint answers (RFC 8628 3.5,
 * RFC 6749 5.1/5.2). Pure functions on untrusted bytes, no I/O: unit tested in
 * tests/unit/torture_oidc_parse.c and fuzzed by tests/fuzz/fuzz_oidc.c.
 *
 * Every string handed out is printable ASCII (the user code and URIs are shown on the
 * user's terminal: control characters would be an escape-sequence injection).
 *
 * Ownership: each parser fills a caller-provided struct whose strings it allocates; the
 * matching *_clear() frees them (secrets wiped) and may be called on a zeroed struct.
 * On error the struct is left zeroed and err holds plain words.
 */
#ifndef SAW_BROKER_OIDC_PARSE_H
#define SAW_BROKER_OIDC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OIDC_MAX_URL 2048
#define OIDC_MAX_USER_CODE 64
#define OIDC_MAX_DEVICE_CODE 2048
#define OIDC_DEFAULT_INTERVAL 5
#define OIDC_MAX_INTERVAL 600
#define OIDC_MAX_EXPIRES_IN 86400

struct oidc_discovery {
	char *issuer;
	char *device_authorization_endpoint;
	char *token_endpoint;
	char *jwks_uri;
};

struct oidc_device_auth {
	char *device_code; /* secret: wiped on clear */
	char *user_code;
	char *verification_uri;
	char *verification_uri_complete; /* NULL if absent */
	int64_t expires_in;		 /* seconds, 1..OIDC_MAX_EXPIRES_IN */
	int64_t interval;		 /* seconds, 1..OIDC_MAX_INTERVAL, default 5 */
};

enum oidc_token_error {
	OIDC_TOKEN_ERR_PENDING,	  /* authorization_pending */
	OIDC_TOKEN_ERR_SLOW_DOWN, /* slow_down */
	OIDC_TOKEN_ERR_DENIED,	  /* access_denied */
	OIDC_TOKEN_ERR_EXPIRED,	  /* expired_token */
	OIDC_TOKEN_ERR_OTHER,	  /* any other "error" value */
};

/* true if url is https://, or http:// to a loopback host (127.0.0.0/8, ::1, localhost). */
bool oidc_url_allowed(const char *url);

/* Discovery document: "issuer" must equal expected_issuer byte for byte; the device
 * authorization, token and JWKS endpoints must be present and pass oidc_url_allowed(). */
int oidc_parse_discovery(const char *body, size_t len, const char *expected_issuer,
			 struct oidc_discovery *out, char *err, size_t errlen);
void oidc_discovery_clear(struct oidc_discovery *d);

int oidc_parse_device_auth(const char *body, size_t len, struct oidc_device_auth *out, char *err,
			   size_t errlen);
void oidc_device_auth_clear(struct oidc_device_auth *a);

/* An error answer {"error": "...", "error_description": "..."}. Returns 0 and sets *code;
 * code_str (if not NULL) gets the error value, desc (if not NULL) the description, both
 * sanitized to printable ASCII and truncated. -1 if the body is not such an object. */
int oidc_parse_token_error(const char *body, size_t len, enum oidc_token_error *code,
			   char *code_str, size_t code_len, char *desc, size_t desc_len);

/* A successful token answer: *id_token gets a copy of "id_token" (caller wipes and frees). */
int oidc_parse_token_response(const char *body, size_t len, char **id_token, char *err,
			      size_t errlen);

#endif
