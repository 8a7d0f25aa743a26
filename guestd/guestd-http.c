/*
 * libcurl multi-socket on libevent (guestd-http.h): curl tells us which sockets to watch
 * (ghttp_sock_cb) and when to wake it (ghttp_timer_cb); libevent events call
 * curl_multi_socket_action(), then finished transfers are collected (ghttp_check_done) and
 * their owners told, outside any curl callback.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "guestd/guestd-http.h"

struct ghttp_sock {
	LIST_ENTRY(ghttp_sock) entry;
	curl_socket_t fd;
	struct event *ev;
};

struct ghttp_xfer {
	CURL *easy;
	ghttp_done_cb cb;
	void *arg;
};

struct ghttp {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, ghttp_sock) socks;
};

static void
ghttp_check_done(struct ghttp *h)
{
	struct ghttp_xfer *x;
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result; /* msg is invalid once the handle is removed */
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		x = (struct ghttp_xfer *)priv;
		curl_multi_remove_handle(h->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		if (x != NULL) {
			ghttp_done_cb cb = x->cb;
			void *arg = x->arg;

			free(x);
			cb(easy, rc, arg);
		}
	}
}

static void
ghttp_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct ghttp *h = arg;
	int action = 0, running = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, action, &running);
	ghttp_check_done(h);
}

static void
ghttp_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct ghttp *h = arg;
	int running = 0;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	ghttp_check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms our timer; curl is called from the loop. */
static int
ghttp_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct ghttp *h = arg;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static void
ghttp_sock_free(struct ghttp_sock *s)
{
	LIST_REMOVE(s, entry);
	event_free(s->ev); /* before curl closes the descriptor */
	free(s);
}

static int
ghttp_sock_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct ghttp *h = arg;
	struct ghttp_sock *s = sockp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(h->multi, fd, NULL);
			ghttp_sock_free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->fd = fd;
		LIST_INSERT_HEAD(&h->socks, s, entry);
		curl_multi_assign(h->multi, fd, s);
	} else {
		event_free(s->ev);
		s->ev = NULL;
	}
	if ((s->ev = event_new(h->base, fd, kind, ghttp_sock_event, h)) == NULL ||
	    event_add(s->ev, NULL) != 0) {
		curl_multi_assign(h->multi, fd, NULL);
		if (s->ev != NULL)
			event_free(s->ev);
		LIST_REMOVE(s, entry);
		free(s);
		return -1;
	}
	return 0;
}

struct ghttp *
ghttp_new(struct event_base *base)
{
	struct ghttp *h;

	/* reference counted; guestd calls this before it starts any thread of its own */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		curl_global_cleanup();
		return NULL;
	}
	h->base = base;
	LIST_INIT(&h->socks);
	if ((h->timer = evtimer_new(base, ghttp_timer_event, h)) == NULL ||
	    (h->multi = curl_multi_init()) == NULL) {
		if (h->timer != NULL)
			event_free(h->timer);
		free(h);
		curl_global_cleanup();
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, ghttp_sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, ghttp_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
ghttp_free(struct ghttp *h)
{
	struct ghttp_sock *s;

	if (h == NULL)
		return;
	curl_multi_cleanup(h->multi); /* cached connections report CURL_POLL_REMOVE */
	while ((s = LIST_FIRST(&h->socks)) != NULL)
		ghttp_sock_free(s);
	event_free(h->timer);
	free(h);
	curl_global_cleanup();
}

int
ghttp_add(struct ghttp *h, CURL *easy, ghttp_done_cb cb, void *arg)
{
	struct ghttp_xfer *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -1;
	x->easy = easy;
	x->cb = cb;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(h->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	return 0;
}

void
ghttp_remove(struct ghttp *h, CURL *easy)
{
	char *priv = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	curl_multi_remove_handle(h->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(priv);
}

void
ghttp_kick(struct ghttp *h)
{
	struct timeval now = { 0, 0 };

	/* from a fresh loop turn: a transfer finishing here must not free the caller's
	 * objects under it */
	evtimer_add(h->timer, &now);
}
