/*
 * sqlite spool (see spool.h). One connection, prepared statements, autocommit per append:
 * an append is one small WAL write (synchronous=NORMAL: no fsync per commit); the sink has
 * the WAL fdatasync'd in the background (syncer.h) through a descriptor of our own (fsync
 * flushes a file's data whoever wrote it). Checkpoints (every ~1000 pages) sync the WAL and
 * the database themselves.
 *
 * Cost per append (measured, tests/bench): exclusive locking mode takes the per-transaction
 * file locks and the shared-memory index away (and keeps a second process off the spool,
 * which is wanted); a plain INTEGER PRIMARY KEY avoids AUTOINCREMENT's extra page write per
 * insert. Without AUTOINCREMENT ids restart at 1 once the table is empty, never while rows
 * remain (rowid = max + 1), so order holds; spool_peek() callers reset their cursor when
 * spool_rows() is 0 (see spool.h).
 */
#include "audit/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/log.h"

#define SPOOL_SCHEMA_VERSION 1

struct spool {
	sqlite3 *db;
	sqlite3_stmt *ins, *sel, *del, *sum;
	char *wal_path;
	int wal_fd;
	long long rows, bytes, max_bytes;
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
spool_exec(struct spool *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "audit spool %s: %s", s->path,
			 msg != NULL ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

struct spool *
spool_open(const char *path, long long max_bytes, char *err, size_t errlen)
{
	struct spool *s;
	sqlite3_stmt *st = NULL;
	int rc, version = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "audit spool %s: out of memory", path);
		return NULL;
	}
	s->wal_fd = -1;
	s->max_bytes = max_bytes;
	snprintf(s->path, sizeof(s->path), "%s", path);
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open audit spool %s: %s", path,
			 s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 1000);
	if (spool_exec(s, "PRAGMA locking_mode=EXCLUSIVE", err, errlen) == -1 ||
	    spool_exec(s, "PRAGMA journal_mode=WAL", err, errlen) == -1 ||
	    spool_exec(s, "PRAGMA synchronous=NORMAL", err, errlen) == -1 ||
	    /* Pages read back (forwarder, checkpoints) come from memory, not read(2). */
	    spool_exec(s, "PRAGMA cache_size=-16384", err, errlen) == -1 ||
	    spool_exec(s, "PRAGMA mmap_size=268435456", err, errlen) == -1 ||
	    spool_exec(s, "PRAGMA secure_delete=OFF", err, errlen) == -1)
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
	if (spool_exec(s,
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
			       -1, SQLITE_PREPARE_PERSISTENT, &s->sum, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "audit spool %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	sqlite3_bind_int64(s->sum, 1, INT64_MAX);
	if (sqlite3_step(s->sum) != SQLITE_ROW) {
		snprintf(err, errlen, "audit spool %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	s->rows = sqlite3_column_int64(s->sum, 0);
	s->bytes = sqlite3_column_int64(s->sum, 1);
	sqlite3_reset(s->sum);
	if (asprintf(&s->wal_path, "%s-wal", path) == -1) {
		s->wal_path = NULL;
		snprintf(err, errlen, "audit spool %s: out of memory", path);
		goto fail;
	}
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
		if (cb(&row, arg) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("cannot read audit spool %s: %s", s->path, sqlite3_errmsg(s->db));
		n = -1;
	}
	sqlite3_reset(s->sel);
	return n;
}

int
spool_ack(struct spool *s, long long upto_id)
{
	long long rows, bytes;
	int rc;

	sqlite3_bind_int64(s->sum, 1, upto_id);
	rc = sqlite3_step(s->sum);
	rows = rc == SQLITE_ROW ? sqlite3_column_int64(s->sum, 0) : 0;
	bytes = rc == SQLITE_ROW ? sqlite3_column_int64(s->sum, 1) : 0;
	sqlite3_reset(s->sum);
	if (rc != SQLITE_ROW)
		goto fail;
	sqlite3_bind_int64(s->del, 1, upto_id);
	rc = sqlite3_step(s->del);
	sqlite3_reset(s->del);
	if (rc != SQLITE_DONE)
		goto fail;
	s->rows -= rows;
	s->bytes -= bytes;
	if (s->rows < 0 || s->bytes < 0)
		s->rows = s->bytes = 0;
	return 0;
fail:
	log_warnx("cannot delete delivered events from audit spool %s: %s", s->path,
		  sqlite3_errmsg(s->db));
	return -1;
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
spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->wal_fd != -1)
		close(s->wal_fd);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->sel);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->sum);
	if (s->db != NULL)
		sqlite3_close(s->db);
	free(s->wal_path);
	free(s);
}
