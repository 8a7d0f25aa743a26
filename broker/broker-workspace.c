/*
 * Workspaces on the broker side (ARCHITECTURE Flow 1 step 5, Flow 2).
 *
 * A workspace's guestd dials the broker as user "workspace:NAME" with the workspace's own
 * registered key (nothing else gets it in), asks for the reverse forward (tcpip-forward) and
 * opens the control channel (a session channel with the saw-control@saw subsystem). From
 * then on the workspace is online: users' direct-tcpip to NAME:22 are carried over this
 * connection (broker-route.c), and the broker tells guestd which brokered sessions are
 * attached to it (CTL_SESSION_ATTACH / CTL_SESSION_END, tunnel/ctl.h).
 *
 * Attachments live on the broker, not on the connection: when guestd reconnects (restart,
 * network blip) every live attachment is sent again, with a fresh tunnel credential.
 *
 * Per-session tunnel: each attachment carries a single-use random token. guestd dials a
 * second connection as "tunnel:SESSION" with the workspace key and the token as password;
 * that connection is attached to the live session, so it ends with the session.
 *
 * guestd's audit events (CTL_AUDIT, issue #6) are numbered (seq). Per workspace name the
 * broker keeps the highest seq handed to audit_emit() ("taken": a resend at or below it is
 * a duplicate, dropped) and the highest acknowledged ("durable": taken while the pipeline
 * was healthy, i.e. every sink made it durable). CTL_AUDIT_ACK {upto: durable} goes after
 * each batch of input, and first right after HELLO; while the pipeline is unhealthy no
 * acknowledgement goes and the control channel is not read (guestd keeps the events).
 * Intake is rate limited per workspace (token bucket, WorkspaceAuditRate/Burst): an empty
 * bucket stops reading the control channel until it refills, so SSH flow control pushes
 * back on guestd, whose spool holds the events; nothing is dropped.
 *
 * The durable mark is also the workspace's audit_seq in the session store: after each batch
 * the mark goes to the store (one UPDATE) and only then into a CTL_AUDIT_ACK, so a broker
 * restarted after a crash still drops what it had acknowledged, or had written and was
 * about to acknowledge: guestd resends what it has no ACK for. What the store cannot
 * record is not acknowledged (retried, the channel paused meanwhile). The one window left
 * is a crash between a batch's write(2)s to the audit pipeline and the UPDATE right after
 * them: that batch is written again after the restart (metadata.uid tells the copies
 * apart). A workspace removed forgets its mark; registered again it is a new guestd and
 * starts from 0 (a new row). A seq more than CTL_AUDIT_SEQ_SKEW_US ahead of our clock is
 * refused as malformed: guestd numbers by its wall clock in µs, and a mark pushed near the
 * maximum would make the broker drop every later event of the workspace as a resend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-store.h"
#include "broker/broker.h"
#include "tunnel/ctl.h"

#define WS_PREFIX "workspace:"
#define TUNNEL_PREFIX "tunnel:"
#define WS_CTL_RX_MAX (2 * CTL_MAX_FRAME)
#define WS_CTL_TX_MAX (1024 * 1024)
#define TOKEN_BYTES 32
#define WS_AUDIT_RETRY_MS 100	  /* unhealthy pipeline: look again this often */
#define WS_AUDIT_SUMMARY_EVERY 60 /* seconds between rate-limit summaries */

/* What the broker holds of a workspace's numbered audit events (survives reconnects). */
struct ws_audit_mark {
	struct ws_audit_mark *next;
	char ws[64];
	int64_t taken;	 /* highest seq handed to audit_emit() */
	int64_t durable; /* highest seq acknowledged as durable */
};

struct workspace {
	struct workspace *next;
	struct broker *broker;
	char *name;
	char *profile;
	char *owner_sub;
	struct conn *conn;
	ssh_channel ctl;	 /* control channel, once the subsystem was requested */
	ssh_channel ctl_pending; /* session channel opened, subsystem not yet asked */
	bool forward_ok;	 /* tcpip-forward accepted */
	bool hello;		 /* CTL_HELLO received */
	struct evbuffer *rx;
	struct evbuffer *tx;
	struct event *ev_keepalive;
	/* Bytes libssh received on this connection: it also reads the socket while serving
	 * other connections' routes, where no event of ours sees it (see broker-route.c). */
	struct ssh_counter_struct rx_counter;
	size_t rx_seen;
	/* CTL_AUDIT intake */
	struct ws_audit_mark *mark;
	bool audit_ack;	   /* HELLO asked for CTL_AUDIT_ACK */
	int64_t acked;	   /* last upto sent on this connection; -1: none */
	bool paused;	   /* the control channel is not read (rate limit, unhealthy) */
	bool unhealthy;	   /* paused until audit_healthy() */
	bool store_failed; /* paused until the store records the mark */
	double tokens;	   /* token bucket: WorkspaceAuditRate, WorkspaceAuditBurst */
	struct timespec refilled;
	struct event *ev_audit;			   /* ends a pause */
	unsigned long long pauses, admitted, dups; /* since the last summary */
	int64_t summary_at;
	bool online_audited; /* Network Activity Open emitted: Close follows */
};

/* A live session attached to a workspace (survives guestd reconnects). */
struct attachment {
	struct attachment *next;
	char ws[64];
	char session[STORE_ID_LEN + 1];
};

struct tunnel_token {
	struct tunnel_token *next;
	char token[2 * TOKEN_BYTES + 1];
	char session[STORE_ID_LEN + 1];
	char ws[64];
	int64_t expires;
};

static void workspace_send_attachments(struct workspace *w);
static int workspace_send(struct workspace *w, enum ctl_type type, json_t *body);
static void workspace_ctl_flush(struct workspace *w);

/* ---- authentication ------------------------------------------------------------------ */

int
workspace_auth_key(struct broker *b, const char *user, const char *key_fp, char **ws_name)
{
	struct store_workspace w;
	const char *name;
	int rc, ok = 0;

	memset(&w, 0, sizeof(w));
	if (strncmp(user, WS_PREFIX, strlen(WS_PREFIX)) == 0)
		name = user + strlen(WS_PREFIX);
	else if (strncmp(user, TUNNEL_PREFIX, strlen(TUNNEL_PREFIX)) == 0)
		name = NULL; /* the token names the workspace; the key must be a workspace's */
	else
		return -1;
	rc = store_workspace_find_by_key(b->store, key_fp, &w);
	if (rc != 0)
		return -1;
	if (w.killed)
		ok = 0;
	else if (name == NULL || strcmp(name, w.name) == 0)
		ok = 1;
	if (ok && (*ws_name = strdup(w.name)) == NULL)
		ok = 0;
	store_workspace_clear(&w);
	return ok ? 0 : -1;
}

int
workspace_auth_token(struct broker *b, const char *user, const char *ws_name, const char *token,
		     char **session_id)
{
	struct tunnel_token **pp, *t;
	const char *sid = user + strlen(TUNNEL_PREFIX);
	int64_t now = broker_now();

	if (strncmp(user, TUNNEL_PREFIX, strlen(TUNNEL_PREFIX)) != 0 || token == NULL)
		return -1;
	for (pp = &b->tokens; (t = *pp) != NULL; pp = &t->next) {
		if (strcmp(t->session, sid) != 0 || strcmp(t->ws, ws_name) != 0)
			continue;
		if (t->expires < now || strlen(token) != strlen(t->token) ||
		    CRYPTO_memcmp(token, t->token, strlen(t->token)) != 0)
			continue;
		/* Single use. */
		*pp = t->next;
		explicit_bzero(t, sizeof(*t));
		free(t);
		if ((*session_id = strdup(sid)) == NULL)
			return -1;
		return 0;
	}
	return -1;
}

static char *
workspace_new_token(struct broker *b, const char *session, const char *ws, int64_t expires)
{
	unsigned char raw[TOKEN_BYTES];
	struct tunnel_token *t, **pp;
	size_t i;

	/* Drop this session's older unused token for the same workspace. */
	for (pp = &b->tokens; (t = *pp) != NULL;) {
		if ((strcmp(t->session, session) == 0 && strcmp(t->ws, ws) == 0) ||
		    t->expires < broker_now()) {
			*pp = t->next;
			explicit_bzero(t, sizeof(*t));
			free(t);
		} else {
			pp = &t->next;
		}
	}
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	for (i = 0; i < sizeof(raw); i++)
		snprintf(t->token + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	snprintf(t->session, sizeof(t->session), "%s", session);
	snprintf(t->ws, sizeof(t->ws), "%s", ws);
	t->expires = expires;
	t->next = b->tokens;
	b->tokens = t;
	return t->token;
}

/* ---- audit marks, rate limit, online/offline events ---------------------------------- */

/*
 * The mark of workspace name, loaded from the store the first time. durable only advances
 * once the store has recorded it, so a store value that differs from ours means the row
 * was made again (workspace removed and registered again, database put back): the store
 * wins. Returns NULL (logged) on a database error or out of memory.
 */
static struct ws_audit_mark *
workspace_mark(struct broker *b, const char *name)
{
	struct ws_audit_mark *m;
	int64_t stored = 0;

	if (store_workspace_audit_seq_get(b->store, name, &stored) != 0) {
		log_warnx("workspace %s: cannot read its audit mark from the session database",
			  name);
		return NULL;
	}
	for (m = b->audit_marks; m != NULL; m = m->next)
		if (strcmp(m->ws, name) == 0)
			break;
	if (m == NULL) {
		if ((m = calloc(1, sizeof(*m))) == NULL)
			return NULL;
		snprintf(m->ws, sizeof(m->ws), "%s", name);
		m->taken = m->durable = stored;
		m->next = b->audit_marks;
		b->audit_marks = m;
		if (stored > 0)
			log_debug("workspace %s: audit events up to #%lld already written", name,
				  (long long)stored);
		return m;
	}
	if (stored != m->durable) {
		log_info("workspace %s: audit mark #%lld in the session database, #%lld here: "
			 "the workspace was registered again; its new guestd's events count from "
			 "the database's mark",
			 name, (long long)stored, (long long)m->durable);
		m->taken = m->durable = stored;
	}
	return m;
}

/* A workspace removed: no session stays attached to it, no tunnel token for it stays valid. */
static void
workspace_attachments_forget(struct broker *b, const char *name)
{
	struct attachment **pp, *at;
	struct tunnel_token **tp, *t;

	for (pp = &b->attachments; (at = *pp) != NULL;) {
		if (strcmp(at->ws, name) == 0) {
			*pp = at->next;
			free(at);
		} else
			pp = &at->next;
	}
	for (tp = &b->tokens; (t = *tp) != NULL;) {
		if (strcmp(t->ws, name) == 0) {
			*tp = t->next;
			explicit_bzero(t, sizeof(*t));
			free(t);
		} else
			tp = &t->next;
	}
}

/* A workspace removed: one registered again under its name is a new guestd. */
static void
workspace_mark_forget(struct broker *b, const char *name)
{
	struct ws_audit_mark **pp, *m;
	struct workspace *w;

	for (pp = &b->audit_marks; (m = *pp) != NULL; pp = &m->next) {
		if (strcmp(m->ws, name) != 0)
			continue;
		for (w = b->workspaces; w != NULL; w = w->next)
			if (w->mark == m)
				w->mark = NULL;
		*pp = m->next;
		free(m);
		return;
	}
}

static int64_t
workspace_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
workspace_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One event's worth of the bucket. Returns false when it is empty. */
static bool
workspace_audit_admit(struct workspace *w)
{
	const struct broker_config *cfg = &w->broker->cfg;
	double now = workspace_mono(), then;

	then = (double)w->refilled.tv_sec + (double)w->refilled.tv_nsec / 1e9;
	w->tokens += (now - then) * cfg->workspace_audit_rate;
	if (w->tokens > cfg->workspace_audit_burst)
		w->tokens = cfg->workspace_audit_burst;
	clock_gettime(CLOCK_MONOTONIC, &w->refilled);
	if (w->tokens < 1.0)
		return false;
	w->tokens -= 1.0;
	w->admitted++;
	return true;
}

static void
workspace_audit_summary(struct workspace *w, bool force)
{
	int64_t now = broker_now();

	if (w->pauses == 0 && w->dups == 0)
		return;
	if (!force && now - w->summary_at < WS_AUDIT_SUMMARY_EVERY)
		return;
	log_warnx("workspace %s: audit intake in the last %llds: %llu event(s) taken, %llu "
		  "pause(s) at WorkspaceAuditRate %d/s (burst %d), %llu duplicate(s) dropped",
		  w->name, (long long)(now - w->summary_at), w->admitted, w->pauses,
		  w->broker->cfg.workspace_audit_rate, w->broker->cfg.workspace_audit_burst,
		  w->dups);
	w->summary_at = now;
	w->pauses = w->admitted = w->dups = 0;
}

/* Stops reading the control channel for ms (rate limit) or until the pipeline recovers. */
static void
workspace_audit_pause(struct workspace *w, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	w->paused = true;
	if (!evtimer_pending(w->ev_audit, NULL))
		evtimer_add(w->ev_audit, &tv);
}

static void
workspace_audit_throttle(struct workspace *w)
{
	const struct broker_config *cfg = &w->broker->cfg;
	double want = cfg->workspace_audit_rate / 10.0, wait;

	/* wait for a tenth of a second's worth (or the whole bucket, if smaller), not for one
	 * token: one wake-up per event would cost more than the events */
	if (want > cfg->workspace_audit_burst)
		want = cfg->workspace_audit_burst;
	if (want < 1.0)
		want = 1.0;
	wait = (want - w->tokens) / cfg->workspace_audit_rate;
	if (w->pauses++ == 0 && w->summary_at == 0) {
		log_warnx("workspace %s: audit events above WorkspaceAuditRate %d/s (burst %d): "
			  "its control channel is read more slowly (guestd keeps the events)",
			  w->name, cfg->workspace_audit_rate, cfg->workspace_audit_burst);
		w->summary_at = broker_now();
	}
	workspace_audit_pause(w, (long)(wait * 1000) + 1);
}

/*
 * Records the taken mark in the session store, which makes it durable: only a recorded mark
 * is acknowledged, so that what guestd deletes is what a restarted broker still drops.
 * Returns 0, or -1 (logged once per failure spell).
 */
static int
workspace_audit_record(struct workspace *w)
{
	struct ws_audit_mark *m = w->mark;
	int rc = store_workspace_audit_seq_set(w->broker->store, m->ws, m->taken);

	if (rc != 0) {
		if (!w->store_failed)
			log_warnx(
				"workspace %s: cannot record its audit mark #%lld in the session "
				"database%s: its events are not acknowledged until it can (guestd "
				"keeps them)",
				w->name, (long long)m->taken,
				rc == 1 ? " (the workspace is no longer registered)" : "");
		w->store_failed = true;
		return -1;
	}
	if (w->store_failed)
		log_info("workspace %s: audit mark recorded again; acknowledging its events",
			 w->name);
	w->store_failed = false;
	m->durable = m->taken;
	return 0;
}

/* Acknowledges what is durable: everything taken, once the pipeline is healthy and the
 * store has recorded the mark. */
static void
workspace_audit_settle(struct workspace *w, bool force)
{
	struct ws_audit_mark *m = w->mark;

	if (m == NULL)
		return;
	if (m->taken > m->durable) {
		if (!audit_healthy(w->broker->audit)) {
			if (!w->unhealthy)
				log_warnx("workspace %s: the audit pipeline cannot make events "
					  "durable now: its audit events wait in guestd until it "
					  "recovers",
					  w->name);
			w->unhealthy = true;
			workspace_audit_pause(w, WS_AUDIT_RETRY_MS);
			return;
		}
		if (workspace_audit_record(w) != 0) {
			workspace_audit_pause(w, WS_AUDIT_RETRY_MS);
			return;
		}
	}
	if (w->unhealthy)
		log_info("workspace %s: the audit pipeline recovered; taking its events again",
			 w->name);
	w->unhealthy = false;
	if (w->audit_ack && (force || m->durable > w->acked)) {
		if (workspace_send(w, CTL_AUDIT_ACK, ctl_audit_ack_to_json(m->durable)) == 0)
			w->acked = m->durable;
	}
}

static void
workspace_audit_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workspace *w = arg;

	if (w->unhealthy || w->store_failed) {
		workspace_audit_settle(w, false);
		if (w->unhealthy || w->store_failed)
			return; /* settle re-armed the timer */
		workspace_ctl_flush(w);
	}
	w->paused = false;
	workspace_audit_summary(w, false);
	/* a whole turn of the connection: libssh may read the socket for other channels
	 * while we read ours, and their routes must run then too (broker-conn.c) */
	event_active(w->conn->ev_read, EV_READ, 0);
}

/* Network Activity (4001) Open/Close: the workspace's control channel up or down. */
static void
workspace_audit_link(struct workspace *w, bool up, const char *detail)
{
	struct conn *c = w->conn;
	struct ocsf_endpoint src = { .ip = c->src_ip, .port = c->src_port, .hostname = w->name };
	struct ocsf_endpoint dst = { .ip = c->dst_ip,
				     .port = c->dst_port,
				     .svc_name = "saw-control" };
	json_t *ev, *unmapped;
	char msg[256];

	snprintf(msg, sizeof(msg), "workspace %s %s (saw-guestd control channel %s)", w->name,
		 up ? "online" : "offline", up ? "open" : "closed");
	ev = ocsf_network_activity(up ? OCSF_NET_OPEN : OCSF_NET_CLOSE, NULL, &src, &dst, detail,
				   msg, ocsf_now_ms());
	if (ev == NULL)
		return;
	unmapped = json_object_get(ev, "unmapped");
	if (!json_is_object(unmapped)) {
		unmapped = json_object();
		if (json_object_set_new(ev, "unmapped", unmapped) != 0)
			unmapped = NULL;
	}
	if (unmapped != NULL)
		json_object_set_new(unmapped, "workspace", json_string(w->name));
	if (audit_emit(w->broker->audit, ev) != 0)
		log_warnx("workspace %s: %s event not written yet (kept for retry)", w->name,
			  up ? "online" : "offline");
}

/* ---- online records ------------------------------------------------------------------ */

struct workspace *
workspace_online(struct broker *b, const char *name)
{
	struct workspace *w;

	for (w = b->workspaces; w != NULL; w = w->next)
		if (strcmp(w->name, name) == 0 && w->forward_ok)
			return w;
	return NULL;
}

struct conn *
workspace_conn(struct workspace *w)
{
	return w->conn;
}

bool
workspace_is_online(struct broker *b, const char *name)
{
	return workspace_online(b, name) != NULL;
}

void
workspace_disconnect(struct broker *b, const char *name, const char *reason)
{
	struct workspace *w;
	struct store_workspace row;

	for (w = b->workspaces; w != NULL; w = w->next) {
		if (strcmp(w->name, name) == 0) {
			conn_close(w->conn, reason);
			break; /* conn_close unlinked w */
		}
	}
	/* removed rather than killed: its audit mark, the sessions attached to it and their
	 * tunnel tokens go with it (a workspace registered again under the name may belong to
	 * someone else; its owner's sessions attach anew) */
	memset(&row, 0, sizeof(row));
	if (store_workspace_get(b->store, name, &row) == 1) {
		workspace_mark_forget(b, name);
		workspace_attachments_forget(b, name);
	}
	store_workspace_clear(&row);
}

static void
workspace_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workspace *w = arg;
	struct conn *c = w->conn;
	long long ka = w->broker->cfg.workspace_keepalive;

	if (w->rx_counter.in_bytes != w->rx_seen) {
		w->rx_seen = w->rx_counter.in_bytes;
		c->last_rx = broker_now();
	}
	if (broker_now() - c->last_rx > 3 * ka) {
		log_warnx("workspace %s: no answer for %llds, dropping its connection", w->name,
			  3 * ka);
		conn_close(c, "No keepalive answer from the workspace.");
		return;
	}
	/* Our own keepalive makes guestd answer, so a healthy link always has traffic. */
	ssh_send_keepalive(c->ssh);
	conn_flush(c);
}

void
workspace_conn_open(struct conn *c)
{
	struct broker *b = c->broker;
	struct workspace *w, *old;
	struct store_workspace row;
	struct timeval tv = { b->cfg.workspace_keepalive, 0 };

	memset(&row, 0, sizeof(row));
	if (store_workspace_get(b->store, c->ws_name, &row) != 0) {
		conn_close(c, "This workspace is not registered.");
		return;
	}
	/* A newer connection of the same workspace replaces the old one. */
	for (old = b->workspaces; old != NULL; old = old->next) {
		if (strcmp(old->name, c->ws_name) == 0) {
			log_info("workspace %s: new connection replaces the old one", old->name);
			conn_close(old->conn, "Replaced by a newer connection of this workspace.");
			break;
		}
	}
	if ((w = calloc(1, sizeof(*w))) == NULL || (w->name = strdup(row.name)) == NULL ||
	    (w->profile = strdup(row.profile)) == NULL ||
	    (w->owner_sub = strdup(row.owner_sub)) == NULL || (w->rx = evbuffer_new()) == NULL ||
	    (w->tx = evbuffer_new()) == NULL ||
	    (w->ev_keepalive = event_new(b->base, -1, EV_PERSIST, workspace_keepalive_cb, w)) ==
		    NULL ||
	    (w->ev_audit = evtimer_new(b->base, workspace_audit_resume_cb, w)) == NULL ||
	    (w->mark = workspace_mark(b, row.name)) == NULL) {
		store_workspace_clear(&row);
		if (w != NULL) {
			if (w->ev_keepalive)
				event_free(w->ev_keepalive);
			if (w->ev_audit)
				event_free(w->ev_audit);
			free(w->name);
			free(w->profile);
			free(w->owner_sub);
			if (w->rx)
				evbuffer_free(w->rx);
			if (w->tx)
				evbuffer_free(w->tx);
			free(w);
		}
		conn_close(c, "The broker cannot take this workspace now (out of memory or a "
			      "database error); it will be retried.");
		return;
	}
	store_workspace_clear(&row);
	w->broker = b;
	w->conn = c;
	w->acked = -1;
	w->tokens = b->cfg.workspace_audit_burst;
	clock_gettime(CLOCK_MONOTONIC, &w->refilled);
	c->ws = w;
	ssh_set_counters(c->ssh, NULL, &w->rx_counter);
	c->last_rx = broker_now();
	event_add(w->ev_keepalive, &tv);
	w->next = b->workspaces;
	b->workspaces = w;
	log_info("workspace %s connected from %s", w->name, c->src_ip);
}

static void
workspace_unlink(struct workspace *w)
{
	struct workspace **pp;

	for (pp = &w->broker->workspaces; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	event_free(w->ev_keepalive);
	event_free(w->ev_audit);
	evbuffer_free(w->rx);
	evbuffer_free(w->tx);
	free(w->name);
	free(w->profile);
	free(w->owner_sub);
	free(w);
}

void
workspace_conn_closed(struct conn *c)
{
	struct workspace *w = c->ws;

	if (w == NULL)
		return;
	log_info("workspace %s went offline", w->name);
	workspace_audit_summary(w, true);
	if (w->online_audited)
		workspace_audit_link(w, false, "connection closed");
	c->ws = NULL;
	ssh_set_counters(c->ssh, NULL, NULL);
	/* The channels go with the SSH session. */
	workspace_unlink(w);
}

/* ---- control channel ----------------------------------------------------------------- */

static int
workspace_send(struct workspace *w, enum ctl_type type, json_t *body)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	int rc;

	rc = ctl_encode(type, body, &frame, &len);
	json_decref(body);
	if (rc != 0)
		return -1;
	if (evbuffer_get_length(w->tx) + len > WS_CTL_TX_MAX) {
		explicit_bzero(frame, len);
		free(frame);
		log_warnx("workspace %s: control channel backlog too large", w->name);
		return -1;
	}
	evbuffer_add(w->tx, frame, len);
	explicit_bzero(frame, len);
	free(frame);
	return 0;
}

static void
workspace_ctl_flush(struct workspace *w)
{
	uint8_t buf[16384];

	while (w->ctl != NULL && evbuffer_get_length(w->tx) > 0) {
		uint32_t win = ssh_channel_window_size(w->ctl);
		size_t n = evbuffer_get_length(w->tx);

		if (win == 0)
			break;
		if (n > win)
			n = win;
		if (n > sizeof(buf))
			n = sizeof(buf);
		evbuffer_copyout(w->tx, buf, n);
		if (ssh_channel_write(w->ctl, buf, (uint32_t)n) != (int)n)
			break;
		evbuffer_drain(w->tx, n);
	}
	explicit_bzero(buf, sizeof(buf));
	conn_flush(w->conn);
}

/*
 * guestd keeps its sessions across a lost broker link. A session that ended meanwhile (revoked
 * or expired while the workspace was offline) must end there too: for every session guestd
 * lists that is not a live attachment here, send END now.
 */
static void
workspace_reconcile(struct workspace *w, const json_t *list)
{
	struct broker *b = w->broker;
	const json_t *item;
	size_t i;

	json_array_foreach(list, i, item) {
		const char *sid = json_string_value(json_object_get(item, "session"));
		struct attachment *at;
		bool attached = false;

		if (sid == NULL)
			continue;
		for (at = b->attachments; at != NULL && !attached; at = at->next)
			attached = strcmp(at->ws, w->name) == 0 && strcmp(at->session, sid) == 0;
		if (!attached) {
			struct ctl_end e = { (char *)sid, (char *)"session is no longer live" };
			struct store_session row;

			/* After a broker restart the attachment table is empty: a session that
			 * is still live in the store and belongs to this workspace's owner is
			 * attached again, anything else ends (guestd's list is only a claim: a
			 * workspace removed and registered again for someone else, or a guestd
			 * naming a session it was never given, gets nothing). */
			memset(&row, 0, sizeof(row));
			if (store_session_get(b->store, sid, &row) == 0 &&
			    row.state == STORE_LIVE && row.expires > broker_now() &&
			    row.idle_deadline > broker_now() && row.sub != NULL &&
			    strcmp(row.sub, w->owner_sub) == 0) {
				workspace_attach_session(w, &row);
				store_session_clear(&row);
				continue;
			}
			store_session_clear(&row);
			log_info("workspace %s: session %.40s is not live here: ending it there",
				 w->name, sid);
			workspace_send(w, CTL_SESSION_END, ctl_end_to_json(&e));
		}
	}
	workspace_ctl_flush(w);
}

/*
 * CTL_AUDIT {seq, event}: an OCSF event of guestd, into the broker's audit pipeline. guestd
 * is not trusted with provenance: metadata.product.name says "saw-guestd" whatever it sent,
 * unmapped.workspace is the workspace this connection authenticated as, and the hash
 * chain's reserved members are removed (the file sink sets its own). A seq at or below
 * what this workspace already had taken is a resend: dropped. Returns -1 (the connection
 * ends, as for any malformed message) when the message is not a CTL_AUDIT body or its seq
 * is implausibly far ahead of our clock (ctl_audit_seq_plausible()).
 */
static int
workspace_audit(struct workspace *w, json_t *body)
{
	json_t *in, *ev, *meta, *product, *unmapped;
	int64_t seq;
	char err[160];
	int rc = 0;

	if (ctl_audit_from_json(body, &seq, &in, err, sizeof(err)) != 0) {
		log_warnx("workspace %s: malformed CTL_AUDIT: %s", w->name, err);
		return -1;
	}
	if (seq > 0 && !ctl_audit_seq_plausible(seq, workspace_wall_us())) {
		log_warnx("workspace %s: malformed CTL_AUDIT: seq #%lld is more than %lld s ahead "
			  "of this broker's clock (guestd's clock is far off, or guestd is "
			  "compromised)",
			  w->name, (long long)seq, (long long)(CTL_AUDIT_SEQ_SKEW_US / 1000000));
		return -1;
	}
	if (seq > 0 && w->mark != NULL && seq <= w->mark->taken) {
		w->dups++;
		log_debug("workspace %s: audit event #%lld already taken: dropped", w->name,
			  (long long)seq);
		return 0;
	}
	/* the frame's body is ours and dropped after this: the event is completed in place */
	ev = json_incref(in);
	meta = json_object_get(ev, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		rc |= json_object_set_new(ev, "metadata", meta);
	}
	if (meta != NULL && !json_is_string(json_object_get(meta, "version")))
		rc |= json_object_set_new(meta, "version", json_string(OCSF_VERSION));
	product = meta != NULL ? json_object_get(meta, "product") : NULL;
	if (meta != NULL && !json_is_object(product)) {
		product = json_object();
		rc |= json_object_set_new(meta, "product", product);
	}
	if (product != NULL)
		rc |= json_object_set_new(product, "name", json_string("saw-guestd"));
	unmapped = json_object_get(ev, "unmapped");
	if (!json_is_object(unmapped)) {
		unmapped = json_object();
		rc |= json_object_set_new(ev, "unmapped", unmapped);
	}
	if (unmapped != NULL) {
		json_object_del(unmapped, "prev");
		json_object_del(unmapped, "seq");
		rc |= json_object_set_new(unmapped, "workspace", json_string(w->name));
	}
	if (rc != 0 || meta == NULL || product == NULL || unmapped == NULL) {
		/* not taken: guestd sends it again after the next connection */
		log_warnx("workspace %s: audit event not taken (out of memory)", w->name);
		json_decref(ev);
		return -1;
	}
	/* taken even when not durable yet: the pipeline keeps it for retry, and
	 * workspace_audit_settle() acknowledges nothing until it is healthy again */
	if (seq > 0 && w->mark != NULL)
		w->mark->taken = seq;
	if (audit_emit(w->broker->audit, ev) != 0)
		log_warnx("workspace %s: audit event of guestd not written yet (kept for retry)",
			  w->name);
	return 0;
}

static int
workspace_ctl_dispatch(struct workspace *w, enum ctl_type type, json_t *body)
{
	switch (type) {
	case CTL_HELLO: {
		const char *name = json_string_value(json_object_get(body, "workspace"));

		if (name == NULL || strcmp(name, w->name) != 0) {
			log_warnx("workspace %s: HELLO names another workspace", w->name);
			return -1;
		}
		w->hello = true;
		w->audit_ack = json_is_true(json_object_get(body, "audit_ack"));
		log_info("workspace %s: guestd %s ready", w->name,
			 json_string_value(json_object_get(body, "version")) ?
				 json_string_value(json_object_get(body, "version")) :
				 "?");
		workspace_send_attachments(w);
		/* what we hold: guestd sends only what comes after it */
		if (w->audit_ack)
			workspace_audit_settle(w, true);
		return 0;
	}
	case CTL_STATE:
		log_debug("workspace %s: state sessions=%lld logins=%lld", w->name,
			  (long long)json_integer_value(json_object_get(body, "sessions")),
			  (long long)json_integer_value(json_object_get(body, "logins")));
		workspace_reconcile(w, json_object_get(body, "list"));
		return 0;
	case CTL_AUDIT:
		return workspace_audit(w, body);
	default:
		log_warnx("workspace %s: unexpected control message type %d", w->name, (int)type);
		return -1;
	}
}

/*
 * Reads the control channel only as far as w->rx has room for (a frame is at most
 * CTL_MAX_FRAME, so after decoding there always is), and not at all while paused: what
 * libssh holds meanwhile stays within the channel's window, which then stays closed, so
 * guestd stops sending (back-pressure instead of an unbounded buffer here).
 */
void
workspace_conn_input(struct conn *c)
{
	struct workspace *w = c->ws;
	uint8_t buf[8192];
	char err[128];
	size_t got;
	bool eof = false;

	if (w == NULL || w->ctl == NULL)
		return;
	do {
		got = 0;
		while (!eof && !w->paused &&
		       evbuffer_get_length(w->rx) + sizeof(buf) <= WS_CTL_RX_MAX) {
			int r = ssh_channel_read_nonblocking(w->ctl, buf, sizeof(buf), 0);

			/* what arrived before the EOF is still handled (below), then closed */
			if (r == SSH_EOF || (r == 0 && ssh_channel_is_eof(w->ctl))) {
				eof = true;
				break;
			}
			if (r < 0) {
				conn_close(c, "Control channel error.");
				return;
			}
			if (r == 0)
				break;
			evbuffer_add(w->rx, buf, (size_t)r);
			got += (size_t)r;
		}
		while (!w->paused) {
			size_t len = evbuffer_get_length(w->rx), used = 0;
			enum ctl_type type;
			json_t *body = NULL;
			int rc;

			if (len == 0)
				break;
			rc = ctl_decode(evbuffer_pullup(w->rx, (ssize_t)len), len, &used, &type,
					&body, err, sizeof(err));
			if (rc == 1)
				break;
			if (rc < 0) {
				log_warnx("workspace %s: malformed control message: %s", w->name,
					  err);
				conn_close(c, "Malformed control message.");
				return;
			}
			if (type == CTL_AUDIT && !workspace_audit_admit(w)) {
				/* the frame stays in rx for when the bucket has refilled */
				json_decref(body);
				workspace_audit_throttle(w);
				break;
			}
			evbuffer_drain(w->rx, used);
			rc = workspace_ctl_dispatch(w, type, body);
			json_decref(body);
			if (rc < 0) {
				conn_close(c, "Protocol error on the control channel.");
				return;
			}
			if (c->state == CONN_CLOSING)
				return;
			/* not one more into a pipeline that cannot make them durable */
			if (type == CTL_AUDIT && !audit_healthy(w->broker->audit))
				workspace_audit_settle(w, false);
		}
	} while (got > 0 && !eof && !w->paused);
	workspace_audit_settle(w, false);
	if (eof) {
		/* frames still held by the rate limit stay in guestd's spool (never acked) */
		conn_close(c, "The control channel was closed.");
		return;
	}
	workspace_ctl_flush(w);
}

/* ---- messages on a workspace connection ---------------------------------------------- */

void
workspace_handle_message(struct conn *c, ssh_message msg)
{
	struct workspace *w = c->ws;
	int type = ssh_message_type(msg), sub = ssh_message_subtype(msg);

	if (w == NULL) {
		ssh_message_reply_default(msg);
		return;
	}
	if (type == SSH_REQUEST_GLOBAL && sub == SSH_GLOBAL_REQUEST_TCPIP_FORWARD) {
		/* The workspace offers its sshd; the address/port it names are not trusted:
		 * routing always targets this workspace. */
		ssh_message_global_request_reply_success(msg, 22);
		if (!w->forward_ok)
			log_info("workspace %s is online", w->name);
		w->forward_ok = true;
		return;
	}
	if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_SESSION && w->ctl == NULL &&
	    w->ctl_pending == NULL) {
		w->ctl_pending = ssh_message_channel_request_open_reply_accept(msg);
		return;
	}
	if (type == SSH_REQUEST_CHANNEL && sub == SSH_CHANNEL_REQUEST_SUBSYSTEM &&
	    ssh_message_channel_request_channel(msg) == w->ctl_pending &&
	    strcmp(ssh_message_channel_request_subsystem(msg), CTL_SUBSYSTEM) == 0) {
		ssh_message_channel_request_reply_success(msg);
		w->ctl = w->ctl_pending;
		w->ctl_pending = NULL;
		w->online_audited = true;
		workspace_audit_link(w, true, NULL);
		return;
	}
	/* Keepalives from guestd: answer so that it sees us alive. */
	ssh_message_reply_default(msg);
}

/* ---- attachments --------------------------------------------------------------------- */

static void
workspace_corp_list(struct broker *b, const char *profile, struct ctl_corp **corp, size_t *n)
{
	size_t i;

	*corp = NULL;
	*n = 0;
	if (strcmp(profile, "corporate") != 0 || b->cfg.corp_service.n == 0)
		return;
	if ((*corp = calloc(b->cfg.corp_service.n, sizeof(**corp))) == NULL)
		return;
	for (i = 0; i < b->cfg.corp_service.n; i++) {
		struct ctl_corp *cc = &(*corp)[*n];

		if (broker_corp_service_split(b->cfg.corp_service.v[i], &cc->name, &cc->host,
					      &cc->port) == 0)
			(*n)++;
	}
}

static int
workspace_send_attach(struct workspace *w, const struct store_session *s)
{
	struct broker *b = w->broker;
	struct ctl_attach a;
	char *token;
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	/* groups select policy rules in guestd (deny rules too): no attach without them */
	if (ctl_groups_from_text(s->groups, &a.groups, &a.ngroups) != 0)
		return -1;
	token = workspace_new_token(b, s->id, w->name, s->expires);
	if (token == NULL) {
		ctl_groups_free(a.groups, a.ngroups);
		return -1;
	}
	a.session = (char *)s->id;
	a.user = s->username;
	a.sub = s->sub;
	a.key_fp = s->key_fp;
	a.expires = s->expires;
	a.profile = w->profile;
	a.tunnel_token = token;
	workspace_corp_list(b, w->profile, &a.corp, &a.ncorp);
	rc = workspace_send(w, CTL_SESSION_ATTACH, ctl_attach_to_json(&a));
	for (i = 0; i < a.ncorp; i++) {
		free(a.corp[i].name);
		free(a.corp[i].host);
	}
	free(a.corp);
	ctl_groups_free(a.groups, a.ngroups);
	workspace_ctl_flush(w);
	return rc;
}

int
workspace_attach_session(struct workspace *w, const struct store_session *s)
{
	struct broker *b = w->broker;
	struct attachment *at;

	for (at = b->attachments; at != NULL; at = at->next)
		if (strcmp(at->ws, w->name) == 0 && strcmp(at->session, s->id) == 0)
			return 0; /* already told */
	if ((at = calloc(1, sizeof(*at))) == NULL)
		return -1;
	snprintf(at->ws, sizeof(at->ws), "%s", w->name);
	snprintf(at->session, sizeof(at->session), "%s", s->id);
	at->next = b->attachments;
	b->attachments = at;
	log_info("session %s of %s attached to workspace %s", s->id, s->username, w->name);
	return workspace_send_attach(w, s);
}

/* After (re)connection: every live attachment again, each with a fresh token. */
static void
workspace_send_attachments(struct workspace *w)
{
	struct broker *b = w->broker;
	struct attachment **pp, *at;
	struct store_session s;

	for (pp = &b->attachments; (at = *pp) != NULL;) {
		if (strcmp(at->ws, w->name) != 0) {
			pp = &at->next;
			continue;
		}
		memset(&s, 0, sizeof(s));
		if (store_session_get(b->store, at->session, &s) == 0 && s.state == STORE_LIVE &&
		    s.expires > broker_now()) {
			workspace_send_attach(w, &s);
			store_session_clear(&s);
			pp = &at->next;
			continue;
		}
		store_session_clear(&s);
		*pp = at->next;
		free(at);
	}
}

void
workspace_session_ended(struct broker *b, const char *session_id, const char *why)
{
	struct attachment **pp, *at;
	struct tunnel_token **tp, *t;

	for (tp = &b->tokens; (t = *tp) != NULL;) {
		if (strcmp(t->session, session_id) == 0) {
			*tp = t->next;
			explicit_bzero(t, sizeof(*t));
			free(t);
		} else {
			tp = &t->next;
		}
	}
	for (pp = &b->attachments; (at = *pp) != NULL;) {
		struct workspace *w;

		if (strcmp(at->session, session_id) != 0) {
			pp = &at->next;
			continue;
		}
		if ((w = workspace_online(b, at->ws)) != NULL) {
			struct ctl_end e = { (char *)session_id, (char *)why };

			workspace_send(w, CTL_SESSION_END, ctl_end_to_json(&e));
			workspace_ctl_flush(w);
		}
		*pp = at->next;
		free(at);
	}
}

int
workspace_attached_sessions(struct broker *b, const char *name,
			    void (*cb)(const char *session_id, void *), void *arg)
{
	struct attachment *at, *next;
	int n = 0;

	for (at = b->attachments; at != NULL; at = next) {
		next = at->next; /* cb may end the session, which unlinks at */
		if (strcmp(at->ws, name) == 0) {
			cb(at->session, arg);
			n++;
		}
	}
	return n;
}

void
workspace_free_all(struct broker *b)
{
	struct attachment *at;
	struct tunnel_token *t;
	struct ws_audit_mark *m;

	while ((m = b->audit_marks) != NULL) {
		b->audit_marks = m->next;
		free(m);
	}
	while ((at = b->attachments) != NULL) {
		b->attachments = at->next;
		free(at);
	}
	while ((t = b->tokens) != NULL) {
		b->tokens = t->next;
		explicit_bzero(t, sizeof(*t));
		free(t);
	}
}
