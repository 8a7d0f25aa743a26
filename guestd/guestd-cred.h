/*
 * The credential proxy's pure pieces (guestd-cred-caps.c), unit-tested on their own
 * (tests/unit/torture_credproxy.c): the capability table, route selection, which client
 * headers are stripped and which header is injected. The I/O lives in guestd-cred.c.
 *
 * Capabilities, never secrets (invariant 5): a session's sandbox gets one random token per
 * credential route ("sawcap_" + 43 base64url characters, 256 bits from getrandom()); the
 * token is only a name for "this session may use this route through this proxy". It is
 * checked in constant time against every live token, bound to its session and route, and
 * dropped when the session ends.
 *
 * Ownership: a gcred_caps table owns its entries (tokens wiped on drop); gcred_caps_find()
 * returns a borrowed entry valid until the next change of the table.
 */
#ifndef SAW_GUESTD_CRED_H
#define SAW_GUESTD_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "guestd/guestd-proxy.h"

#define GCRED_TOKEN_PREFIX "sawcap_"
#define GCRED_TOKEN_LEN 50 /* prefix + 43 */
#define GCRED_ROUTE_MAX 63
#define GCRED_SID_MAX 127

struct policy_cred_route;

struct gcred_cap {
	TAILQ_ENTRY(gcred_cap) entry;
	char sid[GCRED_SID_MAX + 1];
	char route[GCRED_ROUTE_MAX + 1];
	char token[GCRED_TOKEN_LEN + 1];
};
TAILQ_HEAD(gcred_cap_list, gcred_cap);

struct gcred_caps {
	struct gcred_cap_list list;
	size_t n;
};

void gcred_caps_init(struct gcred_caps *t);
/* The capability of (sid, route), minted if there is none. NULL: invalid names, table full
 * or no randomness. */
const struct gcred_cap *gcred_caps_mint(struct gcred_caps *t, const char *sid, const char *route);
/* The capability whose token equals tok[0..len), compared in constant time against every
 * entry (the time taken does not depend on which entry or how many bytes match); restricted
 * to session sid unless sid is NULL. */
const struct gcred_cap *gcred_caps_find(const struct gcred_caps *t, const char *tok, size_t len,
					const char *sid);
/* Drops every capability of sid. Returns how many. */
size_t gcred_caps_drop(struct gcred_caps *t, const char *sid);
void gcred_caps_free(struct gcred_caps *t);
/* "SAW_CAP_<ROUTE>" for a route name into out. 0 or -1. */
int gcred_env_name(const char *route, char *out, size_t outlen);

/*
 * The route a request names: the first path segment ("/openai/v1/chat/completions" →
 * "openai", rest "/v1/chat/completions"); *rest is the offset of the rest within path.
 * 0, or -1 if the path has no usable first segment.
 */
int gcred_route_of(const char *path, size_t len, char *route, size_t routelen, size_t *rest);
/* May a route of this kind ("openai", "anthropic", "generic") be asked for rest (path and
 * query, starting with '/')? openai: /v1/chat/completions, /v1/responses; anthropic:
 * /v1/messages; generic: anything. */
bool gcred_path_allowed(const char *kind, const char *rest, size_t len);
/* Is this a header through which a client could present or smuggle credentials, or a
 * hop-by-hop header we set ourselves? Such headers are never forwarded. */
bool gcred_header_stripped(const char *name, size_t len);
/* The capabilities the client may have presented, in this order: "Authorization: Bearer
 * X", "x-api-key: X", "api-key: X" (every occurrence). At most max; returns how many. */
size_t gcred_presented(const char *buf, const struct gproxy_request *r, const char **tok,
		       size_t *len, size_t max);
/*
 * The upstream request headers: the client's headers except the stripped ones, then the
 * route's header with the secret ("Authorization: Bearer SECRET", "x-api-key: SECRET"…),
 * then "Expect:" (no 100-continue). *out is appended to; the caller frees it with
 * gcred_headers_free() (which wipes it). 0, or -1 (out of memory, or a secret with
 * control characters: never a header injection).
 */
int gcred_headers(const char *buf, const struct gproxy_request *r,
		  const struct policy_cred_route *route, const char *secret,
		  struct curl_slist **out);
void gcred_headers_free(struct curl_slist *l);

#endif
