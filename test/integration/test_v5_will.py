"""MQTT 5.0 Will messages: Will Delay Interval, resume within the delay,
DISCONNECT 0x04 / 0x00, the Session ending before the delay, Will
properties, Will on a server-detected error."""

import time

import mqtt5_raw as m5

QUIET = 0.5
SEI = m5.SESSION_EXPIRY_INTERVAL
WDI = m5.WILL_DELAY_INTERVAL


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def _watcher(clients, broker, cid="w5-watch"):
    w = _c5(clients, broker, cid)
    w.subscribe([("w5/#", m5.sub_options(1)), ("w5mark/#", m5.sub_options(1))])
    return w


def _grace(broker):
    return 1.5 if broker.is_mqd else 3.0


def _marker(clients, broker, w, topic="w5mark/x"):
    """Event-based "no Will arrived": the next PUBLISH at w is the marker."""
    mk = _c5(clients, broker, "w5-marker-%d" % w.next_pid())
    mk.publish(topic, b"marker", qos=1)
    pk = w.expect_publish()
    assert pk.topic == topic.encode(), "expected the marker, got %r" % pk
    mk.disconnect()


def test_v5_mqtt_3_1_2_8_will_after_delay(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-delay", props={SEI: 30},
            will={"topic": "w5/delay", "payload": b"late", "qos": 1,
                  "props": {WDI: 1}})
    c.abort()
    t0 = time.monotonic()
    # [MQTT-3.1.2-8] v5: not before the Will Delay Interval...
    w.expect_nothing(QUIET)
    # ...and published once it has run out
    pk = w.expect_publish(timeout=1.0 + _grace(broker))
    assert (pk.topic, pk.payload) == (b"w5/delay", b"late")
    assert time.monotonic() - t0 >= 0.9
    c2 = _c5(clients, broker, "w5-delay", clean_start=True)
    c2.disconnect()


def test_v5_mqtt_3_1_3_9_no_will_when_session_resumed_within_delay(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-back", props={SEI: 30},
            will={"topic": "w5/back", "payload": b"must not", "props": {WDI: 1}})
    c.abort()
    c2 = _c5(clients, broker, "w5-back", clean_start=False, props={SEI: 30})
    assert c2.connack.session_present == 1
    # [MQTT-3.1.3-9] v5: resumed before the delay ran out -> no Will, also
    # after the delay would have passed
    w.expect_nothing(1.0 + _grace(broker))
    _marker(clients, broker, w)
    c2.disconnect(props={SEI: 0})


def test_v5_mqtt_3_1_2_8_will_when_session_ends_before_delay(broker, clients):
    w = _watcher(clients, broker)
    # Session Expiry 0: the session ends with the connection, long before
    # the 60 s Will Delay
    c = _c5(clients, broker, "w5-sess-end",
            will={"topic": "w5/sess-end", "payload": b"now", "props": {WDI: 60}})
    c.abort()
    # [MQTT-3.1.2-8] v5: published when the delay has passed or the Session
    # ends, whichever is first
    pk = w.expect_publish(timeout=_grace(broker) + 1.0)
    assert pk.payload == b"now"


def test_v5_mqtt_3_14_4_3_disconnect_with_will_0x04(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-04",
            will={"topic": "w5/04", "payload": b"with will", "qos": 1})
    # [MQTT-3.14.4-3] v5: DISCONNECT 0x04 leaves the Will to be published
    c.disconnect(rc=m5.DISCONNECT_WITH_WILL)
    pk = w.expect_publish()
    assert (pk.topic, pk.payload, pk.qos) == (b"w5/04", b"with will", 1)


def test_v5_mqtt_3_1_2_10_disconnect_0x00_discards_will(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-00", will={"topic": "w5/00", "payload": b"no"})
    # [MQTT-3.1.2-10] v5 / [MQTT-3.14.4-3] v5: DISCONNECT 0x00 deletes it
    c.disconnect(rc=0)
    _marker(clients, broker, w)


def test_v5_mqtt_3_1_2_10_short_disconnect_discards_will(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-short", will={"topic": "w5/short", "payload": b"no"})
    # §3.14.2.1 v5: Remaining Length 0 = reason 0x00
    c.send(m5.disconnect(None))
    c.expect_closed()
    _marker(clients, broker, w)


def test_v5_mqtt_3_1_2_10_disconnect_0x00_discards_delayed_will(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-00d", props={SEI: 30},
            will={"topic": "w5/00d", "payload": b"no", "props": {WDI: 1}})
    c.disconnect(rc=0)
    # the delay passes and nothing is published
    w.expect_nothing(1.0 + _grace(broker))
    _marker(clients, broker, w)
    c2 = _c5(clients, broker, "w5-00d", clean_start=True)
    c2.disconnect()


def test_v5_mqtt_3_1_3_10_will_properties_carried(broker, clients):
    w = _watcher(clients, broker)
    ups = [("z", "1"), ("a", "2"), ("z", "3")]
    props = [(m5.PAYLOAD_FORMAT_INDICATOR, 1), (m5.CONTENT_TYPE, "text/plain"),
             (m5.RESPONSE_TOPIC, "w5/resp"), (m5.CORRELATION_DATA, b"\x01\x02"),
             (m5.MESSAGE_EXPIRY_INTERVAL, 120)]
    props += [(m5.USER_PROPERTY, kv) for kv in ups]
    c = _c5(clients, broker, "w5-props",
            will={"topic": "w5/props", "payload": b"props", "qos": 1, "props": props})
    c.abort()
    pk = w.expect_publish()
    p = pk.props
    assert pk.payload == b"props"
    # [MQTT-3.1.3-10] v5: User Properties in their CONNECT order
    assert pk.user_properties() == [(k.encode(), v.encode()) for k, v in ups], p
    # §3.1.3.2 v5: the other Will properties go out with the Will
    assert p.get(m5.PAYLOAD_FORMAT_INDICATOR) == 1, p
    assert p.get(m5.CONTENT_TYPE) == b"text/plain", p
    assert p.get(m5.RESPONSE_TOPIC) == b"w5/resp", p
    assert p.get(m5.CORRELATION_DATA) == b"\x01\x02", p
    # §3.1.3.2.4 v5: Will Message Expiry Interval -> Message Expiry Interval
    mei = p.get(m5.MESSAGE_EXPIRY_INTERVAL)
    assert mei is not None and 115 <= mei <= 120, p
    # the Will Delay Interval is not a PUBLISH property
    assert not p.has(WDI)


def test_v5_mqtt_4_13_1_1_will_after_server_error_disconnect(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-err", will={"topic": "w5/err", "payload": b"error"})
    c.send(m5.publish("w5/q3", b"x", flags=0x06, pid=1))
    c.expect_disconnect(m5.MALFORMED)
    # [MQTT-3.14.4-3] v5: closed for an error, not a DISCONNECT 0x00 -> Will
    assert w.expect_publish().payload == b"error"


def test_v5_mqtt_3_1_2_15_will_retain(broker, clients):
    c = _c5(clients, broker, "w5-ret",
            will={"topic": "w5r/t", "payload": b"retained will", "qos": 1,
                  "retain": True})
    c.abort()
    # [MQTT-3.1.2-15] v5: Will Retain 1 -> stored as a retained message;
    # wait for it with a subscriber that polls by re-subscribing (bounded)
    deadline = time.monotonic() + 5.0
    s = _c5(clients, broker, "w5-ret-sub")
    while True:
        s.subscribe([("w5r/t", m5.sub_options(1))])
        try:
            pk = s.expect_publish(timeout=0.3)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "no retained Will within 5 s"
    assert (pk.payload, pk.retain) == (b"retained will", True)
    s.publish("w5r/t", b"", qos=1, retain=True)     # clean up


def test_v5_3_1_3_2_4_will_expiry_counts_from_publication(broker, clients):
    w = _watcher(clients, broker)
    c = _c5(clients, broker, "w5-exp",
            will={"topic": "w5/exp", "payload": b"fresh", "qos": 1,
                  "props": {m5.MESSAGE_EXPIRY_INTERVAL: 1}})
    # keep the connection alive (pings answered) for longer than the
    # will's expiry interval, so a clock started at CONNECT would run out
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        c.ping()
        w.expect_nothing(0.2)
    c.abort()
    # §3.1.3.2.4 v5: the interval is the will's lifetime once published,
    # so it arrives, carrying the interval it has left
    pk = w.expect_publish()
    assert (pk.topic, pk.payload) == (b"w5/exp", b"fresh")
    assert pk.props.get(m5.MESSAGE_EXPIRY_INTERVAL) == 1
