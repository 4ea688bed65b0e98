/*
 * The logger: one line per event on stderr,
 * "2026-11-25T18:00:00.123Z level message key=value ...".
 */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/** Sets the most verbose level printed. */
void log_set_level(int level);
int log_get_level(void);
/** Parses "error", "warn", "info", "debug". @return level or -1 */
int log_level_parse(const char *s);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/**
 * Rate limiting for logs a peer can trigger: @return true when a line may
 * be written now (at most @p burst per second per limiter).
 */
struct log_limit {
	long long window; /* second of the current window */
	unsigned n;       /* lines in it */
	unsigned dropped; /* lines suppressed since last printed */
};
#include <stdbool.h>
bool log_limit_ok(struct log_limit *l, unsigned burst);

#endif
