/* JSON-lines audit sink: appending, line integrity, retry after write failures. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "audit/audit-json.h"
#include "audit/log.h"
#include "audit/ocsf.h"

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
	snprintf(f->dir, sizeof(f->dir), "%s/torture_audit.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Set by the concurrent-writers test: see there. */
static bool blank_lines_ok;

/*
 * Checks every line of the file is one complete JSON object ending in '\n'; calls cb (may be
 * NULL) with each. Returns the number of lines.
 */
static size_t
read_lines(const char *path, void (*cb)(json_t *, void *), void *arg)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;

	assert_non_null(fp);
	while ((len = getline(&line, &cap, fp)) != -1) {
		json_error_t jerr;
		json_t *j;

		if (len == 1 && line[0] == '\n' && blank_lines_ok)
			continue;
		assert_true(len > 1);
		assert_int_equal(line[len - 1], '\n');
		j = json_loadb(line, (size_t)len - 1, 0, &jerr);
		if (j == NULL)
			fail_msg("line %zu is not JSON: %s", n + 1, jerr.text);
		assert_true(json_is_object(j));
		if (cb != NULL)
			cb(j, arg);
		json_decref(j);
		n++;
	}
	free(line);
	fclose(fp);
	return n;
}

/* The first line of a new file is the chain anchor (Event Log Activity, class 1008). */
static bool
is_anchor(json_t *j)
{
	return json_integer_value(json_object_get(j, "class_uid")) == 1008;
}

static json_t *
seq_event(int child, int seq, size_t pad)
{
	json_t *ev = ocsf_event_new(OCSF_CLASS_API_ACTIVITY, 1, true, ocsf_now_ms());
	char *p = malloc(pad + 1);

	assert_non_null(ev);
	assert_non_null(p);
	memset(p, 'x', pad);
	p[pad] = '\0';
	json_object_set_new(ev, "child", json_integer(child));
	json_object_set_new(ev, "seq", json_integer(seq));
	/* Control characters must be escaped, never split the line. */
	json_object_set_new(ev, "message", json_string("line\nbreak\r\x01"));
	json_object_set_new(ev, "pad", json_string(p));
	free(p);
	return ev;
}

static void
check_classes(json_t *j, void *arg)
{
	int *n = arg;

	if (*n == 0)
		assert_true(is_anchor(j));
	else
		assert_int_equal(json_integer_value(json_object_get(j, "class_uid")),
				 *n < 3 ? 3002 : 4007);
	(*n)++;
}

static void
torture_append_lines(void **state)
{
	struct fixture *f = *state;
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	char err[256] = "";
	struct audit *a;
	struct stat sb;
	int n = 0;

	a = audit_open(f->path, NULL, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(audit_emit(a, ocsf_auth_logon(&s, true, NULL, ocsf_now_ms())), 0);
	assert_int_equal(audit_emit(a, ocsf_auth_logon(&s, false, "denied", ocsf_now_ms())), 0);
	assert_int_equal(audit_emit(a, ocsf_ssh_activity(OCSF_SSH_OPEN, &s, OCSF_SSH_AUTH_PUBKEY,
							 NULL, ocsf_now_ms())),
			 0);
	/* Lines are in the file at once, before any flush (after the anchor). */
	assert_int_equal(read_lines(f->path, NULL, NULL), 4);
	assert_int_equal(audit_flush(a), 0);
	assert_int_equal(audit_lost(a), 0);
	audit_close(a);

	assert_int_equal(read_lines(f->path, check_classes, &n), 4);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0137, 0); /* at most 0640 */
}

static void
torture_reopen_appends(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct audit *a;
	int i;

	for (i = 0; i < 3; i++) {
		a = audit_open(f->path, NULL, err, sizeof(err));
		assert_non_null(a);
		assert_int_equal(audit_emit(a, seq_event(0, i, 10)), 0);
		audit_close(a);
	}
	/* One anchor: the second and third opens continue the chain. */
	assert_int_equal(read_lines(f->path, NULL, NULL), 4);
}

#define CHILDREN 4
#define PER_CHILD 500

static void
count_seq(json_t *j, void *arg)
{
	int(*seen)[PER_CHILD] = arg;
	json_int_t c = json_integer_value(json_object_get(j, "child"));
	json_int_t s = json_integer_value(json_object_get(j, "seq"));

	if (is_anchor(j))
		return;
	assert_in_range(c, 0, CHILDREN - 1);
	assert_in_range(s, 0, PER_CHILD - 1);
	seen[c][s]++;
}

/*
 * Several processes append to one file: no line may be torn or interleaved. (Their hash
 * chains interleave, which the verifier reports: one writer per file is the rule; this only
 * checks that lines stay whole.)
 */
static void
torture_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	static int seen[CHILDREN][PER_CHILD];
	pid_t pids[CHILDREN];
	int c, i, status;
	size_t n;

	for (c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] != -1);
		if (pids[c] == 0) {
			struct event_base *base = event_base_new();
			char err[256];
			struct audit *a = audit_open(f->path, base, err, sizeof(err));
			int rc = 0;

			if (a == NULL)
				_exit(2);
			for (i = 0; i < PER_CHILD; i++)
				rc |= audit_emit(a, seq_event(c, i, (size_t)(i * 37 % 3000)));
			audit_close(a);
			event_base_free(base);
			_exit(rc == 0 ? 0 : 1);
		}
	}
	for (c = 0; c < CHILDREN; c++) {
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	memset(seen, 0, sizeof(seen));
	/* A child that opened the file while another was in the middle of a write(2) read a tail
	 * without its newline and ended it, as the sink does after a crash: a blank line, not a
	 * torn one (one writer per file is the rule). */
	blank_lines_ok = true;
	n = read_lines(f->path, count_seq, seen);
	blank_lines_ok = false;
	/* Each child that found the file empty wrote an anchor. */
	assert_true(n >= CHILDREN * PER_CHILD + 1 && n <= CHILDREN * PER_CHILD + CHILDREN);
	for (c = 0; c < CHILDREN; c++)
		for (i = 0; i < PER_CHILD; i++)
			assert_int_equal(seen[c][i], 1);
}

static void
loop_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* With an event base, the sync timer runs and the sink stays usable afterwards. */
static void
torture_event_base_sync(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	struct timeval tv = { 0, 300000 };
	char err[256];
	struct audit *a;
	int i;

	assert_non_null(base);
	a = audit_open(f->path, base, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < 10; i++)
		assert_int_equal(audit_emit(a, seq_event(0, i, 100)), 0);
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, loop_exit_cb, base, &tv), 0);
	assert_int_equal(event_base_dispatch(base), 0);
	assert_int_equal(audit_emit(a, seq_event(0, 10, 100)), 0);
	audit_close(a);
	event_base_free(base);
	assert_int_equal(read_lines(f->path, NULL, NULL), 12);
}

static void
torture_open_errors(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 64], err[PATH_MAX + 128];

	snprintf(path, sizeof(path), "%s/missing-dir/audit.log", f->dir);
	assert_null(audit_open(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open audit log"));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, strerror(ENOENT)));

	/* A directory is not a log file. */
	assert_null(audit_open(f->dir, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open audit log"));

	/* Nor is a FIFO, and opening one must not hang. */
	snprintf(path, sizeof(path), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(audit_open(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open audit log"));
	unlink(path);
}

/*
 * RLIMIT_FSIZE makes the kernel cut writes short and then fail with EFBIG, like a full
 * disk. Events are kept, and once the file is writable again every line is whole.
 */
static void
torture_write_failure_retry(void **state)
{
	struct fixture *f = *state;
	struct rlimit saved, rl;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	char err[256];
	struct audit *a;
	struct stat sb;
	int i, failed = 0;

	a = audit_open(f->path, NULL, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(audit_emit(a, seq_event(0, 0, 100)), 0);
	assert_int_equal(stat(f->path, &sb), 0);

	assert_int_equal(sigaction(SIGXFSZ, &ign, &old), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	rl = saved;
	rl.rlim_cur = (rlim_t)sb.st_size + 1500; /* room for about one and a half lines */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	for (i = 1; i <= 20; i++)
		if (audit_emit(a, seq_event(0, i, 600)) == -1)
			failed++;
	assert_int_equal(audit_flush(a), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_int_equal(sigaction(SIGXFSZ, &old, NULL), 0);
	assert_true(failed >= 18);

	assert_int_equal(audit_flush(a), 0);
	assert_int_equal(audit_lost(a), 0);
	audit_close(a);
	assert_int_equal(read_lines(f->path, NULL, NULL), 22);
}

/* Past the retry queue's cap, events are counted as lost, never written out of order. */
static void
torture_queue_full(void **state)
{
	struct fixture *f = *state;
	struct rlimit saved, rl;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	char err[256];
	struct audit *a;
	size_t lines;
	int i, total = 5000;

	a = audit_open(f->path, NULL, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	rl = saved;
	rl.rlim_cur = 0;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	for (i = 0; i < total; i++)
		assert_int_equal(audit_emit(a, seq_event(0, i, 10)), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_int_equal(sigaction(SIGXFSZ, &old, NULL), 0);
	assert_true(audit_lost(a) > 0);
	assert_int_equal(audit_flush(a), 0);
	lines = read_lines(f->path, NULL, NULL);
	assert_int_equal(lines - 1 + audit_lost(a), (size_t)total);
	audit_close(a);
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 4096);

	assert_non_null(fp);
	assert_non_null(buf);
	assert_true(fread(buf, 1, 4095, fp) < 4095);
	fclose(fp);
	return buf;
}

/* The compact writer (audit.c) prints integers itself: extremes and signs come out as
 * jansson would print them, and read back equal. */
static void
torture_serialize_integers(void **state)
{
	struct fixture *f = *state;
	static const json_int_t vals[] = { 0,	1,	   -1,	      9,	 10,
					   -10, 123456789, INT64_MAX, INT64_MIN, INT64_MIN + 1 };
	char err[256] = "", key[16], want[64], *text;
	json_t *ev, *back;
	json_error_t jerr;
	struct audit *a;
	size_t i;

	a = audit_open(f->path, NULL, err, sizeof(err));
	assert_non_null(a);
	ev = ocsf_event_new(OCSF_CLASS_API_ACTIVITY, 1, true, ocsf_now_ms());
	assert_non_null(ev);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		snprintf(key, sizeof(key), "i%zu", i);
		json_object_set_new(ev, key, json_integer(vals[i]));
	}
	assert_int_equal(audit_emit(a, ev), 0);
	audit_close(a);
	text = slurp(f->path);
	/* The second line is the event (the first, the chain anchor). */
	back = json_loads(strchr(text, '\n') + 1, JSON_DISABLE_EOF_CHECK, &jerr);
	assert_non_null(back);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		snprintf(key, sizeof(key), "i%zu", i);
		assert_true(json_is_integer(json_object_get(back, key)));
		assert_true(json_integer_value(json_object_get(back, key)) == vals[i]);
		snprintf(want, sizeof(want), "\"%s\":%" JSON_INTEGER_FORMAT ",", key, vals[i]);
		if (strstr(text, want) == NULL)
			fail_msg("%s not in the line", want);
	}
	json_decref(back);
	free(text);
}

/* audit_json_compact(): the same JSON as json_dumps(JSON_COMPACT), members left out on
 * request at the top level only, NULL for what it cannot write. */
static void
torture_json_compact(void **state)
{
	static const char *const skip[] = { "drop", "also", NULL };
	json_t *v, *back, *deep, *cur;
	char *text, *ref;
	size_t len = 0;
	int i;

	(void)state;
	v = json_pack("{s:s, s:i, s:I, s:b, s:b, s:n, s:f, s:f, s:[i, s, {s:s}], s:{s:s, s:{}}, "
		      "s:[], s:s}",
		      "str", "q\" b\\ nl\n cr\r tab\t \x01 \x1f \x7f \xc3\xa9 \xe2\x80\xa8", "neg",
		      -42, "big", (json_int_t)INT64_MAX, "t", 1, "f", 0, "nil", "r1", 1.5, "r2",
		      1e300, "arr", 1, "two", "k", "v", "obj", "drop", "nested drop stays", "empty",
		      "none", "drop", "gone");
	assert_non_null(v);
	text = audit_json_compact(v, NULL, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	ref = json_dumps(v, JSON_COMPACT);
	assert_string_equal(text, ref); /* no \b or \f here: byte for byte jansson's */
	back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(back);
	assert_true(json_equal(back, v));
	json_decref(back);
	free(text);
	free(ref);

	/* top-level members named in skip are left out, nested ones of the same name are not */
	text = audit_json_compact(v, skip, NULL);
	assert_non_null(text);
	back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(back);
	assert_null(json_object_get(back, "drop"));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(back, "obj"), "drop")),
		"nested drop stays");
	json_object_del(v, "drop");
	assert_true(json_equal(back, v));
	json_decref(back);
	free(text);

	/* everything skipped: {} */
	json_decref(v);
	v = json_pack("{s:i}", "drop", 1);
	text = audit_json_compact(v, skip, NULL);
	assert_string_equal(text, "{}");
	free(text);
	json_decref(v);

	/* \b and \f: written as \u0008 and \u000C, the same string */
	v = json_pack("{s:s}", "s", "\b\f");
	text = audit_json_compact(v, NULL, NULL);
	assert_string_equal(text, "{\"s\":\"\\u0008\\u000C\"}");
	free(text);
	json_decref(v);

	/* not an object; nested deeper than jansson parses (2048); as deep as it parses */
	v = json_integer(1);
	assert_null(audit_json_compact(v, NULL, NULL));
	json_decref(v);
	deep = json_object();
	for (i = 0, cur = deep; i < 2100; i++) {
		json_t *n = json_object();

		json_object_set_new(cur, "d", n);
		cur = n;
		if (i == 2000) {
			text = audit_json_compact(deep, NULL, NULL);
			assert_non_null(text);
			assert_int_equal(strlen(text), 2001 * 6 + 2); /* {"d":…{}…} */
			free(text);
		}
	}
	assert_null(audit_json_compact(deep, NULL, NULL));
	json_decref(deep);
}

/* stderr format: "prog: level: msg" on a terminal or file, "<N>msg" under journald. */
static void
torture_log_format(void **state)
{
	struct fixture *f = *state;
	int fd, saved_stderr;
	struct stat sb;
	char js[64];
	char *out;

	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);

	unsetenv("JOURNAL_STREAM");
	log_init("prog", 0);
	log_info("hello %d", 1);
	log_debug("hidden");
	errno = ENOENT;
	log_warn("open %s", "x");
	assert_int_equal(errno, ENOENT);
	log_warnx("evil\nname");
	log_set_debug(1);
	assert_int_equal(log_get_debug(), 1);
	log_debug("shown");

	/* journald: JOURNAL_STREAM names the stream stderr is connected to. */
	assert_int_equal(fstat(STDERR_FILENO, &sb), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)sb.st_dev,
		 (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("prog", 0);
	log_info("to journal");
	errno = EACCES;
	log_warn("denied");
	/* A JOURNAL_STREAM for another stream (stderr redirected): plain prefix again. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_init("prog", 0);
	log_warnx("plain");
	unsetenv("JOURNAL_STREAM");

	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	close(fd);

	out = slurp(f->path);
	assert_string_equal(out, "prog: hello 1\n"
				 "prog: warning: open x: No such file or directory\n"
				 "prog: warning: evil?name\n"
				 "prog: debug: shown\n"
				 "<6>to journal\n"
				 "<4>denied: Permission denied\n"
				 "prog: warning: plain\n");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_append_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_reopen_appends, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_event_base_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_write_failure_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_log_format, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_serialize_integers, setup, teardown),
		cmocka_unit_test(torture_json_compact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
