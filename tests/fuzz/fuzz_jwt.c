/*
 * libFuzzer target for broker-jwt: the input is "JWKS JSON \0 token". The JWKS goes through
 * jwks_parse(), the token through jwt_validate_id_token() against it with fixed expectations,
 * and the whole input through jwks_parse() too. The token's bytes are also read as JSON claims
 * and checked directly, so the claim rules are fuzzed without needing a valid signature.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/broker-jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Must match the seeds in corpus/jwt/ so that valid pairs get past the claim checks. */
#define FUZZ_NOW INT64_C(1700000000)

static const char *const fuzz_algs[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
					 "ES256", "ES384", "ES512", "EdDSA", "HS256", "none" };
static const char *const fuzz_trusted[] = { "other-trusted-client" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct jwt_expect e = {
		.issuer = "https://idp.example.test",
		.audience = "saw-broker",
		.trusted_aud = fuzz_trusted,
		.ntrusted_aud = 1,
		.now = FUZZ_NOW,
		.skew = 60,
		.max_age = 600,
	};
	const char *in = (const char *)data;
	const uint8_t *nul = memchr(data, '\0', size);
	struct jwks *ks = NULL;
	json_t *claims = NULL;
	const char *tok = in;
	size_t toklen = size;
	char err[128], typ[64];

	jwks_free(jwks_parse(in, size, err, sizeof(err)));

	if (nul != NULL) {
		ks = jwks_parse(in, (size_t)(nul - data), err, sizeof(err));
		tok = (const char *)nul + 1;
		toklen = size - (size_t)(nul - data) - 1;
	}
	if (jwt_validate_id_token(ks, tok, toklen, fuzz_algs,
				  sizeof(fuzz_algs) / sizeof(*fuzz_algs), &e, &claims) == JWT_OK) {
		(void)jwt_check_logout_claims(claims, &e);
		json_decref(claims);
	}
	(void)jwt_header_typ(tok, toklen, typ, sizeof(typ));
	(void)jwt_status_str(jwt_verify(ks, tok, toklen, fuzz_algs, 1, NULL));
	jwks_free(ks);

	claims = json_loadb(tok, toklen, 0, NULL);
	if (claims != NULL) {
		(void)jwt_check_id_claims(claims, &e);
		(void)jwt_check_logout_claims(claims, &e);
		json_decref(claims);
	}
	return 0;
}
