/*
 * saw-loadclient: a load client for the login benchmark (tests/bench/bench-login.sh).
 *
 *   saw-loadclient rate -H HOST -p PORT -u USER -i KEYFILE [-c THREADS] [-n COUNT] [-t SECONDS]
 *                       [-e COMMAND]   (COMMAND defaults to "whoami", which the broker runs)
 *   saw-loadclient hold -H HOST -p PORT -u USER -i KEYFILE [-c THREADS] [-n COUNT] [-t SECONDS]
 *
 * "rate" runs complete logins (connect, publickey auth, session channel, exec, read to EOF,
 * exit status, close, disconnect) from THREADS threads until COUNT logins were attempted or
 * SECONDS passed, and prints one line:
 *   connections=N errors=E seconds=S rate=R/s p50_ms=P p99_ms=Q
 *
 * "hold" opens COUNT connections that are authenticated and then idle (no channel), at most
 * THREADS of them being set up at a time so that the server's limit on unauthenticated
 * connections (sshd's MaxStartups) is not what gets measured. When they are up it prints
 *   held=N errors=E seconds=S
 * and keeps them until standard input reaches EOF, SIGTERM or SIGINT arrives, or SECONDS (counted
 * from the start) pass; then it disconnects them all.
 *
 * The host key is accepted without any check: this is a benchmark on loopback only. The exit
 * status is 0 when every connection succeeded, 1 when some failed, 2 for a usage or set-up error.
 *
 * Threads: libssh allows one session per thread; each thread imports its own copy of the key and
 * only ever touches the sessions it created, until "hold" joins them and the main thread takes
 * over every session.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <libssh/libssh.h>

#define LC_MAX_THREADS 256
#define LC_MAX_COUNT 100000
#define LC_MAX_SECONDS 3600
/* Per-connection bound on every blocking libssh call (connect, auth, channel requests). */
#define LC_SSH_TIMEOUT_S 20L
/* Per-login bound on reading the command's output, so a stuck server cannot hang a thread. */
#define LC_READ_TIMEOUT_MS 20000
/* Only the first few errors are printed in full; the rest are counted. */
#define LC_MAX_REPORTED_ERRORS 5

enum lc_mode {
	LC_RATE,
	LC_HOLD
};

struct lc_opts {
	enum lc_mode mode;
	const char *host;
	unsigned int port;
	const char *user;
	const char *keyfile;
	const char *command;
	unsigned int threads;
	unsigned int count;
	unsigned int seconds;
};

/* The run's one context: created in main, shared read-mostly by the worker threads. */
struct lc_ctx {
	struct lc_opts opts;
	double start;	 /* monotonic seconds */
	double deadline; /* monotonic seconds */
	atomic_uint next_ticket;
	atomic_uint ok;
	atomic_uint errors;
	/* rate: latency in ms of each ticket, negative if that login failed. */
	double *latency_ms;
	/* hold: the session of each ticket, NULL if it failed. Owned by the ctx. */
	ssh_session *sessions;
	pthread_mutex_t report_lock;
	unsigned int reported;
};

static double
lc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lc_report_error(struct lc_ctx *ctx, unsigned int ticket, const char *what, const char *detail)
{
	pthread_mutex_lock(&ctx->report_lock);
	if (ctx->reported < LC_MAX_REPORTED_ERRORS)
		fprintf(stderr, "saw-loadclient: connection %u: %s%s%s\n", ticket, what,
			detail != NULL ? ": " : "", detail != NULL ? detail : "");
	else if (ctx->reported == LC_MAX_REPORTED_ERRORS)
		fprintf(stderr, "saw-loadclient: further errors are counted, not printed\n");
	ctx->reported++;
	pthread_mutex_unlock(&ctx->report_lock);
}

/*
 * Connects and authenticates with the key alone. Returns the session, or NULL after reporting
 * why. The caller owns the session (ssh_disconnect + ssh_free).
 */
static ssh_session
lc_login(struct lc_ctx *ctx, unsigned int ticket, ssh_key key)
{
	const struct lc_opts *o = &ctx->opts;
	ssh_session s = NULL;
	int port = (int)o->port;
	int no = 0, yes = 1;
	bool no_config = false;
	long timeout = LC_SSH_TIMEOUT_S;
	int rc;

	s = ssh_new();
	if (s == NULL) {
		lc_report_error(ctx, ticket, "out of memory", NULL);
		return NULL;
	}
	/* Loopback benchmark: no ~/.ssh/config, no known_hosts, host key accepted unchecked. */
	if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no_config) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_HOST, o->host) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_USER, o->user) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &no) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_NODELAY, &yes) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0) {
		lc_report_error(ctx, ticket, "cannot set session options", ssh_get_error(s));
		goto fail;
	}
	if (ssh_connect(s) != SSH_OK) {
		lc_report_error(ctx, ticket, "connect failed", ssh_get_error(s));
		goto fail;
	}
	rc = ssh_userauth_publickey(s, NULL, key);
	switch (rc) {
	case SSH_AUTH_SUCCESS:
		return s;
	case SSH_AUTH_PARTIAL:
		/* The broker accepts the key but wants more (a device login): no live session. */
		lc_report_error(ctx, ticket,
				"key not bound to a session (server answered partial success; "
				"log in once interactively first)",
				NULL);
		break;
	case SSH_AUTH_DENIED:
		lc_report_error(ctx, ticket, "public key refused by the server", NULL);
		break;
	default:
		lc_report_error(ctx, ticket, "authentication failed", ssh_get_error(s));
		break;
	}
	ssh_disconnect(s);
fail:
	ssh_free(s);
	return NULL;
}

/* Runs the command on an authenticated session; 0 if it exited with status 0. */
static int
lc_exec(struct lc_ctx *ctx, unsigned int ticket, ssh_session s)
{
	ssh_channel ch = NULL;
	char buf[4096];
	double until = lc_now() + LC_READ_TIMEOUT_MS / 1000.0;
	int status, n, ret = -1;

	ch = ssh_channel_new(s);
	if (ch == NULL) {
		lc_report_error(ctx, ticket, "cannot create a channel", ssh_get_error(s));
		return -1;
	}
	if (ssh_channel_open_session(ch) != SSH_OK) {
		lc_report_error(ctx, ticket, "session channel refused", ssh_get_error(s));
		goto out;
	}
	if (ssh_channel_request_exec(ch, ctx->opts.command) != SSH_OK) {
		lc_report_error(ctx, ticket, "exec request refused", ssh_get_error(s));
		goto out;
	}
	/* Read (and discard) stdout and stderr until EOF, bounded in time. */
	while (!ssh_channel_is_eof(ch)) {
		if (lc_now() > until) {
			lc_report_error(ctx, ticket, "no EOF from the command in time", NULL);
			goto out;
		}
		n = ssh_channel_read_timeout(ch, buf, sizeof(buf), 0, 1000);
		if (n == SSH_ERROR) {
			lc_report_error(ctx, ticket, "read failed", ssh_get_error(s));
			goto out;
		}
		n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), 1);
		if (n == SSH_ERROR) {
			lc_report_error(ctx, ticket, "read failed", ssh_get_error(s));
			goto out;
		}
	}
	status = ssh_channel_get_exit_status(ch);
	if (status != 0) {
		char detail[32];

		snprintf(detail, sizeof(detail), "%d", status);
		lc_report_error(ctx, ticket,
				status < 0 ? "no exit status from the server" :
					     "command exited with status",
				status < 0 ? NULL : detail);
		goto out;
	}
	ret = 0;
out:
	ssh_channel_close(ch);
	ssh_channel_free(ch);
	return ret;
}

static ssh_key
lc_import_key(const char *path)
{
	ssh_key key = NULL;

	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		fprintf(stderr,
			"saw-loadclient: cannot read the private key %s (it must exist, be "
			"readable and have no passphrase)\n",
			path);
		return NULL;
	}
	return key;
}

static void *
lc_worker(void *arg)
{
	struct lc_ctx *ctx = arg;
	ssh_key key = NULL;
	ssh_session s;
	unsigned int ticket;
	double t0;

	key = lc_import_key(ctx->opts.keyfile);
	if (key == NULL)
		return NULL;
	for (;;) {
		if (lc_now() >= ctx->deadline)
			break;
		ticket = atomic_fetch_add(&ctx->next_ticket, 1);
		if (ticket >= ctx->opts.count)
			break;
		t0 = lc_now();
		s = lc_login(ctx, ticket, key);
		if (s == NULL) {
			atomic_fetch_add(&ctx->errors, 1);
			continue;
		}
		if (ctx->opts.mode == LC_HOLD) {
			ctx->sessions[ticket] = s;
			atomic_fetch_add(&ctx->ok, 1);
			continue;
		}
		if (lc_exec(ctx, ticket, s) == 0) {
			ssh_disconnect(s);
			ssh_free(s);
			ctx->latency_ms[ticket] = (lc_now() - t0) * 1000.0;
			atomic_fetch_add(&ctx->ok, 1);
		} else {
			ssh_disconnect(s);
			ssh_free(s);
			atomic_fetch_add(&ctx->errors, 1);
		}
	}
	ssh_key_free(key);
	return NULL;
}

static int
lc_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
lc_percentile(const double *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static int
lc_run_threads(struct lc_ctx *ctx)
{
	pthread_t tids[LC_MAX_THREADS];
	unsigned int i, started = 0;
	int err;

	for (i = 0; i < ctx->opts.threads; i++) {
		err = pthread_create(&tids[i], NULL, lc_worker, ctx);
		if (err != 0) {
			fprintf(stderr, "saw-loadclient: cannot start a thread: %s\n",
				strerror(err));
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return started == 0 ? -1 : 0;
}

static int
lc_rate(struct lc_ctx *ctx)
{
	double *ok_ms = NULL, seconds;
	size_t n_ok = 0, i;
	unsigned int ok, errors;

	ctx->latency_ms = calloc(ctx->opts.count, sizeof(*ctx->latency_ms));
	ok_ms = calloc(ctx->opts.count, sizeof(*ok_ms));
	if (ctx->latency_ms == NULL || ok_ms == NULL) {
		fprintf(stderr, "saw-loadclient: out of memory\n");
		free(ok_ms);
		return 2;
	}
	for (i = 0; i < ctx->opts.count; i++)
		ctx->latency_ms[i] = -1.0;
	if (lc_run_threads(ctx) < 0) {
		free(ok_ms);
		return 2;
	}
	seconds = lc_now() - ctx->start;
	for (i = 0; i < ctx->opts.count; i++)
		if (ctx->latency_ms[i] >= 0.0)
			ok_ms[n_ok++] = ctx->latency_ms[i];
	qsort(ok_ms, n_ok, sizeof(*ok_ms), lc_cmp_double);
	ok = atomic_load(&ctx->ok);
	errors = atomic_load(&ctx->errors);
	printf("connections=%u errors=%u seconds=%.3f rate=%.1f/s p50_ms=%.1f p99_ms=%.1f\n", ok,
	       errors, seconds, seconds > 0 ? (double)ok / seconds : 0.0,
	       lc_percentile(ok_ms, n_ok, 50), lc_percentile(ok_ms, n_ok, 99));
	fflush(stdout);
	free(ok_ms);
	/* Stopping at the time limit (-t) is not an error: the rate is still measured. */
	return errors == 0 ? 0 : 1;
}

/* Why lc_hold_wait() stops; filled in by its fd callbacks. */
struct lc_hold_wait {
	bool stop;
	const char *why;
};

static int
lc_hold_stdin_cb(socket_t fd, int revents, void *userdata)
{
	struct lc_hold_wait *w = userdata;
	char buf[256];
	ssize_t n;

	(void)revents;
	n = read(fd, buf, sizeof(buf));
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		w->stop = true;
		w->why = "end of standard input";
	}
	return 0;
}

static int
lc_hold_signal_cb(socket_t fd, int revents, void *userdata)
{
	struct lc_hold_wait *w = userdata;
	struct signalfd_siginfo si;

	(void)revents;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		w->stop = true;
		w->why = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
	}
	return 0;
}

/*
 * Waits with every held session in one ssh_event, so that whatever the server sends meanwhile
 * (keep-alive requests, a disconnect) is answered or noticed, until stdin reaches EOF, a
 * signal arrives, or the deadline passes. Returns how many sessions the server dropped.
 */
static unsigned int
lc_hold_wait(struct lc_ctx *ctx, int sigfd)
{
	struct lc_hold_wait w = { .stop = false, .why = NULL };
	ssh_event ev = NULL;
	unsigned int i, lost = 0;
	bool stdin_watched = false;
	double left;

	ev = ssh_event_new();
	if (ev == NULL) {
		fprintf(stderr, "saw-loadclient: out of memory\n");
		return 0;
	}
	for (i = 0; i < ctx->opts.count; i++)
		if (ctx->sessions[i] != NULL &&
		    ssh_event_add_session(ev, ctx->sessions[i]) != SSH_OK)
			fprintf(stderr, "saw-loadclient: cannot watch connection %u\n", i);
	if (ssh_event_add_fd(ev, STDIN_FILENO, POLLIN, lc_hold_stdin_cb, &w) == SSH_OK)
		stdin_watched = true;
	ssh_event_add_fd(ev, sigfd, POLLIN, lc_hold_signal_cb, &w);
	while (!w.stop) {
		left = ctx->deadline - lc_now();
		if (left <= 0) {
			w.why = "time limit (-t) reached";
			break;
		}
		ssh_event_dopoll(ev, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
	}
	fprintf(stderr, "saw-loadclient: releasing the connections: %s\n", w.why);
	if (stdin_watched)
		ssh_event_remove_fd(ev, STDIN_FILENO);
	ssh_event_remove_fd(ev, sigfd);
	for (i = 0; i < ctx->opts.count; i++) {
		if (ctx->sessions[i] == NULL)
			continue;
		ssh_event_remove_session(ev, ctx->sessions[i]);
		if (!ssh_is_connected(ctx->sessions[i]))
			lost++;
	}
	ssh_event_free(ev);
	return lost;
}

static int
lc_hold(struct lc_ctx *ctx, int sigfd)
{
	unsigned int i, ok, errors, lost;

	ctx->sessions = calloc(ctx->opts.count, sizeof(*ctx->sessions));
	if (ctx->sessions == NULL) {
		fprintf(stderr, "saw-loadclient: out of memory\n");
		return 2;
	}
	if (lc_run_threads(ctx) < 0)
		return 2;
	ok = atomic_load(&ctx->ok);
	errors = atomic_load(&ctx->errors);
	printf("held=%u errors=%u seconds=%.3f\n", ok, errors, lc_now() - ctx->start);
	fflush(stdout);

	lost = lc_hold_wait(ctx, sigfd);
	if (lost > 0)
		fprintf(stderr, "saw-loadclient: the server closed %u of the held connections\n",
			lost);
	for (i = 0; i < ctx->opts.count; i++) {
		if (ctx->sessions[i] == NULL)
			continue;
		ssh_disconnect(ctx->sessions[i]);
		ssh_free(ctx->sessions[i]);
		ctx->sessions[i] = NULL;
	}
	return errors == 0 && lost == 0 && ok == ctx->opts.count ? 0 : 1;
}

static void
lc_usage(void)
{
	fprintf(stderr,
		"usage: saw-loadclient rate -H HOST -p PORT -u USER -i KEYFILE [-c THREADS] "
		"[-n COUNT] [-t SECONDS] [-e COMMAND]\n"
		"       saw-loadclient hold -H HOST -p PORT -u USER -i KEYFILE [-c THREADS] "
		"[-n COUNT] [-t SECONDS]\n");
}

static int
lc_parse_uint(const char *s, unsigned int min, unsigned int max, const char *what,
	      unsigned int *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "saw-loadclient: %s must be a number from %u to %u, not \"%s\"\n",
			what, min, max, s);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

static int
lc_parse_args(int argc, char **argv, struct lc_opts *o)
{
	int c;

	if (argc < 2) {
		lc_usage();
		return -1;
	}
	if (strcmp(argv[1], "rate") == 0) {
		o->mode = LC_RATE;
		o->threads = 8;
		o->count = 400;
		o->seconds = 60;
	} else if (strcmp(argv[1], "hold") == 0) {
		o->mode = LC_HOLD;
		o->threads = 8;
		o->count = 1000;
		o->seconds = 300;
	} else {
		lc_usage();
		return -1;
	}
	o->host = "127.0.0.1";
	o->command = "whoami";
	optind = 2;
	while ((c = getopt(argc, argv, "H:p:u:i:c:n:t:e:")) != -1) {
		switch (c) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			if (lc_parse_uint(optarg, 1, 65535, "the port (-p)", &o->port) < 0)
				return -1;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'i':
			o->keyfile = optarg;
			break;
		case 'c':
			if (lc_parse_uint(optarg, 1, LC_MAX_THREADS, "the thread count (-c)",
					  &o->threads) < 0)
				return -1;
			break;
		case 'n':
			if (lc_parse_uint(optarg, 1, LC_MAX_COUNT, "the connection count (-n)",
					  &o->count) < 0)
				return -1;
			break;
		case 't':
			if (lc_parse_uint(optarg, 1, LC_MAX_SECONDS, "the time limit (-t)",
					  &o->seconds) < 0)
				return -1;
			break;
		case 'e':
			o->command = optarg;
			break;
		default:
			lc_usage();
			return -1;
		}
	}
	if (optind != argc || o->port == 0 || o->user == NULL || o->keyfile == NULL) {
		if (optind == argc)
			fprintf(stderr, "saw-loadclient: -p PORT, -u USER and -i KEYFILE are "
					"required\n");
		lc_usage();
		return -1;
	}
	return 0;
}

/* Holding 1,000 connections needs more descriptors than the usual soft limit of 1,024. */
static void
lc_raise_nofile(unsigned int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "saw-loadclient: cannot raise the open-file limit: %s\n",
			strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 64)
		fprintf(stderr,
			"saw-loadclient: warning: the open-file limit (%ju) is too low for %u "
			"connections; raise the hard limit (ulimit -Hn)\n",
			(uintmax_t)rl.rlim_cur, need);
}

int
main(int argc, char **argv)
{
	struct lc_ctx ctx;
	ssh_key probe = NULL;
	sigset_t sigs;
	int sigfd = -1, ret = 2;

	memset(&ctx, 0, sizeof(ctx));
	if (lc_parse_args(argc, argv, &ctx.opts) < 0)
		return 2;
	lc_raise_nofile(ctx.opts.count);
	signal(SIGPIPE, SIG_IGN);

	/*
	 * SIGTERM and SIGINT are blocked in every thread and read from a signalfd by "hold"; in
	 * "rate" they keep their default action.
	 */
	if (ctx.opts.mode == LC_HOLD) {
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGTERM);
		sigaddset(&sigs, SIGINT);
		if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
		    (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
			fprintf(stderr, "saw-loadclient: cannot set up signal handling: %s\n",
				strerror(errno));
			return 2;
		}
	}
	if (ssh_init() != SSH_OK) {
		fprintf(stderr, "saw-loadclient: cannot initialise libssh\n");
		goto out;
	}
	/* Fail once with a clear message rather than once per thread. */
	probe = lc_import_key(ctx.opts.keyfile);
	if (probe == NULL)
		goto out_ssh;
	ssh_key_free(probe);

	if (pthread_mutex_init(&ctx.report_lock, NULL) != 0)
		goto out_ssh;
	atomic_init(&ctx.next_ticket, 0);
	atomic_init(&ctx.ok, 0);
	atomic_init(&ctx.errors, 0);
	ctx.start = lc_now();
	ctx.deadline = ctx.start + ctx.opts.seconds;
	ret = ctx.opts.mode == LC_RATE ? lc_rate(&ctx) : lc_hold(&ctx, sigfd);
	pthread_mutex_destroy(&ctx.report_lock);
out_ssh:
	ssh_finalize();
out:
	free(ctx.latency_ms);
	free(ctx.sessions);
	if (sigfd >= 0)
		close(sigfd);
	return ret;
}
