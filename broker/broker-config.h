/*
 * saw-brokerd configuration: the keyword table lives in broker-config.c (declared once:
 * defaults, parser, -T dump all come from it), parsed by the shared conf/ parser.
 *
 * Ownership: broker_config_load() fills *cfg, which owns every string/list in it;
 * broker_config_free() releases them (secrets wiped). Durations are seconds.
 */
#ifndef SAW_BROKER_CONFIG_H
#define SAW_BROKER_CONFIG_H

#include <stdio.h>
#include "audit/audit.h"
#include "conf/conf.h"

#define BROKER_DEFAULT_CONFIG "/etc/saw/broker.conf"

struct broker_config {
	struct conf_list
		listen_address;	     /* ListenAddress HOST:PORT (repeatable), default 0.0.0.0:22 */
	struct conf_list host_key;   /* HostKey PATH (repeatable, required) */
	char *state_database;	     /* StateDatabase PATH, default /var/lib/saw/broker.db */
	char *audit_log;	     /* AuditLog PATH, default /var/log/saw/audit.jsonl: one file
				      sink, used only when no AuditSink is given */
	struct conf_list audit_sink; /* AuditSink KIND ... (repeatable): canonical descriptions
					(audit_sink_format()), validated by audit_sink_parse() */
	char *audit_failure_mode;    /* AuditFailureMode closed|open, default open */
	char *user; /* User NAME: account to drop to when started as root, default saw */

	char *oidc_issuer;		  /* OIDCIssuer URL (required; https unless loopback) */
	char *oidc_client_id;		  /* OIDCClientID (required) */
	char *oidc_client_secret_file;	  /* OIDCClientSecretFile PATH (optional) */
	struct conf_list oidc_scopes;	  /* OIDCScopes, default "openid profile groups" */
	char *oidc_username_claim;	  /* OIDCUsernameClaim, default preferred_username */
	char *oidc_groups_claim;	  /* OIDCGroupsClaim, default groups */
	struct conf_list oidc_algorithms; /* OIDCAllowedAlgorithms, default RS256 ES256 */
	long long oidc_timeout;		  /* OIDCTimeout, default 10s: each IdP HTTP request */
	char *required_group;		  /* RequiredGroup (required) */

	long long session_max_lifetime; /* SessionMaxLifetime, default 8h */
	long long session_idle_timeout; /* SessionIdleTimeout, default 30m */
	long long login_grace_time; /* LoginGraceTime, default 5m (device flow needs a browser) */
	int max_startups_begin;	    /* MaxStartups begin:rate:full, default 50:30:500 */
	int max_startups_rate;
	int max_startups_full;
	int per_source_max_startups;	 /* PerSourceMaxStartups, default 10 */
	int max_auth_tries;		 /* MaxAuthTries per connection, default 6 */
	int per_source_penalty_failures; /* PerSourcePenalty FAILURES DURATION, default 10 1m: */
	long long
		per_source_penalty_time; /* that many failed logins from one address → refused for DURATION */
	/* issue #3: workspaces, tunnels, jump hosts */
	char *admin_socket;	       /* AdminSocket PATH, default /run/saw/broker.sock */
	char *admin_socket_group;      /* AdminSocketGroup NAME: may use the socket besides root */
	struct conf_list corp_service; /* CorpService NAME HOST:PORT (repeatable): raw
					  "NAME HOST:PORT" strings, validated by the parser */
	struct conf_list jump_host;    /* JumpHost HOST:PORT USER KEYFILE (repeatable, at most 2):
					  raw "HOST:PORT USER KEYFILE" strings, validated */
	char *jump_host_known_hosts;   /* JumpHostKnownHosts PATH (required if JumpHost is set) */
	long long workspace_keepalive; /* WorkspaceKeepalive, default 15s: dead-peer detection */
	int workspace_audit_rate;      /* WorkspaceAuditRate, default 500: guestd events/s … */
	int workspace_audit_burst;     /* WorkspaceAuditBurst, default 5000: … with this burst */
	/* issue #4: revocation webhooks, the admin HTTP API, the kill switch */
	struct conf_list http_listen_address; /* HttpListenAddress HOST:PORT (repeatable); none:
						 no HTTP listener */
	char *http_tls_certificate;	      /* HttpTLSCertificate PATH (PEM chain) */
	char *http_tls_key;	       /* HttpTLSKey PATH (PEM); plain HTTP only on loopback */
	int http_max_requests;	       /* HttpMaxRequests, default 64: in flight, then 503 */
	char *ssf_transmitter_issuer;  /* SSFTransmitterIssuer, default OIDCIssuer */
	char *ssf_transmitter_jwks;    /* SSFTransmitterJWKS URL, default the IdP's JWKS */
	char *ssf_audience;	       /* SSFAudience, default OIDCClientID */
	char *admin_group;	       /* AdminGroup: the IdP group the admin HTTP API requires */
	char *admin_api_audience;      /* AdminAPIAudience, default OIDCClientID */
	struct conf_list kill_command; /* KillCommand PATH [ARGS…]: run with the workspace name
					  appended (no shell) */
};

/* Parse path into cfg. All errors are printed to stderr as "file:line: Keyword: message"
 * (every error of the file, not just the first). Returns 0, or -1 if any error. */
int broker_config_load(const char *path, struct broker_config *cfg);
/* Same, from memory (name is used in messages); for tests and the fuzzer. errs may be NULL. */
int broker_config_load_buffer(const char *name, const char *buf, size_t len,
			      struct broker_config *cfg, FILE *errs);
/* Effective configuration, one "Keyword value" per line, parseable back to the same cfg. */
void broker_config_dump(const struct broker_config *cfg, FILE *out);
void broker_config_free(struct broker_config *cfg);
/*
 * Split the raw list entries of corp_service ("NAME HOST:PORT") and jump_host
 * ("HOST:PORT USER KEYFILE"; KEYFILE may contain spaces) into their parts. HOST comes
 * without IPv6 brackets. The outputs are malloc'd and owned by the caller (NULL on error).
 * Returns 0, or -1 if raw is malformed (never for an entry the parser accepted) or out of
 * memory.
 */
int broker_corp_service_split(const char *raw, char **name, char **host, int *port);
int broker_jump_host_split(const char *raw, char **host, int *port, char **user, char **keyfile);
/*
 * The audit sinks to open (audit_open_sinks()): every AuditSink, or one file sink at
 * AuditLog when none is given; and the AuditFailureMode. *sinks is malloc'd (caller frees;
 * it holds no pointers). Returns 0, or -1 if out of memory (never for a parsed config).
 */
int broker_config_audit_sinks(const struct broker_config *cfg, struct audit_sink_cfg **sinks,
			      size_t *nsinks, enum audit_failure_mode *mode);
/* The keyword table itself (terminated by a NULL name), e.g. for tests and documentation. */
const struct conf_keyword *broker_config_table(void);

#endif
