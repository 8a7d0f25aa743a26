/* OCSF event builders: required members, arithmetic, omission of unknown fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/ocsf.h"

#define T0 1700000000123LL

static const struct ocsf_subject alice = {
	.username = "alice",
	.uid = "sub-1234",
	.issuer = "https://idp.example.com",
	.session_uid = "0123456789abcdef0123456789abcdef",
	.session_created_ms = T0 - 1000,
	.session_expires_ms = T0 + 3600000,
	.src_ip = "192.0.2.10",
	.src_port = 54321,
	.dst_ip = "198.51.100.1",
	.dst_port = 22,
};

static json_int_t
int_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *
str_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

/* Every OCSF event carries these, whatever its class. */
static void
check_base(json_t *ev, int class_uid, int activity_id, int status_id, int64_t t)
{
	json_t *meta, *product;
	const char *uid;
	size_t i;

	assert_int_equal(int_at(ev, "class_uid"), class_uid);
	assert_int_equal(int_at(ev, "category_uid"), class_uid / 1000);
	assert_int_equal(int_at(ev, "activity_id"), activity_id);
	assert_int_equal(int_at(ev, "type_uid"), (json_int_t)class_uid * 100 + activity_id);
	assert_int_equal(int_at(ev, "time"), t);
	assert_int_equal(int_at(ev, "status_id"), status_id);
	assert_string_equal(str_at(ev, "status"), status_id == 1 ? "Success" : "Failure");
	assert_int_equal(int_at(ev, "severity_id"), status_id == 1 ? 1 : 3);
	str_at(ev, "class_name");
	str_at(ev, "category_name");
	str_at(ev, "activity_name");

	meta = json_object_get(ev, "metadata");
	assert_non_null(meta);
	assert_string_equal(str_at(meta, "version"), "1.8.0");
	product = json_object_get(meta, "product");
	assert_non_null(product);
	assert_string_equal(str_at(product, "name"), "SAW broker");
	assert_string_equal(str_at(product, "vendor_name"), "SAW");
	assert_string_equal(str_at(product, "version"), SAW_VERSION);
	uid = str_at(meta, "uid");
	assert_int_equal(strlen(uid), 32);
	for (i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", uid[i]));
}

/* Serialized compactly, parsed back: the same object, on one line. */
static void
check_round_trip(json_t *ev)
{
	json_error_t jerr;
	char *s = json_dumps(ev, JSON_COMPACT);
	json_t *back;

	assert_non_null(s);
	assert_null(strchr(s, '\n'));
	back = json_loads(s, 0, &jerr);
	assert_non_null(back);
	assert_true(json_equal(ev, back));
	json_decref(back);
	free(s);
}

static void
torture_event_new(void **state)
{
	static const struct {
		enum ocsf_class c;
		int activity;
		const char *class_name, *category_name, *activity_name;
	} cases[] = {
		{ OCSF_CLASS_PROCESS_ACTIVITY, 1, "Process Activity", "System Activity", "Launch" },
		{ OCSF_CLASS_ACCOUNT_CHANGE, 9, "Account Change", "Identity & Access Management",
		  "Lock" },
		{ OCSF_CLASS_AUTHENTICATION, 2, "Authentication", "Identity & Access Management",
		  "Logoff" },
		{ OCSF_CLASS_AUTHORIZE_SESSION, 2, "Authorize Session",
		  "Identity & Access Management", "Assign Groups" },
		{ OCSF_CLASS_NETWORK_ACTIVITY, 5, "Network Activity", "Network Activity",
		  "Refuse" },
		{ OCSF_CLASS_HTTP_ACTIVITY, 1, "HTTP Activity", "Network Activity", "Connect" },
		{ OCSF_CLASS_SSH_ACTIVITY, 2, "SSH Activity", "Network Activity", "Close" },
		{ OCSF_CLASS_API_ACTIVITY, 3, "API Activity", "Application Activity", "Update" },
		{ OCSF_CLASS_API_ACTIVITY, 99, "API Activity", "Application Activity", "Other" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *ev = ocsf_event_new(cases[i].c, cases[i].activity, i % 2 == 0, T0);

		assert_non_null(ev);
		check_base(ev, cases[i].c, cases[i].activity, i % 2 == 0 ? 1 : 2, T0);
		assert_string_equal(str_at(ev, "class_name"), cases[i].class_name);
		assert_string_equal(str_at(ev, "category_name"), cases[i].category_name);
		assert_string_equal(str_at(ev, "activity_name"), cases[i].activity_name);
		check_round_trip(ev);
		json_decref(ev);
	}
}

static void
torture_event_uid_unique(void **state)
{
	json_t *a = ocsf_event_new(OCSF_CLASS_AUTHENTICATION, 1, true, T0);
	json_t *b = ocsf_event_new(OCSF_CLASS_AUTHENTICATION, 1, true, T0);

	assert_string_not_equal(str_at(json_object_get(a, "metadata"), "uid"),
				str_at(json_object_get(b, "metadata"), "uid"));
	json_decref(a);
	json_decref(b);
}

#define UID_MANY 1000 /* several refills of the random pool (256 uids each) */

static int
uid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
uid_take(char out[33])
{
	json_t *ev = ocsf_event_new(OCSF_CLASS_AUTHENTICATION, 1, true, T0);
	const char *uid;

	assert_non_null(ev);
	uid = str_at(json_object_get(ev, "metadata"), "uid");
	assert_int_equal(strlen(uid), 32);
	assert_int_equal(strspn(uid, "0123456789abcdef"), 32);
	memcpy(out, uid, 33);
	json_decref(ev);
}

static void
torture_event_uid_many_unique(void **state)
{
	char(*uids)[33] = calloc(UID_MANY, 33);
	size_t i;

	assert_non_null(uids);
	for (i = 0; i < UID_MANY; i++)
		uid_take(uids[i]);
	qsort(uids, UID_MANY, 33, uid_cmp);
	for (i = 1; i < UID_MANY; i++)
		assert_string_not_equal(uids[i - 1], uids[i]);
	/* not a constant nor a counter: the first 64 bits differ between neighbours */
	assert_memory_not_equal(uids[0], uids[UID_MANY - 1], 16);
	free(uids);
}

/* A forked child must not hand out the uids its parent hands out next. */
static void
torture_event_uid_fork(void **state)
{
	char parent[8][33], child[8][33];
	int fds[2], status;
	size_t i, j, got = 0;
	ssize_t n;
	pid_t pid;

	uid_take(parent[0]); /* the pool is filled now, with uids to come */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(fds[0]);
		for (i = 0; i < 8; i++)
			uid_take(child[i]);
		_exit(write(fds[1], child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
	}
	close(fds[1]);
	for (i = 0; i < 8; i++)
		uid_take(parent[i]);
	while (got < sizeof(child) &&
	       (n = read(fds[0], (char *)child + got, sizeof(child) - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(got, sizeof(child));
	for (i = 0; i < 8; i++)
		for (j = 0; j < 8; j++)
			assert_string_not_equal(parent[i], child[j]);
}

static void
torture_logon_success(void **state)
{
	json_t *ev = ocsf_auth_logon(&alice, true, NULL, T0);
	json_t *user, *session, *src, *dst, *svc;

	assert_non_null(ev);
	check_base(ev, 3002, 1, 1, T0);
	assert_int_equal(int_at(ev, "type_uid"), 300201);
	assert_int_equal(int_at(ev, "auth_protocol_id"), 4);
	assert_string_equal(str_at(ev, "auth_protocol"), "OpenID");
	assert_int_equal(int_at(ev, "logon_type_id"), 10);
	assert_true(json_is_true(json_object_get(ev, "is_remote")));
	assert_null(json_object_get(ev, "status_detail"));

	user = json_object_get(ev, "user");
	assert_string_equal(str_at(user, "name"), "alice");
	assert_string_equal(str_at(user, "uid"), "sub-1234");
	session = json_object_get(ev, "session");
	assert_string_equal(str_at(session, "uid"), alice.session_uid);
	assert_string_equal(str_at(session, "issuer"), alice.issuer);
	assert_int_equal(int_at(session, "created_time"), alice.session_created_ms);
	assert_int_equal(int_at(session, "expiration_time"), alice.session_expires_ms);
	src = json_object_get(ev, "src_endpoint");
	assert_string_equal(str_at(src, "ip"), "192.0.2.10");
	assert_int_equal(int_at(src, "port"), 54321);
	dst = json_object_get(ev, "dst_endpoint");
	assert_string_equal(str_at(dst, "ip"), "198.51.100.1");
	assert_int_equal(int_at(dst, "port"), 22);
	svc = json_object_get(ev, "service");
	assert_string_equal(str_at(svc, "name"), "saw-brokerd");
	assert_non_null(strstr(str_at(ev, "message"), "alice"));
	check_round_trip(ev);
	json_decref(ev);
}

static void
torture_logon_failure(void **state)
{
	struct ocsf_subject s = { .username = "mallory", .src_ip = "203.0.113.9" };
	json_t *ev = ocsf_auth_logon(&s, false, "not in the required group saw-users", T0);

	assert_non_null(ev);
	check_base(ev, 3002, 1, 2, T0);
	assert_string_equal(str_at(ev, "status_detail"), "not in the required group saw-users");
	assert_non_null(strstr(str_at(ev, "message"), "not in the required group"));
	/* Unknown members are omitted, not null. */
	assert_null(json_object_get(json_object_get(ev, "user"), "uid"));
	assert_null(json_object_get(ev, "session"));
	assert_null(json_object_get(ev, "dst_endpoint"));
	assert_null(json_object_get(json_object_get(ev, "src_endpoint"), "port"));
	check_round_trip(ev);
	json_decref(ev);
}

static void
torture_logon_empty_subject(void **state)
{
	struct ocsf_subject s = { 0 };
	json_t *ev = ocsf_auth_logon(&s, false, NULL, T0);

	assert_non_null(ev);
	/* Authentication requires a user: someone we could not name is "unknown". */
	assert_string_equal(str_at(json_object_get(ev, "user"), "name"), "unknown");
	assert_null(json_object_get(ev, "session"));
	assert_null(json_object_get(ev, "src_endpoint"));
	assert_null(json_object_get(ev, "dst_endpoint"));
	assert_null(json_object_get(ev, "status_detail"));
	str_at(ev, "message");
	check_round_trip(ev);
	json_decref(ev);

	ev = ocsf_auth_logoff(NULL, NULL, T0);
	assert_non_null(ev);
	check_base(ev, 3002, 2, 1, T0);
	json_decref(ev);
}

static void
torture_logoff(void **state)
{
	json_t *ev = ocsf_auth_logoff(&alice, "revoked", T0);

	assert_non_null(ev);
	check_base(ev, 3002, 2, 1, T0);
	assert_int_equal(int_at(ev, "type_uid"), 300202);
	assert_string_equal(str_at(ev, "status_detail"), "revoked");
	assert_string_equal(str_at(json_object_get(ev, "session"), "expiration_reason"), "revoked");
	assert_non_null(strstr(str_at(ev, "message"), "revoked"));
	check_round_trip(ev);
	json_decref(ev);
}

static void
torture_ssh_activity(void **state)
{
	json_t *ev, *meta, *profiles, *actor;

	ev = ocsf_ssh_activity(OCSF_SSH_OPEN, &alice, OCSF_SSH_AUTH_PUBKEY, NULL, T0);
	assert_non_null(ev);
	check_base(ev, 4007, 1, 1, T0);
	assert_int_equal(int_at(ev, "type_uid"), 400701);
	assert_int_equal(int_at(ev, "auth_type_id"), 6);
	assert_string_equal(str_at(ev, "auth_type"), "Public Key");
	assert_string_equal(str_at(json_object_get(ev, "src_endpoint"), "ip"), "192.0.2.10");
	assert_int_equal(int_at(json_object_get(ev, "dst_endpoint"), "port"), 22);
	actor = json_object_get(ev, "actor");
	assert_non_null(actor);
	assert_string_equal(str_at(json_object_get(actor, "user"), "name"), "alice");
	assert_string_equal(str_at(json_object_get(actor, "user"), "uid"), "sub-1234");
	meta = json_object_get(ev, "metadata");
	profiles = json_object_get(meta, "profiles");
	assert_true(json_is_array(profiles));
	assert_int_equal(json_array_size(profiles), 1);
	assert_string_equal(json_string_value(json_array_get(profiles, 0)), "host");
	check_round_trip(ev);
	json_decref(ev);

	ev = ocsf_ssh_activity(OCSF_SSH_CLOSE, &alice, OCSF_SSH_AUTH_KBDINT, "client closed", T0);
	check_base(ev, 4007, 2, 1, T0);
	assert_int_equal(int_at(ev, "auth_type_id"), 4);
	assert_string_equal(str_at(ev, "auth_type"), "Keyboard Interactive");
	assert_string_equal(str_at(ev, "status_detail"), "client closed");
	json_decref(ev);
}

static void
torture_ssh_refuse_anonymous(void **state)
{
	struct ocsf_subject s = { .src_ip = "2001:db8::1", .src_port = 4000 };
	json_t *ev = ocsf_ssh_activity(OCSF_SSH_REFUSE, &s, 0, "too many connections", T0);

	assert_non_null(ev);
	check_base(ev, 4007, 5, 2, T0);
	assert_int_equal(int_at(ev, "type_uid"), 400705);
	assert_string_equal(str_at(ev, "status_detail"), "too many connections");
	assert_null(json_object_get(ev, "auth_type_id"));
	/* No actor, hence no host profile. */
	assert_null(json_object_get(ev, "actor"));
	assert_null(json_object_get(json_object_get(ev, "metadata"), "profiles"));
	assert_null(json_object_get(ev, "dst_endpoint"));
	check_round_trip(ev);
	json_decref(ev);
}

/* A username from the wire that is not UTF-8 must not make the record disappear. */
static void
torture_invalid_utf8(void **state)
{
	struct ocsf_subject s = { .username = "bad\xff\xfename\n" };
	json_t *ev = ocsf_auth_logon(&s, false, "unknown user", T0);

	assert_non_null(ev);
	assert_string_equal(str_at(json_object_get(ev, "user"), "name"), "bad??name\n");
	check_round_trip(ev);
	json_decref(ev);
}

static void
torture_now_ms(void **state)
{
	int64_t now = ocsf_now_ms();

	/* After 2020-01-01 and before 2100-01-01, in milliseconds. */
	assert_true(now > 1577836800000LL);
	assert_true(now < 4102444800000LL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torture_event_new),
		cmocka_unit_test(torture_event_uid_unique),
		cmocka_unit_test(torture_event_uid_many_unique),
		cmocka_unit_test(torture_event_uid_fork),
		cmocka_unit_test(torture_logon_success),
		cmocka_unit_test(torture_logon_failure),
		cmocka_unit_test(torture_logon_empty_subject),
		cmocka_unit_test(torture_logoff),
		cmocka_unit_test(torture_ssh_activity),
		cmocka_unit_test(torture_ssh_refuse_anonymous),
		cmocka_unit_test(torture_invalid_utf8),
		cmocka_unit_test(torture_now_ms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
