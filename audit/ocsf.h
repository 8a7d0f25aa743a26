/*
 * OCSF 1.8.0 event builder. Pure functions returning new jansson objects; no I/O.
 * The caller owns every json_t returned (json_decref it, or hand it to audit_emit(),
 * which steals the reference). String arguments may be NULL: the field is then omitted.
 */
#ifndef SAW_OCSF_H
#define SAW_OCSF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define OCSF_VERSION "1.8.0"

enum ocsf_class {
	OCSF_CLASS_PROCESS_ACTIVITY = 1007,
	OCSF_CLASS_EVENT_LOG_ACTIVITY = 1008,
	OCSF_CLASS_ACCOUNT_CHANGE = 3001,
	OCSF_CLASS_AUTHENTICATION = 3002,
	OCSF_CLASS_AUTHORIZE_SESSION = 3003,
	OCSF_CLASS_NETWORK_ACTIVITY = 4001,
	OCSF_CLASS_HTTP_ACTIVITY = 4002,
	OCSF_CLASS_SSH_ACTIVITY = 4007,
	OCSF_CLASS_API_ACTIVITY = 6003,
};

enum ocsf_auth_activity {
	OCSF_AUTH_LOGON = 1,
	OCSF_AUTH_LOGOFF = 2
};
enum ocsf_ssh_activity {
	OCSF_SSH_OPEN = 1,
	OCSF_SSH_CLOSE = 2,
	OCSF_SSH_REFUSE = 5
};
enum ocsf_ssh_auth_type {
	OCSF_SSH_AUTH_KBDINT = 4,
	OCSF_SSH_AUTH_PUBKEY = 6
};

enum ocsf_event_log_activity {
	OCSF_EVENT_LOG_ROTATE = 5,
	OCSF_EVENT_LOG_START = 6,
	OCSF_EVENT_LOG_STOP = 7
};

enum ocsf_net_activity {
	OCSF_NET_OPEN = 1,
	OCSF_NET_CLOSE = 2,
	OCSF_NET_RESET = 3,
	OCSF_NET_FAIL = 4,
	OCSF_NET_REFUSE = 5
};
enum ocsf_process_activity {
	OCSF_PROCESS_LAUNCH = 1,
	OCSF_PROCESS_TERMINATE = 2
};
enum ocsf_api_activity {
	OCSF_API_CREATE = 1,
	OCSF_API_READ = 2,
	OCSF_API_UPDATE = 3,
	OCSF_API_DELETE = 4
};
enum ocsf_account_activity {
	OCSF_ACCOUNT_ATTACH_POLICY = 7,
	OCSF_ACCOUNT_LOCK = 9,
	OCSF_ACCOUNT_UNLOCK = 12
};

/* Who and where an event is about. Every member may be NULL / 0. */
struct ocsf_subject {
	const char *username; /* SSH / IdP username */
	const char *uid;      /* IdP subject (sub) */
	const char *issuer;   /* IdP issuer (iss) */
	const char *session_uid;
	int64_t session_created_ms;
	int64_t session_expires_ms;
	const char *src_ip;
	int src_port;
	const char *dst_ip;
	int dst_port;
	/* The brokered context, when known: unmapped.workspace and unmapped.profile (OCSF has
	 * no member for either); app_name names a program acting (actor.app_name), e.g. the
	 * IdP that sent a webhook. */
	const char *workspace;
	const char *profile;
	const char *app_name;
};

/* Base object: class/category/activity/type_uid/time/severity/status/metadata. */
json_t *ocsf_event_new(enum ocsf_class class_uid, int activity_id, bool success, int64_t time_ms);

/* Authentication (3002) Logon: success = a session was created (or reused); failure
 * carries the plain-words reason in status_detail. */
json_t *ocsf_auth_logon(const struct ocsf_subject *s, bool success, const char *reason,
			int64_t time_ms);
/* Authentication (3002) Logoff: a session ended; why is "expired", "idle", "revoked"… */
json_t *ocsf_auth_logoff(const struct ocsf_subject *s, const char *why, int64_t time_ms);
/* SSH Activity (4007): open, close or refuse of an SSH connection. */
json_t *ocsf_ssh_activity(enum ocsf_ssh_activity activity, const struct ocsf_subject *s,
			  enum ocsf_ssh_auth_type auth_type, const char *reason, int64_t time_ms);

/*
 * Event Log Activity (1008) about an audit file: the anchor record that starts every file
 * of the hash chain (audit/chain.h). path is the file, provider the program writing it.
 */
json_t *ocsf_event_log(enum ocsf_event_log_activity activity, const char *path,
		       const char *provider, const char *message, int64_t time_ms);

/* One end of a connection (OCSF network_endpoint). NULL / 0 members are omitted; an
 * endpoint with none of ip, hostname, svc_name is left out of the event. */
struct ocsf_endpoint {
	const char *ip;
	const char *hostname;
	int port;
	const char *svc_name;
};

/*
 * In the builders below, actor (may be NULL) is the brokered identity the event is about:
 * username, uid and session_uid are used (its addresses are not: endpoints are explicit).
 * detail goes to status_detail, message (NULL: a generated sentence) to message.
 */

/* Network Activity (4001): open, close or refuse of a connection (egress decisions,
 * tunnels). At least one endpoint is needed; without any, dst_endpoint names "unknown". */
json_t *ocsf_network_activity(enum ocsf_net_activity activity, const struct ocsf_subject *actor,
			      const struct ocsf_endpoint *src, const struct ocsf_endpoint *dst,
			      const char *detail, const char *message, int64_t time_ms);

/* HTTP Activity (4002), e.g. a credential-proxy request: the activity follows method
 * (CONNECT … PATCH, 99 Other); http_request {http_method, url {hostname, path}} and, when
 * status > 0, http_response {code}. success false for a refusal or an upstream failure. */
json_t *ocsf_http_activity(const struct ocsf_subject *actor, const struct ocsf_endpoint *src,
			   const struct ocsf_endpoint *dst, const char *method,
			   const char *hostname, const char *path, int status, bool success,
			   const char *detail, const char *message, int64_t time_ms);
/* The OCSF HTTP activity id of a request method (99 when none fits). */
int ocsf_http_method_activity(const char *method);

/* Process Activity (1007): sandbox launch or termination. process {pid, name}; exit_code
 * is set for Terminate when >= 0; the actor is the user (or "unknown"), the device this
 * host. */
json_t *ocsf_process_activity(enum ocsf_process_activity activity, const struct ocsf_subject *actor,
			      long pid, const char *name, int exit_code, bool success,
			      const char *detail, int64_t time_ms);

/* API Activity (6003): an admin API or webhook call. operation e.g. "POST /v1/revoke";
 * src the caller (required by the class: "unknown" when NULL); status > 0 adds
 * http_response {code}. */
json_t *ocsf_api_activity(enum ocsf_api_activity activity, const char *operation,
			  const struct ocsf_subject *actor, const struct ocsf_endpoint *src,
			  int status, bool success, const char *detail, const char *message,
			  int64_t time_ms);

/* Account Change (3001) Lock / Unlock of target (a user name, or a session or key that
 * stands for one); actor_name is who did it (NULL: omitted). */
json_t *ocsf_account_change(enum ocsf_account_activity activity, const char *target,
			    const char *target_uid, const char *actor_name, const char *detail,
			    const char *message, int64_t time_ms);

/*
 * Account Change (3001) Attach Policy: a workspace policy (guestd's PolicyFile) loaded, or a
 * reload refused (success false, detail the error with file:line). account is the account
 * the policy governs (e.g. "workspace:NAME"); policy {name, uid, version, desc}.
 */
json_t *ocsf_policy_attach(const char *account, const char *policy_name, const char *policy_uid,
			   const char *version, const char *desc, bool success, const char *detail,
			   const char *message, int64_t time_ms);

/* Additions to a built event (0, or -1 when out of memory). */
/* unmapped.key = value (value NULL: nothing). */
int ocsf_set_unmapped(json_t *ev, const char *key, const char *value);
/* traffic {bytes_in, bytes_out, bytes} (Network Activity): bytes received from / sent to the
 * source end. */
int ocsf_set_traffic(json_t *ev, uint64_t bytes_in, uint64_t bytes_out);
/* http_request {http_method, url {path}} (API Activity through HTTP). */
int ocsf_set_http_request(json_t *ev, const char *method, const char *path);

int64_t ocsf_now_ms(void);

#endif
