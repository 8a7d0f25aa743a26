/*
 * syslog sink: one RFC 5424 datagram per event on a local AF_UNIX socket (/dev/log unless
 * configured otherwise):
 *
 *   <PRI>1 2024-05-01T12:00:00.123Z HOST APP PID OCSF-300201 - {"class_uid":3002,...}
 *
 * PRI = facility * 8 + severity from the event's OCSF severity_id; MSGID is "OCSF-" and the
 * type_uid; no structured data; the message is the event's compact JSON (UTF-8, no BOM:
 * receivers commonly keep a BOM as text).
 *
 * The socket is non-blocking: a datagram the receiver cannot take now is kept in a bounded
 * FIFO and sent, in order, when the socket is writable again (or, if syslogd went away,
 * after reconnecting once a second). Such an event is not durable yet, so emit() returns -1
 * for it and the sink is unhealthy until the FIFO has drained.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit/log.h"
#include "audit/sink.h"

#define SYSLOG_RETRY_MS 1000
#define SYSLOG_HOST_MAX 255
#define SYSLOG_MAX_DGRAM (192 * 1024) /* under the default AF_UNIX send buffer */

struct syslog_msg {
	char *buf;
	size_t len;
};

struct sink_syslog {
	char socket[AUDIT_SINK_SOCK_MAX];
	char app[AUDIT_SINK_APP_MAX];
	char host[SYSLOG_HOST_MAX + 1];
	int facility;
	long pid;
	struct event_base *base;
	int fd;
	struct event *wev; /* socket writable again */
	struct event *timer;
	bool failing;

	struct syslog_msg q[AUDIT_QUEUE_MAX];
	size_t qhead, qcount, qbytes;
	unsigned long long lost;
};

static void sink_syslog_drain_cb(evutil_socket_t fd, short what, void *arg);

static int
sink_syslog_connect(struct sink_syslog *s, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	if (s->wev != NULL) {
		event_free(s->wev);
		s->wev = NULL;
	}
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(s->socket) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "syslog socket path %s is too long", s->socket);
		return -1;
	}
	memcpy(sun.sun_path, s->socket, strlen(s->socket) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		snprintf(err, errlen, "cannot create a socket for syslog: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "cannot connect to the syslog socket %s: %s", s->socket,
			 strerror(errno));
		close(fd);
		return -1;
	}
	s->fd = fd;
	if (s->base != NULL &&
	    (s->wev = event_new(s->base, fd, EV_WRITE, sink_syslog_drain_cb, s)) == NULL) {
		snprintf(err, errlen, "cannot create an event for the syslog socket");
		close(fd);
		s->fd = -1;
		return -1;
	}
	return 0;
}

void *
sink_syslog_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
		 size_t errlen)
{
	struct sink_syslog *s;
	size_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->base = env->base;
	s->facility = cfg->facility;
	s->pid = (long)getpid();
	snprintf(s->socket, sizeof(s->socket), "%s", cfg->socket[0] ? cfg->socket : "/dev/log");
	snprintf(s->app, sizeof(s->app), "%s", cfg->app[0] ? cfg->app : audit_app_name(env));
	if (gethostname(s->host, sizeof(s->host)) == -1 || s->host[0] == '\0')
		snprintf(s->host, sizeof(s->host), "-");
	s->host[SYSLOG_HOST_MAX] = '\0';
	/* HOSTNAME and APP-NAME are PRINTUSASCII without spaces. */
	for (i = 0; s->host[i] != '\0'; i++)
		if (s->host[i] <= ' ' || s->host[i] > '~')
			s->host[i] = '_';
	for (i = 0; s->app[i] != '\0'; i++)
		if (s->app[i] <= ' ' || s->app[i] > '~')
			s->app[i] = '_';
	if (s->base != NULL && (s->timer = evtimer_new(s->base, sink_syslog_drain_cb, s)) == NULL) {
		snprintf(err, errlen, "cannot create a timer");
		free(s);
		return NULL;
	}
	if (sink_syslog_connect(s, err, errlen) == -1) {
		if (s->timer != NULL)
			event_free(s->timer);
		free(s);
		return NULL;
	}
	return s;
}

static int
sink_syslog_severity(int severity_id)
{
	switch (severity_id) {
	case 1: /* Informational */
		return 6;
	case 2: /* Low */
		return 5;
	case 3: /* Medium */
		return 4;
	case 4: /* High */
		return 3;
	case 5: /* Critical */
		return 2;
	case 6: /* Fatal */
		return 1;
	default: /* Unknown, Other */
		return 5;
	}
}

/* RFC 5424 TIMESTAMP (UTC, milliseconds) from epoch milliseconds; "-" if unknown. */
static void
sink_syslog_time(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t secs;

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	secs = (time_t)(ms / 1000);
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void
sink_syslog_arm(struct sink_syslog *s, bool writable_wait)
{
	struct timeval tv = { SYSLOG_RETRY_MS / 1000, (SYSLOG_RETRY_MS % 1000) * 1000 };

	if (writable_wait && s->wev != NULL) {
		event_add(s->wev, NULL);
		return;
	}
	if (s->timer != NULL && !evtimer_pending(s->timer, NULL))
		evtimer_add(s->timer, &tv);
}

/* Sends queued datagrams, oldest first. Returns 0 when the queue is empty. */
static int
sink_syslog_drain(struct sink_syslog *s)
{
	char err[256];
	struct syslog_msg *m;
	ssize_t n;

	while (s->qcount > 0) {
		m = &s->q[s->qhead];
		if (s->fd == -1 && sink_syslog_connect(s, err, sizeof(err)) == -1) {
			if (!s->failing)
				log_warnx("%s (%zu event(s) kept in memory, retrying)", err,
					  s->qcount);
			s->failing = true;
			sink_syslog_arm(s, false);
			return -1;
		}
		n = send(s->fd, m->buf, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == ENOBUFS)) {
			/* The receiver is slow: wait until it takes datagrams again. */
			sink_syslog_arm(s, true);
			return -1;
		}
		if (n == -1 && errno == EMSGSIZE) {
			log_warnx("AUDIT EVENT LOST: %zu-byte syslog message too large for %s",
				  m->len, s->socket);
			s->lost++;
		} else if (n == -1) {
			/* ECONNREFUSED, ENOTCONN, ENOENT: syslogd restarted or went away. */
			if (!s->failing)
				log_warn("cannot send to the syslog socket %s (%zu event(s) kept "
					 "in memory, retrying)",
					 s->socket, s->qcount);
			s->failing = true;
			close(s->fd);
			s->fd = -1;
			if (s->wev != NULL) {
				event_free(s->wev);
				s->wev = NULL;
			}
			sink_syslog_arm(s, false);
			return -1;
		}
		s->qbytes -= m->len;
		free(m->buf);
		m->buf = NULL;
		s->qhead = (s->qhead + 1) % AUDIT_QUEUE_MAX;
		s->qcount--;
	}
	if (s->failing) {
		log_warnx("syslog socket %s accepts events again (%llu event(s) lost in total)",
			  s->socket, s->lost);
		s->failing = false;
	}
	return 0;
}

static void
sink_syslog_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	sink_syslog_drain(arg);
}

static int
sink_syslog_emit(void *impl, const struct audit_record *r)
{
	struct sink_syslog *s = impl;
	struct syslog_msg *m;
	char ts[96], head[512];
	size_t hlen;
	int n;

	sink_syslog_time(r->time_ms, ts, sizeof(ts));
	n = snprintf(head, sizeof(head), "<%d>1 %s %s %s %ld OCSF-%lld - ",
		     s->facility * 8 + sink_syslog_severity(r->severity_id), ts, s->host, s->app,
		     s->pid, r->type_uid);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	hlen = (size_t)n;
	if (hlen + r->len > SYSLOG_MAX_DGRAM) {
		s->lost++;
		log_warnx("AUDIT EVENT LOST: %zu-byte event too large for syslog", r->len);
		return -1;
	}
	if (s->qcount == AUDIT_QUEUE_MAX || s->qbytes + hlen + r->len > AUDIT_QUEUE_BYTES) {
		/* Older datagrams first; if they still cannot go, this one is lost. */
		sink_syslog_drain(s);
		if (s->qcount == AUDIT_QUEUE_MAX || s->qbytes + hlen + r->len > AUDIT_QUEUE_BYTES) {
			s->lost++;
			if (s->lost == 1 || s->lost % AUDIT_LOST_LOG_EVERY == 0)
				log_warnx("AUDIT EVENT LOST (syslog socket %s not accepting and "
					  "queue full): %llu event(s) lost so far",
					  s->socket, s->lost);
			return -1;
		}
	}
	m = &s->q[(s->qhead + s->qcount) % AUDIT_QUEUE_MAX];
	if ((m->buf = malloc(hlen + r->len)) == NULL) {
		s->lost++;
		return -1;
	}
	memcpy(m->buf, head, hlen);
	memcpy(m->buf + hlen, r->json, r->len);
	m->len = hlen + r->len;
	s->qcount++;
	s->qbytes += m->len;
	return sink_syslog_drain(s);
}

static int
sink_syslog_flush(void *impl)
{
	return sink_syslog_drain(impl);
}

static int
sink_syslog_reopen(void *impl)
{
	struct sink_syslog *s = impl;
	char err[256];

	if (sink_syslog_connect(s, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		s->failing = true;
		sink_syslog_arm(s, false);
		return -1;
	}
	return sink_syslog_drain(s);
}

static bool
sink_syslog_healthy(const void *impl)
{
	const struct sink_syslog *s = impl;

	return !s->failing && s->qcount == 0;
}

static unsigned long long
sink_syslog_lost(const void *impl)
{
	return ((const struct sink_syslog *)impl)->lost;
}

static void
sink_syslog_close(void *impl)
{
	struct sink_syslog *s = impl;
	size_t i;

	sink_syslog_drain(s);
	if (s->qcount > 0) {
		log_warnx("AUDIT EVENTS LOST: %zu event(s) could not be sent to syslog %s",
			  s->qcount, s->socket);
		for (i = 0; i < s->qcount; i++)
			free(s->q[(s->qhead + i) % AUDIT_QUEUE_MAX].buf);
	}
	if (s->wev != NULL)
		event_free(s->wev);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

const struct sink_ops sink_syslog_ops = {
	.kind = "syslog",
	.emit = sink_syslog_emit,
	.flush = sink_syslog_flush,
	.reopen = sink_syslog_reopen,
	.healthy = sink_syslog_healthy,
	.lost = sink_syslog_lost,
	.close = sink_syslog_close,
};
