/*
 * Client side of saw-guestd's ControlSocket (protocol in guestd/guestd-sock.h), shared by
 * saw-authorized-keys and pam_saw.so.
 *
 * One request per connection: connect, write one JSON line, read one JSON line, close, all
 * within one total deadline. Every failure (no socket, refused, timeout, oversized or
 * unterminated line, not a JSON object) returns NULL with a reason: callers treat NULL as
 * "no" (fail closed).
 *
 * Safe inside a PAM host (sshd): no global state, no signal handlers touched (MSG_NOSIGNAL
 * instead of SIGPIPE handling), the socket is close-on-exec so it never leaks into the shell.
 *
 * Ownership: gsock_request and gsock_parse_answer return a new reference (json_decref it); req
 * stays the caller's. err/errlen are always required (err is filled on every NULL return).
 */
#ifndef SAW_GSOCK_CLIENT_H
#define SAW_GSOCK_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "guestd/guestd-sock.h"

/* Sends req (a JSON object) to the ControlSocket at path and waits at most timeout_ms in total
 * for the one-line answer. Returns the answer (a JSON object, new reference) or NULL with a
 * plain-words reason in err. */
json_t *gsock_request(const char *path, const json_t *req, int timeout_ms, char *err,
		      size_t errlen);

/* The answer bytes received on one connection (buf, len): exactly one line of at most
 * GSOCK_MAX_LINE bytes ending in '\n', holding a JSON object without duplicate keys. Returns
 * the object (new reference) or NULL with a reason. Fuzzed by tests/fuzz/fuzz_akc.c. */
json_t *gsock_parse_answer(const char *buf, size_t len, char *err, size_t errlen);

/* 1 if the answer says {"ok":true}, 0 otherwise (missing, false, or not a boolean). When it is
 * not ok and the answer carries a string "error", *why points into ans (else "no reason"). */
int gsock_answer_ok(const json_t *ans, const char **why);

/* 0 if name is a user name we pass to guestd: 1..GSOCK_MAX_USER of [A-Za-z0-9._-], not
 * starting with '-' (the same rule as the broker's config). -1 otherwise. */
#define GSOCK_MAX_USER 32
int gsock_check_user(const char *name);

/* 0 if path is usable as a ControlSocket path: absolute and short enough for sun_path. */
int gsock_check_path(const char *path);

#endif
