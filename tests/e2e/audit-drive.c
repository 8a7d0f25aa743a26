/*
 * audit-drive: emits OCSF events through the real sink stack on an event loop, the way the
 * broker does, for the end-to-end audit tests and the benchmark.
 *
 *   audit-drive -s SPEC [-s SPEC...] [-n N] [-b PER_TURN] [-S FIRST_SEQ] [-p] [-w SECONDS]
 *
 * Each -s is an AuditSink description ("file PATH", "http URL spool=PATH ..."). N events
 * (default 100) are emitted, PER_TURN (default 100) per loop turn so that the forwarder runs
 * in between, each an Authentication event whose message is "audit-drive seq K". With -p,
 * "durable K" is printed (and flushed) as soon as audit_emit() returned 0 for event K: the
 * SIGKILL test counts those. Then the loop runs until every HTTP spool is empty (exit 0) or
 * -w SECONDS pass (exit 1; default 60). -n 0 only drains what earlier runs spooled.
 * Prints "emitted N in S s (R/s)" and "delivered in S s" on stderr.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-http.h"

#define DRIVE_MAX_SINKS 8

struct drive {
	struct event_base *base;
	struct audit *audit;
	struct event *tick;
	long long next, n, per_turn;
	int print;
	long long durable, failed;
	double t0, t_emitted;
	double deadline;
	int rc;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
drive_tick(evutil_socket_t fd, short what, void *arg)
{
	struct drive *d = arg;
	struct ocsf_subject s = { .username = "drive", .uid = "sub-drive", .src_ip = "192.0.2.7" };
	struct timeval tv = { 0, 0 };
	char msg[64];
	long long i;
	json_t *ev;

	for (i = 0; i < d->per_turn && d->next < d->n; i++, d->next++) {
		s.src_port = (int)(d->next % 60000) + 1;
		ev = ocsf_auth_logon(&s, true, NULL, ocsf_now_ms());
		snprintf(msg, sizeof(msg), "audit-drive seq %lld", d->next);
		if (ev != NULL)
			json_object_set_new(ev, "message", json_string(msg));
		if (audit_emit(d->audit, ev) == 0) {
			d->durable++;
			if (d->print) {
				printf("durable %lld\n", d->next);
				fflush(stdout);
			}
		} else {
			d->failed++;
		}
	}
	if (d->next < d->n) {
		evtimer_add(d->tick, &tv);
		return;
	}
	if (d->t_emitted == 0) {
		d->t_emitted = now_s();
		audit_flush(d->audit);
		fprintf(stderr, "emitted %lld in %.3f s (%.0f/s), %lld not durable\n", d->n,
			d->t_emitted - d->t0,
			d->n > 0 ? (double)d->n / (d->t_emitted - d->t0 + 1e-9) : 0.0, d->failed);
	}
	if (audit_backlog(d->audit) == 0) {
		fprintf(stderr, "delivered in %.3f s (%.0f/s end to end)\n", now_s() - d->t0,
			d->n > 0 ? (double)d->n / (now_s() - d->t0) : 0.0);
		d->rc = 0;
		event_base_loopbreak(d->base);
		return;
	}
	if (now_s() > d->deadline) {
		fprintf(stderr, "timed out with %llu event(s) still spooled\n",
			audit_backlog(d->audit));
		d->rc = 1;
		event_base_loopbreak(d->base);
		return;
	}
	tv.tv_usec = 2000;
	evtimer_add(d->tick, &tv);
}

int
main(int argc, char **argv)
{
	struct audit_sink_cfg sinks[DRIVE_MAX_SINKS];
	struct audit_env env = { 0 };
	struct drive d = { .n = 100, .per_turn = 100, .rc = 1 };
	struct http_client *http;
	struct timeval tv = { 0, 0 };
	char err[1024];
	size_t nsinks = 0;
	double wait = 60;
	int ch;

	log_init("audit-drive", 0);
	while ((ch = getopt(argc, argv, "s:n:b:S:pw:")) != -1) {
		switch (ch) {
		case 's':
			if (nsinks == DRIVE_MAX_SINKS)
				fatalx("too many sinks");
			if (audit_sink_parse(optarg, &sinks[nsinks], err, sizeof(err)) != 0)
				fatalx("-s %s: %s", optarg, err);
			nsinks++;
			break;
		case 'n':
			d.n = atoll(optarg);
			break;
		case 'b':
			d.per_turn = atoll(optarg) > 0 ? atoll(optarg) : 1;
			break;
		case 'S':
			d.next = atoll(optarg);
			break;
		case 'p':
			d.print = 1;
			break;
		case 'w':
			wait = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: audit-drive -s SPEC... [-n N] [-b PER_TURN] "
					"[-S FIRST] [-p] [-w SECONDS]\n");
			return 2;
		}
	}
	d.n += d.next;
	signal(SIGPIPE, SIG_IGN);
	if ((d.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if ((http = http_client_new(d.base, 10000)) == NULL)
		fatalx("cannot create the HTTP client");
	env.base = d.base;
	env.http = http;
	env.http_post = http_post;
	env.http_cancel = http_cancel;
	env.app_name = "audit-drive";
	if ((d.audit = audit_open_sinks(&env, sinks, nsinks, AUDIT_FAILURE_OPEN, err,
					sizeof(err))) == NULL)
		fatalx("%s", err);
	if ((d.tick = evtimer_new(d.base, drive_tick, &d)) == NULL)
		fatalx("cannot create a timer");
	d.t0 = now_s();
	d.deadline = d.t0 + wait;
	evtimer_add(d.tick, &tv);
	event_base_dispatch(d.base);
	event_free(d.tick);
	audit_close(d.audit);
	http_client_free(http);
	event_base_free(d.base);
	return d.rc;
}
