/*
 * Client authentication: users from [auth] password_file, plain user name /
 * password checks, and the server side of SCRAM-SHA-256 (MQTT 5 enhanced
 * authentication, method "SCRAM-SHA-256"). Loop thread only.
 */
#ifndef BROKER_AUTH_H
#define BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

#define AUTH_SCRAM_METHOD "SCRAM-SHA-256"

struct auth_user;
struct auth_scram;

struct auth {
	struct auth_user *users; /* salted keys only, never passwords */
	size_t n;
	bool enabled;         /* a password file was given */
	bool allow_anonymous; /* clients without a user name may connect */
};

/**
 * Loads "user:password" lines (blank lines and '#' comments skipped) from
 * @p path; no path: authentication off, everyone may connect.
 * @param[out] err one line naming the file and line on failure
 * @return 0, ERR_IO, ERR_MALFORMED, ERR_EXISTS (a user given twice) or
 *   ERR_NOMEM
 */
int auth_load(struct auth *a, const char *path, bool allow_anonymous, char *err,
              size_t errlen);
void auth_fini(struct auth *a);

/** @return 0 when @p password is right for @p user, else ERR_NOTFOUND
 * (or ERR_NOMEM) */
int auth_check_password(const struct auth *a, struct mqtt_bytes user,
                        struct mqtt_bytes password);

/**
 * SCRAM step 1: takes the client-first-message, answers the
 * server-first-message (*server_first, owned by *out).
 * @return 0; ERR_PROTOCOL (malformed message), ERR_NOTFOUND (unknown
 *   user) or ERR_NOMEM
 */
int auth_scram_start(const struct auth *a, struct mqtt_bytes client_first,
                     struct auth_scram **out, char **server_first);
/**
 * SCRAM step 2: checks the client-final-message's proof.
 * @param[out] server_final "v=..." to send back (caller frees)
 * @param[out] user the authenticated user's name (owned by the table)
 * @return 0; ERR_NOTFOUND (wrong proof), ERR_PROTOCOL or ERR_NOMEM
 */
int auth_scram_finish(struct auth_scram *st, struct mqtt_bytes client_final,
                      char **server_final, const char **user);
void auth_scram_free(struct auth_scram *st);

#endif
