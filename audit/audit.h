/*
 * Audit sink: OCSF events as JSON lines appended to a file.
 *
 * audit_emit() writes the line at once (O_APPEND, one write(2) per event so lines never
 * interleave) and fdatasync()s in batches: at most every 100 ms from a libevent timer and
 * always in audit_close(). A write error is logged and returned; the event is kept in a
 * bounded in-memory queue and retried on the next emit/flush, so a full disk loses nothing
 * until the queue cap (then the loss is counted and logged loudly).
 *
 * Ownership: audit_emit() steals the reference to the event. audit_close() frees the sink.
 */
#ifndef SAW_AUDIT_H
#define SAW_AUDIT_H

#include <jansson.h>
#include <stddef.h>

struct event_base;
struct audit;

/* base may be NULL (then every emit fdatasyncs). Returns NULL with err filled on failure. */
struct audit *audit_open(const char *path, struct event_base *base, char *err, size_t errlen);
int audit_emit(struct audit *a, json_t *event);
int audit_flush(struct audit *a);
void audit_close(struct audit *a);
/* Events lost so far (queue full, or not serializable). */
unsigned long long audit_lost(const struct audit *a);

#endif
