/*
 * Audit file verifier (verify.h). Streams each file line by line through a bounded buffer
 * (a record longer than CHAIN_LINE_MAX is itself an error), keeping only the previous
 * record's hash and seq. When a seq is missing, it reads on through the file to tell a
 * removal (the seq never comes) from a reordering (it comes later).
 */
#include "audit/verify.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/chain.h"

#define VERIFY_CHUNK (64 * 1024)

enum verify_outcome {
	VERIFY_GOING = 0,
	VERIFY_FAILED = 1,
};

struct verify {
	FILE *report;
	const char *name; /* current file */
	size_t nfile;	  /* files started */
	unsigned long long line;
	unsigned long long records; /* in the current file */
	bool have_prev;		    /* a previous record exists (this file or the one before) */
	char prev_hash[CHAIN_HEX_LEN + 1];
	long long prev_seq;
	long long first_seq;
	char first_anchor[CHAIN_HEX_LEN + 1];

	/* a missing seq being looked for further on */
	bool gap;
	long long gap_want, gap_found;
	unsigned long long gap_line;
	int outcome;
};

static void verify_fail(struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
verify_fail(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->outcome != VERIFY_GOING)
		return;
	v->outcome = VERIFY_FAILED;
	if (v->report == NULL)
		return;
	fprintf(v->report, "%s:%llu: ", v->name, v->line);
	va_start(ap, fmt);
	vfprintf(v->report, fmt, ap);
	va_end(ap);
	fputc('\n', v->report);
}

static void
verify_start_file(struct verify *v, const char *name)
{
	v->name = name;
	v->nfile++;
	v->line = 0;
	v->records = 0;
}

/* One complete record (without its '\n'). */
static void
verify_line(struct verify *v, const char *line, size_t len)
{
	struct chain_info ci;
	char hash[CHAIN_HEX_LEN + 1];
	bool prev_ok;

	v->line++;
	if (v->gap) {
		/* Only looking for the missing seq now. */
		if (chain_parse(line, len, &ci) == 0 && ci.has_chain && ci.seq == v->gap_want) {
			unsigned long long found_at = v->line;

			v->line = v->gap_line;
			verify_fail(v,
				    "records were reordered: seq %lld is expected here but comes "
				    "later, at line %llu (found seq %lld here)",
				    v->gap_want, found_at, v->gap_found);
		}
		return;
	}
	if (len == 0) {
		verify_fail(v, "empty line: a record was blanked out or the file was damaged");
		return;
	}
	if (chain_parse(line, len, &ci) != 0) {
		verify_fail(v, "not a JSON object: the record was edited or damaged");
		return;
	}
	if (!ci.has_chain) {
		verify_fail(v, "the record carries no hash chain (unmapped.prev/seq): edited, "
			       "inserted, or written by a version without the chain");
		return;
	}
	chain_hash(line, len, hash);
	v->records++;
	if (v->records == 1 && !v->have_prev) {
		/* The first record we see anchors the whole check. */
		if (!ci.anchor) {
			verify_fail(v,
				    "the file does not start with a chain anchor (Event Log "
				    "Activity): records before seq %lld were removed",
				    ci.seq);
			return;
		}
		v->first_seq = ci.seq;
		memcpy(v->first_anchor, ci.prev, sizeof(v->first_anchor));
		goto ok;
	}
	if (v->records == 1 && !ci.anchor) {
		verify_fail(v,
			    "the file does not start with a chain anchor (Event Log Activity): "
			    "records before seq %lld were removed from its start",
			    ci.seq);
		return;
	}
	prev_ok = strcmp(ci.prev, v->prev_hash) == 0;
	if (prev_ok && ci.seq == v->prev_seq + 1)
		goto ok;
	if (prev_ok) {
		verify_fail(v,
			    "record seq %lld was edited: it follows seq %lld (its prev hash "
			    "matches) but its seq should be %lld",
			    ci.seq, v->prev_seq, v->prev_seq + 1);
		return;
	}
	if (ci.seq == v->prev_seq + 1) {
		if (v->records == 1)
			verify_fail(v,
				    "the anchor does not chain to the last record of the file "
				    "before (seq %lld): that record was edited, or the files are "
				    "not consecutive",
				    v->prev_seq);
		else
			verify_fail(
				v,
				"the previous record (line %llu, seq %lld) was edited: its hash "
				"does not match the prev hash of this record",
				v->line - 1, v->prev_seq);
		return;
	}
	if (ci.seq <= v->prev_seq) {
		verify_fail(v,
			    "records were reordered or duplicated: seq %lld comes after seq %lld",
			    ci.seq, v->prev_seq);
		return;
	}
	/* A jump forward: removed, unless the missing seq turns up further on. */
	v->gap = true;
	v->gap_want = v->prev_seq + 1;
	v->gap_found = ci.seq;
	v->gap_line = v->line;
	return;
ok:
	memcpy(v->prev_hash, hash, sizeof(v->prev_hash));
	v->prev_seq = ci.seq;
	v->have_prev = true;
}

/* End of one file: settle a pending gap. */
static void
verify_end_file(struct verify *v, bool truncated)
{
	if (v->gap && v->outcome == VERIFY_GOING) {
		v->line = v->gap_line;
		if (v->gap_found - 1 == v->gap_want)
			verify_fail(v, "record seq %lld was removed before this line", v->gap_want);
		else
			verify_fail(v, "records seq %lld to %lld were removed before this line",
				    v->gap_want, v->gap_found - 1);
	}
	if (truncated && v->outcome == VERIFY_GOING) {
		v->line++;
		verify_fail(v, "the last record is truncated (no line end): the file was cut "
			       "short or a write was interrupted");
	}
}

/* Feeds bytes; lines are assembled in buf (at most CHAIN_LINE_MAX). */
struct verify_reader {
	char *buf;
	size_t len;
	bool overlong;
};

static void
verify_feed(struct verify *v, struct verify_reader *rd, const char *p, size_t n)
{
	const char *nl;
	size_t take;

	while (n > 0 && v->outcome == VERIFY_GOING) {
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) : n;
		if (!rd->overlong) {
			if (rd->len + take > CHAIN_LINE_MAX) {
				rd->overlong = true;
			} else {
				memcpy(rd->buf + rd->len, p, take);
				rd->len += take;
			}
		}
		if (nl == NULL)
			return;
		if (rd->overlong) {
			v->line++;
			verify_fail(v, "record longer than 1 MiB: not written by the audit sink");
		} else {
			verify_line(v, rd->buf, rd->len);
		}
		rd->len = 0;
		rd->overlong = false;
		p = nl + 1;
		n -= take + 1;
	}
}

static int
verify_summary(struct verify *v)
{
	if (v->report == NULL)
		return v->outcome == VERIFY_GOING ? 0 : 1;
	if (v->outcome != VERIFY_GOING)
		return 1;
	if (!v->have_prev) {
		fprintf(v->report, "%s: no records\n", v->name);
		return 0;
	}
	fprintf(v->report,
		"OK: seq %lld to %lld verified (chain anchored to %.16s...); head: seq %lld "
		"hash %s\n",
		v->first_seq, v->prev_seq, v->first_anchor, v->prev_seq, v->prev_hash);
	return 0;
}

int
audit_verify_buffer(const char *name, const char *buf, size_t len, FILE *report)
{
	struct verify v = { .report = report };
	struct verify_reader rd = { 0 };
	int rc;

	if ((rd.buf = malloc(CHAIN_LINE_MAX + 1)) == NULL)
		return -1;
	verify_start_file(&v, name);
	verify_feed(&v, &rd, buf, len);
	verify_end_file(&v, v.outcome == VERIFY_GOING && (rd.len > 0 || rd.overlong));
	rc = verify_summary(&v);
	free(rd.buf);
	return rc;
}

int
audit_verify_files(const char *const *paths, size_t n, FILE *report)
{
	struct verify v = { .report = report };
	struct verify_reader rd = { 0 };
	char *chunk = NULL;
	size_t i, got;
	FILE *fp;
	int rc = -1;

	if ((rd.buf = malloc(CHAIN_LINE_MAX + 1)) == NULL ||
	    (chunk = malloc(VERIFY_CHUNK)) == NULL) {
		if (report != NULL)
			fprintf(report, "out of memory\n");
		goto out;
	}
	for (i = 0; i < n && v.outcome == VERIFY_GOING; i++) {
		if ((fp = fopen(paths[i], "re")) == NULL) {
			if (report != NULL)
				fprintf(report, "%s: cannot open: %s\n", paths[i], strerror(errno));
			goto out;
		}
		verify_start_file(&v, paths[i]);
		rd.len = 0;
		rd.overlong = false;
		while ((got = fread(chunk, 1, VERIFY_CHUNK, fp)) > 0 && v.outcome == VERIFY_GOING)
			verify_feed(&v, &rd, chunk, got);
		if (ferror(fp)) {
			if (report != NULL)
				fprintf(report, "%s: read error\n", paths[i]);
			fclose(fp);
			goto out;
		}
		fclose(fp);
		verify_end_file(&v, v.outcome == VERIFY_GOING && (rd.len > 0 || rd.overlong));
	}
	rc = verify_summary(&v);
out:
	free(rd.buf);
	free(chunk);
	return rc;
}

int
audit_verify_file(const char *path, FILE *report)
{
	return audit_verify_files(&path, 1, report);
}

int
audit_verify_rotated(const char *path, FILE *report)
{
	const char **paths = NULL;
	char **owned = NULL;
	struct stat sb;
	size_t n = 0, k, nrot;
	int rc = -1;

	for (nrot = 0; nrot < AUDIT_VERIFY_MAX_ROTATED; nrot++) {
		char p[PATH_MAX];

		if (snprintf(p, sizeof(p), "%s.%zu", path, nrot + 1) >= (int)sizeof(p) ||
		    stat(p, &sb) == -1)
			break;
	}
	if ((paths = calloc(nrot + 1, sizeof(*paths))) == NULL ||
	    (owned = calloc(nrot + 1, sizeof(*owned))) == NULL)
		goto oom;
	for (k = nrot; k >= 1; k--, n++) {
		if (asprintf(&owned[n], "%s.%zu", path, k) == -1) {
			owned[n] = NULL;
			goto oom;
		}
		paths[n] = owned[n];
	}
	paths[n++] = path;
	rc = audit_verify_files(paths, n, report);
	goto out;
oom:
	if (report != NULL)
		fprintf(report, "%s: out of memory\n", path);
out:
	for (k = 0; owned != NULL && k < nrot; k++)
		free(owned[k]);
	free(owned);
	free(paths);
	return rc;
}
