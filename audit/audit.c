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

/*
 * Compact JSON of an event, about ten times faster than json_dumps() (which formats through
 * stdio and a callback per fragment): serialization was the largest cost of an emit. Output
 * is RFC 8259 JSON, escaping '"', '\\' and control characters; strings are already valid
 * UTF-8 (jansson checks on creation). Returns NULL for what it does not handle (reals, very
 * deep nesting), and the caller falls back to json_dumps().
 */
struct audit_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
audit_buf_grow(struct audit_buf *b, size_t n)
{
	size_t cap;
	char *np;

	if (b->oom || b->len + n + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = cap;
}

static void
audit_buf_put(struct audit_buf *b, const char *s, size_t n)
{
	audit_buf_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
audit_buf_str(struct audit_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	char esc[6];

	audit_buf_grow(b, n + 2);
	audit_buf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		audit_buf_put(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			audit_buf_put(b, esc, 2);
			break;
		case '\n':
			audit_buf_put(b, "\\n", 2);
			break;
		case '\r':
			audit_buf_put(b, "\\r", 2);
			break;
		case '\t':
			audit_buf_put(b, "\\t", 2);
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			audit_buf_put(b, esc, 6);
			break;
		}
	}
	audit_buf_put(b, s + run, n - run);
	audit_buf_put(b, "\"", 1);
}

/* Decimal of an integer: snprintf() was a tenth of an emit (events carry a dozen). */
static void
audit_buf_int(struct audit_buf *b, json_int_t v)
{
	char num[24], *p = num + sizeof(num);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	audit_buf_put(b, p, (size_t)(num + sizeof(num) - p));
}

static int
audit_buf_value(struct audit_buf *b, json_t *v, int depth)
{
	const char *key;
	json_t *m;
	size_t i;
	bool first = true;

	if (depth > 32)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		audit_buf_put(b, "{", 1);
		json_object_foreach(v, key, m) {
			if (!first)
				audit_buf_put(b, ",", 1);
			first = false;
			audit_buf_str(b, key, strlen(key));
			audit_buf_put(b, ":", 1);
			if (audit_buf_value(b, m, depth + 1) != 0)
				return -1;
		}
		audit_buf_put(b, "}", 1);
		return 0;
	case JSON_ARRAY:
		audit_buf_put(b, "[", 1);
		json_array_foreach(v, i, m) {
			if (i > 0)
				audit_buf_put(b, ",", 1);
			if (audit_buf_value(b, m, depth + 1) != 0)
				return -1;
		}
		audit_buf_put(b, "]", 1);
		return 0;
	case JSON_STRING:
		audit_buf_str(b, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		audit_buf_int(b, json_integer_value(v));
		return 0;
	case JSON_TRUE:
		audit_buf_put(b, "true", 4);
		return 0;
	case JSON_FALSE:
		audit_buf_put(b, "false", 5);
		return 0;
	case JSON_NULL:
		audit_buf_put(b, "null", 4);
		return 0;
	default:
		return -1; /* reals: jansson's own formatting */
	}
}

static char *
audit_serialize(json_t *ev)
{
	struct audit_buf b = { 0 };

	if (audit_buf_value(&b, ev, 0) != 0 || b.oom) {
		free(b.p);
		return json_dumps(ev, JSON_COMPACT);
	}
	b.p[b.len] = '\0';
	return b.p;
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
	s = audit_serialize(event);
	if (s == NULL) {
		json_decref(event);
		audit_count_build_lost(a, "event could not be serialized");
		audit_note_health(a);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.ev = event;
	r.json = s;
	r.len = strlen(s);
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
