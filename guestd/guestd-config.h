/*
 * saw-guestd configuration: the keyword table lives in guestd-config.c (declared once:
 * defaults, parser, -T dump), parsed by the shared conf/ parser. saw-guestd.conf(5)
 * documents every keyword; keep the two in step.
 *
 * Ownership: guestd_config_load() fills *cfg, which owns every string in it;
 * guestd_config_free() releases them. Durations are seconds.
 */
#ifndef SAW_GUESTD_CONFIG_H
#define SAW_GUESTD_CONFIG_H

#include <stdio.h>
#include "conf/conf.h"

#define GUESTD_DEFAULT_CONFIG "/etc/saw/guestd.conf"

struct guestd_config {
	char *broker_address;	    /* BrokerAddress HOST:PORT (required) */
	char *broker_host_key;	    /* BrokerHostKey PATH (required): the broker's public key */
	char *workspace_name;	    /* WorkspaceName (required) */
	char *workspace_key;	    /* WorkspaceKey PATH (required): our private key */
	char *local_ssh;	    /* LocalSSH HOST:PORT, default 127.0.0.1:22 */
	char *control_socket;	    /* ControlSocket PATH, default /run/saw/guestd.sock */
	char *authorized_keys_user; /* AuthorizedKeysUser NAME, default nobody */
	char *proxy_listen;	    /* ProxyListen HOST:PORT (loopback), default 127.0.0.1:3128 */
	char *proxy_resolv_conf;    /* ProxyResolvConf PATH, default /etc/resolv.conf */
	int proxy_threads;	  /* ProxyThreads N (1-GUESTD_PROXY_THREADS_MAX), 0: one per CPU */
	char *credential_listen;  /* CredentialListen HOST:PORT (loopback), default none */
	char *credential_ca_file; /* CredentialCAFile PATH: CAs for upstreams, default system */
	struct conf_list credential_command; /* CredentialCommand "NAME /path [arg…]" (multi) */
	long long credential_cache_ttl;	     /* CredentialCacheTTL, default 5m */
	char *policy_file;	   /* PolicyFile PATH (saw-policy(5)), default none: deny all */
	char *decision_socket;	   /* DecisionSocket PATH, default /run/saw/decide.sock */
	char *sandbox_landlock;	   /* SandboxLandlock required|best-effort, default required */
	long long keepalive;	   /* Keepalive, default 15s */
	long long reconnect_max;   /* ReconnectMax, default 60s */
	char *audit_spool;	   /* AuditSpool PATH|none, default GUESTD_DEFAULT_AUDIT_SPOOL */
	long long audit_spool_max; /* AuditSpoolMax SIZE, default 64M */
};

#define GUESTD_PROXY_THREADS_MAX 16 /* the egress proxy's event loops at most */
#define GUESTD_DEFAULT_AUDIT_SPOOL "/var/lib/saw-guestd/audit.spool"

int guestd_config_load(const char *path, struct guestd_config *cfg);
/* From memory (name is used in messages); for tests. errs may be NULL. */
int guestd_config_load_buffer(const char *name, const char *buf, size_t len,
			      struct guestd_config *cfg, FILE *errs);
void guestd_config_dump(const struct guestd_config *cfg, FILE *out);
void guestd_config_free(struct guestd_config *cfg);
const struct conf_keyword *guestd_config_table(void);

struct sockaddr_storage;
/* addr ("IP:PORT", "[V6]:PORT" or "localhost:PORT", as the checks above allow) as a socket
 * address. Returns 0 with *len set, or -1. */
int guestd_config_sockaddr(const char *addr, struct sockaddr_storage *ss, int *len);

#endif
