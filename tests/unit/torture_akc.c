/* saw-authorized-keys' pure functions (guestd/akc.c) and the socket client's checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guestd/akc.h"
#include "guestd/gsock-client.h"

/* Real keys (ssh-keygen) and their `ssh-keygen -l` fingerprints. */
#define ED_KEY "AAAAC3NzaC1lZDI1NTE5AAAAIDXc2uGB1TKbkIhM3hy2a9pYHwocqd3L3ZPJaiO4H5x+"
#define ED_FP "SHA256:CoUS23cvoLCEs+ky88XS+RKxl91zgP1EVJpr9+6ues4"
#define EC_KEY                                                                                     \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEPwyMd65qtBja7HdVt7Gk4a9PUebk+pH6mV" \
	"F4IuxDYPx6C5d1bIPMP6q3bHKDNc+orfgx68y0w3gWH3U5ZMFy8="
#define EC_FP "SHA256:HCPkwwzatRVsbeoaIKPtP/ebHJeRhaGbQB65xnoLfPc"
#define RSA_KEY                                                                                    \
	"AAAAB3NzaC1yc2EAAAADAQABAAAAgQDHhTkopzN5oPYQ7VS/E2oBP2+JitVSNXEcy7LkTLE6tWQ6nI+QZrvqEBht" \
	"EnpLlDaKAHVAgAZ1LUBQmHGgEjW1Lm7+ExM3rPOphsNkTINIyHNJz254Qz+s4uKPeDb1L441ROovg7AFOD7RS7nF" \
	"VMuN1Zt3p1yT50TyF/ykhhD3dw=="
#define RSA_FP "SHA256:hLWl7VEunY02OUtSV3n2RPFfrr9YOwo5xru8yeyj3OU"

#define NOW 1700000000

static void
test_types(void **state)
{
	assert_int_equal(akc_check_type("ssh-ed25519"), 0);
	assert_int_equal(akc_check_type("sk-ssh-ed25519@openssh.com"), 0);
	assert_int_equal(akc_check_type("ecdsa-sha2-nistp256"), 0);
	assert_int_equal(akc_check_type("ecdsa-sha2-nistp384"), 0);
	assert_int_equal(akc_check_type("ecdsa-sha2-nistp521"), 0);
	assert_int_equal(akc_check_type("sk-ecdsa-sha2-nistp256@openssh.com"), 0);
	assert_int_equal(akc_check_type("ssh-rsa"), 0);

	assert_int_equal(akc_check_type(NULL), -1);
	assert_int_equal(akc_check_type(""), -1);
	assert_int_equal(akc_check_type("ssh-dss"), -1);
	assert_int_equal(akc_check_type("ssh-ed25519-cert-v01@openssh.com"), -1);
	assert_int_equal(akc_check_type("ssh-rsa-cert-v01@openssh.com"), -1);
	assert_int_equal(akc_check_type("rsa-sha2-256"), -1); /* a signature name, not a %t */
	assert_int_equal(akc_check_type("SSH-ED25519"), -1);
	assert_int_equal(akc_check_type("ssh-ed25519 "), -1);
	assert_int_equal(akc_check_type("ssh-ed25519,restrict"), -1);
}

static void
test_fingerprints(void **state)
{
	assert_int_equal(akc_check_fp(ED_FP), 0);
	assert_int_equal(akc_check_fp(RSA_FP), 0);

	assert_int_equal(akc_check_fp(NULL), -1);
	assert_int_equal(akc_check_fp(""), -1);
	assert_int_equal(akc_check_fp("SHA256:"), -1);
	/* One character short, one too many, padded. */
	assert_int_equal(akc_check_fp("SHA256:CoUS23cvoLCEs+ky88XS+RKxl91zgP1EVJpr9+6ues"), -1);
	assert_int_equal(akc_check_fp(ED_FP "A"), -1);
	assert_int_equal(akc_check_fp("SHA256:CoUS23cvoLCEs+ky88XS+RKxl91zgP1EVJpr9+6ues="), -1);
	assert_int_equal(akc_check_fp("sha256:CoUS23cvoLCEs+ky88XS+RKxl91zgP1EVJpr9+6ues4"), -1);
	assert_int_equal(akc_check_fp("MD5:0a:1b:2c:3d:4e:5f:6a:7b:8c:9d:0e:1f:2a:3b:4c:5d"), -1);
	assert_int_equal(akc_check_fp("SHA256:CoUS23cvoLCEs+ky88XS RKxl91zgP1EVJpr9+6ues4"), -1);
	assert_int_equal(akc_check_fp("SHA256:CoUS23cvoLCEs+ky88XS\"RKxl91zgP1EVJpr9+6ues4"), -1);
	assert_int_equal(akc_check_fp("SHA256:CoUS23cvoLCEs+ky88XS-RKxl91zgP1EVJpr9+6ues4"), -1);
}

static void
test_keys(void **state)
{
	char buf[AKC_MAX_KEY_B64 + 8];

	assert_int_equal(akc_check_key("ssh-ed25519", ED_KEY, ED_FP), 0);
	assert_int_equal(akc_check_key("ecdsa-sha2-nistp256", EC_KEY, EC_FP), 0);
	assert_int_equal(akc_check_key("ssh-rsa", RSA_KEY, RSA_FP), 0);

	/* The blob's own type name must be %t. */
	assert_int_equal(akc_check_key("ssh-rsa", ED_KEY, ED_FP), -1);
	assert_int_equal(akc_check_key("ecdsa-sha2-nistp384", EC_KEY, EC_FP), -1);
	/* The fingerprint must be the key's. */
	assert_int_equal(akc_check_key("ssh-ed25519", ED_KEY, EC_FP), -1);
	assert_int_equal(akc_check_key("ssh-ed25519", ED_KEY, "SHA256:junk"), -1);
	/* Strict base64: charset, length, padding. */
	assert_int_equal(akc_check_key("ssh-ed25519", "", ED_FP), -1);
	assert_int_equal(akc_check_key("ssh-ed25519", ED_KEY "=", ED_FP), -1);
	assert_int_equal(akc_check_key("ssh-ed25519", ED_KEY "AAAA", ED_FP), -1);
	assert_int_equal(akc_check_key("ssh-ed25519", "AAAA" ED_KEY, ED_FP), -1);
	assert_int_equal(akc_check_key("ssh-ed25519", " " ED_KEY, ED_FP), -1);
	assert_int_equal(
		akc_check_key(
			"ssh-ed25519",
			"AAAAC3NzaC1lZDI1NTE5AAAAIDXc2uGB1TKbkIhM3hy2a9pYHwocqd3L3ZPJaiO4H5x-",
			ED_FP),
		-1);
	assert_int_equal(
		akc_check_key(
			"ssh-ed25519",
			"AAAAC3NzaC1lZDI1NTE5AAAAIDXc2uGB1TKbkIhM3hy2a9pYHwocqd3L3ZPJaiO4H5x\n",
			ED_FP),
		-1);
	/* '=' in the middle, a third '=', non-zero padding bits (the same bytes spelled twice). */
	assert_int_equal(akc_check_key("ssh-rsa", "AA==" RSA_KEY, RSA_FP), -1);
	strcpy(buf, EC_KEY);
	buf[strlen(buf) - 2] = '=';
	assert_int_equal(akc_check_key("ecdsa-sha2-nistp256", buf, EC_FP), -1);
	strcpy(buf, EC_KEY);
	buf[strlen(buf) - 2] = '9'; /* "y8=" → "y9=": low bits set */
	assert_int_equal(akc_check_key("ecdsa-sha2-nistp256", buf, EC_FP), -1);
	/* Too long, even if well-formed. */
	memset(buf, 'A', sizeof(buf) - 1);
	buf[AKC_MAX_KEY_B64 + 4] = '\0';
	assert_int_equal(akc_check_key("ssh-ed25519", buf, ED_FP), -1);
	/* A blob shorter than its type string. */
	assert_int_equal(akc_check_key("ssh-ed25519", "AAAAC3Nz", ED_FP), -1);
}

static void
test_args(void **state)
{
	char err[256], user[64];
	struct akc_args a = { "alice", ED_FP, ED_KEY, "ssh-ed25519" };

	assert_int_equal(akc_check_args(&a, err, sizeof(err)), 0);
	a.user = "a.b-c_D9";
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), 0);
	memset(user, 'u', 32);
	user[32] = '\0';
	a.user = user;
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), 0);
	user[32] = 'u';
	user[33] = '\0';
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user name"));

	const char *bad_users[] = { "",	      "-alice",	      "ali ce", "alice\n", "al/ice",
				    "al:ice", "\xc3\xa5lice", "al$",	"al\"ice", "al*" };
	for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
		a.user = bad_users[i];
		assert_int_equal(akc_check_args(&a, err, sizeof(err)), -1);
	}
	a.user = "alice";
	a.fp = "MD5:aa";
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "fingerprint"));
	a.fp = ED_FP;
	a.type = "ssh-dss";
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key type"));
	a.type = "ssh-ed25519";
	a.key = RSA_KEY;
	assert_int_equal(akc_check_args(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid key"));
}

static void
test_expiry(void **state)
{
	char buf[AKC_EXPIRY_LEN];

	assert_int_equal(akc_format_expiry(1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "19700101000001Z");
	assert_int_equal(akc_format_expiry(NOW, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "20231114221320Z");
	assert_int_equal(akc_format_expiry(951782400, buf, sizeof(buf)), 0); /* leap day */
	assert_string_equal(buf, "20000229000000Z");
	assert_int_equal(akc_format_expiry(INT64_C(253402300799), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "99991231235959Z");

	assert_int_equal(akc_format_expiry(0, buf, sizeof(buf)), -1);
	assert_int_equal(akc_format_expiry(-1, buf, sizeof(buf)), -1);
	assert_int_equal(akc_format_expiry(INT64_C(253402300800), buf, sizeof(buf)), -1);
	assert_int_equal(akc_format_expiry(INT64_MAX, buf, sizeof(buf)), -1);
	assert_int_equal(akc_format_expiry(NOW, buf, sizeof(buf) - 1), -1);
}

/* akc_line on the answer text ans; returns its result and leaves the line in line. */
static int
line_for(const char *ans_text, int64_t now, char *line, size_t linelen, char *err, size_t errlen)
{
	struct akc_args a = { "alice", ED_FP, ED_KEY, "ssh-ed25519" };
	json_t *ans = json_loads(ans_text, 0, NULL);
	int r;

	assert_non_null(ans);
	line[0] = '\0';
	r = akc_line(ans, &a, now, line, linelen, err, errlen);
	json_decref(ans);
	return r;
}

static void
test_line(void **state)
{
	char line[AKC_MAX_LINE], err[256];

	assert_int_equal(line_for("{\"ok\":true,\"session\":\"s1\",\"expires\":1700003600}", NOW,
				  line, sizeof(line), err, sizeof(err)),
			 1);
	assert_string_equal(line, "expiry-time=\"20231114231320Z\",restrict,pty ssh-ed25519 " ED_KEY
				  "\n");
	/* Unknown members are ignored. */
	assert_int_equal(line_for("{\"ok\":true,\"session\":\"s1\",\"expires\":1700003600,\"x\":1}",
				  NOW, line, sizeof(line), err, sizeof(err)),
			 1);

	/* Definite no: nothing printed. */
	assert_int_equal(line_for("{\"ok\":false,\"error\":\"no live brokered session\"}", NOW,
				  line, sizeof(line), err, sizeof(err)),
			 0);
	assert_string_equal(line, "");
	assert_non_null(strstr(err, "no live brokered session"));
	assert_int_equal(line_for("{\"ok\":\"true\",\"session\":\"s1\",\"expires\":1700003600}",
				  NOW, line, sizeof(line), err, sizeof(err)),
			 0);
	assert_int_equal(line_for("{\"ok\":1,\"session\":\"s1\",\"expires\":1700003600}", NOW, line,
				  sizeof(line), err, sizeof(err)),
			 0);
	assert_int_equal(line_for("{\"session\":\"s1\",\"expires\":1700003600}", NOW, line,
				  sizeof(line), err, sizeof(err)),
			 0);
	/* ok, but already expired (or expiring this second). */
	assert_int_equal(line_for("{\"ok\":true,\"session\":\"s1\",\"expires\":1700000000}", NOW,
				  line, sizeof(line), err, sizeof(err)),
			 0);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(line_for("{\"ok\":true,\"session\":\"s1\",\"expires\":1600000000}", NOW,
				  line, sizeof(line), err, sizeof(err)),
			 0);

	/* Malformed ok answers. */
	const char *bad[] = {
		"{\"ok\":true}",
		"{\"ok\":true,\"session\":\"s1\"}",
		"{\"ok\":true,\"expires\":1700003600}",
		"{\"ok\":true,\"session\":\"\",\"expires\":1700003600}",
		"{\"ok\":true,\"session\":7,\"expires\":1700003600}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":\"1700003600\"}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":1700003600.5}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":0}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":-5}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":253402300800}",
		"{\"ok\":true,\"session\":\"s1\",\"expires\":null}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(line_for(bad[i], NOW, line, sizeof(line), err, sizeof(err)), -1);
		assert_string_equal(line, "");
	}
	/* No room for the line. */
	assert_int_equal(line_for("{\"ok\":true,\"session\":\"s1\",\"expires\":1700003600}", NOW,
				  line, 40, err, sizeof(err)),
			 -1);
}

static void
test_answer_ok(void **state)
{
	const char *why = NULL;
	json_t *j;

	j = json_pack("{s:b}", "ok", 1);
	assert_int_equal(gsock_answer_ok(j, &why), 1);
	json_decref(j);
	j = json_pack("{s:b, s:s}", "ok", 0, "error", "nope");
	assert_int_equal(gsock_answer_ok(j, &why), 0);
	assert_string_equal(why, "nope");
	json_decref(j);
	j = json_pack("{s:b, s:i}", "ok", 0, "error", 3);
	assert_int_equal(gsock_answer_ok(j, &why), 0);
	assert_string_equal(why, "no reason given");
	json_decref(j);
	j = json_pack("{s:s}", "ok", "yes");
	assert_int_equal(gsock_answer_ok(j, NULL), 0);
	json_decref(j);
	assert_int_equal(gsock_answer_ok(NULL, &why), 0);
}

static void
test_paths(void **state)
{
	char p[200];

	assert_int_equal(gsock_check_path(GSOCK_DEFAULT_PATH), 0);
	assert_int_equal(gsock_check_path("run/saw/guestd.sock"), -1);
	assert_int_equal(gsock_check_path(""), -1);
	assert_int_equal(gsock_check_path(NULL), -1);
	memset(p, 'a', sizeof(p) - 1);
	p[0] = '/';
	p[107] = '\0'; /* 107 bytes + NUL fit sun_path */
	assert_int_equal(gsock_check_path(p), 0);
	p[107] = 'a';
	p[108] = '\0';
	assert_int_equal(gsock_check_path(p), -1);
}

/* gsock_parse_answer on a C string; returns 1 for an object, 0 for NULL (err filled). */
static int
parses(const char *bytes, size_t len, char *err, size_t errlen)
{
	json_t *j;

	err[0] = '\0';
	j = gsock_parse_answer(bytes, len, err, errlen);
	if (j == NULL) {
		assert_true(err[0] != '\0');
		return 0;
	}
	json_decref(j);
	return 1;
}

#define PARSES(s) parses((s), sizeof(s) - 1, err, sizeof(err))

static void
test_parse_answer(void **state)
{
	char err[256], *big;

	assert_int_equal(PARSES("{\"ok\":true}\n"), 1);
	assert_int_equal(PARSES("{}\n"), 1);
	assert_int_equal(PARSES(" {\"ok\" : false , \"error\":\"x\"} \n"), 1);

	assert_int_equal(PARSES(""), 0);
	assert_int_equal(PARSES("{\"ok\":true}"), 0);
	assert_non_null(strstr(err, "not terminated"));
	assert_int_equal(PARSES("{\"ok\":true}\n{}\n"), 0);
	assert_non_null(strstr(err, "unexpected bytes"));
	assert_int_equal(PARSES("{\"ok\":true}\n\n"), 0);
	assert_int_equal(PARSES("\n"), 0);
	assert_int_equal(PARSES("[true]\n"), 0);
	assert_non_null(strstr(err, "not a JSON object"));
	assert_int_equal(PARSES("\"ok\"\n"), 0);
	assert_int_equal(PARSES("{\"ok\":true,\"ok\":false}\n"), 0);
	assert_int_equal(PARSES("{\"ok\":tru}\n"), 0);
	assert_int_equal(PARSES("{\"e\":\"a\\u0000b\"}\n"), 0);
	assert_int_equal(PARSES("{\"ok\":true}\0\n"), 0);
	/* GSOCK_MAX_LINE bytes with the newline is the most there can be. */
	big = malloc(GSOCK_MAX_LINE + 2);
	assert_non_null(big);
	memset(big, ' ', GSOCK_MAX_LINE + 1);
	memcpy(big, "{}", 2);
	big[GSOCK_MAX_LINE - 1] = '\n';
	assert_int_equal(parses(big, GSOCK_MAX_LINE, err, sizeof(err)), 1);
	big[GSOCK_MAX_LINE - 1] = ' ';
	big[GSOCK_MAX_LINE] = '\n';
	assert_int_equal(parses(big, GSOCK_MAX_LINE + 1, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "longer than"));
	free(big);
}

static void
test_request_failures(void **state)
{
	char err[256];
	json_t *req = json_pack("{s:s}", "op", "status");
	json_t *big;
	char *s;

	/* Nobody listening: NULL and a reason, quickly. */
	assert_null(gsock_request("/nonexistent/saw/guestd.sock", req, GSOCK_TIMEOUT_MS, err,
				  sizeof(err)));
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(gsock_request("relative.sock", req, GSOCK_TIMEOUT_MS, err, sizeof(err)));
	/* A request over the line limit is never sent. */
	s = calloc(1, GSOCK_MAX_LINE + 1);
	assert_non_null(s);
	memset(s, 'x', GSOCK_MAX_LINE);
	big = json_pack("{s:s}", "op", s);
	assert_null(gsock_request("/nonexistent/saw/guestd.sock", big, GSOCK_TIMEOUT_MS, err,
				  sizeof(err)));
	assert_non_null(strstr(err, "request longer"));
	free(s);
	json_decref(big);
	json_decref(req);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),	     cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_keys),	     cmocka_unit_test(test_args),
		cmocka_unit_test(test_expiry),	     cmocka_unit_test(test_line),
		cmocka_unit_test(test_answer_ok),    cmocka_unit_test(test_paths),
		cmocka_unit_test(test_parse_answer), cmocka_unit_test(test_request_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
