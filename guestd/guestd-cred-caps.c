/*
 * The credential proxy's pure pieces (guestd-cred.h): capabilities, route selection,
 * header stripping and injection. No I/O but getrandom().
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "guestd/guestd-cred.h"
#include "guestd/policy.h"

#define GCRED_MAX_CAPS 4096

void
gcred_caps_init(struct gcred_caps *t)
{
	TAILQ_INIT(&t->list);
	t->n = 0;
}

static bool
gcred_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strchr(s, '/') == NULL;
}

/* 43 base64url characters from 32 random bytes. */
static int
gcred_random_token(char out[GCRED_TOKEN_LEN + 1])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33];
	size_t i, o, got = 0;
	uint32_t v;
	ssize_t n;

	while (got < 32) {
		n = getrandom(raw + got, 32 - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	raw[32] = 0;
	memcpy(out, GCRED_TOKEN_PREFIX, sizeof(GCRED_TOKEN_PREFIX) - 1);
	o = sizeof(GCRED_TOKEN_PREFIX) - 1;
	for (i = 0; i < 33; i += 3) {
		v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	out[GCRED_TOKEN_LEN] = '\0'; /* 7 + 43: the 44th character encodes only padding */
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

const struct gcred_cap *
gcred_caps_mint(struct gcred_caps *t, const char *sid, const char *route)
{
	struct gcred_cap *c;

	if (!gcred_name_ok(sid, GCRED_SID_MAX) || !gcred_name_ok(route, GCRED_ROUTE_MAX))
		return NULL;
	TAILQ_FOREACH(c, &t->list, entry)
		if (strcmp(c->sid, sid) == 0 && strcmp(c->route, route) == 0)
			return c;
	if (t->n >= GCRED_MAX_CAPS || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (gcred_random_token(c->token) != 0) {
		free(c);
		return NULL;
	}
	snprintf(c->sid, sizeof(c->sid), "%s", sid);
	snprintf(c->route, sizeof(c->route), "%s", route);
	TAILQ_INSERT_TAIL(&t->list, c, entry);
	t->n++;
	return c;
}

/* Constant time in the contents: every byte of both is looked at. */
static bool
gcred_ct_equal(const char *a, const char *tok, size_t len)
{
	unsigned char d = 0;
	size_t i;

	if (len != GCRED_TOKEN_LEN)
		return false; /* the length of a valid token is public */
	for (i = 0; i < GCRED_TOKEN_LEN; i++)
		d |= (unsigned char)(a[i] ^ tok[i]);
	return d == 0;
}

const struct gcred_cap *
gcred_caps_find(const struct gcred_caps *t, const char *tok, size_t len, const char *sid)
{
	const struct gcred_cap *c, *found = NULL;

	if (tok == NULL || len != GCRED_TOKEN_LEN)
		return NULL;
	/* no early exit: the search takes the same time wherever the match is */
	TAILQ_FOREACH(c, &t->list, entry) {
		bool eq = gcred_ct_equal(c->token, tok, len);

		if (eq && (sid == NULL || strcmp(c->sid, sid) == 0))
			found = c;
	}
	return found;
}

static void
gcred_cap_free(struct gcred_caps *t, struct gcred_cap *c)
{
	TAILQ_REMOVE(&t->list, c, entry);
	t->n--;
	explicit_bzero(c, sizeof(*c));
	free(c);
}

size_t
gcred_caps_drop(struct gcred_caps *t, const char *sid)
{
	struct gcred_cap *c, *next;
	size_t n = 0;

	for (c = TAILQ_FIRST(&t->list); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (strcmp(c->sid, sid) == 0) {
			gcred_cap_free(t, c);
			n++;
		}
	}
	return n;
}

void
gcred_caps_free(struct gcred_caps *t)
{
	struct gcred_cap *c;

	while ((c = TAILQ_FIRST(&t->list)) != NULL)
		gcred_cap_free(t, c);
}

int
gcred_env_name(const char *route, char *out, size_t outlen)
{
	size_t i, n = strlen(route);

	if (n == 0 || n + 9 > outlen)
		return -1;
	memcpy(out, "SAW_CAP_", 8);
	for (i = 0; i < n; i++)
		out[8 + i] = isalnum((unsigned char)route[i]) ?
				     (char)toupper((unsigned char)route[i]) :
				     '_';
	out[8 + n] = '\0';
	return 0;
}

int
gcred_route_of(const char *path, size_t len, char *route, size_t routelen, size_t *rest)
{
	size_t i;

	if (len < 2 || path[0] != '/')
		return -1;
	for (i = 1; i < len && path[i] != '/' && path[i] != '?'; i++)
		if (!isalnum((unsigned char)path[i]) && path[i] != '-' && path[i] != '_' &&
		    path[i] != '.')
			return -1;
	if (i == 1 || i - 1 >= routelen || i - 1 > GCRED_ROUTE_MAX)
		return -1;
	memcpy(route, path + 1, i - 1);
	route[i - 1] = '\0';
	*rest = i;
	return 0;
}

/* rest equals p, possibly followed by a query. */
static bool
gcred_path_is(const char *rest, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && memcmp(rest, p, n) == 0 && (len == n || rest[n] == '?');
}

bool
gcred_path_allowed(const char *kind, const char *rest, size_t len)
{
	size_t i;

	if (len == 0 || rest[0] != '/')
		return false;
	/* no dot segments or encoded slashes that the upstream might read differently */
	for (i = 0; i + 1 < len && rest[i] != '?'; i++)
		if ((rest[i] == '/' && rest[i + 1] == '.') ||
		    (rest[i] == '%' && i + 2 < len && rest[i + 1] == '2' &&
		     (rest[i + 2] == 'f' || rest[i + 2] == 'F')))
			return false;
	if (kind == NULL || strcmp(kind, "generic") == 0)
		return true;
	if (strcmp(kind, "openai") == 0)
		return gcred_path_is(rest, len, "/v1/chat/completions") ||
		       gcred_path_is(rest, len, "/v1/responses");
	if (strcmp(kind, "anthropic") == 0)
		return gcred_path_is(rest, len, "/v1/messages");
	return false;
}

bool
gcred_header_stripped(const char *name, size_t len)
{
	static const char *const strip[] = {
		/* credentials in any form a client or upstream might honour */
		"Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Cookie",
		"X-Goog-Api-Key", "Ocp-Apim-Subscription-Key",
		/* hop-by-hop, and what curl sets itself */
		"Host", "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Expect", NULL
	};
	size_t i;

	for (i = 0; strip[i] != NULL; i++)
		if (strlen(strip[i]) == len && strncasecmp(name, strip[i], len) == 0)
			return true;
	return false;
}

size_t
gcred_presented(const char *buf, const struct gproxy_request *r, const char **tok, size_t *len,
		size_t max)
{
	static const char *const names[] = { "Authorization", "x-api-key", "api-key" };
	const char *v;
	size_t i, k, n = 0;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		for (i = 0; i < r->nheaders && n < max; i++) {
			if (!gproxy_header_is(buf, &r->headers[i], names[k]))
				continue;
			v = buf + r->headers[i].value;
			len[n] = r->headers[i].value_len;
			if (k == 0) {
				if (len[n] <= 7 || strncasecmp(v, "Bearer ", 7) != 0)
					continue;
				v += 7;
				len[n] -= 7;
				while (len[n] > 0 && *v == ' ') {
					v++;
					len[n]--;
				}
			}
			tok[n++] = v;
		}
	}
	return n;
}

static bool
gcred_value_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int
gcred_append(struct curl_slist **out, const char *line)
{
	struct curl_slist *n = curl_slist_append(*out, line);

	if (n == NULL)
		return -1;
	*out = n;
	return 0;
}

int
gcred_headers(const char *buf, const struct gproxy_request *r,
	      const struct policy_cred_route *route, const char *secret, struct curl_slist **out)
{
	const struct gproxy_header *h;
	char *line = NULL;
	size_t i, n, cap;
	int rc = -1;

	if (secret == NULL || secret[0] == '\0' || !gcred_value_ok(secret) ||
	    route->header == NULL || !gcred_value_ok(route->header) ||
	    (route->scheme != NULL && !gcred_value_ok(route->scheme)))
		return -1;
	cap = GPROXY_MAX_HEAD + strlen(secret) + strlen(route->header) +
	      (route->scheme ? strlen(route->scheme) : 0) + 8;
	if ((line = malloc(cap)) == NULL)
		return -1;
	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (gcred_header_stripped(buf + h->name, h->name_len) ||
		    (strlen(route->header) == h->name_len &&
		     strncasecmp(buf + h->name, route->header, h->name_len) == 0))
			continue;
		/* "Name:" alone would make curl drop a header: send "Name;" for empty ones */
		if (h->value_len == 0)
			snprintf(line, cap, "%.*s;", (int)h->name_len, buf + h->name);
		else
			snprintf(line, cap, "%.*s: %.*s", (int)h->name_len, buf + h->name,
				 (int)h->value_len, buf + h->value);
		if (gcred_append(out, line) != 0)
			goto out;
	}
	n = (size_t)snprintf(line, cap, "%s: %s%s%s", route->header,
			     route->scheme ? route->scheme : "", route->scheme ? " " : "", secret);
	if (n >= cap || gcred_append(out, line) != 0)
		goto out;
	if (gcred_append(out, "Expect:") != 0)
		goto out;
	rc = 0;
out:
	explicit_bzero(line, cap);
	free(line);
	return rc;
}

void
gcred_headers_free(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}
