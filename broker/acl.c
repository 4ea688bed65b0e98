/*
 * Topic permissions: the rules of [auth] acl_file, checked on PUBLISH
 * (and a CONNECT's will) and on each SUBSCRIBE entry.
 */
#include "broker/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/lines.h"

#define ACL_LINE_MAX 4096

struct acl_rule {
	char *who;                /* user name; NULL: every client */
	unsigned access;          /* enum acl_access bits */
	struct mqtt_bytes filter; /* owned */
};

void
acl_fini(struct acl *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		free(a->rules[i].who);
		free((void *)a->rules[i].filter.p);
	}
	free(a->rules);
	memset(a, 0, sizeof(*a));
}

static int
acl_add(struct acl *a, const char *who, unsigned access, const char *filter)
{
	struct acl_rule *r;
	size_t len = strlen(filter);

	r = realloc(a->rules, (a->n + 1) * sizeof(*r));
	if (!r)
		return ERR_NOMEM;
	a->rules = r;
	r = &a->rules[a->n];
	r->who = strcmp(who, "*") == 0 ? NULL : strdup(who);
	r->access = access;
	r->filter.p = (const uint8_t *)strdup(filter);
	r->filter.len = len;
	if ((strcmp(who, "*") != 0 && !r->who) || !r->filter.p) {
		free(r->who);
		free((void *)r->filter.p);
		return ERR_NOMEM;
	}
	a->n++;
	return 0;
}

struct acl_file {
	struct acl *a;
	const char *path;
	char *err;
	size_t errlen;
};

/* One rule: WHO ACCESS FILTER, split in place. */
static int
acl_line(void *arg, char *line, unsigned lineno)
{
	static const char ws[] = " \t";
	struct acl_file *x = arg;
	char *who, *acc, *filter, *rest;
	unsigned access;
	int rc;

	line += strspn(line, ws);
	if (*line == '\0' || *line == '#')
		return 0;
	who = strtok_r(line, ws, &rest);
	acc = who ? strtok_r(NULL, ws, &rest) : NULL;
	filter = acc ? strtok_r(NULL, ws, &rest) : NULL;
	if (!filter || strtok_r(NULL, ws, &rest)) {
		snprintf(x->err, x->errlen,
		         "%s:%u: expected: user|* pub|sub|pubsub filter",
		         x->path, lineno);
		return ERR_MALFORMED;
	}
	if (strcmp(acc, "pub") == 0)
		access = ACL_PUB;
	else if (strcmp(acc, "sub") == 0)
		access = ACL_SUB;
	else if (strcmp(acc, "pubsub") == 0)
		access = ACL_PUB | ACL_SUB;
	else {
		snprintf(x->err, x->errlen,
		         "%s:%u: access \"%s\" is not pub, sub or pubsub",
		         x->path, lineno, acc);
		return ERR_MALFORMED;
	}
	if (!mqtt_topic_filter_is_valid((struct mqtt_bytes){
	            (const uint8_t *)filter, strlen(filter) })) {
		snprintf(x->err, x->errlen,
		         "%s:%u: \"%s\" is not a topic filter", x->path, lineno,
		         filter);
		return ERR_MALFORMED;
	}
	rc = acl_add(x->a, who, access, filter);
	if (rc)
		snprintf(x->err, x->errlen, "%s:%u: out of memory", x->path,
		         lineno);
	return rc;
}

int
acl_load(struct acl *a, const char *path, char *err, size_t errlen)
{
	struct acl_file x = { a, path, err, errlen };
	int rc;

	memset(a, 0, sizeof(*a));
	if (!path || !*path)
		return 0;
	a->enabled = true;
	rc = lines_each(path, ACL_LINE_MAX, acl_line, &x, err, errlen);
	if (rc)
		acl_fini(a);
	return rc;
}

/* The level of @p s starting at *at, advancing *at past it and its '/';
 * *more is false after the last level. */
static struct mqtt_bytes
acl_level(struct mqtt_bytes s, size_t *at, bool *more)
{
	const uint8_t *p = s.p + *at, *slash;
	size_t left = s.len - *at;
	struct mqtt_bytes l;

	slash = memchr(p, '/', left);
	l.p = p;
	l.len = slash ? (size_t)(slash - p) : left;
	*more = slash != NULL;
	*at += l.len + (slash ? 1 : 0);
	return l;
}

static bool
acl_is(struct mqtt_bytes l, char c)
{
	return l.len == 1 && l.p[0] == (uint8_t)c;
}

bool
acl_filter_covers(struct mqtt_bytes rule, struct mqtt_bytes f)
{
	size_t ra = 0, fa = 0;
	bool rmore = true, fmore = true;
	struct mqtt_bytes rl, fl;

	/* like topic matching, a '+' or '#' at the first level does not
	 * reach topics starting with '$': neither does it cover them */
	if (f.len > 0 && f.p[0] == '$' && rule.len > 0 &&
	    (rule.p[0] == '+' || rule.p[0] == '#'))
		return false;
	for (;;) {
		rl = acl_level(rule, &ra, &rmore);
		if (acl_is(rl, '#'))
			return true; /* everything from here on */
		fl = acl_level(f, &fa, &fmore);
		if (acl_is(fl, '#'))
			/* the filter reaches deeper than the rule: only a
			 * rule '#' covers that ("a/#" also matches "a": so
			 * must the rule) */
			return false;
		if (acl_is(rl, '+')) {
			/* any one level: a literal or '+' */
		} else if (acl_is(fl, '+') || rl.len != fl.len ||
		           memcmp(rl.p, fl.p, rl.len) != 0) {
			return false;
		}
		if (!fmore) {
			/* the filter ends: so must the rule, or go on with
			 * "/#" alone (which also matches the parent) */
			if (!rmore)
				return true;
			rl = acl_level(rule, &ra, &rmore);
			return !rmore && acl_is(rl, '#');
		}
		if (!rmore)
			return false;
	}
}

static bool
acl_rule_applies(const struct acl_rule *r, const char *user, unsigned access)
{
	return (r->access & access) &&
	       (!r->who || (user && strcmp(r->who, user) == 0));
}

/* Does a rule for @p user with @p access allow @p s: a topic (ACL_PUB,
 * matched by the rule's filter) or a filter (ACL_SUB, covered by it)? */
static bool
acl_allows(const struct acl *a, const char *user, unsigned access,
           struct mqtt_bytes s)
{
	const struct acl_rule *r;
	size_t i;

	if (!a->enabled)
		return true;
	for (i = 0; i < a->n; i++) {
		r = &a->rules[i];
		if (!acl_rule_applies(r, user, access))
			continue;
		if (access == ACL_PUB ? mqtt_topic_matches(r->filter, s)
		                      : acl_filter_covers(r->filter, s))
			return true;
	}
	return false;
}

bool
acl_may_publish(const struct acl *a, const char *user, struct mqtt_bytes topic)
{
	return acl_allows(a, user, ACL_PUB, topic);
}

bool
acl_may_subscribe(const struct acl *a, const char *user,
                  struct mqtt_bytes filter)
{
	return acl_allows(a, user, ACL_SUB, filter);
}
