/*
 * The admin protocol of saw-brokerd, spoken over the local admin socket (AdminSocket) by
 * sawctl(8). broker-admin.c owns the socket; this header is the pure part (one request in,
 * one response out) so that it can be unit-tested, fuzzed, and later served by the HTTP admin
 * API as well (issue #4: the same dispatch behind a bearer-token check).
 *
 * Wire format: JSON lines. The client sends one JSON object per line (at most
 * ADMIN_MAX_LINE bytes before the "\n"); the broker answers each with exactly one JSON object
 * on one line, in order:
 *
 *   {"op":"workspace.add","name":"alice-ws","owner":"SUB","pubkey":"ssh-ed25519 AAAA… c",
 *    "profile":"corporate"}
 *   {"ok":true,"workspace":{"name":…,"owner":…,"profile":…,"key_fp":"SHA256:…",
 *    "created":1700000000,"killed":false,"online":false}}
 *   {"op":"workspace.list"}      -> {"ok":true,"workspaces":[{same fields}, …]} (by name)
 *   {"op":"workspace.remove","name":"alice-ws"}
 *                                -> {"ok":true,"name":"alice-ws","disconnected":true|false}
 *   {"op":"ping"}                -> {"ok":true,"version":"0.1.0","protocol":1}
 *
 * Revocation and the kill switch (issue #4). A user is named by SSH user name ("alice") or by
 * IdP subject ("sub:SUBJECT"); "until" is absent/0 (until unlocked), seconds since the epoch,
 * an RFC 3339 time or a duration from now ("2h", "1h30m", "5s"):
 *
 *   {"op":"session.list","user":"alice","all":false}
 *        -> {"ok":true,"sessions":[{"id","username","sub","iss","sid"?,"email"?,"state":
 *            "live"|"expired"|"revoked","created","expires","idle_deadline","key_fp",
 *            "groups":[…],"end_reason"?}, …]}   (live first; all: also the recent ended ones)
 *   {"op":"session.revoke","id":"…","reason":"…"?}  -> {"ok":true,"id":…,"revoked":true}
 *   {"op":"user.revoke","user":"alice","reason":"…"?} -> {"ok":true,"user":"user:alice",
 *                                                         "revoked":N}
 *   {"op":"user.lock","user":"alice","until":"2h"?,"message":"…"?}
 *                          -> {"ok":true,"user":"user:alice","until":T,"revoked":N}
 *   {"op":"user.unlock","user":"alice"}            -> {"ok":true,"user":"user:alice"}
 *   {"op":"lock.list"}  -> {"ok":true,"locks":[{"user":"user:alice","until":T,"message"?}]}
 *   {"op":"workspace.kill","name":"ws","reason":"…"?} -> {"ok":true,"name":…,"killed":true}
 *   {"op":"workspace.revive","name":"ws"}          -> {"ok":true,"name":…,"killed":false}
 *
 * Every failure is {"ok":false,"error":"plain words saying what to do"}. A request may carry
 * "id" (a string or an integer), which is copied into its response so that a client may
 * pipeline requests. Any other member a request does not define is an error (a typo must not
 * silently do something else). Operations are named "<object>.<verb>". The HTTP admin API
 * (broker-web.c) runs the same operations through admin_dispatch_as().
 */
#ifndef SAW_BROKER_ADMIN_H
#define SAW_BROKER_ADMIN_H

#include <stddef.h>

#include <jansson.h>

struct broker;

#define ADMIN_PROTOCOL_VERSION 1
#define ADMIN_MAX_LINE (64 * 1024) /* bytes of one request line, without its "\n" */

/*
 * Runs one request (a parsed JSON value, any type) against the broker: the store and the
 * workspace connections. Sets *resp to a new response object that the caller owns
 * (json_decref); the response is {"ok":false,…} for any invalid request. Returns 0, or -1
 * only when out of memory (then *resp is NULL).
 */
int admin_dispatch(struct broker *b, const json_t *req, json_t **resp);
/* The same on behalf of actor (e.g. "admin uid 0", "admin API SUB (alice)"), who is named
 * in the revocations, locks and audit events the request causes. admin_dispatch() acts as
 * "admin". */
int admin_dispatch_as(struct broker *b, const char *actor, const json_t *req, json_t **resp);

/*
 * One request line (len bytes, need not be NUL-terminated, without the "\n") to one response
 * line: parses the JSON (duplicate keys refused), dispatches it, and sets *out to the
 * compact response text followed by "\n" (malloc'd, the caller frees it). Returns 0, or -1
 * when out of memory (*out NULL).
 */
int admin_request(struct broker *b, const char *line, size_t len, char **out);
int admin_request_as(struct broker *b, const char *actor, const char *line, size_t len, char **out);

#endif
