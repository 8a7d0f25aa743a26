/*
 * The configuration parser shared by every SAW daemon (sshd_config style).
 *
 * A daemon declares its configuration once, as a table of struct conf_keyword terminated by
 * an entry whose name is NULL. The table drives the defaults, the parser, the -T dump and
 * freeing; a daemon never walks configuration text itself.
 *
 * Syntax: one "Keyword argument..." per line; keywords are case-insensitive; '#' starts a
 * comment at the beginning of a line or after whitespace; an argument may be double-quoted
 * ("a b", with \" and \\ as the only escapes); CRLF line ends are accepted. Lines longer than
 * CONF_MAX_LINE bytes, NUL or other control bytes, and files larger than CONF_MAX_FILE bytes
 * are errors.
 *
 * Repetition: a CONF_MULTI keyword may be given several times and every occurrence appends to
 * its list. Any other keyword given twice is an error ("given twice (first at line N)"):
 * unlike sshd, where the first value silently wins, we refuse the ambiguity.
 *
 * Defaults: a keyword absent from the file takes its default text, parsed exactly as if it
 * had been written in the file. A keyword given in the file replaces its default entirely
 * (a list is not appended to its default).
 *
 * Errors: every error of the file is reported, one per line, as "NAME:LINE: Keyword: message"
 * (or "NAME: Keyword is required"), then parsing fails; at most CONF_MAX_ERRORS are printed.
 *
 * Ownership: the object being filled owns every string and list the parser stores in it;
 * conf_free() releases them (strings are wiped with explicit_bzero first, so a value that
 * turns out to be sensitive never lingers in freed memory) and leaves the fields NULL/empty,
 * so calling it twice is harmless.
 */
#ifndef SAW_CONF_H
#define SAW_CONF_H

#include <stddef.h>
#include <stdio.h>

/* A list of strings, owned by the configuration that holds it. */
struct conf_list {
	char **v;
	size_t n;
};

#define CONF_MAX_LINE 4096	    /* bytes per line, without the line end */
#define CONF_MAX_FILE (1024 * 1024) /* bytes per file */
#define CONF_MAX_ERRORS 100	    /* errors printed before giving up */

enum conf_type {
	CONF_STRING,   /* char *: one argument */
	CONF_PATH,     /* char *: one argument, an absolute path */
	CONF_ADDRESS,  /* char *: one argument, HOST:PORT or [V6]:PORT */
	CONF_WORDS,    /* struct conf_list: one or more arguments on a line */
	CONF_INT,      /* int: decimal, within [min, max] */
	CONF_BOOL,     /* int: yes or no, stored as 1 or 0 */
	CONF_DURATION, /* long long seconds: 30s, 15m, 8h, 2d, 1w, 1h30m; bare number = seconds */
	CONF_SIZE,     /* long long bytes: 64K, 1M, 2G, 1T (powers of 1024); bare number = bytes */
	CONF_CUSTOM,   /* parse and dump hooks do everything */
};

/* Flags. CONF_MULTI: the keyword may repeat and its field is a struct conf_list (STRING,
 * PATH, ADDRESS take one argument per occurrence, WORDS one or more). */
#define CONF_REQUIRED 0x01 /* missing from the file is an error (give no default) */
#define CONF_MULTI 0x02	   /* may repeat, every occurrence appends */
#define CONF_SECRET 0x04   /* the value itself is never dumped */

/* Hook messages are written to msg (at most msglen bytes) in plain words, without the
 * file, line or keyword: the parser adds those. Hooks return 0, or -1 with msg set. */
struct conf_keyword {
	const char *name; /* canonical spelling, used in messages and the dump */
	enum conf_type type;
	size_t offset;	    /* of the field in the configuration object (offsetof) */
	const char *def;    /* default, in configuration syntax (quoted if needed); NULL: none */
	unsigned int flags; /* CONF_REQUIRED, CONF_MULTI, CONF_SECRET */
	long long min, max; /* INT, DURATION, SIZE bounds; both 0: the type's own range */

	/* Optional: validate each argument of a STRING, PATH, ADDRESS or WORDS keyword after
	 * the generic checks, while the line is still known. */
	int (*check)(const struct conf_keyword *kw, const char *value, char *msg, size_t msglen);
	/* Optional: validate the whole field once everything (file and defaults) is parsed,
	 * e.g. "a list must contain X". field points at obj + offset. */
	int (*finish)(const struct conf_keyword *kw, const void *field, char *msg, size_t msglen);

	/* CONF_CUSTOM only (required for it): parse argc arguments into obj (the whole
	 * object, so one keyword may fill several fields) and print the canonical arguments
	 * (without the keyword or a newline) so that they parse back to the same values. */
	int (*parse)(const struct conf_keyword *kw, void *obj, int argc, char **argv, char *msg,
		     size_t msglen);
	void (*dump)(const struct conf_keyword *kw, const void *obj, FILE *out);
	/* CONF_CUSTOM, optional: release what parse allocated in obj. */
	void (*release)(const struct conf_keyword *kw, void *obj);
};

/*
 * Parse buf (len bytes, need not be NUL-terminated) into obj, which the caller has zeroed.
 * name is used in messages. Errors go to errs (NULL: counted, not printed).
 * Returns 0, or -1 if there was any error; on error obj has been released with conf_free().
 */
int conf_parse_buffer(const struct conf_keyword *table, void *obj, const char *name,
		      const char *buf, size_t len, FILE *errs);
/* Same, reading the file at path (a regular file of at most CONF_MAX_FILE bytes). */
int conf_parse_file(const struct conf_keyword *table, void *obj, const char *path, FILE *errs);
/* Every keyword of the table, in table order, one "Keyword value" per line, canonical
 * values, quoted where needed. An unset optional keyword or a CONF_SECRET value is printed
 * as a comment. The output parses back to the same object. */
void conf_dump(const struct conf_keyword *table, const void *obj, FILE *out);
/* Release (wipe and free) every string and list of obj described by table. */
void conf_free(const struct conf_keyword *table, void *obj);

/*
 * Value helpers, also for hooks. Parsers return 0, -EINVAL (not a valid value) or -ERANGE
 * (valid syntax but does not fit). Formatters write the canonical form, the one conf_dump
 * prints (e.g. 90 -> "1m30s", 0 -> "0s"; 65536 -> "64K"), and return -ERANGE if len is
 * too small.
 */
int conf_parse_duration(const char *s, long long *out);
int conf_format_duration(long long secs, char *buf, size_t len);
int conf_parse_size(const char *s, long long *out);
int conf_format_size(long long bytes, char *buf, size_t len);
int conf_parse_int(const char *s, long long min, long long max, long long *out);
int conf_parse_bool(const char *s, int *out);
/* Split "host:port" / "[v6]:port" into host (no brackets) and port, validating both
 * (hostname or IP literal; port 1..65535). host and port may be NULL to only validate. */
int conf_address_split(const char *addr, char *host, size_t hostlen, unsigned int *port);
/* Print s as one argument, quoted and escaped if it needs to be. */
void conf_print_arg(FILE *out, const char *s);
/* Copy s into buf for an error message: control and non-ASCII bytes as \xNN, long values
 * cut with "...". Returns buf. */
const char *conf_vis(const char *s, char *buf, size_t len);

#endif
