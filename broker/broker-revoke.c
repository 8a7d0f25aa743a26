/*
 * Revocation: every way a session ends early (IdP back-channel logout, SET push, admin
 * revoke, lock, kill switch) goes through revoke_session(), in the order the architecture
 * gives:
 *
 *   1. durable mark in the store (a revoked session stays revoked across a restart, and its
 *      key can never log in through it again: find_by_key only returns live rows);
 *   2. close the user's SSH connections, each with one sentence saying why, and the session's
 *      per-session tunnels (their corporate channels close with them);
 *   3. tell every workspace the session was attached to (CTL_SESSION_END): guestd ends the
 *      session's logins and processes and drops its capabilities;
 *   4. audit.
 *
 * All of it runs synchronously on the event loop thread: from the request that caused it to
 * the last TCP FIN there is no queue and no timer, which is what makes it milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

struct revoke_ctx {
	struct broker *b;
	const char *why;
	const char *actor;
	int count;
	int errors;
};

/*
 * Account Change Lock / Unlock, saying who did it (actor) and why. target is a lock key
 * ("sub:SUB" names the user by uid, "user:NAME" by name) or, for the kill switch, a
 * workspace: its account is "workspace:NAME", as it authenticates to the broker.
 */
static void
revoke_audit_account(struct broker *b, enum ocsf_account_activity activity, const char *what,
		     const char *target, const char *workspace, const char *detail,
		     const char *actor)
{
	const char *name = NULL, *uid = NULL;
	char msg[512], account[300];
	json_t *ev;

	if (workspace != NULL) {
		snprintf(account, sizeof(account), "workspace:%s", workspace);
		name = account;
	} else if (strncmp(target, "sub:", 4) == 0) {
		uid = target + 4;
	} else if (strncmp(target, "user:", 5) == 0) {
		name = target + 5;
	} else {
		name = target;
	}
	snprintf(msg, sizeof(msg), "%s %s by %s%s%s", what, target, actor, detail ? ": " : "",
		 detail ? detail : "");
	ev = ocsf_account_change(activity, name, uid, actor, detail != NULL ? detail : what, msg,
				 ocsf_now_ms());
	if (ev != NULL && workspace != NULL && ocsf_set_unmapped(ev, "workspace", workspace) != 0) {
		json_decref(ev);
		ev = NULL;
	}
	if (ev == NULL) {
		log_warnx("audit: cannot build the %s event (out of memory)", what);
		return;
	}
	if (audit_emit(b->audit, ev) != 0)
		log_warnx("audit: lock event not written yet (kept for retry)");
}

int
revoke_session(struct broker *b, const char *session_id, const char *why, const char *actor)
{
	struct store_session s;
	char reason[512], sentence[512];
	int rc;

	memset(&s, 0, sizeof(s));
	if ((rc = store_session_get(b->store, session_id, &s)) != 0)
		return rc < 0 ? -1 : 1;
	if (s.state != STORE_LIVE) {
		store_session_clear(&s);
		return 1;
	}
	snprintf(reason, sizeof(reason), "revoked: %s (by %s)", why, actor);
	/* 1. durable first: if anything below fails, the session is still dead */
	if ((rc = store_session_end(b->store, s.id, STORE_REVOKED, reason, broker_now())) != 0) {
		store_session_clear(&s);
		return rc < 0 ? -1 : 1;
	}
	/* 2. the user's connections and the session's tunnels */
	snprintf(sentence, sizeof(sentence),
		 "Your SAW session was revoked (%s); log in again through the browser if you "
		 "still have access.",
		 why);
	sessions_drop(b, s.id, sentence);
	/* 3. the workspaces: guestd ends the logins and processes of the session */
	workspace_session_ended(b, s.id, reason);
	/* 4. audit */
	log_info("session %s of %s revoked: %s (by %s)", s.id, s.username, why, actor);
	broker_audit_logoff(b, &s, reason);
	store_session_clear(&s);
	return 0;
}

static void
revoke_one_cb(const struct store_session *s, void *arg)
{
	struct revoke_ctx *ctx = arg;
	int rc = revoke_session(ctx->b, s->id, ctx->why, ctx->actor);

	if (rc == 0)
		ctx->count++;
	else if (rc < 0)
		ctx->errors++;
}

int
revoke_matching(struct broker *b, const struct store_filter *f, const char *why, const char *actor,
		int *count)
{
	struct revoke_ctx ctx = { b, why, actor, 0, 0 };
	int rc = store_session_match(b->store, f, broker_now(), revoke_one_cb, &ctx);

	if (count != NULL)
		*count = ctx.count;
	return rc < 0 || ctx.errors > 0 ? -1 : 0;
}

/* "sub:SUB" or "user:NAME" → the filter that finds that user's sessions. */
static int
revoke_key_filter(const char *key, struct store_filter *f)
{
	memset(f, 0, sizeof(*f));
	if (strncmp(key, "sub:", 4) == 0 && key[4] != '\0')
		f->sub = key + 4;
	else if (strncmp(key, "user:", 5) == 0 && key[5] != '\0')
		f->username = key + 5;
	else
		return -1;
	return 0;
}

int
revoke_lock_user(struct broker *b, const char *key, int64_t until, const char *message,
		 const char *actor, int *count)
{
	struct store_filter f;
	char why[256], detail[512], when[64] = "";

	if (revoke_key_filter(key, &f) != 0)
		return -1;
	if (store_lock_set(b->store, key, until, message, actor, broker_now()) != 0)
		return -1;
	if (until > 0) {
		time_t t = (time_t)until;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "until %Y-%m-%dT%H:%M:%SZ", &tm);
	}
	snprintf(detail, sizeof(detail), "%s%s%s", until > 0 ? when : "until unlocked",
		 message ? ": " : "", message ? message : "");
	revoke_audit_account(b, OCSF_ACCOUNT_LOCK, "locked", key, NULL, detail, actor);
	snprintf(why, sizeof(why), "access locked%s%s", message ? ": " : "",
		 message ? message : "");
	return revoke_matching(b, &f, why, actor, count);
}

int
revoke_unlock_user(struct broker *b, const char *key, const char *actor)
{
	int rc = store_lock_clear(b->store, key);

	if (rc == 0)
		revoke_audit_account(b, OCSF_ACCOUNT_UNLOCK, "unlocked", key, NULL, NULL, actor);
	return rc;
}

static char *
revoke_lock_sentence(struct broker *b, const char *key)
{
	char *message = NULL, *out = NULL;
	int64_t until = 0;
	char when[64] = "";

	if (store_lock_get(b->store, key, broker_now(), &message, &until) != 0)
		return NULL;
	if (until > 0) {
		time_t t = (time_t)until;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), " until %Y-%m-%d %H:%M UTC", &tm);
	}
	if (asprintf(&out, "Your access to SAW is locked%s%s%s; contact your administrator.", when,
		     message ? ": " : "", message ? message : "") < 0)
		out = NULL;
	free(message);
	return out;
}

char *
revoke_lock_check(struct broker *b, const char *iss, const char *sub, const char *username)
{
	char key[512];
	char *s = NULL;

	(void)iss;
	if (sub != NULL) {
		snprintf(key, sizeof(key), "sub:%s", sub);
		if ((s = revoke_lock_sentence(b, key)) != NULL)
			return s;
	}
	if (username != NULL) {
		snprintf(key, sizeof(key), "user:%s", username);
		s = revoke_lock_sentence(b, key);
	}
	return s;
}

struct kill_ctx {
	struct broker *b;
	char **ids;
	size_t n;
};

static void
revoke_collect_cb(const char *id, void *arg)
{
	struct kill_ctx *k = arg;
	char **tmp = reallocarray(k->ids, k->n + 1, sizeof(*k->ids));

	if (tmp == NULL)
		return;
	k->ids = tmp;
	if ((k->ids[k->n] = strdup(id)) != NULL)
		k->n++;
}

int
revoke_kill_workspace(struct broker *b, const char *name, const char *why, const char *actor)
{
	struct kill_ctx k = { b, NULL, 0 };
	char reason[256], sentence[512];
	size_t i;
	int rc;

	if ((rc = store_workspace_set_killed(b->store, name, 1)) != 0)
		return rc;
	snprintf(reason, sizeof(reason), "workspace %s killed%s%s", name, why ? ": " : "",
		 why ? why : "");
	revoke_audit_account(b, OCSF_ACCOUNT_LOCK, "kill switch on:", name, name,
			     why != NULL ? why : "workspace killed", actor);
	/* Every session attached to it: their connections, tunnels and in-workspace processes. */
	workspace_attached_sessions(b, name, revoke_collect_cb, &k);
	for (i = 0; i < k.n; i++) {
		revoke_session(b, k.ids[i], reason, actor);
		free(k.ids[i]);
	}
	free(k.ids);
	/* Then the workspace itself: refused until revived (workspace_auth_key checks). */
	snprintf(sentence, sizeof(sentence), "Workspace %s was killed by an administrator.", name);
	workspace_disconnect(b, name, sentence);
	log_info("workspace %s killed by %s%s%s", name, actor, why ? ": " : "", why ? why : "");
	broker_run_kill_command(b, name);
	return 0;
}

int
revoke_revive_workspace(struct broker *b, const char *name, const char *actor)
{
	int rc = store_workspace_set_killed(b->store, name, 0);

	if (rc == 0) {
		log_info("workspace %s revived by %s", name, actor);
		revoke_audit_account(b, OCSF_ACCOUNT_UNLOCK, "kill switch off:", name, name,
				     "workspace revived", actor);
	}
	return rc;
}
