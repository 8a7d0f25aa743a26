/*
 * The hash chain of audit files (docs/AUDIT.md, "Tamper evidence").
 *
 * Every line of an audit file is an OCSF event whose last member is
 *     "unmapped":{"prev":"<64 hex>","seq":N}
 * prev is the SHA-256 (lower-case hex) of the previous line's bytes, without its '\n'; seq
 * counts records of the chain, +1 per line, across rotations and restarts. Every file starts
 * with an anchor: an OCSF Event Log Activity (class 1008: Start or Rotate) whose prev is the
 * hash of the last line of the file before it (PATH.1 for PATH after a rotation), or
 * CHAIN_GENESIS for the first file of a chain, so each file verifies on its own and
 * consecutive files verify as one chain. OCSF reserves "unmapped" for data outside the
 * schema, which keeps the records compliant.
 *
 * Pure functions; chain_parse() is the record reader the fuzzer drives.
 */
#ifndef SAW_AUDIT_CHAIN_H
#define SAW_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#define CHAIN_HEX_LEN 64
#define CHAIN_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define CHAIN_ANCHOR_CLASS 1008	     /* OCSF Event Log Activity */
#define CHAIN_LINE_MAX (1024 * 1024) /* longest record the sinks write and readers accept */

struct chain_info {
	bool has_chain; /* unmapped.prev and unmapped.seq are present and well-formed */
	bool anchor;	/* class_uid 1008 */
	long long seq;
	char prev[CHAIN_HEX_LEN + 1];
	char uid[64]; /* metadata.uid, "" if absent or too long */
};

/* out = hex SHA-256 of line[0..len). */
void chain_hash(const void *line, size_t len, char out[CHAIN_HEX_LEN + 1]);
/* Parses one record (no '\n'). Returns 0 (see out->has_chain), or -1 if the line is not a
 * JSON object. */
int chain_parse(const char *line, size_t len, struct chain_info *out);
/*
 * Appends the chain member to a compact JSON object json[0..len) (which must end in '}' and
 * hold no "unmapped" member) into out. extra (may be NULL) is a compact JSON object of other
 * members for "unmapped" (the event's own unmapped data, without prev and seq). Returns the
 * length written (no NUL is added), or 0 if out (cap bytes) is too small or json or extra is
 * not an object.
 */
size_t chain_splice(const char *json, size_t len, const char *extra, size_t extralen,
		    const char *prev, long long seq, char *out, size_t cap);

#endif
