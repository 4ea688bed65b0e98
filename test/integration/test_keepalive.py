"""PINGREQ/PINGRESP and the keepalive timer."""

import time

import paho.mqtt.client as mqtt

import mqtt_raw as m


def test_v311_mqtt_3_12_4_1_pingresp(broker, clients):
    c = clients.raw(broker)
    c.handshake("pinger")
    for _ in range(3):
        c.send(m.pingreq())
        # [MQTT-3.12.4-1] 3.1.1: every PINGREQ is answered with PINGRESP
        r = c.expect(m.PINGRESP)
        assert r.flags == 0 and r.body == b""


def test_v311_mqtt_3_12_4_1_pingresp_pipelined(broker, clients):
    c = clients.raw(broker)
    c.handshake("pinger2")
    c.send(m.pingreq() * 20)
    for _ in range(20):
        c.expect(m.PINGRESP)


def test_v31_pingresp(broker, clients):
    c = clients.raw(broker)
    c.handshake("pinger31", version=3)
    c.ping()


def test_v311_mqtt_3_1_2_24_keepalive_timeout_closes(broker, clients):
    c = clients.raw(broker)
    c.handshake("idle", keepalive=1)
    t0 = time.monotonic()
    # [MQTT-3.1.2-24] 3.1.1: nothing received for 1.5 x keepalive -> closed
    c.expect_closed(timeout=1.5 + broker.keepalive_grace)
    elapsed = time.monotonic() - t0
    # and not much before 1.5 x keepalive (1.0 s leaves room for timer
    # granularity)
    assert elapsed >= 1.0, "closed after %.2fs, keepalive 1s" % elapsed


def test_v31_keepalive_timeout_closes(broker, clients):
    c = clients.raw(broker)
    c.handshake("idle31", keepalive=1, version=3)
    c.expect_closed(timeout=1.5 + broker.keepalive_grace)


def test_v311_keepalive_pingreq_keeps_connection(broker, clients):
    c = clients.raw(broker)
    c.handshake("busy", keepalive=1)
    t0 = time.monotonic()
    # ping every 0.6 s (the client's own schedule) for 3.6 s = 2.4 x keepalive
    while time.monotonic() - t0 < 3.6:
        c.expect_nothing(0.6)      # pacing, and checks nothing arrives
        c.ping()


def test_v311_keepalive_any_packet_resets_timer(broker, clients):
    c = clients.raw(broker)
    c.handshake("busy2", keepalive=1)
    t0 = time.monotonic()
    i = 0
    # QoS 0 PUBLISHes (no answer) are control packets too: they keep it open
    while time.monotonic() - t0 < 3.6:
        c.expect_nothing(0.6)
        c.send(m.publish("ka/t", b"%d" % i))
        i += 1
    c.ping()


def test_keepalive_zero_never_times_out(broker, clients):
    c = clients.raw(broker)
    c.handshake("forever", keepalive=0)
    # keepalive 0 turns the mechanism off (3.1.1 §3.1.2.10): still open after
    # well over what a short keepalive would allow (bounded wait)
    c.expect_nothing(2.5)
    c.ping()


def test_paho_keepalive_pings(broker, clients):
    ps = []
    for proto in (mqtt.MQTTv31, mqtt.MQTTv311):
        p = clients.paho(broker, client_id="paho-ka-%d" % proto, protocol=proto)
        p.connect(keepalive=1)
        ps.append(p)
    # paho sends PINGREQ on its own; the broker answers, so paho never
    # declares the connection lost (bounded wait of 3 keepalive periods)
    for p in ps:
        assert not p.disconnected.wait(3.0 if p is ps[0] else 0.0), \
            "paho lost the connection (rc %r)" % p.disconnect_rc
    for p in ps:
        p.disconnect()
