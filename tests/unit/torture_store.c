/* Session store on a real sqlite file. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker/broker-store.h"

#define NOW 1700000000
#define HOUR 3600

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 32];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char err[512];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/torture_store.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/sessions.db", f->dir);
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX + 64];

	store_close(f->st);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A session as broker-auth would build it; strings are borrowed, never freed here. */
static struct store_session
mk(const char *sub, const char *key_fp, int64_t created)
{
	struct store_session s = {
		.iss = (char *)"https://idp.example.com",
		.sub = (char *)sub,
		.sid = (char *)"idp-sid-1",
		.username = (char *)"alice",
		.groups = (char *)"[\"saw-users\",\"dev\"]",
		.key_fp = (char *)key_fp,
		.created = created,
		.expires = created + 8 * HOUR,
		.idle_deadline = created + HOUR,
	};

	return s;
}

static void
torture_create_find(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;
	size_t i;

	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(strlen(s.id), STORE_ID_LEN);
	for (i = 0; i < STORE_ID_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", s.id[i]));
	assert_int_equal(s.state, STORE_LIVE);

	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 10, &out), 0);
	assert_string_equal(out.id, s.id);
	assert_string_equal(out.iss, "https://idp.example.com");
	assert_string_equal(out.sub, "sub-a");
	assert_string_equal(out.sid, "idp-sid-1");
	assert_string_equal(out.username, "alice");
	assert_string_equal(out.groups, "[\"saw-users\",\"dev\"]");
	assert_string_equal(out.key_fp, "SHA256:aaaa");
	assert_int_equal(out.created, NOW);
	assert_int_equal(out.expires, NOW + 8 * HOUR);
	assert_int_equal(out.idle_deadline, NOW + HOUR);
	assert_int_equal(out.state, STORE_LIVE);
	assert_null(out.end_reason);
	store_session_clear(&out);

	assert_int_equal(store_session_find_by_key(f->st, "SHA256:other", NOW, &out), 1);

	/* Two sessions never share an id. */
	{
		struct store_session t = mk("sub-b", "SHA256:bbbb", NOW);

		assert_int_equal(store_session_create(f->st, &t), 0);
		assert_string_not_equal(t.id, s.id);
	}
}

static void
torture_null_sid(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;

	s.sid = NULL;
	s.groups = NULL;
	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_get(f->st, s.id, &out), 0);
	assert_null(out.sid);
	assert_string_equal(out.groups, "[]");
	store_session_clear(&out);
}

static void
torture_expiry(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;

	s.idle_deadline = NOW + 10 * HOUR; /* only the absolute deadline matters here */
	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 8 * HOUR - 1, &out),
			 0);
	store_session_clear(&out);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 8 * HOUR, &out), 1);

	s = mk("sub-b", "SHA256:bbbb", NOW); /* idle deadline at NOW + HOUR */
	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:bbbb", NOW + HOUR - 1, &out), 0);
	store_session_clear(&out);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:bbbb", NOW + HOUR, &out), 1);
}

static void
torture_touch(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;

	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_touch(f->st, s.id, NOW + 2 * HOUR), 0);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + HOUR + 1, &out), 0);
	assert_int_equal(out.idle_deadline, NOW + 2 * HOUR);
	store_session_clear(&out);
	/* A late, older touch does not pull the deadline back. */
	assert_int_equal(store_session_touch(f->st, s.id, NOW + HOUR), 0);
	assert_int_equal(store_session_get(f->st, s.id, &out), 0);
	assert_int_equal(out.idle_deadline, NOW + 2 * HOUR);
	store_session_clear(&out);
	/* Unknown session: nothing to touch. */
	assert_int_equal(store_session_touch(f->st, "00000000000000000000000000000000", NOW), 1);
}

static void
torture_end(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;

	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_end(f->st, s.id, STORE_REVOKED, "revoked by admin", NOW + 5),
			 0);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 6, &out), 1);
	assert_int_equal(store_session_end(f->st, s.id, STORE_EXPIRED, "expired", NOW + 7), 1);
	assert_int_equal(store_session_touch(f->st, s.id, NOW + 2 * HOUR), 1);

	/* The row stays, with the first reason. */
	assert_int_equal(store_session_get(f->st, s.id, &out), 0);
	assert_int_equal(out.state, STORE_REVOKED);
	assert_string_equal(out.end_reason, "revoked by admin");
	store_session_clear(&out);

	assert_int_equal(store_session_end(f->st, s.id, STORE_LIVE, "x", NOW), -1);
	assert_int_equal(store_session_get(f->st, "no-such-id", &out), 1);
}

static void
torture_replaced(void **state)
{
	struct fixture *f = *state;
	struct store_session a = mk("sub-a", "SHA256:aaaa", NOW);
	struct store_session b = mk("sub-a", "SHA256:aaaa", NOW + 60);
	struct store_session other = mk("sub-c", "SHA256:cccc", NOW);
	struct store_session out;

	assert_int_equal(store_session_create(f->st, &a), 0);
	assert_int_equal(store_session_create(f->st, &other), 0);
	assert_int_equal(store_session_create(f->st, &b), 0);

	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 61, &out), 0);
	assert_string_equal(out.id, b.id);
	store_session_clear(&out);

	assert_int_equal(store_session_get(f->st, a.id, &out), 0);
	assert_int_equal(out.state, STORE_REVOKED);
	assert_string_equal(out.end_reason, "replaced");
	store_session_clear(&out);

	/* Other keys are untouched. */
	assert_int_equal(store_session_get(f->st, other.id, &out), 0);
	assert_int_equal(out.state, STORE_LIVE);
	store_session_clear(&out);
}

struct expired {
	int n;
	char ids[4][STORE_ID_LEN + 1];
	char reasons[4][16];
};

static void
expire_cb(const struct store_session *s, void *arg)
{
	struct expired *e = arg;

	assert_true(e->n < 4);
	assert_int_equal(s->state, STORE_EXPIRED);
	assert_non_null(s->end_reason);
	assert_non_null(s->username);
	snprintf(e->ids[e->n], sizeof(e->ids[0]), "%s", s->id);
	snprintf(e->reasons[e->n], sizeof(e->reasons[0]), "%s", s->end_reason);
	e->n++;
}

static const char *
reason_of(const struct expired *e, const char *id)
{
	int i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->ids[i], id) == 0)
			return e->reasons[i];
	return NULL;
}

static void
torture_expire_due(void **state)
{
	struct fixture *f = *state;
	struct store_session abs = mk("sub-a", "SHA256:aaaa", NOW - 9 * HOUR);
	struct store_session idle = mk("sub-b", "SHA256:bbbb", NOW - 2 * HOUR);
	struct store_session live = mk("sub-c", "SHA256:cccc", NOW - 10);
	struct store_session revoked = mk("sub-d", "SHA256:dddd", NOW - 9 * HOUR);
	struct expired e = { 0 };
	struct store_session out;

	abs.idle_deadline = NOW + HOUR; /* only the absolute lifetime is over */
	assert_int_equal(store_session_create(f->st, &abs), 0);
	assert_int_equal(store_session_create(f->st, &idle), 0);
	assert_int_equal(store_session_create(f->st, &live), 0);
	assert_int_equal(store_session_create(f->st, &revoked), 0);
	assert_int_equal(store_session_end(f->st, revoked.id, STORE_REVOKED, "revoked", NOW - 1),
			 0);

	assert_int_equal(store_session_expire_due(f->st, NOW, expire_cb, &e), 0);
	assert_int_equal(e.n, 2);
	assert_string_equal(reason_of(&e, abs.id), "expired");
	assert_string_equal(reason_of(&e, idle.id), "idle");

	assert_int_equal(store_session_get(f->st, idle.id, &out), 0);
	assert_int_equal(out.state, STORE_EXPIRED);
	store_session_clear(&out);
	assert_int_equal(store_session_get(f->st, revoked.id, &out), 0);
	assert_int_equal(out.state, STORE_REVOKED);
	assert_string_equal(out.end_reason, "revoked");
	store_session_clear(&out);
	assert_int_equal(store_session_get(f->st, live.id, &out), 0);
	assert_int_equal(out.state, STORE_LIVE);
	store_session_clear(&out);

	/* Nothing is due twice; a NULL callback is allowed. */
	e.n = 0;
	assert_int_equal(store_session_expire_due(f->st, NOW, expire_cb, &e), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(store_session_expire_due(f->st, NOW + 8 * HOUR, NULL, NULL), 0);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:cccc", NOW, &out), 1);
}

static void
torture_persistence(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), ended = mk("sub-b", NULL, NOW);
	struct store_session out;
	char err[512];

	assert_int_equal(store_session_create(f->st, &s), 0);
	assert_int_equal(store_session_create(f->st, &ended), 0);
	assert_int_equal(store_session_end(f->st, ended.id, STORE_REVOKED, "logout", NOW + 1), 0);
	store_close(f->st);
	f->st = NULL;

	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	assert_int_equal(store_session_find_by_key(f->st, "SHA256:aaaa", NOW + 1, &out), 0);
	assert_string_equal(out.id, s.id);
	store_session_clear(&out);
	assert_int_equal(store_session_get(f->st, ended.id, &out), 0);
	assert_int_equal(out.state, STORE_REVOKED);
	assert_string_equal(out.end_reason, "logout");
	assert_null(out.key_fp);
	store_session_clear(&out);
}

static void
torture_file_mode(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW);
	char p[PATH_MAX + 64];
	struct stat sb;
	mode_t old = umask(0);

	/* Even with a permissive umask at open time. */
	store_close(f->st);
	f->st = NULL;
	unlink(f->path);
	assert_int_equal(store_open(f->path, &f->st, p, sizeof(p)), 0);
	umask(old);
	assert_int_equal(store_session_create(f->st, &s), 0);

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* An existing database that others can read is tightened on open. */
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(store_open(f->path, &f->st, p, sizeof(p)), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void
torture_open_errors(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 64], err[PATH_MAX + 256];
	struct store *st = (struct store *)&st;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/missing/sessions.db", f->dir);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), -1);
	assert_null(st);
	assert_non_null(strstr(err, path));

	/* Not a database. */
	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an sqlite database, not at all, definitely not\n", fp);
	fclose(fp);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "database"));
	unlink(path);
}

/* ---- workspaces ------------------------------------------------------------------------- */

static struct store_workspace
mkws(const char *name, const char *fp)
{
	struct store_workspace w = {
		.name = (char *)name,
		.owner_sub = (char *)"sub-alice",
		.pubkey = (char *)"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests ws",
		.key_fp = (char *)fp,
		.profile = (char *)"corporate",
		.created = NOW,
	};

	return w;
}

static void
torture_ws_add_get(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsaaaa"), out;

	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_get(f->st, "alice-ws", &out), 0);
	assert_string_equal(out.name, "alice-ws");
	assert_string_equal(out.owner_sub, "sub-alice");
	assert_string_equal(out.pubkey, w.pubkey);
	assert_string_equal(out.key_fp, "SHA256:wsaaaa");
	assert_string_equal(out.profile, "corporate");
	assert_int_equal(out.created, NOW);
	assert_int_equal(out.killed, 0);
	store_workspace_clear(&out);
	assert_null(out.name);

	assert_int_equal(store_workspace_find_by_key(f->st, "SHA256:wsaaaa", &out), 0);
	assert_string_equal(out.name, "alice-ws");
	store_workspace_clear(&out);

	assert_int_equal(store_workspace_get(f->st, "nope", &out), 1);
	assert_int_equal(store_workspace_find_by_key(f->st, "SHA256:nope", &out), 1);
	assert_int_equal(store_workspace_get(f->st, NULL, &out), 1);
	assert_int_equal(store_workspace_find_by_key(f->st, NULL, &out), 1);
}

static void
torture_ws_duplicates(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsaaaa");
	struct store_workspace same_name = mkws("alice-ws", "SHA256:wsbbbb");
	struct store_workspace same_key = mkws("bob-ws", "SHA256:wsaaaa");
	struct store_workspace bad_profile = mkws("carol-ws", "SHA256:wscccc"), out;

	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_add(f->st, &same_name), 1);
	assert_int_equal(store_workspace_add(f->st, &same_key), 1);
	/* the first registration is untouched */
	assert_int_equal(store_workspace_get(f->st, "alice-ws", &out), 0);
	assert_string_equal(out.key_fp, "SHA256:wsaaaa");
	store_workspace_clear(&out);
	assert_int_equal(store_workspace_get(f->st, "bob-ws", &out), 1);

	/* The schema refuses what the admin API should have refused already. */
	bad_profile.profile = (char *)"root";
	assert_int_equal(store_workspace_add(f->st, &bad_profile), -1);
	bad_profile.profile = NULL;
	assert_int_equal(store_workspace_add(f->st, &bad_profile), -1);
	/* and the statement is usable again afterwards */
	bad_profile.profile = (char *)"public";
	assert_int_equal(store_workspace_add(f->st, &bad_profile), 0);
}

struct ws_names {
	int n, stop_after;
	char names[8][32];
};

static int
ws_list_cb(const struct store_workspace *w, void *arg)
{
	struct ws_names *l = arg;

	assert_true(l->n < 8);
	assert_non_null(w->owner_sub);
	assert_non_null(w->key_fp);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", w->name);
	l->n++;
	return l->stop_after != 0 && l->n >= l->stop_after;
}

static void
torture_ws_list_remove(void **state)
{
	struct fixture *f = *state;
	struct store_workspace c = mkws("carol-ws", "SHA256:c"), a = mkws("alice-ws", "SHA256:a");
	struct store_workspace b = mkws("bob-ws", "SHA256:b"), out;
	struct ws_names l = { 0 };
	char err[512];

	assert_int_equal(store_workspace_list(f->st, ws_list_cb, &l), 0);
	assert_int_equal(l.n, 0);

	b.profile = (char *)"public";
	assert_int_equal(store_workspace_add(f->st, &c), 0);
	assert_int_equal(store_workspace_add(f->st, &a), 0);
	assert_int_equal(store_workspace_add(f->st, &b), 0);

	/* by name, whatever the order of registration */
	assert_int_equal(store_workspace_list(f->st, ws_list_cb, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.names[0], "alice-ws");
	assert_string_equal(l.names[1], "bob-ws");
	assert_string_equal(l.names[2], "carol-ws");

	/* a callback may stop the walk */
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(store_workspace_list(f->st, ws_list_cb, &l), 0);
	assert_int_equal(l.n, 2);

	assert_int_equal(store_workspace_remove(f->st, "bob-ws"), 0);
	assert_int_equal(store_workspace_remove(f->st, "bob-ws"), 1);
	assert_int_equal(store_workspace_remove(f->st, "nope"), 1);
	assert_int_equal(store_workspace_get(f->st, "bob-ws", &out), 1);
	assert_int_equal(store_workspace_find_by_key(f->st, "SHA256:b", &out), 1);
	/* its name and key are free again */
	assert_int_equal(store_workspace_add(f->st, &b), 0);
	assert_int_equal(store_workspace_remove(f->st, "bob-ws"), 0);

	/* The registry survives a restart. */
	store_close(f->st);
	f->st = NULL;
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_workspace_list(f->st, ws_list_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.names[0], "alice-ws");
	assert_string_equal(l.names[1], "carol-ws");
}

/* A database made by the first schema version (sessions only) is upgraded in place. */
static void
torture_ws_migration(void **state)
{
	struct fixture *f = *state;
	struct store_session s = mk("sub-a", "SHA256:aaaa", NOW), out;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsaaaa");
	char err[512];

	assert_int_equal(store_session_create(f->st, &s), 0);
	store_close(f->st);
	f->st = NULL;
	{
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		/* Back to version 1: undo migrations 2 and 3. */
		assert_int_equal(sqlite3_exec(db,
					      "DROP TABLE workspaces; DROP TABLE locks;"
					      " DROP TABLE jti; DROP INDEX sessions_live_user;"
					      " DROP INDEX sessions_live_email;"
					      " ALTER TABLE sessions DROP COLUMN email;"
					      " PRAGMA user_version = 1;",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
	}
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	assert_int_equal(store_session_get(f->st, s.id, &out), 0);
	store_session_clear(&out);
	assert_int_equal(store_workspace_add(f->st, &w), 0);
}

/* ---- revocation (issue #4) ---- */

static void
count_cb(const struct store_session *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
}

static void
torture_match(void **state)
{
	struct fixture *f = *state;
	struct store_session a = mk("sub-a", "SHA256:k1", NOW), b = mk("sub-a", "SHA256:k2", NOW),
			     c = mk("sub-c", "SHA256:k3", NOW);
	struct store_filter flt;
	int n = 0;

	a.email = (char *)"alice@example.test";
	c.sid = (char *)"other-sid";
	c.username = (char *)"carol";
	assert_int_equal(store_session_create(f->st, &a), 0);
	assert_int_equal(store_session_create(f->st, &b), 0);
	assert_int_equal(store_session_create(f->st, &c), 0);

	memset(&flt, 0, sizeof(flt));
	/* No filter, or only the issuer, would mean "everyone": refused. */
	assert_int_equal(store_session_match(f->st, &flt, NOW, count_cb, &n), -1);
	flt.iss = "https://idp.example.com";
	assert_int_equal(store_session_match(f->st, &flt, NOW, count_cb, &n), -1);
	flt.sub = "sub-a";
	assert_int_equal(store_session_match(f->st, &flt, NOW, count_cb, &n), 2);
	assert_int_equal(n, 2);
	memset(&flt, 0, sizeof(flt));
	flt.iss = "https://idp.example.com";
	flt.sid = "other-sid";
	n = 0;
	assert_int_equal(store_session_match(f->st, &flt, NOW, count_cb, &n), 1);
	memset(&flt, 0, sizeof(flt));
	flt.email = "alice@example.test";
	assert_int_equal(store_session_match(f->st, &flt, NOW, NULL, NULL), 1);
	memset(&flt, 0, sizeof(flt));
	flt.username = "carol";
	assert_int_equal(store_session_match(f->st, &flt, NOW, NULL, NULL), 1);
	/* Ended and expired sessions never match. */
	assert_int_equal(store_session_end(f->st, c.id, STORE_REVOKED, "test", NOW), 0);
	assert_int_equal(store_session_match(f->st, &flt, NOW, NULL, NULL), 0);
	memset(&flt, 0, sizeof(flt));
	flt.sub = "sub-a";
	assert_int_equal(store_session_match(f->st, &flt, NOW + 9 * HOUR, NULL, NULL), 0);
	/* Listing includes ended ones only when asked. */
	n = 0;
	assert_int_equal(store_session_list(f->st, NULL, 0, count_cb, &n), 2);
	n = 0;
	assert_int_equal(store_session_list(f->st, "carol", 1, count_cb, &n), 1);
}

static void
torture_locks(void **state)
{
	struct fixture *f = *state;
	char *msg = NULL;
	int64_t until = 0;

	assert_int_equal(store_lock_get(f->st, "user:alice", NOW, &msg, &until), 1);
	assert_int_equal(store_lock_set(f->st, "user:alice", NOW + 60, "incident 42", "admin", NOW),
			 0);
	assert_int_equal(store_lock_get(f->st, "user:alice", NOW, &msg, &until), 0);
	assert_string_equal(msg, "incident 42");
	assert_int_equal(until, NOW + 60);
	free(msg);
	/* A timed lock lapses by itself. */
	assert_int_equal(store_lock_get(f->st, "user:alice", NOW + 61, &msg, &until), 1);
	/* Until unlocked. */
	assert_int_equal(store_lock_set(f->st, "sub:s1", 0, NULL, "admin", NOW), 0);
	assert_int_equal(store_lock_get(f->st, "sub:s1", NOW + 1000000, &msg, &until), 0);
	assert_null(msg);
	assert_int_equal(store_lock_clear(f->st, "sub:s1"), 0);
	assert_int_equal(store_lock_clear(f->st, "sub:s1"), 1);
	assert_int_equal(store_lock_get(f->st, "sub:s1", NOW, &msg, &until), 1);
}

static void
torture_jti(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(store_jti_use(f->st, "iss", "j1", NOW + 60, NOW), 0);
	assert_int_equal(store_jti_use(f->st, "iss", "j1", NOW + 60, NOW), 1);
	assert_int_equal(store_jti_use(f->st, "other", "j1", NOW + 60, NOW), 0);
	/* Remembered across a restart. */
	store_close(f->st);
	f->st = NULL;
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	assert_int_equal(store_jti_use(f->st, "iss", "j1", NOW + 60, NOW + 10), 1);
	/* Forgotten once expired (then a token carrying it would fail exp anyway). */
	assert_int_equal(store_jti_use(f->st, "iss", "j1", NOW + 600, NOW + 61), 0);
}

static void
torture_ws_killed(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsk"), out;

	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_set_killed(f->st, "alice-ws", 1), 0);
	assert_int_equal(store_workspace_get(f->st, "alice-ws", &out), 0);
	assert_int_equal(out.killed, 1);
	store_workspace_clear(&out);
	assert_int_equal(store_workspace_set_killed(f->st, "alice-ws", 0), 0);
	assert_int_equal(store_workspace_get(f->st, "alice-ws", &out), 0);
	assert_int_equal(out.killed, 0);
	store_workspace_clear(&out);
	assert_int_equal(store_workspace_set_killed(f->st, "nope", 1), 1);
}

/* ---- guestd audit marks (issue #6) ---- */

static void
torture_ws_audit_seq(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsseq");
	int64_t seq = -1;
	char err[512];

	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 0);
	assert_int_equal(store_workspace_audit_seq_set(f->st, "alice-ws", 1700000000123456LL), 0);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 1700000000123456LL);
	/* no such workspace; a negative mark is refused and changes nothing */
	assert_int_equal(store_workspace_audit_seq_set(f->st, "nope", 5), 1);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "nope", &seq), 1);
	assert_int_equal(seq, 0);
	assert_int_equal(store_workspace_audit_seq_set(f->st, "alice-ws", -1), -1);
	assert_int_equal(store_workspace_audit_seq_get(f->st, NULL, &seq), 1);

	/* survives a restart of the broker */
	store_close(f->st);
	f->st = NULL;
	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 1700000000123456LL);

	/* removed and registered again: a new guestd, counted from 0 */
	assert_int_equal(store_workspace_remove(f->st, "alice-ws"), 0);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 1);
	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 0);
}

/* A database of schema version 3 (no audit_seq) gets the column, 0 for existing rows. */
static void
torture_ws_audit_seq_migration(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w = mkws("alice-ws", "SHA256:wsmig"), out;
	int64_t seq = -1;
	char err[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;

	assert_int_equal(store_workspace_add(f->st, &w), 0);
	assert_int_equal(store_workspace_audit_seq_set(f->st, "alice-ws", 42), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE workspaces DROP COLUMN audit_seq;"
				      " PRAGMA user_version = 3;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	db = NULL;

	if (store_open(f->path, &f->st, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
	assert_int_equal(store_workspace_get(f->st, "alice-ws", &out), 0);
	store_workspace_clear(&out);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 0);
	assert_int_equal(store_workspace_audit_seq_set(f->st, "alice-ws", 7), 0);
	assert_int_equal(store_workspace_audit_seq_get(f->st, "alice-ws", &seq), 0);
	assert_int_equal(seq, 7);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 4);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_create_find, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_null_sid, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_touch, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_end, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_expire_due, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_persistence, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_add_get, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_match, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_jti, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_audit_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ws_audit_seq_migration, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
