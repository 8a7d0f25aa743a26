/*
 * Control-channel framing and typed messages (tunnel/ctl.c).
 *
 * The test is linked with -Wl,--wrap=free (tests/unit/ctl.cmake) so that it can look at the
 * tunnel token's bytes at the moment ctl_attach_clear() frees them: they must be zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tunnel/ctl.h"

void __real_free(void *p);
void __wrap_free(void *p);

/* free() spy: when watch_ptr is freed, its first watch_len bytes are copied to seen. */
static const void *watch_ptr;
static size_t watch_len;
static unsigned char seen[256];
static int watch_hit;

void
__wrap_free(void *p)
{
	if (p != NULL && p == watch_ptr) {
		memcpy(seen, p, watch_len);
		watch_hit = 1;
	}
	__real_free(p);
}

/* A raw frame: header with the given length/version/type, then body bytes. */
static size_t
frame(uint8_t *buf, uint32_t flen, uint8_t version, uint8_t type, const char *body, size_t blen)
{
	buf[0] = (uint8_t)(flen >> 24);
	buf[1] = (uint8_t)(flen >> 16);
	buf[2] = (uint8_t)(flen >> 8);
	buf[3] = (uint8_t)flen;
	buf[4] = version;
	buf[5] = type;
	memcpy(buf + 6, body, blen);
	return 6 + blen;
}

static size_t
frame_body(uint8_t *buf, uint8_t type, const char *body)
{
	size_t n = strlen(body);

	return frame(buf, (uint32_t)n + 2, CTL_VERSION, type, body, n);
}

static void
expect_malformed(const uint8_t *buf, size_t len, const char *reason)
{
	enum ctl_type type;
	json_t *body = NULL;
	size_t consumed = 99;
	char err[256] = "";

	assert_int_equal(ctl_decode(buf, len, &consumed, &type, &body, err, sizeof(err)), -1);
	assert_null(body);
	assert_int_equal(consumed, 0);
	if (strstr(err, reason) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, reason);
}

static void
test_round_trip(void **state)
{
	json_t *in, *out = NULL;
	uint8_t *buf = NULL;
	size_t len, consumed, i;
	enum ctl_type type, t;
	char err[128];

	for (t = CTL_HELLO; t <= CTL_AUDIT_ACK; t++) {
		in = json_pack("{s:s, s:i, s:[s,s], s:{s:b}}", "workspace", "alice-ws \xc3\xa9",
			       "version", 3, "list", "a", "b", "nested", "x", 1);
		assert_non_null(in);
		assert_int_equal(ctl_encode(t, in, &buf, &len), 0);
		assert_int_equal(buf[4], CTL_VERSION);
		assert_int_equal(buf[5], t);
		/* every strict prefix asks for more */
		for (i = 0; i < len; i++)
			assert_int_equal(
				ctl_decode(buf, i, &consumed, &type, &out, err, sizeof(err)), 1);
		assert_int_equal(ctl_decode(buf, len, &consumed, &type, &out, err, sizeof(err)), 0);
		assert_int_equal(consumed, len);
		assert_int_equal(type, t);
		assert_true(json_equal(in, out));
		json_decref(in);
		json_decref(out);
		free(buf);
	}
}

static void
test_two_frames(void **state)
{
	uint8_t buf[128];
	size_t n, consumed;
	enum ctl_type type;
	json_t *body;
	char err[128];

	n = frame_body(buf, CTL_HELLO, "{\"a\":1}");
	n += frame_body(buf + n, CTL_STATE, "{}");
	assert_int_equal(ctl_decode(buf, n, &consumed, &type, &body, err, sizeof(err)), 0);
	assert_int_equal(type, CTL_HELLO);
	assert_int_equal(json_integer_value(json_object_get(body, "a")), 1);
	json_decref(body);
	assert_int_equal(consumed, 6 + 7);
	assert_int_equal(
		ctl_decode(buf + consumed, n - consumed, &consumed, &type, &body, err, sizeof(err)),
		0);
	assert_int_equal(type, CTL_STATE);
	assert_int_equal(json_object_size(body), 0);
	json_decref(body);
}

static void
test_encode_refuses(void **state)
{
	json_t *arr = json_array(), *obj = json_object(), *big;
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 7;
	char *s;

	assert_int_equal(ctl_encode(CTL_HELLO, arr, &buf, &len), -1);
	assert_null(buf);
	assert_int_equal(ctl_encode((enum ctl_type)0, obj, &buf, &len), -1);
	assert_int_equal(ctl_encode((enum ctl_type)7, obj, &buf, &len), -1);
	/* a body that does not fit in CTL_MAX_FRAME */
	s = malloc(CTL_MAX_FRAME);
	assert_non_null(s);
	memset(s, 'x', CTL_MAX_FRAME - 1);
	s[CTL_MAX_FRAME - 1] = '\0';
	big = json_pack("{s:s}", "x", s);
	assert_int_equal(ctl_encode(CTL_STATE, big, &buf, &len), -1);
	json_decref(big);
	/* the largest body that fits: {"x":"…"} is 8 bytes + the string */
	s[CTL_MAX_FRAME - 2 - 8] = '\0';
	big = json_pack("{s:s}", "x", s);
	assert_int_equal(ctl_encode(CTL_STATE, big, &buf, &len), 0);
	assert_int_equal(len, 4 + CTL_MAX_FRAME);
	free(buf);
	json_decref(big);
	free(s);
	json_decref(arr);
	json_decref(obj);
}

static void
test_malformed_header(void **state)
{
	uint8_t buf[64];
	size_t n;

	/* length below 2: no room for version and type */
	n = frame(buf, 0, CTL_VERSION, CTL_HELLO, "", 0);
	expect_malformed(buf, 4, "out of range");
	n = frame(buf, 1, CTL_VERSION, CTL_HELLO, "", 0);
	expect_malformed(buf, n, "out of range");
	/* oversized: refused from the 4 length bytes alone, without waiting for the body */
	frame(buf, CTL_MAX_FRAME + 1, CTL_VERSION, CTL_HELLO, "", 0);
	expect_malformed(buf, 4, "out of range");
	frame(buf, 0xffffffffu, CTL_VERSION, CTL_HELLO, "", 0);
	expect_malformed(buf, 4, "out of range");
	/* bad version: refused as soon as the version byte is there */
	frame(buf, 4, 2, CTL_HELLO, "{}", 2);
	expect_malformed(buf, 5, "version 2");
	frame(buf, 4, 0, CTL_HELLO, "{}", 2);
	expect_malformed(buf, 8, "version 0");
	/* unknown types */
	frame(buf, 4, CTL_VERSION, 0, "{}", 2);
	expect_malformed(buf, 6, "unknown message type 0");
	frame(buf, 4, CTL_VERSION, 7, "{}", 2);
	expect_malformed(buf, 8, "unknown message type 7");
	frame(buf, 4, CTL_VERSION, 255, "{}", 2);
	expect_malformed(buf, 8, "unknown message type 255");
}

static void
test_malformed_body(void **state)
{
	static const struct {
		const char *body;
		const char *reason;
	} cases[] = {
		{ "", "not valid JSON" },
		{ "[]", "not a JSON object" },
		/* jansson refuses a scalar at the top level itself */
		{ "\"x\"", "not valid JSON" },
		{ "42", "not valid JSON" },
		{ "null", "not valid JSON" },
		{ "{", "not valid JSON" },
		{ "{\"a\":}", "not valid JSON" },
		{ "{} ", "1 trailing bytes" },
		{ "{}x", "1 trailing bytes" },
		{ "{}{}", "2 trailing bytes" },
		{ "{\"a\":1,\"a\":2}", "not valid JSON" },   /* duplicate member */
		{ "{\"a\":\"\\u0000\"}", "not valid JSON" }, /* NUL inside a string */
	};
	uint8_t buf[64];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = frame_body(buf, CTL_STATE, cases[i].body);
		expect_malformed(buf, n, cases[i].reason);
	}
	/* a NUL byte in the frame ends the JSON text early: trailing bytes */
	n = frame(buf, 5, CTL_VERSION, CTL_STATE, "{}\0", 3);
	expect_malformed(buf, n, "trailing");
	/* a frame whose length covers only part of the object */
	n = frame(buf, 3, CTL_VERSION, CTL_STATE, "{}", 2);
	expect_malformed(buf, n, "not valid JSON");
}

static json_t *
attach_json(void)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:[{s:s, s:s, s:i}, {s:s, "
			      "s:s, s:i}], s:s}",
			      "session", "s-1", "user", "alice", "sub", "sub-1", "key_fp",
			      "SHA256:abc", "expires", (json_int_t)1900000000, "profile",
			      "corporate", "tunnel_token", "tok-secret-0123456789", "corp", "name",
			      "git", "host", "git.corp.example", "port", 443, "name", "wiki",
			      "host", "10.0.0.5", "port", 8080, "future_member", "ignored");

	assert_non_null(j);
	return j;
}

static void
test_attach_round_trip(void **state)
{
	struct ctl_attach a, b;
	json_t *j = attach_json(), *k;
	char err[128];

	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), 0);
	assert_string_equal(a.session, "s-1");
	assert_string_equal(a.user, "alice");
	assert_string_equal(a.sub, "sub-1");
	assert_string_equal(a.key_fp, "SHA256:abc");
	assert_int_equal(a.expires, 1900000000);
	assert_string_equal(a.profile, "corporate");
	assert_string_equal(a.tunnel_token, "tok-secret-0123456789");
	assert_int_equal(a.ncorp, 2);
	assert_string_equal(a.corp[0].name, "git");
	assert_string_equal(a.corp[0].host, "git.corp.example");
	assert_int_equal(a.corp[0].port, 443);
	assert_string_equal(a.corp[1].host, "10.0.0.5");
	assert_int_equal(a.corp[1].port, 8080);

	k = ctl_attach_to_json(&a);
	assert_non_null(k);
	assert_int_equal(ctl_attach_from_json(k, &b, err, sizeof(err)), 0);
	assert_string_equal(b.tunnel_token, a.tunnel_token);
	assert_int_equal(b.ncorp, 2);
	assert_string_equal(b.corp[1].name, "wiki");
	ctl_attach_clear(&b);
	json_decref(k);
	ctl_attach_clear(&a);
	json_decref(j);

	/* optional members: no token, no corp list */
	j = attach_json();
	json_object_del(j, "tunnel_token");
	json_object_del(j, "corp");
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), 0);
	assert_null(a.tunnel_token);
	assert_int_equal(a.ncorp, 0);
	k = ctl_attach_to_json(&a);
	assert_null(json_object_get(k, "tunnel_token"));
	assert_int_equal(json_array_size(json_object_get(k, "corp")), 0);
	json_decref(k);
	ctl_attach_clear(&a);
	json_decref(j);
}

/* The optional groups member (policy selectors in guestd). */
static void
test_attach_groups(void **state)
{
	struct ctl_attach a, b;
	json_t *j = attach_json(), *k, *many;
	char err[128], **groups;
	size_t i, n;

	json_object_set_new(j, "groups", json_pack("[s, s]", "saw-users", "dev"));
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), 0);
	assert_int_equal(a.ngroups, 2);
	assert_string_equal(a.groups[0], "saw-users");
	assert_string_equal(a.groups[1], "dev");
	k = ctl_attach_to_json(&a);
	assert_non_null(k);
	assert_int_equal(ctl_attach_from_json(k, &b, err, sizeof(err)), 0);
	assert_int_equal(b.ngroups, 2);
	assert_string_equal(b.groups[1], "dev");
	ctl_attach_clear(&b);
	json_decref(k);
	ctl_attach_clear(&a);
	assert_null(a.groups);
	assert_int_equal(a.ngroups, 0);

	/* absent: none, and none sent */
	json_object_del(j, "groups");
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), 0);
	assert_null(a.groups);
	assert_int_equal(a.ngroups, 0);
	k = ctl_attach_to_json(&a);
	assert_null(json_object_get(k, "groups"));
	json_decref(k);
	ctl_attach_clear(&a);

	/* malformed: the whole attach is refused, nothing left allocated */
	json_object_set_new(j, "groups", json_string("dev"));
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "member \"groups\" is not an array");
	assert_null(a.groups);
	json_object_set_new(j, "groups", json_pack("[s, i]", "dev", 5));
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "groups[1] is not a string of 1 to 1024 bytes");
	assert_null(a.groups);
	assert_int_equal(a.ngroups, 0);
	json_object_set_new(j, "groups", json_pack("[s]", ""));
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), -1);
	many = json_array();
	for (i = 0; i <= CTL_MAX_GROUPS; i++)
		json_array_append_new(many, json_string("g"));
	json_object_set_new(j, "groups", many);
	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "more than 256 groups");
	json_decref(j);

	/* the broker's stored text */
	assert_int_equal(ctl_groups_from_text("[\"saw-users\",\"dev\"]", &groups, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(groups[0], "saw-users");
	ctl_groups_free(groups, n);
	assert_int_equal(ctl_groups_from_text("[\"a\",3,\"\",\"b\"]", &groups, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(groups[1], "b");
	ctl_groups_free(groups, n);
	assert_int_equal(ctl_groups_from_text("[]", &groups, &n), 0);
	assert_null(groups);
	assert_int_equal(ctl_groups_from_text(NULL, &groups, &n), 0);
	assert_null(groups);
	assert_int_equal(ctl_groups_from_text("not json", &groups, &n), 0);
	assert_null(groups);
	assert_int_equal(n, 0);
}

static void
expect_attach_error(json_t *j, const char *reason)
{
	struct ctl_attach a;
	char err[128] = "";

	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), -1);
	if (strstr(err, reason) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, reason);
	/* nothing left allocated */
	assert_null(a.session);
	assert_null(a.tunnel_token);
	assert_null(a.corp);
	assert_int_equal(a.ncorp, 0);
	json_decref(j);
}

static void
test_attach_malformed(void **state)
{
	static const char *const required[] = { "session", "user",    "sub",
						"key_fp",  "profile", "expires" };
	json_t *j, *corp;
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		j = attach_json();
		json_object_del(j, required[i]);
		expect_attach_error(j, "missing");
		j = attach_json();
		json_object_set_new(j, required[i], json_array());
		expect_attach_error(j, required[i]);
	}
	j = attach_json();
	json_object_set_new(j, "user", json_string(""));
	expect_attach_error(j, "empty");
	j = attach_json();
	json_object_set_new(j, "tunnel_token", json_integer(5));
	expect_attach_error(j, "\"tunnel_token\" is not a string");
	j = attach_json();
	json_object_set_new(j, "expires", json_string("1900000000"));
	expect_attach_error(j, "expires");
	j = attach_json();
	json_object_set_new(j, "expires", json_integer(-1));
	expect_attach_error(j, "positive");
	j = attach_json();
	json_object_set_new(j, "expires", json_real(1.5));
	expect_attach_error(j, "expires");
	j = attach_json();
	json_object_set_new(j, "corp", json_object());
	expect_attach_error(j, "not an array");
	j = attach_json();
	json_array_append_new(json_object_get(j, "corp"), json_string("git"));
	expect_attach_error(j, "corp[2] is not an object");
	j = attach_json();
	json_object_del(json_array_get(json_object_get(j, "corp"), 1), "host");
	expect_attach_error(j, "corp[1]: member \"host\" is missing");
	j = attach_json();
	json_object_set_new(json_array_get(json_object_get(j, "corp"), 0), "port", json_integer(0));
	expect_attach_error(j, "port");
	j = attach_json();
	json_object_set_new(json_array_get(json_object_get(j, "corp"), 0), "port",
			    json_integer(65536));
	expect_attach_error(j, "port");
	j = attach_json();
	json_object_set_new(json_array_get(json_object_get(j, "corp"), 0), "port",
			    json_string("443"));
	expect_attach_error(j, "port");
	j = attach_json();
	corp = json_object_get(j, "corp");
	json_array_clear(corp);
	for (i = 0; i <= CTL_MAX_CORP; i++)
		json_array_append_new(
			corp, json_pack("{s:s, s:s, s:i}", "name", "n", "host", "h", "port", 1));
	expect_attach_error(j, "more than");
	expect_attach_error(json_array(), "not an object");
}

static void
test_attach_clear_wipes_token(void **state)
{
	struct ctl_attach a;
	json_t *j = attach_json();
	char err[128];
	size_t i, n;

	assert_int_equal(ctl_attach_from_json(j, &a, err, sizeof(err)), 0);
	n = strlen(a.tunnel_token);
	watch_ptr = a.tunnel_token;
	watch_len = n;
	watch_hit = 0;
	ctl_attach_clear(&a);
	watch_ptr = NULL;
	assert_true(watch_hit);
	for (i = 0; i < n; i++)
		assert_int_equal(seen[i], 0);
	assert_null(a.tunnel_token);
	assert_null(a.session);
	assert_int_equal(a.ncorp, 0);
	ctl_attach_clear(&a); /* twice is harmless */
	json_decref(j);
}

static void
test_end(void **state)
{
	struct ctl_end e, f;
	json_t *j;
	char err[128] = "";

	j = json_pack("{s:s, s:s}", "session", "s-1", "reason", "revoked by the IdP");
	assert_int_equal(ctl_end_from_json(j, &e, err, sizeof(err)), 0);
	json_decref(j);
	assert_string_equal(e.session, "s-1");
	assert_string_equal(e.reason, "revoked by the IdP");
	j = ctl_end_to_json(&e);
	assert_int_equal(ctl_end_from_json(j, &f, err, sizeof(err)), 0);
	assert_string_equal(f.reason, e.reason);
	json_decref(j);
	ctl_end_clear(&f);
	ctl_end_clear(&e);

	j = json_pack("{s:s}", "session", "s-2");
	assert_int_equal(ctl_end_from_json(j, &e, err, sizeof(err)), 0);
	assert_string_equal(e.reason, "ended");
	ctl_end_clear(&e);
	json_decref(j);

	j = json_pack("{s:s}", "reason", "x");
	assert_int_equal(ctl_end_from_json(j, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"session\" is missing"));
	assert_null(e.session);
	json_decref(j);
	j = json_pack("{s:i}", "session", 7);
	assert_int_equal(ctl_end_from_json(j, &e, err, sizeof(err)), -1);
	json_decref(j);
	j = json_pack("{s:s, s:b}", "session", "s", "reason", 1);
	assert_int_equal(ctl_end_from_json(j, &e, err, sizeof(err)), -1);
	assert_null(e.session);
	json_decref(j);
}

static void
test_audit(void **state)
{
	json_t *ev = json_pack("{s:i, s:s}", "class_uid", 4001, "message", "x"), *j, *got;
	uint8_t *buf = NULL;
	size_t len, consumed;
	enum ctl_type type;
	int64_t seq;
	char err[256];

	/* numbered: seq first in the encoding (a spooled row starts with it) */
	j = ctl_audit_to_json(1700000000123456, ev);
	assert_non_null(j);
	assert_int_equal(ctl_encode(CTL_AUDIT, j, &buf, &len), 0);
	assert_memory_equal(buf + 6, "{\"seq\":1700000000123456,\"event\":{", 33);
	json_decref(j);
	j = NULL;
	assert_int_equal(ctl_decode(buf, len, &consumed, &type, &j, err, sizeof(err)), 0);
	assert_int_equal(type, CTL_AUDIT);
	assert_int_equal(ctl_audit_from_json(j, &seq, &got, err, sizeof(err)), 0);
	assert_int_equal(seq, 1700000000123456);
	assert_true(json_equal(got, ev));
	json_decref(j);

	/* the same frame from the event's text, as guestd builds it */
	{
		char *text = json_dumps(ev, JSON_COMPACT);
		uint8_t *buf2 = NULL;
		size_t len2;

		assert_int_equal(
			ctl_audit_frame(1700000000123456, text, strlen(text), &buf2, &len2), 0);
		assert_int_equal(len2, len);
		assert_memory_equal(buf2, buf, len);
		j = NULL;
		assert_int_equal(ctl_decode(buf2, len2, &consumed, &type, &j, err, sizeof(err)), 0);
		assert_int_equal(consumed, len2);
		assert_int_equal(ctl_audit_from_json(j, &seq, &got, err, sizeof(err)), 0);
		assert_true(json_equal(got, ev));
		json_decref(j);
		free(buf2);
		/* refused: no seq, seq out of range, not an object's text, a NUL inside */
		assert_int_equal(ctl_audit_frame(0, text, strlen(text), &buf2, &len2), -1);
		assert_null(buf2);
		assert_int_equal(ctl_audit_frame(CTL_SEQ_MAX + 1, text, strlen(text), &buf2, &len2),
				 -1);
		assert_int_equal(ctl_audit_frame(5, "[1]", 3, &buf2, &len2), -1);
		assert_int_equal(ctl_audit_frame(5, "{", 1, &buf2, &len2), -1);
		assert_int_equal(ctl_audit_frame(5, "{\0}", 3, &buf2, &len2), -1);
		free(text);
		free(buf);
	}
	/* too big for a frame */
	{
		size_t big = CTL_MAX_FRAME;
		char *text = malloc(big);
		uint8_t *buf2 = NULL;
		size_t len2;

		assert_non_null(text);
		memset(text, ' ', big);
		text[0] = '{';
		text[big - 1] = '}';
		assert_int_equal(ctl_audit_frame(5, text, big, &buf2, &len2), -1);
		text[big - 41] = '}'; /* the largest that fits, less a margin */
		assert_int_equal(ctl_audit_frame(5, text, big - 40, &buf2, &len2), 0);
		/* header, {"seq":5,"event": (17 bytes), the text, } */
		assert_int_equal(len2, CTL_FRAME_HEADER + 17 + (big - 40) + 1);
		free(buf2);
		free(text);
	}

	/* unnumbered (an older guestd, or one without a spool) */
	j = ctl_audit_to_json(0, ev);
	assert_null(json_object_get(j, "seq"));
	assert_int_equal(ctl_audit_from_json(j, &seq, &got, err, sizeof(err)), 0);
	assert_int_equal(seq, 0);
	assert_ptr_equal(got, json_object_get(j, "event"));
	json_decref(j);
	assert_null(ctl_audit_to_json(-1, ev));
	assert_null(ctl_audit_to_json(CTL_SEQ_MAX + 1, ev));
	assert_null(ctl_audit_to_json(5, NULL));

	/* refused: seq of the wrong type or out of range, events without class_uid */
	static const char *bad[] = {
		"{\"seq\":0,\"event\":{\"class_uid\":1}}",
		"{\"seq\":-3,\"event\":{\"class_uid\":1}}",
		"{\"seq\":\"7\",\"event\":{\"class_uid\":1}}",
		"{\"seq\":1.5,\"event\":{\"class_uid\":1}}",
		"{\"seq\":9007199254740993,\"event\":{\"class_uid\":1}}",
		"{\"seq\":3}",
		"{\"seq\":3,\"event\":[]}",
		"{\"seq\":3,\"event\":{\"class_uid\":\"4001\"}}",
		"{\"event\":{}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		err[0] = '\0';
		seq = 99;
		got = (json_t *)1;
		if (ctl_audit_from_json(j, &seq, &got, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_null(got);
		assert_true(err[0] != '\0');
		json_decref(j);
	}
	j = json_array();
	assert_int_equal(ctl_audit_from_json(j, &seq, &got, err, sizeof(err)), -1);
	json_decref(j);
	json_decref(ev);
}

static void
test_audit_seq_next(void **state)
{
	/* the clock wins while it is ahead ... */
	assert_int_equal(ctl_audit_seq_next(0, 1700000000000000), 1700000000000000);
	assert_int_equal(ctl_audit_seq_next(5, 1700000000000000), 1700000000000000);
	/* ... and a burst within one microsecond, or a clock stepped back, still grows */
	assert_int_equal(ctl_audit_seq_next(1700000000000000, 1700000000000000), 1700000000000001);
	assert_int_equal(ctl_audit_seq_next(1700000000000500, 1600000000000000), 1700000000000501);
	assert_int_equal(ctl_audit_seq_next(-1, 0), 1);
	assert_int_equal(ctl_audit_seq_next(0, -5), 1);
	/* the end of the range */
	assert_int_equal(ctl_audit_seq_next(CTL_SEQ_MAX - 1, 0), CTL_SEQ_MAX);
	assert_int_equal(ctl_audit_seq_next(CTL_SEQ_MAX, 0), -1);
	assert_int_equal(ctl_audit_seq_next(0, CTL_SEQ_MAX + 1), -1);
}

static void
test_audit_seq_plausible(void **state)
{
	const int64_t now = 1700000000000000LL; /* µs: November 2023 */
	(void)state;

	/* what guestd gives out: small counters, and its wall clock in µs */
	assert_true(ctl_audit_seq_plausible(0, now));
	assert_true(ctl_audit_seq_plausible(1, now));
	assert_true(ctl_audit_seq_plausible(now, now));
	assert_true(ctl_audit_seq_plausible(now - 3600LL * 1000000, now));
	/* guestd's clock ahead of ours by up to a day */
	assert_true(ctl_audit_seq_plausible(now + CTL_AUDIT_SEQ_SKEW_US, now));
	assert_int_equal(CTL_AUDIT_SEQ_SKEW_US, 86400LL * 1000000);
	/* further ahead: refused; so is a seq near the maximum (1 << 53) */
	assert_false(ctl_audit_seq_plausible(now + CTL_AUDIT_SEQ_SKEW_US + 1, now));
	assert_false(ctl_audit_seq_plausible(now + 2 * CTL_AUDIT_SEQ_SKEW_US, now));
	assert_false(ctl_audit_seq_plausible((int64_t)1 << 53, now));
	assert_false(ctl_audit_seq_plausible(INT64_MAX, now));
	assert_false(ctl_audit_seq_plausible(-1, now));
	/* a broker clock at the epoch still takes small counters, not wall-clock numbers */
	assert_true(ctl_audit_seq_plausible(1000, 0));
	assert_false(ctl_audit_seq_plausible(now, 0));
	/* no overflow near the top */
	assert_true(ctl_audit_seq_plausible(INT64_MAX, INT64_MAX - 1));
}

static void
test_audit_ack(void **state)
{
	json_t *j, *back = NULL;
	uint8_t *buf = NULL;
	size_t len, consumed;
	enum ctl_type type;
	int64_t upto;
	char err[256];

	j = ctl_audit_ack_to_json(CTL_SEQ_MAX);
	assert_int_equal(ctl_encode(CTL_AUDIT_ACK, j, &buf, &len), 0);
	assert_int_equal(buf[5], CTL_AUDIT_ACK);
	assert_int_equal(ctl_decode(buf, len, &consumed, &type, &back, err, sizeof(err)), 0);
	assert_int_equal(type, CTL_AUDIT_ACK);
	assert_int_equal(ctl_audit_ack_from_json(back, &upto, err, sizeof(err)), 0);
	assert_int_equal(upto, CTL_SEQ_MAX);
	json_decref(back);
	json_decref(j);
	free(buf);

	j = ctl_audit_ack_to_json(0); /* the broker holds nothing yet */
	assert_int_equal(ctl_audit_ack_from_json(j, &upto, err, sizeof(err)), 0);
	assert_int_equal(upto, 0);
	json_decref(j);
	assert_null(ctl_audit_ack_to_json(-1));
	assert_null(ctl_audit_ack_to_json(CTL_SEQ_MAX + 1));

	static const char *bad[] = { "{}", "{\"upto\":-1}", "{\"upto\":\"5\"}", "{\"upto\":null}",
				     "{\"upto\":9007199254740993}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		upto = 42;
		if (ctl_audit_ack_from_json(j, &upto, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(upto, 0);
		json_decref(j);
	}
	j = json_array();
	assert_int_equal(ctl_audit_ack_from_json(j, &upto, err, sizeof(err)), -1);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_two_frames),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_malformed_header),
		cmocka_unit_test(test_malformed_body),
		cmocka_unit_test(test_attach_round_trip),
		cmocka_unit_test(test_attach_malformed),
		cmocka_unit_test(test_attach_groups),
		cmocka_unit_test(test_attach_clear_wipes_token),
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_audit_seq_next),
		cmocka_unit_test(test_audit_seq_plausible),
		cmocka_unit_test(test_audit_ack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
