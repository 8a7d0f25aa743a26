/*
 * saw-floorproxy: the least a CONNECT proxy can cost on this machine, as a yardstick for
 * tests/bench/bench-egress.sh. Not a product: no policy beyond one allowed port, no names, no
 * audit, no timeouts, no limits. What it keeps is what any CONNECT proxy has to do per
 * connection: accept, read the request head, dial the destination, answer 200, relay both
 * ways with half-closes, close both sockets; bulk bytes go through a pipe with splice(2), as
 * in saw-guestd.
 *
 *   saw-floorproxy PORT TARGET_PORT THREADS
 *       listens on 127.0.0.1:PORT with THREADS threads, each its own epoll loop and its own
 *       SO_REUSEPORT listener (the kernel spreads connections over them: every CPU works);
 *       "CONNECT 127.0.0.1:TARGET_PORT" is answered 200 and relayed, anything else 403.
 *
 * Edge-triggered epoll: both sockets of a connection are registered once for reading and
 * writing, and every event runs relay() on the connection, which moves each direction until
 * the kernel says EAGAIN; so no interest is ever changed. Loopback only; runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 1024
#define SMALL 16384	/* per direction; a read that fills it switches to splice */
#define PIPE_SZ 1048576 /* as saw-guestd's bulk pipes */

struct dir {
	char buf[SMALL];
	size_t off, len;
	int pipe[2]; /* -1 until the direction is bulk */
	size_t inpipe;
	bool eof, shut;
};

struct conn {
	int fd[2];	   /* client, target */
	int tag[2];	   /* epoll data: which socket */
	bool relaying;	   /* the 200 is sent */
	bool dead;	   /* closed; freed after this batch of events (another may name it) */
	struct conn *next; /* the loop's list of dead connections */
	char head[HEAD_MAX];
	size_t hlen;
	struct dir d[2]; /* 0: client → target, 1: target → client */
};

/* epoll data: the connection's address with the socket's index in the low bit */
#define TAG(c, i) ((uint64_t)(uintptr_t)(c) | (uint64_t)(i))

static int listen_port, target_port;

static void
conn_close(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		if (c->d[i].pipe[0] >= 0) {
			close(c->d[i].pipe[0]);
			close(c->d[i].pipe[1]);
		}
	}
}

/* Moves direction i (from fd[i] to fd[1-i]) until EAGAIN. Returns -1 on an error. */
static int
move(struct conn *c, int i)
{
	struct dir *d = &c->d[i];
	int from = c->fd[i], to = c->fd[1 - i];
	ssize_t n;

	for (;;) {
		while (d->len > d->off) {
			n = send(to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			d->off += (size_t)n;
		}
		while (d->inpipe > 0) {
			n = splice(d->pipe[0], NULL, to, NULL, d->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n <= 0)
				return n < 0 && errno == EAGAIN ? 0 : -1;
			d->inpipe -= (size_t)n;
		}
		if (d->eof) {
			if (!d->shut)
				shutdown(to, SHUT_WR);
			d->shut = true;
			return 0;
		}
		if (d->pipe[0] >= 0) {
			n = splice(from, NULL, d->pipe[1], NULL, PIPE_SZ,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno == EAGAIN)
				return 0;
			if (n < 0)
				return -1;
			if (n == 0)
				d->eof = true;
			d->inpipe = (size_t)n;
			continue;
		}
		n = recv(from, d->buf, SMALL, 0);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			d->eof = true;
		d->off = 0;
		d->len = (size_t)n;
		if (n == SMALL && pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == 0)
			(void)fcntl(d->pipe[0], F_SETPIPE_SZ, PIPE_SZ);
	}
}

static int
reply(int fd, const char *text)
{
	size_t n = strlen(text);

	return send(fd, text, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* The head is complete: dial. Returns -1 when the connection is done with. */
static int
dial(int ep, struct conn *c, char *end)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	char want[64];
	int one = 1, n;

	n = snprintf(want, sizeof(want), "CONNECT 127.0.0.1:%d ", target_port);
	if (strncmp(c->head, want, (size_t)n) != 0) {
		(void)reply(c->fd[0], "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
		return -1;
	}
	/* bytes after the head are early data for the target */
	c->d[0].len = c->hlen - (size_t)(end + 4 - c->head);
	memcpy(c->d[0].buf, end + 4, c->d[0].len);
	sin.sin_port = htons((uint16_t)target_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd[1] < 0)
		return -1;
	setsockopt(c->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd[1], (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
		(void)reply(c->fd[0], "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
		return -1;
	}
	ev.data.u64 = TAG(c, 1);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[1], &ev) != 0)
		return -1;
	/* a loopback connect completes at once; otherwise the first write waits for it */
	if (reply(c->fd[0], ok) != 0)
		return -1;
	c->relaying = true;
	return 0;
}

static void
event(int ep, struct conn *c, struct conn **dead)
{
	char *end;
	ssize_t n;

	if (c->dead)
		return;
	if (!c->relaying) {
		n = recv(c->fd[0], c->head + c->hlen, sizeof(c->head) - 1 - c->hlen, 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			goto done;
		c->hlen += (size_t)n;
		c->head[c->hlen] = '\0';
		if ((end = strstr(c->head, "\r\n\r\n")) == NULL) {
			if (c->hlen == sizeof(c->head) - 1)
				goto done;
			return;
		}
		if (dial(ep, c, end) != 0)
			goto done;
	}
	if (move(c, 0) != 0 || move(c, 1) != 0)
		goto done;
	if (c->d[0].shut && c->d[1].shut)
		goto done;
	return;
done:
	conn_close(c); /* closing removes both sockets from the epoll set */
	c->dead = true;
	c->next = *dead;
	*dead = c;
}

static void *
loop(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct epoll_event evs[64], ev = { .events = EPOLLIN };
	int lfd, ep, one = 1;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sin.sin_port = htons((uint16_t)listen_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 4096) != 0 ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("saw-floorproxy: listen");
		exit(1);
	}
	ev.data.u64 = 0;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		struct conn *dead = NULL;

		for (int i = 0; i < n; i++) {
			struct conn *c;
			int fd;

			if (evs[i].data.u64 != 0) {
				event(ep, (struct conn *)(uintptr_t)(evs[i].data.u64 & ~1ULL),
				      &dead);
				continue;
			}
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				struct epoll_event cev = { .events = EPOLLIN | EPOLLOUT |
								     EPOLLRDHUP | EPOLLET };

				if ((c = calloc(1, sizeof(*c))) == NULL) {
					close(fd);
					continue;
				}
				c->fd[0] = fd;
				c->fd[1] = -1;
				c->d[0].pipe[0] = c->d[1].pipe[0] = -1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				cev.data.u64 = TAG(c, 0);
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0) {
					conn_close(c);
					free(c);
				}
			}
		}
		while (dead != NULL) {
			struct conn *c = dead;

			dead = c->next;
			free(c);
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads;

	if (argc != 4 || (listen_port = atoi(argv[1])) <= 0 || (target_port = atoi(argv[2])) <= 0 ||
	    (threads = atoi(argv[3])) <= 0 || threads > 64) {
		fprintf(stderr, "usage: saw-floorproxy PORT TARGET_PORT THREADS\n");
		return 2;
	}
	for (int i = 1; i < threads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, loop, NULL) != 0)
			return 1;
	}
	loop(NULL);
	return 0;
}
