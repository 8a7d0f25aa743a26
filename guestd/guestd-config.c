/*
 * saw-guestd configuration, declared once: the table below yields the defaults, the parser,
 * the -T dump and freeing (conf/conf.c does the work). saw-guestd.conf(5) documents every
 * keyword; keep the two in step.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/util.h>

#include "guestd/guestd-config.h"

static int
guestd_config_check_name(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[80];
	const char *p;

	for (p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			break;
	if (*p != '\0' || !isalnum((unsigned char)v[0]) || strlen(v) > 63) {
		snprintf(msg, msglen,
			 "\"%s\" is not a valid name (letters, digits, '.', '_', '-'; starting "
			 "with a letter or digit; at most 63 characters)",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

static int
guestd_config_check_user(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	if (strcmp(v, "root") == 0) {
		snprintf(msg, msglen,
			 "must not be root: sshd runs the AuthorizedKeysCommand as this "
			 "unprivileged account");
		return -1;
	}
	return guestd_config_check_name(kw, v, msg, msglen);
}

/* An IP literal (or localhost): guestd resolves nothing for its own sockets. */
static int
guestd_config_ip(const char *host, int *loopback)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0) {
		*loopback = 1;
		return 0;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		*loopback = (ntohl(a4.s_addr) >> 24) == 127;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6);
		return 0;
	}
	return -1;
}

static int
guestd_config_check_local(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char host[256], vis[80];
	int loopback;

	if (conf_address_split(v, host, sizeof(host), NULL) != 0 ||
	    guestd_config_ip(host, &loopback) != 0) {
		snprintf(msg, msglen, "\"%s\": the host must be an IP address (e.g. 127.0.0.1:22)",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

/* Invariant: guestd never listens on anything but loopback (workspaces have no inbound
 * ports; the proxy is for processes inside the workspace). */
static int
guestd_config_check_listen(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char host[256], vis[80];
	int loopback = 0;

	if (conf_address_split(v, host, sizeof(host), NULL) != 0 ||
	    guestd_config_ip(host, &loopback) != 0 || !loopback) {
		snprintf(msg, msglen,
			 "\"%s\" is not a loopback address: saw-guestd listens only on loopback "
			 "(127.0.0.0/8 or [::1])",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return 0;
}

static int
guestd_config_check_socket(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	struct sockaddr_un sun;

	if (strlen(v) >= sizeof(sun.sun_path)) {
		snprintf(msg, msglen, "path too long for a unix socket (at most %zu bytes)",
			 sizeof(sun.sun_path) - 1);
		return -1;
	}
	return 0;
}

/* "NAME /absolute/program [ARG…]": run without a shell (split on blanks). */
static int
guestd_config_check_command(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char name[64], prog[8];
	const char *sp = strchr(v, ' ');

	if (sp == NULL || (size_t)(sp - v) >= sizeof(name)) {
		snprintf(msg, msglen,
			 "expected \"NAME /path/to/program [ARG...]\" (quoted, one line)");
		return -1;
	}
	memcpy(name, v, (size_t)(sp - v));
	name[sp - v] = '\0';
	if (guestd_config_check_name(kw, name, msg, msglen) != 0)
		return -1;
	while (*sp == ' ')
		sp++;
	snprintf(prog, sizeof(prog), "%s", sp);
	if (prog[0] != '/') {
		snprintf(msg, msglen,
			 "the program must be an absolute path (it runs without a shell)");
		return -1;
	}
	return 0;
}

static int
guestd_config_check_landlock(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[80];

	if (strcmp(v, "required") == 0 || strcmp(v, "best-effort") == 0)
		return 0;
	snprintf(msg, msglen, "\"%s\": must be required or best-effort",
		 conf_vis(v, vis, sizeof(vis)));
	return -1;
}

/* An absolute path, or "none" (no spool: events wait in memory while offline). */
static int
guestd_config_check_spool(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[80];

	if (strcmp(v, "none") == 0 || v[0] == '/')
		return 0;
	snprintf(msg, msglen, "\"%s\": must be an absolute path or none",
		 conf_vis(v, vis, sizeof(vis)));
	return -1;
}

#define F(field) offsetof(struct guestd_config, field)

static const struct conf_keyword guestd_keywords[] = {
	{ .name = "BrokerAddress",
	  .type = CONF_ADDRESS,
	  .offset = F(broker_address),
	  .flags = CONF_REQUIRED },
	{ .name = "BrokerHostKey",
	  .type = CONF_PATH,
	  .offset = F(broker_host_key),
	  .flags = CONF_REQUIRED },
	{ .name = "WorkspaceName",
	  .type = CONF_STRING,
	  .offset = F(workspace_name),
	  .flags = CONF_REQUIRED,
	  .check = guestd_config_check_name },
	{ .name = "WorkspaceKey",
	  .type = CONF_PATH,
	  .offset = F(workspace_key),
	  .flags = CONF_REQUIRED },
	{ .name = "LocalSSH",
	  .type = CONF_ADDRESS,
	  .offset = F(local_ssh),
	  .def = "127.0.0.1:22",
	  .check = guestd_config_check_local },
	{ .name = "ControlSocket",
	  .type = CONF_PATH,
	  .offset = F(control_socket),
	  .def = "/run/saw/guestd.sock",
	  .check = guestd_config_check_socket },
	{ .name = "AuthorizedKeysUser",
	  .type = CONF_STRING,
	  .offset = F(authorized_keys_user),
	  .def = "nobody",
	  .check = guestd_config_check_user },
	{ .name = "ProxyListen",
	  .type = CONF_ADDRESS,
	  .offset = F(proxy_listen),
	  .def = "127.0.0.1:3128",
	  .check = guestd_config_check_listen },
	{ .name = "ProxyResolvConf",
	  .type = CONF_PATH,
	  .offset = F(proxy_resolv_conf),
	  .def = "/etc/resolv.conf" },
	{ .name = "ProxyThreads",
	  .type = CONF_INT,
	  .offset = F(proxy_threads),
	  .def = "0",
	  .min = 0,
	  .max = GUESTD_PROXY_THREADS_MAX },
	{ .name = "CredentialListen",
	  .type = CONF_ADDRESS,
	  .offset = F(credential_listen),
	  .check = guestd_config_check_listen },
	{ .name = "CredentialCAFile", .type = CONF_PATH, .offset = F(credential_ca_file) },
	{ .name = "CredentialCommand",
	  .type = CONF_STRING,
	  .offset = F(credential_command),
	  .flags = CONF_MULTI,
	  .check = guestd_config_check_command },
	{ .name = "CredentialCacheTTL",
	  .type = CONF_DURATION,
	  .offset = F(credential_cache_ttl),
	  .def = "5m",
	  .min = 1,
	  .max = 86400 },
	{ .name = "PolicyFile", .type = CONF_PATH, .offset = F(policy_file) },
	{ .name = "DecisionSocket",
	  .type = CONF_PATH,
	  .offset = F(decision_socket),
	  .def = "/run/saw/decide.sock",
	  .check = guestd_config_check_socket },
	{ .name = "SandboxLandlock",
	  .type = CONF_STRING,
	  .offset = F(sandbox_landlock),
	  .def = "required",
	  .check = guestd_config_check_landlock },
	{ .name = "Keepalive",
	  .type = CONF_DURATION,
	  .offset = F(keepalive),
	  .def = "15s",
	  .min = 1,
	  .max = 3600 },
	{ .name = "ReconnectMax",
	  .type = CONF_DURATION,
	  .offset = F(reconnect_max),
	  .def = "60s",
	  .min = 1,
	  .max = 86400 },
	{ .name = "AuditSpool",
	  .type = CONF_STRING,
	  .offset = F(audit_spool),
	  .def = GUESTD_DEFAULT_AUDIT_SPOOL,
	  .check = guestd_config_check_spool },
	{ .name = "AuditSpoolMax",
	  .type = CONF_SIZE,
	  .offset = F(audit_spool_max),
	  .def = "64M",
	  .min = 64 * 1024,
	  .max = 64LL * 1024 * 1024 * 1024 },
	{ .name = NULL },
};

const struct conf_keyword *
guestd_config_table(void)
{
	return guestd_keywords;
}

int
guestd_config_load_buffer(const char *name, const char *buf, size_t len, struct guestd_config *cfg,
			  FILE *errs)
{
	memset(cfg, 0, sizeof(*cfg));
	return conf_parse_buffer(guestd_keywords, cfg, name, buf, len, errs);
}

int
guestd_config_load(const char *path, struct guestd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	return conf_parse_file(guestd_keywords, cfg, path, stderr);
}

void
guestd_config_dump(const struct guestd_config *cfg, FILE *out)
{
	conf_dump(guestd_keywords, cfg, out);
}

int
guestd_config_sockaddr(const char *addr, struct sockaddr_storage *ss, int *len)
{
	char host[256], buf[300];
	unsigned int port;

	if (conf_address_split(addr, host, sizeof(host), &port) != 0)
		return -1;
	if (strcasecmp(host, "localhost") == 0)
		snprintf(buf, sizeof(buf), "127.0.0.1:%u", port);
	else
		snprintf(buf, sizeof(buf), "%s", addr);
	memset(ss, 0, sizeof(*ss));
	*len = (int)sizeof(*ss);
	return evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, len) == 0 ? 0 : -1;
}

void
guestd_config_free(struct guestd_config *cfg)
{
	conf_free(guestd_keywords, cfg);
}
