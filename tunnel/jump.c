/*
 * The jump-host multiplexer (see jump.h for the contract).
 *
 * Each jump host is DOWN (a reconnect timer is pending), CONNECTING (an sshc attempt runs on
 * a worker thread) or UP (its session is ours, non-blocking, driven by libevent like the
 * broker's own connections: a read event on the socket, a write event only while libssh
 * has output queued). Opens are queued on the mux and progressed after every input turn:
 * libssh 0.10 has no callback for a channel-open answer, so ssh_channel_open_forward() is
 * simply called again (it returns SSH_AGAIN until the answer arrived).
 *
 * Liveness is judged from the bytes libssh actually received (ssh_set_counters), not from
 * socket readability: libssh reads the socket inside many calls (a pump reading a channel,
 * an open being polled), and input consumed there never wakes our read event. A keepalive
 * with want-reply every JUMP_KEEPALIVE_MS makes OpenSSH answer, so a healthy host always
 * sends bytes; JUMP_DEAD_MS without any is death. Every up host is checked, the standby
 * too, so that a failover never lands on a host that died silently.
 *
 * Callbacks never run inside a public function: jump_open() only queues and wakes the
 * progress event. Results are collected first and delivered afterwards, so a callback can
 * open or cancel without disturbing the walk over the queue.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <libssh/server.h> /* ssh_message_reply_default, ssh_send_keepalive */

#include "audit/log.h"
#include "tunnel/jump.h"
#include "tunnel/sshc.h"

#define JUMP_MAX_HOSTS 2
#define JUMP_MAX_OPENS 4096 /* queued + in flight; jump_open() refuses beyond */
#define JUMP_OPEN_TIMEOUT_MS 15000
#define JUMP_CONNECT_TIMEOUT_S 10
#define JUMP_BACKOFF_MIN_MS 1000
#define JUMP_BACKOFF_MAX_MS 30000
#define JUMP_STABLE_MS 10000 /* up this long before dying: the next reconnect starts at 1 s */
#define JUMP_MAX_MESSAGES_PER_TURN 64

enum jump_state {
	JUMP_DOWN,
	JUMP_CONNECTING,
	JUMP_UP,
};

struct jump_host {
	struct jump_mux *m;
	int idx;
	char *host;
	int port;
	char *user;
	char *key_path;
	char label[300]; /* "host:port" for the logs */

	enum jump_state state;
	struct sshc_attempt *attempt;
	ssh_session s;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_health;	   /* keepalive and dead-peer check while up */
	struct event *ev_retry;		   /* reconnect while down */
	struct ssh_counter_struct counter; /* must outlive s: it is ours, libssh only adds */
	uint64_t seen_in;		   /* counter.in_bytes at the last look */
	uint64_t last_rx_ms;
	uint64_t last_ka_ms;
	uint64_t up_since_ms;
	int backoff_ms;
	bool ever_tried;   /* the first connection attempt has finished */
	char *dead_reason; /* set during progress, acted on after it */
};

struct jump_open {
	TAILQ_ENTRY(jump_open) entry; /* m->opens while listed */
	TAILQ_ENTRY(jump_open) done;  /* a local delivery list, during one progress run */
	struct jump_mux *m;
	bool listed;
	bool cancelled;	     /* by the caller: no callback */
	bool notified;	     /* the callback ran (or a timeout was delivered) */
	struct jump_host *h; /* where the channel was issued, NULL before */
	ssh_channel ch;	     /* pending channel, owned by the mux */
	ssh_channel result;  /* an open channel waiting for delivery */
	char error[384];
	uint64_t deadline_ms;
	char *dst_host;
	int dst_port;
	char *orig_ip;
	int orig_port;
	jump_open_cb cb;
	void *arg;
};

TAILQ_HEAD(jump_open_list, jump_open);

struct jump_mux {
	struct event_base *base;
	struct jump_host hosts[JUMP_MAX_HOSTS];
	size_t nhosts;
	char *known_hosts;
	int active; /* index of the host new channels go to, -1 if none is up */
	jump_input_cb input_cb;
	void *input_arg;
	void (*dead_cb)(ssh_session dead, void *arg);
	void *dead_arg;
	jump_event_cb event_cb;
	void *event_arg;
	struct jump_open_list opens;
	size_t nopens;
	struct event *ev_progress;
	bool in_progress;
};

static void host_connect(struct jump_host *h);
static void host_dead(struct jump_host *h, const char *reason);
static void jump_progress(struct jump_mux *m);
static void jump_progress_input(struct jump_mux *m);

static uint64_t
jump_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
jump_ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void
jump_input(struct jump_mux *m)
{
	if (m->input_cb != NULL)
		m->input_cb(m->input_arg);
}

static void
jump_wake(struct jump_mux *m)
{
	event_active(m->ev_progress, EV_TIMEOUT, 0);
}

/* Did libssh receive anything since the last look (wherever it read the socket)? */
static bool
host_note_rx(struct jump_host *h)
{
	if (h->counter.in_bytes == h->seen_in)
		return false;
	h->seen_in = h->counter.in_bytes;
	h->last_rx_ms = jump_now_ms();
	return true;
}

static void
host_flush(struct jump_host *h)
{
	if (h->state == JUMP_UP && (ssh_get_poll_flags(h->s) & SSH_WRITE_PENDING))
		event_add(h->ev_write, NULL);
}

static bool
host_broken(struct jump_host *h)
{
	return (ssh_get_status(h->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
	       !ssh_is_connected(h->s);
}

static void
host_broken_reason(struct jump_host *h, char *buf, size_t len)
{
	const char *e = ssh_get_error(h->s);

	snprintf(buf, len, "the connection was closed%s%s%s", e != NULL && *e ? " (" : "",
		 e != NULL ? e : "", e != NULL && *e ? ")" : "");
}

/* Lets libssh process what arrived: nothing is expected from a jump host but channel data
 * and answers, so any request it makes is refused. Returns -1 if the host died. */
static int
host_input_turn(struct jump_host *h)
{
	ssh_message msg;
	char reason[512];
	int n;

	for (n = 0; n < JUMP_MAX_MESSAGES_PER_TURN; n++) {
		if ((msg = ssh_message_get(h->s)) == NULL)
			break;
		log_debug("jump host %s: refusing request type %d", h->label,
			  ssh_message_type(msg));
		ssh_message_reply_default(msg);
		ssh_message_free(msg);
	}
	if (n == JUMP_MAX_MESSAGES_PER_TURN)
		event_active(h->ev_read, EV_READ, 0);
	host_note_rx(h);
	if (host_broken(h)) {
		host_broken_reason(h, reason, sizeof(reason));
		host_dead(h, reason);
		return -1;
	}
	return 0;
}

static void
host_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jump_host *h = arg;
	struct jump_mux *m = h->m;

	if (h->state != JUMP_UP)
		return;
	if (host_input_turn(h) != 0)
		return; /* host_dead() ran the input callback */
	jump_progress(m);
	jump_input(m);
	host_flush(h);
}

static void
host_health_cb(evutil_socket_t fd, short what, void *arg)
{
	struct jump_host *h = arg;
	struct jump_mux *m = h->m;
	uint64_t now, next, silent;
	char reason[128];
	struct timeval tv;

	if (h->state != JUMP_UP)
		return;
	host_note_rx(h);
	now = jump_now_ms();
	silent = now - h->last_rx_ms;
	if (silent >= JUMP_DEAD_MS) {
		snprintf(reason, sizeof(reason), "no answer for %llu ms",
			 (unsigned long long)silent);
		host_dead(h, reason);
		return;
	}
	if (now - h->last_ka_ms + 10 >= JUMP_KEEPALIVE_MS) {
		/* libssh keeps one global request in flight: the first call collects the
		 * answer to the previous keepalive (if it came), the second sends a new one.
		 * With the previous one still unanswered, neither sends anything. */
		ssh_send_keepalive(h->s);
		ssh_send_keepalive(h->s);
		h->last_ka_ms = now;
		/* The calls may have read input that our read event will never see. */
		if (host_note_rx(h)) {
			if (host_input_turn(h) != 0)
				return;
			jump_input(m);
		}
		if (host_broken(h)) {
			host_broken_reason(h, reason, sizeof(reason));
			host_dead(h, reason);
			return;
		}
		host_flush(h);
	}
	/* Wake at the next keepalive or exactly when the silence would become death. */
	next = h->last_ka_ms + JUMP_KEEPALIVE_MS;
	if (h->last_rx_ms + JUMP_DEAD_MS < next)
		next = h->last_rx_ms + JUMP_DEAD_MS;
	jump_ms_to_tv(next > now + 10 ? next - now : 10, &tv);
	evtimer_add(h->ev_health, &tv);
	/* Open timeouts are checked here too, since a silent host wakes nothing else. */
	jump_progress_input(m);
}

static void
host_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	host_connect(arg);
}

static void
host_schedule_retry(struct jump_host *h)
{
	struct timeval tv;
	uint64_t delay;

	/* Jitter (up to a quarter) so that two brokers do not hammer a recovering host in
	 * lockstep. */
	delay = (uint64_t)h->backoff_ms + arc4random_uniform((uint32_t)h->backoff_ms / 4 + 1);
	h->backoff_ms = h->backoff_ms * 2 > JUMP_BACKOFF_MAX_MS ? JUMP_BACKOFF_MAX_MS :
								  h->backoff_ms * 2;
	h->state = JUMP_DOWN;
	jump_ms_to_tv(delay, &tv);
	evtimer_add(h->ev_retry, &tv);
	log_debug("jump host %s: reconnecting in %llu ms", h->label, (unsigned long long)delay);
}

static int
jump_other_up(const struct jump_mux *m, int idx)
{
	size_t i;

	for (i = 0; i < m->nhosts; i++)
		if ((int)i != idx && m->hosts[i].state == JUMP_UP)
			return (int)i;
	return -1;
}

static void
jump_event(struct jump_mux *m, const struct jump_host *h, enum jump_event_kind kind, bool active,
	   int other, const char *reason)
{
	struct jump_event e;

	if (m->event_cb == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.host = h->host;
	e.port = h->port;
	e.label = h->label;
	e.active = active;
	if (other >= 0) {
		if (kind == JUMP_EV_UP)
			e.previous = m->hosts[other].label;
		else
			e.takeover = m->hosts[other].label;
	}
	e.reason = reason;
	m->event_cb(&e, m->event_arg);
}

static void
host_connected(ssh_session s, const char *error, void *arg)
{
	struct jump_host *h = arg;
	struct jump_mux *m = h->m;
	bool first = !h->ever_tried;
	evutil_socket_t fd;
	struct timeval tv;

	h->attempt = NULL;
	h->ever_tried = true;
	if (s == NULL) {
		log_warnx("jump host %s cannot be used: %s", h->label, error);
		host_schedule_retry(h);
		return;
	}
	fd = ssh_get_fd(s);
	h->ev_read = event_new(m->base, fd, EV_READ | EV_PERSIST, host_io_cb, h);
	h->ev_write = event_new(m->base, fd, EV_WRITE, host_io_cb, h);
	if (fd < 0 || h->ev_read == NULL || h->ev_write == NULL) {
		log_warnx("jump host %s: cannot watch the connection", h->label);
		if (h->ev_read != NULL)
			event_free(h->ev_read);
		if (h->ev_write != NULL)
			event_free(h->ev_write);
		h->ev_read = h->ev_write = NULL;
		ssh_disconnect(s);
		ssh_free(s);
		host_schedule_retry(h);
		return;
	}
	ssh_set_blocking(s, 0);
	memset(&h->counter, 0, sizeof(h->counter));
	ssh_set_counters(s, &h->counter, NULL);
	h->s = s;
	h->state = JUMP_UP;
	h->seen_in = 0;
	h->last_rx_ms = h->last_ka_ms = h->up_since_ms = jump_now_ms();
	event_add(h->ev_read, NULL);
	jump_ms_to_tv(JUMP_KEEPALIVE_MS, &tv);
	evtimer_add(h->ev_health, &tv);

	/* Host 0 is preferred at start: if host 1 won the race, move over once, when host 0's
	 * first attempt succeeds. After that the active host changes only when it dies. */
	if (m->active < 0 || (first && h->idx == 0 && m->active != 0)) {
		int previous = m->active;

		if (m->active >= 0)
			log_info("jump host %s is up; new channels go to it (the preferred one)",
				 h->label);
		else
			log_info("jump host %s is up and active", h->label);
		m->active = h->idx;
		jump_event(m, h, JUMP_EV_UP, true, previous, NULL);
	} else {
		log_info("jump host %s is up (standby)", h->label);
		jump_event(m, h, JUMP_EV_UP, false, -1, NULL);
	}
	jump_wake(m);
}

static void
host_connect(struct jump_host *h)
{
	struct jump_mux *m = h->m;
	struct sshc_params p;

	memset(&p, 0, sizeof(p));
	p.host = h->host;
	p.port = h->port;
	p.user = h->user;
	p.key_path = h->key_path;
	p.known_hosts = m->known_hosts;
	p.timeout_s = JUMP_CONNECT_TIMEOUT_S;
	h->state = JUMP_CONNECTING;
	if ((h->attempt = sshc_connect(m->base, &p, host_connected, h)) == NULL) {
		log_warnx("jump host %s: cannot start a connection attempt", h->label);
		h->ever_tried = true;
		host_schedule_retry(h);
	}
}

/*
 * The host is gone (closed, errored or silent). Order matters: the socket events go first
 * (libssh closes the descriptor, whose number may be reused at once); the pending channels
 * and then the owner's channels (dead_cb) are freed while their session still exists; only
 * then is the session freed.
 */
static void
host_dead(struct jump_host *h, const char *reason)
{
	struct jump_mux *m = h->m;
	struct jump_open *o;
	ssh_session s = h->s;
	uint64_t now = jump_now_ms();
	int other;

	if (h->state != JUMP_UP)
		return;
	event_del(h->ev_read);
	event_del(h->ev_write);
	event_del(h->ev_health);
	h->state = JUMP_DOWN;
	other = jump_other_up(m, h->idx);
	if (m->active == h->idx) {
		m->active = other;
		if (other >= 0)
			log_warnx("jump host %s is down: %s; new channels go to %s", h->label,
				  reason, m->hosts[other].label);
		else
			log_warnx("jump host %s is down: %s; no jump host is available", h->label,
				  reason);
		jump_event(m, h, JUMP_EV_DOWN, true, other, reason);
	} else {
		log_warnx("jump host %s (standby) is down: %s", h->label, reason);
		jump_event(m, h, JUMP_EV_DOWN, false, m->active, reason);
	}
	/* Opens in flight there go back to the queue (re-issued on the other host), or are
	 * dropped if nobody waits for them any more. */
	TAILQ_FOREACH(o, &m->opens, entry) {
		if (o->h != h)
			continue;
		ssh_channel_free(o->ch);
		o->ch = NULL;
		o->h = NULL;
	}
	if (m->dead_cb != NULL)
		m->dead_cb(s, m->dead_arg);
	h->s = NULL;
	ssh_disconnect(s); /* frees what channels remain, closes the socket */
	ssh_free(s);
	event_free(h->ev_read);
	event_free(h->ev_write);
	h->ev_read = h->ev_write = NULL;
	memset(&h->counter, 0, sizeof(h->counter));
	if (now - h->up_since_ms >= JUMP_STABLE_MS)
		h->backoff_ms = JUMP_BACKOFF_MIN_MS;
	host_schedule_retry(h);
	jump_wake(m);
	jump_input(m);
}

static void
open_free(struct jump_open *o)
{
	if (o->ch != NULL)
		ssh_channel_free(o->ch);
	if (o->result != NULL)
		ssh_channel_free(o->result);
	free(o->dst_host);
	free(o->orig_ip);
	free(o);
}

static void
open_unlist(struct jump_mux *m, struct jump_open *o)
{
	TAILQ_REMOVE(&m->opens, o, entry);
	o->listed = false;
	m->nopens--;
}

/* The channel-open failed: a refusal by the jump host, or a broken connection. */
static void
open_refused(struct jump_open *o)
{
	const char *e = ssh_get_error(o->h->s), *why;

	/* libssh words it "Channel opening failure: channel N error (CODE) REASON"; REASON
	 * is the jump host's own ("Connection refused", "administratively prohibited"). */
	why = e;
	if (e != NULL && strncmp(e, "Channel opening failure", 23) == 0 &&
	    (why = strstr(e, ") ")) != NULL)
		why += 2;
	snprintf(o->error, sizeof(o->error), "the jump host refused the connection to %s:%d%s%s%s",
		 o->dst_host, o->dst_port, why != NULL && *why ? " (" : "", why != NULL ? why : "",
		 why != NULL && *why ? ")" : "");
}

/*
 * Issues queued opens on the active host and polls those in flight. Nothing is called back
 * during the walk: finished opens are collected and delivered afterwards, and hosts found
 * broken on the way are declared dead only after that.
 */
static void
jump_progress(struct jump_mux *m)
{
	struct jump_open_list done = TAILQ_HEAD_INITIALIZER(done);
	struct jump_open *o, *next;
	uint64_t now = jump_now_ms();
	size_t i;
	int rc;

	if (m->in_progress)
		return;
	m->in_progress = true;
	for (o = TAILQ_FIRST(&m->opens); o != NULL; o = next) {
		bool wanted;

		next = TAILQ_NEXT(o, entry);
		wanted = !o->cancelled && !o->notified;
		if (o->h == NULL) {
			if (!wanted) {
				open_unlist(m, o);
				open_free(o);
				continue;
			}
			if (m->active < 0) {
				snprintf(o->error, sizeof(o->error), "no jump host is available");
				open_unlist(m, o);
				TAILQ_INSERT_TAIL(&done, o, done);
				continue;
			}
			o->h = &m->hosts[m->active];
			if ((o->ch = ssh_channel_new(o->h->s)) == NULL) {
				snprintf(o->error, sizeof(o->error),
					 "cannot open a channel on the jump host (out of memory)");
				o->h = NULL;
				open_unlist(m, o);
				TAILQ_INSERT_TAIL(&done, o, done);
				continue;
			}
		}
		if (o->h->dead_reason != NULL)
			continue; /* re-issued once the host is declared dead below */
		rc = ssh_channel_open_forward(o->ch, o->dst_host, o->dst_port, o->orig_ip,
					      o->orig_port);
		if (rc == SSH_AGAIN) {
			if (wanted && now >= o->deadline_ms) {
				/* The caller hears now; the channel stays with the mux until
				 * the answer comes, so that it can be closed properly. */
				snprintf(o->error, sizeof(o->error),
					 "the jump host %s did not answer the request for %s:%d "
					 "within %d s",
					 o->h->label, o->dst_host, o->dst_port,
					 JUMP_OPEN_TIMEOUT_MS / 1000);
				TAILQ_INSERT_TAIL(&done, o, done);
			}
			continue;
		}
		if (rc == SSH_ERROR && host_broken(o->h)) {
			char reason[512];

			host_broken_reason(o->h, reason, sizeof(reason));
			if ((o->h->dead_reason = strdup(reason)) == NULL)
				o->h->dead_reason = strdup("the connection broke");
			continue;
		}
		if (!wanted) {
			/* An orphan (cancelled or timed out): just close it. */
			open_unlist(m, o);
			open_free(o);
			continue;
		}
		if (rc == SSH_OK) {
			o->result = o->ch;
			log_debug("jump host %s: channel to %s:%d open", o->h->label, o->dst_host,
				  o->dst_port);
		} else {
			open_refused(o);
			ssh_channel_free(o->ch);
			log_info("jump host %s: %s", o->h->label, o->error);
		}
		o->ch = NULL;
		open_unlist(m, o);
		TAILQ_INSERT_TAIL(&done, o, done);
	}

	/* Deliver. A callback may open (queued, woken later) or cancel any open, including
	 * one further down this list. */
	while ((o = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, o, done);
		if (!o->cancelled && !o->notified) {
			ssh_channel ch = o->result;

			o->result = NULL;
			o->notified = true;
			o->cb(ch, ch != NULL ? NULL : o->error, o->arg);
		}
		if (!o->listed)
			open_free(o); /* frees an undelivered result of a cancelled open */
	}
	m->in_progress = false;

	for (i = 0; i < m->nhosts; i++) {
		struct jump_host *h = &m->hosts[i];
		char *reason = h->dead_reason;

		if (reason == NULL)
			continue;
		h->dead_reason = NULL;
		host_dead(h, reason);
		free(reason);
	}
	for (i = 0; i < m->nhosts; i++)
		host_flush(&m->hosts[i]);
}

/* jump_progress() outside an input turn: polling an open reads the socket, so whatever
 * else arrived meanwhile (channel data, window adjusts) must still reach the pumps. */
static void
jump_progress_input(struct jump_mux *m)
{
	uint64_t before[JUMP_MAX_HOSTS];
	bool input = false;
	size_t i;

	for (i = 0; i < m->nhosts; i++)
		before[i] = m->hosts[i].counter.in_bytes;
	jump_progress(m);
	for (i = 0; i < m->nhosts; i++) {
		if (m->hosts[i].state == JUMP_UP && m->hosts[i].counter.in_bytes != before[i]) {
			host_note_rx(&m->hosts[i]);
			input = true;
		}
	}
	if (input)
		jump_input(m);
}

static void
jump_progress_cb(evutil_socket_t fd, short what, void *arg)
{
	jump_progress_input(arg);
}

struct jump_mux *
jump_new(struct event_base *base, const struct jump_host_cfg *hosts, size_t nhosts,
	 const char *known_hosts, jump_input_cb input_cb, void *input_arg)
{
	struct jump_mux *m = NULL;
	size_t i;

	if (base == NULL || hosts == NULL || nhosts == 0 || nhosts > JUMP_MAX_HOSTS ||
	    known_hosts == NULL)
		return NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->base = base;
	m->nhosts = nhosts;
	m->active = -1;
	m->input_cb = input_cb;
	m->input_arg = input_arg;
	TAILQ_INIT(&m->opens);
	if ((m->known_hosts = strdup(known_hosts)) == NULL)
		goto fail;
	if ((m->ev_progress = event_new(base, -1, 0, jump_progress_cb, m)) == NULL)
		goto fail;
	for (i = 0; i < nhosts; i++) {
		struct jump_host *h = &m->hosts[i];
		const struct jump_host_cfg *c = &hosts[i];

		h->m = m;
		h->idx = (int)i;
		h->backoff_ms = JUMP_BACKOFF_MIN_MS;
		if (c->host == NULL || c->user == NULL || c->key_path == NULL || c->port < 1 ||
		    c->port > 65535)
			goto fail;
		h->port = c->port;
		if ((h->host = strdup(c->host)) == NULL || (h->user = strdup(c->user)) == NULL ||
		    (h->key_path = strdup(c->key_path)) == NULL)
			goto fail;
		snprintf(h->label, sizeof(h->label), "%s%s%s:%d", strchr(c->host, ':') ? "[" : "",
			 c->host, strchr(c->host, ':') ? "]" : "", c->port);
		if ((h->ev_health = evtimer_new(base, host_health_cb, h)) == NULL ||
		    (h->ev_retry = evtimer_new(base, host_retry_cb, h)) == NULL)
			goto fail;
	}
	for (i = 0; i < nhosts; i++)
		host_connect(&m->hosts[i]);
	return m;
fail:
	jump_free(m);
	return NULL;
}

void
jump_free(struct jump_mux *m)
{
	struct jump_open *o;
	size_t i;

	if (m == NULL)
		return;
	/* Pending channels first, while their sessions exist. */
	while ((o = TAILQ_FIRST(&m->opens)) != NULL) {
		open_unlist(m, o);
		open_free(o);
	}
	for (i = 0; i < m->nhosts; i++) {
		struct jump_host *h = &m->hosts[i];

		if (h->ev_read != NULL)
			event_free(h->ev_read);
		if (h->ev_write != NULL)
			event_free(h->ev_write);
		if (h->ev_health != NULL)
			event_free(h->ev_health);
		if (h->ev_retry != NULL)
			event_free(h->ev_retry);
		/* A worker may still be connecting: its result is discarded when it comes. */
		sshc_cancel(h->attempt);
		if (h->s != NULL) {
			ssh_disconnect(h->s);
			ssh_free(h->s);
		}
		free(h->dead_reason);
		free(h->host);
		free(h->user);
		free(h->key_path);
	}
	if (m->ev_progress != NULL)
		event_free(m->ev_progress);
	free(m->known_hosts);
	free(m);
}

struct jump_open *
jump_open(struct jump_mux *m, const char *host, int port, const char *orig_ip, int orig_port,
	  jump_open_cb cb, void *arg)
{
	struct jump_open *o;

	if (m == NULL || host == NULL || cb == NULL || port < 1 || port > 65535 ||
	    m->nopens >= JUMP_MAX_OPENS)
		return NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->m = m;
	o->dst_port = port;
	o->orig_port = orig_port;
	o->cb = cb;
	o->arg = arg;
	o->deadline_ms = jump_now_ms() + JUMP_OPEN_TIMEOUT_MS;
	if ((o->dst_host = strdup(host)) == NULL ||
	    (o->orig_ip = strdup(orig_ip != NULL ? orig_ip : "127.0.0.1")) == NULL) {
		open_free(o);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&m->opens, o, entry);
	o->listed = true;
	m->nopens++;
	jump_wake(m);
	return o;
}

void
jump_open_cancel(struct jump_open *o)
{
	if (o == NULL)
		return;
	/* Freed by the next progress run: an open in flight is kept until the jump host
	 * answers, then closed, so that the host does not keep a half-open channel. */
	o->cancelled = true;
	jump_wake(o->m);
}

void
jump_set_dead_cb(struct jump_mux *m, void (*dead_cb)(ssh_session dead, void *arg), void *arg)
{
	m->dead_cb = dead_cb;
	m->dead_arg = arg;
}

void
jump_flush(struct jump_mux *m)
{
	size_t i;

	for (i = 0; i < m->nhosts; i++)
		host_flush(&m->hosts[i]);
}

void
jump_set_event_cb(struct jump_mux *m, jump_event_cb cb, void *arg)
{
	m->event_cb = cb;
	m->event_arg = arg;
}

const char *
jump_channel_host(const struct jump_mux *m, ssh_channel ch)
{
	ssh_session s = ch != NULL ? ssh_channel_get_session(ch) : NULL;
	size_t i;

	for (i = 0; m != NULL && s != NULL && i < m->nhosts; i++)
		if (m->hosts[i].s == s)
			return m->hosts[i].label;
	return NULL;
}

int
jump_active(const struct jump_mux *m)
{
	return m->active;
}

bool
jump_host_up(const struct jump_mux *m, int idx)
{
	if (idx < 0 || (size_t)idx >= m->nhosts)
		return false;
	return m->hosts[idx].state == JUMP_UP;
}
