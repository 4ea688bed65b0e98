/*
 * A reference topic matcher for the trie tests: a plain level-by-level
 * implementation of MQTT section 4.7 that the subscription trie and the
 * retained index are cross-checked against on random inputs.
 */
#ifndef TEST_UNIT_BROKER_REF_MATCH_H
#define TEST_UNIT_BROKER_REF_MATCH_H

#include <check.h>
#include <stdbool.h>
#include <string.h>

#define MAXLV 16

/* Splits s at '/', keeping empty levels. @return the number of levels */
static int
split(const char *s, const char *lv[], size_t len[])
{
	const char *q;
	int n = 0;

	for (;;) {
		if (n >= MAXLV)
			ck_abort_msg("too many levels in '%s'", s);
		q = strchr(s, '/');
		lv[n] = s;
		len[n] = q ? (size_t)(q - s) : strlen(s);
		n++;
		if (!q)
			return n;
		s = q + 1;
	}
}

static bool
lv_is(const char *p, size_t n, const char *w)
{
	return n == strlen(w) && memcmp(p, w, n) == 0;
}

/* The reference: MQTT 4.7 matching, written for clarity only. */
static bool
ref_match(const char *filter, const char *topic)
{
	const char *fl[MAXLV], *tl[MAXLV];
	size_t fn[MAXLV], tn[MAXLV];
	int nf = split(filter, fl, fn), nt = split(topic, tl, tn), i;

	/* [MQTT-4.7.2-1] */
	if (topic[0] == '$' &&
	    (lv_is(fl[0], fn[0], "+") || lv_is(fl[0], fn[0], "#")))
		return false;
	for (i = 0; i < nf; i++) {
		/* [MQTT-4.7.1-2] 3.1.1: '#' takes the parent and any levels */
		if (lv_is(fl[i], fn[i], "#"))
			return true;
		if (i >= nt)
			return false;
		/* [MQTT-4.7.1-3] 3.1.1: '+' takes exactly one level */
		if (lv_is(fl[i], fn[i], "+"))
			continue;
		/* [MQTT-4.7.3-4] byte for byte */
		if (fn[i] != tn[i] || memcmp(fl[i], tl[i], fn[i]) != 0)
			return false;
	}
	return nf == nt;
}

#endif
