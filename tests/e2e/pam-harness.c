/*
 * pam-harness: drives a PAM service the way sshd does, for testing pam_saw.so without sshd.
 *
 *   pam-harness SERVICE USER [-t TTY] OP...      OP: acct | open | close
 *
 * Prints "pid=N" (the process pam_saw registers), every conversation message as "msg: TEXT",
 * and one "OP=RESULT" line per operation (RESULT: PAM_SUCCESS, PAM_PERM_DENIED, …). Exit
 * status 0 if every operation returned PAM_SUCCESS, 1 otherwise, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

static const char *
harness_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return "PAM_SUCCESS";
	case PAM_PERM_DENIED:
		return "PAM_PERM_DENIED";
	case PAM_SESSION_ERR:
		return "PAM_SESSION_ERR";
	case PAM_SERVICE_ERR:
		return "PAM_SERVICE_ERR";
	case PAM_USER_UNKNOWN:
		return "PAM_USER_UNKNOWN";
	case PAM_AUTH_ERR:
		return "PAM_AUTH_ERR";
	case PAM_IGNORE:
		return "PAM_IGNORE";
	default:
		return "PAM_OTHER";
	}
}

static int
harness_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	int i;

	for (i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_ERROR_MSG || msg[i]->msg_style == PAM_TEXT_INFO)
			printf("msg: %s\n", msg[i]->msg);
	*resp = calloc((size_t)n, sizeof(**resp));
	return *resp == NULL ? PAM_BUF_ERR : PAM_SUCCESS;
}

int
main(int argc, char **argv)
{
	struct pam_conv conv = { harness_conv, NULL };
	pam_handle_t *pamh = NULL;
	int i, rc, all = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: pam-harness SERVICE USER [-t TTY] acct|open|close...\n");
		return 2;
	}
	if ((rc = pam_start(argv[1], argv[2], &conv, &pamh)) != PAM_SUCCESS) {
		fprintf(stderr, "pam_start: %d\n", rc);
		return 2;
	}
	printf("pid=%ld\n", (long)getpid());
	fflush(stdout);
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			pam_set_item(pamh, PAM_TTY, argv[++i]);
			continue;
		}
		if (strcmp(argv[i], "acct") == 0) {
			rc = pam_acct_mgmt(pamh, 0);
		} else if (strcmp(argv[i], "open") == 0) {
			rc = pam_open_session(pamh, 0);
		} else if (strcmp(argv[i], "close") == 0) {
			rc = pam_close_session(pamh, 0);
		} else {
			fprintf(stderr, "pam-harness: unknown operation %s\n", argv[i]);
			pam_end(pamh, PAM_SUCCESS);
			return 2;
		}
		printf("%s=%s\n", argv[i], harness_name(rc));
		fflush(stdout);
		if (rc != PAM_SUCCESS)
			all = 1;
	}
	pam_end(pamh, all == 0 ? PAM_SUCCESS : PAM_PERM_DENIED);
	return all;
}
