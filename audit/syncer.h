/*
 * Background fdatasync for the audit sinks: a helper thread per sink runs fdatasync(2) so
 * that a slow disk (a sync can take tens of milliseconds) never stalls the event loop, which
 * keeps serving logins meanwhile. Group commit: the sink asks for a sync at most every
 * AUDIT_SYNC_MS; writes made while one runs are covered by the next.
 *
 * The thread only ever calls fdatasync() on a dup() of the descriptor (so the sink may close
 * or rotate its own meanwhile) and writes one byte to a pipe; the loop side reads the pipe
 * and calls done(err, arg) on the loop thread. Nothing else is shared.
 *
 * Ownership: syncer_new() returns a handle that syncer_free() stops (waiting for a sync in
 * flight) and frees; done is never called after syncer_free().
 */
#ifndef SAW_AUDIT_SYNCER_H
#define SAW_AUDIT_SYNCER_H

#include <stdbool.h>

struct event_base;
struct syncer;

struct syncer *syncer_new(struct event_base *base, void (*done)(int err, void *arg), void *arg);
/* Starts an fdatasync of fd in the background. Returns 0, or -1 (busy, or dup failed). */
int syncer_start(struct syncer *s, int fd);
bool syncer_busy(const struct syncer *s);
void syncer_free(struct syncer *s);

#endif
