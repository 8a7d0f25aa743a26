/*
 * saw-session: the workspace sshd's ForceCommand. Every brokered login runs in a sandbox that
 * saw-guestd creates; this program is how a login gets there, and the user cannot bypass it
 * (sshd runs the ForceCommand whatever the client asks for; the command the client asked for
 * is in SSH_ORIGINAL_COMMAND).
 *
 *   ForceCommand /usr/libexec/saw/saw-session [-s /run/saw/guestd.sock]
 *   ExposeAuthInfo yes
 *
 * It runs as the user, connects to saw-guestd's ControlSocket, and hands over its stdin,
 * stdout and stderr (the pty or the pipes sshd gave it) with SCM_RIGHTS, together with
 * {"op":"session_exec","user":…,"fp":…,"command":…,"term":…,"cols":…,"rows":…}. The
 * fingerprint is that of the key the login used: with ExposeAuthInfo, sshd writes the
 * methods that authenticated the login to the file named by SSH_USER_AUTH ("publickey
 * ssh-ed25519 AAAA…"); we hash that key as sshd prints %f (SHA256, unpadded base64).
 * saw-guestd decides everything else (which sandbox, which policy).
 *
 * Then it waits: for the exit status (exits with it), or for "the session ended" (prints
 * "SAW: session ended: REASON" and exits 255). SIGHUP and SIGTERM (and SIGINT, SIGWINCH) are
 * forwarded to the sandbox; if the login's terminal or stdout hangs up, it tells guestd by
 * closing the connection. Window-size changes need no forwarding in the usual case: the
 * sandbox takes the terminal as its controlling terminal, so the kernel signals it itself.
 *
 * Exit status: the command's, or 255 for SAW's own errors (like ssh).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "guestd/akc.h"
#include "guestd/gsock-client.h"

#define SESSION_START_MS 15000 /* guestd builds the sandbox synchronously: a few ms */
#define SESSION_SIGNAL_GRACE_MS 5000
#define SESSION_MAX_AUTHINFO 65536

static void __attribute__((noreturn, format(printf, 1, 2))) session_die(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	syslog(LOG_AUTHPRIV | LOG_WARNING, "%s", msg);
	fprintf(stderr, "SAW: %s\n", msg);
	exit(255);
}

/* SHA256 fingerprint, as sshd's %f, of a base64 key blob. 0 or -1. */
static int
session_fingerprint(const char *b64, char *fp, size_t fplen)
{
	unsigned char blob[AKC_MAX_KEY_B64], md[EVP_MAX_MD_SIZE];
	char out[2 * EVP_MAX_MD_SIZE];
	size_t len = strlen(b64), pad = 0;
	unsigned int mdlen;
	int n;

	if (len == 0 || len > AKC_MAX_KEY_B64 || len % 4 != 0)
		return -1;
	if (b64[len - 1] == '=')
		pad++;
	if (b64[len - 2] == '=')
		pad++;
	if ((n = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)len)) < 0 ||
	    (size_t)n < pad)
		return -1;
	if (EVP_Digest(blob, (size_t)n - pad, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	n = EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	if (snprintf(fp, fplen, "SHA256:%s", out) >= (int)fplen)
		return -1;
	return akc_check_fp(fp);
}

/* The fingerprint of the first "publickey TYPE BASE64" line of SSH_USER_AUTH. */
static void
session_key_fp(char *fp, size_t fplen)
{
	const char *path = getenv("SSH_USER_AUTH");
	char *buf, *line, *save = NULL, type[64], key[AKC_MAX_KEY_B64 + 1];
	ssize_t n;
	size_t len = 0;
	int fd, found = -1;

	if (path == NULL || path[0] != '/')
		session_die("SSH_USER_AUTH is not set: the workspace sshd needs ExposeAuthInfo yes "
			    "for saw-session");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		session_die("%s: %s", path, strerror(errno));
	if ((buf = malloc(SESSION_MAX_AUTHINFO + 1)) == NULL)
		session_die("out of memory");
	while (len < SESSION_MAX_AUTHINFO &&
	       (n = read(fd, buf + len, SESSION_MAX_AUTHINFO - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL && found != 0;
	     line = strtok_r(NULL, "\n", &save)) {
		_Static_assert(AKC_MAX_KEY_B64 == 4096, "the sscanf width below");
		if (sscanf(line, "publickey %63s %4096s", type, key) == 2)
			found = session_fingerprint(key, fp, fplen);
	}
	free(buf);
	if (found != 0)
		session_die("this login did not use a public key saw-session can identify (%s)",
			    path);
}

static int
session_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (gsock_check_path(path) != 0)
		session_die("%s: not a usable socket path", path);
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		session_die("cannot reach saw-guestd at %s (%s): is it running?", path,
			    strerror(errno));
	return fd;
}

/* One request line with our stdin, stdout and stderr attached. */
static void
session_send(int fd, const char *text)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} cm;
	int fds[3] = { 0, 1, 2 };
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	size_t len = strlen(text), off;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)text;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	if ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) <= 0)
		session_die("cannot talk to saw-guestd: %s", strerror(errno));
	for (off = (size_t)n; off < len; off += (size_t)n)
		if ((n = send(fd, text + off, len - off, MSG_NOSIGNAL)) <= 0)
			session_die("cannot talk to saw-guestd: %s", strerror(errno));
}

static long long
session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one line (without '\n') into buf within deadline_ms (-1: none); 1 ok, 0 EOF. */
static int
session_read_line(int fd, char *buf, size_t len, size_t *have, long long deadline)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char *nl;
	ssize_t n;
	int ms;

	for (;;) {
		if ((nl = memchr(buf, '\n', *have)) != NULL) {
			*nl = '\0';
			return 1;
		}
		if (*have >= len - 1)
			session_die("saw-guestd's answer is too long");
		ms = deadline < 0 ? -1 : (int)(deadline - session_now_ms());
		if (deadline >= 0 && ms <= 0)
			session_die("saw-guestd did not answer in time");
		if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
			session_die("poll: %s", strerror(errno));
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if ((n = recv(fd, buf + *have, len - 1 - *have, 0)) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return 0;
		}
		if (n == 0)
			return 0;
		*have += (size_t)n;
	}
}

static void
session_forward(int fd, const char *sig)
{
	char line[64];

	snprintf(line, sizeof(line), "{\"op\":\"signal\",\"signal\":\"%s\"}\n", sig);
	(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* After the ok: wait for {"exit":N[,"ended":R]}, forwarding signals meanwhile. */
static void __attribute__((noreturn)) session_wait(int fd, char *buf, size_t len, size_t have)
{
	struct signalfd_siginfo si;
	struct pollfd pfd[3];
	long long deadline = -1;
	sigset_t set;
	json_t *msg;
	char *nl;
	ssize_t n;
	int sfd, lastsig = SIGHUP;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGPIPE);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		session_die("signalfd: %s", strerror(errno));
	for (;;) {
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			*nl = '\0';
			msg = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
			if (json_is_integer(json_object_get(msg, "exit"))) {
				const char *why = json_string_value(json_object_get(msg, "ended"));
				int code = (int)json_integer_value(json_object_get(msg, "exit"));

				if (why != NULL) {
					fprintf(stderr, "SAW: session ended: %s\n", why);
					code = 255;
				}
				exit(code < 0 || code > 255 ? 255 : code);
			}
			json_decref(msg);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		pfd[2].fd = 1; /* only POLLHUP/POLLERR: the login's terminal or pipe is gone */
		pfd[2].events = 0;
		n = poll(pfd, 3,
			 deadline < 0 ?
				 -1 :
				 (int)(deadline > session_now_ms() ? deadline - session_now_ms() :
								     0));
		if (n < 0 && errno != EINTR)
			session_die("poll: %s", strerror(errno));
		if (deadline >= 0 && session_now_ms() >= deadline) {
			/* it did not exit when asked: guestd kills it when we hang up */
			close(fd);
			exit(128 + lastsig);
		}
		if (n <= 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				switch (si.ssi_signo) {
				case SIGWINCH:
					session_forward(fd, "WINCH");
					break;
				case SIGINT:
					session_forward(fd, "INT");
					break;
				case SIGHUP:
				case SIGTERM:
					session_forward(fd,
							si.ssi_signo == SIGHUP ? "HUP" : "TERM");
					lastsig = (int)si.ssi_signo;
					if (deadline < 0)
						deadline = session_now_ms() +
							   SESSION_SIGNAL_GRACE_MS;
					break;
				default:
					break;
				}
			}
		}
		if (pfd[2].revents & (POLLHUP | POLLERR)) {
			/* sshd closed the pty or the pipe: the login is over */
			close(fd);
			exit(129);
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (have >= len - 1)
				session_die("saw-guestd's message is too long");
			n = recv(fd, buf + have, len - 1 - have, 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				session_die("lost the connection to saw-guestd");
			have += (size_t)n;
		}
	}
}

int
main(int argc, char **argv)
{
	const char *sock = GSOCK_DEFAULT_PATH, *cmd, *term, *why;
	char fp[AKC_FP_LEN + 1], buf[GSOCK_MAX_LINE + 1], *text;
	struct winsize ws;
	struct passwd *pw;
	sigset_t set;
	json_t *req, *ans;
	size_t have = 0;
	int ch, fd;

	openlog("saw-session", LOG_PID, LOG_AUTHPRIV);
	while ((ch = getopt(argc, argv, "s:")) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		default:
			fprintf(stderr, "usage: saw-session [-s socket]   (sshd ForceCommand)\n");
			return 255;
		}
	}
	/* Blocked from here on: signalfd reads them once the session runs. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if ((pw = getpwuid(getuid())) == NULL || gsock_check_user(pw->pw_name) != 0)
		session_die("who are you? (uid %d has no usable account name)", (int)getuid());
	session_key_fp(fp, sizeof(fp));
	cmd = getenv("SSH_ORIGINAL_COMMAND");
	term = getenv("TERM");
	req = json_pack("{s:s, s:s, s:s, s:o}", "op", "session_exec", "user", pw->pw_name, "fp", fp,
			"command", cmd != NULL ? json_string(cmd) : json_null());
	if (req == NULL)
		session_die("the command is not valid UTF-8 or too long");
	if (term != NULL && strlen(term) <= 64)
		json_object_set_new(req, "term", json_string(term));
	if (isatty(0) && ioctl(0, TIOCGWINSZ, &ws) == 0) {
		json_object_set_new(req, "cols", json_integer(ws.ws_col));
		json_object_set_new(req, "rows", json_integer(ws.ws_row));
	}
	if ((text = json_dumps(req, JSON_COMPACT)) == NULL)
		session_die("out of memory");
	json_decref(req);
	if (strlen(text) + 1 > GSOCK_MAX_LINE)
		session_die("the command is too long for saw-guestd (at most about %d bytes)",
			    GSOCK_MAX_LINE - 200);
	fd = session_connect(sock);
	{
		size_t len = strlen(text);
		char *line = malloc(len + 2);

		if (line == NULL)
			session_die("out of memory");
		memcpy(line, text, len);
		line[len] = '\n';
		line[len + 1] = '\0';
		session_send(fd, line);
		free(line);
	}
	free(text);
	if (session_read_line(fd, buf, sizeof(buf), &have, session_now_ms() + SESSION_START_MS) !=
	    1)
		session_die("saw-guestd closed the connection without an answer");
	if ((ans = json_loads(buf, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		session_die("saw-guestd's answer is not JSON");
	if (!gsock_answer_ok(ans, &why))
		session_die("cannot start your session: %s", why);
	json_decref(ans);
	/* what follows the answer line belongs to the next message */
	{
		size_t used = strlen(buf) + 1;

		have -= used;
		memmove(buf, buf + used, have);
	}
	session_wait(fd, buf, sizeof(buf), have);
}
