/*
 * Verification of audit files' hash chain (chain.h): finds the first removed, reordered or
 * edited record and says which and where, in plain words, on report.
 *
 * Files are given oldest first (PATH.3 PATH.2 PATH.1 PATH): each must verify on its own and
 * each file's anchor must chain to the last record of the file before it. What a hash
 * chain cannot show on its own: an edit of the very last record, the removal of records at
 * the end of the newest file, or a wholesale rewrite from some record on. For those, compare
 * the head printed at the end (last seq and hash) with a copy kept elsewhere (the SIEM, or
 * the next rotated file's anchor).
 *
 * Returns 0 when everything verifies, 1 when a problem was found (reported), -1 when a file
 * cannot be read (reported).
 */
#ifndef SAW_AUDIT_VERIFY_H
#define SAW_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdio.h>

int audit_verify_file(const char *path, FILE *report);
int audit_verify_files(const char *const *paths, size_t n, FILE *report);
/* path together with its rotated files path.N ... path.1 (up to AUDIT_VERIFY_MAX_ROTATED),
 * oldest first. */
#define AUDIT_VERIFY_MAX_ROTATED 1000
int audit_verify_rotated(const char *path, FILE *report);
/* The same on one file's bytes in memory (name is used in messages); for the fuzzer. */
int audit_verify_buffer(const char *name, const char *buf, size_t len, FILE *report);

#endif
