/*
 * broker-oidc-parse: the IdP's discovery document, device authorization answer and token
 * endpoint answers, including the hostile ones (issuer mix-up, plain-HTTP endpoints,
 * terminal escapes in the user code, duplicate members, wrong types).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker-oidc-parse.h"

#define ISS "https://idp.example.test"

static int
parse_disco(const char *json, struct oidc_discovery *d, char *err, size_t errlen)
{
	return oidc_parse_discovery(json, strlen(json), ISS, d, err, errlen);
}

static void
test_url_allowed(void **state)
{
	(void)state;
	assert_true(oidc_url_allowed("https://idp.example.test"));
	assert_true(oidc_url_allowed("https://idp.example.test:8443/realms/x/"));
	assert_true(oidc_url_allowed("http://127.0.0.1:9000"));
	assert_true(oidc_url_allowed("http://127.0.0.53/x"));
	assert_true(oidc_url_allowed("http://[::1]:8080/"));
	assert_true(oidc_url_allowed("http://localhost:8080/"));
	assert_true(oidc_url_allowed("HTTPS://IDP.example.test/"));

	assert_false(oidc_url_allowed("http://idp.example.test"));
	assert_false(oidc_url_allowed("http://127.evil.example/"));
	assert_false(oidc_url_allowed("http://127.0.0.1.nip.io/"));
	assert_false(oidc_url_allowed("ftp://idp.example.test/"));
	assert_false(oidc_url_allowed("file:///etc/passwd"));
	assert_false(oidc_url_allowed("idp.example.test/token"));
	assert_false(oidc_url_allowed("https://idp.example.test/a b"));
	assert_false(oidc_url_allowed("https://idp.example.test/\x1b[2J"));
	assert_false(oidc_url_allowed(""));
	assert_false(oidc_url_allowed(NULL));
}

static void
test_discovery_ok(void **state)
{
	struct oidc_discovery d;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse_disco("{\"issuer\":\"" ISS "\","
				     "\"device_authorization_endpoint\":\"" ISS "/device/auth\","
				     "\"token_endpoint\":\"" ISS "/token\","
				     "\"jwks_uri\":\"" ISS "/jwks\","
				     "\"authorization_endpoint\":\"" ISS "/auth\","
				     "\"scopes_supported\":[\"openid\"]}",
				     &d, err, sizeof(err)),
			 0);
	assert_string_equal(d.issuer, ISS);
	assert_string_equal(d.device_authorization_endpoint, ISS "/device/auth");
	assert_string_equal(d.token_endpoint, ISS "/token");
	assert_string_equal(d.jwks_uri, ISS "/jwks");
	oidc_discovery_clear(&d);
	assert_null(d.issuer);
	oidc_discovery_clear(&d); /* twice is harmless */
}

static void
expect_disco_error(const char *json, const char *needle)
{
	struct oidc_discovery d;
	char err[256] = "";

	assert_int_equal(parse_disco(json, &d, err, sizeof(err)), -1);
	assert_null(d.issuer);
	assert_null(d.token_endpoint);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

#define ENDPOINTS                                                                           \
	"\"device_authorization_endpoint\":\"" ISS "/d\",\"token_endpoint\":\"" ISS "/t\"," \
	"\"jwks_uri\":\"" ISS "/k\""

static void
test_discovery_bad(void **state)
{
	(void)state;
	/* Mix-up: another issuer's document, or ours with a trailing slash difference. */
	expect_disco_error("{\"issuer\":\"https://evil.example\"," ENDPOINTS "}", "issuer");
	expect_disco_error("{\"issuer\":\"" ISS "/\"," ENDPOINTS "}", "issuer");
	expect_disco_error("{\"issuer\":\"HTTPS://idp.example.test\"," ENDPOINTS "}", "issuer");
	expect_disco_error("{" ENDPOINTS "}", "issuer");
	expect_disco_error("{\"issuer\":42," ENDPOINTS "}", "not a string");
	/* Two issuers: which one would another parser believe? */
	expect_disco_error("{\"issuer\":\"https://evil.example\",\"issuer\":\"" ISS "\"," ENDPOINTS
			   "}",
			   "JSON");
	expect_disco_error("{\"issuer\":\"" ISS "\",\"token_endpoint\":\"" ISS "/t\","
			   "\"jwks_uri\":\"" ISS "/k\"}",
			   "device_authorization_endpoint");
	expect_disco_error("{\"issuer\":\"" ISS "\",\"device_authorization_endpoint\":\"" ISS
			   "/d\",\"token_endpoint\":\"http://idp.example.test/t\","
			   "\"jwks_uri\":\"" ISS "/k\"}",
			   "https");
	expect_disco_error("{\"issuer\":\"" ISS "\",\"device_authorization_endpoint\":\"" ISS
			   "/d\",\"token_endpoint\":\"" ISS "/t\",\"jwks_uri\":[]}",
			   "jwks_uri");
	expect_disco_error("{\"issuer\":\"" ISS "\",\"device_authorization_endpoint\":\"" ISS
			   "/d\",\"token_endpoint\":\"\",\"jwks_uri\":\"" ISS "/k\"}",
			   "empty");
	expect_disco_error("[1,2,3]", "object");
	expect_disco_error("<html>502 Bad Gateway</html>", "JSON");
	expect_disco_error("", "empty");
}

static void
test_discovery_nul_in_body(void **state)
{
	static const char body[] = "{\"issuer\":\"" ISS "\"}\0garbage";
	struct oidc_discovery d;
	char err[256];

	(void)state;
	assert_int_equal(oidc_parse_discovery(body, sizeof(body) - 1, ISS, &d, err, sizeof(err)),
			 -1);
	/* And a NUL inside a string value. */
	static const char body2[] = "{\"issuer\":\"https://idp.example.test\\u0000x\"}";
	assert_int_equal(oidc_parse_discovery(body2, sizeof(body2) - 1, ISS, &d, err, sizeof(err)),
			 -1);
}

#define DEVAUTH_URI "\"verification_uri\":\"" ISS "/device\""

static void
test_device_auth_ok(void **state)
{
	static const char body[] = "{\"device_code\":\"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS\","
				   "\"user_code\":\"WDJB-MJHT\"," DEVAUTH_URI ","
				   "\"verification_uri_complete\":\"" ISS
				   "/device?user_code=WDJB-MJHT\","
				   "\"expires_in\":1800,\"interval\":7}";
	struct oidc_device_auth a;
	char err[256] = "";

	(void)state;
	assert_int_equal(oidc_parse_device_auth(body, strlen(body), &a, err, sizeof(err)), 0);
	assert_string_equal(a.device_code, "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS");
	assert_string_equal(a.user_code, "WDJB-MJHT");
	assert_string_equal(a.verification_uri, ISS "/device");
	assert_string_equal(a.verification_uri_complete, ISS "/device?user_code=WDJB-MJHT");
	assert_int_equal(a.expires_in, 1800);
	assert_int_equal(a.interval, 7);
	oidc_device_auth_clear(&a);
	assert_null(a.device_code);
}

static void
test_device_auth_defaults(void **state)
{
	/* No interval (default 5), no verification_uri_complete, expires_in as a string. */
	static const char body[] = "{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
				   ",\"expires_in\":\"600\",\"verification_uri_complete\":null}";
	struct oidc_device_auth a;
	char err[256] = "";

	(void)state;
	assert_int_equal(oidc_parse_device_auth(body, strlen(body), &a, err, sizeof(err)), 0);
	assert_int_equal(a.interval, OIDC_DEFAULT_INTERVAL);
	assert_int_equal(a.expires_in, 600);
	assert_null(a.verification_uri_complete);
	oidc_device_auth_clear(&a);
}

static void
expect_devauth_error(const char *json, const char *needle)
{
	struct oidc_device_auth a;
	char err[256] = "";

	assert_int_equal(oidc_parse_device_auth(json, strlen(json), &a, err, sizeof(err)), -1);
	assert_null(a.device_code);
	assert_null(a.user_code);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void
test_device_auth_bad(void **state)
{
	(void)state;
	expect_devauth_error("{\"user_code\":\"ABCD\"," DEVAUTH_URI ",\"expires_in\":600}",
			     "device_code");
	expect_devauth_error("{\"device_code\":\"dc\"," DEVAUTH_URI ",\"expires_in\":600}",
			     "user_code");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\",\"expires_in\":600}",
			     "verification_uri");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI "}",
			     "expires_in");
	/* The user code ends up on the user's terminal: no escape sequences, no spaces. */
	expect_devauth_error(
		"{\"device_code\":\"dc\",\"user_code\":\"AB\\u001b]0;pwned\\u0007\"," DEVAUTH_URI
		",\"expires_in\":600}",
		"printable");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"AB\\u00e9CD\"," DEVAUTH_URI
			     ",\"expires_in\":600}",
			     "printable");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"AB CD\"," DEVAUTH_URI
			     ",\"expires_in\":600}",
			     "printable");
	expect_devauth_error(
		"{\"device_code\":\"dc\",\"user_code\":"
		"\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"," DEVAUTH_URI
		",\"expires_in\":600}",
		"too long");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\","
			     "\"verification_uri\":\"http://phish.example/device\","
			     "\"expires_in\":600}",
			     "https");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"verification_uri_complete\":\"javascript:alert(1)\","
			     "\"expires_in\":600}",
			     "verification_uri_complete");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":0}",
			     "expires_in");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":-5}",
			     "expires_in");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":1e3}",
			     "expires_in");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":99999999999999}",
			     "expires_in");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":600,\"interval\":0}",
			     "interval");
	expect_devauth_error("{\"device_code\":\"dc\",\"user_code\":\"ABCD\"," DEVAUTH_URI
			     ",\"expires_in\":600,\"interval\":\"5s\"}",
			     "interval");
	expect_devauth_error("{\"device_code\":\"dc\",\"device_code\":\"dc2\","
			     "\"user_code\":\"ABCD\"," DEVAUTH_URI ",\"expires_in\":600}",
			     "JSON");
	expect_devauth_error("{\"error\":\"invalid_client\"}", "device_code");
	expect_devauth_error("null", "JSON");
	expect_devauth_error("[\"device_code\"]", "object");
}

static void
expect_token_error(const char *json, enum oidc_token_error want, const char *want_str,
		   const char *want_desc)
{
	enum oidc_token_error code = (enum oidc_token_error) - 1;
	char cstr[64], desc[64];

	assert_int_equal(oidc_parse_token_error(json, strlen(json), &code, cstr, sizeof(cstr), desc,
						sizeof(desc)),
			 0);
	assert_int_equal(code, want);
	assert_string_equal(cstr, want_str);
	assert_string_equal(desc, want_desc);
}

static void
test_token_errors(void **state)
{
	enum oidc_token_error code;
	char cstr[16], desc[16];

	(void)state;
	expect_token_error("{\"error\":\"authorization_pending\","
			   "\"error_description\":\"authorization request is still pending\"}",
			   OIDC_TOKEN_ERR_PENDING, "authorization_pending",
			   "authorization request is still pending");
	/* Truncated to the caller's buffer (64 bytes). */
	expect_token_error(
		"{\"error\":\"x\",\"error_description\":\""
		"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
		OIDC_TOKEN_ERR_OTHER, "x",
		"012345678901234567890123456789012345678901234567890123456789012");
	expect_token_error("{\"error\":\"slow_down\"}", OIDC_TOKEN_ERR_SLOW_DOWN, "slow_down", "");
	expect_token_error("{\"error\":\"access_denied\",\"error_description\":\"End-User "
			   "aborted\"}",
			   OIDC_TOKEN_ERR_DENIED, "access_denied", "End-User aborted");
	expect_token_error("{\"error\":\"expired_token\"}", OIDC_TOKEN_ERR_EXPIRED, "expired_token",
			   "");
	expect_token_error("{\"error\":\"invalid_grant\",\"error_description\":42}",
			   OIDC_TOKEN_ERR_OTHER, "invalid_grant", "");
	/* Control characters from the IdP never reach a log line or a terminal as such. */
	expect_token_error("{\"error\":\"bad\\u001b[31m\",\"error_description\":\"a\\nb\"}",
			   OIDC_TOKEN_ERR_OTHER, "bad?[31m", "a?b");
	expect_token_error("{\"error\":\"Authorization_Pending\"}", OIDC_TOKEN_ERR_OTHER,
			   "Authorization_Pending", "");

	assert_int_equal(
		oidc_parse_token_error("{}", 2, &code, cstr, sizeof(cstr), desc, sizeof(desc)), -1);
	assert_int_equal(oidc_parse_token_error("{\"error\":\"\"}", 12, &code, NULL, 0, NULL, 0),
			 -1);
	assert_int_equal(oidc_parse_token_error("{\"error\":7}", 11, &code, NULL, 0, NULL, 0), -1);
	assert_int_equal(oidc_parse_token_error("Service Unavailable", 19, &code, cstr,
						sizeof(cstr), desc, sizeof(desc)),
			 -1);
	assert_string_equal(cstr, "");
	assert_int_equal(oidc_parse_token_error(NULL, 0, &code, NULL, 0, NULL, 0), -1);
}

static void
test_token_response(void **state)
{
	static const char ok[] = "{\"access_token\":\"at\",\"token_type\":\"Bearer\","
				 "\"expires_in\":3600,\"id_token\":\"aGVhZA.Y2xhaW1z.c2ln\"}";
	char err[256] = "", *tok = NULL;

	(void)state;
	assert_int_equal(oidc_parse_token_response(ok, strlen(ok), &tok, err, sizeof(err)), 0);
	assert_string_equal(tok, "aGVhZA.Y2xhaW1z.c2ln");
	free(tok);

	assert_int_equal(
		oidc_parse_token_response("{\"access_token\":\"at\"}", 21, &tok, err, sizeof(err)),
		-1);
	assert_null(tok);
	assert_non_null(strstr(err, "id_token"));
	assert_int_equal(
		oidc_parse_token_response("{\"id_token\":[\"a\"]}", 17, &tok, err, sizeof(err)),
		-1);
	assert_int_equal(
		oidc_parse_token_response("{\"id_token\":\"a b\"}", 17, &tok, err, sizeof(err)),
		-1);
	assert_null(tok);
}

static void
test_token_response_oversized(void **state)
{
	size_t n = 70 * 1024, i;
	char *body = malloc(n + 32), *tok = NULL, err[128];

	(void)state;
	assert_non_null(body);
	i = (size_t)sprintf(body, "{\"id_token\":\"");
	memset(body + i, 'A', n);
	i += n;
	i += (size_t)sprintf(body + i, "\"}");
	assert_int_equal(oidc_parse_token_response(body, i, &tok, err, sizeof(err)), -1);
	assert_null(tok);
	assert_non_null(strstr(err, "too long"));
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_allowed),
		cmocka_unit_test(test_discovery_ok),
		cmocka_unit_test(test_discovery_bad),
		cmocka_unit_test(test_discovery_nul_in_body),
		cmocka_unit_test(test_device_auth_ok),
		cmocka_unit_test(test_device_auth_defaults),
		cmocka_unit_test(test_device_auth_bad),
		cmocka_unit_test(test_token_errors),
		cmocka_unit_test(test_token_response),
		cmocka_unit_test(test_token_response_oversized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
