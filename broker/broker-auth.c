/*
 * Pre-auth state machine of a broker connection (ARCHITECTURE Flow 1, steps 1-4).
 *
 *   publickey (signature verified by libssh)
 *     ├─ key bound to a live session of this user → success
 *     └─ otherwise → partial success, only keyboard-interactive left:
 *          keyboard-interactive → OAuth 2.0 device flow against the IdP
 *            prompt: verification URL + code, "press Enter after approving"
 *            Enter → approved: checks, session created, success
 *                    refused/expired/unreachable: one plain sentence, disconnect
 *                    still pending: prompt again
 *
 * Nothing here blocks: while the IdP has not answered, the kbd-int message is kept in
 * c->held and the connection stops reading (conn_pause), which is safe because an SSH client
 * sends nothing else during user authentication until it gets our answer.
 *
 * This file sees only what the network sent and what the IdP answered; it reaches the key
 * material and the session store solely through store_session_find_by_key(),
 * store_session_create() and sessions_attach(), the narrow interface a separate pre-auth
 * process would use over IPC (docs/DESIGN.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-oidc.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

/* An Enter that came before the browser approval waits this long for the IdP's answer
 * before the prompt is shown again (a poll happens at most every `interval` seconds). */
#define AUTH_RECHECK_SECONDS 7

static void auth_send_prompt(struct conn *c, ssh_message msg, const char *note);

static const char *
auth_failure_sentence(enum oidc_failure f)
{
	switch (f) {
	case OIDC_FAIL_UNREACHABLE:
		return "The identity provider cannot be reached right now, so your login cannot "
		       "be checked; try again in a few minutes or tell your administrator.";
	case OIDC_FAIL_DENIED:
		return "The login was denied in the browser; connect again if that was a "
		       "mistake.";
	case OIDC_FAIL_EXPIRED:
		return "The login was not approved in time; connect again and approve it in the "
		       "browser before the code expires.";
	case OIDC_FAIL_INVALID_TOKEN:
		return "The identity provider's answer could not be verified, so the login was "
		       "refused; tell your administrator (details are in the broker log).";
	case OIDC_FAIL_PROTOCOL:
	case OIDC_FAIL_NONE:
	default:
		return "The identity provider refused the login; try again or tell your "
		       "administrator.";
	}
}

static void
auth_release_held(struct conn *c)
{
	if (c->held != NULL) {
		ssh_message_free(c->held);
		c->held = NULL;
	}
}

/* A login attempt ended in a refusal: audit, count against the source, disconnect. */
static void
auth_refuse(struct conn *c, const char *sentence, const char *detail)
{
	struct broker *b = c->broker;

	log_info("conn %llu from %s: login of %s refused: %s", (unsigned long long)c->id, c->src_ip,
		 c->user ? c->user : "?", detail ? detail : sentence);
	broker_audit_logon(b, c, NULL, false, detail ? detail : sentence);
	broker_audit_ssh(b, c, OCSF_SSH_REFUSE, detail ? detail : sentence);
	limits_login_failed(b->limits, c->src_ip, broker_now());
	c->login = LOGIN_DONE;
	conn_close(c, sentence);
}

static void
auth_too_many(struct conn *c)
{
	if (++c->auth_failures >= c->broker->cfg.max_auth_tries)
		auth_refuse(c,
			    "Too many authentication failures; check which key you use and "
			    "connect again.",
			    "too many authentication failures");
}

static char *
auth_key_fingerprint(ssh_key key)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK)
		return NULL;
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	return fp;
}

/* Groups claim: an array of strings (or one string). Returns a JSON array text. */
static char *
auth_groups_json(const json_t *claim, const char *required, bool *has_required)
{
	json_t *arr = json_array();
	const json_t *v;
	size_t i;
	char *out;

	*has_required = false;
	if (json_is_string(claim)) {
		json_array_append_new(arr, json_string(json_string_value(claim)));
	} else if (json_is_array(claim)) {
		json_array_foreach(claim, i, v) {
			if (json_is_string(v))
				json_array_append_new(arr, json_string(json_string_value(v)));
		}
	}
	json_array_foreach(arr, i, v) {
		if (strcmp(json_string_value(v), required) == 0)
			*has_required = true;
	}
	out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return out;
}

static const char *
claim_str(const json_t *claims, const char *name)
{
	return json_string_value(json_object_get(claims, name));
}

/* The IdP approved: enforce username and group, create the session, answer success. */
static void
auth_finish(struct conn *c, ssh_message msg)
{
	struct broker *b = c->broker;
	const json_t *claims = oidc_device_claims(c->device);
	const char *username = claim_str(claims, b->cfg.oidc_username_claim);
	struct store_session s;
	char sentence[512], detail[256], *locked;
	bool entitled = false;
	int64_t now = broker_now();

	memset(&s, 0, sizeof(s));
	if (username == NULL || strcmp(username, c->user) != 0) {
		snprintf(sentence, sizeof(sentence),
			 "You approved the login as \"%s\" but connected as \"%s\"; connect "
			 "with your own user name (%s) instead.",
			 username ? username : "(no username)", c->user,
			 username ? username : "as shown by your identity provider");
		snprintf(detail, sizeof(detail), "username mismatch: IdP says %s, SSH user %s",
			 username ? username : "(none)", c->user);
		auth_refuse(c, sentence, detail);
		return;
	}
	s.groups = auth_groups_json(json_object_get(claims, b->cfg.oidc_groups_claim),
				    b->cfg.required_group, &entitled);
	if (!entitled) {
		snprintf(sentence, sizeof(sentence),
			 "Your account %s is not in the group \"%s\" that SAW access requires; "
			 "ask your administrator to grant it.",
			 c->user, b->cfg.required_group);
		snprintf(detail, sizeof(detail), "not entitled: %s not in group %s", c->user,
			 b->cfg.required_group);
		free(s.groups);
		auth_refuse(c, sentence, detail);
		return;
	}
	if ((locked = revoke_lock_check(b, claim_str(claims, "iss"), claim_str(claims, "sub"),
					c->user)) != NULL) {
		free(s.groups);
		auth_refuse(c, locked, "user is locked");
		free(locked);
		return;
	}
	s.iss = (char *)claim_str(claims, "iss");
	s.sub = (char *)claim_str(claims, "sub");
	s.sid = (char *)claim_str(claims, "sid");
	s.email = (char *)claim_str(claims, "email");
	s.username = c->user;
	s.key_fp = c->key_fp;
	s.created = now;
	s.expires = now + b->cfg.session_max_lifetime;
	s.idle_deadline = now + b->cfg.session_idle_timeout;
	s.state = STORE_LIVE;
	if (s.iss == NULL || s.sub == NULL || store_session_create(b->store, &s) != 0 ||
	    sessions_attach(b, c, &s) != 0) {
		free(s.groups);
		auth_refuse(c,
			    "The broker could not record your session; try again or tell your "
			    "administrator.",
			    "session store error");
		return;
	}
	log_info("conn %llu from %s: %s logged in (sub %s), session %s, key %s",
		 (unsigned long long)c->id, c->src_ip, c->user, s.sub, s.id, c->key_fp);
	broker_audit_logon(b, c, &s, true, "device flow approved; session created");
	free(s.groups);
	c->login = LOGIN_DONE;
	oidc_device_free(c->device);
	c->device = NULL;
	ssh_message_auth_reply_success(msg, 0);
	conn_authenticated(c);
	broker_audit_ssh(b, c, OCSF_SSH_OPEN, "authenticated by device flow");
}

static void
auth_recheck_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->login != LOGIN_CHECKING || c->held == NULL)
		return;
	auth_send_prompt(c, c->held, "The login has not been approved yet.");
	auth_release_held(c);
	conn_resume(c);
}

static void
auth_device_cb(struct oidc_device *d, enum oidc_device_event ev, void *arg)
{
	struct conn *c = arg;
	ssh_message held = c->held;

	switch (ev) {
	case OIDC_DEVICE_CODE:
		if (held != NULL && c->login == LOGIN_KEY_OK) {
			auth_send_prompt(c, held, NULL);
			auth_release_held(c);
			conn_resume(c);
		}
		break;
	case OIDC_DEVICE_APPROVED:
		if (held != NULL && c->login == LOGIN_CHECKING) {
			if (c->ev_recheck)
				event_del(c->ev_recheck);
			c->held = NULL;
			auth_finish(c, held);
			ssh_message_free(held);
			conn_resume(c);
			conn_flush(c);
		}
		/* else: the user has not pressed Enter yet; the next response finishes. */
		break;
	case OIDC_DEVICE_FAILED:
		auth_refuse(c, auth_failure_sentence(oidc_device_failure(d)),
			    oidc_device_detail(d));
		break;
	}
}

static void
auth_send_prompt(struct conn *c, ssh_message msg, const char *note)
{
	const char *uri = oidc_device_verification_uri_complete(c->device);
	const char *code = oidc_device_user_code(c->device);
	int64_t left = oidc_device_expires_at(c->device) - broker_now();
	char instruction[1024], prompt[1024];
	const char *prompts[1];
	char echo[1] = { 0 };

	if (uri == NULL)
		uri = oidc_device_verification_uri(c->device);
	if (left < 60)
		left = 60;
	snprintf(instruction, sizeof(instruction),
		 "%s%sTo log in as %s, approve this login in your browser "
		 "(code %s, valid for %lld minutes).",
		 note ? note : "", note ? "\n" : "", c->user, code ? code : "?",
		 (long long)(left / 60));
	snprintf(prompt, sizeof(prompt),
		 "Open %s\nthen press Enter once you have approved: ", uri ? uri : "(no URL)");
	prompts[0] = prompt;
	ssh_message_auth_interactive_request(msg, "SAW broker login", instruction, 1, prompts,
					     echo);
	c->login = LOGIN_PROMPTED;
	conn_flush(c);
}

/* Nothing to show yet: answer with an empty info request (the client replies at once,
 * silently) and stop reading until the IdP answers. */
static int
auth_hold(struct conn *c, ssh_message msg)
{
	c->held = msg;
	conn_pause(c);
	return 1;
}

#pragma GCC diagnostic push
/* libssh 0.10 deprecates these accessors in favour of server callbacks, which cannot hold a
 * message while the IdP is asked (REFERENCE: no async kbd-int callbacks before 0.12). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static bool
auth_is_machine(const char *user)
{
	return strncmp(user, "workspace:", 10) == 0 || strncmp(user, "tunnel:", 7) == 0;
}

static int auth_machine_key(struct conn *c, ssh_message msg, char *fp);

static int
auth_publickey(struct conn *c, ssh_message msg)
{
	struct broker *b = c->broker;
	enum ssh_publickey_state_e st = ssh_message_auth_publickey_state(msg);
	ssh_key key = ssh_message_auth_pubkey(msg);
	struct store_session s;
	char *fp, *locked;
	int rc;

	if (c->login != LOGIN_NONE || key == NULL) {
		ssh_message_reply_default(msg);
		return 0;
	}
	if (st == SSH_PUBLICKEY_STATE_NONE) {
		/* A probe: say the key is acceptable; the signed attempt decides. */
		ssh_message_auth_reply_pk_ok_simple(msg);
		return 0;
	}
	if (st != SSH_PUBLICKEY_STATE_VALID) {
		ssh_message_reply_default(msg);
		auth_too_many(c);
		return 0;
	}
	if ((fp = auth_key_fingerprint(key)) == NULL) {
		ssh_message_reply_default(msg);
		return 0;
	}
	if (auth_is_machine(c->user))
		return auth_machine_key(c, msg, fp);
	memset(&s, 0, sizeof(s));
	rc = store_session_find_by_key(b->store, fp, broker_now(), &s);
	if (rc == 0 && strcmp(s.username, c->user) == 0 && audit_refuses_logins(b->audit)) {
		store_session_clear(&s);
		free(fp);
		auth_refuse(
			c,
			"The broker cannot record new logins right now (audit log unavailable); "
			"try again later or tell your administrator.",
			"audit log unavailable (AuditFailureMode closed)");
		return 0;
	}
	if (rc == 0 && strcmp(s.username, c->user) == 0) {
		c->key_fp = fp;
		if (sessions_attach(b, c, &s) != 0) {
			store_session_clear(&s);
			ssh_message_reply_default(msg);
			return 0;
		}
		log_info("conn %llu from %s: %s logged in with key %s (session %s)",
			 (unsigned long long)c->id, c->src_ip, c->user, fp, s.id);
		broker_audit_logon(b, c, &s, true, "key bound to a live session");
		store_session_clear(&s);
		c->login = LOGIN_DONE;
		ssh_message_auth_reply_success(msg, 0);
		conn_authenticated(c);
		broker_audit_ssh(b, c, OCSF_SSH_OPEN, "authenticated by session-bound key");
		return 0;
	}
	if (rc == 0)
		store_session_clear(&s);
	c->key_fp = fp;
	if ((locked = revoke_lock_check(b, NULL, NULL, c->user)) != NULL) {
		auth_refuse(c, locked, "user is locked");
		free(locked);
		return 0;
	}
	if (audit_refuses_logins(b->audit)) {
		/* AuditFailureMode closed: nothing happens that cannot be recorded. */
		auth_refuse(
			c,
			"The broker cannot record new logins right now (audit log unavailable); "
			"try again later or tell your administrator.",
			"audit log unavailable (AuditFailureMode closed)");
		return 0;
	}
	c->login = LOGIN_KEY_OK;
	c->via_device = true;
	/* Ask the IdP for a device code now, while the client turns to kbd-int. */
	c->device = oidc_device_start(b->oidc, auth_device_cb, c);
	if (c->device == NULL) {
		auth_refuse(c, auth_failure_sentence(OIDC_FAIL_UNREACHABLE),
			    "cannot start device authorization");
		return 0;
	}
	ssh_set_auth_methods(c->ssh, SSH_AUTH_METHOD_INTERACTIVE);
	ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_INTERACTIVE);
	ssh_message_auth_reply_success(msg, 1);
	return 0;
}
/* "workspace:NAME" and "tunnel:SESSION" users: a registered workspace key (and, for a tunnel,
 * a single-use token) — never the device flow. */
static int
auth_machine_key(struct conn *c, ssh_message msg, char *fp)
{
	struct broker *b = c->broker;

	if (workspace_auth_key(b, c->user, fp, &c->ws_name) != 0) {
		log_info("conn %llu from %s: %s: key %s is not a registered workspace key",
			 (unsigned long long)c->id, c->src_ip, c->user, fp);
		free(fp);
		ssh_message_reply_default(msg);
		auth_too_many(c);
		return 0;
	}
	c->key_fp = fp;
	if (strncmp(c->user, "workspace:", 10) == 0) {
		c->kind = CONN_WORKSPACE;
		c->login = LOGIN_DONE;
		ssh_message_auth_reply_success(msg, 0);
		conn_authenticated(c);
		broker_audit_ssh(b, c, OCSF_SSH_OPEN, "workspace authenticated by its key");
		workspace_conn_open(c);
		return 0;
	}
	c->kind = CONN_TUNNEL;
	c->login = LOGIN_KEY_OK;
	ssh_set_auth_methods(c->ssh, SSH_AUTH_METHOD_PASSWORD);
	ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_PASSWORD);
	ssh_message_auth_reply_success(msg, 1);
	return 0;
}

/* The per-session tunnel's token, after the workspace key. */
static int
auth_tunnel_token(struct conn *c, ssh_message msg)
{
	struct broker *b = c->broker;
	const char *token = ssh_message_auth_password(msg);
	struct store_session s;
	char *sid = NULL;

	memset(&s, 0, sizeof(s));
	if (c->kind != CONN_TUNNEL || c->login != LOGIN_KEY_OK ||
	    workspace_auth_token(b, c->user, c->ws_name, token, &sid) != 0 ||
	    store_session_get(b->store, sid, &s) != 0 || s.state != STORE_LIVE ||
	    s.expires <= broker_now() || sessions_attach(b, c, &s) != 0) {
		free(sid);
		store_session_clear(&s);
		ssh_message_reply_default(msg);
		auth_too_many(c);
		return 0;
	}
	log_info("conn %llu: per-session tunnel of %s for workspace %s", (unsigned long long)c->id,
		 sid, c->ws_name);
	free(sid);
	store_session_clear(&s);
	c->login = LOGIN_DONE;
	ssh_message_auth_reply_success(msg, 0);
	conn_authenticated(c);
	broker_audit_ssh(b, c, OCSF_SSH_OPEN, "per-session tunnel authenticated");
	return 0;
}
#pragma GCC diagnostic pop

static int
auth_kbdint(struct conn *c, ssh_message msg)
{
	bool response = ssh_message_auth_kbdint_is_response(msg);

	if (c->login == LOGIN_NONE) {
		auth_refuse(c,
			    "This broker needs an SSH key: create one with `ssh-keygen -t "
			    "ed25519` (or load one into your agent) and connect again.",
			    "client offered no SSH key");
		return 0;
	}
	if (c->device == NULL || c->login == LOGIN_DONE) {
		ssh_message_reply_default(msg);
		return 0;
	}
	if (!response) {
		/* A (re)start of keyboard-interactive. */
		if (oidc_device_user_code(c->device) == NULL) {
			c->login = LOGIN_KEY_OK;
			return auth_hold(c, msg);
		}
		auth_send_prompt(c, msg, NULL);
		return 0;
	}
	if (c->login != LOGIN_PROMPTED) {
		ssh_message_reply_default(msg);
		return 0;
	}
	/* The user pressed Enter. */
	if (oidc_device_claims(c->device) != NULL) {
		auth_finish(c, msg);
		return 0;
	}
	c->login = LOGIN_CHECKING;
	oidc_device_poll_now(c->device);
	if (c->ev_recheck == NULL)
		c->ev_recheck = evtimer_new(c->broker->base, auth_recheck_cb, c);
	if (c->ev_recheck != NULL) {
		struct timeval tv = { AUTH_RECHECK_SECONDS, 0 };
		evtimer_add(c->ev_recheck, &tv);
	}
	return auth_hold(c, msg);
}

int
auth_handle_message(struct conn *c, ssh_message msg)
{
	const char *user;

	if (ssh_message_type(msg) != SSH_REQUEST_AUTH) {
		ssh_message_reply_default(msg);
		return 0;
	}
	user = ssh_message_auth_user(msg); /* NULL on a kbd-int response */
	if (user != NULL) {
		if (c->user == NULL) {
			if ((c->user = strdup(user)) == NULL) {
				ssh_message_reply_default(msg);
				return 0;
			}
		} else if (strcmp(user, c->user) != 0) {
			auth_refuse(c, "Changing the user name during login is not allowed.",
				    "user name changed during authentication");
			return 0;
		}
	}
	switch (ssh_message_subtype(msg)) {
	case SSH_AUTH_METHOD_PUBLICKEY:
		return auth_publickey(c, msg);
	case SSH_AUTH_METHOD_INTERACTIVE:
		if (auth_is_machine(c->user)) {
			ssh_message_reply_default(msg);
			auth_too_many(c);
			return 0;
		}
		return auth_kbdint(c, msg);
	case SSH_AUTH_METHOD_PASSWORD:
		return auth_tunnel_token(c, msg);
	case SSH_AUTH_METHOD_NONE:
		ssh_message_reply_default(msg);
		return 0;
	default:
		ssh_message_reply_default(msg);
		auth_too_many(c);
		return 0;
	}
}

void
auth_conn_cleanup(struct conn *c)
{
	auth_release_held(c);
	if (c->ev_recheck != NULL) {
		event_free(c->ev_recheck);
		c->ev_recheck = NULL;
	}
	if (c->device != NULL) {
		oidc_device_free(c->device);
		c->device = NULL;
	}
}
