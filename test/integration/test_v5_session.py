"""MQTT 5.0 Clean Start and Session Expiry Interval: a session with expiry 0
ends with its connection, one with N > 0 outlives it for N seconds (QoS 1/2
messages queued, Session Present on resume) and is gone after; Clean Start 1
discards a stored session; DISCONNECT may change the expiry, except from 0
to non-zero (Protocol Error)."""

import threading

import mqtt5_raw as m5

SEI = m5.SESSION_EXPIRY_INTERVAL


def _c5(clients, broker):
    return m5.client(clients, broker)


def _publisher(clients, broker, cid="sess-pub"):
    p = _c5(clients, broker)
    p.handshake(cid)
    return p


def _pause(seconds):
    """The passage of time is what these tests check (session expiry):
    a bounded wait on an Event nobody sets."""
    threading.Event().wait(seconds)


def _expiry_grace(broker):
    # mosquitto looks at session expiry about once a second
    return 1.0 if broker.is_mqd else 2.5


def test_v5_3_1_2_11_2_no_expiry_session_ends_with_connection(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-zero", clean_start=False)          # no Session Expiry
    assert c.subscribe([("sz/t", 1)]) == [1]
    c.disconnect()
    p = _publisher(clients, broker)
    p.publish("sz/t", b"lost", qos=1)
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-zero", clean_start=False)
    # §3.1.2.11.2 v5: Session Expiry absent -> the session ended with the
    # connection: [MQTT-3.2.2-3] v5 Session Present 0 and [MQTT-3.1.2-6] v5 a
    # new, empty session (no subscription, no queued message)
    assert ack.session_present == 0
    c2.subscribe([("sz/mark", 1)])
    p.publish("sz/t", b"not subscribed", qos=1)
    p.publish("sz/mark", b"mark", qos=1)
    got = c2.expect_publish()
    assert got.topic == b"sz/mark", got


def test_v5_mqtt_3_1_2_23_session_kept_and_messages_queued(broker, clients):
    c = _c5(clients, broker)
    ack = c.handshake("sess-keep", clean_start=True, props={SEI: 60})
    assert ack.session_present == 0                       # [MQTT-3.2.2-2] v5
    assert c.subscribe([("sk/#", 2)]) == [2]
    c.disconnect()
    p = _publisher(clients, broker)
    p.publish("sk/q0", b"zero", qos=0)
    p.publish("sk/q1", b"one", qos=1)
    p.publish("sk/q2", b"two", qos=2)
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-keep", clean_start=False, props={SEI: 60})
    # [MQTT-3.1.2-23] v5: expiry 60 -> the session outlived the connection;
    # [MQTT-3.1.2-5] v5 / [MQTT-3.2.2-3] v5: resumed, Session Present 1
    assert ack.session_present == 1
    # [MQTT-4.5.0-1] v5: the QoS 1 and 2 messages were queued in it (QoS 0
    # optional)
    # the subscription is part of the session too: a live message follows
    p.publish("sk/live", b"live", qos=1)
    got = {}
    while b"sk/live" not in got:
        pk = c2.expect_publish()
        got[pk.topic] = (pk.payload, pk.qos)
    got.pop(b"sk/q0", None)
    assert got == {b"sk/q1": (b"one", 1), b"sk/q2": (b"two", 2),
                   b"sk/live": (b"live", 1)}, got
    c2.disconnect(props={SEI: 0})


def test_v5_mqtt_4_1_0_2_session_gone_after_expiry(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-exp", props={SEI: 1})
    assert c.subscribe([("se/t", 1)]) == [1]
    c.disconnect()
    _pause(1.0 + _expiry_grace(broker))
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-exp", clean_start=False)
    # [MQTT-4.1.0-2] v5: the session was deleted once the Session Expiry
    # Interval (1 s) had passed -> Session Present 0 ([MQTT-3.2.2-3] v5)
    assert ack.session_present == 0


def test_v5_mqtt_3_1_2_23_session_present_before_expiry(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-short", props={SEI: 3})
    assert c.subscribe([("ss/t", 1)]) == [1]
    c.disconnect()
    c2 = _c5(clients, broker)
    # [MQTT-3.1.2-23] v5: reconnected well within the 3 s -> still there
    ack = c2.handshake("sess-short", clean_start=False)
    assert ack.session_present == 1
    c2.disconnect()


def test_v5_mqtt_3_1_2_4_clean_start_discards_session(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-clean", props={SEI: 60})
    assert c.subscribe([("sc/t", 1)]) == [1]
    c.disconnect()
    p = _publisher(clients, broker)
    p.publish("sc/t", b"queued", qos=1)
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-clean", clean_start=True, props={SEI: 60})
    # [MQTT-3.1.2-4] v5: Clean Start 1 throws the stored session away
    # (subscription and queued message); [MQTT-3.2.2-2] v5 Session Present 0
    assert ack.session_present == 0
    c2.subscribe([("sc/mark", 1)])
    p.publish("sc/t", b"after", qos=1)
    p.publish("sc/mark", b"mark", qos=1)
    got = c2.expect_publish()
    assert got.topic == b"sc/mark", got
    c2.disconnect(props={SEI: 0})


def test_v5_3_14_2_2_2_disconnect_sets_expiry_to_zero(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-dz", props={SEI: 60})
    assert c.subscribe([("dz/t", 1)]) == [1]
    # §3.14.2.2.2 v5: the DISCONNECT's Session Expiry replaces the CONNECT's
    c.disconnect(props={SEI: 0})
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-dz", clean_start=False)
    assert ack.session_present == 0


def test_v5_3_14_2_2_2_disconnect_extends_expiry(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-dx", props={SEI: 1})
    assert c.subscribe([("dx/t", 1)]) == [1]
    # §3.14.2.2.2 v5: 1 s -> 60 s at DISCONNECT
    c.disconnect(props={SEI: 60})
    p = _publisher(clients, broker)
    p.publish("dx/t", b"kept", qos=1)
    _pause(1.0 + _expiry_grace(broker))
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-dx", clean_start=False)
    assert ack.session_present == 1
    got = c2.expect_publish()
    assert (got.topic, got.payload) == (b"dx/t", b"kept")
    c2.disconnect(props={SEI: 0})


def test_v5_3_14_2_2_2_disconnect_expiry_from_zero_is_protocol_error(broker, clients):
    w = _c5(clients, broker)
    w.handshake("dzp-watch")
    w.subscribe([("dzp/will", 0)])
    c = _c5(clients, broker)
    c.handshake("sess-dzp", will={"topic": "dzp/will", "payload": b"bad disconnect"})
    c.send(m5.disconnect(0, props={SEI: 30}))
    # §3.14.2.2.2 v5: Session Expiry 0 at CONNECT, non-zero at DISCONNECT ->
    # Protocol Error: DISCONNECT 0x82 and close; [MQTT-3.14.2-2] v5: that
    # server DISCONNECT carries no Session Expiry Interval (checked by
    # expect_disconnect)
    c.expect_disconnect(m5.PROTOCOL_ERROR)
    # not a valid DISCONNECT, so the Will was not discarded ([MQTT-3.14.4-3] v5)
    got = w.expect_publish()
    assert got.payload == b"bad disconnect"
    # and the session still ended with the connection (expiry stayed 0)
    c2 = _c5(clients, broker)
    assert c2.handshake("sess-dzp", clean_start=False).session_present == 0


def test_v5_mqtt_4_1_0_1_takeover_resumes_session(broker, clients):
    c = _c5(clients, broker)
    c.handshake("sess-take", props={SEI: 60})
    assert c.subscribe([("st/t", 1)]) == [1]
    c2 = _c5(clients, broker)
    ack = c2.handshake("sess-take", clean_start=False, props={SEI: 60})
    # [MQTT-3.1.4-3] v5: old connection closed with DISCONNECT 0x8E (the
    # session moves to the new connection: Session Present 1)
    c.expect_disconnect(m5.SESSION_TAKEN_OVER)
    assert ack.session_present == 1
    p = _publisher(clients, broker)
    p.publish("st/t", b"to the new one", qos=1)
    got = c2.expect_publish()
    assert got.payload == b"to the new one"
    c2.disconnect(props={SEI: 0})
