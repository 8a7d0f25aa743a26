/*
 * Byte pump between SSH channels and sockets, with back-pressure (see pump.h).
 *
 * Channel → X: we read from the channel only as much as X can take right now. libssh keeps
 * unread data in the channel's buffer and only re-opens the sender's window as we read, so
 * a slow X stops the sender. X → channel: we read from X only as much as the channel's
 * remote window allows, so a slow SSH peer stops the socket reader (TCP does the rest).
 *
 * While a session re-keys (every GiB or hour), libssh 0.10's non-blocking ssh_channel_write()
 * accepts nothing and returns 0. Bytes already taken from the other end then wait in a small
 * per-direction holding buffer (at most one chunk) and nothing more is read until it drained.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tunnel/pump.h"

struct pump_hold {
	char *buf; /* PUMP_CHUNK bytes, allocated on first use */
	size_t off, len;
};

struct pump {
	ssh_channel a;
	ssh_channel b; /* NULL for a socket pump */
	int fd;	       /* -1 for a channel pump */
	struct event *ev_read;
	struct event *ev_write;
	struct evbuffer *to_sock; /* channel → socket, at most PUMP_SOCKET_HIGH */
	bool connecting;
	bool sock_eof;	  /* read EOF from the socket (EOF sent to the channel) */
	bool sock_shut;	  /* shutdown(SHUT_WR) done after the channel's EOF */
	bool eof_sent[2]; /* [0]: a→b (or channel→socket), [1]: b→a (socket→channel) */
	uint64_t bytes[2];
	struct pump_hold hold[2]; /* [0]: into b (channel pump only), [1]: into a */
	bool done;
	bool in_run; /* guards re-entrancy from done_cb */
	pump_done_cb cb;
	void *arg;
	void (*kick)(void *);
	void *kick_arg;
};

static void
pump_finish(struct pump *p)
{
	if (p->done)
		return;
	p->done = true;
	if (p->ev_read)
		event_del(p->ev_read);
	if (p->ev_write)
		event_del(p->ev_write);
	if (p->cb)
		p->cb(p, p->arg); /* may free p */
}

/* Writes into a channel; what it does not take now is held. Returns -1 on a broken channel. */
static int
pump_write(struct pump *p, ssh_channel dst, int dir, const char *data, size_t len)
{
	struct pump_hold *h = &p->hold[dir];
	int w = ssh_channel_write(dst, data, (uint32_t)len);

	if (w < 0)
		return -1;
	p->bytes[dir] += (uint64_t)w;
	if ((size_t)w == len)
		return 0;
	if (h->buf == NULL && (h->buf = malloc(PUMP_CHUNK)) == NULL)
		return -1;
	memcpy(h->buf, data + w, len - (size_t)w);
	h->off = 0;
	h->len = len - (size_t)w;
	return 0;
}

/* Returns 1 while bytes are still held, 0 when the holding buffer is empty, -1 on error. */
static int
pump_drain_hold(struct pump *p, ssh_channel dst, int dir)
{
	struct pump_hold *h = &p->hold[dir];
	int w;

	if (h->len == h->off)
		return 0;
	if ((w = ssh_channel_write(dst, h->buf + h->off, (uint32_t)(h->len - h->off))) < 0)
		return -1;
	p->bytes[dir] += (uint64_t)w;
	h->off += (size_t)w;
	if (h->off < h->len)
		return 1;
	h->off = h->len = 0;
	return 0;
}

static bool
chan_gone(ssh_channel c)
{
	return c == NULL || ssh_channel_is_closed(c) || !ssh_channel_is_open(c);
}

/*
 * Whether a read's end-of-file is the peer's EOF on a live connection (the data is complete)
 * and not the connection itself going away: libssh can report SSH_EOF for the channels of a
 * session that just received a DISCONNECT (a revocation), and passing that on as a clean
 * end would let buffered bytes reach the client after the session is gone.
 */
static bool
chan_clean_eof(ssh_channel c)
{
	ssh_session s = ssh_channel_get_session(c);

	return s != NULL && ssh_is_connected(s);
}

/* Moves src → dst as far as dst's window allows. Returns -1 on error. */
static int
pump_chan_to_chan(struct pump *p, ssh_channel src, ssh_channel dst, int dir)
{
	char buf[PUMP_CHUNK];

	while (!p->eof_sent[dir]) {
		uint32_t win;
		int r, held;

		if (chan_gone(dst))
			return -1;
		if ((held = pump_drain_hold(p, dst, dir)) != 0)
			return held < 0 ? -1 : 0;
		if ((win = ssh_channel_window_size(dst)) == 0)
			return 0;
		r = ssh_channel_read_nonblocking(src, buf, win < sizeof(buf) ? win : sizeof(buf),
						 0);
		if (r == SSH_EOF || (r == 0 && ssh_channel_is_eof(src))) {
			if (!chan_clean_eof(src))
				return -1;
			ssh_channel_send_eof(dst);
			p->eof_sent[dir] = true;
			return 0;
		}
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (pump_write(p, dst, dir, buf, (size_t)r) < 0)
			return -1;
	}
	return 0;
}

/* Channel → socket buffer → socket. */
static int
pump_chan_to_sock(struct pump *p)
{
	char buf[PUMP_CHUNK];
	size_t queued;

	while (!p->eof_sent[0]) {
		size_t room;
		int r;

		queued = evbuffer_get_length(p->to_sock);
		if (queued >= PUMP_SOCKET_HIGH)
			break;
		room = PUMP_SOCKET_HIGH - queued;
		r = ssh_channel_read_nonblocking(p->a, buf, room < sizeof(buf) ? room : sizeof(buf),
						 0);
		if (r == SSH_EOF || (r == 0 && ssh_channel_is_eof(p->a))) {
			if (!chan_clean_eof(p->a))
				return -1;     /* the connection went: reset, do not finish */
			p->eof_sent[0] = true; /* shutdown once the buffer drained */
			break;
		}
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		evbuffer_add(p->to_sock, buf, (size_t)r);
		p->bytes[0] += (uint64_t)r;
	}
	if (p->connecting)
		return 0;
	while (evbuffer_get_length(p->to_sock) > 0) {
		int w = evbuffer_write(p->to_sock, p->fd);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -1;
		}
		if (w == 0)
			break;
	}
	if (evbuffer_get_length(p->to_sock) > 0) {
		event_add(p->ev_write, NULL);
	} else if (p->eof_sent[0] && !p->sock_shut) {
		shutdown(p->fd, SHUT_WR);
		p->sock_shut = true;
	}
	return 0;
}

/* Socket → channel, within the channel's window. The socket callback kicks the owner
 * afterwards so that the output is flushed. */
static int
pump_sock_to_chan(struct pump *p)
{
	char buf[PUMP_CHUNK];

	while (!p->sock_eof && !p->connecting) {
		uint32_t win;
		ssize_t r;
		int held;

		if (chan_gone(p->a))
			return -1;
		if ((held = pump_drain_hold(p, p->a, 1)) != 0) {
			if (held < 0)
				return -1;
			event_del(p->ev_read); /* re-armed by pump_run once drained */
			break;
		}
		if ((win = ssh_channel_window_size(p->a)) == 0) {
			event_del(p->ev_read); /* pump_run re-arms it when the window opens */
			break;
		}
		r = read(p->fd, buf, win < sizeof(buf) ? win : sizeof(buf));
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				event_add(p->ev_read, NULL);
				break;
			}
			return -1;
		}
		if (r == 0) {
			p->sock_eof = true;
			p->eof_sent[1] = true;
			ssh_channel_send_eof(p->a);
			break;
		}
		if (pump_write(p, p->a, 1, buf, (size_t)r) < 0)
			return -1;
		if ((size_t)r < sizeof(buf) && (uint32_t)r < win) {
			event_add(p->ev_read, NULL);
			break; /* drained for now */
		}
	}
	return 0;
}

static void
pump_check_done(struct pump *p)
{
	if (p->b != NULL) {
		if ((p->eof_sent[0] && p->eof_sent[1]) || chan_gone(p->a) || chan_gone(p->b))
			pump_finish(p);
		return;
	}
	if (chan_gone(p->a) && evbuffer_get_length(p->to_sock) == 0)
		pump_finish(p);
	else if (p->sock_eof && p->sock_shut)
		pump_finish(p);
}

void
pump_run(struct pump *p)
{
	if (p->done || p->in_run)
		return;
	p->in_run = true;
	if (p->b != NULL) {
		if (pump_chan_to_chan(p, p->a, p->b, 0) < 0 ||
		    pump_chan_to_chan(p, p->b, p->a, 1) < 0) {
			p->in_run = false;
			pump_finish(p);
			return;
		}
	} else {
		if (pump_chan_to_sock(p) < 0 || pump_sock_to_chan(p) < 0) {
			p->in_run = false;
			pump_finish(p);
			return;
		}
	}
	p->in_run = false;
	pump_check_done(p);
}

static void
pump_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;
	void (*kick)(void *) = p->kick;
	void *kick_arg = p->kick_arg;

	if (p->connecting && (what & EV_WRITE)) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			pump_finish(p);
			return;
		}
		p->connecting = false;
		event_add(p->ev_read, NULL);
	}
	pump_run(p); /* may free p */
	/* Reading the channel may have made libssh read its session's socket: the owner takes a
	 * turn so that input for other channels is not left waiting for a new event. */
	if (kick != NULL)
		kick(kick_arg);
}

struct pump *
pump_new_channels(ssh_channel a, ssh_channel b, pump_done_cb cb, void *arg)
{
	struct pump *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->a = a;
	p->b = b;
	p->fd = -1;
	p->cb = cb;
	p->arg = arg;
	return p;
}

struct pump *
pump_new_socket(struct event_base *base, ssh_channel ch, int fd, pump_done_cb cb, void *arg)
{
	struct pump *p = calloc(1, sizeof(*p));
	int err = 0;
	socklen_t len = sizeof(err);

	if (p == NULL)
		return NULL;
	p->a = ch;
	p->fd = fd;
	p->cb = cb;
	p->arg = arg;
	p->to_sock = evbuffer_new();
	p->ev_read = event_new(base, fd, EV_READ, pump_sock_cb, p);
	p->ev_write = event_new(base, fd, EV_WRITE, pump_sock_cb, p);
	if (p->to_sock == NULL || p->ev_read == NULL || p->ev_write == NULL) {
		if (p->to_sock)
			evbuffer_free(p->to_sock);
		if (p->ev_read)
			event_free(p->ev_read);
		if (p->ev_write)
			event_free(p->ev_write);
		free(p);
		return NULL;
	}
	/* A socket whose non-blocking connect is still in progress reports ENOTCONN for
	 * getpeername; wait for writability before using it. */
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 && errno == ENOTCONN &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			p->connecting = true;
	}
	if (p->connecting)
		event_add(p->ev_write, NULL);
	else
		event_add(p->ev_read, NULL);
	return p;
}

void
pump_set_kick(struct pump *p, void (*kick)(void *), void *arg)
{
	p->kick = kick;
	p->kick_arg = arg;
}

void
pump_free(struct pump *p)
{
	if (p == NULL)
		return;
	if (p->ev_read)
		event_free(p->ev_read);
	if (p->ev_write)
		event_free(p->ev_write);
	if (p->to_sock)
		evbuffer_free(p->to_sock);
	free(p->hold[0].buf);
	free(p->hold[1].buf);
	if (p->fd >= 0) {
		/* The channel ended without an EOF (revoked, killed, broken): reset the
		 * connection so that nothing already queued in the kernel keeps flowing to the
		 * client after the session is gone. After an EOF the data is complete: a plain
		 * close lets the client read all of it. */
		if (!p->sock_shut) {
			struct linger lg = { 1, 0 };

			setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(p->fd);
	}
	/* ssh_channel_free sends CLOSE if needed; libssh frees the channel once the peer's
	 * CLOSE arrives. */
	if (p->a)
		ssh_channel_free(p->a);
	if (p->b)
		ssh_channel_free(p->b);
	free(p);
}

void
pump_forget_session(struct pump *p, ssh_session s)
{
	if (p->a != NULL && ssh_channel_get_session(p->a) == s)
		p->a = NULL;
	if (p->b != NULL && ssh_channel_get_session(p->b) == s)
		p->b = NULL;
}

uint64_t
pump_bytes(const struct pump *p, int dir)
{
	return p->bytes[dir ? 1 : 0];
}

int
pump_is_done(const struct pump *p)
{
	return p->done;
}
