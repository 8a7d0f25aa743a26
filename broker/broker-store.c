/*
 * Session store and workspace registry on sqlite (see broker-store.h for the contract).
 *
 * The schema version lives in PRAGMA user_version; store_migrations[i] takes a database from
 * version i to i + 1, each in its own transaction, so a later change appends one entry.
 */
#include "broker/broker-store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/log.h"

#define STORE_BUSY_TIMEOUT_MS 5000

static const char *const store_migrations[] = {
	/* 0 -> 1: sessions */
	"CREATE TABLE sessions ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" iss TEXT NOT NULL,"
	" sub TEXT NOT NULL,"
	" sid TEXT,"
	" username TEXT NOT NULL,"
	" groups TEXT NOT NULL DEFAULT '[]',"
	" key_fp TEXT,"
	" created INTEGER NOT NULL,"
	" expires INTEGER NOT NULL,"
	" idle_deadline INTEGER NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),"
	" end_reason TEXT,"
	" ended INTEGER"
	") STRICT;"
	/* Pubkey authentication looks up the live session of a key on every login. */
	"CREATE INDEX sessions_live_key ON sessions(key_fp) WHERE state = 0;"
	/* Revocation events name a user (iss, sub) or an IdP session (iss, sid). */
	"CREATE INDEX sessions_iss_sub ON sessions(iss, sub);"
	"CREATE INDEX sessions_iss_sid ON sessions(iss, sid) WHERE sid IS NOT NULL;",
	/* 1 -> 2: the workspace registry (issue #3). A workspace authenticates with its own
	 * key, so a key names at most one workspace: key_fp is unique. */
	"CREATE TABLE workspaces ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" owner_sub TEXT NOT NULL,"
	" pubkey TEXT NOT NULL,"
	" key_fp TEXT NOT NULL UNIQUE,"
	" profile TEXT NOT NULL CHECK (profile IN ('corporate', 'public')),"
	" created INTEGER NOT NULL,"
	" killed INTEGER NOT NULL DEFAULT 0 CHECK (killed IN (0, 1))"
	") STRICT;",
	/* 2 -> 3: revocation (issue #4): email for SET "email" subjects, locks, and the jti of
	 * every logout token / SET accepted, so that a replay is refused even after a restart. */
	"ALTER TABLE sessions ADD COLUMN email TEXT;"
	"CREATE INDEX sessions_live_user ON sessions(username) WHERE state = 0;"
	"CREATE INDEX sessions_live_email ON sessions(email) WHERE state = 0 AND email IS NOT NULL;"
	"CREATE TABLE locks ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" until INTEGER NOT NULL,"
	" message TEXT,"
	" actor TEXT,"
	" created INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE jti ("
	" iss TEXT NOT NULL,"
	" jti TEXT NOT NULL,"
	" exp INTEGER NOT NULL,"
	" PRIMARY KEY (iss, jti)"
	") STRICT;",
	/* 3 -> 4: the highest seq of the workspace's guestd audit events the broker has
	 * written and acknowledged (issue #6), so that a resend after a broker restart is not
	 * written twice. A workspace registered again starts from 0 (a new row). */
	"ALTER TABLE workspaces ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

#define STORE_COLS                                                                              \
	"id, iss, sub, sid, username, groups, key_fp, created, expires, idle_deadline, state, " \
	"end_reason, email"

#define STORE_WS_COLS "name, owner_sub, pubkey, key_fp, profile, created, killed"

enum store_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_REPLACE_KEY,
	STMT_INSERT,
	STMT_FIND_KEY,
	STMT_GET,
	STMT_TOUCH,
	STMT_END,
	STMT_EXPIRE_DUE,
	STMT_WS_INSERT,
	STMT_WS_DELETE,
	STMT_WS_GET,
	STMT_WS_FIND_KEY,
	STMT_WS_LIST,
	STMT_WS_SEQ_GET,
	STMT_WS_SEQ_SET,
	STMT_COUNT
};

static const char *const store_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_REPLACE_KEY] = "UPDATE sessions SET state = 2, end_reason = 'replaced', ended = ?2"
			     " WHERE key_fp = ?1 AND state = 0",
	[STMT_INSERT] = "INSERT INTO sessions (" STORE_COLS ", ended)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, NULL, ?11, NULL)",
	[STMT_FIND_KEY] = "SELECT " STORE_COLS " FROM sessions"
			  " WHERE key_fp = ?1 AND state = 0 AND expires > ?2 AND idle_deadline > ?2"
			  " ORDER BY created DESC LIMIT 1",
	[STMT_GET] = "SELECT " STORE_COLS " FROM sessions WHERE id = ?1",
	/* Only ever forward: a late touch must not shorten a deadline pushed meanwhile. */
	[STMT_TOUCH] = "UPDATE sessions SET idle_deadline = MAX(idle_deadline, ?2)"
		       " WHERE id = ?1 AND state = 0",
	[STMT_END] = "UPDATE sessions SET state = ?2, end_reason = ?3, ended = ?4"
		     " WHERE id = ?1 AND state = 0",
	[STMT_EXPIRE_DUE] = "UPDATE sessions SET state = 1, ended = ?1, end_reason ="
			    " CASE WHEN expires <= ?1 THEN 'expired' ELSE 'idle' END"
			    " WHERE state = 0 AND (expires <= ?1 OR idle_deadline <= ?1)"
			    " RETURNING " STORE_COLS,
	[STMT_WS_INSERT] = "INSERT INTO workspaces (" STORE_WS_COLS ")"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_WS_DELETE] = "DELETE FROM workspaces WHERE name = ?1",
	[STMT_WS_GET] = "SELECT " STORE_WS_COLS " FROM workspaces WHERE name = ?1",
	[STMT_WS_FIND_KEY] = "SELECT " STORE_WS_COLS " FROM workspaces WHERE key_fp = ?1",
	[STMT_WS_LIST] = "SELECT " STORE_WS_COLS " FROM workspaces ORDER BY name",
	[STMT_WS_SEQ_GET] = "SELECT audit_seq FROM workspaces WHERE name = ?1",
	[STMT_WS_SEQ_SET] = "UPDATE workspaces SET audit_seq = ?2 WHERE name = ?1",
};

/*
 * WAL checkpoints (copying the log back into the database, with fsyncs) are the only slow
 * thing sqlite does, and by default the committing call pays for them. The event loop must
 * never wait on the disk, so auto-checkpointing is off on the loop's connection and a worker
 * thread with a connection of its own runs a PASSIVE checkpoint every second (PASSIVE never
 * blocks writers).
 */
#define STORE_CHECKPOINT_MS 1000

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[STMT_COUNT];
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	bool ckpt_running;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_stop;
};

static void *
store_checkpoint_main(void *arg)
{
	struct store *st = arg;
	struct timespec ts;

	pthread_mutex_lock(&st->ckpt_lock);
	while (!st->ckpt_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)STORE_CHECKPOINT_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&st->ckpt_cond, &st->ckpt_lock, &ts);
		if (st->ckpt_stop)
			break;
		pthread_mutex_unlock(&st->ckpt_lock);
		sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&st->ckpt_lock);
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	return NULL;
}

static void
store_checkpoint_start(struct store *st, const char *path)
{
	if (strcmp(path, ":memory:") == 0)
		return;
	if (sqlite3_open_v2(path, &st->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		log_warnx("session store: no checkpoint thread (%s); sqlite checkpoints inline",
			  st->ckpt_db ? sqlite3_errmsg(st->ckpt_db) : "out of memory");
		sqlite3_close(st->ckpt_db);
		st->ckpt_db = NULL;
		return;
	}
	sqlite3_busy_timeout(st->ckpt_db, STORE_BUSY_TIMEOUT_MS);
	pthread_mutex_init(&st->ckpt_lock, NULL);
	pthread_cond_init(&st->ckpt_cond, NULL);
	if (pthread_create(&st->ckpt_thread, NULL, store_checkpoint_main, st) != 0) {
		sqlite3_close(st->ckpt_db);
		st->ckpt_db = NULL;
		return;
	}
	st->ckpt_running = true;
	sqlite3_wal_autocheckpoint(st->db, 0);
}

static void
store_checkpoint_stop(struct store *st)
{
	if (!st->ckpt_running)
		return;
	pthread_mutex_lock(&st->ckpt_lock);
	st->ckpt_stop = true;
	pthread_cond_signal(&st->ckpt_cond);
	pthread_mutex_unlock(&st->ckpt_lock);
	pthread_join(st->ckpt_thread, NULL);
	sqlite3_close(st->ckpt_db);
	st->ckpt_db = NULL;
	st->ckpt_running = false;
	pthread_mutex_destroy(&st->ckpt_lock);
	pthread_cond_destroy(&st->ckpt_cond);
}

static void
store_warn(struct store *st, const char *what)
{
	log_warnx("session store: %s: %s", what, sqlite3_errmsg(st->db));
}

/*
 * sqlite creates the -wal and -shm files with the mode of the database file, so creating the
 * database 0600 ourselves (rather than changing the process umask, which is shared) keeps
 * all three private. An existing file that is group/other accessible is tightened.
 */
static int
store_create_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open session database %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "cannot open session database %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "cannot open session database %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		if (fchmod(fd, sb.st_mode & 0700) == -1) {
			snprintf(err, errlen,
				 "session database %s is readable by other users and cannot be "
				 "made private: %s",
				 path, strerror(errno));
			close(fd);
			return -1;
		}
		log_warnx("session database %s was accessible to other users; mode set to %04o",
			  path, (unsigned)(sb.st_mode & 0700));
	}
	close(fd);
	return 0;
}

static int
store_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "session database: %s", msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
store_pragma_int(struct store *st, const char *sql, int *out, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "session database: %s", sqlite3_errmsg(st->db));
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "session database: %s", sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		return -1;
	}
	*out = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int
store_migrate(struct store *st, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int version, from;

	if (store_pragma_int(st, "PRAGMA user_version", &version, err, errlen) == -1)
		return -1;
	from = version;
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "session database %s has schema version %d but this saw-brokerd knows "
			 "only up to %d: run a newer saw-brokerd or move the database away",
			 path, version, STORE_SCHEMA_VERSION);
		return -1;
	}
	for (; version < STORE_SCHEMA_VERSION; version++) {
		if (store_exec(st, "BEGIN IMMEDIATE", err, errlen) == -1)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (store_exec(st, store_migrations[version], err, errlen) == -1 ||
		    store_exec(st, sql, err, errlen) == -1) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		if (store_exec(st, "COMMIT", err, errlen) == -1)
			return -1;
	}
	/* a new database is simply created; only an upgrade is worth a line */
	if (from > 0 && from < STORE_SCHEMA_VERSION)
		log_info("session database %s upgraded from schema version %d to %d", path, from,
			 STORE_SCHEMA_VERSION);
	return 0;
}

int
store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	struct store *st = NULL;
	char jm[16] = "";
	sqlite3_stmt *s = NULL;
	int i, rc;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no session database path configured");
		return -1;
	}
	if (strcmp(path, ":memory:") != 0 && store_create_file(path, err, errlen) == -1)
		return -1;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "session database: out of memory");
		return -1;
	}
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open session database %s: %s", path,
			 st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	/* Defensive mode: no writable_schema or similar ways to corrupt the file via SQL. */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errlen, "session database %s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	snprintf(jm, sizeof(jm), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	s = NULL;
	if (strcmp(jm, "wal") != 0 && strcmp(path, ":memory:") != 0) {
		snprintf(err, errlen,
			 "session database %s: cannot use write-ahead logging (journal mode is "
			 "%s); put it on a local file system",
			 path, jm);
		goto fail;
	}
	/* NORMAL in WAL mode: a power cut may lose the last commits but never corrupts. */
	if (store_exec(st, "PRAGMA synchronous = NORMAL", err, errlen) == -1 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", err, errlen) == -1 ||
	    store_migrate(st, path, err, errlen) == -1)
		goto fail;

	for (i = 0; i < STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "session database %s: %s", path,
				 sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	store_checkpoint_start(st, path);
	*out = st;
	return 0;
fail:
	sqlite3_finalize(s);
	store_close(st);
	return -1;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	store_checkpoint_stop(st);
	for (i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL) {
		sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
		if (sqlite3_close(st->db) != SQLITE_OK)
			store_warn(st, "close");
	}
	free(st);
}

/* Runs a statement without result rows and resets it. Returns 0 or -1 (logged). */
static int
store_step_done(struct store *st, enum store_stmt which, const char *what)
{
	sqlite3_stmt *s = st->stmt[which];
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		store_warn(st, what);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return -1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return 0;
}

static void
store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	store_step_done(st, STMT_ROLLBACK, "rollback");
}

static int
store_dup_col(sqlite3_stmt *s, int col, char **out)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	*out = NULL;
	if (v == NULL)
		return sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM ? -1 : 0;
	if ((*out = strdup((const char *)v)) == NULL)
		return -1;
	return 0;
}

/* Fills out from the current row (columns in STORE_COLS order). */
static int
store_read_row(sqlite3_stmt *s, struct store_session *out)
{
	const unsigned char *id = sqlite3_column_text(s, 0);

	memset(out, 0, sizeof(*out));
	if (id != NULL)
		snprintf(out->id, sizeof(out->id), "%s", (const char *)id);
	if (store_dup_col(s, 1, &out->iss) == -1 || store_dup_col(s, 2, &out->sub) == -1 ||
	    store_dup_col(s, 3, &out->sid) == -1 || store_dup_col(s, 4, &out->username) == -1 ||
	    store_dup_col(s, 5, &out->groups) == -1 || store_dup_col(s, 6, &out->key_fp) == -1 ||
	    store_dup_col(s, 11, &out->end_reason) == -1 ||
	    store_dup_col(s, 12, &out->email) == -1) {
		store_session_clear(out);
		return -1;
	}
	out->created = sqlite3_column_int64(s, 7);
	out->expires = sqlite3_column_int64(s, 8);
	out->idle_deadline = sqlite3_column_int64(s, 9);
	out->state = (enum store_state)sqlite3_column_int(s, 10);
	return 0;
}

/* Runs a single-row SELECT. Returns 0 with out filled, 1 for no row, -1 on error. */
static int
store_select_one(struct store *st, enum store_stmt which, struct store_session *out,
		 const char *what)
{
	sqlite3_stmt *s = st->stmt[which];
	int rc, ret;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		ret = store_read_row(s, out) == 0 ? 0 : -1;
		if (ret == -1)
			log_warnx("session store: %s: out of memory", what);
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else {
		store_warn(st, what);
		ret = -1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

static int
store_new_id(char id[STORE_ID_LEN + 1])
{
	unsigned char b[STORE_ID_LEN / 2];
	size_t i;

	/* A session id is a bearer reference in logs and admin calls: it must not be guessable. */
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		log_warn("session store: getrandom");
		return -1;
	}
	for (i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
	return 0;
}

int
store_session_create(struct store *st, struct store_session *s)
{
	sqlite3_stmt *q;

	if (store_new_id(s->id) == -1)
		return -1;
	if (store_step_done(st, STMT_BEGIN, "begin") == -1)
		return -1;

	if (s->key_fp != NULL) {
		q = st->stmt[STMT_REPLACE_KEY];
		sqlite3_bind_text(q, 1, s->key_fp, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, s->created);
		if (store_step_done(st, STMT_REPLACE_KEY, "end replaced sessions") == -1)
			goto fail;
	}

	q = st->stmt[STMT_INSERT];
	sqlite3_bind_text(q, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, s->iss, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, s->sub, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, s->sid, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, s->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, s->groups != NULL ? s->groups : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, s->key_fp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, s->created);
	sqlite3_bind_int64(q, 9, s->expires);
	sqlite3_bind_int64(q, 10, s->idle_deadline);
	sqlite3_bind_text(q, 11, s->email, -1, SQLITE_STATIC);
	if (store_step_done(st, STMT_INSERT, "create session") == -1)
		goto fail;
	if (store_step_done(st, STMT_COMMIT, "commit") == -1)
		goto fail;
	s->state = STORE_LIVE;
	free(s->end_reason);
	s->end_reason = NULL;
	return 0;
fail:
	store_rollback(st);
	s->id[0] = '\0';
	return -1;
}

int
store_session_find_by_key(struct store *st, const char *key_fp, int64_t now,
			  struct store_session *out)
{
	sqlite3_stmt *q = st->stmt[STMT_FIND_KEY];

	if (key_fp == NULL)
		return 1;
	sqlite3_bind_text(q, 1, key_fp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, now);
	return store_select_one(st, STMT_FIND_KEY, out, "find session by key");
}

int
store_session_get(struct store *st, const char *id, struct store_session *out)
{
	sqlite3_stmt *q = st->stmt[STMT_GET];

	if (id == NULL)
		return 1;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return store_select_one(st, STMT_GET, out, "get session");
}

/* Returns 0 when the update changed a row, 1 when none matched, -1 on error. */
static int
store_update(struct store *st, enum store_stmt which, const char *what)
{
	if (store_step_done(st, which, what) == -1)
		return -1;
	return sqlite3_changes(st->db) > 0 ? 0 : 1;
}

int
store_session_touch(struct store *st, const char *id, int64_t idle_deadline)
{
	sqlite3_stmt *q = st->stmt[STMT_TOUCH];

	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, idle_deadline);
	return store_update(st, STMT_TOUCH, "touch session");
}

int
store_session_end(struct store *st, const char *id, enum store_state state, const char *reason,
		  int64_t now)
{
	sqlite3_stmt *q = st->stmt[STMT_END];

	if (state != STORE_EXPIRED && state != STORE_REVOKED) {
		log_warnx("session store: end session %s: invalid state %d", id, (int)state);
		return -1;
	}
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, (int)state);
	sqlite3_bind_text(q, 3, reason != NULL ? reason : "ended", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, now);
	return store_update(st, STMT_END, "end session");
}

/*
 * Steps q to the end, gathering the rows, then calls cb for each (so that cb may use the store
 * and sees committed state). A statement that fails is rolled back as a whole: nothing is
 * reported. Out of memory stops gathering; the rows gathered are still reported. q is
 * finalized if own, else reset for reuse. Returns the number of rows, or -1.
 */
static int
store_gather(struct store *st, sqlite3_stmt *q, bool own,
	     void (*cb)(const struct store_session *, void *), void *arg, const char *what)
{
	struct store_session *rows = NULL, *tmp;
	size_t n = 0, cap = 0, i;
	bool db_failed = false;
	int rc, ret = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			if ((tmp = reallocarray(rows, cap, sizeof(*rows))) == NULL) {
				ret = -1;
				break;
			}
			rows = tmp;
		}
		if (store_read_row(q, &rows[n]) == -1) {
			ret = -1;
			break;
		}
		n++;
	}
	if (ret == -1) {
		log_warnx("session store: %s: out of memory", what);
	} else if (rc != SQLITE_DONE) {
		store_warn(st, what);
		db_failed = true;
		ret = -1;
	}
	if (own) {
		sqlite3_finalize(q);
	} else {
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
	}
	for (i = 0; i < n; i++) {
		if (cb != NULL && !db_failed)
			cb(&rows[i], arg);
		store_session_clear(&rows[i]);
	}
	free(rows);
	return ret == 0 ? (int)n : -1;
}

int
store_session_expire_due(struct store *st, int64_t now,
			 void (*cb)(const struct store_session *, void *), void *arg)
{
	sqlite3_stmt *q = st->stmt[STMT_EXPIRE_DUE];
	int n;

	/* sqlite applies a RETURNING update as a whole on the first step. */
	sqlite3_bind_int64(q, 1, now);
	n = store_gather(st, q, false, cb, arg, "expire sessions");
	return n < 0 ? -1 : 0;
}

void
store_session_clear(struct store_session *s)
{
	if (s == NULL)
		return;
	free(s->iss);
	free(s->sub);
	free(s->sid);
	free(s->username);
	free(s->groups);
	free(s->key_fp);
	free(s->email);
	free(s->end_reason);
	memset(s, 0, sizeof(*s));
}

/* ---- workspaces ------------------------------------------------------------------------- */

int
store_workspace_add(struct store *st, const struct store_workspace *w)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_INSERT];
	int rc, ext;

	if (w->name == NULL || w->owner_sub == NULL || w->pubkey == NULL || w->key_fp == NULL ||
	    w->profile == NULL) {
		log_warnx("session store: add workspace: missing field");
		return -1;
	}
	sqlite3_bind_text(q, 1, w->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, w->owner_sub, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, w->pubkey, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, w->key_fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, w->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, w->created);
	sqlite3_bind_int(q, 7, w->killed ? 1 : 0);
	rc = sqlite3_step(q);
	ext = sqlite3_extended_errcode(st->db);
	if (rc != SQLITE_DONE &&
	    (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)) {
		/* the caller tells the name and key cases apart with get / find_by_key */
		rc = 1;
	} else if (rc != SQLITE_DONE) {
		store_warn(st, "add workspace");
		rc = -1;
	} else {
		rc = 0;
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc;
}

int
store_workspace_remove(struct store *st, const char *name)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_DELETE];

	if (name == NULL)
		return 1;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return store_update(st, STMT_WS_DELETE, "remove workspace");
}

/* Fills out from the current row (columns in STORE_WS_COLS order). */
static int
store_read_ws_row(sqlite3_stmt *s, struct store_workspace *out)
{
	memset(out, 0, sizeof(*out));
	if (store_dup_col(s, 0, &out->name) == -1 || store_dup_col(s, 1, &out->owner_sub) == -1 ||
	    store_dup_col(s, 2, &out->pubkey) == -1 || store_dup_col(s, 3, &out->key_fp) == -1 ||
	    store_dup_col(s, 4, &out->profile) == -1) {
		store_workspace_clear(out);
		return -1;
	}
	out->created = sqlite3_column_int64(s, 5);
	out->killed = sqlite3_column_int(s, 6);
	return 0;
}

static int
store_ws_select_one(struct store *st, enum store_stmt which, struct store_workspace *out,
		    const char *what)
{
	sqlite3_stmt *s = st->stmt[which];
	int rc, ret;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		ret = store_read_ws_row(s, out) == 0 ? 0 : -1;
		if (ret == -1)
			log_warnx("session store: %s: out of memory", what);
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else {
		store_warn(st, what);
		ret = -1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int
store_workspace_get(struct store *st, const char *name, struct store_workspace *out)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_GET];

	if (name == NULL)
		return 1;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return store_ws_select_one(st, STMT_WS_GET, out, "get workspace");
}

int
store_workspace_find_by_key(struct store *st, const char *key_fp, struct store_workspace *out)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_FIND_KEY];

	if (key_fp == NULL)
		return 1;
	sqlite3_bind_text(q, 1, key_fp, -1, SQLITE_STATIC);
	return store_ws_select_one(st, STMT_WS_FIND_KEY, out, "find workspace by key");
}

int
store_workspace_list(struct store *st, int (*cb)(const struct store_workspace *, void *), void *arg)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_LIST];
	struct store_workspace *rows = NULL, *tmp;
	size_t n = 0, cap = 0, i;
	int rc, ret = 0;

	/*
	 * Rows are collected first and the callbacks run once the statement is reset, so a
	 * callback may call back into the store (even list again) without disturbing the walk.
	 */
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			if ((tmp = reallocarray(rows, cap, sizeof(*rows))) == NULL) {
				ret = -1;
				break;
			}
			rows = tmp;
		}
		if (store_read_ws_row(q, &rows[n]) == -1) {
			ret = -1;
			break;
		}
		n++;
	}
	if (ret == -1) {
		log_warnx("session store: list workspaces: out of memory");
	} else if (rc != SQLITE_DONE) {
		store_warn(st, "list workspaces");
		ret = -1;
	}
	sqlite3_reset(q);
	for (i = 0; i < n; i++) {
		if (ret == 0 && cb != NULL && cb(&rows[i], arg) != 0)
			cb = NULL; /* the caller stopped the walk: not an error */
		store_workspace_clear(&rows[i]);
	}
	free(rows);
	return ret;
}

int
store_workspace_audit_seq_get(struct store *st, const char *name, int64_t *seq)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_SEQ_GET];
	int rc, ret;

	*seq = 0;
	if (name == NULL)
		return 1;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(q, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else {
		store_warn(st, "get workspace audit mark");
		ret = -1;
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return ret;
}

int
store_workspace_audit_seq_set(struct store *st, const char *name, int64_t seq)
{
	sqlite3_stmt *q = st->stmt[STMT_WS_SEQ_SET];

	if (name == NULL || seq < 0)
		return -1;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, seq);
	return store_update(st, STMT_WS_SEQ_SET, "record workspace audit mark");
}

void
store_workspace_clear(struct store_workspace *w)
{
	if (w == NULL)
		return;
	free(w->name);
	free(w->owner_sub);
	free(w->pubkey);
	free(w->key_fp);
	free(w->profile);
	memset(w, 0, sizeof(*w));
}

/* ---- revocation (issue #4) -------------------------------------------------------------- */

int
store_session_match(struct store *st, const struct store_filter *f, int64_t now,
		    void (*cb)(const struct store_session *, void *), void *arg)
{
	const char *vals[6] = { f->iss, f->sub, f->sid, f->username, f->email, f->id };
	static const char *const cols[6] = { "iss", "sub", "sid", "username", "email", "id" };
	char sql[512];
	sqlite3_stmt *q = NULL;
	size_t off, i;
	int nb = 0;

	off = (size_t)snprintf(sql, sizeof(sql),
			       "SELECT " STORE_COLS " FROM sessions WHERE state = 0"
			       " AND expires > ?1 AND idle_deadline > ?1");
	for (i = 0; i < 6; i++) {
		if (vals[i] == NULL)
			continue;
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, " AND %s = ?%zu", cols[i],
					i + 2);
		nb++;
	}
	if (nb == 0 || (f->iss != NULL && nb == 1))
		return -1; /* refuse "every session" (or every session of an issuer) by accident */
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		store_warn(st, "match sessions");
		return -1;
	}
	sqlite3_bind_int64(q, 1, now);
	for (i = 0; i < 6; i++)
		if (vals[i] != NULL)
			sqlite3_bind_text(q, (int)i + 2, vals[i], -1, SQLITE_STATIC);
	return store_gather(st, q, true, cb, arg, "match sessions");
}

int
store_session_list(struct store *st, const char *username, int include_ended,
		   void (*cb)(const struct store_session *, void *), void *arg)
{
	sqlite3_stmt *q = NULL;
	const char *sql =
		include_ended ?
			"SELECT " STORE_COLS " FROM sessions WHERE (?1 IS NULL OR username = ?1)"
			" ORDER BY state = 0 DESC, COALESCE(ended, created) DESC LIMIT 1000" :
			"SELECT " STORE_COLS " FROM sessions WHERE state = 0"
			" AND (?1 IS NULL OR username = ?1) ORDER BY created DESC";

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		store_warn(st, "list sessions");
		return -1;
	}
	sqlite3_bind_text(q, 1, username, -1, SQLITE_STATIC);
	return store_gather(st, q, true, cb, arg, "list sessions");
}

static int
store_simple(struct store *st, const char *sql, const char *what, const char *t1, const char *t2,
	     const char *t3, int64_t i1, int64_t i2)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		store_warn(st, what);
		return -1;
	}
	sqlite3_bind_text(q, 1, t1, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, t2, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, t3, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, i1);
	sqlite3_bind_int64(q, 5, i2);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		store_warn(st, what);
		return -1;
	}
	return sqlite3_changes(st->db) > 0 ? 0 : 1;
}

int
store_lock_set(struct store *st, const char *key, int64_t until, const char *message,
	       const char *actor, int64_t now)
{
	int rc = store_simple(st,
			      "INSERT INTO locks (key, message, actor, until, created)"
			      " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET"
			      " message = ?2, actor = ?3, until = ?4, created = ?5",
			      "set lock", key, message, actor, until, now);
	return rc < 0 ? -1 : 0;
}

int
store_lock_clear(struct store *st, const char *key)
{
	return store_simple(st, "DELETE FROM locks WHERE key = ?1", "clear lock", key, NULL, NULL,
			    0, 0);
}

int
store_lock_get(struct store *st, const char *key, int64_t now, char **message, int64_t *until)
{
	sqlite3_stmt *q = NULL;
	int rc, ret = 1;

	*message = NULL;
	*until = 0;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT message, until FROM locks WHERE key = ?1"
			       " AND (until = 0 OR until > ?2)",
			       -1, &q, NULL) != SQLITE_OK) {
		store_warn(st, "get lock");
		return -1;
	}
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, now);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		ret = store_dup_col(q, 0, message) == 0 ? 0 : -1;
		*until = sqlite3_column_int64(q, 1);
	} else if (rc != SQLITE_DONE) {
		store_warn(st, "get lock");
		ret = -1;
	}
	sqlite3_finalize(q);
	return ret;
}

int
store_lock_list(struct store *st, int64_t now,
		void (*cb)(const char *key, int64_t until, const char *message, void *), void *arg)
{
	sqlite3_stmt *q = NULL;
	int rc, n = 0;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT key, until, message FROM locks WHERE until = 0 OR until > ?1"
			       " ORDER BY key",
			       -1, &q, NULL) != SQLITE_OK) {
		store_warn(st, "list locks");
		return -1;
	}
	sqlite3_bind_int64(q, 1, now);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		cb((const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1),
		   (const char *)sqlite3_column_text(q, 2), arg);
		n++;
	}
	if (rc != SQLITE_DONE) {
		store_warn(st, "list locks");
		n = -1;
	}
	sqlite3_finalize(q);
	return n;
}

int
store_jti_use(struct store *st, const char *iss, const char *jti, int64_t exp, int64_t now)
{
	int rc;

	if (iss == NULL || jti == NULL)
		return -1;
	store_simple(st, "DELETE FROM jti WHERE exp < ?4", "purge jti", NULL, NULL, NULL, now, 0);
	rc = store_simple(st, "INSERT OR IGNORE INTO jti (iss, jti, exp) VALUES (?1, ?2, ?4)",
			  "record jti", iss, jti, NULL, exp, 0);
	if (rc < 0)
		return -1;
	return rc == 0 ? 0 : 1; /* no row inserted: seen before */
}

int
store_workspace_set_killed(struct store *st, const char *name, int killed)
{
	return store_simple(st, "UPDATE workspaces SET killed = ?4 WHERE name = ?1",
			    "kill workspace", name, NULL, NULL, killed ? 1 : 0, 0);
}
