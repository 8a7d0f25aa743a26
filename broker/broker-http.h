/*
 * Asynchronous HTTP client: libcurl's multi-socket interface driven by libevent, so no IdP
 * or SIEM call ever blocks the event loop. Every request has a total timeout and a response
 * body cap (HTTP_MAX_BODY); redirects are not followed.
 *
 * Ownership: the client is created in main and freed last. A request belongs to the client
 * until its callback has run (the request is freed right after the callback returns) or
 * until http_cancel(), after which the callback never runs.
 */
#ifndef SAW_BROKER_HTTP_H
#define SAW_BROKER_HTTP_H

#include <stddef.h>

#define HTTP_MAX_BODY (1024 * 1024)

struct event_base;
struct http_client;
struct http_req;

struct http_result {
	int ok;		   /* 1 if an HTTP response was received (any status) */
	long status;	   /* HTTP status, 0 if none */
	const char *error; /* plain words when !ok: "connection refused", "timed out" … */
	const char *body;  /* NUL-terminated, valid during the callback only */
	size_t body_len;
	const char *content_type; /* may be NULL */
};

typedef void (*http_done_cb)(const struct http_result *res, void *arg);

struct http_client *http_client_new(struct event_base *base, long timeout_ms);
void http_client_free(struct http_client *c); /* cancels pending requests, no callbacks */

struct http_req *http_get(struct http_client *c, const char *url, http_done_cb cb, void *arg);
/* body is application/x-www-form-urlencoded; basic_user/basic_pass may be NULL. */
struct http_req *http_post_form(struct http_client *c, const char *url, const char *body,
				const char *basic_user, const char *basic_pass, http_done_cb cb,
				void *arg);
void http_cancel(struct http_req *r);
/* The general form of the two above: GET when form_body is NULL, else a form POST;
 * timeout_ms is this request's total timeout (0: the client's). */
struct http_req *http_request(struct http_client *c, const char *url, const char *form_body,
			      const char *basic_user, const char *basic_pass, long timeout_ms,
			      http_done_cb cb, void *arg);

/*
 * POST body (len bytes, copied: the caller may free it at once) with the given Content-Type.
 * headers: NULL or a NULL-terminated array of extra "Name: value" lines (copied), e.g. an
 * Authorization header; the request's "Accept: application/json" and empty "Expect:" stay.
 * timeout_ms is this request's total timeout (0: the client's). Added for the audit
 * forwarder (audit/sink-http.c), which calls it through a function pointer so that the
 * audit library does not link the broker's.
 */
struct http_req *http_post(struct http_client *c, const char *url, const char *content_type,
			   const char *body, size_t len, const char *const *headers,
			   long timeout_ms, http_done_cb cb, void *arg);

/* URL-encodes s into a new string (caller frees). */
char *http_urlencode(const char *s);

#endif
