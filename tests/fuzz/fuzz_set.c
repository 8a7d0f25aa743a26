/*
 * libFuzzer target for the revocation signals (broker-set.c): the first byte picks the entry
 * point, the rest is the untrusted input.
 *
 *   0  SET claims (JSON, as if the signature had verified) -> set_parse_claims
 *   1  a back-channel logout request body (form)           -> set_logout_validate
 *   2  a pushed SET body (compact JWS)                     -> set_validate
 *   3  a form body                                         -> set_form_get
 *
 * The key set is fixed (tests/fuzz/set-key.pem signs the seeds in corpus/set) and "now" is
 * FUZZ_NOW, so that signed seeds reach the claim checks forever. What the layer promises,
 * checked on every result: an accepted signal names its issuer and jti, has at most
 * SET_MAX_EVENTS actions, and every action that revokes names a user or a session.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/broker-jwt.h"
#include "broker/broker-set.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_NOW 1700000000
#define FUZZ_JWKS                                                                               \
	"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"                                   \
	"\"IQGBbBQEetK9P0sjsVDENdSD2NjyWZG91bQsyBuOZoA\",\"y\":"                                \
	"\"7m-JftosjRMWHDOK1GHf1oesS4xUv54Z3DcjKbIryXY\",\"kid\":\"fuzz-key\",\"use\":\"sig\"," \
	"\"alg\":\"ES256\"}]}"

static struct jwks *fuzz_ks;
static const char *const fuzz_algs[] = { "RS256", "ES256" };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	if ((fuzz_ks = jwks_parse(FUZZ_JWKS, strlen(FUZZ_JWKS), err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_set: %s\n", err);
		abort();
	}
	return 0;
}

static void
fuzz_check(enum set_err err, struct set_parsed *p)
{
	size_t i;

	if (err != SET_OK) {
		if (p->n != 0 || p->iss != NULL || p->jti != NULL)
			abort(); /* a failure leaves nothing behind */
		if (strcmp(set_err_code(err), "ok") == 0)
			abort();
		return;
	}
	if (p->iss == NULL || p->jti == NULL || p->n > SET_MAX_EVENTS)
		abort();
	for (i = 0; i < p->n; i++) {
		const struct set_action *a = &p->act[i];

		if (a->event == NULL)
			abort();
		if (a->kind != SET_ACT_NONE && a->subj.sub == NULL && a->subj.sid == NULL &&
		    a->subj.email == NULL && a->subj.id == NULL)
			abort();
	}
	set_parsed_clear(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct set_expect e = { .issuer = "https://idp.example.com",
				      .audience = "saw-broker",
				      .required_group = "saw-users",
				      .groups_claim = "groups",
				      .now = FUZZ_NOW };
	struct set_parsed p;
	const char *in;
	char desc[256], *value = NULL;
	json_t *claims;
	enum set_err err;
	int r;

	if (fuzz_ks == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	in = (const char *)data + 1;
	size--;
	memset(&p, 0, sizeof(p));
	switch (data[0] & 3) {
	case 0:
		claims = json_loadb(in, size, JSON_REJECT_DUPLICATES, NULL);
		if (claims == NULL)
			return 0;
		err = set_parse_claims(claims, &e, &p, desc, sizeof(desc));
		json_decref(claims);
		fuzz_check(err, &p);
		break;
	case 1:
		err = set_logout_validate(fuzz_ks, fuzz_algs, 2, in, size, &e, &p, desc,
					  sizeof(desc));
		fuzz_check(err, &p);
		break;
	case 2:
		err = set_validate(fuzz_ks, fuzz_algs, 2, in, size, &e, &p, desc, sizeof(desc));
		fuzz_check(err, &p);
		break;
	case 3:
		r = set_form_get(in, size, "logout_token", &value);
		if ((r == 0) != (value != NULL))
			abort();
		free(value);
		break;
	}
	return 0;
}
