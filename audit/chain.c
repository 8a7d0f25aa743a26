/*
 * Hash chain helpers shared by the file sink (sink-file.c) and the verifier (verify.c).
 * See chain.h for the record format.
 */
#include "audit/chain.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

void
chain_hash(const void *line, size_t len, char out[CHAIN_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256(line, len, md);
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[CHAIN_HEX_LEN] = '\0';
}

static bool
chain_is_hex(const char *s)
{
	size_t i;

	for (i = 0; i < CHAIN_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[CHAIN_HEX_LEN] == '\0';
}

int
chain_parse(const char *line, size_t len, struct chain_info *out)
{
	json_t *root, *um, *prev, *seq, *cls, *uid;
	json_error_t jerr;

	memset(out, 0, sizeof(*out));
	if (len > CHAIN_LINE_MAX)
		return -1;
	/* Duplicate keys are refused so that a reader can never be shown a different "prev"
	 * or "seq" than another JSON reader would see. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
	if (root == NULL)
		return -1;
	/* JSON_DISABLE_EOF_CHECK stops at the end of the value; anything after it (other than
	 * nothing) means the line is not exactly one object. */
	if (!json_is_object(root) || jerr.position != (int)len) {
		json_decref(root);
		return -1;
	}
	cls = json_object_get(root, "class_uid");
	out->anchor = json_is_integer(cls) && json_integer_value(cls) == CHAIN_ANCHOR_CLASS;
	uid = json_object_get(json_object_get(root, "metadata"), "uid");
	if (json_is_string(uid) && json_string_length(uid) < sizeof(out->uid))
		memcpy(out->uid, json_string_value(uid), json_string_length(uid) + 1);
	um = json_object_get(root, "unmapped");
	prev = json_object_get(um, "prev");
	seq = json_object_get(um, "seq");
	if (json_is_string(prev) && json_string_length(prev) == CHAIN_HEX_LEN &&
	    chain_is_hex(json_string_value(prev)) && json_is_integer(seq) &&
	    json_integer_value(seq) >= 0) {
		memcpy(out->prev, json_string_value(prev), CHAIN_HEX_LEN + 1);
		out->seq = json_integer_value(seq);
		out->has_chain = true;
	}
	json_decref(root);
	return 0;
}

size_t
chain_splice(const char *json, size_t len, const char *extra, size_t extralen, const char *prev,
	     long long seq, char *out, size_t cap)
{
	char tail[CHAIN_HEX_LEN + 64];
	size_t pos;
	int n;

	if (len < 2 || json[0] != '{' || json[len - 1] != '}')
		return 0;
	if (extra != NULL && (extralen < 2 || extra[0] != '{' || extra[extralen - 1] != '}'))
		return 0;
	if (extra != NULL && extralen == 2)
		extra = NULL; /* {} */
	n = snprintf(tail, sizeof(tail), "%s\"prev\":\"%s\",\"seq\":%lld}}", extra ? "," : "", prev,
		     seq);
	if (n < 0 || (size_t)n >= sizeof(tail))
		return 0;
	/* json minus '}' + [","] + "unmapped":{ + extra members + tail */
	if (len - 1 + 1 + 12 + (extra ? extralen - 2 : 0) + (size_t)n > cap)
		return 0;
	memcpy(out, json, len - 1);
	pos = len - 1;
	if (len > 2)
		out[pos++] = ',';
	memcpy(out + pos, "\"unmapped\":{", 12);
	pos += 12;
	if (extra != NULL) {
		memcpy(out + pos, extra + 1, extralen - 2);
		pos += extralen - 2;
	}
	memcpy(out + pos, tail, (size_t)n);
	return pos + (size_t)n;
}
