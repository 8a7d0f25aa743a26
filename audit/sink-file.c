/*
 * JSON-lines file sink with a hash chain, batched fdatasync, rotation and reopen.
 *
 * Every event becomes one line written with O_APPEND by as few write(2) calls as the kernel
 * allows (one, unless the disk fills up mid-line). Lines that could not be written stay in a
 * bounded FIFO and are retried, oldest first, before any newer line: the file keeps event
 * order, and a line cut short by ENOSPC is completed from where it stopped. A line's chain
 * member (chain.h) is computed when the line enters the FIFO, so the chain covers exactly
 * the lines that reach the file; an event refused because the FIFO is full never enters it.
 *
 * One writer per file: the chain continues from the file's last line when the sink opens
 * it, so two processes appending to one file would each write a valid line but together
 * break the chain (the verifier reports where).
 *
 * Rotation (size or age): PATH.k-1 -> PATH.k ... PATH -> PATH.1, a new PATH whose first
 * line is an anchor (Event Log Activity "Rotate") chaining to the last line of PATH.1.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/audit-json.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "audit/sink.h"
#include "audit/syncer.h"

#define FILE_RETRY_MS 1000	  /* retry interval while writes fail */
#define FILE_ROTATE_RETRY_SECS 60 /* after a failed rotation */

struct file_line {
	char *buf;
	size_t len;
	size_t off; /* bytes already in the file (partial write) */
};

struct sink_file {
	char path[AUDIT_SINK_PATH_MAX];
	long long rotate_size, rotate_secs;
	int keep;
	const char *app;
	struct event_base *base; /* NULL: fdatasync on every emit */
	struct event *timer;
	bool timer_armed;

	int fd;
	dev_t dev;
	ino_t ino;
	off_t size;	  /* bytes in the file, as far as we know */
	time_t opened_at; /* for time rotation */
	time_t rotate_retry_at;
	/* Group commit: every successful write bumps wgen; a sync covers the writes made
	 * before it started (reqgen); sgen is the newest generation known on disk. */
	unsigned long long wgen, sgen, reqgen;
	struct syncer *syncer; /* background fdatasync; NULL without an event base */
	bool failing;	       /* last write failed; logged once per episode */
	bool sync_failing;     /* last fdatasync failed */

	char last_hash[CHAIN_HEX_LEN + 1]; /* of the last line queued */
	long long next_seq;

	struct file_line q[AUDIT_QUEUE_MAX]; /* ring buffer */
	size_t qhead, qcount, qbytes;
	unsigned long long lost;
};

static void sink_file_timer_cb(evutil_socket_t fd, short what, void *arg);

static void
sink_file_arm(struct sink_file *f, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (f->timer == NULL || f->timer_armed)
		return;
	if (evtimer_add(f->timer, &tv) == 0)
		f->timer_armed = true;
}

static void
sink_file_count_lost(struct sink_file *f, const char *why)
{
	f->lost++;
	if (f->lost == 1 || f->lost % AUDIT_LOST_LOG_EVERY == 0)
		log_warnx("AUDIT EVENT LOST (%s): %llu event(s) lost so far for %s", why, f->lost,
			  f->path);
}

/* Makes a new directory entry durable (creation, rename). */
static void
sink_file_sync_dir(const char *path)
{
	char copy[AUDIT_SINK_PATH_MAX];
	int dfd;

	snprintf(copy, sizeof(copy), "%s", path);
	if ((dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if (fsync(dfd) == -1)
		log_warn("cannot sync the directory of audit log %s", path);
	close(dfd);
}

/*
 * Opens path for appending. O_NONBLOCK so that a FIFO put at the path cannot hang start-up;
 * cleared once we know it is a regular file.
 */
static int
sink_file_open_fd(const char *path, struct stat *sb, char *err, size_t errlen)
{
	int fd, flags;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb->st_mode)) {
		snprintf(err, errlen, "cannot open audit log %s: not a regular file", path);
		goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/*
 * Reads the last line of the file at path (size bytes) to continue its chain. Returns 1 if
 * the chain continues (hash and seq set), 0 if a new chain must start (empty file), -1 if the
 * tail is damaged or not chained (hash set to the tail's hash when there is one, so the
 * anchor still points at what was there).
 */
static int
sink_file_read_tail(const char *path, off_t size, char hash[CHAIN_HEX_LEN + 1], long long *seq)
{
	struct chain_info ci;
	size_t want, start, end;
	char *buf = NULL;
	ssize_t n;
	int fd, rc = -1;

	strcpy(hash, CHAIN_GENESIS);
	*seq = 1;
	if (size == 0)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return -1;
	want = size > CHAIN_LINE_MAX + 1 ? CHAIN_LINE_MAX + 1 : (size_t)size;
	if ((buf = malloc(want)) == NULL)
		goto out;
	n = pread(fd, buf, want, size - (off_t)want);
	if (n != (ssize_t)want)
		goto out;
	end = want;
	if (buf[end - 1] != '\n') {
		/* Cut short (a crash mid-write): chain the anchor to the fragment. */
		start = end;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		chain_hash(buf + start, end - start, hash);
		goto out;
	}
	end--;
	start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	chain_hash(buf + start, end - start, hash);
	if (chain_parse(buf + start, end - start, &ci) == 0 && ci.has_chain) {
		*seq = ci.seq + 1;
		rc = 1;
	}
out:
	free(buf);
	close(fd);
	return rc;
}

/* Writes what is left of one line. Returns 0, or -1 with errno set. */
static int
sink_file_write_line(struct sink_file *f, struct file_line *l)
{
	ssize_t n;

	while (l->off < l->len) {
		n = write(f->fd, l->buf + l->off, l->len - l->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		l->off += (size_t)n;
		f->size += n;
		f->wgen++;
	}
	return 0;
}

/* Writes queued lines, oldest first. Returns 0 when the queue is empty. */
static int
sink_file_drain(struct sink_file *f)
{
	struct file_line *l;

	while (f->qcount > 0) {
		l = &f->q[f->qhead];
		if (f->fd == -1 || sink_file_write_line(f, l) == -1) {
			if (!f->failing)
				log_warn("cannot write audit log %s (%zu event(s) kept in memory, "
					 "retrying; free disk space or fix the file)",
					 f->path, f->qcount);
			f->failing = true;
			sink_file_arm(f, FILE_RETRY_MS);
			return -1;
		}
		f->qbytes -= l->len;
		free(l->buf);
		l->buf = NULL;
		f->qhead = (f->qhead + 1) % AUDIT_QUEUE_MAX;
		f->qcount--;
	}
	if (f->failing) {
		log_warnx("audit log %s is writable again (%llu event(s) lost in total)", f->path,
			  f->lost);
		f->failing = false;
	}
	return 0;
}

static void
sink_file_sync_result(struct sink_file *f, int err, unsigned long long gen)
{
	if (err != 0) {
		errno = err;
		if (!f->sync_failing)
			log_warn("cannot sync audit log %s", f->path);
		f->sync_failing = true;
		sink_file_arm(f, FILE_RETRY_MS);
		return;
	}
	if (f->sync_failing)
		log_warnx("audit log %s syncs again", f->path);
	f->sync_failing = false;
	if (gen > f->sgen)
		f->sgen = gen;
}

/* fdatasync now, on the calling thread (flush, close, rotation, no event loop). */
static int
sink_file_sync(struct sink_file *f)
{
	unsigned long long gen = f->wgen;

	if (gen == f->sgen || f->fd == -1)
		return 0;
	sink_file_sync_result(f, fdatasync(f->fd) == -1 ? errno : 0, gen);
	return f->sync_failing ? -1 : 0;
}

/* Starts a background sync of what is written so far, unless one runs already (then its
 * completion starts the next). */
static void
sink_file_sync_async(struct sink_file *f)
{
	if (f->wgen == f->sgen || f->fd == -1 || syncer_busy(f->syncer))
		return;
	f->reqgen = f->wgen;
	if (syncer_start(f->syncer, f->fd) == -1)
		sink_file_sync(f); /* no descriptor to spare: do it here */
}

static void
sink_file_sync_done(int err, void *arg)
{
	struct sink_file *f = arg;

	sink_file_sync_result(f, err, f->reqgen);
	/* Writes made during that sync: the next one starts at once (group commit). */
	if (!f->sync_failing)
		sink_file_sync_async(f);
}

/*
 * Chains json (a compact object) and puts the line in the FIFO. Returns 0, or -1 if it was
 * refused (counted lost; the chain is unchanged).
 */
static int
sink_file_enqueue(struct sink_file *f, const char *json, size_t len, const char *extra,
		  size_t extralen)
{
	struct file_line *l;
	size_t cap = len + extralen + CHAIN_HEX_LEN + 64, n;
	char *line;

	if (f->qcount == AUDIT_QUEUE_MAX || f->qbytes + cap > AUDIT_QUEUE_BYTES) {
		sink_file_count_lost(f, "audit log not writable and retry queue full");
		return -1;
	}
	if (len + extralen > CHAIN_LINE_MAX - CHAIN_HEX_LEN - 64) {
		sink_file_count_lost(f, "event larger than 1 MiB");
		return -1;
	}
	if ((line = malloc(cap + 1)) == NULL) {
		sink_file_count_lost(f, "out of memory");
		return -1;
	}
	if ((n = chain_splice(json, len, extra, extralen, f->last_hash, f->next_seq, line, cap)) ==
	    0) {
		free(line);
		sink_file_count_lost(f, "event is not a JSON object");
		return -1;
	}
	chain_hash(line, n, f->last_hash);
	f->next_seq++;
	line[n++] = '\n';
	l = &f->q[(f->qhead + f->qcount) % AUDIT_QUEUE_MAX];
	l->buf = line;
	l->len = n;
	l->off = 0;
	f->qcount++;
	f->qbytes += n;
	return 0;
}

/* Queues the anchor record that starts a file. */
static int
sink_file_anchor(struct sink_file *f, enum ocsf_event_log_activity activity, const char *msg)
{
	json_t *ev = ocsf_event_log(activity, f->path, f->app, msg, ocsf_now_ms());
	char *s;
	int rc;

	if (ev == NULL) {
		sink_file_count_lost(f, "anchor record could not be built, out of memory");
		return -1;
	}
	s = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (s == NULL) {
		sink_file_count_lost(f, "anchor record could not be serialized");
		return -1;
	}
	rc = sink_file_enqueue(f, s, strlen(s), NULL, 0);
	free(s);
	return rc;
}

/* Starts the chain of a file just opened: continue it, or begin with an anchor. */
static void
sink_file_start_chain(struct sink_file *f, const struct stat *sb)
{
	char msg[AUDIT_SINK_PATH_MAX + 160];
	int rc = sink_file_read_tail(f->path, sb->st_size, f->last_hash, &f->next_seq);

	if (rc == 1)
		return;
	if (rc == -1) {
		log_warnx("audit log %s: its last record is damaged or carries no hash chain; "
			  "a new chain starts here (saw-audit-verify reports the break)",
			  f->path);
		snprintf(msg, sizeof(msg),
			 "audit log %s: new hash chain after a damaged or unchained record",
			 f->path);
	} else {
		snprintf(msg, sizeof(msg), "audit log %s started: new hash chain", f->path);
	}
	/* A damaged tail without a line end would swallow the anchor's first bytes. */
	if (rc == -1 && sb->st_size > 0) {
		char c = 0;
		int rfd = open(f->path, O_RDONLY | O_CLOEXEC);

		if (rfd != -1) {
			if (pread(rfd, &c, 1, sb->st_size - 1) == 1 && c != '\n' &&
			    write(f->fd, "\n", 1) == 1)
				f->size++;
			close(rfd);
		}
	}
	sink_file_anchor(f, OCSF_EVENT_LOG_START, msg);
}

void *
sink_file_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
	       size_t errlen)
{
	struct sink_file *f = NULL;
	struct stat sb;
	int fd;

	if (cfg->path[0] == '\0') {
		snprintf(err, errlen, "no audit log path configured");
		return NULL;
	}
	if ((fd = sink_file_open_fd(cfg->path, &sb, err, errlen)) == -1)
		return NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "cannot open audit log %s: out of memory", cfg->path);
		close(fd);
		return NULL;
	}
	snprintf(f->path, sizeof(f->path), "%s", cfg->path);
	f->rotate_size = cfg->rotate_size;
	f->rotate_secs = cfg->rotate_secs;
	f->keep = cfg->keep > 0 ? cfg->keep : 1;
	f->app = audit_app_name(env);
	f->base = env->base;
	f->fd = fd;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->size = sb.st_size;
	f->opened_at = time(NULL);
	if (f->base != NULL &&
	    ((f->timer = evtimer_new(f->base, sink_file_timer_cb, f)) == NULL ||
	     (f->syncer = syncer_new(f->base, sink_file_sync_done, f)) == NULL)) {
		snprintf(err, errlen, "cannot open audit log %s: cannot create timer or thread",
			 cfg->path);
		if (f->timer != NULL)
			event_free(f->timer);
		close(fd);
		free(f);
		return NULL;
	}
	if (sb.st_size == 0)
		sink_file_sync_dir(f->path);
	sink_file_start_chain(f, &sb);
	if (sink_file_drain(f) == 0 && f->base == NULL)
		sink_file_sync(f);
	else
		sink_file_arm(f, AUDIT_SYNC_MS);
	return f;
}

/*
 * Size or age rotation. Only with an empty FIFO (the old file must be complete). On failure
 * the sink keeps appending to the current file and tries again later.
 */
static void
sink_file_rotate(struct sink_file *f)
{
	char from[AUDIT_SINK_PATH_MAX + 16], to[AUDIT_SINK_PATH_MAX + 16];
	char msg[2 * AUDIT_SINK_PATH_MAX + 160], err[AUDIT_SINK_PATH_MAX + 128];
	struct stat sb;
	time_t now = time(NULL);
	int k, fd;

	if (f->qcount > 0 || now < f->rotate_retry_at)
		return;
	sink_file_sync(f);
	for (k = f->keep; k >= 2; k--) {
		snprintf(from, sizeof(from), "%s.%d", f->path, k - 1);
		snprintf(to, sizeof(to), "%s.%d", f->path, k);
		if (rename(from, to) == -1 && errno != ENOENT)
			goto fail;
	}
	snprintf(to, sizeof(to), "%s.1", f->path);
	if (rename(f->path, to) == -1)
		goto fail;
	if ((fd = sink_file_open_fd(f->path, &sb, err, sizeof(err))) == -1) {
		/* The old file is PATH.1 now: keep writing to it rather than losing events. */
		log_warnx("cannot rotate audit log: %s; still writing to %s", err, to);
		f->rotate_retry_at = now + FILE_ROTATE_RETRY_SECS;
		return;
	}
	close(f->fd);
	f->fd = fd;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->size = sb.st_size;
	f->opened_at = now;
	f->wgen++; /* the new file's metadata */
	sink_file_sync_dir(f->path);
	snprintf(msg, sizeof(msg), "audit log %s rotated: earlier records are in %s", f->path, to);
	sink_file_anchor(f, OCSF_EVENT_LOG_ROTATE, msg);
	log_info("audit log %s rotated to %s", f->path, to);
	return;
fail:
	log_warn("cannot rotate audit log %s (renaming %s)", f->path, from);
	f->rotate_retry_at = now + FILE_ROTATE_RETRY_SECS;
}

static bool
sink_file_rotation_due(const struct sink_file *f, size_t len)
{
	if (f->rotate_size > 0 && f->size > 0 && f->size + (off_t)len > f->rotate_size)
		return true;
	return f->rotate_secs > 0 && time(NULL) >= f->opened_at + f->rotate_secs;
}

static void
sink_file_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink_file *f = arg;

	f->timer_armed = false;
	if (sink_file_drain(f) == 0) {
		if (f->sync_failing || f->syncer == NULL)
			sink_file_sync(f); /* retrying a failed sync: here, to see the result */
		else
			sink_file_sync_async(f);
	}
}

/*
 * An event with unmapped data of its own: serialize it without that member and hand the
 * member's content to chain_splice(), which merges it with prev and seq (reserved names).
 * Neither the event nor the member is copied: the serializer leaves those members out.
 */
static int
sink_file_enqueue_unmapped(struct sink_file *f, const struct audit_record *r, json_t *um)
{
	static const char *const no_unmapped[] = { "unmapped", NULL };
	static const char *const no_chain[] = { "prev", "seq", NULL };
	json_t *wrap = NULL;
	char *s = NULL, *x = NULL;
	size_t slen = 0, xlen = 0;
	int rc = -1;

	/* a member that is not an object is kept as {"value": ...} */
	if (!json_is_object(um) && (wrap = um = json_pack("{sO}", "value", um)) == NULL)
		goto out;
	if ((s = audit_json_compact(r->ev, no_unmapped, &slen)) == NULL ||
	    (x = audit_json_compact(um, no_chain, &xlen)) == NULL)
		goto out;
	rc = sink_file_enqueue(f, s, slen, x, xlen);
out:
	if (rc == -1 && (s == NULL || x == NULL))
		sink_file_count_lost(f, "out of memory, or nested too deep");
	free(s);
	free(x);
	json_decref(wrap);
	return rc;
}

static int
sink_file_emit(void *impl, const struct audit_record *r)
{
	struct sink_file *f = impl;
	json_t *um = json_object_get(r->ev, "unmapped");
	bool blocked;
	int rc;

	if (f->qcount == 0 && sink_file_rotation_due(f, r->len + CHAIN_HEX_LEN + 40))
		sink_file_rotate(f);
	/* Older lines must reach the file before this one. */
	blocked = f->qcount > 0 && sink_file_drain(f) == -1;
	if (um != NULL)
		rc = sink_file_enqueue_unmapped(f, r, um);
	else
		rc = sink_file_enqueue(f, r->json, r->len, NULL, 0);
	if (rc == -1)
		return -1;
	if (blocked || sink_file_drain(f) == -1)
		return -1;
	if (f->base == NULL)
		return sink_file_sync(f);
	sink_file_arm(f, AUDIT_SYNC_MS);
	return 0;
}

static int
sink_file_flush(void *impl)
{
	struct sink_file *f = impl;
	int rc = 0;

	if (sink_file_drain(f) == -1)
		rc = -1;
	if (sink_file_sync(f) == -1)
		rc = -1;
	return rc;
}

/*
 * After an external rotation (logrotate "create" + SIGHUP): the path names a new file, which
 * starts with an anchor chaining to the last line we wrote. The same file reopened (or one
 * truncated in place, "copytruncate") continues or restarts accordingly.
 */
static int
sink_file_reopen(void *impl)
{
	struct sink_file *f = impl;
	char err[AUDIT_SINK_PATH_MAX + 128], msg[AUDIT_SINK_PATH_MAX + 160];
	struct stat sb;
	bool same;
	int fd;

	sink_file_drain(f);
	sink_file_sync(f);
	if ((fd = sink_file_open_fd(f->path, &sb, err, sizeof(err))) == -1) {
		log_warnx("cannot reopen audit log: %s; still writing to the old file", err);
		return -1;
	}
	same = sb.st_dev == f->dev && sb.st_ino == f->ino && sb.st_size >= f->size;
	if (f->fd != -1)
		close(f->fd);
	f->fd = fd;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->size = sb.st_size;
	if (same)
		return sink_file_drain(f);
	f->opened_at = time(NULL);
	f->wgen++;
	if (sb.st_size == 0)
		sink_file_sync_dir(f->path);
	/* Lines still queued belong to the new file; the anchor must precede them, but they
	 * are already chained: only an empty queue can take an anchor in front. */
	if (f->qcount == 0) {
		snprintf(msg, sizeof(msg),
			 "audit log %s reopened: earlier records are in the file "
			 "it was rotated to",
			 f->path);
		sink_file_anchor(f, OCSF_EVENT_LOG_ROTATE, msg);
	}
	log_info("audit log %s reopened", f->path);
	return sink_file_drain(f);
}

static bool
sink_file_healthy(const void *impl)
{
	const struct sink_file *f = impl;

	return !f->failing && !f->sync_failing && f->qcount == 0;
}

static unsigned long long
sink_file_lost(const void *impl)
{
	return ((const struct sink_file *)impl)->lost;
}

static void
sink_file_close(void *impl)
{
	struct sink_file *f = impl;
	size_t i;

	sink_file_flush(f);
	if (f->qcount > 0) {
		log_warnx("AUDIT EVENTS LOST: %zu event(s) could not be written to %s", f->qcount,
			  f->path);
		for (i = 0; i < f->qcount; i++)
			free(f->q[(f->qhead + i) % AUDIT_QUEUE_MAX].buf);
	}
	syncer_free(f->syncer);
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->fd != -1)
		close(f->fd);
	free(f);
}

const struct sink_ops sink_file_ops = {
	.kind = "file",
	.emit = sink_file_emit,
	.flush = sink_file_flush,
	.reopen = sink_file_reopen,
	.healthy = sink_file_healthy,
	.lost = sink_file_lost,
	.close = sink_file_close,
};
