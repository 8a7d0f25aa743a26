/*
 * The control channel between saw-brokerd and saw-guestd.
 *
 * Carried in an SSH session channel that guestd opens on its workspace connection with the
 * subsystem "saw-control@saw". Each message is a frame:
 *
 *   u32 length (big endian; bytes that follow, 2 .. CTL_MAX_FRAME)
 *   u8  version (CTL_VERSION)
 *   u8  type (enum ctl_type)
 *   ... body: one JSON object (UTF-8), length - 2 bytes
 *
 * Untrusted in both directions. A frame that is oversized, of another version, of an
 * unknown type, whose body is not a JSON object, or whose object lacks a required member or
 * has one of the wrong type, is malformed: the receiver ends the connection (fuzzed in
 * tests/fuzz/fuzz_ctl.c). Unknown members are ignored (forward compatibility).
 *
 * New message types keep CTL_VERSION: a peer only sends a type the other side announced
 * (CTL_AUDIT_ACK goes only to a guestd whose HELLO carried "audit_ack": true), so an older
 * peer never sees a type it would refuse.
 *
 * Audit delivery (issue #6): guestd numbers each event it spools with a sequence number
 * that only grows (ctl_audit.seq), sends CTL_AUDIT {seq, event} in order, and deletes its
 * spooled copy once the broker acknowledged it with CTL_AUDIT_ACK {upto}: every event with
 * seq <= upto is durable at the broker. After HELLO the broker first sends the highest seq
 * it holds for the workspace, so guestd resends nothing the broker has, and the broker
 * drops a CTL_AUDIT whose seq it already acknowledged (a resend after a lost ACK).
 *
 * Ownership: decoded json_t bodies and the typed structs' strings belong to the caller
 * (json_decref / ctl_*_clear).
 */
#ifndef SAW_TUNNEL_CTL_H
#define SAW_TUNNEL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_SUBSYSTEM "saw-control@saw"
#define CTL_VERSION 1
#define CTL_MAX_FRAME (64 * 1024)
#define CTL_MAX_CORP 256
#define CTL_MAX_GROUPS 256

enum ctl_type {
	CTL_HELLO = 1,		/* guestd → broker: {workspace, version} */
	CTL_STATE = 2,		/* guestd → broker: {sessions, logins} */
	CTL_SESSION_ATTACH = 3, /* broker → guestd: struct ctl_attach */
	CTL_SESSION_END = 4,	/* broker → guestd: {session, reason} */
	CTL_AUDIT = 5,		/* guestd → broker: {event: OCSF object, seq (optional)} */
	CTL_AUDIT_ACK = 6,	/* broker → guestd: {upto}: events with seq <= upto are taken */
};

#define CTL_SEQ_MAX ((int64_t)1 << 53) /* seq/upto stay exact in any JSON reader */

struct ctl_corp {
	char *name;
	char *host;
	int port;
};

/* A brokered session attached to this workspace. */
struct ctl_attach {
	char *session;	       /* broker session id */
	char *user;	       /* SSH / IdP username */
	char *sub;	       /* IdP subject */
	char *key_fp;	       /* "SHA256:…" of the key bound to the session */
	int64_t expires;       /* absolute expiry, seconds since the epoch */
	char *profile;	       /* "corporate" | "public" */
	char *tunnel_token;    /* single-use credential for the per-session tunnel (secret) */
	struct ctl_corp *corp; /* corporate services reachable through the tunnel */
	size_t ncorp;
	char **groups; /* optional: the session's IdP groups (policy selectors) */
	size_t ngroups;
};

struct ctl_end {
	char *session;
	char *reason;
};

/* Encodes one frame. Returns a malloc'd buffer in *out (caller frees) or -1. */
int ctl_encode(enum ctl_type type, const json_t *body, uint8_t **out, size_t *outlen);

/* Decodes the first frame of buf. Returns 0 with *consumed, *type and *body (new reference)
 * set; 1 if more bytes are needed; -1 if malformed (err filled with a short reason). */
int ctl_decode(const uint8_t *buf, size_t len, size_t *consumed, enum ctl_type *type, json_t **body,
	       char *err, size_t errlen);

/* Typed views. *_from_json validate required members (-1 + err if missing/wrong). */
json_t *ctl_attach_to_json(const struct ctl_attach *a);
int ctl_attach_from_json(const json_t *j, struct ctl_attach *a, char *err, size_t errlen);
void ctl_attach_clear(struct ctl_attach *a); /* wipes the token */
/* The broker's stored groups (a JSON array of strings, as in the session row) as a
 * malloc'd array for ctl_attach.groups: 0 (*groups NULL when there are none, text NULL or
 * not an array) or -1 (out of memory); non-string or oversized members are left out and
 * at most CTL_MAX_GROUPS are taken. Free with ctl_groups_free(). */
int ctl_groups_from_text(const char *text, char ***groups, size_t *ngroups);
void ctl_groups_free(char **groups, size_t ngroups);
json_t *ctl_end_to_json(const struct ctl_end *e);
int ctl_end_from_json(const json_t *j, struct ctl_end *e, char *err, size_t errlen);
void ctl_end_clear(struct ctl_end *e);

/* CTL_AUDIT: seq 1..CTL_SEQ_MAX, or 0 for an unnumbered event (an older guestd, or one
 * without a spool: never acknowledged). event is borrowed (a new reference is taken). */
json_t *ctl_audit_to_json(int64_t seq, json_t *event);
/* The CTL_AUDIT frame of numbered event seq (1..CTL_SEQ_MAX) whose compact JSON text the
 * caller already has (len bytes, an object: checked only for its braces and no NUL; the
 * caller's serialiser vouches for the rest): what ctl_encode(CTL_AUDIT,
 * ctl_audit_to_json(seq, event)) gives, without building and serialising the JSON again.
 * Its body (the frame from byte CTL_FRAME_HEADER) is the text a spool row holds. Returns 0
 * with *out malloc'ed, or -1. */
#define CTL_FRAME_HEADER 6
int ctl_audit_frame(int64_t seq, const char *event, size_t len, uint8_t **out, size_t *outlen);
/* *event is borrowed from j (valid while j is); it is an object with an integer class_uid.
 * *seq is 0 when the member is absent. */
int ctl_audit_from_json(const json_t *j, int64_t *seq, json_t **event, char *err, size_t errlen);
/* The seq guestd gives its next event: one more than last, or the wall clock in
 * microseconds (now_us) if that is higher, so that numbers keep growing across a restart
 * that lost last (an empty spool). -1 past CTL_SEQ_MAX (the year 2255). Pure. */
int64_t ctl_audit_seq_next(int64_t last, int64_t now_us);
/*
 * Whether seq may become a workspace's audit mark at broker wall-clock time now_us (µs
 * since the epoch). guestd numbers its events max(last + 1, its wall clock in µs), so a
 * seq far ahead of the broker's clock can only come from a damaged or compromised guestd,
 * which would otherwise push the mark near its maximum and have every later event dropped
 * as a resend. CTL_AUDIT_SEQ_SKEW_US of clock difference (a day) is allowed. Pure.
 */
#define CTL_AUDIT_SEQ_SKEW_US (86400LL * 1000000LL)
bool ctl_audit_seq_plausible(int64_t seq, int64_t now_us);
/* CTL_AUDIT_ACK: upto 0..CTL_SEQ_MAX (0: the broker holds nothing of this workspace). */
json_t *ctl_audit_ack_to_json(int64_t upto);
int ctl_audit_ack_from_json(const json_t *j, int64_t *upto, char *err, size_t errlen);

#endif
