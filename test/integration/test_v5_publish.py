"""MQTT 5.0 PUBLISH: ack reason codes, properties forwarded unchanged,
Message Expiry Interval, Topic Aliases from the client, the client's
Maximum Packet Size, and 3.1.1 <-> 5.0 interoperability."""

import threading

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqtt_raw as m
import mqtt5_raw as m5


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def _v3(clients, broker, cid):
    c = clients.raw(broker)
    c.handshake(cid)
    return c


# --------------------------------------------------------------------------
# Ack reason codes
# --------------------------------------------------------------------------

def test_v5_mqtt_3_4_2_1_puback_no_matching_subscribers(broker, clients):
    p = _c5(clients, broker, "rc-pub")
    # [MQTT-3.4.2-1] v5: 0x10 when nobody subscribed, 0x00 otherwise
    assert p.publish("rc/none", b"x", qos=1).rc == m5.NO_MATCHING_SUBSCRIBERS
    s = _c5(clients, broker, "rc-sub")
    s.subscribe([("rc/some", 1)])
    assert p.publish("rc/some", b"x", qos=1).rc == m5.SUCCESS
    s.expect_publish()


def test_v5_mqtt_3_5_2_1_pubrec_no_matching_subscribers(broker, clients):
    p = _c5(clients, broker, "rc2-pub")
    # [MQTT-3.5.2-1] v5: PUBREC uses the PUBACK code set: 0x10 / 0x00
    # (publish() completes PUBREL/PUBCOMP for a code below 0x80)
    assert p.publish("rc2/none", b"x", qos=2).rc == m5.NO_MATCHING_SUBSCRIBERS
    s = _c5(clients, broker, "rc2-sub")
    s.subscribe([("rc2/some", 2)])
    assert p.publish("rc2/some", b"x", qos=2).rc == m5.SUCCESS
    s.expect_publish()


def test_v5_mqtt_3_7_2_1_pubcomp_packet_identifier_not_found(broker, clients):
    c = _c5(clients, broker, "rc-rel")
    c.send(m5.pubrel(4242))
    comp = c.expect(m.PUBCOMP)
    # [MQTT-3.7.2-1] v5: PUBREL for an unknown identifier -> PUBCOMP 0x92
    assert (comp.pid, comp.rc) == (4242, m5.PACKET_ID_NOT_FOUND), comp
    c.ping()


# --------------------------------------------------------------------------
# Properties forwarded unchanged
# --------------------------------------------------------------------------

USER_PROPS = [("k1", "v1"), ("k2", "v2"), ("k1", "v3"), ("\u00e9t\u00e9", "")]


def _all_props(expiry=None):
    props = [
        (m5.PAYLOAD_FORMAT_INDICATOR, 1),
        (m5.CONTENT_TYPE, "application/json; charset=utf-8"),
        (m5.RESPONSE_TOPIC, "reply/to/me"),
        (m5.CORRELATION_DATA, b"\x00\x01\xfe\xffcorr"),
    ]
    props += [(m5.USER_PROPERTY, kv) for kv in USER_PROPS]
    if expiry is not None:
        props.append((m5.MESSAGE_EXPIRY_INTERVAL, expiry))
    return props


def _check_forwarded(pk):
    p = pk.props
    # [MQTT-3.3.2-4] v5 Payload Format Indicator, [MQTT-3.3.2-20] v5 Content
    # Type, [MQTT-3.3.2-15] v5 Response Topic, [MQTT-3.3.2-16] v5 Correlation
    # Data: forwarded unchanged
    assert p.get(m5.PAYLOAD_FORMAT_INDICATOR) == 1, p
    assert p.get(m5.CONTENT_TYPE) == b"application/json; charset=utf-8", p
    assert p.get(m5.RESPONSE_TOPIC) == b"reply/to/me", p
    assert p.get(m5.CORRELATION_DATA) == b"\x00\x01\xfe\xffcorr", p
    # [MQTT-3.3.2-17] v5 every User Property, [MQTT-3.3.2-18] v5 in order
    assert pk.user_properties() == [(k.encode(), v.encode()) for k, v in USER_PROPS], p


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v5_mqtt_3_3_2_17_properties_forwarded_unchanged(broker, clients, qos):
    s = _c5(clients, broker, "props-sub")
    s.subscribe([("props/t", 2)])
    p = _c5(clients, broker, "props-pub")
    p.publish("props/t", b'{"a":1}', qos=qos, props=_all_props())
    pk = s.expect_publish()
    assert (pk.topic, pk.payload, pk.qos) == (b"props/t", b'{"a":1}', qos)
    _check_forwarded(pk)
    # no expiry was set: none may appear
    assert not pk.props.has(m5.MESSAGE_EXPIRY_INTERVAL)


def test_v5_mqtt_3_3_2_6_message_expiry_forwarded_live(broker, clients):
    s = _c5(clients, broker, "mei-sub")
    s.subscribe([("mei/t", 1)])
    p = _c5(clients, broker, "mei-pub")
    p.publish("mei/t", b"x", qos=1, props=_all_props(expiry=30))
    pk = s.expect_publish()
    _check_forwarded(pk)
    # [MQTT-3.3.2-6] v5: the remaining interval, at most the original
    mei = pk.props.get(m5.MESSAGE_EXPIRY_INTERVAL)
    assert mei is not None and 28 <= mei <= 30, pk


def test_v5_mqtt_3_3_2_5_expired_in_offline_queue_not_delivered(broker, clients):
    s = _c5(clients, broker, "mei-off", props={m5.SESSION_EXPIRY_INTERVAL: 60})
    s.subscribe([("meo/#", 1)])
    s.disconnect()
    p = _c5(clients, broker, "meo-pub")
    p.publish("meo/short", b"expires", qos=1, props={m5.MESSAGE_EXPIRY_INTERVAL: 1})
    p.publish("meo/long", b"stays", qos=1, props={m5.MESSAGE_EXPIRY_INTERVAL: 30})
    p.publish("meo/none", b"forever", qos=1)
    # time passing is the subject: wait past the 1 s expiry
    threading.Event().wait(2.2)
    s2 = _c5(clients, broker, "mei-off", clean_start=False,
             props={m5.SESSION_EXPIRY_INTERVAL: 60})
    assert s2.connack.session_present == 1
    p.publish("meo/mark", b"mark", qos=1)
    got = []
    while True:
        pk = s2.expect_publish()
        got.append(pk)
        if pk.topic == b"meo/mark":
            break
    topics = [g.topic for g in got]
    # [MQTT-3.3.2-5] v5: the expired copy is deleted from the queue
    assert b"meo/short" not in topics, got
    assert topics == [b"meo/long", b"meo/none", b"meo/mark"], got
    # [MQTT-3.3.2-6] v5: queued for >= 2 s -> remaining interval <= 28
    mei = got[0].props.get(m5.MESSAGE_EXPIRY_INTERVAL)
    assert mei is not None and 0 < mei <= 28, got[0]
    assert not got[1].props.has(m5.MESSAGE_EXPIRY_INTERVAL)
    s2.disconnect(props={m5.SESSION_EXPIRY_INTERVAL: 0})


def test_v5_properties_via_real_clients(broker, clients):
    # mosquitto_pub -V 5 publishes with properties; paho (v5) receives them
    sub = clients.paho5(broker, "paho5-sub")
    sub.connect()
    assert sub.subscribe("real/t", 1) == [1]
    clients.pub(broker, "-V", "5", "-i", "mpub5", "-t", "real/t", "-m", "hello",
                "-q", "1",
                "-D", "publish", "user-property", "a", "1",
                "-D", "publish", "user-property", "b", "2",
                "-D", "publish", "content-type", "text/plain",
                "-D", "publish", "correlation-data", "c0ffee",
                "-D", "publish", "response-topic", "real/reply")
    msg = sub.get_message()
    assert (msg.topic, msg.payload) == ("real/t", b"hello")
    pr = msg.properties
    # [MQTT-3.3.2-17] v5 / [MQTT-3.3.2-18] v5 / [MQTT-3.3.2-20] v5 /
    # [MQTT-3.3.2-15] v5 / [MQTT-3.3.2-16] v5
    assert pr.UserProperty == [("a", "1"), ("b", "2")]
    assert pr.ContentType == "text/plain"
    assert pr.CorrelationData == b"c0ffee"
    assert pr.ResponseTopic == "real/reply"


def test_v5_paho_publisher_to_raw_subscriber(broker, clients):
    s = _c5(clients, broker, "paho-raw-sub")
    s.subscribe([("pr/t", 2)])
    pub = clients.paho5(broker, "paho5-pub")
    pub.connect()
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("x", "1"), ("y", "2"), ("x", "3")]
    props.ContentType = "ct"
    pub.publish("pr/t", b"pp", qos=2, properties=props)
    pk = s.expect_publish()
    # [MQTT-3.3.2-18] v5 / [MQTT-3.3.2-20] v5
    assert pk.user_properties() == [(b"x", b"1"), (b"y", b"2"), (b"x", b"3")]
    assert pk.props.get(m5.CONTENT_TYPE) == b"ct"


# --------------------------------------------------------------------------
# Topic aliases (client -> server)
# --------------------------------------------------------------------------

def test_v5_3_3_4_topic_alias_set_and_used(broker, clients):
    s = _c5(clients, broker, "ta-sub")
    s.subscribe([("ta/#", 1)])
    p = _c5(clients, broker, "ta-pub")
    assert p.connack.props.get(m5.TOPIC_ALIAS_MAXIMUM, 0) >= 2
    # §3.3.4 v5: topic + alias -> sets the mapping, message goes to the topic
    p.publish("ta/one", b"1", qos=1, props={m5.TOPIC_ALIAS: 1})
    # §3.3.4 v5 / [MQTT-3.3.2-12] v5: empty topic + alias -> mapped topic
    p.publish("", b"2", qos=1, props={m5.TOPIC_ALIAS: 1})
    p.publish("", b"3", qos=0, props={m5.TOPIC_ALIAS: 1})
    # remapping alias 1 to another topic
    p.publish("ta/two", b"4", qos=1, props={m5.TOPIC_ALIAS: 1})
    p.publish("", b"5", qos=1, props={m5.TOPIC_ALIAS: 1})
    got = [s.expect_publish() for _ in range(5)]
    assert [(g.topic, g.payload) for g in got] == [
        (b"ta/one", b"1"), (b"ta/one", b"2"), (b"ta/one", b"3"),
        (b"ta/two", b"4"), (b"ta/two", b"5")], got
    # the subscriber set no Topic Alias Maximum: [MQTT-3.1.2-27] v5 the
    # server sends it no Topic Alias
    assert not [g for g in got if g.props.has(m5.TOPIC_ALIAS)], got


def test_v5_mqtt_3_3_2_8_topic_alias_zero_0x94(broker, clients):
    p = _c5(clients, broker, "ta0")
    p.send(m5.publish("ta/zero", b"x", props={m5.TOPIC_ALIAS: 0}))
    # [MQTT-3.3.2-8] v5: Topic Alias 0 -> DISCONNECT 0x94
    p.expect_disconnect(m5.TOPIC_ALIAS_INVALID)


def test_v5_mqtt_3_3_2_9_topic_alias_over_maximum_0x94(start_broker, clients):
    broker = start_broker(mqtt_topic_alias_maximum=3)
    p = _c5(clients, broker, "ta-max")
    assert p.connack.props.get(m5.TOPIC_ALIAS_MAXIMUM) == 3
    # [MQTT-3.3.2-12] v5: every alias up to the maximum is accepted
    p.publish("ta/three", b"x", qos=1, props={m5.TOPIC_ALIAS: 3})
    p.send(m5.publish("ta/four", b"x", qos=1, pid=9, props={m5.TOPIC_ALIAS: 4}))
    # [MQTT-3.3.2-9] v5 / [MQTT-3.2.2-17] v5: above the maximum -> 0x94
    p.expect_disconnect(m5.TOPIC_ALIAS_INVALID)


def test_v5_mqtt_3_2_2_18_topic_alias_when_maximum_zero_0x94(start_broker, clients):
    broker = start_broker(mqtt_topic_alias_maximum=0)
    p = _c5(clients, broker, "ta-none")
    assert p.connack.props.get(m5.TOPIC_ALIAS_MAXIMUM, 0) == 0
    p.send(m5.publish("ta/x", b"x", props={m5.TOPIC_ALIAS: 1}))
    # [MQTT-3.2.2-18] v5: no aliases allowed -> DISCONNECT 0x94
    p.expect_disconnect(m5.TOPIC_ALIAS_INVALID)


def test_v5_3_3_4_unknown_topic_alias_0x82(broker, clients):
    p = _c5(clients, broker, "ta-unknown")
    p.send(m5.publish("", b"x", props={m5.TOPIC_ALIAS: 2}))
    # §3.3.4 v5: empty topic with an alias never mapped -> DISCONNECT 0x82
    p.expect_disconnect(m5.PROTOCOL_ERROR)


def test_v5_3_3_2_1_empty_topic_without_alias_0x82(broker, clients):
    p = _c5(clients, broker, "ta-empty")
    p.send(m5.publish("", b"x"))
    # §3.3.2.1 v5: empty Topic Name and no Topic Alias -> Protocol Error,
    # DISCONNECT 0x82
    p.expect_disconnect(m5.PROTOCOL_ERROR)


def test_v5_mqtt_3_3_2_7_topic_alias_not_kept_across_connections(broker, clients):
    p = _c5(clients, broker, "ta-conn", props={m5.SESSION_EXPIRY_INTERVAL: 60})
    p.publish("ta/conn", b"x", qos=1, props={m5.TOPIC_ALIAS: 1})
    p.disconnect()
    p2 = _c5(clients, broker, "ta-conn", clean_start=False,
             props={m5.SESSION_EXPIRY_INTERVAL: 0})
    p2.send(m5.publish("", b"x", qos=1, pid=5, props={m5.TOPIC_ALIAS: 1}))
    # [MQTT-3.3.2-7] v5: a new connection starts with no aliases, even when
    # it resumes the session -> the alias is unknown: 0x82
    p2.expect_disconnect(m5.PROTOCOL_ERROR)


# --------------------------------------------------------------------------
# Maximum Packet Size of the client
# --------------------------------------------------------------------------

def test_v5_mqtt_3_1_2_25_message_over_client_maximum_packet_size_dropped(broker, clients):
    small = _c5(clients, broker, "mps-small", props={m5.MAXIMUM_PACKET_SIZE: 200})
    small.subscribe([("mps/#", 1)])
    big = _c5(clients, broker, "mps-big")
    big.subscribe([("mps/#", 1)])
    p = _c5(clients, broker, "mps-pub")
    p.publish("mps/large", b"L" * 500, qos=1)
    p.publish("mps/small", b"s", qos=1)
    # [MQTT-3.1.2-24] v5: never send a packet over the client's maximum;
    # [MQTT-3.1.2-25] v5: the message is dropped for that client only
    pk = small.expect_publish()
    assert (pk.topic, pk.payload) == (b"mps/small", b"s"), pk
    assert len(pk.raw) <= 200
    # the other subscriber gets both
    assert big.expect_publish().payload == b"L" * 500
    assert big.expect_publish().payload == b"s"
    # and the dropped message used no quota or queue slot: more flows
    p.publish("mps/after", b"a", qos=1)
    assert small.expect_publish().topic == b"mps/after"


# --------------------------------------------------------------------------
# 3.1.1 <-> 5.0
# --------------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v5_publisher_v311_subscriber_gets_plain_publish(broker, clients, qos):
    s3 = _v3(clients, broker, "v3-sub")
    s3.subscribe([("mix/#", 2)])
    p = _c5(clients, broker, "v5-pub")
    p.publish("mix/a", b"payload", qos=qos, retain=False,
              props=_all_props(expiry=60))
    # 3.1.1 subscriber: a plain 3.1.1 PUBLISH, no properties (checklist
    # conventions: never send 5.0-only fields to a 3.1.1 client); the
    # mqtt_raw decoder takes everything after the pid as payload, so any
    # property bytes would show up there
    pk = s3.expect_publish()
    assert (pk.topic, pk.payload, pk.qos) == (b"mix/a", b"payload", qos), pk
    if qos:
        assert len(pk.body) == 2 + 5 + 2 + 7
    else:
        assert len(pk.body) == 2 + 5 + 7


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v311_publisher_v5_subscriber(broker, clients, qos):
    s5 = _c5(clients, broker, "v5-sub")
    s5.subscribe([("mix3/#", 2)])
    p3 = _v3(clients, broker, "v3-pub")
    p3.publish("mix3/a", b"from 3.1.1", qos=qos)
    pk = s5.expect_publish()
    assert (pk.topic, pk.payload, pk.qos) == (b"mix3/a", b"from 3.1.1", qos), pk
    assert not pk.props.has(m5.USER_PROPERTY)
    assert not pk.props.has(m5.MESSAGE_EXPIRY_INTERVAL)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v311_v5_real_clients_both_ways(broker, clients, qos):
    # mosquitto_sub speaking 3.1.1 and paho speaking 5.0 on the same topic
    sub3 = clients.sub(broker, "-V", "311", "-t", "both/#", "-q", "2", "-C", "1")
    sub3.wait_subscribed()
    sub5 = clients.paho5(broker, "both-p5")
    sub5.connect()
    assert sub5.subscribe("both/#", 2) == [2]
    clients.pub(broker, "-V", "5", "-t", "both/v5", "-m", "five", "-q", str(qos),
                "-D", "publish", "user-property", "u", "p")
    assert sub3.get_message() == ("both/v5", "five", qos, False)
    msg = sub5.get_message()
    assert (msg.topic, msg.payload, msg.qos) == ("both/v5", b"five", qos)
    assert msg.properties.UserProperty == [("u", "p")]
    clients.pub(broker, "-V", "311", "-t", "both/v3", "-m", "three", "-q", str(qos))
    msg = sub5.get_message()
    assert (msg.topic, msg.payload, msg.qos) == ("both/v3", b"three", qos)


def test_v5_2_2_2_2_property_not_for_publish_is_malformed_0x81(broker, clients):
    p = _c5(clients, broker, "prop-id")
    # §2.2.2.2 v5: Session Expiry Interval is not a PUBLISH property ->
    # Malformed Packet, DISCONNECT 0x81
    p.send(m5.publish("pr/x", b"x", props=[(m5.SESSION_EXPIRY_INTERVAL, 5)]))
    p.expect_disconnect(m5.MALFORMED)


def test_v5_2_2_2_2_repeated_property_is_protocol_error_0x82(broker, clients):
    p = _c5(clients, broker, "prop-dup")
    # §2.2.2.2 v5: a property other than User Property given twice ->
    # Protocol Error, DISCONNECT 0x82
    p.send(m5.publish("pr/x", b"x", props=[(m5.CONTENT_TYPE, "a"),
                                            (m5.CONTENT_TYPE, "b")]))
    p.expect_disconnect(m5.PROTOCOL_ERROR)
