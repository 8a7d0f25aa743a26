/*
 * Sink descriptions: "AuditSink file|syslog|http ..." parsed into struct audit_sink_cfg and
 * printed back canonically (audit.h). Self-contained so that any daemon's configuration
 * table can accept the keyword (a check hook calls audit_sink_parse()); sizes and durations
 * use the configuration parser's syntax (64K, 1M; 30s, 1d).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>

#include "audit/audit.h"
#include "conf/conf.h"

#define SINK_MAX_ARGS 16

#define SINK_DEFAULT_KEEP 10
#define SINK_DEFAULT_SPOOL_MAX (256LL * 1024 * 1024)
#define SINK_DEFAULT_BATCH 500
#define SINK_DEFAULT_RETRY_MAX 60
#define SINK_DEFAULT_TIMEOUT 10
#define SINK_DEFAULT_FACILITY (LOG_AUTHPRIV >> 3)

static const struct {
	const char *name;
	int code;
} sink_facilities[] = {
	{ "auth", LOG_AUTH >> 3 },     { "authpriv", LOG_AUTHPRIV >> 3 },
	{ "daemon", LOG_DAEMON >> 3 }, { "user", LOG_USER >> 3 },
	{ "local0", LOG_LOCAL0 >> 3 }, { "local1", LOG_LOCAL1 >> 3 },
	{ "local2", LOG_LOCAL2 >> 3 }, { "local3", LOG_LOCAL3 >> 3 },
	{ "local4", LOG_LOCAL4 >> 3 }, { "local5", LOG_LOCAL5 >> 3 },
	{ "local6", LOG_LOCAL6 >> 3 }, { "local7", LOG_LOCAL7 >> 3 },
};

static const char *
sink_facility_name(int code)
{
	size_t i;

	for (i = 0; i < sizeof(sink_facilities) / sizeof(sink_facilities[0]); i++)
		if (sink_facilities[i].code == code)
			return sink_facilities[i].name;
	return NULL;
}

/* Copies s for a message: control and non-ASCII bytes as '?', long values cut. */
static const char *
sink_vis(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 4 < len; i++)
		buf[i] = (s[i] >= ' ' && s[i] <= '~') ? s[i] : '?';
	if (s[i] != '\0' && len > 4) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int
sink_copy(char *dst, size_t dstlen, const char *v, const char *what, char *err, size_t errlen)
{
	if (strlen(v) >= dstlen) {
		snprintf(err, errlen, "%s is too long (at most %zu bytes)", what, dstlen - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
sink_path(char *dst, size_t dstlen, const char *v, const char *what, char *err, size_t errlen)
{
	char vis[64];

	if (v[0] != '/') {
		snprintf(err, errlen, "%s \"%s\" must be an absolute path", what,
			 sink_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return sink_copy(dst, dstlen, v, what, err, errlen);
}

static int
sink_loopback(const char *host)
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
 * Events carry identities and addresses: plain http is accepted only to a loopback
 * collector (a local forwarder, tests).
 */
static int
sink_url(struct audit_sink_cfg *out, const char *v, char *err, size_t errlen)
{
	char vis[80], host[256];
	const char *auth, *end, *hend;
	size_t i, hn;

	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f) {
			snprintf(err, errlen, "URL \"%s\" contains blanks or control characters",
				 sink_vis(v, vis, sizeof(vis)));
			return -1;
		}
	if (strncasecmp(v, "https://", 8) == 0)
		auth = v + 8;
	else if (strncasecmp(v, "http://", 7) == 0)
		auth = v + 7;
	else {
		snprintf(err, errlen,
			 "URL \"%s\" must start with https:// (or http:// to loopback)",
			 sink_vis(v, vis, sizeof(vis)));
		return -1;
	}
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		snprintf(err, errlen, "URL must not carry credentials; use token-file=");
		return -1;
	}
	if (*auth == '[') {
		hend = memchr(auth, ']', (size_t)(end - auth));
		if (hend == NULL) {
			snprintf(err, errlen, "URL \"%s\" has no host",
				 sink_vis(v, vis, sizeof(vis)));
			return -1;
		}
		auth++;
	} else {
		hend = auth + strcspn(auth, ":/?#");
	}
	hn = (size_t)(hend - auth);
	if (hn == 0 || hn >= sizeof(host)) {
		snprintf(err, errlen, "URL \"%s\" has no host", sink_vis(v, vis, sizeof(vis)));
		return -1;
	}
	memcpy(host, auth, hn);
	host[hn] = '\0';
	if (strncasecmp(v, "http://", 7) == 0 && !sink_loopback(host)) {
		snprintf(err, errlen,
			 "URL \"%s\": plain http only to a loopback address; use https",
			 sink_vis(v, vis, sizeof(vis)));
		return -1;
	}
	return sink_copy(out->url, sizeof(out->url), v, "URL", err, errlen);
}

static int
sink_size(const char *v, long long min, long long *out, const char *what, char *err, size_t errlen)
{
	char vis[64], b[32];

	if (conf_parse_size(v, out) != 0 || *out < min) {
		conf_format_size(min, b, sizeof(b));
		snprintf(err, errlen, "%s \"%s\" is not a size of at least %s (e.g. 64M)", what,
			 sink_vis(v, vis, sizeof(vis)), b);
		return -1;
	}
	return 0;
}

static int
sink_duration(const char *v, long long min, long long max, long long *out, const char *what,
	      char *err, size_t errlen)
{
	char vis[64], a[32], b[32];

	if (conf_parse_duration(v, out) != 0 || *out < min || *out > max) {
		conf_format_duration(min, a, sizeof(a));
		conf_format_duration(max, b, sizeof(b));
		snprintf(err, errlen, "%s \"%s\" is not a duration between %s and %s", what,
			 sink_vis(v, vis, sizeof(vis)), a, b);
		return -1;
	}
	return 0;
}

static int
sink_int(const char *v, long long min, long long max, int *out, const char *what, char *err,
	 size_t errlen)
{
	char vis[64];
	long long n;

	if (conf_parse_int(v, min, max, &n) != 0) {
		snprintf(err, errlen, "%s \"%s\" is not a number from %lld to %lld", what,
			 sink_vis(v, vis, sizeof(vis)), min, max);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static void
sink_defaults(struct audit_sink_cfg *out)
{
	memset(out, 0, sizeof(*out));
	out->keep = SINK_DEFAULT_KEEP;
	out->facility = SINK_DEFAULT_FACILITY;
	out->format = AUDIT_HTTP_JSON;
	out->spool_max = SINK_DEFAULT_SPOOL_MAX;
	out->batch = SINK_DEFAULT_BATCH;
	out->retry_max = SINK_DEFAULT_RETRY_MAX;
	out->timeout = SINK_DEFAULT_TIMEOUT;
}

/* One name=value option of the sink's kind. */
static int
sink_option(struct audit_sink_cfg *out, const char *name, const char *v, char *err, size_t errlen)
{
	char vis[64];
	size_t i;

	switch (out->kind) {
	case AUDIT_SINK_FILE:
		if (strcmp(name, "rotate") == 0) {
			if (sink_size(v, 0, &out->rotate_size, "rotate", err, errlen) == -1)
				return -1;
			if (out->rotate_size > 0 && out->rotate_size < 4096) {
				snprintf(err, errlen, "rotate must be 0 (off) or at least 4K");
				return -1;
			}
			return 0;
		}
		if (strcmp(name, "rotate-every") == 0)
			return sink_duration(v, 0, 366LL * 86400, &out->rotate_secs, "rotate-every",
					     err, errlen);
		if (strcmp(name, "keep") == 0)
			return sink_int(v, 1, 1000, &out->keep, "keep", err, errlen);
		break;
	case AUDIT_SINK_SYSLOG:
		if (strcmp(name, "socket") == 0)
			return sink_path(out->socket, sizeof(out->socket), v, "socket", err,
					 errlen);
		if (strcmp(name, "facility") == 0) {
			for (i = 0; i < sizeof(sink_facilities) / sizeof(sink_facilities[0]); i++)
				if (strcasecmp(v, sink_facilities[i].name) == 0) {
					out->facility = sink_facilities[i].code;
					return 0;
				}
			snprintf(err, errlen,
				 "facility \"%s\" is not one of auth, authpriv, daemon, user, "
				 "local0..local7",
				 sink_vis(v, vis, sizeof(vis)));
			return -1;
		}
		if (strcmp(name, "app") == 0) {
			for (i = 0; v[i] != '\0'; i++)
				if (v[i] <= ' ' || v[i] > '~')
					break;
			if (v[i] != '\0' || i == 0) {
				snprintf(err, errlen,
					 "app \"%s\" must be printable ASCII without "
					 "blanks",
					 sink_vis(v, vis, sizeof(vis)));
				return -1;
			}
			return sink_copy(out->app, sizeof(out->app), v, "app", err, errlen);
		}
		break;
	case AUDIT_SINK_HTTP:
		if (strcmp(name, "format") == 0) {
			if (strcasecmp(v, "json") == 0)
				out->format = AUDIT_HTTP_JSON;
			else if (strcasecmp(v, "hec") == 0)
				out->format = AUDIT_HTTP_HEC;
			else {
				snprintf(err, errlen, "format \"%s\" is not json or hec",
					 sink_vis(v, vis, sizeof(vis)));
				return -1;
			}
			return 0;
		}
		if (strcmp(name, "token-file") == 0)
			return sink_path(out->token_file, sizeof(out->token_file), v, "token-file",
					 err, errlen);
		if (strcmp(name, "spool") == 0)
			return sink_path(out->spool, sizeof(out->spool), v, "spool", err, errlen);
		if (strcmp(name, "spool-max") == 0)
			return sink_size(v, 64 * 1024, &out->spool_max, "spool-max", err, errlen);
		if (strcmp(name, "batch") == 0)
			return sink_int(v, 1, 10000, &out->batch, "batch", err, errlen);
		if (strcmp(name, "retry-max") == 0)
			return sink_duration(v, 1, 86400, &out->retry_max, "retry-max", err,
					     errlen);
		if (strcmp(name, "timeout") == 0)
			return sink_duration(v, 1, 600, &out->timeout, "timeout", err, errlen);
		break;
	}
	snprintf(err, errlen, "unknown option \"%s\" for a %s sink",
		 sink_vis(name, vis, sizeof(vis)),
		 out->kind == AUDIT_SINK_FILE	? "file" :
		 out->kind == AUDIT_SINK_SYSLOG ? "syslog" :
						  "http");
	return -1;
}

int
audit_sink_parse_argv(int argc, char *const *argv, struct audit_sink_cfg *out, char *err,
		      size_t errlen)
{
	char vis[64], name[32], seen[SINK_MAX_ARGS][32];
	const char *eq;
	int i, j, first, nseen = 0;

	sink_defaults(out);
	if (argc < 1) {
		snprintf(err, errlen, "expected file, syslog or http");
		return -1;
	}
	if (argc > SINK_MAX_ARGS) {
		snprintf(err, errlen, "too many arguments");
		return -1;
	}
	if (strcasecmp(argv[0], "file") == 0)
		out->kind = AUDIT_SINK_FILE;
	else if (strcasecmp(argv[0], "syslog") == 0)
		out->kind = AUDIT_SINK_SYSLOG;
	else if (strcasecmp(argv[0], "http") == 0)
		out->kind = AUDIT_SINK_HTTP;
	else {
		snprintf(err, errlen, "\"%s\" is not a sink kind (file, syslog or http)",
			 sink_vis(argv[0], vis, sizeof(vis)));
		return -1;
	}
	first = 1;
	if (out->kind == AUDIT_SINK_FILE) {
		if (argc < 2 || strchr(argv[1], '=') != NULL) {
			snprintf(err, errlen,
				 "a file sink needs a PATH: file PATH [rotate=SIZE] "
				 "[rotate-every=DURATION] [keep=N]");
			return -1;
		}
		if (sink_path(out->path, sizeof(out->path), argv[1], "PATH", err, errlen) == -1)
			return -1;
		first = 2;
	} else if (out->kind == AUDIT_SINK_HTTP) {
		if (argc < 2 || strchr(argv[1], '=') != NULL) {
			snprintf(err, errlen,
				 "an http sink needs a URL: http URL format=json|hec "
				 "spool=PATH [token-file=PATH] [spool-max=SIZE]");
			return -1;
		}
		if (sink_url(out, argv[1], err, errlen) == -1)
			return -1;
		first = 2;
	}
	for (i = 0; i < argc; i++)
		for (j = 0; argv[i][j] != '\0'; j++)
			if ((unsigned char)argv[i][j] < ' ' || argv[i][j] == 0x7f) {
				snprintf(err, errlen, "control character in argument %d", i + 1);
				return -1;
			}
	for (i = first; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (eq == NULL || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(name)) {
			snprintf(err, errlen, "\"%s\" is not an option (name=value)",
				 sink_vis(argv[i], vis, sizeof(vis)));
			return -1;
		}
		memcpy(name, argv[i], (size_t)(eq - argv[i]));
		name[eq - argv[i]] = '\0';
		for (j = 0; name[j] != '\0'; j++)
			name[j] = (char)tolower((unsigned char)name[j]);
		for (j = 0; j < nseen; j++)
			if (strcmp(seen[j], name) == 0) {
				snprintf(err, errlen, "option %s given twice", name);
				return -1;
			}
		memcpy(seen[nseen++], name, sizeof(name));
		if (sink_option(out, name, eq + 1, err, errlen) == -1)
			return -1;
	}
	if (out->kind == AUDIT_SINK_HTTP) {
		if (out->spool[0] == '\0') {
			snprintf(err, errlen, "an http sink needs spool=PATH (its durable queue)");
			return -1;
		}
		if (out->format == AUDIT_HTTP_HEC && out->token_file[0] == '\0') {
			snprintf(err, errlen, "format=hec needs token-file=PATH (the HEC token)");
			return -1;
		}
	}
	return 0;
}

/* Splits spec into words: blanks separate, "..." quotes (with \" and \\). */
int
audit_sink_parse(const char *spec, struct audit_sink_cfg *out, char *err, size_t errlen)
{
	char buf[AUDIT_SINK_SPEC_MAX], *argv[SINK_MAX_ARGS + 1], *w;
	const char *p;
	int argc = 0;

	if (spec == NULL || strlen(spec) >= sizeof(buf)) {
		sink_defaults(out);
		snprintf(err, errlen, "sink description too long");
		return -1;
	}
	w = buf;
	p = spec;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (argc == SINK_MAX_ARGS + 1) {
			sink_defaults(out);
			snprintf(err, errlen, "too many arguments");
			return -1;
		}
		argv[argc++] = w;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0') {
					sink_defaults(out);
					snprintf(err, errlen, "unterminated quote");
					return -1;
				}
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				*w++ = *p;
			}
			p++;
			if (*p != '\0' && *p != ' ' && *p != '\t') {
				sink_defaults(out);
				snprintf(err, errlen, "a quoted argument must end at a blank");
				return -1;
			}
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t') {
				if ((unsigned char)*p < ' ' || *p == 0x7f) {
					sink_defaults(out);
					snprintf(err, errlen,
						 "control character in sink description");
					return -1;
				}
				*w++ = *p++;
			}
		}
		*w++ = '\0';
	}
	return audit_sink_parse_argv(argc, argv, out, err, errlen);
}

/* Appends one argument, quoted if needed. Returns 0 or -1 when buf is full. */
static int
sink_put(char *buf, size_t len, size_t *pos, const char *prefix, const char *v)
{
	bool quote = *v == '\0' || strpbrk(v, " \t\"\\#") != NULL;
	const char *p;
	size_t need = strlen(prefix) + strlen(v) * 2 + 4;

	if (*pos + need >= len)
		return -1;
	if (*pos > 0)
		buf[(*pos)++] = ' ';
	/* The quote opens the whole word ("name=a b"): only a leading quote quotes. */
	if (quote)
		buf[(*pos)++] = '"';
	memcpy(buf + *pos, prefix, strlen(prefix));
	*pos += strlen(prefix);
	for (p = v; *p != '\0'; p++) {
		if (quote && (*p == '"' || *p == '\\'))
			buf[(*pos)++] = '\\';
		buf[(*pos)++] = *p;
	}
	if (quote)
		buf[(*pos)++] = '"';
	buf[*pos] = '\0';
	return 0;
}

int
audit_sink_format(const struct audit_sink_cfg *c, char *buf, size_t len)
{
	char v[64];
	size_t pos = 0;
	int rc = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	switch (c->kind) {
	case AUDIT_SINK_FILE:
		rc |= sink_put(buf, len, &pos, "", "file");
		rc |= sink_put(buf, len, &pos, "", c->path);
		if (c->rotate_size > 0) {
			conf_format_size(c->rotate_size, v, sizeof(v));
			rc |= sink_put(buf, len, &pos, "rotate=", v);
		}
		if (c->rotate_secs > 0) {
			conf_format_duration(c->rotate_secs, v, sizeof(v));
			rc |= sink_put(buf, len, &pos, "rotate-every=", v);
		}
		snprintf(v, sizeof(v), "%d", c->keep);
		rc |= sink_put(buf, len, &pos, "keep=", v);
		break;
	case AUDIT_SINK_SYSLOG:
		rc |= sink_put(buf, len, &pos, "", "syslog");
		if (c->socket[0] != '\0')
			rc |= sink_put(buf, len, &pos, "socket=", c->socket);
		rc |= sink_put(buf, len, &pos, "facility=",
			       sink_facility_name(c->facility) ? sink_facility_name(c->facility) :
								 "authpriv");
		if (c->app[0] != '\0')
			rc |= sink_put(buf, len, &pos, "app=", c->app);
		break;
	case AUDIT_SINK_HTTP:
		rc |= sink_put(buf, len, &pos, "", "http");
		rc |= sink_put(buf, len, &pos, "", c->url);
		rc |= sink_put(buf, len, &pos,
			       "format=", c->format == AUDIT_HTTP_HEC ? "hec" : "json");
		if (c->token_file[0] != '\0')
			rc |= sink_put(buf, len, &pos, "token-file=", c->token_file);
		rc |= sink_put(buf, len, &pos, "spool=", c->spool);
		conf_format_size(c->spool_max, v, sizeof(v));
		rc |= sink_put(buf, len, &pos, "spool-max=", v);
		snprintf(v, sizeof(v), "%d", c->batch);
		rc |= sink_put(buf, len, &pos, "batch=", v);
		conf_format_duration(c->retry_max, v, sizeof(v));
		rc |= sink_put(buf, len, &pos, "retry-max=", v);
		conf_format_duration(c->timeout, v, sizeof(v));
		rc |= sink_put(buf, len, &pos, "timeout=", v);
		break;
	default:
		return -1;
	}
	return rc == 0 ? 0 : -1;
}

int
audit_failure_mode_parse(const char *s, enum audit_failure_mode *out)
{
	if (strcasecmp(s, "closed") == 0)
		*out = AUDIT_FAILURE_CLOSED;
	else if (strcasecmp(s, "open") == 0)
		*out = AUDIT_FAILURE_OPEN;
	else
		return -1;
	return 0;
}

const char *
audit_failure_mode_name(enum audit_failure_mode m)
{
	return m == AUDIT_FAILURE_CLOSED ? "closed" : "open";
}
