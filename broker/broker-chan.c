/*
 * What an authenticated broker connection may do.
 *
 * - A `session` channel (ssh alice@broker, with or without a command) prints who you are,
 *   your groups and when the session expires, then exits 0. `ssh alice@broker json` prints
 *   the same as one JSON object for scripts.
 * - `direct-tcpip` (ssh -J / -W) to one of the user's workspaces is routed (broker-route.c).
 * - A per-session tunnel may only open direct-tcpip to corporate services.
 * - A workspace's own connection is handled in broker-workspace.c.
 * - Everything else (sftp, X11, agent, remote forwards, global requests) is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-store.h"
#include "broker/broker.h"

#define CHAN_TEXT_MAX 4096

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
fmt_left(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 3600)
		snprintf(buf, len, "%lldh%02lldm", (long long)(secs / 3600),
			 (long long)(secs % 3600 / 60));
	else
		snprintf(buf, len, "%lldm%02llds", (long long)(secs / 60), (long long)(secs % 60));
}

/* Groups as "a, b, c" from the stored JSON array text. */
static void
fmt_groups(const char *json, char *buf, size_t len)
{
	json_t *arr = json_loads(json ? json : "[]", 0, NULL);
	const json_t *v;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				 json_string_value(v) ? json_string_value(v) : "");
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(buf, len, "(none)");
	json_decref(arr);
}

static int
chan_whoami_text(const struct conn *c, bool as_json, char *out, size_t len)
{
	const struct store_session *s = sessions_row(c->session);
	int64_t now = broker_now();
	char created[64], expires[64], left[32], groups[1024];
	json_t *obj;
	char *dump;
	int n;

	if (as_json) {
		obj = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:I}", "user",
				s->username, "sub", s->sub, "issuer", s->iss, "groups",
				json_loads(s->groups ? s->groups : "[]", 0, NULL), "session", s->id,
				"key", s->key_fp, "created", (json_int_t)s->created, "expires",
				(json_int_t)s->expires, "idle_timeout",
				(json_int_t)c->broker->cfg.session_idle_timeout);
		if (obj == NULL)
			return -1;
		dump = json_dumps(obj, JSON_COMPACT);
		json_decref(obj);
		if (dump == NULL)
			return -1;
		n = snprintf(out, len, "%s\n", dump);
		free(dump);
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	fmt_time(s->created, created, sizeof(created));
	fmt_time(s->expires, expires, sizeof(expires));
	fmt_left(s->expires - now, left, sizeof(left));
	fmt_groups(s->groups, groups, sizeof(groups));
	n = snprintf(out, len,
		     "You are %s (subject %s at %s).\r\n"
		     "Groups:  %s\r\n"
		     "Session: %s, created %s\r\n"
		     "Expires: %s (in %s); idle timeout %llds\r\n"
		     "Key:     %s\r\n",
		     s->username, s->sub, s->iss, groups, s->id, created, expires, left,
		     c->broker->cfg.session_idle_timeout, s->key_fp);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

static void
chan_run(struct conn *c, ssh_channel chan, const char *command)
{
	char text[CHAN_TEXT_MAX];
	bool as_json = command != NULL && strcmp(command, "json") == 0;
	int n, status = 0;

	n = chan_whoami_text(c, as_json, text, sizeof(text));
	if (command != NULL && *command != '\0' && !as_json && strcmp(command, "whoami") != 0) {
		static const char msg[] = "saw-brokerd: this broker runs no commands; "
					  "try `whoami` or `json`.\r\n";
		ssh_channel_write_stderr(chan, msg, sizeof(msg) - 1);
		status = 1;
	} else if (n > 0) {
		ssh_channel_write(chan, text, (uint32_t)n);
	}
	ssh_channel_request_send_exit_status(chan, status);
	ssh_channel_send_eof(chan);
	/* Freed by libssh once the client's close arrives. */
	ssh_channel_free(chan);
	conn_flush(c);
}

static int
chan_open(struct conn *c, ssh_message msg)
{
	switch (ssh_message_subtype(msg)) {
	case SSH_CHANNEL_SESSION:
		if (ssh_message_channel_request_open_reply_accept(msg) == NULL)
			log_warnx("conn %llu: cannot accept session channel: %s",
				  (unsigned long long)c->id, ssh_get_error(c->ssh));
		return 0;
	case SSH_CHANNEL_DIRECT_TCPIP:
		return route_open_workspace(c, msg);
	default:
		ssh_message_reply_default(msg);
		return 0;
	}
}

static void
chan_request(struct conn *c, ssh_message msg)
{
	ssh_channel chan = ssh_message_channel_request_channel(msg);

	switch (ssh_message_subtype(msg)) {
	case SSH_CHANNEL_REQUEST_PTY:
	case SSH_CHANNEL_REQUEST_ENV:
	case SSH_CHANNEL_REQUEST_WINDOW_CHANGE:
		ssh_message_channel_request_reply_success(msg);
		return;
	case SSH_CHANNEL_REQUEST_SHELL:
		ssh_message_channel_request_reply_success(msg);
		chan_run(c, chan, NULL);
		return;
	case SSH_CHANNEL_REQUEST_EXEC:
		ssh_message_channel_request_reply_success(msg);
		chan_run(c, chan, ssh_message_channel_request_command(msg));
		return;
	default:
		ssh_message_reply_default(msg);
		return;
	}
}

int
chan_handle_message(struct conn *c, ssh_message msg)
{
	if (c->kind == CONN_WORKSPACE) {
		workspace_handle_message(c, msg);
		return 0;
	}
	sessions_activity(c);
	if (c->kind == CONN_TUNNEL) {
		if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN &&
		    ssh_message_subtype(msg) == SSH_CHANNEL_DIRECT_TCPIP)
			return route_open_corp(c, msg);
		ssh_message_reply_default(msg);
		return 0;
	}
	switch (ssh_message_type(msg)) {
	case SSH_REQUEST_CHANNEL_OPEN:
		return chan_open(c, msg);
	case SSH_REQUEST_CHANNEL:
		chan_request(c, msg);
		break;
	default:
		/* Global requests (keepalives, tcpip-forward): refused. */
		ssh_message_reply_default(msg);
		break;
	}
	return 0;
}
