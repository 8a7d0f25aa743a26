/*
 * The broker's HTTP listener (HttpListenAddress), libevent evhttp on the broker's loop:
 *
 *   POST /v1/revocation/backchannel-logout   OIDC Back-Channel Logout 1.0 (200 / 400)
 *   POST /v1/revocation/events               SETs pushed per RFC 8935 / SSF 1.0 (202 / 400)
 *   GET  /v1/sessions[?user=U&all=1]          admin API, bearer access token with AdminGroup;
 *   POST /v1/sessions/{id}/revoke             the same operations as the admin socket
 *   POST /v1/users/{user}/revoke|lock|unlock  (admin_dispatch_as, broker-admin.h)
 *   GET  /v1/locks, GET /v1/workspaces
 *   POST /v1/workspaces/{name}/kill|revive
 *   GET  /healthz                             200 "ok"
 *
 * TLS (HttpTLSCertificate/HttpTLSKey) through bufferevent_openssl; plain HTTP only when every
 * address is loopback (the configuration refuses anything else). Bounded: 64 KiB bodies,
 * 8 KiB of headers, 10 s to send a request, at most HttpMaxRequests requests in flight (then
 * 503). Parsing and validation of the tokens is in broker-set.c (pure, fuzzed).
 *
 * Ownership: web_open() stores a struct web in b->web; web_close() frees it (pending requests
 * are dropped without an answer, their connections closed). web_open() binds the sockets and
 * reads the TLS key, so it runs before the privileges are dropped; it needs b->base only.
 * The SSF transmitter's keys are fetched through b->http from the first loop turn on.
 */
#ifndef SAW_BROKER_WEB_H
#define SAW_BROKER_WEB_H

struct broker;
struct web;

/* 0 (also when no HttpListenAddress is configured: nothing to do), or -1 after logging
 * why. */
int web_open(struct broker *b);
void web_close(struct broker *b);

#endif
