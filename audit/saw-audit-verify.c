/*
 * saw-audit-verify: checks the hash chain of SAW audit files (audit/verify.h).
 *
 *   saw-audit-verify FILE...     files oldest first (FILE.2 FILE.1 FILE)
 *   saw-audit-verify -r FILE     FILE and its rotated files FILE.N ... FILE.1, oldest first
 *
 * Exit status: 0 verified, 1 a removed, reordered or edited record was found (the first one
 * is reported), 2 usage or read error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/verify.h"

#define VERIFY_MAX_ROTATED 1000

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: saw-audit-verify [-r] FILE...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char **paths;
	char **owned = NULL;
	struct stat sb;
	size_t n = 0, k, nrot;
	int ch, rotated = 0, rc;

	while ((ch = getopt(argc, argv, "rh")) != -1) {
		switch (ch) {
		case 'r':
			rotated = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || (rotated && argc != 1))
		usage();
	if (!rotated) {
		rc = audit_verify_files((const char *const *)argv, (size_t)argc, stdout);
		return rc == -1 ? 2 : rc;
	}
	for (nrot = 0; nrot < VERIFY_MAX_ROTATED; nrot++) {
		char p[4096];

		snprintf(p, sizeof(p), "%s.%zu", argv[0], nrot + 1);
		if (stat(p, &sb) == -1)
			break;
	}
	if ((paths = calloc(nrot + 1, sizeof(*paths))) == NULL ||
	    (owned = calloc(nrot + 1, sizeof(*owned))) == NULL) {
		fprintf(stderr, "saw-audit-verify: out of memory\n");
		return 2;
	}
	for (k = nrot; k >= 1; k--) {
		if (asprintf(&owned[n], "%s.%zu", argv[0], k) == -1) {
			fprintf(stderr, "saw-audit-verify: out of memory\n");
			return 2;
		}
		paths[n] = owned[n];
		n++;
	}
	paths[n++] = argv[0];
	rc = audit_verify_files(paths, n, stdout);
	for (k = 0; k < nrot; k++)
		free(owned[k]);
	free(owned);
	free(paths);
	return rc == -1 ? 2 : rc;
}
