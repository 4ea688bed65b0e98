/*
 * The logger: formats one line per event (UTC time with milliseconds, level,
 * message) and writes it to stderr in a single write(2). Owns the process's
 * log level, the one mutable global mqd accepts, and the per-caller rate
 * limiter for lines a peer can trigger.
 */
#include "broker/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *const log_names[] = { "error", "warn", "info", "debug" };

/* The one accepted mutable global: read by any thread, set at start-up. */
static atomic_int log_max_level = LOG_INFO;

void
log_set_level(int level)
{
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	atomic_store_explicit(&log_max_level, level, memory_order_relaxed);
}

int
log_get_level(void)
{
	return atomic_load_explicit(&log_max_level, memory_order_relaxed);
}

int
log_level_parse(const char *s)
{
	int i;

	if (!s)
		return -1;
	for (i = LOG_ERROR; i <= LOG_DEBUG; i++) {
		if (strcmp(s, log_names[i]) == 0)
			return i;
	}
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < LOG_ERROR || level > LOG_DEBUG)
		return "?";
	return log_names[level];
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ level " into @p out; @return its length. */
static size_t
log_stamp(char *out, size_t len, int level)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int m;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
	if (!gmtime_r(&ts.tv_sec, &tm))
		memset(&tm, 0, sizeof(tm));
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	m = snprintf(out + n, len - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
	             log_level_name(level));
	if (m < 0)
		return n;
	return n + (size_t)m < len ? n + (size_t)m : len - 1;
}

/* Replaces control characters so that one event stays one line. */
static void
log_sanitize(char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			p[i] = '?';
	}
}

static void
log_write(const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n, room, end;
	va_list ap;
	int m;

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > log_get_level())
		return;
	n = log_stamp(line, sizeof(line), level);
	room = sizeof(line) - n - 1; /* keep one byte for the newline */
	va_start(ap, fmt);
	m = vsnprintf(line + n, room, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m < room) {
		end = n + (size_t)m;
	} else {
		end = n + room - 1;
		memcpy(line + end - 3, "...", 3);
	}
	log_sanitize(line + n, end - n);
	line[end++] = '\n';
	log_write(line, end);
}

bool
log_limit_ok_at(struct log_limit *l, unsigned burst, long long now)
{
	if (now != l->window) {
		l->window = now;
		l->n = 0;
		if (l->dropped > 0 && burst > 0) {
			log_warn("log lines suppressed n=%u", l->dropped);
			l->dropped = 0;
		}
	}
	if (l->n >= burst) {
		if (l->dropped < UINT_MAX)
			l->dropped++;
		return false;
	}
	l->n++;
	return true;
}

bool
log_limit_ok(struct log_limit *l, unsigned burst)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		ts.tv_sec = 0;
	return log_limit_ok_at(l, burst, (long long)ts.tv_sec);
}
