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
#include <sys/socket.h>
#include <sys/un.h>

#include "audit/audit.h"
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

/* ---- issue #3: admin socket, corporate services, jump hosts ------------------------------ */

/* A unix socket path must fit sockaddr_un.sun_path with its NUL. */
static int
broker_config_check_socket(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	struct sockaddr_un sun;

	if (strlen(v) >= sizeof(sun.sun_path)) {
		snprintf(msg, msglen, "a socket path must be shorter than %zu bytes",
			 sizeof(sun.sun_path));
		return -1;
	}
	return 0;
}

/* User and group names: portable POSIX names (what useradd/groupadd accept by default). */
static int
broker_config_valid_account(const char *v)
{
	const char *p;

	if (v[0] == '\0' || v[0] == '-' || strlen(v) > 32)
		return 0;
	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return 0;
	return 1;
}

static int
broker_config_check_group(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[64];

	if (!broker_config_valid_account(v)) {
		snprintf(msg, msglen, "\"%s\" is not a valid group name",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

/* Service names appear in policies and in the routing code's messages: keep them plain. */
#define BROKER_SERVICE_NAME_MAX 63

static int
broker_config_valid_service_name(const char *v)
{
	const char *p;

	if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= '0' && v[0] <= '9')) ||
	    strlen(v) > BROKER_SERVICE_NAME_MAX)
		return 0;
	for (p = v; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-'))
			return 0;
	return 1;
}

static int
broker_config_list_append(struct conf_list *l, char *s)
{
	char **v;

	if ((v = reallocarray(l->v, l->n + 1, sizeof(*v))) == NULL)
		return -1;
	l->v = v;
	l->v[l->n++] = s;
	return 0;
}

static void
broker_config_list_release(struct conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The name part of a raw "NAME HOST:PORT" / the address part of "HOST:PORT USER KEYFILE". */
static int
broker_config_first_word_is(const char *raw, const char *word)
{
	size_t n = strcspn(raw, " ");

	return n == strlen(word) && strncmp(raw, word, n) == 0;
}

/*
 * CorpService NAME HOST:PORT, repeatable. "CorpService none" (what -T prints when no
 * service is configured) adds nothing: conf_dump cannot print an empty custom keyword as a
 * comment, and "none" keeps the dump parseable.
 */
static int
broker_config_parse_corp(const struct conf_keyword *kw, void *obj, int argc, char **argv, char *msg,
			 size_t msglen)
{
	struct broker_config *cfg = obj;
	char vis[80], vis2[80], *raw;
	size_t i, len;

	if (argc == 1 && strcmp(argv[0], "none") == 0)
		return 0;
	if (argc != 2) {
		snprintf(msg, msglen, "expected NAME HOST:PORT (e.g. git git.corp.example:443)");
		return -1;
	}
	if (!broker_config_valid_service_name(argv[0])) {
		snprintf(msg, msglen,
			 "\"%s\" is not a valid service name (lower-case letters, digits, '.' and "
			 "'-', starting with a letter or digit, at most %d characters)",
			 conf_vis(argv[0], vis, sizeof(vis)), BROKER_SERVICE_NAME_MAX);
		return -1;
	}
	if (conf_address_split(argv[1], NULL, 0, NULL) != 0) {
		snprintf(msg, msglen, "%s: \"%s\" is not HOST:PORT (e.g. git.corp.example:443)",
			 argv[0], conf_vis(argv[1], vis2, sizeof(vis2)));
		return -1;
	}
	for (i = 0; i < cfg->corp_service.n; i++) {
		if (broker_config_first_word_is(cfg->corp_service.v[i], argv[0])) {
			snprintf(msg, msglen, "service \"%s\" is given twice", argv[0]);
			return -1;
		}
	}
	len = strlen(argv[0]) + 1 + strlen(argv[1]) + 1;
	if ((raw = malloc(len)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	snprintf(raw, len, "%s %s", argv[0], argv[1]);
	if (broker_config_list_append(&cfg->corp_service, raw) != 0) {
		free(raw);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return 0;
}

static void
broker_config_dump_corp(const struct conf_keyword *kw, const void *obj, FILE *out)
{
	const struct broker_config *cfg = obj;
	size_t i;

	if (cfg->corp_service.n == 0)
		fputs("none", out);
	/* conf_dump prints the first keyword and the last newline */
	for (i = 0; i < cfg->corp_service.n; i++)
		fprintf(out, "%s%s%s", i > 0 ? "\n" : "", i > 0 ? "CorpService " : "",
			cfg->corp_service.v[i]);
}

static void
broker_config_release_corp(const struct conf_keyword *kw, void *obj)
{
	broker_config_list_release(&((struct broker_config *)obj)->corp_service);
}

/*
 * AuditSink KIND ..., repeatable (audit/audit.h has the grammar). Stored canonically so that
 * -T prints what will be opened. Two sinks writing one file or one spool would break the
 * hash chain or the spool's single writer: refused. "AuditSink none" (what -T prints when
 * there is none) adds nothing.
 */
static int
broker_config_parse_audit_sink(const struct conf_keyword *kw, void *obj, int argc, char **argv,
			       char *msg, size_t msglen)
{
	struct broker_config *cfg = obj;
	struct audit_sink_cfg c, old;
	char buf[AUDIT_SINK_SPEC_MAX], *raw;
	size_t i;

	if (argc == 1 && strcmp(argv[0], "none") == 0)
		return 0;
	if (audit_sink_parse_argv(argc, argv, &c, msg, msglen) != 0)
		return -1;
	for (i = 0; i < cfg->audit_sink.n; i++) {
		if (audit_sink_parse(cfg->audit_sink.v[i], &old, buf, sizeof(buf)) != 0)
			continue;
		if (c.kind == AUDIT_SINK_FILE && old.kind == AUDIT_SINK_FILE &&
		    strcmp(c.path, old.path) == 0) {
			snprintf(msg, msglen, "file %s is given twice (one writer per file)",
				 c.path);
			return -1;
		}
		if (c.kind == AUDIT_SINK_HTTP && old.kind == AUDIT_SINK_HTTP &&
		    strcmp(c.spool, old.spool) == 0) {
			snprintf(msg, msglen, "spool %s is given twice (one spool per sink)",
				 c.spool);
			return -1;
		}
	}
	if (audit_sink_format(&c, buf, sizeof(buf)) != 0 || (raw = strdup(buf)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	if (broker_config_list_append(&cfg->audit_sink, raw) != 0) {
		free(raw);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return 0;
}

static void
broker_config_dump_audit_sink(const struct conf_keyword *kw, const void *obj, FILE *out)
{
	const struct broker_config *cfg = obj;
	size_t i;

	if (cfg->audit_sink.n == 0)
		fputs("none", out);
	/* conf_dump prints the first keyword and the last newline */
	for (i = 0; i < cfg->audit_sink.n; i++)
		fprintf(out, "%s%s%s", i > 0 ? "\n" : "", i > 0 ? "AuditSink " : "",
			cfg->audit_sink.v[i]);
}

static void
broker_config_release_audit_sink(const struct conf_keyword *kw, void *obj)
{
	broker_config_list_release(&((struct broker_config *)obj)->audit_sink);
}

static int
broker_config_check_failure_mode(const struct conf_keyword *kw, const char *v, char *msg,
				 size_t msglen)
{
	enum audit_failure_mode m;
	char vis[64];

	if (audit_failure_mode_parse(v, &m) != 0) {
		snprintf(msg, msglen,
			 "\"%s\" is not closed (refuse new logins when audit events cannot be "
			 "made durable) or open (carry on, log loudly)",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

int
broker_config_audit_sinks(const struct broker_config *cfg, struct audit_sink_cfg **sinks,
			  size_t *nsinks, enum audit_failure_mode *mode)
{
	char err[256];
	size_t i, n = cfg->audit_sink.n > 0 ? cfg->audit_sink.n : 1;

	*nsinks = 0;
	*mode = AUDIT_FAILURE_OPEN;
	if (cfg->audit_failure_mode != NULL)
		audit_failure_mode_parse(cfg->audit_failure_mode, mode);
	if ((*sinks = calloc(n, sizeof(**sinks))) == NULL)
		return -1;
	if (cfg->audit_sink.n == 0) {
		(*sinks)[0].kind = AUDIT_SINK_FILE;
		(*sinks)[0].keep = 1;
		snprintf((*sinks)[0].path, sizeof((*sinks)[0].path), "%s",
			 cfg->audit_log != NULL ? cfg->audit_log : "/var/log/saw/audit.jsonl");
		*nsinks = 1;
		return 0;
	}
	for (i = 0; i < cfg->audit_sink.n; i++)
		if (audit_sink_parse(cfg->audit_sink.v[i], &(*sinks)[*nsinks], err, sizeof(err)) ==
		    0)
			(*nsinks)++;
	return 0;
}

#define BROKER_MAX_JUMP_HOSTS 2

/* JumpHost HOST:PORT USER KEYFILE, at most two (an active one and a standby). */
static int
broker_config_parse_jump(const struct conf_keyword *kw, void *obj, int argc, char **argv, char *msg,
			 size_t msglen)
{
	struct broker_config *cfg = obj;
	char vis[80], *raw;
	size_t i, len;

	if (argc == 1 && strcmp(argv[0], "none") == 0)
		return 0;
	if (argc != 3) {
		snprintf(msg, msglen,
			 "expected HOST:PORT USER KEYFILE (e.g. jump1.corp.example:22 saw "
			 "/etc/saw/jump_key)");
		return -1;
	}
	if (conf_address_split(argv[0], NULL, 0, NULL) != 0) {
		snprintf(msg, msglen, "\"%s\" is not HOST:PORT (e.g. jump1.corp.example:22)",
			 conf_vis(argv[0], vis, sizeof(vis)));
		return -1;
	}
	if (!broker_config_valid_account(argv[1])) {
		snprintf(msg, msglen, "\"%s\" is not a valid user name",
			 conf_vis(argv[1], vis, sizeof(vis)));
		return -1;
	}
	if (argv[2][0] != '/') {
		snprintf(msg, msglen, "KEYFILE \"%s\" is not an absolute path",
			 conf_vis(argv[2], vis, sizeof(vis)));
		return -1;
	}
	for (i = 0; i < cfg->jump_host.n; i++) {
		if (broker_config_first_word_is(cfg->jump_host.v[i], argv[0])) {
			snprintf(msg, msglen, "%s is given twice",
				 conf_vis(argv[0], vis, sizeof(vis)));
			return -1;
		}
	}
	if (cfg->jump_host.n >= BROKER_MAX_JUMP_HOSTS) {
		snprintf(msg, msglen, "at most %d jump hosts (an active one and a standby)",
			 BROKER_MAX_JUMP_HOSTS);
		return -1;
	}
	len = strlen(argv[0]) + strlen(argv[1]) + strlen(argv[2]) + 3;
	if ((raw = malloc(len)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	snprintf(raw, len, "%s %s %s", argv[0], argv[1], argv[2]);
	if (broker_config_list_append(&cfg->jump_host, raw) != 0) {
		free(raw);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return 0;
}

static void
broker_config_dump_jump(const struct conf_keyword *kw, const void *obj, FILE *out)
{
	const struct broker_config *cfg = obj;
	const char *v, *sp1, *sp2;
	size_t i;

	if (cfg->jump_host.n == 0)
		fputs("none", out);
	for (i = 0; i < cfg->jump_host.n; i++) {
		v = cfg->jump_host.v[i];
		if (i > 0)
			fputs("\nJumpHost ", out);
		/* HOST:PORT and USER never need quotes; KEYFILE (the rest) may */
		if ((sp1 = strchr(v, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL) {
			fputs(v, out); /* cannot happen for a parsed value */
			continue;
		}
		fprintf(out, "%.*s ", (int)(sp2 - v), v);
		conf_print_arg(out, sp2 + 1);
	}
}

static void
broker_config_release_jump(const struct conf_keyword *kw, void *obj)
{
	broker_config_list_release(&((struct broker_config *)obj)->jump_host);
}

/* The jump hosts' host keys are always verified: JumpHost without a pinned known_hosts file
 * would have to trust on first use. */
static int
broker_config_finish_jump(const struct conf_keyword *kw, const void *field, char *msg,
			  size_t msglen)
{
	const struct broker_config *cfg =
		(const struct broker_config *)(const void *)((const char *)field - kw->offset);

	if (cfg->jump_host.n > 0 && cfg->jump_host_known_hosts == NULL) {
		snprintf(msg, msglen,
			 "JumpHostKnownHosts is required with JumpHost (the jump hosts' keys are "
			 "always verified against it)");
		return -1;
	}
	return 0;
}

int
broker_corp_service_split(const char *raw, char **name, char **host, int *port)
{
	char hbuf[256];
	const char *sp;
	unsigned int p;

	*name = NULL;
	*host = NULL;
	*port = 0;
	if (raw == NULL || (sp = strchr(raw, ' ')) == NULL || strlen(sp + 1) >= sizeof(hbuf) ||
	    conf_address_split(sp + 1, hbuf, sizeof(hbuf), &p) != 0)
		return -1;
	if ((*name = strndup(raw, (size_t)(sp - raw))) == NULL || (*host = strdup(hbuf)) == NULL) {
		free(*name);
		*name = NULL;
		return -1;
	}
	*port = (int)p;
	return 0;
}

int
broker_jump_host_split(const char *raw, char **host, int *port, char **user, char **keyfile)
{
	char abuf[300], hbuf[256];
	const char *sp1, *sp2;
	unsigned int p;

	*host = NULL;
	*user = NULL;
	*keyfile = NULL;
	*port = 0;
	/* HOST:PORT and USER have no spaces; KEYFILE is the rest (it may contain spaces) */
	if (raw == NULL || (sp1 = strchr(raw, ' ')) == NULL ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL || (size_t)(sp1 - raw) >= sizeof(abuf) ||
	    sp2 == sp1 + 1 || sp2[1] == '\0')
		return -1;
	memcpy(abuf, raw, (size_t)(sp1 - raw));
	abuf[sp1 - raw] = '\0';
	if (conf_address_split(abuf, hbuf, sizeof(hbuf), &p) != 0)
		return -1;
	if ((*host = strdup(hbuf)) == NULL ||
	    (*user = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1))) == NULL ||
	    (*keyfile = strdup(sp2 + 1)) == NULL) {
		free(*host);
		free(*user);
		*host = *user = NULL;
		return -1;
	}
	*port = (int)p;
	return 0;
}

/* ---- issue #4: the HTTP listener (webhooks, admin API), SSF, kill switch ------------------ */

#define BROKER_CFG(kw, field) \
	((const struct broker_config *)(const void *)((const char *)(field) - (kw)->offset))

/*
 * Revocation webhooks and the admin API carry bearer tokens and signed logout requests: in
 * clear text they could be read or replayed by anyone on the path. Plain HTTP is therefore
 * accepted only when every HttpListenAddress is a loopback address (a local TLS-terminating
 * proxy, tests).
 */
static int
broker_config_finish_http(const struct conf_keyword *kw, const void *field, char *msg,
			  size_t msglen)
{
	const struct broker_config *cfg = BROKER_CFG(kw, field);
	const struct conf_list *l = field;
	char host[256], vis[80];
	size_t i;

	if (cfg->http_tls_certificate != NULL && cfg->http_tls_key != NULL)
		return 0;
	for (i = 0; i < l->n; i++) {
		if (conf_address_split(l->v[i], host, sizeof(host), NULL) != 0 ||
		    !broker_config_loopback(host)) {
			snprintf(msg, msglen,
				 "%s is not a loopback address: set HttpTLSCertificate and "
				 "HttpTLSKey (plain HTTP is accepted only on 127.0.0.0/8, [::1] "
				 "and localhost)",
				 conf_vis(l->v[i], vis, sizeof(vis)));
			return -1;
		}
	}
	return 0;
}

static int
broker_config_finish_tls_cert(const struct conf_keyword *kw, const void *field, char *msg,
			      size_t msglen)
{
	if (BROKER_CFG(kw, field)->http_tls_key == NULL) {
		snprintf(msg, msglen, "HttpTLSKey is required with HttpTLSCertificate");
		return -1;
	}
	return 0;
}

static int
broker_config_finish_tls_key(const struct conf_keyword *kw, const void *field, char *msg,
			     size_t msglen)
{
	if (BROKER_CFG(kw, field)->http_tls_certificate == NULL) {
		snprintf(msg, msglen, "HttpTLSCertificate is required with HttpTLSKey");
		return -1;
	}
	return 0;
}

/* A transmitter other than the IdP has keys of its own: where are they? */
static int
broker_config_finish_ssf_issuer(const struct conf_keyword *kw, const void *field, char *msg,
				size_t msglen)
{
	const struct broker_config *cfg = BROKER_CFG(kw, field);

	if (cfg->ssf_transmitter_jwks == NULL && cfg->oidc_issuer != NULL &&
	    strcmp(cfg->ssf_transmitter_issuer, cfg->oidc_issuer) != 0) {
		snprintf(msg, msglen,
			 "SSFTransmitterJWKS is required when the transmitter is not OIDCIssuer "
			 "(its signing keys are fetched from there)");
		return -1;
	}
	return 0;
}

static int
broker_config_check_printable(const struct conf_keyword *kw, const char *v, char *msg,
			      size_t msglen)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(msg, msglen, "control characters are not allowed");
			return -1;
		}
	}
	if (*v == '\0' || strlen(v) > 255) {
		snprintf(msg, msglen, "must be 1 to 255 characters");
		return -1;
	}
	return 0;
}

/* KillCommand PATH [ARGS…]: executed directly (no shell), so PATH must be absolute. */
static int
broker_config_finish_kill(const struct conf_keyword *kw, const void *field, char *msg,
			  size_t msglen)
{
	const struct conf_list *l = field;
	char vis[80];

	if (l->n == 0 || l->v[0][0] != '/') {
		snprintf(msg, msglen,
			 "\"%s\" is not an absolute path (the command is run without a shell)",
			 l->n > 0 ? conf_vis(l->v[0], vis, sizeof(vis)) : "");
		return -1;
	}
	if (l->n > 32) {
		snprintf(msg, msglen, "at most 32 words (the command and its arguments)");
		return -1;
	}
	return 0;
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
	{ .name = "AuditSink",
	  .type = CONF_CUSTOM,
	  .offset = F(audit_sink),
	  .flags = CONF_MULTI,
	  .parse = broker_config_parse_audit_sink,
	  .dump = broker_config_dump_audit_sink,
	  .release = broker_config_release_audit_sink },
	{ .name = "AuditFailureMode",
	  .type = CONF_STRING,
	  .offset = F(audit_failure_mode),
	  .def = "open",
	  .check = broker_config_check_failure_mode },
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
	  /* Higher than sshd's 10:30:100: a browser login stays unauthenticated for minutes. */
	  .def = "50:30:500",
	  .parse = broker_config_parse_startups,
	  .dump = broker_config_dump_startups },
	{ .name = "PerSourceMaxStartups",
	  .type = CONF_INT,
	  .offset = F(per_source_max_startups),
	  .def = "50", /* many developers behind one NAT address log in at once */
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

	{ .name = "AdminSocket",
	  .type = CONF_PATH,
	  .offset = F(admin_socket),
	  .def = "/run/saw/broker.sock",
	  .check = broker_config_check_socket },
	{ .name = "AdminSocketGroup",
	  .type = CONF_STRING,
	  .offset = F(admin_socket_group),
	  .check = broker_config_check_group },
	{ .name = "CorpService",
	  .type = CONF_CUSTOM,
	  .offset = F(corp_service),
	  .flags = CONF_MULTI,
	  .parse = broker_config_parse_corp,
	  .dump = broker_config_dump_corp,
	  .release = broker_config_release_corp },
	{ .name = "JumpHost",
	  .type = CONF_CUSTOM,
	  .offset = F(jump_host),
	  .flags = CONF_MULTI,
	  .parse = broker_config_parse_jump,
	  .dump = broker_config_dump_jump,
	  .release = broker_config_release_jump,
	  .finish = broker_config_finish_jump },
	{ .name = "JumpHostKnownHosts", .type = CONF_PATH, .offset = F(jump_host_known_hosts) },
	{ .name = "WorkspaceKeepalive",
	  .type = CONF_DURATION,
	  .offset = F(workspace_keepalive),
	  .def = "15s",
	  .min = 1,
	  .max = 600 },
	{ .name = "WorkspaceAuditRate",
	  .type = CONF_INT,
	  .offset = F(workspace_audit_rate),
	  .def = "500",
	  .min = 1,
	  .max = 1000000 },
	{ .name = "WorkspaceAuditBurst",
	  .type = CONF_INT,
	  .offset = F(workspace_audit_burst),
	  .def = "5000",
	  .min = 1,
	  .max = 10000000 },

	{ .name = "HttpListenAddress",
	  .type = CONF_ADDRESS,
	  .offset = F(http_listen_address),
	  .flags = CONF_MULTI,
	  .finish = broker_config_finish_http },
	{ .name = "HttpTLSCertificate",
	  .type = CONF_PATH,
	  .offset = F(http_tls_certificate),
	  .finish = broker_config_finish_tls_cert },
	{ .name = "HttpTLSKey",
	  .type = CONF_PATH,
	  .offset = F(http_tls_key),
	  .finish = broker_config_finish_tls_key },
	{ .name = "HttpMaxRequests",
	  .type = CONF_INT,
	  .offset = F(http_max_requests),
	  .def = "64",
	  .min = 1,
	  .max = 100000 },
	{ .name = "SSFTransmitterIssuer",
	  .type = CONF_STRING,
	  .offset = F(ssf_transmitter_issuer),
	  .check = broker_config_check_printable,
	  .finish = broker_config_finish_ssf_issuer },
	{ .name = "SSFTransmitterJWKS",
	  .type = CONF_STRING,
	  .offset = F(ssf_transmitter_jwks),
	  .check = broker_config_check_issuer },
	{ .name = "SSFAudience",
	  .type = CONF_STRING,
	  .offset = F(ssf_audience),
	  .check = broker_config_check_printable },
	{ .name = "AdminGroup",
	  .type = CONF_STRING,
	  .offset = F(admin_group),
	  .check = broker_config_check_printable },
	{ .name = "AdminAPIAudience",
	  .type = CONF_STRING,
	  .offset = F(admin_api_audience),
	  .check = broker_config_check_printable },
	{ .name = "KillCommand",
	  .type = CONF_WORDS,
	  .offset = F(kill_command),
	  .finish = broker_config_finish_kill },
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
