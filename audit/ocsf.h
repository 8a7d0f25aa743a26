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

int64_t ocsf_now_ms(void);

#endif
