/*
 * Bounded socket ↔ socket relay (guestd-relay.h).
 *
 * Each direction d moves bytes from fd[d] to fd[1 - d] through buf[d] (GRELAY_SMALL bytes,
 * allocated on first use, so that idle connections cost no buffer). A direction that fills
 * its buffer in one read is a bulk transfer: once the buffer is drained it switches to a pipe
 * of GRELAY_BUF bytes and splice(2), so the kernel moves the bytes without copying them
 * through guestd (what makes the relay cost little next to a direct connection). Read
 * interest on the source is held only while the buffer (or pipe) has room; write interest on
 * the destination only while bytes wait.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/event.h>

#include "guestd/guestd-relay.h"

struct grelay_dir {
	char *buf;
	size_t off, len; /* bytes buf[off..len) wait to be written */
	int pipe[2];	 /* bulk mode: splice through this pipe; -1 before */
	size_t inpipe;	 /* bytes in the pipe */
	size_t pipecap;	 /* its capacity */
	bool bulk;	 /* a read filled the buffer: switch to the pipe once it is drained */
	bool bigpipe;	 /* the pipe counts in grelay_big_pipes */
	bool eof;	 /* the source said EOF */
	bool shut;	 /* EOF passed on (shutdown of the destination's write side) */
	uint64_t bytes;
};

struct grelay {
	struct event_base *base;
	int fd[2];
	struct event *ev_read[2], *ev_write[2], *ev_idle;
	struct grelay_dir dir[2];
	int idle_s;
	time_t last;
	grelay_done_cb cb;
	void *arg;
	bool done;
};

static void
grelay_finish(struct grelay *r, const char *why)
{
	int i;

	if (r->done)
		return;
	r->done = true;
	for (i = 0; i < 2; i++) {
		event_del(r->ev_read[i]);
		event_del(r->ev_write[i]);
	}
	event_del(r->ev_idle);
	r->cb(r, why, r->arg); /* may free r */
}

static void
grelay_touch(struct grelay *r)
{
	struct timeval tv;

	event_base_gettimeofday_cached(r->base, &tv);
	r->last = tv.tv_sec;
}

/* Writes what direction d has; arms or disarms the events. Returns -1 if finished. */
static int
grelay_flush(struct grelay *r, int d)
{
	struct grelay_dir *x = &r->dir[d];
	int to = r->fd[1 - d];
	bool moved = false;
	ssize_t n;

	while (x->len > x->off) {
		n = send(to, x->buf + x->off, x->len - x->off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			grelay_finish(r, "write failed");
			return -1;
		}
		x->off += (size_t)n;
		x->bytes += (uint64_t)n;
		grelay_touch(r);
	}
	while (x->len == x->off && x->inpipe > 0) {
		n = splice(x->pipe[0], NULL, to, NULL, x->inpipe,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			grelay_finish(r, "write failed");
			return -1;
		}
		x->inpipe -= (size_t)n;
		x->bytes += (uint64_t)n;
		moved = true;
		grelay_touch(r);
	}
	if (x->len > x->off || x->inpipe > 0) {
		event_add(r->ev_write[1 - d], NULL);
		/* buffer: read again once it is drained; pipe: while it has room, but only after
		 * progress (a pipe can be full in pages before it is full in bytes) */
		if (x->pipe[0] < 0 || x->inpipe >= x->pipecap)
			event_del(r->ev_read[d]);
		else if (moved && !x->eof)
			event_add(r->ev_read[d], NULL);
		return 0;
	}
	x->off = x->len = 0;
	event_del(r->ev_write[1 - d]);
	if (x->eof) {
		if (!x->shut) {
			x->shut = true;
			shutdown(to, SHUT_WR);
		}
		if (r->dir[1 - d].shut) {
			grelay_finish(r, NULL);
			return -1;
		}
	} else {
		event_add(r->ev_read[d], NULL);
	}
	return 0;
}

/* Pipes enlarged to GRELAY_BUF now open, by the relays of every event loop (atomic). */
static unsigned int grelay_big_pipes;

/* Bulk mode for direction d: a pipe as large as the kernel gives us up to GRELAY_BUF while
 * fewer than GRELAY_BIG_PIPES are, else the kernel's default size, so that many bulk
 * transfers at once cannot pin more than GRELAY_BIG_PIPES * GRELAY_BUF. */
static void
grelay_pipe(struct grelay_dir *x)
{
	if (pipe2(x->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		x->pipe[0] = x->pipe[1] = -1;
		return;
	}
	/* take a slot first, give it back if the kernel refuses the size */
	x->bigpipe = __atomic_add_fetch(&grelay_big_pipes, 1, __ATOMIC_RELAXED) <=
			     GRELAY_BIG_PIPES &&
		     fcntl(x->pipe[1], F_SETPIPE_SZ, GRELAY_BUF) > 0;
	if (!x->bigpipe)
		__atomic_sub_fetch(&grelay_big_pipes, 1, __ATOMIC_RELAXED);
	x->pipecap = (size_t)fcntl(x->pipe[1], F_GETPIPE_SZ);
	if ((ssize_t)x->pipecap <= 0 || x->pipecap > GRELAY_BUF)
		x->pipecap = 65536 < GRELAY_BUF ? 65536 : GRELAY_BUF;
}

static void
grelay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct grelay *r = arg;
	int d = fd == r->fd[0] ? 0 : 1;
	struct grelay_dir *x = &r->dir[d];
	ssize_t n;

	if (x->bulk && x->pipe[0] < 0 && x->len == x->off)
		grelay_pipe(x); /* on failure: the buffer goes on */
	if (x->pipe[0] >= 0 && x->len == x->off) {
		if (x->inpipe >= x->pipecap) {
			event_del(r->ev_read[d]);
			return;
		}
		do {
			n = splice(fd, NULL, x->pipe[1], NULL, x->pipecap - x->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (x->inpipe > 0) {
				/* maybe the pipe is full rather than the socket empty: read again
				 * once the writer made progress */
				event_del(r->ev_read[d]);
				grelay_flush(r, d);
			}
			return;
		}
		if (n < 0) {
			grelay_finish(r, "read failed");
			return;
		}
		if (n == 0) {
			x->eof = true;
			event_del(r->ev_read[d]);
		} else {
			x->inpipe += (size_t)n;
			grelay_touch(r);
		}
		grelay_flush(r, d);
		return;
	}
	if (x->buf == NULL && (x->buf = malloc(GRELAY_SMALL)) == NULL) {
		grelay_finish(r, "out of memory");
		return;
	}
	if (x->len >= GRELAY_SMALL) {
		event_del(r->ev_read[d]); /* full: wait for the writer */
		return;
	}
	do {
		n = read(fd, x->buf + x->len, GRELAY_SMALL - x->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		grelay_finish(r, "read failed");
		return;
	}
	if (n == 0) {
		x->eof = true;
		event_del(r->ev_read[d]);
	} else {
		x->len += (size_t)n;
		grelay_touch(r);
		if (x->len >= GRELAY_SMALL) {
			x->bulk = true;
			event_del(r->ev_read[d]);
		}
	}
	grelay_flush(r, d);
}

static void
grelay_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct grelay *r = arg;

	/* fd is the destination of the direction whose source is the other socket */
	grelay_flush(r, fd == r->fd[0] ? 1 : 0);
}

static void
grelay_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct grelay *r = arg;
	struct timeval tv;

	event_base_gettimeofday_cached(r->base, &tv);
	if (tv.tv_sec - r->last >= r->idle_s)
		grelay_finish(r, "idle timeout");
}

struct grelay *
grelay_new(struct event_base *base, int a, int b, int idle_s, grelay_done_cb cb, void *arg)
{
	struct grelay *r;
	struct timeval tv = { idle_s > 2 ? idle_s / 2 : 1, 0 };
	int i;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		close(a);
		close(b);
		return NULL;
	}
	r->base = base;
	r->fd[0] = a;
	r->fd[1] = b;
	r->idle_s = idle_s > 0 ? idle_s : 1;
	r->cb = cb;
	r->arg = arg;
	for (i = 0; i < 2; i++)
		r->dir[i].pipe[0] = r->dir[i].pipe[1] = -1;
	grelay_touch(r);
	for (i = 0; i < 2; i++) {
		r->ev_read[i] = event_new(base, r->fd[i], EV_READ | EV_PERSIST, grelay_read_cb, r);
		r->ev_write[i] =
			event_new(base, r->fd[i], EV_WRITE | EV_PERSIST, grelay_write_cb, r);
		if (r->ev_read[i] == NULL || r->ev_write[i] == NULL) {
			grelay_free(r);
			return NULL;
		}
	}
	if ((r->ev_idle = event_new(base, -1, EV_PERSIST, grelay_idle_cb, r)) == NULL ||
	    event_add(r->ev_idle, &tv) != 0) {
		grelay_free(r);
		return NULL;
	}
	return r;
}

int
grelay_queue(struct grelay *r, int dir, const void *data, size_t len)
{
	struct grelay_dir *x = &r->dir[dir ? 1 : 0];

	if (len == 0)
		return 0;
	if (len > GRELAY_SMALL - x->len)
		return -1;
	if (x->buf == NULL && (x->buf = malloc(GRELAY_SMALL)) == NULL)
		return -1;
	memcpy(x->buf + x->len, data, len);
	x->len += len;
	return 0;
}

void
grelay_start(struct grelay *r)
{
	struct grelay_dir *x;
	ssize_t n;
	int d;

	/*
	 * Both sockets were just connected: what is queued (the proxy's 200, a forwarded head)
	 * almost always fits in the send buffer, so it goes now rather than after a loop turn
	 * spent waiting for EPOLLOUT (two epoll_ctl and one epoll_wait per connection). A
	 * failure is left to the write event, so that done_cb still never runs from here.
	 */
	for (d = 0; d < 2; d++) {
		x = &r->dir[d];
		while (x->len > x->off) {
			n = send(r->fd[1 - d], x->buf + x->off, x->len - x->off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			x->off += (size_t)n;
			x->bytes += (uint64_t)n;
		}
		if (x->len > x->off) {
			event_add(r->ev_write[1 - d], NULL);
		} else {
			x->off = x->len = 0;
			event_add(r->ev_read[d], NULL);
		}
	}
}

void
grelay_abort_on_free(struct grelay *r)
{
	static const struct linger now = { .l_onoff = 1, .l_linger = 0 };
	int i;

	for (i = 0; r != NULL && i < 2; i++)
		if (r->fd[i] >= 0)
			(void)setsockopt(r->fd[i], SOL_SOCKET, SO_LINGER, &now, sizeof(now));
}

void
grelay_free(struct grelay *r)
{
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (r->ev_read[i] != NULL)
			event_free(r->ev_read[i]);
		if (r->ev_write[i] != NULL)
			event_free(r->ev_write[i]);
		if (r->fd[i] >= 0)
			close(r->fd[i]);
		if (r->dir[i].pipe[0] >= 0) {
			close(r->dir[i].pipe[0]);
			close(r->dir[i].pipe[1]);
			if (r->dir[i].bigpipe)
				__atomic_sub_fetch(&grelay_big_pipes, 1, __ATOMIC_RELAXED);
		}
		free(r->dir[i].buf);
	}
	if (r->ev_idle != NULL)
		event_free(r->ev_idle);
	free(r);
}

uint64_t
grelay_bytes(const struct grelay *r, int dir)
{
	return r->dir[dir ? 1 : 0].bytes;
}
