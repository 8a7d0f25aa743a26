/*
 * A bounded byte relay between two connected stream sockets (egress proxy client ↔ the
 * destination it may reach), with back-pressure both ways: each direction has one small
 * buffer, or for bulk transfers a pipe of at most GRELAY_BUF bytes moved with splice(2); a
 * side is read only while its direction's buffer has room, so a slow
 * reader stops the writer (TCP flow control does the rest). EOF is passed on as
 * shutdown(SHUT_WR) once everything before it was written (half-close); the relay finishes
 * when both directions are done, when either side fails, or after idle_s seconds without a
 * byte moving in either direction.
 *
 * Why not bufferevents: libevent 2.1's evbuffer_read() reads at most 4 KiB per call and
 * copies every byte through user space; here small exchanges cost one read(2) and one
 * write(2), and bulk ones never leave the kernel (splice).
 *
 * Both descriptors must be non-blocking (accept4/socket with SOCK_NONBLOCK).
 * Ownership: the relay owns both descriptors from grelay_new() on (also on failure) and
 * closes them in grelay_free(). done_cb runs once, from one of the relay's events; it may
 * call grelay_free() (and must not touch the relay afterwards).
 */
#ifndef SAW_GUESTD_RELAY_H
#define SAW_GUESTD_RELAY_H

#include <stddef.h>
#include <stdint.h>

/*
 * The pipe of a bulk direction. 1 MiB (the kernel's default fs.pipe-max-size) rather than
 * 256 KiB: each splice(2) pair moves four times as much, which took guestd's CPU time per GiB
 * relayed on loopback from ~0.40 s to ~0.30 s (tests/bench/bench-egress.sh). A pipe holds
 * references to socket pages, not copies; where the kernel refuses the size (a lower
 * pipe-max-size, the user's pipe page quota) the relay runs with what it gets.
 */
#define GRELAY_BUF (1024 * 1024) /* per direction, bulk (pipe) */
#define GRELAY_BIG_PIPES 64	 /* at most this many at GRELAY_BUF: 64 MiB; others 64 KiB */
#define GRELAY_SMALL (32 * 1024) /* per direction, before a transfer proves bulk */

struct event_base;
struct grelay;

typedef void (*grelay_done_cb)(struct grelay *r, const char *why, void *arg);

struct grelay *grelay_new(struct event_base *base, int a, int b, int idle_s, grelay_done_cb cb,
			  void *arg);
/* Queues bytes to be written before anything relayed: dir 0 towards b, 1 towards a. At most
 * GRELAY_SMALL bytes per direction in all; call before the first event runs. 0 or -1. */
int grelay_queue(struct grelay *r, int dir, const void *data, size_t len);
/* Starts moving bytes (after any grelay_queue()). */
void grelay_start(struct grelay *r);
void grelay_free(struct grelay *r);
/* Makes grelay_free() reset both connections (RST, SO_LINGER 0) instead of closing them
 * gracefully: nothing still buffered for either peer is delivered (a revoked session). */
void grelay_abort_on_free(struct grelay *r);
/* Bytes written a→b (dir 0) and b→a (dir 1). */
uint64_t grelay_bytes(const struct grelay *r, int dir);

#endif
