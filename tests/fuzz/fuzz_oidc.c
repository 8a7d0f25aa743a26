/*
 * libFuzzer target for broker-oidc-parse.c: every input goes through each parser of the
 * IdP's answers (discovery document, device authorization answer, token error and token
 * success answers) and, NUL-terminated, through the URL policy check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker-oidc-parse.h"

#define FUZZ_ISSUER "https://idp.example.test"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct oidc_discovery disc;
	struct oidc_device_auth auth;
	enum oidc_token_error code;
	char err[256], cstr[64], desc[128], *tok = NULL, *s;

	if (oidc_parse_discovery(body, size, FUZZ_ISSUER, &disc, err, sizeof(err)) == 0) {
		/* What the parser promises to its caller. */
		if (strcmp(disc.issuer, FUZZ_ISSUER) != 0 ||
		    !oidc_url_allowed(disc.device_authorization_endpoint) ||
		    !oidc_url_allowed(disc.token_endpoint) || !oidc_url_allowed(disc.jwks_uri))
			abort();
		oidc_discovery_clear(&disc);
	}
	if (oidc_parse_device_auth(body, size, &auth, err, sizeof(err)) == 0) {
		if (auth.expires_in < 1 || auth.interval < 1 || auth.interval > OIDC_MAX_INTERVAL ||
		    strlen(auth.user_code) > OIDC_MAX_USER_CODE ||
		    !oidc_url_allowed(auth.verification_uri))
			abort();
		for (s = auth.user_code; *s != '\0'; s++)
			if (*s <= ' ' || *s > '~')
				abort();
		oidc_device_auth_clear(&auth);
	}
	if (oidc_parse_token_error(body, size, &code, cstr, sizeof(cstr), desc, sizeof(desc)) ==
	    0) {
		if (code > OIDC_TOKEN_ERR_OTHER || strlen(cstr) >= sizeof(cstr))
			abort();
	}
	if (oidc_parse_token_response(body, size, &tok, err, sizeof(err)) == 0)
		free(tok);

	if (size <= OIDC_MAX_URL + 16 && (s = malloc(size + 1)) != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		(void)oidc_url_allowed(s);
		free(s);
	}
	return 0;
}
