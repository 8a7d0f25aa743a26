/*
 * Logging to stderr, with syslog priority prefixes under systemd-journald.
 *
 * The state below is the one deliberate exception to "no mutable globals": stderr is
 * process-wide, so is the way we write to it. It is set once by log_init() before any
 * thread or event loop exists.
 */
#include "audit/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_progname;
static int log_debug_enabled;
static int log_journal = -1; /* -1: not probed yet */

/*
 * systemd sets JOURNAL_STREAM to "dev:ino" of the stream it connected to stderr. Checking
 * that stderr is still that stream (not redirected by a wrapper or a test) is what
 * sd-daemon(3) recommends before emitting "<N>" prefixes.
 */
static int
log_probe_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;

	if (js == NULL || *js == '\0')
		return 0;
	if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 1; /* set but unparsable: trust the environment */
	if (fstat(STDERR_FILENO, &sb) == -1)
		return 0;
	return (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

void
log_init(const char *progname, int debug)
{
	log_progname = progname;
	log_debug_enabled = debug;
	log_journal = log_probe_journal();
}

void
log_set_debug(int debug)
{
	log_debug_enabled = debug;
}

int
log_get_debug(void)
{
	return log_debug_enabled;
}

static const char *
log_level_word(int prio)
{
	switch (prio) {
	case LOG_DEBUG:
		return "debug: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_CRIT:
		return "fatal: ";
	default:
		return "";
	}
}

/*
 * Formats the whole line first and writes it with one write(2) so that lines of concurrent
 * processes sharing stderr do not interleave. Control characters (which a username or a
 * peer-supplied string could carry) are replaced so one call is always exactly one line.
 */
static void __attribute__((format(printf, 3, 0)))
log_vlog(int prio, const char *emsg, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len = 0, start, i;
	int n;

	if (log_journal == -1)
		log_journal = log_probe_journal();
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>", prio);
	else
		n = snprintf(line, sizeof(line), "%s: %s",
			     log_progname != NULL ? log_progname : program_invocation_short_name,
			     log_level_word(prio));
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	start = len;

	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (emsg != NULL && len < sizeof(line) - 1) {
		n = snprintf(line + len, sizeof(line) - len, ": %s", emsg);
		if (n > 0)
			len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	}
	for (i = start; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = c == '\t' ? ' ' : '?';
	}
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';

	for (i = 0; i < len;) {
		ssize_t w = write(STDERR_FILENO, line + i, len - i);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		i += (size_t)w;
	}
}

void
log_info(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!log_debug_enabled)
		return;
	va_start(ap, fmt);
	log_vlog(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
