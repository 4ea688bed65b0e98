/*
 * proto's public header: the MQTT codec and the primitives it stands on.
 * Other modules include this one and nothing else from proto/.
 */
#ifndef PROTO_PROTO_H
#define PROTO_PROTO_H

#include "proto/buf.h"
#include "proto/err.h"
#include "proto/mqtt.h"

#endif
