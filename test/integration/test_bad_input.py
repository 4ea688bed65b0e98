"""Malformed packets and protocol violations: the broker closes the
offending connection (3.1.1 has no error codes), acts on nothing in the
bad packet, and keeps serving everyone else."""

import random
import socket
import struct
import time

import pytest

import mqtt_raw as m

def _connect_body(flags, payload, name=b"MQTT", level=4, keepalive=60):
    return m.enc_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive) + payload


def _bad_connect(flags, payload):
    return m.packet(m.CONNECT, 0, _connect_body(flags, payload))


S = m.enc_str

BAD_CONNECTS = [
    # [MQTT-3.1.2-13] 3.1.1 (and [MQTT-3.1.2-11] 3.1.1): Will Flag 0, Will QoS 1
    pytest.param(_bad_connect(0x02 | 0x08, S("wq")), id="mqtt_3_1_2_13_will_qos_without_will"),
    # [MQTT-3.1.2-15] 3.1.1: Will Flag 0, Will Retain 1
    pytest.param(_bad_connect(0x02 | 0x20, S("wr")), id="mqtt_3_1_2_15_will_retain_without_will"),
    # [MQTT-3.1.2-14] 3.1.1: Will QoS 3
    pytest.param(_bad_connect(0x02 | 0x04 | 0x18, S("w3") + S("w/t") + S("x")),
                 id="mqtt_3_1_2_14_will_qos_3"),
    # [MQTT-3.1.2-9] 3.1.1, [MQTT-3.1.3-1] 3.1.1: Will Flag 1, no Will Topic/Message
    pytest.param(_bad_connect(0x02 | 0x04, S("wm")), id="mqtt_3_1_2_9_will_fields_missing"),
    # [MQTT-3.1.2-9] 3.1.1: Will Topic present, Will Message missing
    pytest.param(_bad_connect(0x02 | 0x04, S("wm2") + S("w/t")), id="mqtt_3_1_2_9_will_message_missing"),
    # [MQTT-3.1.2-19] 3.1.1: User Name Flag 1, no user name
    pytest.param(_bad_connect(0x02 | 0x80, S("un")), id="mqtt_3_1_2_19_username_missing"),
    # [MQTT-3.1.2-21] 3.1.1: Password Flag 1, no password
    pytest.param(_bad_connect(0x02 | 0x80 | 0x40, S("pw") + S("user")),
                 id="mqtt_3_1_2_21_password_missing"),
    # [MQTT-3.1.2-18] 3.1.1: User Name Flag 0 but a user name follows
    pytest.param(_bad_connect(0x02, S("un0") + S("user")), id="mqtt_3_1_2_18_username_without_flag"),
    # [MQTT-3.1.2-20] 3.1.1: Password Flag 0 but a password follows
    pytest.param(_bad_connect(0x02 | 0x80, S("pw0") + S("user") + S("pass")),
                 id="mqtt_3_1_2_20_password_without_flag"),
    # [MQTT-3.1.2-22] 3.1.1: Password Flag 1 with User Name Flag 0
    pytest.param(_bad_connect(0x02 | 0x40, S("pwnouser") + S("pass")),
                 id="mqtt_3_1_2_22_password_without_username"),
    # [MQTT-3.1.3-3] 3.1.1: no Client Identifier at all
    pytest.param(_bad_connect(0x02, b""), id="mqtt_3_1_3_3_client_id_missing"),
    # [MQTT-3.1.3-4] 3.1.1, [MQTT-1.5.3-1] 3.1.1: ClientID not UTF-8 (0xFF)
    pytest.param(_bad_connect(0x02, S(b"id\xff")), id="mqtt_3_1_3_4_client_id_not_utf8"),
    # [MQTT-1.5.3-1] 3.1.1: UTF-16 surrogate U+D800 encoded in UTF-8
    pytest.param(_bad_connect(0x02, S(b"id\xed\xa0\x80")), id="mqtt_1_5_3_1_client_id_surrogate"),
    # [MQTT-1.5.3-1] 3.1.1: overlong encoding of '/'
    pytest.param(_bad_connect(0x02, S(b"id\xc0\xaf")), id="mqtt_1_5_3_1_client_id_overlong"),
    # [MQTT-1.5.3-2] 3.1.1: U+0000 in the ClientID
    pytest.param(_bad_connect(0x02, S(b"id\x00x")), id="mqtt_1_5_3_2_client_id_nul"),
    # [MQTT-3.1.3-10] 3.1.1: Will Topic not UTF-8
    pytest.param(_bad_connect(0x02 | 0x04, S("wt8") + S(b"w/\xff") + S("x")),
                 id="mqtt_3_1_3_10_will_topic_not_utf8"),
    # [MQTT-3.1.3-11] 3.1.1: User Name not UTF-8
    pytest.param(_bad_connect(0x02 | 0x80, S("un8") + S(b"u\xfe")),
                 id="mqtt_3_1_3_11_username_not_utf8"),
    # [MQTT-4.7.1-1] 3.1.1: wildcard in the Will Topic (a Topic Name)
    pytest.param(_bad_connect(0x02 | 0x04, S("wwild") + S("w/+") + S("x")),
                 id="mqtt_4_7_1_1_will_topic_wildcard"),
    # §2.1.4: Remaining Length longer than the fields (truncated client id)
    pytest.param(m.packet(m.CONNECT, 0, _connect_body(0x02, struct.pack("!H", 10) + b"abc")),
                 id="client_id_length_past_end"),
    # [MQTT-2.2.2-2] 3.1.1: CONNECT fixed-header flags must be 0000
    pytest.param(m.packet(m.CONNECT, 1, _connect_body(0x02, S("cflags"))),
                 id="mqtt_2_2_2_2_connect_header_flags"),
]


@pytest.mark.parametrize("data", BAD_CONNECTS)
def test_v311_mqtt_3_1_4_1_invalid_connect_closed_without_connack(broker, clients, data):
    c = clients.raw(broker)
    c.send(data)
    # [MQTT-3.1.4-1] 3.1.1: a CONNECT that breaks section 3.1 -> close without
    # a CONNACK (the case id names the statement broken)
    assert c.expect_closed() == []
    # the broker still serves
    clients.raw(broker).handshake("after-bad-connect")


def _pid0_sub():
    return m.packet(m.SUBSCRIBE, 2, struct.pack("!H", 0) + S("a/b") + b"\x00")


BAD_AFTER_CONNECT = [
    # [MQTT-3.3.1-4] 3.1.1: PUBLISH with QoS 3
    pytest.param(m.publish("bad/q3", b"x", flags=0x06, pid=1), id="mqtt_3_3_1_4_publish_qos3"),
    # [MQTT-3.3.2-2] 3.1.1, [MQTT-4.7.1-1] 3.1.1: wildcards in a Topic Name
    pytest.param(m.publish("bad/+", b"x"), id="mqtt_3_3_2_2_publish_plus"),
    pytest.param(m.publish("bad/#", b"x"), id="mqtt_3_3_2_2_publish_hash"),
    pytest.param(m.publish("#", b"x", qos=1, pid=3), id="mqtt_3_3_2_2_publish_hash_qos1"),
    # [MQTT-3.3.2-1] 3.1.1, [MQTT-1.5.3-1] 3.1.1: Topic Name not valid UTF-8
    pytest.param(m.publish(b"bad/\xff", b"x"), id="mqtt_3_3_2_1_publish_topic_not_utf8"),
    pytest.param(m.publish(b"bad/\xed\xbf\xbf", b"x"), id="mqtt_1_5_3_1_publish_topic_surrogate"),
    pytest.param(m.publish(b"bad/\xe0\x80\xaf", b"x"), id="mqtt_1_5_3_1_publish_topic_overlong"),
    # [MQTT-1.5.3-2] 3.1.1, [MQTT-4.7.3-2] 3.1.1: U+0000 in a Topic Name
    pytest.param(m.publish(b"bad/\x00x", b"x"), id="mqtt_4_7_3_2_publish_topic_nul"),
    # [MQTT-4.7.3-1] 3.1.1: zero-length Topic Name
    pytest.param(m.publish(b"", b"x"), id="mqtt_4_7_3_1_publish_topic_empty"),
    # [MQTT-3.3.2-1] 3.1.1: Topic Name missing (length runs past the packet)
    pytest.param(m.packet(m.PUBLISH, 0, struct.pack("!H", 50) + b"bad"),
                 id="mqtt_3_3_2_1_publish_topic_truncated"),
    # [MQTT-2.3.1-1] 3.1.1: QoS 1 PUBLISH with Packet Identifier 0
    pytest.param(m.publish("bad/pid0", b"x", qos=1, pid=0), id="mqtt_2_3_1_1_publish_pid0"),
    # [MQTT-3.6.1-1] 3.1.1: PUBREL fixed-header flags not 0010
    pytest.param(m.pubrel(1, flags=0), id="mqtt_3_6_1_1_pubrel_flags"),
    # [MQTT-3.8.1-1] 3.1.1, [MQTT-2.2.2-2] 3.1.1: SUBSCRIBE flags not 0010
    pytest.param(m.subscribe(1, [("a/b", 0)], flags=0), id="mqtt_3_8_1_1_subscribe_flags"),
    # [MQTT-3.8.3-3] 3.1.1: SUBSCRIBE without any filter
    pytest.param(m.subscribe(1, []), id="mqtt_3_8_3_3_subscribe_empty"),
    # [MQTT-3.8.3-4] 3.1.1: requested QoS 3 / reserved bits set
    pytest.param(m.subscribe(1, [("a/b", 3)]), id="mqtt_3_8_3_4_subscribe_qos3"),
    pytest.param(m.subscribe(1, [("a/b", 0x04)]), id="mqtt_3_8_3_4_subscribe_reserved_bits"),
    # [MQTT-3.8.3-1] 3.1.1: Topic Filter not valid UTF-8
    pytest.param(m.subscribe(1, [(b"a/\xff", 0)]), id="mqtt_3_8_3_1_subscribe_filter_not_utf8"),
    # [MQTT-4.7.3-2] 3.1.1: U+0000 in a Topic Filter
    pytest.param(m.subscribe(1, [(b"a/\x00", 0)]), id="mqtt_4_7_3_2_subscribe_filter_nul"),
    # [MQTT-2.3.1-1] 3.1.1: SUBSCRIBE with Packet Identifier 0
    pytest.param(_pid0_sub(), id="mqtt_2_3_1_1_subscribe_pid0"),
    # [MQTT-3.10.1-1] 3.1.1: UNSUBSCRIBE flags not 0010
    pytest.param(m.unsubscribe(1, ["a/b"], flags=0), id="mqtt_3_10_1_1_unsubscribe_flags"),
    # [MQTT-3.10.3-2] 3.1.1: UNSUBSCRIBE without any filter
    pytest.param(m.unsubscribe(1, []), id="mqtt_3_10_3_2_unsubscribe_empty"),
    # [MQTT-3.10.3-1] 3.1.1: UNSUBSCRIBE filter not valid UTF-8
    pytest.param(m.unsubscribe(1, [b"a/\xc3"]), id="mqtt_3_10_3_1_unsubscribe_not_utf8"),
    # [MQTT-2.3.1-1] 3.1.1: UNSUBSCRIBE with Packet Identifier 0
    pytest.param(m.unsubscribe(0, ["a/b"]), id="mqtt_2_3_1_1_unsubscribe_pid0"),
    # [MQTT-2.2.2-2] 3.1.1: reserved flags of PINGREQ not 0000
    pytest.param(m.pingreq(flags=1), id="mqtt_2_2_2_2_pingreq_flags"),
    # [MQTT-3.14.1-1] 3.1.1: DISCONNECT flags not 0000
    pytest.param(m.disconnect(flags=2), id="mqtt_3_14_1_1_disconnect_flags"),
    # §2.1.2 / [MQTT-4.8.0-1] 3.1.1: reserved packet types 0 and 15
    pytest.param(m.packet(0, 0), id="packet_type_0"),
    pytest.param(m.packet(15, 0), id="packet_type_15"),
    # §2.1.2: server-to-client packet types sent by a client
    pytest.param(m.packet(m.CONNACK, 0, b"\x00\x00"), id="connack_from_client"),
    pytest.param(m.packet(m.SUBACK, 0, b"\x00\x01\x00"), id="suback_from_client"),
    pytest.param(m.packet(m.PINGRESP, 0), id="pingresp_from_client"),
    # Remaining Length with a continuation bit on its 4th byte (5 bytes)
    pytest.param(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), id="remaining_length_5_bytes"),
    # §2.1.4: surplus bytes inside a packet
    pytest.param(m.packet(m.PINGREQ, 0, b"\x00"), id="pingreq_with_body"),
    pytest.param(m.packet(m.PUBACK, 0, b"\x00\x01\x00"), id="puback_too_long"),
    pytest.param(m.packet(m.DISCONNECT, 0, b"\x00"), id="disconnect_with_body"),
]


@pytest.mark.parametrize("data", BAD_AFTER_CONNECT)
def test_v311_mqtt_4_8_0_1_protocol_violation_closes(broker, clients, data):
    watcher = clients.raw(broker)
    watcher.handshake("watcher")
    watcher.subscribe([("#", 0)])
    c = clients.raw(broker)
    c.handshake("offender")
    c.send(data)
    # [MQTT-4.8.0-1] 3.1.1: a protocol violation closes the connection it
    # came on (the case id names the statement broken); nothing is answered
    got = c.expect_closed()
    assert not any(p.type in (m.SUBACK, m.UNSUBACK, m.PUBACK, m.PUBREC,
                              m.PUBCOMP, m.PINGRESP) for p in got), got
    # nothing of the bad packet reached a subscriber (the next thing the
    # watcher sees is a marker published after the close), and the broker
    # keeps serving new clients
    marker = clients.raw(broker)
    marker.handshake("after-violation")
    watcher.expect_marker(marker, "marker/t")


def test_v311_mqtt_3_3_2_2_wildcard_publish_not_routed_to_matching_filter(broker, clients):
    # A subscriber whose filter would match the literal wildcard topic
    watcher = clients.raw(broker)
    watcher.handshake("wild-watch")
    watcher.subscribe([("w/+", 0), ("w/#", 0)])
    c = clients.raw(broker)
    c.handshake("wild-pub")
    c.send(m.publish("w/+", b"no"))
    # [MQTT-3.3.2-2] 3.1.1: closed and not delivered (the marker published
    # after the close is the first thing the watcher gets)
    c.expect_closed()
    marker = clients.raw(broker)
    marker.handshake("wild-mark")
    watcher.expect_marker(marker, "w/m")


# --------------------------------------------------------------------------
# Maximum packet size (mqd: MQD_MQTT_MAX_PACKET_SIZE, whole packet in bytes)
# --------------------------------------------------------------------------

MAX_PACKET = 1024


def _publish_of_size(topic, total, qos=0, pid=None):
    """A PUBLISH whose whole encoding is exactly `total` bytes."""
    overhead = len(m.publish(topic, b"", qos=qos, pid=pid))
    n = total - overhead
    pkt = m.publish(topic, b"p" * n, qos=qos, pid=pid)
    if len(pkt) != total:          # the Remaining Length grew a byte
        pkt = m.publish(topic, b"p" * (n - (len(pkt) - total)), qos=qos, pid=pid)
    assert len(pkt) == total
    return pkt


def test_max_packet_size_oversized_publish_closes(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_PACKET_SIZE=MAX_PACKET)
    sub = clients.raw(b)
    sub.handshake("mps-sub")
    sub.subscribe([("mps/#", 1)])
    pub = clients.raw(b)
    pub.handshake("mps-pub")
    # under the limit: delivered
    pub.send(_publish_of_size("mps/small", MAX_PACKET // 2, qos=1, pid=1))
    assert pub.expect(m.PUBACK).pid == 1
    assert sub.expect_publish().topic == b"mps/small"
    # over the limit: closed, no PUBACK, not delivered (bounded wait)
    pub.send(_publish_of_size("mps/big", 2 * MAX_PACKET, qos=1, pid=2))
    got = pub.expect_closed()
    assert not any(p.type == m.PUBACK for p in got), got
    marker = clients.raw(b)
    marker.handshake("mps-mark")
    sub.expect_marker(marker, "mps/mark")


def test_max_packet_size_huge_remaining_length_closes_at_header(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_PACKET_SIZE=MAX_PACKET)
    c = clients.raw(b)
    c.handshake("mps-hdr")
    # only the fixed header of a 100 MB PUBLISH: the broker must refuse on
    # the Remaining Length alone, without waiting for (or buffering) a body
    c.send(bytes([0x30]) + m.enc_varint(100 * 1024 * 1024))
    c.expect_closed(timeout=5)


def test_max_packet_size_applies_to_connect(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_PACKET_SIZE=MAX_PACKET)
    c = clients.raw(b)
    c.send(m.connect("big", will={"topic": "w", "payload": b"x" * (2 * MAX_PACKET)}))
    got = c.expect_closed()
    assert not any(p.type == m.CONNACK and p.rc == 0 for p in got), got


def test_max_packet_size_is_whole_packet_boundary(start_broker, clients):
    # mqd contract: the limit counts the whole packet (fixed header included):
    # exactly MAX_PACKET bytes pass, MAX_PACKET + 1 bytes close
    b = start_broker(MQD_MQTT_MAX_PACKET_SIZE=MAX_PACKET)
    c = clients.raw(b)
    c.handshake("mps-edge")
    c.send(_publish_of_size("edge/t", MAX_PACKET, qos=1, pid=5))
    assert c.expect(m.PUBACK).pid == 5
    c.send(_publish_of_size("edge/t", MAX_PACKET + 1, qos=1, pid=6))
    got = c.expect_closed()
    assert not any(p.type == m.PUBACK for p in got), got


# --------------------------------------------------------------------------
# Connections that end in the middle of a packet, and garbage
# --------------------------------------------------------------------------

def _pubsub_works(b, clients, tag):
    sub = clients.raw(b)
    sub.handshake("ok-sub-" + tag)
    sub.subscribe([("ok/" + tag, 1)])
    pub = clients.raw(b)
    pub.handshake("ok-pub-" + tag)
    pub.publish("ok/" + tag, b"fine", qos=1)
    assert sub.expect_publish().payload == b"fine"
    sub.disconnect()
    pub.disconnect()


def test_disconnect_mid_packet_no_crash(broker, clients):
    keep_sub = clients.raw(broker)
    keep_sub.handshake("steady-sub")
    keep_sub.subscribe([("steady/t", 1)])
    keep_pub = clients.raw(broker)
    keep_pub.handshake("steady-pub")
    stream = (m.connect("cutter", will={"topic": "cut/will", "payload": b"w"})
              + m.subscribe(1, [("cut/#", 2)])
              + m.publish("cut/a", b"A" * 300, qos=2, pid=2)
              + m.pubrel(2)
              + m.publish("cut/b", b"B" * 70000, qos=1, pid=3))
    # cut the stream at many points, including inside the fixed header,
    # inside the Remaining Length, inside strings and inside a large payload
    cuts = sorted(set([1, 2, 5, 12, 14, 20, 30, 40, 60, 100, 200, 400,
                       len(stream) - 60000, len(stream) - 1]))
    for i, cut in enumerate(cuts):
        s = socket.create_connection((broker.host, broker.port))
        s.sendall(stream[:cut])
        s.close()
        if i % 4 == 0:
            # others are served meanwhile
            keep_pub.publish("steady/t", b"%d" % i, qos=1)
            assert keep_sub.expect_publish().payload == b"%d" % i
    # a reset (RST) in the middle of a packet
    s = socket.create_connection((broker.host, broker.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(stream[:len(stream) - 30000])
    s.close()
    broker.assert_alive()
    _pubsub_works(broker, clients, "mid")


def test_garbage_bytes_no_crash(broker, clients):
    rng = random.Random(20240601)   # fixed seed: reproducible
    deadline = time.monotonic() + 20
    for i in range(40):
        assert time.monotonic() < deadline
        s = socket.create_connection((broker.host, broker.port))
        try:
            if i % 2:
                s.sendall(m.connect("junk%d" % i))
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            s.sendall(junk)
        except OSError:
            pass        # the broker may already have closed on us
        s.close()
    broker.assert_alive()
    _pubsub_works(broker, clients, "junk")
