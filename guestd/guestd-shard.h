/*
 * Event loops for the egress proxy's connections on more than one CPU (ProxyThreads in
 * saw-guestd.conf(5)), and closures posted between them.
 *
 * A shard is one event loop: shard 0 wraps guestd's own (g->base, driven by main()); the
 * others each run an event_base on a thread of their own. A shard's base, and everything
 * registered on it, is touched only by the shard's own thread: another thread reaches it with
 * gshard_post(), which queues fn(sh, arg) to run there, in posting order, on the shard's
 * next loop turn. Posting is a mutex and, when the queue was empty, one eventfd write; a
 * burst of posts wakes the shard once.
 *
 * Ownership: arg passes to fn with the post. gshard_free() stops a threaded shard (joining
 * the thread after it ran every closure posted before) and runs whatever is still queued on
 * the caller's thread, so a posted closure always runs exactly once.
 */
#ifndef SAW_GUESTD_SHARD_H
#define SAW_GUESTD_SHARD_H

struct event_base;
struct gshard;

typedef void (*gshard_fn)(struct gshard *sh, void *arg);

/* base != NULL: a shard for that existing loop (run by its owner); NULL: a new event_base
 * for a thread of its own, named "saw-proxy-<idx>", which gshard_start() starts: until then
 * the caller may set the base up (what is registered on it before the start is the thread's
 * from then on). NULL on failure (errno). */
struct gshard *gshard_new(struct event_base *base, unsigned idx);
/* Starts the thread of a shard made with its own base (nothing for the other kind): 0, or
 * -1 with errno. Closures posted before run once it started. */
int gshard_start(struct gshard *sh);
/* Queues fn(sh, arg) on sh's thread. 0, or -1 when out of memory (fn will not run: the
 * caller keeps arg). */
int gshard_post(struct gshard *sh, gshard_fn fn, void *arg);
/* Runs what is queued on sh now, on sh's own thread (for a caller that must see everything
 * posted before it goes on: an order to keep). */
void gshard_run_pending(struct gshard *sh);
struct event_base *gshard_base(const struct gshard *sh);
unsigned gshard_index(const struct gshard *sh);
/* The caller's own data for the shard. */
void gshard_set_data(struct gshard *sh, void *data);
void *gshard_data(const struct gshard *sh);
/* Stops and frees (see above): last(sh, arg), if not NULL, runs on the shard's thread (the
 * caller's for a shard of an existing loop) after every closure posted before, and is the
 * last thing that thread does; it needs no memory. The base of a shard made from an existing
 * loop is left to its owner; a threaded shard's base is freed after its thread ended. */
void gshard_free(struct gshard *sh, gshard_fn last, void *arg);

#endif
