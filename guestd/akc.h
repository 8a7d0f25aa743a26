/*
 * saw-authorized-keys' decisions as pure functions (no I/O), so that they are unit-tested
 * (tests/unit/torture_akc.c) apart from the socket and sshd.
 *
 * sshd runs `saw-authorized-keys [-s PATH] %u %f %k %t` for every public key a client offers.
 * The arguments come from sshd, but the user name is the one the client asked for, so every
 * argument is checked before any of it reaches guestd or stdout.
 *
 * Ownership: nothing here allocates; all strings are the caller's.
 */
#ifndef SAW_AKC_H
#define SAW_AKC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longest %k accepted: base64 of a 16384-bit RSA key (OpenSSH's maximum) is ~2.8 KB. */
#define AKC_MAX_KEY_B64 4096
/* "SHA256:" and the unpadded base64 of a SHA-256 digest. */
#define AKC_FP_LEN (7 + 43)
/* Room for one output line: options, type, key, newline. */
#define AKC_MAX_LINE (AKC_MAX_KEY_B64 + 128)
/* "YYYYMMDDHHMMSSZ" and its NUL. */
#define AKC_EXPIRY_LEN 16

struct akc_args {
	const char *user; /* %u */
	const char *fp;	  /* %f */
	const char *key;  /* %k: base64 of the key blob */
	const char *type; /* %t */
};

/* 0 if the key type is one a brokered session may bind (plain ed25519, ECDSA, RSA, and their
 * FIDO variants); -1 for anything else (DSA, certificates, unknown names). */
int akc_check_type(const char *type);

/* 0 if fp looks like "SHA256:" + 43 characters of unpadded base64; -1 otherwise. */
int akc_check_fp(const char *fp);

/* 0 if key is strict base64 (charset, padding, length) of an SSH key blob whose embedded type
 * name is type and whose SHA-256 fingerprint is fp; -1 otherwise. This binds the line we print
 * to the exact key guestd approved by fingerprint. */
int akc_check_key(const char *type, const char *key, const char *fp);

/* All of the above plus the user name rule (gsock_check_user). 0, or -1 with a reason. */
int akc_check_args(const struct akc_args *a, char *err, size_t errlen);

/* Formats an absolute time (seconds since the epoch) as sshd's expiry-time value
 * "YYYYMMDDHHMMSSZ" (UTC). 0, or -1 if out of range (≤ 0, after year 9999) or buf too small. */
int akc_format_expiry(int64_t epoch, char *buf, size_t len);

/*
 * Turns guestd's answer to {"op":"authorized_keys",…} into the line to print.
 *   1  line holds `expiry-time="…Z",restrict,pty TYPE KEY\n`
 *   0  a definite no (ok:false, or the session has already expired at now); err says why
 *  -1  a malformed answer (ok:true without a usable "session"/"expires"); err says why
 * Only 1 prints anything.
 */
int akc_line(const json_t *ans, const struct akc_args *a, int64_t now, char *line, size_t linelen,
	     char *err, size_t errlen);

#endif
