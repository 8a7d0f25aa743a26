/*
 * libFuzzer target for the HTTP CONNECT request-head parser (guestd/guestd-proxy-parse.c):
 * arbitrary bytes as what a proxy client sent. Also checks the parser's promises: an
 * accepted head lies within the input and the cap, and a prefix of an accepted head is
 * never itself accepted as a different head.
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
	char err[256];

	if (gproxy_parse((const char *)data, size, &r, err, sizeof(err)) != GPROXY_OK)
		return 0;
	if (r.head_len == 0 || r.head_len > size || r.head_len > GPROXY_MAX_HEAD || r.port < 1 ||
	    r.port > 65535 || strlen(r.host) == 0 || strlen(r.host) > GPROXY_HOST_MAX)
		abort();
	/* the same head without the early data parses the same */
	if (gproxy_parse((const char *)data, r.head_len, &r2, err, sizeof(err)) != GPROXY_OK ||
	    r2.port != r.port || strcmp(r2.host, r.host) != 0 || r2.head_len != r.head_len)
		abort();
	return 0;
}
