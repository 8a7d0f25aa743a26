/*
 * cmocka tests for the credential proxy's pure pieces (guestd/guestd-cred.h) and the proxy
 * request parser's EGRESS and ORIGIN modes (guestd/guestd-proxy.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guestd/guestd-cred.h"
#include "guestd/guestd-proxy.h"
#include "guestd/policy.h"

static void
test_caps(void **state)
{
	struct gcred_caps t;
	const struct gcred_cap *a, *b, *a2, *f;
	char tok[GCRED_TOKEN_LEN + 1];

	gcred_caps_init(&t);
	a = gcred_caps_mint(&t, "s1", "openai");
	b = gcred_caps_mint(&t, "s2", "openai");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(strlen(a->token), GCRED_TOKEN_LEN);
	assert_memory_equal(a->token, GCRED_TOKEN_PREFIX, strlen(GCRED_TOKEN_PREFIX));
	assert_string_not_equal(a->token, b->token);
	/* minting again gives the same capability */
	a2 = gcred_caps_mint(&t, "s1", "openai");
	assert_ptr_equal(a, a2);
	/* found by token, restricted to a session when asked */
	f = gcred_caps_find(&t, a->token, strlen(a->token), NULL);
	assert_ptr_equal(f, a);
	assert_ptr_equal(gcred_caps_find(&t, a->token, strlen(a->token), "s1"), a);
	assert_null(gcred_caps_find(&t, a->token, strlen(a->token), "s2"));
	/* one byte off, a prefix, a longer string: nothing */
	memcpy(tok, a->token, sizeof(tok));
	tok[GCRED_TOKEN_LEN - 1] ^= 1;
	assert_null(gcred_caps_find(&t, tok, GCRED_TOKEN_LEN, NULL));
	assert_null(gcred_caps_find(&t, a->token, GCRED_TOKEN_LEN - 1, NULL));
	assert_null(gcred_caps_find(&t, "", 0, NULL));
	assert_null(gcred_caps_find(&t, NULL, 0, NULL));
	/* invalid names */
	assert_null(gcred_caps_mint(&t, "", "openai"));
	assert_null(gcred_caps_mint(&t, "s1", "a/b"));
	/* the session ends: its capabilities die, others stay */
	memcpy(tok, a->token, sizeof(tok));
	assert_int_equal(gcred_caps_drop(&t, "s1"), 1);
	assert_null(gcred_caps_find(&t, tok, GCRED_TOKEN_LEN, NULL));
	assert_non_null(gcred_caps_find(&t, b->token, GCRED_TOKEN_LEN, NULL));
	/* a new session gets a new token, never the old one back */
	a = gcred_caps_mint(&t, "s1", "openai");
	assert_string_not_equal(a->token, tok);
	gcred_caps_free(&t);
	assert_int_equal(t.n, 0);
}

static void
test_env_name(void **state)
{
	char n[64];

	assert_int_equal(gcred_env_name("openai", n, sizeof(n)), 0);
	assert_string_equal(n, "SAW_CAP_OPENAI");
	assert_int_equal(gcred_env_name("internal-llm.v2", n, sizeof(n)), 0);
	assert_string_equal(n, "SAW_CAP_INTERNAL_LLM_V2");
	assert_int_equal(gcred_env_name("x", n, 9), -1);
	assert_int_equal(gcred_env_name("", n, sizeof(n)), -1);
}

static void
test_route_of(void **state)
{
	char r[64];
	size_t rest;
	const char *p = "/openai/v1/chat/completions";

	assert_int_equal(gcred_route_of(p, strlen(p), r, sizeof(r), &rest), 0);
	assert_string_equal(r, "openai");
	assert_string_equal(p + rest, "/v1/chat/completions");
	p = "/claude?x";
	assert_int_equal(gcred_route_of(p, strlen(p), r, sizeof(r), &rest), 0);
	assert_string_equal(r, "claude");
	assert_int_equal(gcred_route_of("/", 1, r, sizeof(r), &rest), -1);
	assert_int_equal(gcred_route_of("//v1", 4, r, sizeof(r), &rest), -1);
	assert_int_equal(gcred_route_of("/a%2fb/v1", 9, r, sizeof(r), &rest), -1);
	assert_int_equal(gcred_route_of("x/v1", 4, r, sizeof(r), &rest), -1);
	assert_int_equal(gcred_route_of("/openai/v1", 10, r, 4, &rest), -1); /* too long */
}

static bool
allowed(const char *kind, const char *p)
{
	return gcred_path_allowed(kind, p, strlen(p));
}

static void
test_path_allowed(void **state)
{
	assert_true(allowed("openai", "/v1/chat/completions"));
	assert_true(allowed("openai", "/v1/chat/completions?stream=true"));
	assert_true(allowed("openai", "/v1/responses"));
	assert_false(allowed("openai", "/v1/models"));
	assert_false(allowed("openai", "/v1/chat/completionsX"));
	assert_false(allowed("openai", "/v1/messages"));
	assert_true(allowed("anthropic", "/v1/messages"));
	assert_false(allowed("anthropic", "/v1/chat/completions"));
	assert_true(allowed("generic", "/anything/else"));
	assert_false(allowed("generic", "/a/../admin"));
	assert_false(allowed("generic", "/a/%2F../admin"));
	assert_false(allowed("openai", "/v1/./chat/completions"));
	assert_false(allowed("unknown-kind", "/v1/messages"));
	assert_false(allowed("generic", ""));
}

static void
test_header_stripped(void **state)
{
	static const char *const strip[] = { "Authorization",
					     "authorization",
					     "X-API-KEY",
					     "Proxy-Authorization",
					     "Cookie",
					     "Host",
					     "Content-Length",
					     "Transfer-Encoding",
					     "Connection",
					     "api-key",
					     NULL };
	static const char *const keep[] = {
		"Content-Type", "Accept",     "OpenAI-Beta", "anthropic-version",
		"User-Agent",	"X-Api-Keys", NULL
	};
	size_t i;

	for (i = 0; strip[i] != NULL; i++)
		assert_true(gcred_header_stripped(strip[i], strlen(strip[i])));
	for (i = 0; keep[i] != NULL; i++)
		assert_false(gcred_header_stripped(keep[i], strlen(keep[i])));
}

static void
test_presented_and_headers(void **state)
{
	const char *req = "POST /claude/v1/messages HTTP/1.1\r\n"
			  "Host: 127.0.0.1:3129\r\n"
			  "Authorization: Bearer not-a-cap\r\n"
			  "x-api-key: sawcap_XYZ\r\n"
			  "Cookie: s=1\r\n"
			  "anthropic-version: 2023-06-01\r\n"
			  "X-Empty:\r\n"
			  "Content-Length: 2\r\n\r\n{}";
	struct policy_cred_route rt = { .name = "claude",
					.kind = "anthropic",
					.upstream = "https://api.example",
					.header = "x-api-key",
					.scheme = NULL,
					.secret = "file:/x" };
	struct policy_cred_route bearer = rt;
	struct gproxy_request r;
	struct curl_slist *h = NULL, *p;
	const char *tok[4];
	size_t len[4], n;
	char err[200], all[2048] = "";

	assert_int_equal(
		gproxy_parse_mode(req, strlen(req), GPROXY_MODE_ORIGIN, &r, err, sizeof(err)),
		GPROXY_OK);
	n = gcred_presented(req, &r, tok, len, 4);
	assert_int_equal(n, 2);
	assert_int_equal(len[0], 9);
	assert_memory_equal(tok[0], "not-a-cap", 9);
	assert_memory_equal(tok[1], "sawcap_XYZ", 10);

	assert_int_equal(gcred_headers(req, &r, &rt, "REAL-SECRET", &h), 0);
	for (p = h; p != NULL; p = p->next) {
		strcat(all, p->data);
		strcat(all, "|");
	}
	assert_string_equal(all, "anthropic-version: 2023-06-01|X-Empty;|x-api-key: REAL-SECRET|"
				 "Expect:|");
	gcred_headers_free(h);

	h = NULL;
	bearer.header = "Authorization";
	bearer.scheme = "Bearer";
	assert_int_equal(gcred_headers(req, &r, &bearer, "S", &h), 0);
	assert_non_null(strstr(h->next->next->data, "Authorization: Bearer S"));
	gcred_headers_free(h);

	/* a secret or header that would inject a line is refused */
	h = NULL;
	assert_int_equal(gcred_headers(req, &r, &rt, "a\r\nX-Evil: 1", &h), -1);
	assert_int_equal(gcred_headers(req, &r, &rt, "", &h), -1);
	assert_int_equal(gcred_headers(req, &r, &rt, NULL, &h), -1);
	gcred_headers_free(h);
}

static enum gproxy_parse_result
pm(const char *s, enum gproxy_mode m, struct gproxy_request *r)
{
	char err[200];

	return gproxy_parse_mode(s, strlen(s), m, r, err, sizeof(err));
}

static void
test_parse_modes(void **state)
{
	struct gproxy_request r;
	const char *s;

	s = "GET http://Example.COM:8080/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(pm(s, GPROXY_MODE_EGRESS, &r), GPROXY_OK);
	assert_int_equal(r.form, GPROXY_FORM_ABSOLUTE);
	assert_string_equal(r.host, "example.com");
	assert_int_equal(r.port, 8080);
	assert_string_equal(r.method, "GET");
	assert_int_equal(r.path_len, 8);
	assert_memory_equal(s + r.path, "/a/b?c=d", 8);
	assert_int_equal(pm("GET http://h HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r), GPROXY_OK);
	assert_int_equal(r.port, 80);
	assert_int_equal(r.path_len, 0);
	assert_int_equal(pm("GET http://[::1]:81/ HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r),
			 GPROXY_OK);
	assert_string_equal(r.host, "::1");
	assert_int_equal(pm("CONNECT h:443 HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r), GPROXY_OK);
	assert_int_equal(r.form, GPROXY_FORM_AUTHORITY);
	/* refused forms */
	assert_int_equal(pm("GET https://h/ HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r),
			 GPROXY_NOT_CONNECT);
	assert_int_equal(pm("GET /x HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r), GPROXY_NOT_CONNECT);
	assert_int_equal(pm("GET http://u@h/ HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r),
			 GPROXY_BAD);
	assert_int_equal(pm("GET http:///x HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r), GPROXY_BAD);
	assert_int_equal(pm("GET ftp://h/ HTTP/1.1\r\n\r\n", GPROXY_MODE_EGRESS, &r), GPROXY_BAD);
	/* origin mode */
	assert_int_equal(pm("POST /openai/v1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_OK);
	assert_int_equal(r.content_length, 5);
	assert_int_equal(pm("CONNECT h:1 HTTP/1.1\r\n\r\n", GPROXY_MODE_ORIGIN, &r),
			 GPROXY_NOT_CONNECT);
	assert_int_equal(pm("GET http://h/ HTTP/1.1\r\n\r\n", GPROXY_MODE_ORIGIN, &r),
			 GPROXY_NOT_CONNECT);
	/* framing that could be read two ways */
	assert_int_equal(pm("POST /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
			    "chunked\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_BAD);
	assert_int_equal(pm("POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_BAD);
	assert_int_equal(pm("POST /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_OK);
	assert_int_equal(
		pm("POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", GPROXY_MODE_ORIGIN, &r),
		GPROXY_BAD);
	assert_int_equal(pm("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_BAD);
	assert_int_equal(pm("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
			    GPROXY_MODE_ORIGIN, &r),
			 GPROXY_OK);
	assert_true(r.chunked);
	/* header values are trimmed */
	s = "GET /a HTTP/1.1\r\nX:   v w  \r\n\r\n";
	assert_int_equal(pm(s, GPROXY_MODE_ORIGIN, &r), GPROXY_OK);
	assert_int_equal(r.nheaders, 1);
	assert_int_equal(r.headers[0].value_len, 3);
	assert_memory_equal(s + r.headers[0].value, "v w", 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_env_name),
		cmocka_unit_test(test_route_of),
		cmocka_unit_test(test_path_allowed),
		cmocka_unit_test(test_header_stripped),
		cmocka_unit_test(test_presented_and_headers),
		cmocka_unit_test(test_parse_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
