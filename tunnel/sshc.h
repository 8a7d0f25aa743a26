/*
 * SSH client connections for the event loop (guestd → broker, broker → jump hosts).
 *
 * Connecting, verifying the server's host key and authenticating are done with libssh in
 * blocking mode on a short-lived worker thread (bounded by timeout_s), because libssh 0.10's
 * non-blocking client handshake is fragile; the finished session is then handed to the loop
 * thread through a pipe and, from then on, used only there, in non-blocking mode. A session
 * is never used by two threads at once: the worker drops it before the hand-over.
 *
 * Host keys are always verified: either against one pinned public key file (pinned_key) or
 * against a known_hosts file (known_hosts). A mismatch is an error naming both fingerprints.
 *
 * Ownership: on success the callback receives the ssh_session and owns it (ssh_free it).
 * sshc_cancel() makes a pending attempt's result be discarded (the callback never runs).
 */
#ifndef SAW_TUNNEL_SSHC_H
#define SAW_TUNNEL_SSHC_H

#include <libssh/libssh.h>

struct event_base;
struct sshc_attempt;

struct sshc_params {
	const char *host;
	int port;
	const char *user;
	const char *key_path;	 /* private key for publickey auth */
	const char *pinned_key;	 /* path of the server's public host key (.pub), or NULL */
	const char *known_hosts; /* path of a known_hosts file, or NULL */
	const char *password;	 /* optional second factor after publickey (partial success) */
	int timeout_s;		 /* connect + kex + auth, default 10 */
};

/* error: plain words ("connection refused", "host key mismatch: expected SHA256:… got …",
 * "authentication refused"), NULL on success. */
typedef void (*sshc_done_cb)(ssh_session s, const char *error, void *arg);

/* Copies params. Returns NULL if the attempt could not even be started. */
struct sshc_attempt *sshc_connect(struct event_base *base, const struct sshc_params *p,
				  sshc_done_cb cb, void *arg);
void sshc_cancel(struct sshc_attempt *a);

#endif
