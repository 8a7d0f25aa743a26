/*
 * Every event type audit/ocsf.c builds, checked against the OCSF 1.8.0 definition of its
 * class (tests/data/ocsf/, see its README): required attributes, constraints, attribute names
 * (class, base event, declared profiles), nested objects, type_uid arithmetic, activity ids.
 * A record as the file sink writes it (with the hash chain in "unmapped") is checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/chain.h"
#include "audit/ocsf.h"

#define T0 1700000000123LL

static json_t *classes; /* uid (as string) -> definition */
static json_t *base_def, *objects;

static json_t *
load(const char *name)
{
	const char *src = getenv("SAW_TEST_SRCDIR");
	char path[4096];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/data/ocsf/%s", src != NULL ? src : "..", name);
	j = json_load_file(path, 0, &jerr);
	if (j == NULL)
		fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
	return j;
}

static int
setup(void **state)
{
	static const char *const files[] = {
		"authentication.json",	 "ssh_activity.json",	   "event_log_activity.json",
		"network_activity.json", "http_activity.json",	   "process_activity.json",
		"account_change.json",	 "authorize_session.json", "api_activity.json",
	};
	char key[16];
	size_t i;

	classes = json_object();
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		json_t *c = load(files[i]);

		snprintf(key, sizeof(key), "%lld",
			 (long long)json_integer_value(json_object_get(c, "uid")));
		json_object_set_new(classes, key, c);
	}
	base_def = load("base_event.json");
	objects = load("objects.json");
	return 0;
}

static int
teardown(void **state)
{
	json_decref(classes);
	json_decref(base_def);
	json_decref(objects);
	return 0;
}

static char why[512];

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return -1;
}

static bool
in_list(json_t *list, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		if (strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

static int
check_constraints(const char *where, json_t *o, json_t *def)
{
	json_t *group, *name;
	size_t i, j;
	int n;

	json_array_foreach(json_object_get(def, "required"), i, name) {
		if (json_object_get(o, json_string_value(name)) == NULL)
			return bad("%s: required attribute %s missing", where,
				   json_string_value(name));
	}
	json_array_foreach(json_object_get(def, "at_least_one"), i, group) {
		n = 0;
		json_array_foreach(group, j, name) {
			n += json_object_get(o, json_string_value(name)) != NULL;
		}
		if (n == 0)
			return bad("%s: needs at least one of a group", where);
	}
	json_array_foreach(json_object_get(def, "just_one"), i, group) {
		n = 0;
		json_array_foreach(group, j, name) {
			n += json_object_get(o, json_string_value(name)) != NULL;
		}
		if (n != 1)
			return bad("%s: needs exactly one of a group", where);
	}
	return 0;
}

static int
check_object(const char *where, const char *type, json_t *o)
{
	json_t *def = json_object_get(objects, type), *types, *v;
	const char *key;
	char sub[256];

	if (def == NULL)
		return bad("%s: no definition for object type %s in tests/data/ocsf", where, type);
	if (!json_is_object(o))
		return bad("%s: must be an object (%s)", where, type);
	if (check_constraints(where, o, def))
		return -1;
	types = json_object_get(def, "objects");
	json_object_foreach(o, key, v) {
		if (!in_list(json_object_get(def, "attributes"), key))
			return bad("%s: %s is not an attribute of the %s object", where, key, type);
		if (json_object_get(types, key) != NULL) {
			snprintf(sub, sizeof(sub), "%s.%s", where, key);
			if (check_object(sub, json_string_value(json_object_get(types, key)), v))
				return -1;
		}
	}
	return 0;
}

/* Checks one event against its class: 0, or -1 with the reason in why. */
static int
check_event(json_t *ev)
{
	json_int_t class_uid = json_integer_value(json_object_get(ev, "class_uid"));
	json_int_t activity = json_integer_value(json_object_get(ev, "activity_id"));
	json_t *cls, *profiles, *p, *v, *acts, *ctypes, *btypes, *pattrs;
	char key[16], where[64], sub[128];
	const char *name, *type;
	size_t i;
	bool allowed;

	snprintf(key, sizeof(key), "%lld", (long long)class_uid);
	cls = json_object_get(classes, key);
	if (cls == NULL)
		return bad("class_uid %s has no definition in tests/data/ocsf", key);
	snprintf(where, sizeof(where), "%s (%s)", json_string_value(json_object_get(cls, "name")),
		 key);

	if (check_constraints(where, ev, base_def) || check_constraints(where, ev, cls))
		return -1;
	if (json_integer_value(json_object_get(ev, "category_uid")) !=
	    json_integer_value(json_object_get(cls, "category_uid")))
		return bad("%s: wrong category_uid", where);
	if (json_integer_value(json_object_get(ev, "type_uid")) != class_uid * 100 + activity)
		return bad("%s: type_uid is not class_uid * 100 + activity_id", where);
	snprintf(key, sizeof(key), "%lld", (long long)activity);
	acts = json_object_get(cls, "activities");
	if (activity != 0 && activity != 99 && json_object_get(acts, key) == NULL)
		return bad("%s: activity_id %s is not defined", where, key);
	if (json_object_get(ev, "activity_name") != NULL && activity != 0 && activity != 99 &&
	    !json_equal(json_object_get(ev, "activity_name"), json_object_get(acts, key)))
		return bad("%s: activity_name does not match activity_id", where);
	if (json_object_get(ev, "class_name") != NULL &&
	    !json_equal(json_object_get(ev, "class_name"), json_object_get(cls, "caption")))
		return bad("%s: class_name does not match class_uid", where);
	v = json_object_get(ev, "severity_id");
	if (!json_is_integer(v) || !((json_integer_value(v) >= 0 && json_integer_value(v) <= 6) ||
				     json_integer_value(v) == 99))
		return bad("%s: bad severity_id", where);
	v = json_object_get(ev, "status_id");
	if (v != NULL && !(json_integer_value(v) == 0 || json_integer_value(v) == 1 ||
			   json_integer_value(v) == 2 || json_integer_value(v) == 99))
		return bad("%s: bad status_id", where);
	if (!json_is_integer(json_object_get(ev, "time")) ||
	    json_integer_value(json_object_get(ev, "time")) <= 0)
		return bad("%s: time must be epoch milliseconds", where);

	profiles = json_object_get(json_object_get(ev, "metadata"), "profiles");
	ctypes = json_object_get(cls, "objects");
	btypes = json_object_get(base_def, "objects");
	json_object_foreach(ev, name, v) {
		allowed = in_list(json_object_get(base_def, "attributes"), name) ||
			  in_list(json_object_get(cls, "attributes"), name);
		json_array_foreach(profiles, i, p) {
			pattrs = json_object_get(json_object_get(base_def, "profiles"),
						 json_string_value(p));
			if (pattrs == NULL)
				return bad("%s: unknown profile %s", where, json_string_value(p));
			allowed = allowed || in_list(pattrs, name);
		}
		if (!allowed)
			return bad(
				"%s: %s is not an attribute of the class (nor of a declared profile)",
				where, name);
		type = json_string_value(json_object_get(ctypes, name));
		if (type == NULL)
			type = json_string_value(json_object_get(btypes, name));
		if (type != NULL) {
			snprintf(sub, sizeof(sub), "%s: %s", where, name);
			if (check_object(sub, type, v))
				return -1;
		}
	}
	/* unmapped is the base event's free-form object: only its type is defined. */
	v = json_object_get(ev, "unmapped");
	if (v != NULL && !json_is_object(v))
		return bad("%s: unmapped must be an object", where);
	return 0;
}

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
	.workspace = "alice-ws",
	.profile = "corporate",
};

static void
check_and_free(json_t *ev)
{
	assert_non_null(ev);
	if (check_event(ev) != 0)
		fail_msg("%s", why);
	json_decref(ev);
}

/* Every builder, with a full subject, an empty one and none. */
static void
torture_every_event_type(void **state)
{
	static const struct ocsf_subject empty;
	static const struct ocsf_subject addr_only = { .src_ip = "2001:db8::1", .src_port = 4000 };
	const struct ocsf_subject *subjects[] = { &alice, &empty, &addr_only, NULL };
	static const enum ocsf_ssh_activity ssh[] = { OCSF_SSH_OPEN, OCSF_SSH_CLOSE,
						      OCSF_SSH_REFUSE };
	static const enum ocsf_event_log_activity logs[] = { OCSF_EVENT_LOG_ROTATE,
							     OCSF_EVENT_LOG_START,
							     OCSF_EVENT_LOG_STOP };
	size_t i, k;

	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		check_and_free(ocsf_auth_logon(subjects[i], true, NULL, T0));
		check_and_free(ocsf_auth_logon(subjects[i], false, "not in group", T0));
		check_and_free(ocsf_auth_logoff(subjects[i], "revoked", T0));
		for (k = 0; k < sizeof(ssh) / sizeof(ssh[0]); k++) {
			check_and_free(ocsf_ssh_activity(ssh[k], subjects[i], OCSF_SSH_AUTH_PUBKEY,
							 NULL, T0));
			check_and_free(ocsf_ssh_activity(ssh[k], subjects[i], OCSF_SSH_AUTH_KBDINT,
							 "why", T0));
			check_and_free(ocsf_ssh_activity(ssh[k], subjects[i], 0, NULL, T0));
		}
	}
	for (k = 0; k < sizeof(logs) / sizeof(logs[0]); k++) {
		check_and_free(ocsf_event_log(logs[k], "/var/log/saw/audit.jsonl", "saw-brokerd",
					      "started", T0));
		check_and_free(ocsf_event_log(logs[k], NULL, NULL, NULL, T0));
	}
}

/* The builders of issue 6: network, HTTP, process, API and account events, with full,
 * partial and missing arguments (every one must still be a compliant event). */
static void
torture_new_builders(void **state)
{
	static const struct ocsf_subject empty;
	static const struct ocsf_subject name_only = { .username = "bob" };
	static const struct ocsf_subject app = { .app_name = "https://idp.example.com" };
	const struct ocsf_subject *subjects[] = { &alice, &empty, &name_only, &app, NULL };
	static const struct ocsf_endpoint src = { .ip = "10.0.0.2", .port = 40000 };
	static const struct ocsf_endpoint dst = { .ip = "203.0.113.7",
						  .hostname = "api.example.com",
						  .port = 443 };
	static const struct ocsf_endpoint port_only = { .port = 80 };
	static const struct ocsf_endpoint svc = { .svc_name = "saw-admin" };
	const struct ocsf_endpoint *eps[] = { &src, &dst, &port_only, &svc, NULL };
	static const enum ocsf_net_activity net[] = { OCSF_NET_OPEN, OCSF_NET_CLOSE, OCSF_NET_RESET,
						      OCSF_NET_FAIL, OCSF_NET_REFUSE };
	static const char *const methods[] = { "GET", "POST", "PATCH", "CONNECT", "BREW", NULL };
	static const enum ocsf_api_activity api[] = { OCSF_API_CREATE, OCSF_API_READ,
						      OCSF_API_UPDATE, OCSF_API_DELETE };
	size_t i, j, k;
	json_t *ev;

	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		for (j = 0; j < sizeof(eps) / sizeof(eps[0]); j++) {
			for (k = 0; k < sizeof(net) / sizeof(net[0]); k++) {
				check_and_free(ocsf_network_activity(net[k], subjects[i], eps[j],
								     &dst, "rule x", NULL, T0));
				check_and_free(ocsf_network_activity(net[k], subjects[i], eps[j],
								     eps[j], NULL, "m", T0));
				/* a tunnel's close carries its byte counts */
				ev = ocsf_network_activity(net[k], subjects[i], eps[j], &dst, NULL,
							   NULL, T0);
				assert_int_equal(ocsf_set_traffic(ev, 10, 20), 0);
				check_and_free(ev);
			}
			for (k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
				check_and_free(ocsf_http_activity(
					subjects[i], eps[j], NULL, methods[k], "api.example.com",
					"/v1/x", 200, true, "forwarded", NULL, T0));
				check_and_free(ocsf_http_activity(subjects[i], eps[j], eps[j],
								  methods[k], NULL, NULL, 0, false,
								  NULL, NULL, T0));
			}
			for (k = 0; k < sizeof(api) / sizeof(api[0]); k++) {
				check_and_free(ocsf_api_activity(api[k], "POST /v1/revoke",
								 subjects[i], eps[j], 200, true,
								 NULL, NULL, T0));
				check_and_free(ocsf_api_activity(api[k], NULL, subjects[i], eps[j],
								 0, false, "bad signature", NULL,
								 T0));
				/* through the HTTP API: the request's method and path */
				ev = ocsf_api_activity(api[k], "user.lock", subjects[i], eps[j],
						       401, false, "invalid token", NULL, T0);
				assert_int_equal(
					ocsf_set_http_request(ev, "POST", "/v1/users/a/lock"), 0);
				assert_int_equal(ocsf_set_unmapped(ev, "workspace", "w"), 0);
				check_and_free(ev);
			}
		}
		check_and_free(ocsf_process_activity(OCSF_PROCESS_LAUNCH, subjects[i], 4242,
						     "saw-sandbox", -1, true, NULL, T0));
		check_and_free(ocsf_process_activity(OCSF_PROCESS_LAUNCH, subjects[i], 0, NULL, -1,
						     false, "clone failed", T0));
		check_and_free(ocsf_process_activity(OCSF_PROCESS_TERMINATE, subjects[i], 4242,
						     "saw-sandbox", 3, true, "exited", T0));
	}
	check_and_free(ocsf_account_change(OCSF_ACCOUNT_LOCK, "alice", "sub-1", "admin",
					   "session revoked", NULL, T0));
	check_and_free(
		ocsf_account_change(OCSF_ACCOUNT_UNLOCK, "alice", NULL, NULL, NULL, NULL, T0));
	check_and_free(
		ocsf_account_change(OCSF_ACCOUNT_LOCK, NULL, "sub-1", "admin", NULL, "m", T0));
	check_and_free(ocsf_account_change(OCSF_ACCOUNT_LOCK, NULL, NULL, NULL, NULL, NULL, T0));
	check_and_free(ocsf_policy_attach("workspace:alice-ws", "/etc/saw/policy.json", NULL, "7",
					  "corporate profile, 12 rules", true, NULL, NULL, T0));
	check_and_free(ocsf_policy_attach("workspace:alice-ws", "/etc/saw/policy.json", NULL, NULL,
					  NULL, false, "/etc/saw/policy.json:3:5: unknown field",
					  NULL, T0));
	check_and_free(ocsf_policy_attach(NULL, NULL, "p-1", NULL, NULL, true, NULL, "m", T0));
	check_and_free(ocsf_policy_attach(NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, T0));

	/* What the builders promise beyond compliance. */
	ev = ocsf_http_activity(&alice, &src, NULL, "POST", "api.example.com", "/v1/x", 201, true,
				NULL, NULL, T0);
	assert_int_equal(json_integer_value(json_object_get(ev, "activity_id")), 6);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(ev, "http_request"), "url"), "hostname")),
		"api.example.com");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(ev, "http_response"), "code")),
		201);
	json_decref(ev);
	ev = ocsf_network_activity(OCSF_NET_REFUSE, &alice, &src, &dst, "denied", NULL, T0);
	assert_int_equal(json_integer_value(json_object_get(ev, "status_id")), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(ev, "actor"), "user"), "name")),
			    "alice");
	json_decref(ev);
	ev = ocsf_account_change(OCSF_ACCOUNT_UNLOCK, "k", NULL, "a", NULL, NULL, T0);
	assert_int_equal(json_integer_value(json_object_get(ev, "type_uid")), 300112);
	json_decref(ev);
	/* the brokered context travels in unmapped; a failed tunnel is a failure */
	ev = ocsf_network_activity(OCSF_NET_FAIL, &alice, &src, &dst, "jump host down", NULL, T0);
	assert_int_equal(json_integer_value(json_object_get(ev, "status_id")), 2);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ev, "unmapped"), "workspace")),
		"alice-ws");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ev, "unmapped"), "profile")),
		"corporate");
	json_decref(ev);
	ev = ocsf_api_activity(OCSF_API_CREATE, "POST /v1/revocation/events", &app, NULL, 202, true,
			       NULL, NULL, T0);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ev, "actor"), "app_name")),
		"https://idp.example.com");
	json_decref(ev);
	ev = ocsf_policy_attach("workspace:w", "/p", NULL, "3", NULL, false, "bad", NULL, T0);
	assert_int_equal(json_integer_value(json_object_get(ev, "type_uid")), 300107);
	assert_true(json_is_false(json_object_get(json_object_get(ev, "policy"), "is_applied")));
	json_decref(ev);
	/* invalid UTF-8 from a peer keeps the field */
	ev = ocsf_http_activity(NULL, NULL, NULL, "GET", "h\xff", "/\xfe", 0, false, NULL, NULL,
				T0);
	assert_non_null(ev);
	if (check_event(ev) != 0)
		fail_msg("%s", why);
	json_decref(ev);
}

/* The checker itself refuses what it should (so a passing run means something). */
static void
torture_checker_refuses(void **state)
{
	json_t *ev = ocsf_auth_logon(&alice, true, NULL, T0), *c;

	assert_int_equal(check_event(ev), 0);
	c = json_deep_copy(ev);
	json_object_del(c, "user"); /* required */
	assert_int_equal(check_event(c), -1);
	json_decref(c);
	c = json_deep_copy(ev);
	json_object_del(c, "service"); /* at_least_one service, dst_endpoint */
	json_object_del(c, "dst_endpoint");
	assert_int_equal(check_event(c), -1);
	json_decref(c);
	c = json_deep_copy(ev);
	json_object_set_new(c, "made_up", json_true()); /* not an attribute */
	assert_int_equal(check_event(c), -1);
	json_decref(c);
	c = json_deep_copy(ev);
	json_object_set_new(c, "actor", json_pack("{ss}", "app_name", "x"));
	assert_int_equal(check_event(c), 0); /* iam classes define actor */
	json_object_set_new(json_object_get(c, "user"), "issuer", json_string("x"));
	assert_int_equal(check_event(c), -1); /* nested: not a user attribute */
	json_decref(c);
	c = json_deep_copy(ev);
	json_object_set_new(c, "type_uid", json_integer(300299));
	assert_int_equal(check_event(c), -1);
	json_decref(c);
	c = json_deep_copy(ev);
	json_object_set_new(c, "activity_id", json_integer(42));
	json_object_set_new(c, "type_uid", json_integer(300242));
	assert_int_equal(check_event(c), -1);
	json_decref(c);
	json_decref(ev);

	/* SSH Activity: actor only with the host profile declared. */
	ev = ocsf_ssh_activity(OCSF_SSH_OPEN, &alice, OCSF_SSH_AUTH_PUBKEY, NULL, T0);
	assert_int_equal(check_event(ev), 0);
	json_object_del(json_object_get(ev, "metadata"), "profiles");
	assert_int_equal(check_event(ev), -1);
	json_decref(ev);
}

/* A record as the file sink writes it: the chain member keeps it compliant. */
static void
torture_chained_record(void **state)
{
	json_t *ev = ocsf_ssh_activity(OCSF_SSH_OPEN, &alice, OCSF_SSH_AUTH_PUBKEY, NULL, T0);
	json_t *um = json_incref(json_object_get(ev, "unmapped"));
	char *s, *x, out[8192];
	size_t n;
	json_t *back;

	/* as the file sink does: the event's own unmapped data (workspace, profile) is merged
	 * with the chain members */
	assert_non_null(um);
	json_object_del(ev, "unmapped");
	s = json_dumps(ev, JSON_COMPACT);
	x = json_dumps(um, JSON_COMPACT);
	assert_non_null(s);
	assert_non_null(x);
	n = chain_splice(s, strlen(s), x, strlen(x), CHAIN_GENESIS, 7, out, sizeof(out));
	assert_true(n > 0);
	back = json_loadb(out, n, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(back);
	if (check_event(back) != 0)
		fail_msg("%s", why);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(back, "unmapped"), "seq")), 7);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(back, "unmapped"), "workspace")),
		"alice-ws");
	json_decref(back);
	json_decref(ev);
	json_decref(um);
	free(s);
	free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torture_every_event_type),
		cmocka_unit_test(torture_new_builders),
		cmocka_unit_test(torture_checker_refuses),
		cmocka_unit_test(torture_chained_record),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
