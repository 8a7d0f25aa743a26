/*
 * The audit pipeline's dispatcher (audit.h): serializes each event once and hands it to
 * every sink, in configuration order; tracks health for AuditFailureMode.
 */
#include "audit/audit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit-json.h"
#include "audit/log.h"
#include "audit/sink.h"

#define AUDIT_HEALTH_LOG_SECS 10

struct audit_sink {
	const struct sink_ops *ops;
	void *impl;
	char desc[96]; /* for messages: "file /var/log/saw/audit.jsonl" */
};

struct audit {
	struct audit_sink *sinks;
	size_t nsinks;
	enum audit_failure_mode mode;
	bool build_failing;   /* the last event could not be built or serialized */
	bool was_healthy;     /* for logging transitions */
	time_t health_logged; /* when a transition was last logged */
	unsigned long flaps;  /* transitions not logged since (rate limit) */
	unsigned long long lost_build;
};

const char *
audit_app_name(const struct audit_env *env)
{
	if (env != NULL && env->app_name != NULL && env->app_name[0] != '\0')
		return env->app_name;
	return program_invocation_short_name;
}

static void
audit_free_sinks(struct audit *a)
{
	size_t i;

	for (i = a->nsinks; i > 0; i--)
		a->sinks[i - 1].ops->close(a->sinks[i - 1].impl);
	free(a->sinks);
	free(a);
}

struct audit *
audit_open_sinks(const struct audit_env *env, const struct audit_sink_cfg *sinks, size_t nsinks,
		 enum audit_failure_mode mode, char *err, size_t errlen)
{
	struct audit *a;
	struct audit_sink *s;
	size_t i;

	if (nsinks == 0) {
		snprintf(err, errlen, "no audit sink configured");
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->sinks = calloc(nsinks, sizeof(*a->sinks))) == NULL) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->mode = mode;
	a->was_healthy = true;
	for (i = 0; i < nsinks; i++) {
		s = &a->sinks[a->nsinks];
		switch (sinks[i].kind) {
		case AUDIT_SINK_FILE:
			s->ops = &sink_file_ops;
			s->impl = sink_file_open(&sinks[i], env, err, errlen);
			snprintf(s->desc, sizeof(s->desc), "file %s", sinks[i].path);
			break;
		case AUDIT_SINK_SYSLOG:
			s->ops = &sink_syslog_ops;
			s->impl = sink_syslog_open(&sinks[i], env, err, errlen);
			snprintf(s->desc, sizeof(s->desc), "syslog %s",
				 sinks[i].socket[0] ? sinks[i].socket : "/dev/log");
			break;
		case AUDIT_SINK_HTTP:
			s->ops = &sink_http_ops;
			s->impl = sink_http_open(&sinks[i], env, err, errlen);
			snprintf(s->desc, sizeof(s->desc), "http %s", sinks[i].url);
			break;
		default:
			snprintf(err, errlen, "audit sink %zu has no kind", i + 1);
			s->impl = NULL;
			break;
		}
		if (s->impl == NULL) {
			audit_free_sinks(a);
			return NULL;
		}
		a->nsinks++;
	}
	return a;
}

struct audit *
audit_open(const char *path, struct event_base *base, char *err, size_t errlen)
{
	struct audit_env env = { .base = base };
	struct audit_sink_cfg cfg;

	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no audit log path configured");
		return NULL;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.kind = AUDIT_SINK_FILE;
	cfg.keep = 1;
	if (strlen(path) >= sizeof(cfg.path)) {
		snprintf(err, errlen, "cannot open audit log: path too long");
		return NULL;
	}
	memcpy(cfg.path, path, strlen(path) + 1);
	return audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, errlen);
}

static void
audit_count_build_lost(struct audit *a, const char *why)
{
	a->lost_build++;
	a->build_failing = true;
	if (a->lost_build == 1 || a->lost_build % AUDIT_LOST_LOG_EVERY == 0)
		log_warnx("AUDIT EVENT LOST (%s): %llu event(s) lost so far", why, a->lost_build);
}

/*
 * Logs health transitions, at most one every AUDIT_HEALTH_LOG_SECS (a slow syslog receiver
 * can flip health at every burst); the sinks log their own failures in detail.
 */
static void
audit_note_health(struct audit *a)
{
	bool h = audit_healthy(a);
	time_t now;

	if (h == a->was_healthy)
		return;
	a->was_healthy = h;
	now = time(NULL);
	if (a->health_logged != 0 && now - a->health_logged < AUDIT_HEALTH_LOG_SECS) {
		a->flaps++;
		return;
	}
	a->health_logged = now;
	if (a->flaps > 0)
		log_warnx("audit: health changed %lu more time(s) in the last %d s", a->flaps,
			  AUDIT_HEALTH_LOG_SECS);
	a->flaps = 0;
	if (!h && a->mode == AUDIT_FAILURE_CLOSED)
		log_warnx("AUDIT FAILURE: events cannot be made durable in every audit sink; "
			  "AuditFailureMode closed: new logins and sessions are refused until "
			  "this recovers");
	else if (!h)
		log_warnx("AUDIT FAILURE: events cannot be made durable in every audit sink; "
			  "AuditFailureMode open: carrying on");
	else
		log_warnx("audit: every sink is durable again%s",
			  a->mode == AUDIT_FAILURE_CLOSED ? "; logins accepted again" : "");
}

int
audit_emit(struct audit *a, json_t *event)
{
	struct audit_record r;
	json_t *meta;
	size_t i;
	char *s;
	int rc = 0;

	if (a == NULL) {
		json_decref(event);
		return -1;
	}
	if (event == NULL) {
		audit_count_build_lost(a, "event could not be built, out of memory");
		audit_note_health(a);
		return -1;
	}
	/* Compact output escapes control characters: the line holds no newline of its own. */
	memset(&r, 0, sizeof(r));
	if ((s = audit_json_compact(event, NULL, &r.len)) == NULL) {
		json_decref(event);
		audit_count_build_lost(
			a,
			"event could not be serialized (out of memory, or nested deeper than 2048)");
		audit_note_health(a);
		return -1;
	}
	r.ev = event;
	r.json = s;
	r.time_ms = json_integer_value(json_object_get(event, "time"));
	r.severity_id = (int)json_integer_value(json_object_get(event, "severity_id"));
	r.type_uid = json_integer_value(json_object_get(event, "type_uid"));
	meta = json_object_get(event, "metadata");
	r.uid = json_string_value(json_object_get(meta, "uid"));
	a->build_failing = false;
	for (i = 0; i < a->nsinks; i++)
		if (a->sinks[i].ops->emit(a->sinks[i].impl, &r) != 0)
			rc = -1;
	free(s);
	json_decref(event);
	audit_note_health(a);
	return rc;
}

int
audit_flush(struct audit *a)
{
	size_t i;
	int rc = 0;

	if (a == NULL)
		return 0;
	for (i = 0; i < a->nsinks; i++)
		if (a->sinks[i].ops->flush(a->sinks[i].impl) != 0)
			rc = -1;
	return rc;
}

int
audit_reopen(struct audit *a)
{
	size_t i;
	int rc = 0;

	if (a == NULL)
		return 0;
	for (i = 0; i < a->nsinks; i++)
		if (a->sinks[i].ops->reopen(a->sinks[i].impl) != 0) {
			log_warnx("audit sink %s could not be reopened", a->sinks[i].desc);
			rc = -1;
		}
	audit_note_health(a);
	return rc;
}

bool
audit_healthy(const struct audit *a)
{
	size_t i;

	if (a == NULL)
		return false;
	if (a->build_failing)
		return false;
	for (i = 0; i < a->nsinks; i++)
		if (!a->sinks[i].ops->healthy(a->sinks[i].impl))
			return false;
	return true;
}

bool
audit_refuses_logins(const struct audit *a)
{
	if (a == NULL)
		return true;
	return a->mode == AUDIT_FAILURE_CLOSED && !audit_healthy(a);
}

enum audit_failure_mode
audit_failure_mode(const struct audit *a)
{
	return a != NULL ? a->mode : AUDIT_FAILURE_OPEN;
}

unsigned long long
audit_lost(const struct audit *a)
{
	unsigned long long n;
	size_t i;

	if (a == NULL)
		return 0;
	n = a->lost_build;
	for (i = 0; i < a->nsinks; i++)
		n += a->sinks[i].ops->lost(a->sinks[i].impl);
	return n;
}

unsigned long long
audit_backlog(const struct audit *a)
{
	unsigned long long n = 0;
	size_t i;

	if (a == NULL)
		return 0;
	for (i = 0; i < a->nsinks; i++)
		if (a->sinks[i].ops->backlog != NULL)
			n += a->sinks[i].ops->backlog(a->sinks[i].impl);
	return n;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	audit_free_sinks(a);
}
