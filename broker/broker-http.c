/*
 * Asynchronous HTTP client: libcurl multi-socket interface on libevent.
 *
 * The multi-socket driver is tunnel/curlev.c (shared with saw-guestd): finished transfers
 * reach http_req_done from the event loop, after curl_multi_info_read() and never inside a
 * curl callback, with the handle already out of the multi. User callbacks only ever run
 * from there, so they may start or cancel requests freely: curl_multi_add_handle/
 * remove_handle are not re-entrant from curl's own callbacks, and this layout guarantees we
 * never call them from one.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "audit/log.h"
#include "broker/broker-http.h"
#include "tunnel/curlev.h"

#define HTTP_USER_AGENT "saw-broker/" SAW_VERSION
#define HTTP_MAX_CONTENT_TYPE 256
/* A POST body larger than libcurl's 64 KiB upload buffer (an audit batch) goes out in one
 * buffer of up to 2 MiB: a few loop turns instead of one per 64 KiB. */
#define HTTP_UPLOAD_BUFFER_MIN (64 * 1024)
#define HTTP_UPLOAD_BUFFER_MAX (2 * 1024 * 1024)

struct http_req {
	TAILQ_ENTRY(http_req) entry;
	struct http_client *c;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	size_t body_cap;
	char *content_type;
	bool too_large;
	bool in_callback; /* http_cancel() from its own callback must not free it twice */
	http_done_cb cb;
	void *arg;
};

struct http_client {
	struct curlev *cv;
	long timeout_ms;
	TAILQ_HEAD(, http_req) reqs;
};

static void
http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL) {
		/* Not inside a curl callback here (see the file comment). */
		curlev_remove(r->c->cv, r->easy);
		curl_easy_cleanup(r->easy);
	}
	TAILQ_REMOVE(&r->c->reqs, r, entry);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r->content_type);
	free(r);
}

static size_t
http_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n, cap;
	char *p;

	if (len > HTTP_MAX_BODY - r->body_len) {
		r->too_large = true;
		return 0; /* curl aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (r->body_len + len + 1 > r->body_cap) {
		cap = r->body_cap ? r->body_cap : 4096;
		while (cap < r->body_len + len + 1)
			cap *= 2;
		if (cap > HTTP_MAX_BODY + 1)
			cap = HTTP_MAX_BODY + 1;
		if ((p = realloc(r->body, cap)) == NULL)
			return 0;
		r->body = p;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

static size_t
http_header_cb(char *data, size_t size, size_t n, void *arg)
{
	static const char name[] = "content-type:";
	struct http_req *r = arg;
	size_t len = size * n, i = sizeof(name) - 1;

	/* A new status line (e.g. after "100 Continue") starts a new header block. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		free(r->content_type);
		r->content_type = NULL;
		return len;
	}
	if (len < i || strncasecmp(data, name, i) != 0)
		return len;
	while (i < len && (data[i] == ' ' || data[i] == '\t'))
		i++;
	while (len > i && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' ' ||
			   data[len - 1] == '\t'))
		len--;
	if (len - i > HTTP_MAX_CONTENT_TYPE)
		return size * n; /* absurd value: ignore it, the body parser decides */
	free(r->content_type);
	r->content_type = strndup(data + i, len - i);
	return size * n;
}

static const char *
http_strerror(struct http_req *r, CURLcode rc)
{
	long oserr = 0;

	switch (rc) {
	case CURLE_OK:
		return NULL;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		return r->too_large || rc == CURLE_FILESIZE_EXCEEDED ? "response too large" :
								       "out of memory";
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
		switch (oserr) {
		case ECONNREFUSED:
			return "connection refused";
		case ENETUNREACH:
			return "network unreachable";
		case EHOSTUNREACH:
			return "host unreachable";
		default:
			return "could not connect";
		}
	case CURLE_OPERATION_TIMEDOUT:
		return "timed out";
	case CURLE_COULDNT_RESOLVE_HOST:
		return "could not resolve host name";
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "could not resolve proxy name";
	case CURLE_PEER_FAILED_VERIFICATION:
		return "TLS error: server certificate not trusted";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return "TLS error";
	case CURLE_UNSUPPORTED_PROTOCOL:
		return "unsupported URL scheme (only http and https)";
	case CURLE_URL_MALFORMAT:
		return "invalid URL";
	case CURLE_GOT_NOTHING:
		return "empty reply from server";
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return "connection reset";
	case CURLE_PARTIAL_FILE:
		return "response truncated";
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
		return "malformed HTTP response";
	case CURLE_OUT_OF_MEMORY:
		return "out of memory";
	case CURLE_ABORTED_BY_CALLBACK:
		return "aborted";
	default:
		return curl_easy_strerror(rc); /* static strings */
	}
}

/* curlev_done_cb: the transfer is already out of the multi (curlev.h). */
static void
http_req_done(CURL *easy, CURLcode rc, void *arg)
{
	struct http_req *r = arg;
	struct http_result res;

	memset(&res, 0, sizeof(res));
	if (rc == CURLE_OK) {
		res.ok = 1;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
	} else {
		res.error = http_strerror(r, rc);
	}
	res.body = r->body != NULL ? r->body : "";
	res.body_len = r->body_len;
	res.content_type = r->content_type;

	r->in_callback = true;
	r->cb(&res, r->arg);
	http_req_free(r);
}

struct http_client *
http_client_new(struct event_base *base, long timeout_ms)
{
	struct http_client *c = NULL;

	if (timeout_ms <= 0)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->timeout_ms = timeout_ms;
	TAILQ_INIT(&c->reqs);
	/* curl_global_init inside: the broker calls this before it starts any thread. */
	if ((c->cv = curlev_new(base)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
http_client_free(struct http_client *c)
{
	struct http_req *r;

	if (c == NULL)
		return;
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL)
		http_req_free(r);
	curlev_free(c->cv);
	free(c);
}

struct http_req *
http_request(struct http_client *c, const char *url, const char *form_body, const char *basic_user,
	     const char *basic_pass, long timeout_ms, http_done_cb cb, void *arg)
{
	struct http_req *r = NULL;
	CURL *e;
	struct curl_slist *h;

	if (c == NULL || url == NULL || cb == NULL)
		return NULL;
	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->c = c;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	if ((r->easy = e = curl_easy_init()) == NULL)
		goto fail;
	if ((h = curl_slist_append(NULL, "Accept: application/json")) == NULL)
		goto fail;
	r->headers = h;
	/* Accepting "Expect: 100-continue" would only add a round trip for small forms. */
	if ((h = curl_slist_append(r->headers, "Expect:")) == NULL)
		goto fail;
	r->headers = h;

	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK)
		goto fail;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY);
	curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	/* TLS verification is curl's default; state it so nobody "fixes" it away. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (form_body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(form_body));
		if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form_body) != CURLE_OK)
			goto fail;
	}
	if (basic_user != NULL) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		if (curl_easy_setopt(e, CURLOPT_USERNAME, basic_user) != CURLE_OK ||
		    curl_easy_setopt(e, CURLOPT_PASSWORD, basic_pass ? basic_pass : "") != CURLE_OK)
			goto fail;
	}
	/* The transfer starts from the event loop (curl arms our timer): cb never runs
	 * before this function returns. */
	if (curlev_add(c->cv, e, http_req_done, r) != 0)
		goto fail;
	return r;
fail:
	if (r->easy != NULL) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	http_req_free(r);
	return NULL;
}

struct http_req *
http_get(struct http_client *c, const char *url, http_done_cb cb, void *arg)
{
	return http_request(c, url, NULL, NULL, NULL, 0, cb, arg);
}

struct http_req *
http_post_form(struct http_client *c, const char *url, const char *body, const char *basic_user,
	       const char *basic_pass, http_done_cb cb, void *arg)
{
	return http_request(c, url, body ? body : "", basic_user, basic_pass, 0, cb, arg);
}

struct http_req *
http_post(struct http_client *c, const char *url, const char *content_type, const char *body,
	  size_t len, const char *const *headers, long timeout_ms, http_done_cb cb, void *arg)
{
	struct http_req *r;
	struct curl_slist *h;
	char ct[HTTP_MAX_CONTENT_TYPE + 16];
	size_t i;

	if (content_type == NULL || strlen(content_type) > HTTP_MAX_CONTENT_TYPE ||
	    (body == NULL && len > 0))
		return NULL;
	/* An empty form body makes http_request() set up a POST; the real body replaces it
	 * before the transfer starts (the transfer only starts from the event loop). */
	if ((r = http_request(c, url, "", NULL, NULL, timeout_ms, cb, arg)) == NULL)
		return NULL;
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	if ((h = curl_slist_append(r->headers, ct)) == NULL)
		goto fail;
	r->headers = h;
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		if ((h = curl_slist_append(r->headers, headers[i])) == NULL)
			goto fail;
		r->headers = h;
	}
	/* Options of a handle must not change while it belongs to the multi handle: take it
	 * out, set them, put it back (nothing has been sent yet, see above). */
	curlev_remove(c->cv, r->easy);
	if (curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, len > 0 ? body : "") != CURLE_OK ||
	    (len > HTTP_UPLOAD_BUFFER_MIN &&
	     curl_easy_setopt(
		     r->easy, CURLOPT_UPLOAD_BUFFERSIZE,
		     (long)(len < HTTP_UPLOAD_BUFFER_MAX ? len : HTTP_UPLOAD_BUFFER_MAX)) !=
		     CURLE_OK) ||
	    curlev_add(c->cv, r->easy, http_req_done, r) != 0)
		goto fail;
	return r;
fail:
	http_cancel(r);
	return NULL;
}

void
http_cancel(struct http_req *r)
{
	if (r == NULL || r->in_callback)
		return; /* freed by http_req_done once its callback returns */
	http_req_free(r);
}

char *
http_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i;
	char *out, *p;

	if (n > (SIZE_MAX - 1) / 3 || (out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	/* RFC 3986 unreserved characters stay; everything else is %XX (form bodies too:
	 * encoding space as %20 rather than '+' is valid application/x-www-form-urlencoded). */
	for (p = out, i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}
