/*
 * mqd --health: a one-shot probe of a running node, for container
 * healthchecks and scripts. Blocking sockets in a short-lived process; never
 * called by the node itself.
 */
#ifndef BROKER_HEALTH_H
#define BROKER_HEALTH_H

#include "broker/config.h"

#define HEALTH_TIMEOUT_MS 3000 /* whole probe: connect, CONNECT, CONNACK */

/**
 * Connects to the MQTT listener that @p cfg describes ([mqtt] port on
 * [mqtt] bind; a wildcard or empty bind is probed on the loopback address),
 * sends an MQTT 3.1.1 CONNECT with a clean session and waits for the
 * CONNACK, then sends DISCONNECT. A CONNACK that accepts, or that refuses
 * only the missing credentials (0x04, 0x05), means the node is serving.
 * On failure writes one line to stderr, e.g.
 * "mqd: health: 127.0.0.1:1883: connect: Connection refused".
 * @param cfg borrowed
 * @return 0 (healthy), ERR_IO (no connection, or it broke), ERR_AGAIN (no
 *   answer within HEALTH_TIMEOUT_MS), ERR_PROTOCOL (not a CONNACK, or one
 *   that refuses for another reason)
 */
int health_probe(const struct config *cfg);

#endif
