/*
 * broker-jwt: JWS verification against a JWKS and OIDC claim checks, including the classic
 * attacks (alg none, HS256 keyed with the IdP's public key, alg/key confusion, tampering,
 * unknown kid and key rotation, audience and time games).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* PEM of a cjose RSA key for the HS256 confusion test */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "broker/broker-jwt.h"

#define NOW INT64_C(1700000000)
#define ISS "https://idp.example.test"
#define CLIENT "saw-broker"
#define LOGOUT_EVENT "http://schemas.openid.net/event/backchannel-logout"

struct keys {
	cjose_jwk_t *rsa1, *rsa2, *rsa_small, *ec256, *ec384, *oct;
	struct jwks *ks; /* rsa1 + ec256 + ec384 */
};

static const char *const algs_rs256[] = { "RS256" };
static const char *const algs_all[] = { "RS256", "RS384", "RS512", "PS256", "ES256",
					"ES384", "ES512", "EdDSA", "HS256", "none" };
#define NALGS_ALL (sizeof(algs_all) / sizeof(algs_all[0]))

static const char *const trusted[] = { "other-trusted-client" };

static struct jwt_expect
expect(void)
{
	struct jwt_expect e = {
		.issuer = ISS,
		.audience = CLIENT,
		.trusted_aud = trusted,
		.ntrusted_aud = 1,
		.now = NOW,
		.skew = 60,
		.max_age = 600,
	};
	return e;
}

static json_t *
claims_base(void)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "aud", CLIENT, "sub",
			      "alice", "exp", (json_int_t)(NOW + 300), "iat",
			      (json_int_t)(NOW - 10), "nonce", "n-0S6_WzA2Mj");
	assert_non_null(c);
	return c;
}

static char *
dump(json_t *c)
{
	char *s = json_dumps(c, JSON_COMPACT);

	assert_non_null(s);
	json_decref(c);
	return s;
}

/* Public JWK JSON object of k with kid (and use, when not NULL). */
static json_t *
pub_jwk(const cjose_jwk_t *k, const char *kid, const char *use)
{
	cjose_err cerr;
	char *s = cjose_jwk_to_json(k, false, &cerr);
	json_t *j;

	assert_non_null(s);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	free(s);
	if (kid != NULL)
		json_object_set_new(j, "kid", json_string(kid));
	if (use != NULL)
		json_object_set_new(j, "use", json_string(use));
	return j;
}

/* Builds {"keys":[...]} from NULL-terminated (key, kid) pairs; caller frees. */
static char *
jwks_json(const cjose_jwk_t *k, const char *kid, ...)
{
	json_t *arr = json_array(), *set;
	char *out;
	va_list ap;

	va_start(ap, kid);
	while (k != NULL) {
		json_array_append_new(arr, pub_jwk(k, kid, "sig"));
		k = va_arg(ap, const cjose_jwk_t *);
		if (k != NULL)
			kid = va_arg(ap, const char *);
	}
	va_end(ap);
	set = json_pack("{s:o}", "keys", arr);
	out = json_dumps(set, JSON_COMPACT);
	assert_non_null(out);
	json_decref(set);
	return out;
}

static struct jwks *
parse_ok(const char *json)
{
	char err[256] = "";
	struct jwks *ks = jwks_parse(json, strlen(json), err, sizeof(err));

	if (ks == NULL)
		fail_msg("jwks_parse: %s", err);
	return ks;
}

static void
parse_fails(const char *json, size_t len)
{
	char err[256] = "";

	assert_null(jwks_parse(json, len, err, sizeof(err)));
	assert_true(strlen(err) > 0);
}

static char *
sign_raw(const cjose_jwk_t *k, json_t *hdr, const char *payload)
{
	cjose_err cerr;
	cjose_jws_t *jws;
	const char *ser = NULL;
	char *out;

	jws = cjose_jws_sign(k, (cjose_header_t *)hdr, (const uint8_t *)payload, strlen(payload),
			     &cerr);
	if (jws == NULL)
		fail_msg("cjose_jws_sign: %s", cerr.message);
	assert_true(cjose_jws_export(jws, &ser, &cerr));
	out = strdup(ser);
	cjose_jws_release(jws);
	json_decref(hdr);
	return out;
}

/* Signs claims (consumed) with alg and kid (may be NULL). */
static char *
sign_tok(const cjose_jwk_t *k, const char *alg, const char *kid, json_t *claims)
{
	json_t *hdr = json_pack("{s:s}", "alg", alg);
	char *payload = json_dumps(claims, JSON_COMPACT);
	char *tok;

	if (kid != NULL)
		json_object_set_new(hdr, "kid", json_string(kid));
	tok = sign_raw(k, hdr, payload);
	free(payload);
	json_decref(claims);
	return tok;
}

static char *
b64u(const char *s, size_t len)
{
	cjose_err cerr;
	char *out = NULL;
	size_t outlen;

	assert_true(cjose_base64url_encode((const uint8_t *)s, len, &out, &outlen, &cerr));
	return out;
}

/* header-json . payload-json . sig (raw text, may be "") */
static char *
craft(const char *hdr, const char *payload, const char *sig)
{
	char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload)), *out;

	assert_true(asprintf(&out, "%s.%s.%s", h, p, sig) > 0);
	free(h);
	free(p);
	return out;
}

static enum jwt_status
validate(const struct jwks *ks, const char *tok, const char *const *algs, size_t nalgs)
{
	struct jwt_expect e = expect();
	json_t *claims = (json_t *)0x1;
	enum jwt_status st;

	st = jwt_validate_id_token(ks, tok, strlen(tok), algs, nalgs, &e, &claims);
	if (st == JWT_OK) {
		assert_non_null(claims);
		json_decref(claims);
	} else {
		assert_null(claims);
	}
	return st;
}

#define assert_status(got, want)                                                \
	do {                                                                    \
		enum jwt_status _g = (got), _w = (want);                        \
		if (_g != _w)                                                   \
			fail_msg("got \"%s\", want \"%s\"", jwt_status_str(_g), \
				 jwt_status_str(_w));                           \
	} while (0)

/* ---------------------------------------------------------------------------------------- */

static int
group_setup(void **state)
{
	static const uint8_t e[] = { 1, 0, 1 };
	struct keys *k = calloc(1, sizeof(*k));
	cjose_err cerr;
	char *js;

	k->rsa1 = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	k->rsa2 = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	k->rsa_small = cjose_jwk_create_RSA_random(1024, e, sizeof(e), &cerr);
	k->ec256 = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	k->ec384 = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_384, &cerr);
	k->oct = cjose_jwk_create_oct_random(32, &cerr);
	if (!k->rsa1 || !k->rsa2 || !k->rsa_small || !k->ec256 || !k->ec384 || !k->oct)
		return -1;
	js = jwks_json(k->rsa1, "rsa1", k->ec256, "ec1", k->ec384, "ec384", NULL);
	k->ks = jwks_parse(js, strlen(js), NULL, 0);
	free(js);
	if (k->ks == NULL || jwks_count(k->ks) != 3)
		return -1;
	*state = k;
	return 0;
}

static int
group_teardown(void **state)
{
	struct keys *k = *state;

	jwks_free(k->ks);
	cjose_jwk_release(k->rsa1);
	cjose_jwk_release(k->rsa2);
	cjose_jwk_release(k->rsa_small);
	cjose_jwk_release(k->ec256);
	cjose_jwk_release(k->ec384);
	cjose_jwk_release(k->oct);
	free(k);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Good tokens                                                                              */

static void
test_rs256_ok(void **state)
{
	struct keys *k = *state;
	struct jwt_expect e = expect();
	char *tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	json_t *claims = NULL;

	assert_status(jwt_validate_id_token(k->ks, tok, strlen(tok), algs_rs256, 1, &e, &claims),
		      JWT_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "alice");
	json_decref(claims);
	/* verify alone, claims not wanted */
	assert_status(jwt_verify(k->ks, tok, strlen(tok), algs_rs256, 1, NULL), JWT_OK);
	free(tok);
}

static void
test_es256_ok(void **state)
{
	struct keys *k = *state;
	static const char *const algs[] = { "ES256" };
	char *tok = sign_tok(k->ec256, "ES256", "ec1", claims_base());

	assert_status(validate(k->ks, tok, algs, 1), JWT_OK);
	free(tok);
	tok = sign_tok(k->ec384, "ES384", "ec384", claims_base());
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_OK);
	free(tok);
}

static void
test_other_rsa_algs_ok(void **state)
{
	struct keys *k = *state;
	static const char *const names[] = { "RS384", "RS512", "PS256" };
	size_t i;

	for (i = 0; i < 3; i++) {
		char *tok = sign_tok(k->rsa1, names[i], "rsa1", claims_base());

		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_OK);
		free(tok);
	}
}

static void
test_no_kid(void **state)
{
	struct keys *k = *state;
	struct jwks *two;
	char *js, *tok;

	/* exactly one RSA key in the set: a kid-less RS256 token is accepted */
	tok = sign_tok(k->rsa1, "RS256", NULL, claims_base());
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_OK);

	/* two RSA keys: ambiguous, refused even though one would verify */
	js = jwks_json(k->rsa1, "rsa1", k->rsa2, "rsa2", NULL);
	two = parse_ok(js);
	assert_int_equal(jwks_count(two), 2);
	assert_status(validate(two, tok, algs_rs256, 1), JWT_UNKNOWN_KID);
	free(tok);
	jwks_free(two);
	free(js);

	/* no P-256 key with a kid-less ES256 token: only P-384 counts as EC, wrong curve */
	js = jwks_json(k->rsa1, "rsa1", k->ec384, "ec384", NULL);
	two = parse_ok(js);
	tok = sign_tok(k->ec256, "ES256", NULL, claims_base());
	assert_status(validate(two, tok, algs_all, NALGS_ALL), JWT_UNKNOWN_KID);
	free(tok);
	jwks_free(two);
	free(js);
}

/* ---------------------------------------------------------------------------------------- */
/* Algorithm attacks                                                                        */

static void
test_alg_none(void **state)
{
	struct keys *k = *state;
	static const char *const hdrs[] = {
		"{\"alg\":\"none\",\"kid\":\"rsa1\"}", "{\"alg\":\"none\"}",
		"{\"alg\":\"None\",\"kid\":\"rsa1\"}", "{\"alg\":\"NONE\"}",
		"{\"alg\":\"\",\"kid\":\"rsa1\"}",
	};
	char *payload = dump(claims_base()), *tok, *tok2;
	size_t i;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		tok = craft(hdrs[i], payload, "");
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
		/* with some signature bytes too */
		assert_true(asprintf(&tok2, "%sAAAA", tok) > 0);
		assert_status(validate(k->ks, tok2, algs_all, NALGS_ALL), JWT_BAD_ALG);
		free(tok2);
		free(tok);
	}
	/* alg missing or not a string */
	tok = craft("{\"kid\":\"rsa1\"}", payload, "AAAA");
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_MALFORMED);
	free(tok);
	tok = craft("{\"alg\":[\"RS256\"],\"kid\":\"rsa1\"}", payload, "AAAA");
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_MALFORMED);
	free(tok);
	free(payload);
}

static char *
rsa_pem(const cjose_jwk_t *k)
{
	cjose_err cerr;
	RSA *rsa = cjose_jwk_get_keydata(k, &cerr);
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(rsa);
	assert_int_equal(PEM_write_bio_RSA_PUBKEY(bio, rsa), 1);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	return out;
}

/* The key confusion attack: HS256 keyed with bytes of the IdP's *public* key. */
static void
test_hs256_with_public_key(void **state)
{
	struct keys *k = *state;
	char *secrets[3];
	cjose_err cerr;
	size_t i;

	secrets[0] = cjose_jwk_to_json(k->rsa1, false, &cerr);
	secrets[1] = rsa_pem(k->rsa1);
	secrets[2] = jwks_json(k->rsa1, "rsa1", NULL);
	for (i = 0; i < 3; i++) {
		cjose_jwk_t *hk = cjose_jwk_create_oct_spec((const uint8_t *)secrets[i],
							    strlen(secrets[i]), &cerr);
		char *tok;

		assert_non_null(hk);
		tok = sign_tok(hk, "HS256", "rsa1", claims_base());
		/* even when a careless configuration lists HS256 */
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
		free(tok);
		tok = sign_tok(hk, "HS256", NULL, claims_base());
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
		free(tok);
		tok = sign_tok(hk, "HS512", "rsa1", claims_base());
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
		free(tok);
		cjose_jwk_release(hk);
		free(secrets[i]);
	}
}

static void
test_hs256_oct_in_jwks(void **state)
{
	struct keys *k = *state;
	cjose_err cerr;
	char *oct_json = cjose_jwk_to_json(k->oct, true, &cerr), *js, *tok;
	json_t *oct = json_loads(oct_json, 0, NULL), *set;
	struct jwks *ks;

	/* a careless IdP publishing its HMAC secret ("k") next to its RSA key */
	json_object_set_new(oct, "kid", json_string("hmac"));
	json_object_set_new(oct, "use", json_string("sig"));
	set = json_pack("{s:[o,O]}", "keys", pub_jwk(k->rsa1, "rsa1", "sig"), oct);
	js = dump(set);
	ks = parse_ok(js);
	assert_int_equal(jwks_count(ks), 1); /* the oct key is never used */

	tok = sign_tok(k->oct, "HS256", "hmac", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	tok = sign_tok(k->oct, "HS256", NULL, claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	/* an RS256 header pointing at the oct kid finds nothing */
	tok = sign_tok(k->rsa1, "RS256", "hmac", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_UNKNOWN_KID);
	free(tok);
	jwks_free(ks);
	free(js);

	/* a set of only oct keys is no key set */
	js = dump(json_pack("{s:[o]}", "keys", oct));
	parse_fails(js, strlen(js));
	free(js);
	free(oct_json);
}

static void
test_alg_not_allowed(void **state)
{
	struct keys *k = *state;
	char *tok = sign_tok(k->rsa1, "RS384", "rsa1", claims_base());

	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_ALG);
	/* empty allow-list */
	assert_status(validate(k->ks, tok, NULL, 0), JWT_BAD_ALG);
	free(tok);
	tok = sign_tok(k->ec256, "ES256", "ec1", claims_base());
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_ALG);
	free(tok);
	/* EdDSA: cjose 0.6.2 cannot verify it, so it is refused even when allowed */
	{
		char *payload = dump(claims_base());

		tok = craft("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", payload, "AAAA");
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
		free(tok);
		free(payload);
	}
}

static void
test_alg_key_mismatch(void **state)
{
	struct keys *k = *state;
	char *payload = dump(claims_base()), *tok;

	/* ES256 header, kid of the RSA key */
	tok = sign_tok(k->ec256, "ES256", "rsa1", claims_base());
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	/* RS256 header, kid of an EC key */
	tok = sign_tok(k->rsa1, "RS256", "ec1", claims_base());
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	/* ES384 header, kid of the P-256 key: wrong curve */
	tok = craft(
		"{\"alg\":\"ES384\",\"kid\":\"ec1\"}", payload,
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	free(payload);
}

static void
test_jwk_alg_and_use(void **state)
{
	struct keys *k = *state;
	json_t *a = pub_jwk(k->rsa1, "rsa1", "sig"), *b = pub_jwk(k->rsa2, "enc1", "enc");
	json_t *c = pub_jwk(k->rsa2, "ops1", NULL), *set;
	struct jwks *ks;
	char *js, *tok;

	json_object_set_new(a, "alg", json_string("RS256"));
	json_object_set_new(c, "key_ops", json_pack("[s]", "encrypt"));
	set = json_pack("{s:[o,o,o]}", "keys", a, b, c);
	js = dump(set);
	ks = parse_ok(js);
	assert_int_equal(jwks_count(ks), 1);

	tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_OK);
	free(tok);
	/* the JWK says RS256: PS256 with the same key is refused */
	tok = sign_tok(k->rsa1, "PS256", "rsa1", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_BAD_ALG);
	free(tok);
	/* "use":"enc" and key_ops without verify are not signature keys */
	tok = sign_tok(k->rsa2, "RS256", "enc1", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_UNKNOWN_KID);
	free(tok);
	tok = sign_tok(k->rsa2, "RS256", "ops1", claims_base());
	assert_status(validate(ks, tok, algs_all, NALGS_ALL), JWT_UNKNOWN_KID);
	free(tok);
	jwks_free(ks);
	free(js);
}

/* ---------------------------------------------------------------------------------------- */
/* Tampering, kid and rotation                                                              */

static void
test_tampered_payload(void **state)
{
	struct keys *k = *state;
	char *tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
	char *payload = dump(claims_base()), *evil, *p, *forged, orig = dot1[5];
	json_t *c;

	/* flip one character of the payload part */
	dot1[5] = orig == 'A' ? 'B' : 'A';
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_SIGNATURE);
	dot1[5] = orig;
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_OK);

	/* decode-modify-re-encode: sub alice -> mallory, keep header and signature */
	c = claims_base();
	json_object_set_new(c, "sub", json_string("mallory"));
	evil = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	p = b64u(evil, strlen(evil));
	*dot2 = '\0';
	*dot1 = '\0';
	assert_true(asprintf(&forged, "%s.%s.%s", tok, p, dot2 + 1) > 0);
	assert_status(validate(k->ks, forged, algs_rs256, 1), JWT_BAD_SIGNATURE);
	free(forged);
	free(p);
	free(evil);
	free(payload);
	free(tok);
}

static void
test_tampered_signature(void **state)
{
	struct keys *k = *state;
	char *tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	char *sig = strrchr(tok, '.') + 1;
	size_t n;

	sig[10] = sig[10] == 'x' ? 'y' : 'x';
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_SIGNATURE);
	free(tok);

	tok = sign_tok(k->ec256, "ES256", "ec1", claims_base());
	sig = strrchr(tok, '.') + 1;
	sig[20] = sig[20] == 'x' ? 'y' : 'x';
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_SIGNATURE);
	sig[20] = sig[20] == 'x' ? 'y' : 'x';
	/* ECDSA signature of the wrong length (cjose does not check it) */
	n = strlen(tok);
	tok[n - 4] = '\0';
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_SIGNATURE);
	/* empty signature */
	*sig = '\0';
	assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_BAD_SIGNATURE);
	free(tok);

	/* RSA signature one byte short / long */
	tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	n = strlen(tok);
	tok[n - 4] = '\0';
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_SIGNATURE);
	free(tok);
	tok = sign_tok(k->rsa1, "PS256", "rsa1", claims_base());
	{
		char *longer;

		assert_true(asprintf(&longer, "%sAAAA", tok) > 0);
		assert_status(validate(k->ks, longer, algs_all, NALGS_ALL), JWT_BAD_SIGNATURE);
		free(longer);
	}
	free(tok);

	/* signed by another RSA key under our kid */
	tok = sign_tok(k->rsa2, "RS256", "rsa1", claims_base());
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_SIGNATURE);
	free(tok);
}

static void
test_unknown_kid_and_rotation(void **state)
{
	struct keys *k = *state;
	char *tok = sign_tok(k->rsa2, "RS256", "rsa2", claims_base());
	struct jwks *rotated;
	char *js;

	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_UNKNOWN_KID);
	/* the IdP rotated: the refreshed set holds the new key */
	js = jwks_json(k->rsa2, "rsa2", k->rsa1, "rsa1", NULL);
	rotated = parse_ok(js);
	assert_status(validate(rotated, tok, algs_rs256, 1), JWT_OK);
	free(tok);
	/* a kid-less token with two RSA keys is still ambiguous */
	tok = sign_tok(k->rsa2, "RS256", NULL, claims_base());
	assert_status(validate(rotated, tok, algs_rs256, 1), JWT_UNKNOWN_KID);
	free(tok);
	/* no key set at all */
	tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	assert_status(validate(NULL, tok, algs_rs256, 1), JWT_UNKNOWN_KID);
	free(tok);
	jwks_free(rotated);
	free(js);
}

/* ---------------------------------------------------------------------------------------- */
/* Malformed tokens                                                                         */

static void
test_malformed(void **state)
{
	struct keys *k = *state;
	char *tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	size_t len = strlen(tok), i;
	char *big, *s;
	static const char *const junk[] = {
		"",
		".",
		"..",
		"...",
		"a.b",
		"a.b.c.d",
		"garbage",
		"eyJhbGciOiJSUzI1NiJ9",
		"eyJhbGciOiJSUzI1NiJ9.e30",
		"eyJhbGciOiJSUzI1NiJ9.e30.AAAA.AAAA",
		"!!!.???.***",
		"eyJhbGciOiJSUzI1NiJ9..AAAA",
		".e30.AAAA",
		"eyJhbGciOiJSUzI1NiJ9=.e30.AAAA",
		"e.e30.AAAA",
	};

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_status(validate(k->ks, junk[i], algs_all, NALGS_ALL), JWT_MALFORMED);
	assert_status(jwt_verify(k->ks, NULL, 0, algs_all, NALGS_ALL, NULL), JWT_MALFORMED);

	/* every truncation of a valid token is refused, none crashes */
	for (i = 0; i < len; i++) {
		enum jwt_status st = jwt_verify(k->ks, tok, i, algs_rs256, 1, NULL);

		assert_int_not_equal(st, JWT_OK);
	}
	/* whitespace, newline, NUL inside */
	s = strdup(tok);
	s[len / 2] = ' ';
	assert_status(validate(k->ks, s, algs_rs256, 1), JWT_MALFORMED);
	free(s);
	assert_true(asprintf(&s, "%s\n", tok) > 0);
	assert_status(validate(k->ks, s, algs_rs256, 1), JWT_MALFORMED);
	free(s);
	assert_true(asprintf(&s, " %s", tok) > 0);
	assert_status(validate(k->ks, s, algs_rs256, 1), JWT_MALFORMED);
	free(s);
	assert_status(jwt_verify(k->ks, tok, len + 1, algs_rs256, 1, NULL), JWT_MALFORMED);
	/* 4 parts: a valid token with a fourth part */
	assert_true(asprintf(&s, "%s.AAAA", tok) > 0);
	assert_status(validate(k->ks, s, algs_rs256, 1), JWT_MALFORMED);
	free(s);

	/* oversized: a valid-looking token just past the limit */
	big = malloc(JWT_MAX_LEN + 2);
	memcpy(big, tok, len);
	memset(big + len, 'A', JWT_MAX_LEN + 1 - len);
	big[JWT_MAX_LEN + 1] = '\0';
	assert_status(jwt_verify(k->ks, big, JWT_MAX_LEN + 1, algs_rs256, 1, NULL), JWT_MALFORMED);
	free(big);
	free(tok);
}

static void
test_bad_header(void **state)
{
	struct keys *k = *state;
	char *payload = dump(claims_base()), *tok;
	static const char *const hdrs[] = {
		"not json",
		"[\"RS256\"]",
		"\"RS256\"",
		"{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"],\"exp\":1}",
		"{\"alg\":\"RS256\",\"kid\":17}",
		"{\"alg\":\"RS256\",\"alg\":\"HS256\",\"kid\":\"rsa1\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		tok = craft(hdrs[i], payload, "AAAA");
		assert_status(validate(k->ks, tok, algs_all, NALGS_ALL), JWT_MALFORMED);
		free(tok);
	}
	free(payload);
}

static void
test_non_object_claims(void **state)
{
	struct keys *k = *state;
	static const char *const payloads[] = {
		"[1,2]",
		"\"alice\"",
		"1",
		"null",
		"not json",
		"{\"iss\":\"" ISS "\",\"iss\":\"https://evil.test\"}",
		"{\"sub\":\"a\\u0000b\"}",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		json_t *hdr = json_pack("{s:s,s:s}", "alg", "RS256", "kid", "rsa1");
		char *tok = sign_raw(k->rsa1, hdr, payloads[i]);

		assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_MALFORMED);
		free(tok);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Claims                                                                                   */

static enum jwt_status
check_with(json_t *c)
{
	struct jwt_expect e = expect();
	enum jwt_status st = jwt_check_id_claims(c, &e);

	json_decref(c);
	return st;
}

static json_t *
with(const char *name, json_t *v)
{
	json_t *c = claims_base();

	if (v == NULL)
		json_object_del(c, name);
	else
		json_object_set_new(c, name, v);
	return c;
}

static void
test_claims_iss(void **state)
{
	struct keys *k = *state;
	char *tok =
		sign_tok(k->rsa1, "RS256", "rsa1", with("iss", json_string("https://evil.test")));

	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_ISS);
	free(tok);
	assert_status(check_with(with("iss", json_string(ISS "/"))), JWT_BAD_ISS);
	assert_status(check_with(with("iss", json_string("https://idp.example.tes"))), JWT_BAD_ISS);
	assert_status(check_with(with("iss", json_string("HTTPS://idp.example.test"))),
		      JWT_BAD_ISS);
	assert_status(check_with(with("iss", json_pack("[s]", ISS))), JWT_BAD_ISS);
	assert_status(check_with(with("iss", NULL)), JWT_BAD_ISS);
	assert_status(check_with(claims_base()), JWT_OK);
}

static void
test_claims_aud_azp(void **state)
{
	struct keys *k = *state;
	json_t *c;
	char *tok;

	/* our client missing */
	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("aud", json_string("someone-else")));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_AUD);
	free(tok);
	assert_status(check_with(with("aud", NULL)), JWT_BAD_AUD);
	assert_status(check_with(with("aud", json_array())), JWT_BAD_AUD);
	assert_status(check_with(with("aud", json_integer(1))), JWT_BAD_AUD);
	assert_status(check_with(with("aud", json_pack("[s]", "saw-broker2"))), JWT_BAD_AUD);
	assert_status(check_with(with("aud", json_pack("[s]", CLIENT))), JWT_OK);
	/* an audience we do not trust next to ours */
	c = with("aud", json_pack("[s,s]", CLIENT, "evil-client"));
	json_object_set_new(c, "azp", json_string(CLIENT));
	assert_status(check_with(c), JWT_BAD_AUD);
	c = with("aud", json_pack("[s,i]", CLIENT, 5));
	json_object_set_new(c, "azp", json_string(CLIENT));
	assert_status(check_with(c), JWT_BAD_AUD);
	/* a trusted extra audience is fine with azp, refused without (OIDC Core 3.1.3.7) */
	c = with("aud", json_pack("[s,s]", CLIENT, "other-trusted-client"));
	json_object_set_new(c, "azp", json_string(CLIENT));
	tok = sign_tok(k->rsa1, "RS256", "rsa1", c);
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_OK);
	free(tok);
	tok = sign_tok(k->rsa1, "RS256", "rsa1",
		       with("aud", json_pack("[s,s]", CLIENT, "other-trusted-client")));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_AZP);
	free(tok);
	/* azp, if present, is us */
	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("azp", json_string("other-trusted-client")));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_AZP);
	free(tok);
	assert_status(check_with(with("azp", json_integer(3))), JWT_BAD_AZP);
	assert_status(check_with(with("azp", json_string(CLIENT))), JWT_OK);
}

static void
test_claims_exp(void **state)
{
	struct keys *k = *state;
	char *tok;

	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("exp", json_integer(NOW - 61)));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_EXPIRED);
	free(tok);
	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("exp", NULL));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_EXPIRED);
	free(tok);
	/* within skew */
	assert_status(check_with(with("exp", json_integer(NOW - 60))), JWT_OK);
	assert_status(check_with(with("exp", json_real((double)NOW + 0.5))), JWT_OK);
	assert_status(check_with(with("exp", json_string("9999999999"))), JWT_EXPIRED);
	assert_status(check_with(with("exp", json_integer(-1))), JWT_EXPIRED);
	assert_status(check_with(with("exp", json_integer(INT64_MAX))), JWT_EXPIRED);
	assert_status(check_with(with("exp", json_real(1e300))), JWT_EXPIRED);
	assert_status(check_with(with("exp", json_true())), JWT_EXPIRED);
}

static void
test_claims_iat(void **state)
{
	struct keys *k = *state;
	char *tok;

	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("iat", json_integer(NOW + 61)));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_IAT);
	free(tok);
	tok = sign_tok(k->rsa1, "RS256", "rsa1", with("iat", json_integer(NOW - 601)));
	assert_status(validate(k->ks, tok, algs_rs256, 1), JWT_BAD_IAT);
	free(tok);
	assert_status(check_with(with("iat", NULL)), JWT_BAD_IAT);
	assert_status(check_with(with("iat", json_string("now"))), JWT_BAD_IAT);
	assert_status(check_with(with("iat", json_integer(NOW + 60))), JWT_OK);
	assert_status(check_with(with("iat", json_integer(NOW - 600))), JWT_OK);
	assert_status(check_with(with("iat", json_real((double)NOW - 1.25))), JWT_OK);
	assert_status(check_with(with("iat", json_integer(INT64_MIN))), JWT_BAD_IAT);
}

static void
test_claims_sub_nbf(void **state)
{
	assert_status(check_with(with("sub", NULL)), JWT_BAD_CLAIMS);
	assert_status(check_with(with("sub", json_string(""))), JWT_BAD_CLAIMS);
	assert_status(check_with(with("sub", json_integer(7))), JWT_BAD_CLAIMS);
	assert_status(check_with(with("nbf", json_integer(NOW + 61))), JWT_BAD_CLAIMS);
	assert_status(check_with(with("nbf", json_string("0"))), JWT_BAD_CLAIMS);
	assert_status(check_with(with("nbf", json_integer(NOW + 60))), JWT_OK);
	assert_status(check_with(with("nbf", json_integer(NOW - 100))), JWT_OK);
}

static void
test_claims_args(void **state)
{
	struct jwt_expect e = expect();
	json_t *c = claims_base();

	assert_status(jwt_check_id_claims(NULL, &e), JWT_MALFORMED);
	assert_status(jwt_check_id_claims(c, NULL), JWT_MALFORMED);
	e.trusted_aud = NULL;
	e.ntrusted_aud = 3;
	assert_status(jwt_check_id_claims(c, &e), JWT_OK);
	json_decref(c);
}

static json_t *
logout_base(void)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:{s:{}}}", "iss", ISS, "aud",
			      CLIENT, "sub", "alice", "sid", "08a5019c", "exp",
			      (json_int_t)(NOW + 120), "iat", (json_int_t)NOW, "jti", "bWJq",
			      "events", LOGOUT_EVENT);

	assert_non_null(c);
	return c;
}

static void
test_logout_claims(void **state)
{
	struct jwt_expect e = expect();
	json_t *c = logout_base();

	assert_status(jwt_check_logout_claims(c, &e), JWT_OK);
	json_object_del(c, "sub");
	assert_status(jwt_check_logout_claims(c, &e), JWT_OK);
	json_object_del(c, "sid");
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_decref(c);

	c = logout_base();
	json_object_set_new(c, "nonce", json_string("n"));
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_decref(c);

	c = logout_base();
	json_object_del(c, "jti");
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_decref(c);

	c = logout_base();
	json_object_set_new(c, "events", json_pack("{s:{}}", "http://example.test/other"));
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_object_set_new(c, "events", json_pack("{s:s}", LOGOUT_EVENT, "x"));
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_decref(c);

	c = logout_base();
	json_object_set_new(c, "iss", json_string("https://evil.test"));
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_ISS);
	json_decref(c);

	c = logout_base();
	json_object_set_new(c, "exp", json_integer(NOW - 3600));
	assert_status(jwt_check_logout_claims(c, &e), JWT_EXPIRED);
	json_decref(c);

	/* an ID token (has a nonce, no events) is not a logout token */
	c = claims_base();
	json_object_set_new(c, "jti", json_string("x"));
	assert_status(jwt_check_logout_claims(c, &e), JWT_BAD_CLAIMS);
	json_decref(c);
}

/* ---------------------------------------------------------------------------------------- */
/* JWKS parsing                                                                             */

static void
test_jwks_parse_errors(void **state)
{
	struct keys *k = *state;
	static const char *const bad[] = {
		"not json",
		"[]",
		"{}",
		"{\"keys\":{}}",
		"{\"keys\":[]}",
		"{\"keys\":[1,\"x\",null,{}]}",
		"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"A===\",\"e\":\"AQAB\"}]}",
		"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"====\",\"e\":\"AQAB\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"A===\",\"y\":\"A===\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
		("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
		 "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"),
		"{\"keys\":[],\"keys\":[]}",
	};
	json_t *set;
	char *js, *big;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], strlen(bad[i]));
	parse_fails(NULL, 0);
	parse_fails("{\"keys\":[]}", 0);
	assert_null(jwks_parse("x", 1, NULL, 0)); /* no error buffer is fine */

	/* 1024-bit RSA is too weak to trust */
	js = jwks_json(k->rsa_small, "small", NULL);
	parse_fails(js, strlen(js));
	free(js);

	/* oversized: a valid set padded with whitespace past the limit */
	js = jwks_json(k->rsa1, "rsa1", NULL);
	big = malloc(JWKS_MAX_LEN + 2);
	memset(big, ' ', JWKS_MAX_LEN + 1);
	memcpy(big, js, strlen(js));
	big[JWKS_MAX_LEN + 1] = '\0';
	parse_fails(big, JWKS_MAX_LEN + 1);
	jwks_free(parse_ok(js));
	free(big);
	free(js);

	/* too many keys */
	set = json_pack("{s:[]}", "keys");
	for (i = 0; i < 65; i++)
		json_array_append_new(json_object_get(set, "keys"), pub_jwk(k->ec256, "e", NULL));
	js = json_dumps(set, JSON_COMPACT);
	parse_fails(js, strlen(js));
	free(js);
	json_decref(set);

	/* one bad key does not take the set down */
	set = json_pack("{s:[{s:s,s:s,s:s},o,{s:s,s:s}]}", "keys", "kty", "RSA", "n", "A===", "e",
			"AQAB", pub_jwk(k->ec256, "ec1", "sig"), "kty", "oct", "k", "c2VjcmV0");
	js = json_dumps(set, JSON_COMPACT);
	{
		struct jwks *ks = parse_ok(js);

		assert_int_equal(jwks_count(ks), 1);
		jwks_free(ks);
	}
	free(js);
	json_decref(set);
	assert_int_equal(jwks_count(NULL), 0);
	jwks_free(NULL);
}

static void
test_header_typ_and_strings(void **state)
{
	struct keys *k = *state;
	json_t *hdr =
		json_pack("{s:s,s:s,s:s}", "alg", "RS256", "kid", "rsa1", "typ", "logout+jwt");
	char *payload = dump(logout_base());
	char *tok = sign_raw(k->rsa1, hdr, payload);
	char buf[32];
	int i, j;

	assert_int_equal(jwt_header_typ(tok, strlen(tok), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "logout+jwt");
	assert_int_equal(jwt_header_typ(tok, strlen(tok), buf, 5), -1);
	assert_int_equal(jwt_header_typ("x.y", 3, buf, sizeof(buf)), -1);
	free(tok);
	tok = sign_tok(k->rsa1, "RS256", "rsa1", claims_base());
	assert_int_equal(jwt_header_typ(tok, strlen(tok), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	free(tok);
	free(payload);

	for (i = JWT_OK; i <= JWT_BAD_CLAIMS; i++) {
		assert_non_null(jwt_status_str((enum jwt_status)i));
		for (j = JWT_OK; j < i; j++)
			assert_string_not_equal(jwt_status_str((enum jwt_status)i),
						jwt_status_str((enum jwt_status)j));
	}
	assert_non_null(jwt_status_str((enum jwt_status)99));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rs256_ok),
		cmocka_unit_test(test_es256_ok),
		cmocka_unit_test(test_other_rsa_algs_ok),
		cmocka_unit_test(test_no_kid),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_hs256_with_public_key),
		cmocka_unit_test(test_hs256_oct_in_jwks),
		cmocka_unit_test(test_alg_not_allowed),
		cmocka_unit_test(test_alg_key_mismatch),
		cmocka_unit_test(test_jwk_alg_and_use),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_tampered_signature),
		cmocka_unit_test(test_unknown_kid_and_rotation),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_non_object_claims),
		cmocka_unit_test(test_claims_iss),
		cmocka_unit_test(test_claims_aud_azp),
		cmocka_unit_test(test_claims_exp),
		cmocka_unit_test(test_claims_iat),
		cmocka_unit_test(test_claims_sub_nbf),
		cmocka_unit_test(test_claims_args),
		cmocka_unit_test(test_logout_claims),
		cmocka_unit_test(test_jwks_parse_errors),
		cmocka_unit_test(test_header_typ_and_strings),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
