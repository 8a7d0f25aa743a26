/*
 * HTTP CONNECT request-head parser (see guestd-proxy.h). Untrusted input from any process
 * in the workspace: every access is bounded by len, nothing is copied before it is
 * validated, and the head is only parsed once it is complete (or refused once it is too
 * large), so a partial head never yields a partial decision.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

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

/* target = authority-form host:port. */
static int
gproxy_target(const char *t, size_t n, struct gproxy_request *r)
{
	const char *colon, *h;
	size_t hn, pn, i;
	long port = 0;

	if (n > 0 && t[0] == '[') {
		const char *close = memchr(t, ']', n);
		struct in6_addr a6;

		if (close == NULL)
			return -1;
		h = t + 1;
		hn = (size_t)(close - h);
		if (hn == 0 || hn >= INET6_ADDRSTRLEN || (size_t)(close - t) + 1 >= n ||
		    close[1] != ':')
			return -1;
		memcpy(r->host, h, hn);
		r->host[hn] = '\0';
		if (inet_pton(AF_INET6, r->host, &a6) != 1)
			return -1;
		colon = close + 1;
	} else {
		colon = NULL;
		for (i = n; i > 0; i--)
			if (t[i - 1] == ':') {
				colon = t + i - 1;
				break;
			}
		if (colon == NULL)
			return -1;
		h = t;
		hn = (size_t)(colon - t);
		if (memchr(h, ':', hn) != NULL || !gproxy_hostname_ok(h, hn))
			return -1;
		memcpy(r->host, h, hn);
		r->host[hn] = '\0';
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

enum gproxy_parse_result
gproxy_parse(const char *buf, size_t len, struct gproxy_request *r, char *err, size_t errlen)
{
	size_t scan = len < GPROXY_MAX_HEAD ? len : GPROXY_MAX_HEAD;
	size_t pos, llen, i, sp1, sp2, nheaders = 0, head_end = 0;
	const char *line;
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
	if (sp1 == 0 || sp1 == llen)
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
	if (sp1 != 7 || memcmp(line, "CONNECT", 7) != 0) {
		snprintf(err, errlen,
			 "only CONNECT is supported: use this proxy for HTTPS (https_proxy)");
		return GPROXY_NOT_CONNECT;
	}
	if (gproxy_target(line + sp1 + 1, sp2 - sp1 - 1, r) != 0) {
		snprintf(err, errlen, "CONNECT needs host:port (e.g. CONNECT git.example:443)");
		return GPROXY_BAD;
	}

	/* header lines, up to the empty one */
	for (pos = (size_t)nl + 1; pos < head_end;) {
		size_t colon;

		if ((nl = gproxy_line_end(buf, pos, head_end)) < 0)
			goto bad_header;
		line = buf + pos;
		llen = (size_t)nl - pos;
		pos = (size_t)nl + 1;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break; /* the empty line */
		if (++nheaders > GPROXY_MAX_HEADERS) {
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
