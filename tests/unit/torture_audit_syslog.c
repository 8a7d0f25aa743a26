/*
 * syslog sink: RFC 5424 lines on an AF_UNIX datagram socket the test binds; a receiver that
 * goes away and comes back gets the queued events in order; several sinks at once.
 */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "audit/ocsf.h"

struct fixture {
	char dir[64];
	char sock[108];
	char file[PATH_MAX + 32];
	int fd;
};

static int
bind_dgram(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	/* sun_path is short: a short directory under /tmp. */
	snprintf(f->dir, sizeof(f->dir), "/tmp/tsys.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/log", f->dir);
	snprintf(f->file, sizeof(f->file), "%s/audit.jsonl", f->dir);
	f->fd = bind_dgram(f->sock);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->fd >= 0)
		close(f->fd);
	unlink(f->sock);
	unlink(f->file);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct audit *
open_syslog(struct fixture *f, struct event_base *base, bool with_file)
{
	struct audit_env env = { .base = base, .app_name = "saw-brokerd" };
	struct audit_sink_cfg cfg[2];
	char spec[PATH_MAX + 64], err[512];
	struct audit *a;

	snprintf(spec, sizeof(spec), "syslog socket=%s facility=authpriv", f->sock);
	assert_int_equal(audit_sink_parse(spec, &cfg[0], err, sizeof(err)), 0);
	snprintf(spec, sizeof(spec), "file %s", f->file);
	assert_int_equal(audit_sink_parse(spec, &cfg[1], err, sizeof(err)), 0);
	a = audit_open_sinks(&env, cfg, with_file ? 2 : 1, AUDIT_FAILURE_CLOSED, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	return a;
}

static char *
recv_line(int fd, size_t *len)
{
	static char buf[256 * 1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void
torture_syslog_format(void **state)
{
	struct fixture *f = *state;
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	struct audit *a = open_syslog(f, NULL, false);
	json_t *ev, *back;
	regex_t re;
	regmatch_t m[8];
	char *line, host[256], *json, *uid;
	size_t len;

	/* RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD
	 * SP MSG; the timestamp in UTC with milliseconds. */
	assert_int_equal(
		regcomp(&re,
			"^<([0-9]{1,3})>1 "
			"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z) "
			"([!-~]{1,255}) ([!-~]{1,48}) ([0-9]+) (OCSF-[0-9]+) - (\\{.*\\})$",
			REG_EXTENDED),
		0);
	ev = ocsf_auth_logon(&s, true, NULL, 1700000000123LL);
	uid = strdup(json_string_value(json_object_get(json_object_get(ev, "metadata"), "uid")));
	assert_int_equal(audit_emit(a, ev), 0);
	line = recv_line(f->fd, &len);
	assert_non_null(line);
	if (regexec(&re, line, 8, m, 0) != 0)
		fail_msg("not RFC 5424: %s", line);
	/* authpriv (10) * 8 + informational (6) */
	assert_int_equal(atoi(line + m[1].rm_so), 86);
	assert_memory_equal(line + m[2].rm_so, "2023-11-14T22:13:20.123Z", 24);
	gethostname(host, sizeof(host));
	assert_int_equal(m[3].rm_eo - m[3].rm_so, (regoff_t)strlen(host));
	assert_memory_equal(line + m[4].rm_so, "saw-brokerd ", 12);
	assert_int_equal(atol(line + m[5].rm_so), (long)getpid());
	assert_memory_equal(line + m[6].rm_so, "OCSF-300201 ", 12);
	json = line + m[7].rm_so;
	back = json_loads(json, 0, NULL);
	assert_non_null(back);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(back, "metadata"), "uid")), uid);
	assert_null(json_object_get(back, "unmapped")); /* the chain is the file's business */
	json_decref(back);
	free(uid);

	/* A refused logon is Medium: warning (4). */
	assert_int_equal(audit_emit(a, ocsf_auth_logon(&s, false, "denied", 1700000000123LL)), 0);
	line = recv_line(f->fd, &len);
	assert_non_null(line);
	assert_int_equal(regexec(&re, line, 8, m, 0), 0);
	assert_int_equal(atoi(line + m[1].rm_so), 84);
	regfree(&re);
	assert_true(audit_healthy(a));
	audit_close(a);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_once(base, -1, EV_TIMEOUT, stop_cb, base, &tv);
	event_base_dispatch(base);
}

/* syslogd restarts: events queue (unhealthy), then arrive in order once it is back. */
static void
torture_syslog_receiver_restart(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	struct audit *a = open_syslog(f, base, true);
	char *line, want[32];
	size_t len;
	int i;

	close(f->fd);
	unlink(f->sock);
	f->fd = -1;
	for (i = 0; i < 5; i++) {
		s.src_port = 1000 + i;
		assert_int_equal(audit_emit(a, ocsf_auth_logon(&s, true, NULL, ocsf_now_ms())), -1);
	}
	assert_false(audit_healthy(a));
	assert_true(audit_refuses_logins(a));
	f->fd = bind_dgram(f->sock);
	run_for(base, 1300); /* the reconnect timer runs once a second */
	assert_true(audit_healthy(a));
	for (i = 0; i < 5; i++) {
		line = recv_line(f->fd, &len);
		assert_non_null(line);
		snprintf(want, sizeof(want), "\"port\":%d", 1000 + i);
		assert_non_null(strstr(line, want));
	}
	assert_null(recv_line(f->fd, &len));
	audit_close(a);
	event_base_free(base);
}

/* A receiver that does not read: the socket buffer fills, events wait in order, then flow. */
static void
torture_syslog_backpressure(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	struct ocsf_subject s = { .username = "alice", .src_ip = "192.0.2.1" };
	struct audit *a = open_syslog(f, base, false);
	char *line, want[32];
	size_t len;
	int i, n = 3000, failed = 0, got = 0;

	for (i = 0; i < n; i++) {
		s.src_port = i;
		if (audit_emit(a, ocsf_auth_logon(&s, true, NULL, ocsf_now_ms())) != 0)
			failed++;
	}
	assert_true(failed > 0); /* max_dgram_qlen is far below 3000 */
	assert_false(audit_healthy(a));
	while (got < n) {
		line = recv_line(f->fd, &len);
		if (line == NULL) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			line = recv_line(f->fd, &len);
			if (line == NULL) {
				usleep(1000);
				event_base_loop(base, EVLOOP_NONBLOCK);
				line = recv_line(f->fd, &len);
				if (line == NULL)
					break;
			}
		}
		snprintf(want, sizeof(want), "\"port\":%d}", got);
		if (got > 0 && strstr(line, want) == NULL) /* port 0 is omitted */
			fail_msg("datagram %d out of order: %.200s", got, line);
		got++;
	}
	assert_int_equal(got, n);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_true(audit_healthy(a));
	assert_int_equal(audit_lost(a), 0);
	audit_close(a);
	event_base_free(base);
}

static void
torture_syslog_open_error(void **state)
{
	struct fixture *f = *state;
	struct audit_env env = { 0 };
	struct audit_sink_cfg cfg;
	char spec[PATH_MAX + 64], err[512];

	snprintf(spec, sizeof(spec), "syslog socket=%s/nobody-here", f->dir);
	assert_int_equal(audit_sink_parse(spec, &cfg, err, sizeof(err)), 0);
	assert_null(audit_open_sinks(&env, &cfg, 1, AUDIT_FAILURE_OPEN, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot connect to the syslog socket"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torture_syslog_format, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_syslog_receiver_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_syslog_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(torture_syslog_open_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
