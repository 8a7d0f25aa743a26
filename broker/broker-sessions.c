/*
 * Live sessions known to this broker process and the connections attached to them.
 *
 * Each live session has one libevent timer set at min(absolute expiry, idle deadline);
 * libevent keeps timers in a min-heap, so expiry costs O(log n) per session and never a scan.
 * When the timer fires and a deadline has really passed, the session is ended durably in the
 * store first, then every attached connection is closed with a sentence saying why, then the
 * end is audited (Authentication Logoff). A session stays here after its last connection
 * leaves, so that its expiry is still recorded and audited on time.
 *
 * Idle: any traffic on an attached connection pushes the idle deadline in memory; the store
 * is updated at most once a minute (so after a restart a session may look idle up to a
 * minute early, never late).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit/log.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

#define SESSIONS_TOUCH_INTERVAL 60

struct live_session {
	struct live_session *next;
	struct broker *broker;
	struct store_session row; /* owned copy */
	struct conn_list conns;
	struct event *timer;
	int64_t last_touch; /* last idle-deadline write to the store */
};

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void sessions_timer_cb(evutil_socket_t fd, short what, void *arg);

static void
sessions_arm(struct live_session *ls)
{
	int64_t now = broker_now();
	int64_t due = ls->row.expires < ls->row.idle_deadline ? ls->row.expires :
								ls->row.idle_deadline;
	struct timeval tv = { 0, 0 };

	if (due > now)
		tv.tv_sec = (time_t)(due - now);
	evtimer_add(ls->timer, &tv);
}

static void
sessions_unlink(struct live_session *ls)
{
	struct live_session **pp;

	for (pp = &ls->broker->sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ls) {
			*pp = ls->next;
			break;
		}
	}
	event_free(ls->timer);
	store_session_clear(&ls->row);
	free(ls);
}

static void
sessions_end(struct live_session *ls, enum store_state state, const char *why, const char *sentence)
{
	struct broker *b = ls->broker;
	struct conn *c;

	if (store_session_end(b->store, ls->row.id, state, why, broker_now()) < 0)
		log_warnx("session %s: could not record its end in the store", ls->row.id);
	log_info("session %s of %s ended: %s", ls->row.id, ls->row.username, why);
	while ((c = TAILQ_FIRST(&ls->conns)) != NULL)
		conn_close(c, sentence); /* detaches c */
	workspace_session_ended(b, ls->row.id, why);
	broker_audit_logoff(b, &ls->row, why);
	sessions_unlink(ls);
}

static void
sessions_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct live_session *ls = arg;
	int64_t now = broker_now();
	char sentence[256];

	if (now >= ls->row.expires) {
		snprintf(sentence, sizeof(sentence),
			 "Your SAW session reached its maximum lifetime; connect again to log in "
			 "through the browser.");
		sessions_end(ls, STORE_EXPIRED, "expired: absolute lifetime reached", sentence);
	} else if (now >= ls->row.idle_deadline) {
		snprintf(sentence, sizeof(sentence),
			 "Your SAW session was idle for %llds and has ended; connect again to "
			 "log in through the browser.",
			 ls->broker->cfg.session_idle_timeout);
		sessions_end(ls, STORE_EXPIRED, "expired: idle timeout", sentence);
	} else {
		sessions_arm(ls);
	}
}

static struct live_session *sessions_find(struct broker *b, const char *id);

void
sessions_drop(struct broker *b, const char *id, const char *sentence)
{
	struct live_session *ls = sessions_find(b, id);
	struct conn *c;

	if (ls == NULL)
		return;
	while ((c = TAILQ_FIRST(&ls->conns)) != NULL)
		conn_close(c, sentence); /* detaches c */
	sessions_unlink(ls);
}

static struct live_session *
sessions_find(struct broker *b, const char *id)
{
	struct live_session *ls;

	for (ls = b->sessions; ls != NULL; ls = ls->next)
		if (strcmp(ls->row.id, id) == 0)
			return ls;
	return NULL;
}

int
sessions_attach(struct broker *b, struct conn *c, const struct store_session *s)
{
	struct live_session *ls = sessions_find(b, s->id);
	int64_t now = broker_now();

	if (ls == NULL) {
		if ((ls = calloc(1, sizeof(*ls))) == NULL)
			return -1;
		ls->broker = b;
		memcpy(ls->row.id, s->id, sizeof(ls->row.id));
		ls->row.iss = dup_or_null(s->iss);
		ls->row.sub = dup_or_null(s->sub);
		ls->row.sid = dup_or_null(s->sid);
		ls->row.username = dup_or_null(s->username);
		ls->row.groups = dup_or_null(s->groups);
		ls->row.key_fp = dup_or_null(s->key_fp);
		ls->row.created = s->created;
		ls->row.expires = s->expires;
		ls->row.idle_deadline = s->idle_deadline;
		ls->row.state = STORE_LIVE;
		ls->last_touch = now;
		TAILQ_INIT(&ls->conns);
		if ((ls->timer = evtimer_new(b->base, sessions_timer_cb, ls)) == NULL ||
		    ls->row.username == NULL) {
			if (ls->timer)
				event_free(ls->timer);
			store_session_clear(&ls->row);
			free(ls);
			return -1;
		}
		ls->next = b->sessions;
		b->sessions = ls;
	}
	TAILQ_INSERT_TAIL(&ls->conns, c, session_entry);
	c->session = ls;
	/* A login is activity. */
	ls->row.idle_deadline = now + b->cfg.session_idle_timeout;
	store_session_touch(b->store, ls->row.id, ls->row.idle_deadline);
	ls->last_touch = now;
	sessions_arm(ls);
	return 0;
}

void
sessions_detach(struct conn *c)
{
	struct live_session *ls = c->session;

	if (ls == NULL)
		return;
	TAILQ_REMOVE(&ls->conns, c, session_entry);
	c->session = NULL;
}

void
sessions_activity(struct conn *c)
{
	struct live_session *ls = c->session;
	struct broker *b = c->broker;
	int64_t now;

	if (ls == NULL)
		return;
	now = broker_now();
	ls->row.idle_deadline = now + b->cfg.session_idle_timeout;
	if (now - ls->last_touch >= SESSIONS_TOUCH_INTERVAL) {
		store_session_touch(b->store, ls->row.id, ls->row.idle_deadline);
		ls->last_touch = now;
	}
}

const struct store_session *
sessions_row(const struct live_session *ls)
{
	return &ls->row;
}

void
sessions_free_all(struct broker *b)
{
	struct live_session *ls;

	while ((ls = b->sessions) != NULL) {
		/* Persist the freshest idle deadline; the session itself stays live. */
		store_session_touch(b->store, ls->row.id, ls->row.idle_deadline);
		sessions_unlink(ls);
	}
}
