/*
 * Control-channel framing and the typed messages (see ctl.h for the wire format).
 *
 * The decoder is the only code that looks at control-channel bytes: it checks the header
 * (length, version, type) before waiting for or parsing a body, so an oversized or foreign
 * frame is refused after 6 bytes instead of after 64 KiB, and it hands jansson exactly the
 * frame's body so that a frame can never read into the next one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/ctl.h"

#define CTL_HEADER CTL_FRAME_HEADER /* u32 length + u8 version + u8 type */
#define CTL_MAX_STRING 1024 /* any single string member; ids, names, hosts are far shorter */

static void ctl_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
ctl_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
ctl_type_known(unsigned int t)
{
	return t >= CTL_HELLO && t <= CTL_AUDIT_ACK;
}

/* A frame around a body given in three consecutive parts (a, b, c: so that a caller can wrap
 * text it already has without copying it into a new string first). */
static int
ctl_frame(enum ctl_type type, const char *a, size_t alen, const char *b, size_t blen, const char *c,
	  size_t clen, uint8_t **out, size_t *outlen)
{
	size_t n = alen + blen + clen, flen;
	uint8_t *buf;

	if (n > CTL_MAX_FRAME - 2)
		return -1;
	flen = n + 2;
	if ((buf = malloc(4 + flen)) == NULL)
		return -1;
	buf[0] = (uint8_t)(flen >> 24);
	buf[1] = (uint8_t)(flen >> 16);
	buf[2] = (uint8_t)(flen >> 8);
	buf[3] = (uint8_t)flen;
	buf[4] = CTL_VERSION;
	buf[5] = (uint8_t)type;
	memcpy(buf + CTL_HEADER, a, alen);
	memcpy(buf + CTL_HEADER + alen, b, blen);
	memcpy(buf + CTL_HEADER + alen + blen, c, clen);
	*out = buf;
	*outlen = 4 + flen;
	return 0;
}

int
ctl_encode(enum ctl_type type, const json_t *body, uint8_t **out, size_t *outlen)
{
	char *text = NULL;
	size_t n;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (!ctl_type_known((unsigned int)type) || !json_is_object(body))
		return -1;
	if ((text = json_dumps(body, JSON_COMPACT)) == NULL)
		return -1;
	n = strlen(text);
	rc = ctl_frame(type, text, n, "", 0, "", 0, out, outlen);
	/* bodies may carry a tunnel token */
	explicit_bzero(text, n);
	free(text);
	return rc;
}

int
ctl_audit_frame(int64_t seq, const char *event, size_t len, uint8_t **out, size_t *outlen)
{
	char head[48];
	int n;

	*out = NULL;
	*outlen = 0;
	if (seq < 1 || seq > CTL_SEQ_MAX || event == NULL || len < 2 || event[0] != '{' ||
	    event[len - 1] != '}' || memchr(event, '\0', len) != NULL)
		return -1;
	n = snprintf(head, sizeof(head), "{\"seq\":%lld,\"event\":", (long long)seq);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	return ctl_frame(CTL_AUDIT, head, (size_t)n, event, len, "}", 1, out, outlen);
}

int
ctl_decode(const uint8_t *buf, size_t len, size_t *consumed, enum ctl_type *type, json_t **body,
	   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	uint32_t flen;

	*consumed = 0;
	*body = NULL;
	if (len < 4)
		return 1;
	flen = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
	       (uint32_t)buf[3];
	if (flen < 2 || flen > CTL_MAX_FRAME) {
		ctl_err(err, errlen, "frame length %u out of range (2..%u)", (unsigned int)flen,
			(unsigned int)CTL_MAX_FRAME);
		return -1;
	}
	if (len >= 5 && buf[4] != CTL_VERSION) {
		ctl_err(err, errlen, "unsupported protocol version %u (expected %u)",
			(unsigned int)buf[4], (unsigned int)CTL_VERSION);
		return -1;
	}
	if (len >= 6 && !ctl_type_known(buf[5])) {
		ctl_err(err, errlen, "unknown message type %u", (unsigned int)buf[5]);
		return -1;
	}
	if (len - 4 < flen)
		return 1;
	/* DISABLE_EOF_CHECK + the position check: whitespace or anything after the object is
	 * refused too, so every frame has exactly one meaning. */
	j = json_loadb((const char *)buf + CTL_HEADER, flen - 2,
		       JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
	if (j == NULL) {
		ctl_err(err, errlen, "body is not valid JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		ctl_err(err, errlen, "body is not a JSON object");
		return -1;
	}
	if ((size_t)jerr.position != (size_t)flen - 2) {
		json_decref(j);
		ctl_err(err, errlen, "%zu trailing bytes after the JSON object",
			(size_t)flen - 2 - (size_t)jerr.position);
		return -1;
	}
	*type = (enum ctl_type)buf[5];
	*body = j;
	*consumed = 4 + (size_t)flen;
	return 0;
}

/* ---- typed views ------------------------------------------------------------------------ */

/* A required (or optional, if !required) string member, copied into *out. */
static int
ctl_get_string(const json_t *j, const char *name, int required, char **out, char *err,
	       size_t errlen)
{
	const json_t *v = json_object_get(j, name);
	size_t n;

	*out = NULL;
	if (v == NULL) {
		if (!required)
			return 0;
		ctl_err(err, errlen, "member \"%s\" is missing", name);
		return -1;
	}
	if (!json_is_string(v)) {
		ctl_err(err, errlen, "member \"%s\" is not a string", name);
		return -1;
	}
	n = json_string_length(v);
	if (n == 0 || n > CTL_MAX_STRING) {
		ctl_err(err, errlen, "member \"%s\" is empty or longer than %d bytes", name,
			CTL_MAX_STRING);
		return -1;
	}
	if ((*out = strdup(json_string_value(v))) == NULL) {
		ctl_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
ctl_corp_from_json(const json_t *v, struct ctl_corp *c, size_t idx, char *err, size_t errlen)
{
	const json_t *port;
	char sub[96];

	if (!json_is_object(v)) {
		ctl_err(err, errlen, "corp[%zu] is not an object", idx);
		return -1;
	}
	if (ctl_get_string(v, "name", 1, &c->name, sub, sizeof(sub)) != 0 ||
	    ctl_get_string(v, "host", 1, &c->host, sub, sizeof(sub)) != 0) {
		ctl_err(err, errlen, "corp[%zu]: %s", idx, sub);
		return -1;
	}
	port = json_object_get(v, "port");
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535) {
		ctl_err(err, errlen, "corp[%zu]: member \"port\" is not an integer in 1..65535",
			idx);
		return -1;
	}
	c->port = (int)json_integer_value(port);
	return 0;
}

json_t *
ctl_attach_to_json(const struct ctl_attach *a)
{
	json_t *j = NULL, *corp = NULL;
	size_t i;

	if ((j = json_object()) == NULL || (corp = json_array()) == NULL)
		goto fail;
	if (json_object_set_new(j, "session", json_string(a->session)) != 0 ||
	    json_object_set_new(j, "user", json_string(a->user)) != 0 ||
	    json_object_set_new(j, "sub", json_string(a->sub)) != 0 ||
	    json_object_set_new(j, "key_fp", json_string(a->key_fp)) != 0 ||
	    json_object_set_new(j, "expires", json_integer(a->expires)) != 0 ||
	    json_object_set_new(j, "profile", json_string(a->profile)) != 0)
		goto fail;
	if (a->tunnel_token != NULL &&
	    json_object_set_new(j, "tunnel_token", json_string(a->tunnel_token)) != 0)
		goto fail;
	for (i = 0; i < a->ncorp; i++) {
		json_t *c = json_pack("{s:s, s:s, s:i}", "name", a->corp[i].name, "host",
				      a->corp[i].host, "port", a->corp[i].port);

		if (c == NULL || json_array_append_new(corp, c) != 0)
			goto fail;
	}
	if (json_object_set_new(j, "corp", corp) != 0) {
		corp = NULL;
		goto fail;
	}
	corp = NULL;
	if (a->ngroups > 0) {
		json_t *groups = json_array();

		if (groups == NULL || json_object_set_new(j, "groups", groups) != 0)
			goto fail;
		for (i = 0; i < a->ngroups; i++)
			if (json_array_append_new(groups, json_string(a->groups[i])) != 0)
				goto fail;
	}
	return j;
fail:
	json_decref(corp);
	json_decref(j);
	return NULL;
}

int
ctl_attach_from_json(const json_t *j, struct ctl_attach *a, char *err, size_t errlen)
{
	const json_t *v;
	size_t i;

	memset(a, 0, sizeof(*a));
	if (!json_is_object(j)) {
		ctl_err(err, errlen, "session attach is not an object");
		return -1;
	}
	if (ctl_get_string(j, "session", 1, &a->session, err, errlen) != 0 ||
	    ctl_get_string(j, "user", 1, &a->user, err, errlen) != 0 ||
	    ctl_get_string(j, "sub", 1, &a->sub, err, errlen) != 0 ||
	    ctl_get_string(j, "key_fp", 1, &a->key_fp, err, errlen) != 0 ||
	    ctl_get_string(j, "profile", 1, &a->profile, err, errlen) != 0 ||
	    ctl_get_string(j, "tunnel_token", 0, &a->tunnel_token, err, errlen) != 0)
		goto fail;
	v = json_object_get(j, "expires");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		ctl_err(err, errlen, "member \"expires\" is %s",
			v == NULL ? "missing" : "not a positive integer");
		goto fail;
	}
	a->expires = (int64_t)json_integer_value(v);
	v = json_object_get(j, "corp");
	if (v != NULL) {
		if (!json_is_array(v)) {
			ctl_err(err, errlen, "member \"corp\" is not an array");
			goto fail;
		}
		if (json_array_size(v) > CTL_MAX_CORP) {
			ctl_err(err, errlen, "more than %d corporate services", CTL_MAX_CORP);
			goto fail;
		}
		if (json_array_size(v) > 0) {
			a->corp = calloc(json_array_size(v), sizeof(*a->corp));
			if (a->corp == NULL) {
				ctl_err(err, errlen, "out of memory");
				goto fail;
			}
		}
		for (i = 0; i < json_array_size(v); i++) {
			a->ncorp = i + 1; /* so that clear frees a half-filled entry */
			if (ctl_corp_from_json(json_array_get(v, i), &a->corp[i], i, err, errlen) !=
			    0)
				goto fail;
		}
	}
	v = json_object_get(j, "groups");
	if (v != NULL) {
		if (!json_is_array(v)) {
			ctl_err(err, errlen, "member \"groups\" is not an array");
			goto fail;
		}
		if (json_array_size(v) > CTL_MAX_GROUPS) {
			ctl_err(err, errlen, "more than %d groups", CTL_MAX_GROUPS);
			goto fail;
		}
		if (json_array_size(v) > 0 &&
		    (a->groups = calloc(json_array_size(v), sizeof(*a->groups))) == NULL) {
			ctl_err(err, errlen, "out of memory");
			goto fail;
		}
		for (i = 0; i < json_array_size(v); i++) {
			const json_t *g = json_array_get(v, i);

			if (!json_is_string(g) || json_string_length(g) == 0 ||
			    json_string_length(g) > CTL_MAX_STRING) {
				ctl_err(err, errlen, "groups[%zu] is not a string of 1 to %d bytes",
					i, CTL_MAX_STRING);
				goto fail;
			}
			if ((a->groups[i] = strdup(json_string_value(g))) == NULL) {
				ctl_err(err, errlen, "out of memory");
				goto fail;
			}
			a->ngroups = i + 1;
		}
	}
	return 0;
fail:
	ctl_attach_clear(a);
	return -1;
}

void
ctl_attach_clear(struct ctl_attach *a)
{
	size_t i;

	free(a->session);
	free(a->user);
	free(a->sub);
	free(a->key_fp);
	free(a->profile);
	if (a->tunnel_token != NULL) {
		explicit_bzero(a->tunnel_token, strlen(a->tunnel_token));
		free(a->tunnel_token);
	}
	for (i = 0; i < a->ncorp; i++) {
		free(a->corp[i].name);
		free(a->corp[i].host);
	}
	free(a->corp);
	ctl_groups_free(a->groups, a->ngroups);
	memset(a, 0, sizeof(*a));
}

void
ctl_groups_free(char **groups, size_t ngroups)
{
	size_t i;

	if (groups == NULL)
		return;
	for (i = 0; i < ngroups; i++)
		free(groups[i]);
	free(groups);
}

int
ctl_groups_from_text(const char *text, char ***groups, size_t *ngroups)
{
	json_t *j, *v;
	char **out = NULL;
	size_t i, n = 0;

	*groups = NULL;
	*ngroups = 0;
	if (text == NULL || (j = json_loads(text, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	if (!json_is_array(j) || json_array_size(j) == 0) {
		json_decref(j);
		return 0;
	}
	if ((out = calloc(json_array_size(j), sizeof(*out))) == NULL) {
		json_decref(j);
		return -1;
	}
	json_array_foreach(j, i, v) {
		if (n == CTL_MAX_GROUPS)
			break;
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > CTL_MAX_STRING)
			continue;
		if ((out[n] = strdup(json_string_value(v))) == NULL) {
			ctl_groups_free(out, n);
			json_decref(j);
			return -1;
		}
		n++;
	}
	json_decref(j);
	if (n == 0) {
		free(out);
		out = NULL;
	}
	*groups = out;
	*ngroups = n;
	return 0;
}

json_t *
ctl_end_to_json(const struct ctl_end *e)
{
	return json_pack("{s:s, s:s}", "session", e->session, "reason",
			 e->reason != NULL ? e->reason : "ended");
}

int
ctl_end_from_json(const json_t *j, struct ctl_end *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (!json_is_object(j)) {
		ctl_err(err, errlen, "session end is not an object");
		return -1;
	}
	if (ctl_get_string(j, "session", 1, &e->session, err, errlen) != 0 ||
	    ctl_get_string(j, "reason", 0, &e->reason, err, errlen) != 0) {
		ctl_end_clear(e);
		return -1;
	}
	if (e->reason == NULL && (e->reason = strdup("ended")) == NULL) {
		ctl_err(err, errlen, "out of memory");
		ctl_end_clear(e);
		return -1;
	}
	return 0;
}

void
ctl_end_clear(struct ctl_end *e)
{
	free(e->session);
	free(e->reason);
	memset(e, 0, sizeof(*e));
}

/* ---- audit delivery --------------------------------------------------------------------- */

static int
ctl_get_seq(const json_t *j, const char *name, int required, int64_t min, int64_t *out, char *err,
	    size_t errlen)
{
	const json_t *v = json_object_get(j, name);

	*out = 0;
	if (v == NULL && !required)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > CTL_SEQ_MAX) {
		ctl_err(err, errlen, "member \"%s\" is %s", name,
			v == NULL ? "missing" : "not an integer in range");
		return -1;
	}
	*out = (int64_t)json_integer_value(v);
	return 0;
}

json_t *
ctl_audit_to_json(int64_t seq, json_t *event)
{
	json_t *j;

	if (!json_is_object(event) || seq < 0 || seq > CTL_SEQ_MAX)
		return NULL;
	if (seq == 0)
		return json_pack("{s:O}", "event", event);
	/* seq first: it is what a reader of a spooled row looks at */
	if ((j = json_object()) == NULL)
		return NULL;
	if (json_object_set_new(j, "seq", json_integer((json_int_t)seq)) != 0 ||
	    json_object_set(j, "event", event) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int
ctl_audit_from_json(const json_t *j, int64_t *seq, json_t **event, char *err, size_t errlen)
{
	json_t *ev;

	*seq = 0;
	*event = NULL;
	if (!json_is_object(j)) {
		ctl_err(err, errlen, "audit message is not an object");
		return -1;
	}
	ev = json_object_get(j, "event");
	if (!json_is_object(ev) || !json_is_integer(json_object_get(ev, "class_uid"))) {
		ctl_err(err, errlen,
			"member \"event\" is not an OCSF event (an object with an "
			"integer class_uid)");
		return -1;
	}
	if (ctl_get_seq(j, "seq", 0, 1, seq, err, errlen) != 0)
		return -1;
	*event = ev;
	return 0;
}

int64_t
ctl_audit_seq_next(int64_t last, int64_t now_us)
{
	int64_t next = last < 0 ? 1 : last + 1;

	if (last >= CTL_SEQ_MAX)
		return -1;
	if (now_us > next)
		next = now_us;
	return next > CTL_SEQ_MAX ? -1 : next;
}

bool
ctl_audit_seq_plausible(int64_t seq, int64_t now_us)
{
	if (seq < 0)
		return false;
	if (now_us > INT64_MAX - CTL_AUDIT_SEQ_SKEW_US)
		return true;
	return seq <= now_us + CTL_AUDIT_SEQ_SKEW_US;
}

json_t *
ctl_audit_ack_to_json(int64_t upto)
{
	if (upto < 0 || upto > CTL_SEQ_MAX)
		return NULL;
	return json_pack("{s:I}", "upto", (json_int_t)upto);
}

int
ctl_audit_ack_from_json(const json_t *j, int64_t *upto, char *err, size_t errlen)
{
	*upto = 0;
	if (!json_is_object(j)) {
		ctl_err(err, errlen, "audit acknowledgement is not an object");
		return -1;
	}
	return ctl_get_seq(j, "upto", 1, 0, upto, err, errlen);
}
