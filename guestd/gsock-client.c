/*
 * Client of saw-guestd's ControlSocket: one bounded, deadline-limited request/answer exchange.
 * Used inside sshd (pam_saw.so) and by sshd's AuthorizedKeysCommand, so it keeps no state,
 * installs no signal handler and fails closed on anything unexpected.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "guestd/gsock-client.h"

static long long
gsock_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. 0 ready, -1 timeout or error. */
static int
gsock_wait(int fd, short events, long long deadline, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd pfd;
	long long left;
	int n;

	for (;;) {
		left = deadline - gsock_now_ms();
		if (left <= 0) {
			snprintf(err, errlen, "saw-guestd did not answer within %d ms", timeout_ms);
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

int
gsock_check_path(const char *path)
{
	struct sockaddr_un sun;

	if (path == NULL || path[0] != '/' || strlen(path) >= sizeof(sun.sun_path))
		return -1;
	return 0;
}

int
gsock_check_user(const char *name)
{
	size_t i;
	char c;

	if (name == NULL || name[0] == '\0' || name[0] == '-')
		return -1;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= GSOCK_MAX_USER)
			return -1;
		c = name[i];
		/* ASCII ranges, not isalnum(): the host's locale must not widen the set. */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -1;
	}
	return 0;
}

int
gsock_answer_ok(const json_t *ans, const char **why)
{
	const json_t *e;

	if (why != NULL)
		*why = "no reason given";
	if (json_is_true(json_object_get(ans, "ok")))
		return 1;
	e = json_object_get(ans, "error");
	if (why != NULL && json_is_string(e))
		*why = json_string_value(e);
	return 0;
}

json_t *
gsock_parse_answer(const char *buf, size_t len, char *err, size_t errlen)
{
	const char *nl;
	json_error_t jerr;
	json_t *ans;

	if (len > GSOCK_MAX_LINE) {
		snprintf(err, errlen, "answer longer than %d bytes", GSOCK_MAX_LINE);
		return NULL;
	}
	if ((nl = memchr(buf, '\n', len)) == NULL) {
		snprintf(err, errlen, "answer not terminated by a newline");
		return NULL;
	}
	/* One answer line per connection: anything after it is a protocol violation. */
	if ((size_t)(nl - buf) + 1 != len) {
		snprintf(err, errlen, "unexpected bytes after saw-guestd's answer");
		return NULL;
	}
	ans = json_loadb(buf, (size_t)(nl - buf), JSON_REJECT_DUPLICATES, &jerr);
	if (ans == NULL) {
		snprintf(err, errlen, "malformed answer from saw-guestd: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(ans)) {
		snprintf(err, errlen, "malformed answer from saw-guestd: not a JSON object");
		json_decref(ans);
		return NULL;
	}
	return ans;
}

json_t *
gsock_request(const char *path, const json_t *req, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char buf[GSOCK_MAX_LINE + 1];
	char *line = NULL, *nl = NULL;
	size_t len, off, have;
	long long deadline;
	json_t *ans = NULL;
	ssize_t n;
	int fd = -1;

	deadline = gsock_now_ms() + timeout_ms;
	if (gsock_check_path(path) != 0) {
		snprintf(err, errlen,
			 "control socket path is not absolute or longer than %zu bytes",
			 sizeof(sun.sun_path) - 1);
		goto out;
	}
	if (!json_is_object(req) || (line = json_dumps(req, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "cannot encode the request");
		goto out;
	}
	/* JSON_COMPACT escapes control characters in strings, so the line holds no '\n'. */
	len = strlen(line);
	if (len + 1 > GSOCK_MAX_LINE) {
		snprintf(err, errlen, "request longer than %d bytes", GSOCK_MAX_LINE);
		goto out;
	}
	memcpy(buf, line, len);
	buf[len++] = '\n';

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* A non-blocking AF_UNIX connect either completes or fails at once (EAGAIN: backlog
	 * full); there is no EINPROGRESS to wait for. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen,
			 "cannot connect to saw-guestd at %s: %s (is saw-guestd running?)", path,
			 strerror(errno));
		goto out;
	}

	for (off = 0; off < len;) {
		if (gsock_wait(fd, POLLOUT, deadline, timeout_ms, err, errlen) != 0)
			goto out;
		/* MSG_NOSIGNAL: a vanished guestd must not SIGPIPE our host process (sshd). */
		n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			snprintf(err, errlen, "sending to saw-guestd: %s", strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}

	for (have = 0; nl == NULL;) {
		if (have == GSOCK_MAX_LINE) {
			snprintf(err, errlen, "answer longer than %d bytes", GSOCK_MAX_LINE);
			goto out;
		}
		if (gsock_wait(fd, POLLIN, deadline, timeout_ms, err, errlen) != 0)
			goto out;
		n = recv(fd, buf + have, GSOCK_MAX_LINE - have, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			snprintf(err, errlen, "reading from saw-guestd: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			snprintf(err, errlen,
				 "saw-guestd closed the connection before a full answer");
			goto out;
		}
		nl = memchr(buf + have, '\n', (size_t)n);
		have += (size_t)n;
	}
	ans = gsock_parse_answer(buf, have, err, errlen);
out:
	free(line);
	if (fd != -1)
		close(fd);
	return ans;
}
