/*
 * The jump-host multiplexer: one persistent, multiplexed SSH client connection per jump host
 * (two of them: JumpHost lines of the broker config), corporate destinations opened as
 * direct-tcpip channels on the active one.
 *
 * - Connections are made with tunnel/sshc.h (pubkey auth, host key checked against
 *   JumpHostKnownHosts) and then driven on the event loop in non-blocking mode.
 * - The active host is health-checked: a keepalive (keepalive@openssh.com, want-reply) every
 *   JUMP_KEEPALIVE_MS; no byte received for JUMP_DEAD_MS, or the socket closing, makes it
 *   dead. New channels then go to the standby at once (so within 2 s of a death), and the
 *   dead one is reconnected in the background with backoff (1 s .. 30 s).
 * - Channels that were open on a host that dies are closed (their pumps finish).
 *
 * Ownership: the mux is created in main and freed with jump_free() (which frees every
 * pending open without calling back). An open request belongs to the mux until its callback
 * ran; the callback receives an open ssh_channel (the caller owns it: it will normally hand
 * it to pump_new_channels) or NULL with an error in plain words.
 *
 * Channels belong to their ssh_session: when a jump connection dies, the mux frees that
 * session, and with it every channel still open on it. So an owner that keeps channels of
 * the mux (in pumps) must register a dead_cb (jump_set_dead_cb): it runs before the dead
 * session is freed, and there the owner frees every pump whose channel belongs to that
 * session (ssh_channel_get_session(ch) == dead). The same holds for jump_free(): free the
 * pumps first. Callbacks (open, input, dead) may call jump_open, jump_open_cancel,
 * jump_flush and the getters, but never jump_free.
 */
#ifndef SAW_TUNNEL_JUMP_H
#define SAW_TUNNEL_JUMP_H

#include <stdbool.h>
#include <libssh/libssh.h>

#define JUMP_KEEPALIVE_MS 500
#define JUMP_DEAD_MS 1500

struct event_base;
struct jump_mux;
struct jump_open;

struct jump_host_cfg {
	const char *host;
	int port;
	const char *user;
	const char *key_path;
};

typedef void (*jump_open_cb)(ssh_channel ch, const char *error, void *arg);
/* Called after the mux let libssh process input on a jump connection, so that the owner runs
 * the pumps whose channels live there (pump_run), and again after such a connection died. */
typedef void (*jump_input_cb)(void *arg);

struct jump_mux *jump_new(struct event_base *base, const struct jump_host_cfg *hosts, size_t nhosts,
			  const char *known_hosts, jump_input_cb input_cb, void *input_arg);
void jump_free(struct jump_mux *m);

/* Opens a direct-tcpip channel to host:port on the active jump host. Returns NULL (and
 * never calls back) if the request cannot even be queued; cb runs exactly once otherwise,
 * unless jump_open_cancel() is called first. If no jump host is up, cb gets
 * "no jump host is available". */
struct jump_open *jump_open(struct jump_mux *m, const char *host, int port, const char *orig_ip,
			    int orig_port, jump_open_cb cb, void *arg);
void jump_open_cancel(struct jump_open *o);

/* Registers the callback that runs when a jump connection died, before its session (and so
 * every channel on it) is freed; see above. arg belongs to the caller. */
void jump_set_dead_cb(struct jump_mux *m, void (*dead_cb)(ssh_session dead, void *arg), void *arg);

/*
 * What happened to a jump host, for the owner's audit: a host came up (and whether new
 * channels now go to it), or went down (and which host took over, if any). Strings are
 * borrowed for the call. The callback may not call jump_free.
 */
enum jump_event_kind {
	JUMP_EV_UP,
	JUMP_EV_DOWN,
};
struct jump_event {
	enum jump_event_kind kind;
	const char *host; /* as configured (name or address) */
	int port;
	const char *label;    /* "host:port" */
	bool active;	      /* UP: new channels go to it now; DOWN: it was the active one */
	const char *previous; /* UP and active: the host new channels went to before, or NULL */
	const char *takeover; /* DOWN: the host new channels go to now, or NULL (none is up) */
	const char *reason;   /* DOWN: why, in plain words */
};
typedef void (*jump_event_cb)(const struct jump_event *e, void *arg);
void jump_set_event_cb(struct jump_mux *m, jump_event_cb cb, void *arg);
/* The "host:port" of the jump host a channel of the mux lives on, or NULL. */
const char *jump_channel_host(const struct jump_mux *m, ssh_channel ch);

/* Output was queued on a channel of the mux (e.g. by a pump): arm write interest. */
void jump_flush(struct jump_mux *m);

/* For health output and tests: index of the active host (0 or 1), or -1 if none is up. */
int jump_active(const struct jump_mux *m);
bool jump_host_up(const struct jump_mux *m, int idx);

#endif
