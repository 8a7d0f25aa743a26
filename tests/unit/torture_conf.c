/*
 * Configuration parser (conf/conf.c) and the broker's keyword table (broker/broker-config.c).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/broker-config.h"
#include "conf/conf.h"

/* The four required keywords, lines 1-4. */
#define REQ                                       \
	"HostKey /etc/saw/ssh_host_ed25519_key\n" \
	"OIDCIssuer https://idp.example.com\n"    \
	"OIDCClientID saw-broker\n"               \
	"RequiredGroup saw-users\n"

static const char full_config[] = "# every keyword, none at its default\n"
				  "ListenAddress 192.0.2.10:2222\n"
				  "ListenAddress [2001:db8::1]:22\n"
				  "HostKey /etc/saw/ssh_host_ed25519_key\n"
				  "HostKey /etc/saw/ssh_host_ecdsa_key\n"
				  "StateDatabase /srv/saw/state.db\n"
				  "AuditLog /srv/saw/audit.jsonl\n"
				  "AuditSink file /srv/a rotate=1M rotate-every=1d keep=3\n"
				  "AuditSink syslog socket=/run/log.sock facility=local3\n"
				  "AuditSink http https://siem.example.com/collector "
				  "format=hec token-file=/etc/saw/hec "
				  "\"spool=/var/lib/saw/a spool.db\" batch=200\n"
				  "AuditFailureMode closed\n"
				  "User _saw\n"
				  "OIDCIssuer https://login.example.com/realms/corp\n"
				  "OIDCClientID \"saw broker\"\n"
				  "OIDCClientSecretFile /etc/saw/oidc-secret\n"
				  "OIDCScopes openid email groups\n"
				  "OIDCUsernameClaim email\n"
				  "OIDCGroupsClaim \"https://example.com/claims/groups\"\n"
				  "OIDCAllowedAlgorithms ES384 PS256\n"
				  "OIDCTimeout 1m30s\n"
				  "RequiredGroup \"SAW \\\"agents\\\" \\\\ team #1\"\n"
				  "SessionMaxLifetime 12h\n"
				  "SessionIdleTimeout 45m\n"
				  "LoginGraceTime 2m\n"
				  "MaxStartups 20:50:200\n"
				  "PerSourceMaxStartups 3\n"
				  "MaxAuthTries 4\n"
				  "PerSourcePenalty 5 2h\n"
				  "AdminSocket /run/saw-test/admin.sock\n"
				  "AdminSocketGroup saw-admin\n"
				  "CorpService git git.corp.example:443\n"
				  "CorpService wiki.v2 [2001:db8::5]:8080\n"
				  "JumpHost jump1.corp.example:22 saw /etc/saw/jump_key\n"
				  "JumpHost 192.0.2.7:2222 saw-jump \"/etc/saw/jump key 2\"\n"
				  "JumpHostKnownHosts /etc/saw/jump_known_hosts\n"
				  "WorkspaceKeepalive 1m\n"
				  "HttpListenAddress 192.0.2.10:8443\n"
				  "HttpListenAddress [::1]:8080\n"
				  "HttpTLSCertificate /etc/saw/http.crt\n"
				  "HttpTLSKey /etc/saw/http.key\n"
				  "HttpMaxRequests 16\n"
				  "SSFTransmitterIssuer https://ssf.example.com\n"
				  "SSFTransmitterJWKS https://ssf.example.com/jwks.json\n"
				  "SSFAudience https://saw.example.com/ssf\n"
				  "AdminGroup saw-admins\n"
				  "AdminAPIAudience https://saw.example.com/admin\n"
				  "KillCommand /usr/local/sbin/stop-vm --force \"a b\"\n";

/* Parse text; returns the result and leaves the error output in *errs (caller frees). */
static int
load(const char *text, size_t len, struct broker_config *cfg, char **errs)
{
	size_t elen = 0;
	FILE *f;
	int r;

	*errs = NULL;
	f = open_memstream(errs, &elen);
	assert_non_null(f);
	r = broker_config_load_buffer("test.conf", text, len, cfg, f);
	fclose(f);
	return r;
}

static char *
dump(const struct broker_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	broker_config_dump(cfg, f);
	fclose(f);
	return buf;
}

static void
expect_ok(const char *text, struct broker_config *cfg)
{
	char *errs;
	int r = load(text, strlen(text), cfg, &errs);

	if (r != 0)
		print_error("unexpected errors:\n%s", errs);
	assert_int_equal(r, 0);
	assert_string_equal(errs, "");
	free(errs);
}

/* text must fail with exactly the error output want. */
static void
expect_errors(const char *text, size_t len, const char *want)
{
	struct broker_config cfg;
	char *errs;

	assert_int_equal(load(text, len, &cfg, &errs), -1);
	assert_string_equal(errs, want);
	/* a failed parse leaves nothing allocated */
	assert_null(cfg.oidc_issuer);
	assert_int_equal(cfg.host_key.n, 0);
	assert_null(cfg.host_key.v);
	broker_config_free(&cfg);
	free(errs);
}

static void
expect_error(const char *text, const char *want)
{
	expect_errors(text, strlen(text), want);
}

static void
assert_list(const struct conf_list *l, size_t n, ...)
{
	va_list ap;
	size_t i;

	assert_int_equal(l->n, n);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		assert_string_equal(l->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static void
test_full_config(void **state)
{
	struct broker_config cfg;

	expect_ok(full_config, &cfg);
	assert_list(&cfg.listen_address, 2, "192.0.2.10:2222", "[2001:db8::1]:22");
	assert_list(&cfg.host_key, 2, "/etc/saw/ssh_host_ed25519_key",
		    "/etc/saw/ssh_host_ecdsa_key");
	assert_string_equal(cfg.state_database, "/srv/saw/state.db");
	assert_string_equal(cfg.audit_log, "/srv/saw/audit.jsonl");
	assert_list(&cfg.audit_sink, 3, "file /srv/a rotate=1M rotate-every=1d keep=3",
		    "syslog socket=/run/log.sock facility=local3",
		    "http https://siem.example.com/collector format=hec token-file=/etc/saw/hec "
		    "\"spool=/var/lib/saw/a spool.db\" spool-max=256M batch=200 retry-max=1m "
		    "timeout=10s");
	assert_string_equal(cfg.audit_failure_mode, "closed");
	{
		struct audit_sink_cfg *sinks;
		enum audit_failure_mode mode;
		size_t n;

		assert_int_equal(broker_config_audit_sinks(&cfg, &sinks, &n, &mode), 0);
		assert_int_equal(n, 3);
		assert_int_equal(mode, AUDIT_FAILURE_CLOSED);
		assert_int_equal(sinks[0].rotate_size, 1024 * 1024);
		assert_string_equal(sinks[2].spool, "/var/lib/saw/a spool.db");
		free(sinks);
	}
	assert_string_equal(cfg.user, "_saw");
	assert_string_equal(cfg.oidc_issuer, "https://login.example.com/realms/corp");
	assert_string_equal(cfg.oidc_client_id, "saw broker");
	assert_string_equal(cfg.oidc_client_secret_file, "/etc/saw/oidc-secret");
	assert_list(&cfg.oidc_scopes, 3, "openid", "email", "groups");
	assert_string_equal(cfg.oidc_username_claim, "email");
	assert_string_equal(cfg.oidc_groups_claim, "https://example.com/claims/groups");
	assert_list(&cfg.oidc_algorithms, 2, "ES384", "PS256");
	assert_int_equal(cfg.oidc_timeout, 90);
	assert_string_equal(cfg.required_group, "SAW \"agents\" \\ team #1");
	assert_int_equal(cfg.session_max_lifetime, 12 * 3600);
	assert_int_equal(cfg.session_idle_timeout, 45 * 60);
	assert_int_equal(cfg.login_grace_time, 120);
	assert_int_equal(cfg.max_startups_begin, 20);
	assert_int_equal(cfg.max_startups_rate, 50);
	assert_int_equal(cfg.max_startups_full, 200);
	assert_int_equal(cfg.per_source_max_startups, 3);
	assert_int_equal(cfg.max_auth_tries, 4);
	assert_int_equal(cfg.per_source_penalty_failures, 5);
	assert_int_equal(cfg.per_source_penalty_time, 7200);
	assert_string_equal(cfg.admin_socket, "/run/saw-test/admin.sock");
	assert_string_equal(cfg.admin_socket_group, "saw-admin");
	assert_list(&cfg.corp_service, 2, "git git.corp.example:443", "wiki.v2 [2001:db8::5]:8080");
	assert_list(&cfg.jump_host, 2, "jump1.corp.example:22 saw /etc/saw/jump_key",
		    "192.0.2.7:2222 saw-jump /etc/saw/jump key 2");
	assert_string_equal(cfg.jump_host_known_hosts, "/etc/saw/jump_known_hosts");
	assert_int_equal(cfg.workspace_keepalive, 60);
	broker_config_free(&cfg);
	/* freeing twice is harmless */
	broker_config_free(&cfg);
	assert_null(cfg.user);
	assert_int_equal(cfg.oidc_scopes.n, 0);
	assert_int_equal(cfg.corp_service.n, 0);
	assert_null(cfg.jump_host.v);
}

static void
test_defaults(void **state)
{
	struct broker_config cfg;

	expect_ok(REQ, &cfg);
	assert_list(&cfg.listen_address, 1, "0.0.0.0:22");
	assert_list(&cfg.host_key, 1, "/etc/saw/ssh_host_ed25519_key");
	assert_string_equal(cfg.state_database, "/var/lib/saw/broker.db");
	assert_string_equal(cfg.audit_log, "/var/log/saw/audit.jsonl");
	assert_int_equal(cfg.audit_sink.n, 0);
	assert_string_equal(cfg.audit_failure_mode, "open");
	{
		struct audit_sink_cfg *sinks;
		enum audit_failure_mode mode;
		size_t n;

		/* AuditLog alone: one file sink. */
		assert_int_equal(broker_config_audit_sinks(&cfg, &sinks, &n, &mode), 0);
		assert_int_equal(n, 1);
		assert_int_equal(mode, AUDIT_FAILURE_OPEN);
		assert_int_equal(sinks[0].kind, AUDIT_SINK_FILE);
		assert_string_equal(sinks[0].path, "/var/log/saw/audit.jsonl");
		free(sinks);
	}
	assert_string_equal(cfg.user, "saw");
	assert_string_equal(cfg.oidc_issuer, "https://idp.example.com");
	assert_string_equal(cfg.oidc_client_id, "saw-broker");
	assert_null(cfg.oidc_client_secret_file);
	assert_list(&cfg.oidc_scopes, 3, "openid", "profile", "groups");
	assert_string_equal(cfg.oidc_username_claim, "preferred_username");
	assert_string_equal(cfg.oidc_groups_claim, "groups");
	assert_list(&cfg.oidc_algorithms, 2, "RS256", "ES256");
	assert_int_equal(cfg.oidc_timeout, 10);
	assert_string_equal(cfg.required_group, "saw-users");
	assert_int_equal(cfg.session_max_lifetime, 8 * 3600);
	assert_int_equal(cfg.session_idle_timeout, 30 * 60);
	assert_int_equal(cfg.login_grace_time, 5 * 60);
	assert_int_equal(cfg.max_startups_begin, 50);
	assert_int_equal(cfg.max_startups_rate, 30);
	assert_int_equal(cfg.max_startups_full, 500);
	assert_int_equal(cfg.per_source_max_startups, 50);
	assert_int_equal(cfg.max_auth_tries, 6);
	assert_int_equal(cfg.per_source_penalty_failures, 10);
	assert_int_equal(cfg.per_source_penalty_time, 60);
	assert_string_equal(cfg.admin_socket, "/run/saw/broker.sock");
	assert_null(cfg.admin_socket_group);
	assert_int_equal(cfg.corp_service.n, 0);
	assert_int_equal(cfg.jump_host.n, 0);
	assert_null(cfg.jump_host_known_hosts);
	assert_int_equal(cfg.workspace_keepalive, 15);
	assert_int_equal(cfg.http_listen_address.n, 0);
	assert_null(cfg.http_tls_certificate);
	assert_null(cfg.http_tls_key);
	assert_int_equal(cfg.http_max_requests, 64);
	assert_null(cfg.ssf_transmitter_issuer);
	assert_null(cfg.ssf_transmitter_jwks);
	assert_null(cfg.ssf_audience);
	assert_null(cfg.admin_group);
	assert_null(cfg.admin_api_audience);
	assert_int_equal(cfg.kill_command.n, 0);
	broker_config_free(&cfg);
}

static void
test_case_insensitive(void **state)
{
	struct broker_config cfg;

	expect_ok("hostkey /k\n"
		  "OIDCISSUER https://idp.example.com\n"
		  "oidcclientid x\n"
		  "rEqUiReDgRoUp g\n"
		  "maxauthtries 3\n"
		  "OIDCTIMEOUT 5S\n",
		  &cfg);
	assert_list(&cfg.host_key, 1, "/k");
	assert_int_equal(cfg.max_auth_tries, 3);
	assert_int_equal(cfg.oidc_timeout, 5);
	broker_config_free(&cfg);

	/* a repeat in another spelling is still a repeat */
	expect_error(REQ "User a\nUSER b\n", "test.conf:6: User: given twice (first at line 5)\n");
}

static void
test_quotes(void **state)
{
	struct broker_config cfg;

	expect_ok("HostKey \"/etc/saw/my key\"\n"
		  "OIDCIssuer \"https://idp.example.com\"\n"
		  "OIDCClientID \"a \\\"quoted\\\" \\\\ id\"\t# comment after a quote\n"
		  "RequiredGroup \"#not a comment\"\n"
		  "\"User\" \"saw\"\n"
		  "OIDCUsernameClaim x\\y\n" /* a backslash outside quotes is literal */
		  "OIDCScopes \"openid\" email\n",
		  &cfg);
	assert_list(&cfg.host_key, 1, "/etc/saw/my key");
	assert_string_equal(cfg.oidc_issuer, "https://idp.example.com");
	assert_string_equal(cfg.oidc_client_id, "a \"quoted\" \\ id");
	assert_string_equal(cfg.required_group, "#not a comment");
	assert_string_equal(cfg.user, "saw");
	assert_string_equal(cfg.oidc_username_claim, "x\\y");
	assert_list(&cfg.oidc_scopes, 2, "openid", "email");
	broker_config_free(&cfg);
	/* "\tsaw" is not a valid user name, which the message shows escaped */
	expect_error(REQ "User \"\tsaw\"\n",
		     "test.conf:5: User: \"\\x09saw\" is not a valid user name\n");
}

static void
test_comments(void **state)
{
	struct broker_config cfg;

	expect_ok("# a whole-line comment\n"
		  "\n"
		  "   # an indented comment\n"
		  "\t\n"
		  "HostKey /k # a trailing comment\n"
		  "OIDCIssuer https://idp.example.com\t#another\r\n"
		  "OIDCClientID id#1\r\n"
		  "  RequiredGroup\tg  \n"
		  "#User root\n"
		  "User saw", /* no final newline */
		  &cfg);
	assert_list(&cfg.host_key, 1, "/k");
	assert_string_equal(cfg.oidc_issuer, "https://idp.example.com");
	assert_string_equal(cfg.oidc_client_id, "id#1");
	assert_string_equal(cfg.required_group, "g");
	assert_string_equal(cfg.user, "saw");
	broker_config_free(&cfg);
}

static void
test_repeated(void **state)
{
	struct broker_config cfg;

	expect_ok(REQ "HostKey /k2\n"
		      "ListenAddress 127.0.0.1:22\n"
		      "ListenAddress [::1]:22\n"
		      "OIDCScopes openid\n"
		      "OIDCScopes email groups\n",
		  &cfg);
	assert_list(&cfg.host_key, 2, "/etc/saw/ssh_host_ed25519_key", "/k2");
	/* the file replaces the default, it does not append to it */
	assert_list(&cfg.listen_address, 2, "127.0.0.1:22", "[::1]:22");
	assert_list(&cfg.oidc_scopes, 3, "openid", "email", "groups");
	broker_config_free(&cfg);

	expect_error(REQ "ListenAddress 127.0.0.1:22\nListenAddress 127.0.0.1:22\n",
		     "test.conf:6: ListenAddress: \"127.0.0.1:22\" is given twice\n");
	expect_error(REQ "OIDCTimeout 5s\n\nOIDCTimeout 5s\n",
		     "test.conf:7: OIDCTimeout: given twice (first at line 5)\n");
	expect_error(REQ "MaxStartups 1\nMaxStartups 1\n",
		     "test.conf:6: MaxStartups: given twice (first at line 5)\n");
}

static void
test_each_error(void **state)
{
	static const struct {
		const char *line, *want;
	} cases[] = {
		{ "Frobnicate yes", "test.conf:5: Frobnicate: unknown keyword" },
		{ "Fr\xc3\xa9"
		  "d x",
		  "test.conf:5: Fr\\xc3\\xa9d: unknown keyword" },
		{ "User", "test.conf:5: User: missing argument" },
		{ "User   # comment", "test.conf:5: User: missing argument" },
		{ "User a b",
		  "test.conf:5: User: too many arguments (expected one; quote a value that "
		  "contains spaces)" },
		{ "User \"\"", "test.conf:5: User: empty value" },
		{ "User root",
		  "test.conf:5: User: must not be root: the broker drops to this account" },
		{ "MaxAuthTries lots",
		  "test.conf:5: MaxAuthTries: \"lots\" is not a whole number" },
		{ "MaxAuthTries 0",
		  "test.conf:5: MaxAuthTries: 0 is out of range: give a number between 1 and 100" },
		{ "MaxAuthTries 99999999999",
		  "test.conf:5: MaxAuthTries: 99999999999 is out of range: give a number between 1 "
		  "and 100" },
		{ "MaxAuthTries +3", "test.conf:5: MaxAuthTries: \"+3\" is not a whole number" },
		{ "OIDCTimeout 10x",
		  "test.conf:5: OIDCTimeout: \"10x\" is not a duration (e.g. 30s, 15m, 8h, 2d, "
		  "1h30m)" },
		{ "OIDCTimeout -5",
		  "test.conf:5: OIDCTimeout: \"-5\" is not a duration (e.g. 30s, 15m, 8h, 2d, "
		  "1h30m)" },
		{ "OIDCTimeout 10m",
		  "test.conf:5: OIDCTimeout: 10m is out of range: give a value between 1s and 5m" },
		{ "OIDCTimeout 0",
		  "test.conf:5: OIDCTimeout: 0 is out of range: give a value between "
		  "1s and 5m" },
		{ "SessionMaxLifetime 99999999999999999999d",
		  "test.conf:5: SessionMaxLifetime: 99999999999999999999d is out of range: give a "
		  "value between 1s and 7d" },
		{ "User \"abc", "test.conf:5: User: unterminated quote" },
		{ "\"User", "test.conf:5: unterminated quote" },
		{ "User \"a\\n\"",
		  "test.conf:5: User: bad escape: inside quotes only \\\" and \\\\ are allowed" },
		{ "User a\"b\"",
		  "test.conf:5: User: quote in the middle of an argument (quote the whole "
		  "argument)" },
		{ "User \"a\"b", "test.conf:5: User: a closing quote must be followed by a space" },
		{ "Nope \"a", "test.conf:5: Nope: unterminated quote" },
		{ "User a\x01", "test.conf:5: line contains a control character (\\x01)" },
		{ "User a\rb", "test.conf:5: line contains a control character (\\x0d)" },
		{ "StateDatabase broker.db",
		  "test.conf:5: StateDatabase: \"broker.db\" is not an absolute path" },
		{ "HostKey key", "test.conf:5: HostKey: \"key\" is not an absolute path" },
		{ "ListenAddress ::1:22",
		  "test.conf:5: ListenAddress: \"::1:22\" is not HOST:PORT (e.g. 0.0.0.0:22 or "
		  "[::]:22)" },
		{ "ListenAddress 0.0.0.0",
		  "test.conf:5: ListenAddress: \"0.0.0.0\" is not HOST:PORT (e.g. 0.0.0.0:22 or "
		  "[::]:22)" },
		{ "OIDCAllowedAlgorithms RS256 none",
		  "test.conf:5: OIDCAllowedAlgorithms: \"none\" is never allowed: ID tokens must be "
		  "signed" },
		{ "OIDCAllowedAlgorithms HS256",
		  "test.conf:5: OIDCAllowedAlgorithms: \"HS256\" is not allowed: HMAC algorithms "
		  "would make the client secret a verification key; use RS256 or ES256" },
		{ "OIDCAllowedAlgorithms rs256",
		  "test.conf:5: OIDCAllowedAlgorithms: unknown algorithm \"rs256\" (use RS256, "
		  "RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512; names are "
		  "case-sensitive)" },
		{ "OIDCAllowedAlgorithms EdDSA",
		  "test.conf:5: OIDCAllowedAlgorithms: EdDSA is not supported by this build (cjose "
		  "0.6 has no Ed25519 keys); use RS256 or ES256" },
		{ "OIDCAllowedAlgorithms", "test.conf:5: OIDCAllowedAlgorithms: missing argument" },
		{ "OIDCScopes profile email",
		  "test.conf:5: OIDCScopes: must include openid (the broker signs users in with "
		  "OpenID Connect)" },
		{ "OIDCScopes openid a\\b",
		  "test.conf:5: OIDCScopes: \"a\\b\" is not a valid OAuth scope" },
		{ "OIDCScopes openid openid",
		  "test.conf:5: OIDCScopes: \"openid\" is given twice" },
		{ "MaxStartups 20:30:10",
		  "test.conf:5: MaxStartups: begin (20) must not be larger than full (10)" },
		{ "MaxStartups 0", "test.conf:5: MaxStartups: begin must be at least 1" },
		{ "MaxStartups 10:0:20",
		  "test.conf:5: MaxStartups: rate must be a percentage between 1 and 100" },
		{ "MaxStartups 10:101:20",
		  "test.conf:5: MaxStartups: rate must be a percentage between 1 and 100" },
		{ "MaxStartups 10:30",
		  "test.conf:5: MaxStartups: \"10:30\" is not begin[:rate:full] (e.g. 10:30:100)" },
		{ "MaxStartups 10::30",
		  "test.conf:5: MaxStartups: \"10::30\" is not begin[:rate:full] (e.g. 10:30:100)" },
		{ "MaxStartups 1:2:3:4",
		  "test.conf:5: MaxStartups: \"1:2:3:4\" is not begin[:rate:full] (e.g. "
		  "10:30:100)" },
		{ "MaxStartups -1",
		  "test.conf:5: MaxStartups: \"-1\" is not begin[:rate:full] (e.g. 10:30:100)" },
		{ "MaxStartups", "test.conf:5: MaxStartups: missing argument (expected "
				 "begin[:rate:full], e.g. 10:30:100)" },
		{ "PerSourcePenalty 10",
		  "test.conf:5: PerSourcePenalty: expected FAILURES DURATION (e.g. 10 1m)" },
		{ "PerSourcePenalty 0 1m",
		  "test.conf:5: PerSourcePenalty: \"0\": FAILURES must be a number between 1 and "
		  "100000" },
		{ "PerSourcePenalty 10 0s",
		  "test.conf:5: PerSourcePenalty: \"0s\": DURATION must be between 1s and 1d (e.g. "
		  "1m)" },
		{ "AdminSocket run/saw.sock",
		  "test.conf:5: AdminSocket: \"run/saw.sock\" is not an absolute path" },
		{ "AdminSocket /run/saw/"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaa.sock",
		  "test.conf:5: AdminSocket: a socket path must be shorter than 108 bytes" },
		{ "AdminSocketGroup -wheel",
		  "test.conf:5: AdminSocketGroup: \"-wheel\" is not a valid group name" },
		{ "AdminSocketGroup a b",
		  "test.conf:5: AdminSocketGroup: too many arguments (expected one; quote a value "
		  "that contains spaces)" },
		{ "CorpService git", "test.conf:5: CorpService: expected NAME HOST:PORT (e.g. git "
				     "git.corp.example:443)" },
		{ "AuditSink tape /dev/st0",
		  "test.conf:5: AuditSink: \"tape\" is not a sink kind (file, syslog or http)" },
		{ "AuditSink file var/log/a.jsonl",
		  "test.conf:5: AuditSink: PATH \"var/log/a.jsonl\" must be an absolute path" },
		{ "AuditSink http http://siem.example.com/ spool=/s",
		  "test.conf:5: AuditSink: URL \"http://siem.example.com/\": plain http only to a "
		  "loopback address; use https" },
		{ "AuditSink http https://siem.example.com/ format=hec spool=/s",
		  "test.conf:5: AuditSink: format=hec needs token-file=PATH (the HEC token)" },
		{ "AuditSink file /a\nAuditSink file /a keep=2",
		  "test.conf:6: AuditSink: file /a is given twice (one writer per file)" },
		{ "AuditFailureMode ajar",
		  "test.conf:5: AuditFailureMode: \"ajar\" is not closed (refuse new logins when "
		  "audit events cannot be made durable) or open (carry on, log loudly)" },
		{ "CorpService", "test.conf:5: CorpService: expected NAME HOST:PORT (e.g. git "
				 "git.corp.example:443)" },
		{ "CorpService Git git:443",
		  "test.conf:5: CorpService: \"Git\" is not a valid service name (lower-case "
		  "letters, digits, '.' and '-', starting with a letter or digit, at most 63 "
		  "characters)" },
		{ "CorpService -git git:443",
		  "test.conf:5: CorpService: \"-git\" is not a valid service name (lower-case "
		  "letters, digits, '.' and '-', starting with a letter or digit, at most 63 "
		  "characters)" },
		{ "CorpService git git.corp.example",
		  "test.conf:5: CorpService: git: \"git.corp.example\" is not HOST:PORT (e.g. "
		  "git.corp.example:443)" },
		{ "CorpService git git:0",
		  "test.conf:5: CorpService: git: \"git:0\" is not HOST:PORT (e.g. "
		  "git.corp.example:443)" },
		{ "CorpService git a:1\nCorpService git b:2",
		  "test.conf:6: CorpService: service \"git\" is given twice" },
		{ "JumpHost j:22 saw",
		  "test.conf:5: JumpHost: expected HOST:PORT USER KEYFILE (e.g. "
		  "jump1.corp.example:22 saw /etc/saw/jump_key)" },
		{ "JumpHost j saw /k\nJumpHostKnownHosts /kh",
		  "test.conf:5: JumpHost: \"j\" is not HOST:PORT (e.g. jump1.corp.example:22)" },
		{ "JumpHost j:22 \"s w\" /k\nJumpHostKnownHosts /kh",
		  "test.conf:5: JumpHost: \"s w\" is not a valid user name" },
		{ "JumpHost j:22 saw k\nJumpHostKnownHosts /kh",
		  "test.conf:5: JumpHost: KEYFILE \"k\" is not an absolute path" },
		{ "JumpHost j:22 saw /k\nJumpHost j:22 saw /k2\nJumpHostKnownHosts /kh",
		  "test.conf:6: JumpHost: j:22 is given twice" },
		{ "JumpHost j1:22 saw /k\nJumpHost j2:22 saw /k\nJumpHost j3:22 saw /k\n"
		  "JumpHostKnownHosts /kh",
		  "test.conf:7: JumpHost: at most 2 jump hosts (an active one and a standby)" },
		{ "JumpHost j1:22 saw /k\nJumpHost j2:22 saw /k",
		  "test.conf:6: JumpHost: JumpHostKnownHosts is required with JumpHost (the jump "
		  "hosts' keys are always verified against it)" },
		{ "JumpHostKnownHosts kh",
		  "test.conf:5: JumpHostKnownHosts: \"kh\" is not an absolute path" },
		{ "WorkspaceKeepalive 0",
		  "test.conf:5: WorkspaceKeepalive: 0 is out of range: give a value between 1s and "
		  "10m" },
		{ "WorkspaceKeepalive 11m",
		  "test.conf:5: WorkspaceKeepalive: 11m is out of range: give a value between 1s and "
		  "10m" },
	};
	char text[512], want[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), REQ "%s\n", cases[i].line);
		snprintf(want, sizeof(want), "%s\n", cases[i].want);
		expect_error(text, want);
	}
}

static void
test_required(void **state)
{
	expect_error("", "test.conf: HostKey is required\n"
			 "test.conf: OIDCIssuer is required\n"
			 "test.conf: OIDCClientID is required\n"
			 "test.conf: RequiredGroup is required\n");
	/* given but wrong is one error, not also "required" */
	expect_error("HostKey /k\nOIDCIssuer http://idp.example.com\nOIDCClientID c\n"
		     "RequiredGroup g\n",
		     "test.conf:2: OIDCIssuer: \"http://idp.example.com\" must use https:// "
		     "(http:// is accepted only for localhost, 127.0.0.0/8 and [::1])\n");
}

static void
test_multiple_errors(void **state)
{
	expect_error("# header\n"
		     "HostKey relative\n"
		     "Bogus 1\n"
		     "OIDCTimeout forever\n"
		     "OIDCClientID c\n"
		     "OIDCClientID d\n"
		     "MaxStartups 5:30:1\n",
		     "test.conf:2: HostKey: \"relative\" is not an absolute path\n"
		     "test.conf:3: Bogus: unknown keyword\n"
		     "test.conf:4: OIDCTimeout: \"forever\" is not a duration (e.g. 30s, 15m, 8h, "
		     "2d, 1h30m)\n"
		     "test.conf:6: OIDCClientID: given twice (first at line 5)\n"
		     "test.conf:7: MaxStartups: begin (5) must not be larger than full (1)\n"
		     "test.conf: OIDCIssuer is required\n"
		     "test.conf: RequiredGroup is required\n");
}

static void
test_too_many_errors(void **state)
{
	struct broker_config cfg;
	char *text, *errs, *p;
	size_t i, lines = 0;

	text = calloc(300, 8);
	assert_non_null(text);
	for (i = 0; i < 300; i++)
		strcat(text, "Bogus\n");
	assert_int_equal(load(text, strlen(text), &cfg, &errs), -1);
	for (p = errs; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, CONF_MAX_ERRORS + 1);
	assert_non_null(strstr(errs, "test.conf:100: Bogus: unknown keyword\n"
				     "test.conf: too many errors, giving up\n"));
	free(errs);
	free(text);
}

static void
test_line_limits(void **state)
{
	static const char nul[] = REQ "User sa\0w\nMaxAuthTries 0\n";
	char *text, want[128];
	size_t n;

	/* a line of exactly CONF_MAX_LINE bytes is fine, one more is not */
	text = malloc(CONF_MAX_LINE + 256);
	assert_non_null(text);
	strcpy(text, REQ "#");
	n = strlen(text);
	memset(text + n, 'x', CONF_MAX_LINE - 1);
	strcpy(text + n + CONF_MAX_LINE - 1, "\nUser \"saw\"\n");
	{
		struct broker_config cfg;

		expect_ok(text, &cfg);
		broker_config_free(&cfg);
	}
	memset(text + n, 'x', CONF_MAX_LINE);
	strcpy(text + n + CONF_MAX_LINE, "\nUser root\n");
	snprintf(want, sizeof(want),
		 "test.conf:5: line is longer than %d bytes\n"
		 "test.conf:6: User: must not be root: the broker drops to this account\n",
		 CONF_MAX_LINE);
	expect_error(text, want);
	free(text);

	/* a NUL byte is reported, and the lines after it still parsed */
	expect_errors(nul, sizeof(nul) - 1,
		      "test.conf:5: line contains a NUL byte\n"
		      "test.conf:6: MaxAuthTries: 0 is out of range: give a number between 1 and "
		      "100\n");
}

static void
test_file_size(void **state)
{
	struct broker_config cfg;
	char *text, *errs;
	size_t n, len = CONF_MAX_FILE;

	/* exactly 1 MiB parses, one byte more does not */
	text = malloc(len + 1);
	assert_non_null(text);
	memset(text, '#', len);
	memcpy(text, REQ, strlen(REQ));
	for (n = strlen(REQ) + 1000; n < len; n += 1000)
		text[n] = '\n';
	text[len] = '\n';
	assert_int_equal(load(text, len, &cfg, &errs), 0);
	assert_string_equal(errs, "");
	free(errs);
	broker_config_free(&cfg);
	expect_errors(text, len + 1, "test.conf: file is larger than 1 MiB (1048577 bytes)\n");
	free(text);
}

static void
test_issuer(void **state)
{
	static const char *const good[] = {
		"https://idp.example.com",
		"https://idp.example.com/realms/corp",
		"https://idp.example.com:8443/",
		"HTTPS://idp.example.com",
		"https://[2001:db8::1]/",
		"http://localhost:8080",
		"http://LOCALHOST/",
		"http://127.0.0.1:9000/oidc",
		"http://127.1.2.3",
		"http://[::1]:8080",
	};
	static const char *const bad[] = {
		"http://idp.example.com",
		"http://127.example.com",
		"http://localhost.example.com",
		"http://128.0.0.1",
		"http://[::2]:8080",
		"http://0x7f000001",
		"http://[::1:8080",
		"http://localhost:0",
		"http://localhost:99999",
		"http://localhost:/",
		"ftp://idp.example.com",
		"idp.example.com",
		"https://",
		"https:///path",
		"https://user@idp.example.com",
		"https://idp.example.com/?x=1",
		"https://idp.example.com/#frag",
	};
	struct broker_config cfg;
	char text[512], *errs;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text),
			 "HostKey /k\nOIDCClientID c\nRequiredGroup g\n"
			 "OIDCIssuer %s\n",
			 good[i]);
		expect_ok(text, &cfg);
		assert_string_equal(cfg.oidc_issuer, good[i]);
		broker_config_free(&cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "HostKey /k\nOIDCClientID c\nRequiredGroup g\n"
			 "OIDCIssuer %s\n",
			 bad[i]);
		assert_int_equal(load(text, strlen(text), &cfg, &errs), -1);
		if (strncmp(errs, "test.conf:4: OIDCIssuer: ", 25) != 0 ||
		    strchr(errs, '\n') != errs + strlen(errs) - 1)
			fail_msg("%s: unexpected errors: %s", bad[i], errs);
		free(errs);
	}
}

static void
assert_list_equal(const struct conf_list *a, const struct conf_list *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

static void
assert_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_config_equal(const struct broker_config *a, const struct broker_config *b)
{
	assert_list_equal(&a->listen_address, &b->listen_address);
	assert_list_equal(&a->host_key, &b->host_key);
	assert_str_equal(a->state_database, b->state_database);
	assert_str_equal(a->audit_log, b->audit_log);
	assert_list_equal(&a->audit_sink, &b->audit_sink);
	assert_str_equal(a->audit_failure_mode, b->audit_failure_mode);
	assert_str_equal(a->user, b->user);
	assert_str_equal(a->oidc_issuer, b->oidc_issuer);
	assert_str_equal(a->oidc_client_id, b->oidc_client_id);
	assert_str_equal(a->oidc_client_secret_file, b->oidc_client_secret_file);
	assert_list_equal(&a->oidc_scopes, &b->oidc_scopes);
	assert_str_equal(a->oidc_username_claim, b->oidc_username_claim);
	assert_str_equal(a->oidc_groups_claim, b->oidc_groups_claim);
	assert_list_equal(&a->oidc_algorithms, &b->oidc_algorithms);
	assert_int_equal(a->oidc_timeout, b->oidc_timeout);
	assert_str_equal(a->required_group, b->required_group);
	assert_int_equal(a->session_max_lifetime, b->session_max_lifetime);
	assert_int_equal(a->session_idle_timeout, b->session_idle_timeout);
	assert_int_equal(a->login_grace_time, b->login_grace_time);
	assert_int_equal(a->max_startups_begin, b->max_startups_begin);
	assert_int_equal(a->max_startups_rate, b->max_startups_rate);
	assert_int_equal(a->max_startups_full, b->max_startups_full);
	assert_int_equal(a->per_source_max_startups, b->per_source_max_startups);
	assert_int_equal(a->max_auth_tries, b->max_auth_tries);
	assert_int_equal(a->per_source_penalty_failures, b->per_source_penalty_failures);
	assert_int_equal(a->per_source_penalty_time, b->per_source_penalty_time);
	assert_str_equal(a->admin_socket, b->admin_socket);
	assert_str_equal(a->admin_socket_group, b->admin_socket_group);
	assert_list_equal(&a->corp_service, &b->corp_service);
	assert_list_equal(&a->jump_host, &b->jump_host);
	assert_str_equal(a->jump_host_known_hosts, b->jump_host_known_hosts);
	assert_int_equal(a->workspace_keepalive, b->workspace_keepalive);
}

static void
roundtrip(const char *text)
{
	struct broker_config a, b;
	char *d1, *d2;

	expect_ok(text, &a);
	d1 = dump(&a);
	expect_ok(d1, &b);
	d2 = dump(&b);
	assert_string_equal(d1, d2);
	assert_config_equal(&a, &b);
	broker_config_free(&a);
	broker_config_free(&b);
	free(d1);
	free(d2);
}

static void
test_dump_roundtrip(void **state)
{
	roundtrip(full_config);
	roundtrip(REQ);
	roundtrip(REQ "SessionMaxLifetime 90s\nOIDCTimeout 300\nMaxStartups 7\n"
		      "PerSourcePenalty 3 86400\nLoginGraceTime 1h\n");
	roundtrip(REQ "CorpService none\nJumpHost none\n");
	roundtrip(REQ "CorpService a a:1\nJumpHost [::1]:22 u \"/k \\\"q\\\" \\\\\"\n"
		      "JumpHostKnownHosts \"/k h\"\nWorkspaceKeepalive 90\n");
}

static void
test_dump_roundtrip_weird(void **state)
{
	roundtrip("HostKey \"/k with space\"\nHostKey \"/k#hash\"\nHostKey \"/k\\\"q\"\n"
		  "HostKey /k\\back\nOIDCIssuer http://[::1]:80\nOIDCClientID \"\\\\\"\n"
		  "RequiredGroup \"\tTAB\"\n");
}

static void
test_dump_defaults(void **state)
{
	struct broker_config cfg;
	char *d;

	expect_ok(REQ "SessionMaxLifetime 90s\n"
		      "SessionIdleTimeout 3600\n"
		      "OIDCTimeout 1M30S\n"
		      "MaxStartups 7\n"
		      "PerSourcePenalty 3 120\n"
		      "LoginGraceTime 0h10m0s\n",
		  &cfg);
	d = dump(&cfg);
	assert_string_equal(d, "ListenAddress 0.0.0.0:22\n"
			       "HostKey /etc/saw/ssh_host_ed25519_key\n"
			       "StateDatabase /var/lib/saw/broker.db\n"
			       "AuditLog /var/log/saw/audit.jsonl\n"
			       "AuditSink none\n"
			       "AuditFailureMode open\n"
			       "User saw\n"
			       "OIDCIssuer https://idp.example.com\n"
			       "OIDCClientID saw-broker\n"
			       "# OIDCClientSecretFile is not set\n"
			       "OIDCScopes openid profile groups\n"
			       "OIDCUsernameClaim preferred_username\n"
			       "OIDCGroupsClaim groups\n"
			       "OIDCAllowedAlgorithms RS256 ES256\n"
			       "OIDCTimeout 1m30s\n"
			       "RequiredGroup saw-users\n"
			       "SessionMaxLifetime 1m30s\n"
			       "SessionIdleTimeout 1h\n"
			       "LoginGraceTime 10m\n"
			       "MaxStartups 7:100:7\n"
			       "PerSourceMaxStartups 50\n"
			       "MaxAuthTries 6\n"
			       "PerSourcePenalty 3 2m\n"
			       "AdminSocket /run/saw/broker.sock\n"
			       "# AdminSocketGroup is not set\n"
			       "CorpService none\n"
			       "JumpHost none\n"
			       "# JumpHostKnownHosts is not set\n"
			       "WorkspaceKeepalive 15s\n"
			       "WorkspaceAuditRate 500\n"
			       "WorkspaceAuditBurst 5000\n"
			       "# HttpListenAddress is not set\n"
			       "# HttpTLSCertificate is not set\n"
			       "# HttpTLSKey is not set\n"
			       "HttpMaxRequests 64\n"
			       "# SSFTransmitterIssuer is not set\n"
			       "# SSFTransmitterJWKS is not set\n"
			       "# SSFAudience is not set\n"
			       "# AdminGroup is not set\n"
			       "# AdminAPIAudience is not set\n"
			       "# KillCommand is not set\n");
	free(d);
	broker_config_free(&cfg);
}

static void
test_durations(void **state)
{
	static const struct {
		const char *s;
		int ret;
		long long v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "30", 0, 30 },
		{ "30s", 0, 30 },
		{ "15m", 0, 900 },
		{ "8h", 0, 28800 },
		{ "2d", 0, 172800 },
		{ "1w", 0, 604800 },
		{ "1h30m", 0, 5400 },
		{ "1H30M", 0, 5400 },
		{ "30m1h", 0, 5400 },
		{ "0h0m5s", 0, 5 },
		{ "007s", 0, 7 },
		{ "9223372036854775807", 0, LLONG_MAX },
		{ "9223372036854775807s", 0, LLONG_MAX },
		{ "", -EINVAL, 0 },
		{ "-5", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "+5", -EINVAL, 0 },
		{ "5x", -EINVAL, 0 },
		{ "5sx", -EINVAL, 0 },
		{ "5ss", -EINVAL, 0 },
		{ "1h30", -EINVAL, 0 },
		{ "h", -EINVAL, 0 },
		{ "1.5h", -EINVAL, 0 },
		{ " 5", -EINVAL, 0 },
		{ "5 ", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "9223372036854775808", -ERANGE, 0 },
		{ "99999999999999999999d", -ERANGE, 0 },
		{ "153722867280912931m", -ERANGE, 0 },
		{ "9223372036854775807s1s", -ERANGE, 0 },
		{ "99999999999999999999x", -EINVAL, 0 },
	};
	static const struct {
		long long v;
		const char *s;
	} fmt[] = {
		{ 0, "0s" },	    { 1, "1s" },
		{ 59, "59s" },	    { 60, "1m" },
		{ 90, "1m30s" },    { 3600, "1h" },
		{ 5400, "1h30m" },  { 28800, "8h" },
		{ 86400, "1d" },    { 90061, "1d1h1m1s" },
		{ 1209600, "14d" }, { LLONG_MAX, "106751991167300d15h30m7s" },
	};
	char buf[64];
	long long v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		if (conf_parse_duration(cases[i].s, &v) != cases[i].ret)
			fail_msg("\"%s\": expected %d", cases[i].s, cases[i].ret);
		if (cases[i].ret == 0)
			assert_int_equal(v, cases[i].v);
		else
			assert_int_equal(v, -1); /* untouched on error */
	}
	for (i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		assert_int_equal(conf_format_duration(fmt[i].v, buf, sizeof(buf)), 0);
		assert_string_equal(buf, fmt[i].s);
		assert_int_equal(conf_parse_duration(buf, &v), 0);
		assert_int_equal(v, fmt[i].v);
	}
	assert_int_equal(conf_format_duration(-1, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(conf_format_duration(5400, buf, 5), -ERANGE);
	assert_int_equal(conf_format_duration(5400, buf, 6), 0);
	assert_int_equal(conf_format_duration(0, buf, 2), -ERANGE);
}

static void
test_sizes(void **state)
{
	static const struct {
		const char *s;
		int ret;
		long long v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "512", 0, 512 },
		{ "64K", 0, 65536 },
		{ "64k", 0, 65536 },
		{ "1M", 0, 1048576 },
		{ "2G", 0, 2147483648LL },
		{ "1t", 0, 1099511627776LL },
		{ "8388607T", 0, 8388607LL << 40 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "1KB", -EINVAL, 0 },
		{ "1X", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "1.5M", -EINVAL, 0 },
		{ "1 K", -EINVAL, 0 },
		{ "8388608T", -ERANGE, 0 },
		{ "9223372036854775808", -ERANGE, 0 },
		{ "99999999999999999999K", -ERANGE, 0 },
	};
	static const struct {
		long long v;
		const char *s;
	} fmt[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ 1023, "1023" },
		{ 1024, "1K" },
		{ 1536, "1536" },
		{ 3072, "3K" },
		{ 1048576, "1M" },
		{ 2147483648LL, "2G" },
		{ 1099511627776LL, "1T" },
		{ LLONG_MAX, "9223372036854775807" },
	};
	char buf[64];
	long long v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		if (conf_parse_size(cases[i].s, &v) != cases[i].ret)
			fail_msg("\"%s\": expected %d", cases[i].s, cases[i].ret);
		if (cases[i].ret == 0)
			assert_int_equal(v, cases[i].v);
		else
			assert_int_equal(v, -1);
	}
	for (i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		assert_int_equal(conf_format_size(fmt[i].v, buf, sizeof(buf)), 0);
		assert_string_equal(buf, fmt[i].s);
		assert_int_equal(conf_parse_size(buf, &v), 0);
		assert_int_equal(v, fmt[i].v);
	}
	assert_int_equal(conf_format_size(-1, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(conf_format_size(65536, buf, 3), -ERANGE);
}

static void
test_ints_bools(void **state)
{
	long long v;
	int b;

	assert_int_equal(conf_parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MIN);
	assert_int_equal(conf_parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(conf_parse_int("9223372036854775808", LLONG_MIN, LLONG_MAX, &v), -ERANGE);
	assert_int_equal(conf_parse_int("-9223372036854775809", LLONG_MIN, LLONG_MAX, &v), -ERANGE);
	assert_int_equal(conf_parse_int("-3", -5, 5, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(conf_parse_int("6", -5, 5, &v), -ERANGE);
	assert_int_equal(conf_parse_int("-", 0, 5, &v), -EINVAL);
	assert_int_equal(conf_parse_int("", 0, 5, &v), -EINVAL);
	assert_int_equal(conf_parse_int("1e3", 0, 5000, &v), -EINVAL);
	assert_int_equal(conf_parse_int("0x1", 0, 5, &v), -EINVAL);

	assert_int_equal(conf_parse_bool("yes", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_parse_bool("NO", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(conf_parse_bool("true", &b), -EINVAL);
	assert_int_equal(conf_parse_bool("", &b), -EINVAL);
}

static void
test_addresses(void **state)
{
	static const char *const good[] = {
		"0.0.0.0:22",	   "[::]:22",	     "[::1]:2222", "broker.example.com:22",
		"localhost:65535", "10.1.2.3:00022", "a-b.c:1",	   "[2001:db8::1]:443",
	};
	static const char *const bad[] = {
		"0.0.0.0",	":22",	    "host:",	    "host:0",	  "host:65536",
		"::1:22",	"[::1]22",  "[::1]:",	    "[zz]:22",	  "[]:22",
		"999.1.1.1:22", "1.2.3:22", "a..b:22",	    "-a:22",	  "a-:22",
		"a.:22",	".a:22",    "host:+22",	    "host:-1",	  "host:123456",
		"ho_st:22",	"*:22",	    "[1.2.3.4]:22", "host:22:22", "",
	};
	char host[64];
	unsigned int port;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (conf_address_split(good[i], NULL, 0, NULL) != 0)
			fail_msg("%s: refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_address_split(bad[i], NULL, 0, NULL) == 0)
			fail_msg("%s: accepted", bad[i]);
	assert_int_equal(conf_address_split("[::1]:2222", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 2222);
	assert_int_equal(conf_address_split("broker.example.com:22", host, sizeof(host), &port), 0);
	assert_string_equal(host, "broker.example.com");
	assert_int_equal(port, 22);
	assert_int_equal(conf_address_split("broker.example.com:22", host, 5, &port), -ERANGE);
}

static void
test_vis(void **state)
{
	char buf[16], big[200];

	assert_string_equal(conf_vis("plain", buf, sizeof(buf)), "plain");
	assert_string_equal(conf_vis("a\x01\xff", buf, sizeof(buf)), "a\\x01\\xff");
	assert_string_equal(conf_vis("0123456789abcdefghij", buf, sizeof(buf)), "0123456789ab...");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(strlen(conf_vis(big, buf, sizeof(buf))), sizeof(buf) - 1);
}

static const char *
srcdir(void)
{
	const char *d = getenv("SAW_TEST_SRCDIR");

	return d != NULL ? d : ".";
}

static void
test_load_file(void **state)
{
	struct broker_config cfg;
	char path[] = "/tmp/torture_conf.XXXXXX", example[4096];
	FILE *f;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(full_config, f);
	fclose(f);
	assert_int_equal(broker_config_load(path, &cfg), 0);
	assert_int_equal(cfg.per_source_penalty_time, 7200);
	broker_config_free(&cfg);
	unlink(path);

	assert_int_equal(broker_config_load(path, &cfg), -1);	/* gone now */
	assert_int_equal(broker_config_load("/tmp", &cfg), -1); /* not a regular file */

	/* the shipped example is a valid configuration */
	snprintf(example, sizeof(example), "%s/conf/broker.conf.example", srcdir());
	assert_int_equal(broker_config_load(example, &cfg), 0);
	broker_config_free(&cfg);
}

/* The routing code's view of CorpService and JumpHost entries. */
static void
test_split_helpers(void **state)
{
	struct broker_config cfg;
	char *name, *host, *user, *keyfile;
	int port;

	expect_ok(REQ "CorpService git git.corp.example:443\n"
		      "CorpService v6 [2001:db8::5]:8080\n"
		      "JumpHost [::1]:2222 saw \"/etc/saw/jump key\"\n"
		      "JumpHost 192.0.2.7:22 j /k\n"
		      "JumpHostKnownHosts /kh\n",
		  &cfg);
	assert_int_equal(broker_corp_service_split(cfg.corp_service.v[0], &name, &host, &port), 0);
	assert_string_equal(name, "git");
	assert_string_equal(host, "git.corp.example");
	assert_int_equal(port, 443);
	free(name);
	free(host);
	assert_int_equal(broker_corp_service_split(cfg.corp_service.v[1], &name, &host, &port), 0);
	assert_string_equal(name, "v6");
	assert_string_equal(host, "2001:db8::5");
	assert_int_equal(port, 8080);
	free(name);
	free(host);

	assert_int_equal(broker_jump_host_split(cfg.jump_host.v[0], &host, &port, &user, &keyfile),
			 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 2222);
	assert_string_equal(user, "saw");
	assert_string_equal(keyfile, "/etc/saw/jump key");
	free(host);
	free(user);
	free(keyfile);
	assert_int_equal(broker_jump_host_split(cfg.jump_host.v[1], &host, &port, &user, &keyfile),
			 0);
	assert_string_equal(host, "192.0.2.7");
	assert_int_equal(port, 22);
	assert_string_equal(user, "j");
	assert_string_equal(keyfile, "/k");
	free(host);
	free(user);
	free(keyfile);
	broker_config_free(&cfg);

	/* malformed input: -1 and nothing to free */
	assert_int_equal(broker_corp_service_split("git", &name, &host, &port), -1);
	assert_null(name);
	assert_null(host);
	assert_int_equal(broker_corp_service_split("git git", &name, &host, &port), -1);
	assert_int_equal(broker_corp_service_split(NULL, &name, &host, &port), -1);
	assert_int_equal(broker_jump_host_split("j:22 saw", &host, &port, &user, &keyfile), -1);
	assert_null(host);
	assert_null(user);
	assert_null(keyfile);
	assert_int_equal(broker_jump_host_split("j:22  /k", &host, &port, &user, &keyfile), -1);
	assert_int_equal(broker_jump_host_split("j:22 u ", &host, &port, &user, &keyfile), -1);
	assert_int_equal(broker_jump_host_split("j u /k", &host, &port, &user, &keyfile), -1);
}

/* issue #4: the HTTP listener, the SSF transmitter, the admin API, KillCommand. */
static void
test_http_keywords(void **state)
{
	struct broker_config cfg;

	/* plain HTTP on loopback only */
	expect_ok(REQ "HttpListenAddress 127.0.0.1:8080\nHttpListenAddress [::1]:8080\n"
		      "HttpListenAddress localhost:9090\n",
		  &cfg);
	assert_int_equal(cfg.http_listen_address.n, 3);
	broker_config_free(&cfg);
	expect_error(REQ "HttpListenAddress 127.0.0.1:8080\nHttpListenAddress 0.0.0.0:8443\n",
		     "test.conf:6: HttpListenAddress: 0.0.0.0:8443 is not a loopback address: set "
		     "HttpTLSCertificate and HttpTLSKey (plain HTTP is accepted only on "
		     "127.0.0.0/8, [::1] and localhost)\n");
	expect_ok(REQ "HttpListenAddress 0.0.0.0:8443\nHttpTLSCertificate /c\nHttpTLSKey /k\n",
		  &cfg);
	broker_config_free(&cfg);
	expect_error(REQ "HttpTLSCertificate /c\n",
		     "test.conf:5: HttpTLSCertificate: HttpTLSKey is required with "
		     "HttpTLSCertificate\n");
	expect_error(REQ "HttpTLSKey /k\n",
		     "test.conf:5: HttpTLSKey: HttpTLSCertificate is required with HttpTLSKey\n");
	expect_error(REQ "HttpMaxRequests 0\n",
		     "test.conf:5: HttpMaxRequests: 0 is out of range: give a number between 1 and "
		     "100000\n");

	/* a transmitter other than the IdP needs its keys' address */
	expect_error(REQ "SSFTransmitterIssuer https://ssf.example.com\n",
		     "test.conf:5: SSFTransmitterIssuer: SSFTransmitterJWKS is required when the "
		     "transmitter is not OIDCIssuer (its signing keys are fetched from there)\n");
	expect_ok(REQ "SSFTransmitterIssuer https://idp.example.com\n", &cfg);
	broker_config_free(&cfg);
	expect_error(REQ "SSFTransmitterJWKS http://ssf.example.com/jwks\n",
		     "test.conf:5: SSFTransmitterJWKS: \"http://ssf.example.com/jwks\" must use "
		     "https:// (http:// is accepted only for localhost, 127.0.0.0/8 and [::1])\n");
	expect_ok(REQ "SSFTransmitterIssuer ssf-test\nSSFTransmitterJWKS "
		      "http://127.0.0.1:9/jwks\nSSFAudience aud\nAdminGroup admins\n"
		      "AdminAPIAudience api\n",
		  &cfg);
	assert_string_equal(cfg.ssf_transmitter_issuer, "ssf-test");
	assert_string_equal(cfg.admin_group, "admins");
	broker_config_free(&cfg);
	expect_error(REQ "AdminGroup \"a\tb\"\n",
		     "test.conf:5: AdminGroup: control characters are not allowed\n");

	/* KillCommand: words, run without a shell: an absolute path first */
	expect_ok(REQ "KillCommand /usr/bin/stop \"--why=kill switch\"\n", &cfg);
	assert_list(&cfg.kill_command, 2, "/usr/bin/stop", "--why=kill switch");
	broker_config_free(&cfg);
	expect_error(REQ "KillCommand stop-vm\n",
		     "test.conf:5: KillCommand: \"stop-vm\" is not an absolute path (the command "
		     "is run without a shell)\n");
}

/* Every keyword of the table is documented in saw-broker.conf(5). */
static void
test_manpage(void **state)
{
	const struct conf_keyword *kw;
	char path[4096], want[128], *text;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/conf/saw-broker.conf.5", srcdir());
	f = fopen(path, "r");
	assert_non_null(f);
	text = calloc(1, 256 * 1024);
	assert_non_null(text);
	len = fread(text, 1, 256 * 1024 - 1, f);
	fclose(f);
	assert_true(len > 0);
	for (kw = broker_config_table(); kw->name != NULL; kw++) {
		snprintf(want, sizeof(want), "\n.It Cm %s", kw->name);
		if (strstr(text, want) == NULL)
			fail_msg("%s is not documented in saw-broker.conf.5", kw->name);
	}
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_quotes),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_repeated),
		cmocka_unit_test(test_each_error),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_too_many_errors),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_file_size),
		cmocka_unit_test(test_issuer),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_dump_roundtrip_weird),
		cmocka_unit_test(test_dump_defaults),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_ints_bools),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_vis),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_split_helpers),
		cmocka_unit_test(test_http_keywords),
		cmocka_unit_test(test_manpage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
