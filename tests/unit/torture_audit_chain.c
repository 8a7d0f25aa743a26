/*
 * Hash chain and verifier: an intact file verifies; a removed, reordered, edited, duplicated
 * or truncated record is found and named by line. Rotation (size, time), keep=N, reopen
 * after an external rotation, restart continuation, damaged tails; the sink description
 * parser; health and AuditFailureMode.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "audit/ocsf.h"
#include "audit/verify.h"

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 32];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/torture_chain.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
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

static json_t *
ev_n(int n)
{
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1", .src_port = n };
	json_t *ev = ocsf_auth_logon(&s, n % 3 != 0, n % 3 ? NULL : "denied", ocsf_now_ms());

	assert_non_null(ev);
	return ev;
}

static struct audit *
open_file_sink(const char *path, const char *opts, struct event_base *base,
	       enum audit_failure_mode mode)
{
	struct audit_env env = { .base = base, .app_name = "torture" };
	struct audit_sink_cfg cfg;
	char spec[PATH_MAX + 256], err[512];
	struct audit *a;

	snprintf(spec, sizeof(spec), "file %s %s", path, opts != NULL ? opts : "");
	if (audit_sink_parse(spec, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", spec, err);
	a = audit_open_sinks(&env, &cfg, 1, mode, err, sizeof(err));
	if (a == NULL)
		fail_msg("open: %s", err);
	return a;
}

static void
write_events(const char *path, int n)
{
	struct audit *a = open_file_sink(path, NULL, NULL, AUDIT_FAILURE_OPEN);
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(audit_emit(a, ev_n(i)), 0);
	audit_close(a);
}

/* Lines of a file, each with its '\n'. */
struct lines {
	char **v;
	size_t n;
};

static struct lines
read_all(const char *path)
{
	struct lines l = { 0 };
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	assert_non_null(fp);
	while (getline(&line, &cap, fp) != -1) {
		l.v = realloc(l.v, (l.n + 1) * sizeof(*l.v));
		assert_non_null(l.v);
		l.v[l.n++] = strdup(line);
	}
	free(line);
	fclose(fp);
	return l;
}

static void
write_all(const char *path, const struct lines *l, size_t cut_last)
{
	FILE *fp = fopen(path, "w");
	size_t i;

	assert_non_null(fp);
	for (i = 0; i < l->n; i++) {
		if (l->v[i] == NULL)
			continue;
		if (i == l->n - 1 && cut_last > 0)
			fwrite(l->v[i], 1, strlen(l->v[i]) - cut_last, fp);
		else
			fputs(l->v[i], fp);
	}
	fclose(fp);
}

static void
free_lines(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Runs the verifier on the listed files; returns its result, report in *out (freed by caller). */
static int
verify(char **out, const char *const *paths, size_t n)
{
	size_t len;
	FILE *mem = open_memstream(out, &len);
	int rc;

	assert_non_null(mem);
	rc = audit_verify_files(paths, n, mem);
	fclose(mem);
	return rc;
}

static void
expect_verify(const char *path, int want_rc, const char *want_text, const char *want_line)
{
	char *rep = NULL;
	int rc = verify(&rep, &path, 1);

	if (rc != want_rc || (want_text != NULL && strstr(rep, want_text) == NULL) ||
	    (want_line != NULL && strstr(rep, want_line) == NULL))
		fail_msg("verify %s: rc %d (want %d), report: %s (want \"%s\" at \"%s\")", path, rc,
			 want_rc, rep, want_text ? want_text : "", want_line ? want_line : "");
	free(rep);
}

static void
torture_chain_intact(void **state)
{
	struct fixture *f = *state;
	struct lines l;
	struct chain_info ci;
	char h[CHAIN_HEX_LEN + 1];
	size_t i;

	write_events(f->path, 20);
	l = read_all(f->path);
	assert_int_equal(l.n, 21);
	/* Line 1 is the anchor from genesis, then seq +1 and prev = hash of the line before. */
	assert_int_equal(chain_parse(l.v[0], strlen(l.v[0]) - 1, &ci), 0);
	assert_true(ci.anchor);
	assert_string_equal(ci.prev, CHAIN_GENESIS);
	assert_int_equal(ci.seq, 1);
	for (i = 1; i < l.n; i++) {
		chain_hash(l.v[i - 1], strlen(l.v[i - 1]) - 1, h);
		assert_int_equal(chain_parse(l.v[i], strlen(l.v[i]) - 1, &ci), 0);
		assert_true(ci.has_chain);
		assert_false(ci.anchor);
		assert_string_equal(ci.prev, h);
		assert_int_equal(ci.seq, (long long)i + 1);
	}
	free_lines(&l);
	expect_verify(f->path, 0, "OK: seq 1 to 21", NULL);
}

static void
torture_verify_detects(void **state)
{
	struct fixture *f = *state;
	struct lines l;
	char *p, *tmp;

	write_events(f->path, 20);

	/* Removal of line 8 (seq 8): reported at the line that follows the gap. */
	l = read_all(f->path);
	free(l.v[7]);
	l.v[7] = NULL;
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "record seq 8 was removed", ":8:");
	/* Two removed. */
	free(l.v[8]);
	l.v[8] = NULL;
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "records seq 8 to 9 were removed", ":8:");
	free_lines(&l);

	/* Reordering: lines 5 and 6 swapped. */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	tmp = l.v[4];
	l.v[4] = l.v[5];
	l.v[5] = tmp;
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "reordered: seq 5 is expected here but comes later, at line 6",
		      ":5:");
	/* Duplicated record. */
	tmp = l.v[5];
	l.v[5] = l.v[4];
	l.v[4] = tmp;
	free(l.v[10]);
	l.v[10] = strdup(l.v[9]);
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "reordered or duplicated: seq 10 comes after seq 10", ":11:");
	free_lines(&l);

	/* Edit of a record's content: its successor's prev no longer matches. */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	p = strstr(l.v[11], "alice");
	assert_non_null(p);
	p[4] = 'x';
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "previous record (line 12, seq 12) was edited", ":13:");
	free_lines(&l);

	/* Edit of a seq (the prev still matches the line before). */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	p = strstr(l.v[6], "\"seq\":7}");
	assert_non_null(p);
	p[6] = '9';
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "record seq 9 was edited", ":7:");
	free_lines(&l);

	/* A record that is no longer JSON. */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	l.v[3][0] = '[';
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "not a JSON object", ":4:");
	free_lines(&l);

	/* Truncation mid-record. */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	write_all(f->path, &l, 10);
	expect_verify(f->path, 1, "truncated", ":21:");
	free_lines(&l);

	/* Removal from the start (the anchor is gone). */
	unlink(f->path);
	write_events(f->path, 20);
	l = read_all(f->path);
	free(l.v[0]);
	l.v[0] = NULL;
	free(l.v[1]);
	l.v[1] = NULL;
	write_all(f->path, &l, 0);
	expect_verify(f->path, 1, "does not start with a chain anchor", ":1:");
	free_lines(&l);

	/* The verifier never takes a line longer than 1 MiB whole. */
	unlink(f->path);
	write_events(f->path, 2);
	{
		FILE *fp = fopen(f->path, "a");
		int i;

		assert_non_null(fp);
		for (i = 0; i < CHAIN_LINE_MAX + 10; i++)
			fputc('x', fp);
		fputc('\n', fp);
		fclose(fp);
	}
	expect_verify(f->path, 1, "longer than 1 MiB", ":4:");
}

/* Reopening a file at start-up continues its chain: one anchor, one chain. */
static void
torture_restart_continues(void **state)
{
	struct fixture *f = *state;
	struct lines l;
	size_t i, anchors = 0;
	struct chain_info ci;

	write_events(f->path, 5);
	write_events(f->path, 5);
	write_events(f->path, 5);
	l = read_all(f->path);
	assert_int_equal(l.n, 16);
	for (i = 0; i < l.n; i++) {
		assert_int_equal(chain_parse(l.v[i], strlen(l.v[i]) - 1, &ci), 0);
		anchors += ci.anchor;
	}
	assert_int_equal(anchors, 1);
	free_lines(&l);
	expect_verify(f->path, 0, "OK: seq 1 to 16", NULL);
}

/* A tail cut short by a crash: a new chain starts after it, the verifier names the line. */
static void
torture_damaged_tail(void **state)
{
	struct fixture *f = *state;
	FILE *fp;

	write_events(f->path, 3);
	fp = fopen(f->path, "a");
	assert_non_null(fp);
	fputs("{\"class_uid\":3002,\"half", fp);
	fclose(fp);
	write_events(f->path, 3);
	expect_verify(f->path, 1, "not a JSON object", ":5:");
}

static void
torture_size_rotation(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, "rotate=8K keep=3", NULL, AUDIT_FAILURE_OPEN);
	char p1[PATH_MAX + 64], p2[PATH_MAX + 64], p3[PATH_MAX + 64], p4[PATH_MAX + 64];
	const char *set[4], *wrong[2];
	struct stat sb;
	char *rep = NULL;
	int i;

	for (i = 0; i < 200; i++)
		assert_int_equal(audit_emit(a, ev_n(i)), 0);
	audit_close(a);
	snprintf(p1, sizeof(p1), "%s.1", f->path);
	snprintf(p2, sizeof(p2), "%s.2", f->path);
	snprintf(p3, sizeof(p3), "%s.3", f->path);
	snprintf(p4, sizeof(p4), "%s.4", f->path);
	assert_int_equal(stat(p1, &sb), 0);
	assert_true(sb.st_size <= 8192);
	assert_int_equal(stat(p3, &sb), 0);
	assert_int_equal(stat(p4, &sb), -1); /* keep=3 */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size <= 8192);

	/* Each file verifies alone, starting at its anchor... */
	expect_verify(p3, 0, "OK", NULL);
	expect_verify(p1, 0, "OK", NULL);
	expect_verify(f->path, 0, "OK", NULL);
	/* ...and the set, oldest first, as one chain. */
	set[0] = p3;
	set[1] = p2;
	set[2] = p1;
	set[3] = f->path;
	assert_int_equal(verify(&rep, set, 4), 0);
	free(rep);
	/* Not consecutive: PATH.3 then PATH.1 (PATH.2 left out). */
	wrong[0] = p3;
	wrong[1] = p1;
	assert_int_equal(verify(&rep, wrong, 2), 1);
	assert_non_null(strstr(rep, "records seq"));
	free(rep);
}

static void
torture_time_rotation(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, "rotate-every=1s", NULL, AUDIT_FAILURE_OPEN);
	char p1[PATH_MAX + 64];
	const char *set[2];
	struct stat sb;
	char *rep = NULL;

	assert_int_equal(audit_emit(a, ev_n(1)), 0);
	usleep(1100 * 1000);
	assert_int_equal(audit_emit(a, ev_n(2)), 0);
	audit_close(a);
	snprintf(p1, sizeof(p1), "%s.1", f->path);
	assert_int_equal(stat(p1, &sb), 0);
	set[0] = p1;
	set[1] = f->path;
	assert_int_equal(verify(&rep, set, 2), 0);
	assert_non_null(strstr(rep, "OK: seq 1 to 4")); /* anchor, ev, anchor, ev */
	free(rep);
}

/* logrotate's "create" mode: the file is renamed, SIGHUP makes us reopen at the path. */
static void
torture_reopen(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, NULL, NULL, AUDIT_FAILURE_OPEN);
	char old[PATH_MAX + 64];
	const char *set[2];
	struct lines l;
	struct chain_info ci;
	char *rep = NULL;
	int i;

	for (i = 0; i < 5; i++)
		assert_int_equal(audit_emit(a, ev_n(i)), 0);
	/* Reopen without a rotation: nothing changes, the chain goes on. */
	assert_int_equal(audit_reopen(a), 0);
	assert_int_equal(audit_emit(a, ev_n(5)), 0);
	snprintf(old, sizeof(old), "%s.old", f->path);
	assert_int_equal(rename(f->path, old), 0);
	/* Until the reopen, events still go to the renamed file. */
	assert_int_equal(audit_emit(a, ev_n(6)), 0);
	assert_int_equal(audit_reopen(a), 0);
	for (i = 7; i < 10; i++)
		assert_int_equal(audit_emit(a, ev_n(i)), 0);
	audit_close(a);

	l = read_all(old);
	assert_int_equal(l.n, 8);
	free_lines(&l);
	l = read_all(f->path);
	assert_int_equal(l.n, 4);
	assert_int_equal(chain_parse(l.v[0], strlen(l.v[0]) - 1, &ci), 0);
	assert_true(ci.anchor);
	free_lines(&l);
	set[0] = old;
	set[1] = f->path;
	assert_int_equal(verify(&rep, set, 2), 0);
	assert_non_null(strstr(rep, "OK: seq 1 to 12"));
	free(rep);
}

/* Line i of l parsed (asserted to be JSON); *um its unmapped member (borrowed). */
static json_t *
line_unmapped(const struct lines *l, size_t i, json_t **um)
{
	json_t *back = json_loads(l->v[i], JSON_REJECT_DUPLICATES, NULL);

	assert_non_null(back);
	*um = json_object_get(back, "unmapped");
	assert_true(json_is_object(*um));
	return back;
}

/* An event with unmapped data of its own keeps it, next to the chain. */
static void
torture_unmapped_merge(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, NULL, NULL, AUDIT_FAILURE_OPEN);
	json_t *ev = ev_n(1), *back, *um;
	struct lines l;

	json_object_set_new(ev, "unmapped",
			    json_pack("{sisssi}", "x", 1, "prev", "evil", "seq", 99));
	assert_int_equal(audit_emit(a, ev), 0);
	audit_close(a);
	l = read_all(f->path);
	assert_int_equal(l.n, 2);
	back = line_unmapped(&l, 1, &um);
	assert_int_equal(json_integer_value(json_object_get(um, "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(um, "seq")), 2);
	assert_int_equal(strlen(json_string_value(json_object_get(um, "prev"))), 64);
	assert_int_equal(json_object_size(um), 3);
	json_decref(back);
	free_lines(&l);
	expect_verify(f->path, 0, "OK", NULL);
}

/* The rest of such an event is written as it was; an unmapped that is not an object is kept
 * as its "value". */
static void
torture_unmapped_rest(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, NULL, NULL, AUDIT_FAILURE_OPEN);
	json_t *ev = ev_n(1), *want = NULL, *back, *um;
	struct lines l;

	json_object_set_new(ev, "unmapped", json_pack("{ss}", "workspace", "w\"1\n"));
	json_object_set_new(ev, "z_after", json_pack("{s[iss]}", "k", -7, "a\\b", "\u00e9"));
	want = json_deep_copy(ev);
	json_object_del(want, "unmapped");
	assert_int_equal(audit_emit(a, ev), 0);
	ev = ev_n(2);
	json_object_set_new(ev, "unmapped", json_string("free text"));
	assert_int_equal(audit_emit(a, ev), 0);
	audit_close(a);
	l = read_all(f->path);
	assert_int_equal(l.n, 3);
	back = line_unmapped(&l, 1, &um);
	assert_string_equal(json_string_value(json_object_get(um, "workspace")), "w\"1\n");
	assert_int_equal(json_object_size(um), 3); /* workspace, prev, seq */
	json_object_del(back, "unmapped");
	assert_true(json_equal(back, want));
	json_decref(back);
	back = line_unmapped(&l, 2, &um);
	assert_string_equal(json_string_value(json_object_get(um, "value")), "free text");
	assert_int_equal(json_integer_value(json_object_get(um, "seq")), 3);
	json_decref(back);
	json_decref(want);
	free_lines(&l);
	expect_verify(f->path, 0, "OK", NULL);
}

static void
torture_sink_parse(void **state)
{
	static const char *const good[] = {
		"file /var/log/saw/audit.jsonl",
		"file /var/log/saw/audit.jsonl rotate=100M rotate-every=1d keep=30",
		"file \"/var/log/saw dir/a.jsonl\" keep=2",
		"syslog",
		"syslog socket=/run/test.sock facility=local3 app=saw-test",
		"http https://siem.example.com/api/events format=json spool=/var/lib/saw/s.db",
		("http http://127.0.0.1:8088/services/collector format=hec token-file=/etc/saw/hec "
		 "spool=/var/lib/saw/hec.db spool-max=1G batch=1000 retry-max=5m timeout=30s"),
		"HTTP http://[::1]:9/x FORMAT=json spool=/s",
	};
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "", "expected file, syslog or http" },
		{ "tape /dev/st0", "not a sink kind" },
		{ "file", "needs a PATH" },
		{ "file relative.log", "absolute path" },
		{ "file /a rotate=10", "at least 4K" },
		{ "file /a rotate=lots", "not a size" },
		{ "file /a keep=0", "keep" },
		{ "file /a keep=1 keep=2", "given twice" },
		{ "file /a color=blue", "unknown option \"color\" for a file sink" },
		{ "syslog facility=mail", "facility" },
		{ "syslog socket=rel", "absolute" },
		{ "http https://x/ format=json", "spool=PATH" },
		{ "http http://siem.example.com/ spool=/s", "plain http only to a loopback" },
		{ "http https://user:pw@siem/ spool=/s", "credentials" },
		{ "http https://siem/ format=hec spool=/s", "token-file" },
		{ "http https://siem/ format=xml spool=/s", "not json or hec" },
		{ "http https://siem/ spool=/s batch=0", "batch" },
		{ "http https://siem/ spool=/s retry-max=0s", "retry-max" },
		{ "file \"/a", "unterminated quote" },
	};
	struct audit_sink_cfg c, c2;
	char err[256], buf[AUDIT_SINK_SPEC_MAX], buf2[AUDIT_SINK_SPEC_MAX];
	enum audit_failure_mode m;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (audit_sink_parse(good[i], &c, err, sizeof(err)) != 0)
			fail_msg("%s: %s", good[i], err);
		assert_int_equal(audit_sink_format(&c, buf, sizeof(buf)), 0);
		if (audit_sink_parse(buf, &c2, err, sizeof(err)) != 0)
			fail_msg("round trip of %s (%s): %s", good[i], buf, err);
		assert_int_equal(audit_sink_format(&c2, buf2, sizeof(buf2)), 0);
		assert_string_equal(buf, buf2);
		assert_memory_equal(&c, &c2, sizeof(c));
	}
	assert_int_equal(audit_sink_parse(good[1], &c, err, sizeof(err)), 0);
	assert_int_equal(c.rotate_size, 100LL * 1024 * 1024);
	assert_int_equal(c.rotate_secs, 86400);
	assert_int_equal(c.keep, 30);
	assert_int_equal(audit_sink_parse(good[6], &c, err, sizeof(err)), 0);
	assert_int_equal(c.format, AUDIT_HTTP_HEC);
	assert_int_equal(c.batch, 1000);
	assert_int_equal(c.retry_max, 300);
	assert_string_equal(c.token_file, "/etc/saw/hec");
	assert_int_equal(audit_sink_parse(good[2], &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, "/var/log/saw dir/a.jsonl");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (audit_sink_parse(bad[i].spec, &c, err, sizeof(err)) == 0)
			fail_msg("accepted: %s", bad[i].spec);
		if (strstr(err, bad[i].msg) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].spec, err, bad[i].msg);
	}
	assert_int_equal(audit_failure_mode_parse("Closed", &m), 0);
	assert_int_equal(m, AUDIT_FAILURE_CLOSED);
	assert_int_equal(audit_failure_mode_parse("open", &m), 0);
	assert_int_equal(m, AUDIT_FAILURE_OPEN);
	assert_int_equal(audit_failure_mode_parse("ajar", &m), -1);
	assert_string_equal(audit_failure_mode_name(AUDIT_FAILURE_CLOSED), "closed");
}

/* closed: a sink that cannot make events durable refuses logins until it recovers. */
static void
torture_failure_mode(void **state)
{
	struct fixture *f = *state;
	struct audit *a = open_file_sink(f->path, NULL, NULL, AUDIT_FAILURE_CLOSED);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct rlimit saved, rl;

	assert_true(audit_healthy(a));
	assert_false(audit_refuses_logins(a));
	assert_int_equal(audit_failure_mode(a), AUDIT_FAILURE_CLOSED);
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	rl = saved;
	rl.rlim_cur = 0;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	assert_int_equal(audit_emit(a, ev_n(1)), -1);
	assert_false(audit_healthy(a));
	assert_true(audit_refuses_logins(a));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_int_equal(sigaction(SIGXFSZ, &old, NULL), 0);
	assert_int_equal(audit_flush(a), 0);
	assert_true(audit_healthy(a));
	assert_false(audit_refuses_logins(a));
	/* A NULL event (builder out of memory) is a failure too, until the next good one. */
	assert_int_equal(audit_emit(a, NULL), -1);
	assert_true(audit_refuses_logins(a));
	assert_int_equal(audit_emit(a, ev_n(2)), 0);
	assert_false(audit_refuses_logins(a));
	audit_close(a);
	expect_verify(f->path, 0, "OK: seq 1 to 3", NULL);

	/* open mode never refuses. */
	a = open_file_sink(f->path, NULL, NULL, AUDIT_FAILURE_OPEN);
	assert_int_equal(audit_emit(a, NULL), -1);
	assert_false(audit_healthy(a));
	assert_false(audit_refuses_logins(a));
	audit_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_chain_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_verify_detects, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_restart_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_damaged_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_size_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_time_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_unmapped_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_unmapped_rest, setup, teardown),
		cmocka_unit_test(torture_sink_parse),
		cmocka_unit_test_setup_teardown(torture_failure_mode, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
