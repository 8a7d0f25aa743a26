/*
 * JWT (JWS compact) verification against a JWKS, and OIDC ID token / logout token claim checks.
 *
 * Why the header is parsed here before cjose sees the token: cjose picks the verification
 * routine from the token's own "alg", so the allow-list, the key type and the key choice must
 * be settled first. Why JWK members are copied into a fresh object before cjose_jwk_import_json:
 * cjose 0.6.2 asserts (aborts) on some padded base64url input, would happily import symmetric
 * and private keys, and does not bound RSA sizes; we hand it only strictly checked public
 * members of RSA and EC keys.
 *
 * EdDSA: cjose 0.6.2 knows no "OKP" key type and no EdDSA signatures, so OKP keys are skipped
 * in jwks_parse() and an "EdDSA" token is JWT_BAD_ALG even when the caller allows it.
 */
#include "broker/broker-jwt.h"

#include <cjose/cjose.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWKS_MAX_ENTRIES 64 /* members of "keys" we look at, usable or not */
#define JWK_KID_MAX 256
#define JWT_HDR_MAX 4096 /* decoded header bytes */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192 /* bounds the cost of one verification */
/* Claim times outside [0, year 9999] are refused, which also keeps "now +/- skew" arithmetic
 * far from int64 overflow. */
#define JWT_TIME_MAX INT64_C(253402300799)

#define LOGOUT_EVENT "http://schemas.openid.net/event/backchannel-logout"

enum jwk_type {
	JWK_RSA,
	JWK_EC_P256,
	JWK_EC_P384,
	JWK_EC_P521,
};

struct jwks_key {
	cjose_jwk_t *jwk;
	enum jwk_type type;
	char *kid; /* NULL when the JWK has none */
	char *alg; /* the JWK's own "alg" restriction, NULL when absent */
};

struct jwks {
	size_t n;
	struct jwks_key keys[JWKS_MAX_ENTRIES];
};

struct jwt_alg {
	const char *name;
	enum jwk_type type;
	size_t ec_sig_len; /* bytes of an ECDSA r||s signature; 0 for RSA (the modulus size) */
};

/* The only algorithms this file will ever verify. Anything else (none, HS*, EdDSA, ...) is
 * JWT_BAD_ALG whatever the caller's allow-list says. */
static const struct jwt_alg jwt_algs[] = {
	{ "RS256", JWK_RSA, 0 },      { "RS384", JWK_RSA, 0 },	    { "RS512", JWK_RSA, 0 },
	{ "PS256", JWK_RSA, 0 },      { "PS384", JWK_RSA, 0 },	    { "PS512", JWK_RSA, 0 },
	{ "ES256", JWK_EC_P256, 64 }, { "ES384", JWK_EC_P384, 96 }, { "ES512", JWK_EC_P521, 132 },
};

static void
jwt_seterr(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

static bool
b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Strict unpadded base64url: the only form JWS and JWK use, and the only one we let reach
 * cjose's decoder. A length of 1 mod 4 can never be valid. */
static bool
b64url_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len % 4 == 1)
		return false;
	for (i = 0; i < len; i++) {
		if (!b64url_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------------------------- */
/* JWKS                                                                                     */

static void
jwks_key_clear(struct jwks_key *k)
{
	if (k->jwk != NULL)
		cjose_jwk_release(k->jwk);
	free(k->kid);
	free(k->alg);
	memset(k, 0, sizeof(*k));
}

void
jwks_free(struct jwks *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++)
		jwks_key_clear(&ks->keys[i]);
	free(ks);
}

size_t
jwks_count(const struct jwks *ks)
{
	return ks != NULL ? ks->n : 0;
}

/* Copies member name of src into dst if it is a strict base64url string of a sane length. */
static bool
jwk_copy_b64(json_t *dst, const json_t *src, const char *name, size_t maxlen)
{
	const json_t *v = json_object_get(src, name);
	const char *s;
	size_t len;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len > maxlen || !b64url_valid(s, len))
		return false;
	return json_object_set_new(dst, name, json_stringn(s, len)) == 0;
}

static bool
jwk_is_for_signatures(const json_t *k)
{
	const json_t *use = json_object_get(k, "use");
	const json_t *ops = json_object_get(k, "key_ops");
	const json_t *op;
	size_t i;

	if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
		return false;
	if (ops == NULL)
		return true;
	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, op) {
		if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
			return true;
	}
	return false;
}

/* Turns one member of "keys" into a usable verification key. Returns 1 when added, 0 when
 * the key is skipped on purpose (encryption key, symmetric key, unsupported type, weak or
 * malformed key), never an error: one odd key must not take the whole set down. */
static int
jwks_add(struct jwks *ks, const json_t *k)
{
	const json_t *kty, *crv, *kid, *alg;
	json_t *pub = NULL;
	struct jwks_key key;
	cjose_err cerr;
	size_t bits;
	int ret = 0;

	memset(&key, 0, sizeof(key));
	if (!json_is_object(k) || !jwk_is_for_signatures(k))
		goto out;
	kty = json_object_get(k, "kty");
	if (!json_is_string(kty))
		goto out;
	kid = json_object_get(k, "kid");
	if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > JWK_KID_MAX))
		goto out;
	alg = json_object_get(k, "alg");
	if (alg != NULL && !json_is_string(alg))
		goto out;

	if ((pub = json_object()) == NULL)
		goto out;
	/* Only public members travel to cjose: never "k" (symmetric) nor private parts. */
	if (strcmp(json_string_value(kty), "RSA") == 0) {
		key.type = JWK_RSA;
		/* 8192-bit modulus = 1024 bytes = 1366 base64url characters. */
		if (!jwk_copy_b64(pub, k, "n", 1366) || !jwk_copy_b64(pub, k, "e", 16))
			goto out;
	} else if (strcmp(json_string_value(kty), "EC") == 0) {
		crv = json_object_get(k, "crv");
		if (!json_is_string(crv))
			goto out;
		if (strcmp(json_string_value(crv), "P-256") == 0)
			key.type = JWK_EC_P256;
		else if (strcmp(json_string_value(crv), "P-384") == 0)
			key.type = JWK_EC_P384;
		else if (strcmp(json_string_value(crv), "P-521") == 0)
			key.type = JWK_EC_P521;
		else
			goto out;
		if (json_object_set(pub, "crv", (json_t *)crv) != 0 ||
		    !jwk_copy_b64(pub, k, "x", 88) || !jwk_copy_b64(pub, k, "y", 88))
			goto out;
	} else {
		/* "oct" is skipped so that an HS* token can never be checked against anything
		 * the IdP publishes; "OKP" because cjose 0.6.2 cannot use it. */
		goto out;
	}
	if (json_object_set(pub, "kty", (json_t *)kty) != 0)
		goto out;

	key.jwk = cjose_jwk_import_json((cjose_header_t *)pub, &cerr);
	if (key.jwk == NULL)
		goto out;
	if (key.type == JWK_RSA) {
		bits = cjose_jwk_get_keysize(key.jwk, &cerr);
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
			goto out;
	} else if (cjose_jwk_get_kty(key.jwk, &cerr) != CJOSE_JWK_KTY_EC) {
		goto out;
	}
	if (kid != NULL && (key.kid = strdup(json_string_value(kid))) == NULL)
		goto out;
	if (alg != NULL && (key.alg = strdup(json_string_value(alg))) == NULL)
		goto out;

	ks->keys[ks->n++] = key;
	memset(&key, 0, sizeof(key));
	ret = 1;
out:
	jwks_key_clear(&key);
	json_decref(pub);
	return ret;
}

struct jwks *
jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	struct jwks *ks = NULL;
	json_t *root = NULL;
	const json_t *keys, *k;
	size_t i;

	if (json == NULL || len == 0) {
		jwt_seterr(err, errlen, "key set is empty");
		goto fail;
	}
	if (len > JWKS_MAX_LEN) {
		jwt_seterr(err, errlen, "key set is larger than 256 KiB");
		goto fail;
	}
	/* Duplicate members are refused so that no two JSON readers can disagree about a key. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		jwt_seterr(err, errlen, "key set is not a JSON object");
		goto fail;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		jwt_seterr(err, errlen, "key set has no \"keys\" array");
		goto fail;
	}
	if (json_array_size(keys) > JWKS_MAX_ENTRIES) {
		jwt_seterr(err, errlen, "key set has more than 64 keys");
		goto fail;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		jwt_seterr(err, errlen, "out of memory");
		goto fail;
	}
	json_array_foreach(keys, i, k)
		jwks_add(ks, k);
	if (ks->n == 0) {
		jwt_seterr(err, errlen,
			   "key set has no usable signature key (RSA of 2048 to 8192 bits or "
			   "EC P-256/P-384/P-521, \"use\" absent or \"sig\")");
		goto fail;
	}
	json_decref(root);
	return ks;
fail:
	jwks_free(ks);
	json_decref(root);
	return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* JWS                                                                                      */

struct jwt_parts {
	const char *hdr, *payload, *sig;
	size_t hdr_len, payload_len, sig_len;
};

/* Compact serialization: exactly three base64url parts; the signature may be empty here so
 * that "alg":"none" is reported as what it is (JWT_BAD_ALG), and is refused later. */
static bool
jwt_split(const char *token, size_t len, struct jwt_parts *p)
{
	size_t i, dots[2], ndots = 0;

	if (token == NULL || len == 0 || len > JWT_MAX_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (token[i] == '.') {
			if (ndots == 2)
				return false;
			dots[ndots++] = i;
		} else if (!b64url_char((unsigned char)token[i])) {
			return false;
		}
	}
	if (ndots != 2)
		return false;
	p->hdr = token;
	p->hdr_len = dots[0];
	p->payload = token + dots[0] + 1;
	p->payload_len = dots[1] - dots[0] - 1;
	p->sig = token + dots[1] + 1;
	p->sig_len = len - dots[1] - 1;
	return b64url_valid(p->hdr, p->hdr_len) && b64url_valid(p->payload, p->payload_len) &&
	       (p->sig_len == 0 || b64url_valid(p->sig, p->sig_len));
}

/* Decodes a base64url part holding a JSON object. Returns a new reference or NULL. */
static json_t *
jwt_decode_object(const char *b64, size_t len, size_t maxlen)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	json_t *obj = NULL;
	cjose_err cerr;

	if (!cjose_base64url_decode(b64, len, &raw, &rawlen, &cerr))
		return NULL;
	if (rawlen <= maxlen)
		obj = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	cjose_get_dealloc()(raw);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

static json_t *
jwt_header(const char *token, size_t len, struct jwt_parts *p)
{
	if (!jwt_split(token, len, p))
		return NULL;
	return jwt_decode_object(p->hdr, p->hdr_len, JWT_HDR_MAX);
}

static bool
jwks_key_fits(const struct jwks_key *k, const struct jwt_alg *a)
{
	return k->type == a->type && (k->alg == NULL || strcmp(k->alg, a->name) == 0);
}

/* Key choice: with a kid, the first key of that kid that fits the alg; without one, the
 * only key that fits, since trying several would let the token pick among them. */
static enum jwt_status
jwks_pick(const struct jwks *ks, const char *kid, const struct jwt_alg *a,
	  const struct jwks_key **out)
{
	const struct jwks_key *found = NULL;
	size_t i, nkid = 0, nfit = 0;

	for (i = 0; i < ks->n; i++) {
		const struct jwks_key *k = &ks->keys[i];

		if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
			continue;
		nkid++;
		if (!jwks_key_fits(k, a))
			continue;
		if (nfit++ == 0)
			found = k;
	}
	if (kid != NULL) {
		if (nkid == 0)
			return JWT_UNKNOWN_KID;
		if (nfit == 0)
			return JWT_BAD_ALG;
	} else if (nfit != 1) {
		/* None (perhaps rotated in since our last fetch: the caller may refresh) or
		 * ambiguous. */
		return JWT_UNKNOWN_KID;
	}
	*out = found;
	return JWT_OK;
}

enum jwt_status
jwt_verify(const struct jwks *ks, const char *token, size_t len, const char *const *algs,
	   size_t nalgs, json_t **claims_out)
{
	struct jwt_parts p;
	const struct jwt_alg *a = NULL;
	const struct jwks_key *key = NULL;
	const json_t *alg, *kid;
	json_t *hdr = NULL, *claims = NULL;
	cjose_jws_t *jws = NULL;
	cjose_err cerr;
	uint8_t *plain = NULL;
	size_t plain_len = 0, sig_bytes, i;
	enum jwt_status st;

	if (claims_out != NULL)
		*claims_out = NULL;
	if ((hdr = jwt_header(token, len, &p)) == NULL) {
		st = JWT_MALFORMED;
		goto out;
	}
	/* We understand no JWS extension, so any "crit" makes the token unusable (RFC 7515
	 * 4.1.11). jku/x5u/jwk/x5c are ignored: keys come only from the configured JWKS. */
	if (json_object_get(hdr, "crit") != NULL) {
		st = JWT_MALFORMED;
		goto out;
	}
	alg = json_object_get(hdr, "alg");
	if (!json_is_string(alg)) {
		st = JWT_MALFORMED;
		goto out;
	}
	for (i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++) {
		if (strcmp(json_string_value(alg), jwt_algs[i].name) == 0)
			a = &jwt_algs[i];
	}
	st = JWT_BAD_ALG;
	if (a == NULL)
		goto out;
	for (i = 0; i < nalgs && algs != NULL; i++) {
		if (algs[i] != NULL && strcmp(algs[i], a->name) == 0)
			break;
	}
	if (algs == NULL || i == nalgs)
		goto out;

	kid = json_object_get(hdr, "kid");
	if (kid != NULL && !json_is_string(kid)) {
		st = JWT_MALFORMED;
		goto out;
	}
	if (ks == NULL) {
		st = JWT_UNKNOWN_KID;
		goto out;
	}
	if ((st = jwks_pick(ks, kid != NULL ? json_string_value(kid) : NULL, a, &key)) != JWT_OK)
		goto out;

	/* A signature is exactly the modulus size (RSA) or r||s of the curve's size (ECDSA);
	 * cjose 0.6.2 does not check the ECDSA length, so nothing else reaches it. Unpadded
	 * base64url of n bytes is (4n + 2) / 3 characters. */
	sig_bytes = a->ec_sig_len != 0 ? a->ec_sig_len : cjose_jwk_get_keysize(key->jwk, &cerr) / 8;
	if (p.sig_len != (4 * sig_bytes + 2) / 3) {
		st = JWT_BAD_SIGNATURE;
		goto out;
	}
	if ((jws = cjose_jws_import(token, len, &cerr)) == NULL) {
		st = JWT_MALFORMED;
		goto out;
	}
	if (!cjose_jws_verify(jws, key->jwk, &cerr)) {
		st = JWT_BAD_SIGNATURE;
		goto out;
	}
	if (!cjose_jws_get_plaintext(jws, &plain, &plain_len, &cerr)) {
		st = JWT_MALFORMED;
		goto out;
	}
	claims = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(claims)) {
		st = JWT_MALFORMED;
		goto out;
	}
	st = JWT_OK;
	if (claims_out != NULL) {
		*claims_out = claims;
		claims = NULL;
	}
out:
	json_decref(claims);
	json_decref(hdr);
	if (jws != NULL)
		cjose_jws_release(jws);
	return st;
}

int
jwt_header_typ(const char *token, size_t len, char *buf, size_t buflen)
{
	struct jwt_parts p;
	json_t *hdr;
	const json_t *typ;
	int ret = -1;

	if (buf == NULL || buflen == 0)
		return -1;
	buf[0] = '\0';
	if ((hdr = jwt_header(token, len, &p)) == NULL)
		return -1;
	typ = json_object_get(hdr, "typ");
	if (typ == NULL) {
		ret = 0;
	} else if (json_is_string(typ) && json_string_length(typ) < buflen) {
		memcpy(buf, json_string_value(typ), json_string_length(typ) + 1);
		ret = 0;
	}
	json_decref(hdr);
	return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* Claims                                                                                   */

static bool
claim_str_eq(const json_t *v, const char *want)
{
	return json_is_string(v) && want != NULL && json_string_length(v) == strlen(want) &&
	       memcmp(json_string_value(v), want, strlen(want)) == 0;
}

/* A NumericDate within [0, JWT_TIME_MAX]; fractions are truncated. */
static bool
claim_time(const json_t *v, int64_t *out)
{
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 || json_integer_value(v) > JWT_TIME_MAX)
			return false;
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!isfinite(d) || d < 0 || d > (double)JWT_TIME_MAX)
		return false;
	*out = (int64_t)d;
	return true;
}

static bool
aud_trusted(const json_t *v, const struct jwt_expect *e)
{
	size_t i;

	if (claim_str_eq(v, e->audience))
		return true;
	for (i = 0; i < e->ntrusted_aud && e->trusted_aud != NULL; i++) {
		if (claim_str_eq(v, e->trusted_aud[i]))
			return true;
	}
	return false;
}

/* iss, aud, exp, iat: the checks ID tokens and logout tokens share. Sets *naud. */
static enum jwt_status
jwt_check_common(const json_t *claims, const struct jwt_expect *e, size_t *naud)
{
	const json_t *aud, *v;
	int64_t exp, iat, nbf, skew, max_age;
	bool ours = false;
	size_t i;

	if (!json_is_object(claims) || e == NULL)
		return JWT_MALFORMED;
	if (!claim_str_eq(json_object_get(claims, "iss"), e->issuer))
		return JWT_BAD_ISS;

	aud = json_object_get(claims, "aud");
	if (json_is_string(aud)) {
		ours = claim_str_eq(aud, e->audience);
		*naud = 1;
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v) {
			if (!aud_trusted(v, e))
				return JWT_BAD_AUD;
			if (claim_str_eq(v, e->audience))
				ours = true;
		}
		*naud = json_array_size(aud);
	}
	if (!ours)
		return JWT_BAD_AUD;

	/* Negative tolerances from a confused caller must not widen anything. */
	skew = e->skew > 0 ? e->skew : 0;
	max_age = e->max_age > 0 ? e->max_age : 0;
	if (!claim_time(json_object_get(claims, "exp"), &exp) || e->now > exp + skew)
		return JWT_EXPIRED;
	if (!claim_time(json_object_get(claims, "iat"), &iat) || iat > e->now + skew ||
	    iat < e->now - max_age)
		return JWT_BAD_IAT;
	/* nbf is optional in both token kinds, but a token not valid yet is not valid. */
	v = json_object_get(claims, "nbf");
	if (v != NULL && (!claim_time(v, &nbf) || nbf > e->now + skew))
		return JWT_BAD_CLAIMS;
	return JWT_OK;
}

enum jwt_status
jwt_check_id_claims(const json_t *claims, const struct jwt_expect *e)
{
	const json_t *azp, *v;
	size_t naud = 0;
	enum jwt_status st;

	if ((st = jwt_check_common(claims, e, &naud)) != JWT_OK)
		return st;
	/* OIDC Core 2: sub is required; callers key the user on it. */
	v = json_object_get(claims, "sub");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return JWT_BAD_CLAIMS;
	/* OIDC Core 3.1.3.7 steps 4-5: several audiences need an azp, and azp is us. */
	azp = json_object_get(claims, "azp");
	if (azp != NULL && !claim_str_eq(azp, e->audience))
		return JWT_BAD_AZP;
	if (azp == NULL && naud > 1)
		return JWT_BAD_AZP;
	return JWT_OK;
}

enum jwt_status
jwt_check_logout_claims(const json_t *claims, const struct jwt_expect *e)
{
	const json_t *events, *ev, *sub, *sid, *jti, *azp;
	size_t naud = 0;
	enum jwt_status st;

	if ((st = jwt_check_common(claims, e, &naud)) != JWT_OK)
		return st;
	azp = json_object_get(claims, "azp");
	if (azp != NULL && !claim_str_eq(azp, e->audience))
		return JWT_BAD_AZP;
	/* Back-Channel Logout 1.0, 2.4 and 2.6. The nonce ban keeps an ID token from being
	 * replayed as a logout token. */
	if (json_object_get(claims, "nonce") != NULL)
		return JWT_BAD_CLAIMS;
	events = json_object_get(claims, "events");
	ev = json_object_get(events, LOGOUT_EVENT);
	if (!json_is_object(events) || !json_is_object(ev))
		return JWT_BAD_CLAIMS;
	sub = json_object_get(claims, "sub");
	sid = json_object_get(claims, "sid");
	if ((sub != NULL && (!json_is_string(sub) || json_string_length(sub) == 0)) ||
	    (sid != NULL && (!json_is_string(sid) || json_string_length(sid) == 0)) ||
	    (sub == NULL && sid == NULL))
		return JWT_BAD_CLAIMS;
	/* The caller keys its replay cache on jti. */
	jti = json_object_get(claims, "jti");
	if (!json_is_string(jti) || json_string_length(jti) == 0)
		return JWT_BAD_CLAIMS;
	return JWT_OK;
}

enum jwt_status
jwt_validate_id_token(const struct jwks *ks, const char *token, size_t len, const char *const *algs,
		      size_t nalgs, const struct jwt_expect *e, json_t **claims_out)
{
	json_t *claims = NULL;
	enum jwt_status st;

	if (claims_out != NULL)
		*claims_out = NULL;
	if ((st = jwt_verify(ks, token, len, algs, nalgs, &claims)) != JWT_OK)
		return st;
	if ((st = jwt_check_id_claims(claims, e)) != JWT_OK) {
		json_decref(claims);
		return st;
	}
	if (claims_out != NULL)
		*claims_out = claims;
	else
		json_decref(claims);
	return JWT_OK;
}

const char *
jwt_status_str(enum jwt_status st)
{
	switch (st) {
	case JWT_OK:
		return "token is valid";
	case JWT_MALFORMED:
		return "token is malformed";
	case JWT_BAD_ALG:
		return "token signing algorithm is not allowed or does not match the key";
	case JWT_UNKNOWN_KID:
		return "token signing key is not in the identity provider's key set";
	case JWT_BAD_SIGNATURE:
		return "token signature does not verify";
	case JWT_BAD_ISS:
		return "token issuer is not the configured issuer";
	case JWT_BAD_AUD:
		return "token audience is not this client or includes an untrusted audience";
	case JWT_BAD_AZP:
		return "token authorized party is not this client";
	case JWT_EXPIRED:
		return "token has expired or has no expiry";
	case JWT_BAD_IAT:
		return "token issue time is missing, in the future or too old";
	case JWT_BAD_CLAIMS:
		return "token claims are not valid";
	}
	return "unknown token error";
}
