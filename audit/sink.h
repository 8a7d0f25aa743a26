/*
 * The interface between the dispatcher (audit.c) and the sinks (sink-*.c). Private to
 * audit/: not installed, not included outside this folder (tests excepted).
 *
 * A sink is opened by its own constructor and driven through struct sink_ops. Every call
 * happens on the loop thread. emit() returns 0 when the record is durable in that sink (see
 * audit.h for what durable means per kind), -1 otherwise; healthy() tells whether the sink
 * currently keeps up (it may recover on its own from a timer, e.g. a full disk freed).
 */
#ifndef SAW_AUDIT_SINK_H
#define SAW_AUDIT_SINK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

#define AUDIT_QUEUE_MAX 4096		      /* records a sink keeps while it cannot write */
#define AUDIT_QUEUE_BYTES (16u * 1024 * 1024) /* and their bytes */
#define AUDIT_LOST_LOG_EVERY 1000

/* One event as every sink sees it; all members are borrowed for the call only. */
struct audit_record {
	json_t *ev;	  /* the event */
	const char *json; /* its compact serialization, without a newline */
	size_t len;
	int64_t time_ms; /* "time", 0 if absent */
	const char *uid; /* metadata.uid, NULL if absent */
	int severity_id; /* OCSF severity_id, 0 if absent */
	long long type_uid;
};

struct sink_ops {
	const char *kind;
	int (*emit)(void *impl, const struct audit_record *r);
	int (*flush)(void *impl);
	int (*reopen)(void *impl);
	bool (*healthy)(const void *impl);
	unsigned long long (*lost)(const void *impl);
	unsigned long long (*backlog)(const void *impl); /* may be NULL: 0 */
	void (*close)(void *impl);
};

extern const struct sink_ops sink_file_ops;
extern const struct sink_ops sink_syslog_ops;
extern const struct sink_ops sink_http_ops;

void *sink_file_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
		     size_t errlen);
void *sink_syslog_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
		       size_t errlen);
void *sink_http_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
		     size_t errlen);

/* The program name used as syslog APP-NAME and OCSF log_provider. */
const char *audit_app_name(const struct audit_env *env);

#endif
