/*
 * HTTP forwarder to a SIEM behind a durable spool (spool.h).
 *
 * emit() only appends to the spool: the event is durable once committed there, whatever the
 * SIEM's state. A sender drains the spool in id order with one request in flight at a time
 * (so batches arrive in order), at most `batch` events and HTTP_BATCH_BYTES per request:
 *
 *   json: POST [ev,ev,...]                               Content-Type: application/json
 *   hec:  POST {"time":S.mmm,"event":ev}\n{"time":...}\n  Authorization: Splunk TOKEN
 *
 * A 2xx deletes the batch from the spool; anything else (no answer, 3xx, 4xx, 5xx) is
 * retried with exponential backoff (HTTP_RETRY_MIN_MS doubling up to retry_max), the same
 * events in the same order: events are never dropped here. 413 halves the batch size. The
 * only way an event is sent twice is a crash (or a lost response) between the SIEM's 2xx
 * and the delete; metadata.uid lets the SIEM deduplicate that batch.
 *
 * The spool cap is the explicit limit: an event that does not fit is refused (emit returns
 * -1, counted lost for this sink, the sink is unhealthy until the SIEM has drained room).
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/log.h"
#include "audit/sink.h"
#include "audit/spool.h"
#include "audit/syncer.h"
#include "broker/broker-http.h" /* struct http_result only: calls go through env pointers */

#define HTTP_RETRY_MIN_MS 250
#define HTTP_BATCH_BYTES (4u * 1024 * 1024)
#define HTTP_TOKEN_MAX 4096
#define HTTP_FAIL_LOG_EVERY 20

struct sink_http {
	char url[AUDIT_SINK_URL_MAX];
	char token_file[AUDIT_SINK_PATH_MAX];
	char *auth_header; /* "Authorization: ..." or NULL; secret, wiped */
	enum audit_http_format format;
	int batch, batch_now;
	long long retry_max_ms, timeout_ms;

	struct event_base *base;
	struct http_client *http;
	audit_http_post_fn post;
	audit_http_cancel_fn cancel;

	struct spool *spool;
	struct event *sync_timer, *send_timer;
	bool sync_armed, send_armed;
	struct syncer *syncer; /* background fdatasync of the WAL */
	bool sync_again;       /* appended while a sync ran */

	struct http_req *inflight;
	long long inflight_upto; /* highest spool id in the request in flight */
	size_t inflight_events;
	long long acked_upto; /* highest id the SIEM acknowledged */
	long long backoff_ms;
	unsigned long failures; /* consecutive failed requests */
	long last_status;	/* of the last logged failure; -1: no HTTP answer */
	unsigned long long delivered;

	/* body being built */
	char *body;
	size_t blen, bcap;
	long long build_upto;
	size_t damaged;

	bool full, failing;
	unsigned long long lost;
};

static void sink_http_send(struct sink_http *h);

/* Reads the token (first line, surrounding blanks removed) into a new header string. */
static int
sink_http_load_token(struct sink_http *h, char *err, size_t errlen)
{
	char buf[HTTP_TOKEN_MAX + 1], *tok, *end, *hdr = NULL;
	struct stat sb;
	ssize_t n;
	int fd;

	if (h->token_file[0] == '\0')
		return 0;
	if ((fd = open(h->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "cannot read the SIEM token file %s: %s", h->token_file,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "SIEM token file %s is not a regular file", h->token_file);
		close(fd);
		return -1;
	}
	n = read(fd, buf, HTTP_TOKEN_MAX);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "SIEM token file %s is empty or unreadable", h->token_file);
		return -1;
	}
	buf[n] = '\0';
	for (tok = buf; *tok == ' ' || *tok == '\t'; tok++)
		;
	end = tok + strcspn(tok, "\r\n");
	while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	if (*tok == '\0' || strpbrk(tok, "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x7f") != NULL) {
		snprintf(err, errlen, "SIEM token file %s holds no usable token", h->token_file);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	if (asprintf(&hdr, "Authorization: %s %s",
		     h->format == AUDIT_HTTP_HEC ? "Splunk" : "Bearer", tok) == -1) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	explicit_bzero(buf, sizeof(buf));
	if (h->auth_header != NULL) {
		explicit_bzero(h->auth_header, strlen(h->auth_header));
		free(h->auth_header);
	}
	h->auth_header = hdr;
	return 0;
}

static void
sink_http_arm(struct event *ev, bool *armed, long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	if (*armed)
		return;
	if (evtimer_add(ev, &tv) == 0)
		*armed = true;
}

static void
sink_http_sync_start(struct sink_http *h)
{
	int fd = spool_wal_fd(h->spool);

	if (syncer_busy(h->syncer)) {
		h->sync_again = true;
		return;
	}
	h->sync_again = false;
	if (fd == -1 || syncer_start(h->syncer, fd) == -1) {
		if (spool_sync(h->spool) == -1)
			sink_http_arm(h->sync_timer, &h->sync_armed, 1000);
	}
}

static void
sink_http_sync_done(int err, void *arg)
{
	struct sink_http *h = arg;

	if (err != 0) {
		errno = err;
		log_warn("cannot sync the audit spool for %s", h->url);
		sink_http_arm(h->sync_timer, &h->sync_armed, 1000);
		return;
	}
	if (h->sync_again)
		sink_http_sync_start(h);
}

static void
sink_http_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink_http *h = arg;

	h->sync_armed = false;
	sink_http_sync_start(h);
}

static void
sink_http_send_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink_http *h = arg;

	h->send_armed = false;
	sink_http_send(h);
}

void *
sink_http_open(const struct audit_sink_cfg *cfg, const struct audit_env *env, char *err,
	       size_t errlen)
{
	struct sink_http *h;

	if (env->base == NULL || env->http == NULL || env->http_post == NULL ||
	    env->http_cancel == NULL) {
		snprintf(err, errlen, "the HTTP audit sink %s needs the event loop's HTTP client",
			 cfg->url);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(h->url, sizeof(h->url), "%s", cfg->url);
	snprintf(h->token_file, sizeof(h->token_file), "%s", cfg->token_file);
	h->format = cfg->format;
	h->batch = h->batch_now = cfg->batch > 0 ? cfg->batch : 500;
	h->retry_max_ms = (cfg->retry_max > 0 ? cfg->retry_max : 60) * 1000;
	h->timeout_ms = (cfg->timeout > 0 ? cfg->timeout : 10) * 1000;
	h->backoff_ms = HTTP_RETRY_MIN_MS;
	h->base = env->base;
	h->http = env->http;
	h->post = env->http_post;
	h->cancel = env->http_cancel;
	if (sink_http_load_token(h, err, errlen) == -1)
		goto fail;
	if ((h->spool = spool_open(cfg->spool, cfg->spool_max, err, errlen)) == NULL)
		goto fail;
	if ((h->sync_timer = evtimer_new(h->base, sink_http_sync_cb, h)) == NULL ||
	    (h->send_timer = evtimer_new(h->base, sink_http_send_cb, h)) == NULL ||
	    (h->syncer = syncer_new(h->base, sink_http_sync_done, h)) == NULL) {
		snprintf(err, errlen, "cannot create timers or the sync thread");
		goto fail;
	}
	if (spool_rows(h->spool) > 0) {
		log_info("audit spool %s holds %lld event(s) for %s; sending them first",
			 cfg->spool, spool_rows(h->spool), h->url);
		sink_http_arm(h->send_timer, &h->send_armed, 0);
	}
	return h;
fail:
	syncer_free(h->syncer);
	if (h->sync_timer != NULL)
		event_free(h->sync_timer);
	if (h->send_timer != NULL)
		event_free(h->send_timer);
	spool_close(h->spool);
	if (h->auth_header != NULL) {
		explicit_bzero(h->auth_header, strlen(h->auth_header));
		free(h->auth_header);
	}
	free(h);
	return NULL;
}

static int
sink_http_append(struct sink_http *h, const char *p, size_t n)
{
	size_t cap;
	char *nb;

	if (h->blen + n + 1 > h->bcap) {
		cap = h->bcap ? h->bcap : 64 * 1024;
		while (cap < h->blen + n + 1)
			cap *= 2;
		if ((nb = realloc(h->body, cap)) == NULL)
			return -1;
		h->body = nb;
		h->bcap = cap;
	}
	memcpy(h->body + h->blen, p, n);
	h->blen += n;
	return 0;
}

static int
sink_http_add_row(const struct spool_row *row, void *arg)
{
	struct sink_http *h = arg;
	char pre[64];
	int n;

	h->build_upto = row->id;
	if (row->damaged) {
		/* Never sendable; keeping it would block everything after it forever. */
		h->damaged++;
		log_warnx("AUDIT EVENT LOST: spool row %lld is damaged and is dropped", row->id);
		h->lost++;
		return 0;
	}
	if (h->format == AUDIT_HTTP_HEC) {
		n = snprintf(pre, sizeof(pre),
			     "{\"time\":%lld.%03lld,\"event\":", (long long)(row->time_ms / 1000),
			     (long long)(row->time_ms % 1000));
		if (n < 0 || sink_http_append(h, pre, (size_t)n) == -1 ||
		    sink_http_append(h, row->event, row->len) == -1 ||
		    sink_http_append(h, "}\n", 2) == -1)
			return -1;
	} else {
		if (sink_http_append(h, h->blen > 1 ? "," : "", h->blen > 1 ? 1 : 0) == -1 ||
		    sink_http_append(h, row->event, row->len) == -1)
			return -1;
	}
	return 0;
}

static void
sink_http_done(const struct http_result *res, void *arg)
{
	struct sink_http *h = arg;
	long long delay;
	unsigned int jitter = 0;

	h->inflight = NULL;
	if (res->ok && res->status >= 200 && res->status < 300) {
		h->acked_upto = h->inflight_upto;
		h->delivered += h->inflight_events;
		spool_ack(h->spool, h->acked_upto);
		if (spool_rows(h->spool) == 0)
			h->acked_upto = 0; /* ids start again from 1 (spool.h) */
		if (h->failures > 0)
			log_warnx("SIEM %s accepts events again after %lu failed attempt(s); "
				  "%lld event(s) still spooled",
				  h->url, h->failures, spool_rows(h->spool));
		h->failures = 0;
		h->backoff_ms = HTTP_RETRY_MIN_MS;
		h->full = false; /* room was made: new events may be tried again */
		if (h->batch_now < h->batch)
			h->batch_now = h->batch_now * 2 < h->batch ? h->batch_now * 2 : h->batch;
		sink_http_send(h);
		return;
	}
	h->failures++;
	if (res->ok && res->status == 413 && h->batch_now > 1)
		h->batch_now /= 2;
	/* Logged at the first failure, whenever the kind of failure changes, and every
	 * HTTP_FAIL_LOG_EVERY attempts: loud, but not one line per retry. */
	if (h->failures == 1 || h->failures % HTTP_FAIL_LOG_EVERY == 0 ||
	    h->last_status != (res->ok ? res->status : -1)) {
		h->last_status = res->ok ? res->status : -1;
		if (res->ok)
			log_warnx("SIEM %s refused %s events: HTTP %ld; %lld event(s) spooled, "
				  "retrying",
				  h->url, h->format == AUDIT_HTTP_HEC ? "HEC" : "JSON", res->status,
				  spool_rows(h->spool));
		else
			log_warnx("cannot reach SIEM %s: %s; %lld event(s) spooled, retrying",
				  h->url, res->error != NULL ? res->error : "error",
				  spool_rows(h->spool));
	}
	/* Up to 10% jitter so that brokers restarted together do not retry in step. */
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != (ssize_t)sizeof(jitter))
		jitter = 0;
	delay = h->backoff_ms + (long long)(jitter % (unsigned int)(h->backoff_ms / 10 + 1));
	h->backoff_ms = h->backoff_ms * 2 > h->retry_max_ms ? h->retry_max_ms : h->backoff_ms * 2;
	sink_http_arm(h->send_timer, &h->send_armed, delay);
}

/* Starts the next request if none is in flight and the spool holds events. */
static void
sink_http_send(struct sink_http *h)
{
	const char *headers[2] = { h->auth_header, NULL };
	int n;

	if (h->inflight != NULL || h->send_armed)
		return;
	for (;;) {
		if (spool_rows(h->spool) == 0)
			return;
		h->blen = 0;
		h->damaged = 0;
		h->build_upto = h->acked_upto;
		if (h->format == AUDIT_HTTP_JSON && sink_http_append(h, "[", 1) == -1)
			goto retry;
		n = spool_peek(h->spool, h->acked_upto, (size_t)h->batch_now, HTTP_BATCH_BYTES,
			       sink_http_add_row, h);
		if (n == -1)
			goto retry;
		if (n == 0) {
			/* The count drifted: trust the database. */
			spool_ack(h->spool, h->acked_upto);
			h->acked_upto = 0;
			return;
		}
		if ((size_t)n > h->damaged)
			break;
		/* Only damaged rows: drop them and look again. */
		h->acked_upto = h->build_upto;
		spool_ack(h->spool, h->acked_upto);
		if (spool_rows(h->spool) == 0)
			h->acked_upto = 0;
	}
	if (h->format == AUDIT_HTTP_JSON && sink_http_append(h, "]", 1) == -1)
		goto retry;
	h->inflight_upto = h->build_upto;
	h->inflight_events = (size_t)n - h->damaged;
	h->inflight = h->post(h->http, h->url, "application/json", h->body, h->blen,
			      h->auth_header != NULL ? headers : NULL, h->timeout_ms,
			      sink_http_done, h);
	if (h->inflight == NULL)
		goto retry;
	return;
retry:
	log_warnx("cannot prepare a request to SIEM %s (out of memory or spool error); retrying",
		  h->url);
	sink_http_arm(h->send_timer, &h->send_armed, 1000);
}

static int
sink_http_emit(void *impl, const struct audit_record *r)
{
	struct sink_http *h = impl;
	int rc;

	rc = spool_append(h->spool, r->uid, r->time_ms, r->json, r->len);
	if (rc == SPOOL_FULL) {
		h->lost++;
		if (!h->full || h->lost % AUDIT_LOST_LOG_EVERY == 0)
			log_warnx("AUDIT EVENT NOT SPOOLED: the spool for %s is full (%lld bytes, "
				  "SIEM unreachable?); %llu event(s) refused so far",
				  h->url, spool_bytes(h->spool), h->lost);
		h->full = true;
		return -1;
	}
	if (rc != 0) {
		h->lost++;
		h->failing = true;
		return -1;
	}
	if (h->failing)
		log_warnx("audit spool for %s is writable again", h->url);
	h->failing = false;
	sink_http_arm(h->sync_timer, &h->sync_armed, AUDIT_SYNC_MS);
	/* From a fresh loop turn, so a burst of emits travels in one request. */
	if (h->inflight == NULL)
		sink_http_arm(h->send_timer, &h->send_armed, 0);
	return 0;
}

static int
sink_http_flush(void *impl)
{
	struct sink_http *h = impl;

	return spool_sync(h->spool);
}

static int
sink_http_reopen(void *impl)
{
	struct sink_http *h = impl;
	char err[AUDIT_SINK_PATH_MAX + 128];

	if (sink_http_load_token(h, err, sizeof(err)) == -1) {
		log_warnx("%s; keeping the previous token", err);
		return -1;
	}
	return 0;
}

static bool
sink_http_healthy(const void *impl)
{
	const struct sink_http *h = impl;

	return !h->full && !h->failing;
}

static unsigned long long
sink_http_lost(const void *impl)
{
	return ((const struct sink_http *)impl)->lost;
}

static unsigned long long
sink_http_backlog(const void *impl)
{
	return (unsigned long long)spool_rows(((const struct sink_http *)impl)->spool);
}

static void
sink_http_close(void *impl)
{
	struct sink_http *h = impl;
	struct spool_stats st;

	/* What is in flight stays in the spool and is sent again at the next start. */
	if (h->inflight != NULL)
		h->cancel(h->inflight);
	spool_stats(h->spool, &st);
	log_debug("audit spool for %s: %llu event(s) delivered, %lld checkpoint(s) on the "
		  "spool's thread (%lld RESTART)",
		  h->url, h->delivered, st.checkpoints, st.restarts);
	syncer_free(h->syncer);
	event_free(h->sync_timer);
	event_free(h->send_timer);
	spool_sync(h->spool);
	if (spool_rows(h->spool) > 0)
		log_info("audit spool for %s keeps %lld event(s) for the next start", h->url,
			 spool_rows(h->spool));
	spool_close(h->spool);
	if (h->auth_header != NULL) {
		explicit_bzero(h->auth_header, strlen(h->auth_header));
		free(h->auth_header);
	}
	free(h->body);
	free(h);
}

const struct sink_ops sink_http_ops = {
	.kind = "http",
	.emit = sink_http_emit,
	.flush = sink_http_flush,
	.reopen = sink_http_reopen,
	.healthy = sink_http_healthy,
	.lost = sink_http_lost,
	.backlog = sink_http_backlog,
	.close = sink_http_close,
};
