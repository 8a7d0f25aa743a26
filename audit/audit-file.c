/*
 * JSON-lines audit sink (see audit.h for the contract).
 *
 * Every event becomes one line written with O_APPEND by as few write(2) calls as the kernel
 * allows (one, unless the disk fills up mid-line), so lines of several processes sharing the
 * file never interleave. Lines that could not be written stay in a bounded FIFO and are
 * retried, oldest first, before any newer line: the file keeps event order, and a line cut
 * short by ENOSPC is completed from where it stopped.
 */
#include "audit/audit.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/log.h"

#define AUDIT_SYNC_MS        100  /* fdatasync batching interval */
#define AUDIT_RETRY_MS       1000 /* retry interval while writes fail */
#define AUDIT_QUEUE_MAX      4096 /* lines kept while the file is not writable */
#define AUDIT_QUEUE_BYTES    (16u * 1024 * 1024)
#define AUDIT_LOST_LOG_EVERY 1000

struct audit_line {
	char *buf;
	size_t len;
	size_t off; /* bytes already in the file (partial write) */
};

struct audit {
	int fd;
	char *path;
	struct event_base *base; /* NULL: fdatasync on every emit */
	struct event *timer;
	bool timer_armed;
	bool dirty;   /* written since the last fdatasync */
	bool failing; /* last write failed; logged once per episode */

	struct audit_line q[AUDIT_QUEUE_MAX]; /* ring buffer */
	size_t qhead, qcount, qbytes;
	unsigned long long lost;
};

static void audit_timer_cb(evutil_socket_t fd, short what, void *arg);

struct audit *audit_open(const char *path, struct event_base *base, char *err, size_t errlen)
{
	struct audit *a = NULL;
	struct stat sb;
	int fd = -1, flags;

	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no audit log path configured");
		return NULL;
	}
	/* O_NONBLOCK so that a FIFO put at the path cannot hang start-up; cleared below. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "cannot open audit log %s: not a regular file", path);
		goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		snprintf(err, errlen, "cannot open audit log %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "cannot open audit log %s: out of memory", path);
		goto fail;
	}
	a->fd = fd;
	a->base = base;
	if (base != NULL && (a->timer = evtimer_new(base, audit_timer_cb, a)) == NULL) {
		snprintf(err, errlen, "cannot open audit log %s: cannot create timer", path);
		goto fail;
	}
	return a;
fail:
	if (a != NULL) {
		free(a->path);
		free(a);
	}
	close(fd);
	return NULL;
}

unsigned long long audit_lost(const struct audit *a)
{
	return a != NULL ? a->lost : 0;
}

static void audit_arm(struct audit *a, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (a->timer == NULL || a->timer_armed)
		return;
	if (evtimer_add(a->timer, &tv) == 0)
		a->timer_armed = true;
}

static void audit_count_lost(struct audit *a, const char *why)
{
	a->lost++;
	if (a->lost == 1 || a->lost % AUDIT_LOST_LOG_EVERY == 0)
		log_warnx("AUDIT EVENT LOST (%s): %llu event(s) lost so far for %s", why, a->lost,
		          a->path);
}

/* Writes what is left of one line. Returns 0, or -1 with errno set. */
static int audit_write_line(struct audit *a, struct audit_line *l)
{
	ssize_t n;

	while (l->off < l->len) {
		n = write(a->fd, l->buf + l->off, l->len - l->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		l->off += (size_t)n;
		a->dirty = true;
	}
	return 0;
}

/* Writes queued lines, oldest first. Returns 0 when the queue is empty. */
static int audit_drain(struct audit *a)
{
	struct audit_line *l;

	while (a->qcount > 0) {
		l = &a->q[a->qhead];
		if (audit_write_line(a, l) == -1) {
			if (!a->failing)
				log_warn("cannot write audit log %s (%zu event(s) kept in memory, "
				         "retrying; free disk space or fix the file)",
				         a->path, a->qcount);
			a->failing = true;
			audit_arm(a, AUDIT_RETRY_MS);
			return -1;
		}
		a->qbytes -= l->len;
		free(l->buf);
		l->buf = NULL;
		a->qhead = (a->qhead + 1) % AUDIT_QUEUE_MAX;
		a->qcount--;
	}
	if (a->failing) {
		log_warnx("audit log %s is writable again (%llu event(s) lost in total)", a->path,
		          a->lost);
		a->failing = false;
	}
	return 0;
}

static int audit_sync(struct audit *a)
{
	if (!a->dirty)
		return 0;
	if (fdatasync(a->fd) == -1) {
		log_warn("cannot sync audit log %s", a->path);
		return -1;
	}
	a->dirty = false;
	return 0;
}

static void audit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct audit *a = arg;

	a->timer_armed = false;
	audit_drain(a);
	audit_sync(a);
}

int audit_emit(struct audit *a, json_t *event)
{
	struct audit_line *l;
	char *s, *line;
	bool blocked;
	size_t len;

	if (a == NULL) {
		json_decref(event);
		return -1;
	}
	if (event == NULL) {
		audit_count_lost(a, "event could not be built, out of memory");
		return -1;
	}
	/* Compact output escapes control characters: the line holds no newline of its own. */
	s = json_dumps(event, JSON_COMPACT);
	json_decref(event);
	if (s == NULL) {
		audit_count_lost(a, "event could not be serialized");
		return -1;
	}
	len = strlen(s);
	if ((line = realloc(s, len + 2)) == NULL) {
		free(s);
		audit_count_lost(a, "out of memory");
		return -1;
	}
	line[len++] = '\n';
	line[len] = '\0';

	/* Make room by retrying older lines first; they must reach the file before this one. */
	blocked = a->qcount > 0 && audit_drain(a) == -1;
	if (a->qcount == AUDIT_QUEUE_MAX || a->qbytes + len > AUDIT_QUEUE_BYTES) {
		free(line);
		audit_count_lost(a, "audit log not writable and retry queue full");
		return -1;
	}
	l = &a->q[(a->qhead + a->qcount) % AUDIT_QUEUE_MAX];
	l->buf = line;
	l->len = len;
	l->off = 0;
	a->qcount++;
	a->qbytes += len;

	if (blocked || audit_drain(a) == -1)
		return -1;
	if (a->base == NULL)
		return audit_sync(a);
	audit_arm(a, AUDIT_SYNC_MS);
	return 0;
}

int audit_flush(struct audit *a)
{
	int rc = 0;

	if (a == NULL)
		return 0;
	if (audit_drain(a) == -1)
		rc = -1;
	if (audit_sync(a) == -1)
		rc = -1;
	return rc;
}

void audit_close(struct audit *a)
{
	size_t i;

	if (a == NULL)
		return;
	audit_flush(a);
	if (a->qcount > 0) {
		log_warnx("AUDIT EVENTS LOST: %zu event(s) could not be written to %s", a->qcount,
		          a->path);
		for (i = 0; i < a->qcount; i++)
			free(a->q[(a->qhead + i) % AUDIT_QUEUE_MAX].buf);
	}
	if (a->timer != NULL)
		event_free(a->timer);
	close(a->fd);
	free(a->path);
	free(a);
}
