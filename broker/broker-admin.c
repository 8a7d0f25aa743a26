/*
 * The local admin socket (AdminSocket) and the admin protocol behind it (broker-admin.h).
 *
 * Who may talk: the kernel's word for the peer (SO_PEERCRED, SO_PEERGROUPS), never anything
 * the client says. The socket file is 0660 and may belong to AdminSocketGroup, but a file
 * mode is only the first fence: every connection is checked again here, so a socket made
 * world-writable by mistake still refuses strangers.
 *
 * Every connection has an idle timeout, a cap on the request line and a bound on the answers
 * waiting to be written (reading stops until the client drains them). The broker's other
 * work never waits for an admin client.
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-admin.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

#define ADMIN_IDLE_TIMEOUT 30	     /* seconds without a request or progress writing */
#define ADMIN_MAX_CLIENTS 64	     /* concurrent admin connections */
#define ADMIN_OUT_HIGH (256 * 1024)  /* stop reading requests above this much unsent output */
#define ADMIN_OUT_LOW (64 * 1024)    /* and resume below this */
#define ADMIN_MAX_PUBKEY (16 * 1024) /* an OpenSSH public key line */
#define ADMIN_MAX_OWNER 255	     /* bytes of an IdP subject (OIDC: at most 255 ASCII) */
#define ADMIN_MAX_ID 256	     /* bytes of a request id */
#define ADMIN_WORKSPACE_NAME_MAX 63

struct admin_client {
	TAILQ_ENTRY(admin_client) entry;
	struct admin *admin;
	struct bufferevent *bev;
	uid_t uid;
	pid_t pid;
	bool closing; /* the last answer is queued: free once it is written */
	bool paused;  /* not reading: too much output waiting */
};

TAILQ_HEAD(admin_client_list, admin_client);

struct admin {
	struct broker *broker;
	struct evconnlistener *listener;
	char *path;
	dev_t dev; /* of the socket file we made, so that close unlinks only that one */
	ino_t ino;
	bool have_group;
	gid_t group;
	struct admin_client_list clients;
	size_t nclients;
};

/* ---- the protocol (pure: no sockets) ---------------------------------------------------- */

/* An operation adds its answer's members to resp and returns 0; or writes a plain-words
 * error to err and returns 1; or returns -1 when out of memory. */
typedef int (*admin_op_fn)(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			   char *err, size_t errlen);

struct admin_op {
	const char *name;
	admin_op_fn fn;
	const char *const *fields; /* the request's members besides "op" and "id" (NULL-ended) */
};

static bool
admin_valid_workspace_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ADMIN_WORKSPACE_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0)))
			return false;
	}
	return true;
}

/* A required string member; 1 with err set if absent or not a string. */
static int
admin_get_string(const json_t *req, const char *key, const char **out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, key);

	if (v == NULL) {
		snprintf(err, errlen, "missing \"%s\"", key);
		return 1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return 1;
	}
	*out = json_string_value(v);
	return 0;
}

static int
admin_get_name(const json_t *req, const char **name, char *err, size_t errlen)
{
	if (admin_get_string(req, "name", name, err, errlen) != 0)
		return 1;
	if (!admin_valid_workspace_name(*name)) {
		snprintf(err, errlen,
			 "invalid workspace name: use 1 to %d lower-case letters, digits and '-', "
			 "starting with a letter or a digit",
			 ADMIN_WORKSPACE_NAME_MAX);
		return 1;
	}
	return 0;
}

static const char *const admin_key_types[] = {
	"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"ssh-rsa",
};

/*
 * "TYPE BASE64 [COMMENT]" (an OpenSSH .pub line) to the canonical "TYPE BASE64" and its
 * "SHA256:…" fingerprint, computed exactly as broker-auth.c computes the fingerprint of a
 * key that authenticates, so the two always compare equal.
 */
static int
admin_parse_pubkey(const char *text, char **canon, char **fp, char *err, size_t errlen)
{
	char *copy = NULL, *type, *b64, *save = NULL, *exported = NULL, *f = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0, i, n;
	ssh_key key = NULL;
	bool known = false;
	int ret = 1;

	*canon = NULL;
	*fp = NULL;
	if (strlen(text) > ADMIN_MAX_PUBKEY) {
		snprintf(err, errlen, "the public key is longer than %d bytes", ADMIN_MAX_PUBKEY);
		return 1;
	}
	if ((copy = strdup(text)) == NULL)
		return -1;
	type = strtok_r(copy, " \t\r\n", &save);
	b64 = type != NULL ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	if (type == NULL || b64 == NULL) {
		snprintf(err, errlen,
			 "the public key must be one OpenSSH public key line (\"ssh-ed25519 AAAA… "
			 "comment\", the content of a .pub file)");
		goto out;
	}
	for (i = 0; i < sizeof(admin_key_types) / sizeof(admin_key_types[0]); i++)
		if (strcmp(type, admin_key_types[i]) == 0)
			known = true;
	if (!known) {
		char vis[48];

		for (n = 0; type[n] != '\0' && n < sizeof(vis) - 1; n++)
			vis[n] = (type[n] > ' ' && type[n] < 0x7f) ? type[n] : '?';
		vis[n] = '\0';
		snprintf(err, errlen,
			 "unsupported key type \"%s\": use ssh-ed25519 (or ecdsa-sha2-nistp256/384/"
			 "521, ssh-rsa); certificates and security keys are not accepted",
			 vis);
		goto out;
	}
	if (ssh_pki_import_pubkey_base64(b64, ssh_key_type_from_name(type), &key) != SSH_OK ||
	    ssh_pki_export_pubkey_base64(key, &exported) != SSH_OK) {
		snprintf(err, errlen, "the %s public key is not valid (damaged base64 data?)",
			 type);
		goto out;
	}
	/* The blob names its own type: a blob of another type, or trailing bytes, do not come
	 * back the same. */
	if (strcmp(exported, b64) != 0) {
		snprintf(err, errlen, "the public key's data does not match its type %s", type);
		goto out;
	}
	ret = -1;
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK ||
	    (f = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) == NULL)
		goto out;
	n = strlen(type) + 1 + strlen(exported) + 1;
	if ((*canon = malloc(n)) == NULL)
		goto out;
	snprintf(*canon, n, "%s %s", type, exported);
	if ((*fp = strdup(f)) == NULL) {
		free(*canon);
		*canon = NULL;
		goto out;
	}
	ret = 0;
out:
	if (hash != NULL)
		ssh_clean_pubkey_hash(&hash);
	if (f != NULL)
		ssh_string_free_char(f);
	if (exported != NULL)
		ssh_string_free_char(exported);
	ssh_key_free(key);
	free(copy);
	return ret;
}

/* The public view of a workspace, as workspace.add and workspace.list give it. */
static json_t *
admin_workspace_json(struct broker *b, const struct store_workspace *w)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:b}", "name", w->name, "owner",
			 w->owner_sub, "profile", w->profile, "key_fp", w->key_fp, "created",
			 (json_int_t)w->created, "killed", w->killed != 0, "online",
			 workspace_is_online(b, w->name));
}

static int
admin_op_workspace_add(struct broker *b, const char *actor, const json_t *req, json_t *resp,
		       char *err, size_t errlen)
{
	struct store_workspace w = { 0 }, other = { 0 };
	const char *name, *owner, *pubkey, *profile = "public"; /* least privilege unless asked */
	char *canon = NULL, *fp = NULL;
	const unsigned char *p;
	json_t *item;
	int r, ret = 1;

	if (admin_get_name(req, &name, err, errlen) != 0 ||
	    admin_get_string(req, "owner", &owner, err, errlen) != 0 ||
	    admin_get_string(req, "pubkey", &pubkey, err, errlen) != 0)
		return 1;
	if (json_object_get(req, "profile") != NULL &&
	    admin_get_string(req, "profile", &profile, err, errlen) != 0)
		return 1;
	if (strcmp(profile, "corporate") != 0 && strcmp(profile, "public") != 0) {
		snprintf(err, errlen, "profile must be \"corporate\" or \"public\"");
		return 1;
	}
	/* The subject goes into logs, tables and audit events: printable, bounded. */
	for (p = (const unsigned char *)owner; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			break;
	if (*owner == '\0' || *p != '\0' || strlen(owner) > ADMIN_MAX_OWNER) {
		snprintf(err, errlen,
			 "owner must be the owner's IdP subject (the \"sub\" claim): 1 to %d "
			 "printable characters",
			 ADMIN_MAX_OWNER);
		return 1;
	}
	if ((r = admin_parse_pubkey(pubkey, &canon, &fp, err, errlen)) != 0)
		return r;

	if ((r = store_workspace_get(b->store, name, &other)) == 0) {
		snprintf(err, errlen,
			 "a workspace named %s already exists: remove it first or choose another "
			 "name",
			 name);
		goto out;
	}
	if (r < 0)
		goto dberr;
	if ((r = store_workspace_find_by_key(b->store, fp, &other)) == 0) {
		snprintf(err, errlen,
			 "this key (%s) is already registered for workspace %s: every workspace "
			 "needs its own key",
			 fp, other.name);
		goto out;
	}
	if (r < 0)
		goto dberr;

	w.name = (char *)name;
	w.owner_sub = (char *)owner;
	w.pubkey = canon;
	w.key_fp = fp;
	w.profile = (char *)profile;
	w.created = (int64_t)time(NULL);
	if ((r = store_workspace_add(b->store, &w)) == 1) {
		snprintf(err, errlen, "workspace %s or its key is already registered", name);
		goto out;
	}
	if (r < 0)
		goto dberr;
	log_info("admin: workspace %s added (owner %s, profile %s, key %s)", name, owner, profile,
		 fp);
	ret = -1;
	if ((item = admin_workspace_json(b, &w)) == NULL ||
	    json_object_set_new(resp, "workspace", item) != 0)
		goto out;
	ret = 0;
	goto out;
dberr:
	snprintf(err, errlen, "the broker's database failed: see the broker's log");
out:
	store_workspace_clear(&other);
	free(canon);
	free(fp);
	return ret;
}

struct admin_list_ctx {
	struct broker *b;
	json_t *arr;
	bool nomem;
};

static int
admin_list_cb(const struct store_workspace *w, void *arg)
{
	struct admin_list_ctx *ctx = arg;
	json_t *item = admin_workspace_json(ctx->b, w);

	if (item == NULL || json_array_append_new(ctx->arr, item) != 0) {
		ctx->nomem = true;
		return 1;
	}
	return 0;
}

static int
admin_op_workspace_list(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			char *err, size_t errlen)
{
	struct admin_list_ctx ctx = { .b = b };

	if ((ctx.arr = json_array()) == NULL)
		return -1;
	if (store_workspace_list(b->store, admin_list_cb, &ctx) != 0 || ctx.nomem) {
		json_decref(ctx.arr);
		if (ctx.nomem)
			return -1;
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	return json_object_set_new(resp, "workspaces", ctx.arr) == 0 ? 0 : -1;
}

static int
admin_op_workspace_remove(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			  char *err, size_t errlen)
{
	const char *name;
	bool online;
	int r;

	if (admin_get_name(req, &name, err, errlen) != 0)
		return 1;
	if ((r = store_workspace_remove(b->store, name)) == 1) {
		snprintf(err, errlen, "no workspace named %s", name);
		return 1;
	}
	if (r < 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	/* Durable first: once removed, a reconnecting workspace is refused by its key. */
	online = workspace_is_online(b, name);
	workspace_disconnect(b, name, "workspace removed by an administrator");
	log_info("admin: workspace %s removed%s", name, online ? " (disconnected)" : "");
	if (json_object_set_new(resp, "name", json_string(name)) != 0 ||
	    json_object_set_new(resp, "disconnected", json_boolean(online)) != 0)
		return -1;
	return 0;
}

static int
admin_op_ping(struct broker *b, const char *actor, const json_t *req, json_t *resp, char *err,
	      size_t errlen)
{
	if (json_object_set_new(resp, "version", json_string(SAW_VERSION)) != 0 ||
	    json_object_set_new(resp, "protocol", json_integer(ADMIN_PROTOCOL_VERSION)) != 0)
		return -1;
	return 0;
}

/* ---- issue #4: sessions, users, locks, the kill switch ------------------------------------ */

#define ADMIN_MAX_USER 255 /* a user name or an IdP subject */
#define ADMIN_MAX_TEXT 500 /* a reason or a lock message */
#define ADMIN_MAX_LOCK (366 * 86400LL)

static const char *const admin_states[] = { "live", "expired", "revoked" };

/* A printable string member of at most max bytes; optional ones may be absent (*out NULL). */
static int
admin_get_text(const json_t *req, const char *key, bool required, size_t max, const char **out,
	       char *err, size_t errlen)
{
	const unsigned char *p;

	*out = NULL;
	if (json_object_get(req, key) == NULL && !required)
		return 0;
	if (admin_get_string(req, key, out, err, errlen) != 0)
		return 1;
	for (p = (const unsigned char *)*out; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "\"%s\" must not contain control characters", key);
			return 1;
		}
	}
	if (**out == '\0' || strlen(*out) > max) {
		snprintf(err, errlen, "\"%s\" must be 1 to %zu characters", key, max);
		return 1;
	}
	return 0;
}

/*
 * "user" names a user by SSH user name ("alice") or by IdP subject ("sub:SUBJECT"), the two
 * key spellings of the lock table (broker-store.h). The filter finds that user's sessions.
 */
static int
admin_get_user(const json_t *req, char *key, size_t keylen, struct store_filter *f, char *err,
	       size_t errlen)
{
	const char *user;

	if (admin_get_text(req, "user", true, ADMIN_MAX_USER, &user, err, errlen) != 0)
		return 1;
	memset(f, 0, sizeof(*f));
	if (strncmp(user, "sub:", 4) == 0) {
		if (user[4] == '\0') {
			snprintf(err, errlen, "\"sub:\" must be followed by the IdP subject");
			return 1;
		}
		snprintf(key, keylen, "%s", user);
		f->sub = key + 4;
	} else {
		snprintf(key, keylen, "user:%s", user);
		f->username = key + 5;
	}
	return 0;
}

/* "2h", "30m", "1h30m", "45s", "7d", "1w": seconds, or -1. */
static long long
admin_parse_duration(const char *s)
{
	long long total = 0, n;
	const char *p = s;

	if (*p == '\0')
		return -1;
	while (*p != '\0') {
		if (*p < '0' || *p > '9')
			return -1;
		for (n = 0; *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (*p - '0');
			if (n > ADMIN_MAX_LOCK)
				return -1;
		}
		switch (*p) {
		case 's':
			break;
		case 'm':
			n *= 60;
			break;
		case 'h':
			n *= 3600;
			break;
		case 'd':
			n *= 86400;
			break;
		case 'w':
			n *= 7 * 86400;
			break;
		default:
			return -1;
		}
		p++;
		total += n;
		if (total > ADMIN_MAX_LOCK)
			return -1;
	}
	return total;
}

/* RFC 3339 "2026-11-23T18:00:00Z" or with "+01:00"; fractions ignored. -1 if not one. */
static int64_t
admin_parse_rfc3339(const char *s)
{
	struct tm tm;
	int off = 0, oh, om, n = 0;
	char sign;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -1;
	p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p, "%c%2d:%2d", &sign, &oh, &om) == 3 &&
		   strlen(p) == 6 && oh < 24 && om < 60) {
		off = (oh * 60 + om) * 60 * (sign == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970 ||
	    tm.tm_year > 9999)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) - off;
}

/* "until": absent, null or 0 (until unlocked), seconds since the epoch, an RFC 3339 time or a
 * duration from now ("2h"). */
static int
admin_get_until(const json_t *req, int64_t now, int64_t *until, char *err, size_t errlen)
{
	const json_t *v = json_object_get(req, "until");
	long long d;

	*until = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*until = (int64_t)json_integer_value(v);
		if (*until == 0)
			return 0;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if ((d = admin_parse_duration(s)) > 0)
			*until = now + d;
		else if ((*until = admin_parse_rfc3339(s)) < 0) {
			snprintf(err, errlen,
				 "\"until\" must be a duration (e.g. 2h, 30m, 1d) or an RFC 3339 "
				 "time (e.g. 2026-11-23T18:00:00Z)");
			return 1;
		}
	} else {
		snprintf(err, errlen,
			 "\"until\" must be a time (string or seconds since the epoch)");
		return 1;
	}
	if (*until <= now) {
		snprintf(err, errlen, "\"until\" is in the past");
		return 1;
	}
	if (*until - now > ADMIN_MAX_LOCK) {
		snprintf(err, errlen,
			 "\"until\" is more than a year away: lock without a time instead, and "
			 "unlock when it is over");
		return 1;
	}
	return 0;
}

static json_t *
admin_session_json(const struct store_session *s)
{
	json_t *o, *groups = NULL;

	if (s->groups != NULL)
		groups = json_loads(s->groups, 0, NULL);
	if (!json_is_array(groups)) {
		json_decref(groups);
		groups = json_array();
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "id", s->id, "username",
		      s->username != NULL ? s->username : "", "sub", s->sub != NULL ? s->sub : "",
		      "iss", s->iss != NULL ? s->iss : "", "state",
		      (unsigned)s->state < 3 ? admin_states[s->state] : "unknown", "created",
		      (json_int_t)s->created, "expires", (json_int_t)s->expires, "idle_deadline",
		      (json_int_t)s->idle_deadline, "key_fp", s->key_fp != NULL ? s->key_fp : "",
		      "groups", groups);
	if (o == NULL)
		return NULL;
	if ((s->sid != NULL && json_object_set_new(o, "sid", json_string(s->sid)) != 0) ||
	    (s->email != NULL && json_object_set_new(o, "email", json_string(s->email)) != 0) ||
	    (s->end_reason != NULL &&
	     json_object_set_new(o, "end_reason", json_string(s->end_reason)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

struct admin_sessions_ctx {
	json_t *arr;
	bool nomem;
};

static void
admin_sessions_cb(const struct store_session *s, void *arg)
{
	struct admin_sessions_ctx *ctx = arg;
	json_t *o;

	if (ctx->nomem)
		return;
	if ((o = admin_session_json(s)) == NULL || json_array_append_new(ctx->arr, o) != 0)
		ctx->nomem = true;
}

static int
admin_op_session_list(struct broker *b, const char *actor, const json_t *req, json_t *resp,
		      char *err, size_t errlen)
{
	struct admin_sessions_ctx ctx = { 0 };
	const char *user;
	const json_t *all = json_object_get(req, "all");

	if (admin_get_text(req, "user", false, ADMIN_MAX_USER, &user, err, errlen) != 0)
		return 1;
	if (all != NULL && !json_is_boolean(all)) {
		snprintf(err, errlen, "\"all\" must be true or false");
		return 1;
	}
	if ((ctx.arr = json_array()) == NULL)
		return -1;
	if (store_session_list(b->store, user, json_is_true(all), admin_sessions_cb, &ctx) < 0) {
		json_decref(ctx.arr);
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (ctx.nomem) {
		json_decref(ctx.arr);
		return -1;
	}
	return json_object_set_new(resp, "sessions", ctx.arr) == 0 ? 0 : -1;
}

static int
admin_op_session_revoke(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			char *err, size_t errlen)
{
	struct store_session s;
	const char *id, *reason;
	int r;

	if (admin_get_text(req, "id", true, STORE_ID_LEN, &id, err, errlen) != 0 ||
	    admin_get_text(req, "reason", false, ADMIN_MAX_TEXT, &reason, err, errlen) != 0)
		return 1;
	memset(&s, 0, sizeof(s));
	if ((r = store_session_get(b->store, id, &s)) != 0) {
		if (r > 0)
			snprintf(err, errlen, "no session %s (see sawctl sessions --all)", id);
		else
			snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (s.state != STORE_LIVE) {
		snprintf(err, errlen, "session %s has already ended (%s)", id,
			 s.end_reason != NULL ? s.end_reason : admin_states[s.state % 3]);
		store_session_clear(&s);
		return 1;
	}
	store_session_clear(&s);
	r = revoke_session(b, id, reason != NULL ? reason : "by an administrator", actor);
	if (r < 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (json_object_set_new(resp, "id", json_string(id)) != 0 ||
	    json_object_set_new(resp, "revoked", json_boolean(r == 0)) != 0)
		return -1;
	return 0;
}

static int
admin_op_user_revoke(struct broker *b, const char *actor, const json_t *req, json_t *resp,
		     char *err, size_t errlen)
{
	struct store_filter f;
	const char *reason;
	char key[ADMIN_MAX_USER + 8];
	int count = 0;

	if (admin_get_user(req, key, sizeof(key), &f, err, errlen) != 0 ||
	    admin_get_text(req, "reason", false, ADMIN_MAX_TEXT, &reason, err, errlen) != 0)
		return 1;
	if (revoke_matching(b, &f, reason != NULL ? reason : "by an administrator", actor,
			    &count) != 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (json_object_set_new(resp, "user", json_string(key)) != 0 ||
	    json_object_set_new(resp, "revoked", json_integer(count)) != 0)
		return -1;
	return 0;
}

static int
admin_op_user_lock(struct broker *b, const char *actor, const json_t *req, json_t *resp, char *err,
		   size_t errlen)
{
	struct store_filter f;
	const char *message;
	char key[ADMIN_MAX_USER + 8];
	int64_t until;
	int count = 0;

	if (admin_get_user(req, key, sizeof(key), &f, err, errlen) != 0 ||
	    admin_get_text(req, "message", false, ADMIN_MAX_TEXT, &message, err, errlen) != 0 ||
	    admin_get_until(req, broker_now(), &until, err, errlen) != 0)
		return 1;
	if (revoke_lock_user(b, key, until, message, actor, &count) != 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (json_object_set_new(resp, "user", json_string(key)) != 0 ||
	    json_object_set_new(resp, "until", json_integer(until)) != 0 ||
	    json_object_set_new(resp, "revoked", json_integer(count)) != 0)
		return -1;
	return 0;
}

static int
admin_op_user_unlock(struct broker *b, const char *actor, const json_t *req, json_t *resp,
		     char *err, size_t errlen)
{
	struct store_filter f;
	char key[ADMIN_MAX_USER + 8];
	int r;

	if (admin_get_user(req, key, sizeof(key), &f, err, errlen) != 0)
		return 1;
	if ((r = revoke_unlock_user(b, key, actor)) < 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (r > 0) {
		snprintf(err, errlen, "no lock for %s (see sawctl locks)", key);
		return 1;
	}
	return json_object_set_new(resp, "user", json_string(key)) == 0 ? 0 : -1;
}

struct admin_locks_ctx {
	json_t *arr;
	bool nomem;
};

static void
admin_locks_cb(const char *key, int64_t until, const char *message, void *arg)
{
	struct admin_locks_ctx *ctx = arg;
	json_t *o;

	if (ctx->nomem)
		return;
	o = json_pack("{s:s, s:I}", "user", key, "until", (json_int_t)until);
	if (o == NULL ||
	    (message != NULL && json_object_set_new(o, "message", json_string(message)) != 0) ||
	    json_array_append_new(ctx->arr, o) != 0)
		ctx->nomem = true;
}

static int
admin_op_lock_list(struct broker *b, const char *actor, const json_t *req, json_t *resp, char *err,
		   size_t errlen)
{
	struct admin_locks_ctx ctx = { 0 };

	if ((ctx.arr = json_array()) == NULL)
		return -1;
	if (store_lock_list(b->store, broker_now(), admin_locks_cb, &ctx) < 0) {
		json_decref(ctx.arr);
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (ctx.nomem) {
		json_decref(ctx.arr);
		return -1;
	}
	return json_object_set_new(resp, "locks", ctx.arr) == 0 ? 0 : -1;
}

static int
admin_op_workspace_kill(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			char *err, size_t errlen)
{
	const char *name, *reason;
	int r;

	if (admin_get_name(req, &name, err, errlen) != 0 ||
	    admin_get_text(req, "reason", false, ADMIN_MAX_TEXT, &reason, err, errlen) != 0)
		return 1;
	/* a second kill is not an error: it drops anything that got in since and re-runs the
	 * KillCommand (the platform may have missed the first) */
	r = revoke_kill_workspace(b, name, reason, actor);
	if (r > 0) {
		snprintf(err, errlen, "no workspace named %s", name);
		return 1;
	}
	if (r < 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (json_object_set_new(resp, "name", json_string(name)) != 0 ||
	    json_object_set_new(resp, "killed", json_true()) != 0)
		return -1;
	return 0;
}

static int
admin_op_workspace_revive(struct broker *b, const char *actor, const json_t *req, json_t *resp,
			  char *err, size_t errlen)
{
	const char *name;
	int r;

	if (admin_get_name(req, &name, err, errlen) != 0)
		return 1;
	r = revoke_revive_workspace(b, name, actor);
	if (r > 0) {
		snprintf(err, errlen, "no workspace named %s", name);
		return 1;
	}
	if (r < 0) {
		snprintf(err, errlen, "the broker's database failed: see the broker's log");
		return 1;
	}
	if (json_object_set_new(resp, "name", json_string(name)) != 0 ||
	    json_object_set_new(resp, "killed", json_false()) != 0)
		return -1;
	return 0;
}

static const char *const admin_fields_none[] = { NULL };
static const char *const admin_fields_add[] = { "name", "owner", "pubkey", "profile", NULL };
static const char *const admin_fields_name[] = { "name", NULL };

static const char *const admin_fields_slist[] = { "user", "all", NULL };
static const char *const admin_fields_srevoke[] = { "id", "reason", NULL };
static const char *const admin_fields_urevoke[] = { "user", "reason", NULL };
static const char *const admin_fields_lock[] = { "user", "until", "message", NULL };
static const char *const admin_fields_user[] = { "user", NULL };
static const char *const admin_fields_kill[] = { "name", "reason", NULL };

static const struct admin_op admin_ops[] = {
	{ "ping", admin_op_ping, admin_fields_none },
	{ "workspace.add", admin_op_workspace_add, admin_fields_add },
	{ "workspace.list", admin_op_workspace_list, admin_fields_none },
	{ "workspace.remove", admin_op_workspace_remove, admin_fields_name },
	{ "workspace.kill", admin_op_workspace_kill, admin_fields_kill },
	{ "workspace.revive", admin_op_workspace_revive, admin_fields_name },
	{ "session.list", admin_op_session_list, admin_fields_slist },
	{ "session.revoke", admin_op_session_revoke, admin_fields_srevoke },
	{ "user.revoke", admin_op_user_revoke, admin_fields_urevoke },
	{ "user.lock", admin_op_user_lock, admin_fields_lock },
	{ "user.unlock", admin_op_user_unlock, admin_fields_user },
	{ "lock.list", admin_op_lock_list, admin_fields_none },
};

static bool
admin_field_known(const struct admin_op *op, const char *key)
{
	const char *const *f;

	if (strcmp(key, "op") == 0 || strcmp(key, "id") == 0)
		return true;
	for (f = op->fields; *f != NULL; f++)
		if (strcmp(*f, key) == 0)
			return true;
	return false;
}

/* Runs req; fills resp's members. Same return convention as an operation. */
static int
admin_run(struct broker *b, const char *actor, const json_t *req, json_t *resp, char *err,
	  size_t errlen)
{
	const struct admin_op *op = NULL;
	const char *name, *key;
	const json_t *v;
	size_t i;

	if (!json_is_object(req)) {
		snprintf(err, errlen, "a request must be a JSON object");
		return 1;
	}
	v = json_object_get(req, "id");
	if (v != NULL) {
		if (!(json_is_integer(v) ||
		      (json_is_string(v) && json_string_length(v) <= ADMIN_MAX_ID))) {
			snprintf(err, errlen,
				 "\"id\" must be an integer or a string of at most %d "
				 "bytes",
				 ADMIN_MAX_ID);
			return 1;
		}
		if (json_object_set(resp, "id", (json_t *)v) != 0)
			return -1;
	}
	if (admin_get_string(req, "op", &name, err, errlen) != 0)
		return 1;
	for (i = 0; i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++)
		if (strcmp(admin_ops[i].name, name) == 0)
			op = &admin_ops[i];
	if (op == NULL) {
		snprintf(err, errlen,
			 "unknown operation (this broker knows ping, workspace.add, "
			 "workspace.list, workspace.remove, workspace.kill, workspace.revive, "
			 "session.list, session.revoke, user.revoke, user.lock, user.unlock and "
			 "lock.list)");
		return 1;
	}
	json_object_foreach((json_t *)req, key, v) {
		if (!admin_field_known(op, key)) {
			/* keys are valid UTF-8 (jansson checks) but may be long or odd */
			snprintf(err, errlen, "%s does not take \"%.40s\"", op->name, key);
			return 1;
		}
	}
	return op->fn(b, actor, req, resp, err, errlen);
}

int
admin_dispatch(struct broker *b, const json_t *req, json_t **resp)
{
	return admin_dispatch_as(b, "admin", req, resp);
}

int
admin_dispatch_as(struct broker *b, const char *actor, const json_t *req, json_t **resp)
{
	char err[512];
	int r;

	*resp = NULL;
	err[0] = '\0';
	if ((*resp = json_object()) == NULL)
		return -1;
	r = admin_run(b, actor, req, *resp, err, sizeof(err));
	if (r < 0) {
		json_decref(*resp);
		*resp = NULL;
		return -1;
	}
	if (r > 0) {
		/* an answer carries its result or its error, never half of one: keep only id */
		json_t *id = json_object_get(*resp, "id");

		json_incref(id);
		json_object_clear(*resp);
		if ((id != NULL && json_object_set_new(*resp, "id", id) != 0) ||
		    json_object_set_new(*resp, "ok", json_false()) != 0 ||
		    json_object_set_new(*resp, "error", json_string(err[0] ? err : "failed")) !=
			    0) {
			json_decref(*resp);
			*resp = NULL;
			return -1;
		}
		return 0;
	}
	if (json_object_set_new(*resp, "ok", json_true()) != 0) {
		json_decref(*resp);
		*resp = NULL;
		return -1;
	}
	return 0;
}

/* {"ok":false,"error":msg} as a line; NULL when out of memory. */
static char *
admin_error_line(const char *msg)
{
	json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	char *s = NULL, *line = NULL;
	size_t n;

	if (o != NULL && (s = json_dumps(o, JSON_COMPACT)) != NULL) {
		n = strlen(s);
		if ((line = malloc(n + 2)) != NULL) {
			memcpy(line, s, n);
			memcpy(line + n, "\n", 2);
		}
	}
	free(s);
	json_decref(o);
	return line;
}

int
admin_op_activity(const char *op)
{
	if (op == NULL)
		return OCSF_API_READ;
	if (strcmp(op, "workspace.add") == 0)
		return OCSF_API_CREATE;
	if (strcmp(op, "workspace.remove") == 0 || strcmp(op, "session.revoke") == 0 ||
	    strcmp(op, "user.revoke") == 0)
		return OCSF_API_DELETE;
	if (strcmp(op, "user.lock") == 0 || strcmp(op, "user.unlock") == 0 ||
	    strcmp(op, "workspace.kill") == 0 || strcmp(op, "workspace.revive") == 0)
		return OCSF_API_UPDATE;
	return OCSF_API_READ; /* ping, lists, and what is not an operation at all */
}

/*
 * The result of a successful operation for the audit: its scalar members ("name=alice-ws
 * revoked=2"), and the size of its lists ("sessions: 3"). Never a whole list: a session
 * list is not an audit record. Nothing in a response is secret (the protocol has no secret).
 */
void
admin_result_summary(const json_t *resp, char *buf, size_t len)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	int w;

	if (len == 0)
		return;
	buf[0] = '\0';
	json_object_foreach((json_t *)resp, key, v) {
		if (strcmp(key, "ok") == 0 || strcmp(key, "id") == 0 || n >= len)
			continue;
		if (json_is_string(v))
			w = snprintf(buf + n, len - n, "%s%s=%.80s", n ? " " : "", key,
				     json_string_value(v));
		else if (json_is_integer(v))
			w = snprintf(buf + n, len - n, "%s%s=%lld", n ? " " : "", key,
				     (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			w = snprintf(buf + n, len - n, "%s%s=%s", n ? " " : "", key,
				     json_is_true(v) ? "true" : "false");
		else if (json_is_array(v))
			w = snprintf(buf + n, len - n, "%s%s: %zu", n ? " " : "", key,
				     json_array_size(v));
		else if (json_is_object(v) && json_is_string(json_object_get(v, "name")))
			w = snprintf(buf + n, len - n, "%s%s=%.80s", n ? " " : "", key,
				     json_string_value(json_object_get(v, "name")));
		else
			continue;
		if (w < 0)
			return;
		n = (size_t)w >= len - n ? len - 1 : n + (size_t)w;
	}
}

/* What one request was and how it ended, for the admin socket's audit event. */
struct admin_outcome {
	char op[64];
	bool ok;
	char detail[400];
};

static void
admin_outcome_set(struct admin_outcome *oc, const json_t *req, const json_t *resp,
		  const char *error)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const json_t *e;

	if (oc == NULL)
		return;
	snprintf(oc->op, sizeof(oc->op), "%s", op != NULL ? op : "unknown");
	oc->ok = resp != NULL && json_is_true(json_object_get(resp, "ok"));
	if (error != NULL)
		snprintf(oc->detail, sizeof(oc->detail), "%s", error);
	else if (!oc->ok && json_is_string(e = json_object_get(resp, "error")))
		snprintf(oc->detail, sizeof(oc->detail), "%s", json_string_value(e));
	else if (oc->ok)
		admin_result_summary(resp, oc->detail, sizeof(oc->detail));
}

static int admin_request_run(struct broker *b, const char *actor, const char *line, size_t len,
			     char **out, struct admin_outcome *oc);

int
admin_request(struct broker *b, const char *line, size_t len, char **out)
{
	return admin_request_run(b, "admin", line, len, out, NULL);
}

int
admin_request_as(struct broker *b, const char *actor, const char *line, size_t len, char **out)
{
	return admin_request_run(b, actor, line, len, out, NULL);
}

static int
admin_request_run(struct broker *b, const char *actor, const char *line, size_t len, char **out,
		  struct admin_outcome *oc)
{
	json_error_t jerr;
	json_t *req = NULL, *resp = NULL;
	char *s = NULL;
	size_t n;
	char msg[256];

	*out = NULL;
	if (len > ADMIN_MAX_LINE) {
		snprintf(msg, sizeof(msg), "request longer than %d bytes", ADMIN_MAX_LINE);
		admin_outcome_set(oc, NULL, NULL, msg);
		return (*out = admin_error_line(msg)) != NULL ? 0 : -1;
	}
	/* JSON_REJECT_DUPLICATES: {"name":"a","name":"b"} must not mean whichever came last */
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (req == NULL) {
		char vis[128];

		/* jansson quotes the offending input, which may be any bytes: made printable, or
		 * the answer (a JSON string) could not be built at all */
		snprintf(msg, sizeof(msg), "the request is not valid JSON (%s, at byte %d)",
			 conf_vis(jerr.text, vis, sizeof(vis)), jerr.position);
		admin_outcome_set(oc, NULL, NULL, msg);
		return (*out = admin_error_line(msg)) != NULL ? 0 : -1;
	}
	if (admin_dispatch_as(b, actor, req, &resp) != 0)
		goto fail;
	admin_outcome_set(oc, req, resp, NULL);
	if ((s = json_dumps(resp, JSON_COMPACT)) == NULL)
		goto fail;
	n = strlen(s);
	if ((*out = malloc(n + 2)) == NULL)
		goto fail;
	memcpy(*out, s, n);
	memcpy(*out + n, "\n", 2);
	free(s);
	json_decref(req);
	json_decref(resp);
	return 0;
fail:
	free(s);
	json_decref(req);
	json_decref(resp);
	return -1;
}

/* ---- connections ------------------------------------------------------------------------ */

static void
admin_client_free(struct admin_client *c)
{
	struct admin *a = c->admin;

	TAILQ_REMOVE(&a->clients, c, entry);
	a->nclients--;
	/* bufferevent_free clears the callbacks: nothing of c is touched after this */
	bufferevent_free(c->bev);
	free(c);
}

/* Queue a last answer (msg may be NULL) and close once it is written. Returns -1 if c was
 * freed already (nothing was left to write), 0 if it is now closing. */
static int
admin_client_finish(struct admin_client *c, const char *msg)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char *line = msg != NULL ? admin_error_line(msg) : NULL;

	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (line != NULL) {
		bufferevent_write(c->bev, line, strlen(line));
		free(line);
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		admin_client_free(c);
		return -1;
	}
	/* the write callback frees c once the output is gone */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

/*
 * API Activity of one admin socket request (or refusal). The caller is who the kernel says
 * (SO_PEERCRED): the uid, and the pid in the detail.
 */
static void
admin_audit(struct admin *a, uid_t uid, pid_t pid, const char *op, bool ok, const char *detail)
{
	struct broker_api_call call;
	char uidtext[32], name[64], what[512];

	/* the uid only: an account name lookup may go to NSS (LDAP, …) and block the loop */
	memset(&call, 0, sizeof(call));
	snprintf(uidtext, sizeof(uidtext), "%u", (unsigned)uid);
	if (uid == (uid_t)-1)
		snprintf(name, sizeof(name), "unknown");
	else
		snprintf(name, sizeof(name), "uid %u", (unsigned)uid);
	snprintf(what, sizeof(what), "pid %d%s%s", (int)pid, detail != NULL && *detail ? ": " : "",
		 detail != NULL ? detail : "");
	call.activity = admin_op_activity(op);
	call.operation = op;
	call.caller_name = name;
	call.caller_uid = uid == (uid_t)-1 ? NULL : uidtext;
	call.src_name = "admin socket";
	call.success = ok;
	call.detail = what;
	broker_audit_api(a->broker, &call);
}

/* One request line, answered in order. Returns 0, or -1 if c was freed. */
static int
admin_client_line(struct admin_client *c, const char *line, size_t n)
{
	struct admin_outcome oc;
	char *resp = NULL, actor[64];

	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n == 0)
		return 0; /* blank lines are allowed between requests */
	log_debug("admin: uid %u pid %d: request of %zu bytes", (unsigned)c->uid, (int)c->pid, n);
	snprintf(actor, sizeof(actor), "admin uid %u", (unsigned)c->uid);
	memset(&oc, 0, sizeof(oc));
	if (admin_request_run(c->admin->broker, actor, line, n, &resp, &oc) != 0) {
		log_warnx("admin: out of memory answering uid %u", (unsigned)c->uid);
		admin_audit(c->admin, c->uid, c->pid, "unknown", false,
			    "the broker is out of memory");
		return admin_client_finish(c, "the broker is out of memory");
	}
	admin_audit(c->admin, c->uid, c->pid, oc.op, oc.ok, oc.detail);
	bufferevent_write(c->bev, resp, strlen(resp));
	free(resp);
	return 0;
}

static int
admin_client_too_long(struct admin_client *c)
{
	char msg[96];

	log_info("admin: uid %u pid %d sent a request line longer than %d bytes", (unsigned)c->uid,
		 (int)c->pid, ADMIN_MAX_LINE);
	snprintf(msg, sizeof(msg), "request line longer than %d bytes: connection closed",
		 ADMIN_MAX_LINE);
	admin_audit(c->admin, c->uid, c->pid, "unknown", false, msg);
	return admin_client_finish(c, msg);
}

/* Answers every complete line buffered. Returns 0 (c may now be closing or paused), or -1
 * if c was freed. */
static int
admin_client_process(struct admin_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_ptr eol;
	char *line;
	size_t n;
	int r;

	while (!c->closing) {
		if (evbuffer_get_length(out) >= ADMIN_OUT_HIGH) {
			/* back-pressure: read more only once the client took its answers */
			c->paused = true;
			bufferevent_disable(c->bev, EV_READ);
			bufferevent_setwatermark(c->bev, EV_WRITE, ADMIN_OUT_LOW, 0);
			return 0;
		}
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			/* no "\n" yet: room for ADMIN_MAX_LINE bytes and a "\r" at most */
			if (evbuffer_get_length(in) <= ADMIN_MAX_LINE + 1)
				return 0;
			return admin_client_too_long(c);
		}
		if ((size_t)eol.pos > ADMIN_MAX_LINE + 1)
			return admin_client_too_long(c);
		if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) == NULL)
			return admin_client_finish(c, "the broker is out of memory");
		if (n == ADMIN_MAX_LINE + 1 && line[n - 1] != '\r') {
			free(line);
			return admin_client_too_long(c);
		}
		r = admin_client_line(c, line, n);
		free(line);
		if (r != 0)
			return -1;
	}
	return 0;
}

static void
admin_client_read(struct bufferevent *bev, void *arg)
{
	(void)admin_client_process(arg);
}

static void
admin_client_write(struct bufferevent *bev, void *arg)
{
	struct admin_client *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			admin_client_free(c);
		return;
	}
	if (c->paused) {
		c->paused = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
		(void)admin_client_process(c); /* lines that were already buffered */
	}
}

/* The single path for EOF, errors and the idle timeout. */
static void
admin_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct admin_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *rest;
	size_t n;

	if (what & BEV_EVENT_TIMEOUT) {
		log_debug("admin: uid %u pid %d idle for %d s: closed", (unsigned)c->uid,
			  (int)c->pid, ADMIN_IDLE_TIMEOUT);
		admin_client_free(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->closing) {
		/* The client is done sending (it may have shut down its write side only):
		 * answer what it sent, a last line without "\n" included, then close. A client
		 * paused by back-pressure loses what it sent beyond that: it stopped reading. */
		if (admin_client_process(c) != 0 || c->closing)
			return;
		n = evbuffer_get_length(in);
		if (!c->paused && n > 0 && n <= ADMIN_MAX_LINE + 1 && (rest = malloc(n)) != NULL) {
			evbuffer_remove(in, rest, n);
			if (admin_client_line(c, rest, n) != 0) {
				free(rest);
				return;
			}
			free(rest);
		}
		(void)admin_client_finish(c, NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("admin: uid %u pid %d: %s", (unsigned)c->uid, (int)c->pid,
			  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	admin_client_free(c);
}

static bool
admin_peer_in_group(int fd, gid_t peer_gid, gid_t group)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;
	size_t i;

	if (peer_gid == group)
		return true;
	/* SO_PEERGROUPS: the supplementary groups of the process that connected, as the
	 * kernel recorded them (not /etc/group, which may have changed since) */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
		if (errno != ERANGE || (groups = malloc(len)) == NULL)
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
			free(groups);
			return false;
		}
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			found = true;
	if (groups != small)
		free(groups);
	return found;
}

/* NULL if the peer may use the socket, else why not. */
static const char *
admin_peer_check(struct admin *a, int fd, struct ucred *cr, char *why, size_t whylen)
{
	socklen_t len = sizeof(*cr);
	struct group *gr;

	memset(cr, 0, sizeof(*cr));
	cr->uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) != 0 || len != sizeof(*cr)) {
		snprintf(why, whylen, "permission denied: the broker cannot tell who you are");
		return why;
	}
	if (cr->uid == 0 || cr->uid == geteuid())
		return NULL;
	if (a->have_group && admin_peer_in_group(fd, cr->gid, a->group))
		return NULL;
	if (a->have_group) {
		gr = getgrgid(a->group);
		snprintf(why, whylen,
			 "permission denied: uid %u is neither root, the broker's user, nor a "
			 "member of group %s (AdminSocketGroup)",
			 (unsigned)cr->uid, gr != NULL ? gr->gr_name : "?");
	} else {
		snprintf(why, whylen,
			 "permission denied: only root and the broker's user may use the admin "
			 "socket (AdminSocketGroup is not set)");
	}
	return why;
}

static void
admin_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
	     void *arg)
{
	struct admin *a = arg;
	struct admin_client *c = NULL;
	struct timeval tv = { ADMIN_IDLE_TIMEOUT, 0 };
	struct ucred cr;
	const char *denied;
	char why[256], *line;

	denied = admin_peer_check(a, fd, &cr, why, sizeof(why));
	if (denied == NULL && a->nclients >= ADMIN_MAX_CLIENTS)
		denied = "too many admin connections: try again in a moment";
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->bev = bufferevent_socket_new(a->broker->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("admin: out of memory accepting a connection");
		free(c);
		close(fd);
		return;
	}
	c->admin = a;
	c->uid = cr.uid;
	c->pid = cr.pid;
	TAILQ_INSERT_TAIL(&a->clients, c, entry);
	a->nclients++;
	bufferevent_setcb(c->bev, admin_client_read, admin_client_write, admin_client_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (denied != NULL) {
		log_info("admin: refused uid %u pid %d: %s", (unsigned)cr.uid, (int)cr.pid, denied);
		admin_audit(a, cr.uid, cr.pid, "connect", false, denied);
		/* answered at once, before reading anything the client sent */
		if ((line = admin_error_line(denied)) != NULL) {
			bufferevent_write(c->bev, line, strlen(line));
			free(line);
		}
		c->closing = true;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			admin_client_free(c);
		return;
	}
	log_debug("admin: connection from uid %u pid %d", (unsigned)cr.uid, (int)cr.pid);
	/* at most one line and its "\r\n" buffered before an answer is due */
	bufferevent_setwatermark(c->bev, EV_READ, 0, ADMIN_MAX_LINE + 2);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
admin_resume(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
admin_accept_error(struct evconnlistener *l, void *arg)
{
	struct admin *a = arg;
	struct timeval tv = { 1, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	/* out of descriptors: back off instead of spinning on a listener that stays readable */
	log_warnx("admin socket %s: accept: %s", a->path, strerror(e));
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		evconnlistener_disable(l);
		event_base_once(a->broker->base, -1, EV_TIMEOUT, admin_resume, l, &tv);
	}
}

/* ---- the socket file -------------------------------------------------------------------- */

/* A socket file left by a broker that died is removed; a live one is not taken over. */
static int
admin_remove_stale(const char *path)
{
	struct sockaddr_un sun;
	struct stat sb;
	int fd, r, e;

	if (lstat(path, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		log_warn("AdminSocket %s", path);
		return -1;
	}
	if (!S_ISSOCK(sb.st_mode)) {
		log_warnx("AdminSocket %s exists and is not a socket: remove it or choose another "
			  "path",
			  path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("AdminSocket %s: socket", path);
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	close(fd);
	if (r == 0) {
		log_warnx("AdminSocket %s is in use: is another saw-brokerd running? Stop it or "
			  "choose another path",
			  path);
		return -1;
	}
	if (e != ECONNREFUSED && e != ENOENT) {
		log_warnx("AdminSocket %s: cannot tell whether it is in use: %s", path,
			  strerror(e));
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_warn("AdminSocket %s: cannot remove the stale socket", path);
		return -1;
	}
	log_debug("AdminSocket %s: removed a stale socket", path);
	return 0;
}

static void
admin_free(struct admin *a)
{
	struct admin_client *c;
	struct stat sb;

	if (a == NULL)
		return;
	while ((c = TAILQ_FIRST(&a->clients)) != NULL)
		admin_client_free(c);
	if (a->listener != NULL) {
		evconnlistener_free(a->listener);
		/* only the file we made: a new broker may have replaced it meanwhile */
		if (lstat(a->path, &sb) == 0 && S_ISSOCK(sb.st_mode) && sb.st_dev == a->dev &&
		    sb.st_ino == a->ino && unlink(a->path) != 0)
			log_warn("AdminSocket %s: unlink", a->path);
	}
	free(a->path);
	free(a);
}

int
admin_open(struct broker *b)
{
	const char *path = b->cfg.admin_socket, *group = b->cfg.admin_socket_group;
	struct sockaddr_un sun;
	struct admin *a = NULL;
	struct group *gr;
	struct stat sb;
	mode_t old;
	int fd = -1, r;
	bool bound = false;

	if (path == NULL || strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("AdminSocket: no usable path configured");
		return -1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL) {
		log_warnx("admin socket: out of memory");
		free(a);
		return -1;
	}
	a->broker = b;
	TAILQ_INIT(&a->clients);
	if (group != NULL) {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			log_warnx(
				"AdminSocketGroup %s: no such group: create it (groupadd --system "
				"%s) or remove AdminSocketGroup",
				group, group);
			goto fail;
		}
		a->group = gr->gr_gid;
		a->have_group = true;
	}
	if (admin_remove_stale(path) != 0)
		goto fail;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("AdminSocket %s: socket", path);
		goto fail;
	}
	/* The file is born 0660 (no window with a wider mode, no chmod that could follow a
	 * symlink); the process is single-threaded, so the umask change is not observed. */
	old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r != 0) {
		if (errno == ENOENT)
			log_warnx("AdminSocket %s: the directory does not exist: create it (the "
				  "systemd unit's RuntimeDirectory=saw does)",
				  path);
		else if (errno == EACCES || errno == EPERM)
			log_warnx(
				"AdminSocket %s: cannot create the socket: %s (the broker runs as "
				"uid %u: make the directory writable for it)",
				path, strerror(errno), (unsigned)geteuid());
		else
			log_warn("AdminSocket %s: bind", path);
		goto fail;
	}
	bound = true;
	if (lstat(path, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
		log_warnx("AdminSocket %s: the socket file vanished after bind", path);
		goto fail;
	}
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	/* A setgid directory may have given the group already; else the broker's user must be
	 * in the group to hand the socket over (after the privilege drop). */
	if (a->have_group && sb.st_gid != a->group && lchown(path, (uid_t)-1, a->group) != 0) {
		log_warnx("AdminSocket %s: cannot give the socket to group %s: %s (the broker's "
			  "user must be a member of %s, or make the directory setgid %s)",
			  path, group, strerror(errno), group, group);
		goto fail;
	}
	if (listen(fd, 64) != 0) {
		log_warn("AdminSocket %s: listen", path);
		goto fail;
	}
	a->listener = evconnlistener_new(b->base, admin_accept, a,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (a->listener == NULL) {
		log_warnx("AdminSocket %s: cannot listen on the event loop", path);
		goto fail;
	}
	fd = -1; /* the listener owns it */
	evconnlistener_set_error_cb(a->listener, admin_accept_error);
	b->admin = a;
	log_info("admin socket %s ready (root, uid %u%s%s)", path, (unsigned)geteuid(),
		 group != NULL ? ", group " : "", group != NULL ? group : "");
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (bound && a->listener == NULL)
		unlink(path);
	admin_free(a);
	return -1;
}

void
admin_close(struct broker *b)
{
	admin_free(b->admin);
	b->admin = NULL;
}
