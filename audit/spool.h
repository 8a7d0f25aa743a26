/*
 * Durable FIFO of audit events in a sqlite database (WAL), for the HTTP forwarder and for
 * any daemon that must hold events while their destination is away (guestd offline).
 *
 * An event is durable once spool_append() returned 0: the row is committed to the WAL, so it
 * survives the process being killed; spool_sync() (called by the sink within AUDIT_SYNC_MS)
 * fdatasyncs the WAL so that it also survives power loss. Rows come back in append order and
 * stay until spool_ack(). Ids increase while the spool holds rows; once it is empty they may
 * start again from 1, so a reader keeping a cursor (after_id) resets it to 0 whenever
 * spool_rows() is 0. One spool per file at a time: spool_open() takes an flock(2) on the
 * database (a second open, from this process or another, fails while it is held). The file
 * is created 0600.
 *
 * Several appends (and acks) can share one transaction: after spool_begin() they are committed
 * together, and made durable against a kill, by spool_commit() (a daemon commits at the end of
 * the loop turn that appended, before it waits for anything again: one WAL commit per turn
 * instead of one per event). A failed commit rolls the whole transaction back and says so;
 * spool_close() commits an open one.
 *
 * Checkpoints (WAL copied back into the database, with fsyncs) run on a thread of the spool
 * with a second sqlite connection, never in the caller's thread; it starts with the first
 * spool_append(). A spool only read (spool_peek) has none.
 *
 * Size cap: at most max_bytes of event data. spool_append() of an event that does not fit
 * returns SPOOL_FULL and stores nothing: the caller counts it as "cannot make durable".
 *
 * Rows read back are checked by spool_row_check() (a damaged database must not feed the
 * forwarder garbage); a row that fails is reported to the caller, which drops it loudly.
 *
 * Ownership: spool_open() returns a handle freed by spool_close(). Row pointers given to a
 * spool_peek() callback are valid during the callback only.
 */
#ifndef SAW_AUDIT_SPOOL_H
#define SAW_AUDIT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_FULL (-2)
#define SPOOL_EVENT_MAX (1024 * 1024)

struct spool;

struct spool_row {
	long long id;
	int64_t time_ms;
	const char *uid; /* may be NULL */
	const char *event;
	size_t len;
	bool damaged; /* failed spool_row_check(): not to be sent */
};

struct spool *spool_open(const char *path, long long max_bytes, char *err, size_t errlen);
/* 0, SPOOL_FULL, or -1 (database error, logged). */
int spool_append(struct spool *s, const char *uid, int64_t time_ms, const char *event, size_t len);
/*
 * Calls cb for rows with id > after_id in id order, at most max_rows rows and, past the
 * first row, max_bytes of event data. cb returns 0 to go on, 1 to stop. Returns the number
 * of rows passed to cb, or -1 on a database error.
 */
int spool_peek(struct spool *s, long long after_id, size_t max_rows, size_t max_bytes,
	       int (*cb)(const struct spool_row *row, void *arg), void *arg);
/* Deletes every row with id <= upto_id. Returns 0 or -1. */
int spool_ack(struct spool *s, long long upto_id);
/* Opens a transaction (no-op if one is open). Returns 0 or -1 (logged). */
int spool_begin(struct spool *s);
/* Commits it (no-op if none). Returns 0, or -1 when it was rolled back (logged): every append
 * and ack since spool_begin() is undone and the counts are read again. */
int spool_commit(struct spool *s);
bool spool_in_txn(const struct spool *s);
/* The id of the row the last successful spool_append() stored. */
long long spool_last_id(const struct spool *s);
/* fdatasync the WAL (rows committed so far survive power loss). Returns 0 or -1. */
int spool_sync(struct spool *s);
/* The WAL's descriptor for a background sync (syncer.h); -1 if nothing was written yet.
 * Owned by the spool. */
int spool_wal_fd(struct spool *s);
long long spool_rows(const struct spool *s);
long long spool_bytes(const struct spool *s);
void spool_close(struct spool *s);

/* What the spool and its checkpoint thread have done (tests, benchmarks). */
struct spool_stats {
	long long rows, bytes;
	bool checkpoint_thread; /* false: not started yet, or sqlite checkpoints inline */
	long long checkpoints;	/* passes completed by the thread */
	long long restarts;	/* of which RESTART (the WAL had grown too long) */
	int wal_frames;		/* WAL length after the last pass, 0 if all copied */
};
void spool_stats(struct spool *s, struct spool_stats *out);
/* Holds (true) or releases background checkpoints; starts the thread if needed. For tests:
 * while held the WAL only grows. */
void spool_checkpoint_hold(struct spool *s, bool hold);

/* A row's event must be one compact JSON object: '{' ... '}', no NUL, no line break, at
 * most SPOOL_EVENT_MAX bytes; a uid, printable ASCII. Returns 0 or -1. */
int spool_row_check(const char *uid, const char *event, size_t len);

#endif
