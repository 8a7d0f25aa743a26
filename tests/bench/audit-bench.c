/*
 * audit-bench: throughput of the audit pipeline (tests/bench/bench-audit.sh drives it).
 *
 *   audit-bench [-b PER_TURN] file PATH N       N events to a file sink (hash chain,
 *                                               fdatasync batched by the 10 ms timer):
 *                                               events/s until flushed
 *   audit-bench [-b PER_TURN] http URL SPOOL N  N events into the spool, forwarded to URL:
 *                                               events/s emitted and delivered (spool empty)
 *   audit-bench [-b PER_TURN] syslog SOCKET N   N events to the syslog sink at SOCKET (the
 *                                               peer's input)
 *   audit-bench lines OUT N                     the N events' JSON lines as the sinks see
 *                                               them, to OUT
 *
 * Events are built in the loop (as the broker does: build, emit), PER_TURN (default 100, as
 * audit-drive) per loop turn so that timers and the forwarder run in between: the broker
 * emits a few events per callback, not thousands. Prints one "RESULT key=value..." line,
 * with the longest single audit_emit() (emit_max_ms: how long the loop can stall on the
 * audit pipeline) and how many took over 10 ms. SAW_BENCH_DEBUG=1 logs at debug level
 * (the spool's checkpoint counts at close). Bounded: at most 10,000,000 events and 300 s.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-http.h"

#define BENCH_MAX_EVENTS 10000000LL
#define BENCH_MAX_SECONDS 300.0
#define BENCH_PER_TURN 100
#define BENCH_SLOW_EMIT_S 0.010

struct bench {
	struct event_base *base;
	struct audit *audit;
	struct event *tick;
	long long next, n, failed, per_turn;
	long long slow_emits;	    /* audit_emit() calls over BENCH_SLOW_EMIT_S */
	unsigned long long backlog; /* in the spool when the last event was emitted */
	double t0, t_emitted, t_done, emit_max;
	bool wait_delivery;
	bool flow_control;
	int rc;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
bench_event(long long i)
{
	struct ocsf_subject s = {
		.username = "alice",
		.uid = "00u1abcd2EFGH3ijk4l5",
		.issuer = "https://idp.example.com",
		.session_uid = "0123456789abcdef0123456789abcdef",
		.src_ip = "192.0.2.10",
		.src_port = (int)(i % 60000) + 1,
		.dst_ip = "198.51.100.1",
		.dst_port = 22,
	};

	return ocsf_ssh_activity(i % 2 ? OCSF_SSH_OPEN : OCSF_SSH_CLOSE, &s, OCSF_SSH_AUTH_PUBKEY,
				 i % 2 ? NULL : "closed by client", ocsf_now_ms());
}

static void
bench_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	struct timeval tv = { 0, 0 };
	long long i;

	/* syslog: a sender that waits while the receiver is behind (as a blocking syslog(3)
	 * would), so the peer is measured at the rate it can take, without losses. */
	if (b->flow_control && !audit_healthy(b->audit)) {
		tv.tv_usec = 200;
		evtimer_add(b->tick, &tv);
		return;
	}
	for (i = 0; i < b->per_turn && b->next < b->n; i++, b->next++) {
		json_t *ev = bench_event(b->next);
		double t = now_s();

		if (audit_emit(b->audit, ev) != 0)
			b->failed++;
		t = now_s() - t;
		if (t > b->emit_max)
			b->emit_max = t;
		if (t > BENCH_SLOW_EMIT_S)
			b->slow_emits++;
	}
	if (b->next < b->n) {
		evtimer_add(b->tick, &tv);
		return;
	}
	if (b->t_emitted == 0) {
		audit_flush(b->audit); /* the last batch's fdatasync counts */
		b->t_emitted = now_s();
		b->backlog = audit_backlog(b->audit);
	}
	/* Done when the spool is empty (http) and no sink holds events back (syslog). */
	if ((!b->wait_delivery || audit_backlog(b->audit) == 0) && audit_healthy(b->audit)) {
		b->t_done = now_s();
		b->rc = 0;
		event_base_loopbreak(b->base);
		return;
	}
	if (now_s() - b->t0 > BENCH_MAX_SECONDS) {
		fprintf(stderr, "audit-bench: gave up after %.0f s, %llu event(s) undelivered\n",
			BENCH_MAX_SECONDS, audit_backlog(b->audit));
		b->rc = 1;
		event_base_loopbreak(b->base);
		return;
	}
	tv.tv_usec = 1000;
	evtimer_add(b->tick, &tv);
}

static int
bench_lines(const char *out, long long n)
{
	FILE *fp = fopen(out, "w");
	long long i;
	json_t *ev;
	char *s;

	if (fp == NULL)
		fatal("%s", out);
	for (i = 0; i < n; i++) {
		ev = bench_event(i);
		s = json_dumps(ev, JSON_COMPACT);
		fprintf(fp, "%s\n", s);
		free(s);
		json_decref(ev);
	}
	return fclose(fp) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct audit_sink_cfg cfg;
	struct audit_env env = { 0 };
	struct bench b = { .rc = 1, .per_turn = BENCH_PER_TURN };
	struct http_client *http = NULL;
	struct timeval tv = { 0, 0 };
	char spec[8192], err[1024];
	const char *mode;
	struct rusage ru;
	double cpu, loop_cpu;
	int ch;

	log_init("audit-bench", getenv("SAW_BENCH_DEBUG") != NULL);
	while ((ch = getopt(argc, argv, "b:")) != -1) {
		if (ch != 'b' || atoll(optarg) < 1 || atoll(optarg) > 100000)
			fatalx("usage: audit-bench [-b PER_TURN (1..100000)] MODE ...");
		b.per_turn = atoll(optarg);
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 4)
		fatalx("usage: audit-bench [-b PER_TURN] file PATH N | http URL SPOOL N | "
		       "syslog SOCKET N | lines OUT N");
	mode = argv[1];
	b.n = atoll(argv[argc - 1]);
	if (b.n <= 0 || b.n > BENCH_MAX_EVENTS)
		fatalx("N must be 1..%lld", BENCH_MAX_EVENTS);
	if (strcmp(mode, "lines") == 0)
		return bench_lines(argv[2], b.n);
	if (strcmp(mode, "file") == 0)
		snprintf(spec, sizeof(spec), "file %s", argv[2]);
	else if (strcmp(mode, "syslog") == 0)
		snprintf(spec, sizeof(spec), "syslog socket=%s", argv[2]);
	else if (strcmp(mode, "http") == 0 && argc == 5)
		snprintf(spec, sizeof(spec), "http %s format=json spool=%s batch=2000 retry-max=1s",
			 argv[2], argv[3]);
	else
		fatalx("unknown mode %s", mode);
	if (audit_sink_parse(spec, &cfg, err, sizeof(err)) != 0)
		fatalx("%s: %s", spec, err);
	signal(SIGPIPE, SIG_IGN);
	if ((b.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	env.base = b.base;
	env.app_name = "audit-bench";
	b.flow_control = cfg.kind == AUDIT_SINK_SYSLOG;
	if (cfg.kind == AUDIT_SINK_HTTP) {
		if ((http = http_client_new(b.base, 30000)) == NULL)
			fatalx("cannot create the HTTP client");
		env.http = http;
		env.http_post = http_post;
		env.http_cancel = http_cancel;
		b.wait_delivery = true;
	}
	if ((b.audit = audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, sizeof(err))) ==
	    NULL)
		fatalx("%s", err);
	b.tick = evtimer_new(b.base, bench_tick, &b);
	b.t0 = now_s();
	evtimer_add(b.tick, &tv);
	event_base_dispatch(b.base);
	getrusage(RUSAGE_THREAD, &ru);
	loop_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	/* cpu_s is what the process consumed, its helper threads (fdatasync, checkpoints)
	 * included; loop_cpu_s is the event loop's thread alone: its capacity. */
	printf("RESULT mode=%s events=%lld per_turn=%lld not_durable=%lld emit_s=%.3f "
	       "emit_rate=%.0f backlog=%llu done_s=%.3f done_rate=%.0f cpu_s=%.3f cpu_rate=%.0f "
	       "loop_cpu_s=%.3f loop_cpu_rate=%.0f lost=%llu emit_max_ms=%.1f "
	       "emits_over_10ms=%lld\n",
	       mode, b.n, b.per_turn, b.failed, b.t_emitted - b.t0,
	       (double)b.n / (b.t_emitted - b.t0), b.backlog, b.t_done - b.t0,
	       (double)b.n / (b.t_done - b.t0), cpu, (double)b.n / cpu, loop_cpu,
	       (double)b.n / loop_cpu, audit_lost(b.audit), b.emit_max * 1000, b.slow_emits);
	event_free(b.tick);
	audit_close(b.audit);
	http_client_free(http);
	event_base_free(b.base);
	return b.rc;
}
