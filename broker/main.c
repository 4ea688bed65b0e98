/*
 * mqd: one broker node. Loads the configuration, runs the node until
 * SIGINT/SIGTERM and exits 0 after a clean stop. With --health it only
 * probes the node the configuration describes (exit 0 healthy, 1 not).
 */
#include <stdio.h>
#include <stdlib.h>

#include "broker/config.h"
#include "broker/health.h"
#include "broker/log.h"
#include "broker/node.h"

int
main(int argc, char **argv)
{
	struct config cfg = { 0 };
	enum config_action action;
	struct node node;
	char err[512];
	int rc;

	rc = config_load(&cfg, argc, argv, err, sizeof(err), &action);
	if (rc) {
		fprintf(stderr, "mqd: %s\n", err);
		return 2;
	}
	if (action == CONFIG_EXIT) {
		config_fini(&cfg);
		return 0;
	}
	if (cfg.health_only) {
		rc = health_probe(&cfg);
		config_fini(&cfg);
		return rc ? 1 : 0;
	}
	log_set_level(cfg.log_level);
	rc = node_init(&node, &cfg);
	if (rc) {
		log_error("start failed err=\"%s\"", err_str(rc));
		config_fini(&cfg);
		return 1;
	}
	rc = node_run(&node);
	node_fini(&node);
	log_info("mqd stopped");
	config_fini(&cfg);
	return rc ? 1 : 0;
}
