/*
 * The HTTP CONNECT proxy's request-head parser (guestd-proxy-parse.c): a pure function over
 * the bytes a proxy client sent, so that it can be unit-tested and fuzzed on its own
 * (tests/fuzz/fuzz_proxy.c).
 *
 * Accepted: "CONNECT host:port HTTP/1.1" (or HTTP/1.0) in authority form, host a DNS name,
 * an IPv4 literal or a bracketed IPv6 literal, port 1..65535; then header lines
 * "Name: value" (token names, no control bytes in values, no obsolete line folding), at most
 * GPROXY_MAX_HEADERS of them; lines end in CRLF or LF; the head ends with an empty line and
 * is at most GPROXY_MAX_HEAD bytes. Header values are not interpreted.
 */
#ifndef SAW_GUESTD_PROXY_H
#define SAW_GUESTD_PROXY_H

#include <stddef.h>

#define GPROXY_MAX_HEAD 8192
#define GPROXY_MAX_HEADERS 64
#define GPROXY_HOST_MAX 253

enum gproxy_parse_result {
	GPROXY_OK = 0,
	GPROXY_MORE = 1,	 /* no complete head yet */
	GPROXY_BAD = -1,	 /* 400 */
	GPROXY_NOT_CONNECT = -2, /* 405: another method (only CONNECT is offered) */
	GPROXY_TOO_LARGE = -3,	 /* 431: head larger than GPROXY_MAX_HEAD */
};

struct gproxy_request {
	char host[GPROXY_HOST_MAX + 1]; /* without brackets for IPv6 */
	int port;
	int http_minor;	 /* 0 or 1 */
	size_t head_len; /* bytes of the head, including the empty line; the rest is early data */
};

/* err gets a short plain reason for the client on GPROXY_BAD/NOT_CONNECT/TOO_LARGE. */
enum gproxy_parse_result gproxy_parse(const char *buf, size_t len, struct gproxy_request *r,
				      char *err, size_t errlen);

#endif
