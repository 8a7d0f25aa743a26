/*
 * The sqlite spool (order, once, cap, persistence, damaged rows) and the HTTP forwarder over
 * a fake transport: the test plays the SIEM, answering each request when it chooses, so
 * outages, 413s and restarts are exact. Every event must arrive once and in order.
 */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "audit/ocsf.h"
#include "audit/spool.h"
#include "broker/broker-http.h"

struct fixture {
	char dir[PATH_MAX];
	char spool[PATH_MAX + 32];
	char token[PATH_MAX + 32];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	FILE *fp;

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/torture_spool.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->spool, sizeof(f->spool), "%s/spool.db", f->dir);
	snprintf(f->token, sizeof(f->token), "%s/token", f->dir);
	if ((fp = fopen(f->token, "w")) == NULL)
		return -1;
	fputs("  hec-token-1234  \n", fp);
	fclose(fp);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---- spool ------------------------------------------------------------------------- */

struct collect {
	long long ids[1000];
	char bodies[1000][64];
	size_t n;
	size_t damaged;
};

static int
collect_cb(const struct spool_row *row, void *arg)
{
	struct collect *c = arg;

	if (row->damaged)
		c->damaged++;
	c->ids[c->n] = row->id;
	snprintf(c->bodies[c->n], sizeof(c->bodies[0]), "%.*s", (int)row->len, row->event);
	c->n++;
	return 0;
}

static void
torture_spool_order_once(void **state)
{
	struct fixture *f = *state;
	char err[256], ev[64];
	struct collect c;
	struct spool *s;
	int i;

	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	for (i = 0; i < 100; i++) {
		snprintf(ev, sizeof(ev), "{\"n\":%d}", i);
		assert_int_equal(spool_append(s, "uid", 1000 + i, ev, strlen(ev)), 0);
	}
	assert_int_equal(spool_rows(s), 100);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 30, 1 << 20, collect_cb, &c), 30);
	for (i = 0; i < 30; i++) {
		snprintf(ev, sizeof(ev), "{\"n\":%d}", i);
		assert_string_equal(c.bodies[i], ev);
		if (i > 0)
			assert_true(c.ids[i] > c.ids[i - 1]);
	}
	/* Byte budget: the first row always, then only what fits. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 100, 20, collect_cb, &c), 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 100, 1, collect_cb, &c), 1);
	/* Acked rows never come back, also after a restart. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 30, 1 << 20, collect_cb, &c), 30);
	assert_int_equal(spool_ack(s, c.ids[29]), 0);
	assert_int_equal(spool_rows(s), 70);
	assert_int_equal(spool_sync(s), 0);
	spool_close(s);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(spool_rows(s), 70);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 1000, 1 << 20, collect_cb, &c), 70);
	assert_string_equal(c.bodies[0], "{\"n\":30}");
	assert_string_equal(c.bodies[69], "{\"n\":99}");
	/* While rows remain, new ids are above every acked one, even if the newest rows were
	 * acked; once the spool is empty ids may start again (spool.h: cursor back to 0). */
	assert_int_equal(spool_ack(s, c.ids[68]), 0);
	assert_int_equal(spool_rows(s), 1);
	assert_int_equal(spool_append(s, NULL, 1, "{}", 2), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 2);
	assert_true(c.ids[1] > c.ids[0]);
	assert_int_equal(spool_ack(s, c.ids[1]), 0);
	assert_int_equal(spool_rows(s), 0);
	assert_int_equal(spool_bytes(s), 0);
	assert_int_equal(spool_append(s, NULL, 1, "{}", 2), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 1);
	spool_close(s);
}

static void
torture_spool_cap(void **state)
{
	struct fixture *f = *state;
	char err[256], ev[1024];
	struct collect c;
	struct spool *s;
	int i, ok = 0;

	memset(ev, 'x', sizeof(ev));
	ev[0] = '{';
	ev[sizeof(ev) - 1] = '}';
	s = spool_open(f->spool, 10 * 1024, err, sizeof(err));
	assert_non_null(s);
	for (i = 0; i < 20; i++) {
		int rc = spool_append(s, NULL, 1, ev, sizeof(ev));

		if (rc == 0)
			ok++;
		else
			assert_int_equal(rc, SPOOL_FULL);
	}
	assert_int_equal(ok, 10);
	assert_true(spool_bytes(s) <= 10 * 1024);
	/* Draining makes room again. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 3, 1 << 20, collect_cb, &c), 3);
	assert_int_equal(spool_ack(s, c.ids[2]), 0);
	assert_int_equal(spool_append(s, NULL, 1, ev, sizeof(ev)), 0);
	assert_int_equal(spool_append(s, NULL, 1, ev, sizeof(ev)), 0);
	assert_int_equal(spool_append(s, NULL, 1, ev, sizeof(ev)), 0);
	assert_int_equal(spool_append(s, NULL, 1, ev, sizeof(ev)), SPOOL_FULL);
	spool_close(s);
	/* The cap holds across restarts (the bytes are counted at open). */
	s = spool_open(f->spool, 10 * 1024, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(spool_append(s, NULL, 1, ev, sizeof(ev)), SPOOL_FULL);
	spool_close(s);
}

/* A spool holding rows "a", "b", … (n of them, event {"a":1} and so on), its database then
 * changed behind its back by sql, opened again. */
static struct spool *
spool_with_sql(struct fixture *f, int n, const char *sql)
{
	char err[256], uid[2] = "a", ev[32];
	struct spool *s;
	sqlite3 *db;

	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < n; i++, uid[0]++) {
		int len = snprintf(ev, sizeof(ev), "{\"%s\":%d}", uid, i + 1);

		assert_int_equal(spool_append(s, uid, i + 1, ev, (size_t)len), 0);
	}
	spool_close(s);
	assert_int_equal(sqlite3_open(f->spool, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	return s;
}

static void
torture_spool_damaged_rows(void **state)
{
	struct fixture *f = *state;
	struct collect c;
	struct spool *s;

	s = spool_with_sql(f, 3, "UPDATE spool SET event = 'garbage\n' WHERE uid = 'b'");
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 3);
	assert_int_equal(c.damaged, 1);
	spool_close(s);

	assert_int_equal(spool_row_check("uid", "{}", 2), 0);
	assert_int_equal(spool_row_check(NULL, "{\"a\":1}", 7), 0);
	assert_int_equal(spool_row_check("u id", "{}", 2), -1);
	assert_int_equal(spool_row_check("uid", "[]", 2), -1);
	assert_int_equal(spool_row_check("uid", "{\n}", 3), -1);
	assert_int_equal(spool_row_check("uid", "{\0}", 3), -1);
	assert_int_equal(spool_row_check("uid", "{", 1), -1);
	assert_int_equal(spool_row_check("uid", NULL, 0), -1);
}

/* Appends between spool_begin() and spool_commit() are one transaction: another connection
 * sees none of them before the commit and all after; a commit that fails rolls them back
 * and the counts follow; spool_close() commits an open transaction; a process killed with
 * one open loses exactly its rows. */
static void
torture_spool_txn(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct collect c;
	struct spool *s;
	sqlite3 *db;
	int status;
	pid_t pid;

	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_false(spool_in_txn(s));
	assert_int_equal(spool_commit(s), 0); /* none open: nothing to do */
	assert_int_equal(spool_begin(s), 0);
	assert_int_equal(spool_begin(s), 0); /* already open */
	assert_true(spool_in_txn(s));
	assert_int_equal(spool_append(s, "a", 1, "{\"a\":1}", 7), 0);
	assert_int_equal(spool_last_id(s), 1);
	assert_int_equal(spool_append(s, "b", 2, "{\"b\":2}", 7), 0);
	assert_int_equal(spool_last_id(s), 2);
	assert_int_equal(spool_rows(s), 2);
	assert_int_equal(sqlite3_open(f->spool, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA busy_timeout=2000", NULL, NULL, NULL), SQLITE_OK);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 2); /* its own: seen */
	{
		sqlite3_stmt *st;

		assert_int_equal(
			sqlite3_prepare_v2(db, "SELECT count(*) FROM spool", -1, &st, NULL),
			SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 0); /* others: not yet */
		sqlite3_reset(st);
		assert_int_equal(spool_commit(s), 0);
		assert_false(spool_in_txn(s));
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 2);
		sqlite3_finalize(st);
	}

	/* an ack in a transaction counts like one outside */
	assert_int_equal(spool_begin(s), 0);
	assert_int_equal(spool_append(s, "c", 3, "{\"c\":3}", 7), 0);
	assert_int_equal(spool_rows(s), 3);
	assert_int_equal(spool_ack(s, 1), 0);
	assert_int_equal(spool_rows(s), 2);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(spool_rows(s), 2);

	/* close with a transaction open commits it */
	assert_int_equal(spool_begin(s), 0);
	assert_int_equal(spool_append(s, "d", 4, "{\"d\":4}", 7), 0);
	spool_close(s);
	sqlite3_close(db);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(spool_rows(s), 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 3);
	assert_string_equal(c.bodies[0], "{\"b\":2}");
	assert_string_equal(c.bodies[2], "{\"d\":4}");
	spool_close(s);

	/* killed with a transaction open: its rows are gone, the committed ones stay */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if ((s = spool_open(f->spool, 0, err, sizeof(err))) == NULL ||
		    spool_begin(s) != 0 || spool_append(s, "e", 5, "{\"e\":5}", 7) != 0)
			_exit(2);
		raise(SIGKILL);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(spool_rows(s), 3);
	spool_close(s);
}

/* A transaction that cannot commit: its appends and acks are undone and the counts read
 * again, and the spool goes on. (Made by a trigger that rolls the transaction back when a
 * marked row is appended: that append fails, and the commit finds nothing to commit.) */
static void
torture_spool_txn_rollback(void **state)
{
	struct fixture *f = *state;
	struct spool *s;

	s = spool_with_sql(f, 2,
			   "CREATE TRIGGER bad BEFORE INSERT ON spool WHEN NEW.uid = 'bad' "
			   "BEGIN SELECT RAISE(ROLLBACK, 'refused'); END;");
	assert_int_equal(spool_rows(s), 2);
	assert_int_equal(spool_begin(s), 0);
	assert_int_equal(spool_ack(s, 1), 0);
	assert_int_equal(spool_append(s, "c", 3, "{\"c\":3}", 7), 0);
	assert_int_equal(spool_rows(s), 2);
	assert_int_equal(spool_append(s, "bad", 4, "{\"x\":4}", 7), -1);
	assert_int_equal(spool_commit(s), -1);
	assert_false(spool_in_txn(s));
	assert_int_equal(spool_rows(s), 2); /* the ack and both appends undone */
	assert_int_equal(spool_bytes(s), 14);
	/* and the spool goes on working */
	assert_int_equal(spool_append(s, "d", 5, "{\"d\":5}", 7), 0);
	assert_int_equal(spool_rows(s), 3);
	spool_close(s);
}

/* A newer schema version is refused rather than misread. */
static void
torture_spool_version(void **state)
{
	struct fixture *f = *state;
	char err[512];
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->spool, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(spool_open(f->spool, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "newer version"));
}

/* An ack of exactly the rows the last peek returned takes its counts from the peek; any other
 * ack counts in the database: both must leave rows and bytes right. */
static void
torture_spool_ack_counts(void **state)
{
	struct fixture *f = *state;
	char err[256], ev[64];
	long long want_bytes = 0, lens[10];
	static struct collect c, all;
	struct spool *s;
	int i;

	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	for (i = 0; i < 10; i++) {
		snprintf(ev, sizeof(ev), "{\"n\":%d,\"pad\":\"%.*s\"}", i, i * 3,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		lens[i] = (long long)strlen(ev);
		assert_int_equal(spool_append(s, "uid", i, ev, strlen(ev)), 0);
	}
	/* Peek 4, ack the last of them: the peek's counts. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 4, 1 << 20, collect_cb, &c), 4);
	assert_int_equal(spool_ack(s, c.ids[3]), 0);
	for (i = 4; i < 10; i++)
		want_bytes += lens[i];
	assert_int_equal(spool_rows(s), 6);
	assert_int_equal(spool_bytes(s), want_bytes);
	/* Peek from past two unacked rows, ack that peek's end: four rows go, and the counts
	 * must include the two the peek did not return. */
	memset(&all, 0, sizeof(all));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &all), 6);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, all.ids[1], 2, 1 << 20, collect_cb, &c), 2);
	assert_int_equal(c.ids[0], all.ids[2]);
	assert_int_equal(spool_ack(s, c.ids[1]), 0);
	assert_int_equal(spool_rows(s), 2);
	assert_int_equal(spool_bytes(s), lens[8] + lens[9]);
	/* An ack that is not the peek's end (here: one id less) counts in the database. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_peek(s, 0, 10, 1 << 20, collect_cb, &c), 2);
	assert_int_equal(spool_ack(s, c.ids[0]), 0);
	assert_int_equal(spool_rows(s), 1);
	assert_int_equal(spool_bytes(s), lens[9]);
	spool_close(s);
	/* The counts survive a reopen (they are recomputed from the database). */
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(spool_rows(s), 1);
	assert_int_equal(spool_bytes(s), lens[9]);
	spool_close(s);
}

/* One spool per file: a second open fails in plain words while the first holds it. */
static void
torture_spool_exclusive(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct spool *s, *s2;
	struct stat sb;

	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	assert_null(spool_open(f->spool, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(spool_append(s, "a", 1, "{\"a\":1}", 7), 0);
	spool_close(s);
	s2 = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s2);
	assert_int_equal(spool_rows(s2), 1);
	spool_close(s2);
	/* Events name people: the file is the owner's only. */
	assert_int_equal(stat(f->spool, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Checks the spool holds n rows, ids increasing, events "{"n":first..}" in order. */
static void
check_rows(struct spool *s, long long n)
{
	static struct collect c;
	long long after = 0, seen = 0;
	int got, i;

	for (;;) {
		memset(&c, 0, sizeof(c));
		got = spool_peek(s, after, 1000, 64 << 20, collect_cb, &c);
		assert_true(got >= 0);
		if (got == 0)
			break;
		for (i = 0; i < got; i++) {
			char want[64];

			assert_true(c.ids[i] > after);
			after = c.ids[i];
			snprintf(want, sizeof(want), "{\"n\":%lld,", seen);
			if (strncmp(c.bodies[i], want, strlen(want)) != 0)
				fail_msg("row %lld is %s, want %s...", seen, c.bodies[i], want);
			seen++;
		}
	}
	assert_int_equal(seen, n);
}

static void
append_padded(struct spool *s, long long n, size_t len)
{
	char ev[4096];
	int k;

	assert_true(len < sizeof(ev) && len > 40);
	k = snprintf(ev, sizeof(ev), "{\"n\":%lld,\"pad\":\"", n);
	memset(ev + k, 'p', len - (size_t)k - 2);
	memcpy(ev + len - 2, "\"}", 2);
	assert_int_equal(spool_append(s, "uid-1", n, ev, len), 0);
}

/*
 * Checkpoints run on the spool's thread, never in the appending one: with the thread held
 * the database file does not change however long the WAL grows (sqlite's auto-checkpoint, on
 * the appending connection, would copy it every 1000 pages); released, the thread copies
 * the WAL into the database by itself.
 */
static void
torture_spool_checkpoint_thread(void **state)
{
	struct fixture *f = *state;
	struct spool_stats st;
	char err[256], wal[PATH_MAX + 64];
	struct spool *s;
	off_t db0;
	long long i;
	int waited;

	snprintf(wal, sizeof(wal), "%s-wal", f->spool);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	spool_checkpoint_hold(s, true);
	spool_stats(s, &st);
	assert_true(st.checkpoint_thread);
	db0 = file_size(f->spool);
	for (i = 0; i < 3000; i++)
		append_padded(s, i, 800);
	assert_int_equal(file_size(f->spool), db0);
	assert_true(file_size(wal) > 3000 * 800);
	spool_stats(s, &st);
	assert_int_equal(st.checkpoints, 0);

	spool_checkpoint_hold(s, false);
	for (waited = 0; waited < 20000; waited += 10) {
		spool_stats(s, &st);
		if (st.checkpoints > 0 && file_size(f->spool) > 3000 * 800)
			break;
		usleep(10000);
	}
	assert_true(st.checkpoints > 0);
	assert_true(file_size(f->spool) > 3000 * 800);
	check_rows(s, 3000);
	spool_close(s);
	/* And what was copied reads back after a restart. */
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	check_rows(s, 3000);
	spool_close(s);
}

/*
 * PASSIVE checkpoints never catch up with a writer that keeps appending, and only a WAL
 * copied in full starts over: past a limit the thread runs a RESTART, appends wait for it,
 * and the WAL file shrinks back; nothing is lost or reordered on the way.
 */
static void
torture_spool_checkpoint_restart(void **state)
{
	struct fixture *f = *state;
	struct spool_stats st;
	char err[256], wal[PATH_MAX + 64];
	struct spool *s;
	off_t peak;
	long long n = 0;

	snprintf(wal, sizeof(wal), "%s-wal", f->spool);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	/* A long WAL: 3000-byte rows take a page each (two or three frames an append). */
	spool_checkpoint_hold(s, true);
	for (; n < 9000; n++)
		append_padded(s, n, 3000);
	peak = file_size(wal);
	assert_true(peak > 9000 * 3000);
	spool_checkpoint_hold(s, false);
	/* Keep appending, as a burst would, until the thread has restarted the WAL. */
	while (n < 400000) {
		append_padded(s, n, 100);
		if (++n % 100 == 0) {
			spool_stats(s, &st);
			if (st.restarts > 0)
				break;
		}
	}
	spool_stats(s, &st);
	assert_true(st.restarts > 0);
	/* The first commit after the restart trims the file. */
	append_padded(s, n++, 100);
	assert_true(file_size(wal) < peak);
	assert_int_equal(spool_rows(s), n);
	check_rows(s, n);
	spool_close(s);
}

/* "Durable once spool_append() returned": a process killed with SIGKILL right after loses
 * none of the rows it was told were written. */
static void
torture_spool_sigkill(void **state)
{
	struct fixture *f = *state;
	char err[256], c;
	struct spool *s;
	int fds[2], status;
	long long acked = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		long long i;

		close(fds[0]);
		if ((s = spool_open(f->spool, 0, err, sizeof(err))) == NULL)
			_exit(2);
		for (i = 0; i < 1000000; i++) {
			append_padded(s, i, 500);
			if (write(fds[1], "x", 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(fds[1]);
	while (acked < 2000 && read(fds[0], &c, 1) == 1)
		acked++;
	kill(pid, SIGKILL);
	/* Count what was reported before the kill landed. */
	while (read(fds[0], &c, 1) == 1)
		acked++;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(acked >= 2000);
	s = spool_open(f->spool, 0, err, sizeof(err));
	assert_non_null(s);
	/* At most the one row committed but not yet reported comes in addition. */
	assert_true(spool_rows(s) == acked || spool_rows(s) == acked + 1);
	check_rows(s, spool_rows(s));
	spool_close(s);
}

/* ---- the forwarder, against a SIEM played by the test ------------------------------ */

#define FAKE_MAX_REQ 256

struct fake_siem {
	/* the request waiting for an answer */
	bool pending;
	void (*cb)(const struct http_result *, void *);
	void *arg;
	char *body;
	size_t len;
	char auth[256];
	char ctype[64];
	int requests;
	int cancelled;
	/* what arrived (accepted batches), as metadata.uid strings in order */
	char **uids;
	size_t nuids;
	int last_batch_events;
};

static struct fake_siem siem;

static struct http_req *
fake_post(struct http_client *c, const char *url, const char *ctype, const char *body, size_t len,
	  const char *const *headers, long timeout_ms,
	  void (*cb)(const struct http_result *, void *), void *arg)
{
	assert_false(siem.pending); /* one request in flight at a time: the order guarantee */
	assert_string_equal(url, "http://127.0.0.1:9/collect");
	assert_true(timeout_ms > 0);
	siem.pending = true;
	siem.cb = cb;
	siem.arg = arg;
	siem.body = malloc(len + 1);
	assert_non_null(siem.body);
	memcpy(siem.body, body, len);
	siem.body[len] = '\0';
	siem.len = len;
	siem.auth[0] = '\0';
	if (headers != NULL && headers[0] != NULL)
		snprintf(siem.auth, sizeof(siem.auth), "%s", headers[0]);
	snprintf(siem.ctype, sizeof(siem.ctype), "%s", ctype);
	siem.requests++;
	return (struct http_req *)&siem;
}

static void
fake_cancel(struct http_req *r)
{
	assert_ptr_equal(r, &siem);
	siem.pending = false;
	siem.cancelled++;
	free(siem.body);
	siem.body = NULL;
}

/* The events of the pending body (JSON array or HEC stream), as uids. */
static size_t
body_uids(char ***out)
{
	json_t *arr, *ev;
	json_error_t jerr;
	size_t n = 0, i, off = 0;
	char **v = NULL;

	if (siem.body[0] == '[') {
		arr = json_loads(siem.body, 0, &jerr);
		assert_non_null(arr);
		v = calloc(json_array_size(arr) + 1, sizeof(*v));
		json_array_foreach(arr, i, ev) {
			v[n++] = strdup(json_string_value(
				json_object_get(json_object_get(ev, "metadata"), "uid")));
		}
		json_decref(arr);
	} else {
		/* HEC: {"time":..,"event":{...}} objects, one per line. */
		v = calloc(siem.len + 1, sizeof(*v));
		while (off < siem.len) {
			json_t *o = json_loadb(siem.body + off, siem.len - off,
					       JSON_DISABLE_EOF_CHECK, &jerr);

			assert_non_null(o);
			assert_true(json_is_number(json_object_get(o, "time")));
			ev = json_object_get(o, "event");
			assert_non_null(ev);
			v[n++] = strdup(json_string_value(
				json_object_get(json_object_get(ev, "metadata"), "uid")));
			json_decref(o);
			off += (size_t)jerr.position;
			assert_int_equal(siem.body[off], '\n');
			off++;
		}
	}
	*out = v;
	return n;
}

/* Answers the pending request. status 0: no HTTP answer (connection refused). */
static void
fake_answer(long status)
{
	struct http_result res = { 0 };
	char **v;
	size_t n, i;

	assert_true(siem.pending);
	n = body_uids(&v);
	siem.last_batch_events = (int)n;
	if (status >= 200 && status < 300) {
		siem.uids = realloc(siem.uids, (siem.nuids + n) * sizeof(*siem.uids));
		for (i = 0; i < n; i++)
			siem.uids[siem.nuids++] = v[i];
	} else {
		for (i = 0; i < n; i++)
			free(v[i]);
	}
	free(v);
	if (status == 0) {
		res.ok = 0;
		res.error = "connection refused";
	} else {
		res.ok = 1;
		res.status = status;
		res.body = "";
	}
	siem.pending = false;
	free(siem.body);
	siem.body = NULL;
	siem.cb(&res, siem.arg);
}

static void
fake_reset(void)
{
	size_t i;

	for (i = 0; i < siem.nuids; i++)
		free(siem.uids[i]);
	free(siem.uids);
	free(siem.body);
	memset(&siem, 0, sizeof(siem));
}

/* Runs the loop until a request is pending or ms pass. */
static bool
wait_request(struct event_base *base, int ms)
{
	int waited = 0;

	while (!siem.pending && waited < ms) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (siem.pending)
			break;
		usleep(5000);
		waited += 5;
	}
	return siem.pending;
}

static struct audit *
open_http(struct fixture *f, struct event_base *base, const char *opts,
	  enum audit_failure_mode mode)
{
	struct audit_env env = { .base = base,
				 .http = (struct http_client *)&siem,
				 .http_post = fake_post,
				 .http_cancel = fake_cancel,
				 .app_name = "torture" };
	struct audit_sink_cfg cfg;
	char spec[2 * PATH_MAX + 256], err[512];
	struct audit *a;

	snprintf(spec, sizeof(spec), "http http://127.0.0.1:9/collect spool=%s retry-max=1s %s",
		 f->spool, opts);
	if (audit_sink_parse(spec, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", spec, err);
	a = audit_open_sinks(&env, &cfg, 1, mode, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	return a;
}

/* Emits n events; their uids are appended to sent. */
static void
emit_n(struct audit *a, int n, char **sent, size_t *nsent)
{
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	int i;

	for (i = 0; i < n; i++) {
		json_t *ev = ocsf_auth_logon(&s, true, NULL, ocsf_now_ms());

		sent[(*nsent)++] = strdup(
			json_string_value(json_object_get(json_object_get(ev, "metadata"), "uid")));
		assert_int_equal(audit_emit(a, ev), 0);
	}
}

static void
check_delivered(char **sent, size_t nsent)
{
	size_t i;

	assert_int_equal(siem.nuids, nsent);
	for (i = 0; i < nsent; i++)
		if (strcmp(siem.uids[i], sent[i]) != 0)
			fail_msg("event %zu arrived out of order or twice", i);
}

static void
free_sent(char **sent, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(sent[i]);
}

/* SIEM down (refused, 503, 500) then up: every event once, in order; retries resend. */
static void
torture_forward_outage(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	static char *sent[5000];
	size_t nsent = 0;
	struct audit *a;
	int answered = 0;

	fake_reset();
	a = open_http(f, base, "batch=100", AUDIT_FAILURE_CLOSED);
	emit_n(a, 250, sent, &nsent);
	assert_int_equal(audit_backlog(a), 250);
	assert_true(audit_healthy(a)); /* spooled = durable, whatever the SIEM does */

	assert_true(wait_request(base, 1000));
	assert_int_equal(siem.last_batch_events, 0);
	fake_answer(0);
	assert_int_equal(siem.last_batch_events, 100);
	assert_true(wait_request(base, 2000)); /* after a backoff */
	fake_answer(503);
	emit_n(a, 50, sent, &nsent); /* more events during the outage */
	assert_true(wait_request(base, 2000));
	fake_answer(500);
	assert_true(audit_healthy(a));
	assert_false(audit_refuses_logins(a));
	/* Up: drains in order. */
	while (wait_request(base, 3000)) {
		fake_answer(200);
		answered++;
	}
	assert_int_equal(answered, 3);
	check_delivered(sent, nsent);
	assert_int_equal(audit_backlog(a), 0);
	assert_int_equal(audit_lost(a), 0);
	audit_close(a);
	event_base_free(base);
	free_sent(sent, nsent);
	fake_reset();
}

/* Splunk HEC: {"time","event"} objects, Authorization: Splunk TOKEN from the file. */
static void
torture_forward_hec(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	static char *sent[100];
	char opts[PATH_MAX + 64];
	size_t nsent = 0;
	struct audit *a;

	fake_reset();
	snprintf(opts, sizeof(opts), "format=hec token-file=%s", f->token);
	a = open_http(f, base, opts, AUDIT_FAILURE_OPEN);
	emit_n(a, 20, sent, &nsent);
	assert_true(wait_request(base, 1000));
	assert_string_equal(siem.auth, "Authorization: Splunk hec-token-1234");
	assert_string_equal(siem.ctype, "application/json");
	fake_answer(200);
	check_delivered(sent, nsent);
	audit_close(a);
	event_base_free(base);
	free_sent(sent, nsent);
	fake_reset();
}

/* 413: the batch is halved, nothing dropped, then it grows back. */
static void
torture_forward_413(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	static char *sent[1000];
	size_t nsent = 0;
	struct audit *a;

	fake_reset();
	a = open_http(f, base, "batch=64", AUDIT_FAILURE_OPEN);
	emit_n(a, 200, sent, &nsent);
	assert_true(wait_request(base, 1000));
	fake_answer(413);
	assert_int_equal(siem.last_batch_events, 64);
	assert_true(wait_request(base, 2000));
	fake_answer(413);
	assert_true(wait_request(base, 2000));
	fake_answer(200);
	assert_int_equal(siem.last_batch_events, 16);
	while (wait_request(base, 500))
		fake_answer(200);
	check_delivered(sent, nsent);
	audit_close(a);
	event_base_free(base);
	free_sent(sent, nsent);
	fake_reset();
}

/* The spool is full while the SIEM is away: refused events make the pipeline unhealthy
 * (closed mode refuses logins); draining makes room and health returns. */
static void
torture_forward_spool_full(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	static char *sent[1000];
	size_t nsent = 0;
	struct audit *a;
	int i, refused = 0;

	fake_reset();
	a = open_http(f, base, "spool-max=64K batch=1000", AUDIT_FAILURE_CLOSED);
	for (i = 0; i < 1000; i++) {
		json_t *ev = ocsf_auth_logon(&s, true, NULL, ocsf_now_ms());
		char *uid = strdup(
			json_string_value(json_object_get(json_object_get(ev, "metadata"), "uid")));

		if (audit_emit(a, ev) == 0) {
			sent[nsent++] = uid;
		} else {
			free(uid);
			refused++;
		}
	}
	assert_true(refused > 0);
	assert_true(nsent > 50);
	assert_false(audit_healthy(a));
	assert_true(audit_refuses_logins(a));
	assert_int_equal(audit_lost(a), (unsigned long long)refused);
	assert_true(wait_request(base, 1000));
	fake_answer(200);
	assert_true(audit_healthy(a));
	assert_false(audit_refuses_logins(a));
	check_delivered(sent, nsent);
	audit_close(a);
	event_base_free(base);
	free_sent(sent, nsent);
	fake_reset();
}

/* Closing with events unsent (and one request in flight): the next start sends them first,
 * the batch in flight included, in order. */
static void
torture_forward_restart(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	static char *sent[100];
	size_t nsent = 0;
	struct audit *a;

	fake_reset();
	a = open_http(f, base, "batch=10", AUDIT_FAILURE_OPEN);
	emit_n(a, 25, sent, &nsent);
	assert_true(wait_request(base, 1000));
	fake_answer(200); /* 10 delivered */
	assert_true(wait_request(base, 1000));
	audit_close(a); /* 10 in flight: cancelled, stay spooled */
	assert_int_equal(siem.cancelled, 1);
	assert_false(siem.pending);

	a = open_http(f, base, "batch=10", AUDIT_FAILURE_OPEN);
	assert_int_equal(audit_backlog(a), 15);
	emit_n(a, 5, sent, &nsent);
	while (wait_request(base, 500))
		fake_answer(200);
	check_delivered(sent, nsent);
	audit_close(a);
	event_base_free(base);
	free_sent(sent, nsent);
	fake_reset();
}

static void
torture_forward_errors(void **state)
{
	struct fixture *f = *state;
	struct audit_env env = { 0 };
	struct audit_sink_cfg cfg;
	char spec[3 * PATH_MAX], err[512];

	/* No event loop or no HTTP client: refused at open, in plain words. */
	snprintf(spec, sizeof(spec), "http https://siem.example/ spool=%s", f->spool);
	assert_int_equal(audit_sink_parse(spec, &cfg, err, sizeof(err)), 0);
	assert_null(audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, sizeof(err)));
	assert_non_null(strstr(err, "needs the event loop"));
	/* Token file missing. */
	snprintf(spec, sizeof(spec),
		 "http https://siem.example/ format=hec token-file=%s/nope "
		 "spool=%s",
		 f->dir, f->spool);
	assert_int_equal(audit_sink_parse(spec, &cfg, err, sizeof(err)), 0);
	env.base = event_base_new();
	env.http = (struct http_client *)&siem;
	env.http_post = fake_post;
	env.http_cancel = fake_cancel;
	assert_null(audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read the SIEM token file"));
	/* Spool in a directory that does not exist. */
	snprintf(spec, sizeof(spec), "http https://siem.example/ spool=%s/no/such.db", f->dir);
	assert_int_equal(audit_sink_parse(spec, &cfg, err, sizeof(err)), 0);
	assert_null(audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open audit spool"));
	event_base_free(env.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_spool_order_once, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_damaged_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_version, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_txn_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_ack_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_checkpoint_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_checkpoint_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_spool_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_hec, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_413, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_spool_full, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_forward_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
