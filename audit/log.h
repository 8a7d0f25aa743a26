/*
 * Logging conventions shared by every SAW daemon and tool.
 *
 * Daemons run in the foreground and log to stderr; under systemd (JOURNAL_STREAM set)
 * each line carries a "<N>" syslog priority prefix so journald keeps the level.
 * log_warn() appends strerror(errno), log_warnx() does not (OpenBSD convention).
 * fatal()/fatalx() log and exit(1): only for start-up errors and broken invariants.
 *
 * Logging state is process-wide by nature (stderr is); it is set once by log_init().
 */
#ifndef SAW_LOG_H
#define SAW_LOG_H

#include <stdarg.h>

void log_init(const char *progname, int debug);
void log_set_debug(int debug);
int log_get_debug(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
