/*
 * JWT (JWS compact) verification against a JWKS, and OIDC ID token claim checks.
 * Pure logic on bytes (cjose for JWS/JWK, jansson for claims): no I/O, no clock
 * (callers pass "now"). Every input here is untrusted and bounded (JWT_MAX_LEN,
 * JWKS_MAX_LEN); tests/fuzz/fuzz_jwt.c drives it.
 *
 * Ownership: jwks_parse() returns a set the caller frees with jwks_free(). On JWT_OK,
 * *claims_out is a new reference the caller json_decref()s; on error it is left NULL.
 */
#ifndef SAW_BROKER_JWT_H
#define SAW_BROKER_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_LEN (64 * 1024)
#define JWKS_MAX_LEN (256 * 1024)

enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED,	 /* not a compact JWS, bad base64/JSON, oversized */
	JWT_BAD_ALG,	 /* alg not on the allow-list (incl. none, HS*), or alg/key type mismatch */
	JWT_UNKNOWN_KID, /* no key with that kid (caller may refresh the JWKS once) */
	JWT_BAD_SIGNATURE, /* signature does not verify */
	JWT_BAD_ISS,
	JWT_BAD_AUD, /* our client id missing, or an audience we do not trust */
	JWT_BAD_AZP,
	JWT_EXPIRED,	/* exp missing or in the past (beyond skew) */
	JWT_BAD_IAT,	/* iat missing, in the future, or absurdly old */
	JWT_BAD_CLAIMS, /* other claim rules (e.g. nonce present in a logout token) */
};

struct jwks;

struct jwks *jwks_parse(const char *json, size_t len, char *err, size_t errlen);
void jwks_free(struct jwks *ks);
size_t jwks_count(const struct jwks *ks);

/* Verifies the signature (key chosen by the header's kid; a kid-less token is accepted only
 * when the set has exactly one key of the right type) and that alg is in algs[] and matches
 * the key type. On JWT_OK returns the parsed claims in *claims_out. */
enum jwt_status jwt_verify(const struct jwks *ks, const char *token, size_t len,
			   const char *const *algs, size_t nalgs, json_t **claims_out);

struct jwt_expect {
	const char *issuer;		/* exact match */
	const char *audience;		/* our client id: must be in aud */
	const char *const *trusted_aud; /* other audiences tolerated (may be NULL) */
	size_t ntrusted_aud;
	int64_t now;	 /* seconds */
	int64_t skew;	 /* tolerance for exp/iat, e.g. 60 */
	int64_t max_age; /* iat older than now - max_age is refused, e.g. 600 */
};

/* OIDC Core 3.1.3.7 checks on verified claims: iss, aud, azp, exp, iat. */
enum jwt_status jwt_check_id_claims(const json_t *claims, const struct jwt_expect *e);

/* verify + check in one call. */
enum jwt_status jwt_validate_id_token(const struct jwks *ks, const char *token, size_t len,
				      const char *const *algs, size_t nalgs,
				      const struct jwt_expect *e, json_t **claims_out);

/* A short plain-words description, e.g. "token signature does not verify". */
const char *jwt_status_str(enum jwt_status st);

/* Added after the first version; the declarations above are unchanged. Beyond the rules
 * named above, jwt_check_id_claims() also refuses (JWT_BAD_CLAIMS) a missing or empty "sub"
 * and an "nbf" later than now + skew; jwt_verify() refuses a "crit" header (JWT_MALFORMED). */

/* Back-Channel Logout 1.0 2.6 checks on verified claims: iss, aud, exp, iat as for an ID
 * token (azp only if present; trusted_aud applies), then events holds the back-channel logout
 * event as an object, sub and/or sid are non-empty strings, jti is a non-empty string (the
 * caller's replay cache key), and nonce is absent (else JWT_BAD_CLAIMS). */
enum jwt_status jwt_check_logout_claims(const json_t *claims, const struct jwt_expect *e);

/* Copies the (unverified) header "typ" into buf, "" when absent. Returns 0, or -1 when the
 * token is malformed or typ is not a string shorter than buflen. Call it after jwt_verify()
 * succeeded if the answer matters: the header is covered by the signature. */
int jwt_header_typ(const char *token, size_t len, char *buf, size_t buflen);

#endif
