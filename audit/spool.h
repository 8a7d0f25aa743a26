/*
 * Durable FIFO of audit events in a sqlite database (WAL), for the HTTP forwarder and for
 * any daemon that must hold events while their destination is away (guestd offline).
 *
 * An event is durable once spool_append() returned 0: the row is committed to the WAL, so it
 * survives the process being killed; spool_sync() (called by the sink within AUDIT_SYNC_MS)
 * fdatasyncs the WAL so that it also survives power loss. Rows come back in append order and
 * stay until spool_ack(). Ids increase while the spool holds rows; once it is empty they may
 * start again from 1, so a reader keeping a cursor (after_id) resets it to 0 whenever
 * spool_rows() is 0. One process at a time: the database is locked exclusively while open.
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
/* fdatasync the WAL (rows committed so far survive power loss). Returns 0 or -1. */
int spool_sync(struct spool *s);
/* The WAL's descriptor for a background sync (syncer.h); -1 if nothing was written yet.
 * Owned by the spool. */
int spool_wal_fd(struct spool *s);
long long spool_rows(const struct spool *s);
long long spool_bytes(const struct spool *s);
void spool_close(struct spool *s);

/* A row's event must be one compact JSON object: '{' ... '}', no NUL, no line break, at
 * most SPOOL_EVENT_MAX bytes; a uid, printable ASCII. Returns 0 or -1. */
int spool_row_check(const char *uid, const char *event, size_t len);

#endif
