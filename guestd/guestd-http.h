/*
 * libcurl's multi-socket interface on saw-guestd's libevent loop, for streaming transfers
 * (the credential proxy). Unlike broker/broker-http.c, which buffers whole bodies for
 * small JSON exchanges, here the caller sets its own write/header callbacks on
 * each easy handle and may pause it (CURL_WRITEFUNC_PAUSE) and resume it
 * (curl_easy_pause(CURLPAUSE_CONT) then ghttp_kick()). The multi-socket driver is
 * tunnel/curlev.c, shared with the broker's client without guestd linking the broker.
 *
 * done_cb runs from the event loop after curl_multi_info_read() reported the transfer done,
 * never inside a curl callback, with the handle already removed from the multi: it may
 * free its easy handle and start or cancel other transfers.
 *
 * Ownership: ghttp owns nothing but the multi handle and its socket events. The caller owns
 * each easy handle; ghttp_add() borrows it until done_cb or ghttp_remove(). Do not set
 * CURLOPT_PRIVATE (ghttp uses it).
 */
#ifndef SAW_GUESTD_HTTP_H
#define SAW_GUESTD_HTTP_H

#include <curl/curl.h>

struct event_base;
struct ghttp;

typedef void (*ghttp_done_cb)(CURL *easy, CURLcode rc, void *arg);

struct ghttp *ghttp_new(struct event_base *base);
void ghttp_free(struct ghttp *h);
int ghttp_add(struct ghttp *h, CURL *easy, ghttp_done_cb cb, void *arg);
/* Takes a transfer off before it finished (done_cb is not called). Never from a curl
 * callback. */
void ghttp_remove(struct ghttp *h, CURL *easy);
/* Lets curl act on a transfer that was unpaused outside its callbacks. */
void ghttp_kick(struct ghttp *h);

#endif
