/*
 * proto's private helpers, shared by its own files and its tests and fuzz
 * targets; not for other modules.
 */
#ifndef PROTO_MQTT_INT_H
#define PROTO_MQTT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/mqtt.h"

/** True when the views hold the same bytes. */
bool mqtt_bytes_equals(struct mqtt_bytes a, struct mqtt_bytes b);

/** True when two property sets carry the same properties and values (User
 * Properties compared pair by pair, in order). */
bool mqtt_props_equals(const struct mqtt_props *a, const struct mqtt_props *b);

/**
 * True when two decoded packets of protocol level @p version carry the same
 * fields (views compared by content; SUBSCRIBE entries entry by entry).
 * For tests and the fuzz round-trip property.
 */
bool mqtt_packet_equals(uint8_t version, const struct mqtt_packet *a,
                        const struct mqtt_packet *b);

#endif
