/*
 * The local one-request servers (contract in guestd-lineserv.h): accept, SO_PEERCRED, a
 * bounded line read with a timeout (recvmsg, for the descriptors a request may carry), the
 * request callback, one answer line, close.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "audit/log.h"
#include "guestd/guestd-lineserv.h"

struct glserv_conn {
	TAILQ_ENTRY(glserv_conn) entry;
	struct glserv *ls;
	struct glserv_peer peer;
	struct event *ev_read;
	struct event *ev_timeout;
	int fds[GLSERV_MAX_FDS];
	size_t len;
	char buf[]; /* max_line + 1 */
};
TAILQ_HEAD(glserv_conn_list, glserv_conn);

struct glserv {
	struct event_base *base;
	struct glserv_params p;
	struct evconnlistener *listener;
	struct glserv_conn_list conns;
	size_t nconns;
	bool peercred; /* AF_UNIX: SO_PEERCRED says who connected */
};

static void
glserv_conn_free(struct glserv_conn *c)
{
	TAILQ_REMOVE(&c->ls->conns, c, entry);
	c->ls->nconns--;
	event_free(c->ev_read);
	event_free(c->ev_timeout);
	close(c->peer.fd);
	while (c->peer.nfds > 0)
		close(c->fds[--c->peer.nfds]);
	explicit_bzero(c->buf, c->ls->p.max_line + 1);
	free(c);
}

/* Sends the answer (consumes it) and closes the connection. */
static void
glserv_answer(struct glserv_conn *c, json_t *resp)
{
	char *text = resp != NULL ? json_dumps(resp, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(resp);
	if (text != NULL) {
		n = strlen(text);
		text[n] = '\n'; /* replaces the NUL; we write n + 1 bytes and free */
		/* the answer is far below the socket buffer: one write, best effort */
		(void)!write(c->peer.fd, text, n + 1);
		free(text);
	}
	glserv_conn_free(c);
}

static json_t *
glserv_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static void
glserv_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct glserv_conn *c = arg;
	struct glserv *ls = c->ls;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * GLSERV_MAX_FDS)];
	} cm;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	char *nl;
	ssize_t n;
	size_t i, k;
	bool bad = false;

	/* recvmsg: saw-session sends its stdin/stdout/stderr with the request (SCM_RIGHTS).
	 * Without room for descriptors (max_fds 0) the kernel closes any sent, as for read(). */
	iov.iov_base = c->buf + c->len;
	iov.iov_len = ls->p.max_line + 1 - c->len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (ls->p.max_fds > 0) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * ls->p.max_fds);
	}
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg != NULL;
	     cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (c->peer.nfds < ls->p.max_fds)
				c->fds[c->peer.nfds++] = rfd;
			else {
				close(rfd);
				bad = true;
			}
		}
	}
	if (n >= 0 && ls->p.max_fds > 0 && (msg.msg_flags & MSG_CTRUNC))
		bad = true;
	if (n <= 0) {
		glserv_conn_free(c);
		return;
	}
	if (bad) {
		glserv_answer(c, glserv_error("too many file descriptors"));
		return;
	}
	c->len += (size_t)n;
	if ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		glserv_answer(c, ls->p.request(&c->peer, c->buf, (size_t)(nl - c->buf), ls->p.arg));
		return;
	}
	if (c->len > ls->p.max_line)
		glserv_answer(c, glserv_error("request line too long"));
}

static void
glserv_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	glserv_conn_free(arg);
}

static void
glserv_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		 void *arg)
{
	struct glserv *ls = arg;
	struct glserv_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { ls->p.timeout_ms / 1000, (ls->p.timeout_ms % 1000) * 1000 };

	memset(&cred, 0, sizeof(cred));
	cred.uid = (uid_t)-1;
	cred.gid = (gid_t)-1;
	if (ls->nconns >= ls->p.max_conns ||
	    (ls->peercred && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) ||
	    (c = calloc(1, sizeof(*c) + ls->p.max_line + 1)) == NULL) {
		close(fd); /* the clients fail closed */
		return;
	}
	evutil_make_socket_nonblocking(fd);
	c->ls = ls;
	c->peer.fd = fd;
	c->peer.uid = cred.uid;
	c->peer.pid = cred.pid;
	c->peer.fds = c->fds;
	c->ev_read = event_new(ls->base, fd, EV_READ | EV_PERSIST, glserv_read_cb, c);
	c->ev_timeout = evtimer_new(ls->base, glserv_timeout_cb, c);
	if (c->ev_read == NULL || c->ev_timeout == NULL) {
		if (c->ev_read != NULL)
			event_free(c->ev_read);
		if (c->ev_timeout != NULL)
			event_free(c->ev_timeout);
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&ls->conns, c, entry);
	ls->nconns++;
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timeout, &tv);
}

/* mkdir -p for the socket's directory, 0755 (the clients must reach the socket). */
static int
glserv_mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -1;
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

struct glserv *
glserv_open(struct event_base *base, const char *path, const struct glserv_params *p)
{
	struct sockaddr_un sun;
	struct glserv *ls = NULL;
	struct stat sb;
	char dir[PATH_MAX];
	int fd = -1;

	if (p->max_fds > GLSERV_MAX_FDS || p->max_line == 0 || p->request == NULL)
		fatalx("%s: bad server parameters", p->what);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path == NULL || strlen(path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, path, strlen(path));
	snprintf(dir, sizeof(dir), "%s", path);
	if (glserv_mkdirs(dirname(dir)) != 0) {
		log_warn("%s %s: cannot create its directory", p->what, path);
		goto fail;
	}
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("%s %s exists and is not a socket: refusing to replace it",
				  p->what, path);
			goto fail;
		}
		unlink(path); /* a stale socket of a previous run */
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_warn("%s %s: cannot bind", p->what, path);
		goto fail;
	}
	if (chmod(path, 0666) != 0 || listen(fd, 64) != 0) {
		log_warn("%s %s", p->what, path);
		goto fail;
	}
	return glserv_open_fd(base, fd, p);
fail:
	free(ls);
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct glserv *
glserv_open_fd(struct event_base *base, int fd, const struct glserv_params *p)
{
	struct glserv *ls = NULL;
	int domain = -1;
	socklen_t dlen = sizeof(domain);

	if (p->max_fds > GLSERV_MAX_FDS || p->max_line == 0 || p->request == NULL)
		fatalx("%s: bad server parameters", p->what);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 ||
	    (ls = calloc(1, sizeof(*ls))) == NULL) {
		log_warn("%s", p->what);
		goto fail;
	}
	ls->base = base;
	ls->p = *p;
	ls->peercred = domain == AF_UNIX;
	TAILQ_INIT(&ls->conns);
	ls->listener = evconnlistener_new(base, glserv_accept_cb, ls,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->listener == NULL) {
		log_warnx("%s: cannot listen", p->what);
		goto fail;
	}
	return ls;
fail:
	free(ls);
	close(fd);
	return NULL;
}

void
glserv_free(struct glserv *ls)
{
	struct glserv_conn *c;

	if (ls == NULL)
		return;
	while ((c = TAILQ_FIRST(&ls->conns)) != NULL)
		glserv_conn_free(c);
	evconnlistener_free(ls->listener);
	free(ls);
}
