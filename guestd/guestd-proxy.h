/*
 * saw-guestd's proxies (ARCHITECTURE Flow 2): the egress proxy (HTTP forward for http://
 * absolute-URI requests, and CONNECT) and the credential proxy, on listeners that belong to
 * one brokered session each (created inside that session's sandbox network namespace), plus
 * the workspace-wide ProxyListen / CredentialListen fallbacks.
 *
 * The request-head parser (guestd-proxy-parse.c) is a pure function over the bytes a proxy
 * client sent, so that it can be unit-tested and fuzzed on its own (tests/fuzz/fuzz_proxy.c).
 *
 * Accepted: "METHOD target HTTP/1.1" (or HTTP/1.0), where target is, by mode:
 *   GPROXY_MODE_CONNECT  authority form "host:port" with METHOD CONNECT only;
 *   GPROXY_MODE_EGRESS   the same, or an absolute "http://host[:port][/path]" URI (no
 *                        userinfo, default port 80) with any token METHOD;
 *   GPROXY_MODE_ORIGIN   origin form "/path[?query]" with any token METHOD (the credential
 *                        proxy).
 * host is a DNS name (lowercased), an IPv4 literal or a bracketed IPv6 literal, port 1..65535.
 * Then header lines "Name: value" (token names, no control bytes in values, no obsolete line
 * folding), at most GPROXY_MAX_HEADERS; lines end in CRLF or LF; the head ends with an empty
 * line and is at most GPROXY_MAX_HEAD bytes. Content-Length must be one decimal value (repeats
 * must agree); Transfer-Encoding may only be "chunked" and not together with Content-Length
 * (no request smuggling through us).
 */
#ifndef SAW_GUESTD_PROXY_H
#define SAW_GUESTD_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GPROXY_MAX_HEAD 8192
#define GPROXY_MAX_HEADERS 64
#define GPROXY_HOST_MAX 253
#define GPROXY_METHOD_MAX 16

enum gproxy_parse_result {
	GPROXY_OK = 0,
	GPROXY_MORE = 1,	 /* no complete head yet */
	GPROXY_BAD = -1,	 /* 400 */
	GPROXY_NOT_CONNECT = -2, /* 405: a method or target form this listener does not offer */
	GPROXY_TOO_LARGE = -3,	 /* 431: head larger than GPROXY_MAX_HEAD */
};

enum gproxy_mode {
	GPROXY_MODE_CONNECT = 0,
	GPROXY_MODE_EGRESS,
	GPROXY_MODE_ORIGIN,
};

enum gproxy_form {
	GPROXY_FORM_AUTHORITY = 0, /* CONNECT host:port */
	GPROXY_FORM_ABSOLUTE,	   /* GET http://host:port/path */
	GPROXY_FORM_ORIGIN,	   /* POST /path */
};

/* Offsets into the parsed buffer (the head is at most GPROXY_MAX_HEAD bytes). */
struct gproxy_header {
	uint16_t name, name_len;
	uint16_t value, value_len; /* without surrounding blanks */
};

struct gproxy_request {
	char host[GPROXY_HOST_MAX + 1]; /* without brackets for IPv6; empty for origin form */
	int port;
	int http_minor;	 /* 0 or 1 */
	size_t head_len; /* bytes of the head, including the empty line; the rest is early data */
	char method[GPROXY_METHOD_MAX + 1];
	enum gproxy_form form;
	/* origin-form path and query: the whole target for origin form, what follows the
	 * authority for an absolute URI (may be empty: means "/"), nothing for CONNECT */
	size_t path, path_len;
	struct gproxy_header headers[GPROXY_MAX_HEADERS];
	size_t nheaders;
	long long content_length; /* -1: no Content-Length */
	bool chunked;		  /* Transfer-Encoding: chunked */
};

/* CONNECT only (GPROXY_MODE_CONNECT). err gets a short plain reason for the client on
 * GPROXY_BAD/NOT_CONNECT/TOO_LARGE. */
enum gproxy_parse_result gproxy_parse(const char *buf, size_t len, struct gproxy_request *r,
				      char *err, size_t errlen);
enum gproxy_parse_result gproxy_parse_mode(const char *buf, size_t len, enum gproxy_mode mode,
					   struct gproxy_request *r, char *err, size_t errlen);
/* Case-insensitive header name comparison against a NUL-terminated name. */
bool gproxy_header_is(const char *buf, const struct gproxy_header *h, const char *name);
/* The value of the first header called name, or NULL (*len set). */
const char *gproxy_header_get(const char *buf, const struct gproxy_request *r, const char *name,
			      size_t *len);

/* ---- listeners ------------------------------------------------------------------------ */

#define PROXY_KIND_HTTP 1 /* egress: HTTP forward + CONNECT (HTTP_PROXY, HTTPS_PROXY) */
#define PROXY_KIND_CRED 2 /* the credential proxy (SAW_CAP_* capabilities) */

struct guestd;

/*
 * Serves the proxy of that kind on fds[0..n) for session_id: bound TCP stream sockets
 * (listening or not: we call listen()), typically created inside the session's sandbox
 * network namespace, where they stay. For the egress proxy they are one SO_REUSEPORT group of
 * at most proxy_loops() sockets on the same address, fds[i] served by event loop i (the
 * kernel deals the connections out); the credential proxy serves fds[0] alone. Every
 * connection accepted on them belongs to that session, and to nobody else. The listeners
 * close when the session ends (proxy_session_end()), or earlier with proxy_unlisten() and
 * the same tag (a sandbox's number, not 0), when the sandbox they serve ends.
 * Ownership: the descriptors are ours in every case (closed on failure). Returns 0 or -1.
 */
int proxy_listen_fds(struct guestd *g, const int *fds, size_t n, const char *session_id,
		     unsigned long tag, int kind);
/* Closes the listeners of session_id given tag (the connections they accepted go on). */
void proxy_unlisten(struct guestd *g, const char *session_id, unsigned long tag);
/* A listening TCP socket on sa (non-blocking, close-on-exec, SO_REUSEADDR; with group,
 * SO_REUSEPORT: a socket of the egress listener's group, which only the same user, root, can
 * join, so that no process of a session can take a share of its connections), in the
 * caller's network namespace. The descriptor, or -1 with errno. */
int proxy_listen_socket(const struct sockaddr *sa, socklen_t salen, bool group);
/* How many event loops serve the egress proxy (ProxyThreads), at least 1. */
size_t proxy_loops(struct guestd *g);

#endif
