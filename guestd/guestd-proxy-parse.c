/*
 * HTTP proxy request-head parser (see guestd-proxy.h). Untrusted input from any process in
 * the session's sandbox: every access is bounded by len, nothing is copied before it is
 * validated, and the head is only parsed once it is complete (or refused once it is too
 * large), so a partial head never yields a partial decision.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "guestd/guestd-proxy.h"

/* RFC 9110 tchar */
static int
gproxy_tchar(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
gproxy_hostname_ok(const char *h, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > GPROXY_HOST_MAX || h[0] == '.' || h[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/* authority = host [":" port]; port required unless default_port != 0. */
static int
gproxy_authority(const char *t, size_t n, int default_port, struct gproxy_request *r)
{
	const char *colon = NULL, *h;
	size_t hn, pn, i;
	long port = 0;

	if (n > 0 && t[0] == '[') {
		const char *close = memchr(t, ']', n);
		struct in6_addr a6;

		if (close == NULL)
			return -1;
		h = t + 1;
		hn = (size_t)(close - h);
		if (hn == 0 || hn >= INET6_ADDRSTRLEN)
			return -1;
		memcpy(r->host, h, hn);
		r->host[hn] = '\0';
		if (inet_pton(AF_INET6, r->host, &a6) != 1)
			return -1;
		if ((size_t)(close - t) + 1 < n) {
			if (close[1] != ':')
				return -1;
			colon = close + 1;
		}
	} else {
		for (i = n; i > 0; i--)
			if (t[i - 1] == ':') {
				colon = t + i - 1;
				break;
			}
		h = t;
		hn = colon != NULL ? (size_t)(colon - t) : n;
		if (memchr(h, ':', hn) != NULL || !gproxy_hostname_ok(h, hn))
			return -1;
		for (i = 0; i < hn; i++)
			r->host[i] = (char)tolower((unsigned char)h[i]);
		r->host[hn] = '\0';
	}
	if (colon == NULL) {
		if (default_port == 0)
			return -1;
		r->port = default_port;
		return 0;
	}
	pn = n - (size_t)(colon + 1 - t);
	if (pn == 0 || pn > 5)
		return -1;
	for (i = 0; i < pn; i++) {
		if (!isdigit((unsigned char)colon[1 + i]))
			return -1;
		port = port * 10 + (colon[1 + i] - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	r->port = (int)port;
	return 0;
}

/* "http://authority[/path]": the authority, and the path's offset within t. */
static int
gproxy_absolute(const char *t, size_t n, size_t *path_at, struct gproxy_request *r)
{
	size_t i, alen;

	if (n < 8 || strncasecmp(t, "http://", 7) != 0)
		return -1;
	for (i = 7; i < n && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++)
		if (t[i] == '@')
			return -1; /* userinfo: never */
	alen = i - 7;
	if (alen == 0 || gproxy_authority(t + 7, alen, 80, r) != 0)
		return -1;
	if (i < n && t[i] != '/')
		return -1; /* "http://host?x": no path */
	*path_at = i;
	return 0;
}

/* The end of the line starting at p (the index of '\n'), or -1; a lone CR is refused. */
static long
gproxy_line_end(const char *buf, size_t p, size_t end)
{
	size_t i;

	for (i = p; i < end; i++) {
		if (buf[i] == '\n')
			return (long)i;
		if (buf[i] == '\r' && (i + 1 >= end || buf[i + 1] != '\n'))
			return -2;
	}
	return -1;
}

bool
gproxy_header_is(const char *buf, const struct gproxy_header *h, const char *name)
{
	return strlen(name) == h->name_len && strncasecmp(buf + h->name, name, h->name_len) == 0;
}

const char *
gproxy_header_get(const char *buf, const struct gproxy_request *r, const char *name, size_t *len)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (gproxy_header_is(buf, &r->headers[i], name)) {
			*len = r->headers[i].value_len;
			return buf + r->headers[i].value;
		}
	*len = 0;
	return NULL;
}

/* Content-Length / Transfer-Encoding; -1 with err set if they allow two readings. */
static int
gproxy_framing(const char *buf, struct gproxy_request *r, char *err, size_t errlen)
{
	const struct gproxy_header *h;
	long long v;
	size_t i, j;
	int te = 0;

	r->content_length = -1;
	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (gproxy_header_is(buf, h, "Content-Length")) {
			if (h->value_len == 0 || h->value_len > 15)
				goto bad_cl;
			for (v = 0, j = 0; j < h->value_len; j++) {
				if (!isdigit((unsigned char)buf[h->value + j]))
					goto bad_cl;
				v = v * 10 + (buf[h->value + j] - '0');
			}
			if (r->content_length >= 0 && r->content_length != v)
				goto bad_cl;
			r->content_length = v;
		} else if (gproxy_header_is(buf, h, "Transfer-Encoding")) {
			if (te++ || h->value_len != 7 ||
			    strncasecmp(buf + h->value, "chunked", 7) != 0) {
				snprintf(err, errlen,
					 "only Transfer-Encoding: chunked is supported");
				return -1;
			}
			r->chunked = true;
		}
	}
	if (r->chunked && r->content_length >= 0) {
		snprintf(err, errlen, "both Content-Length and Transfer-Encoding");
		return -1;
	}
	return 0;
bad_cl:
	snprintf(err, errlen, "invalid Content-Length");
	return -1;
}

enum gproxy_parse_result
gproxy_parse_mode(const char *buf, size_t len, enum gproxy_mode mode, struct gproxy_request *r,
		  char *err, size_t errlen)
{
	size_t scan = len < GPROXY_MAX_HEAD ? len : GPROXY_MAX_HEAD;
	size_t pos, llen, i, sp1, sp2, head_end = 0, path_at;
	const char *line, *target;
	size_t tlen;
	long nl;
	int found = 0;

	memset(r, 0, sizeof(*r));
	/* find the empty line that ends the head, within the cap */
	for (i = 0; i < scan; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < scan && buf[i + 1] == '\n') {
			head_end = i + 2;
			found = 1;
			break;
		}
		if (i + 2 < scan && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			head_end = i + 3;
			found = 1;
			break;
		}
	}
	if (!found) {
		if (len >= GPROXY_MAX_HEAD) {
			snprintf(err, errlen, "request head larger than %d bytes", GPROXY_MAX_HEAD);
			return GPROXY_TOO_LARGE;
		}
		return GPROXY_MORE;
	}

	/* request line */
	if ((nl = gproxy_line_end(buf, 0, head_end)) < 0)
		goto bad_line;
	line = buf;
	llen = (size_t)nl;
	if (llen > 0 && line[llen - 1] == '\r')
		llen--;
	for (sp1 = 0; sp1 < llen && line[sp1] != ' '; sp1++)
		if (!gproxy_tchar((unsigned char)line[sp1]))
			goto bad_line;
	if (sp1 == 0 || sp1 == llen || sp1 > GPROXY_METHOD_MAX)
		goto bad_line;
	for (sp2 = sp1 + 1; sp2 < llen && line[sp2] != ' '; sp2++)
		if ((unsigned char)line[sp2] <= 0x20 || (unsigned char)line[sp2] >= 0x7f)
			goto bad_line;
	if (sp2 == sp1 + 1 || sp2 == llen)
		goto bad_line;
	if (llen - sp2 - 1 != 8 || memcmp(line + sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (line[llen - 1] != '0' && line[llen - 1] != '1'))
		goto bad_line;
	r->http_minor = line[llen - 1] - '0';
	memcpy(r->method, line, sp1);
	r->method[sp1] = '\0';
	target = line + sp1 + 1;
	tlen = sp2 - sp1 - 1;

	if (strcmp(r->method, "CONNECT") == 0) {
		if (mode == GPROXY_MODE_ORIGIN) {
			snprintf(err, errlen,
				 "this is the credential proxy: send requests like POST "
				 "/ROUTE/v1/chat/completions, not CONNECT");
			return GPROXY_NOT_CONNECT;
		}
		if (gproxy_authority(target, tlen, 0, r) != 0) {
			snprintf(err, errlen,
				 "CONNECT needs host:port (e.g. CONNECT git.example:443)");
			return GPROXY_BAD;
		}
		r->form = GPROXY_FORM_AUTHORITY;
	} else if (mode == GPROXY_MODE_CONNECT) {
		snprintf(err, errlen,
			 "only CONNECT is supported: use this proxy for HTTPS (https_proxy)");
		return GPROXY_NOT_CONNECT;
	} else if (mode == GPROXY_MODE_EGRESS) {
		if (tlen >= 8 && strncasecmp(target, "https://", 8) == 0) {
			snprintf(err, errlen,
				 "https:// URLs go through CONNECT: set https_proxy, not a plain "
				 "request to the proxy");
			return GPROXY_NOT_CONNECT;
		}
		if (target[0] == '/') {
			snprintf(err, errlen,
				 "this is a proxy: send an absolute http:// URL or CONNECT "
				 "host:port");
			return GPROXY_NOT_CONNECT;
		}
		if (gproxy_absolute(target, tlen, &path_at, r) != 0) {
			snprintf(err, errlen, "malformed URL (expected http://host[:port]/path)");
			return GPROXY_BAD;
		}
		r->form = GPROXY_FORM_ABSOLUTE;
		r->path = (size_t)(target - buf) + path_at;
		r->path_len = tlen - path_at;
	} else {
		if (target[0] != '/') {
			snprintf(err, errlen,
				 "send requests to the credential proxy as /ROUTE/PATH (e.g. "
				 "POST /openai/v1/chat/completions)");
			return GPROXY_NOT_CONNECT;
		}
		r->form = GPROXY_FORM_ORIGIN;
		r->path = (size_t)(target - buf);
		r->path_len = tlen;
	}

	/* header lines, up to the empty one */
	for (pos = (size_t)nl + 1; pos < head_end;) {
		struct gproxy_header *h;
		size_t colon, v, vend;

		if ((nl = gproxy_line_end(buf, pos, head_end)) < 0)
			goto bad_header;
		line = buf + pos;
		llen = (size_t)nl - pos;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break; /* the empty line */
		if (r->nheaders >= GPROXY_MAX_HEADERS) {
			memset(r, 0, sizeof(*r));
			snprintf(err, errlen, "more than %d header lines", GPROXY_MAX_HEADERS);
			return GPROXY_BAD;
		}
		for (colon = 0; colon < llen && line[colon] != ':'; colon++)
			if (!gproxy_tchar((unsigned char)line[colon]))
				goto bad_header; /* also refuses obsolete folding (SP/HT first) */
		if (colon == 0 || colon == llen)
			goto bad_header;
		for (i = colon + 1; i < llen; i++)
			if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
				goto bad_header;
		for (v = colon + 1; v < llen && (line[v] == ' ' || line[v] == '\t'); v++)
			;
		for (vend = llen; vend > v && (line[vend - 1] == ' ' || line[vend - 1] == '\t');
		     vend--)
			;
		h = &r->headers[r->nheaders++];
		h->name = (uint16_t)pos;
		h->name_len = (uint16_t)colon;
		h->value = (uint16_t)(pos + v);
		h->value_len = (uint16_t)(vend - v);
		pos = (size_t)nl + 1;
	}
	if (gproxy_framing(buf, r, err, errlen) != 0) {
		memset(r, 0, sizeof(*r));
		return GPROXY_BAD;
	}
	r->head_len = head_end;
	return GPROXY_OK;
bad_line:
	memset(r, 0, sizeof(*r));
	snprintf(err, errlen, "malformed request line (expected: CONNECT host:port HTTP/1.1)");
	return GPROXY_BAD;
bad_header:
	memset(r, 0, sizeof(*r));
	snprintf(err, errlen, "malformed header line");
	return GPROXY_BAD;
}

enum gproxy_parse_result
gproxy_parse(const char *buf, size_t len, struct gproxy_request *r, char *err, size_t errlen)
{
	return gproxy_parse_mode(buf, len, GPROXY_MODE_CONNECT, r, err, errlen);
}
