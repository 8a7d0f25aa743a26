/*
 * saw-authorized-keys: sshd's AuthorizedKeysCommand for a SAW workspace.
 *
 *   AuthorizedKeysCommand /usr/libexec/saw/saw-authorized-keys %u %f %k %t
 *
 * Prints the offered key, restricted and with the session's expiry-time, only when saw-guestd
 * says a live brokered session of that user is bound to that key; prints nothing otherwise.
 * It never fails open: no guestd, a timeout, a malformed answer or a bad argument all print
 * nothing.
 *
 * Exit status: 0 when guestd answered (with or without a key printed: every key a client offers
 * that is not the bound one is an ordinary "no", not worth an sshd log line); 1 on errors (bad
 * arguments, guestd unreachable, malformed answer), which sshd logs as "AuthorizedKeysCommand …
 * failed, status 1" and for which it ignores any output.
 *
 * sshd discards the command's stderr, so messages go to syslog (authpriv) as well as stderr
 * (for an administrator running it by hand).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "guestd/akc.h"
#include "guestd/gsock-client.h"

static void akc_log(int pri, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
akc_log(int pri, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	syslog(pri, "%s", msg);
	fprintf(stderr, "saw-authorized-keys: %s\n", msg);
}

static void
akc_usage(void)
{
	fprintf(stderr, "usage: saw-authorized-keys [-s socket] user fingerprint key type\n"
			"  sshd_config: AuthorizedKeysCommand "
			"/usr/libexec/saw/saw-authorized-keys %%u %%f %%k %%t\n");
}

int
main(int argc, char **argv)
{
	const char *sock = GSOCK_DEFAULT_PATH;
	char line[AKC_MAX_LINE];
	char err[512];
	struct akc_args a;
	json_t *req = NULL, *ans = NULL;
	int ch, r, rc = 1;

	openlog("saw-authorized-keys", LOG_PID, LOG_AUTHPRIV);
	/* '+': options only before the positional arguments, which sshd fills from the client. */
	while ((ch = getopt(argc, argv, "+s:")) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		default:
			akc_usage();
			goto out;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4) {
		akc_log(LOG_ERR,
			"expected 4 arguments (%%u %%f %%k %%t), got %d; "
			"check AuthorizedKeysCommand in sshd_config",
			argc);
		akc_usage();
		goto out;
	}
	if (gsock_check_path(sock) != 0) {
		akc_log(LOG_ERR, "-s: the socket path must be absolute and shorter than 108 bytes");
		goto out;
	}
	a.user = argv[0];
	a.fp = argv[1];
	a.key = argv[2];
	a.type = argv[3];
	/* The arguments are not echoed: the user name is client-chosen text. */
	if (akc_check_args(&a, err, sizeof(err)) != 0) {
		akc_log(LOG_WARNING, "refusing key: %s", err);
		goto out;
	}

	req = json_pack("{s:s, s:s, s:s}", "op", "authorized_keys", "user", a.user, "fp", a.fp);
	if (req == NULL) {
		akc_log(LOG_ERR, "out of memory");
		goto out;
	}
	if ((ans = gsock_request(sock, req, GSOCK_TIMEOUT_MS, err, sizeof(err))) == NULL) {
		akc_log(LOG_ERR, "refusing %s for %s: %s", a.fp, a.user, err);
		goto out;
	}
	r = akc_line(ans, &a, (int64_t)time(NULL), line, sizeof(line), err, sizeof(err));
	if (r < 0) {
		akc_log(LOG_ERR, "refusing %s for %s: %s", a.fp, a.user, err);
		goto out;
	}
	if (r == 0) {
		syslog(LOG_INFO, "no brokered session for %s key %s: %s", a.user, a.fp, err);
		rc = 0;
		goto out;
	}
	/* One write of the whole line; if it fails, exit 1 so that sshd ignores what got out. */
	if (fputs(line, stdout) == EOF || fflush(stdout) == EOF) {
		akc_log(LOG_ERR, "writing to sshd failed");
		goto out;
	}
	syslog(LOG_INFO, "key %s of %s allowed (session %s)", a.fp, a.user,
	       json_string_value(json_object_get(ans, "session")));
	rc = 0;
out:
	json_decref(req);
	json_decref(ans);
	closelog();
	return rc;
}
