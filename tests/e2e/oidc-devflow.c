/*
 * End-to-end check of broker-oidc.c + broker-http.c against the test IdP: one device login
 * on the broker's own event loop, approved or denied in a "browser" (tests/tools/saw-approve,
 * run as a child process without blocking the loop), or an unreachable issuer.
 *
 *   oidc-devflow --issuer URL --mode approve|deny|unreachable|down [--login alice]
 *                [--approver PATH] [--expect-group saw-users] [--idp-pid PID]
 *
 * "down": discovery and JWKS succeed, then the IdP (--idp-pid) is stopped and the login
 * must fail with UNREACHABLE at the device authorization step.
 *
 *   oidc-devflow --issuer URL --mode expect --expect OUTCOME [--detail TEXT] [--timeout S]
 *
 * "expect": against a scripted IdP that answers by itself (nobody approves anything): the
 * outcome must be OUTCOME (approved, denied, expired, protocol, unreachable, invalid_token)
 * and the failure detail must contain TEXT. --timeout sets OIDCTimeout (default 5 s).
 *
 * Exit status 0 when the outcome is the expected one, 1 otherwise; one PASS/FAIL line each.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "audit/log.h"
#include "broker/broker-config.h"
#include "broker/broker-http.h"
#include "broker/broker-oidc.h"

#define READY_TIMEOUT_S 15
#define TEST_TIMEOUT_S 90

enum mode {
	MODE_APPROVE,
	MODE_DENY,
	MODE_UNREACHABLE,
	MODE_DOWN,
	MODE_EXPECT,
};

static const char *const outcome_names[] = {
	[OIDC_FAIL_NONE] = "approved",
	[OIDC_FAIL_UNREACHABLE] = "unreachable",
	[OIDC_FAIL_DENIED] = "denied",
	[OIDC_FAIL_EXPIRED] = "expired",
	[OIDC_FAIL_INVALID_TOKEN] = "invalid_token",
	[OIDC_FAIL_PROTOCOL] = "protocol",
};

struct devflow {
	struct event_base *base;
	struct broker_config cfg;
	struct http_client *http;
	struct oidc *oidc;
	struct oidc_device *dev;
	struct event *tick;
	struct event *sigchld;
	struct event *watchdog;
	enum mode mode;
	const char *login;
	const char *approver;
	const char *group;
	const char *expect;
	const char *detail;
	pid_t child;
	pid_t idp_pid;
	int child_status;
	int ticks;
	struct timespec started;
	int result; /* 0 pass, 1 fail, -1 undecided */
};

static double
elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void devflow_finish(struct devflow *t, int pass, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
devflow_finish(struct devflow *t, int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", pass ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (t->result != 1)
		t->result = pass ? 0 : 1;
	event_base_loopexit(t->base, NULL);
}

static bool
claims_have_group(const json_t *claims, const char *group)
{
	json_t *g = json_object_get(claims, "groups"), *v;
	size_t i;

	json_array_foreach(g, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), group) == 0)
			return true;
	}
	return false;
}

static void
devflow_spawn_approver(struct devflow *t, const char *uri)
{
	const char *argv[6];
	int n = 0;

	argv[n++] = t->approver;
	argv[n++] = uri;
	argv[n++] = t->login;
	if (t->mode == MODE_DENY)
		argv[n++] = "--deny";
	argv[n] = NULL;
	fflush(NULL);
	if ((t->child = fork()) == -1) {
		devflow_finish(t, 0, "fork: %s", strerror(errno));
		return;
	}
	if (t->child == 0) {
		execv(t->approver, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", t->approver, strerror(errno));
		_exit(127);
	}
}

static void
devflow_device_cb(struct oidc_device *d, enum oidc_device_event ev, void *arg)
{
	struct devflow *t = arg;
	const json_t *claims;
	const char *uri, *user;
	double secs = elapsed_s(&t->started);

	switch (ev) {
	case OIDC_DEVICE_CODE:
		uri = oidc_device_verification_uri_complete(d);
		printf("device code: user code %s, verification URI %s, complete %s, expires in "
		       "%lld s\n",
		       oidc_device_user_code(d), oidc_device_verification_uri(d),
		       uri ? uri : "(none)",
		       (long long)(oidc_device_expires_at(d) - (int64_t)time(NULL)));
		fflush(stdout);
		if (t->mode == MODE_UNREACHABLE || t->mode == MODE_DOWN) {
			devflow_finish(t, 0, "got a device code from an unreachable issuer");
			return;
		}
		if (t->mode == MODE_EXPECT)
			return; /* the scripted IdP decides by itself */
		if (uri == NULL) {
			devflow_finish(t, 0, "no verification_uri_complete");
			return;
		}
		devflow_spawn_approver(t, uri);
		return;
	case OIDC_DEVICE_APPROVED:
		claims = oidc_device_claims(d);
		user = json_string_value(json_object_get(claims, "preferred_username"));
		if (t->mode == MODE_EXPECT)
			devflow_finish(t,
				       strcmp(t->expect, "approved") == 0 && user != NULL &&
					       strcmp(user, t->login) == 0,
				       "approved as %s after %.1f s, expected %s",
				       user ? user : "(none)", secs, t->expect);
		else if (t->mode != MODE_APPROVE)
			devflow_finish(t, 0, "approved, expected a failure");
		else if (user == NULL || strcmp(user, t->login) != 0)
			devflow_finish(t, 0, "approved as %s, expected %s", user ? user : "(none)",
				       t->login);
		else if (t->group != NULL && !claims_have_group(claims, t->group))
			devflow_finish(t, 0, "approved as %s but groups lacks %s", user, t->group);
		else
			devflow_finish(t, 1, "approved, preferred_username=%s%s%s (%.1f s)", user,
				       t->group ? ", groups has " : "", t->group ? t->group : "",
				       secs);
		break;
	case OIDC_DEVICE_FAILED:
		printf("failed: %s, %s\n", outcome_names[oidc_device_failure(d)],
		       oidc_device_detail(d));
		if (t->mode == MODE_EXPECT)
			devflow_finish(
				t,
				strcmp(outcome_names[oidc_device_failure(d)], t->expect) == 0 &&
					(t->detail == NULL ||
					 strstr(oidc_device_detail(d), t->detail) != NULL),
				"%s after %.1f s: %s (expected %s%s%s)",
				outcome_names[oidc_device_failure(d)], secs, oidc_device_detail(d),
				t->expect, t->detail ? ": " : "", t->detail ? t->detail : "");
		else if (t->mode == MODE_DENY && oidc_device_failure(d) == OIDC_FAIL_DENIED)
			devflow_finish(t, 1, "denied: %s (%.1f s)", oidc_device_detail(d), secs);
		else if ((t->mode == MODE_UNREACHABLE || t->mode == MODE_DOWN) &&
			 oidc_device_failure(d) == OIDC_FAIL_UNREACHABLE && secs < 2.0)
			devflow_finish(t, 1, "unreachable after %.2f s: %s", secs,
				       oidc_device_detail(d));
		else
			devflow_finish(t, 0, "failure %d after %.1f s: %s",
				       (int)oidc_device_failure(d), secs, oidc_device_detail(d));
		break;
	}
	/* Freeing from inside the callback is part of the contract under test. */
	oidc_device_free(d);
	t->dev = NULL;
}

static void
devflow_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct devflow *t = arg;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != t->child)
			continue;
		t->child = -1;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			devflow_finish(t, 0, "saw-approve failed (status %d)", status);
			return;
		}
		printf("saw-approve finished; asking for an early poll\n");
		fflush(stdout);
		/* What the SSH side does when the user presses Enter. */
		if (t->dev != NULL)
			oidc_device_poll_now(t->dev);
	}
}

static void
devflow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct devflow *t = arg;
	struct timeval tv = { 0, 100000 };

	if (t->mode == MODE_UNREACHABLE) {
		/* Let discovery fail once at least, then log in: must fail at once. */
		if (++t->ticks < 15) {
			evtimer_add(t->tick, &tv);
			return;
		}
		if (oidc_ready(t->oidc)) {
			devflow_finish(t, 0, "OIDC client ready with an unreachable issuer");
			return;
		}
	} else if (t->mode == MODE_DOWN && oidc_ready(t->oidc) && t->idp_pid > 0) {
		/* Ready: now take the IdP away and give it a moment to close its socket. */
		kill(t->idp_pid, SIGTERM);
		t->idp_pid = 0;
		tv.tv_usec = 0;
		tv.tv_sec = 1;
		evtimer_add(t->tick, &tv);
		return;
	} else if (!oidc_ready(t->oidc)) {
		if (++t->ticks >= READY_TIMEOUT_S * 10) {
			devflow_finish(t, 0, "discovery/JWKS not done after %d s", READY_TIMEOUT_S);
			return;
		}
		evtimer_add(t->tick, &tv);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	if ((t->dev = oidc_device_start(t->oidc, devflow_device_cb, t)) == NULL)
		devflow_finish(t, 0, "oidc_device_start returned NULL");
}

static void
devflow_watchdog(evutil_socket_t fd, short what, void *arg)
{
	devflow_finish(arg, 0, "no outcome within %d s", TEST_TIMEOUT_S);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: oidc-devflow --issuer URL --mode approve|deny|unreachable|down|expect "
		"[--login NAME] [--approver PATH] [--expect-group GROUP] [--idp-pid PID] "
		"[--expect OUTCOME] [--detail TEXT] [--timeout SECONDS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "issuer", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, 'm' },
		{ "login", required_argument, NULL, 'l' },
		{ "approver", required_argument, NULL, 'a' },
		{ "expect-group", required_argument, NULL, 'g' },
		{ "idp-pid", required_argument, NULL, 'p' },
		{ "expect", required_argument, NULL, 'e' },
		{ "detail", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	static char *scopes[] = { "openid", "profile", "groups" };
	static char *algs[] = { "RS256", "ES256" };
	struct timeval now = { 0, 0 }, limit = { TEST_TIMEOUT_S, 0 };
	struct devflow t;
	const char *mode = NULL;
	int ch;

	memset(&t, 0, sizeof(t));
	t.result = -1;
	t.child = -1;
	t.login = "alice";
	t.approver = "tests/tools/saw-approve";
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			t.cfg.oidc_issuer = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'l':
			t.login = optarg;
			break;
		case 'a':
			t.approver = optarg;
			break;
		case 'g':
			t.group = optarg;
			break;
		case 'p':
			t.idp_pid = (pid_t)atoi(optarg);
			break;
		case 'e':
			t.expect = optarg;
			break;
		case 'd':
			t.detail = optarg;
			break;
		case 't':
			t.cfg.oidc_timeout = atoll(optarg);
			break;
		default:
			usage();
		}
	}
	if (t.cfg.oidc_issuer == NULL || mode == NULL)
		usage();
	if (strcmp(mode, "approve") == 0)
		t.mode = MODE_APPROVE;
	else if (strcmp(mode, "deny") == 0)
		t.mode = MODE_DENY;
	else if (strcmp(mode, "unreachable") == 0)
		t.mode = MODE_UNREACHABLE;
	else if (strcmp(mode, "down") == 0 && t.idp_pid > 0)
		t.mode = MODE_DOWN;
	else if (strcmp(mode, "expect") == 0 && t.expect != NULL)
		t.mode = MODE_EXPECT;
	else
		usage();

	log_init("oidc-devflow", 1);
	/* Filled by hand: only the OIDC part of the broker configuration matters here. */
	t.cfg.oidc_client_id = "saw-broker";
	t.cfg.oidc_scopes.v = scopes;
	t.cfg.oidc_scopes.n = 3;
	t.cfg.oidc_algorithms.v = algs;
	t.cfg.oidc_algorithms.n = 2;
	if (t.cfg.oidc_timeout <= 0)
		t.cfg.oidc_timeout = 5;

	if ((t.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((t.http = http_client_new(t.base, t.cfg.oidc_timeout * 1000)) == NULL)
		fatalx("http_client_new");
	if ((t.oidc = oidc_new(t.base, t.http, &t.cfg)) == NULL)
		fatalx("oidc_new failed");
	t.tick = evtimer_new(t.base, devflow_tick, &t);
	t.watchdog = evtimer_new(t.base, devflow_watchdog, &t);
	t.sigchld = evsignal_new(t.base, SIGCHLD, devflow_sigchld, &t);
	if (t.tick == NULL || t.watchdog == NULL || t.sigchld == NULL ||
	    evsignal_add(t.sigchld, NULL) != 0)
		fatalx("libevent setup");
	evtimer_add(t.tick, &now);
	evtimer_add(t.watchdog, &limit);

	event_base_dispatch(t.base);

	if (t.child > 0) {
		kill(t.child, SIGTERM);
		waitpid(t.child, NULL, 0);
	}
	oidc_device_free(t.dev);
	oidc_free(t.oidc);
	http_client_free(t.http);
	event_free(t.tick);
	event_free(t.watchdog);
	event_free(t.sigchld);
	event_base_free(t.base);
	if (t.result == -1)
		printf("FAIL: the event loop ended without an outcome\n");
	return t.result == 0 ? 0 : 1;
}
