"""MQTT 5.0 flow control: the client's Receive Maximum bounds the QoS 1/2
PUBLISHes the server has outstanding to it; the server's Receive Maximum
bounds what the client may have outstanding (DISCONNECT 0x93 beyond it)."""

import mqtt_raw as m
import mqtt5_raw as m5

# Bounded negative waits ("nothing more arrives") last this long.
QUIET = 0.5


def _c5(clients, broker, cid, **kw):
    c = m5.client(clients, broker)
    c.handshake(cid, **kw)
    return c


def _fill(clients, broker, topic, n, qos):
    p = _c5(clients, broker, "fc-pub")
    for i in range(n):
        p.publish(topic, b"m%d" % i, qos=qos)
    return p


def test_v5_mqtt_3_3_4_9_client_receive_maximum_qos1(broker, clients):
    s = _c5(clients, broker, "fc-sub1", props={m5.RECEIVE_MAXIMUM: 2})
    s.subscribe([("fc1/t", m5.sub_options(1))])
    _fill(clients, broker, "fc1/t", 5, qos=1)
    first = [s.expect(m.PUBLISH) for _ in range(2)]
    assert [p.payload for p in first] == [b"m0", b"m1"]
    # [MQTT-3.3.4-9] v5 / [MQTT-4.9.0-2] v5: 2 unacknowledged -> no third
    s.expect_nothing(QUIET)
    # [MQTT-4.9.0-3] v5 / [MQTT-3.3.4-10] v5: other packets still answered
    s.ping()
    s.send(m5.puback(first[0].pid))
    # §4.9 v5: one PUBACK gives back one unit: exactly one more
    third = s.expect(m.PUBLISH)
    assert third.payload == b"m2"
    s.expect_nothing(QUIET)
    got = [third]
    s.send(m5.puback(first[1].pid))
    s.send(m5.puback(third.pid))
    while len(got) < 3 + 2 - 2:
        pk = s.expect(m.PUBLISH)
        got.append(pk)
        s.send(m5.puback(pk.pid))
    # all five arrive, in order ([MQTT-4.6.0-5] v5)
    assert [p.payload for p in first + got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_v5_mqtt_3_3_4_9_client_receive_maximum_qos2(broker, clients):
    s = _c5(clients, broker, "fc-sub2", props={m5.RECEIVE_MAXIMUM: 2})
    s.subscribe([("fc2/t", m5.sub_options(2))])
    _fill(clients, broker, "fc2/t", 4, qos=2)
    first = [s.expect(m.PUBLISH) for _ in range(2)]
    assert [(p.payload, p.qos) for p in first] == [(b"m0", 2), (b"m1", 2)]
    s.expect_nothing(QUIET)
    # [MQTT-3.3.4-9] v5: a QoS 2 PUBLISH stays outstanding until PUBCOMP:
    # PUBREC 0x00 (answered by PUBREL) does not open the window
    for p in first:
        s.send(m5.pubrec(p.pid))
    rels = [s.expect(m.PUBREL) for _ in range(2)]
    assert sorted(r.pid for r in rels) == sorted(p.pid for p in first)
    s.expect_nothing(QUIET)
    s.send(m5.pubcomp(first[0].pid))
    third = s.expect(m.PUBLISH)
    assert third.payload == b"m2"
    s.expect_nothing(QUIET)
    s.send(m5.pubcomp(first[1].pid))
    fourth = s.expect(m.PUBLISH)
    assert fourth.payload == b"m3"
    s.ack(third)
    s.ack(fourth)
    s.ping()


def test_v5_4_9_quota_reset_on_new_connection(broker, clients):
    # §4.9 v5: the quota belongs to the connection: a resumed session whose
    # previous connection left 2 unacknowledged gets a fresh window of 2
    s = _c5(clients, broker, "fc-sub3", props={m5.RECEIVE_MAXIMUM: 2,
                                               m5.SESSION_EXPIRY_INTERVAL: 60})
    s.subscribe([("fc3/t", m5.sub_options(1))])
    _fill(clients, broker, "fc3/t", 4, qos=1)
    first = [s.expect(m.PUBLISH) for _ in range(2)]
    s.abort()
    s2 = _c5(clients, broker, "fc-sub3", clean_start=False,
             props={m5.RECEIVE_MAXIMUM: 2, m5.SESSION_EXPIRY_INTERVAL: 0})
    assert s2.connack.session_present == 1
    # [MQTT-4.4.0-1] v5: the two unacknowledged ones are resent (DUP 1) first
    again = [s2.expect(m.PUBLISH) for _ in range(2)]
    assert [(p.payload, p.dup) for p in again] == [(p.payload, True) for p in first]
    s2.expect_nothing(QUIET)
    for p in again:
        s2.send(m5.puback(p.pid))
    rest = [s2.expect(m.PUBLISH) for _ in range(2)]
    assert [p.payload for p in rest] == [b"m2", b"m3"]
    for p in rest:
        s2.send(m5.puback(p.pid))
    s2.ping()


def test_v5_mqtt_3_3_4_7_server_receive_maximum_exceeded_0x93(start_broker, clients):
    broker = start_broker(mqtt_receive_maximum=2)
    c = _c5(clients, broker, "fc-in")
    # §3.2.2.3.3 v5: the server's own Receive Maximum
    assert c.connack.props.get(m5.RECEIVE_MAXIMUM) == 2
    # two QoS 2 PUBLISHes left unreleased: within the limit
    c.send(m5.publish("fci/t", b"1", qos=2, pid=1) + m5.publish("fci/t", b"2", qos=2, pid=2))
    assert sorted(c.expect(m.PUBREC).pid for _ in range(2)) == [1, 2]
    # releasing one frees a slot: a new one is fine
    c.send(m5.pubrel(1))
    assert c.expect(m.PUBCOMP).pid == 1
    c.send(m5.publish("fci/t", b"3", qos=2, pid=3))
    assert c.expect(m.PUBREC).pid == 3
    # a third unacknowledged one (pids 2 and 3 still outstanding)
    c.send(m5.publish("fci/t", b"4", qos=2, pid=4))
    # [MQTT-3.3.4-7] v5: more than Receive Maximum -> DISCONNECT 0x93
    before = c.expect_disconnect(m5.RECEIVE_MAXIMUM_EXCEEDED)
    assert not [p for p in before if p.type == m.PUBREC], before
