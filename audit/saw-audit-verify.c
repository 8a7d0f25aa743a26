/*
 * saw-audit-verify: checks the hash chain of SAW audit files (audit/verify.h). The same
 * check is `sawctl audit verify`.
 *
 *   saw-audit-verify FILE...     files oldest first (FILE.2 FILE.1 FILE)
 *   saw-audit-verify -r FILE     FILE and its rotated files FILE.N ... FILE.1, oldest first
 *
 * Exit status: 0 verified, 1 a removed, reordered or edited record was found (the first one
 * is reported), 2 usage or read error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "audit/verify.h"

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: saw-audit-verify [-r] FILE...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
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
	if (rotated)
		rc = audit_verify_rotated(argv[0], stdout);
	else
		rc = audit_verify_files((const char *const *)argv, (size_t)argc, stdout);
	return rc == -1 ? 2 : rc;
}
