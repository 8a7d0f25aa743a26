/*
 * The policy document (guestd/policy.c): strict parsing with exact error paths, and the
 * compiled decisions (deny wins, wildcard semantics, selectors, corporate routing, ports,
 * credential routes, limits, private address allowances, write decisions).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guestd/policy.h"

static struct policy *
load(const char *doc)
{
	char err[512];
	struct policy *p = policy_load_buffer(doc, strlen(doc), err, sizeof(err));

	if (p == NULL)
		fail_msg("policy refused: %s\n%s", err, doc);
	return p;
}

static void
refused(const char *doc, const char *want)
{
	char err[512] = "";
	struct policy *p = policy_load_buffer(doc, strlen(doc), err, sizeof(err));

	if (p != NULL) {
		policy_free(p);
		fail_msg("policy accepted, expected \"%s\":\n%s", want, doc);
	}
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\", expected it to start with \"%s\"", err, want);
}

static const char *const no_groups[] = { NULL };

static void
decide(const struct policy *p, const struct policy_subject *s, const char *host, int port,
       enum policy_verdict want, const char *rule)
{
	struct policy_decision d;

	policy_decide(p, s, host, port, &d);
	if (d.verdict != want || strcmp(d.rule, rule) != 0)
		fail_msg("%s:%d: got %s (%s), expected %s (%s)", host, port,
			 policy_verdict_name(d.verdict), d.rule, policy_verdict_name(want), rule);
}

#define HDR "{\"version\":3,\"profile\":\"corporate\","

/* ---- parsing -------------------------------------------------------------------------- */

static void
test_example_file(void **state)
{
	const char *src = getenv("SAW_TEST_SRCDIR");
	char path[1024], err[512];
	const struct policy_cred_route *r[8];
	const struct policy_limits *l;
	struct policy *p;

	snprintf(path, sizeof(path), "%s/conf/policy.example.json", src != NULL ? src : ".");
	p = policy_load_file(path, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s: %s", path, err);
	assert_int_equal(policy_version(p), 1);
	assert_string_equal(policy_profile(p), "corporate");
	assert_int_equal(policy_cred_routes(p, r, 8), 3);
	assert_string_equal(r[0]->header, "Authorization");
	assert_string_equal(r[0]->scheme, "Bearer");
	assert_string_equal(r[1]->header, "x-api-key");
	assert_null(r[1]->scheme);
	assert_string_equal(r[2]->upstream, "https://llm.corp.example/v1");
	l = policy_limits(p);
	assert_int_equal(l->nproc, 512);
	assert_int_equal(l->nofile, 4096);
	assert_true(l->memory == 8LL << 30);
	assert_true(l->cpu == 2.0);
	assert_string_equal(policy_fs_writable(p)[0], "/srv/data");
	assert_null(policy_fs_writable(p)[2]);
	assert_string_equal(policy_fs_protected(p)[0], ".git/hooks");
	assert_int_equal(policy_rule_count(p), 9);
	policy_free(p);

	p = policy_load_file("/nonexistent/policy.json", err, sizeof(err));
	assert_null(p);
	assert_string_equal(err, "cannot open: No such file or directory");
	p = policy_load_file("/", err, sizeof(err));
	assert_null(p);
	assert_string_equal(err, "not a regular file");
}

static void
test_minimal(void **state)
{
	struct policy *p = load("{\"version\":1,\"profile\":\"public\"}");

	assert_int_equal(policy_version(p), 1);
	assert_string_equal(policy_profile(p), "public");
	assert_null(policy_fs_writable(p)[0]);
	assert_null(policy_fs_protected(p)[0]);
	assert_int_equal(policy_limits(p)->nproc, 0);
	assert_int_equal(policy_cred_routes(p, NULL, 0), 0);
	decide(p, NULL, "example.com", 443, POLICY_DENY, "default-deny");
	policy_free(p);
}

struct bad {
	const char *doc;
	const char *err;
};

static void
test_refusals(void **state)
{
	static const struct bad t[] = {
		/* JSON itself */
		{ "", "line 1 column 0: " },
		{ "{\"version\":1,\"version\":2,\"profile\":\"public\"}",
		  "line 1 column 22: duplicate object key" },
		{ "{\"version\":1,\"profile\":\"public\"} x",
		  "line 1 column 34: end of file expected" },
		{ "[]", "$: must be an object" },
		/* top level */
		{ "{\"profile\":\"public\"}", "$: missing required field \"version\"" },
		{ "{\"version\":1}", "$: missing required field \"profile\"" },
		{ "{\"version\":0,\"profile\":\"public\"}", "$.version: must be an integer" },
		{ "{\"version\":1.5,\"profile\":\"public\"}", "$.version: must be an integer" },
		{ "{\"version\":\"1\",\"profile\":\"public\"}", "$.version: must be an integer" },
		{ "{\"version\":1,\"profile\":\"private\"}",
		  "$.profile: must be \"corporate\" or \"public\"" },
		{ "{\"version\":1,\"profile\":\"public\",\"egres\":[]}",
		  "$.egres: unknown field (expected version, profile" },
		{ HDR "\"comment\":5}", "$.comment: must be a string" },
		/* egress rules */
		{ HDR "\"egress\":{}}", "$.egress: must be an array" },
		{ HDR "\"egress\":[5]}", "$.egress[0]: must be an object" },
		{ HDR "\"egress\":[{\"action\":\"allow\"}]}",
		  "$.egress[0]: missing required field \"id\"" },
		{ HDR "\"egress\":[{\"id\":\"a b\",\"action\":\"allow\"}]}",
		  "$.egress[0].id: must be letters, digits" },
		{ HDR
		  "\"egress\":[{\"id\":\"default-deny\",\"action\":\"deny\",\"hosts\":[\"a.b\"]}]}",
		  "$.egress[0].id: \"default-deny\" is a built-in rule name" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"permit\",\"hosts\":[\"x.org\"]}]}",
		  "$.egress[0].action: must be \"allow\" or \"deny\"" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[]}]}",
		  "$.egress[0].hosts: must not be empty" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"port\":[1]}]}",
		  "$.egress[0].port: unknown field (expected id, action, hosts, ports, select, "
		  "comment)" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"ok.org\",\"Upper.org\"]}]}",
		  "$.egress[0].hosts[1]: \"Upper.org\" is not a host name" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"a.*.org\"]}]}",
		  "$.egress[0].hosts[0]: \"a.*.org\": a wildcard is allowed only as the whole first "
		  "label" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"*\"]}]}",
		  "$.egress[0].hosts[0]: \"*\": a wildcard" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"*x.org\"]}]}",
		  "$.egress[0].hosts[0]: \"*x.org\": a wildcard" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"*.10.0.0.1\"]}]}",
		  "$.egress[0].hosts[0]: \"*.10.0.0.1\" is not a host name" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org.\"]}]}",
		  "$.egress[0].hosts[0]: \"x.org.\" is not a host name" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"-x.org\"]}]}",
		  "$.egress[0].hosts[0]: \"-x.org\" is not" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x_y.org\"]}]}",
		  "$.egress[0].hosts[0]: \"x_y.org\" is not" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"1.2.3\"]}]}",
		  "$.egress[0].hosts[0]: \"1.2.3\" is not" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"0x7f.1\"]}]}",
		  "$.egress[0].hosts[0]: \"0x7f.1\" is not" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.123\"]}]}",
		  "$.egress[0].hosts[0]: \"x.123\" is not" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"a..org\"]}]}",
		  "$.egress[0].hosts[0]: \"a..org\" is not" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"fe80::1%eth0\"]}]}",
		  "$.egress[0].hosts[0]: \"fe80::1%eth0\" is not" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org\"]}]}",
		  "$.egress[0].hosts[0]: \"aaaa" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"]}]}",
		  "$.egress[0]: missing required field \"ports\" (an allow rule names its ports" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[0]}]}",
		  "$.egress[0].ports[0]: must be a port 1..65535" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[443,65536]}]}",
		  "$.egress[0].ports[1]: must be a port 1..65535" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[\"90-80\"]}]}",
		  "$.egress[0].ports[0]: must be a port" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[\"80\"]}]}",
		  "$.egress[0].ports[0]: must be a port" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[\"1-2x\"]}]}",
		  "$.egress[0].ports[0]: must be a port" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],\"ports\":[]}]}",
		  "$.egress[0].ports: must not be empty" },
		{ HDR "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"]},"
		      "{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"y.org\"]}]}",
		  "$.egress[1].id: \"a\" is used twice" },
		/* selectors */
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"select\":{}}]}",
		  "$.egress[0].select: must name at least one group, user or workspace" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"select\":{\"group\":[\"x\"]}}]}",
		  "$.egress[0].select.group: unknown field" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"select\":{\"users\":[\"a\",3]}}]}",
		  "$.egress[0].select.users[1]: must be a string" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"select\":{\"users\":\"a\"}}]}",
		  "$.egress[0].select.users: must be an array" },
		{ HDR
		  "\"egress\":[{\"id\":\"a\",\"action\":\"deny\",\"hosts\":[\"x.org\"],\"select\":{\"users\":[\"\"]}}]}",
		  "$.egress[0].select.users[0]: must be a string of 1 to 256 bytes" },
		/* corporate */
		{ "{\"version\":1,\"profile\":\"public\",\"corporate\":[{\"name\":\"g\",\"host\":\"g.corp\",\"port\":1}]}",
		  "$.corporate: a \"public\" profile has no corporate services" },
		{ HDR "\"corporate\":[{\"name\":\"g\",\"host\":\"*.corp\",\"port\":1}]}",
		  "$.corporate[0].host: \"*.corp\": a wildcard is allowed only" },
		{ HDR "\"corporate\":[{\"name\":\"g\",\"host\":\"g.corp\"}]}",
		  "$.corporate[0]: missing required field \"port\"" },
		{ HDR "\"corporate\":[{\"name\":\"g\",\"host\":\"g.corp\",\"port\":\"443\"}]}",
		  "$.corporate[0].port: must be a port 1..65535" },
		{ HDR "\"egress\":[{\"id\":\"git\",\"action\":\"deny\",\"hosts\":[\"x.org\"]}],"
		      "\"corporate\":[{\"name\":\"git\",\"host\":\"g.corp\",\"port\":1}]}",
		  "$.corporate[0].name: \"git\" is used twice" },
		/* credentials */
		{ HDR
		  "\"credentials\":[{\"name\":\"OpenAI\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].name: must be lowercase letters" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"azure\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].kind: must be \"openai\", \"anthropic\" or \"generic\"" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"http://api.openai.com\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"http://api.openai.com\": the upstream must be "
		  "https://" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"ftp://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"ftp://a.b\": the upstream must be an https:// URL" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://u@a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"https://u@a.b\" is not an upstream URL" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b/v1?x=1\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"https://a.b/v1?x=1\" is not an upstream URL" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b/../x\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"https://a.b/../x\" is not" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b:0\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].upstream: \"https://a.b:0\" is not" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"sk-live-123\"}]}",
		  "$.credentials[0].secret: must be a reference, \"file:/ABSOLUTE/PATH\" or "
		  "\"command:NAME\"" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:relative\"}]}",
		  "$.credentials[0].secret: must be a reference" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:/etc/../x\"}]}",
		  "$.credentials[0].secret: must be a reference" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"command:a b\"}]}",
		  "$.credentials[0].secret: must be a reference" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"generic\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0]: missing required field \"header\"" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"generic\",\"header\":\"X Key\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].header: must be an HTTP header name" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"generic\",\"header\":\"Host\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[0].header: \"Host\" is not a header a route may set" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\",\"token\":\"sk\"}]}",
		  "$.credentials[0].token: unknown field" },
		{ HDR
		  "\"credentials\":[{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"},"
		  "{\"name\":\"o\",\"kind\":\"openai\",\"upstream\":\"https://a.b\",\"secret\":\"file:/x\"}]}",
		  "$.credentials[1].name: route \"o\" is defined twice" },
		/* filesystem */
		{ HDR "\"filesystem\":{\"writable\":[\"srv\"]}}",
		  "$.filesystem.writable[0]: \"srv\" is not an absolute path" },
		{ HDR "\"filesystem\":{\"writable\":[\"/srv/../etc\"]}}",
		  "$.filesystem.writable[0]: \"/srv/../etc\" is not an absolute path" },
		{ HDR "\"filesystem\":{\"writable\":[\"/srv/\"]}}",
		  "$.filesystem.writable[0]: \"/srv/\" is not" },
		{ HDR "\"filesystem\":{\"writable\":[\"/etc/saw\"]}}",
		  "$.filesystem.writable[0]: \"/etc/saw\" would make /etc writable" },
		{ HDR "\"filesystem\":{\"writable\":[\"/\"]}}",
		  "$.filesystem.writable[0]: \"/\" would make /etc writable" },
		{ HDR "\"filesystem\":{\"writable\":[\"/var\"]}}",
		  "$.filesystem.writable[0]: \"/var\" would make /var/lib/saw writable" },
		{ HDR "\"filesystem\":{\"protected\":[\"../x\"]}}",
		  "$.filesystem.protected[0]: \"../x\" is not an absolute or a relative path" },
		{ HDR "\"filesystem\":{\"readonly\":[]}}",
		  "$.filesystem.readonly: unknown field (expected writable, protected)" },
		/* limits */
		{ HDR "\"limits\":{\"memory\":\"8X\"}}", "$.limits.memory: must be a size" },
		{ HDR "\"limits\":{\"memory\":\"8g\"}}", "$.limits.memory: must be a size" },
		{ HDR "\"limits\":{\"memory\":\"512K\"}}", "$.limits.memory: must be a size" },
		{ HDR "\"limits\":{\"memory\":\"99999999999999999999G\"}}",
		  "$.limits.memory: must be a size" },
		{ HDR "\"limits\":{\"memory\":-1}}", "$.limits.memory: must be a size" },
		{ HDR "\"limits\":{\"nproc\":0}}",
		  "$.limits.nproc: must be an integer 1..1048576" },
		{ HDR "\"limits\":{\"nofile\":\"4096\"}}", "$.limits.nofile: must be an integer" },
		{ HDR "\"limits\":{\"cpu\":0}}", "$.limits.cpu: must be a number of CPUs" },
		{ HDR "\"limits\":{\"cpus\":1}}", "$.limits.cpus: unknown field" },
		/* addresses */
		{ HDR "\"addresses\":{\"allow_private\":[\"10.0.0.0\"]}}",
		  "$.addresses.allow_private[0]: \"10.0.0.0\": not an address range" },
		{ HDR "\"addresses\":{\"allow_private\":[\"10.1.0.0/8\"]}}",
		  "$.addresses.allow_private[0]: \"10.1.0.0/8\": host bits set" },
		{ HDR "\"addresses\":{\"allow_private\":[\"0.0.0.0/0\"]}}",
		  "$.addresses.allow_private[0]: \"0.0.0.0/0\": too broad" },
		{ HDR "\"addresses\":{\"allow_private\":[\"10.0.0.0/33\"]}}",
		  "$.addresses.allow_private[0]: \"10.0.0.0/33\": prefix length out of range" },
		{ HDR "\"addresses\":{\"allow_private\":[{\"cidr\":\"10.0.0.0/8\",\"select\":5}]}}",
		  "$.addresses.allow_private[0].select: must be an object" },
		{ HDR "\"addresses\":{\"allow_private\":[{\"cidr\":\"10.0.0.0/8x\"}]}}",
		  "$.addresses.allow_private[0].cidr: \"10.0.0.0/8x\": not an address range" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		refused(t[i].doc, t[i].err);
}

static void
test_limits_sizes(void **state)
{
	struct policy *p;

	p = load(HDR "\"limits\":{\"memory\":\"512M\",\"cpu\":0.5}}");
	assert_true(policy_limits(p)->memory == 512LL << 20);
	assert_true(policy_limits(p)->cpu == 0.5);
	assert_int_equal(policy_limits(p)->nproc, 0);
	policy_free(p);
	p = load(HDR "\"limits\":{\"memory\":\"unlimited\"}}");
	assert_true(policy_limits(p)->memory == 0);
	policy_free(p);
	p = load(HDR "\"limits\":{\"memory\":1073741824}}");
	assert_true(policy_limits(p)->memory == 1LL << 30);
	policy_free(p);
	p = load(HDR "\"limits\":{\"memory\":\"2T\"}}");
	assert_true(policy_limits(p)->memory == 2LL << 40);
	policy_free(p);
	p = load(HDR "\"limits\":{\"memory\":\"1048576\"}}");
	assert_true(policy_limits(p)->memory == 1LL << 20);
	policy_free(p);
}

static void
test_oversized(void **state)
{
	char err[256];
	size_t n = POLICY_MAX_LEN + 1;
	char *buf = malloc(n);

	assert_non_null(buf);
	memset(buf, ' ', n);
	assert_null(policy_load_buffer(buf, n, err, sizeof(err)));
	assert_string_equal(err, "the document is larger than 4194304 bytes");
	free(buf);
}

/* ---- decisions ------------------------------------------------------------------------ */

static void
test_deny_wins(void **state)
{
	struct policy *p = load(
		HDR
		"\"egress\":["
		"{\"id\":\"allow-all-example\",\"action\":\"allow\",\"hosts\":[\"*.example.com\","
		"\"example.com\"],\"ports\":[\"1-65535\"]},"
		"{\"id\":\"no-evil\",\"action\":\"deny\",\"hosts\":[\"evil.example.com\"]},"
		"{\"id\":\"no-bad-subtree\",\"action\":\"deny\",\"hosts\":[\"*.bad.example.com\"],"
		"\"ports\":[443]}]}");

	decide(p, NULL, "www.example.com", 443, POLICY_ALLOW, "allow-all-example");
	decide(p, NULL, "example.com", 80, POLICY_ALLOW, "allow-all-example");
	/* a deny listed after the allow still wins */
	decide(p, NULL, "evil.example.com", 443, POLICY_DENY, "no-evil");
	decide(p, NULL, "evil.example.com", 8080, POLICY_DENY, "no-evil");
	/* the same deny reached by spelling tricks */
	decide(p, NULL, "EVIL.Example.COM", 443, POLICY_DENY, "no-evil");
	decide(p, NULL, "evil.example.com.", 443, POLICY_DENY, "no-evil");
	/* a wildcard deny on one port only */
	decide(p, NULL, "x.bad.example.com", 443, POLICY_DENY, "no-bad-subtree");
	decide(p, NULL, "x.bad.example.com", 80, POLICY_ALLOW, "allow-all-example");
	decide(p, NULL, "bad.example.com", 443, POLICY_ALLOW, "allow-all-example");
	policy_free(p);
}

static void
test_wildcards(void **state)
{
	struct policy *p = load(HDR
				"\"egress\":["
				"{\"id\":\"w\",\"action\":\"allow\",\"hosts\":[\"*.example.com\"],"
				"\"ports\":[443]},"
				"{\"id\":\"tld\",\"action\":\"allow\",\"hosts\":[\"*.dev\"],"
				"\"ports\":[443]}]}");

	decide(p, NULL, "a.example.com", 443, POLICY_ALLOW, "w");
	decide(p, NULL, "a.b.c.example.com", 443, POLICY_ALLOW, "w");
	/* "*.suffix" does not match the bare suffix, nor a name that merely ends alike */
	decide(p, NULL, "example.com", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "badexample.com", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "example.com.evil.org", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "a.example.co", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "a.example.com", 80, POLICY_DENY, "default-deny");
	decide(p, NULL, "x.dev", 443, POLICY_ALLOW, "tld");
	decide(p, NULL, "dev", 443, POLICY_DENY, "default-deny");
	/* malformed requests */
	decide(p, NULL, ".example.com", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "a..example.com", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "*.example.com", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "a.example.com/x", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, NULL, 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "a.example.com", 0, POLICY_DENY, "invalid-port");
	decide(p, NULL, "a.example.com", 65536, POLICY_DENY, "invalid-port");
	policy_free(p);
}

static void
test_ip_literals(void **state)
{
	struct policy *p = load(
		HDR "\"egress\":["
		    "{\"id\":\"v4\",\"action\":\"allow\",\"hosts\":[\"93.184.216.34\"],"
		    "\"ports\":[443]},"
		    "{\"id\":\"v6\",\"action\":\"allow\",\"hosts\":[\"2606:4700:0:0::1111\"],"
		    "\"ports\":[443]},"
		    "{\"id\":\"nometa\",\"action\":\"deny\",\"hosts\":[\"::ffff:169.254.169.254\"]}"
		    "]}");

	decide(p, NULL, "93.184.216.34", 443, POLICY_ALLOW, "v4");
	decide(p, NULL, "::ffff:93.184.216.34", 443, POLICY_ALLOW, "v4");
	decide(p, NULL, "[::ffff:5db8:d822]", 443, POLICY_ALLOW, "v4");
	decide(p, NULL, "2606:4700::1111", 443, POLICY_ALLOW, "v6");
	decide(p, NULL, "[2606:4700:0000::1111]", 443, POLICY_ALLOW, "v6");
	decide(p, NULL, "169.254.169.254", 80, POLICY_DENY, "nometa");
	/* numeric spellings a resolver would accept are not names */
	decide(p, NULL, "1572395042", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "93.184.216.034", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "0x5d.184.216.34", 443, POLICY_DENY, "invalid-host");
	decide(p, NULL, "fe80::1%eth0", 443, POLICY_DENY, "invalid-host");
	policy_free(p);
}

static void
test_ports(void **state)
{
	struct policy *p = load(HDR "\"egress\":["
				    "{\"id\":\"r\",\"action\":\"allow\",\"hosts\":[\"x.org\"],"
				    "\"ports\":[8443,\"8000-8100\",443,\"8090-8200\",22]}]}");

	decide(p, NULL, "x.org", 22, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 443, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 8000, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 8150, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 8200, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 8443, POLICY_ALLOW, "r");
	decide(p, NULL, "x.org", 21, POLICY_DENY, "default-deny");
	decide(p, NULL, "x.org", 444, POLICY_DENY, "default-deny");
	decide(p, NULL, "x.org", 7999, POLICY_DENY, "default-deny");
	decide(p, NULL, "x.org", 8201, POLICY_DENY, "default-deny");
	decide(p, NULL, "x.org", 65535, POLICY_DENY, "default-deny");
	policy_free(p);
}

static void
test_selectors(void **state)
{
	static const char *const dev[] = { "staff", "dev" };
	static const char *const contractors[] = { "contractors", "dev" };
	struct policy_subject alice = { "alice", "alice-ws", dev, 2 };
	struct policy_subject bob = { "bob", "bob-ws", no_groups, 0 };
	struct policy_subject carol = { "carol", "shared-ws", contractors, 2 };
	struct policy_subject anon = { NULL, NULL, NULL, 0 };
	struct policy *p = load(
		HDR
		"\"egress\":["
		"{\"id\":\"dev-npm\",\"action\":\"allow\",\"hosts\":[\"registry.npmjs.org\"],"
		"\"ports\":[443],\"select\":{\"groups\":[\"dev\"]}},"
		"{\"id\":\"no-contractors\",\"action\":\"deny\",\"hosts\":[\"registry.npmjs.org\"],"
		"\"select\":{\"groups\":[\"contractors\"]}},"
		"{\"id\":\"bob-only\",\"action\":\"allow\",\"hosts\":[\"bob.example\"],"
		"\"ports\":[443],\"select\":{\"users\":[\"bob\"]}},"
		"{\"id\":\"shared\",\"action\":\"allow\",\"hosts\":[\"*.shared.example\"],"
		"\"ports\":[443],\"select\":{\"workspaces\":[\"shared-ws\"],\"users\":[\"alice\"]}},"
		"{\"id\":\"everyone\",\"action\":\"allow\",\"hosts\":[\"pypi.org\"],\"ports\":[443]}"
		"]}");

	decide(p, &alice, "registry.npmjs.org", 443, POLICY_ALLOW, "dev-npm");
	decide(p, &bob, "registry.npmjs.org", 443, POLICY_DENY, "default-deny");
	decide(p, &carol, "registry.npmjs.org", 443, POLICY_DENY, "no-contractors");
	decide(p, &bob, "bob.example", 443, POLICY_ALLOW, "bob-only");
	decide(p, &alice, "bob.example", 443, POLICY_DENY, "default-deny");
	decide(p, &alice, "a.shared.example", 443, POLICY_ALLOW, "shared");
	decide(p, &carol, "a.shared.example", 443, POLICY_ALLOW, "shared");
	decide(p, &bob, "a.shared.example", 443, POLICY_DENY, "default-deny");
	decide(p, &anon, "a.shared.example", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "registry.npmjs.org", 443, POLICY_DENY, "default-deny");
	decide(p, NULL, "pypi.org", 443, POLICY_ALLOW, "everyone");
	decide(p, &bob, "pypi.org", 443, POLICY_ALLOW, "everyone");
	policy_free(p);
}

/* A subject in more policy-known groups than a decision can hold: fail closed. */
static void
test_selector_overflow(void **state)
{
	char doc[200000], *o = doc;
	const char *groups[600];
	char names[600][8];
	struct policy_subject s = { "u", "w", groups, 600 };
	struct policy *p;
	int i;

	o += sprintf(o, HDR "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":"
			    "[\"x.org\"],\"ports\":[443],\"select\":{\"groups\":[");
	for (i = 0; i < 600; i++) {
		snprintf(names[i], sizeof(names[i]), "g%d", i);
		groups[i] = names[i];
		o += sprintf(o, "%s\"g%d\"", i ? "," : "", i);
	}
	sprintf(o, "]}}]}");
	p = load(doc);
	decide(p, &s, "x.org", 443, POLICY_DENY, "subject-too-many-groups");
	s.ngroups = 100;
	decide(p, &s, "x.org", 443, POLICY_ALLOW, "a");
	/* no candidate rule with a selector: the subject is never resolved */
	s.ngroups = 600;
	decide(p, &s, "y.org", 443, POLICY_DENY, "default-deny");
	policy_free(p);
}

static void
test_corporate(void **state)
{
	static const char *const users[] = { "saw-users" };
	struct policy_subject in = { "alice", "ws", users, 1 };
	struct policy_subject out = { "bob", "ws", no_groups, 0 };
	struct policy *p = load(
		HDR "\"egress\":["
		    "{\"id\":\"corp-public\",\"action\":\"allow\",\"hosts\":[\"*.corp.example\"],"
		    "\"ports\":[443]},"
		    "{\"id\":\"no-hr\",\"action\":\"deny\",\"hosts\":[\"hr.corp.example\"]}],"
		    "\"corporate\":["
		    "{\"name\":\"git\",\"host\":\"git.corp.example\",\"port\":443},"
		    "{\"name\":\"hr\",\"host\":\"hr.corp.example\",\"port\":443},"
		    "{\"name\":\"wiki\",\"host\":\"wiki.corp.example\",\"port\":443,"
		    "\"select\":{\"groups\":[\"saw-users\"]}},"
		    "{\"name\":\"db\",\"host\":\"10.1.2.3\",\"port\":5432}]}");

	/* corporate routing beats a public allow of the same host */
	decide(p, &in, "git.corp.example", 443, POLICY_CORP, "git");
	decide(p, &in, "git.corp.example", 22, POLICY_DENY, "default-deny");
	decide(p, &in, "other.corp.example", 443, POLICY_ALLOW, "corp-public");
	/* and deny beats corporate routing */
	decide(p, &in, "hr.corp.example", 443, POLICY_DENY, "no-hr");
	decide(p, &in, "wiki.corp.example", 443, POLICY_CORP, "wiki");
	decide(p, &out, "wiki.corp.example", 443, POLICY_ALLOW, "corp-public");
	decide(p, &in, "10.1.2.3", 5432, POLICY_CORP, "db");
	assert_int_equal(policy_rule_count(p), 6);
	policy_free(p);
}

static void
test_cred_routes(void **state)
{
	static const char *const sawusers[] = { "saw-users" };
	struct policy_subject in = { "alice", "ws", sawusers, 1 };
	struct policy_subject out = { "bob", "ws", no_groups, 0 };
	const struct policy_cred_route *r;
	struct policy *p = load(
		HDR
		"\"credentials\":["
		"{\"name\":\"openai\",\"kind\":\"openai\",\"upstream\":\"https://api.openai.com\","
		"\"secret\":\"file:/etc/saw/secrets/openai\"},"
		"{\"name\":\"claude\",\"kind\":\"anthropic\",\"upstream\":\"https://api.anthropic.com:443/\","
		"\"secret\":\"command:vault\",\"select\":{\"groups\":[\"saw-users\"]}},"
		"{\"name\":\"local\",\"kind\":\"generic\",\"upstream\":\"http://127.0.0.1:8080/v1\","
		"\"header\":\"X-Api-Token\",\"secret\":\"file:/run/t\"},"
		"{\"name\":\"local6\",\"kind\":\"generic\",\"upstream\":\"http://[::1]:8080\","
		"\"header\":\"Authorization\",\"scheme\":\"Token\",\"secret\":\"file:/run/t\"}]}");

	r = policy_cred_route(p, &out, "openai");
	assert_non_null(r);
	assert_string_equal(r->kind, "openai");
	assert_string_equal(r->upstream, "https://api.openai.com");
	assert_string_equal(r->header, "Authorization");
	assert_string_equal(r->scheme, "Bearer");
	assert_string_equal(r->secret, "file:/etc/saw/secrets/openai");
	assert_non_null(policy_cred_route(p, NULL, "openai"));
	r = policy_cred_route(p, &in, "claude");
	assert_non_null(r);
	assert_string_equal(r->header, "x-api-key");
	assert_null(r->scheme);
	assert_string_equal(r->secret, "command:vault");
	assert_null(policy_cred_route(p, &out, "claude"));
	assert_null(policy_cred_route(p, NULL, "claude"));
	assert_null(policy_cred_route(p, &in, "OPENAI"));
	assert_null(policy_cred_route(p, &in, "nope"));
	r = policy_cred_route(p, &in, "local");
	assert_string_equal(r->header, "X-Api-Token");
	assert_null(r->scheme);
	r = policy_cred_route(p, &in, "local6");
	assert_string_equal(r->scheme, "Token");
	assert_int_equal(policy_cred_routes(p, NULL, 0), 4);
	policy_free(p);
}

static void
test_addresses(void **state)
{
	struct policy_subject alice = { "alice", "alice-ws", no_groups, 0 };
	struct policy_subject bob = { "bob", "bob-ws", no_groups, 0 };
	struct policy *p =
		load(HDR "\"addresses\":{\"allow_private\":[\"10.20.0.0/16\",\"127.0.0.1/32\","
			 "{\"cidr\":\"fd12:3456::/32\",\"select\":{\"workspaces\":[\"alice-ws\"]}},"
			 "{\"cidr\":\"192.168.7.0/25\",\"select\":{\"users\":[\"bob\"]}}]}}");
	uint8_t a4[4], a6[16];

	inet_pton(AF_INET, "10.20.1.2", a4);
	assert_true(policy_address_allowed(p, &alice, a4, AF_INET));
	inet_pton(AF_INET, "10.21.1.2", a4);
	assert_false(policy_address_allowed(p, &alice, a4, AF_INET));
	inet_pton(AF_INET, "127.0.0.1", a4);
	assert_true(policy_address_allowed(p, NULL, a4, AF_INET));
	inet_pton(AF_INET, "127.0.0.2", a4);
	assert_false(policy_address_allowed(p, NULL, a4, AF_INET));
	/* the IPv6 forms of an allowed IPv4 address are the same address */
	inet_pton(AF_INET6, "::ffff:10.20.9.9", a6);
	assert_true(policy_address_allowed(p, &alice, a6, AF_INET6));
	inet_pton(AF_INET6, "::ffff:10.21.9.9", a6);
	assert_false(policy_address_allowed(p, &alice, a6, AF_INET6));
	inet_pton(AF_INET6, "fd12:3456::1", a6);
	assert_true(policy_address_allowed(p, &alice, a6, AF_INET6));
	assert_false(policy_address_allowed(p, &bob, a6, AF_INET6));
	inet_pton(AF_INET6, "fd12:3457::1", a6);
	assert_false(policy_address_allowed(p, &alice, a6, AF_INET6));
	inet_pton(AF_INET, "192.168.7.127", a4);
	assert_true(policy_address_allowed(p, &bob, a4, AF_INET));
	assert_false(policy_address_allowed(p, &alice, a4, AF_INET));
	inet_pton(AF_INET, "192.168.7.128", a4);
	assert_false(policy_address_allowed(p, &bob, a4, AF_INET));
	assert_false(policy_address_allowed(p, &bob, a4, AF_UNIX));
	assert_false(policy_address_allowed(NULL, &bob, a4, AF_INET));
	policy_free(p);
}

static void
test_write(void **state)
{
	struct policy_decision d;
	struct policy *p =
		load(HDR "\"filesystem\":{\"writable\":[\"/srv/data\"],"
			 "\"protected\":[\".git/hooks\",\".bashrc\",\"/srv/data/policy\"]}}");

#define W(path, home, v, r)                                                  \
	do {                                                                 \
		policy_decide_write(p, path, home, &d);                      \
		if (d.verdict != (v) || strcmp(d.rule, r) != 0)              \
			fail_msg("%s: got %s (%s), expected %s", path,       \
				 policy_verdict_name(d.verdict), d.rule, r); \
	} while (0)
	W("/home/alice/src/x.c", "/home/alice", POLICY_ALLOW, "home");
	W("/home/alice", "/home/alice/", POLICY_ALLOW, "home");
	W("/home/alice2/x", "/home/alice", POLICY_DENY, "read-only");
	W("/home/alice/../bob/x", "/home/alice", POLICY_DENY, "read-only");
	W("/home/alice/.bashrc", "/home/alice", POLICY_DENY, "protected:.bashrc");
	W("/home/alice/.bashrc.d/x", "/home/alice", POLICY_ALLOW, "home");
	W("/home/alice/p/.git/hooks/pre-commit", "/home/alice", POLICY_DENY,
	  "protected:.git/hooks");
	W("/home/alice/p/.git/hooks", "/home/alice", POLICY_DENY, "protected:.git/hooks");
	W("/home/alice/p/.git/./hooks/x", "/home/alice", POLICY_DENY, "protected:.git/hooks");
	W("/home/alice/p/.git/hooksy", "/home/alice", POLICY_ALLOW, "home");
	W("/home/alice/p/x.git/hooks", "/home/alice", POLICY_ALLOW, "home");
	W("/srv/data/x", NULL, POLICY_ALLOW, "writable:/srv/data");
	W("/srv/data", NULL, POLICY_ALLOW, "writable:/srv/data");
	W("/srv/data/policy/x", NULL, POLICY_DENY, "protected:/srv/data/policy");
	W("/srv/datax", NULL, POLICY_DENY, "read-only");
	W("/srv//data//y", NULL, POLICY_ALLOW, "writable:/srv/data");
	W("/tmp/x", NULL, POLICY_ALLOW, "session-tmp");
	W("/tmp", NULL, POLICY_DENY, "read-only");
	W("/etc/passwd", "/home/alice", POLICY_DENY, "read-only");
	W("/srv/data/../../etc/passwd", NULL, POLICY_DENY, "read-only");
	W("relative/x", "/home/alice", POLICY_DENY, "invalid-path");
	W("/x\n", "/home/alice", POLICY_DENY, "invalid-path");
	W("/home/alice/x", "/", POLICY_DENY, "read-only"); /* "/" is no home */
#undef W
	assert_int_equal(d.version, 3);
	policy_free(p);
	policy_decide_write(NULL, "/tmp/x", NULL, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.rule, "no-policy");
}

static void
test_null_and_refs(void **state)
{
	struct policy_decision d;
	struct policy *p, *q;

	policy_decide(NULL, NULL, "example.com", 443, &d);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.rule, "no-policy");
	assert_int_equal(d.version, 0);
	assert_int_equal(policy_version(NULL), 0);
	assert_null(policy_profile(NULL));
	assert_null(policy_fs_writable(NULL)[0]);
	assert_null(policy_cred_route(NULL, NULL, "x"));
	assert_int_equal(policy_limits(NULL)->nproc, 0);
	assert_string_equal(policy_verdict_name(POLICY_CORP), "corporate");
	assert_string_equal(policy_verdict_name(POLICY_ALLOW), "allow");
	assert_string_equal(policy_verdict_name(POLICY_DENY), "deny");

	p = load(HDR "\"egress\":[{\"id\":\"a\",\"action\":\"allow\",\"hosts\":[\"x.org\"],"
		     "\"ports\":[443]}]}");
	q = policy_ref(p);
	assert_ptr_equal(p, q);
	policy_free(p);
	/* still usable through the second reference (ASan would see a use after free) */
	decide(q, NULL, "x.org", 443, POLICY_ALLOW, "a");
	policy_free(q);
	policy_free(NULL);
}

/* Many rules: every rule stays reachable, and the answer is the first deny, then the
 * first corporate service, then the first allow, in document order. */
static void
test_many_rules(void **state)
{
	size_t cap = 4 * 1024 * 1024, i;
	char *doc = malloc(cap), *o = doc, host[64], id[32];
	struct policy *p;

	assert_non_null(doc);
	o += sprintf(o, HDR "\"egress\":[");
	for (i = 0; i < 5000; i++)
		o += sprintf(o,
			     "%s{\"id\":\"r%zu\",\"action\":\"%s\",\"hosts\":[\"h%zu.example\","
			     "\"*.w%zu.example\"],\"ports\":[%zu]}",
			     i ? "," : "", i, i % 10 == 9 ? "deny" : "allow", i, i % 100,
			     443 + i % 3);
	sprintf(o, "]}");
	p = load(doc);
	for (i = 0; i < 5000; i++) {
		snprintf(host, sizeof(host), "h%zu.example", i);
		snprintf(id, sizeof(id), "r%zu", i);
		decide(p, NULL, host, (int)(443 + i % 3), i % 10 == 9 ? POLICY_DENY : POLICY_ALLOW,
		       id);
		decide(p, NULL, host, 442, POLICY_DENY, "default-deny");
	}
	/* *.w7.example is named by r7 (allow 444), r107 (allow 445), r207 (allow 443) … ,
	 * never by a deny (i % 10 == 9 only for w9, w19 …) */
	decide(p, NULL, "a.w7.example", 445, POLICY_ALLOW, "r107");
	decide(p, NULL, "a.w7.example", 444, POLICY_ALLOW, "r7");
	/* *.w9.example: r9 (deny, port 443 only), r109 (deny, 444) … */
	decide(p, NULL, "a.w9.example", 443, POLICY_DENY, "r9");
	decide(p, NULL, "a.w9.example", 444, POLICY_DENY, "r109");
	policy_free(p);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits_sizes),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_deny_wins),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_ip_literals),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_selector_overflow),
		cmocka_unit_test(test_corporate),
		cmocka_unit_test(test_cred_routes),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_null_and_refs),
		cmocka_unit_test(test_many_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
