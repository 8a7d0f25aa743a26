/*
 * Driver for tests/e2e/sshc.sh: one tunnel/sshc.c attempt on a real event loop.
 *
 *   sshc-test [-c] [-P PASSWORD] -k PINNED.pub|-K KNOWN_HOSTS HOST PORT USER KEY
 *
 * Prints "connected" (the session is non-blocking and connected) or "error: <message>" and
 * exits 0 or 1. -c cancels the attempt at once: the callback must never run; prints
 * "cancelled" after 3 s and exits 0 (1 if the callback ran).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "tunnel/sshc.h"

struct sshc_test {
	struct event_base *base;
	int rc;
	int called;
};

static void
sshc_test_done(ssh_session s, const char *error, void *arg)
{
	struct sshc_test *t = arg;

	t->called = 1;
	if (s == NULL) {
		printf("error: %s\n", error);
		t->rc = 1;
	} else if (ssh_is_blocking(s) || !ssh_is_connected(s)) {
		printf("error: session handed over blocking or not connected\n");
		t->rc = 1;
		ssh_free(s);
	} else {
		printf("connected\n");
		t->rc = 0;
		ssh_disconnect(s);
		ssh_free(s);
	}
	event_base_loopexit(t->base, NULL);
}

int
main(int argc, char **argv)
{
	struct sshc_params p;
	struct sshc_test t = { NULL, 1, 0 };
	struct sshc_attempt *a;
	struct timeval three = { 3, 0 };
	int ch, cancel = 0;

	memset(&p, 0, sizeof(p));
	p.timeout_s = 5;
	while ((ch = getopt(argc, argv, "cP:k:K:")) != -1) {
		switch (ch) {
		case 'c':
			cancel = 1;
			break;
		case 'P':
			p.password = optarg;
			break;
		case 'k':
			p.pinned_key = optarg;
			break;
		case 'K':
			p.known_hosts = optarg;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 4)
		return 2;
	p.host = argv[optind];
	p.port = atoi(argv[optind + 1]);
	p.user = argv[optind + 2];
	p.key_path = argv[optind + 3];
	t.base = event_base_new();
	if ((a = sshc_connect(t.base, &p, sshc_test_done, &t)) == NULL) {
		printf("error: sshc_connect refused to start\n");
		return 1;
	}
	if (cancel) {
		sshc_cancel(a);
		event_base_loopexit(t.base, &three);
	}
	event_base_dispatch(t.base);
	event_base_free(t.base);
	/* The detached worker may still be unwinding (OpenSSL frees its thread state in a
	 * thread-exit handler): let it, so LeakSanitizer does not see a half-exited thread. */
	usleep(300000);
	if (cancel) {
		printf(t.called ? "error: callback ran after cancel\n" : "cancelled\n");
		return t.called;
	}
	return t.rc;
}
