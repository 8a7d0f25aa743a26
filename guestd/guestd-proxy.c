/*
 * The HTTP CONNECT proxy on ProxyListen (loopback only): processes in the workspace reach
 * corporate services through it, and only while a brokered session lives.
 *
 * A client has GPROXY_HEAD_TIMEOUT seconds to send its request head (at most
 * GPROXY_MAX_HEAD bytes, parsed by guestd-proxy-parse.c). The decision:
 *   - no live brokered session                 → 403 "no live brokered session: …"
 *   - host:port (or NAME:port) is a corporate
 *     service of a live session's ATTACH list  → that session's tunnel opens a channel to
 *                                                the service's exact host:port (200, then
 *                                                bytes both ways; 502 if the broker refuses)
 *   - anything else                            → 403 "destination not allowed: …"
 * Public egress and the credential proxy extend this in later issues.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "audit/log.h"
#include "guestd/guestd-proxy.h"
#include "guestd/guestd.h"

#define GPROXY_HEAD_TIMEOUT 10
#define GPROXY_MAX_CLIENTS 256 /* clients still sending their head */

struct gproxy_client {
	TAILQ_ENTRY(gproxy_client) entry;
	struct gproxy *px;
	int fd;
	struct event *ev_read;
	struct event *ev_timeout;
	size_t len;
	char buf[GPROXY_MAX_HEAD];
};
TAILQ_HEAD(gproxy_client_list, gproxy_client);

struct gproxy {
	struct guestd *g;
	struct evconnlistener *listener;
	struct gproxy_client_list clients;
	size_t nclients;
};

void
gproxy_reply_error(int fd, int status, const char *reason, const char *body)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
		     "%s\n",
		     status, reason, strlen(body) + 1, body);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!write(fd, buf, (size_t)n); /* best effort: the client may be gone */
}

static void
gproxy_client_free(struct gproxy_client *c, bool close_fd)
{
	TAILQ_REMOVE(&c->px->clients, c, entry);
	c->px->nclients--;
	event_free(c->ev_read);
	event_free(c->ev_timeout);
	if (close_fd)
		close(c->fd);
	free(c);
}

static void
gproxy_refuse(struct gproxy_client *c, int status, const char *reason, const char *body)
{
	gproxy_reply_error(c->fd, status, reason, body);
	gproxy_client_free(c, true);
}

static bool
gproxy_corp_match(const struct ctl_corp *c, const char *host, int port)
{
	return c->port == port &&
	       (strcasecmp(c->host, host) == 0 || strcasecmp(c->name, host) == 0);
}

static void
gproxy_decide(struct gproxy_client *c, const struct gproxy_request *r)
{
	struct guestd *g = c->px->g;
	struct gsession *s, *pick = NULL;
	const struct ctl_corp *corp = NULL;
	int64_t now = guestd_now();
	bool live = false;
	char body[600];
	size_t i;
	int fd;

	TAILQ_FOREACH(s, &g->sessions.list, entry) {
		if (s->expires <= now)
			continue;
		live = true;
		for (i = 0; i < s->ncorp; i++) {
			if (!gproxy_corp_match(&s->corp[i], r->host, r->port))
				continue;
			/* several sessions may allow it: prefer one whose tunnel is usable */
			if (pick == NULL || (!gtunnel_up(pick->tunnel) && gtunnel_up(s->tunnel))) {
				pick = s;
				corp = &s->corp[i];
			}
			break;
		}
	}
	if (!live) {
		log_info("proxy: CONNECT %s:%d refused: no live brokered session", r->host,
			 r->port);
		gproxy_refuse(c, 403, "Forbidden",
			      "no live brokered session: log in through the broker first");
		return;
	}
	if (pick == NULL) {
		snprintf(body, sizeof(body),
			 "destination not allowed: %s:%d is not a corporate service of this "
			 "workspace's profile",
			 r->host, r->port);
		log_info("proxy: CONNECT %s:%d refused: not a corporate service", r->host, r->port);
		gproxy_refuse(c, 403, "Forbidden", body);
		return;
	}
	if (pick->tunnel == NULL) {
		gproxy_refuse(c, 502, "Bad Gateway",
			      "this session has no tunnel to the broker (its profile has no "
			      "corporate access)");
		return;
	}
	/* The tunnel takes the socket, and any bytes sent after the head before our answer
	 * (e.g. an optimistic TLS ClientHello). Our events go first so that they never see
	 * the descriptor again. */
	event_del(c->ev_read);
	event_del(c->ev_timeout);
	fd = c->fd;
	gtunnel_connect(pick->tunnel, fd, corp->host, corp->port, c->buf + r->head_len,
			c->len - r->head_len);
	gproxy_client_free(c, false);
}

static void
gproxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;
	struct gproxy_request r;
	char err[200];
	ssize_t n;
	int rc;

	n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		gproxy_client_free(c, true);
		return;
	}
	c->len += (size_t)n;
	rc = gproxy_parse(c->buf, c->len, &r, err, sizeof(err));
	switch (rc) {
	case GPROXY_MORE:
		return;
	case GPROXY_NOT_CONNECT:
		gproxy_refuse(c, 405, "Method Not Allowed", err);
		return;
	case GPROXY_TOO_LARGE:
		gproxy_refuse(c, 431, "Request Header Fields Too Large", err);
		return;
	case GPROXY_BAD:
		gproxy_refuse(c, 400, "Bad Request", err);
		return;
	default:
		break;
	}
	gproxy_decide(c, &r);
}

static void
gproxy_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;

	gproxy_refuse(c, 408, "Request Timeout", "request head not received in time");
}

static void
gproxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		 void *arg)
{
	struct gproxy *px = arg;
	struct gproxy_client *c;
	struct timeval tv = { GPROXY_HEAD_TIMEOUT, 0 };
	int one = 1;

	if (px->nclients >= GPROXY_MAX_CLIENTS) {
		gproxy_reply_error(fd, 503, "Service Unavailable", "too many pending requests");
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->px = px;
	c->fd = fd;
	c->ev_read = event_new(px->g->base, fd, EV_READ | EV_PERSIST, gproxy_read_cb, c);
	c->ev_timeout = evtimer_new(px->g->base, gproxy_timeout_cb, c);
	TAILQ_INSERT_TAIL(&px->clients, c, entry);
	px->nclients++;
	if (c->ev_read == NULL || c->ev_timeout == NULL) {
		if (c->ev_read)
			event_free(c->ev_read);
		if (c->ev_timeout)
			event_free(c->ev_timeout);
		c->ev_read = c->ev_timeout = NULL;
		TAILQ_REMOVE(&px->clients, c, entry);
		px->nclients--;
		close(fd);
		free(c);
		return;
	}
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timeout, &tv);
}

static void
gproxy_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
gproxy_error_cb(struct evconnlistener *l, void *arg)
{
	struct gproxy *px = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	log_warnx("proxy accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(l);
		event_base_once(px->g->base, -1, EV_TIMEOUT, gproxy_resume_cb, l, &tv);
	}
}

int
gproxy_open(struct guestd *g)
{
	struct gproxy *px;
	struct sockaddr_storage ss;
	int sslen;

	if (guestd_config_sockaddr(g->cfg.proxy_listen, &ss, &sslen) != 0) {
		log_warnx("ProxyListen %s: not an IP address and port", g->cfg.proxy_listen);
		return -1;
	}
	if ((px = calloc(1, sizeof(*px))) == NULL)
		return -1;
	px->g = g;
	TAILQ_INIT(&px->clients);
	px->listener = evconnlistener_new_bind(g->base, gproxy_accept_cb, px,
					       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						       LEV_OPT_CLOSE_ON_EXEC,
					       128, (struct sockaddr *)&ss, sslen);
	if (px->listener == NULL) {
		log_warn("ProxyListen %s: cannot listen", g->cfg.proxy_listen);
		free(px);
		return -1;
	}
	evconnlistener_set_error_cb(px->listener, gproxy_error_cb);
	g->proxy = px;
	log_info("proxy listening on %s", g->cfg.proxy_listen);
	return 0;
}

void
gproxy_close(struct guestd *g)
{
	struct gproxy *px = g->proxy;
	struct gproxy_client *c;

	if (px == NULL)
		return;
	while ((c = TAILQ_FIRST(&px->clients)) != NULL)
		gproxy_client_free(c, true);
	evconnlistener_free(px->listener);
	free(px);
	g->proxy = NULL;
}
