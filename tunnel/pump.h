/*
 * Byte pump between two ends with back-pressure in both directions: an SSH channel and
 * another SSH channel (broker: user's direct-tcpip ↔ workspace's forwarded-tcpip; per-session
 * tunnel ↔ jump-host channel), or an SSH channel and a socket (guestd: forwarded-tcpip ↔
 * local sshd; proxy client ↔ tunnel channel).
 *
 * Never an unbounded buffer: a channel is read only as far as the other end can take now
 * (its SSH window, or PUMP_SOCKET_HIGH bytes queued for a socket), so a slow reader stops
 * the window updates to the writer. EOF in one direction is passed on as EOF/shutdown(SHUT_WR)
 * (half-close); the pump finishes when both directions are done or either end fails.
 *
 * libssh 0.10 gives no "window reopened" callback and no readiness event per channel, so the
 * owner of each SSH session calls pump_run() for the pumps on that session after libssh has
 * processed input (data, window adjust, EOF, close may have arrived). Socket ends are watched
 * by the pump itself with libevent.
 *
 * Ownership: the pump owns both ends from pump_new_*() on: pump_free() closes and frees the
 * channels (ssh_channel_free) and the socket. done_cb runs once, from pump_run() or a socket
 * event; it may call pump_free(). Channels must still be valid (their sessions alive) when
 * pump_free() is called; free pumps before their sessions.
 */
#ifndef SAW_TUNNEL_PUMP_H
#define SAW_TUNNEL_PUMP_H

#include <stdint.h>
#include <libssh/libssh.h>

#define PUMP_CHUNK (32 * 1024)
#define PUMP_SOCKET_HIGH (256 * 1024)

struct event_base;
struct pump;

typedef void (*pump_done_cb)(struct pump *p, void *arg);

struct pump *pump_new_channels(ssh_channel a, ssh_channel b, pump_done_cb cb, void *arg);
/* fd must be a connected (or connecting, non-blocking) stream socket. */
struct pump *pump_new_socket(struct event_base *base, ssh_channel ch, int fd, pump_done_cb cb,
			     void *arg);
void pump_run(struct pump *p);
/* Socket pumps: called after every socket event of the pump, so that the session's owner
 * arms write interest (ssh_get_poll_flags & SSH_WRITE_PENDING) and takes a processing turn:
 * reading the channel may have made libssh read the session socket (ssh_channel_poll), leaving
 * input for other channels in libssh's buffers with no event to announce it. */
void pump_set_kick(struct pump *p, void (*kick)(void *), void *arg);
void pump_free(struct pump *p);
/* Session s is going away on its own (ssh_disconnect frees its channels): pump_free() must
 * not touch the pump's channel(s) of s. */
void pump_forget_session(struct pump *p, ssh_session s);
/* Bytes moved a→b (dir 0) and b→a (dir 1); for socket pumps a is the channel. */
uint64_t pump_bytes(const struct pump *p, int dir);
int pump_is_done(const struct pump *p);

#endif
