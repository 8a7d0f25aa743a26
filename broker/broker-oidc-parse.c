/*
 * Parsers for the IdP's JSON answers (see broker-oidc-parse.h). Everything here is
 * untrusted input: bounded lengths, exact types, printable ASCII only, duplicate keys
 * refused (two "issuer" members must not let one parser see a different value than another).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "broker/broker-http.h"
#include "broker/broker-jwt.h"
#include "broker/broker-oidc-parse.h"

#define OIDC_MAX_JSON HTTP_MAX_BODY

static void oidc_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
oidc_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
oidc_printable(const char *s, bool allow_space)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch > 0x7e || (ch == ' ' && !allow_space))
			return false;
	}
	return true;
}

static json_t *
oidc_load_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;

	if (body == NULL || len == 0) {
		oidc_seterr(err, errlen, "empty answer");
		return NULL;
	}
	if (len > OIDC_MAX_JSON) {
		oidc_seterr(err, errlen, "answer too large");
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		oidc_seterr(err, errlen, "answer is not valid JSON: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		oidc_seterr(err, errlen, "answer is not a JSON object");
		return NULL;
	}
	return j;
}

/*
 * Copies the string member key into *out. Missing is fine when !required (*out stays NULL).
 * Refuses non-strings, empty values, embedded NULs, values longer than max and anything
 * that is not printable ASCII.
 */
static int
oidc_get_str(json_t *obj, const char *key, bool required, size_t max, bool allow_space, char **out,
	     char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		oidc_seterr(err, errlen, "\"%s\" is missing", key);
		return -1;
	}
	if (!json_is_string(v)) {
		oidc_seterr(err, errlen, "\"%s\" is not a string", key);
		return -1;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n != strlen(s)) {
		oidc_seterr(err, errlen, "\"%s\" is empty or contains a NUL", key);
		return -1;
	}
	if (n > max) {
		oidc_seterr(err, errlen, "\"%s\" is too long", key);
		return -1;
	}
	if (!oidc_printable(s, allow_space)) {
		oidc_seterr(err, errlen, "\"%s\" contains characters that are not printable ASCII",
			    key);
		return -1;
	}
	if ((*out = strdup(s)) == NULL) {
		oidc_seterr(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
oidc_get_url(json_t *obj, const char *key, char **out, char *err, size_t errlen)
{
	if (oidc_get_str(obj, key, true, OIDC_MAX_URL, false, out, err, errlen) != 0)
		return -1;
	if (!oidc_url_allowed(*out)) {
		free(*out);
		*out = NULL;
		oidc_seterr(err, errlen,
			    "\"%s\" must be an https URL (http only to a loopback address)", key);
		return -1;
	}
	return 0;
}

/*
 * Integer member: JSON integers, and (leniently, some IdPs send them) strings of digits.
 * *out untouched when absent and !required.
 */
static int
oidc_get_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max, int64_t *out,
	     char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		oidc_seterr(err, errlen, "\"%s\" is missing", key);
		return -1;
	}
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t i, len = json_string_length(v);

		if (len == 0 || len > 9 || len != strlen(s))
			goto bad;
		for (n = 0, i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				goto bad;
			n = n * 10 + (s[i] - '0');
		}
	} else {
		goto bad;
	}
	if (n < min || n > max)
		goto bad;
	*out = (int64_t)n;
	return 0;
bad:
	oidc_seterr(err, errlen, "\"%s\" is not a valid number of seconds", key);
	return -1;
}

bool
oidc_url_allowed(const char *url)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (url == NULL || strlen(url) > OIDC_MAX_URL || !oidc_printable(url, false))
		return false;
	if ((u = curl_url()) == NULL)
		return false;
	/* No guessing, no default scheme: the URL must say what it is. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0) {
		ok = true;
	} else if (strcasecmp(scheme, "http") == 0) {
		/* Plain HTTP only where nobody but this host can listen in (tests, demo). */
		ok = strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0 ||
		     strcasecmp(host, "localhost") == 0;
		if (ok && strncmp(host, "127.", 4) == 0) {
			/* "127.evil.example" is a name, not a loopback address. */
			for (const char *p = host + 4; *p != '\0'; p++)
				if ((*p < '0' || *p > '9') && *p != '.')
					ok = false;
		}
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

void
oidc_discovery_clear(struct oidc_discovery *d)
{
	if (d == NULL)
		return;
	free(d->issuer);
	free(d->device_authorization_endpoint);
	free(d->token_endpoint);
	free(d->jwks_uri);
	memset(d, 0, sizeof(*d));
}

int
oidc_parse_discovery(const char *body, size_t len, const char *expected_issuer,
		     struct oidc_discovery *out, char *err, size_t errlen)
{
	json_t *j = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((j = oidc_load_object(body, len, err, errlen)) == NULL)
		goto out;
	if (oidc_get_str(j, "issuer", true, OIDC_MAX_URL, false, &out->issuer, err, errlen) != 0)
		goto out;
	/* OIDC Discovery 4.3: exactly the issuer we were configured with, or an attacker
	 * who controls another issuer's document could make us accept its tokens. */
	if (expected_issuer == NULL || strcmp(out->issuer, expected_issuer) != 0) {
		oidc_seterr(err, errlen,
			    "\"issuer\" in the discovery document is %s, "
			    "not the configured OIDCIssuer",
			    out->issuer);
		goto out;
	}
	if (oidc_get_url(j, "device_authorization_endpoint", &out->device_authorization_endpoint,
			 err, errlen) != 0 ||
	    oidc_get_url(j, "token_endpoint", &out->token_endpoint, err, errlen) != 0 ||
	    oidc_get_url(j, "jwks_uri", &out->jwks_uri, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		oidc_discovery_clear(out);
	json_decref(j);
	return rc;
}

void
oidc_device_auth_clear(struct oidc_device_auth *a)
{
	if (a == NULL)
		return;
	if (a->device_code != NULL) {
		explicit_bzero(a->device_code, strlen(a->device_code));
		free(a->device_code);
	}
	free(a->user_code);
	free(a->verification_uri);
	free(a->verification_uri_complete);
	memset(a, 0, sizeof(*a));
}

int
oidc_parse_device_auth(const char *body, size_t len, struct oidc_device_auth *out, char *err,
		       size_t errlen)
{
	json_t *j = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->interval = OIDC_DEFAULT_INTERVAL;
	if ((j = oidc_load_object(body, len, err, errlen)) == NULL)
		goto out;
	if (oidc_get_str(j, "device_code", true, OIDC_MAX_DEVICE_CODE, false, &out->device_code,
			 err, errlen) != 0 ||
	    oidc_get_str(j, "user_code", true, OIDC_MAX_USER_CODE, false, &out->user_code, err,
			 errlen) != 0 ||
	    oidc_get_url(j, "verification_uri", &out->verification_uri, err, errlen) != 0)
		goto out;
	/* Optional, but if the IdP sends one it must be as clean as the mandatory one. */
	if (json_object_get(j, "verification_uri_complete") != NULL &&
	    !json_is_null(json_object_get(j, "verification_uri_complete")) &&
	    oidc_get_url(j, "verification_uri_complete", &out->verification_uri_complete, err,
			 errlen) != 0)
		goto out;
	if (oidc_get_int(j, "expires_in", true, 1, OIDC_MAX_EXPIRES_IN, &out->expires_in, err,
			 errlen) != 0 ||
	    oidc_get_int(j, "interval", false, 1, OIDC_MAX_INTERVAL, &out->interval, err, errlen) !=
		    0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		oidc_device_auth_clear(out);
	json_decref(j);
	return rc;
}

/* Copies s into buf, replacing anything not printable ASCII with '?', truncating. */
static void
oidc_copy_clean(char *buf, size_t buflen, const char *s)
{
	size_t i;

	if (buf == NULL || buflen == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < buflen; i++)
		buf[i] = (s[i] >= 0x20 && s[i] <= 0x7e) ? s[i] : '?';
	buf[i] = '\0';
}

int
oidc_parse_token_error(const char *body, size_t len, enum oidc_token_error *code, char *code_str,
		       size_t code_len, char *desc, size_t desc_len)
{
	static const struct {
		const char *name;
		enum oidc_token_error code;
	} known[] = {
		{ "authorization_pending", OIDC_TOKEN_ERR_PENDING },
		{ "slow_down", OIDC_TOKEN_ERR_SLOW_DOWN },
		{ "access_denied", OIDC_TOKEN_ERR_DENIED },
		{ "expired_token", OIDC_TOKEN_ERR_EXPIRED },
	};
	json_t *j, *e, *d;
	const char *s;
	size_t i;

	oidc_copy_clean(code_str, code_len, "");
	oidc_copy_clean(desc, desc_len, "");
	if ((j = oidc_load_object(body, len, NULL, 0)) == NULL)
		return -1;
	e = json_object_get(j, "error");
	if (!json_is_string(e) || json_string_length(e) == 0 ||
	    json_string_length(e) != strlen(json_string_value(e))) {
		json_decref(j);
		return -1;
	}
	s = json_string_value(e);
	*code = OIDC_TOKEN_ERR_OTHER;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i].name) == 0)
			*code = known[i].code;
	oidc_copy_clean(code_str, code_len, s);
	d = json_object_get(j, "error_description");
	if (json_is_string(d))
		oidc_copy_clean(desc, desc_len, json_string_value(d));
	json_decref(j);
	return 0;
}

int
oidc_parse_token_response(const char *body, size_t len, char **id_token, char *err, size_t errlen)
{
	json_t *j;
	int rc;

	*id_token = NULL;
	if ((j = oidc_load_object(body, len, err, errlen)) == NULL)
		return -1;
	/* A JWS compact serialization is base64url and dots: printable, no spaces. */
	rc = oidc_get_str(j, "id_token", true, JWT_MAX_LEN, false, id_token, err, errlen);
	json_decref(j);
	return rc;
}
