/*
 * The line reader of mqd's own text files ([auth] password_file and
 * acl_file): one line at a time, its end stripped, with the errors every
 * such file reports the same way (file, line).
 */
#ifndef BROKER_LINES_H
#define BROKER_LINES_H

#include <stddef.h>

/** One line (NUL-terminated, without its CR/LF, writable), numbered from
 * 1. @return 0 to go on, or an ERR_* (with the caller's err filled) */
typedef int (*lines_fn)(void *arg, char *line, unsigned lineno);

/**
 * Calls @p fn for each line of @p path, stopping at its first error.
 * @param max longest line, its end included
 * @param[out] err on ERR_IO ("PATH: cannot read: ...") and ERR_MALFORMED
 *   for a line over max ("PATH:N: line too long"); fn fills it otherwise
 * @return 0, ERR_IO, ERR_MALFORMED, ERR_NOMEM or fn's error
 */
int lines_each(const char *path, size_t max, lines_fn fn, void *arg, char *err,
               size_t errlen);

#endif
