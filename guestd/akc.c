/*
 * saw-authorized-keys' argument checks and output line (see akc.h).
 *
 * The restrictions printed with every key are `restrict,pty`:
 *   restrict  no port, agent or X11 forwarding, no ~/.ssh/rc, no PTY, and whatever sshd adds
 *             to `restrict` in later versions (it is defined to grow);
 *   pty       back on, so that interactive shells work.
 * Port forwarding stays off on purpose: the workspace reaches corporate services only through
 * saw-guestd's proxy, which lives exactly as long as the brokered session; an `ssh -L/-R` would
 * be an egress path outside the broker's allowlist and audit.
 * The expiry-time makes sshd itself refuse the key after the session's end, even if guestd were
 * to lag behind.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "guestd/akc.h"
#include "guestd/gsock-client.h"

/* The %t names of keys that a brokered session binds. Left out on purpose: ssh-dss (disabled by
 * OpenSSH by default, 1024-bit), certificates (*-cert-v01@openssh.com: they are trusted through
 * TrustedUserCAKeys or cert-authority lines, never as a plain key line), ssh-xmss (experimental). */
static const char *const akc_types[] = {
	"ssh-ed25519",
	"sk-ssh-ed25519@openssh.com",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-rsa",
};

/* Decoded blob bound: 3/4 of the longest base64 accepted. */
#define AKC_MAX_BLOB (AKC_MAX_KEY_B64 / 4 * 3)

int
akc_check_type(const char *type)
{
	size_t i;

	if (type == NULL)
		return -1;
	for (i = 0; i < sizeof(akc_types) / sizeof(akc_types[0]); i++)
		if (strcmp(type, akc_types[i]) == 0)
			return 0;
	return -1;
}

static int
akc_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
akc_check_fp(const char *fp)
{
	size_t i;

	if (fp == NULL || strlen(fp) != AKC_FP_LEN || strncmp(fp, "SHA256:", 7) != 0)
		return -1;
	for (i = 7; i < AKC_FP_LEN; i++)
		if (akc_b64_value(fp[i]) < 0)
			return -1;
	return 0;
}

/* Strict base64 decoding: length a multiple of 4, only the alphabet, '=' only as the last one or
 * two characters. Returns the decoded length or -1. */
static long
akc_b64_decode(const char *s, unsigned char *out, size_t outlen)
{
	size_t len = strlen(s), i, o = 0, pad = 0;
	unsigned long acc;
	int j, v;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > outlen)
		return -1;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		acc = 0;
		for (j = 0; j < 4; j++) {
			if (i + (size_t)j >= len - pad) {
				v = 0;
			} else if ((v = akc_b64_value(s[i + (size_t)j])) < 0) {
				return -1;
			}
			acc = acc << 6 | (unsigned long)v;
		}
		out[o++] = (unsigned char)(acc >> 16);
		out[o++] = (unsigned char)(acc >> 8);
		out[o++] = (unsigned char)acc;
	}
	/* Padding bits must be zero, as every encoder writes them (one blob, one spelling). */
	if ((pad == 1 && out[o - 1] != 0) || (pad == 2 && (out[o - 1] != 0 || out[o - 2] != 0)))
		return -1;
	return (long)(o - pad);
}

int
akc_check_key(const char *type, const char *key, const char *fp)
{
	unsigned char blob[AKC_MAX_BLOB];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char enc[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	unsigned int mdlen = 0;
	size_t tlen, elen;
	long blen;
	unsigned long n;

	if (type == NULL || key == NULL || fp == NULL || strlen(key) > AKC_MAX_KEY_B64)
		return -1;
	if ((blen = akc_b64_decode(key, blob, sizeof(blob))) < 4)
		return -1;
	/* The blob starts with the key type as an SSH string (u32 big-endian length, bytes). */
	tlen = strlen(type);
	n = (unsigned long)blob[0] << 24 | (unsigned long)blob[1] << 16 |
	    (unsigned long)blob[2] << 8 | blob[3];
	if (n != tlen || (size_t)blen < 4 + tlen || memcmp(blob + 4, type, tlen) != 0)
		return -1;
	if (EVP_Digest(blob, (size_t)blen, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	elen = (size_t)EVP_EncodeBlock(enc, md, (int)mdlen);
	while (elen > 0 && enc[elen - 1] == '=')
		elen--;
	enc[elen] = '\0';
	if (akc_check_fp(fp) != 0 || strcmp(fp + 7, (const char *)enc) != 0)
		return -1;
	return 0;
}

int
akc_check_args(const struct akc_args *a, char *err, size_t errlen)
{
	if (gsock_check_user(a->user) != 0) {
		snprintf(err, errlen,
			 "invalid user name argument (allowed: 1-%d of A-Z a-z 0-9 . _ -)",
			 GSOCK_MAX_USER);
		return -1;
	}
	if (akc_check_fp(a->fp) != 0) {
		snprintf(
			err, errlen,
			"invalid fingerprint argument (expected SHA256:…; is FingerprintHash sha256?)");
		return -1;
	}
	if (akc_check_type(a->type) != 0) {
		snprintf(err, errlen, "key type not accepted for brokered sessions");
		return -1;
	}
	if (akc_check_key(a->type, a->key, a->fp) != 0) {
		snprintf(err, errlen,
			 "invalid key argument (not base64 of a key of that type and fingerprint)");
		return -1;
	}
	return 0;
}

int
akc_format_expiry(int64_t epoch, char *buf, size_t len)
{
	struct tm tm;
	time_t t;

	/* 253402300799 is 9999-12-31T23:59:59Z: sshd parses exactly four year digits. */
	if (epoch <= 0 || epoch > INT64_C(253402300799) || len < AKC_EXPIRY_LEN)
		return -1;
	t = (time_t)epoch;
	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	if (strftime(buf, len, "%Y%m%d%H%M%SZ", &tm) != AKC_EXPIRY_LEN - 1)
		return -1;
	return 0;
}

int
akc_line(const json_t *ans, const struct akc_args *a, int64_t now, char *line, size_t linelen,
	 char *err, size_t errlen)
{
	char expiry[AKC_EXPIRY_LEN];
	const json_t *sess, *exp;
	const char *why;
	json_int_t e;
	int n;

	if (!gsock_answer_ok(ans, &why)) {
		snprintf(err, errlen, "saw-guestd: %s", why);
		return 0;
	}
	sess = json_object_get(ans, "session");
	exp = json_object_get(ans, "expires");
	if (!json_is_string(sess) || json_string_length(sess) == 0 || !json_is_integer(exp)) {
		snprintf(err, errlen,
			 "malformed answer from saw-guestd: ok without session/expires");
		return -1;
	}
	e = json_integer_value(exp);
	if (akc_format_expiry(e, expiry, sizeof(expiry)) != 0) {
		snprintf(err, errlen, "malformed answer from saw-guestd: expires out of range");
		return -1;
	}
	/* guestd answered for a session that has ended since (or clocks disagree): no. sshd's own
	 * expiry-time check would refuse it too, this keeps the decision in one place. */
	if (e <= now) {
		snprintf(err, errlen, "session %s has expired", json_string_value(sess));
		return 0;
	}
	n = snprintf(line, linelen, "expiry-time=\"%s\",restrict,pty %s %s\n", expiry, a->type,
		     a->key);
	if (n < 0 || (size_t)n >= linelen) {
		snprintf(err, errlen, "output line too long");
		return -1;
	}
	return 1;
}
