/*
 * saw-guestd's streaming transfers (guestd-http.h) on the libcurl ↔ libevent driver that
 * saw-brokerd shares (tunnel/curlev.c); struct ghttp only names it for guestd's callers.
 */
#include <stdlib.h>

#include "guestd/guestd-http.h"
#include "tunnel/curlev.h"

struct ghttp {
	struct curlev *cv;
};

struct ghttp *
ghttp_new(struct event_base *base)
{
	struct ghttp *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	/* curl_global_init inside: guestd calls this before it starts any thread of its own */
	if ((h->cv = curlev_new(base)) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
ghttp_free(struct ghttp *h)
{
	if (h == NULL)
		return;
	curlev_free(h->cv);
	free(h);
}

int
ghttp_add(struct ghttp *h, CURL *easy, ghttp_done_cb cb, void *arg)
{
	return curlev_add(h->cv, easy, cb, arg);
}

void
ghttp_remove(struct ghttp *h, CURL *easy)
{
	curlev_remove(h->cv, easy);
}

void
ghttp_kick(struct ghttp *h)
{
	curlev_kick(h->cv);
}
