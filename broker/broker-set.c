/*
 * Security Event Tokens and logout tokens to revocation actions (broker-set.h).
 *
 * Why so strict on shapes and so lenient on unknowns: a malformed token must never revoke
 * less than its sender meant nor make us act on a guess, so anything we would act on is
 * checked exactly (types, lengths, subject formats); but SSF lets transmitters add members
 * and event types, and ignoring those is what the specifications ask (RFC 8417 2.2).
 *
 * A subject is never widened: every member we do understand becomes a constraint, members
 * we do not understand in a complex subject (device, tenant …) are dropped, which can only
 * revoke more of that user's sessions, never another user's.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker-jwt.h"
#include "broker/broker-set.h"

#define LOGOUT_EVENT "http://schemas.openid.net/event/backchannel-logout"

const char *
set_err_code(enum set_err e)
{
	switch (e) {
	case SET_OK:
		return "ok";
	case SET_ERR_INVALID_REQUEST:
		return "invalid_request";
	case SET_ERR_INVALID_KEY:
	case SET_ERR_UNKNOWN_KID:
		return "invalid_key";
	case SET_ERR_INVALID_ISSUER:
		return "invalid_issuer";
	case SET_ERR_INVALID_AUDIENCE:
		return "invalid_audience";
	}
	return "invalid_request";
}

static void
set_subject_clear(struct set_subject *s)
{
	free(s->iss);
	free(s->sub);
	free(s->sid);
	free(s->email);
	free(s->id);
	memset(s, 0, sizeof(*s));
}

void
set_parsed_clear(struct set_parsed *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->iss);
	free(p->jti);
	for (i = 0; i < p->n && i < SET_MAX_EVENTS; i++)
		set_subject_clear(&p->act[i].subj);
	memset(p, 0, sizeof(*p));
}

static enum set_err set_fail(enum set_err e, char *desc, size_t desclen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum set_err
set_fail(enum set_err e, char *desc, size_t desclen, const char *fmt, ...)
{
	va_list ap;

	if (desc != NULL && desclen > 0) {
		va_start(ap, fmt);
		vsnprintf(desc, desclen, fmt, ap);
		va_end(ap);
	}
	return e;
}

/* A bounded, printable (no control bytes) non-empty string member, or NULL. */
static const char *
set_str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	size_t i, n;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n > SET_MAX_STRING || strlen(s) != n)
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return NULL;
	return s;
}

static int
set_dup(char **dst, const char *src)
{
	if (*dst != NULL && strcmp(*dst, src) != 0)
		return 1; /* two parts of a complex subject disagree */
	if (*dst == NULL && (*dst = strdup(src)) == NULL)
		return -1;
	return 0;
}

/* A simple subject (not complex) into s. Returns 0, or SET_ERR_* with desc. */
static enum set_err
set_subject_simple(const json_t *j, struct set_subject *s, bool in_complex, char *desc,
		   size_t desclen)
{
	const char *fmt, *a, *b;
	int r = 0;

	if (!json_is_object(j))
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"a subject must be a JSON object");
	if ((fmt = set_str(j, "format")) == NULL)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the subject has no \"format\"");
	if (strcmp(fmt, "iss_sub") == 0) {
		if ((a = set_str(j, "iss")) == NULL || (b = set_str(j, "sub")) == NULL)
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"an iss_sub subject needs \"iss\" and \"sub\" strings");
		if ((r = set_dup(&s->iss, a)) == 0)
			r = set_dup(&s->sub, b);
	} else if (strcmp(fmt, "email") == 0) {
		if ((a = set_str(j, "email")) == NULL || strchr(a, '@') == NULL)
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"an email subject needs an \"email\" address");
		r = set_dup(&s->email, a);
	} else if (strcmp(fmt, "opaque") == 0) {
		if ((a = set_str(j, "id")) == NULL)
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"an opaque subject needs an \"id\" string");
		r = set_dup(&s->id, a);
	} else if (strcmp(fmt, "complex") == 0 && in_complex) {
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"a complex subject cannot contain another complex subject");
	} else {
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"subject format \"%.64s\" is not supported by this receiver (use "
				"iss_sub, email, opaque or complex)",
				fmt);
	}
	if (r < 0)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen, "out of memory");
	if (r > 0)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the members of the complex subject name different users");
	return SET_OK;
}

/*
 * Any supported subject. complex (SSF 1.0 3.3): "user" and "session" are combined (every
 * member is a constraint); other members (device, application, tenant, org_unit, group)
 * cannot narrow anything the broker knows and are ignored.
 */
static enum set_err
set_subject(const json_t *j, struct set_subject *s, char *desc, size_t desclen)
{
	const char *fmt = json_is_object(j) ? set_str(j, "format") : NULL;
	const json_t *user, *session;
	enum set_err e;

	if (fmt == NULL || strcmp(fmt, "complex") != 0)
		return set_subject_simple(j, s, false, desc, desclen);
	user = json_object_get(j, "user");
	session = json_object_get(j, "session");
	if (user == NULL && session == NULL)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"a complex subject needs \"user\" or \"session\"");
	if (user != NULL && (e = set_subject_simple(user, s, true, desc, desclen)) != SET_OK)
		return e;
	if (session != NULL && (e = set_subject_simple(session, s, true, desc, desclen)) != SET_OK)
		return e;
	return SET_OK;
}

static bool
set_subject_empty(const struct set_subject *s)
{
	return s->sub == NULL && s->sid == NULL && s->email == NULL && s->id == NULL;
}

static int
set_subject_copy(struct set_subject *dst, const struct set_subject *src)
{
	memset(dst, 0, sizeof(*dst));
	if ((src->iss != NULL && (dst->iss = strdup(src->iss)) == NULL) ||
	    (src->sub != NULL && (dst->sub = strdup(src->sub)) == NULL) ||
	    (src->sid != NULL && (dst->sid = strdup(src->sid)) == NULL) ||
	    (src->email != NULL && (dst->email = strdup(src->email)) == NULL) ||
	    (src->id != NULL && (dst->id = strdup(src->id)) == NULL)) {
		set_subject_clear(dst);
		return -1;
	}
	return 0;
}

/* token-claims-change: do the new claims still carry the required group? Returns 1 if the
 * groups claim is present and lacks it, 0 if it has it or the event does not say. */
static int
set_claims_lose_group(const json_t *ev, const struct set_expect *e)
{
	const json_t *claims = json_object_get(ev, "claims"), *g, *v;
	size_t i;

	if (!json_is_object(claims) || e->groups_claim == NULL || e->required_group == NULL)
		return 0;
	if ((g = json_object_get(claims, e->groups_claim)) == NULL)
		return 0; /* the groups did not change */
	if (json_is_string(g))
		return strcmp(json_string_value(g), e->required_group) != 0;
	if (json_is_array(g)) {
		json_array_foreach(g, i, v) {
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), e->required_group) == 0)
				return 0;
		}
	}
	/* null, an empty list, a list without it, or any other type: no longer entitled */
	return 1;
}

/* A NumericDate in [0, year 9999]. */
static bool
set_time(const json_t *v, int64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= INT64_C(253402300799)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= 253402300799.0) {
		*out = (int64_t)json_real_value(v);
		return true;
	}
	return false;
}

static bool
set_aud_ok(const json_t *aud, const char *want)
{
	const json_t *v;
	size_t i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud)) {
		json_array_foreach(aud, i, v) {
			if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
				return true;
		}
	}
	return false;
}

enum set_err
set_parse_claims(const json_t *claims, const struct set_expect *e, struct set_parsed *out,
		 char *desc, size_t desclen)
{
	struct set_subject top = { 0 }, legacy;
	const json_t *events, *ev, *subj;
	const char *iss, *jti, *type;
	int64_t iat, exp = 0, keep;
	bool has_exp = false, have_top = false;
	struct set_action *a;
	enum set_err err;
	void *iter;

	memset(out, 0, sizeof(*out));
	if (desc != NULL && desclen > 0)
		desc[0] = '\0';
	if (!json_is_object(claims))
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the payload is not a JSON object");
	if ((iss = set_str(claims, "iss")) == NULL || e->issuer == NULL ||
	    strcmp(iss, e->issuer) != 0)
		return set_fail(SET_ERR_INVALID_ISSUER, desc, desclen,
				"the issuer is not the configured transmitter");
	if (e->audience == NULL || !set_aud_ok(json_object_get(claims, "aud"), e->audience))
		return set_fail(SET_ERR_INVALID_AUDIENCE, desc, desclen,
				"the audience does not include this receiver (%.200s)",
				e->audience);
	if (!set_time(json_object_get(claims, "iat"), &iat))
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"\"iat\" is missing or not a time");
	if (iat > e->now + SET_CLOCK_SKEW || iat < e->now - SET_MAX_AGE)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"\"iat\" is in the future or more than a day old");
	/* SSF SETs carry no exp; one that does and has passed is not acted on. */
	if (json_object_get(claims, "exp") != NULL) {
		if (!set_time(json_object_get(claims, "exp"), &exp))
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"\"exp\" is not a time");
		if (e->now > exp + SET_CLOCK_SKEW)
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"the SET has expired");
		has_exp = true;
	}
	if (json_object_get(claims, "nbf") != NULL) {
		int64_t nbf;

		if (!set_time(json_object_get(claims, "nbf"), &nbf) ||
		    nbf > e->now + SET_CLOCK_SKEW)
			return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					"the SET is not valid yet (nbf)");
	}
	if ((jti = set_str(claims, "jti")) == NULL)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"\"jti\" is missing (needed to detect replays)");
	events = json_object_get(claims, "events");
	if (!json_is_object(events) || json_object_size(events) == 0)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"\"events\" must be a non-empty object");
	if (json_object_size(events) > SET_MAX_EVENTS)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"more than 8 events in one SET");
	/* A logout token is not a SET, whoever signed it. */
	if (json_object_get(events, LOGOUT_EVENT) != NULL)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"a back-channel logout token is not accepted as a SET");

	if ((subj = json_object_get(claims, "sub_id")) != NULL) {
		if ((err = set_subject(subj, &top, desc, desclen)) != SET_OK)
			goto fail;
		have_top = true;
	}

	keep = iat + SET_MAX_AGE;
	if (has_exp && exp > keep)
		keep = exp;
	out->keep_until = keep + SET_CLOCK_SKEW;
	if ((out->iss = strdup(iss)) == NULL || (out->jti = strdup(jti)) == NULL) {
		err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen, "out of memory");
		goto fail;
	}

	for (iter = json_object_iter((json_t *)events); iter != NULL;
	     iter = json_object_iter_next((json_t *)events, iter)) {
		type = json_object_iter_key(iter);
		ev = json_object_iter_value(iter);
		if (!json_is_object(ev)) {
			err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				       "the payload of event %.120s is not an object", type);
			goto fail;
		}
		a = &out->act[out->n];
		a->kind = SET_ACT_NONE;
		if (strcmp(type, SET_EV_VERIFICATION) == 0) {
			a->event = "verification";
			out->n++;
			continue; /* answered, acted on nothing */
		} else if (strcmp(type, SET_EV_SESSION_REVOKED) == 0) {
			a->kind = SET_ACT_REVOKE;
			a->event = "session-revoked";
			snprintf(a->why, sizeof(a->why),
				 "session revoked by the identity provider");
		} else if (strcmp(type, SET_EV_CREDENTIAL_CHANGE) == 0) {
			/* Any change (also "create"): sessions established with the old set of
			 * credentials are ended; logging in again is one browser step. */
			a->kind = SET_ACT_REVOKE;
			a->event = "credential-change";
			snprintf(a->why, sizeof(a->why), "your credentials changed");
		} else if (strcmp(type, SET_EV_CLAIMS_CHANGE) == 0) {
			a->event = "token-claims-change";
			if (set_claims_lose_group(ev, e)) {
				a->kind = SET_ACT_REVOKE;
				snprintf(a->why, sizeof(a->why),
					 "you are no longer in the group %.120s",
					 e->required_group);
			}
		} else if (strcmp(type, SET_EV_ACCOUNT_DISABLED) == 0) {
			a->kind = SET_ACT_LOCK;
			a->event = "account-disabled";
			snprintf(a->why, sizeof(a->why),
				 "your account was disabled at the identity provider");
		} else if (strcmp(type, SET_EV_ACCOUNT_PURGED) == 0) {
			a->kind = SET_ACT_LOCK;
			a->event = "account-purged";
			snprintf(a->why, sizeof(a->why),
				 "your account was deleted at the identity provider");
		} else {
			continue; /* unknown event types are ignored (RFC 8417 2.2) */
		}
		/* The subject: SSF's top-level sub_id, else the older events[…].subject. Needed
		 * even when the event ends up acting on nothing: it is part of its definition. */
		if (have_top) {
			if (set_subject_copy(&a->subj, &top) != 0) {
				err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
					       "out of memory");
				goto fail;
			}
		} else if ((subj = json_object_get(ev, "subject")) != NULL) {
			memset(&legacy, 0, sizeof(legacy));
			if ((err = set_subject(subj, &legacy, desc, desclen)) != SET_OK) {
				set_subject_clear(&legacy);
				goto fail;
			}
			a->subj = legacy;
		} else {
			err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				       "event %.120s has no subject (sub_id)", a->event);
			goto fail;
		}
		out->n++;
		if (set_subject_empty(&a->subj)) {
			err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				       "the subject of event %.120s names no user or session",
				       a->event);
			goto fail;
		}
	}
	set_subject_clear(&top);
	return SET_OK;
fail:
	set_subject_clear(&top);
	set_parsed_clear(out);
	return err;
}

static enum set_err
set_from_jwt(enum jwt_status st, char *desc, size_t desclen)
{
	switch (st) {
	case JWT_OK:
		return SET_OK;
	case JWT_UNKNOWN_KID:
		return set_fail(SET_ERR_UNKNOWN_KID, desc, desclen,
				"the signing key (kid) is not in the transmitter's key set");
	case JWT_BAD_ALG:
		return set_fail(SET_ERR_INVALID_KEY, desc, desclen,
				"unsigned, or signed with an algorithm or key type that is not "
				"accepted");
	case JWT_BAD_SIGNATURE:
		return set_fail(SET_ERR_INVALID_KEY, desc, desclen,
				"the signature does not verify");
	case JWT_BAD_ISS:
		return set_fail(SET_ERR_INVALID_ISSUER, desc, desclen,
				"the issuer is not the configured one");
	case JWT_BAD_AUD:
	case JWT_BAD_AZP:
		return set_fail(SET_ERR_INVALID_AUDIENCE, desc, desclen,
				"the audience is not this client");
	case JWT_MALFORMED:
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the body is not a compact JWS");
	default:
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen, "%s", jwt_status_str(st));
	}
}

/* RFC 8417 2.3: typ "secevent+jwt"; the "application/" prefix may be spelled out. */
static bool
set_typ_ok(const char *typ)
{
	return strcasecmp(typ, "secevent+jwt") == 0 ||
	       strcasecmp(typ, "application/secevent+jwt") == 0;
}

enum set_err
set_validate(const struct jwks *ks, const char *const *algs, size_t nalgs, const char *token,
	     size_t len, const struct set_expect *e, struct set_parsed *out, char *desc,
	     size_t desclen)
{
	json_t *claims = NULL;
	char typ[64];
	enum set_err err;

	memset(out, 0, sizeof(*out));
	/* a body may end with a line break (curl --data-binary @file) */
	while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
		len--;
	if (len == 0 || len > JWT_MAX_LEN)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the body must be one compact JWS of at most 64 KiB");
	if (jwt_header_typ(token, len, typ, sizeof(typ)) != 0)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the body is not a compact JWS");
	if (!set_typ_ok(typ))
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
				"the JWS header \"typ\" must be secevent+jwt");
	if (ks == NULL)
		return set_fail(SET_ERR_UNKNOWN_KID, desc, desclen,
				"the transmitter's keys are not available yet");
	if ((err = set_from_jwt(jwt_verify(ks, token, len, algs, nalgs, &claims), desc, desclen)) !=
	    SET_OK)
		return err;
	err = set_parse_claims(claims, e, out, desc, desclen);
	json_decref(claims);
	return err;
}

static int
set_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX and '+' from s (n bytes) into a new NUL-terminated string; NULL when a
 * percent escape is malformed or decodes to NUL. */
static char *
set_form_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n || (hi = set_hex(s[i + 1])) < 0 ||
			    (lo = set_hex(s[i + 2])) < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '\0') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int
set_form_get(const char *body, size_t len, const char *name, char **value)
{
	const char *p = body, *end = body + len, *amp, *eq;
	size_t nlen = strlen(name);
	char *key;
	int found = 0;

	*value = NULL;
	if (len > SET_FORM_MAX)
		return -1;
	while (len > 0 && (end[-1] == '\n' || end[-1] == '\r'))
		end--, len--;
	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (amp == p) { /* "a=1&&b=2": an empty pair */
			p = amp + 1;
			continue;
		}
		if ((key = set_form_decode(p, (size_t)((eq != NULL ? eq : amp) - p))) == NULL)
			goto bad;
		if (strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
			free(key);
			if (found)
				goto bad; /* twice: which one would the IdP have meant? */
			found = 1;
			if (eq == NULL)
				*value = strdup("");
			else
				*value = set_form_decode(eq + 1, (size_t)(amp - eq - 1));
			if (*value == NULL)
				goto bad;
		} else {
			free(key);
		}
		p = amp + 1;
	}
	return found ? 0 : 1;
bad:
	free(*value);
	*value = NULL;
	return -1;
}

enum set_err
set_logout_validate(const struct jwks *ks, const char *const *algs, size_t nalgs, const char *body,
		    size_t len, const struct set_expect *e, struct set_parsed *out, char *desc,
		    size_t desclen)
{
	struct jwt_expect je = { 0 };
	json_t *claims = NULL;
	char *token = NULL, typ[64];
	const char *sub, *sid, *jti, *iss;
	int64_t exp;
	struct set_action *a;
	enum set_err err;
	int r;

	memset(out, 0, sizeof(*out));
	if (desc != NULL && desclen > 0)
		desc[0] = '\0';
	if ((r = set_form_get(body, len, "logout_token", &token)) != 0)
		return set_fail(SET_ERR_INVALID_REQUEST, desc, desclen, "%s",
				r > 0 ? "the form has no logout_token" :
					"the body is not a valid form with one logout_token");
	if (token[0] == '\0' || strlen(token) > JWT_MAX_LEN) {
		err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
			       "logout_token is empty or too long");
		goto out;
	}
	/* A SET (or anything typed as one) is never a logout token. */
	if (jwt_header_typ(token, strlen(token), typ, sizeof(typ)) != 0 || set_typ_ok(typ)) {
		err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
			       "logout_token is not a logout token JWS");
		goto out;
	}
	if (ks == NULL) {
		err = set_fail(SET_ERR_UNKNOWN_KID, desc, desclen,
			       "the identity provider's keys are not available yet");
		goto out;
	}
	if ((err = set_from_jwt(jwt_verify(ks, token, strlen(token), algs, nalgs, &claims), desc,
				desclen)) != SET_OK)
		goto out;
	je.issuer = e->issuer;
	je.audience = e->audience;
	je.now = e->now;
	je.skew = SET_CLOCK_SKEW;
	je.max_age = LOGOUT_MAX_AGE;
	if ((err = set_from_jwt(jwt_check_logout_claims(claims, &je), desc, desclen)) != SET_OK) {
		if (err == SET_ERR_INVALID_REQUEST)
			snprintf(desc, desclen,
				 "the logout token's claims are not valid (exp, iat, events, "
				 "sub/sid, jti, no nonce)");
		goto out;
	}
	iss = set_str(claims, "iss");
	jti = set_str(claims, "jti");
	sub = set_str(claims, "sub");
	sid = set_str(claims, "sid");
	if (iss == NULL || jti == NULL || (json_object_get(claims, "sub") != NULL && sub == NULL) ||
	    (json_object_get(claims, "sid") != NULL && sid == NULL) ||
	    !set_time(json_object_get(claims, "exp"), &exp)) {
		err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen,
			       "the logout token's iss, jti, sub or sid is too long or has "
			       "control characters");
		goto out;
	}
	out->keep_until = exp + SET_CLOCK_SKEW;
	a = &out->act[0];
	a->kind = SET_ACT_REVOKE;
	a->event = "backchannel-logout";
	snprintf(a->why, sizeof(a->why), "you were logged out at the identity provider");
	if ((out->iss = strdup(iss)) == NULL || (out->jti = strdup(jti)) == NULL ||
	    (a->subj.iss = strdup(iss)) == NULL ||
	    (sub != NULL && (a->subj.sub = strdup(sub)) == NULL) ||
	    (sid != NULL && (a->subj.sid = strdup(sid)) == NULL)) {
		out->n = 1;
		err = set_fail(SET_ERR_INVALID_REQUEST, desc, desclen, "out of memory");
		goto out;
	}
	out->n = 1;
	err = SET_OK;
out:
	if (err != SET_OK)
		set_parsed_clear(out);
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	json_decref(claims);
	return err;
}
