/*
 * libFuzzer target for the proxy request-head parser (guestd/guestd-proxy-parse.c):
 * arbitrary bytes as what a proxy client sent; the first byte picks the mode (CONNECT only,
 * egress: CONNECT or http:// absolute URI, origin: the credential proxy). Also checks the
 * parser's promises: an accepted head lies within the input and the cap, every header and
 * the path lie within the head, and the same head without the bytes after it parses the
 * same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guestd/guestd-proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gproxy_request r, r2;
	enum gproxy_mode mode;
	const char *buf;
	char err[256];
	size_t i;

	if (size < 1)
		return 0;
	mode = (enum gproxy_mode)(data[0] % 3);
	buf = (const char *)data + 1;
	size--;
	if (gproxy_parse_mode(buf, size, mode, &r, err, sizeof(err)) != GPROXY_OK)
		return 0;
	if (r.head_len == 0 || r.head_len > size || r.head_len > GPROXY_MAX_HEAD ||
	    r.nheaders > GPROXY_MAX_HEADERS || strlen(r.method) == 0)
		abort();
	if (r.form != GPROXY_FORM_ORIGIN && (r.port < 1 || r.port > 65535 || strlen(r.host) == 0 ||
					     strlen(r.host) > GPROXY_HOST_MAX))
		abort();
	if (mode == GPROXY_MODE_CONNECT && r.form != GPROXY_FORM_AUTHORITY)
		abort();
	if (mode == GPROXY_MODE_ORIGIN && r.form != GPROXY_FORM_ORIGIN)
		abort();
	if (r.path + r.path_len > r.head_len ||
	    (r.form == GPROXY_FORM_ORIGIN && buf[r.path] != '/'))
		abort();
	for (i = 0; i < r.nheaders; i++)
		if ((size_t)r.headers[i].name + r.headers[i].name_len > r.head_len ||
		    (size_t)r.headers[i].value + r.headers[i].value_len > r.head_len ||
		    r.headers[i].name_len == 0)
			abort();
	if (r.chunked && r.content_length >= 0)
		abort();
	/* the same head without the early data parses the same */
	if (gproxy_parse_mode(buf, r.head_len, mode, &r2, err, sizeof(err)) != GPROXY_OK ||
	    r2.port != r.port || strcmp(r2.host, r.host) != 0 || r2.head_len != r.head_len ||
	    r2.nheaders != r.nheaders || r2.path_len != r.path_len)
		abort();
	return 0;
}
