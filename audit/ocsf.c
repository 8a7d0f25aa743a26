/*
 * OCSF 1.8.0 events. Only the classes and activities SAW emits are named here; the numbers
 * come from the OCSF schema (schema.ocsf.io, 1.8.0).
 */
#include "audit/ocsf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define OCSF_PRODUCT_NAME "SAW broker"
#define OCSF_VENDOR_NAME "SAW"
#define OCSF_SERVICE_NAME "saw-brokerd"

#ifndef SAW_VERSION
#define SAW_VERSION "unknown"
#endif

enum {
	OCSF_SEVERITY_INFORMATIONAL = 1,
	OCSF_SEVERITY_MEDIUM = 3,
	OCSF_STATUS_SUCCESS = 1,
	OCSF_STATUS_FAILURE = 2,
	OCSF_AUTH_PROTOCOL_OPENID = 4,
	OCSF_LOGON_TYPE_REMOTE_INTERACTIVE = 10,
};

struct ocsf_name {
	int id;
	const char *name;
};

static const struct ocsf_name ocsf_categories[] = {
	{ 1, "System Activity" },
	{ 2, "Findings" },
	{ 3, "Identity & Access Management" },
	{ 4, "Network Activity" },
	{ 5, "Discovery" },
	{ 6, "Application Activity" },
	{ 0, NULL },
};

static const struct ocsf_name ocsf_classes[] = {
	{ OCSF_CLASS_PROCESS_ACTIVITY, "Process Activity" },
	{ OCSF_CLASS_EVENT_LOG_ACTIVITY, "Event Log Activity" },
	{ OCSF_CLASS_ACCOUNT_CHANGE, "Account Change" },
	{ OCSF_CLASS_AUTHENTICATION, "Authentication" },
	{ OCSF_CLASS_AUTHORIZE_SESSION, "Authorize Session" },
	{ OCSF_CLASS_NETWORK_ACTIVITY, "Network Activity" },
	{ OCSF_CLASS_HTTP_ACTIVITY, "HTTP Activity" },
	{ OCSF_CLASS_SSH_ACTIVITY, "SSH Activity" },
	{ OCSF_CLASS_API_ACTIVITY, "API Activity" },
	{ 0, NULL },
};

static const struct ocsf_name ocsf_process_activities[] = {
	{ 1, "Launch" }, { 2, "Terminate" },   { 3, "Open" },
	{ 4, "Inject" }, { 5, "Set User ID" }, { 0, NULL },
};
static const struct ocsf_name ocsf_event_log_activities[] = {
	{ 1, "Clear" },	 { 2, "Delete" },   { 3, "Export" }, { 4, "Archive" },
	{ 5, "Rotate" }, { 6, "Start" },    { 7, "Stop" },   { 8, "Restart" },
	{ 9, "Enable" }, { 10, "Disable" }, { 0, NULL },
};
static const struct ocsf_name ocsf_account_activities[] = {
	{ 1, "Create" },
	{ 2, "Enable" },
	{ 3, "Password Change" },
	{ 4, "Password Reset" },
	{ 5, "Disable" },
	{ 6, "Delete" },
	{ 7, "Attach Policy" },
	{ 8, "Detach Policy" },
	{ 9, "Lock" },
	{ 10, "MFA Factor Enable" },
	{ 11, "MFA Factor Disable" },
	{ 12, "Unlock" },
	{ 0, NULL },
};
static const struct ocsf_name ocsf_auth_activities[] = {
	{ 1, "Logon" },
	{ 2, "Logoff" },
	{ 3, "Authentication Ticket" },
	{ 4, "Service Ticket Request" },
	{ 5, "Service Ticket Renew" },
	{ 6, "Preauth" },
	{ 0, NULL },
};
static const struct ocsf_name ocsf_authz_activities[] = {
	{ 1, "Assign Privileges" },
	{ 2, "Assign Groups" },
	{ 0, NULL },
};
/* Network Activity and SSH Activity share their activity list. */
static const struct ocsf_name ocsf_network_activities[] = {
	{ 1, "Open" },	 { 2, "Close" },   { 3, "Reset" },  { 4, "Fail" },
	{ 5, "Refuse" }, { 6, "Traffic" }, { 7, "Listen" }, { 0, NULL },
};
static const struct ocsf_name ocsf_http_activities[] = {
	{ 1, "Connect" }, { 2, "Delete" }, { 3, "Get" },   { 4, "Head" },  { 5, "Options" },
	{ 6, "Post" },	  { 7, "Put" },	   { 8, "Trace" }, { 9, "Patch" }, { 0, NULL },
};
static const struct ocsf_name ocsf_api_activities[] = {
	{ 1, "Create" }, { 2, "Read" }, { 3, "Update" }, { 4, "Delete" }, { 0, NULL },
};

static const char *
ocsf_lookup(const struct ocsf_name *t, int id)
{
	if (id == 0)
		return "Unknown";
	if (id == 99)
		return "Other";
	for (; t != NULL && t->name != NULL; t++)
		if (t->id == id)
			return t->name;
	return NULL;
}

static const struct ocsf_name *
ocsf_activities(enum ocsf_class class_uid)
{
	switch (class_uid) {
	case OCSF_CLASS_PROCESS_ACTIVITY:
		return ocsf_process_activities;
	case OCSF_CLASS_EVENT_LOG_ACTIVITY:
		return ocsf_event_log_activities;
	case OCSF_CLASS_ACCOUNT_CHANGE:
		return ocsf_account_activities;
	case OCSF_CLASS_AUTHENTICATION:
		return ocsf_auth_activities;
	case OCSF_CLASS_AUTHORIZE_SESSION:
		return ocsf_authz_activities;
	case OCSF_CLASS_NETWORK_ACTIVITY:
	case OCSF_CLASS_SSH_ACTIVITY:
		return ocsf_network_activities;
	case OCSF_CLASS_HTTP_ACTIVITY:
		return ocsf_http_activities;
	case OCSF_CLASS_API_ACTIVITY:
		return ocsf_api_activities;
	}
	return NULL;
}

int64_t
ocsf_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Strings in events come from peers (usernames, IdP claims). jansson refuses invalid UTF-8,
 * which would silently drop the field; an audit record must keep it, so bytes outside ASCII
 * are replaced by '?' when the string as a whole is not valid UTF-8.
 */
static json_t *
ocsf_string(const char *v)
{
	json_t *j;
	char *copy, *p;

	if ((j = json_string(v)) != NULL)
		return j;
	if ((copy = strdup(v)) == NULL)
		return NULL;
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Each setter returns 0 or -1; a NULL value is not an error, the field is just omitted. */
static int
ocsf_set_str(json_t *o, const char *key, const char *v)
{
	if (v == NULL)
		return 0;
	return json_object_set_new(o, key, ocsf_string(v));
}

static int
ocsf_set_int(json_t *o, const char *key, json_int_t v)
{
	return json_object_set_new(o, key, json_integer(v));
}

/* Adds obj under key when it has members, frees it otherwise. */
static int
ocsf_set_obj(json_t *o, const char *key, json_t *obj)
{
	if (obj == NULL)
		return -1;
	if (json_object_size(obj) == 0) {
		json_decref(obj);
		return 0;
	}
	return json_object_set_new(o, key, obj);
}

int
ocsf_set_unmapped(json_t *ev, const char *key, const char *value)
{
	json_t *u;

	if (ev == NULL || value == NULL)
		return 0;
	if ((u = json_object_get(ev, "unmapped")) == NULL) {
		if ((u = json_object()) == NULL || json_object_set_new(ev, "unmapped", u) != 0)
			return -1;
	}
	return ocsf_set_str(u, key, value);
}

/* The brokered context OCSF has no member for: workspace and profile, in unmapped. */
static int
ocsf_subject_unmapped(json_t *ev, const struct ocsf_subject *s)
{
	int rc = 0;

	if (s == NULL)
		return 0;
	rc |= ocsf_set_unmapped(ev, "workspace", s->workspace);
	rc |= ocsf_set_unmapped(ev, "profile", s->profile);
	return rc;
}

/*
 * metadata.uid comes from a per-thread pool of getrandom() bytes, refilled OCSF_UID_POOL at a
 * time: one syscall per event was a measurable share of an egress CONNECT (issue #5). The
 * pool is thread-local, so threads never share (or lock) it. A forked child must not hand out
 * the uids its parent will also hand out: the pthread_atfork() child handler, which runs in
 * the child's only thread, the one that called fork(), empties that thread's copy.
 */
#define OCSF_UID_BYTES 16
#define OCSF_UID_POOL 4096

struct ocsf_uid_pool {
	unsigned char buf[OCSF_UID_POOL];
	size_t off; /* bytes before off are used (or never filled) */
};

static _Thread_local struct ocsf_uid_pool ocsf_pool = { .off = OCSF_UID_POOL };
static pthread_once_t ocsf_pool_once = PTHREAD_ONCE_INIT;
static int ocsf_pool_atfork_rc = -1;

static void
ocsf_pool_reset(void)
{
	ocsf_pool.off = sizeof(ocsf_pool.buf);
}

static void
ocsf_pool_register(void)
{
	ocsf_pool_atfork_rc = pthread_atfork(NULL, NULL, ocsf_pool_reset);
}

static int
ocsf_random_bytes(unsigned char *out, size_t len)
{
	struct ocsf_uid_pool *p = &ocsf_pool;
	size_t got = 0;
	ssize_t n;

	/* no child handler, no pool: a child could repeat its parent's uids */
	if (pthread_once(&ocsf_pool_once, ocsf_pool_register) != 0 || ocsf_pool_atfork_rc != 0)
		return getrandom(out, len, 0) == (ssize_t)len ? 0 : -1;
	if (sizeof(p->buf) - p->off < len) {
		/* a short read (a signal during a large request) leaves the rest unused */
		while (got < sizeof(p->buf)) {
			n = getrandom(p->buf + got, sizeof(p->buf) - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < len)
			return -1;
		if (got < sizeof(p->buf))
			memmove(p->buf + sizeof(p->buf) - got, p->buf, got);
		p->off = sizeof(p->buf) - got;
	}
	memcpy(out, p->buf + p->off, len);
	p->off += len;
	return 0;
}

static int
ocsf_random_uid(char out[2 * OCSF_UID_BYTES + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[OCSF_UID_BYTES];
	size_t i;

	if (ocsf_random_bytes(b, sizeof(b)) != 0)
		return -1;
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0x0f];
	}
	out[2 * sizeof(b)] = '\0';
	return 0;
}

json_t *
ocsf_event_new(enum ocsf_class class_uid, int activity_id, bool success, int64_t time_ms)
{
	json_t *ev = NULL, *meta = NULL, *product = NULL;
	int category_uid = (int)class_uid / 1000;
	const char *class_name, *category_name, *activity_name;
	char uid[2 * OCSF_UID_BYTES + 1], type_name[128];
	int rc = 0;

	class_name = ocsf_lookup(ocsf_classes, (int)class_uid);
	category_name = ocsf_lookup(ocsf_categories, category_uid);
	activity_name = ocsf_lookup(ocsf_activities(class_uid), activity_id);

	if ((ev = json_object()) == NULL || (meta = json_object()) == NULL ||
	    (product = json_object()) == NULL)
		goto fail;

	rc |= ocsf_set_int(ev, "class_uid", class_uid);
	rc |= ocsf_set_str(ev, "class_name", class_name);
	rc |= ocsf_set_int(ev, "category_uid", category_uid);
	rc |= ocsf_set_str(ev, "category_name", category_name);
	rc |= ocsf_set_int(ev, "activity_id", activity_id);
	rc |= ocsf_set_str(ev, "activity_name", activity_name);
	rc |= ocsf_set_int(ev, "type_uid", (json_int_t)class_uid * 100 + activity_id);
	if (class_name != NULL) {
		snprintf(type_name, sizeof(type_name), "%s: %s", class_name,
			 activity_name != NULL ? activity_name : "Other");
		rc |= ocsf_set_str(ev, "type_name", type_name);
	}
	rc |= ocsf_set_int(ev, "time", time_ms);
	rc |= ocsf_set_int(ev, "severity_id",
			   success ? OCSF_SEVERITY_INFORMATIONAL : OCSF_SEVERITY_MEDIUM);
	rc |= ocsf_set_str(ev, "severity", success ? "Informational" : "Medium");
	rc |= ocsf_set_int(ev, "status_id", success ? OCSF_STATUS_SUCCESS : OCSF_STATUS_FAILURE);
	rc |= ocsf_set_str(ev, "status", success ? "Success" : "Failure");

	rc |= ocsf_set_str(meta, "version", OCSF_VERSION);
	rc |= ocsf_set_str(product, "name", OCSF_PRODUCT_NAME);
	rc |= ocsf_set_str(product, "vendor_name", OCSF_VENDOR_NAME);
	rc |= ocsf_set_str(product, "version", SAW_VERSION);
	rc |= json_object_set_new(meta, "product", product);
	product = NULL;
	/* A random uid lets a SIEM de-duplicate lines re-sent after a retry. */
	if (ocsf_random_uid(uid) == 0)
		rc |= ocsf_set_str(meta, "uid", uid);
	rc |= json_object_set_new(ev, "metadata", meta);
	meta = NULL;
	if (rc != 0)
		goto fail;
	return ev;
fail:
	json_decref(product);
	json_decref(meta);
	json_decref(ev);
	return NULL;
}

static json_t *
ocsf_endpoint(const char *ip, int port)
{
	json_t *ep = json_object();

	if (ep == NULL)
		return NULL;
	if (ocsf_set_str(ep, "ip", ip) != 0 || (port > 0 && ocsf_set_int(ep, "port", port) != 0)) {
		json_decref(ep);
		return NULL;
	}
	return ep;
}

static json_t *
ocsf_user(const struct ocsf_subject *s)
{
	json_t *u = json_object();

	if (u == NULL)
		return NULL;
	if (ocsf_set_str(u, "name", s->username) != 0 || ocsf_set_str(u, "uid", s->uid) != 0) {
		json_decref(u);
		return NULL;
	}
	return u;
}

/* The IdP issuer goes in session.issuer: OCSF's user object has no place for it. */
static json_t *
ocsf_session(const struct ocsf_subject *s, const char *expiration_reason)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= ocsf_set_str(o, "uid", s->session_uid);
	rc |= ocsf_set_str(o, "issuer", s->issuer);
	if (s->session_created_ms > 0)
		rc |= ocsf_set_int(o, "created_time", s->session_created_ms);
	if (s->session_expires_ms > 0)
		rc |= ocsf_set_int(o, "expiration_time", s->session_expires_ms);
	if (json_object_size(o) > 0) {
		rc |= json_object_set_new(o, "is_remote", json_true());
		rc |= ocsf_set_str(o, "expiration_reason", expiration_reason);
	}
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Authentication requires user (and a user needs a name or uid): a logon refused before the
 * client named itself is still about someone, recorded as "unknown".
 */
static int
ocsf_auth_user(json_t *ev, const struct ocsf_subject *s)
{
	json_t *u = ocsf_user(s);

	if (u == NULL)
		return -1;
	if (json_object_size(u) == 0 && ocsf_set_str(u, "name", "unknown") != 0) {
		json_decref(u);
		return -1;
	}
	return json_object_set_new(ev, "user", u);
}

/* Members common to both Authentication activities. */
static int
ocsf_auth_common(json_t *ev, const struct ocsf_subject *s, const char *expiration_reason)
{
	json_t *svc;
	int rc = 0;

	rc |= ocsf_set_int(ev, "auth_protocol_id", OCSF_AUTH_PROTOCOL_OPENID);
	rc |= ocsf_set_str(ev, "auth_protocol", "OpenID");
	rc |= ocsf_set_int(ev, "logon_type_id", OCSF_LOGON_TYPE_REMOTE_INTERACTIVE);
	rc |= ocsf_set_str(ev, "logon_type", "Remote Interactive");
	rc |= json_object_set_new(ev, "is_remote", json_true());
	rc |= ocsf_auth_user(ev, s);
	rc |= ocsf_set_obj(ev, "session", ocsf_session(s, expiration_reason));
	rc |= ocsf_set_obj(ev, "src_endpoint", ocsf_endpoint(s->src_ip, s->src_port));
	rc |= ocsf_set_obj(ev, "dst_endpoint", ocsf_endpoint(s->dst_ip, s->dst_port));
	rc |= ocsf_subject_unmapped(ev, s);
	if ((svc = json_object()) == NULL)
		return -1;
	rc |= ocsf_set_str(svc, "name", OCSF_SERVICE_NAME);
	rc |= json_object_set_new(ev, "service", svc);
	return rc;
}

static const char *
ocsf_or(const char *v, const char *dflt)
{
	return v != NULL ? v : dflt;
}

json_t *
ocsf_auth_logon(const struct ocsf_subject *s, bool success, const char *reason, int64_t time_ms)
{
	static const struct ocsf_subject none;
	char msg[512];
	json_t *ev;
	int rc = 0;

	if (s == NULL)
		s = &none;
	if ((ev = ocsf_event_new(OCSF_CLASS_AUTHENTICATION, OCSF_AUTH_LOGON, success, time_ms)) ==
	    NULL)
		return NULL;
	rc |= ocsf_auth_common(ev, s, NULL);
	if (success) {
		snprintf(msg, sizeof(msg), "%s logged on%s%s%s",
			 ocsf_or(s->username, "unknown user"),
			 s->session_uid != NULL ? " (session " : "", ocsf_or(s->session_uid, ""),
			 s->session_uid != NULL ? ")" : "");
	} else {
		snprintf(msg, sizeof(msg), "logon of %s refused: %s",
			 ocsf_or(s->username, "unknown user"), ocsf_or(reason, "no reason given"));
	}
	rc |= ocsf_set_str(ev, "status_detail", reason);
	rc |= ocsf_set_str(ev, "message", msg);
	if (rc != 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

json_t *
ocsf_auth_logoff(const struct ocsf_subject *s, const char *why, int64_t time_ms)
{
	static const struct ocsf_subject none;
	char msg[512];
	json_t *ev;
	int rc = 0;

	if (s == NULL)
		s = &none;
	if ((ev = ocsf_event_new(OCSF_CLASS_AUTHENTICATION, OCSF_AUTH_LOGOFF, true, time_ms)) ==
	    NULL)
		return NULL;
	rc |= ocsf_auth_common(ev, s, why);
	rc |= ocsf_set_str(ev, "status_detail", why);
	snprintf(msg, sizeof(msg), "session %s of %s ended: %s", ocsf_or(s->session_uid, "?"),
		 ocsf_or(s->username, "unknown user"), ocsf_or(why, "no reason given"));
	rc |= ocsf_set_str(ev, "message", msg);
	if (rc != 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

static const char *
ocsf_ssh_auth_name(enum ocsf_ssh_auth_type t)
{
	switch (t) {
	case OCSF_SSH_AUTH_KBDINT:
		return "Keyboard Interactive";
	case OCSF_SSH_AUTH_PUBKEY:
		return "Public Key";
	}
	return NULL;
}

/*
 * OCSF 1.8.0 has no actor in SSH Activity except through the host profile, so adding the
 * actor also declares that profile in metadata.profiles.
 */
static int
ocsf_ssh_actor(json_t *ev, const struct ocsf_subject *s)
{
	json_t *actor, *profiles, *meta;
	int rc = 0;

	if (s->username == NULL && s->uid == NULL && s->session_uid == NULL && s->app_name == NULL)
		return 0;
	if ((actor = json_object()) == NULL)
		return -1;
	rc |= ocsf_set_str(actor, "app_name", s->app_name);
	rc |= ocsf_set_obj(actor, "user", ocsf_user(s));
	rc |= ocsf_set_obj(actor, "session", ocsf_session(s, NULL));
	rc |= json_object_set_new(ev, "actor", actor);
	meta = json_object_get(ev, "metadata");
	if (meta == NULL || (profiles = json_array()) == NULL)
		return -1;
	rc |= json_array_append_new(profiles, json_string("host"));
	rc |= json_object_set_new(meta, "profiles", profiles);
	return rc;
}

json_t *
ocsf_ssh_activity(enum ocsf_ssh_activity activity, const struct ocsf_subject *s,
		  enum ocsf_ssh_auth_type auth_type, const char *reason, int64_t time_ms)
{
	static const struct ocsf_subject none;
	const char *auth_name = ocsf_ssh_auth_name(auth_type);
	const char *who, *verb;
	bool success = activity != OCSF_SSH_REFUSE;
	char msg[512];
	json_t *ev;
	int rc = 0;

	if (s == NULL)
		s = &none;
	if ((ev = ocsf_event_new(OCSF_CLASS_SSH_ACTIVITY, (int)activity, success, time_ms)) == NULL)
		return NULL;
	rc |= ocsf_set_obj(ev, "src_endpoint", ocsf_endpoint(s->src_ip, s->src_port));
	rc |= ocsf_set_obj(ev, "dst_endpoint", ocsf_endpoint(s->dst_ip, s->dst_port));
	if (auth_name != NULL) {
		rc |= ocsf_set_int(ev, "auth_type_id", auth_type);
		rc |= ocsf_set_str(ev, "auth_type", auth_name);
	} else if ((int)auth_type != 0) {
		rc |= ocsf_set_int(ev, "auth_type_id", 99);
		rc |= ocsf_set_str(ev, "auth_type", "Other");
	}
	/* Network classes need at least one endpoint; without an address, the SSH service
	 * itself is the one known end. */
	if (json_object_get(ev, "src_endpoint") == NULL &&
	    json_object_get(ev, "dst_endpoint") == NULL) {
		json_t *ep = json_object();

		rc |= ocsf_set_str(ep, "svc_name", "ssh");
		rc |= ocsf_set_obj(ev, "dst_endpoint", ep);
	}
	rc |= ocsf_set_str(ev, "status_detail", reason);
	rc |= ocsf_ssh_actor(ev, s);
	rc |= ocsf_subject_unmapped(ev, s);

	switch (activity) {
	case OCSF_SSH_OPEN:
		verb = "opened";
		break;
	case OCSF_SSH_CLOSE:
		verb = "closed";
		break;
	case OCSF_SSH_REFUSE:
		verb = "refused";
		break;
	default:
		verb = "event";
		break;
	}
	who = ocsf_or(s->username, "unknown user");
	snprintf(msg, sizeof(msg), "SSH connection of %s from %s %s%s%s", who,
		 ocsf_or(s->src_ip, "unknown address"), verb, reason != NULL ? ": " : "",
		 ocsf_or(reason, ""));
	rc |= ocsf_set_str(ev, "message", msg);
	if (rc != 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

/*
 * System Activity classes require actor and device: the actor is this program (app_name and
 * process), the device this host.
 */
json_t *
ocsf_event_log(enum ocsf_event_log_activity activity, const char *path, const char *provider,
	       const char *message, int64_t time_ms)
{
	json_t *ev, *actor = NULL, *proc = NULL, *dev = NULL, *file = NULL;
	const char *base;
	char host[256];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_EVENT_LOG_ACTIVITY, (int)activity, true, time_ms)) ==
	    NULL)
		return NULL;
	if ((actor = json_object()) == NULL || (proc = json_object()) == NULL ||
	    (dev = json_object()) == NULL || (file = json_object()) == NULL)
		goto fail;
	rc |= ocsf_set_str(actor, "app_name", provider);
	rc |= ocsf_set_int(proc, "pid", (json_int_t)getpid());
	rc |= ocsf_set_str(proc, "name", provider);
	rc |= json_object_set_new(actor, "process", proc);
	proc = NULL;
	rc |= json_object_set_new(ev, "actor", actor);
	actor = NULL;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		rc |= ocsf_set_str(dev, "hostname", host);
	} else {
		rc |= ocsf_set_str(dev, "hostname", "localhost");
	}
	rc |= ocsf_set_int(dev, "type_id", 1);
	rc |= ocsf_set_str(dev, "type", "Server");
	rc |= json_object_set_new(ev, "device", dev);
	dev = NULL;
	if (path != NULL) {
		base = strrchr(path, '/');
		rc |= ocsf_set_str(file, "name", base != NULL ? base + 1 : path);
		rc |= ocsf_set_str(file, "path", path);
		rc |= ocsf_set_int(file, "type_id", 1);
		rc |= ocsf_set_str(file, "type", "Regular File");
		rc |= json_object_set_new(ev, "file", file);
	} else {
		json_decref(file);
	}
	file = NULL;
	rc |= ocsf_set_str(ev, "log_name", "audit");
	rc |= ocsf_set_str(ev, "log_provider", provider != NULL ? provider : OCSF_SERVICE_NAME);
	rc |= ocsf_set_str(ev, "message", message);
	if (rc != 0)
		goto fail;
	return ev;
fail:
	json_decref(actor);
	json_decref(proc);
	json_decref(dev);
	json_decref(file);
	json_decref(ev);
	return NULL;
}

/* ---- network, HTTP, process, API and account events ---------------------------------- */

static json_t *
ocsf_net_endpoint(const struct ocsf_endpoint *e)
{
	json_t *ep = json_object();
	int rc = 0;

	if (ep == NULL || e == NULL)
		return ep;
	if (e->ip == NULL && e->hostname == NULL && e->svc_name == NULL)
		return ep; /* a port alone identifies nothing: left out */
	rc |= ocsf_set_str(ep, "ip", e->ip);
	rc |= ocsf_set_str(ep, "hostname", e->hostname);
	rc |= ocsf_set_str(ep, "svc_name", e->svc_name);
	if (e->port > 0)
		rc |= ocsf_set_int(ep, "port", e->port);
	if (rc != 0) {
		json_decref(ep);
		return NULL;
	}
	return ep;
}

/* {user, session} of the brokered identity; empty when nothing is known. */
static json_t *
ocsf_actor_obj(const struct ocsf_subject *s)
{
	json_t *actor = json_object();
	int rc = 0;

	if (actor == NULL || s == NULL)
		return actor;
	rc |= ocsf_set_str(actor, "app_name", s->app_name);
	rc |= ocsf_set_obj(actor, "user", ocsf_user(s));
	rc |= ocsf_set_obj(actor, "session", ocsf_session(s, NULL));
	if (rc != 0) {
		json_decref(actor);
		return NULL;
	}
	return actor;
}

/* Network classes define actor only through the host profile: adding it declares that. */
static int
ocsf_profile_actor(json_t *ev, const struct ocsf_subject *s)
{
	static const struct ocsf_subject none;

	return ocsf_ssh_actor(ev, s != NULL ? s : &none);
}

/* An actor the class requires: the user, or "unknown". */
static int
ocsf_required_actor(json_t *ev, const struct ocsf_subject *s, const char *fallback_name)
{
	json_t *actor = ocsf_actor_obj(s), *u;

	if (actor == NULL)
		return -1;
	if (json_object_size(actor) == 0) {
		if ((u = json_object()) == NULL || ocsf_set_str(u, "name", fallback_name) != 0 ||
		    json_object_set_new(actor, "user", u) != 0) {
			json_decref(actor);
			return -1;
		}
	}
	return json_object_set_new(ev, "actor", actor);
}

static json_t *
ocsf_this_device(void)
{
	json_t *dev = json_object();
	char host[256];
	int rc = 0;

	if (dev == NULL)
		return NULL;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		rc |= ocsf_set_str(dev, "hostname", host[0] != '\0' ? host : "localhost");
	} else {
		rc |= ocsf_set_str(dev, "hostname", "localhost");
	}
	rc |= ocsf_set_int(dev, "type_id", 1);
	rc |= ocsf_set_str(dev, "type", "Server");
	if (rc != 0) {
		json_decref(dev);
		return NULL;
	}
	return dev;
}

/* {key: v} with v sanitized like every other string (never NULL for a valid v). */
static json_t *
ocsf_obj1(const char *key, const char *v)
{
	json_t *o = json_object();

	if (o != NULL && ocsf_set_str(o, key, v) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
ocsf_finish(json_t *ev, int rc)
{
	if (rc != 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

static const char *
ocsf_endpoint_name(const struct ocsf_endpoint *e)
{
	if (e == NULL)
		return NULL;
	return e->hostname != NULL ? e->hostname : e->ip != NULL ? e->ip : e->svc_name;
}

json_t *
ocsf_network_activity(enum ocsf_net_activity activity, const struct ocsf_subject *actor,
		      const struct ocsf_endpoint *src, const struct ocsf_endpoint *dst,
		      const char *detail, const char *message, int64_t time_ms)
{
	const char *verb = activity == OCSF_NET_OPEN   ? "opened" :
			   activity == OCSF_NET_CLOSE  ? "closed" :
			   activity == OCSF_NET_RESET  ? "reset" :
			   activity == OCSF_NET_FAIL   ? "failed" :
			   activity == OCSF_NET_REFUSE ? "refused" :
							 "event";
	bool success = activity != OCSF_NET_REFUSE && activity != OCSF_NET_FAIL;
	char msg[512];
	json_t *ev;
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_NETWORK_ACTIVITY, (int)activity, success, time_ms)) ==
	    NULL)
		return NULL;
	rc |= ocsf_set_obj(ev, "src_endpoint", ocsf_net_endpoint(src));
	rc |= ocsf_set_obj(ev, "dst_endpoint", ocsf_net_endpoint(dst));
	if (json_object_get(ev, "src_endpoint") == NULL &&
	    json_object_get(ev, "dst_endpoint") == NULL)
		rc |= json_object_set_new(ev, "dst_endpoint", ocsf_obj1("name", "unknown"));
	rc |= ocsf_profile_actor(ev, actor);
	rc |= ocsf_subject_unmapped(ev, actor);
	rc |= ocsf_set_str(ev, "status_detail", detail);
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "connection to %s %s%s%s",
			 ocsf_or(ocsf_endpoint_name(dst), "unknown destination"), verb,
			 detail != NULL ? ": " : "", ocsf_or(detail, ""));
		message = msg;
	}
	rc |= ocsf_set_str(ev, "message", message);
	return ocsf_finish(ev, rc);
}

int
ocsf_http_method_activity(const char *method)
{
	static const char *const m[] = { "CONNECT", "DELETE", "GET",   "HEAD", "OPTIONS",
					 "POST",    "PUT",    "TRACE", "PATCH" };
	size_t i;

	for (i = 0; method != NULL && i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(method, m[i]) == 0)
			return (int)i + 1;
	return 99;
}

json_t *
ocsf_http_activity(const struct ocsf_subject *actor, const struct ocsf_endpoint *src,
		   const struct ocsf_endpoint *dst, const char *method, const char *hostname,
		   const char *path, int status, bool success, const char *detail,
		   const char *message, int64_t time_ms)
{
	json_t *ev, *req = NULL, *url = NULL;
	char msg[512];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_HTTP_ACTIVITY, ocsf_http_method_activity(method),
				 success, time_ms)) == NULL)
		return NULL;
	if ((req = json_object()) == NULL || (url = json_object()) == NULL) {
		json_decref(req);
		json_decref(url);
		json_decref(ev);
		return NULL;
	}
	rc |= ocsf_set_str(req, "http_method", method);
	rc |= ocsf_set_str(url, "hostname", hostname);
	/* url needs url_string or path */
	rc |= ocsf_set_str(url, "path", path != NULL ? path : "/");
	rc |= json_object_set_new(req, "url", url);
	rc |= json_object_set_new(ev, "http_request", req);
	if (status > 0)
		rc |= json_object_set_new(ev, "http_response", json_pack("{s:i}", "code", status));
	rc |= ocsf_set_obj(ev, "src_endpoint", ocsf_net_endpoint(src));
	rc |= ocsf_set_obj(ev, "dst_endpoint", ocsf_net_endpoint(dst));
	if (json_object_get(ev, "src_endpoint") == NULL &&
	    json_object_get(ev, "dst_endpoint") == NULL)
		rc |= json_object_set_new(ev, "dst_endpoint",
					  ocsf_obj1("name", ocsf_or(hostname, "unknown")));
	rc |= ocsf_profile_actor(ev, actor);
	rc |= ocsf_subject_unmapped(ev, actor);
	rc |= ocsf_set_str(ev, "status_detail", detail);
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "HTTP %s %s%s%s", ocsf_or(method, "request"),
			 ocsf_or(hostname, ""), ocsf_or(path, "/"),
			 success ? "" : " refused or failed");
		message = msg;
	}
	rc |= ocsf_set_str(ev, "message", message);
	return ocsf_finish(ev, rc);
}

json_t *
ocsf_process_activity(enum ocsf_process_activity activity, const struct ocsf_subject *actor,
		      long pid, const char *name, int exit_code, bool success, const char *detail,
		      int64_t time_ms)
{
	json_t *ev, *proc;
	char msg[512];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_PROCESS_ACTIVITY, (int)activity, success, time_ms)) ==
	    NULL)
		return NULL;
	if ((proc = json_object()) == NULL)
		return ocsf_finish(ev, -1);
	rc |= ocsf_set_int(proc, "pid", pid > 0 ? pid : 0);
	rc |= ocsf_set_str(proc, "name", name);
	rc |= json_object_set_new(ev, "process", proc);
	rc |= ocsf_required_actor(ev, actor, "unknown");
	rc |= ocsf_subject_unmapped(ev, actor);
	rc |= ocsf_set_obj(ev, "device", ocsf_this_device());
	if (activity == OCSF_PROCESS_TERMINATE && exit_code >= 0)
		rc |= ocsf_set_int(ev, "exit_code", exit_code);
	rc |= ocsf_set_str(ev, "status_detail", detail);
	snprintf(msg, sizeof(msg), "%s %s (pid %ld)%s%s", ocsf_or(name, "process"),
		 activity == OCSF_PROCESS_LAUNCH ? (success ? "launched" : "failed to launch") :
						   "terminated",
		 pid, detail != NULL ? ": " : "", ocsf_or(detail, ""));
	rc |= ocsf_set_str(ev, "message", msg);
	return ocsf_finish(ev, rc);
}

json_t *
ocsf_api_activity(enum ocsf_api_activity activity, const char *operation,
		  const struct ocsf_subject *actor, const struct ocsf_endpoint *src, int status,
		  bool success, const char *detail, const char *message, int64_t time_ms)
{
	json_t *ev;
	char msg[512];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_API_ACTIVITY, (int)activity, success, time_ms)) == NULL)
		return NULL;
	rc |= json_object_set_new(ev, "api", ocsf_obj1("operation", ocsf_or(operation, "unknown")));
	rc |= ocsf_required_actor(ev, actor, "unknown");
	rc |= ocsf_subject_unmapped(ev, actor);
	rc |= ocsf_set_obj(ev, "src_endpoint", ocsf_net_endpoint(src));
	if (json_object_get(ev, "src_endpoint") == NULL)
		rc |= json_object_set_new(ev, "src_endpoint", ocsf_obj1("name", "unknown"));
	if (status > 0)
		rc |= json_object_set_new(ev, "http_response", json_pack("{s:i}", "code", status));
	rc |= ocsf_set_str(ev, "status_detail", detail);
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "API %s %s%s%s", ocsf_or(operation, "call"),
			 success ? "done" : "refused", detail != NULL ? ": " : "",
			 ocsf_or(detail, ""));
		message = msg;
	}
	rc |= ocsf_set_str(ev, "message", message);
	return ocsf_finish(ev, rc);
}

json_t *
ocsf_account_change(enum ocsf_account_activity activity, const char *target, const char *target_uid,
		    const char *actor_name, const char *detail, const char *message,
		    int64_t time_ms)
{
	json_t *ev, *user;
	char msg[512];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_ACCOUNT_CHANGE, (int)activity, true, time_ms)) == NULL)
		return NULL;
	if ((user = json_object()) == NULL)
		return ocsf_finish(ev, -1);
	rc |= ocsf_set_str(user, "name",
			   target != NULL || target_uid == NULL ? ocsf_or(target, "unknown") :
								  NULL);
	rc |= ocsf_set_str(user, "uid", target_uid);
	rc |= json_object_set_new(ev, "user", user);
	if (actor_name != NULL)
		rc |= json_object_set_new(
			ev, "actor", json_pack("{s:o}", "user", ocsf_obj1("name", actor_name)));
	rc |= ocsf_set_str(ev, "status_detail", detail);
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "%s %s by %s%s%s",
			 ocsf_or(target, ocsf_or(target_uid, "unknown")),
			 activity == OCSF_ACCOUNT_LOCK	 ? "locked" :
			 activity == OCSF_ACCOUNT_UNLOCK ? "unlocked" :
							   "changed",
			 ocsf_or(actor_name, "unknown"), detail != NULL ? ": " : "",
			 ocsf_or(detail, ""));
		message = msg;
	}
	rc |= ocsf_set_str(ev, "message", message);
	return ocsf_finish(ev, rc);
}

json_t *
ocsf_policy_attach(const char *account, const char *policy_name, const char *policy_uid,
		   const char *version, const char *desc, bool success, const char *detail,
		   const char *message, int64_t time_ms)
{
	json_t *ev, *pol;
	char msg[512];
	int rc = 0;

	if ((ev = ocsf_event_new(OCSF_CLASS_ACCOUNT_CHANGE, OCSF_ACCOUNT_ATTACH_POLICY, success,
				 time_ms)) == NULL)
		return NULL;
	rc |= json_object_set_new(ev, "user", ocsf_obj1("name", ocsf_or(account, "unknown")));
	if ((pol = json_object()) == NULL)
		return ocsf_finish(ev, -1);
	/* a policy needs a name or a uid */
	rc |= ocsf_set_str(
		pol, "name",
		policy_name != NULL || policy_uid == NULL ? ocsf_or(policy_name, "unknown") : NULL);
	rc |= ocsf_set_str(pol, "uid", policy_uid);
	rc |= ocsf_set_str(pol, "version", version);
	rc |= ocsf_set_str(pol, "desc", desc);
	rc |= json_object_set_new(pol, "is_applied", json_boolean(success));
	rc |= json_object_set_new(ev, "policy", pol);
	rc |= ocsf_set_str(ev, "status_detail", detail);
	if (message == NULL) {
		snprintf(msg, sizeof(msg), "policy %s%s%s %s for %s%s%s",
			 ocsf_or(policy_name, ocsf_or(policy_uid, "unknown")),
			 version != NULL ? " version " : "", ocsf_or(version, ""),
			 success ? "applied" : "refused", ocsf_or(account, "unknown"),
			 detail != NULL ? ": " : "", ocsf_or(detail, ""));
		message = msg;
	}
	rc |= ocsf_set_str(ev, "message", message);
	return ocsf_finish(ev, rc);
}

int
ocsf_set_traffic(json_t *ev, uint64_t bytes_in, uint64_t bytes_out)
{
	json_t *t = json_object();
	int rc = 0;

	if (t == NULL)
		return -1;
	rc |= ocsf_set_int(t, "bytes_in", (json_int_t)bytes_in);
	rc |= ocsf_set_int(t, "bytes_out", (json_int_t)bytes_out);
	rc |= ocsf_set_int(t, "bytes", (json_int_t)(bytes_in + bytes_out));
	rc |= json_object_set_new(ev, "traffic", t);
	return rc;
}

int
ocsf_set_http_request(json_t *ev, const char *method, const char *path)
{
	json_t *req = json_object(), *url = json_object();
	int rc = 0;

	if (req == NULL || url == NULL) {
		json_decref(req);
		json_decref(url);
		return -1;
	}
	rc |= ocsf_set_str(req, "http_method", method);
	rc |= ocsf_set_str(url, "path", ocsf_or(path, "/"));
	rc |= json_object_set_new(req, "url", url);
	rc |= json_object_set_new(ev, "http_request", req);
	return rc;
}
