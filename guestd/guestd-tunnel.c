/*
 * Per-session tunnels (ARCHITECTURE Flow 2): a second SSH connection to the broker that
 * exists exactly while a brokered session lives, carrying that session's corporate
 * connections as direct-tcpip channels. The broker checks every destination against the
 * session profile's allowlist and forwards it through the jump hosts; we only ever ask for
 * the exact host:port of a corporate service from the session's ATTACH list.
 *
 * The tunnel logs in as "tunnel:SESSIONID" with the workspace key and then, on partial
 * success, with the session's single-use token as password. The token is handed to sshc
 * (which wipes its copy) and not kept: a tunnel that drops stays down until the broker
 * attaches the session again with a fresh token.
 *
 * Proxy clients handed over by guestd-proxy.c become streams: waiting for the tunnel,
 * opening their channel (non-blocking: repeated after each input until it answers), then
 * pumped. Streams, and their pumps, are freed before the session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libssh/server.h>

#include "audit/log.h"
#include "guestd/guestd.h"
#include "tunnel/pump.h"
#include "tunnel/sshc.h"

#define GTUNNEL_OPEN_TIMEOUT 15 /* seconds for the tunnel and the channel to come up */
#define GTUNNEL_MAX_STREAMS 512
#define GTUNNEL_MAX_MESSAGES_PER_TURN 64

enum gtunnel_state {
	GT_DIALING,
	GT_UP,
	GT_DOWN,
};

enum gstream_state {
	GS_WAIT,    /* the tunnel is not up yet */
	GS_OPENING, /* direct-tcpip sent, no answer yet */
	GS_PUMP,
};

struct gstream {
	TAILQ_ENTRY(gstream) entry;
	struct gtunnel *t;
	enum gstream_state state;
	int fd; /* owned until the pump takes it */
	char host[256];
	int port;
	ssh_channel ch;
	struct pump *pump;
	struct event *ev_timeout;
	char *early;
	size_t earlylen;
	bool quiet; /* forwarded plain HTTP: no "200 Connection established" */
};
TAILQ_HEAD(gstream_list, gstream);

struct gtunnel {
	struct guestd *g;
	struct gsession *s;
	char sid[128];
	char user[160];
	enum gtunnel_state state;
	struct sshc_attempt *attempt;
	ssh_session ssh;
	struct event *ev_read, *ev_write, *ev_keepalive;
	int64_t last_rx;
	struct gstream_list streams;
	size_t nstreams;
};

static void gtunnel_step(struct gtunnel *t);

static void
gtunnel_kick(void *arg)
{
	struct gtunnel *t = arg;

	if (t->ssh == NULL)
		return;
	if (ssh_get_poll_flags(t->ssh) & SSH_WRITE_PENDING)
		event_add(t->ev_write, NULL);
	/* The pump may have made libssh read this session's socket (ssh_channel_poll), taking
	 * input for other channels off it where no event announces it: take one more turn. */
	event_active(t->ev_read, EV_READ, 0);
}

/* Write interest only: what gtunnel_step() ends with (see gbroker_arm()). */
static void
gtunnel_arm(struct gtunnel *t)
{
	if (t->ssh != NULL && (ssh_get_poll_flags(t->ssh) & SSH_WRITE_PENDING))
		event_add(t->ev_write, NULL);
}

/* Frees a stream; if it never reached the pump, answers the client with status first. */
static void
gstream_free(struct gstream *st, int status, const char *reason, const char *body)
{
	struct gtunnel *t = st->t;

	TAILQ_REMOVE(&t->streams, st, entry);
	t->nstreams--;
	if (st->pump != NULL) {
		pump_free(st->pump); /* closes the channel and the socket */
	} else {
		if (st->ch != NULL) {
			ssh_channel_close(st->ch);
			ssh_channel_free(st->ch);
		}
		if (st->fd >= 0) {
			if (status != 0)
				gproxy_reply_error(st->fd, status, reason, body);
			close(st->fd);
		}
	}
	if (st->ev_timeout != NULL)
		event_free(st->ev_timeout);
	free(st->early);
	free(st);
}

static void
gstream_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gstream *st = arg;
	char body[400];

	snprintf(body, sizeof(body),
		 "the session's tunnel did not open a connection to %s:%d within %d seconds",
		 st->host, st->port, GTUNNEL_OPEN_TIMEOUT);
	log_info("proxy: %s", body);
	gstream_free(st, 504, "Gateway Timeout", body);
}

static void
gstream_done(struct pump *p, void *arg)
{
	struct gstream *st = arg;

	log_debug("proxy: %s:%d done (%llu bytes down, %llu up)", st->host, st->port,
		  (unsigned long long)pump_bytes(p, 0), (unsigned long long)pump_bytes(p, 1));
	gstream_free(st, 0, NULL, NULL);
}

static const char gtunnel_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* Opens (or keeps opening) the stream's channel. */
static void
gstream_open(struct gstream *st)
{
	struct gtunnel *t = st->t;
	char body[400];
	ssize_t w;
	int rc;

	if (st->ch == NULL && (st->ch = ssh_channel_new(t->ssh)) == NULL) {
		gstream_free(st, 502, "Bad Gateway", "out of memory");
		return;
	}
	st->state = GS_OPENING;
	rc = ssh_channel_open_forward(st->ch, st->host, st->port, "127.0.0.1", 0);
	if (rc == SSH_AGAIN)
		return;
	if (rc != SSH_OK) {
		snprintf(body, sizeof(body),
			 "the broker refused the connection to %s:%d (not allowed for this "
			 "session, or the corporate service is unreachable)",
			 st->host, st->port);
		log_info("proxy: %s", body);
		gstream_free(st, 502, "Bad Gateway", body);
		return;
	}
	/* Bytes the client sent after its request head go first. A fresh channel's window
	 * is far larger than GPROXY_MAX_HEAD. */
	if (st->earlylen > 0 &&
	    ssh_channel_write(st->ch, st->early, (uint32_t)st->earlylen) != (int)st->earlylen) {
		gstream_free(st, 502, "Bad Gateway", "cannot forward the request's first bytes");
		return;
	}
	do {
		w = st->quiet ? 0 : write(st->fd, gtunnel_ok, sizeof(gtunnel_ok) - 1);
	} while (w == -1 && errno == EINTR);
	if (!st->quiet && w != (ssize_t)sizeof(gtunnel_ok) - 1) {
		gstream_free(st, 0, NULL, NULL);
		return;
	}
	if ((st->pump = pump_new_socket(t->g->base, st->ch, st->fd, gstream_done, st)) == NULL) {
		gstream_free(st, 0, NULL, NULL);
		return;
	}
	st->ch = NULL;
	st->fd = -1;
	pump_set_kick(st->pump, gtunnel_kick, t);
	event_del(st->ev_timeout);
	st->state = GS_PUMP;
	log_info("proxy: session %s: connected to %s:%d through its tunnel", t->sid, st->host,
		 st->port);
	gtunnel_kick(t);
}

static void
gtunnel_teardown(struct gtunnel *t, int status, const char *body)
{
	struct gstream *st;

	while ((st = TAILQ_FIRST(&t->streams)) != NULL)
		gstream_free(st, status, "Bad Gateway", body);
	if (t->ev_keepalive != NULL)
		evtimer_del(t->ev_keepalive);
	if (t->ssh != NULL) {
		/* events first: ssh_free closes the descriptor */
		event_free(t->ev_read);
		event_free(t->ev_write);
		t->ev_read = t->ev_write = NULL;
		ssh_disconnect(t->ssh);
		ssh_free(t->ssh);
		t->ssh = NULL;
	}
}

static void
gtunnel_down(struct gtunnel *t, const char *why)
{
	char body[400];

	log_warnx("session %s: tunnel down: %s", t->sid, why);
	snprintf(body, sizeof(body), "the session's tunnel to the broker is down (%s)", why);
	t->state = GT_DOWN;
	gtunnel_teardown(t, 502, body);
	gbroker_state_changed(t->g);
}

static void
gtunnel_step(struct gtunnel *t)
{
	struct gstream *st, *next;
	ssh_message msg;
	char why[256];
	int n;

	if (t->ssh == NULL)
		return;
	for (n = 0; n < GTUNNEL_MAX_MESSAGES_PER_TURN; n++) {
		if ((msg = ssh_message_get(t->ssh)) == NULL)
			break;
		/* nothing may be opened or requested towards the workspace over a tunnel */
		ssh_message_reply_default(msg);
		ssh_message_free(msg);
	}
	if (n == GTUNNEL_MAX_MESSAGES_PER_TURN)
		event_active(t->ev_read, EV_READ, 0);
	for (st = TAILQ_FIRST(&t->streams); st != NULL; st = next) {
		next = TAILQ_NEXT(st, entry);
		if (st->state == GS_PUMP)
			pump_run(st->pump); /* may free st */
		else
			gstream_open(st); /* may free st */
	}
	if (ssh_get_status(t->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
		snprintf(why, sizeof(why), "%s",
			 ssh_get_error(t->ssh)[0] != '\0' ? ssh_get_error(t->ssh) :
							    "the broker closed it");
		gtunnel_down(t, why);
		return;
	}
	gtunnel_arm(t);
}

static void
gtunnel_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gtunnel *t = arg;

	if (what & EV_READ)
		t->last_rx = guestd_now();
	gtunnel_step(t);
}

static void
gtunnel_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gtunnel *t = arg;
	struct timeval tv = { (time_t)t->g->cfg.keepalive, 0 };
	int64_t now = guestd_now();

	if (t->ssh == NULL)
		return;
	if (now - t->last_rx >= 3 * t->g->cfg.keepalive) {
		gtunnel_down(t, "no answer from the broker: connection presumed dead");
		return;
	}
	/* see gbroker_keepalive_cb: the first call collects the previous reply */
	ssh_send_keepalive(t->ssh);
	ssh_send_keepalive(t->ssh);
	evtimer_add(t->ev_keepalive, &tv);
	gtunnel_step(t);
}

static void
gtunnel_connected_cb(ssh_session s, const char *error, void *arg)
{
	struct gtunnel *t = arg;
	struct timeval tv = { (time_t)t->g->cfg.keepalive, 0 };
	evutil_socket_t fd;

	t->attempt = NULL;
	if (s == NULL) {
		gtunnel_down(t, error);
		return;
	}
	t->ssh = s;
	fd = ssh_get_fd(s);
	t->ev_read = event_new(t->g->base, fd, EV_READ | EV_PERSIST, gtunnel_io_cb, t);
	t->ev_write = event_new(t->g->base, fd, EV_WRITE, gtunnel_io_cb, t);
	if (t->ev_read == NULL || t->ev_write == NULL) {
		gtunnel_down(t, "out of memory");
		return;
	}
	event_add(t->ev_read, NULL);
	evtimer_add(t->ev_keepalive, &tv);
	t->last_rx = guestd_now();
	t->state = GT_UP;
	log_info("session %s: tunnel up", t->sid);
	gbroker_state_changed(t->g);
	gtunnel_step(t); /* streams that were waiting */
}

struct gtunnel *
gtunnel_new(struct guestd *g, struct gsession *s, const char *token)
{
	struct gtunnel *t;
	struct sshc_params p;
	char host[256];
	unsigned int port;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->g = g;
	t->s = s;
	TAILQ_INIT(&t->streams);
	snprintf(t->sid, sizeof(t->sid), "%s", s->id);
	snprintf(t->user, sizeof(t->user), "tunnel:%s", s->id);
	if ((t->ev_keepalive = evtimer_new(g->base, gtunnel_keepalive_cb, t)) == NULL ||
	    conf_address_split(g->cfg.broker_address, host, sizeof(host), &port) != 0) {
		gtunnel_free(t);
		return NULL;
	}
	memset(&p, 0, sizeof(p));
	p.host = host;
	p.port = (int)port;
	p.user = t->user;
	p.key_path = g->cfg.workspace_key;
	p.pinned_key = g->cfg.broker_host_key;
	p.password = token; /* copied by sshc, wiped there */
	p.timeout_s = GTUNNEL_OPEN_TIMEOUT;
	t->state = GT_DIALING;
	if ((t->attempt = sshc_connect(g->base, &p, gtunnel_connected_cb, t)) == NULL) {
		t->state = GT_DOWN;
		log_warnx("session %s: cannot start the tunnel", t->sid);
	}
	return t;
}

void
gtunnel_free(struct gtunnel *t)
{
	if (t == NULL)
		return;
	sshc_cancel(t->attempt);
	gtunnel_teardown(t, 502, "the session ended");
	if (t->ev_keepalive != NULL)
		event_free(t->ev_keepalive);
	if (t->state == GT_UP)
		log_info("session %s: tunnel closed", t->sid);
	free(t);
}

bool
gtunnel_up(const struct gtunnel *t)
{
	return t != NULL && t->state != GT_DOWN;
}

const char *
gtunnel_state(const struct gtunnel *t)
{
	switch (t->state) {
	case GT_DIALING:
		return "connecting";
	case GT_UP:
		return "up";
	default:
		return "down";
	}
}

static void gtunnel_stream(struct gtunnel *t, int fd, const char *host, int port, const char *early,
			   size_t earlylen, bool quiet);

void
gtunnel_connect(struct gtunnel *t, int fd, const char *host, int port, const char *early,
		size_t earlylen)
{
	gtunnel_stream(t, fd, host, port, early, earlylen, false);
}

void
gtunnel_forward(struct gtunnel *t, int fd, const char *host, int port, const char *early,
		size_t earlylen)
{
	gtunnel_stream(t, fd, host, port, early, earlylen, true);
}

static void
gtunnel_stream(struct gtunnel *t, int fd, const char *host, int port, const char *early,
	       size_t earlylen, bool quiet)
{
	struct gstream *st;
	struct timeval tv = { GTUNNEL_OPEN_TIMEOUT, 0 };

	if (t->state == GT_DOWN || t->nstreams >= GTUNNEL_MAX_STREAMS) {
		gproxy_reply_error(fd, 502, "Bad Gateway",
				   t->state == GT_DOWN ?
					   "the session's tunnel to the broker is down" :
					   "too many connections through this session's tunnel");
		close(fd);
		return;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		close(fd);
		return;
	}
	st->t = t;
	st->fd = fd;
	st->port = port;
	st->quiet = quiet;
	snprintf(st->host, sizeof(st->host), "%s", host);
	TAILQ_INSERT_TAIL(&t->streams, st, entry);
	t->nstreams++;
	if ((st->ev_timeout = evtimer_new(t->g->base, gstream_timeout_cb, st)) == NULL ||
	    (earlylen > 0 && (st->early = malloc(earlylen)) == NULL)) {
		gstream_free(st, 502, "Bad Gateway", "out of memory");
		return;
	}
	if (earlylen > 0)
		memcpy(st->early, early, earlylen);
	st->earlylen = earlylen;
	evtimer_add(st->ev_timeout, &tv);
	if (t->state == GT_UP) {
		gstream_open(st);
		gtunnel_kick(t);
	}
}
