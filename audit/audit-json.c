/*
 * Compact JSON text of jansson values (audit-json.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit-json.h"

/* as deep as jansson parses (JSON_PARSER_MAX_DEPTH): whatever a peer sent can be written */
#define JC_MAX_DEPTH 2048

struct jc_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
jc_grow(struct jc_buf *b, size_t n)
{
	size_t cap;
	char *np;

	if (b->oom || b->len + n + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = cap;
}

static void
jc_put(struct jc_buf *b, const char *s, size_t n)
{
	jc_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
jc_str(struct jc_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
	size_t i, run = 0;
	char esc[6];

	jc_grow(b, n + 2);
	jc_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jc_put(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			jc_put(b, esc, 2);
			break;
		case '\n':
			jc_put(b, "\\n", 2);
			break;
		case '\r':
			jc_put(b, "\\r", 2);
			break;
		case '\t':
			jc_put(b, "\\t", 2);
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jc_put(b, esc, 6);
			break;
		}
	}
	jc_put(b, s + run, n - run);
	jc_put(b, "\"", 1);
}

/* Decimal of an integer: snprintf() was a tenth of an emit (events carry a dozen). */
static void
jc_int(struct jc_buf *b, json_int_t v)
{
	char num[24], *p = num + sizeof(num);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	jc_put(b, p, (size_t)(num + sizeof(num) - p));
}

static bool
jc_skipped(const char *key, const char *const *skip)
{
	for (; skip != NULL && *skip != NULL; skip++)
		if (strcmp(key, *skip) == 0)
			return true;
	return false;
}

static int
jc_value(struct jc_buf *b, json_t *v, int depth, const char *const *skip)
{
	const char *key;
	json_t *m;
	size_t i;
	bool first = true;
	char *real;

	if (depth > JC_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		jc_put(b, "{", 1);
		json_object_foreach(v, key, m) {
			if (depth == 0 && jc_skipped(key, skip))
				continue;
			if (!first)
				jc_put(b, ",", 1);
			first = false;
			jc_str(b, key, strlen(key));
			jc_put(b, ":", 1);
			if (jc_value(b, m, depth + 1, skip) != 0)
				return -1;
		}
		jc_put(b, "}", 1);
		return 0;
	case JSON_ARRAY:
		jc_put(b, "[", 1);
		json_array_foreach(v, i, m) {
			if (i > 0)
				jc_put(b, ",", 1);
			if (jc_value(b, m, depth + 1, skip) != 0)
				return -1;
		}
		jc_put(b, "]", 1);
		return 0;
	case JSON_STRING:
		jc_str(b, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		jc_int(b, json_integer_value(v));
		return 0;
	case JSON_REAL:
		/* rare in events: jansson's own formatting (shortest round-trip form) */
		if ((real = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
			return -1;
		jc_put(b, real, strlen(real));
		free(real);
		return 0;
	case JSON_TRUE:
		jc_put(b, "true", 4);
		return 0;
	case JSON_FALSE:
		jc_put(b, "false", 5);
		return 0;
	case JSON_NULL:
		jc_put(b, "null", 4);
		return 0;
	default:
		return -1;
	}
}

char *
audit_json_compact(json_t *obj, const char *const *skip, size_t *len)
{
	struct jc_buf b = { 0 };

	if (!json_is_object(obj) || jc_value(&b, obj, 0, skip) != 0 || b.oom) {
		free(b.p);
		return NULL;
	}
	b.p[b.len] = '\0';
	if (len != NULL)
		*len = b.len;
	return b.p;
}
