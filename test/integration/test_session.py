"""Sessions: CleanSession 0 sessions kept across reconnects (subscriptions,
offline queue, in-flight messages re-sent with DUP=1, inbound QoS 2 state),
CleanSession 1 discarding them, Session Present, and sessions keyed by
ClientID; with raw clients, paho and mosquitto_sub -c."""

import mqtt_raw as m


def _client(broker, clients, cid, **kw):
    c = clients.raw(broker)
    ack = c.handshake(cid, **kw)
    return c, ack


def _persistent_subscriber(broker, clients, cid, filters):
    c, ack = _client(broker, clients, cid, clean=False)
    c.subscribe(filters)
    return c, ack


def test_v311_mqtt_3_2_2_3_new_persistent_session_present_0(broker, clients):
    _c, ack = _client(broker, clients, "brand-new", clean=False)
    # [MQTT-3.2.2-3] 3.1.1: CleanSession=0 without a stored session ->
    # Session Present 0; [MQTT-3.1.2-4] 3.1.1: a new session is created
    assert (ack.rc, ack.session_present) == (0, 0)


def test_v311_mqtt_3_1_2_4_subscriptions_kept(broker, clients):
    c, _ = _persistent_subscriber(broker, clients, "keeper", [("keep/t", 1)])
    c.disconnect()
    c2, ack = _client(broker, clients, "keeper", clean=False)
    # [MQTT-3.2.2-2] 3.1.1: stored session -> Session Present 1
    assert ack.session_present == 1
    pub, _ = _client(broker, clients, "keep-pub")
    pub.publish("keep/t", b"no resubscribe needed", qos=1)
    # [MQTT-3.1.2-4] 3.1.1: communication resumes from the stored session:
    # the subscription is still there
    assert c2.expect_publish().payload == b"no resubscribe needed"


def test_v311_mqtt_3_1_2_5_offline_messages_queued(broker, clients):
    c, _ = _persistent_subscriber(broker, clients, "offline", [("off/#", 2)])
    c.disconnect()
    pub, _ = _client(broker, clients, "off-pub")
    pub.publish("off/1", b"q1-a", qos=1)
    pub.publish("off/2", b"q2-a", qos=2)
    pub.publish("off/0", b"q0", qos=0)
    pub.publish("off/1", b"q1-b", qos=1)
    pub.publish("off/2", b"q2-b", qos=2)
    c2, ack = _client(broker, clients, "offline", clean=False)
    assert ack.session_present == 1
    got = []
    pub.publish("off/end", b"end", qos=1)     # published after the reconnect
    while True:
        p = c2.expect_publish()
        if p.payload == b"end":
            break
        got.append((p.payload, p.qos))
    # [MQTT-3.1.2-5] 3.1.1 and [MQTT-4.5.0-1] 3.1.1: QoS 1 and 2 messages
    # that arrived while offline were kept and are delivered (in order per
    # topic and QoS); QoS 0 ones may or may not have been queued
    assert sorted(g for g in got if g[0] != b"q0") == sorted([
        (b"q1-a", 1), (b"q2-a", 2), (b"q1-b", 1), (b"q2-b", 2)])
    assert [g for g in got if g[1] == 1] == [(b"q1-a", 1), (b"q1-b", 1)]
    assert [g for g in got if g[1] == 2] == [(b"q2-a", 2), (b"q2-b", 2)]


def test_v311_mqtt_3_1_2_6_clean_session_discards_state(broker, clients):
    c, _ = _persistent_subscriber(broker, clients, "cleaner", [("cl/t", 1)])
    c.disconnect()
    pub, _ = _client(broker, clients, "cl-pub")
    pub.publish("cl/t", b"queued", qos=1)
    c2, ack = _client(broker, clients, "cleaner", clean=True)
    # [MQTT-3.2.2-1] 3.1.1: CleanSession=1 -> Session Present 0
    assert ack.session_present == 0
    # [MQTT-3.1.2-6] 3.1.1: the previous session is discarded: no queued
    # message and no subscription
    c2.subscribe([("cl/mark", 0)])
    pub.publish("cl/t", b"live", qos=1)
    c2.expect_marker(pub, "cl/mark")
    c2.disconnect()
    # [MQTT-3.1.2-6] 3.1.1: the clean session ended with its connection and
    # is not reused: CleanSession=0 now finds no session
    c3, ack = _client(broker, clients, "cleaner", clean=False)
    assert ack.session_present == 0
    c3.subscribe([("cl/mark", 0)])
    pub.publish("cl/t", b"live2", qos=1)
    c3.expect_marker(pub, "cl/mark")


def test_v311_mqtt_4_4_0_1_unacked_qos1_resent_with_dup(start_broker, clients):
    b = start_broker(MQD_MQTT_MAX_INFLIGHT=10)
    c, _ = _persistent_subscriber(b, clients, "resend1", [("rs1/t", 1)])
    pub, _ = _client(b, clients, "rs1-pub")
    for i in range(3):
        pub.publish("rs1/t", b"m%d" % i, qos=1)
    first = [c.expect(m.PUBLISH) for _ in range(3)]
    assert [p.dup for p in first] == [False] * 3
    c.abort()                 # none acknowledged
    c2, ack = _client(b, clients, "resend1", clean=False)
    assert ack.session_present == 1
    again = [c2.expect(m.PUBLISH) for _ in range(3)]
    # [MQTT-4.4.0-1] 3.1.1: unacknowledged PUBLISHes re-sent on reconnect;
    # [MQTT-3.3.1-1] 3.1.1: with DUP=1; [MQTT-2.3.1-3] 3.1.1: with their
    # original identifiers; [MQTT-4.6.0-1] 3.1.1: in the original order
    assert [(p.payload, p.pid, p.qos) for p in again] == \
        [(p.payload, p.pid, p.qos) for p in first]
    assert all(p.dup for p in again)
    for p in again:
        c2.send(m.puback(p.pid))
    # acknowledged now: gone for good ([MQTT-4.3.2-1] 3.1.1)
    c2.ping()
    c2.abort()
    c3, _ = _client(b, clients, "resend1", clean=False)
    c3.subscribe([("rs1/mark", 0)])
    c3.expect_marker(pub, "rs1/mark")


def test_v311_mqtt_4_4_0_1_unacked_qos2_publish_resent_with_dup(broker, clients):
    c, _ = _persistent_subscriber(broker, clients, "resend2", [("rs2/t", 2)])
    pub, _ = _client(broker, clients, "rs2-pub")
    pub.publish("rs2/t", b"two", qos=2)
    p = c.expect(m.PUBLISH)
    assert (p.qos, p.dup) == (2, False)
    c.abort()                 # no PUBREC
    c2, _ = _client(broker, clients, "resend2", clean=False)
    r = c2.expect(m.PUBLISH)
    # [MQTT-4.4.0-1] 3.1.1, [MQTT-3.3.1-1] 3.1.1, [MQTT-2.3.1-3] 3.1.1
    assert (r.payload, r.qos, r.pid, r.dup) == (b"two", 2, p.pid, True)
    c2.send(m.pubrec(r.pid))
    assert c2.expect(m.PUBREL).pid == r.pid
    c2.send(m.pubcomp(r.pid))
    c2.ping()


def test_v311_mqtt_4_4_0_1_pubrel_resent_not_publish(broker, clients):
    c, _ = _persistent_subscriber(broker, clients, "resend3", [("rs3/t", 2)])
    pub, _ = _client(broker, clients, "rs3-pub")
    pub.publish("rs3/t", b"three", qos=2)
    p = c.expect(m.PUBLISH)
    c.send(m.pubrec(p.pid))
    assert c.expect(m.PUBREL).pid == p.pid
    c.abort()                 # no PUBCOMP
    c2, _ = _client(broker, clients, "resend3", clean=False)
    r = c2.recv()
    # [MQTT-4.4.0-1] 3.1.1: the PUBREL is re-sent with the original id;
    # [MQTT-4.3.3-1] 3.1.1: after PUBREL the PUBLISH is never sent again
    assert (r.type, r.pid, r.flags) == (m.PUBREL, p.pid, 0x02), r
    c2.send(m.pubcomp(p.pid))
    c2.ping()


def test_v311_mqtt_4_3_3_2_inbound_qos2_state_survives_reconnect(broker, clients):
    sub, _ = _client(broker, clients, "in2-sub")
    sub.subscribe([("in2/t", 2), ("in2/mark", 0)])
    pub, _ = _client(broker, clients, "in2-pub", clean=False)
    pub.send(m.publish("in2/t", b"exactly once", qos=2, pid=5))
    assert pub.expect(m.PUBREC).pid == 5
    pub.abort()               # PUBREC lost, as far as the client knows
    pub2, ack = _client(broker, clients, "in2-pub", clean=False)
    assert ack.session_present == 1
    pub2.send(m.publish("in2/t", b"exactly once", qos=2, pid=5, dup=True))
    # [MQTT-4.3.3-2] 3.1.1: until PUBREL, a PUBLISH with that id is answered
    # with PUBREC and not delivered again (inbound QoS 2 state is session
    # state, so it holds across the reconnect)
    assert pub2.expect(m.PUBREC).pid == 5
    pub2.send(m.pubrel(5))
    assert pub2.expect(m.PUBCOMP).pid == 5
    assert sub.expect_publish().payload == b"exactly once"
    sub.expect_marker(pub2, "in2/mark")


def test_v311_mqtt_3_1_3_2_session_keyed_by_client_id(broker, clients):
    a, _ = _persistent_subscriber(broker, clients, "owner-a", [("own/a", 1)])
    bb, _ = _persistent_subscriber(broker, clients, "owner-b", [("own/b", 1)])
    a.disconnect()
    bb.disconnect()
    pub, _ = _client(broker, clients, "own-pub")
    pub.publish("own/a", b"for a", qos=1)
    # [MQTT-3.1.3-2] 3.1.1: state belongs to the ClientID: b resumes its own
    # session and gets nothing of a's
    b2, ack = _client(broker, clients, "owner-b", clean=False)
    assert ack.session_present == 1
    b2.subscribe([("own/mark", 0)])
    b2.expect_marker(pub, "own/mark")
    a2, ack = _client(broker, clients, "owner-a", clean=False)
    assert ack.session_present == 1
    assert a2.expect_publish().payload == b"for a"


def test_v311_mqtt_3_1_4_2_takeover_keeps_persistent_session(broker, clients):
    old, _ = _persistent_subscriber(broker, clients, "tko", [("tko/t", 1)])
    new, ack = _client(broker, clients, "tko", clean=False)
    # [MQTT-3.1.4-2] 3.1.1: the old connection is closed ...
    old.expect_closed()
    # ... and [MQTT-3.1.4-3] 3.1.1 CleanSession=0 processing resumes the
    # session ([MQTT-3.2.2-2] 3.1.1: Session Present 1)
    assert ack.session_present == 1
    pub, _ = _client(broker, clients, "tko-pub")
    pub.publish("tko/t", b"to the new connection", qos=1)
    assert new.expect_publish().payload == b"to the new connection"


def test_v311_mqtt_4_1_0_1_session_state_lives_with_connection(broker, clients):
    # a CleanSession=1 session lasts as long as its connection
    # ([MQTT-4.1.0-2] 3.1.1) and its state is kept meanwhile
    # ([MQTT-4.1.0-1] 3.1.1): an unacknowledged QoS 1 delivery stays
    # in flight, and the subscription keeps working
    c, _ = _client(broker, clients, "alive-sess", clean=True)
    c.subscribe([("as/t", 1)])
    pub, _ = _client(broker, clients, "as-pub")
    pub.publish("as/t", b"1", qos=1)
    p1 = c.expect(m.PUBLISH)
    c.ping()
    pub.publish("as/t", b"2", qos=1)
    p2 = c.expect(m.PUBLISH)
    assert p1.pid != p2.pid          # p1 still in flight: its id is in use
    c.send(m.puback(p1.pid) + m.puback(p2.pid))
    c.ping()


def test_paho_persistent_session(broker, clients):
    p = clients.paho(broker, client_id="paho-persist", clean_session=False)
    flags = p.connect()
    assert flags.get("session present", 0) == 0
    assert p.subscribe("pp/t", 1) == [1]
    p.disconnect()
    clients.pub(broker, "-t", "pp/t", "-m", "while away 1", "-q", "1")
    clients.pub(broker, "-t", "pp/t", "-m", "while away 2", "-q", "2")
    p2 = clients.paho(broker, client_id="paho-persist", clean_session=False)
    flags = p2.connect()
    # [MQTT-3.2.2-2] 3.1.1
    assert flags.get("session present") == 1
    got = [p2.get_message(), p2.get_message()]
    assert [(g.payload, g.qos) for g in got] == [(b"while away 1", 1), (b"while away 2", 1)]


def test_mosquitto_sub_persistent_session(broker, clients):
    # -E: exit once subscribed; -c: CleanSession=0
    s = clients.sub(broker, "-c", "-i", "ms-persist", "-q", "1", "-t", "mp/t", "-E")
    assert s.wait() == 0
    clients.pub(broker, "-t", "mp/t", "-m", "queued-1", "-q", "1")
    clients.pub(broker, "-t", "mp/t", "-m", "queued-2", "-q", "1", "-V", "mqttv31")
    s2 = clients.sub(broker, "-c", "-i", "ms-persist", "-q", "1", "-t", "mp/t",
                     "-C", "2", "-W", "10")
    got = [s2.get_message()[:3], s2.get_message()[:3]]
    assert got == [("mp/t", "queued-1", 1), ("mp/t", "queued-2", 1)]
    assert s2.wait() == 0
