/*
 * The line reader of mqd's own text files (lines.h).
 */
#include "broker/lines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proto/proto.h"

int
lines_each(const char *path, size_t max, lines_fn fn, void *arg, char *err,
           size_t errlen)
{
	unsigned lineno = 0;
	char *line, *end;
	int rc = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		         strerror(errno));
		return ERR_IO;
	}
	line = malloc(max);
	if (!line) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return ERR_NOMEM;
	}
	while (rc == 0 && fgets(line, (int)max, f)) {
		lineno++;
		end = line + strcspn(line, "\r\n");
		if (*end == '\0' && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", path,
			         lineno);
			rc = ERR_MALFORMED;
			break;
		}
		*end = '\0';
		rc = fn(arg, line, lineno);
	}
	if (rc == 0 && ferror(f)) { /* e.g. EISDIR: not an empty file */
		snprintf(err, errlen, "%s: cannot read: %s", path,
		         strerror(errno));
		rc = ERR_IO;
	}
	/* a password file's lines hold passwords */
	OPENSSL_cleanse(line, max);
	free(line);
	fclose(f);
	return rc;
}
