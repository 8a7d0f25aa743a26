/*
 * libFuzzer target for the admin protocol (broker-admin.c): every line of the input (split
 * at "\n") goes through admin_request(), the JSON parse and the dispatch, against a broker
 * whose store is an in-memory sqlite database. The workspace connections are stubbed here.
 *
 * What the protocol promises, checked on every answer: exactly one line, a JSON object with
 * a boolean "ok", and an "error" string whenever ok is false.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/log.h"
#include "broker/broker-admin.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct broker fuzz_broker;
static unsigned long fuzz_runs;

bool
workspace_is_online(struct broker *b, const char *name)
{
	return name[0] == 'o'; /* some workspaces look online, to reach both branches */
}

void
workspace_disconnect(struct broker *b, const char *name, const char *reason)
{
	if (name == NULL || reason == NULL)
		abort();
}

void
broker_audit_api(struct broker *b, const struct broker_api_call *call)
{
	if (call == NULL || call->operation == NULL)
		abort();
}

/* The revocation core (broker-revoke.c) acts on live connections; here its store effects
 * are enough, and every argument the admin operations pass is checked. */
int64_t
broker_now(void)
{
	return (int64_t)time(NULL);
}

int
revoke_session(struct broker *b, const char *session_id, const char *why, const char *actor)
{
	if (session_id == NULL || why == NULL || actor == NULL)
		abort();
	return store_session_end(b->store, session_id, STORE_REVOKED, why, broker_now()) == 0 ? 0 :
												1;
}

int
revoke_matching(struct broker *b, const struct store_filter *f, const char *why, const char *actor,
		int *count)
{
	if (f == NULL || why == NULL || actor == NULL ||
	    (f->username == NULL && f->sub == NULL && f->id == NULL))
		abort();
	if (count != NULL)
		*count = 0;
	return 0;
}

int
revoke_lock_user(struct broker *b, const char *key, int64_t until, const char *message,
		 const char *actor, int *count)
{
	if (key == NULL || actor == NULL ||
	    (strncmp(key, "sub:", 4) != 0 && strncmp(key, "user:", 5) != 0))
		abort();
	if (count != NULL)
		*count = 0;
	return store_lock_set(b->store, key, until, message, actor, broker_now());
}

int
revoke_unlock_user(struct broker *b, const char *key, const char *actor)
{
	if (key == NULL || actor == NULL)
		abort();
	return store_lock_clear(b->store, key);
}

int
revoke_kill_workspace(struct broker *b, const char *name, const char *why, const char *actor)
{
	if (name == NULL || actor == NULL)
		abort();
	return store_workspace_set_killed(b->store, name, 1);
}

int
revoke_revive_workspace(struct broker *b, const char *name, const char *actor)
{
	if (name == NULL || actor == NULL)
		abort();
	return store_workspace_set_killed(b->store, name, 0);
}

static void
fuzz_open_store(void)
{
	char err[256];

	store_close(fuzz_broker.store);
	fuzz_broker.store = NULL;
	if (store_open(":memory:", &fuzz_broker.store, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_admin: %s\n", err);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_admin", 0);
	fuzz_open_store();
	return 0;
}

static void
fuzz_check_answer(const char *out)
{
	json_error_t jerr;
	json_t *resp, *ok;
	size_t n = strlen(out);

	if (n == 0 || out[n - 1] != '\n' || memchr(out, '\n', n - 1) != NULL)
		abort();
	if ((resp = json_loadb(out, n - 1, 0, &jerr)) == NULL || !json_is_object(resp))
		abort();
	ok = json_object_get(resp, "ok");
	if (!json_is_boolean(ok))
		abort();
	if (json_is_false(ok) && !json_is_string(json_object_get(resp, "error")))
		abort();
	json_decref(resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	char *out;
	int lines = 0;

	if (fuzz_broker.store == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	/* a fresh registry now and then, so that it does not grow without bound */
	if (++fuzz_runs % 1000 == 0)
		fuzz_open_store();
	while (p < end && lines++ < 64) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		out = NULL;
		if (admin_request(&fuzz_broker, p, (size_t)(nl - p), &out) != 0)
			abort(); /* only out of memory may fail, and the fuzzer has memory */
		fuzz_check_answer(out);
		free(out);
		p = nl + 1;
	}
	return 0;
}
