/*
 * The logger: one line per event on stderr,
 * "2026-11-25T18:00:00.123Z level message key=value ...".
 */
#ifndef BROKER_LOG_H
#define BROKER_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/**
 * Sets the most verbose level printed (default LOG_INFO). Values outside
 * LOG_ERROR..LOG_DEBUG are clamped. The level is the one mutable global of
 * mqd; it is read atomically, so any thread may log.
 */
void log_set_level(int level);
/** @return the most verbose level printed */
int log_get_level(void);
/** Parses "error", "warn", "info", "debug". @return level or -1 */
int log_level_parse(const char *s);
/** @return "error", "warn", "info" or "debug"; "?" for anything else */
const char *log_level_name(int level);

/**
 * Writes one line to stderr when @p level is enabled: UTC time with
 * milliseconds, the level name, then the formatted message. Control
 * characters in the message (newlines included) are written as '?', so a
 * peer-supplied string cannot forge a line; lines longer than about 4 KiB
 * are cut and end in "...". Each line is one write(2).
 */
void log_msg(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/**
 * Rate limiting for logs a peer can trigger: @return true when a line may
 * be written now (at most @p burst per second per limiter).
 *
 * A zeroed struct is a fresh limiter. When a new second begins after lines
 * were suppressed, the call writes "log lines suppressed n=N" at LOG_WARN
 * first, then resets the count. Not thread-safe: one limiter per thread
 * (the loop thread, in practice).
 *
 *	if (log_limit_ok(&node->log_malformed, 10))
 *		log_warn("malformed packet client=%s", id);
 */
struct log_limit {
	long long window; /* second of the current window */
	unsigned n;       /* lines in it */
	unsigned dropped; /* lines suppressed since last printed */
};
bool log_limit_ok(struct log_limit *l, unsigned burst);

/** log_limit_ok with the current monotonic second given, for tests. */
bool log_limit_ok_at(struct log_limit *l, unsigned burst, long long now);

#endif
