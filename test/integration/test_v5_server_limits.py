"""MQTT 5.0 servers that do not serve everything: mqd with [mqtt] max_qos
below 2 or retain_available = 0 says so in the CONNACK (Maximum QoS,
Retain Available), grants subscriptions at most its Maximum QoS, and
refuses what goes beyond: a will above it (CONNACK 0x9B / 0x9A), a
PUBLISH above it (DISCONNECT 0x9B / 0x9A). Defaults serve everything and
say nothing (test_v5_connect)."""

import pytest

import mqtt_raw as m
import mqtt5_raw as m5


@pytest.fixture
def limited(start_broker):
    b = start_broker(mqtt_max_qos=1, mqtt_retain_available=0)
    b.require_mqd("mqd's [mqtt] max_qos and retain_available")
    return b


def test_v5_mqtt_3_2_2_9_connack_says_maximum_qos_and_retain(limited,
                                                             clients):
    c = m5.client(clients, limited)
    ack = c.handshake("lim-connack")
    # [MQTT-3.2.2-9] v5: QoS 2 not supported -> Maximum QoS 1 in CONNACK
    assert ack.props.get(m5.MAXIMUM_QOS) == 1, ack
    # §3.2.2.3.5 v5: Retain Available 0
    assert ack.props.get(m5.RETAIN_AVAILABLE) == 0, ack


def test_v5_mqtt_3_2_2_10_subscribe_above_maximum_granted_at_it(limited,
                                                                clients):
    c = m5.client(clients, limited)
    c.handshake("lim-sub")
    # [MQTT-3.2.2-10] v5: SUBSCRIBE at QoS 2 still accepted, granted 1
    codes = c.subscribe([("lim/a", m5.sub_options(2)),
                         ("lim/b", m5.sub_options(1)),
                         ("lim/c", m5.sub_options(0))])
    assert list(codes) == [1, 1, 0], codes
    c.publish("lim/a", b"x", qos=1)
    p = c.expect(m5.PUBLISH)
    assert (p.topic, p.qos) == (b"lim/a", 1), p
    c.ack(p)


def test_v5_mqtt_3_2_2_11_publish_above_maximum_qos(limited, clients):
    c = m5.client(clients, limited)
    c.handshake("lim-pub")
    c.send(m5.publish("lim/x", b"too high", qos=2, pid=1))
    # [MQTT-3.2.2-11] v5: DISCONNECT 0x9B (QoS not supported)
    c.expect_disconnect(0x9B)


def test_v5_mqtt_3_2_2_12_will_qos_above_maximum_refused(limited, clients):
    c = m5.client(clients, limited)
    c.send(m5.connect("lim-will-qos",
                      will=dict(topic="w", payload=b"w", qos=2)))
    # [MQTT-3.2.2-12] v5: CONNACK 0x9B, then the server closes
    ack = c.expect(m5.CONNACK)
    assert ack.rc == 0x9B, ack
    c.expect_closed()


def test_v5_mqtt_3_2_2_13_will_retain_refused(limited, clients):
    c = m5.client(clients, limited)
    c.send(m5.connect("lim-will-ret",
                      will=dict(topic="w", payload=b"w", qos=1,
                                retain=True)))
    # [MQTT-3.2.2-13] v5: CONNACK 0x9A, then the server closes
    ack = c.expect(m5.CONNACK)
    assert ack.rc == 0x9A, ack
    c.expect_closed()


def test_v5_mqtt_3_2_2_14_publish_retain_when_not_available(limited,
                                                            clients):
    c = m5.client(clients, limited)
    c.handshake("lim-ret")
    c.send(m5.publish("lim/r", b"keep me", qos=0, retain=True))
    # [MQTT-3.2.2-14] v5: DISCONNECT 0x9A (Retain not supported)
    c.expect_disconnect(0x9A)


def test_v5_limits_hold_for_mqtt_3_1_1_clients(limited, clients):
    """A 3.1.1 client is not told the limits: its subscriptions are
    granted at most the Maximum QoS, and a PUBLISH beyond the limits
    closes its connection."""
    c = clients.raw(limited)
    c.handshake("lim-v3")
    c.send(m.subscribe(1, [("lim/v3", 2)]))
    ack = c.expect(m.SUBACK)
    assert list(ack.codes) == [1], ack
    c.send(m.publish("lim/v3", b"x", qos=2, pid=2))
    c.expect_closed()
