/*
 * saw-guestd's local control socket (ControlSocket, default /run/saw/guestd.sock): how
 * saw-authorized-keys and pam_saw.so ask about brokered sessions.
 *
 * Protocol: the client connects (AF_UNIX, SOCK_STREAM), writes ONE request line (a JSON
 * object, at most GSOCK_MAX_LINE bytes, ending in '\n'), reads ONE response line, closes.
 * guestd checks the peer with SO_PEERCRED: `authorized_keys` is allowed to root and to the
 * AuthorizedKeysUser account; every `pam_*` op to root only. Anything else → {"ok":false,
 * "error":"…"}. Both clients fail closed: no answer, a malformed answer or a timeout
 * (GSOCK_TIMEOUT_MS) means "no".
 *
 * Requests and answers:
 *   {"op":"authorized_keys","user":U,"fp":"SHA256:…"}
 *       → {"ok":true,"session":ID,"expires":EPOCH}   a live brokered session of U bound to fp
 *       → {"ok":false,"error":"no live brokered session for this key"}
 *   {"op":"pam_account","user":U}
 *       → {"ok":true,"session":ID,"expires":EPOCH} | {"ok":false,"error":…}
 *   {"op":"pam_open","user":U,"pid":P,"cgroup":"/sys/fs/cgroup/…" (optional),"tty":T (opt)}
 *       → {"ok":true,"session":ID} (the login is registered: revocation kills it)
 *   {"op":"pam_close","user":U,"pid":P} → {"ok":true}
 *   {"op":"session_env","session":ID} (root) → {"ok":true,"env":["SAW_CAP_<ROUTE>=…",…]}
 *       the session's credential-proxy capabilities (minted on first use; never secrets),
 *       for a launcher that builds a session's environment outside guestd, and operators
 *   {"op":"session_exec","user":U,"fp":"SHA256:…","command":C|null,"term":T,"cols":N,
 *    "rows":N} with stdin, stdout, stderr of the login attached (SCM_RIGHTS, in that order)
 *       allowed to any uid, but only for itself: the peer must be the Unix user U, outside
 *       any sandbox, and a live brokered session of U must be bound to fp (saw-session, the
 *       sshd ForceCommand; guestd-sandbox.h). The connection stays open:
 *       → {"ok":true,"session":ID,"expires":EPOCH} the sandbox runs C (or a login shell)
 *       ← {"op":"signal","signal":"HUP"|"TERM"|"INT"} forwarded to the sandbox; EOF: the
 *         login hung up (SIGHUP, SIGKILL 2 s later)
 *       → {"exit":N} when it exits, or {"exit":255,"ended":REASON} when guestd ended it
 *       → {"ok":false,"error":"no live brokered session"} (or another reason)
 *   {"op":"status"} (root) → {"ok":true,"online":bool,"sessions":[{session,user,expires}…]}
 */
#ifndef SAW_GUESTD_SOCK_H
#define SAW_GUESTD_SOCK_H

#define GSOCK_DEFAULT_PATH "/run/saw/guestd.sock"
#define GSOCK_MAX_LINE 4096
#define GSOCK_TIMEOUT_MS 2000
#define GSOCK_MAX_FDS 3 /* SCM_RIGHTS descriptors a request may carry (session_exec) */

#endif
