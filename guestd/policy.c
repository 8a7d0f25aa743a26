/*
 * The policy document (policy.h, conf/saw-policy.5): strict parsing and the compiled
 * decision tables.
 *
 * Parsing is strict because a policy that says something other than what its author meant
 * is worse than no policy: unknown fields, duplicate keys, wrong types, out-of-range values
 * and ambiguous host names are errors that name their JSON path. The document never holds
 * a secret: credential routes carry a reference ("file:" or "command:"), checked by form.
 *
 * Decisions run per request, so the rules are compiled once:
 *   - every rule (egress rules and corporate services) gets a rank: denies first, then
 *     corporate services, then allows, each group in document order. The deciding rule is
 *     the matching rule of lowest rank, which is what makes deny win and corporate routing
 *     beat a public allow for the same host;
 *   - exact host names and the suffixes of "*.suffix" patterns go into two open-addressing
 *     hash tables whose entries list the ranks of the rules naming them, ascending. A
 *     decision hashes the host from its end so that one pass yields the hash of the whole
 *     name and of each label suffix, and looks up the name in the exact table and each
 *     proper suffix in the wildcard table: O(labels) lookups whatever the rule count;
 *   - ports are a few sorted ranges per rule; selectors are sorted ids of interned
 *     (kind, name) atoms, and the subject is resolved to its atoms only when a candidate
 *     rule has a selector.
 * A decision allocates nothing and does no I/O. Hash seeds are random per load so the
 * layout of the tables cannot be predicted from the document.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "guestd/netclass.h"
#include "guestd/policy.h"

#define POL_MAX_RULES 65536 /* egress rules */
#define POL_MAX_CORP 4096   /* corporate services */
#define POL_MAX_HOSTS_PER_RULE 1024
#define POL_MAX_PATTERNS 262144	  /* host patterns over all rules */
#define POL_MAX_PORTS 256	  /* port entries per rule */
#define POL_MAX_SELECT 1024	  /* names per selector list */
#define POL_MAX_SUBJECT_ATOMS 512 /* policy-known atoms of one subject */
#define POL_MAX_CREDS 256
#define POL_MAX_FS 256
#define POL_MAX_CIDRS 1024
#define POL_ID_MAX 64
#define POL_NAME_MAX 256 /* user, group, workspace names */
#define POL_PATH_MAX 1024
#define POL_URL_MAX 2048
#define POL_COMMENT_MAX 4096
#define POL_HOST_MAX 253
#define POL_HOST_BUF 256
#define POL_ERR_PATH 256
#define POL_WRITE_PATH_MAX 4096

enum pol_kind {
	POL_DENY = 0,
	POL_CORP = 1,
	POL_ALLOW = 2,
};

struct pol_range {
	uint16_t lo, hi;
};

struct pol_sel {
	const uint32_t *atoms; /* sorted atom ids; n == 0: everyone */
	uint32_t n;
};

struct pol_rule {
	const char *id;
	uint8_t kind;
	uint8_t all_ports;
	uint16_t nports;
	const struct pol_range *ports;
	struct pol_sel sel;
};

struct pol_ent {
	uint64_t h;
	const char *key; /* NULL: empty slot */
	uint32_t len;
	uint32_t off; /* into refs[] (host tables) or the atom id (atom table) */
	uint32_t n;
};

struct pol_tab {
	struct pol_ent *e;
	size_t mask; /* capacity - 1; capacity a power of two, or 0 entries */
};

struct pol_cidr {
	int family;
	int prefix;
	uint8_t net[16];
	struct pol_sel sel;
};

struct pol_chunk {
	struct pol_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct policy {
	unsigned int refs;
	int64_t version;
	const char *profile;
	uint64_t seed;

	struct pol_rule *rules;
	size_t nrules;
	uint32_t *refs_all;
	struct pol_tab exact, wild, atoms;

	struct policy_cred_route *creds;
	struct pol_sel *cred_sel;
	size_t ncreds;

	const char **writable; /* NULL-terminated */
	const char **protected_;
	const char **protected_rule; /* "protected:ENTRY", parallel */
	const char **writable_rule;  /* "writable:PATH", parallel */
	size_t nwritable, nprotected;

	struct pol_cidr *cidrs;
	size_t ncidrs;

	struct policy_limits limits;
	struct pol_chunk *arena;
};

/* ---- arena: everything a policy owns, freed at once -------------------------------------- */

static void *
pol_alloc(struct policy *p, size_t n)
{
	struct pol_chunk *c = p->arena;
	size_t a = sizeof(max_align_t), need = (n + a - 1) / a * a, size;

	if (n == 0)
		need = a;
	if (c == NULL || c->size - c->used < need) {
		size = need > 65536 ? need : 65536;
		if ((c = calloc(1, sizeof(*c) + size)) == NULL)
			return NULL;
		c->size = size;
		c->next = p->arena;
		p->arena = c;
	}
	c->used += need;
	return (char *)c->data + c->used - need;
}

static char *
pol_strndup(struct policy *p, const char *s, size_t n)
{
	char *d = pol_alloc(p, n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static char *
pol_strcat2(struct policy *p, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *d = pol_alloc(p, la + lb + 1);

	if (d != NULL) {
		memcpy(d, a, la);
		memcpy(d + la, b, lb + 1);
	}
	return d;
}

/* ---- hashing: FNV-1a over the bytes from last to first, then a 64-bit finaliser ---------- */

#define POL_FNV_PRIME 0x100000001b3ULL

static inline uint64_t
pol_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * POL_FNV_PRIME;
}

static inline uint64_t
pol_fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
pol_hash(uint64_t seed, const char *s, size_t n)
{
	uint64_t h = seed;

	while (n > 0)
		h = pol_step(h, (unsigned char)s[--n]);
	return pol_fin(h);
}

static const struct pol_ent *
pol_tab_get(const struct pol_tab *t, uint64_t h, const char *key, size_t len)
{
	size_t i;

	if (t->e == NULL)
		return NULL;
	for (i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
		const struct pol_ent *e = &t->e[i];

		if (e->key == NULL)
			return NULL;
		if (e->h == h && e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
}

/* Capacity for n keys at load factor <= 1/2. */
static int
pol_tab_init(struct policy *p, struct pol_tab *t, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	if ((t->e = pol_alloc(p, cap * sizeof(*t->e))) == NULL)
		return -1;
	memset(t->e, 0, cap * sizeof(*t->e));
	t->mask = cap - 1;
	return 0;
}

static void
pol_tab_put(struct pol_tab *t, uint64_t h, const char *key, size_t len, uint32_t off, uint32_t n)
{
	size_t i;

	for (i = (size_t)h & t->mask; t->e[i].key != NULL; i = (i + 1) & t->mask)
		;
	t->e[i].h = h;
	t->e[i].key = key;
	t->e[i].len = (uint32_t)len;
	t->e[i].off = off;
	t->e[i].n = n;
}

/* ---- names, hosts, paths ---------------------------------------------------------------- */

static const char *const pol_builtin_rules[] = {
	"default-deny", "no-policy",	"invalid-host",
	"invalid-port", "invalid-path", "subject-too-many-groups",
	"home",		"session-tmp",	"read-only",
	NULL,
};

static int
pol_is_id(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > POL_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			continue;
		if (i > 0 && (ch == '.' || ch == '_' || ch == '-' || ch == ':'))
			continue;
		return 0;
	}
	return 1;
}

static int
pol_printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * A host as the rules name it (strict: lowercase, no trailing dot, no brackets) or as a
 * request names it (lenient: lowercased, one trailing dot and IPv6 brackets removed). Both
 * yield the same canonical text, so a request cannot slip past a rule by spelling: IP
 * literals are printed canonically, IPv4-mapped IPv6 literals become their IPv4 address,
 * and names that a resolver would read as an IPv4 address in another notation ("1.2.3",
 * "0x7f.1", "2130706433") are refused rather than matched as names. Returns the length of
 * the canonical host in out (POL_HOST_BUF bytes), or -1.
 */
static int
pol_host_norm(const char *in, size_t n, int strict, char *out, int *is_ip)
{
	char buf[POL_HOST_BUF];
	struct in6_addr a6;
	struct in_addr a4;
	uint32_t v4;
	size_t i, label = 0;
	int digits_only = 1, colon = 0;

	*is_ip = 0;
	if (!strict && n >= 2 && in[0] == '[' && in[n - 1] == ']') {
		in++;
		n -= 2;
		colon = 1;
	}
	if (n == 0 || n > POL_HOST_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (in[i] == ':')
			colon = 1;
	if (colon) {
		if (n > 63)
			return -1;
		memcpy(buf, in, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -1;
		*is_ip = 1;
		if (netclass_embedded_ipv4(&a6, &v4) == NETCLASS_EMBED_MAPPED) {
			a4.s_addr = htonl(v4);
			if (inet_ntop(AF_INET, &a4, out, POL_HOST_BUF) == NULL)
				return -1;
		} else if (inet_ntop(AF_INET6, &a6, out, POL_HOST_BUF) == NULL) {
			return -1;
		}
		return (int)strlen(out);
	}
	if (!strict && in[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch >= 'A' && ch <= 'Z') {
			if (strict)
				return -1;
			ch = (unsigned char)(ch - 'A' + 'a');
		}
		if (ch == '.') {
			if (label == 0 || out[i - 1] == '-')
				return -1;
			label = 0;
			digits_only = 1;
			out[i] = '.';
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      (!strict && ch == '_')))
			return -1;
		if (ch == '-' && label == 0)
			return -1;
		if (ch < '0' || ch > '9')
			digits_only = 0;
		if (++label > 63)
			return -1;
		out[i] = (char)ch;
	}
	if (label == 0 || out[n - 1] == '-')
		return -1;
	out[n] = '\0';
	if (inet_pton(AF_INET, out, &a4) == 1) {
		*is_ip = 1;
		return (int)n;
	}
	/* a numeric last label, or any other spelling inet_aton() takes for an address */
	if (digits_only || ((out[0] >= '0' && out[0] <= '9') && inet_aton(out, &a4) != 0))
		return -1;
	return (int)n;
}

/* Lexically normalised absolute path ("/a/./b/../c" → "/a/c"), at most outlen - 1 bytes. */
static int
pol_path_norm(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = in, *q;

	if (in == NULL || in[0] != '/' || outlen < 2)
		return -1;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		for (q = p; *q != '\0' && *q != '/'; q++)
			;
		if (q - p == 1 && p[0] == '.') {
			/* nothing */
		} else if (q - p == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o + 1 + (size_t)(q - p) >= outlen)
				return -1;
			out[o++] = '/';
			memcpy(out + o, p, (size_t)(q - p));
			o += (size_t)(q - p);
		}
		p = q;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return (int)o;
}

/* Is path equal to dir or below it? dir is normalised, not "/" (unless path is). */
static int
pol_path_under(const char *path, size_t plen, const char *dir, size_t dlen)
{
	if (dlen == 1 && dir[0] == '/')
		return 1;
	return plen >= dlen && memcmp(path, dir, dlen) == 0 && (plen == dlen || path[dlen] == '/');
}

/* Does the relative entry rel (components) occur in path at component boundaries? */
static int
pol_path_contains(const char *path, size_t plen, const char *rel, size_t rlen)
{
	size_t i;

	for (i = 0; i + rlen < plen; i++) {
		if (path[i] != '/')
			continue;
		if (memcmp(path + i + 1, rel, rlen) == 0 &&
		    (i + 1 + rlen == plen || path[i + 1 + rlen] == '/'))
			return 1;
	}
	return 0;
}

/* ---- the parser --------------------------------------------------------------------------- */

struct pol_tmprule {
	const char *id;
	int kind;
	size_t doc; /* document order within its kind */
	int all_ports;
	struct pol_range *ports;
	size_t nports;
	const char **sel_names; /* "g…", "u…", "w…": kind letter + name */
	size_t nsel;
	const char **hosts; /* canonical; "*.x" kept as "*.x" */
	size_t nhosts;
};

struct pol_pattern {
	const char *key;
	uint32_t len;
	uint8_t wild;
	uint32_t rank;
};

/* A selector waiting for atom ids (rules, routes, address entries). */
struct pol_selref {
	struct pol_sel *sel;
	const char **names;
	size_t n;
};

struct pol_parse {
	struct policy *p;
	char path[POL_ERR_PATH];
	size_t plen;
	char *err;
	size_t errlen;
	int failed;

	struct pol_tmprule *rules;
	size_t nrules, caprules;
	struct pol_selref *selrefs;
	size_t nselrefs, capselrefs;
	size_t npatterns;
	const char **ids; /* borrowed from the arena */
	size_t nids, capids;
};

static void pol_err(struct pol_parse *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
pol_err(struct pol_parse *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->failed)
		return;
	c->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err != NULL && c->errlen > 0)
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
}

static void
pol_oom(struct pol_parse *c)
{
	pol_err(c, "out of memory");
}

/* Appends ".key" (printable bytes only, bounded) or "[i]" to the path; returns the old
 * length for pol_pop(). */
static size_t
pol_push_key(struct pol_parse *c, const char *key)
{
	size_t old = c->plen, i;

	if (c->plen + 1 < sizeof(c->path))
		c->path[c->plen++] = '.';
	for (i = 0; key[i] != '\0' && i < 64 && c->plen + 1 < sizeof(c->path); i++)
		c->path[c->plen++] = pol_printable(key + i, 1) ? key[i] : '?';
	c->path[c->plen] = '\0';
	return old;
}

static size_t
pol_push_index(struct pol_parse *c, size_t idx)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", idx);

	if (n > 0 && (size_t)n < sizeof(c->path) - c->plen)
		c->plen += (size_t)n;
	else
		c->path[c->plen] = '\0';
	return old;
}

static void
pol_pop(struct pol_parse *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

static const char *
pol_vis(const char *s, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 4 < len; i++)
		buf[o++] = pol_printable(s + i, 1) && s[i] != '"' ? s[i] : '?';
	if (s[i] != '\0' && o + 4 <= len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* Unknown members are errors: a misspelt "deny" field must not quietly mean "allow". */
static int
pol_keys(struct pol_parse *c, json_t *obj, const char *const *allowed, const char *expect)
{
	const char *key;
	json_t *v;
	size_t i, old;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			old = pol_push_key(c, key);
			pol_err(c, "unknown field (expected %s)", expect);
			pol_pop(c, old);
			return -1;
		}
	}
	return 0;
}

static int
pol_need_object(struct pol_parse *c, json_t *v)
{
	if (!json_is_object(v)) {
		pol_err(c, "must be an object");
		return -1;
	}
	return 0;
}

static int
pol_need_array(struct pol_parse *c, json_t *v, size_t min, size_t max)
{
	if (!json_is_array(v)) {
		pol_err(c, "must be an array");
		return -1;
	}
	if (json_array_size(v) < min) {
		pol_err(c, "must not be empty");
		return -1;
	}
	if (json_array_size(v) > max) {
		pol_err(c, "too many entries (at most %zu)", max);
		return -1;
	}
	return 0;
}

/* A string member of 1..max bytes without control characters; NULL on error. */
static const char *
pol_string(struct pol_parse *c, json_t *v, size_t max)
{
	if (!json_is_string(v)) {
		pol_err(c, "must be a string");
		return NULL;
	}
	if (json_string_length(v) == 0 || json_string_length(v) > max) {
		pol_err(c, "must be a string of 1 to %zu bytes", max);
		return NULL;
	}
	if (!pol_printable(json_string_value(v), json_string_length(v))) {
		pol_err(c, "must not contain control characters");
		return NULL;
	}
	return json_string_value(v);
}

/* A required member: sets the path to it; the caller pops. */
static json_t *
pol_member(struct pol_parse *c, json_t *obj, const char *key, int required)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL && required) {
		pol_err(c, "missing required field \"%s\"", key);
		return NULL;
	}
	return v;
}

static int
pol_comment(struct pol_parse *c, json_t *obj)
{
	json_t *v = json_object_get(obj, "comment");
	size_t old;
	int rc = 0;

	if (v == NULL)
		return 0;
	old = pol_push_key(c, "comment");
	if (!json_is_string(v) || json_string_length(v) > POL_COMMENT_MAX) {
		pol_err(c, "must be a string of at most %d bytes", POL_COMMENT_MAX);
		rc = -1;
	}
	pol_pop(c, old);
	return rc;
}

static int
pol_selref_add(struct pol_parse *c, struct pol_sel *sel, const char **names, size_t n)
{
	struct pol_selref *r;

	if (c->nselrefs == c->capselrefs) {
		size_t cap = c->capselrefs ? c->capselrefs * 2 : 64;

		if ((r = realloc(c->selrefs, cap * sizeof(*r))) == NULL) {
			pol_oom(c);
			return -1;
		}
		c->selrefs = r;
		c->capselrefs = cap;
	}
	c->selrefs[c->nselrefs].sel = sel;
	c->selrefs[c->nselrefs].names = names;
	c->selrefs[c->nselrefs].n = n;
	c->nselrefs++;
	return 0;
}

/* "select": {"groups": […], "users": […], "workspaces": […]} → atom names in the arena. */
static int
pol_select(struct pol_parse *c, json_t *v, const char ***names, size_t *n)
{
	static const char *const keys[] = { "groups", "users", "workspaces", NULL };
	static const char kinds[] = { 'g', 'u', 'w' };
	const char **out;
	size_t total = 0, i, j, old, old2;
	int rc = -1;

	*names = NULL;
	*n = 0;
	if (v == NULL)
		return 0;
	old = pol_push_key(c, "select");
	if (pol_need_object(c, v) != 0 ||
	    pol_keys(c, v, keys, "\"groups\", \"users\" or \"workspaces\"") != 0)
		goto out;
	for (i = 0; keys[i] != NULL; i++) {
		json_t *a = json_object_get(v, keys[i]);

		if (a == NULL)
			continue;
		old2 = pol_push_key(c, keys[i]);
		if (pol_need_array(c, a, 0, POL_MAX_SELECT) != 0)
			goto out;
		pol_pop(c, old2);
		total += json_array_size(a);
	}
	if (total == 0) {
		pol_err(c, "must name at least one group, user or workspace (leave \"select\" "
			   "out to apply the rule to everyone)");
		goto out;
	}
	if ((out = pol_alloc(c->p, total * sizeof(*out))) == NULL) {
		pol_oom(c);
		goto out;
	}
	for (i = 0; keys[i] != NULL; i++) {
		json_t *a = json_object_get(v, keys[i]), *e;
		char buf[POL_NAME_MAX + 2];

		if (a == NULL)
			continue;
		old2 = pol_push_key(c, keys[i]);
		json_array_foreach(a, j, e) {
			size_t old3 = pol_push_index(c, j);
			const char *s = pol_string(c, e, POL_NAME_MAX);

			if (s == NULL)
				goto out;
			buf[0] = kinds[i];
			memcpy(buf + 1, s, strlen(s) + 1);
			if ((out[*n] = pol_strndup(c->p, buf, strlen(buf))) == NULL) {
				pol_oom(c);
				goto out;
			}
			(*n)++;
			pol_pop(c, old3);
		}
		pol_pop(c, old2);
	}
	*names = out;
	rc = 0;
out:
	if (rc == 0)
		pol_pop(c, old);
	return rc;
}

static int
pol_range_cmp(const void *a, const void *b)
{
	const struct pol_range *x = a, *y = b;

	return (int)x->lo - (int)y->lo;
}

static int
pol_ports(struct pol_parse *c, json_t *v, struct pol_tmprule *r)
{
	json_t *e;
	size_t i, o;

	if (pol_need_array(c, v, 1, POL_MAX_PORTS) != 0)
		return -1;
	if ((r->ports = pol_alloc(c->p, json_array_size(v) * sizeof(*r->ports))) == NULL) {
		pol_oom(c);
		return -1;
	}
	json_array_foreach(v, i, e) {
		size_t old = pol_push_index(c, i);
		long lo, hi = -1;
		char *end;

		if (json_is_integer(e)) {
			lo = hi = json_integer_value(e) < 1 || json_integer_value(e) > 65535 ?
					  -1 :
					  (long)json_integer_value(e);
		} else if (json_is_string(e) && json_string_length(e) <= 11 &&
			   json_string_value(e)[0] >= '0' && json_string_value(e)[0] <= '9') {
			errno = 0;
			lo = strtol(json_string_value(e), &end, 10);
			if (*end != '-' || end[1] < '0' || end[1] > '9')
				lo = -1;
			else
				hi = strtol(end + 1, &end, 10);
			if (*end != '\0' || errno != 0)
				lo = -1;
		} else {
			lo = -1;
		}
		if (lo < 1 || lo > 65535 || hi < lo || hi > 65535) {
			pol_err(c, "must be a port 1..65535 or a range \"LO-HI\" within it");
			return -1;
		}
		r->ports[i].lo = (uint16_t)lo;
		r->ports[i].hi = (uint16_t)hi;
		pol_pop(c, old);
	}
	/* sort and merge overlapping or adjacent ranges */
	qsort(r->ports, json_array_size(v), sizeof(*r->ports), pol_range_cmp);
	for (i = 1, o = 0; i < json_array_size(v); i++) {
		if ((uint32_t)r->ports[i].lo <= (uint32_t)r->ports[o].hi + 1) {
			if (r->ports[i].hi > r->ports[o].hi)
				r->ports[o].hi = r->ports[i].hi;
		} else {
			r->ports[++o] = r->ports[i];
		}
	}
	r->nports = o + 1;
	if (r->nports == 1 && r->ports[0].lo == 1 && r->ports[0].hi == 65535)
		r->all_ports = 1;
	return 0;
}

static struct pol_tmprule *
pol_rule_new(struct pol_parse *c)
{
	struct pol_tmprule *r;

	if (c->nrules == c->caprules) {
		size_t cap = c->caprules ? c->caprules * 2 : 64;

		if ((r = realloc(c->rules, cap * sizeof(*r))) == NULL) {
			pol_oom(c);
			return NULL;
		}
		c->rules = r;
		c->caprules = cap;
	}
	r = &c->rules[c->nrules++];
	memset(r, 0, sizeof(*r));
	return r;
}

static int
pol_id_unique(struct pol_parse *c, const char *id)
{
	size_t i;

	for (i = 0; pol_builtin_rules[i] != NULL; i++)
		if (strcmp(id, pol_builtin_rules[i]) == 0) {
			pol_err(c, "\"%s\" is a built-in rule name", id);
			return -1;
		}
	if (strncmp(id, "protected:", 10) == 0 || strncmp(id, "writable:", 9) == 0) {
		pol_err(c, "\"protected:\" and \"writable:\" are reserved prefixes");
		return -1;
	}
	return 0;
}

/* One host pattern: exact name, IP literal, or "*.name". */
static const char *
pol_host_pattern(struct pol_parse *c, json_t *v, int wild_ok)
{
	char buf[POL_HOST_BUF + 2], vis[80];
	const char *s;
	int is_ip, n, wild = 0;

	if ((s = pol_string(c, v, POL_HOST_MAX + 2)) == NULL)
		return NULL;
	if (s[0] == '*' && s[1] == '.' && wild_ok) {
		wild = 1;
		s += 2;
	}
	if (strchr(s, '*') != NULL) {
		pol_err(c,
			"\"%s\": a wildcard is allowed only as the whole first label "
			"(\"*.example.com\")%s",
			pol_vis(json_string_value(v), vis, sizeof(vis)),
			wild_ok ? "" : ", and not here");
		return NULL;
	}
	n = pol_host_norm(s, strlen(s), 1, buf + 2, &is_ip);
	if (n < 0 || (wild && is_ip)) {
		pol_err(c,
			"\"%s\" is not a host name (lowercase letters, digits and '-' in labels "
			"of at most 63, at most 253 in all, no trailing dot, not all-numeric at "
			"the end) or an IP literal%s",
			pol_vis(json_string_value(v), vis, sizeof(vis)),
			wild_ok ? ", or \"*.\" before a name" : "");
		return NULL;
	}
	if (wild) {
		buf[0] = '*';
		buf[1] = '.';
		return pol_strndup(c->p, buf, (size_t)n + 2);
	}
	return pol_strndup(c->p, buf + 2, (size_t)n);
}

/* Ids (egress ids and corporate names together) seen so far: a hash set, so that a policy
 * of tens of thousands of rules is not checked in quadratic time. */
static int
pol_check_unique(struct pol_parse *c, const char *id)
{
	uint64_t h = pol_hash(0, id, strlen(id));
	size_t i;

	if (2 * (c->nids + 1) > c->capids) {
		size_t cap = c->capids ? c->capids * 2 : 256, j;
		const char **n = calloc(cap, sizeof(*n));

		if (n == NULL) {
			pol_oom(c);
			return -1;
		}
		for (j = 0; j < c->capids; j++) {
			if (c->ids[j] == NULL)
				continue;
			for (i = pol_hash(0, c->ids[j], strlen(c->ids[j])) & (cap - 1);
			     n[i] != NULL; i = (i + 1) & (cap - 1))
				;
			n[i] = c->ids[j];
		}
		free(c->ids);
		c->ids = n;
		c->capids = cap;
	}
	for (i = h & (c->capids - 1); c->ids[i] != NULL; i = (i + 1) & (c->capids - 1))
		if (strcmp(c->ids[i], id) == 0) {
			pol_err(c,
				"\"%s\" is used twice (egress ids and corporate names are unique "
				"together)",
				id);
			return -1;
		}
	c->ids[i] = id;
	c->nids++;
	return 0;
}

static int
pol_egress(struct pol_parse *c, json_t *arr)
{
	static const char *const keys[] = { "id",     "action",	 "hosts", "ports",
					    "select", "comment", NULL };
	json_t *e, *v;
	size_t i, j, old, old2, ndeny = 0, nallow = 0;

	if (pol_need_array(c, arr, 0, POL_MAX_RULES) != 0)
		return -1;
	json_array_foreach(arr, i, e) {
		struct pol_tmprule *r;
		const char *s;

		old = pol_push_index(c, i);
		if (pol_need_object(c, e) != 0 ||
		    pol_keys(c, e, keys, "id, action, hosts, ports, select, comment") != 0 ||
		    pol_comment(c, e) != 0 || (r = pol_rule_new(c)) == NULL)
			return -1;
		if ((v = pol_member(c, e, "id", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "id");
		if ((s = pol_string(c, v, POL_ID_MAX)) == NULL)
			return -1;
		if (!pol_is_id(s, strlen(s))) {
			pol_err(c,
				"must be letters, digits, '.', '_', '-', ':' (starting with a "
				"letter or digit, at most %d)",
				POL_ID_MAX);
			return -1;
		}
		if (pol_id_unique(c, s) != 0 || (r->id = pol_strndup(c->p, s, strlen(s))) == NULL ||
		    pol_check_unique(c, r->id) != 0)
			return -1;
		pol_pop(c, old2);

		if ((v = pol_member(c, e, "action", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "action");
		if (json_is_string(v) && strcmp(json_string_value(v), "allow") == 0) {
			r->kind = POL_ALLOW;
			r->doc = nallow++;
		} else if (json_is_string(v) && strcmp(json_string_value(v), "deny") == 0) {
			r->kind = POL_DENY;
			r->doc = ndeny++;
		} else {
			pol_err(c, "must be \"allow\" or \"deny\"");
			return -1;
		}
		pol_pop(c, old2);

		if ((v = pol_member(c, e, "hosts", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "hosts");
		if (pol_need_array(c, v, 1, POL_MAX_HOSTS_PER_RULE) != 0)
			return -1;
		if ((r->hosts = pol_alloc(c->p, json_array_size(v) * sizeof(*r->hosts))) == NULL) {
			pol_oom(c);
			return -1;
		}
		for (j = 0; j < json_array_size(v); j++) {
			size_t old3 = pol_push_index(c, j);

			if ((r->hosts[j] = pol_host_pattern(c, json_array_get(v, j), 1)) == NULL)
				return -1;
			pol_pop(c, old3);
		}
		r->nhosts = json_array_size(v);
		c->npatterns += r->nhosts;
		if (c->npatterns > POL_MAX_PATTERNS) {
			pol_err(c, "more than %d host patterns in the whole policy",
				POL_MAX_PATTERNS);
			return -1;
		}
		pol_pop(c, old2);

		/* An allow names its ports; a deny without ports covers them all. */
		v = json_object_get(e, "ports");
		if (v == NULL && r->kind == POL_ALLOW) {
			pol_err(c, "missing required field \"ports\" (an allow rule names its "
				   "ports; \"1-65535\" for all)");
			return -1;
		}
		if (v == NULL) {
			r->all_ports = 1;
		} else {
			old2 = pol_push_key(c, "ports");
			if (pol_ports(c, v, r) != 0)
				return -1;
			pol_pop(c, old2);
		}
		if (pol_select(c, json_object_get(e, "select"), &r->sel_names, &r->nsel) != 0)
			return -1;
		pol_pop(c, old);
	}
	return 0;
}

static int
pol_corporate(struct pol_parse *c, json_t *arr, int public_profile)
{
	static const char *const keys[] = { "name", "host", "port", "select", "comment", NULL };
	json_t *e, *v;
	size_t i, old, old2, ncorp = 0;

	if (pol_need_array(c, arr, 0, POL_MAX_CORP) != 0)
		return -1;
	if (public_profile && json_array_size(arr) > 0) {
		pol_err(c, "a \"public\" profile has no corporate services");
		return -1;
	}
	json_array_foreach(arr, i, e) {
		struct pol_tmprule *r;
		const char *s;

		old = pol_push_index(c, i);
		if (pol_need_object(c, e) != 0 ||
		    pol_keys(c, e, keys, "name, host, port, select, comment") != 0 ||
		    pol_comment(c, e) != 0 || (r = pol_rule_new(c)) == NULL)
			return -1;
		r->kind = POL_CORP;
		r->doc = ncorp++;
		if ((v = pol_member(c, e, "name", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "name");
		if ((s = pol_string(c, v, POL_ID_MAX)) == NULL)
			return -1;
		if (!pol_is_id(s, strlen(s))) {
			pol_err(c,
				"must be letters, digits, '.', '_', '-', ':' (starting with a "
				"letter or digit, at most %d)",
				POL_ID_MAX);
			return -1;
		}
		if (pol_id_unique(c, s) != 0 || (r->id = pol_strndup(c->p, s, strlen(s))) == NULL ||
		    pol_check_unique(c, r->id) != 0)
			return -1;
		pol_pop(c, old2);
		if ((v = pol_member(c, e, "host", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "host");
		if ((r->hosts = pol_alloc(c->p, sizeof(*r->hosts))) == NULL) {
			pol_oom(c);
			return -1;
		}
		if ((r->hosts[0] = pol_host_pattern(c, v, 0)) == NULL)
			return -1;
		r->nhosts = 1;
		c->npatterns++;
		pol_pop(c, old2);
		if ((v = pol_member(c, e, "port", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "port");
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65535) {
			pol_err(c, "must be a port 1..65535");
			return -1;
		}
		if ((r->ports = pol_alloc(c->p, sizeof(*r->ports))) == NULL) {
			pol_oom(c);
			return -1;
		}
		r->ports[0].lo = r->ports[0].hi = (uint16_t)json_integer_value(v);
		r->nports = 1;
		pol_pop(c, old2);
		if (pol_select(c, json_object_get(e, "select"), &r->sel_names, &r->nsel) != 0)
			return -1;
		pol_pop(c, old);
	}
	return 0;
}

static int
pol_is_token(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return 0;
	return 1;
}

/* https://HOST[:PORT][/PATH], or http:// to a loopback host (test upstreams). */
static int
pol_upstream(struct pol_parse *c, const char *url)
{
	char host[POL_HOST_BUF], canon[POL_HOST_BUF], vis[80];
	const char *p, *h, *end;
	int https, is_ip, loopback = 0;
	size_t hl;

	if (strncmp(url, "https://", 8) == 0) {
		https = 1;
		h = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		https = 0;
		h = url + 7;
	} else {
		pol_err(c, "\"%s\": the upstream must be an https:// URL",
			pol_vis(url, vis, sizeof(vis)));
		return -1;
	}
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL)
			goto bad;
		hl = (size_t)(end - h - 1);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, h + 1, hl);
		host[hl] = '\0';
		if (strchr(host, ':') == NULL)
			goto bad;
		end++;
	} else {
		for (end = h; *end != '\0' && *end != ':' && *end != '/'; end++)
			;
		hl = (size_t)(end - h);
		if (hl == 0 || hl >= sizeof(host))
			goto bad;
		memcpy(host, h, hl);
		host[hl] = '\0';
		if (strchr(host, '@') != NULL)
			goto bad;
	}
	if (pol_host_norm(host, strlen(host), 1, canon, &is_ip) < 0)
		goto bad;
	p = end;
	if (*p == ':') {
		long port;
		char *e2;

		if (p[1] < '0' || p[1] > '9')
			goto bad;
		errno = 0;
		port = strtol(p + 1, &e2, 10);
		if (errno != 0 || port < 1 || port > 65535 || e2 - p > 6)
			goto bad;
		p = e2;
	}
	if (*p != '\0' && *p != '/')
		goto bad;
	/* the path: RFC 3986 pchar without '%' (no escapes to misread), no dot segments */
	for (; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/-._~!$&'()*+,;=:@", *p) != NULL))
			goto bad;
	if (strstr(end, "/./") != NULL || strstr(end, "/../") != NULL ||
	    (strlen(end) >= 2 && strcmp(end + strlen(end) - 2, "/.") == 0) ||
	    (strlen(end) >= 3 && strcmp(end + strlen(end) - 3, "/..") == 0))
		goto bad;
	if (strcmp(canon, "localhost") == 0 || strcmp(canon, "::1") == 0 ||
	    strncmp(canon, "127.", 4) == 0)
		loopback = 1;
	if (!https && !loopback) {
		pol_err(c,
			"\"%s\": the upstream must be https:// (http:// only to a loopback "
			"test server)",
			pol_vis(url, vis, sizeof(vis)));
		return -1;
	}
	return 0;
bad:
	pol_err(c,
		"\"%s\" is not an upstream URL of the form https://HOST[:PORT][/PATH] (no "
		"user, query, fragment, '%%' escapes or dot segments)",
		pol_vis(url, vis, sizeof(vis)));
	return -1;
}

static int
pol_secret_ref(struct pol_parse *c, const char *s)
{
	const char *q;

	if (strncmp(s, "file:/", 6) == 0) {
		const char *path = s + 5;

		for (q = path; (q = strstr(q, "/..")) != NULL; q += 3)
			if (q[3] == '/' || q[3] == '\0')
				goto bad;
		for (q = path; (q = strstr(q, "/.")) != NULL; q += 2)
			if (q[2] == '/' || q[2] == '\0')
				goto bad;
		if (strstr(path, "//") != NULL || path[strlen(path) - 1] == '/')
			goto bad;
		return 0;
	}
	if (strncmp(s, "command:", 8) == 0) {
		q = s + 8;
		if (*q == '\0' || strlen(q) > 64)
			goto bad;
		for (; *q != '\0'; q++)
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			      (*q >= '0' && *q <= '9') || *q == '.' || *q == '_' || *q == '-'))
				goto bad;
		return 0;
	}
bad:
	pol_err(c, "must be a reference, \"file:/ABSOLUTE/PATH\" or \"command:NAME\" (the "
		   "policy never holds a secret itself)");
	return -1;
}

static int
pol_credentials(struct pol_parse *c, json_t *arr)
{
	static const char *const keys[] = { "name",   "kind",	"upstream", "header", "scheme",
					    "secret", "select", "comment",  NULL };
	json_t *e, *v;
	size_t i, j, old, old2;
	struct policy *p = c->p;

	if (pol_need_array(c, arr, 0, POL_MAX_CREDS) != 0)
		return -1;
	p->ncreds = json_array_size(arr);
	if ((p->creds = pol_alloc(p, (p->ncreds + 1) * sizeof(*p->creds))) == NULL ||
	    (p->cred_sel = pol_alloc(p, (p->ncreds + 1) * sizeof(*p->cred_sel))) == NULL) {
		pol_oom(c);
		return -1;
	}
	memset(p->creds, 0, (p->ncreds + 1) * sizeof(*p->creds));
	memset(p->cred_sel, 0, (p->ncreds + 1) * sizeof(*p->cred_sel));
	json_array_foreach(arr, i, e) {
		struct policy_cred_route *r = &p->creds[i];
		const char *s, *kind;
		const char **names;
		size_t nnames;

		old = pol_push_index(c, i);
		if (pol_need_object(c, e) != 0 ||
		    pol_keys(c, e, keys,
			     "name, kind, upstream, header, scheme, secret, select, comment") !=
			    0 ||
		    pol_comment(c, e) != 0)
			return -1;
		if ((v = pol_member(c, e, "name", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "name");
		if ((s = pol_string(c, v, 32)) == NULL)
			return -1;
		for (j = 0; s[j] != '\0'; j++)
			if (!((s[j] >= 'a' && s[j] <= 'z') ||
			      (s[j] >= '0' && s[j] <= '9' && j > 0) || (s[j] == '_' && j > 0)))
				break;
		if (s[j] != '\0') {
			pol_err(c, "must be lowercase letters, digits and '_', starting with a "
				   "letter, at most 32 (it names SAW_CAP_<NAME>)");
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(p->creds[j].name, s) == 0) {
				pol_err(c, "route \"%s\" is defined twice", s);
				return -1;
			}
		if ((r->name = pol_strndup(p, s, strlen(s))) == NULL)
			goto oom;
		pol_pop(c, old2);

		if ((v = pol_member(c, e, "kind", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "kind");
		kind = json_string_value(v);
		if (kind == NULL ||
		    (strcmp(kind, "openai") != 0 && strcmp(kind, "anthropic") != 0 &&
		     strcmp(kind, "generic") != 0)) {
			pol_err(c, "must be \"openai\", \"anthropic\" or \"generic\"");
			return -1;
		}
		if ((r->kind = pol_strndup(p, kind, strlen(kind))) == NULL)
			goto oom;
		pol_pop(c, old2);

		if ((v = pol_member(c, e, "upstream", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "upstream");
		if ((s = pol_string(c, v, POL_URL_MAX)) == NULL || pol_upstream(c, s) != 0)
			return -1;
		if ((r->upstream = pol_strndup(p, s, strlen(s))) == NULL)
			goto oom;
		pol_pop(c, old2);

		/* header and scheme: the kind's defaults unless given */
		v = json_object_get(e, "header");
		if (v == NULL && strcmp(kind, "generic") == 0) {
			pol_err(c, "missing required field \"header\" (a generic route names the "
				   "header it injects)");
			return -1;
		}
		if (v != NULL) {
			static const char *const hop[] = { "host",
							   "content-length",
							   "transfer-encoding",
							   "connection",
							   "upgrade",
							   "te",
							   "trailer",
							   "proxy-authorization",
							   "keep-alive",
							   NULL };

			old2 = pol_push_key(c, "header");
			if ((s = pol_string(c, v, 64)) == NULL)
				return -1;
			if (!pol_is_token(s)) {
				pol_err(c, "must be an HTTP header name (token characters)");
				return -1;
			}
			for (j = 0; hop[j] != NULL; j++)
				if (strcasecmp(s, hop[j]) == 0) {
					pol_err(c, "\"%s\" is not a header a route may set", s);
					return -1;
				}
			if ((r->header = pol_strndup(p, s, strlen(s))) == NULL)
				goto oom;
			pol_pop(c, old2);
		} else if (strcmp(kind, "openai") == 0) {
			r->header = "Authorization";
			r->scheme = "Bearer";
		} else {
			r->header = "x-api-key";
		}
		if ((v = json_object_get(e, "scheme")) != NULL) {
			old2 = pol_push_key(c, "scheme");
			if ((s = pol_string(c, v, 32)) == NULL)
				return -1;
			if (!pol_is_token(s)) {
				pol_err(c, "must be an authentication scheme (token characters)");
				return -1;
			}
			if ((r->scheme = pol_strndup(p, s, strlen(s))) == NULL)
				goto oom;
			pol_pop(c, old2);
		}

		if ((v = pol_member(c, e, "secret", 1)) == NULL)
			return -1;
		old2 = pol_push_key(c, "secret");
		if ((s = pol_string(c, v, POL_PATH_MAX)) == NULL || pol_secret_ref(c, s) != 0)
			return -1;
		if ((r->secret = pol_strndup(p, s, strlen(s))) == NULL)
			goto oom;
		pol_pop(c, old2);

		if (pol_select(c, json_object_get(e, "select"), &names, &nnames) != 0 ||
		    (nnames > 0 && pol_selref_add(c, &p->cred_sel[i], names, nnames) != 0))
			return -1;
		pol_pop(c, old);
	}
	return 0;
oom:
	pol_oom(c);
	return -1;
}

/* Normalised absolute path (no ".", "..", "//", trailing '/') or relative components. */
static int
pol_fs_path(const char *s, int allow_relative)
{
	const char *p = s, *q;

	if (*s != '/' && !allow_relative)
		return -1;
	if (*p == '/')
		p++;
	if (*p == '\0')
		return *s == '/' ? 0 : -1;
	for (;;) {
		for (q = p; *q != '\0' && *q != '/'; q++)
			;
		if (q == p || (q - p == 1 && p[0] == '.') ||
		    (q - p == 2 && p[0] == '.' && p[1] == '.'))
			return -1;
		if (*q == '\0')
			return 0;
		p = q + 1;
	}
}

static int
pol_filesystem(struct pol_parse *c, json_t *obj)
{
	static const char *const keys[] = { "writable", "protected", NULL };
	/* the system and guestd's own state: never writable, whatever the policy says */
	static const char *const system[] = { "/etc",  "/usr",	   "/bin",	   "/sbin",
					      "/lib",  "/lib32",   "/lib64",	   "/libx32",
					      "/boot", "/proc",	   "/sys",	   "/dev",
					      "/root", "/run/saw", "/var/lib/saw", NULL };
	struct policy *p = c->p;
	json_t *v, *e;
	size_t i, j, old, old2;
	char vis[80];

	if (pol_need_object(c, obj) != 0 || pol_keys(c, obj, keys, "writable, protected") != 0)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		const char *key = keys[pass];
		const char **list;

		v = json_object_get(obj, key);
		if (v == NULL)
			continue;
		old = pol_push_key(c, key);
		if (pol_need_array(c, v, 0, POL_MAX_FS) != 0)
			return -1;
		if ((list = pol_alloc(p, (json_array_size(v) + 1) * sizeof(*list))) == NULL)
			goto oom;
		json_array_foreach(v, i, e) {
			const char *s;

			old2 = pol_push_index(c, i);
			if ((s = pol_string(c, e, POL_PATH_MAX)) == NULL)
				return -1;
			if (pol_fs_path(s, pass == 1) != 0) {
				pol_err(c,
					"\"%s\" is not %s path (no empty, \".\" or \"..\" "
					"components, no trailing '/')",
					pol_vis(s, vis, sizeof(vis)),
					pass == 1 ? "an absolute or a relative" : "an absolute");
				return -1;
			}
			if (pass == 0) {
				size_t sl = strlen(s);

				for (j = 0; system[j] != NULL; j++)
					if (pol_path_under(system[j], strlen(system[j]), s, sl) ||
					    pol_path_under(s, sl, system[j], strlen(system[j]))) {
						pol_err(c,
							"\"%s\" would make %s writable: system "
							"files and saw's own state stay read-only",
							pol_vis(s, vis, sizeof(vis)), system[j]);
						return -1;
					}
			}
			if ((list[i] = pol_strndup(p, s, strlen(s))) == NULL)
				goto oom;
			pol_pop(c, old2);
		}
		list[json_array_size(v)] = NULL;
		if (pass == 0) {
			p->writable = list;
			p->nwritable = json_array_size(v);
		} else {
			p->protected_ = list;
			p->nprotected = json_array_size(v);
		}
		pol_pop(c, old);
	}
	return 0;
oom:
	pol_oom(c);
	return -1;
}

/* "8G", "512M", "1048576" (bytes), K/M/G/T binary; "unlimited" or 0: no limit. */
static int
pol_size(const char *s, long long *out)
{
	unsigned long long v = 0, mul = 1;
	const char *q = s;

	if (strcmp(s, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	if (*q < '0' || *q > '9')
		return -1;
	for (; *q >= '0' && *q <= '9'; q++) {
		if (v > (unsigned long long)LLONG_MAX / 10)
			return -1;
		v = v * 10 + (unsigned long long)(*q - '0');
	}
	switch (*q) {
	case '\0':
		break;
	case 'K':
		mul = 1ULL << 10;
		q++;
		break;
	case 'M':
		mul = 1ULL << 20;
		q++;
		break;
	case 'G':
		mul = 1ULL << 30;
		q++;
		break;
	case 'T':
		mul = 1ULL << 40;
		q++;
		break;
	default:
		return -1;
	}
	if (*q != '\0' || (v != 0 && v > (unsigned long long)LLONG_MAX / mul))
		return -1;
	*out = (long long)(v * mul);
	return 0;
}

static int
pol_limits(struct pol_parse *c, json_t *obj)
{
	static const char *const keys[] = { "nproc", "nofile", "memory", "cpu", NULL };
	struct policy_limits *l = &c->p->limits;
	json_t *v;
	size_t old;

	if (pol_need_object(c, obj) != 0 ||
	    pol_keys(c, obj, keys, "nproc, nofile, memory, cpu") != 0)
		return -1;
	if ((v = json_object_get(obj, "nproc")) != NULL) {
		old = pol_push_key(c, "nproc");
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1048576) {
			pol_err(c, "must be an integer 1..1048576");
			return -1;
		}
		l->nproc = (long)json_integer_value(v);
		pol_pop(c, old);
	}
	if ((v = json_object_get(obj, "nofile")) != NULL) {
		old = pol_push_key(c, "nofile");
		if (!json_is_integer(v) || json_integer_value(v) < 16 ||
		    json_integer_value(v) > 1048576) {
			pol_err(c, "must be an integer 16..1048576");
			return -1;
		}
		l->nofile = (long)json_integer_value(v);
		pol_pop(c, old);
	}
	if ((v = json_object_get(obj, "memory")) != NULL) {
		long long m = -1;

		old = pol_push_key(c, "memory");
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			m = json_integer_value(v);
		else if (json_is_string(v) && json_string_length(v) <= 24 &&
			 pol_size(json_string_value(v), &m) != 0)
			m = -1;
		if (m < 0 || (m > 0 && m < (1LL << 20))) {
			pol_err(c, "must be a size such as \"512M\" or \"8G\" (K, M, G, T: "
				   "binary), at least 1M, or \"unlimited\"");
			return -1;
		}
		l->memory = m;
		pol_pop(c, old);
	}
	if ((v = json_object_get(obj, "cpu")) != NULL) {
		old = pol_push_key(c, "cpu");
		if (!json_is_number(v) || json_number_value(v) <= 0 ||
		    json_number_value(v) > 4096) {
			pol_err(c, "must be a number of CPUs above 0 and at most 4096");
			return -1;
		}
		l->cpu = json_number_value(v);
		pol_pop(c, old);
	}
	return 0;
}

static int
pol_cidr_parse(const char *s, struct pol_cidr *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t hl, i, bits;
	long pfx;
	char *end;

	if (slash == NULL || (hl = (size_t)(slash - s)) == 0 || hl >= sizeof(buf))
		return -1;
	memcpy(buf, s, hl);
	buf[hl] = '\0';
	if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3)
		return -1;
	pfx = strtol(slash + 1, &end, 10);
	if (*end != '\0')
		return -1;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->net) == 1) {
		out->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, out->net) == 1) {
		out->family = AF_INET6;
		bits = 128;
	} else {
		return -1;
	}
	if (pfx < 0 || (size_t)pfx > bits)
		return -2;
	out->prefix = (int)pfx;
	/* host bits must be zero: "10.1.2.3/8" is a typo, not a network */
	for (i = (size_t)pfx; i < bits; i++)
		if (out->net[i / 8] & (0x80 >> (i % 8)))
			return -3;
	return 0;
}

static int
pol_addresses(struct pol_parse *c, json_t *obj)
{
	static const char *const keys[] = { "allow_private", NULL };
	static const char *const ekeys[] = { "cidr", "select", "comment", NULL };
	struct policy *p = c->p;
	json_t *v, *e;
	size_t i, old, old2;
	char vis[80];

	if (pol_need_object(c, obj) != 0 || pol_keys(c, obj, keys, "allow_private") != 0)
		return -1;
	if ((v = json_object_get(obj, "allow_private")) == NULL)
		return 0;
	old = pol_push_key(c, "allow_private");
	if (pol_need_array(c, v, 0, POL_MAX_CIDRS) != 0)
		return -1;
	if ((p->cidrs = pol_alloc(p, (json_array_size(v) + 1) * sizeof(*p->cidrs))) == NULL) {
		pol_oom(c);
		return -1;
	}
	json_array_foreach(v, i, e) {
		json_t *cv = e;
		const char *s, **names = NULL;
		size_t nnames = 0;
		int rc;

		old2 = pol_push_index(c, i);
		if (json_is_object(e)) {
			if (pol_keys(c, e, ekeys, "cidr, select, comment") != 0 ||
			    pol_comment(c, e) != 0 || (cv = pol_member(c, e, "cidr", 1)) == NULL)
				return -1;
			pol_push_key(c, "cidr");
		}
		if ((s = pol_string(c, cv, 64)) == NULL)
			return -1;
		rc = pol_cidr_parse(s, &p->cidrs[i]);
		if (rc == 0 && p->cidrs[i].prefix < (p->cidrs[i].family == AF_INET ? 8 : 16))
			rc = -4;
		if (rc != 0) {
			pol_err(c, "\"%s\": %s", pol_vis(s, vis, sizeof(vis)),
				rc == -3 ? "host bits set after the prefix length" :
				rc == -4 ? "too broad (at least /8 for IPv4, /16 for IPv6)" :
				rc == -2 ? "prefix length out of range" :
					   "not an address range ADDRESS/PREFIX");
			return -1;
		}
		if (json_is_object(e)) {
			pol_pop(c, old2);
			pol_push_index(c, i);
			if (pol_select(c, json_object_get(e, "select"), &names, &nnames) != 0 ||
			    (nnames > 0 && pol_selref_add(c, &p->cidrs[i].sel, names, nnames) != 0))
				return -1;
		}
		pol_pop(c, old2);
	}
	p->ncidrs = json_array_size(v);
	pol_pop(c, old);
	return 0;
}

/* ---- compiling ---------------------------------------------------------------------------- */

static int
pol_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
pol_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
pol_pattern_cmp(const void *a, const void *b)
{
	const struct pol_pattern *x = a, *y = b;
	int d;

	if (x->wild != y->wild)
		return (int)x->wild - (int)y->wild;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if ((d = memcmp(x->key, y->key, x->len)) != 0)
		return d;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int
pol_same_key(const struct pol_pattern *x, const struct pol_pattern *y)
{
	return x->wild == y->wild && x->len == y->len && memcmp(x->key, y->key, x->len) == 0;
}

static int
pol_rank_cmp(const void *a, const void *b)
{
	const struct pol_tmprule *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind - y->kind;
	return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Interns every selector name as an atom and gives each selector its sorted ids. */
static int
pol_compile_atoms(struct pol_parse *c, const char **all, size_t nall)
{
	struct policy *p = c->p;
	size_t i, j, k, natoms = 0;

	qsort(all, nall, sizeof(*all), pol_str_cmp);
	for (i = 0; i < nall; i++)
		if (natoms == 0 || strcmp(all[natoms - 1], all[i]) != 0)
			all[natoms++] = all[i];
	if (pol_tab_init(p, &p->atoms, natoms) != 0)
		return -1;
	for (i = 0; i < natoms; i++)
		pol_tab_put(&p->atoms, pol_hash(p->seed, all[i], strlen(all[i])), all[i],
			    strlen(all[i]), (uint32_t)i, 1);
	for (i = 0; i < c->nselrefs; i++) {
		struct pol_selref *r = &c->selrefs[i];
		uint32_t *ids = pol_alloc(p, r->n * sizeof(*ids));

		if (ids == NULL)
			return -1;
		for (j = 0; j < r->n; j++) {
			const struct pol_ent *e = pol_tab_get(
				&p->atoms, pol_hash(p->seed, r->names[j], strlen(r->names[j])),
				r->names[j], strlen(r->names[j]));

			ids[j] = e->off;
		}
		qsort(ids, r->n, sizeof(*ids), pol_u32_cmp);
		for (j = 0, k = 0; j < r->n; j++)
			if (k == 0 || ids[k - 1] != ids[j])
				ids[k++] = ids[j];
		r->sel->atoms = ids;
		r->sel->n = (uint32_t)k;
	}
	return 0;
}

static int
pol_compile(struct pol_parse *c)
{
	struct policy *p = c->p;
	struct pol_pattern *pat = NULL;
	const char **all = NULL;
	size_t i, j, n, nall = 0, npat = 0, nexact = 0, nwild = 0, start;
	int rc = -1;

	if (c->nrules > 0)
		qsort(c->rules, c->nrules, sizeof(*c->rules), pol_rank_cmp);
	p->nrules = c->nrules;
	if ((p->rules = pol_alloc(p, (c->nrules + 1) * sizeof(*p->rules))) == NULL)
		goto out;
	for (i = 0; i < c->nrules; i++) {
		struct pol_tmprule *t = &c->rules[i];
		struct pol_rule *r = &p->rules[i];

		r->id = t->id;
		r->kind = (uint8_t)t->kind;
		r->all_ports = (uint8_t)t->all_ports;
		r->ports = t->ports;
		r->nports = (uint16_t)t->nports;
		if (t->nsel > 0 && pol_selref_add(c, &r->sel, t->sel_names, t->nsel) != 0)
			goto out;
		npat += t->nhosts;
	}
	for (i = 0; i < c->nselrefs; i++)
		nall += c->selrefs[i].n;
	if ((all = malloc((nall + 1) * sizeof(*all))) == NULL)
		goto out;
	for (i = 0, nall = 0; i < c->nselrefs; i++)
		for (j = 0; j < c->selrefs[i].n; j++)
			all[nall++] = c->selrefs[i].names[j];
	if (pol_compile_atoms(c, all, nall) != 0)
		goto out;

	if ((pat = malloc((npat + 1) * sizeof(*pat))) == NULL)
		goto out;
	for (i = 0, n = 0; i < c->nrules; i++)
		for (j = 0; j < c->rules[i].nhosts; j++) {
			const char *h = c->rules[i].hosts[j];

			pat[n].wild = h[0] == '*';
			pat[n].key = pat[n].wild ? h + 2 : h;
			pat[n].len = (uint32_t)strlen(pat[n].key);
			pat[n].rank = (uint32_t)i;
			n++;
		}
	qsort(pat, npat, sizeof(*pat), pol_pattern_cmp);
	/* one table entry per distinct key, its ranks ascending and without repeats */
	if ((p->refs_all = pol_alloc(p, (npat + 1) * sizeof(*p->refs_all))) == NULL)
		goto out;
	for (i = 0; i < npat; i++)
		if (i == 0 || !pol_same_key(&pat[i - 1], &pat[i])) {
			if (pat[i].wild)
				nwild++;
			else
				nexact++;
		}
	if (pol_tab_init(p, &p->exact, nexact) != 0 || pol_tab_init(p, &p->wild, nwild) != 0)
		goto out;
	for (i = 0, n = 0; i < npat; i = j) {
		start = n;
		for (j = i; j < npat && pol_same_key(&pat[i], &pat[j]); j++)
			if (n == start || p->refs_all[n - 1] != pat[j].rank)
				p->refs_all[n++] = pat[j].rank;
		pol_tab_put(pat[i].wild ? &p->wild : &p->exact,
			    pol_hash(p->seed, pat[i].key, pat[i].len), pat[i].key, pat[i].len,
			    (uint32_t)start, (uint32_t)(n - start));
	}

	/* rule names the write decision answers with */
	if ((p->writable_rule = pol_alloc(p, (p->nwritable + 1) * sizeof(char *))) == NULL ||
	    (p->protected_rule = pol_alloc(p, (p->nprotected + 1) * sizeof(char *))) == NULL)
		goto out;
	for (i = 0; i < p->nwritable; i++)
		if ((p->writable_rule[i] = pol_strcat2(p, "writable:", p->writable[i])) == NULL)
			goto out;
	for (i = 0; i < p->nprotected; i++)
		if ((p->protected_rule[i] = pol_strcat2(p, "protected:", p->protected_[i])) == NULL)
			goto out;
	rc = 0;
out:
	if (rc != 0)
		pol_oom(c);
	free(pat);
	free(all);
	return rc;
}

static uint64_t
pol_seed(void)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)&s;
	return s;
}

static int
pol_document(struct pol_parse *c, json_t *root)
{
	static const char *const keys[] = { "version",	 "profile",	"comment",    "egress",
					    "corporate", "credentials", "filesystem", "limits",
					    "addresses", NULL };
	struct policy *p = c->p;
	json_t *v;
	size_t old;
	int public_profile;
	static const char *const empty[] = { NULL };

	if (pol_need_object(c, root) != 0 ||
	    pol_keys(c, root, keys,
		     "version, profile, comment, egress, corporate, credentials, filesystem, "
		     "limits, addresses") != 0 ||
	    pol_comment(c, root) != 0)
		return -1;
	if ((v = pol_member(c, root, "version", 1)) == NULL)
		return -1;
	old = pol_push_key(c, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)1 << 53) {
		pol_err(c, "must be an integer from 1 to 2^53");
		return -1;
	}
	p->version = (int64_t)json_integer_value(v);
	pol_pop(c, old);
	if ((v = pol_member(c, root, "profile", 1)) == NULL)
		return -1;
	old = pol_push_key(c, "profile");
	if (json_is_string(v) && strcmp(json_string_value(v), "corporate") == 0)
		p->profile = "corporate";
	else if (json_is_string(v) && strcmp(json_string_value(v), "public") == 0)
		p->profile = "public";
	else {
		pol_err(c, "must be \"corporate\" or \"public\"");
		return -1;
	}
	pol_pop(c, old);
	public_profile = strcmp(p->profile, "public") == 0;

#define POL_SECTION(name, fn)                            \
	if ((v = json_object_get(root, name)) != NULL) { \
		old = pol_push_key(c, name);             \
		if (fn != 0)                             \
			return -1;                       \
		pol_pop(c, old);                         \
	}
	POL_SECTION("egress", pol_egress(c, v));
	POL_SECTION("corporate", pol_corporate(c, v, public_profile));
	POL_SECTION("credentials", pol_credentials(c, v));
	POL_SECTION("filesystem", pol_filesystem(c, v));
	POL_SECTION("limits", pol_limits(c, v));
	POL_SECTION("addresses", pol_addresses(c, v));
#undef POL_SECTION
	if (p->writable == NULL)
		p->writable = (const char **)empty;
	if (p->protected_ == NULL)
		p->protected_ = (const char **)empty;
	if (p->creds == NULL) {
		if ((p->creds = pol_alloc(p, sizeof(*p->creds))) == NULL) {
			pol_oom(c);
			return -1;
		}
		memset(p->creds, 0, sizeof(*p->creds));
	}
	return pol_compile(c);
}

struct policy *
policy_load_buffer(const char *buf, size_t len, char *err, size_t errlen)
{
	struct pol_parse c;
	json_error_t jerr;
	json_t *root = NULL;
	struct policy *p = NULL;

	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	snprintf(c.path, sizeof(c.path), "$");
	c.plen = 1;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > POLICY_MAX_LEN) {
		if (err != NULL)
			snprintf(err, errlen, "the document is larger than %d bytes",
				 POLICY_MAX_LEN);
		return NULL;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (err != NULL)
			snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		pol_oom(&c);
		goto out;
	}
	p->refs = 1;
	p->seed = pol_seed();
	c.p = p;
	if (pol_document(&c, root) != 0) {
		if (!c.failed)
			pol_oom(&c);
		policy_free(p);
		p = NULL;
	}
out:
	json_decref(root);
	free(c.rules);
	free(c.selrefs);
	free(c.ids);
	return p;
}

struct policy *
policy_load_file(const char *path, char *err, size_t errlen)
{
	struct policy *p = NULL;
	struct stat sb;
	char *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (sb.st_size > POLICY_MAX_LEN) {
		snprintf(err, errlen, "the document is larger than %d bytes", POLICY_MAX_LEN);
		goto out;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* read at most one byte more than fstat said, to notice a file that grew */
	while (off <= (size_t)sb.st_size) {
		n = read(fd, buf + off, (size_t)sb.st_size + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	if (off > (size_t)sb.st_size) {
		snprintf(err, errlen, "the file changed while it was read; try again");
		goto out;
	}
	p = policy_load_buffer(buf, off, err, errlen);
out:
	free(buf);
	close(fd);
	return p;
}

struct policy *
policy_ref(const struct policy *cp)
{
	struct policy *p = (struct policy *)cp; /* the count is the only mutable part */

	if (p != NULL) /* atomic: the egress proxy's event loops share policies */
		__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
policy_free(struct policy *p)
{
	struct pol_chunk *c, *next;

	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (c = p->arena; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(p);
}

/* ---- accessors ---------------------------------------------------------------------------- */

int64_t
policy_version(const struct policy *p)
{
	return p != NULL ? p->version : 0;
}

const char *
policy_profile(const struct policy *p)
{
	return p != NULL ? p->profile : NULL;
}

size_t
policy_rule_count(const struct policy *p)
{
	return p != NULL ? p->nrules : 0;
}

const char *
policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_ALLOW:
		return "allow";
	case POLICY_CORP:
		return "corporate";
	case POLICY_DENY:
		break;
	}
	return "deny";
}

const struct policy_limits *
policy_limits(const struct policy *p)
{
	static const struct policy_limits none;

	return p != NULL ? &p->limits : &none;
}

const char *const *
policy_fs_writable(const struct policy *p)
{
	static const char *const empty[] = { NULL };

	return p != NULL ? p->writable : empty;
}

const char *const *
policy_fs_protected(const struct policy *p)
{
	static const char *const empty[] = { NULL };

	return p != NULL ? p->protected_ : empty;
}

size_t
policy_cred_routes(const struct policy *p, const struct policy_cred_route **out, size_t max)
{
	size_t i;

	if (p == NULL)
		return 0;
	for (i = 0; i < p->ncreds && i < max; i++)
		out[i] = &p->creds[i];
	return p->ncreds;
}

/* ---- decisions ---------------------------------------------------------------------------- */

/* The subject's policy-known atoms, resolved on first need. */
struct pol_subj {
	const struct policy *p;
	const struct policy_subject *s;
	int state; /* 0 unresolved, 1 resolved, -1 too many */
	uint32_t n;
	uint32_t ids[POL_MAX_SUBJECT_ATOMS];
};

static void
pol_subj_add(struct pol_subj *u, char kind, const char *name)
{
	char key[POL_NAME_MAX + 2];
	const struct pol_ent *e;
	size_t n, i;

	if (name == NULL || (n = strlen(name)) == 0 || n > POL_NAME_MAX)
		return; /* the policy cannot name it */
	key[0] = kind;
	memcpy(key + 1, name, n);
	e = pol_tab_get(&u->p->atoms, pol_hash(u->p->seed, key, n + 1), key, n + 1);
	if (e == NULL)
		return;
	if (u->n == POL_MAX_SUBJECT_ATOMS) {
		u->state = -1;
		return;
	}
	/* insertion keeps ids sorted */
	for (i = u->n; i > 0 && u->ids[i - 1] > e->off; i--)
		u->ids[i] = u->ids[i - 1];
	if (i > 0 && u->ids[i - 1] == e->off) {
		memmove(u->ids + i, u->ids + i + 1, (u->n - i) * sizeof(u->ids[0]));
		return;
	}
	u->ids[i] = e->off;
	u->n++;
}

static void
pol_subj_resolve(struct pol_subj *u)
{
	size_t i;

	u->state = 1;
	if (u->s == NULL || u->p->atoms.e == NULL)
		return;
	pol_subj_add(u, 'u', u->s->user);
	pol_subj_add(u, 'w', u->s->workspace);
	for (i = 0; i < u->s->ngroups && u->state == 1; i++)
		pol_subj_add(u, 'g', u->s->groups[i]);
}

/* 1: applies, 0: does not, -1: cannot tell (fail closed). */
static int
pol_sel_match(struct pol_subj *u, const struct pol_sel *sel)
{
	uint32_t i = 0, j = 0;

	if (sel->n == 0)
		return 1;
	if (u->state == 0)
		pol_subj_resolve(u);
	if (u->state < 0)
		return -1;
	while (i < sel->n && j < u->n) {
		if (sel->atoms[i] == u->ids[j])
			return 1;
		if (sel->atoms[i] < u->ids[j])
			i++;
		else
			j++;
	}
	return 0;
}

static inline int
pol_port_match(const struct pol_rule *r, int port)
{
	uint16_t i;

	if (r->all_ports)
		return 1;
	for (i = 0; i < r->nports; i++) {
		if (port < r->ports[i].lo)
			return 0;
		if (port <= r->ports[i].hi)
			return 1;
	}
	return 0;
}

/* Lowers *best to the first rank in e's list that applies; -1 if the subject is too big. */
static int
pol_scan(const struct policy *p, const struct pol_ent *e, struct pol_subj *u, int port,
	 uint32_t *best)
{
	const uint32_t *refs;
	uint32_t i;
	int m;

	if (e == NULL)
		return 0;
	refs = p->refs_all + e->off;
	for (i = 0; i < e->n && refs[i] < *best; i++) {
		const struct pol_rule *r = &p->rules[refs[i]];

		if (!pol_port_match(r, port))
			continue;
		if ((m = pol_sel_match(u, &r->sel)) < 0)
			return -1;
		if (m) {
			*best = refs[i];
			break;
		}
	}
	return 0;
}

void
policy_decide(const struct policy *p, const struct policy_subject *s, const char *host, int port,
	      struct policy_decision *out)
{
	char h[POL_HOST_BUF];
	struct pol_subj u;
	uint64_t state, hash;
	uint32_t best = UINT32_MAX;
	int n, i, is_ip;

	out->verdict = POLICY_DENY;
	out->rule = "no-policy";
	out->version = 0;
	if (p == NULL)
		return;
	out->version = p->version;
	out->rule = "invalid-port";
	if (port < 1 || port > 65535)
		return;
	out->rule = "invalid-host";
	if (host == NULL || (n = pol_host_norm(host, strlen(host), 0, h, &is_ip)) < 0)
		return;
	u.p = p;
	u.s = s;
	u.state = 0;
	u.n = 0;
	/* Hash from the end: at each '.', the state is the hash of the suffix after it. */
	state = p->seed;
	for (i = n - 1; i >= 0; i--) {
		if (h[i] == '.' && !is_ip) {
			hash = pol_fin(state);
			if (p->wild.e != NULL &&
			    pol_scan(p, pol_tab_get(&p->wild, hash, h + i + 1, (size_t)(n - i - 1)),
				     &u, port, &best) != 0)
				goto toobig;
		}
		state = pol_step(state, (unsigned char)h[i]);
	}
	hash = pol_fin(state);
	if (pol_scan(p, pol_tab_get(&p->exact, hash, h, (size_t)n), &u, port, &best) != 0)
		goto toobig;
	out->rule = "default-deny";
	if (best == UINT32_MAX)
		return;
	out->rule = p->rules[best].id;
	switch (p->rules[best].kind) {
	case POL_ALLOW:
		out->verdict = POLICY_ALLOW;
		break;
	case POL_CORP:
		out->verdict = POLICY_CORP;
		break;
	default:
		out->verdict = POLICY_DENY;
	}
	return;
toobig:
	out->verdict = POLICY_DENY;
	out->rule = "subject-too-many-groups";
}

static int
pol_cidr_match(const struct pol_cidr *c, const uint8_t *a)
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->net, a, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((a[full] ^ c->net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool
policy_address_allowed(const struct policy *p, const struct policy_subject *s, const void *addr,
		       int family)
{
	struct pol_subj u;
	uint8_t v4[4];
	uint32_t e4;
	int has_v4 = 0;
	size_t i;

	if (p == NULL || addr == NULL || (family != AF_INET && family != AF_INET6))
		return false;
	if (family == AF_INET) {
		memcpy(v4, addr, 4);
		has_v4 = 1;
	} else if (netclass_embedded_ipv4(addr, &e4) != NETCLASS_EMBED_NONE) {
		v4[0] = (uint8_t)(e4 >> 24);
		v4[1] = (uint8_t)(e4 >> 16);
		v4[2] = (uint8_t)(e4 >> 8);
		v4[3] = (uint8_t)e4;
		has_v4 = 1;
	}
	u.p = p;
	u.s = s;
	u.state = 0;
	u.n = 0;
	for (i = 0; i < p->ncidrs; i++) {
		const struct pol_cidr *c = &p->cidrs[i];
		int hit;

		if (c->family == AF_INET)
			hit = has_v4 && pol_cidr_match(c, v4);
		else
			hit = family == AF_INET6 && pol_cidr_match(c, addr);
		if (hit && pol_sel_match(&u, &c->sel) == 1)
			return true;
	}
	return false;
}

const struct policy_cred_route *
policy_cred_route(const struct policy *p, const struct policy_subject *s, const char *name)
{
	struct pol_subj u;
	size_t i;

	if (p == NULL || name == NULL)
		return NULL;
	u.p = p;
	u.s = s;
	u.state = 0;
	u.n = 0;
	for (i = 0; i < p->ncreds; i++)
		if (strcmp(p->creds[i].name, name) == 0)
			return pol_sel_match(&u, &p->cred_sel[i]) == 1 ? &p->creds[i] : NULL;
	return NULL;
}

void
policy_decide_write(const struct policy *p, const char *path, const char *home,
		    struct policy_decision *out)
{
	char norm[POL_WRITE_PATH_MAX], hnorm[POL_WRITE_PATH_MAX];
	int n, hn;
	size_t i;

	out->verdict = POLICY_DENY;
	out->rule = "no-policy";
	out->version = 0;
	if (p == NULL)
		return;
	out->version = p->version;
	out->rule = "invalid-path";
	if (path == NULL || !pol_printable(path, strlen(path)) ||
	    (n = pol_path_norm(path, norm, sizeof(norm))) < 0)
		return;
	for (i = 0; i < p->nprotected; i++) {
		const char *e = p->protected_[i];
		size_t el = strlen(e);

		if (e[0] == '/' ? pol_path_under(norm, (size_t)n, e, el) :
				  pol_path_contains(norm, (size_t)n, e, el)) {
			out->rule = p->protected_rule[i];
			return;
		}
	}
	if (home != NULL && (hn = pol_path_norm(home, hnorm, sizeof(hnorm))) > 1 &&
	    pol_path_under(norm, (size_t)n, hnorm, (size_t)hn)) {
		out->verdict = POLICY_ALLOW;
		out->rule = "home";
		return;
	}
	/* the sandbox mounts a fresh tmpfs per session on /tmp */
	if (pol_path_under(norm, (size_t)n, "/tmp", 4) && n > 4) {
		out->verdict = POLICY_ALLOW;
		out->rule = "session-tmp";
		return;
	}
	for (i = 0; i < p->nwritable; i++)
		if (pol_path_under(norm, (size_t)n, p->writable[i], strlen(p->writable[i]))) {
			out->verdict = POLICY_ALLOW;
			out->rule = p->writable_rule[i];
			return;
		}
	out->rule = "read-only";
}
