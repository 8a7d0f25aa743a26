/*
 * The workspace's connection to the broker: the reverse tunnel and the control channel.
 *
 * guestd dials out (workspaces have no inbound ports): sshc connects as "workspace:NAME"
 * with the workspace key and checks the broker's pinned host key on a worker thread, then
 * hands the session over to the loop, non-blocking. Setup continues as a small state
 * machine driven by socket readiness, because every libssh request in non-blocking mode
 * may answer SSH_AGAIN and must be repeated after more input was processed:
 *
 *   FORWARD     tcpip-forward "NAME":22 (the broker routes `ssh -J … NAME` to it)
 *   CTL_OPEN    a session channel ...
 *   CTL_SUBSYS  ... with the subsystem saw-control@saw: the control channel
 *   UP          HELLO sent; SESSION_ATTACH/END received; STATE sent on change
 *
 * forwarded-tcpip opens arrive as queued messages (the client side of libssh 0.10 has no
 * callback for them); each is connected to LocalSSH and pumped. Nothing else may be opened
 * towards the workspace.
 *
 * Liveness: a keepalive every Keepalive seconds; nothing received for 3 intervals means
 * the broker is gone. Reconnects back off exponentially from 1 s to ReconnectMax with
 * ±20% jitter, and start again from 1 s after a connection that lived more than 30 s.
 *
 * Audit events (issue #6) go to the durable spool (AuditSpool, audit/spool.h) first, every
 * one of them, numbered (ctl_audit_seq_next): an event only handed to the channel would be
 * lost with guestd if the broker had not read it yet. The spool is drained in row order,
 * at most GBROKER_INFLIGHT_MAX events / GBROKER_INFLIGHT_BYTES unacknowledged at a time,
 * and a row is deleted only when the broker's CTL_AUDIT_ACK covers its seq. The broker's
 * first ACK after HELLO says what it already holds, so nothing is sent before it. Without
 * a spool (AuditSpool none) events wait in a memory ring while offline, unnumbered.
 *
 * At the end of the loop turn (ev_flush, made active by the first event or acknowledgement
 * of the turn) the turn's events are committed to the spool in one transaction; sending
 * follows at most GBROKER_SEND_MS later (ev_send): every event produced meanwhile goes out
 * in one channel write, which under load is one SSH packet and one wake-up of the broker
 * for many events instead of one per turn (delivery a few milliseconds later; durability is
 * the spool's, unchanged: 5 ms rather than 1 took ~5 µs per egress CONNECT off guestd and as
 * much off the broker), and the step that follows the write reads what libssh took in
 * meanwhile. Writing before that step also clears the POLLOUT interest libssh leaves after
 * every write, so EV_WRITE is armed only when output is really pending: a write per event,
 * each arming and disarming EPOLLOUT for a wake-up with nothing to do, was a large share of
 * what guestd spent on an egress CONNECT.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <libssh/server.h>

#include "audit/audit.h"
#include "audit/audit-json.h"
#include "audit/log.h"
#include "audit/spool.h"
#include "audit/syncer.h"
#include "guestd/guestd.h"
#include "tunnel/pump.h"
#include "tunnel/sshc.h"

#define GBROKER_MAX_MESSAGES_PER_TURN 64
#define GBROKER_MAX_CTL_OUT (1024 * 1024) /* queued control output before we give up */
#define GBROKER_DEAD_INTERVALS 3
#define GBROKER_STABLE_SECONDS 30 /* a connection that lived this long resets the backoff */
#define GBROKER_STATE_EVERY 60	  /* seconds between periodic CTL_STATE */
#define GBROKER_CONNECT_TIMEOUT 10
#define GBROKER_MAX_FORWARDS 1024
#define GBROKER_INFLIGHT_MAX 1024	    /* spooled events sent, not yet acknowledged */
#define GBROKER_INFLIGHT_BYTES (256 * 1024) /* and their frames' bytes */
#define GBROKER_PEEK_ROWS 64
#define GBROKER_SEND_MS 5		  /* audit output waits at most this long for more */
#define GBROKER_FRESH_MAX 1024		  /* appended, not yet sent, kept framed in memory */
#define GBROKER_FRESH_BYTES (1024 * 1024) /* and their frames' bytes */
#define GBROKER_LOST_LOG_EVERY 1000

enum gbroker_state {
	GB_IDLE,
	GB_DIALING,
	GB_FORWARD,
	GB_CTL_OPEN,
	GB_CTL_SUBSYS,
	GB_UP,
};

/* A spooled event sent on this connection and not yet acknowledged (or skipped: a damaged
 * row, or one the broker already holds, deleted with the next acknowledgement). */
struct gsent {
	long long id; /* spool row */
	int64_t seq;
	size_t len; /* frame bytes */
};

/* An event this process spooled and has not sent yet, its CTL_AUDIT frame ready. */
struct gfresh {
	long long id; /* spool row */
	int64_t seq;
	uint8_t *frame;
	size_t len;
};

/* One forwarded-tcpip channel to LocalSSH. */
struct gfwd {
	TAILQ_ENTRY(gfwd) entry;
	struct gbroker *b;
	struct pump *pump;
};
TAILQ_HEAD(gfwd_list, gfwd);

struct gbroker {
	struct guestd *g;
	enum gbroker_state state;
	char host[256];
	int port;
	char user[128];
	struct sshc_attempt *attempt;
	ssh_session ssh;
	ssh_channel ctl;
	struct event *ev_read, *ev_write;
	struct event *ev_keepalive, *ev_retry, *ev_state;
	struct event *ev_flush; /* end of a loop turn: commit the spool, arm ev_send */
	struct event *ev_send;	/* audit output, sent GBROKER_SEND_MS after the first of it */
	bool send_armed;
	bool wrote; /* gbroker_flush_ctl() wrote since this was cleared */
	int64_t last_rx, up_since, last_state;
	long backoff_ms;
	struct gfwd_list fwds;
	size_t nfwds;
	struct evbuffer *out;
	size_t inlen;
	uint8_t in[4 + CTL_MAX_FRAME]; /* one whole frame at most */
	/* AuditSpool none: OCSF events waiting for the control channel, a ring of
	 * GBROKER_AUDIT_QUEUE */
	json_t **aq;
	size_t ahead, alen;
	unsigned long long adropped;
	/* AuditSpool: the durable queue, drained in row order */
	char *spool_path;
	struct spool *spool;
	struct syncer *syncer; /* background fdatasync of the WAL */
	struct event *ev_sync; /* AUDIT_SYNC_MS after an append */
	bool sync_armed, sync_again;
	int64_t last_seq;	/* highest seq given out */
	int64_t broker_upto;	/* the broker's ACK on this connection; -1: none yet */
	long long send_id;	/* rows with id <= send_id were sent on this connection */
	struct gsent *inflight; /* ring of GBROKER_INFLIGHT_MAX */
	size_t ifhead, iflen, ifbytes;
	/* While fresh_all, every spooled row after send_id is in fresh (a ring of
	 * GBROKER_FRESH_MAX) and the pump sends from there: no reading back, parsing and
	 * encoding again of what this process has just written. Set when a read of the spool
	 * finds nothing left to send; cleared (back to reading the spool) when the ring
	 * overflows, the connection ends or a commit fails. */
	struct gfresh *fresh;
	size_t fhead, flen, fbytes;
	bool fresh_all;
	unsigned long long txn_events;		   /* appended in the open spool transaction */
	unsigned long long spool_full, spool_lost; /* not spooled (full / error), dropped rows */
	bool full;
};

static void gbroker_dial(struct gbroker *b);
static void gbroker_fresh_clear(struct gbroker *b);
static void gbroker_spool_commit(struct gbroker *b);
static void gbroker_step(struct gbroker *b);
static void gbroker_audit_flush(struct gbroker *b);

long
gbroker_backoff_next(long base_ms, long max_ms)
{
	long next;

	if (max_ms < 1000)
		max_ms = 1000;
	if (base_ms <= 0)
		return 1000;
	next = base_ms > max_ms / 2 ? max_ms : base_ms * 2;
	return next > max_ms ? max_ms : next;
}

long
gbroker_backoff_jitter(long base_ms, uint32_t r)
{
	long delta = base_ms / 5;

	/* r scaled onto [-delta, +delta] without modulo bias worth mentioning */
	return base_ms - delta + (long)(((uint64_t)r * (uint64_t)(2 * delta + 1)) >> 32);
}

bool
gbroker_online(const struct guestd *g)
{
	return g->broker != NULL && g->broker->state == GB_UP;
}

static void
gbroker_kick(void *arg)
{
	struct gbroker *b = arg;

	if (b->ssh == NULL)
		return;
	if (ssh_get_poll_flags(b->ssh) & SSH_WRITE_PENDING)
		event_add(b->ev_write, NULL);
	/* See gtunnel_kick(): input for other channels may sit in libssh's buffers. */
	event_active(b->ev_read, EV_READ, 0);
}

/* Write interest only: what gbroker_step() itself ends with. Re-activating the read event
 * from the step it runs would starve every other event of the loop. */
static void
gbroker_arm(struct gbroker *b)
{
	if (b->ssh != NULL && (ssh_get_poll_flags(b->ssh) & SSH_WRITE_PENDING))
		event_add(b->ev_write, NULL);
}

static void
gbroker_fwd_free(struct gfwd *f)
{
	TAILQ_REMOVE(&f->b->fwds, f, entry);
	f->b->nfwds--;
	pump_free(f->pump);
	free(f);
}

static void
gbroker_fwd_done(struct pump *p, void *arg)
{
	struct gfwd *f = arg;

	log_debug("forwarded connection done (%llu bytes in, %llu out)",
		  (unsigned long long)pump_bytes(p, 0), (unsigned long long)pump_bytes(p, 1));
	gbroker_fwd_free(f);
}

/* Drops the connection (if any) and schedules the next attempt. */
static void
gbroker_lost(struct gbroker *b, const char *why)
{
	struct gfwd *f;
	struct timeval tv;
	int64_t now = guestd_now();
	uint32_t r = 0;
	long delay;

	if (b->ssh != NULL) {
		log_warnx("broker %s:%d: %s", b->host, b->port, why);
		/* events first: ssh_free closes the descriptor */
		event_free(b->ev_read);
		event_free(b->ev_write);
		b->ev_read = b->ev_write = NULL;
		while ((f = TAILQ_FIRST(&b->fwds)) != NULL)
			gbroker_fwd_free(f);
		b->ctl = NULL; /* freed with the session */
		ssh_disconnect(b->ssh);
		ssh_free(b->ssh);
		b->ssh = NULL;
	} else {
		log_warnx("broker %s:%d: %s", b->host, b->port, why);
	}
	evtimer_del(b->ev_keepalive);
	evtimer_del(b->ev_state);
	evtimer_del(b->ev_send);
	b->send_armed = false;
	evbuffer_drain(b->out, evbuffer_get_length(b->out));
	b->inlen = 0;
	b->state = GB_IDLE;
	/* unacknowledged rows stay spooled and go again, after the next connection's ACK */
	b->broker_upto = -1;
	b->send_id = 0;
	b->ifhead = b->iflen = b->ifbytes = 0;
	gbroker_fresh_clear(b);
	if (b->g->shutting_down)
		return;
	if (b->up_since != 0 && now - b->up_since > GBROKER_STABLE_SECONDS)
		b->backoff_ms = 0;
	b->up_since = 0;
	b->backoff_ms = gbroker_backoff_next(b->backoff_ms, (long)b->g->cfg.reconnect_max * 1000);
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)now * 2654435761u; /* no entropy yet: jitter matters little */
	delay = gbroker_backoff_jitter(b->backoff_ms, r);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	log_info("reconnecting to the broker in %ld.%01lds", delay / 1000, (delay % 1000) / 100);
	evtimer_add(b->ev_retry, &tv);
}

static int
gbroker_flush_ctl(struct gbroker *b)
{
	size_t len;
	uint32_t win;
	int w;

	while (b->ctl != NULL && (len = evbuffer_get_length(b->out)) > 0) {
		if ((win = ssh_channel_window_size(b->ctl)) == 0)
			break;
		if (len > win)
			len = win;
		if (len > 32768)
			len = 32768;
		w = ssh_channel_write(b->ctl, evbuffer_pullup(b->out, (ssize_t)len), (uint32_t)len);
		if (w < 0)
			return -1;
		evbuffer_drain(b->out, (size_t)w);
		if (w > 0)
			b->wrote = true;
		if ((size_t)w < len)
			break;
	}
	/* write interest: gbroker_step() (or a caller outside it) ends with gbroker_arm() */
	return 0;
}

/* Audit output goes at the end of this loop turn, with whatever else the turn queues. */
static void
gbroker_flush_later(struct gbroker *b)
{
	if (b->ev_flush != NULL &&
	    (b->state == GB_UP || (b->spool != NULL && spool_in_txn(b->spool))))
		event_active(b->ev_flush, EV_TIMEOUT, 0);
}

static void
gbroker_send_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;

	b->send_armed = false;
	if (b->ssh == NULL || b->state != GB_UP)
		return;
	b->wrote = false;
	gbroker_audit_flush(b);
	/* The write polled libssh's socket and may have taken input off it (an ACK, data of a
	 * forwarded channel) that no event announces: a step handles it, and its reads clear
	 * the POLLOUT libssh keeps after a write, so it arms EV_WRITE only if bytes remain. */
	if (b->wrote)
		gbroker_step(b);
	else
		gbroker_arm(b);
}

static void
gbroker_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;
	struct timeval tv = { 0, GBROKER_SEND_MS * 1000 };

	/* the turn's events are committed to the spool before any of them is sent */
	if (b->spool != NULL && spool_in_txn(b->spool))
		gbroker_spool_commit(b);
	if (b->ssh == NULL || b->state != GB_UP || b->send_armed)
		return;
	if (evtimer_add(b->ev_send, &tv) == 0)
		b->send_armed = true;
	else
		gbroker_send_cb(-1, 0, b);
}

static int
gbroker_send(struct gbroker *b, enum ctl_type type, json_t *body)
{
	uint8_t *frame = NULL;
	size_t len;
	int rc = -1;

	if (body == NULL || ctl_encode(type, body, &frame, &len) != 0)
		goto out;
	if (evbuffer_get_length(b->out) + len > GBROKER_MAX_CTL_OUT ||
	    evbuffer_add(b->out, frame, len) != 0)
		goto out;
	rc = gbroker_flush_ctl(b);
out:
	free(frame);
	json_decref(body);
	return rc;
}

/* AuditSpool none: sends queued audit events, oldest first, while the link is up and the
 * output has room. What stays queued goes with the next event, the next state report or
 * the next link. */
static void
gbroker_audit_flush_memory(struct gbroker *b)
{
	uint8_t *frame;
	size_t len;
	json_t *body;
	int rc;

	while (b->alen > 0 && b->state == GB_UP) {
		json_t *ev = b->aq[b->ahead];

		frame = NULL;
		body = ctl_audit_to_json(0, ev);
		rc = body != NULL ? ctl_encode(CTL_AUDIT, body, &frame, &len) : -1;
		json_decref(body);
		if (rc == 0 && evbuffer_get_length(b->out) + len > GBROKER_MAX_CTL_OUT) {
			free(frame);
			break; /* no room now: later */
		}
		if (rc != 0 || evbuffer_add(b->out, frame, len) != 0)
			log_warnx("broker: an audit event could not be sent (too large or out of "
				  "memory): dropped");
		free(frame);
		json_decref(ev);
		b->aq[b->ahead] = NULL;
		b->ahead = (b->ahead + 1) % GBROKER_AUDIT_QUEUE;
		b->alen--;
	}
	if (gbroker_flush_ctl(b) != 0)
		log_warnx("broker: control channel write failed");
}

static void
gbroker_audit_memory(struct gbroker *b, json_t *ev)
{
	if (b->alen == GBROKER_AUDIT_QUEUE) {
		json_decref(b->aq[b->ahead]);
		b->aq[b->ahead] = NULL;
		b->ahead = (b->ahead + 1) % GBROKER_AUDIT_QUEUE;
		b->alen--;
		b->adropped++;
		if (b->adropped == 1 || b->adropped % 1000 == 0)
			log_warnx("broker unreachable: audit queue full (%d events), oldest "
				  "dropped: %llu lost so far (they remain in this log)",
				  GBROKER_AUDIT_QUEUE, b->adropped);
	}
	b->aq[(b->ahead + b->alen) % GBROKER_AUDIT_QUEUE] = ev;
	b->alen++;
	gbroker_flush_later(b);
}

/* ---- the durable spool ------------------------------------------------------------------ */

static void
gbroker_sync_arm(struct gbroker *b, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!b->sync_armed && evtimer_add(b->ev_sync, &tv) == 0)
		b->sync_armed = true;
}

static void
gbroker_sync_start(struct gbroker *b)
{
	int fd = spool_wal_fd(b->spool);

	if (syncer_busy(b->syncer)) {
		b->sync_again = true;
		return;
	}
	b->sync_again = false;
	if (fd == -1 || syncer_start(b->syncer, fd) == -1) {
		if (spool_sync(b->spool) == -1)
			gbroker_sync_arm(b, 1000);
	}
}

static void
gbroker_sync_done(int err, void *arg)
{
	struct gbroker *b = arg;

	if (err != 0) {
		errno = err;
		log_warn("cannot sync the audit spool %s", b->spool_path);
		gbroker_sync_arm(b, 1000);
		return;
	}
	if (b->sync_again)
		gbroker_sync_start(b);
}

static void
gbroker_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;

	b->sync_armed = false;
	gbroker_sync_start(b);
}

/* Deletes the spooled rows the broker has acknowledged (and the skipped ones before them). */
static void
gbroker_spool_acked(struct gbroker *b)
{
	long long upto_id = -1;

	while (b->iflen > 0 && b->inflight[b->ifhead].seq <= b->broker_upto) {
		struct gsent *e = &b->inflight[b->ifhead];

		upto_id = e->id;
		b->ifbytes -= e->len;
		b->ifhead = (b->ifhead + 1) % GBROKER_INFLIGHT_MAX;
		b->iflen--;
	}
	if (upto_id < 0)
		return;
	/* in the turn's transaction, with its appends: one commit for both */
	if (!spool_in_txn(b->spool) && spool_begin(b->spool) == 0)
		gbroker_flush_later(b);
	if (spool_ack(b->spool, upto_id) != 0)
		log_warnx("audit spool %s: cannot delete acknowledged events (they may be sent "
			  "again; the broker drops what it has)",
			  b->spool_path);
	if (b->iflen == 0 && spool_rows(b->spool) == 0)
		b->send_id = 0; /* ids may start again from 1 (spool.h) */
}

struct gbroker_peek {
	struct gbroker *b;
	size_t sent;
};

static void
gbroker_inflight_push(struct gbroker *b, long long id, int64_t seq, size_t len)
{
	struct gsent *e = &b->inflight[(b->ifhead + b->iflen) % GBROKER_INFLIGHT_MAX];

	e->id = id;
	e->seq = seq;
	e->len = len;
	b->iflen++;
	b->ifbytes += len;
	b->send_id = id;
}

/* A row that can never be sent: dropped loudly, deleted with the rows before it. */
static void
gbroker_spool_drop(struct gbroker *b, long long id, const char *why)
{
	int64_t seq = b->iflen > 0 ?
			      b->inflight[(b->ifhead + b->iflen - 1) % GBROKER_INFLIGHT_MAX].seq :
			      0;

	b->spool_lost++;
	log_warnx("AUDIT EVENT LOST: audit spool %s row %lld %s; it is dropped", b->spool_path, id,
		  why);
	gbroker_inflight_push(b, id, seq, 0);
}

/* Enough sent and not acknowledged, or queued for the channel: more when ACKs come. */
static bool
gbroker_window_full(const struct gbroker *b)
{
	return b->iflen == GBROKER_INFLIGHT_MAX || b->ifbytes >= GBROKER_INFLIGHT_BYTES ||
	       evbuffer_get_length(b->out) >= GBROKER_MAX_CTL_OUT / 2;
}

static int
gbroker_spool_row(const struct spool_row *row, void *arg)
{
	struct gbroker_peek *p = arg;
	struct gbroker *b = p->b;
	json_t *body = NULL, *ev;
	uint8_t *frame = NULL;
	size_t len = 0;
	int64_t seq;
	char err[160];

	if (gbroker_window_full(b))
		return 1; /* enough in flight: more when acknowledgements come */
	if (row->damaged) {
		gbroker_spool_drop(b, row->id, "is damaged");
		return 0;
	}
	body = json_loadb(row->event, row->len, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL || ctl_audit_from_json(body, &seq, &ev, err, sizeof(err)) != 0 ||
	    seq == 0) {
		json_decref(body);
		gbroker_spool_drop(b, row->id, "is not a numbered audit event");
		return 0;
	}
	if (seq <= b->broker_upto) {
		/* the broker has it (taken before a lost acknowledgement or a restart) */
		json_decref(body);
		gbroker_inflight_push(b, row->id, seq, 0);
		return 0;
	}
	if (ctl_encode(CTL_AUDIT, body, &frame, &len) != 0) {
		json_decref(body);
		gbroker_spool_drop(b, row->id, "does not fit in a control message");
		return 0;
	}
	json_decref(body);
	if (evbuffer_add(b->out, frame, len) != 0) {
		free(frame);
		return 1;
	}
	free(frame);
	gbroker_inflight_push(b, row->id, seq, len);
	p->sent++;
	return 0;
}

static void
gbroker_fresh_pop(struct gbroker *b)
{
	struct gfresh *f = &b->fresh[b->fhead];

	b->fbytes -= f->len;
	free(f->frame);
	f->frame = NULL;
	b->fhead = (b->fhead + 1) % GBROKER_FRESH_MAX;
	b->flen--;
}

static void
gbroker_fresh_clear(struct gbroker *b)
{
	while (b->flen > 0)
		gbroker_fresh_pop(b);
	b->fresh_all = false;
}

/* Keeps the frame of the row just appended (taking it), or gives up the ring when full. */
static void
gbroker_fresh_push(struct gbroker *b, long long id, int64_t seq, uint8_t *frame, size_t len)
{
	struct gfresh *f;

	if (!b->fresh_all || b->fresh == NULL || b->flen == GBROKER_FRESH_MAX ||
	    b->fbytes + len > GBROKER_FRESH_BYTES) {
		free(frame);
		gbroker_fresh_clear(b); /* the spool has them: read back when there is room */
		return;
	}
	f = &b->fresh[(b->fhead + b->flen) % GBROKER_FRESH_MAX];
	f->id = id;
	f->seq = seq;
	f->frame = frame;
	f->len = len;
	b->flen++;
	b->fbytes += len;
}

/* gbroker_spool_pump() while every row to send is in the ring. */
static void
gbroker_fresh_pump(struct gbroker *b)
{
	while (b->flen > 0 && !gbroker_window_full(b)) {
		struct gfresh *f = &b->fresh[b->fhead];

		if (f->seq <= b->broker_upto) {
			gbroker_inflight_push(b, f->id, f->seq, 0); /* the broker has it */
		} else {
			if (evbuffer_add(b->out, f->frame, f->len) != 0)
				break;
			gbroker_inflight_push(b, f->id, f->seq, f->len);
		}
		gbroker_fresh_pop(b);
	}
	gbroker_spool_acked(b);
}

/* Sends spooled events after the last one sent on this connection, in order, while the
 * broker has answered HELLO and the in-flight window has room. */
static void
gbroker_spool_pump(struct gbroker *b)
{
	struct gbroker_peek p = { b, 0 };
	int n;

	if (b->state != GB_UP || b->broker_upto < 0)
		return;
	/* nothing is sent before it is committed (a timer may run before this turn's ev_flush) */
	if (spool_in_txn(b->spool))
		gbroker_spool_commit(b);
	for (; !b->fresh_all;) {
		size_t before = b->iflen;

		n = spool_peek(b->spool, b->send_id, GBROKER_PEEK_ROWS, GBROKER_INFLIGHT_BYTES,
			       gbroker_spool_row, &p);
		if (n < 0) {
			log_warnx("audit spool %s: cannot read events; retrying with the next "
				  "event or acknowledgement",
				  b->spool_path);
			break;
		}
		gbroker_spool_acked(b); /* skipped rows the broker already holds */
		if (n == 0)
			b->fresh_all = true; /* caught up: what comes next is kept framed */
		if (n == 0 || b->iflen == before)
			break;
	}
	if (b->fresh_all)
		gbroker_fresh_pump(b);
	if (gbroker_flush_ctl(b) != 0)
		log_warnx("broker: control channel write failed");
}

/* Commits the events this loop turn spooled (one WAL commit for all of them). */
static void
gbroker_spool_commit(struct gbroker *b)
{
	unsigned long long n = b->txn_events;

	b->txn_events = 0;
	if (spool_commit(b->spool) == 0) {
		gbroker_sync_arm(b, AUDIT_SYNC_MS);
		return;
	}
	if (n == 0) {
		gbroker_fresh_clear(b);
		log_warnx("audit spool %s: cannot delete acknowledged events (they may be sent "
			  "again; the broker drops what it has)",
			  b->spool_path);
		return;
	}
	/* Rolled back: those rows are gone. Their frames must not be sent, and what the ring
	 * holds of them (the newest n, when it holds every unsent row) goes to the journal,
	 * where an event nothing durable holds belongs. */
	b->spool_full += n;
	log_warnx("AUDIT EVENT NOT SPOOLED: audit spool %s could not commit the last %llu "
		  "event(s) (database error); %llu event(s) not spooled so far%s",
		  b->spool_path, n, b->spool_full,
		  b->fresh_all && b->flen >= n ? " (logged below)" : "");
	if (b->fresh_all && b->flen >= n) {
		for (size_t i = b->flen - (size_t)n; i < b->flen; i++) {
			const struct gfresh *f = &b->fresh[(b->fhead + i) % GBROKER_FRESH_MAX];
			/* the frame's body is {"seq":N,"event":EVENT} (ctl_audit_frame()) */
			const char *body = (const char *)f->frame + CTL_FRAME_HEADER;
			size_t blen = f->len - CTL_FRAME_HEADER;
			const char *ev = memmem(body, blen, ",\"event\":", 9);

			if (ev != NULL)
				log_info("audit: %.*s", (int)(body + blen - 1 - (ev + 9)), ev + 9);
		}
	}
	gbroker_fresh_clear(b);
}

/* ev (borrowed) and its compact JSON text (len bytes). Returns 0 when the event is spooled. */
static int
gbroker_audit_spool(struct gbroker *b, json_t *ev, const char *text, size_t len)
{
	const char *uidstr = NULL;
	uint8_t *frame = NULL;
	size_t flen = 0;
	json_t *uid;
	int64_t seq, time_ms;
	struct timespec ts;
	int rc = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	seq = ctl_audit_seq_next(b->last_seq, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	if (seq < 0 || ctl_audit_frame(seq, text, len, &frame, &flen) != 0)
		goto out;
	uid = json_object_get(json_object_get(ev, "metadata"), "uid");
	if (json_is_string(uid))
		uidstr = json_string_value(uid);
	time_ms = json_is_integer(json_object_get(ev, "time")) ?
			  (int64_t)json_integer_value(json_object_get(ev, "time")) :
			  (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* the turn's events share one transaction, committed by ev_flush at its end */
	if (!spool_in_txn(b->spool))
		(void)spool_begin(b->spool); /* if not, this append commits on its own */
	rc = spool_append(b->spool, uidstr, time_ms, (const char *)frame + CTL_FRAME_HEADER,
			  flen - CTL_FRAME_HEADER);
	if (rc == 0) {
		b->last_seq = seq;
		if (spool_in_txn(b->spool))
			b->txn_events++;
		else
			gbroker_sync_arm(b, AUDIT_SYNC_MS);
		gbroker_fresh_push(b, spool_last_id(b->spool), seq, frame, flen);
		frame = NULL;
		if (b->full)
			log_warnx("audit spool %s has room again", b->spool_path);
		b->full = false;
	}
out:
	if (rc == SPOOL_FULL) {
		b->spool_full++;
		if (!b->full || b->spool_full % GBROKER_LOST_LOG_EVERY == 0)
			log_warnx("AUDIT EVENT NOT SPOOLED: audit spool %s is full (%lld bytes of "
				  "AuditSpoolMax, broker unreachable?); %llu event(s) not spooled "
				  "so far (they remain in this log)",
				  b->spool_path, spool_bytes(b->spool), b->spool_full);
		b->full = true;
	} else if (rc != 0) {
		b->spool_full++;
		log_warnx("AUDIT EVENT NOT SPOOLED: audit spool %s cannot store an event "
			  "(database error, or out of memory); %llu event(s) not spooled so far "
			  "(they remain in this log)",
			  b->spool_path, b->spool_full);
	}
	free(frame);
	gbroker_flush_later(b);
	return rc;
}

/* What to send now: the spool or the memory ring. */
static void
gbroker_audit_flush(struct gbroker *b)
{
	if (b->spool != NULL)
		gbroker_spool_pump(b);
	else
		gbroker_audit_flush_memory(b);
}

void
gbroker_audit_text(struct guestd *g, json_t *ev, const char *text, size_t len)
{
	struct gbroker *b = g->broker;
	char *own = NULL;
	int rc = -1;

	if (ev == NULL)
		return;
	if (text == NULL && (text = own = audit_json_compact(ev, NULL, &len)) == NULL) {
		text = ""; /* out of memory: refused by the spool, counted, logged below */
		len = 0;
	}
	/* The journal gets the event when nothing durable holds it: no spool (the memory
	 * queue drops the oldest when full), or the spool refused it ("they remain in this
	 * log"); a spooled event is there only with -d, not written twice at info level. */
	if (b != NULL && b->spool != NULL)
		rc = gbroker_audit_spool(b, ev, text, len); /* an empty text is refused, counted */
	if (len > 0 && rc == 0)
		log_debug("audit: %.*s", (int)len, text);
	else if (len > 0)
		log_info("audit: %.*s", (int)len, text);
	else
		log_warnx("audit: cannot serialise an event (out of memory)");
	if (b != NULL && b->spool == NULL && b->aq != NULL)
		gbroker_audit_memory(b, ev);
	else
		json_decref(ev);
	free(own);
}

void
gbroker_audit(struct guestd *g, json_t *ev)
{
	gbroker_audit_text(g, ev, NULL, 0);
}

unsigned long long
gbroker_audit_dropped(const struct guestd *g)
{
	const struct gbroker *b = g->broker;

	return b != NULL ? b->adropped + b->spool_full + b->spool_lost : 0;
}

/* CTL_AUDIT_ACK: the broker holds every event up to upto. */
static void
gbroker_audit_ack(struct gbroker *b, int64_t upto)
{
	if (b->spool == NULL)
		return; /* not announced: nothing of ours is numbered */
	if (b->broker_upto < 0) {
		if (upto > b->last_seq)
			log_warnx("broker holds audit events of this workspace up to #%lld, above "
				  "any this saw-guestd numbered (#%lld): the spool was replaced or "
				  "the clock went back; new events are numbered above it",
				  (long long)upto, (long long)b->last_seq);
		if (spool_rows(b->spool) > 0)
			log_info("broker holds audit events up to #%lld; sending the %lld "
				 "spooled after it",
				 (long long)upto, spool_rows(b->spool));
	}
	if (upto > b->last_seq)
		b->last_seq = upto;
	if (upto > b->broker_upto)
		b->broker_upto = upto;
	gbroker_spool_acked(b);
	gbroker_flush_later(b); /* with the events of this turn, after the reads */
}

static json_t *
gbroker_state_json(struct guestd *g)
{
	json_t *j, *list;
	struct gsession *s;
	struct glogin *l;
	int64_t now = guestd_now();
	size_t total = 0, n;

	if ((list = json_array()) == NULL)
		return NULL;
	TAILQ_FOREACH(s, &g->sessions.list, entry) {
		if (s->expires <= now)
			continue;
		n = 0;
		TAILQ_FOREACH(l, &s->logins, entry)
			n++;
		total += n;
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:I, s:I, s:s}", "session", s->id, "user", s->user,
				  "expires", (json_int_t)s->expires, "logins", (json_int_t)n,
				  "tunnel", s->tunnel != NULL ? gtunnel_state(s->tunnel) : "none"));
	}
	/* sessions and logins are counts (what the broker logs); list has the detail */
	j = json_pack("{s:I, s:I, s:o}", "sessions", (json_int_t)json_array_size(list), "logins",
		      (json_int_t)total, "list", list);
	return j;
}

static void
gbroker_send_state(struct gbroker *b)
{
	if (b->state != GB_UP)
		return;
	b->last_state = guestd_now();
	if (gbroker_send(b, CTL_STATE, gbroker_state_json(b->g)) != 0)
		log_warnx("broker: cannot send the state report");
}

static void
gbroker_state_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;

	gbroker_send_state(b);
	gbroker_audit_flush(b);
	gbroker_arm(b);
}

void
gbroker_state_changed(struct guestd *g)
{
	struct gbroker *b = g->broker;
	struct timeval tv = { 0, 100000 }; /* coalesce bursts (many logins, resync) */

	if (b != NULL && b->state == GB_UP && !evtimer_pending(b->ev_state, NULL))
		evtimer_add(b->ev_state, &tv);
}

/* A forwarded-tcpip open from the broker: a user's `ssh -J … NAME` reaching LocalSSH. */
static void
gbroker_forwarded(struct gbroker *b, ssh_message msg)
{
	struct sockaddr_storage ss;
	struct gfwd *f = NULL;
	ssh_channel ch;
	int sslen, fd = -1, one = 1;

	if (b->nfwds >= GBROKER_MAX_FORWARDS) {
		log_warnx("forwarded connection refused: %d already open", GBROKER_MAX_FORWARDS);
		ssh_message_reply_default(msg);
		return;
	}
	if (guestd_config_sockaddr(b->g->cfg.local_ssh, &ss, &sslen) != 0 ||
	    (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("LocalSSH %s: cannot create a socket", b->g->cfg.local_ssh);
		ssh_message_reply_default(msg);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 && errno != EINPROGRESS) {
		log_warn("LocalSSH %s: cannot connect (is sshd running?)", b->g->cfg.local_ssh);
		close(fd);
		ssh_message_reply_default(msg);
		return;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		close(fd);
		ssh_message_reply_default(msg);
		return;
	}
	if ((ch = ssh_message_channel_request_open_reply_accept(msg)) == NULL) {
		log_warnx("broker: cannot accept a forwarded channel: %s", ssh_get_error(b->ssh));
		close(fd);
		free(f);
		return;
	}
	f->b = b;
	if ((f->pump = pump_new_socket(b->g->base, ch, fd, gbroker_fwd_done, f)) == NULL) {
		ssh_channel_close(ch);
		ssh_channel_free(ch);
		close(fd);
		free(f);
		return;
	}
	pump_set_kick(f->pump, gbroker_kick, b);
	TAILQ_INSERT_TAIL(&b->fwds, f, entry);
	b->nfwds++;
	log_info("forwarded connection from %s:%d to LocalSSH %s",
		 ssh_message_channel_request_open_originator(msg) ?
			 ssh_message_channel_request_open_originator(msg) :
			 "?",
		 ssh_message_channel_request_open_originator_port(msg), b->g->cfg.local_ssh);
}

static void
gbroker_message(struct gbroker *b, ssh_message msg)
{
	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN &&
	    ssh_message_subtype(msg) == SSH_CHANNEL_FORWARDED_TCPIP) {
		gbroker_forwarded(b, msg);
		return;
	}
	/* Nothing else may be opened or requested towards the workspace. */
	log_debug("broker: refused message type %d/%d", ssh_message_type(msg),
		  ssh_message_subtype(msg));
	ssh_message_reply_default(msg);
}

/* One decoded control message. Returns -1 (with err) if it is malformed. */
static int
gbroker_ctl_message(struct gbroker *b, enum ctl_type type, json_t *body, char *err, size_t errlen)
{
	struct guestd *g = b->g;
	struct ctl_attach a;
	struct ctl_end e;
	struct gsession *s;
	int64_t upto;

	switch (type) {
	case CTL_AUDIT_ACK:
		if (ctl_audit_ack_from_json(body, &upto, err, errlen) != 0)
			return -1;
		gbroker_audit_ack(b, upto);
		return 0;
	case CTL_SESSION_ATTACH:
		if (ctl_attach_from_json(body, &a, err, errlen) != 0)
			return -1;
		if (gsessions_attach(&g->sessions, &a, guestd_now()) == NULL)
			log_warnx("session %s of %s not attached: already expired, bound to "
				  "another user or key, or out of memory",
				  a.session, a.user);
		else
			log_info("session %s of %s attached (key %s, profile %s, %zu corporate "
				 "services%s)",
				 a.session, a.user, a.key_fp, a.profile, a.ncorp,
				 a.tunnel_token != NULL ? ", tunnel" : "");
		ctl_attach_clear(&a);
		return 0;
	case CTL_SESSION_END:
		if (ctl_end_from_json(body, &e, err, errlen) != 0)
			return -1;
		TAILQ_FOREACH(s, &g->sessions.list, entry)
			if (strcmp(s->id, e.session) == 0)
				break;
		if (s != NULL)
			gsessions_end(s, e.reason);
		else
			log_debug("session %s ended: not attached here", e.session);
		ctl_end_clear(&e);
		return 0;
	default:
		/* guestd → broker types echoed back: not for us, ignored (forward compat) */
		log_debug("broker: ignored control message type %d", (int)type);
		return 0;
	}
}

/* Reads and handles control-channel input. Returns NULL or why the link must drop. */
static const char *
gbroker_read_ctl(struct gbroker *b, char *why, size_t whylen)
{
	enum ctl_type type;
	json_t *body;
	size_t consumed;
	char err[256];
	int n, rc;

	for (;;) {
		n = ssh_channel_read_nonblocking(b->ctl, b->in + b->inlen,
						 (uint32_t)(sizeof(b->in) - b->inlen), 0);
		if (n == SSH_ERROR)
			return "control channel read error";
		if (n == SSH_EOF ||
		    (n == 0 && (ssh_channel_is_eof(b->ctl) || ssh_channel_is_closed(b->ctl))))
			return "the broker closed the control channel";
		if (n == 0)
			return NULL;
		b->inlen += (size_t)n;
		while ((rc = ctl_decode(b->in, b->inlen, &consumed, &type, &body, err,
					sizeof(err))) == 0) {
			rc = gbroker_ctl_message(b, type, body, err, sizeof(err));
			json_decref(body);
			if (rc != 0)
				break;
			memmove(b->in, b->in + consumed, b->inlen - consumed);
			b->inlen -= consumed;
			if (b->ssh == NULL)
				return NULL;
		}
		if (rc < 0) {
			snprintf(why, whylen, "malformed control message: %s", err);
			return why;
		}
	}
}

static void
gbroker_up(struct gbroker *b)
{
	struct timeval tv = { (time_t)b->g->cfg.keepalive, 0 };

	b->state = GB_UP;
	b->up_since = guestd_now();
	log_info("connected to the broker %s:%d as %s: reverse forward %s:22 to %s", b->host,
		 b->port, b->user, b->g->cfg.workspace_name, b->g->cfg.local_ssh);
	evtimer_add(b->ev_keepalive, &tv);
	/* audit_ack: we number our events and wait for the broker's CTL_AUDIT_ACK */
	if (gbroker_send(b, CTL_HELLO,
			 json_pack("{s:s, s:s, s:b}", "workspace", b->g->cfg.workspace_name,
				   "version", SAW_VERSION, "audit_ack", b->spool != NULL)) != 0)
		log_warnx("broker: cannot send hello");
	/* Our view after a reconnect: the broker answers END for what it no longer has. */
	gbroker_send_state(b);
	if (b->alen > 0)
		log_info("broker: sending %zu audit event(s) queued while offline", b->alen);
	gbroker_audit_flush(b);
}

/* Setup steps; each may need several turns. Returns NULL or why the link must drop. */
static const char *
gbroker_setup(struct gbroker *b, char *why, size_t whylen)
{
	int rc;

	switch (b->state) {
	case GB_FORWARD:
		rc = ssh_channel_listen_forward(b->ssh, b->g->cfg.workspace_name, 22, NULL);
		if (rc == SSH_AGAIN)
			return NULL;
		if (rc != SSH_OK) {
			snprintf(why, whylen,
				 "the broker refused the reverse forward for %s (%s): is the "
				 "workspace registered (sawctl workspace add)?",
				 b->g->cfg.workspace_name, ssh_get_error(b->ssh));
			return why;
		}
		b->state = GB_CTL_OPEN;
		/* FALLTHROUGH */
	case GB_CTL_OPEN:
		if (b->ctl == NULL && (b->ctl = ssh_channel_new(b->ssh)) == NULL)
			return "out of memory";
		rc = ssh_channel_open_session(b->ctl);
		if (rc == SSH_AGAIN)
			return NULL;
		if (rc != SSH_OK) {
			snprintf(why, whylen, "the broker refused the control channel: %s",
				 ssh_get_error(b->ssh));
			return why;
		}
		b->state = GB_CTL_SUBSYS;
		/* FALLTHROUGH */
	case GB_CTL_SUBSYS:
		rc = ssh_channel_request_subsystem(b->ctl, CTL_SUBSYSTEM);
		if (rc == SSH_AGAIN)
			return NULL;
		if (rc != SSH_OK) {
			snprintf(why, whylen, "the broker refused the %s subsystem: %s",
				 CTL_SUBSYSTEM, ssh_get_error(b->ssh));
			return why;
		}
		gbroker_up(b);
		return NULL;
	default:
		return NULL;
	}
}

static void
gbroker_step(struct gbroker *b)
{
	struct gfwd *f, *next;
	ssh_message msg;
	const char *why = NULL;
	char buf[512];
	int n;

	if (b->ssh == NULL)
		return;
	if (b->state != GB_UP)
		why = gbroker_setup(b, buf, sizeof(buf));
	for (n = 0; why == NULL && n < GBROKER_MAX_MESSAGES_PER_TURN; n++) {
		if ((msg = ssh_message_get(b->ssh)) == NULL)
			break;
		gbroker_message(b, msg);
		ssh_message_free(msg);
	}
	if (n == GBROKER_MAX_MESSAGES_PER_TURN)
		event_active(b->ev_read, EV_READ, 0);
	if (why == NULL && b->state == GB_UP) {
		why = gbroker_read_ctl(b, buf, sizeof(buf));
		if (why == NULL && gbroker_flush_ctl(b) != 0)
			why = "control channel write error";
	}
	for (f = TAILQ_FIRST(&b->fwds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		pump_run(f->pump); /* may free f */
	}
	if (why == NULL && (ssh_get_status(b->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		why = ssh_get_error(b->ssh)[0] != '\0' ? ssh_get_error(b->ssh) :
							 "the broker closed the connection";
	if (why != NULL) {
		snprintf(buf, sizeof(buf), "%s", why); /* why may point into the session */
		gbroker_lost(b, buf);
		return;
	}
	gbroker_arm(b);
}

static void
gbroker_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;

	if (what & EV_READ)
		b->last_rx = guestd_now();
	gbroker_step(b);
}

static void
gbroker_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gbroker *b = arg;
	struct timeval tv = { (time_t)b->g->cfg.keepalive, 0 };
	int64_t now = guestd_now();
	char why[128];

	if (b->ssh == NULL)
		return;
	if (now - b->last_rx >= GBROKER_DEAD_INTERVALS * b->g->cfg.keepalive) {
		snprintf(why, sizeof(why), "no answer for %llds: connection presumed dead",
			 (long long)(now - b->last_rx));
		gbroker_lost(b, why);
		return;
	}
	evtimer_add(b->ev_keepalive, &tv);
	if (b->state == GB_UP) {
		/* libssh 0.10 keeps a global request's reply state until the next global
		 * request collects it: the first call collects the previous keepalive's reply,
		 * the second sends a new one (or, if the previous is still unanswered, neither
		 * sends: the dead-peer check above covers that). */
		ssh_send_keepalive(b->ssh);
		ssh_send_keepalive(b->ssh);
		if (now - b->last_state >= GBROKER_STATE_EVERY)
			gbroker_send_state(b);
	}
	gbroker_step(b);
}

static void
gbroker_connected_cb(ssh_session s, const char *error, void *arg)
{
	struct gbroker *b = arg;
	evutil_socket_t fd;
	struct timeval tv = { (time_t)b->g->cfg.keepalive, 0 };

	b->attempt = NULL;
	if (s == NULL) {
		gbroker_lost(b, error);
		return;
	}
	b->ssh = s;
	fd = ssh_get_fd(s);
	b->ev_read = event_new(b->g->base, fd, EV_READ | EV_PERSIST, gbroker_io_cb, b);
	b->ev_write = event_new(b->g->base, fd, EV_WRITE, gbroker_io_cb, b);
	if (b->ev_read == NULL || b->ev_write == NULL) {
		gbroker_lost(b, "out of memory");
		return;
	}
	event_add(b->ev_read, NULL);
	/* the keepalive timer also bounds the setup steps (dead-peer check) */
	evtimer_add(b->ev_keepalive, &tv);
	b->last_rx = guestd_now();
	b->state = GB_FORWARD;
	log_debug("broker %s:%d: authenticated as %s", b->host, b->port, b->user);
	gbroker_step(b);
}

static void
gbroker_dial(struct gbroker *b)
{
	struct sshc_params p;

	memset(&p, 0, sizeof(p));
	p.host = b->host;
	p.port = b->port;
	p.user = b->user;
	p.key_path = b->g->cfg.workspace_key;
	p.pinned_key = b->g->cfg.broker_host_key;
	p.timeout_s = GBROKER_CONNECT_TIMEOUT;
	b->state = GB_DIALING;
	log_debug("dialing the broker %s:%d", b->host, b->port);
	if ((b->attempt = sshc_connect(b->g->base, &p, gbroker_connected_cb, b)) == NULL)
		gbroker_lost(b, "cannot start a connection attempt");
}

static void
gbroker_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	gbroker_dial(arg);
}

static int
gbroker_row_exists(const struct spool_row *row, void *arg)
{
	return 1;
}

/* The seq of a row (0 if it has none): rows are ctl_audit_to_json(), {"seq":N,... */
static int
gbroker_seq_of_row(const struct spool_row *row, void *arg)
{
	int64_t *seq = arg;
	const char *p = row->event;
	char *end;
	long long v;

	*seq = 0;
	if (row->damaged || row->len < 8 || memcmp(p, "{\"seq\":", 7) != 0)
		return 1;
	v = strtoll(p + 7, &end, 10);
	if (end > p + 7 && (size_t)(end - p) < row->len && v > 0 && v <= CTL_SEQ_MAX)
		*seq = (int64_t)v;
	return 1;
}

/* The highest seq in the spool (0 if none or unreadable): found by a binary search on row
 * ids (spool_peek(after, 1) is an indexed lookup), not by reading every row. */
static int64_t
gbroker_spool_last_seq(struct spool *sp)
{
	long long lo = 0, hi = 1, mid;
	int64_t seq = 0;

	if (spool_rows(sp) == 0 || spool_peek(sp, 0, 1, 0, gbroker_row_exists, NULL) != 1)
		return 0;
	/* lo: an id after which a row exists; hi: one after which none does */
	while (hi < ((long long)1 << 62) && spool_peek(sp, hi, 1, 0, gbroker_row_exists, NULL) == 1)
		lo = hi, hi *= 2;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (spool_peek(sp, mid, 1, 0, gbroker_row_exists, NULL) == 1)
			lo = mid;
		else
			hi = mid;
	}
	/* the last row is the first after lo */
	if (spool_peek(sp, lo, 1, 0, gbroker_seq_of_row, &seq) != 1)
		return 0;
	return seq;
}

/* AuditSpool: opened at start. Returns 0 (also when the default's directory is missing:
 * then events wait in memory), or -1 with the reason logged. */
static int
gbroker_spool_open(struct gbroker *b)
{
	const struct guestd_config *cfg = &b->g->cfg;
	char err[512], dir[1024], *slash;
	struct stat sb;

	if (cfg->audit_spool == NULL || strcmp(cfg->audit_spool, "none") == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", cfg->audit_spool);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (strcmp(cfg->audit_spool, GUESTD_DEFAULT_AUDIT_SPOOL) == 0 && stat(dir, &sb) != 0) {
		log_warnx("AuditSpool %s: directory %s does not exist: audit events wait in "
			  "memory while the broker is unreachable (at most %d; create the "
			  "directory, or set AuditSpool, to keep them across restarts)",
			  cfg->audit_spool, dir, GBROKER_AUDIT_QUEUE);
		return 0;
	}
	if ((b->spool_path = strdup(cfg->audit_spool)) == NULL)
		return -1;
	if ((b->spool = spool_open(cfg->audit_spool, cfg->audit_spool_max, err, sizeof(err))) ==
	    NULL) {
		log_warnx("AuditSpool %s: %s", cfg->audit_spool, err);
		return -1;
	}
	if ((b->syncer = syncer_new(b->g->base, gbroker_sync_done, b)) == NULL ||
	    (b->ev_sync = evtimer_new(b->g->base, gbroker_sync_cb, b)) == NULL ||
	    (b->inflight = calloc(GBROKER_INFLIGHT_MAX, sizeof(*b->inflight))) == NULL ||
	    (b->fresh = calloc(GBROKER_FRESH_MAX, sizeof(*b->fresh))) == NULL) {
		log_warnx("AuditSpool %s: out of memory or no thread for the sync",
			  cfg->audit_spool);
		return -1;
	}
	b->last_seq = gbroker_spool_last_seq(b->spool);
	if (spool_rows(b->spool) > 0)
		log_info("audit spool %s holds %lld event(s) not yet acknowledged by the broker "
			 "(up to #%lld); they are sent first",
			 cfg->audit_spool, spool_rows(b->spool), (long long)b->last_seq);
	return 0;
}

int
gbroker_start(struct guestd *g)
{
	struct gbroker *b;
	unsigned int port;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	b->g = g;
	b->broker_upto = -1;
	TAILQ_INIT(&b->fwds);
	if (conf_address_split(g->cfg.broker_address, b->host, sizeof(b->host), &port) != 0) {
		free(b);
		return -1;
	}
	b->port = (int)port;
	snprintf(b->user, sizeof(b->user), "workspace:%s", g->cfg.workspace_name);
	b->ev_keepalive = evtimer_new(g->base, gbroker_keepalive_cb, b);
	b->ev_retry = evtimer_new(g->base, gbroker_retry_cb, b);
	b->ev_state = evtimer_new(g->base, gbroker_state_cb, b);
	b->ev_flush = event_new(g->base, -1, 0, gbroker_flush_cb, b);
	b->ev_send = evtimer_new(g->base, gbroker_send_cb, b);
	b->out = evbuffer_new();
	if (gbroker_spool_open(b) != 0 ||
	    (b->spool == NULL && (b->aq = calloc(GBROKER_AUDIT_QUEUE, sizeof(*b->aq))) == NULL) ||
	    b->ev_keepalive == NULL || b->ev_retry == NULL || b->ev_state == NULL ||
	    b->ev_flush == NULL || b->ev_send == NULL || b->out == NULL) {
		g->broker = b;
		gbroker_stop(g);
		return -1;
	}
	g->broker = b;
	gbroker_dial(b);
	return 0;
}

void
gbroker_stop(struct guestd *g)
{
	struct gbroker *b = g->broker;
	struct gfwd *f;

	if (b == NULL)
		return;
	sshc_cancel(b->attempt);
	if (b->ssh != NULL) {
		/* what this turn queued (ev_flush has not run): without a spool, its only copy */
		if (b->state == GB_UP)
			gbroker_audit_flush(b);
		event_free(b->ev_read);
		event_free(b->ev_write);
		while ((f = TAILQ_FIRST(&b->fwds)) != NULL)
			gbroker_fwd_free(f);
		ssh_disconnect(b->ssh);
		ssh_free(b->ssh);
	}
	if (b->ev_keepalive)
		event_free(b->ev_keepalive);
	if (b->ev_retry)
		event_free(b->ev_retry);
	if (b->ev_state)
		event_free(b->ev_state);
	if (b->ev_flush)
		event_free(b->ev_flush);
	if (b->ev_send)
		event_free(b->ev_send);
	if (b->out)
		evbuffer_free(b->out);
	if (b->aq != NULL) {
		for (; b->alen > 0; b->alen--) {
			json_decref(b->aq[b->ahead]);
			b->ahead = (b->ahead + 1) % GBROKER_AUDIT_QUEUE;
		}
		free(b->aq);
	}
	syncer_free(b->syncer); /* waits for a sync in flight */
	if (b->ev_sync != NULL)
		event_free(b->ev_sync);
	if (b->spool != NULL) {
		spool_sync(b->spool);
		if (spool_rows(b->spool) > 0)
			log_info("audit spool %s keeps %lld event(s) for the broker", b->spool_path,
				 spool_rows(b->spool));
		spool_close(b->spool);
	}
	if (b->fresh != NULL)
		gbroker_fresh_clear(b);
	free(b->fresh);
	free(b->inflight);
	free(b->spool_path);
	free(b);
	g->broker = NULL;
}
