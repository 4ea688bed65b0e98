/*
 * Topic permissions ([auth] acl_file): which user may publish to which
 * topics and subscribe to which filters. Without a file every client may do
 * both; with one, only what a rule allows.
 */
#ifndef BROKER_ACL_H
#define BROKER_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

enum acl_access {
	ACL_PUB = 1, /* PUBLISH to topics the filter matches (wills too) */
	ACL_SUB = 2, /* SUBSCRIBE to filters within the filter */
};

struct acl_rule;

struct acl {
	struct acl_rule *rules;
	size_t n;
	bool enabled; /* a file was given: what no rule allows is denied */
};

/**
 * Loads rules from @p path, one per line: WHO ACCESS FILTER, where WHO is a
 * user name or "*" (every client, those without a user name too), ACCESS
 * is pub, sub or pubsub, and FILTER an MQTT topic filter. Blank lines and
 * lines starting with '#' are skipped. No path: permissions off.
 * @param[out] err one line naming the file and line on failure
 * @return 0, ERR_IO, ERR_MALFORMED or ERR_NOMEM
 */
int acl_load(struct acl *a, const char *path, char *err, size_t errlen);
void acl_fini(struct acl *a);

/** May the client with user name @p user (NULL: none) publish to
 * @p topic? */
bool acl_may_publish(const struct acl *a, const char *user,
                     struct mqtt_bytes topic);

/** May it subscribe to @p filter (a shared subscription's filter without
 * its "$share/{name}/")? Only when every topic the filter matches is one a
 * rule's filter matches. */
bool acl_may_subscribe(const struct acl *a, const char *user,
                       struct mqtt_bytes filter);

/** Does rule filter @p rule match every topic that filter @p f matches? */
bool acl_filter_covers(struct mqtt_bytes rule, struct mqtt_bytes f);

#endif
