/*
 * Unit tests of broker/config.c: defaults, the INI file, the MQD_*
 * environment and the flags (in that order of precedence), every error
 * message form, the -t / --help / --version actions, sizes and bounds, and
 * the example deploy/mqd.conf. Most tests pass the environment explicitly
 * (config_load_from), so the runner's own MQD_* variables do not leak in.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"
#include "proto/err.h"

#define EXAMPLE_CONF MQD_SOURCE_ROOT "/deploy/mqd.conf"

/* One load: its result, its error line and what it printed. */
struct run {
	struct config cfg;
	enum config_action action;
	int rc;
	char err[512];
	char out[8192];
};

static int
argc_of(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

/* Loads with @p argv (NULL-terminated, argv[0] included) and @p envp. */
static int
load(struct run *r, char **argv, char **envp)
{
	FILE *out = tmpfile();
	size_t n;

	ck_assert_ptr_nonnull(out);
	memset(r, 0, sizeof(*r));
	r->action = (enum config_action) - 1;
	r->rc = config_load_from(&r->cfg, argc_of(argv), argv, envp, out,
	                         r->err, sizeof(r->err), &r->action);
	rewind(out);
	n = fread(r->out, 1, sizeof(r->out) - 1, out);
	r->out[n] = '\0';
	fclose(out);
	return r->rc;
}

/* Writes @p text to a new temporary file whose name goes to @p path. */
static void
conf_write(char *path, size_t len, const char *text)
{
	int fd;

	ck_assert_uint_gt(len, strlen("/tmp/mqd-test-XXXXXX"));
	strcpy(path, "/tmp/mqd-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
}

/* Loads a file holding @p text, with flags "-c FILE" only. */
static int
load_text(struct run *r, char *path, size_t len, const char *text)
{
	char *argv[] = { "mqd", "-c", path, NULL };
	int rc;

	conf_write(path, len, text);
	rc = load(r, argv, NULL);
	unlink(path);
	return rc;
}

/* Asserts a failed load with rc @p rc and the error line printf(fmt, ...). */
static void expect_err(struct run *r, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
expect_err(struct run *r, int rc, const char *fmt, ...)
{
	struct config zero;
	char want[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(r->rc, rc);
	ck_assert_str_eq(r->err, want);
	ck_assert_ptr_null(strchr(r->err, '\n'));
	/* on failure cfg holds nothing */
	memset(&zero, 0, sizeof(zero));
	ck_assert(memcmp(&r->cfg, &zero, sizeof(zero)) == 0);
}

static void
expect_ok(struct run *r)
{
	ck_assert_msg(r->rc == 0, "rc %d: %s", r->rc, r->err);
	ck_assert_int_eq(r->action, CONFIG_RUN);
}

static void
host_name(char *buf, size_t len)
{
	if (gethostname(buf, len) != 0)
		buf[0] = '\0';
	buf[len - 1] = '\0';
	if (buf[0] == '\0')
		strcpy(buf, "mqd");
}

START_TEST(test_defaults)
{
	char *argv[] = { "mqd", NULL };
	char host[256];
	struct run r;

	load(&r, argv, NULL);
	expect_ok(&r);
	host_name(host, sizeof(host));
	ck_assert_str_eq(r.cfg.node_name, host);
	ck_assert_str_eq(r.cfg.data_dir, "./data");
	ck_assert_int_eq(r.cfg.log_level, LOG_INFO);
	ck_assert_str_eq(r.cfg.mqtt_bind, "");
	ck_assert_uint_eq(r.cfg.mqtt_port, 1883);
	ck_assert_uint_eq(r.cfg.max_packet_size, 1048576);
	ck_assert_uint_eq(r.cfg.max_connections, 10000);
	ck_assert_uint_eq(r.cfg.max_inflight, 32);
	ck_assert_uint_eq(r.cfg.max_queued, 1000);
	ck_assert_uint_eq(r.cfg.connect_timeout_ms, 10000);
	ck_assert_int_eq(r.cfg.durability, CONFIG_DURABILITY_SYNC);
	ck_assert_uint_eq(r.cfg.sync_interval_ms, 1000);
	ck_assert_uint_eq(r.cfg.commit_delay_ms, 10);
	ck_assert_uint_eq(r.cfg.storage_max_size, 1024ULL * 1024 * 1024);
	ck_assert_str_eq(r.cfg.cluster_bind, "0.0.0.0");
	ck_assert_uint_eq(r.cfg.cluster_port, 7883);
	ck_assert_str_eq(r.cfg.cluster_advertise, "");
	ck_assert_str_eq(r.cfg.cluster_seeds, "");
	ck_assert_str_eq(r.cfg.cluster_secret, "");
	ck_assert_str_eq(r.cfg.admin_bind, "127.0.0.1");
	ck_assert_uint_eq(r.cfg.admin_port, 8081);
	ck_assert_str_eq(r.cfg.admin_token, "");
	ck_assert_uint_eq(r.cfg.sys_interval, 10);
	ck_assert_ptr_null(r.cfg.config_path);
	ck_assert(!r.cfg.test_only);
	ck_assert_str_eq(r.out, "");
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_file_sets_every_key)
{
	const char *text = "; a comment\n"
	                   "# another\n"
	                   "\n"
	                   "[node]\n"
	                   "name = n1\n"
	                   "data_dir = /var/lib/mqd\n"
	                   "log_level = debug\n"
	                   "[mqtt]\n"
	                   "bind = ::1\n"
	                   "port = 1884\n"
	                   "max_packet_size = 65536\n"
	                   "max_connections = 50\n"
	                   "  max_inflight = 10\n" /* indented: still a key */
	                   "max_queued = 99\n"
	                   "connect_timeout_ms = 2500 ; inline comment\n"
	                   "[storage]\n"
	                   "durability = relaxed\n"
	                   "sync_interval_ms = 50\n"
	                   "commit_delay_ms = 0\n"
	                   "max_size = 512M\n"
	                   "[cluster]\n"
	                   "bind = 10.0.0.1\n"
	                   "port = 7884\n"
	                   "advertise = node1.example:7884\n"
	                   "seeds = a:7883,b:7883\n"
	                   "secret = \"s3cret\"\n"
	                   "[admin]\n"
	                   "bind=0.0.0.0\n"
	                   "port:8082\n"
	                   "token = t0k\n"
	                   "[sys]\n"
	                   "interval = 0\n";
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), text);
	expect_ok(&r);
	ck_assert_str_eq(r.cfg.node_name, "n1");
	ck_assert_str_eq(r.cfg.data_dir, "/var/lib/mqd");
	ck_assert_int_eq(r.cfg.log_level, LOG_DEBUG);
	ck_assert_str_eq(r.cfg.mqtt_bind, "::1");
	ck_assert_uint_eq(r.cfg.mqtt_port, 1884);
	ck_assert_uint_eq(r.cfg.max_packet_size, 65536);
	ck_assert_uint_eq(r.cfg.max_connections, 50);
	ck_assert_uint_eq(r.cfg.max_inflight, 10);
	ck_assert_uint_eq(r.cfg.max_queued, 99);
	ck_assert_uint_eq(r.cfg.connect_timeout_ms, 2500);
	ck_assert_int_eq(r.cfg.durability, CONFIG_DURABILITY_RELAXED);
	ck_assert_uint_eq(r.cfg.sync_interval_ms, 50);
	ck_assert_uint_eq(r.cfg.commit_delay_ms, 0);
	ck_assert_uint_eq(r.cfg.storage_max_size, 512ULL * 1024 * 1024);
	ck_assert_str_eq(r.cfg.cluster_bind, "10.0.0.1");
	ck_assert_uint_eq(r.cfg.cluster_port, 7884);
	ck_assert_str_eq(r.cfg.cluster_advertise, "node1.example:7884");
	ck_assert_str_eq(r.cfg.cluster_seeds, "a:7883,b:7883");
	ck_assert_str_eq(r.cfg.cluster_secret, "s3cret");
	ck_assert_str_eq(r.cfg.admin_bind, "0.0.0.0");
	ck_assert_uint_eq(r.cfg.admin_port, 8082);
	ck_assert_str_eq(r.cfg.admin_token, "t0k");
	ck_assert_uint_eq(r.cfg.sys_interval, 0);
	ck_assert_str_eq(r.cfg.config_path, path);
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_file_crlf_bom_quotes)
{
	const char *text = "\xef\xbb\xbf[mqtt]\r\n"
	                   "port = 1900\r\n"
	                   "bind = \"\"\r\n"
	                   "[node]\r\n"
	                   "name = \"a b\"\r\n";
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), text);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1900);
	ck_assert_str_eq(r.cfg.mqtt_bind, "");
	ck_assert_str_eq(r.cfg.node_name, "a b");
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_empty_file_gives_defaults)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), "");
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1883);
	config_fini(&r.cfg);
}
END_TEST

/* defaults < file < environment < flags, whatever the flag positions */
START_TEST(test_precedence)
{
	char path[64];
	char *env[] = { "MQD_MQTT_PORT=2000", "MQD_NODE_NAME=env-name",
		        "PATH=/bin", NULL };
	char *env_none[] = { NULL };
	char *flags[] = { "mqd", "-p", "3000", "-c", path, NULL };
	char *file_only[] = { "mqd", "--config", path, NULL };
	char *flag_first[] = { "mqd", "--port=3001", "--config=", NULL };
	char cfgopt[128];
	struct run r;

	conf_write(path, sizeof(path),
	           "[mqtt]\nport = 1000\nmax_queued = 7\n"
	           "[node]\nname = file-name\n");

	load(&r, file_only, env_none);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1000);
	ck_assert_str_eq(r.cfg.node_name, "file-name");
	config_fini(&r.cfg);

	load(&r, file_only, env);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 2000);
	ck_assert_str_eq(r.cfg.node_name, "env-name");
	ck_assert_uint_eq(r.cfg.max_queued, 7);
	config_fini(&r.cfg);

	load(&r, flags, env);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 3000);
	ck_assert_str_eq(r.cfg.node_name, "env-name");
	ck_assert_uint_eq(r.cfg.max_queued, 7);
	config_fini(&r.cfg);

	snprintf(cfgopt, sizeof(cfgopt), "--config=%s", path);
	flag_first[2] = cfgopt;
	load(&r, flag_first, env);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 3001);
	config_fini(&r.cfg);
	unlink(path);
}
END_TEST

START_TEST(test_env_every_section)
{
	char *argv[] = { "mqd", NULL };
	char *env[] = { "MQD_NODE_DATA_DIR=/d",
		        "MQD_NODE_LOG_LEVEL=warn",
		        "MQD_MQTT_BIND=127.0.0.2",
		        "MQD_MQTT_MAX_INFLIGHT=5",
		        "MQD_STORAGE_DURABILITY=none",
		        "MQD_STORAGE_MAX_SIZE=2g",
		        "MQD_CLUSTER_SEEDS=x:1,y:2",
		        "MQD_CLUSTER_PORT=17883",
		        "MQD_ADMIN_TOKEN=tok",
		        "MQD_SYS_INTERVAL=60",
		        NULL };
	struct run r;

	load(&r, argv, env);
	expect_ok(&r);
	ck_assert_str_eq(r.cfg.data_dir, "/d");
	ck_assert_int_eq(r.cfg.log_level, LOG_WARN);
	ck_assert_str_eq(r.cfg.mqtt_bind, "127.0.0.2");
	ck_assert_uint_eq(r.cfg.max_inflight, 5);
	ck_assert_int_eq(r.cfg.durability, CONFIG_DURABILITY_NONE);
	ck_assert_uint_eq(r.cfg.storage_max_size, 2ULL << 30);
	ck_assert_str_eq(r.cfg.cluster_seeds, "x:1,y:2");
	ck_assert_uint_eq(r.cfg.cluster_port, 17883);
	ck_assert_str_eq(r.cfg.admin_token, "tok");
	ck_assert_uint_eq(r.cfg.sys_interval, 60);
	config_fini(&r.cfg);
}
END_TEST

/* MQD_ variables of unknown sections belong to someone else */
START_TEST(test_env_ignores_other_variables)
{
	char *argv[] = { "mqd", NULL };
	char *env[] = { "MQD_FOO_BAR=1", "MQD_=x",      "MQD_MQTT=1",
		        "MQD_SOURCE=2",  "MQTT_PORT=5", "mqd_mqtt_port=9",
		        "MQD_NODE",      NULL };
	struct run r;

	load(&r, argv, env);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1883);
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_flags_all)
{
	char *argv[] = { "mqd",
		         "--port",
		         "1999",
		         "--bind",
		         "::",
		         "--data-dir",
		         "/srv/d",
		         "--node-name=nn",
		         "--log-level",
		         "error",
		         "--cluster-port",
		         "7999",
		         "--seeds",
		         "a:1,b:2",
		         NULL };
	char *argv2[] = { "mqd", "-p1234", "-p", "1235", NULL };
	struct run r;

	load(&r, argv, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1999);
	ck_assert_str_eq(r.cfg.mqtt_bind, "::");
	ck_assert_str_eq(r.cfg.data_dir, "/srv/d");
	ck_assert_str_eq(r.cfg.node_name, "nn");
	ck_assert_int_eq(r.cfg.log_level, LOG_ERROR);
	ck_assert_uint_eq(r.cfg.cluster_port, 7999);
	ck_assert_str_eq(r.cfg.cluster_seeds, "a:1,b:2");
	config_fini(&r.cfg);

	load(&r, argv2, NULL); /* the last one wins */
	expect_ok(&r);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1235);
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_real_environment)
{
	char *argv[] = { "mqd", NULL };
	extern char **environ;
	char names[64][128];
	enum config_action action;
	struct config cfg;
	char err[256];
	size_t i, n = 0;
	char **e;

	/* clear the runner's own MQD_ variables first */
	for (e = environ; *e && n < 64; e++) {
		size_t len = strcspn(*e, "=");

		if (strncmp(*e, "MQD_", 4) == 0 && len < sizeof(names[0])) {
			memcpy(names[n], *e, len);
			names[n++][len] = '\0';
		}
	}
	for (i = 0; i < n; i++)
		unsetenv(names[i]);
	ck_assert_int_eq(setenv("MQD_MQTT_PORT", "1999", 1), 0);
	ck_assert_int_eq(config_load(&cfg, 1, argv, err, sizeof(err), &action),
	                 0);
	ck_assert_uint_eq(cfg.mqtt_port, 1999);
	config_fini(&cfg);

	ck_assert_int_eq(setenv("MQD_MQTT_PORT", "x", 1), 0);
	ck_assert_int_eq(config_load(&cfg, 1, argv, err, sizeof(err), &action),
	                 ERR_MALFORMED);
	ck_assert_str_eq(
	        err, "environment MQD_MQTT_PORT: value \"x\" is not a number");
	unsetenv("MQD_MQTT_PORT");
}
END_TEST

START_TEST(test_err_file_range)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path),
	          "# comment\n[node]\nname = a\n\n[mqtt]\nbind = \n"
	          "max_queued = 5\n\n\n\n\nport = 70000\n");
	expect_err(&r, ERR_MALFORMED,
	           "%s:12: [mqtt] port: value \"70000\" out of range 1..65535",
	           path);
}
END_TEST

START_TEST(test_err_file_unknown_key)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), "\n[mqtt]\nprot = 1883\n");
	expect_err(&r, ERR_MALFORMED, "%s:3: unknown key [mqtt] prot", path);
}
END_TEST

START_TEST(test_err_file_unknown_section)
{
	char path[64];
	struct run r;

	/* reported at its header, even with no keys under it */
	load_text(&r, path, sizeof(path),
	          "[mqtt]\nport = 1\n\n\n\n\n[foo]\n[node]\nname = x\n");
	expect_err(&r, ERR_MALFORMED, "%s:7: unknown section [foo]", path);

	load_text(&r, path, sizeof(path), "[foo]\nbar = 1\n");
	expect_err(&r, ERR_MALFORMED, "%s:1: unknown section [foo]", path);
}
END_TEST

START_TEST(test_err_file_first_error_wins)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path),
	          "[mqtt]\nport = 0\nprot = 1\n[bar]\n");
	expect_err(&r, ERR_MALFORMED,
	           "%s:2: [mqtt] port: value \"0\" out of range 1..65535",
	           path);

	/* a syntax error before a bad value wins too */
	load_text(&r, path, sizeof(path), "[mqtt]\nnonsense\nport = 0\n");
	expect_err(&r, ERR_MALFORMED,
	           "%s:2: syntax error (expected [section] or key = value)",
	           path);
}
END_TEST

START_TEST(test_err_file_syntax)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), "[mqtt]\nport = 1\n[node\n");
	expect_err(&r, ERR_MALFORMED,
	           "%s:3: syntax error (expected [section] or key = value)",
	           path);
}
END_TEST

START_TEST(test_err_file_outside_section)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path), "port = 1883\n");
	expect_err(&r, ERR_MALFORMED, "%s:1: key port outside any section",
	           path);
}
END_TEST

START_TEST(test_err_file_duplicate)
{
	char path[64];
	struct run r;

	load_text(&r, path, sizeof(path),
	          "[mqtt]\nport = 1\n[node]\n[mqtt]\nport = 2\n");
	expect_err(&r, ERR_MALFORMED,
	           "%s:5: duplicate key [mqtt] port (first on line 2)", path);
}
END_TEST

START_TEST(test_err_file_long_line)
{
	char text[1024], path[64];
	struct run r;

	snprintf(text, sizeof(text), "[cluster]\nseeds = %0300d\n", 0);
	load_text(&r, path, sizeof(path), text);
	ck_assert_int_eq(r.rc, ERR_MALFORMED);
	ck_assert_msg(strncmp(r.err, path, strlen(path)) == 0, "%s", r.err);
	ck_assert_ptr_nonnull(strstr(r.err, ":2: line longer than "));

	/* a line that just fits */
	snprintf(text, sizeof(text), "[cluster]\nseeds = %0150d\n", 0);
	load_text(&r, path, sizeof(path), text);
	expect_ok(&r);
	ck_assert_uint_eq(strlen(r.cfg.cluster_seeds), 150);
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_err_file_missing)
{
	char *argv[] = { "mqd", "-c", "/nonexistent/mqd.conf", NULL };
	struct run r;

	load(&r, argv, NULL);
	expect_err(&r, ERR_IO,
	           "/nonexistent/mqd.conf: cannot read: No such file or "
	           "directory");
}
END_TEST

START_TEST(test_err_file_is_directory)
{
	char *argv[] = { "mqd", "-c", "/tmp", NULL };
	struct run r;

	load(&r, argv, NULL);
	expect_err(&r, ERR_IO, "/tmp: cannot read: Is a directory");
}
END_TEST

START_TEST(test_err_env)
{
	char *argv[] = { "mqd", NULL };
	char *bad_num[] = { "MQD_MQTT_PORT=x", NULL };
	char *bad_key[] = { "MQD_MQTT_PROT=1883", NULL };
	char *bad_range[] = { "MQD_MQTT_MAX_INFLIGHT=0", NULL };
	char *bad_enum[] = { "MQD_STORAGE_DURABILITY=fast", NULL };
	struct run r;

	load(&r, argv, bad_num);
	expect_err(&r, ERR_MALFORMED,
	           "environment MQD_MQTT_PORT: value \"x\" is not a number");
	load(&r, argv, bad_key);
	expect_err(&r, ERR_MALFORMED,
	           "environment MQD_MQTT_PROT: unknown key [mqtt] prot");
	load(&r, argv, bad_range);
	expect_err(&r, ERR_MALFORMED,
	           "environment MQD_MQTT_MAX_INFLIGHT: value \"0\" out of "
	           "range 1..65535");
	load(&r, argv, bad_enum);
	expect_err(&r, ERR_MALFORMED,
	           "environment MQD_STORAGE_DURABILITY: value \"fast\" is not "
	           "one of sync|relaxed|none");
}
END_TEST

START_TEST(test_err_flags)
{
	char *range[] = { "mqd", "--port", "0", NULL };
	char *range_short[] = { "mqd", "-p", "65536", NULL };
	char *unknown[] = { "mqd", "--frob", NULL };
	char *unknown_eq[] = { "mqd", "--frob=1", NULL };
	char *unknown_short[] = { "mqd", "-x", NULL };
	char *missing[] = { "mqd", "--port", NULL };
	char *missing_short[] = { "mqd", "-c", NULL };
	char *novalue[] = { "mqd", "--help=yes", NULL };
	char *positional[] = { "mqd", "extra", NULL };
	char *dashdash[] = { "mqd", "--", "extra", NULL };
	char *level[] = { "mqd", "--log-level", "loud", NULL };
	char *empty[] = { "mqd", "--node-name", "", NULL };
	struct run r;

	load(&r, range, NULL);
	expect_err(&r, ERR_MALFORMED,
	           "--port: value \"0\" out of range 1..65535");
	load(&r, range_short, NULL);
	expect_err(&r, ERR_MALFORMED,
	           "-p: value \"65536\" out of range 1..65535");
	load(&r, unknown, NULL);
	expect_err(&r, ERR_MALFORMED, "unknown option --frob");
	load(&r, unknown_eq, NULL);
	expect_err(&r, ERR_MALFORMED, "unknown option --frob");
	load(&r, unknown_short, NULL);
	expect_err(&r, ERR_MALFORMED, "unknown option -x");
	load(&r, missing, NULL);
	expect_err(&r, ERR_MALFORMED, "option --port needs a value");
	load(&r, missing_short, NULL);
	expect_err(&r, ERR_MALFORMED, "option -c needs a value");
	load(&r, novalue, NULL);
	expect_err(&r, ERR_MALFORMED, "option --help takes no value");
	load(&r, positional, NULL);
	expect_err(&r, ERR_MALFORMED, "unexpected argument extra");
	load(&r, dashdash, NULL);
	expect_err(&r, ERR_MALFORMED, "unexpected argument extra");
	load(&r, level, NULL);
	expect_err(&r, ERR_MALFORMED,
	           "--log-level: value \"loud\" is not one of "
	           "error|warn|info|debug");
	load(&r, empty, NULL);
	expect_err(&r, ERR_MALFORMED, "--node-name: value must not be empty");
}
END_TEST

START_TEST(test_err_string_too_long)
{
	char *argv[] = { "mqd", "--node-name", NULL, NULL };
	char name[300];
	struct run r;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	argv[2] = name;
	load(&r, argv, NULL);
	expect_err(&r, ERR_MALFORMED,
	           "--node-name: value too long (299 bytes, at most 255)");
}
END_TEST

START_TEST(test_action_test_config)
{
	char path[64];
	char *with_file[] = { "mqd", "-t", "-c", path, NULL };
	char *alone[] = { "mqd", "--test-config", NULL };
	char *bad[] = { "mqd", "-tp", "0", NULL };
	char want[128];
	struct run r;

	conf_write(path, sizeof(path), "[mqtt]\nport = 1884\n");
	load(&r, with_file, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert(r.cfg.test_only);
	ck_assert_uint_eq(r.cfg.mqtt_port, 1884);
	snprintf(want, sizeof(want), "configuration ok: %s\n", path);
	ck_assert_str_eq(r.out, want);
	config_fini(&r.cfg);
	unlink(path);

	load(&r, alone, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert_str_eq(r.out, "configuration ok\n");
	config_fini(&r.cfg);

	/* a bad configuration fails -t like any start, printing nothing */
	load(&r, bad, NULL);
	expect_err(&r, ERR_MALFORMED, "-p: value \"0\" out of range 1..65535");
	ck_assert_str_eq(r.out, "");
}
END_TEST

START_TEST(test_action_help)
{
	char *lng[] = { "mqd", "--help", "-c", "/nonexistent", NULL };
	char *shrt[] = { "mqd", "-h", NULL };
	const char *section, *key;
	char want[128];
	struct run r;
	size_t i;

	/* help reads no file */
	load(&r, lng, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: mqd [options]\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "-p, --port N"));
	ck_assert_ptr_nonnull(strstr(r.out, "--data-dir DIR"));
	ck_assert_ptr_nonnull(strstr(r.out, "-t, --test-config"));
	ck_assert_ptr_nonnull(strstr(r.out, "-V, --version"));
	ck_assert_ptr_nonnull(strstr(r.out, "MQD_<SECTION>_<KEY>"));
	for (i = 0; config_key_name(i, &section, &key); i++) {
		snprintf(want, sizeof(want), "  [%s] %s = ", section, key);
		ck_assert_msg(strstr(r.out, want), "help lacks %s", want);
	}
	ck_assert_ptr_nonnull(strstr(r.out, "[mqtt] port = 1883 (1..65535)"));
	ck_assert_ptr_nonnull(strstr(r.out, "max_size = 1G (1M..16384G bytes"));
	config_fini(&r.cfg);

	load(&r, shrt, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: mqd"));
	config_fini(&r.cfg);
}
END_TEST

START_TEST(test_action_version)
{
	char *lng[] = { "mqd", "--version", NULL };
	char *shrt[] = { "mqd", "-V", NULL };
	struct run r;

	load(&r, lng, NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert_str_eq(r.out, "mqd " MQD_VERSION "\n");
	ck_assert_str_eq(r.out, "mqd 0.1.0\n");
	config_fini(&r.cfg);

	load(&r, shrt, NULL);
	ck_assert_int_eq(r.action, CONFIG_EXIT);
	ck_assert_str_eq(r.out, "mqd 0.1.0\n");
	config_fini(&r.cfg);
}
END_TEST

static int
load_size(struct run *r, const char *value)
{
	char *argv[] = { "mqd", NULL };
	char var[128];
	char *env[] = { var, NULL };

	snprintf(var, sizeof(var), "MQD_STORAGE_MAX_SIZE=%s", value);
	return load(r, argv, env);
}

START_TEST(test_sizes)
{
	static const struct {
		const char *text;
		unsigned long long bytes;
	} ok[] = {
		{ "1048576", 1048576ULL }, { "1024K", 1048576ULL },
		{ "1024k", 1048576ULL },   { "1M", 1048576ULL },
		{ "3m", 3ULL << 20 },      { "2G", 2ULL << 30 },
		{ "1g", 1ULL << 30 },      { "16384G", 16384ULL << 30 },
	};
	static const char *not_size[] = { "",   "M",  "1 M", "1T", "1.5G",
		                          "-1", "+1", "1MB", " 1" };
	static const char *out_of_range[] = { "1048575", "1023K", "16385G",
		                              "99999999999999999999999",
		                              "99999999999999999G" };
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		load_size(&r, ok[i].text);
		ck_assert_msg(r.rc == 0, "%s: %s", ok[i].text, r.err);
		ck_assert_uint_eq(r.cfg.storage_max_size, ok[i].bytes);
		config_fini(&r.cfg);
	}
	for (i = 0; i < sizeof(not_size) / sizeof(not_size[0]); i++) {
		load_size(&r, not_size[i]);
		expect_err(&r, ERR_MALFORMED,
		           "environment MQD_STORAGE_MAX_SIZE: value \"%s\" is "
		           "not a size (bytes, or a number with K, M or G)",
		           not_size[i]);
	}
	for (i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
		load_size(&r, out_of_range[i]);
		expect_err(&r, ERR_MALFORMED,
		           "environment MQD_STORAGE_MAX_SIZE: value \"%s\" out "
		           "of range 1M..16384G",
		           out_of_range[i]);
	}
}
END_TEST

/* The documented bounds of every numeric key, checked at both edges. */
START_TEST(test_bounds)
{
	static const struct {
		const char *var;
		unsigned long long min;
		unsigned long long max;
	} keys[] = {
		{ "MQD_MQTT_PORT", 1, 65535 },
		{ "MQD_MQTT_MAX_PACKET_SIZE", 16, 268435460 },
		{ "MQD_MQTT_MAX_CONNECTIONS", 1, 1000000 },
		{ "MQD_MQTT_MAX_INFLIGHT", 1, 65535 },
		{ "MQD_MQTT_MAX_QUEUED", 1, 10000000 },
		{ "MQD_MQTT_CONNECT_TIMEOUT_MS", 100, 3600000 },
		{ "MQD_MQTT_RECEIVE_MAXIMUM", 1, 65535 },
		{ "MQD_MQTT_TOPIC_ALIAS_MAXIMUM", 0, 65535 },
		{ "MQD_MQTT_MAX_KEEPALIVE", 0, 65535 },
		{ "MQD_MQTT_MAX_QOS", 0, 2 },
		{ "MQD_MQTT_RETAIN_AVAILABLE", 0, 1 },
		{ "MQD_STORAGE_SYNC_INTERVAL_MS", 1, 60000 },
		{ "MQD_CLUSTER_PORT", 1, 65535 },
		{ "MQD_CLUSTER_FORWARD_TIMEOUT_MS", 0, 600000 },
		{ "MQD_CLUSTER_OUTBOX_MAX", 1, 100000000 },
		{ "MQD_ADMIN_PORT", 1, 65535 },
		{ "MQD_SYS_INTERVAL", 0, 86400 },
	};
	unsigned long long v[4];
	char *argv[] = { "mqd", NULL };
	char var[128], want[256];
	char *env[] = { var, NULL };
	struct run r;
	size_t i, j;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		v[0] = keys[i].min;
		v[1] = keys[i].max;
		v[2] = keys[i].min - 1; /* wraps for min 0: still out */
		v[3] = keys[i].max + 1;
		for (j = 0; j < 4; j++) {
			snprintf(var, sizeof(var), "%s=%llu", keys[i].var,
			         v[j]);
			load(&r, argv, env);
			if (j < 2) {
				ck_assert_msg(r.rc == 0, "%s: %s", var, r.err);
				config_fini(&r.cfg);
				continue;
			}
			snprintf(want, sizeof(want),
			         "environment %s: value \"%llu\" out of range "
			         "%llu..%llu",
			         keys[i].var, v[j], keys[i].min, keys[i].max);
			expect_err(&r, ERR_MALFORMED, "%s", want);
		}
	}
}
END_TEST

START_TEST(test_key_names_and_format)
{
	char *argv[] = { "mqd", "--port", "1999", NULL };
	const char *section, *key;
	char buf[64], tiny[3];
	struct run r;
	size_t i;

	for (i = 0; config_key_name(i, &section, &key); i++)
		;
	ck_assert_uint_eq(i, 33);
	ck_assert(config_key_name(4, &section, &key));
	ck_assert_str_eq(section, "mqtt");
	ck_assert_str_eq(key, "port");

	load(&r, argv, NULL);
	expect_ok(&r);
	ck_assert_int_eq(config_key_format(&r.cfg, 4, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "1999");
	ck_assert_int_eq(config_key_format(&r.cfg, 2, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "info");
	ck_assert_int_eq(config_key_format(&r.cfg, 13, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "2"); /* max_qos */
	ck_assert_int_eq(config_key_format(&r.cfg, 15, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "sync");
	ck_assert_int_eq(config_key_format(&r.cfg, 17, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "10"); /* commit_delay_ms */
	ck_assert_int_eq(config_key_format(&r.cfg, 18, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "1073741824");
	ck_assert_int_eq(config_key_format(&r.cfg, 1, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "./data");
	ck_assert_int_eq(config_key_format(&r.cfg, 4, tiny, sizeof(tiny)),
	                 ERR_TOO_LARGE);
	ck_assert_int_eq(config_key_format(&r.cfg, i, buf, sizeof(buf)),
	                 ERR_NOTFOUND);
	config_fini(&r.cfg);
	config_fini(&r.cfg); /* twice is harmless */
}
END_TEST

/* Does the example document @p section / @p key (set or commented out)? */
static bool
example_documents(const char *text, const char *section, const char *key)
{
	char head[64];
	const char *p, *end, *line;
	size_t klen = strlen(key);

	snprintf(head, sizeof(head), "\n[%s]\n", section);
	p = strstr(text, head);
	if (!p)
		return false;
	p += strlen(head);
	end = strstr(p, "\n[");
	for (line = p; line && (!end || line < end);) {
		const char *s = line;

		while (*s == '#' || *s == ' ')
			s++;
		if (strncmp(s, key, klen) == 0 &&
		    strncmp(s + klen, " = ", 3) == 0)
			return true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

START_TEST(test_example_conf)
{
	char *plain[] = { "mqd", NULL };
	char *example[] = { "mqd", "-c", EXAMPLE_CONF, NULL };
	char a[256], b[256], text[16384];
	const char *section, *key;
	struct run def, ex;
	FILE *f;
	size_t i, n;

	load(&def, plain, NULL);
	expect_ok(&def);
	load(&ex, example, NULL);
	expect_ok(&ex);
	/* every key as the defaults: name is commented out (host name) */
	for (i = 0; config_key_name(i, &section, &key); i++) {
		ck_assert_int_eq(config_key_format(&def.cfg, i, a, sizeof(a)),
		                 0);
		ck_assert_int_eq(config_key_format(&ex.cfg, i, b, sizeof(b)),
		                 0);
		ck_assert_msg(strcmp(a, b) == 0, "[%s] %s: %s != default %s",
		              section, key, b, a);
	}
	config_fini(&def.cfg);
	config_fini(&ex.cfg);

	f = fopen(EXAMPLE_CONF, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	ck_assert_uint_lt(n, sizeof(text) - 1);
	text[n] = '\0';
	fclose(f);
	for (i = 0; config_key_name(i, &section, &key); i++)
		ck_assert_msg(example_documents(text, section, key),
		              "deploy/mqd.conf does not document [%s] %s",
		              section, key);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *load_tc = tcase_create("load");
	TCase *err_tc = tcase_create("errors");
	TCase *act_tc = tcase_create("actions");

	tcase_add_test(load_tc, test_defaults);
	tcase_add_test(load_tc, test_file_sets_every_key);
	tcase_add_test(load_tc, test_file_crlf_bom_quotes);
	tcase_add_test(load_tc, test_empty_file_gives_defaults);
	tcase_add_test(load_tc, test_precedence);
	tcase_add_test(load_tc, test_env_every_section);
	tcase_add_test(load_tc, test_env_ignores_other_variables);
	tcase_add_test(load_tc, test_flags_all);
	tcase_add_test(load_tc, test_real_environment);
	tcase_add_test(load_tc, test_sizes);
	tcase_add_test(load_tc, test_bounds);
	tcase_add_test(load_tc, test_key_names_and_format);
	tcase_add_test(load_tc, test_example_conf);
	suite_add_tcase(s, load_tc);

	tcase_add_test(err_tc, test_err_file_range);
	tcase_add_test(err_tc, test_err_file_unknown_key);
	tcase_add_test(err_tc, test_err_file_unknown_section);
	tcase_add_test(err_tc, test_err_file_first_error_wins);
	tcase_add_test(err_tc, test_err_file_syntax);
	tcase_add_test(err_tc, test_err_file_outside_section);
	tcase_add_test(err_tc, test_err_file_duplicate);
	tcase_add_test(err_tc, test_err_file_long_line);
	tcase_add_test(err_tc, test_err_file_missing);
	tcase_add_test(err_tc, test_err_file_is_directory);
	tcase_add_test(err_tc, test_err_env);
	tcase_add_test(err_tc, test_err_flags);
	tcase_add_test(err_tc, test_err_string_too_long);
	suite_add_tcase(s, err_tc);

	tcase_add_test(act_tc, test_action_test_config);
	tcase_add_test(act_tc, test_action_help);
	tcase_add_test(act_tc, test_action_version);
	suite_add_tcase(s, act_tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
