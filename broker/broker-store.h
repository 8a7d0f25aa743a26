/*
 * Session store: the only code that knows about sqlite. Kept behind this narrow interface
 * so that a PostgreSQL backend (several brokers) can be added without touching callers,
 * and so that pre-auth code never holds the database handle (see docs/DESIGN.md).
 *
 * All calls are synchronous and short (local sqlite in WAL mode, synchronous=NORMAL, prepared
 * statements); they run on the event loop thread that owns the store.
 *
 * Ownership: struct store_session strings are owned by the struct; release them with
 * store_session_clear(). Times are seconds since the epoch.
 */
#ifndef SAW_BROKER_STORE_H
#define SAW_BROKER_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define STORE_ID_LEN 32 /* hex chars of a 128-bit random session id */

enum store_state {
	STORE_LIVE = 0,
	STORE_EXPIRED = 1,
	STORE_REVOKED = 2
};

struct store_session {
	char id[STORE_ID_LEN + 1];
	char *iss;
	char *sub;
	char *sid; /* IdP session id (may be NULL) */
	char *username;
	char *groups; /* JSON array text, e.g. ["saw-users","dev"] */
	char *key_fp; /* bound key fingerprint, "SHA256:…" */
	char *email;  /* email claim, may be NULL (SET "email" subjects) */
	int64_t created;
	int64_t expires;       /* absolute expiry */
	int64_t idle_deadline; /* last activity + idle timeout */
	enum store_state state;
	char *end_reason; /* NULL while live */
};

struct store;

/* Opens (creating schema if needed) the database at path. Returns 0 or -1 with err filled. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* Creates a live session. s->id is generated here (random). Any older live session bound to
 * the same key fingerprint is ended first (reason "replaced"). Returns 0 or -1. */
int store_session_create(struct store *st, struct store_session *s);
/* Finds the live session bound to key_fp whose absolute and idle deadlines are after now.
 * Returns 0 and fills out, 1 if there is none, -1 on error. */
int store_session_find_by_key(struct store *st, const char *key_fp, int64_t now,
			      struct store_session *out);
/* Same by id (returns the row whatever its state). */
int store_session_get(struct store *st, const char *id, struct store_session *out);
/* Pushes the idle deadline of a live session. */
int store_session_touch(struct store *st, const char *id, int64_t idle_deadline);
/* Ends a live session (STORE_EXPIRED or STORE_REVOKED) with a reason. Ending an ended one
 * is a no-op returning 1. Returns 0 when this call ended it. */
int store_session_end(struct store *st, const char *id, enum store_state state, const char *reason,
		      int64_t now);
/* Ends every live session whose deadlines passed by now; calls cb for each (may be NULL).
 * Used once at start-up (sessions that expired while the broker was down). */
int store_session_expire_due(struct store *st, int64_t now,
			     void (*cb)(const struct store_session *, void *), void *arg);
void store_session_clear(struct store_session *s);

/* ---- workspaces (issue #3) ---------------------------------------------------------- */

struct store_workspace {
	char *name;	 /* [a-z0-9][a-z0-9-]{0,62}, unique */
	char *owner_sub; /* IdP subject of the owner */
	char *pubkey;	 /* "ssh-ed25519 AAAA…" (the workspace's own key, as registered) */
	char *key_fp;	 /* "SHA256:…" of pubkey */
	char *profile;	 /* "corporate" | "public" */
	int64_t created;
	int killed; /* issue #4: kill switch */
};

/* Returns 0, 1 if the name (or the key) is already registered, -1 on error. */
int store_workspace_add(struct store *st, const struct store_workspace *w);
/* Returns 0, 1 if there is no such workspace, -1 on error. */
int store_workspace_remove(struct store *st, const char *name);
int store_workspace_get(struct store *st, const char *name, struct store_workspace *out);
int store_workspace_find_by_key(struct store *st, const char *key_fp, struct store_workspace *out);
/* Calls cb for each workspace by name; stops early if cb returns non-zero. */
int store_workspace_list(struct store *st, int (*cb)(const struct store_workspace *, void *),
			 void *arg);
void store_workspace_clear(struct store_workspace *w);

/*
 * A workspace's audit mark (issue #6): the highest seq of its guestd's audit events that
 * the broker has written to its audit pipeline and acknowledged (CTL_AUDIT_ACK), kept so
 * that a resend after a broker restart is dropped rather than written twice. 0 for a new
 * workspace, and again for one removed and registered again (a new guestd). get: 0, 1 if
 * there is no such workspace, -1 on error. set: one prepared UPDATE in WAL mode without an
 * fsync, like the store's other writes (broker-workspace.c calls it once per batch of
 * events, never per event); 0, 1 if there is no such workspace, -1 on error.
 */
int store_workspace_audit_seq_get(struct store *st, const char *name, int64_t *seq);
int store_workspace_audit_seq_set(struct store *st, const char *name, int64_t seq);
/* ---- revocation (issue #4) ------------------------------------------------------------ */

/* Live sessions matching every non-NULL filter (at least one must be given), by id. cb may
 * call the store again (rows are gathered first). Returns the number of rows, -1 on error. */
struct store_filter {
	const char *iss;
	const char *sub;
	const char *sid;
	const char *username;
	const char *email;
	const char *id;
};
int store_session_match(struct store *st, const struct store_filter *f, int64_t now,
			void (*cb)(const struct store_session *, void *), void *arg);
/* All sessions (live first, then the 100 most recently ended), for `sawctl sessions`. */
int store_session_list(struct store *st, const char *username, int include_ended,
		       void (*cb)(const struct store_session *, void *), void *arg);

/* Locks: while one is in force for a user (key "sub:SUB" or "user:NAME"), no session is
 * created for them. until = 0 means until unlocked. */
int store_lock_set(struct store *st, const char *key, int64_t until, const char *message,
		   const char *actor, int64_t now);
int store_lock_clear(struct store *st, const char *key); /* 1 if there was none */
/* 0 and *message (malloc'd, may be NULL) / *until if locked now; 1 if not; -1 on error. */
int store_lock_get(struct store *st, const char *key, int64_t now, char **message, int64_t *until);
int store_lock_list(struct store *st, int64_t now,
		    void (*cb)(const char *key, int64_t until, const char *message, void *),
		    void *arg);

/* Replay protection for logout tokens and SETs: records (iss, jti) until exp. Returns 0 if
 * new (now recorded), 1 if already seen, -1 on error. Entries past exp are purged. */
int store_jti_use(struct store *st, const char *iss, const char *jti, int64_t exp, int64_t now);

/* Kill switch: 0, 1 if no such workspace, -1 on error. */
int store_workspace_set_killed(struct store *st, const char *name, int killed);

#endif
