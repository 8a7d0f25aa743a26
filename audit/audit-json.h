/*
 * Compact JSON text of jansson values, for the audit path (audit/audit-json.c).
 */
#ifndef SAW_AUDIT_AUDIT_JSON_H
#define SAW_AUDIT_AUDIT_JSON_H

#include <stddef.h>

#include <jansson.h>

/*
 * The compact JSON text of obj (an object): the same JSON as json_dumps(obj, JSON_COMPACT),
 * members in jansson's (insertion) order, '"', '\\' and control characters escaped, UTF-8 as
 * is (jansson checked it on creation), written several times faster than json_dumps() (which
 * formats through stdio and one callback per fragment). Members of obj itself whose names are
 * in skip (NULL-terminated; NULL for none) are left out, so that a caller can write an object
 * without a member without copying it. Returns a malloc'ed, NUL-terminated string (its length
 * in *len when len is not NULL), or NULL: out of memory, not an object, nesting deeper than 2048
 * (deeper than jansson parses).
 */
char *audit_json_compact(json_t *obj, const char *const *skip, size_t *len);

#endif
