/*
 * Audit pipeline: OCSF events to several sinks at once (docs/AUDIT.md).
 *
 *  - file:   JSON lines appended with one write(2) per event, fdatasync in batches (at most
 *            AUDIT_SYNC_MS after the first unsynced line), size/time rotation, reopen on
 *            request, and a hash chain: every line carries "unmapped":{"prev":H,"seq":N}
 *            where H is the hex SHA-256 of the previous line (chain.h, verify.h);
 *  - syslog: RFC 5424 datagrams on a local AF_UNIX socket (/dev/log by default);
 *  - http:   a durable sqlite spool (spool.h) drained in order to a SIEM, generic JSON
 *            batches or Splunk HEC.
 *
 * "Durable" per sink: file - the whole line is in the file (write(2) returned), fdatasync'd
 * within AUDIT_SYNC_MS; syslog - the datagram was accepted by the local socket; http - the
 * event is committed to the spool (WAL, fdatasync'd within AUDIT_SYNC_MS). audit_emit()
 * returns 0 only when the event is durable in every sink; audit_healthy() is false while
 * any sink is failing (its last event could not be made durable and nothing has since
 * recovered it). With AuditFailureMode closed the daemon refuses new logins while
 * audit_refuses_logins() is true.
 *
 * A sink that cannot write keeps events in a bounded in-memory queue and retries them in
 * order before any newer event; past the cap, events are counted lost for that sink and
 * logged loudly, never reordered.
 *
 * Threading: everything runs on the event loop thread of env->base.
 * Ownership: audit_emit() steals the reference to the event. audit_close() frees the
 * pipeline and every sink; audit_sink_cfg holds no pointers (fixed buffers), so arrays of
 * it need no freeing.
 */
#ifndef SAW_AUDIT_H
#define SAW_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct audit;

/* The asynchronous HTTP client of broker/broker-http.h, reached through function pointers
 * so that this library never links the broker's (guestd links it too). */
struct http_client;
struct http_req;
struct http_result;
typedef struct http_req *(*audit_http_post_fn)(struct http_client *c, const char *url,
					       const char *content_type, const char *body,
					       size_t len, const char *const *headers,
					       long timeout_ms,
					       void (*cb)(const struct http_result *res, void *arg),
					       void *arg);
typedef void (*audit_http_cancel_fn)(struct http_req *r);

#define AUDIT_SYNC_MS 10 /* fdatasync batching interval (file and spool) */

#define AUDIT_SINK_PATH_MAX 1024
#define AUDIT_SINK_URL_MAX 1024
#define AUDIT_SINK_SOCK_MAX 108 /* sizeof(sun_path) */
#define AUDIT_SINK_APP_MAX 48	/* RFC 5424 APP-NAME */
#define AUDIT_SINK_SPEC_MAX 4096

enum audit_sink_kind {
	AUDIT_SINK_FILE = 1,
	AUDIT_SINK_SYSLOG,
	AUDIT_SINK_HTTP,
};

enum audit_http_format {
	AUDIT_HTTP_JSON = 1, /* POST [ev,ev,...], application/json */
	AUDIT_HTTP_HEC,	     /* Splunk HEC: {"time":..,"event":ev}{"time":..,"event":ev}... */
};

enum audit_failure_mode {
	AUDIT_FAILURE_OPEN = 0, /* keep going, log loudly */
	AUDIT_FAILURE_CLOSED,	/* refuse new logins and sessions while not healthy */
};

/*
 * One sink, as parsed from "AuditSink ..." (audit_sink_parse()). Defaults are filled in by
 * the parser; 0 means "off" for rotate_size and rotate_secs.
 */
struct audit_sink_cfg {
	enum audit_sink_kind kind;
	/* file */
	char path[AUDIT_SINK_PATH_MAX];
	long long rotate_size; /* bytes; 0: no size rotation */
	long long rotate_secs; /* seconds; 0: no time rotation */
	int keep;	       /* rotated files kept: PATH.1 .. PATH.keep */
	/* syslog */
	char socket[AUDIT_SINK_SOCK_MAX];
	int facility; /* syslog facility number (LOG_AUTHPRIV >> 3 by default) */
	char app[AUDIT_SINK_APP_MAX];
	/* http */
	char url[AUDIT_SINK_URL_MAX];
	enum audit_http_format format;
	char token_file[AUDIT_SINK_PATH_MAX]; /* HEC token (or bearer for json); "" none */
	char spool[AUDIT_SINK_PATH_MAX];
	long long spool_max; /* bytes of event data the spool may hold */
	int batch;	     /* events per request */
	long long retry_max; /* seconds: the backoff's ceiling */
	long long timeout;   /* seconds: each request's total timeout */
};

struct audit_env {
	struct event_base *base;      /* NULL: fdatasync on every emit, no HTTP sinks */
	struct http_client *http;     /* needed by HTTP sinks */
	audit_http_post_fn http_post; /* http_post from broker/broker-http.h */
	audit_http_cancel_fn http_cancel;
	const char *app_name; /* syslog APP-NAME and log_provider; NULL: the program name */
};

/*
 * "file PATH [rotate=SIZE] [rotate-every=DURATION] [keep=N]"
 * "syslog [socket=PATH] [facility=NAME] [app=NAME]"
 * "http URL format=json|hec [token-file=PATH] spool=PATH [spool-max=SIZE] [batch=N]
 *       [retry-max=DURATION] [timeout=DURATION]"
 * Arguments are separated by blanks; one may be double-quoted ("a b", \" and \\). Paths
 * must be absolute. Returns 0, or -1 with a plain-words message in err.
 */
int audit_sink_parse(const char *spec, struct audit_sink_cfg *out, char *err, size_t errlen);
int audit_sink_parse_argv(int argc, char *const *argv, struct audit_sink_cfg *out, char *err,
			  size_t errlen);
/* The canonical spec (what -T prints); parses back to the same cfg. Returns 0 or -1 if
 * buf is too small. */
int audit_sink_format(const struct audit_sink_cfg *cfg, char *buf, size_t len);
/* "closed" or "open" (case-insensitive). Returns 0 or -1. */
int audit_failure_mode_parse(const char *s, enum audit_failure_mode *out);
const char *audit_failure_mode_name(enum audit_failure_mode m);

/* Opens every sink; all or nothing. Returns NULL with err filled on failure. */
struct audit *audit_open_sinks(const struct audit_env *env, const struct audit_sink_cfg *sinks,
			       size_t nsinks, enum audit_failure_mode mode, char *err,
			       size_t errlen);
/* Shorthand for one file sink without rotation ("AuditLog PATH"), failure mode open. */
struct audit *audit_open(const char *path, struct event_base *base, char *err, size_t errlen);

/* 0: durable in every sink; -1: not (yet) in at least one (logged by the sink). */
int audit_emit(struct audit *a, json_t *event);
/* Writes what is queued and fdatasyncs (file, spool). Does not wait for the SIEM. */
int audit_flush(struct audit *a);
/* SIGHUP: reopen files at their paths (after an external rotation), reconnect syslog,
 * re-read HTTP tokens. Returns 0, or -1 if a sink could not be reopened (it keeps its old
 * descriptor where it had one, and is unhealthy otherwise). */
int audit_reopen(struct audit *a);
void audit_close(struct audit *a);

/* False while some sink could not make the latest event durable. */
bool audit_healthy(const struct audit *a);
/* AuditFailureMode closed and not healthy: refuse new logins and sessions. */
bool audit_refuses_logins(const struct audit *a);
enum audit_failure_mode audit_failure_mode(const struct audit *a);
/* Events lost so far, summed over sinks (queue full, spool full, not serializable). */
unsigned long long audit_lost(const struct audit *a);
/* Events in HTTP spools not yet acknowledged by the SIEM. */
unsigned long long audit_backlog(const struct audit *a);

#endif
