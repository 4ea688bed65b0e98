/*
 * Configuration: embedded defaults, then the INI file (-c), then MQD_*
 * environment variables, then command-line flags. Parsed once at start-up
 * into an immutable struct config.
 */
#ifndef BROKER_CONFIG_H
#define BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_durability {
	CONFIG_DURABILITY_SYNC,
	CONFIG_DURABILITY_RELAXED,
	CONFIG_DURABILITY_NONE,
};

struct config {
	/* [node] */
	char *node_name;   /* default: host name */
	char *data_dir;    /* default: ./data */
	int log_level;     /* LOG_ERROR..LOG_DEBUG, default LOG_INFO */
	/* [mqtt] */
	char *mqtt_bind;   /* default: "" = all addresses, IPv4 and IPv6 */
	uint16_t mqtt_port;          /* default 1883 */
	uint32_t max_packet_size;    /* default 1 MiB (bytes, whole packet) */
	uint32_t max_connections;    /* default 10000 */
	uint16_t max_inflight;       /* default 32 (outgoing QoS 1/2 window) */
	uint32_t max_queued;         /* default 1000 messages per session */
	uint32_t connect_timeout_ms; /* default 10000 */
	/* [storage] */
	enum config_durability durability; /* default sync */
	uint32_t sync_interval_ms;         /* default 1000 */
	uint64_t storage_max_size;         /* default 1 GiB */
	/* [cluster] */
	char *cluster_bind;   /* default "0.0.0.0" */
	uint16_t cluster_port; /* default 7883 */
	char *cluster_advertise; /* default "" */
	char *cluster_seeds;     /* default "" */
	char *cluster_secret;    /* default "" */
	/* [admin] */
	char *admin_bind;   /* default 127.0.0.1 */
	uint16_t admin_port; /* default 8081 */
	char *admin_token;   /* default "" */
	/* [sys] */
	uint32_t sys_interval; /* seconds, default 10, 0 = off */

	char *config_path; /* file given with -c, or NULL */
	bool test_only;    /* -t: check the configuration and exit */
};

enum config_action {
	CONFIG_RUN,   /* start the node */
	CONFIG_EXIT,  /* --help / --version / -t printed what it had to: exit 0 */
};

/**
 * Fills @p cfg from defaults, the file named by -c, the environment and
 * @p argv (in that order, later wins).
 * @param[out] err on failure, one line naming the file, line and key (or
 *   the flag / variable) and what is wrong
 * @param[out] action what main should do on success
 * @return 0, ERR_MALFORMED (bad value, unknown key or flag), ERR_IO
 *   (file unreadable) or ERR_NOMEM. On failure cfg holds nothing to free.
 */
int config_load(struct config *cfg, int argc, char **argv, char *err,
		size_t errlen, enum config_action *action);

/** Frees what config_load allocated; safe on a zeroed struct. */
void config_fini(struct config *cfg);

/** Prints the --help text to @p out. */
void config_usage(void *out);

#endif
