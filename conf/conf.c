/*
 * Table-driven configuration parser (see conf.h for the syntax and the contract).
 *
 * The whole file is held in memory (at most CONF_MAX_FILE bytes) and cut into lines; each
 * line is checked for length and control bytes before it is split into arguments, so the
 * keyword handlers only ever see short, NUL-terminated, printable strings.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

#define CONF_MAX_ARGS (CONF_MAX_LINE / 2 + 2)

struct conf_state {
	const struct conf_keyword *table;
	size_t nkw;
	void *obj;
	const char *name;
	FILE *errs;
	unsigned int nerr;
	int gave_up;
	size_t *first;		       /* line a keyword was first given on, 0: not given */
	size_t *last;		       /* line it was last given on */
	unsigned char *bad;	       /* an error was reported for this keyword */
	char words[CONF_MAX_LINE + 2]; /* the current line's arguments, NUL-separated */
	char *argv[CONF_MAX_ARGS];
};

static void conf_verror(FILE *errs, const char *name, size_t line, const char *kw, const char *fmt,
			va_list ap) __attribute__((format(printf, 5, 0)));

static void
conf_verror(FILE *errs, const char *name, size_t line, const char *kw, const char *fmt, va_list ap)
{
	if (errs == NULL)
		return;
	if (line > 0)
		fprintf(errs, "%s:%zu: ", name, line);
	else
		fprintf(errs, "%s: ", name);
	if (kw != NULL)
		fprintf(errs, "%s: ", kw);
	vfprintf(errs, fmt, ap);
	fputc('\n', errs);
}

static void conf_vreport(struct conf_state *st, size_t line, const char *kw, const char *fmt,
			 va_list ap) __attribute__((format(printf, 4, 0)));

static void
conf_vreport(struct conf_state *st, size_t line, const char *kw, const char *fmt, va_list ap)
{
	if (st->gave_up)
		return;
	if (++st->nerr > CONF_MAX_ERRORS) {
		if (st->errs != NULL)
			fprintf(st->errs, "%s: too many errors, giving up\n", st->name);
		st->gave_up = 1;
		return;
	}
	conf_verror(st->errs, st->name, line, kw, fmt, ap);
}

/* An error on a line whose keyword is unknown (kw is then the text as given), or NULL. */
static void conf_error(struct conf_state *st, size_t line, const char *kw, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
conf_error(struct conf_state *st, size_t line, const char *kw, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vreport(st, line, kw, fmt, ap);
	va_end(ap);
}

/* An error about keyword kw (an entry of the table): remembered so its finish hook is not
 * run on a value that is already known to be wrong. */
static void conf_kwerror(struct conf_state *st, size_t line, const struct conf_keyword *kw,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
conf_kwerror(struct conf_state *st, size_t line, const struct conf_keyword *kw, const char *fmt,
	     ...)
{
	va_list ap;

	st->bad[kw - st->table] = 1;
	va_start(ap, fmt);
	conf_vreport(st, line, kw->name, fmt, ap);
	va_end(ap);
}

const char *
conf_vis(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (len == 0)
		return buf;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = (c >= 0x20 && c < 0x7f) ? 1 : 4;

		/* keep room for "..." and the NUL */
		if (o + need + 4 > len) {
			if (len >= 4) {
				while (o + 4 > len)
					o--;
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

/* --- value helpers --------------------------------------------------------------------- */

int
conf_parse_int(const char *s, long long min, long long max, long long *out)
{
	int neg = 0, overflow = 0;
	unsigned long long v = 0, limit;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (limit - d) / 10)
			overflow = 1;
		else
			v = v * 10 + d;
	}
	if (*s != '\0')
		return -EINVAL;
	if (overflow)
		return -ERANGE;
	if (neg) {
		long long r = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;

		if (r < min || r > max)
			return -ERANGE;
		*out = r;
	} else {
		if ((long long)v < min || (long long)v > max)
			return -ERANGE;
		*out = (long long)v;
	}
	return 0;
}

int
conf_parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0)
		*out = 1;
	else if (strcasecmp(s, "no") == 0)
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/*
 * Durations: one or more NUMBER UNIT pairs (1h30m), or a bare number of seconds. A bare
 * number inside a combination ("1h30") is refused: it is ambiguous (30 seconds? minutes?).
 */
int
conf_parse_duration(const char *s, long long *out)
{
	long long total = 0;
	int overflow = 0, parts = 0;

	if (*s == '\0')
		return -EINVAL;
	while (*s != '\0') {
		long long v = 0, mult;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		for (; isdigit((unsigned char)*s); s++) {
			if (v > (LLONG_MAX - (*s - '0')) / 10)
				overflow = 1;
			else
				v = v * 10 + (*s - '0');
		}
		switch (*s) {
		case '\0':
			if (parts > 0)
				return -EINVAL;
			mult = 1;
			break;
		case 's':
		case 'S':
			mult = 1;
			break;
		case 'm':
		case 'M':
			mult = 60;
			break;
		case 'h':
		case 'H':
			mult = 3600;
			break;
		case 'd':
		case 'D':
			mult = 86400;
			break;
		case 'w':
		case 'W':
			mult = 604800;
			break;
		default:
			return -EINVAL;
		}
		if (*s != '\0')
			s++;
		parts++;
		if (v > LLONG_MAX / mult || total > LLONG_MAX - v * mult)
			overflow = 1;
		else
			total += v * mult;
	}
	if (overflow)
		return -ERANGE;
	*out = total;
	return 0;
}

int
conf_format_duration(long long secs, char *buf, size_t len)
{
	static const struct {
		long long mult;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t o = 0;
	size_t i;

	if (secs < 0 || len == 0)
		return -ERANGE;
	if (secs == 0) {
		if (len < 3)
			return -ERANGE;
		memcpy(buf, "0s", 3);
		return 0;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		long long n = secs / units[i].mult;
		int w;

		if (n == 0)
			continue;
		secs -= n * units[i].mult;
		w = snprintf(buf + o, len - o, "%lld%c", n, units[i].unit);
		if (w < 0 || (size_t)w >= len - o)
			return -ERANGE;
		o += (size_t)w;
	}
	return 0;
}

int
conf_parse_size(const char *s, long long *out)
{
	long long v = 0;
	int shift = 0, overflow = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (LLONG_MAX - (*s - '0')) / 10)
			overflow = 1;
		else
			v = v * 10 + (*s - '0');
	}
	switch (*s) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*s != '\0' && s[1] != '\0')
		return -EINVAL;
	if (overflow || v > (LLONG_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int
conf_format_size(long long bytes, char *buf, size_t len)
{
	static const char units[] = "TGMK";
	int shift, w;

	if (bytes < 0)
		return -ERANGE;
	for (shift = 40; shift > 0; shift -= 10) {
		long long unit = 1LL << shift;

		if (bytes != 0 && bytes % unit == 0) {
			w = snprintf(buf, len, "%lld%c", bytes / unit, units[(40 - shift) / 10]);
			return w < 0 || (size_t)w >= len ? -ERANGE : 0;
		}
	}
	w = snprintf(buf, len, "%lld", bytes);
	return w < 0 || (size_t)w >= len ? -ERANGE : 0;
}

/* A DNS name (letters, digits, '-', labels of 1..63) or a dotted-quad IPv4 address. */
static int
conf_valid_host(const char *h, size_t n)
{
	size_t i, label = 0;
	int alldigits = 1;
	char tmp[INET_ADDRSTRLEN];
	struct in_addr a4;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (!isdigit(c))
			alldigits = 0;
		if (++label > 63)
			return 0;
	}
	if (h[n - 1] == '-' || h[n - 1] == '.')
		return 0;
	if (alldigits) {
		/* looks like an IPv4 address, so it must be a valid one */
		if (n >= sizeof(tmp))
			return 0;
		memcpy(tmp, h, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET, tmp, &a4) == 1;
	}
	return 1;
}

int
conf_address_split(const char *addr, char *host, size_t hostlen, unsigned int *port)
{
	const char *h, *colon, *p;
	size_t hn;
	long long pv;
	char tmp[INET6_ADDRSTRLEN];

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		struct in6_addr a6;

		if (close == NULL || close[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hn = (size_t)(close - h);
		if (hn == 0 || hn >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, h, hn);
		tmp[hn] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
		colon = close + 1;
	} else {
		colon = strchr(addr, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -EINVAL; /* no port, or an IPv6 address without brackets */
		h = addr;
		hn = (size_t)(colon - addr);
		if (!conf_valid_host(h, hn))
			return -EINVAL;
	}
	p = colon + 1;
	if (strlen(p) > 5 || conf_parse_int(p, 1, 65535, &pv) != 0 || *p == '-')
		return -EINVAL;
	if (host != NULL) {
		if (hn >= hostlen)
			return -ERANGE;
		memcpy(host, h, hn);
		host[hn] = '\0';
	}
	if (port != NULL)
		*port = (unsigned int)pv;
	return 0;
}

static int
conf_needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	return strpbrk(s, " \t#\"\\") != NULL;
}

void
conf_print_arg(FILE *out, const char *s)
{
	if (!conf_needs_quotes(s)) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* --- parsing ----------------------------------------------------------------------------- */

static void *
conf_field(const struct conf_keyword *kw, void *obj)
{
	return (char *)obj + kw->offset;
}

static const void *
conf_cfield(const struct conf_keyword *kw, const void *obj)
{
	return (const char *)obj + kw->offset;
}

static void
conf_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void
conf_list_free(struct conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		conf_wipe_free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
conf_list_append(struct conf_list *l, const char *s)
{
	char **nv;
	char *d;

	if ((d = strdup(s)) == NULL)
		return -ENOMEM;
	if ((nv = reallocarray(l->v, l->n + 1, sizeof(*nv))) == NULL) {
		free(d);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = d;
	return 0;
}

/*
 * Split one line into st->argv. The line has already been checked: no NUL, no control
 * bytes but tab, at most CONF_MAX_LINE bytes. Returns the number of arguments, or -1 after
 * reporting an error.
 */
static int
conf_split(struct conf_state *st, const char *p, size_t n, size_t lineno)
{
	char vis[64];
	size_t i = 0, o = 0;
	int argc = 0;
	const char *what = NULL;

	for (;;) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n || p[i] == '#')
			break;
		st->argv[argc++] = st->words + o;
		if (p[i] == '"') {
			for (i++;; i++) {
				if (i == n) {
					what = "unterminated quote";
					goto bad;
				}
				if (p[i] == '"')
					break;
				if (p[i] == '\\') {
					if (i + 1 == n || (p[i + 1] != '"' && p[i + 1] != '\\')) {
						what = "bad escape: inside quotes only \\\" and \\\\ "
						       "are allowed";
						goto bad;
					}
					i++;
				}
				st->words[o++] = p[i];
			}
			i++;
			if (i < n && p[i] != ' ' && p[i] != '\t') {
				what = "a closing quote must be followed by a space";
				goto bad;
			}
		} else {
			for (; i < n && p[i] != ' ' && p[i] != '\t'; i++) {
				if (p[i] == '"') {
					what = "quote in the middle of an argument (quote the "
					       "whole argument)";
					goto bad;
				}
				st->words[o++] = p[i];
			}
		}
		st->words[o++] = '\0';
	}
	return argc;
bad:
	st->words[o] = '\0';
	if (argc > 1) {
		const struct conf_keyword *kw;

		for (kw = st->table; kw->name != NULL; kw++) {
			if (strcasecmp(kw->name, st->argv[0]) == 0) {
				conf_kwerror(st, lineno, kw, "%s", what);
				return -1;
			}
		}
		conf_error(st, lineno, conf_vis(st->argv[0], vis, sizeof(vis)), "%s", what);
	} else {
		conf_error(st, lineno, NULL, "%s", what);
	}
	return -1;
}

static int
conf_in_range(const struct conf_keyword *kw, long long v, long long tmin, long long tmax)
{
	long long min = tmin, max = tmax;

	if (kw->min != 0 || kw->max != 0) {
		min = kw->min;
		max = kw->max;
	}
	return v >= min && v <= max;
}

/* The bounds of a keyword for a message, formatted like the values. */
static void
conf_range_text(const struct conf_keyword *kw, char *buf, size_t len)
{
	char a[32], b[32];

	if (kw->type == CONF_DURATION) {
		conf_format_duration(kw->min, a, sizeof(a));
		conf_format_duration(kw->max, b, sizeof(b));
	} else if (kw->type == CONF_SIZE) {
		conf_format_size(kw->min, a, sizeof(a));
		conf_format_size(kw->max, b, sizeof(b));
	} else {
		snprintf(a, sizeof(a), "%lld", kw->min);
		snprintf(b, sizeof(b), "%lld", kw->max);
	}
	snprintf(buf, len, "%s and %s", a, b);
}

/* Generic checks of one string argument, then the keyword's own. */
static int
conf_check_string(const struct conf_keyword *kw, const char *v, char *msg, size_t msglen)
{
	char vis[80];

	if (*v == '\0') {
		snprintf(msg, msglen, "empty value");
		return -1;
	}
	if (kw->type == CONF_PATH && v[0] != '/') {
		snprintf(msg, msglen, "\"%s\" is not an absolute path",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	if (kw->type == CONF_ADDRESS && conf_address_split(v, NULL, 0, NULL) != 0) {
		snprintf(msg, msglen, "\"%s\" is not HOST:PORT (e.g. 0.0.0.0:22 or [::]:22)",
			 conf_vis(v, vis, sizeof(vis)));
		return -1;
	}
	if (kw->check != NULL)
		return kw->check(kw, v, msg, msglen);
	return 0;
}

static int
conf_list_has(const struct conf_list *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

/* Apply argc arguments to keyword kw (line 0: its default). */
static void
conf_apply(struct conf_state *st, const struct conf_keyword *kw, int argc, char **argv, size_t line)
{
	void *field = conf_field(kw, st->obj);
	char msg[512], vis[80], range[80];
	long long v;
	int i, r, b;

	msg[0] = '\0';
	if (kw->type == CONF_CUSTOM) {
		if (kw->parse(kw, st->obj, argc, argv, msg, sizeof(msg)) != 0)
			conf_kwerror(st, line, kw, "%s", msg[0] ? msg : "bad value");
		return;
	}
	if (argc == 0) {
		conf_kwerror(st, line, kw, "missing argument");
		return;
	}
	if (argc > 1 && kw->type != CONF_WORDS) {
		conf_kwerror(st, line, kw,
			     "too many arguments (expected one; quote a value that contains "
			     "spaces)");
		return;
	}
	switch (kw->type) {
	case CONF_STRING:
	case CONF_PATH:
	case CONF_ADDRESS:
	case CONF_WORDS:
		for (i = 0; i < argc; i++) {
			if (conf_check_string(kw, argv[i], msg, sizeof(msg)) != 0) {
				conf_kwerror(st, line, kw, "%s", msg);
				continue;
			}
			if (kw->type == CONF_WORDS || (kw->flags & CONF_MULTI)) {
				struct conf_list *l = field;

				if (conf_list_has(l, argv[i])) {
					conf_kwerror(st, line, kw, "\"%s\" is given twice",
						     conf_vis(argv[i], vis, sizeof(vis)));
					continue;
				}
				if (conf_list_append(l, argv[i]) != 0)
					conf_kwerror(st, line, kw, "out of memory");
			} else {
				char **s = field;
				char *d = strdup(argv[i]);

				if (d == NULL) {
					conf_kwerror(st, line, kw, "out of memory");
					continue;
				}
				conf_wipe_free(*s);
				*s = d;
			}
		}
		break;
	case CONF_INT:
		r = conf_parse_int(argv[0], INT_MIN, INT_MAX, &v);
		if (r == 0 && !conf_in_range(kw, v, INT_MIN, INT_MAX))
			r = -ERANGE;
		if (r == -EINVAL) {
			conf_kwerror(st, line, kw, "\"%s\" is not a whole number",
				     conf_vis(argv[0], vis, sizeof(vis)));
		} else if (r != 0) {
			conf_range_text(kw, range, sizeof(range));
			conf_kwerror(st, line, kw, "%s is out of range: give a number between %s",
				     conf_vis(argv[0], vis, sizeof(vis)), range);
		} else {
			*(int *)field = (int)v;
		}
		break;
	case CONF_BOOL:
		if (conf_parse_bool(argv[0], &b) != 0)
			conf_kwerror(st, line, kw, "\"%s\" is not yes or no",
				     conf_vis(argv[0], vis, sizeof(vis)));
		else
			*(int *)field = b;
		break;
	case CONF_DURATION:
	case CONF_SIZE:
		if (kw->type == CONF_DURATION)
			r = conf_parse_duration(argv[0], &v);
		else
			r = conf_parse_size(argv[0], &v);
		if (r == 0 && !conf_in_range(kw, v, 0, LLONG_MAX))
			r = -ERANGE;
		if (r == -EINVAL) {
			conf_kwerror(st, line, kw, "\"%s\" is not a %s",
				     conf_vis(argv[0], vis, sizeof(vis)),
				     kw->type == CONF_DURATION ?
					     "duration (e.g. 30s, 15m, 8h, 2d, 1h30m)" :
					     "size (e.g. 512, 64K, 1M, 2G)");
		} else if (r != 0) {
			if (kw->min != 0 || kw->max != 0) {
				conf_range_text(kw, range, sizeof(range));
				conf_kwerror(st, line, kw,
					     "%s is out of range: give a value between %s",
					     conf_vis(argv[0], vis, sizeof(vis)), range);
			} else {
				conf_kwerror(st, line, kw, "%s is too large",
					     conf_vis(argv[0], vis, sizeof(vis)));
			}
		} else {
			*(long long *)field = v;
		}
		break;
	case CONF_CUSTOM:
		break;
	}
}

static const struct conf_keyword *
conf_lookup(const struct conf_keyword *table, const char *name)
{
	for (; table->name != NULL; table++)
		if (strcasecmp(table->name, name) == 0)
			return table;
	return NULL;
}

static void
conf_line(struct conf_state *st, const char *p, size_t n, size_t lineno)
{
	const struct conf_keyword *kw;
	char vis[64];
	size_t i, idx;
	int argc;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > CONF_MAX_LINE) {
		conf_error(st, lineno, NULL, "line is longer than %d bytes", CONF_MAX_LINE);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0') {
			conf_error(st, lineno, NULL, "line contains a NUL byte");
			return;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			conf_error(st, lineno, NULL, "line contains a control character (\\x%02x)",
				   c);
			return;
		}
	}
	if ((argc = conf_split(st, p, n, lineno)) <= 0)
		return;
	if ((kw = conf_lookup(st->table, st->argv[0])) == NULL) {
		conf_error(st, lineno, conf_vis(st->argv[0], vis, sizeof(vis)), "unknown keyword");
		return;
	}
	idx = (size_t)(kw - st->table);
	if (st->first[idx] != 0 && !(kw->flags & CONF_MULTI)) {
		conf_kwerror(st, lineno, kw, "given twice (first at line %zu)", st->first[idx]);
		return;
	}
	if (st->first[idx] == 0)
		st->first[idx] = lineno;
	st->last[idx] = lineno;
	conf_apply(st, kw, argc - 1, st->argv + 1, lineno);
}

/* Defaults, required keywords and finish hooks, once every line has been read. */
static void
conf_complete(struct conf_state *st)
{
	const struct conf_keyword *kw;
	char msg[512];
	size_t idx;
	int argc;

	for (kw = st->table; kw->name != NULL && !st->gave_up; kw++) {
		idx = (size_t)(kw - st->table);
		if (st->first[idx] != 0)
			continue;
		if (kw->flags & CONF_REQUIRED) {
			st->bad[idx] = 1;
			conf_error(st, 0, NULL, "%s is required", kw->name);
			continue;
		}
		if (kw->def == NULL)
			continue;
		/* a default goes through the very same code as a file line */
		argc = conf_split(st, kw->def, strlen(kw->def), 0);
		if (argc >= 0)
			conf_apply(st, kw, argc, st->argv, 0);
	}
	for (kw = st->table; kw->name != NULL && !st->gave_up; kw++) {
		idx = (size_t)(kw - st->table);
		if (kw->finish == NULL || st->bad[idx])
			continue;
		if (st->first[idx] == 0 && kw->def == NULL)
			continue;
		msg[0] = '\0';
		if (kw->finish(kw, conf_cfield(kw, st->obj), msg, sizeof(msg)) != 0)
			conf_kwerror(st, st->last[idx], kw, "%s", msg[0] ? msg : "bad value");
	}
}

int
conf_parse_buffer(const struct conf_keyword *table, void *obj, const char *name, const char *buf,
		  size_t len, FILE *errs)
{
	struct conf_state *st = NULL;
	size_t pos = 0, lineno = 0, n;
	int ret = -1;

	if (len > CONF_MAX_FILE) {
		if (errs != NULL)
			fprintf(errs, "%s: file is larger than 1 MiB (%zu bytes)\n", name, len);
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		goto nomem;
	st->table = table;
	while (table[st->nkw].name != NULL)
		st->nkw++;
	st->obj = obj;
	st->name = name;
	st->errs = errs;
	st->first = calloc(st->nkw + 1, sizeof(*st->first));
	st->last = calloc(st->nkw + 1, sizeof(*st->last));
	st->bad = calloc(st->nkw + 1, sizeof(*st->bad));
	if (st->first == NULL || st->last == NULL || st->bad == NULL)
		goto nomem;

	while (pos < len && !st->gave_up) {
		const char *eol = memchr(buf + pos, '\n', len - pos);

		n = eol != NULL ? (size_t)(eol - (buf + pos)) : len - pos;
		conf_line(st, buf + pos, n, ++lineno);
		pos += n + (eol != NULL);
	}
	conf_complete(st);
	ret = st->nerr == 0 ? 0 : -1;
	goto out;
nomem:
	if (errs != NULL)
		fprintf(errs, "%s: out of memory\n", name);
out:
	if (st != NULL) {
		free(st->first);
		free(st->last);
		free(st->bad);
		explicit_bzero(st, sizeof(*st));
		free(st);
	}
	if (ret != 0)
		conf_free(table, obj);
	return ret;
}

int
conf_parse_file(const struct conf_keyword *table, void *obj, const char *path, FILE *errs)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, ret = -1;

	/* O_NONBLOCK: a FIFO put in place of the file must not hang start-up */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		if (errs != NULL)
			fprintf(errs, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		if (errs != NULL)
			fprintf(errs, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		if (errs != NULL)
			fprintf(errs, "%s: not a regular file\n", path);
		goto out;
	}
	if (sb.st_size > CONF_MAX_FILE) {
		if (errs != NULL)
			fprintf(errs, "%s: file is larger than 1 MiB (%lld bytes)\n", path,
				(long long)sb.st_size);
		goto out;
	}
	/* one byte more than allowed, to notice a file that grew since fstat */
	if ((buf = malloc(CONF_MAX_FILE + 1)) == NULL) {
		if (errs != NULL)
			fprintf(errs, "%s: out of memory\n", path);
		goto out;
	}
	while (len < CONF_MAX_FILE + 1) {
		r = read(fd, buf + len, CONF_MAX_FILE + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			if (errs != NULL)
				fprintf(errs, "%s: read: %s\n", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	ret = conf_parse_buffer(table, obj, path, buf, len, errs);
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	close(fd);
	return ret;
}

/* --- dump and free ----------------------------------------------------------------------- */

void
conf_dump(const struct conf_keyword *table, const void *obj, FILE *out)
{
	const struct conf_keyword *kw;
	char buf[64];
	size_t i;

	for (kw = table; kw->name != NULL; kw++) {
		const void *field = conf_cfield(kw, obj);

		if (kw->flags & CONF_SECRET) {
			fprintf(out, "# %s (value not shown)\n", kw->name);
			continue;
		}
		switch (kw->type) {
		case CONF_STRING:
		case CONF_PATH:
		case CONF_ADDRESS:
		case CONF_WORDS:
			if (kw->type == CONF_WORDS || (kw->flags & CONF_MULTI)) {
				const struct conf_list *l = field;

				if (l->n == 0) {
					fprintf(out, "# %s is not set\n", kw->name);
					break;
				}
				if (kw->type == CONF_WORDS) {
					fputs(kw->name, out);
					for (i = 0; i < l->n; i++) {
						fputc(' ', out);
						conf_print_arg(out, l->v[i]);
					}
					fputc('\n', out);
					break;
				}
				for (i = 0; i < l->n; i++) {
					fprintf(out, "%s ", kw->name);
					conf_print_arg(out, l->v[i]);
					fputc('\n', out);
				}
			} else {
				const char *const *s = field;

				if (*s == NULL) {
					fprintf(out, "# %s is not set\n", kw->name);
					break;
				}
				fprintf(out, "%s ", kw->name);
				conf_print_arg(out, *s);
				fputc('\n', out);
			}
			break;
		case CONF_INT:
			fprintf(out, "%s %d\n", kw->name, *(const int *)field);
			break;
		case CONF_BOOL:
			fprintf(out, "%s %s\n", kw->name, *(const int *)field ? "yes" : "no");
			break;
		case CONF_DURATION:
			if (conf_format_duration(*(const long long *)field, buf, sizeof(buf)) != 0)
				snprintf(buf, sizeof(buf), "%lld", *(const long long *)field);
			fprintf(out, "%s %s\n", kw->name, buf);
			break;
		case CONF_SIZE:
			if (conf_format_size(*(const long long *)field, buf, sizeof(buf)) != 0)
				snprintf(buf, sizeof(buf), "%lld", *(const long long *)field);
			fprintf(out, "%s %s\n", kw->name, buf);
			break;
		case CONF_CUSTOM:
			fprintf(out, "%s ", kw->name);
			kw->dump(kw, obj, out);
			fputc('\n', out);
			break;
		}
	}
}

void
conf_free(const struct conf_keyword *table, void *obj)
{
	const struct conf_keyword *kw;

	for (kw = table; kw->name != NULL; kw++) {
		void *field = conf_field(kw, obj);

		switch (kw->type) {
		case CONF_STRING:
		case CONF_PATH:
		case CONF_ADDRESS:
		case CONF_WORDS:
			if (kw->type == CONF_WORDS || (kw->flags & CONF_MULTI)) {
				conf_list_free(field);
			} else {
				char **s = field;

				conf_wipe_free(*s);
				*s = NULL;
			}
			break;
		case CONF_CUSTOM:
			if (kw->release != NULL)
				kw->release(kw, obj);
			break;
		default:
			break;
		}
	}
}
