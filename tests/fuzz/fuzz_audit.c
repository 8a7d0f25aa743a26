/*
 * fuzz_audit: the readers of audit data an attacker (or a crash) can shape.
 *
 *  - the record reader and verifier (audit/chain.c, audit/verify.c) on the input as the
 *    contents of an audit file: it must report, never crash or read out of bounds;
 *  - the spool's row check (audit/spool.c) on the input as one spooled event;
 *  - the sink description parser (audit/audit-sink.c) on the input as an AuditSink line;
 *  - the spool reader itself when the input is an sqlite database ("SQLite format 3"
 *    magic): opened as a spool, every row read back and checked;
 *  - the audit path's serializer (audit/audit-json.c) on the input as the JSON object a
 *    workspace sends: what it writes must parse back to the same value, with and without
 *    the member the file sink leaves out.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "audit/audit-json.h"
#include "audit/spool.h"
#include "audit/verify.h"

static char db_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(db_path, sizeof(db_path), "%s/fuzz_audit.%ld.db",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (long)getpid());
	return 0;
}

static int
fuzz_row(const struct spool_row *row, void *arg)
{
	size_t *n = arg;

	/* A row that passed the check must be what the forwarder may send. */
	if (!row->damaged &&
	    (row->len < 2 || row->event[0] != '{' || row->event[row->len - 1] != '}'))
		abort();
	(*n)++;
	return 0;
}

static void
fuzz_spool_db(const uint8_t *data, size_t size)
{
	char wal[300], shm[300], err[512];
	struct spool *s;
	size_t n = 0;
	int fd;

	if (db_path[0] == '\0')
		LLVMFuzzerInitialize(NULL, NULL);
	if ((fd = open(db_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	close(fd);
	if ((s = spool_open(db_path, 1 << 20, err, sizeof(err))) != NULL) {
		spool_peek(s, 0, 100, 1 << 20, fuzz_row, &n);
		spool_close(s);
	}
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	snprintf(shm, sizeof(shm), "%s-shm", db_path);
	unlink(db_path);
	unlink(wal);
	unlink(shm);
}

static void
fuzz_compact(const uint8_t *data, size_t size)
{
	static const char *const skip[] = { "unmapped", NULL };
	json_t *v, *back;
	char *text;
	size_t len;

	if ((v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	if (!json_is_object(v)) {
		if (audit_json_compact(v, NULL, NULL) != NULL)
			abort();
		json_decref(v);
		return;
	}
	if ((text = audit_json_compact(v, NULL, &len)) != NULL) {
		back = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		if (back == NULL || strlen(text) != len || !json_equal(back, v))
			abort();
		json_decref(back);
		free(text);
	}
	if ((text = audit_json_compact(v, skip, &len)) != NULL) {
		back = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		json_object_del(v, "unmapped");
		if (back == NULL || !json_equal(back, v))
			abort();
		json_decref(back);
		free(text);
	}
	json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_sink_cfg cfg;
	struct chain_info ci;
	char err[256], *spec;
	char buf[AUDIT_SINK_SPEC_MAX];

	if (size >= 16 && memcmp(data, "SQLite format 3", 16) == 0) {
		fuzz_spool_db(data, size);
		return 0;
	}
	fuzz_compact(data, size);
	audit_verify_buffer("fuzz", (const char *)data, size, NULL);
	chain_parse((const char *)data, size, &ci);
	spool_row_check(NULL, (const char *)data, size);
	if (size < AUDIT_SINK_SPEC_MAX && (spec = malloc(size + 1)) != NULL) {
		memcpy(spec, data, size);
		spec[size] = '\0';
		/* Whatever parses must print back to something that parses the same. */
		if (audit_sink_parse(spec, &cfg, err, sizeof(err)) == 0) {
			struct audit_sink_cfg again;

			if (audit_sink_format(&cfg, buf, sizeof(buf)) != 0 ||
			    audit_sink_parse(buf, &again, err, sizeof(err)) != 0 ||
			    memcmp(&cfg, &again, sizeof(cfg)) != 0)
				abort();
		}
		free(spec);
	}
	return 0;
}
