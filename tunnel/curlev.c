/*
 * libcurl multi-socket on libevent (see curlev.h for the contract): curl tells us which
 * sockets to watch (curlev_sock_cb) and when to wake it (curlev_timer_cb); libevent events
 * call curl_multi_socket_action(), then finished transfers are collected (curlev_check_done)
 * and their owners told, outside any curl callback.
 */
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "tunnel/curlev.h"

struct curlev_sock {
	LIST_ENTRY(curlev_sock) entry;
	curl_socket_t fd;
	struct event *ev;
};

/* What CURLOPT_PRIVATE points to while a transfer is in the multi. */
struct curlev_xfer {
	curlev_done_cb cb;
	void *arg;
};

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, curlev_sock) socks;
};

static void
curlev_check_done(struct curlev *cv)
{
	struct curlev_xfer *x;
	curlev_done_cb cb;
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	char *priv;
	void *arg;
	int left;

	while ((msg = curl_multi_info_read(cv->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result; /* msg is invalid once the handle is removed */
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		x = (struct curlev_xfer *)priv;
		/* Detach from curl before the owner's code runs: it may start or cancel
		 * transfers, or free the handle. */
		curl_multi_remove_handle(cv->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		if (x != NULL) {
			cb = x->cb;
			arg = x->arg;
			free(x);
			cb(easy, rc, arg);
		}
	}
}

static void
curlev_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg;
	int action = 0, running = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cv->multi, fd, action, &running);
	curlev_check_done(cv);
}

static void
curlev_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg;
	int running = 0;

	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curlev_check_done(cv);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms our timer; curl is called back from the loop. */
static int
curlev_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct curlev *cv = arg;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(cv->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(cv->timer, &tv) == 0 ? 0 : -1;
}

static void
curlev_sock_free(struct curlev_sock *s)
{
	LIST_REMOVE(s, entry);
	/* Deleted before curl closes the descriptor, so epoll never sees a stale fd. */
	event_free(s->ev);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: one persistent libevent event per socket curl uses. */
static int
curlev_sock_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct curlev *cv = arg;
	struct curlev_sock *s = sockp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(cv->multi, fd, NULL);
			curlev_sock_free(s);
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
		LIST_INSERT_HEAD(&cv->socks, s, entry);
		curl_multi_assign(cv->multi, fd, s);
	} else {
		event_free(s->ev);
		s->ev = NULL;
	}
	if ((s->ev = event_new(cv->base, fd, kind, curlev_sock_event, cv)) == NULL ||
	    event_add(s->ev, NULL) != 0) {
		curl_multi_assign(cv->multi, fd, NULL);
		if (s->ev != NULL)
			event_free(s->ev);
		LIST_REMOVE(s, entry);
		free(s);
		return -1;
	}
	return 0;
}

struct curlev *
curlev_new(struct event_base *base)
{
	struct curlev *cv;

	/* Reference counted; both daemons call this before they start any thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	if ((cv = calloc(1, sizeof(*cv))) == NULL) {
		curl_global_cleanup();
		return NULL;
	}
	cv->base = base;
	LIST_INIT(&cv->socks);
	if ((cv->timer = evtimer_new(base, curlev_timer_event, cv)) == NULL ||
	    (cv->multi = curl_multi_init()) == NULL) {
		if (cv->timer != NULL)
			event_free(cv->timer);
		free(cv);
		curl_global_cleanup();
		return NULL;
	}
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, curlev_sock_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, curlev_timer_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	return cv;
}

void
curlev_free(struct curlev *cv)
{
	struct curlev_sock *s;

	if (cv == NULL)
		return;
	/* Closing cached connections reports CURL_POLL_REMOVE for their sockets. */
	curl_multi_cleanup(cv->multi);
	while ((s = LIST_FIRST(&cv->socks)) != NULL)
		curlev_sock_free(s);
	event_free(cv->timer);
	free(cv);
	curl_global_cleanup();
}

int
curlev_add(struct curlev *cv, CURL *easy, curlev_done_cb cb, void *arg)
{
	struct curlev_xfer *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -1;
	x->cb = cb;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cv->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	return 0;
}

void
curlev_remove(struct curlev *cv, CURL *easy)
{
	char *priv = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	curl_multi_remove_handle(cv->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(priv);
}

void
curlev_kick(struct curlev *cv)
{
	struct timeval now = { 0, 0 };

	/* From a fresh loop turn: a transfer finishing here must not free the caller's
	 * objects under it. */
	evtimer_add(cv->timer, &now);
}
