/*
 * Unit tests of broker/auth.c: the password file (errors with file:line,
 * comments, ':' in passwords), plain password checks, and the server side
 * of SCRAM-SHA-256 driven by a client computed here with OpenSSL (RFC 5802,
 * RFC 7677), including malformed client-first and client-final messages.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "broker/auth.h"
#include "proto/err.h"

#define ITERATIONS 4096
#define SALT_LEN   16
#define SNONCE_LEN 24                         /* 18 random bytes in base64 */
#define CNONCE     "fyko+d2lbbFgONRv9qkxdawL" /* RFC 7677 client nonce */
#define MAX_FILES  8

/* The fixture's temporary directory and the files written into it. */
static char tmpdir[] = "/tmp/mqd-auth-XXXXXX";
static char files[MAX_FILES][64];
static int nfiles;

/* One auth_load: its table, result, file and error line. */
struct run {
	struct auth a;
	int rc;
	char path[64];
	char err[256];
};

/* One SCRAM client: what it sent and what it expects back. */
struct client {
	char first_bare[128]; /* "n=USER,r=CNONCE" */
	char nonce[128];      /* client nonce + server nonce */
	uint8_t salt[SALT_LEN];
	char server_first[128]; /* "r=NONCE,s=SALT,i=4096" */
	char final[256];        /* "c=biws,r=NONCE,p=PROOF" */
	char server_final[128]; /* "v=SERVERSIGNATURE" */
	uint8_t proof[SHA256_DIGEST_LENGTH];
};

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/mqd-auth-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	nfiles = 0;
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nfiles; i++)
		unlink(files[i]);
	nfiles = 0;
	rmdir(tmpdir);
}

static struct mqtt_bytes
bytes(const char *s)
{
	return (struct mqtt_bytes){ (const uint8_t *)s, strlen(s) };
}

/* Writes @p text to a new file in the fixture's directory. */
static void
file_write(char *path, size_t len, const char *text)
{
	FILE *f;

	ck_assert_int_lt(nfiles, MAX_FILES);
	snprintf(path, len, "%s/users%d", tmpdir, nfiles);
	strcpy(files[nfiles++], path);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads a password file holding @p text (anonymous clients refused). */
static int
load(struct run *r, const char *text)
{
	memset(r, 0, sizeof(*r));
	file_write(r->path, sizeof(r->path), text);
	r->rc = auth_load(&r->a, r->path, false, r->err, sizeof(r->err));
	return r->rc;
}

/* Asserts that @p text fails to load with @p rc and "PATH:LINE: why". */
static void
load_fails(const char *text, int rc, unsigned line, const char *why)
{
	char expect[512];
	struct run r;

	ck_assert_int_eq(load(&r, text), rc);
	snprintf(expect, sizeof(expect), "%s:%u: %s", r.path, line, why);
	ck_assert_str_eq(r.err, expect);
	ck_assert_ptr_null(r.a.users);
	ck_assert_uint_eq(r.a.n, 0);
}

static int
check(const struct auth *a, const char *user, const char *password)
{
	return auth_check_password(a, bytes(user), bytes(password));
}

static void
b64(const uint8_t *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* Decodes base64 @p s into @p out. @return bytes or -1 */
static int
unb64(const char *s, size_t len, uint8_t *out)
{
	int n;

	if (len == 0 || len % 4)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0)
		return -1;
	return n - (s[len - 1] == '=') - (s[len - 2] == '=');
}

static void
hmac(const uint8_t *key, size_t klen, const char *data,
     uint8_t out[SHA256_DIGEST_LENGTH])
{
	unsigned int len = 0;

	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)klen,
	                           (const unsigned char *)data, strlen(data),
	                           out, &len));
	ck_assert_uint_eq(len, SHA256_DIGEST_LENGTH);
}

/* Checks the server-first-message "r=NONCE,s=SALT,i=4096" and keeps its
 * nonce and salt. */
static void
client_parse_first(struct client *c, const char *cnonce,
                   const char *server_first)
{
	uint8_t salt[3 * SALT_LEN]; /* EVP_DecodeBlock writes the padding */
	const char *s, *i;
	size_t nlen;

	ck_assert_msg(strncmp(server_first, "r=", 2) == 0, "%s", server_first);
	s = strstr(server_first, ",s=");
	i = strstr(server_first, ",i=");
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(i);
	ck_assert(s < i);
	ck_assert_str_eq(i, ",i=4096");
	nlen = (size_t)(s - server_first) - 2;
	ck_assert_uint_eq(nlen, strlen(cnonce) + SNONCE_LEN);
	ck_assert_uint_lt(nlen, sizeof(c->nonce));
	memcpy(c->nonce, server_first + 2, nlen);
	c->nonce[nlen] = '\0';
	ck_assert(strncmp(c->nonce, cnonce, strlen(cnonce)) == 0);
	ck_assert_uint_eq(strcspn(c->nonce, ","), nlen);
	ck_assert_uint_le((size_t)(i - s) - 3, 4 * ((sizeof(salt) + 2) / 3));
	ck_assert_int_eq(unb64(s + 3, (size_t)(i - s) - 3, salt), SALT_LEN);
	memcpy(c->salt, salt, SALT_LEN);
}

/* Computes the client-final-message for @p password over the
 * client-final-without-proof @p without (RFC 5802 section 3) and the
 * server-final-message the server must answer. */
static void
client_prove(struct client *c, const char *password, const char *server_first,
             const char *without)
{
	uint8_t salted[SHA256_DIGEST_LENGTH], ckey[SHA256_DIGEST_LENGTH];
	uint8_t stored[SHA256_DIGEST_LENGTH], sig[SHA256_DIGEST_LENGTH];
	uint8_t skey[SHA256_DIGEST_LENGTH];
	char am[512], out[64];
	size_t i;

	ck_assert_int_eq(PKCS5_PBKDF2_HMAC(password, (int)strlen(password),
	                                   c->salt, SALT_LEN, ITERATIONS,
	                                   EVP_sha256(), sizeof(salted),
	                                   salted),
	                 1);
	hmac(salted, sizeof(salted), "Client Key", ckey);
	SHA256(ckey, sizeof(ckey), stored);
	snprintf(am, sizeof(am), "%s,%s,%s", c->first_bare, server_first,
	         without);
	hmac(stored, sizeof(stored), am, sig);
	for (i = 0; i < sizeof(c->proof); i++)
		c->proof[i] = ckey[i] ^ sig[i];
	b64(c->proof, sizeof(c->proof), out);
	snprintf(c->final, sizeof(c->final), "%s,p=%s", without, out);
	hmac(salted, sizeof(salted), "Server Key", skey);
	hmac(skey, sizeof(skey), am, sig);
	b64(sig, sizeof(sig), out);
	snprintf(c->server_final, sizeof(c->server_final), "v=%s", out);
}

/* Sends "n,,n=USER,r=CNONCE"; on success computes the client-final for
 * @p password with the nonce the server chose. */
static int
client_start(struct client *c, const struct auth *a, const char *user,
             const char *password, struct auth_scram **st)
{
	char first[160], without[160], *server_first = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(c->first_bare, sizeof(c->first_bare), "n=%s,r=%s", user,
	         CNONCE);
	snprintf(first, sizeof(first), "n,,%s", c->first_bare);
	rc = auth_scram_start(a, bytes(first), st, &server_first);
	if (rc) {
		ck_assert_ptr_null(*st);
		ck_assert_ptr_null(server_first);
		return rc;
	}
	ck_assert_ptr_nonnull(*st);
	ck_assert_ptr_nonnull(server_first);
	ck_assert_uint_lt(strlen(server_first), sizeof(c->server_first));
	strcpy(c->server_first, server_first);
	client_parse_first(c, CNONCE, server_first);
	snprintf(without, sizeof(without), "c=biws,r=%s", c->nonce);
	client_prove(c, password, server_first, without);
	return 0;
}

/* Sends @p final; on failure checks that nothing came back. */
static int
finish(struct auth_scram *st, struct mqtt_bytes final, char **server_final,
       const char **user)
{
	int rc;

	*server_final = NULL;
	*user = NULL;
	rc = auth_scram_finish(st, final, server_final, user);
	if (rc) {
		ck_assert_ptr_null(*server_final);
		ck_assert_ptr_null(*user);
	}
	return rc;
}

/* A table with alice (password "secret") and bob ("pa:ss:word"). */
static void
load_users(struct run *r)
{
	ck_assert_int_eq(load(r, "alice:secret\nbob:pa:ss:word\n"), 0);
	ck_assert_uint_eq(r->a.n, 2);
}

START_TEST(test_load_no_path)
{
	struct auth a;
	char err[64] = "";

	memset(&a, 0xff, sizeof(a));
	ck_assert_int_eq(auth_load(&a, NULL, true, err, sizeof(err)), 0);
	ck_assert(!a.enabled);
	ck_assert(a.allow_anonymous);
	ck_assert_uint_eq(a.n, 0);
	ck_assert_ptr_null(a.users);
	ck_assert_str_eq(err, "");
	auth_fini(&a);

	ck_assert_int_eq(auth_load(&a, "", false, err, sizeof(err)), 0);
	ck_assert(!a.enabled);
	ck_assert(!a.allow_anonymous);
	ck_assert_uint_eq(a.n, 0);
	auth_fini(&a);
}
END_TEST

START_TEST(test_load_missing_file)
{
	char path[128], expect[160];
	struct auth a;
	char err[256];

	snprintf(path, sizeof(path), "%s/none", tmpdir);
	ck_assert_int_eq(auth_load(&a, path, false, err, sizeof(err)), ERR_IO);
	snprintf(expect, sizeof(expect), "%s: cannot read: ", path);
	ck_assert_msg(strncmp(err, expect, strlen(expect)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	ck_assert_uint_eq(a.n, 0);
	ck_assert_ptr_null(a.users);
	auth_fini(&a);
}
END_TEST

START_TEST(test_load_directory)
{
	char expect[160];
	struct auth a;
	char err[256] = "";

	/* fopen() succeeds on a directory; the read fails (EISDIR) */
	ck_assert_int_eq(auth_load(&a, tmpdir, false, err, sizeof(err)),
	                 ERR_IO);
	snprintf(expect, sizeof(expect), "%s: cannot read: ", tmpdir);
	ck_assert_msg(strncmp(err, expect, strlen(expect)) == 0, "%s", err);
	ck_assert_uint_eq(a.n, 0);
	ck_assert_ptr_null(a.users);
}
END_TEST

START_TEST(test_load_malformed)
{
	const char *why = "expected user:password";

	load_fails("alice:secret\nbob\n", ERR_MALFORMED, 2, why);
	load_fails("alice:secret\n:nouser\n", ERR_MALFORMED, 2, why);
	load_fails("# users\n\nalice:\n", ERR_MALFORMED, 3, why);
	load_fails(" # not a comment", ERR_MALFORMED, 1, why);
}
END_TEST

START_TEST(test_load_line_too_long)
{
	char text[2100];

	memset(text, 'x', sizeof(text) - 2);
	text[0] = 'u';
	text[1] = ':';
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	load_fails(text, ERR_MALFORMED, 1, "line too long");
}
END_TEST

START_TEST(test_load_duplicate)
{
	load_fails("alice:a\nbob:b\n\nalice:c\n", ERR_EXISTS, 4,
	           "user \"alice\" given twice");
}
END_TEST

START_TEST(test_load_comments_blank_crlf)
{
	struct run r;

	ck_assert_int_eq(load(&r, "# users of the test broker\n"
	                          "\n"
	                          "alice:secret\n"
	                          "#bob:nope\n"
	                          "\r\n"
	                          "carol:pw1\r\n"
	                          "dave:last line, no newline"),
	                 0);
	ck_assert(r.a.enabled);
	ck_assert(!r.a.allow_anonymous);
	ck_assert_uint_eq(r.a.n, 3);
	ck_assert_int_eq(check(&r.a, "alice", "secret"), 0);
	ck_assert_int_eq(check(&r.a, "carol", "pw1"), 0);
	ck_assert_int_eq(check(&r.a, "carol", "pw1\r"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "dave", "last line, no newline"), 0);
	ck_assert_int_eq(check(&r.a, "bob", "nope"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "#bob", "nope"), ERR_NOTFOUND);
	auth_fini(&r.a);
	ck_assert_uint_eq(r.a.n, 0);
	ck_assert_ptr_null(r.a.users);

	ck_assert_int_eq(load(&r, "# nobody\n\n"), 0);
	ck_assert(r.a.enabled);
	ck_assert_uint_eq(r.a.n, 0);
	ck_assert_int_eq(check(&r.a, "alice", "secret"), ERR_NOTFOUND);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_load_password_with_colon)
{
	struct run r;

	load_users(&r);
	ck_assert_int_eq(check(&r.a, "bob", "pa:ss:word"), 0);
	ck_assert_int_eq(check(&r.a, "bob", "pa"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "bob", "ss:word"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "bob:pa", "ss:word"), ERR_NOTFOUND);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_check_password)
{
	struct mqtt_bytes none = { NULL, 0 };
	struct run r;

	load_users(&r);
	ck_assert_int_eq(check(&r.a, "alice", "secret"), 0);
	ck_assert_int_eq(check(&r.a, "alice", "Secret"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alice", "secret "), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alice", "secre"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alice", "pa:ss:word"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alice", ""), ERR_NOTFOUND);
	ck_assert_int_eq(auth_check_password(&r.a, bytes("alice"), none),
	                 ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "mallory", "secret"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alic", "secret"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "alicee", "secret"), ERR_NOTFOUND);
	ck_assert_int_eq(check(&r.a, "", "secret"), ERR_NOTFOUND);
	ck_assert_int_eq(auth_check_password(&r.a, none, bytes("secret")),
	                 ERR_NOTFOUND);
	/* the length is the view's, not up to a NUL */
	ck_assert_int_eq(
	        auth_check_password(
	                &r.a, bytes("alice"),
	                (struct mqtt_bytes){ (const uint8_t *)"secrets", 6 }),
	        0);
	ck_assert_int_eq(
	        auth_check_password(
	                &r.a,
	                (struct mqtt_bytes){ (const uint8_t *)"alice\0", 6 },
	                bytes("secret")),
	        ERR_NOTFOUND);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_scram_exchange)
{
	struct auth_scram *st = NULL;
	char *server_final;
	const char *user;
	struct client c;
	struct run r;

	load_users(&r);
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "secret", &st), 0);
	ck_assert_int_eq(finish(st, bytes(c.final), &server_final, &user), 0);
	ck_assert_ptr_nonnull(server_final);
	ck_assert_str_eq(server_final, c.server_final);
	ck_assert_str_eq(user, "alice");
	free(server_final);
	auth_scram_free(st);

	/* a password with ':' works through SCRAM too */
	ck_assert_int_eq(client_start(&c, &r.a, "bob", "pa:ss:word", &st), 0);
	ck_assert_int_eq(finish(st, bytes(c.final), &server_final, &user), 0);
	ck_assert_str_eq(server_final, c.server_final);
	ck_assert_str_eq(user, "bob");
	free(server_final);
	auth_scram_free(st);
	auth_scram_free(NULL);
	auth_fini(&r.a);
}
END_TEST

/* Each user gets its own random salt, each load a new one, and each
 * exchange a new server nonce. */
START_TEST(test_scram_salt_and_nonce)
{
	struct auth_scram *st1 = NULL, *st2 = NULL;
	struct client c1, c2;
	struct run r1, r2;

	ck_assert_int_eq(load(&r1, "alice:same\nbob:same\n"), 0);
	ck_assert_int_eq(load(&r2, "alice:same\n"), 0);
	ck_assert_int_eq(client_start(&c1, &r1.a, "alice", "same", &st1), 0);
	ck_assert_int_eq(client_start(&c2, &r1.a, "bob", "same", &st2), 0);
	ck_assert_mem_ne(c1.salt, c2.salt, SALT_LEN);
	ck_assert_str_ne(c1.nonce, c2.nonce);
	auth_scram_free(st2);
	ck_assert_int_eq(client_start(&c2, &r1.a, "alice", "same", &st2), 0);
	ck_assert_mem_eq(c1.salt, c2.salt, SALT_LEN);
	ck_assert_str_ne(c1.nonce, c2.nonce);
	auth_scram_free(st2);
	ck_assert_int_eq(client_start(&c2, &r2.a, "alice", "same", &st2), 0);
	ck_assert_mem_ne(c1.salt, c2.salt, SALT_LEN);
	auth_scram_free(st2);
	auth_scram_free(st1);
	auth_fini(&r1.a);
	auth_fini(&r2.a);
}
END_TEST

START_TEST(test_scram_wrong_password)
{
	struct auth_scram *st = NULL;
	char *server_final;
	const char *user;
	struct client c;
	struct run r;

	load_users(&r);
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "Secret", &st), 0);
	ck_assert_int_eq(finish(st, bytes(c.final), &server_final, &user),
	                 ERR_NOTFOUND);
	auth_scram_free(st);
	/* bob's password for alice */
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "pa:ss:word", &st), 0);
	ck_assert_int_eq(finish(st, bytes(c.final), &server_final, &user),
	                 ERR_NOTFOUND);
	auth_scram_free(st);
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "", &st), 0);
	ck_assert_int_eq(finish(st, bytes(c.final), &server_final, &user),
	                 ERR_NOTFOUND);
	auth_scram_free(st);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_scram_unknown_user)
{
	struct auth_scram *st = (struct auth_scram *)&st;
	struct client c;
	struct run r;

	load_users(&r);
	ck_assert_int_eq(client_start(&c, &r.a, "mallory", "secret", &st),
	                 ERR_NOTFOUND);
	ck_assert_int_eq(client_start(&c, &r.a, "alic", "secret", &st),
	                 ERR_NOTFOUND);
	ck_assert_int_eq(client_start(&c, &r.a, "alicee", "secret", &st),
	                 ERR_NOTFOUND);
	auth_fini(&r.a);
	/* authentication off: nobody is known */
	ck_assert_int_eq(auth_load(&r.a, NULL, true, r.err, sizeof(r.err)), 0);
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "secret", &st),
	                 ERR_NOTFOUND);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_scram_bad_client_first)
{
	static const char *const bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"n=alice,r=" CNONCE,               /* no gs2 header */
		",,n=alice,r=" CNONCE,             /* no gs2 flag */
		"y,,n=alice,r=" CNONCE,            /* client supports binding */
		"p=tls-unique,,n=alice,r=" CNONCE, /* channel binding */
		"p=tls-server-end-point,,n=alice,r=" CNONCE,
		"n,a=alice,n=alice,r=" CNONCE, /* authzid */
		"N,,n=alice,r=" CNONCE,
		"n,,n=alice",              /* no nonce */
		"n,,n=alice,r=",           /* empty nonce */
		"n,,n=alice,",             /* empty attribute */
		"n,,r=" CNONCE,            /* no user */
		"n,,n=,r=" CNONCE,         /* empty user */
		"n,,n,r=" CNONCE,          /* user without '=' */
		"n,,n=al=3Dice,r=" CNONCE, /* escaped names: not supported */
		"n,,n=alice=,r=" CNONCE,
	};
	struct auth_scram *st;
	char *server_first;
	size_t i;
	struct run r;

	load_users(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = (struct auth_scram *)&st;
		server_first = (char *)&server_first;
		ck_assert_msg(auth_scram_start(&r.a, bytes(bad[i]), &st,
		                               &server_first) == ERR_PROTOCOL,
		              "accepted \"%s\"", bad[i]);
		ck_assert_ptr_null(st);
		ck_assert_ptr_null(server_first);
	}
	/* a NUL inside the message */
	ck_assert_int_eq(
	        auth_scram_start(
	                &r.a,
	                (struct mqtt_bytes){
	                        (const uint8_t *)"n,,n=alice\0,r=x", 16 },
	                &st, &server_first),
	        ERR_PROTOCOL);
	ck_assert_ptr_null(st);
	/* no authentication data at all (AUTH without the property) */
	ck_assert_int_eq(auth_scram_start(&r.a, (struct mqtt_bytes){ NULL, 0 },
	                                  &st, &server_first),
	                 ERR_PROTOCOL);
	ck_assert_ptr_null(st);
	ck_assert_ptr_null(server_first);
	/* the view's length counts, not a NUL after it */
	ck_assert_int_eq(
	        auth_scram_start(
	                &r.a,
	                (struct mqtt_bytes){ (const uint8_t *)"n,,n=alice,r=x",
	                                     12 },
	                &st, &server_first),
	        ERR_PROTOCOL);
	auth_fini(&r.a);
}
END_TEST

/* Starts an exchange for alice and proves with "secret" over the
 * client-final-without-proof that @p fmt makes from the right nonce. */
static int
final_signed_rc(const struct auth *a, const char *fmt)
{
	struct auth_scram *st = NULL;
	char *server_final, without[256];
	const char *user;
	struct client c;
	int rc;

	ck_assert_int_eq(client_start(&c, a, "alice", "secret", &st), 0);
	snprintf(without, sizeof(without), fmt, c.nonce);
	client_prove(&c, "secret", c.server_first, without);
	rc = finish(st, bytes(c.final), &server_final, &user);
	if (rc == 0) {
		ck_assert_str_eq(server_final, c.server_final);
		free(server_final);
	}
	auth_scram_free(st);
	return rc;
}

START_TEST(test_scram_final_signed_variants)
{
	struct run r;

	load_users(&r);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biws,r=%s"), 0);
	/* each correctly signed, but breaking the rules */
	ck_assert_int_eq(final_signed_rc(&r.a, "c=eSws,r=%s"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biwsx,r=%s"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=,r=%s"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "r=%s"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biws,r=%sx"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biws,r=x%s"), ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biws,r=" CNONCE "%.0s"),
	                 ERR_PROTOCOL);
	ck_assert_int_eq(final_signed_rc(&r.a, "c=biws%.0s"), ERR_PROTOCOL);
	auth_fini(&r.a);
}
END_TEST

START_TEST(test_scram_final_bad)
{
	struct auth_scram *st = NULL;
	char *server_final, msg[512], p64[128];
	uint8_t big[66];
	const char *user;
	struct client c;
	struct run r;
	size_t n;

	load_users(&r);
	ck_assert_int_eq(client_start(&c, &r.a, "alice", "secret", &st), 0);
	/* the nonce changed after the proof was computed */
	strcpy(msg, c.final);
	n = strlen("c=biws,r=") + strlen(c.nonce) - 1;
	msg[n] = msg[n] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	/* proof missing, empty, bad base64 */
	snprintf(msg, sizeof(msg), "c=biws,r=%s", c.nonce);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=", c.nonce);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%.43s!", c.nonce,
	         strstr(c.final, ",p=") + 3);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%.42s", c.nonce,
	         strstr(c.final, ",p=") + 3);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%s,x=1", c.nonce,
	         strstr(c.final, ",p=") + 3);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_PROTOCOL);
	/* proofs of 31, 33, 64, 66 bytes */
	memset(big, 0x5a, sizeof(big));
	memcpy(big, c.proof, sizeof(c.proof));
	for (n = 0; n < 4; n++) {
		static const size_t lens[] = { 31, 33, 64, 66 };
		b64(big, lens[n], p64);
		snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%s", c.nonce, p64);
		ck_assert_msg(finish(st, bytes(msg), &server_final, &user) ==
		                      ERR_PROTOCOL,
		              "proof of %zu bytes", lens[n]);
	}
	/* a NUL inside, nothing at all */
	ck_assert_int_eq(finish(st,
	                        (struct mqtt_bytes){ (const uint8_t *)c.final,
	                                             strlen(c.final) + 1 },
	                        &server_final, &user),
	                 ERR_PROTOCOL);
	ck_assert_int_eq(finish(st, (struct mqtt_bytes){ NULL, 0 },
	                        &server_final, &user),
	                 ERR_PROTOCOL);
	/* the right proof with one bit flipped */
	c.proof[SHA256_DIGEST_LENGTH - 1] ^= 1;
	b64(c.proof, sizeof(c.proof), p64);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%s", c.nonce, p64);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_NOTFOUND);
	/* and all zeros, the client key itself */
	memset(big, 0, sizeof(big));
	b64(big, SHA256_DIGEST_LENGTH, p64);
	snprintf(msg, sizeof(msg), "c=biws,r=%s,p=%s", c.nonce, p64);
	ck_assert_int_eq(finish(st, bytes(msg), &server_final, &user),
	                 ERR_NOTFOUND);
	auth_scram_free(st);
	auth_fini(&r.a);
}
END_TEST

/* A proof recorded from one exchange is no good in another; exchanges
 * under way at the same time do not disturb each other. */
START_TEST(test_scram_replay)
{
	struct auth_scram *st1 = NULL, *st2 = NULL;
	char *server_final, msg[512];
	const char *user;
	struct client c1, c2;
	struct run r;

	load_users(&r);
	ck_assert_int_eq(client_start(&c1, &r.a, "alice", "secret", &st1), 0);
	ck_assert_int_eq(client_start(&c2, &r.a, "alice", "secret", &st2), 0);
	ck_assert_str_ne(c1.nonce, c2.nonce);
	/* the old message as is: another nonce */
	ck_assert_int_eq(finish(st2, bytes(c1.final), &server_final, &user),
	                 ERR_PROTOCOL);
	/* the old proof under the new nonce: it signs another AuthMessage */
	snprintf(msg, sizeof(msg), "c=biws,r=%s%s", c2.nonce,
	         strstr(c1.final, ",p="));
	ck_assert_int_eq(finish(st2, bytes(msg), &server_final, &user),
	                 ERR_NOTFOUND);
	auth_scram_free(st2);
	ck_assert_int_eq(finish(st1, bytes(c1.final), &server_final, &user), 0);
	ck_assert_str_eq(server_final, c1.server_final);
	ck_assert_str_eq(user, "alice");
	free(server_final);
	auth_scram_free(st1);
	auth_fini(&r.a);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *load_tc = tcase_create("load");
	TCase *plain_tc = tcase_create("plain");
	TCase *scram_tc = tcase_create("scram");

	tcase_add_checked_fixture(load_tc, setup, teardown);
	tcase_add_test(load_tc, test_load_no_path);
	tcase_add_test(load_tc, test_load_missing_file);
	tcase_add_test(load_tc, test_load_directory);
	tcase_add_test(load_tc, test_load_malformed);
	tcase_add_test(load_tc, test_load_line_too_long);
	tcase_add_test(load_tc, test_load_duplicate);
	tcase_add_test(load_tc, test_load_comments_blank_crlf);
	tcase_add_test(load_tc, test_load_password_with_colon);
	suite_add_tcase(s, load_tc);

	tcase_add_checked_fixture(plain_tc, setup, teardown);
	tcase_add_test(plain_tc, test_check_password);
	suite_add_tcase(s, plain_tc);

	tcase_add_checked_fixture(scram_tc, setup, teardown);
	tcase_add_test(scram_tc, test_scram_exchange);
	tcase_add_test(scram_tc, test_scram_salt_and_nonce);
	tcase_add_test(scram_tc, test_scram_wrong_password);
	tcase_add_test(scram_tc, test_scram_unknown_user);
	tcase_add_test(scram_tc, test_scram_bad_client_first);
	tcase_add_test(scram_tc, test_scram_final_signed_variants);
	tcase_add_test(scram_tc, test_scram_final_bad);
	tcase_add_test(scram_tc, test_scram_replay);
	suite_add_tcase(s, scram_tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
