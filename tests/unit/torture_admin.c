/*
 * The admin protocol (broker-admin.c): admin_dispatch / admin_request against an in-memory
 * store, and the socket itself (admin_open) on a real event loop.
 *
 * workspace_is_online / workspace_disconnect are defined here so the tests control them: the
 * broker's own (broker-workspace.c) is never pulled from the static library, since nothing
 * the test links needs another symbol of that file.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "broker/broker-admin.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMN2x7MynAK6JcLFYVersIeJTKULA0+pjQ5dD4dSPblX"
#define FP1 "SHA256:y4nDGCKg95/6e3IoYkb5owopHsMdlzE4NeibOQ5dNAU"
#define KEY2 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhJeSpjtyy7Y6Dktaljxqg7iG2C9YBzuCGW0guDAeVV"
#define FP2 "SHA256:K7p2HdvrHuHgBHjiYvZr0m9jurejjLon5d980/4mRZA"
#define KEY3_B64                                                                                  \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHDYa9hR4J/QsIoDQWZXbOVIDA+mHQLuHp9" \
	"Ndx++unL6dtj02gnBpPtfhYjBfcbUu/9SCCFv9M7XVznPClLsPDs="
#define KEY3 "ecdsa-sha2-nistp256 " KEY3_B64
#define FP3 "SHA256:QYO/rr5LDsonkEb81kquQrPqGJn1uF4AqYsh+F5Wh8A"

/* ---- the workspace connections, as the tests want them -------------------------------- */

static char online_name[64];
static char disconnected[64];
static char disconnect_reason[128];

bool
workspace_is_online(struct broker *b, const char *name)
{
	return strcmp(name, online_name) == 0;
}

void
workspace_disconnect(struct broker *b, const char *name, const char *reason)
{
	snprintf(disconnected, sizeof(disconnected), "%s", name);
	snprintf(disconnect_reason, sizeof(disconnect_reason), "%s", reason);
}

/* ---- the audit (broker.c), recorded -------------------------------------------------------- */

static int audited_calls, audited_refusals;
static char audited_op[64];

void
broker_audit_api(struct broker *b, const struct broker_api_call *call)
{
	audited_calls++;
	if (!call->success)
		audited_refusals++;
	snprintf(audited_op, sizeof(audited_op), "%s", call->operation ? call->operation : "");
}

/* ---- the revocation core (broker-revoke.c), recorded ------------------------------------ */

static char last_revoke[256];
static char last_actor[128];

int64_t
broker_now(void)
{
	return (int64_t)time(NULL);
}

int
revoke_session(struct broker *b, const char *session_id, const char *why, const char *actor)
{
	snprintf(last_revoke, sizeof(last_revoke), "session %s: %s", session_id, why);
	snprintf(last_actor, sizeof(last_actor), "%s", actor);
	return store_session_end(b->store, session_id, STORE_REVOKED, why, broker_now()) == 0 ? 0 :
												1;
}

int
revoke_matching(struct broker *b, const struct store_filter *f, const char *why, const char *actor,
		int *count)
{
	snprintf(last_revoke, sizeof(last_revoke), "match sub=%s user=%s: %s",
		 f->sub ? f->sub : "-", f->username ? f->username : "-", why);
	snprintf(last_actor, sizeof(last_actor), "%s", actor);
	*count = 2;
	return 0;
}

int
revoke_lock_user(struct broker *b, const char *key, int64_t until, const char *message,
		 const char *actor, int *count)
{
	snprintf(last_revoke, sizeof(last_revoke), "lock %s", key);
	*count = 1;
	return store_lock_set(b->store, key, until, message, actor, broker_now());
}

int
revoke_unlock_user(struct broker *b, const char *key, const char *actor)
{
	return store_lock_clear(b->store, key);
}

int
revoke_kill_workspace(struct broker *b, const char *name, const char *why, const char *actor)
{
	snprintf(last_revoke, sizeof(last_revoke), "kill %s: %s", name, why ? why : "-");
	return store_workspace_set_killed(b->store, name, 1);
}

int
revoke_revive_workspace(struct broker *b, const char *name, const char *actor)
{
	return store_workspace_set_killed(b->store, name, 0);
}

/* ---- fixture ----------------------------------------------------------------------------- */

static int
setup(void **state)
{
	struct broker *b = calloc(1, sizeof(*b));
	char err[256];

	if (b == NULL || store_open(":memory:", &b->store, err, sizeof(err)) != 0)
		return -1;
	online_name[0] = disconnected[0] = disconnect_reason[0] = '\0';
	*state = b;
	return 0;
}

static int
teardown(void **state)
{
	struct broker *b = *state;

	store_close(b->store);
	free(b);
	return 0;
}

/* Dispatch the JSON text req; returns the response (caller decrefs). */
static json_t *
call(struct broker *b, const char *req_text)
{
	json_error_t jerr;
	json_t *req = json_loads(req_text, JSON_DECODE_ANY, &jerr), *resp = NULL;

	if (req == NULL)
		fail_msg("bad test JSON %s: %s", req_text, jerr.text);
	assert_int_equal(admin_dispatch(b, req, &resp), 0);
	assert_non_null(resp);
	json_decref(req);
	return resp;
}

static void
expect_ok(struct broker *b, const char *req_text)
{
	json_t *resp = call(b, req_text);

	if (!json_is_true(json_object_get(resp, "ok")))
		fail_msg("%s -> %s", req_text, json_string_value(json_object_get(resp, "error")));
	json_decref(resp);
}

/* The request fails with an error containing want (and nothing but ok, error, id). */
static void
expect_error(struct broker *b, const char *req_text, const char *want)
{
	json_t *resp = call(b, req_text);
	const char *err = json_string_value(json_object_get(resp, "error"));
	const char *key;
	json_t *v;

	if (!json_is_false(json_object_get(resp, "ok")) || err == NULL)
		fail_msg("%s: expected an error", req_text);
	if (strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" does not contain \"%s\"", req_text, err, want);
	json_object_foreach(resp, key, v)
		assert_true(strcmp(key, "ok") == 0 || strcmp(key, "error") == 0 ||
			    strcmp(key, "id") == 0);
	json_decref(resp);
}

static void
add(struct broker *b, const char *name, const char *key, const char *profile)
{
	char req[1024];

	snprintf(req, sizeof(req),
		 "{\"op\":\"workspace.add\",\"name\":\"%s\",\"owner\":\"sub-%s\",\"pubkey\":\"%s "
		 "comment\"%s%s%s}",
		 name, name, key, profile ? ",\"profile\":\"" : "", profile ? profile : "",
		 profile ? "\"" : "");
	expect_ok(b, req);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void
torture_add(void **state)
{
	struct broker *b = *state;
	struct store_workspace w;
	json_t *resp, *ws;

	resp = call(b, "{\"op\":\"workspace.add\",\"name\":\"alice-ws\",\"owner\":\"248289761001\","
		       "\"pubkey\":\"" KEY1 " alice@laptop\\n\",\"profile\":\"public\"}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	ws = json_object_get(resp, "workspace");
	assert_string_equal(json_string_value(json_object_get(ws, "name")), "alice-ws");
	assert_string_equal(json_string_value(json_object_get(ws, "owner")), "248289761001");
	assert_string_equal(json_string_value(json_object_get(ws, "profile")), "public");
	/* the fingerprint OpenSSH prints (ssh-keygen -lf -E sha256) */
	assert_string_equal(json_string_value(json_object_get(ws, "key_fp")), FP1);
	assert_true(json_integer_value(json_object_get(ws, "created")) > 1700000000);
	assert_true(json_is_false(json_object_get(ws, "online")));
	assert_true(json_is_false(json_object_get(ws, "killed")));
	json_decref(resp);

	/* stored canonically: type and base64, no comment */
	assert_int_equal(store_workspace_get(b->store, "alice-ws", &w), 0);
	assert_string_equal(w.pubkey, KEY1);
	assert_string_equal(w.key_fp, FP1);
	assert_string_equal(w.owner_sub, "248289761001");
	store_workspace_clear(&w);

	/* profile defaults to public (least privilege); ECDSA keys are fine */
	expect_ok(b, "{\"op\":\"workspace.add\",\"name\":\"b0b\",\"owner\":\"sub b\","
		     "\"pubkey\":\"" KEY3 "\"}");
	assert_int_equal(store_workspace_get(b->store, "b0b", &w), 0);
	assert_string_equal(w.profile, "public");
	assert_string_equal(w.key_fp, FP3);
	store_workspace_clear(&w);
}

static void
torture_duplicates(void **state)
{
	struct broker *b = *state;

	add(b, "alice-ws", KEY1, NULL);
	expect_error(b,
		     "{\"op\":\"workspace.add\",\"name\":\"alice-ws\",\"owner\":\"x\","
		     "\"pubkey\":\"" KEY2 "\"}",
		     "a workspace named alice-ws already exists");
	expect_error(b,
		     "{\"op\":\"workspace.add\",\"name\":\"bob-ws\",\"owner\":\"x\","
		     "\"pubkey\":\"" KEY1 " other comment\"}",
		     "this key (" FP1 ") is already registered for workspace alice-ws");
	add(b, "bob-ws", KEY2, "corporate");
}

static void
torture_list(void **state)
{
	struct broker *b = *state;
	json_t *resp, *arr, *w;

	resp = call(b, "{\"op\":\"workspace.list\"}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(json_array_size(json_object_get(resp, "workspaces")), 0);
	json_decref(resp);

	add(b, "zed", KEY3, "public");
	add(b, "alice-ws", KEY1, "corporate");
	add(b, "bob-ws", KEY2, NULL);
	snprintf(online_name, sizeof(online_name), "bob-ws");
	resp = call(b, "{\"op\":\"workspace.list\",\"id\":7}");
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), 7);
	arr = json_object_get(resp, "workspaces");
	assert_int_equal(json_array_size(arr), 3);
	w = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(w, "name")), "alice-ws");
	assert_string_equal(json_string_value(json_object_get(w, "owner")), "sub-alice-ws");
	assert_string_equal(json_string_value(json_object_get(w, "key_fp")), FP1);
	assert_string_equal(json_string_value(json_object_get(w, "profile")), "corporate");
	assert_true(json_is_false(json_object_get(w, "online")));
	w = json_array_get(arr, 1);
	assert_string_equal(json_string_value(json_object_get(w, "name")), "bob-ws");
	assert_true(json_is_true(json_object_get(w, "online")));
	w = json_array_get(arr, 2);
	assert_string_equal(json_string_value(json_object_get(w, "name")), "zed");
	assert_string_equal(json_string_value(json_object_get(w, "profile")), "public");
	json_decref(resp);
}

static void
torture_remove(void **state)
{
	struct broker *b = *state;
	struct store_workspace w;
	json_t *resp;

	add(b, "alice-ws", KEY1, NULL);
	add(b, "bob-ws", KEY2, NULL);
	snprintf(online_name, sizeof(online_name), "alice-ws");
	resp = call(b, "{\"op\":\"workspace.remove\",\"name\":\"alice-ws\",\"id\":\"r1\"}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_string_equal(json_string_value(json_object_get(resp, "id")), "r1");
	assert_string_equal(json_string_value(json_object_get(resp, "name")), "alice-ws");
	assert_true(json_is_true(json_object_get(resp, "disconnected")));
	json_decref(resp);
	assert_string_equal(disconnected, "alice-ws");
	assert_string_equal(disconnect_reason, "workspace removed by an administrator");
	assert_int_equal(store_workspace_get(b->store, "alice-ws", &w), 1);
	assert_int_equal(store_workspace_find_by_key(b->store, FP1, &w), 1);

	/* an offline one: removed, nothing was connected */
	resp = call(b, "{\"op\":\"workspace.remove\",\"name\":\"bob-ws\"}");
	assert_true(json_is_false(json_object_get(resp, "disconnected")));
	json_decref(resp);

	disconnected[0] = '\0';
	expect_error(b, "{\"op\":\"workspace.remove\",\"name\":\"alice-ws\"}",
		     "no workspace named alice-ws");
	assert_string_equal(disconnected, ""); /* nothing to disconnect */
	/* the key may be registered again */
	add(b, "alice-2", KEY1, NULL);
}

static void
torture_validation(void **state)
{
	struct broker *b = *state;
	static const struct {
		const char *req, *want;
	} cases[] = {
		{ "[]", "a request must be a JSON object" },
		{ "\"workspace.list\"", "a request must be a JSON object" },
		{ "{}", "missing \"op\"" },
		{ "{\"op\":5}", "\"op\" must be a string" },
		{ "{\"op\":\"workspace.frob\"}", "unknown operation" },
		{ "{\"op\":\"workspace.list\",\"name\":\"x\"}",
		  "workspace.list does not take \"name\"" },
		{ "{\"op\":\"workspace.list\",\"id\":[1]}",
		  "\"id\" must be an integer or a string" },
		{ "{\"op\":\"workspace.list\",\"id\":1.5}",
		  "\"id\" must be an integer or a string" },
		{ "{\"op\":\"workspace.remove\"}", "missing \"name\"" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"\"}", "invalid workspace name" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"Alice\"}", "invalid workspace name" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"-a\"}", "invalid workspace name" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"a_b\"}", "invalid workspace name" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"a.b\"}", "invalid workspace name" },
		{ "{\"op\":\"workspace.remove\",\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaa\"}",
		  "invalid workspace name" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"pubkey\":\"" KEY1 "\"}",
		  "missing \"owner\"" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\"}",
		  "missing \"pubkey\"" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"\",\"pubkey\":\"" KEY1
		  "\"}",
		  "owner must be the owner's IdP subject" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\\u001b[2J\",\"pubkey\":"
		  "\"" KEY1 "\"}",
		  "owner must be the owner's IdP subject" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":\"" KEY1
		  "\",\"profile\":\"admin\"}",
		  "profile must be \"corporate\" or \"public\"" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":\"" KEY1
		  "\",\"profile\":null}",
		  "\"profile\" must be a string" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":\"" KEY1
		  "\",\"force\":true}",
		  "workspace.add does not take \"force\"" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":\"\"}",
		  "the public key must be one OpenSSH public key line" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":\"ssh-ed25519\"}",
		  "the public key must be one OpenSSH public key line" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"ssh-dss AAAAB3NzaC1kc3MAAACBAP\"}",
		  "unsupported key type \"ssh-dss\"" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"sk-ssh-ed25519@openssh.com AAAA\"}",
		  "unsupported key type" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"ssh-ed25519 AAAA!!!notbase64\"}",
		  "the ssh-ed25519 public key is not valid" },
		/* an ECDSA blob announced as ed25519 */
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"ssh-ed25519 " KEY3_B64 "\"}",
		  "ssh-ed25519" },
		/* a truncated ed25519 blob */
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMN2x7MynAK6JcLFYVersIeJTKULA0+pjQ5dD4\"}",
		  "not valid" },
		{ "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"o\",\"pubkey\":"
		  "\"-----BEGIN OPENSSH PRIVATE KEY-----\"}",
		  "unsupported key type" },
	};
	struct store_workspace w;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(b, cases[i].req, cases[i].want);
	/* nothing was stored by any of them */
	assert_int_equal(store_workspace_get(b->store, "a", &w), 1);

	/* the id comes back with the error too */
	{
		json_t *resp = call(b, "{\"op\":\"nope\",\"id\":\"x-1\"}");

		assert_string_equal(json_string_value(json_object_get(resp, "id")), "x-1");
		json_decref(resp);
	}
}

static void
torture_ping(void **state)
{
	json_t *resp = call(*state, "{\"op\":\"ping\"}");

	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(json_integer_value(json_object_get(resp, "protocol")),
			 ADMIN_PROTOCOL_VERSION);
	assert_string_equal(json_string_value(json_object_get(resp, "version")), SAW_VERSION);
	json_decref(resp);
}

/* ---- admin_request: the JSON line layer ------------------------------------------------- */

static void
expect_line_error(struct broker *b, const char *line, size_t len, const char *want)
{
	char *out = NULL;

	assert_int_equal(admin_request(b, line, len, &out), 0);
	assert_non_null(out);
	if (strstr(out, "\"ok\":false") == NULL || strstr(out, want) == NULL)
		fail_msg("answer %s does not contain %s", out, want);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* exactly one line */
	free(out);
}

static void
torture_request_lines(void **state)
{
	struct broker *b = *state;
	char *out = NULL, *big;
	const char *req;

	req = "{\"op\":\"workspace.add\",\"name\":\"a\",\"owner\":\"line\\nbreak\",\"pubkey\":\"" KEY1
	      "\"}";
	expect_line_error(b, req, strlen(req), "owner must be");
	expect_line_error(b, "{", 1, "the request is not valid JSON");
	expect_line_error(b, "42", 2, "a request must be a JSON object");
	expect_line_error(b, "", 0, "the request is not valid JSON");
	expect_line_error(b, "{\"op\":\"ping\"} {}", 16, "the request is not valid JSON");
	expect_line_error(b, "{\"op\":\"ping\",\"op\":\"workspace.list\"}", 35,
			  "the request is not valid JSON (duplicate object key");
	expect_line_error(b, "{\"op\":\"pi\0ng\"}", 14, "not valid JSON");
	expect_line_error(b, "{\"op\":\"\xff\"}", 10, "not valid JSON");
	big = malloc(ADMIN_MAX_LINE + 2);
	assert_non_null(big);
	memset(big, ' ', ADMIN_MAX_LINE + 1);
	expect_line_error(b, big, ADMIN_MAX_LINE + 1, "request longer than 65536 bytes");
	free(big);

	/* not NUL-terminated input is fine */
	assert_int_equal(admin_request(b, "{\"op\":\"ping\"}XXXX", 13, &out), 0);
	assert_non_null(strstr(out, "\"ok\":true"));
	assert_non_null(strstr(out, "\"protocol\":1"));
	free(out);
}

/* ---- the socket ----------------------------------------------------------------------- */

struct sockfix {
	struct broker *b;
	char dir[PATH_MAX];
	char path[PATH_MAX + 32];
};

static int
sock_setup(void **state)
{
	struct sockfix *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (f == NULL || setup((void **)&f->b) != 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/torture_admin.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/admin.sock", f->dir);
	f->b->cfg.admin_socket = f->path;
	if ((f->b->base = event_base_new()) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
sock_teardown(void **state)
{
	struct sockfix *f = *state;

	admin_close(f->b);
	event_base_free(f->b->base);
	unlink(f->path);
	rmdir(f->dir);
	teardown((void **)&f->b);
	free(f);
	return 0;
}

static int
client_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Runs the loop until fd has an answer line (or EOF); returns what was read. */
static char *
client_read(struct broker *b, int fd, bool want_eof)
{
	static char buf[1 << 16];
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int i;

	for (i = 0; i < 2000; i++) {
		event_base_loop(b->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) == 1) {
			n = read(fd, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			if (!want_eof && memchr(buf, '\n', len) != NULL)
				break;
		}
	}
	buf[len] = '\0';
	return buf;
}

static void
torture_socket(void **state)
{
	struct sockfix *f = *state;
	struct stat sb;
	char *ans, *big;
	size_t off;
	ssize_t n;
	int fd, fd2;

	/* a stale socket left by a dead broker is replaced */
	{
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		assert_true(strlen(f->path) < sizeof(sun.sun_path));
		memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
		assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
		close(s);
	}
	assert_int_equal(admin_open(f->b), 0);
	assert_int_equal(lstat(f->path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0660);

	/* a live one is not taken over */
	{
		struct broker other = { 0 };

		other.cfg.admin_socket = f->path;
		other.base = f->b->base;
		assert_int_equal(admin_open(&other), -1);
	}

	/* our own uid may talk; two requests in one write, answered in order (and audited) */
	audited_calls = audited_refusals = 0;
	fd = client_connect(f->path);
	{
		static const char two[] =
			"{\"op\":\"ping\",\"id\":1}\r\n\n{\"op\":\"workspace.list\",\"id\":2}\n";

		assert_true(write(fd, two, sizeof(two) - 1) == (ssize_t)(sizeof(two) - 1));
	}
	ans = client_read(f->b, fd, false);
	assert_non_null(strstr(ans, "\"id\":1"));
	if (strstr(ans, "\"id\":2") == NULL)
		ans = client_read(f->b, fd, false);
	assert_non_null(strstr(ans, "\"id\":2"));
	assert_non_null(strstr(ans, "\"workspaces\":[]"));
	assert_int_equal(audited_calls, 2);
	assert_int_equal(audited_refusals, 0);
	assert_string_equal(audited_op, "workspace.list");

	/* a last request without "\n", then the client shuts its side: answered, closed */
	assert_true(write(fd, "{\"op\":\"ping\",\"id\":3}", 20) == 20);
	shutdown(fd, SHUT_WR);
	ans = client_read(f->b, fd, true);
	assert_non_null(strstr(ans, "\"id\":3"));
	close(fd);

	/* a line over the cap: an error, then the connection is closed */
	fd2 = client_connect(f->path);
	big = malloc(ADMIN_MAX_LINE + 100);
	assert_non_null(big);
	memset(big, 'x', ADMIN_MAX_LINE + 100);
	for (off = 0; off < ADMIN_MAX_LINE + 100; off += (size_t)n) {
		struct pollfd p = { .fd = fd2, .events = POLLOUT };

		event_base_loop(f->b->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) != 1) {
			n = 0;
			continue;
		}
		n = send(fd2, big + off, ADMIN_MAX_LINE + 100 - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET)) {
			if (errno != EAGAIN)
				break;
			n = 0;
		}
		assert_true(n >= 0);
	}
	free(big);
	ans = client_read(f->b, fd2, true);
	assert_non_null(strstr(ans, "request line longer than 65536 bytes"));
	close(fd2);
	assert_true(audited_refusals >= 1); /* the over-long line is an audited refusal */

	/* admin_close removes the socket file */
	admin_close(f->b);
	assert_int_equal(lstat(f->path, &sb), -1);
}

static void
torture_socket_errors(void **state)
{
	struct sockfix *f = *state;
	char p[PATH_MAX + 64];
	FILE *fp;

	/* a missing directory, a regular file in the way, an unknown group */
	snprintf(p, sizeof(p), "%s/missing/admin.sock", f->dir);
	f->b->cfg.admin_socket = p;
	assert_int_equal(admin_open(f->b), -1);
	assert_null(f->b->admin);

	snprintf(p, sizeof(p), "%s/file", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(admin_open(f->b), -1);
	unlink(p);

	f->b->cfg.admin_socket = f->path;
	f->b->cfg.admin_socket_group = (char *)"no-such-group-saw-test";
	assert_int_equal(admin_open(f->b), -1);
	f->b->cfg.admin_socket_group = NULL;
}

/* issue #4: sessions, users, locks, kill switch */
static void
torture_revocation_ops(void **state)
{
	struct broker *b = *state;
	struct store_session s = { 0 };
	json_t *resp, *arr;
	char req[512];
	int64_t now = (int64_t)time(NULL);

	s.iss = "https://idp";
	s.sub = "alice-sub";
	s.username = "alice";
	s.groups = "[\"saw-users\"]";
	s.key_fp = FP1;
	s.created = now;
	s.expires = now + 3600;
	s.idle_deadline = now + 600;
	assert_int_equal(store_session_create(b->store, &s), 0);

	resp = call(b, "{\"op\":\"session.list\"}");
	arr = json_object_get(resp, "sessions");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "state")),
			    "live");
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_array_get(arr, 0), "groups"), 0)),
			    "saw-users");
	json_decref(resp);
	expect_error(b, "{\"op\":\"session.list\",\"all\":\"yes\"}", "true or false");

	snprintf(req, sizeof(req), "{\"op\":\"session.revoke\",\"id\":\"%s\",\"reason\":\"r1\"}",
		 s.id);
	resp = call(b, req);
	assert_true(json_is_true(json_object_get(resp, "revoked")));
	json_decref(resp);
	assert_non_null(strstr(last_revoke, "r1"));
	expect_error(b, req, "already ended");
	expect_error(b, "{\"op\":\"session.revoke\",\"id\":\"00000000000000000000000000000000\"}",
		     "no session");

	resp = call(b, "{\"op\":\"user.revoke\",\"user\":\"sub:alice-sub\"}");
	assert_string_equal(json_string_value(json_object_get(resp, "user")), "sub:alice-sub");
	assert_int_equal(json_integer_value(json_object_get(resp, "revoked")), 2);
	json_decref(resp);
	assert_non_null(strstr(last_revoke, "sub=alice-sub"));
	expect_error(b, "{\"op\":\"user.revoke\",\"user\":\"sub:\"}", "followed by");

	resp = call(b,
		    "{\"op\":\"user.lock\",\"user\":\"bob\",\"until\":\"2h\",\"message\":\"m\"}");
	assert_true(json_integer_value(json_object_get(resp, "until")) >= now + 7200);
	json_decref(resp);
	{
		time_t t = (time_t)(now + 30 * 86400);
		struct tm tm;
		char when[64];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
		snprintf(req, sizeof(req),
			 "{\"op\":\"user.lock\",\"user\":\"carol\",\"until\":\"%s\"}", when);
		resp = call(b, req);
		assert_int_equal(json_integer_value(json_object_get(resp, "until")), (json_int_t)t);
		json_decref(resp);
	}
	expect_error(b, "{\"op\":\"user.lock\",\"user\":\"bob\",\"until\":\"yesterday\"}",
		     "duration");
	expect_error(b,
		     "{\"op\":\"user.lock\",\"user\":\"bob\",\"until\":\"2001-01-01T00:00:00Z\"}",
		     "in the past");
	expect_ok(b, "{\"op\":\"user.lock\",\"user\":\"dave\"}");
	resp = call(b, "{\"op\":\"lock.list\"}");
	assert_int_equal(json_array_size(json_object_get(resp, "locks")), 3);
	json_decref(resp);
	expect_ok(b, "{\"op\":\"user.unlock\",\"user\":\"bob\"}");
	expect_error(b, "{\"op\":\"user.unlock\",\"user\":\"bob\"}", "no lock");

	add(b, "ws1", KEY1, "public");
	expect_ok(b, "{\"op\":\"workspace.kill\",\"name\":\"ws1\",\"reason\":\"test\"}");
	assert_string_equal(last_revoke, "kill ws1: test");
	resp = call(b, "{\"op\":\"workspace.list\"}");
	assert_true(json_is_true(
		json_object_get(json_array_get(json_object_get(resp, "workspaces"), 0), "killed")));
	json_decref(resp);
	expect_ok(b, "{\"op\":\"workspace.revive\",\"name\":\"ws1\"}");
	expect_error(b, "{\"op\":\"workspace.kill\",\"name\":\"nope\"}", "no workspace");
	expect_error(b, "{\"op\":\"workspace.kill\",\"name\":\"ws1\",\"why\":\"x\"}",
		     "does not take");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_add, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_list, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_revocation_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_request_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_socket, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(torture_socket_errors, sock_setup, sock_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
