"""CONNECT / CONNACK handling: versions, client identifiers, takeover,
connection limits and the CONNECT timeout."""

import socket
import time

import paho.mqtt.client as mqtt
import pytest

import mqtt_raw as m


def test_v311_mqtt_3_1_4_4_connect_accepted(broker, clients):
    c = clients.raw(broker)
    c.send(m.connect("acc1", clean=True))
    # [MQTT-3.2.0-1] 3.1.1: the first packet from the server is CONNACK
    ack = c.recv()
    assert ack.type == m.CONNACK, ack
    # [MQTT-3.1.4-4] 3.1.1: a valid CONNECT gets return code 0
    assert ack.rc == 0
    # [MQTT-3.2.2-1] 3.1.1: CleanSession=1 -> Session Present 0
    assert ack.session_present == 0
    # CONNACK acknowledge flags bits 7-1 are reserved, 0 (3.1.1 §3.2.2.1)
    assert ack.ack_flags & 0xFE == 0
    # [MQTT-7.1.1-1] 3.1.1: MQTT over a TCP byte stream works both ways
    c.ping()


def test_v31_mqisdp_connect_accepted(broker, clients):
    # MQTT 3.1 (no statement ID): protocol name "MQIsdp", level 3 is served
    # (3.1.1 §3.1.2.1 lets a server hand other protocol names to another
    # protocol's handler)
    c = clients.raw(broker)
    ack = c.handshake("v31client", version=3)
    assert ack.session_present == 0
    assert c.subscribe([("v31/t", 1)]) == [1]
    c.publish("v31/t", b"x", qos=1)
    p = c.expect_publish()
    assert (p.topic, p.payload, p.qos) == (b"v31/t", b"x", 1)


def test_v311_mqtt_3_1_2_1_unknown_protocol_name_not_served(broker, clients):
    # [MQTT-3.1.2-1] 3.1.1: a protocol name other than "MQTT" (and not
    # MQTT 3.1's "MQIsdp") must not be served as MQTT 3.1.1: the connection
    # is closed and never accepted.
    c = clients.raw(broker)
    c.send(m.connect("badname", proto_name=b"MQTX", proto_level=4))
    got = c.expect_closed()
    assert not any(p.type == m.CONNACK and p.rc == 0 for p in got), got


@pytest.mark.parametrize("level", [2, 6, 0xFF])
def test_v311_mqtt_3_1_2_2_unsupported_level_connack_1(broker, clients, level):
    c = clients.raw(broker)
    c.send(m.connect("badlevel", proto_level=level))
    got = c.expect_closed()   # [MQTT-3.2.2-5] 3.1.1: closed after rc != 0
    # [MQTT-3.1.2-2] 3.1.1: unsupported level -> CONNACK return code 0x01
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert got[0].rc == 0x01
    # [MQTT-3.2.2-4] 3.1.1: non-zero return code -> Session Present 0
    assert got[0].session_present == 0


def test_v311_mqtt_3_1_2_3_reserved_connect_flag_closes(broker, clients):
    c = clients.raw(broker)
    c.send(m.connect("resflag", flags=0x02 | 0x01))
    # [MQTT-3.1.2-3] 3.1.1: reserved flag set -> close;
    # [MQTT-3.1.4-1] 3.1.1: an invalid CONNECT is closed without CONNACK
    assert c.expect_closed() == []


@pytest.mark.parametrize("first", [
    m.pingreq(),
    m.publish("t/first", b"x", qos=0),
    m.subscribe(1, [("t/#", 0)]),
    m.disconnect(),
], ids=["pingreq", "publish", "subscribe", "disconnect"])
def test_v311_mqtt_3_1_0_1_first_packet_not_connect(broker, clients, first):
    watcher = clients.raw(broker)
    watcher.handshake("watcher")
    watcher.subscribe([("t/#", 0)])
    c = clients.raw(broker)
    c.send(first)
    # [MQTT-3.1.0-1] 3.1.1: closed, and nothing is sent back
    assert c.expect_closed() == []
    # and the packet was not acted on: no PUBLISH reached the subscriber
    # before a marker published after the close
    marker = clients.raw(broker)
    marker.handshake("marker")
    watcher.expect_marker(marker, "t/marker")


def test_v311_mqtt_3_1_0_2_second_connect_closes(broker, clients):
    c = clients.raw(broker)
    c.handshake("twice")
    c.send(m.connect("twice"))
    # [MQTT-3.1.0-2] 3.1.1: a second CONNECT is a protocol violation -> close
    # ([MQTT-4.8.0-1] 3.1.1), without a second CONNACK
    assert c.expect_closed() == []


def test_v311_mqtt_3_1_3_5_accepts_23_char_alnum_id(broker, clients):
    cid = "Az09" * 5 + "xyz"
    assert len(cid) == 23
    # [MQTT-3.1.3-5] 3.1.1: 1..23 bytes of [0-9a-zA-Z] are always accepted
    clients.raw(broker).handshake(cid)
    clients.raw(broker).handshake("a")


def test_v31_client_id_23_chars_accepted(broker, clients):
    # MQTT 3.1 (no statement ID): client identifiers of 1 to 23 characters
    clients.raw(broker).handshake("b" * 23, version=3)


def test_v31_client_id_longer_than_23_rejected(broker, clients):
    # MQTT 3.1 (no statement ID): a client identifier longer than 23
    # characters -> CONNACK 2 (identifier rejected), then close
    c = clients.raw(broker)
    c.send(m.connect("c" * 24, version=3))
    got = c.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(m.CONNACK, 0x02)], got


def test_v311_mqtt_3_1_3_6_empty_client_id_gets_unique_id(broker, clients):
    # [MQTT-3.1.3-6] 3.1.1: an empty ClientID with CleanSession=1 is accepted
    # and gets an identifier unique on the server: a second such client does
    # not take the first one over.
    a = clients.raw(broker)
    ack = a.handshake("", clean=True)
    assert ack.session_present == 0
    b = clients.raw(broker)
    b.handshake("", clean=True)
    a.ping()
    b.ping()
    # both are full clients: b's message reaches a's subscription
    a.subscribe([("gen/id", 0)])
    b.publish("gen/id", b"hi")
    assert a.expect_publish().payload == b"hi"


def test_v311_mqtt_3_1_3_8_empty_client_id_persistent_rejected(broker, clients):
    c = clients.raw(broker)
    c.send(m.connect("", clean=False))
    # [MQTT-3.1.3-8] 3.1.1 and [MQTT-3.1.3-9] 3.1.1: CONNACK 0x02 then close
    # ([MQTT-3.2.2-5] 3.1.1)
    got = c.expect_closed()
    assert [p.type for p in got] == [m.CONNACK], got
    assert got[0].rc == 0x02
    # [MQTT-3.2.2-4] 3.1.1: Session Present 0 with a non-zero return code
    assert got[0].session_present == 0


def test_v311_mqtt_3_1_4_5_refused_connect_later_packets_ignored(broker, clients):
    watcher = clients.raw(broker)
    watcher.handshake("watch5")
    watcher.subscribe([("refused/#", 0)])
    c = clients.raw(broker)
    # CONNECT that is refused (empty id, CleanSession=0), with a PUBLISH and
    # a SUBSCRIBE pipelined behind it in the same write
    c.send(m.connect("", clean=False)
           + m.publish("refused/pub", b"must not arrive")
           + m.subscribe(1, [("refused/#", 0)]))
    got = c.expect_closed()
    assert got and got[0].type == m.CONNACK and got[0].rc == 0x02, got
    # [MQTT-3.1.4-5] 3.1.1: nothing after a refused CONNECT is processed:
    # no SUBACK, and the PUBLISH never reaches a subscriber (bounded wait)
    assert all(p.type == m.CONNACK for p in got), got
    marker = clients.raw(broker)
    marker.handshake("marker5")
    watcher.expect_marker(marker, "refused/marker")


def test_v311_mqtt_3_1_4_2_takeover_closes_old_connection(broker, clients):
    old = clients.raw(broker)
    old.handshake("dupid")
    new = clients.raw(broker)
    new.handshake("dupid")
    # [MQTT-3.1.4-2] 3.1.1: the server closes the existing connection
    old.expect_closed()
    new.ping()


def test_v311_mqtt_3_1_4_2_takeover_by_paho(broker, clients):
    old = clients.raw(broker)
    old.handshake("dupid-paho")
    new = clients.paho(broker, client_id="dupid-paho")
    new.connect()
    # [MQTT-3.1.4-2] 3.1.1: the old connection is closed, the new one serves
    old.expect_closed()
    assert new.subscribe("tk/x", 1) == [1]
    new.publish("tk/x", b"after takeover", qos=1)
    assert new.get_message().payload == b"after takeover"
    assert not new.disconnected.is_set()


def test_v31_takeover(broker, clients):
    old = clients.raw(broker)
    old.handshake("dup31", version=3)
    new = clients.raw(broker)
    new.handshake("dup31", version=3)
    old.expect_closed()
    new.ping()


def test_paho_v31_and_v311_connect(broker, clients):
    for proto in (mqtt.MQTTv31, mqtt.MQTTv311):
        p = clients.paho(broker, client_id="paho-%d" % proto, protocol=proto)
        flags = p.connect()
        # [MQTT-3.2.2-1] 3.1.1 (and MQTT 3.1): clean session -> no session
        assert flags.get("session present", 0) == 0
        p.disconnect()


def _connect_until_accepted(broker, clients, client_id, deadline):
    """Connect, retrying while the broker still counts connections that
    were closed just before (it notices closes asynchronously)."""
    while True:
        c = clients.raw(broker)
        try:
            c.send(m.connect(client_id))
            pkt = c.recv(2.0)
            if pkt.type == m.CONNACK and pkt.rc == 0:
                return c
        except (m.Closed, TimeoutError, OSError):
            pass
        c.close()
        assert time.monotonic() < deadline, "connection %s never accepted" % client_id


def test_max_connections_enforced(start_broker, clients):
    limit = 3
    b = start_broker(MQD_MQTT_MAX_CONNECTIONS=limit)
    deadline = time.monotonic() + 10
    conns = [_connect_until_accepted(b, clients, "mc%d" % i, deadline)
             for i in range(limit)]
    # one more: never accepted, closed (a CONNACK 0x03 before the close is
    # allowed)
    extra = clients.raw(b)
    try:
        extra.send(m.connect("mc-extra"))
        got = extra.expect_closed()
        assert not any(p.type == m.CONNACK and p.rc == 0 for p in got), got
    except (BrokenPipeError, ConnectionResetError):
        pass
    for c in conns:
        c.ping()
    # after one leaves, a new connection is accepted again
    conns[0].disconnect()
    _connect_until_accepted(b, clients, "mc-again", time.monotonic() + 10)


def test_connect_timeout_closes_silent_connection(start_broker):
    b = start_broker(MQD_MQTT_CONNECT_TIMEOUT_MS=500)
    s = socket.create_connection((b.host, b.port))
    try:
        t0 = time.monotonic()
        # §3.1.4 (3.1.1 and 5.0 SHOULD): no CONNECT within a reasonable time
        # -> the broker closes; mqd: MQD_MQTT_CONNECT_TIMEOUT_MS
        assert m.expect_closed(s, timeout=5) == b""
        assert time.monotonic() - t0 >= 0.3
    finally:
        s.close()


def test_connect_timeout_closes_partial_connect(start_broker):
    b = start_broker(MQD_MQTT_CONNECT_TIMEOUT_MS=500)
    s = socket.create_connection((b.host, b.port))
    try:
        # half a CONNECT, then silence: still "no CONNECT" -> closed
        s.sendall(m.connect("half")[:7])
        assert m.expect_closed(s, timeout=5) == b""
    finally:
        s.close()


def test_connect_timeout_does_not_hit_connected_client(start_broker, clients):
    b = start_broker(MQD_MQTT_CONNECT_TIMEOUT_MS=300)
    c = clients.raw(b)
    c.handshake("ct-ok", keepalive=0)
    # a connected client outlives the CONNECT timeout (bounded wait)
    c.expect_nothing(1.0)
    c.ping()
