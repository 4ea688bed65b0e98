"""MQTT 3.1.1 conformance: the 3.1.1 counterparts of the server
obligations that test_conformance_v5.py checks for 5.0 (packet identifiers
in acks, the QoS 1 and QoS 2 flows as receiver and as sender, delivery at
the lower QoS, closing after a refused CONNACK). Two 3.1.1-only
statements are proved elsewhere: MQTT-3.3.5-2 (a PUBLISH the server does
not authorize) in test_acl.py, with [auth] acl_file, and MQTT-4.8.0-2 (an
error while handling an inbound packet closes the connection) in
test_crash.py, with a full store.

The 3.1.1 decoder of mqtt_raw rejects acks longer than 2 bytes and CONNACKs
longer than 4, so every check below also proves no 5.0 field reached the
3.1.1 client. Every wait has a deadline; "nothing else arrived" is proved
with PINGREQ/PINGRESP on the same connection or a marker message."""

import mqtt_raw as m
from test_auth import USERS


def _c(clients, broker, cid, **kw):
    c = clients.raw(broker)
    c.handshake(cid, **kw)
    return c


def test_v311_mqtt_2_3_1_6_7_ack_packet_ids(broker, clients):
    s = _c(clients, broker, "ids-sub")
    s.send(m.subscribe(0x4242, [("ids/t", 2)]))
    ack = s.expect(m.SUBACK)
    # [MQTT-2.3.1-7] v311: SUBACK carries the SUBSCRIBE's identifier
    assert (ack.pid, ack.codes) == (0x4242, [2]), ack
    p = _c(clients, broker, "ids-pub")
    p.send(m.publish("ids/t", b"q1", qos=1, pid=0x1234))
    # [MQTT-2.3.1-6] v311: PUBACK, PUBREC, PUBCOMP carry the PUBLISH's id
    assert p.expect(m.PUBACK).pid == 0x1234
    p.send(m.publish("ids/t", b"q2", qos=2, pid=0xBEEF))
    assert p.expect(m.PUBREC).pid == 0xBEEF
    p.send(m.pubrel(0xBEEF))
    assert p.expect(m.PUBCOMP).pid == 0xBEEF
    assert s.expect_publish().payload == b"q1"
    x = s.expect(m.PUBLISH)
    s.send(m.pubrec(x.pid))
    # [MQTT-2.3.1-6] v311: the server's PUBREL names the PUBLISH it sent
    assert s.expect(m.PUBREL).pid == x.pid
    s.send(m.pubcomp(x.pid))
    s.send(m.unsubscribe(0x0101, ["ids/t"]))
    # [MQTT-2.3.1-7] v311: UNSUBACK too
    assert s.expect(m.UNSUBACK).pid == 0x0101


def test_v311_mqtt_4_3_2_2_incoming_qos1_and_id_reuse(broker, clients):
    s = _c(clients, broker, "q1in-sub")
    s.subscribe([("q1in/t", 1)])
    p = _c(clients, broker, "q1in-pub")
    for payload, dup in ((b"first", False), (b"second", True), (b"third", False)):
        p.send(m.publish("q1in/t", payload, qos=1, pid=7, dup=dup))
        # [MQTT-4.3.2-2] v311: PUBACK with the same id; after it, id 7 is
        # a new message (whatever DUP says) and is routed again
        assert p.expect(m.PUBACK).pid == 7
        assert s.expect_publish().payload == payload


def test_v311_mqtt_4_3_3_2_qos2_receiver(broker, clients):
    s = _c(clients, broker, "q2in-sub")
    s.subscribe([("q2in/t", 2)])
    p = _c(clients, broker, "q2in-pub")
    mk = _c(clients, broker, "q2in-mk")
    p.send(m.publish("q2in/t", b"once", qos=2, pid=9))
    # [MQTT-4.3.3-2] v311: PUBREC with the same id ...
    assert p.expect(m.PUBREC).pid == 9
    # ... again for a repeat before PUBREL, without a second delivery
    p.send(m.publish("q2in/t", b"once", qos=2, pid=9, dup=True))
    assert p.expect(m.PUBREC).pid == 9
    p.send(m.pubrel(9))
    # [MQTT-4.3.3-2] v311: PUBCOMP with the same id
    assert p.expect(m.PUBCOMP).pid == 9
    assert s.expect_publish().payload == b"once"
    # [MQTT-4.3.3-2] v311: delivered once only (the marker comes next)
    s.expect_marker(mk, "q2in/t")
    # [MQTT-4.3.3-2] v311: after PUBCOMP, id 9 is a new message
    p.send(m.publish("q2in/t", b"again", qos=2, pid=9))
    assert p.expect(m.PUBREC).pid == 9
    p.send(m.pubrel(9))
    assert p.expect(m.PUBCOMP).pid == 9
    assert s.expect_publish().payload == b"again"


def test_v311_mqtt_4_3_3_1_qos2_sender_states(broker, clients):
    s = _c(clients, broker, "q2out", clean=False)
    s.subscribe([("q2out/t", 2)])
    _c(clients, broker, "q2out-pub").publish("q2out/t", b"two", qos=2)
    x = s.expect(m.PUBLISH)
    assert (x.qos, x.dup) == (2, False)
    s.abort()
    s = clients.raw(broker)
    assert s.handshake("q2out", clean=False).session_present
    # [MQTT-4.3.3-1] v311: unacknowledged until PUBREC: sent again (DUP)
    y = s.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup) == (x.pid, b"two", True), y
    s.send(m.pubrec(y.pid))
    # [MQTT-4.3.3-1] v311: PUBREC -> PUBREL with the same id
    assert s.expect(m.PUBREL).pid == x.pid
    s.abort()
    s = clients.raw(broker)
    assert s.handshake("q2out", clean=False).session_present
    # [MQTT-4.3.3-1] v311: PUBREL outstanding until PUBCOMP; the PUBLISH is
    # not sent again
    rel = s.expect(m.PUBREL)
    assert rel.pid == x.pid
    s.send(m.pubcomp(rel.pid))
    s.ping()
    s.abort()
    s = clients.raw(broker)
    assert s.handshake("q2out", clean=False).session_present
    s.ping()            # nothing left to resend


def test_v311_mqtt_4_3_2_1_qos1_kept_until_puback(broker, clients):
    s = _c(clients, broker, "q1keep", clean=False)
    s.subscribe([("q1keep/t", 1)])
    _c(clients, broker, "q1keep-pub").publish("q1keep/t", b"one", qos=1)
    x = s.expect(m.PUBLISH)
    assert (x.qos, x.dup) == (1, False) and x.pid != 0
    s.abort()
    s = clients.raw(broker)
    assert s.handshake("q1keep", clean=False).session_present
    # [MQTT-4.3.2-1] v311: unacknowledged until PUBACK: sent again
    y = s.expect(m.PUBLISH)
    assert (y.pid, y.payload, y.dup) == (x.pid, b"one", True), y
    s.send(m.puback(y.pid))
    s.ping()
    s.abort()
    s = clients.raw(broker)
    assert s.handshake("q1keep", clean=False).session_present
    s.ping()


def test_v311_mqtt_3_8_4_6_delivery_at_lower_qos(broker, clients):
    s = _c(clients, broker, "minq-sub")
    s.subscribe([("minq/0", 0), ("minq/1", 1), ("minq/2", 2)])
    p = _c(clients, broker, "minq-pub")
    cases = [("minq/0", 2, 0), ("minq/1", 2, 1), ("minq/1", 0, 0),
             ("minq/2", 1, 1), ("minq/2", 2, 2)]
    for topic, pq, _ in cases:
        p.publish(topic, b"%s-%d" % (topic.encode(), pq), qos=pq)
    for topic, pq, want in cases:
        x = s.expect_publish()
        assert x.payload == b"%s-%d" % (topic.encode(), pq)
        # [MQTT-3.8.4-6] v311: at the lower of published and granted QoS
        assert x.qos == want, (topic, pq, x)


def test_v311_mqtt_3_2_2_5_refused_connack_then_close(start_broker, clients, tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS)
    b = start_broker(auth_password_file=str(path))
    c = clients.raw(b)
    c.send(m.connect("refused", username="alice", password="wrong"))
    got = c.expect_closed()
    # [MQTT-3.2.2-5] v311: non-zero return code (0x04) -> close
    assert [(p.type, p.rc) for p in got] == [(m.CONNACK, 0x04)], got
