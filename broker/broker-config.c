/*
 * saw-brokerd configuration, declared once: the table below yields the defaults, the parser,
 * the -T dump and freeing (conf/conf.c does the work). saw-broker.conf(5) documents every
 * keyword; keep the two in step.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker-config.h"

/* JOSE signature algorithms we accept for ID tokens: asymmetric only. "none" would accept
 * unsigned tokens and HS* would make the client secret a verification key. */
static const char *const broker_config_algs[] = {
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
};

static int
broker_config_check_user(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[64];
	const char *p;

	if (strcmp(v, "root") == 0) {
		snprintf(msg, msglen, "must not be root: the broker drops to this account");
		return -1;
	}
	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			break;
	if (*p != '\0' || v[0] == '-' || strlen(v) > 32) {
		snprintf(msg, msglen, "\"%s\" is not a valid user name",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

static int
broker_config_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

/*
 * The issuer is where discovery, JWKS and the token endpoint are fetched from, so a
 * plain-text issuer would let anyone on the path mint identities. http:// is tolerated
 * only for a loopback IdP (tests, a local proxy).
 */
static int
broker_config_check_issuer(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[80], host[256];
	const char *auth, *end, *hend;
	size_t hn;
	int https;
	long long port;

	if (strncasecmp(v, "https://", 8) == 0) {
		https = 1;
		auth = v + 8;
	} else if (strncasecmp(v, "http://", 7) == 0) {
		https = 0;
		auth = v + 7;
	} else {
		snprintf(msg, msglen, "\"%s\" is not an https:// URL",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	if (strpbrk(v, "?#") != NULL) {
		snprintf(msg, msglen, "an issuer URL has no query or fragment");
		return -1;
	}
	end = auth + strcspn(auth, "/");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		snprintf(msg, msglen, "an issuer URL has no user name or password");
		return -1;
	}
	if (*auth == '[') {
		hend = memchr(auth, ']', (size_t)(end - auth));
		if (hend == NULL)
			goto badhost;
		auth++;
		hn = (size_t)(hend - auth);
		hend++;
	} else {
		hend = memchr(auth, ':', (size_t)(end - auth));
		if (hend == NULL)
			hend = end;
		hn = (size_t)(hend - auth);
	}
	if (hn == 0 || hn >= sizeof(host))
		goto badhost;
	memcpy(host, auth, hn);
	host[hn] = '\0';
	if (hend != end) {
		char pbuf[8];
		size_t pn = (size_t)(end - hend - 1);

		if (*hend != ':' || pn == 0 || pn >= sizeof(pbuf))
			goto badhost;
		memcpy(pbuf, hend + 1, pn);
		pbuf[pn] = '\0';
		if (pbuf[0] == '-' || conf_parse_int(pbuf, 1, 65535, &port) != 0)
			goto badhost;
	}
	if (!https && !broker_config_loopback(host)) {
		snprintf(msg, msglen,
			 "\"%s\" must use https:// (http:// is accepted only for localhost, "
			 "127.0.0.0/8 and [::1])",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
badhost:
	snprintf(msg, msglen, "\"%s\" has no valid host", conf_vis(v, vis, sizeof(vis)));
	return -1;
}

/* RFC 6749, 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static int
broker_config_check_scope(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[64];
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\') {
			snprintf(msg, msglen, "\"%s\" is not a valid OAuth scope",
				 conf_vis(v, vis, sizeof(vis)));
			return -1;
		}
	}
	return 0;
}

static int
broker_config_finish_scopes(const struct conf_keyword *kw, const void *field, char *msg,
			    size_t msglen)
{
	const struct conf_list *l = field;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], "openid") == 0)
			return 0;
	snprintf(msg, msglen,
		 "must include openid (the broker signs users in with OpenID Connect)");
	return -1;
}

static int
broker_config_check_alg(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[64];
	size_t i;

	for (i = 0; i < sizeof(broker_config_algs) / sizeof(broker_config_algs[0]); i++)
		if (strcmp(v, broker_config_algs[i]) == 0)
			return 0;
	if (strcmp(v, "EdDSA") == 0) {
		/* cjose 0.6.2 (Debian 12) has no OKP keys: an EdDSA token could never verify. */
		snprintf(msg, msglen,
			 "EdDSA is not supported by this build (cjose 0.6 has no "
			 "Ed25519 keys); use RS256 or ES256");
	} else if (strcasecmp(v, "none") == 0) {
		snprintf(msg, msglen, "\"%s\" is never allowed: ID tokens must be signed",
			 conf_vis(v, vis, sizeof(vis)));
	} else if (strncasecmp(v, "HS", 2) == 0) {
		snprintf(msg, msglen,
			 "\"%s\" is not allowed: HMAC algorithms would make the client secret a "
			 "verification key; use RS256 or ES256",
			 conf_vis(v, vis, sizeof(vis)));
	} else {
		snprintf(msg, msglen,
			 "unknown algorithm \"%s\" (use RS256, RS384, RS512, PS256, PS384, PS512, "
			 "ES256, ES384 or ES512; names are case-sensitive)",
			 conf_vis(v, vis, sizeof(vis)));
	}
	return -1;
}

/* MaxStartups begin[:rate:full], as in sshd: above begin unauthenticated connections are
 * refused with probability rate% rising linearly to 100% at full. */
static int
broker_config_parse_startups(const struct conf_keyword *kw, void *obj, int argc, char **argv,
			     char *msg, size_t msglen)
{
	struct broker_config *cfg = obj;
	char buf[64], vis[64];
	char *part[3], *save = NULL, *t;
	long long v[3];
	int n = 0, i;

	if (argc != 1) {
		snprintf(msg, msglen, "%s (expected begin[:rate:full], e.g. 10:30:100)",
			 argc == 0 ? "missing argument" : "too many arguments");
		return -1;
	}
	if (strlen(argv[0]) >= sizeof(buf) || argv[0][0] == ':' ||
	    argv[0][strlen(argv[0]) - 1] == ':' || strstr(argv[0], "::") != NULL)
		goto syntax;
	strcpy(buf, argv[0]);
	for (t = strtok_r(buf, ":", &save); t != NULL; t = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			goto syntax;
		part[n++] = t;
	}
	if (n != 1 && n != 3)
		goto syntax;
	for (i = 0; i < n; i++)
		if (conf_parse_int(part[i], 0, 1000000, &v[i]) != 0)
			goto syntax;
	if (n == 1) {
		/* a single number: refuse everything above it */
		v[2] = v[0];
		v[1] = 100;
	}
	if (v[0] < 1) {
		snprintf(msg, msglen, "begin must be at least 1");
		return -1;
	}
	if (v[0] > v[2]) {
		snprintf(msg, msglen, "begin (%lld) must not be larger than full (%lld)", v[0],
			 v[2]);
		return -1;
	}
	if (v[1] < 1 || v[1] > 100) {
		snprintf(msg, msglen, "rate must be a percentage between 1 and 100");
		return -1;
	}
	cfg->max_startups_begin = (int)v[0];
	cfg->max_startups_rate = (int)v[1];
	cfg->max_startups_full = (int)v[2];
	return 0;
syntax:
	snprintf(msg, msglen, "\"%s\" is not begin[:rate:full] (e.g. 10:30:100)",
		 conf_vis(argv[0], vis, sizeof(vis)));
	return -1;
}

static void
broker_config_dump_startups(const struct conf_keyword *kw, const void *obj, FILE *out)
{
	const struct broker_config *cfg = obj;

	fprintf(out, "%d:%d:%d", cfg->max_startups_begin, cfg->max_startups_rate,
		cfg->max_startups_full);
}

static int
broker_config_parse_penalty(const struct conf_keyword *kw, void *obj, int argc, char **argv,
			    char *msg, size_t msglen)
{
	struct broker_config *cfg = obj;
	char vis[64];
	long long failures, secs;

	if (argc != 2) {
		snprintf(msg, msglen, "expected FAILURES DURATION (e.g. 10 1m)");
		return -1;
	}
	if (conf_parse_int(argv[0], 1, 100000, &failures) != 0) {
		snprintf(msg, msglen, "\"%s\": FAILURES must be a number between 1 and 100000",
			 conf_vis(argv[0], vis, sizeof(vis)));
		return -1;
	}
	if (conf_parse_duration(argv[1], &secs) != 0 || secs < 1 || secs > 86400) {
		snprintf(msg, msglen, "\"%s\": DURATION must be between 1s and 1d (e.g. 1m)",
			 conf_vis(argv[1], vis, sizeof(vis)));
		return -1;
	}
	cfg->per_source_penalty_failures = (int)failures;
	cfg->per_source_penalty_time = secs;
	return 0;
}

static void
broker_config_dump_penalty(const struct conf_keyword *kw, const void *obj, FILE *out)
{
	const struct broker_config *cfg = obj;
	char buf[64];

	if (conf_format_duration(cfg->per_source_penalty_time, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "%lld", cfg->per_source_penalty_time);
	fprintf(out, "%d %s", cfg->per_source_penalty_failures, buf);
}

#define F(field) offsetof(struct broker_config, field)
#define DAY 86400LL

static const struct conf_keyword broker_keywords[] = {
	{ .name = "ListenAddress",
	  .type = CONF_ADDRESS,
	  .offset = F(listen_address),
	  .def = "0.0.0.0:22",
	  .flags = CONF_MULTI },
	{ .name = "HostKey",
	  .type = CONF_PATH,
	  .offset = F(host_key),
	  .flags = CONF_MULTI | CONF_REQUIRED },
	{ .name = "StateDatabase",
	  .type = CONF_PATH,
	  .offset = F(state_database),
	  .def = "/var/lib/saw/broker.db" },
	{ .name = "AuditLog",
	  .type = CONF_PATH,
	  .offset = F(audit_log),
	  .def = "/var/log/saw/audit.jsonl" },
	{ .name = "User",
	  .type = CONF_STRING,
	  .offset = F(user),
	  .def = "saw",
	  .check = broker_config_check_user },

	{ .name = "OIDCIssuer",
	  .type = CONF_STRING,
	  .offset = F(oidc_issuer),
	  .flags = CONF_REQUIRED,
	  .check = broker_config_check_issuer },
	{ .name = "OIDCClientID",
	  .type = CONF_STRING,
	  .offset = F(oidc_client_id),
	  .flags = CONF_REQUIRED },
	{ .name = "OIDCClientSecretFile", .type = CONF_PATH, .offset = F(oidc_client_secret_file) },
	{ .name = "OIDCScopes",
	  .type = CONF_WORDS,
	  .offset = F(oidc_scopes),
	  .def = "openid profile groups",
	  .flags = CONF_MULTI,
	  .check = broker_config_check_scope,
	  .finish = broker_config_finish_scopes },
	{ .name = "OIDCUsernameClaim",
	  .type = CONF_STRING,
	  .offset = F(oidc_username_claim),
	  .def = "preferred_username" },
	{ .name = "OIDCGroupsClaim",
	  .type = CONF_STRING,
	  .offset = F(oidc_groups_claim),
	  .def = "groups" },
	{ .name = "OIDCAllowedAlgorithms",
	  .type = CONF_WORDS,
	  .offset = F(oidc_algorithms),
	  .def = "RS256 ES256",
	  .flags = CONF_MULTI,
	  .check = broker_config_check_alg },
	{ .name = "OIDCTimeout",
	  .type = CONF_DURATION,
	  .offset = F(oidc_timeout),
	  .def = "10s",
	  .min = 1,
	  .max = 300 },
	{ .name = "RequiredGroup",
	  .type = CONF_STRING,
	  .offset = F(required_group),
	  .flags = CONF_REQUIRED },

	{ .name = "SessionMaxLifetime",
	  .type = CONF_DURATION,
	  .offset = F(session_max_lifetime),
	  .def = "8h",
	  .min = 1, /* seconds are useful in tests and demos; keep hours in production */
	  .max = 7 * DAY },
	{ .name = "SessionIdleTimeout",
	  .type = CONF_DURATION,
	  .offset = F(session_idle_timeout),
	  .def = "30m",
	  .min = 1,
	  .max = 7 * DAY },
	{ .name = "LoginGraceTime",
	  .type = CONF_DURATION,
	  .offset = F(login_grace_time),
	  .def = "5m",
	  .min = 1,
	  .max = 3600 },
	{ .name = "MaxStartups",
	  .type = CONF_CUSTOM,
	  .offset = F(max_startups_begin),
	  .def = "10:30:100",
	  .parse = broker_config_parse_startups,
	  .dump = broker_config_dump_startups },
	{ .name = "PerSourceMaxStartups",
	  .type = CONF_INT,
	  .offset = F(per_source_max_startups),
	  .def = "10",
	  .min = 1,
	  .max = 100000 },
	{ .name = "MaxAuthTries",
	  .type = CONF_INT,
	  .offset = F(max_auth_tries),
	  .def = "6",
	  .min = 1,
	  .max = 100 },
	{ .name = "PerSourcePenalty",
	  .type = CONF_CUSTOM,
	  .offset = F(per_source_penalty_failures),
	  .def = "10 1m",
	  .parse = broker_config_parse_penalty,
	  .dump = broker_config_dump_penalty },
	{ .name = NULL },
};

const struct conf_keyword *
broker_config_table(void)
{
	return broker_keywords;
}

int
broker_config_load_buffer(const char *name, const char *buf, size_t len, struct broker_config *cfg,
			  FILE *errs)
{
	memset(cfg, 0, sizeof(*cfg));
	return conf_parse_buffer(broker_keywords, cfg, name, buf, len, errs);
}

int
broker_config_load(const char *path, struct broker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	return conf_parse_file(broker_keywords, cfg, path, stderr);
}

void
broker_config_dump(const struct broker_config *cfg, FILE *out)
{
	conf_dump(broker_keywords, cfg, out);
}

void
broker_config_free(struct broker_config *cfg)
{
	conf_free(broker_keywords, cfg);
}
