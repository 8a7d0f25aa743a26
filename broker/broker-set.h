/*
 * Revocation signals from the identity side, parsed and validated: Security Event Tokens
 * (RFC 8417) pushed per RFC 8935 / SSF 1.0 (CAEP, RISC), and OIDC Back-Channel Logout 1.0
 * logout tokens. Untrusted bytes in, a verified list of actions out.
 *
 * Pure: no I/O, no store, no clock (callers pass "now"), so that every input path can be
 * unit-tested and fuzzed (tests/fuzz/fuzz_set.c). broker-web.c does the HTTP, the jti
 * replay check (store_jti_use, keyed on the returned iss and jti until keep_until) and acts
 * on the actions through broker-revoke.c.
 *
 * Ownership: a struct set_parsed owns every string in it; set_parsed_clear() frees them and
 * may be called on a zeroed struct or twice.
 */
#ifndef SAW_BROKER_SET_H
#define SAW_BROKER_SET_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct jwks;

#define SET_MAX_EVENTS 8    /* events in one SET; more is invalid_request */
#define SET_MAX_STRING 1024 /* bytes of any subject member, jti, iss */
#define SET_MAX_AGE 86400   /* a SET issued longer ago than this is refused */
#define SET_CLOCK_SKEW 60
#define LOGOUT_MAX_AGE 600 /* a logout token's iat: as for ID tokens */
#define SET_FORM_MAX (64 * 1024)

/* Event type URIs we act on. */
#define SET_EV_SESSION_REVOKED "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
#define SET_EV_CREDENTIAL_CHANGE \
	"https://schemas.openid.net/secevent/caep/event-type/credential-change"
#define SET_EV_CLAIMS_CHANGE \
	"https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
#define SET_EV_ACCOUNT_DISABLED \
	"https://schemas.openid.net/secevent/risc/event-type/account-disabled"
#define SET_EV_ACCOUNT_PURGED "https://schemas.openid.net/secevent/risc/event-type/account-purged"
#define SET_EV_VERIFICATION "https://schemas.openid.net/secevent/ssf/event-type/verification"

/* Outcome; every failure maps to one RFC 8935 error code (set_err_code). */
enum set_err {
	SET_OK = 0,
	SET_ERR_INVALID_REQUEST,  /* not a SET, malformed, wrong typ, bad times or payload */
	SET_ERR_INVALID_KEY,	  /* unsigned, alg refused, unknown kid, signature fails */
	SET_ERR_INVALID_ISSUER,	  /* iss is not the configured transmitter */
	SET_ERR_INVALID_AUDIENCE, /* aud does not name us */
	SET_ERR_UNKNOWN_KID,	  /* like INVALID_KEY, but the caller may refresh the keys */
};

/* "invalid_request", "invalid_key", … (UNKNOWN_KID is "invalid_key"). */
const char *set_err_code(enum set_err e);

enum set_kind {
	SET_ACT_NONE,	/* acknowledged, nothing to do (verification, still entitled, unknown) */
	SET_ACT_REVOKE, /* revoke every live session matching the subject */
	SET_ACT_LOCK,	/* revoke and lock the user: the account is gone at the IdP */
};

/* Which sessions: every non-NULL member must match (store_filter semantics). */
struct set_subject {
	char *iss;
	char *sub;
	char *sid;
	char *email;
	char *id; /* a broker session id (opaque subjects) */
};

struct set_action {
	enum set_kind kind;
	const char *event; /* static short name: "session-revoked", "backchannel-logout" … */
	struct set_subject subj;
	char why[200]; /* the reason, shown to the user in "Your SAW session was revoked (…)" */
};

struct set_parsed {
	char *iss;
	char *jti;
	int64_t keep_until; /* remember (iss, jti) until then to refuse replays */
	size_t n;
	struct set_action act[SET_MAX_EVENTS];
};

struct set_expect {
	const char *issuer;	    /* the transmitter (SETs) or OIDCIssuer (logout tokens) */
	const char *audience;	    /* SSFAudience / OIDCClientID */
	const char *required_group; /* token-claims-change: revoke when it is gone */
	const char *groups_claim;   /* OIDCGroupsClaim */
	int64_t now;
};

void set_parsed_clear(struct set_parsed *p);

/* Verified SET claims to actions (also the fuzzer's entry). desc gets plain words on error. */
enum set_err set_parse_claims(const json_t *claims, const struct set_expect *e,
			      struct set_parsed *out, char *desc, size_t desclen);

/* A pushed SET (the request body, len bytes): header typ secevent+jwt, signature with ks
 * (alg in algs), then set_parse_claims. */
enum set_err set_validate(const struct jwks *ks, const char *const *algs, size_t nalgs,
			  const char *token, size_t len, const struct set_expect *e,
			  struct set_parsed *out, char *desc, size_t desclen);

/* The value of form field name in an application/x-www-form-urlencoded body (decoded,
 * malloc'd into *value). Returns 0, 1 when absent, -1 when the body is malformed, the
 * field is given twice, or out of memory. */
int set_form_get(const char *body, size_t len, const char *name, char **value);

/* A back-channel logout request body: the logout_token field, verified with ks and checked
 * per Back-Channel Logout 1.0 2.6 (jwt_check_logout_claims), to one revoke action: the
 * sessions of (iss, sid) when the token has a sid (and sub, if given, must match too), else
 * every session of (iss, sub). Errors are SET_ERR_* as for SETs (the HTTP answer differs). */
enum set_err set_logout_validate(const struct jwks *ks, const char *const *algs, size_t nalgs,
				 const char *body, size_t len, const struct set_expect *e,
				 struct set_parsed *out, char *desc, size_t desclen);

#endif
