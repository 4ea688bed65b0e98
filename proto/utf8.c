/*
 * mqtt_utf8_is_valid: the UTF-8 rules of MQTT 3.1.1 section 1.5.3 and MQTT 5
 * section 1.5.4 (well-formed per Unicode table 3-7, no surrogates, no
 * overlong forms, nothing above U+10FFFF, no U+0000). Other control
 * characters and non-characters such as U+FFFF are accepted.
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static bool
is_cont(uint8_t c)
{
	return (c & 0xc0) == 0x80;
}

/* Length of the sequence at p[0..n), or 0 when it is not well-formed. */
static size_t
utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c == 0)
		return 0; /* U+0000 */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0; /* continuation byte, overlong lead C0/C1, F5..FF */
	if (c == 0xe0)
		lo = 0xa0; /* overlong 3-byte */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates U+D800..U+DFFF */
	else if (c == 0xf0)
		lo = 0x90; /* overlong 4-byte */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++) {
		if (!is_cont(p[i]))
			return 0;
	}
	return len;
}

bool
mqtt_utf8_is_valid(const uint8_t *p, size_t n)
{
	size_t i = 0, len;

	while (i < n) {
		len = utf8_seq_len(p + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}
