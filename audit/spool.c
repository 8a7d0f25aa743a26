/*
 * sqlite spool (see spool.h). Autocommit per append: an append is one small WAL write
 * (synchronous=NORMAL: no fsync per commit); the sink has the WAL fdatasync'd in the
 * background (syncer.h) through a descriptor of our own (fsync flushes a file's data whoever
 * wrote it).
 *
 * Checkpoints (copying the WAL back into the database, with an fsync of each) are the slow
 * part of sqlite and by default the committing call pays for them: on the event loop. So the
 * loop's connection never checkpoints (its WAL hook replaces sqlite's auto-checkpoint); a
 * thread with a connection of its own runs them, woken every SPOOL_CKPT_FRAMES frames and
 * at least every SPOOL_CKPT_IDLE_MS while frames are pending. Two connections need sqlite's
 * shared-memory WAL index, so the database is no longer opened in exclusive locking mode;
 * one spool per file is kept by an flock(2) on the database held while the spool is open.
 *
 * PASSIVE checkpoints never block the loop, but while appends keep coming they never catch
 * up completely, and only a WAL copied in full is started again from the beginning: during
 * a long burst the WAL would grow without end. When a PASSIVE pass leaves more than
 * SPOOL_WAL_MAX_FRAMES frames, the thread follows it with a RESTART checkpoint, which holds
 * sqlite's writer lock while it copies what that pass left: appends wait for it (spool_busy),
 * which is back-pressure exactly when the disk does not keep up. journal_size_limit then
 * trims the file.
 *
 * Cost per append (measured, tests/bench): a plain INTEGER PRIMARY KEY avoids
 * AUTOINCREMENT's extra page write per insert. Without AUTOINCREMENT ids restart at 1 once
 * the table is empty, never while rows remain (rowid = max + 1), so order holds;
 * spool_peek() callers reset their cursor when spool_rows() is 0 (see spool.h). An ack of
 * exactly the rows the last peek returned takes their count and bytes from that peek.
 *
 * Threads: the loop thread owns s->db and its statements; the checkpoint thread owns
 * ck->db. They share only struct spool_ckpt's fields marked "mu".
 */
#include "audit/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/log.h"

#define SPOOL_SCHEMA_VERSION 1
#define SPOOL_BUSY_MS 5000 /* a RESTART checkpoint in progress (see above) */
#define SPOOL_BUSY_POLL_US 200
#define SPOOL_CKPT_FRAMES 1000	   /* wake the checkpoint thread every that many frames */
#define SPOOL_CKPT_IDLE_MS 1000	   /* and at least this often while frames are pending */
#define SPOOL_WAL_MAX_FRAMES 16384 /* RESTART past this */

struct spool_ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sqlite3 *db;	   /* the thread's connection */
	bool wake;	   /* mu: frames were added since the last pass */
	bool stop;	   /* mu */
	bool hold;	   /* mu: spool_checkpoint_hold() */
	bool restart_next; /* mu: the last PASSIVE pass left the WAL too long */
	long long passes;  /* mu */
	long long restarts;
	int wal_frames; /* mu: WAL size after the last pass */
	int err;	/* mu: sqlite code of the last failed pass, 0 none */
	bool err_logged;
};

struct spool {
	sqlite3 *db;
	sqlite3_stmt *ins, *sel, *del, *sum;
	sqlite3_stmt *begin, *commit; /* prepared once: one transaction per loop turn */
	char *wal_path;
	int wal_fd;
	int lock_fd; /* flock(LOCK_EX) on the database: one spool per file */
	long long rows, bytes, max_bytes;
	/* Every id <= gone is deleted (0 after open and whenever the spool is empty). */
	long long gone;
	/* The last spool_peek(): rows after_id < id <= upto, their number and bytes. */
	bool peeked;
	long long peek_after, peek_upto, peek_rows, peek_bytes;
	/* spool_begin(): a transaction is open; what it holds is durable at spool_commit() */
	bool txn;
	/* Loop side of the checkpoint thread. */
	struct spool_ckpt *ck;
	bool ck_failed;	  /* could not start it: sqlite checkpoints inline */
	int ck_signalled; /* WAL frames when the thread was last woken */
	char path[1024];
};

int
spool_row_check(const char *uid, const char *event, size_t len)
{
	size_t i;

	if (event == NULL || len < 2 || len > SPOOL_EVENT_MAX || event[0] != '{' ||
	    event[len - 1] != '}')
		return -1;
	if (memchr(event, '\0', len) != NULL || memchr(event, '\n', len) != NULL ||
	    memchr(event, '\r', len) != NULL)
		return -1;
	if (uid != NULL) {
		for (i = 0; uid[i] != '\0'; i++)
			if (uid[i] <= ' ' || uid[i] > '~' || i >= 128)
				return -1;
	}
	return 0;
}

static int
spool_exec(sqlite3 *db, const char *path, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "audit spool %s: %s", path,
			 msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* ---- the checkpoint thread ------------------------------------------------------------ */

/*
 * Busy handler of both connections: only a RESTART checkpoint makes the loop wait, for a few
 * milliseconds, and it waits in turn for the loop's short read transactions; sqlite's own
 * handler sleeps up to 100 ms at a time, so this one polls finely.
 */
static int
spool_busy(void *arg, int count)
{
	if (count >= SPOOL_BUSY_MS * 1000 / SPOOL_BUSY_POLL_US)
		return 0;
	usleep(SPOOL_BUSY_POLL_US);
	return 1;
}

static void *
spool_ckpt_main(void *arg)
{
	struct spool_ckpt *ck = arg;
	struct timespec ts;
	int rc, nlog, nckpt, mode;

	pthread_mutex_lock(&ck->mu);
	while (!ck->stop) {
		if (ck->hold || !ck->wake) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)SPOOL_CKPT_IDLE_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&ck->cv, &ck->mu, &ts);
			if (ck->stop || ck->hold)
				continue;
			/* A timeout with nothing left over from the last pass: nothing to do. */
			if (!ck->wake && ck->wal_frames == 0)
				continue;
		}
		ck->wake = false;
		/* RESTART only after a PASSIVE pass did the bulk without blocking anyone. */
		mode = ck->restart_next ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE;
		ck->restart_next = false;
		pthread_mutex_unlock(&ck->mu);

		nlog = nckpt = -1;
		rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, mode, &nlog, &nckpt);

		pthread_mutex_lock(&ck->mu);
		if (rc == SQLITE_OK) {
			ck->passes++;
			if (mode == SQLITE_CHECKPOINT_RESTART)
				ck->restarts++;
			/* After a RESTART the next append starts the WAL over. */
			ck->wal_frames = mode == SQLITE_CHECKPOINT_RESTART ? 0 : nlog;
			if (mode == SQLITE_CHECKPOINT_PASSIVE && nlog == nckpt)
				ck->wal_frames = 0;
			/* Still too long: go again at once, as RESTART. */
			if (ck->wal_frames >= SPOOL_WAL_MAX_FRAMES)
				ck->wake = ck->restart_next = true;
			ck->err = 0;
			ck->err_logged = false;
		} else if (rc != SQLITE_BUSY) {
			ck->err = rc; /* logged by the loop side */
		}
		pthread_cond_broadcast(&ck->cv);
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

/* Starts the thread and its connection; on failure sqlite checkpoints inline. */
static void
spool_ckpt_start(struct spool *s)
{
	struct spool_ckpt *ck;
	char err[256];

	if (s->ck != NULL || s->ck_failed)
		return;
	s->ck_failed = true;
	if ((ck = calloc(1, sizeof(*ck))) == NULL)
		goto fail;
	if (sqlite3_open_v2(s->path, &ck->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			    NULL) != SQLITE_OK) {
		snprintf(err, sizeof(err), "%s",
			 ck->db != NULL ? sqlite3_errmsg(ck->db) : "out of memory");
		log_warnx("audit spool %s: no checkpoint thread (%s); sqlite checkpoints on "
			  "the event loop",
			  s->path, err);
		goto fail;
	}
	/* A RESTART holds the writer lock while it waits for readers: poll finely. */
	sqlite3_busy_handler(ck->db, spool_busy, NULL);
	/* The checkpoint syncs the WAL before copying and the database after. */
	if (spool_exec(ck->db, s->path, "PRAGMA synchronous=NORMAL", err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto fail;
	}
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	if (pthread_create(&ck->thread, NULL, spool_ckpt_main, ck) != 0) {
		log_warnx("audit spool %s: cannot start the checkpoint thread; sqlite "
			  "checkpoints on the event loop",
			  s->path);
		pthread_mutex_destroy(&ck->mu);
		pthread_cond_destroy(&ck->cv);
		goto fail;
	}
	s->ck = ck;
	s->ck_failed = false;
	return;
fail:
	if (ck != NULL) {
		sqlite3_close(ck->db);
		free(ck);
	}
	sqlite3_wal_autocheckpoint(s->db, SPOOL_CKPT_FRAMES);
}

static void
spool_ckpt_stop(struct spool *s)
{
	struct spool_ckpt *ck = s->ck;

	if (ck == NULL)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->stop = true;
	pthread_cond_broadcast(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	sqlite3_close(ck->db);
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->cv);
	free(ck);
	s->ck = NULL;
}

/*
 * sqlite3_wal_hook(): after every commit of the loop's connection, with the WAL's length in
 * frames. Replaces the auto-checkpoint; wakes the thread once per SPOOL_CKPT_FRAMES.
 */
static int
spool_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct spool *s = arg;
	struct spool_ckpt *ck = s->ck;
	int err = 0;

	if (ck == NULL)
		return SQLITE_OK;
	if (frames < s->ck_signalled)
		s->ck_signalled = 0; /* the WAL started over */
	if (s->ck_signalled != 0 && frames - s->ck_signalled < SPOOL_CKPT_FRAMES)
		return SQLITE_OK;
	s->ck_signalled = frames;
	pthread_mutex_lock(&ck->mu);
	if (frames > ck->wal_frames)
		ck->wal_frames = frames;
	ck->wake = true;
	pthread_cond_signal(&ck->cv);
	if (ck->err != 0 && !ck->err_logged) {
		err = ck->err;
		ck->err_logged = true;
	}
	pthread_mutex_unlock(&ck->mu);
	if (err != 0)
		log_warnx("audit spool %s: checkpoint failed: %s; retrying", s->path,
			  sqlite3_errstr(err));
	return SQLITE_OK;
}

/* ---- the spool ------------------------------------------------------------------------- */

/* Takes the one-spool-per-file lock; creates the file (0600: events name people). */
static int
spool_lock(struct spool *s, char *err, size_t errlen)
{
	s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (s->lock_fd == -1) {
		snprintf(err, errlen, "cannot open audit spool %s: %s", s->path, strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen,
				 "audit spool %s is in use by another process (or another sink "
				 "with the same spool=)",
				 s->path);
		else
			snprintf(err, errlen, "cannot lock audit spool %s: %s", s->path,
				 strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads rows and bytes from the table (at open, and after a transaction was rolled back).
 * Returns 0 or -1 (the counts are left as they were). */
static int
spool_count(struct spool *s)
{
	int rc;

	sqlite3_bind_int64(s->sum, 1, INT64_MAX);
	if ((rc = sqlite3_step(s->sum)) == SQLITE_ROW) {
		s->rows = sqlite3_column_int64(s->sum, 0);
		s->bytes = sqlite3_column_int64(s->sum, 1);
	}
	sqlite3_reset(s->sum);
	return rc == SQLITE_ROW ? 0 : -1;
}

struct spool *
spool_open(const char *path, long long max_bytes, char *err, size_t errlen)
{
	struct spool *s;
	sqlite3_stmt *st = NULL;
	char sql[128];
	int rc, version = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "audit spool %s: out of memory", path);
		return NULL;
	}
	s->wal_fd = s->lock_fd = -1;
	s->max_bytes = max_bytes;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s", path) >= sizeof(s->path)) {
		snprintf(err, errlen, "audit spool path %.64s... is too long", path);
		goto fail;
	}
	if (spool_lock(s, err, errlen) == -1)
		goto fail;
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open audit spool %s: %s", path,
			 s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_handler(s->db, spool_busy, NULL);
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%lld",
		 (long long)SPOOL_WAL_MAX_FRAMES * 4096);
	if (spool_exec(s->db, path, "PRAGMA journal_mode=WAL", err, errlen) == -1 ||
	    spool_exec(s->db, path, "PRAGMA synchronous=NORMAL", err, errlen) == -1 ||
	    spool_exec(s->db, path, sql, err, errlen) == -1 ||
	    /* Pages read back (forwarder) come from memory, not read(2). */
	    spool_exec(s->db, path, "PRAGMA cache_size=-16384", err, errlen) == -1 ||
	    spool_exec(s->db, path, "PRAGMA mmap_size=268435456", err, errlen) == -1 ||
	    spool_exec(s->db, path, "PRAGMA secure_delete=OFF", err, errlen) == -1)
		goto fail;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errlen, "audit spool %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > SPOOL_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "audit spool %s was written by a newer version (schema %d); move it "
			 "aside or upgrade",
			 path, version);
		goto fail;
	}
	if (spool_exec(s->db, path,
		       "CREATE TABLE IF NOT EXISTS spool ("
		       " id INTEGER PRIMARY KEY,"
		       " time INTEGER NOT NULL,"
		       " uid TEXT,"
		       " event BLOB NOT NULL);"
		       "PRAGMA user_version=1;",
		       err, errlen) == -1)
		goto fail;
	if (sqlite3_prepare_v3(s->db, "INSERT INTO spool(time, uid, event) VALUES (?, ?, ?)", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
			       "SELECT id, time, uid, event FROM spool WHERE id > ? ORDER BY id "
			       "LIMIT ?",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "DELETE FROM spool WHERE id <= ?", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db,
			       "SELECT count(*), coalesce(sum(length(event)), 0) FROM spool "
			       "WHERE id <= ?",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->sum, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "BEGIN", -1, SQLITE_PREPARE_PERSISTENT, &s->begin, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &s->commit, NULL) !=
		    SQLITE_OK) {
		snprintf(err, errlen, "audit spool %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if (spool_count(s) != 0) {
		snprintf(err, errlen, "audit spool %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if (asprintf(&s->wal_path, "%s-wal", path) == -1) {
		s->wal_path = NULL;
		snprintf(err, errlen, "audit spool %s: out of memory", path);
		goto fail;
	}
	/* From here on the loop's connection never checkpoints (the thread starts with the
	 * first append: a spool only read, as by the fuzzer, needs none). */
	sqlite3_wal_hook(s->db, spool_wal_hook, s);
	return s;
fail:
	sqlite3_finalize(st);
	spool_close(s);
	return NULL;
}

int
spool_append(struct spool *s, const char *uid, int64_t time_ms, const char *event, size_t len)
{
	int rc;

	if (len > SPOOL_EVENT_MAX)
		return -1;
	if (s->max_bytes > 0 && s->bytes + (long long)len > s->max_bytes)
		return SPOOL_FULL;
	if (s->ck == NULL && !s->ck_failed)
		spool_ckpt_start(s);
	sqlite3_bind_int64(s->ins, 1, time_ms);
	if (uid != NULL)
		sqlite3_bind_text(s->ins, 2, uid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->ins, 2);
	sqlite3_bind_blob(s->ins, 3, event, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s->ins);
	sqlite3_reset(s->ins);
	sqlite3_clear_bindings(s->ins);
	if (rc != SQLITE_DONE) {
		log_warnx("cannot write audit spool %s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	s->rows++;
	s->bytes += (long long)len;
	return 0;
}

int
spool_peek(struct spool *s, long long after_id, size_t max_rows, size_t max_bytes,
	   int (*cb)(const struct spool_row *row, void *arg), void *arg)
{
	struct spool_row row;
	size_t bytes = 0;
	int n = 0, rc;

	s->peeked = false;
	s->peek_after = s->peek_upto = after_id;
	sqlite3_bind_int64(s->sel, 1, after_id);
	sqlite3_bind_int64(s->sel, 2, (sqlite3_int64)max_rows);
	while ((rc = sqlite3_step(s->sel)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		row.id = sqlite3_column_int64(s->sel, 0);
		row.time_ms = sqlite3_column_int64(s->sel, 1);
		row.uid = (const char *)sqlite3_column_text(s->sel, 2);
		row.event = sqlite3_column_blob(s->sel, 3);
		row.len = (size_t)sqlite3_column_bytes(s->sel, 3);
		row.damaged = spool_row_check(row.uid, row.event, row.len) != 0;
		if (n > 0 && bytes + row.len > max_bytes)
			break;
		bytes += row.len;
		n++;
		s->peek_upto = row.id;
		if (cb(&row, arg) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("cannot read audit spool %s: %s", s->path, sqlite3_errmsg(s->db));
		n = -1;
	}
	sqlite3_reset(s->sel);
	if (n > 0) {
		s->peeked = true;
		s->peek_rows = n;
		s->peek_bytes = (long long)bytes;
	}
	return n;
}

int
spool_ack(struct spool *s, long long upto_id)
{
	long long rows, bytes;
	int rc;

	/* The rows the last peek returned are exactly those in (peek_after, peek_upto]; with
	 * nothing left at or below peek_after, acking peek_upto deletes just them. */
	if (s->peeked && upto_id == s->peek_upto && s->peek_after <= s->gone) {
		rows = s->peek_rows;
		bytes = s->peek_bytes;
	} else {
		sqlite3_bind_int64(s->sum, 1, upto_id);
		rc = sqlite3_step(s->sum);
		rows = rc == SQLITE_ROW ? sqlite3_column_int64(s->sum, 0) : 0;
		bytes = rc == SQLITE_ROW ? sqlite3_column_int64(s->sum, 1) : 0;
		sqlite3_reset(s->sum);
		if (rc != SQLITE_ROW)
			goto fail;
	}
	sqlite3_bind_int64(s->del, 1, upto_id);
	rc = sqlite3_step(s->del);
	sqlite3_reset(s->del);
	if (rc != SQLITE_DONE)
		goto fail;
	s->peeked = false;
	s->rows -= rows;
	s->bytes -= bytes;
	if (upto_id > s->gone)
		s->gone = upto_id;
	if (s->rows <= 0 || s->bytes < 0) {
		s->rows = s->bytes = 0;
		s->gone = 0; /* empty: ids may start again from 1 */
	}
	return 0;
fail:
	s->peeked = false;
	log_warnx("cannot delete delivered events from audit spool %s: %s", s->path,
		  sqlite3_errmsg(s->db));
	return -1;
}

/* Steps a prepared statement without rows; SQLITE_DONE or the error code. */
static int
spool_step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

int
spool_begin(struct spool *s)
{
	if (s->txn)
		return 0;
	if (spool_step(s->begin) != SQLITE_DONE) {
		log_warnx("audit spool %s: cannot begin a transaction: %s", s->path,
			  sqlite3_errmsg(s->db));
		return -1;
	}
	s->txn = true;
	return 0;
}

int
spool_commit(struct spool *s)
{
	char err[1400];

	if (!s->txn)
		return 0;
	s->txn = false;
	if (spool_step(s->commit) == SQLITE_DONE)
		return 0;
	log_warnx("audit spool %s: cannot commit: %s", s->path, sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db) &&
	    spool_exec(s->db, s->path, "ROLLBACK", err, sizeof(err)) == -1)
		log_warnx("%s", err);
	if (spool_count(s) != 0)
		log_warnx("audit spool %s: cannot count its rows again: %s", s->path,
			  sqlite3_errmsg(s->db));
	s->gone = 0; /* trivially true; spool_ack() then counts what it deletes */
	s->peeked = false;
	return -1;
}

bool
spool_in_txn(const struct spool *s)
{
	return s->txn;
}

long long
spool_last_id(const struct spool *s)
{
	return (long long)sqlite3_last_insert_rowid(s->db);
}

int
spool_wal_fd(struct spool *s)
{
	if (s->wal_fd == -1)
		s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	return s->wal_fd;
}

int
spool_sync(struct spool *s)
{
	if (spool_wal_fd(s) == -1)
		return errno == ENOENT ? 0 : -1; /* nothing written yet */
	if (fdatasync(s->wal_fd) == -1) {
		log_warn("cannot sync audit spool %s", s->wal_path);
		return -1;
	}
	return 0;
}

long long
spool_rows(const struct spool *s)
{
	return s->rows;
}

long long
spool_bytes(const struct spool *s)
{
	return s->bytes;
}

void
spool_checkpoint_hold(struct spool *s, bool hold)
{
	if (s->ck == NULL)
		spool_ckpt_start(s);
	if (s->ck == NULL)
		return;
	pthread_mutex_lock(&s->ck->mu);
	s->ck->hold = hold;
	if (!hold)
		s->ck->wake = true;
	pthread_cond_broadcast(&s->ck->cv);
	pthread_mutex_unlock(&s->ck->mu);
}

void
spool_stats(struct spool *s, struct spool_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->rows = s->rows;
	out->bytes = s->bytes;
	out->checkpoint_thread = s->ck != NULL;
	if (s->ck == NULL)
		return;
	pthread_mutex_lock(&s->ck->mu);
	out->checkpoints = s->ck->passes;
	out->restarts = s->ck->restarts;
	out->wal_frames = s->ck->wal_frames;
	pthread_mutex_unlock(&s->ck->mu);
}

void
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	(void)spool_commit(s); /* closing would roll it back */
	spool_ckpt_stop(s);
	if (s->wal_fd != -1)
		close(s->wal_fd);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->sel);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->sum);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	/* The last connection to close checkpoints and removes the WAL. */
	if (s->db != NULL)
		sqlite3_close(s->db);
	/* Only now: closing any descriptor of the file drops the process's POSIX locks on
	 * it, sqlite's included. */
	if (s->lock_fd != -1)
		close(s->lock_fd);
	free(s->wal_path);
	free(s);
}
