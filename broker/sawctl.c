/*
 * sawctl: the administrator's command line for saw-brokerd, over the local admin socket
 * (AdminSocket). One request, one answer, per run: the protocol is described in
 * broker/broker-admin.h. The broker decides who may do what (SO_PEERCRED); sawctl only
 * builds the request and shows the answer.
 *
 * Kept small on purpose (libc, jansson and the audit chain verifier only): it runs as root
 * on the appliance. `sawctl audit verify` works on files alone: no socket, no broker.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/verify.h"

#define SAWCTL_DEFAULT_SOCKET "/run/saw/broker.sock"
#define SAWCTL_TIMEOUT_MS 10000
#define SAWCTL_MAX_ANSWER (64 * 1024 * 1024) /* a list of many workspaces */
#define SAWCTL_MAX_KEYFILE (16 * 1024)

struct sawctl {
	const char *socket_path;
	bool json;
	struct timespec deadline;
};

static void __attribute__((noreturn)) usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;

	fprintf(f, "usage: sawctl [-s socket] [--json] workspace add NAME --owner SUB --key "
		   "PUBKEY_FILE\n"
		   "                                   [--profile corporate|public]\n"
		   "       sawctl [-s socket] [--json] workspace list\n"
		   "       sawctl [-s socket] [--json] workspace remove NAME\n"
		   "       sawctl [-s socket] [--json] sessions [--user USER] [--all]\n"
		   "       sawctl [-s socket] [--json] revoke SESSION_ID|--user USER "
		   "[--message TEXT]\n"
		   "       sawctl [-s socket] [--json] lock USER [--until TIME] [--message TEXT]\n"
		   "       sawctl [-s socket] [--json] unlock USER\n"
		   "       sawctl [-s socket] [--json] locks\n"
		   "       sawctl [-s socket] [--json] kill WORKSPACE [--reason TEXT]\n"
		   "       sawctl [-s socket] [--json] revive WORKSPACE\n"
		   "       sawctl audit verify [-r] FILE...\n");
	exit(status);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("sawctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sawctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(2);
}

/* Milliseconds left before the deadline (at least 0). */
static int
sawctl_remaining(const struct sawctl *s)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(s->deadline.tv_sec - now.tv_sec) * 1000 +
	     (s->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static void
sawctl_wait(const struct sawctl *s, int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	for (;;) {
		r = poll(&p, 1, sawctl_remaining(s));
		if (r > 0)
			return;
		if (r == 0)
			die("no answer from saw-brokerd within %d s", SAWCTL_TIMEOUT_MS / 1000);
		if (errno != EINTR)
			die("poll: %s", strerror(errno));
	}
}

static int
sawctl_connect(const struct sawctl *s)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(s->socket_path) >= sizeof(sun.sun_path))
		die("%s: socket path too long", s->socket_path);
	memcpy(sun.sun_path, s->socket_path, strlen(s->socket_path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		die("socket: %s", strerror(errno));
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		e = errno;
		/* AF_UNIX: EAGAIN means the broker's backlog is full; there is no connection in
		 * progress to wait for, only the connect to retry, within the deadline */
		if (e != EAGAIN && e != EINTR)
			break;
		if (sawctl_remaining(s) == 0)
			die("saw-brokerd did not accept the connection within %d s",
			    SAWCTL_TIMEOUT_MS / 1000);
		if (e == EAGAIN)
			poll(NULL, 0, 50);
	}
	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		die("cannot connect to %s: %s (is saw-brokerd running, with this AdminSocket? "
		    "Use -s or SAW_ADMIN_SOCKET for another path)",
		    s->socket_path, strerror(e));
	case EACCES:
	case EPERM:
		die("cannot connect to %s: %s (only root, the broker's user and members of its "
		    "AdminSocketGroup may use it)",
		    s->socket_path, strerror(e));
	default:
		die("cannot connect to %s: %s", s->socket_path, strerror(e));
	}
}

/* Sends req as one line and returns the answer line (malloc'd, without "\n"). */
static char *
sawctl_call(const struct sawctl *s, const json_t *req)
{
	char *text, *buf = NULL, *nl;
	size_t len, off = 0, cap = 0, blen = 0;
	ssize_t n;
	int fd;

	if ((text = json_dumps(req, JSON_COMPACT)) == NULL)
		die("out of memory");
	len = strlen(text);
	text[len] = '\n'; /* json_dumps left room: the NUL becomes the line end */
	fd = sawctl_connect(s);
	while (off < len + 1) {
		n = send(fd, text + off, len + 1 - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			sawctl_wait(s, fd, POLLOUT);
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			break; /* refused at once: the broker's answer says why */
		die("sending to %s: %s", s->socket_path, strerror(errno));
	}
	free(text);
	for (;;) {
		if (blen + 4096 + 1 > cap) {
			if (cap >= SAWCTL_MAX_ANSWER)
				die("the broker's answer is larger than %d MiB",
				    SAWCTL_MAX_ANSWER / (1024 * 1024));
			cap = cap != 0 ? cap * 2 : 16384;
			if ((buf = realloc(buf, cap)) == NULL)
				die("out of memory");
		}
		n = recv(fd, buf + blen, cap - blen - 1, 0);
		if (n > 0) {
			buf[blen + (size_t)n] = '\0';
			if ((nl = memchr(buf + blen, '\n', (size_t)n)) != NULL) {
				*nl = '\0';
				break;
			}
			blen += (size_t)n;
			continue;
		}
		if (n == 0)
			die("saw-brokerd closed the connection without an answer");
		if (errno == EAGAIN || errno == EINTR) {
			sawctl_wait(s, fd, POLLIN);
			continue;
		}
		die("reading from %s: %s", s->socket_path, strerror(errno));
	}
	close(fd);
	return buf;
}

/* Parses the answer; on {"ok":false} prints the error and exits 1. With --json the answer
 * is printed as the broker sent it, whatever it says. */
static json_t *
sawctl_answer(const struct sawctl *s, const char *line)
{
	json_error_t jerr;
	json_t *resp, *ok, *err;

	if (s->json)
		printf("%s\n", line);
	if ((resp = json_loads(line, 0, &jerr)) == NULL || !json_is_object(resp))
		die("the broker's answer is not a JSON object (%s)", jerr.text);
	ok = json_object_get(resp, "ok");
	if (!json_is_true(ok)) {
		err = json_object_get(resp, "error");
		die("%s", json_is_string(err) ? json_string_value(err) : "the broker refused");
	}
	return resp;
}

/* A string of the answer for the terminal: control characters shown as '?'. */
static const char *
sawctl_str(const json_t *o, const char *key, char *buf, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));
	size_t i;

	if (v == NULL)
		v = "-";
	for (i = 0; v[i] != '\0' && i + 1 < len; i++)
		buf[i] = ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ? '?' : v[i];
	buf[i] = '\0';
	return buf;
}

static char *
sawctl_read_key(const char *path)
{
	char buf[SAWCTL_MAX_KEYFILE + 1], *line, *save = NULL, *end;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		die("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f))
		die("%s: %s", path, strerror(errno));
	if (!feof(f) || fgetc(f) != EOF)
		die("%s: larger than %d KiB: give the public key file (.pub)", path,
		    SAWCTL_MAX_KEYFILE / 1024);
	fclose(f);
	buf[n] = '\0';
	if (strstr(buf, "PRIVATE KEY-----") != NULL)
		die("%s is a private key: give the public key file (.pub)", path);
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*line != '\0' && *line != '#')
			break;
	}
	if (line == NULL)
		die("%s: no public key in the file", path);
	if ((line = strdup(line)) == NULL)
		die("out of memory");
	return line;
}

static int
cmd_workspace_add(struct sawctl *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "key", required_argument, NULL, 'k' },
		{ "profile", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *owner = NULL, *keyfile = NULL, *profile = NULL;
	char *pubkey, *line, b1[300], b2[300], b3[32], b4[128];
	json_t *req, *resp, *w;
	int ch;

	optind = 0; /* GNU getopt: start over on the subcommand's arguments */
	/* "-": a word that is not an option comes back as 1, so NAME may be anywhere */
	while ((ch = getopt_long(argc, argv, "-o:k:p:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (name != NULL)
				usage_error("workspace add: unexpected argument \"%s\"", optarg);
			name = optarg;
			break;
		case 'o':
			owner = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage_error("workspace add: unexpected argument \"%s\"", argv[optind]);
	if (name == NULL || owner == NULL || keyfile == NULL)
		usage_error("workspace add needs NAME, --owner SUB and --key PUBKEY_FILE");
	if (profile != NULL && strcmp(profile, "corporate") != 0 && strcmp(profile, "public") != 0)
		usage_error("--profile must be corporate or public");
	pubkey = sawctl_read_key(keyfile);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "workspace.add", "name", name, "owner",
			owner, "pubkey", pubkey, "profile", profile != NULL ? profile : "public");
	if (req == NULL)
		die("the arguments must be valid UTF-8");
	line = sawctl_call(s, req);
	resp = sawctl_answer(s, line);
	if (!s->json) {
		w = json_object_get(resp, "workspace");
		printf("workspace %s added (owner %s, profile %s, key %s)\n",
		       sawctl_str(w, "name", b1, sizeof(b1)),
		       sawctl_str(w, "owner", b2, sizeof(b2)),
		       sawctl_str(w, "profile", b3, sizeof(b3)),
		       sawctl_str(w, "key_fp", b4, sizeof(b4)));
	}
	json_decref(resp);
	json_decref(req);
	free(line);
	free(pubkey);
	return 0;
}

/* One cell of an aligned table; the last one of a row ends the line (no trailing blanks). */
static void
sawctl_cell(bool last, size_t width, const char *v)
{
	if (last)
		printf("%s\n", v);
	else
		printf("%-*s  ", (int)width, v);
}

static int
cmd_workspace_list(struct sawctl *s, int argc, char **argv)
{
	static const char *const cols[] = { "NAME", "OWNER", "PROFILE", "STATE", "KEY" };
	static const char *const keys[] = { "name", "owner", "profile", NULL, "key_fp" };
	size_t width[5] = { 0 }, i, c, n;
	json_t *req, *resp, *arr, *w;
	char *line, buf[300];
	const char *state;

	if (argc > 1)
		usage_error("workspace list: unexpected argument \"%s\"", argv[1]);
	if ((req = json_pack("{s:s}", "op", "workspace.list")) == NULL)
		die("out of memory");
	line = sawctl_call(s, req);
	resp = sawctl_answer(s, line);
	arr = json_object_get(resp, "workspaces");
	if (!s->json) {
		if (!json_is_array(arr))
			die("the broker's answer has no workspace list");
		n = json_array_size(arr);
		if (n == 0)
			printf("no workspaces registered\n");
		for (c = 0; c < 5 && n > 0; c++)
			width[c] = strlen(cols[c]);
		/* two passes: column widths, then the rows */
		for (i = 0; i < n; i++) {
			w = json_array_get(arr, i);
			for (c = 0; c < 5; c++) {
				size_t l = keys[c] != NULL ? strlen(sawctl_str(w, keys[c], buf,
									       sizeof(buf))) :
							     strlen("offline");

				if (l > width[c])
					width[c] = l;
			}
		}
		for (c = 0; c < 5 && n > 0; c++)
			sawctl_cell(c == 4, width[c], cols[c]);
		for (i = 0; i < n; i++) {
			w = json_array_get(arr, i);
			state = json_is_true(json_object_get(w, "killed")) ? "killed" :
				json_is_true(json_object_get(w, "online")) ? "online" :
									     "offline";
			for (c = 0; c < 5; c++) {
				const char *v = keys[c] != NULL ?
							sawctl_str(w, keys[c], buf, sizeof(buf)) :
							state;

				sawctl_cell(c == 4, width[c], v);
			}
		}
	}
	json_decref(resp);
	json_decref(req);
	free(line);
	return 0;
}

static int
cmd_workspace_remove(struct sawctl *s, int argc, char **argv)
{
	json_t *req, *resp;
	char *line, buf[300];

	if (argc != 2)
		usage_error("workspace remove needs exactly one NAME");
	if ((req = json_pack("{s:s, s:s}", "op", "workspace.remove", "name", argv[1])) == NULL)
		die("the name must be valid UTF-8");
	line = sawctl_call(s, req);
	resp = sawctl_answer(s, line);
	if (!s->json)
		printf("workspace %s removed%s\n", sawctl_str(resp, "name", buf, sizeof(buf)),
		       json_is_true(json_object_get(resp, "disconnected")) ?
			       " (its connection was closed)" :
			       "");
	json_decref(resp);
	json_decref(req);
	free(line);
	return 0;
}

/* ---- issue #4: sessions, revocation, locks, the kill switch ------------------------------- */

#define SAWCTL_MAX_COLS 8

struct sawctl_table {
	size_t ncols;
	const char *head[SAWCTL_MAX_COLS];
	size_t width[SAWCTL_MAX_COLS];
	char **cells; /* nrows * ncols, malloc'd strings */
	size_t nrows;
};

static void
sawctl_table_row(struct sawctl_table *t, const char *const *v)
{
	size_t c, l;

	t->cells = reallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(char *));
	if (t->cells == NULL)
		die("out of memory");
	for (c = 0; c < t->ncols; c++) {
		if ((t->cells[t->nrows * t->ncols + c] = strdup(v[c] != NULL ? v[c] : "-")) == NULL)
			die("out of memory");
		if ((l = strlen(v[c] != NULL ? v[c] : "-")) > t->width[c])
			t->width[c] = l;
	}
	t->nrows++;
}

static void
sawctl_table_print(struct sawctl_table *t, const char *empty)
{
	size_t r, c;

	if (t->nrows == 0) {
		printf("%s\n", empty);
		return;
	}
	for (c = 0; c < t->ncols; c++) {
		if (strlen(t->head[c]) > t->width[c])
			t->width[c] = strlen(t->head[c]);
		sawctl_cell(c == t->ncols - 1, t->width[c], t->head[c]);
	}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			sawctl_cell(c == t->ncols - 1, t->width[c], t->cells[r * t->ncols + c]);
			free(t->cells[r * t->ncols + c]);
		}
	}
	free(t->cells);
}

/* A time of the answer as local "YYYY-MM-DD HH:MM:SS"; "-" for 0 (none). */
static const char *
sawctl_time(const json_t *o, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(o, key);
	time_t t;
	struct tm tm;

	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return "-";
	t = (time_t)json_integer_value(v);
	if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* Sends req, prints nothing with --json (the answer is printed as is), returns the answer. */
static json_t *
sawctl_run(struct sawctl *s, json_t *req, char **line)
{
	json_t *resp;

	if (req == NULL)
		die("the arguments must be valid UTF-8");
	*line = sawctl_call(s, req);
	resp = sawctl_answer(s, *line);
	json_decref(req);
	return resp;
}

static int
cmd_sessions(struct sawctl *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct sawctl_table t = {
		.ncols = 6, .head = { "SESSION", "USER", "STATE", "CREATED", "EXPIRES", "REASON" }
	};
	const char *user = NULL;
	bool all = false;
	json_t *req, *resp, *arr, *o;
	char *line, b[6][300];
	size_t i;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+u:a", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			user = optarg;
			break;
		case 'a':
			all = true;
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage_error("sessions: unexpected argument \"%s\"", argv[optind]);
	req = json_pack("{s:s, s:b}", "op", "session.list", "all", all);
	if (req != NULL && user != NULL && json_object_set_new(req, "user", json_string(user)) != 0)
		die("the user name must be valid UTF-8");
	resp = sawctl_run(s, req, &line);
	arr = json_object_get(resp, "sessions");
	if (!s->json) {
		if (!json_is_array(arr))
			die("the broker's answer has no session list");
		json_array_foreach(arr, i, o) {
			const char *v[6];

			v[0] = sawctl_str(o, "id", b[0], sizeof(b[0]));
			v[1] = sawctl_str(o, "username", b[1], sizeof(b[1]));
			v[2] = sawctl_str(o, "state", b[2], sizeof(b[2]));
			v[3] = sawctl_time(o, "created", b[3], sizeof(b[3]));
			v[4] = sawctl_time(o, "expires", b[4], sizeof(b[4]));
			v[5] = sawctl_str(o, "end_reason", b[5], sizeof(b[5]));
			sawctl_table_row(&t, v);
		}
		sawctl_table_print(&t, all ? "no sessions" : "no live sessions");
	}
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_revoke(struct sawctl *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "message", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL, *id = NULL, *msg = NULL;
	json_t *req, *resp;
	char *line, buf[300];
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "-u:m:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (id != NULL)
				usage_error("revoke: unexpected argument \"%s\"", optarg);
			id = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'm':
			msg = optarg;
			break;
		default:
			usage(2);
		}
	}
	if ((id == NULL) == (user == NULL))
		usage_error("revoke needs a SESSION_ID or --user USER (one of them)");
	if (id != NULL)
		req = json_pack("{s:s, s:s}", "op", "session.revoke", "id", id);
	else
		req = json_pack("{s:s, s:s}", "op", "user.revoke", "user", user);
	if (req != NULL && msg != NULL && json_object_set_new(req, "reason", json_string(msg)) != 0)
		die("the message must be valid UTF-8");
	resp = sawctl_run(s, req, &line);
	if (!s->json && id != NULL)
		printf("session %s revoked\n", sawctl_str(resp, "id", buf, sizeof(buf)));
	else if (!s->json)
		printf("%lld session%s of %s revoked\n",
		       (long long)json_integer_value(json_object_get(resp, "revoked")),
		       json_integer_value(json_object_get(resp, "revoked")) == 1 ? "" : "s",
		       sawctl_str(resp, "user", buf, sizeof(buf)));
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_lock(struct sawctl *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "until", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL, *until = NULL, *msg = NULL;
	json_t *req, *resp;
	char *line, b1[300], b2[64];
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "-t:m:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (user != NULL)
				usage_error("lock: unexpected argument \"%s\"", optarg);
			user = optarg;
			break;
		case 't':
			until = optarg;
			break;
		case 'm':
			msg = optarg;
			break;
		default:
			usage(2);
		}
	}
	if (user == NULL)
		usage_error("lock needs USER (a user name, or sub:SUBJECT)");
	req = json_pack("{s:s, s:s}", "op", "user.lock", "user", user);
	if (req != NULL &&
	    ((until != NULL && json_object_set_new(req, "until", json_string(until)) != 0) ||
	     (msg != NULL && json_object_set_new(req, "message", json_string(msg)) != 0)))
		die("the arguments must be valid UTF-8");
	resp = sawctl_run(s, req, &line);
	if (!s->json) {
		long long n = (long long)json_integer_value(json_object_get(resp, "revoked"));

		printf("%s locked %s%s (%lld session%s revoked)\n",
		       sawctl_str(resp, "user", b1, sizeof(b1)),
		       json_integer_value(json_object_get(resp, "until")) > 0 ? "until " :
										"until unlocked",
		       json_integer_value(json_object_get(resp, "until")) > 0 ?
			       sawctl_time(resp, "until", b2, sizeof(b2)) :
			       "",
		       n, n == 1 ? "" : "s");
	}
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_unlock(struct sawctl *s, int argc, char **argv)
{
	json_t *resp;
	char *line, buf[300];

	if (argc != 2)
		usage_error("unlock needs exactly one USER");
	resp = sawctl_run(s, json_pack("{s:s, s:s}", "op", "user.unlock", "user", argv[1]), &line);
	if (!s->json)
		printf("%s unlocked\n", sawctl_str(resp, "user", buf, sizeof(buf)));
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_locks(struct sawctl *s, int argc, char **argv)
{
	struct sawctl_table t = { .ncols = 3, .head = { "USER", "UNTIL", "MESSAGE" } };
	json_t *resp, *arr, *o;
	char *line, b[3][300];
	size_t i;

	if (argc != 1)
		usage_error("locks: unexpected argument \"%s\"", argv[1]);
	resp = sawctl_run(s, json_pack("{s:s}", "op", "lock.list"), &line);
	arr = json_object_get(resp, "locks");
	if (!s->json) {
		if (!json_is_array(arr))
			die("the broker's answer has no lock list");
		json_array_foreach(arr, i, o) {
			const char *v[3];

			v[0] = sawctl_str(o, "user", b[0], sizeof(b[0]));
			v[1] = json_integer_value(json_object_get(o, "until")) > 0 ?
				       sawctl_time(o, "until", b[1], sizeof(b[1])) :
				       "until unlocked";
			v[2] = sawctl_str(o, "message", b[2], sizeof(b[2]));
			sawctl_table_row(&t, v);
		}
		sawctl_table_print(&t, "no locks");
	}
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_kill(struct sawctl *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *reason = NULL;
	json_t *req, *resp;
	char *line, buf[300];
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "-r:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (name != NULL)
				usage_error("kill: unexpected argument \"%s\"", optarg);
			name = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		default:
			usage(2);
		}
	}
	if (name == NULL)
		usage_error("kill needs WORKSPACE");
	req = json_pack("{s:s, s:s}", "op", "workspace.kill", "name", name);
	if (req != NULL && reason != NULL &&
	    json_object_set_new(req, "reason", json_string(reason)) != 0)
		die("the reason must be valid UTF-8");
	resp = sawctl_run(s, req, &line);
	if (!s->json)
		printf("workspace %s killed: its sessions and tunnel are closed and it is refused "
		       "until `sawctl revive %s`\n",
		       sawctl_str(resp, "name", buf, sizeof(buf)), buf);
	json_decref(resp);
	free(line);
	return 0;
}

static int
cmd_revive(struct sawctl *s, int argc, char **argv)
{
	json_t *resp;
	char *line, buf[300];

	if (argc != 2)
		usage_error("revive needs exactly one WORKSPACE");
	resp = sawctl_run(s, json_pack("{s:s, s:s}", "op", "workspace.revive", "name", argv[1]),
			  &line);
	if (!s->json)
		printf("workspace %s revived: it may connect again\n",
		       sawctl_str(resp, "name", buf, sizeof(buf)));
	json_decref(resp);
	free(line);
	return 0;
}

/*
 * audit verify [-r] FILE...: the hash chain of audit files (audit/verify.h), oldest first,
 * or with -r one file and its rotated files. Exit 0 verified, 1 tampering found (the first
 * removed, reordered or edited record is reported), 2 usage or read error.
 */
static int
cmd_audit(int argc, char **argv)
{
	bool rotated = false;
	int i = 2, rc;

	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		usage_error("audit: give verify");
	if (i < argc && strcmp(argv[i], "-r") == 0) {
		rotated = true;
		i++;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("audit verify: give the audit file(s), oldest first");
	if (rotated && argc - i != 1)
		usage_error("audit verify -r: give one file (its rotated files are found)");
	if (rotated)
		rc = audit_verify_rotated(argv[i], stdout);
	else
		rc = audit_verify_files((const char *const *)argv + i, (size_t)(argc - i), stdout);
	fflush(stdout);
	return rc == -1 ? 2 : rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sawctl s = { 0 };
	const char *env;
	int ch;

	s.socket_path = SAWCTL_DEFAULT_SOCKET;
	if ((env = getenv("SAW_ADMIN_SOCKET")) != NULL && *env != '\0')
		s.socket_path = env;
	/* "+": stop at the first word, the subcommand's options are its own */
	while ((ch = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			s.socket_path = optarg;
			break;
		case 'j':
			s.json = true;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage(2);
	if (strcmp(argv[0], "audit") == 0)
		return cmd_audit(argc, argv);
	clock_gettime(CLOCK_MONOTONIC, &s.deadline);
	s.deadline.tv_sec += SAWCTL_TIMEOUT_MS / 1000;
	if (strcmp(argv[0], "sessions") == 0)
		return cmd_sessions(&s, argc, argv);
	if (strcmp(argv[0], "revoke") == 0)
		return cmd_revoke(&s, argc, argv);
	if (strcmp(argv[0], "lock") == 0)
		return cmd_lock(&s, argc, argv);
	if (strcmp(argv[0], "unlock") == 0)
		return cmd_unlock(&s, argc, argv);
	if (strcmp(argv[0], "locks") == 0)
		return cmd_locks(&s, argc, argv);
	if (strcmp(argv[0], "kill") == 0)
		return cmd_kill(&s, argc, argv);
	if (strcmp(argv[0], "revive") == 0)
		return cmd_revive(&s, argc, argv);
	if (strcmp(argv[0], "workspace") != 0)
		usage_error("unknown command \"%s\"", argv[0]);
	if (argc < 2)
		usage_error("workspace: give add, list or remove");
	argc--;
	argv++;
	if (strcmp(argv[0], "add") == 0)
		return cmd_workspace_add(&s, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return cmd_workspace_list(&s, argc, argv);
	if (strcmp(argv[0], "remove") == 0)
		return cmd_workspace_remove(&s, argc, argv);
	usage_error("workspace: unknown command \"%s\" (give add, list or remove)", argv[0]);
}
