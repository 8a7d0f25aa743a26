/*
 * libcurl's multi-socket interface on a libevent loop, shared by saw-brokerd's HTTP client
 * (broker/broker-http.c: whole bodies for small JSON exchanges) and saw-guestd's streaming
 * transfers (guestd/guestd-http.c, the credential proxy). It lives here, in the library both
 * daemons link, so that guestd never links the broker.
 *
 * curl says which sockets to watch and when to wake it; libevent events call
 * curl_multi_socket_action(), then finished transfers are collected with
 * curl_multi_info_read() and their owners told. done_cb runs from the event loop, never
 * inside a curl callback (curl_multi_add_handle/remove_handle are not re-entrant from curl's
 * own callbacks), with the handle already removed from the multi: it may free its easy handle
 * and start or cancel other transfers.
 *
 * Ownership: a curlev owns nothing but the multi handle and its events; the caller frees it
 * (after removing or cleaning up its transfers). The caller owns each easy handle;
 * curlev_add() borrows it until done_cb or curlev_remove(). Do not set CURLOPT_PRIVATE
 * (curlev uses it): pass your state as arg.
 */
#ifndef SAW_TUNNEL_CURLEV_H
#define SAW_TUNNEL_CURLEV_H

#include <curl/curl.h>

struct event_base;
struct curlev;

typedef void (*curlev_done_cb)(CURL *easy, CURLcode rc, void *arg);

/* Calls curl_global_init (reference counted: before any thread of the caller starts). */
struct curlev *curlev_new(struct event_base *base);
void curlev_free(struct curlev *cv);
/* Returns 0, or -1 (the handle is not added). The transfer starts from the event loop:
 * done_cb never runs before this returns. */
int curlev_add(struct curlev *cv, CURL *easy, curlev_done_cb cb, void *arg);
/* Takes a transfer off before it finished (done_cb is not called); harmless after done_cb.
 * Never from a curl callback. */
void curlev_remove(struct curlev *cv, CURL *easy);
/* Lets curl act on a transfer that was unpaused outside its callbacks, from a fresh loop
 * turn. */
void curlev_kick(struct curlev *cv);

#endif
