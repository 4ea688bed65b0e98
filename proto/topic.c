/*
 * Topic names and filters (MQTT section 4.7): validity, matching with the
 * '+', '#' and '$' rules, and the client identifier rules of each version.
 */
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TOPIC_MAX_LEN 65535

bool
mqtt_topic_name_is_valid(struct mqtt_bytes t)
{
	if (t.len == 0 || t.len > TOPIC_MAX_LEN)
		return false;
	if (memchr(t.p, '+', t.len) || memchr(t.p, '#', t.len))
		return false;
	return mqtt_utf8_is_valid(t.p, t.len);
}

bool
mqtt_topic_filter_is_valid(struct mqtt_bytes f)
{
	size_t i;
	bool starts_level, ends_level;

	if (f.len == 0 || f.len > TOPIC_MAX_LEN)
		return false;
	for (i = 0; i < f.len; i++) {
		if (f.p[i] != '+' && f.p[i] != '#')
			continue;
		starts_level = i == 0 || f.p[i - 1] == '/';
		ends_level = i + 1 == f.len || f.p[i + 1] == '/';
		if (!starts_level || !ends_level)
			return false;
		if (f.p[i] == '#' && i + 1 != f.len)
			return false;
	}
	return mqtt_utf8_is_valid(f.p, f.len);
}

int
mqtt_client_id_check(uint8_t version, bool clean_start, struct mqtt_bytes id)
{
	if (!mqtt_utf8_is_valid(id.p, id.len))
		return ERR_BAD_UTF8;
	switch (version) {
	case MQTT_V31:
		if (id.len == 0 || id.len > MQTT_V31_MAX_CLIENT_ID)
			return ERR_BAD_CLIENT_ID;
		return 0;
	case MQTT_V5:
		return 0;
	default:
		if (id.len == 0 && !clean_start)
			return ERR_BAD_CLIENT_ID;
		return 0;
	}
}

/* One level of a topic or filter: [p, p + len), and whether a '/' follows. */
struct level {
	const uint8_t *p;
	size_t len;
	bool more;
};

static void
level_first(struct mqtt_bytes s, struct level *l, const uint8_t **end)
{
	const uint8_t *slash = memchr(s.p, '/', s.len);

	*end = s.p + s.len;
	l->p = s.p;
	l->len = slash ? (size_t)(slash - s.p) : s.len;
	l->more = slash != NULL;
}

static void
level_next(struct level *l, const uint8_t *end)
{
	const uint8_t *p = l->p + l->len + 1;
	const uint8_t *slash = memchr(p, '/', (size_t)(end - p));

	l->p = p;
	l->len = slash ? (size_t)(slash - p) : (size_t)(end - p);
	l->more = slash != NULL;
}

static bool
level_is(const struct level *l, char c)
{
	return l->len == 1 && l->p[0] == c;
}

bool
mqtt_topic_matches(struct mqtt_bytes f, struct mqtt_bytes t)
{
	struct level fl, tl;
	const uint8_t *fend, *tend;

	if (f.len == 0 || t.len == 0)
		return false;
	/* [MQTT-4.7.2-1] wildcards at the start never match '$' topics */
	if (t.p[0] == '$' && (f.p[0] == '+' || f.p[0] == '#'))
		return false;
	level_first(f, &fl, &fend);
	level_first(t, &tl, &tend);
	for (;;) {
		if (level_is(&fl, '#'))
			return true;
		if (!level_is(&fl, '+') &&
		    (fl.len != tl.len || memcmp(fl.p, tl.p, fl.len) != 0))
			return false;
		if (!fl.more)
			return !tl.more;
		level_next(&fl, fend);
		if (!tl.more) {
			/* "a/#" also matches its parent "a" */
			return level_is(&fl, '#') && !fl.more;
		}
		level_next(&tl, tend);
	}
}
