"""MQTT 5.0 CONNECT / CONNACK and the server-initiated DISCONNECT: CONNACK
properties, Assigned Client Identifier, Server Keep Alive, AUTH method
refusal, and a DISCONNECT with a reason code before every close the server
starts after CONNACK (never one to a 3.1.1 client)."""

import os
import time

import pytest

import mqtt_raw as m
import mqtt5_raw as m5


def _c5(clients, broker):
    return m5.client(clients, broker)


# --------------------------------------------------------------------------
# CONNACK
# --------------------------------------------------------------------------

def test_v5_mqtt_3_1_4_5_connack_default_properties(broker, clients):
    broker.require_mqd("mqd's default limits")
    c = _c5(clients, broker)
    ack = c.handshake("v5-defaults")
    # [MQTT-3.1.4-5] v5: accepted -> CONNACK 0x00; [MQTT-3.2.2-2] v5: Clean
    # Start 1 -> Session Present 0
    assert ack.rc == 0 and ack.session_present == 0
    # [MQTT-3.2.2-1] v5: flag bits 7-1 are 0
    assert ack.ack_flags & 0xFE == 0
    p = ack.props
    # §3.2.2.3.3 v5: the server's Receive Maximum (mqd: mqtt.receive_maximum)
    assert p.get(m5.RECEIVE_MAXIMUM) == 32
    # §3.2.2.3.6 v5: Maximum Packet Size (mqd: mqtt.max_packet_size)
    assert p.get(m5.MAXIMUM_PACKET_SIZE) == 1048576
    # §3.2.2.3.8 v5: Topic Alias Maximum (mqd: mqtt.topic_alias_maximum)
    assert p.get(m5.TOPIC_ALIAS_MAXIMUM) == 10
    # §3.2.2.3 v5: the "... Available" flags only as 0 or 1 (Shared
    # Subscription Available: 0 while mqd has no shared subscriptions;
    # test_v5_subscribe checks SUBACK agrees with it)
    assert p.get(m5.SHARED_SUBSCRIPTION_AVAILABLE, 1) in (0, 1)
    # [MQTT-3.2.2-16] v5: the client gave an id: no Assigned Client Identifier
    assert not p.has(m5.ASSIGNED_CLIENT_IDENTIFIER)
    # no max_keepalive configured: no Server Keep Alive
    assert not p.has(m5.SERVER_KEEP_ALIVE)
    # [MQTT-4.12.0-6] v5: no Authentication Method asked, none in CONNACK
    assert not p.has(m5.AUTHENTICATION_METHOD)
    # §3.2.2.3 v5: every property at most once (User Property excepted)
    ids = [k for k, _ in p if k != m5.USER_PROPERTY]
    assert len(ids) == len(set(ids)), p


def test_v5_3_2_2_3_connack_configured_properties(start_broker, clients):
    broker = start_broker(mqtt_receive_maximum=5, mqtt_max_packet_size=4000,
                          mqtt_topic_alias_maximum=3)
    c = _c5(clients, broker)
    p = c.handshake("v5-config").props
    # §3.2.2.3.3, §3.2.2.3.6, §3.2.2.3.8 v5: the configured limits
    assert p.get(m5.RECEIVE_MAXIMUM) == 5, p
    assert p.get(m5.MAXIMUM_PACKET_SIZE) == 4000, p
    assert p.get(m5.TOPIC_ALIAS_MAXIMUM) == 3, p
    c.ping()


def test_v5_mqtt_3_2_2_16_assigned_client_identifier(broker, clients):
    ids = []
    for _ in range(2):
        c = _c5(clients, broker)
        ack = c.handshake("")
        # [MQTT-3.1.3-6] v5 / [MQTT-3.1.3-7] v5 / [MQTT-3.2.2-16] v5: empty
        # ClientID accepted -> a generated id in Assigned Client Identifier
        cid = ack.props.get(m5.ASSIGNED_CLIENT_IDENTIFIER)
        assert cid, "no Assigned Client Identifier: %r" % ack
        cid.decode("utf-8")
        ids.append(cid)
        c.ping()
    # both connections are open at once: the ids must differ
    assert ids[0] != ids[1]


def test_v5_mqtt_3_1_3_7_assigned_client_identifier_is_the_session(broker, clients):
    # [MQTT-3.1.3-7] v5: the CONNECT is processed under the generated id:
    # reconnecting with that id and Clean Start 0 resumes the session
    c = _c5(clients, broker)
    ack = c.handshake("", props={m5.SESSION_EXPIRY_INTERVAL: 60})
    cid = ack.props.get(m5.ASSIGNED_CLIENT_IDENTIFIER)
    assert cid
    assert c.subscribe([("assigned/t", 1)]) == [1]
    c.disconnect()
    c2 = _c5(clients, broker)
    ack2 = c2.handshake(cid, clean_start=False,
                        props={m5.SESSION_EXPIRY_INTERVAL: 60})
    assert ack2.session_present == 1
    assert not ack2.props.has(m5.ASSIGNED_CLIENT_IDENTIFIER)
    c2.disconnect(props={m5.SESSION_EXPIRY_INTERVAL: 0})


@pytest.mark.parametrize("asked,announced", [(60, 10), (0, 10), (5, None), (10, None)])
def test_v5_3_2_2_3_14_server_keep_alive(start_broker, clients, asked, announced):
    # 10: the smallest max_keepalive mosquitto accepts
    broker = start_broker(mqtt_max_keepalive=10)
    c = _c5(clients, broker)
    ack = c.handshake("ska-%d" % asked, keepalive=asked)
    # §3.2.2.3.14 v5: a Server Keep Alive is announced when the client asked
    # for more than the maximum (or for 0 = none), and only then
    assert ack.props.get(m5.SERVER_KEEP_ALIVE) == announced, ack


def test_v5_3_2_2_3_14_server_keep_alive_enforced(start_broker, clients):
    if os.environ.get("MQD_TEST_BROKER", "mqd") != "mqd":
        pytest.skip("mosquitto refuses max_keepalive below 10")
    broker = start_broker(mqtt_max_keepalive=1)
    c = _c5(clients, broker)
    ack = c.handshake("ska-enforced", keepalive=60)
    assert ack.props.get(m5.SERVER_KEEP_ALIVE) == 1
    t0 = time.monotonic()
    # §3.2.2.3.14 v5 / [MQTT-3.1.2-22] v5: the Server Keep Alive (1 s), not
    # the client's 60 s, is enforced: silent for 1.5 s -> DISCONNECT 0x8D
    c.expect_disconnect(m5.KEEP_ALIVE_TIMEOUT, timeout=1.5 + broker.keepalive_grace)
    assert time.monotonic() - t0 >= 1.0


def test_v5_mqtt_3_2_2_22_no_server_keep_alive_client_value_enforced(broker, clients):
    c = _c5(clients, broker)
    ack = c.handshake("ka-own", keepalive=1)
    # [MQTT-3.2.2-22] v5: no Server Keep Alive -> the client's 1 s applies
    assert not ack.props.has(m5.SERVER_KEEP_ALIVE)
    t0 = time.monotonic()
    # [MQTT-3.1.2-22] v5: nothing for 1.5 x keepalive -> close, with
    # DISCONNECT 0x8D first (§4.13.1 v5)
    c.expect_disconnect(m5.KEEP_ALIVE_TIMEOUT, timeout=1.5 + broker.keepalive_grace)
    assert time.monotonic() - t0 >= 1.0


def test_v5_mqtt_4_12_0_1_unsupported_authentication_method(broker, clients):
    c = _c5(clients, broker)
    c.send(m5.connect("auth-x", props=[(m5.AUTHENTICATION_METHOD, "NO-SUCH-METHOD")]))
    got = c.expect_closed()
    # [MQTT-4.12.0-1] v5: unsupported method -> CONNACK 0x8C, then close;
    # [MQTT-3.2.2-6] v5: Session Present 0 with a failure code
    assert [p.type for p in got] == [m.CONNACK], got
    assert got[0].rc == m5.BAD_AUTHENTICATION_METHOD, got
    assert got[0].session_present == 0


def test_v5_mqtt_3_1_4_6_refused_connect_pipelined_publish_dropped(broker, clients):
    w = _c5(clients, broker)
    w.handshake("auth-watch")
    w.subscribe([("auth/leak", 0), ("auth/mark", 0)])
    c = _c5(clients, broker)
    c.send(m5.connect("auth-y", props=[(m5.AUTHENTICATION_METHOD, "NO-SUCH-METHOD")])
           + m5.publish("auth/leak", b"must not pass"))
    c.expect_closed()
    # [MQTT-3.1.4-6] v5: nothing sent after a refused CONNECT is acted on
    mk = _c5(clients, broker)
    mk.handshake("auth-marker")
    mk.publish("auth/mark", b"marker", qos=1)
    p = w.expect_publish()
    assert p.topic == b"auth/mark", p


# --------------------------------------------------------------------------
# Server-initiated DISCONNECT (v5) and its absence for 3.1.1
# --------------------------------------------------------------------------

def test_v5_mqtt_3_1_0_2_second_connect_disconnect_0x82(broker, clients):
    c = _c5(clients, broker)
    c.handshake("twice")
    c.send(m5.connect("twice"))
    # [MQTT-3.1.0-2] v5: a second CONNECT is a Protocol Error -> DISCONNECT
    # 0x82 and close [MQTT-3.14.4-2] v5
    c.expect_disconnect(m5.PROTOCOL_ERROR)


@pytest.mark.parametrize("bad", [
    m5.publish("bad/q3", b"x", flags=0x06, pid=1),     # [MQTT-3.3.1-4] v5
    m5.subscribe(1, [("a", 0)], flags=0),              # [MQTT-3.8.1-1] v5
    m5.unsubscribe(1, ["a"], flags=0),                 # [MQTT-3.10.1-1] v5
    m5.packet(m5.PUBREL, 0, b"\x00\x01"),             # [MQTT-3.6.1-1] v5
    m5.disconnect(0, flags=1),                         # [MQTT-3.14.1-1] v5
    m5.subscribe(1, [("a", 0xC0)]),                    # [MQTT-3.8.3-5] v5
], ids=["publish_qos3", "subscribe_flags", "unsubscribe_flags", "pubrel_flags",
        "disconnect_flags", "subscribe_option_bits"])
def test_v5_mqtt_4_13_1_1_malformed_disconnect_0x81(broker, clients, bad):
    c = _c5(clients, broker)
    c.handshake("malformed")
    c.send(bad)
    # [MQTT-4.13.1-1] v5 / §4.13.1 v5: Malformed Packet -> DISCONNECT 0x81,
    # then close
    c.expect_disconnect(m5.MALFORMED)


def test_v5_mqtt_3_1_4_3_session_taken_over_0x8e(broker, clients):
    old = _c5(clients, broker)
    old.handshake("taken")
    new = _c5(clients, broker)
    new.handshake("taken")
    # [MQTT-3.1.4-3] v5: the old connection gets DISCONNECT 0x8E and is closed
    old.expect_disconnect(m5.SESSION_TAKEN_OVER)
    new.ping()


def test_v5_mqtt_3_2_2_15_packet_too_large_0x95(start_broker, clients):
    broker = start_broker(mqtt_max_packet_size=1000)
    c = _c5(clients, broker)
    ack = c.handshake("big")
    assert ack.props.get(m5.MAXIMUM_PACKET_SIZE) == 1000
    c.publish("big/ok", b"x" * 900, qos=1)
    c.send(m5.publish("big/no", b"x" * 1200, qos=1, pid=77))
    # [MQTT-3.2.2-15] v5: a packet over the announced Maximum Packet Size
    # -> DISCONNECT 0x95 (no PUBACK for it)
    before = c.expect_disconnect(m5.PACKET_TOO_LARGE)
    assert not [p for p in before if p.type == m.PUBACK], before


def test_v5_3_14_2_1_server_shutting_down_0x8b(broker, clients):
    c = _c5(clients, broker)
    c.handshake("shutdown")
    c.ping()
    assert broker.stop() == 0
    # §3.14.2.1 v5 / [MQTT-3.14.2-1] v5: shutdown -> DISCONNECT 0x8B
    c.expect_disconnect(m5.SERVER_SHUTTING_DOWN)


def _v311(clients, broker, cid, **kw):
    c = clients.raw(broker)
    c.handshake(cid, **kw)
    return c


def _no_disconnect(got):
    # 3.1.1 has no server-to-client DISCONNECT (checklist conventions;
    # [MQTT-4.8.0-1] 3.1.1: just close)
    assert not [p for p in got if p.type == m.DISCONNECT], got


def test_v311_no_disconnect_on_second_connect(broker, clients):
    c = _v311(clients, broker, "v3-twice")
    c.send(m.connect("v3-twice"))
    _no_disconnect(c.expect_closed())      # [MQTT-3.1.0-2] 3.1.1: close


def test_v311_no_disconnect_on_malformed(broker, clients):
    c = _v311(clients, broker, "v3-bad")
    c.send(m.publish("bad", b"x", flags=0x06, pid=1))
    _no_disconnect(c.expect_closed())      # [MQTT-3.3.1-4] 3.1.1: close


def test_v311_no_disconnect_on_keepalive_timeout(broker, clients):
    c = _v311(clients, broker, "v3-idle", keepalive=1)
    _no_disconnect(c.expect_closed(timeout=1.5 + broker.keepalive_grace))


def test_v311_mqtt_3_1_4_2_no_disconnect_on_takeover(broker, clients):
    old = _v311(clients, broker, "v3-taken")
    _v311(clients, broker, "v3-taken")
    _no_disconnect(old.expect_closed())    # [MQTT-3.1.4-2] 3.1.1: close only


def test_v311_no_disconnect_on_takeover_by_v5(broker, clients):
    old = _v311(clients, broker, "mixed-taken")
    new = _c5(clients, broker)
    new.handshake("mixed-taken")
    _no_disconnect(old.expect_closed())


def test_v311_no_disconnect_on_shutdown(broker, clients):
    c = _v311(clients, broker, "v3-shutdown")
    c.ping()
    assert broker.stop() == 0
    _no_disconnect(c.expect_closed())
